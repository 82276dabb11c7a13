//! Recall of `Search` with default parameters against exact brute force, on
//! 20,000 clustered 512-d vectors (series-like: tight groups on the sphere).

use crate::support::*;
use vidx::pb;

const N: usize = 20_000;
const DIM: usize = 512;
const QUERIES: usize = 200;
const K: usize = 10;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recall_at_10_with_defaults_is_at_least_0_95() {
    // 200 clusters of ~100 members at cosine ~0.45 to their centre (~0.2 to
    // each other): neighbours are many and close together, as in big series.
    let all = clustered(N + QUERIES, DIM, 200, 2.0, 2024);
    let (data, queries) = all.split_at(N);
    let server = TestServer::start().await;
    let mut c = server.client().await;
    c.create_collection(create_req("images", DIM as u32, pb::Metric::Cosine))
        .await
        .unwrap();
    let points: Vec<pb::Point> = data
        .iter()
        .enumerate()
        .map(|(i, v)| point(&i.to_string(), v.clone()))
        .collect();
    let t = std::time::Instant::now();
    assert_eq!(
        upsert_batches(&mut c, "images", points, 2000)
            .await
            .unwrap(),
        N as u64
    );
    let build = t.elapsed();

    let truth: Vec<Vec<usize>> = queries
        .iter()
        .map(|q| {
            let items = data.iter().enumerate().map(|(i, v)| (i, v.as_slice()));
            exact_top_k(q, items, K)
                .into_iter()
                .map(|(_, i)| i)
                .collect()
        })
        .collect();
    // ef = 0 is the default: the server chooses. The smaller ef values are
    // only printed, to show the margin the default leaves.
    let mut default_recall = 0.0;
    for ef in [10, 20, 40, 0] {
        let mut req = search_req(
            "images",
            queries.iter().map(|q| vector_query(q.clone())).collect(),
            K as u32,
        );
        req.ef = ef;
        let resp = c.search(req).await.unwrap().into_inner();
        assert_eq!(resp.results.len(), QUERIES);
        let mut found = 0;
        for (r, t) in resp.results.iter().zip(&truth) {
            assert_eq!(r.hits.len(), K);
            found += r
                .hits
                .iter()
                .filter(|h| t.contains(&h.id.parse::<usize>().unwrap()))
                .count();
        }
        let recall = found as f64 / (QUERIES * K) as f64;
        println!(
            "ef={ef:<4} recall@10 = {recall:.4} over {QUERIES} queries on {N} x {DIM} (build {build:.1?})"
        );
        default_recall = recall;
    }
    assert!(
        default_recall >= 0.95,
        "recall@10 with defaults {default_recall:.4} < 0.95"
    );
    server.stop().await;
}
