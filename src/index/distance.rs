//! Metrics and the distance kernels behind them.
//!
//! One set of kernels serves the in-memory graph, the memory-mapped graph of
//! sealed segments and exact scans. `dot` and `l2_squared` dispatch at run time to AVX2+FMA
//! where the CPU has it and fall back to a portable loop that LLVM vectorises
//! for the baseline target.

use serde::{Deserialize, Serialize};

use crate::pb;

/// How distances between vectors of a collection are measured. Lower is closer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Metric {
    /// `1 - cos(a, b)`; vectors are normalised on write so this is `1 - a·b`.
    Cosine,
    /// `-a·b`.
    Dot,
    /// Euclidean distance.
    L2,
    /// Bit count of `a XOR b`, over binary codes (perceptual hashes); see
    /// [`crate::index::hamming`]. Codes are never f32 vectors, so the f32
    /// kernels below do not apply to it.
    Hamming,
}

impl Metric {
    pub fn from_pb(m: i32) -> Option<Metric> {
        match pb::Metric::try_from(m).ok()? {
            pb::Metric::Cosine => Some(Metric::Cosine),
            pb::Metric::Dot => Some(Metric::Dot),
            pb::Metric::L2 => Some(Metric::L2),
            pb::Metric::Hamming => Some(Metric::Hamming),
            pb::Metric::Unspecified => None,
        }
    }

    pub fn to_pb(self) -> pb::Metric {
        match self {
            Metric::Cosine => pb::Metric::Cosine,
            Metric::Dot => pb::Metric::Dot,
            Metric::L2 => pb::Metric::L2,
            Metric::Hamming => pb::Metric::Hamming,
        }
    }

    /// Brings a validated vector into the form it is stored and compared in.
    pub fn prepare(self, v: &mut [f32]) {
        if self == Metric::Cosine {
            let n = dot(v, v).sqrt();
            if n > 0.0 {
                let inv = 1.0 / n;
                v.iter_mut().for_each(|x| *x *= inv);
            }
        }
    }

    /// The distance a client sees (README, "Distances"): lower is closer.
    #[inline]
    pub fn distance(self, a: &[f32], b: &[f32]) -> f32 {
        self.from_rank(self.rank(a, b))
    }

    /// A cheaper value with the same order as [`Metric::distance`]: squared
    /// L2 instead of L2. Graph search and exact scans compare these.
    #[inline]
    pub fn rank(self, a: &[f32], b: &[f32]) -> f32 {
        match self {
            // Rounding can push 1 - a·b of (near-)identical unit vectors a
            // hair below zero; clamp so "lower is closer" holds from 0.
            Metric::Cosine => (1.0 - dot(a, b)).max(0.0),
            Metric::Dot => -dot(a, b),
            Metric::L2 => l2_squared(a, b),
            // No f32 vector is stored or searched under HAMMING: nothing
            // is close (rather than a panic on a path that cannot occur).
            Metric::Hamming => f32::INFINITY,
        }
    }

    /// Turns a [`Metric::rank`] value into the client-facing distance.
    #[inline]
    pub fn from_rank(self, r: f32) -> f32 {
        match self {
            Metric::L2 => r.sqrt(),
            _ => r,
        }
    }
}

/// Inner product.
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    debug_assert_eq!(a.len(), b.len());
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            // SAFETY: the CPU supports AVX2 and FMA (checked just above).
            return unsafe { x86::dot_avx2(a, b) };
        }
    }
    dot_portable(a, b)
}

/// Squared Euclidean distance.
#[inline]
pub fn l2_squared(a: &[f32], b: &[f32]) -> f32 {
    debug_assert_eq!(a.len(), b.len());
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            // SAFETY: the CPU supports AVX2 and FMA (checked just above).
            return unsafe { x86::l2_squared_avx2(a, b) };
        }
    }
    l2_squared_portable(a, b)
}

/// Portable inner product: eight independent lanes so LLVM can vectorise
/// without reassociating floats.
pub fn dot_portable(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0f32; 8];
    let ca = a.chunks_exact(8);
    let cb = b.chunks_exact(8);
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for i in 0..8 {
            acc[i] += x[i] * y[i];
        }
    }
    let mut s: f32 = acc.iter().sum();
    for (x, y) in ra.iter().zip(rb) {
        s += x * y;
    }
    s
}

/// Portable squared L2, same structure as [`dot_portable`].
pub fn l2_squared_portable(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0f32; 8];
    let ca = a.chunks_exact(8);
    let cb = b.chunks_exact(8);
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for i in 0..8 {
            let d = x[i] - y[i];
            acc[i] += d * d;
        }
    }
    let mut s: f32 = acc.iter().sum();
    for (x, y) in ra.iter().zip(rb) {
        let d = x - y;
        s += d * d;
    }
    s
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    #[target_feature(enable = "avx2,fma")]
    unsafe fn hsum(v: __m256) -> f32 {
        let lo = _mm256_castps256_ps128(v);
        let hi = _mm256_extractf128_ps(v, 1);
        let s = _mm_add_ps(lo, hi);
        let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        let s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 0x55));
        _mm_cvtss_f32(s)
    }

    /// # Safety
    /// The CPU must support AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn dot_avx2(a: &[f32], b: &[f32]) -> f32 {
        let n = a.len().min(b.len());
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let mut acc0 = _mm256_setzero_ps();
        let mut acc1 = _mm256_setzero_ps();
        let mut acc2 = _mm256_setzero_ps();
        let mut acc3 = _mm256_setzero_ps();
        let mut i = 0;
        // Four independent sums: one FMA chain waits ~4 cycles per step, so
        // two chains left the FMA units half idle on cached data (graph
        // builds compare against the same vectors over and over).
        // SAFETY (all loads): i + 32, i + 16 resp. i + 8 <= n bound every read.
        while i + 32 <= n {
            unsafe {
                acc0 =
                    _mm256_fmadd_ps(_mm256_loadu_ps(pa.add(i)), _mm256_loadu_ps(pb.add(i)), acc0);
                acc1 = _mm256_fmadd_ps(
                    _mm256_loadu_ps(pa.add(i + 8)),
                    _mm256_loadu_ps(pb.add(i + 8)),
                    acc1,
                );
                acc2 = _mm256_fmadd_ps(
                    _mm256_loadu_ps(pa.add(i + 16)),
                    _mm256_loadu_ps(pb.add(i + 16)),
                    acc2,
                );
                acc3 = _mm256_fmadd_ps(
                    _mm256_loadu_ps(pa.add(i + 24)),
                    _mm256_loadu_ps(pb.add(i + 24)),
                    acc3,
                );
            }
            i += 32;
        }
        acc0 = _mm256_add_ps(acc0, acc2);
        acc1 = _mm256_add_ps(acc1, acc3);
        while i + 16 <= n {
            unsafe {
                acc0 =
                    _mm256_fmadd_ps(_mm256_loadu_ps(pa.add(i)), _mm256_loadu_ps(pb.add(i)), acc0);
                acc1 = _mm256_fmadd_ps(
                    _mm256_loadu_ps(pa.add(i + 8)),
                    _mm256_loadu_ps(pb.add(i + 8)),
                    acc1,
                );
            }
            i += 16;
        }
        while i + 8 <= n {
            unsafe {
                acc0 =
                    _mm256_fmadd_ps(_mm256_loadu_ps(pa.add(i)), _mm256_loadu_ps(pb.add(i)), acc0);
            }
            i += 8;
        }
        let mut s = unsafe { hsum(_mm256_add_ps(acc0, acc1)) };
        while i < n {
            s += a[i] * b[i];
            i += 1;
        }
        s
    }

    /// # Safety
    /// The CPU must support AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn l2_squared_avx2(a: &[f32], b: &[f32]) -> f32 {
        let n = a.len().min(b.len());
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let mut acc0 = _mm256_setzero_ps();
        let mut acc1 = _mm256_setzero_ps();
        let mut i = 0;
        while i + 16 <= n {
            unsafe {
                let d0 = _mm256_sub_ps(_mm256_loadu_ps(pa.add(i)), _mm256_loadu_ps(pb.add(i)));
                let d1 = _mm256_sub_ps(
                    _mm256_loadu_ps(pa.add(i + 8)),
                    _mm256_loadu_ps(pb.add(i + 8)),
                );
                acc0 = _mm256_fmadd_ps(d0, d0, acc0);
                acc1 = _mm256_fmadd_ps(d1, d1, acc1);
            }
            i += 16;
        }
        while i + 8 <= n {
            unsafe {
                let d0 = _mm256_sub_ps(_mm256_loadu_ps(pa.add(i)), _mm256_loadu_ps(pb.add(i)));
                acc0 = _mm256_fmadd_ps(d0, d0, acc0);
            }
            i += 8;
        }
        let mut s = unsafe { hsum(_mm256_add_ps(acc0, acc1)) };
        while i < n {
            let d = a[i] - b[i];
            s += d * d;
            i += 1;
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vecs(n: usize, seed: u32) -> (Vec<f32>, Vec<f32>) {
        // Small deterministic LCG: no rand dependency needed for kernels.
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
    fn kernels_agree_with_naive_for_all_tail_lengths() {
        for n in [0, 1, 7, 8, 9, 15, 16, 17, 31, 64, 100, 512, 513] {
            let (a, b) = vecs(n, n as u32 + 1);
            let naive_dot: f64 = a
                .iter()
                .zip(&b)
                .map(|(x, y)| (*x as f64) * (*y as f64))
                .sum();
            let naive_l2: f64 = a
                .iter()
                .zip(&b)
                .map(|(x, y)| ((*x - *y) as f64).powi(2))
                .sum();
            for (got, want) in [
                (dot(&a, &b), naive_dot),
                (dot_portable(&a, &b), naive_dot),
                (l2_squared(&a, &b), naive_l2),
                (l2_squared_portable(&a, &b), naive_l2),
            ] {
                assert!(
                    (got as f64 - want).abs() <= 1e-4 * (1.0 + want.abs()),
                    "n={n}: got {got}, want {want}"
                );
            }
        }
    }

    #[test]
    fn cosine_of_identical_unit_vectors_is_never_negative() {
        let (mut a, _) = vecs(512, 7);
        Metric::Cosine.prepare(&mut a);
        assert!(Metric::Cosine.distance(&a, &a) >= 0.0);
        assert!(Metric::Cosine.distance(&a, &a) < 1e-5);
    }

    #[test]
    fn l2_distance_is_euclidean() {
        assert_eq!(Metric::L2.distance(&[0.0, 0.0], &[3.0, 4.0]), 5.0);
    }
}
