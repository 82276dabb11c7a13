//! A collection's and a server's life around the writes in flight: a drop
//! while a stream writes into the collection, and a stop while a client
//! holds a stream open.

use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Code;
use vidx::api::server::ServerOptions;
use vidx::collection::StorageOptions;
use vidx::pb;

use crate::faults::points;
use crate::support::process::ServerProcess;
use crate::support::*;

async fn count(c: &mut Client, name: &str) -> u64 {
    c.describe_collection(pb::DescribeCollectionRequest { name: name.into() })
        .await
        .unwrap()
        .into_inner()
        .points
}

/// Issue 11, item 2: an Upsert stream that started before a drop must not
/// go on writing into the dropped collection, nor into the new collection
/// created under the same name (its files, its points after a restart).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_writing_into_a_dropped_collection_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let storage = StorageOptions {
        seal_threshold: 300,
        verify_on_open: false,
        ..Default::default()
    };
    let server =
        TestServer::start_full(tmp.path(), ServerOptions::default(), storage.clone()).await;
    let mut c = server.client().await;
    c.create_collection(create_req("c", 8, pb::Metric::L2))
        .await
        .unwrap();
    let (tx, rx) = mpsc::channel(4);
    let mut writer = server.client().await;
    let stream = tokio::spawn(async move { writer.upsert(ReceiverStream::new(rx)).await });
    let batch = |b: usize| pb::UpsertRequest {
        collection: "c".into(),
        points: points(&format!("b{b}-"), 0..50),
    };
    for b in 0..10 {
        tx.send(batch(b)).await.unwrap();
    }
    let started = Instant::now();
    while count(&mut c, "c").await < 500 {
        assert!(started.elapsed() < Duration::from_secs(30));
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    c.drop_collection(pb::DropCollectionRequest { name: "c".into() })
        .await
        .unwrap();
    c.create_collection(create_req("c", 8, pb::Metric::L2))
        .await
        .unwrap();
    for b in 10..30 {
        // The server may have ended the stream already.
        if tx.send(batch(b)).await.is_err() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    drop(tx);
    let e = stream.await.unwrap().unwrap_err();
    assert_eq!(e.code(), Code::NotFound, "{e:?}");
    assert!(e.message().contains("dropped"), "{e:?}");
    // Give a seal of the old collection every chance to run.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(count(&mut c, "c").await, 0);
    server.stop().await;
    let server = TestServer::start_full(tmp.path(), ServerOptions::default(), storage).await;
    let mut c = server.client().await;
    assert_eq!(count(&mut c, "c").await, 0);
    server.stop().await;
}

/// Issue 11, item 5: SIGTERM stops the server within its shutdown grace
/// even while a client keeps a stream open and idle.
#[test]
fn sigterm_stops_the_server_despite_an_idle_stream() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut server, url) =
        ServerProcess::start(&tmp.path().join("data"), &["--shutdown-grace", "2s"]);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let mut c = connect(&url).await;
        c.create_collection(create_req("c", 8, pb::Metric::L2))
            .await
            .unwrap();
        let (tx, rx) = mpsc::channel(4);
        tx.send(pb::UpsertRequest {
            collection: "c".into(),
            points: points("p", 0..5),
        })
        .await
        .unwrap();
        let mut writer = c.clone();
        let stream = tokio::spawn(async move { writer.upsert(ReceiverStream::new(rx)).await });
        let started = Instant::now();
        while count(&mut c, "c").await < 5 {
            assert!(started.elapsed() < Duration::from_secs(30));
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        server.send_sigterm();
        let t = Instant::now();
        let exited = server.wait_exit(Duration::from_secs(20));
        assert!(
            exited.is_some(),
            "still running 20 s after SIGTERM\n{}",
            server.tail()
        );
        assert!(t.elapsed() < Duration::from_secs(15), "{:?}", t.elapsed());
        let log = server.tail();
        assert!(log.contains("shutdown grace"), "{log}");
        drop(tx);
        let _ = stream.await;
    });
}
