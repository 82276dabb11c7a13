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

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, bail};
use serde::Serialize;

use crate::collection::View;
use crate::index::distance::Metric;
use crate::investigate::link::{self, GroupStats};
use crate::investigate::series::{LinkSettings, SeriesRecord};
use crate::pb;
use crate::tools::bench_ann::peak_rss;
use crate::tools::bench_triage::{TriageReport, print_triage, triage_bench};
use crate::tools::link_eval::{
    IngestTimes, Scores, TruthIndex, bar, on_progress, quality, read_points, read_truth, registry,
};
use crate::tools::synth::{self, CountRange, GenOptions, Truth};

/// Media per planted series at the generator's defaults: 16 members (8..24)
/// + 0.3 × 16 near-duplicates + 2 hard negatives + 10 noise. `--scale` picks
///   the number of series from `--images` with it.
const MEDIA_PER_SERIES: f64 = 16.0 + 0.3 * 16.0 + 2.0 + 10.0;

/// Options of `vidx bench link` (its flags are in `cli::tools`).
#[derive(Debug, Clone)]
pub struct LinkBenchOptions {
    /// Number of series to plant [default: 100 a grid cell, 200 with
    /// --sweep; with --scale, from --images].
    pub series: Option<usize>,
    /// The grid's regimes (see `bench_grid::REGIMES`).
    pub regimes: Vec<String>,
    /// The grid's seeds.
    pub seeds: Vec<u64>,
    /// One set, every rule at every threshold, instead of the grid.
    pub sweep: bool,
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
    if !a.scale && !a.sweep {
        crate::tools::bench_grid::run(crate::tools::bench_grid::GridOptions {
            regimes: a.regimes,
            seeds: a.seeds,
            series: a.series.unwrap_or(100),
            dim: a.dim,
            database_fraction: a.database_fraction,
            batch: a.batch,
            data_dir: a.data_dir,
            out: a.out,
        })?;
        return Ok(());
    }
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
        Some(triage_bench(
            a.database_fraction,
            a.batch,
            &root,
            &gen_dir,
            &truth,
        )?)
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
            // The same as linking the images alone.
            e.faces.clear();
            e.face_set = Default::default();
        }
        let start = Instant::now();
        let image = link::image_distance_in(iv, &media);
        let face = link::face_distance_in(Some(fv), &e.face_set);
        let d = link::Distances {
            image: &image,
            face: &face,
        };
        let g = link::group(&media, &e, &s, "images", d, &Default::default());
        let (series, stats) = (g.series, g.stats);
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
