//! `vidx bench ann` and `vidx bench filter`.
//!
//! `bench ann` is the recall-vs-speed harness users compare vidx with FAISS,
//! hnswlib and USearch by.
//!
//! For one dataset it builds the index and sweeps `ef`, reporting for each
//! point recall@k against exact ground truth, QPS on one thread and on all
//! cores, p50/p99 latency, plus build time, inserts/s, peak RSS and bytes on
//! disk, in three modes:
//!
//! - `mutable`: in-process search of the mutable segment (vidx's HNSW);
//! - `sealed`: in-process search of the same graph sealed to memory-mapped
//!   files (vidx's own search routine);
//! - `grpc`: end to end through a server on loopback serving that sealed
//!   segment: batched queries from several concurrent clients, and single
//!   queries from one client for latency.
//!
//! Results are JSON files (`vidx-<mode>.json`) in the schema that
//! `benches/peers/run_peers.py` writes for the peers, so
//! `benches/peers/compare.py` can put them side by side. `--export` writes
//! the dataset (`base.npy`, `query.npy`, `gt.npy`, `meta.json`) for the peers
//! to read exactly the same vectors and ground truth.
//!
//! `bench filter` builds one generated set whose points carry tags planted
//! at 50%, 10%, 1% and 0.1% selectivity and prints, for the mutable and the
//! sealed segment, recall and one-thread QPS of search filtered to each (and
//! by a filter no point passes) beside unfiltered search.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;
use rayon::prelude::*;
use serde::Serialize;

use crate::collection::config::{Config, Kind};
use crate::collection::{Collection, StorageOptions};
use crate::index::distance::Metric;
use crate::index::f16vec::VectorStorage;
use crate::index::filter::Filter;
use crate::index::quant::Quantization;
use crate::pb;
use crate::segment::mutable::{MutableSegment, Prepared};
use crate::segment::sealed::Layout;
use crate::segment::sealed::SealedSegment;

/// Options of `vidx bench ann` (its flags are in `cli::tools`).
#[derive(Debug, Clone)]
pub struct AnnOptions {
    /// `image` (clustered unit vectors, cosine), `sift` (128-d, non-negative,
    /// L2), or a file of base vectors: `.npy` or `.fvecs`.
    pub dataset: String,
    /// Query vectors for a file dataset (`.npy` or `.fvecs`).
    pub queries_file: Option<PathBuf>,
    /// Ground truth for a file dataset (`.ivecs`); computed exactly if absent.
    pub gt_file: Option<PathBuf>,
    /// Metric of a file dataset.
    pub metric: String,
    /// Points of a generated dataset (a file dataset keeps its own count
    /// unless this is smaller).
    pub n: usize,
    /// Queries (held out, same distribution as the base).
    pub queries: usize,
    /// Dimension of the `image` dataset (`sift` is always 128).
    pub dim: usize,
    pub k: usize,
    pub m: usize,
    pub ef_construction: usize,
    /// The ef sweep.
    pub efs: Vec<usize>,
    /// Which modes to run.
    pub modes: Vec<String>,
    /// Concurrent gRPC clients for the batched throughput run.
    pub clients: usize,
    /// Queries per gRPC request in the batched run.
    pub batch: usize,
    pub seed: u64,
    /// Write the dataset here (base.npy, query.npy, gt.npy, meta.json).
    pub export: Option<PathBuf>,
    /// Write vidx-<mode>.json here.
    pub out: Option<PathBuf>,
    /// Scratch directory for the sealed segment (default: a temp dir).
    pub work_dir: Option<PathBuf>,
}

/// A dataset in memory: row-major base and query vectors, exact neighbours.
pub struct Dataset {
    pub name: String,
    pub metric: Metric,
    pub dim: usize,
    pub base: Vec<f32>,
    pub query: Vec<f32>,
    /// Per query, the exact nearest base rows (ascending distance).
    pub gt: Vec<Vec<u32>>,
}

impl Dataset {
    pub fn n(&self) -> usize {
        self.base.len() / self.dim
    }
    pub fn nq(&self) -> usize {
        self.query.len() / self.dim
    }
    pub fn row(&self, i: usize) -> &[f32] {
        &self.base[i * self.dim..(i + 1) * self.dim]
    }
    pub fn q(&self, i: usize) -> &[f32] {
        &self.query[i * self.dim..(i + 1) * self.dim]
    }
}

/// A clustered unit vector like an image embedding of a series: ~100 rows
/// per centre at cosine ~0.6 to it. Deterministic per (seed, row).
pub fn image_vector(seed: u64, row: usize, dim: usize, centres: usize) -> Vec<f32> {
    let c = (row.wrapping_mul(7919)) % centres.max(1);
    let mut crng = ChaCha8Rng::seed_from_u64(seed ^ (c as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
    let mut rng = ChaCha8Rng::seed_from_u64(
        seed.wrapping_add(1_000_003u64.wrapping_mul(row as u64))
            .wrapping_add(17),
    );
    let mut v: Vec<f32> = (0..dim)
        .map(|_| crng.sample::<f32, _>(StandardNormal) + 1.3 * rng.sample::<f32, _>(StandardNormal))
        .collect();
    Metric::Cosine.prepare(&mut v);
    v
}

/// A SIFT-like descriptor: 128 non-negative integer-valued components around
/// one of `centres` cluster centres.
fn sift_vector(seed: u64, row: usize, centres: usize) -> Vec<f32> {
    let c = (row.wrapping_mul(7919)) % centres.max(1);
    let mut crng = ChaCha8Rng::seed_from_u64(seed ^ (c as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
    let mut rng = ChaCha8Rng::seed_from_u64(
        seed.wrapping_add(1_000_003u64.wrapping_mul(row as u64))
            .wrapping_add(29),
    );
    (0..128)
        .map(|_| {
            let centre = (crng.sample::<f32, _>(StandardNormal) * 30.0).abs();
            (centre + 12.0 * rng.sample::<f32, _>(StandardNormal))
                .clamp(0.0, 255.0)
                .round()
        })
        .collect()
}

fn generate(a: &AnnOptions) -> Dataset {
    let total = a.n + a.queries;
    let (name, metric, dim, rows): (String, Metric, usize, Vec<f32>) = if a.dataset == "sift" {
        let centres = (a.n / 100).max(1);
        let rows = (0..total)
            .into_par_iter()
            .flat_map_iter(|i| sift_vector(a.seed, i, centres))
            .collect();
        (format!("sift-128-l2-{}", a.n), Metric::L2, 128, rows)
    } else {
        let centres = (a.n / 100).max(1);
        let rows = (0..total)
            .into_par_iter()
            .flat_map_iter(|i| image_vector(a.seed, i, a.dim, centres))
            .collect();
        (
            format!("image-{}-cosine-{}", a.dim, a.n),
            Metric::Cosine,
            a.dim,
            rows,
        )
    };
    let mut base = rows;
    let query = base.split_off(a.n * dim);
    Dataset {
        name,
        metric,
        dim,
        base,
        query,
        gt: Vec::new(),
    }
}

/// Reads `.fvecs` (TEXMEX: per vector an i32 dimension then that many f32).
pub fn read_fvecs(path: &Path) -> anyhow::Result<(usize, Vec<f32>)> {
    let bytes = read_all(path)?;
    let (dim, rows) = vecs_layout(&bytes, path)?;
    let mut out = Vec::with_capacity(rows * dim);
    for r in 0..rows {
        let start = r * (4 + 4 * dim) + 4;
        out.extend(
            bytes[start..start + 4 * dim]
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
        );
    }
    Ok((dim, out))
}

/// Reads `.ivecs` (same layout, i32 values) as rows of ids.
pub fn read_ivecs(path: &Path) -> anyhow::Result<Vec<Vec<u32>>> {
    let bytes = read_all(path)?;
    let (dim, rows) = vecs_layout(&bytes, path)?;
    Ok((0..rows)
        .map(|r| {
            let start = r * (4 + 4 * dim) + 4;
            bytes[start..start + 4 * dim]
                .chunks_exact(4)
                .map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as u32)
                .collect()
        })
        .collect())
}

fn read_all(path: &Path) -> anyhow::Result<Vec<u8>> {
    let mut f = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut b = Vec::new();
    f.read_to_end(&mut b)
        .with_context(|| format!("reading {}", path.display()))?;
    Ok(b)
}

fn vecs_layout(bytes: &[u8], path: &Path) -> anyhow::Result<(usize, usize)> {
    if bytes.len() < 4 {
        bail!("{}: empty or truncated", path.display());
    }
    let dim = i32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
    if dim <= 0 || dim > 65_536 {
        bail!(
            "{}: first vector has dimension {dim}; not an .fvecs/.ivecs file?",
            path.display()
        );
    }
    let dim = dim as usize;
    let stride = 4 + 4 * dim;
    if !bytes.len().is_multiple_of(stride) {
        bail!(
            "{}: {} bytes is not a whole number of {dim}-d vectors",
            path.display(),
            bytes.len()
        );
    }
    let rows = bytes.len() / stride;
    for r in 0..rows {
        let d = i32::from_le_bytes(
            bytes[r * stride..r * stride + 4]
                .try_into()
                .expect("4 bytes"),
        );
        if d as usize != dim {
            bail!(
                "{}: vector {r} has dimension {d}, the first has {dim}",
                path.display()
            );
        }
    }
    Ok((dim, rows))
}

fn read_vectors(path: &Path) -> anyhow::Result<(usize, Vec<f32>)> {
    match path.extension().and_then(|e| e.to_str()) {
        Some("npy") => {
            let m = crate::io::npy::read_matrix(path)?;
            Ok((m.cols, m.data))
        }
        Some("fvecs") => read_fvecs(path),
        Some("hdf5") | Some("h5") => bail!(
            "{}: read ann-benchmarks .hdf5 files by converting them first: \
             python benches/peers/hdf5_to_npy.py FILE OUTDIR (writes base.npy, query.npy, gt.npy)",
            path.display()
        ),
        _ => bail!("{}: give a .npy or .fvecs file", path.display()),
    }
}

fn load_file(a: &AnnOptions) -> anyhow::Result<Dataset> {
    let base_path = PathBuf::from(&a.dataset);
    let (dim, mut base) = read_vectors(&base_path)?;
    let (qdim, mut query) = match &a.queries_file {
        Some(qp) => read_vectors(qp)?,
        None => {
            if a.gt_file.is_some() {
                bail!(
                    "--gt-file needs --queries-file (held-out queries have no given ground truth)"
                );
            }
            hold_out(&mut base, dim, a.queries)
        }
    };
    if qdim != dim {
        bail!("queries are {qdim}-d, base vectors {dim}-d");
    }
    let metric = match a.metric.as_str() {
        "cosine" => Metric::Cosine,
        "l2" => Metric::L2,
        "dot" => Metric::Dot,
        m => bail!("--metric {m}: use cosine, l2 or dot"),
    };
    let n_file = base.len() / dim;
    let n = n_file.min(a.n.max(1));
    base.truncate(n * dim);
    query.truncate(a.queries.min(query.len() / dim) * dim);
    if metric == Metric::Cosine {
        base.par_chunks_mut(dim).for_each(|v| metric.prepare(v));
        query.par_chunks_mut(dim).for_each(|v| metric.prepare(v));
    }
    let mut gt = Vec::new();
    if let Some(g) = &a.gt_file {
        if n < n_file {
            bail!("--gt-file is for the full {n_file} points; drop --n or the ground truth");
        }
        gt = read_ivecs(g)?;
        gt.truncate(query.len() / dim);
    }
    let stem = base_path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("file");
    Ok(Dataset {
        name: format!("{stem}-{n}"),
        metric,
        dim,
        base,
        query,
        gt,
    })
}

/// Without a query file, `wanted` rows (at most a tenth of them), evenly
/// spaced, leave the base to become the queries: a real set's own rows as
/// queries, each answered by the rest.
fn hold_out(base: &mut Vec<f32>, dim: usize, wanted: usize) -> (usize, Vec<f32>) {
    let n = base.len() / dim.max(1);
    let q = wanted.min(n / 10).max(1).min(n);
    let stride = n / q;
    let mut kept = Vec::with_capacity(base.len());
    let mut query = Vec::with_capacity(q * dim);
    for (i, row) in base.chunks_exact(dim).enumerate() {
        if i % stride == stride / 2 && query.len() < q * dim {
            query.extend_from_slice(row);
        } else {
            kept.extend_from_slice(row);
        }
    }
    *base = kept;
    (dim, query)
}

/// Exact k nearest neighbours of every query, by brute force on all cores.
pub fn ground_truth(d: &Dataset, k: usize) -> Vec<Vec<u32>> {
    (0..d.nq())
        .into_par_iter()
        .map(|qi| {
            let q = d.q(qi);
            let mut all: Vec<(u32, f32)> = d
                .base
                .chunks_exact(d.dim)
                .enumerate()
                .map(|(i, v)| (i as u32, d.metric.rank(q, v)))
                .collect();
            crate::index::planner::top_k(&mut all, k);
            all.into_iter().map(|(i, _)| i).collect()
        })
        .collect()
}

fn export(d: &Dataset, dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    crate::io::npy::write_matrix(
        &dir.join("base.npy"),
        d.n(),
        d.dim,
        &d.base,
        crate::io::npy::Dtype::F32,
    )?;
    crate::io::npy::write_matrix(
        &dir.join("query.npy"),
        d.nq(),
        d.dim,
        &d.query,
        crate::io::npy::Dtype::F32,
    )?;
    let cols = d.gt.first().map_or(0, Vec::len);
    let flat: Vec<i32> =
        d.gt.iter()
            .flat_map(|r| r.iter().take(cols).map(|&x| x as i32))
            .collect();
    crate::io::npy::write_i32_matrix(&dir.join("gt.npy"), d.nq(), cols, &flat)?;
    let meta = serde_json::json!({
        "name": d.name,
        "metric": metric_name(d.metric),
        "n": d.n(),
        "dim": d.dim,
        "queries": d.nq(),
    });
    std::fs::write(dir.join("meta.json"), serde_json::to_vec_pretty(&meta)?)?;
    Ok(())
}

fn metric_name(m: Metric) -> &'static str {
    match m {
        Metric::Cosine => "cosine",
        Metric::L2 => "l2",
        Metric::Dot => "dot",
        Metric::Hamming => "hamming",
    }
}

#[derive(Serialize, Clone)]
pub struct Point {
    pub ef: usize,
    pub recall: f64,
    pub qps_1t: f64,
    pub qps_all: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

#[derive(Serialize)]
struct Report {
    engine: String,
    version: String,
    dataset: serde_json::Value,
    params: serde_json::Value,
    build: serde_json::Value,
    memory: serde_json::Value,
    disk_bytes: u64,
    points: Vec<Point>,
    notes: String,
}

fn recall(got: &[Vec<u32>], gt: &[Vec<u32>], k: usize) -> f64 {
    let mut hit = 0usize;
    for (g, t) in got.iter().zip(gt) {
        let t = &t[..k.min(t.len())];
        hit += g.iter().take(k).filter(|x| t.contains(x)).count();
    }
    hit as f64 / (got.len() * k) as f64
}

fn percentile(sorted_ms: &[f64], p: f64) -> f64 {
    if sorted_ms.is_empty() {
        return 0.0;
    }
    let i = ((sorted_ms.len() as f64 - 1.0) * p).round() as usize;
    sorted_ms[i]
}

/// Sweeps ef with an in-process search function: one thread (latency), then
/// all cores (throughput).
fn sweep(
    d: &Dataset,
    a: &AnnOptions,
    search: &(dyn Fn(&[f32], usize) -> Vec<u32> + Sync),
) -> Vec<Point> {
    let mut points = Vec::new();
    for &ef in &a.efs {
        let ef = ef.max(a.k);
        // Warm-up: page in what the queries touch.
        for qi in 0..d.nq().min(100) {
            std::hint::black_box(search(d.q(qi), ef));
        }
        let mut lat = Vec::with_capacity(d.nq());
        let mut got = Vec::with_capacity(d.nq());
        let t = Instant::now();
        for qi in 0..d.nq() {
            let s = Instant::now();
            got.push(search(d.q(qi), ef));
            lat.push(s.elapsed().as_secs_f64() * 1e3);
        }
        let qps_1t = d.nq() as f64 / t.elapsed().as_secs_f64();
        let t = Instant::now();
        let par: Vec<Vec<u32>> = (0..d.nq())
            .into_par_iter()
            .map(|qi| search(d.q(qi), ef))
            .collect();
        let qps_all = d.nq() as f64 / t.elapsed().as_secs_f64();
        std::hint::black_box(par);
        lat.sort_by(f64::total_cmp);
        let p = Point {
            ef,
            recall: recall(&got, &d.gt, a.k),
            qps_1t,
            qps_all,
            p50_ms: percentile(&lat, 0.5),
            p99_ms: percentile(&lat, 0.99),
        };
        eprintln!(
            "  ef {:>4}: recall@{} {:.4}  {:>8.0} QPS (1 thread)  {:>8.0} QPS (all)  p50 {:.3} ms  p99 {:.3} ms",
            p.ef, a.k, p.recall, p.qps_1t, p.qps_all, p.p50_ms, p.p99_ms
        );
        points.push(p);
    }
    points
}

/// Peak resident set of this process (VmHWM), bytes.
pub fn peak_rss() -> u64 {
    proc_status_kb("VmHWM:") * 1024
}

/// Current resident set (VmRSS), bytes.
pub fn current_rss() -> u64 {
    proc_status_kb("VmRSS:") * 1024
}

fn proc_status_kb(key: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(key))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// Every mode `vidx bench ann` knows: vidx's segments (`sealed-sq8` etc.
/// search a sealed segment with those codes; `-f16` ones store its vectors
/// as f16), gRPC end to end over the f32 or the SQ8 segment, and hnsw_rs,
/// the crate vidx started from, as an in-process Rust peer (cargo feature
/// `peer-hnsw-rs`).
pub const MODES: [&str; 9] = [
    "mutable",
    "sealed",
    "sealed-sq8",
    "sealed-sq4",
    "sealed-f16",
    "sealed-sq8-f16",
    "grpc",
    "grpc-sq8",
    "hnsw_rs",
];

/// The segment layout a sealed or gRPC mode searches.
fn mode_layout(mode: &str) -> Option<Layout> {
    let (quant, storage) = match mode {
        "sealed" | "grpc" => (Quantization::None, VectorStorage::F32),
        "sealed-sq8" | "grpc-sq8" => (Quantization::Sq8, VectorStorage::F32),
        "sealed-sq4" => (Quantization::Sq4, VectorStorage::F32),
        "sealed-f16" => (Quantization::None, VectorStorage::F16),
        "sealed-sq8-f16" => (Quantization::Sq8, VectorStorage::F16),
        _ => return None,
    };
    Some(Layout { quant, storage })
}

pub fn run(a: AnnOptions) -> anyhow::Result<()> {
    check_options(&a)?;
    let d = load_dataset(&a)?;
    let threads = rayon::current_num_threads();
    let mut ctx = RunFigures {
        dataset: serde_json::json!({"name": d.name, "metric": metric_name(d.metric), "n": d.n(), "dim": d.dim, "queries": d.nq()}),
        params: serde_json::json!({"m": a.m, "ef_construction": a.ef_construction, "k": a.k, "threads": threads}),
        threads,
        baseline_rss: current_rss(),
        ..Default::default()
    };
    let has = |m: &str| a.modes.iter().any(|x| x == m);
    let mut reports = Vec::new();
    // hnsw_rs first, on its own: its graph is gone before vidx builds.
    if has("hnsw_rs") {
        reports.push(hnsw_rs_mode(&d, &a, &ctx)?);
    }
    let wanted: Vec<Mode> = a.modes.iter().filter_map(|m| Mode::of(m)).collect();
    if wanted.is_empty() {
        return finish(&a, reports);
    }
    let seg = build(&d, &a, &mut ctx);
    ctx.rss_after_build = current_rss();
    // Keeps a temp dir alive for the run when no --work-dir is given.
    let (work_dir, _keep) = work_dir(&a)?;
    let mut quants: Vec<Layout> = wanted.iter().filter_map(|m| m.quant).collect();
    quants.sort_by_key(|q| (q.quant.tag(), q.storage == VectorStorage::F16));
    quants.dedup();
    let mut sealed_dirs = Vec::new();
    for q in quants {
        sealed_dirs.push((q, seal(&d, &a, &seg, &work_dir, q, &mut ctx)?));
    }
    if has("mutable") {
        reports.push(mutable_mode(&d, &a, &seg, &ctx));
    }
    drop(seg);
    for (q, sdir) in &sealed_dirs {
        if wanted.iter().any(|m| m.sealed && m.quant == Some(*q)) {
            reports.push(sealed_mode(&d, &a, sdir, *q, &ctx)?);
        }
    }
    for (q, _) in &sealed_dirs {
        if wanted.iter().any(|m| !m.sealed && m.quant == Some(*q)) {
            reports.push(grpc_mode(&d, &a, &work_dir, *q, &ctx)?);
        }
    }
    finish(&a, reports)
}

/// hnsw_rs, the crate vidx started from, as an in-process peer: its build
/// on all threads and its search, swept like vidx's modes (see
/// [`crate::tools::bench_hnsw_rs`]).
fn hnsw_rs_mode(d: &Dataset, a: &AnnOptions, ctx: &RunFigures) -> anyhow::Result<Report> {
    eprintln!(
        "mode hnsw_rs (the hnsw_rs crate's graph and search, in process; m {}, ef_construction {})",
        a.m, a.ef_construction
    );
    let before = current_rss();
    let t = Instant::now();
    let search =
        crate::tools::bench_hnsw_rs::build(&d.base, d.dim, d.metric, a.m, a.ef_construction)?;
    let build_s = t.elapsed().as_secs_f64();
    let held = current_rss().saturating_sub(before);
    eprintln!(
        "hnsw_rs built in {build_s:.1} s ({:.0} inserts/s)",
        d.n() as f64 / build_s
    );
    let k = a.k;
    let points = sweep(d, a, &|q, ef| search(q, k, ef));
    drop(search);
    let mut r = ctx.report_base().report(
        "hnsw_rs",
        serde_json::json!({"seconds": build_s, "inserts_per_s": d.n() as f64 / build_s, "threads": ctx.threads}),
        serde_json::json!({"peak_rss_bytes": peak_rss(), "baseline_rss_bytes": ctx.baseline_rss,
            "serving_rss_bytes": held, "hot_bytes_per_vector": held as f64 / d.n() as f64}),
        0,
        points,
        "hnsw_rs in process (parallel_insert_slice on all threads, search one query per call); serving RSS: RSS added by its build (its own copy of every vector and its links)".into(),
    );
    r.version = crate::tools::bench_hnsw_rs::VERSION.into();
    Ok(r)
}

/// A vidx mode: sealed in process or gRPC, over which segment layout; the
/// mutable mode has none.
struct Mode {
    quant: Option<Layout>,
    sealed: bool,
}

impl Mode {
    fn of(name: &str) -> Option<Mode> {
        match name {
            "mutable" => Some(Mode {
                quant: None,
                sealed: false,
            }),
            "hnsw_rs" => None,
            m => Some(Mode {
                quant: mode_layout(m),
                sealed: m.starts_with("sealed"),
            }),
        }
    }
}

/// Writes every report and prints the summary.
fn finish(a: &AnnOptions, reports: Vec<Report>) -> anyhow::Result<()> {
    if let Some(out) = &a.out {
        std::fs::create_dir_all(out)?;
        for r in &reports {
            let p = out.join(format!("{}.json", r.engine));
            std::fs::write(&p, serde_json::to_vec_pretty(r)?)?;
            eprintln!("wrote {}", p.display());
        }
    }
    print_summary(&reports, a.k);
    Ok(())
}

fn check_options(a: &AnnOptions) -> anyhow::Result<()> {
    if a.k == 0 || a.efs.is_empty() || a.queries == 0 || a.n == 0 {
        bail!("--k, --efs, --queries and --n must be non-empty / positive");
    }
    for m in &a.modes {
        if !MODES.contains(&m.as_str()) {
            bail!("--modes: unknown mode {m:?}; use {}", MODES.join(", "));
        }
    }
    Ok(())
}

/// The dataset, generated or read, with its exact ground truth (and
/// written out with `--export`).
fn load_dataset(a: &AnnOptions) -> anyhow::Result<Dataset> {
    let t = Instant::now();
    let mut d = if ["image", "sift"].contains(&a.dataset.as_str()) {
        generate(a)
    } else {
        load_file(a)?
    };
    if d.n() < a.k {
        bail!("the dataset has {} points, fewer than k = {}", d.n(), a.k);
    }
    eprintln!(
        "dataset {}: {} x {}-d {}, {} queries ({:.1?})",
        d.name,
        d.n(),
        d.dim,
        metric_name(d.metric),
        d.nq(),
        t.elapsed()
    );
    if d.gt.is_empty() {
        let t = Instant::now();
        d.gt = ground_truth(&d, 100.min(d.n()));
        eprintln!("exact ground truth in {:.1?}", t.elapsed());
    }
    if let Some(dir) = &a.export {
        export(&d, dir)?;
        eprintln!("dataset written to {}", dir.display());
    }
    Ok(d)
}

/// What every mode's report shares: the dataset, the build and the disk.
#[derive(Default)]
struct RunFigures {
    dataset: serde_json::Value,
    params: serde_json::Value,
    threads: usize,
    build_s: f64,
    /// Per layout sealed: (seconds to seal, bytes on disk).
    seals: Vec<(Layout, f64, u64)>,
    baseline_rss: u64,
    rss_after_build: u64,
    /// Heap bytes of the mutable segment after the build.
    mutable_bytes: u64,
}

/// What a report names besides its results.
struct ReportBase {
    dataset: serde_json::Value,
    params: serde_json::Value,
}

impl ReportBase {
    fn report(
        &self,
        engine: &str,
        build: serde_json::Value,
        memory: serde_json::Value,
        disk_bytes: u64,
        points: Vec<Point>,
        notes: String,
    ) -> Report {
        Report {
            engine: engine.into(),
            version: env!("CARGO_PKG_VERSION").into(),
            dataset: self.dataset.clone(),
            params: self.params.clone(),
            build,
            memory,
            disk_bytes,
            points,
            notes,
        }
    }
}

impl RunFigures {
    fn report_base(&self) -> ReportBase {
        ReportBase {
            dataset: self.dataset.clone(),
            params: self.params.clone(),
        }
    }

    fn seal_of(&self, q: Layout) -> (f64, u64) {
        self.seals
            .iter()
            .find(|s| s.0 == q)
            .map_or((0.0, 0), |s| (s.1, s.2))
    }

    /// Build figures of a sealed mode: the graph build plus its seal.
    fn sealed_build(&self, n: usize, q: Layout) -> serde_json::Value {
        let (seal_s, _) = self.seal_of(q);
        let s = self.build_s + seal_s;
        serde_json::json!({"seconds": s, "inserts_per_s": n as f64 / s, "threads": self.threads, "seal_seconds": seal_s})
    }
}

/// Builds the mutable segment once, on all cores.
fn build(d: &Dataset, a: &AnnOptions, ctx: &mut RunFigures) -> MutableSegment {
    eprintln!(
        "building: m {}, ef_construction {}, {} threads",
        a.m, a.ef_construction, ctx.threads
    );
    let t = Instant::now();
    let seg = build_segment(d, a.m, a.ef_construction, |_| pb::Metadata::default());
    ctx.build_s = t.elapsed().as_secs_f64();
    ctx.mutable_bytes = seg.memory_bytes();
    eprintln!(
        "built in {:.1} s ({:.0} inserts/s)",
        ctx.build_s,
        d.n() as f64 / ctx.build_s
    );
    seg
}

/// The base vectors in a mutable segment, point `i` with id `i` and
/// `metadata(i)`, inserted in batches on all cores.
fn build_segment(
    d: &Dataset,
    m: usize,
    ef_construction: usize,
    metadata: impl Fn(usize) -> pb::Metadata,
) -> MutableSegment {
    let seg = MutableSegment::new(d.dim, d.metric, m, ef_construction);
    let batch = 10_000;
    for start in (0..d.n()).step_by(batch) {
        let end = (start + batch).min(d.n());
        let pts: Vec<Prepared> = (start..end)
            .map(|i| Prepared {
                id: i.to_string(),
                vector: d.row(i).to_vec(),
                metadata: metadata(i),
                ..Default::default()
            })
            .collect();
        seg.index(start, &pts);
        seg.commit(start, pts);
    }
    seg
}

/// `--work-dir` emptied, or a temp dir (kept alive by the second value).
fn work_dir(a: &AnnOptions) -> anyhow::Result<(PathBuf, Option<tempfile::TempDir>)> {
    Ok(match &a.work_dir {
        Some(p) => {
            let _ = std::fs::remove_dir_all(p);
            std::fs::create_dir_all(p)?;
            (p.clone(), None)
        }
        None => {
            let t = tempfile::tempdir()?;
            (t.path().to_owned(), Some(t))
        }
    })
}

/// The collection a layout's modes serve.
fn collection_name(q: Layout) -> String {
    if q == Layout::default() {
        "bench".into()
    } else {
        format!("bench-{}", q.name())
    }
}

/// Seals the built segment into a real collection (`bench`, `bench-sq8`,
/// ...) under `work_dir/collections`, which the gRPC modes serve; returns
/// the segment's directory.
fn seal(
    d: &Dataset,
    a: &AnnOptions,
    seg: &MutableSegment,
    work_dir: &Path,
    quant: Layout,
    ctx: &mut RunFigures,
) -> anyhow::Result<PathBuf> {
    let name = collection_name(quant);
    let coll_dir = work_dir.join("collections").join(&name);
    std::fs::create_dir_all(work_dir.join("collections"))?;
    let mut config = Config::new(&name, d.dim as u32, d.metric, Kind::Image);
    config.m = a.m as u32;
    config.ef_construction = a.ef_construction as u32;
    config.quantization = quant.quant;
    config.vector_storage = quant.storage;
    Collection::create(&coll_dir, config, StorageOptions::default())?;
    let t = Instant::now();
    let sdir = Collection::add_sealed(&coll_dir, seg)?;
    let seal_s = t.elapsed().as_secs_f64();
    let disk = crate::storage::durable::dir_size(&sdir);
    eprintln!(
        "sealed {} in {seal_s:.1} s ({:.1} MiB on disk)",
        quant.name(),
        disk as f64 / 1048576.0
    );
    ctx.seals.push((quant, seal_s, disk));
    Ok(sdir)
}

fn mutable_mode(d: &Dataset, a: &AnnOptions, seg: &MutableSegment, ctx: &RunFigures) -> Report {
    eprintln!("mode mutable (in-memory graph, in process)");
    let k = a.k;
    let points = sweep(d, a, &|q, ef| {
        seg.search(q, k, ef, None, None)
            .into_iter()
            .map(|(i, _)| i as u32)
            .collect()
    });
    let (_, disk) = ctx.seal_of(Layout::default());
    ctx.report_base().report(
        "vidx-mutable",
        serde_json::json!({"seconds": ctx.build_s, "inserts_per_s": d.n() as f64 / ctx.build_s, "threads": ctx.threads}),
        serde_json::json!({"peak_rss_bytes": peak_rss(), "baseline_rss_bytes": ctx.baseline_rss, "rss_after_build_bytes": ctx.rss_after_build,
            "serving_rss_bytes": ctx.mutable_bytes, "hot_bytes_per_vector": ctx.mutable_bytes as f64 / d.n() as f64}),
        disk,
        points,
        "in-process search of the mutable segment (f32 in the heap); serving RSS and hot bytes: the segment's heap (vectors, links, columns)".into(),
    )
}

/// Engine name of a sealed or gRPC mode.
fn engine_name(prefix: &str, q: Layout) -> String {
    if q == Layout::default() {
        format!("vidx-{prefix}")
    } else {
        format!("vidx-{prefix}-{}", q.name())
    }
}

fn sealed_mode(
    d: &Dataset,
    a: &AnnOptions,
    sdir: &Path,
    quant: Layout,
    ctx: &RunFigures,
) -> anyhow::Result<Report> {
    let sealed = SealedSegment::open(
        1,
        sdir,
        d.dim,
        d.metric,
        &crate::segment::sealed::tomb_file_name(0),
    )?;
    let engine = engine_name("sealed", quant);
    eprintln!("mode {engine} (memory-mapped files, vidx's search, in process)");
    let k = a.k;
    let points = sweep(d, a, &|q, ef| {
        sealed
            .search(q, k, ef, None, None)
            .map(|h| h.into_iter().map(|(i, _)| i as u32).collect())
            .unwrap_or_default()
    });
    let memory = serving_memory(sdir, &sealed, d.n(), ctx);
    Ok(ctx.report_base().report(
        &engine,
        ctx.sealed_build(d.n(), quant),
        memory,
        ctx.seal_of(quant).1,
        points,
        "in-process search of the sealed, memory-mapped segment; build includes sealing (and training the codes); serving RSS: resident pages of the segment's files after the sweep; hot bytes: what the graph walk reads (graph + codes, or graph + f32 vectors without codes) per vector".into(),
    ))
}

/// Memory of a sealed segment after its sweep: resident pages of each of
/// its mapped files, and the bytes per vector its graph walk reads.
fn serving_memory(
    sdir: &Path,
    sealed: &SealedSegment,
    n: usize,
    ctx: &RunFigures,
) -> serde_json::Value {
    let files = crate::tools::memory::resident_by_file(sdir);
    let serving: u64 = files.values().sum();
    serde_json::json!({
        "peak_rss_bytes": peak_rss(),
        "baseline_rss_bytes": ctx.baseline_rss,
        "rss_now_bytes": current_rss(),
        "serving_rss_bytes": serving,
        "resident_by_file": files,
        "hot_bytes_per_vector": sealed.hot_bytes() as f64 / n as f64,
    })
}

fn grpc_mode(
    d: &Dataset,
    a: &AnnOptions,
    work_dir: &Path,
    quant: Layout,
    ctx: &RunFigures,
) -> anyhow::Result<Report> {
    let engine = engine_name("grpc", quant);
    eprintln!(
        "mode {engine} (loopback server serving the sealed segment; {} clients x {} queries per request)",
        a.clients, a.batch
    );
    let name = collection_name(quant);
    let sdir = crate::storage::manifest::Manifest::load(&work_dir.join("collections").join(&name))
        .ok()
        .and_then(|m| m.segments.last().map(|s| s.id))
        .map(|id| {
            work_dir
                .join("collections")
                .join(&name)
                .join(crate::storage::manifest::segment_dir_name(id))
        });
    let hot = sdir.as_ref().and_then(|p| {
        SealedSegment::open(
            1,
            p,
            d.dim,
            d.metric,
            &crate::segment::sealed::tomb_file_name(0),
        )
        .ok()
        .map(|s| s.hot_bytes() as f64 / d.n() as f64)
    });
    let (points, files) = grpc_sweep(d, a, work_dir, &name, sdir.as_deref())?;
    let serving = (!files.is_empty()).then(|| files.values().sum::<u64>());
    Ok(ctx.report_base().report(
        &engine,
        ctx.sealed_build(d.n(), quant),
        serde_json::json!({"peak_rss_bytes": peak_rss(), "baseline_rss_bytes": ctx.baseline_rss,
            "serving_rss_bytes": serving, "resident_by_file": files, "hot_bytes_per_vector": hot}),
        ctx.seal_of(quant).1,
        points,
        format!(
            "end to end over gRPC on loopback: qps_1t = one client, one query per request; qps_all = {} clients, {} queries per request; server and clients share the machine (and the process); serving RSS: resident pages of the served segment's files after the sweep, server still up",
            a.clients, a.batch
        ),
    ))
}

fn print_summary(reports: &[Report], k: usize) {
    println!("| engine | ef | recall@{k} | QPS 1 thread | QPS all cores | p50 ms | p99 ms |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for r in reports {
        for p in &r.points {
            println!(
                "| {} | {} | {:.4} | {:.0} | {:.0} | {:.3} | {:.3} |",
                r.engine, p.ef, p.recall, p.qps_1t, p.qps_all, p.p50_ms, p.p99_ms
            );
        }
    }
}

type Client = pb::vector_index_client::VectorIndexClient<tonic::transport::Channel>;

/// Serves the sealed collection on loopback and sweeps ef over gRPC; also
/// returns the resident bytes per file of `segment_dir` (the segment the
/// server maps, in this process) after the sweep, before the server stops.
fn grpc_sweep(
    d: &Dataset,
    a: &AnnOptions,
    data_dir: &Path,
    collection: &str,
    segment_dir: Option<&Path>,
) -> anyhow::Result<(Vec<Point>, BTreeMap<String, u64>)> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let registry = Arc::new(crate::collection::registry::Registry::open(
            data_dir,
            StorageOptions {
                verify_on_open: false,
                ..Default::default()
            },
        )?);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let stop = async {
            let _ = stop_rx.await;
        };
        let server = tokio::spawn(crate::api::server::serve(
            registry,
            listener,
            Default::default(),
            stop,
        ));
        let url = format!("http://{addr}");
        let queries: Arc<Vec<Vec<f32>>> =
            Arc::new((0..d.nq()).map(|i| d.q(i).to_vec()).collect());
        let mut clients = Vec::new();
        for _ in 0..a.clients.max(1) {
            clients.push(connect_retry(&url).await?);
        }
        let mut points = Vec::new();
        for &ef in &a.efs {
            let p = grpc_point(d, a, &clients, &queries, collection, ef.max(a.k)).await?;
            eprintln!(
                "  ef {:>4}: recall@{} {:.4}  {:>8.0} QPS (1 client)  {:>8.0} QPS (batched)  p50 {:.3} ms  p99 {:.3} ms",
                p.ef, a.k, p.recall, p.qps_1t, p.qps_all, p.p50_ms, p.p99_ms
            );
            points.push(p);
        }
        let files = segment_dir
            .map(crate::tools::memory::resident_by_file)
            .unwrap_or_default();
        let _ = stop_tx.send(());
        server.await??;
        Ok((points, files))
    })
}

/// A search of `queries` in the bench collection.
fn search_request(
    collection: &str,
    queries: &[Vec<f32>],
    k: usize,
    ef: usize,
) -> pb::SearchRequest {
    pb::SearchRequest {
        collection: collection.into(),
        queries: queries
            .iter()
            .map(|q| pb::Query {
                query: Some(pb::query::Query::Vector(pb::Vector { values: q.clone() })),
            })
            .collect(),
        k: k as u32,
        ef: ef as u32,
        ..Default::default()
    }
}

/// One point of the gRPC sweep: one client sending one query per request
/// (latency, 1-thread QPS), then every client sending batches (throughput).
async fn grpc_point(
    d: &Dataset,
    a: &AnnOptions,
    clients: &[Client],
    queries: &Arc<Vec<Vec<f32>>>,
    collection: &str,
    ef: usize,
) -> anyhow::Result<Point> {
    let mut client = clients[0].clone();
    // Warm-up.
    client
        .search(search_request(
            collection,
            &queries[..queries.len().min(100)],
            a.k,
            ef,
        ))
        .await?;
    let mut lat = Vec::with_capacity(queries.len());
    let mut got: Vec<Vec<u32>> = Vec::with_capacity(queries.len());
    let t = Instant::now();
    for q in queries.iter() {
        let s = Instant::now();
        let r = client
            .search(search_request(collection, std::slice::from_ref(q), a.k, ef))
            .await?
            .into_inner();
        lat.push(s.elapsed().as_secs_f64() * 1e3);
        got.push(
            r.results[0]
                .hits
                .iter()
                .map(|h| h.id.parse::<u32>().unwrap_or(u32::MAX))
                .collect(),
        );
    }
    let qps_1t = queries.len() as f64 / t.elapsed().as_secs_f64();
    let qps_all = batched_qps(clients, queries, collection, a.batch.max(1), a.k, ef).await?;
    lat.sort_by(f64::total_cmp);
    Ok(Point {
        ef,
        recall: recall(&got, &d.gt, a.k),
        qps_1t,
        qps_all,
        p50_ms: percentile(&lat, 0.5),
        p99_ms: percentile(&lat, 0.99),
    })
}

/// Every client sends `batch` queries per request, taking the next batch
/// until all queries are done; returns queries per second.
async fn batched_qps(
    clients: &[Client],
    queries: &Arc<Vec<Vec<f32>>>,
    collection: &str,
    batch: usize,
    k: usize,
    ef: usize,
) -> anyhow::Result<f64> {
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let t = Instant::now();
    let mut tasks = Vec::new();
    for c in clients {
        let mut c = c.clone();
        let next = next.clone();
        let queries = queries.clone();
        let collection = collection.to_string();
        tasks.push(tokio::spawn(async move {
            loop {
                let start = next.fetch_add(batch, std::sync::atomic::Ordering::SeqCst);
                if start >= queries.len() {
                    return Ok::<_, tonic::Status>(());
                }
                let end = (start + batch).min(queries.len());
                c.search(search_request(&collection, &queries[start..end], k, ef))
                    .await?;
            }
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(queries.len() as f64 / t.elapsed().as_secs_f64())
}

async fn connect_retry(url: &str) -> anyhow::Result<Client> {
    let mut last = None;
    for _ in 0..50 {
        match crate::api::server::channel(url).await {
            Ok(ch) => {
                return Ok(Client::new(ch)
                    .max_decoding_message_size(crate::api::server::DEFAULT_MAX_MESSAGE_BYTES)
                    .max_encoding_message_size(crate::api::server::DEFAULT_MAX_MESSAGE_BYTES));
            }
            Err(e) => last = Some(e),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Err(anyhow::anyhow!("cannot connect to {url}: {last:?}"))
}

/// `vidx bench filter`: QPS and recall of filtered search at planted
/// selectivities beside unfiltered search on the same collection.
#[derive(Debug, Clone)]
pub struct FilterOptions {
    pub n: usize,
    pub queries: usize,
    pub dim: usize,
    pub k: usize,
    pub ef: usize,
    pub seed: u64,
}

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// Selectivity tags, independent of the vectors: "p50", "p10", "p1", "p01".
fn selectivity_tags(seed: u64, i: usize) -> Vec<String> {
    let u = (splitmix(seed ^ (i as u64).wrapping_mul(0x2545_f491_4f6c_dd1d)) >> 11) as f64
        / (1u64 << 53) as f64;
    [(0.5, "p50"), (0.1, "p10"), (0.01, "p1"), (0.001, "p01")]
        .iter()
        .filter(|(p, _)| u < *p)
        .map(|(_, t)| t.to_string())
        .collect()
}

pub fn run_filter(a: FilterOptions) -> anyhow::Result<()> {
    let d = generate(&AnnOptions {
        dataset: "image".into(),
        queries_file: None,
        gt_file: None,
        metric: "cosine".into(),
        n: a.n,
        queries: a.queries,
        dim: a.dim,
        k: a.k,
        m: 16,
        ef_construction: 200,
        efs: vec![a.ef],
        modes: vec![],
        clients: 1,
        batch: 1,
        seed: a.seed,
        export: None,
        out: None,
        work_dir: None,
    });
    let metas: Vec<pb::Metadata> = (0..d.n())
        .map(|i| pb::Metadata {
            media_id: format!("{i:040x}"),
            tags: selectivity_tags(a.seed, i),
            ..Default::default()
        })
        .collect();
    eprintln!("dataset {}: {} x {}-d; building", d.name, d.n(), d.dim);
    let t = Instant::now();
    let seg = build_segment(&d, 16, 200, |i| metas[i].clone());
    eprintln!("built in {:.1?}", t.elapsed());
    let dir = tempfile::tempdir()?;
    seg.write_sealed(dir.path(), Default::default())?;
    let sealed = SealedSegment::open(
        1,
        dir.path(),
        d.dim,
        d.metric,
        &crate::segment::sealed::tomb_file_name(0),
    )?;
    sealed.meta_index()?;
    print_filter_header(&d, &a);
    let engines: Vec<(&str, FilteredSearch<'_>)> = vec![
        (
            "mutable",
            Box::new(|q: &[f32], f: Option<&Filter>| {
                seg.search(q, a.k, a.ef, None, f)
                    .into_iter()
                    .map(|(i, _)| i as u32)
                    .collect()
            }),
        ),
        (
            "sealed",
            Box::new(|q: &[f32], f: Option<&Filter>| {
                sealed
                    .search(q, a.k, a.ef, None, f)
                    .map(|h| h.into_iter().map(|(i, _)| i as u32).collect())
                    .unwrap_or_default()
            }),
        ),
    ];
    for (name, search) in &engines {
        let mut base_qps = 0.0;
        for (label, f) in filter_cases() {
            let (passing, recall, qps) = filtered_sweep(&d, &metas, a.k, f.as_ref(), search);
            if f.is_none() {
                base_qps = qps;
            }
            println!(
                "| {name} | {label} | {passing} | {recall:.4} | {qps:.0} | {:.2} |",
                qps / base_qps
            );
        }
    }
    Ok(())
}

fn print_filter_header(d: &Dataset, a: &FilterOptions) {
    println!(
        "# filtered search: {} x {}-d cosine, k {}, ef {}, 1 thread, {} queries",
        d.n(),
        d.dim,
        a.k,
        a.ef,
        d.nq()
    );
    println!(
        "| segment | filter | passing points | recall@{} | QPS | ÷ unfiltered QPS |",
        a.k
    );
    println!("|---|---|---:|---:|---:|---:|");
}

/// A segment's filtered search, returning row numbers.
type FilteredSearch<'s> = Box<dyn Fn(&[f32], Option<&Filter>) -> Vec<u32> + 's>;

/// The filters of `bench filter`, by the share of points they pass.
fn filter_cases() -> Vec<(&'static str, Option<Filter>)> {
    let only = |tag: &str| {
        Some(Filter {
            tags_all: vec![tag.to_string()],
            ..Default::default()
        })
    };
    vec![
        ("unfiltered", None),
        ("50%", only("p50")),
        ("10%", only("p10")),
        ("1%", only("p1")),
        ("0.1%", only("p01")),
        (
            "empty",
            Some(Filter {
                countries_any: vec!["SE".into()],
                ..Default::default()
            }),
        ),
    ]
}

/// Every query under `filter` on one thread: (points passing, recall@k
/// against the exact top k of the passing points, QPS).
fn filtered_sweep(
    d: &Dataset,
    metas: &[pb::Metadata],
    k: usize,
    filter: Option<&Filter>,
    search: &FilteredSearch<'_>,
) -> (usize, f64, f64) {
    let passing: Vec<usize> = (0..d.n())
        .filter(|&i| filter.is_none_or(|f| f.matches(&metas[i])))
        .collect();
    let truth: Vec<Vec<u32>> = (0..d.nq())
        .into_par_iter()
        .map(|qi| {
            let q = d.q(qi);
            let mut all: Vec<(u32, f32)> = passing
                .iter()
                .map(|&i| (i as u32, d.metric.rank(q, d.row(i))))
                .collect();
            crate::index::planner::top_k(&mut all, k);
            all.into_iter().map(|(i, _)| i).collect()
        })
        .collect();
    for qi in 0..d.nq().min(50) {
        std::hint::black_box(search(d.q(qi), filter));
    }
    let t = Instant::now();
    let got: Vec<Vec<u32>> = (0..d.nq()).map(|qi| search(d.q(qi), filter)).collect();
    let qps = d.nq() as f64 / t.elapsed().as_secs_f64();
    let want: usize = truth.iter().map(Vec::len).sum();
    let hit: usize = got
        .iter()
        .zip(&truth)
        .map(|(g, t)| g.iter().filter(|x| t.contains(x)).count())
        .sum();
    let recall = if want == 0 {
        1.0
    } else {
        hit as f64 / want as f64
    };
    (passing.len(), recall, qps)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fvecs_and_ivecs_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.fvecs");
        let mut b = Vec::new();
        for row in [[1.0f32, 2.0], [3.0, 4.5]] {
            b.extend_from_slice(&2i32.to_le_bytes());
            for x in row {
                b.extend_from_slice(&x.to_le_bytes());
            }
        }
        std::fs::write(&p, &b).unwrap();
        assert_eq!(read_fvecs(&p).unwrap(), (2, vec![1.0, 2.0, 3.0, 4.5]));
        let pi = dir.path().join("x.ivecs");
        std::fs::write(&pi, &b).unwrap();
        assert_eq!(
            read_ivecs(&pi).unwrap()[0],
            vec![1.0f32.to_bits(), 2.0f32.to_bits()]
        );
        std::fs::write(&p, &b[..b.len() - 1]).unwrap();
        assert!(
            read_fvecs(&p)
                .unwrap_err()
                .to_string()
                .contains("whole number")
        );
    }

    #[test]
    fn recall_and_percentiles() {
        let gt = vec![vec![1, 2, 3], vec![4, 5, 6]];
        assert_eq!(recall(&[vec![1, 2, 9], vec![6, 5, 4]], &gt, 3), 5.0 / 6.0);
        assert_eq!(percentile(&[1.0, 2.0, 3.0, 4.0, 5.0], 0.5), 3.0);
    }
}
