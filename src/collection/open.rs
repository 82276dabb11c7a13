//! Creating a collection's files, and opening them again: the configuration,
//! the sealed segments the manifest names, the replay of the WAL above the
//! checkpoint (consecutive upserts indexed together, in parallel, with
//! progress in the log), the removal of files the manifest does not name,
//! and the background work an open collection runs (checksum pass, interval
//! fsync, the time budget of the WAL tail).

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::{Duration, Instant};

use parking_lot::{Mutex, RwLock};

use crate::collection::config::{CONFIG_FILE, Config};
use crate::collection::segments::{Segments, apply_deletes, apply_upserts, new_mutable};
use crate::collection::{Collection, StorageOptions, Writer};
use crate::error::{Error, Result};
use crate::segment::mutable::Prepared;
use crate::segment::sealed::SealedSegment;
use crate::storage::fs;
use crate::storage::manifest::{Manifest, segment_dir_name};
use crate::storage::wal::{self, SyncPolicy, Wal, WalRecord};

/// Replayed upserts indexed together: large enough to keep every core busy.
const REPLAY_BATCH: usize = 8192;
/// How often a long replay says how far it got.
const PROGRESS_EVERY: Duration = Duration::from_secs(2);

/// What replaying the log gave: the active log file and counts to report.
struct Replayed {
    wal: Wal,
    records: usize,
    dropped_bytes: u64,
}

impl Collection {
    /// Creates the collection's files in `dir` (which must not exist yet).
    pub fn create(dir: &Path, config: Config, opts: StorageOptions) -> Result<()> {
        fs::create_dir(dir)?;
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
        let config = read_config(dir)?;
        let manifest = Manifest::load(dir)?;
        remove_garbage(dir, &manifest)?;
        let segs = Segments {
            mutable: Arc::new(new_mutable(&config)),
            frozen: None,
            sealed: open_sealed(dir, &config, &manifest)?,
        };
        let log = log_files(dir, &manifest)?;
        let replayed = replay(dir, &manifest, log, &segs, &opts, &config.name)?;
        // Replayed points are the tail's: its time budget runs from now.
        let c_len_hint = segs.mutable.next_offset();
        let c = Arc::new_cyclic(|me| Collection {
            dir: dir.to_owned(),
            opts: opts.clone(),
            writer: Mutex::new(Writer {
                wal: replayed.wal,
                manifest,
                frozen_checkpoint: None,
            }),
            segs: RwLock::new(Arc::new(segs)),
            maintenance: Mutex::new(()),
            sealing: AtomicBool::new(false),
            backoff: Mutex::new(None),
            failure: RwLock::new(None),
            read_only: RwLock::new(None),
            tail_since: Mutex::new((c_len_hint > 0).then(Instant::now)),
            on_health_change: OnceLock::new(),
            verification: std::sync::atomic::AtomicU8::new(super::Verification::Pending as u8),
            closed: AtomicBool::new(false),
            me: me.clone(),
            config,
        });
        tracing::info!(
            collection = %c.config.name,
            points = c.len(),
            sealed_segments = c.snapshot().sealed.len(),
            wal_records_replayed = replayed.records,
            wal_bytes_dropped = replayed.dropped_bytes,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "collection opened"
        );
        c.start_background_work()?;
        Ok(c)
    }

    /// The checksum pass over the sealed files, the upkeep thread (interval
    /// fsync, tail time budget), and a seal if the replayed log filled the
    /// mutable segment.
    fn start_background_work(&self) -> Result<()> {
        if self.opts.verify_on_open && !self.snapshot().sealed.is_empty() {
            self.spawn("verify", |c| c.verify_sealed());
        } else {
            // Nothing to read: every sealed file is one this process wrote,
            // or the check was turned off.
            self.set_verification(super::Verification::Verified);
        }
        let sync_every = match self.opts.sync {
            SyncPolicy::Interval(every) => Some(every),
            SyncPolicy::Always | SyncPolicy::Never => None,
        };
        if sync_every.is_some() || self.opts.seal_after.is_some() {
            let weak = self.me.clone();
            let seal_after = self.opts.seal_after;
            std::thread::Builder::new()
                .name("vidx-upkeep".into())
                .spawn(move || upkeep(weak, sync_every, seal_after))
                .map_err(|e| Error::Internal(format!("cannot start the upkeep thread: {e}")))?;
        }
        self.maybe_seal_in_background();
        Ok(())
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
                self.set_verification(super::Verification::Failed);
                self.health_changed();
                return;
            }
        }
        self.set_verification(super::Verification::Verified);
        tracing::info!(collection = %self.config.name, elapsed_ms = started.elapsed().as_millis() as u64, "sealed segments verified");
    }
}

/// The collection's configuration, in a format this vidx reads.
pub(super) fn read_config(dir: &Path) -> Result<Config> {
    let cfg_path = dir.join(CONFIG_FILE);
    let bytes = fs::read(&cfg_path)?;
    let config: Config = serde_json::from_slice(&bytes)
        .map_err(|e| Error::bad_json(&cfg_path, "the configuration", &e))?;
    crate::storage::versions::CONFIG.check(&cfg_path, config.format)?;
    Ok(config)
}

/// Maps the sealed segments the manifest names, checking their sizes.
fn open_sealed(
    dir: &Path,
    config: &Config,
    manifest: &Manifest,
) -> Result<Vec<Arc<SealedSegment>>> {
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
    Ok(sealed)
}

/// The log files to replay, in order: files wholly at or below the
/// checkpoint are leftovers of an interrupted clean-up and are removed; a
/// gap between the checkpoint and the first file is data loss.
fn log_files(dir: &Path, manifest: &Manifest) -> Result<Vec<(u64, PathBuf)>> {
    let mut files = wal::list_files(dir)?;
    while files.len() > 1 && files[1].0 <= manifest.checkpoint + 1 {
        let (_, p) = files.remove(0);
        fs::remove_file(&p)?;
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
    Ok(files)
}

/// Applies the records above the checkpoint to `segs`; the last file stays
/// the active one (a fresh one is made if there is none). Each file must
/// start where the one before it ended: a gap or an overlap would lose or
/// reuse sequence numbers.
fn replay(
    dir: &Path,
    manifest: &Manifest,
    files: Vec<(u64, PathBuf)>,
    segs: &Segments,
    opts: &StorageOptions,
    name: &str,
) -> Result<Replayed> {
    let mut dropped_bytes = 0u64;
    let mut active: Option<Wal> = None;
    let mut apply = Replayer::new(segs, name, files.len());
    let nfiles = files.len();
    for (i, (first, path)) in files.into_iter().enumerate() {
        if let Some(prev) = &active
            && prev.next_seq() != first
        {
            return Err(Error::data_loss(
                &path,
                format!(
                    "log file starts at record {first}, the file before it ends at {}",
                    prev.next_seq() - 1
                ),
            ));
        }
        let (w, rec) = Wal::open(&path, first, opts.sync, i + 1 == nfiles)?;
        dropped_bytes += rec.dropped_bytes;
        for r in rec.records {
            if r.seq > manifest.checkpoint {
                apply.push(r)?;
            }
        }
        apply.file_done();
        active = Some(w);
    }
    let records = apply.finish()?;
    let wal = match active {
        Some(w) => w,
        None => {
            let seq = manifest.checkpoint + 1;
            let w = Wal::create(&dir.join(wal::file_name(seq)), seq, opts.sync)?;
            crate::storage::durable::sync_dir(dir)?;
            w
        }
    };
    Ok(Replayed {
        wal,
        records,
        dropped_bytes,
    })
}

/// Applies replayed records in order, consecutive upserts as one batch
/// (indexed in parallel, as a large live batch is); a delete first applies
/// the upserts before it. Says how far it got every few seconds.
struct Replayer<'a> {
    segs: &'a Segments,
    pending: Vec<Prepared>,
    records: usize,
    name: &'a str,
    files: (usize, usize),
    started: Instant,
    said: Instant,
}

impl<'a> Replayer<'a> {
    fn new(segs: &'a Segments, name: &'a str, files: usize) -> Replayer<'a> {
        Replayer {
            segs,
            pending: Vec::new(),
            records: 0,
            name,
            files: (0, files),
            started: Instant::now(),
            said: Instant::now(),
        }
    }

    fn push(&mut self, rec: WalRecord) -> Result<()> {
        self.records += 1;
        self.pending
            .extend(rec.upserts.into_iter().map(|p| Prepared {
                id: p.id,
                vector: p.vector,
                metadata: p.metadata.unwrap_or_default(),
                code: crate::index::hamming::words_of(&p.bits),
                quality: p.quality.min(100) as u8,
            }));
        if !rec.deletes.is_empty() {
            self.apply_pending()?;
            apply_deletes(self.segs, &rec.deletes)?;
        }
        if self.pending.len() >= REPLAY_BATCH {
            self.apply_pending()?;
        }
        Ok(())
    }

    fn apply_pending(&mut self) -> Result<()> {
        if !self.pending.is_empty() {
            apply_upserts(self.segs, std::mem::take(&mut self.pending))?;
        }
        if self.said.elapsed() >= PROGRESS_EVERY {
            self.said = Instant::now();
            tracing::info!(
                collection = %self.name,
                records = self.records,
                log_file = self.files.0 + 1,
                log_files = self.files.1,
                elapsed_ms = self.started.elapsed().as_millis() as u64,
                "replaying write-ahead log"
            );
        }
        Ok(())
    }

    fn file_done(&mut self) {
        self.files.0 += 1;
    }

    /// Applies what is left; returns the number of records replayed.
    fn finish(mut self) -> Result<usize> {
        self.apply_pending()?;
        Ok(self.records)
    }
}

/// Removes what the manifest does not name: unfinished segment directories,
/// segments dropped by a merge, stale tombstone files, temp files.
fn remove_garbage(dir: &Path, manifest: &Manifest) -> Result<()> {
    let live: HashSet<String> = manifest
        .segments
        .iter()
        .map(|e| segment_dir_name(e.id))
        .collect();
    for e in fs::read_dir(dir)? {
        let name = e.name.to_string_lossy().into_owned();
        let path = e.path;
        if name.starts_with("seg-") && !live.contains(&name) {
            tracing::info!(path = %path.display(), "removing segment not in the manifest");
            fs::remove_dir_all(&path)?;
        } else if name.ends_with(".tmp") && e.is_dir {
            fs::remove_dir_all(&path)?;
        } else if name.ends_with(".tmp") {
            fs::remove_file(&path)?;
        }
    }
    for s in &manifest.segments {
        let sdir = dir.join(segment_dir_name(s.id));
        let Ok(entries) = fs::read_dir(&sdir) else {
            continue;
        };
        for e in entries {
            let name = e.name.to_string_lossy().into_owned();
            if name.starts_with("tomb-") && name != s.tombstones {
                let _ = fs::remove_file(&e.path);
            }
        }
    }
    Ok(())
}

/// The upkeep of an open collection, until it is gone: under the interval
/// sync policy, fsync the active log every `sync_every` (a failure turns the
/// collection read-only); with a tail time budget, seal the mutable segment
/// once its oldest point is `seal_after` old, so a restart's replay stays
/// short when writes trickle in.
fn upkeep(c: Weak<Collection>, sync_every: Option<Duration>, seal_after: Option<Duration>) {
    let tick = [
        sync_every,
        seal_after.map(|d| (d / 4).max(Duration::from_millis(10))),
    ]
    .into_iter()
    .flatten()
    .min()
    .unwrap_or(Duration::from_secs(1))
    .min(Duration::from_secs(1));
    let mut synced = Instant::now();
    loop {
        std::thread::sleep(tick);
        let Some(c) = c.upgrade() else { return };
        if c.closed.load(Ordering::SeqCst) {
            continue;
        }
        if let Some(every) = sync_every
            && synced.elapsed() >= every
        {
            synced = Instant::now();
            let mut w = c.writer.lock();
            let r = w.wal.sync_if_dirty();
            c.note_fsync(&mut w);
            if let Err(e) = r {
                let e = c.degrade(e, Some(&w.wal));
                tracing::error!(collection = %c.config.name, error = %e, "WAL fsync failed");
            }
        }
        if let Some(after) = seal_after
            && c.tail_since.lock().is_some_and(|t| t.elapsed() >= after)
        {
            c.maintain_in_background(true);
        }
    }
}
