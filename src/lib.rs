//! vidx: a gRPC server of approximate-nearest-neighbour indexes of image and
//! face embeddings, with the investigative metadata around them, for
//! child-abuse victim identification. It stores vectors and metadata, never
//! images.
//!
//! # Layers
//!
//! Each folder of `src/` is a layer; a module imports only from its own layer
//! and the layers below it, never from one above:
//!
//! ```text
//! cli          the command line, its gRPC client helpers, demo loading
//! tools        the generator and the benchmarks (`vidx gen`, `vidx bench`)
//! cluster      index nodes and routers over NATS JetStream, S3 and etcd
//! api          gRPC: server assembly, handlers, validation, Error → Status
//! investigate  linking into series, series records, triage
//! collection   registry, collection (open/recover, write, seal, merge), config
//! segment      the mutable segment and the sealed (memory-mapped) segment
//! index        distance kernels, in-memory and mapped HNSW, filters, planner
//! storage      file envelope, WAL, manifest, durable writes: bytes only
//! io           .npy and point-line files (beside storage: neither uses the other)
//! ```
//!
//! Four root modules form the vocabulary every layer shares and import
//! nothing of the crate but each other: [`pb`] (the generated protobuf
//! types), [`error`] (the crate's error type), [`validate`] (the rules a
//! name, id, vector or metadata field must satisfy, with the messages a
//! person sees) and [`metrics`] (the Prometheus instruments every layer
//! records into). Within a layer, files do not import each other in a cycle.

pub mod api;
pub mod cli;
pub mod cluster;
pub mod collection;
pub mod error;
pub mod index;
pub mod investigate;
pub mod io;
pub mod metrics;
pub mod pb;
pub mod segment;
pub mod storage;
pub mod tools;
pub mod validate;
