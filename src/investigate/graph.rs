//! Graph helpers that linking and identity clustering share: common
//! neighbours of two sorted adjacency rows (the union-find is `union`'s).

/// Common neighbours of two rows sorted by neighbour.
pub fn shared(a: &[(u32, f32)], b: &[(u32, f32)]) -> u32 {
    let (mut i, mut j, mut n) = (0, 0, 0);
    while i < a.len() && j < b.len() {
        match a[i].0.cmp(&b[j].0) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                n += 1;
                i += 1;
                j += 1;
            }
        }
    }
    n
}
