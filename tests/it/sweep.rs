//! The fault sweep: a workload run against an in-process server again and
//! again, each time with one file operation failing, in the way the
//! `vidx::storage::fs` seam can make it fail. Two workloads: the storage one
//! (upsert, replace, delete, flush with its seal and manifest update,
//! background merge, a snapshot, a second collection created and dropped),
//! and writes into the log that recovery opened with no seal after them, so
//! that the checking restart reads back whatever a failed append left in
//! that log. The failures:
//!
//! - an error at operation N (ENOSPC with a short write, EIO, EACCES, EMFILE,
//!   by the kind of operation), the disk then "freed" before the end;
//! - a crash at operation N: it and everything after fail, the directory is
//!   kept as it is;
//! - a power cut at operation N: as a crash, then only what was fsynced
//!   (file contents, and directory entries by their directory's fsync)
//!   survives.
//!
//! Each run starts from a collection written before a restart (so its log
//! is one that recovery opened), then restarts a server on what the disk
//! holds after the workload and checks: the
//! requests that met the failure were refused with a clear status; every
//! collection opens; every acknowledged write is there (upserts with their
//! vector, deletes still deleted, an acknowledged drop stays dropped);
//! writes that failed are there or not, per id; a write after the restart is
//! kept across another restart.
//!
//! `fault_sweep` is the CI size (every `VIDX_SWEEP_STRIDE`-th operation
//! per kind, default 3; a few hundred injected failures). `fault_sweep_full`
//! injects at every operation; `scripts/fault-sweep.sh` runs it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

use tonic::Code;
use vidx::api::server::ServerOptions;
use vidx::collection::StorageOptions;
use vidx::pb;
use vidx::storage::fs::{self, Effect, Injection, Op, Plan};

use crate::support::*;

const DIM: usize = 4;
/// Runs at once: each has its own data directory and injection.
const PARALLEL: usize = 3;
/// A run that takes longer has hung (a run takes well under a second on
/// an idle machine): it fails the sweep, which starts no further runs.
/// `VIDX_SWEEP_RUN_LIMIT` (seconds) overrides it.
const RUN_LIMIT: Duration = Duration::from_secs(60);

fn storage() -> StorageOptions {
    StorageOptions {
        // Seals only by Flush, merges as soon as two segments are alike.
        seal_threshold: 100_000,
        seal_after: None,
        merge_factor: 2,
        verify_on_open: false,
        ..Default::default()
    }
}

/// One request of the workload.
#[derive(Clone, Debug)]
enum Step {
    Create(&'static str),
    /// (id, version) pairs; the version is the vector's first value.
    Upsert(&'static str, Vec<(String, u32)>),
    Delete(&'static str, Vec<String>),
    Flush(&'static str),
    Drop(&'static str),
    /// CreateSnapshot, its whole stream read (changes no point).
    Snapshot(&'static str),
}

fn ids(prefix: &str, r: std::ops::Range<u32>, version: u32) -> Vec<(String, u32)> {
    r.map(|i| (format!("{prefix}{i}"), version)).collect()
}

fn names(prefix: &str, r: std::ops::Range<u32>) -> Vec<String> {
    r.map(|i| format!("{prefix}{i}")).collect()
}

/// What a run starts from, written before a restart: the workload then
/// writes into a log that recovery opened, not one it created.
fn setup() -> Vec<Step> {
    vec![Step::Create("c"), Step::Upsert("c", ids("s", 0..10, 1))]
}

/// Upserts, replacements, deletes in the mutable and in sealed segments,
/// seals, tombstone and manifest updates, merges, a create and a drop.
fn storage_workload() -> Vec<Step> {
    use Step::*;
    vec![
        Upsert("c", ids("a", 0..20, 1)),
        Upsert("c", ids("a", 15..30, 2)),
        Delete("c", names("a", 0..4)),
        Flush("c"),
        Upsert("c", ids("b", 0..10, 1)),
        Snapshot("c"),
        Delete("c", names("a", 10..14)),
        Upsert("c", ids("a", 20..22, 3)),
        Flush("c"),
        Create("d"),
        Upsert("d", ids("x", 0..8, 1)),
        Flush("d"),
        Upsert("c", ids("b", 5..15, 2)),
        Drop("d"),
        Delete("c", names("b", 0..3)),
        Flush("c"),
        Upsert("c", ids("e", 0..5, 1)),
    ]
}

/// Writes into the log recovery opened, with no seal after them: the
/// restart that checks reads every one of them back from that log (a seal
/// would retire it, and with it any damage a failed append left there).
fn recovered_log_workload() -> Vec<Step> {
    use Step::*;
    vec![
        Upsert("c", ids("r", 0..6, 1)),
        Upsert("c", ids("r", 4..10, 2)),
        Delete("c", names("s", 0..3)),
        Upsert("c", ids("t", 0..6, 1)),
        Delete("c", names("r", 0..2)),
        Upsert("c", ids("u", 0..6, 1)),
    ]
}

/// A workload of the sweep: its name, for the report, and its steps.
type Workload = (&'static str, fn() -> Vec<Step>);

const WORKLOADS: [Workload; 2] = [
    ("storage", storage_workload),
    ("recovered log", recovered_log_workload),
];

fn vector(version: u32, id: &str) -> Vec<f32> {
    let h = id
        .bytes()
        .fold(7u32, |h, b| h.wrapping_mul(31).wrapping_add(b as u32));
    vec![version as f32, (h % 1000) as f32, 1.0, -1.0]
}

/// What may be true of the data after a run: per collection whether it
/// may exist, and per id the states it may be in (a version, or absent).
#[derive(Default)]
struct Model {
    exists: BTreeMap<&'static str, BTreeSet<bool>>,
    ids: BTreeMap<(&'static str, String), BTreeSet<Option<u32>>>,
}

impl Model {
    fn may(&mut self, c: &'static str, id: &str) -> &mut BTreeSet<Option<u32>> {
        self.ids
            .entry((c, id.to_string()))
            .or_insert_with(|| BTreeSet::from([None]))
    }

    /// Records `step`: acknowledged (the only possibility from now on) or
    /// failed (one more possibility).
    fn record(&mut self, step: &Step, acked: bool) {
        let set = |m: &mut BTreeSet<Option<u32>>, v: Option<u32>| {
            if acked {
                m.clear();
            }
            m.insert(v);
        };
        match step {
            Step::Create(c) => {
                let e = self
                    .exists
                    .entry(c)
                    .or_insert_with(|| BTreeSet::from([false]));
                if acked {
                    e.clear();
                }
                e.insert(true);
            }
            Step::Drop(c) => {
                let e = self.exists.entry(c).or_default();
                if acked {
                    e.clear();
                }
                e.insert(false);
                let gone: Vec<String> = self
                    .ids
                    .keys()
                    .filter(|(k, _)| k == c)
                    .map(|(_, id)| id.clone())
                    .collect();
                for id in gone {
                    set(self.may(c, &id), None);
                }
            }
            Step::Upsert(c, pts) => {
                for (id, v) in pts {
                    set(self.may(c, id), Some(*v));
                }
            }
            Step::Delete(c, del) => {
                for id in del {
                    set(self.may(c, id), None);
                }
            }
            Step::Flush(_) | Step::Snapshot(_) => {}
        }
    }
}

/// How one failure is injected.
#[derive(Clone, Copy, Debug)]
enum Mode {
    Error,
    Crash,
    PowerCut,
}

/// The errno a failing operation of kind `op` gets (the `n`-th such run).
fn errno_for(op: &str, n: u64) -> (i32, bool) {
    match op {
        "Write" => (libc::ENOSPC, n.is_multiple_of(2)),
        "Sync" | "SyncDir" | "SetLen" => (libc::EIO, false),
        "Open" | "Create" => (libc::EMFILE, false),
        _ => (libc::EACCES, false),
    }
}

/// Writes the setup into a fresh `root` and restarts on it; the model
/// holds the setup, acknowledged.
async fn set_up(root: &Path, model: &mut Model) -> TestServer {
    std::fs::create_dir_all(root).unwrap();
    let server = TestServer::start_full(root, ServerOptions::default(), storage()).await;
    let mut c = server.client().await;
    for step in setup() {
        run_step(&mut c, &step).await.expect("the setup runs clean");
        model.record(&step, true);
    }
    server.stop().await;
    TestServer::start_full(root, ServerOptions::default(), storage()).await
}

/// Counts a run with no failure: the operations and their kinds, in order.
async fn count_ops(root: &Path, workload: fn() -> Vec<Step>) -> Vec<String> {
    let server = set_up(root, &mut Model::default()).await;
    let inj = fs::inject(root, Plan::count());
    let mut c = server.client().await;
    for step in workload() {
        run_step(&mut c, &step)
            .await
            .expect("the workload runs clean");
    }
    settle(&mut c).await;
    server.stop().await;
    inj.trace()
        .into_iter()
        .map(|l| l.split(' ').nth(1).unwrap_or_default().to_string())
        .collect()
}

async fn run_step(c: &mut Client, step: &Step) -> Result<(), tonic::Status> {
    match step {
        Step::Create(name) => c
            .create_collection(create_req(name, DIM as u32, pb::Metric::L2))
            .await
            .map(drop),
        Step::Upsert(name, pts) => {
            let points = pts
                .iter()
                .map(|(id, v)| point(id, vector(*v, id)))
                .collect();
            upsert_batches(c, name, points, 1000).await.map(drop)
        }
        Step::Delete(name, ids) => c
            .delete(pb::DeleteRequest {
                collection: name.to_string(),
                ids: ids.clone(),
            })
            .await
            .map(drop),
        Step::Flush(name) => c
            .flush(pb::FlushRequest {
                collection: name.to_string(),
            })
            .await
            .map(drop),
        Step::Drop(name) => c
            .drop_collection(pb::DropCollectionRequest {
                name: name.to_string(),
            })
            .await
            .map(drop),
        Step::Snapshot(name) => {
            let mut chunks = c
                .create_snapshot(pb::CreateSnapshotRequest {
                    collection: name.to_string(),
                })
                .await?
                .into_inner();
            while chunks.message().await?.is_some() {}
            Ok(())
        }
    }
}

/// Waits for background merges to finish (the segment count stops moving).
async fn settle(c: &mut Client) {
    let mut last = u32::MAX;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let Ok(info) = c
            .describe_collection(pb::DescribeCollectionRequest { name: "c".into() })
            .await
        else {
            return;
        };
        let n = info.into_inner().segments;
        if n == last {
            return;
        }
        last = n;
    }
}

/// A refusal is clear: a fitting code, and a message saying what failed.
fn clear_status(e: &tonic::Status) -> Result<(), String> {
    let ok_code = matches!(
        e.code(),
        Code::ResourceExhausted
            | Code::FailedPrecondition
            | Code::Internal
            | Code::NotFound
            | Code::Unavailable
    );
    let says = [
        "No space left",
        "Too many open files",
        "Permission denied",
        "Input/output error",
        "read-only",
        "not found",
        "was dropped",
    ];
    if ok_code && says.iter().any(|s| e.message().contains(s)) {
        Ok(())
    } else {
        Err(format!("unclear refusal: {:?} {:?}", e.code(), e.message()))
    }
}

/// What one run found.
#[derive(Default)]
struct Outcome {
    fired: bool,
    acked_upserts: u64,
    acked_deletes: u64,
    lost: Vec<String>,
    resurrected: Vec<String>,
    unopened: Vec<String>,
    other: Vec<String>,
    /// Did not finish within the time limit.
    hung: bool,
}

fn hung_run(limit: Duration) -> Outcome {
    Outcome {
        fired: true,
        hung: true,
        other: vec![format!(
            "the run did not finish within {} s: a seal, merge or request hangs",
            limit.as_secs()
        )],
        ..Default::default()
    }
}

/// One run: the workload with `plan` injected, then a restart and checks.
async fn one_run(base: &Path, workload: fn() -> Vec<Step>, mode: Mode, plan: Plan) -> Outcome {
    let root = base.join("data");
    let mut model = Model::default();
    // Injected once the server is up: the failures hit the requests.
    let server = set_up(&root, &mut model).await;
    let inj = fs::inject(&root, plan.clone());
    let mut c = server.client().await;
    let mut out = Outcome::default();
    for step in workload() {
        let halted_before = matches!(mode, Mode::Crash | Mode::PowerCut) && inj.fired();
        let r = run_step(&mut c, &step).await;
        if halted_before {
            // Nothing after the crash reaches the disk.
            continue;
        }
        match &r {
            Ok(()) => count_acked(&mut out, &step),
            Err(e) => {
                if let Err(why) = clear_status(e) {
                    out.other.push(format!("{step:?}: {why}"));
                }
            }
        }
        model.record(&step, r.is_ok());
    }
    settle(&mut c).await;
    out.fired = inj.fired();
    if std::env::var("VIDX_SWEEP_ONLY").is_ok() {
        eprintln!("trace:\n{}", inj.trace().join("\n"));
    }
    let dir = restart_dir(base, mode, &inj, &root);
    server.stop().await;
    drop(inj);
    check(&dir, &model, &mut out).await;
    out
}

fn count_acked(out: &mut Outcome, step: &Step) {
    match step {
        Step::Upsert(_, p) => out.acked_upserts += p.len() as u64,
        Step::Delete(_, d) => out.acked_deletes += d.len() as u64,
        _ => {}
    }
}

/// Where the restart looks: after an error, the same directory (the disk
/// was freed); after a crash or power cut, what it left, rebuilt elsewhere
/// (threads of the old server may still try to write to the original).
fn restart_dir(base: &Path, mode: Mode, inj: &Injection, root: &Path) -> std::path::PathBuf {
    match mode {
        Mode::Error => {
            inj.clear();
            root.to_owned()
        }
        Mode::Crash | Mode::PowerCut => {
            inj.halt();
            let after = base.join("after");
            inj.restore(&after).expect("rebuild the directory");
            after
        }
    }
}

/// Restarts on `dir` and checks the data against the model; then a write,
/// another restart, and that write is there.
async fn check(dir: &Path, model: &Model, out: &mut Outcome) {
    let server = TestServer::start_full(dir, ServerOptions::default(), storage()).await;
    let mut c = server.client().await;
    for (name, may) in &model.exists {
        let r = c
            .describe_collection(pb::DescribeCollectionRequest {
                name: name.to_string(),
            })
            .await;
        let exists = match &r {
            Ok(_) => true,
            Err(e) if e.code() == Code::NotFound => false,
            Err(e) => {
                out.unopened.push(format!("{name}: {e:?}"));
                continue;
            }
        };
        if !may.contains(&exists) {
            let what = if exists {
                &mut out.resurrected
            } else {
                &mut out.lost
            };
            what.push(format!("collection {name} exists: {exists}"));
        }
        if exists {
            check_points(&mut c, name, model, out).await;
        }
    }
    let opened = c
        .describe_collection(pb::DescribeCollectionRequest { name: "c".into() })
        .await
        .is_ok();
    if !opened {
        server.stop().await;
        return;
    }
    let post = point("post", vector(9, "post"));
    let written = upsert_batches(&mut c, "c", vec![post], 1).await;
    server.stop().await;
    if let Err(e) = written {
        out.other.push(format!("write after restart: {e:?}"));
        return;
    }
    let server = TestServer::start_full(dir, ServerOptions::default(), storage()).await;
    let mut c = server.client().await;
    if present(&mut c, "c", &["post".to_string()]).await.is_empty() {
        out.lost.push("post (written after the restart)".into());
    }
    server.stop().await;
}

async fn present(c: &mut Client, name: &str, ids: &[String]) -> BTreeMap<String, u32> {
    let r = c
        .get(pb::GetRequest {
            collection: name.into(),
            ids: ids.to_vec(),
        })
        .await;
    match r {
        Ok(r) => r
            .into_inner()
            .points
            .into_iter()
            .map(|p| (p.id, p.vector[0] as u32))
            .collect(),
        Err(_) => BTreeMap::new(),
    }
}

/// Every id of collection `name` in one of its possible states, and the
/// point count and search agreeing with Get.
async fn check_points(c: &mut Client, name: &'static str, model: &Model, out: &mut Outcome) {
    let ids: Vec<String> = model
        .ids
        .keys()
        .filter(|(k, _)| *k == name)
        .map(|(_, id)| id.clone())
        .collect();
    let got = present(c, name, &ids).await;
    for id in &ids {
        let may = &model.ids[&(name, id.clone())];
        let is = got.get(id).copied();
        if !may.contains(&is) {
            let note = format!("{name}/{id}: is {is:?}, may be {may:?}");
            // Absent or older than acknowledged: lost; else back from the dead.
            let lost = match is {
                None => true,
                Some(v) => may.iter().flatten().any(|m| *m > v),
            };
            if lost {
                out.lost.push(note);
            } else {
                out.resurrected.push(note);
            }
        }
    }
    let info = c
        .describe_collection(pb::DescribeCollectionRequest { name: name.into() })
        .await;
    if let Ok(info) = info
        && info.get_ref().points != got.len() as u64
    {
        out.other.push(format!(
            "{name}: {} points counted, {} found by id",
            info.get_ref().points,
            got.len()
        ));
    }
    let r = c
        .search(search_req(name, vec![vector_query(vec![0.0; DIM])], 1000))
        .await;
    if let Ok(r) = r {
        for h in &r.into_inner().results[0].hits {
            if !got.contains_key(&h.id) {
                out.resurrected
                    .push(format!("{name}/{}: found by search only", h.id));
            }
        }
    }
}

/// The plans of a sweep: for each mode, every `stride`-th operation.
fn plans(ops: &[String], stride: usize) -> Vec<(Mode, Plan)> {
    let mutating: Vec<&String> = ops
        .iter()
        .filter(|o| Op::MUTATING.iter().any(|m| format!("{m:?}") == **o))
        .collect();
    let mut out = Vec::new();
    for (i, op) in ops.iter().enumerate().step_by(stride) {
        let (errno, short) = errno_for(op, i as u64);
        out.push((
            Mode::Error,
            Plan {
                ops: Op::ALL.to_vec(),
                path_contains: None,
                at: i as u64,
                effect: Effect::Fail { errno, short },
            },
        ));
    }
    for (mode, effect) in [
        (Mode::Crash, Effect::Crash),
        (Mode::PowerCut, Effect::PowerCut),
    ] {
        let offset = if matches!(mode, Mode::Crash) {
            0
        } else {
            stride / 2
        };
        for i in (offset..mutating.len()).step_by(stride) {
            out.push((
                mode,
                Plan {
                    ops: Op::MUTATING.to_vec(),
                    path_contains: None,
                    at: i as u64,
                    effect,
                },
            ));
        }
    }
    out
}

/// Sweeps every workload; fails on any problem, or if fewer than
/// `min_injected` failures were injected in all (a sweep that quietly
/// shrank would prove less).
async fn sweep(stride: usize, min_injected: usize) {
    let started = Instant::now();
    let mut problems = Vec::new();
    let mut injected = 0;
    for (name, workload) in WORKLOADS {
        let (p, n) = sweep_one(name, workload, stride).await;
        problems.extend(p);
        injected += n;
    }
    println!(
        "fault sweep: {injected} failures injected in all, {} problems; {:.1} s",
        problems.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(
        problems.is_empty(),
        "{} problems:\n{}",
        problems.len(),
        problems.join("\n")
    );
    assert!(
        injected >= min_injected,
        "only {injected} failures injected; the sweep must inject at least {min_injected}"
    );
}

/// Sweeps the failure over `workload`; the problems found and how many
/// failures were injected.
async fn sweep_one(name: &str, workload: fn() -> Vec<Step>, stride: usize) -> (Vec<String>, usize) {
    let started = Instant::now();
    let tmp = tempfile::tempdir().unwrap();
    let ops = count_ops(&tmp.path().join("count"), workload).await;
    let mut plans = plans(&ops, stride);
    // VIDX_SWEEP_ONLY=<mode>:<at> (e.g. "Error:12") replays one run.
    if let Ok(only) = std::env::var("VIDX_SWEEP_ONLY") {
        plans.retain(|(mode, plan)| format!("{mode:?}:{}", plan.at) == only);
        eprintln!("ops: {ops:?}\nplans: {plans:?}");
    }
    let runs = plans.len();
    let limit = std::env::var("VIDX_SWEEP_RUN_LIMIT")
        .ok()
        .and_then(|s| s.parse().ok())
        .map_or(RUN_LIMIT, Duration::from_secs);
    let mut results: Vec<(Mode, u64, Outcome)> = Vec::new();
    let mut queue = plans.into_iter().enumerate();
    let mut running = tokio::task::JoinSet::new();
    let mut hung = false;
    loop {
        while running.len() < PARALLEL && !hung {
            let Some((i, (mode, plan))) = queue.next() else {
                break;
            };
            let base = tmp.path().join(format!("run-{i}"));
            running.spawn(async move {
                let at = plan.at;
                let run = one_run(&base, workload, mode, plan);
                let o = match tokio::time::timeout(limit, run).await {
                    Ok(o) => o,
                    // Its server threads may still be at work: its files stay.
                    Err(_) => return (mode, at, hung_run(limit)),
                };
                let _ = std::fs::remove_dir_all(&base);
                (mode, at, o)
            });
        }
        match running.join_next().await {
            Some(r) => {
                let r = r.expect("run");
                hung |= r.2.hung;
                results.push(r);
            }
            None => break,
        }
    }
    report(name, &ops, runs, &results, started.elapsed())
}

/// Prints the counts of one workload's sweep; its problems and how many
/// failures were injected.
fn report(
    name: &str,
    ops: &[String],
    runs: usize,
    results: &[(Mode, u64, Outcome)],
    took: Duration,
) -> (Vec<String>, usize) {
    let fired = |m: fn(&Mode) -> bool| {
        results
            .iter()
            .filter(|(mode, _, o)| m(mode) && o.fired)
            .count()
    };
    let errors = fired(|m| matches!(m, Mode::Error));
    let crashes = fired(|m| matches!(m, Mode::Crash));
    let cuts = fired(|m| matches!(m, Mode::PowerCut));
    let sum = |f: fn(&Outcome) -> u64| results.iter().map(|(_, _, o)| f(o)).sum::<u64>();
    let mut problems = Vec::new();
    for (mode, at, o) in results {
        for (what, list) in [
            ("lost", &o.lost),
            ("resurrected", &o.resurrected),
            ("did not open", &o.unopened),
            ("other", &o.other),
        ] {
            for p in list {
                problems.push(format!(
                    "{name}: {mode:?} at {at} ({}): {what}: {p}",
                    ops.get(*at as usize).map_or("", |s| s)
                ));
            }
        }
    }
    let count = |f: fn(&Outcome) -> usize| results.iter().map(|(_, _, o)| f(o)).sum::<usize>();
    println!(
        "fault sweep, {name} workload: {} operations, {runs} runs, {} failures injected \
         ({errors} errors, {crashes} crashes, {cuts} power cuts); {} acknowledged upserts and \
         {} acknowledged deletes checked; {} lost, {} resurrected, {} collections that did not \
         open; {:.1} s",
        ops.len(),
        errors + crashes + cuts,
        sum(|o| o.acked_upserts),
        sum(|o| o.acked_deletes),
        count(|o| o.lost.len()),
        count(|o| o.resurrected.len()),
        count(|o| o.unopened.len()),
        took.as_secs_f64()
    );
    (problems, errors + crashes + cuts)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_sweep() {
    // The CI size must inject at least 200 failures (issue 11); a stride
    // set by hand, or one run replayed, is a different sweep.
    let (stride, min) = match std::env::var("VIDX_SWEEP_STRIDE") {
        Ok(s) => (s.parse().expect("VIDX_SWEEP_STRIDE: a number"), 0),
        Err(_) => (3, 200),
    };
    let min = if std::env::var("VIDX_SWEEP_ONLY").is_ok() {
        0
    } else {
        min
    };
    sweep(stride, min).await;
}

/// Every operation, every mode: `scripts/fault-sweep.sh`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "long; run scripts/fault-sweep.sh"]
async fn fault_sweep_full() {
    let min = if std::env::var("VIDX_SWEEP_ONLY").is_ok() {
        0
    } else {
        200
    };
    sweep(1, min).await;
}
