//! Creating a collection's files, and opening them again: the configuration,
//! the sealed segments the manifest names, the replay of the WAL above the
//! checkpoint, the removal of files the manifest does not name, and the
//! background work an open collection runs (checksum pass, interval fsync).

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Instant;

use parking_lot::{Mutex, RwLock};

use crate::collection::config::{CONFIG_FILE, Config};
use crate::collection::segments::{Segments, apply, new_mutable};
use crate::collection::{Collection, StorageOptions, Writer};
use crate::error::{Error, Result};
use crate::segment::sealed::SealedSegment;
use crate::storage::manifest::{Manifest, segment_dir_name};
use crate::storage::wal::{self, SyncPolicy, Wal};

/// What replaying the log gave: the active log file and counts to report.
struct Replayed {
    wal: Wal,
    records: usize,
    dropped_bytes: u64,
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
        let config = read_config(dir)?;
        let manifest = Manifest::load(dir)?;
        remove_garbage(dir, &manifest)?;
        let segs = Segments {
            mutable: Arc::new(new_mutable(&config)),
            frozen: None,
            sealed: open_sealed(dir, &config, &manifest)?,
        };
        let log = log_files(dir, &manifest)?;
        let replayed = replay(dir, &manifest, log, &segs, &opts)?;
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
            failure: RwLock::new(None),
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

    /// The checksum pass over the sealed files, the interval fsync of the
    /// log, and a seal if the replayed log filled the mutable segment.
    fn start_background_work(&self) -> Result<()> {
        if self.opts.verify_on_open && !self.snapshot().sealed.is_empty() {
            self.spawn("verify", |c| c.verify_sealed());
        } else {
            // Nothing to read: every sealed file is one this process wrote,
            // or the check was turned off.
            self.set_verification(super::Verification::Verified);
        }
        if let SyncPolicy::Interval(every) = self.opts.sync {
            let weak = self.me.clone();
            std::thread::Builder::new()
                .name("vidx-wal-flush".into())
                .spawn(move || flusher(weak, every))
                .map_err(|e| Error::Internal(format!("cannot start the WAL flusher: {e}")))?;
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
    let bytes = std::fs::read(&cfg_path).map_err(|e| Error::io(&cfg_path, e))?;
    let config: Config = serde_json::from_slice(&bytes)
        .map_err(|e| Error::data_loss(&cfg_path, format!("unreadable configuration: {e}")))?;
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
    Ok(files)
}

/// Applies the records above the checkpoint to `segs`; the last file stays
/// the active one (a fresh one is made if there is none).
fn replay(
    dir: &Path,
    manifest: &Manifest,
    files: Vec<(u64, PathBuf)>,
    segs: &Segments,
    opts: &StorageOptions,
) -> Result<Replayed> {
    let mut records = 0usize;
    let mut dropped_bytes = 0u64;
    let mut active = None;
    let nfiles = files.len();
    for (i, (first, path)) in files.into_iter().enumerate() {
        let (w, rec) = Wal::open(&path, first, opts.sync, i + 1 == nfiles)?;
        dropped_bytes += rec.dropped_bytes;
        for r in rec
            .records
            .into_iter()
            .filter(|r| r.seq > manifest.checkpoint)
        {
            records += 1;
            apply(segs, r)?;
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
    Ok(Replayed {
        wal,
        records,
        dropped_bytes,
    })
}

/// Removes what the manifest does not name: unfinished segment directories,
/// segments dropped by a merge, stale tombstone files, temp files.
fn remove_garbage(dir: &Path, manifest: &Manifest) -> Result<()> {
    let live: HashSet<String> = manifest
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
        let mut w = c.writer.lock();
        if let Err(e) = w.wal.sync_if_dirty() {
            tracing::error!(collection = %c.config.name, error = %e, "WAL fsync failed");
        }
        c.note_fsync(&mut w);
    }
}
