//! Series linking and triage end to end: a real server on loopback, real
//! tonic clients, planted series with hard negatives, noise and faces.

use std::collections::{BTreeMap, BTreeSet};

use crate::support::{
    Client, TestServer, at_cosine, create_req, random_unit, unit, upsert_batches,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use vidx::pb;

const DIM: usize = 64;
const DAY: i64 = 86_400;
const T0: i64 = 1_600_000_000;

/// The test's seeded draws, at the test's dimension.
struct Gen {
    rng: ChaCha8Rng,
}

impl Gen {
    fn new(seed: u64) -> Gen {
        Gen {
            rng: ChaCha8Rng::seed_from_u64(seed),
        }
    }

    fn random_unit(&mut self) -> Vec<f32> {
        random_unit(&mut self.rng, DIM)
    }

    fn at_cos(&mut self, u: &[f32], c: f32) -> Vec<f32> {
        at_cosine(&mut self.rng, u, c)
    }

    /// A series member: cosine 0.82–0.95 to its centroid.
    fn member(&mut self, centroid: &[f32]) -> Vec<f32> {
        let c = self.rng.random_range(0.82..0.95);
        self.at_cos(centroid, c)
    }
}

/// One media: image vector, face vectors, metadata.
#[derive(Clone)]
struct Media {
    id: String,
    image: Vec<f32>,
    faces: Vec<Vec<f32>>,
    meta: pb::Metadata,
}

fn meta(id: &str, country: &str, upload: &str, uploaded_at: i64) -> pb::Metadata {
    pb::Metadata {
        media_id: id.into(),
        upload_id: upload.into(),
        case_id: format!("case-{country}"),
        country: country.into(),
        agency: format!("{country}-VIU-1"),
        captured_at: uploaded_at - 400 * DAY,
        uploaded_at,
        ..Default::default()
    }
}

async fn setup(server: &TestServer) -> Client {
    let mut c = server.client().await;
    c.create_collection(create_req("images", DIM as u32, pb::Metric::Cosine))
        .await
        .unwrap();
    let mut f = create_req("faces", DIM as u32, pb::Metric::Cosine);
    f.kind = pb::Kind::Face as i32;
    c.create_collection(f).await.unwrap();
    c
}

async fn store(c: &mut Client, media: &[Media]) {
    let images: Vec<pb::Point> = media
        .iter()
        .map(|m| pb::Point {
            id: m.id.clone(),
            vector: m.image.clone(),
            metadata: Some(m.meta.clone()),
            ..Default::default()
        })
        .collect();
    let faces: Vec<pb::Point> = media
        .iter()
        .flat_map(|m| {
            m.faces.iter().enumerate().map(|(i, f)| pb::Point {
                id: format!("{}#{i}", m.id),
                vector: f.clone(),
                metadata: Some(m.meta.clone()),
                ..Default::default()
            })
        })
        .collect();
    upsert_batches(c, "images", images, 500).await.unwrap();
    if !faces.is_empty() {
        upsert_batches(c, "faces", faces, 500).await.unwrap();
    }
}

struct Linked {
    series: Vec<pb::Series>,
    /// People seen in two or more series.
    persons: Vec<pb::SamePerson>,
    summary: pb::LinkSummary,
    stages_seen: BTreeSet<String>,
}

async fn link(c: &mut Client, scope: Option<pb::LinkScope>) -> Result<Linked, tonic::Status> {
    let mut s = c
        .link_series(pb::LinkSeriesRequest {
            image_collection: "images".into(),
            face_collection: "faces".into(),
            params: None,
            scope,
        })
        .await?
        .into_inner();
    let mut series = Vec::new();
    let mut persons = Vec::new();
    let mut summary = None;
    let mut stages_seen = BTreeSet::new();
    while let Some(ev) = s.message().await? {
        match ev.event.unwrap() {
            pb::link_event::Event::Progress(p) => {
                assert!(p.done <= p.total, "{p:?}");
                stages_seen.insert(p.stage);
            }
            pb::link_event::Event::Series(x) => {
                assert!(summary.is_none(), "series after the summary");
                series.push(x);
            }
            pb::link_event::Event::SamePerson(p) => persons.push(p),
            pb::link_event::Event::Summary(x) => summary = Some(x),
        }
    }
    Ok(Linked {
        series,
        persons,
        summary: summary.expect("a summary ends the stream"),
        stages_seen,
    })
}

fn grouping(series: &[pb::Series]) -> BTreeMap<String, BTreeSet<String>> {
    series
        .iter()
        .map(|s| {
            (
                s.series_id.clone(),
                s.media_ids.iter().cloned().collect::<BTreeSet<_>>(),
            )
        })
        .collect()
}

/// Three series, each spread over uploads from DE, FR and BR (one upload
/// per country and series part), with a near-duplicate each, hard
/// negatives at cosine 0.55 to a series centroid, noise, and faces of the
/// series' victim on some members.
struct World {
    series: Vec<Vec<Media>>,
    hard_negatives: Vec<Media>,
    noise: Vec<Media>,
    centroids: Vec<Vec<f32>>,
    victims: Vec<Vec<f32>>,
    g: Gen,
}

const COUNTRIES: [&str; 3] = ["DE", "FR", "BR"];

impl World {
    fn new(seed: u64, n_series: usize, per_country: usize) -> World {
        let mut g = Gen::new(seed);
        let centroids: Vec<Vec<f32>> = (0..n_series).map(|_| g.random_unit()).collect();
        let victims: Vec<Vec<f32>> = (0..n_series).map(|_| g.random_unit()).collect();
        let mut w = World {
            series: Vec::new(),
            hard_negatives: Vec::new(),
            noise: Vec::new(),
            centroids,
            victims,
            g,
        };
        for s in 0..n_series {
            let mut members = Vec::new();
            for (ci, cc) in COUNTRIES.iter().enumerate() {
                // Countries surface the series years apart.
                let t = T0 + (ci as i64 * 400 + s as i64) * DAY;
                for j in 0..per_country {
                    let id = format!("s{s}-{cc}-{j}");
                    members.push(w.media(&id, s, cc, &format!("up-{cc}-{s}"), t, j % 2 == 0));
                }
            }
            // A re-encode of the first member, uploaded by another country.
            let src = members[0].clone();
            let image = w.g.at_cos(&src.image, 0.985);
            members.push(Media {
                id: format!("s{s}-dup"),
                image,
                faces: vec![],
                meta: meta(
                    &format!("s{s}-dup"),
                    "FR",
                    &format!("up-FR-{s}"),
                    T0 + (400 + s as i64) * DAY,
                ),
            });
            w.series.push(members);
        }
        for h in 0..2 * n_series {
            let s = h % n_series;
            let id = format!("hn{h}");
            let image = w.g.at_cos(&w.centroids[s].clone(), 0.55);
            w.hard_negatives.push(Media {
                meta: meta(&id, "DE", "up-DE-hn", T0),
                id,
                image,
                faces: vec![],
            });
        }
        for n in 0..20 {
            let id = format!("noise{n}");
            let image = w.g.random_unit();
            w.noise.push(Media {
                meta: meta(&id, "FR", "up-FR-noise", T0),
                id,
                image,
                faces: vec![],
            });
        }
        w
    }

    fn media(&mut self, id: &str, s: usize, cc: &str, upload: &str, t: i64, face: bool) -> Media {
        let c = self.centroids[s].clone();
        let image = self.g.member(&c);
        let faces = if face {
            let v = self.victims[s].clone();
            let f = self.g.rng.random_range(0.6..0.85);
            vec![self.g.at_cos(&v, f)]
        } else {
            vec![]
        };
        Media {
            id: id.into(),
            image,
            faces,
            meta: meta(id, cc, upload, t),
        }
    }

    fn all(&self) -> Vec<Media> {
        let mut v: Vec<Media> = self.series.iter().flatten().cloned().collect();
        v.extend(self.hard_negatives.iter().cloned());
        v.extend(self.noise.iter().cloned());
        v
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn planted_series_across_three_countries_are_recovered_exactly() {
    let server = TestServer::start().await;
    let mut c = setup(&server).await;
    let w = World::new(7, 3, 4);
    store(&mut c, &w.all()).await;
    let l = link(&mut c, None).await.unwrap();
    assert_eq!(l.series.len(), 3, "{:?}", grouping(&l.series));
    for truth in &w.series {
        let want: BTreeSet<String> = truth.iter().map(|m| m.id.clone()).collect();
        let got = l
            .series
            .iter()
            .find(|s| s.media_ids.contains(&truth[0].id))
            .expect("series found");
        let got_set: BTreeSet<String> = got.media_ids.iter().cloned().collect();
        assert_eq!(got_set, want);
        assert_eq!(got.countries, vec!["BR", "DE", "FR"]);
        assert!(got.cross_border);
        assert_eq!(got.upload_ids.len(), 3);
        // The founder is the earliest upload's smallest media id: DE's.
        assert_eq!(got.series_id, format!("ser-{}", truth[0].id));
        assert_eq!(got.evidence.len(), want.len() - 1, "a spanning forest");
        assert!(
            got.evidence
                .iter()
                .any(|e| e.kind == pb::EvidenceKind::EvidenceNearDuplicate as i32)
        );
        for e in &got.evidence {
            assert!(want.contains(&e.media_a) && want.contains(&e.media_b));
            assert!(e.distance <= 0.36, "{e:?}");
            assert_eq!(e.collection, "images");
        }
        assert_eq!(
            got.media_with_faces as usize,
            truth.iter().filter(|m| !m.faces.is_empty()).count()
        );
        assert!(got.captured_from > 0 && got.captured_from <= got.captured_until);
    }
    let s = &l.summary;
    assert_eq!(s.media as usize, w.all().len());
    assert_eq!(s.series, 3);
    assert_eq!(s.cross_border_series, 3);
    assert!(s.stored);
    assert!(s.face_edges > 0);
    for stage in ["load", "knn-images", "face-matches", "group", "output"] {
        assert!(s.stages.iter().any(|t| t.stage == stage), "{stage}");
    }
    assert!(l.stages_seen.contains("knn-images"), "{:?}", l.stages_seen);

    // Scoped to one series' uploads: only that series.
    let scoped = link(
        &mut c,
        Some(pb::LinkScope {
            upload_ids: vec!["up-DE-1".into(), "up-FR-1".into(), "up-BR-1".into()],
            case_ids: vec![],
            with_restricted: false,
        }),
    )
    .await
    .unwrap();
    assert_eq!(scoped.series.len(), 1);
    assert_eq!(scoped.series[0].media_ids.len(), w.series[1].len());
    server.stop().await;
}

/// Series ids survive growth; LinkUpload of the new upload gives the same
/// grouping (and ids) as a full re-link, including a merge of two old
/// series that the new upload bridges.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ids_are_stable_and_incremental_equals_full() {
    let server = TestServer::start().await;
    let mut c = setup(&server).await;
    let mut w = World::new(11, 3, 4);
    // Series "x": two clumps around sub-centres at cosine 0.5 to each other
    // (no edges between them) that only a later upload bridges.
    let a = w.g.random_unit();
    let b = w.g.at_cos(&a, 0.5);
    let mid = unit(a.iter().zip(&b).map(|(x, y)| x + y).collect());
    let mut old = w.all();
    let clump = |g: &mut Gen, centre: &[f32], tag: &str, cc: &str, t: i64| -> Vec<Media> {
        (0..5)
            .map(|j| {
                let id = format!("x-{tag}-{j}");
                Media {
                    image: g.at_cos(centre, 0.96),
                    faces: vec![],
                    meta: meta(&id, cc, &format!("up-x-{tag}"), t),
                    id,
                }
            })
            .collect()
    };
    let xa = clump(&mut w.g, &a, "a", "NL", T0 - 100 * DAY);
    let xb = clump(&mut w.g, &b, "b", "PL", T0 - 50 * DAY);
    old.extend(xa.iter().cloned());
    old.extend(xb.iter().cloned());
    store(&mut c, &old).await;
    let first = link(&mut c, None).await.unwrap();
    let before = grouping(&first.series);
    assert_eq!(before.len(), 5, "3 series + 2 clumps: {before:?}");

    // The new upload: more members of series 0 and 2, a brand new series,
    // the bridge between the clumps, and some noise.
    let late = T0 + 3000 * DAY;
    let mut new = Vec::new();
    for s in [0usize, 2] {
        for j in 0..3 {
            let id = format!("new-s{s}-{j}");
            let c0 = w.centroids[s].clone();
            new.push(Media {
                image: w.g.member(&c0),
                faces: vec![],
                meta: meta(&id, "GB", "up-new", late),
                id,
            });
        }
    }
    let fresh = w.g.random_unit();
    for j in 0..4 {
        let id = format!("new-fresh-{j}");
        new.push(Media {
            image: w.g.at_cos(&fresh, 0.93),
            faces: vec![],
            meta: meta(&id, "GB", "up-new", late),
            id,
        });
    }
    for j in 0..4 {
        let id = format!("new-bridge-{j}");
        new.push(Media {
            image: w.g.at_cos(&mid, 0.97),
            faces: vec![],
            meta: meta(&id, "GB", "up-new", late),
            id,
        });
    }
    for j in 0..3 {
        let id = format!("new-noise-{j}");
        new.push(Media {
            image: w.g.random_unit(),
            faces: vec![],
            meta: meta(&id, "GB", "up-new", late),
            id,
        });
    }
    store(&mut c, &new).await;

    let r = c
        .link_upload(pb::LinkUploadRequest {
            image_collection: "images".into(),
            face_collection: String::new(),
            upload_id: "up-new".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.media.len(), new.len());
    let outcome: BTreeMap<&str, (i32, &str)> = r
        .media
        .iter()
        .map(|m| (m.media_id.as_str(), (m.outcome, m.series_id.as_str())))
        .collect();
    let joined = pb::LinkOutcome::Joined as i32;
    assert_eq!(
        outcome["new-s0-0"],
        (joined, format!("ser-{}", w.series[0][0].id).as_str())
    );
    assert_eq!(outcome["new-fresh-0"].0, pb::LinkOutcome::NewSeries as i32);
    assert_eq!(
        outcome["new-noise-0"],
        (pb::LinkOutcome::Unlinked as i32, "")
    );
    // The bridge merged the clumps; NL's clump was uploaded first, its id survives.
    assert_eq!(r.merges.len(), 1, "{:?}", r.merges);
    assert_eq!(r.merges[0].series_id, "ser-x-a-0");
    assert_eq!(r.merges[0].merged, vec!["ser-x-b-0".to_string()]);
    assert_eq!(outcome["new-bridge-0"], (joined, "ser-x-a-0"));

    // The incremental view: old grouping, minus what merged, plus what changed.
    let mut incremental = before.clone();
    for m in &r.merges {
        for gone in &m.merged {
            incremental.remove(gone);
        }
    }
    for s in &r.series {
        incremental.insert(s.series_id.clone(), s.media_ids.iter().cloned().collect());
    }
    let full = link(&mut c, None).await.unwrap();
    let after = grouping(&full.series);
    assert_eq!(incremental, after, "LinkUpload must equal a full re-link");
    // Every series id of the first run that was not merged away survives.
    for (id, members) in &before {
        if id == "ser-x-b-0" {
            continue;
        }
        let grown = after
            .get(id)
            .unwrap_or_else(|| panic!("series {id} lost its id"));
        assert!(grown.is_superset(members));
    }
    server.stop().await;
}

fn item(m: &Media) -> pb::TriageItem {
    pb::TriageItem {
        id: m.id.clone(),
        vector: m.image.clone(),
        faces: m
            .faces
            .iter()
            .map(|f| pb::Vector { values: f.clone() })
            .collect(),
        metadata: Some(m.meta.clone()),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn triage_marks_planted_known_and_new() {
    let server = TestServer::start().await;
    let mut c = setup(&server).await;
    let mut w = World::new(23, 4, 4);
    // Series 0's victim is identified.
    for m in &mut w.series[0] {
        m.meta.victim_identified = true;
    }
    // The database holds all but the last three media of each series.
    let mut db = Vec::new();
    let mut held = Vec::new();
    for s in &w.series {
        db.extend(s[..s.len() - 3].iter().cloned());
        held.extend(s[s.len() - 3..].iter().cloned());
    }
    db.extend(w.hard_negatives[..4].iter().cloned());
    store(&mut c, &db).await;
    let l = link(&mut c, None).await.unwrap();
    assert_eq!(l.series.len(), 4);

    // The seized set: held-back series members (known), hard negatives and
    // noise (new), a brand-new series of 3 with a face (new, grouped).
    let known: Vec<Media> = held;
    let mut newer: Vec<Media> = w.hard_negatives[4..].to_vec();
    newer.extend(w.noise[..5].iter().cloned());
    let fresh = w.g.random_unit();
    let face = w.g.random_unit();
    for j in 0..3 {
        let id = format!("fresh-{j}");
        newer.push(Media {
            image: w.g.at_cos(&fresh, 0.93),
            faces: vec![w.g.at_cos(&face, 0.8)],
            meta: meta(&id, "SE", "seized", T0 + 5000 * DAY),
            id,
        });
    }
    let mut items: Vec<pb::TriageItem> = known.iter().chain(&newer).map(item).collect();
    // Two messages, so verdicts arrive per message.
    let second = items.split_off(items.len() / 2);
    let reqs = vec![
        pb::TriageRequest {
            image_collection: "images".into(),
            face_collection: "faces".into(),
            items,
            store: true,
            ..Default::default()
        },
        pb::TriageRequest {
            items: second,
            ..Default::default()
        },
    ];
    let mut st = c
        .triage(tokio_stream::iter(reqs))
        .await
        .unwrap()
        .into_inner();
    let mut results = BTreeMap::new();
    let mut summary = None;
    let mut messages = 0;
    while let Some(r) = st.message().await.unwrap() {
        messages += 1;
        for x in r.results {
            results.insert(x.id.clone(), x);
        }
        if r.summary.is_some() {
            summary = r.summary;
        }
    }
    assert_eq!(messages, 3, "one per request message, then the summary");
    let s = summary.unwrap();
    assert_eq!(s.items as usize, known.len() + newer.len());
    assert_eq!(s.known as usize, known.len());
    assert_eq!(s.new as usize, newer.len());
    assert_eq!(s.new_with_faces, 3);
    assert_eq!(s.stored, s.items);
    let groups: Vec<BTreeSet<String>> = s
        .new_groups
        .iter()
        .map(|g| g.ids.iter().cloned().collect())
        .collect();
    let want: BTreeSet<String> = (0..3).map(|j| format!("fresh-{j}")).collect();
    assert_eq!(groups, vec![want]);
    for (si, ser) in w.series.iter().enumerate() {
        for m in &ser[ser.len() - 3..] {
            let r = &results[&m.id];
            assert_eq!(r.verdict, pb::Verdict::Known as i32, "{}", m.id);
            assert_eq!(r.series_id, format!("ser-{}", ser[0].id));
            assert!(r.nearest_distance <= 0.36);
            let p = if si == 0 {
                pb::Priority::KnownIdentified
            } else {
                pb::Priority::KnownUnidentified
            };
            assert_eq!(r.priority, p as i32, "{}", m.id);
            if !m.faces.is_empty() {
                assert_eq!(r.matched_faces, 1, "{}", m.id);
                assert_eq!(r.face_series_id, r.series_id);
            }
        }
    }
    for m in &newer {
        let r = &results[&m.id];
        assert_eq!(r.verdict, pb::Verdict::New as i32, "{} {:?}", m.id, r);
        let p = if m.faces.is_empty() {
            pb::Priority::NewMaterial
        } else {
            pb::Priority::NewWithFaces
        };
        assert_eq!(r.priority, p as i32);
        assert!(r.series_id.is_empty());
    }
    // Stored on request: the items and their faces are now in the collections.
    let got = c
        .get(pb::GetRequest {
            collection: "faces".into(),
            ids: vec!["fresh-0#0".into()],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got.points.len(), 1);
    assert_eq!(got.points[0].metadata.as_ref().unwrap().media_id, "fresh-0");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_linking_and_triage_requests_get_clear_statuses() {
    use tonic::Code;
    let server = TestServer::start().await;
    let mut c = setup(&server).await;
    let w = World::new(5, 1, 2);
    store(&mut c, &w.all()).await;
    let req = |image: &str, face: &str, params: Option<pb::LinkParams>| pb::LinkSeriesRequest {
        image_collection: image.into(),
        face_collection: face.into(),
        params,
        scope: None,
    };
    let code = |r: Result<tonic::Response<_>, tonic::Status>| match r {
        Ok(_) => Code::Ok,
        Err(s) => s.code(),
    };
    let e = c.link_series(req("nope", "", None)).await.unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    let e = c
        .link_series(req("images", "images", None))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().contains("face_collection"), "{}", e.message());
    let bad = pb::LinkParams {
        image_threshold: -1.0,
        ..Default::default()
    };
    let e = c
        .link_series(req("images", "", Some(bad)))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(
        e.message().contains("params.image_threshold"),
        "{}",
        e.message()
    );
    let scope = pb::LinkSeriesRequest {
        scope: Some(pb::LinkScope {
            upload_ids: vec![String::new()],
            case_ids: vec![],
            with_restricted: false,
        }),
        ..req("images", "", None)
    };
    let e = c.link_series(scope).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(
        e.message().contains("scope.upload_ids[0]"),
        "{}",
        e.message()
    );

    let up = |u: &str| pb::LinkUploadRequest {
        image_collection: "images".into(),
        face_collection: String::new(),
        upload_id: u.into(),
    };
    let e = c.link_upload(up("up-DE-0")).await.unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{}", e.message());
    assert!(e.message().contains("LinkSeries"), "{}", e.message());
    link(&mut c, None).await.unwrap();
    let e = c.link_upload(up("no-such-upload")).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().contains("no-such-upload"), "{}", e.message());
    assert_eq!(code(c.link_upload(up("up-DE-0")).await), Code::Ok);

    // Triage: a wrong-dimension vector names the item; faces without a face
    // collection are refused; an empty stream is refused.
    let tri = |items: Vec<pb::TriageItem>, faces: &str| pb::TriageRequest {
        image_collection: "images".into(),
        face_collection: faces.into(),
        items,
        ..Default::default()
    };
    let mut short = item(&w.series[0][0]);
    short.vector.truncate(3);
    let mut st = c
        .triage(tokio_stream::iter(vec![tri(
            vec![item(&w.noise[0]), short],
            "faces",
        )]))
        .await
        .unwrap()
        .into_inner();
    let e = st.message().await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().contains("items[1].vector"), "{}", e.message());
    let mut with_face = item(&w.noise[0]);
    with_face.faces.push(pb::Vector {
        values: vec![1.0; DIM],
    });
    let mut st = c
        .triage(tokio_stream::iter(vec![tri(vec![with_face], "")]))
        .await
        .unwrap()
        .into_inner();
    let e = st.message().await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().contains("face_collection"), "{}", e.message());
    let e = c
        .triage(tokio_stream::iter(Vec::<pb::TriageRequest>::new()))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    let e = c
        .triage(tokio_stream::iter(vec![tri(vec![], "nope")]))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    // The server still serves.
    assert_eq!(code(c.link_upload(up("up-DE-0")).await), Code::Ok);
    server.stop().await;
}

/// A victim's material in scenes that look nothing alike (own centroids,
/// unrelated), the victim's face on most media.
struct Victim {
    scenes: Vec<Vec<Media>>,
}

/// `scenes` scenes of `per_scene` media each for victim `v`: image
/// members at cosine 0.82–0.95 to their scene, the victim's face
/// (cosine 0.8–0.9 to `face`) on every media but each scene's last.
fn victim(g: &mut Gen, v: usize, face: &[f32], scenes: usize, per_scene: usize) -> Victim {
    let mut out = Vec::new();
    for sc in 0..scenes {
        let centre = g.random_unit();
        let cc = COUNTRIES[(v + sc) % COUNTRIES.len()];
        let upload = format!("up-{cc}-v{v}-{sc}");
        let t = T0 + (v as i64 * 30 + sc as i64 * 400) * DAY;
        let media = (0..per_scene)
            .map(|j| {
                let id = format!("v{v}-scene{sc}-{j}");
                let image = g.member(&centre);
                let faces = if j + 1 < per_scene {
                    let c = g.rng.random_range(0.8..0.9);
                    vec![g.at_cos(face, c)]
                } else {
                    vec![]
                };
                Media {
                    meta: meta(&id, cc, &upload, t),
                    id,
                    image,
                    faces,
                }
            })
            .collect();
        out.push(media);
    }
    Victim { scenes: out }
}

/// Default `LinkSeries` (no thresholds, no labels to calibrate on): each
/// victim's scenes, which share no image edge, end in one series, joined
/// through the victim's face with face evidence, and the summary counts
/// them as joined only by faces; no two victims are merged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_default_link_joins_scenes_linked_only_by_the_victims_face() {
    let server = TestServer::start().await;
    let mut c = setup(&server).await;
    let mut g = Gen::new(21);
    let victims: Vec<Victim> = (0..4)
        .map(|v| {
            let face = g.random_unit();
            victim(&mut g, v, &face, 2 + v % 2, 6)
        })
        .collect();
    let all: Vec<Media> = victims
        .iter()
        .flat_map(|v| v.scenes.iter().flatten().cloned())
        .collect();
    store(&mut c, &all).await;
    let l = link(&mut c, None).await.unwrap();
    assert_eq!(l.series.len(), victims.len(), "{:?}", grouping(&l.series));
    for v in &victims {
        let want: BTreeSet<String> = v.scenes.iter().flatten().map(|m| m.id.clone()).collect();
        let got = l
            .series
            .iter()
            .find(|s| s.media_ids.contains(&v.scenes[0][0].id))
            .expect("the victim's series");
        let got_set: BTreeSet<String> = got.media_ids.iter().cloned().collect();
        assert_eq!(got_set, want);
        assert!(got.face_joined, "{got:?}");
        let face_edges = got
            .evidence
            .iter()
            .filter(|e| e.kind == pb::EvidenceKind::EvidenceFace as i32)
            .count();
        assert_eq!(
            face_edges,
            v.scenes.len() - 1,
            "one face join per extra scene"
        );
        // The series names its victim's faces: those on its media.
        let faced = v
            .scenes
            .iter()
            .flatten()
            .filter(|m| !m.faces.is_empty())
            .count();
        assert_eq!(got.victim_faces as usize, faced);
    }
    assert_eq!(l.summary.face_joined_series as usize, victims.len());
    assert!(
        l.summary.threshold_source.starts_with("defaults"),
        "{}",
        l.summary.threshold_source
    );
    server.stop().await;
}

/// Two unrelated victims, each in one scene, and one adult beside both on
/// a quarter of each series' media: two series, as planted; the adult is
/// reported as the same person in both (recurring), never as a merge.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_recurring_adult_does_not_merge_two_unrelated_series() {
    let server = TestServer::start().await;
    let mut c = setup(&server).await;
    let mut g = Gen::new(22);
    let adult = g.random_unit();
    let mut planted = Vec::new();
    for v in 0..2 {
        let face = g.random_unit();
        let mut media = victim(&mut g, v, &face, 1, 8).scenes.remove(0);
        for m in media.iter_mut().take(2) {
            let f = g.at_cos(&adult, 0.88);
            m.faces.push(f);
        }
        planted.push(media);
    }
    let all: Vec<Media> = planted.iter().flatten().cloned().collect();
    store(&mut c, &all).await;
    let l = link(&mut c, None).await.unwrap();
    let want: BTreeSet<BTreeSet<String>> = planted
        .iter()
        .map(|p| p.iter().map(|m| m.id.clone()).collect())
        .collect();
    let got: BTreeSet<BTreeSet<String>> = grouping(&l.series).into_values().collect();
    assert_eq!(got, want);
    assert_eq!(l.summary.face_joined_series, 0);
    // The adult's faces are `<media>#1`: one person, in both series.
    let adult_rel: Vec<&pb::SamePerson> = l
        .persons
        .iter()
        .filter(|p| p.face_id.ends_with("#1"))
        .collect();
    assert_eq!(adult_rel.len(), 1, "{:?}", l.persons);
    assert_eq!(adult_rel[0].series_ids.len(), 2);
    assert_eq!(adult_rel[0].media, vec![2, 2]);
    assert!(adult_rel[0].recurring, "{:?}", adult_rel[0]);
    // Neither series takes the adult for its victim: the victim shows on
    // 7 of its 8 media, the adult on 2.
    for s in &l.series {
        assert_eq!(s.victim_faces, 7, "{s:?}");
    }
    assert_eq!(l.summary.same_person as usize, l.persons.len());
    // GetSeries gives each series the lead to the other (the stored
    // relation), with the media of the other series showing the adult.
    for (i, s) in l.series.iter().enumerate() {
        let other = &l.series[1 - i];
        let g = c
            .get_series(pb::GetSeriesRequest {
                image_collection: "images".into(),
                series_id: s.series_id.clone(),
            })
            .await
            .unwrap()
            .into_inner();
        let leads: Vec<(&str, u32)> = g
            .same_person
            .iter()
            .map(|x| (x.other_series_id.as_str(), x.matches))
            .collect();
        assert_eq!(
            leads,
            vec![(other.series_id.as_str(), 2)],
            "{:?}",
            g.same_person
        );
    }
    server.stop().await;
}

/// Issue 11, item 8: a triage that stores its items stores all of them or
/// none: an item whose face point id would be too long is refused before
/// anything is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn triage_stores_all_items_or_none() {
    let server = TestServer::start().await;
    let mut c = setup(&server).await;
    let mut g = Gen::new(81);
    let long_id = "m".repeat(256);
    let good = pb::TriageItem {
        id: "good".into(),
        vector: g.random_unit(),
        faces: vec![pb::Vector {
            values: g.random_unit(),
        }],
        metadata: None,
        ..Default::default()
    };
    let long = pb::TriageItem {
        id: long_id.clone(),
        vector: g.random_unit(),
        faces: vec![pb::Vector {
            values: g.random_unit(),
        }],
        metadata: None,
        ..Default::default()
    };
    let req = pb::TriageRequest {
        image_collection: "images".into(),
        face_collection: "faces".into(),
        items: vec![good, long],
        store: true,
        ..Default::default()
    };
    let mut out = c
        .triage(tokio_stream::iter(vec![req]))
        .await
        .unwrap()
        .into_inner();
    let mut err = None;
    loop {
        match out.message().await {
            Ok(Some(_)) => {}
            Ok(None) => break,
            Err(e) => {
                err = Some(e);
                break;
            }
        }
    }
    let e = err.expect("the triage must be refused");
    assert_eq!(e.code(), tonic::Code::InvalidArgument, "{e:?}");
    assert!(e.message().contains("items[1]"), "{e:?}");
    for (name, ids) in [
        ("images", vec!["good".to_string(), long_id.clone()]),
        ("faces", vec!["good#0".to_string()]),
    ] {
        let got = c
            .get(pb::GetRequest {
                collection: name.into(),
                ids,
            })
            .await
            .unwrap()
            .into_inner();
        assert!(got.points.is_empty(), "{name}: {:?}", got.points.len());
    }
    server.stop().await;
}

/// Triages `items` against images+faces (and every hash set): the verdicts
/// by id, and the summary.
async fn triage_all(
    c: &mut Client,
    items: Vec<pb::TriageItem>,
) -> (BTreeMap<String, pb::TriageResult>, pb::TriageSummary) {
    let req = pb::TriageRequest {
        image_collection: "images".into(),
        face_collection: "faces".into(),
        items,
        ..Default::default()
    };
    let mut st = c
        .triage(tokio_stream::iter(vec![req]))
        .await
        .unwrap()
        .into_inner();
    let (mut results, mut summary) = (BTreeMap::new(), None);
    while let Some(r) = st.message().await.unwrap() {
        results.extend(r.results.into_iter().map(|x| (x.id.clone(), x)));
        summary = r.summary.or(summary);
    }
    (results, summary.expect("a summary ends the stream"))
}

/// The order of certainty and the queue together: a hash match decides
/// before anything else (even a known victim's face: that very file is
/// known), then a close stored image, then a face of a stored series'
/// victim (new material of a known victim, first in the queue), else NEW.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn triage_by_hash_then_image_then_a_known_victims_face() {
    use pb::triage_result::Evidence;
    let server = TestServer::start().await;
    let mut c = setup(&server).await;
    let mut g = Gen::new(24);
    let faces: Vec<Vec<f32>> = (0..2).map(|_| g.random_unit()).collect();
    let victims: Vec<Victim> = (0..2).map(|v| victim(&mut g, v, &faces[v], 2, 6)).collect();
    let all: Vec<Media> = victims
        .iter()
        .flat_map(|v| v.scenes.iter().flatten().cloned())
        .collect();
    store(&mut c, &all).await;
    let l = link(&mut c, None).await.unwrap();
    assert_eq!(l.series.len(), 2, "{:?}", grouping(&l.series));
    let series_of_victim0 = l
        .series
        .iter()
        .find(|s| s.media_ids.contains(&victims[0].scenes[0][0].id))
        .unwrap()
        .series_id
        .clone();
    let sha1: Vec<u8> = (0..20u8).collect();
    c.import_hashes(tokio_stream::iter(vec![pb::ImportHashesRequest {
        set: "known".into(),
        entries: vec![pb::HashEntry {
            sha1: sha1.clone(),
            series: "S-v0".into(),
            ..Default::default()
        }],
        ..Default::default()
    }]))
    .await
    .unwrap();

    let stranger = g.random_unit();
    // Each item: an image unlike anything stored unless said otherwise.
    let mut new_item = |id: &str, face: Option<&[f32]>| {
        let image = g.random_unit();
        let faces = face.map(|f| g.at_cos(f, 0.85)).into_iter().collect();
        item(&Media {
            id: id.into(),
            image,
            faces,
            meta: meta(id, "SE", "seized", T0 + 5000 * DAY),
        })
    };
    let mut items = vec![
        new_item("victim-new", Some(&faces[0])),
        new_item("victim-hashed", Some(&faces[0])),
        new_item("stranger", Some(&stranger)),
        new_item("no-face", None),
    ];
    items[1].sha1 = sha1;
    let mut close = item(&victims[1].scenes[0][0]);
    close.id = "close-image".into();
    close.vector = g.at_cos(&victims[1].scenes[0][0].image, 0.99);
    items.push(close);
    let (res, s) = triage_all(&mut c, items).await;

    use pb::Priority as P;
    use pb::Verdict as V;
    let want = [
        (
            "victim-new",
            V::KnownVictim,
            Evidence::Face,
            P::NewOfKnownVictim,
            1,
        ),
        (
            "stranger",
            V::New,
            Evidence::Unspecified,
            P::NewWithFaces,
            2,
        ),
        ("no-face", V::New, Evidence::Unspecified, P::NewMaterial, 3),
        (
            "victim-hashed",
            V::Known,
            Evidence::ExactHash,
            P::KnownUnidentified,
            4,
        ),
        (
            "close-image",
            V::Known,
            Evidence::Embedding,
            P::KnownUnidentified,
            4,
        ),
    ];
    for (id, verdict, evidence, priority, rank) in want {
        let r = &res[id];
        let got = (r.verdict, r.evidence, r.priority, r.rank);
        let want = (verdict as i32, evidence as i32, priority as i32, rank);
        assert_eq!(got, want, "{id}: {r:?}");
        assert!(!r.reason.is_empty(), "{id}");
    }
    assert_eq!(res["victim-new"].series_id, series_of_victim0);
    assert_eq!(res["victim-new"].face_series_id, series_of_victim0);
    assert_eq!(res["victim-hashed"].series_label, "S-v0");
    assert_eq!(res["victim-hashed"].matched_key, "sha1");
    let counts = (s.items, s.known, s.known_victim, s.new, s.new_with_faces);
    assert_eq!(counts, (5, 2, 1, 2, 1), "{s:?}");
    let by = (s.by_exact_hash, s.by_embedding, s.by_face);
    assert_eq!(by, (1, 1, 1), "{s:?}");
    server.stop().await;
}
