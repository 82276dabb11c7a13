//! The exact reference beside vidx in `vidx bench link`: exact k-NN (brute
//! force over every pair) and plain single linkage, image only and image +
//! face, each at the thresholds that turn out best against the truth (in
//! hindsight: the reference is told the answer, vidx is not).
//!
//! Image edges join media within the image threshold among each media's k
//! nearest media; face edges join the media of two faces within the face
//! threshold among each face's k nearest faces (faces of the same media left
//! out). Clusters are the connected components.

use rayon::prelude::*;
use serde::Serialize;

use crate::index::distance::dot;
use crate::investigate::union::UnionFind;
use crate::tools::link_eval::{Scores, scores};

/// Neighbours per point, as in the reference ("exact 10-NN").
pub const REFERENCE_K: usize = 10;

/// Media-level candidate edges of the reference: (a, b, distance), a < b,
/// the smallest distance per pair, by ascending distance.
#[derive(Default)]
pub struct RefEdges {
    pub image: Vec<(u32, u32, f32)>,
    pub face: Vec<(u32, u32, f32)>,
}

/// One reference result: the thresholds that scored best and the scores.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct RefBest {
    pub image_threshold: f32,
    /// `None` for the image-only reference.
    pub face_threshold: Option<f32>,
    #[serde(flatten)]
    pub scores: Scores,
}

fn unit(v: &[f32]) -> Vec<f32> {
    let n = dot(v, v).sqrt();
    if n > 0.0 {
        v.iter().map(|x| x / n).collect()
    } else {
        v.to_vec()
    }
}

/// The exact `k` nearest rows of each row by cosine distance, rows of the
/// same `group` left out: (row, other, distance).
fn exact_knn(rows: &[Vec<f32>], group: &[u32], k: usize) -> Vec<(u32, u32, f32)> {
    let rows: Vec<Vec<f32>> = rows.iter().map(|r| unit(r)).collect();
    (0..rows.len())
        .into_par_iter()
        .flat_map_iter(|i| {
            let mut best: Vec<(f32, u32)> = Vec::with_capacity(k + 1);
            for (j, r) in rows.iter().enumerate() {
                if group[j] == group[i] {
                    continue;
                }
                let d = 1.0 - dot(&rows[i], r);
                if best.len() < k || d < best[best.len() - 1].0 {
                    let at = best.partition_point(|x| x.0 <= d);
                    best.insert(at, (d, j as u32));
                    best.truncate(k);
                }
            }
            best.into_iter().map(move |(d, j)| (i as u32, j, d))
        })
        .collect()
}

/// Media edges from row edges: each row is a point of media `media[row]`.
fn media_edges(row_edges: Vec<(u32, u32, f32)>, media: &[u32]) -> Vec<(u32, u32, f32)> {
    let mut e: Vec<(u32, u32, f32)> = row_edges
        .into_iter()
        .map(|(i, j, d)| {
            let (a, b) = (media[i as usize], media[j as usize]);
            (a.min(b), a.max(b), d)
        })
        .filter(|(a, b, _)| a != b)
        .collect();
    e.sort_by(|x, y| (x.0, x.1).cmp(&(y.0, y.1)).then(x.2.total_cmp(&y.2)));
    e.dedup_by_key(|x| (x.0, x.1));
    e.sort_by(|x, y| x.2.total_cmp(&y.2));
    e
}

/// The reference's edges: `images[m]` is media m's image vector, `faces`
/// are (media, face vector).
pub fn exact_edges(images: &[Vec<f32>], faces: &[(u32, Vec<f32>)], k: usize) -> RefEdges {
    let ids: Vec<u32> = (0..images.len() as u32).collect();
    let image = media_edges(exact_knn(images, &ids, k), &ids);
    let face_media: Vec<u32> = faces.iter().map(|f| f.0).collect();
    let face_rows: Vec<Vec<f32>> = faces.iter().map(|f| f.1.clone()).collect();
    let face = media_edges(exact_knn(&face_rows, &face_media, k), &face_media);
    RefEdges { image, face }
}

/// Cluster labels of a union-find over `n` media.
fn labels(uf: &mut UnionFind, n: usize) -> Vec<u32> {
    (0..n as u32).map(|m| uf.find(m)).collect()
}

/// Single linkage swept over `image_grid` (ascending) on top of the face
/// edges within `face_threshold` (none if `None`); the best by B-cubed F1.
fn sweep(
    edges: &RefEdges,
    truth: &[u32],
    image_grid: &[f32],
    face_threshold: Option<f32>,
) -> RefBest {
    let n = truth.len();
    let mut uf = UnionFind::new(n);
    if let Some(tf) = face_threshold {
        for &(a, b, _) in edges.face.iter().take_while(|e| e.2 <= tf) {
            uf.union(a, b);
        }
    }
    let mut best = RefBest::default();
    let mut next = 0;
    for &t in image_grid {
        while next < edges.image.len() && edges.image[next].2 <= t {
            uf.union(edges.image[next].0, edges.image[next].1);
            next += 1;
        }
        let s = scores(truth, &labels(&mut uf, n));
        if s.b3_f1 > best.scores.b3_f1 {
            best = RefBest {
                image_threshold: t,
                face_threshold,
                scores: s,
            };
        }
    }
    best
}

/// A grid of thresholds from `lo` to `hi` in `step`s.
fn grid(lo: f32, hi: f32, step: f32) -> Vec<f32> {
    let n = ((hi - lo) / step).round() as usize;
    (0..=n).map(|i| lo + step * i as f32).collect()
}

/// The best image-only single linkage (image thresholds 0.01..1.00).
pub fn best_image_only(edges: &RefEdges, truth: &[u32]) -> RefBest {
    sweep(edges, truth, &grid(0.01, 1.0, 0.01), None)
}

/// The best image + face single linkage (image 0.02..1.00 × face
/// 0.05..1.00), in parallel over the face thresholds.
pub fn best_image_face(edges: &RefEdges, truth: &[u32]) -> RefBest {
    let image = grid(0.02, 1.0, 0.02);
    grid(0.05, 1.0, 0.025)
        .into_par_iter()
        .map(|tf| sweep(edges, truth, &image, Some(tf)))
        .reduce(RefBest::default, |a, b| {
            if b.scores.b3_f1 > a.scores.b3_f1 {
                b
            } else {
                a
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two tight pairs far apart, and a third pair joined only by faces:
    /// image-only single linkage cannot find the third, image + face can.
    #[test]
    fn reference_finds_the_best_thresholds() {
        let e = |v: [f32; 3]| v.to_vec();
        let images = vec![
            e([1.0, 0.0, 0.0]),
            e([0.99, 0.1, 0.0]),
            e([0.0, 1.0, 0.0]),
            e([0.1, 0.99, 0.0]),
            e([0.0, 0.0, 1.0]),
            e([0.7, -0.7, 0.1]),
        ];
        let faces = vec![(4, e([1.0, 0.0, 0.0])), (5, e([0.98, 0.05, 0.0]))];
        let truth = [0, 0, 1, 1, 2, 2];
        let edges = exact_edges(&images, &faces, 3);
        assert_eq!(edges.face.len(), 1);
        let img = best_image_only(&edges, &truth);
        assert!(img.scores.b3_f1 < 1.0, "{img:?}");
        assert!(img.image_threshold < 0.5, "{img:?}");
        let both = best_image_face(&edges, &truth);
        assert!((both.scores.b3_f1 - 1.0).abs() < 1e-9, "{both:?}");
        assert!(both.face_threshold.is_some());
    }
}
