//! Triage of a seized set: each submitted item gets a verdict and a place
//! in the queue; the NEW items of one submission are then grouped among
//! themselves into candidate series.
//!
//! **Verdicts.** Hashes come first (`investigate::known`): an exact digest
//! in a hash set or a perceptual hash near known material makes an item
//! KNOWN before its embeddings are looked at. Past that, an item is KNOWN
//! when it is close to stored material: one
//! stored image of a series within the image threshold is enough, unless
//! faces say it shows other people (both show faces and none of the
//! item's matches a face of the stored media or of its series): a
//! look-alike room with another child in it is not known material. A
//! near-duplicate (the same picture re-encoded or cropped) of anything
//! stored is known. A close match to stored media in no series
//! (unconfirmed, perhaps a look-alike itself) needs support: a person the
//! item shares with it, or a second close match near it, as linking asks
//! of an image edge. (One such match alone is not enough even well within
//! the threshold: measured on the bench grid, look-alikes of a series that
//! stayed out of it come that close as often as split-off members do.)
//! The reason says which, or why no match counted.
//! Otherwise, when one of
//! its faces matches the victim of a stored series (that series' victim
//! faces, at least two of them, or its only one; not an adult or bystander
//! who recurs beside several victims), it is KNOWN_VICTIM: new material of
//! a known victim. Otherwise it is NEW. Every verdict says why (`reason`).
//!
//! **Priorities, most urgent first** (`rank`):
//! 1. NEW_OF_KNOWN_VICTIM: a child already in an open series, in material
//!    never seen: abused again or still, and the series' file gives leads
//!    at once;
//! 2. NEW_WITH_FACES: new material with a face no series knows: a child
//!    possibly at risk, not yet identified by anyone;
//! 3. NEW_MATERIAL: new material without a face to go on;
//! 4. KNOWN_UNIDENTIFIED: known material of a victim not yet identified (a
//!    new place or upload for an open series);
//! 5. KNOWN_IDENTIFIED: known material of an identified victim.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::OnceLock;

use rayon::prelude::*;

use crate::collection::{PointRef, View};
use crate::error::{Error, Result};
use crate::index::distance::Metric;
use crate::investigate::hashes::ItemHashes;
use crate::investigate::identity::FaceSet;
use crate::investigate::link::{self, EdgeSet, FACE_K, MediaTable};
use crate::investigate::series::{LinkSettings, SeriesRecord, SeriesState};
use crate::pb;
use crate::validate;

/// Image neighbours looked at per item.
const TRIAGE_K: usize = 16;
/// NEW items grouped among themselves per submission, at most (the grouping
/// compares every pair).
pub const MAX_GROUPED: usize = 20_000;
/// Faces of a submission compared all pairs with all (beyond: only those
/// of items whose images are close).
const MAX_FACE_PAIRS: usize = 4_000;

/// A stored face within the face threshold of one of an item's faces.
#[derive(Clone, Debug)]
pub struct FaceHit {
    /// The item's face (index into `Item::faces`).
    pub query: usize,
    pub face_id: String,
    /// The stored face's media.
    pub media: String,
    pub distance: f32,
}

/// Victim faces an item's face is compared with, at most, to tell the
/// victim from a look-alike.
const VICTIM_SAMPLE: usize = 8;

/// The stored faces triage looks at (see [`Triager::stored_faces`]).
#[derive(Default)]
struct StoredFaces {
    /// Media that show a face.
    faced: HashSet<String>,
    /// Series (index into the state) → its victim's faces.
    victim_refs: HashMap<usize, Vec<PointRef>>,
}

/// One submitted item, validated and prepared.
#[derive(Clone, Debug)]
pub struct Item {
    pub id: String,
    /// Empty when the item came with hashes only.
    pub vector: Vec<f32>,
    pub faces: Vec<Vec<f32>>,
    pub metadata: pb::Metadata,
    /// Digests and perceptual hash, matched before the embeddings
    /// (the `known` stage).
    pub hashes: ItemHashes,
}

/// What triage needs of the database, taken once per submission.
pub struct Triager {
    images: View,
    faces: Option<View>,
    state: Option<SeriesState>,
    media_series: HashMap<String, usize>,
    /// Victim face id → its series (index into the state's series).
    victim_of: HashMap<String, usize>,
    /// The stored faces triage looks at, read on first need.
    stored_faces: OnceLock<StoredFaces>,
    pub settings: LinkSettings,
}

impl Triager {
    pub fn new(
        images: View,
        faces: Option<View>,
        state: Option<SeriesState>,
        settings: LinkSettings,
    ) -> Triager {
        let media_series = state
            .as_ref()
            .map(SeriesState::media_index)
            .unwrap_or_default();
        let victim_of = state
            .as_ref()
            .map(|st| {
                st.series
                    .iter()
                    .enumerate()
                    .flat_map(|(si, r)| r.victim_faces.iter().map(move |f| (f.clone(), si)))
                    .collect()
            })
            .unwrap_or_default();
        Triager {
            images,
            faces,
            state,
            media_series,
            victim_of,
            stored_faces: OnceLock::new(),
            settings,
        }
    }

    /// Validates and prepares a request item; `field` names it in errors.
    pub fn prepare(&self, field: &str, it: &pb::TriageItem) -> Result<Item> {
        validate::point_id(&format!("{field}.id"), &it.id)?;
        let hashes = ItemHashes::from_pb(field, it)?;
        let metric = self.images.metric();
        // An item with hashes may come without an embedding.
        if !(it.vector.is_empty() && hashes.any()) {
            validate::vector(
                &format!("{field}.vector"),
                &it.vector,
                self.images.dim() as u32,
                metric.to_pb(),
            )?;
        }
        let mut vector = it.vector.clone();
        metric.prepare(&mut vector);
        let mut faces = Vec::with_capacity(it.faces.len());
        if !it.faces.is_empty() {
            let Some(fv) = &self.faces else {
                return Err(Error::invalid(format!(
                    "{field}.faces: no face_collection was named for this triage"
                )));
            };
            for (i, f) in it.faces.iter().enumerate() {
                validate::vector(
                    &format!("{field}.faces[{i}].values"),
                    &f.values,
                    fv.dim() as u32,
                    fv.metric().to_pb(),
                )?;
                let mut v = f.values.clone();
                fv.metric().prepare(&mut v);
                faces.push(v);
            }
        }
        let metadata = it.metadata.clone().unwrap_or_default();
        validate::metadata(&format!("{field}.metadata"), &metadata)?;
        Ok(Item {
            id: it.id.clone(),
            vector,
            faces,
            metadata,
            hashes,
        })
    }

    fn series_of(&self, media: &str) -> Option<&SeriesRecord> {
        let st = self.state.as_ref()?;
        self.media_series.get(media).map(|&i| &st.series[i])
    }

    /// The stored faces within the face threshold of the item's faces:
    /// (face point id, its media, distance), at most [`FACE_K`] per face;
    /// and how many of the item's faces matched something.
    fn face_hits(&self, item: &Item) -> Result<(Vec<FaceHit>, u32)> {
        let Some(fv) = &self.faces else {
            return Ok((Vec::new(), 0));
        };
        let s = &self.settings;
        let (mut out, mut matched) = (Vec::new(), 0);
        for (q, f) in item.faces.iter().enumerate() {
            let mut any = false;
            for (p, d) in fv.search(f, FACE_K, s.ef.max(4 * FACE_K), None, None)? {
                if d > s.face_threshold {
                    break;
                }
                let (id, meta) = fv.describe(p)?;
                let media = link::media_key(&id, &meta, true);
                out.push(FaceHit {
                    query: q,
                    face_id: id,
                    media,
                    distance: d,
                });
                any = true;
            }
            matched += any as u32;
        }
        Ok((out, matched))
    }

    /// The stored faces, read once per triage: the media that show one,
    /// and per series its victim's faces.
    fn stored_faces(&self) -> Result<&StoredFaces> {
        if let Some(f) = self.stored_faces.get() {
            return Ok(f);
        }
        let mut sf = StoredFaces::default();
        if let Some(fv) = &self.faces {
            for (r, id, meta) in fv.points(None)? {
                if let Some(&si) = self.victim_of.get(&id) {
                    sf.victim_refs.entry(si).or_default().push(r);
                }
                sf.faced.insert(link::media_key(&id, &meta, true));
            }
        }
        Ok(self.stored_faces.get_or_init(|| sf))
    }

    /// The stored series whose victim the item's faces match: (series,
    /// victim faces matched, best distance). A face that matches one of a
    /// series' victim faces must also match that victim as a whole: its
    /// mean distance to (a spread of up to [`VICTIM_SAMPLE`] of) the
    /// victim's faces within the face threshold, as identities are
    /// compared when linking. One look-alike face is not the victim. The
    /// series with most matched faces wins.
    fn victim_match(
        &self,
        item: &Item,
        hits: &[FaceHit],
    ) -> Result<Option<(&SeriesRecord, usize, f32)>> {
        let Some(st) = self.state.as_ref() else {
            return Ok(None);
        };
        let mut tally: HashMap<usize, (BTreeSet<&str>, f32, BTreeSet<usize>)> = HashMap::new();
        for h in hits {
            if let Some(&si) = self.victim_of.get(&h.face_id) {
                let e =
                    tally
                        .entry(si)
                        .or_insert((Default::default(), h.distance, Default::default()));
                e.1 = e.1.min(h.distance);
                e.0.insert(&h.face_id);
                e.2.insert(h.query);
            }
        }
        let mut best: Option<(usize, usize, f32)> = None;
        for (si, (ids, d, queries)) in tally {
            let whole = queries
                .iter()
                .map(|&q| self.victim_linkage(&item.faces[q], si))
                .collect::<Result<Vec<f32>>>()?;
            if !whole.iter().any(|&x| x <= self.settings.face_threshold) {
                continue;
            }
            let better = best.is_none_or(|(bs, bn, bd)| {
                (ids.len(), -d, std::cmp::Reverse(si)) > (bn, -bd, std::cmp::Reverse(bs))
            });
            if better {
                best = Some((si, ids.len(), d));
            }
        }
        Ok(best.map(|(si, n, d)| (&st.series[si], n, d)))
    }

    /// Mean distance of a face to a spread of series `si`'s victim faces.
    fn victim_linkage(&self, face: &[f32], si: usize) -> Result<f32> {
        let (Some(fv), Some(refs)) = (&self.faces, self.stored_faces()?.victim_refs.get(&si))
        else {
            return Ok(f32::INFINITY);
        };
        let k = refs.len().min(VICTIM_SAMPLE);
        let m = fv.metric();
        let mut sum = 0.0f64;
        for i in 0..k {
            let v = fv.vector(refs[i * refs.len() / k])?;
            sum += m.from_rank(m.rank(face, &v)) as f64;
        }
        Ok(if k == 0 {
            f32::INFINITY
        } else {
            (sum / k as f64) as f32
        })
    }

    /// Whether stored media `media` shows a face.
    fn has_face(&self, media: &str) -> Result<bool> {
        Ok(self.stored_faces()?.faced.contains(media))
    }

    /// Whether faces say a close stored media shows other people than the
    /// item: both show faces and none of the item's matches one of its
    /// faces (or, for media of a series, a face anywhere in that series:
    /// the FACE_K faces nearest an item's face need not include that very
    /// media when the person shows on many, and the series' victim may be
    /// another of its people than the one the item shows).
    fn faces_differ(
        &self,
        item: &Item,
        media: &str,
        series: Option<&SeriesRecord>,
        hits: &[FaceHit],
    ) -> Result<bool> {
        if item.faces.is_empty() || !self.has_face(media)? {
            return Ok(false);
        }
        let same_media = hits.iter().any(|h| h.media == media);
        let same_series = series.is_some_and(|r| {
            hits.iter().any(|h| {
                r.victim_faces.binary_search(&h.face_id).is_ok()
                    || self
                        .series_of(&h.media)
                        .is_some_and(|o| o.series_id == r.series_id)
            })
        });
        Ok(!(same_media || same_series))
    }

    /// The verdict on one item.
    pub fn judge(&self, item: &Item) -> Result<pb::TriageResult> {
        let s = &self.settings;
        let hits = self
            .images
            .search(&item.vector, TRIAGE_K, s.ef.max(TRIAGE_K), None, None)?;
        let (face_hits, matched) = self.face_hits(item)?;
        let mut r = pb::TriageResult {
            id: item.id.clone(),
            matched_faces: matched,
            ..Default::default()
        };
        let victim = self.victim_match(item, &face_hits)?;
        if let Some((rec, _, _)) = victim {
            r.face_series_id = rec.series_id.clone();
        }
        let close: Vec<(PointRef, f32)> = hits
            .iter()
            .copied()
            .filter(|(_, d)| *d <= s.image_threshold)
            .collect();
        let (known, lookalike) = self.known_match(item, &close, &face_hits)?;
        if let Some((p, d)) = known {
            self.known(&mut r, &close, p, d)?;
        } else {
            if let Some(&(p, d)) = hits.first() {
                let (id, meta) = self.images.describe(p)?;
                r.nearest_media_id = link::media_key(&id, &meta, false);
                r.nearest_distance = d;
            }
            let nearest = match (hits.first(), lookalike) {
                (Some(h), true) => format!(
                    "stored images within {:.3} (nearest {:.3}) show other people, or are look-alikes in no series without support",
                    s.image_threshold, h.1
                ),
                (Some(h), false) => {
                    format!(
                        "nearest stored image at {:.3} > {:.3}",
                        h.1, s.image_threshold
                    )
                }
                (None, _) => "no stored image".to_string(),
            };
            match victim {
                Some((rec, n, fd)) => {
                    r.verdict = pb::Verdict::KnownVictim as i32;
                    r.series_id = rec.series_id.clone();
                    r.victim_identified = rec.victim_identified;
                    r.reason = format!(
                        "{nearest}; a face matches the victim of {} ({n} of their faces, best at {fd:.3})",
                        rec.series_id
                    );
                }
                None => {
                    r.verdict = pb::Verdict::New as i32;
                    r.reason = if item.faces.is_empty() {
                        format!("{nearest}; no face")
                    } else {
                        format!("{nearest}; no face matches a known victim")
                    };
                }
            }
        }
        let p = priority(&r, item);
        r.priority = p as i32;
        r.rank = rank(p);
        Ok(r)
    }

    /// The close match that makes an item known, nearest first: a
    /// near-duplicate always; a media of a stored series unless faces say
    /// it shows other people; a media in no series (unconfirmed material)
    /// only with support: the item shows a person of that media, or
    /// another close match lies within the image threshold of it (the
    /// triangle linking asks of an image edge). Also whether close matches
    /// were set aside.
    fn known_match(
        &self,
        item: &Item,
        close: &[(PointRef, f32)],
        face_hits: &[FaceHit],
    ) -> Result<(Option<(PointRef, f32)>, bool)> {
        let s = &self.settings;
        let mut vectors: Vec<Option<Vec<f32>>> = vec![None; close.len()];
        for (i, &(p, d)) in close.iter().enumerate() {
            if d <= s.near_duplicate_threshold {
                return Ok((Some((p, d)), false));
            }
            let (id, meta) = self.images.describe(p)?;
            let media = link::media_key(&id, &meta, false);
            let ok = match self.series_of(&media) {
                Some(rec) => !self.faces_differ(item, &media, Some(rec), face_hits)?,
                None => {
                    face_hits.iter().any(|h| h.media == media)
                        || (!self.faces_differ(item, &media, None, face_hits)?
                            && self.supported(close, &mut vectors, i)?)
                }
            };
            if ok {
                return Ok((Some((p, d)), false));
            }
        }
        Ok((None, !close.is_empty()))
    }

    /// Whether another close match of the item lies within the image
    /// threshold of close match `i` (vectors read once).
    fn supported(
        &self,
        close: &[(PointRef, f32)],
        vectors: &mut [Option<Vec<f32>>],
        i: usize,
    ) -> Result<bool> {
        for (j, slot) in vectors.iter_mut().enumerate() {
            if slot.is_none() {
                *slot = Some(self.images.vector(close[j].0)?);
            }
        }
        let m = self.images.metric();
        let vi = vectors[i].as_deref().unwrap_or_default();
        Ok((0..close.len()).filter(|&j| j != i).any(|j| {
            let vj = vectors[j].as_deref().unwrap_or_default();
            m.from_rank(m.rank(vi, vj)) <= self.settings.image_threshold
        }))
    }

    /// Fills a KNOWN verdict: the match that made it, and the series of
    /// the first close match that is in one.
    fn known(
        &self,
        r: &mut pb::TriageResult,
        close: &[(PointRef, f32)],
        p: PointRef,
        d: f32,
    ) -> Result<()> {
        let (id, meta) = self.images.describe(p)?;
        r.verdict = pb::Verdict::Known as i32;
        r.nearest_media_id = link::media_key(&id, &meta, false);
        r.nearest_distance = d;
        r.series_label = meta.series_label.clone();
        r.victim_identified = meta.victim_identified;
        for &(q, _) in close {
            let (qid, qmeta) = self.images.describe(q)?;
            if let Some(rec) = self.series_of(&link::media_key(&qid, &qmeta, false)) {
                r.series_id = rec.series_id.clone();
                r.victim_identified |= rec.victim_identified;
                break;
            }
        }
        r.reason = format!(
            "image at {d:.3} (within {:.3}) of {}{}",
            self.settings.image_threshold,
            r.nearest_media_id,
            if r.series_id.is_empty() {
                ", in no series".to_string()
            } else {
                format!(", series {}", r.series_id)
            }
        );
        Ok(())
    }

    /// Groups NEW items of one submission into candidate series, with the
    /// linking rule over their pairwise distances. `None` if there are more
    /// than [`MAX_GROUPED`].
    pub fn group_new(&self, items: &[Item]) -> Option<Vec<Vec<String>>> {
        if items.len() > MAX_GROUPED {
            return None;
        }
        let metric = self.images.metric();
        let face_metric = self.faces.as_ref().map_or(metric, View::metric);
        Some(group_items(items, metric, face_metric, &self.settings))
    }
}

fn priority(r: &pb::TriageResult, item: &Item) -> pb::Priority {
    match pb::Verdict::try_from(r.verdict) {
        Ok(pb::Verdict::KnownVictim) => pb::Priority::NewOfKnownVictim,
        Ok(pb::Verdict::New) if item.faces.is_empty() => pb::Priority::NewMaterial,
        Ok(pb::Verdict::New) => pb::Priority::NewWithFaces,
        _ if r.victim_identified => pb::Priority::KnownIdentified,
        _ => pb::Priority::KnownUnidentified,
    }
}

/// The place of a priority in the queue (1 = most urgent).
pub fn rank(p: pb::Priority) -> u32 {
    match p {
        pb::Priority::NewOfKnownVictim => 1,
        pb::Priority::NewWithFaces => 2,
        pb::Priority::NewMaterial => 3,
        pb::Priority::KnownUnidentified => 4,
        pb::Priority::KnownIdentified => 5,
        pb::Priority::Unspecified => 6,
    }
}

/// Pairwise linking of a small set of items (all pairs compared; faces
/// all pairs too up to [`MAX_FACE_PAIRS`] faces, else only those of items
/// whose images are close).
pub fn group_items(
    items: &[Item],
    metric: Metric,
    face_metric: Metric,
    s: &LinkSettings,
) -> Vec<Vec<String>> {
    let mut media = MediaTable::default();
    // Items with a repeated id count once (the first).
    let mut first: Vec<usize> = Vec::new();
    for (i, it) in items.iter().enumerate() {
        if !media.index.contains_key(&it.id) {
            let m = media.intern(&it.id, &it.metadata);
            media.has_face[m as usize] = !it.faces.is_empty();
            first.push(i);
        }
    }
    let item = |m: u32| &items[first[m as usize]];
    let n = first.len() as u32;
    let pairs: Vec<(u32, u32, f32)> = (0..n)
        .into_par_iter()
        .flat_map_iter(|a| {
            (a + 1..n).filter_map(move |b| {
                let d = metric.from_rank(metric.rank(&item(a).vector, &item(b).vector));
                (d <= s.image_threshold).then_some((a, b, d))
            })
        })
        .collect();
    let mut edges = EdgeSet::with_len(n as usize);
    for &(a, b, d) in &pairs {
        edges.add_image(a, b, d);
    }
    // Faces: one entry per face, numbered in item order.
    let mut fs = FaceSet::default();
    let mut vecs: Vec<&[f32]> = Vec::new();
    for m in 0..n {
        for (k, f) in item(m).faces.iter().enumerate() {
            fs.refs.push(PointRef {
                seg: u32::MAX,
                off: fs.media.len() as u32,
            });
            fs.ids.push(format!("{}#{k}", item(m).id));
            fs.media.push(m);
            vecs.push(f);
        }
    }
    let fd = |x: usize, y: usize| face_metric.from_rank(face_metric.rank(vecs[x], vecs[y]));
    let nf = fs.len();
    let face_pairs: Vec<(u32, u32)> = if nf <= MAX_FACE_PAIRS {
        (0..nf as u32)
            .flat_map(|x| (x + 1..nf as u32).map(move |y| (x, y)))
            .collect()
    } else {
        let mut of: Vec<Vec<u32>> = vec![Vec::new(); n as usize];
        for (f, &m) in fs.media.iter().enumerate() {
            of[m as usize].push(f as u32);
        }
        pairs
            .iter()
            .flat_map(|&(a, b, _)| {
                let of = &of;
                of[a as usize]
                    .iter()
                    .flat_map(move |&x| of[b as usize].iter().map(move |&y| (x, y)))
            })
            .collect()
    };
    for (x, y) in face_pairs {
        let (ma, mb) = (fs.media[x as usize], fs.media[y as usize]);
        let d = fd(x as usize, y as usize);
        if ma != mb && d <= s.face_threshold {
            fs.edges.push((x, y, d));
        }
    }
    for &(x, y, d) in &fs.edges {
        let (ma, mb) = (fs.media[x as usize], fs.media[y as usize]);
        if edges.adj[ma as usize].iter().any(|e| e.0 == mb) {
            edges.add_face(ma, mb, d, x, y);
        }
    }
    edges.face_set = fs;
    edges.normalise();
    let image_distance =
        |a: u32, b: u32| metric.from_rank(metric.rank(&item(a).vector, &item(b).vector));
    let face_distance = |x: u32, y: u32| fd(x as usize, y as usize);
    let d = link::Distances {
        image: &image_distance,
        face: &face_distance,
    };
    let g = link::group(&media, &edges, s, "", d, &Default::default());
    g.series
        .into_iter()
        .map(|r| r.media_ids.into_iter().collect())
        .collect()
}

// The hook for triage by hash (`known`): the series that material matched
// by hash belongs to.
impl Triager {
    /// The stored series of `media`, else one labelled `label`: (series id,
    /// victim identified).
    pub fn series_for(&self, media: &str, label: &str) -> Option<(String, bool)> {
        let rec = self.series_of(media).or_else(|| {
            let st = self.state.as_ref()?;
            (!label.is_empty())
                .then(|| st.series.iter().find(|r| r.labels.contains(label)))
                .flatten()
        })?;
        Some((rec.series_id.clone(), rec.victim_identified))
    }
}
