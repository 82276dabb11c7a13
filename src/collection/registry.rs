//! The collections registry: name → open [`Collection`], and the data
//! directory they live in (with the exact-hash sets kept beside them).
//!
//! Opening a data directory lists its collections at once
//! ([`Registry::scan`]) and opens them afterwards ([`Registry::open_all`],
//! which a server runs in the background while it already answers): a
//! collection still replaying its log is *opening*, and requests for it are
//! told to retry (UNAVAILABLE). A collection whose files cannot be opened is
//! kept as *unavailable* with its error (naming the file), so requests for it
//! get that error while every other collection keeps serving; both are
//! listed. [`Registry::subscribe`] tells when any of this changes.
//!
//! Creating and dropping are serialised: a drop stops the collection's
//! writes and background work and waits for them before its directory is
//! renamed away, so nothing of a dropped collection ever writes into a new
//! collection created under the same name.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};
use tokio::sync::watch;

use crate::collection::config::Config;
use crate::collection::hashsets::HashSets;
use crate::collection::{Collection, StorageOptions};
use crate::error::{Error, Result};
use crate::storage::lock::DirLock;
use crate::storage::{durable, fs};
use crate::validate;

/// The collections' directory inside the data directory.
pub const COLLECTIONS_DIR: &str = "collections";

enum Entry {
    /// Listed, not open yet (its log may be replaying).
    Opening,
    Ready(Arc<Collection>),
    /// Refused at open, with why.
    Unavailable(Error),
}

/// A collection as the registry holds it, for listings.
pub enum State {
    Opening,
    Ready(Arc<Collection>),
    /// Refused at open: the error requests for it get.
    Unavailable(Error),
}

pub struct Registry {
    data_dir: PathBuf,
    root: PathBuf,
    opts: StorageOptions,
    entries: RwLock<BTreeMap<String, Entry>>,
    /// Creates and drops, one at a time.
    ddl: Mutex<()>,
    /// Bumped whenever a collection opens, fails, changes health, is
    /// created or dropped.
    changes: Arc<watch::Sender<u64>>,
    /// The exact-hash sets kept beside the collections.
    hash_sets: HashSets,
    /// One registry (one process) per data directory at a time.
    _lock: DirLock,
}

impl Registry {
    /// Opens (creating if needed) the data directory and every collection
    /// in it, before returning. Refused (FAILED_PRECONDITION, naming the
    /// holder's pid) while another registry has the directory open.
    pub fn open(data_dir: &Path, opts: StorageOptions) -> Result<Registry> {
        let r = Registry::scan(data_dir, opts)?;
        r.open_all();
        Ok(r)
    }

    /// Opens (creating if needed) the data directory and lists its
    /// collections as opening; [`Registry::open_all`] opens them.
    pub fn scan(data_dir: &Path, opts: StorageOptions) -> Result<Registry> {
        let root = data_dir.join(COLLECTIONS_DIR);
        fs::create_dir_all_durably(&root)?;
        let lock = DirLock::acquire(data_dir)?;
        let hash_sets = HashSets::open(data_dir)?;
        let mut entries = BTreeMap::new();
        let mut dirs: Vec<fs::Entry> = fs::read_dir(&root)?
            .into_iter()
            .filter(|e| e.is_dir)
            .collect();
        dirs.sort_by(|a, b| a.name.cmp(&b.name));
        for e in dirs {
            let name = e.name.to_string_lossy().into_owned();
            if name.starts_with('.') {
                // Leftover of an interrupted create or drop.
                tracing::info!(path = %e.path.display(), "removing leftover directory");
                fs::remove_dir_all(&e.path)?;
                continue;
            }
            if validate::collection_name("directory", &name).is_err() {
                tracing::warn!(path = %e.path.display(), "ignoring directory that is not a collection name");
                continue;
            }
            entries.insert(name, Entry::Opening);
        }
        Ok(Registry {
            data_dir: data_dir.to_owned(),
            root,
            opts,
            entries: RwLock::new(entries),
            ddl: Mutex::new(()),
            changes: Arc::new(watch::Sender::new(0)),
            hash_sets,
            _lock: lock,
        })
    }

    /// Opens every collection still opening, one after the other (each
    /// replay uses every core); returns how many opened and how many were
    /// refused.
    pub fn open_all(&self) -> (usize, usize) {
        let opening: Vec<String> = self
            .entries
            .read()
            .iter()
            .filter(|(_, e)| matches!(e, Entry::Opening))
            .map(|(n, _)| n.clone())
            .collect();
        let (mut ready, mut refused) = (0, 0);
        for name in opening {
            let entry = match self.open_one(&name) {
                Ok(c) => {
                    ready += 1;
                    Entry::Ready(c)
                }
                Err(e) => {
                    refused += 1;
                    tracing::error!(collection = %name, error = %e, "collection unavailable");
                    Entry::Unavailable(e)
                }
            };
            self.entries.write().insert(name, entry);
            self.notify();
        }
        (ready, refused)
    }

    fn open_one(&self, name: &str) -> Result<Arc<Collection>> {
        let c = Collection::open(&self.root.join(name), self.opts.clone())?;
        let changes = self.changes.clone();
        c.on_health_change(Box::new(move || changes.send_modify(|n| *n += 1)));
        Ok(c)
    }

    /// A receiver that sees a new value whenever a collection opens, fails,
    /// changes health, is created or dropped.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    fn notify(&self) {
        self.changes.send_modify(|n| *n += 1);
    }

    /// Creates a collection. `ALREADY_EXISTS` if the name is taken.
    pub fn create(&self, config: Config) -> Result<Arc<Collection>> {
        validate::collection_name("name", &config.name)?;
        let _ddl = self.ddl.lock();
        if self.entries.read().contains_key(&config.name) {
            return Err(Error::AlreadyExists(config.name));
        }
        // Built under a dot-name and renamed into place, so a crash midway
        // leaves a directory that the next open removes.
        let tmp = self.root.join(format!(".creating-{}", config.name));
        if tmp.exists() {
            fs::remove_dir_all(&tmp)?;
        }
        let name = config.name.clone();
        if let Err(e) = Collection::create(&tmp, config, self.opts.clone()) {
            let _ = fs::remove_dir_all(&tmp);
            return Err(e);
        }
        let dir = self.root.join(&name);
        fs::rename(&tmp, &dir)?;
        let opened = durable::sync_dir(&self.root).and_then(|_| self.open_one(&name));
        let c = match opened {
            Ok(c) => c,
            Err(e) => {
                // Not created after all: take it away again.
                self.discard(&name);
                return Err(e);
            }
        };
        self.entries.write().insert(name, Entry::Ready(c.clone()));
        self.notify();
        Ok(c)
    }

    /// Opens and serves the collection `name` whose directory the caller
    /// has put in place under the collections directory (a cluster node
    /// restoring a snapshot). ALREADY_EXISTS if one of that name is open.
    pub fn adopt(&self, name: &str) -> Result<Arc<Collection>> {
        validate::collection_name("name", name)?;
        let mut entries = self.entries.write();
        if entries.contains_key(name) {
            return Err(Error::AlreadyExists(name.to_string()));
        }
        durable::sync_dir(&self.root)?;
        let c = Collection::open(&self.root.join(name), self.opts.clone())?;
        entries.insert(name.to_string(), Entry::Ready(c.clone()));
        Ok(c)
    }

    /// Where the collections' directories are (`<data-dir>/collections`).
    pub fn collections_dir(&self) -> &Path {
        &self.root
    }

    /// The open collection called `name`.
    pub fn get(&self, name: &str) -> Result<Arc<Collection>> {
        validate::collection_name("collection", name)?;
        match self.entries.read().get(name) {
            Some(Entry::Ready(c)) => {
                c.check()?;
                Ok(c.clone())
            }
            Some(Entry::Opening) => Err(opening(name)),
            Some(Entry::Unavailable(why)) => Err(Error::Unopened {
                name: name.to_string(),
                cause: Box::new(why.clone()),
            }),
            None => Err(Error::CollectionNotFound(name.to_string())),
        }
    }

    /// Removes a collection and its files (also an unavailable one). If its
    /// directory cannot be renamed away, the collection stays, in the API
    /// and on disk, and takes writes again.
    pub fn drop_collection(&self, name: &str) -> Result<()> {
        validate::collection_name("name", name)?;
        let _ddl = self.ddl.lock();
        let open = match self.entries.read().get(name) {
            None => return Err(Error::CollectionNotFound(name.to_string())),
            Some(Entry::Opening) => return Err(opening(name)),
            Some(Entry::Ready(c)) => Some(c.clone()),
            Some(Entry::Unavailable(_)) => None,
        };
        if let Some(c) = &open {
            // Refuses new writes, waits for running ones, seals and merges.
            c.close();
        }
        let dir = self.root.join(name);
        let doomed = self.root.join(format!(".dropping-{name}"));
        if doomed.exists() {
            let _ = fs::remove_dir_all(&doomed);
        }
        if let Err(e) = fs::rename(&dir, &doomed) {
            if let Some(c) = &open {
                c.reopen();
            }
            return Err(e);
        }
        self.entries.write().remove(name);
        self.notify();
        // Gone from the API either way: its files are no longer where a
        // restart looks. A failure here only means a power cut could bring
        // it back, so the drop is not acknowledged.
        durable::sync_dir(&self.root)?;
        drop(_ddl);
        if let Err(e) = fs::remove_dir_all(&doomed) {
            tracing::warn!(path = %doomed.display(), error = %e, "dropped collection's files not removed yet; the next start removes them");
        }
        Ok(())
    }

    /// Takes a directory just created back out (best effort; the next
    /// start removes what is left).
    fn discard(&self, name: &str) {
        let doomed = self.root.join(format!(".dropping-{name}"));
        if fs::rename(&self.root.join(name), &doomed).is_ok() {
            let _ = durable::sync_dir(&self.root);
            let _ = fs::remove_dir_all(&doomed);
        }
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

    /// Stops writes and background work of every open collection and waits
    /// for those running (a server shutting down: nothing of this process
    /// touches the files after it).
    pub fn close_all(&self) {
        let open: Vec<Arc<Collection>> = self
            .entries
            .read()
            .values()
            .filter_map(|e| match e {
                Entry::Ready(c) => Some(c.clone()),
                _ => None,
            })
            .collect();
        for c in open {
            c.close();
        }
    }

    /// Every collection in name order: opening, ready or unavailable.
    pub fn list(&self) -> Vec<(String, State)> {
        self.entries
            .read()
            .iter()
            .map(|(name, e)| {
                let s = match e {
                    Entry::Opening => State::Opening,
                    Entry::Ready(c) => State::Ready(c.clone()),
                    Entry::Unavailable(why) => State::Unavailable(why.clone()),
                };
                (name.clone(), s)
            })
            .collect()
    }
}

fn opening(name: &str) -> Error {
    Error::Unavailable(format!(
        "collection {name:?} is still opening (replaying its write-ahead log); retry shortly"
    ))
}
