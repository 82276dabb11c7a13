//! Queries of a perceptual-hash collection: exact Hamming search over every
//! segment of one moment (each segment's planner picks a scan or its
//! multi-index), merged into hits with ids, metadata and quality.

use rayon::prelude::*;

use crate::collection::search::{group_by_media, point_filter};
use crate::collection::segments::{Seg, Segments};
use crate::collection::{Collection, DEFAULT_MIN_QUALITY, Hit, Query, SearchOptions};
use crate::error::{Error, Result};
use crate::index::filter::Filter;
use crate::index::hamming::words_of;
use crate::segment::bits::Probe;
use crate::validate;

/// Largest candidate pool `group_by_media` asks of each segment.
const MAX_GROUP_POOL: usize = 4096;

/// A hash query made ready: its code, the stored point it came from (left
/// out of its own results) and its filter.
type Resolved = (Vec<u64>, Option<(Seg, usize)>, Option<Filter>);

impl Collection {
    /// Runs hash queries (in parallel); one result list per query,
    /// ascending distance, then id order of storage.
    pub(super) fn search_codes(
        &self,
        queries: &[Query],
        k: usize,
        opts: &SearchOptions,
    ) -> Result<Vec<Vec<Hit>>> {
        let segs = self.snapshot();
        let all = segs.all();
        let resolved = queries
            .iter()
            .enumerate()
            .map(|(i, q)| self.resolve_code(&segs, i, q, opts))
            .collect::<Result<Vec<Resolved>>>()?;
        let min_quality = opts.min_quality.unwrap_or(DEFAULT_MIN_QUALITY).min(100) as u8;
        // A radius below 0 admits nothing; a fraction rounds down (Hamming
        // distances are whole numbers).
        let radius = match opts.max_distance {
            Some(d) if d < 0.0 => return Ok(vec![Vec::new(); queries.len()]),
            Some(d) => Some(d.floor().min(self.config.dim as f32) as u32),
            None => None,
        };
        let pool = if opts.group_by_media {
            (4 * k).clamp(40, MAX_GROUP_POOL)
        } else {
            k
        };
        resolved
            .par_iter()
            .map(|(code, exclude, filter)| {
                let probe = Probe {
                    query: code,
                    radius,
                    k: pool,
                    filter: None,
                };
                let mut cands: Vec<(u32, usize, usize)> = Vec::new();
                for (si, seg) in all.iter().enumerate() {
                    let ex = exclude
                        .as_ref()
                        .filter(|(s, _)| s.same(seg))
                        .map(|(_, o)| *o);
                    for (off, d) in seg.search_codes(&probe, ex, min_quality, filter.as_ref())? {
                        cands.push((d, si, off));
                    }
                }
                let hits = self.resolve_codes(&all, cands, pool)?;
                Ok(if opts.group_by_media {
                    group_by_media(hits, k)
                } else {
                    hits
                })
            })
            .collect()
    }

    /// Checks hash query `i` and makes it ready.
    fn resolve_code(
        &self,
        segs: &Segments,
        i: usize,
        q: &Query,
        opts: &SearchOptions,
    ) -> Result<Resolved> {
        match q {
            Query::Bits(b) => {
                validate::bits(&format!("queries[{i}].bits"), b, self.config.dim)?;
                Ok((words_of(b), None, opts.filter.clone()))
            }
            Query::PointId(id) => {
                validate::point_id(&format!("queries[{i}].point_id"), id)?;
                let (seg, off) = self.locate_visible(segs, id, opts)?;
                let filter = point_filter(&seg, off, opts)?;
                Ok((seg.code(off)?.0, Some((seg, off)), filter))
            }
            Query::Vector(_) => Err(Error::invalid(format!(
                "queries[{i}] is a vector; collection {:?} is a PERCEPTUAL_HASH collection: query by bits or point_id",
                self.config.name
            ))),
        }
    }

    /// Merges per-segment candidates `(distance, segment, offset)`: one hit
    /// per id (an id being replaced can briefly be live in two segments),
    /// at most k.
    fn resolve_codes(
        &self,
        all: &[Seg],
        mut cands: Vec<(u32, usize, usize)>,
        k: usize,
    ) -> Result<Vec<Hit>> {
        cands.sort_unstable();
        let mut hits: Vec<Hit> = Vec::with_capacity(k.min(cands.len()));
        for (d, si, off) in cands {
            if hits.len() == k {
                break;
            }
            let (id, metadata) = all[si].describe(off)?;
            if hits.iter().any(|h| h.id == id) {
                continue;
            }
            hits.push(Hit {
                id,
                distance: d as f32,
                metadata,
                matched_faces: 0,
                quality: all[si].code(off)?.1 as u32,
            });
        }
        Ok(hits)
    }
}
