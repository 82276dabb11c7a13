//! End-to-end: every RPC of `vidx.v1.VectorIndex` through a real tonic client
//! against a real server on a loopback port.

use crate::support::*;
use vidx::pb;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_lifecycle() {
    let server = TestServer::start().await;
    let mut c = server.client().await;

    let info = c
        .create_collection(create_req("images", 16, pb::Metric::Cosine))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (info.name.as_str(), info.dim, info.points, info.segments),
        ("images", 16, 0, 1)
    );
    assert_eq!(info.hnsw.unwrap().m, 16);

    // Streamed upsert, several batches.
    let vecs = clustered(300, 16, 10, 0.3, 1);
    let points: Vec<pb::Point> = vecs
        .iter()
        .enumerate()
        .map(|(i, v)| point(&format!("p{i}"), v.clone()))
        .collect();
    let n = upsert_batches(&mut c, "images", points, 64).await.unwrap();
    assert_eq!(n, 300);

    let info = c
        .describe_collection(pb::DescribeCollectionRequest {
            name: "images".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(info.points, 300);
    assert!(
        info.disk_bytes > 300 * 16 * 4,
        "disk_bytes {}",
        info.disk_bytes
    );
    assert!(
        info.memory_bytes > 300 * 16 * 4,
        "memory_bytes {}",
        info.memory_bytes
    );

    // Search by vector: the point itself comes first at distance ~0, then
    // ascending distances that match cosine distance computed here.
    let r = c
        .search(search_req(
            "images",
            vec![vector_query(vecs[7].clone()), vector_query(vecs[8].clone())],
            5,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.results.len(), 2);
    let hits = &r.results[0].hits;
    assert_eq!(hits.len(), 5);
    assert_eq!(hits[0].id, "p7");
    assert!(hits[0].distance.abs() < 1e-5);
    assert_eq!(r.results[1].hits[0].id, "p8");
    for w in hits.windows(2) {
        assert!(w[0].distance <= w[1].distance);
    }
    for h in hits {
        let i: usize = h.id[1..].parse().unwrap();
        assert!((h.distance - cosine_distance(&vecs[7], &vecs[i])).abs() < 1e-4);
        assert_eq!(h.metadata.as_ref().unwrap().country, "DE");
    }

    // Search by id: "more like this" excludes the point itself.
    let r = c
        .search(search_req("images", vec![id_query("p7")], 5))
        .await
        .unwrap()
        .into_inner();
    let ids: Vec<&str> = r.results[0].hits.iter().map(|h| h.id.as_str()).collect();
    assert_eq!(ids.len(), 5);
    assert!(!ids.contains(&"p7"));
    let vector_ids: Vec<&str> = hits[1..].iter().map(|h| h.id.as_str()).collect();
    assert_eq!(
        ids[..4],
        vector_ids[..],
        "by-id = by-vector minus the point itself"
    );

    // Get: found ones only, with normalised vector and metadata.
    let g = c
        .get(pb::GetRequest {
            collection: "images".into(),
            ids: vec!["p1".into(), "nope".into(), "p2".into()],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        g.points.iter().map(|p| p.id.as_str()).collect::<Vec<_>>(),
        ["p1", "p2"]
    );
    assert!(cosine_distance(&g.points[0].vector, &vecs[1]) < 1e-5);
    assert_eq!(g.points[0].metadata.as_ref().unwrap().upload_id, "up-1");

    // Upsert of an existing id replaces it.
    let mut moved = point("p1", vecs[200].clone());
    moved.metadata.as_mut().unwrap().country = "FR".into();
    upsert_batches(&mut c, "images", vec![moved], 10)
        .await
        .unwrap();
    let g = c
        .get(pb::GetRequest {
            collection: "images".into(),
            ids: vec!["p1".into()],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(g.points[0].metadata.as_ref().unwrap().country, "FR");
    let r = c
        .search(search_req(
            "images",
            vec![vector_query(vecs[200].clone())],
            3,
        ))
        .await
        .unwrap()
        .into_inner();
    let top: Vec<&str> = r.results[0].hits.iter().map(|h| h.id.as_str()).collect();
    assert!(top.contains(&"p1") && top.contains(&"p200"), "{top:?}");
    let info = c
        .describe_collection(pb::DescribeCollectionRequest {
            name: "images".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(info.points, 300, "a replacement is not a new point");

    // Delete: unknown ids are not counted; deleted ids vanish from get and search.
    let d = c
        .delete(pb::DeleteRequest {
            collection: "images".into(),
            ids: vec!["p7".into(), "p8".into(), "ghost".into()],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(d.deleted, 2);
    let g = c
        .get(pb::GetRequest {
            collection: "images".into(),
            ids: vec!["p7".into()],
        })
        .await
        .unwrap()
        .into_inner();
    assert!(g.points.is_empty());
    let r = c
        .search(search_req(
            "images",
            vec![vector_query(vecs[7].clone())],
            20,
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(
        r.results[0]
            .hits
            .iter()
            .all(|h| h.id != "p7" && h.id != "p8")
    );
    let err = c
        .search(search_req("images", vec![id_query("p7")], 5))
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::NotFound);
    assert!(err.message().contains("p7"));

    // List, drop, list.
    c.create_collection(create_req("faces", 8, pb::Metric::L2))
        .await
        .unwrap();
    let l = c
        .list_collections(pb::ListCollectionsRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        l.collections
            .iter()
            .map(|c| c.name.as_str())
            .collect::<Vec<_>>(),
        ["faces", "images"]
    );
    c.drop_collection(pb::DropCollectionRequest {
        name: "images".into(),
    })
    .await
    .unwrap();
    let l = c
        .list_collections(pb::ListCollectionsRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(l.collections.len(), 1);
    assert!(!server.data_dir.join("collections/images").exists());
    let err = c
        .describe_collection(pb::DescribeCollectionRequest {
            name: "images".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::NotFound);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn l2_and_dot_distances_follow_the_design() {
    let server = TestServer::start().await;
    let mut c = server.client().await;
    c.create_collection(create_req("l2", 2, pb::Metric::L2))
        .await
        .unwrap();
    c.create_collection(create_req("dot", 2, pb::Metric::Dot))
        .await
        .unwrap();
    let pts = vec![
        point("o", vec![0.0, 0.0]),
        point("a", vec![3.0, 4.0]),
        point("b", vec![-1.0, -1.0]),
    ];
    upsert_batches(&mut c, "l2", pts.clone(), 10).await.unwrap();
    upsert_batches(&mut c, "dot", pts, 10).await.unwrap();
    let r = c
        .search(search_req("l2", vec![vector_query(vec![0.0, 0.0])], 3))
        .await
        .unwrap()
        .into_inner();
    let got: Vec<(String, f32)> = r.results[0]
        .hits
        .iter()
        .map(|h| (h.id.clone(), h.distance))
        .collect();
    assert_eq!(got[0], ("o".into(), 0.0));
    assert_eq!(got[1].0, "b");
    assert!((got[1].1 - 2f32.sqrt()).abs() < 1e-6);
    assert_eq!(got[2], ("a".into(), 5.0));
    // dot distance is -a·b: negative values are fine and lower is closer.
    let r = c
        .search(search_req("dot", vec![vector_query(vec![1.0, 1.0])], 3))
        .await
        .unwrap()
        .into_inner();
    let got: Vec<(String, f32)> = r.results[0]
        .hits
        .iter()
        .map(|h| (h.id.clone(), h.distance))
        .collect();
    assert_eq!(
        got,
        vec![("a".into(), -7.0), ("o".into(), 0.0), ("b".into(), 2.0)]
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_survives_a_restart() {
    let server = TestServer::start().await;
    let mut c = server.client().await;
    c.create_collection(create_req("images", 8, pb::Metric::Cosine))
        .await
        .unwrap();
    let vecs = clustered(100, 8, 4, 0.3, 2);
    let points: Vec<pb::Point> = vecs
        .iter()
        .enumerate()
        .map(|(i, v)| point(&format!("p{i}"), v.clone()))
        .collect();
    upsert_batches(&mut c, "images", points, 30).await.unwrap();
    c.delete(pb::DeleteRequest {
        collection: "images".into(),
        ids: vec!["p3".into()],
    })
    .await
    .unwrap();
    drop(c);
    let dir = server.data_dir.clone();
    let tmp = server.stop().await;

    let server = TestServer::start_in(&dir, Default::default()).await;
    let mut c = server.client().await;
    let info = c
        .describe_collection(pb::DescribeCollectionRequest {
            name: "images".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(info.points, 99);
    let g = c
        .get(pb::GetRequest {
            collection: "images".into(),
            ids: (0..100).map(|i| format!("p{i}")).collect(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(g.points.len(), 99);
    assert!(g.points.iter().all(|p| p.id != "p3"));
    let r = c
        .search(search_req("images", vec![vector_query(vecs[5].clone())], 1))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.results[0].hits[0].id, "p5");
    server.stop().await;
    drop(tmp);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn searches_run_while_upserts_stream_in() {
    let server = TestServer::start().await;
    let mut c = server.client().await;
    c.create_collection(create_req("images", 64, pb::Metric::Cosine))
        .await
        .unwrap();
    let vecs = clustered(4000, 64, 20, 0.4, 3);
    let first: Vec<pb::Point> = vecs[..200]
        .iter()
        .enumerate()
        .map(|(i, v)| point(&format!("p{i}"), v.clone()))
        .collect();
    upsert_batches(&mut c, "images", first, 200).await.unwrap();

    let rest: Vec<pb::Point> = vecs[200..]
        .iter()
        .enumerate()
        .map(|(i, v)| point(&format!("p{}", i + 200), v.clone()))
        .collect();
    let mut writer = server.client().await;
    let w = tokio::spawn(async move { upsert_batches(&mut writer, "images", rest, 100).await });
    let mut searches = 0;
    while !w.is_finished() {
        let r = c
            .search(search_req(
                "images",
                vec![vector_query(vecs[0].clone())],
                10,
            ))
            .await
            .unwrap()
            .into_inner();
        let hits = &r.results[0].hits;
        assert_eq!(hits[0].id, "p0");
        let mut ids: Vec<&str> = hits.iter().map(|h| h.id.as_str()).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), hits.len(), "no id twice in one result");
        searches += 1;
    }
    assert_eq!(w.await.unwrap().unwrap(), 3800);
    assert!(
        searches > 1,
        "searches should complete while the upsert stream runs ({searches})"
    );
    let info = c
        .describe_collection(pb::DescribeCollectionRequest {
            name: "images".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(info.points, 4000);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_is_served() {
    let server = TestServer::start().await;
    let channel = tonic::transport::Channel::from_shared(format!("http://{}", server.addr))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut h = tonic_health::pb::health_client::HealthClient::new(channel);
    let r = h
        .check(tonic_health::pb::HealthCheckRequest {
            service: "vidx.v1.VectorIndex".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        r.status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reflection_lists_the_service() {
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    let server = TestServer::start().await;
    let channel = tonic::transport::Channel::from_shared(format!("http://{}", server.addr))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut r = ServerReflectionClient::new(channel);
    let req = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut stream = r
        .server_reflection_info(tokio_stream::iter(vec![req]))
        .await
        .unwrap()
        .into_inner();
    let resp = stream.message().await.unwrap().unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = resp.message_response else {
        panic!("unexpected reply")
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    assert!(
        names.contains(&"vidx.v1.VectorIndex".to_string()),
        "{names:?}"
    );
    assert!(
        names.contains(&"grpc.health.v1.Health".to_string()),
        "{names:?}"
    );
    server.stop().await;
}
