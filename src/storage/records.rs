//! An append-only file of checksummed records, each fsynced before its
//! append returns: for small logs of rare, precious writes (investigators'
//! decisions) that are kept whole rather than checkpointed.
//!
//! ```text
//! header  : magic (8 bytes) | format version u32 LE | reserved u32
//! record* : payload length u32 LE | CRC32C of payload u32 LE | payload
//! ```
//!
//! On open every record is read back. Only the last append can have been
//! interrupted, so a record that runs past the end of the file, or the last
//! record failing its checksum, is a torn tail: it is cut off (it was never
//! acknowledged) and the cut is logged. A bad record with more after it is
//! damage: DATA_LOSS naming the file.

use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::storage::durable;
use crate::storage::fs::{self, File};
use crate::storage::versions::Format;

const HEADER_LEN: usize = 16;
/// Larger length fields are treated as damage rather than allocated.
const MAX_RECORD: usize = 64 << 20;

/// An open record file, positioned at its end. Its file operations go
/// through the [`fs`] seam, so tests can make them fail.
pub struct RecordFile {
    path: PathBuf,
    file: File,
    len: u64,
    /// Set when an append failed in a way that leaves the file untrusted
    /// (an fsync error, or a torn record that could not be cut back):
    /// later appends are refused; reopening reads the file again.
    broken: Option<String>,
}

fn header(magic: &[u8; 8], format: Format) -> Vec<u8> {
    let mut h = Vec::with_capacity(HEADER_LEN);
    h.extend_from_slice(magic);
    h.extend_from_slice(&format.current.to_le_bytes());
    h.extend_from_slice(&0u32.to_le_bytes());
    h
}

/// The records of `bytes` (a whole file) and where the intact part ends.
fn scan(path: &Path, bytes: &[u8]) -> Result<(Vec<Vec<u8>>, usize)> {
    let mut out = Vec::new();
    let mut pos = HEADER_LEN;
    while pos < bytes.len() {
        let Some(frame) = bytes.get(pos..pos + 8) else {
            break;
        };
        let len = u32::from_le_bytes(frame[..4].try_into().expect("4 bytes")) as usize;
        let crc = u32::from_le_bytes(frame[4..].try_into().expect("4 bytes"));
        let end = pos + 8 + len;
        if len > MAX_RECORD || end > bytes.len() {
            break;
        }
        let payload = &bytes[pos + 8..end];
        if crc32c::crc32c(payload) != crc {
            if end < bytes.len() {
                return Err(Error::data_loss(
                    path,
                    format!(
                        "record at byte {pos} fails its checksum and {} bytes follow it",
                        bytes.len() - end
                    ),
                ));
            }
            break;
        }
        out.push(payload.to_vec());
        pos = end;
    }
    Ok((out, pos))
}

impl RecordFile {
    /// Opens `path` (created with its header if absent) and returns it with
    /// its records, oldest first.
    pub fn open(
        path: &Path,
        magic: &[u8; 8],
        format: Format,
    ) -> Result<(RecordFile, Vec<Vec<u8>>)> {
        if !path.exists() {
            if let Some(dir) = path.parent() {
                fs::create_dir_all_durably(dir)?;
            }
            durable::write_durably(path, &header(magic, format))?;
        }
        let bytes = fs::read(path)?;
        if bytes.len() < HEADER_LEN || &bytes[..8] != magic {
            return Err(Error::data_loss(
                path,
                format!("not a {} (bad magic)", format.name),
            ));
        }
        format.check(
            path,
            u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes")),
        )?;
        let (records, end) = scan(path, &bytes)?;
        let file = File::open_rw(path)?;
        if end < bytes.len() {
            file.set_len(end as u64)?;
            file.sync_all()?;
            tracing::warn!(path = %path.display(), dropped_bytes = bytes.len() - end,
                kept_records = records.len(), "torn last record cut off");
        }
        Ok((
            RecordFile {
                path: path.to_owned(),
                file,
                len: end as u64,
                broken: None,
            },
            records,
        ))
    }

    /// Appends one record and fsyncs it. On a failed write the file is cut
    /// back, so a half-written record never precedes a later good one; after
    /// a failed fsync (what it held may be gone whatever later fsyncs say)
    /// or a cut that failed, this file refuses appends.
    pub fn append(&mut self, payload: &[u8]) -> Result<()> {
        if let Some(why) = &self.broken {
            return Err(Error::fsync(
                &self.path,
                std::io::Error::other(format!("the file is not trusted since: {why}")),
            ));
        }
        if payload.len() > MAX_RECORD {
            return Err(Error::ResourceExhausted(format!(
                "one record is {} bytes; at most {MAX_RECORD}",
                payload.len()
            )));
        }
        let mut frame = Vec::with_capacity(8 + payload.len());
        frame.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        frame.extend_from_slice(&crc32c::crc32c(payload).to_le_bytes());
        frame.extend_from_slice(payload);
        let written = self
            .file
            .seek(SeekFrom::Start(self.len))
            .and_then(|_| self.file.write_all(&frame));
        if let Err(e) = written {
            if let Err(cut) = self.file.set_len(self.len) {
                self.broken = Some(format!(
                    "a failed append ({e}) could not be cut back off the file: {cut}"
                ));
            }
            return Err(Error::io(&self.path, e));
        }
        if let Err(e) = self.file.sync_data() {
            self.broken = Some(e.to_string());
            return Err(e);
        }
        self.len += frame.len() as u64;
        Ok(())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::versions::DECISIONS;

    const MAGIC: &[u8; 8] = b"VIDXTST\0";

    #[test]
    fn round_trip_torn_tail_and_damage() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/x.log");
        let (mut f, recs) = RecordFile::open(&path, MAGIC, DECISIONS).unwrap();
        assert!(recs.is_empty());
        f.append(b"one").unwrap();
        f.append(b"two").unwrap();
        drop(f);
        // A torn append: a frame whose payload never fully arrived.
        let mut bytes = std::fs::read(&path).unwrap();
        let good = bytes.len();
        bytes.extend_from_slice(&[9, 0, 0, 0, 1, 2, 3, 4, b'x']);
        std::fs::write(&path, &bytes).unwrap();
        let (mut f, recs) = RecordFile::open(&path, MAGIC, DECISIONS).unwrap();
        assert_eq!(recs, vec![b"one".to_vec(), b"two".to_vec()]);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), good as u64);
        f.append(b"three").unwrap();
        drop(f);
        let (_, recs) = RecordFile::open(&path, MAGIC, DECISIONS).unwrap();
        assert_eq!(recs.len(), 3);
        // Damage in the middle is data loss, named.
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[HEADER_LEN + 8] ^= 0xff;
        std::fs::write(&path, &bytes).unwrap();
        let e = RecordFile::open(&path, MAGIC, DECISIONS).err().unwrap();
        assert!(matches!(e, Error::DataLoss { .. }), "{e}");
        assert!(e.to_string().contains("x.log"), "{e}");
        std::fs::write(&path, b"something else entirely").unwrap();
        let e = RecordFile::open(&path, MAGIC, DECISIONS).err().unwrap();
        assert!(e.to_string().contains("bad magic"), "{e}");
    }
}
