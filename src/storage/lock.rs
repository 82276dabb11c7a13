//! The data directory's lock: one process serves a data directory at a
//! time. Two servers replaying and appending to the same write-ahead logs
//! would interleave their records; the second one is refused instead.
//!
//! The lock is an exclusive `flock` on `<data-dir>/vidx.lock`, held for the
//! life of the [`DirLock`], with the holder's pid written inside so that the
//! refused process can name it. The kernel releases the lock when the holder
//! exits, even by SIGKILL, so a file left behind never blocks a restart.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The lock file's name in the data directory.
pub const LOCK_FILE: &str = "vidx.lock";

/// An exclusive hold on a data directory; released when dropped.
#[derive(Debug)]
pub struct DirLock {
    /// Holding the open file holds the lock.
    _file: File,
    path: PathBuf,
}

impl DirLock {
    /// Locks `dir` (which must exist), or fails with FAILED_PRECONDITION
    /// naming the process that holds it.
    pub fn acquire(dir: &Path) -> Result<DirLock> {
        let path = dir.join(LOCK_FILE);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(Error::FailedPrecondition(format!(
                    "data directory in use: another vidx process ({}) holds {}; stop it or use another data directory",
                    holder(&mut file),
                    path.display()
                )));
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(Error::io(&path, e)),
        }
        let pid = format!("{}\n", std::process::id());
        file.seek(SeekFrom::Start(0))
            .and_then(|_| file.write_all(pid.as_bytes()))
            .and_then(|_| file.set_len(pid.len() as u64))
            .map_err(|e| Error::io(&path, e))?;
        Ok(DirLock { _file: file, path })
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// "pid N" from the lock file of the holder, as well as it can be read.
fn holder(file: &mut File) -> String {
    let mut text = String::new();
    let _ = file.read_to_string(&mut text);
    match text.trim().parse::<u32>() {
        Ok(pid) => format!("pid {pid}"),
        Err(_) => "pid unknown".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_is_refused_until_the_first_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let first = DirLock::acquire(dir.path()).unwrap();
        let written = std::fs::read_to_string(first.path()).unwrap();
        assert_eq!(written.trim(), std::process::id().to_string());
        // flock locks belong to the open file, so a second open in the same
        // process is refused like another process would be.
        let e = DirLock::acquire(dir.path()).unwrap_err();
        assert!(matches!(e, Error::FailedPrecondition(_)), "{e}");
        let msg = e.to_string();
        assert!(
            msg.contains(&format!("pid {}", std::process::id())),
            "{msg}"
        );
        assert!(msg.contains(&dir.path().display().to_string()), "{msg}");
        drop(first);
        DirLock::acquire(dir.path()).unwrap();
    }
}
