//! Series linking: the k-NN self-join of an image collection and of its
//! face collection, joined at media level and grouped into series. A series
//! is the material of one victim: one or more scenes, joined by the
//! victim's face when they look nothing alike.
//!
//! **Edges.** Every image point looks up its `k` nearest neighbours; those
//! within `image_threshold` become media-level edges (both directions, the
//! smaller distance kept). Every face looks up its nearest faces; those
//! within `face_threshold` become face edges, grouped into identities (see
//! `identity`). The faces of the two media of each image edge are compared
//! too: the best match marks the edge `image+face`.
//!
//! **Scene groups, and the anti-chaining rule.** Plain single linkage over
//! a threshold chains unrelated series together through look-alike material
//! (a hard negative close to one series, another close to it, ...): one weak
//! edge is enough to merge two whole series. Here an *ordinary* image edge
//! links two media only if they share at least `min_shared_neighbours`
//! common neighbours within the threshold, i.e. the edge lies in a triangle
//! of the neighbour graph: a lone edge of a chain has none. Near-duplicate
//! edges (within `near_duplicate_threshold`) link on their own. These make
//! the scene groups.
//!
//! **Faces.** A lone image edge also links when both media show the same
//! person and that person is not one who recurs beside several victims.
//! Scene groups are joined through a face when it is the victim's: the
//! identity anchored in both groups as their primary subject, and not one
//! that recurs beside several victims (an adult, a bystander). Others seen
//! in several series are reported as "same person" relations, not merged.
//!
//! Accepted image edges are joined in ascending distance order, then face
//! joins in ascending face distance (union-find); the edges that joined two
//! groups are the series' evidence (a spanning forest).
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

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use rayon::prelude::*;

use crate::collection::{PointRef, View};
use crate::error::{Error, Result};
use crate::index::distance::Metric;
use crate::index::filter::Filter;
use crate::investigate::decisions::Constraints;
use crate::investigate::graph::shared;
use crate::investigate::identity::{self, FaceDistance, FaceSet};
use crate::investigate::series::{
    EvidenceKind, EvidenceRecord, LinkSettings, PersonRecord, SeriesRecord,
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
        core_threshold: core(p.core_image_threshold, image_threshold)?,
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
        calibration: pb::Calibration::Off as i32,
        core_image_threshold: s.core(),
    }
}

/// Checks `params.core_image_threshold` (0: none).
fn core(v: f32, image_threshold: f32) -> Result<f32> {
    if !v.is_finite() || v < 0.0 || v > image_threshold {
        return Err(Error::invalid(format!(
            "params.core_image_threshold is {v}; it must be a distance from 0 to params.image_threshold ({image_threshold})"
        )));
    }
    Ok(v)
}

/// Checks request parameters before any work: everything
/// [`settings_from_pb`] checks but the thresholds left at 0, which may yet
/// be calibrated.
pub fn check_params(p: &pb::LinkParams) -> Result<()> {
    if pb::Calibration::try_from(p.calibration).is_err() {
        return Err(Error::invalid(format!(
            "params.calibration {} is not a Calibration value",
            p.calibration
        )));
    }
    settings_from_pb(Some(p), Metric::Cosine).map(|_| ())
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
    /// The media's image point, when the run read it from a view.
    pub image_ref: Vec<Option<PointRef>>,
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
        self.image_ref.push(None);
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

/// Media-level neighbour graph within the image threshold, the face
/// matches along it, and the faces with their own candidate edges.
#[derive(Default)]
pub struct EdgeSet {
    /// Per media: (neighbour, image distance), sorted by neighbour, one entry each.
    pub adj: Vec<Vec<(u32, f32)>>,
    /// (a, b) with a < b → the best face match between their faces:
    /// (distance, face of a, face of b) as indices into `face_set`.
    pub faces: HashMap<(u32, u32), FaceMatch>,
    /// The faces of the media and their nearest faces.
    pub face_set: FaceSet,
}

/// The best face match between the faces of two media.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FaceMatch {
    pub distance: f32,
    /// Faces (indices into `EdgeSet::face_set`), in the order of the pair.
    pub faces: (u32, u32),
}

impl EdgeSet {
    pub fn with_len(n: usize) -> EdgeSet {
        EdgeSet {
            adj: vec![Vec::new(); n],
            ..Default::default()
        }
    }

    pub(crate) fn grow(&mut self, n: usize) {
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

    /// Records a face match between media a and b (faces `fa` of a, `fb`
    /// of b), keeping the best per pair.
    pub fn add_face(&mut self, a: u32, b: u32, d: f32, fa: u32, fb: u32) {
        if a == b {
            return;
        }
        let m = FaceMatch {
            distance: d,
            faces: if a < b { (fa, fb) } else { (fb, fa) },
        };
        let e = self.faces.entry((a.min(b), a.max(b))).or_insert(m);
        if d < e.distance {
            *e = m;
        }
    }

    /// Sorts each row by neighbour and keeps the smallest distance per neighbour.
    pub fn normalise(&mut self) {
        self.adj.par_iter_mut().for_each(|row| {
            row.sort_by(|x, y| x.0.cmp(&y.0).then(x.1.total_cmp(&y.1)));
            row.dedup_by_key(|x| x.0);
        });
        self.face_set.normalise();
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
                .filter(|(_, m)| m.distance <= face_threshold)
                .map(|(k, m)| (*k, *m))
                .collect(),
            face_set: self.face_set.restrict(face_threshold),
        }
    }
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

/// Applies the image rule to the edge (a, b): near-duplicates and edges
/// in a triangle (`min_shared_neighbours` common neighbours) are
/// accepted. A face match marks the edge `image+face`; whether it may
/// carry a lone edge is decided with the identities ([`corroborate`]).
pub fn judge(edges: &EdgeSet, s: &LinkSettings, a: u32, b: u32, d: f32) -> Judged {
    let sh = shared(&edges.adj[a as usize], &edges.adj[b as usize]);
    let face = edges.faces.get(&(a.min(b), a.max(b))).map(|m| m.distance);
    let kind = if d <= s.near_duplicate_threshold {
        EvidenceKind::NearDuplicate
    } else if face.is_some() {
        EvidenceKind::ImageAndFace
    } else {
        EvidenceKind::Image
    };
    let accepted = s.single_linkage
        || kind == EvidenceKind::NearDuplicate
        || sh as usize >= s.min_shared_neighbours;
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

/// Accepts a lone image edge whose two media show the same person, when
/// that person is not one who recurs beside several victims (`identity`:
/// per face, `recurring`: identities that may not corroborate).
pub fn corroborate(
    j: &mut Judged,
    edges: &EdgeSet,
    identity: &[u32],
    recurring: &dyn Fn(u32) -> bool,
) {
    if j.accepted {
        return;
    }
    if let Some(m) = edges.faces.get(&(j.a, j.b)) {
        let (fa, fb) = (m.faces.0 as usize, m.faces.1 as usize);
        if let (Some(&ia), Some(&ib)) = (identity.get(fa), identity.get(fb))
            && ia == ib
            && !recurring(ia)
        {
            j.accepted = true;
        }
    }
}

/// Joins accepted edges in ascending distance order (ties by media index,
/// so the result does not depend on the order of work); returns the edges
/// that joined two groups, the evidence.
pub(crate) fn join<'j>(accepted: &'j mut [Judged], uf: &mut UnionFind) -> Vec<&'j Judged> {
    accepted.sort_by(|x, y| {
        x.distance
            .total_cmp(&y.distance)
            .then(x.a.cmp(&y.a))
            .then(x.b.cmp(&y.b))
    });
    accepted.iter().filter(|j| uf.union(j.a, j.b)).collect()
}

pub(crate) fn evidence(media: &MediaTable, j: &Judged, collection: &str) -> EvidenceRecord {
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
    /// Lone image edges accepted because both media show the same person.
    pub corroborated_edges: usize,
    /// Image edges beyond the core threshold refused because faces
    /// contradict them.
    pub contradicted_edges: usize,
    /// Face joins between scene groups (face evidence in the forest).
    pub face_joins: usize,
    /// Series with at least one part joined only through a face.
    pub face_joined_series: usize,
    /// Identities found among the faces.
    pub identities: usize,
    /// Identities that recur beside several victims.
    pub recurring_identities: usize,
    /// Accepted edges whose union investigators' decisions refused.
    pub refused_by_decisions: usize,
}

/// What [`group`] returns: the series of two or more media (in series-id
/// order), the people seen in several of them, and counts.
pub struct Grouped {
    pub series: Vec<SeriesRecord>,
    pub persons: Vec<PersonRecord>,
    pub stats: GroupStats,
}

/// The image distance between two media, for face evidence (faces join
/// media whose images may be far apart).
pub type ImageDistance<'a> = &'a (dyn Fn(u32, u32) -> f32 + Sync);

/// Distances the grouping reads beyond its edges: between the images of
/// two media (for face evidence) and between two faces (indices into the
/// edge set's faces, to compare identities whole).
#[derive(Clone, Copy)]
pub struct Distances<'a> {
    pub image: ImageDistance<'a>,
    pub face: FaceDistance<'a>,
}

/// Groups media into series: scene groups by images (near-duplicates and
/// edges in a triangle), lone image edges carried by a shared person, then
/// scene groups joined through their victim's face (see `identity`).
pub fn group(
    media: &MediaTable,
    edges: &EdgeSet,
    s: &LinkSettings,
    collection: &str,
    distances: Distances<'_>,
    constraints: &Constraints,
) -> Grouped {
    let n = media.len();
    let mut stats = GroupStats::default();
    let mut judged: Vec<Judged> = (0..n as u32)
        .into_par_iter()
        .flat_map_iter(|a| {
            edges.adj[a as usize]
                .iter()
                .filter(move |(b, _)| a < *b)
                .map(move |&(b, d)| judge(edges, s, a, b, d))
        })
        .collect();
    let people = find_people(n, edges, s, &judged, distances.face);
    for j in &mut judged {
        people.weigh(j, edges, s.core(), &mut stats);
    }
    judged.retain(|j| {
        if j.accepted {
            stats.accepted_edges += 1;
        } else {
            stats.refused_edges += 1;
        }
        j.accepted
    });
    let mut uf = UnionFind::new(n);
    // The decision hook: before any evidence is joined; every later union
    // (image edges, then face joins) goes through `uf.union`, which refuses
    // to cross a REJECT_LINK or SPLIT.
    let decided = constraints.bind(&media.ids, &media.index, &mut uf);
    let mut forest: Vec<Judged> = join(&mut judged, &mut uf).into_iter().cloned().collect();
    let fs = &edges.face_set;
    for (a, b, fd) in identity::face_joins(fs, &people.identity, &people.scene, &people.roles) {
        if uf.union(a, b) {
            forest.push(Judged {
                a,
                b,
                distance: (distances.image)(a, b),
                face_distance: Some(fd),
                shared: 0,
                kind: EvidenceKind::Face,
                accepted: true,
            });
        }
    }
    stats.refused_by_decisions = uf.refused;
    stats.identities = people
        .identity
        .iter()
        .enumerate()
        .filter(|&(f, &i)| f as u32 == i)
        .count();
    stats.recurring_identities = people.roles.recurring.len();
    stats.face_joins = forest
        .iter()
        .filter(|j| j.kind == EvidenceKind::Face)
        .count();
    let (mut series, root_of) = records(media, &mut uf, &forest, collection);
    for (a, b, d) in decided {
        let r = uf.find(a);
        if let Some((_, rec)) = series.iter_mut().find(|(root, _)| *root == r) {
            let (ma, mb) = (&media.ids[a as usize], &media.ids[b as usize]);
            rec.evidence
                .push(EvidenceRecord::decision(ma, mb, d, collection));
        }
    }
    finish(fs, &people, series, &root_of, stats)
}

/// Who the faces are: identities (a face's identity is its cluster's
/// smallest face), their roles among scene groups, and what each media
/// shows; with the scene groups (images alone, within the core threshold).
struct People {
    identity: Vec<u32>,
    roles: identity::Roles,
    scene: Vec<u32>,
    shown: Vec<Vec<u32>>,
}

fn find_people(
    n: usize,
    edges: &EdgeSet,
    s: &LinkSettings,
    judged: &[Judged],
    face: FaceDistance<'_>,
) -> People {
    let core = s.core();
    let mut scenes = UnionFind::new(n);
    for j in judged.iter().filter(|j| j.accepted && j.distance <= core) {
        scenes.union(j.a, j.b);
    }
    let scene = scenes.roots();
    // Pictures: near-duplicates of one picture count once for the roles.
    let mut copies = UnionFind::new(n);
    for j in judged
        .iter()
        .filter(|j| j.kind == EvidenceKind::NearDuplicate)
    {
        copies.union(j.a, j.b);
    }
    let picture = copies.roots();
    let fs = &edges.face_set;
    let identity = identity::cluster(fs, s.face_threshold, face);
    let roles = identity::roles(fs, &identity, &scene, &picture);
    let shown = identities_of(n, fs, &identity);
    People {
        identity,
        roles,
        scene,
        shown,
    }
}

impl People {
    /// Faces' say on one image edge: beyond the core threshold they must
    /// agree with it; a lone edge between two media of one person (not a
    /// recurring one) is accepted.
    fn weigh(&self, j: &mut Judged, edges: &EdgeSet, core: f32, stats: &mut GroupStats) {
        if j.accepted && j.distance > core && j.kind != EvidenceKind::NearDuplicate {
            j.accepted = faces_agree(j, &self.shown, &self.scene, &self.roles);
            stats.contradicted_edges += (!j.accepted) as usize;
        }
        let before = j.accepted;
        let recurring = |i: u32| self.roles.recurring.contains(&i);
        corroborate(j, edges, &self.identity, &recurring);
        stats.corroborated_edges += (j.accepted && !before) as usize;
    }
}

/// The series in series-id order with their victims' faces, and the
/// people seen in several series.
fn finish(
    fs: &FaceSet,
    people: &People,
    series: Vec<(u32, SeriesRecord)>,
    root_of: &[Option<u32>],
    mut stats: GroupStats,
) -> Grouped {
    let victims = identity::victims(fs, &people.identity, root_of, &people.roles);
    let persons = identity::persons(fs, &people.identity, root_of, &people.roles);
    let mut series_id_of: HashMap<u32, String> = HashMap::new();
    let mut series: Vec<SeriesRecord> = series
        .into_iter()
        .map(|(root, mut rec)| {
            rec.victim_faces = victims.get(&root).cloned().unwrap_or_default();
            series_id_of.insert(root, rec.series_id.clone());
            rec
        })
        .collect();
    stats.face_joined_series = series.iter().filter(|r| r.face_joined()).count();
    series.sort_by(|a, b| a.series_id.cmp(&b.series_id));
    let persons = persons
        .into_iter()
        .map(|p| PersonRecord {
            face_id: p.face_id,
            series: p
                .series
                .iter()
                .map(|&(root, media)| (series_id_of.get(&root).cloned().unwrap_or_default(), media))
                .collect(),
            recurring: p.recurring,
        })
        .collect();
    Grouped {
        series,
        persons,
        stats,
    }
}

/// The identities each media shows (`n` media).
fn identities_of(n: usize, fs: &FaceSet, identity: &[u32]) -> Vec<Vec<u32>> {
    let mut shown: Vec<Vec<u32>> = vec![Vec::new(); n];
    for (m, i) in identity::media_identities(fs, identity) {
        if let Some(v) = shown.get_mut(m as usize) {
            v.push(i);
        }
    }
    shown
}

/// Whether faces let an image edge beyond the core threshold link: each
/// end that shows faces shows a subject of the other end's scene group
/// (when that group has subjects).
fn faces_agree(j: &Judged, shown: &[Vec<u32>], scene: &[u32], roles: &identity::Roles) -> bool {
    let fits = |x: u32, y: u32| {
        let (ids, g) = (&shown[x as usize], scene[y as usize]);
        ids.is_empty()
            || !roles.primary.contains_key(&g)
            || ids.iter().any(|&i| roles.subject_in.contains(&(g, i)))
    };
    fits(j.a, j.b) && fits(j.b, j.a)
}

/// The series records of a union-find (groups of two or more media), each
/// with its root and its evidence; and per media the root of its series
/// (`None` in no series).
fn records(
    media: &MediaTable,
    uf: &mut UnionFind,
    forest: &[Judged],
    collection: &str,
) -> (Vec<(u32, SeriesRecord)>, Vec<Option<u32>>) {
    let n = media.len();
    let roots = uf.roots();
    let mut sizes: HashMap<u32, usize> = HashMap::new();
    for &r in &roots {
        *sizes.entry(r).or_default() += 1;
    }
    let mut by_root: HashMap<u32, SeriesRecord> = HashMap::new();
    let mut root_of = vec![None; n];
    for m in 0..n {
        let r = roots[m];
        if sizes[&r] < 2 {
            continue;
        }
        root_of[m] = Some(r);
        let (id, meta, face) = (&media.ids[m], &media.meta[m], media.has_face[m]);
        by_root
            .entry(r)
            .and_modify(|rec| rec.add_media(id, meta, face))
            .or_insert_with(|| SeriesRecord::new(id, meta, face));
    }
    for j in forest {
        if let Some(rec) = by_root.get_mut(&roots[j.a as usize]) {
            rec.evidence.push(evidence(media, j, collection));
        }
    }
    (by_root.into_iter().collect(), root_of)
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
pub(crate) struct Points {
    pub refs: Vec<PointRef>,
    pub ids: Vec<String>,
    pub media: Vec<u32>,
    pub by_ref: HashMap<PointRef, u32>,
}

pub(crate) fn collect_points(
    view: &View,
    filter: Option<&Filter>,
    face: bool,
    media: &mut MediaTable,
    add_media: bool,
) -> Result<Points> {
    let mut p = Points {
        refs: Vec::new(),
        ids: Vec::new(),
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
        } else if media.image_ref[m as usize].is_none() {
            media.image_ref[m as usize] = Some(r);
        }
        p.by_ref.insert(r, m);
        p.refs.push(r);
        p.ids.push(id);
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

/// Nearest faces looked up per face, and the breadth of that search: the
/// nearest faces of a person are mostly their own, which is all that
/// grouping faces into identities needs.
pub const FACE_K: usize = 8;
const FACE_EF: usize = 32;

/// The stored point's neighbours within `threshold` (itself excluded), by
/// ascending distance: at most `s.k`. Most points have few or none (noise,
/// look-alikes), so a narrow probe comes first; only a point whose probe is
/// full within the threshold is searched again at `s.k` / `s.ef`. Full and
/// incremental linking both look neighbours up here, so they see the same
/// edges.
pub(crate) fn neighbours(
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
    pub persons: Vec<PersonRecord>,
    pub image_edges: usize,
    pub face_edges: usize,
    pub stats: GroupStats,
    pub stages: StageTimes,
}

/// The media of `images` (and `faces`) in `scope` and their edge set under
/// the thresholds of `s`: the k-NN stages of a link run. Also returns the
/// seconds spent per stage (load, knn-images, knn-faces, face-matches).
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
    stages.push(("knn-images", t.elapsed().as_secs_f64()));

    let t = Instant::now();
    if let (Some(fv), Some(fp)) = (faces, face_pts) {
        edges.face_set = face_knn(fv, fp, s, scope, progress)?;
    }
    edges.normalise();
    stages.push(("knn-faces", t.elapsed().as_secs_f64()));

    let t = Instant::now();
    if let Some(fv) = faces {
        match_faces(fv, &mut edges, s, progress)?;
    }
    stages.push(("face-matches", t.elapsed().as_secs_f64()));
    Ok((media, edges, stages))
}

/// The faces of a run and their nearest faces of other media within the
/// face threshold: the candidate edges that identities are grouped from.
fn face_knn(
    fv: &View,
    fp: Points,
    s: &LinkSettings,
    scope: Option<&Filter>,
    progress: Progress<'_>,
) -> Result<FaceSet> {
    let index: HashMap<PointRef, u32> = fp
        .refs
        .iter()
        .enumerate()
        .map(|(i, r)| (*r, i as u32))
        .collect();
    let idx: Vec<usize> = (0..fp.refs.len()).collect();
    let lists = par_progress("knn-faces", &idx, progress, |&i| {
        let v = fv.vector(fp.refs[i])?;
        let hits = fv.search(&v, FACE_K, FACE_EF.max(FACE_K), Some(fp.refs[i]), scope)?;
        Ok(hits
            .into_iter()
            .filter(|(_, d)| *d <= s.face_threshold)
            .filter_map(|(h, d)| index.get(&h).map(|&j| (j, d)))
            .filter(|&(j, _)| fp.media[j as usize] != fp.media[i])
            .map(|(j, d)| (i as u32, j, d))
            .collect::<Vec<_>>())
    })?;
    Ok(FaceSet {
        refs: fp.refs,
        ids: fp.ids,
        media: fp.media,
        edges: lists.into_iter().flatten().collect(),
    })
}

/// Face matches between the two media of each image edge: the best pair
/// of their faces within the face threshold. They mark an edge
/// `image+face` and may carry a lone edge (see [`corroborate`]); the few
/// faces of linked media are compared directly.
pub(crate) fn match_faces(
    fv: &View,
    edges: &mut EdgeSet,
    s: &LinkSettings,
    progress: Progress<'_>,
) -> Result<()> {
    let mut faces_of: Vec<Vec<u32>> = vec![Vec::new(); edges.adj.len()];
    for (f, &m) in edges.face_set.media.iter().enumerate() {
        if let Some(list) = faces_of.get_mut(m as usize) {
            list.push(f as u32);
        }
    }
    let pairs: Vec<(u32, u32)> = (0..edges.adj.len() as u32)
        .flat_map(|a| {
            edges.adj[a as usize]
                .iter()
                .filter(move |(b, _)| a < *b)
                .map(move |&(b, _)| (a, b))
        })
        .filter(|&(a, b)| !faces_of[a as usize].is_empty() && !faces_of[b as usize].is_empty())
        .collect();
    let refs = &edges.face_set.refs;
    let matched = par_progress("face-matches", &pairs, progress, |&(a, b)| {
        let mut best: Option<(f32, u32, u32)> = None;
        for &fa in &faces_of[a as usize] {
            for &fb in &faces_of[b as usize] {
                let d = fv.distance(refs[fa as usize], refs[fb as usize])?;
                if d <= s.face_threshold && best.is_none_or(|x| d < x.0) {
                    best = Some((d, fa, fb));
                }
            }
        }
        Ok(best.map(|(d, fa, fb)| (a, b, d, fa, fb)))
    })?;
    for (a, b, d, fa, fb) in matched.into_iter().flatten() {
        edges.add_face(a, b, d, fa, fb);
    }
    Ok(())
}

/// The image distance between two media of a run, read from `images`.
pub fn image_distance_in<'v>(
    images: &'v View,
    media: &'v MediaTable,
) -> impl Fn(u32, u32) -> f32 + Sync + 'v {
    move |a, b| {
        let (x, y) = (
            media.image_ref.get(a as usize).copied().flatten(),
            media.image_ref.get(b as usize).copied().flatten(),
        );
        match (x, y) {
            // 2 is the largest cosine distance: "nothing alike".
            (Some(x), Some(y)) => images.distance(x, y).unwrap_or(2.0),
            _ => 2.0,
        }
    }
}

/// The distance between two faces of a run (indices into `faces`), read
/// from `view` (2, "nothing alike", without one).
pub fn face_distance_in<'v>(
    view: Option<&'v View>,
    faces: &'v FaceSet,
) -> impl Fn(u32, u32) -> f32 + Sync + 'v {
    move |a, b| {
        let (Some(v), Some(x), Some(y)) =
            (view, faces.refs.get(a as usize), faces.refs.get(b as usize))
        else {
            return 2.0;
        };
        v.distance(*x, *y).unwrap_or(2.0)
    }
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
    let g = {
        let (image, face) = (
            image_distance_in(images.0, &media),
            face_distance_in(faces.map(|f| f.0), &edges.face_set),
        );
        let d = Distances {
            image: &image,
            face: &face,
        };
        group(&media, &edges, s, images.1, d, constraints)
    };
    progress("group", 1, 1);
    stages.push(("group", t.elapsed().as_secs_f64()));
    Ok(Linked {
        image_edges: edges.image_edges(),
        face_edges: edges.faces.len(),
        media,
        series: g.series,
        persons: g.persons,
        stats: g.stats,
        stages,
    })
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
            core_threshold: 0.0,
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

    fn far(_: u32, _: u32) -> f32 {
        1.0
    }

    /// Image distances 1 (nothing alike) and face distances 0.4: every
    /// face these tests put on two media is one person's.
    const D: Distances<'static> = Distances {
        image: &far,
        face: &same_person,
    };

    fn same_person(_: u32, _: u32) -> f32 {
        0.4
    }

    /// Faces on media: (media, person); every two faces of the same
    /// person (on different media) are a face edge at 0.4.
    fn with_faces(e: &mut EdgeSet, list: &[(u32, u32)]) {
        let fs = &mut e.face_set;
        for (k, &(m, _)) in list.iter().enumerate() {
            fs.refs.push(PointRef {
                seg: 0,
                off: k as u32,
            });
            fs.ids.push(format!("m{m}#{k}"));
            fs.media.push(m);
        }
        for x in 0..list.len() {
            for y in x + 1..list.len() {
                if list[x].1 == list[y].1 && list[x].0 != list[y].0 {
                    fs.edges.push((x as u32, y as u32, 0.4));
                }
            }
        }
    }

    /// Two triangles {0,1,2} and {3,4,5} joined by one lone edge 2–3: the
    /// chain is refused by the rule, accepted by single linkage; a face
    /// match of the same person lets a lone edge through.
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
        let g = group(&media, &e, &s, "images", D, &Default::default());
        assert_eq!(g.series.len(), 2);
        assert_eq!(g.stats.refused_edges, 1);
        assert_eq!(g.series[0].series_id, "ser-m0");
        assert_eq!(g.series[1].series_id, "ser-m3");
        assert_eq!(g.series[0].evidence.len(), 2);
        let single = LinkSettings {
            single_linkage: true,
            ..s.clone()
        };
        let g = group(&media, &e, &single, "images", D, &Default::default());
        assert_eq!(g.series.len(), 1);
        assert_eq!(g.series[0].media_ids.len(), 6);
        assert_eq!(g.series[0].evidence.len(), 5);
        // The same person on media 2 and 3 corroborates the lone edge.
        let mut f = e;
        with_faces(&mut f, &[(2, 9), (3, 9)]);
        f.add_face(3, 2, 0.4, 1, 0);
        let g = group(&media, &f, &s, "images", D, &Default::default());
        assert_eq!(g.series.len(), 1);
        assert_eq!(g.stats.corroborated_edges, 1);
        assert!(
            g.series[0]
                .evidence
                .iter()
                .any(|x| x.kind == EvidenceKind::ImageAndFace)
        );
    }

    /// Two scene groups with no image edge between them, the same victim
    /// on most media of both: joined through the face, with face evidence.
    #[test]
    fn a_victims_face_joins_unrelated_scenes() {
        let media = table(6);
        let mut e = EdgeSet::with_len(6);
        for (a, b) in [(0, 1), (1, 2), (0, 2), (3, 4), (4, 5), (3, 5)] {
            e.add_image(a, b, 0.2);
        }
        with_faces(&mut e, &[(0, 1), (1, 1), (3, 1), (4, 1), (5, 2)]);
        e.normalise();
        let g = group(&media, &e, &settings(), "images", D, &Default::default());
        assert_eq!(g.series.len(), 1, "{:?}", g.series);
        assert_eq!(g.stats.face_joins, 1);
        assert_eq!(g.stats.face_joined_series, 1);
        let face: Vec<_> = g.series[0]
            .evidence
            .iter()
            .filter(|x| x.kind == EvidenceKind::Face)
            .collect();
        assert_eq!(face.len(), 1);
        assert_eq!(face[0].face_distance, Some(0.4));
        assert_eq!(face[0].distance, 1.0);
        assert_eq!(g.series[0].victim_faces.len(), 4);
    }

    #[test]
    fn near_duplicates_link_alone_and_pairs_need_support() {
        let media = table(4);
        let mut e = EdgeSet::with_len(4);
        e.add_image(0, 1, 0.01);
        e.add_image(2, 3, 0.2);
        e.normalise();
        let g = group(&media, &e, &settings(), "images", D, &Default::default());
        assert_eq!(g.series.len(), 1);
        assert_eq!(g.series[0].media_ids.len(), 2);
        assert_eq!(g.series[0].evidence[0].kind, EvidenceKind::NearDuplicate);
        assert_eq!(g.stats.refused_edges, 1);
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
