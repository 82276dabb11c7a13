//! Failures a real disk produces, injected through the storage layer's I/O
//! seam (`vidx::storage::fs`) into an in-process server on loopback: a disk
//! that fills up mid-write, a manifest that cannot be written, running out
//! of file descriptors, an fsync that fails, a rename that is refused, an
//! unreadable collection. After each, the request that met the failure gets
//! a clear status, and a restart finds every acknowledged write and no
//! deleted point.

use std::collections::BTreeSet;
use std::path::Path;

use tonic::Code;
use vidx::api::server::ServerOptions;
use vidx::collection::StorageOptions;
use vidx::pb;
use vidx::storage::fs::{self, Effect, Op, Plan};

use crate::support::*;

const DIM: usize = 8;

fn storage() -> StorageOptions {
    StorageOptions {
        verify_on_open: false,
        ..Default::default()
    }
}

async fn start(dir: &Path) -> TestServer {
    TestServer::start_full(dir, ServerOptions::default(), storage()).await
}

/// Points `<prefix><i>` for i in `range`, distinct vectors.
pub fn points(prefix: &str, range: std::ops::Range<usize>) -> Vec<pb::Point> {
    range
        .map(|i| {
            let v = (0..DIM)
                .map(|d| ((i * 31 + d * 7) % 101) as f32 + d as f32 * 0.5)
                .collect();
            point(&format!("{prefix}{i}"), v)
        })
        .collect()
}

fn ids(points: &[pb::Point]) -> Vec<String> {
    points.iter().map(|p| p.id.clone()).collect()
}

async fn upsert(c: &mut Client, name: &str, pts: Vec<pb::Point>) -> Result<u64, tonic::Status> {
    upsert_batches(c, name, pts, 1000).await
}

/// Which of `ids` the collection holds.
pub async fn present(c: &mut Client, name: &str, ids: &[String]) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for chunk in ids.chunks(1000) {
        let got = c
            .get(pb::GetRequest {
                collection: name.into(),
                ids: chunk.to_vec(),
            })
            .await
            .unwrap_or_else(|e| panic!("get from {name}: {e}"))
            .into_inner();
        out.extend(got.points.into_iter().map(|p| p.id));
    }
    out
}

async fn flush(c: &mut Client, name: &str) -> Result<pb::FlushResponse, tonic::Status> {
    c.flush(pb::FlushRequest {
        collection: name.into(),
    })
    .await
    .map(|r| r.into_inner())
}

async fn describe(c: &mut Client, name: &str) -> Result<pb::CollectionInfo, tonic::Status> {
    c.describe_collection(pb::DescribeCollectionRequest { name: name.into() })
        .await
        .map(|r| r.into_inner())
}

fn plan(ops: &[Op], path: &str, at: u64, effect: Effect) -> Plan {
    Plan {
        ops: ops.to_vec(),
        path_contains: Some(path.into()),
        at,
        effect,
    }
}

/// Issue 11, item 1: a write that fills the disk must not leave the log with
/// a gap that a later acknowledged record lands behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_write_on_a_full_disk_loses_no_acknowledged_point() {
    let tmp = tempfile::tempdir().unwrap();
    let server = start(tmp.path()).await;
    let mut c = server.client().await;
    c.create_collection(create_req("c", DIM as u32, pb::Metric::L2))
        .await
        .unwrap();
    let mut acked = points("a", 0..100);
    upsert(&mut c, "c", acked.clone()).await.unwrap();
    server.stop().await;
    // Reopened: the active log is now the one recovery opened.
    let server = start(tmp.path()).await;
    let mut c = server.client().await;
    upsert(&mut c, "c", points("b", 0..20)).await.unwrap();
    acked.extend(points("b", 0..20));

    let full = fs::inject(
        tmp.path(),
        plan(
            &[Op::Write],
            "wal-",
            0,
            Effect::FailFromThen {
                errno: libc::ENOSPC,
                short: true,
            },
        ),
    );
    let mut refused = Vec::new();
    for round in 0..3 {
        let batch = points(&format!("x{round}-"), 0..50);
        let e = upsert(&mut c, "c", batch.clone()).await.unwrap_err();
        assert!(e.message().contains("No space left"), "{e:?}");
        refused.extend(ids(&batch));
    }
    assert!(full.fired());
    full.clear(); // space was freed
    upsert(&mut c, "c", points("z", 0..20)).await.unwrap();
    acked.extend(points("z", 0..20));
    server.stop().await;
    drop(full);

    let server = start(tmp.path()).await;
    let mut c = server.client().await;
    let want: BTreeSet<String> = ids(&acked).into_iter().collect();
    let all: Vec<String> = want.iter().cloned().chain(refused.clone()).collect();
    assert_eq!(present(&mut c, "c", &all).await, want);
    assert_eq!(
        describe(&mut c, "c").await.unwrap().points,
        acked.len() as u64
    );
    server.stop().await;
}

/// Issue 11, item 3: a manifest write that fails must not let a later
/// checkpoint drop the log record of a delete whose tombstones the manifest
/// does not name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_manifest_write_brings_no_deleted_point_back() {
    let tmp = tempfile::tempdir().unwrap();
    let server = start(tmp.path()).await;
    let mut c = server.client().await;
    c.create_collection(create_req("c", DIM as u32, pb::Metric::L2))
        .await
        .unwrap();
    upsert(&mut c, "c", points("p", 0..100)).await.unwrap();
    flush(&mut c, "c").await.unwrap();
    let deleted = ids(&points("p", 0..10));
    let r = c
        .delete(pb::DeleteRequest {
            collection: "c".into(),
            ids: deleted.clone(),
        })
        .await
        .unwrap();
    assert_eq!(r.into_inner().deleted, 10);
    upsert(&mut c, "c", points("q", 0..50)).await.unwrap();

    let full = fs::inject(
        tmp.path(),
        plan(
            &[Op::Write],
            "manifest",
            0,
            Effect::Fail {
                errno: libc::ENOSPC,
                short: false,
            },
        ),
    );
    let e = flush(&mut c, "c").await.unwrap_err();
    assert!(full.fired());
    assert!(e.message().contains("manifest"), "{e:?}");
    drop(full);
    flush(&mut c, "c").await.unwrap();
    upsert(&mut c, "c", points("r", 0..20)).await.unwrap();
    flush(&mut c, "c").await.unwrap();
    server.stop().await;

    let server = start(tmp.path()).await;
    let mut c = server.client().await;
    assert_eq!(describe(&mut c, "c").await.unwrap().points, 160);
    assert!(present(&mut c, "c", &deleted).await.is_empty());
    server.stop().await;
}

/// Issue 11, items 7 and 9: running out of file descriptors during a flush
/// is RESOURCE_EXHAUSTED saying so, and leaves nothing half done.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn running_out_of_descriptors_is_a_clear_error_not_a_half_flush() {
    let tmp = tempfile::tempdir().unwrap();
    let server = start(tmp.path()).await;
    let mut c = server.client().await;
    c.create_collection(create_req("c", DIM as u32, pb::Metric::L2))
        .await
        .unwrap();
    upsert(&mut c, "c", points("p", 0..50)).await.unwrap();
    flush(&mut c, "c").await.unwrap();
    upsert(&mut c, "c", points("q", 0..50)).await.unwrap();
    for at in [0, 1, 3, 6] {
        let emfile = fs::inject(
            tmp.path(),
            plan(
                &[Op::Open, Op::Create],
                "collections",
                at,
                Effect::FailFromThen {
                    errno: libc::EMFILE,
                    short: false,
                },
            ),
        );
        let e = flush(&mut c, "c").await.unwrap_err();
        assert!(emfile.fired(), "at {at}");
        assert_eq!(e.code(), Code::ResourceExhausted, "at {at}: {e:?}");
        assert!(e.message().contains("Too many open files"), "{e:?}");
        drop(emfile);
        assert_eq!(describe(&mut c, "c").await.unwrap().points, 100);
    }
    upsert(&mut c, "c", points("r", 0..5)).await.unwrap();
    flush(&mut c, "c").await.unwrap();
    server.stop().await;
    let server = start(tmp.path()).await;
    let mut c = server.client().await;
    assert_eq!(describe(&mut c, "c").await.unwrap().points, 105);
    server.stop().await;
}

/// Issue 11, item 9: a full disk is RESOURCE_EXHAUSTED naming the file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_is_resource_exhausted_naming_the_file() {
    let server = TestServer::start_storage(storage()).await;
    let mut c = server.client().await;
    c.create_collection(create_req("c", DIM as u32, pb::Metric::L2))
        .await
        .unwrap();
    let full = fs::inject(
        &server.data_dir,
        plan(
            &[Op::Write],
            "wal-",
            0,
            Effect::FailFromThen {
                errno: libc::ENOSPC,
                short: false,
            },
        ),
    );
    let e = upsert(&mut c, "c", points("p", 0..5)).await.unwrap_err();
    assert_eq!(e.code(), Code::ResourceExhausted, "{e:?}");
    assert!(e.message().contains("wal-"), "{e:?}");
    assert!(e.message().contains("No space left on device"), "{e:?}");
    drop(full);
    upsert(&mut c, "c", points("p", 0..5)).await.unwrap();
    server.stop().await;
}

/// Issue 11, item 9: a collection whose files cannot be opened (an
/// unwritable or read-only data directory) is FAILED_PRECONDITION naming
/// the path, and ListCollections still lists it; the others keep serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unwritable_collection_is_listed_and_refused_naming_the_path() {
    for (errno, op, path) in [
        (libc::EROFS, Op::Open, "collections/c/wal-"),
        (libc::EACCES, Op::List, "collections/c"),
    ] {
        let tmp = tempfile::tempdir().unwrap();
        let server = start(tmp.path()).await;
        let mut c = server.client().await;
        for name in ["c", "d"] {
            c.create_collection(create_req(name, DIM as u32, pb::Metric::L2))
                .await
                .unwrap();
            upsert(&mut c, name, points("p", 0..10)).await.unwrap();
        }
        server.stop().await;
        let denied = fs::inject(
            tmp.path(),
            plan(
                &[op],
                path,
                0,
                Effect::FailFromThen {
                    errno,
                    short: false,
                },
            ),
        );
        let server = start(tmp.path()).await;
        let mut c = server.client().await;
        assert!(denied.fired());
        let e = describe(&mut c, "c").await.unwrap_err();
        assert!(
            matches!(e.code(), Code::FailedPrecondition | Code::Unavailable),
            "{errno}: {e:?}"
        );
        assert!(e.message().contains(path), "{e:?}");
        let listed = c
            .list_collections(pb::ListCollectionsRequest {})
            .await
            .unwrap()
            .into_inner();
        let names: Vec<&str> = listed.collections.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["c", "d"]);
        let states: Vec<&str> = listed
            .collections
            .iter()
            .map(|c| c.state.as_str())
            .collect();
        assert_eq!(states, ["unavailable", "ready"]);
        assert!(listed.collections[0].error.contains(path), "{listed:?}");
        assert_eq!(describe(&mut c, "d").await.unwrap().points, 10);
        server.stop().await;
    }
}

/// Issue 11, item 11: a drop whose rename fails keeps the collection, in
/// the API and on disk.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_drop_keeps_the_collection() {
    let tmp = tempfile::tempdir().unwrap();
    let server = start(tmp.path()).await;
    let mut c = server.client().await;
    c.create_collection(create_req("c", DIM as u32, pb::Metric::L2))
        .await
        .unwrap();
    upsert(&mut c, "c", points("p", 0..30)).await.unwrap();
    let refused = fs::inject(
        tmp.path(),
        plan(
            &[Op::Rename],
            ".dropping-",
            0,
            Effect::Fail {
                errno: libc::EACCES,
                short: false,
            },
        ),
    );
    let e = c
        .drop_collection(pb::DropCollectionRequest { name: "c".into() })
        .await
        .unwrap_err();
    assert!(refused.fired());
    drop(refused);
    let info = describe(&mut c, "c").await;
    assert_eq!(info.map(|i| i.points).ok(), Some(30), "after {e:?}");
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    upsert(&mut c, "c", points("q", 0..5)).await.unwrap();
    flush(&mut c, "c").await.unwrap();
    server.stop().await;
    let server = start(tmp.path()).await;
    let mut c = server.client().await;
    assert_eq!(describe(&mut c, "c").await.unwrap().points, 35);
    server.stop().await;
}

/// After a failed fsync the log is not trusted again: the collection turns
/// read-only with a clear status (reads go on) until a restart recovers it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_failed_fsync_the_collection_is_read_only_until_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let server = start(tmp.path()).await;
    let mut c = server.client().await;
    for name in ["c", "d"] {
        c.create_collection(create_req(name, DIM as u32, pb::Metric::L2))
            .await
            .unwrap();
        upsert(&mut c, name, points("p", 0..20)).await.unwrap();
    }
    let eio = fs::inject(
        tmp.path(),
        plan(
            &[Op::Sync],
            "collections/c/wal-",
            0,
            Effect::Fail {
                errno: libc::EIO,
                short: false,
            },
        ),
    );
    let e = upsert(&mut c, "c", points("q", 0..5)).await.unwrap_err();
    assert!(eio.fired());
    drop(eio);
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    assert!(e.message().contains("fsync"), "{e:?}");
    // Later writes too, though fsync works again: what the failed one
    // held may be gone whatever the next fsync says.
    for _ in 0..2 {
        let e = upsert(&mut c, "c", points("r", 0..5)).await.unwrap_err();
        assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
        assert!(e.message().contains("read-only"), "{e:?}");
    }
    let e = flush(&mut c, "c").await.unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    let info = describe(&mut c, "c").await.unwrap();
    assert_eq!(info.state, "read-only");
    assert!(info.error.contains("fsync"), "{info:?}");
    // Reads go on; the other collection takes writes.
    let acked = ids(&points("p", 0..20));
    assert_eq!(present(&mut c, "c", &acked).await.len(), 20);
    upsert(&mut c, "d", points("q", 0..5)).await.unwrap();
    let mut health = tonic_health::pb::health_client::HealthClient::new(
        vidx::api::server::channel(&format!("http://{}", server.addr))
            .await
            .unwrap(),
    );
    let status = |s: &str| tonic_health::pb::HealthCheckRequest {
        service: format!("collection:{s}"),
    };
    use tonic_health::pb::health_check_response::ServingStatus;
    let h = health.check(status("c")).await.unwrap().into_inner();
    assert_eq!(h.status, ServingStatus::NotServing as i32);
    let h = health.check(status("d")).await.unwrap().into_inner();
    assert_eq!(h.status, ServingStatus::Serving as i32);
    server.stop().await;

    let server = start(tmp.path()).await;
    let mut c = server.client().await;
    assert_eq!(present(&mut c, "c", &acked).await.len(), 20);
    upsert(&mut c, "c", points("s", 0..5)).await.unwrap();
    server.stop().await;
}

/// The segment directories of collection `name` under `root`.
fn segment_dirs(root: &Path, name: &str) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(root.join("collections").join(name))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("seg-"))
        .collect();
    v.sort();
    v
}

/// A seal or merge whose manifest cannot be written (here: every manifest
/// rename after the first fails, a disk that stays broken) removes the
/// segment it wrote, and is not retried in a loop: the fault sweep once
/// spun for minutes leaving thousands of `seg-N` directories. Once the disk
/// works again, a Flush seals and merges, and a restart finds every point.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seal_or_merge_that_keeps_failing_leaves_no_segments_and_does_not_spin() {
    let tmp = tempfile::tempdir().unwrap();
    let opts = StorageOptions {
        merge_factor: 2,
        seal_after: None,
        ..storage()
    };
    let server = TestServer::start_full(tmp.path(), ServerOptions::default(), opts.clone()).await;
    let mut c = server.client().await;
    c.create_collection(create_req("c", DIM as u32, pb::Metric::L2))
        .await
        .unwrap();
    upsert(&mut c, "c", points("a", 0..20)).await.unwrap();
    flush(&mut c, "c").await.unwrap();
    // The next seal's manifest is written; the merge it starts, and every
    // seal or merge after it, fail at the manifest's rename.
    let broken = fs::inject(
        tmp.path(),
        plan(
            &[Op::Rename],
            "manifest.json",
            1,
            Effect::FailFromThen {
                errno: libc::EIO,
                short: false,
            },
        ),
    );
    upsert(&mut c, "c", points("b", 0..20)).await.unwrap();
    flush(&mut c, "c").await.unwrap();
    for i in 0..5 {
        upsert(&mut c, "c", points(&format!("x{i}-"), 0..5))
            .await
            .unwrap();
        let e = flush(&mut c, "c").await.unwrap_err();
        assert!(e.message().contains("manifest.json"), "{e:?}");
    }
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    assert!(broken.fired());
    // Only the two segments the manifest names: no leftovers of the failed
    // merge and the five failed seals.
    assert_eq!(segment_dirs(tmp.path(), "c").len(), 2);
    // Idle, with the merge still pending: no attempt in a hot loop.
    let before = broken.counted();
    tokio::time::sleep(std::time::Duration::from_millis(1000)).await;
    let attempts = broken.counted() - before;
    assert!(
        attempts <= 2,
        "{attempts} manifest renames in an idle second"
    );
    drop(broken);
    flush(&mut c, "c").await.unwrap();
    server.stop().await;
    let server = TestServer::start_full(tmp.path(), ServerOptions::default(), opts).await;
    let mut c = server.client().await;
    assert_eq!(describe(&mut c, "c").await.unwrap().points, 65);
    server.stop().await;
}
