//! Security end to end, over TLS on loopback with certificates made in the
//! test: credentials (tokens, client certificates), roles, ownership,
//! restricted uploads through every RPC, limits, the audit log and its
//! verification, and secrets kept out of logs.

use std::collections::HashSet;
use std::time::Duration;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tonic::Code;
use vidx::api::access::Role;
use vidx::api::client::Client;
use vidx::pb;

use crate::support::secure::{self, Pki, make_token};
use crate::support::{at_cosine, id_query, random_unit, search_req, vector_query};

const DIM: usize = 32;

async fn upsert(
    c: &mut Client,
    collection: &str,
    points: Vec<pb::Point>,
) -> Result<u64, tonic::Status> {
    c.upsert(tokio_stream::iter(vec![pb::UpsertRequest {
        collection: collection.into(),
        points,
    }]))
    .await
    .map(|r| r.into_inner().upserted)
}

fn create(name: &str, kind: pb::Kind) -> pb::CreateCollectionRequest {
    pb::CreateCollectionRequest {
        name: name.into(),
        dim: DIM as u32,
        metric: pb::Metric::Cosine as i32,
        kind: kind as i32,
        hnsw: None,
        quantization: pb::Quantization::Unspecified as i32,
        vector_storage: pb::VectorStorage::F32 as i32,
    }
}

fn pt(id: &str, upload: &str, country: &str, v: Vec<f32>) -> pb::Point {
    pb::Point {
        id: id.into(),
        vector: v,
        metadata: Some(pb::Metadata {
            media_id: id.split('#').next().unwrap_or(id).into(),
            upload_id: upload.into(),
            country: country.into(),
            uploaded_at: 1_600_000_000,
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn code<T>(r: Result<T, tonic::Status>) -> (Code, String) {
    match r {
        Ok(_) => (Code::Ok, String::new()),
        Err(s) => (s.code(), s.message().to_string()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn credentials_roles_and_ownership_over_tls() {
    let pki = Pki::new("test CA");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (admin, _) = make_token(dir, "HUB", Role::Admin);
    let (reader, _) = make_token(dir, "FR-OCRVP", Role::Reader);
    let (contrib_a, _) = make_token(dir, "DE-BKA", Role::Contributor);
    let (contrib_b, _) = make_token(dir, "FR-OCRVP", Role::Contributor);
    let (revoked, revoked_id) = make_token(dir, "DE-BKA", Role::Analyst);
    let store = vidx::api::tokens::TokenStore::open(dir).unwrap();
    store.revoke(&revoked_id).unwrap();
    let (expired, rec) = store
        .create(
            "DE-BKA",
            Role::Analyst,
            None,
            Some(vidx::api::tokens::now() - 10),
        )
        .unwrap();
    let (limited, _) = store
        .create(
            "DE-BKA",
            Role::Admin,
            Some(["faces".to_string()].into()),
            None,
        )
        .unwrap();
    drop(store);
    let server = secure::start_secure(&pki, dir, false).await;

    // No token, a revoked one, an expired one, a made-up one: UNAUTHENTICATED.
    let mut none = secure::client(&server, &pki, None, None).await.unwrap();
    let (c, m) = code(none.list_collections(pb::ListCollectionsRequest {}).await);
    assert_eq!(c, Code::Unauthenticated, "{m}");
    for (tok, want) in [
        (
            revoked.as_str(),
            format!("token {revoked_id} has been revoked"),
        ),
        (expired.as_str(), format!("token {} has expired", rec.id)),
        ("vidx_0000", "the bearer token is not valid".to_string()),
    ] {
        let mut cl = secure::client(&server, &pki, Some(tok), None)
            .await
            .unwrap();
        let (c, m) = code(cl.list_collections(pb::ListCollectionsRequest {}).await);
        assert_eq!(c, Code::Unauthenticated, "{m}");
        assert!(m.contains(&want), "{m}");
        assert!(!m.contains(tok), "the message repeats the token: {m}");
    }
    // Plain HTTP/2 to a TLS port fails.
    let plain = vidx::api::client::connect(
        &format!("http://127.0.0.1:{}", server.addr.port()),
        &Default::default(),
    )
    .await;
    if let Ok(mut p) = plain {
        assert!(
            p.list_collections(pb::ListCollectionsRequest {})
                .await
                .is_err()
        );
    }

    let mut admin = secure::client(&server, &pki, Some(&admin), None)
        .await
        .unwrap();
    admin
        .create_collection(create("images", pb::Kind::Image))
        .await
        .unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    // A reader may not write: PERMISSION_DENIED naming the role and the RPC.
    let mut reader = secure::client(&server, &pki, Some(&reader), None)
        .await
        .unwrap();
    let (c, m) = code(
        upsert(
            &mut reader,
            "images",
            vec![pt("r1", "U", "FR", random_unit(&mut rng, DIM))],
        )
        .await,
    );
    assert_eq!(c, Code::PermissionDenied, "{m}");
    assert!(m.contains("role reader") && m.contains("Upsert"), "{m}");
    let (c, m) = code(reader.create_collection(create("x", pb::Kind::Image)).await);
    assert_eq!(c, Code::PermissionDenied, "{m}");

    // A contributor stores its own points; their agency is its agency.
    let mut a = secure::client(&server, &pki, Some(&contrib_a), None)
        .await
        .unwrap();
    upsert(
        &mut a,
        "images",
        vec![pt("a1", "UA", "DE", random_unit(&mut rng, DIM))],
    )
    .await
    .unwrap();
    let got = reader
        .get(pb::GetRequest {
            collection: "images".into(),
            ids: vec!["a1".into()],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got.points[0].metadata.as_ref().unwrap().agency, "DE-BKA");
    // Naming another agency is refused.
    let mut other = pt("a2", "UA", "DE", random_unit(&mut rng, DIM));
    other.metadata.as_mut().unwrap().agency = "FR-OCRVP".into();
    let (c, m) = code(upsert(&mut a, "images", vec![other]).await);
    assert_eq!(c, Code::PermissionDenied, "{m}");
    assert!(m.contains("FR-OCRVP") && m.contains("DE-BKA"), "{m}");
    // Another agency may neither replace nor delete it; an admin may.
    let mut b = secure::client(&server, &pki, Some(&contrib_b), None)
        .await
        .unwrap();
    let (c, m) = code(
        upsert(
            &mut b,
            "images",
            vec![pt("a1", "UB", "FR", random_unit(&mut rng, DIM))],
        )
        .await,
    );
    assert_eq!(c, Code::PermissionDenied, "{m}");
    let (c, m) = code(
        b.delete(pb::DeleteRequest {
            collection: "images".into(),
            ids: vec!["a1".into()],
        })
        .await,
    );
    assert_eq!(c, Code::PermissionDenied, "{m}");
    assert!(m.contains("belongs to agency DE-BKA"), "{m}");
    // The series RPCs: UpdateMetadata is a contributor's write of its own
    // points, ReviewSeries an analyst's, the series reads a reader's.
    let update = |id: &str| pb::UpdateMetadataRequest {
        collection: "images".into(),
        ids: vec![id.into()],
        set: Some(pb::MetadataUpdate {
            case_id: Some("C-1".into()),
            ..Default::default()
        }),
    };
    let (c, m) = code(reader.update_metadata(update("a1")).await);
    assert_eq!(c, Code::PermissionDenied, "{m}");
    assert!(
        m.contains("role reader") && m.contains("UpdateMetadata"),
        "{m}"
    );
    let (c, m) = code(b.update_metadata(update("a1")).await);
    assert_eq!(c, Code::PermissionDenied, "{m}");
    assert!(m.contains("belongs to agency DE-BKA"), "{m}");
    a.update_metadata(update("a1")).await.unwrap();
    let (c, m) = code(
        a.review_series(pb::ReviewSeriesRequest {
            image_collection: "images".into(),
            reviewer: "x".into(),
            ..Default::default()
        })
        .await,
    );
    assert_eq!(c, Code::PermissionDenied, "{m}");
    assert!(
        m.contains("role contributor") && m.contains("ReviewSeries"),
        "{m}"
    );
    let (c, m) = code(
        reader
            .list_series(pb::ListSeriesRequest {
                image_collection: "images".into(),
                ..Default::default()
            })
            .await,
    );
    assert_eq!(c, Code::FailedPrecondition, "a reader reads series: {m}");
    // A token limited to some collections may not use others.
    let mut lim = secure::client(&server, &pki, Some(&limited), None)
        .await
        .unwrap();
    let (c, m) = code(
        lim.search(search_req("images", vec![id_query("a1")], 1))
            .await,
    );
    assert_eq!(c, Code::PermissionDenied, "{m}");
    assert!(m.contains("\"images\"") && m.contains("faces"), "{m}");
    let deleted = admin
        .delete(pb::DeleteRequest {
            collection: "images".into(),
            ids: vec!["a1".into()],
        })
        .await
        .unwrap()
        .into_inner()
        .deleted;
    assert_eq!(deleted, 1);
    // Tokens through the API: made by an admin, refused to others.
    let (c, _) = code(
        a.create_token(pb::CreateTokenRequest {
            agency: "X".into(),
            role: "admin".into(),
            ..Default::default()
        })
        .await,
    );
    assert_eq!(c, Code::PermissionDenied);
    let made = admin
        .create_token(pb::CreateTokenRequest {
            agency: "NL-KLPD".into(),
            role: "reader".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let mut nl = secure::client(&server, &pki, Some(&made.token), None)
        .await
        .unwrap();
    let me = nl
        .who_am_i(pb::WhoAmIRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (me.agency.as_str(), me.role.as_str()),
        ("NL-KLPD", "reader")
    );
    admin
        .revoke_token(pb::RevokeTokenRequest {
            id: made.info.unwrap().id,
        })
        .await
        .unwrap();
    let (c, _) = code(nl.who_am_i(pb::WhoAmIRequest {}).await);
    assert_eq!(c, Code::Unauthenticated, "revocation takes effect at once");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn client_certificates_name_agency_and_role_and_a_wrong_ca_fails() {
    let pki = Pki::new("agencies CA");
    let rogue = Pki::new("rogue CA");
    let tmp = tempfile::tempdir().unwrap();
    let reader_cert = pki.client("DE-BKA", "reader");
    let revoked_cert = pki.client("FR-OCRVP", "admin");
    let revoked_id = {
        let der = rustls_pemfile_free_der(&revoked_cert.cert_pem);
        vidx::api::access::cert_credential(&der)
    };
    std::fs::create_dir_all(tmp.path()).unwrap();
    vidx::api::tokens::TokenStore::open(tmp.path())
        .unwrap()
        .revoke(&revoked_id)
        .unwrap();
    let server = secure::start_secure(&pki, tmp.path(), true).await;

    let mut c = secure::client(&server, &pki, None, Some(&reader_cert))
        .await
        .unwrap();
    let me = c.who_am_i(pb::WhoAmIRequest {}).await.unwrap().into_inner();
    assert_eq!((me.agency.as_str(), me.role.as_str()), ("DE-BKA", "reader"));
    assert!(me.credential.starts_with("cert:"), "{}", me.credential);
    let (code_, m) = code(c.create_collection(create("images", pb::Kind::Image)).await);
    assert_eq!(code_, Code::PermissionDenied, "{m}");

    let mut r = secure::client(&server, &pki, None, Some(&revoked_cert))
        .await
        .unwrap();
    let (code_, m) = code(r.who_am_i(pb::WhoAmIRequest {}).await);
    assert_eq!(code_, Code::Unauthenticated, "{m}");
    assert!(m.contains(&revoked_id), "{m}");

    // A certificate from another CA, or none, fails the TLS handshake.
    for cert in [Some(rogue.client("DE-BKA", "admin")), None] {
        let res = match secure::client(&server, &pki, None, cert.as_ref()).await {
            Err(e) => Err(e),
            Ok(mut cl) => cl
                .who_am_i(pb::WhoAmIRequest {})
                .await
                .map(|_| ())
                .map_err(|s| s.to_string()),
        };
        assert!(
            res.is_err(),
            "a client with {} got through",
            if cert.is_some() {
                "a rogue certificate"
            } else {
                "no certificate"
            }
        );
    }
    server.stop().await;
}

/// The DER of the first PEM block (base64 between the armour lines).
fn rustls_pemfile_free_der(pem: &str) -> Vec<u8> {
    let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    base64_decode(&b64)
}

fn base64_decode(s: &str) -> Vec<u8> {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::new();
    let mut acc = 0u32;
    let mut bits = 0;
    for c in s.bytes().filter(|c| *c != b'=') {
        let v = T.iter().position(|t| *t == c).expect("base64") as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}

/// The material of the restriction test: agency A's public upload and
/// restricted upload (shared with C), agency B's upload and background.
struct World {
    secret: Vec<(String, Vec<f32>)>,
    secret_centre: Vec<f32>,
}

async fn fill(admin: &mut Client, a: &mut Client, b: &mut Client) -> World {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    admin
        .create_collection(create("images", pb::Kind::Image))
        .await
        .unwrap();
    admin
        .create_collection(create("faces", pb::Kind::Face))
        .await
        .unwrap();
    let public_centre = random_unit(&mut rng, DIM);
    let secret_centre = random_unit(&mut rng, DIM);
    let face_centre = random_unit(&mut rng, DIM);
    let mut a_pub = Vec::new();
    let mut b_pts = Vec::new();
    for i in 0..6 {
        a_pub.push(pt(
            &format!("apub-{i}"),
            "A-PUB",
            "DE",
            at_cosine(&mut rng, &public_centre, 0.9),
        ));
        b_pts.push(pt(
            &format!("b-{i}"),
            "B-1",
            "FR",
            at_cosine(&mut rng, &public_centre, 0.9),
        ));
    }
    for i in 0..30 {
        b_pts.push(pt(
            &format!("bnoise-{i}"),
            "B-NOISE",
            "FR",
            random_unit(&mut rng, DIM),
        ));
    }
    let mut secret = Vec::new();
    let mut secret_pts = Vec::new();
    let mut secret_faces = Vec::new();
    for (i, public) in a_pub.iter().enumerate() {
        // Two of them are near-duplicates of public material: bridges a
        // linking run over everything would use.
        let v = if i < 2 {
            at_cosine(&mut rng, &public.vector, 0.995)
        } else {
            at_cosine(&mut rng, &secret_centre, 0.93)
        };
        let id = format!("secret-{i}");
        secret.push((id.clone(), v.clone()));
        secret_pts.push(pt(&id, "A-SECRET", "DE", v));
        secret_faces.push(pt(
            &format!("{id}#0"),
            "A-SECRET",
            "DE",
            at_cosine(&mut rng, &face_centre, 0.9),
        ));
    }
    let pub_faces: Vec<pb::Point> = (0..6)
        .map(|i| {
            pt(
                &format!("b-{i}#0"),
                "B-1",
                "FR",
                at_cosine(&mut rng, &face_centre, 0.9),
            )
        })
        .collect();
    // Restricted before the first point; shared with C.
    let r = a
        .restrict_upload(pb::RestrictUploadRequest {
            upload_id: "A-SECRET".into(),
            shared_with: vec!["NL-KLPD".into()],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(r.restricted && r.owner == "DE-BKA");
    upsert(a, "images", a_pub).await.unwrap();
    upsert(a, "images", secret_pts).await.unwrap();
    upsert(a, "faces", secret_faces).await.unwrap();
    upsert(b, "images", b_pts).await.unwrap();
    upsert(b, "faces", pub_faces).await.unwrap();
    World {
        secret,
        secret_centre,
    }
}

/// Every id and media id one caller sees through every RPC that returns
/// material, with the restricted ones `secret` asks about.
struct Seen {
    ids: HashSet<String>,
    point_id_query_ok: bool,
    triage_known_secret: bool,
    link_upload_secret: Result<bool, Code>,
    count: u64,
    /// SeriesOfMedia of the restricted media: its answer, and what it
    /// answers for an id that does not exist, with the id blanked.
    series_of_secret: (Code, String),
    series_of_unknown: (Code, String),
    /// ReviewSeries naming a restricted media, and naming an unknown one.
    review_secret: (Code, String),
    review_unknown: (Code, String),
    /// UpdateMetadata of the restricted points.
    update_secret: Code,
}

/// A status with the media id it names blanked, to compare the answer for
/// a restricted id with the one for an id that does not exist.
fn blanked(r: (Code, String), id: &str) -> (Code, String) {
    (r.0, r.1.replace(id, "ID"))
}

/// What the series reads give a caller: every media id and series id in
/// every page of ListSeries and every GetSeries of them, and the answers
/// about the restricted media.
async fn series_reads(c: &mut Client, w: &World, ids: &mut HashSet<String>) -> Seen {
    let mut token = String::new();
    let mut listed = Vec::new();
    loop {
        let page = c
            .list_series(pb::ListSeriesRequest {
                image_collection: "images".into(),
                page_size: 2,
                page_token: token.clone(),
                with_evidence: true,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        for s in &page.series {
            listed.push(s.series_id.clone());
            ids.extend(s.media_ids.iter().cloned());
            ids.insert(s.series_id.trim_start_matches("ser-").to_string());
            for e in &s.evidence {
                ids.insert(e.media_a.clone());
                ids.insert(e.media_b.clone());
            }
        }
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert!(!listed.is_empty(), "the stored run has series");
    for id in &listed {
        let g = c
            .get_series(pb::GetSeriesRequest {
                image_collection: "images".into(),
                series_id: id.clone(),
            })
            .await
            .unwrap()
            .into_inner();
        for m in &g.media {
            ids.insert(m.media_id.clone());
        }
        for r in &g.rejected {
            ids.insert(r.media_a.clone());
            ids.insert(r.media_b.clone());
        }
    }
    let secret_id = w.secret[3].0.clone();
    let of = |m: &str| pb::SeriesOfMediaRequest {
        image_collection: "images".into(),
        media_ids: vec!["apub-0".into(), m.into()],
    };
    let series_of_secret = blanked(code(c.series_of_media(of(&secret_id)).await), &secret_id);
    let series_of_unknown = blanked(code(c.series_of_media(of("nosuch-9")).await), "nosuch-9");
    let review = |m: &str| pb::ReviewSeriesRequest {
        image_collection: "images".into(),
        reviewer: "test".into(),
        decisions: vec![pb::Decision {
            kind: pb::DecisionKind::RejectLink as i32,
            media_a: "apub-0".into(),
            media_b: m.into(),
            ..Default::default()
        }],
        ..Default::default()
    };
    let review_secret = blanked(code(c.review_series(review(&secret_id)).await), &secret_id);
    let review_unknown = blanked(code(c.review_series(review("nosuch-9")).await), "nosuch-9");
    let update_secret = code(
        c.update_metadata(pb::UpdateMetadataRequest {
            collection: "images".into(),
            ids: w.secret.iter().map(|s| s.0.clone()).collect(),
            set: Some(pb::MetadataUpdate {
                add_tags: vec!["seen".into()],
                ..Default::default()
            }),
        })
        .await,
    )
    .0;
    Seen {
        ids: HashSet::new(),
        point_id_query_ok: false,
        triage_known_secret: false,
        link_upload_secret: Err(Code::Unknown),
        count: 0,
        series_of_secret,
        series_of_unknown,
        review_secret,
        review_unknown,
        update_secret,
    }
}

async fn seen_by(c: &mut Client, w: &World) -> Seen {
    let mut ids = HashSet::new();
    let add = |s: &mut HashSet<String>, id: &str| {
        s.insert(id.split('#').next().unwrap_or(id).to_string());
    };
    // Search by vector near the restricted material and at each of it.
    let mut queries = vec![vector_query(w.secret_centre.clone())];
    queries.extend(w.secret.iter().map(|(_, v)| vector_query(v.clone())));
    let r = c
        .search(search_req("images", queries, 5))
        .await
        .unwrap()
        .into_inner();
    for q in &r.results {
        assert_eq!(
            q.hits.len(),
            5,
            "the filter runs before top-k: k hits whatever is hidden"
        );
        for h in &q.hits {
            add(&mut ids, &h.id);
        }
    }
    let f = c
        .search(search_req(
            "faces",
            vec![vector_query(w.secret_centre.clone())],
            10,
        ))
        .await
        .unwrap()
        .into_inner();
    for h in &f.results[0].hits {
        add(&mut ids, &h.id);
    }
    // By id.
    let point_id_query_ok = c
        .search(search_req("images", vec![id_query("secret-3")], 3))
        .await
        .is_ok();
    let got = c
        .get(pb::GetRequest {
            collection: "images".into(),
            ids: w.secret.iter().map(|s| s.0.clone()).collect(),
        })
        .await
        .unwrap()
        .into_inner();
    for p in &got.points {
        add(&mut ids, &p.id);
    }
    let count = c
        .describe_collection(pb::DescribeCollectionRequest {
            name: "images".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .points;
    // LinkSeries, the stored run and a run with what the caller may see.
    for with_restricted in [false, true] {
        let mut s = c
            .link_series(pb::LinkSeriesRequest {
                image_collection: "images".into(),
                face_collection: "faces".into(),
                params: None,
                scope: Some(pb::LinkScope {
                    with_restricted,
                    ..Default::default()
                }),
            })
            .await
            .unwrap()
            .into_inner();
        while let Some(ev) = s.message().await.unwrap() {
            match ev.event {
                Some(pb::link_event::Event::Series(ser)) => {
                    for m in &ser.media_ids {
                        add(&mut ids, m);
                    }
                    for e in &ser.evidence {
                        add(&mut ids, &e.media_a);
                        add(&mut ids, &e.media_b);
                    }
                }
                Some(pb::link_event::Event::Summary(sum)) => {
                    assert_eq!(
                        sum.stored, !with_restricted,
                        "only the run over unrestricted material is stored"
                    );
                }
                _ => {}
            }
        }
    }
    // LinkUpload of a public upload, then of the restricted one.
    let lu = c
        .link_upload(pb::LinkUploadRequest {
            image_collection: "images".into(),
            upload_id: "B-1".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(lu.stored);
    for m in &lu.media {
        add(&mut ids, &m.media_id);
    }
    for s in &lu.series {
        for m in &s.media_ids {
            add(&mut ids, m);
        }
    }
    let link_upload_secret = match c
        .link_upload(pb::LinkUploadRequest {
            image_collection: "images".into(),
            upload_id: "A-SECRET".into(),
            ..Default::default()
        })
        .await
    {
        Ok(r) => {
            let r = r.into_inner();
            assert!(!r.stored, "a restricted upload is linked on a copy");
            for m in &r.media {
                add(&mut ids, &m.media_id);
            }
            for s in &r.series {
                for m in &s.media_ids {
                    add(&mut ids, m);
                }
            }
            Ok(!r.media.is_empty())
        }
        Err(s) => Err(s.code()),
    };
    // Triage items that look like the restricted material.
    let items: Vec<pb::TriageItem> = w.secret[2..]
        .iter()
        .enumerate()
        .map(|(i, (_, v))| pb::TriageItem {
            id: format!("seized-{i}"),
            vector: v.clone(),
            ..Default::default()
        })
        .collect();
    let mut t = c
        .triage(tokio_stream::iter(vec![pb::TriageRequest {
            image_collection: "images".into(),
            face_collection: "faces".into(),
            items,
            ..Default::default()
        }]))
        .await
        .unwrap()
        .into_inner();
    let mut triage_known_secret = false;
    while let Some(msg) = t.message().await.unwrap() {
        for r in &msg.results {
            add(&mut ids, &r.nearest_media_id);
            if r.verdict == pb::Verdict::Known as i32 && r.nearest_media_id.starts_with("secret-") {
                triage_known_secret = true;
            }
        }
    }
    // The series reads, on the stored series the runs above left.
    let reads = series_reads(c, w, &mut ids).await;
    ids.remove("");
    Seen {
        ids,
        point_id_query_ok,
        triage_known_secret,
        link_upload_secret,
        count,
        ..reads
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn restricted_uploads_reach_only_their_agency_and_those_listed() {
    let pki = Pki::new("test CA");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (admin, _) = make_token(dir, "HUB", Role::Admin);
    let (ta, _) = make_token(dir, "DE-BKA", Role::Analyst);
    let (tb, _) = make_token(dir, "FR-OCRVP", Role::Analyst);
    let (tc, _) = make_token(dir, "NL-KLPD", Role::Analyst);
    let server = secure::start_secure(&pki, dir, false).await;
    let mut admin = secure::client(&server, &pki, Some(&admin), None)
        .await
        .unwrap();
    let mut a = secure::client(&server, &pki, Some(&ta), None)
        .await
        .unwrap();
    let mut b = secure::client(&server, &pki, Some(&tb), None)
        .await
        .unwrap();
    let mut c = secure::client(&server, &pki, Some(&tc), None)
        .await
        .unwrap();
    let w = fill(&mut admin, &mut a, &mut b).await;
    let secret: HashSet<String> = w.secret.iter().map(|s| s.0.clone()).collect();

    // An upload that already has points can no longer be restricted.
    let (code_, m) = code(
        a.restrict_upload(pb::RestrictUploadRequest {
            upload_id: "A-PUB".into(),
            ..Default::default()
        })
        .await,
    );
    assert_eq!(code_, Code::FailedPrecondition, "{m}");

    let total = 6 + 6 + 30 + 6;
    let sb = seen_by(&mut b, &w).await;
    let leaked: Vec<&String> = sb.ids.intersection(&secret).collect();
    assert!(
        leaked.is_empty(),
        "agency B saw restricted media {leaked:?}"
    );
    assert!(
        !sb.point_id_query_ok,
        "a point_id query on a restricted point must be NOT_FOUND"
    );
    assert!(!sb.triage_known_secret);
    assert_eq!(
        sb.link_upload_secret,
        Err(Code::InvalidArgument),
        "the upload has no points B may see"
    );
    assert_eq!(sb.count, total - 6, "counts leave out what B may not see");
    assert_eq!(
        sb.series_of_secret, sb.series_of_unknown,
        "SeriesOfMedia answers B about a restricted media as about one that does not exist"
    );
    assert_eq!(sb.series_of_secret.0, Code::NotFound);
    assert_eq!(
        sb.review_secret, sb.review_unknown,
        "ReviewSeries answers B about a restricted media as about one that does not exist"
    );
    assert_eq!(sb.review_secret.0, Code::InvalidArgument);
    assert_eq!(
        sb.update_secret,
        Code::NotFound,
        "UpdateMetadata of restricted points: they do not exist for B"
    );
    let (code_, _) = code(
        b.search(search_req("images", vec![id_query("secret-3")], 3))
            .await,
    );
    assert_eq!(code_, Code::NotFound);
    let deleted = b
        .delete(pb::DeleteRequest {
            collection: "images".into(),
            ids: secret.iter().cloned().collect(),
        })
        .await
        .unwrap()
        .into_inner()
        .deleted;
    assert_eq!(deleted, 0, "restricted points do not exist for B");

    for (who, cl) in [("owner A", &mut a), ("listed C", &mut c)] {
        let s = seen_by(cl, &w).await;
        assert!(
            secret.is_subset(&s.ids),
            "{who} should see all restricted media: {:?}",
            s.ids
        );
        assert!(s.point_id_query_ok && s.triage_known_secret, "{who}");
        assert_eq!(s.link_upload_secret, Ok(true), "{who}");
        assert_eq!(s.count, total, "{who}");
        // The stored series hold unrestricted material only: the media is
        // known to A and C, in no stored series.
        assert_eq!(s.series_of_secret.0, Code::Ok, "{who}");
        assert_eq!(s.series_of_unknown.0, Code::NotFound, "{who}");
        // Decisions are about the stored (unrestricted) material only.
        assert_eq!(s.review_secret.0, Code::InvalidArgument, "{who}");
    }
    // Only the owner updates its points' metadata.
    let (code_, m) = code(
        c.update_metadata(pb::UpdateMetadataRequest {
            collection: "images".into(),
            ids: vec!["secret-0".into()],
            set: Some(pb::MetadataUpdate {
                add_tags: vec!["x".into()],
                ..Default::default()
            }),
        })
        .await,
    );
    assert_eq!(code_, Code::PermissionDenied, "{m}");
    assert!(m.contains("DE-BKA") && m.contains("NL-KLPD"), "{m}");
    let got = a
        .get(pb::GetRequest {
            collection: "images".into(),
            ids: vec!["secret-0".into()],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        got.points[0].metadata.as_ref().unwrap().tags,
        vec!["seen".to_string()],
        "A's own UpdateMetadata went through (B's did not)"
    );

    // Deconfliction, once A opts in: B learns who to call, nothing else.
    a.restrict_upload(pb::RestrictUploadRequest {
        upload_id: "A-SECRET".into(),
        shared_with: vec!["NL-KLPD".into()],
        deconfliction: true,
        ..Default::default()
    })
    .await
    .unwrap();
    let r = b
        .search(search_req(
            "images",
            vec![vector_query(w.secret_centre.clone())],
            5,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        r.results[0].restricted_matches_held_by,
        vec!["DE-BKA".to_string()]
    );
    assert!(r.results[0].hits.iter().all(|h| !secret.contains(&h.id)));
    let r = c
        .search(search_req(
            "images",
            vec![vector_query(w.secret_centre.clone())],
            5,
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(
        r.results[0].restricted_matches_held_by.is_empty(),
        "C sees the material itself"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn limits_per_identity_answer_resource_exhausted_with_a_retry_hint() {
    let pki = Pki::new("test CA");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (ta, _) = make_token(dir, "DE-BKA", Role::Reader);
    let (tb, _) = make_token(dir, "FR-OCRVP", Role::Analyst);
    let mut opts = secure::secure_options(&pki, dir, false);
    opts.limits = vidx::api::limits::LimitOptions {
        rate_per_credential: 5,
        rate_per_agency: 50,
        streams_per_credential: 1,
    };
    let server = crate::support::TestServer::start_full(dir, opts, Default::default()).await;
    let mut a = secure::client(&server, &pki, Some(&ta), None)
        .await
        .unwrap();
    let mut b = secure::client(&server, &pki, Some(&tb), None)
        .await
        .unwrap();
    let mut refused = None;
    for _ in 0..20 {
        if let Err(s) = a.list_collections(pb::ListCollectionsRequest {}).await {
            refused = Some(s);
            break;
        }
    }
    let s = refused.expect("20 calls at once pass a limit of 5 per second");
    assert_eq!(s.code(), Code::ResourceExhausted, "{s:?}");
    assert!(s.message().contains("retry in"), "{}", s.message());
    assert!(
        s.metadata().get("retry-after").is_some(),
        "{:?}",
        s.metadata()
    );
    assert!(s.metadata().get("grpc-retry-pushback-ms").is_some());
    // Another agency is served meanwhile.
    b.list_collections(pb::ListCollectionsRequest {})
        .await
        .unwrap();
    // One open stream per credential: a second one waits its turn.
    let (tx, rx) = tokio::sync::mpsc::channel::<pb::UpsertRequest>(1);
    let mut b2 = b.clone();
    let open = tokio::spawn(async move {
        b2.upsert(tokio_stream::wrappers::ReceiverStream::new(rx))
            .await
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (code_, m) = code(
        b.upsert(tokio_stream::iter(Vec::<pb::UpsertRequest>::new()))
            .await,
    );
    assert_eq!(code_, Code::ResourceExhausted, "{m}");
    assert!(m.contains("streaming calls open"), "{m}");
    drop(tx);
    open.await.unwrap().unwrap();
    server.stop().await;
}

/// The ids of `collection`'s points that `c` finds near `v` (k 20).
async fn found(c: &mut Client, collection: &str, v: &[f32]) -> HashSet<String> {
    let r = c
        .search(search_req(collection, vec![vector_query(v.to_vec())], 20))
        .await
        .unwrap()
        .into_inner();
    r.results[0].hits.iter().map(|h| h.id.clone()).collect()
}

/// Only an admin takes a snapshot, and the snapshot carries the
/// restrictions: restored into another data directory, agency A's
/// restricted upload is still hidden from agency B there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_keeps_restrictions_and_only_an_admin_takes_one() {
    let pki = Pki::new("test CA");
    let tmp = tempfile::tempdir().unwrap();
    let (src, dst) = (tmp.path().join("src"), tmp.path().join("dst"));
    let (admin, _) = make_token(&src, "HUB", Role::Admin);
    let (ta, _) = make_token(&src, "DE-BKA", Role::Analyst);
    let server = secure::start_secure(&pki, &src, false).await;
    let mut adm = secure::client(&server, &pki, Some(&admin), None)
        .await
        .unwrap();
    let mut a = secure::client(&server, &pki, Some(&ta), None)
        .await
        .unwrap();
    adm.create_collection(create("images", pb::Kind::Image))
        .await
        .unwrap();
    a.restrict_upload(pb::RestrictUploadRequest {
        upload_id: "A-SECRET".into(),
        ..Default::default()
    })
    .await
    .unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let centre = random_unit(&mut rng, DIM);
    let points: Vec<pb::Point> = (0..10)
        .map(|i| {
            let upload = if i < 5 { "A-SECRET" } else { "A-PUB" };
            pt(
                &format!("p-{i}"),
                upload,
                "DE",
                at_cosine(&mut rng, &centre, 0.9),
            )
        })
        .collect();
    upsert(&mut a, "images", points).await.unwrap();

    let (c, m) = code(
        a.create_snapshot(pb::CreateSnapshotRequest {
            collection: "images".into(),
        })
        .await,
    );
    assert_eq!(c, Code::PermissionDenied, "an analyst took a snapshot: {m}");
    assert!(m.contains("CreateSnapshot"), "{m}");

    let ca = secure::write(tmp.path(), "ca.pem", &pki.ca_pem);
    let token = secure::write(tmp.path(), "admin.token", &admin);
    let snap = tmp.path().join("snap");
    let url = format!("https://127.0.0.1:{}", server.addr.port());
    let args = [
        "snapshot",
        "create",
        "--server",
        &url,
        "--ca",
        ca.to_str().unwrap(),
        "--token-file",
        token.to_str().unwrap(),
        "--collection",
        "images",
        "--out",
        snap.to_str().unwrap(),
    ];
    tokio::task::spawn_blocking({
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        move || crate::support::process::run(&args)
    })
    .await
    .unwrap();
    server.stop().await;
    let out = crate::support::process::run(&[
        "snapshot",
        "restore",
        snap.to_str().unwrap(),
        "--data-dir",
        dst.to_str().unwrap(),
    ]);
    assert!(out.contains("1 restricted upload(s) added"), "{out}");

    let (ta2, _) = make_token(&dst, "DE-BKA", Role::Reader);
    let (tb2, _) = make_token(&dst, "FR-OCRVP", Role::Reader);
    let restored = secure::start_secure(&pki, &dst, false).await;
    let mut a2 = secure::client(&restored, &pki, Some(&ta2), None)
        .await
        .unwrap();
    let mut b2 = secure::client(&restored, &pki, Some(&tb2), None)
        .await
        .unwrap();
    let all: HashSet<String> = (0..10).map(|i| format!("p-{i}")).collect();
    let public: HashSet<String> = (5..10).map(|i| format!("p-{i}")).collect();
    assert_eq!(
        found(&mut a2, "images", &centre).await,
        all,
        "the owner sees all"
    );
    assert_eq!(
        found(&mut b2, "images", &centre).await,
        public,
        "agency B sees the restricted upload after a restore"
    );
    restored.stop().await;
}
