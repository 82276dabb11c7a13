//! A snapshot's bytes: the checksummed snapshot manifest (`snapshot.json`)
//! that lists every file with its size and CRC32C, and the checks that a
//! snapshot directory is whole before anything is restored from it.
//!
//! ```text
//! <snapshot>/snapshot.json            this manifest (written last)
//! <snapshot>/collection/...           the collection's directory as of the cut
//! <snapshot>/data/<area>/<name>...    files beside it that belong to it
//!                                     (e.g. data/series/<name>.json)
//! ```
//!
//! The manifest carries a CRC32C of its own JSON (with `checksum` empty), so
//! a damaged manifest is told apart from a damaged file it lists.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::storage::versions::SNAPSHOT;

pub const MANIFEST_FILE: &str = "snapshot.json";
/// The collection's own files, under the snapshot directory.
pub const COLLECTION_DIR: &str = "collection";
/// Files of the data directory beside the collection (series state, ...).
pub const DATA_DIR: &str = "data";

/// One file of a snapshot.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotFile {
    /// Relative to the snapshot directory, `/`-separated.
    pub path: String,
    pub bytes: u64,
    /// CRC32C of the contents, 8 hex digits.
    pub crc32c: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotManifest {
    pub format: u32,
    /// The collection's name when the snapshot was taken.
    pub collection: String,
    pub vidx_version: String,
    /// Unix seconds.
    pub created_at: i64,
    /// Live points at the cut.
    pub points: u64,
    /// The last write-ahead log record in the snapshot: every write
    /// acknowledged before the snapshot began is at or below it.
    pub last_seq: u64,
    /// Records at or below this are inside the sealed segments.
    pub checkpoint: u64,
    pub files: Vec<SnapshotFile>,
    /// CRC32C of this manifest's JSON with this field empty, 8 hex digits.
    pub checksum: String,
}

fn hex(crc: u32) -> String {
    format!("{crc:08x}")
}

/// CRC32C and length of everything `r` yields.
fn crc_of(mut r: impl Read, path: &Path) -> Result<(u32, u64)> {
    let mut buf = vec![0u8; 1 << 20];
    let (mut crc, mut len) = (0u32, 0u64);
    loop {
        let n = r.read(&mut buf).map_err(|e| Error::io(path, e))?;
        if n == 0 {
            return Ok((crc, len));
        }
        crc = crc32c::crc32c_append(crc, &buf[..n]);
        len += n as u64;
    }
}

/// `rel` as a path under a snapshot or data directory: relative, with plain
/// components only (no `..`, no root), so a manifest cannot point outside.
pub fn safe_relative(rel: &str) -> Result<PathBuf> {
    let p = Path::new(rel);
    let plain = !rel.is_empty() && p.components().all(|c| matches!(c, Component::Normal(_)));
    if !plain {
        return Err(Error::invalid(format!(
            "snapshot path {rel:?} is not a plain relative path"
        )));
    }
    Ok(p.to_owned())
}

/// The entry for the file `rel` under `root`, read whole for its checksum.
pub fn file_entry(root: &Path, rel: &str) -> Result<SnapshotFile> {
    let path = root.join(safe_relative(rel)?);
    let f = File::open(&path).map_err(|e| Error::io(&path, e))?;
    let (crc, bytes) = crc_of(f, &path)?;
    Ok(SnapshotFile {
        path: rel.to_string(),
        bytes,
        crc32c: hex(crc),
    })
}

/// Every regular file below `root` but the manifest, as sorted relative
/// `/`-separated paths.
pub fn list_files(root: &Path) -> Result<Vec<String>> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) -> Result<()> {
        for e in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
            let e = e.map_err(|e| Error::io(dir, e))?;
            let p = e.path();
            let ty = e.file_type().map_err(|e| Error::io(&p, e))?;
            if ty.is_dir() {
                walk(root, &p, out)?;
            } else if ty.is_file() {
                let rel = p.strip_prefix(root).unwrap_or(&p);
                let parts: Vec<String> = rel
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect();
                out.push(parts.join("/"));
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    walk(root, root, &mut out)?;
    out.retain(|p| p != MANIFEST_FILE);
    out.sort();
    Ok(out)
}

impl SnapshotManifest {
    fn checksum_of(&self) -> Result<String> {
        let mut unsealed = self.clone();
        unsealed.checksum.clear();
        let bytes =
            serde_json::to_vec_pretty(&unsealed).map_err(|e| Error::Internal(e.to_string()))?;
        Ok(hex(crc32c::crc32c(&bytes)))
    }

    /// Sets the manifest's own checksum and writes it durably as
    /// `root/snapshot.json`.
    pub fn store(mut self, root: &Path) -> Result<SnapshotManifest> {
        self.checksum = self.checksum_of()?;
        let bytes = serde_json::to_vec_pretty(&self).map_err(|e| Error::Internal(e.to_string()))?;
        crate::storage::durable::write_durably(&root.join(MANIFEST_FILE), &bytes)?;
        Ok(self)
    }

    /// Reads `root/snapshot.json` and checks its own checksum and format.
    pub fn load(root: &Path) -> Result<SnapshotManifest> {
        let path = root.join(MANIFEST_FILE);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::data_loss(
                    &path,
                    "no snapshot manifest: not a vidx snapshot, or one whose transfer did not finish",
                ));
            }
            Err(e) => return Err(Error::io(&path, e)),
        };
        let m: SnapshotManifest = serde_json::from_slice(&bytes)
            .map_err(|e| Error::data_loss(&path, format!("unreadable snapshot manifest: {e}")))?;
        // A newer vidx may checksum differently: say it is newer first.
        if m.format > SNAPSHOT.current {
            SNAPSHOT.check(&path, m.format)?;
        }
        let want = m.checksum_of()?;
        if m.checksum != want {
            return Err(Error::data_loss(
                &path,
                format!(
                    "snapshot manifest checksum is {}, its contents give {want}: the manifest is damaged",
                    m.checksum
                ),
            ));
        }
        SNAPSHOT.check(&path, m.format)?;
        for f in &m.files {
            safe_relative(&f.path).map_err(|e| Error::data_loss(&path, e.to_string()))?;
        }
        Ok(m)
    }

    pub fn total_bytes(&self) -> u64 {
        self.files.iter().map(|f| f.bytes).sum()
    }
}

/// DATA_LOSS naming `path` when `got` (crc, len) is not what `want` lists.
fn check_entry(path: &Path, want: &SnapshotFile, crc: u32, len: u64) -> Result<()> {
    if len != want.bytes {
        return Err(Error::data_loss(
            path,
            format!(
                "{len} bytes, the snapshot manifest says {}: the snapshot is damaged",
                want.bytes
            ),
        ));
    }
    if hex(crc) != want.crc32c {
        return Err(Error::data_loss(
            path,
            format!(
                "checksum (CRC32C) is {}, the snapshot manifest says {}: the snapshot is damaged",
                hex(crc),
                want.crc32c
            ),
        ));
    }
    Ok(())
}

/// Checks the manifest and every file it lists (size and checksum); the
/// first mismatch is DATA_LOSS naming the file.
pub fn verify(root: &Path) -> Result<SnapshotManifest> {
    let m = SnapshotManifest::load(root)?;
    for f in &m.files {
        let path = root.join(safe_relative(&f.path)?);
        let file = File::open(&path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => Error::data_loss(
                &path,
                "missing: the snapshot manifest lists it; the snapshot is incomplete",
            ),
            _ => Error::io(&path, e),
        })?;
        let (crc, len) = crc_of(file, &path)?;
        check_entry(&path, f, crc, len)?;
    }
    Ok(m)
}

/// Copies the snapshot file `f` from `root` to `to` (created; fsynced),
/// checking its checksum on the way: a file changed since it was verified
/// fails here, naming it, instead of being restored.
pub fn copy_checked(root: &Path, f: &SnapshotFile, to: &Path) -> Result<()> {
    let from = root.join(safe_relative(&f.path)?);
    let mut src = File::open(&from).map_err(|e| Error::io(&from, e))?;
    let mut dst = File::create(to).map_err(|e| Error::io(to, e))?;
    let mut buf = vec![0u8; 1 << 20];
    let (mut crc, mut len) = (0u32, 0u64);
    loop {
        let n = src.read(&mut buf).map_err(|e| Error::io(&from, e))?;
        if n == 0 {
            break;
        }
        crc = crc32c::crc32c_append(crc, &buf[..n]);
        len += n as u64;
        dst.write_all(&buf[..n]).map_err(|e| Error::io(to, e))?;
    }
    check_entry(&from, f, crc, len)?;
    dst.sync_all().map_err(|e| Error::io(to, e))
}

/// The bytes of snapshot file `f` under `root`, checked against the
/// manifest's length and checksum (for a small file read whole).
pub fn read_checked(root: &Path, f: &SnapshotFile) -> Result<Vec<u8>> {
    let from = root.join(safe_relative(&f.path)?);
    let bytes = std::fs::read(&from).map_err(|e| Error::io(&from, e))?;
    check_entry(&from, f, crc32c::crc32c(&bytes), bytes.len() as u64)?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(files: Vec<SnapshotFile>) -> SnapshotManifest {
        SnapshotManifest {
            format: SNAPSHOT.current,
            collection: "images".into(),
            vidx_version: "test".into(),
            created_at: 1,
            points: 3,
            last_seq: 7,
            checkpoint: 2,
            files,
            checksum: String::new(),
        }
    }

    #[test]
    fn a_flipped_byte_is_named_by_file() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("collection/seg-00000001")).unwrap();
        std::fs::write(
            root.join("collection/seg-00000001/vectors.bin"),
            b"0123456789",
        )
        .unwrap();
        std::fs::write(root.join("collection/manifest.json"), b"{}").unwrap();
        let files = list_files(root).unwrap();
        assert_eq!(
            files,
            [
                "collection/manifest.json",
                "collection/seg-00000001/vectors.bin"
            ]
        );
        let entries = files.iter().map(|f| file_entry(root, f).unwrap()).collect();
        let stored = manifest(entries).store(root).unwrap();
        assert_eq!(verify(root).unwrap(), stored);

        let victim = root.join("collection/seg-00000001/vectors.bin");
        std::fs::write(&victim, b"0123456780").unwrap();
        let e = verify(root).unwrap_err().to_string();
        assert!(
            e.contains("seg-00000001/vectors.bin") && e.contains("checksum"),
            "{e}"
        );
        let out = root.join("copy");
        let e = copy_checked(root, &stored.files[1], &out)
            .unwrap_err()
            .to_string();
        assert!(e.contains("vectors.bin"), "{e}");

        std::fs::write(&victim, b"0123456789").unwrap();
        let mpath = root.join(MANIFEST_FILE);
        let text = std::fs::read_to_string(&mpath).unwrap();
        std::fs::write(&mpath, text.replace("\"points\": 3", "\"points\": 4")).unwrap();
        let e = verify(root).unwrap_err().to_string();
        assert!(
            e.contains("snapshot.json") && e.contains("manifest is damaged"),
            "{e}"
        );
    }

    #[test]
    fn paths_stay_inside_the_snapshot() {
        for bad in ["", "../x", "/etc/passwd", "a/../../b"] {
            assert!(safe_relative(bad).is_err(), "{bad}");
        }
        assert!(safe_relative("collection/seg-00000001/graph.bin").is_ok());
    }
}
