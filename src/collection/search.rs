//! The query path of a collection: k-NN searches over every segment of one
//! moment, merged into hits with their ids and metadata, optionally grouped
//! by media; exact search; reads by id.

use rayon::prelude::*;

use crate::collection::segments::{Seg, Segments};
use crate::collection::{Collection, Hit, Query, SearchOptions};
use crate::error::{Error, Result};
use crate::index::filter::Filter;
use crate::pb;
use crate::validate;

/// Largest candidate pool `group_by_media` widens to.
const MAX_GROUP_POOL: usize = 4096;

/// A query made ready to search: its prepared vector, the stored point it
/// came from (left out of its own results) and the filter it runs under.
type Resolved = (Vec<f32>, Option<(Seg, usize)>, Option<Filter>);

impl Collection {
    /// Runs queries (in parallel); one result list per query, ascending distance.
    pub fn search(
        &self,
        queries: &[Query],
        k: usize,
        ef: usize,
        opts: &SearchOptions,
    ) -> Result<Vec<Vec<Hit>>> {
        self.check()?;
        if self.config.metric == crate::index::distance::Metric::Hamming {
            return self.search_codes(queries, k, opts);
        }
        let segs = self.snapshot();
        let all = segs.all();
        let resolved = queries
            .iter()
            .enumerate()
            .map(|(i, q)| self.resolve_query(&segs, i, q, opts))
            .collect::<Result<Vec<Resolved>>>()?;
        resolved
            .par_iter()
            .map(|q| self.search_one(&all, q, k, ef, opts))
            .collect()
    }

    /// Checks query `i` and makes it ready: a vector is validated and
    /// prepared; a point id is looked up, and with `exclude_same_upload` /
    /// `exclude_same_case` its upload / case is added to the filter.
    fn resolve_query(
        &self,
        segs: &Segments,
        i: usize,
        q: &Query,
        opts: &SearchOptions,
    ) -> Result<Resolved> {
        match q {
            Query::Vector(v) => {
                validate::vector(
                    &format!("queries[{i}].vector.values"),
                    v,
                    self.config.dim,
                    self.config.metric.to_pb(),
                )?;
                let mut v = v.clone();
                self.config.metric.prepare(&mut v);
                Ok((v, None, opts.filter.clone()))
            }
            Query::PointId(id) => {
                validate::point_id(&format!("queries[{i}].point_id"), id)?;
                let (seg, off) = self.locate_visible(segs, id, opts)?;
                let filter = point_filter(&seg, off, opts)?;
                Ok((seg.vector(off)?, Some((seg, off)), filter))
            }
            Query::Bits(_) => Err(Error::invalid(format!(
                "queries[{i}] is a hash; collection {:?} is searched by vector or point_id",
                self.config.name
            ))),
        }
    }

    /// Where stored point `id` is, for a query by point id; a point the
    /// caller may not see (`opts.filter`'s hidden uploads) is one that
    /// does not exist.
    pub(super) fn locate_visible(
        &self,
        segs: &Segments,
        id: &str,
        opts: &SearchOptions,
    ) -> Result<(Seg, usize)> {
        let not_found = || Error::PointNotFound {
            collection: self.config.name.clone(),
            id: id.to_string(),
        };
        let (seg, off) = segs.locate(id)?.ok_or_else(not_found)?;
        if let Some(f) = &opts.filter
            && !f.hidden_uploads.is_empty()
            && f.hides(&seg.describe(off)?.1)
        {
            return Err(not_found());
        }
        Ok((seg, off))
    }

    /// One query over every segment. With `group_by_media` the candidate
    /// pool widens until it holds k distinct media (or cannot grow).
    fn search_one(
        &self,
        all: &[Seg],
        (v, exclude, filter): &Resolved,
        k: usize,
        ef: usize,
        opts: &SearchOptions,
    ) -> Result<Vec<Hit>> {
        let mut pool = if opts.group_by_media {
            (4 * k).clamp(40, MAX_GROUP_POOL)
        } else {
            k
        };
        loop {
            let mut cands: Vec<(usize, usize, f32)> = Vec::new();
            for (si, seg) in all.iter().enumerate() {
                let ex = exclude
                    .as_ref()
                    .filter(|(s, _)| s.same(seg))
                    .map(|(_, o)| *o);
                for (off, r) in seg.search(v, pool, ef.max(pool), ex, filter.as_ref())? {
                    cands.push((si, off, r));
                }
            }
            let mut hits = self.resolve(all, cands, pool)?;
            let saturated = hits.len() >= pool;
            if let Some(max) = opts.max_distance {
                // Hits come nearest first: past the limit, all are farther.
                hits.retain(|h| h.distance <= max);
                if hits.len() < pool {
                    return Ok(if opts.group_by_media {
                        group_by_media(hits, k)
                    } else {
                        hits
                    });
                }
            }
            if !opts.group_by_media {
                return Ok(hits);
            }
            let grouped = group_by_media(hits, k);
            if grouped.len() >= k || !saturated || pool >= MAX_GROUP_POOL {
                return Ok(grouped);
            }
            pool = (pool * 4).min(MAX_GROUP_POOL);
        }
    }

    /// Exact k-NN by brute force over every segment; the ground truth for
    /// recall measurements.
    pub fn exact_search(
        &self,
        query: &[f32],
        k: usize,
        filter: Option<&Filter>,
    ) -> Result<Vec<Hit>> {
        let mut v = query.to_vec();
        self.config.metric.prepare(&mut v);
        let all = self.snapshot().all();
        let mut cands = Vec::new();
        for (si, seg) in all.iter().enumerate() {
            for (off, r) in seg.exact_search(&v, k, filter)? {
                cands.push((si, off, r));
            }
        }
        self.resolve(&all, cands, k)
    }

    /// Merges per-segment candidates: ascending rank, one hit per id (an id
    /// being replaced can briefly be live in two segments), at most k.
    fn resolve(
        &self,
        all: &[Seg],
        mut cands: Vec<(usize, usize, f32)>,
        k: usize,
    ) -> Result<Vec<Hit>> {
        cands.sort_by(|a, b| a.2.total_cmp(&b.2));
        let mut hits: Vec<Hit> = Vec::with_capacity(k);
        for (si, off, r) in cands {
            if hits.len() == k {
                break;
            }
            let (id, metadata) = all[si].describe(off)?;
            if hits.iter().any(|h| h.id == id) {
                continue;
            }
            hits.push(Hit {
                id,
                distance: self.config.metric.from_rank(r),
                metadata,
                matched_faces: 0,
                quality: 0,
            });
        }
        Ok(hits)
    }

    pub fn get(&self, ids: &[String]) -> Result<Vec<pb::Point>> {
        self.check()?;
        let segs = self.snapshot();
        let mut out = Vec::new();
        for id in ids {
            if let Some((seg, off)) = segs.locate(id)?
                && let Some(p) = seg.point(id, off)?
            {
                out.push(p);
            }
        }
        Ok(out)
    }
}

/// What groups hits: a media id, or for a point without one the point
/// itself. Two kinds, so no media id (whatever bytes it holds) can equal a
/// point's key.
#[derive(Hash, PartialEq, Eq)]
enum GroupKey {
    Media(String),
    Point(String),
}

/// The filter of a point-id query: the request's, plus the query point's
/// upload / case with `exclude_same_upload` / `exclude_same_case`.
pub(super) fn point_filter(seg: &Seg, off: usize, opts: &SearchOptions) -> Result<Option<Filter>> {
    if !(opts.exclude_same_upload || opts.exclude_same_case) {
        return Ok(opts.filter.clone());
    }
    let (_, m) = seg.describe(off)?;
    let mut f = opts.filter.clone().unwrap_or_default();
    if opts.exclude_same_upload && !m.upload_id.is_empty() {
        f.upload_ids_none.push(m.upload_id.clone());
        f.upload_ids_none.sort();
        f.upload_ids_none.dedup();
    }
    if opts.exclude_same_case && !m.case_id.is_empty() {
        f.case_ids_none.push(m.case_id.clone());
        f.case_ids_none.sort();
        f.case_ids_none.dedup();
    }
    Ok((!f.is_empty()).then_some(f))
}

/// Keeps the best hit of each media (hits arrive best first) with how many
/// of the media's points were among them; at most `k` media. A point without
/// a media id counts as its own media.
pub(super) fn group_by_media(hits: Vec<Hit>, k: usize) -> Vec<Hit> {
    let mut out: Vec<Hit> = Vec::new();
    let mut index: std::collections::HashMap<GroupKey, usize> = std::collections::HashMap::new();
    for h in hits {
        let key = if h.metadata.media_id.is_empty() {
            GroupKey::Point(h.id.clone())
        } else {
            GroupKey::Media(h.metadata.media_id.clone())
        };
        match index.get(&key) {
            Some(&i) => out[i].matched_faces += 1,
            None => {
                index.insert(key, out.len());
                out.push(Hit {
                    matched_faces: 1,
                    ..h
                });
            }
        }
    }
    out.truncate(k);
    out
}
