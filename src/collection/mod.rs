//! A collection: WAL + one mutable segment (+ one frozen while it is being
//! sealed) + N sealed segments, and the background work that seals and
//! merges them.
//!
//! Writes are serialised by the writer mutex, so log order is apply order. A
//! write is validated whole, logged (and synced per policy), then applied; a
//! batch with one bad point is refused before anything is logged. Reads take
//! a snapshot of the segment list and never wait for writers, sealing or
//! merging.
//!
//! Directory layout:
//!
//! ```text
//! <name>/collection.json        configuration
//! <name>/manifest.json          sealed segments, their tombstones, WAL checkpoint
//! <name>/wal-<seq>.log          write-ahead log files, records above the checkpoint
//! <name>/seg-<id>/...           sealed segment files (see `sealed`)
//! ```
//!
//! Sealing: when the mutable segment reaches the seal threshold (or on
//! `Flush`) it is frozen and a new WAL file begins; a background thread
//! writes it out as a sealed segment, then, under the writer lock, carries
//! over deletes that hit it meanwhile, records it in the manifest with the
//! checkpoint, and deletes the WAL files the checkpoint covers. Merging
//! rewrites sealed segments with many tombstones, or several of a similar
//! size, into one, the same way.
//!
//! Layer: may import `segment`, `index`, `storage`, `io` and the root
//! modules; never `investigate`, `api`, `tools` or `cli`.

pub mod config;
pub mod registry;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Instant;

use parking_lot::{Mutex, RwLock};
use rayon::prelude::*;

use crate::collection::config::{CONFIG_FILE, Config};
use crate::error::{Error, Result};
use crate::index::filter::Filter;
use crate::pb;
use crate::segment::mutable::{MutableSegment, Prepared};
use crate::segment::sealed::SealedSegment;
use crate::storage::manifest::{Manifest, SegmentEntry, segment_dir_name};
use crate::storage::wal::{self, SyncPolicy, Wal, WalRecord};
use crate::validate;

/// Storage settings shared by all collections of a server.
#[derive(Clone, Debug)]
pub struct StorageOptions {
    pub sync: SyncPolicy,
    /// Points in the mutable segment that trigger sealing.
    pub seal_threshold: usize,
    /// Sealed segments whose dead fraction passes this are rewritten.
    pub merge_dead_ratio: f64,
    /// This many sealed segments of one size tier are merged into one.
    pub merge_factor: usize,
    /// Check sealed files' checksums in the background after open.
    pub verify_on_open: bool,
}

pub const DEFAULT_SEAL_THRESHOLD: usize = 100_000;

impl Default for StorageOptions {
    fn default() -> Self {
        StorageOptions {
            sync: SyncPolicy::Always,
            seal_threshold: DEFAULT_SEAL_THRESHOLD,
            merge_dead_ratio: 0.2,
            merge_factor: 4,
            verify_on_open: true,
        }
    }
}

/// One query's hit, resolved to id and metadata.
#[derive(Clone, Debug)]
pub struct Hit {
    pub id: String,
    pub distance: f32,
    pub metadata: pb::Metadata,
    /// With `group_by_media`: points of this media among the candidates.
    pub matched_faces: u32,
}

/// How a search is narrowed and shaped beyond k and ef.
#[derive(Clone, Debug, Default)]
pub struct SearchOptions {
    pub filter: Option<Filter>,
    /// For point-id queries: drop hits sharing the query point's upload.
    pub exclude_same_upload: bool,
    /// For point-id queries: drop hits sharing the query point's case.
    pub exclude_same_case: bool,
    /// Top-k distinct media instead of top-k points.
    pub group_by_media: bool,
}

/// Largest candidate pool `group_by_media` widens to.
const MAX_GROUP_POOL: usize = 4096;

/// A search query inside the engine.
#[derive(Clone, Debug)]
pub enum Query {
    Vector(Vec<f32>),
    PointId(String),
}

/// A segment of either kind, for code that treats them alike.
#[derive(Clone)]
enum Seg {
    Mutable(Arc<MutableSegment>),
    Sealed(Arc<SealedSegment>),
}

impl Seg {
    fn lookup(&self, id: &str) -> Result<Option<usize>> {
        match self {
            Seg::Mutable(m) => Ok(m.lookup(id)),
            Seg::Sealed(s) => s.lookup(id),
        }
    }

    /// Tombstones `id` at `off`; true if it was live.
    fn kill(&self, id: &str, off: usize) -> bool {
        match self {
            Seg::Mutable(m) => m.delete(id),
            Seg::Sealed(s) => s.kill(off),
        }
    }

    fn search(
        &self,
        q: &[f32],
        k: usize,
        ef: usize,
        exclude: Option<usize>,
        filter: Option<&Filter>,
    ) -> Result<Vec<(usize, f32)>> {
        match self {
            Seg::Mutable(m) => Ok(m.search(q, k, ef, exclude, filter)),
            Seg::Sealed(s) => s.search(q, k, ef, exclude, filter),
        }
    }

    fn exact_search(
        &self,
        q: &[f32],
        k: usize,
        filter: Option<&Filter>,
    ) -> Result<Vec<(usize, f32)>> {
        match self {
            Seg::Mutable(m) => Ok(m.exact_search(q, k, None, filter)),
            Seg::Sealed(s) => s.exact_search(q, k, None, filter),
        }
    }

    fn describe(&self, off: usize) -> Result<(String, pb::Metadata)> {
        match self {
            Seg::Mutable(m) => m
                .describe(off)
                .ok_or_else(|| Error::Internal(format!("offset {off} missing in mutable segment"))),
            Seg::Sealed(s) => Ok((s.id_at(off)?.to_owned(), s.metadata_at(off)?)),
        }
    }

    fn point(&self, id: &str, off: usize) -> Result<Option<pb::Point>> {
        match self {
            Seg::Mutable(m) => Ok(m.get(id)),
            Seg::Sealed(s) => s.point_at(off).map(Some),
        }
    }

    fn vector(&self, off: usize) -> Result<Vec<f32>> {
        match self {
            Seg::Mutable(m) => m
                .vector_at(off)
                .ok_or_else(|| Error::Internal(format!("offset {off} missing in mutable segment"))),
            Seg::Sealed(s) => Ok(s.vector_at(off)?.to_vec()),
        }
    }

    fn same(&self, other: &Seg) -> bool {
        match (self, other) {
            (Seg::Mutable(a), Seg::Mutable(b)) => Arc::ptr_eq(a, b),
            (Seg::Sealed(a), Seg::Sealed(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }
}

/// The segment list at one moment; replaced whole, never edited in place.
struct Segments {
    mutable: Arc<MutableSegment>,
    frozen: Option<Arc<MutableSegment>>,
    /// Oldest first.
    sealed: Vec<Arc<SealedSegment>>,
}

impl Segments {
    /// Newest first: where a live id is found first is where it lives.
    fn all(&self) -> Vec<Seg> {
        let mut v = vec![Seg::Mutable(self.mutable.clone())];
        if let Some(f) = &self.frozen {
            v.push(Seg::Mutable(f.clone()));
        }
        v.extend(self.sealed.iter().rev().map(|s| Seg::Sealed(s.clone())));
        v
    }

    fn locate(&self, id: &str) -> Result<Option<(Seg, usize)>> {
        for seg in self.all() {
            if let Some(off) = seg.lookup(id)? {
                return Ok(Some((seg, off)));
            }
        }
        Ok(None)
    }
}

/// What only writers touch.
struct Writer {
    wal: Wal,
    manifest: Manifest,
    /// Checkpoint the frozen segment will establish once sealed.
    frozen_checkpoint: Option<u64>,
}

pub struct Collection {
    config: Config,
    dir: PathBuf,
    opts: StorageOptions,
    writer: Mutex<Writer>,
    segs: RwLock<Arc<Segments>>,
    /// One seal or merge at a time.
    maintenance: Mutex<()>,
    /// A background seal thread is scheduled or running.
    sealing: AtomicBool,
    /// Set when a background check finds a corrupt file: DATA_LOSS from then on.
    failure: RwLock<Option<String>>,
    closed: AtomicBool,
    me: Weak<Collection>,
}

impl Collection {
    /// Creates the collection's files in `dir` (which must not exist yet).
    pub fn create(dir: &Path, config: Config, opts: StorageOptions) -> Result<()> {
        std::fs::create_dir(dir).map_err(|e| Error::io(dir, e))?;
        let json =
            serde_json::to_vec_pretty(&config).map_err(|e| Error::Internal(e.to_string()))?;
        crate::storage::durable::write_durably(&dir.join(CONFIG_FILE), &json)?;
        Manifest::default().store(dir)?;
        Wal::create(&dir.join(wal::file_name(1)), 1, opts.sync)?;
        crate::storage::durable::sync_dir(dir)
    }

    /// Opens a collection: maps its sealed segments, replays the WAL above
    /// the checkpoint, removes files the manifest does not name, and starts
    /// the background checksum pass.
    pub fn open(dir: &Path, opts: StorageOptions) -> Result<Arc<Collection>> {
        let started = Instant::now();
        let cfg_path = dir.join(CONFIG_FILE);
        let bytes = std::fs::read(&cfg_path).map_err(|e| Error::io(&cfg_path, e))?;
        let config: Config = serde_json::from_slice(&bytes)
            .map_err(|e| Error::data_loss(&cfg_path, format!("unreadable configuration: {e}")))?;
        crate::storage::versions::CONFIG.check(&cfg_path, config.format)?;
        let manifest = Manifest::load(dir)?;
        remove_garbage(dir, &manifest)?;
        let mut sealed = Vec::with_capacity(manifest.segments.len());
        for e in &manifest.segments {
            let sdir = dir.join(segment_dir_name(e.id));
            let s = SealedSegment::open(
                e.id,
                &sdir,
                config.dim as usize,
                config.metric,
                &e.tombstones,
            )?;
            if s.len() as u64 != e.points {
                return Err(Error::data_loss(
                    &sdir,
                    format!("segment has {} points, manifest says {}", s.len(), e.points),
                ));
            }
            sealed.push(Arc::new(s));
        }
        // The log: files wholly at or below the checkpoint are leftovers of
        // an interrupted clean-up; the rest is replayed in order.
        let mut files = wal::list_files(dir)?;
        while files.len() > 1 && files[1].0 <= manifest.checkpoint + 1 {
            let (_, p) = files.remove(0);
            std::fs::remove_file(&p).map_err(|e| Error::io(&p, e))?;
        }
        if let Some((first, p)) = files.first()
            && *first > manifest.checkpoint + 1
        {
            return Err(Error::data_loss(
                p,
                format!(
                    "log records {}..{} are missing",
                    manifest.checkpoint + 1,
                    first - 1
                ),
            ));
        }
        let mutable = Arc::new(new_mutable(&config));
        let segs = Segments {
            mutable,
            frozen: None,
            sealed,
        };
        let mut replayed = 0usize;
        let mut dropped = 0u64;
        let mut active = None;
        let nfiles = files.len();
        for (i, (first, path)) in files.into_iter().enumerate() {
            let (w, rec) = Wal::open(&path, first, opts.sync, i + 1 == nfiles)?;
            dropped += rec.dropped_bytes;
            for r in rec
                .records
                .into_iter()
                .filter(|r| r.seq > manifest.checkpoint)
            {
                replayed += 1;
                apply(&segs, r)?;
            }
            active = Some(w);
        }
        let wal = match active {
            Some(w) => w,
            None => {
                let seq = manifest.checkpoint + 1;
                let w = Wal::create(&dir.join(wal::file_name(seq)), seq, opts.sync)?;
                crate::storage::durable::sync_dir(dir)?;
                w
            }
        };
        let c = Arc::new_cyclic(|me| Collection {
            dir: dir.to_owned(),
            opts: opts.clone(),
            writer: Mutex::new(Writer {
                wal,
                manifest,
                frozen_checkpoint: None,
            }),
            segs: RwLock::new(Arc::new(segs)),
            maintenance: Mutex::new(()),
            sealing: AtomicBool::new(false),
            failure: RwLock::new(None),
            closed: AtomicBool::new(false),
            me: me.clone(),
            config,
        });
        tracing::info!(
            collection = %c.config.name,
            points = c.len(),
            sealed_segments = c.snapshot().sealed.len(),
            wal_records_replayed = replayed,
            wal_bytes_dropped = dropped,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "collection opened"
        );
        if opts.verify_on_open && !c.snapshot().sealed.is_empty() {
            c.spawn("verify", |c| c.verify_sealed());
        }
        if let SyncPolicy::Interval(every) = opts.sync {
            let weak = Arc::downgrade(&c);
            std::thread::Builder::new()
                .name("vidx-wal-flush".into())
                .spawn(move || flusher(weak, every))
                .map_err(|e| Error::Internal(format!("cannot start the WAL flusher: {e}")))?;
        }
        c.maybe_seal_in_background();
        Ok(c)
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn name(&self) -> &str {
        &self.config.name
    }

    fn snapshot(&self) -> Arc<Segments> {
        self.segs.read().clone()
    }

    /// DATA_LOSS if a background check found a corrupt file.
    pub fn check(&self) -> Result<()> {
        match &*self.failure.read() {
            Some(why) => Err(Error::DataLoss {
                path: self.dir.clone(),
                what: format!("collection {:?} is unavailable: {why}", self.config.name),
            }),
            None => Ok(()),
        }
    }

    /// Stops background work (the collection is being dropped).
    pub fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
    }

    fn spawn(&self, what: &'static str, f: impl FnOnce(Arc<Collection>) + Send + 'static) {
        let Some(me) = self.me.upgrade() else { return };
        let name = format!("vidx-{what}");
        if let Err(e) = std::thread::Builder::new().name(name).spawn(move || f(me)) {
            tracing::error!(collection = %self.config.name, error = %e, "cannot start background {what}");
        }
    }

    fn verify_sealed(&self) {
        let started = Instant::now();
        for s in self.snapshot().sealed.iter() {
            if self.closed.load(Ordering::SeqCst) {
                return;
            }
            if let Err(e) = s.verify().and_then(|_| s.meta_index().map(|_| ())) {
                tracing::error!(collection = %self.config.name, error = %e, "corrupt segment file: collection unavailable");
                *self.failure.write() = Some(e.to_string());
                return;
            }
        }
        tracing::info!(collection = %self.config.name, elapsed_ms = started.elapsed().as_millis() as u64, "sealed segments verified");
    }

    /// Validates a batch whole and prepares its vectors. Within a batch the
    /// last occurrence of an id wins, as if the points were upserted in order.
    pub fn prepare(&self, points: Vec<pb::Point>) -> Result<Vec<Prepared>> {
        let mut out: Vec<Prepared> = Vec::with_capacity(points.len());
        let mut seen: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
        for (i, p) in points.into_iter().enumerate() {
            validate::point_id(&format!("points[{i}].id"), &p.id)?;
            let at = format!("points[{i}] (id {})", validate::show(&p.id));
            validate::vector(
                &format!("{at}: vector"),
                &p.vector,
                self.config.dim,
                self.config.metric.to_pb(),
            )?;
            let metadata = p.metadata.unwrap_or_default();
            validate::metadata(&format!("{at}: metadata"), &metadata)?;
            let mut vector = p.vector;
            self.config.metric.prepare(&mut vector);
            let prepared = Prepared {
                id: p.id,
                vector,
                metadata,
            };
            match seen.get(&prepared.id) {
                Some(&j) => out[j] = prepared,
                None => {
                    seen.insert(prepared.id.clone(), out.len());
                    out.push(prepared);
                }
            }
        }
        Ok(out)
    }

    /// Validates, logs and applies a batch; returns how many points it held.
    pub fn upsert(&self, points: Vec<pb::Point>) -> Result<usize> {
        self.check()?;
        let prepared = self.prepare(points)?;
        if prepared.is_empty() {
            return Ok(0);
        }
        let n = prepared.len();
        let rec = WalRecord {
            seq: 0,
            upserts: prepared.iter().map(to_pb_point).collect(),
            deletes: Vec::new(),
        };
        let mut w = self.writer.lock();
        w.wal.append(rec)?;
        let segs = self.snapshot();
        apply_upserts(&segs, prepared)?;
        drop(w);
        self.maybe_seal_in_background();
        Ok(n)
    }

    /// Logs and applies a delete; returns how many ids were live.
    pub fn delete(&self, ids: Vec<String>) -> Result<usize> {
        self.check()?;
        for (i, id) in ids.iter().enumerate() {
            validate::point_id(&format!("ids[{i}]"), id)?;
        }
        let mut w = self.writer.lock();
        let segs = self.snapshot();
        let mut live = Vec::new();
        for id in ids {
            if segs.locate(&id)?.is_some() && !live.contains(&id) {
                live.push(id);
            }
        }
        if live.is_empty() {
            return Ok(0);
        }
        w.wal.append(WalRecord {
            seq: 0,
            upserts: Vec::new(),
            deletes: live.clone(),
        })?;
        apply_deletes(&segs, &live)
    }

    /// Runs queries (in parallel); one result list per query, ascending distance.
    pub fn search(
        &self,
        queries: &[Query],
        k: usize,
        ef: usize,
        opts: &SearchOptions,
    ) -> Result<Vec<Vec<Hit>>> {
        self.check()?;
        let segs = self.snapshot();
        let all = segs.all();
        let mut resolved = Vec::with_capacity(queries.len());
        for (i, q) in queries.iter().enumerate() {
            resolved.push(match q {
                Query::Vector(v) => {
                    validate::vector(
                        &format!("queries[{i}].vector.values"),
                        v,
                        self.config.dim,
                        self.config.metric.to_pb(),
                    )?;
                    let mut v = v.clone();
                    self.config.metric.prepare(&mut v);
                    (v, None, opts.filter.clone())
                }
                Query::PointId(id) => {
                    validate::point_id(&format!("queries[{i}].point_id"), id)?;
                    let (seg, off) = segs.locate(id)?.ok_or_else(|| Error::PointNotFound {
                        collection: self.config.name.clone(),
                        id: id.clone(),
                    })?;
                    let filter = if opts.exclude_same_upload || opts.exclude_same_case {
                        let (_, m) = seg.describe(off)?;
                        let mut f = opts.filter.clone().unwrap_or_default();
                        if opts.exclude_same_upload && !m.upload_id.is_empty() {
                            f.upload_ids_none.push(m.upload_id.clone());
                            f.upload_ids_none.sort();
                            f.upload_ids_none.dedup();
                        }
                        if opts.exclude_same_case && !m.case_id.is_empty() {
                            f.case_ids_none.push(m.case_id.clone());
                            f.case_ids_none.sort();
                            f.case_ids_none.dedup();
                        }
                        (!f.is_empty()).then_some(f)
                    } else {
                        opts.filter.clone()
                    };
                    (seg.vector(off)?, Some((seg, off)), filter)
                }
            });
        }
        resolved
            .par_iter()
            .map(|(v, exclude, filter)| {
                let mut pool = if opts.group_by_media {
                    (4 * k).clamp(40, MAX_GROUP_POOL)
                } else {
                    k
                };
                loop {
                    let mut cands: Vec<(usize, usize, f32)> = Vec::new();
                    for (si, seg) in all.iter().enumerate() {
                        let ex = exclude
                            .as_ref()
                            .filter(|(s, _)| s.same(seg))
                            .map(|(_, o)| *o);
                        for (off, r) in seg.search(v, pool, ef.max(pool), ex, filter.as_ref())? {
                            cands.push((si, off, r));
                        }
                    }
                    let hits = self.resolve(&all, cands, pool)?;
                    if !opts.group_by_media {
                        return Ok(hits);
                    }
                    let saturated = hits.len() >= pool;
                    let grouped = group_by_media(hits, k);
                    if grouped.len() >= k || !saturated || pool >= MAX_GROUP_POOL {
                        return Ok(grouped);
                    }
                    pool = (pool * 4).min(MAX_GROUP_POOL);
                }
            })
            .collect()
    }

    /// Exact k-NN by brute force over every segment; the ground truth for
    /// recall measurements.
    pub fn exact_search(
        &self,
        query: &[f32],
        k: usize,
        filter: Option<&Filter>,
    ) -> Result<Vec<Hit>> {
        let mut v = query.to_vec();
        self.config.metric.prepare(&mut v);
        let all = self.snapshot().all();
        let mut cands = Vec::new();
        for (si, seg) in all.iter().enumerate() {
            for (off, r) in seg.exact_search(&v, k, filter)? {
                cands.push((si, off, r));
            }
        }
        self.resolve(&all, cands, k)
    }

    /// Merges per-segment candidates: ascending rank, one hit per id (an id
    /// being replaced can briefly be live in two segments), at most k.
    fn resolve(
        &self,
        all: &[Seg],
        mut cands: Vec<(usize, usize, f32)>,
        k: usize,
    ) -> Result<Vec<Hit>> {
        cands.sort_by(|a, b| a.2.total_cmp(&b.2));
        let mut hits: Vec<Hit> = Vec::with_capacity(k);
        for (si, off, r) in cands {
            if hits.len() == k {
                break;
            }
            let (id, metadata) = all[si].describe(off)?;
            if hits.iter().any(|h| h.id == id) {
                continue;
            }
            hits.push(Hit {
                id,
                distance: self.config.metric.from_rank(r),
                metadata,
                matched_faces: 0,
            });
        }
        Ok(hits)
    }

    /// A consistent view of the collection for batch work (linking, triage):
    /// it holds the segment list of this moment, so a long job sees one
    /// state while writes, seals and merges go on.
    pub fn view(&self) -> Result<View> {
        self.check()?;
        Ok(View {
            all: self.snapshot().all(),
            metric: self.config.metric,
            dim: self.config.dim as usize,
        })
    }

    pub fn get(&self, ids: &[String]) -> Result<Vec<pb::Point>> {
        self.check()?;
        let segs = self.snapshot();
        let mut out = Vec::new();
        for id in ids {
            if let Some((seg, off)) = segs.locate(id)?
                && let Some(p) = seg.point(id, off)?
            {
                out.push(p);
            }
        }
        Ok(out)
    }

    /// Live points.
    pub fn len(&self) -> usize {
        let s = self.snapshot();
        s.mutable.live_count()
            + s.frozen.as_ref().map_or(0, |f| f.live_count())
            + s.sealed.iter().map(|x| x.live_count()).sum::<usize>()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn info(&self) -> pb::CollectionInfo {
        let s = self.snapshot();
        let memory = s.mutable.memory_bytes()
            + s.frozen.as_ref().map_or(0, |f| f.memory_bytes())
            + s.sealed.iter().map(|x| (x.len() / 8) as u64).sum::<u64>();
        pb::CollectionInfo {
            name: self.config.name.clone(),
            dim: self.config.dim,
            metric: self.config.metric.to_pb() as i32,
            kind: self.config.kind.to_pb() as i32,
            points: self.len() as u64,
            segments: (1 + s.frozen.is_some() as usize + s.sealed.len()) as u32,
            memory_bytes: memory,
            disk_bytes: crate::storage::durable::dir_size(&self.dir),
            hnsw: Some(pb::HnswConfig {
                m: self.config.m,
                ef_construction: self.config.ef_construction,
            }),
        }
    }

    // ---- sealing and merging -------------------------------------------

    /// Freezes the mutable segment if it is over the threshold and starts a
    /// background seal.
    fn maybe_seal_in_background(&self) {
        let over = {
            let s = self.snapshot();
            s.frozen.is_none() && s.mutable.next_offset() >= self.opts.seal_threshold
        };
        // One scheduled seal at a time: later writes find it pending.
        if over && !self.sealing.swap(true, Ordering::SeqCst) {
            self.spawn("seal", |c| {
                let _m = c.maintenance.lock();
                let r = c.seal_once(false).and_then(|_| c.merge_while_needed());
                c.sealing.store(false, Ordering::SeqCst);
                if let Err(e) = r {
                    tracing::error!(collection = %c.config.name, error = %e, "background sealing failed; will retry on next write");
                }
            });
        }
    }

    /// Seals the mutable segment now and waits for it; returns (segments,
    /// points sealed).
    pub fn flush(&self) -> Result<(u32, u64)> {
        self.check()?;
        let _m = self.maintenance.lock();
        let sealed = self.seal_once(true)?;
        Ok((self.info().segments, sealed as u64))
    }

    /// Under the maintenance lock: freeze (if `force` or over threshold)
    /// and seal. Returns the number of points sealed.
    fn seal_once(&self, force: bool) -> Result<usize> {
        let mut sealed_points = 0;
        loop {
            {
                let mut w = self.writer.lock();
                let s = self.snapshot();
                if s.frozen.is_none() {
                    let n = s.mutable.next_offset();
                    let want = if force {
                        n > 0
                    } else {
                        n >= self.opts.seal_threshold
                    };
                    if !want {
                        return Ok(sealed_points);
                    }
                    self.freeze(&mut w, &s)?;
                }
            }
            sealed_points += self.seal_frozen()?;
            if force {
                return Ok(sealed_points);
            }
        }
    }

    /// Under the writer lock: the mutable segment becomes the frozen one,
    /// a fresh mutable segment and a fresh WAL file take the writes.
    fn freeze(&self, w: &mut Writer, s: &Segments) -> Result<()> {
        let checkpoint = w.wal.next_seq() - 1;
        w.wal.sync_if_dirty()?;
        // An active file without records already starts at the next
        // sequence number (after a crash between a freeze and its seal).
        if w.wal.has_records() {
            let next = w.wal.next_seq();
            let fresh = Wal::create(&self.dir.join(wal::file_name(next)), next, self.opts.sync)?;
            crate::storage::durable::sync_dir(&self.dir)?;
            w.wal = fresh;
        }
        w.frozen_checkpoint = Some(checkpoint);
        *self.segs.write() = Arc::new(Segments {
            mutable: Arc::new(new_mutable(&self.config)),
            frozen: Some(s.mutable.clone()),
            sealed: s.sealed.clone(),
        });
        Ok(())
    }

    /// Writes the frozen segment out and swaps it in. Returns points sealed.
    fn seal_frozen(&self) -> Result<usize> {
        let Some(frozen) = self.snapshot().frozen.clone() else {
            return Ok(0);
        };
        let started = Instant::now();
        let id = self.reserve_segment_id();
        let (sdir, sealed) = self.write_segment(id, |tmp| frozen.write_sealed(tmp).map(|_| ()))?;
        let n = sealed.len();
        let mut w = self.writer.lock();
        if self.closed.load(Ordering::SeqCst) {
            return Ok(0);
        }
        // Deletes and replacements that hit the frozen segment meanwhile.
        for (i, live) in frozen.live_bits().into_iter().enumerate() {
            if !live {
                sealed.kill(i);
            }
        }
        let sealed = Arc::new(sealed);
        let s = self.snapshot();
        let mut list = s.sealed.clone();
        list.push(sealed.clone());
        let checkpoint = w.frozen_checkpoint.take().unwrap_or(w.manifest.checkpoint);
        let mut manifest = w.manifest.clone();
        manifest.checkpoint = checkpoint;
        manifest.segments.push(SegmentEntry {
            id,
            points: n as u64,
            tombstones: crate::segment::sealed::tomb_file_name(0),
        });
        self.commit_manifest(&mut w, manifest, &list)?;
        *self.segs.write() = Arc::new(Segments {
            mutable: s.mutable.clone(),
            frozen: None,
            sealed: list,
        });
        // The checkpoint covers every file before the active one.
        for (first, p) in wal::list_files(&self.dir)? {
            if first < w.wal.next_seq() && p != w.wal.path() && first <= checkpoint {
                let _ = std::fs::remove_file(&p);
            }
        }
        drop(w);
        tracing::info!(
            collection = %self.config.name,
            segment = %sdir.display(),
            points = n,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "segment sealed"
        );
        Ok(n)
    }

    fn reserve_segment_id(&self) -> u64 {
        let mut w = self.writer.lock();
        let id = w.manifest.next_segment;
        w.manifest.next_segment += 1;
        id
    }

    /// Builds a segment under a temporary name, renames it into place and
    /// opens it.
    fn write_segment(
        &self,
        id: u64,
        fill: impl FnOnce(&Path) -> Result<()>,
    ) -> Result<(PathBuf, SealedSegment)> {
        let name = segment_dir_name(id);
        let tmp = self.dir.join(format!("{name}.tmp"));
        let dir = self.dir.join(&name);
        if tmp.exists() {
            std::fs::remove_dir_all(&tmp).map_err(|e| Error::io(&tmp, e))?;
        }
        std::fs::create_dir(&tmp).map_err(|e| Error::io(&tmp, e))?;
        if let Err(e) = fill(&tmp) {
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(e);
        }
        crate::storage::durable::sync_dir(&tmp)?;
        std::fs::rename(&tmp, &dir).map_err(|e| Error::io(&dir, e))?;
        crate::storage::durable::sync_dir(&self.dir)?;
        let s = SealedSegment::open(
            id,
            &dir,
            self.config.dim as usize,
            self.config.metric,
            &crate::segment::sealed::tomb_file_name(0),
        )?;
        Ok((dir, s))
    }

    /// Under the writer lock: writes changed tombstones of `sealed` and the
    /// manifest naming exactly those segments, then adopts it.
    fn commit_manifest(
        &self,
        w: &mut Writer,
        mut manifest: Manifest,
        sealed: &[Arc<SealedSegment>],
    ) -> Result<()> {
        let mut stale = Vec::new();
        for s in sealed {
            let generation = manifest.next_tombstones;
            if let Some(name) = s.persist_tombstones(generation)? {
                manifest.next_tombstones += 1;
                if let Some(e) = manifest.segments.iter_mut().find(|e| e.id == s.id) {
                    stale.push(s.dir().join(std::mem::replace(&mut e.tombstones, name)));
                }
            }
        }
        manifest.next_segment = manifest.next_segment.max(w.manifest.next_segment);
        manifest.store(&self.dir)?;
        w.manifest = manifest;
        for p in stale {
            let _ = std::fs::remove_file(p);
        }
        Ok(())
    }

    /// Under the maintenance lock: merges until the policy is satisfied.
    fn merge_while_needed(&self) -> Result<()> {
        while !self.closed.load(Ordering::SeqCst) {
            let Some(pick) = self.pick_merge() else {
                return Ok(());
            };
            self.merge(&pick)?;
        }
        Ok(())
    }

    /// Segments to merge: one with too many tombstones, or `merge_factor`
    /// of one size tier (tier = how many times ×4 over the seal threshold).
    fn pick_merge(&self) -> Option<Vec<Arc<SealedSegment>>> {
        let s = self.snapshot();
        if let Some(x) = s.sealed.iter().find(|x| {
            !x.is_empty() && x.dead_count() as f64 > self.opts.merge_dead_ratio * x.len() as f64
        }) {
            return Some(vec![x.clone()]);
        }
        let t = self.opts.seal_threshold.max(1) as f64;
        let tier = |n: usize| {
            if (n as f64) < t {
                0
            } else {
                1 + ((n as f64 / t).log(4.0).floor() as i64)
            }
        };
        let mut by_tier: std::collections::BTreeMap<i64, Vec<Arc<SealedSegment>>> =
            Default::default();
        for x in &s.sealed {
            by_tier.entry(tier(x.len())).or_default().push(x.clone());
        }
        by_tier
            .into_values()
            .find(|v| v.len() >= self.opts.merge_factor.max(2))
    }

    /// Rewrites `sources` (their live points) as one new sealed segment.
    fn merge(&self, sources: &[Arc<SealedSegment>]) -> Result<()> {
        let started = Instant::now();
        let merged = new_mutable(&self.config);
        let mut origin: Vec<(usize, usize)> = Vec::new();
        let mut batch: Vec<Prepared> = Vec::new();
        let flush = |batch: &mut Vec<Prepared>| {
            let base = merged.next_offset();
            merged.index(base, batch);
            merged.commit(base, std::mem::take(batch));
        };
        for (si, s) in sources.iter().enumerate() {
            for (i, live) in s.live_bits().into_iter().enumerate() {
                if !live {
                    continue;
                }
                batch.push(Prepared {
                    id: s.id_at(i)?.to_owned(),
                    vector: s.vector_at(i)?.to_vec(),
                    metadata: s.metadata_at(i)?,
                });
                origin.push((si, i));
                if batch.len() == 4096 {
                    flush(&mut batch);
                }
                if self.closed.load(Ordering::SeqCst) {
                    return Ok(());
                }
            }
        }
        flush(&mut batch);
        let id = self.reserve_segment_id();
        let (sdir, sealed) = self.write_segment(id, |tmp| merged.write_sealed(tmp).map(|_| ()))?;
        drop(merged);
        let mut w = self.writer.lock();
        if self.closed.load(Ordering::SeqCst) {
            return Ok(());
        }
        // Deletes and replacements that hit the sources meanwhile.
        for (j, &(si, i)) in origin.iter().enumerate() {
            if !sources[si].is_live(i) {
                sealed.kill(j);
            }
        }
        let sealed = Arc::new(sealed);
        let s = self.snapshot();
        let is_source = |x: &Arc<SealedSegment>| sources.iter().any(|y| Arc::ptr_eq(x, y));
        let mut list: Vec<Arc<SealedSegment>> = Vec::with_capacity(s.sealed.len());
        let mut placed = false;
        for x in &s.sealed {
            if is_source(x) {
                if !placed {
                    list.push(sealed.clone());
                    placed = true;
                }
            } else {
                list.push(x.clone());
            }
        }
        let mut manifest = w.manifest.clone();
        let mut entries = Vec::with_capacity(list.len());
        for x in &list {
            entries.push(match manifest.segments.iter().find(|e| e.id == x.id) {
                Some(e) => e.clone(),
                None => SegmentEntry {
                    id,
                    points: sealed.len() as u64,
                    tombstones: crate::segment::sealed::tomb_file_name(0),
                },
            });
        }
        manifest.segments = entries;
        self.commit_manifest(&mut w, manifest, &list)?;
        *self.segs.write() = Arc::new(Segments {
            mutable: s.mutable.clone(),
            frozen: s.frozen.clone(),
            sealed: list,
        });
        drop(w);
        for x in sources {
            // Searches still holding the old segment keep their maps; the
            // files go once the last map is dropped.
            let _ = std::fs::remove_dir_all(x.dir());
        }
        tracing::info!(
            collection = %self.config.name,
            segment = %sdir.display(),
            sources = sources.len(),
            live_points = sealed.live_count(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "segments merged"
        );
        Ok(())
    }
}

/// Keeps the best hit of each media (hits arrive best first) with how many
/// of the media's points were among them; at most `k` media. A point without
/// a media id counts as its own media.
fn group_by_media(hits: Vec<Hit>, k: usize) -> Vec<Hit> {
    let mut out: Vec<Hit> = Vec::new();
    let mut index: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for h in hits {
        let key = if h.metadata.media_id.is_empty() {
            format!("\0{}", h.id)
        } else {
            h.metadata.media_id.clone()
        };
        match index.get(&key) {
            Some(&i) => out[i].matched_faces += 1,
            None => {
                index.insert(key, out.len());
                out.push(Hit {
                    matched_faces: 1,
                    ..h
                });
            }
        }
    }
    out.truncate(k);
    out
}

fn new_mutable(config: &Config) -> MutableSegment {
    MutableSegment::new(
        config.dim as usize,
        config.metric,
        config.m as usize,
        config.ef_construction as usize,
    )
}

/// Applies one replayed log record.
fn apply(segs: &Segments, rec: WalRecord) -> Result<()> {
    if !rec.upserts.is_empty() {
        let prepared = rec
            .upserts
            .into_iter()
            .map(|p| Prepared {
                id: p.id,
                vector: p.vector,
                metadata: p.metadata.unwrap_or_default(),
            })
            .collect();
        apply_upserts(segs, prepared)?;
    }
    if !rec.deletes.is_empty() {
        apply_deletes(segs, &rec.deletes)?;
    }
    Ok(())
}

/// Inserts into the mutable segment, then tombstones the versions the batch
/// replaces in older segments (new first, so an id is never briefly absent;
/// searches de-duplicate the overlap).
fn apply_upserts(segs: &Segments, prepared: Vec<Prepared>) -> Result<()> {
    let ids: Vec<String> = prepared.iter().map(|p| p.id.clone()).collect();
    let base = segs.mutable.next_offset();
    segs.mutable.index(base, &prepared);
    segs.mutable.commit(base, prepared);
    let older: Vec<Seg> = segs.all().into_iter().skip(1).collect();
    if !older.is_empty() {
        for id in &ids {
            for seg in &older {
                if let Some(off) = seg.lookup(id)? {
                    seg.kill(id, off);
                }
            }
        }
    }
    Ok(())
}

fn apply_deletes(segs: &Segments, ids: &[String]) -> Result<usize> {
    let mut n = 0;
    for id in ids {
        if let Some((seg, off)) = segs.locate(id)?
            && seg.kill(id, off)
        {
            n += 1;
        }
    }
    Ok(n)
}

fn to_pb_point(p: &Prepared) -> pb::Point {
    pb::Point {
        id: p.id.clone(),
        vector: p.vector.clone(),
        metadata: Some(p.metadata.clone()),
    }
}

/// Removes what the manifest does not name: unfinished segment directories,
/// segments dropped by a merge, stale tombstone files, temp files.
fn remove_garbage(dir: &Path, manifest: &Manifest) -> Result<()> {
    let live: std::collections::HashSet<String> = manifest
        .segments
        .iter()
        .map(|e| segment_dir_name(e.id))
        .collect();
    for e in std::fs::read_dir(dir)
        .map_err(|e| Error::io(dir, e))?
        .flatten()
    {
        let name = e.file_name().to_string_lossy().into_owned();
        let path = e.path();
        if name.starts_with("seg-") && !live.contains(&name) {
            tracing::info!(path = %path.display(), "removing segment not in the manifest");
            std::fs::remove_dir_all(&path).map_err(|e| Error::io(&path, e))?;
        } else if name.ends_with(".tmp") {
            std::fs::remove_file(&path).map_err(|e| Error::io(&path, e))?;
        }
    }
    for s in &manifest.segments {
        let sdir = dir.join(segment_dir_name(s.id));
        let Ok(rd) = std::fs::read_dir(&sdir) else {
            continue;
        };
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with("tomb-") && name != s.tombstones {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
    Ok(())
}

/// Interval sync policy: fsync the active log file every `every`.
fn flusher(c: Weak<Collection>, every: std::time::Duration) {
    loop {
        std::thread::sleep(every);
        let Some(c) = c.upgrade() else { return };
        if c.closed.load(Ordering::SeqCst) {
            return;
        }
        if let Err(e) = c.writer.lock().wal.sync_if_dirty() {
            tracing::error!(collection = %c.config.name, error = %e, "WAL fsync failed");
        }
    }
}

fn live_offsets(bits: &[bool]) -> Vec<usize> {
    bits.iter()
        .enumerate()
        .filter(|(_, l)| **l)
        .map(|(o, _)| o)
        .collect()
}

/// A point of a [`View`]: segment (newest first) and offset in it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PointRef {
    pub seg: u32,
    pub off: u32,
}

/// One moment of a collection, read without resolving metadata per hit:
/// what batch jobs (linking, triage) need to run millions of searches.
pub struct View {
    all: Vec<Seg>,
    metric: crate::index::distance::Metric,
    dim: usize,
}

impl View {
    pub fn metric(&self) -> crate::index::distance::Metric {
        self.metric
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Every live point passing `filter`, with its id and metadata; one
    /// entry per id (the newest copy, should an id briefly live in two
    /// segments while it is being replaced).
    pub fn points(&self, filter: Option<&Filter>) -> Result<Vec<(PointRef, String, pb::Metadata)>> {
        let mut seen = std::collections::HashSet::new();
        let mut out = Vec::new();
        for (si, seg) in self.all.iter().enumerate() {
            let offsets: Vec<usize> = match (seg, filter) {
                (Seg::Mutable(m), Some(f)) => m.passing(f),
                (Seg::Sealed(s), Some(f)) => s.passing(f)?,
                (Seg::Mutable(m), None) => live_offsets(&m.live_bits()),
                (Seg::Sealed(s), None) => live_offsets(&s.live_bits()),
            };
            for off in offsets {
                let (id, meta) = seg.describe(off)?;
                if !seen.insert(id.clone()) {
                    continue;
                }
                let r = PointRef {
                    seg: si as u32,
                    off: off as u32,
                };
                out.push((r, id, meta));
            }
        }
        Ok(out)
    }

    /// Id and metadata of a point.
    pub fn describe(&self, p: PointRef) -> Result<(String, pb::Metadata)> {
        self.seg(p)?.describe(p.off as usize)
    }

    /// The stored (prepared) vector of a point.
    pub fn vector(&self, p: PointRef) -> Result<Vec<f32>> {
        self.seg(p)?.vector(p.off as usize)
    }

    /// The metric's distance between two stored points (sealed vectors are
    /// compared in place, without copies).
    pub fn distance(&self, a: PointRef, b: PointRef) -> Result<f32> {
        let m = self.metric;
        match (self.seg(a)?, self.seg(b)?) {
            (Seg::Sealed(x), Seg::Sealed(y)) => {
                Ok(m.from_rank(m.rank(x.vector_at(a.off as usize)?, y.vector_at(b.off as usize)?)))
            }
            _ => Ok(m.from_rank(m.rank(&self.vector(a)?, &self.vector(b)?))),
        }
    }

    /// Approximate k-NN over live points passing `filter`, `exclude` left
    /// out; (point, distance) by ascending distance. `query` must already be
    /// prepared for the metric (stored vectors are).
    pub fn search(
        &self,
        query: &[f32],
        k: usize,
        ef: usize,
        exclude: Option<PointRef>,
        filter: Option<&Filter>,
    ) -> Result<Vec<(PointRef, f32)>> {
        let mut cands = Vec::new();
        for (si, seg) in self.all.iter().enumerate() {
            let ex = exclude
                .filter(|e| e.seg as usize == si)
                .map(|e| e.off as usize);
            for (off, r) in seg.search(query, k, ef.max(k), ex, filter)? {
                let p = PointRef {
                    seg: si as u32,
                    off: off as u32,
                };
                cands.push((p, r));
            }
        }
        crate::index::planner::top_k(&mut cands, k);
        Ok(cands
            .into_iter()
            .map(|(p, r)| (p, self.metric.from_rank(r)))
            .collect())
    }

    fn seg(&self, p: PointRef) -> Result<&Seg> {
        self.all
            .get(p.seg as usize)
            .ok_or_else(|| Error::Internal(format!("no segment {} in this view", p.seg)))
    }
}
