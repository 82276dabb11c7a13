//! The write-ahead log of one collection: every acknowledged write, in order.
//!
//! The log is a series of files `wal-<first seq>.log`; a new file starts when
//! the mutable segment is frozen for sealing, so files whose records are all
//! inside sealed segments can be deleted whole. File layout:
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

use std::io::Write;
use std::path::{Path, PathBuf};

use prost::Message;

use crate::error::{Error, Result};
use crate::pb;
use crate::storage::fs::{self, File};
use crate::storage::versions::WAL;

const MAGIC: &[u8; 8] = b"VIDXWAL\0";
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
    /// Acknowledge after the write reaches the OS; a background flusher
    /// fsyncs every so many milliseconds (group commit). A process crash
    /// loses nothing; a power loss or kernel crash can lose up to one
    /// interval of acknowledged writes.
    Interval(std::time::Duration),
    /// Never fsync explicitly; the OS writes back when it likes. For tests
    /// and bulk loads where a power loss may lose the tail.
    Never,
}

impl std::str::FromStr for SyncPolicy {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        match s {
            "always" => Ok(SyncPolicy::Always),
            "never" => Ok(SyncPolicy::Never),
            other => match other.strip_prefix("interval=").map(str::parse::<u64>) {
                Some(Ok(ms)) if ms > 0 => {
                    Ok(SyncPolicy::Interval(std::time::Duration::from_millis(ms)))
                }
                _ => Err(format!(
                    "unknown sync policy {other:?}: use \"always\", \"interval=<ms>\" (ms > 0) or \"never\""
                )),
            },
        }
    }
}

fn header_bytes() -> Vec<u8> {
    let mut header = Vec::with_capacity(HEADER_LEN as usize);
    header.extend_from_slice(MAGIC);
    header.extend_from_slice(&WAL.current.to_le_bytes());
    header.extend_from_slice(&0u32.to_le_bytes());
    header
}

/// Name of the log file whose first record has sequence number `first_seq`.
pub fn file_name(first_seq: u64) -> String {
    format!("wal-{first_seq:020}.log")
}

/// The log files in `dir`, ordered by first sequence number.
pub fn list_files(dir: &Path) -> Result<Vec<(u64, PathBuf)>> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir)? {
        let Some(name) = e.name.to_str() else {
            continue;
        };
        let seq = name
            .strip_prefix("wal-")
            .and_then(|r| r.strip_suffix(".log"))
            .and_then(|s| s.parse().ok());
        if let Some(seq) = seq {
            out.push((seq, e.path));
        }
    }
    out.sort();
    Ok(out)
}

/// What [`Wal::open`] found.
#[derive(Debug, Default)]
pub struct Recovery {
    pub records: Vec<WalRecord>,
    /// Bytes cut from a torn or corrupt tail.
    pub dropped_bytes: u64,
}

/// An open log file, opened to append: every write lands at its end.
pub struct Wal {
    path: PathBuf,
    file: File,
    len: u64,
    next_seq: u64,
    sync: SyncPolicy,
    /// Written but not yet fsynced (interval policy).
    dirty: bool,
    /// Why the file is not trusted any more: an fsync failed (what it held
    /// may be gone whatever later fsyncs say), or a failed append could not
    /// be cut back. Appends are refused from then on.
    broken: Option<String>,
    /// How long the last fsync took, until the owner takes it for its metrics.
    fsync_time: Option<std::time::Duration>,
}

impl Wal {
    /// Whether the file holds any record yet.
    pub fn has_records(&self) -> bool {
        self.len > HEADER_LEN
    }

    /// Creates a new, empty log file whose first record will be `first_seq`;
    /// fails if the file exists.
    pub fn create(path: &Path, first_seq: u64, sync: SyncPolicy) -> Result<Wal> {
        if path.exists() {
            return Err(Error::io(
                path,
                std::io::Error::from(std::io::ErrorKind::AlreadyExists),
            ));
        }
        // Header written under a temporary name and renamed into place, so a
        // crash never leaves a log file without its header (the caller
        // fsyncs the directory; leftover .tmp files are removed on open).
        let tmp = path.with_extension("log.tmp");
        let mut f = File::create(&tmp)?;
        f.write_all(&header_bytes())
            .map_err(|e| Error::io(&tmp, e))?;
        f.sync_all()?;
        drop(f);
        // Opened before the rename: a failure leaves no log file under the
        // real name for a recovery to take as the newest one.
        let file = File::open_append(&tmp)?;
        fs::rename(&tmp, path)?;
        let file = file.renamed(path);
        Ok(Wal {
            path: path.to_owned(),
            file,
            len: HEADER_LEN,
            next_seq: first_seq,
            sync,
            dirty: false,
            broken: None,
            fsync_time: None,
        })
    }

    /// Opens an existing log file, returns its intact records and cuts any
    /// torn tail. Only the newest file may have one (`may_have_tail`): a bad
    /// record in an older file means acknowledged writes after it are
    /// unreachable, which is reported as data loss instead.
    pub fn open(
        path: &Path,
        first_seq: u64,
        sync: SyncPolicy,
        may_have_tail: bool,
    ) -> Result<(Wal, Recovery)> {
        // Opened to append: after a failed append is cut back, the next
        // record lands at the new end, never behind a gap.
        let mut file = File::open_append(path)?;
        let mut bytes = file.read_all()?;
        if bytes.len() < HEADER_LEN as usize
            && may_have_tail
            && MAGIC.starts_with(&bytes[..bytes.len().min(8)])
        {
            // The newest file, cut short while its header was being written
            // (by a vidx that created logs in place): it holds no record, so
            // nothing acknowledged is in it. Give it its header back.
            tracing::warn!(path = %path.display(), bytes = bytes.len(), "log file without a complete header; rewriting the header");
            file.set_len(0)?;
            file.write_all(&header_bytes())
                .map_err(|e| Error::io(path, e))?;
            file.sync_all()?;
            bytes = header_bytes();
        }
        if bytes.len() < HEADER_LEN as usize || &bytes[..8] != MAGIC {
            return Err(Error::data_loss(
                path,
                "not a vidx write-ahead log (bad magic)",
            ));
        }
        WAL.check(
            path,
            u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes")),
        )?;
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
        if dropped_bytes > 0 && !may_have_tail {
            return Err(Error::data_loss(
                path,
                format!(
                    "corrupt record at byte {pos} of a log file that later files follow ({dropped_bytes} bytes unreadable)"
                ),
            ));
        }
        if let Some(r) = records.first()
            && r.seq != first_seq
        {
            return Err(Error::data_loss(
                path,
                format!(
                    "first record has sequence {}, file name says {first_seq}",
                    r.seq
                ),
            ));
        }
        if let Some(w) = records.windows(2).find(|w| w[1].seq != w[0].seq + 1) {
            return Err(Error::data_loss(
                path,
                format!("sequence jumps from {} to {}", w[0].seq, w[1].seq),
            ));
        }
        if dropped_bytes > 0 {
            file.set_len(pos as u64)?;
            file.sync_all()?;
            tracing::warn!(
                path = %path.display(),
                dropped_bytes,
                kept_records = records.len(),
                "write-ahead log had a torn or corrupt tail; cut at the last intact record"
            );
        }
        let next_seq = records.last().map_or(first_seq, |r| r.seq + 1);
        Ok((
            Wal {
                path: path.to_owned(),
                file,
                len: pos as u64,
                next_seq,
                sync,
                dirty: false,
                broken: None,
                fsync_time: None,
            },
            Recovery {
                records,
                dropped_bytes,
            },
        ))
    }

    /// Appends one record and makes it durable per the sync policy. A
    /// failed write is cut back off the file, so a half-written record never
    /// precedes a later good one; if it cannot be, or an fsync fails, the
    /// log is broken: this and every later append fail with
    /// [`Error::Fsync`]-like errors until the collection is reopened.
    pub fn append(&mut self, mut rec: WalRecord) -> Result<u64> {
        self.usable()?;
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
        if let Err(e) = self.file.write_all(&frame) {
            if let Err(cut) = self.file.set_len(self.len) {
                self.broken = Some(format!(
                    "a failed append ({e}) could not be cut back off the file: {cut}"
                ));
            }
            return Err(Error::io(&self.path, e));
        }
        if self.sync == SyncPolicy::Always
            && let Err(e) = self.sync_data()
        {
            self.broken = Some(e.to_string());
            return Err(e);
        }
        self.len += frame.len() as u64;
        self.next_seq += 1;
        self.dirty = self.sync != SyncPolicy::Always;
        Ok(rec.seq)
    }

    /// Err if the log is broken (see [`Wal::append`]).
    fn usable(&self) -> Result<()> {
        match &self.broken {
            Some(why) => Err(Error::fsync(
                &self.path,
                std::io::Error::other(format!("the log is not trusted since: {why}")),
            )),
            None => Ok(()),
        }
    }

    /// fsyncs what was written since the last sync (interval policy's flusher,
    /// and before a file is retired).
    pub fn sync_if_dirty(&mut self) -> Result<()> {
        self.usable()?;
        if self.dirty {
            if let Err(e) = self.sync_data() {
                self.broken = Some(e.to_string());
                return Err(e);
            }
            self.dirty = false;
        }
        Ok(())
    }

    /// Why the log is not trusted any more, if it is not.
    pub fn broken(&self) -> Option<&str> {
        self.broken.as_deref()
    }

    /// fdatasync, timed.
    fn sync_data(&mut self) -> Result<()> {
        let started = std::time::Instant::now();
        let r = self.file.sync_data();
        self.fsync_time = Some(started.elapsed());
        r
    }

    /// How long the last fsync took, if one ran since the last call.
    pub fn take_fsync_time(&mut self) -> Option<std::time::Duration> {
        self.fsync_time.take()
    }

    /// Sequence number the next append gets.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    pub fn path(&self) -> &Path {
        &self.path
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
                    ..Default::default()
                })
                .collect(),
            deletes: vec![],
        }
    }

    #[test]
    fn round_trip_and_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("wal.log");
        let mut w = Wal::create(&path, 1, SyncPolicy::Always).unwrap();
        assert_eq!(w.append(rec(&["a"])).unwrap(), 1);
        assert_eq!(w.append(rec(&["b", "c"])).unwrap(), 2);
        let good_len = w.len_bytes();
        drop(w);
        // Simulate a crash mid-append: half a frame at the end.
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        f.write_all(&[40, 0, 0, 0, 1, 2, 3, 4, 9, 9]).unwrap();
        drop(f);
        let (mut w, rec_) = Wal::open(&path, 1, SyncPolicy::Always, true).unwrap();
        assert_eq!(rec_.records.len(), 2);
        assert_eq!(rec_.records[1].upserts[1].id, "c");
        assert_eq!(rec_.dropped_bytes, 10);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), good_len);
        assert_eq!(w.append(rec(&["d"])).unwrap(), 3);
        drop(w);
        let (_, rec_) = Wal::open(&path, 1, SyncPolicy::Always, true).unwrap();
        assert_eq!(rec_.records.len(), 3);
        assert_eq!(rec_.dropped_bytes, 0);
    }

    #[test]
    fn corrupt_record_cuts_from_there() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("wal.log");
        let mut w = Wal::create(&path, 1, SyncPolicy::Never).unwrap();
        w.append(rec(&["a"])).unwrap();
        let first_end = w.len_bytes();
        w.append(rec(&["b"])).unwrap();
        drop(w);
        let mut bytes = std::fs::read(&path).unwrap();
        let flip = first_end as usize + 10;
        bytes[flip] ^= 0xff;
        std::fs::write(&path, &bytes).unwrap();
        // In a file that later files follow, the same damage is data loss.
        let older = Wal::open(&path, 1, SyncPolicy::Never, false).err().unwrap();
        assert!(older.to_string().contains("later files follow"), "{older}");
        let (_, r) = Wal::open(&path, 1, SyncPolicy::Never, true).unwrap();
        assert_eq!(r.records.len(), 1);
        assert_eq!(r.dropped_bytes, bytes.len() as u64 - first_end);
    }

    #[test]
    fn sync_policy_parses() {
        assert_eq!("always".parse::<SyncPolicy>().unwrap(), SyncPolicy::Always);
        assert_eq!(
            "interval=25".parse::<SyncPolicy>().unwrap(),
            SyncPolicy::Interval(std::time::Duration::from_millis(25))
        );
        for bad in ["interval=0", "interval=x", "sometimes"] {
            assert!(bad.parse::<SyncPolicy>().is_err(), "{bad}");
        }
    }

    #[test]
    fn a_newest_file_without_its_header_is_repaired_an_older_one_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(file_name(7));
        for len in [0usize, 5] {
            std::fs::write(&path, &MAGIC[..len]).unwrap();
            assert!(Wal::open(&path, 7, SyncPolicy::Never, false).is_err());
            let (mut w, r) = Wal::open(&path, 7, SyncPolicy::Never, true).unwrap();
            assert!(r.records.is_empty());
            assert_eq!(w.append(rec(&["x"])).unwrap(), 7);
            drop(w);
            let (_, r) = Wal::open(&path, 7, SyncPolicy::Never, true).unwrap();
            assert_eq!(r.records.len(), 1);
            std::fs::remove_file(&path).unwrap();
        }
        // create never leaves a file without a header and refuses to overwrite.
        let w = Wal::create(&path, 7, SyncPolicy::Never).unwrap();
        drop(w);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), HEADER_LEN);
        assert!(Wal::create(&path, 7, SyncPolicy::Never).is_err());
    }

    #[test]
    fn bad_magic_is_data_loss_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("wal.log");
        std::fs::write(&path, b"not a wal at all").unwrap();
        let err = Wal::open(&path, 1, SyncPolicy::Never, true).err().unwrap();
        assert!(matches!(err, Error::DataLoss { .. }));
        assert!(err.to_string().contains("wal.log"));
    }
}
