//! The triage benchmark: a generated set split by upload time into a
//! database (linked into series) and a seized set triaged against it, the
//! verdicts scored against the truth.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::time::Instant;

use anyhow::ensure;
use rayon::prelude::*;
use serde::Serialize;

use crate::collection::View;
use crate::investigate::series::{SeriesState, state_format};
use crate::investigate::triage::Triager;
use crate::investigate::{calibrate, link};
use crate::pb;
use crate::tools::link_eval::{IngestTimes, bar, on_progress, read_points, registry};
use crate::tools::synth::Truth;

/// Figures of the triage benchmark.
#[derive(Clone, Debug, Default, Serialize)]
pub struct TriageReport {
    pub database_fraction: f64,
    pub database_uploads: usize,
    pub seized_uploads: usize,
    pub database_media: usize,
    pub database_faces: usize,
    pub database_series: usize,
    pub seized_items: usize,
    pub accuracy: f64,
    /// [truth][verdict] with index 0 = KNOWN, 1 = NEW.
    pub confusion: [[usize; 2]; 2],
    /// Truth-KNOWN items whose series_id is the series holding the most
    /// database members of their truth series (or empty if none is in one).
    pub series_id_correct: usize,
    /// Truth-KNOWN items whose truth series has database members in no series.
    pub known_without_db_series: usize,
    /// Per kind of item: (kind, items, judged KNOWN or KNOWN_VICTIM).
    pub by_kind: Vec<(String, usize, usize)>,
    /// Items judged KNOWN_VICTIM (new material of a known victim).
    pub known_victim: usize,
    pub link_seconds: f64,
    pub triage_seconds: f64,
    pub ingest: Vec<IngestTimes>,
}

/// Splits the set by upload time, links the earliest `database_fraction`
/// of the uploads (ingested into `<root>/triage-registry`) and triages the
/// media of the others against it.
pub fn triage_bench(
    database_fraction: f64,
    batch: usize,
    root: &Path,
    gen_dir: &Path,
    truth: &Truth,
) -> anyhow::Result<TriageReport> {
    ensure!(
        (0.0..=1.0).contains(&database_fraction),
        "--database-fraction must be between 0 and 1"
    );
    let (db_uploads, n_db, n_uploads) = database_uploads(truth, database_fraction);
    let in_db = |p: &pb::Point| {
        p.metadata
            .as_ref()
            .is_some_and(|m| db_uploads.contains(&m.upload_id))
    };
    let mut rep = TriageReport {
        database_fraction,
        database_uploads: n_db,
        seized_uploads: n_uploads - n_db,
        ..Default::default()
    };
    let images = read_points(gen_dir, "images")?;
    let faces = read_points(gen_dir, "faces")?;
    let marker = format!("{}\ndatabase uploads: {n_db}\n", truth.command);
    let (reg, times) = registry(
        &root.join("triage-registry"),
        &marker,
        truth.params.dim,
        batch,
        |name| {
            let src = if name == "images" { &images } else { &faces };
            Ok(src.iter().filter(|p| in_db(p)).cloned().collect())
        },
    )?;
    rep.ingest = times.unwrap_or_default();
    rep.database_media = images.iter().filter(|p| in_db(p)).count();
    rep.database_faces = faces.iter().filter(|p| in_db(p)).count();

    let iv = reg.get("images")?.view()?;
    let fv = reg.get("faces")?.view()?;
    let start = Instant::now();
    let state = link_database(&iv, &fv)?;
    let s = state.settings.clone();
    rep.link_seconds = start.elapsed().as_secs_f64();
    rep.database_series = state.series.len();
    let db_media: HashSet<&str> = images
        .iter()
        .filter(|p| in_db(p))
        .map(|p| p.id.as_str())
        .collect();
    let expected = expected_series(truth, &state, &db_media);

    let seized = seized_items(&images, &faces, &in_db);
    rep.seized_items = seized.len();
    ensure!(
        !seized.is_empty(),
        "no media in the seized set: lower --database-fraction ({})",
        database_fraction
    );
    let triager = Triager::new(iv, Some(fv), Some(state), s);
    let start = Instant::now();
    let results: Vec<pb::TriageResult> = seized
        .par_iter()
        .enumerate()
        .map(|(i, it)| {
            let item = triager.prepare(&format!("items[{i}]"), it)?;
            triager.judge(&item)
        })
        .collect::<crate::error::Result<_>>()?;
    rep.triage_seconds = start.elapsed().as_secs_f64();
    score_verdicts(&mut rep, &expected, &seized, &results);
    write_verdicts(&root.join("triage-verdicts.jsonl"), &results)?;
    Ok(rep)
}

/// The verdicts, one JSON line each, kept beside the set for a closer look.
fn write_verdicts(path: &Path, results: &[pb::TriageResult]) -> anyhow::Result<()> {
    use std::io::Write;
    let mut w = std::io::BufWriter::new(std::fs::File::create(path)?);
    for r in results {
        let v = serde_json::json!({
            "id": r.id, "verdict": r.verdict, "series_id": r.series_id,
            "nearest_media_id": r.nearest_media_id, "nearest_distance": r.nearest_distance,
            "matched_faces": r.matched_faces, "face_series_id": r.face_series_id, "reason": r.reason,
        });
        serde_json::to_writer(&mut w, &v)?;
        w.write_all(b"\n")?;
    }
    w.flush()?;
    Ok(())
}

/// The earliest `fraction` of the uploads (the triage database): their
/// ids, how many they are, and how many uploads there are.
fn database_uploads(truth: &Truth, fraction: f64) -> (HashSet<String>, usize, usize) {
    let mut uploads: Vec<_> = truth.uploads.iter().collect();
    uploads.sort_by(|x, y| {
        x.uploaded_at
            .cmp(&y.uploaded_at)
            .then(x.upload_id.cmp(&y.upload_id))
    });
    let n_db = (uploads.len() as f64 * fraction).round() as usize;
    let db = uploads[..n_db]
        .iter()
        .map(|u| u.upload_id.clone())
        .collect();
    (db, n_db, uploads.len())
}

/// Links the database as a server's `LinkSeries` would with default
/// parameters (thresholds calibrated on its labelled material, if any)
/// into the series state a triage runs against.
fn link_database(iv: &View, fv: &View) -> anyhow::Result<SeriesState> {
    let (s, source, _) = calibrate::resolve(None, iv, Some(fv), None)?;
    let b = bar(0);
    let linked = link::link_full(
        (iv, "images"),
        Some((fv, "faces")),
        &s,
        None,
        &Default::default(),
        &on_progress(&b),
    )?;
    b.finish_and_clear();
    Ok(SeriesState {
        format: state_format(),
        image_collection: "images".into(),
        face_collection: "faces".into(),
        settings: s,
        series: linked.series,
        linked_uploads: Vec::new(),
        persons: linked.persons,
        threshold_source: source,
    })
}

/// What a triage should say of each truth series' seized media.
struct Expected {
    /// Truth series → the linked series holding most of its database
    /// media: the one a KNOWN item of it should be told.
    series_id: HashMap<usize, String>,
    /// Truth series with media in the database.
    in_db: HashSet<usize>,
    /// Media → its truth series.
    truth_series: HashMap<String, usize>,
    /// Hard negatives' media.
    hard: HashSet<String>,
}

fn expected_series(truth: &Truth, state: &SeriesState, db_media: &HashSet<&str>) -> Expected {
    let media_series = state.media_index();
    let mut series_id: HashMap<usize, String> = HashMap::new();
    let mut in_db: HashSet<usize> = HashSet::new();
    for (s, t) in truth.series.iter().enumerate() {
        let mut votes: HashMap<&str, usize> = HashMap::new();
        for m in t.members.iter().filter(|m| db_media.contains(m.as_str())) {
            in_db.insert(s);
            if let Some(&i) = media_series.get(m) {
                *votes.entry(state.series[i].series_id.as_str()).or_default() += 1;
            }
        }
        // Most votes, then the smallest id: deterministic.
        if let Some((id, _)) = votes
            .into_iter()
            .max_by(|x, y| x.1.cmp(&y.1).then(y.0.cmp(x.0)))
        {
            series_id.insert(s, id.to_string());
        }
    }
    Expected {
        series_id,
        in_db,
        truth_series: truth
            .series
            .iter()
            .enumerate()
            .flat_map(|(s, t)| t.members.iter().map(move |m| (m.clone(), s)))
            .collect(),
        hard: truth
            .hard_negatives
            .iter()
            .map(|h| h.media_id.clone())
            .collect(),
    }
}

/// The media outside the database as triage items, with their faces.
fn seized_items(
    images: &[pb::Point],
    faces: &[pb::Point],
    in_db: &dyn Fn(&pb::Point) -> bool,
) -> Vec<pb::TriageItem> {
    let mut face_of: HashMap<String, Vec<pb::Vector>> = HashMap::new();
    for f in faces.iter().filter(|p| !in_db(p)) {
        let meta = f.metadata.clone().unwrap_or_default();
        face_of
            .entry(link::media_key(&f.id, &meta, true))
            .or_default()
            .push(pb::Vector {
                values: f.vector.clone(),
            });
    }
    images
        .iter()
        .filter(|p| !in_db(p))
        .map(|p| pb::TriageItem {
            id: p.id.clone(),
            vector: p.vector.clone(),
            faces: face_of.remove(&p.id).unwrap_or_default(),
            metadata: p.metadata.clone(),
            ..Default::default()
        })
        .collect()
}

/// Verdicts against the truth: accuracy, confusion, right series ids,
/// verdicts per kind of item.
fn score_verdicts(
    rep: &mut TriageReport,
    expected: &Expected,
    seized: &[pb::TriageItem],
    results: &[pb::TriageResult],
) {
    let mut kinds: Vec<(String, usize, usize)> = [
        "member of a known series",
        "member of a new series",
        "hard negative",
        "noise",
    ]
    .iter()
    .map(|k| (k.to_string(), 0, 0))
    .collect();
    let mut right = 0;
    for (it, r) in seized.iter().zip(results) {
        // New material of a known victim links the item to a known series.
        let said_known =
            r.verdict == pb::Verdict::Known as i32 || r.verdict == pb::Verdict::KnownVictim as i32;
        rep.known_victim += (r.verdict == pb::Verdict::KnownVictim as i32) as usize;
        let ts = expected.truth_series.get(&it.id).copied();
        let known = ts.is_some_and(|s| expected.in_db.contains(&s));
        let kind = match ts {
            Some(_) if known => 0,
            Some(_) => 1,
            None if expected.hard.contains(&it.id) => 2,
            None => 3,
        };
        kinds[kind].1 += 1;
        kinds[kind].2 += said_known as usize;
        rep.confusion[!known as usize][!said_known as usize] += 1;
        right += (known == said_known) as usize;
        if let (true, Some(s)) = (known, ts) {
            let want = expected.series_id.get(&s);
            if want.is_none() {
                rep.known_without_db_series += 1;
            }
            if said_known && r.series_id == want.cloned().unwrap_or_default() {
                rep.series_id_correct += 1;
            }
        }
    }
    rep.accuracy = right as f64 / seized.len().max(1) as f64;
    rep.by_kind = kinds;
}

pub fn print_triage(t: &TriageReport) {
    println!();
    println!(
        "triage: database = earliest {} of {} uploads ({} media, {} faces, linked into {} series in {:.2} s); seized set = {} items, judged in {:.2} s",
        t.database_uploads,
        t.database_uploads + t.seized_uploads,
        t.database_media,
        t.database_faces,
        t.database_series,
        t.link_seconds,
        t.seized_items,
        t.triage_seconds
    );
    println!();
    println!("| truth \\ verdict | KNOWN | NEW |");
    println!("|---|---:|---:|");
    println!("| KNOWN | {} | {} |", t.confusion[0][0], t.confusion[0][1]);
    println!("| NEW | {} | {} |", t.confusion[1][0], t.confusion[1][1]);
    println!();
    println!("| item | items | judged KNOWN | judged NEW |");
    println!("|---|---:|---:|---:|");
    for (k, n, known) in &t.by_kind {
        println!("| {k} | {n} | {known} | {} |", n - known);
    }
    let truly_known = t.confusion[0][0] + t.confusion[0][1];
    println!();
    println!(
        "accuracy {:.3}; series id right for {} of {} truly KNOWN items ({:.3}; {} of them belong to a series whose database media are in no series)",
        t.accuracy,
        t.series_id_correct,
        truly_known,
        t.series_id_correct as f64 / truly_known.max(1) as f64,
        t.known_without_db_series
    );
}
