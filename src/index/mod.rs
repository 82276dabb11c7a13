//! Search structures: the distance kernels, vidx's own in-memory HNSW graph,
//! the memory-mapped HNSW graph of a sealed segment, metadata filters and the
//! planner that picks between a graph walk and an exact scan; for binary
//! codes (perceptual hashes), Hamming kernels and the multi-index.
//!
//! May import: `storage` and the root modules.

pub mod distance;
pub mod f16vec;
pub mod filter;
pub mod hamming;
pub mod hnsw;
pub mod hnsw_mapped;
pub mod mih;
pub mod planner;
pub mod quant;
