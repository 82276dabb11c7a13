//! The manifest: which sealed segments make up a collection, which
//! tombstone file each uses, and the WAL checkpoint (every record at or below
//! it is inside the sealed segments). It is replaced atomically (temp file,
//! fsync, rename, directory fsync), so a crash leaves the old or the new one.
//! Recovery = manifest + replay of WAL records above the checkpoint; files
//! the manifest does not name are garbage.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::storage::versions::MANIFEST;

pub const MANIFEST_FILE: &str = "manifest.json";

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SegmentEntry {
    pub id: u64,
    /// Points in the segment, live or not.
    pub points: u64,
    /// Name of its current tombstone file inside the segment directory.
    pub tombstones: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: u32,
    /// Highest WAL sequence number whose effects the segments hold.
    pub checkpoint: u64,
    pub next_segment: u64,
    /// Generation counter for tombstone file names.
    pub next_tombstones: u64,
    /// Oldest first.
    pub segments: Vec<SegmentEntry>,
}

impl Default for Manifest {
    fn default() -> Self {
        Manifest {
            format: MANIFEST.current,
            checkpoint: 0,
            next_segment: 1,
            next_tombstones: 1,
            segments: Vec::new(),
        }
    }
}

pub fn segment_dir_name(id: u64) -> String {
    format!("seg-{id:08}")
}

impl Manifest {
    /// Reads the manifest of `dir`, or an empty one if there is none yet.
    pub fn load(dir: &Path) -> Result<Manifest> {
        let path = dir.join(MANIFEST_FILE);
        let bytes = match crate::storage::fs::read(&path) {
            Ok(b) => b,
            Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Manifest::default());
            }
            Err(e) => return Err(e),
        };
        let m: Manifest = serde_json::from_slice(&bytes)
            .map_err(|e| Error::bad_json(&path, "the manifest", &e))?;
        MANIFEST.check(&path, m.format)?;
        Ok(m)
    }

    pub fn store(&self, dir: &Path) -> Result<()> {
        let json = serde_json::to_vec_pretty(self).map_err(|e| Error::Internal(e.to_string()))?;
        crate::storage::durable::write_durably(&dir.join(MANIFEST_FILE), &json)
    }
}
