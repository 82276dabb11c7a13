//! One test per bad-input class: each gets the exact gRPC status code and a
//! message naming the field and the bad value; nothing is half-applied and
//! the server keeps serving.

use crate::support::*;
use tonic::Code;
use vidx::api::server::ServerOptions;
use vidx::pb;

async fn setup() -> (TestServer, Client) {
    let server = TestServer::start().await;
    let mut c = server.client().await;
    c.create_collection(create_req("images", 4, pb::Metric::Cosine))
        .await
        .unwrap();
    upsert_batches(
        &mut c,
        "images",
        vec![point("keep", vec![1.0, 0.0, 0.0, 0.0])],
        10,
    )
    .await
    .unwrap();
    (server, c)
}

async fn points_in(c: &mut Client) -> u64 {
    c.describe_collection(pb::DescribeCollectionRequest {
        name: "images".into(),
    })
    .await
    .unwrap()
    .into_inner()
    .points
}

fn assert_status(r: tonic::Status, code: Code, needles: &[&str]) {
    assert_eq!(r.code(), code, "message: {}", r.message());
    for n in needles {
        assert!(
            r.message().contains(n),
            "{:?} should mention {n:?}",
            r.message()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_dimension() {
    let (s, mut c) = setup().await;
    let e = upsert_batches(&mut c, "images", vec![point("a", vec![1.0, 2.0, 3.0])], 10)
        .await
        .unwrap_err();
    assert_status(
        e,
        Code::InvalidArgument,
        &["points[0]", "\"a\"", "3 values", "dimension is 4"],
    );
    let e = c
        .search(search_req("images", vec![vector_query(vec![1.0; 5])], 3))
        .await
        .unwrap_err();
    assert_status(e, Code::InvalidArgument, &["queries[0].vector", "5 values"]);
    assert_eq!(points_in(&mut c).await, 1);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nan_and_infinity() {
    let (s, mut c) = setup().await;
    let e = upsert_batches(
        &mut c,
        "images",
        vec![point("a", vec![1.0, f32::NAN, 0.0, 0.0])],
        10,
    )
    .await
    .unwrap_err();
    assert_status(e, Code::InvalidArgument, &["points[0]", "[1] is NaN"]);
    let e = upsert_batches(
        &mut c,
        "images",
        vec![point("a", vec![1.0, 0.0, f32::INFINITY, 0.0])],
        10,
    )
    .await
    .unwrap_err();
    assert_status(e, Code::InvalidArgument, &["[2] is inf"]);
    let e = c
        .search(search_req(
            "images",
            vec![vector_query(vec![f32::NEG_INFINITY, 0.0, 0.0, 0.0])],
            3,
        ))
        .await
        .unwrap_err();
    assert_status(e, Code::InvalidArgument, &["queries[0]", "-inf"]);
    assert_eq!(points_in(&mut c).await, 1);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_id() {
    let (s, mut c) = setup().await;
    let e = upsert_batches(&mut c, "images", vec![point("", vec![1.0; 4])], 10)
        .await
        .unwrap_err();
    assert_status(e, Code::InvalidArgument, &["points[0].id", "empty"]);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_id() {
    let (s, mut c) = setup().await;
    let long = "x".repeat(300);
    let e = upsert_batches(&mut c, "images", vec![point(&long, vec![1.0; 4])], 10)
        .await
        .unwrap_err();
    assert_status(
        e,
        Code::InvalidArgument,
        &["points[0].id", "300 bytes", "at most 256"],
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zero_vector_under_cosine() {
    let (s, mut c) = setup().await;
    let e = upsert_batches(&mut c, "images", vec![point("z", vec![0.0; 4])], 10)
        .await
        .unwrap_err();
    assert_status(
        e,
        Code::InvalidArgument,
        &["points[0]", "\"z\"", "zero vector"],
    );
    let e = c
        .search(search_req("images", vec![vector_query(vec![0.0; 4])], 3))
        .await
        .unwrap_err();
    assert_status(e, Code::InvalidArgument, &["queries[0]", "zero vector"]);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn k_out_of_range() {
    let (s, mut c) = setup().await;
    for k in [0, 1001] {
        let e = c
            .search(search_req("images", vec![vector_query(vec![1.0; 4])], k))
            .await
            .unwrap_err();
        assert_status(
            e,
            Code::InvalidArgument,
            &[&format!("k is {k}"), "between 1 and 1000"],
        );
    }
    // The bounds themselves are fine.
    for k in [1, 1000] {
        c.search(search_req("images", vec![vector_query(vec![1.0; 4])], k))
            .await
            .unwrap();
    }
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_collection() {
    let (s, mut c) = setup().await;
    let e = c
        .search(search_req("nope", vec![vector_query(vec![1.0; 4])], 3))
        .await
        .unwrap_err();
    assert_status(e, Code::NotFound, &["\"nope\""]);
    let e = upsert_batches(&mut c, "nope", vec![point("a", vec![1.0; 4])], 10)
        .await
        .unwrap_err();
    assert_status(e, Code::NotFound, &["\"nope\""]);
    let e = c
        .get(pb::GetRequest {
            collection: "nope".into(),
            ids: vec!["a".into()],
        })
        .await
        .unwrap_err();
    assert_status(e, Code::NotFound, &["\"nope\""]);
    let e = c
        .delete(pb::DeleteRequest {
            collection: "nope".into(),
            ids: vec!["a".into()],
        })
        .await
        .unwrap_err();
    assert_status(e, Code::NotFound, &["\"nope\""]);
    let e = c
        .drop_collection(pb::DropCollectionRequest {
            name: "nope".into(),
        })
        .await
        .unwrap_err();
    assert_status(e, Code::NotFound, &["\"nope\""]);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_create() {
    let (s, mut c) = setup().await;
    let e = c
        .create_collection(create_req("images", 4, pb::Metric::Cosine))
        .await
        .unwrap_err();
    assert_status(e, Code::AlreadyExists, &["\"images\""]);
    assert_eq!(
        points_in(&mut c).await,
        1,
        "the existing collection is untouched"
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_name_and_create_parameters() {
    let (s, mut c) = setup().await;
    for bad in ["", "Images", "../etc", "a b", &"x".repeat(65)] {
        let e = c
            .create_collection(create_req(bad, 4, pb::Metric::Cosine))
            .await
            .unwrap_err();
        assert_status(e, Code::InvalidArgument, &["name"]);
    }
    let e = c
        .create_collection(create_req("ok", 0, pb::Metric::Cosine))
        .await
        .unwrap_err();
    assert_status(e, Code::InvalidArgument, &["dim is 0"]);
    let e = c
        .create_collection(create_req("ok", 4, pb::Metric::Unspecified))
        .await
        .unwrap_err();
    assert_status(e, Code::InvalidArgument, &["metric is METRIC_UNSPECIFIED"]);
    let mut r = create_req("ok", 4, pb::Metric::L2);
    r.kind = 0;
    assert_status(
        c.create_collection(r).await.unwrap_err(),
        Code::InvalidArgument,
        &["kind is KIND_UNSPECIFIED"],
    );
    let mut r = create_req("ok", 4, pb::Metric::L2);
    r.hnsw = Some(pb::HnswConfig {
        m: 1000,
        ef_construction: 0,
    });
    assert_status(
        c.create_collection(r).await.unwrap_err(),
        Code::InvalidArgument,
        &["hnsw.m is 1000"],
    );
    let mut r = create_req("ok", 4, pb::Metric::L2);
    r.quantization = 42;
    assert_status(
        c.create_collection(r).await.unwrap_err(),
        Code::InvalidArgument,
        &["quantization is 42", "SQ8"],
    );
    let e = c
        .search(search_req("Bad Name", vec![vector_query(vec![1.0; 4])], 3))
        .await
        .unwrap_err();
    assert_status(e, Code::InvalidArgument, &["collection", "\"Bad Name\""]);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_with_one_bad_point_is_rejected_whole() {
    let (s, mut c) = setup().await;
    let mut batch: Vec<pb::Point> = (0..50)
        .map(|i| point(&format!("b{i}"), vec![1.0, i as f32, 0.5, 0.0]))
        .collect();
    batch[37].vector[2] = f32::NAN;
    let good: Vec<pb::Point> = (0..20)
        .map(|i| point(&format!("g{i}"), vec![0.0, 1.0, i as f32, 0.0]))
        .collect();
    let reqs = vec![
        pb::UpsertRequest {
            collection: "images".into(),
            points: good,
        },
        pb::UpsertRequest {
            collection: "images".into(),
            points: batch,
        },
    ];
    let e = c.upsert(tokio_stream::iter(reqs)).await.unwrap_err();
    assert_status(
        e,
        Code::InvalidArgument,
        &[
            "batch 1",
            "20 points of earlier batches were applied",
            "points[37]",
            "\"b37\"",
            "NaN",
        ],
    );
    // Earlier batch applied, nothing of the bad batch.
    assert_eq!(points_in(&mut c).await, 21);
    let g = c
        .get(pb::GetRequest {
            collection: "images".into(),
            ids: (0..50).map(|i| format!("b{i}")).collect(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(
        g.points.is_empty(),
        "nothing of the bad batch may be stored"
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_metadata_and_empty_query() {
    let (s, mut c) = setup().await;
    let mut p = point("a", vec![1.0; 4]);
    p.metadata.as_mut().unwrap().country = "Germany".into();
    let e = upsert_batches(&mut c, "images", vec![p], 10)
        .await
        .unwrap_err();
    assert_status(
        e,
        Code::InvalidArgument,
        &["metadata.country", "\"Germany\"", "ISO 3166-1 alpha-2"],
    );
    let e = c.search(search_req("images", vec![], 3)).await.unwrap_err();
    assert_status(e, Code::InvalidArgument, &["queries is empty"]);
    let e = c
        .search(search_req("images", vec![pb::Query { query: None }], 3))
        .await
        .unwrap_err();
    assert_status(e, Code::InvalidArgument, &["queries[0] is empty"]);
    let mut r = search_req("images", vec![vector_query(vec![1.0; 4])], 3);
    r.ef = 1_000_000;
    assert_status(
        c.search(r).await.unwrap_err(),
        Code::InvalidArgument,
        &["ef is 1000000"],
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_message_is_resource_exhausted() {
    let server = TestServer::start_with(ServerOptions {
        max_message_bytes: 64 * 1024,
        ..Default::default()
    })
    .await;
    let mut c = server.client().await;
    c.create_collection(create_req("images", 512, pb::Metric::Cosine))
        .await
        .unwrap();
    let big: Vec<pb::Point> = (0..100)
        .map(|i| point(&format!("p{i}"), vec![1.0; 512]))
        .collect();
    // Streaming RPC: one message over the limit.
    let e = upsert_batches(&mut c, "images", big.clone(), 100)
        .await
        .unwrap_err();
    assert_status(e, Code::ResourceExhausted, &["too large", "limit"]);
    // Unary RPC: rejected before any handler runs.
    let queries = (0..100).map(|_| vector_query(vec![1.0; 512])).collect();
    let e = c
        .search(search_req("images", queries, 3))
        .await
        .unwrap_err();
    assert_status(e, Code::ResourceExhausted, &["too large"]);
    // Smaller batches of the same points go through.
    assert_eq!(
        upsert_batches(&mut c, "images", big, 10).await.unwrap(),
        100
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_limit_takes_a_2000_point_batch_of_512_d() {
    let server = TestServer::start().await;
    let mut c = server.client().await;
    c.create_collection(create_req("images", 512, pb::Metric::Cosine))
        .await
        .unwrap();
    let vecs = clustered(2000, 512, 20, 0.5, 9);
    let pts: Vec<pb::Point> = vecs
        .into_iter()
        .enumerate()
        .map(|(i, v)| point(&format!("media-{i:08}"), v))
        .collect();
    assert_eq!(
        upsert_batches(&mut c, "images", pts, 2000).await.unwrap(),
        2000
    );
    server.stop().await;
}
