//! f16 storage of a sealed segment's vectors (half the bytes of f32) and the
//! kernels that rank an f32 query against an f16 row.
//!
//! Rows are kept as raw IEEE half bits (`u16`), which the memory map reads
//! in place; the AVX2 kernel widens eight at a time with F16C
//! (`vcvtph2ps`) and accumulates in f32, so a rank costs about what an f32
//! rank costs while reading half the bytes. Encoding rounds to nearest and
//! clamps to the f16 range (±65504): embeddings (unit vectors, or values of
//! a few units) lose about 3 significant decimal digits, nothing more.

use half::f16;
use serde::{Deserialize, Serialize};

use crate::index::distance::Metric;
use crate::pb;

/// How a collection's sealed segments store their vectors.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VectorStorage {
    /// 4 bytes per dimension: distances exact.
    #[default]
    F32,
    /// 2 bytes per dimension: distances computed from f16-rounded vectors.
    F16,
}

impl VectorStorage {
    pub fn from_pb(v: i32) -> Option<VectorStorage> {
        Some(match pb::VectorStorage::try_from(v).ok()? {
            pb::VectorStorage::F32 => VectorStorage::F32,
            pb::VectorStorage::F16 => VectorStorage::F16,
        })
    }

    pub fn to_pb(self) -> pb::VectorStorage {
        match self {
            VectorStorage::F32 => pb::VectorStorage::F32,
            VectorStorage::F16 => pb::VectorStorage::F16,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            VectorStorage::F32 => "f32",
            VectorStorage::F16 => "f16",
        }
    }
}

/// `v` as f16 bits into `out` (same length), clamped to the f16 range.
pub fn encode(v: &[f32], out: &mut [u16]) {
    let max = f16::MAX.to_f32();
    for (o, x) in out.iter_mut().zip(v) {
        *o = f16::from_f32(x.clamp(-max, max)).to_bits();
    }
}

/// The f32 values of a row of f16 bits.
pub fn decode(row: &[u16]) -> Vec<f32> {
    row.iter().map(|&b| f16::from_bits(b).to_f32()).collect()
}

/// [`Metric::rank`] of an f32 query against an f16 row.
#[inline]
pub fn rank(metric: Metric, q: &[f32], x: &[u16]) -> f32 {
    match metric {
        Metric::Cosine => (1.0 - dot(q, x)).max(0.0),
        Metric::Dot => -dot(q, x),
        Metric::L2 => l2_squared(q, x),
        Metric::Hamming => f32::INFINITY,
    }
}

#[cfg(target_arch = "x86_64")]
#[inline]
fn has_f16c() -> bool {
    std::arch::is_x86_feature_detected!("avx2")
        && std::arch::is_x86_feature_detected!("fma")
        && std::arch::is_x86_feature_detected!("f16c")
}

/// Inner product of an f32 and an f16 vector.
#[inline]
pub fn dot(a: &[f32], b: &[u16]) -> f32 {
    debug_assert_eq!(a.len(), b.len());
    #[cfg(target_arch = "x86_64")]
    {
        if has_f16c() {
            // SAFETY: the CPU supports AVX2, FMA and F16C (checked just above).
            return unsafe { x86::dot(a, b) };
        }
    }
    dot_portable(a, b)
}

/// Squared Euclidean distance between an f32 and an f16 vector.
#[inline]
pub fn l2_squared(a: &[f32], b: &[u16]) -> f32 {
    debug_assert_eq!(a.len(), b.len());
    #[cfg(target_arch = "x86_64")]
    {
        if has_f16c() {
            // SAFETY: the CPU supports AVX2, FMA and F16C (checked just above).
            return unsafe { x86::l2_squared(a, b) };
        }
    }
    l2_squared_portable(a, b)
}

pub fn dot_portable(a: &[f32], b: &[u16]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, &y)| x * f16::from_bits(y).to_f32())
        .sum()
}

pub fn l2_squared_portable(a: &[f32], b: &[u16]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, &y)| {
            let d = x - f16::from_bits(y).to_f32();
            d * d
        })
        .sum()
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    #[target_feature(enable = "avx2,fma")]
    fn hsum(v: __m256) -> f32 {
        let lo = _mm256_castps256_ps128(v);
        let hi = _mm256_extractf128_ps(v, 1);
        let s = _mm_add_ps(lo, hi);
        let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        let s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 0x55));
        _mm_cvtss_f32(s)
    }

    /// Eight f16 at `p` widened to f32.
    ///
    /// # Safety
    /// `p..p+8` must be readable; the CPU must support F16C.
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn load8(p: *const u16) -> __m256 {
        // SAFETY: the caller guarantees eight readable u16 at p.
        _mm256_cvtph_ps(unsafe { _mm_loadu_si128(p as *const __m128i) })
    }

    /// # Safety
    /// The CPU must support AVX2, FMA and F16C.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub unsafe fn dot(a: &[f32], b: &[u16]) -> f32 {
        let n = a.len().min(b.len());
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let mut acc = [_mm256_setzero_ps(); 4];
        let mut i = 0;
        // Four independent FMA chains, as in the f32 kernel.
        // SAFETY (all loads): i + 32 resp. i + 8 <= n bounds every read.
        while i + 32 <= n {
            for (j, s) in acc.iter_mut().enumerate() {
                let o = i + 8 * j;
                *s = unsafe { _mm256_fmadd_ps(_mm256_loadu_ps(pa.add(o)), load8(pb.add(o)), *s) };
            }
            i += 32;
        }
        while i + 8 <= n {
            acc[0] =
                unsafe { _mm256_fmadd_ps(_mm256_loadu_ps(pa.add(i)), load8(pb.add(i)), acc[0]) };
            i += 8;
        }
        let sum = _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]));
        hsum(sum) + super::dot_portable(&a[i..n], &b[i..n])
    }

    /// # Safety
    /// The CPU must support AVX2, FMA and F16C.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub unsafe fn l2_squared(a: &[f32], b: &[u16]) -> f32 {
        let n = a.len().min(b.len());
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let mut acc = [_mm256_setzero_ps(); 4];
        let mut i = 0;
        // SAFETY (all loads): i + 32 resp. i + 8 <= n bounds every read.
        while i + 32 <= n {
            for (j, s) in acc.iter_mut().enumerate() {
                let o = i + 8 * j;
                let d = unsafe { _mm256_sub_ps(_mm256_loadu_ps(pa.add(o)), load8(pb.add(o))) };
                *s = _mm256_fmadd_ps(d, d, *s);
            }
            i += 32;
        }
        while i + 8 <= n {
            let d = unsafe { _mm256_sub_ps(_mm256_loadu_ps(pa.add(i)), load8(pb.add(i))) };
            acc[0] = _mm256_fmadd_ps(d, d, acc[0]);
            i += 8;
        }
        let sum = _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]));
        hsum(sum) + super::l2_squared_portable(&a[i..n], &b[i..n])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vecs(n: usize, seed: u32) -> (Vec<f32>, Vec<f32>) {
        let mut s = seed;
        let mut next = || {
            s = s.wrapping_mul(1664525).wrapping_add(1013904223);
            (s >> 8) as f32 / (1u32 << 24) as f32 - 0.5
        };
        let a = (0..n).map(|_| next()).collect();
        let b = (0..n).map(|_| next()).collect();
        (a, b)
    }

    #[test]
    fn kernels_agree_with_f32_over_the_decoded_row_for_all_tails() {
        for n in [0, 1, 7, 8, 9, 31, 32, 33, 100, 512, 513] {
            let (a, b) = vecs(n, n as u32 + 3);
            let mut bits = vec![0u16; n];
            encode(&b, &mut bits);
            let wide = decode(&bits);
            let close = |got: f32, want: f32| (got - want).abs() <= 1e-4 * (1.0 + want.abs());
            let (d, l) = (
                crate::index::distance::dot(&a, &wide),
                crate::index::distance::l2_squared(&a, &wide),
            );
            for (got, want) in [
                (dot(&a, &bits), d),
                (dot_portable(&a, &bits), d),
                (l2_squared(&a, &bits), l),
                (l2_squared_portable(&a, &bits), l),
            ] {
                assert!(close(got, want), "n={n}: got {got}, want {want}");
            }
            // The rounding itself stays within f16's precision.
            for (x, y) in b.iter().zip(&wide) {
                assert!((x - y).abs() <= 1e-3 * (1.0 + x.abs()), "{x} -> {y}");
            }
        }
    }

    #[test]
    fn values_beyond_the_f16_range_are_clamped_not_infinite() {
        let mut bits = [0u16; 3];
        encode(&[1e6, -1e6, 1.5], &mut bits);
        assert_eq!(decode(&bits), vec![65504.0, -65504.0, 1.5]);
    }
}
