//! Restricted uploads: which agencies may see an upload's points, kept for
//! the whole data directory in `<data-dir>/restrictions.json`.
//!
//! A restriction names an upload by its owner agency and upload id (the
//! `agency` and `upload_id` of its points, in every collection: images and
//! faces alike) and the agencies it is shared with. A point of a restricted
//! upload is visible to its owner and those agencies only. For any other
//! caller the api layer turns the restrictions into a visibility predicate
//! ([`Restrictions::hidden_from`], a [`Filter`] of hidden uploads) that
//! searches, reads and the linking and triage views apply like any other
//! metadata filter: inside each segment, before top-k.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::index::filter::Filter;
use crate::storage::durable;

pub const RESTRICTIONS_FILE: &str = "restrictions.json";
const FORMAT: &str = "vidx-restrictions/1";

/// One restricted upload.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Restriction {
    pub owner: String,
    pub upload_id: String,
    /// Agencies besides the owner that see the upload's points.
    pub shared_with: BTreeSet<String>,
    /// Others whose searches would have found this material are told that
    /// the owner holds matching restricted material (no ids, metadata or
    /// distances), so that they can get in touch.
    pub deconfliction: bool,
    /// Unix seconds of the last change.
    pub updated_at: i64,
}

impl Restriction {
    pub fn visible_to(&self, agency: &str) -> bool {
        self.owner == agency || self.shared_with.contains(agency)
    }
}

#[derive(Serialize, Deserialize)]
struct File {
    format: String,
    restrictions: Vec<Restriction>,
}

type Map = BTreeMap<(String, String), Restriction>;

/// The restrictions of a data directory; reads take a snapshot.
pub struct Restrictions {
    path: PathBuf,
    current: RwLock<Arc<Map>>,
    /// One writer at a time: read-modify-write of the file.
    write: Mutex<()>,
}

impl Restrictions {
    /// Opens (or starts empty) `<data_dir>/restrictions.json`.
    pub fn open(data_dir: &Path) -> Result<Restrictions> {
        let path = data_dir.join(RESTRICTIONS_FILE);
        match std::fs::read(&path) {
            Ok(bytes) => Restrictions::from_bytes(path, &bytes),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Ok(Restrictions::with(path, Map::new()))
            }
            Err(e) => Err(Error::io(&path, e)),
        }
    }

    /// The restrictions that `bytes` (a restrictions file's contents, read
    /// from `path`, which is also where a change would be stored) hold.
    pub fn from_bytes(path: PathBuf, bytes: &[u8]) -> Result<Restrictions> {
        let f: File = serde_json::from_slice(bytes)
            .map_err(|e| Error::data_loss(&path, format!("not a restrictions file: {e}")))?;
        if f.format != FORMAT {
            return Err(Error::FailedPrecondition(format!(
                "{}: format {:?}; this vidx reads {FORMAT:?}",
                path.display(),
                f.format
            )));
        }
        let map = f
            .restrictions
            .into_iter()
            .map(|r| ((r.owner.clone(), r.upload_id.clone()), r))
            .collect();
        Ok(Restrictions::with(path, map))
    }

    fn with(path: PathBuf, map: Map) -> Restrictions {
        Restrictions {
            path,
            current: RwLock::new(Arc::new(map)),
            write: Mutex::new(()),
        }
    }

    pub fn snapshot(&self) -> Arc<Map> {
        self.current.read().clone()
    }

    /// The restriction of `owner`'s upload, if any.
    pub fn get(&self, owner: &str, upload_id: &str) -> Option<Restriction> {
        self.snapshot()
            .get(&(owner.to_string(), upload_id.to_string()))
            .cloned()
    }

    /// The visibility predicate of a caller of `agency`: every restricted
    /// upload it may not see; `None` when it may see them all.
    pub fn hidden_from(&self, agency: &str) -> Option<Filter> {
        let hidden: Vec<(String, String)> = self
            .snapshot()
            .values()
            .filter(|r| !r.visible_to(agency))
            .map(|r| (r.owner.clone(), r.upload_id.clone()))
            .collect();
        // BTreeMap order is (owner, upload) order: already sorted.
        (!hidden.is_empty()).then(|| Filter {
            hidden_uploads: hidden,
            ..Default::default()
        })
    }

    /// The visibility predicate of the shared series state: every
    /// restricted upload hidden.
    pub fn hidden_from_all(&self) -> Option<Filter> {
        let hidden: Vec<(String, String)> = self.snapshot().keys().cloned().collect();
        (!hidden.is_empty()).then(|| Filter {
            hidden_uploads: hidden,
            ..Default::default()
        })
    }

    /// Restricted uploads of deconflicting owners that `agency` may not
    /// see, as owner → uploads.
    pub fn deconflicting_hidden_from(&self, agency: &str) -> Vec<(String, String)> {
        self.snapshot()
            .values()
            .filter(|r| r.deconfliction && !r.visible_to(agency))
            .map(|r| (r.owner.clone(), r.upload_id.clone()))
            .collect()
    }

    /// Sets (adds or replaces) a restriction, durably, after `check` passes
    /// under the write lock (the caller checks that an upload restricted
    /// for the first time has no points yet).
    pub fn set(
        &self,
        r: Restriction,
        check: impl FnOnce(Option<&Restriction>) -> Result<()>,
    ) -> Result<()> {
        let _w = self.write.lock();
        let mut map = (*self.snapshot()).clone();
        let key = (r.owner.clone(), r.upload_id.clone());
        check(map.get(&key))?;
        map.insert(key, r);
        self.store(map)
    }

    /// Lifts a restriction; false if there was none.
    pub fn lift(&self, owner: &str, upload_id: &str) -> Result<bool> {
        let _w = self.write.lock();
        let mut map = (*self.snapshot()).clone();
        if map
            .remove(&(owner.to_string(), upload_id.to_string()))
            .is_none()
        {
            return Ok(false);
        }
        self.store(map)?;
        Ok(true)
    }

    /// Adds every restriction of `other` that this data directory does not
    /// have (a restored snapshot's): one already here is kept as it is, so
    /// a merge never lifts or widens anything. The number added.
    pub fn merge_missing(&self, other: &Restrictions) -> Result<usize> {
        let _w = self.write.lock();
        let mut map = (*self.snapshot()).clone();
        let mut added = 0;
        for (key, r) in other.snapshot().iter() {
            if !map.contains_key(key) {
                map.insert(key.clone(), r.clone());
                added += 1;
            }
        }
        if added > 0 {
            self.store(map)?;
        }
        Ok(added)
    }

    fn store(&self, map: Map) -> Result<()> {
        let f = File {
            format: FORMAT.to_string(),
            restrictions: map.values().cloned().collect(),
        };
        let bytes = serde_json::to_vec_pretty(&f)
            .map_err(|e| Error::Internal(format!("encoding restrictions: {e}")))?;
        durable::write_durably(&self.path, &bytes)?;
        *self.current.write() = Arc::new(map);
        Ok(())
    }
}
