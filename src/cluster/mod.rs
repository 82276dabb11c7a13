//! Cluster mode: index nodes and stateless routers on top of engines that
//! already solve replication, durability and leases — NATS JetStream (the
//! log), S3 object storage (sealed segments) and etcd (shard count,
//! catalogue, liveness, one snapshot leader per shard). No consensus of
//! vidx's own. README "Cluster" has the design and its limits.
//!
//! `shard` (which shard a point belongs to), `catalog` (etcd), `log`
//! (JetStream), `snapshot` (S3), then `node` and `router`, which use them.
//!
//! Layer: above `api` (index nodes serve the ordinary service; routers the
//! same API), below `tools` and `cli`. May import `api`, `investigate`,
//! `collection`, `segment`, `index`, `storage`, `io` and the root modules.

pub mod catalog;
pub mod log;
pub mod node;
pub mod router;
pub mod shard;
pub mod snapshot;

use crate::cluster::snapshot::S3Options;

/// Where the engines are.
#[derive(Clone, Debug)]
pub struct Engines {
    /// Comma-separated `nats://host:port` of the NATS servers.
    pub nats: String,
    /// etcd endpoints (`http://host:port`).
    pub etcd: Vec<String>,
    pub s3: S3Options,
}
