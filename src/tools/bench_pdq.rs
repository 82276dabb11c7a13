//! `vidx bench pdq`: exact radius search over PDQ-sized (256-bit) hashes,
//! the way a unit matches a seizure against known material. Random hashes
//! plus, for every query, near-copies planted at known distances inside
//! and just outside PDQ's match radius; the sealed segment's files
//! (`bits.bin` + `mih.bin`) are written, mapped and searched on one thread,
//! with the planner's plan (the multi-index here) beside a popcount scan of
//! every code; every answer is checked against a linear scan (recall must
//! be 1.0: the search is exact) and every planted near-copy must be found.
//! With `--peers PYTHON`, FAISS's `IndexBinaryFlat` and
//! `IndexBinaryMultiHash` run on the same hashes and queries
//! (`benches/pdq/faiss_pdq.py`, one process each so their memory is their
//! own) and are printed in the same table.

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, bail};
use rand::seq::index::sample;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::index::hamming;
use crate::segment::bits::{self, Probe, SealedBits};
use crate::tools::bench_ann::current_rss;

/// Bits of a PDQ hash, and u64 words of one.
const DIM: usize = 256;
const WORDS: usize = DIM / 64;

#[derive(Clone, Debug)]
pub struct PdqOptions {
    /// Hashes in the index, planted near-copies included.
    pub n: usize,
    pub queries: usize,
    /// Near-copies planted per query within the radius (plus one decoy
    /// just outside it).
    pub planted: usize,
    pub radius: u32,
    pub seed: u64,
    /// Where the segment files (and the peers' input) go; a temp dir if None.
    pub dir: Option<PathBuf>,
    /// Python with faiss-cpu, to run the FAISS peers.
    pub peers: Option<PathBuf>,
}

/// The generated hashes: codes row-major, queries, and per query the rows
/// planted within the radius.
struct Data {
    codes: Vec<u64>,
    queries: Vec<Vec<u64>>,
    planted: Vec<Vec<usize>>,
}

/// A copy of `code` with exactly `d` bits flipped.
fn flip(rng: &mut ChaCha8Rng, code: &[u64], d: usize) -> Vec<u64> {
    let mut c = code.to_vec();
    for b in sample(rng, DIM, d) {
        c[b / 64] ^= 1 << (b % 64);
    }
    c
}

fn generate(a: &PdqOptions) -> anyhow::Result<Data> {
    let per_query = a.planted + 1;
    if a.n < a.queries * per_query {
        bail!(
            "--n {} cannot hold {} queries x {per_query} planted hashes",
            a.n,
            a.queries
        );
    }
    let mut rng = ChaCha8Rng::seed_from_u64(a.seed);
    let random = a.n - a.queries * per_query;
    let mut codes: Vec<u64> = Vec::with_capacity(a.n * WORDS);
    codes.extend((0..random * WORDS).map(|_| rng.random::<u64>()));
    let mut queries = Vec::with_capacity(a.queries);
    let mut planted = Vec::with_capacity(a.queries);
    let r = a.radius as usize;
    for _ in 0..a.queries {
        let q: Vec<u64> = (0..WORDS).map(|_| rng.random()).collect();
        let mut rows = Vec::with_capacity(a.planted);
        for j in 0..a.planted {
            // Spread over 0..=radius, the last one exactly on it.
            let d = if j + 1 == a.planted {
                r
            } else {
                rng.random_range(0..=r)
            };
            rows.push(codes.len() / WORDS);
            codes.extend(flip(&mut rng, &q, d));
        }
        // A decoy just outside the radius: must not be found.
        let decoy = (r + 1 + rng.random_range(0..8)).min(DIM);
        codes.extend(flip(&mut rng, &q, decoy));
        queries.push(q);
        planted.push(rows);
    }
    Ok(Data {
        codes,
        queries,
        planted,
    })
}

/// One engine's figures.
#[derive(Debug, serde::Deserialize)]
struct Row {
    engine: String,
    build_s: f64,
    ram_mb: f64,
    qps: f64,
    p50_ms: f64,
    p99_ms: f64,
    recall: f64,
    planted_found: String,
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// Runs every query on this thread; returns the answers and per-query ms.
fn timed(
    queries: &[Vec<u64>],
    mut search: impl FnMut(&[u64]) -> anyhow::Result<Vec<usize>>,
) -> anyhow::Result<(Vec<Vec<usize>>, Vec<f64>)> {
    let mut out = Vec::with_capacity(queries.len());
    let mut ms = Vec::with_capacity(queries.len());
    for q in queries {
        let t = Instant::now();
        let mut got = search(q)?;
        ms.push(t.elapsed().as_secs_f64() * 1e3);
        got.sort_unstable();
        out.push(got);
    }
    Ok((out, ms))
}

/// Recall against the linear scan, and planted near-copies found / planted.
fn score(got: &[Vec<usize>], truth: &[Vec<usize>], planted: &[Vec<usize>]) -> (f64, String) {
    let (mut hit, mut all, mut found, mut want) = (0usize, 0usize, 0usize, 0usize);
    for ((g, t), p) in got.iter().zip(truth).zip(planted) {
        let g: HashSet<usize> = g.iter().copied().collect();
        hit += t.iter().filter(|x| g.contains(x)).count();
        all += t.len();
        found += p.iter().filter(|x| g.contains(x)).count();
        want += p.len();
    }
    let recall = if all == 0 {
        1.0
    } else {
        hit as f64 / all as f64
    };
    (recall, format!("{found}/{want}"))
}

fn row(
    engine: &str,
    build_s: f64,
    ram: u64,
    got: &[Vec<usize>],
    mut ms: Vec<f64>,
    d: &Data,
    truth: &[Vec<usize>],
) -> Row {
    let total: f64 = ms.iter().sum();
    ms.sort_by(f64::total_cmp);
    let (recall, planted_found) = score(got, truth, &d.planted);
    Row {
        engine: engine.to_string(),
        build_s,
        ram_mb: ram as f64 / 1048576.0,
        qps: ms.len() as f64 / (total / 1e3),
        p50_ms: percentile(&ms, 0.5),
        p99_ms: percentile(&ms, 0.99),
        recall,
        planted_found,
    }
}

/// Writes the peers' input: codes (n x 32 bytes), queries, the truth.
fn export(
    dir: &Path,
    codes: &[u64],
    d: &Data,
    truth: &[Vec<usize>],
    radius: u32,
) -> anyhow::Result<()> {
    std::fs::write(dir.join("codes.u8"), bytemuck::cast_slice::<u64, u8>(codes))?;
    let q: Vec<u64> = d.queries.concat();
    std::fs::write(dir.join("queries.u8"), bytemuck::cast_slice::<u64, u8>(&q))?;
    let meta = serde_json::json!({"radius": radius, "truth": truth, "planted": d.planted});
    std::fs::write(dir.join("truth.json"), serde_json::to_vec(&meta)?)?;
    Ok(())
}

fn run_peer(python: &Path, dir: &Path, index: &str) -> anyhow::Result<Row> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/pdq/faiss_pdq.py");
    eprintln!("running FAISS {index} ({})", python.display());
    let out = std::process::Command::new(python)
        .arg(&script)
        .arg(dir)
        .args(["--index", index])
        .output()
        .with_context(|| format!("running {}", python.display()))?;
    if !out.status.success() {
        bail!(
            "{} {} failed: {}",
            python.display(),
            script.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let last = text.lines().last().unwrap_or_default();
    serde_json::from_str(last).with_context(|| format!("reading FAISS's answer {last:?}"))
}

pub fn run(a: PdqOptions) -> anyhow::Result<()> {
    let tmp;
    let dir = match &a.dir {
        Some(d) => {
            std::fs::create_dir_all(d)?;
            d.clone()
        }
        None => {
            tmp = tempfile::tempdir()?;
            tmp.path().to_path_buf()
        }
    };
    eprintln!(
        "generating {} hashes, {} queries (seed {})",
        a.n, a.queries, a.seed
    );
    let mut d = generate(&a)?;
    let quality = vec![100u8; a.n];
    let t = Instant::now();
    bits::write(&dir, WORDS, &d.codes, &quality)?;
    let build_s = t.elapsed().as_secs_f64();
    // The index is what the process holds from here on: the generated
    // codes go, and the segment is searched through its maps.
    d.codes = Vec::new();
    drop(quality);
    let rss_before = current_rss();
    let t = Instant::now();
    let seg = SealedBits::open(&dir, a.n, WORDS)?;
    let open_ms = t.elapsed().as_secs_f64() * 1e3;
    let disk = std::fs::metadata(dir.join(bits::BITS_FILE))?.len()
        + std::fs::metadata(dir.join(bits::MIH_FILE))?.len();
    let codes = seg.codes()?;
    let radius = a.radius;
    let mut rows = Vec::new();
    let (mih_got, mih_ms) = timed(&d.queries, |q| {
        let p = Probe {
            query: q,
            radius: Some(radius),
            k: usize::MAX,
            filter: None,
        };
        Ok(seg
            .search(&p, &mut |_| true)?
            .into_iter()
            .map(|h| h.0)
            .collect())
    })?;
    let mih_rss = current_rss().saturating_sub(rss_before);
    let (scan_got, scan_ms) = timed(&d.queries, |q| {
        let mut out = Vec::new();
        hamming::scan(codes, q, radius, 0, &mut |_| true, &mut out);
        Ok(out.into_iter().map(|h| h.0).collect())
    })?;
    let scan_rss = current_rss().saturating_sub(rss_before);
    // The truth: a plain linear scan, distance by distance.
    let truth: Vec<Vec<usize>> = d
        .queries
        .iter()
        .map(|q| {
            (0..a.n)
                .filter(|&i| hamming::distance(&codes[i * WORDS..(i + 1) * WORDS], q) <= radius)
                .collect()
        })
        .collect();
    rows.push(row(
        "vidx sealed, planner (multi-index)",
        build_s,
        mih_rss,
        &mih_got,
        mih_ms,
        &d,
        &truth,
    ));
    rows.push(row(
        "vidx sealed, popcount scan",
        build_s,
        scan_rss,
        &scan_got,
        scan_ms,
        &d,
        &truth,
    ));
    if let Some(py) = &a.peers {
        export(&dir, codes, &d, &truth, radius)?;
        for index in ["flat", "multihash"] {
            rows.push(run_peer(py, &dir, index)?);
        }
    }
    print_table(&a, &rows, disk, open_ms);
    for r in &rows {
        if r.recall < 1.0 {
            bail!("{}: recall {} < 1.0 at radius {radius}", r.engine, r.recall);
        }
    }
    Ok(())
}

fn print_table(a: &PdqOptions, rows: &[Row], disk: u64, open_ms: f64) {
    let mut o = std::io::stdout().lock();
    let _ = writeln!(
        o,
        "PDQ radius search: {} hashes (256-bit; {} queries x {} planted within {} + 1 decoy outside), radius {}, 1 thread",
        a.n, a.queries, a.planted, a.radius, a.radius
    );
    let _ = writeln!(
        o,
        "vidx segment files (bits.bin + mih.bin): {:.1} MB on disk, opened in {open_ms:.1} ms\n",
        disk as f64 / 1048576.0
    );
    let _ = writeln!(
        o,
        "| engine | build s | RAM MB | QPS | p50 ms | p99 ms | recall | planted found |"
    );
    let _ = writeln!(o, "|---|---:|---:|---:|---:|---:|---:|---:|");
    for r in rows {
        let _ = writeln!(
            o,
            "| {} | {:.2} | {:.0} | {:.0} | {:.3} | {:.3} | {:.4} | {} |",
            r.engine, r.build_s, r.ram_mb, r.qps, r.p50_ms, r.p99_ms, r.recall, r.planted_found
        );
    }
}
