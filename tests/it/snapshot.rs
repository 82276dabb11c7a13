//! Snapshots: taken by a real server (`vidx snapshot create`, the real
//! binary against it) while four clients keep upserting, restored with
//! `vidx snapshot restore` into another data directory and served again;
//! damaged snapshots refused by `verify` and `restore` with the file named.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::support::process::{BIN, run};
use crate::support::*;
use vidx::api::server::ServerOptions;
use vidx::collection::StorageOptions;
use vidx::pb;
use vidx::storage::wal::SyncPolicy;

const DIM: usize = 24;
const WRITERS: usize = 4;
const BATCH: usize = 25;

/// `vidx ARGS` on a blocking thread (the servers run on this runtime).
async fn vidx(args: &[&str]) -> String {
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    tokio::task::spawn_blocking(move || run(&args))
        .await
        .unwrap()
}

/// `vidx ARGS`, which must fail; its stderr.
fn vidx_fails(args: &[&str]) -> String {
    let out = Command::new(BIN).args(args).output().unwrap();
    assert!(!out.status.success(), "vidx {args:?} succeeded");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Point `w<writer>-<batch>-<i>`'s vector: fixed by its id.
fn vector_of(writer: usize, batch: usize, i: usize) -> Vec<f32> {
    let seed = (writer * 1_000_000 + batch * 1000 + i) as u64;
    random_unit(&mut ChaCha8Rng::seed_from_u64(seed), DIM)
}

/// Points by id, asked for in pages of 1,000.
async fn get_all(c: &mut Client, collection: &str, ids: &[String]) -> BTreeMap<String, pb::Point> {
    let mut out = BTreeMap::new();
    for page in ids.chunks(1000) {
        let r = c
            .get(pb::GetRequest {
                collection: collection.into(),
                ids: page.to_vec(),
            })
            .await
            .unwrap()
            .into_inner();
        out.extend(r.points.into_iter().map(|p| (p.id.clone(), p)));
    }
    out
}

/// Top-10 (ids, distances) of each query, searched broadly enough to be
/// exact on these few thousand points.
async fn answers(
    c: &mut Client,
    collection: &str,
    queries: &[Vec<f32>],
) -> Vec<Vec<(String, f32)>> {
    let mut req = search_req(
        collection,
        queries.iter().cloned().map(vector_query).collect(),
        10,
    );
    req.ef = 2000;
    let r = c.search(req).await.unwrap().into_inner();
    r.results
        .into_iter()
        .map(|q| q.hits.into_iter().map(|h| (h.id, h.distance)).collect())
        .collect()
}

fn same_answers(a: &[Vec<(String, f32)>], b: &[Vec<(String, f32)>], what: &str) {
    assert_eq!(a.len(), b.len());
    for (qa, qb) in a.iter().zip(b) {
        let ids_a: Vec<&str> = qa.iter().map(|h| h.0.as_str()).collect();
        let ids_b: Vec<&str> = qb.iter().map(|h| h.0.as_str()).collect();
        assert_eq!(ids_a, ids_b, "{what}");
        for (x, y) in qa.iter().zip(qb) {
            assert!((x.1 - y.1).abs() < 1e-5, "{what}: {x:?} vs {y:?}");
        }
    }
}

/// Four clients upserting batches of new points until told to stop; each
/// records the ids of every batch the server acknowledged.
fn start_writers(
    url: &str,
    stop: &Arc<AtomicBool>,
    acked: &Arc<Mutex<Vec<String>>>,
) -> Vec<tokio::task::JoinHandle<()>> {
    (0..WRITERS)
        .map(|w| {
            let (url, stop, acked) = (url.to_string(), stop.clone(), acked.clone());
            tokio::spawn(async move {
                let mut c = connect(&url).await;
                for b in 0.. {
                    if stop.load(Ordering::SeqCst) {
                        return;
                    }
                    let pts: Vec<pb::Point> = (0..BATCH)
                        .map(|i| point(&format!("w{w}-{b}-{i}"), vector_of(w, b, i)))
                        .collect();
                    let ids: Vec<String> = pts.iter().map(|p| p.id.clone()).collect();
                    upsert_batches(&mut c, "live", pts, BATCH).await.unwrap();
                    acked.lock().unwrap().extend(ids);
                }
            })
        })
        .collect()
}

async fn wait_for_acks(acked: &Arc<Mutex<Vec<String>>>, n: usize) {
    let started = Instant::now();
    while acked.lock().unwrap().len() < n {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "writers too slow"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// `vidx snapshot create` of collection `live` at `url` into `out`.
async fn snapshot_cli(url: &str, out: &Path) -> String {
    let out = out.to_str().unwrap();
    vidx(&[
        "snapshot",
        "create",
        "--server",
        url,
        "--collection",
        "live",
        "--out",
        out,
    ])
    .await
}

/// What the writers had acknowledged when the snapshot began, and once
/// they stopped.
struct Acks {
    before: HashSet<String>,
    all: Vec<String>,
}

/// Takes snapshot `during` while four writers upsert, lets them go on a
/// little and stops them.
async fn snapshot_under_writers(url: &str, during: &Path) -> Acks {
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(Mutex::new(Vec::new()));
    let writers = start_writers(url, &stop, &acked);
    wait_for_acks(&acked, 1500).await;
    let before: HashSet<String> = acked.lock().unwrap().iter().cloned().collect();
    let out = snapshot_cli(url, during).await;
    assert!(out.contains("verified"), "{out}");
    let at_end_of_snapshot = acked.lock().unwrap().len();
    // The writers went on meanwhile and go on a little longer.
    wait_for_acks(&acked, at_end_of_snapshot + 300).await;
    stop.store(true, Ordering::SeqCst);
    for w in writers {
        w.await.unwrap();
    }
    let all: Vec<String> = acked.lock().unwrap().clone();
    assert!(
        all.len() > before.len(),
        "writes continued during the snapshot"
    );
    Acks { before, all }
}

/// Every point acknowledged before the snapshot began is in the restored
/// `live`, as it was written; nothing is in it that no client sent; its
/// searches are exact over exactly its points.
async fn check_restored_under_writes(
    r: &mut Client,
    c: &mut Client,
    acks: &Acks,
    queries: &[Vec<f32>],
) {
    let before_ids: Vec<String> = acks.before.iter().cloned().collect();
    let got = get_all(r, "live", &before_ids).await;
    let missing: Vec<&String> = before_ids
        .iter()
        .filter(|id| !got.contains_key(*id))
        .collect();
    assert!(
        missing.is_empty(),
        "{} acknowledged points missing, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
    let source = get_all(c, "live", &before_ids).await;
    assert_eq!(got, source, "the restored points are the points written");
    let in_snapshot = get_all(r, "live", &acks.all).await;
    let info = r
        .describe_collection(pb::DescribeCollectionRequest {
            name: "live".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        info.points as usize,
        in_snapshot.len(),
        "every restored point is one a client sent"
    );
    assert!(in_snapshot.len() >= acks.before.len() && in_snapshot.len() <= acks.all.len());
    let got = answers(r, "live", queries).await;
    let exact: Vec<Vec<(String, f32)>> = queries
        .iter()
        .map(|q| {
            let points = in_snapshot
                .iter()
                .map(|(id, p)| (id.clone(), p.vector.as_slice()));
            exact_top_k(q, points, 10)
                .into_iter()
                .map(|(d, id)| (id, d))
                .collect()
        })
        .collect();
    same_answers(
        &got,
        &exact,
        "snapshot taken under writes vs exact over its points",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_snapshot_under_four_writers_holds_every_acknowledged_point_and_restores() {
    // A small seal threshold: seals and merges run while the snapshot is taken.
    let server = TestServer::start_storage(StorageOptions {
        seal_threshold: 300,
        sync: SyncPolicy::Never,
        ..Default::default()
    })
    .await;
    let url = format!("http://{}", server.addr);
    let mut c = server.client().await;
    c.create_collection(create_req("live", DIM as u32, pb::Metric::Cosine))
        .await
        .unwrap();
    let snaps = tempfile::tempdir().unwrap();
    let (during, after) = (snaps.path().join("during"), snaps.path().join("after"));
    let acks = snapshot_under_writers(&url, &during).await;
    // A second snapshot once the writers stopped: the same points as the source.
    snapshot_cli(&url, &after).await;

    let restored_dir = tempfile::tempdir().unwrap();
    let d = restored_dir.path().to_str().unwrap();
    let (during, after) = (during.to_str().unwrap(), after.to_str().unwrap());
    vidx(&["snapshot", "verify", during]).await;
    vidx(&["snapshot", "restore", during, "--data-dir", d]).await;
    vidx(&[
        "snapshot",
        "restore",
        after,
        "--data-dir",
        d,
        "--as",
        "quiet",
    ])
    .await;
    let restored = TestServer::start_in(restored_dir.path(), ServerOptions::default()).await;
    let mut r = restored.client().await;

    let mut rng = ChaCha8Rng::seed_from_u64(77);
    let queries: Vec<Vec<f32>> = (0..20).map(|_| random_unit(&mut rng, DIM)).collect();
    check_restored_under_writes(&mut r, &mut c, &acks, &queries).await;
    // The quiet snapshot answers as the source server does.
    let want = answers(&mut c, "live", &queries).await;
    let got = answers(&mut r, "quiet", &queries).await;
    same_answers(&got, &want, "restored vs source");
    assert_eq!(
        get_all(&mut r, "quiet", &acks.all).await.len(),
        acks.all.len()
    );
}

/// A server with an image collection `images` holding sealed segments,
/// log records above the checkpoint and a stored series state; its URL.
async fn linked_source() -> (TestServer, String) {
    let server = TestServer::start().await;
    let mut c = server.client().await;
    c.create_collection(create_req("images", 16, pb::Metric::Cosine))
        .await
        .unwrap();
    let vs = clustered(260, 16, 10, 0.3, 5);
    let pts: Vec<pb::Point> = vs
        .into_iter()
        .enumerate()
        .map(|(i, v)| point(&format!("m{i}"), v))
        .collect();
    upsert_batches(&mut c, "images", pts[..200].to_vec(), 100)
        .await
        .unwrap();
    c.flush(pb::FlushRequest {
        collection: "images".into(),
    })
    .await
    .unwrap();
    upsert_batches(&mut c, "images", pts[200..].to_vec(), 30)
        .await
        .unwrap();
    let mut events = c
        .link_series(pb::LinkSeriesRequest {
            image_collection: "images".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    while events.message().await.unwrap().is_some() {}
    assert!(server.data_dir.join("series/images.json").is_file());
    let url = format!("http://{}", server.addr);
    (server, url)
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.path().is_dir() {
            copy_dir(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

/// The snapshot's file whose relative path starts with `prefix`.
fn file_in(snap: &Path, prefix: &str) -> String {
    vidx::storage::snapshot::list_files(snap)
        .unwrap()
        .into_iter()
        .chain(["snapshot.json".to_string()])
        .find(|f| f.starts_with(prefix))
        .unwrap_or_else(|| panic!("no {prefix}* in the snapshot"))
}

/// Damages (flips a byte of, cuts a byte off, removes) one file of each
/// kind in copies of `snap`: `verify` and `restore` fail naming it, and
/// nothing is restored.
fn damage_each_file(snap: &Path, tmp: &Path) {
    let prefixes = [
        "collection/seg-",
        "collection/wal-",
        "collection/manifest.json",
        "data/series/images.json",
        "snapshot.json",
    ];
    for prefix in prefixes {
        let victim = file_in(snap, prefix);
        for damage in ["flip", "truncate", "remove"] {
            if victim == "snapshot.json" && damage == "remove" {
                continue;
            }
            let copy = tmp.join(format!("damaged-{damage}"));
            let _ = std::fs::remove_dir_all(&copy);
            copy_dir(snap, &copy);
            let path = copy.join(&victim);
            let mut bytes = std::fs::read(&path).unwrap();
            match damage {
                "flip" => {
                    let at = bytes.len() / 2;
                    bytes[at] ^= 0x01;
                    std::fs::write(&path, &bytes).unwrap();
                }
                "truncate" => std::fs::write(&path, &bytes[..bytes.len() - 1]).unwrap(),
                _ => std::fs::remove_file(&path).unwrap(),
            }
            let e = vidx_fails(&["snapshot", "verify", copy.to_str().unwrap()]);
            assert!(
                e.contains(&victim),
                "verify after {damage} of {victim}: {e}"
            );
            let data = tmp.join(format!("data-{damage}"));
            let d = data.to_str().unwrap();
            let e = vidx_fails(&[
                "snapshot",
                "restore",
                copy.to_str().unwrap(),
                "--data-dir",
                d,
            ]);
            assert!(
                e.contains(&victim),
                "restore after {damage} of {victim}: {e}"
            );
            assert!(
                !data.join("collections/images").exists(),
                "nothing restored"
            );
            assert!(
                !data.join("series/images.json").exists(),
                "nothing restored"
            );
        }
    }
}

/// The restored `images` and `copy` answer as the source; triage reads them.
async fn check_restored_serve(r: &mut Client, c: &mut Client) {
    for name in ["images", "copy"] {
        let info = r
            .describe_collection(pb::DescribeCollectionRequest { name: name.into() })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(info.points, 260);
        let q = vec![id_query("m3"), id_query("m250")];
        let got = r
            .search(search_req(name, q.clone(), 5))
            .await
            .unwrap()
            .into_inner();
        let want = c
            .search(search_req("images", q, 5))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(got, want);
    }
    let item = pb::TriageItem {
        id: "x".into(),
        vector: clustered(1, 16, 10, 0.3, 5).remove(0),
        ..Default::default()
    };
    let mut t = r
        .triage(tokio_stream::iter(vec![pb::TriageRequest {
            image_collection: "copy".into(),
            items: vec![item],
            ..Default::default()
        }]))
        .await
        .unwrap()
        .into_inner();
    let first = t.message().await.unwrap().unwrap();
    assert_eq!(first.results[0].verdict, pb::Verdict::Known as i32);
    assert_eq!(first.results[0].nearest_media_id, "m0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_snapshot_fails_verify_and_restore_naming_the_file() {
    let (server, url) = linked_source().await;
    let tmp = tempfile::tempdir().unwrap();
    let snap = tmp.path().join("snap");
    let s = snap.to_str().unwrap();
    vidx(&[
        "snapshot",
        "create",
        "--server",
        &url,
        "--collection",
        "images",
        "--out",
        s,
    ])
    .await;
    damage_each_file(&snap, tmp.path());

    // Undamaged, it restores with its series state, under a new name too.
    let data = tmp.path().join("data");
    let d = data.to_str().unwrap();
    vidx(&["snapshot", "restore", s, "--data-dir", d]).await;
    assert_eq!(
        std::fs::read(data.join("series/images.json")).unwrap(),
        std::fs::read(server.data_dir.join("series/images.json")).unwrap()
    );
    let e = vidx_fails(&["snapshot", "restore", s, "--data-dir", d]);
    assert!(e.contains("already exists") && e.contains("--as"), "{e}");
    let e = vidx_fails(&[
        "snapshot",
        "restore",
        s,
        "--data-dir",
        d,
        "--as",
        "Bad Name",
    ]);
    assert!(
        e.contains("\"Bad Name\" is not a valid collection name"),
        "{e}"
    );
    vidx(&["snapshot", "restore", s, "--data-dir", d, "--as", "copy"]).await;
    let state = vidx::investigate::series::StateStore::new(data.join("series"))
        .load("copy")
        .unwrap()
        .expect("the series state follows the new name");
    assert_eq!(state.image_collection, "copy");

    // The restored collections serve; no restore while a server holds the directory.
    let restored = TestServer::start_in(&data, ServerOptions::default()).await;
    let e = vidx_fails(&["snapshot", "restore", s, "--data-dir", d, "--as", "third"]);
    assert!(e.contains("data directory in use"), "{e}");
    check_restored_serve(&mut restored.client().await, &mut server.client().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_snapshot_refuses_bad_and_unknown_collections() {
    let server = TestServer::start().await;
    let mut c = server.client().await;
    let e = c
        .create_snapshot(pb::CreateSnapshotRequest {
            collection: "nope".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::NotFound);
    assert!(e.message().contains("\"nope\""), "{e:?}");
    let e = c
        .create_snapshot(pb::CreateSnapshotRequest {
            collection: "../etc".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::InvalidArgument);
    assert!(e.message().starts_with("collection \"../etc\""), "{e:?}");
    // Nothing is left behind in the data directory.
    c.create_collection(create_req("c", 4, pb::Metric::L2))
        .await
        .unwrap();
    let mut s = c
        .create_snapshot(pb::CreateSnapshotRequest {
            collection: "c".into(),
        })
        .await
        .unwrap()
        .into_inner();
    let mut paths = Vec::new();
    while let Some(chunk) = s.message().await.unwrap() {
        paths.push(chunk.path);
    }
    assert_eq!(paths.last().map(String::as_str), Some("snapshot.json"));
    let started = Instant::now();
    loop {
        let left: Vec<_> = std::fs::read_dir(server.data_dir.join("snapshots"))
            .unwrap()
            .collect();
        if left.is_empty() {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "temporary snapshot not removed"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
