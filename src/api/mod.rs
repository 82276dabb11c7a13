//! The gRPC layer: proto services assembled into a server, the RPC handlers
//! with their request validation, and the one mapping from [`crate::error::Error`]
//! to `tonic::Status`.
//!
//! May import: every layer below it (`investigate`, `collection`, `segment`,
//! `index`, `storage`, `io`) and the root modules. Never `tools` or `cli`.

pub mod hashes;
pub mod server;
pub mod service;
pub mod status;
pub mod work;
