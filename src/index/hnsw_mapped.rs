//! The sealed HNSW graph: its flat on-disk layout, its export from the
//! in-memory graph ([`crate::index::hnsw`]), and the search routine that walks it in
//! place (memory-mapped).
//!
//! Payload of `graph.bin` (all little-endian, sections 8-byte aligned):
//!
//! ```text
//! directory  max_level × (count u64, nodes_offset u64, adj_offset u64), for layers 1..=max_level
//! levels     n × u8: the top layer of each node
//! layer 0    n × (1 + m0) u32: neighbour count, then ids padded with u32::MAX
//! layer l    count_l × u32 node ids (ascending), then count_l × (1 + m) u32 rows
//! ```
//!
//! Rows are the in-memory graph's rows as they are (`1 + m0` resp. `1 + m`
//! u32, the same stride as in [`crate::index::hnsw`]): neighbours in link order,
//! not sorted, so a sealed search walks the same path as the in-memory one.
//! `entry` is a node of layer `max_level` (0 when there are no upper layers).
//!
//! Header fields: `[n, m0, m, entry | max_level << 32]`. Every id read from
//! the file is bounds-checked before use, so a damaged graph can give poor
//! results until the checksum pass flags it, but never a panic.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::path::Path;

use crate::error::{Error, Result};
use crate::index::distance::Metric;
use crate::index::hnsw::{Hnsw, NONE, Scored, expand, with_visited};
use crate::storage::envelope::{FileWriter, MappedFile};
use crate::storage::versions::GRAPH;

pub const MAGIC: &[u8; 8] = b"VIDXGRF\0";

/// Writes nodes `0..n` of an in-memory graph into the flat layout, rows
/// copied as they are (same neighbour order, so a sealed search walks
/// exactly the path the in-memory one does). Every node in `0..n` must have
/// been inserted; links to ids `>= n` (inserted but not part of this
/// segment) are dropped.
pub fn export(g: &Hnsw, n: usize, path: &Path) -> Result<()> {
    let (m0, m) = (g.m0(), g.m());
    if n >= NONE as usize {
        return Err(Error::Internal(format!(
            "graph of {n} nodes exceeds u32 ids"
        )));
    }
    let mut levels = vec![0u8; n];
    let mut layer0 = vec![NONE; n * (1 + m0)];
    // upper[l - 1] holds (node, neighbours) of layer l, nodes ascending.
    let mut upper: Vec<Vec<(u32, Vec<u32>)>> = Vec::new();
    let mut nbs = Vec::with_capacity(m0);
    for node in 0..n as u32 {
        if g.vector(node).is_none() {
            return Err(Error::Internal(format!(
                "graph node {node} of 0..{n} was never inserted"
            )));
        }
        let level = g.level(node);
        levels[node as usize] = level as u8;
        for l in 0..=level {
            nbs.clear();
            nbs.extend(
                g.neighbours(node, l)
                    .into_iter()
                    .filter(|&x| (x as usize) < n),
            );
            if l == 0 {
                let row = &mut layer0[node as usize * (1 + m0)..(node as usize + 1) * (1 + m0)];
                let c = nbs.len().min(m0);
                row[0] = c as u32;
                row[1..1 + c].copy_from_slice(&nbs[..c]);
            } else {
                while upper.len() < l {
                    upper.push(Vec::new());
                }
                nbs.truncate(m);
                upper[l - 1].push((node, nbs.clone()));
            }
        }
    }
    let max_level = upper.len();
    // The in-memory entry is the node on the top layer; fall back to the
    // lowest id there if it lies outside 0..n.
    let entry = match (g.entry(), upper.last()) {
        (Some((e, top)), _) if (e as usize) < n && top == max_level => e,
        (_, Some(top)) => top.first().map_or(0, |(node, _)| *node),
        (_, None) => 0,
    };
    let mut w = FileWriter::create(path, MAGIC, &GRAPH)?;
    // Directory first: its offsets are computed ahead.
    let mut offset = (max_level * 24) as u64;
    offset += (n as u64).div_ceil(8) * 8;
    offset += (layer0.len() * 4) as u64;
    offset = offset.div_ceil(8) * 8;
    let mut dir: Vec<u64> = Vec::with_capacity(max_level * 3);
    for layer in &upper {
        let count = layer.len() as u64;
        let nodes_off = offset;
        offset += (count * 4).div_ceil(8) * 8;
        let adj_off = offset;
        offset += (count * (1 + m as u64) * 4).div_ceil(8) * 8;
        dir.extend_from_slice(&[count, nodes_off, adj_off]);
    }
    w.write_pod(&dir)?;
    w.write(&levels)?;
    w.align8()?;
    w.write_pod(&layer0)?;
    w.align8()?;
    for layer in &upper {
        let nodes: Vec<u32> = layer.iter().map(|(n, _)| *n).collect();
        w.write_pod(&nodes)?;
        w.align8()?;
        let mut rows = vec![NONE; layer.len() * (1 + m)];
        for (i, (_, ids)) in layer.iter().enumerate() {
            let row = &mut rows[i * (1 + m)..(i + 1) * (1 + m)];
            row[0] = ids.len() as u32;
            row[1..1 + ids.len()].copy_from_slice(ids);
        }
        w.write_pod(&rows)?;
        w.align8()?;
    }
    debug_assert_eq!(w.position(), offset);
    w.finish([
        n as u64,
        m0 as u64,
        m as u64,
        entry as u64 | ((max_level as u64) << 32),
    ])
}

/// The vectors a graph's node ids index, and how to compare them.
#[derive(Clone, Copy)]
pub struct Space<'a> {
    /// Row-major, `dim` wide, row i = node i.
    pub vectors: &'a [f32],
    pub dim: usize,
    pub metric: Metric,
}

/// Offsets of a mapped graph's sections, read once at open.
pub struct Graph {
    pub file: MappedFile,
    n: usize,
    m0: usize,
    m: usize,
    entry: u32,
    layer0_off: u64,
    /// Per upper layer: (count, nodes offset, adjacency offset).
    upper: Vec<(u64, u64, u64)>,
}

/// Borrowed slices of one graph for the duration of a search.
struct View<'a> {
    layer0: &'a [u32],
    upper: Vec<(&'a [u32], &'a [u32])>,
    m0: usize,
    m: usize,
    n: usize,
}

impl View<'_> {
    #[inline]
    fn neighbours(&self, level: usize, node: u32) -> &[u32] {
        if level == 0 {
            let s = 1 + self.m0;
            let row = &self.layer0[node as usize * s..(node as usize + 1) * s];
            let c = (row[0] as usize).min(self.m0);
            &row[1..1 + c]
        } else {
            let (nodes, adj) = &self.upper[level - 1];
            let s = 1 + self.m;
            match nodes
                .binary_search(&node)
                .ok()
                .and_then(|i| adj.get(i * s..(i + 1) * s))
            {
                Some(row) => {
                    let c = (row[0] as usize).min(self.m);
                    &row[1..1 + c]
                }
                None => &[],
            }
        }
    }
}

impl Graph {
    pub fn open(path: &Path) -> Result<Graph> {
        let file = MappedFile::open(path, MAGIC, &GRAPH)?;
        let [n, m0, m, packed] = file.fields;
        let entry = (packed & 0xffff_ffff) as u32;
        let max_level = (packed >> 32) as usize;
        if m0 == 0
            || m0 > 1024
            || m == 0
            || m > 512
            || max_level > 64
            || (n > 0 && entry as u64 >= n)
        {
            return Err(Error::data_loss(
                path,
                format!(
                    "implausible graph header: n {n}, m0 {m0}, m {m}, entry {entry}, levels {max_level}"
                ),
            ));
        }
        let dir: Vec<u64> = file.slice::<u64>(0, max_level as u64 * 3)?.to_vec();
        let levels_off = max_level as u64 * 24;
        let layer0_off = (levels_off + n).div_ceil(8) * 8;
        let upper: Vec<(u64, u64, u64)> = dir.chunks_exact(3).map(|c| (c[0], c[1], c[2])).collect();
        let g = Graph {
            n: n as usize,
            m0: m0 as usize,
            m: m as usize,
            entry,
            layer0_off,
            upper,
            file,
        };
        // Resolve every section once so a bad offset is refused at open.
        g.view()?;
        Ok(g)
    }

    pub fn len(&self) -> usize {
        self.n
    }

    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    fn view(&self) -> Result<View<'_>> {
        // Header values are untrusted: overflow means "does not fit".
        let len = self.n.saturating_mul(1 + self.m0) as u64;
        let layer0 = self.file.slice::<u32>(self.layer0_off, len)?;
        let mut upper = Vec::with_capacity(self.upper.len());
        for &(count, nodes_off, adj_off) in &self.upper {
            let nodes = self.file.slice::<u32>(nodes_off, count)?;
            let len = count.saturating_mul(1 + self.m as u64);
            let adj = self.file.slice::<u32>(adj_off, len)?;
            upper.push((nodes, adj));
        }
        Ok(View {
            layer0,
            upper,
            m0: self.m0,
            m: self.m,
            n: self.n,
        })
    }

    /// HNSW search over `vectors` (row-major, `dim` wide): greedy descent
    /// through the upper layers, then a best-first beam of width `ef` in
    /// layer 0. Only nodes for which `accept` is true enter the results, but
    /// every node is walked through, so tombstones do not cut paths.
    /// Returns up to `k` (node, rank) pairs by ascending rank.
    pub fn search(
        &self,
        space: Space<'_>,
        query: &[f32],
        k: usize,
        ef: usize,
        accept: &dyn Fn(u32) -> bool,
    ) -> Result<Vec<(u32, f32)>> {
        let Space {
            vectors,
            dim,
            metric,
        } = space;
        self.search_rows(
            |nb| vectors.get(nb as usize * dim..(nb as usize + 1) * dim),
            |_, x| metric.rank(query, x),
            k,
            ef,
            accept,
        )
    }

    /// The search of [`Graph::search`] over any row type: `row(node)` is the
    /// node's vector or code, `rank(node, row)` its rank for the query (an
    /// estimate for a code). Used with quantized codes by the sealed segment,
    /// which then rescores the results exactly.
    pub fn search_rows<'r, T: 'r>(
        &self,
        row: impl Fn(u32) -> Option<&'r [T]>,
        rank: impl Fn(u32, &[T]) -> f32,
        k: usize,
        ef: usize,
        accept: &dyn Fn(u32) -> bool,
    ) -> Result<Vec<(u32, f32)>> {
        if self.n == 0 || k == 0 {
            return Ok(Vec::new());
        }
        let v = self.view()?;
        let score = |node: u32| -> f32 {
            match row(node) {
                Some(x) => rank(node, x),
                None => f32::INFINITY,
            }
        };
        let mut cur = self.entry;
        let mut cur_d = score(cur);
        for level in (1..=v.upper.len()).rev() {
            loop {
                let mut changed = false;
                for &nb in v.neighbours(level, cur) {
                    if nb as usize >= v.n {
                        continue;
                    }
                    let d = score(nb);
                    if d < cur_d {
                        cur = nb;
                        cur_d = d;
                        changed = true;
                    }
                }
                if !changed {
                    break;
                }
            }
        }
        let ef = ef.max(k);
        let hits = with_visited(v.n, |visited| {
            let mut candidates: BinaryHeap<Reverse<Scored>> = BinaryHeap::with_capacity(ef * 2);
            let mut results: BinaryHeap<Scored> = BinaryHeap::with_capacity(ef + 1);
            visited.mark(cur);
            candidates.push(Reverse(Scored(cur_d, cur)));
            if accept(cur) {
                results.push(Scored(cur_d, cur));
            }
            let mut todo: Vec<(u32, &[T])> = Vec::with_capacity(v.m0);
            while let Some(Reverse(Scored(d, node))) = candidates.pop() {
                if results.len() >= ef && results.peek().is_some_and(|w| d > w.0) {
                    break;
                }
                todo.clear();
                todo.extend(
                    v.neighbours(0, node)
                        .iter()
                        .filter(|&&nb| (nb as usize) < v.n && visited.mark(nb))
                        .filter_map(|&nb| Some((nb, row(nb)?))),
                );
                expand(&todo, &rank, ef, &accept, &mut candidates, &mut results);
            }
            let mut out: Vec<(u32, f32)> = results.into_iter().map(|s| (s.1, s.0)).collect();
            out.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
            out.truncate(k);
            out
        });
        Ok(hits)
    }
}
