//! An index node (`vidx serve --role index`): serves its shard's points
//! read-only over the ordinary API, and takes its writes from the log.
//!
//! For every collection in the catalogue it runs an *applier*: a durable
//! JetStream consumer started at the node's checkpoint + 1, whose messages
//! it applies one at a time, in stream order, keeping only its shard's
//! points, through the same `Collection::upsert` / `delete` as the single
//! process. After each message is applied (and fsynced in the local WAL) its
//! stream sequence becomes the checkpoint (`<data-dir>/cluster/<name>.seq`)
//! and the message is acknowledged. Only the message right after the
//! checkpoint is ever applied: a gap (a message lost with a dying NATS
//! connection) makes the applier re-read from the checkpoint. Writes are idempotent, so a crash
//! between applying and recording re-applies one message harmlessly.
//!
//! A node registers itself in etcd (and so receives searches from routers)
//! only once it has caught up with the log as it was when it started. The
//! node that wins its shard's election exports and uploads a snapshot every
//! `snapshot_every` applied points; a node starting without a collection
//! downloads the newest snapshot first and replays only the log after it.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use parking_lot::Mutex;
use prost::Message;
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

use crate::api::server::{self, ServerOptions};
use crate::cluster::Engines;
use crate::cluster::catalog::{Catalog, Replica};
use crate::cluster::log::{Kind, Log};
use crate::cluster::shard::shard_of;
use crate::cluster::snapshot::{SnapshotManifest, Snapshots};
use crate::collection::config::Config;
use crate::collection::registry::Registry;
use crate::collection::{Collection, StorageOptions};
use crate::error::{Error, Result};
use crate::pb;
use crate::storage::durable;

/// Points a leader applies between two snapshots, by default.
pub const DEFAULT_SNAPSHOT_EVERY: usize = 50_000;

#[derive(Clone, Debug)]
pub struct NodeOptions {
    pub node_id: String,
    pub shard: u32,
    pub shards: u32,
    pub listen: SocketAddr,
    /// The address routers dial (`host:port`); the listen address if empty.
    pub advertise: String,
    pub data_dir: PathBuf,
    pub storage: StorageOptions,
    pub server: ServerOptions,
    pub snapshot_every: usize,
    pub engines: Engines,
}

struct Node {
    opts: NodeOptions,
    registry: Arc<Registry>,
    log: Log,
    catalog: Catalog,
    snapshots: Snapshots,
    /// The etcd leader key while this node leads its shard.
    leader: Mutex<Option<Vec<u8>>>,
}

/// The node's position in a collection's stream.
#[derive(Serialize, Deserialize)]
struct Checkpoint {
    stream_seq: u64,
}

fn read_checkpoint(path: &Path) -> Result<u64> {
    match std::fs::read(path) {
        Ok(b) => serde_json::from_slice::<Checkpoint>(&b)
            .map(|c| c.stream_seq)
            .map_err(|e| Error::data_loss(path, format!("unreadable checkpoint: {e}"))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
        Err(e) => Err(Error::io(path, e)),
    }
}

fn write_checkpoint(path: &Path, stream_seq: u64) -> Result<()> {
    let json = serde_json::to_vec(&Checkpoint { stream_seq })
        .map_err(|e| Error::Internal(e.to_string()))?;
    durable::write_durably(path, &json)
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Internal(format!("worker failed: {e}")))?
}

/// Runs an index node until `shutdown` resolves.
pub async fn run(
    opts: NodeOptions,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    if opts.shard >= opts.shards {
        anyhow::bail!(
            "--shard {} is not below --shards {}",
            opts.shard,
            opts.shards
        );
    }
    let catalog = Catalog::connect(&opts.engines.etcd).await?;
    catalog.init_shards(opts.shards).await?;
    let log = Log::connect(&opts.engines.nats).await?;
    let snapshots = Snapshots::new(&opts.engines.s3)?;
    let (dir, storage) = (opts.data_dir.clone(), opts.storage.clone());
    let registry = Arc::new(blocking(move || Registry::open(&dir, storage)).await?);
    std::fs::create_dir_all(opts.data_dir.join("cluster"))?;
    let node = Arc::new(Node {
        opts: opts.clone(),
        registry: registry.clone(),
        log,
        catalog: catalog.clone(),
        snapshots,
        leader: Mutex::new(None),
    });
    let lease = catalog.keep_lease().await?;
    let listener = tokio::net::TcpListener::bind(opts.listen).await?;
    let addr = if opts.advertise.is_empty() {
        listener.local_addr()?.to_string()
    } else {
        opts.advertise.clone()
    };
    let mut sopts = opts.server.clone();
    sopts.refuse_writes = Some(format!(
        "this is cluster index node {} of shard {}: it takes writes from the log; send them to a router",
        opts.node_id, opts.shard
    ));
    let serving = tokio::spawn(server::serve(registry, listener, sopts, shutdown));
    tokio::spawn(node.clone().lead(lease));
    let collections = catalog.collections().await?;
    let mut started = BTreeSet::new();
    let mut ready = Vec::new();
    for config in collections.into_values() {
        started.insert(config.name.clone());
        ready.push(node.start_applier(config).await?);
    }
    for r in ready {
        let _ = r.await;
    }
    let me = Replica {
        node_id: opts.node_id.clone(),
        shard: opts.shard,
        addr,
    };
    catalog.register(&me, lease).await?;
    tracing::info!(node = %me.node_id, shard = me.shard, addr = %me.addr, "index node caught up and registered");
    tokio::spawn(node.clone().watch_catalog(started));
    serving.await??;
    Ok(())
}

/// Applies an UpdateMetadata message to this shard's points that exist.
/// The router checked that every id existed; one deleted since then is
/// skipped on every replica alike (the applier is a node's only writer, so
/// what exists at this point of the log is the same on all of them).
fn apply_update(
    c: &Collection,
    req: pb::UpdateMetadataRequest,
    shard: u32,
    shards: u32,
) -> Result<usize> {
    let mine: Vec<String> = req
        .ids
        .into_iter()
        .filter(|id| shard_of(id, shards) == shard)
        .collect();
    let present: Vec<String> = c.get(&mine)?.into_iter().map(|p| p.id).collect();
    if present.is_empty() {
        return Ok(0);
    }
    let set = req.set.unwrap_or_default();
    c.update_metadata(
        &present,
        |m| crate::api::series::apply_update(&set, m),
        None,
    )
}

impl Node {
    fn checkpoint_path(&self, collection: &str) -> PathBuf {
        self.opts
            .data_dir
            .join("cluster")
            .join(format!("{collection}.seq"))
    }

    /// Campaigns for the shard's leadership until it wins; it keeps it for
    /// as long as the node's lease lives.
    async fn lead(self: Arc<Self>, lease: i64) {
        loop {
            match self
                .catalog
                .campaign(self.opts.shard, &self.opts.node_id, lease)
                .await
            {
                Ok(key) => {
                    tracing::info!(node = %self.opts.node_id, shard = self.opts.shard, "leads the shard: uploads its snapshots");
                    *self.leader.lock() = Some(key);
                    return;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "shard election failed; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }

    /// Starts appliers for collections created after the node started.
    async fn watch_catalog(self: Arc<Self>, mut started: BTreeSet<String>) {
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let collections = match self.catalog.collections().await {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read the catalogue");
                    continue;
                }
            };
            for config in collections.into_values() {
                if started.contains(&config.name) {
                    continue;
                }
                let name = config.name.clone();
                match self.start_applier(config).await {
                    Ok(_) => {
                        started.insert(name);
                    }
                    Err(e) => {
                        tracing::warn!(collection = %name, error = %e, "cannot start applying; retrying")
                    }
                }
            }
        }
    }

    /// The local collection for `config`: open, restored from the newest
    /// snapshot, or created empty. Then applies its stream in a task of its
    /// own; the receiver resolves once it caught up with the log's end as
    /// of now.
    async fn start_applier(self: &Arc<Self>, config: Config) -> Result<oneshot::Receiver<()>> {
        let c = self.local_collection(&config).await?;
        let (tx, rx) = oneshot::channel();
        let node = self.clone();
        tokio::spawn(async move {
            let mut ready = Some(tx);
            loop {
                if let Err(e) = node.apply_stream(&c, &mut ready).await {
                    tracing::warn!(collection = %c.name(), error = %e, "applying the log stopped; resuming from the checkpoint");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        });
        Ok(rx)
    }

    async fn local_collection(&self, config: &Config) -> Result<Arc<Collection>> {
        match self.registry.get(&config.name) {
            Ok(c) => return Ok(c),
            Err(Error::CollectionNotFound(_)) => {}
            Err(e) => return Err(e),
        }
        let name = config.name.clone();
        let checkpoint = self.checkpoint_path(&name);
        // A checkpoint without its collection is from files that are gone.
        let _ = std::fs::remove_file(&checkpoint);
        if let Some(m) = self.snapshots.latest(&name, self.opts.shard).await? {
            return self.restore(m).await;
        }
        let registry = self.registry.clone();
        let config = config.clone();
        blocking(move || registry.create(config)).await
    }

    /// Downloads snapshot `m` into place, opens it, and sets the checkpoint
    /// to the stream sequence it holds.
    async fn restore(&self, m: SnapshotManifest) -> Result<Arc<Collection>> {
        let root = self.registry.collections_dir().to_path_buf();
        let tmp = root.join(format!(".restoring-{}", m.collection));
        if tmp.exists() {
            std::fs::remove_dir_all(&tmp).map_err(|e| Error::io(&tmp, e))?;
        }
        let started = std::time::Instant::now();
        let bytes = self.snapshots.download(&m, &tmp).await?;
        let dest = root.join(&m.collection);
        std::fs::rename(&tmp, &dest).map_err(|e| Error::io(&dest, e))?;
        let registry = self.registry.clone();
        let name = m.collection.clone();
        let c = blocking(move || registry.adopt(&name)).await?;
        write_checkpoint(&self.checkpoint_path(&m.collection), m.stream_seq)?;
        tracing::info!(
            collection = %m.collection, shard = m.shard, stream_seq = m.stream_seq, files = m.files.len(),
            bytes, points = c.len(), from = %m.node_id, elapsed_ms = started.elapsed().as_millis() as u64,
            "restored from object storage"
        );
        Ok(c)
    }

    /// Applies the collection's stream from the checkpoint on, until the
    /// consumer fails (then the caller starts again from the checkpoint).
    async fn apply_stream(
        &self,
        c: &Arc<Collection>,
        ready: &mut Option<oneshot::Sender<()>>,
    ) -> Result<()> {
        let name = c.name().to_string();
        let path = self.checkpoint_path(&name);
        let mut applied = read_checkpoint(&path)?;
        let target = self.log.last_seq(&name).await?;
        let durable = format!("{}-{}", self.opts.node_id, name);
        let consumer = self.log.consumer(&name, &durable, applied + 1).await?;
        let mut messages = consumer
            .messages()
            .await
            .map_err(|e| Error::Unavailable(format!("NATS JetStream: reading {name}: {e}")))?;
        tracing::info!(collection = %name, from = applied + 1, log_end = target, "applying the log");
        let mut since_snapshot = 0usize;
        loop {
            if applied >= target
                && let Some(tx) = ready.take()
            {
                let _ = tx.send(());
            }
            let Some(m) = messages.next().await else {
                return Err(Error::Unavailable(format!(
                    "NATS JetStream: the stream of {name} ended"
                )));
            };
            let m =
                m.map_err(|e| Error::Unavailable(format!("NATS JetStream: reading {name}: {e}")))?;
            let seq = m
                .info()
                .map_err(|e| {
                    Error::Unavailable(format!(
                        "NATS JetStream: message of {name} without info: {e}"
                    ))
                })?
                .stream_sequence;
            // The log has no gaps, so a message past the next one means the
            // next one was delivered into a connection that died (seen when
            // a NATS server is killed): read again from the checkpoint
            // rather than apply out of order.
            if seq > applied + 1 {
                return Err(Error::Unavailable(format!(
                    "NATS JetStream: {name} delivered #{seq} while #{} is next; re-reading from the checkpoint",
                    applied + 1
                )));
            }
            // A redelivery of something already applied is acknowledged only.
            if seq == applied + 1 {
                since_snapshot += self.apply_message(c, &m.subject, m.payload.clone()).await?;
                let p = path.clone();
                blocking(move || write_checkpoint(&p, seq)).await?;
                applied = seq;
            }
            m.ack().await.map_err(|e| {
                Error::Unavailable(format!("NATS JetStream: acknowledging {name} #{seq}: {e}"))
            })?;
            if since_snapshot >= self.opts.snapshot_every && self.leader.lock().is_some() {
                match self.snapshot(c, applied).await {
                    Ok(()) => since_snapshot = 0,
                    Err(e) => {
                        tracing::warn!(collection = %name, error = %e, "snapshot failed; will retry")
                    }
                }
            }
        }
    }

    /// Applies one log message's points of this shard; returns how many.
    /// A batch the collection refuses is refused by every replica alike
    /// (the same code judges the same bytes), so it is logged and skipped.
    async fn apply_message(
        &self,
        c: &Arc<Collection>,
        subject: &str,
        payload: Bytes,
    ) -> Result<usize> {
        let (shard, shards) = (self.opts.shard, self.opts.shards);
        let c = c.clone();
        let subject = subject.to_string();
        blocking(move || {
            let r = match Kind::of_subject(&subject) {
                Some(Kind::Upsert) => {
                    let req = pb::UpsertRequest::decode(payload)
                        .map_err(|e| Error::Internal(format!("log message on {subject}: {e}")))?;
                    let mine: Vec<pb::Point> =
                        req.points.into_iter().filter(|p| shard_of(&p.id, shards) == shard).collect();
                    if mine.is_empty() { Ok(0) } else { c.upsert(mine) }
                }
                Some(Kind::Delete) => {
                    let req = pb::DeleteRequest::decode(payload)
                        .map_err(|e| Error::Internal(format!("log message on {subject}: {e}")))?;
                    let mine: Vec<String> = req.ids.into_iter().filter(|id| shard_of(id, shards) == shard).collect();
                    c.delete(mine).map(|_| 0)
                }
                Some(Kind::Update) => {
                    let req = pb::UpdateMetadataRequest::decode(payload)
                        .map_err(|e| Error::Internal(format!("log message on {subject}: {e}")))?;
                    apply_update(&c, req, shard, shards)
                }
                None => Ok(0),
            };
            match r {
                Err(e @ (Error::InvalidArgument(_) | Error::ResourceExhausted(_))) => {
                    tracing::error!(collection = %c.name(), %subject, error = %e, "log message refused; skipped");
                    Ok(0)
                }
                other => other,
            }
        })
        .await
    }

    /// Exports the collection as of stream sequence `seq` and uploads it,
    /// if this node still leads its shard and the store has nothing newer.
    async fn snapshot(&self, c: &Arc<Collection>, seq: u64) -> Result<()> {
        let Some(key) = self.leader.lock().clone() else {
            return Ok(());
        };
        if !self.catalog.still_leads(self.opts.shard, &key).await? {
            tracing::warn!(
                shard = self.opts.shard,
                "lost the shard's leadership; no more snapshots"
            );
            *self.leader.lock() = None;
            return Ok(());
        }
        let name = c.name().to_string();
        if let Some(prev) = self.snapshots.latest(&name, self.opts.shard).await?
            && prev.stream_seq >= seq
        {
            return Ok(());
        }
        let started = std::time::Instant::now();
        let staging = self
            .opts
            .data_dir
            .join("cluster")
            .join(format!("export-{name}"));
        if staging.exists() {
            std::fs::remove_dir_all(&staging).map_err(|e| Error::io(&staging, e))?;
        }
        let (c2, dest) = (c.clone(), staging.clone());
        let files = blocking(move || c2.export_sealed(&dest)).await?;
        let manifest = SnapshotManifest {
            format: 0,
            collection: name.clone(),
            shard: self.opts.shard,
            stream_seq: seq,
            node_id: self.opts.node_id.clone(),
            files: Vec::new(),
        };
        let m = self.snapshots.upload(&staging, &files, manifest).await?;
        let _ = std::fs::remove_dir_all(&staging);
        let bytes: u64 = m.files.iter().map(|f| f.size).sum();
        tracing::info!(collection = %name, shard = m.shard, stream_seq = seq, files = m.files.len(), bytes,
            elapsed_ms = started.elapsed().as_millis() as u64, "snapshot uploaded");
        Ok(())
    }
}
