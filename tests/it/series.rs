//! Series as reviewed records, end to end over loopback gRPC: reading
//! series (ListSeries, GetSeries, SeriesOfMedia), investigators' decisions
//! (ReviewSeries) that every later LinkSeries and LinkUpload honours across
//! restarts, UpdateMetadata seen by filters at once and after `kill -9`,
//! search `max_distance`, and the `vidx series` commands with the HTML report.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tonic::Code;
use vidx::pb;

use crate::support::process::{ServerProcess, run};
use crate::support::{
    Client, TestServer, at_cosine, connect, create_req, random_unit, search_req, upsert_batches,
    vector_query,
};

const DIM: usize = 32;
const T0: i64 = 1_500_000_000;
const DAY: i64 = 86_400;

fn meta(id: &str, country: &str, upload: &str, t: i64) -> pb::Metadata {
    pb::Metadata {
        media_id: id.into(),
        upload_id: upload.into(),
        case_id: format!("case-{country}"),
        country: country.into(),
        agency: format!("{country}-VIU"),
        captured_at: t - 300 * DAY,
        uploaded_at: t,
        ..Default::default()
    }
}

fn point(id: &str, v: Vec<f32>, m: pb::Metadata) -> pb::Point {
    pb::Point {
        id: id.into(),
        vector: v,
        metadata: Some(m),
        ..Default::default()
    }
}

/// Three planted series (a: DE+FR with a near-duplicate pair a0/a0dup,
/// b: BR+NL, c: PL), a face per a-member, and noise.
struct World {
    rng: ChaCha8Rng,
    centres: Vec<Vec<f32>>,
    images: Vec<pb::Point>,
    faces: Vec<pb::Point>,
}

impl World {
    fn new(seed: u64) -> World {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let centres: Vec<Vec<f32>> = (0..3).map(|_| random_unit(&mut rng, DIM)).collect();
        let victim = random_unit(&mut rng, DIM);
        let mut w = World {
            rng,
            centres,
            images: Vec::new(),
            faces: Vec::new(),
        };
        for (s, parts) in [
            ("a", vec![("DE", 0), ("FR", 400)]),
            ("b", vec![("BR", 100), ("NL", 700)]),
            ("c", vec![("PL", 200)]),
        ] {
            let si = (s.as_bytes()[0] - b'a') as usize;
            let mut j = 0;
            for (cc, day) in parts {
                for _ in 0..4 {
                    let id = format!("{s}{j}");
                    let v = w.member(si);
                    let m = meta(&id, cc, &format!("up-{cc}-{s}"), T0 + day * DAY + j as i64);
                    if s == "a" {
                        let f = at_cosine(&mut w.rng, &victim, 0.8);
                        w.faces.push(point(&format!("{id}#0"), f, m.clone()));
                    }
                    w.images.push(point(&id, v, m));
                    j += 1;
                }
            }
        }
        let src = w.images[0].vector.clone();
        let dup = at_cosine(&mut w.rng, &src, 0.995);
        w.images.push(point(
            "a0dup",
            dup,
            meta("a0dup", "FR", "up-FR-a", T0 + 500 * DAY),
        ));
        for n in 0..6 {
            let id = format!("noise{n}");
            let v = random_unit(&mut w.rng, DIM);
            w.images.push(point(
                &id,
                v,
                meta(&id, "SE", "up-SE-noise", T0 + 900 * DAY),
            ));
        }
        w
    }

    /// A member of series `s`: cosine 0.9 to its centre.
    fn member(&mut self, s: usize) -> Vec<f32> {
        let c = self.centres[s].clone();
        at_cosine(&mut self.rng, &c, 0.9)
    }
}

async fn setup(c: &mut Client, w: &World) {
    c.create_collection(create_req("images", DIM as u32, pb::Metric::Cosine))
        .await
        .unwrap();
    let mut f = create_req("faces", DIM as u32, pb::Metric::Cosine);
    f.kind = pb::Kind::Face as i32;
    c.create_collection(f).await.unwrap();
    upsert_batches(c, "images", w.images.clone(), 100)
        .await
        .unwrap();
    upsert_batches(c, "faces", w.faces.clone(), 100)
        .await
        .unwrap();
}

async fn link(c: &mut Client) -> pb::LinkSummary {
    let mut s = c
        .link_series(pb::LinkSeriesRequest {
            image_collection: "images".into(),
            face_collection: "faces".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let mut summary = None;
    while let Some(ev) = s.message().await.unwrap() {
        if let Some(pb::link_event::Event::Summary(x)) = ev.event {
            summary = Some(x);
        }
    }
    summary.expect("summary")
}

/// Media → series id ("" when in none) of every image point.
async fn membership(c: &mut Client, w: &World) -> BTreeMap<String, String> {
    let ids: Vec<String> = w.images.iter().map(|p| p.id.clone()).collect();
    let r = c
        .series_of_media(pb::SeriesOfMediaRequest {
            image_collection: "images".into(),
            media_ids: ids,
        })
        .await
        .unwrap()
        .into_inner();
    r.media
        .into_iter()
        .map(|m| (m.media_id, m.series_id))
        .collect()
}

async fn get(c: &mut Client, id: &str) -> pb::GetSeriesResponse {
    c.get_series(pb::GetSeriesRequest {
        image_collection: "images".into(),
        series_id: id.into(),
    })
    .await
    .unwrap_or_else(|e| panic!("GetSeries {id}: {}", e.message()))
    .into_inner()
}

fn decision(kind: pb::DecisionKind) -> pb::Decision {
    pb::Decision {
        kind: kind as i32,
        ..Default::default()
    }
}

fn pair(kind: pb::DecisionKind, a: &str, b: &str) -> pb::Decision {
    pb::Decision {
        media_a: a.into(),
        media_b: b.into(),
        ..decision(kind)
    }
}

fn on_series(kind: pb::DecisionKind, s: &str) -> pb::Decision {
    pb::Decision {
        series_id: s.into(),
        ..decision(kind)
    }
}

async fn review(
    c: &mut Client,
    decisions: Vec<pb::Decision>,
    note: &str,
) -> Result<pb::ReviewSeriesResponse, tonic::Status> {
    c.review_series(pb::ReviewSeriesRequest {
        image_collection: "images".into(),
        decisions,
        reviewer: "DE-BKA/analyst-7".into(),
        note: note.into(),
    })
    .await
    .map(|r| r.into_inner())
}

/// Every series' label, identification and members, for comparing states.
type Snapshot = BTreeMap<String, (String, bool, Vec<String>)>;

async fn snapshot(c: &mut Client) -> Snapshot {
    let r = c
        .list_series(pb::ListSeriesRequest {
            image_collection: "images".into(),
            page_size: 1000,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    r.series
        .into_iter()
        .map(|s| {
            (
                s.series_id.clone(),
                (s.label, s.victim_identified, s.media_ids),
            )
        })
        .collect()
}

/// REJECT_LINK of two near-duplicates, CONFIRM_LINK of a noise media, and
/// a SPLIT: each changes what SeriesOfMedia returns.
async fn reject_confirm_split(c: &mut Client, w: &World) {
    use pb::DecisionKind as K;
    let m = membership(c, w).await;
    assert_eq!(m["a0"], "ser-a0");
    assert_eq!(
        m["a0dup"], "ser-a0",
        "the near-duplicate links with its source"
    );
    assert_eq!(m["b0"], "ser-b0");
    assert_eq!(m["c0"], "ser-c0");
    assert_eq!(m["noise0"], "");

    // REJECT_LINK of two near-duplicates: they are apart from now on.
    let r = review(
        c,
        vec![pair(K::RejectLink, "a0", "a0dup")],
        "different child, same room",
    )
    .await
    .unwrap();
    assert_eq!(r.recorded.len(), 1);
    assert_eq!(r.recorded[0].decision_id, 1);
    assert!(r.regroup_seconds > 0.0);
    let m = membership(c, w).await;
    assert_ne!(m["a0"], m["a0dup"], "{m:?}");

    // CONFIRM_LINK brings a noise media into b; SPLIT sends b5..b7 off.
    review(c, vec![pair(K::ConfirmLink, "noise0", "b3")], "")
        .await
        .unwrap();
    let m = membership(c, w).await;
    assert_eq!(m["noise0"], "ser-b0");
    let mut split = on_series(K::Split, "ser-b0");
    split.media_ids = vec!["b5".into(), "b6".into(), "b7".into()];
    split.note = "NL material is another child".into();
    review(c, vec![split], "").await.unwrap();
    let m = membership(c, w).await;
    assert_eq!(m["b5"], "ser-b5");
    assert_eq!(m["b6"], "ser-b5");
    assert_eq!(m["b0"], "ser-b0");
    assert_eq!(m["noise0"], "ser-b0");
}

/// MERGE, then LABEL and MARK_IDENTIFIED in one request: GetSeries shows
/// them with who, when and why. Returns the merged series' id.
async fn merge_label_identify(c: &mut Client, w: &World) -> String {
    use pb::DecisionKind as K;
    let m = membership(c, w).await;
    // MERGE c into a: the earlier founder's id survives. Then LABEL and
    // MARK_IDENTIFIED (in one request) carry to the merged series.
    let mut merge = decision(K::Merge);
    merge.series_ids = vec!["ser-c0".into(), m["a1"].clone()];
    review(c, vec![merge], "same victim, confirmed by face")
        .await
        .unwrap();
    let m = membership(c, w).await;
    let a = m["a1"].clone();
    assert_eq!(m["c0"], a);
    let mut label = on_series(K::Label, &a);
    label.label = "S-0042".into();
    let mut ident = on_series(K::MarkIdentified, &a);
    ident.reference = "VID-DE-2019-17".into();
    let mut label_b = on_series(K::Label, "ser-b0");
    label_b.label = "S-0043".into();
    let r = review(c, vec![label, ident, label_b], "").await.unwrap();
    assert_eq!(r.regroup_seconds, 0.0, "labels regroup nothing");
    let g = get(c, &a).await;
    let s = g.series.as_ref().unwrap();
    assert_eq!(s.label, "S-0042");
    assert!(s.victim_identified);
    assert_eq!(s.identified_references, vec!["VID-DE-2019-17".to_string()]);
    let kinds: Vec<i32> = g
        .decisions
        .iter()
        .map(|d| d.decision.as_ref().unwrap().kind)
        .collect();
    for k in [K::RejectLink, K::Merge, K::Label, K::MarkIdentified] {
        assert!(kinds.contains(&(k as i32)), "{k:?} missing in {kinds:?}");
    }
    let merged = g
        .decisions
        .iter()
        .find(|d| d.decision.as_ref().unwrap().kind == K::Merge as i32)
        .unwrap();
    assert_eq!(merged.reviewer, "DE-BKA/analyst-7");
    assert_eq!(merged.note, "same victim, confirmed by face");
    assert!(merged.decided_at > 1_700_000_000);
    assert!(
        s.evidence
            .iter()
            .any(|e| e.kind == pb::EvidenceKind::EvidenceDecision as i32
                && e.decision_id == merged.decision_id),
        "the merge is evidence"
    );
    assert!(
        g.rejected.iter().any(|p| p.decision_id == 1),
        "{:?}",
        g.rejected
    );
    // Leads come from the last full link's "same person" relation: other
    // series, each with the media showing the person there.
    for l in &g.same_person {
        assert_ne!(l.other_series_id, s.series_id, "{l:?}");
        assert!(l.matches > 0, "{l:?}");
    }
    assert_eq!(g.media.len(), s.media_ids.len());
    assert!(
        g.media
            .iter()
            .any(|x| x.faces == 1 && x.metadata.as_ref().unwrap().country == "DE")
    );
    a
}

/// Contrary decisions are refused, naming the earlier one, and change
/// nothing.
async fn refuse_contrary(c: &mut Client, a: &str, reviewed: &Snapshot) {
    use pb::DecisionKind as K;
    // Conflicting decisions are refused, naming the earlier one.
    let e = review(c, vec![pair(K::ConfirmLink, "a0dup", "a0")], "")
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{}", e.message());
    assert!(e.message().contains("REJECT_LINK #1"), "{}", e.message());
    let e = review(c, vec![pair(K::RejectLink, "b3", "noise0")], "")
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    assert!(e.message().contains("CONFIRM_LINK #2"), "{}", e.message());
    let mut again = on_series(K::MarkIdentified, a);
    again.reference = "VID-OTHER".into();
    let e = review(c, vec![again], "").await.unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    assert!(e.message().contains("MARK_IDENTIFIED"), "{}", e.message());
    // A MERGE of the two sides of the SPLIT, and a SPLIT that would part
    // the confirmed pair noise0-b3.
    let mut unsplit = decision(K::Merge);
    unsplit.series_ids = vec!["ser-b0".into(), "ser-b5".into()];
    let e = review(c, vec![unsplit], "").await.unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{}", e.message());
    assert!(
        e.message().contains("decisions[0]") && e.message().contains("SPLIT #3"),
        "{}",
        e.message()
    );
    let mut part = on_series(K::Split, "ser-b0");
    part.media_ids = vec!["noise0".into()];
    let e = review(c, vec![part], "").await.unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{}", e.message());
    assert!(e.message().contains("CONFIRM_LINK #2"), "{}", e.message());
    assert_eq!(
        snapshot(c).await,
        *reviewed,
        "a refused request changes nothing"
    );
}

/// A new upload with another near-duplicate of a0 and more b members:
/// LinkUpload keeps a0 and a0dup apart, the split split, the label on the
/// grown series, and equals a full re-link.
async fn upload_keeps_decisions(c: &mut Client, w: &mut World, a: &str) {
    let src = w.images[0].vector.clone();
    let dup2 = at_cosine(&mut w.rng, &src, 0.995);
    let late = T0 + 2000 * DAY;
    let mut new = vec![point("a0dup2", dup2, meta("a0dup2", "GB", "up-GB", late))];
    for j in 0..3 {
        let id = format!("b-new{j}");
        let v = w.member(1);
        new.push(point(&id, v, meta(&id, "GB", "up-GB", late)));
    }
    upsert_batches(c, "images", new.clone(), 10).await.unwrap();
    w.images.extend(new);
    let up = c
        .link_upload(pb::LinkUploadRequest {
            image_collection: "images".into(),
            upload_id: "up-GB".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(up.relinked, "decisions are in play");
    assert_eq!(up.media.len(), 4);
    let m = membership(c, w).await;
    assert_ne!(m["a0"], m["a0dup"], "{m:?}");
    assert_ne!(m["b0"], m["b5"], "the split stays split");
    assert!([&m["b0"], &m["b5"]].contains(&&m["b-new0"]), "{m:?}");
    let after_upload = snapshot(c).await;
    assert_eq!(
        after_upload[a].0, "S-0042",
        "the label carries to the grown series"
    );
    link(c).await;
    assert_eq!(
        snapshot(c).await,
        after_upload,
        "LinkUpload equals a full re-link"
    );
}

/// Every decision kind changes what GetSeries / SeriesOfMedia return; the
/// result survives a full re-link, a restart and a LinkUpload, and a
/// contrary decision is refused naming the earlier one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decisions_change_series_and_hold_across_relinks_restarts_and_uploads() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_in(dir.path(), Default::default()).await;
    let mut c = server.client().await;
    let mut w = World::new(3);
    setup(&mut c, &w).await;
    link(&mut c).await;
    reject_confirm_split(&mut c, &w).await;
    let a = merge_label_identify(&mut c, &w).await;
    let reviewed = snapshot(&mut c).await;
    refuse_contrary(&mut c, &a, &reviewed).await;

    // A full re-link gives exactly the reviewed series.
    let summary = link(&mut c).await;
    assert_eq!(summary.decisions, 7);
    assert!(summary.refused_by_decisions > 0);
    assert_eq!(
        snapshot(&mut c).await,
        reviewed,
        "re-linking keeps every decision"
    );

    // A restart, and a re-link after it.
    server.stop().await;
    let server = TestServer::start_in(dir.path(), Default::default()).await;
    let mut c = server.client().await;
    assert_eq!(snapshot(&mut c).await, reviewed, "after a restart");
    link(&mut c).await;
    assert_eq!(
        snapshot(&mut c).await,
        reviewed,
        "re-linked after a restart"
    );

    upload_keeps_decisions(&mut c, &mut w, &a).await;
    server.stop().await;
}

/// Unknown series and media: NOT_FOUND naming the field and value.
async fn bad_reads(c: &mut Client) {
    let e = c
        .get_series(pb::GetSeriesRequest {
            image_collection: "images".into(),
            series_id: "ser-nope".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    assert!(
        e.message().contains("series_id \"ser-nope\""),
        "{}",
        e.message()
    );
    let e = c
        .series_of_media(pb::SeriesOfMediaRequest {
            image_collection: "images".into(),
            media_ids: vec!["a0".into(), "not-a-media".into()],
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    assert!(
        e.message().contains("media_ids[1]") && e.message().contains("not-a-media"),
        "{}",
        e.message()
    );
    let e = c
        .get_series(pb::GetSeriesRequest {
            image_collection: "faces".into(),
            series_id: "ser-a0".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{}", e.message());
}

/// Bad decisions: INVALID_ARGUMENT or NOT_FOUND naming the field; a bad
/// decision refuses its whole request.
async fn bad_decisions(c: &mut Client) {
    use pb::DecisionKind as K;
    let empty = pb::ReviewSeriesRequest {
        image_collection: "images".into(),
        decisions: vec![pair(K::RejectLink, "a0", "a1")],
        reviewer: "  ".into(),
        note: String::new(),
    };
    let e = c.review_series(empty).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().contains("reviewer"), "{}", e.message());
    for (d, code, field) in [
        (
            pair(K::RejectLink, "a0", "elsewhere"),
            Code::InvalidArgument,
            "decisions[0].media_b \"elsewhere\"",
        ),
        (
            pair(K::ConfirmLink, "a0", "a0"),
            Code::InvalidArgument,
            "decisions[0]",
        ),
        (
            pair(K::Unspecified, "a0", "a1"),
            Code::InvalidArgument,
            "decisions[0].kind",
        ),
        (
            on_series(K::Label, "ser-a0"),
            Code::InvalidArgument,
            "decisions[0].label",
        ),
        (
            on_series(K::MarkIdentified, "ser-zz"),
            Code::NotFound,
            "decisions[0].series_id \"ser-zz\"",
        ),
        (
            pb::Decision {
                series_ids: vec!["ser-a0".into(), "ser-gone".into()],
                ..decision(K::Merge)
            },
            Code::NotFound,
            "decisions[0].series_ids[1] \"ser-gone\"",
        ),
        (
            pair(K::RejectLink, "", "a1"),
            Code::InvalidArgument,
            "decisions[0].media_a",
        ),
        (
            pb::Decision {
                media_ids: vec!["b1".into()],
                ..on_series(K::Split, "ser-a0")
            },
            Code::InvalidArgument,
            "decisions[0].media_ids[0]",
        ),
        (
            pb::Decision {
                series_ids: vec!["ser-a0".into()],
                ..decision(K::Merge)
            },
            Code::InvalidArgument,
            "decisions[0].series_ids",
        ),
    ] {
        let e = review(c, vec![d.clone()], "").await.unwrap_err();
        assert_eq!(e.code(), code, "{d:?}: {}", e.message());
        assert!(e.message().contains(field), "{d:?}: {}", e.message());
    }
    // A bad second decision refuses the first too.
    let e = review(
        c,
        vec![
            pair(K::RejectLink, "a0", "a1"),
            pair(K::ConfirmLink, "a1", "a0"),
        ],
        "",
    )
    .await
    .unwrap_err();
    assert!(
        e.message().contains("decisions[1]") && e.message().contains("REJECT_LINK #1"),
        "{}",
        e.message()
    );
    let r = review(c, vec![pair(K::RejectLink, "a0", "a1")], "")
        .await
        .unwrap();
    assert_eq!(
        r.recorded[0].decision_id, 1,
        "nothing of the refused request was kept"
    );
}

async fn bad_pages_and_updates(c: &mut Client) {
    let e = c
        .list_series(pb::ListSeriesRequest {
            image_collection: "images".into(),
            page_size: 5000,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().contains("page_size"), "{}", e.message());
    let e = c
        .update_metadata(pb::UpdateMetadataRequest {
            collection: "images".into(),
            ids: vec!["a0".into(), "ghost".into()],
            set: Some(pb::MetadataUpdate {
                victim_identified: Some(true),
                ..Default::default()
            }),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    assert!(e.message().contains("ghost"), "{}", e.message());
    let e = c
        .update_metadata(pb::UpdateMetadataRequest {
            collection: "images".into(),
            ids: vec!["a0".into()],
            set: None,
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().contains("set"), "{}", e.message());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_review_requests_get_clear_statuses() {
    let server = TestServer::start().await;
    let mut c = server.client().await;
    let w = World::new(5);
    setup(&mut c, &w).await;
    use pb::DecisionKind as K;
    let e = review(&mut c, vec![pair(K::RejectLink, "a0", "a1")], "")
        .await
        .unwrap_err();
    assert_eq!(
        e.code(),
        Code::FailedPrecondition,
        "before LinkSeries: {}",
        e.message()
    );
    link(&mut c).await;
    bad_reads(&mut c).await;
    bad_decisions(&mut c).await;
    bad_pages_and_updates(&mut c).await;
    server.stop().await;
}

async fn identified(c: &mut Client, q: &[f32], value: bool) -> BTreeSet<String> {
    let mut req = search_req("meta", vec![vector_query(q.to_vec())], 1000);
    req.filter = Some(pb::Filter {
        victim_identified: Some(value),
        tags_all: if value {
            vec!["reviewed".into()]
        } else {
            vec![]
        },
        ..Default::default()
    });
    let r = c.search(req).await.unwrap().into_inner();
    r.results[0].hits.iter().map(|h| h.id.clone()).collect()
}

/// UpdateMetadata of points in a sealed segment and in the mutable one is
/// seen by a filtered search at once, and after `kill -9` and a restart; the
/// vectors stay as they were.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_metadata_is_filtered_at_once_and_after_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let (mut p, url) = ServerProcess::start(dir.path(), &["--sync", "always"]);
    let mut c = connect(&url).await;
    c.create_collection(create_req("meta", DIM as u32, pb::Metric::Cosine))
        .await
        .unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let pts: Vec<pb::Point> = (0..400)
        .map(|i| {
            let id = format!("p{i}");
            point(&id, random_unit(&mut rng, DIM), meta(&id, "DE", "up-1", T0))
        })
        .collect();
    upsert_batches(&mut c, "meta", pts[..300].to_vec(), 100)
        .await
        .unwrap();
    c.flush(pb::FlushRequest {
        collection: "meta".into(),
    })
    .await
    .unwrap();
    upsert_batches(&mut c, "meta", pts[300..].to_vec(), 100)
        .await
        .unwrap();
    // p5 and p17 are sealed, p350 is in the mutable segment.
    let ids = vec!["p5".to_string(), "p17".into(), "p350".into()];
    let r = c
        .update_metadata(pb::UpdateMetadataRequest {
            collection: "meta".into(),
            ids: ids.clone(),
            set: Some(pb::MetadataUpdate {
                victim_identified: Some(true),
                series_label: Some("S-0099".into()),
                add_tags: vec!["reviewed".into()],
                ..Default::default()
            }),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.updated, 3);
    let q = random_unit(&mut rng, DIM);
    let want: BTreeSet<String> = ids.iter().cloned().collect();
    assert_eq!(identified(&mut c, &q, true).await, want);
    assert_eq!(identified(&mut c, &q, false).await.len(), 397);
    p.kill();
    let (_p, url) = ServerProcess::start(dir.path(), &["--sync", "always"]);
    let mut c = connect(&url).await;
    assert_eq!(identified(&mut c, &q, true).await, want, "after kill -9");
    let got = c
        .get(pb::GetRequest {
            collection: "meta".into(),
            ids: vec!["p5".into()],
        })
        .await
        .unwrap()
        .into_inner()
        .points;
    let m = got[0].metadata.as_ref().unwrap();
    assert_eq!(m.series_label, "S-0099");
    assert_eq!(m.tags, vec!["reviewed".to_string()]);
    assert_eq!(m.country, "DE", "other fields stay");
    for (a, b) in got[0].vector.iter().zip(&pts[5].vector) {
        assert!((a - b).abs() < 1e-6);
    }
    let info = c
        .describe_collection(pb::DescribeCollectionRequest {
            name: "meta".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(info.points, 400, "an update replaces, never adds");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_max_distance_drops_farther_hits() {
    let server = TestServer::start().await;
    let mut c = server.client().await;
    let w = World::new(8);
    setup(&mut c, &w).await;
    let q = w.images[0].vector.clone();
    let mut req = search_req("images", vec![vector_query(q.clone())], 50);
    let all = c.search(req.clone()).await.unwrap().into_inner().results[0]
        .hits
        .clone();
    assert!(all.iter().any(|h| h.distance > 0.36));
    req.max_distance = Some(0.36);
    let near = c.search(req.clone()).await.unwrap().into_inner().results[0]
        .hits
        .clone();
    assert!(!near.is_empty());
    assert!(near.iter().all(|h| h.distance <= 0.36));
    let within: Vec<&str> = all
        .iter()
        .filter(|h| h.distance <= 0.36)
        .map(|h| h.id.as_str())
        .collect();
    let got: Vec<&str> = near.iter().map(|h| h.id.as_str()).collect();
    assert_eq!(got, within);
    req.max_distance = Some(f32::NAN);
    let e = c.search(req).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().contains("max_distance"), "{}", e.message());
    server.stop().await;
}

/// 10,000 series (near-duplicate pairs far apart): ListSeries pages through
/// them in stable series-id order, and SeriesOfMedia answers 10,000 media
/// in one call. Timings are printed for the record, not asserted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_series_page_and_resolve() {
    const N: usize = 10_000;
    const D: usize = 128;
    let server = TestServer::start().await;
    let mut c = server.client().await;
    c.create_collection(create_req("many", D as u32, pb::Metric::Cosine))
        .await
        .unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(77);
    let countries = ["DE", "FR", "BR", "NL"];
    let mut pts = Vec::with_capacity(2 * N);
    for i in 0..N {
        let v = random_unit(&mut rng, D);
        let dup = at_cosine(&mut rng, &v, 0.99);
        let cc = countries[rng.random_range(0..countries.len())];
        for (j, x) in [v, dup].into_iter().enumerate() {
            let id = format!("m{i:05}-{j}");
            pts.push(point(
                &id,
                x,
                meta(&id, cc, &format!("up-{cc}"), T0 + i as i64),
            ));
        }
    }
    upsert_batches(&mut c, "many", pts, 2000).await.unwrap();
    let t = Instant::now();
    let mut s = c
        .link_series(pb::LinkSeriesRequest {
            image_collection: "many".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    while s.message().await.unwrap().is_some() {}
    eprintln!(
        "linked {} media in {:.2}s",
        2 * N,
        t.elapsed().as_secs_f64()
    );

    let page = |size: u32, token: String| pb::ListSeriesRequest {
        image_collection: "many".into(),
        page_size: size,
        page_token: token,
        ..Default::default()
    };
    let mut order = Vec::new();
    let mut token = String::new();
    let t = Instant::now();
    loop {
        let r = c.list_series(page(1000, token)).await.unwrap().into_inner();
        assert_eq!(r.total as usize, N);
        order.extend(r.series.into_iter().map(|s| s.series_id));
        if r.next_page_token.is_empty() {
            break;
        }
        token = r.next_page_token;
    }
    eprintln!(
        "ListSeries: {N} series in 10 pages of 1000: {:.3}s",
        t.elapsed().as_secs_f64()
    );
    assert_eq!(order.len(), N);
    let mut sorted = order.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(order, sorted, "stable series-id order, no repeats");
    // Other page sizes walk the same order.
    let mut again = Vec::new();
    let mut token = String::new();
    loop {
        let r = c.list_series(page(333, token)).await.unwrap().into_inner();
        again.extend(r.series.into_iter().map(|s| s.series_id));
        if r.next_page_token.is_empty() {
            break;
        }
        token = r.next_page_token;
    }
    assert_eq!(again, order);
    // A filter: only DE series.
    let mut de = page(1000, String::new());
    de.filter = Some(pb::SeriesFilter {
        countries_any: vec!["DE".into()],
        min_media: 2,
        ..Default::default()
    });
    let r = c.list_series(de).await.unwrap().into_inner();
    assert!(r.total > 1000 && (r.total as usize) < N, "{}", r.total);
    assert!(
        r.series
            .iter()
            .all(|s| s.countries == vec!["DE".to_string()])
    );

    let media: Vec<String> = (0..N).map(|i| format!("m{i:05}-1")).collect();
    let t = Instant::now();
    let r = c
        .series_of_media(pb::SeriesOfMediaRequest {
            image_collection: "many".into(),
            media_ids: media.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    eprintln!(
        "SeriesOfMedia: {N} media in one call: {:.3}s",
        t.elapsed().as_secs_f64()
    );
    assert_eq!(r.media.len(), N);
    for (i, m) in r.media.iter().enumerate() {
        assert_eq!(m.media_id, media[i]);
        assert_eq!(m.series_id, format!("ser-m{i:05}-0"));
    }
    server.stop().await;
}

/// The `vidx series` commands against a server: list, show, of, and the
/// HTML report, which is self-contained (inline SVG, no network, no image).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn series_commands_and_the_html_report() {
    let server = TestServer::start().await;
    let mut c = server.client().await;
    let w = World::new(11);
    setup(&mut c, &w).await;
    link(&mut c).await;
    use pb::DecisionKind as K;
    review(
        &mut c,
        vec![
            pair(K::RejectLink, "a0", "a0dup"),
            pair(K::ConfirmLink, "a1", "noise1"),
        ],
        "review <1>",
    )
    .await
    .unwrap();
    let m = membership(&mut c, &w).await;
    let a = m["a1"].clone();
    let mut label = on_series(K::Label, &a);
    label.label = "S-0042".into();
    review(&mut c, vec![label], "").await.unwrap();
    let members: Vec<String> = m
        .iter()
        .filter(|(_, s)| **s == a)
        .map(|(x, _)| x.clone())
        .collect();
    assert!(members.contains(&"noise1".to_string()));
    let url = format!("http://{}", server.addr);
    let a2 = a.clone();
    let out = tokio::task::spawn_blocking(move || {
        let list = run(&["series", "list", "--server", &url]);
        let show = run(&["series", "show", &a2, "--server", &url]);
        let of = run(&["series", "of", "a0", "a0dup", "noise5", "--server", &url]);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("report.html");
        run(&[
            "series",
            "report",
            &a2,
            "--server",
            &url,
            "--out",
            path.to_str().unwrap(),
        ]);
        let html = std::fs::read_to_string(&path).unwrap();
        (list, show, of, html)
    })
    .await
    .unwrap();
    let (list, show, of, html) = out;
    assert!(
        list.contains(&a) && list.contains("ser-b0") && list.contains("S-0042"),
        "{list}"
    );
    assert!(
        show.contains("REJECT_LINK") && show.contains("DE-BKA/analyst-7"),
        "{show}"
    );
    let of_lines: Vec<Vec<&str>> = of.lines().map(|l| l.split_whitespace().collect()).collect();
    let a0 = if m["a0"].is_empty() {
        "(none)"
    } else {
        m["a0"].as_str()
    };
    assert!(of_lines.contains(&vec!["a0", a0]), "{of}");
    assert!(of_lines.contains(&vec!["noise5", "(none)"]), "{of}");
    assert!(html.starts_with("<!DOCTYPE html>"), "{}", &html[..100]);
    assert!(html.contains(&a), "the report names its series");
    for want in [
        "<svg",
        "S-0042",
        "DE",
        "FR",
        "DE-VIU",
        "FR-VIU",
        "REJECT_LINK",
        "CONFIRM_LINK",
        "LABEL",
        "DE-BKA/analyst-7",
        "review &lt;1&gt;",
        "near-duplicate",
        "decision",
        "rejected",
        "Same person",
        "Timeline",
        "Evidence",
    ] {
        assert!(html.contains(want), "the report lacks {want:?}");
    }
    for never in [
        "<img",
        "http://",
        "https://",
        "<script src",
        "url(",
        "<link",
    ] {
        assert!(
            !html.contains(never),
            "the report must be self-contained: {never:?}"
        );
    }
    // Every member is a node of the graph.
    for m in &members {
        assert!(html.contains(&format!(">{m}<")), "node {m} missing");
    }
    server.stop().await;
}
