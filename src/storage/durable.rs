//! Small durable-filesystem helpers: write-then-rename, directory fsync, sizes.

use std::io::Write;
use std::path::Path;

use crate::error::{Error, Result};
use crate::storage::fs;

/// Writes `bytes` to `path` atomically and durably: temp file, fsync, rename,
/// fsync of the directory. A crash leaves either the old file or the new one.
pub fn write_durably(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    let mut f = fs::File::create(&tmp)?;
    f.write_all(bytes).map_err(|e| Error::io(&tmp, e))?;
    f.sync_all()?;
    drop(f);
    fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        sync_dir(dir)?;
    }
    Ok(())
}

/// fsyncs a directory so renames and creations in it survive a crash.
pub fn sync_dir(dir: &Path) -> Result<()> {
    fs::sync_dir(dir)
}

/// Total size of the regular files below `dir` (0 if unreadable).
pub fn dir_size(dir: &Path) -> u64 {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return 0;
    };
    rd.flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_size(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}
