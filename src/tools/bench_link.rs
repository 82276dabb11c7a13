//! `vidx bench link`: linking quality (B-cubed and pairwise precision/recall
//! vs the generator's ground truth, threshold and rule sweep), triage
//! accuracy, and linking at scale with time per stage and peak memory.
//!
//! Everything runs in process, without gRPC: a set from `vidx gen` (made here
//! or reused) is ingested into a registry in a scratch directory, both
//! collections are flushed so linking searches sealed segments, as a server's
//! `LinkSeries` would after a bulk load. Ingest is timed apart from linking:
//! it is the index build, not the linking.
//!
//! **Quality.** Ground truth clusters are the generator's series (members and
//! their near-duplicates); every hard negative and noise media is a cluster of
//! its own, as is every media the linker put in no series. The k-NN runs once
//! at the loosest threshold of the sweep; each sweep point restricts that edge
//! set and groups again, which gives the same edges as a k-NN run at the
//! tighter threshold (the neighbour lists do not depend on the threshold,
//! only the filter after them does).
//!
//! **Triage.** The uploads are split by time: the earliest fraction forms a
//! database (linked into series), the later ones are a seized set triaged
//! against it, item by item.

use std::collections::{HashMap, HashSet};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, bail, ensure};
use indicatif::{ProgressBar, ProgressStyle};
use rayon::prelude::*;
use serde::Serialize;

use crate::collection::config::{Config, Kind};
use crate::collection::registry::Registry;
use crate::collection::{Collection, StorageOptions, View};
use crate::index::distance::Metric;
use crate::investigate::link::{self, GroupStats};
use crate::investigate::series::{LinkSettings, SeriesRecord, SeriesState, state_format};
use crate::investigate::triage::Triager;
use crate::pb;
use crate::storage::wal::SyncPolicy;
use crate::tools::bench_ann::peak_rss;
use crate::tools::synth::{self, CountRange, GenOptions, Truth};

/// Media per planted series at the generator's defaults: 16 members (8..24)
/// + 0.3 × 16 near-duplicates + 2 hard negatives + 10 noise. `--scale` picks
///   the number of series from `--images` with it.
const MEDIA_PER_SERIES: f64 = 16.0 + 0.3 * 16.0 + 2.0 + 10.0;

/// Options of `vidx bench link` (its flags are in `cli::tools`).
#[derive(Debug, Clone)]
pub struct LinkBenchOptions {
    /// Number of series to plant [default: 200; with --scale, from --images].
    pub series: Option<usize>,
    /// Seed of the generator.
    pub seed: u64,
    /// Dimension of the generated embeddings.
    pub dim: usize,
    /// Chains of look-alike media between pairs of series (`vidx gen
    /// --chains`), which single linkage follows [default: series / 4].
    pub chains: Option<usize>,
    /// Image thresholds (cosine distance) of the quality sweep; the default
    /// threshold is always added.
    pub thresholds: Vec<f32>,
    /// Fraction of uploads, earliest first, that form the triage database;
    /// the rest are the seized set.
    pub database_fraction: f64,
    /// Run the triage benchmark [default: yes, but no with --scale].
    pub triage: Option<bool>,
    /// Scale mode: one set of about --images media (0..2 faces each),
    /// linked once at the defaults, with time per stage and peak memory.
    pub scale: bool,
    /// Image points wanted in scale mode.
    pub images: usize,
    /// Use the set `vidx gen` wrote in this directory instead of generating one.
    pub data: Option<PathBuf>,
    /// Keep the generated set and the ingested registries here and reuse
    /// them on the next run with the same set (default: a temp dir).
    pub data_dir: Option<PathBuf>,
    /// Points per upsert batch.
    pub batch: usize,
    /// Write every figure to this JSON file.
    pub out: Option<PathBuf>,
}

/// Clustering scores of a predicted clustering against the truth.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Scores {
    pub b3_precision: f64,
    pub b3_recall: f64,
    pub b3_f1: f64,
    pub pair_precision: f64,
    pub pair_recall: f64,
    pub pair_f1: f64,
}

fn f1(p: f64, r: f64) -> f64 {
    if p + r == 0.0 {
        0.0
    } else {
        2.0 * p * r / (p + r)
    }
}

fn pairs(n: u64) -> u64 {
    n * n.saturating_sub(1) / 2
}

/// B-cubed (per-item averages) and pairwise scores; `truth[i]` and `pred[i]`
/// are item i's cluster labels (any numbering). With no predicted pair,
/// pairwise precision is 1 (no false pair was made), and likewise recall
/// with no true pair.
pub fn scores(truth: &[u32], pred: &[u32]) -> Scores {
    assert_eq!(truth.len(), pred.len(), "one label per item on both sides");
    let n = truth.len();
    if n == 0 {
        return Scores::default();
    }
    let mut both: HashMap<(u32, u32), u64> = HashMap::new();
    let mut t_size: HashMap<u32, u64> = HashMap::new();
    let mut p_size: HashMap<u32, u64> = HashMap::new();
    for (&t, &p) in truth.iter().zip(pred) {
        *both.entry((p, t)).or_default() += 1;
        *t_size.entry(t).or_default() += 1;
        *p_size.entry(p).or_default() += 1;
    }
    // Each of the n_pt items of a (pred, truth) cell has n_pt correct
    // cluster-mates (itself included): n_pt²/|pred| summed is the sum of
    // per-item precisions.
    let (mut bp, mut br, mut tp) = (0.0, 0.0, 0u64);
    for (&(p, t), &c) in &both {
        let c2 = (c * c) as f64;
        bp += c2 / p_size[&p] as f64;
        br += c2 / t_size[&t] as f64;
        tp += pairs(c);
    }
    let (bp, br) = (bp / n as f64, br / n as f64);
    let pred_pairs: u64 = p_size.values().map(|&s| pairs(s)).sum();
    let true_pairs: u64 = t_size.values().map(|&s| pairs(s)).sum();
    let ratio = |a: u64, b: u64| if b == 0 { 1.0 } else { a as f64 / b as f64 };
    let (pp, pr) = (ratio(tp, pred_pairs), ratio(tp, true_pairs));
    Scores {
        b3_precision: bp,
        b3_recall: br,
        b3_f1: f1(bp, br),
        pair_precision: pp,
        pair_recall: pr,
        pair_f1: f1(pp, pr),
    }
}

/// The truth as dense labels: media i is `ids[i]`; series s is label s,
/// every other media a label of its own.
struct TruthIndex {
    ids: Vec<String>,
    index: HashMap<String, u32>,
    label: Vec<u32>,
    series: Vec<Vec<u32>>,
}

impl TruthIndex {
    fn new(t: &Truth) -> TruthIndex {
        let mut ti = TruthIndex {
            ids: Vec::new(),
            index: HashMap::new(),
            label: Vec::new(),
            series: Vec::new(),
        };
        let singles = t
            .hard_negatives
            .iter()
            .map(|h| h.media_id.as_str())
            .chain(t.noise.iter().map(String::as_str));
        for (s, ser) in t.series.iter().enumerate() {
            let members = ser.members.iter().map(|m| ti.add(m, s as u32)).collect();
            ti.series.push(members);
        }
        for (label, m) in (t.series.len() as u32..).zip(singles) {
            ti.add(m, label);
        }
        ti
    }

    fn add(&mut self, id: &str, label: u32) -> u32 {
        let i = self.ids.len() as u32;
        self.ids.push(id.to_string());
        self.index.insert(id.to_string(), i);
        self.label.push(label);
        i
    }
}

/// One row of the quality table.
#[derive(Clone, Debug, Serialize)]
pub struct QualityRow {
    pub rule: String,
    pub image_threshold: f32,
    pub faces: bool,
    pub default: bool,
    #[serde(flatten)]
    pub scores: Scores,
    pub series_found: usize,
    pub series_planted: usize,
    /// Planted series found exactly: one predicted series with the same media.
    pub exact: usize,
    /// Media in predicted series, all told.
    pub media_in_series: usize,
    /// Predicted media that the truth does not know (should be 0).
    pub unknown_media: usize,
    /// Predicted series holding members of two or more planted series.
    pub merged_series: usize,
    /// Hard-negative and noise media put in a series.
    pub stray_media: usize,
    /// Predicted series without any planted member.
    pub spurious_series: usize,
    pub accepted_edges: usize,
    pub refused_edges: usize,
    pub group_seconds: f64,
}

impl QualityRow {
    /// The row of `series`, linked under `rule` at `image_threshold`
    /// (`faces`: with face corroboration); not the default, group time 0.
    fn new(
        rule: &str,
        image_threshold: f32,
        faces: bool,
        ti: &TruthIndex,
        series: &[SeriesRecord],
        stats: &GroupStats,
    ) -> QualityRow {
        let q = quality(ti, series);
        QualityRow {
            rule: rule.into(),
            image_threshold,
            faces,
            default: false,
            scores: q.scores,
            series_found: series.len(),
            series_planted: ti.series.len(),
            exact: q.exact,
            media_in_series: q.in_series,
            unknown_media: q.unknown,
            merged_series: q.merged,
            stray_media: q.strays,
            spurious_series: q.spurious,
            accepted_edges: stats.accepted_edges,
            refused_edges: stats.refused_edges,
            group_seconds: 0.0,
        }
    }
}

/// How a linker's series compare with the truth.
#[derive(Clone, Debug, Default)]
struct Found {
    scores: Scores,
    /// Planted series found exactly.
    exact: usize,
    /// Media in predicted series.
    in_series: usize,
    /// Predicted media the truth does not know.
    unknown: usize,
    /// Predicted series holding members of two or more planted series.
    merged: usize,
    /// Media of no planted series (hard negatives, noise) put in a series.
    strays: usize,
    /// Predicted series without any planted member.
    spurious: usize,
}

/// Scores a linker's series against the truth.
fn quality(ti: &TruthIndex, series: &[SeriesRecord]) -> Found {
    let n = ti.ids.len();
    let planted = ti.series.len() as u32;
    // Media in no series get labels past every series index.
    let mut pred: Vec<u32> = (0..n as u32).map(|i| series.len() as u32 + i).collect();
    let mut f = Found::default();
    for (s, rec) in series.iter().enumerate() {
        let mut truth_series = HashSet::new();
        for m in &rec.media_ids {
            match ti.index.get(m) {
                Some(&i) => {
                    pred[i as usize] = s as u32;
                    f.in_series += 1;
                    let t = ti.label[i as usize];
                    if t < planted {
                        truth_series.insert(t);
                    } else {
                        f.strays += 1;
                    }
                }
                None => f.unknown += 1,
            }
        }
        f.merged += (truth_series.len() >= 2) as usize;
        f.spurious += truth_series.is_empty() as usize;
    }
    f.exact = ti
        .series
        .iter()
        .filter(|members| {
            let Some(&first) = members.first() else {
                return false;
            };
            let p = pred[first as usize];
            (p as usize) < series.len()
                && series[p as usize].media_ids.len() == members.len()
                && members.iter().all(|&m| pred[m as usize] == p)
        })
        .count();
    f.scores = scores(&ti.label, &pred);
    f
}

/// The default linking settings (cosine), with the sweep's changes.
fn settings(image_threshold: f32, min_shared: u32, single: bool) -> anyhow::Result<LinkSettings> {
    let p = pb::LinkParams {
        image_threshold,
        min_shared_neighbours: min_shared,
        single_linkage: single,
        ..Default::default()
    };
    Ok(link::settings_from_pb(Some(&p), Metric::Cosine)?)
}

fn storage() -> StorageOptions {
    StorageOptions {
        // A scratch index: a power loss may lose it, it is rebuilt.
        sync: SyncPolicy::Never,
        // One sealed segment per collection, made by the explicit flush.
        seal_threshold: usize::MAX,
        verify_on_open: false,
        ..Default::default()
    }
}

fn bar(len: u64) -> ProgressBar {
    let b = ProgressBar::new(len);
    b.set_style(
        ProgressStyle::with_template("{msg:>12} [{bar:40}] {pos}/{len} ({per_sec}, eta {eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    b
}

/// Times of loading one collection.
#[derive(Clone, Debug, Default, Serialize)]
pub struct IngestTimes {
    pub points: usize,
    pub read_seconds: f64,
    pub upsert_seconds: f64,
    pub flush_seconds: f64,
}

/// Creates `name` afresh in `reg` and loads `points` into it, flushed.
fn load(
    reg: &Registry,
    name: &str,
    kind: Kind,
    dim: usize,
    points: Vec<pb::Point>,
    batch: usize,
) -> anyhow::Result<(Arc<Collection>, IngestTimes)> {
    if reg.get(name).is_ok() {
        reg.drop_collection(name)?;
    }
    let c = reg.create(Config::new(name, dim as u32, Metric::Cosine, kind))?;
    let mut t = IngestTimes {
        points: points.len(),
        ..Default::default()
    };
    let b = bar(points.len() as u64);
    b.set_message(format!("upsert {name}"));
    let start = Instant::now();
    let mut it = points.into_iter();
    loop {
        let chunk: Vec<pb::Point> = it.by_ref().take(batch.max(1)).collect();
        if chunk.is_empty() {
            break;
        }
        b.inc(chunk.len() as u64);
        c.upsert(chunk)?;
    }
    b.finish_and_clear();
    t.upsert_seconds = start.elapsed().as_secs_f64();
    let start = Instant::now();
    c.flush()?;
    t.flush_seconds = start.elapsed().as_secs_f64();
    Ok((c, t))
}

/// Every point of one kind (`images` or `faces`) of a generated set, the
/// part `gen --seized-fraction` held back in `seized/` included: this bench
/// makes its own time split.
fn read_points(dir: &Path, stem: &str) -> anyhow::Result<Vec<pb::Point>> {
    let mut files = vec![dir.join(format!("{stem}.npy"))];
    let held = dir.join("seized").join(format!("{stem}.npy"));
    if held.exists() {
        files.push(held);
    }
    let mut out = Vec::new();
    for s in &crate::io::ingest::plan(&files)? {
        out.extend(crate::io::ingest::read_source(s)?);
    }
    Ok(out)
}

/// A registry holding `images` and `faces` built from `points_of` (called
/// only when the registry must be built), reused when `marker` says it was
/// built from the same input.
fn registry(
    dir: &Path,
    marker: &str,
    dim: usize,
    batch: usize,
    points_of: impl Fn(&str) -> anyhow::Result<Vec<pb::Point>>,
) -> anyhow::Result<(Registry, Option<Vec<IngestTimes>>)> {
    let mark = dir.join("bench-link-input.txt");
    let reg = Registry::open(dir, storage())?;
    let ready = std::fs::read_to_string(&mark).is_ok_and(|m| m == marker)
        && reg.get("images").is_ok()
        && reg.get("faces").is_ok();
    if ready {
        eprintln!("reusing the collections in {}", dir.display());
        return Ok((reg, None));
    }
    let _ = std::fs::remove_file(&mark);
    let mut times = Vec::new();
    for (name, kind) in [("images", Kind::Image), ("faces", Kind::Face)] {
        let start = Instant::now();
        let pts = points_of(name)?;
        let read = start.elapsed().as_secs_f64();
        let (_, mut t) = load(&reg, name, kind, dim, pts, batch)?;
        t.read_seconds = read;
        eprintln!(
            "loaded {name}: {} points, read {:.1} s, upsert {:.1} s, flush {:.1} s",
            t.points, t.read_seconds, t.upsert_seconds, t.flush_seconds
        );
        times.push(t);
    }
    std::fs::write(&mark, marker)?;
    Ok((reg, Some(times)))
}

/// The generator's options for this run: `vidx gen`'s defaults but for
/// the set's size and shape.
fn gen_options(a: &LinkBenchOptions, out: &Path) -> GenOptions {
    let series = match (a.series, a.scale) {
        (Some(s), _) => s,
        (None, false) => 200,
        (None, true) => ((a.images as f64 / MEDIA_PER_SERIES).round() as usize).max(1),
    };
    let mut g = GenOptions {
        out: out.to_path_buf(),
        seed: a.seed,
        dim: a.dim,
        series,
        chains: a.chains.unwrap_or(series / 4),
        ..GenOptions::default()
    };
    if a.scale {
        g.faces_per_media = CountRange { min: 0, max: 2 };
    }
    g
}

fn read_truth(dir: &Path) -> anyhow::Result<Truth> {
    let p = dir.join("truth.json");
    let bytes = std::fs::read(&p).with_context(|| format!("reading {}", p.display()))?;
    let t: Truth =
        serde_json::from_slice(&bytes).with_context(|| format!("parsing {}", p.display()))?;
    ensure!(
        t.format == synth::TRUTH_FORMAT,
        "{}: format {:?}, expected {:?}",
        p.display(),
        t.format,
        synth::TRUTH_FORMAT
    );
    Ok(t)
}

/// The generated set: `--data`, else `<root>/gen` (made, or reused if it was
/// made with the same flags).
fn generated(a: &LinkBenchOptions, root: &Path) -> anyhow::Result<(PathBuf, Truth)> {
    if let Some(d) = &a.data {
        return Ok((d.clone(), read_truth(d)?));
    }
    let dir = root.join("gen");
    let g = gen_options(a, &dir);
    // Made with the same flags: the generator is deterministic per flags.
    let mark = dir.join("bench-link-gen.txt");
    let flags = format!("{g:?}");
    if std::fs::read_to_string(&mark).is_ok_and(|m| m == flags)
        && let Ok(t) = read_truth(&dir)
    {
        eprintln!("reusing the set in {}", dir.display());
        return Ok((dir, t));
    }
    let _ = std::fs::remove_file(&mark);
    let start = Instant::now();
    let summary = synth::run(&g)?;
    eprintln!("{summary}\n      ({:.1} s)", start.elapsed().as_secs_f64());
    std::fs::write(&mark, flags)?;
    let t = read_truth(&dir)?;
    Ok((dir, t))
}

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
    /// Per kind of item: (kind, items, judged KNOWN).
    pub by_kind: Vec<(String, usize, usize)>,
    pub link_seconds: f64,
    pub triage_seconds: f64,
    pub ingest: Vec<IngestTimes>,
}

fn triage_bench(
    a: &LinkBenchOptions,
    root: &Path,
    gen_dir: &Path,
    truth: &Truth,
) -> anyhow::Result<TriageReport> {
    ensure!(
        (0.0..=1.0).contains(&a.database_fraction),
        "--database-fraction must be between 0 and 1"
    );
    let (db_uploads, n_db, n_uploads) = database_uploads(truth, a.database_fraction);
    let in_db = |p: &pb::Point| {
        p.metadata
            .as_ref()
            .is_some_and(|m| db_uploads.contains(&m.upload_id))
    };
    let mut rep = TriageReport {
        database_fraction: a.database_fraction,
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
        a.batch,
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
    let s = link::settings_from_pb(None, Metric::Cosine)?;
    let start = Instant::now();
    let state = link_database(&iv, &fv, &s)?;
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
        a.database_fraction
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
    Ok(rep)
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

/// Links the database at the default settings into the series state a
/// triage runs against.
fn link_database(iv: &View, fv: &View, s: &LinkSettings) -> anyhow::Result<SeriesState> {
    let b = bar(0);
    let linked = link::link_full(
        (iv, "images"),
        Some((fv, "faces")),
        s,
        None,
        &Default::default(),
        &on_progress(&b),
    )?;
    b.finish_and_clear();
    Ok(SeriesState {
        format: state_format(),
        image_collection: "images".into(),
        face_collection: "faces".into(),
        settings: s.clone(),
        series: linked.series,
        linked_uploads: Vec::new(),
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
        let said_known = r.verdict == pb::Verdict::Known as i32;
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

/// Figures of one linking run at scale.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ScaleReport {
    pub media: usize,
    pub stages: Vec<(String, f64)>,
    pub output_seconds: f64,
    pub output_bytes: u64,
    pub link_seconds: f64,
    pub image_edges: usize,
    pub face_edges: usize,
    pub peak_rss_bytes: u64,
    /// Peak RSS from the start of linking, if the kernel let us reset the
    /// mark (else only the whole run's peak is known).
    pub link_peak_rss_bytes: Option<u64>,
    /// RSS when linking started: the open collections and what ingest left.
    pub rss_before_link_bytes: u64,
}

/// Resets the peak-RSS mark (Linux `clear_refs` 5), so that the peak read
/// afterwards is that of what follows, not of the ingest before it. The
/// kernel's mark is itself approximate (RSS counters are batched per
/// thread), so two reads can differ by a few MiB.
fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

#[derive(Serialize)]
struct Report<'a> {
    mode: &'a str,
    command: &'a str,
    counts: &'a synth::GenSummary,
    ingest: Option<&'a [IngestTimes]>,
    knn_seconds: f64,
    quality: &'a [QualityRow],
    triage: Option<&'a TriageReport>,
    scale: Option<&'a ScaleReport>,
    peak_rss_bytes: u64,
}

pub fn run(a: LinkBenchOptions) -> anyhow::Result<()> {
    if a.thresholds.iter().any(|t| !(t.is_finite() && *t > 0.0)) {
        bail!("--thresholds must be positive cosine distances");
    }
    let scratch = tempfile::tempdir()?;
    let root = a
        .data_dir
        .clone()
        .unwrap_or_else(|| scratch.path().to_path_buf());
    std::fs::create_dir_all(&root)?;
    let (gen_dir, truth) = generated(&a, &root)?;
    let (reg, ingest) = registry(
        &root.join("registry"),
        &truth.command,
        truth.params.dim,
        a.batch,
        |name| read_points(&gen_dir, name),
    )?;
    let ti = TruthIndex::new(&truth);
    let iv = reg.get("images")?.view()?;
    let fv = reg.get("faces")?.view()?;
    let (rows, knn_seconds, scale, peak_before_link) = if a.scale {
        let (row, knn_seconds, rep, peak_before) = scale_run(&iv, &fv, &ti, &root)?;
        (vec![row], knn_seconds, Some(rep), peak_before)
    } else {
        let (rows, knn_seconds) = quality_sweep(&iv, &fv, &ti, &a.thresholds)?;
        (rows, knn_seconds, None, 0)
    };
    drop(iv);
    drop(fv);
    let triage = if a.triage.unwrap_or(!a.scale) {
        Some(triage_bench(&a, &root, &gen_dir, &truth)?)
    } else {
        None
    };
    let peak = peak_rss().max(peak_before_link);
    let report = Report {
        mode: if a.scale { "scale" } else { "quality" },
        command: &truth.command,
        counts: &truth.counts,
        ingest: ingest.as_deref(),
        knn_seconds,
        quality: &rows,
        triage: triage.as_ref(),
        scale: scale.as_ref(),
        peak_rss_bytes: peak,
    };
    if let Some(out) = &a.out {
        std::fs::write(out, serde_json::to_vec_pretty(&report)?)
            .with_context(|| format!("writing {}", out.display()))?;
        eprintln!("wrote {}", out.display());
    }
    print_report(&truth, &report);
    Ok(())
}

/// The linker's progress callback, shown on `b`.
fn on_progress(b: &ProgressBar) -> impl Fn(&'static str, u64, u64) + Sync + '_ {
    move |stage, done, total| {
        b.set_message(stage);
        b.set_length(total);
        b.set_position(done);
    }
}

/// Scale mode: one link at the defaults, timed per stage with its peak
/// memory, and its output written as a server would. Returns its quality
/// row, the k-NN seconds, the figures, and the peak RSS before linking.
fn scale_run(
    iv: &View,
    fv: &View,
    ti: &TruthIndex,
    root: &Path,
) -> anyhow::Result<(QualityRow, f64, ScaleReport, u64)> {
    let defaults = link::settings_from_pb(None, Metric::Cosine)?;
    let rss_before = crate::tools::bench_ann::current_rss();
    // Read before the reset: afterwards the mark only covers linking.
    let peak_before_link = peak_rss();
    let reset = reset_peak_rss();
    let b = bar(0);
    let linked = link::link_full(
        (iv, "images"),
        Some((fv, "faces")),
        &defaults,
        None,
        &Default::default(),
        &on_progress(&b),
    )?;
    b.finish_and_clear();
    // What a server's LinkSeries does next: every series goes out.
    let start = Instant::now();
    let out = tempfile::NamedTempFile::new_in(root)?;
    let mut w = BufWriter::new(out.as_file());
    for rec in &linked.series {
        serde_json::to_writer(&mut w, rec)?;
        w.write_all(b"\n")?;
    }
    w.flush()?;
    drop(w);
    let output_seconds = start.elapsed().as_secs_f64();
    let link_peak = reset.then(peak_rss);
    let mut rep = ScaleReport {
        media: linked.media.len(),
        stages: linked
            .stages
            .iter()
            .map(|(s, t)| (s.to_string(), *t))
            .collect(),
        output_seconds,
        output_bytes: out.as_file().metadata()?.len(),
        image_edges: linked.image_edges,
        face_edges: linked.face_edges,
        link_peak_rss_bytes: link_peak,
        rss_before_link_bytes: rss_before,
        ..Default::default()
    };
    rep.link_seconds = rep.stages.iter().map(|s| s.1).sum::<f64>() + output_seconds;
    let knn_seconds = rep
        .stages
        .iter()
        .filter(|s| s.0 != "group")
        .map(|s| s.1)
        .sum();
    let mut row = QualityRow::new(
        "triangle>=1",
        defaults.image_threshold,
        true,
        ti,
        &linked.series,
        &linked.stats,
    );
    row.default = true;
    row.group_seconds = rep
        .stages
        .iter()
        .find(|s| s.0 == "group")
        .map_or(0.0, |s| s.1);
    Ok((row, knn_seconds, rep, peak_before_link))
}

/// Quality mode: the k-NN once at the loosest threshold, then every rule
/// at every threshold of the sweep on that edge set, plus the default
/// without faces. Returns the rows and the k-NN seconds.
fn quality_sweep(
    iv: &View,
    fv: &View,
    ti: &TruthIndex,
    thresholds: &[f32],
) -> anyhow::Result<(Vec<QualityRow>, f64)> {
    let defaults = link::settings_from_pb(None, Metric::Cosine)?;
    let mut ts = thresholds.to_vec();
    ts.push(defaults.image_threshold);
    ts.sort_by(f32::total_cmp);
    ts.dedup();
    let loosest = settings(*ts.last().unwrap_or(&defaults.image_threshold), 1, false)?;
    let start = Instant::now();
    let b = bar(0);
    let (media, edges, _) = link::build_edges(iv, Some(fv), &loosest, None, &on_progress(&b))?;
    b.finish_and_clear();
    let knn_seconds = start.elapsed().as_secs_f64();
    let rules: [(&str, u32, bool); 3] = [
        ("single-linkage", 1, true),
        ("triangle>=1", 1, false),
        ("triangle>=2", 2, false),
    ];
    let mut points: Vec<(&str, u32, bool, f32, bool)> = Vec::new();
    for &(name, min, single) in &rules {
        for &t in &ts {
            points.push((name, min, single, t, true));
        }
    }
    points.push(("triangle>=1", 1, false, defaults.image_threshold, false));
    let mut rows = Vec::new();
    for (name, min, single, t, with_faces) in points {
        let s = settings(t, min, single)?;
        let mut e = edges.restrict(t, s.face_threshold);
        if !with_faces {
            // The same as linking the images alone: faces only ever
            // corroborate image edges.
            e.faces.clear();
        }
        let start = Instant::now();
        let (series, stats) = link::group(&media, &e, &s, "images");
        let group_seconds = start.elapsed().as_secs_f64();
        let mut row = QualityRow::new(name, t, with_faces, ti, &series, &stats);
        row.default = with_faces && s == defaults;
        row.group_seconds = group_seconds;
        rows.push(row);
    }
    Ok((rows, knn_seconds))
}

fn mib(b: u64) -> f64 {
    b as f64 / (1024.0 * 1024.0)
}

fn print_report(truth: &Truth, r: &Report<'_>) {
    let c = &truth.counts;
    println!(
        "set: {} image points ({} series: {} members + {} near-duplicates; {} hard negatives; {} noise), {} face points; {}",
        c.images,
        c.series,
        c.members,
        c.near_duplicates,
        c.hard_negatives,
        c.noise,
        c.faces,
        truth.command
    );
    match r.ingest {
        Some(times) => {
            for (name, t) in ["images", "faces"].iter().zip(times) {
                println!(
                    "ingest {name}: {} points, read {:.1} s, upsert {:.1} s, flush (seal) {:.1} s",
                    t.points, t.read_seconds, t.upsert_seconds, t.flush_seconds
                );
            }
        }
        None => println!("ingest: reused from --data-dir"),
    }
    match r.scale {
        Some(s) => print_scale(s, r.peak_rss_bytes),
        None => println!(
            "k-NN self-join at the loosest threshold (images + faces): {:.2} s",
            r.knn_seconds
        ),
    }
    print_quality(r.quality);
    if let Some(t) = r.triage {
        print_triage(t);
    }
    if r.scale.is_none() {
        println!("\npeak RSS {:.0} MiB", mib(r.peak_rss_bytes));
    }
}

fn print_scale(s: &ScaleReport, peak: u64) {
    println!();
    println!("| stage | seconds |");
    println!("|---|---:|");
    for (name, t) in &s.stages {
        println!("| {name} | {t:.2} |");
    }
    println!(
        "| output (every series to JSONL, {:.1} MiB) | {:.2} |",
        mib(s.output_bytes),
        s.output_seconds
    );
    println!("| **total linking** | **{:.2}** |", s.link_seconds);
    println!(
        "\n{} media, {} image edges, {} face pairs; peak RSS {:.0} MiB over the whole run{}",
        s.media,
        s.image_edges,
        s.face_edges,
        mib(peak),
        match s.link_peak_rss_bytes {
            Some(p) => format!(
                ", {:.0} MiB from the start of linking ({:.0} MiB resident when it started)",
                mib(p),
                mib(s.rss_before_link_bytes)
            ),
            None => String::new(),
        }
    );
}

fn print_quality(rows: &[QualityRow]) {
    println!();
    println!(
        "| rule | image threshold | faces | B3 P | B3 R | B3 F1 | pair P | pair R | pair F1 | series found / planted | exact | merged | stray media |"
    );
    println!("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in rows {
        let s = &r.scores;
        println!(
            "| {}{} | {:.2} | {} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {} / {} | {} | {} | {} |",
            r.rule,
            if r.default { " (default)" } else { "" },
            r.image_threshold,
            if r.faces { "yes" } else { "no" },
            s.b3_precision,
            s.b3_recall,
            s.b3_f1,
            s.pair_precision,
            s.pair_recall,
            s.pair_f1,
            r.series_found,
            r.series_planted,
            r.exact,
            r.merged_series,
            r.stray_media
        );
    }
}

fn print_triage(t: &TriageReport) {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn perfect_clustering_scores_one() {
        // Label numbers differ; the partition is the same.
        let s = scores(&[0, 0, 1, 1, 2], &[5, 5, 7, 7, 9]);
        for v in [
            s.b3_precision,
            s.b3_recall,
            s.b3_f1,
            s.pair_precision,
            s.pair_recall,
            s.pair_f1,
        ] {
            assert!(close(v, 1.0), "{s:?}");
        }
    }

    #[test]
    fn everything_merged() {
        // Two true pairs in one predicted cluster of 4: each item has 2 of
        // 4 right (B3 P = 1/2); 2 of the 6 predicted pairs are true.
        let s = scores(&[0, 0, 1, 1], &[0, 0, 0, 0]);
        assert!(close(s.b3_precision, 0.5), "{s:?}");
        assert!(close(s.b3_recall, 1.0), "{s:?}");
        assert!(close(s.b3_f1, 2.0 / 3.0), "{s:?}");
        assert!(close(s.pair_precision, 1.0 / 3.0), "{s:?}");
        assert!(close(s.pair_recall, 1.0), "{s:?}");
        assert!(close(s.pair_f1, 0.5), "{s:?}");
    }

    #[test]
    fn everything_split() {
        // A true triple and a singleton, all split: B3 R = (3 × 1/3 + 1)/4;
        // no predicted pair, so pair precision is 1 by convention, recall 0.
        let s = scores(&[0, 0, 0, 1], &[0, 1, 2, 3]);
        assert!(close(s.b3_precision, 1.0), "{s:?}");
        assert!(close(s.b3_recall, 0.5), "{s:?}");
        assert!(close(s.pair_precision, 1.0), "{s:?}");
        assert!(close(s.pair_recall, 0.0), "{s:?}");
        assert!(close(s.pair_f1, 0.0), "{s:?}");
    }

    #[test]
    fn one_item_misplaced() {
        // Truth {0,1,2} {3,4}; predicted {0,1} {2,3,4}. By hand: B3 P =
        // (1 + 1 + 1/3 + 2/3 + 2/3)/5 = 11/15, B3 R = (2/3 + 2/3 + 1/3 + 1 +
        // 1)/5 = 11/15; true pairs predicted: (0,1) and (3,4) of 4 and 4.
        let s = scores(&[0, 0, 0, 1, 1], &[0, 0, 1, 1, 1]);
        assert!(close(s.b3_precision, 11.0 / 15.0), "{s:?}");
        assert!(close(s.b3_recall, 11.0 / 15.0), "{s:?}");
        assert!(close(s.pair_precision, 0.5), "{s:?}");
        assert!(close(s.pair_recall, 0.5), "{s:?}");
    }

    #[test]
    fn quality_counts_exact_series_and_singletons() {
        // Truth: series {a,b,c}, series {d,e}, singletons f, g.
        let mut ti = TruthIndex {
            ids: Vec::new(),
            index: HashMap::new(),
            label: Vec::new(),
            series: Vec::new(),
        };
        let s0 = ["a", "b", "c"].map(|m| ti.add(m, 0)).to_vec();
        let s1 = ["d", "e"].map(|m| ti.add(m, 1)).to_vec();
        ti.series = vec![s0, s1];
        ti.add("f", 2);
        ti.add("g", 3);
        let meta = pb::Metadata::default();
        let series_of = |ids: &[&str]| {
            let mut r = SeriesRecord::new(ids[0], &meta, false);
            for m in &ids[1..] {
                r.add_media(m, &meta, false);
            }
            r
        };
        // {a,b,c} found exactly; {d,e} glued to f; g with "y": neither
        // "x" nor "y" is in the truth, so g's series has no planted member.
        let q = quality(
            &ti,
            &[
                series_of(&["a", "b", "c"]),
                series_of(&["d", "e", "f", "x"]),
                series_of(&["g", "y"]),
            ],
        );
        assert_eq!((q.exact, q.in_series, q.unknown), (1, 7, 2));
        assert_eq!((q.merged, q.strays, q.spurious), (0, 2, 1));
        let s = q.scores;
        assert!(close(s.b3_recall, 1.0), "{s:?}");
        // d, e: 2 of 3 right; f: 1 of 3; the rest (g alone among known
        // media included) 1.
        assert!(
            close(s.b3_precision, (4.0 + 2.0 * 2.0 / 3.0 + 1.0 / 3.0) / 7.0),
            "{s:?}"
        );
        // Two planted series in one predicted series.
        // Nothing linked: every true pair missed.
        let q = quality(&ti, &[series_of(&["a", "b", "d", "e"])]);
        assert_eq!((q.exact, q.merged, q.strays), (0, 1, 0));
        // Nothing linked: every true pair missed.
        let q = quality(&ti, &[]);
        assert_eq!(q.exact, 0);
        let s = q.scores;
        assert!(close(s.pair_recall, 0.0), "{s:?}");
    }
}
