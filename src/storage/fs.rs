//! The one door to the filesystem for what vidx stores: every create, open,
//! write, fsync, rename, mkdir, unlink and directory listing of the storage,
//! segment, collection and investigate layers goes through here, so that a
//! test can make any one of them fail.
//!
//! # Fault injection
//!
//! [`inject`] installs a [`Plan`] for the paths below one root directory (a
//! test's data directory; other tests running beside it are untouched). The
//! `at`-th operation of the kinds the plan names fails with an errno
//! (ENOSPC, EIO, EACCES, EMFILE, ...), a write optionally after writing half
//! its bytes; once, or from then on (a disk that stays full until
//! [`Injection::clear`]). Or the process crashes, or the machine loses power,
//! at that operation: it and every later one below the root fail with EIO,
//! and [`Injection::restore`] rebuilds the directory elsewhere as a restart
//! would find it: everything written (crash), or only what was made durable
//! (power cut): file contents as of their last fsync, directory entries
//! (creations, renames, removals) as of their directory's last fsync, which
//! is all a filesystem promises.
//!
//! Without an injection the cost is one relaxed atomic load per operation.

use std::collections::HashMap;
use std::ffi::OsString;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use crate::error::{Error, Result};

/// Kinds of file operation, as a [`Plan`] names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Op {
    /// Opening an existing file (to read, or to append).
    Open,
    /// Creating (or truncating) a file.
    Create,
    Write,
    /// fsync / fdatasync of a file.
    Sync,
    /// fsync of a directory.
    SyncDir,
    Rename,
    Mkdir,
    /// Unlinking a file or removing a directory tree.
    Remove,
    /// Truncating a file.
    SetLen,
    /// Listing a directory.
    List,
    /// Reading a whole file.
    Read,
}

impl Op {
    /// The operations that change what is on disk.
    pub const MUTATING: &'static [Op] = &[
        Op::Create,
        Op::Write,
        Op::Sync,
        Op::SyncDir,
        Op::Rename,
        Op::Mkdir,
        Op::Remove,
        Op::SetLen,
    ];
    /// Every operation.
    pub const ALL: &'static [Op] = &[
        Op::Open,
        Op::Create,
        Op::Write,
        Op::Sync,
        Op::SyncDir,
        Op::Rename,
        Op::Mkdir,
        Op::Remove,
        Op::SetLen,
        Op::List,
        Op::Read,
    ];
}

/// What happens at the planned operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Effect {
    /// It fails with `errno`; a write first writes half its bytes if `short`.
    Fail { errno: i32, short: bool },
    /// It and every later matching operation fail, until cleared.
    FailFromThen { errno: i32, short: bool },
    /// The process dies: it and every later operation fail with EIO; what
    /// was written stays.
    Crash,
    /// The power goes: as `Crash`, and only what was made durable stays.
    PowerCut,
    /// Nothing: the plan only counts and traces operations.
    Count,
}

/// Which operation fails, and how.
#[derive(Clone, Debug)]
pub struct Plan {
    /// The kinds of operation counted.
    pub ops: Vec<Op>,
    /// Only operations on paths containing this text are counted.
    pub path_contains: Option<String>,
    /// Index, among the counted operations, of the one that fails.
    pub at: u64,
    pub effect: Effect,
}

impl Plan {
    /// Counts every operation, fails none.
    pub fn count() -> Plan {
        Plan {
            ops: Op::ALL.to_vec(),
            path_contains: None,
            at: u64::MAX,
            effect: Effect::Count,
        }
    }
}

/// An installed plan; removed when dropped.
pub struct Injection {
    state: Arc<Injected>,
}

/// Operations traced per injection (enough for a failure message).
const TRACE_LIMIT: usize = 20_000;

struct Injected {
    root: PathBuf,
    plan: Plan,
    counted: AtomicU64,
    fired: AtomicBool,
    /// Crashed or powered off: everything fails.
    halted: AtomicBool,
    cleared: AtomicBool,
    trace: Mutex<Vec<String>>,
    /// What a power cut would leave (only tracked for [`Effect::PowerCut`]).
    durable: Option<Mutex<Durable>>,
}

static ACTIVE: AtomicBool = AtomicBool::new(false);
static INJECTIONS: RwLock<Vec<Arc<Injected>>> = RwLock::new(Vec::new());

/// Installs `plan` for every path below `root` (which must exist).
pub fn inject(root: &Path, plan: Plan) -> Injection {
    let durable = (plan.effect == Effect::PowerCut).then(|| Mutex::new(Durable::snapshot(root)));
    let state = Arc::new(Injected {
        root: root.to_owned(),
        plan,
        counted: AtomicU64::new(0),
        fired: AtomicBool::new(false),
        halted: AtomicBool::new(false),
        cleared: AtomicBool::new(false),
        trace: Mutex::new(Vec::new()),
        durable,
    });
    let mut all = INJECTIONS.write().unwrap_or_else(|e| e.into_inner());
    all.push(state.clone());
    ACTIVE.store(true, Ordering::SeqCst);
    Injection { state }
}

impl Injection {
    /// Whether the planned failure happened.
    pub fn fired(&self) -> bool {
        self.state.fired.load(Ordering::SeqCst)
    }

    /// Operations counted so far.
    pub fn counted(&self) -> u64 {
        self.state.counted.load(Ordering::SeqCst)
    }

    /// The counted operations, `index op path`, oldest first.
    pub fn trace(&self) -> Vec<String> {
        self.state
            .trace
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Stops failing (the disk has room again); a crash stays a crash.
    pub fn clear(&self) {
        self.state.cleared.store(true, Ordering::SeqCst);
    }

    /// Crashes (or cuts the power, for a power-cut plan) now.
    pub fn halt(&self) {
        self.state.fired.store(true, Ordering::SeqCst);
        self.state.halted.store(true, Ordering::SeqCst);
    }

    /// Rebuilds the root at `dest` as a restart finds it: after a power
    /// cut only what was durable, otherwise everything on disk.
    pub fn restore(&self, dest: &Path) -> std::io::Result<()> {
        match &self.state.durable {
            Some(d) => d.lock().unwrap_or_else(|e| e.into_inner()).rebuild(dest),
            None => copy_tree(&self.state.root, dest),
        }
    }
}

impl Drop for Injection {
    fn drop(&mut self) {
        let mut all = INJECTIONS.write().unwrap_or_else(|e| e.into_inner());
        all.retain(|i| !Arc::ptr_eq(i, &self.state));
        ACTIVE.store(!all.is_empty(), Ordering::SeqCst);
    }
}

/// The injection whose root holds `path`, if any.
fn injected(path: &Path) -> Option<Arc<Injected>> {
    if !ACTIVE.load(Ordering::Relaxed) {
        return None;
    }
    let all = INJECTIONS.read().unwrap_or_else(|e| e.into_inner());
    all.iter().find(|i| path.starts_with(&i.root)).cloned()
}

/// How a checked operation goes on.
enum Verdict {
    Go,
    /// Fail with this error (a write first writes half, if `short`).
    Fail(std::io::Error, bool),
}

impl Injected {
    fn check(&self, op: Op, path: &Path) -> Verdict {
        let eio = || Verdict::Fail(std::io::Error::from_raw_os_error(libc::EIO), false);
        if self.halted.load(Ordering::SeqCst) {
            return eio();
        }
        let p = &self.plan;
        let wanted = p.ops.contains(&op)
            && p.path_contains
                .as_deref()
                .is_none_or(|t| path.to_string_lossy().contains(t));
        if !wanted {
            return Verdict::Go;
        }
        let n = self.counted.fetch_add(1, Ordering::SeqCst);
        {
            let mut t = self.trace.lock().unwrap_or_else(|e| e.into_inner());
            if t.len() < TRACE_LIMIT {
                t.push(format!("{n} {op:?} {}", path.display()));
            }
        }
        if self.cleared.load(Ordering::SeqCst) || n < p.at {
            return Verdict::Go;
        }
        match p.effect {
            Effect::Fail { errno, short } if n == p.at => {
                self.fired.store(true, Ordering::SeqCst);
                Verdict::Fail(std::io::Error::from_raw_os_error(errno), short)
            }
            Effect::FailFromThen { errno, short } => {
                self.fired.store(true, Ordering::SeqCst);
                Verdict::Fail(std::io::Error::from_raw_os_error(errno), short)
            }
            Effect::Crash | Effect::PowerCut if n == p.at => {
                self.fired.store(true, Ordering::SeqCst);
                self.halted.store(true, Ordering::SeqCst);
                eio()
            }
            _ => Verdict::Go,
        }
    }

    fn durable(&self) -> Option<std::sync::MutexGuard<'_, Durable>> {
        self.durable
            .as_ref()
            .map(|d| d.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

/// Checks `op` on `path` against an injection, as an `io::Result`.
fn gate(op: Op, path: &Path) -> std::io::Result<Option<Arc<Injected>>> {
    let Some(inj) = injected(path) else {
        return Ok(None);
    };
    match inj.check(op, path) {
        Verdict::Go => Ok(Some(inj)),
        Verdict::Fail(e, _) => Err(e),
    }
}

// ---- files ----------------------------------------------------------------

/// An open file whose writes, syncs and truncations go through the seam
/// (an injection installed after the file was opened applies too).
pub struct File {
    inner: std::fs::File,
    path: PathBuf,
}

impl File {
    /// Creates (or truncates) `path` for reading and writing.
    pub fn create(path: &Path) -> Result<File> {
        let mut o = std::fs::OpenOptions::new();
        o.read(true).write(true).create(true).truncate(true);
        Self::open_with(path, &o, Op::Create)
    }

    /// Opens an existing file to read.
    pub fn open(path: &Path) -> Result<File> {
        let mut o = std::fs::OpenOptions::new();
        o.read(true);
        Self::open_with(path, &o, Op::Open)
    }

    /// Opens an existing file to read and write in place.
    pub fn open_rw(path: &Path) -> Result<File> {
        let mut o = std::fs::OpenOptions::new();
        o.read(true).write(true);
        Self::open_with(path, &o, Op::Open)
    }

    /// Opens an existing file to read and append: every write lands at the
    /// end, wherever a failed earlier write left the file position.
    pub fn open_append(path: &Path) -> Result<File> {
        let mut o = std::fs::OpenOptions::new();
        o.read(true).append(true);
        Self::open_with(path, &o, Op::Open)
    }

    fn open_with(path: &Path, o: &std::fs::OpenOptions, op: Op) -> Result<File> {
        let faults = gate(op, path).map_err(|e| Error::io(path, e))?;
        let tracked = faults.as_ref().and_then(|f| f.durable.as_ref()).is_some();
        let existed = tracked && path.exists();
        let inner = o.open(path).map_err(|e| Error::io(path, e))?;
        if tracked
            && !existed
            && let Some(mut d) = faults.as_ref().and_then(|f| f.durable())
        {
            d.created(&inner, false);
        }
        Ok(File {
            inner,
            path: path.to_owned(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The same file after [`rename`] moved it to `to`.
    pub fn renamed(self, to: &Path) -> File {
        File {
            inner: self.inner,
            path: to.to_owned(),
        }
    }

    /// The file itself, to map it or read it at an offset.
    pub fn std(&self) -> &std::fs::File {
        &self.inner
    }

    fn check(&self, op: Op) -> std::io::Result<Option<Arc<Injected>>> {
        gate(op, &self.path)
    }

    /// fsync: data and metadata. A failure is [`Error::Fsync`].
    pub fn sync_all(&self) -> Result<()> {
        self.sync(false)
    }

    /// fdatasync: data, and the metadata needed to read it back.
    pub fn sync_data(&self) -> Result<()> {
        self.sync(true)
    }

    fn sync(&self, data_only: bool) -> Result<()> {
        let fsync = |e| Error::fsync(&self.path, e);
        let faults = self.check(Op::Sync).map_err(fsync)?;
        if data_only {
            self.inner.sync_data().map_err(fsync)?;
        } else {
            self.inner.sync_all().map_err(fsync)?;
        }
        if let Some(mut d) = faults.as_ref().and_then(|f| f.durable()) {
            d.synced_file(&self.inner);
        }
        Ok(())
    }

    pub fn set_len(&self, len: u64) -> Result<()> {
        self.check(Op::SetLen)
            .and_then(|_| self.inner.set_len(len))
            .map_err(|e| Error::io(&self.path, e))
    }

    /// The whole file from its start.
    pub fn read_all(&mut self) -> Result<Vec<u8>> {
        let mut bytes = Vec::new();
        self.inner
            .seek(SeekFrom::Start(0))
            .and_then(|_| self.inner.read_to_end(&mut bytes))
            .map_err(|e| Error::io(&self.path, e))?;
        Ok(bytes)
    }
}

impl Write for File {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Some(f) = injected(&self.path)
            && let Verdict::Fail(e, short) = f.check(Op::Write, &self.path)
        {
            if short && buf.len() > 1 {
                // What a filling disk does: part of the write lands.
                let _ = self.inner.write(&buf[..buf.len() / 2]);
            }
            return Err(e);
        }
        self.inner.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

impl Read for File {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.inner.read(buf)
    }
}

impl Seek for File {
    fn seek(&mut self, pos: SeekFrom) -> std::io::Result<u64> {
        self.inner.seek(pos)
    }
}

// ---- paths ----------------------------------------------------------------

/// Reads a whole file.
pub fn read(path: &Path) -> Result<Vec<u8>> {
    gate(Op::Read, path)
        .and_then(|_| std::fs::read(path))
        .map_err(|e| Error::io(path, e))
}

/// Renames `from` to `to` (a plan's path text is matched against `to`).
pub fn rename(from: &Path, to: &Path) -> Result<()> {
    gate(Op::Rename, to)
        .and_then(|_| std::fs::rename(from, to))
        .map_err(|e| Error::io(to, e))
}

/// Hard-links `from` as `to` (a new directory entry: counted as a
/// create; a plan's path text is matched against `to`).
pub fn hard_link(from: &Path, to: &Path) -> Result<()> {
    gate(Op::Create, to)
        .and_then(|_| std::fs::hard_link(from, to))
        .map_err(|e| Error::io(to, e))
}

pub fn create_dir(path: &Path) -> Result<()> {
    let faults = gate(Op::Mkdir, path).map_err(|e| Error::io(path, e))?;
    std::fs::create_dir(path).map_err(|e| Error::io(path, e))?;
    if let Some(mut d) = faults.as_ref().and_then(|f| f.durable()) {
        d.created_dir(path);
    }
    Ok(())
}

/// Creates `path` and its missing parents, each durably: the parent of
/// every directory made is fsynced, so none vanishes in a power cut.
pub fn create_dir_all_durably(path: &Path) -> Result<()> {
    if path.is_dir() {
        return Ok(());
    }
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        create_dir_all_durably(parent)?;
    }
    match create_dir(path) {
        Ok(()) => {}
        // Made meanwhile by someone else: as good.
        Err(_) if path.is_dir() => return Ok(()),
        Err(e) => return Err(e),
    }
    match path.parent().filter(|p| !p.as_os_str().is_empty()) {
        Some(parent) => sync_dir(parent),
        None => Ok(()),
    }
}

pub fn remove_file(path: &Path) -> Result<()> {
    gate(Op::Remove, path)
        .and_then(|_| std::fs::remove_file(path))
        .map_err(|e| Error::io(path, e))
}

pub fn remove_dir_all(path: &Path) -> Result<()> {
    gate(Op::Remove, path)
        .and_then(|_| std::fs::remove_dir_all(path))
        .map_err(|e| Error::io(path, e))
}

/// One entry of a directory listing.
pub struct Entry {
    pub name: OsString,
    pub path: PathBuf,
    pub is_dir: bool,
}

/// The entries of a directory (unordered).
pub fn read_dir(dir: &Path) -> Result<Vec<Entry>> {
    let rd = gate(Op::List, dir)
        .and_then(|_| std::fs::read_dir(dir))
        .map_err(|e| Error::io(dir, e))?;
    let mut out = Vec::new();
    for e in rd {
        let e = e.map_err(|e| Error::io(dir, e))?;
        let is_dir = e.file_type().is_ok_and(|t| t.is_dir());
        out.push(Entry {
            name: e.file_name(),
            path: e.path(),
            is_dir,
        });
    }
    Ok(out)
}

/// fsyncs a directory so creations, renames and removals in it survive a
/// power cut. A failure is [`Error::Fsync`].
pub fn sync_dir(dir: &Path) -> Result<()> {
    let faults = gate(Op::SyncDir, dir).map_err(|e| Error::fsync(dir, e))?;
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::fsync(dir, e))?;
    if let Some(mut d) = faults.as_ref().and_then(|f| f.durable()) {
        d.synced_dir(dir);
    }
    Ok(())
}

// ---- what a power cut leaves ---------------------------------------------

/// A file or directory as it is durably on disk.
enum Node {
    /// Contents as of the last fsync; `None` if never synced (empty after
    /// a power cut).
    File(Option<Vec<u8>>),
    /// Entries as of the last fsync of the directory: name → node.
    Dir(Option<Vec<(OsString, usize)>>),
}

/// The durable state of a tree: nodes by inode. A file created anew gets a
/// node of its own even if its inode number was used before, so an old
/// directory entry still points at the old contents.
struct Durable {
    nodes: Vec<Node>,
    by_ino: HashMap<u64, usize>,
    root: usize,
}

impl Durable {
    /// Everything under `root` counts as durable when tracking starts.
    fn snapshot(root: &Path) -> Durable {
        let mut d = Durable {
            nodes: Vec::new(),
            by_ino: HashMap::new(),
            root: 0,
        };
        d.root = d.take(root);
        d
    }

    fn take(&mut self, path: &Path) -> usize {
        let ino = std::fs::metadata(path).map(|m| m.ino()).unwrap_or(0);
        let node = if path.is_dir() {
            let mut entries = Vec::new();
            for e in std::fs::read_dir(path).into_iter().flatten().flatten() {
                entries.push((e.file_name(), self.take(&e.path())));
            }
            Node::Dir(Some(entries))
        } else {
            Node::File(Some(std::fs::read(path).unwrap_or_default()))
        };
        self.add(ino, node)
    }

    fn add(&mut self, ino: u64, node: Node) -> usize {
        self.nodes.push(node);
        let i = self.nodes.len() - 1;
        self.by_ino.insert(ino, i);
        i
    }

    fn node_of(&mut self, ino: u64, is_dir: bool) -> usize {
        match self.by_ino.get(&ino) {
            Some(&i) => i,
            None if is_dir => self.add(ino, Node::Dir(None)),
            None => self.add(ino, Node::File(None)),
        }
    }

    fn created(&mut self, f: &std::fs::File, is_dir: bool) {
        if let Ok(m) = f.metadata() {
            let node = if is_dir {
                Node::Dir(None)
            } else {
                Node::File(None)
            };
            self.add(m.ino(), node);
        }
    }

    fn created_dir(&mut self, path: &Path) {
        if let Ok(m) = std::fs::metadata(path) {
            self.add(m.ino(), Node::Dir(None));
        }
    }

    fn synced_file(&mut self, f: &std::fs::File) {
        let Ok(m) = f.metadata() else { return };
        let mut bytes = vec![0u8; m.len() as usize];
        if f.read_exact_at(&mut bytes, 0).is_err() {
            return;
        }
        let i = self.node_of(m.ino(), false);
        self.nodes[i] = Node::File(Some(bytes));
    }

    fn synced_dir(&mut self, dir: &Path) {
        let Ok(m) = std::fs::metadata(dir) else {
            return;
        };
        let mut entries = Vec::new();
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let Ok(em) = e.metadata() else { continue };
            entries.push((e.file_name(), self.node_of(em.ino(), em.is_dir())));
        }
        let i = self.node_of(m.ino(), true);
        self.nodes[i] = Node::Dir(Some(entries));
    }

    fn rebuild(&self, dest: &Path) -> std::io::Result<()> {
        self.build(self.root, dest)
    }

    fn build(&self, node: usize, dest: &Path) -> std::io::Result<()> {
        match &self.nodes[node] {
            Node::File(bytes) => std::fs::write(dest, bytes.as_deref().unwrap_or_default()),
            Node::Dir(entries) => {
                std::fs::create_dir_all(dest)?;
                for (name, child) in entries.iter().flatten() {
                    self.build(*child, &dest.join(name))?;
                }
                Ok(())
            }
        }
    }
}

/// Copies the tree at `from` to `to` as it is.
fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    if from.is_dir() {
        std::fs::create_dir_all(to)?;
        for e in std::fs::read_dir(from)? {
            let e = e?;
            copy_tree(&e.path(), &to.join(e.file_name()))?;
        }
        Ok(())
    } else {
        std::fs::copy(from, to).map(|_| ())
    }
}
