//! The cluster test, run by `scripts/cluster-test.sh` against the loopback
//! cluster of `scripts/cluster-up.sh`: ingests points through the router
//! while it `kill -9`s an index replica, a NATS server and (three times,
//! mid-request) the router, with searches running throughout; then checks
//! that every acknowledged point is returned by `Get`, that every batch
//! whose acknowledgement never came is wholly present or wholly absent (and,
//! sent again as a client would, then present), recall@10 against brute
//! force, and that the killed replica, restarted with an empty data
//! directory, catches up from object storage and the stream and answers as
//! its peer does. Prints the figures, then one
//! `N passed, N failed` line; exits non-zero on any failed check.

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};
use rayon::prelude::*;
use tonic::transport::Channel;
use vidx::pb;
use vidx::pb::vector_index_client::VectorIndexClient;

type Client = VectorIndexClient<Channel>;

const COLLECTION: &str = "cluster_check";
const QUERIES: usize = 200;
const K: usize = 10;

struct Settings {
    cluster_dir: PathBuf,
    router: String,
    /// Index nodes' addresses: shard 0 replica 0 and replica 1.
    peer: String,
    victim: String,
    /// A NATS server's monitoring endpoint (stream state).
    nats_monitor: String,
    /// The second router, whose data directory holds tokens.
    auth_router: String,
    /// The vidx binary (`vidx token create`).
    vidx: PathBuf,
    points: usize,
    dim: usize,
    batch: usize,
}

fn settings() -> Settings {
    let env = |k: &str, d: &str| std::env::var(k).unwrap_or_else(|_| d.to_string());
    let num = |k: &str, d: usize| env(k, &d.to_string()).parse::<usize>().expect(k);
    Settings {
        cluster_dir: PathBuf::from(env("VIDX_CLUSTER_DIR", "cluster-run")),
        router: env("ROUTER_ADDR", "127.0.0.1:24050"),
        peer: env("PEER_ADDR", "127.0.0.1:24040"),
        victim: env("VICTIM_ADDR", "127.0.0.1:24041"),
        nats_monitor: env("NATS_MONITOR", "http://127.0.0.1:24005"),
        auth_router: env("AUTH_ROUTER_ADDR", "127.0.0.1:24051"),
        vidx: PathBuf::from(env("VIDX_BIN", "target/release/vidx")),
        points: num("CHECK_POINTS", 100_000),
        dim: num("CHECK_DIM", 128),
        batch: num("CHECK_BATCH", 1000),
    }
}

/// Clustered unit vectors: 1,000 centres, members around them.
fn dataset(n: usize, dim: usize, seed: u64) -> Vec<Vec<f32>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let normal = Normal::new(0.0f32, 1.0).unwrap();
    let unit = |v: &mut Vec<f32>| {
        let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        v.iter_mut().for_each(|x| *x /= n);
    };
    let centres: Vec<Vec<f32>> = (0..1000)
        .map(|_| {
            let mut v: Vec<f32> = (0..dim).map(|_| normal.sample(&mut rng)).collect();
            unit(&mut v);
            v
        })
        .collect();
    // Members at cosine ~0.85 to their centre (DESIGN.md: series members
    // 0.75–0.95), 100 to a centre on average.
    let spread = 0.6 / (dim as f32).sqrt();
    (0..n)
        .map(|_| {
            let c = &centres[rng.random_range(0..centres.len())];
            let mut v: Vec<f32> = c
                .iter()
                .map(|x| x + spread * normal.sample(&mut rng))
                .collect();
            unit(&mut v);
            v
        })
        .collect()
}

fn id_of(i: usize) -> String {
    format!("p{i:06}")
}

fn point(i: usize, v: &[f32]) -> pb::Point {
    pb::Point {
        id: id_of(i),
        vector: v.to_vec(),
        metadata: Some(pb::Metadata {
            media_id: id_of(i),
            upload_id: format!("UPL-{:04}", i / 1000),
            ..Default::default()
        }),
        ..Default::default()
    }
}

async fn connect(addr: &str, within: Duration) -> Client {
    let until = Instant::now() + within;
    loop {
        match vidx::api::server::channel(addr).await {
            Ok(ch) => {
                return VectorIndexClient::new(ch)
                    .max_decoding_message_size(usize::MAX)
                    .max_encoding_message_size(usize::MAX);
            }
            Err(e) if Instant::now() > until => panic!("cannot reach {addr}: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

fn pid_of(s: &Settings, name: &str) -> u32 {
    let p = s.cluster_dir.join("pids").join(format!("{name}.pid"));
    std::fs::read_to_string(&p).unwrap().trim().parse().unwrap()
}

fn kill9(s: &Settings, name: &str) {
    let pid = pid_of(s, name);
    let ok = Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -9 {name} ({pid})");
    // Gone (or a zombie) before anything restarts on its ports.
    let stat = format!("/proc/{pid}/stat");
    let until = Instant::now() + Duration::from_secs(10);
    while Instant::now() < until {
        match std::fs::read_to_string(&stat) {
            Ok(st)
                if !st
                    .rsplit(')')
                    .next()
                    .unwrap_or("")
                    .trim_start()
                    .starts_with('Z') =>
            {
                std::thread::sleep(Duration::from_millis(20))
            }
            _ => break,
        }
    }
    println!("  kill -9 {name} (pid {pid})");
}

fn restart(s: &Settings, name: &str) {
    let script = s.cluster_dir.join("bin").join(format!("{name}.sh"));
    let ok = Command::new("bash")
        .arg(&script)
        .status()
        .unwrap()
        .success();
    assert!(ok, "restarting {name}");
    println!("  restarted {name} (pid {})", pid_of(s, name));
}

/// One Upsert call streaming `batches` as messages, `gap` apart.
async fn upsert_paced(
    mut c: Client,
    batches: Vec<Vec<pb::Point>>,
    gap: Duration,
) -> Result<u64, tonic::Status> {
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    tokio::spawn(async move {
        for points in batches {
            let req = pb::UpsertRequest {
                collection: COLLECTION.into(),
                points,
            };
            if tx.send(req).await.is_err() {
                return;
            }
            tokio::time::sleep(gap).await;
        }
    });
    let mut r = tonic::Request::new(tokio_stream::wrappers::ReceiverStream::new(rx));
    r.set_timeout(Duration::from_secs(60));
    c.upsert(r).await.map(|r| r.into_inner().upserted)
}

/// Searches through the router until stopped; counts answers and failures.
struct Searcher {
    ok: AtomicU64,
    failed: AtomicU64,
    /// Failures while the router was down on purpose.
    failed_router_down: AtomicU64,
    router_down: AtomicBool,
    stop: AtomicBool,
}

async fn search_loop(st: Arc<Searcher>, router: String, queries: Arc<Vec<Vec<f32>>>) {
    let mut c = connect(&router, Duration::from_secs(30)).await;
    let mut i = 0usize;
    while !st.stop.load(Ordering::SeqCst) {
        let mut r = tonic::Request::new(search_req(&queries[i % queries.len()], 128));
        r.set_timeout(Duration::from_secs(5));
        match c.search(r).await {
            Ok(_) => st.ok.fetch_add(1, Ordering::SeqCst),
            Err(e) if st.router_down.load(Ordering::SeqCst) => {
                let _ = e;
                st.failed_router_down.fetch_add(1, Ordering::SeqCst)
            }
            Err(e) => {
                println!("  search failed: {}: {}", e.code(), e.message());
                st.failed.fetch_add(1, Ordering::SeqCst)
            }
        };
        i += 1;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn search_req(q: &[f32], ef: u32) -> pb::SearchRequest {
    pb::SearchRequest {
        collection: COLLECTION.into(),
        queries: vec![pb::Query {
            query: Some(pb::query::Query::Vector(pb::Vector { values: q.to_vec() })),
        }],
        k: K as u32,
        ef,
        ..Default::default()
    }
}

/// What ingesting gave: acknowledged batches and those whose answer never came.
struct Ingested {
    acked: Vec<usize>,
    unacked: Vec<usize>,
    seconds: f64,
}

async fn ingest(s: &Settings, data: &[Vec<f32>], st: &Arc<Searcher>) -> Ingested {
    let batches = data.len().div_ceil(s.batch);
    let router_kills: Vec<usize> = [0.6, 0.75, 0.9]
        .iter()
        .map(|f| (batches as f64 * f) as usize)
        .collect();
    let mut client = connect(&s.router, Duration::from_secs(30)).await;
    let (mut acked, mut unacked) = (Vec::new(), Vec::new());
    let started = Instant::now();
    let mut b = 0;
    while b < batches {
        if b == batches / 4 {
            kill9(s, "s0-r1");
        }
        if b == batches * 45 / 100 {
            kill9(s, "nats-1");
        }
        // At a router kill, one Upsert call streams 5 batches 10 ms apart
        // and the router dies 25 ms in: some batches are in the log by then
        // and some are not; none is acknowledged.
        let n = if router_kills.contains(&b) {
            5.min(batches - b)
        } else {
            1
        };
        let call: Vec<Vec<pb::Point>> = (b..b + n).map(|b| batch_of(data, s.batch, b)).collect();
        let r = if n > 1 {
            let task = tokio::spawn(upsert_paced(
                client.clone(),
                call,
                Duration::from_millis(10),
            ));
            tokio::time::sleep(Duration::from_millis(25)).await;
            st.router_down.store(true, Ordering::SeqCst);
            kill9(s, "router");
            let r = task.await.unwrap();
            restart(s, "router");
            client = connect(&s.router, Duration::from_secs(30)).await;
            wait_describe(&mut client, Duration::from_secs(30)).await;
            st.router_down.store(false, Ordering::SeqCst);
            r
        } else {
            upsert_paced(client.clone(), call, Duration::ZERO).await
        };
        match r {
            Ok(_) => acked.extend(b..b + n),
            Err(e) => {
                println!(
                    "  batches {b}..{} not acknowledged: {}: {}",
                    b + n - 1,
                    e.code(),
                    e.message()
                );
                unacked.extend(b..b + n);
            }
        }
        b += n;
    }
    Ingested {
        acked,
        unacked,
        seconds: started.elapsed().as_secs_f64(),
    }
}

async fn wait_describe(c: &mut Client, within: Duration) -> pb::CollectionInfo {
    let until = Instant::now() + within;
    loop {
        let req = pb::DescribeCollectionRequest {
            name: COLLECTION.into(),
        };
        match c.describe_collection(req).await {
            Ok(r) => return r.into_inner(),
            Err(e) if Instant::now() > until => panic!("describe: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

async fn get_ids(c: &mut Client, ids: &[String]) -> Result<Vec<pb::Point>, tonic::Status> {
    let mut out = Vec::new();
    for chunk in ids.chunks(5000) {
        let req = pb::GetRequest {
            collection: COLLECTION.into(),
            ids: chunk.to_vec(),
        };
        out.extend(c.get(req).await?.into_inner().points);
    }
    Ok(out)
}

/// Exact top-k ids of every query among `present`.
fn brute_force(data: &[Vec<f32>], present: &[usize], queries: &[Vec<f32>]) -> Vec<Vec<String>> {
    queries
        .par_iter()
        .map(|q| {
            let mut d: Vec<(f32, usize)> = present
                .iter()
                .map(|&i| {
                    (
                        1.0 - data[i].iter().zip(q).map(|(a, b)| a * b).sum::<f32>(),
                        i,
                    )
                })
                .collect();
            d.select_nth_unstable_by(K, |a, b| a.0.total_cmp(&b.0));
            d.truncate(K);
            d.sort_by(|a, b| a.0.total_cmp(&b.0));
            d.into_iter().map(|(_, i)| id_of(i)).collect()
        })
        .collect()
}

async fn recall(
    c: &mut Client,
    queries: &[Vec<f32>],
    truth: &[Vec<String>],
    ef: u32,
) -> (f64, Vec<Vec<String>>) {
    let (mut hit, mut total) = (0usize, 0usize);
    let mut answers = Vec::new();
    for (q, t) in queries.iter().zip(truth) {
        let r = c
            .search(search_req(q, ef))
            .await
            .expect("search")
            .into_inner();
        let ids: Vec<String> = r.results[0].hits.iter().map(|h| h.id.clone()).collect();
        let want: HashSet<&String> = t.iter().collect();
        hit += ids.iter().filter(|i| want.contains(i)).count();
        total += t.len();
        answers.push(ids);
    }
    (hit as f64 / total.max(1) as f64, answers)
}

struct Checks {
    passed: usize,
    failed: usize,
}

impl Checks {
    fn check(&mut self, ok: bool, what: String) {
        println!("{} {what}", if ok { "PASS" } else { "FAIL" });
        if ok {
            self.passed += 1;
        } else {
            self.failed += 1;
        }
    }
}

#[tokio::main]
async fn main() {
    let s = settings();
    let mut checks = Checks {
        passed: 0,
        failed: 0,
    };
    println!(
        "== {} points of {}-d through router {}",
        s.points, s.dim, s.router
    );
    let data = dataset(s.points, s.dim, 42);
    let queries: Arc<Vec<Vec<f32>>> = Arc::new(dataset(QUERIES, s.dim, 7));
    let mut router = connect(&s.router, Duration::from_secs(60)).await;
    create(&mut router, s.dim).await;
    wait_describe(&mut router, Duration::from_secs(60)).await;

    let st = Arc::new(Searcher {
        ok: AtomicU64::new(0),
        failed: AtomicU64::new(0),
        failed_router_down: AtomicU64::new(0),
        router_down: AtomicBool::new(false),
        stop: AtomicBool::new(false),
    });
    let searching = tokio::spawn(search_loop(st.clone(), s.router.clone(), queries.clone()));
    let ing = ingest(&s, &data, &st).await;
    println!(
        "  ingest: {} batches acknowledged, {} not, {:.1} s ({:.0} points/s acknowledged)",
        ing.acked.len(),
        ing.unacked.len(),
        ing.seconds,
        (ing.acked.len() * s.batch) as f64 / ing.seconds
    );
    restart(&s, "nats-1");
    let present = after_ingest(&s, &data, &ing, &mut checks).await;
    st.stop.store(true, Ordering::SeqCst);
    let _ = searching.await;
    let (ok, failed, down) = (
        st.ok.load(Ordering::SeqCst),
        st.failed.load(Ordering::SeqCst),
        st.failed_router_down.load(Ordering::SeqCst),
    );
    checks.check(
        failed == 0 && ok > 0,
        format!("searches during the run: {ok} answered, {failed} failed ({down} more failed while the router itself was killed)"),
    );
    replica_checks(&s, &data, &present, &queries, &mut checks).await;
    throughput(&s, &queries).await;
    security_checks(&s, &data, &mut checks).await;
    println!("{} passed, {} failed", checks.passed, checks.failed);
    std::process::exit(if checks.failed == 0 { 0 } else { 1 });
}

async fn create(c: &mut Client, dim: usize) {
    let until = Instant::now() + Duration::from_secs(60);
    loop {
        let req = pb::CreateCollectionRequest {
            name: COLLECTION.into(),
            dim: dim as u32,
            metric: pb::Metric::Cosine as i32,
            kind: pb::Kind::Image as i32,
            hnsw: Some(pb::HnswConfig {
                m: 16,
                ef_construction: 100,
            }),
            ..Default::default()
        };
        match c.create_collection(req).await {
            Ok(_) => return,
            Err(e) if e.code() == tonic::Code::AlreadyExists => return,
            Err(e) if Instant::now() > until => panic!("create: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    }
}

/// Every acknowledged point readable, unacknowledged batches all or
/// nothing; then those sent again, as a client would, until every point is
/// in. Returns the points present (all of them).
async fn after_ingest(
    s: &Settings,
    data: &[Vec<f32>],
    ing: &Ingested,
    checks: &mut Checks,
) -> Vec<usize> {
    let mut router = connect(&s.router, Duration::from_secs(30)).await;
    let batch_ids =
        |b: usize| -> Vec<usize> { (b * s.batch..((b + 1) * s.batch).min(data.len())).collect() };
    let acked: Vec<usize> = ing.acked.iter().flat_map(|&b| batch_ids(b)).collect();
    let acked_ids: Vec<String> = acked.iter().map(|&i| id_of(i)).collect();
    // Index nodes apply the log asynchronously: wait for them to catch up.
    let started = Instant::now();
    let mut found = 0;
    while started.elapsed() < Duration::from_secs(180) {
        found = match get_ids(&mut router, &acked_ids).await {
            Ok(p) => p.len(),
            Err(_) => 0,
        };
        if found == acked_ids.len() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    println!(
        "  all acknowledged points readable {:.1} s after the last acknowledgement",
        started.elapsed().as_secs_f64()
    );
    checks.check(
        found == acked_ids.len(),
        format!(
            "Get returns {found} of {} acknowledged points",
            acked_ids.len()
        ),
    );
    let points = get_ids(&mut router, &acked_ids).await.unwrap_or_default();
    if points.len() < acked_ids.len() {
        let have: HashSet<&str> = points.iter().map(|p| p.id.as_str()).collect();
        let mut missing: BTreeMap<usize, usize> = BTreeMap::new();
        for &i in acked.iter().filter(|&&i| !have.contains(id_of(i).as_str())) {
            *missing.entry(i / s.batch).or_default() += 1;
        }
        println!("  missing points by batch: {missing:?}");
    }
    let exact = points.iter().all(|p| {
        let i: usize = p.id[1..].parse().unwrap();
        p.vector
            .iter()
            .zip(&data[i])
            .all(|(a, b)| (a - b).abs() < 1e-5)
    });
    checks.check(exact, "every point read back has the vector written".into());
    for &b in &ing.unacked {
        let ids: Vec<String> = batch_ids(b).iter().map(|&i| id_of(i)).collect();
        let n = get_ids(&mut router, &ids)
            .await
            .map(|p| p.len())
            .unwrap_or(usize::MAX);
        checks.check(
            n == 0 || n == ids.len(),
            format!(
                "unacknowledged batch {b}: {n} of {} points present (all or none)",
                ids.len()
            ),
        );
    }
    // What a client does with a batch whose answer never came: send it
    // again (an upsert is idempotent). Then all the points are in.
    for &b in &ing.unacked {
        let r = upsert_paced(
            router.clone(),
            vec![batch_of(data, s.batch, b)],
            Duration::ZERO,
        )
        .await;
        checks.check(
            r.is_ok(),
            format!("unacknowledged batch {b} sent again: {r:?}"),
        );
    }
    let all: Vec<String> = (0..data.len()).map(id_of).collect();
    let started = Instant::now();
    let mut found = 0;
    while started.elapsed() < Duration::from_secs(120) {
        found = get_ids(&mut router, &all)
            .await
            .map(|p| p.len())
            .unwrap_or(0);
        if found == all.len() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    checks.check(
        found == all.len(),
        format!(
            "after re-sending: Get returns {found} of {} points",
            all.len()
        ),
    );
    (0..data.len()).collect()
}

fn batch_of(data: &[Vec<f32>], batch: usize, b: usize) -> Vec<pb::Point> {
    let lo = b * batch;
    (lo..(lo + batch).min(data.len()))
        .map(|i| point(i, &data[i]))
        .collect()
}

/// Recall through the router, then the replica killed during ingest,
/// restarted empty: catches up and answers as its peer.
async fn replica_checks(
    s: &Settings,
    data: &[Vec<f32>],
    present: &[usize],
    queries: &[Vec<f32>],
    checks: &mut Checks,
) {
    let mut router = connect(&s.router, Duration::from_secs(30)).await;
    let truth = brute_force(data, present, queries);
    let (r, _) = recall(&mut router, queries, &truth, 128).await;
    checks.check(
        r >= 0.95,
        format!("recall@10 through the router (ef 128) = {r:.4} (>= 0.95)"),
    );

    let victim_dir = s.cluster_dir.join("data").join("s0-r1");
    let _ = std::fs::remove_dir_all(&victim_dir);
    let started = Instant::now();
    restart(s, "s0-r1");
    let mut peer = connect(&s.peer, Duration::from_secs(30)).await;
    let mut victim = connect(&s.victim, Duration::from_secs(60)).await;
    let want = wait_describe(&mut peer, Duration::from_secs(30))
        .await
        .points;
    let mut have = 0;
    while started.elapsed() < Duration::from_secs(240) {
        let req = pb::DescribeCollectionRequest {
            name: COLLECTION.into(),
        };
        have = victim
            .describe_collection(req)
            .await
            .map(|r| r.into_inner().points)
            .unwrap_or(0);
        if have == want {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    println!(
        "  s0-r1 restarted empty: {have} of {want} points after {:.1} s",
        started.elapsed().as_secs_f64()
    );
    checks.check(
        have == want,
        format!("restarted replica holds its peer's {want} points"),
    );
    let restored = std::fs::read_to_string(s.cluster_dir.join("logs").join("s0-r1.log"))
        .unwrap_or_default()
        .lines()
        .rev()
        .find(|l| l.contains("restored from object storage"))
        .map(str::to_string);
    let restored = restored.unwrap_or_default();
    let seq: Option<u64> = restored
        .split("stream_seq=")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok());
    checks.check(
        seq.is_some(),
        format!("it started from object storage: {restored}"),
    );
    let log_end = log_end(s).await;
    println!(
        "  snapshot holds the log up to #{}; the stream after it ({} messages, up to #{log_end}) was replayed",
        seq.unwrap_or(0),
        log_end.saturating_sub(seq.unwrap_or(0))
    );
    compare_peers(&mut peer, &mut victim, data, present, queries, checks).await;
}

async fn compare_peers(
    peer: &mut Client,
    victim: &mut Client,
    data: &[Vec<f32>],
    present: &[usize],
    queries: &[Vec<f32>],
    checks: &mut Checks,
) {
    let shard0: Vec<usize> = present
        .iter()
        .copied()
        .filter(|&i| vidx::cluster::shard::shard_of(&id_of(i), 2) == 0)
        .collect();
    let ids: Vec<String> = shard0.iter().map(|&i| id_of(i)).collect();
    let norm = |ps: Vec<pb::Point>| -> BTreeMap<String, (Vec<u32>, Option<pb::Metadata>)> {
        ps.into_iter()
            .map(|p| {
                (
                    p.id,
                    (p.vector.iter().map(|x| x.to_bits()).collect(), p.metadata),
                )
            })
            .collect()
    };
    let a = norm(get_ids(peer, &ids).await.expect("get from peer"));
    let b = norm(
        get_ids(victim, &ids)
            .await
            .expect("get from restarted replica"),
    );
    checks.check(
        a.len() == ids.len() && a == b,
        format!(
            "Get of shard 0's {} points: peer {}, restarted {}, identical: {}",
            ids.len(),
            a.len(),
            b.len(),
            a == b
        ),
    );
    let truth = brute_force(data, &shard0, queries);
    let (ra, ans_a) = recall(peer, queries, &truth, 128).await;
    let (rb, ans_b) = recall(victim, queries, &truth, 128).await;
    let same = ans_a.iter().zip(&ans_b).filter(|(x, y)| x == y).count();
    let overlap: usize = ans_a
        .iter()
        .zip(&ans_b)
        .map(|(x, y)| {
            let xs: HashSet<&String> = x.iter().collect();
            y.iter().filter(|i| xs.contains(i)).count()
        })
        .sum();
    let overlap = overlap as f64 / (queries.len() * K) as f64;
    checks.check(
        ra >= 0.95 && rb >= 0.95 && overlap >= 0.95,
        format!(
            "shard-0 searches: recall@10 peer {ra:.4}, restarted {rb:.4}; identical top-10 lists {same}/{}, top-10 overlap {overlap:.4}",
            queries.len()
        ),
    );
}

/// Figures for the capacity model: the collection's size as the shards
/// report it, and search rate and latency through the router (8 clients,
/// one query per request, ef 128).
async fn throughput(s: &Settings, queries: &Arc<Vec<Vec<f32>>>) {
    let mut router = connect(&s.router, Duration::from_secs(30)).await;
    let info = wait_describe(&mut router, Duration::from_secs(30)).await;
    println!(
        "  collection through the router: {} points, {} segments, memory {:.1} MiB, disk {:.1} MiB ({} B/point on disk, both replicas of each shard counted once)",
        info.points,
        info.segments,
        info.memory_bytes as f64 / 1048576.0,
        info.disk_bytes as f64 / 1048576.0,
        info.disk_bytes / info.points.max(1)
    );
    let per_client = 250;
    let started = Instant::now();
    let tasks: Vec<_> = (0..8)
        .map(|t| {
            let (router, queries) = (s.router.clone(), queries.clone());
            tokio::spawn(async move {
                let mut c = connect(&router, Duration::from_secs(10)).await;
                let mut lat = Vec::with_capacity(per_client);
                for i in 0..per_client {
                    let q = &queries[(t * per_client + i) % queries.len()];
                    let t0 = Instant::now();
                    c.search(search_req(q, 128)).await.expect("search");
                    lat.push(t0.elapsed().as_secs_f64() * 1000.0);
                }
                lat
            })
        })
        .collect();
    let mut lat: Vec<f64> = Vec::new();
    for t in tasks {
        lat.extend(t.await.unwrap());
    }
    let secs = started.elapsed().as_secs_f64();
    lat.sort_by(|a, b| a.total_cmp(b));
    println!(
        "  router search: {} queries by 8 clients in {secs:.2} s = {:.0} QPS; latency p50 {:.2} ms, p99 {:.2} ms",
        lat.len(),
        lat.len() as f64 / secs,
        lat[lat.len() / 2],
        lat[lat.len() * 99 / 100]
    );
}

/// The sequence of the last message of the collection's stream, from the
/// NATS monitoring endpoint of the first server.
async fn log_end(s: &Settings) -> u64 {
    let url = format!("{}/jsz?streams=true", s.nats_monitor);
    let body = reqwest::get(&url).await.and_then(|r| r.error_for_status());
    let v: serde_json::Value = match body {
        Ok(r) => r.json().await.unwrap_or_default(),
        Err(_) => return 0,
    };
    let mut end = 0;
    for acc in v["account_details"].as_array().into_iter().flatten() {
        for st in acc["stream_detail"].as_array().into_iter().flatten() {
            if st["name"] == format!("VIDX_{COLLECTION}") {
                end = st["state"]["last_seq"].as_u64().unwrap_or(0);
            }
        }
    }
    end
}

/// `vidx token create --data-dir dir`: the token it prints.
fn token(s: &Settings, dir: &std::path::Path, agency: &str, role: &str, only: &str) -> String {
    let mut cmd = Command::new(&s.vidx);
    cmd.args(["token", "create", "--data-dir"])
        .arg(dir)
        .args(["--agency", agency, "--role", role]);
    if !only.is_empty() {
        cmd.args(["--collections", only]);
    }
    let out = cmd.output().expect("running vidx token create");
    assert!(
        out.status.success(),
        "vidx token create: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn bearer<T>(msg: T, token: &str) -> tonic::Request<T> {
    let mut r = tonic::Request::new(msg);
    if !token.is_empty() {
        let v = format!("Bearer {token}").parse().unwrap();
        r.metadata_mut().insert("authorization", v);
    }
    r
}

async fn upsert_as(
    c: &mut Client,
    token: &str,
    points: Vec<pb::Point>,
) -> Result<u64, tonic::Status> {
    let req = pb::UpsertRequest {
        collection: COLLECTION.into(),
        points,
    };
    let stream = tokio_stream::iter(vec![req]);
    c.upsert(bearer(stream, token))
        .await
        .map(|r| r.into_inner().upserted)
}

async fn get_as(c: &mut Client, token: &str, id: &str) -> Result<Option<pb::Point>, tonic::Status> {
    let req = pb::GetRequest {
        collection: COLLECTION.into(),
        ids: vec![id.to_string()],
    };
    Ok(c.get(bearer(req, token)).await?.into_inner().points.pop())
}

/// Polls `get_as` until `want` holds for what it returns (the apply lag).
async fn wait_get(
    c: &mut Client,
    token: &str,
    id: &str,
    want: impl Fn(&Option<pb::Point>) -> bool,
) -> Option<pb::Point> {
    let until = Instant::now() + Duration::from_secs(60);
    loop {
        let got = get_as(c, token, id).await.ok().flatten();
        if want(&got) || Instant::now() > until {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn code_of<T>(r: &Result<T, tonic::Status>) -> String {
    match r {
        Ok(_) => "OK".into(),
        Err(e) => format!("{:?}: {}", e.code(), e.message()),
    }
}

/// Through a second router whose data directory holds tokens: the gate,
/// a credential's collection limit, the caller's agency stamped on what it
/// stores, and another agency refused when it replaces or deletes it.
/// Restrictions are refused on index nodes (no router would apply them).
async fn security_checks(s: &Settings, data: &[Vec<f32>], checks: &mut Checks) {
    println!("== rights through a router with tokens ({})", s.auth_router);
    let dir = s.cluster_dir.join("data").join("router-auth");
    let a = token(s, &dir, "AG-A", "contributor", "");
    let b = token(s, &dir, "AG-B", "contributor", "");
    let elsewhere = token(s, &dir, "AG-A", "admin", "other_collection");
    restart(s, "router-auth");
    let mut c = connect(&s.auth_router, Duration::from_secs(30)).await;
    let until = Instant::now() + Duration::from_secs(30);
    let anon = loop {
        let r = c.search(search_req(&data[0], 64)).await;
        if r.as_ref().err().map(|e| e.code()) != Some(tonic::Code::Unavailable)
            || Instant::now() > until
        {
            break r;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    checks.check(
        anon.as_ref().err().map(|e| e.code()) == Some(tonic::Code::Unauthenticated),
        format!("search without a token: {}", code_of(&anon)),
    );
    let r = c.search(bearer(search_req(&data[0], 64), &elsewhere)).await;
    checks.check(
        r.as_ref().err().map(|e| e.code()) == Some(tonic::Code::PermissionDenied),
        format!(
            "search with a token limited to another collection: {}",
            code_of(&r)
        ),
    );
    let r = c.search(bearer(search_req(&data[0], 64), &a)).await;
    checks.check(
        r.is_ok(),
        format!("search with agency A's token: {}", code_of(&r)),
    );

    // An id of shard 0, whose two replicas the test can ask directly.
    let id = (0..)
        .map(|n| format!("sec-{n}"))
        .find(|id| vidx::cluster::shard::shard_of(id, 2) == 0)
        .unwrap();
    let mine = |v: &[f32]| pb::Point {
        id: id.clone(),
        vector: v.to_vec(),
        metadata: Some(pb::Metadata {
            media_id: id.clone(),
            ..Default::default()
        }),
        ..Default::default()
    };
    let r = upsert_as(&mut c, &a, vec![mine(&data[0])]).await;
    let got = wait_get(&mut c, &a, &id, |p| p.is_some()).await;
    let agency = got
        .as_ref()
        .and_then(|p| p.metadata.as_ref())
        .map(|m| m.agency.clone());
    checks.check(
        r.is_ok() && agency.as_deref() == Some("AG-A"),
        format!(
            "agency A stores {id} without naming an agency: {}; stored with agency {agency:?}",
            code_of(&r)
        ),
    );
    let r = upsert_as(&mut c, &b, vec![mine(&data[1])]).await;
    checks.check(
        r.as_ref().err().map(|e| e.code()) == Some(tonic::Code::PermissionDenied),
        format!("agency B replaces A's {id}: {}", code_of(&r)),
    );
    let del = |ids: Vec<String>| pb::DeleteRequest {
        collection: COLLECTION.into(),
        ids,
    };
    let r = c.delete(bearer(del(vec![id.clone()]), &b)).await;
    checks.check(
        r.as_ref().err().map(|e| e.code()) == Some(tonic::Code::PermissionDenied),
        format!("agency B deletes A's {id}: {}", code_of(&r)),
    );
    metadata_checks(s, &mut c, (&a, &b), &id, checks).await;
    let kept = get_as(&mut c, &a, &id).await.ok().flatten();
    let same = kept.as_ref().is_some_and(|p| {
        p.vector
            .iter()
            .zip(&data[0])
            .all(|(x, y)| (x - y).abs() < 1e-5)
    });
    checks.check(same, format!("{id} is still A's, with A's vector"));
    let r = c.delete(bearer(del(vec![id.clone()]), &a)).await;
    let gone = wait_get(&mut c, &a, &id, |p| p.is_none()).await.is_none();
    checks.check(
        r.as_ref().map(|d| d.get_ref().deleted).ok() == Some(1) && gone,
        format!("agency A deletes its {id}: {}; gone: {gone}", code_of(&r)),
    );

    let restrict = pb::RestrictUploadRequest {
        upload_id: "UPL-0001".into(),
        ..Default::default()
    };
    let mut node = connect(&s.peer, Duration::from_secs(10)).await;
    let r = node.restrict_upload(restrict.clone()).await;
    checks.check(
        r.as_ref().err().map(|e| e.code()) == Some(tonic::Code::FailedPrecondition),
        format!("RestrictUpload on an index node: {}", code_of(&r)),
    );
    let r = c.restrict_upload(bearer(restrict, &a)).await;
    checks.check(
        r.as_ref().err().map(|e| e.code()) == Some(tonic::Code::Unimplemented),
        format!("RestrictUpload through the router: {}", code_of(&r)),
    );
}

/// UpdateMetadata through the router: logged, applied alike by both
/// replicas of the point's shard; another agency's update and an unknown
/// id refused as on a single server.
async fn metadata_checks(
    s: &Settings,
    c: &mut Client,
    (a, b): (&str, &str),
    id: &str,
    checks: &mut Checks,
) {
    let update = |ids: Vec<String>| pb::UpdateMetadataRequest {
        collection: COLLECTION.into(),
        ids,
        set: Some(pb::MetadataUpdate {
            add_tags: vec!["reviewed".into()],
            case_id: Some("CASE-7".into()),
            ..Default::default()
        }),
    };
    let r = c.update_metadata(bearer(update(vec![id.into()]), b)).await;
    checks.check(
        r.as_ref().err().map(|e| e.code()) == Some(tonic::Code::PermissionDenied),
        format!("agency B updates A's {id}: {}", code_of(&r)),
    );
    let r = c
        .update_metadata(bearer(update(vec![id.into(), "sec-none".into()]), a))
        .await;
    checks.check(
        r.as_ref().err().map(|e| e.code()) == Some(tonic::Code::NotFound),
        format!(
            "UpdateMetadata naming an id that does not exist: {}",
            code_of(&r)
        ),
    );
    let r = c.update_metadata(bearer(update(vec![id.into()]), a)).await;
    let done = |p: &Option<pb::Point>| {
        p.as_ref()
            .and_then(|p| p.metadata.as_ref())
            .is_some_and(|m| m.case_id == "CASE-7" && m.tags == ["reviewed"])
    };
    let mut seen = Vec::new();
    for addr in [&s.peer, &s.victim] {
        let mut node = connect(addr, Duration::from_secs(10)).await;
        seen.push(done(&wait_get(&mut node, "", id, done).await));
    }
    checks.check(
        r.as_ref().map(|u| u.get_ref().updated).ok() == Some(1) && seen == [true, true],
        format!(
            "agency A updates its {id} (tag, case): {}; applied on both replicas of shard 0: {seen:?}",
            code_of(&r)
        ),
    );
}
