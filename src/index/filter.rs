//! Investigative filters over point metadata: validation, the per-segment
//! metadata index that evaluates them without touching vectors, and the
//! planner's inputs (how many points can pass, and which).
//!
//! Every segment keeps a [`MetaIndex`]: each string column dictionary-encoded
//! (value → code, offset → code, code → posting list of offsets), tags as a
//! multi-valued column, `victim_identified` flags and both time columns (with
//! a sorted copy for range counts in sealed segments). A [`Filter`] compiled
//! against one index ([`Compiled`]) answers `accepts(offset)` with a few array
//! reads, and knows the smallest positive condition's offsets, which is
//! what an exact scan over a selective filter walks.

use std::collections::HashMap;

use crate::error::{Error, Result};
use crate::pb;
use crate::validate;

/// Most values one filter list may hold.
pub const MAX_FILTER_VALUES: usize = 1024;

/// A validated filter. Empty lists and `None` mean "no condition".
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Filter {
    pub countries_any: Vec<String>,
    pub countries_none: Vec<String>,
    pub agencies_any: Vec<String>,
    pub case_ids_any: Vec<String>,
    pub case_ids_none: Vec<String>,
    pub upload_ids_any: Vec<String>,
    pub upload_ids_none: Vec<String>,
    pub media_ids_none: Vec<String>,
    /// Only points of these media (internal: series lookups; not a request
    /// field).
    pub media_ids_any: Vec<String>,
    pub victim_identified: Option<bool>,
    /// [after, before): after inclusive, before exclusive.
    pub captured: (Option<i64>, Option<i64>),
    pub uploaded: (Option<i64>, Option<i64>),
    pub tags_all: Vec<String>,
    pub tags_any: Vec<String>,
    /// Restricted uploads the caller may not see, as sorted (owner agency,
    /// upload id) pairs: the visibility predicate. Never set from a request;
    /// the api layer adds it for the caller (see `collection::restrict`).
    pub hidden_uploads: Vec<(String, String)>,
}

/// Checks a request list of metadata values (`field` names it in errors):
/// at most [`MAX_FILTER_VALUES`], each 1 to 256 bytes; returns it sorted and
/// deduplicated.
pub fn list(field: &str, values: &[String]) -> Result<Vec<String>> {
    if values.len() > MAX_FILTER_VALUES {
        return Err(Error::invalid(format!(
            "{field} has {} values; at most {MAX_FILTER_VALUES}",
            values.len()
        )));
    }
    for (i, v) in values.iter().enumerate() {
        if v.is_empty() || v.len() > validate::MAX_META_STRING {
            return Err(Error::invalid(format!(
                "{field}[{i}] {} must be 1 to {} bytes",
                validate::show(v),
                validate::MAX_META_STRING
            )));
        }
    }
    let mut v = values.to_vec();
    v.sort();
    v.dedup();
    Ok(v)
}

fn range(
    field: &str,
    after: Option<i64>,
    before: Option<i64>,
) -> Result<(Option<i64>, Option<i64>)> {
    if let (Some(a), Some(b)) = (after, before)
        && a >= b
    {
        return Err(Error::invalid(format!(
            "filter.{field}_after ({a}) is not before filter.{field}_before ({b}); the range [after, before) would be empty"
        )));
    }
    Ok((after, before))
}

impl Filter {
    /// Validates a request filter; `None` if it sets no condition.
    pub fn from_pb(f: Option<&pb::Filter>) -> Result<Option<Filter>> {
        let Some(f) = f else { return Ok(None) };
        for (field, codes) in [
            ("countries_any", &f.countries_any),
            ("countries_none", &f.countries_none),
        ] {
            for (i, c) in codes.iter().enumerate() {
                validate::country(&format!("filter.{field}[{i}]"), c, false)?;
            }
        }
        let out = Filter {
            countries_any: list("filter.countries_any", &f.countries_any)?,
            countries_none: list("filter.countries_none", &f.countries_none)?,
            agencies_any: list("filter.agencies_any", &f.agencies_any)?,
            case_ids_any: list("filter.case_ids_any", &f.case_ids_any)?,
            case_ids_none: list("filter.case_ids_none", &f.case_ids_none)?,
            upload_ids_any: list("filter.upload_ids_any", &f.upload_ids_any)?,
            upload_ids_none: list("filter.upload_ids_none", &f.upload_ids_none)?,
            media_ids_none: list("filter.media_ids_none", &f.media_ids_none)?,
            media_ids_any: Vec::new(),
            victim_identified: f.victim_identified,
            captured: range("captured", f.captured_after, f.captured_before)?,
            uploaded: range("uploaded", f.uploaded_after, f.uploaded_before)?,
            tags_all: list("filter.tags_all", &f.tags_all)?,
            tags_any: list("filter.tags_any", &f.tags_any)?,
            hidden_uploads: Vec::new(),
        };
        Ok(if out.is_empty() { None } else { Some(out) })
    }

    pub fn is_empty(&self) -> bool {
        *self == Filter::default()
    }

    /// Whether the visibility predicate hides a point with this metadata.
    pub fn hides(&self, m: &pb::Metadata) -> bool {
        !self.hidden_uploads.is_empty()
            && self
                .hidden_uploads
                .binary_search_by(|(a, u)| {
                    (a.as_str(), u.as_str()).cmp(&(m.agency.as_str(), m.upload_id.as_str()))
                })
                .is_ok()
    }

    /// `filter` (if any) narrowed by a visibility predicate (if any): the
    /// filter a caller's query runs under.
    pub fn and_visible(filter: Option<Filter>, visibility: Option<&Filter>) -> Option<Filter> {
        match (filter, visibility) {
            (f, None) => f,
            (None, Some(v)) => Some(v.clone()),
            (Some(mut f), Some(v)) => {
                f.hidden_uploads = v.hidden_uploads.clone();
                Some(f)
            }
        }
    }

    /// The reference semantics, straight from the metadata. The index-based
    /// evaluation must agree with this (tested).
    pub fn matches(&self, m: &pb::Metadata) -> bool {
        let has = |l: &[String], v: &str| l.binary_search_by(|x| x.as_str().cmp(v)).is_ok();
        let in_range = |(a, b): (Option<i64>, Option<i64>), t: i64| {
            a.is_none_or(|a| t >= a) && b.is_none_or(|b| t < b)
        };
        (self.countries_any.is_empty() || has(&self.countries_any, &m.country))
            && !has(&self.countries_none, &m.country)
            && (self.agencies_any.is_empty() || has(&self.agencies_any, &m.agency))
            && (self.case_ids_any.is_empty() || has(&self.case_ids_any, &m.case_id))
            && !has(&self.case_ids_none, &m.case_id)
            && (self.upload_ids_any.is_empty() || has(&self.upload_ids_any, &m.upload_id))
            && !has(&self.upload_ids_none, &m.upload_id)
            && !has(&self.media_ids_none, &m.media_id)
            && (self.media_ids_any.is_empty() || has(&self.media_ids_any, &m.media_id))
            && self
                .victim_identified
                .is_none_or(|v| v == m.victim_identified)
            && in_range(self.captured, m.captured_at)
            && in_range(self.uploaded, m.uploaded_at)
            && self.tags_all.iter().all(|t| m.tags.contains(t))
            && (self.tags_any.is_empty() || self.tags_any.iter().any(|t| m.tags.contains(t)))
            && !self.hides(m)
    }
}

/// One dictionary-encoded string column.
#[derive(Default)]
struct Column {
    dict: HashMap<String, u32>,
    codes: Vec<u32>,
    postings: Vec<Vec<u32>>,
}

impl Column {
    fn push(&mut self, value: &str, offset: u32) {
        let code = match self.dict.get(value) {
            Some(&c) => c,
            None => {
                let c = self.postings.len() as u32;
                self.dict.insert(value.to_owned(), c);
                self.postings.push(Vec::new());
                c
            }
        };
        self.codes.push(code);
        self.postings[code as usize].push(offset);
    }

    /// Sorted codes of the values present here (unknown values dropped).
    fn codes_of(&self, values: &[String]) -> Vec<u32> {
        let mut c: Vec<u32> = values
            .iter()
            .filter_map(|v| self.dict.get(v).copied())
            .collect();
        c.sort_unstable();
        c
    }

    fn count(&self, codes: &[u32]) -> usize {
        codes.iter().map(|&c| self.postings[c as usize].len()).sum()
    }

    fn bytes(&self) -> usize {
        self.codes.len() * 8 + self.dict.keys().map(|k| k.len() + 48).sum::<usize>()
    }
}

/// Metadata of one segment, indexed for filtering.
#[derive(Default)]
pub struct MetaIndex {
    country: Column,
    agency: Column,
    case_id: Column,
    upload_id: Column,
    media_id: Column,
    /// Tags: per offset a range into `tag_codes`; dictionary shared in `tags`.
    tags: Column,
    tag_starts: Vec<u32>,
    identified: Vec<bool>,
    identified_count: usize,
    captured: Vec<i64>,
    uploaded: Vec<i64>,
    /// Sorted (time, offset), built by [`MetaIndex::seal`] for immutable segments.
    captured_sorted: Vec<(i64, u32)>,
    uploaded_sorted: Vec<(i64, u32)>,
}

impl MetaIndex {
    pub fn len(&self) -> usize {
        self.identified.len()
    }

    pub fn is_empty(&self) -> bool {
        self.identified.is_empty()
    }

    /// Appends the next offset's metadata.
    pub fn push(&mut self, m: &pb::Metadata) {
        let off = self.identified.len() as u32;
        if self.tag_starts.is_empty() {
            self.tag_starts.push(0);
        }
        self.country.push(&m.country, off);
        self.agency.push(&m.agency, off);
        self.case_id.push(&m.case_id, off);
        self.upload_id.push(&m.upload_id, off);
        self.media_id.push(&m.media_id, off);
        let mut seen: Vec<&str> = Vec::with_capacity(m.tags.len());
        for t in &m.tags {
            if !seen.contains(&t.as_str()) {
                seen.push(t);
                self.tags.push(t, off);
            }
        }
        self.tag_starts.push(self.tags.codes.len() as u32);
        self.identified.push(m.victim_identified);
        self.identified_count += m.victim_identified as usize;
        self.captured.push(m.captured_at);
        self.uploaded.push(m.uploaded_at);
    }

    /// Builds the sorted time columns; for segments that no longer grow.
    pub fn seal(&mut self) {
        let sorted = |v: &[i64]| {
            let mut s: Vec<(i64, u32)> =
                v.iter().enumerate().map(|(i, &t)| (t, i as u32)).collect();
            s.sort_unstable();
            s
        };
        self.captured_sorted = sorted(&self.captured);
        self.uploaded_sorted = sorted(&self.uploaded);
    }

    /// Approximate heap bytes.
    pub fn memory_bytes(&self) -> usize {
        self.country.bytes()
            + self.agency.bytes()
            + self.case_id.bytes()
            + self.upload_id.bytes()
            + self.media_id.bytes()
            + self.tags.bytes()
            + self.tag_starts.len() * 4
            + self.identified.len() * 17
            + (self.captured_sorted.len() + self.uploaded_sorted.len()) * 16
    }

    /// Resolves a filter against this segment's dictionaries.
    pub fn compile<'a>(&'a self, f: &Filter) -> Compiled<'a> {
        let any =
            |col: &Column, values: &[String]| (!values.is_empty()).then(|| col.codes_of(values));
        let mut c = Compiled {
            idx: self,
            countries_any: any(&self.country, &f.countries_any),
            countries_none: self.country.codes_of(&f.countries_none),
            agencies_any: any(&self.agency, &f.agencies_any),
            case_ids_any: any(&self.case_id, &f.case_ids_any),
            case_ids_none: self.case_id.codes_of(&f.case_ids_none),
            upload_ids_any: any(&self.upload_id, &f.upload_ids_any),
            upload_ids_none: self.upload_id.codes_of(&f.upload_ids_none),
            media_ids_none: self.media_id.codes_of(&f.media_ids_none),
            media_ids_any: any(&self.media_id, &f.media_ids_any),
            victim_identified: f.victim_identified,
            captured: f.captured,
            uploaded: f.uploaded,
            tags_all: Vec::new(),
            tags_any: any(&self.tags, &f.tags_any),
            hidden: Vec::new(),
            impossible: false,
        };
        for (agency, upload) in &f.hidden_uploads {
            if let (Some(&a), Some(&u)) = (
                self.agency.dict.get(agency),
                self.upload_id.dict.get(upload),
            ) {
                c.hidden.push((a, u));
            }
        }
        c.hidden.sort_unstable();
        for t in &f.tags_all {
            match self.tags.dict.get(t) {
                Some(&code) => c.tags_all.push(code),
                // A required tag nobody here has: nothing can pass.
                None => c.impossible = true,
            }
        }
        for l in [
            &c.countries_any,
            &c.agencies_any,
            &c.case_ids_any,
            &c.upload_ids_any,
            &c.media_ids_any,
            &c.tags_any,
        ]
        .into_iter()
        .flatten()
        {
            if l.is_empty() {
                c.impossible = true;
            }
        }
        c
    }
}

/// A filter resolved against one segment's [`MetaIndex`].
pub struct Compiled<'a> {
    idx: &'a MetaIndex,
    /// `Some(codes)`: the value must be one of these (empty = impossible).
    countries_any: Option<Vec<u32>>,
    countries_none: Vec<u32>,
    agencies_any: Option<Vec<u32>>,
    case_ids_any: Option<Vec<u32>>,
    case_ids_none: Vec<u32>,
    upload_ids_any: Option<Vec<u32>>,
    upload_ids_none: Vec<u32>,
    media_ids_none: Vec<u32>,
    media_ids_any: Option<Vec<u32>>,
    victim_identified: Option<bool>,
    captured: (Option<i64>, Option<i64>),
    uploaded: (Option<i64>, Option<i64>),
    tags_all: Vec<u32>,
    tags_any: Option<Vec<u32>>,
    /// (agency, upload) codes of the hidden restricted uploads present here.
    hidden: Vec<(u32, u32)>,
    /// Some condition cannot be met by any point of this segment.
    impossible: bool,
}

fn in_range((a, b): (Option<i64>, Option<i64>), t: i64) -> bool {
    a.is_none_or(|a| t >= a) && b.is_none_or(|b| t < b)
}

/// Offsets whose time is in [after, before), from a sorted column.
fn range_slice(sorted: &[(i64, u32)], (a, b): (Option<i64>, Option<i64>)) -> &[(i64, u32)] {
    let lo = a.map_or(0, |a| sorted.partition_point(|x| x.0 < a));
    let hi = b.map_or(sorted.len(), |b| sorted.partition_point(|x| x.0 < b));
    &sorted[lo..hi.max(lo)]
}

impl<'a> Compiled<'a> {
    /// Whether every point of the segment passes (no condition bites here,
    /// e.g. a visibility predicate whose hidden uploads this segment does
    /// not hold): the search then runs as if unfiltered.
    pub fn accepts_all(&self) -> bool {
        !self.impossible
            && self.countries_any.is_none()
            && self.countries_none.is_empty()
            && self.agencies_any.is_none()
            && self.case_ids_any.is_none()
            && self.case_ids_none.is_empty()
            && self.upload_ids_any.is_none()
            && self.upload_ids_none.is_empty()
            && self.media_ids_none.is_empty()
            && self.victim_identified.is_none()
            && self.captured == (None, None)
            && self.uploaded == (None, None)
            && self.tags_all.is_empty()
            && self.tags_any.is_none()
            && self.hidden.is_empty()
    }

    /// Whether the point at `off` passes (liveness is the caller's business).
    /// A column is read only when a condition is set on it: the graph walk
    /// calls this for every node it visits, and each column read is a cache
    /// miss of its own (a visibility filter alone reads two columns, not ten).
    #[inline]
    pub fn accepts(&self, off: usize) -> bool {
        let ix = self.idx;
        if self.impossible || off >= ix.len() {
            return false;
        }
        let one_of = |set: &Option<Vec<u32>>, col: &[u32]| {
            set.as_ref()
                .is_none_or(|s| col.get(off).is_some_and(|c| s.binary_search(c).is_ok()))
        };
        let none_of = |set: &[u32], col: &[u32]| {
            set.is_empty() || col.get(off).is_some_and(|c| set.binary_search(c).is_err())
        };
        if !one_of(&self.countries_any, &ix.country.codes)
            || !none_of(&self.countries_none, &ix.country.codes)
            || !one_of(&self.agencies_any, &ix.agency.codes)
            || !one_of(&self.case_ids_any, &ix.case_id.codes)
            || !none_of(&self.case_ids_none, &ix.case_id.codes)
            || !one_of(&self.upload_ids_any, &ix.upload_id.codes)
            || !none_of(&self.upload_ids_none, &ix.upload_id.codes)
            || !none_of(&self.media_ids_none, &ix.media_id.codes)
            || !one_of(&self.media_ids_any, &ix.media_id.codes)
        {
            return false;
        }
        if !self.hidden.is_empty() && self.is_hidden(off) {
            return false;
        }
        if self
            .victim_identified
            .is_some_and(|v| v != ix.identified[off])
        {
            return false;
        }
        let timed = |r: (Option<i64>, Option<i64>), col: &[i64]| {
            r == (None, None) || col.get(off).is_some_and(|&t| in_range(r, t))
        };
        if !timed(self.captured, &ix.captured) || !timed(self.uploaded, &ix.uploaded) {
            return false;
        }
        if !self.tags_all.is_empty() || self.tags_any.is_some() {
            let tags = &ix.tags.codes[ix.tag_starts[off] as usize..ix.tag_starts[off + 1] as usize];
            if !self.tags_all.iter().all(|t| tags.contains(t)) {
                return false;
            }
            if let Some(any) = &self.tags_any
                && !tags.iter().any(|t| any.binary_search(t).is_ok())
            {
                return false;
            }
        }
        true
    }

    /// Whether the point is in a hidden restricted upload: its upload is
    /// looked at first (few points share a hidden upload's code), its agency
    /// only then.
    fn is_hidden(&self, off: usize) -> bool {
        let Some(&upload) = self.idx.upload_id.codes.get(off) else {
            return false;
        };
        let agency = || self.idx.agency.codes.get(off).copied();
        if self.hidden.len() > 8 {
            return agency().is_some_and(|a| self.hidden.binary_search(&(a, upload)).is_ok());
        }
        self.hidden
            .iter()
            .any(|&(a, u)| u == upload && agency() == Some(a))
    }

    /// The positive condition that lets the fewest points through: its
    /// offsets are a superset of the passing ones. `None` when there is no
    /// positive condition (only exclusions), i.e. every offset is a candidate.
    fn narrowest(&self) -> Option<(usize, Source<'a>)> {
        let ix: &'a MetaIndex = self.idx;
        let mut best: Option<(usize, Source<'a>)> = None;
        let mut consider = |count: usize, src: Source<'a>| {
            if best.as_ref().is_none_or(|(c, _)| count < *c) {
                best = Some((count, src));
            }
        };
        for (col, set) in [
            (&ix.country, &self.countries_any),
            (&ix.agency, &self.agencies_any),
            (&ix.case_id, &self.case_ids_any),
            (&ix.upload_id, &self.upload_ids_any),
            (&ix.media_id, &self.media_ids_any),
            (&ix.tags, &self.tags_any),
        ] {
            if let Some(codes) = set {
                consider(col.count(codes), Source::Postings(col, codes.clone()));
            }
        }
        for &t in &self.tags_all {
            consider(
                ix.tags.postings[t as usize].len(),
                Source::Postings(&ix.tags, vec![t]),
            );
        }
        if !ix.captured_sorted.is_empty()
            && (self.captured.0.is_some() || self.captured.1.is_some())
        {
            let s = range_slice(&ix.captured_sorted, self.captured);
            consider(s.len(), Source::Sorted(s));
        }
        if !ix.uploaded_sorted.is_empty()
            && (self.uploaded.0.is_some() || self.uploaded.1.is_some())
        {
            let s = range_slice(&ix.uploaded_sorted, self.uploaded);
            consider(s.len(), Source::Sorted(s));
        }
        if let Some(v) = self.victim_identified {
            let count = if v {
                ix.identified_count
            } else {
                ix.len() - ix.identified_count
            };
            consider(count, Source::Flag(v));
        }
        best
    }

    /// Upper bound on how many points pass.
    pub fn estimate(&self) -> usize {
        if self.impossible {
            return 0;
        }
        self.narrowest().map_or(self.idx.len(), |(c, _)| c)
    }

    /// Every passing offset (liveness not checked), ascending.
    pub fn passing(&self) -> Vec<u32> {
        if self.impossible {
            return Vec::new();
        }
        let mut out: Vec<u32> = match self.narrowest() {
            None => (0..self.idx.len() as u32).collect(),
            Some((_, Source::Postings(col, codes))) => codes
                .iter()
                .flat_map(|&c| col.postings[c as usize].iter().copied())
                .collect(),
            Some((_, Source::Sorted(s))) => s.iter().map(|x| x.1).collect(),
            Some((_, Source::Flag(v))) => (0..self.idx.len() as u32)
                .filter(|&i| self.idx.identified[i as usize] == v)
                .collect(),
        };
        out.sort_unstable();
        out.dedup();
        out.retain(|&o| self.accepts(o as usize));
        out
    }
}

enum Source<'a> {
    Postings(&'a Column, Vec<u32>),
    Sorted(&'a [(i64, u32)]),
    Flag(bool),
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    const COUNTRIES: [&str; 5] = ["DE", "FR", "NL", "BR", "US"];
    const TAGS: [&str; 4] = ["indoor", "outdoor", "bedroom", "video-frame"];

    fn random_meta(rng: &mut ChaCha8Rng, i: usize) -> pb::Metadata {
        pb::Metadata {
            media_id: format!("m{}", i / 2),
            upload_id: format!("u{}", rng.random_range(0..6)),
            case_id: format!("c{}", rng.random_range(0..4)),
            country: COUNTRIES[rng.random_range(0..5)].into(),
            agency: format!("a{}", rng.random_range(0..3)),
            captured_at: rng.random_range(0..100),
            uploaded_at: rng.random_range(50..150),
            series_label: String::new(),
            victim_identified: rng.random_bool(0.3),
            tags: TAGS
                .iter()
                .filter(|_| rng.random_bool(0.4))
                .map(|t| t.to_string())
                .collect(),
        }
    }

    fn pick(rng: &mut ChaCha8Rng, pool: &[&str], extra: &str) -> Vec<String> {
        let mut v: Vec<String> = pool
            .iter()
            .filter(|_| rng.random_bool(0.3))
            .map(|s| s.to_string())
            .collect();
        if rng.random_bool(0.1) {
            v.push(extra.into());
        }
        v
    }

    fn random_filter(rng: &mut ChaCha8Rng) -> Filter {
        let maybe = |rng: &mut ChaCha8Rng, lo: i64, hi: i64| {
            rng.random_bool(0.3).then(|| rng.random_range(lo..hi))
        };
        let mut f = Filter {
            countries_any: pick(rng, &COUNTRIES, "SE"),
            countries_none: pick(rng, &COUNTRIES[..2], "IT"),
            agencies_any: pick(rng, &["a0", "a1", "a2"], "zz"),
            case_ids_any: pick(rng, &["c0", "c1", "c2", "c3"], "c9"),
            case_ids_none: pick(rng, &["c0", "c1"], "c8"),
            upload_ids_any: pick(rng, &["u0", "u1", "u2", "u3"], "u8"),
            upload_ids_none: pick(rng, &["u0", "u1", "u2"], "u9"),
            media_ids_none: pick(rng, &["m1", "m2", "m3"], "m999"),
            media_ids_any: if rng.random_bool(0.2) {
                pick(rng, &["m1", "m2", "m3", "m4"], "m998")
            } else {
                Vec::new()
            },
            victim_identified: rng.random_bool(0.3).then(|| rng.random_bool(0.5)),
            captured: (maybe(rng, 0, 50), maybe(rng, 50, 101)),
            uploaded: (maybe(rng, 50, 100), maybe(rng, 100, 151)),
            tags_all: pick(rng, &TAGS[..2], "nope"),
            tags_any: pick(rng, &TAGS, "rare"),
            hidden_uploads: ["a0", "a1", "a2", "zz"]
                .iter()
                .flat_map(|a| {
                    ["u0", "u1", "u2", "u3", "u9"].map(|u| (a.to_string(), u.to_string()))
                })
                .filter(|_| rng.random_bool(0.15))
                .collect(),
        };
        for l in [
            &mut f.countries_any,
            &mut f.countries_none,
            &mut f.agencies_any,
            &mut f.case_ids_any,
            &mut f.upload_ids_any,
            &mut f.media_ids_any,
            &mut f.tags_all,
            &mut f.tags_any,
        ] {
            l.sort();
            l.dedup();
        }
        f.upload_ids_none.sort();
        f.case_ids_none.sort();
        f.media_ids_none.sort();
        f
    }

    /// Property: for random data and random filters, the index agrees with
    /// the reference semantics on every offset, and `passing` lists exactly
    /// the accepted offsets, in mutable (unsorted) and sealed form.
    #[test]
    fn index_evaluation_agrees_with_reference_semantics() {
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        let metas: Vec<pb::Metadata> = (0..400).map(|i| random_meta(&mut rng, i)).collect();
        let mut ix = MetaIndex::default();
        for m in &metas {
            ix.push(m);
        }
        let mut sealed = MetaIndex::default();
        for m in &metas {
            sealed.push(m);
        }
        sealed.seal();
        let mut nonempty = 0;
        for _ in 0..500 {
            let f = random_filter(&mut rng);
            let want: Vec<u32> = (0..metas.len() as u32)
                .filter(|&i| f.matches(&metas[i as usize]))
                .collect();
            for index in [&ix, &sealed] {
                let c = index.compile(&f);
                for (i, m) in metas.iter().enumerate() {
                    assert_eq!(c.accepts(i), f.matches(m), "offset {i}, filter {f:?}");
                }
                assert_eq!(c.passing(), want, "filter {f:?}");
                assert!(c.estimate() >= want.len(), "estimate is an upper bound");
            }
            nonempty += !want.is_empty() as usize;
        }
        assert!(
            nonempty > 50,
            "the random filters should often let something through ({nonempty})"
        );
    }

    #[test]
    fn validation_names_the_field() {
        let bad = |f: pb::Filter| Filter::from_pb(Some(&f)).unwrap_err().to_string();
        let e = bad(pb::Filter {
            countries_any: vec!["DEU".into()],
            ..Default::default()
        });
        assert!(
            e.contains("filter.countries_any[0]") && e.contains("DEU"),
            "{e}"
        );
        let e = bad(pb::Filter {
            countries_none: vec!["de".into()],
            ..Default::default()
        });
        assert!(e.contains("filter.countries_none[0]"), "{e}");
        let e = bad(pb::Filter {
            captured_after: Some(10),
            captured_before: Some(5),
            ..Default::default()
        });
        assert!(
            e.contains("filter.captured_after (10)") && e.contains("filter.captured_before (5)"),
            "{e}"
        );
        let e = bad(pb::Filter {
            uploaded_after: Some(7),
            uploaded_before: Some(7),
            ..Default::default()
        });
        assert!(e.contains("filter.uploaded_after"), "{e}");
        let e = bad(pb::Filter {
            case_ids_any: (0..2000).map(|i| i.to_string()).collect(),
            ..Default::default()
        });
        assert!(e.contains("filter.case_ids_any has 2000 values"), "{e}");
        let e = bad(pb::Filter {
            tags_all: vec![String::new()],
            ..Default::default()
        });
        assert!(e.contains("filter.tags_all[0]"), "{e}");
        assert_eq!(Filter::from_pb(Some(&pb::Filter::default())).unwrap(), None);
        assert_eq!(Filter::from_pb(None).unwrap(), None);
    }
}
