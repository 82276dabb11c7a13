//! Storage benchmark (issue: durable, memory-mapped storage).
//!
//! Builds a sealed collection of N clustered vectors (default 1,000,000 ×
//! 512-d, cosine) in a scratch data directory, then reports:
//!
//! - build: insert rate into the mutable segment (vidx's HNSW) and seal time;
//! - search on the same graph: the mutable segment's in-memory search vs the
//!   in-place search over the sealed, memory-mapped files, QPS on one thread
//!   and recall@10 against exact brute force, at several ef;
//! - cold open, in a fresh child process: time to open the data directory,
//!   time to the first query result, resident memory right after open (and
//!   after 1,000 queries) against the size of the files.
//!
//! Run: `cargo bench --bench storage -- [--n 1000000] [--dim 512] [--ef-construction 200] [--dir /tmp/vidx-bench]`.
//! The data directory is kept and reused if it already holds a collection of
//! the requested size (`--rebuild` forces a new one). Nothing here is
//! committed data: every vector is generated from a fixed seed.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use rayon::prelude::*;
use vidx::collection::config::{Config, Kind};
use vidx::collection::registry::Registry;
use vidx::collection::{Collection, StorageOptions};
use vidx::index::distance::Metric;
use vidx::pb;
use vidx::segment::mutable::{MutableSegment, Prepared};
use vidx::segment::sealed::SealedSegment;
use vidx::storage::manifest::{Manifest, SegmentEntry, segment_dir_name};

struct Args {
    n: usize,
    dim: usize,
    queries: usize,
    dir: PathBuf,
    rebuild: bool,
    child: bool,
    ef_construction: usize,
}

fn args() -> Args {
    let mut a = Args {
        n: 1_000_000,
        dim: 512,
        queries: 200,
        dir: std::env::temp_dir().join("vidx-bench-storage"),
        rebuild: false,
        child: false,
        ef_construction: 200,
    };
    let mut it = std::env::args().skip(1);
    while let Some(x) = it.next() {
        let mut val = || it.next().expect("flag needs a value");
        match x.as_str() {
            "--n" => a.n = val().parse().expect("--n"),
            "--dim" => a.dim = val().parse().expect("--dim"),
            "--queries" => a.queries = val().parse().expect("--queries"),
            "--dir" => a.dir = PathBuf::from(val()),
            "--rebuild" => a.rebuild = true,
            "--ef-construction" => a.ef_construction = val().parse().expect("--ef-construction"),
            "--open-child" => a.child = true,
            "--bench" => {} // cargo bench passes this
            other => panic!("unknown argument {other}"),
        }
    }
    a
}

fn vector(seed: u64, row: usize, dim: usize, centres: usize) -> Vec<f32> {
    vidx::tools::bench_ann::image_vector(seed, row, dim, centres)
}

fn rss() -> (u64, u64, u64) {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kb = |key: &str| {
        s.lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
            * 1024
    };
    (kb("VmRSS:"), kb("RssAnon:"), kb("RssFile:"))
}

fn mib(b: u64) -> String {
    format!("{:.1} MiB", b as f64 / (1 << 20) as f64)
}

fn exact(data: &[f32], dim: usize, q: &[f32], k: usize) -> Vec<usize> {
    let mut d: Vec<(usize, f32)> = data
        .chunks_exact(dim)
        .enumerate()
        .map(|(i, v)| (i, Metric::Cosine.rank(q, v)))
        .collect();
    vidx::index::planner::top_k(&mut d, k);
    d.into_iter().map(|(i, _)| i).collect()
}

fn main() {
    let a = args();
    if a.child {
        return open_child(&a);
    }
    let coll_dir = a.dir.join("collections/bench");
    let stamp = a.dir.join("built.json");
    let want = format!(
        "{{\"n\":{},\"dim\":{},\"ef_construction\":{}}}",
        a.n, a.dim, a.ef_construction
    );
    let built = std::fs::read_to_string(&stamp).is_ok_and(|s| s == want);
    println!(
        "# vidx storage benchmark: {} x {}-d cosine, data dir {}",
        a.n,
        a.dim,
        a.dir.display()
    );
    println!(
        "machine: {} cores",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    if a.rebuild || !built {
        let _ = std::fs::remove_dir_all(&a.dir);
        std::fs::create_dir_all(a.dir.join("collections")).unwrap();
        build(&a, &coll_dir);
        std::fs::write(&stamp, &want).unwrap();
    } else {
        println!(
            "(reusing the collection built earlier in {}; --rebuild to redo)",
            a.dir.display()
        );
    }
    // Cold open in a fresh process so nothing of the build is resident.
    let exe = std::env::current_exe().unwrap();
    let dropped = std::fs::write("/proc/sys/vm/drop_caches", "3").is_ok();
    println!(
        "\n## open in a fresh process ({})",
        if dropped {
            "page cache dropped first"
        } else {
            "page cache not dropped: no permission"
        }
    );
    let status = Command::new(exe)
        .args([
            "--open-child",
            "--n",
            &a.n.to_string(),
            "--dim",
            &a.dim.to_string(),
            "--dir",
        ])
        .arg(&a.dir)
        .status()
        .unwrap();
    assert!(status.success());
}

fn build(a: &Args, coll_dir: &Path) {
    let dim = a.dim;
    let centres = (a.n / 100).max(1);
    println!("\n## build");
    let t = Instant::now();
    let data: Vec<f32> = (0..a.n)
        .into_par_iter()
        .flat_map_iter(|i| vector(42, i, dim, centres))
        .collect();
    let queries: Vec<Vec<f32>> = (0..a.queries)
        .map(|i| vector(42, a.n + i, dim, centres))
        .collect();
    println!("generated {} vectors in {:.1?}", a.n, t.elapsed());

    let mut config = Config::new("bench", dim as u32, Metric::Cosine, Kind::Image);
    config.ef_construction = a.ef_construction as u32;
    let seg = MutableSegment::new(
        dim,
        Metric::Cosine,
        config.m as usize,
        config.ef_construction as usize,
    );
    let t = Instant::now();
    let batch = 10_000;
    for start in (0..a.n).step_by(batch) {
        let end = (start + batch).min(a.n);
        let pts: Vec<Prepared> = (start..end)
            .map(|i| Prepared {
                id: format!("media-{i:09}"),
                vector: data[i * dim..(i + 1) * dim].to_vec(),
                metadata: pb::Metadata {
                    media_id: format!("{i:040x}"),
                    upload_id: format!("UPL-{:06}", i % 5000),
                    country: ["DE", "FR", "NL", "BR", "US", "AU"][i % 6].into(),
                    captured_at: 1_400_000_000 + i as i64,
                    ..Default::default()
                },
                ..Default::default()
            })
            .collect();
        seg.index(start, &pts);
        seg.commit(start, pts);
        if (end / batch) % 10 == 0 || end == a.n {
            let s = t.elapsed().as_secs_f64();
            println!(
                "  inserted {end:>9} in {s:>7.1}s ({:.0} points/s)",
                end as f64 / s
            );
        }
    }
    let build_s = t.elapsed().as_secs_f64();
    println!(
        "mutable segment (m {}, ef_construction {}): {:.0} inserts/s, {build_s:.1}s",
        config.m,
        config.ef_construction,
        a.n as f64 / build_s
    );

    // Lay out a real collection directory around the sealed segment.
    Collection::create(coll_dir, config.clone(), StorageOptions::default()).unwrap();
    let sdir = coll_dir.join(segment_dir_name(1));
    std::fs::create_dir(&sdir).unwrap();
    let t = Instant::now();
    seg.write_sealed(&sdir, Default::default()).unwrap();
    println!("sealed to {} in {:.1?}", sdir.display(), t.elapsed());
    let mut m = Manifest::load(coll_dir).unwrap();
    m.segments.push(SegmentEntry {
        id: 1,
        points: a.n as u64,
        tombstones: vidx::segment::sealed::tomb_file_name(0),
    });
    m.next_segment = 2;
    m.store(coll_dir).unwrap();

    // Same graph, two search routines.
    let sealed = SealedSegment::open(
        1,
        &sdir,
        dim,
        Metric::Cosine,
        &vidx::segment::sealed::tomb_file_name(0),
    )
    .unwrap();
    let t = Instant::now();
    let truth: Vec<Vec<usize>> = queries
        .par_iter()
        .map(|q| exact(&data, dim, q, 10))
        .collect();
    println!(
        "exact ground truth for {} queries in {:.1?}",
        queries.len(),
        t.elapsed()
    );
    println!("\n## search on the same graph, 1 thread, k = 10");
    println!(
        "| ef | vidx mutable (in memory) QPS | recall@10 | vidx sealed (mmap) QPS | recall@10 | sealed ÷ mutable |"
    );
    println!("|---:|---:|---:|---:|---:|---:|");
    for ef in [16, 32, 64, 128, 256] {
        let run = |f: &dyn Fn(&[f32]) -> Vec<usize>| {
            // Two rounds: the first warms caches, the second is timed.
            for q in &queries {
                std::hint::black_box(f(q));
            }
            let t = Instant::now();
            let res: Vec<Vec<usize>> = queries.iter().map(|q| f(q)).collect();
            let qps = queries.len() as f64 / t.elapsed().as_secs_f64();
            let hit: usize = res
                .iter()
                .zip(&truth)
                .map(|(r, t)| r.iter().filter(|x| t.contains(x)).count())
                .sum();
            (qps, hit as f64 / (10 * queries.len()) as f64)
        };
        let (hq, hr) = run(&|q| {
            seg.search(q, 10, ef, None, None)
                .into_iter()
                .map(|(i, _)| i)
                .collect()
        });
        let (sq, sr) = run(&|q| {
            sealed
                .search(q, 10, ef, None, None)
                .unwrap()
                .into_iter()
                .map(|(i, _)| i)
                .collect()
        });
        println!(
            "| {ef} | {hq:.0} | {hr:.4} | {sq:.0} | {sr:.4} | {:.2} |",
            sq / hq
        );
    }
}

fn open_child(a: &Args) {
    let before = rss();
    let t = Instant::now();
    let registry = Registry::open(
        &a.dir,
        StorageOptions {
            // Measured separately below: the checksum pass that follows open.
            verify_on_open: false,
            ..Default::default()
        },
    )
    .unwrap();
    let open = t.elapsed();
    let after_open = rss();
    let c: Arc<Collection> = registry.get("bench").unwrap();
    let centres = (a.n / 100).max(1);
    let q = vector(42, a.n + 1, a.dim, centres);
    let t = Instant::now();
    let hits = c
        .search(
            &[vidx::collection::Query::Vector(q)],
            10,
            64,
            &Default::default(),
        )
        .unwrap();
    let first = t.elapsed();
    assert_eq!(hits[0].len(), 10);
    let files = vidx::storage::durable::dir_size(&a.dir);
    println!("| what | value |");
    println!("|---|---:|");
    println!("| points | {} |", c.len());
    println!("| files on disk | {} |", mib(files));
    println!(
        "| open (Registry::open, all headers checked) | {:.1} ms |",
        open.as_secs_f64() * 1e3
    );
    println!(
        "| first query result after open (ef 64) | {:.1} ms |",
        first.as_secs_f64() * 1e3
    );
    println!(
        "| RSS before open / after open | {} / {} (anon {}, file-backed {}) |",
        mib(before.0),
        mib(after_open.0),
        mib(after_open.1),
        mib(after_open.2)
    );
    println!(
        "| RSS after open ÷ file size | {:.2}% |",
        100.0 * after_open.0 as f64 / files as f64
    );
    let qs: Vec<vidx::collection::Query> = (0..1000)
        .map(|i| vidx::collection::Query::Vector(vector(7, i, a.dim, centres)))
        .collect();
    let mut after_q = rss();
    for pass in [
        "cold: pages fault in from disk",
        "warm: second pass, same queries",
    ] {
        let t = Instant::now();
        for q in &qs {
            c.search(std::slice::from_ref(q), 10, 64, &Default::default())
                .unwrap();
        }
        let per = t.elapsed().as_secs_f64() / qs.len() as f64;
        println!(
            "| 1,000 queries, 1 thread, ef 64 ({pass}) | {:.0} QPS |",
            1.0 / per
        );
        if after_q.0 == before.0 {
            after_q = rss();
        }
        after_q = rss().max(after_q);
    }
    println!(
        "| RSS after 1,000 queries | {} (file-backed {}) |",
        mib(after_q.0),
        mib(after_q.2)
    );
    let t = Instant::now();
    let segs_ok = std::fs::read_dir(a.dir.join("collections/bench"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("seg-"))
        .map(|e| {
            SealedSegment::open(
                1,
                &e.path(),
                a.dim,
                Metric::Cosine,
                &vidx::segment::sealed::tomb_file_name(0),
            )
            .and_then(|s| s.verify())
        })
        .all(|r| r.is_ok());
    println!(
        "| background checksum pass (all files, read() not mmap) | {:.1} s, {} |",
        t.elapsed().as_secs_f64(),
        if segs_ok { "ok" } else { "FAILED" }
    );
}
