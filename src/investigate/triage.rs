//! Triage of a seized set: each submitted item is KNOWN (it links to stored
//! material, perhaps in a series with an identified victim) or NEW, with a
//! priority that puts a child possibly still at risk first; the NEW items of
//! one submission are then grouped among themselves into candidate series.
//!
//! An item is KNOWN when linking would link it to stored material: a stored
//! image within the image threshold that is a near-duplicate, or whose faces
//! match the item's, or that shares a common neighbour with the item (another
//! of the item's close matches lies within the threshold of it: the
//! triangle that the anti-chaining rule asks of an ordinary edge; see `link`).
//! A lone look-alike is not enough, as it is not for linking. Faces never
//! make an item KNOWN on their own; a face match is reported beside the
//! verdict (`face_series_id`: a new image of a known victim).

use std::collections::HashMap;

use rayon::prelude::*;

use crate::collection::{PointRef, View};
use crate::error::{Error, Result};
use crate::index::distance::Metric;
use crate::investigate::hashes::ItemHashes;
use crate::investigate::link::{self, EdgeSet, MediaTable};
use crate::investigate::series::{LinkSettings, SeriesState};
use crate::pb;
use crate::validate;

/// Image neighbours looked at per item: the candidates for a link and the
/// common neighbours that support it.
const TRIAGE_K: usize = 16;
/// Face neighbours looked at per face of an item.
const FACE_K: usize = 4;
/// NEW items grouped among themselves per submission, at most (the grouping
/// compares every pair).
pub const MAX_GROUPED: usize = 20_000;

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
        Triager {
            images,
            faces,
            state,
            media_series,
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

    fn series_of(&self, media: &str) -> Option<&crate::investigate::series::SeriesRecord> {
        let st = self.state.as_ref()?;
        self.media_series.get(media).map(|&i| &st.series[i])
    }

    /// The verdict on one item.
    pub fn judge(&self, item: &Item) -> Result<pb::TriageResult> {
        let s = &self.settings;
        let hits = self
            .images
            .search(&item.vector, TRIAGE_K, s.ef.max(TRIAGE_K), None, None)?;
        let mut r = pb::TriageResult {
            id: item.id.clone(),
            ..Default::default()
        };
        // Faces first: a face match corroborates an image match to the same
        // media, as in linking.
        let mut face_media: Vec<String> = Vec::new();
        if let Some(fv) = &self.faces {
            let mut best: Option<(f32, String)> = None;
            for f in &item.faces {
                let mut matched = false;
                for (p, d) in fv.search(f, FACE_K, s.ef, None, None)? {
                    if d > s.face_threshold {
                        break;
                    }
                    let (id, meta) = fv.describe(p)?;
                    let media = link::media_key(&id, &meta, true);
                    if best.as_ref().is_none_or(|b| d < b.0) {
                        best = Some((d, media.clone()));
                    }
                    face_media.push(media);
                    matched = true;
                }
                r.matched_faces += matched as u32;
            }
            if let Some((_, media)) = best
                && let Some(rec) = self.series_of(&media)
            {
                r.face_series_id = rec.series_id.clone();
            }
        }
        let close: Vec<(PointRef, f32)> = hits
            .iter()
            .copied()
            .filter(|(_, d)| *d <= s.image_threshold)
            .collect();
        let mut close_media = Vec::with_capacity(close.len());
        for &(p, _) in &close {
            let (id, meta) = self.images.describe(p)?;
            close_media.push((link::media_key(&id, &meta, false), meta));
        }
        // The first close match that the linking rule would accept.
        let mut linked: Option<usize> = None;
        let mut vectors: Vec<Option<Vec<f32>>> = vec![None; close.len()];
        for i in 0..close.len() {
            let ordinary = !(s.single_linkage
                || close[i].1 <= s.near_duplicate_threshold
                || face_media.contains(&close_media[i].0));
            if ordinary && self.shared_among(&close, &mut vectors, i)? < s.min_shared_neighbours {
                continue;
            }
            linked = Some(i);
            break;
        }
        if let Some(i) = linked {
            let (media, meta) = &close_media[i];
            r.verdict = pb::Verdict::Known as i32;
            r.nearest_media_id = media.clone();
            r.nearest_distance = close[i].1;
            r.series_label = meta.series_label.clone();
            r.victim_identified = meta.victim_identified;
            // The series: of the matched media, else of another close match.
            let order = std::iter::once(i).chain((0..close_media.len()).filter(|&j| j != i));
            for j in order {
                if let Some(rec) = self.series_of(&close_media[j].0) {
                    r.series_id = rec.series_id.clone();
                    r.victim_identified |= rec.victim_identified;
                    break;
                }
            }
        } else {
            r.verdict = pb::Verdict::New as i32;
            if let Some(&(p, d)) = hits.first() {
                let (id, meta) = self.images.describe(p)?;
                r.nearest_media_id = link::media_key(&id, &meta, false);
                r.nearest_distance = d;
            }
        }
        r.priority = priority(&r, item) as i32;
        Ok(r)
    }

    /// How many other close matches of an item are themselves within the
    /// image threshold of close match `i`: the triangles item–i–j that the
    /// linking rule asks of an ordinary edge. Vectors are read once.
    fn shared_among(
        &self,
        close: &[(PointRef, f32)],
        vectors: &mut [Option<Vec<f32>>],
        i: usize,
    ) -> Result<usize> {
        for (j, slot) in vectors.iter_mut().enumerate() {
            if slot.is_none() {
                *slot = Some(self.images.vector(close[j].0)?);
            }
        }
        let metric = self.images.metric();
        let vi = vectors[i].as_deref().unwrap_or_default();
        Ok((0..close.len())
            .filter(|&j| j != i)
            .filter(|&j| {
                let vj = vectors[j].as_deref().unwrap_or_default();
                metric.from_rank(metric.rank(vi, vj)) <= self.settings.image_threshold
            })
            .count())
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
    if r.verdict == pb::Verdict::New as i32 {
        if item.faces.is_empty() {
            pb::Priority::NewMaterial
        } else {
            pb::Priority::NewWithFaces
        }
    } else if r.victim_identified {
        pb::Priority::KnownIdentified
    } else {
        pb::Priority::KnownUnidentified
    }
}

/// Pairwise linking of a small set of items (all pairs compared).
pub fn group_items(
    items: &[Item],
    metric: Metric,
    face_metric: Metric,
    s: &LinkSettings,
) -> Vec<Vec<String>> {
    let mut media = MediaTable::default();
    for it in items {
        let i = media.intern(&it.id, &it.metadata);
        media.has_face[i as usize] = !it.faces.is_empty();
    }
    let n = media.len();
    // Items with a repeated id count once (the first).
    let first: Vec<usize> = {
        let mut seen = HashMap::new();
        for (i, it) in items.iter().enumerate() {
            seen.entry(it.id.as_str()).or_insert(i);
        }
        let mut v: Vec<usize> = seen.into_values().collect();
        v.sort_unstable();
        v
    };
    let first = &first;
    let pairs: Vec<(u32, u32, f32, Option<f32>)> = (0..first.len())
        .into_par_iter()
        .flat_map_iter(|x| {
            let a = &items[first[x]];
            (x + 1..first.len()).filter_map(move |y| {
                let b = &items[first[y]];
                let d = metric.from_rank(metric.rank(&a.vector, &b.vector));
                if d > s.image_threshold {
                    return None;
                }
                let face = a
                    .faces
                    .iter()
                    .flat_map(|fa| {
                        b.faces
                            .iter()
                            .map(move |fb| face_metric.from_rank(face_metric.rank(fa, fb)))
                    })
                    .filter(|fd| *fd <= s.face_threshold)
                    .min_by(|p, q| p.total_cmp(q));
                Some((x as u32, y as u32, d, face))
            })
        })
        .collect();
    let mut edges = EdgeSet::with_len(n);
    for &(a, b, d, face) in &pairs {
        edges.add_image(a, b, d);
        if let Some(f) = face {
            edges.add_face(a, b, f);
        }
    }
    edges.normalise();
    let (series, _) = link::group(&media, &edges, s, "");
    series
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
