//! Writes to a collection: a batch is validated whole, logged (and synced
//! per policy), then applied, under the writer lock so that log order is
//! apply order; a write that fills the mutable segment starts a seal.

use std::collections::{HashMap, HashSet};

use crate::collection::segments::{apply_deletes, apply_upserts};
use crate::collection::{Collection, Writer};
use crate::error::{Error, Result};
use crate::index::distance::Metric;
use crate::index::hamming::{bytes_of, words_of};
use crate::pb;
use crate::segment::mutable::Prepared;
use crate::storage::wal::WalRecord;
use crate::validate;

/// Asked before a write replaces a stored point: (id, stored metadata, new
/// metadata); an error refuses the batch.
pub type ReplaceCheck<'a> = &'a (dyn Fn(&str, &pb::Metadata, &pb::Metadata) -> Result<()> + Sync);

/// Asked before a delete removes a stored point: (id, stored metadata);
/// `Ok(false)` treats it as absent, an error refuses the delete.
pub type DeleteCheck<'a> = &'a (dyn Fn(&str, &pb::Metadata) -> Result<bool> + Sync);

impl Collection {
    /// Validates a batch whole and prepares its vectors. Within a batch the
    /// last occurrence of an id wins, as if the points were upserted in order.
    pub fn prepare(&self, points: Vec<pb::Point>) -> Result<Vec<Prepared>> {
        let mut out: Vec<Prepared> = Vec::with_capacity(points.len());
        let mut seen: HashMap<String, usize> = HashMap::new();
        for (i, p) in points.into_iter().enumerate() {
            validate::point_id(&format!("points[{i}].id"), &p.id)?;
            let at = format!("points[{i}] (id {})", validate::show(&p.id));
            let prepared = self.prepare_point(&at, p)?;
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

    /// One point of a batch: a vector, or in a perceptual-hash collection
    /// a code of the collection's bit length and its quality.
    fn prepare_point(&self, at: &str, p: pb::Point) -> Result<Prepared> {
        let metadata = p.metadata.unwrap_or_default();
        validate::metadata(&format!("{at}: metadata"), &metadata)?;
        if self.config.metric == Metric::Hamming {
            if !p.vector.is_empty() {
                return Err(Error::invalid(format!(
                    "{at}: vector has {} values; a PERCEPTUAL_HASH collection takes bits, not a vector",
                    p.vector.len()
                )));
            }
            validate::bits(&format!("{at}: bits"), &p.bits, self.config.dim)?;
            validate::quality(&format!("{at}: quality"), p.quality)?;
            return Ok(Prepared {
                id: p.id,
                metadata,
                code: words_of(&p.bits),
                quality: p.quality as u8,
                ..Default::default()
            });
        }
        if !p.bits.is_empty() {
            return Err(Error::invalid(format!(
                "{at}: bits has {} bytes; only PERCEPTUAL_HASH collections take bits",
                p.bits.len()
            )));
        }
        validate::vector(
            &format!("{at}: vector"),
            &p.vector,
            self.config.dim,
            self.config.metric.to_pb(),
        )?;
        let mut vector = p.vector;
        self.config.metric.prepare(&mut vector);
        Ok(Prepared {
            id: p.id,
            vector,
            metadata,
            ..Default::default()
        })
    }

    /// Validates, logs and applies a batch; returns how many points it held.
    pub fn upsert(&self, points: Vec<pb::Point>) -> Result<usize> {
        self.upsert_checked(points, None)
    }

    /// [`Collection::upsert`] where every point that would replace a stored
    /// one is first shown to `replace` (id, stored metadata, new metadata)
    /// under the writer lock, so no other write slips in between: an error
    /// refuses the whole batch before anything is logged.
    pub fn upsert_checked(
        &self,
        points: Vec<pb::Point>,
        replace: Option<ReplaceCheck<'_>>,
    ) -> Result<usize> {
        self.check()?;
        self.writable()?;
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
        // Again under the lock: a drop or an fsync failure may have come
        // while this batch was being prepared.
        self.writable()?;
        let segs = self.snapshot();
        if let Some(check) = replace {
            for p in &prepared {
                if let Some((seg, off)) = segs.locate(&p.id)? {
                    let (_, stored) = seg.describe(off)?;
                    check(&p.id, &stored, &p.metadata)?;
                }
            }
        }
        self.log(&mut w, rec)?;
        apply_upserts(&segs, prepared)?;
        self.tail_since
            .lock()
            .get_or_insert_with(std::time::Instant::now);
        drop(w);
        self.maybe_seal_in_background();
        Ok(n)
    }

    /// Logs and applies a delete; returns how many ids were live.
    pub fn delete(&self, ids: Vec<String>) -> Result<usize> {
        self.delete_checked(ids, None)
    }

    /// [`Collection::delete`] where each stored point is first shown to
    /// `check` (id, stored metadata) under the writer lock: `Ok(false)`
    /// leaves it alone as if it did not exist, an error refuses the whole
    /// delete.
    pub fn delete_checked(
        &self,
        ids: Vec<String>,
        check: Option<DeleteCheck<'_>>,
    ) -> Result<usize> {
        self.check()?;
        self.writable()?;
        for (i, id) in ids.iter().enumerate() {
            validate::point_id(&format!("ids[{i}]"), id)?;
        }
        let mut w = self.writer.lock();
        self.writable()?;
        let segs = self.snapshot();
        // A set for the repeats, not a scan of the list: a delete of many
        // ids must stay linear, it holds up every writer.
        let mut seen = HashSet::with_capacity(ids.len());
        let mut live = Vec::new();
        for id in ids {
            if seen.contains(&id) {
                continue;
            }
            let Some((seg, off)) = segs.locate(&id)? else {
                continue;
            };
            if let Some(check) = check {
                let (_, stored) = seg.describe(off)?;
                if !check(&id, &stored)? {
                    continue;
                }
            }
            seen.insert(id.clone());
            live.push(id);
        }
        if live.is_empty() {
            return Ok(0);
        }
        self.log(
            &mut w,
            WalRecord {
                seq: 0,
                upserts: Vec::new(),
                deletes: live.clone(),
            },
        )?;
        apply_deletes(&segs, &live)
    }
}

impl Collection {
    /// Changes the metadata of stored points without their vectors: each
    /// point is written again with its stored vector and `change`d metadata,
    /// logged and applied like an upsert (the new version goes to the
    /// mutable segment, the old one is tombstoned wherever it lives, sealed
    /// segments included), so filters see it at once and recovery replays
    /// it. Every id must exist (else nothing is applied). Returns how many
    /// points were updated. Each stored point is first shown to `check`
    /// (id, stored metadata) under the writer lock: `Ok(false)` counts it
    /// as missing, an error refuses the whole update.
    pub fn update_metadata(
        &self,
        ids: &[String],
        change: impl Fn(&mut pb::Metadata),
        check: Option<DeleteCheck<'_>>,
    ) -> Result<usize> {
        self.check()?;
        self.writable()?;
        for (i, id) in ids.iter().enumerate() {
            validate::point_id(&format!("ids[{i}]"), id)?;
        }
        // Under the writer lock: no write can slip in between reading a
        // point and logging its new version.
        let mut w = self.writer.lock();
        self.writable()?;
        let segs = self.snapshot();
        let mut prepared: Vec<Prepared> = Vec::with_capacity(ids.len());
        let mut seen = std::collections::HashSet::new();
        for id in ids {
            if !seen.insert(id.as_str()) {
                continue;
            }
            let point = match segs.locate(id)? {
                Some((seg, off)) => seg.point(id, off)?,
                None => None,
            };
            let point = match (point, check) {
                (Some(p), Some(check)) => {
                    let stored = p.metadata.clone().unwrap_or_default();
                    check(id, &stored)?.then_some(p)
                }
                (p, _) => p,
            };
            let Some(p) = point else {
                return Err(crate::error::Error::PointNotFound {
                    collection: self.config.name.clone(),
                    id: id.clone(),
                });
            };
            let mut metadata = p.metadata.unwrap_or_default();
            change(&mut metadata);
            validate::metadata(
                &format!("point {}: metadata", validate::show(id)),
                &metadata,
            )?;
            // A hash point keeps its stored code and quality.
            prepared.push(Prepared {
                id: p.id,
                vector: p.vector,
                metadata,
                code: words_of(&p.bits),
                quality: p.quality as u8,
            });
        }
        if prepared.is_empty() {
            return Ok(0);
        }
        let n = prepared.len();
        self.log(
            &mut w,
            WalRecord {
                seq: 0,
                upserts: prepared.iter().map(to_pb_point).collect(),
                deletes: Vec::new(),
            },
        )?;
        apply_upserts(&segs, prepared)?;
        self.tail_since
            .lock()
            .get_or_insert_with(std::time::Instant::now);
        drop(w);
        self.maybe_seal_in_background();
        Ok(n)
    }

    /// Appends `rec` to the log (under the writer lock) and records the bytes
    /// and the fsync time. A failure that leaves the log untrusted turns the
    /// collection read-only ([`Collection::degrade`]).
    fn log(&self, w: &mut Writer, rec: WalRecord) -> Result<()> {
        let before = w.wal.len_bytes();
        let r = w.wal.append(rec);
        self.note_fsync(w);
        if let Err(e) = r {
            return Err(self.degrade(e, Some(&w.wal)));
        }
        crate::metrics::get()
            .storage
            .wal_written_bytes
            .with_label_values(&[self.name()])
            .inc_by(w.wal.len_bytes() - before);
        Ok(())
    }
}

fn to_pb_point(p: &Prepared) -> pb::Point {
    pb::Point {
        id: p.id.clone(),
        vector: p.vector.clone(),
        metadata: Some(p.metadata.clone()),
        bits: bytes_of(&p.code),
        quality: p.quality as u32,
    }
}
