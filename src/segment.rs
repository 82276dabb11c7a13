//! The mutable segment: the in-memory part of a collection that takes writes.
//!
//! It pairs an `hnsw_rs` graph with plain columns (ids, vectors, metadata)
//! and a liveness set, addressed by *offset*, the graph's data id. A point is
//! written in two steps so searches never wait for graph construction:
//! [`MutableSegment::index`] inserts vectors into the graph without holding
//! any column lock, then [`MutableSegment::commit`] appends the columns and
//! flips liveness under short write locks. Offsets the graph returns before
//! their commit are simply not live yet. Deletes and replacements are
//! tombstones (liveness off); hnsw_rs cannot delete.
//!
//! Once frozen (no more commits) a segment is written out as a sealed one by
//! [`MutableSegment::write_sealed`]; liveness can still change while that runs.

use std::collections::HashMap;
use std::path::Path;

use hnsw_rs::prelude::Hnsw;
use parking_lot::RwLock;

use crate::distance::{GraphDistance, Metric};
use crate::error::Result;
use crate::filter::{Compiled, Filter, MetaIndex};
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

#[derive(Default)]
struct Data {
    ids: Vec<String>,
    vectors: Vec<f32>,
    metadata: Vec<pb::Metadata>,
    /// id → its newest offset here (which may since have been deleted).
    by_id: HashMap<String, usize>,
    /// Metadata indexed for filters, one entry per offset.
    meta: MetaIndex,
    /// Bytes of heap strings in ids and metadata, for memory accounting.
    string_bytes: usize,
}

#[derive(Default)]
struct Live {
    bits: Vec<bool>,
    count: usize,
}

impl Live {
    fn is_live(&self, off: usize) -> bool {
        self.bits.get(off).copied().unwrap_or(false)
    }
    fn kill(&mut self, off: usize) -> bool {
        match self.bits.get_mut(off) {
            Some(b) if *b => {
                *b = false;
                self.count -= 1;
                true
            }
            _ => false,
        }
    }
}

pub struct MutableSegment {
    dim: usize,
    metric: Metric,
    m: usize,
    graph: Hnsw<'static, f32, GraphDistance>,
    // Lock order: data before live.
    data: RwLock<Data>,
    live: RwLock<Live>,
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
            data: RwLock::new(Data::default()),
            live: RwLock::new(Live::default()),
        }
    }

    /// Offsets handed out so far (live or not); the next one to hand out.
    pub fn next_offset(&self) -> usize {
        self.data.read().ids.len()
    }

    /// Inserts vectors into the graph at offsets `base..base + n`, on rayon's
    /// pool for larger batches. Does not make them visible.
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
    /// `base..`, makes them live and tombstones the versions they replace
    /// in this segment.
    pub fn commit(&self, base: usize, points: Vec<Prepared>) {
        let mut d = self.data.write();
        let mut l = self.live.write();
        debug_assert_eq!(d.ids.len(), base);
        for (i, p) in points.into_iter().enumerate() {
            let offset = base + i;
            if let Some(old) = d.by_id.insert(p.id.clone(), offset) {
                l.kill(old);
            }
            d.string_bytes += p.id.len() * 2 + metadata_bytes(&p.metadata);
            d.ids.push(p.id);
            d.vectors.extend_from_slice(&p.vector);
            d.meta.push(&p.metadata);
            d.metadata.push(p.metadata);
            l.bits.push(true);
            l.count += 1;
        }
    }

    /// Tombstones `id` if it is live here; true if it was.
    pub fn delete(&self, id: &str) -> bool {
        let d = self.data.read();
        let Some(&off) = d.by_id.get(id) else {
            return false;
        };
        self.live.write().kill(off)
    }

    pub fn live_count(&self) -> usize {
        self.live.read().count
    }

    /// Offset of `id` if it is live here.
    pub fn lookup(&self, id: &str) -> Option<usize> {
        let d = self.data.read();
        let off = *d.by_id.get(id)?;
        self.live.read().is_live(off).then_some(off)
    }

    /// The stored point with this id, if live.
    pub fn get(&self, id: &str) -> Option<pb::Point> {
        let d = self.data.read();
        let off = *d.by_id.get(id)?;
        if !self.live.read().is_live(off) {
            return None;
        }
        Some(pb::Point {
            id: d.ids[off].clone(),
            vector: d.vectors[off * self.dim..(off + 1) * self.dim].to_vec(),
            metadata: Some(d.metadata[off].clone()),
        })
    }

    /// A copy of the vector at an offset.
    pub fn vector_at(&self, offset: usize) -> Option<Vec<f32>> {
        let d = self.data.read();
        d.vectors
            .get(offset * self.dim..(offset + 1) * self.dim)
            .map(<[f32]>::to_vec)
    }

    /// Id and metadata at an offset.
    pub fn describe(&self, offset: usize) -> Option<(String, pb::Metadata)> {
        let d = self.data.read();
        Some((d.ids.get(offset)?.clone(), d.metadata.get(offset)?.clone()))
    }

    /// Whether the point at `offset` is live.
    pub fn is_live(&self, offset: usize) -> bool {
        self.live.read().is_live(offset)
    }

    /// Live offsets whose metadata passes `filter`, ascending (found through
    /// the metadata index, not by reading every point).
    pub fn passing(&self, filter: &Filter) -> Vec<usize> {
        let d = self.data.read();
        let l = self.live.read();
        d.meta
            .compile(filter)
            .passing()
            .into_iter()
            .map(|o| o as usize)
            .filter(|&o| l.is_live(o))
            .collect()
    }

    /// Liveness of every offset, for sealing.
    pub fn live_bits(&self) -> Vec<bool> {
        self.live.read().bits.clone()
    }

    /// Approximate k-NN over live points that pass `filter`, `exclude`
    /// left out. Returns (offset, rank) by ascending rank.
    ///
    /// Planner: a filter that lets few points through is answered by an exact
    /// scan of exactly those points (found through the metadata index, not
    /// the vectors). Otherwise the graph is searched. hnsw_rs's own filtered
    /// search drops its early exit and walks until its candidate heap is
    /// empty (that is why it crawls on selective filters), so instead the
    /// plain search is asked for more results than needed, widening until
    /// enough pass; if the filter was more selective than estimated, the
    /// exact scan finishes the job.
    pub fn search(
        &self,
        query: &[f32],
        k: usize,
        ef: usize,
        exclude: Option<usize>,
        filter: Option<&Filter>,
    ) -> Vec<(usize, f32)> {
        let d = self.data.read();
        let l = self.live.read();
        if l.count == 0 || k == 0 {
            return Vec::new();
        }
        let compiled = filter.map(|f| d.meta.compile(f));
        let total = d.ids.len();
        let rank_of = |off: usize| {
            self.metric
                .rank(query, &d.vectors[off * self.dim..(off + 1) * self.dim])
        };
        let live = |off: usize| Some(off) != exclude && l.is_live(off);
        let keep = |off: usize| live(off) && compiled.as_ref().is_none_or(|c| c.accepts(off));
        // Exact scan of the points the filter passes (already checked
        // against it by `passing`, so only liveness is left to check).
        let exact = |c: &Compiled<'_>| {
            let mut hits: Vec<(usize, f32)> = c
                .passing()
                .into_iter()
                .map(|o| o as usize)
                .filter(|&o| live(o))
                .map(|o| (o, rank_of(o)))
                .collect();
            top_k(&mut hits, k);
            hits
        };
        let mut want = ef.max(k + exclude.is_some() as usize);
        if let Some(c) = &compiled {
            let est = c.estimate();
            if est == 0 {
                return Vec::new();
            }
            if est <= exact_scan_limit(total, ef) {
                return exact(c);
            }
            // Expect a fraction est/total to pass: ask for that much more.
            want = (want as f64 * total as f64 / est as f64).ceil() as usize;
        }
        want = want.min(total);
        loop {
            let found = self.graph.search(query, want, want);
            let mut hits: Vec<(usize, f32)> = found
                .into_iter()
                .filter(|n| keep(n.d_id))
                // Recomputed: the graph's value is an order-preserving
                // transform of the metric's rank, not the rank itself.
                .map(|n| (n.d_id, rank_of(n.d_id)))
                .collect();
            if hits.len() >= k.min(l.count) || want >= total {
                if let Some(c) = &compiled
                    && hits.len() < k
                {
                    // Fewer pass than the estimate promised: scan them all.
                    return exact(c);
                }
                top_k(&mut hits, k);
                return hits;
            }
            if let Some(c) = &compiled
                && want >= 4 * ef.max(k)
            {
                return exact(c);
            }
            want = (want * 2).min(total);
        }
    }

    /// Exact k-NN by scanning every live point that passes `filter`.
    pub fn exact_search(
        &self,
        query: &[f32],
        k: usize,
        exclude: Option<usize>,
        filter: Option<&Filter>,
    ) -> Vec<(usize, f32)> {
        let d = self.data.read();
        let l = self.live.read();
        let compiled = filter.map(|f| d.meta.compile(f));
        let mut hits: Vec<(usize, f32)> = d
            .vectors
            .chunks_exact(self.dim)
            .enumerate()
            .filter(|(off, _)| {
                l.is_live(*off)
                    && Some(*off) != exclude
                    && compiled.as_ref().is_none_or(|c| c.accepts(*off))
            })
            .map(|(off, v)| (off, self.metric.rank(query, v)))
            .collect();
        top_k(&mut hits, k);
        hits
    }

    /// Writes this (frozen) segment as a sealed one into `dir`: columns,
    /// vectors, the graph exported from hnsw_rs, and its current tombstones.
    /// Returns the liveness it wrote.
    pub fn write_sealed(&self, dir: &Path) -> Result<Vec<bool>> {
        let d = self.data.read();
        let live = self.live_bits();
        crate::sealed::write(dir, self.dim, &d.ids, &d.vectors, &d.metadata, &live)?;
        crate::graph::export(
            &self.graph,
            d.ids.len(),
            self.m,
            &dir.join(crate::sealed::GRAPH_FILE),
        )?;
        Ok(live)
    }

    /// The hnsw_rs search on this segment's graph (for benchmarks that
    /// compare it with the sealed search on the same graph).
    pub fn hnsw(&self) -> &Hnsw<'static, f32, GraphDistance> {
        &self.graph
    }

    /// Approximate heap bytes: our columns, hnsw_rs's own vector copies and
    /// its neighbour lists (~ (layer-0 2m + upper m) links of ~16 bytes each).
    pub fn memory_bytes(&self) -> u64 {
        let d = self.data.read();
        let n = d.ids.len();
        let vectors = (d.vectors.capacity() * 4) as u64;
        let graph_vectors = (n * self.dim * 4) as u64;
        let graph_links = (n * 3 * self.m * 16) as u64;
        let columns = (n
            * (std::mem::size_of::<String>() * 2 + std::mem::size_of::<pb::Metadata>() + 1)
            + d.string_bytes) as u64;
        vectors + graph_vectors + graph_links + columns + d.meta.memory_bytes() as u64
    }
}

/// Largest estimated number of passing points that the planner answers with
/// an exact scan rather than a graph search. A filtered graph search has to
/// gather `ef` passing nodes, so at pass rate `s` it expands about `ef / s`
/// nodes of ~32 links each; an exact scan computes `s * n` distances. They
/// cost the same at `s * n = sqrt(32 * ef * n)`: below that, scan (measured
/// by `vidx bench filter`: at 10% of 100k points the graph search ran at
/// 0.06x unfiltered QPS, the scan is far faster).
pub fn exact_scan_limit(segment_len: usize, ef: usize) -> usize {
    ((32.0 * ef.max(1) as f64 * segment_len as f64).sqrt() as usize).max(2048)
}

/// Keeps the `k` lowest-ranked entries, sorted ascending.
pub fn top_k<T>(hits: &mut Vec<(T, f32)>, k: usize) {
    let k = k.min(hits.len());
    if k == 0 {
        hits.clear();
        return;
    }
    hits.select_nth_unstable_by(k - 1, |a, b| a.1.total_cmp(&b.1));
    hits.truncate(k);
    hits.sort_by(|a, b| a.1.total_cmp(&b.1));
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

    fn id_of(s: &MutableSegment, off: usize) -> String {
        s.describe(off).unwrap().0
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
        let hits = s.search(&[1.0, 0.0], 3, 10, None, None);
        assert_eq!(id_of(&s, hits[0].0), "a");
        // Replace a: it now points up; the old version must not be returned.
        put(&s, vec![pt("a", &[0.0, 1.0])]);
        assert_eq!(s.live_count(), 3);
        let hits = s.search(&[1.0, 0.0], 3, 10, None, None);
        let ids: Vec<String> = hits.iter().map(|h| id_of(&s, h.0)).collect();
        assert_eq!(ids.len(), 3);
        assert_eq!(ids[0], "c");
        assert_eq!(ids.iter().filter(|i| *i == "a").count(), 1);
        assert!(s.delete("c"));
        assert!(!s.delete("c"));
        assert!(!s.delete("zz"));
        let hits = s.search(&[1.0, 0.0], 3, 10, None, None);
        assert!(hits.iter().all(|h| id_of(&s, h.0) != "c"));
        let off_b = s.lookup("b").unwrap();
        let vb = s.vector_at(off_b).unwrap();
        let hits = s.search(&vb, 3, 10, Some(off_b), None);
        assert_eq!(hits.len(), 1);
        assert!(hits.iter().all(|h| h.0 != off_b));
        assert_eq!(s.exact_search(&vb, 5, None, None).len(), 2);
    }
}
