//! What the linking benchmarks share: clustering scores against a
//! generated set's truth (B-cubed and pairwise), the truth as dense labels,
//! and loading a generated set into a scratch registry.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, ensure};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

use crate::collection::config::{Config, Kind};
use crate::collection::registry::Registry;
use crate::collection::{Collection, StorageOptions};
use crate::index::distance::Metric;
use crate::investigate::series::SeriesRecord;
use crate::pb;
use crate::storage::wal::SyncPolicy;
use crate::tools::synth::{self, Truth};

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

pub fn f1(p: f64, r: f64) -> f64 {
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
pub struct TruthIndex {
    pub ids: Vec<String>,
    pub index: HashMap<String, u32>,
    pub label: Vec<u32>,
    pub series: Vec<Vec<u32>>,
}

impl TruthIndex {
    pub fn new(t: &Truth) -> TruthIndex {
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

    pub fn add(&mut self, id: &str, label: u32) -> u32 {
        let i = self.ids.len() as u32;
        self.ids.push(id.to_string());
        self.index.insert(id.to_string(), i);
        self.label.push(label);
        i
    }
}

/// How a linker's series compare with the truth.
#[derive(Clone, Debug, Default)]
pub struct Found {
    pub scores: Scores,
    /// Planted series found exactly.
    pub exact: usize,
    /// Media in predicted series.
    pub in_series: usize,
    /// Predicted media the truth does not know.
    pub unknown: usize,
    /// Predicted series holding members of two or more planted series.
    pub merged: usize,
    /// Media of no planted series (hard negatives, noise) put in a series.
    pub strays: usize,
    /// Predicted series without any planted member.
    pub spurious: usize,
}

/// Scores a linker's series against the truth.
pub fn quality(ti: &TruthIndex, series: &[SeriesRecord]) -> Found {
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

pub fn storage() -> StorageOptions {
    StorageOptions {
        // A scratch index: a power loss may lose it, it is rebuilt.
        sync: SyncPolicy::Never,
        // One sealed segment per collection, made by the explicit flush.
        seal_threshold: usize::MAX,
        verify_on_open: false,
        ..Default::default()
    }
}

pub fn bar(len: u64) -> ProgressBar {
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
pub fn load(
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
pub fn read_points(dir: &Path, stem: &str) -> anyhow::Result<Vec<pb::Point>> {
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
pub fn registry(
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

pub fn read_truth(dir: &Path) -> anyhow::Result<Truth> {
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

/// The linker's progress callback, shown on `b`.
pub fn on_progress(b: &ProgressBar) -> impl Fn(&'static str, u64, u64) + Sync + '_ {
    move |stage, done, total| {
        b.set_message(stage);
        b.set_length(total);
        b.set_position(done);
    }
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
