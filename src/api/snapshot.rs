//! Snapshots as the server takes them for `CreateSnapshot`: the
//! collection's consistent cut ([`Collection::snapshot_into`]) plus the
//! files beside it in the data directory that belong to it (its series
//! state, and whatever else a higher layer keeps per collection), with the
//! checksummed snapshot manifest, assembled in a temporary directory under
//! `<data-dir>/snapshots/` (the same filesystem, so sealed files are hard
//! links), streamed to the client in chunks, then removed. Its file
//! operations go through the [`fs`] seam (the fault sweep takes snapshots).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use tokio::sync::mpsc;
use tonic::Status;

use crate::collection::Collection;
use crate::collection::registry::COLLECTIONS_DIR;
use crate::collection::restrict::RESTRICTIONS_FILE;
use crate::error::{Error, Result};
use crate::pb;
use crate::storage::fs;
use crate::storage::snapshot::{DATA_DIR, MANIFEST_FILE, SnapshotManifest, file_entry, list_files};
use crate::storage::versions::SNAPSHOT;

/// Where snapshots are assembled, under the data directory.
pub const SNAPSHOTS_DIR: &str = "snapshots";

/// Bytes of file per streamed message.
pub const CHUNK_BYTES: usize = 1 << 20;

/// A snapshot being assembled or sent; its directory goes when it is dropped.
pub struct TempSnapshot {
    pub dir: PathBuf,
    pub manifest: SnapshotManifest,
}

struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        if let Err(e) = fs::remove_dir_all(&self.0)
            && !e.is_io(std::io::ErrorKind::NotFound)
        {
            tracing::warn!(path = %self.0.display(), error = %e, "cannot remove a snapshot's temporary directory");
        }
    }
}

impl Drop for TempSnapshot {
    fn drop(&mut self) {
        drop(RemoveOnDrop(self.dir.clone()));
    }
}

/// Removes what interrupted snapshots left (the server never keeps one).
pub fn remove_leftovers(data_dir: &Path) {
    let root = data_dir.join(SNAPSHOTS_DIR);
    let Ok(rd) = std::fs::read_dir(&root) else {
        return;
    };
    for e in rd.flatten() {
        if e.file_name().to_string_lossy().starts_with('.') {
            tracing::info!(path = %e.path().display(), "removing an interrupted snapshot");
            drop(RemoveOnDrop(e.path()));
        }
    }
}

/// Copies `<data-dir>/<area>/<name>` and `<area>/<name>.*` (files or
/// directories) of every area but the collections' and the snapshots' into
/// `out/data/<area>/`. Those files are replaced whole by a rename when they
/// change, so each copy is one version of the file.
fn copy_data_files(data_dir: &Path, name: &str, out: &Path) -> Result<()> {
    for area in fs::read_dir(data_dir)? {
        let area_name = area.name.to_string_lossy().into_owned();
        if !area.is_dir || [COLLECTIONS_DIR, SNAPSHOTS_DIR].contains(&area_name.as_str()) {
            continue;
        }
        for f in fs::read_dir(&area.path)? {
            let fname = f.name.to_string_lossy().into_owned();
            let owned = fname
                .strip_prefix(name)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('.'));
            if owned && !fname.ends_with(".tmp") {
                let to = out.join(DATA_DIR).join(&area_name).join(&fname);
                copy_tree(&f.path, f.is_dir, &to)?;
            }
        }
    }
    Ok(())
}

/// The data directory's restrictions go with every snapshot (they are
/// keyed by agency and upload, not by collection): restored elsewhere,
/// restricted points stay hidden. The file is replaced whole by a rename
/// when it changes, so the copy is one version of it.
fn copy_restrictions(data_dir: &Path, out: &Path) -> Result<()> {
    let from = data_dir.join(RESTRICTIONS_FILE);
    if !from.exists() {
        return Ok(());
    }
    copy_tree(&from, false, &out.join(RESTRICTIONS_FILE))
}

/// Copies a file or a directory tree; none of it needs to be durable (the
/// snapshot is streamed, then removed).
fn copy_tree(from: &Path, is_dir: bool, to: &Path) -> Result<()> {
    if let Some(p) = to.parent() {
        mkdirs(p)?;
    }
    if is_dir {
        mkdirs(to)?;
        for e in fs::read_dir(from)? {
            copy_tree(&e.path, e.is_dir, &to.join(&e.name))?;
        }
        return Ok(());
    }
    let bytes = fs::read(from)?;
    let mut f = fs::File::create(to)?;
    f.write_all(&bytes).map_err(|e| Error::io(to, e))
}

/// `dir` and its missing parents, without fsyncs.
fn mkdirs(dir: &Path) -> Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    if let Some(p) = dir.parent() {
        mkdirs(p)?;
    }
    match fs::create_dir(dir) {
        Err(_) if dir.is_dir() => Ok(()),
        r => r,
    }
}

/// Takes a snapshot of `c` into a fresh temporary directory under
/// `<data-dir>/snapshots/`.
pub fn take(c: &Collection, data_dir: &Path) -> Result<TempSnapshot> {
    let root = data_dir.join(SNAPSHOTS_DIR);
    mkdirs(&root)?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let dir = root.join(format!(".{}-{}", c.name(), now.as_nanos()));
    fs::create_dir(&dir)?;
    let guard = RemoveOnDrop(dir.clone());
    let cut = c.snapshot_into(&dir)?;
    copy_data_files(data_dir, c.name(), &dir)?;
    copy_restrictions(data_dir, &dir)?;
    let files = list_files(&dir)?
        .iter()
        .map(|rel| file_entry(&dir, rel))
        .collect::<Result<Vec<_>>>()?;
    let manifest = SnapshotManifest {
        format: SNAPSHOT.current,
        collection: c.name().to_string(),
        vidx_version: env!("CARGO_PKG_VERSION").to_string(),
        created_at: now.as_secs() as i64,
        points: cut.points,
        last_seq: cut.last_seq,
        checkpoint: cut.checkpoint,
        files,
        checksum: String::new(),
    }
    .store(&dir)?;
    std::mem::forget(guard);
    Ok(TempSnapshot { dir, manifest })
}

/// Streams the snapshot's files (the manifest last) as chunks into `tx`,
/// on the calling (blocking) thread; stops early if the client goes away.
pub fn send(snap: TempSnapshot, tx: mpsc::Sender<Result<pb::SnapshotChunk, Status>>) {
    let mut paths: Vec<String> = snap.manifest.files.iter().map(|f| f.path.clone()).collect();
    paths.push(MANIFEST_FILE.to_string());
    for rel in paths {
        let path = snap.dir.join(&rel);
        if let Err(e) = send_file(&path, &rel, &tx) {
            let _ = tx.blocking_send(Err(Status::from(e)));
            return;
        }
        if tx.is_closed() {
            return;
        }
    }
}

fn send_file(
    path: &Path,
    rel: &str,
    tx: &mpsc::Sender<Result<pb::SnapshotChunk, Status>>,
) -> Result<()> {
    let mut f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let file_bytes = f.metadata().map_err(|e| Error::io(path, e))?.len();
    let mut offset = 0u64;
    loop {
        let mut data = vec![0u8; CHUNK_BYTES];
        let mut n = 0;
        while n < data.len() {
            let got = f.read(&mut data[n..]).map_err(|e| Error::io(path, e))?;
            if got == 0 {
                break;
            }
            n += got;
        }
        data.truncate(n);
        // An empty file still gets one message, so that it is created.
        if n == 0 && offset > 0 {
            return Ok(());
        }
        let chunk = pb::SnapshotChunk {
            path: rel.to_string(),
            offset,
            data,
            file_bytes,
        };
        if tx.blocking_send(Ok(chunk)).is_err() {
            return Ok(());
        }
        offset += n as u64;
        if offset >= file_bytes {
            return Ok(());
        }
    }
}
