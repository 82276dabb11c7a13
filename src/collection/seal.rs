//! Sealing and merging. When the mutable segment reaches the seal threshold
//! or its time budget (or on `Flush`) it is frozen and a new WAL file
//! begins; a background thread writes it out as a sealed segment, then,
//! under the writer lock, carries over deletes that hit it meanwhile,
//! records it in the manifest with the checkpoint, and deletes the WAL files
//! the checkpoint covers. Merging rewrites sealed segments with many
//! tombstones, or several of a similar size, into one, the same way, and
//! keeps the number of segments (each holds files open) bounded. One seal or
//! merge runs at a time (the maintenance lock). A manifest that cannot be
//! written changes nothing: tombstones written for it are written again for
//! the next one.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::collection::segments::{Segments, new_mutable};
use crate::collection::{Collection, Writer};
use crate::error::Result;
use crate::index::distance::Metric;
use crate::segment::mutable::{MutableSegment, Prepared};
use crate::segment::sealed::{SealedSegment, tomb_file_name};
use crate::storage::fs;
use crate::storage::manifest::{Manifest, SegmentEntry, segment_dir_name};
use crate::storage::wal::{self, Wal};

/// Where each point of a merged segment came from: (source, offset).
type Origins = Vec<(usize, usize)>;

/// Points copied into a merged segment per index/commit step.
const MERGE_BATCH: usize = 4096;

/// The first wait after a failed background seal or merge.
const BACKOFF_MIN: Duration = Duration::from_millis(500);
/// The longest wait between background attempts that keep failing.
const BACKOFF_MAX: Duration = Duration::from_secs(60);

/// Sealed segments beyond this are merged whatever their sizes: each holds
/// four files open.
const MAX_SEGMENTS: usize = 16;

impl Collection {
    /// Seals `segment` into the collection stored in `dir`, which must not
    /// be open: its points become the collection's next sealed segment,
    /// recorded in the manifest without passing through the log. For an
    /// index built in process, such as the ANN benchmark's; `segment` must
    /// have the collection's dimension and metric. Returns the segment's
    /// directory.
    pub fn add_sealed(dir: &Path, segment: &MutableSegment) -> Result<PathBuf> {
        let mut manifest = Manifest::load(dir)?;
        let layout = super::open::read_config(dir)?.layout();
        let id = manifest.next_segment;
        let points = segment.next_offset() as u64;
        let sdir = write_segment_dir(dir, id, |tmp| segment.write_sealed(tmp, layout).map(|_| ()))?;
        manifest.segments.push(SegmentEntry {
            id,
            points,
            tombstones: tomb_file_name(0),
        });
        manifest.next_segment = id + 1;
        manifest.store(dir)?;
        Ok(sdir)
    }

    /// Freezes the mutable segment if it is over the threshold and starts a
    /// background seal.
    pub(super) fn maybe_seal_in_background(&self) {
        let over = {
            let s = self.snapshot();
            s.frozen.is_none() && s.mutable.next_offset() >= self.opts.seal_threshold
        };
        if over {
            self.maintain_in_background(false);
        }
    }

    /// Starts a background pass, unless one is scheduled already: a seal
    /// (of whatever the mutable segment holds if `force`, else only if it is
    /// over the threshold), then the merges the policy asks for.
    pub(super) fn maintain_in_background(&self, force: bool) {
        if self.is_closed() || self.writable().is_err() || self.backing_off() {
            return;
        }
        // One scheduled pass at a time: later calls find it pending.
        if self.sealing.swap(true, Ordering::SeqCst) {
            return;
        }
        self.spawn("seal", move |c| {
            let m = c.maintenance.lock();
            let r = if c.is_closed() {
                Ok(())
            } else {
                c.seal_once(force)
                    .map_err(|e| ("seal", e))
                    .and_then(|_| c.merge_while_needed().map_err(|e| ("merge", e)))
            };
            drop(m);
            c.sealing.store(false, Ordering::SeqCst);
            match r {
                Err((task, e)) => {
                    crate::metrics::get()
                        .storage
                        .maintenance_failures
                        .with_label_values(&[c.name(), task])
                        .inc();
                    let e = c.degrade(e, None);
                    let wait = c.back_off();
                    tracing::error!(collection = %c.config.name, error = %e, retry_in_ms = wait.as_millis() as u64, "background {task} failed; retried by a later write or Flush once the wait is over");
                }
                // Work that came in while this pass ran.
                Ok(()) if c.pick_merge().is_some() => {
                    c.backoff_done();
                    c.maintain_in_background(false)
                }
                Ok(()) => {
                    c.backoff_done();
                    c.maybe_seal_in_background()
                }
            }
        });
    }

    /// Seals the mutable segment now and waits for it; returns (segments,
    /// points sealed). Merges of the segments flushes leave are started in
    /// the background.
    pub fn flush(&self) -> Result<(u32, u64)> {
        self.check()?;
        self.writable()?;
        let m = self.maintenance.lock();
        // A drop or a failure may have come while this waited.
        self.writable()?;
        let sealed = self.seal_once(true).map_err(|e| self.degrade(e, None))?;
        drop(m);
        // An explicit Flush that worked ends a wait after a failed pass.
        self.backoff_done();
        self.maintain_in_background(false);
        Ok((self.info().segments, sealed as u64))
    }

    /// Under the maintenance lock: freeze (if `force` or over threshold)
    /// and seal. Returns the number of points sealed.
    pub(super) fn seal_once(&self, force: bool) -> Result<usize> {
        let mut sealed_points = 0;
        // Closed (being dropped): the frozen segment stays frozen, and a
        // seal that found the collection closed must not start again.
        while !self.is_closed() {
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
        Ok(sealed_points)
    }

    /// Under the writer lock: the mutable segment becomes the frozen one,
    /// a fresh mutable segment and a fresh WAL file take the writes.
    fn freeze(&self, w: &mut Writer, s: &Segments) -> Result<()> {
        let checkpoint = w.wal.next_seq() - 1;
        let synced = w.wal.sync_if_dirty();
        self.note_fsync(w);
        if let Err(e) = synced {
            return Err(self.degrade(e, Some(&w.wal)));
        }
        // An active file without records already starts at the next
        // sequence number (after a crash between a freeze and its seal).
        if w.wal.has_records() {
            let next = w.wal.next_seq();
            let fresh = Wal::create(&self.dir.join(wal::file_name(next)), next, self.opts.sync)?;
            crate::storage::durable::sync_dir(&self.dir)?;
            w.wal = fresh;
        }
        w.frozen_checkpoint = Some(checkpoint);
        *self.tail_since.lock() = None;
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
        let (sdir, sealed) = self.write_segment(id, |tmp| {
            frozen.write_sealed(tmp, self.config.layout()).map(|_| ())
        })?;
        let n = sealed.len();
        let mut w = self.writer.lock();
        if self.is_closed() {
            drop(sealed);
            self.discard_segment(id, &sdir);
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
        // Kept until the manifest is stored: a failed seal is retried with it.
        let checkpoint = w.frozen_checkpoint.unwrap_or(w.manifest.checkpoint);
        let mut manifest = w.manifest.clone();
        manifest.checkpoint = checkpoint;
        manifest.segments.push(SegmentEntry {
            id,
            points: n as u64,
            tombstones: tomb_file_name(0),
        });
        if let Err(e) = self.commit_manifest(&mut w, manifest, &list) {
            drop((list, sealed));
            self.discard_segment(id, &sdir);
            return Err(e);
        }
        w.frozen_checkpoint = None;
        *self.segs.write() = Arc::new(Segments {
            mutable: s.mutable.clone(),
            frozen: None,
            sealed: list,
        });
        // The checkpoint covers every file before the active one.
        for (first, p) in wal::list_files(&self.dir)? {
            if first < w.wal.next_seq() && p != w.wal.path() && first <= checkpoint {
                let _ = fs::remove_file(&p);
            }
        }
        drop(w);
        crate::metrics::get()
            .storage
            .seal_seconds
            .with_label_values(&[self.name()])
            .observe(started.elapsed().as_secs_f64());
        tracing::info!(
            collection = %self.config.name,
            segment = %sdir.display(),
            points = n,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "segment sealed"
        );
        Ok(n)
    }

    /// Removes the directory of segment `id`, written by a seal or merge
    /// that did not adopt it, so failures that repeat do not fill the disk
    /// with segments. Kept if the manifest on disk names it (one renamed
    /// into place whose directory fsync then failed) or cannot be read: the
    /// next open removes it if no manifest names it.
    fn discard_segment(&self, id: u64, sdir: &Path) {
        let named =
            Manifest::load(&self.dir).map_or(true, |m| m.segments.iter().any(|e| e.id == id));
        if named {
            return;
        }
        if let Err(e) = fs::remove_dir_all(sdir) {
            tracing::warn!(collection = %self.config.name, path = %sdir.display(), error = %e, "segment of a failed seal or merge not removed; the next open removes it");
        }
    }

    /// Whether background seals and merges wait after a failure.
    fn backing_off(&self) -> bool {
        self.backoff
            .lock()
            .is_some_and(|(until, _)| Instant::now() < until)
    }

    /// After a failed background pass: the next one waits, twice as long
    /// as the last wait, from [`BACKOFF_MIN`] up to [`BACKOFF_MAX`], so a
    /// failure that repeats (a full disk) is not retried in a hot loop.
    /// Returns the wait.
    fn back_off(&self) -> Duration {
        let mut b = self.backoff.lock();
        let wait = b.map_or(BACKOFF_MIN, |(_, last)| (last * 2).min(BACKOFF_MAX));
        *b = Some((Instant::now() + wait, wait));
        wait
    }

    /// A pass worked: the next failure waits the shortest time again.
    fn backoff_done(&self) {
        *self.backoff.lock() = None;
    }

    fn reserve_segment_id(&self) -> u64 {
        let mut w = self.writer.lock();
        let id = w.manifest.next_segment;
        w.manifest.next_segment += 1;
        id
    }

    /// Builds segment `id` in place (see [`write_segment_dir`]) and opens it.
    fn write_segment(
        &self,
        id: u64,
        fill: impl FnOnce(&Path) -> Result<()>,
    ) -> Result<(PathBuf, SealedSegment)> {
        let dir = write_segment_dir(&self.dir, id, fill)?;
        let s = SealedSegment::open(
            id,
            &dir,
            self.config.dim as usize,
            self.config.metric,
            &tomb_file_name(0),
        );
        match s {
            Ok(s) => Ok((dir, s)),
            Err(e) => {
                self.discard_segment(id, &dir);
                Err(e)
            }
        }
    }

    /// Under the writer lock: writes changed tombstones of `sealed` and the
    /// manifest naming exactly those segments, then adopts it. If anything
    /// fails, the manifest on disk still names the old tombstone files, so
    /// the segments whose tombstones were written are marked changed again:
    /// the next manifest must not name stale ones while a checkpoint drops
    /// the log records of the deletes.
    pub(super) fn commit_manifest(
        &self,
        w: &mut Writer,
        mut manifest: Manifest,
        sealed: &[Arc<SealedSegment>],
    ) -> Result<()> {
        let mut stale = Vec::new();
        let mut written = Vec::new();
        let r = write_tombstones(&mut manifest, sealed, &mut stale, &mut written).and_then(|_| {
            manifest.next_segment = manifest.next_segment.max(w.manifest.next_segment);
            manifest.store(&self.dir)
        });
        if let Err(e) = r {
            for s in written {
                s.mark_tombstones_dirty();
            }
            return Err(e);
        }
        w.manifest = manifest;
        for p in stale {
            let _ = fs::remove_file(&p);
        }
        Ok(())
    }

    /// Under the maintenance lock: merges until the policy is satisfied.
    fn merge_while_needed(&self) -> Result<()> {
        let mut last: Vec<u64> = Vec::new();
        while !self.closed.load(Ordering::SeqCst) {
            let Some(pick) = self.pick_merge() else {
                return Ok(());
            };
            // A merge that left the same segments to merge made no progress:
            // a failure (so the pass backs off), not a rewrite loop.
            let ids: Vec<u64> = pick.iter().map(|x| x.id).collect();
            if ids == last {
                return Err(crate::error::Error::Internal(format!(
                    "merging segments {ids:?} made no progress"
                )));
            }
            self.merge(&pick)?;
            last = ids;
        }
        Ok(())
    }

    /// Segments to merge: one with too many tombstones, or `merge_factor`
    /// of one size tier (tier = how many times ×4 over or under the seal
    /// threshold, so the tiny segments of frequent flushes merge too), or
    /// the smallest ones while there are more than [`MAX_SEGMENTS`].
    fn pick_merge(&self) -> Option<Vec<Arc<SealedSegment>>> {
        let s = self.snapshot();
        if let Some(x) = s.sealed.iter().find(|x| {
            !x.is_empty() && x.dead_count() as f64 > self.opts.merge_dead_ratio * x.len() as f64
        }) {
            return Some(vec![x.clone()]);
        }
        let factor = self.opts.merge_factor.max(2);
        let t = self.opts.seal_threshold.max(1) as f64;
        let tier = |n: usize| 1 + (n.max(1) as f64 / t).log(4.0).floor() as i64;
        let mut by_tier: BTreeMap<i64, Vec<Arc<SealedSegment>>> = BTreeMap::new();
        for x in &s.sealed {
            by_tier.entry(tier(x.len())).or_default().push(x.clone());
        }
        if let Some(v) = by_tier.into_values().find(|v| v.len() >= factor) {
            return Some(v);
        }
        if s.sealed.len() > MAX_SEGMENTS {
            let mut smallest = s.sealed.clone();
            smallest.sort_by_key(|x| x.len());
            smallest.truncate(factor.max(s.sealed.len() - MAX_SEGMENTS + 1));
            return Some(smallest);
        }
        None
    }

    /// Rewrites `sources` (their live points) as one new sealed segment.
    fn merge(&self, sources: &[Arc<SealedSegment>]) -> Result<()> {
        let started = Instant::now();
        let Some((merged, origin)) = self.live_points_of(sources)? else {
            return Ok(());
        };
        let id = self.reserve_segment_id();
        let (sdir, sealed) = self.write_segment(id, |tmp| {
            merged.write_sealed(tmp, self.config.layout()).map(|_| ())
        })?;
        drop(merged);
        let mut w = self.writer.lock();
        if self.is_closed() {
            drop(sealed);
            self.discard_segment(id, &sdir);
            return Ok(());
        }
        // Deletes and replacements that hit the sources meanwhile.
        for (j, &(si, i)) in origin.iter().enumerate() {
            if !sources[si].is_live(i) {
                sealed.kill(j);
            }
        }
        let sealed = Arc::new(sealed);
        if let Err(e) = self.replace_sources(&mut w, sources, id, &sealed) {
            drop(sealed);
            self.discard_segment(id, &sdir);
            return Err(e);
        }
        drop(w);
        for x in sources {
            // Searches still holding the old segment keep their maps; the
            // files go once the last map is dropped.
            let _ = fs::remove_dir_all(x.dir());
        }
        crate::metrics::get()
            .storage
            .merge_seconds
            .with_label_values(&[self.name()])
            .observe(started.elapsed().as_secs_f64());
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

    /// The live points of `sources` indexed into one new mutable segment,
    /// with where each came from (source, offset); `None` if the collection
    /// was closed meanwhile.
    fn live_points_of(
        &self,
        sources: &[Arc<SealedSegment>],
    ) -> Result<Option<(MutableSegment, Origins)>> {
        let merged = new_mutable(&self.config);
        let mut origin: Origins = Vec::new();
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
                let mut p = Prepared {
                    id: s.id_at(i)?.to_owned(),
                    metadata: s.metadata_at(i)?,
                    ..Default::default()
                };
                if self.config.metric == Metric::Hamming {
                    let (code, quality) = s.code_at(i)?;
                    p.code = code.to_vec();
                    p.quality = quality;
                } else {
                    p.vector = s.vector_at(i)?.into_owned();
                }
                batch.push(p);
                origin.push((si, i));
                if batch.len() == MERGE_BATCH {
                    flush(&mut batch);
                }
                if self.closed.load(Ordering::SeqCst) {
                    return Ok(None);
                }
            }
        }
        flush(&mut batch);
        Ok(Some((merged, origin)))
    }

    /// Under the writer lock: the merged segment `id` takes the place of
    /// the first of its sources in the list and the manifest; the other
    /// sources leave both.
    fn replace_sources(
        &self,
        w: &mut Writer,
        sources: &[Arc<SealedSegment>],
        id: u64,
        sealed: &Arc<SealedSegment>,
    ) -> Result<()> {
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
                    tombstones: tomb_file_name(0),
                },
            });
        }
        manifest.segments = entries;
        self.commit_manifest(w, manifest, &list)?;
        *self.segs.write() = Arc::new(Segments {
            mutable: s.mutable.clone(),
            frozen: s.frozen.clone(),
            sealed: list,
        });
        Ok(())
    }
}

/// Writes the changed tombstones of `sealed` as new files (made durable
/// before a manifest names them) and names them in `manifest`; the files
/// they replace go to `stale`, the segments written to `written`.
fn write_tombstones<'a>(
    manifest: &mut Manifest,
    sealed: &'a [Arc<SealedSegment>],
    stale: &mut Vec<PathBuf>,
    written: &mut Vec<&'a Arc<SealedSegment>>,
) -> Result<()> {
    for s in sealed {
        let generation = manifest.next_tombstones;
        if let Some(name) = s.persist_tombstones(generation)? {
            written.push(s);
            manifest.next_tombstones += 1;
            fs::sync_dir(s.dir())?;
            if let Some(e) = manifest.segments.iter_mut().find(|e| e.id == s.id) {
                stale.push(s.dir().join(std::mem::replace(&mut e.tombstones, name)));
            }
        }
    }
    Ok(())
}

/// Builds segment `id` of the collection in `dir` under a temporary name,
/// then renames it into place, so that a crash never leaves a half-written
/// segment under its real name. Returns its directory.
fn write_segment_dir(
    dir: &Path,
    id: u64,
    fill: impl FnOnce(&Path) -> Result<()>,
) -> Result<PathBuf> {
    let name = segment_dir_name(id);
    let tmp = dir.join(format!("{name}.tmp"));
    let seg_dir = dir.join(&name);
    if tmp.exists() {
        fs::remove_dir_all(&tmp)?;
    }
    fs::create_dir(&tmp)?;
    let r = fill(&tmp).and_then(|_| crate::storage::durable::sync_dir(&tmp));
    if let Err(e) = r {
        let _ = fs::remove_dir_all(&tmp);
        return Err(e);
    }
    if let Err(e) = fs::rename(&tmp, &seg_dir) {
        let _ = fs::remove_dir_all(&tmp);
        return Err(e);
    }
    // No manifest names it yet: a failure leaves nothing behind.
    if let Err(e) = crate::storage::durable::sync_dir(dir) {
        let _ = fs::remove_dir_all(&seg_dir);
        return Err(e);
    }
    Ok(seg_dir)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collection::config::{Config, Kind};
    use crate::collection::{Query, SearchOptions, StorageOptions};
    use crate::index::distance::Metric;
    use crate::index::quant::Quantization;
    use crate::pb;

    #[test]
    fn a_segment_added_sealed_is_the_collection_after_open() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("c");
        let opts = StorageOptions {
            verify_on_open: false,
            ..Default::default()
        };
        let config = Config::new("c", 4, Metric::L2, Kind::Image);
        Collection::create(&dir, config.clone(), opts.clone()).unwrap();
        let seg = new_mutable(&config);
        let pts: Vec<Prepared> = (0..50)
            .map(|i| Prepared {
                id: format!("p{i}"),
                vector: vec![i as f32, 0.0, 1.0, -(i as f32)],
                ..Default::default()
            })
            .collect();
        seg.index(0, &pts);
        seg.commit(0, pts);
        assert!(seg.delete("p7"));
        let sdir = Collection::add_sealed(&dir, &seg).unwrap();
        assert_eq!(sdir, dir.join(segment_dir_name(1)));
        drop(seg);

        let c = Collection::open(&dir, opts).unwrap();
        assert_eq!((c.len(), c.info().segments), (49, 2));
        let hits = c
            .search(
                &[Query::Vector(vec![7.2, 0.0, 1.0, -7.2])],
                2,
                16,
                &SearchOptions::default(),
            )
            .unwrap();
        let ids: Vec<&str> = hits[0].iter().map(|h| h.id.as_str()).collect();
        assert_eq!(ids, ["p8", "p6"], "the deleted p7 stays deleted");
        // The next seal takes the next segment id.
        c.upsert(vec![pb::Point {
            id: "q".into(),
            vector: vec![0.0; 4],
            ..Default::default()
        }])
        .unwrap();
        assert_eq!(c.flush().unwrap(), (3, 1));
        assert!(dir.join(segment_dir_name(2)).is_dir());
    }

    /// Unit vectors around a few directions, deterministic.
    fn unit_points(n: usize, dim: usize, prefix: &str, seed: u64) -> Vec<Prepared> {
        let mut s = seed;
        let mut next = || {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 40) as f32 / (1u64 << 24) as f32) - 0.5
        };
        (0..n)
            .map(|i| {
                let mut v: Vec<f32> = (0..dim).map(|_| next()).collect();
                v[i % dim] += 2.0;
                Metric::Cosine.prepare(&mut v);
                Prepared {
                    id: format!("{prefix}{i}"),
                    vector: v,
                    metadata: pb::Metadata::default(),
                    ..Default::default()
                }
            })
            .collect()
    }

    #[test]
    fn quantized_and_f32_segments_merge_into_one_quantized_segment() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("c");
        let opts = StorageOptions {
            verify_on_open: false,
            merge_factor: 3,
            ..Default::default()
        };
        let dim = 48;
        // Two f32 segments, written while the collection had no codes...
        let config = Config::new("c", dim as u32, Metric::Cosine, Kind::Image);
        Collection::create(&dir, config.clone(), opts.clone()).unwrap();
        let mut all: Vec<Prepared> = Vec::new();
        for (j, prefix) in ["a", "b"].iter().enumerate() {
            let seg = new_mutable(&config);
            let pts = unit_points(300, dim, prefix, j as u64 + 1);
            seg.index(0, &pts);
            seg.commit(0, pts.clone());
            Collection::add_sealed(&dir, &seg).unwrap();
            all.extend(pts);
        }
        // ...then SQ8 from now on (collection.json rewritten while closed):
        // the next seal writes codes, and the merge turns all three into one
        // SQ8 segment.
        let mut sq8 = config.clone();
        sq8.quantization = Quantization::Sq8;
        std::fs::write(
            dir.join(crate::collection::config::CONFIG_FILE),
            serde_json::to_vec(&sq8).unwrap(),
        )
        .unwrap();
        let c = Collection::open(&dir, opts).unwrap();
        let pts = unit_points(300, dim, "c", 3);
        c.upsert(
            pts.iter()
                .map(|p| pb::Point {
                    id: p.id.clone(),
                    vector: p.vector.clone(),
                    metadata: None,
                    ..Default::default()
                })
                .collect(),
        )
        .unwrap();
        all.extend(pts);
        assert_eq!(c.delete(vec!["a7".to_string()]).unwrap(), 1);
        c.flush().unwrap();
        let kinds: Vec<Quantization> = c
            .snapshot()
            .sealed
            .iter()
            .map(|s| s.quantization())
            .collect();
        assert_eq!(
            kinds,
            [Quantization::None, Quantization::None, Quantization::Sq8]
        );
        let check = |c: &Collection| {
            for q in all.iter().step_by(37) {
                let hits = c
                    .search(
                        &[Query::Vector(q.vector.clone())],
                        5,
                        64,
                        &SearchOptions::default(),
                    )
                    .unwrap();
                let mut exact: Vec<(&str, f32)> = all
                    .iter()
                    .filter(|p| p.id != "a7")
                    .map(|p| (p.id.as_str(), Metric::Cosine.distance(&q.vector, &p.vector)))
                    .collect();
                exact.sort_by(|x, y| x.1.total_cmp(&y.1));
                let got: Vec<(&str, f32)> = hits[0]
                    .iter()
                    .map(|h| (h.id.as_str(), h.distance))
                    .collect();
                assert_eq!(got.len(), 5);
                for ((gi, gd), (ei, ed)) in got.iter().zip(&exact) {
                    assert!((gd - ed).abs() < 1e-5, "{gi} {gd} vs {ei} {ed}");
                }
            }
        };
        check(&c);
        let _m = c.maintenance.lock();
        c.merge_while_needed().unwrap();
        drop(_m);
        let s = c.snapshot();
        assert_eq!(
            s.sealed.len(),
            1,
            "three segments of one tier merge into one"
        );
        assert_eq!(s.sealed[0].quantization(), Quantization::Sq8);
        assert_eq!(c.len(), 899);
        check(&c);
    }

    /// Search distances against `all` (but `dead`): each of the top 5 within
    /// `tol` of the exact one (f16 rounding moves distances by ~1e-3).
    fn check_top5(c: &Collection, all: &[Prepared], dead: &str, tol: f32) {
        for q in all.iter().step_by(37) {
            let hits = c
                .search(
                    &[Query::Vector(q.vector.clone())],
                    5,
                    64,
                    &SearchOptions::default(),
                )
                .unwrap();
            let mut exact: Vec<f32> = all
                .iter()
                .filter(|p| p.id != dead)
                .map(|p| Metric::Cosine.distance(&q.vector, &p.vector))
                .collect();
            exact.sort_by(f32::total_cmp);
            assert_eq!(hits[0].len(), 5);
            for (h, e) in hits[0].iter().zip(&exact) {
                assert!(
                    (h.distance - e).abs() < tol,
                    "{} {} vs {e}",
                    h.id,
                    h.distance
                );
            }
        }
    }

    #[test]
    fn f32_and_f16_segments_merge_into_the_collections_storage() {
        use crate::index::f16vec::VectorStorage;
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("c");
        let opts = StorageOptions {
            verify_on_open: false,
            merge_factor: 3,
            ..Default::default()
        };
        let dim = 48;
        // Two f32 segments, then f16 storage from now on (collection.json
        // rewritten while closed): the third seal writes f16 rows.
        let config = Config::new("c", dim as u32, Metric::Cosine, Kind::Image);
        Collection::create(&dir, config.clone(), opts.clone()).unwrap();
        let mut all: Vec<Prepared> = Vec::new();
        for (j, prefix) in ["a", "b"].iter().enumerate() {
            let seg = new_mutable(&config);
            let pts = unit_points(300, dim, prefix, j as u64 + 11);
            seg.index(0, &pts);
            seg.commit(0, pts.clone());
            Collection::add_sealed(&dir, &seg).unwrap();
            all.extend(pts);
        }
        let mut f16 = config.clone();
        f16.vector_storage = VectorStorage::F16;
        std::fs::write(
            dir.join(crate::collection::config::CONFIG_FILE),
            serde_json::to_vec(&f16).unwrap(),
        )
        .unwrap();
        let c = Collection::open(&dir, opts).unwrap();
        let pts = unit_points(300, dim, "c", 13);
        c.upsert(
            pts.iter()
                .map(|p| pb::Point {
                    id: p.id.clone(),
                    vector: p.vector.clone(),
                    ..Default::default()
                })
                .collect(),
        )
        .unwrap();
        all.extend(pts);
        assert_eq!(c.delete(vec!["c7".to_string()]).unwrap(), 1);
        c.flush().unwrap();
        let kinds: Vec<VectorStorage> = c
            .snapshot()
            .sealed
            .iter()
            .map(|s| s.vector_storage())
            .collect();
        assert_eq!(
            kinds,
            [VectorStorage::F32, VectorStorage::F32, VectorStorage::F16]
        );
        check_top5(&c, &all, "c7", 2e-3);
        let _m = c.maintenance.lock();
        c.merge_while_needed().unwrap();
        drop(_m);
        let s = c.snapshot();
        assert_eq!(s.sealed.len(), 1, "three segments of one tier merge");
        assert_eq!(s.sealed[0].vector_storage(), VectorStorage::F16);
        assert!(s.sealed[0].dir().join("vectors16.bin").exists());
        assert!(!s.sealed[0].dir().join("vectors.bin").exists());
        assert_eq!(c.len(), 899);
        check_top5(&c, &all, "c7", 2e-3);
        // A point read back is its f16 rounding: close, not equal.
        let got = c.get(&["b5".to_string()]).unwrap();
        let want = &all.iter().find(|p| p.id == "b5").unwrap().vector;
        assert_eq!(got.len(), 1);
        for (g, w) in got[0].vector.iter().zip(want) {
            assert!((g - w).abs() <= 1e-3 * (1.0 + w.abs()), "{g} vs {w}");
        }
    }
}
