//! The generator and the benchmark commands: synthetic data with planted
//! structure and ground truth (`vidx gen`), the ANN benchmark (`vidx bench
//! ann|filter`), the linking benchmark (`vidx bench link`), the PDQ hash
//! benchmark (`vidx bench pdq`) and the security overhead benchmark
//! (`vidx bench security`). They are plain library code; their
//! command-line arguments live in `cli`.
//!
//! May import: every layer but `cli`.

pub mod bench_ann;
pub mod bench_grid;
pub mod bench_hnsw_rs;
pub mod bench_link;
pub mod bench_pdq;
pub mod bench_secure;
pub mod bench_triage;
pub mod link_eval;
pub mod memory;
pub mod reference;
pub mod synth;
