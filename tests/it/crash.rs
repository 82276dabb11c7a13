//! Crash recovery through the real binary.
//!
//! Writer tasks stream upserts (new ids, replacements, re-inserts of deleted
//! ids) and deletes into a `vidx serve --sync always` process, which is
//! `kill -9`ed at random moments: after a random delay or right after a
//! random number of acknowledged writes, so kills land mid-stream, mid-fsync,
//! mid-seal and mid-merge (a small `--seal-threshold` makes those frequent),
//! and now and then while the server is still recovering. After every
//! restart on the same data directory the server is checked against a model
//! of what was acknowledged:
//!
//! - every acknowledged upsert is returned by `Get` with its vector and
//!   metadata, every acknowledged delete stays deleted, and
//!   `DescribeCollection` counts exactly the live points;
//! - a write that was in flight when the kill landed may have happened or
//!   not, per id: exactly those ids may show either state, and the model is
//!   re-synced to what `Get` returns for them;
//! - recall@10 of a few queries against brute force over the model stays at
//!   least 0.95, and no search hit is a deleted point or a stale version.
//!
//! `crash_recovery` is the CI size (24 kills). `crash_recovery_soak` is the
//! long run: `VIDX_CRASH_KILLS` kills (default 200), seed `VIDX_CRASH_SEED`;
//! `scripts/crash-soak.sh` runs it.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use vidx::pb;

use crate::support::process::ServerProcess;
use crate::support::{
    Client, Clusters, connect, cosine_distance, create_req, exact_top_k, meta, search_req,
    vector_query,
};

/// Flags of every `vidx serve` start (besides `--data-dir` and `--listen`).
const SERVE_FLAGS: &[&str] = &["--sync", "always", "--seal-threshold", "300"];

const COLLECTION: &str = "crash";
const DIM: usize = 32;
const CLUSTERS: usize = 24;
const SPREAD: f32 = 0.7;
/// Concurrent writer tasks; each owns the ids `w<writer>-...`.
const WRITERS: usize = 2;
/// New ids per writer stop here; later writes replace, re-insert and delete.
const IDS_PER_WRITER: u64 = 2_000;
const K: usize = 10;
const QUERIES: usize = 20;
const MIN_RECALL: f64 = 0.95;
/// Max per-component difference between a stored vector and the model's
/// (both unit length).
const VECTOR_TOLERANCE: f32 = 1e-5;
const DISTANCE_TOLERANCE: f32 = 1e-3;
/// Probability that a round starts with a kill during recovery.
const RECOVERY_KILL_P: f64 = 0.15;
/// Longer than this for one RPC is a hang, reported as a failure.
const OP_TIMEOUT: Duration = Duration::from_secs(30);
const START_TIMEOUT: Duration = Duration::from_secs(60);
const GET_CHUNK: usize = 500;
const HISTORY: usize = 8;
const SEED: u64 = 0x5eed_c4a5;

#[test]
fn crash_recovery() {
    runtime().block_on(run(24, SEED));
}

/// The long version: `VIDX_CRASH_KILLS` (default 200) kills.
#[test]
#[ignore = "long soak; run scripts/crash-soak.sh"]
fn crash_recovery_soak() {
    let kills = env_u64("VIDX_CRASH_KILLS").unwrap_or(200) as usize;
    let seed = env_u64("VIDX_CRASH_SEED").unwrap_or(SEED ^ 0xdead_beef);
    runtime().block_on(run(kills, seed));
}

/// A decimal or `0x` hexadecimal number from the environment.
fn env_u64(name: &str) -> Option<u64> {
    let v = std::env::var(name).ok()?;
    let t = v.trim();
    let parsed = match t.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => t.parse(),
    };
    Some(parsed.unwrap_or_else(|e| panic!("{name}={v:?} is not a number: {e}")))
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

// ---- data and model ------------------------------------------------------

/// An acknowledged point: its (unit) vector and its upload id, unique per write.
#[derive(Clone, Debug)]
struct Rec {
    vector: Vec<f32>,
    upload: String,
}

impl Rec {
    fn matches(&self, p: &pb::Point) -> bool {
        let upload = p.metadata.as_ref().map(|m| m.upload_id.as_str());
        p.vector.len() == self.vector.len()
            && p.vector
                .iter()
                .zip(&self.vector)
                .all(|(a, b)| (a - b).abs() <= VECTOR_TOLERANCE)
            && upload == Some(self.upload.as_str())
    }
}

fn show(p: Option<&pb::Point>) -> String {
    match p {
        None => "absent".into(),
        Some(p) => format!(
            "present (upload {:?}, vector[..3] {:?})",
            p.metadata.as_ref().map(|m| m.upload_id.as_str()),
            &p.vector[..p.vector.len().min(3)]
        ),
    }
}

fn show_rec(r: Option<&Rec>) -> String {
    match r {
        None => "absent".into(),
        Some(r) => format!("upload {:?}, vector[..3] {:?}", r.upload, &r.vector[..3]),
    }
}

/// One write as sent.
#[derive(Clone, Debug)]
enum Op {
    /// One client stream of batches; ids are distinct within the op.
    Upsert(Vec<Vec<(String, Rec)>>),
    Delete(Vec<String>),
    Flush,
}

impl Op {
    fn describe(&self) -> String {
        match self {
            Op::Upsert(b) => format!(
                "upsert stream of {} batches, {} points",
                b.len(),
                b.iter().map(Vec::len).sum::<usize>()
            ),
            Op::Delete(ids) => format!("delete of {} ids", ids.len()),
            Op::Flush => "flush".into(),
        }
    }
}

/// The model of one writer's ids.
struct Part {
    writer: usize,
    /// Acknowledged live points.
    live: BTreeMap<String, Rec>,
    /// Ids known to be absent (acknowledged deletes, or in-flight writes
    /// that turned out not to have happened): they must stay absent.
    gone: BTreeSet<String>,
    next_id: u64,
    version: u64,
    /// Last few events per id, for failure messages.
    history: HashMap<String, VecDeque<String>>,
}

impl Part {
    fn new(writer: usize) -> Part {
        Part {
            writer,
            live: BTreeMap::new(),
            gone: BTreeSet::new(),
            next_id: 0,
            version: 0,
            history: HashMap::new(),
        }
    }

    fn note(&mut self, id: &str, event: String) {
        let h = self.history.entry(id.to_string()).or_default();
        if h.len() == HISTORY {
            h.pop_front();
        }
        h.push_back(event);
    }

    fn history_of(&self, id: &str) -> String {
        match self.history.get(id) {
            Some(h) => h.iter().cloned().collect::<Vec<_>>().join("; "),
            None => "none".into(),
        }
    }

    fn new_id(&mut self) -> String {
        let id = format!("w{}-{:06}", self.writer, self.next_id);
        self.next_id += 1;
        id
    }

    /// The next write: mostly upserts, some deletes, now and then a flush.
    fn plan(&mut self, rng: &mut ChaCha8Rng, g: &Clusters, flush: bool) -> Op {
        let x: f64 = rng.random();
        if flush && x < 0.02 {
            return Op::Flush;
        }
        if x < 0.25 && !self.live.is_empty() {
            let n = rng.random_range(1..=12usize);
            let mut ids = BTreeSet::new();
            for _ in 0..n {
                let y: f64 = rng.random();
                let id = if y < 0.9 {
                    pick(rng, self.live.keys())
                } else if y < 0.95 && !self.gone.is_empty() {
                    pick(rng, self.gone.iter())
                } else {
                    // Never written: Delete skips it and does not count it.
                    format!("w{}-never-{}", self.writer, rng.random_range(0..1000u32))
                };
                ids.insert(id);
            }
            return Op::Delete(ids.into_iter().collect());
        }
        let mut used = BTreeSet::new();
        let mut batches = Vec::new();
        for _ in 0..rng.random_range(1..=3usize) {
            let mut batch = Vec::new();
            for _ in 0..rng.random_range(1..=40usize) {
                let y: f64 = rng.random();
                let id = if self.next_id < IDS_PER_WRITER && y < 0.5 {
                    self.new_id()
                } else if y < 0.65 && !self.gone.is_empty() {
                    pick(rng, self.gone.iter())
                } else if !self.live.is_empty() {
                    pick(rng, self.live.keys())
                } else {
                    self.new_id()
                };
                if !used.insert(id.clone()) {
                    continue;
                }
                self.version += 1;
                let rec = Rec {
                    vector: g.sample(rng),
                    upload: format!("w{}-v{}", self.writer, self.version),
                };
                batch.push((id, rec));
            }
            if !batch.is_empty() {
                batches.push(batch);
            }
        }
        Op::Upsert(batches)
    }

    fn set(&mut self, id: &str, state: Option<Rec>) {
        match state {
            Some(r) => {
                self.gone.remove(id);
                self.live.insert(id.to_string(), r);
            }
            None => {
                self.live.remove(id);
                self.gone.insert(id.to_string());
            }
        }
    }

    /// Records an acknowledged op.
    fn acked(&mut self, round: usize, op: &Op) {
        match op {
            Op::Upsert(batches) => {
                for (id, rec) in batches.iter().flatten() {
                    self.note(id, format!("r{round} acked upsert {}", rec.upload));
                    self.set(id, Some(rec.clone()));
                }
            }
            Op::Delete(ids) => {
                for id in ids {
                    self.note(id, format!("r{round} acked delete"));
                    self.set(id, None);
                }
            }
            Op::Flush => {}
        }
    }

    /// Per id of an op in flight at a kill: (state before, state after).
    fn in_flight(&self, op: &Op) -> Vec<(String, Option<Rec>, Option<Rec>)> {
        match op {
            Op::Upsert(batches) => batches
                .iter()
                .flatten()
                .map(|(id, rec)| (id.clone(), self.live.get(id).cloned(), Some(rec.clone())))
                .collect(),
            Op::Delete(ids) => ids
                .iter()
                .map(|id| (id.clone(), self.live.get(id).cloned(), None))
                .collect(),
            Op::Flush => Vec::new(),
        }
    }
}

fn pick<'a>(rng: &mut ChaCha8Rng, mut it: impl ExactSizeIterator<Item = &'a String>) -> String {
    let i = rng.random_range(0..it.len());
    it.nth(i).expect("index in range").clone()
}

/// The op a writer had in flight when the server was killed.
struct Pending {
    writer: usize,
    round: usize,
    op: Op,
}

#[derive(Default)]
struct Stats {
    kills: usize,
    recovery_kills: usize,
    acked_upsert_ops: u64,
    acked_upsert_points: u64,
    acked_delete_ops: u64,
    acked_deletes: u64,
    flushes: u64,
    uncertain_ops: u64,
    uncertain_ids_old: u64,
    uncertain_ids_new: u64,
    seals: u64,
    merges: u64,
    torn_tails: u64,
    server_errors: usize,
    recalls: Vec<f64>,
    max_restart: Duration,
}

// ---- the writers -------------------------------------------------------

/// Shared between the writers and the killer.
struct Ctl {
    stop: AtomicBool,
    acked: AtomicU64,
    flush: AtomicBool,
}

struct WriterOut {
    part: Part,
    pending: Option<Op>,
    upsert_ops: u64,
    upsert_points: u64,
    delete_ops: u64,
    deletes: u64,
    flushes: u64,
    /// A failure not caused by the kill.
    failure: Option<String>,
}

enum Reply {
    Upserted(u64),
    Deleted(u64),
    Flushed,
}

async fn send(client: &mut Client, op: &Op) -> Result<Reply, tonic::Status> {
    match op {
        Op::Upsert(batches) => {
            let reqs: Vec<pb::UpsertRequest> = batches
                .iter()
                .map(|b| pb::UpsertRequest {
                    collection: COLLECTION.into(),
                    points: b
                        .iter()
                        .map(|(id, r)| pb::Point {
                            id: id.clone(),
                            vector: r.vector.clone(),
                            metadata: Some(meta("DE", &r.upload)),
                            ..Default::default()
                        })
                        .collect(),
                })
                .collect();
            let r = client.upsert(tokio_stream::iter(reqs)).await?;
            Ok(Reply::Upserted(r.into_inner().upserted))
        }
        Op::Delete(ids) => {
            let r = client
                .delete(pb::DeleteRequest {
                    collection: COLLECTION.into(),
                    ids: ids.clone(),
                })
                .await?;
            Ok(Reply::Deleted(r.into_inner().deleted))
        }
        Op::Flush => {
            client
                .flush(pb::FlushRequest {
                    collection: COLLECTION.into(),
                })
                .await?;
            Ok(Reply::Flushed)
        }
    }
}

async fn writer(
    mut client: Client,
    mut part: Part,
    mut rng: ChaCha8Rng,
    g: Arc<Clusters>,
    ctl: Arc<Ctl>,
    round: usize,
    flush_this_round: bool,
) -> WriterOut {
    let mut out = WriterOut {
        part: Part::new(part.writer),
        pending: None,
        upsert_ops: 0,
        upsert_points: 0,
        delete_ops: 0,
        deletes: 0,
        flushes: 0,
        failure: None,
    };
    while !ctl.stop.load(Ordering::SeqCst) {
        let flush = flush_this_round && ctl.flush.load(Ordering::SeqCst);
        let op = part.plan(&mut rng, &g, flush);
        let reply = match tokio::time::timeout(OP_TIMEOUT, send(&mut client, &op)).await {
            Ok(r) => r,
            Err(_) => {
                out.failure = Some(format!(
                    "round {round}: writer {}: {} got no answer within {OP_TIMEOUT:?}",
                    part.writer,
                    op.describe()
                ));
                break;
            }
        };
        match reply {
            Ok(Reply::Upserted(n)) => {
                let Op::Upsert(b) = &op else { unreachable!() };
                let sent = b.iter().map(Vec::len).sum::<usize>() as u64;
                if n != sent {
                    out.failure = Some(format!(
                        "round {round}: writer {}: Upsert of {sent} points answered upserted={n}",
                        part.writer
                    ));
                    break;
                }
                out.upsert_ops += 1;
                out.upsert_points += n;
            }
            Ok(Reply::Deleted(n)) => {
                let Op::Delete(ids) = &op else { unreachable!() };
                let live: Vec<&String> = ids
                    .iter()
                    .filter(|id| part.live.contains_key(*id))
                    .collect();
                if n != live.len() as u64 {
                    let hist: Vec<String> = ids
                        .iter()
                        .map(|id| {
                            format!(
                                "{id} (model: {}; history: {})",
                                if part.live.contains_key(id) {
                                    "live"
                                } else {
                                    "absent"
                                },
                                part.history_of(id)
                            )
                        })
                        .collect();
                    out.failure = Some(format!(
                        "round {round}: writer {}: Delete of {} ids of which {} are live answered \
                         deleted={n}; ids: {}",
                        part.writer,
                        ids.len(),
                        live.len(),
                        hist.join(", ")
                    ));
                    break;
                }
                out.delete_ops += 1;
                out.deletes += n;
            }
            Ok(Reply::Flushed) => out.flushes += 1,
            Err(s) if matches!(op, Op::Flush) && s.code() == tonic::Code::Unimplemented => {
                ctl.flush.store(false, Ordering::SeqCst);
                continue;
            }
            Err(_) if ctl.stop.load(Ordering::SeqCst) => {
                // The kill landed on this op: it may or may not have happened.
                out.pending = Some(op);
                break;
            }
            Err(s) => {
                out.failure = Some(format!(
                    "round {round}: writer {}: {} failed before any kill: {s:?}",
                    part.writer,
                    op.describe()
                ));
                break;
            }
        }
        part.acked(round, &op);
        ctl.acked.fetch_add(1, Ordering::SeqCst);
    }
    out.part = part;
    out
}

// ---- checks ----------------------------------------------------------------

async fn get(client: &mut Client, ids: &[String]) -> Result<HashMap<String, pb::Point>, String> {
    let mut found = HashMap::new();
    for chunk in ids.chunks(GET_CHUNK) {
        let r = client
            .get(pb::GetRequest {
                collection: COLLECTION.into(),
                ids: chunk.to_vec(),
            })
            .await
            .map_err(|s| format!("Get failed: {s:?}"))?;
        for p in r.into_inner().points {
            if !chunk.contains(&p.id) {
                return Err(format!(
                    "Get returned id {:?}, which was not asked for",
                    p.id
                ));
            }
            if let Some(p) = found.insert(p.id.clone(), p) {
                return Err(format!("Get returned id {:?} twice", p.id));
            }
        }
    }
    Ok(found)
}

/// Resolves the writes in flight at the last kill, then checks every id the
/// model knows, the live count and recall. Err lists what is wrong.
async fn verify(
    client: &mut Client,
    parts: &mut [Part],
    pending: Vec<Pending>,
    round: usize,
    g: &Clusters,
    rng: &mut ChaCha8Rng,
    stats: &mut Stats,
) -> Result<(), String> {
    let mut fails = Vec::new();

    // Writes in flight at the kill: old or new state, per id.
    for p in pending {
        let part = &mut parts[p.writer];
        let states = part.in_flight(&p.op);
        if states.is_empty() {
            continue;
        }
        stats.uncertain_ops += 1;
        let ids: Vec<String> = states.iter().map(|s| s.0.clone()).collect();
        let found = get(client, &ids).await?;
        for (id, old, new) in states {
            let got = found.get(&id);
            let is = |want: &Option<Rec>| match (want, got) {
                (None, None) => true,
                (Some(r), Some(p)) => r.matches(p),
                _ => false,
            };
            let what = match &p.op {
                Op::Upsert(_) => format!("upsert {}", new.as_ref().unwrap().upload),
                _ => "delete".to_string(),
            };
            if is(&new) {
                stats.uncertain_ids_new += 1;
                part.note(&id, format!("r{} in-flight {what}: happened", p.round));
                part.set(&id, new);
            } else if is(&old) {
                stats.uncertain_ids_old += 1;
                part.note(
                    &id,
                    format!("r{} in-flight {what}: did not happen", p.round),
                );
                part.set(&id, old);
            } else {
                fails.push(format!(
                    "round {round}: id {id}: {what} was in flight at the kill ending round {}; \
                     Get shows {}, which is neither the state before ({}) nor after ({}); \
                     history: {}",
                    p.round,
                    show(got),
                    show_rec(old.as_ref()),
                    show_rec(new.as_ref()),
                    part.history_of(&id)
                ));
            }
        }
    }
    if !fails.is_empty() {
        return Err(fails.join("\n"));
    }

    // Every id the model knows.
    let mut live_total = 0usize;
    for part in parts.iter() {
        let ids: Vec<String> = part.live.keys().chain(part.gone.iter()).cloned().collect();
        let found = get(client, &ids).await?;
        live_total += part.live.len();
        for (id, rec) in &part.live {
            match found.get(id) {
                Some(p) if rec.matches(p) => {}
                got => fails.push(format!(
                    "round {round}: id {id}: acknowledged upsert ({}) but Get shows {}; \
                     history: {}",
                    show_rec(Some(rec)),
                    show(got),
                    part.history_of(id)
                )),
            }
        }
        for id in &part.gone {
            if let Some(p) = found.get(id) {
                fails.push(format!(
                    "round {round}: id {id}: deleted (acknowledged) but Get shows {}; \
                     history: {}",
                    show(Some(p)),
                    part.history_of(id)
                ));
            }
        }
    }
    if !fails.is_empty() {
        let n = fails.len();
        fails.truncate(20);
        return Err(format!(
            "{n} ids wrong after restart{}:\n{}",
            if n > 20 { " (first 20)" } else { "" },
            fails.join("\n")
        ));
    }

    let info = client
        .describe_collection(pb::DescribeCollectionRequest {
            name: COLLECTION.into(),
        })
        .await
        .map_err(|s| format!("DescribeCollection failed: {s:?}"))?
        .into_inner();
    if info.points != live_total as u64 {
        return Err(format!(
            "round {round}: DescribeCollection counts {} live points, the model {live_total} \
             (segments {})",
            info.points, info.segments
        ));
    }

    // Recall against brute force over the model; no hit may be a deleted
    // point or a stale version of one.
    let model: Vec<(&String, &Rec)> = parts.iter().flat_map(|p| p.live.iter()).collect();
    if model.is_empty() {
        return Ok(());
    }
    let queries: Vec<Vec<f32>> = (0..QUERIES).map(|_| g.sample(rng)).collect();
    let r = client
        .search(search_req(
            COLLECTION,
            queries.iter().cloned().map(vector_query).collect(),
            K as u32,
        ))
        .await
        .map_err(|s| format!("round {round}: Search failed: {s:?}"))?
        .into_inner();
    if r.results.len() != QUERIES {
        return Err(format!(
            "round {round}: Search of {QUERIES} queries answered {} results",
            r.results.len()
        ));
    }
    let by_id: HashMap<&str, &Rec> = model.iter().map(|(id, r)| (id.as_str(), *r)).collect();
    let (mut found, mut wanted) = (0usize, 0usize);
    for (qi, (q, res)) in queries.iter().zip(&r.results).enumerate() {
        let exact = exact_top_k(
            q,
            model
                .iter()
                .map(|(id, r)| (id.as_str(), r.vector.as_slice())),
            K,
        );
        if res.hits.len() != exact.len() {
            fails.push(format!(
                "round {round}: query {qi}: {} hits, want {}",
                res.hits.len(),
                exact.len()
            ));
        }
        for h in &res.hits {
            match by_id.get(h.id.as_str()) {
                None => fails.push(format!(
                    "round {round}: query {qi}: hit {} is not a live point; history: {}",
                    h.id,
                    history_any(parts, &h.id)
                )),
                Some(rec) => {
                    let d = cosine_distance(q, &rec.vector);
                    if (d - h.distance).abs() > DISTANCE_TOLERANCE {
                        fails.push(format!(
                            "round {round}: query {qi}: hit {} at distance {} but its \
                             acknowledged vector is at {d} (a stale version?); history: {}",
                            h.id,
                            h.distance,
                            history_any(parts, &h.id)
                        ));
                    }
                }
            }
        }
        wanted += exact.len();
        found += exact
            .iter()
            .filter(|(_, id)| res.hits.iter().any(|h| h.id == *id))
            .count();
    }
    let recall = found as f64 / wanted as f64;
    stats.recalls.push(recall);
    if recall < MIN_RECALL {
        fails.push(format!(
            "round {round}: recall@{K} {recall:.3} < {MIN_RECALL} over {} live points \
             ({} segments)",
            model.len(),
            info.segments
        ));
    }
    if fails.is_empty() {
        Ok(())
    } else {
        fails.truncate(20);
        Err(fails.join("\n"))
    }
}

fn history_any(parts: &[Part], id: &str) -> String {
    parts
        .iter()
        .find(|p| p.history.contains_key(id))
        .map_or("none".into(), |p| p.history_of(id))
}

// ---- the run -----------------------------------------------------------

/// Panics with the failure, both servers' last log lines, and a kept data dir.
fn fail(what: &str, tmp: tempfile::TempDir, proc: Option<&ServerProcess>, prev_tail: &str) -> ! {
    let kept: PathBuf = tmp.keep();
    let now = proc.map(ServerProcess::tail).unwrap_or_default();
    panic!(
        "{what}\n\ndata dir kept at {}\n\nlast log lines of the killed server:\n{prev_tail}\n\
         last log lines of the restarted server:\n{now}",
        kept.display()
    );
}

async fn run(kills: usize, seed: u64) {
    let started = Instant::now();
    let flags = SERVE_FLAGS;
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path().join("data");
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let g = Arc::new(Clusters::new(
        &mut ChaCha8Rng::seed_from_u64(seed),
        CLUSTERS,
        DIM,
        SPREAD,
    ));
    let mut parts: Vec<Part> = (0..WRITERS).map(Part::new).collect();
    let mut pending: Vec<Pending> = Vec::new();
    let mut stats = Stats::default();
    let flush = Arc::new(AtomicBool::new(true));
    let mut prev_tail = String::new();
    eprintln!(
        "crash test: {kills} kills, seed {seed:#x}, serve flags {flags:?}, data {}",
        dir.display()
    );

    for round in 0..=kills {
        // Now and then, kill it while it recovers (replay, clean-up, a seal
        // started at open).
        if round > 0 && rng.random_bool(RECOVERY_KILL_P) {
            let mut p = ServerProcess::spawn(&dir, flags);
            tokio::time::sleep(Duration::from_millis(rng.random_range(0..60))).await;
            p.kill();
            stats.recovery_kills += 1;
            if let Some(e) = collect(&mut stats, &p) {
                let tail = p.tail();
                drop(p);
                fail(
                    &format!("round {round}: the server killed during recovery logged {e}"),
                    tmp,
                    None,
                    &tail,
                );
            }
        }

        let t0 = Instant::now();
        let mut proc = ServerProcess::spawn(&dir, flags);
        let url = match proc.serving(START_TIMEOUT).await {
            Ok(u) => u,
            Err(e) => fail(
                &format!("round {round}: restart failed: {e}"),
                tmp,
                Some(&proc),
                &prev_tail,
            ),
        };
        let mut client = connect(&url).await;
        stats.max_restart = stats.max_restart.max(t0.elapsed());
        if round == 0 {
            client
                .create_collection(create_req(COLLECTION, DIM as u32, pb::Metric::Cosine))
                .await
                .expect("create collection");
        }

        let mut vrng = ChaCha8Rng::seed_from_u64(seed ^ (round as u64).wrapping_mul(0x9e37));
        let pend = std::mem::take(&mut pending);
        if let Err(e) = verify(
            &mut client,
            &mut parts,
            pend,
            round,
            &g,
            &mut vrng,
            &mut stats,
        )
        .await
        {
            fail(
                &format!("check after restart {round} failed:\n{e}"),
                tmp,
                Some(&proc),
                &prev_tail,
            );
        }
        // Now and then seal right away: Flush must work on a recovered
        // collection, and sealing must not change what Get and Search see.
        if flush.load(Ordering::SeqCst) && rng.random_bool(0.5) {
            let r = client
                .flush(pb::FlushRequest {
                    collection: COLLECTION.into(),
                })
                .await;
            match r {
                Ok(_) => {
                    stats.flushes += 1;
                    if let Err(e) = verify(
                        &mut client,
                        &mut parts,
                        Vec::new(),
                        round,
                        &g,
                        &mut vrng,
                        &mut stats,
                    )
                    .await
                    {
                        fail(
                            &format!("check after restart {round} and Flush failed:\n{e}"),
                            tmp,
                            Some(&proc),
                            &prev_tail,
                        );
                    }
                }
                Err(s) if s.code() == tonic::Code::Unimplemented => {
                    flush.store(false, Ordering::SeqCst)
                }
                Err(s) => fail(
                    &format!("round {round}: Flush right after restart failed: {s:?}"),
                    tmp,
                    Some(&proc),
                    &prev_tail,
                ),
            }
        }
        if round == kills {
            proc.kill();
            if let Some(e) = collect(&mut stats, &proc) {
                fail(
                    &format!("round {round}: the server logged {e}"),
                    tmp,
                    Some(&proc),
                    &prev_tail,
                );
            }
            break;
        }

        // Write, and kill it mid-stream.
        let ctl = Arc::new(Ctl {
            stop: AtomicBool::new(false),
            acked: AtomicU64::new(0),
            flush: AtomicBool::new(flush.load(Ordering::SeqCst)),
        });
        let flush_this_round = rng.random_bool(0.3);
        let mut tasks = Vec::new();
        for part in std::mem::take(&mut parts) {
            let wrng = ChaCha8Rng::seed_from_u64(
                seed ^ ((round as u64) << 8 | part.writer as u64).wrapping_mul(0x2545_f491),
            );
            tasks.push(tokio::spawn(writer(
                client.clone(),
                part,
                wrng,
                g.clone(),
                ctl.clone(),
                round,
                flush_this_round,
            )));
        }
        let by_delay = rng.random_bool(0.5);
        let delay = Duration::from_millis(rng.random_range(20..=300));
        let after_acks = rng.random_range(1..=40u64);
        let t = Instant::now();
        loop {
            if by_delay && t.elapsed() >= delay {
                break;
            }
            if !by_delay && ctl.acked.load(Ordering::SeqCst) >= after_acks {
                break;
            }
            if t.elapsed() > Duration::from_secs(5) || tasks.iter().all(|t| t.is_finished()) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        ctl.stop.store(true, Ordering::SeqCst);
        proc.kill();
        stats.kills += 1;
        let mut failures = Vec::new();
        for t in tasks {
            let out = t.await.expect("writer task");
            stats.acked_upsert_ops += out.upsert_ops;
            stats.acked_upsert_points += out.upsert_points;
            stats.acked_delete_ops += out.delete_ops;
            stats.acked_deletes += out.deletes;
            stats.flushes += out.flushes;
            if let Some(f) = out.failure {
                failures.push(f);
            }
            if let Some(op) = out.pending {
                pending.push(Pending {
                    writer: out.part.writer,
                    round,
                    op,
                });
            }
            parts.push(out.part);
        }
        parts.sort_by_key(|p| p.writer);
        flush.store(ctl.flush.load(Ordering::SeqCst), Ordering::SeqCst);
        let logged = collect(&mut stats, &proc);
        prev_tail = proc.tail();
        if !failures.is_empty() {
            fail(&failures.join("\n"), tmp, None, &prev_tail);
        }
        if let Some(e) = logged {
            fail(
                &format!("round {round}: the server logged {e}"),
                tmp,
                None,
                &prev_tail,
            );
        }
    }

    let live: usize = parts.iter().map(|p| p.live.len()).sum();
    let gone: usize = parts.iter().map(|p| p.gone.len()).sum();
    let min_recall = stats.recalls.iter().cloned().fold(1.0f64, f64::min);
    let mean_recall = stats.recalls.iter().sum::<f64>() / stats.recalls.len().max(1) as f64;
    eprintln!(
        "crash summary: kills={} (+{} during recovery) acked_upserts={} points in {} streams \
         acked_deletes={} ids in {} calls flushes={} uncertain_ops={} (ids: {} happened, {} \
         did not) min_recall@{K}={min_recall:.3} mean_recall={mean_recall:.3} seals={} \
         merges={} torn_wal_tails={} live_points={live} absent_ids={gone} \
         max_restart={:?} server_errors={} elapsed={:.1}s",
        stats.kills,
        stats.recovery_kills,
        stats.acked_upsert_points,
        stats.acked_upsert_ops,
        stats.acked_deletes,
        stats.acked_delete_ops,
        stats.flushes,
        stats.uncertain_ops,
        stats.uncertain_ids_new,
        stats.uncertain_ids_old,
        stats.seals,
        stats.merges,
        stats.torn_tails,
        stats.max_restart,
        stats.server_errors,
        started.elapsed().as_secs_f64(),
    );
    assert!(stats.kills >= kills, "only {} kills", stats.kills);
    assert!(
        stats.acked_upsert_points > 0 && stats.acked_deletes > 0,
        "the writers got nothing acknowledged"
    );
}

/// Adds a finished server's counters to `stats`; the first ERROR line it
/// logged, if any (a recovered server that logs errors is not recovered).
fn collect(stats: &mut Stats, proc: &ServerProcess) -> Option<String> {
    let l = proc.log();
    stats.seals += l.seals;
    stats.merges += l.merges;
    stats.torn_tails += l.torn_tails;
    stats.server_errors += l.errors.len();
    l.errors
        .first()
        .map(|e| format!("{} ERROR line(s), the first: {e}", l.errors.len()))
}
