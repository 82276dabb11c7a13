//! The gRPC layer: proto services assembled into a server (TLS), the gate
//! every call passes (identity, role, limits, audit: `guard`), the RPC
//! handlers with their request validation, ownership and visibility, the one
//! mapping from [`crate::error::Error`] to `tonic::Status`, per-call metrics
//! and logs, snapshots as a server takes them, and the HTTP listener for
//! metrics and health.
//!
//! May import: every layer below it (`investigate`, `collection`, `segment`,
//! `index`, `storage`, `io`) and the root modules. Never `tools` or `cli`.

pub mod access;
pub mod admin;
pub mod client;
pub mod guard;
pub mod hashes;
pub mod limits;
pub mod linking;
pub mod observe;
pub mod ops;
pub mod owner;
pub mod series;
pub mod server;
pub mod service;
pub mod shared;
pub mod snapshot;
pub mod status;
pub mod tokens;
