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
use crate::pb;
use crate::segment::mutable::{MutableSegment, Prepared};
use crate::segment::sealed::SealedSegment;
use crate::storage::manifest::{Manifest, SegmentEntry, segment_dir_name};

#[derive(clap::Args, Debug, Clone)]
pub struct AnnArgs {
    /// `image` (clustered unit vectors, cosine), `sift` (128-d, non-negative,
    /// L2), or a file of base vectors: `.npy` or `.fvecs`.
    #[arg(long, default_value = "image")]
    pub dataset: String,
    /// Query vectors for a file dataset (`.npy` or `.fvecs`).
    #[arg(long)]
    pub queries_file: Option<PathBuf>,
    /// Ground truth for a file dataset (`.ivecs`); computed exactly if absent.
    #[arg(long)]
    pub gt_file: Option<PathBuf>,
    /// Metric of a file dataset.
    #[arg(long, default_value = "l2")]
    pub metric: String,
    /// Points of a generated dataset (a file dataset keeps its own count
    /// unless this is smaller).
    #[arg(long, default_value_t = 100_000)]
    pub n: usize,
    /// Queries (held out, same distribution as the base).
    #[arg(long, default_value_t = 1000)]
    pub queries: usize,
    /// Dimension of the `image` dataset (`sift` is always 128).
    #[arg(long, default_value_t = 512)]
    pub dim: usize,
    /// Neighbours per query; recall is recall@k.
    #[arg(long, default_value_t = 10)]
    pub k: usize,
    /// HNSW links per node (upper layers; twice as many on layer 0).
    #[arg(long, default_value_t = 16)]
    pub m: usize,
    /// HNSW build breadth.
    #[arg(long, default_value_t = 200)]
    pub ef_construction: usize,
    /// The ef sweep.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "10,16,24,32,48,64,96,128,192,256,384,512"
    )]
    pub efs: Vec<usize>,
    /// Which modes to run.
    #[arg(long, value_delimiter = ',', default_value = "mutable,sealed,grpc")]
    pub modes: Vec<String>,
    /// Concurrent gRPC clients for the batched throughput run.
    #[arg(long, default_value_t = 4)]
    pub clients: usize,
    /// Queries per gRPC request in the batched run.
    #[arg(long, default_value_t = 50)]
    pub batch: usize,
    /// Seed of the generated dataset and queries.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Write the dataset here (base.npy, query.npy, gt.npy, meta.json).
    #[arg(long)]
    pub export: Option<PathBuf>,
    /// Write vidx-<mode>.json here.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Scratch directory for the sealed segment (default: a temp dir).
    #[arg(long)]
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

fn generate(a: &AnnArgs) -> Dataset {
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

fn load_file(a: &AnnArgs) -> anyhow::Result<Dataset> {
    let base_path = PathBuf::from(&a.dataset);
    let (dim, mut base) = read_vectors(&base_path)?;
    let Some(qp) = &a.queries_file else {
        bail!("--queries-file is needed with a file dataset")
    };
    let (qdim, mut query) = read_vectors(qp)?;
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
    a: &AnnArgs,
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

pub fn run(a: AnnArgs) -> anyhow::Result<()> {
    if a.k == 0 || a.efs.is_empty() || a.queries == 0 || a.n == 0 {
        bail!("--k, --efs, --queries and --n must be non-empty / positive");
    }
    for m in &a.modes {
        if !["mutable", "sealed", "grpc"].contains(&m.as_str()) {
            bail!("--modes: unknown mode {m:?}; use mutable, sealed, grpc");
        }
    }
    let threads = rayon::current_num_threads();
    let t = Instant::now();
    let mut d = if ["image", "sift"].contains(&a.dataset.as_str()) {
        generate(&a)
    } else {
        load_file(&a)?
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
    let dataset_json = serde_json::json!({"name": d.name, "metric": metric_name(d.metric), "n": d.n(), "dim": d.dim, "queries": d.nq()});
    let params = serde_json::json!({"m": a.m, "ef_construction": a.ef_construction, "k": a.k, "threads": threads});
    let baseline_rss = current_rss();

    // Build once: the mutable segment on all cores.
    eprintln!(
        "building: m {}, ef_construction {}, {threads} threads",
        a.m, a.ef_construction
    );
    let seg = MutableSegment::new(d.dim, d.metric, a.m, a.ef_construction);
    let t = Instant::now();
    let batch = 10_000;
    for start in (0..d.n()).step_by(batch) {
        let end = (start + batch).min(d.n());
        let pts: Vec<Prepared> = (start..end)
            .map(|i| Prepared {
                id: i.to_string(),
                vector: d.row(i).to_vec(),
                metadata: pb::Metadata::default(),
            })
            .collect();
        seg.index(start, &pts);
        seg.commit(start, pts);
    }
    let build_s = t.elapsed().as_secs_f64();
    let build = serde_json::json!({"seconds": build_s, "inserts_per_s": d.n() as f64 / build_s, "threads": threads});
    eprintln!(
        "built in {build_s:.1} s ({:.0} inserts/s)",
        d.n() as f64 / build_s
    );
    let mem_built = current_rss();

    // Keeps a temp dir alive for the run when no --work-dir is given.
    let mut _keep: Option<tempfile::TempDir> = None;
    let work_dir = match &a.work_dir {
        Some(p) => {
            let _ = std::fs::remove_dir_all(p);
            std::fs::create_dir_all(p)?;
            p.clone()
        }
        None => {
            let t = tempfile::tempdir()?;
            let p = t.path().to_owned();
            _keep = Some(t);
            p
        }
    };

    // Seal into a real collection directory (the gRPC mode serves it).
    let coll_dir = work_dir.join("collections").join("bench");
    std::fs::create_dir_all(work_dir.join("collections"))?;
    let mut config = Config::new("bench", d.dim as u32, d.metric, Kind::Image);
    config.m = a.m as u32;
    config.ef_construction = a.ef_construction as u32;
    Collection::create(&coll_dir, config, StorageOptions::default())?;
    let sdir = coll_dir.join(segment_dir_name(1));
    std::fs::create_dir(&sdir)?;
    let t = Instant::now();
    seg.write_sealed(&sdir)?;
    let seal_s = t.elapsed().as_secs_f64();
    let mut manifest = Manifest::load(&coll_dir)?;
    manifest.segments.push(SegmentEntry {
        id: 1,
        points: d.n() as u64,
        tombstones: crate::segment::sealed::tomb_file_name(0),
    });
    manifest.next_segment = 2;
    manifest.store(&coll_dir)?;
    let disk = crate::storage::durable::dir_size(&sdir);
    let k = a.k;
    let mut reports = Vec::new();

    if a.modes.iter().any(|m| m == "mutable") {
        eprintln!("mode mutable (in-memory graph, in process)");
        let points = sweep(&d, &a, &|q, ef| {
            seg.search(q, k, ef, None, None)
                .into_iter()
                .map(|(i, _)| i as u32)
                .collect()
        });
        reports.push(Report {
            engine: "vidx-mutable".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            dataset: dataset_json.clone(),
            params: params.clone(),
            build: build.clone(),
            memory: serde_json::json!({"peak_rss_bytes": peak_rss(), "baseline_rss_bytes": baseline_rss, "rss_after_build_bytes": mem_built}),
            disk_bytes: disk,
            points,
            notes: "in-process search of the mutable segment; peak RSS covers the whole run".into(),
        });
    }
    drop(seg);

    let sealed = SealedSegment::open(
        1,
        &sdir,
        d.dim,
        d.metric,
        &crate::segment::sealed::tomb_file_name(0),
    )?;
    if a.modes.iter().any(|m| m == "sealed") {
        eprintln!("mode sealed (memory-mapped files, vidx's search, in process)");
        let points = sweep(&d, &a, &|q, ef| {
            sealed
                .search(q, k, ef, None, None)
                .map(|h| h.into_iter().map(|(i, _)| i as u32).collect())
                .unwrap_or_default()
        });
        reports.push(Report {
            engine: "vidx-sealed".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            dataset: dataset_json.clone(),
            params: params.clone(),
            build: serde_json::json!({"seconds": build_s + seal_s, "inserts_per_s": d.n() as f64 / (build_s + seal_s), "threads": threads, "seal_seconds": seal_s}),
            memory: serde_json::json!({"peak_rss_bytes": peak_rss(), "baseline_rss_bytes": baseline_rss, "rss_after_build_bytes": mem_built, "rss_now_bytes": current_rss()}),
            disk_bytes: disk,
            points,
            notes: "in-process search of the sealed, memory-mapped segment; build includes sealing".into(),
        });
    }
    drop(sealed);

    if a.modes.iter().any(|m| m == "grpc") {
        eprintln!(
            "mode grpc (loopback server serving the sealed segment; {} clients x {} queries per request)",
            a.clients, a.batch
        );
        let points = grpc_sweep(&d, &a, &work_dir)?;
        reports.push(Report {
            engine: "vidx-grpc".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            dataset: dataset_json.clone(),
            params: params.clone(),
            build: serde_json::json!({"seconds": build_s + seal_s, "inserts_per_s": d.n() as f64 / (build_s + seal_s), "threads": threads}),
            memory: serde_json::json!({"peak_rss_bytes": peak_rss(), "baseline_rss_bytes": baseline_rss}),
            disk_bytes: disk,
            points,
            notes: format!(
                "end to end over gRPC on loopback: qps_1t = one client, one query per request; qps_all = {} clients, {} queries per request; server and clients share the machine",
                a.clients, a.batch
            ),
        });
    }

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

/// Serves the sealed collection on loopback and sweeps ef over gRPC.
fn grpc_sweep(d: &Dataset, a: &AnnArgs, data_dir: &Path) -> anyhow::Result<Vec<Point>> {
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
        let server = tokio::spawn(crate::api::server::serve(registry, listener, Default::default(), async {
            let _ = stop_rx.await;
        }));
        let url = format!("http://{addr}");
        let mut points = Vec::new();
        let queries: Arc<Vec<Vec<f32>>> = Arc::new((0..d.nq()).map(|i| d.q(i).to_vec()).collect());
        let mut clients = Vec::new();
        for _ in 0..a.clients.max(1) {
            clients.push(connect_retry(&url).await?);
        }
        for &ef in &a.efs {
            let ef = ef.max(a.k);
            let req = |qs: &[Vec<f32>]| pb::SearchRequest {
                collection: "bench".into(),
                queries: qs
                    .iter()
                    .map(|q| pb::Query {
                        query: Some(pb::query::Query::Vector(pb::Vector { values: q.clone() })),
                    })
                    .collect(),
                k: a.k as u32,
                ef: ef as u32,
                ..Default::default()
            };
            // Warm-up.
            clients[0].search(req(&queries[..queries.len().min(100)])).await?;
            // One client, one query per request: latency and 1-thread QPS.
            let mut lat = Vec::with_capacity(queries.len());
            let mut got: Vec<Vec<u32>> = Vec::with_capacity(queries.len());
            let t = Instant::now();
            for q in queries.iter() {
                let s = Instant::now();
                let r = clients[0].search(req(std::slice::from_ref(q))).await?.into_inner();
                lat.push(s.elapsed().as_secs_f64() * 1e3);
                got.push(r.results[0].hits.iter().map(|h| h.id.parse::<u32>().unwrap_or(u32::MAX)).collect());
            }
            let qps_1t = queries.len() as f64 / t.elapsed().as_secs_f64();
            // Concurrent clients, batched requests: throughput.
            let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
            let t = Instant::now();
            let mut tasks = Vec::new();
            for c in &clients {
                let mut c = c.clone();
                let next = next.clone();
                let queries = queries.clone();
                let batch = a.batch.max(1);
                let k = a.k as u32;
                tasks.push(tokio::spawn(async move {
                    loop {
                        let start = next.fetch_add(batch, std::sync::atomic::Ordering::SeqCst);
                        if start >= queries.len() {
                            return Ok::<_, tonic::Status>(());
                        }
                        let end = (start + batch).min(queries.len());
                        let r = pb::SearchRequest {
                            collection: "bench".into(),
                            queries: queries[start..end]
                                .iter()
                                .map(|q| pb::Query {
                                    query: Some(pb::query::Query::Vector(pb::Vector { values: q.clone() })),
                                })
                                .collect(),
                            k,
                            ef: ef as u32,
                            ..Default::default()
                        };
                        c.search(r).await?;
                    }
                }));
            }
            for t in tasks {
                t.await??;
            }
            let qps_all = queries.len() as f64 / t.elapsed().as_secs_f64();
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
                "  ef {:>4}: recall@{} {:.4}  {:>8.0} QPS (1 client)  {:>8.0} QPS (batched)  p50 {:.3} ms  p99 {:.3} ms",
                p.ef, a.k, p.recall, p.qps_1t, p.qps_all, p.p50_ms, p.p99_ms
            );
            points.push(p);
        }
        let _ = stop_tx.send(());
        server.await??;
        Ok(points)
    })
}

async fn connect_retry(
    url: &str,
) -> anyhow::Result<pb::vector_index_client::VectorIndexClient<tonic::transport::Channel>> {
    let mut last = None;
    for _ in 0..50 {
        match crate::api::server::channel(url).await {
            Ok(ch) => {
                return Ok(pb::vector_index_client::VectorIndexClient::new(ch)
                    .max_decoding_message_size(crate::api::server::DEFAULT_MAX_MESSAGE_BYTES)
                    .max_encoding_message_size(crate::api::server::DEFAULT_MAX_MESSAGE_BYTES));
            }
            Err(e) => last = Some(e),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Err(anyhow::anyhow!("cannot connect to {url}: {last:?}"))
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

/// `vidx bench filter`: QPS and recall of filtered search at planted
/// selectivities beside unfiltered search on the same collection.
#[derive(clap::Args, Debug, Clone)]
pub struct FilterBenchArgs {
    /// Points of the generated (clustered, cosine) collection.
    #[arg(long, default_value_t = 100_000)]
    pub n: usize,
    /// Queries per selectivity.
    #[arg(long, default_value_t = 200)]
    pub queries: usize,
    /// Dimension of the vectors.
    #[arg(long, default_value_t = 512)]
    pub dim: usize,
    /// Neighbours per query; recall is recall@k.
    #[arg(long, default_value_t = 10)]
    pub k: usize,
    /// Search breadth.
    #[arg(long, default_value_t = 128)]
    pub ef: usize,
    /// Seed of the vectors and the selectivity tags.
    #[arg(long, default_value_t = 42)]
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

pub fn run_filter(a: FilterBenchArgs) -> anyhow::Result<()> {
    let ann = AnnArgs {
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
    };
    let d = generate(&ann);
    let metas: Vec<pb::Metadata> = (0..d.n())
        .map(|i| pb::Metadata {
            media_id: format!("{i:040x}"),
            tags: selectivity_tags(a.seed, i),
            ..Default::default()
        })
        .collect();
    eprintln!("dataset {}: {} x {}-d; building", d.name, d.n(), d.dim);
    let seg = MutableSegment::new(d.dim, d.metric, 16, 200);
    let t = Instant::now();
    for start in (0..d.n()).step_by(10_000) {
        let end = (start + 10_000).min(d.n());
        let pts: Vec<Prepared> = (start..end)
            .map(|i| Prepared {
                id: i.to_string(),
                vector: d.row(i).to_vec(),
                metadata: metas[i].clone(),
            })
            .collect();
        seg.index(start, &pts);
        seg.commit(start, pts);
    }
    eprintln!("built in {:.1?}", t.elapsed());
    let dir = tempfile::tempdir()?;
    seg.write_sealed(dir.path())?;
    let sealed = SealedSegment::open(
        1,
        dir.path(),
        d.dim,
        d.metric,
        &crate::segment::sealed::tomb_file_name(0),
    )?;
    sealed.meta_index()?;
    let only = |tag: &str| {
        Some(crate::index::filter::Filter {
            tags_all: vec![tag.to_string()],
            ..Default::default()
        })
    };
    let cases: Vec<(&str, Option<crate::index::filter::Filter>)> = vec![
        ("unfiltered", None),
        ("50%", only("p50")),
        ("10%", only("p10")),
        ("1%", only("p1")),
        ("0.1%", only("p01")),
        (
            "empty",
            Some(crate::index::filter::Filter {
                countries_any: vec!["SE".into()],
                ..Default::default()
            }),
        ),
    ];
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
    type SearchFn<'s> = Box<dyn Fn(&[f32], Option<&crate::index::filter::Filter>) -> Vec<u32> + 's>;
    let engines: Vec<(&str, SearchFn<'_>)> = vec![
        (
            "mutable",
            Box::new(|q: &[f32], f: Option<&crate::index::filter::Filter>| {
                seg.search(q, a.k, a.ef, None, f)
                    .into_iter()
                    .map(|(i, _)| i as u32)
                    .collect()
            }),
        ),
        (
            "sealed",
            Box::new(|q: &[f32], f: Option<&crate::index::filter::Filter>| {
                sealed
                    .search(q, a.k, a.ef, None, f)
                    .map(|h| h.into_iter().map(|(i, _)| i as u32).collect())
                    .unwrap_or_default()
            }),
        ),
    ];
    for (name, search) in &engines {
        let mut base_qps = 0.0;
        for (label, f) in &cases {
            let passing: Vec<usize> = (0..d.n())
                .filter(|&i| f.as_ref().is_none_or(|f| f.matches(&metas[i])))
                .collect();
            let truth: Vec<Vec<u32>> = (0..d.nq())
                .into_par_iter()
                .map(|qi| {
                    let q = d.q(qi);
                    let mut all: Vec<(u32, f32)> = passing
                        .iter()
                        .map(|&i| (i as u32, d.metric.rank(q, d.row(i))))
                        .collect();
                    crate::index::planner::top_k(&mut all, a.k);
                    all.into_iter().map(|(i, _)| i).collect()
                })
                .collect();
            for qi in 0..d.nq().min(50) {
                std::hint::black_box(search(d.q(qi), f.as_ref()));
            }
            let t = Instant::now();
            let got: Vec<Vec<u32>> = (0..d.nq()).map(|qi| search(d.q(qi), f.as_ref())).collect();
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
            if f.is_none() {
                base_qps = qps;
            }
            println!(
                "| {name} | {label} | {} | {recall:.4} | {qps:.0} | {:.2} |",
                passing.len(),
                qps / base_qps
            );
        }
    }
    Ok(())
}
