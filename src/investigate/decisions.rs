//! Investigators' decisions about the series of an image collection, and the
//! constraints they put on every later linking.
//!
//! **Durable like writes.** Each `ReviewSeries` request is one record of an
//! append-only, checksummed log, `<data-dir>/series/<collection>.decisions.log`
//! (see `storage::records`), fsynced before the answer. The log is the
//! source of truth: the series state is derived from the data and the log,
//! so a re-link, a restart, a seal or a merge of segments cannot lose a
//! decision. Records hold JSON (a few per request, written rarely, read by
//! people auditing them too).
//!
//! **What a decision constrains**, at media level, so that it outlives the
//! series it was made on:
//!
//! | decision | must-link | cannot-link |
//! | --- | --- | --- |
//! | `CONFIRM_LINK a b` | a–b | |
//! | `REJECT_LINK a b` | | {a} / {b} |
//! | `MERGE s1 s2 ...` | founder(s1)–founder(si) | |
//! | `SPLIT s L` | the media of L together | L / the rest of s then |
//! | `LABEL s`, `MARK_IDENTIFIED s` | | |
//!
//! Grouping first joins must-links, then accepted evidence strongest first,
//! refusing a union that would put both sides of a cannot-link in one series
//! (`union`). Series-level decisions (MERGE, SPLIT, LABEL, MARK_IDENTIFIED)
//! are anchored to the founding media of the series they name: a series id
//! *is* `ser-` + its founder, so the decision follows the series through
//! growth and merges (a merged series keeps the earlier founder's id and the
//! decisions of both).
//!
//! **Conflicts.** A decision that cannot hold together with an earlier one is
//! refused (FAILED_PRECONDITION naming the earlier decision): a must-link
//! between media that a cannot-link (directly, or through other must-links)
//! keeps apart, a cannot-link between media that must-links join, a MERGE of
//! series holding the two sides of a cannot-link, a second MARK_IDENTIFIED of
//! a series with another reference.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::investigate::series::{Review, SeriesRecord, SeriesState};
use crate::investigate::union::{Tag, UnionFind};
use crate::pb;
use crate::storage::fs;
use crate::storage::records::RecordFile;
use crate::storage::versions::DECISIONS;
use crate::validate;

const MAGIC: &[u8; 8] = b"VIDXDEC\0";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    ConfirmLink,
    RejectLink,
    Merge,
    Split,
    Label,
    MarkIdentified,
}

impl Kind {
    pub fn from_pb(k: i32) -> Option<Kind> {
        Some(match pb::DecisionKind::try_from(k).ok()? {
            pb::DecisionKind::ConfirmLink => Kind::ConfirmLink,
            pb::DecisionKind::RejectLink => Kind::RejectLink,
            pb::DecisionKind::Merge => Kind::Merge,
            pb::DecisionKind::Split => Kind::Split,
            pb::DecisionKind::Label => Kind::Label,
            pb::DecisionKind::MarkIdentified => Kind::MarkIdentified,
            pb::DecisionKind::Unspecified => return None,
        })
    }

    pub fn to_pb(self) -> pb::DecisionKind {
        match self {
            Kind::ConfirmLink => pb::DecisionKind::ConfirmLink,
            Kind::RejectLink => pb::DecisionKind::RejectLink,
            Kind::Merge => pb::DecisionKind::Merge,
            Kind::Split => pb::DecisionKind::Split,
            Kind::Label => pb::DecisionKind::Label,
            Kind::MarkIdentified => pb::DecisionKind::MarkIdentified,
        }
    }

    /// Whether the decision changes which media are together (the series
    /// must then be regrouped); LABEL and MARK_IDENTIFIED do not.
    pub fn regroups(self) -> bool {
        !matches!(self, Kind::Label | Kind::MarkIdentified)
    }
}

/// One recorded decision, resolved to media when it was made.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    pub id: u64,
    pub kind: Kind,
    pub reviewer: String,
    /// Unix seconds.
    pub at: i64,
    #[serde(default)]
    pub note: String,
    /// CONFIRM_LINK, REJECT_LINK.
    #[serde(default)]
    pub a: String,
    #[serde(default)]
    pub b: String,
    /// The series named (MERGE: several), as the request named them.
    #[serde(default)]
    pub series: Vec<String>,
    /// Founders of the named series: what series-level decisions hold on to.
    #[serde(default)]
    pub anchors: Vec<String>,
    /// SPLIT: the media that left, and those that stayed then.
    #[serde(default)]
    pub leaving: Vec<String>,
    #[serde(default)]
    pub staying: Vec<String>,
    #[serde(default)]
    pub label: String,
    #[serde(default)]
    pub reference: String,
}

impl Decision {
    /// A short account for messages: `REJECT_LINK #3 of a and b by alice`.
    pub fn describe(&self) -> String {
        let what = match self.kind {
            Kind::ConfirmLink | Kind::RejectLink => format!("of {} and {}", self.a, self.b),
            Kind::Merge => format!("of {}", self.series.join(", ")),
            Kind::Split => format!(
                "of {} ({} media leaving)",
                self.series.join(", "),
                self.leaving.len()
            ),
            Kind::Label => format!("of {} as {:?}", self.series.join(", "), self.label),
            Kind::MarkIdentified => {
                format!(
                    "of {} (reference {:?})",
                    self.series.join(", "),
                    self.reference
                )
            }
        };
        let note = if self.note.is_empty() {
            String::new()
        } else {
            format!(": {:?}", self.note)
        };
        format!(
            "{} #{} {what} by {} at {}{note}",
            self.kind.to_pb().as_str_name(),
            self.id,
            self.reviewer,
            utc(self.at)
        )
    }

    /// The media the decision names (not the SPLIT's staying side).
    pub fn names(&self) -> impl Iterator<Item = &String> {
        [&self.a, &self.b]
            .into_iter()
            .filter(|x| !x.is_empty())
            .chain(&self.anchors)
            .chain(&self.leaving)
    }

    pub fn to_pb(&self) -> pb::DecisionRecord {
        pb::DecisionRecord {
            decision_id: self.id,
            decision: Some(pb::Decision {
                kind: self.kind.to_pb() as i32,
                media_a: self.a.clone(),
                media_b: self.b.clone(),
                series_id: if self.kind == Kind::Merge {
                    String::new()
                } else {
                    self.series.first().cloned().unwrap_or_default()
                },
                series_ids: if self.kind == Kind::Merge {
                    self.series.clone()
                } else {
                    Vec::new()
                },
                media_ids: self.leaving.clone(),
                label: self.label.clone(),
                reference: self.reference.clone(),
                note: String::new(),
            }),
            reviewer: self.reviewer.clone(),
            decided_at: self.at,
            note: self.note.clone(),
            anchors: self.anchors.clone(),
        }
    }
}

/// Unix seconds as `YYYY-MM-DDTHH:MM:SSZ` (civil from days, Howard
/// Hinnant's algorithm), for messages people read.
fn utc(t: i64) -> String {
    let (days, secs) = (t.div_euclid(86_400), t.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + (m <= 2) as i64;
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

/// One logged request: its decisions, applied whole.
#[derive(Serialize, Deserialize)]
struct Entry {
    decisions: Vec<Decision>,
}

/// Where decision logs live: `<data-dir>/series/<collection>.decisions.log`.
#[derive(Clone, Debug)]
pub struct DecisionStore {
    dir: PathBuf,
}

impl DecisionStore {
    pub fn new(dir: PathBuf) -> DecisionStore {
        DecisionStore { dir }
    }

    /// The log of `collection`: never built from a name that breaks the
    /// one name rule (it could walk out of the data directory).
    fn path(&self, collection: &str) -> Result<PathBuf> {
        validate::collection_name("collection", collection)?;
        Ok(self.dir.join(format!("{collection}.decisions.log")))
    }

    /// Every decision about `collection`'s series, oldest first (empty if
    /// none was ever made).
    pub fn load(&self, collection: &str) -> Result<Book> {
        let path = self.path(collection)?;
        if !path.exists() {
            return Ok(Book::default());
        }
        let (_, records) = RecordFile::open(&path, MAGIC, DECISIONS)?;
        let mut decisions = Vec::new();
        for (i, r) in records.iter().enumerate() {
            let e: Entry = serde_json::from_slice(r).map_err(|e| {
                Error::data_loss(&path, format!("record {i} is not a decision entry: {e}"))
            })?;
            decisions.extend(e.decisions);
        }
        Ok(Book::new(decisions))
    }

    /// Appends one request's decisions as one record, fsynced.
    pub fn append(&self, collection: &str, decisions: &[Decision]) -> Result<()> {
        let (mut f, _) = RecordFile::open(&self.path(collection)?, MAGIC, DECISIONS)?;
        let bytes = serde_json::to_vec(&Entry {
            decisions: decisions.to_vec(),
        })
        .map_err(|e| Error::Internal(format!("encoding decisions: {e}")))?;
        f.append(&bytes)
    }

    pub fn remove(&self, collection: &str) -> Result<()> {
        let path = self.path(collection)?;
        match fs::remove_file(&path) {
            Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                Ok(())
            }
            r => r,
        }
    }
}

/// A cannot-link constraint: no series holds media of both sides (the
/// sides are in the media's tags).
#[derive(Clone, Debug)]
struct CannotLink {
    decision: u64,
}

/// The media-level constraints of a set of decisions.
#[derive(Clone, Debug, Default)]
pub struct Constraints {
    /// (a, b, decision): kept together.
    must: Vec<(String, String, u64)>,
    cannot: Vec<CannotLink>,
    /// Cannot-link tags per media.
    tags: HashMap<String, Vec<Tag>>,
    /// Media named by a must-link.
    must_media: BTreeSet<String>,
}

impl Constraints {
    fn build(decisions: &[Decision]) -> Constraints {
        let mut c = Constraints::default();
        for d in decisions {
            c.add(d);
        }
        c
    }

    fn add_must(&mut self, a: &str, b: &str, id: u64) {
        if a != b {
            self.must.push((a.to_string(), b.to_string(), id));
            self.must_media.insert(a.to_string());
            self.must_media.insert(b.to_string());
        }
    }

    fn add_cannot(&mut self, a: Vec<String>, b: Vec<String>, id: u64) {
        // One constraint number per decision side pair.
        let n = self.cannot.len() as u32;
        for (side, list) in [(false, &a), (true, &b)] {
            for m in list {
                self.tags.entry(m.clone()).or_default().push((n, side));
            }
        }
        self.cannot.push(CannotLink { decision: id });
    }

    fn add(&mut self, d: &Decision) {
        match d.kind {
            Kind::ConfirmLink => self.add_must(&d.a, &d.b, d.id),
            Kind::RejectLink => self.add_cannot(vec![d.a.clone()], vec![d.b.clone()], d.id),
            Kind::Merge => {
                for x in d.anchors.iter().skip(1) {
                    self.add_must(&d.anchors[0], x, d.id);
                }
            }
            Kind::Split => {
                self.add_cannot(d.leaving.clone(), d.staying.clone(), d.id);
                for x in d.leaving.iter().skip(1) {
                    self.add_must(&d.leaving[0], x, d.id);
                }
            }
            Kind::Label | Kind::MarkIdentified => {}
        }
    }

    pub fn is_empty(&self) -> bool {
        self.must.is_empty() && self.cannot.is_empty()
    }

    /// The cannot-link tags of a media (empty if none).
    pub fn tags_of(&self, media: &str) -> &[Tag] {
        self.tags.get(media).map_or(&[], Vec::as_slice)
    }

    /// Whether any constraint names the media.
    pub fn touches(&self, media: &str) -> bool {
        self.tags.contains_key(media) || self.must_media.contains(media)
    }

    /// **The decision hook of grouping.** Linking calls it once on the
    /// union-find that becomes the series (`ids[i]` is the media of element
    /// `i`, `index` the reverse), before joining any evidence: it tags the
    /// media that a cannot-link names, so that `uf` refuses every later
    /// union across it, and joins must-linked media. Returns the must-link
    /// unions it made, (a, b, decision id) with a < b: they are evidence
    /// (`EvidenceRecord::decision`).
    pub fn bind(
        &self,
        ids: &[String],
        index: &HashMap<String, u32>,
        uf: &mut UnionFind,
    ) -> Vec<(u32, u32, u64)> {
        if self.is_empty() {
            return Vec::new();
        }
        for (i, id) in ids.iter().enumerate() {
            uf.tag(i as u32, self.tags_of(id));
        }
        let mut out = Vec::new();
        for (a, b, d) in &self.must {
            if let (Some(&x), Some(&y)) = (index.get(a), index.get(b))
                && uf.union(x, y)
            {
                out.push((x.min(y), x.max(y), *d));
            }
        }
        out
    }

    /// Whether an incremental link of an upload must give way to a full
    /// re-link: a decision names one of the media in play, or a member of a
    /// stored series one of them is in (`index`: media -> series of
    /// `state`). With cannot-links the grouping depends on the order of all
    /// edges, which an incremental join does not see; a series no decision
    /// touches was never held apart by one.
    pub fn in_play<'m>(
        &self,
        media: impl IntoIterator<Item = &'m String>,
        state: &SeriesState,
        index: &HashMap<String, usize>,
    ) -> bool {
        if self.is_empty() {
            return false;
        }
        let mut series: BTreeSet<usize> = BTreeSet::new();
        for id in media {
            if self.touches(id) {
                return true;
            }
            if let Some(&si) = index.get(id) {
                series.insert(si);
            }
        }
        series
            .into_iter()
            .any(|si| state.series[si].media_ids.iter().any(|m| self.touches(m)))
    }

    /// Must-link groups: media → (root media), by plain union-find over names.
    fn must_groups(&self) -> HashMap<String, String> {
        let mut parent: HashMap<String, String> = HashMap::new();
        fn find(p: &mut HashMap<String, String>, x: &str) -> String {
            let mut x = x.to_string();
            while let Some(up) = p.get(&x).filter(|u| **u != x).cloned() {
                x = up;
            }
            x
        }
        for (a, b, _) in &self.must {
            let (ra, rb) = (find(&mut parent, a), find(&mut parent, b));
            parent.entry(ra.clone()).or_insert_with(|| ra.clone());
            parent.entry(rb.clone()).or_insert_with(|| rb.clone());
            if ra != rb {
                parent.insert(rb, ra);
            }
        }
        let keys: Vec<String> = parent.keys().cloned().collect();
        keys.into_iter()
            .map(|k| {
                let r = find(&mut parent, &k);
                (k, r)
            })
            .collect()
    }

    /// The tags of the must-link group of each of `media` together.
    fn group_tags<'a>(
        &self,
        groups: &HashMap<String, String>,
        media: impl Iterator<Item = &'a String>,
    ) -> Vec<Tag> {
        let roots: BTreeSet<&String> = media.filter_map(|m| groups.get(m)).collect();
        let mut out: Vec<Tag> = Vec::new();
        let mut add = |m: &str| {
            for &t in self.tags_of(m) {
                if !out.contains(&t) {
                    out.push(t);
                }
            }
        };
        for (m, r) in groups {
            if roots.contains(r) {
                add(m);
            }
        }
        out
    }

    /// The cannot-link that keeping `a` (with its must-links) and `b`
    /// together would break, if any.
    fn breaks_cannot(&self, a: &[String], b: &[String]) -> Option<u64> {
        let groups = self.must_groups();
        let mut ta = self.group_tags(&groups, a.iter());
        let mut tb = self.group_tags(&groups, b.iter());
        for m in a {
            ta.extend_from_slice(self.tags_of(m));
        }
        for m in b {
            tb.extend_from_slice(self.tags_of(m));
        }
        ta.iter()
            .find(|&&(c, s)| tb.contains(&(c, !s)))
            .map(|&(c, _)| self.cannot[c as usize].decision)
    }

    /// The must-link decisions that join `a` and `b` (a path), if any do.
    fn joined_by(&self, a: &str, b: &str) -> Option<Vec<u64>> {
        let mut adj: HashMap<&str, Vec<(&str, u64)>> = HashMap::new();
        for (x, y, d) in &self.must {
            adj.entry(x).or_default().push((y, *d));
            adj.entry(y).or_default().push((x, *d));
        }
        let mut prev: HashMap<&str, (&str, u64)> = HashMap::new();
        let mut queue = VecDeque::from([a]);
        while let Some(x) = queue.pop_front() {
            if x == b {
                let mut path = Vec::new();
                let mut at = b;
                while at != a {
                    let (p, d) = prev[at];
                    path.push(d);
                    at = p;
                }
                path.sort_unstable();
                path.dedup();
                return Some(path);
            }
            for &(y, d) in adj.get(x).map_or(&[][..], Vec::as_slice) {
                if y != a && !prev.contains_key(y) {
                    prev.insert(y, (x, d));
                    queue.push_back(y);
                }
            }
        }
        None
    }
}

/// All decisions about one collection's series and their constraints.
#[derive(Clone, Debug, Default)]
pub struct Book {
    decisions: Vec<Decision>,
    constraints: Constraints,
}

impl Book {
    pub fn new(decisions: Vec<Decision>) -> Book {
        let constraints = Constraints::build(&decisions);
        Book {
            decisions,
            constraints,
        }
    }

    pub fn decisions(&self) -> &[Decision] {
        &self.decisions
    }

    pub fn constraints(&self) -> &Constraints {
        &self.constraints
    }

    pub fn next_id(&self) -> u64 {
        self.decisions.last().map_or(1, |d| d.id + 1)
    }

    fn by_id(&self, id: u64) -> Option<&Decision> {
        self.decisions.iter().find(|d| d.id == id)
    }

    fn conflict(&self, field: &str, d: &Decision, earlier: &[u64]) -> Error {
        let named: Vec<String> = earlier
            .iter()
            .filter_map(|&id| self.by_id(id))
            .map(Decision::describe)
            .collect();
        Error::FailedPrecondition(format!(
            "{field} ({} {}) contradicts the earlier decision {}; a decision is not undone by a contrary one",
            d.kind.to_pb().as_str_name(),
            match d.kind {
                Kind::ConfirmLink | Kind::RejectLink => format!("of {} and {}", d.a, d.b),
                _ => format!("of {}", d.series.join(", ")),
            },
            named.join(" and ")
        ))
    }

    /// Checks `d` against every decision before it and records it (in
    /// memory; the caller logs the request's decisions once all pass).
    /// `members` gives the current members of the series each named series
    /// id stands for.
    pub fn add(
        &mut self,
        field: &str,
        d: Decision,
        members: &dyn Fn(&str) -> Option<Vec<String>>,
    ) -> Result<()> {
        let c = &self.constraints;
        match d.kind {
            Kind::ConfirmLink => {
                if let Some(id) =
                    c.breaks_cannot(std::slice::from_ref(&d.a), std::slice::from_ref(&d.b))
                {
                    return Err(self.conflict(field, &d, &[id]));
                }
            }
            Kind::RejectLink => {
                if let Some(path) = c.joined_by(&d.a, &d.b) {
                    return Err(self.conflict(field, &d, &path));
                }
            }
            Kind::Merge => {
                let sets: Vec<Vec<String>> = d.series.iter().filter_map(|s| members(s)).collect();
                for (i, x) in sets.iter().enumerate() {
                    for y in &sets[i + 1..] {
                        if let Some(id) = c.breaks_cannot(x, y) {
                            return Err(self.conflict(field, &d, &[id]));
                        }
                    }
                }
            }
            Kind::Split => {
                for l in &d.leaving {
                    for s in &d.staying {
                        if let Some(path) = c.joined_by(l, s) {
                            return Err(self.conflict(field, &d, &path));
                        }
                    }
                }
                for x in d.leaving.iter().skip(1) {
                    if let Some(id) = c
                        .breaks_cannot(std::slice::from_ref(&d.leaving[0]), std::slice::from_ref(x))
                    {
                        return Err(self.conflict(field, &d, &[id]));
                    }
                }
            }
            Kind::MarkIdentified => {
                let m: BTreeSet<String> = members(&d.series[0])
                    .unwrap_or_default()
                    .into_iter()
                    .collect();
                let earlier: Vec<u64> = self
                    .decisions
                    .iter()
                    .filter(|e| e.kind == Kind::MarkIdentified && e.reference != d.reference)
                    .filter(|e| e.anchors.iter().any(|a| m.contains(a)))
                    .map(|e| e.id)
                    .collect();
                if !earlier.is_empty() {
                    return Err(self.conflict(field, &d, &earlier));
                }
            }
            Kind::Label => {}
        }
        self.constraints.add(&d);
        self.decisions.push(d);
        Ok(())
    }

    /// Decisions that name a member of `members`, oldest first.
    pub fn about<'a>(
        &'a self,
        members: &'a BTreeSet<String>,
    ) -> impl Iterator<Item = &'a Decision> {
        self.decisions.iter().filter(|d| {
            d.names().any(|m| members.contains(m)) || d.staying.iter().any(|m| members.contains(m))
        })
    }

    /// REJECT_LINK pairs with a side in `members`: (member, other, decision).
    pub fn rejected(&self, members: &BTreeSet<String>) -> Vec<(String, String, u64)> {
        let mut out = Vec::new();
        for d in self.decisions.iter().filter(|d| d.kind == Kind::RejectLink) {
            if members.contains(&d.a) {
                out.push((d.a.clone(), d.b.clone(), d.id));
            } else if members.contains(&d.b) {
                out.push((d.b.clone(), d.a.clone(), d.id));
            }
        }
        out
    }

    /// Derives each series' review (label, identification, last decision
    /// time) from the decisions: a series-level decision applies to the
    /// series that now holds its anchor, so it carries to future members
    /// and through merges.
    pub fn apply_review(&self, series: &mut [SeriesRecord]) {
        let mut at: HashMap<String, usize> = HashMap::new();
        for (i, s) in series.iter().enumerate() {
            for m in &s.media_ids {
                at.insert(m.clone(), i);
            }
        }
        for s in series.iter_mut() {
            s.review = Review::default();
        }
        for d in &self.decisions {
            let hit: BTreeSet<usize> = d.names().filter_map(|m| at.get(m).copied()).collect();
            for &i in &hit {
                let r = &mut series[i].review;
                r.decided_at = r.decided_at.max(d.at);
            }
            let Some(&i) = d.anchors.first().and_then(|a| at.get(a)) else {
                continue;
            };
            match d.kind {
                Kind::Label => series[i].review.label = d.label.clone(),
                Kind::MarkIdentified => {
                    series[i].review.references.insert(d.reference.clone());
                    series[i].victim_identified = true;
                }
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(id: u64, kind: Kind) -> Decision {
        Decision {
            id,
            kind,
            reviewer: "alice".into(),
            at: 1_700_000_000 + id as i64,
            note: String::new(),
            a: String::new(),
            b: String::new(),
            series: vec![],
            anchors: vec![],
            leaving: vec![],
            staying: vec![],
            label: String::new(),
            reference: String::new(),
        }
    }

    fn pair(id: u64, kind: Kind, a: &str, b: &str) -> Decision {
        Decision {
            a: a.into(),
            b: b.into(),
            ..dec(id, kind)
        }
    }

    fn none(_: &str) -> Option<Vec<String>> {
        None
    }

    #[test]
    fn times_read_as_utc() {
        assert_eq!(utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(utc(1_700_000_000), "2023-11-14T22:13:20Z");
    }

    #[test]
    fn contrary_decisions_are_refused_naming_the_earlier_one() {
        let mut book = Book::default();
        book.add("d[0]", pair(1, Kind::RejectLink, "a", "b"), &none)
            .unwrap();
        let e = book
            .add("d[1]", pair(2, Kind::ConfirmLink, "b", "a"), &none)
            .unwrap_err();
        assert!(matches!(e, Error::FailedPrecondition(_)), "{e}");
        let msg = e.to_string();
        assert!(
            msg.contains("d[1]") && msg.contains("REJECT_LINK #1"),
            "{msg}"
        );
        // Through must-links: a–c and c–b confirmed, then a–b rejected.
        let mut book = Book::default();
        book.add("x", pair(1, Kind::ConfirmLink, "a", "c"), &none)
            .unwrap();
        book.add("x", pair(2, Kind::ConfirmLink, "c", "b"), &none)
            .unwrap();
        let msg = book
            .add("x", pair(3, Kind::RejectLink, "a", "b"), &none)
            .unwrap_err()
            .to_string();
        assert!(msg.contains("#1") && msg.contains("#2"), "{msg}");
        // A confirm that would join the two sides through a must-link.
        book.add("x", pair(4, Kind::RejectLink, "a", "z"), &none)
            .unwrap();
        let msg = book
            .add("x", pair(5, Kind::ConfirmLink, "b", "z"), &none)
            .unwrap_err()
            .to_string();
        assert!(msg.contains("REJECT_LINK #4"), "{msg}");
        assert_eq!(book.decisions().len(), 3, "the refused #3 is not kept");
        assert_eq!(book.next_id(), 5);
    }

    #[test]
    fn series_decisions_follow_their_anchor() {
        let mut label = dec(1, Kind::Label);
        label.series = vec!["ser-m1".into()];
        label.anchors = vec!["m1".into()];
        label.label = "S-7".into();
        let mut ident = dec(2, Kind::MarkIdentified);
        ident.series = label.series.clone();
        ident.anchors = label.anchors.clone();
        ident.reference = "VID-1".into();
        let book = Book::new(vec![label, ident]);
        let meta = pb::Metadata {
            uploaded_at: 10,
            ..Default::default()
        };
        let mut s = SeriesRecord::new("m0", &meta, false);
        s.add_media("m1", &meta, false);
        let other = SeriesRecord::new("m5", &meta, false);
        let mut all = vec![other, s];
        book.apply_review(&mut all);
        assert_eq!(all[1].review.label, "S-7");
        assert!(all[1].victim_identified);
        assert_eq!(all[1].review.decided_at, 1_700_000_002);
        assert!(all[0].review.label.is_empty());
        let mut again = dec(3, Kind::MarkIdentified);
        again.series = vec!["ser-m0".into()];
        again.anchors = vec!["m0".into()];
        again.reference = "VID-2".into();
        let members = |_: &str| Some(vec!["m0".to_string(), "m1".to_string()]);
        let mut book = book;
        let msg = book.add("d", again, &members).unwrap_err().to_string();
        assert!(msg.contains("MARK_IDENTIFIED #2"), "{msg}");
    }
}
