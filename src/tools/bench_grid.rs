//! The grid of `vidx bench link`: every regime of the generator × several
//! seeds, each set linked by vidx at its defaults (thresholds as a server
//! would pick them, nothing told) beside the exact reference at its best
//! thresholds in hindsight, and triaged on a time split. It reports every
//! cell and the worst one, not the best.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, bail};
use serde::Serialize;

use crate::investigate::{calibrate, link};
use crate::tools::bench_triage::triage_bench;
use crate::tools::link_eval::{
    Scores, TruthIndex, bar, on_progress, quality, read_points, read_truth, registry,
};
use crate::tools::reference::{self, REFERENCE_K, RefBest};
use crate::tools::synth::{self, CountRange, GenOptions, Regimes, Span};

/// The regimes of the grid: name and what it plants. `beyond` varies the
/// generator's ranges past what the rules were designed on.
pub const REGIMES: &[(&str, &str)] = &[
    ("base", "the generator's defaults (with chains)"),
    (
        "scenes",
        "1-3 unrelated scenes per series, joined only by the victim's face",
    ),
    (
        "tiny",
        "heavy-tailed sizes over 2..30 members: most series have 2-4",
    ),
    ("moderate", "members at cosine 0.6-0.95 to their scene"),
    (
        "siblings",
        "30% of series shot next to another series' scene (cosine 0.5-0.65)",
    ),
    ("faceless", "a third of the media without any face"),
    (
        "adults",
        "recurring adults (series / 10) in 2-4 unrelated series each, on 10-25% of their media",
    ),
    ("mixed", "all of the above at once"),
    (
        "beyond",
        "past the design ranges: 256-d, members 0.55-0.95, faces 0.45-0.85, 1-4 scenes, 40% faceless, more adults and recurring bystanders",
    ),
];

/// Options of the grid.
#[derive(Debug, Clone)]
pub struct GridOptions {
    pub regimes: Vec<String>,
    pub seeds: Vec<u64>,
    /// Series per set.
    pub series: usize,
    pub dim: usize,
    pub database_fraction: f64,
    pub batch: usize,
    /// Keep the sets and registries here (default: a temp dir).
    pub data_dir: Option<PathBuf>,
    pub out: Option<PathBuf>,
}

/// `vidx gen`'s options for one regime: the defaults with chains, then
/// the regime's changes.
pub fn regime_options(
    name: &str,
    series: usize,
    dim: usize,
    seed: u64,
    out: &Path,
) -> anyhow::Result<GenOptions> {
    let mut g = GenOptions {
        out: out.to_path_buf(),
        seed,
        dim,
        series,
        chains: series / 4,
        ..GenOptions::default()
    };
    let adults = |r: &mut Regimes, n: usize| {
        r.recurring_adults = n.max(1);
    };
    let r = &mut g.regimes;
    match name {
        "base" => {}
        "scenes" => r.scenes = CountRange { min: 1, max: 3 },
        "tiny" => {
            g.members = CountRange { min: 2, max: 30 };
            r.heavy_tail = true;
        }
        "moderate" => r.member_cos = Span { lo: 0.6, hi: 0.95 },
        "siblings" => r.sibling_rate = 0.3,
        "faceless" => r.faceless_rate = 1.0 / 3.0,
        "adults" => adults(r, series / 10),
        "mixed" => {
            g.members = CountRange { min: 2, max: 30 };
            r.scenes = CountRange { min: 1, max: 3 };
            r.heavy_tail = true;
            r.member_cos = Span { lo: 0.6, hi: 0.95 };
            r.sibling_rate = 0.2;
            r.faceless_rate = 1.0 / 3.0;
            adults(r, series / 10);
        }
        "beyond" => {
            g.dim = dim.min(256);
            g.members = CountRange { min: 2, max: 40 };
            g.near_dup_rate = 0.1;
            g.noise = Some(15 * series);
            g.background_identities = Some((series / 4).max(3));
            r.scenes = CountRange { min: 1, max: 4 };
            r.heavy_tail = true;
            r.member_cos = Span { lo: 0.55, hi: 0.95 };
            r.face_cos = Span { lo: 0.45, hi: 0.85 };
            r.sibling_rate = 0.3;
            r.faceless_rate = 0.4;
            adults(r, series / 5);
            r.adult_series = CountRange { min: 3, max: 6 };
            r.adult_share = Span { lo: 0.1, hi: 0.35 };
        }
        other => bail!(
            "no regime {other:?}; the regimes are {}",
            REGIMES.iter().map(|r| r.0).collect::<Vec<_>>().join(", ")
        ),
    }
    Ok(g)
}

/// One cell of the grid.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Cell {
    pub regime: String,
    pub seed: u64,
    pub media: usize,
    pub faces: usize,
    pub series_planted: usize,
    pub vidx: Scores,
    pub vidx_image_threshold: f32,
    pub vidx_core_threshold: f32,
    pub vidx_face_threshold: f32,
    /// Where vidx's thresholds came from.
    pub vidx_thresholds: String,
    /// Series vidx joined through a face only.
    pub vidx_face_joined: usize,
    pub link_seconds: f64,
    pub reference_image: RefBest,
    pub reference_image_face: RefBest,
    /// Planted series found exactly; predicted series holding two or
    /// more planted ones; hard-negative and noise media put in a series.
    pub vidx_exact: usize,
    pub vidx_merged: usize,
    pub vidx_strays: usize,
    pub triage_accuracy: f64,
    pub triage_items: usize,
    /// [truth][verdict], 0 = known (KNOWN or KNOWN_VICTIM), 1 = new.
    pub triage_confusion: [[usize; 2]; 2],
    pub triage_known_victim: usize,
    /// Per kind of item: (kind, items, judged known).
    pub triage_by_kind: Vec<(String, usize, usize)>,
}

/// Generates (or reuses) the set of one cell.
fn cell_set(g: &GenOptions) -> anyhow::Result<synth::Truth> {
    let dir = &g.out;
    let mark = dir.join("bench-link-gen.txt");
    let flags = format!("{g:?}");
    if std::fs::read_to_string(&mark).is_ok_and(|m| m == flags)
        && let Ok(t) = read_truth(dir)
    {
        return Ok(t);
    }
    let _ = std::fs::remove_file(&mark);
    synth::run(g)?;
    std::fs::write(&mark, flags)?;
    read_truth(dir)
}

/// The reference on one set: image vectors in truth order, faces by media.
fn run_reference(gen_dir: &Path, ti: &TruthIndex) -> anyhow::Result<(RefBest, RefBest)> {
    let n = ti.ids.len();
    let mut images = vec![Vec::new(); n];
    for p in read_points(gen_dir, "images")? {
        if let Some(&i) = ti.index.get(&p.id) {
            images[i as usize] = p.vector;
        }
    }
    let mut faces = Vec::new();
    for p in read_points(gen_dir, "faces")? {
        let meta = p.metadata.clone().unwrap_or_default();
        if let Some(&m) = ti.index.get(&link::media_key(&p.id, &meta, true)) {
            faces.push((m, p.vector));
        }
    }
    let edges = reference::exact_edges(&images, &faces, REFERENCE_K);
    Ok((
        reference::best_image_only(&edges, &ti.label),
        reference::best_image_face(&edges, &ti.label),
    ))
}

fn run_cell(o: &GridOptions, root: &Path, regime: &str, seed: u64) -> anyhow::Result<Cell> {
    let dir = root.join(format!("{regime}-{seed}"));
    let g = regime_options(regime, o.series, o.dim, seed, &dir.join("gen"))?;
    let truth = cell_set(&g)?;
    let gen_dir = g.out.clone();
    let (reg, _) = registry(
        &dir.join("registry"),
        &truth.command,
        truth.params.dim,
        o.batch,
        |name| read_points(&gen_dir, name),
    )?;
    let ti = TruthIndex::new(&truth);
    let iv = reg.get("images")?.view()?;
    let fv = reg.get("faces")?.view()?;
    // As a server's LinkSeries with default parameters: thresholds
    // calibrated on the set's labelled series (or the defaults).
    let (s, source, _) = calibrate::resolve(None, &iv, Some(&fv), None)?;
    let b = bar(0);
    let start = Instant::now();
    let linked = link::link_full(
        (&iv, "images"),
        Some((&fv, "faces")),
        &s,
        None,
        &Default::default(),
        &on_progress(&b),
    )?;
    let link_seconds = start.elapsed().as_secs_f64();
    b.finish_and_clear();
    let found = quality(&ti, &linked.series);
    write_series(&dir.join("vidx-series.jsonl"), &linked.series)?;
    let (reference_image, reference_image_face) = run_reference(&gen_dir, &ti)?;
    drop((iv, fv, reg));
    let triage = triage_bench(o.database_fraction, o.batch, &dir, &gen_dir, &truth)?;
    Ok(Cell {
        regime: regime.to_string(),
        seed,
        media: truth.counts.images,
        faces: truth.counts.faces,
        series_planted: truth.series.len(),
        vidx: found.scores,
        vidx_image_threshold: s.image_threshold,
        vidx_core_threshold: s.core(),
        vidx_face_threshold: s.face_threshold,
        vidx_thresholds: source,
        vidx_face_joined: linked.stats.face_joined_series,
        link_seconds,
        reference_image,
        reference_image_face,
        vidx_exact: found.exact,
        vidx_merged: found.merged,
        vidx_strays: found.strays,
        triage_accuracy: triage.accuracy,
        triage_items: triage.seized_items,
        triage_confusion: triage.confusion,
        triage_known_victim: triage.known_victim,
        triage_by_kind: triage.by_kind,
    })
}

/// The series vidx found, one JSON line each, kept with the cell's set
/// for a closer look.
fn write_series(
    path: &Path,
    series: &[crate::investigate::series::SeriesRecord],
) -> anyhow::Result<()> {
    use std::io::Write;
    let mut w = std::io::BufWriter::new(std::fs::File::create(path)?);
    for s in series {
        serde_json::to_writer(&mut w, s)?;
        w.write_all(b"\n")?;
    }
    w.flush()?;
    Ok(())
}

/// Runs every cell, printing each as it is done, then the worst.
pub fn run(o: GridOptions) -> anyhow::Result<Vec<Cell>> {
    let scratch = tempfile::tempdir()?;
    let root = o
        .data_dir
        .clone()
        .unwrap_or_else(|| scratch.path().to_path_buf());
    std::fs::create_dir_all(&root)?;
    print_header();
    let mut cells = Vec::new();
    for regime in &o.regimes {
        for &seed in &o.seeds {
            let c = run_cell(&o, &root, regime, seed)
                .with_context(|| format!("regime {regime}, seed {seed}"))?;
            print_cell(&c);
            cells.push(c);
        }
    }
    print_worst(&cells);
    if let Some(out) = &o.out {
        std::fs::write(out, serde_json::to_vec_pretty(&cells)?)
            .with_context(|| format!("writing {}", out.display()))?;
        eprintln!("wrote {}", out.display());
    }
    Ok(cells)
}

fn print_header() {
    println!(
        "| regime | seed | media | vidx B3 P | R | F1 | vidx thresholds (core-image / face) | face-joined | ref image-only F1 (t) | ref image+face P | R | F1 (t image / face) | triage accuracy |"
    );
    println!("|---|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|");
}

fn print_cell(c: &Cell) {
    let (ri, rf) = (&c.reference_image, &c.reference_image_face);
    println!(
        "| {} | {} | {} | {:.3} | {:.3} | **{:.3}** | {:.2}-{:.2} / {:.2} ({}) | {} | {:.3} ({:.2}) | {:.3} | {:.3} | {:.3} ({:.2} / {:.3}) | {:.3} |",
        c.regime,
        c.seed,
        c.media,
        c.vidx.b3_precision,
        c.vidx.b3_recall,
        c.vidx.b3_f1,
        c.vidx_core_threshold,
        c.vidx_image_threshold,
        c.vidx_face_threshold,
        if c.vidx_thresholds.starts_with("image and face") {
            "calibrated"
        } else {
            c.vidx_thresholds.as_str()
        },
        c.vidx_face_joined,
        ri.scores.b3_f1,
        ri.image_threshold,
        rf.scores.b3_precision,
        rf.scores.b3_recall,
        rf.scores.b3_f1,
        rf.image_threshold,
        rf.face_threshold.unwrap_or_default(),
        c.triage_accuracy
    );
}

/// The worst cell by vidx's F1, by its margin over the reference, and by
/// triage accuracy; and whether every cell meets the bar.
fn print_worst(cells: &[Cell]) {
    let Some(worst) = cells
        .iter()
        .min_by(|a, b| a.vidx.b3_f1.total_cmp(&b.vidx.b3_f1))
    else {
        return;
    };
    let margin = |c: &Cell| {
        c.vidx.b3_f1
            - c.reference_image
                .scores
                .b3_f1
                .max(c.reference_image_face.scores.b3_f1)
    };
    let tightest = cells
        .iter()
        .min_by(|a, b| margin(a).total_cmp(&margin(b)))
        .unwrap_or(worst);
    let triage = cells
        .iter()
        .min_by(|a, b| a.triage_accuracy.total_cmp(&b.triage_accuracy))
        .unwrap_or(worst);
    println!();
    println!(
        "worst vidx F1: {:.3} ({} seed {}); smallest margin over the reference's best: {:+.3} ({} seed {}); worst triage accuracy: {:.3} ({} seed {})",
        worst.vidx.b3_f1,
        worst.regime,
        worst.seed,
        margin(tightest),
        tightest.regime,
        tightest.seed,
        triage.triage_accuracy,
        triage.regime,
        triage.seed
    );
}
