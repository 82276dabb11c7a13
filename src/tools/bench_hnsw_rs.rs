//! hnsw_rs, the crate vidx's first mutable segment was built on, as an
//! in-process Rust peer of `vidx bench ann --modes hnsw_rs`: same data, same
//! M and ef_construction, its own graph and search (the benchmark times and
//! sweeps it like vidx's modes). Compiled only with the cargo feature
//! `peer-hnsw-rs` (run-all.sh enables it), so ordinary builds do not pay for
//! the crate.

use crate::index::distance::Metric;

/// The hnsw_rs version the feature pins (Cargo.toml).
pub const VERSION: &str = "0.3.5";

/// A built hnsw_rs index as a search function: (query, k, ef) → row ids.
pub type Search<'a> = Box<dyn Fn(&[f32], usize, usize) -> Vec<u32> + Sync + 'a>;

#[cfg(not(feature = "peer-hnsw-rs"))]
pub fn build<'a>(
    _base: &'a [f32],
    _dim: usize,
    _metric: Metric,
    _m: usize,
    _ef_construction: usize,
) -> anyhow::Result<Search<'a>> {
    anyhow::bail!(
        "--modes hnsw_rs: this vidx was built without the hnsw_rs peer; \
         build with `cargo build --release --features peer-hnsw-rs`"
    )
}

/// Builds hnsw_rs's graph over the rows of `base` (`dim` wide) on all
/// threads (`parallel_insert_slice`), row i with id i.
#[cfg(feature = "peer-hnsw-rs")]
pub fn build<'a>(
    base: &'a [f32],
    dim: usize,
    metric: Metric,
    m: usize,
    ef_construction: usize,
) -> anyhow::Result<Search<'a>> {
    use hnsw_rs::prelude::*;

    let rows: Vec<(&[f32], usize)> = base
        .chunks_exact(dim)
        .enumerate()
        .map(|(i, v)| (v, i))
        .collect();
    // hnsw_rs's layer cap (16 is also the only value its own dump supports).
    let layers = 16;
    let n = rows.len();
    Ok(match metric {
        Metric::L2 => {
            let h = Hnsw::new(m, n, layers, ef_construction, DistL2 {});
            h.parallel_insert_slice(&rows);
            Box::new(move |q, k, ef| {
                h.search(q, k, ef)
                    .into_iter()
                    .map(|x| x.d_id as u32)
                    .collect()
            })
        }
        // Unit vectors under cosine: hnsw_rs's DistDot is 1 - a·b, vidx's rank.
        Metric::Cosine | Metric::Dot => {
            let h = Hnsw::new(m, n, layers, ef_construction, DistDot {});
            h.parallel_insert_slice(&rows);
            Box::new(move |q, k, ef| {
                h.search(q, k, ef)
                    .into_iter()
                    .map(|x| x.d_id as u32)
                    .collect()
            })
        }
    })
}
