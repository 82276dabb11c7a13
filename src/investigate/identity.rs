//! Faces grouped into identities, and the role each identity plays in the
//! material: what lets a victim's face join scenes that look nothing alike
//! without letting an adult or a bystander who recurs in unrelated material
//! glue it together.
//!
//! **Identities.** Every face looks up its nearest faces; pairs within the
//! face threshold (faces of the same media left out) are candidate edges. An
//! edge joins two faces into one identity only if it is guarded as image
//! edges are: the two faces share a neighbour (a triangle) or are each
//! other's nearest face. A lone match between two people does not merge
//! their identities.
//!
//! **Roles.** Linking first groups media by images alone into *scene
//! groups*. Counts are of distinct *pictures*: near-duplicates (re-encodes,
//! crops) of one picture count once. In each group an identity is a
//! *subject* when it shows on at least half of the group's pictures with
//! faces; it is *anchored* in a group where it is a subject of two or more
//! pictures (it recurs within one coherent scene: a person the scene is
//! about). A group's *primary* identity is its subject with the most
//! anchored pictures overall. An identity is *recurring* when it shows in
//! groups whose primaries are two or more different anchored identities:
//! an adult or a bystander seen beside several victims.
//!
//! **Face joins.** Two scene groups are joined through a face edge of
//! identity I only when the groups agree on whom they are about (each
//! group's primary is a subject of the other; a group of one picture is
//! about whoever it shows, so its primary being a subject of the other
//! group suffices), I is the primary of one of
//! them and anchored in one of them (a lone picture attaches to a scene,
//! never to another lone picture), and I is not recurring. The same person
//! seen elsewhere is reported as a relation ("same person in series A and
//! B"), a lead, not a merge.

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::collection::PointRef;
use crate::investigate::graph::shared;
use crate::investigate::union::UnionFind;

/// The faces of a run and the candidate edges between them.
#[derive(Clone, Default)]
pub struct FaceSet {
    /// Per face: its point in the face view.
    pub refs: Vec<PointRef>,
    /// Per face: its point id.
    pub ids: Vec<String>,
    /// Per face: its media (index into the run's media table).
    pub media: Vec<u32>,
    /// Face pairs within the face threshold, faces of different media:
    /// (a, b, distance) with a < b, one entry per pair.
    pub edges: Vec<(u32, u32, f32)>,
}

impl FaceSet {
    pub fn len(&self) -> usize {
        self.media.len()
    }

    pub fn is_empty(&self) -> bool {
        self.media.is_empty()
    }

    /// The same faces with the edges within a tighter threshold.
    pub fn restrict(&self, face_threshold: f32) -> FaceSet {
        FaceSet {
            refs: self.refs.clone(),
            ids: self.ids.clone(),
            media: self.media.clone(),
            edges: self
                .edges
                .iter()
                .copied()
                .filter(|e| e.2 <= face_threshold)
                .collect(),
        }
    }

    /// Keeps one entry per pair (the smallest distance), a < b.
    pub fn normalise(&mut self) {
        for e in &mut self.edges {
            if e.0 > e.1 {
                std::mem::swap(&mut e.0, &mut e.1);
            }
        }
        self.edges
            .sort_by(|x, y| (x.0, x.1).cmp(&(y.0, y.1)).then(x.2.total_cmp(&y.2)));
        self.edges.dedup_by_key(|e| (e.0, e.1));
    }
}

/// Faces of each identity compared when two identities are about to merge.
const LINKAGE_SAMPLE: usize = 8;

/// The distance between two faces (indices into the run's [`FaceSet`]).
pub type FaceDistance<'a> = &'a (dyn Fn(u32, u32) -> f32 + Sync);

/// The identity of every face: a face index standing for its identity.
///
/// Guarded edges (a shared neighbour, or each other's nearest face) are
/// joined by ascending distance; an edge that would merge two identities
/// of several faces each merges them only if the faces of the two, compared
/// whole (up to [`LINKAGE_SAMPLE`] each, average linkage), are within
/// `threshold` on average. One spurious match between two people, even one
/// in a triangle, does not make them one person: their faces at large do
/// not match.
pub fn cluster(faces: &FaceSet, threshold: f32, distance: FaceDistance<'_>) -> Vec<u32> {
    let n = faces.len();
    let mut adj: Vec<Vec<(u32, f32)>> = vec![Vec::new(); n];
    for &(a, b, d) in &faces.edges {
        adj[a as usize].push((b, d));
        adj[b as usize].push((a, d));
    }
    for row in &mut adj {
        row.sort_by_key(|x| x.0);
    }
    let nearest: Vec<Option<u32>> = adj
        .iter()
        .map(|row| row.iter().min_by(|x, y| x.1.total_cmp(&y.1)).map(|x| x.0))
        .collect();
    let mut guarded: Vec<(u32, u32, f32)> = faces
        .edges
        .iter()
        .copied()
        .filter(|&(a, b, _)| {
            let mutual = nearest[a as usize] == Some(b) && nearest[b as usize] == Some(a);
            mutual || shared(&adj[a as usize], &adj[b as usize]) > 0
        })
        .collect();
    guarded.sort_by(|x, y| x.2.total_cmp(&y.2).then((x.0, x.1).cmp(&(y.0, y.1))));
    let mut uf = UnionFind::new(n);
    let mut members: Vec<Vec<u32>> = (0..n as u32).map(|f| vec![f]).collect();
    let mut refused: HashSet<(u32, u32)> = HashSet::new();
    for (a, b, _) in guarded {
        let (ra, rb) = (uf.find(a), uf.find(b));
        if ra == rb || refused.contains(&(ra.min(rb), ra.max(rb))) {
            continue;
        }
        let (ma, mb) = (&members[ra as usize], &members[rb as usize]);
        if ma.len() > 1 && mb.len() > 1 && linkage(ma, mb, distance) > threshold {
            refused.insert((ra.min(rb), ra.max(rb)));
            continue;
        }
        uf.union(ra, rb);
        let (root, other) = (ra.min(rb), ra.max(rb));
        let moved = std::mem::take(&mut members[other as usize]);
        members[root as usize].extend(moved);
    }
    uf.roots()
}

/// Mean distance between the faces of two identities, over up to
/// [`LINKAGE_SAMPLE`] faces of each spread over their members.
fn linkage(a: &[u32], b: &[u32], distance: FaceDistance<'_>) -> f32 {
    let pick = |v: &[u32]| -> Vec<u32> {
        let k = v.len().min(LINKAGE_SAMPLE);
        (0..k).map(|i| v[i * v.len() / k]).collect()
    };
    let (sa, sb) = (pick(a), pick(b));
    let mut sum = 0.0f64;
    for &x in &sa {
        for &y in &sb {
            sum += distance(x, y) as f64;
        }
    }
    (sum / (sa.len() * sb.len()) as f64) as f32
}

/// What each identity is in the material (see the module doc).
#[derive(Default)]
pub struct Roles {
    /// Scene group (its root media) → primary identity.
    pub primary: HashMap<u32, u32>,
    /// Anchored pictures per identity (0: not anchored).
    pub anchored: HashMap<u32, u32>,
    /// (group, identity) where the identity is a subject.
    pub subject_in: HashSet<(u32, u32)>,
    /// (group, identity) where the identity is anchored.
    pub anchored_in: HashSet<(u32, u32)>,
    /// Groups of a single picture (and its near-duplicates).
    pub single: HashSet<u32>,
    pub recurring: HashSet<u32>,
}

impl Roles {
    pub fn is_anchored(&self, identity: u32) -> bool {
        self.anchored.get(&identity).is_some_and(|&n| n > 0)
    }

    /// Whether a face join through `identity` between groups `ga` and `gb`
    /// is allowed.
    pub fn may_join(&self, identity: u32, ga: u32, gb: u32) -> bool {
        let (Some(&pa), Some(&pb)) = (self.primary.get(&ga), self.primary.get(&gb)) else {
            return false;
        };
        let (a_in_b, b_in_a) = (
            self.subject_in.contains(&(gb, pa)),
            self.subject_in.contains(&(ga, pb)),
        );
        let agree = (a_in_b && (b_in_a || self.single.contains(&ga)))
            || (b_in_a && self.single.contains(&gb));
        agree
            && (pa == identity || pb == identity)
            && (self.anchored_in.contains(&(ga, identity))
                || self.anchored_in.contains(&(gb, identity)))
            && !self.recurring.contains(&identity)
    }
}

/// (media, identity) pairs: which identities show on which media, once each.
pub fn media_identities(faces: &FaceSet, identity: &[u32]) -> Vec<(u32, u32)> {
    let mut v: Vec<(u32, u32)> = faces
        .media
        .iter()
        .zip(identity)
        .map(|(&m, &i)| (m, i))
        .collect();
    v.sort_unstable();
    v.dedup();
    v
}

/// The roles of the identities over scene groups (`group[m]`: the root of
/// media m's group; `picture[m]`: the root of its near-duplicates).
pub fn roles(faces: &FaceSet, identity: &[u32], group: &[u32], picture: &[u32]) -> Roles {
    // (picture, identity) once each: copies of a picture count once.
    let mut pairs: Vec<(u32, u32)> = media_identities(faces, identity)
        .into_iter()
        .map(|(m, i)| (picture[m as usize], i))
        .collect();
    pairs.sort_unstable();
    pairs.dedup();
    // Per group: identity → pictures showing it; pictures with faces.
    let mut count: HashMap<u32, BTreeMap<u32, u32>> = HashMap::new();
    let mut faced: HashMap<u32, u32> = HashMap::new();
    let mut last = u32::MAX;
    for &(p, i) in &pairs {
        let g = group[p as usize];
        *count.entry(g).or_default().entry(i).or_default() += 1;
        if p != last {
            *faced.entry(g).or_default() += 1;
            last = p;
        }
    }
    // Groups of one picture.
    let mut pictures: HashMap<u32, HashSet<u32>> = HashMap::new();
    for (m, &g) in group.iter().enumerate() {
        pictures.entry(g).or_default().insert(picture[m]);
    }
    // Subjects of each group, and each identity's anchored media.
    let mut subjects: HashMap<u32, Vec<u32>> = HashMap::new();
    let mut roles = Roles {
        single: pictures
            .into_iter()
            .filter(|(_, p)| p.len() == 1)
            .map(|(g, _)| g)
            .collect(),
        ..Roles::default()
    };
    let mut subject_media: HashMap<u32, u32> = HashMap::new();
    for (&g, ids) in &count {
        for (&i, &c) in ids {
            if 2 * c >= faced[&g] {
                subjects.entry(g).or_default().push(i);
                roles.subject_in.insert((g, i));
                *subject_media.entry(i).or_default() += c;
                if c >= 2 {
                    *roles.anchored.entry(i).or_default() += c;
                    roles.anchored_in.insert((g, i));
                }
            }
        }
    }
    let key = |i: u32| {
        (
            roles.anchored.get(&i).copied().unwrap_or(0),
            subject_media.get(&i).copied().unwrap_or(0),
            std::cmp::Reverse(i),
        )
    };
    for (&g, subs) in &subjects {
        if let Some(&p) = subs.iter().max_by_key(|&&i| key(i)) {
            roles.primary.insert(g, p);
        }
    }
    // Recurring: shown beside two or more different anchored primaries.
    let mut beside: HashMap<u32, HashSet<u32>> = HashMap::new();
    for (&g, ids) in &count {
        let Some(&p) = roles.primary.get(&g) else {
            continue;
        };
        if !roles.is_anchored(p) {
            continue;
        }
        for &i in ids.keys().filter(|&&i| i != p) {
            beside.entry(i).or_default().insert(p);
        }
    }
    roles.recurring = beside
        .into_iter()
        .filter(|(_, ps)| ps.len() >= 2)
        .map(|(i, _)| i)
        .collect();
    roles
}

/// A face edge that joins two scene groups: (media a, media b, face
/// distance), one per pair of faces, by ascending distance.
pub fn face_joins(
    faces: &FaceSet,
    identity: &[u32],
    group: &[u32],
    roles: &Roles,
) -> Vec<(u32, u32, f32)> {
    let mut out: Vec<(u32, u32, f32)> = faces
        .edges
        .iter()
        .filter_map(|&(fa, fb, d)| {
            let i = identity[fa as usize];
            if identity[fb as usize] != i {
                return None;
            }
            let (ma, mb) = (faces.media[fa as usize], faces.media[fb as usize]);
            let (ga, gb) = (group[ma as usize], group[mb as usize]);
            (ga != gb && roles.may_join(i, ga, gb)).then_some((ma.min(mb), ma.max(mb), d))
        })
        .collect();
    out.sort_by(|x, y| x.2.total_cmp(&y.2).then((x.0, x.1).cmp(&(y.0, y.1))));
    out
}

/// One person seen in two or more series: the identity (its smallest face
/// id) and, per series root, how many of its media show the person.
#[derive(Clone, Debug, PartialEq)]
pub struct Person {
    pub face_id: String,
    /// (series root media, media showing the person), by root.
    pub series: Vec<(u32, u32)>,
    pub recurring: bool,
}

/// Identities that show in two or more final series (`series[m]`: the root
/// of media m's series, `None` for media in no series).
pub fn persons(
    faces: &FaceSet,
    identity: &[u32],
    series: &[Option<u32>],
    roles: &Roles,
) -> Vec<Person> {
    let mut by_identity: BTreeMap<u32, BTreeMap<u32, u32>> = BTreeMap::new();
    for (m, i) in media_identities(faces, identity) {
        if let Some(root) = series[m as usize] {
            *by_identity.entry(i).or_default().entry(root).or_default() += 1;
        }
    }
    let mut face_id: HashMap<u32, &str> = HashMap::new();
    for (f, &i) in identity.iter().enumerate() {
        let id = faces.ids[f].as_str();
        let e = face_id.entry(i).or_insert(id);
        if id < *e {
            *e = id;
        }
    }
    by_identity
        .into_iter()
        .filter(|(_, s)| s.len() >= 2)
        .map(|(i, s)| Person {
            face_id: face_id.get(&i).copied().unwrap_or_default().to_string(),
            series: s.into_iter().collect(),
            recurring: roles.recurring.contains(&i),
        })
        .collect()
}

/// A series' victim shows at least 1 in this many of their media in it.
const VICTIM_SHARE: u32 = 5;

/// Per final series root: its victim, the identity on most of its media
/// among those that are not recurring and show in the series on at least
/// a fifth of all their media (ties: more anchored media); and that
/// identity's face ids within the series.
pub fn victims(
    faces: &FaceSet,
    identity: &[u32],
    series: &[Option<u32>],
    roles: &Roles,
) -> HashMap<u32, Vec<String>> {
    let mut count: HashMap<u32, HashMap<u32, u32>> = HashMap::new();
    let mut total: HashMap<u32, u32> = HashMap::new();
    for (m, i) in media_identities(faces, identity) {
        *total.entry(i).or_default() += 1;
        if let Some(root) = series[m as usize]
            && !roles.recurring.contains(&i)
        {
            *count.entry(root).or_default().entry(i).or_default() += 1;
        }
    }
    // A person seen mostly elsewhere (on unlinked material, or across
    // other series) is someone the series happens to show, not whom it is
    // about: a bystander on many unrelated pictures would otherwise make
    // triage call all of those "new material of a known victim".
    let concentrated = |i: u32, c: u32| c * VICTIM_SHARE >= total.get(&i).copied().unwrap_or(0);
    let victim: HashMap<u32, u32> = count
        .into_iter()
        .filter_map(|(root, ids)| {
            ids.into_iter()
                .filter(|&(i, c)| concentrated(i, c))
                .max_by_key(|&(i, c)| {
                    (
                        c,
                        roles.anchored.get(&i).copied().unwrap_or(0),
                        std::cmp::Reverse(i),
                    )
                })
                .map(|(i, _)| (root, i))
        })
        .collect();
    let mut out: HashMap<u32, Vec<String>> = HashMap::new();
    for (f, &i) in identity.iter().enumerate() {
        let m = faces.media[f] as usize;
        if let Some(root) = series[m]
            && victim.get(&root) == Some(&i)
        {
            out.entry(root).or_default().push(faces.ids[f].clone());
        }
    }
    for ids in out.values_mut() {
        ids.sort();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Faces: (media, identity label); edges: every pair of the same label
    /// (distance 0.4).
    fn faces(list: &[(u32, u32)]) -> FaceSet {
        let mut f = FaceSet::default();
        for (k, &(m, _)) in list.iter().enumerate() {
            f.refs.push(PointRef {
                seg: 0,
                off: k as u32,
            });
            f.ids.push(format!("m{m}#{k}"));
            f.media.push(m);
        }
        for a in 0..list.len() {
            for b in a + 1..list.len() {
                if list[a].1 == list[b].1 && list[a].0 != list[b].0 {
                    f.edges.push((a as u32, b as u32, 0.4));
                }
            }
        }
        f
    }

    /// Face distances of a test: 0.4 within a label, 1.0 across.
    fn by_label(list: &[(u32, u32)]) -> impl Fn(u32, u32) -> f32 + Sync + '_ {
        |a, b| {
            if list[a as usize].1 == list[b as usize].1 {
                0.4
            } else {
                1.0
            }
        }
    }

    /// Two people whose faces match once, in a triangle: the edge is
    /// guarded, but their faces at large do not match, so they stay two.
    #[test]
    fn one_spurious_match_in_a_triangle_does_not_merge_two_people() {
        let list = [(0, 1), (1, 1), (2, 1), (3, 2), (4, 2), (5, 2)];
        let mut f = faces(&list);
        // Face 2 (person 1) matches faces 3 and 4 (person 2): a triangle.
        f.edges.extend([(2, 3, 0.6), (2, 4, 0.65)]);
        let id = cluster(&f, 0.7, &by_label(&list));
        assert_eq!(id[0], id[2]);
        assert_eq!(id[3], id[5]);
        assert_ne!(id[0], id[3]);
    }

    /// Two victims (V, W), each in two scenes; an adult A beside both.
    /// V's scenes join through V; A neither merges V and W nor counts as
    /// anyone's victim; A is reported in both series.
    #[test]
    fn victims_join_scenes_and_a_recurring_adult_does_not() {
        // Scene groups: {0,1,2} {3,4} (V), {5,6,7} {8,9} (W).
        let group = [0, 0, 0, 3, 3, 5, 5, 5, 8, 8];
        let (v, w, a) = (1, 2, 3);
        let list = [
            (0, v),
            (1, v),
            (2, v),
            (2, a),
            (3, v),
            (4, v),
            (5, w),
            (6, w),
            (6, a),
            (7, w),
            (8, w),
            (9, w),
            (9, a),
        ];
        let f = faces(&list);
        let identity = cluster(&f, 0.7, &by_label(&list));
        let id_of = |label: u32| identity[list.iter().position(|x| x.1 == label).unwrap()];
        let pictures: Vec<u32> = (0..10).collect();
        let r = roles(&f, &identity, &group, &pictures);
        assert!(r.is_anchored(id_of(v)) && r.is_anchored(id_of(w)));
        assert!(!r.is_anchored(id_of(a)));
        assert!(r.recurring.contains(&id_of(a)));
        let joins = face_joins(&f, &identity, &group, &r);
        let pairs: HashSet<(u32, u32)> = joins
            .iter()
            .map(|j| (group[j.0 as usize], group[j.1 as usize]))
            .collect();
        assert!(
            pairs
                .iter()
                .all(|&(x, y)| [(0, 3), (3, 0), (5, 8), (8, 5)].contains(&(x, y))),
            "{pairs:?}"
        );
        assert!(!pairs.is_empty());
        // Final series: V's two scenes, W's two scenes.
        let series: Vec<Option<u32>> = group
            .iter()
            .map(|&g| {
                Some(if g == 3 {
                    0
                } else if g == 8 {
                    5
                } else {
                    g
                })
            })
            .collect();
        let p = persons(&f, &identity, &series, &r);
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(p[0].recurring);
        assert_eq!(p[0].series, vec![(0, 1), (5, 2)]);
        let vict = victims(&f, &identity, &series, &r);
        assert_eq!(vict[&0].len(), 5);
        assert!(vict[&0].iter().all(|id| !id.ends_with("#3")));
    }

    /// A series of two media shows only a bystander B, who is also on ten
    /// unrelated pictures in no series: B is not the series' victim (triage
    /// would call every picture of B new material of a known victim). The
    /// series of V, shown only there, keeps V as its victim.
    #[test]
    fn a_bystander_seen_mostly_elsewhere_is_no_series_victim() {
        let (v, b) = (1, 2);
        let mut list = vec![(0, v), (1, v), (2, b), (3, b)];
        list.extend((4..14).map(|m| (m, b)));
        let f = faces(&list);
        let identity = cluster(&f, 0.7, &by_label(&list));
        let group: Vec<u32> = [0, 0, 2, 2].into_iter().chain(4..14).collect();
        let pictures: Vec<u32> = (0..14).collect();
        let r = roles(&f, &identity, &group, &pictures);
        let series: Vec<Option<u32>> = (0..14u32)
            .map(|m| match m {
                0 | 1 => Some(0),
                2 | 3 => Some(2),
                _ => None,
            })
            .collect();
        let vict = victims(&f, &identity, &series, &r);
        assert_eq!(vict.get(&0).map(Vec::len), Some(2), "{vict:?}");
        assert!(!vict.contains_key(&2), "{vict:?}");
    }

    /// A lone match between two identities does not merge them: the edge
    /// has no triangle and is not mutual (each face has a closer match).
    #[test]
    fn a_lone_face_match_does_not_merge_identities() {
        let list = [(0, 1), (1, 1), (2, 2), (3, 2)];
        let mut f = faces(&list);
        f.edges = vec![(0, 1, 0.2), (2, 3, 0.2), (1, 2, 0.6)];
        let id = cluster(&f, 0.7, &by_label(&list));
        assert_eq!(id[0], id[1]);
        assert_eq!(id[2], id[3]);
        assert_ne!(id[1], id[2]);
    }
}
