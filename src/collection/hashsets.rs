//! Exact-hash sets: named lists of known material by MD5, SHA-1 and
//! SHA-256, each entry with its category, source, series and whether the
//! victim is identified (`known-ncmec`, `vics`, ...), beside the collections
//! in `<data-dir>/hashsets/<set>/`.
//!
//! A set is `set.json` (its description and the parts that make it up,
//! replaced atomically) and immutable `part-<id>.bin` files
//! ([`crate::segment::hashpart`]), one per import. An import is validated
//! whole, written as a new part under a temporary name, fsynced and renamed,
//! and only then named in `set.json`: a crash or a refused import leaves the
//! set as it was, never half an import. Files `set.json` does not name are
//! removed at open. Past [`MAX_PARTS`] parts, the parts are merged into one
//! the same way, so a lookup stays a handful of bucket jumps.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::pb;
use crate::segment::hashpart::{self, ALGORITHMS, Part};
use crate::storage::versions::HASHSET;
use crate::storage::{durable, fs};
use crate::validate;

const HASHSETS_DIR: &str = "hashsets";
const SET_FILE: &str = "set.json";
/// Parts beyond which a set's parts are merged into one.
pub const MAX_PARTS: usize = 8;
/// Entries one import may hold (it is assembled in memory).
pub const MAX_IMPORT: usize = 5_000_000;
/// Largest `record` (the entry as imported, for export).
pub const MAX_RECORD: usize = 1 << 20;

/// What `set.json` holds.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct SetFile {
    format: u32,
    name: String,
    description: String,
    /// The agency that created the set (its contributors import into it);
    /// empty for a set made on an open server, and absent from such a
    /// file, so those read and write as before owners existed.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    owner: String,
    next_part: u64,
    /// Oldest first.
    parts: Vec<PartEntry>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct PartEntry {
    id: u64,
    entries: u64,
    cases: Vec<String>,
}

fn part_file(id: u64) -> String {
    format!("part-{id:08}.bin")
}

/// One open set.
pub struct HashSet {
    dir: PathBuf,
    file: Mutex<SetFile>,
    /// Oldest first; replaced whole, read as a snapshot.
    parts: RwLock<Arc<Vec<Arc<Part>>>>,
}

/// A match of a digest in a set.
#[derive(Clone, Debug)]
pub struct Match {
    pub set: String,
    pub algorithm: &'static str,
    pub entry: pb::HashEntry,
}

impl HashSet {
    fn open(dir: &Path) -> Result<HashSet> {
        let path = dir.join(SET_FILE);
        let bytes = fs::read(&path)?;
        let file: SetFile = serde_json::from_slice(&bytes)
            .map_err(|e| Error::data_loss(&path, format!("unreadable hash set: {e}")))?;
        HASHSET.check(&path, file.format)?;
        let named: Vec<String> = file.parts.iter().map(|p| part_file(p.id)).collect();
        for e in fs::read_dir(dir)? {
            let name = e.name.to_string_lossy().into_owned();
            if name.starts_with("part-") && !named.contains(&name) || name.ends_with(".tmp") {
                tracing::info!(path = %e.path.display(), "removing hash set file not in set.json");
                let _ = fs::remove_file(&e.path);
            }
        }
        let mut parts = Vec::with_capacity(file.parts.len());
        for p in &file.parts {
            let part = Part::open(&dir.join(part_file(p.id)))?;
            if part.len() as u64 != p.entries {
                return Err(Error::data_loss(
                    dir.join(part_file(p.id)),
                    format!(
                        "part has {} entries, set.json says {}",
                        part.len(),
                        p.entries
                    ),
                ));
            }
            parts.push(Arc::new(part));
        }
        Ok(HashSet {
            dir: dir.to_owned(),
            file: Mutex::new(file),
            parts: RwLock::new(Arc::new(parts)),
        })
    }

    fn snapshot(&self) -> Arc<Vec<Arc<Part>>> {
        self.parts.read().clone()
    }

    pub fn name(&self) -> String {
        self.file.lock().name.clone()
    }

    pub fn info(&self) -> pb::HashSetInfo {
        let f = self.file.lock();
        let parts = self.snapshot();
        pb::HashSetInfo {
            name: f.name.clone(),
            description: f.description.clone(),
            owner: f.owner.clone(),
            entries: parts.iter().map(|p| p.len() as u64).sum(),
            parts: parts.len() as u32,
            case_ids: f
                .parts
                .iter()
                .flat_map(|p| p.cases.iter().cloned())
                .collect(),
            disk_bytes: durable::dir_size(&self.dir),
        }
    }

    /// Entries matching `digest` (16, 20 or 32 bytes), oldest part first.
    pub fn lookup(&self, digest: &[u8]) -> Result<Vec<(&'static str, pb::HashEntry)>> {
        let Some(a) = ALGORITHMS.iter().position(|(_, len)| *len == digest.len()) else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for part in self.snapshot().iter() {
            for e in part.lookup(a, digest)? {
                out.push((ALGORITHMS[a].0, part.entry(e as usize, false)?));
            }
        }
        Ok(out)
    }

    /// Adds one import as a new part (see the module comment).
    fn import(&self, entries: &[pb::HashEntry], cases: &[pb::HashCase]) -> Result<()> {
        let mut f = self.file.lock();
        for c in cases {
            if f.parts.iter().any(|p| p.cases.contains(&c.case_id)) {
                return Err(Error::Duplicate(format!(
                    "case {:?} in hash set {:?}; drop the set or import the case into another set",
                    c.case_id, f.name
                )));
            }
        }
        let id = f.next_part.max(1);
        self.write_part(id, entries, cases)?;
        let mut next = f.clone();
        next.next_part = id + 1;
        next.parts.push(PartEntry {
            id,
            entries: entries.len() as u64,
            cases: cases.iter().map(|c| c.case_id.clone()).collect(),
        });
        self.adopt(&mut f, next)?;
        if f.parts.len() > MAX_PARTS {
            self.merge_parts(&mut f)?;
        }
        Ok(())
    }

    /// Writes part `id` under a temporary name and renames it into place.
    fn write_part(&self, id: u64, entries: &[pb::HashEntry], cases: &[pb::HashCase]) -> Result<()> {
        let path = self.dir.join(part_file(id));
        let tmp = path.with_extension("tmp");
        if let Err(e) = hashpart::write(&tmp, entries, cases) {
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
        fs::rename(&tmp, &path)?;
        durable::sync_dir(&self.dir)
    }

    /// Stores `next` as set.json, then maps its parts (reusing open ones).
    fn adopt(&self, f: &mut SetFile, next: SetFile) -> Result<()> {
        let old = self.snapshot();
        let mut parts = Vec::with_capacity(next.parts.len());
        for p in &next.parts {
            let keep = f
                .parts
                .iter()
                .position(|q| q.id == p.id)
                .and_then(|i| old.get(i).cloned());
            parts.push(match keep {
                Some(part) => part,
                None => Arc::new(Part::open(&self.dir.join(part_file(p.id)))?),
            });
        }
        store(&self.dir, &next)?;
        *f = next;
        *self.parts.write() = Arc::new(parts);
        Ok(())
    }

    /// Rewrites every part as one, entries and cases in import order.
    fn merge_parts(&self, f: &mut SetFile) -> Result<()> {
        let old = self.snapshot();
        let mut entries = Vec::new();
        let mut cases = Vec::new();
        for part in old.iter() {
            for i in 0..part.len() {
                entries.push(part.entry(i, true)?);
            }
            cases.extend(part.cases()?);
        }
        let id = f.next_part.max(1);
        self.write_part(id, &entries, &cases)?;
        let mut next = f.clone();
        next.next_part = id + 1;
        next.parts = vec![PartEntry {
            id,
            entries: entries.len() as u64,
            cases: f
                .parts
                .iter()
                .flat_map(|p| p.cases.iter().cloned())
                .collect(),
        }];
        let stale: Vec<PathBuf> = f
            .parts
            .iter()
            .map(|p| self.dir.join(part_file(p.id)))
            .collect();
        self.adopt(f, next)?;
        for p in stale {
            // Lookups still holding the old parts keep their maps.
            let _ = fs::remove_file(&p);
        }
        Ok(())
    }

    /// The cases (of `case_id` only, if given) and their entries in import
    /// order, with records.
    pub fn export(&self, case_id: &str) -> Result<(Vec<pb::HashCase>, Vec<pb::HashEntry>)> {
        let mut cases = Vec::new();
        let mut entries = Vec::new();
        for part in self.snapshot().iter() {
            cases.extend(
                part.cases()?
                    .into_iter()
                    .filter(|c| case_id.is_empty() || c.case_id == case_id),
            );
            for i in 0..part.len() {
                if case_id.is_empty() || part.case_of(i)? == case_id {
                    entries.push(part.entry(i, true)?);
                }
            }
        }
        Ok((cases, entries))
    }

    /// Reads every part's payload and checks its CRC.
    pub fn verify(&self) -> Result<()> {
        self.snapshot().iter().try_for_each(|p| p.verify())
    }
}

fn store(dir: &Path, f: &SetFile) -> Result<()> {
    let json = serde_json::to_vec_pretty(f).map_err(|e| Error::Internal(e.to_string()))?;
    durable::write_durably(&dir.join(SET_FILE), &json)
}

/// Checks one entry of an import; `at` names it in errors.
pub fn validate_entry(at: &str, e: &pb::HashEntry) -> Result<()> {
    let mut any = false;
    for (field, d, len) in [
        ("md5", &e.md5, 16),
        ("sha1", &e.sha1, 20),
        ("sha256", &e.sha256, 32),
    ] {
        if !d.is_empty() {
            validate::digest(&format!("{at}.{field}"), d, Some(len))?;
            any = true;
        }
    }
    if !any {
        return Err(Error::invalid(format!(
            "{at} has no digest; give md5, sha1 or sha256"
        )));
    }
    for (field, v) in [
        ("category", &e.category),
        ("source", &e.source),
        ("series", &e.series),
        ("case_id", &e.case_id),
    ] {
        if v.len() > validate::MAX_META_STRING {
            return Err(Error::invalid(format!(
                "{at}.{field} {} is {} bytes; at most {}",
                validate::show(v),
                v.len(),
                validate::MAX_META_STRING
            )));
        }
    }
    if e.record.len() > MAX_RECORD {
        return Err(Error::invalid(format!(
            "{at}.record is {} bytes; at most {MAX_RECORD}",
            e.record.len()
        )));
    }
    Ok(())
}

/// The hash sets of a data directory, by name.
pub struct HashSets {
    root: PathBuf,
    sets: RwLock<BTreeMap<String, Arc<HashSet>>>,
    /// One import or drop at a time (they change the set list).
    write: Mutex<()>,
}

impl HashSets {
    /// Opens `<data_dir>/hashsets/` and every set in it. A set that cannot
    /// be opened is refused here, naming its file: like a corrupt
    /// collection, except that a server without its known hashes would
    /// triage known material as new, so it does not start.
    pub fn open(data_dir: &Path) -> Result<HashSets> {
        let root = data_dir.join(HASHSETS_DIR);
        fs::create_dir_all_durably(&root)?;
        let mut sets = BTreeMap::new();
        let mut dirs: Vec<PathBuf> = fs::read_dir(&root)?
            .into_iter()
            .filter(|e| e.is_dir)
            .map(|e| e.path)
            .collect();
        dirs.sort();
        for dir in dirs {
            let name = dir
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default()
                .to_string();
            if name.starts_with('.') || !dir.join(SET_FILE).exists() {
                // An interrupted create or drop.
                fs::remove_dir_all(&dir)?;
                continue;
            }
            sets.insert(name, Arc::new(HashSet::open(&dir)?));
        }
        Ok(HashSets {
            root,
            sets: RwLock::new(sets),
            write: Mutex::new(()),
        })
    }

    pub fn get(&self, name: &str) -> Result<Arc<HashSet>> {
        self.sets
            .read()
            .get(name)
            .cloned()
            .ok_or_else(|| Error::NotFound(format!("hash set {name:?} not found")))
    }

    pub fn list(&self) -> Vec<Arc<HashSet>> {
        self.sets.read().values().cloned().collect()
    }

    /// The sets named (all when `names` is empty); NOT_FOUND for an unknown one.
    pub fn select(&self, field: &str, names: &[String]) -> Result<Vec<Arc<HashSet>>> {
        if names.is_empty() {
            return Ok(self.list());
        }
        names
            .iter()
            .enumerate()
            .map(|(i, n)| {
                validate::collection_name(&format!("{field}[{i}]"), n)?;
                self.get(n)
            })
            .collect()
    }

    /// Imports entries and cases into `set` (created if absent, owned by
    /// `owner`), whole or not at all. Entries must have been checked with
    /// [`validate_entry`]. `allow` decides first, under the write lock,
    /// given the set's owner (`None`: the set does not exist yet).
    pub fn import(
        &self,
        set: &str,
        description: &str,
        owner: &str,
        entries: &[pb::HashEntry],
        cases: &[pb::HashCase],
        allow: impl FnOnce(Option<&str>) -> Result<()>,
    ) -> Result<u64> {
        let _w = self.write.lock();
        // The read guard must end before the write below (a guard in a
        // match scrutinee lives to the end of the match).
        let existing = self.sets.read().get(set).cloned();
        let s = match existing {
            Some(s) => {
                let owner = s.file.lock().owner.clone();
                allow(Some(&owner))?;
                s
            }
            None => {
                allow(None)?;
                let s = Arc::new(self.create(set, description, owner)?);
                self.sets.write().insert(set.to_string(), s.clone());
                s
            }
        };
        s.import(entries, cases)?;
        Ok(s.snapshot().iter().map(|p| p.len() as u64).sum())
    }

    /// A new empty set, built under a dot-name and renamed into place.
    fn create(&self, name: &str, description: &str, owner: &str) -> Result<HashSet> {
        let tmp = self.root.join(format!(".creating-{name}"));
        if tmp.exists() {
            fs::remove_dir_all(&tmp)?;
        }
        fs::create_dir(&tmp)?;
        store(
            &tmp,
            &SetFile {
                format: HASHSET.current,
                name: name.to_string(),
                description: description.to_string(),
                owner: owner.to_string(),
                next_part: 1,
                parts: Vec::new(),
            },
        )?;
        let dir = self.root.join(name);
        fs::rename(&tmp, &dir)?;
        durable::sync_dir(&self.root)?;
        HashSet::open(&dir)
    }

    pub fn drop_set(&self, name: &str) -> Result<()> {
        let _w = self.write.lock();
        let Some(set) = self.sets.write().remove(name) else {
            return Err(Error::NotFound(format!("hash set {name:?} not found")));
        };
        let dir = self.root.join(name);
        let doomed = self.root.join(format!(".dropping-{name}"));
        if let Err(e) = fs::rename(&dir, &doomed) {
            // Still in place: it keeps serving.
            self.sets.write().insert(name.to_string(), set);
            return Err(e);
        }
        durable::sync_dir(&self.root)?;
        if let Err(e) = fs::remove_dir_all(&doomed) {
            // Gone from the API and from where a start looks; the next
            // start removes what is left.
            tracing::warn!(path = %doomed.display(), error = %e, "dropped hash set's files not removed yet");
        }
        Ok(())
    }

    /// Every match of `digest` in `sets`.
    pub fn lookup(&self, sets: &[Arc<HashSet>], digest: &[u8]) -> Result<Vec<Match>> {
        let mut out = Vec::new();
        for s in sets {
            let name = s.name();
            for (algorithm, entry) in s.lookup(digest)? {
                out.push(Match {
                    set: name.clone(),
                    algorithm,
                    entry,
                });
            }
        }
        Ok(out)
    }
}
