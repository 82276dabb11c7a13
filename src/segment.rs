//! The mutable segment: the in-memory part of a collection that takes writes.
//!
//! It pairs an `hnsw_rs` graph with plain columns (ids, vectors, metadata, a
//! liveness flag) addressed by *offset*, the graph's data id. A point is
//! written in two steps so searches never wait for graph construction:
//! [`MutableSegment::index`] inserts vectors into the graph without holding
//! the column lock, then [`MutableSegment::commit`] appends the columns and
//! flips liveness under a short write lock. Offsets the graph returns before
//! their commit are simply not live yet. Deletes and replacements are
//! tombstones (liveness off); hnsw_rs cannot delete.

use std::collections::HashMap;

use hnsw_rs::prelude::Hnsw;
use parking_lot::RwLock;

use crate::distance::{GraphDistance, Metric};
use crate::pb;

/// hnsw_rs's layer cap; 16 is also the only value its own dump supports.
const MAX_LAYERS: usize = 16;

/// A point ready to be stored: validated, vector prepared for the metric.
#[derive(Clone, Debug)]
pub struct Prepared {
    pub id: String,
    pub vector: Vec<f32>,
    pub metadata: pb::Metadata,
}

/// One search hit inside a segment.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SegmentHit {
    pub offset: usize,
    /// [`Metric::rank`] value (squared for L2).
    pub rank: f32,
}

#[derive(Default)]
struct Columns {
    ids: Vec<String>,
    vectors: Vec<f32>,
    metadata: Vec<pb::Metadata>,
    live: Vec<bool>,
    by_id: HashMap<String, usize>,
    /// Bytes of heap strings in ids and metadata, for memory accounting.
    string_bytes: usize,
}

pub struct MutableSegment {
    dim: usize,
    metric: Metric,
    m: usize,
    graph: Hnsw<'static, f32, GraphDistance>,
    cols: RwLock<Columns>,
}

impl MutableSegment {
    pub fn new(dim: usize, metric: Metric, m: usize, ef_construction: usize) -> Self {
        MutableSegment {
            dim,
            metric,
            m,
            graph: Hnsw::new(
                m,
                10_000,
                MAX_LAYERS,
                ef_construction,
                GraphDistance(metric),
            ),
            cols: RwLock::new(Columns::default()),
        }
    }

    /// Next offset to hand out; the caller serialises writers.
    pub fn next_offset(&self) -> usize {
        self.cols.read().ids.len()
    }

    /// Inserts vectors into the graph at offsets `base..base + n`. Runs the
    /// inserts on rayon's pool for larger batches. Does not make them visible.
    pub fn index(&self, base: usize, points: &[Prepared]) {
        if points.len() >= 32 {
            let batch: Vec<(&[f32], usize)> = points
                .iter()
                .enumerate()
                .map(|(i, p)| (p.vector.as_slice(), base + i))
                .collect();
            self.graph.parallel_insert_slice(&batch);
        } else {
            for (i, p) in points.iter().enumerate() {
                self.graph.insert_slice((&p.vector, base + i));
            }
        }
    }

    /// Appends the columns of points already [`index`](Self::index)ed at
    /// `base..`, makes them live and tombstones the versions they replace.
    pub fn commit(&self, base: usize, points: Vec<Prepared>) {
        let mut c = self.cols.write();
        debug_assert_eq!(c.ids.len(), base);
        for (i, p) in points.into_iter().enumerate() {
            let offset = base + i;
            if let Some(old) = c.by_id.insert(p.id.clone(), offset) {
                c.live[old] = false;
            }
            c.string_bytes += p.id.len() * 2 + metadata_bytes(&p.metadata);
            c.ids.push(p.id);
            c.vectors.extend_from_slice(&p.vector);
            c.metadata.push(p.metadata);
            c.live.push(true);
        }
    }

    /// Tombstones the given ids; returns how many were live.
    pub fn delete(&self, ids: &[String]) -> usize {
        let mut c = self.cols.write();
        let mut n = 0;
        for id in ids {
            if let Some(off) = c.by_id.remove(id) {
                c.live[off] = false;
                n += 1;
            }
        }
        n
    }

    pub fn live_count(&self) -> usize {
        self.cols.read().by_id.len()
    }

    pub fn contains(&self, id: &str) -> bool {
        self.cols.read().by_id.contains_key(id)
    }

    /// The stored point with this id, if live.
    pub fn get(&self, id: &str) -> Option<pb::Point> {
        let c = self.cols.read();
        let off = *c.by_id.get(id)?;
        Some(pb::Point {
            id: c.ids[off].clone(),
            vector: c.vectors[off * self.dim..(off + 1) * self.dim].to_vec(),
            metadata: Some(c.metadata[off].clone()),
        })
    }

    /// Offset and a copy of the vector of a live id.
    pub fn vector_of(&self, id: &str) -> Option<(usize, Vec<f32>)> {
        let c = self.cols.read();
        let off = *c.by_id.get(id)?;
        Some((
            off,
            c.vectors[off * self.dim..(off + 1) * self.dim].to_vec(),
        ))
    }

    /// Id and metadata at an offset.
    pub fn describe(&self, offset: usize) -> (String, pb::Metadata) {
        let c = self.cols.read();
        (c.ids[offset].clone(), c.metadata[offset].clone())
    }

    /// Approximate k-NN over live points, `exclude` left out. Ascending rank.
    pub fn search(
        &self,
        query: &[f32],
        k: usize,
        ef: usize,
        exclude: Option<usize>,
    ) -> Vec<SegmentHit> {
        let c = self.cols.read();
        if c.by_id.is_empty() {
            return Vec::new();
        }
        let keep =
            |off: &usize| Some(*off) != exclude && c.live.get(*off).copied().unwrap_or(false);
        let found = self.graph.search_filter(query, k, ef.max(k), Some(&keep));
        let mut hits: Vec<SegmentHit> = found
            .into_iter()
            .filter(|n| keep(&n.d_id))
            .map(|n| SegmentHit {
                offset: n.d_id,
                // Recomputed: the graph's value is the order-preserving
                // transform, not the metric's own rank.
                rank: self.metric.rank(
                    query,
                    &c.vectors[n.d_id * self.dim..(n.d_id + 1) * self.dim],
                ),
            })
            .collect();
        hits.sort_by(|a, b| a.rank.total_cmp(&b.rank));
        hits.truncate(k);
        hits
    }

    /// Exact k-NN by scanning every live point. The reference for recall
    /// tests and the fallback for tiny segments.
    pub fn exact_search(&self, query: &[f32], k: usize, exclude: Option<usize>) -> Vec<SegmentHit> {
        let c = self.cols.read();
        let mut hits: Vec<SegmentHit> = c
            .vectors
            .chunks_exact(self.dim)
            .enumerate()
            .filter(|(off, _)| c.live[*off] && Some(*off) != exclude)
            .map(|(offset, v)| SegmentHit {
                offset,
                rank: self.metric.rank(query, v),
            })
            .collect();
        let k = k.min(hits.len());
        if k == 0 {
            return Vec::new();
        }
        hits.select_nth_unstable_by(k - 1, |a, b| a.rank.total_cmp(&b.rank));
        hits.truncate(k);
        hits.sort_by(|a, b| a.rank.total_cmp(&b.rank));
        hits
    }

    /// Approximate heap bytes: our columns, hnsw_rs's own vector copies and
    /// its neighbour lists (~ (layer-0 2m + upper m) links of ~16 bytes each).
    pub fn memory_bytes(&self) -> u64 {
        let c = self.cols.read();
        let n = c.ids.len();
        let vectors = (c.vectors.capacity() * 4) as u64;
        let graph_vectors = (n * self.dim * 4) as u64;
        let graph_links = (n * 3 * self.m * 16) as u64;
        let columns = (n
            * (std::mem::size_of::<String>() * 2 + std::mem::size_of::<pb::Metadata>() + 1)
            + c.string_bytes) as u64;
        vectors + graph_vectors + graph_links + columns
    }
}

fn metadata_bytes(m: &pb::Metadata) -> usize {
    m.media_id.len()
        + m.upload_id.len()
        + m.case_id.len()
        + m.country.len()
        + m.agency.len()
        + m.series_label.len()
        + m.tags
            .iter()
            .map(|t| t.len() + std::mem::size_of::<String>())
            .sum::<usize>()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pt(id: &str, v: &[f32]) -> Prepared {
        let mut vector = v.to_vec();
        Metric::Cosine.prepare(&mut vector);
        Prepared {
            id: id.into(),
            vector,
            metadata: pb::Metadata::default(),
        }
    }

    fn put(s: &MutableSegment, pts: Vec<Prepared>) {
        let base = s.next_offset();
        s.index(base, &pts);
        s.commit(base, pts);
    }

    #[test]
    fn replace_delete_and_exclude() {
        let s = MutableSegment::new(2, Metric::Cosine, 8, 50);
        put(
            &s,
            vec![
                pt("a", &[1.0, 0.0]),
                pt("b", &[0.0, 1.0]),
                pt("c", &[1.0, 1.0]),
            ],
        );
        let hits = s.search(&[1.0, 0.0], 3, 10, None);
        assert_eq!(s.describe(hits[0].offset).0, "a");
        // Replace a: it now points up; the old version must not be returned.
        put(&s, vec![pt("a", &[0.0, 1.0])]);
        assert_eq!(s.live_count(), 3);
        let hits = s.search(&[1.0, 0.0], 3, 10, None);
        let ids: Vec<String> = hits.iter().map(|h| s.describe(h.offset).0).collect();
        assert_eq!(ids.len(), 3);
        assert_eq!(ids[0], "c");
        assert_eq!(ids.iter().filter(|i| *i == "a").count(), 1);
        assert_eq!(s.delete(&["c".into(), "zz".into()]), 1);
        let hits = s.search(&[1.0, 0.0], 3, 10, None);
        assert!(hits.iter().all(|h| s.describe(h.offset).0 != "c"));
        let (off_b, vb) = s.vector_of("b").unwrap();
        let hits = s.search(&vb, 3, 10, Some(off_b));
        assert!(hits.iter().all(|h| h.offset != off_b));
        assert_eq!(hits.len(), 1);
    }
}
