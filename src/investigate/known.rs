//! Known material by hash, and the order of certainty a triage verdict is
//! decided in: an exact digest in a hash set (the same file), then a
//! perceptual hash within the match distance (the same picture, re-encoded
//! or resized), then image embeddings (the same scene: KNOWN), then a face
//! of a stored series' victim (the same child in material never seen:
//! KNOWN_VICTIM) — see [`judge`]. Each verdict says which evidence decided
//! it and carries the category and series of what it matched; its place
//! in the queue (`rank`) is the triage module's order of urgency.

use std::sync::Arc;

use crate::collection::hashsets::HashSet;
use crate::collection::{Collection, Query, SearchOptions};
use crate::error::{Error, Result};
use crate::index::filter::Filter;
use crate::investigate::hashes::ItemHashes;
use crate::investigate::triage::{self, Item, Triager};
use crate::pb;
use crate::validate;

/// PDQ's customary match distance.
pub const DEFAULT_MAX_DISTANCE: u32 = 31;
/// PDQ's quality rule: a hash below this is not matched (its picture is
/// too flat for the bits to mean much).
pub const MIN_QUALITY: u32 = 50;

/// What a triage consults before embeddings: exact-hash sets and a
/// perceptual-hash collection of known material.
pub struct Known {
    pub sets: Vec<Arc<HashSet>>,
    pub pdq: Option<Arc<Collection>>,
    pub max_distance: u32,
    /// What the caller may not see of `pdq` (restricted uploads of other
    /// agencies): such a hash never decides a verdict, as a hidden
    /// embedding never does.
    pub visibility: Option<Filter>,
}

impl Known {
    /// Whether there is any hash evidence to consult.
    pub fn consulted(&self) -> bool {
        !self.sets.is_empty() || self.pdq.is_some()
    }

    /// The verdict by hash, if a hash decides it.
    pub fn decide(&self, item: &Item) -> Result<Option<pb::TriageResult>> {
        if let Some(r) = self.exact(item)? {
            return Ok(Some(r));
        }
        self.perceptual(item)
    }

    /// The strongest digest first; the first set that holds it.
    fn exact(&self, item: &Item) -> Result<Option<pb::TriageResult>> {
        let h = &item.hashes;
        for d in [&h.sha256, &h.sha1, &h.md5] {
            if d.is_empty() {
                continue;
            }
            for set in &self.sets {
                let Some((algorithm, e)) = set.lookup(d)?.into_iter().next() else {
                    continue;
                };
                let name = set.name();
                let case = if e.case_id.is_empty() {
                    String::new()
                } else {
                    format!(", case {}", e.case_id)
                };
                return Ok(Some(pb::TriageResult {
                    id: item.id.clone(),
                    verdict: pb::Verdict::Known as i32,
                    evidence: pb::triage_result::Evidence::ExactHash as i32,
                    category: e.category,
                    series_label: e.series,
                    victim_identified: e.victim_identified,
                    matched_in: name.clone(),
                    matched_key: algorithm.to_string(),
                    reason: format!("{algorithm} {} in hash set {name}{case}", hex::encode(d)),
                    ..Default::default()
                }));
            }
        }
        Ok(None)
    }

    /// The nearest known perceptual hash within the match distance, for an
    /// item whose own hash is of good enough quality.
    fn perceptual(&self, item: &Item) -> Result<Option<pb::TriageResult>> {
        let h = &item.hashes;
        let Some(c) = &self.pdq else { return Ok(None) };
        if h.pdq.is_empty() || h.pdq_quality < MIN_QUALITY {
            return Ok(None);
        }
        let opts = SearchOptions {
            max_distance: Some(self.max_distance as f32),
            filter: self.visibility.clone(),
            ..Default::default()
        };
        let hits = c.search(&[Query::Bits(h.pdq.clone())], 1, 1, &opts)?;
        let Some(hit) = hits.into_iter().next().and_then(|v| v.into_iter().next()) else {
            return Ok(None);
        };
        let m = &hit.metadata;
        let media = if m.media_id.is_empty() {
            hit.id.clone()
        } else {
            m.media_id.clone()
        };
        Ok(Some(pb::TriageResult {
            id: item.id.clone(),
            verdict: pb::Verdict::Known as i32,
            evidence: pb::triage_result::Evidence::PerceptualHash as i32,
            category: category_of(&m.tags),
            series_label: m.series_label.clone(),
            victim_identified: m.victim_identified,
            nearest_media_id: media.clone(),
            nearest_distance: hit.distance,
            matched_in: c.name().to_string(),
            matched_key: hit.id.clone(),
            reason: format!(
                "PDQ within {} bits (of {}) of {media} in {}",
                hit.distance,
                self.max_distance,
                c.name()
            ),
            ..Default::default()
        }))
    }

    /// The PDQ hashes of triaged items as points of the hash collection
    /// (id the item's, media id the item's unless set), for the caller to
    /// store (with its owner checks) so later seizures match them; `None`
    /// without a hash collection.
    pub fn hash_points(&self, items: &[Item]) -> Option<(Arc<Collection>, Vec<pb::Point>)> {
        let c = self.pdq.clone()?;
        let points = items
            .iter()
            .filter(|it| !it.hashes.pdq.is_empty())
            .map(|it| {
                let mut meta = it.metadata.clone();
                if meta.media_id.is_empty() {
                    meta.media_id = it.id.clone();
                }
                pb::Point {
                    id: it.id.clone(),
                    bits: it.hashes.pdq.clone(),
                    quality: it.hashes.pdq_quality,
                    metadata: Some(meta),
                    ..Default::default()
                }
            })
            .collect();
        Some((c, points))
    }
}

/// A category carried as a `category:<c>` tag of a point.
pub fn category_of(tags: &[String]) -> String {
    tags.iter()
        .find_map(|t| t.strip_prefix("category:"))
        .unwrap_or_default()
        .to_string()
}

/// An item of a triage without an image collection: hashes only.
pub fn prepare_hashes_only(field: &str, it: &pb::TriageItem) -> Result<Item> {
    validate::point_id(&format!("{field}.id"), &it.id)?;
    if !it.vector.is_empty() || !it.faces.is_empty() {
        return Err(Error::invalid(format!(
            "{field} carries an embedding, but the triage named no image_collection to search it in"
        )));
    }
    let hashes = ItemHashes::from_pb(field, it)?;
    if !hashes.any() {
        return Err(Error::invalid(format!(
            "{field} has neither hashes nor an embedding: nothing to triage it by"
        )));
    }
    let metadata = it.metadata.clone().unwrap_or_default();
    validate::metadata(&format!("{field}.metadata"), &metadata)?;
    Ok(Item {
        id: it.id.clone(),
        vector: Vec::new(),
        faces: Vec::new(),
        metadata,
        hashes,
    })
}

/// The verdict on one item, in order of certainty: exact hash, perceptual
/// hash, then (with an image collection) embeddings and faces; NEW when
/// nothing decides.
pub fn judge(known: &Known, triager: Option<&Triager>, item: &Item) -> Result<pb::TriageResult> {
    if let Some(mut r) = known.decide(item)? {
        if let Some(t) = triager {
            // The stored series the matched material is in, by media or label.
            if let Some((series, identified)) = t.series_for(&r.nearest_media_id, &r.series_label) {
                r.series_id = series;
                r.victim_identified |= identified;
            }
        }
        let p = if r.victim_identified {
            pb::Priority::KnownIdentified
        } else {
            pb::Priority::KnownUnidentified
        };
        r.priority = p as i32;
        r.rank = triage::rank(p);
        return Ok(r);
    }
    match triager {
        Some(t) if !item.vector.is_empty() => {
            let mut r = t.judge(item)?;
            use pb::triage_result::Evidence;
            r.evidence = match pb::Verdict::try_from(r.verdict) {
                Ok(pb::Verdict::Known) => Evidence::Embedding,
                // New material of a known victim: decided by a face.
                Ok(pb::Verdict::KnownVictim) => Evidence::Face,
                _ => Evidence::Unspecified,
            } as i32;
            if r.reason.is_empty() {
                r.reason = embedding_reason(&r, t);
            } else if item.hashes.any() && known.consulted() {
                r.reason = format!("no hash matched; {}", r.reason);
            }
            Ok(r)
        }
        _ => Ok(new_by_hash(item)),
    }
}

/// Why an embedding verdict, where the embedding stage gave no reason.
fn embedding_reason(r: &pb::TriageResult, t: &Triager) -> String {
    let threshold = t.settings.image_threshold;
    let nearest = if r.nearest_media_id.is_empty() {
        "no stored image".to_string()
    } else {
        format!(
            "nearest stored image {} at {:.3} (threshold {threshold:.3})",
            r.nearest_media_id, r.nearest_distance
        )
    };
    if r.verdict == pb::Verdict::Known as i32 {
        format!("no hash matched; {nearest}")
    } else {
        format!("no hash matched; {nearest}: no link to stored material")
    }
}

/// NEW: no hash matched and there is no embedding to go on.
fn new_by_hash(item: &Item) -> pb::TriageResult {
    let p = if item.faces.is_empty() {
        pb::Priority::NewMaterial
    } else {
        pb::Priority::NewWithFaces
    };
    pb::TriageResult {
        id: item.id.clone(),
        verdict: pb::Verdict::New as i32,
        priority: p as i32,
        rank: triage::rank(p),
        reason: "no hash set or perceptual hash matched; no image embedding to search".into(),
        ..Default::default()
    }
}
