//! Parser robustness: valid files of every stored kind (WAL, the files of a
//! sealed segment, the manifest) and `.npy` matrices, mutated at random
//! (bytes flipped, overwritten with telling values, cut, spliced; JSON
//! values replaced), must give a clean error or a correct value, never a
//! panic. proptest shrinks a failure to a small mutation.
//!
//! `VIDX_PROPTEST_CASES` sets the cases per target (default 1000: a few
//! thousand in CI); `scripts/fuzz-parsers.sh` runs many more.

use std::path::Path;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use vidx::collection::StorageOptions;
use vidx::collection::config::{Config as CollectionConfig, Kind};
use vidx::collection::registry::Registry;
use vidx::index::distance::Metric;
use vidx::index::f16vec::VectorStorage;
use vidx::index::quant::Quantization;
use vidx::pb;
use vidx::segment::mutable::{MutableSegment, Prepared};
use vidx::segment::sealed::{Layout, SealedSegment};
use vidx::storage::manifest::Manifest;
use vidx::storage::wal::{SyncPolicy, Wal, WalRecord};

const DIM: usize = 4;

fn cases(default: u32) -> u32 {
    std::env::var("VIDX_PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn runner(n: u32) -> TestRunner {
    TestRunner::new(Config {
        cases: cases(n),
        failure_persistence: None,
        ..Config::default()
    })
}

/// One change to a file's bytes.
#[derive(Clone, Debug)]
enum Mutation {
    /// XOR a byte (position as a fraction of the length).
    Flip(f64, u8),
    /// Overwrite 4 or 8 bytes with a value a length or count field might hold.
    Field(f64, u64, bool),
    Truncate(f64),
    /// Insert bytes.
    Insert(f64, Vec<u8>),
    /// Remove a run of bytes.
    Remove(f64, usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let telling = prop_oneof![
        Just(0u64),
        Just(1),
        Just(u32::MAX as u64),
        Just(u64::MAX),
        Just(1 << 31),
        0u64..4096,
        any::<u64>(),
    ];
    prop_oneof![
        4 => (0.0..1.0f64, 1u8..=255).prop_map(|(p, x)| Mutation::Flip(p, x)),
        3 => (0.0..1.0f64, telling, any::<bool>()).prop_map(|(p, v, w)| Mutation::Field(p, v, w)),
        1 => (0.0..1.0f64).prop_map(Mutation::Truncate),
        1 => (0.0..1.0f64, prop::collection::vec(any::<u8>(), 1..16))
            .prop_map(|(p, b)| Mutation::Insert(p, b)),
        1 => (0.0..1.0f64, 1usize..64).prop_map(|(p, n)| Mutation::Remove(p, n)),
    ]
}

fn mutations() -> impl Strategy<Value = Vec<Mutation>> {
    prop::collection::vec(mutation(), 1..4)
}

fn at(p: f64, len: usize) -> usize {
    ((p * len as f64) as usize).min(len.saturating_sub(1))
}

fn apply(bytes: &mut Vec<u8>, muts: &[Mutation]) {
    for m in muts {
        let len = bytes.len();
        if len == 0 {
            return;
        }
        match m {
            Mutation::Flip(p, x) => bytes[at(*p, len)] ^= x,
            Mutation::Field(p, v, wide) => {
                let i = at(*p, len);
                let b = if *wide {
                    v.to_le_bytes().to_vec()
                } else {
                    (*v as u32).to_le_bytes().to_vec()
                };
                for (k, x) in b.into_iter().enumerate() {
                    if let Some(slot) = bytes.get_mut(i + k) {
                        *slot = x;
                    }
                }
            }
            Mutation::Truncate(p) => bytes.truncate(at(*p, len)),
            Mutation::Insert(p, b) => {
                let i = at(*p, len);
                bytes.splice(i..i, b.iter().copied());
            }
            Mutation::Remove(p, n) => {
                let i = at(*p, len);
                bytes.drain(i..(i + n).min(len));
            }
        }
    }
}

fn records() -> Vec<WalRecord> {
    (0..6u64)
        .map(|i| WalRecord {
            seq: 0,
            upserts: (0..i % 3 + 1)
                .map(|j| pb::Point {
                    id: format!("p{i}-{j}"),
                    vector: vec![i as f32, j as f32, 1.0, -1.0],
                    metadata: Some(pb::Metadata {
                        media_id: format!("m{i}"),
                        tags: vec!["t".into()],
                        ..Default::default()
                    }),
                    ..Default::default()
                })
                .collect(),
            deletes: if i % 2 == 1 {
                vec![format!("p{}-0", i - 1)]
            } else {
                vec![]
            },
        })
        .collect()
}

#[test]
fn mutated_wal_files_give_a_clean_error_or_a_prefix_of_the_records() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("wal-1.log");
    let mut w = Wal::create(&path, 1, SyncPolicy::Never).unwrap();
    let mut written = Vec::new();
    for r in records() {
        let seq = w.append(r.clone()).unwrap();
        written.push(WalRecord { seq, ..r });
    }
    drop(w);
    let good = std::fs::read(&path).unwrap();
    runner(1000)
        .run(&(mutations(), any::<bool>()), |(muts, newest)| {
            let mut bytes = good.clone();
            apply(&mut bytes, &muts);
            std::fs::write(&path, &bytes).unwrap();
            if let Ok((_, rec)) = Wal::open(&path, 1, SyncPolicy::Never, newest) {
                // Whatever is read back is what was written, in order.
                prop_assert!(rec.records.len() <= written.len());
                prop_assert_eq!(&rec.records[..], &written[..rec.records.len()]);
                prop_assert!(newest || rec.dropped_bytes == 0);
            }
            Ok(())
        })
        .unwrap();
}

fn points() -> Vec<Prepared> {
    (0..40)
        .map(|i| Prepared {
            id: format!("id-{i:03}"),
            vector: vec![i as f32, (i % 7) as f32, 1.0, -(i as f32) / 3.0],
            metadata: pb::Metadata {
                media_id: format!("m{}", i / 2),
                country: "DE".into(),
                captured_at: i as i64,
                tags: (0..i % 3).map(|t| format!("t{t}")).collect(),
                ..Default::default()
            },
            ..Default::default()
        })
        .collect()
}

/// A sealed segment's files, by name.
fn sealed_files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let seg = MutableSegment::new(DIM, Metric::L2, 8, 32);
    let pts = points();
    seg.index(0, &pts);
    seg.commit(0, pts);
    assert!(seg.delete("id-005"));
    // SQ8: codes.bin (its codebook and codes) is among the files mutated.
    seg.write_sealed(
        dir,
        Layout {
            quant: Quantization::Sq8,
            storage: VectorStorage::F32,
        },
    )
    .unwrap();
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let name = e.file_name().to_string_lossy().into_owned();
            (name, std::fs::read(e.path()).unwrap())
        })
        .collect();
    files.sort();
    files
}

/// Everything a query or a read does with a segment; errors are fine.
fn exercise(s: &SealedSegment) {
    let _ = s.search(&[3.0, 3.0, 1.0, -1.0], 5, 16, None, None);
    let _ = s.exact_search(&[3.0, 3.0, 1.0, -1.0], 5, None, None);
    for i in 0..s.len() {
        let _ = s.point_at(i);
    }
    for i in [0, 5, 17, 39] {
        let _ = s.lookup(&format!("id-{i:03}"));
    }
    let _ = s.meta_index();
}

#[test]
fn mutated_segment_files_give_a_clean_error_or_the_points() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    let files = sealed_files(&src);
    let original = SealedSegment::open(1, &src, DIM, Metric::L2, "tomb-0.bin").unwrap();
    let truth: Vec<pb::Point> = (0..original.len())
        .map(|i| original.point_at(i).unwrap())
        .collect();
    let dir = tmp.path().join("seg");
    let nfiles = files.len();
    runner(1000)
        .run(&(0..nfiles, mutations()), |(which, muts)| {
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            for (i, (name, bytes)) in files.iter().enumerate() {
                let mut b = bytes.clone();
                if i == which {
                    apply(&mut b, &muts);
                }
                std::fs::write(dir.join(name), b).unwrap();
            }
            let Ok(s) = SealedSegment::open(1, &dir, DIM, Metric::L2, "tomb-0.bin") else {
                return Ok(());
            };
            // Opened: reads and searches never panic, checksums or not.
            exercise(&s);
            if s.verify().is_ok() {
                // Every checksum holds: the points are the ones written.
                prop_assert_eq!(s.len(), truth.len());
                for (i, p) in truth.iter().enumerate() {
                    prop_assert_eq!(&s.point_at(i).unwrap(), p);
                }
            }
            Ok(())
        })
        .unwrap();
}

/// A JSON value with one of its leaves or arrays changed.
fn mutate_json(v: &mut serde_json::Value, path: &[usize], with: &serde_json::Value) {
    use serde_json::Value;
    match v {
        Value::Object(m) if !m.is_empty() => {
            let k = m
                .keys()
                .nth(path.first().copied().unwrap_or(0) % m.len())
                .cloned();
            if let Some(k) = k {
                match path.get(1) {
                    Some(_) => mutate_json(m.get_mut(&k).unwrap(), &path[1..], with),
                    None => {
                        m.insert(k, with.clone());
                    }
                }
            }
        }
        Value::Array(a) if !a.is_empty() => {
            let i = path.first().copied().unwrap_or(0) % a.len();
            match path.get(1) {
                Some(_) => mutate_json(&mut a[i], &path[1..], with),
                None if with.is_null() => {
                    a.remove(i);
                }
                None => {
                    let dup = a[i].clone();
                    a.push(dup);
                }
            }
        }
        _ => *v = with.clone(),
    }
}

fn json_value() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::json;
    prop_oneof![
        Just(json!(null)),
        Just(json!(0)),
        Just(json!(-1)),
        Just(json!(u64::MAX)),
        Just(json!(1e300)),
        Just(json!("tomb-999.bin")),
        Just(json!("../../etc")),
        Just(json!([])),
        Just(json!({})),
        any::<u32>().prop_map(|n| json!(n)),
    ]
}

/// A collection with two sealed segments (one with deletes) and a log tail.
fn collection_files(root: &Path) -> std::path::PathBuf {
    let opts = StorageOptions {
        verify_on_open: false,
        seal_after: None,
        ..Default::default()
    };
    let r = Registry::open(root, opts).unwrap();
    let c = r
        .create(CollectionConfig::new(
            "c",
            DIM as u32,
            Metric::L2,
            Kind::Image,
        ))
        .unwrap();
    let pts = |range: std::ops::Range<usize>| -> Vec<pb::Point> {
        points()[range]
            .iter()
            .map(|p| pb::Point {
                id: p.id.clone(),
                vector: p.vector.clone(),
                metadata: Some(p.metadata.clone()),
                ..Default::default()
            })
            .collect()
    };
    c.upsert(pts(0..20)).unwrap();
    c.flush().unwrap();
    c.upsert(pts(20..40)).unwrap();
    c.delete(vec!["id-003".into()]).unwrap();
    c.flush().unwrap();
    c.upsert(pts(0..3)).unwrap();
    drop(c);
    drop(r);
    root.join("collections/c")
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

#[test]
fn mutated_manifests_give_a_clean_error_or_a_collection_that_opens() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = collection_files(&tmp.path().join("good"));
    let good: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap();
    let opts = StorageOptions {
        verify_on_open: false,
        seal_after: None,
        ..Default::default()
    };
    let raw = (mutations()).prop_map(Err);
    let structured = (prop::collection::vec(0usize..8, 1..4), json_value()).prop_map(Ok);
    runner(300)
        .run(&prop_oneof![raw, structured], |m| {
            let case = tmp.path().join("case");
            let _ = std::fs::remove_dir_all(&case);
            copy_dir(&dir, &case);
            let bytes = match &m {
                Err(muts) => {
                    let mut b = serde_json::to_vec_pretty(&good).unwrap();
                    apply(&mut b, muts);
                    b
                }
                Ok((path, with)) => {
                    let mut v = good.clone();
                    mutate_json(&mut v, path, with);
                    serde_json::to_vec(&v).unwrap()
                }
            };
            std::fs::write(case.join("manifest.json"), &bytes).unwrap();
            if Manifest::load(&case).is_ok()
                && let Ok(c) = vidx::collection::Collection::open(&case, opts.clone())
            {
                // It opened: reads work (or fail cleanly).
                let _ = c.get(&["id-001".into(), "id-030".into()]);
                c.close();
            }
            Ok(())
        })
        .unwrap();
}

#[test]
fn mutated_npy_files_give_a_clean_error_or_a_consistent_matrix() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("m.npy");
    let data: Vec<f32> = (0..60).map(|i| i as f32 * 0.5).collect();
    vidx::io::npy::write_matrix(&path, 15, 4, &data, vidx::io::npy::Dtype::F32).unwrap();
    let good = std::fs::read(&path).unwrap();
    runner(1000)
        .run(&mutations(), |muts| {
            let mut bytes = good.clone();
            apply(&mut bytes, &muts);
            if let Ok(m) = vidx::io::npy::parse_matrix(&bytes, "m.npy") {
                prop_assert_eq!(m.rows * m.cols, m.data.len());
                if m.rows > 0 {
                    let _ = m.row(m.rows - 1);
                }
            }
            Ok(())
        })
        .unwrap();
}
