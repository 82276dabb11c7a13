//! Investigative filters end to end: every hit satisfies the filter (random
//! filters over random metadata), recall against exact filtered brute force
//! at 50% / 10% / 1% / 0.1% / empty selectivity on the mutable and on the
//! sealed segment, cross-country "more like this", faces grouped by media,
//! and bad filters refused with the field named.

use crate::support::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tonic::Code;
use vidx::collection::StorageOptions;
use vidx::index::filter::Filter;
use vidx::pb;

const N: usize = 30_000;
const DIM: usize = 16;
const COUNTRIES: [&str; 6] = ["DE", "FR", "NL", "BR", "US", "AU"];

/// Metadata with planted selectivity tags: "p50" on 50% of points, "p10" on
/// 10%, "p1" on 1%, "p01" on 0.1% (independent of the vectors).
fn meta_for(i: usize, rng: &mut ChaCha8Rng) -> pb::Metadata {
    let mut tags = Vec::new();
    if i.is_multiple_of(2) {
        tags.push("p50".to_string());
    }
    if i % 10 == 3 {
        tags.push("p10".to_string());
    }
    if i % 100 == 7 {
        tags.push("p1".to_string());
    }
    if i % 1000 == 11 {
        tags.push("p01".to_string());
    }
    if rng.random_bool(0.3) {
        tags.push(["indoor", "outdoor", "bedroom"][rng.random_range(0..3)].to_string());
    }
    pb::Metadata {
        media_id: format!("media-{}", i / 2),
        upload_id: format!("up-{}", rng.random_range(0..40)),
        case_id: format!("case-{}", rng.random_range(0..12)),
        country: COUNTRIES[rng.random_range(0..6)].into(),
        agency: format!("agency-{}", rng.random_range(0..5)),
        captured_at: rng.random_range(1_300_000_000..1_700_000_000),
        uploaded_at: rng.random_range(1_500_000_000..1_750_000_000),
        series_label: String::new(),
        victim_identified: rng.random_bool(0.25),
        tags,
    }
}

fn random_filter(rng: &mut ChaCha8Rng) -> pb::Filter {
    let mut f = pb::Filter::default();
    let some = |rng: &mut ChaCha8Rng, p: f64| rng.random_bool(p);
    if some(rng, 0.4) {
        f.countries_any = COUNTRIES
            .iter()
            .filter(|_| rng.random_bool(0.4))
            .map(|s| s.to_string())
            .collect();
    }
    if some(rng, 0.3) {
        f.countries_none = vec![COUNTRIES[rng.random_range(0..6)].to_string()];
    }
    if some(rng, 0.2) {
        f.agencies_any = vec![format!("agency-{}", rng.random_range(0..5))];
    }
    if some(rng, 0.2) {
        f.case_ids_any = (0..3)
            .map(|_| format!("case-{}", rng.random_range(0..12)))
            .collect();
    }
    if some(rng, 0.2) {
        f.upload_ids_none = (0..5)
            .map(|_| format!("up-{}", rng.random_range(0..40)))
            .collect();
    }
    if some(rng, 0.2) {
        f.victim_identified = Some(rng.random_bool(0.5));
    }
    if some(rng, 0.3) {
        f.captured_after = Some(rng.random_range(1_300_000_000..1_500_000_000));
    }
    if some(rng, 0.2) {
        f.uploaded_before = Some(rng.random_range(1_600_000_000..1_750_000_000));
    }
    if some(rng, 0.2) {
        f.tags_any = vec!["indoor".into(), "p10".into()];
    }
    if some(rng, 0.1) {
        f.tags_all = vec!["p50".into()];
    }
    f
}

struct Model {
    ids: Vec<String>,
    vecs: Vec<Vec<f32>>,
    metas: Vec<pb::Metadata>,
}

impl Model {
    fn exact(&self, q: &[f32], f: &Filter, k: usize) -> Vec<String> {
        let passing = (0..self.ids.len())
            .filter(|&i| f.matches(&self.metas[i]))
            .map(|i| (i, self.vecs[i].as_slice()));
        exact_top_k(q, passing, k)
            .into_iter()
            .map(|(_, i)| self.ids[i].clone())
            .collect()
    }
}

async fn load(c: &mut Client) -> Model {
    let mut rng = ChaCha8Rng::seed_from_u64(77);
    let vecs = clustered(N, DIM, 300, 0.9, 8);
    let metas: Vec<pb::Metadata> = (0..N).map(|i| meta_for(i, &mut rng)).collect();
    let ids: Vec<String> = (0..N).map(|i| format!("p{i}")).collect();
    c.create_collection(create_req("images", DIM as u32, pb::Metric::Cosine))
        .await
        .unwrap();
    let points = (0..N)
        .map(|i| pb::Point {
            id: ids[i].clone(),
            vector: vecs[i].clone(),
            metadata: Some(metas[i].clone()),
            ..Default::default()
        })
        .collect();
    upsert_batches(c, "images", points, 3000).await.unwrap();
    Model {
        ids,
        vecs: vecs.into_iter().map(unit).collect(),
        metas,
    }
}

async fn filtered(c: &mut Client, qs: &[Vec<f32>], f: &pb::Filter, k: u32) -> Vec<pb::QueryResult> {
    let mut req = search_req(
        "images",
        qs.iter().map(|q| vector_query(q.clone())).collect(),
        k,
    );
    req.filter = Some(f.clone());
    c.search(req).await.unwrap().into_inner().results
}

/// Recall at each planted selectivity, and the filter holding on every hit.
async fn check_selectivities(c: &mut Client, m: &Model, label: &str) {
    let qs: Vec<Vec<f32>> = clustered(60, DIM, 300, 0.9, 99);
    let cases: Vec<(&str, pb::Filter)> = vec![
        (
            "50%",
            pb::Filter {
                tags_all: vec!["p50".into()],
                ..Default::default()
            },
        ),
        (
            "10%",
            pb::Filter {
                tags_all: vec!["p10".into()],
                ..Default::default()
            },
        ),
        (
            "1%",
            pb::Filter {
                tags_all: vec!["p1".into()],
                ..Default::default()
            },
        ),
        (
            "0.1%",
            pb::Filter {
                tags_any: vec!["p01".into()],
                ..Default::default()
            },
        ),
        (
            "empty",
            pb::Filter {
                countries_any: vec!["SE".into()],
                ..Default::default()
            },
        ),
        (
            "50% by time",
            pb::Filter {
                captured_after: Some(1_500_000_000),
                ..Default::default()
            },
        ),
    ];
    for (name, pf) in cases {
        let f = Filter::from_pb(Some(&pf)).unwrap().unwrap();
        let res = filtered(c, &qs, &pf, 10).await;
        let (mut found, mut want) = (0, 0);
        for (q, r) in qs.iter().zip(&res) {
            let truth = m.exact(q, &f, 10);
            want += truth.len();
            for h in &r.hits {
                assert!(
                    f.matches(h.metadata.as_ref().unwrap()),
                    "{label} {name}: hit {} fails the filter",
                    h.id
                );
            }
            assert_eq!(
                r.hits.len(),
                truth.len(),
                "{label} {name}: as many hits as points can pass (up to k)"
            );
            found += r.hits.iter().filter(|h| truth.contains(&h.id)).count();
        }
        let recall = if want == 0 {
            1.0
        } else {
            found as f64 / want as f64
        };
        println!("{label:<8} {name:<12} recall@10 {recall:.4} ({want} true neighbours)");
        assert!(recall >= 0.95, "{label} {name}: recall {recall}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filtered_search_is_exact_enough_on_mutable_and_sealed_segments() {
    let server = TestServer::start_storage(StorageOptions {
        seal_threshold: 1_000_000,
        ..Default::default()
    })
    .await;
    let mut c = server.client().await;
    let m = load(&mut c).await;
    check_selectivities(&mut c, &m, "mutable").await;

    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let filters: Vec<pb::Filter> = (0..40).map(|_| random_filter(&mut rng)).collect();
    check_random_filters(&mut c, &m, &filters, "mutable").await;

    c.flush(pb::FlushRequest {
        collection: "images".into(),
    })
    .await
    .unwrap();
    check_selectivities(&mut c, &m, "sealed").await;
    check_random_filters(&mut c, &m, &filters, "sealed").await;
    server.stop().await;
}

/// Property: for random filters, every hit satisfies the filter, and the
/// hits are the filtered exact neighbours (recall over all queries ≥ 0.95).
async fn check_random_filters(c: &mut Client, m: &Model, filters: &[pb::Filter], label: &str) {
    let qs: Vec<Vec<f32>> = clustered(8, DIM, 300, 0.9, 123);
    let (mut found, mut want) = (0, 0);
    for pf in filters {
        let Some(f) = Filter::from_pb(Some(pf)).unwrap() else {
            continue;
        };
        let res = filtered(c, &qs, pf, 10).await;
        for (q, r) in qs.iter().zip(&res) {
            let truth = m.exact(q, &f, 10);
            for h in &r.hits {
                assert!(
                    f.matches(h.metadata.as_ref().unwrap()),
                    "{label}: hit {} fails {f:?}",
                    h.id
                );
            }
            want += truth.len();
            found += r.hits.iter().filter(|h| truth.contains(&h.id)).count();
        }
    }
    assert!(
        found as f64 >= 0.95 * want as f64,
        "random filters, {label}: {found}/{want}"
    );
}

/// One series planted across three countries' uploads; a "more like this"
/// from a German upload that excludes its own upload and its own country
/// returns exactly the foreign copies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_country_more_like_this() {
    let server = TestServer::start().await;
    let mut c = server.client().await;
    c.create_collection(create_req("images", 64, pb::Metric::Cosine))
        .await
        .unwrap();
    let background = clustered(3000, 64, 60, 1.0, 31);
    let mut points: Vec<pb::Point> = background
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let mut p = point(&format!("bg{i}"), v.clone());
            let m = p.metadata.as_mut().unwrap();
            m.country = COUNTRIES[i % 6].into();
            m.upload_id = format!("bg-up-{}", i % 30);
            p
        })
        .collect();
    let centre = unit(clustered(1, 64, 1, 0.0, 999)[0].clone());
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    let near = |rng: &mut ChaCha8Rng| -> Vec<f32> {
        centre
            .iter()
            .map(|x| x + 0.02 * rng.random_range(-1.0f32..1.0))
            .collect()
    };
    let planted = [
        ("q", "DE", "UP-DE-1"),
        ("de-same-upload-1", "DE", "UP-DE-1"),
        ("de-same-upload-2", "DE", "UP-DE-1"),
        ("de-other-upload", "DE", "UP-DE-2"),
        ("fr-1", "FR", "UP-FR-1"),
        ("fr-2", "FR", "UP-FR-1"),
        ("br-1", "BR", "UP-BR-7"),
        ("nl-1", "NL", "UP-NL-3"),
    ];
    for (id, cc, up) in planted {
        let mut p = point(id, near(&mut rng));
        let m = p.metadata.as_mut().unwrap();
        m.country = cc.into();
        m.upload_id = up.into();
        points.push(p);
    }
    upsert_batches(&mut c, "images", points, 1000)
        .await
        .unwrap();
    for sealed in [false, true] {
        if sealed {
            c.flush(pb::FlushRequest {
                collection: "images".into(),
            })
            .await
            .unwrap();
        }
        let mut req = search_req("images", vec![id_query("q")], 4);
        req.exclude_same_upload = true;
        req.filter = Some(pb::Filter {
            countries_none: vec!["DE".into()],
            ..Default::default()
        });
        let r = c.search(req.clone()).await.unwrap().into_inner();
        let mut got: Vec<&str> = r.results[0].hits.iter().map(|h| h.id.as_str()).collect();
        got.sort();
        assert_eq!(got, ["br-1", "fr-1", "fr-2", "nl-1"], "sealed={sealed}");
        // Without the country filter, the other German upload comes back too,
        // and the query's own upload never does.
        req.filter = None;
        req.k = 5;
        let r = c.search(req).await.unwrap().into_inner();
        let mut got: Vec<&str> = r.results[0].hits.iter().map(|h| h.id.as_str()).collect();
        got.sort();
        assert_eq!(
            got,
            ["br-1", "de-other-upload", "fr-1", "fr-2", "nl-1"],
            "sealed={sealed}"
        );
    }
    server.stop().await;
}

/// Faces: several faces per media; grouped by media each media comes once,
/// with its best face and how many of its faces matched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn face_search_grouped_by_media() {
    let server = TestServer::start().await;
    let mut c = server.client().await;
    let mut req = create_req("faces", 32, pb::Metric::Cosine);
    req.kind = pb::Kind::Face as i32;
    c.create_collection(req).await.unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(12);
    let identity = unit(clustered(1, 32, 1, 0.0, 5)[0].clone());
    let mut points = Vec::new();
    // 6 media showing the identity, 3 faces each (all similar).
    for mi in 0..6 {
        for f in 0..3 {
            let v: Vec<f32> = identity
                .iter()
                .map(|x| x + 0.05 * rng.random_range(-1.0f32..1.0))
                .collect();
            let mut p = point(&format!("media{mi}#{f}"), v);
            p.metadata.as_mut().unwrap().media_id = format!("media{mi}");
            points.push(p);
        }
    }
    for (i, v) in clustered(2000, 32, 40, 1.0, 6).into_iter().enumerate() {
        let mut p = point(&format!("other{}#{}", i / 2, i % 2), v);
        p.metadata.as_mut().unwrap().media_id = format!("other{}", i / 2);
        points.push(p);
    }
    upsert_batches(&mut c, "faces", points, 500).await.unwrap();
    let q = identity.clone();
    let mut req = search_req("faces", vec![vector_query(q.clone())], 5);
    let plain = c.search(req.clone()).await.unwrap().into_inner();
    let plain_media: std::collections::HashSet<String> = plain.results[0]
        .hits
        .iter()
        .map(|h| h.metadata.as_ref().unwrap().media_id.clone())
        .collect();
    assert!(
        plain_media.len() < 5,
        "ungrouped, the top 5 faces repeat media"
    );
    req.group_by_media = true;
    for sealed in [false, true] {
        if sealed {
            c.flush(pb::FlushRequest {
                collection: "faces".into(),
            })
            .await
            .unwrap();
        }
        let r = c.search(req.clone()).await.unwrap().into_inner();
        let hits = &r.results[0].hits;
        assert_eq!(hits.len(), 5);
        let media: Vec<String> = hits
            .iter()
            .map(|h| h.metadata.as_ref().unwrap().media_id.clone())
            .collect();
        let unique: std::collections::HashSet<&String> = media.iter().collect();
        assert_eq!(unique.len(), 5, "each media once: {media:?}");
        for h in hits {
            assert!(
                h.id.starts_with("media"),
                "the identity's media come first: {}",
                h.id
            );
            assert_eq!(
                h.matched_faces, 3,
                "{}: all 3 faces of the media matched",
                h.id
            );
        }
        for w in hits.windows(2) {
            assert!(w[0].distance <= w[1].distance);
        }
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_filters_are_invalid_argument_naming_the_field() {
    let server = TestServer::start().await;
    let mut c = server.client().await;
    c.create_collection(create_req("images", 4, pb::Metric::Cosine))
        .await
        .unwrap();
    upsert_batches(
        &mut c,
        "images",
        vec![point("a", vec![1.0, 0.0, 0.0, 0.0])],
        1,
    )
    .await
    .unwrap();
    let cases: Vec<(pb::Filter, &[&str])> = vec![
        (
            pb::Filter {
                countries_any: vec!["Germany".into()],
                ..Default::default()
            },
            &["filter.countries_any[0]", "Germany"],
        ),
        (
            pb::Filter {
                countries_none: vec!["de".into()],
                ..Default::default()
            },
            &["filter.countries_none[0]"],
        ),
        (
            pb::Filter {
                captured_after: Some(2000),
                captured_before: Some(1000),
                ..Default::default()
            },
            &[
                "filter.captured_after (2000)",
                "filter.captured_before (1000)",
            ],
        ),
        (
            pb::Filter {
                uploaded_after: Some(5),
                uploaded_before: Some(1),
                ..Default::default()
            },
            &["filter.uploaded_after"],
        ),
        (
            pb::Filter {
                upload_ids_none: (0..1025).map(|i| format!("u{i}")).collect(),
                ..Default::default()
            },
            &["filter.upload_ids_none has 1025 values"],
        ),
        (
            pb::Filter {
                tags_any: vec![String::new()],
                ..Default::default()
            },
            &["filter.tags_any[0]"],
        ),
    ];
    for (f, needles) in cases {
        let mut req = search_req("images", vec![vector_query(vec![1.0, 0.0, 0.0, 0.0])], 3);
        req.filter = Some(f);
        let e = c.search(req).await.unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{}", e.message());
        for n in needles {
            assert!(
                e.message().contains(n),
                "{:?} should mention {n:?}",
                e.message()
            );
        }
    }
    server.stop().await;
}

/// Issue 11, item 10: a point without a media id is its own media, and no
/// media id, whatever bytes it holds, groups with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_by_media_keys_are_unambiguous() {
    let server = TestServer::start().await;
    let mut c = server.client().await;
    c.create_collection(create_req("faces", 2, pb::Metric::L2))
        .await
        .unwrap();
    let with_media = |id: &str, media: &str, v: Vec<f32>| {
        let mut p = point(id, v);
        p.metadata.as_mut().unwrap().media_id = media.into();
        p
    };
    let points = vec![
        with_media("a", "\0x", vec![0.0, 0.0]),
        with_media("x", "", vec![0.1, 0.0]),
        with_media("b", "\0x", vec![0.2, 0.0]),
        with_media("y", "", vec![0.3, 0.0]),
    ];
    upsert_batches(&mut c, "faces", points, 10).await.unwrap();
    let mut req = search_req("faces", vec![vector_query(vec![0.0, 0.0])], 3);
    req.group_by_media = true;
    let r = c.search(req).await.unwrap().into_inner();
    let got: Vec<(String, u32)> = r.results[0]
        .hits
        .iter()
        .map(|h| (h.id.clone(), h.matched_faces))
        .collect();
    let want = [("a", 2), ("x", 1), ("y", 1)].map(|(id, n)| (id.to_string(), n));
    assert_eq!(got, want);
    server.stop().await;
}
