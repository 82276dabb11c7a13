//! vidx's integration tests, as one test binary (one link instead of one per
//! file): real servers on loopback ports, real clients, real files.
//!
//! Run one area with `cargo test --release --test it <module>::`, e.g.
//! `cargo test --release --test it storage::`.

mod support;

mod api;
mod audit;
mod bad_input;
mod cli;
mod crash;
mod defects;
mod faults;
mod filters;
mod hash_security;
mod hashes;
mod layers;
mod lifecycle;
mod link;
mod npy_files;
mod ops;
mod parsers;
mod recall;
mod recovery;
mod security;
mod series;
mod snapshot;
mod storage;
mod stored_formats;
mod sweep;
