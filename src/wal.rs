//! The write-ahead log of one collection: every acknowledged write, in order.
//!
//! File layout (`wal.log`):
//!
//! ```text
//! header  : b"VIDXWAL\0" | format version u32 LE | reserved u32
//! record* : payload length u32 LE | CRC32C of payload u32 LE | payload
//! ```
//!
//! The payload is a protobuf-encoded [`WalRecord`] (prost): a stable, versioned
//! binary encoding we already depend on, and forward-compatible when fields
//! are added. On open, records are read until the first one that is short,
//! fails its checksum or does not decode; the file is cut there (a torn tail
//! from a crash mid-append) and the number of dropped bytes is reported.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use prost::Message;

use crate::error::{Error, Result};
use crate::pb;

const MAGIC: &[u8; 8] = b"VIDXWAL\0";
const VERSION: u32 = 1;
const HEADER_LEN: u64 = 16;
/// Larger length fields are treated as corruption rather than allocated.
const MAX_RECORD: u32 = 1 << 30;

/// One logged write: a batch of upserts or a batch of deletes.
#[derive(Clone, PartialEq, prost::Message)]
pub struct WalRecord {
    /// Monotonic sequence number, starting at 1.
    #[prost(uint64, tag = "1")]
    pub seq: u64,
    /// Points as applied: validated, vectors already prepared for the metric.
    #[prost(message, repeated, tag = "2")]
    pub upserts: Vec<pb::Point>,
    #[prost(string, repeated, tag = "3")]
    pub deletes: Vec<String>,
}

/// When an append is made durable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyncPolicy {
    /// fsync (fdatasync) before every acknowledgement.
    Always,
    /// Never fsync explicitly; the OS writes back when it likes. For tests
    /// and bulk loads where a crash may lose the tail.
    Never,
}

impl std::str::FromStr for SyncPolicy {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        match s {
            "always" => Ok(SyncPolicy::Always),
            "never" => Ok(SyncPolicy::Never),
            other => Err(format!(
                "unknown sync policy {other:?}: use \"always\" or \"never\""
            )),
        }
    }
}

/// What [`Wal::open`] found.
#[derive(Debug, Default)]
pub struct Recovery {
    pub records: Vec<WalRecord>,
    /// Bytes cut from a torn or corrupt tail.
    pub dropped_bytes: u64,
}

/// An open log, positioned at its end for appends.
pub struct Wal {
    path: PathBuf,
    file: File,
    len: u64,
    next_seq: u64,
    sync: SyncPolicy,
}

impl Wal {
    /// Creates a new, empty log; fails if one exists.
    pub fn create(path: &Path, sync: SyncPolicy) -> Result<Wal> {
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create_new(true)
            .open(path)
            .map_err(|e| Error::io(path, e))?;
        let mut header = Vec::with_capacity(HEADER_LEN as usize);
        header.extend_from_slice(MAGIC);
        header.extend_from_slice(&VERSION.to_le_bytes());
        header.extend_from_slice(&0u32.to_le_bytes());
        file.write_all(&header).map_err(|e| Error::io(path, e))?;
        file.sync_all().map_err(|e| Error::io(path, e))?;
        Ok(Wal {
            path: path.to_owned(),
            file,
            len: HEADER_LEN,
            next_seq: 1,
            sync,
        })
    }

    /// Opens an existing log, returns its intact records and cuts any torn tail.
    pub fn open(path: &Path, sync: SyncPolicy) -> Result<(Wal, Recovery)> {
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(|e| Error::io(path, e))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)
            .map_err(|e| Error::io(path, e))?;
        if bytes.len() < HEADER_LEN as usize || &bytes[..8] != MAGIC {
            return Err(Error::data_loss(
                path,
                "not a vidx write-ahead log (bad magic)",
            ));
        }
        let version = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes"));
        if version != VERSION {
            return Err(Error::data_loss(
                path,
                format!(
                    "write-ahead log format version {version}; this vidx reads version {VERSION}"
                ),
            ));
        }
        let mut records = Vec::new();
        let mut pos = HEADER_LEN as usize;
        while let Some(frame) = bytes.get(pos..pos + 8) {
            let len = u32::from_le_bytes(frame[..4].try_into().expect("4 bytes"));
            let crc = u32::from_le_bytes(frame[4..].try_into().expect("4 bytes"));
            if len > MAX_RECORD {
                break;
            }
            let Some(payload) = bytes.get(pos + 8..pos + 8 + len as usize) else {
                break;
            };
            if crc32c::crc32c(payload) != crc {
                break;
            }
            let Ok(rec) = WalRecord::decode(payload) else {
                break;
            };
            records.push(rec);
            pos += 8 + len as usize;
        }
        let dropped_bytes = (bytes.len() - pos) as u64;
        if dropped_bytes > 0 {
            file.set_len(pos as u64).map_err(|e| Error::io(path, e))?;
            file.sync_all().map_err(|e| Error::io(path, e))?;
            tracing::warn!(
                path = %path.display(),
                dropped_bytes,
                kept_records = records.len(),
                "write-ahead log had a torn or corrupt tail; cut at the last intact record"
            );
        }
        file.seek(SeekFrom::Start(pos as u64))
            .map_err(|e| Error::io(path, e))?;
        let next_seq = records.last().map_or(1, |r| r.seq + 1);
        Ok((
            Wal {
                path: path.to_owned(),
                file,
                len: pos as u64,
                next_seq,
                sync,
            },
            Recovery {
                records,
                dropped_bytes,
            },
        ))
    }

    /// Appends one record and makes it durable per the sync policy. On
    /// failure the file is cut back so a half-written record never precedes
    /// a later good one.
    pub fn append(&mut self, mut rec: WalRecord) -> Result<u64> {
        rec.seq = self.next_seq;
        let payload = rec.encode_to_vec();
        if payload.len() as u64 > MAX_RECORD as u64 {
            return Err(Error::ResourceExhausted(format!(
                "one write is {} bytes encoded; at most {MAX_RECORD} per batch",
                payload.len()
            )));
        }
        let mut frame = Vec::with_capacity(8 + payload.len());
        frame.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        frame.extend_from_slice(&crc32c::crc32c(&payload).to_le_bytes());
        frame.extend_from_slice(&payload);
        let res = self.file.write_all(&frame).and_then(|_| match self.sync {
            SyncPolicy::Always => self.file.sync_data(),
            SyncPolicy::Never => Ok(()),
        });
        if let Err(e) = res {
            // Best effort: if even this fails the tail is torn and recovery
            // cuts it, which loses only this unacknowledged record.
            let _ = self.file.set_len(self.len);
            return Err(Error::io(&self.path, e));
        }
        self.len += frame.len() as u64;
        self.next_seq += 1;
        Ok(rec.seq)
    }

    pub fn len_bytes(&self) -> u64 {
        self.len
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(ids: &[&str]) -> WalRecord {
        WalRecord {
            seq: 0,
            upserts: ids
                .iter()
                .map(|id| pb::Point {
                    id: id.to_string(),
                    vector: vec![1.0, 2.0],
                    metadata: None,
                })
                .collect(),
            deletes: vec![],
        }
    }

    #[test]
    fn round_trip_and_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("wal.log");
        let mut w = Wal::create(&path, SyncPolicy::Always).unwrap();
        assert_eq!(w.append(rec(&["a"])).unwrap(), 1);
        assert_eq!(w.append(rec(&["b", "c"])).unwrap(), 2);
        let good_len = w.len_bytes();
        drop(w);
        // Simulate a crash mid-append: half a frame at the end.
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(&[40, 0, 0, 0, 1, 2, 3, 4, 9, 9]).unwrap();
        drop(f);
        let (mut w, rec_) = Wal::open(&path, SyncPolicy::Always).unwrap();
        assert_eq!(rec_.records.len(), 2);
        assert_eq!(rec_.records[1].upserts[1].id, "c");
        assert_eq!(rec_.dropped_bytes, 10);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), good_len);
        assert_eq!(w.append(rec(&["d"])).unwrap(), 3);
        drop(w);
        let (_, rec_) = Wal::open(&path, SyncPolicy::Always).unwrap();
        assert_eq!(rec_.records.len(), 3);
        assert_eq!(rec_.dropped_bytes, 0);
    }

    #[test]
    fn corrupt_record_cuts_from_there() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("wal.log");
        let mut w = Wal::create(&path, SyncPolicy::Never).unwrap();
        w.append(rec(&["a"])).unwrap();
        let first_end = w.len_bytes();
        w.append(rec(&["b"])).unwrap();
        drop(w);
        let mut bytes = std::fs::read(&path).unwrap();
        let flip = first_end as usize + 10;
        bytes[flip] ^= 0xff;
        std::fs::write(&path, &bytes).unwrap();
        let (_, r) = Wal::open(&path, SyncPolicy::Never).unwrap();
        assert_eq!(r.records.len(), 1);
        assert_eq!(r.dropped_bytes, bytes.len() as u64 - first_end);
    }

    #[test]
    fn bad_magic_is_data_loss_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("wal.log");
        std::fs::write(&path, b"not a wal at all").unwrap();
        let err = Wal::open(&path, SyncPolicy::Never).err().unwrap();
        assert!(matches!(err, Error::DataLoss { .. }));
        assert!(err.to_string().contains("wal.log"));
    }
}
