//! Test vectors and the exact reference: unit vectors, vectors at a given
//! cosine to another, clusters of embedding-like vectors, and brute-force
//! top-k by cosine distance.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;

/// `dim` standard-normal values.
pub fn gauss(rng: &mut impl Rng, dim: usize) -> Vec<f32> {
    (0..dim)
        .map(|_| rng.sample::<f32, _>(StandardNormal))
        .collect()
}

pub fn unit(mut v: Vec<f32>) -> Vec<f32> {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.iter_mut().for_each(|x| *x /= n);
    v
}

/// A uniformly random unit vector.
pub fn random_unit(rng: &mut impl Rng, dim: usize) -> Vec<f32> {
    unit(gauss(rng, dim))
}

/// A random unit vector at cosine `c` to the unit vector `u`.
pub fn at_cosine(rng: &mut impl Rng, u: &[f32], c: f32) -> Vec<f32> {
    let g = gauss(rng, u.len());
    let d: f32 = g.iter().zip(u).map(|(a, b)| a * b).sum();
    let orth = unit(g.iter().zip(u).map(|(a, b)| a - d * b).collect());
    let s = (1.0 - c * c).sqrt();
    unit(u.iter().zip(&orth).map(|(a, b)| c * a + s * b).collect())
}

pub fn cosine_distance(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na = a.iter().map(|x| x * x).sum::<f32>().sqrt();
    let nb = b.iter().map(|x| x * x).sum::<f32>().sqrt();
    1.0 - dot / (na * nb)
}

/// Unit vectors scattered around random unit centres, like embeddings of
/// planted series: a sample is `unit(centre + spread * noise / sqrt(dim))`.
pub struct Clusters {
    centres: Vec<Vec<f32>>,
    spread: f32,
}

impl Clusters {
    pub fn new(rng: &mut impl Rng, count: usize, dim: usize, spread: f32) -> Clusters {
        let centres = (0..count).map(|_| random_unit(rng, dim)).collect();
        Clusters { centres, spread }
    }

    /// A vector around a random centre.
    pub fn sample(&self, rng: &mut impl Rng) -> Vec<f32> {
        let c = &self.centres[rng.random_range(0..self.centres.len())];
        let noise = gauss(rng, c.len());
        let root = (c.len() as f32).sqrt();
        unit(
            c.iter()
                .zip(&noise)
                .map(|(c, e)| c + self.spread * e / root)
                .collect(),
        )
    }
}

/// `n` vectors of `dim` around `clusters` random centres (unit-normalised
/// so cosine and L2 agree), all drawn from `seed`.
pub fn clustered(n: usize, dim: usize, clusters: usize, spread: f32, seed: u64) -> Vec<Vec<f32>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let c = Clusters::new(&mut rng, clusters, dim, spread);
    (0..n).map(|_| c.sample(&mut rng)).collect()
}

/// The exact reference: the `k` items nearest to `q` by cosine distance,
/// nearest first, with their distances.
pub fn exact_top_k<'a, T>(
    q: &[f32],
    items: impl IntoIterator<Item = (T, &'a [f32])>,
    k: usize,
) -> Vec<(f32, T)> {
    let mut d: Vec<(f32, T)> = items
        .into_iter()
        .map(|(t, v)| (cosine_distance(q, v), t))
        .collect();
    d.sort_by(|a, b| a.0.total_cmp(&b.0));
    d.truncate(k);
    d
}
