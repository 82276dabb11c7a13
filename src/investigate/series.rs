//! Series records and the stored series state of an image collection.
//!
//! A [`SeriesRecord`] is what investigators work on: member media, where and
//! when they surfaced, and the evidence edges that linked them. Records are
//! built by adding media ([`SeriesRecord::add_media`]) and by merging
//! ([`SeriesRecord::absorb`]); both are order-independent, so a series built
//! incrementally upload by upload equals the one a full re-link builds.
//!
//! The [`SeriesState`] of a collection is the last whole-collection
//! `LinkSeries` run, extended by each `LinkUpload`; it is kept as JSON at
//! `<data-dir>/series/<collection>.json`, replaced atomically.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::pb;
use crate::storage::versions::SERIES;
use crate::storage::{durable, fs};
use crate::validate;

/// A series state's `format` is this prefix and its version in the
/// [`SERIES`] row of the version table.
const STATE_FORMAT_PREFIX: &str = "vidx-series/";

/// The `format` a series state is written with today: `vidx-series/<n>`.
pub fn state_format() -> String {
    format!("{STATE_FORMAT_PREFIX}{}", SERIES.current)
}

/// Why two media were linked.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EvidenceRecord {
    pub media_a: String,
    pub media_b: String,
    pub distance: f32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub face_distance: Option<f32>,
    pub collection: String,
    /// `image`, `near-duplicate`, `image+face`, `face` or `decision`.
    pub kind: EvidenceKind,
    pub shared_neighbours: u32,
    /// `decision`: the investigator's decision that joined the two media.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision_id: Option<u64>,
}

impl EvidenceRecord {
    /// The evidence of a union an investigator's decision made (see
    /// `decisions::Constraints::bind`).
    pub fn decision(media_a: &str, media_b: &str, decision: u64, collection: &str) -> Self {
        EvidenceRecord {
            media_a: media_a.to_string(),
            media_b: media_b.to_string(),
            distance: 0.0,
            face_distance: None,
            collection: collection.to_string(),
            kind: EvidenceKind::Decision,
            shared_neighbours: 0,
            decision_id: Some(decision),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EvidenceKind {
    Image,
    NearDuplicate,
    #[serde(rename = "image+face")]
    ImageAndFace,
    /// Two scenes joined through their victim's face; the images may look
    /// nothing alike (`distance` is their image distance).
    Face,
    /// Joined by an investigator's decision, not by distances.
    Decision,
}

impl EvidenceKind {
    fn to_pb(self) -> pb::EvidenceKind {
        match self {
            EvidenceKind::Image => pb::EvidenceKind::EvidenceImage,
            EvidenceKind::NearDuplicate => pb::EvidenceKind::EvidenceNearDuplicate,
            EvidenceKind::ImageAndFace => pb::EvidenceKind::EvidenceImageAndFace,
            EvidenceKind::Face => pb::EvidenceKind::EvidenceFace,
            EvidenceKind::Decision => pb::EvidenceKind::EvidenceDecision,
        }
    }
}

/// The key that picks a series' founding media: earliest upload first
/// (unknown upload time last), then the smallest media id.
pub fn founder_key(meta: &pb::Metadata, media_id: &str) -> (i64, String) {
    let t = if meta.uploaded_at == 0 {
        i64::MAX
    } else {
        meta.uploaded_at
    };
    (t, media_id.to_string())
}

/// The id of the series founded by `media_id`.
pub fn series_id_of(founder_media: &str) -> String {
    format!("ser-{founder_media}")
}

/// One series.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SeriesRecord {
    pub series_id: String,
    pub founder: (i64, String),
    pub media_ids: BTreeSet<String>,
    pub countries: BTreeSet<String>,
    pub agencies: BTreeSet<String>,
    pub upload_ids: BTreeSet<String>,
    pub case_ids: BTreeSet<String>,
    pub labels: BTreeSet<String>,
    /// [from, until]; (0, 0) when unknown.
    pub captured: (i64, i64),
    pub uploaded: (i64, i64),
    pub victim_identified: bool,
    pub media_with_faces: u32,
    pub evidence: Vec<EvidenceRecord>,
    /// Face point ids of the series' victim: the person on most of its
    /// media who does not recur beside other victims. Triage recognises
    /// new material of a known victim by them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub victim_faces: Vec<String>,
    /// What investigators decided about the series (see `decisions`),
    /// derived from the decision log after every regrouping.
    #[serde(default)]
    pub review: Review,
}

/// The series-level outcome of investigators' decisions.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Review {
    /// The latest LABEL decision's label; empty if none.
    #[serde(default)]
    pub label: String,
    /// MARK_IDENTIFIED references.
    #[serde(default)]
    pub references: BTreeSet<String>,
    /// Unix seconds of the latest decision about the series; 0 if none.
    #[serde(default)]
    pub decided_at: i64,
}

/// One person seen in two or more series: a lead ("same person in series A
/// and B"), not a merge.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PersonRecord {
    /// The person's smallest face point id.
    pub face_id: String,
    /// (series id, media of that series showing the person).
    pub series: Vec<(String, u32)>,
    /// Seen beside several victims (an adult, a bystander), rather than a
    /// victim whose material stayed split.
    pub recurring: bool,
}

impl PersonRecord {
    pub fn to_pb(&self) -> pb::SamePerson {
        pb::SamePerson {
            face_id: self.face_id.clone(),
            series_ids: self.series.iter().map(|s| s.0.clone()).collect(),
            media: self.series.iter().map(|s| s.1).collect(),
            recurring: self.recurring,
        }
    }
}

fn widen(span: &mut (i64, i64), t: i64) {
    if t == 0 {
        return;
    }
    if span.0 == 0 || t < span.0 {
        span.0 = t;
    }
    if span.1 == 0 || t > span.1 {
        span.1 = t;
    }
}

fn insert_nonempty(set: &mut BTreeSet<String>, v: &str) {
    if !v.is_empty() {
        set.insert(v.to_string());
    }
}

impl SeriesRecord {
    /// A series of one media (grown by `add_media` / `absorb`).
    pub fn new(media_id: &str, meta: &pb::Metadata, has_face: bool) -> SeriesRecord {
        let founder = founder_key(meta, media_id);
        let mut r = SeriesRecord {
            series_id: series_id_of(&founder.1),
            founder,
            media_ids: BTreeSet::new(),
            countries: BTreeSet::new(),
            agencies: BTreeSet::new(),
            upload_ids: BTreeSet::new(),
            case_ids: BTreeSet::new(),
            labels: BTreeSet::new(),
            captured: (0, 0),
            uploaded: (0, 0),
            victim_identified: false,
            media_with_faces: 0,
            evidence: Vec::new(),
            victim_faces: Vec::new(),
            review: Review::default(),
        };
        r.add_media(media_id, meta, has_face);
        r
    }

    /// Whether some part of the series was joined only through a face:
    /// the links an analyst verifies first.
    pub fn face_joined(&self) -> bool {
        self.evidence.iter().any(|e| e.kind == EvidenceKind::Face)
    }

    /// Adds a media (no-op if it is already a member).
    pub fn add_media(&mut self, media_id: &str, meta: &pb::Metadata, has_face: bool) {
        if !self.media_ids.insert(media_id.to_string()) {
            return;
        }
        let key = founder_key(meta, media_id);
        if key < self.founder {
            self.founder = key;
            self.series_id = series_id_of(&self.founder.1);
        }
        insert_nonempty(&mut self.countries, &meta.country);
        insert_nonempty(&mut self.agencies, &meta.agency);
        insert_nonempty(&mut self.upload_ids, &meta.upload_id);
        insert_nonempty(&mut self.case_ids, &meta.case_id);
        insert_nonempty(&mut self.labels, &meta.series_label);
        widen(&mut self.captured, meta.captured_at);
        widen(&mut self.uploaded, meta.uploaded_at);
        self.victim_identified |= meta.victim_identified;
        self.media_with_faces += has_face as u32;
    }

    /// Merges `other` into this series; the earlier founder's id survives.
    pub fn absorb(&mut self, other: SeriesRecord) {
        if other.founder < self.founder {
            self.founder = other.founder.clone();
            self.series_id = other.series_id.clone();
        }
        // Series are disjoint, so member counts simply add up.
        debug_assert!(self.media_ids.is_disjoint(&other.media_ids));
        self.media_ids.extend(other.media_ids);
        self.countries.extend(other.countries);
        self.agencies.extend(other.agencies);
        self.upload_ids.extend(other.upload_ids);
        self.case_ids.extend(other.case_ids);
        self.labels.extend(other.labels);
        for t in [other.captured.0, other.captured.1] {
            widen(&mut self.captured, t);
        }
        for t in [other.uploaded.0, other.uploaded.1] {
            widen(&mut self.uploaded, t);
        }
        self.victim_identified |= other.victim_identified;
        self.media_with_faces += other.media_with_faces;
        self.evidence.extend(other.evidence);
        self.victim_faces.extend(other.victim_faces);
        self.victim_faces.sort();
        self.victim_faces.dedup();
        // The review is derived again from the decisions after regrouping;
        // until then the merged series keeps what either had.
        self.review.references.extend(other.review.references);
        if other.review.decided_at > self.review.decided_at {
            self.review.decided_at = other.review.decided_at;
            if !other.review.label.is_empty() {
                self.review.label = other.review.label;
            }
        }
    }

    /// The latest of the members' uploads and of the decisions about it.
    pub fn updated_at(&self) -> i64 {
        self.uploaded.1.max(self.review.decided_at)
    }

    pub fn cross_border(&self) -> bool {
        self.countries.len() >= 2
    }

    pub fn to_pb(&self) -> pb::Series {
        pb::Series {
            series_id: self.series_id.clone(),
            media_ids: self.media_ids.iter().cloned().collect(),
            countries: self.countries.iter().cloned().collect(),
            agencies: self.agencies.iter().cloned().collect(),
            upload_ids: self.upload_ids.iter().cloned().collect(),
            case_ids: self.case_ids.iter().cloned().collect(),
            captured_from: self.captured.0,
            captured_until: self.captured.1,
            uploaded_from: self.uploaded.0,
            uploaded_until: self.uploaded.1,
            victim_identified: self.victim_identified || !self.review.references.is_empty(),
            cross_border: self.cross_border(),
            evidence: self
                .evidence
                .iter()
                .map(|e| pb::Evidence {
                    media_a: e.media_a.clone(),
                    media_b: e.media_b.clone(),
                    distance: e.distance,
                    face_distance: e.face_distance,
                    collection: e.collection.clone(),
                    kind: e.kind.to_pb() as i32,
                    shared_neighbours: e.shared_neighbours,
                    decision_id: e.decision_id.unwrap_or(0),
                })
                .collect(),
            labels: self.labels.iter().cloned().collect(),
            media_with_faces: self.media_with_faces,
            face_joined: self.face_joined(),
            victim_faces: self.victim_faces.len() as u32,
            label: self.review.label.clone(),
            identified_references: self.review.references.iter().cloned().collect(),
            updated_at: self.updated_at(),
        }
    }
}

/// Linking settings as stored with a state (see `pb::LinkParams`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LinkSettings {
    pub image_threshold: f32,
    pub face_threshold: f32,
    pub near_duplicate_threshold: f32,
    pub k: usize,
    pub ef: usize,
    pub min_shared_neighbours: usize,
    pub single_linkage: bool,
    /// Image distance up to which image edges link on images alone; beyond
    /// it (up to `image_threshold`) they link only where faces do not
    /// contradict. 0: the image threshold (no such band).
    #[serde(default)]
    pub core_threshold: f32,
}

impl LinkSettings {
    /// The core image threshold (see `core_threshold`).
    pub fn core(&self) -> f32 {
        if self.core_threshold > 0.0 {
            self.core_threshold.min(self.image_threshold)
        } else {
            self.image_threshold
        }
    }
}

/// The stored series of one image collection.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SeriesState {
    pub format: String,
    pub image_collection: String,
    /// Empty when linked without faces.
    pub face_collection: String,
    pub settings: LinkSettings,
    /// Series of two or more media, by series id.
    pub series: Vec<SeriesRecord>,
    /// Uploads linked by `LinkUpload` since the last full run.
    #[serde(default)]
    pub linked_uploads: Vec<String>,
    /// People seen in two or more series (as of the last full run).
    #[serde(default)]
    pub persons: Vec<PersonRecord>,
    /// Where the thresholds came from (`defaults`, `calibrated ...`, `set`).
    #[serde(default)]
    pub threshold_source: String,
}

impl SeriesState {
    /// media id → index into `series`.
    pub fn media_index(&self) -> HashMap<String, usize> {
        let mut m = HashMap::new();
        for (i, s) in self.series.iter().enumerate() {
            for id in &s.media_ids {
                m.insert(id.clone(), i);
            }
        }
        m
    }
}

/// A stored series state (`bytes`, of `path`) moved to the image collection
/// `name`, every other key kept: a restore under a new name.
pub fn renamed_state(path: &Path, bytes: &[u8], name: &str) -> Result<Vec<u8>> {
    let mut v: serde_json::Value = serde_json::from_slice(bytes)
        .map_err(|e| Error::data_loss(path, format!("series state is not valid: {e}")))?;
    let Some(obj) = v.as_object_mut() else {
        return Err(Error::data_loss(path, "series state is not a JSON object"));
    };
    obj.insert(
        "image_collection".into(),
        serde_json::Value::String(name.to_string()),
    );
    serde_json::to_vec(&v).map_err(|e| Error::Internal(format!("encoding series state: {e}")))
}

/// Where series states live: `<data-dir>/series/<collection>.json`; the
/// states read lately are kept parsed in memory for the series reads
/// (ListSeries, GetSeries, SeriesOfMedia), which must not parse a large
/// state per call.
#[derive(Clone, Debug)]
pub struct StateStore {
    dir: PathBuf,
    cache: Arc<Mutex<HashMap<String, Arc<SeriesState>>>>,
}

impl StateStore {
    pub fn new(dir: PathBuf) -> StateStore {
        StateStore {
            dir,
            cache: Arc::default(),
        }
    }

    /// The stored state of `collection`, shared and parsed once.
    pub fn shared(&self, collection: &str) -> Result<Option<Arc<SeriesState>>> {
        if let Some(s) = self.cache.lock().get(collection) {
            return Ok(Some(s.clone()));
        }
        let Some(state) = self.load(collection)? else {
            return Ok(None);
        };
        let state = Arc::new(state);
        self.cache
            .lock()
            .insert(collection.to_string(), state.clone());
        Ok(Some(state))
    }

    /// The file of `collection`'s state: never built from a name that
    /// breaks the one name rule (it could walk out of the data directory).
    fn path(&self, collection: &str) -> Result<PathBuf> {
        validate::collection_name("collection", collection)?;
        Ok(self.dir.join(format!("{collection}.json")))
    }

    /// The stored state of `collection`, if any. DATA_LOSS naming the file
    /// when it cannot be read back.
    pub fn load(&self, collection: &str) -> Result<Option<SeriesState>> {
        let path = self.path(collection)?;
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
        let state: SeriesState = serde_json::from_slice(&bytes)
            .map_err(|e| Error::bad_json(&path, "the series state", &e))?;
        let version = state
            .format
            .strip_prefix(STATE_FORMAT_PREFIX)
            .and_then(|n| n.parse::<u32>().ok())
            .ok_or_else(|| {
                Error::data_loss(
                    &path,
                    format!(
                        "series state format {:?} is not \"{STATE_FORMAT_PREFIX}<version>\"",
                        state.format
                    ),
                )
            })?;
        SERIES.check(&path, version)?;
        Ok(Some(state))
    }

    pub fn save(&self, state: &SeriesState) -> Result<()> {
        fs::create_dir_all_durably(&self.dir)?;
        let bytes = serde_json::to_vec(state)
            .map_err(|e| Error::Internal(format!("encoding series state: {e}")))?;
        // Forgotten before the write: a failed write must not leave the
        // cache ahead of the file.
        self.cache.lock().remove(&state.image_collection);
        durable::write_durably(&self.path(&state.image_collection)?, &bytes)?;
        self.cache
            .lock()
            .insert(state.image_collection.clone(), Arc::new(state.clone()));
        Ok(())
    }

    pub fn remove(&self, collection: &str) -> Result<()> {
        let path = self.path(collection)?;
        self.cache.lock().remove(collection);
        match fs::remove_file(&path) {
            Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                Ok(())
            }
            r => r,
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(country: &str, uploaded_at: i64) -> pb::Metadata {
        pb::Metadata {
            country: country.into(),
            upload_id: format!("u{uploaded_at}"),
            uploaded_at,
            captured_at: uploaded_at - 10,
            ..Default::default()
        }
    }

    #[test]
    fn founder_and_merge_are_order_independent() {
        let mut a = SeriesRecord::new("m3", &meta("DE", 300), false);
        a.add_media("m1", &meta("FR", 100), true);
        let mut b = SeriesRecord::new("m2", &meta("BR", 200), true);
        b.add_media("m4", &meta("BR", 0), false);
        let mut ab = a.clone();
        ab.absorb(b.clone());
        let mut ba = b;
        ba.absorb(a);
        assert_eq!(ab, ba);
        assert_eq!(ab.series_id, "ser-m1");
        assert_eq!(ab.media_with_faces, 2);
        assert!(ab.cross_border());
        assert_eq!(ab.uploaded, (100, 300));
        assert_eq!(ab.captured, (-10, 290));
        assert_eq!(ab.countries.len(), 3);
    }

    #[test]
    fn state_round_trip_and_damage() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::new(dir.path().join("series"));
        assert!(store.load("images").unwrap().is_none());
        let state = SeriesState {
            format: state_format(),
            image_collection: "images".into(),
            face_collection: String::new(),
            settings: LinkSettings {
                image_threshold: 0.36,
                face_threshold: 0.7,
                near_duplicate_threshold: 0.05,
                k: 32,
                ef: 128,
                min_shared_neighbours: 1,
                single_linkage: false,
                core_threshold: 0.0,
            },
            series: vec![SeriesRecord::new("m1", &meta("DE", 1), false)],
            linked_uploads: vec![],
            persons: vec![],
            threshold_source: String::new(),
        };
        store.save(&state).unwrap();
        let back = store.load("images").unwrap().unwrap();
        assert_eq!(back.series, state.series);
        // A state from a newer vidx, and one whose format is no version.
        let file = dir.path().join("series/images.json");
        for (format, want) in [
            (
                "vidx-series/2",
                "series state format version 2 was written by a newer vidx",
            ),
            ("vidx-series", "is not \"vidx-series/<version>\""),
        ] {
            store
                .save(&SeriesState {
                    format: format.into(),
                    ..state.clone()
                })
                .unwrap();
            let e = store.load("images").unwrap_err().to_string();
            assert!(e.contains("images.json") && e.contains(want), "{e}");
        }
        std::fs::write(&file, b"{not json").unwrap();
        let e = store.load("images").unwrap_err().to_string();
        assert!(e.contains("images.json"), "{e}");
        store.remove("images").unwrap();
        assert!(store.load("images").unwrap().is_none());
    }
}
