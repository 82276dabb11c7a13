//! A collection's segment list at one moment, the one interface over both
//! kinds of segment, and how a write is applied to the list (live writes and
//! log replay alike).

use std::sync::Arc;

use crate::collection::config::Config;
use crate::error::{Error, Result};
use crate::index::filter::Filter;
use crate::pb;
use crate::segment::mutable::{MutableSegment, Prepared};
use crate::segment::sealed::SealedSegment;

/// A segment of either kind, for code that treats them alike.
#[derive(Clone)]
pub(super) enum Seg {
    Mutable(Arc<MutableSegment>),
    Sealed(Arc<SealedSegment>),
}

impl Seg {
    pub(super) fn lookup(&self, id: &str) -> Result<Option<usize>> {
        match self {
            Seg::Mutable(m) => Ok(m.lookup(id)),
            Seg::Sealed(s) => s.lookup(id),
        }
    }

    /// Tombstones `id` at `off`; true if it was live.
    pub(super) fn kill(&self, id: &str, off: usize) -> bool {
        match self {
            Seg::Mutable(m) => m.delete(id),
            Seg::Sealed(s) => s.kill(off),
        }
    }

    pub(super) fn search(
        &self,
        q: &[f32],
        k: usize,
        ef: usize,
        exclude: Option<usize>,
        filter: Option<&Filter>,
    ) -> Result<Vec<(usize, f32)>> {
        match self {
            Seg::Mutable(m) => Ok(m.search(q, k, ef, exclude, filter)),
            Seg::Sealed(s) => s.search(q, k, ef, exclude, filter),
        }
    }

    pub(super) fn exact_search(
        &self,
        q: &[f32],
        k: usize,
        filter: Option<&Filter>,
    ) -> Result<Vec<(usize, f32)>> {
        match self {
            Seg::Mutable(m) => Ok(m.exact_search(q, k, None, filter)),
            Seg::Sealed(s) => s.exact_search(q, k, None, filter),
        }
    }

    pub(super) fn describe(&self, off: usize) -> Result<(String, pb::Metadata)> {
        match self {
            Seg::Mutable(m) => m
                .describe(off)
                .ok_or_else(|| Error::Internal(format!("offset {off} missing in mutable segment"))),
            Seg::Sealed(s) => Ok((s.id_at(off)?.to_owned(), s.metadata_at(off)?)),
        }
    }

    pub(super) fn point(&self, id: &str, off: usize) -> Result<Option<pb::Point>> {
        match self {
            Seg::Mutable(m) => Ok(m.get(id)),
            Seg::Sealed(s) => s.point_at(off).map(Some),
        }
    }

    pub(super) fn vector(&self, off: usize) -> Result<Vec<f32>> {
        match self {
            Seg::Mutable(m) => m
                .vector_at(off)
                .ok_or_else(|| Error::Internal(format!("offset {off} missing in mutable segment"))),
            Seg::Sealed(s) => Ok(s.vector_at(off)?.into_owned()),
        }
    }

    /// Exact Hamming search of a perceptual-hash segment.
    pub(super) fn search_codes(
        &self,
        p: &crate::segment::bits::Probe<'_>,
        exclude: Option<usize>,
        min_quality: u8,
        filter: Option<&Filter>,
    ) -> Result<Vec<(usize, u32)>> {
        match self {
            Seg::Mutable(m) => Ok(m.search_codes(p, exclude, min_quality, filter)),
            Seg::Sealed(s) => s.search_codes(p, exclude, min_quality, filter),
        }
    }

    /// The code and quality at an offset of a perceptual-hash segment.
    pub(super) fn code(&self, off: usize) -> Result<(Vec<u64>, u8)> {
        match self {
            Seg::Mutable(m) => m
                .code_at(off)
                .ok_or_else(|| Error::Internal(format!("offset {off} missing in mutable segment"))),
            Seg::Sealed(s) => s.code_at(off).map(|(c, q)| (c.to_vec(), q)),
        }
    }

    pub(super) fn same(&self, other: &Seg) -> bool {
        match (self, other) {
            (Seg::Mutable(a), Seg::Mutable(b)) => Arc::ptr_eq(a, b),
            (Seg::Sealed(a), Seg::Sealed(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }
}

/// The segment list at one moment; replaced whole, never edited in place.
pub(super) struct Segments {
    pub(super) mutable: Arc<MutableSegment>,
    pub(super) frozen: Option<Arc<MutableSegment>>,
    /// Oldest first.
    pub(super) sealed: Vec<Arc<SealedSegment>>,
}

impl Segments {
    /// Newest first: where a live id is found first is where it lives.
    pub(super) fn all(&self) -> Vec<Seg> {
        let mut v = vec![Seg::Mutable(self.mutable.clone())];
        if let Some(f) = &self.frozen {
            v.push(Seg::Mutable(f.clone()));
        }
        v.extend(self.sealed.iter().rev().map(|s| Seg::Sealed(s.clone())));
        v
    }

    pub(super) fn locate(&self, id: &str) -> Result<Option<(Seg, usize)>> {
        for seg in self.all() {
            if let Some(off) = seg.lookup(id)? {
                return Ok(Some((seg, off)));
            }
        }
        Ok(None)
    }
}

/// An empty mutable segment with the collection's settings.
pub(super) fn new_mutable(config: &Config) -> MutableSegment {
    MutableSegment::new(
        config.dim as usize,
        config.metric,
        config.m as usize,
        config.ef_construction as usize,
    )
}

/// Inserts into the mutable segment, then tombstones the versions the batch
/// replaces in older segments (new first, so an id is never briefly absent;
/// searches de-duplicate the overlap).
pub(super) fn apply_upserts(segs: &Segments, prepared: Vec<Prepared>) -> Result<()> {
    let ids: Vec<String> = prepared.iter().map(|p| p.id.clone()).collect();
    let base = segs.mutable.next_offset();
    segs.mutable.index(base, &prepared);
    segs.mutable.commit(base, prepared);
    let older: Vec<Seg> = segs.all().into_iter().skip(1).collect();
    if !older.is_empty() {
        for id in &ids {
            for seg in &older {
                if let Some(off) = seg.lookup(id)? {
                    seg.kill(id, off);
                }
            }
        }
    }
    Ok(())
}

/// Tombstones the live versions of `ids`; returns how many there were.
pub(super) fn apply_deletes(segs: &Segments, ids: &[String]) -> Result<usize> {
    let mut n = 0;
    for id in ids {
        if let Some((seg, off)) = segs.locate(id)?
            && seg.kill(id, off)
        {
            n += 1;
        }
    }
    Ok(n)
}
