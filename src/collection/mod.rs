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
//! This file holds the [`Collection`] itself and what its parts share; the
//! files beside it each add one concern: `segments` (the segment list and
//! applying a write to it), `open` (create, open, recover), `write`
//! (upsert, delete), `search` (queries), `seal` (sealing and merging),
//! `view` (the read view for batch work), `export` (the sealed files
//! linked out for a cluster snapshot), `hamming` (queries of a
//! perceptual-hash collection), plus `config` and `registry`; `hashsets`
//! keeps the exact-hash sets beside the collections.
//! They use this file; it uses only `segments` and `config`.
//!
//! Layer: may import `segment`, `index`, `storage`, `io` and the root
//! modules; never `investigate`, `api`, `tools` or `cli`.

pub mod config;
mod export;
mod hamming;
pub mod hashsets;
mod open;
pub mod registry;
pub mod restrict;
mod seal;
mod search;
mod segments;
pub mod snapshot;
mod view;
mod write;

pub use write::{DeleteCheck, ReplaceCheck};

pub use view::{PointRef, View};

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::Instant;

use parking_lot::{Mutex, RwLock};

use crate::collection::config::Config;
use crate::collection::segments::Segments;
use crate::error::{Error, Result};
use crate::index::filter::Filter;
use crate::pb;
use crate::storage::manifest::Manifest;
use crate::storage::wal::{SyncPolicy, Wal};

/// Storage settings shared by all collections of a server.
#[derive(Clone, Debug)]
pub struct StorageOptions {
    pub sync: SyncPolicy,
    /// Points in the mutable segment that trigger sealing.
    pub seal_threshold: usize,
    /// The mutable segment is sealed once its oldest point is this old, so
    /// that the log a restart replays stays short when writes trickle in.
    pub seal_after: Option<std::time::Duration>,
    /// Sealed segments whose dead fraction passes this are rewritten.
    pub merge_dead_ratio: f64,
    /// This many sealed segments of one size tier are merged into one.
    pub merge_factor: usize,
    /// Check sealed files' checksums in the background after open.
    pub verify_on_open: bool,
}

pub const DEFAULT_SEAL_THRESHOLD: usize = 100_000;
/// Default for [`StorageOptions::seal_after`].
pub const DEFAULT_SEAL_AFTER: std::time::Duration = std::time::Duration::from_secs(60);

impl Default for StorageOptions {
    fn default() -> Self {
        StorageOptions {
            sync: SyncPolicy::Always,
            seal_threshold: DEFAULT_SEAL_THRESHOLD,
            seal_after: Some(DEFAULT_SEAL_AFTER),
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
    /// Perceptual-hash collections: the stored hash's quality.
    pub quality: u32,
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
    /// Hits farther than this are dropped.
    pub max_distance: Option<f32>,
    /// Perceptual-hash collections: stored hashes below this quality are
    /// not matched (None = [`DEFAULT_MIN_QUALITY`]).
    pub min_quality: Option<u32>,
}

/// PDQ's rule: hashes of quality 49 and below are not matched.
pub const DEFAULT_MIN_QUALITY: u32 = 50;

/// A search query inside the engine.
#[derive(Clone, Debug)]
pub enum Query {
    Vector(Vec<f32>),
    PointId(String),
    /// A perceptual hash (perceptual-hash collections).
    Bits(Vec<u8>),
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
    /// After a failed background pass: no new one before this instant
    /// (and the wait it was).
    backoff: Mutex<Option<(Instant, std::time::Duration)>>,
    /// Set when a background check finds a corrupt file: DATA_LOSS from then on.
    failure: RwLock<Option<String>>,
    /// Where the checksum pass over the sealed files is (a [`Verification`]).
    verification: AtomicU8,
    /// Set when an fsync fails: writes are refused until a restart recovers
    /// the collection from its files; reads go on.
    read_only: RwLock<Option<String>>,
    /// Since when the mutable segment holds points (for `seal_after`).
    tail_since: Mutex<Option<Instant>>,
    /// Told when [`Collection::health`] changes (the registry's listeners).
    on_health_change: OnceLock<Box<dyn Fn() + Send + Sync>>,
    /// Being dropped (or dropped): writes and background work stop.
    closed: AtomicBool,
    me: Weak<Collection>,
}

/// What a collection can do right now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Health {
    Serving,
    /// Reads only: an fsync failed (the reason).
    ReadOnly(String),
    /// Nothing: a file is corrupt (the reason).
    Failed(String),
}

/// Where a collection's checksum pass over its sealed files is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verification {
    /// Opened and serving; the pass is still reading the files.
    Pending = 0,
    /// Every sealed file matched its checksum (or there was none to check).
    Verified = 1,
    /// A file did not: the collection answers DATA_LOSS.
    Failed = 2,
}

impl Verification {
    pub fn as_str(self) -> &'static str {
        match self {
            Verification::Pending => "pending",
            Verification::Verified => "verified",
            Verification::Failed => "failed",
        }
    }
}

impl Collection {
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

    /// Where the checksum pass over the sealed files is.
    pub fn verification(&self) -> Verification {
        match self.verification.load(Ordering::SeqCst) {
            0 => Verification::Pending,
            1 => Verification::Verified,
            _ => Verification::Failed,
        }
    }

    fn set_verification(&self, v: Verification) {
        self.verification.store(v as u8, Ordering::SeqCst);
    }

    /// Bytes of write-ahead log not yet covered by a sealed segment: what
    /// a restart replays.
    pub fn wal_bytes(&self) -> u64 {
        let (active, active_len) = {
            let w = self.writer.lock();
            (w.wal.path().to_owned(), w.wal.len_bytes())
        };
        let Ok(files) = crate::storage::wal::list_files(&self.dir) else {
            return 0;
        };
        files
            .iter()
            .map(|(_, p)| match *p == active {
                // Its length as written, not a racing stat.
                true => active_len,
                false => std::fs::metadata(p).map_or(0, |m| m.len()),
            })
            .sum()
    }

    /// Records the WAL's last fsync time, if one ran (under the writer lock).
    fn note_fsync(&self, w: &mut Writer) {
        if let Some(d) = w.wal.take_fsync_time() {
            crate::metrics::fsync(&self.config.name, d);
        }
    }

    /// Refuses writes if the collection is being dropped or is read-only.
    fn writable(&self) -> Result<()> {
        if self.closed.load(Ordering::SeqCst) {
            return Err(Error::Dropped(self.config.name.clone()));
        }
        match &*self.read_only.read() {
            Some(why) => Err(self.read_only_error(why)),
            None => Ok(()),
        }
    }

    fn read_only_error(&self, why: &str) -> Error {
        Error::FailedPrecondition(format!(
            "collection {:?} is read-only: {why}; reads go on; restart vidx to recover it from its files",
            self.config.name
        ))
    }

    /// Turns a failure that leaves the files untrusted (an fsync error, or
    /// `log` broken by a failed append it could not cut back) into
    /// read-only mode, and says so.
    fn degrade(&self, e: Error, log: Option<&Wal>) -> Error {
        let why = match (&e, log.and_then(|l| l.broken().map(|b| (l.path(), b)))) {
            (Error::Fsync { .. }, _) => e.to_string(),
            (_, Some((path, b))) => {
                format!("write-ahead log {} is not trusted: {b}", path.display())
            }
            _ => return e,
        };
        let mut ro = self.read_only.write();
        let newly = ro.is_none();
        if newly {
            tracing::error!(collection = %self.config.name, error = %why, "collection is read-only until restart: its files are not trusted after this failure");
            *ro = Some(why.clone());
        }
        drop(ro);
        if newly {
            self.health_changed();
        }
        self.read_only_error(&why)
    }

    /// Calls `f` whenever [`Collection::health`] changes (set once).
    pub fn on_health_change(&self, f: Box<dyn Fn() + Send + Sync>) {
        let _ = self.on_health_change.set(f);
    }

    fn health_changed(&self) {
        if let Some(f) = self.on_health_change.get() {
            f();
        }
    }

    /// Serving, read-only (after an fsync failure) or failed (corrupt file).
    pub fn health(&self) -> Health {
        if let Some(why) = &*self.failure.read() {
            return Health::Failed(why.clone());
        }
        match &*self.read_only.read() {
            Some(why) => Health::ReadOnly(why.clone()),
            None => Health::Serving,
        }
    }

    /// Stops writes and background work, for a drop; waits until no write,
    /// seal or merge is running any more, so none touches the directory
    /// once it is renamed away. [`Collection::reopen`] undoes it.
    pub fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        drop(self.maintenance.lock());
        drop(self.writer.lock());
    }

    /// Takes writes again after a drop that failed.
    pub fn reopen(&self) {
        self.closed.store(false, Ordering::SeqCst);
    }

    fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }

    /// Runs `f` on a thread of its own (`vidx-<what>`) while the collection
    /// is alive.
    fn spawn(&self, what: &'static str, f: impl FnOnce(Arc<Collection>) + Send + 'static) {
        let Some(me) = self.me.upgrade() else { return };
        let name = format!("vidx-{what}");
        if let Err(e) = std::thread::Builder::new().name(name).spawn(move || f(me)) {
            tracing::error!(collection = %self.config.name, error = %e, "cannot start background {what}");
        }
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
            quantization: self.config.quantization.to_pb() as i32,
            vector_storage: self.config.vector_storage.to_pb() as i32,
            state: match self.health() {
                Health::Serving => "ready",
                Health::ReadOnly(_) => "read-only",
                Health::Failed(_) => "failed",
            }
            .into(),
            error: match self.health() {
                Health::Serving => String::new(),
                Health::ReadOnly(why) | Health::Failed(why) => why,
            },
        }
    }
}
