//! Series linking: the k-NN self-join of an image collection (and its face
//! collection), joined at media level and grouped into series.
//!
//! **Edges.** Every image point looks up its `k` nearest neighbours; those
//! within `image_threshold` become media-level edges (both directions, the
//! smaller distance kept). The faces of the two media of each edge are then
//! compared: a face match within `face_threshold` *corroborates* the edge.
//! Face matches alone never link: the same adult, or a background person,
//! appears in unrelated material, and linking on faces alone glues it.
//!
//! **Grouping, and the anti-chaining rule.** Plain single linkage over a
//! threshold chains unrelated series together through look-alike material (a
//! hard negative close to one series, another close to it, ...): one weak
//! edge is enough to merge two whole series. Here an *ordinary* image edge
//! links two media only if they share at least `min_shared_neighbours`
//! common neighbours within the threshold, i.e. the edge lies in a triangle
//! of the neighbour graph: a lone edge of a chain has none. Near-duplicate
//! edges (within `near_duplicate_threshold`) and edges corroborated by a
//! face match link on their own. Accepted edges are joined in ascending
//! distance order (union-find); the edges that joined two groups are the
//! series' evidence (a spanning forest). The rule depends only on the edge
//! set, not on the order of work, which is what lets [`link_upload`] give the
//! same grouping as a full re-link.
//!
//! **Decisions.** Investigators' decisions (see `decisions`) enter at the
//! grouping step alone, through one hook, `Constraints::bind` on the
//! union-find of `union`: must-linked media are joined before any evidence,
//! and a union that would put both sides of a cannot-link (a rejected pair,
//! a split) into one series is refused, so the edges are still joined
//! strongest first and each side keeps what it is most strongly linked to.
//! Evidence kinds and edge judging are untouched. [`link_upload`] gives way
//! to a full re-link when `Constraints::in_play` says so. (`union` lists
//! what any grouping must do to honour decisions.)
//!
//! **Series ids** come from the founding media (see `series`), so a series
//! keeps its id when linked again on grown data.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use rayon::prelude::*;

use crate::collection::{PointRef, View};
use crate::error::{Error, Result};
use crate::index::distance::Metric;
use crate::index::filter::Filter;
use crate::investigate::decisions::Constraints;
use crate::investigate::series::{
    EvidenceKind, EvidenceRecord, LinkSettings, SeriesRecord, SeriesState,
};
use crate::investigate::union::UnionFind;
use crate::pb;

pub const DEFAULT_K: usize = 32;
pub const MAX_K: usize = 256;
/// Cosine distance defaults (see `pb::LinkParams`).
pub const DEFAULT_IMAGE_THRESHOLD: f32 = 0.36;
pub const DEFAULT_FACE_THRESHOLD: f32 = 0.70;
pub const DEFAULT_NEAR_DUPLICATE_THRESHOLD: f32 = 0.05;

/// Seconds spent per stage, in order.
pub type StageTimes = Vec<(&'static str, f64)>;

/// Progress callback: (stage, done, total).
pub type Progress<'a> = &'a (dyn Fn(&'static str, u64, u64) + Sync);

/// Validates request parameters; thresholds default only under COSINE,
/// where a distance has a fixed meaning.
pub fn settings_from_pb(p: Option<&pb::LinkParams>, metric: Metric) -> Result<LinkSettings> {
    let p = p.cloned().unwrap_or_default();
    let threshold = |field: &str, v: f32, default: f32| -> Result<f32> {
        if !v.is_finite() || v < 0.0 {
            return Err(Error::invalid(format!(
                "params.{field} is {v}; it must be a finite distance >= 0"
            )));
        }
        if v > 0.0 {
            return Ok(v);
        }
        if metric == Metric::Cosine {
            Ok(default)
        } else {
            Err(Error::invalid(format!(
                "params.{field} must be set: there is no default distance threshold under {metric:?}"
            )))
        }
    };
    let k = if p.k == 0 { DEFAULT_K } else { p.k as usize };
    if k > MAX_K {
        return Err(Error::invalid(format!(
            "params.k is {k}; it must be between 1 and {MAX_K}"
        )));
    }
    // Neighbours within a linking threshold are close by HNSW standards:
    // twice k is breadth enough (measured: same series at 200k media).
    let ef = if p.ef == 0 { 2 * k } else { p.ef as usize };
    if ef > 4096 {
        return Err(Error::invalid(format!(
            "params.ef is {ef}; it must be at most 4096"
        )));
    }
    let image_threshold = threshold(
        "image_threshold",
        p.image_threshold,
        DEFAULT_IMAGE_THRESHOLD,
    )?;
    let near = threshold(
        "near_duplicate_threshold",
        p.near_duplicate_threshold,
        DEFAULT_NEAR_DUPLICATE_THRESHOLD.min(image_threshold),
    )?;
    if near > image_threshold {
        return Err(Error::invalid(format!(
            "params.near_duplicate_threshold ({near}) is above params.image_threshold ({image_threshold})"
        )));
    }
    Ok(LinkSettings {
        image_threshold,
        face_threshold: threshold("face_threshold", p.face_threshold, DEFAULT_FACE_THRESHOLD)?,
        near_duplicate_threshold: near,
        k,
        ef: ef.max(k),
        min_shared_neighbours: if p.min_shared_neighbours == 0 {
            1
        } else {
            p.min_shared_neighbours as usize
        },
        single_linkage: p.single_linkage,
    })
}

pub fn settings_to_pb(s: &LinkSettings) -> pb::LinkParams {
    pb::LinkParams {
        image_threshold: s.image_threshold,
        face_threshold: s.face_threshold,
        near_duplicate_threshold: s.near_duplicate_threshold,
        k: s.k as u32,
        ef: s.ef as u32,
        min_shared_neighbours: s.min_shared_neighbours as u32,
        single_linkage: s.single_linkage,
    }
}

/// The media a point belongs to: `metadata.media_id`, else the point id
/// (for faces: the id up to `#`).
pub fn media_key(id: &str, meta: &pb::Metadata, face: bool) -> String {
    if !meta.media_id.is_empty() {
        meta.media_id.clone()
    } else if face {
        id.split('#').next().unwrap_or(id).to_string()
    } else {
        id.to_string()
    }
}

/// The media of a run, indexed densely.
#[derive(Default)]
pub struct MediaTable {
    pub ids: Vec<String>,
    pub meta: Vec<pb::Metadata>,
    pub has_face: Vec<bool>,
    pub index: HashMap<String, u32>,
}

impl MediaTable {
    /// Index of a media, added with `meta` if new.
    pub fn intern(&mut self, id: &str, meta: &pb::Metadata) -> u32 {
        if let Some(&i) = self.index.get(id) {
            return i;
        }
        let i = self.ids.len() as u32;
        self.ids.push(id.to_string());
        self.meta.push(meta.clone());
        self.has_face.push(false);
        self.index.insert(id.to_string(), i);
        i
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
}

/// Media-level neighbour graph within the image threshold, with the face
/// matches that corroborate it.
#[derive(Default)]
pub struct EdgeSet {
    /// Per media: (neighbour, image distance), sorted by neighbour, one entry each.
    pub adj: Vec<Vec<(u32, f32)>>,
    /// (a, b) with a < b → best face distance between their faces.
    pub faces: HashMap<(u32, u32), f32>,
}

impl EdgeSet {
    pub fn with_len(n: usize) -> EdgeSet {
        EdgeSet {
            adj: vec![Vec::new(); n],
            faces: HashMap::new(),
        }
    }

    fn grow(&mut self, n: usize) {
        if self.adj.len() < n {
            self.adj.resize(n, Vec::new());
        }
    }

    /// Adds a symmetric image edge (rows are normalised later).
    pub fn add_image(&mut self, a: u32, b: u32, d: f32) {
        if a == b {
            return;
        }
        self.grow(a.max(b) as usize + 1);
        self.adj[a as usize].push((b, d));
        self.adj[b as usize].push((a, d));
    }

    pub fn add_face(&mut self, a: u32, b: u32, d: f32) {
        if a == b {
            return;
        }
        let key = (a.min(b), a.max(b));
        let e = self.faces.entry(key).or_insert(d);
        if d < *e {
            *e = d;
        }
    }

    /// Sorts each row by neighbour and keeps the smallest distance per neighbour.
    pub fn normalise(&mut self) {
        self.adj.par_iter_mut().for_each(|row| {
            row.sort_by(|x, y| x.0.cmp(&y.0).then(x.1.total_cmp(&y.1)));
            row.dedup_by_key(|x| x.0);
        });
    }

    pub fn image_edges(&self) -> usize {
        self.adj.iter().map(Vec::len).sum::<usize>() / 2
    }

    /// The edges within tighter thresholds (for threshold sweeps: the k-NN
    /// runs once at the loosest setting).
    pub fn restrict(&self, image_threshold: f32, face_threshold: f32) -> EdgeSet {
        EdgeSet {
            adj: self
                .adj
                .iter()
                .map(|row| {
                    row.iter()
                        .copied()
                        .filter(|(_, d)| *d <= image_threshold)
                        .collect()
                })
                .collect(),
            faces: self
                .faces
                .iter()
                .filter(|(_, d)| **d <= face_threshold)
                .map(|(k, d)| (*k, *d))
                .collect(),
        }
    }
}

/// Common neighbours of two sorted rows.
fn shared(a: &[(u32, f32)], b: &[(u32, f32)]) -> u32 {
    let (mut i, mut j, mut n) = (0, 0, 0);
    while i < a.len() && j < b.len() {
        match a[i].0.cmp(&b[j].0) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                n += 1;
                i += 1;
                j += 1;
            }
        }
    }
    n
}

/// One candidate edge and the rule's verdict on it.
#[derive(Clone, Debug)]
pub struct Judged {
    pub a: u32,
    pub b: u32,
    pub distance: f32,
    pub face_distance: Option<f32>,
    pub shared: u32,
    pub kind: EvidenceKind,
    pub accepted: bool,
}

/// Applies the anti-chaining rule to the edge (a, b).
pub fn judge(edges: &EdgeSet, s: &LinkSettings, a: u32, b: u32, d: f32) -> Judged {
    let sh = shared(&edges.adj[a as usize], &edges.adj[b as usize]);
    let face = edges.faces.get(&(a.min(b), a.max(b))).copied();
    let kind = if d <= s.near_duplicate_threshold {
        EvidenceKind::NearDuplicate
    } else if face.is_some() {
        EvidenceKind::ImageAndFace
    } else {
        EvidenceKind::Image
    };
    let accepted =
        s.single_linkage || kind != EvidenceKind::Image || sh as usize >= s.min_shared_neighbours;
    Judged {
        a: a.min(b),
        b: a.max(b),
        distance: d,
        face_distance: face,
        shared: sh,
        kind,
        accepted,
    }
}

/// Joins accepted edges in ascending distance order (ties by media index,
/// so the result does not depend on the order of work); returns the edges
/// that joined two groups, the evidence.
fn join<'j>(accepted: &'j mut [Judged], uf: &mut UnionFind) -> Vec<&'j Judged> {
    accepted.sort_by(|x, y| {
        x.distance
            .total_cmp(&y.distance)
            .then(x.a.cmp(&y.a))
            .then(x.b.cmp(&y.b))
    });
    accepted.iter().filter(|j| uf.union(j.a, j.b)).collect()
}

fn evidence(media: &MediaTable, j: &Judged, collection: &str) -> EvidenceRecord {
    EvidenceRecord {
        media_a: media.ids[j.a as usize].clone(),
        media_b: media.ids[j.b as usize].clone(),
        distance: j.distance,
        face_distance: j.face_distance,
        collection: collection.to_string(),
        kind: j.kind,
        shared_neighbours: j.shared,
        decision_id: None,
    }
}

/// Counts of a grouping.
#[derive(Clone, Debug, Default)]
pub struct GroupStats {
    pub accepted_edges: usize,
    pub refused_edges: usize,
    /// Accepted edges whose union investigators' decisions refused.
    pub refused_by_decisions: usize,
}

/// Groups media into series: judges every edge, joins accepted ones in
/// ascending distance order, returns the series of two or more media (in
/// series-id order) and the per-media group root.
pub fn group(
    media: &MediaTable,
    edges: &EdgeSet,
    s: &LinkSettings,
    collection: &str,
) -> (Vec<SeriesRecord>, GroupStats) {
    group_constrained(media, edges, s, collection, &Constraints::default())
}

/// [`group`] under investigators' decisions (`Constraints::bind`).
pub fn group_constrained(
    media: &MediaTable,
    edges: &EdgeSet,
    s: &LinkSettings,
    collection: &str,
    constraints: &Constraints,
) -> (Vec<SeriesRecord>, GroupStats) {
    let n = media.len();
    let mut judged: Vec<Judged> = (0..n as u32)
        .into_par_iter()
        .flat_map_iter(|a| {
            edges.adj[a as usize]
                .iter()
                .filter(move |(b, _)| a < *b)
                .map(move |&(b, d)| judge(edges, s, a, b, d))
        })
        .collect();
    let mut stats = GroupStats::default();
    judged.retain(|j| {
        if j.accepted {
            stats.accepted_edges += 1;
        } else {
            stats.refused_edges += 1;
        }
        j.accepted
    });
    let mut uf = UnionFind::new(n);
    // The decision hook: before any evidence is joined.
    let decided = constraints.bind(&media.ids, &media.index, &mut uf);
    let forest = join(&mut judged, &mut uf);
    stats.refused_by_decisions = uf.refused;
    let mut by_root: HashMap<u32, SeriesRecord> = HashMap::new();
    let mut sizes: HashMap<u32, usize> = HashMap::new();
    for m in 0..n as u32 {
        *sizes.entry(uf.find(m)).or_default() += 1;
    }
    for m in 0..n as u32 {
        let r = uf.find(m);
        if sizes[&r] < 2 {
            continue;
        }
        let (id, meta, face) = (
            &media.ids[m as usize],
            &media.meta[m as usize],
            media.has_face[m as usize],
        );
        by_root
            .entry(r)
            .and_modify(|rec| rec.add_media(id, meta, face))
            .or_insert_with(|| SeriesRecord::new(id, meta, face));
    }
    for j in forest {
        let r = uf.find(j.a);
        if let Some(rec) = by_root.get_mut(&r) {
            rec.evidence.push(evidence(media, j, collection));
        }
    }
    for (a, b, d) in decided {
        let r = uf.find(a);
        if let Some(rec) = by_root.get_mut(&r) {
            let (ma, mb) = (&media.ids[a as usize], &media.ids[b as usize]);
            rec.evidence
                .push(EvidenceRecord::decision(ma, mb, d, collection));
        }
    }
    let mut series: Vec<SeriesRecord> = by_root.into_values().collect();
    series.sort_by(|a, b| a.series_id.cmp(&b.series_id));
    (series, stats)
}

/// Runs `f` over `items` on rayon's pool, reporting progress about every 1%.
fn par_progress<T: Sync, R: Send>(
    stage: &'static str,
    items: &[T],
    progress: Progress<'_>,
    f: impl Fn(&T) -> Result<R> + Sync + Send,
) -> Result<Vec<R>> {
    let total = items.len() as u64;
    let done = AtomicU64::new(0);
    let step = (total / 100).max(1);
    progress(stage, 0, total);
    let out = items
        .par_iter()
        .map(|x| {
            let r = f(x);
            let d = done.fetch_add(1, Ordering::Relaxed) + 1;
            if d.is_multiple_of(step) && d != total {
                progress(stage, d, total);
            }
            r
        })
        .collect::<Result<Vec<R>>>()?;
    progress(stage, total, total);
    Ok(out)
}

/// One collection's points of a run, mapped to media.
struct Points {
    refs: Vec<PointRef>,
    media: Vec<u32>,
    by_ref: HashMap<PointRef, u32>,
}

fn collect_points(
    view: &View,
    filter: Option<&Filter>,
    face: bool,
    media: &mut MediaTable,
    add_media: bool,
) -> Result<Points> {
    let mut p = Points {
        refs: Vec::new(),
        media: Vec::new(),
        by_ref: HashMap::new(),
    };
    for (r, id, meta) in view.points(filter)? {
        let key = media_key(&id, &meta, face);
        let m = match media.index.get(&key) {
            Some(&m) => m,
            None if add_media => media.intern(&key, &meta),
            None => continue,
        };
        if face {
            media.has_face[m as usize] = true;
        }
        p.by_ref.insert(r, m);
        p.refs.push(r);
        p.media.push(m);
    }
    Ok(p)
}

/// Neighbours of each point within `threshold`, as (media, distance) of
/// points in `points` (others, and the point's own media, dropped).
fn knn(
    stage: &'static str,
    view: &View,
    points: &Points,
    s: &LinkSettings,
    threshold: f32,
    filter: Option<&Filter>,
    progress: Progress<'_>,
) -> Result<Vec<Vec<(u32, f32)>>> {
    let idx: Vec<usize> = (0..points.refs.len()).collect();
    par_progress(stage, &idx, progress, |&i| {
        let hits = neighbours(view, points.refs[i], s, threshold, filter)?;
        Ok(hits
            .into_iter()
            .filter_map(|(h, d)| points.by_ref.get(&h).map(|&m| (m, d)))
            .filter(|(m, _)| *m != points.media[i])
            .collect())
    })
}

/// Neighbours probed first, and the breadth of that probe.
const PROBE_K: usize = 8;
const PROBE_EF: usize = 32;

/// The stored point's neighbours within `threshold` (itself excluded), by
/// ascending distance: at most `s.k`. Most points have few or none (noise,
/// look-alikes), so a narrow probe comes first; only a point whose probe is
/// full within the threshold is searched again at `s.k` / `s.ef`. Full and
/// incremental linking both look neighbours up here, so they see the same
/// edges.
fn neighbours(
    view: &View,
    r: PointRef,
    s: &LinkSettings,
    threshold: f32,
    filter: Option<&Filter>,
) -> Result<Vec<(PointRef, f32)>> {
    let v = view.vector(r)?;
    let mut hits = if s.k > PROBE_K {
        let probe = view.search(&v, PROBE_K, PROBE_EF.min(s.ef), Some(r), filter)?;
        if probe.len() == PROBE_K && probe.iter().all(|(_, d)| *d <= threshold) {
            view.search(&v, s.k, s.ef, Some(r), filter)?
        } else {
            probe
        }
    } else {
        view.search(&v, s.k, s.ef, Some(r), filter)?
    };
    hits.retain(|(_, d)| *d <= threshold);
    Ok(hits)
}

/// The result of a full link run.
pub struct Linked {
    pub media: MediaTable,
    pub series: Vec<SeriesRecord>,
    pub image_edges: usize,
    pub face_edges: usize,
    pub stats: GroupStats,
    pub stages: StageTimes,
}

/// The media of `images` (and `faces`) in `scope` and their edge set under
/// the thresholds of `s`: the k-NN stages of a link run. Also returns the
/// seconds spent per stage (load, knn-images, face-matches).
pub fn build_edges(
    images: &View,
    faces: Option<&View>,
    s: &LinkSettings,
    scope: Option<&Filter>,
    progress: Progress<'_>,
) -> Result<(MediaTable, EdgeSet, StageTimes)> {
    let mut stages = Vec::new();
    let t = Instant::now();
    let mut media = MediaTable::default();
    let img = collect_points(images, scope, false, &mut media, true)?;
    let face_pts = match faces {
        Some(fv) => Some(collect_points(fv, scope, true, &mut media, false)?),
        None => None,
    };
    progress("load", media.len() as u64, media.len() as u64);
    stages.push(("load", t.elapsed().as_secs_f64()));

    let t = Instant::now();
    let mut edges = EdgeSet::with_len(media.len());
    let lists = knn(
        "knn-images",
        images,
        &img,
        s,
        s.image_threshold,
        scope,
        progress,
    )?;
    for (i, list) in lists.into_iter().enumerate() {
        for (m, d) in list {
            edges.add_image(img.media[i], m, d);
        }
    }
    edges.normalise();
    stages.push(("knn-images", t.elapsed().as_secs_f64()));

    let t = Instant::now();
    if let (Some(fv), Some(fp)) = (faces, &face_pts) {
        let mut faces_of: Vec<Vec<PointRef>> = vec![Vec::new(); media.len()];
        for (r, &m) in fp.refs.iter().zip(&fp.media) {
            faces_of[m as usize].push(*r);
        }
        match_faces(fv, &faces_of, &mut edges, s, progress)?;
    }
    stages.push(("face-matches", t.elapsed().as_secs_f64()));
    Ok((media, edges, stages))
}

/// Face matches between the two media of each image edge: the best distance over their pairs of faces, kept when
/// within the face threshold. Faces only ever corroborate an image edge, so
/// this compares the few faces of linked media directly instead of running a
/// k-NN self-join over the face collection.
fn match_faces(
    fv: &View,
    faces_of: &[Vec<PointRef>],
    edges: &mut EdgeSet,
    s: &LinkSettings,
    progress: Progress<'_>,
) -> Result<()> {
    let pairs: Vec<(u32, u32)> = (0..edges.adj.len() as u32)
        .flat_map(|a| {
            edges.adj[a as usize]
                .iter()
                .filter(move |(b, _)| a < *b)
                .map(move |&(b, _)| (a, b))
        })
        .filter(|&(a, b)| {
            let has = |m: u32| faces_of.get(m as usize).is_some_and(|f| !f.is_empty());
            has(a) && has(b)
        })
        .collect();
    let matched = par_progress("face-matches", &pairs, progress, |&(a, b)| {
        let mut best: Option<f32> = None;
        for &fa in &faces_of[a as usize] {
            for &fb in &faces_of[b as usize] {
                let d = fv.distance(fa, fb)?;
                if d <= s.face_threshold && best.is_none_or(|x| d < x) {
                    best = Some(d);
                }
            }
        }
        Ok(best.map(|d| (a, b, d)))
    })?;
    for (a, b, d) in matched.into_iter().flatten() {
        edges.add_face(a, b, d);
    }
    Ok(())
}

/// Links the media of `images` (and `faces`) in `scope` into series,
/// honouring investigators' decisions.
pub fn link_full(
    images: (&View, &str),
    faces: Option<(&View, &str)>,
    s: &LinkSettings,
    scope: Option<&Filter>,
    constraints: &Constraints,
    progress: Progress<'_>,
) -> Result<Linked> {
    let (media, edges, mut stages) = build_edges(images.0, faces.map(|f| f.0), s, scope, progress)?;
    let t = Instant::now();
    progress("group", 0, 1);
    let (series, stats) = group_constrained(&media, &edges, s, images.1, constraints);
    progress("group", 1, 1);
    stages.push(("group", t.elapsed().as_secs_f64()));
    Ok(Linked {
        image_edges: edges.image_edges(),
        face_edges: edges.faces.len(),
        media,
        series,
        stats,
        stages,
    })
}

/// What `LinkUpload` did to one media of the upload.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Outcome {
    Joined,
    NewSeries,
    Unlinked,
}

pub struct UploadLinked {
    /// (media id, outcome, series id or empty), in media-id order.
    pub media: Vec<(String, Outcome, String)>,
    /// (surviving series id, absorbed ids).
    pub merges: Vec<(String, Vec<String>)>,
    /// Every series the upload touched, as it is now.
    pub touched: Vec<SeriesRecord>,
    pub new_edges: usize,
}

/// The media an incremental link has in play: the upload's first (indices
/// below `n_new`), then the old media met as their neighbours; and the
/// edges found among them so far. Points found by a search are mapped to
/// media lazily, each described once.
struct InPlay<'v> {
    view: &'v View,
    by_ref: HashMap<PointRef, u32>,
    media: MediaTable,
    n_new: u32,
    edges: EdgeSet,
}

impl InPlay<'_> {
    fn media_of(&mut self, r: PointRef) -> Result<u32> {
        if let Some(&m) = self.by_ref.get(&r) {
            return Ok(m);
        }
        let (id, meta) = self.view.describe(r)?;
        let m = self.media.intern(&media_key(&id, &meta, false), &meta);
        self.by_ref.insert(r, m);
        Ok(m)
    }

    /// Stage 1: the neighbours of the upload's image points become edges.
    /// Returns the old points among them.
    fn add_upload_edges(&mut self, s: &LinkSettings, new_img: &Points) -> Result<Vec<PointRef>> {
        let view = self.view;
        let hits: Vec<Vec<(PointRef, f32)>> = new_img
            .refs
            .par_iter()
            .map(|&r| neighbours(view, r, s, s.image_threshold, None))
            .collect::<Result<_>>()?;
        let mut old_refs: BTreeSet<PointRef> = BTreeSet::new();
        for (i, hits) in hits.into_iter().enumerate() {
            for (h, d) in hits {
                let m = self.media_of(h)?;
                if m >= self.n_new {
                    old_refs.insert(h);
                }
                self.edges.add_image(new_img.media[i], m, d);
            }
        }
        Ok(old_refs.into_iter().collect())
    }

    /// Stage 2: the neighbours of those old points, again: their lists now
    /// include the upload.
    fn add_neighbour_edges(&mut self, s: &LinkSettings, old_refs: &[PointRef]) -> Result<()> {
        let view = self.view;
        let hits: Vec<Vec<(PointRef, f32)>> = old_refs
            .par_iter()
            .map(|&r| neighbours(view, r, s, s.image_threshold, None))
            .collect::<Result<_>>()?;
        for (r, hits) in old_refs.iter().zip(hits) {
            let a = self.media_of(*r)?;
            for (h, d) in hits {
                let b = self.media_of(h)?;
                self.edges.add_image(a, b, d);
            }
        }
        self.edges.grow(self.media.len());
        self.edges.normalise();
        Ok(())
    }

    /// Stage 3: the faces of every media in play (found through their
    /// uploads), and the face matches along the edges.
    fn add_face_matches(&mut self, fv: &View, s: &LinkSettings) -> Result<()> {
        let mut uploads: Vec<String> = self
            .media
            .meta
            .iter()
            .map(|m| m.upload_id.clone())
            .filter(|u| !u.is_empty())
            .collect();
        uploads.sort();
        uploads.dedup();
        let mut faces_of: Vec<Vec<PointRef>> = vec![Vec::new(); self.media.len()];
        for chunk in uploads.chunks(crate::index::filter::MAX_FILTER_VALUES) {
            let f = Filter {
                upload_ids_any: chunk.to_vec(),
                ..Default::default()
            };
            for (r, id, meta) in fv.points(Some(&f))? {
                if let Some(&m) = self.media.index.get(&media_key(&id, &meta, true)) {
                    faces_of[m as usize].push(r);
                    self.media.has_face[m as usize] = true;
                }
            }
        }
        match_faces(fv, &faces_of, &mut self.edges, s, &|_, _, _| {})
    }

    /// Stage 4: judges the edges whose verdict can have changed: those at
    /// the upload's media, and those between two old media that are both
    /// neighbours of the upload. Returns the accepted ones and the number
    /// of edges at the upload's media.
    fn judge_changed(&self, s: &LinkSettings) -> (Vec<Judged>, usize) {
        let n_new = self.n_new;
        let adj = &self.edges.adj;
        let near_new: BTreeSet<u32> = (0..n_new)
            .flat_map(|a| adj[a as usize].iter().map(|x| x.0))
            .filter(|&m| m >= n_new)
            .collect();
        let mut judged: Vec<Judged> = Vec::new();
        for a in 0..self.media.len() as u32 {
            for &(b, d) in &adj[a as usize] {
                if a >= b {
                    continue;
                }
                let relevant =
                    a < n_new || b < n_new || (near_new.contains(&a) && near_new.contains(&b));
                if relevant {
                    judged.push(judge(&self.edges, s, a, b, d));
                }
            }
        }
        let new_edges = judged.iter().filter(|j| j.a < n_new || j.b < n_new).count();
        judged.retain(|j| j.accepted);
        (judged, new_edges)
    }

    /// Stage 5: union-find over the media in play, seeded with their
    /// current series (`index`: media id → series).
    fn seeded_union_find(&self, index: &HashMap<String, usize>) -> UnionFind {
        let n = self.media.len();
        let mut uf = UnionFind::new(n);
        let mut first_of_series: HashMap<usize, u32> = HashMap::new();
        for m in 0..n as u32 {
            if let Some(&si) = index.get(&self.media.ids[m as usize]) {
                match first_of_series.get(&si) {
                    Some(&f) => {
                        uf.union(f, m);
                    }
                    None => {
                        first_of_series.insert(si, m);
                    }
                }
            }
        }
        uf
    }
}

/// What regrouping the media in play changes in the stored series.
#[derive(Default)]
struct Regrouped {
    /// Rebuilt records, each with the stored series it replaces (if any).
    replaced: Vec<(Option<usize>, SeriesRecord)>,
    /// Stored series absorbed into another.
    absorbed: BTreeSet<usize>,
    /// (surviving series id, absorbed ids).
    merges: Vec<(String, Vec<String>)>,
    /// Outcome per media of the upload that is in a group.
    outcome_of: HashMap<u32, Outcome>,
}

/// Stage 6: rebuilds every group that holds a media of the upload: the
/// stored series it joins (merged if several), its new media, and the
/// evidence edges inside it.
fn regroup(
    p: &InPlay,
    state: &SeriesState,
    index: &HashMap<String, usize>,
    uf: &mut UnionFind,
    forest: &[&Judged],
    collection: &str,
) -> Regrouped {
    let mut groups: HashMap<u32, Vec<u32>> = HashMap::new();
    for m in 0..p.media.len() as u32 {
        groups.entry(uf.find(m)).or_default().push(m);
    }
    let mut out = Regrouped::default();
    for members in groups.values() {
        let series_in: BTreeSet<usize> = members
            .iter()
            .filter_map(|m| index.get(&p.media.ids[*m as usize]).copied())
            .collect();
        let has_new = members.iter().any(|&m| m < p.n_new);
        if !has_new || (members.len() < 2) {
            if has_new {
                for &m in members {
                    out.outcome_of.insert(m, Outcome::Unlinked);
                }
            }
            continue;
        }
        let mut rec: Option<SeriesRecord> = None;
        for &si in &series_in {
            let r = state.series[si].clone();
            match &mut rec {
                Some(x) => x.absorb(r),
                None => rec = Some(r),
            }
        }
        if series_in.len() >= 2 {
            out.merges.push(merge_of(state, &series_in, rec.as_ref()));
        }
        let Some(mut rec) = add_new_media(rec, &p.media, index, members) else {
            continue;
        };
        for j in forest {
            if members.binary_search(&j.a).is_ok() {
                rec.evidence.push(evidence(&p.media, j, collection));
            }
        }
        let outcome = if series_in.is_empty() {
            Outcome::NewSeries
        } else {
            Outcome::Joined
        };
        for &m in members.iter().filter(|&&m| m < p.n_new) {
            out.outcome_of.insert(m, outcome);
        }
        out.absorbed.extend(series_in.iter().skip(1).copied());
        out.replaced.push((series_in.first().copied(), rec));
    }
    out
}

/// The merge of the stored series `series_in` into `merged`: (surviving
/// id, the other ids).
fn merge_of(
    state: &SeriesState,
    series_in: &BTreeSet<usize>,
    merged: Option<&SeriesRecord>,
) -> (String, Vec<String>) {
    let survivor = merged.map(|r| r.series_id.clone()).unwrap_or_default();
    let gone: Vec<String> = series_in
        .iter()
        .map(|&si| state.series[si].series_id.clone())
        .filter(|id| *id != survivor)
        .collect();
    (survivor, gone)
}

/// Adds the group's media that are in no stored series to `rec` (or
/// founds it with them).
fn add_new_media(
    mut rec: Option<SeriesRecord>,
    media: &MediaTable,
    index: &HashMap<String, usize>,
    members: &[u32],
) -> Option<SeriesRecord> {
    for &m in members {
        let id = &media.ids[m as usize];
        if index.contains_key(id) {
            continue;
        }
        let face = media.has_face[m as usize];
        let meta = &media.meta[m as usize];
        match &mut rec {
            Some(x) => x.add_media(id, meta, face),
            None => rec = Some(SeriesRecord::new(id, meta, face)),
        }
    }
    rec
}

/// Stage 7: writes the rebuilt records back, in place of the series they
/// replace, absorbed ones removed, and notes the upload as linked. Returns
/// the touched records (in series-id order) and each of their media's
/// series id.
fn write_back(
    state: &mut SeriesState,
    replaced: Vec<(Option<usize>, SeriesRecord)>,
    absorbed: &BTreeSet<usize>,
    upload_id: &str,
) -> (Vec<SeriesRecord>, HashMap<String, String>) {
    let mut touched = Vec::new();
    let mut series_of: HashMap<String, String> = HashMap::new();
    for (keep, rec) in replaced {
        for id in &rec.media_ids {
            series_of.insert(id.clone(), rec.series_id.clone());
        }
        touched.push(rec.clone());
        match keep {
            Some(i) => state.series[i] = rec,
            None => state.series.push(rec),
        }
    }
    let mut i = 0;
    state.series.retain(|_| {
        let keep = !absorbed.contains(&i);
        i += 1;
        keep
    });
    state.series.sort_by(|a, b| a.series_id.cmp(&b.series_id));
    if !state.linked_uploads.iter().any(|u| u == upload_id) {
        state.linked_uploads.push(upload_id.to_string());
    }
    touched.sort_by(|a, b| a.series_id.cmp(&b.series_id));
    (touched, series_of)
}

/// Links the media of `upload_id` against the stored series `state` and
/// updates it: only the upload's points and their neighbours are searched.
///
/// Equivalent to a full re-link because the rule depends only on the edge
/// set: the new edges are those at the upload's media, and the only old
/// edges whose verdict can change are those between two neighbours of the
/// upload (they may gain a common neighbour in it); both neighbours'
/// neighbour lists are looked up again for that.
///
/// Decisions make grouping depend on the order edges are joined in, which
/// the seeded incremental join does not reproduce: when a decision names a
/// media in play, or a member of a series in play, this returns `None`
/// before changing anything, and the caller links the whole collection
/// instead. A series no decision touches was never held apart by one, so
/// elsewhere the incremental join stays exact.
pub fn link_upload(
    images: (&View, &str),
    faces: Option<&View>,
    state: &mut SeriesState,
    upload_id: &str,
    constraints: &Constraints,
) -> Result<Option<UploadLinked>> {
    let s = state.settings.clone();
    let scope = Filter {
        upload_ids_any: vec![upload_id.to_string()],
        ..Default::default()
    };
    let mut media = MediaTable::default();
    let new_img = collect_points(images.0, Some(&scope), false, &mut media, true)?;
    if new_img.refs.is_empty() {
        return Err(Error::invalid(format!(
            "upload_id {upload_id:?} has no points in collection {:?}",
            images.1
        )));
    }
    let mut p = InPlay {
        view: images.0,
        by_ref: new_img.by_ref.clone(),
        n_new: media.len() as u32,
        edges: EdgeSet::with_len(media.len()),
        media,
    };
    let old_refs = p.add_upload_edges(&s, &new_img)?;
    p.add_neighbour_edges(&s, &old_refs)?;
    let index = state.media_index();
    if constraints.in_play(&p.media.ids, state, &index) {
        return Ok(None);
    }
    if let Some(fv) = faces {
        p.add_face_matches(fv, &s)?;
    }
    let (mut judged, new_edges) = p.judge_changed(&s);
    let mut uf = p.seeded_union_find(&index);
    let forest = join(&mut judged, &mut uf);
    let regrouped = regroup(&p, state, &index, &mut uf, &forest, images.1);
    let (touched, series_of) =
        write_back(state, regrouped.replaced, &regrouped.absorbed, upload_id);
    let mut out: Vec<(String, Outcome, String)> = (0..p.n_new)
        .map(|m| {
            let id = p.media.ids[m as usize].clone();
            let o = regrouped
                .outcome_of
                .get(&m)
                .copied()
                .unwrap_or(Outcome::Unlinked);
            let sid = match o {
                Outcome::Unlinked => String::new(),
                _ => series_of.get(&id).cloned().unwrap_or_default(),
            };
            (id, o, sid)
        })
        .collect();
    out.sort();
    Ok(Some(UploadLinked {
        media: out,
        merges: regrouped.merges,
        touched,
        new_edges,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> LinkSettings {
        LinkSettings {
            image_threshold: 0.4,
            face_threshold: 0.7,
            near_duplicate_threshold: 0.05,
            k: 32,
            ef: 64,
            min_shared_neighbours: 1,
            single_linkage: false,
        }
    }

    fn table(n: usize) -> MediaTable {
        let mut t = MediaTable::default();
        for i in 0..n {
            let meta = pb::Metadata {
                uploaded_at: 100 + i as i64,
                country: if i % 2 == 0 { "DE" } else { "FR" }.into(),
                ..Default::default()
            };
            t.intern(&format!("m{i}"), &meta);
        }
        t
    }

    /// Two triangles {0,1,2} and {3,4,5} joined by one lone edge 2–3: the
    /// chain is refused by the rule, accepted by single linkage; a
    /// near-duplicate or a face match lets a lone edge through.
    #[test]
    fn triangle_rule_refuses_a_lone_chain_edge() {
        let media = table(6);
        let mut e = EdgeSet::with_len(6);
        for (a, b) in [(0, 1), (1, 2), (0, 2), (3, 4), (4, 5), (3, 5)] {
            e.add_image(a, b, 0.2);
        }
        e.add_image(2, 3, 0.3);
        e.normalise();
        let s = settings();
        let (series, stats) = group(&media, &e, &s, "images");
        assert_eq!(series.len(), 2);
        assert_eq!(stats.refused_edges, 1);
        assert_eq!(series[0].series_id, "ser-m0");
        assert_eq!(series[1].series_id, "ser-m3");
        assert_eq!(series[0].evidence.len(), 2);
        let single = LinkSettings {
            single_linkage: true,
            ..s.clone()
        };
        let (series, _) = group(&media, &e, &single, "images");
        assert_eq!(series.len(), 1);
        assert_eq!(series[0].media_ids.len(), 6);
        assert_eq!(series[0].evidence.len(), 5);
        // A face match between 2 and 3 corroborates the lone edge.
        let mut f = e;
        f.add_face(3, 2, 0.5);
        let (series, _) = group(&media, &f, &s, "images");
        assert_eq!(series.len(), 1);
        assert!(
            series[0]
                .evidence
                .iter()
                .any(|x| x.kind == EvidenceKind::ImageAndFace)
        );
    }

    #[test]
    fn near_duplicates_link_alone_and_pairs_need_support() {
        let media = table(4);
        let mut e = EdgeSet::with_len(4);
        e.add_image(0, 1, 0.01);
        e.add_image(2, 3, 0.2);
        e.normalise();
        let (series, stats) = group(&media, &e, &settings(), "images");
        assert_eq!(series.len(), 1);
        assert_eq!(series[0].media_ids.len(), 2);
        assert_eq!(series[0].evidence[0].kind, EvidenceKind::NearDuplicate);
        assert_eq!(stats.refused_edges, 1);
    }

    #[test]
    fn settings_defaults_and_errors() {
        let s = settings_from_pb(None, Metric::Cosine).unwrap();
        assert_eq!(s.image_threshold, DEFAULT_IMAGE_THRESHOLD);
        assert_eq!(s.k, DEFAULT_K);
        let e = settings_from_pb(None, Metric::L2).unwrap_err().to_string();
        assert!(e.contains("params.image_threshold must be set"), "{e}");
        let bad = pb::LinkParams {
            image_threshold: f32::NAN,
            ..Default::default()
        };
        assert!(settings_from_pb(Some(&bad), Metric::Cosine).is_err());
        let bad = pb::LinkParams {
            k: 1000,
            ..Default::default()
        };
        assert!(settings_from_pb(Some(&bad), Metric::Cosine).is_err());
        let bad = pb::LinkParams {
            image_threshold: 0.1,
            near_duplicate_threshold: 0.2,
            ..Default::default()
        };
        let e = settings_from_pb(Some(&bad), Metric::Cosine)
            .unwrap_err()
            .to_string();
        assert!(e.contains("near_duplicate_threshold"), "{e}");
    }
}
