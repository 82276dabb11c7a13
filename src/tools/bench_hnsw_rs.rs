//! hnsw_rs, the crate vidx's first mutable segment was built on, as an
//! in-process Rust peer of `vidx bench ann --modes hnsw_rs`: same data, same
//! M and ef_construction, its own graph and search. Compiled only with the
//! cargo feature `peer-hnsw-rs` (run-all.sh enables it), so ordinary builds
//! do not pay for the crate.

use crate::tools::bench_ann::{AnnOptions, Dataset, Report, ReportBase};

#[cfg(not(feature = "peer-hnsw-rs"))]
pub(crate) fn run(_d: &Dataset, _a: &AnnOptions, _base: ReportBase) -> anyhow::Result<Report> {
    anyhow::bail!(
        "--modes hnsw_rs: this vidx was built without the hnsw_rs peer; \
         build with `cargo build --release --features peer-hnsw-rs`"
    )
}

#[cfg(feature = "peer-hnsw-rs")]
pub(crate) fn run(d: &Dataset, a: &AnnOptions, base: ReportBase) -> anyhow::Result<Report> {
    use hnsw_rs::prelude::*;

    use crate::index::distance::Metric;
    use crate::tools::bench_ann::{current_rss, peak_rss, sweep};

    eprintln!(
        "mode hnsw_rs (the hnsw_rs crate's graph and search, in process; m {}, ef_construction {})",
        a.m, a.ef_construction
    );
    let before = current_rss();
    let t = std::time::Instant::now();
    // Unit vectors under cosine: hnsw_rs's DistDot is 1 - a·b, vidx's rank.
    let rows: Vec<(&[f32], usize)> = (0..d.n()).map(|i| (d.row(i), i)).collect();
    let layers = 16;
    macro_rules! measured {
        ($dist:expr) => {{
            let h = Hnsw::new(a.m, d.n(), layers, a.ef_construction, $dist);
            h.parallel_insert_slice(&rows);
            let build_s = t.elapsed().as_secs_f64();
            let held = current_rss().saturating_sub(before);
            eprintln!(
                "hnsw_rs built in {build_s:.1} s ({:.0} inserts/s)",
                d.n() as f64 / build_s
            );
            let k = a.k;
            let points = sweep(d, a, &|q, ef| {
                h.search(q, k, ef)
                    .into_iter()
                    .map(|n| n.d_id as u32)
                    .collect()
            });
            (build_s, held, points)
        }};
    }
    let (build_s, held, points) = match d.metric {
        Metric::L2 => measured!(DistL2 {}),
        Metric::Cosine | Metric::Dot => measured!(DistDot {}),
    };
    Ok(base.report(
        "hnsw_rs",
        "0.3.5",
        serde_json::json!({"seconds": build_s, "inserts_per_s": d.n() as f64 / build_s, "threads": base.threads}),
        serde_json::json!({"peak_rss_bytes": peak_rss(), "baseline_rss_bytes": base.baseline_rss,
            "serving_rss_bytes": held, "hot_bytes_per_vector": held as f64 / d.n() as f64}),
        0,
        points,
        "hnsw_rs 0.3.5 in process (parallel_insert_slice on all threads, search one query per call); serving RSS: RSS added by its build (its own copy of every vector and its links)".into(),
    ))
}
