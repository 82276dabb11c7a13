//! Recovery of a long WAL tail through the real binary: the port answers
//! while a collection replays its log (issue 11, item 12), and how long the
//! replay takes.
//!
//! `recovery_of_a_long_wal_tail` is a measurement, not a CI test (speed
//! targets live in benchmarks): it writes a collection whose log holds
//! `VIDX_TAIL_POINTS` (default 100,000) single-point records of
//! `VIDX_TAIL_DIM`-d vectors (default 128) above the checkpoint, starts
//! `vidx serve` on it and prints when the port first answered and when the
//! collection was ready. `scripts/recovery-tail.sh` runs it.

use std::time::{Duration, Instant};

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use vidx::collection::StorageOptions;
use vidx::collection::config::{Config, Kind};
use vidx::collection::registry::Registry;
use vidx::index::distance::Metric;
use vidx::pb;
use vidx::storage::wal::{self, SyncPolicy, Wal, WalRecord};

use crate::support::process::ServerProcess;
use crate::support::random_unit;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .map(|v| v.parse().unwrap_or_else(|e| panic!("{name}={v:?}: {e}")))
        .unwrap_or(default)
}

/// Creates collection `tail` in `data_dir` and appends `points` one-point
/// records to its log directly (as a server killed before its first seal
/// would have left it).
fn write_tail(data_dir: &std::path::Path, points: usize, dim: usize) {
    let registry = Registry::open(data_dir, StorageOptions::default()).expect("open registry");
    registry
        .create(Config::new("tail", dim as u32, Metric::Cosine, Kind::Image))
        .expect("create");
    drop(registry);
    let path = data_dir.join("collections/tail").join(wal::file_name(1));
    let (mut log, _) = Wal::open(&path, 1, SyncPolicy::Never, true).expect("open log");
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    for i in 0..points {
        log.append(WalRecord {
            seq: 0,
            upserts: vec![pb::Point {
                id: format!("p{i}"),
                vector: random_unit(&mut rng, dim),
                metadata: Some(pb::Metadata::default()),
                ..Default::default()
            }],
            deletes: Vec::new(),
        })
        .expect("append");
    }
    log.sync_if_dirty().expect("sync");
}

/// A free loopback address, so the port can be probed before the server
/// says where it listens.
fn free_addr() -> std::net::SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
}

/// Issue 11, item 12: the server listens at once and answers while a
/// collection is still replaying its log; requests to that collection get
/// UNAVAILABLE saying so, and its health is NOT_SERVING until it is ready.
#[test]
fn the_port_answers_while_a_long_log_replays() {
    const POINTS: usize = 20_000;
    let tmp = tempfile::tempdir().expect("temp dir");
    let data = tmp.path().join("data");
    write_tail(&data, POINTS, 64);
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let addr = free_addr();
        let server = ServerProcess::spawn_on(
            &data,
            &addr.to_string(),
            &["--seal-threshold", "1000000"],
            &[],
        );
        let url = format!("http://{addr}");
        let started = Instant::now();
        let (mut while_opening, mut not_serving) = (None, false);
        loop {
            assert!(
                started.elapsed() < Duration::from_secs(300),
                "not ready after 5 min\n{}",
                server.tail()
            );
            let Ok(ch) = vidx::api::server::channel(&url).await else {
                tokio::time::sleep(Duration::from_millis(5)).await;
                continue;
            };
            let mut c = pb::vector_index_client::VectorIndexClient::new(ch.clone());
            let r = c
                .describe_collection(pb::DescribeCollectionRequest {
                    name: "tail".into(),
                })
                .await;
            match r {
                Ok(info) => {
                    assert_eq!(info.into_inner().points, POINTS as u64);
                    break;
                }
                Err(e) => {
                    assert_eq!(e.code(), tonic::Code::Unavailable, "{e:?}");
                    assert!(e.message().contains("opening"), "{e:?}");
                    while_opening.get_or_insert(started.elapsed());
                }
            }
            let mut h = tonic_health::pb::health_client::HealthClient::new(ch);
            let r = h
                .check(tonic_health::pb::HealthCheckRequest {
                    service: "collection:tail".into(),
                })
                .await;
            if let Ok(r) = r {
                use tonic_health::pb::health_check_response::ServingStatus;
                not_serving |= r.into_inner().status == ServingStatus::NotServing as i32;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let answered = while_opening.expect("the port only answered once the replay was over");
        assert!(not_serving, "health never said NOT_SERVING while replaying");
        eprintln!(
            "answered after {answered:.2?} while replaying; ready after {:.2?}",
            started.elapsed()
        );
        drop(server);
    });
}

#[test]
#[ignore = "measurement; run scripts/recovery-tail.sh"]
fn recovery_of_a_long_wal_tail() {
    let points = env_usize("VIDX_TAIL_POINTS", 100_000);
    let dim = env_usize("VIDX_TAIL_DIM", 128);
    let tmp = tempfile::tempdir().expect("temp dir");
    let data = tmp.path().join("data");
    let t = Instant::now();
    write_tail(&data, points, dim);
    eprintln!(
        "wrote a {points}-record tail of {dim}-d points in {:.1?}",
        t.elapsed()
    );

    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let started = Instant::now();
        let addr = free_addr();
        let server = ServerProcess::spawn_on(
                &data,
                &addr.to_string(),
                &["--seal-threshold", "1000000"],
                &[],
            );
        let url = format!("http://{addr}");
        let mut port = None;
        let ready = loop {
            assert!(started.elapsed() < Duration::from_secs(900), "not ready after 15 min");
            let Ok(ch) = vidx::api::server::channel(&url).await else {
                tokio::time::sleep(Duration::from_millis(5)).await;
                continue;
            };
            let mut c = pb::vector_index_client::VectorIndexClient::new(ch);
            if c.list_collections(pb::ListCollectionsRequest {}).await.is_ok() {
                port.get_or_insert(started.elapsed());
            }
            let r = c
                .describe_collection(pb::DescribeCollectionRequest {
                    name: "tail".into(),
                })
                .await;
            if let Ok(info) = r {
                assert_eq!(info.into_inner().points, points as u64);
                break started.elapsed();
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        let port = port.unwrap_or(ready);
        println!(
            "recovery of a {points}-point WAL tail ({dim}-d): port answered after {:.2} s, collection ready after {:.2} s",
            port.as_secs_f64(),
            ready.as_secs_f64()
        );
        drop(server);
    });
}
