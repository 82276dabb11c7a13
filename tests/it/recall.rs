//! Recall of `Search` with default parameters against exact brute force, on
//! 20,000 clustered 512-d vectors (series-like: tight groups on the sphere):
//! the mutable segment (f32), and sealed segments searched over SQ8 and SQ4
//! codes with exact rescoring, and sealed segments that store f16 vectors
//! (against the same data sealed as f32). Also: quantized recall does not
//! depend on the order of inserts when outliers come first or last.

use crate::support::*;
use vidx::pb;

const N: usize = 20_000;
const DIM: usize = 512;
const QUERIES: usize = 200;
const K: usize = 10;

/// Recall@K of a search answer against exact top-K ids; also checks that
/// every returned distance is the exact one of the stored vector (`data`:
/// the vectors as stored, f16-rounded in an f16 collection).
fn score(
    resp: &pb::SearchResponse,
    truth: &[Vec<usize>],
    data: &[Vec<f32>],
    queries: &[Vec<f32>],
) -> f64 {
    assert_eq!(resp.results.len(), truth.len());
    let mut found = 0;
    for ((r, t), q) in resp.results.iter().zip(truth).zip(queries) {
        assert_eq!(r.hits.len(), K);
        for h in &r.hits {
            let i: usize = h.id.parse().unwrap();
            let exact = 1.0 - q.iter().zip(&data[i]).map(|(a, b)| a * b).sum::<f32>();
            assert!(
                (h.distance - exact.max(0.0)).abs() < 1e-4,
                "hit {i}: distance {} is not the exact {exact}",
                h.distance
            );
            found += t.contains(&i) as usize;
        }
    }
    found as f64 / (truth.len() * K) as f64
}

fn truth_of(data: &[Vec<f32>], queries: &[Vec<f32>]) -> Vec<Vec<usize>> {
    queries
        .iter()
        .map(|q| {
            let items = data.iter().enumerate().map(|(i, v)| (i, v.as_slice()));
            exact_top_k(q, items, K)
                .into_iter()
                .map(|(_, i)| i)
                .collect()
        })
        .collect()
}

/// Loads `data` (id = row) into a new collection with `quant`, sealing it
/// with Flush unless it stays f32; returns recall at ef 10, 20, 40 and the
/// server default (printed; the last is returned).
async fn default_ef_recall(quant: pb::Quantization, order: &[usize], name: &str) -> f64 {
    let all = clustered(N + QUERIES, DIM, 200, 2.0, 2024);
    let (data, queries) = all.split_at(N);
    recall_of(data, queries, quant, order, name).await
}

async fn recall_of(
    data: &[Vec<f32>],
    queries: &[Vec<f32>],
    quant: pb::Quantization,
    order: &[usize],
    name: &str,
) -> f64 {
    let req = create_quantized(name, data[0].len() as u32, pb::Metric::Cosine, quant);
    let seal = quant != pb::Quantization::None;
    recall_with(data, queries, req, seal, order).await
}

/// [`recall_of`] for the collection `req` creates, sealed with Flush if
/// `seal` (always with f16 storage: the mutable segment is f32).
async fn recall_with(
    data: &[Vec<f32>],
    queries: &[Vec<f32>],
    req: pb::CreateCollectionRequest,
    seal: bool,
    order: &[usize],
) -> f64 {
    let server = TestServer::start().await;
    let mut c = server.client().await;
    let dim = data[0].len();
    let (name, quant) = (req.name.clone(), req.quantization());
    let f16 = req.vector_storage() == pb::VectorStorage::F16;
    let seal = seal || f16;
    let name = name.as_str();
    c.create_collection(req.clone()).await.unwrap();
    let info = c
        .describe_collection(pb::DescribeCollectionRequest { name: name.into() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(info.quantization, quant as i32, "described as created");
    assert_eq!(
        info.vector_storage, req.vector_storage,
        "described as created"
    );
    let points: Vec<pb::Point> = order
        .iter()
        .map(|&i| point(&i.to_string(), data[i].clone()))
        .collect();
    let t = std::time::Instant::now();
    upsert_batches(&mut c, name, points, 2000).await.unwrap();
    if seal {
        c.flush(pb::FlushRequest {
            collection: name.into(),
        })
        .await
        .unwrap();
    }
    let build = t.elapsed();
    let truth = truth_of(data, queries);
    // What the segment holds: f16-rounded vectors in an f16 collection.
    let stored: Vec<Vec<f32>> = if f16 {
        data.iter()
            .map(|v| {
                let mut bits = vec![0u16; v.len()];
                vidx::index::f16vec::encode(v, &mut bits);
                vidx::index::f16vec::decode(&bits)
            })
            .collect()
    } else {
        data.to_vec()
    };
    // ef = 0 is the default: the server chooses. The smaller ef values are
    // only printed, to show the margin the default leaves.
    let mut recall = 0.0;
    for ef in [10, 20, 40, 0] {
        let mut req = search_req(
            name,
            queries.iter().map(|q| vector_query(q.clone())).collect(),
            K as u32,
        );
        req.ef = ef;
        let resp = c.search(req).await.unwrap().into_inner();
        recall = score(&resp, &truth, &stored, queries);
        println!(
            "{quant:?} f16 {f16} sealed {seal} ef={ef:<4} recall@10 = {recall:.4} over {} queries on {} x {dim} (build {build:.1?})",
            queries.len(),
            data.len()
        );
    }
    server.stop().await;
    recall
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recall_at_10_with_defaults_is_at_least_0_95() {
    let order: Vec<usize> = (0..N).collect();
    let r = default_ef_recall(pb::Quantization::None, &order, "images").await;
    assert!(r >= 0.95, "recall@10 with defaults {r:.4} < 0.95");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sq8_recall_at_10_with_defaults_is_at_least_0_95() {
    let order: Vec<usize> = (0..N).collect();
    let r = default_ef_recall(pb::Quantization::Sq8, &order, "images").await;
    assert!(r >= 0.95, "SQ8 recall@10 with defaults {r:.4} < 0.95");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sq4_recall_at_10_with_defaults_is_at_least_0_95() {
    let order: Vec<usize> = (0..N).collect();
    let r = default_ef_recall(pb::Quantization::Sq4, &order, "images").await;
    assert!(r >= 0.95, "SQ4 recall@10 with defaults {r:.4} < 0.95");
}

/// f16 storage (alone, and under SQ8 codes, where it is what rescoring
/// reads) keeps recall at the default ef within 0.01 of the same data
/// sealed as f32, and at least 0.95.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn f16_storage_recall_at_10_with_defaults_matches_f32() {
    let all = clustered(N + QUERIES, DIM, 200, 2.0, 2024);
    let (data, queries) = all.split_at(N);
    let order: Vec<usize> = (0..N).collect();
    let f32_sealed = create_quantized(
        "f32",
        DIM as u32,
        pb::Metric::Cosine,
        pb::Quantization::None,
    );
    let base = recall_with(data, queries, f32_sealed, true, &order).await;
    for quant in [pb::Quantization::None, pb::Quantization::Sq8] {
        let req = pb::CreateCollectionRequest {
            vector_storage: pb::VectorStorage::F16 as i32,
            ..create_quantized("f16", DIM as u32, pb::Metric::Cosine, quant)
        };
        let r = recall_with(data, queries, req, true, &order).await;
        assert!(
            r >= 0.95 && r >= base - 0.01,
            "{quant:?} f16: recall@10 with defaults {r:.4}; sealed f32 {base:.4}"
        );
    }
}

/// Outliers (1% of the points, far outside everyone else's range in some
/// dimensions) inserted first or last: a range trained on the first inserts
/// would clamp the later ones. Codes are trained at seal on all points, so
/// both orders give the same high recall, for ordinary queries and for
/// queries near the outliers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quantized_recall_does_not_depend_on_insert_order() {
    let (n, dim) = (4000, 128);
    let mut data = clustered(n + 100, dim, 40, 1.0, 77);
    let queries_plain: Vec<Vec<f32>> = data.split_off(n);
    // Every 100th point becomes an outlier: a few coordinates 20x larger
    // than anyone's, then renormalised (cosine).
    let outliers: Vec<usize> = (0..n).step_by(100).collect();
    for &i in &outliers {
        let mut v = data[i].clone();
        for d in (i % 7..dim).step_by(29) {
            v[d] = if d % 2 == 0 { 3.0 } else { -3.0 };
        }
        data[i] = unit(v);
    }
    let mut queries = queries_plain;
    queries.extend(outliers.iter().take(20).map(|&i| {
        let mut q = data[i].clone();
        q[0] += 0.05;
        unit(q)
    }));
    let first: Vec<usize> = outliers
        .iter()
        .copied()
        .chain((0..n).filter(|i| i % 100 != 0))
        .collect();
    let last: Vec<usize> = (0..n)
        .filter(|i| i % 100 != 0)
        .chain(outliers.iter().copied())
        .collect();
    for quant in [pb::Quantization::Sq8, pb::Quantization::Sq4] {
        let a = recall_of(&data, &queries, quant, &first, "first").await;
        let b = recall_of(&data, &queries, quant, &last, "last").await;
        assert!(
            a >= 0.95 && b >= 0.95,
            "{quant:?}: outliers first {a:.4}, last {b:.4}"
        );
        assert!(
            (a - b).abs() <= 0.02,
            "{quant:?}: outliers first {a:.4}, last {b:.4}"
        );
    }
}
