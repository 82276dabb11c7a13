//! PDQ, Meta's perceptual image hash (ThreatExchange `pdq/cpp`), ported
//! step for step so that it agrees with the reference bit for bit on the
//! same pixels: luma from 8-bit RGB in f32, two passes of Jarosz box filters
//! sized for 64×64, decimation to 64×64, the quality metric from the
//! gradients of that 64×64 picture, a 2-D DCT keeping coefficients 1..=16 in
//! each direction, and one bit per coefficient: above the median (Torben's
//! selection) or not.
//!
//! Sums are made in the reference's order and precision (f32, the DCT
//! matrix rounded from f64) because the median threshold turns any drift
//! into flipped bits on flat pictures (see `tests/data/pdq/README.md`).
//!
//! The 256 bits are returned as the 32 bytes that ThreatExchange's 64 hex
//! digits spell: bit `k` (coefficient row `k / 16`, column `k % 16`) sits in
//! 16-bit word `k / 16`, words written from 15 down to 0, each big-endian.

/// A PDQ hash: 32 bytes in ThreatExchange order.
pub type Pdq = [u8; 32];

/// Pictures with a side shorter than this get the zero hash and quality 0,
/// as in the reference.
const MIN_HASHABLE_DIM: usize = 5;
const LUMA_R: f64 = 0.299;
const LUMA_G: f64 = 0.587;
const LUMA_B: f64 = 0.114;
/// Tent filter: two passes of box filters along rows and columns.
const JAROSZ_PASSES: usize = 2;

/// The hash and quality (0..=100) of a `width × height` picture given as
/// row-major 8-bit RGB triplets (`rgb.len() == 3 · width · height`).
pub fn hash_rgb(width: usize, height: usize, rgb: &[u8]) -> (Pdq, u32) {
    if width < MIN_HASHABLE_DIM || height < MIN_HASHABLE_DIM || rgb.len() < 3 * width * height {
        return ([0; 32], 0);
    }
    // In f64, then rounded to f32: how the reference data was made (PyPI
    // pdqhash computes luma with NumPy); Meta's C++ hasher, summing in f32,
    // gives the same bits on every committed test picture.
    let mut luma: Vec<f32> = rgb[..3 * width * height]
        .chunks_exact(3)
        .map(|p| (LUMA_R * p[0] as f64 + LUMA_G * p[1] as f64 + LUMA_B * p[2] as f64) as f32)
        .collect();
    let mut scratch = vec![0f32; luma.len()];
    let rows_window = window_size(width, 64);
    let cols_window = window_size(height, 64);
    for _ in 0..JAROSZ_PASSES {
        box_along_rows(&luma, &mut scratch, height, width, rows_window);
        box_along_cols(&scratch, &mut luma, height, width, cols_window);
    }
    let small = decimate(&luma, height, width);
    let quality = quality(&small);
    let dct = dct64_to_16(&small);
    (to_bits(&dct), quality)
}

/// `computeJaroszFilterWindowSize`: the box width that takes `old` samples
/// down to `new`.
fn window_size(old: usize, new: usize) -> usize {
    old.div_ceil(2 * new)
}

/// `box1DFloat`: a running mean over `window` samples, centred, with the
/// window shrinking at both ends; `stride` apart in `input` and `output`.
fn box_1d(input: &[f32], output: &mut [f32], len: usize, stride: usize, window: usize) {
    let half = (window + 2) / 2;
    let phase1 = half - 1;
    let phase2 = window - half + 1;
    let phase3 = len.saturating_sub(window);
    let phase4 = half - 1;
    let (mut li, mut ri, mut oi) = (0usize, 0usize, 0usize);
    let mut sum = 0f32;
    let mut current = 0usize;
    for _ in 0..phase1 {
        sum += input[ri];
        current += 1;
        ri += stride;
    }
    for _ in 0..phase2 {
        sum += input[ri];
        current += 1;
        output[oi] = sum / current as f32;
        ri += stride;
        oi += stride;
    }
    for _ in 0..phase3 {
        sum += input[ri];
        sum -= input[li];
        output[oi] = sum / current as f32;
        li += stride;
        ri += stride;
        oi += stride;
    }
    for _ in 0..phase4 {
        sum -= input[li];
        current -= 1;
        output[oi] = sum / current as f32;
        li += stride;
        oi += stride;
    }
}

fn box_along_rows(input: &[f32], output: &mut [f32], rows: usize, cols: usize, window: usize) {
    for i in 0..rows {
        let r = i * cols..(i + 1) * cols;
        box_1d(&input[r.clone()], &mut output[r], cols, 1, window);
    }
}

fn box_along_cols(input: &[f32], output: &mut [f32], rows: usize, cols: usize, window: usize) {
    for j in 0..cols {
        box_1d(&input[j..], &mut output[j..], rows, cols, window);
    }
}

/// `decimateFloat`: the sample nearest each of 64×64 cell centres.
fn decimate(input: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut out = vec![0f32; 64 * 64];
    for oi in 0..64 {
        let ii = (((oi as f64 + 0.5) * rows as f64) / 64.0) as usize;
        for oj in 0..64 {
            let ij = (((oj as f64 + 0.5) * cols as f64) / 64.0) as usize;
            out[oi * 64 + oj] = input[ii * cols + ij];
        }
    }
    out
}

/// `pdqImageDomainQualityMetric`: the sum of significant gradients of the
/// 64×64 picture, scaled to 0..=100.
fn quality(b: &[f32]) -> u32 {
    let mut sum: i64 = 0;
    let step = |u: f32, v: f32| (((u - v) * 100.0) / 255.0) as i32;
    for i in 0..63 {
        for j in 0..64 {
            sum += step(b[i * 64 + j], b[(i + 1) * 64 + j]).unsigned_abs() as i64;
        }
    }
    for i in 0..64 {
        for j in 0..63 {
            sum += step(b[i * 64 + j], b[i * 64 + j + 1]).unsigned_abs() as i64;
        }
    }
    (sum / 90).min(100) as u32
}

/// The 16×64 DCT-II matrix of the reference: rows 1..=16 of the 64-point
/// DCT, scaled by sqrt(2 / 64) (f32), each entry rounded from f64.
fn dct_matrix() -> &'static [f32; 16 * 64] {
    static M: std::sync::OnceLock<[f32; 16 * 64]> = std::sync::OnceLock::new();
    M.get_or_init(|| {
        let scale = (2.0f64 / 64.0).sqrt() as f32;
        let mut m = [0f32; 16 * 64];
        for i in 0..16 {
            for j in 0..64 {
                let c = ((std::f64::consts::PI / 2.0 / 64.0) * (i + 1) as f64 * (2 * j + 1) as f64)
                    .cos();
                m[i * 64 + j] = (scale as f64 * c) as f32;
            }
        }
        m
    })
}

/// `dct64To16`: B = D A Dᵀ with the intermediate T = D A, summed in the
/// reference's order (k ascending, f32).
fn dct64_to_16(a: &[f32]) -> [f32; 256] {
    let d = dct_matrix();
    let mut t = [0f32; 16 * 64];
    for i in 0..16 {
        for j in 0..64 {
            let mut s = 0f32;
            for k in 0..64 {
                s += d[i * 64 + k] * a[k * 64 + j];
            }
            t[i * 64 + j] = s;
        }
    }
    let mut b = [0f32; 256];
    for i in 0..16 {
        for j in 0..16 {
            let mut s = 0f32;
            for k in 0..64 {
                s += t[i * 64 + k] * d[j * 64 + k];
            }
            b[i * 16 + j] = s;
        }
    }
    b
}

/// Torben's median selection, as the reference computes it (the value it
/// returns for an even count decides ties, so it is kept exactly).
fn torben(m: &[f32]) -> f32 {
    let n = m.len();
    let (mut min, mut max) = (m[0], m[0]);
    for &x in &m[1..] {
        min = min.min(x);
        max = max.max(x);
    }
    let half = n.div_ceil(2);
    loop {
        let guess = (min + max) / 2.0;
        let (mut less, mut greater, mut equal) = (0usize, 0usize, 0usize);
        let (mut maxlt, mut mingt) = (min, max);
        for &x in m {
            if x < guess {
                less += 1;
                if x > maxlt {
                    maxlt = x;
                }
            } else if x > guess {
                greater += 1;
                if x < mingt {
                    mingt = x;
                }
            } else {
                equal += 1;
            }
        }
        if less <= half && greater <= half {
            return if less >= half {
                maxlt
            } else if less + equal >= half {
                guess
            } else {
                mingt
            };
        } else if less > greater {
            max = maxlt;
        } else {
            min = mingt;
        }
    }
}

/// `pdqBuffer16x16ToBits`: bit `k` set when coefficient `k` is above the
/// median, laid out in ThreatExchange byte order.
fn to_bits(dct: &[f32; 256]) -> Pdq {
    let median = torben(dct);
    let mut out = [0u8; 32];
    for (k, &v) in dct.iter().enumerate() {
        if v > median {
            let (word, bit) = (k / 16, k % 16);
            let byte = 2 * (15 - word) + usize::from(bit < 8);
            out[byte] |= 1 << (bit % 8);
        }
    }
    out
}

/// Hamming distance between two PDQ hashes.
pub fn distance(a: &Pdq, b: &Pdq) -> u32 {
    a.iter().zip(b).map(|(x, y)| (x ^ y).count_ones()).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_hash_has_at_most_half_its_bits_set_and_flat_pictures_have_quality_zero() {
        let (w, h) = (40, 30);
        let flat = vec![128u8; 3 * w * h];
        let (bits, q) = hash_rgb(w, h, &flat);
        assert_eq!(q, 0);
        assert!(bits.iter().map(|b| b.count_ones()).sum::<u32>() <= 128);
        let ramp: Vec<u8> = (0..w * h)
            .flat_map(|i| {
                let v = ((i % w) * 255 / w) as u8 ^ ((i / w) * 7) as u8;
                [v, v / 2, 255 - v]
            })
            .collect();
        let (bits, q) = hash_rgb(w, h, &ramp);
        assert!(q > 0);
        assert_eq!(bits.iter().map(|b| b.count_ones()).sum::<u32>(), 128);
        assert_eq!(hash_rgb(4, 100, &vec![0; 1200]), ([0; 32], 0));
    }

    #[test]
    fn torben_is_the_median_of_odd_and_the_lower_middle_of_even_counts() {
        assert_eq!(torben(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(torben(&[4.0, 1.0, 3.0, 2.0]), 2.0);
        assert_eq!(torben(&[5.0; 8]), 5.0);
    }
}
