//! The read view for batch work: one moment of a collection, read by
//! (segment, offset) without resolving metadata per hit, which is what
//! linking and triage need to run millions of searches.

use std::borrow::Cow;

use crate::collection::Collection;
use crate::collection::segments::Seg;
use crate::error::{Error, Result};
use crate::index::filter::Filter;
use crate::pb;

impl Collection {
    /// A consistent view of the collection for batch work (linking, triage):
    /// it holds the segment list of this moment, so a long job sees one
    /// state while writes, seals and merges go on.
    pub fn view(&self) -> Result<View> {
        self.view_as(None)
    }

    /// A view that sees only what `visibility` (a caller's visibility
    /// predicate, see `collection::restrict`) lets through: every listing
    /// and search of the view applies it.
    pub fn view_as(&self, visibility: Option<Filter>) -> Result<View> {
        self.check()?;
        Ok(View {
            all: self.snapshot().all(),
            metric: self.config.metric,
            dim: self.config.dim as usize,
            visibility,
        })
    }
}

fn live_offsets(bits: &[bool]) -> Vec<usize> {
    bits.iter()
        .enumerate()
        .filter(|(_, l)| **l)
        .map(|(o, _)| o)
        .collect()
}

/// A point of a [`View`]: segment (newest first) and offset in it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PointRef {
    pub seg: u32,
    pub off: u32,
}

/// One moment of a collection, read without resolving metadata per hit:
/// what batch jobs (linking, triage) need to run millions of searches.
pub struct View {
    all: Vec<Seg>,
    metric: crate::index::distance::Metric,
    dim: usize,
    /// Applied to every listing and search, beside the caller's filter.
    visibility: Option<Filter>,
}

impl View {
    pub fn metric(&self) -> crate::index::distance::Metric {
        self.metric
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Every live point passing `filter`, with its id and metadata; one
    /// entry per id (the newest copy, should an id briefly live in two
    /// segments while it is being replaced).
    pub fn points(&self, filter: Option<&Filter>) -> Result<Vec<(PointRef, String, pb::Metadata)>> {
        let narrowed = self.narrowed(filter);
        let filter = narrowed.as_deref();
        let mut seen = std::collections::HashSet::new();
        let mut out = Vec::new();
        for (si, seg) in self.all.iter().enumerate() {
            let offsets: Vec<usize> = match (seg, filter) {
                (Seg::Mutable(m), Some(f)) => m.passing(f),
                (Seg::Sealed(s), Some(f)) => s.passing(f)?,
                (Seg::Mutable(m), None) => live_offsets(&m.live_bits()),
                (Seg::Sealed(s), None) => live_offsets(&s.live_bits()),
            };
            for off in offsets {
                let (id, meta) = seg.describe(off)?;
                if !seen.insert(id.clone()) {
                    continue;
                }
                let r = PointRef {
                    seg: si as u32,
                    off: off as u32,
                };
                out.push((r, id, meta));
            }
        }
        Ok(out)
    }

    /// The live point with this id, if any (and if the view may see it).
    pub fn locate(&self, id: &str) -> Result<Option<PointRef>> {
        for (si, seg) in self.all.iter().enumerate() {
            if let Some(off) = seg.lookup(id)? {
                if let Some(v) = &self.visibility
                    && v.hides(&seg.describe(off)?.1)
                {
                    return Ok(None);
                }
                return Ok(Some(PointRef {
                    seg: si as u32,
                    off: off as u32,
                }));
            }
        }
        Ok(None)
    }

    /// Id and metadata of a point.
    pub fn describe(&self, p: PointRef) -> Result<(String, pb::Metadata)> {
        self.seg(p)?.describe(p.off as usize)
    }

    /// The stored (prepared) vector of a point.
    pub fn vector(&self, p: PointRef) -> Result<Vec<f32>> {
        self.seg(p)?.vector(p.off as usize)
    }

    /// The metric's distance between two stored points (sealed vectors are
    /// compared in place, without copies).
    pub fn distance(&self, a: PointRef, b: PointRef) -> Result<f32> {
        let m = self.metric;
        match (self.seg(a)?, self.seg(b)?) {
            (Seg::Sealed(x), Seg::Sealed(y)) => {
                let (u, v) = (x.vector_at(a.off as usize)?, y.vector_at(b.off as usize)?);
                Ok(m.from_rank(m.rank(&u, &v)))
            }
            _ => Ok(m.from_rank(m.rank(&self.vector(a)?, &self.vector(b)?))),
        }
    }

    /// Approximate k-NN over live points passing `filter`, `exclude` left
    /// out; (point, distance) by ascending distance. `query` must already be
    /// prepared for the metric (stored vectors are).
    pub fn search(
        &self,
        query: &[f32],
        k: usize,
        ef: usize,
        exclude: Option<PointRef>,
        filter: Option<&Filter>,
    ) -> Result<Vec<(PointRef, f32)>> {
        let narrowed = self.narrowed(filter);
        let filter = narrowed.as_deref();
        let mut cands = Vec::new();
        for (si, seg) in self.all.iter().enumerate() {
            let ex = exclude
                .filter(|e| e.seg as usize == si)
                .map(|e| e.off as usize);
            for (off, r) in seg.search(query, k, ef.max(k), ex, filter)? {
                let p = PointRef {
                    seg: si as u32,
                    off: off as u32,
                };
                cands.push((p, r));
            }
        }
        crate::index::planner::top_k(&mut cands, k);
        Ok(cands
            .into_iter()
            .map(|(p, r)| (p, self.metric.from_rank(r)))
            .collect())
    }

    /// `filter` with the view's visibility predicate; borrowed unless both
    /// are set (a scoped job of a caller who may not see everything).
    fn narrowed<'a>(&'a self, filter: Option<&'a Filter>) -> Option<Cow<'a, Filter>> {
        match (filter, &self.visibility) {
            (None, None) => None,
            (None, Some(v)) => Some(Cow::Borrowed(v)),
            (Some(f), None) => Some(Cow::Borrowed(f)),
            (Some(f), Some(v)) => Filter::and_visible(Some(f.clone()), Some(v)).map(Cow::Owned),
        }
    }

    fn seg(&self, p: PointRef) -> Result<&Seg> {
        self.all
            .get(p.seg as usize)
            .ok_or_else(|| Error::Internal(format!("no segment {} in this view", p.seg)))
    }
}
