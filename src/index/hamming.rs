//! Hamming distance over binary codes (perceptual hashes such as PDQ) and
//! the exact scan that compares a query with every code of a segment.
//!
//! A code of `dim` bits is `dim / 64` little-endian u64 words: the bytes of
//! the hash as sent (`Point.bits`) read eight at a time. Distance does not
//! depend on the bit order, so no reordering is needed.
//!
//! The kernels run with the `popcnt` instruction where the CPU has it
//! (checked once at run time); the portable fallback is `count_ones`, which
//! the baseline x86-64 target compiles to a bit-twiddling sequence.

/// Bytes of a hash → its words (`bytes.len()` a multiple of 8).
pub fn words_of(bytes: &[u8]) -> Vec<u64> {
    bytes
        .chunks_exact(8)
        .map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes")))
        .collect()
}

/// Words of a hash → its bytes, as a client sent them.
pub fn bytes_of(words: &[u64]) -> Vec<u8> {
    words.iter().flat_map(|w| w.to_le_bytes()).collect()
}

/// Bit count of `a XOR b`.
#[inline]
pub fn distance(a: &[u64], b: &[u64]) -> u32 {
    a.iter().zip(b).map(|(x, y)| (x ^ y).count_ones()).sum()
}

#[cfg(target_arch = "x86_64")]
fn has_popcnt() -> bool {
    static HAS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *HAS.get_or_init(|| std::arch::is_x86_feature_detected!("popcnt"))
}

/// Appends `(offset, distance)` for every code within `radius` of `query`
/// among `codes` (row `i` = offset `base + i`) that `keep` accepts.
/// `keep` is asked only about codes within the radius, so filters and
/// liveness cost nothing for the many codes that are far.
pub fn scan(
    codes: &[u64],
    query: &[u64],
    radius: u32,
    base: usize,
    keep: &mut dyn FnMut(usize) -> bool,
    out: &mut Vec<(usize, u32)>,
) {
    #[cfg(target_arch = "x86_64")]
    {
        if has_popcnt() {
            // SAFETY: the CPU supports popcnt (checked just above).
            unsafe { scan_popcnt(codes, query, radius, base, keep, out) };
            return;
        }
    }
    scan_portable(codes, query, radius, base, keep, out);
}

/// The scan's loop, specialised for 4-word (256-bit, PDQ) codes so the
/// compiler keeps the query in registers.
#[inline(always)]
fn scan_body(
    codes: &[u64],
    query: &[u64],
    radius: u32,
    base: usize,
    keep: &mut dyn FnMut(usize) -> bool,
    out: &mut Vec<(usize, u32)>,
) {
    let w = query.len();
    if w == 4 {
        let q = [query[0], query[1], query[2], query[3]];
        for (i, c) in codes.chunks_exact(4).enumerate() {
            let d = (c[0] ^ q[0]).count_ones()
                + (c[1] ^ q[1]).count_ones()
                + (c[2] ^ q[2]).count_ones()
                + (c[3] ^ q[3]).count_ones();
            if d <= radius && keep(base + i) {
                out.push((base + i, d));
            }
        }
    } else if w > 0 {
        for (i, c) in codes.chunks_exact(w).enumerate() {
            let d = distance(c, query);
            if d <= radius && keep(base + i) {
                out.push((base + i, d));
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "popcnt")]
unsafe fn scan_popcnt(
    codes: &[u64],
    query: &[u64],
    radius: u32,
    base: usize,
    keep: &mut dyn FnMut(usize) -> bool,
    out: &mut Vec<(usize, u32)>,
) {
    scan_body(codes, query, radius, base, keep, out)
}

fn scan_portable(
    codes: &[u64],
    query: &[u64],
    radius: u32,
    base: usize,
    keep: &mut dyn FnMut(usize) -> bool,
    out: &mut Vec<(usize, u32)>,
) {
    scan_body(codes, query, radius, base, keep, out)
}

/// Keeps the `k` closest `(offset, distance)` pairs, ascending by distance
/// then offset (a stable order, so equal distances come out the same way
/// every time).
pub fn top_k(hits: &mut Vec<(usize, u32)>, k: usize) {
    hits.sort_unstable_by_key(|&(o, d)| (d, o));
    hits.dedup_by_key(|h| h.0);
    hits.truncate(k);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_and_bytes_round_trip_and_distance_counts_bits() {
        let bytes: Vec<u8> = (0..32u8).collect();
        let w = words_of(&bytes);
        assert_eq!(w.len(), 4);
        assert_eq!(bytes_of(&w), bytes);
        let mut other = bytes.clone();
        other[0] ^= 0b101;
        other[31] ^= 0x80;
        assert_eq!(distance(&w, &words_of(&other)), 3);
    }

    #[test]
    fn scan_finds_exactly_the_codes_within_the_radius() {
        let codes: Vec<u64> = (0..40u64)
            .flat_map(|i| [i.wrapping_mul(0x9E37_79B9_7F4A_7C15), i, !i, i << 3])
            .collect();
        let q = [0u64, 0, !0, 0];
        let mut out = Vec::new();
        scan(&codes, &q, 3, 100, &mut |o| o != 100, &mut out);
        let want: Vec<(usize, u32)> = codes
            .chunks_exact(4)
            .enumerate()
            .map(|(i, c)| (100 + i, distance(c, &q)))
            .filter(|&(o, d)| d <= 3 && o != 100)
            .collect();
        assert_eq!(out, want);
        let mut portable = Vec::new();
        scan_portable(&codes, &q, 3, 100, &mut |o| o != 100, &mut portable);
        assert_eq!(portable, want);
    }
}
