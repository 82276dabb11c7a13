//! The collections registry: name → open [`Collection`], and the data
//! directory they live in (with the exact-hash sets kept beside them).
//!
//! A collection whose files cannot be read is kept here as *unavailable*
//! with its error (naming the file), so requests for it get that error while
//! every other collection keeps serving.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::RwLock;

use crate::collection::config::Config;
use crate::collection::hashsets::HashSets;
use crate::collection::{Collection, StorageOptions};
use crate::error::{Error, Result};
use crate::storage::durable;
use crate::storage::lock::DirLock;
use crate::validate;

/// The collections' directory inside the data directory.
pub const COLLECTIONS_DIR: &str = "collections";

enum Entry {
    Ready(Arc<Collection>),
    /// Refused at open; the message is what requests for it are told.
    Unavailable(String),
}

pub struct Registry {
    data_dir: PathBuf,
    root: PathBuf,
    opts: StorageOptions,
    entries: RwLock<BTreeMap<String, Entry>>,
    /// The exact-hash sets kept beside the collections.
    hash_sets: HashSets,
    /// One registry (one process) per data directory at a time.
    _lock: DirLock,
}

impl Registry {
    /// Opens (creating if needed) the data directory and every collection in
    /// it. Refused (FAILED_PRECONDITION, naming the holder's pid) while
    /// another registry has the directory open, before any log is replayed.
    pub fn open(data_dir: &Path, opts: StorageOptions) -> Result<Registry> {
        let root = data_dir.join(COLLECTIONS_DIR);
        std::fs::create_dir_all(&root).map_err(|e| Error::io(&root, e))?;
        let lock = DirLock::acquire(data_dir)?;
        let hash_sets = HashSets::open(data_dir)?;
        let mut entries = BTreeMap::new();
        let rd = std::fs::read_dir(&root).map_err(|e| Error::io(&root, e))?;
        let mut dirs: Vec<PathBuf> = rd
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.is_dir())
            .collect();
        dirs.sort();
        for dir in dirs {
            let name = dir
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default()
                .to_string();
            if name.starts_with('.') {
                // Leftover of an interrupted create or drop.
                tracing::info!(path = %dir.display(), "removing leftover directory");
                std::fs::remove_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
                continue;
            }
            if validate::collection_name("directory", &name).is_err() {
                tracing::warn!(path = %dir.display(), "ignoring directory that is not a collection name");
                continue;
            }
            let entry = match Collection::open(&dir, opts.clone()) {
                Ok(c) => Entry::Ready(c),
                Err(e) => {
                    tracing::error!(collection = %name, error = %e, "collection unavailable");
                    Entry::Unavailable(e.to_string())
                }
            };
            entries.insert(name, entry);
        }
        Ok(Registry {
            data_dir: data_dir.to_owned(),
            root,
            opts,
            entries: RwLock::new(entries),
            hash_sets,
            _lock: lock,
        })
    }

    /// Creates a collection. `ALREADY_EXISTS` if the name is taken.
    pub fn create(&self, config: Config) -> Result<Arc<Collection>> {
        let mut entries = self.entries.write();
        if entries.contains_key(&config.name) {
            return Err(Error::AlreadyExists(config.name));
        }
        // Built under a dot-name and renamed into place, so a crash midway
        // leaves a directory that the next open removes.
        let tmp = self.root.join(format!(".creating-{}", config.name));
        if tmp.exists() {
            std::fs::remove_dir_all(&tmp).map_err(|e| Error::io(&tmp, e))?;
        }
        let name = config.name.clone();
        if let Err(e) = Collection::create(&tmp, config, self.opts.clone()) {
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(e);
        }
        let dir = self.root.join(&name);
        std::fs::rename(&tmp, &dir).map_err(|e| Error::io(&dir, e))?;
        durable::sync_dir(&self.root)?;
        let c = Collection::open(&dir, self.opts.clone())?;
        entries.insert(name, Entry::Ready(c.clone()));
        Ok(c)
    }

    /// The open collection called `name`.
    pub fn get(&self, name: &str) -> Result<Arc<Collection>> {
        match self.entries.read().get(name) {
            Some(Entry::Ready(c)) => {
                c.check()?;
                Ok(c.clone())
            }
            Some(Entry::Unavailable(why)) => Err(unavailable(name, why)),
            None => Err(Error::CollectionNotFound(name.to_string())),
        }
    }

    /// Removes a collection and its files (also an unavailable one).
    pub fn drop_collection(&self, name: &str) -> Result<()> {
        let mut entries = self.entries.write();
        match entries.remove(name) {
            None => return Err(Error::CollectionNotFound(name.to_string())),
            Some(Entry::Ready(c)) => c.close(),
            Some(Entry::Unavailable(_)) => {}
        }
        let dir = self.root.join(name);
        let doomed = self.root.join(format!(".dropping-{name}"));
        std::fs::rename(&dir, &doomed).map_err(|e| Error::io(&dir, e))?;
        durable::sync_dir(&self.root)?;
        drop(entries);
        std::fs::remove_dir_all(&doomed).map_err(|e| Error::io(&doomed, e))
    }

    /// The exact-hash sets of this data directory.
    pub fn hash_sets(&self) -> &HashSets {
        &self.hash_sets
    }

    /// The data directory the collections live in (`<data-dir>/collections`
    /// and beside it what higher layers keep, such as series states).
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Ready collections in name order, and the names of unavailable ones
    /// with their reasons.
    pub fn list(&self) -> (Vec<Arc<Collection>>, Vec<(String, String)>) {
        let entries = self.entries.read();
        let mut ready = Vec::new();
        let mut broken = Vec::new();
        for (name, e) in entries.iter() {
            match e {
                Entry::Ready(c) => ready.push(c.clone()),
                Entry::Unavailable(why) => broken.push((name.clone(), why.clone())),
            }
        }
        (ready, broken)
    }
}

fn unavailable(name: &str, why: &str) -> Error {
    Error::DataLoss {
        path: PathBuf::from(name),
        what: format!("collection is unavailable: {why}"),
    }
}
