//! The tamper-evident audit log: one JSON line per RPC, hash-chained, made
//! durable before the RPC's answer leaves, with Ed25519-signed checkpoints.
//!
//! Files in the audit directory (nothing is ever rewritten in place):
//!
//! ```text
//! audit-<first seq, 12 digits>.jsonl   records; a new file per server start and past --audit-rotate-bytes
//! checkpoints.jsonl                    signed checkpoints: {"seq","hash","time","key","sig"}
//! audit.pub                            the hex Ed25519 public key checkpoints verify with
//! ```
//!
//! A record line is the JSON of a [`Record`] (its `prev` is the previous
//! record's hash) followed by `,"hash":"<hex SHA-256>"}`, where the hash is
//! over the line's bytes before that suffix plus `}`: editing any byte of a
//! record breaks its hash, removing or reordering records breaks the `seq`
//! and `prev` chain, and cutting the tail leaves a signed checkpoint that
//! names a record no longer there.
//!
//! Records are written by one thread in batches (group commit): requests
//! that finish while a batch is being synced go into the next batch, so one
//! `fdatasync` covers many records. A failed write or sync fails the batch's
//! requests and every later one (fail closed: no record, no answer). The
//! record and checkpoint files are written through the [`fs`] seam (tests
//! can make those writes fail); the signing key is made with plain std
//! calls (it needs mode 0600 and must never be truncated).

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant, SystemTime};

use ed25519_dalek::{Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::Digest;

use crate::error::{Error, Result};
use crate::storage::durable;
use crate::storage::fs;

pub const CHECKPOINTS_FILE: &str = "checkpoints.jsonl";
pub const PUBLIC_KEY_FILE: &str = "audit.pub";
const ZERO_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";
/// `,"hash":"` + 64 hex + `"}`.
const SUFFIX_LEN: usize = 9 + 64 + 2;
/// What a checkpoint signature covers, before seq, hash and time.
const SIGNED_PREFIX: &str = "vidx-audit-checkpoint/1";

/// One audited RPC. `seq`, `time` and `prev` are set by the log.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub seq: u64,
    /// UTC, RFC 3339 with milliseconds.
    pub time: String,
    pub agency: String,
    /// The credential id (`tok-…`, `cert:…`, `open`, or `-` when none was
    /// valid): never the secret.
    pub credential: String,
    pub role: String,
    pub peer: String,
    pub rpc: String,
    /// `start` for the record written when a streaming RPC begins; empty
    /// for the record of its end and for unary RPCs.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub phase: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub collection: String,
    /// What was asked: query ids, filter, k, counts; never vectors.
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub request: serde_json::Value,
    /// The gRPC status code's name, e.g. `OK`, `PERMISSION_DENIED`.
    pub status: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// How many results went back (hits, points, verdicts, series).
    pub results: u64,
    /// The ids returned (Search, Get, Triage).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ids: Vec<String>,
    pub duration_ms: f64,
    pub prev: String,
}

/// A signed statement that the log held record `seq` with hash `hash`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Checkpoint {
    pub seq: u64,
    pub hash: String,
    pub time: String,
    /// Hex public key.
    pub key: String,
    /// Hex Ed25519 signature of `vidx-audit-checkpoint/1\n<seq>\n<hash>\n<time>`.
    pub sig: String,
}

fn signed_message(seq: u64, hash: &str, time: &str) -> String {
    format!("{SIGNED_PREFIX}\n{seq}\n{hash}\n{time}")
}

pub fn rfc3339_now() -> String {
    humantime::format_rfc3339_millis(SystemTime::now()).to_string()
}

/// Settings of an audit log.
#[derive(Clone, Debug)]
pub struct AuditOptions {
    pub dir: PathBuf,
    /// The Ed25519 signing key (32 raw bytes, hex); made if absent.
    pub key_file: PathBuf,
    /// A new file once the current one passes this.
    pub rotate_bytes: u64,
    /// A checkpoint after this many records...
    pub checkpoint_every: u64,
    /// ...or this long after the last one, whichever comes first.
    pub checkpoint_interval: Duration,
}

impl AuditOptions {
    pub fn new(dir: PathBuf, key_file: PathBuf) -> AuditOptions {
        AuditOptions {
            dir,
            key_file,
            rotate_bytes: 64 << 20,
            checkpoint_every: 1000,
            checkpoint_interval: Duration::from_secs(5),
        }
    }
}

type Reply = tokio::sync::oneshot::Sender<std::result::Result<u64, String>>;

/// The writing end of an audit log; cheap to share.
pub struct AuditLog {
    tx: parking_lot::Mutex<Option<mpsc::Sender<(Record, Reply)>>>,
    failed: Arc<AtomicBool>,
    thread: parking_lot::Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl AuditLog {
    /// Opens the log in `opts.dir` (made if absent): continues the chain of
    /// the newest file in a new file, and starts the writer thread.
    pub fn open(opts: AuditOptions) -> Result<AuditLog> {
        std::fs::create_dir_all(&opts.dir).map_err(|e| Error::io(&opts.dir, e))?;
        let key = load_or_make_key(&opts.key_file)?;
        let public = hex::encode(key.verifying_key().as_bytes());
        let pub_path = opts.dir.join(PUBLIC_KEY_FILE);
        match std::fs::read_to_string(&pub_path) {
            Ok(s) if s.trim() == public => {}
            Ok(_) => {
                return Err(Error::FailedPrecondition(format!(
                    "{} holds another public key than the signing key {} gives; \
                     use the key this audit log was started with",
                    pub_path.display(),
                    opts.key_file.display()
                )));
            }
            Err(_) => durable::write_durably(&pub_path, format!("{public}\n").as_bytes())?,
        }
        let (last_seq, last_hash) = last_record(&opts.dir)?;
        let writer = Writer::new(opts, key, last_seq, last_hash)?;
        let (tx, rx) = mpsc::channel();
        let failed = Arc::new(AtomicBool::new(false));
        let f2 = failed.clone();
        let thread = std::thread::Builder::new()
            .name("vidx-audit".into())
            .spawn(move || writer.run(rx, f2))
            .map_err(|e| Error::Internal(format!("cannot start the audit writer: {e}")))?;
        Ok(AuditLog {
            tx: parking_lot::Mutex::new(Some(tx)),
            failed,
            thread: parking_lot::Mutex::new(Some(thread)),
        })
    }

    /// Appends a record and returns its seq once it is on disk.
    pub async fn append(&self, rec: Record) -> std::result::Result<u64, String> {
        if self.failed.load(Ordering::Relaxed) {
            return Err("the audit log failed earlier; refusing to answer unaudited".into());
        }
        let (reply, rx) = tokio::sync::oneshot::channel();
        let sent = match &*self.tx.lock() {
            Some(tx) => tx.send((rec, reply)).is_ok(),
            None => false,
        };
        if !sent {
            return Err("the audit log is closed".into());
        }
        rx.await
            .unwrap_or_else(|_| Err("the audit writer stopped".into()))
    }

    /// Writes what is pending and a final checkpoint, then stops the writer.
    pub fn close(&self) {
        self.tx.lock().take();
        if let Some(t) = self.thread.lock().take() {
            let _ = t.join();
        }
    }
}

impl Drop for AuditLog {
    fn drop(&mut self) {
        self.close();
    }
}

fn load_or_make_key(path: &Path) -> Result<SigningKey> {
    match std::fs::read_to_string(path) {
        Ok(s) => {
            let bytes: [u8; 32] = hex::decode(s.trim())
                .ok()
                .and_then(|b| b.try_into().ok())
                .ok_or_else(|| {
                    Error::data_loss(path, "not an audit signing key (64 hex digits)")
                })?;
            Ok(SigningKey::from_bytes(&bytes))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut seed = [0u8; 32];
            rand::RngCore::fill_bytes(&mut rand::rng(), &mut seed);
            let key = SigningKey::from_bytes(&seed);
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
            }
            let mut f = OpenOptions::new();
            f.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut f, 0o600);
            let mut file = f.open(path).map_err(|e| Error::io(path, e))?;
            file.write_all(format!("{}\n", hex::encode(seed)).as_bytes())
                .and_then(|_| file.sync_all())
                .map_err(|e| Error::io(path, e))?;
            tracing::info!(path = %path.display(), "made a new audit signing key");
            Ok(key)
        }
        Err(e) => Err(Error::io(path, e)),
    }
}

/// The audit files of `dir`, oldest first, with the first seq each holds:
/// `audit-<seq>.jsonl`, or `audit-<seq>.<k>.jsonl` when a start found a
/// file of that name already begun (a crash left a partial record in it).
pub fn log_files(dir: &Path) -> Result<Vec<(u64, PathBuf)>> {
    let rd = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    let mut out: Vec<((u64, u64), PathBuf)> = rd
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_str()?.to_string();
            let stem = name.strip_prefix("audit-")?.strip_suffix(".jsonl")?;
            let (seq, k) = match stem.split_once('.') {
                Some((s, k)) => (s.parse().ok()?, k.parse().ok()?),
                None => (stem.parse().ok()?, 0),
            };
            Some(((seq, k), e.path()))
        })
        .collect();
    out.sort();
    Ok(out.into_iter().map(|((seq, _), p)| (seq, p)).collect())
}

/// Seq and hash of the last complete record (0 and zeros for a new log).
fn last_record(dir: &Path) -> Result<(u64, String)> {
    for (_, path) in log_files(dir)?.iter().rev() {
        let mut f = File::open(path).map_err(|e| Error::io(path, e))?;
        let len = f.metadata().map_err(|e| Error::io(path, e))?.len();
        // Records are small; the last complete one is in the last 4 MiB.
        let from = len.saturating_sub(4 << 20);
        let mut buf = Vec::new();
        f.seek(SeekFrom::Start(from))
            .and_then(|_| f.read_to_end(&mut buf))
            .map_err(|e| Error::io(path, e))?;
        let complete = match buf.iter().rposition(|&b| b == b'\n') {
            Some(end) => &buf[..end],
            None => continue,
        };
        let line = complete.rsplit(|&b| b == b'\n').next().unwrap_or_default();
        let line = std::str::from_utf8(line)
            .map_err(|_| Error::data_loss(path, "the last audit record is not UTF-8"))?;
        let parsed = parse_line(line)
            .map_err(|why| Error::data_loss(path, format!("the last audit record: {why}")))?;
        return Ok((parsed.record.seq, parsed.hash));
    }
    Ok((0, ZERO_HASH.to_string()))
}

struct Writer {
    opts: AuditOptions,
    key: SigningKey,
    public: String,
    file: fs::File,
    path: PathBuf,
    size: u64,
    seq: u64,
    hash: String,
    checkpointed: u64,
    last_checkpoint: Instant,
    checkpoints: fs::File,
}

impl Writer {
    fn new(opts: AuditOptions, key: SigningKey, seq: u64, hash: String) -> Result<Writer> {
        let (file, path) = new_file(&opts.dir, seq + 1)?;
        let cp_path = opts.dir.join(CHECKPOINTS_FILE);
        let checkpoints = if cp_path.exists() {
            fs::File::open_append(&cp_path)?
        } else {
            let f = fs::File::create(&cp_path)?;
            durable::sync_dir(&opts.dir)?;
            f
        };
        Ok(Writer {
            public: hex::encode(key.verifying_key().as_bytes()),
            key,
            file,
            path,
            size: 0,
            checkpointed: seq,
            seq,
            hash,
            last_checkpoint: Instant::now(),
            checkpoints,
            opts,
        })
    }

    fn run(mut self, rx: mpsc::Receiver<(Record, Reply)>, failed: Arc<AtomicBool>) {
        loop {
            let first = match rx.recv_timeout(self.opts.checkpoint_interval) {
                Ok(x) => x,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    self.checkpoint_if_due(true, &failed);
                    continue;
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            };
            let mut batch = vec![first];
            while batch.len() < 4096 {
                match rx.try_recv() {
                    Ok(x) => batch.push(x),
                    Err(_) => break,
                }
            }
            if failed.load(Ordering::Relaxed) {
                for (_, reply) in batch {
                    let _ = reply.send(Err("the audit log failed earlier".into()));
                }
                continue;
            }
            let result = self.write_batch(&mut batch);
            match &result {
                Ok(()) => self.checkpoint_if_due(false, &failed),
                Err(e) => {
                    failed.store(true, Ordering::Relaxed);
                    tracing::error!(error = %e, "audit log write failed: refusing every request from now on");
                }
            }
            for (rec, reply) in batch {
                let _ = reply.send(match &result {
                    Ok(()) => Ok(rec.seq),
                    Err(e) => Err(format!("audit log write failed: {e}")),
                });
            }
        }
        if !failed.load(Ordering::Relaxed)
            && self.seq > self.checkpointed
            && let Err(e) = self.checkpoint()
        {
            tracing::error!(error = %e, "final audit checkpoint failed");
        }
    }

    /// Chains, writes and syncs a batch; records get their seq and prev.
    fn write_batch(&mut self, batch: &mut [(Record, Reply)]) -> Result<()> {
        let mut buf = Vec::with_capacity(batch.len() * 512);
        let time = rfc3339_now();
        for (rec, _) in batch.iter_mut() {
            rec.seq = self.seq + 1;
            rec.time = time.clone();
            rec.prev = std::mem::take(&mut self.hash);
            let (line, hash) = encode_line(rec)?;
            buf.extend_from_slice(line.as_bytes());
            self.seq += 1;
            self.hash = hash;
        }
        self.file
            .write_all(&buf)
            .map_err(|e| Error::io(&self.path, e))?;
        self.file.sync_data()?;
        self.size += buf.len() as u64;
        if self.size >= self.opts.rotate_bytes {
            let (file, path) = new_file(&self.opts.dir, self.seq + 1)?;
            self.file = file;
            self.path = path;
            self.size = 0;
        }
        Ok(())
    }

    fn checkpoint_if_due(&mut self, idle: bool, failed: &AtomicBool) {
        let pending = self.seq - self.checkpointed;
        let due = pending >= self.opts.checkpoint_every
            || (pending > 0
                && (idle || self.last_checkpoint.elapsed() >= self.opts.checkpoint_interval));
        if due
            && !failed.load(Ordering::Relaxed)
            && let Err(e) = self.checkpoint()
        {
            failed.store(true, Ordering::Relaxed);
            tracing::error!(error = %e, "audit checkpoint failed: refusing every request from now on");
        }
    }

    fn checkpoint(&mut self) -> Result<()> {
        let time = rfc3339_now();
        let sig = self
            .key
            .sign(signed_message(self.seq, &self.hash, &time).as_bytes());
        let cp = Checkpoint {
            seq: self.seq,
            hash: self.hash.clone(),
            time,
            key: self.public.clone(),
            sig: hex::encode(sig.to_bytes()),
        };
        let mut line = serde_json::to_string(&cp)
            .map_err(|e| Error::Internal(format!("encoding a checkpoint: {e}")))?;
        line.push('\n');
        let path = self.opts.dir.join(CHECKPOINTS_FILE);
        self.checkpoints
            .write_all(line.as_bytes())
            .map_err(|e| Error::io(&path, e))?;
        self.checkpoints.sync_data()?;
        self.checkpointed = self.seq;
        self.last_checkpoint = Instant::now();
        Ok(())
    }
}

fn new_file(dir: &Path, first_seq: u64) -> Result<(fs::File, PathBuf)> {
    // Never append to a file begun before (a crash may have left part of a
    // record at its end): a new name instead.
    let mut k = 0u32;
    let path = loop {
        let name = if k == 0 {
            format!("audit-{first_seq:012}.jsonl")
        } else {
            format!("audit-{first_seq:012}.{k}.jsonl")
        };
        let p = dir.join(name);
        match std::fs::metadata(&p) {
            Ok(m) if m.len() > 0 => k += 1,
            _ => break p,
        }
    };
    // Absent or empty: nothing to keep. Written only at its end (a failed
    // write fails the log for good, so no write follows a short one).
    let file = fs::File::create(&path)?;
    durable::sync_dir(dir)?;
    Ok((file, path))
}

/// A record's line (with its newline) and hash.
fn encode_line(rec: &Record) -> Result<(String, String)> {
    let body = serde_json::to_string(rec)
        .map_err(|e| Error::Internal(format!("encoding an audit record: {e}")))?;
    let hash = hex::encode(sha2::Sha256::digest(body.as_bytes()));
    let line = format!("{},\"hash\":\"{hash}\"}}\n", &body[..body.len() - 1]);
    Ok((line, hash))
}

struct Parsed {
    record: Record,
    hash: String,
    /// The stored hash matches the content.
    intact: bool,
}

/// Splits a line into its record and stored hash, and checks the hash.
fn parse_line(line: &str) -> std::result::Result<Parsed, String> {
    let bad = || "it is not a well-formed audit record".to_string();
    if line.len() < SUFFIX_LEN + 2 || !line.is_char_boundary(line.len() - SUFFIX_LEN) {
        return Err(bad());
    }
    let (head, suffix) = line.split_at(line.len() - SUFFIX_LEN);
    let hash = suffix
        .strip_prefix(",\"hash\":\"")
        .and_then(|s| s.strip_suffix("\"}"))
        .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
        .ok_or_else(bad)?;
    let body = format!("{head}}}");
    let record: Record = serde_json::from_str(&body).map_err(|_| bad())?;
    let actual = hex::encode(sha2::Sha256::digest(body.as_bytes()));
    Ok(Parsed {
        record,
        intact: actual == hash,
        hash: hash.to_string(),
    })
}

/// What `vidx audit verify` found.
#[derive(Debug, PartialEq)]
pub enum Verdict {
    Intact {
        records: u64,
        files: usize,
        checkpoints: usize,
        /// Crash-torn partial lines at file ends (never answered RPCs).
        torn: Vec<String>,
    },
    /// The first bad record and why.
    Broken { seq: u64, why: String },
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Verdict::Intact {
                records,
                files,
                checkpoints,
                torn,
            } => {
                write!(
                    f,
                    "ok: {records} records in {files} files, hash chain intact, {checkpoints} signed checkpoints verified"
                )?;
                for t in torn {
                    write!(f, "\nnote: {t}")?;
                }
                Ok(())
            }
            Verdict::Broken { seq, why } => write!(f, "BROKEN at record {seq}: {why}"),
        }
    }
}

/// Checks an audit directory: every record's hash, the seq and prev chain
/// across files, and every checkpoint's signature (with `public_key`, or
/// the directory's own `audit.pub`) and record.
pub fn verify(dir: &Path, public_key: Option<&str>) -> Result<Verdict> {
    let key = verifying_key(dir, public_key)?;
    let mut checkpoints = read_checkpoints(dir)?;
    for cp in &checkpoints {
        let sig_ok = hex::decode(&cp.sig)
            .ok()
            .and_then(|b| <[u8; 64]>::try_from(b).ok())
            .map(|b| ed25519_dalek::Signature::from_bytes(&b))
            .is_some_and(|sig| {
                key.verify(signed_message(cp.seq, &cp.hash, &cp.time).as_bytes(), &sig)
                    .is_ok()
            });
        if !sig_ok {
            return Ok(Verdict::Broken {
                seq: cp.seq,
                why: format!(
                    "the checkpoint of {} for this record has no valid signature (forged or edited checkpoint)",
                    cp.time
                ),
            });
        }
    }
    checkpoints.sort_by_key(|c| c.seq);
    let files = log_files(dir)?;
    let mut walk = Walk::new(&checkpoints);
    for (_, path) in &files {
        if let Some(broken) = walk.file(path)? {
            return Ok(broken);
        }
    }
    if let Some(cp) = checkpoints.iter().rev().find(|c| c.seq > walk.seq) {
        return Ok(Verdict::Broken {
            seq: walk.seq + 1,
            why: format!(
                "truncated: the log ends at record {} but a checkpoint signed at {} covers records up to {}",
                walk.seq, cp.time, cp.seq
            ),
        });
    }
    Ok(Verdict::Intact {
        records: walk.seq,
        files: files.len(),
        checkpoints: checkpoints.len(),
        torn: walk.torn,
    })
}

fn verifying_key(dir: &Path, public_key: Option<&str>) -> Result<VerifyingKey> {
    let (hex_key, from) = match public_key {
        Some(k) => (k.trim().to_string(), "--public-key".to_string()),
        None => {
            let p = dir.join(PUBLIC_KEY_FILE);
            let s = std::fs::read_to_string(&p).map_err(|e| Error::io(&p, e))?;
            (s.trim().to_string(), p.display().to_string())
        }
    };
    hex::decode(&hex_key)
        .ok()
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
        .and_then(|b| VerifyingKey::from_bytes(&b).ok())
        .ok_or_else(|| Error::invalid(format!("{from}: not an Ed25519 public key (64 hex digits)")))
}

fn read_checkpoints(dir: &Path) -> Result<Vec<Checkpoint>> {
    let path = dir.join(CHECKPOINTS_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io(&path, e)),
    };
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.is_empty() {
            continue;
        }
        let cp: Checkpoint = serde_json::from_str(line).map_err(|e| {
            Error::data_loss(&path, format!("line {} is not a checkpoint: {e}", i + 1))
        })?;
        out.push(cp);
    }
    Ok(out)
}

/// The state of a verification walking the records in order.
struct Walk<'a> {
    seq: u64,
    hash: String,
    checkpoints: &'a [Checkpoint],
    next_cp: usize,
    torn: Vec<String>,
}

impl<'a> Walk<'a> {
    fn new(checkpoints: &'a [Checkpoint]) -> Walk<'a> {
        Walk {
            seq: 0,
            hash: ZERO_HASH.to_string(),
            checkpoints,
            next_cp: 0,
            torn: Vec::new(),
        }
    }

    fn file(&mut self, path: &Path) -> Result<Option<Verdict>> {
        let f = File::open(path).map_err(|e| Error::io(path, e))?;
        let mut lines: Vec<Vec<u8>> = Vec::new();
        let mut reader = BufReader::new(f);
        loop {
            let mut line = Vec::new();
            let n = reader
                .read_until(b'\n', &mut line)
                .map_err(|e| Error::io(path, e))?;
            if n == 0 {
                break;
            }
            lines.push(line);
        }
        let seqs: std::collections::HashSet<u64> = lines
            .iter()
            .filter_map(|l| std::str::from_utf8(l).ok())
            .filter_map(|l| parse_line(l.trim_end_matches('\n')).ok())
            .map(|p| p.record.seq)
            .collect();
        let count = lines.len();
        for (i, raw) in lines.into_iter().enumerate() {
            if raw.last() != Some(&b'\n') && i + 1 == count {
                self.torn.push(format!(
                    "{} ends with {} bytes of a record never completed (a crash while writing; that RPC got no answer)",
                    path.display(),
                    raw.len()
                ));
                break;
            }
            if let Some(v) = self.record(&raw, &seqs) {
                return Ok(Some(v));
            }
        }
        Ok(None)
    }

    /// Checks the next record; `Some` with the verdict if it is bad.
    fn record(&mut self, raw: &[u8], seqs: &std::collections::HashSet<u64>) -> Option<Verdict> {
        let expected = self.seq + 1;
        let broken = |why: String| Some(Verdict::Broken { seq: expected, why });
        let line = match std::str::from_utf8(raw) {
            Ok(l) => l.trim_end_matches('\n'),
            Err(_) => return broken("edited: the record is not UTF-8".into()),
        };
        let p = match parse_line(line) {
            Ok(p) => p,
            Err(why) => return broken(format!("edited: {why}")),
        };
        let got = p.record.seq;
        if !p.intact {
            return broken(format!(
                "edited: its content does not match its hash (the record claims seq {got})"
            ));
        }
        if got != expected {
            return if seqs.contains(&expected) {
                broken(format!(
                    "reordered: record {got} stands in its place; it comes later"
                ))
            } else if got > expected {
                let gone = if got == expected + 1 {
                    format!("record {expected} is")
                } else {
                    format!("records {expected} to {} are", got - 1)
                };
                broken(format!(
                    "removed: {gone} missing (record {} is followed by {got})",
                    self.seq
                ))
            } else {
                broken(format!(
                    "reordered: record {got} appears again after record {}",
                    self.seq
                ))
            };
        }
        if p.record.prev != self.hash {
            return broken(format!(
                "chain broken: its prev does not match record {}'s hash (a record before it was replaced)",
                self.seq
            ));
        }
        while let Some(cp) = self.checkpoints.get(self.next_cp).filter(|c| c.seq <= got) {
            if cp.seq == got && cp.hash != p.hash {
                return broken(format!(
                    "rewritten: the checkpoint signed at {} names another hash for it",
                    cp.time
                ));
            }
            self.next_cp += 1;
        }
        self.seq = got;
        self.hash = p.hash;
        None
    }
}

/// Prints the records (JSON lines, as stored) of `agency` (if given) at
/// or after `since` (Unix seconds, if given) to `out`; returns how many.
pub fn export(
    dir: &Path,
    agency: Option<&str>,
    since: Option<i64>,
    out: &mut dyn Write,
) -> Result<u64> {
    let mut n = 0;
    for (_, path) in log_files(dir)? {
        let f = File::open(&path).map_err(|e| Error::io(&path, e))?;
        for line in BufReader::new(f).lines() {
            let line = line.map_err(|e| Error::io(&path, e))?;
            let Ok(p) = parse_line(&line) else { continue };
            if agency.is_some_and(|a| p.record.agency != a) {
                continue;
            }
            if let Some(s) = since {
                let t = humantime::parse_rfc3339(&p.record.time)
                    .ok()
                    .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                    .map_or(0, |d| d.as_secs() as i64);
                if t < s {
                    continue;
                }
            }
            writeln!(out, "{line}").map_err(|e| Error::io("stdout", e))?;
            n += 1;
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(i: u64) -> Record {
        Record {
            agency: "DE-BKA".into(),
            credential: "tok-1".into(),
            rpc: "Search".into(),
            status: "OK".into(),
            ids: vec![format!("id-{i}")],
            ..Default::default()
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn chain_survives_restarts_and_rotation() {
        let dir = tempfile::tempdir().unwrap();
        let opts = AuditOptions {
            rotate_bytes: 2_000,
            ..AuditOptions::new(dir.path().join("audit"), dir.path().join("key"))
        };
        for round in 0..2 {
            let log = Arc::new(AuditLog::open(opts.clone()).unwrap());
            let mut tasks = Vec::new();
            for i in 0..50 {
                let log = log.clone();
                tasks.push(tokio::spawn(
                    async move { log.append(rec(i)).await.unwrap() },
                ));
            }
            let mut seqs = Vec::new();
            for t in tasks {
                seqs.push(t.await.unwrap());
            }
            seqs.sort();
            assert_eq!(
                seqs,
                ((round * 50 + 1)..=(round * 50 + 50)).collect::<Vec<u64>>()
            );
            log.close();
        }
        let v = verify(&opts.dir, None).unwrap();
        match v {
            Verdict::Intact {
                records,
                files,
                checkpoints,
                ..
            } => {
                assert_eq!(records, 100);
                assert!(files > 2, "rotated: {files}");
                assert!(checkpoints >= 2);
            }
            other => panic!("{other}"),
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_record_torn_by_a_crash_is_noted_and_the_chain_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        let opts = AuditOptions::new(dir.path().join("audit"), dir.path().join("key"));
        let log = AuditLog::open(opts.clone()).unwrap();
        for i in 0..3 {
            log.append(rec(i)).await.unwrap();
        }
        log.close();
        // A crash in the middle of the next write: part of a record, no newline.
        let (_, last) = log_files(&opts.dir).unwrap().pop().unwrap();
        let mut f = OpenOptions::new().append(true).open(&last).unwrap();
        f.write_all(b"{\"seq\":4,\"time\":\"20").unwrap();
        drop(f);
        let log = AuditLog::open(opts.clone()).unwrap();
        assert_eq!(log.append(rec(9)).await.unwrap(), 4);
        log.close();
        match verify(&opts.dir, None).unwrap() {
            Verdict::Intact { records, torn, .. } => {
                assert_eq!(records, 4);
                assert_eq!(torn.len(), 1, "{torn:?}");
            }
            other => panic!("{other}"),
        }
    }
}
