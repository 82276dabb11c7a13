//! vidx's own in-memory HNSW graph, built concurrently over flat arrays
//! (hnswlib's design), which the mutable segment inserts into and searches.
//!
//! Why not a crate: hnsw_rs spent 42% of build time on its own bookkeeping
//! (Arc/RwLock/HashMap per node) and held a second copy of every vector.
//! Here the graph's vector storage *is* the segment's vector column.
//!
//! Storage: node ids are dense `u32`s. Nodes live in chunks whose sizes
//! double (1024, 2048, …), each allocated once and never moved, so a reader
//! never sees a reallocation and the chunk table is a fixed array. A chunk
//! holds, per node, the vector, the layer-0 row (`1 + 2m` `AtomicU32`: count,
//! then ids), the rows of the upper layers (allocated when the node is
//! inserted), a state byte and a lock. Big arrays come from zeroed
//! allocations, so pages of a chunk that no node has reached yet are never
//! made resident.
//!
//! Concurrency (what makes lock-free reads sound):
//! - a node's vector is written exactly once, by the thread that claimed the
//!   node with a CAS on its state byte, and then published with a Release
//!   store of `READY`; every read of a vector first loads that state with
//!   Acquire, so no vector is ever read while it is written;
//! - neighbour rows are atomics: a writer holds the node's lock and stores
//!   the ids before the count (Release), a reader loads the count, then the
//!   ids (Acquire). A reader racing a rewrite sees a mix of old and new ids,
//!   each of them a real node: at worst a slightly stale list, never UB;
//! - an insert writes its own rows on every layer before it adds itself to
//!   any other node's row, so no insert ever starts a walk from a node whose
//!   lower rows are still empty (hnswlib holds the node's lock instead);
//! - the entry point and top level are one `AtomicU64`; an insert that raises
//!   the top level holds `entry_lock` for its whole insert, as in hnswlib.

use std::cell::{RefCell, UnsafeCell};
use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU8, AtomicU32, AtomicU64, AtomicUsize, Ordering as Mo};

use parking_lot::Mutex;

use crate::index::distance::Metric;

/// The id that means "no node" (and the padding of rows in the sealed file).
pub const NONE: u32 = u32::MAX;
/// Highest layer a node can be drawn into. At the smallest `m` (2) the
/// chance of reaching it is 2^-16 per node; the cap only keeps the level
/// small enough for the sealed file's `u8` levels and its open-time checks.
pub const MAX_LEVEL: usize = 16;
/// Nodes in the first chunk, as a power of two; chunk `c` holds
/// `1024 << c` nodes, so 23 chunks cover every `u32` id.
const FIRST_CHUNK_BITS: u32 = 10;
const MAX_CHUNKS: usize = 23;
/// Seed of the level draw: fixed so a graph's layer structure is the same
/// on every run and every thread count.
const LEVEL_SEED: u64 = 0x5eed_0f1d_c0ff_ee00;

const FREE: u8 = 0;
const CLAIMED: u8 = 1;
const READY: u8 = 2;
const EMPTY_ENTRY: u64 = u64::MAX;

// The zeroed-buffer casts below rely on these layouts.
const _: () = assert!(std::mem::align_of::<u32>() == std::mem::align_of::<AtomicU32>());
const _: () = assert!(std::mem::size_of::<u32>() == std::mem::size_of::<AtomicU32>());

/// A zeroed `Box<[AtomicU32]>` from the allocator's zeroed path (calloc /
/// fresh mmap), so untouched pages stay unresident.
fn zeroed_u32s(len: usize) -> Box<[AtomicU32]> {
    let b: Box<[u32]> = vec![0u32; len].into_boxed_slice();
    // SAFETY: AtomicU32 has the size, alignment (asserted above) and bit
    // validity of u32, so this is the same allocation under the same layout.
    unsafe { Box::from_raw(Box::into_raw(b) as *mut [AtomicU32]) }
}

fn zeroed_u8s(len: usize) -> Box<[AtomicU8]> {
    let b: Box<[u8]> = vec![0u8; len].into_boxed_slice();
    // SAFETY: AtomicU8 has the size, alignment and bit validity of u8.
    unsafe { Box::from_raw(Box::into_raw(b) as *mut [AtomicU8]) }
}

fn zeroed_f32s(len: usize) -> Box<[UnsafeCell<f32>]> {
    let b: Box<[f32]> = vec![0f32; len].into_boxed_slice();
    // SAFETY: UnsafeCell<f32> is repr(transparent) over f32.
    unsafe { Box::from_raw(Box::into_raw(b) as *mut [UnsafeCell<f32>]) }
}

/// Chunk index and index within it of a node id.
#[inline]
fn locate(id: u32) -> (usize, usize) {
    let x = (u64::from(id) >> FIRST_CHUNK_BITS) + 1;
    let c = 63 - x.leading_zeros() as usize;
    let first = ((1u64 << c) - 1) << FIRST_CHUNK_BITS;
    (c, (u64::from(id) - first) as usize)
}

struct Chunk {
    /// `cap × dim`; row i is written once, before `state[i]` becomes READY.
    vectors: Box<[UnsafeCell<f32>]>,
    /// `cap × (1 + m0)`: count, then ids.
    layer0: Box<[AtomicU32]>,
    /// Rows of layers 1..=level, `level × (1 + m)`, set before READY; unset
    /// for level-0 nodes (most of them).
    upper: Box<[OnceLock<Box<[AtomicU32]>>]>,
    state: Box<[AtomicU8]>,
    /// Held while writing a node's rows (any layer).
    locks: Box<[Mutex<()>]>,
}

// SAFETY: the only non-Sync field is `vectors`; each row of it is written
// by one thread (the one whose CAS claimed the node) before a Release store
// of READY, and read only after an Acquire load sees READY (module doc).
unsafe impl Sync for Chunk {}

impl Chunk {
    fn new(cap: usize, dim: usize, m0: usize) -> Chunk {
        Chunk {
            vectors: zeroed_f32s(cap * dim),
            layer0: zeroed_u32s(cap * (1 + m0)),
            upper: (0..cap).map(|_| OnceLock::new()).collect(),
            state: zeroed_u8s(cap),
            locks: (0..cap).map(|_| Mutex::new(())).collect(),
        }
    }
}

/// A (rank, node) pair ordered by rank, then id; NaN-safe.
#[derive(Clone, Copy, PartialEq, Debug)]
pub(crate) struct Scored(pub f32, pub u32);

impl Eq for Scored {}

impl PartialOrd for Scored {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Scored {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.total_cmp(&other.0).then(self.1.cmp(&other.1))
    }
}

/// Visited marks reused across searches on a thread (hnswlib's trick): a
/// generation counter instead of clearing n flags per search. Shared by the
/// in-memory and the sealed search (they never nest).
pub(crate) struct Visited {
    marks: Vec<u16>,
    generation: u16,
}

impl Visited {
    pub(crate) fn reset(&mut self, n: usize) {
        if self.marks.len() < n {
            self.marks.resize(n, 0);
        }
        self.generation = self.generation.wrapping_add(1);
        if self.generation == 0 {
            self.marks.iter_mut().for_each(|m| *m = 0);
            self.generation = 1;
        }
    }

    /// Marks `node`; false if it was already marked in this generation.
    /// Grows on demand: a graph that takes inserts during a search can hand
    /// out ids beyond the size given to `reset`.
    #[inline]
    pub(crate) fn mark(&mut self, node: u32) -> bool {
        let i = node as usize;
        if i >= self.marks.len() {
            let len = (i + 1).max(self.marks.len() * 2);
            self.marks.resize(len, 0);
        }
        let m = &mut self.marks[i];
        if *m == self.generation {
            false
        } else {
            *m = self.generation;
            true
        }
    }
}

thread_local! {
    static VISITED: RefCell<Visited> = const { RefCell::new(Visited { marks: Vec::new(), generation: 0 }) };
}

/// Runs `f` with this thread's visited list, reset for `n` nodes.
pub(crate) fn with_visited<R>(n: usize, f: impl FnOnce(&mut Visited) -> R) -> R {
    VISITED.with(|cell| {
        let mut v = cell.borrow_mut();
        v.reset(n);
        f(&mut v)
    })
}

/// Cache lines of a vector fetched ahead. Whole 2 KB vectors (32 lines)
/// overran the CPU's line-fill buffers and the prefetches themselves
/// stalled; the hardware streamer follows on from the first few lines. 4
/// measured best of 0/1/2/4/8/32 building 10k × 512-d on one thread.
const PREFETCH_LINES: usize = 4;

/// Asks the CPU to pull the start of `v` into cache; a hint, never a read.
#[inline(always)]
pub(crate) fn prefetch<T>(v: &[T]) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        let p = v.as_ptr().cast::<i8>();
        for off in (0..std::mem::size_of_val(v).min(PREFETCH_LINES * 64)).step_by(64) {
            // SAFETY: a prefetch never faults and has no architectural
            // effect; the address lies inside `v` anyway.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(p.wrapping_add(off)) };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = v;
}

/// One step of the beam search, shared by the in-memory and the sealed
/// graph: scores a node's unvisited neighbours (`todo`: id and vector, f32
/// or a quantized code) and offers each to the candidates and, if
/// `accept`ed, the `ef` best results.
/// Vectors sit at random places in memory, so the next one is fetched while
/// this one is compared (hnswlib does the same; the profile showed the
/// kernel stalled on these loads).
#[inline]
pub(crate) fn expand<T>(
    todo: &[(u32, &[T])],
    rank: impl Fn(u32, &[T]) -> f32,
    ef: usize,
    accept: &impl Fn(u32) -> bool,
    candidates: &mut BinaryHeap<Reverse<Scored>>,
    results: &mut BinaryHeap<Scored>,
) {
    if let Some((_, v)) = todo.first() {
        prefetch(v);
    }
    for (j, &(nb, v)) in todo.iter().enumerate() {
        if let Some((_, next)) = todo.get(j + 1) {
            prefetch(next);
        }
        let dn = rank(nb, v);
        if results.len() < ef || results.peek().is_some_and(|w| dn < w.0) {
            candidates.push(Reverse(Scored(dn, nb)));
            if accept(nb) {
                results.push(Scored(dn, nb));
                if results.len() > ef {
                    results.pop();
                }
            }
        }
    }
}

fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// Why an insert was refused (only misuse by the caller can cause one).
#[derive(Debug, PartialEq, Eq)]
pub enum InsertError {
    Dimension { got: usize, want: usize },
    IdOutOfRange(u64),
    IdTaken(u32),
}

impl std::fmt::Display for InsertError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            InsertError::Dimension { got, want } => {
                write!(f, "vector has {got} dimensions, the graph {want}")
            }
            InsertError::IdOutOfRange(id) => write!(f, "node id {id} does not fit a u32 id"),
            InsertError::IdTaken(id) => write!(f, "node id {id} was already inserted"),
        }
    }
}

/// A concurrent, growable HNSW graph that owns its vectors.
pub struct Hnsw {
    dim: usize,
    metric: Metric,
    m: usize,
    m0: usize,
    ef_construction: usize,
    mult: f64,
    chunks: [OnceLock<Chunk>; MAX_CHUNKS],
    /// `entry | level << 32`, or EMPTY_ENTRY.
    entry: AtomicU64,
    /// Held by an insert that may raise the top level, for all of it.
    entry_lock: Mutex<()>,
    /// One past the highest id inserted: sizes visited lists.
    /// On its own cache line: every insert writes it, and sharing a line
    /// with the chunk table would make every other thread's vector lookups
    /// miss.
    high: Padded<AtomicUsize>,
    /// Heap bytes of upper-layer rows.
    upper_bytes: Padded<AtomicUsize>,
}

/// Keeps a hot written value off the cache lines of its neighbours.
#[repr(align(128))]
struct Padded<T>(T);

impl Hnsw {
    /// `m` links per node on upper layers (2m on layer 0), clamped to the
    /// sealed format's limits; `ef_construction` is the beam width of inserts.
    pub fn new(dim: usize, metric: Metric, m: usize, ef_construction: usize) -> Hnsw {
        let m = m.clamp(2, 512);
        Hnsw {
            dim,
            metric,
            m,
            m0: 2 * m,
            ef_construction: ef_construction.max(m),
            mult: 1.0 / (m as f64).ln(),
            chunks: std::array::from_fn(|_| OnceLock::new()),
            entry: AtomicU64::new(EMPTY_ENTRY),
            entry_lock: Mutex::new(()),
            high: Padded(AtomicUsize::new(0)),
            upper_bytes: Padded(AtomicUsize::new(0)),
        }
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Max links per node on upper layers.
    pub fn m(&self) -> usize {
        self.m
    }

    /// Max links per node on layer 0.
    pub fn m0(&self) -> usize {
        self.m0
    }

    /// One past the highest id inserted so far.
    pub fn high(&self) -> usize {
        self.high.0.load(Mo::Acquire)
    }

    /// Entry node and top level, if any node is linked in.
    pub fn entry(&self) -> Option<(u32, usize)> {
        let e = self.entry.load(Mo::Acquire);
        (e != EMPTY_ENTRY).then_some(((e & 0xffff_ffff) as u32, (e >> 32) as usize))
    }

    /// The layer a node is drawn into: hnswlib's `-ln(u) / ln(m)`, with `u`
    /// hashed from the id so the draw needs no shared random state.
    fn draw_level(&self, id: u32) -> usize {
        let h = splitmix64(u64::from(id) ^ LEVEL_SEED);
        let u = ((h >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
        ((-u.ln() * self.mult) as usize).min(MAX_LEVEL)
    }

    #[inline]
    fn chunk(&self, id: u32) -> Option<(&Chunk, usize)> {
        let (c, i) = locate(id);
        Some((self.chunks.get(c)?.get()?, i))
    }

    /// The vector of node `id` if it has been inserted.
    #[inline]
    pub fn vector(&self, id: u32) -> Option<&[f32]> {
        let (chunk, i) = self.chunk(id)?;
        if chunk.state.get(i)?.load(Mo::Acquire) != READY {
            return None;
        }
        let rows = chunk.vectors.get(i * self.dim..(i + 1) * self.dim)?;
        // SAFETY: READY was stored (Release) after the row's only write and
        // our Acquire load saw it; nothing writes the row again.
        Some(unsafe { std::slice::from_raw_parts(UnsafeCell::raw_get(rows.as_ptr()), self.dim) })
    }

    /// Level of an inserted node (0 for one not inserted).
    pub fn level(&self, id: u32) -> usize {
        match self.chunk(id) {
            Some((c, i)) => c.upper[i].get().map_or(0, |r| r.len() / (1 + self.m)),
            None => 0,
        }
    }

    #[inline]
    fn row(&self, id: u32, level: usize) -> Option<(&[AtomicU32], &Mutex<()>)> {
        let (c, i) = self.chunk(id)?;
        let row = if level == 0 {
            c.layer0.get(i * (1 + self.m0)..(i + 1) * (1 + self.m0))?
        } else {
            let s = 1 + self.m;
            c.upper.get(i)?.get()?.get((level - 1) * s..level * s)?
        };
        Some((row, &c.locks[i]))
    }

    /// Appends the current neighbours of `id` on `level` to `out`.
    #[inline]
    fn read_row(&self, id: u32, level: usize, out: &mut Vec<u32>) {
        out.clear();
        if let Some((row, _)) = self.row(id, level) {
            let c = (row[0].load(Mo::Acquire) as usize).min(row.len() - 1);
            out.extend(row[1..1 + c].iter().map(|x| x.load(Mo::Acquire)));
        }
    }

    /// Neighbours of `id` on `level` (empty if it has none there).
    pub fn neighbours(&self, id: u32, level: usize) -> Vec<u32> {
        let mut out = Vec::new();
        self.read_row(id, level, &mut out);
        out
    }

    /// Ids stored before count, both Release: see the module doc.
    fn write_row(row: &[AtomicU32], ids: &[u32]) {
        let c = ids.len().min(row.len() - 1);
        for (slot, &id) in row[1..1 + c].iter().zip(ids) {
            slot.store(id, Mo::Release);
        }
        row[0].store(c as u32, Mo::Release);
    }

    #[inline]
    fn rank(&self, q: &[f32], id: u32) -> f32 {
        match self.vector(id) {
            Some(v) => self.metric.rank(q, v),
            None => f32::INFINITY,
        }
    }

    /// Inserts node `id` with vector `v` and links it in. Safe to call from
    /// many threads at once, also while others search; each id once.
    pub fn insert(&self, id: u64, v: &[f32]) -> Result<(), InsertError> {
        if v.len() != self.dim {
            return Err(InsertError::Dimension {
                got: v.len(),
                want: self.dim,
            });
        }
        let id = match u32::try_from(id) {
            Ok(x) if x != NONE => x,
            _ => return Err(InsertError::IdOutOfRange(id)),
        };
        let (c, i) = locate(id);
        let chunk = self.chunks[c]
            .get_or_init(|| Chunk::new(1usize << (c as u32 + FIRST_CHUNK_BITS), self.dim, self.m0));
        if chunk.state[i]
            .compare_exchange(FREE, CLAIMED, Mo::Acquire, Mo::Relaxed)
            .is_err()
        {
            return Err(InsertError::IdTaken(id));
        }
        let row = &chunk.vectors[i * self.dim..(i + 1) * self.dim];
        // SAFETY: the CAS above made this thread the row's only writer, and
        // no reader touches it until READY is stored below.
        unsafe {
            std::ptr::copy_nonoverlapping(v.as_ptr(), UnsafeCell::raw_get(row.as_ptr()), self.dim)
        };
        let level = self.draw_level(id);
        if level > 0 {
            let len = level * (1 + self.m);
            let _ = chunk.upper[i].set(zeroed_u32s(len));
            self.upper_bytes.0.fetch_add(len * 4, Mo::Relaxed);
        }
        chunk.state[i].store(READY, Mo::Release);
        self.high.0.fetch_max(id as usize + 1, Mo::AcqRel);
        self.link(id, level, v);
        Ok(())
    }

    /// hnswlib's addPoint after the node's data is in place.
    fn link(&self, id: u32, level: usize, q: &[f32]) {
        let mut guard = None;
        let mut entry = self.entry();
        if entry.is_none_or(|(_, top)| level > top) {
            guard = Some(self.entry_lock.lock());
            entry = self.entry();
        }
        let Some((ep, top)) = entry else {
            // First node: it becomes the entry and has nothing to link to.
            self.entry
                .store(u64::from(id) | (level as u64) << 32, Mo::Release);
            return;
        };
        let mut cur = ep;
        let mut cur_d = self.rank(q, cur);
        let mut buf = Vec::with_capacity(self.m0);
        for l in (level + 1..=top).rev() {
            (cur, cur_d) = self.greedy(q, cur, cur_d, l, &mut buf);
        }
        // Own rows first, on every layer; back-links only once all of them
        // are written. Until then no other insert can reach this node, so
        // none starts a walk from a half-linked node (an empty layer-0 row
        // there left later nodes with one link and, under 3 writers, cut
        // off islands that no search reached). hnswlib gets the same by
        // holding the node's lock for its whole insert.
        let mut picks: Vec<(usize, Vec<Scored>)> = Vec::with_capacity(level.min(top) + 1);
        for l in (0..=level.min(top)).rev() {
            let found = self.search_layer(q, cur, cur_d, l, self.ef_construction, |_| true);
            let mut found: Vec<Scored> = found.into_vec();
            found.retain(|s| s.1 != id);
            if found.is_empty() {
                continue;
            }
            found.sort_unstable();
            let picked = self.heuristic(&found, self.m);
            let Scored(d, next) = picked.first().copied().unwrap_or(found[0]);
            if let Some((row, lock)) = self.row(id, l) {
                let _g = lock.lock();
                let ids: Vec<u32> = picked.iter().map(|s| s.1).collect();
                Self::write_row(row, &ids);
            }
            picks.push((l, picked));
            (cur, cur_d) = (next, d);
        }
        for (l, picked) in picks {
            self.link_back(id, q, &picked, l);
        }
        if guard.is_some() && level > top {
            self.entry
                .store(u64::from(id) | (level as u64) << 32, Mo::Release);
        }
    }

    /// Greedy walk on one upper layer: move to the closest neighbour until
    /// none is closer.
    fn greedy(
        &self,
        q: &[f32],
        mut cur: u32,
        mut cur_d: f32,
        level: usize,
        buf: &mut Vec<u32>,
    ) -> (u32, f32) {
        loop {
            let mut changed = false;
            self.read_row(cur, level, buf);
            for &nb in buf.iter() {
                let d = self.rank(q, nb);
                if d < cur_d {
                    cur = nb;
                    cur_d = d;
                    changed = true;
                }
            }
            if !changed {
                return (cur, cur_d);
            }
        }
    }

    /// Best-first beam of width `ef` on one layer from `(ep, ep_d)`
    /// (hnswlib's searchBaseLayer): stops once the nearest candidate is
    /// farther than the worst of `ef` results. Every node reached is walked
    /// through; only those `accept`ed become results. Max-heap of results.
    fn search_layer<F: Fn(u32) -> bool>(
        &self,
        q: &[f32],
        ep: u32,
        ep_d: f32,
        level: usize,
        ef: usize,
        accept: F,
    ) -> BinaryHeap<Scored> {
        let ef = ef.max(1);
        with_visited(self.high(), |visited| {
            let mut candidates: BinaryHeap<Reverse<Scored>> = BinaryHeap::with_capacity(ef * 2);
            let mut results: BinaryHeap<Scored> = BinaryHeap::with_capacity(ef + 1);
            let mut buf: Vec<u32> = Vec::with_capacity(self.m0);
            visited.mark(ep);
            candidates.push(Reverse(Scored(ep_d, ep)));
            if accept(ep) {
                results.push(Scored(ep_d, ep));
            }
            let mut todo: Vec<(u32, &[f32])> = Vec::with_capacity(self.m0);
            while let Some(Reverse(Scored(d, node))) = candidates.pop() {
                if results.len() >= ef && results.peek().is_some_and(|w| d > w.0) {
                    break;
                }
                self.read_row(node, level, &mut buf);
                todo.clear();
                todo.extend(
                    buf.iter()
                        .filter(|&&nb| visited.mark(nb))
                        .filter_map(|&nb| Some((nb, self.vector(nb)?))),
                );
                expand(
                    &todo,
                    |_, v| self.metric.rank(q, v),
                    ef,
                    &accept,
                    &mut candidates,
                    &mut results,
                );
            }
            results
        })
    }

    /// hnswlib's getNeighborsByHeuristic2: from candidates sorted by
    /// ascending distance to the base, keep one only if it is closer to the
    /// base than to every one kept so far, up to `cap`. Keeps links pointing
    /// in different directions instead of into one cluster.
    fn heuristic(&self, sorted: &[Scored], cap: usize) -> Vec<Scored> {
        if sorted.len() <= cap {
            return sorted.to_vec();
        }
        let mut kept: Vec<(Scored, &[f32])> = Vec::with_capacity(cap);
        for &s in sorted {
            if kept.len() >= cap {
                break;
            }
            let Some(v) = self.vector(s.1) else { continue };
            if kept.iter().all(|(_, kv)| self.metric.rank(v, kv) >= s.0) {
                kept.push((s, v));
            }
        }
        kept.into_iter().map(|(s, _)| s).collect()
    }

    /// The second half of hnswlib's mutuallyConnectNewElement: adds `id`
    /// to the row of each node it `picked` on `level`, shrinking a full row
    /// with the same heuristic (which may drop `id` again).
    fn link_back(&self, id: u32, q: &[f32], picked: &[Scored], level: usize) {
        let cap = if level == 0 { self.m0 } else { self.m };
        let mut cur: Vec<u32> = Vec::with_capacity(cap + 1);
        for s in picked {
            let Some((row, lock)) = self.row(s.1, level) else {
                continue;
            };
            let Some(sv) = self.vector(s.1) else { continue };
            let _g = lock.lock();
            let c = (row[0].load(Mo::Acquire) as usize).min(row.len() - 1);
            cur.clear();
            cur.extend(row[1..1 + c].iter().map(|x| x.load(Mo::Acquire)));
            if cur.contains(&id) {
                continue;
            }
            if c < cap {
                row[1 + c].store(id, Mo::Release);
                row[0].store(c as u32 + 1, Mo::Release);
                continue;
            }
            let mut cands: Vec<Scored> = cur
                .iter()
                .map(|&nb| Scored(self.rank(sv, nb), nb))
                .collect();
            cands.push(Scored(self.metric.rank(sv, q), id));
            cands.sort_unstable();
            let keep: Vec<u32> = self.heuristic(&cands, cap).iter().map(|s| s.1).collect();
            Self::write_row(row, &keep);
        }
    }

    /// Up to `k` nearest accepted nodes to `q` as (node, rank), ascending:
    /// greedy descent through the upper layers, then a beam of width
    /// `max(ef, k)` on layer 0. Rejected nodes are still walked through, so
    /// tombstones and filters do not cut paths.
    pub fn search<F: Fn(u32) -> bool>(
        &self,
        q: &[f32],
        k: usize,
        ef: usize,
        accept: F,
    ) -> Vec<(u32, f32)> {
        if k == 0 || q.len() != self.dim {
            return Vec::new();
        }
        let Some((ep, top)) = self.entry() else {
            return Vec::new();
        };
        let mut cur = ep;
        let mut cur_d = self.rank(q, cur);
        let mut buf = Vec::with_capacity(self.m0);
        for l in (1..=top).rev() {
            (cur, cur_d) = self.greedy(q, cur, cur_d, l, &mut buf);
        }
        let results = self.search_layer(q, cur, cur_d, 0, ef.max(k), accept);
        let mut out: Vec<(u32, f32)> = results.into_iter().map(|s| (s.1, s.0)).collect();
        out.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
        out.truncate(k);
        out
    }

    /// Approximate heap bytes: vector and layer-0 rows of the nodes reached
    /// so far (later pages of a chunk are zeroed and never touched), upper
    /// rows, and the per-slot locks and row cells of every allocated chunk.
    pub fn memory_bytes(&self) -> usize {
        let per_node = self.dim * 4 + (1 + self.m0) * 4;
        let slots: usize = self
            .chunks
            .iter()
            .enumerate()
            .filter(|(_, c)| c.get().is_some())
            .map(|(c, _)| 1usize << (c as u32 + FIRST_CHUNK_BITS))
            .sum();
        let per_slot = std::mem::size_of::<OnceLock<Box<[AtomicU32]>>>()
            + std::mem::size_of::<Mutex<()>>()
            + 1;
        self.high() * per_node + self.upper_bytes.0.load(Mo::Relaxed) + slots * per_slot
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;
    use rand_distr::StandardNormal;

    /// Clustered unit vectors: `n` points around `n / 50` random centres.
    fn clustered(n: usize, dim: usize, seed: u64) -> Vec<Vec<f32>> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let centres: Vec<Vec<f32>> = (0..(n / 50).max(1))
            .map(|_| {
                (0..dim)
                    .map(|_| rng.sample::<f32, _>(StandardNormal))
                    .collect()
            })
            .collect();
        (0..n)
            .map(|_| {
                let c = &centres[rng.random_range(0..centres.len())];
                let mut v: Vec<f32> = c
                    .iter()
                    .map(|x| x + 0.6 * rng.sample::<f32, _>(StandardNormal))
                    .collect();
                Metric::Cosine.prepare(&mut v);
                v
            })
            .collect()
    }

    fn brute(data: &[Vec<f32>], q: &[f32], k: usize) -> Vec<u32> {
        let mut d: Vec<(u32, f32)> = data
            .iter()
            .enumerate()
            .map(|(i, v)| (i as u32, Metric::Cosine.rank(q, v)))
            .collect();
        d.sort_by(|a, b| a.1.total_cmp(&b.1));
        d.into_iter().take(k).map(|x| x.0).collect()
    }

    fn build(data: &[Vec<f32>], m: usize, efc: usize) -> Hnsw {
        use rayon::prelude::*;
        let g = Hnsw::new(data[0].len(), Metric::Cosine, m, efc);
        data.par_iter()
            .enumerate()
            .for_each(|(i, v)| g.insert(i as u64, v).unwrap());
        g
    }

    #[test]
    fn locate_maps_ids_onto_doubling_chunks() {
        assert_eq!(locate(0), (0, 0));
        assert_eq!(locate(1023), (0, 1023));
        assert_eq!(locate(1024), (1, 0));
        assert_eq!(locate(3071), (1, 2047));
        assert_eq!(locate(3072), (2, 0));
        let (c, i) = locate(NONE - 1);
        assert!(c < MAX_CHUNKS);
        assert!(i < 1usize << (c as u32 + FIRST_CHUNK_BITS));
    }

    #[test]
    fn recall_against_brute_force() {
        let (n, dim) = (5000, 32);
        let all = clustered(n + 100, dim, 7);
        let (data, queries) = all.split_at(n);
        let g = build(data, 16, 100);
        let k = 10;
        let mut hit = 0;
        for q in queries {
            let truth = brute(data, q, k);
            let got = g.search(q, k, 64, |_| true);
            assert_eq!(got.len(), k);
            assert!(got.windows(2).all(|w| w[0].1 <= w[1].1));
            hit += got.iter().filter(|(i, _)| truth.contains(i)).count();
        }
        let recall = hit as f64 / (k * queries.len()) as f64;
        assert!(recall >= 0.95, "recall@10 at ef 64: {recall}");
    }

    #[test]
    fn rows_respect_caps_and_levels() {
        let data = clustered(3000, 16, 3);
        let g = build(&data, 8, 64);
        let (entry, top) = g.entry().unwrap();
        assert_eq!(g.level(entry), top);
        for id in 0..3000u32 {
            let l = g.level(id);
            assert!(l <= top);
            let nb0 = g.neighbours(id, 0);
            assert!(nb0.len() <= 16 && !nb0.is_empty(), "node {id}: {nb0:?}");
            assert!(nb0.iter().all(|&x| x < 3000 && x != id));
            for lv in 1..=l {
                let nb = g.neighbours(id, lv);
                assert!(nb.len() <= 8);
                assert!(nb.iter().all(|&x| g.level(x) >= lv));
            }
        }
    }

    #[test]
    fn grows_across_chunk_boundaries() {
        // 1024 + 2048 + 1000: three chunks, ids in all of them.
        let n = 4072;
        let data = clustered(n, 8, 11);
        let g = Hnsw::new(8, Metric::Cosine, 8, 40);
        for (i, v) in data.iter().enumerate() {
            g.insert(i as u64, v).unwrap();
        }
        assert_eq!(g.high(), n);
        for id in [0u32, 1023, 1024, 3071, 3072, n as u32 - 1] {
            assert_eq!(g.vector(id).unwrap(), &data[id as usize][..]);
            let hit = g.search(&data[id as usize], 1, 32, |_| true);
            assert_eq!(
                g.metric
                    .rank(&data[id as usize], g.vector(hit[0].0).unwrap()),
                hit[0].1
            );
            assert!(hit[0].1 < 1e-5, "node {id} not found by its own vector");
        }
        assert!(g.vector(n as u32).is_none());
        assert!(g.vector(NONE).is_none());
    }

    #[test]
    fn refuses_misuse_without_panicking() {
        let g = Hnsw::new(4, Metric::L2, 4, 16);
        assert!(g.search(&[0.0; 4], 3, 10, |_| true).is_empty());
        assert_eq!(
            g.insert(0, &[1.0; 3]),
            Err(InsertError::Dimension { got: 3, want: 4 })
        );
        assert_eq!(
            g.insert(u64::from(NONE), &[1.0; 4]),
            Err(InsertError::IdOutOfRange(u64::from(NONE)))
        );
        g.insert(5, &[1.0; 4]).unwrap();
        assert_eq!(g.insert(5, &[2.0; 4]), Err(InsertError::IdTaken(5)));
        assert_eq!(g.vector(5).unwrap(), &[1.0; 4]);
        // Gaps are fine: ids 0..5 were never inserted.
        assert!(g.vector(0).is_none());
        assert_eq!(g.search(&[1.0; 4], 3, 10, |_| true), vec![(5, 0.0)]);
        assert!(g.search(&[1.0; 3], 3, 10, |_| true).is_empty());
    }

    #[test]
    fn concurrent_inserts_and_searches() {
        let n = 6000;
        let dim = 24;
        let data = std::sync::Arc::new(clustered(n, dim, 5));
        let g = std::sync::Arc::new(Hnsw::new(dim, Metric::Cosine, 12, 60));
        let writers = 3;
        let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        std::thread::scope(|s| {
            for w in 0..writers {
                let (g, data) = (g.clone(), data.clone());
                s.spawn(move || {
                    for i in (w..n).step_by(writers) {
                        g.insert(i as u64, &data[i]).unwrap();
                    }
                });
            }
            for r in 0..2 {
                let (g, data, done) = (g.clone(), data.clone(), done.clone());
                s.spawn(move || {
                    let mut i = r;
                    let mut searches = 0;
                    while !done.load(Mo::Relaxed) || searches < 100 {
                        let hits = g.search(&data[i % n], 5, 32, |_| true);
                        // Whatever was visible: sorted, real nodes, ranks
                        // that match their vectors.
                        assert!(hits.windows(2).all(|w| w[0].1 <= w[1].1));
                        for (id, r) in hits {
                            let v = g.vector(id).expect("a hit is an inserted node");
                            assert_eq!(Metric::Cosine.rank(&data[i % n], v), r);
                        }
                        i += 7;
                        searches += 1;
                    }
                });
            }
            // Writers are joined when the scope's writer threads end; signal
            // readers once every id is in.
            while g.high() < n || (0..n as u32).any(|id| g.vector(id).is_none()) {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            done.store(true, Mo::Relaxed);
        });
        let mut missed = Vec::new();
        for (i, v) in data.iter().enumerate() {
            let hits = g.search(v, 1, 64, |_| true);
            if hits.first().is_none_or(|h| h.1 > 1e-5) {
                missed.push(i);
            }
        }
        assert!(
            missed.is_empty(),
            "not findable by their own vector: {missed:?}"
        );
    }

    #[test]
    fn sealed_export_searches_exactly_like_the_graph() {
        let (n, dim) = (3000, 16);
        let all = clustered(n + 50, dim, 21);
        let (data, queries) = all.split_at(n);
        let g = build(data, 8, 64);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("graph.bin");
        crate::index::hnsw_mapped::export(&g, n, &path).unwrap();
        let sealed = crate::index::hnsw_mapped::Graph::open(&path).unwrap();
        assert_eq!(sealed.len(), n);
        let flat: Vec<f32> = data.concat();
        let space = crate::index::hnsw_mapped::Space {
            vectors: &flat,
            dim,
            metric: Metric::Cosine,
        };
        for q in queries {
            for ef in [10, 40] {
                let mem = g.search(q, 10, ef, |_| true);
                let file = sealed.search(space, q, 10, ef, &|_| true).unwrap();
                assert_eq!(mem, file, "ef {ef}");
                let odd = |id: u32| id % 2 == 1;
                let mem = g.search(q, 10, ef, odd);
                let file = sealed.search(space, q, 10, ef, &odd).unwrap();
                assert_eq!(mem, file, "ef {ef}, filtered");
            }
        }
        // A graph with nodes beyond the exported prefix drops links to them.
        crate::index::hnsw_mapped::export(&g, 100, &path).unwrap();
        let part = crate::index::hnsw_mapped::Graph::open(&path).unwrap();
        let hits = part.search(space, &data[5], 5, 32, &|_| true).unwrap();
        assert!(hits.iter().all(|(id, _)| *id < 100));
    }

    #[test]
    fn accept_filters_results_but_not_the_walk() {
        let data = clustered(2000, 16, 9);
        let g = build(&data, 8, 64);
        let even = |id: u32| id.is_multiple_of(2);
        for q in data.iter().take(20) {
            let hits = g.search(q, 10, 64, even);
            assert_eq!(hits.len(), 10);
            assert!(hits.iter().all(|(id, _)| even(*id)));
        }
        assert!(g.search(&data[0], 10, 64, |_| false).is_empty());
    }
}
