//! The gRPC layer: proto services assembled into a server, the RPC handlers
//! with their request validation, the one mapping from [`crate::error::Error`]
//! to `tonic::Status`, per-call metrics and logs, snapshots as a server
//! takes them, and the HTTP listener for metrics and health.
//!
//! May import: every layer below it (`investigate`, `collection`, `segment`,
//! `index`, `storage`, `io`) and the root modules. Never `tools` or `cli`.

pub mod hashes;
pub mod observe;
pub mod ops;
pub mod series;
pub mod server;
pub mod service;
pub mod shared;
pub mod snapshot;
pub mod status;
