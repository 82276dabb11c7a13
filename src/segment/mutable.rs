//! The mutable segment: the in-memory part of a collection that takes writes.
//!
//! It pairs vidx's own HNSW graph ([`crate::index::hnsw`]), which also stores the
//! vectors (once: the graph's storage is the vector column), with plain
//! columns (ids, metadata) and a liveness set, addressed by *offset*, the
//! graph's node id. A point is written in two steps so searches never wait
//! for graph construction: [`MutableSegment::index`] inserts vectors into
//! the graph without holding any column lock, then
//! [`MutableSegment::commit`] appends the columns and flips liveness under
//! short write locks. Offsets the graph returns before their commit are
//! simply not live yet. Deletes and replacements are tombstones (liveness
//! off): the graph keeps the node so paths through it stay intact.
//!
//! Once frozen (no more commits) a segment is written out as a sealed one by
//! [`MutableSegment::write_sealed`]; liveness can still change while that runs.

use std::collections::HashMap;
use std::path::Path;

use parking_lot::RwLock;
use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::index::distance::Metric;
use crate::index::filter::{Compiled, Filter, MetaIndex};
use crate::index::hnsw::Hnsw;
use crate::index::planner::{exact_scan_limit, top_k};
use crate::pb;
use crate::segment::sealed::Layout;

/// A point ready to be stored: validated, vector prepared for the metric;
/// in a perceptual-hash collection the code and its quality instead of a
/// vector.
#[derive(Clone, Debug, Default)]
pub struct Prepared {
    pub id: String,
    pub vector: Vec<f32>,
    pub metadata: pb::Metadata,
    /// The hash as u64 words (empty in vector collections).
    pub code: Vec<u64>,
    pub quality: u8,
}

#[derive(Default)]
struct Data {
    ids: Vec<String>,
    metadata: Vec<pb::Metadata>,
    /// id → its newest offset here (which may since have been deleted).
    by_id: HashMap<String, usize>,
    /// Metadata indexed for filters, one entry per offset.
    meta: MetaIndex,
    /// Bytes of heap strings in ids and metadata, for memory accounting.
    string_bytes: usize,
    /// Perceptual-hash segments: the codes (`words` per offset) and their
    /// qualities; empty otherwise.
    codes: Vec<u64>,
    quality: Vec<u8>,
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
    /// u64 words per code in a perceptual-hash segment (HAMMING), else 0:
    /// such a segment keeps codes in `data` and leaves the graph empty.
    words: usize,
    /// Vectors and links; offsets `0..data.ids.len()` are committed.
    graph: Hnsw,
    // Lock order: data before live.
    data: RwLock<Data>,
    live: RwLock<Live>,
}

impl MutableSegment {
    pub fn new(dim: usize, metric: Metric, m: usize, ef_construction: usize) -> Self {
        MutableSegment {
            dim,
            metric,
            words: if metric == Metric::Hamming {
                dim / 64
            } else {
                0
            },
            graph: Hnsw::new(dim, metric, m, ef_construction),
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
    ///
    /// Callers hand out each offset once (the collection's writer lock); the
    /// graph refuses a second insert at an offset, which is logged, never a
    /// panic.
    pub fn index(&self, base: usize, points: &[Prepared]) {
        if self.words > 0 {
            // Codes go in with the columns (`commit`); there is no graph.
            return;
        }
        let insert = |(i, p): (usize, &Prepared)| {
            if let Err(e) = self.graph.insert((base + i) as u64, &p.vector) {
                tracing::error!("mutable segment: graph insert refused: {e}");
                debug_assert!(false, "graph insert refused: {e}");
            }
        };
        if points.len() >= 32 {
            points.par_iter().enumerate().for_each(insert);
        } else {
            points.iter().enumerate().for_each(insert);
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
            if self.words > 0 {
                let mut code = p.code;
                code.resize(self.words, 0);
                d.codes.extend_from_slice(&code);
                d.quality.push(p.quality);
            }
            d.ids.push(p.id);
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
        if self.words > 0 {
            let (code, quality) = self.code_in(&d, off)?;
            return Some(pb::Point {
                id: d.ids.get(off)?.clone(),
                metadata: Some(d.metadata.get(off)?.clone()),
                bits: crate::index::hamming::bytes_of(&code),
                quality: quality as u32,
                ..Default::default()
            });
        }
        Some(pb::Point {
            id: d.ids.get(off)?.clone(),
            vector: self.vector_of(off)?.to_vec(),
            metadata: Some(d.metadata.get(off)?.clone()),
            ..Default::default()
        })
    }

    fn code_in(&self, d: &Data, off: usize) -> Option<(Vec<u64>, u8)> {
        let code = d.codes.get(off * self.words..(off + 1) * self.words)?;
        Some((code.to_vec(), *d.quality.get(off)?))
    }

    /// The code and quality at an offset (perceptual-hash segments).
    pub fn code_at(&self, offset: usize) -> Option<(Vec<u64>, u8)> {
        self.code_in(&self.data.read(), offset)
    }

    /// Exact Hamming search by a scan of the codes (the mutable segment
    /// holds at most a seal threshold of them): the `k` closest live codes
    /// within the radius (any distance without one) whose quality is at
    /// least `min_quality` and whose metadata passes the filter.
    pub fn search_codes(
        &self,
        p: &crate::segment::bits::Probe<'_>,
        exclude: Option<usize>,
        min_quality: u8,
        filter: Option<&Filter>,
    ) -> Vec<(usize, u32)> {
        let d = self.data.read();
        let l = self.live.read();
        if self.words == 0 || l.count == 0 || p.k == 0 {
            return Vec::new();
        }
        let compiled = filter.map(|f| d.meta.compile(f));
        let mut keep = |o: usize| {
            Some(o) != exclude
                && l.is_live(o)
                && d.quality.get(o).is_some_and(|q| *q >= min_quality)
                && compiled.as_ref().is_none_or(|c| c.accepts(o))
        };
        let radius = p.radius.unwrap_or(self.dim as u32);
        let mut hits = Vec::new();
        let committed = &d.codes[..d.ids.len() * self.words];
        crate::index::hamming::scan(committed, p.query, radius, 0, &mut keep, &mut hits);
        crate::index::hamming::top_k(&mut hits, p.k);
        hits
    }

    /// The graph's vector at an offset (an offset that does not fit a node
    /// id has none, rather than wrapping onto another node).
    fn vector_of(&self, offset: usize) -> Option<&[f32]> {
        self.graph.vector(u32::try_from(offset).ok()?)
    }

    /// A copy of the vector at an offset.
    pub fn vector_at(&self, offset: usize) -> Option<Vec<f32>> {
        // Committed offsets only, as before the graph held the vectors.
        if offset >= self.data.read().ids.len() {
            return None;
        }
        self.vector_of(offset).map(<[f32]>::to_vec)
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
    /// Planner (the sealed segment's): a filter that lets few points through
    /// is answered by an exact scan of exactly those points (found through
    /// the metadata index, not the vectors). Otherwise the graph is walked
    /// with liveness and the filter as its acceptance test, so only passing
    /// points fill the beam while every node still serves as a path. If the
    /// walk finds fewer than `k` (a filter more selective than estimated, or
    /// a part of the graph it cannot reach), an exact scan finishes the job.
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
        let compiled = filter
            .map(|f| d.meta.compile(f))
            .filter(|c| !c.accepts_all());
        let total = d.ids.len();
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
                .filter_map(|o| Some((o, self.metric.rank(query, self.vector_of(o)?))))
                .collect();
            top_k(&mut hits, k);
            hits
        };
        if let Some(c) = &compiled {
            let est = c.estimate();
            if est == 0 {
                return Vec::new();
            }
            if est <= exact_scan_limit(total, ef) {
                return exact(c);
            }
        }
        // Offsets indexed but not yet committed are walked, never accepted.
        let hits: Vec<(usize, f32)> = self
            .graph
            .search(query, k, ef, |off| keep(off as usize))
            .into_iter()
            .map(|(off, r)| (off as usize, r))
            .collect();
        let reachable = l.count - exclude.is_some_and(|e| l.is_live(e)) as usize;
        if hits.len() < k.min(reachable) {
            return match &compiled {
                Some(c) => exact(c),
                None => self.scan(&d, &l, query, k, exclude, None),
            };
        }
        hits
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
        self.scan(&d, &l, query, k, exclude, compiled.as_ref())
    }

    fn scan(
        &self,
        d: &Data,
        l: &Live,
        query: &[f32],
        k: usize,
        exclude: Option<usize>,
        compiled: Option<&Compiled<'_>>,
    ) -> Vec<(usize, f32)> {
        let mut hits: Vec<(usize, f32)> = (0..d.ids.len())
            .filter(|&off| {
                l.is_live(off) && Some(off) != exclude && compiled.is_none_or(|c| c.accepts(off))
            })
            .filter_map(|off| Some((off, self.metric.rank(query, self.vector_of(off)?))))
            .collect();
        top_k(&mut hits, k);
        hits
    }

    /// Writes this (frozen) segment as a sealed one into `dir`: columns,
    /// vectors (f32 or f16, as `layout` says) and graph (read straight from
    /// the graph's storage), codes trained on its vectors unless the
    /// layout's quantization is none, and its current tombstones. Returns the liveness it wrote.
    ///
    /// The mutable segment itself stays f32 until then: a codebook trained
    /// on the first inserts would clamp later ones, and training on the
    /// whole segment at seal makes the codes independent of insert order.
    pub fn write_sealed(&self, dir: &Path, layout: Layout) -> Result<Vec<bool>> {
        let d = self.data.read();
        let live = self.live_bits();
        let n = d.ids.len();
        if n >= crate::index::hnsw::NONE as usize {
            return Err(Error::Internal(format!(
                "segment of {n} points exceeds u32 offsets"
            )));
        }
        if self.words > 0 {
            crate::segment::sealed::write_columns(dir, &d.ids, &d.metadata, &live)?;
            let n = d.ids.len();
            return crate::segment::bits::write(
                dir,
                self.words,
                &d.codes[..n * self.words],
                &d.quality[..n],
            )
            .map(|_| live);
        }
        let vector = |i: usize| self.vector_of(i);
        crate::segment::sealed::write(dir, self.dim, &d.ids, &vector, &d.metadata, &live, layout)?;
        crate::index::hnsw_mapped::export(
            &self.graph,
            n,
            &dir.join(crate::segment::sealed::GRAPH_FILE),
        )?;
        Ok(live)
    }

    /// Approximate heap bytes: the graph (vectors stored once, plus links),
    /// the id and metadata columns and the metadata index.
    pub fn memory_bytes(&self) -> u64 {
        let d = self.data.read();
        let n = d.ids.len();
        let columns = (n
            * (std::mem::size_of::<String>() * 2 + std::mem::size_of::<pb::Metadata>() + 1)
            + d.string_bytes) as u64;
        let codes = (d.codes.capacity() * 8 + d.quality.capacity()) as u64;
        self.graph.memory_bytes() as u64 + columns + codes + d.meta.memory_bytes() as u64
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
            ..Default::default()
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
