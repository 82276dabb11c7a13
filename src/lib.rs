//! vidx: a gRPC server of approximate-nearest-neighbour indexes of image and
//! face embeddings, with the investigative metadata around them, for
//! child-abuse victim identification. It stores vectors and metadata, never
//! images.
//!
//! Layers, top down: [`server`] / [`service`] (gRPC, validation, status
//! codes) → [`registry`] (name → collection) → [`collection`] (WAL + segments)
//! → [`segment`] ([`hnsw`] graph + columns) → [`distance`] (kernels).

pub mod bench;
pub mod cli;
pub mod collection;
pub mod config;
pub mod demo;
pub mod distance;
pub mod error;
pub mod filter;
pub mod format;
pub mod fsutil;
pub mod graph;
pub mod hnsw;
pub mod ingest;
pub mod link;
pub mod link_bench;
pub mod linkcli;
pub mod manifest;
pub mod npy;
pub mod pb;
pub mod registry;
pub mod sealed;
pub mod segment;
pub mod series;
pub mod server;
pub mod service;
pub mod synth;
pub mod triage;
pub mod validate;
pub mod wal;
