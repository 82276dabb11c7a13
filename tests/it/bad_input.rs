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
    let mut r = create_req("ok", 4, pb::Metric::L2);
    r.vector_storage = 7;
    assert_status(
        c.create_collection(r).await.unwrap_err(),
        Code::InvalidArgument,
        &["vector_storage is 7", "VECTOR_STORAGE_F16"],
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

/// Issue 11, item 4: one name rule for every collection name of every RPC,
/// checked before any path is built from it; `LinkUpload` once read
/// `<data>/series/../../x/secret.json` and echoed it in its error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn path_like_collection_names_are_refused_by_every_rpc() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(tmp.path().join("x")).unwrap();
    let secret = r#"{"format":"TOPSECRET","image_collection":"TOPSECRET","face_collection":"",
        "settings":{"image_threshold":0.3,"face_threshold":0.6,"near_duplicate_threshold":0.05,
        "k":32,"ef":128,"min_shared_neighbours":1,"single_linkage":false},"series":[]}"#;
    std::fs::write(tmp.path().join("x/secret.json"), secret).unwrap();
    // As after a first LinkSeries: `series/../..` resolves.
    std::fs::create_dir_all(tmp.path().join("data/series")).unwrap();
    let server = TestServer::start_in(&tmp.path().join("data"), ServerOptions::default()).await;
    let mut c = server.client().await;
    c.create_collection(create_req("images", 4, pb::Metric::Cosine))
        .await
        .unwrap();
    let bad = "../../x/secret";
    let check = |what: &str, field: &str, r: Result<(), tonic::Status>| {
        let e = r.expect_err(what);
        assert_eq!(e.code(), Code::InvalidArgument, "{what}: {e:?}");
        assert!(e.message().contains(field), "{what}: {e:?}");
        assert!(
            !e.message().contains("TOPSECRET"),
            "{what} echoed a file: {e:?}"
        );
    };
    let up = |image: &str, face: &str| pb::LinkUploadRequest {
        image_collection: image.into(),
        face_collection: face.into(),
        upload_id: "u1".into(),
    };
    check(
        "LinkUpload image",
        "image_collection",
        c.link_upload(up(bad, "")).await.map(drop),
    );
    check(
        "LinkUpload face",
        "face_collection",
        c.link_upload(up("images", bad)).await.map(drop),
    );
    let link = |image: &str, face: &str| pb::LinkSeriesRequest {
        image_collection: image.into(),
        face_collection: face.into(),
        ..Default::default()
    };
    check(
        "LinkSeries image",
        "image_collection",
        c.link_series(link(bad, "")).await.map(drop),
    );
    check(
        "LinkSeries face",
        "face_collection",
        c.link_series(link("images", bad)).await.map(drop),
    );
    let tri = |image: &str, face: &str| pb::TriageRequest {
        image_collection: image.into(),
        face_collection: face.into(),
        ..Default::default()
    };
    check(
        "Triage image",
        "image_collection",
        c.triage(tokio_stream::iter(vec![tri(bad, "")]))
            .await
            .map(drop),
    );
    check(
        "Triage face",
        "face_collection",
        c.triage(tokio_stream::iter(vec![tri("images", bad)]))
            .await
            .map(drop),
    );
    check(
        "CreateCollection",
        "name",
        c.create_collection(create_req(bad, 4, pb::Metric::Cosine))
            .await
            .map(drop),
    );
    check(
        "DescribeCollection",
        "name",
        c.describe_collection(pb::DescribeCollectionRequest { name: bad.into() })
            .await
            .map(drop),
    );
    check(
        "DropCollection",
        "name",
        c.drop_collection(pb::DropCollectionRequest { name: bad.into() })
            .await
            .map(drop),
    );
    check(
        "Upsert",
        "collection",
        upsert_batches(&mut c, bad, vec![point("p", vec![1.0; 4])], 1)
            .await
            .map(drop),
    );
    check(
        "Search",
        "collection",
        c.search(search_req(bad, vec![vector_query(vec![1.0; 4])], 1))
            .await
            .map(drop),
    );
    check(
        "Get",
        "collection",
        c.get(pb::GetRequest {
            collection: bad.into(),
            ids: vec!["p".into()],
        })
        .await
        .map(drop),
    );
    check(
        "Delete",
        "collection",
        c.delete(pb::DeleteRequest {
            collection: bad.into(),
            ids: vec!["p".into()],
        })
        .await
        .map(drop),
    );
    check(
        "Flush",
        "collection",
        c.flush(pb::FlushRequest {
            collection: bad.into(),
        })
        .await
        .map(drop),
    );
    series_rpcs_refuse(&mut c, bad, &check).await;
    check(
        "UpdateMetadata",
        "collection",
        c.update_metadata(pb::UpdateMetadataRequest {
            collection: bad.into(),
            ids: vec!["p".into()],
            set: Some(pb::MetadataUpdate {
                victim_identified: Some(true),
                ..Default::default()
            }),
        })
        .await
        .map(drop),
    );
    check(
        "CreateSnapshot",
        "collection",
        c.create_snapshot(pb::CreateSnapshotRequest {
            collection: bad.into(),
        })
        .await
        .map(drop),
    );
    check(
        "CreateToken",
        "collections[0]",
        c.create_token(pb::CreateTokenRequest {
            agency: "a".into(),
            role: "reader".into(),
            collections: vec![bad.into()],
            expires_in: 0,
        })
        .await
        .map(drop),
    );
    server.stop().await;
}

/// The series RPCs (main's, after issue 11 was filed) under the same rule:
/// their names become `<data>/series/<name>.json` and `.decisions.log`.
async fn series_rpcs_refuse(
    c: &mut Client,
    bad: &str,
    check: &impl Fn(&str, &str, Result<(), tonic::Status>),
) {
    let f = "image_collection";
    check(
        "ListSeries",
        f,
        c.list_series(pb::ListSeriesRequest {
            image_collection: bad.into(),
            ..Default::default()
        })
        .await
        .map(drop),
    );
    check(
        "GetSeries",
        f,
        c.get_series(pb::GetSeriesRequest {
            image_collection: bad.into(),
            series_id: "s1".into(),
        })
        .await
        .map(drop),
    );
    check(
        "SeriesOfMedia",
        f,
        c.series_of_media(pb::SeriesOfMediaRequest {
            image_collection: bad.into(),
            media_ids: vec!["m".into()],
        })
        .await
        .map(drop),
    );
    check(
        "ReviewSeries",
        f,
        c.review_series(pb::ReviewSeriesRequest {
            image_collection: bad.into(),
            decisions: vec![pb::Decision::default()],
            reviewer: "r".into(),
            note: String::new(),
        })
        .await
        .map(drop),
    );
}

/// Issue 11, item 9: a response over the message limit is
/// RESOURCE_EXHAUSTED with a hint to ask for less, not OUT_OF_RANGE.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_response_is_resource_exhausted_with_a_hint() {
    let server = TestServer::start_with(ServerOptions {
        max_message_bytes: 64 * 1024,
        ..Default::default()
    })
    .await;
    let mut c = server.client().await;
    c.create_collection(create_req("images", 512, pb::Metric::L2))
        .await
        .unwrap();
    let ids: Vec<String> = (0..60).map(|i| format!("p{i}")).collect();
    let pts = ids.iter().map(|id| point(id, vec![0.5; 512])).collect();
    upsert_batches(&mut c, "images", pts, 10).await.unwrap();
    // 60 vectors of 2 KiB each: over 64 KiB.
    let e = c
        .get(pb::GetRequest {
            collection: "images".into(),
            ids: ids.clone(),
        })
        .await
        .unwrap_err();
    assert_status(e, Code::ResourceExhausted, &["limit", "fewer"]);
    let e = c
        .search(search_req("images", vec![vector_query(vec![0.5; 512])], 60))
        .await;
    // Hits carry no vectors: 60 of them fit.
    assert_eq!(e.unwrap().into_inner().results[0].hits.len(), 60);
    // Half the ids fit.
    let r = c
        .get(pb::GetRequest {
            collection: "images".into(),
            ids: ids[..20].to_vec(),
        })
        .await
        .unwrap();
    assert_eq!(r.into_inner().points.len(), 20);
    server.stop().await;
}

/// Issue 11, item 9: bytes that are not a protobuf message are the
/// client's error: INVALID_ARGUMENT, not INTERNAL; unary and streaming.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_message_is_invalid_argument() {
    let (s, mut c) = setup().await;
    let url = format!("http://{}", s.addr);
    // Field 1 (a string) whose length runs past the end.
    let garbage = vec![0x0a, 0x7f, b'x'];
    for method in ["Search", "Get", "DescribeCollection", "Flush"] {
        let e = raw::unary(&url, method, garbage.clone()).await.unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{method}: {e:?}");
        assert!(e.message().contains("decode"), "{method}: {e:?}");
    }
    for method in ["Upsert", "Triage"] {
        let e = raw::streaming(&url, method, vec![garbage.clone()])
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{method}: {e:?}");
    }
    assert_eq!(points_in(&mut c).await, 1);
    s.stop().await;
}
