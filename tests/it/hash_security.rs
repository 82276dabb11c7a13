//! Known material under the gate, end to end over TLS with tokens and the
//! audit log on: who may import, read and drop exact-hash sets, and that a
//! restricted PDQ point stays with its agency through triage, search and
//! reads (the deconfliction notice instead), with every call audited.

use std::path::Path;

use tonic::Code;
use vidx::api::access::Role;
use vidx::api::client::Client;
use vidx::pb;

use crate::support::secure::{self, Pki, make_token};

fn code<T>(r: Result<T, tonic::Status>) -> (Code, String) {
    match r {
        Ok(_) => (Code::Ok, String::new()),
        Err(s) => (s.code(), s.message().to_string()),
    }
}

async fn import(c: &mut Client, set: &str, sha1: u8) -> Result<u64, tonic::Status> {
    c.import_hashes(tokio_stream::iter(vec![pb::ImportHashesRequest {
        set: set.into(),
        entries: vec![pb::HashEntry {
            sha1: vec![sha1; 20],
            category: "1".into(),
            source: "test".into(),
            ..Default::default()
        }],
        ..Default::default()
    }]))
    .await
    .map(|r| r.into_inner().entries)
}

/// A 256-bit hash of a seeded pattern, and the same with `flips` bits flipped.
fn pdq(seed: u8) -> Vec<u8> {
    (0..32u8)
        .map(|i| i.wrapping_mul(37).wrapping_add(seed.wrapping_mul(101)) ^ seed)
        .collect()
}

fn flipped(bits: &[u8], flips: usize) -> Vec<u8> {
    let mut b = bits.to_vec();
    for i in 0..flips {
        b[i * 3 % 32] ^= 1 << (i % 8);
    }
    b
}

fn hamming(a: &[u8], b: &[u8]) -> u32 {
    a.iter().zip(b).map(|(x, y)| (x ^ y).count_ones()).sum()
}

fn pdq_point(id: &str, upload: &str, bits: Vec<u8>) -> pb::Point {
    pb::Point {
        id: id.into(),
        bits,
        quality: 100,
        metadata: Some(pb::Metadata {
            media_id: id.into(),
            upload_id: upload.into(),
            tags: vec!["category:1".into()],
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// A hash-only triage of `items` (id, PDQ) against the `pdq` collection:
/// the verdicts by id, or the status.
async fn triage(
    c: &mut Client,
    items: &[(&str, Vec<u8>)],
    store: bool,
) -> Result<Vec<pb::TriageResult>, tonic::Status> {
    let first = pb::TriageRequest {
        hash_collection: "pdq".into(),
        store,
        items: items
            .iter()
            .map(|(id, bits)| pb::TriageItem {
                id: id.to_string(),
                pdq: bits.clone(),
                pdq_quality: 100,
                metadata: Some(pb::Metadata {
                    upload_id: "seizure-1".into(),
                    ..Default::default()
                }),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    };
    let mut st = c
        .triage(tokio_stream::iter(vec![first]))
        .await?
        .into_inner();
    let mut out = Vec::new();
    while let Some(r) = st.message().await? {
        out.extend(r.results);
    }
    Ok(out)
}

fn bits_search(bits: &[u8]) -> pb::SearchRequest {
    pb::SearchRequest {
        collection: "pdq".into(),
        queries: vec![pb::Query {
            query: Some(pb::query::Query::Bits(bits.to_vec())),
        }],
        k: 5,
        max_distance: Some(31.0),
        ..Default::default()
    }
}

/// The audit records (as JSON) of `rpc`, in order.
fn audited(data_dir: &Path, rpc: &str) -> Vec<serde_json::Value> {
    let dir = data_dir.join("audit");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("audit-")
        })
        .collect();
    files.sort();
    files
        .iter()
        .flat_map(|f| {
            let text = std::fs::read_to_string(f).unwrap();
            text.lines()
                .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
                .collect::<Vec<_>>()
        })
        .filter(|r| r["rpc"] == rpc)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hash_sets_take_roles_and_owners_and_audit_every_call() {
    let pki = Pki::new("test CA");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (hub, _) = make_token(dir, "HUB", Role::Admin);
    let (admin_a, _) = make_token(dir, "DE-BKA", Role::Admin);
    let (contrib_a, _) = make_token(dir, "DE-BKA", Role::Contributor);
    let (contrib_b, _) = make_token(dir, "FR-OCRVP", Role::Contributor);
    let (reader_b, _) = make_token(dir, "FR-OCRVP", Role::Reader);
    let server = secure::start_secure(&pki, dir, false).await;
    let connect = |t: String| {
        let (server, pki) = (&server, &pki);
        async move { secure::client(server, pki, Some(&t), None).await.unwrap() }
    };
    let mut hub = connect(hub).await;
    let mut admin_a = connect(admin_a).await;
    let mut contrib_a = connect(contrib_a).await;
    let mut contrib_b = connect(contrib_b).await;
    let mut reader_b = connect(reader_b).await;

    // A reader may not import: the gate refuses it, naming role and RPC.
    let (c, m) = code(import(&mut reader_b, "de-known", 1).await);
    assert_eq!(c, Code::PermissionDenied, "{m}");
    assert!(m.contains("reader") && m.contains("ImportHashes"), "{m}");
    // A contributor may not create a set; an admin may (its agency owns it).
    let (c, m) = code(import(&mut contrib_a, "de-known", 1).await);
    assert_eq!(c, Code::PermissionDenied, "{m}");
    assert!(m.contains("create hash set"), "{m}");
    assert_eq!(import(&mut admin_a, "de-known", 1).await.unwrap(), 1);
    // The owner's contributor adds to it; another agency's may not.
    assert_eq!(import(&mut contrib_a, "de-known", 2).await.unwrap(), 2);
    let (c, m) = code(import(&mut contrib_b, "de-known", 3).await);
    assert_eq!(c, Code::PermissionDenied, "{m}");
    assert!(m.contains("belongs to agency DE-BKA"), "{m}");
    // An admin of any agency may.
    assert_eq!(import(&mut hub, "de-known", 3).await.unwrap(), 3);

    // Everyone reads: lookups, the list (with the owner), exports.
    let r = reader_b
        .lookup_hashes(pb::LookupHashesRequest {
            sets: Vec::new(),
            digests: vec![vec![2; 20], vec![9; 20]],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.matches.len(), 1);
    assert_eq!(r.matches[0].digest, 0);
    let l = reader_b
        .list_hash_sets(pb::ListHashSetsRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(l.sets.len(), 1);
    assert_eq!((l.sets[0].owner.as_str(), l.sets[0].entries), ("DE-BKA", 3));
    let mut ex = reader_b
        .export_hashes(pb::ExportHashesRequest {
            set: "de-known".into(),
            case_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    let mut exported = 0;
    while let Some(m) = ex.message().await.unwrap() {
        exported += m.entries.len();
    }
    assert_eq!(exported, 3);
    // Only an admin drops a set.
    for c in [&mut reader_b, &mut contrib_a] {
        let (code_, m) = code(
            c.drop_hash_set(pb::DropHashSetRequest {
                set: "de-known".into(),
            })
            .await,
        );
        assert_eq!(code_, Code::PermissionDenied, "{m}");
    }

    // Every call is in the audit log with what it asked and found.
    let imports = audited(dir, "ImportHashes");
    assert_eq!(imports.len(), 6, "{imports:?}");
    let ok: Vec<_> = imports.iter().filter(|r| r["status"] == "OK").collect();
    assert_eq!(ok.len(), 3);
    for r in &ok {
        assert_eq!(r["collection"], "de-known");
        assert_eq!(r["request"]["entries"], 1);
        assert_eq!(r["results"], 1);
    }
    assert_eq!(
        imports[1]["status"], "PERMISSION_DENIED",
        "the refused create of contributor A is recorded"
    );
    let lookups = audited(dir, "LookupHashes");
    assert_eq!(lookups.len(), 1);
    assert_eq!(lookups[0]["agency"], "FR-OCRVP");
    assert_eq!(lookups[0]["request"]["digests"], 2);
    assert_eq!(
        lookups[0]["ids"],
        serde_json::json!([format!("de-known:{}", hex::encode([2u8; 20]))])
    );
    assert_eq!(audited(dir, "ListHashSets")[0]["results"], 1);
    let exports = audited(dir, "ExportHashes");
    assert_eq!(
        (
            exports[0]["collection"].as_str(),
            exports[0]["results"].as_u64()
        ),
        (Some("de-known"), Some(3))
    );
    assert_eq!(audited(dir, "DropHashSet").len(), 2);
    hub.drop_hash_set(pb::DropHashSetRequest {
        set: "de-known".into(),
    })
    .await
    .unwrap();
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_restricted_pdq_point_never_reaches_another_agency() {
    let pki = Pki::new("test CA");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (hub, _) = make_token(dir, "HUB", Role::Admin);
    let (analyst_a, _) = make_token(dir, "DE-BKA", Role::Analyst);
    let (analyst_b, _) = make_token(dir, "FR-OCRVP", Role::Analyst);
    let (analyst_c, _) = make_token(dir, "NL-KLPD", Role::Analyst);
    let server = secure::start_secure(&pki, dir, false).await;
    let connect = |t: String| {
        let (server, pki) = (&server, &pki);
        async move { secure::client(server, pki, Some(&t), None).await.unwrap() }
    };
    let mut hub = connect(hub).await;
    let mut a = connect(analyst_a).await;
    let mut b = connect(analyst_b).await;
    let mut c = connect(analyst_c).await;
    hub.create_collection(pb::CreateCollectionRequest {
        name: "pdq".into(),
        dim: 256,
        metric: pb::Metric::Hamming as i32,
        kind: pb::Kind::PerceptualHash as i32,
        ..Default::default()
    })
    .await
    .unwrap();
    // A restricts its upload to itself and NL before storing it, with
    // deconfliction on; a second upload of A's is open to all.
    a.restrict_upload(pb::RestrictUploadRequest {
        upload_id: "A-SECRET".into(),
        shared_with: vec!["NL-KLPD".into()],
        deconfliction: true,
        ..Default::default()
    })
    .await
    .unwrap();
    let (secret, open) = (pdq(1), pdq(2));
    assert!(hamming(&secret, &open) > 60, "unrelated hashes");
    a.upsert(tokio_stream::iter(vec![pb::UpsertRequest {
        collection: "pdq".into(),
        points: vec![
            pdq_point("a-secret", "A-SECRET", secret.clone()),
            pdq_point("a-open", "A-OPEN", open.clone()),
        ],
    }]))
    .await
    .unwrap();
    let near_secret = flipped(&secret, 8);
    let near_open = flipped(&open, 8);
    assert_eq!(hamming(&near_secret, &secret), 8);

    // B's triage: the near-copy of A's restricted hash is NEW, never
    // matched to it; the open one is KNOWN by its perceptual hash.
    let items = [("x-1", near_secret.clone()), ("x-2", near_open.clone())];
    let r = triage(&mut b, &items, false).await.unwrap();
    let (x1, x2) = (&r[0], &r[1]);
    assert_eq!(x1.verdict, pb::Verdict::New as i32, "{x1:?}");
    assert!(
        x1.matched_key.is_empty() && x1.nearest_media_id.is_empty(),
        "{x1:?}"
    );
    assert!(!format!("{x1:?}").contains("a-secret"), "{x1:?}");
    assert_eq!(x2.verdict, pb::Verdict::Known as i32, "{x2:?}");
    assert_eq!(
        x2.evidence,
        pb::triage_result::Evidence::PerceptualHash as i32
    );
    assert_eq!(x2.matched_key, "a-open");
    // A itself, and NL it shares with, get the match.
    for cl in [&mut a, &mut c] {
        let r = triage(cl, &items[..1], false).await.unwrap();
        assert_eq!(r[0].verdict, pb::Verdict::Known as i32, "{:?}", r[0]);
        assert_eq!(r[0].matched_key, "a-secret");
        assert_eq!(
            r[0].evidence,
            pb::triage_result::Evidence::PerceptualHash as i32
        );
    }

    // B's search by hash: no hit of A's restricted point, but the notice
    // that DE-BKA holds matching restricted material; NL sees the hit.
    let r = b
        .search(bits_search(&near_secret))
        .await
        .unwrap()
        .into_inner();
    assert!(r.results[0].hits.is_empty(), "{:?}", r.results[0].hits);
    assert_eq!(
        r.results[0].restricted_matches_held_by,
        vec!["DE-BKA".to_string()]
    );
    let r = c
        .search(bits_search(&near_secret))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.results[0].hits[0].id, "a-secret");
    assert!(r.results[0].restricted_matches_held_by.is_empty());
    // By id, the point does not exist for B: a query, a read.
    let (code_, m) = code(
        b.search(pb::SearchRequest {
            collection: "pdq".into(),
            queries: vec![pb::Query {
                query: Some(pb::query::Query::PointId("a-secret".into())),
            }],
            k: 5,
            ..Default::default()
        })
        .await,
    );
    assert_eq!(code_, Code::NotFound, "{m}");
    let got = b
        .get(pb::GetRequest {
            collection: "pdq".into(),
            ids: vec!["a-secret".into(), "a-open".into()],
        })
        .await
        .unwrap()
        .into_inner();
    let ids: Vec<_> = got.points.iter().map(|p| p.id.as_str()).collect();
    assert_eq!(ids, vec!["a-open"]);
    // B storing its triage may not replace A's hash under A's id.
    let (code_, m) = code(triage(&mut b, &[("a-secret", near_open.clone())], true).await);
    assert_eq!(code_, Code::PermissionDenied, "{m}");
    // B's own triaged hash is stored as B's, and A's stay as they were
    // (read by A: even an admin of another agency does not see A's
    // restricted point).
    triage(&mut b, &[("b-1", near_open.clone())], true)
        .await
        .unwrap();
    let got = a
        .get(pb::GetRequest {
            collection: "pdq".into(),
            ids: vec!["a-secret".into(), "b-1".into()],
        })
        .await
        .unwrap()
        .into_inner();
    let agency = |p: &pb::Point| p.metadata.as_ref().unwrap().agency.clone();
    assert_eq!(got.points.len(), 2);
    assert_eq!(
        (got.points[0].id.as_str(), agency(&got.points[0]).as_str()),
        ("a-secret", "DE-BKA")
    );
    assert_eq!(got.points[0].bits, secret);
    assert_eq!(agency(&got.points[1]), "FR-OCRVP");

    // The triage records name what the verdicts pointed to: B's never A's
    // restricted point.
    let triages = audited(dir, "Triage");
    let of = |agency: &str| -> Vec<String> {
        triages
            .iter()
            .filter(|r| r["agency"] == agency && r["phase"].is_null())
            .flat_map(|r| r["ids"].as_array().cloned().unwrap_or_default())
            .map(|v| v.as_str().unwrap().to_string())
            .collect()
    };
    assert!(of("FR-OCRVP").contains(&"a-open".to_string()));
    assert!(!of("FR-OCRVP").contains(&"a-secret".to_string()));
    assert!(of("DE-BKA").contains(&"a-secret".to_string()));
    assert!(
        triages
            .iter()
            .all(|r| r["request"]["hash_collection"] == "pdq" && r["collection"] == "pdq"),
        "{triages:?}"
    );
    server.stop().await;
}
