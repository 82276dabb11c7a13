//! Stored-format compatibility: data directories written by earlier vidx
//! versions, committed under `tests/data/formats/<name>/`, must still open
//! and serve the same points and series.
//!
//! Each fixture is one small data directory built by [`build_fixture`]: a
//! collection `images` (8-d, cosine; with SQ8 codes from fixture `v1-sq8`
//! on) with two sealed segments (the first with a tombstone file that is
//! not the initial one), a manifest with a
//! checkpoint, write-ahead log records above it (an upsert and a delete not
//! yet sealed), its `collection.json`, the series state that `LinkSeries`
//! stored for it and (from `v1-decisions` on) the decision log of a LABEL
//! decision. From `v1-hashes` on it also holds a perceptual-hash collection
//! `pdq` (PDQ-sized, one sealed segment: codes and multi-index) and an
//! exact-hash set `known`. [`fixture_opens_with_its_points_and_series`]
//! opens a copy of every fixture with today's code and checks ids, metadata,
//! vectors, a search, the stored series and a triage that reads them, and
//! the hash collection's and hash set's contents where the fixture has them.
//!
//! # When a format version changes
//!
//! Follow the steps in `src/storage/versions.rs`, then make a fixture of the
//! new format and commit it beside the old ones (never replace or rewrite
//! an old fixture: proving that it still opens is the point):
//!
//! ```sh
//! cargo test --release --test it -- --ignored stored_formats::write_fixture
//! cp -r target/stored-format-fixture tests/data/formats/<name>   # e.g. v2-graph
//! ```
//!
//! [`every_current_version_has_a_fixture`] fails until a fixture holds every
//! version that `versions::ALL` says is written today.
//!
//! Snapshots (`vidx snapshot create`) are kept the same way under
//! `tests/data/snapshots/<name>/`: each is a snapshot of the `images`
//! collection of a format fixture, and must still restore into a data
//! directory that [`check_fixture`] accepts. Make one with
//!
//! ```sh
//! cargo test --release --test it -- --ignored stored_formats::write_snapshot_fixture
//! cp -r target/stored-snapshot-fixture tests/data/snapshots/<name>   # e.g. v1
//! ```

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::support::*;
use vidx::collection::StorageOptions;
use vidx::investigate::decisions::DecisionStore;
use vidx::investigate::series::StateStore;
use vidx::pb;
use vidx::storage::versions::{self, Format};

const DIM: usize = 8;
/// Planted series: members `s<s>-m<i>` around axis `s`.
const SERIES: usize = 3;

fn fixtures() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/formats");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
        .expect("tests/data/formats")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    assert!(!dirs.is_empty(), "no fixture under {}", root.display());
    dirs
}

fn snapshot_fixtures() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/snapshots");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
        .expect("tests/data/snapshots")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    dirs
}

/// The snapshot-manifest version of a snapshot fixture.
fn snapshot_version(snap: &Path) -> (Format, u32) {
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(snap.join("snapshot.json")).expect("manifest"))
            .expect("parse");
    (
        versions::SNAPSHOT,
        m["format"].as_u64().expect("format") as u32,
    )
}

fn axis(a: usize, scale: f32, v: &mut [f32]) {
    v[a % DIM] += scale;
}

/// Member `i` of series `s`: axis `s` plus a distinct small offset, so its
/// distance to the bare axis grows with `i` and no two are tied.
fn member(s: usize, i: usize) -> Vec<f32> {
    let mut v = vec![0.0; DIM];
    axis(s, 1.0, &mut v);
    axis(3 + (i + s) % 5, 0.1 + 0.03 * i as f32, &mut v);
    unit(v)
}

/// Background media: spare axes (negated past the fifth), far from every
/// series and from one another.
fn noise(j: usize) -> Vec<f32> {
    let mut v = vec![0.0; DIM];
    axis(3 + j % 5, if j < 5 { 1.0 } else { -1.0 }, &mut v);
    axis(j % 3, 0.05, &mut v);
    unit(v)
}

/// The metadata of point `id`; `relabelled` marks the version upserted over
/// a sealed point.
fn metadata(id: &str, relabelled: bool) -> pb::Metadata {
    let n: i64 = id.bytes().map(i64::from).sum();
    let country = ["DE", "FR", "BR"][(n % 3) as usize];
    let in_series = id.starts_with('s');
    pb::Metadata {
        media_id: format!("sha1-{id}"),
        upload_id: format!("up-{country}-{}", n % 2),
        case_id: format!("case-{}", n % 4),
        country: country.into(),
        agency: format!("{country}-police-é"),
        captured_at: 1_400_000_000 + n,
        uploaded_at: 1_600_000_000 + n,
        series_label: if relabelled {
            "S-0042".into()
        } else if id.starts_with("s0-") {
            "S-0007".into()
        } else {
            String::new()
        },
        victim_identified: id.starts_with("s0-"),
        tags: if in_series {
            vec!["indoor".into(), id[..2].to_string()]
        } else {
            vec![]
        },
    }
}

/// The live points of a fixture, as they must read back: id → vector and
/// metadata.
fn expected_points() -> Vec<(String, Vec<f32>, pb::Metadata)> {
    let mut out = Vec::new();
    for s in 0..SERIES {
        for i in 0..4 {
            let id = format!("s{s}-m{i}");
            match id.as_str() {
                // Replaced after the first seal; now in the second segment.
                "s1-m0" => out.push((id.clone(), member(1, 9), metadata(&id, true))),
                // Deleted in the log above the checkpoint.
                "s2-m3" => {}
                _ => out.push((id.clone(), member(s, i), metadata(&id, false))),
            }
        }
    }
    // Upserted in the log above the checkpoint.
    out.push(("s0-m4".into(), member(0, 4), metadata("s0-m4", false)));
    // noise-0 was deleted before the second seal (tombstone file).
    for j in 1..7 {
        let id = format!("noise-{j}");
        out.push((id.clone(), noise(j), metadata(&id, false)));
    }
    out
}

fn to_point(id: &str, vector: Vec<f32>, meta: pb::Metadata) -> pb::Point {
    pb::Point {
        id: id.into(),
        vector,
        metadata: Some(meta),
        ..Default::default()
    }
}

async fn flush(c: &mut Client) {
    c.flush(pb::FlushRequest {
        collection: "images".into(),
    })
    .await
    .expect("flush");
}

async fn delete(c: &mut Client, id: &str) {
    c.delete(pb::DeleteRequest {
        collection: "images".into(),
        ids: vec![id.into()],
    })
    .await
    .expect("delete");
}

/// Writes a fixture data directory into `dir` with today's code, through a
/// real server, in the steps the module doc lists.
async fn build_fixture(dir: &Path) {
    let storage = StorageOptions {
        seal_threshold: 1_000_000,
        verify_on_open: false,
        ..Default::default()
    };
    let server = TestServer::start_full(dir, Default::default(), storage).await;
    let mut c = server.client().await;
    // Quantized, so the fixture holds a codes file too (v1, the first
    // fixture, predates codes and keeps the f32-only layout covered).
    c.create_collection(create_quantized(
        "images",
        DIM as u32,
        pb::Metric::Cosine,
        pb::Quantization::Sq8,
    ))
    .await
    .expect("create");
    let mut first: Vec<pb::Point> = (0..SERIES)
        .flat_map(|s| (0..4).map(move |i| (s, i)))
        .map(|(s, i)| {
            let id = format!("s{s}-m{i}");
            to_point(&id, member(s, i), metadata(&id, false))
        })
        .collect();
    first.extend((0..7).map(|j| {
        let id = format!("noise-{j}");
        to_point(&id, noise(j), metadata(&id, false))
    }));
    upsert_batches(&mut c, "images", first, 5)
        .await
        .expect("upsert");
    flush(&mut c).await;
    delete(&mut c, "noise-0").await;
    let replaced = to_point("s1-m0", member(1, 9), metadata("s1-m0", true));
    upsert_batches(&mut c, "images", vec![replaced], 1)
        .await
        .expect("replace");
    flush(&mut c).await;
    let late = to_point("s0-m4", member(0, 4), metadata("s0-m4", false));
    upsert_batches(&mut c, "images", vec![late], 1)
        .await
        .expect("late upsert");
    delete(&mut c, "s2-m3").await;
    let mut events = c
        .link_series(pb::LinkSeriesRequest {
            image_collection: "images".into(),
            ..Default::default()
        })
        .await
        .expect("link")
        .into_inner();
    while events.message().await.expect("link event").is_some() {}
    // An investigator's decision: the decision log.
    let s0 = c
        .series_of_media(pb::SeriesOfMediaRequest {
            image_collection: "images".into(),
            media_ids: vec!["sha1-s0-m0".into()],
        })
        .await
        .expect("series of media")
        .into_inner()
        .media[0]
        .series_id
        .clone();
    c.review_series(pb::ReviewSeriesRequest {
        image_collection: "images".into(),
        decisions: vec![pb::Decision {
            kind: pb::DecisionKind::Label as i32,
            series_id: s0,
            label: "S-0007".into(),
            ..Default::default()
        }],
        reviewer: "fixture".into(),
        note: String::new(),
    })
    .await
    .expect("review");
    build_hashes(&mut c).await;
    server.stop().await;
}

/// PDQ hashes of the fixture's `pdq` collection: distinct, well apart.
fn pdq_bits(i: usize) -> Vec<u8> {
    (0..32).map(|b| (i * 37 + b * 11) as u8 ^ 0x5a).collect()
}

const PDQ_POINTS: usize = 6;

/// The MD5 of the hash set's entry `i`.
fn known_md5(i: usize) -> Vec<u8> {
    (0..16).map(|b| (i * 16 + b) as u8).collect()
}

const KNOWN_ENTRIES: usize = 3;

/// A perceptual-hash collection with one sealed segment (codes and
/// multi-index files) and an exact-hash set of one part.
async fn build_hashes(c: &mut Client) {
    c.create_collection(pb::CreateCollectionRequest {
        name: "pdq".into(),
        dim: 256,
        metric: pb::Metric::Hamming as i32,
        kind: pb::Kind::PerceptualHash as i32,
        ..Default::default()
    })
    .await
    .expect("create pdq");
    let points = (0..PDQ_POINTS)
        .map(|i| pb::Point {
            id: format!("pdq-{i}"),
            bits: pdq_bits(i),
            quality: 90,
            metadata: Some(metadata(&format!("pdq-{i}"), false)),
            ..Default::default()
        })
        .collect();
    upsert_batches(c, "pdq", points, PDQ_POINTS)
        .await
        .expect("upsert pdq");
    c.flush(pb::FlushRequest {
        collection: "pdq".into(),
    })
    .await
    .expect("flush pdq");
    let entries = (0..KNOWN_ENTRIES)
        .map(|i| pb::HashEntry {
            md5: known_md5(i),
            category: "1".into(),
            source: "fixture".into(),
            series: format!("S-{i}"),
            ..Default::default()
        })
        .collect();
    c.import_hashes(tokio_stream::iter(vec![pb::ImportHashesRequest {
        set: "known".into(),
        entries,
        ..Default::default()
    }]))
    .await
    .expect("import hashes");
}

/// The `pdq` collection and `known` set of a fixture that has them read
/// back: every stored hash is found at distance 0 with its quality, every
/// digest with its series.
async fn check_hashes(c: &mut Client, data_dir: &Path, name: &str) {
    if data_dir.join("collections/pdq").exists() {
        for i in 0..PDQ_POINTS {
            let req = search_req(
                "pdq",
                vec![pb::Query {
                    query: Some(pb::query::Query::Bits(pdq_bits(i))),
                }],
                1,
            );
            let hits = c
                .search(req)
                .await
                .unwrap_or_else(|e| panic!("{name}: pdq search: {}", e.message()))
                .into_inner()
                .results
                .remove(0)
                .hits;
            let h = hits.first().unwrap_or_else(|| panic!("{name}: no pdq hit"));
            assert_eq!(
                (h.id.as_str(), h.distance, h.quality),
                (format!("pdq-{i}").as_str(), 0.0, 90),
                "{name}"
            );
        }
    }
    if data_dir.join("hashsets/known").exists() {
        let digests: Vec<Vec<u8>> = (0..KNOWN_ENTRIES).map(known_md5).collect();
        let matches = c
            .lookup_hashes(pb::LookupHashesRequest {
                sets: vec!["known".into()],
                digests,
            })
            .await
            .unwrap_or_else(|e| panic!("{name}: lookup: {}", e.message()))
            .into_inner()
            .matches;
        let got: Vec<(u32, String)> = matches
            .iter()
            .map(|m| (m.digest, m.entry.as_ref().expect("entry").series.clone()))
            .collect();
        let want: Vec<(u32, String)> = (0..KNOWN_ENTRIES)
            .map(|i| (i as u32, format!("S-{i}")))
            .collect();
        assert_eq!(got, want, "{name}");
    }
}

/// The decision log of a fixture, if it has one (fixtures older than the
/// log do not).
fn decision_log(fixture: &Path) -> Option<PathBuf> {
    let p = fixture.join("series/images.decisions.log");
    p.exists().then_some(p)
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read_dir") {
        let e = e.expect("entry");
        let target = to.join(e.file_name());
        if e.file_type().expect("type").is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), &target).expect("copy");
        }
    }
}

/// Opens a copy of `fixture` (opening may tidy files) and checks everything
/// it holds reads back.
async fn check_fixture(fixture: &Path) {
    let tmp = tempfile::tempdir().expect("tempdir");
    copy_dir(fixture, tmp.path());
    let name = fixture.display();
    let server = TestServer::start_in(tmp.path(), Default::default()).await;
    let mut c = server.client().await;
    let want = expected_points();

    let info = c
        .describe_collection(pb::DescribeCollectionRequest {
            name: "images".into(),
        })
        .await
        .unwrap_or_else(|e| panic!("{name}: {}", e.message()))
        .into_inner();
    assert_eq!(
        (info.dim as usize, info.metric, info.kind, info.points),
        (
            DIM,
            pb::Metric::Cosine as i32,
            pb::Kind::Image as i32,
            want.len() as u64
        ),
        "{name}"
    );

    check_points(&mut c, &want, &name.to_string()).await;
    check_search(&mut c, &name.to_string()).await;
    check_series(&mut c, tmp.path(), &name.to_string()).await;
    check_hashes(&mut c, tmp.path(), &name.to_string()).await;
    server.stop().await;
}

async fn check_points(c: &mut Client, want: &[(String, Vec<f32>, pb::Metadata)], name: &str) {
    let mut ids: Vec<String> = want.iter().map(|w| w.0.clone()).collect();
    ids.extend(["noise-0".to_string(), "s2-m3".to_string()]);
    let got = c
        .get(pb::GetRequest {
            collection: "images".into(),
            ids,
        })
        .await
        .expect("get")
        .into_inner()
        .points;
    assert_eq!(got.len(), want.len(), "{name}: deleted points came back");
    for (id, vector, meta) in want {
        let p = got
            .iter()
            .find(|p| &p.id == id)
            .unwrap_or_else(|| panic!("{name}: {id} missing"));
        assert_eq!(p.metadata.as_ref(), Some(meta), "{name}: {id}");
        for (a, b) in p.vector.iter().zip(vector) {
            assert!((a - b).abs() < 1e-6, "{name}: {id}: {a} vs {b}");
        }
    }
}

/// The bare axis of series 1 finds its members nearest first; the replaced
/// `s1-m0` (offset 0.1 + 0.27) is the farthest of them.
async fn check_search(c: &mut Client, name: &str) {
    let mut q = vec![0.0; DIM];
    q[1] = 1.0;
    let r = c
        .search(search_req("images", vec![vector_query(q)], 4))
        .await
        .expect("search")
        .into_inner();
    let hits: Vec<&str> = r.results[0].hits.iter().map(|h| h.id.as_str()).collect();
    assert_eq!(hits, ["s1-m1", "s1-m2", "s1-m3", "s1-m0"], "{name}");
    let h = &r.results[0].hits[3];
    assert_eq!(
        h.metadata.as_ref().map(|m| m.series_label.as_str()),
        Some("S-0042")
    );
}

/// The stored series state reads back as the three planted series, and the
/// server's triage finds a known member in its stored series.
async fn check_series(c: &mut Client, data_dir: &Path, name: &str) {
    let state = StateStore::new(data_dir.join("series"))
        .load("images")
        .unwrap_or_else(|e| panic!("{name}: {e}"))
        .unwrap_or_else(|| panic!("{name}: no series state"));
    assert_eq!(state.image_collection, "images", "{name}");
    let groups: BTreeSet<BTreeSet<String>> =
        state.series.iter().map(|s| s.media_ids.clone()).collect();
    let planted: BTreeSet<BTreeSet<String>> = [
        vec!["s0-m0", "s0-m1", "s0-m2", "s0-m3", "s0-m4"],
        vec!["s1-m0", "s1-m1", "s1-m2", "s1-m3"],
        vec!["s2-m0", "s2-m1", "s2-m2"],
    ]
    .into_iter()
    .map(|g| g.into_iter().map(|id| format!("sha1-{id}")).collect())
    .collect();
    assert_eq!(groups, planted, "{name}");
    let s2 = state
        .series
        .iter()
        .find(|s| s.media_ids.contains("sha1-s2-m0"))
        .expect("series of s2");
    assert!(s2.series_id.starts_with("ser-"), "{name}: {}", s2.series_id);
    if decision_log(data_dir).is_some() {
        let book = DecisionStore::new(data_dir.join("series"))
            .load("images")
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let labels: Vec<&str> = book.decisions().iter().map(|d| d.label.as_str()).collect();
        assert_eq!(labels, ["S-0007"], "{name}");
        let s0 = state
            .series
            .iter()
            .find(|s| s.media_ids.contains("sha1-s0-m0"))
            .expect("series of s0");
        assert_eq!(s0.review.label, "S-0007", "{name}");
    }

    let item = pb::TriageItem {
        id: "seized-1".into(),
        vector: member(2, 1),
        ..Default::default()
    };
    let mut st = c
        .triage(tokio_stream::iter([pb::TriageRequest {
            image_collection: "images".into(),
            items: vec![item],
            ..Default::default()
        }]))
        .await
        .expect("triage")
        .into_inner();
    let mut verdicts = Vec::new();
    while let Some(m) = st.message().await.expect("triage message") {
        verdicts.extend(m.results);
    }
    assert_eq!(verdicts.len(), 1, "{name}");
    let v = &verdicts[0];
    assert_eq!(v.verdict, pb::Verdict::Known as i32, "{name}: {v:?}");
    assert_eq!(v.nearest_media_id, "sha1-s2-m1", "{name}");
    assert_eq!(v.series_id, s2.series_id, "{name}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fixture_opens_with_its_points_and_series() {
    for f in fixtures() {
        check_fixture(&f).await;
    }
}

/// The version of each stored format a fixture's files carry.
fn versions_in(fixture: &Path) -> Vec<(Format, u32)> {
    let coll = fixture.join("collections/images");
    let seg = std::fs::read_dir(&coll)
        .expect("collection dir")
        .map(|e| e.expect("entry").path())
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("seg-"))
        })
        .expect("a segment");
    let wal = std::fs::read_dir(&coll)
        .expect("collection dir")
        .map(|e| e.expect("entry").path())
        .find(|p| p.extension().is_some_and(|x| x == "log"))
        .expect("a log file");
    let header = |p: PathBuf| {
        let b = std::fs::read(&p).expect("file");
        u32::from_le_bytes(b[8..12].try_into().expect("4 bytes"))
    };
    let json = |p: PathBuf| -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(p).expect("json")).expect("parse")
    };
    let number = |v: serde_json::Value| v["format"].as_u64().expect("format") as u32;
    let series = json(fixture.join("series/images.json"))["format"]
        .as_str()
        .and_then(|f| f.strip_prefix("vidx-series/"))
        .and_then(|n| n.parse().ok())
        .expect("series format");
    let codes = seg.join("codes.bin");
    let codes = codes.exists().then(|| (versions::CODES, header(codes)));
    let log = decision_log(fixture).map(|log| (versions::DECISIONS, header(log)));
    let hashes = hash_segment(fixture).into_iter().flat_map(|seg| {
        [
            (versions::HASHES, header(seg.join("bits.bin"))),
            (versions::HASHES, header(seg.join("mih.bin"))),
        ]
    });
    let set = fixture.join("hashsets/known");
    let hashset = set.exists().then(|| {
        let part = std::fs::read_dir(&set)
            .expect("hash set dir")
            .map(|e| e.expect("entry").path())
            .find(|p| p.extension().is_some_and(|x| x == "bin"))
            .expect("a hash set part");
        [
            (versions::HASHSET, number(json(set.join("set.json")))),
            (versions::HASHSET, header(part)),
        ]
    });
    [
        (versions::SEALED, header(seg.join("vectors.bin"))),
        (versions::GRAPH, header(seg.join("graph.bin"))),
        (versions::WAL, header(wal)),
        (versions::MANIFEST, number(json(coll.join("manifest.json")))),
        (versions::CONFIG, number(json(coll.join("collection.json")))),
        (versions::SERIES, series),
    ]
    .into_iter()
    .chain(codes)
    .chain(log)
    .chain(hashes)
    .chain(hashset.into_iter().flatten())
    .collect()
}

/// The sealed segment of a fixture's `pdq` collection, if it has one.
fn hash_segment(fixture: &Path) -> Option<PathBuf> {
    let seg = fixture.join("collections/pdq/seg-00000001");
    seg.join("bits.bin").exists().then_some(seg)
}

#[test]
fn every_current_version_has_a_fixture() {
    let mut found: Vec<(Format, u32)> = fixtures().iter().flat_map(|f| versions_in(f)).collect();
    found.extend(snapshot_fixtures().iter().map(|s| snapshot_version(s)));
    for format in versions::ALL {
        assert!(
            found.contains(&(format, format.current)),
            "{} version {} is written today but no fixture under tests/data/formats \
             holds it: make one (see this file's doc)",
            format.name,
            format.current
        );
        for (f, v) in &found {
            if f == &format {
                assert!(
                    (format.oldest..=format.current).contains(v),
                    "a fixture holds {} version {v}, outside what vidx reads ({}..={}); \
                     delete that fixture only if dropping the version was deliberate",
                    format.name,
                    format.oldest,
                    format.current
                );
            }
        }
    }
}

/// Sets the version of `format` in the fixture copy `dir` to 99, as a newer
/// vidx would write it (envelope header checksums kept valid); returns the
/// file changed.
fn bump_version(dir: &Path, format: Format) -> PathBuf {
    let coll = dir.join("collections/images");
    let seg = coll.join("seg-00000001");
    let path = match format.name {
        n if n == versions::SEALED.name => seg.join("vectors.bin"),
        n if n == versions::GRAPH.name => seg.join("graph.bin"),
        n if n == versions::CODES.name => seg.join("codes.bin"),
        n if n == versions::WAL.name => coll.join("wal-00000000000000000007.log"),
        n if n == versions::MANIFEST.name => coll.join("manifest.json"),
        n if n == versions::CONFIG.name => coll.join("collection.json"),
        n if n == versions::DECISIONS.name => dir.join("series/images.decisions.log"),
        n if n == versions::HASHES.name => dir.join("collections/pdq/seg-00000001/bits.bin"),
        n if n == versions::HASHSET.name => dir.join("hashsets/known/set.json"),
        _ => dir.join("series/images.json"),
    };
    let mut b = std::fs::read(&path).expect("fixture file");
    if path.extension().is_some_and(|x| x == "json") {
        let text = String::from_utf8(b).expect("utf-8");
        let bumped = text
            .replacen("\"format\": 1,", "\"format\": 99,", 1)
            .replacen("\"vidx-series/1\"", "\"vidx-series/99\"", 1);
        assert_ne!(bumped, text, "{}", path.display());
        b = bumped.into_bytes();
    } else {
        b[8..12].copy_from_slice(&99u32.to_le_bytes());
        if format != versions::WAL && format != versions::DECISIONS {
            let crc = crc32c::crc32c(&b[..60]);
            b[60..64].copy_from_slice(&crc.to_le_bytes());
        }
    }
    std::fs::write(&path, b).expect("write");
    path
}

/// A snapshot from a newer vidx is refused by verify (and so by restore),
/// naming its manifest and both versions.
fn newer_snapshot_is_refused() {
    let tmp = tempfile::tempdir().expect("tempdir");
    copy_dir(&snapshot_fixtures()[0], tmp.path());
    let mut m = vidx::storage::snapshot::SnapshotManifest::load(tmp.path()).expect("manifest");
    m.format = 99;
    m.store(tmp.path()).expect("store");
    let e = vidx::storage::snapshot::verify(tmp.path()).expect_err("refused");
    assert!(
        matches!(e, vidx::error::Error::FailedPrecondition(_)),
        "{e}"
    );
    let msg = e.to_string();
    assert!(
        msg.contains("snapshot.json")
            && msg.contains("snapshot manifest format version 99 was written by a newer vidx"),
        "{msg}"
    );
}

/// A hash set from a newer vidx keeps the server from starting (without its
/// known hashes it would triage known material as new): opening the sets
/// fails, naming the file and both versions.
fn newer_hash_set_is_refused(all: &[PathBuf]) {
    let fixture = all
        .iter()
        .find(|f| f.join("hashsets/known").exists())
        .expect("a fixture with a hash set");
    let tmp = tempfile::tempdir().expect("tempdir");
    copy_dir(fixture, tmp.path());
    let file = bump_version(tmp.path(), versions::HASHSET);
    let e = vidx::collection::hashsets::HashSets::open(tmp.path())
        .err()
        .expect("refused");
    assert!(
        matches!(e, vidx::error::Error::FailedPrecondition(_)),
        "{e}"
    );
    let want = format!(
        "{}: hash set file format version 99 was written by a newer vidx; this vidx reads version 1",
        file.display()
    );
    assert!(e.to_string().contains(&want), "{e}\nwanted: {want}");
}

/// A file of every format from a newer vidx is refused, and the message
/// names the file and both versions: the collection's files make it
/// unavailable (DATA_LOSS on every request, the reason attached), the series
/// state makes triage FAILED_PRECONDITION.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn newer_versions_are_refused_naming_file_and_versions() {
    let all = fixtures();
    for format in versions::ALL {
        if format == versions::SNAPSHOT {
            newer_snapshot_is_refused();
            continue;
        }
        if format == versions::HASHSET {
            newer_hash_set_is_refused(&all);
            continue;
        }
        // The first fixture that has a file of this format.
        let fixture = all
            .iter()
            .find(|f| versions_in(f).iter().any(|(x, _)| *x == format))
            .expect("a fixture of every format");
        let tmp = tempfile::tempdir().expect("tempdir");
        copy_dir(fixture, tmp.path());
        let file = bump_version(tmp.path(), format);
        let server = TestServer::start_in(tmp.path(), Default::default()).await;
        let mut c = server.client().await;
        let status = if format == versions::DECISIONS {
            let first = c
                .list_series(pb::ListSeriesRequest {
                    image_collection: "images".into(),
                    ..Default::default()
                })
                .await
                .expect("list")
                .into_inner()
                .series[0]
                .series_id
                .clone();
            c.get_series(pb::GetSeriesRequest {
                image_collection: "images".into(),
                series_id: first,
            })
            .await
            .expect_err("refused")
        } else if format == versions::SERIES {
            let req = pb::TriageRequest {
                image_collection: "images".into(),
                items: vec![pb::TriageItem {
                    id: "x".into(),
                    vector: member(0, 0),
                    ..Default::default()
                }],
                ..Default::default()
            };
            match c.triage(tokio_stream::iter([req])).await {
                Err(s) => s,
                Ok(r) => r.into_inner().message().await.expect_err("refused"),
            }
        } else {
            let name = if format == versions::HASHES {
                "pdq"
            } else {
                "images"
            };
            c.describe_collection(pb::DescribeCollectionRequest { name: name.into() })
                .await
                .expect_err("refused")
        };
        let want_code = if format == versions::SERIES || format == versions::DECISIONS {
            tonic::Code::FailedPrecondition
        } else {
            tonic::Code::DataLoss
        };
        let msg = status.message();
        assert_eq!(status.code(), want_code, "{}: {msg}", format.name);
        let reads = if format.oldest == format.current {
            format!("version {}", format.current)
        } else {
            format!("versions {} to {}", format.oldest, format.current)
        };
        let want = format!(
            "{}: {} format version 99 was written by a newer vidx; this vidx reads {reads}",
            file.display(),
            format.name,
        );
        assert!(msg.contains(&want), "{msg}\nwanted: {want}");
        server.stop().await;
    }
}

/// Builds a fixture of today's formats in `target/stored-format-fixture` and
/// checks it like the committed ones; run by hand when a version changes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "writes a new fixture; see the module doc"]
async fn write_fixture() {
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/stored-format-fixture");
    if out.exists() {
        std::fs::remove_dir_all(&out).expect("clear");
    }
    build_fixture(&out).await;
    check_fixture(&out).await;
    // The lock file of the server that wrote it is not part of the format.
    std::fs::remove_file(out.join(vidx::storage::lock::LOCK_FILE)).expect("remove lock file");
    eprintln!("wrote {}", out.display());
}

/// Every committed snapshot restores (checksums and all) into a data
/// directory holding the fixture's points, search answers and series.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_fixtures_restore_with_their_points_and_series() {
    let snaps = snapshot_fixtures();
    assert!(
        !snaps.is_empty(),
        "no snapshot fixture under tests/data/snapshots"
    );
    for snap in snaps {
        let data = tempfile::tempdir().expect("tempdir");
        let m = vidx::storage::snapshot::verify(&snap)
            .unwrap_or_else(|e| panic!("{}: {e}", snap.display()));
        assert_eq!(m.collection, "images");
        let keep = |_: &str, b: Vec<u8>| Ok(b);
        vidx::collection::snapshot::restore(&snap, &m, data.path(), "images", &keep)
            .unwrap_or_else(|e| panic!("{}: {e}", snap.display()));
        std::fs::remove_file(data.path().join(vidx::storage::lock::LOCK_FILE)).expect("lock");
        check_fixture(data.path()).await;
    }
}

/// Snapshots the `images` collection of the first format fixture into
/// `target/stored-snapshot-fixture`; run by hand when the snapshot format
/// changes (see the module doc).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "writes a new snapshot fixture; see the module doc"]
async fn write_snapshot_fixture() {
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/stored-snapshot-fixture");
    if out.exists() {
        std::fs::remove_dir_all(&out).expect("clear");
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    copy_dir(&fixtures()[0], tmp.path());
    let server = TestServer::start_in(tmp.path(), Default::default()).await;
    let url = format!("http://{}", server.addr);
    let o = out.to_str().expect("utf-8 path").to_string();
    tokio::task::spawn_blocking(move || {
        crate::support::process::run(&[
            "snapshot",
            "create",
            "--server",
            &url,
            "--collection",
            "images",
            "--out",
            &o,
        ])
    })
    .await
    .expect("snapshot");
    server.stop().await;
    eprintln!("wrote {}", out.display());
}
