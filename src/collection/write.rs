//! Writes to a collection: a batch is validated whole, logged (and synced
//! per policy), then applied, under the writer lock so that log order is
//! apply order; a write that fills the mutable segment starts a seal.

use std::collections::{HashMap, HashSet};

use crate::collection::Collection;
use crate::collection::segments::{apply_deletes, apply_upserts};
use crate::error::Result;
use crate::pb;
use crate::segment::mutable::Prepared;
use crate::storage::wal::WalRecord;
use crate::validate;

impl Collection {
    /// Validates a batch whole and prepares its vectors. Within a batch the
    /// last occurrence of an id wins, as if the points were upserted in order.
    pub fn prepare(&self, points: Vec<pb::Point>) -> Result<Vec<Prepared>> {
        let mut out: Vec<Prepared> = Vec::with_capacity(points.len());
        let mut seen: HashMap<String, usize> = HashMap::new();
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
        if let Err(e) = w.wal.append(rec) {
            return Err(self.degrade(e, Some(&w.wal)));
        }
        let segs = self.snapshot();
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
            if !seen.contains(&id) && segs.locate(&id)?.is_some() {
                seen.insert(id.clone());
                live.push(id);
            }
        }
        if live.is_empty() {
            return Ok(0);
        }
        let rec = WalRecord {
            seq: 0,
            upserts: Vec::new(),
            deletes: live,
        };
        if let Err(e) = w.wal.append(rec.clone()) {
            return Err(self.degrade(e, Some(&w.wal)));
        }
        apply_deletes(&segs, &rec.deletes)
    }
}

fn to_pb_point(p: &Prepared) -> pb::Point {
    pb::Point {
        id: p.id.clone(),
        vector: p.vector.clone(),
        metadata: Some(p.metadata.clone()),
    }
}
