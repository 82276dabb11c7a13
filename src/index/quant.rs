//! Scalar quantization of a sealed segment's vectors: the codebook (a
//! trained range per dimension), encoding, the prepared query and the
//! integer kernels that estimate a distance from a code.
//!
//! A code stores each dimension as an integer level `c` in `0..=L`
//! (`L` = 255 for [`Quantization::Sq8`], one byte; 15 for
//! [`Quantization::Sq4`], a nibble), standing for `lo_d + step_d · c`.
//! So `q·x ≈ Σ q_d lo_d + Σ (q_d step_d) c_d`: a query is prepared once into
//! an offset and integer weights `r_d ≈ q_d step_d / s` (i16), and each
//! candidate costs one integer dot product `Σ r_d c_d` (exact, so the AVX2
//! and the portable kernel return the very same value). L2 adds the stored
//! squared norm of each vector. The graph walk ranks by this estimate; the
//! sealed segment then rescores its best candidates with the f32 vectors,
//! so the distances a client sees are exact.
//!
//! Ranges are trained per dimension on the vectors being sealed (quantiles,
//! so a few outliers do not stretch the range for everyone; they are
//! clamped, and rescoring gives them their true distance). Training looks at
//! the values only, never their order, so the codes do not depend on the
//! order of inserts.
//!
//! Code layout: dimensions are padded to a multiple of 32 (padding codes 0,
//! padding weights 0) so the kernels have no tails. SQ8: one byte per
//! dimension. SQ4: per block of 32 dimensions, 16 bytes; byte `j` holds
//! dimension `j` in its low nibble and dimension `j + 16` in its high one.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::index::distance::{Metric, dot};
use crate::pb;

/// How a collection's sealed segments store the vectors a search walks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Quantization {
    /// f32 only: the walk reads the f32 vectors.
    #[default]
    None,
    /// 8 bits per dimension (a quarter of f32), exact f32 rescoring.
    Sq8,
    /// 4 bits per dimension (an eighth of f32), exact f32 rescoring.
    Sq4,
}

/// Dimensions per kernel block (padding unit).
pub const BLOCK: usize = 32;

impl Quantization {
    /// `UNSPECIFIED` means none.
    pub fn from_pb(q: i32) -> Option<Quantization> {
        Some(match pb::Quantization::try_from(q).ok()? {
            pb::Quantization::Unspecified | pb::Quantization::None => Quantization::None,
            pb::Quantization::Sq8 => Quantization::Sq8,
            pb::Quantization::Sq4 => Quantization::Sq4,
        })
    }

    pub fn to_pb(self) -> pb::Quantization {
        match self {
            Quantization::None => pb::Quantization::None,
            Quantization::Sq8 => pb::Quantization::Sq8,
            Quantization::Sq4 => pb::Quantization::Sq4,
        }
    }

    /// The number stored in file headers (0 = none).
    pub fn tag(self) -> u64 {
        match self {
            Quantization::None => 0,
            Quantization::Sq8 => 1,
            Quantization::Sq4 => 2,
        }
    }

    pub fn from_tag(t: u64) -> Option<Quantization> {
        match t {
            0 => Some(Quantization::None),
            1 => Some(Quantization::Sq8),
            2 => Some(Quantization::Sq4),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Quantization::None => "none",
            Quantization::Sq8 => "sq8",
            Quantization::Sq4 => "sq4",
        }
    }

    /// Highest level of a code (0 for none).
    fn top(self) -> u32 {
        match self {
            Quantization::None => 0,
            Quantization::Sq8 => 255,
            Quantization::Sq4 => 15,
        }
    }

    /// Bytes of one code of a `dim`-d vector (0 for none).
    pub fn code_bytes(self, dim: usize) -> usize {
        let padded = padded(dim);
        match self {
            Quantization::None => 0,
            Quantization::Sq8 => padded,
            Quantization::Sq4 => padded / 2,
        }
    }

    /// The share of values left outside the trained range at each end: wider
    /// for 4 bits, where the step size costs more than a clamped tail.
    fn tail(self) -> f64 {
        match self {
            Quantization::Sq4 => 0.005,
            _ => 0.001,
        }
    }
}

/// `dim` rounded up to a whole number of kernel blocks.
pub fn padded(dim: usize) -> usize {
    dim.div_ceil(BLOCK) * BLOCK
}

/// Rows looked at to train a codebook at most (about; chosen by content).
const TRAIN_SAMPLE: usize = 200_000;
/// Dimensions gathered per training pass (bounds its buffer to
/// `TRAIN_SAMPLE × DIMS_PER_PASS` floats).
const DIMS_PER_PASS: usize = 32;

/// The trained range of every dimension.
#[derive(Clone, Debug, PartialEq)]
pub struct Codebook {
    pub kind: Quantization,
    pub dim: usize,
    /// Value of level 0, per dimension.
    pub lo: Vec<f32>,
    /// Value between two levels, per dimension (> 0).
    pub step: Vec<f32>,
}

/// A hash of a vector's bits: which rows a large segment trains on, chosen
/// by content so that the choice does not depend on insert order.
fn content_hash(v: &[f32]) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    for x in v {
        h = (h ^ u64::from(x.to_bits())).wrapping_mul(0x0000_0100_0000_01b3);
    }
    h ^ (h >> 29)
}

impl Codebook {
    /// Trains the range of each dimension on rows `0..n` (`row(i)`; rows
    /// that are absent are skipped): the `tail` and `1 - tail` quantiles.
    pub fn train<'a>(
        kind: Quantization,
        dim: usize,
        n: usize,
        row: &(dyn Fn(usize) -> Option<&'a [f32]> + Sync),
    ) -> Codebook {
        assert!(kind != Quantization::None, "no codebook for none");
        let rate = (TRAIN_SAMPLE as f64 / n.max(1) as f64).min(1.0);
        let cut = (rate * u64::MAX as f64) as u64;
        let rows: Vec<&[f32]> = (0..n)
            .filter_map(row)
            .filter(|v| v.len() == dim && (rate >= 1.0 || content_hash(v) <= cut))
            .collect();
        let mut lo = vec![0f32; dim];
        let mut step = vec![1f32; dim];
        let top = kind.top() as f32;
        let tail = kind.tail();
        let ranges: Vec<(f32, f32)> = (0..dim)
            .step_by(DIMS_PER_PASS)
            .collect::<Vec<_>>()
            .into_par_iter()
            .flat_map_iter(|d0| {
                let d1 = (d0 + DIMS_PER_PASS).min(dim);
                let mut col: Vec<Vec<f32>> = vec![Vec::with_capacity(rows.len()); d1 - d0];
                for v in &rows {
                    for (d, c) in (d0..d1).zip(col.iter_mut()) {
                        c.push(v[d]);
                    }
                }
                col.into_iter()
                    .map(|mut c| quantile_range(&mut c, tail))
                    .collect::<Vec<_>>()
            })
            .collect();
        for (d, (a, b)) in ranges.into_iter().enumerate() {
            lo[d] = a;
            step[d] = if b > a { (b - a) / top } else { 1.0 };
        }
        Codebook {
            kind,
            dim,
            lo,
            step,
        }
    }

    /// Bytes of one code.
    pub fn code_bytes(&self) -> usize {
        self.kind.code_bytes(self.dim)
    }

    /// Writes the code of `v` into `out` (`code_bytes()` long).
    pub fn encode(&self, v: &[f32], out: &mut [u8]) {
        let top = self.kind.top() as f32;
        let level = |d: usize| -> u8 {
            let x = v.get(d).copied().unwrap_or(0.0);
            if d >= self.dim {
                return 0;
            }
            ((x - self.lo[d]) / self.step[d]).round().clamp(0.0, top) as u8
        };
        out.fill(0);
        match self.kind {
            Quantization::Sq8 => {
                for (d, o) in out.iter_mut().enumerate().take(self.dim) {
                    *o = level(d);
                }
            }
            Quantization::Sq4 => {
                for (b, block) in out.chunks_mut(BLOCK / 2).enumerate() {
                    for (j, o) in block.iter_mut().enumerate() {
                        let d = b * BLOCK + j;
                        *o = level(d) | (level(d + BLOCK / 2) << 4);
                    }
                }
            }
            Quantization::None => {}
        }
    }

    /// The vector a code stands for (tests and diagnostics).
    pub fn decode(&self, code: &[u8]) -> Vec<f32> {
        (0..self.dim)
            .map(|d| self.lo[d] + self.step[d] * level_at(self.kind, code, d) as f32)
            .collect()
    }

    /// Prepares `q` (already in the metric's stored form) for ranking codes.
    pub fn prepare(&self, q: &[f32], metric: Metric) -> QueryCode {
        let dim = self.dim.min(q.len());
        let offset: f32 = (0..dim).map(|d| q[d] * self.lo[d]).sum();
        let w: Vec<f32> = (0..dim).map(|d| q[d] * self.step[d]).collect();
        let max = w.iter().fold(0f32, |m, x| m.max(x.abs()));
        // Largest weight such that Σ r·c over every dimension fits an i32.
        let limit = ((i32::MAX as f64) / (padded(self.dim) as f64 * self.kind.top() as f64))
            .min(i16::MAX as f64) as f32;
        let scale = if max > 0.0 { max / limit } else { 1.0 };
        let mut weights = vec![0i16; padded(self.dim)];
        for (r, x) in weights.iter_mut().zip(&w) {
            *r = (x / scale).round() as i16;
        }
        QueryCode {
            kind: self.kind,
            metric,
            weights,
            scale,
            offset,
            q_norm2: dot(q, q),
        }
    }
}

/// Level of dimension `d` in a code.
fn level_at(kind: Quantization, code: &[u8], d: usize) -> u32 {
    match kind {
        Quantization::Sq8 => u32::from(code[d]),
        Quantization::Sq4 => {
            let (b, j) = (d / BLOCK, d % BLOCK);
            let byte = code[b * BLOCK / 2 + j % (BLOCK / 2)];
            u32::from(if j < BLOCK / 2 { byte & 15 } else { byte >> 4 })
        }
        Quantization::None => 0,
    }
}

/// The `tail` and `1 - tail` quantiles of `values` (reordered); (0, 0)
/// when empty.
fn quantile_range(values: &mut [f32], tail: f64) -> (f32, f32) {
    if values.is_empty() {
        return (0.0, 0.0);
    }
    let last = values.len() - 1;
    let i_lo = (tail * last as f64).floor() as usize;
    let i_hi = ((1.0 - tail) * last as f64).ceil() as usize;
    let (_, lo, _) = values.select_nth_unstable_by(i_lo, f32::total_cmp);
    let lo = *lo;
    let (_, hi, _) = values.select_nth_unstable_by(i_hi.min(last), f32::total_cmp);
    (lo, *hi)
}

/// A query prepared against one codebook.
pub struct QueryCode {
    kind: Quantization,
    metric: Metric,
    /// Padded integer weights `r_d`.
    weights: Vec<i16>,
    scale: f32,
    offset: f32,
    q_norm2: f32,
}

impl QueryCode {
    /// Estimated rank (the order of [`Metric::rank`]) of the vector whose
    /// code is `code`; `norm2` is its squared norm (used by L2 only).
    #[inline]
    pub fn rank(&self, code: &[u8], norm2: f32) -> f32 {
        let sum = match self.kind {
            Quantization::Sq4 => dot_u4(code, &self.weights),
            _ => dot_u8(code, &self.weights),
        };
        let q_dot_x = self.offset + self.scale * sum as f32;
        match self.metric {
            Metric::Cosine => 1.0 - q_dot_x,
            Metric::Dot => -q_dot_x,
            Metric::L2 => self.q_norm2 - 2.0 * q_dot_x + norm2,
            // HAMMING collections hold bits, never quantized vectors (their
            // config refuses a quantization); farthest, should one appear.
            Metric::Hamming => f32::INFINITY,
        }
    }
}

/// `Σ c_d r_d` over one-byte codes; `code.len()` a multiple of 32,
/// `weights` at least as long.
#[inline]
pub fn dot_u8(code: &[u8], weights: &[i16]) -> i32 {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") && weights.len() >= code.len() {
            // SAFETY: AVX2 is present (checked) and the bounds hold (checked).
            return unsafe { x86::dot_u8_avx2(code, weights) };
        }
    }
    dot_u8_portable(code, weights)
}

/// `Σ c_d r_d` over nibble codes (the block layout of the module doc).
#[inline]
pub fn dot_u4(code: &[u8], weights: &[i16]) -> i32 {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") && weights.len() >= code.len() * 2 {
            // SAFETY: AVX2 is present (checked) and the bounds hold (checked).
            return unsafe { x86::dot_u4_avx2(code, weights) };
        }
    }
    dot_u4_portable(code, weights)
}

pub fn dot_u8_portable(code: &[u8], weights: &[i16]) -> i32 {
    code.iter()
        .zip(weights)
        .map(|(&c, &r)| i32::from(c) * i32::from(r))
        .sum()
}

pub fn dot_u4_portable(code: &[u8], weights: &[i16]) -> i32 {
    let mut s = 0i32;
    for (block, w) in code.chunks(BLOCK / 2).zip(weights.chunks(BLOCK)) {
        for (j, &b) in block.iter().enumerate() {
            s += i32::from(b & 15) * i32::from(w.get(j).copied().unwrap_or(0));
            s += i32::from(b >> 4) * i32::from(w.get(j + BLOCK / 2).copied().unwrap_or(0));
        }
    }
    s
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    #[target_feature(enable = "avx2")]
    fn hsum_epi32(v: __m256i) -> i32 {
        let s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
        let s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0b01_00_11_10));
        let s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0b10_11_00_01));
        _mm_cvtsi128_si32(s)
    }

    /// # Safety
    /// AVX2 required; `weights.len() >= code.len()`.
    #[target_feature(enable = "avx2")]
    pub unsafe fn dot_u8_avx2(code: &[u8], weights: &[i16]) -> i32 {
        let n = code.len();
        let (pc, pw) = (code.as_ptr(), weights.as_ptr());
        let mut acc0 = _mm256_setzero_si256();
        let mut acc1 = _mm256_setzero_si256();
        let mut i = 0;
        // Widen 16 codes to i16 and multiply-add with 16 weights into 8 i32
        // sums: exact, no saturation (weights are bounded at prepare).
        // SAFETY (all loads): i + 32 <= n <= weights.len().
        while i + 32 <= n {
            unsafe {
                let c0 = _mm256_cvtepu8_epi16(_mm_loadu_si128(pc.add(i).cast()));
                let c1 = _mm256_cvtepu8_epi16(_mm_loadu_si128(pc.add(i + 16).cast()));
                let w0 = _mm256_loadu_si256(pw.add(i).cast());
                let w1 = _mm256_loadu_si256(pw.add(i + 16).cast());
                acc0 = _mm256_add_epi32(acc0, _mm256_madd_epi16(c0, w0));
                acc1 = _mm256_add_epi32(acc1, _mm256_madd_epi16(c1, w1));
            }
            i += 32;
        }
        let mut s = hsum_epi32(_mm256_add_epi32(acc0, acc1));
        while i < n {
            s += i32::from(code[i]) * i32::from(weights[i]);
            i += 1;
        }
        s
    }

    /// # Safety
    /// AVX2 required; `weights.len() >= 2 * code.len()`.
    #[target_feature(enable = "avx2")]
    pub unsafe fn dot_u4_avx2(code: &[u8], weights: &[i16]) -> i32 {
        let n = code.len();
        let (pc, pw) = (code.as_ptr(), weights.as_ptr());
        let mask = _mm_set1_epi8(15);
        let mut acc0 = _mm256_setzero_si256();
        let mut acc1 = _mm256_setzero_si256();
        let mut i = 0;
        // 16 bytes = one block of 32 dimensions: low nibbles are the first
        // 16, high nibbles the next 16.
        // SAFETY (all loads): i + 16 <= n and 2 * (i + 16) <= weights.len().
        while i + 16 <= n {
            unsafe {
                let b = _mm_loadu_si128(pc.add(i).cast());
                let lo = _mm256_cvtepu8_epi16(_mm_and_si128(b, mask));
                let hi = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(b, 4), mask));
                let w0 = _mm256_loadu_si256(pw.add(2 * i).cast());
                let w1 = _mm256_loadu_si256(pw.add(2 * i + 16).cast());
                acc0 = _mm256_add_epi32(acc0, _mm256_madd_epi16(lo, w0));
                acc1 = _mm256_add_epi32(acc1, _mm256_madd_epi16(hi, w1));
            }
            i += 16;
        }
        let s = hsum_epi32(_mm256_add_epi32(acc0, acc1));
        // Codes are whole blocks; a partial one is left to the portable loop.
        s + super::dot_u4_portable(&code[i..], &weights[2 * i..])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;
    use rand_distr::StandardNormal;

    fn unit_rows(n: usize, dim: usize, seed: u64) -> Vec<Vec<f32>> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        (0..n)
            .map(|_| {
                let mut v: Vec<f32> = (0..dim)
                    .map(|_| rng.sample::<f32, _>(StandardNormal))
                    .collect();
                Metric::Cosine.prepare(&mut v);
                v
            })
            .collect()
    }

    #[test]
    fn kernels_agree_exactly_with_the_portable_loops() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        for blocks in [1, 2, 5, 16, 128] {
            let len = blocks * BLOCK;
            let code: Vec<u8> = (0..len).map(|_| rng.random()).collect();
            let w: Vec<i16> = (0..len).map(|_| rng.random_range(-16000..16000)).collect();
            assert_eq!(dot_u8(&code, &w), dot_u8_portable(&code, &w), "{len}");
            let naive: i64 = code
                .iter()
                .zip(&w)
                .map(|(&c, &r)| c as i64 * r as i64)
                .sum();
            assert_eq!(dot_u8(&code, &w) as i64, naive);
            let nib = &code[..len / 2];
            assert_eq!(dot_u4(nib, &w), dot_u4_portable(nib, &w), "{len}");
        }
    }

    #[test]
    fn codes_round_trip_within_half_a_step() {
        for kind in [Quantization::Sq8, Quantization::Sq4] {
            for dim in [7, 32, 100, 512] {
                let rows = unit_rows(500, dim, dim as u64);
                let cb = Codebook::train(kind, dim, rows.len(), &|i| Some(&rows[i][..]));
                let mut code = vec![0u8; cb.code_bytes()];
                for v in &rows {
                    cb.encode(v, &mut code);
                    let back = cb.decode(&code);
                    for d in 0..dim {
                        let inside =
                            v[d] >= cb.lo[d] && v[d] <= cb.lo[d] + cb.step[d] * kind.top() as f32;
                        if inside {
                            assert!(
                                (back[d] - v[d]).abs() <= cb.step[d] * 0.5001,
                                "{kind:?} dim {dim} d {d}"
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn estimates_track_exact_ranks_for_every_metric() {
        let dim = 512;
        let rows = unit_rows(2000, dim, 9);
        let queries = unit_rows(20, dim, 10);
        for (kind, tol) in [(Quantization::Sq8, 0.01), (Quantization::Sq4, 0.08)] {
            let cb = Codebook::train(kind, dim, rows.len(), &|i| Some(&rows[i][..]));
            let codes: Vec<Vec<u8>> = rows
                .iter()
                .map(|v| {
                    let mut c = vec![0u8; cb.code_bytes()];
                    cb.encode(v, &mut c);
                    c
                })
                .collect();
            for metric in [Metric::Cosine, Metric::Dot, Metric::L2] {
                for q in &queries {
                    let qc = cb.prepare(q, metric);
                    for (v, c) in rows.iter().zip(&codes).take(200) {
                        let exact = metric.rank(q, v);
                        let est = qc.rank(c, dot(v, v));
                        // L2 ranks carry the dot product twice.
                        let tol = if metric == Metric::L2 { 2.0 * tol } else { tol };
                        assert!(
                            (exact - est).abs() < tol,
                            "{kind:?} {metric:?}: exact {exact}, estimate {est}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn training_ignores_row_order_and_clamps_outliers() {
        let dim = 64;
        let mut rows = unit_rows(3000, dim, 5);
        for v in rows.iter_mut().take(2) {
            v[0] = 50.0; // far outside every other value
        }
        let fwd = Codebook::train(Quantization::Sq8, dim, rows.len(), &|i| Some(&rows[i][..]));
        let rev: Vec<Vec<f32>> = rows.iter().rev().cloned().collect();
        let bwd = Codebook::train(Quantization::Sq8, dim, rev.len(), &|i| Some(&rev[i][..]));
        assert_eq!(fwd, bwd);
        assert!(
            fwd.lo[0] + fwd.step[0] * 255.0 < 1.0,
            "outliers stretched the range"
        );
    }
}
