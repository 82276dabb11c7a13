//! Union-find with cannot-link tags: the step where edges become series.
//!
//! A media that a cannot-link constraint names (REJECT_LINK, SPLIT; see
//! `decisions`) carries a [`Tag`]: the constraint and its side. A group
//! holds the tags of its members, and a union that would put both sides of
//! one constraint into one group is refused, whatever the evidence. Linking
//! joins accepted edges strongest first, so a rejected pair ends up apart
//! and each of its media keeps the material it is most strongly linked to.
//!
//! **What a grouping must do to honour decisions** (the whole hook, for
//! whoever rewrites linking):
//!
//! 1. build the union-find whose groups become the series with this type;
//! 2. call `Constraints::bind(ids, index, &mut uf)` on it before joining
//!    any evidence, and record the unions it returns as
//!    `EvidenceRecord::decision`;
//! 3. make every later union into that union-find through [`UnionFind::union`]
//!    (it refuses across a cannot-link; a join that bypasses it, e.g. by
//!    copying another union-find's roots, would undo a REJECT_LINK or SPLIT);
//! 4. in an incremental link, give way to a full re-link when
//!    `Constraints::in_play` says a decision is in play.
//!
//! Union-finds used for other things (scenes, identities) need none of it.

use std::collections::HashMap;

/// (constraint number, side): a media on side `false` may never share a
/// group with one on side `true` of the same constraint.
pub type Tag = (u32, bool);

/// Union-find with path halving; groups may carry cannot-link tags.
pub struct UnionFind {
    parent: Vec<u32>,
    /// Tags of each group, by root; untagged groups are absent.
    tags: HashMap<u32, Vec<Tag>>,
    /// Unions refused because of tags.
    pub refused: usize,
}

/// Whether tag sets `a` and `b` hold both sides of one constraint.
fn clash(a: &[Tag], b: &[Tag]) -> bool {
    a.iter().any(|&(c, s)| b.contains(&(c, !s)))
}

impl UnionFind {
    pub fn new(n: usize) -> UnionFind {
        UnionFind {
            parent: (0..n as u32).collect(),
            tags: HashMap::new(),
            refused: 0,
        }
    }

    pub fn find(&mut self, mut x: u32) -> u32 {
        while self.parent[x as usize] != x {
            let p = self.parent[self.parent[x as usize] as usize];
            self.parent[x as usize] = p;
            x = p;
        }
        x
    }

    /// Adds cannot-link tags to the group of `x`.
    pub fn tag(&mut self, x: u32, tags: &[Tag]) {
        if tags.is_empty() {
            return;
        }
        let r = self.find(x);
        let t = self.tags.entry(r).or_default();
        for &tag in tags {
            if !t.contains(&tag) {
                t.push(tag);
            }
        }
    }

    /// Whether any group is tagged (constraints are in play).
    pub fn constrained(&self) -> bool {
        !self.tags.is_empty()
    }

    /// Joins the groups of a and b; false if they were one already or if
    /// the union would break a cannot-link constraint (counted in `refused`).
    pub fn union(&mut self, a: u32, b: u32) -> bool {
        let (ra, rb) = (self.find(a), self.find(b));
        if ra == rb {
            return false;
        }
        if let (Some(ta), Some(tb)) = (self.tags.get(&ra), self.tags.get(&rb))
            && clash(ta, tb)
        {
            self.refused += 1;
            return false;
        }
        let (lo, hi) = (ra.min(rb), ra.max(rb));
        self.parent[hi as usize] = lo;
        if let Some(moved) = self.tags.remove(&hi) {
            let t = self.tags.entry(lo).or_default();
            for tag in moved {
                if !t.contains(&tag) {
                    t.push(tag);
                }
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tagged_groups_never_join_across_a_constraint() {
        // 0 and 3 must stay apart; 1-2 bridge them.
        let mut uf = UnionFind::new(5);
        uf.tag(0, &[(0, false)]);
        uf.tag(3, &[(0, true)]);
        assert!(uf.union(0, 1));
        assert!(uf.union(2, 3));
        assert!(!uf.union(1, 2), "the bridge would join the rejected pair");
        assert_eq!(uf.refused, 1);
        assert!(uf.union(4, 1));
        assert_eq!(uf.find(4), uf.find(0));
        assert_ne!(uf.find(0), uf.find(3));
        // Tags follow the group: 4 now also may not join 3.
        assert!(!uf.union(4, 3));
    }
}
