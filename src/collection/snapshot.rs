//! Snapshots of a collection: a consistent cut of its files taken while
//! writes continue, and putting a verified snapshot's files back as a
//! collection of a data directory.
//!
//! Every change to a collection's files happens under the writer lock: log
//! appends, the manifest (with the tombstone files it names) and the
//! deletion of log files and merged-away segments. So the files as they are
//! at one moment under that lock are a state recovery opens: the manifest,
//! the sealed segments it names, and the log records above its checkpoint.
//! Under the lock the cut hard-links the immutable files (segment files,
//! the current tombstones, manifest, configuration; a merge may delete them
//! a moment later, the links keep them) and notes each log file's length;
//! after the lock is released it copies the log files up to those lengths
//! (they only grow at the end) and re-reads every sealed file's checksums.
//! The cut's file operations go through the [`fs`] seam, so the fault sweep
//! can make a snapshot fail anywhere.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use crate::collection::Collection;
use crate::collection::config::CONFIG_FILE;
use crate::collection::restrict::{RESTRICTIONS_FILE, Restrictions};
use crate::error::{Error, Result};
use crate::storage::durable;
use crate::storage::fs::{self, File};
use crate::storage::lock::DirLock;
use crate::storage::manifest::{MANIFEST_FILE, segment_dir_name};
use crate::storage::snapshot::{COLLECTION_DIR, DATA_DIR, SnapshotManifest, copy_checked};
use crate::storage::wal;
use crate::validate;

/// Where in the write-ahead log a cut was taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cut {
    pub points: u64,
    /// The last log record inside the cut.
    pub last_seq: u64,
    pub checkpoint: u64,
}

/// A file to copy after the writer lock is released: opened under it, so
/// its contents up to `len` are those of the cut even if it is deleted.
struct Pending {
    from: File,
    from_path: PathBuf,
    len: u64,
    to: PathBuf,
}

impl Pending {
    fn copy(self) -> Result<()> {
        let mut out = File::create(&self.to)?;
        let copied = std::io::copy(&mut self.from.std().take(self.len), &mut out)
            .map_err(|e| Error::io(&self.from_path, e))?;
        if copied != self.len {
            return Err(Error::Internal(format!(
                "{}: {copied} bytes read of the {} at the cut",
                self.from_path.display(),
                self.len
            )));
        }
        out.flush().map_err(|e| Error::io(&self.to, e))
    }
}

/// Hard-links `from` as `to`; where the filesystem refuses, opens `from`
/// for a copy once the lock is released.
fn link_or_defer(from: &Path, to: &Path, later: &mut Vec<Pending>) -> Result<()> {
    if fs::hard_link(from, to).is_ok() {
        return Ok(());
    }
    let f = File::open(from)?;
    let len = f.std().metadata().map_err(|e| Error::io(from, e))?.len();
    later.push(Pending {
        from: f,
        from_path: from.to_owned(),
        len,
        to: to.to_owned(),
    });
    Ok(())
}

impl Collection {
    /// Writes the collection's files as of one instant into `out/collection`
    /// (`out` must exist, on the data directory's filesystem for the links
    /// to work; elsewhere the files are copied). Every write acknowledged
    /// before the call is in it. Writers wait only while the links are
    /// made. A sealed file whose checksum fails is DATA_LOSS naming it: a
    /// snapshot never carries a corrupt file.
    pub fn snapshot_into(&self, out: &Path) -> Result<Cut> {
        self.check()?;
        let dst = out.join(COLLECTION_DIR);
        fs::create_dir(&dst)?;
        let mut later = Vec::new();
        let (cut, sealed) = {
            let w = self.writer.lock();
            let segs = self.snapshot();
            for name in [CONFIG_FILE, MANIFEST_FILE] {
                link_or_defer(&self.dir.join(name), &dst.join(name), &mut later)?;
            }
            for e in &w.manifest.segments {
                let name = segment_dir_name(e.id);
                let (from, to) = (self.dir.join(&name), dst.join(&name));
                fs::create_dir(&to)?;
                for f in fs::read_dir(&from)? {
                    let fname = f.name.to_string_lossy().into_owned();
                    // Older tombstone generations are garbage, not state.
                    if fname.starts_with("tomb-") && fname != e.tombstones {
                        continue;
                    }
                    link_or_defer(&f.path, &to.join(&fname), &mut later)?;
                }
            }
            for (_, p) in wal::list_files(&self.dir)? {
                let f = File::open(&p)?;
                let len = if p == w.wal.path() {
                    w.wal.len_bytes()
                } else {
                    f.std().metadata().map_err(|e| Error::io(&p, e))?.len()
                };
                let to = dst.join(p.file_name().unwrap_or_default());
                later.push(Pending {
                    from: f,
                    from_path: p,
                    len,
                    to,
                });
            }
            let cut = Cut {
                points: self.len() as u64,
                last_seq: w.wal.next_seq() - 1,
                checkpoint: w.manifest.checkpoint,
            };
            (cut, segs.sealed.clone())
        };
        for p in later {
            p.copy()?;
        }
        for s in &sealed {
            s.verify()?;
        }
        Ok(cut)
    }
}

/// The data-directory path (relative) a snapshot's `data/...` file goes
/// to when restored as collection `name`: `data/<area>/<old><rest>` becomes
/// `<area>/<name><rest>`; other names are kept.
pub fn data_target(rel: &str, old: &str, name: &str) -> Option<String> {
    let inner = rel.strip_prefix(DATA_DIR)?.strip_prefix('/')?;
    let (area, file) = inner.split_once('/')?;
    let renamed = match file.strip_prefix(old) {
        Some(rest) if rest.is_empty() || rest.starts_with('.') || rest.starts_with('/') => {
            format!("{name}{rest}")
        }
        _ => file.to_string(),
    };
    Some(format!("{area}/{renamed}"))
}

/// What [`restore`] put where.
#[derive(Debug)]
pub struct Restored {
    pub dir: PathBuf,
    /// Data-directory files beside the collection (series state, ...).
    pub data_files: Vec<PathBuf>,
    /// Restrictions of the snapshot that the data directory did not have.
    pub restrictions_added: usize,
}

/// Rewrites a restored data file (`area/file` relative path, contents) for
/// the collection's new name.
pub type Rewrite<'a> = &'a dyn Fn(&str, Vec<u8>) -> Result<Vec<u8>>;

/// Restores the verified snapshot at `snap` (manifest `m`) into `data_dir`
/// as collection `name`, which must not exist there. The data directory is
/// locked meanwhile (no server may be running on it). The collection is
/// assembled under a dot-name and renamed into place, so an interrupted
/// restore leaves nothing the next open would take for a collection. Every
/// file's checksum is checked again as it is copied. With a new name,
/// `collection.json` is renamed and every data file passes through `rewrite`.
pub fn restore(
    snap: &Path,
    m: &SnapshotManifest,
    data_dir: &Path,
    name: &str,
    rewrite: Rewrite<'_>,
) -> Result<Restored> {
    validate::collection_name("name", name)?;
    std::fs::create_dir_all(data_dir).map_err(|e| Error::io(data_dir, e))?;
    let _lock = DirLock::acquire(data_dir)?;
    let root = data_dir.join(crate::collection::registry::COLLECTIONS_DIR);
    std::fs::create_dir_all(&root).map_err(|e| Error::io(&root, e))?;
    let target = root.join(name);
    if target.exists() {
        return Err(Error::FailedPrecondition(format!(
            "collection {name:?} already exists in {}; restore it under another name (--as) or drop it first",
            data_dir.display()
        )));
    }
    let data: Vec<_> = m
        .files
        .iter()
        .filter_map(|f| data_target(&f.path, &m.collection, name).map(|t| (f, data_dir.join(t))))
        .collect();
    if let Some((_, t)) = data.iter().find(|(_, t)| t.exists()) {
        return Err(Error::FailedPrecondition(format!(
            "{} already exists; it would be replaced by the snapshot's copy (remove it first if it is stale)",
            t.display()
        )));
    }
    let tmp = root.join(format!(".restoring-{name}"));
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(|e| Error::io(&tmp, e))?;
    }
    copy_collection(snap, m, &tmp)?;
    // Before the collection is in place: a restore cut short never leaves
    // restricted points that the next server would show to everyone.
    let restrictions_added = merge_restrictions(snap, m, data_dir)?;
    if name != m.collection {
        let cfg = tmp.join(CONFIG_FILE);
        let bytes = std::fs::read(&cfg).map_err(|e| Error::io(&cfg, e))?;
        durable::write_durably(
            &cfg,
            &crate::collection::config::renamed(&cfg, &bytes, name)?,
        )?;
    }
    std::fs::rename(&tmp, &target).map_err(|e| Error::io(&target, e))?;
    durable::sync_dir(&root)?;
    let mut data_files = Vec::new();
    for (f, to) in data {
        restore_data_file(snap, f, &to, name != m.collection, rewrite, data_dir)?;
        data_files.push(to);
    }
    Ok(Restored {
        dir: target,
        data_files,
        restrictions_added,
    })
}

/// Adds the snapshot's restrictions (if it has any) that `data_dir` does
/// not have yet, after checking the file's checksum.
fn merge_restrictions(snap: &Path, m: &SnapshotManifest, data_dir: &Path) -> Result<usize> {
    let Some(f) = m.files.iter().find(|f| f.path == RESTRICTIONS_FILE) else {
        return Ok(0);
    };
    let bytes = crate::storage::snapshot::read_checked(snap, f)?;
    let theirs = Restrictions::from_bytes(snap.join(RESTRICTIONS_FILE), &bytes)?;
    Restrictions::open(data_dir)?.merge_missing(&theirs)
}

/// Copies the snapshot's `collection/...` files into `to` (created),
/// checking each checksum, and fsyncs every directory made.
fn copy_collection(snap: &Path, m: &SnapshotManifest, to: &Path) -> Result<()> {
    std::fs::create_dir(to).map_err(|e| Error::io(to, e))?;
    let mut dirs = vec![to.to_owned()];
    for f in &m.files {
        let Some(rel) = f
            .path
            .strip_prefix(COLLECTION_DIR)
            .and_then(|r| r.strip_prefix('/'))
        else {
            continue;
        };
        let dst = to.join(crate::storage::snapshot::safe_relative(rel)?);
        if let Some(parent) = dst.parent()
            && !parent.exists()
        {
            std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
            dirs.push(parent.to_owned());
        }
        copy_checked(snap, f, &dst)?;
    }
    for d in dirs.iter().rev() {
        durable::sync_dir(d)?;
    }
    Ok(())
}

/// Copies one data file into place (through `rewrite` when renamed).
fn restore_data_file(
    snap: &Path,
    f: &crate::storage::snapshot::SnapshotFile,
    to: &Path,
    renamed: bool,
    rewrite: Rewrite<'_>,
    data_dir: &Path,
) -> Result<()> {
    let parent = to.parent().unwrap_or(data_dir);
    std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
    let tmp = to.with_extension("restoring");
    copy_checked(snap, f, &tmp)?;
    if renamed {
        let bytes = std::fs::read(&tmp).map_err(|e| Error::io(&tmp, e))?;
        let rel = to.strip_prefix(data_dir).unwrap_or(to).to_string_lossy();
        durable::write_durably(to, &rewrite(&rel, bytes)?)?;
        let _ = std::fs::remove_file(&tmp);
    } else {
        std::fs::rename(&tmp, to).map_err(|e| Error::io(to, e))?;
        durable::sync_dir(parent)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::data_target;

    #[test]
    fn data_files_follow_the_new_name() {
        let t = |rel| data_target(rel, "images", "copy");
        assert_eq!(
            t("data/series/images.json").as_deref(),
            Some("series/copy.json")
        );
        assert_eq!(
            t("data/decisions/images/log.bin").as_deref(),
            Some("decisions/copy/log.bin")
        );
        assert_eq!(
            t("data/series/images2.json").as_deref(),
            Some("series/images2.json")
        );
        assert_eq!(t("collection/manifest.json"), None);
    }
}
