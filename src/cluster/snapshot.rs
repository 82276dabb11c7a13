//! Shard snapshots in S3 object storage (any S3 API, through
//! `object_store`): the sealed files of a shard's collection as its leader
//! exported them, and a snapshot manifest naming them with the stream
//! sequence they hold. A node that starts empty downloads the newest one,
//! checks every file against its SHA-256, and replays the log after it.
//!
//! Keys in the bucket:
//!
//! ```text
//! blobs/<sha256>                                  a file, by content
//! snapshots/<collection>/shard-<s>/latest.json    the newest snapshot manifest
//! ```
//!
//! Blobs are content-addressed, so two uploads never conflict and an
//! unchanged segment is uploaded once; the manifest is written last, so a
//! reader never sees a snapshot whose files are missing.

use std::path::Path;
use std::sync::Arc;

use object_store::aws::AmazonS3Builder;
use object_store::path::Path as Key;
use object_store::{ObjectStore, PutPayload};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

const FORMAT: u32 = 1;

/// Where and how to reach the object store.
#[derive(Clone, Debug)]
pub struct S3Options {
    /// `http://host:port` of the S3 API.
    pub endpoint: String,
    pub bucket: String,
    pub access_key: String,
    pub secret_key: String,
    pub region: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FileEntry {
    /// Path inside the collection directory, e.g. `seg-00000001/vectors.bin`.
    pub path: String,
    pub size: u64,
    pub sha256: String,
}

/// One snapshot: the files of a shard's collection holding every log
/// message up to `stream_seq`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SnapshotManifest {
    pub format: u32,
    pub collection: String,
    pub shard: u32,
    pub stream_seq: u64,
    /// The leader that made it.
    pub node_id: String,
    pub files: Vec<FileEntry>,
}

#[derive(Clone)]
pub struct Snapshots {
    store: Arc<dyn ObjectStore>,
}

fn unavailable(what: String, e: impl std::fmt::Display) -> Error {
    Error::Unavailable(format!("object store: {what}: {e}"))
}

fn latest_key(collection: &str, shard: u32) -> Key {
    Key::from(format!("snapshots/{collection}/shard-{shard}/latest.json"))
}

fn blob_key(sha256: &str) -> Key {
    Key::from(format!("blobs/{sha256}"))
}

fn sha256_hex(bytes: &[u8]) -> String {
    let d = Sha256::digest(bytes);
    d.iter().map(|b| format!("{b:02x}")).collect()
}

impl Snapshots {
    pub fn new(o: &S3Options) -> Result<Snapshots> {
        let store = AmazonS3Builder::new()
            .with_endpoint(&o.endpoint)
            .with_bucket_name(&o.bucket)
            .with_access_key_id(&o.access_key)
            .with_secret_access_key(&o.secret_key)
            .with_region(&o.region)
            .with_allow_http(o.endpoint.starts_with("http://"))
            .with_virtual_hosted_style_request(false)
            .build()
            .map_err(|e| Error::invalid(format!("S3 settings (endpoint {:?}): {e}", o.endpoint)))?;
        Ok(Snapshots {
            store: Arc::new(store),
        })
    }

    /// Uploads the files `files` of `dir` (an export of the shard's
    /// collection) and then the manifest naming them.
    pub async fn upload(
        &self,
        dir: &Path,
        files: &[String],
        mut manifest: SnapshotManifest,
    ) -> Result<SnapshotManifest> {
        manifest.format = FORMAT;
        manifest.files.clear();
        for rel in files {
            let path = dir.join(rel);
            let bytes = tokio::fs::read(&path)
                .await
                .map_err(|e| Error::io(&path, e))?;
            let sha256 = sha256_hex(&bytes);
            let key = blob_key(&sha256);
            let size = bytes.len() as u64;
            // Content-addressed: a blob already there is this very file.
            if self.store.head(&key).await.is_err() {
                self.store
                    .put(&key, PutPayload::from(bytes))
                    .await
                    .map_err(|e| unavailable(format!("uploading {}", path.display()), e))?;
            }
            manifest.files.push(FileEntry {
                path: rel.clone(),
                size,
                sha256,
            });
        }
        let json =
            serde_json::to_vec_pretty(&manifest).map_err(|e| Error::Internal(e.to_string()))?;
        let key = latest_key(&manifest.collection, manifest.shard);
        self.store
            .put(&key, PutPayload::from(json))
            .await
            .map_err(|e| unavailable(format!("writing {key}"), e))?;
        Ok(manifest)
    }

    /// The newest snapshot of `collection`'s `shard`, if one was made.
    pub async fn latest(&self, collection: &str, shard: u32) -> Result<Option<SnapshotManifest>> {
        let key = latest_key(collection, shard);
        let bytes = match self.store.get(&key).await {
            Ok(r) => r
                .bytes()
                .await
                .map_err(|e| unavailable(format!("reading {key}"), e))?,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(unavailable(format!("reading {key}"), e)),
        };
        let m: SnapshotManifest = serde_json::from_slice(&bytes).map_err(|e| {
            Error::data_loss(
                key.to_string(),
                format!("unreadable snapshot manifest: {e}"),
            )
        })?;
        if m.format != FORMAT {
            return Err(Error::data_loss(
                key.to_string(),
                format!("snapshot format {} (this vidx reads {FORMAT})", m.format),
            ));
        }
        Ok(Some(m))
    }

    /// Downloads the files of `m` into `dest` (created), checking each one's
    /// size and SHA-256: DATA_LOSS naming the file on a mismatch.
    pub async fn download(&self, m: &SnapshotManifest, dest: &Path) -> Result<u64> {
        let mut total = 0;
        for f in &m.files {
            if f.path.contains("..") || f.path.starts_with('/') {
                return Err(Error::data_loss(
                    &f.path,
                    "snapshot names a path outside the collection",
                ));
            }
            let key = blob_key(&f.sha256);
            let bytes = self
                .store
                .get(&key)
                .await
                .map_err(|e| unavailable(format!("downloading {} ({key})", f.path), e))?
                .bytes()
                .await
                .map_err(|e| unavailable(format!("downloading {} ({key})", f.path), e))?;
            let got = sha256_hex(&bytes);
            if bytes.len() as u64 != f.size || got != f.sha256 {
                return Err(Error::data_loss(
                    &f.path,
                    format!(
                        "downloaded {} bytes with SHA-256 {got}; the snapshot says {} bytes, {}",
                        bytes.len(),
                        f.size,
                        f.sha256
                    ),
                ));
            }
            let path = dest.join(&f.path);
            tokio::task::spawn_blocking(move || {
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
                }
                crate::storage::durable::write_durably(&path, &bytes)
            })
            .await
            .map_err(|e| Error::Internal(format!("download writer failed: {e}")))??;
            total += f.size;
        }
        Ok(total)
    }
}
