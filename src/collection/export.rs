//! The sealed files of a collection, linked out for a cluster snapshot: the
//! configuration, the manifest, and each sealed segment's files with its
//! current tombstones. A collection opened from exactly these files (and no
//! log) holds every point written before the export.

use std::path::Path;

use crate::collection::Collection;
use crate::collection::config::CONFIG_FILE;
use crate::error::{Error, Result};
use crate::storage::manifest::{MANIFEST_FILE, segment_dir_name};

impl Collection {
    /// Seals the mutable segment, persists every tombstone, and hard-links
    /// the files that make up the collection into `dest` (created; must not
    /// exist). Holds the maintenance lock meanwhile, so no merge removes a
    /// file between the manifest and the links; the caller must not write
    /// to the collection concurrently (a cluster node's applier calls this
    /// between two log messages). Returns the relative paths linked.
    pub fn export_sealed(&self, dest: &Path) -> Result<Vec<String>> {
        self.check()?;
        let _m = self.maintenance.lock();
        self.seal_once(true)?;
        let manifest = {
            let mut w = self.writer.lock();
            let sealed = self.snapshot().sealed.clone();
            let current = w.manifest.clone();
            // Deletes since the last seal live in the log only; this writes
            // them into the tombstone files the export carries.
            self.commit_manifest(&mut w, current, &sealed)?;
            w.manifest.clone()
        };
        std::fs::create_dir_all(dest).map_err(|e| Error::io(dest, e))?;
        let mut files = vec![CONFIG_FILE.to_string(), MANIFEST_FILE.to_string()];
        for e in &manifest.segments {
            let seg = segment_dir_name(e.id);
            let src = self.dir.join(&seg);
            let rd = std::fs::read_dir(&src).map_err(|x| Error::io(&src, x))?;
            let mut names: Vec<String> = rd
                .flatten()
                .map(|f| f.file_name().to_string_lossy().into_owned())
                .filter(|n| !n.starts_with("tomb-") || *n == e.tombstones)
                .filter(|n| !n.ends_with(".tmp"))
                .collect();
            names.sort();
            std::fs::create_dir_all(dest.join(&seg)).map_err(|x| Error::io(dest.join(&seg), x))?;
            files.extend(names.into_iter().map(|n| format!("{seg}/{n}")));
        }
        for rel in &files {
            let (from, to) = (self.dir.join(rel), dest.join(rel));
            std::fs::hard_link(&from, &to).map_err(|x| Error::io(&from, x))?;
        }
        Ok(files)
    }
}
