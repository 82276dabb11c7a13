//! Sealed segments end to end: flush, search and get over memory-mapped
//! segments, tombstones across restarts, merges, recall parity with the
//! mutable segment, and the refusal of corrupt files with DATA_LOSS.

use std::path::{Path, PathBuf};

use crate::support::*;
use tonic::Code;
use vidx::collection::StorageOptions;
use vidx::pb;

fn storage(seal_threshold: usize) -> StorageOptions {
    StorageOptions {
        seal_threshold,
        ..Default::default()
    }
}

fn rich_point(i: usize, v: Vec<f32>) -> pb::Point {
    pb::Point {
        id: format!("media-{i:05}"),
        vector: v,
        metadata: Some(pb::Metadata {
            media_id: format!("{i:040x}"),
            upload_id: format!("up-{}", i % 7),
            case_id: format!("case-{}", i % 3),
            country: ["DE", "FR", "BR"][i % 3].into(),
            agency: "agency-é".into(),
            captured_at: 1_400_000_000 + i as i64,
            uploaded_at: -(i as i64),
            series_label: if i.is_multiple_of(5) {
                format!("S-{i}")
            } else {
                String::new()
            },
            victim_identified: i.is_multiple_of(4),
            tags: (0..i % 3).map(|t| format!("tag{t}")).collect(),
        }),
        ..Default::default()
    }
}

async fn describe(c: &mut Client, name: &str) -> pb::CollectionInfo {
    c.describe_collection(pb::DescribeCollectionRequest { name: name.into() })
        .await
        .unwrap()
        .into_inner()
}

async fn flush(c: &mut Client, name: &str) -> pb::FlushResponse {
    c.flush(pb::FlushRequest {
        collection: name.into(),
    })
    .await
    .unwrap()
    .into_inner()
}

async fn get_all(c: &mut Client, name: &str, ids: &[String]) -> Vec<pb::Point> {
    c.get(pb::GetRequest {
        collection: name.into(),
        ids: ids.to_vec(),
    })
    .await
    .unwrap()
    .into_inner()
    .points
}

fn recall(results: &[pb::QueryResult], truth: &[Vec<String>]) -> f64 {
    let mut found = 0;
    let mut total = 0;
    for (r, t) in results.iter().zip(truth) {
        total += t.len();
        found += r.hits.iter().filter(|h| t.contains(&h.id)).count();
    }
    found as f64 / total as f64
}

/// The exact top-`k` ids of `q` among `(id, vector)` pairs.
fn exact(data: &[(String, Vec<f32>)], q: &[f32], k: usize) -> Vec<String> {
    let items = data.iter().map(|(id, v)| (id, v.as_slice()));
    exact_top_k(q, items, k)
        .into_iter()
        .map(|(_, id)| id.clone())
        .collect()
}

async fn search_all(
    c: &mut Client,
    name: &str,
    qs: &[Vec<f32>],
    k: u32,
    ef: u32,
) -> Vec<pb::QueryResult> {
    let mut req = search_req(
        name,
        qs.iter().map(|q| vector_query(q.clone())).collect(),
        k,
    );
    req.ef = ef;
    c.search(req).await.unwrap().into_inner().results
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flush_seals_and_everything_reads_back_from_the_maps() {
    let server = TestServer::start_storage(storage(1_000_000)).await;
    let mut c = server.client().await;
    c.create_collection(create_req("images", 32, pb::Metric::Cosine))
        .await
        .unwrap();
    let vecs = clustered(1500, 32, 15, 0.5, 11);
    let points: Vec<pb::Point> = vecs
        .iter()
        .enumerate()
        .map(|(i, v)| rich_point(i, v.clone()))
        .collect();
    upsert_batches(&mut c, "images", points.clone(), 500)
        .await
        .unwrap();
    let before = search_all(&mut c, "images", &vecs[..20], 10, 64).await;

    let f = flush(&mut c, "images").await;
    assert_eq!((f.segments, f.sealed_points), (2, 1500));
    let info = describe(&mut c, "images").await;
    assert_eq!((info.points, info.segments), (1500, 2));
    let seg = server.data_dir.join("collections/images/seg-00000001");
    for f in [
        "vectors.bin",
        "graph.bin",
        "ids.bin",
        "meta.bin",
        "tomb-0.bin",
    ] {
        assert!(seg.join(f).exists(), "{f}");
    }
    // Get returns exactly what was stored: vector (normalised) and every metadata field.
    let ids: Vec<String> = points.iter().map(|p| p.id.clone()).collect();
    let got = get_all(&mut c, "images", &ids).await;
    assert_eq!(got.len(), 1500);
    for (p, g) in points.iter().zip(&got) {
        assert_eq!(p.id, g.id);
        assert_eq!(p.metadata, g.metadata);
        assert!(cosine_distance(&p.vector, &g.vector) < 1e-5);
    }
    // The same queries find the same neighbours through the sealed graph.
    let after = search_all(&mut c, "images", &vecs[..20], 10, 64).await;
    for (a, b) in before.iter().zip(&after) {
        let ia: Vec<&str> = a.hits.iter().map(|h| h.id.as_str()).collect();
        let ib: Vec<&str> = b.hits.iter().map(|h| h.id.as_str()).collect();
        assert_eq!(ia, ib);
        for (x, y) in a.hits.iter().zip(&b.hits) {
            assert!((x.distance - y.distance).abs() < 1e-5);
            assert_eq!(x.metadata, y.metadata);
        }
    }
    // "More like this" on a sealed point excludes it.
    let r = c
        .search(search_req("images", vec![id_query("media-00007")], 5))
        .await
        .unwrap()
        .into_inner();
    assert!(r.results[0].hits.iter().all(|h| h.id != "media-00007"));
    assert_eq!(r.results[0].hits.len(), 5);

    // Delete and replace points that live in the sealed segment.
    let d = c
        .delete(pb::DeleteRequest {
            collection: "images".into(),
            ids: vec!["media-00001".into(), "media-00002".into()],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(d.deleted, 2);
    let mut moved = rich_point(3, vecs[900].clone());
    moved.metadata.as_mut().unwrap().country = "NL".into();
    upsert_batches(&mut c, "images", vec![moved], 1)
        .await
        .unwrap();
    let check = |got: Vec<pb::Point>| {
        assert_eq!(
            got.len(),
            1,
            "{:?}",
            got.iter().map(|p| &p.id).collect::<Vec<_>>()
        );
        assert_eq!(got[0].id, "media-00003");
        assert_eq!(got[0].metadata.as_ref().unwrap().country, "NL");
    };
    check(
        get_all(
            &mut c,
            "images",
            &[
                "media-00001".into(),
                "media-00002".into(),
                "media-00003".into(),
            ],
        )
        .await,
    );
    let r = search_all(&mut c, "images", &[vecs[3].clone()], 5, 64).await;
    assert!(
        r[0].hits
            .iter()
            .all(|h| !["media-00001", "media-00002"].contains(&h.id.as_str()))
    );
    let threes = r[0].hits.iter().filter(|h| h.id == "media-00003").count();
    assert!(threes <= 1);
    assert_eq!(describe(&mut c, "images").await.points, 1498);

    // Seal again (tombstones of segment 1 are persisted with it), restart, re-check.
    flush(&mut c, "images").await;
    drop(c);
    let dir = server.data_dir.clone();
    let tmp = server.stop().await;
    let server = TestServer::start_full(&dir, Default::default(), storage(1_000_000)).await;
    let mut c = server.client().await;
    let info = describe(&mut c, "images").await;
    assert_eq!((info.points, info.segments), (1498, 3));
    check(
        get_all(
            &mut c,
            "images",
            &[
                "media-00001".into(),
                "media-00002".into(),
                "media-00003".into(),
            ],
        )
        .await,
    );
    assert!(
        !dir.join("collections/images/seg-00000001/tomb-0.bin")
            .exists(),
        "stale tombstones removed"
    );
    server.stop().await;
    drop(tmp);
}

/// Regression (found by the crash test): an id replaced while its segment
/// was mutable is sealed twice, the older copy dead; lookups must find the
/// live copy, so get, "more like this" and delete keep working.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ids_replaced_before_sealing_are_found_after_it() {
    let server = TestServer::start_storage(storage(1_000_000)).await;
    let mut c = server.client().await;
    c.create_collection(create_req("images", 3, pb::Metric::Cosine))
        .await
        .unwrap();
    for (id, v) in [
        ("b", [1.0, 0.0, 0.0]),
        ("a", [0.0, 1.0, 0.0]),
        ("b", [0.0, 0.0, 1.0]),
    ] {
        upsert_batches(&mut c, "images", vec![point(id, v.to_vec())], 1)
            .await
            .unwrap();
    }
    flush(&mut c, "images").await;
    let got = get_all(&mut c, "images", &["b".into()]).await;
    assert_eq!(got.len(), 1);
    assert!(
        cosine_distance(&got[0].vector, &[0.0, 0.0, 1.0]) < 1e-6,
        "the newer version"
    );
    let r = c
        .search(search_req("images", vec![id_query("b")], 1))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.results[0].hits[0].id, "a");
    let d = c
        .delete(pb::DeleteRequest {
            collection: "images".into(),
            ids: vec!["b".into()],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(d.deleted, 1);
    assert!(get_all(&mut c, "images", &["b".into()]).await.is_empty());
    let r = c
        .search(search_req(
            "images",
            vec![vector_query(vec![0.0, 0.0, 1.0])],
            5,
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(
        r.results[0].hits.iter().all(|h| h.id != "b"),
        "a deleted point must not come back"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sealed_recall_matches_mutable_recall_at_the_same_ef() {
    let server = TestServer::start_storage(storage(1_000_000)).await;
    let mut c = server.client().await;
    c.create_collection(create_req("images", 128, pb::Metric::Cosine))
        .await
        .unwrap();
    let all = clustered(8000 + 100, 128, 100, 1.5, 5);
    let (data, queries) = all.split_at(8000);
    let points: Vec<pb::Point> = data
        .iter()
        .enumerate()
        .map(|(i, v)| point(&i.to_string(), v.clone()))
        .collect();
    upsert_batches(&mut c, "images", points, 2000)
        .await
        .unwrap();
    let model: Vec<(String, Vec<f32>)> = data
        .iter()
        .enumerate()
        .map(|(i, v)| (i.to_string(), v.clone()))
        .collect();
    let truth: Vec<Vec<String>> = queries.iter().map(|q| exact(&model, q, 10)).collect();
    let efs = [10, 16, 32, 64];
    let mut mutable = Vec::new();
    for ef in efs {
        mutable.push(recall(
            &search_all(&mut c, "images", queries, 10, ef).await,
            &truth,
        ));
    }
    flush(&mut c, "images").await;
    assert_eq!(describe(&mut c, "images").await.segments, 2);
    for (i, ef) in efs.iter().enumerate() {
        let sealed = recall(
            &search_all(&mut c, "images", queries, 10, *ef).await,
            &truth,
        );
        println!(
            "ef={ef:<3} recall@10 mutable {:.4} sealed {sealed:.4}",
            mutable[i]
        );
        assert!(
            (sealed - mutable[i]).abs() <= 0.01,
            "ef={ef}: sealed {sealed:.4} vs mutable {:.4}",
            mutable[i]
        );
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn merges_keep_recall_after_heavy_deletion() {
    // Tiny threshold: many seals, tier merges, then tombstone merges.
    let server = TestServer::start_storage(storage(400)).await;
    let mut c = server.client().await;
    c.create_collection(create_req("images", 32, pb::Metric::Cosine))
        .await
        .unwrap();
    let vecs = clustered(4000, 32, 40, 0.8, 21);
    let points: Vec<pb::Point> = vecs
        .iter()
        .enumerate()
        .map(|(i, v)| point(&format!("p{i}"), v.clone()))
        .collect();
    upsert_batches(&mut c, "images", points, 200).await.unwrap();
    flush(&mut c, "images").await;
    // Delete 60%, sealed and all.
    let doomed: Vec<String> = (0..4000)
        .filter(|i| i % 5 < 3)
        .map(|i| format!("p{i}"))
        .collect();
    for chunk in doomed.chunks(500) {
        c.delete(pb::DeleteRequest {
            collection: "images".into(),
            ids: chunk.to_vec(),
        })
        .await
        .unwrap();
    }
    flush(&mut c, "images").await; // seals (nothing new) and lets merges run
    // Another small write + flush runs the merge policy to completion.
    upsert_batches(&mut c, "images", vec![point("extra", vecs[0].clone())], 1)
        .await
        .unwrap();
    flush(&mut c, "images").await;
    let info = describe(&mut c, "images").await;
    assert_eq!(info.points, 1601);
    let seg_dirs: Vec<PathBuf> = std::fs::read_dir(server.data_dir.join("collections/images"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("seg-"))
        .collect();
    assert_eq!(
        seg_dirs.len() as u32,
        info.segments - 1,
        "no orphaned segment directories"
    );
    let model: Vec<(String, Vec<f32>)> = vecs
        .iter()
        .enumerate()
        .filter(|(i, _)| i % 5 >= 3)
        .map(|(i, v)| (format!("p{i}"), v.clone()))
        .chain([("extra".to_string(), vecs[0].clone())])
        .collect();
    let qs: Vec<Vec<f32>> = model.iter().step_by(40).map(|(_, v)| v.clone()).collect();
    let truth: Vec<Vec<String>> = qs.iter().map(|q| exact(&model, q, 10)).collect();
    let r = recall(&search_all(&mut c, "images", &qs, 10, 0).await, &truth);
    println!(
        "recall@10 after deleting 60% and merging: {r:.4} ({} segments)",
        info.segments
    );
    assert!(r >= 0.95, "recall {r}");
    let got = get_all(&mut c, "images", &doomed[..50]).await;
    assert!(
        got.is_empty(),
        "deleted points came back: {:?}",
        got.iter().map(|p| &p.id).collect::<Vec<_>>()
    );
    server.stop().await;
}

// ---- corruption ---------------------------------------------------------

/// Builds a data dir with two collections, `bad` and `good`, each with one
/// sealed segment (with a persisted tombstone file) and a WAL tail.
async fn build_two_collections() -> (tempfile::TempDir, PathBuf) {
    build_two_collections_with(pb::Quantization::None).await
}

/// [`build_two_collections`] with segments that hold `quant` codes.
async fn build_two_collections_with(quant: pb::Quantization) -> (tempfile::TempDir, PathBuf) {
    build_two_collections_of(&|name| create_quantized(name, 16, pb::Metric::Cosine, quant)).await
}

/// [`build_two_collections`] with each collection created by `create(name)`.
async fn build_two_collections_of(
    create: &dyn Fn(&str) -> pb::CreateCollectionRequest,
) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_owned();
    let server = TestServer::start_full(&dir, Default::default(), storage(1_000_000)).await;
    let mut c = server.client().await;
    for name in ["bad", "good"] {
        c.create_collection(create(name)).await.unwrap();
        let vecs = clustered(300, 16, 5, 0.5, 3);
        let points: Vec<pb::Point> = vecs
            .iter()
            .enumerate()
            .map(|(i, v)| rich_point(i, v.clone()))
            .collect();
        upsert_batches(&mut c, name, points, 100).await.unwrap();
        c.delete(pb::DeleteRequest {
            collection: name.into(),
            ids: vec!["media-00000".into()],
        })
        .await
        .unwrap();
        flush(&mut c, name).await;
        c.delete(pb::DeleteRequest {
            collection: name.into(),
            ids: vec!["media-00001".into()],
        })
        .await
        .unwrap();
        upsert_batches(&mut c, name, vec![rich_point(999, vecs[0].clone())], 1)
            .await
            .unwrap();
        flush(&mut c, name).await; // persists the new tombstones as tomb-<n>.bin
    }
    drop(c);
    server.stop().await;
    (tmp, dir)
}

fn segment_file(dir: &Path, prefix: &str) -> PathBuf {
    let seg = dir.join("collections/bad/seg-00000001");
    std::fs::read_dir(&seg)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.file_name().unwrap().to_string_lossy().starts_with(prefix))
        .unwrap_or_else(|| panic!("no {prefix}* in {}", seg.display()))
}

/// Starts a server on `dir` and checks that `bad` answers DATA_LOSS naming
/// `file` (at once, or once the background checksum pass has run) while
/// `good` keeps serving.
async fn assert_refused(dir: &Path, file: &str) {
    let server = TestServer::start_full(dir, Default::default(), storage(1_000_000)).await;
    let mut c = server.client().await;
    let mut last = None;
    for _ in 0..100 {
        match c
            .get(pb::GetRequest {
                collection: "bad".into(),
                ids: vec!["media-00005".into()],
            })
            .await
        {
            Err(s) => {
                last = Some(s);
                break;
            }
            Ok(_) => tokio::time::sleep(std::time::Duration::from_millis(50)).await,
        }
    }
    let s = last.unwrap_or_else(|| panic!("damage to {file} was not detected"));
    assert_eq!(s.code(), Code::DataLoss, "{file}: {}", s.message());
    assert!(
        s.message().contains(file),
        "{file}: message {:?} should name the file",
        s.message()
    );
    let r = c
        .search(search_req("good", vec![id_query("media-00005")], 3))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        r.results[0].hits.len(),
        3,
        "the other collection keeps serving"
    );
    assert_eq!(describe(&mut c, "good").await.points, 299);
    server.stop().await;
}

fn flip_byte(path: &Path, at_from_end: usize) {
    let mut b = std::fs::read(path).unwrap();
    let i = b.len() - at_from_end;
    b[i] ^= 0x5a;
    std::fs::write(path, b).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flipped_byte_in_each_segment_file_is_data_loss() {
    for prefix in ["vectors.bin", "graph.bin", "ids.bin", "meta.bin", "tomb-"] {
        let (_tmp, dir) = build_two_collections().await;
        let f = segment_file(&dir, prefix);
        flip_byte(&f, 3);
        assert_refused(&dir, &f.file_name().unwrap().to_string_lossy()).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flipped_byte_in_the_codes_file_is_data_loss_naming_it() {
    // A byte of the codes and one of the codebook (the payload's start):
    // each is refused, naming codes.bin; then a byte of SQ4 codes.
    for at_from_end in [3, 0] {
        let (_tmp, dir) = build_two_collections_with(pb::Quantization::Sq8).await;
        let f = segment_file(&dir, "codes.bin");
        if at_from_end == 0 {
            let mut b = std::fs::read(&f).unwrap();
            b[64 + 5] ^= 0x5a;
            std::fs::write(&f, b).unwrap();
        } else {
            flip_byte(&f, at_from_end);
        }
        assert_refused(&dir, "codes.bin").await;
    }
    let (_tmp, dir) = build_two_collections_with(pb::Quantization::Sq4).await;
    flip_byte(&segment_file(&dir, "codes.bin"), 1000);
    assert_refused(&dir, "codes.bin").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flipped_byte_in_the_f16_vectors_file_is_data_loss_naming_it() {
    // f16 storage alone, then under SQ8 codes (where only rescoring reads it).
    for quant in [pb::Quantization::None, pb::Quantization::Sq8] {
        let (_tmp, dir) = build_two_collections_of(&|name| pb::CreateCollectionRequest {
            vector_storage: pb::VectorStorage::F16 as i32,
            ..create_quantized(name, 16, pb::Metric::Cosine, quant)
        })
        .await;
        let f = segment_file(&dir, "vectors16.bin");
        assert!(
            !f.with_file_name("vectors.bin").exists(),
            "an f16 segment holds no f32 file"
        );
        flip_byte(&f, 3);
        assert_refused(&dir, "vectors16.bin").await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_codes_file_is_data_loss_naming_it() {
    let (_tmp, dir) = build_two_collections_with(pb::Quantization::Sq8).await;
    std::fs::remove_file(segment_file(&dir, "codes.bin")).unwrap();
    assert_refused(&dir, "codes.bin").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncated_or_unknown_version_segment_files_are_data_loss() {
    for prefix in ["vectors.bin", "graph.bin", "ids.bin", "meta.bin", "tomb-"] {
        let (_tmp, dir) = build_two_collections().await;
        let f = segment_file(&dir, prefix);
        let len = std::fs::metadata(&f).unwrap().len();
        std::fs::OpenOptions::new()
            .write(true)
            .open(&f)
            .unwrap()
            .set_len(len - 5)
            .unwrap();
        assert_refused(&dir, &f.file_name().unwrap().to_string_lossy()).await;
    }
    for prefix in ["vectors.bin", "graph.bin"] {
        let (_tmp, dir) = build_two_collections().await;
        let f = segment_file(&dir, prefix);
        // A well-formed header from a future vidx: version 99, valid CRC.
        let mut b = std::fs::read(&f).unwrap();
        b[8..12].copy_from_slice(&99u32.to_le_bytes());
        let crc = crc32c::crc32c(&b[..60]);
        b[60..64].copy_from_slice(&crc.to_le_bytes());
        std::fs::write(&f, b).unwrap();
        assert_refused(&dir, &f.file_name().unwrap().to_string_lossy()).await;
        let server = TestServer::start_full(&dir, Default::default(), storage(1_000_000)).await;
        let mut c = server.client().await;
        let s = c
            .get(pb::GetRequest {
                collection: "bad".into(),
                ids: vec![],
            })
            .await
            .unwrap_err();
        assert!(s.message().contains("version 99"), "{}", s.message());
        server.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_manifest_is_data_loss() {
    let (_tmp, dir) = build_two_collections().await;
    let m = dir.join("collections/bad/manifest.json");
    std::fs::write(&m, b"{ not json").unwrap();
    assert_refused(&dir, "manifest.json").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wal_truncated_mid_record_loses_only_that_record() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_owned();
    let server = TestServer::start_full(&dir, Default::default(), storage(1_000_000)).await;
    let mut c = server.client().await;
    c.create_collection(create_req("images", 16, pb::Metric::Cosine))
        .await
        .unwrap();
    let vecs = clustered(100, 16, 5, 0.5, 4);
    for (i, chunk) in vecs.chunks(10).enumerate() {
        let pts = chunk
            .iter()
            .enumerate()
            .map(|(j, v)| point(&format!("p{}", i * 10 + j), v.clone()))
            .collect();
        upsert_batches(&mut c, "images", pts, 10).await.unwrap();
    }
    drop(c);
    server.stop().await;
    // Cut the last record in half, as a crash mid-append would.
    let wal = std::fs::read_dir(dir.join("collections/images"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("wal-"))
        .max()
        .unwrap();
    let len = std::fs::metadata(&wal).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&wal)
        .unwrap()
        .set_len(len - 100)
        .unwrap();

    let server = TestServer::start_full(&dir, Default::default(), storage(1_000_000)).await;
    let mut c = server.client().await;
    assert_eq!(describe(&mut c, "images").await.points, 90);
    let ids: Vec<String> = (0..100).map(|i| format!("p{i}")).collect();
    let got = get_all(&mut c, "images", &ids).await;
    assert_eq!(got.len(), 90);
    assert!(got.iter().all(|p| p.id[1..].parse::<usize>().unwrap() < 90));
    // The log is writable again after the cut.
    upsert_batches(&mut c, "images", vec![point("again", vecs[0].clone())], 1)
        .await
        .unwrap();
    drop(c);
    server.stop().await;
    let server = TestServer::start_full(&dir, Default::default(), storage(1_000_000)).await;
    let mut c = server.client().await;
    assert_eq!(describe(&mut c, "images").await.points, 91);
    server.stop().await;
}

/// Issue 11, item 7: a Flush after every small write must not pile up
/// segments (each holds files open): tiny segments are merged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flushing_after_every_write_keeps_the_segment_count_bounded() {
    const ROUNDS: usize = 100;
    let server = TestServer::start_storage(storage(100_000)).await;
    let mut c = server.client().await;
    c.create_collection(create_req("c", 4, pb::Metric::L2))
        .await
        .unwrap();
    for i in 0..ROUNDS {
        let p = point(&format!("p{i}"), vec![i as f32, 1.0, 0.0, 0.0]);
        upsert_batches(&mut c, "c", vec![p], 1).await.unwrap();
        flush(&mut c, "c").await;
    }
    // Merges run in the background; wait until they settle.
    let started = std::time::Instant::now();
    let mut info = describe(&mut c, "c").await;
    while info.segments > 16 && started.elapsed() < std::time::Duration::from_secs(60) {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        info = describe(&mut c, "c").await;
    }
    assert!(info.segments <= 16, "{} segments", info.segments);
    assert_eq!(info.points, ROUNDS as u64);
    let ids: Vec<String> = (0..ROUNDS).map(|i| format!("p{i}")).collect();
    assert_eq!(get_all(&mut c, "c", &ids).await.len(), ROUNDS);
    server.stop().await;
}

/// Issue 11, item 6: a delete of many ids is linear, so it does not hold
/// every other writer of the collection for long. A stall bound with a wide
/// margin (the quadratic version took ~10 s here), not a speed target.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delete_of_60k_ids_does_not_stall_writers() {
    const N: usize = 60_000;
    let server = TestServer::start().await;
    let mut c = server.client().await;
    let mut req = create_req("c", 2, pb::Metric::L2);
    // A cheap graph: this test is about deletes.
    req.hnsw = Some(pb::HnswConfig {
        m: 2,
        ef_construction: 2,
    });
    c.create_collection(req).await.unwrap();
    let ids: Vec<String> = (0..N).map(|i| format!("point-{i:06}")).collect();
    let pts = ids
        .iter()
        .enumerate()
        .map(|(i, id)| point(id, vec![i as f32, 1.0]))
        .collect();
    upsert_batches(&mut c, "c", pts, 10_000).await.unwrap();
    let mut c2 = server.client().await;
    let delete = tokio::spawn(async move {
        let t = std::time::Instant::now();
        let r = c2
            .delete(pb::DeleteRequest {
                collection: "c".into(),
                ids,
            })
            .await
            .unwrap();
        (r.into_inner().deleted, t.elapsed())
    });
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let t = std::time::Instant::now();
    let p = point("late", vec![0.0, 0.0]);
    upsert_batches(&mut c, "c", vec![p], 1).await.unwrap();
    let upsert_wait = t.elapsed();
    let (deleted, delete_time) = delete.await.unwrap();
    assert_eq!(deleted, N as u64);
    assert!(
        upsert_wait < std::time::Duration::from_secs(3),
        "a 1-point upsert waited {upsert_wait:?} behind the delete"
    );
    assert!(
        delete_time < std::time::Duration::from_secs(5),
        "the delete took {delete_time:?}"
    );
    assert_eq!(describe(&mut c, "c").await.points, 1);
    server.stop().await;
}
