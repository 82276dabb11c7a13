//! Thresholds from the data: the image and face thresholds picked from the
//! labelled material already in a collection (points with `series_label`,
//! the series investigators have confirmed), instead of constants fitted to
//! one generator. Real models differ (CLIP, EfficientNet, ArcFace, dlib) and
//! so do their distance scales.
//!
//! **Pairs.** A sample of labelled media (at most [`SAMPLE`]) each look up
//! their [`CAL_K`] nearest images. A neighbour with the same label makes a
//! same-series pair; one with another label, or none, a different-series
//! pair: media near a series that investigators did not put in it are what
//! a threshold must keep out (a series only partly labelled errs on the
//! tight side). Faces likewise, among labelled faces only: an unlabelled
//! face may be the same person elsewhere, which is no error.
//!
//! **Image threshold.** Linking needs each media's *nearest* same-series
//! neighbour within the threshold and its nearest outsider beyond it. Per
//! sampled media: found if the nearest same-series neighbour is within t,
//! a false attachment if the nearest outsider is. The threshold maximises
//! F1 of that, in the middle of the best interval.
//!
//! **Core threshold.** Where outsiders begin: the 1% quantile of the
//! sampled media's nearest-outsider distances (at most the image
//! threshold). Below it images alone link; between it and the image
//! threshold look-alikes from outside a series begin to appear, and an
//! image edge links there only where faces do not contradict it (see
//! `link`).
//!
//! **Face threshold.** Faces group into people, so every pair counts: the
//! threshold maximises F1 over the face pairs. A person who recurs in
//! several labelled series shows up as different-series pairs at
//! same-person distances; they scale F1 down everywhere below the gap
//! between people and do not move its maximum much. With a single
//! labelled person (no different-series pairs) it is their farthest pair:
//! tight, never looser than what the labels show.

use std::collections::{HashMap, HashSet};

use rayon::prelude::*;

use crate::collection::{PointRef, View};
use crate::error::{Error, Result};
use crate::index::distance::Metric;
use crate::index::filter::Filter;
use crate::investigate::link::{self, media_key};
use crate::investigate::series::LinkSettings;
use crate::pb;

/// Labelled media (and faces) sampled at most.
pub const SAMPLE: usize = 3000;
/// Neighbours looked up per sampled point, and the search breadth.
pub const CAL_K: usize = 32;
const CAL_EF: usize = 128;
/// Labelled series needed, and same-series pairs, to calibrate at all.
pub const MIN_SERIES: usize = 3;
pub const MIN_PAIRS: usize = 20;
/// Bins of the histograms.
pub const BINS: usize = 60;

/// One threshold and how it does on the labelled pairs.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Choice {
    pub threshold: f32,
    /// Images: the core threshold (where outsiders begin), if calibrated.
    pub core: Option<f32>,
    pub calibrated: bool,
    /// Pair precision and recall at `threshold`.
    pub precision: f64,
    pub recall: f64,
    pub same_pairs: u64,
    pub different_pairs: u64,
    pub hist_from: f32,
    pub hist_to: f32,
    pub same: Vec<u64>,
    pub different: Vec<u64>,
}

impl Choice {
    pub fn to_pb(&self) -> pb::ThresholdChoice {
        pb::ThresholdChoice {
            threshold: self.threshold,
            core_threshold: self.core.unwrap_or(0.0),
            calibrated: self.calibrated,
            precision: self.precision,
            recall: self.recall,
            same_series_pairs: self.same_pairs,
            different_series_pairs: self.different_pairs,
            histogram_from: self.hist_from,
            histogram_to: self.hist_to,
            same_series: self.same.clone(),
            different_series: self.different.clone(),
        }
    }
}

/// What calibration found.
#[derive(Clone, Debug, Default)]
pub struct Calibration {
    pub image: Choice,
    pub face: Option<Choice>,
    pub labelled_series: usize,
    pub labelled_media: usize,
    pub note: String,
}

impl Calibration {
    pub fn to_pb(&self) -> pb::CalibrateResponse {
        pb::CalibrateResponse {
            image: Some(self.image.to_pb()),
            face: self.face.as_ref().map(Choice::to_pb),
            labelled_series: self.labelled_series as u64,
            labelled_media: self.labelled_media as u64,
            note: self.note.clone(),
        }
    }
}

/// Pairs of one sampled point: (distance, same series) by ascending distance.
type Pairs = Vec<(f32, bool)>;

/// A deterministic sample of at most `n` items, spread by a hash of their id.
fn sample<T>(mut items: Vec<(String, T)>, n: usize) -> Vec<(String, T)> {
    let hash = |s: &str| {
        s.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
        })
    };
    items.sort_by_cached_key(|(id, _)| (hash(id), id.clone()));
    items.truncate(n);
    items
}

/// Labelled image points, grouped: label → media; and every media's label.
struct Labels {
    /// media id → label (labelled media of labels with two or more media).
    of_media: HashMap<String, String>,
    series: usize,
}

fn labels(images: &View, scope: Option<&Filter>) -> Result<(Labels, Vec<(String, PointRef)>)> {
    let mut by_label: HashMap<String, Vec<(String, PointRef)>> = HashMap::new();
    for (r, id, meta) in images.points(scope)? {
        if !meta.series_label.is_empty() {
            let key = media_key(&id, &meta, false);
            by_label
                .entry(meta.series_label.clone())
                .or_default()
                .push((key, r));
        }
    }
    let mut of_media = HashMap::new();
    let mut points = Vec::new();
    let mut series = 0;
    for (label, members) in by_label {
        let distinct: HashSet<&str> = members.iter().map(|m| m.0.as_str()).collect();
        if distinct.len() < 2 {
            continue;
        }
        series += 1;
        for (m, r) in members {
            of_media.insert(m.clone(), label.clone());
            points.push((m, r));
        }
    }
    Ok((Labels { of_media, series }, points))
}

/// Per sampled labelled image: its neighbours as (distance, same series).
fn image_pairs(
    images: &View,
    labels: &Labels,
    points: Vec<(String, PointRef)>,
) -> Result<Vec<Pairs>> {
    sample(points, SAMPLE)
        .par_iter()
        .map(|(m, r)| {
            let label = &labels.of_media[m];
            let v = images.vector(*r)?;
            let mut out = Vec::new();
            for (h, d) in images.search(&v, CAL_K, CAL_EF, Some(*r), None)? {
                let (id, meta) = images.describe(h)?;
                let hm = media_key(&id, &meta, false);
                if hm != *m {
                    out.push((d, labels.of_media.get(&hm) == Some(label)));
                }
            }
            Ok(out)
        })
        .collect()
}

/// Per sampled labelled face: its neighbours among labelled faces of other
/// media as (distance, same series).
fn face_pairs(faces: &View, labels: &Labels, scope: Option<&Filter>) -> Result<Vec<Pairs>> {
    let mut labelled = Vec::new();
    for (r, id, meta) in faces.points(scope)? {
        let m = media_key(&id, &meta, true);
        if labels.of_media.contains_key(&m) {
            labelled.push((id, (r, m)));
        }
    }
    sample(labelled, SAMPLE)
        .par_iter()
        .map(|(_, (r, m))| {
            let label = &labels.of_media[m];
            let v = faces.vector(*r)?;
            let mut out = Vec::new();
            for (h, d) in faces.search(&v, CAL_K, CAL_EF, Some(*r), None)? {
                let (id, meta) = faces.describe(h)?;
                let hm = media_key(&id, &meta, true);
                if hm == *m {
                    continue;
                }
                if let Some(l) = labels.of_media.get(&hm) {
                    out.push((d, l == label));
                }
            }
            Ok(out)
        })
        .collect()
}

/// The value in the middle of the interval where a step function over
/// sorted `events` (value, change of TP, change of FP) maximises F1;
/// `fn_at_start` is FN before any event. Returns (threshold, F1).
fn best_f1(mut events: Vec<(f32, i64, i64)>, positives: i64) -> (f32, f64) {
    events.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (mut tp, mut fp) = (0i64, 0i64);
    let mut best = (0.0f32, -1.0f64, 0usize);
    let mut i = 0;
    while i < events.len() {
        let v = events[i].0;
        while i < events.len() && events[i].0 == v {
            tp += events[i].1;
            fp += events[i].2;
            i += 1;
        }
        let f = 2.0 * tp as f64 / (tp + positives + fp).max(1) as f64;
        if f > best.1 {
            best = (v, f, i);
        }
    }
    let next = events.get(best.2).map_or(best.0, |e| e.0);
    ((best.0 + next) / 2.0, best.1.max(0.0))
}

/// Share of sampled media whose nearest outsider may lie within the core
/// threshold.
const CORE_QUANTILE: f64 = 0.01;

/// Image threshold and core threshold from each sampled media's nearest
/// same-series neighbour and nearest outsider (see the module doc).
fn image_threshold(pairs: &[Pairs]) -> (f32, f32) {
    let mut events = Vec::new();
    let mut outsiders = Vec::new();
    let mut positives = 0;
    for p in pairs {
        let pos = p.iter().filter(|x| x.1).map(|x| x.0).reduce(f32::min);
        let neg = p.iter().filter(|x| !x.1).map(|x| x.0).reduce(f32::min);
        positives += 1;
        if let Some(d) = pos {
            events.push((d, 1, 0));
        }
        if let Some(d) = neg {
            events.push((d, 0, 1));
            outsiders.push(d);
        }
    }
    let t = best_f1(events, positives).0;
    outsiders.sort_by(f32::total_cmp);
    let q = ((pairs.len() as f64 * CORE_QUANTILE) as usize).min(outsiders.len().saturating_sub(1));
    let core = outsiders.get(q).copied().unwrap_or(t).min(t);
    (t, core)
}

/// Face threshold over every pair.
fn face_threshold(pairs: &[Pairs]) -> f32 {
    let all = pairs.iter().flatten();
    let positives = all.clone().filter(|x| x.1).count() as i64;
    let events = all
        .map(|&(d, same)| if same { (d, 1, 0) } else { (d, 0, 1) })
        .collect();
    best_f1(events, positives).0
}

/// Pair precision/recall at `t` and the histograms of the pairs.
fn describe(pairs: &[Pairs], threshold: f32, calibrated: bool) -> Choice {
    let all: Vec<(f32, bool)> = pairs.iter().flatten().copied().collect();
    let same = all.iter().filter(|x| x.1).count() as u64;
    let within = all.iter().filter(|x| x.0 <= threshold);
    let within_same = within.clone().filter(|x| x.1).count() as f64;
    let within_all = within.count() as f64;
    let hi = all.iter().map(|x| x.0).fold(threshold, f32::max);
    let hist_to = ((hi * 20.0).ceil() / 20.0).max(0.05);
    let mut hs = vec![0u64; BINS];
    let mut hd = vec![0u64; BINS];
    for &(d, s) in &all {
        let b = ((d.max(0.0) / hist_to * BINS as f32) as usize).min(BINS - 1);
        if s {
            hs[b] += 1;
        } else {
            hd[b] += 1;
        }
    }
    Choice {
        threshold,
        core: None,
        calibrated,
        precision: if within_all > 0.0 {
            within_same / within_all
        } else {
            1.0
        },
        recall: if same > 0 {
            within_same / same as f64
        } else {
            0.0
        },
        same_pairs: same,
        different_pairs: all.len() as u64 - same,
        hist_from: 0.0,
        hist_to,
        same: hs,
        different: hd,
    }
}

/// Calibrates the thresholds on the labelled material of `images` (and
/// `faces`); `defaults` are (image, face) for what cannot be calibrated
/// (`None` where there is no default: the metric has none).
pub fn calibrate(
    images: &View,
    faces: Option<&View>,
    scope: Option<&Filter>,
    defaults: (Option<f32>, Option<f32>),
) -> Result<Calibration> {
    let (labels, points) = labels(images, scope)?;
    let labelled_media = points.len();
    let mut cal = Calibration {
        labelled_series: labels.series,
        labelled_media,
        ..Default::default()
    };
    let enough_series = labels.series >= MIN_SERIES;
    let ipairs = if enough_series {
        image_pairs(images, &labels, points)?
    } else {
        Vec::new()
    };
    let same = |p: &[Pairs]| p.iter().flatten().filter(|x| x.1).count();
    let image_ok = enough_series && same(&ipairs) >= MIN_PAIRS;
    let (t, core) = if image_ok {
        let (t, c) = image_threshold(&ipairs);
        (t, Some(c))
    } else {
        (defaults.0.unwrap_or(0.0), None)
    };
    cal.image = describe(&ipairs, t, image_ok);
    cal.image.core = core;
    let mut notes = Vec::new();
    if !image_ok {
        notes.push(format!(
            "image: {} labelled series (at least {MIN_SERIES} with {MIN_PAIRS} same-series pairs needed): the default applies",
            labels.series
        ));
    }
    if let Some(fv) = faces {
        let fpairs = if enough_series {
            face_pairs(fv, &labels, scope)?
        } else {
            Vec::new()
        };
        let face_ok = enough_series && same(&fpairs) >= MIN_PAIRS;
        let t = if face_ok {
            face_threshold(&fpairs)
        } else {
            defaults.1.unwrap_or(0.0)
        };
        if !face_ok {
            notes.push("face: too few labelled faces: the default applies".to_string());
        } else if fpairs.iter().flatten().all(|x| x.1) {
            // One labelled person: nothing to tell people apart by. The
            // farthest of their pairs is kept (every labelled match, no
            // more): a model's default could be loose enough to make two
            // people one (dlib's faces of two people are within 0.14).
            notes.push(
                "face: no different-series pairs among labelled faces: the threshold is the farthest same-series pair".to_string(),
            );
        }
        cal.face = Some(describe(&fpairs, t, face_ok));
    }
    if image_ok || cal.face.as_ref().is_some_and(|f| f.calibrated) {
        notes.insert(
            0,
            format!(
                "calibrated on {} labelled series ({} media)",
                labels.series, labelled_media
            ),
        );
    }
    cal.note = notes.join("; ");
    Ok(cal)
}

/// The defaults of a metric: (image, face) thresholds, `None` where the
/// metric has no default distance (only cosine has).
pub fn defaults(images: &View, faces: Option<&View>) -> (Option<f32>, Option<f32>) {
    (
        (images.metric() == Metric::Cosine).then_some(link::DEFAULT_IMAGE_THRESHOLD),
        faces
            .filter(|f| f.metric() == Metric::Cosine)
            .map(|_| link::DEFAULT_FACE_THRESHOLD),
    )
}

/// The linking settings of a request: thresholds it sets are kept; those
/// left at 0 are calibrated (`CALIBRATION_AUTO`, when the collection holds
/// enough labelled material) or the defaults. Returns the settings, where
/// the thresholds came from, and the calibration if one ran.
pub fn resolve(
    p: Option<&pb::LinkParams>,
    images: &View,
    faces: Option<&View>,
    scope: Option<&Filter>,
) -> Result<(LinkSettings, String, Option<Calibration>)> {
    let p = p.cloned().unwrap_or_default();
    let metric = images.metric();
    let unset = p.image_threshold == 0.0 || (faces.is_some() && p.face_threshold == 0.0);
    let auto = p.calibration == pb::Calibration::Auto as i32;
    if !unset || !auto {
        let s = link::settings_from_pb(Some(&p), metric)?;
        let source = if unset { "defaults" } else { "set" };
        return Ok((s, source.to_string(), None));
    }
    let cal = calibrate(images, faces, scope, defaults(images, faces))?;
    let mut q = p;
    let mut calibrated = Vec::new();
    if q.image_threshold == 0.0 && cal.image.calibrated {
        q.image_threshold = cal.image.threshold;
        if q.core_image_threshold == 0.0 {
            q.core_image_threshold = cal.image.core.unwrap_or(0.0);
        }
        if q.near_duplicate_threshold == 0.0 {
            // Near-duplicates keep their share of the image threshold.
            q.near_duplicate_threshold = cal.image.threshold
                * (link::DEFAULT_NEAR_DUPLICATE_THRESHOLD / link::DEFAULT_IMAGE_THRESHOLD);
        }
        calibrated.push("image");
    }
    if let Some(f) = cal.face.as_ref().filter(|f| f.calibrated)
        && q.face_threshold == 0.0
    {
        q.face_threshold = f.threshold;
        calibrated.push("face");
    }
    let s = link::settings_from_pb(Some(&q), metric)
        .map_err(|e| Error::invalid(format!("{e} ({})", cal.note)))?;
    let source = if calibrated.is_empty() {
        format!("defaults ({})", cal.note)
    } else {
        format!("{} {}", calibrated.join(" and "), cal.note)
    };
    Ok((s, source, Some(cal)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn best_f1_is_the_middle_of_the_gap() {
        // Positives at 0.1..0.3, outsiders from 0.5: the best threshold is
        // between 0.3 and 0.5.
        let mut ev = Vec::new();
        for d in [0.1, 0.2, 0.3] {
            ev.push((d, 1, 0));
        }
        for d in [0.5, 0.6] {
            ev.push((d, 0, 1));
        }
        let (t, f) = best_f1(ev, 3);
        assert!((t - 0.4).abs() < 1e-6, "{t}");
        assert!((f - 1.0).abs() < 1e-9, "{f}");
    }

    #[test]
    fn histograms_and_pair_scores() {
        let pairs = vec![
            vec![(0.1, true), (0.3, true), (0.8, false)],
            vec![(0.35, false)],
        ];
        let c = describe(&pairs, 0.32, true);
        assert_eq!((c.same_pairs, c.different_pairs), (2, 2));
        assert!((c.precision - 1.0).abs() < 1e-9 && (c.recall - 1.0).abs() < 1e-9);
        assert_eq!(c.same.iter().sum::<u64>(), 2);
        assert_eq!(c.different.iter().sum::<u64>(), 2);
        assert_eq!(c.hist_to, 0.8);
        let c = describe(&pairs, 0.4, true);
        assert!((c.precision - 2.0 / 3.0).abs() < 1e-9);
    }
}
