//! Incremental linking (`LinkUpload`): one new upload linked against the
//! stored series without recomputing the collection. Only the upload's
//! points and their neighbours are searched.
//!
//! Image evidence gives the same grouping as a full re-link, because the
//! image rule depends only on the edge set: the new edges are those at the
//! upload's media, and the only old edges whose verdict can change are
//! those between two neighbours of the upload (they may gain a common
//! neighbour in it). Face evidence uses what the last full run stored: a
//! new media whose faces match a stored series' victim joins that series.

use std::collections::{BTreeSet, HashMap};

use rayon::prelude::*;

use crate::collection::{PointRef, View};
use crate::error::{Error, Result};
use crate::index::filter::Filter;
use crate::investigate::decisions::Constraints;
use crate::investigate::link::{
    EdgeSet, FACE_K, Judged, MediaTable, Points, collect_points, evidence, join, judge,
    match_faces, media_key, neighbours,
};
use crate::investigate::series::{EvidenceKind, LinkSettings, SeriesRecord, SeriesState};
use crate::investigate::union::UnionFind;

/// Of one new media against one stored series: the victim faces matched,
/// the best distance and the stored face that gave it.
type VictimTally = (BTreeSet<String>, f32, PointRef);
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
        let fs = &mut self.edges.face_set;
        let mut uploads: Vec<String> = self
            .media
            .meta
            .iter()
            .map(|m| m.upload_id.clone())
            .filter(|u| !u.is_empty())
            .collect();
        uploads.sort();
        uploads.dedup();
        for chunk in uploads.chunks(crate::index::filter::MAX_FILTER_VALUES) {
            let f = Filter {
                upload_ids_any: chunk.to_vec(),
                ..Default::default()
            };
            for (r, id, meta) in fv.points(Some(&f))? {
                if let Some(&m) = self.media.index.get(&media_key(&id, &meta, true)) {
                    fs.refs.push(r);
                    fs.ids.push(id);
                    fs.media.push(m);
                    self.media.has_face[m as usize] = true;
                }
            }
        }
        match_faces(fv, &mut self.edges, s, &|_, _, _| {})
    }

    /// Stage 3b: new media whose faces match the victim of one stored
    /// series (at least two of its victim faces, or its only one): they
    /// join it through the face. The series' matched media is brought into
    /// play. Returns (new media, media of the series, face distance).
    fn victim_joins(
        &mut self,
        fv: &View,
        s: &LinkSettings,
        state: &SeriesState,
    ) -> Result<Vec<(u32, u32, f32)>> {
        let victim_of = victim_faces(state);
        let fs = &self.edges.face_set;
        let new_faces: Vec<usize> = (0..fs.len())
            .filter(|&f| fs.media[f] < self.n_new)
            .collect();
        let hits: Vec<Vec<(PointRef, f32)>> = new_faces
            .par_iter()
            .map(|&f| {
                let v = fv.vector(fs.refs[f])?;
                let mut h = fv.search(&v, FACE_K, 4 * FACE_K, Some(fs.refs[f]), None)?;
                h.retain(|x| x.1 <= s.face_threshold);
                Ok(h)
            })
            .collect::<Result<_>>()?;
        // Per new media: series → (victim faces matched, best match).
        let mut tally: HashMap<u32, HashMap<usize, VictimTally>> = HashMap::new();
        for (&f, hits) in new_faces.iter().zip(hits) {
            for (h, d) in hits {
                let (id, _) = fv.describe(h)?;
                if let Some(&si) = victim_of.get(id.as_str()) {
                    let e = tally.entry(fs.media[f]).or_default().entry(si).or_insert((
                        BTreeSet::new(),
                        d,
                        h,
                    ));
                    e.0.insert(id);
                    if d < e.1 {
                        (e.1, e.2) = (d, h);
                    }
                }
            }
        }
        let mut out = Vec::new();
        for (m, by_series) in tally {
            let ok: Vec<(usize, f32, PointRef)> = by_series
                .into_iter()
                .filter(|(si, t)| t.0.len() >= state.series[*si].victim_faces.len().min(2))
                .map(|(si, t)| (si, t.1, t.2))
                .collect();
            // A face that matches the victims of two series joins neither.
            if let [(_, d, h)] = ok[..] {
                let (id, meta) = fv.describe(h)?;
                let old = self.media.intern(&media_key(&id, &meta, true), &meta);
                out.push((m, old, d));
            }
        }
        self.edges.grow(self.media.len());
        out.sort_by(|x, y| x.2.total_cmp(&y.2).then((x.0, x.1).cmp(&(y.0, y.1))));
        Ok(out)
    }

    /// Stage 4: judges the edges whose verdict can have changed: those at
    /// the upload's media, and those between two old media that are both
    /// neighbours of the upload. Returns the accepted ones and the number
    /// of edges at the upload's media.
    fn judge_changed(
        &self,
        s: &LinkSettings,
        victims: &HashMap<&str, usize>,
    ) -> (Vec<Judged>, usize) {
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
                    let mut j = judge(&self.edges, s, a, b, d);
                    self.corroborate(&mut j, victims);
                    judged.push(j);
                }
            }
        }
        let new_edges = judged.iter().filter(|j| j.a < n_new || j.b < n_new).count();
        judged.retain(|j| j.accepted);
        (judged, new_edges)
    }

    /// A lone edge with a face match links when the person is a stored
    /// series' victim, or both media are new (the identities of the last
    /// full run say nothing of them).
    fn corroborate(&self, j: &mut Judged, victims: &HashMap<&str, usize>) {
        if j.accepted {
            return;
        }
        if let Some(m) = self.edges.faces.get(&(j.a, j.b)) {
            let fs = &self.edges.face_set;
            let known = |f: u32| victims.contains_key(fs.ids[f as usize].as_str());
            let both_new = j.a < self.n_new && j.b < self.n_new;
            j.accepted = both_new || known(m.faces.0) || known(m.faces.1);
        }
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

/// Victim face id → index of its series in `state`.
fn victim_faces(state: &SeriesState) -> HashMap<&str, usize> {
    state
        .series
        .iter()
        .enumerate()
        .flat_map(|(si, r)| r.victim_faces.iter().map(move |f| (f.as_str(), si)))
        .collect()
}

impl InPlay<'_> {
    /// The image distance between two media in play (the image point of
    /// an old media brought in by a face is looked up in its upload).
    fn image_distance(&self, view: &View, a: u32, b: u32) -> Result<f32> {
        let point = |m: u32| -> Result<Option<PointRef>> {
            if let Some((r, _)) = self.by_ref.iter().find(|e| *e.1 == m) {
                return Ok(Some(*r));
            }
            let meta = &self.media.meta[m as usize];
            let f = Filter {
                upload_ids_any: vec![meta.upload_id.clone()],
                ..Default::default()
            };
            let id = &self.media.ids[m as usize];
            Ok(view
                .points(Some(&f).filter(|_| !meta.upload_id.is_empty()))?
                .into_iter()
                .find(|(_, pid, pm)| media_key(pid, pm, false) == *id)
                .map(|x| x.0))
        };
        Ok(match (point(a)?, point(b)?) {
            (Some(x), Some(y)) => view.distance(x, y)?,
            _ => 2.0,
        })
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
    forest: &[Judged],
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
    let mut face_joins = Vec::new();
    if let Some(fv) = faces {
        p.add_face_matches(fv, &s)?;
        face_joins = p.victim_joins(fv, &s, state)?;
    }
    let index = state.media_index();
    if constraints.in_play(&p.media.ids, state, &index) {
        return Ok(None);
    }
    let victims = victim_faces(state);
    let (mut judged, new_edges) = p.judge_changed(&s, &victims);
    let mut uf = p.seeded_union_find(&index);
    let mut forest: Vec<Judged> = join(&mut judged, &mut uf).into_iter().cloned().collect();
    for (a, b, fd) in face_joins {
        if uf.union(a, b) {
            forest.push(Judged {
                a: a.min(b),
                b: a.max(b),
                distance: p.image_distance(images.0, a, b)?,
                face_distance: Some(fd),
                shared: 0,
                kind: EvidenceKind::Face,
                accepted: true,
            });
        }
    }
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
