//! Series as reviewed records: reading the stored series (a filtered page,
//! one series in detail, the series of given media), turning a review
//! request into checked decisions, and regrouping after decisions.
//!
//! A decision that changes membership (CONFIRM_LINK, REJECT_LINK, MERGE,
//! SPLIT) regroups by linking the collection again under every decision
//! ([`relink`]): the stored series are then exactly what a later
//! `LinkSeries` gives, so a re-link never moves a member that a review
//! placed. LABEL and MARK_IDENTIFIED only change series-level fields.

use std::collections::{BTreeSet, HashMap};
use std::time::Instant;

use crate::collection::View;
use crate::error::{Error, Result};
use crate::index::filter::Filter;
use crate::investigate::decisions::{Book, Decision, Kind};
use crate::investigate::link::{self, Outcome, UploadLinked, media_key};
use crate::investigate::series::{SeriesRecord, SeriesState};
use crate::pb;
use crate::validate;

/// Media looked up per filter pass.
const MEDIA_CHUNK: usize = 4096;
/// Decisions one review request may carry.
pub const MAX_DECISIONS: usize = 1000;
pub const DEFAULT_PAGE: usize = 100;
pub const MAX_PAGE: usize = 1000;

/// The media of `view` among `ids` (by `metadata.media_id`, else the point
/// id), with their points' metadata; one point per media (the first found).
pub fn find_media(
    view: &View,
    ids: &[String],
    face: bool,
) -> Result<HashMap<String, Vec<pb::Metadata>>> {
    let mut wanted: Vec<String> = ids.to_vec();
    wanted.sort();
    wanted.dedup();
    let mut out: HashMap<String, Vec<pb::Metadata>> = HashMap::new();
    for chunk in wanted.chunks(MEDIA_CHUNK) {
        let f = Filter {
            media_ids_any: chunk.to_vec(),
            ..Default::default()
        };
        for (_, id, meta) in view.points(Some(&f))? {
            out.entry(media_key(&id, &meta, face))
                .or_default()
                .push(meta);
        }
    }
    if !face {
        // Image points without a media_id are their own media.
        for id in &wanted {
            if out.contains_key(id) {
                continue;
            }
            if let Some(r) = view.locate(id)? {
                let (_, meta) = view.describe(r)?;
                if meta.media_id.is_empty() {
                    out.insert(id.clone(), vec![meta]);
                }
            }
        }
    }
    Ok(out)
}

/// What `ListSeries` selects.
#[derive(Clone, Debug, Default)]
pub struct SeriesFilter {
    pub countries_any: Vec<String>,
    pub cross_border: Option<bool>,
    pub victim_identified: Option<bool>,
    pub min_media: usize,
    pub updated_after: Option<i64>,
}

impl SeriesFilter {
    pub fn from_pb(f: Option<&pb::SeriesFilter>) -> Result<SeriesFilter> {
        let Some(f) = f else {
            return Ok(SeriesFilter::default());
        };
        for (i, c) in f.countries_any.iter().enumerate() {
            validate::country(&format!("filter.countries_any[{i}]"), c, false)?;
        }
        Ok(SeriesFilter {
            countries_any: f.countries_any.clone(),
            cross_border: f.cross_border,
            victim_identified: f.victim_identified,
            min_media: f.min_media as usize,
            updated_after: f.updated_after,
        })
    }

    pub fn passes(&self, s: &SeriesRecord) -> bool {
        (self.countries_any.is_empty()
            || self.countries_any.iter().any(|c| s.countries.contains(c)))
            && self.cross_border.is_none_or(|x| x == s.cross_border())
            && self
                .victim_identified
                .is_none_or(|x| x == (s.victim_identified || !s.review.references.is_empty()))
            && s.media_ids.len() >= self.min_media
            && self.updated_after.is_none_or(|t| s.updated_at() >= t)
    }
}

/// One page of the series passing `f`, in series-id order, after the
/// series `token` names (empty = from the start).
pub fn list(
    state: &SeriesState,
    f: &SeriesFilter,
    page_size: u32,
    token: &str,
    with_evidence: bool,
) -> Result<pb::ListSeriesResponse> {
    let size = match page_size as usize {
        0 => DEFAULT_PAGE,
        n if n > MAX_PAGE => {
            return Err(Error::invalid(format!(
                "page_size is {n}; at most {MAX_PAGE}"
            )));
        }
        n => n,
    };
    if !token.is_empty() && !token.starts_with("ser-") {
        return Err(Error::invalid(format!(
            "page_token {} is not one this server gave (a series id)",
            validate::show(token)
        )));
    }
    // Stored series are kept in series-id order.
    let start = if token.is_empty() {
        0
    } else {
        state
            .series
            .partition_point(|s| s.series_id.as_str() <= token)
    };
    let mut total = 0u64;
    let mut page = Vec::new();
    let mut next = String::new();
    for (i, s) in state.series.iter().enumerate() {
        if !f.passes(s) {
            continue;
        }
        total += 1;
        if i < start {
            continue;
        }
        if page.len() == size {
            if next.is_empty() {
                next = page
                    .last()
                    .map(|p: &pb::Series| p.series_id.clone())
                    .unwrap_or_default();
            }
            continue;
        }
        let mut x = s.to_pb();
        if !with_evidence {
            x.evidence.clear();
        }
        page.push(x);
    }
    Ok(pb::ListSeriesResponse {
        series: page,
        next_page_token: next,
        total,
        params: Some(link::settings_to_pb(&state.settings)),
    })
}

/// NOT_FOUND for a series id, with where its founding media is now.
fn series_not_found(field: &str, id: &str, state: &SeriesState, collection: &str) -> Error {
    let founder = id.strip_prefix("ser-").unwrap_or("");
    let now = state
        .series
        .iter()
        .find(|s| s.media_ids.contains(founder))
        .map(|s| format!(" (its founding media is now in series {})", s.series_id))
        .unwrap_or_default();
    Error::NotFound(format!(
        "{field} {}: no such series in collection {collection:?}{now}",
        validate::show(id)
    ))
}

fn by_id<'s>(state: &'s SeriesState, id: &str) -> Option<&'s SeriesRecord> {
    state
        .series
        .binary_search_by(|s| s.series_id.as_str().cmp(id))
        .ok()
        .map(|i| &state.series[i])
}

/// One series with its media, the decisions about it and its relations.
pub fn detail(
    state: &SeriesState,
    book: &Book,
    images: &View,
    faces: Option<&View>,
    series_id: &str,
) -> Result<pb::GetSeriesResponse> {
    let rec = by_id(state, series_id)
        .ok_or_else(|| series_not_found("series_id", series_id, state, &state.image_collection))?;
    let ids: Vec<String> = rec.media_ids.iter().cloned().collect();
    let meta = find_media(images, &ids, false)?;
    let face_counts = match faces {
        Some(fv) => find_media(fv, &ids, true)?,
        None => HashMap::new(),
    };
    let media = ids
        .iter()
        .map(|m| pb::SeriesMedia {
            media_id: m.clone(),
            metadata: meta.get(m).and_then(|v| v.first().cloned()),
            faces: face_counts.get(m).map_or(0, |v| v.len() as u32),
        })
        .collect();
    Ok(pb::GetSeriesResponse {
        series: Some(rec.to_pb()),
        media,
        decisions: book.about(&rec.media_ids).map(Decision::to_pb).collect(),
        rejected: book
            .rejected(&rec.media_ids)
            .into_iter()
            .map(|(media_a, media_b, decision_id)| pb::RejectedPair {
                media_a,
                media_b,
                decision_id,
            })
            .collect(),
        // Filled once linking relates series through a recurring face.
        same_person: Vec::new(),
    })
}

/// The series of each media, in request order; NOT_FOUND names the first
/// media that is in neither a series nor the collection.
pub fn series_of(
    state: &SeriesState,
    images: &View,
    media_ids: &[String],
) -> Result<Vec<pb::MediaSeries>> {
    let mut index: HashMap<&str, &str> = HashMap::new();
    for s in &state.series {
        for m in &s.media_ids {
            index.insert(m, &s.series_id);
        }
    }
    let loose: Vec<String> = media_ids
        .iter()
        .filter(|m| !index.contains_key(m.as_str()))
        .cloned()
        .collect();
    if !loose.is_empty() {
        let found = find_media(images, &loose, false)?;
        let missing: Vec<&String> = loose.iter().filter(|m| !found.contains_key(*m)).collect();
        if let Some(first) = missing.first() {
            let i = media_ids.iter().position(|m| m == *first).unwrap_or(0);
            return Err(Error::NotFound(format!(
                "media_ids[{i}] {} is not a media of collection {:?}{}",
                validate::show(first),
                state.image_collection,
                if missing.len() > 1 {
                    format!(" ({} of the requested media are not)", missing.len())
                } else {
                    String::new()
                }
            )));
        }
    }
    Ok(media_ids
        .iter()
        .map(|m| pb::MediaSeries {
            media_id: m.clone(),
            series_id: index
                .get(m.as_str())
                .map_or(String::new(), |s| s.to_string()),
        })
        .collect())
}

/// The checks every review request passes before its decisions are read.
fn check_request(req: &pb::ReviewSeriesRequest) -> Result<()> {
    if req.reviewer.trim().is_empty() {
        return Err(Error::invalid(
            "reviewer is empty; name who decides (decisions are kept with who, when and why)",
        ));
    }
    if req.reviewer.len() > validate::MAX_META_STRING {
        return Err(Error::invalid(format!(
            "reviewer {} is longer than {} bytes",
            validate::show(&req.reviewer),
            validate::MAX_META_STRING
        )));
    }
    if req.decisions.is_empty() {
        return Err(Error::invalid(
            "decisions is empty; send at least one decision",
        ));
    }
    validate::count("decisions", req.decisions.len(), MAX_DECISIONS)
}

/// Media named by pair decisions that must exist in the collection.
fn named_media(req: &pb::ReviewSeriesRequest) -> Vec<String> {
    req.decisions
        .iter()
        .flat_map(|d| [d.media_a.clone(), d.media_b.clone()])
        .filter(|m| !m.is_empty())
        .collect()
}

/// Reads a request's decisions, checks each against the stored series, the
/// collection and every decision before it (those in the book, then those
/// earlier in the request), and adds them to `book`. Returns them as to be
/// recorded; nothing is recorded on error.
pub fn decide(
    req: &pb::ReviewSeriesRequest,
    state: &SeriesState,
    images: &View,
    book: &mut Book,
    now: i64,
) -> Result<Vec<Decision>> {
    check_request(req)?;
    let known = find_media(images, &named_media(req), false)?;
    let members = |id: &str| by_id(state, id).map(|s| s.media_ids.iter().cloned().collect());
    let mut out = Vec::new();
    for (i, d) in req.decisions.iter().enumerate() {
        let field = format!("decisions[{i}]");
        let note = [req.note.trim(), d.note.trim()]
            .into_iter()
            .filter(|n| !n.is_empty())
            .collect::<Vec<_>>()
            .join(" / ");
        let base = Decision {
            id: book.next_id(),
            kind: Kind::from_pb(d.kind).ok_or_else(|| {
                Error::invalid(format!(
                    "{field}.kind is {}; set CONFIRM_LINK, REJECT_LINK, MERGE, SPLIT, LABEL or MARK_IDENTIFIED",
                    d.kind
                ))
            })?,
            reviewer: req.reviewer.trim().to_string(),
            at: now,
            note,
            a: String::new(),
            b: String::new(),
            series: Vec::new(),
            anchors: Vec::new(),
            leaving: Vec::new(),
            staying: Vec::new(),
            label: String::new(),
            reference: String::new(),
        };
        let decided = resolve(&field, d, base, state, &known)?;
        book.add(&field, decided.clone(), &members)?;
        out.push(decided);
    }
    Ok(out)
}

/// A media a pair decision names: non-empty and in the collection.
fn media_field(
    field: &str,
    m: &str,
    known: &HashMap<String, Vec<pb::Metadata>>,
    collection: &str,
) -> Result<String> {
    if m.is_empty() {
        return Err(Error::invalid(format!("{field} is empty; name a media id")));
    }
    if !known.contains_key(m) {
        return Err(Error::invalid(format!(
            "{field} {} is not a media of collection {collection:?}",
            validate::show(m)
        )));
    }
    Ok(m.to_string())
}

/// A series a decision names: it must exist now.
fn series_field<'s>(field: &str, id: &str, state: &'s SeriesState) -> Result<&'s SeriesRecord> {
    if id.is_empty() {
        return Err(Error::invalid(format!(
            "{field} is empty; name a series id"
        )));
    }
    by_id(state, id).ok_or_else(|| series_not_found(field, id, state, &state.image_collection))
}

fn nonempty(field: &str, v: &str) -> Result<String> {
    let v = v.trim();
    if v.is_empty() || v.len() > validate::MAX_META_STRING {
        return Err(Error::invalid(format!(
            "{field} {} must be 1 to {} bytes",
            validate::show(v),
            validate::MAX_META_STRING
        )));
    }
    Ok(v.to_string())
}

/// Fills the kind-specific part of a decision from the request.
fn resolve(
    field: &str,
    d: &pb::Decision,
    mut out: Decision,
    state: &SeriesState,
    known: &HashMap<String, Vec<pb::Metadata>>,
) -> Result<Decision> {
    let coll = &state.image_collection;
    match out.kind {
        Kind::ConfirmLink | Kind::RejectLink => {
            out.a = media_field(&format!("{field}.media_a"), &d.media_a, known, coll)?;
            out.b = media_field(&format!("{field}.media_b"), &d.media_b, known, coll)?;
            if out.a == out.b {
                return Err(Error::invalid(format!(
                    "{field}: media_a and media_b are both {}; name two media",
                    validate::show(&out.a)
                )));
            }
        }
        Kind::Merge => {
            let ids: BTreeSet<&String> = d.series_ids.iter().collect();
            if ids.len() < 2 {
                return Err(Error::invalid(format!(
                    "{field}.series_ids names {} distinct series; a MERGE needs two or more",
                    ids.len()
                )));
            }
            for (j, id) in d.series_ids.iter().enumerate() {
                let s = series_field(&format!("{field}.series_ids[{j}]"), id, state)?;
                if !out.series.contains(id) {
                    out.series.push(id.clone());
                    out.anchors.push(s.founder.1.clone());
                }
            }
        }
        Kind::Split => {
            let s = series_field(&format!("{field}.series_id"), &d.series_id, state)?;
            if d.media_ids.is_empty() {
                return Err(Error::invalid(format!(
                    "{field}.media_ids is empty; name the media that leave the series"
                )));
            }
            for (j, m) in d.media_ids.iter().enumerate() {
                if !s.media_ids.contains(m) {
                    return Err(Error::invalid(format!(
                        "{field}.media_ids[{j}] {} is not a member of series {}",
                        validate::show(m),
                        s.series_id
                    )));
                }
            }
            let leaving: BTreeSet<String> = d.media_ids.iter().cloned().collect();
            out.staying = s.media_ids.difference(&leaving).cloned().collect();
            if out.staying.is_empty() {
                return Err(Error::invalid(format!(
                    "{field}.media_ids names every member of series {}; a SPLIT leaves some behind",
                    s.series_id
                )));
            }
            out.leaving = leaving.into_iter().collect();
            out.series = vec![s.series_id.clone()];
            out.anchors = vec![s.founder.1.clone()];
        }
        Kind::Label | Kind::MarkIdentified => {
            let s = series_field(&format!("{field}.series_id"), &d.series_id, state)?;
            out.series = vec![s.series_id.clone()];
            out.anchors = vec![s.founder.1.clone()];
            if out.kind == Kind::Label {
                out.label = nonempty(&format!("{field}.label"), &d.label)?;
            } else {
                out.reference = nonempty(&format!("{field}.reference"), &d.reference)?;
            }
        }
    }
    Ok(out)
}

/// Links the whole collection again with the stored settings under every
/// decision of `book`; returns the new state and the seconds it took.
pub fn relink(
    images: (&View, &str),
    faces: Option<(&View, &str)>,
    state: &SeriesState,
    book: &Book,
) -> Result<(SeriesState, f64)> {
    let t = Instant::now();
    let linked = link::link_full(
        images,
        faces,
        &state.settings,
        None,
        book.constraints(),
        &|_, _, _| {},
    )?;
    let mut series = linked.series;
    book.apply_review(&mut series);
    let next = SeriesState {
        format: state.format.clone(),
        image_collection: state.image_collection.clone(),
        face_collection: state.face_collection.clone(),
        settings: state.settings.clone(),
        series,
        linked_uploads: Vec::new(),
    };
    Ok((next, t.elapsed().as_secs_f64()))
}

/// The series now holding any media the decisions name.
pub fn touched(state: &SeriesState, decisions: &[Decision]) -> Vec<pb::Series> {
    let named: BTreeSet<&String> = decisions.iter().flat_map(|d| d.names()).collect();
    state
        .series
        .iter()
        .filter(|s| named.iter().any(|m| s.media_ids.contains(*m)))
        .map(SeriesRecord::to_pb)
        .collect()
}

/// What linking `upload_media` did, told by comparing the series before
/// and after a full re-link (when decisions made `LinkUpload` re-link).
pub fn upload_outcome(
    before: &SeriesState,
    after: &SeriesState,
    upload_media: &[String],
) -> UploadLinked {
    let old = before.media_index();
    let new = after.media_index();
    let upload: BTreeSet<&String> = upload_media.iter().collect();
    let mut media = Vec::new();
    let mut touched: BTreeSet<usize> = BTreeSet::new();
    for m in upload_media {
        let Some(&si) = new.get(m) else {
            media.push((m.clone(), Outcome::Unlinked, String::new()));
            continue;
        };
        touched.insert(si);
        let s = &after.series[si];
        let joined = s
            .media_ids
            .iter()
            .any(|x| !upload.contains(x) && old.contains_key(x));
        let o = if joined {
            Outcome::Joined
        } else {
            Outcome::NewSeries
        };
        media.push((m.clone(), o, s.series_id.clone()));
    }
    media.sort();
    let mut merges = Vec::new();
    for &si in &touched {
        let s = &after.series[si];
        let olds: BTreeSet<&String> = s
            .media_ids
            .iter()
            .filter_map(|x| old.get(x).map(|&oi| &before.series[oi].series_id))
            .collect();
        if olds.len() >= 2 {
            let gone = olds
                .into_iter()
                .filter(|id| **id != s.series_id)
                .cloned()
                .collect();
            merges.push((s.series_id.clone(), gone));
        }
    }
    UploadLinked {
        media,
        merges,
        touched: touched
            .into_iter()
            .map(|si| after.series[si].clone())
            .collect(),
        new_edges: 0,
    }
}
