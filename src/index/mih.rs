//! Multi-index hashing (Norouzi, Punjani and Fleet, "Fast search in Hamming
//! space with multi-index hashing", CVPR 2012): exact radius search over
//! binary codes without reading every code.
//!
//! A code of `dim` bits is cut into `m = dim / 16` substrings of 16 bits,
//! and each substring position gets a table: for every 16-bit value, the
//! offsets of the codes whose substring has that value (a counting sort, so
//! a bucket is one contiguous run). By the pigeonhole principle a code
//! within distance `r` of the query has, writing `r = q·m + a`, a substring
//! within `q` of the query's among the first `a + 1` tables or one within
//! `q − 1` among the others; probing every bucket within those radii and
//! checking each candidate's full distance finds every code within `r`,
//! nothing approximate. For PDQ (m = 16) and r = 31 that is 16 tables × 17
//! buckets; of n random codes about 272 · n / 65536 are candidates.
//!
//! On disk (`mih.bin`, in the checksummed envelope; fields `[n, m,
//! id_bytes, 0]`), table after table: 65,537 bucket starts (u32), then n
//! offsets of `id_bytes` bytes each (3 while n ≤ 2^24, else 4: a quarter
//! less memory for the common case), each section 8-byte aligned. Searched
//! in place through the memory map; every offset read from it is checked.

use crate::error::{Error, Result};
use crate::index::hamming;
use crate::storage::envelope::{FileWriter, MappedFile};

/// Bits per substring: one table per 16 bits of the code.
pub const SUB_BITS: u32 = 16;
const BUCKETS: usize = 1 << SUB_BITS;
const STARTS: u64 = BUCKETS as u64 + 1;

/// Tables for codes of `words` u64 words.
pub fn tables_for(words: usize) -> usize {
    words * 4
}

/// The 16-bit substring `t` of a code.
#[inline]
fn key(code: &[u64], t: usize) -> usize {
    ((code[t / 4] >> (16 * (t % 4))) & 0xFFFF) as usize
}

fn id_bytes_for(n: usize) -> u64 {
    if n <= 1 << 24 { 3 } else { 4 }
}

fn pad8(x: u64) -> u64 {
    x.div_ceil(8) * 8
}

/// Bytes of one table in the file: bucket starts, then the offsets.
fn table_len(n: u64, id_bytes: u64) -> u64 {
    pad8(STARTS * 4) + pad8(n * id_bytes)
}

/// Writes the tables for `n` codes of `words` words (`codes` row-major)
/// into `w` and returns the envelope fields. One table is built at a time,
/// so building needs 4 · n bytes beside the codes.
pub fn write(w: &mut FileWriter, codes: &[u64], words: usize) -> Result<[u64; 4]> {
    let n = codes.len().checked_div(words).unwrap_or(0);
    if n as u64 >= u32::MAX as u64 {
        return Err(Error::Internal(format!(
            "{n} codes exceed the multi-index's u32 offsets"
        )));
    }
    let id_bytes = id_bytes_for(n);
    let m = tables_for(words);
    let mut starts = vec![0u32; BUCKETS + 1];
    let mut order = vec![0u32; n];
    let mut packed: Vec<u8> = Vec::with_capacity(n * id_bytes as usize + 8);
    for t in 0..m {
        starts.iter_mut().for_each(|s| *s = 0);
        for code in codes.chunks_exact(words) {
            starts[key(code, t) + 1] += 1;
        }
        for b in 0..BUCKETS {
            starts[b + 1] += starts[b];
        }
        let mut next = starts.clone();
        for (i, code) in codes.chunks_exact(words).enumerate() {
            let k = key(code, t);
            order[next[k] as usize] = i as u32;
            next[k] += 1;
        }
        w.write_pod(&starts)?;
        w.align8()?;
        packed.clear();
        for &o in &order {
            packed.extend_from_slice(&o.to_le_bytes()[..id_bytes as usize]);
        }
        w.write(&packed)?;
        w.align8()?;
    }
    Ok([n as u64, m as u64, id_bytes, 0])
}

/// The 16-bit masks of each weight 0..=16: the buckets within a radius of a
/// key are the key XOR the masks of weight up to that radius.
fn masks_by_weight() -> &'static [Vec<u16>] {
    static M: std::sync::OnceLock<Vec<Vec<u16>>> = std::sync::OnceLock::new();
    M.get_or_init(|| {
        let mut by = vec![Vec::new(); SUB_BITS as usize + 1];
        for v in 0..=u16::MAX {
            by[v.count_ones() as usize].push(v);
        }
        by
    })
}

/// Radius probed in each of `m` tables for a search radius `r = q·m + a`:
/// `q` in the first `a + 1` tables, `q − 1` in the others (see the module
/// comment). `None` = the table is not probed.
pub fn probe_radii(m: usize, r: u32) -> Vec<Option<u32>> {
    let m32 = m.max(1) as u32;
    let (q, a) = (r / m32, r % m32);
    (0..m32)
        .map(|t| {
            let rho = if t <= a { Some(q) } else { q.checked_sub(1) };
            rho.map(|x| x.min(SUB_BITS))
        })
        .collect()
}

/// Buckets a search of radius `r` probes over `m` tables.
pub fn probes(m: usize, r: u32) -> u64 {
    let by = masks_by_weight();
    probe_radii(m, r)
        .into_iter()
        .flatten()
        .map(|rho| (0..=rho as usize).map(|w| by[w].len() as u64).sum::<u64>())
        .sum()
}

/// An open multi-index over a segment's codes.
pub struct Mih {
    pub file: MappedFile,
    n: usize,
    m: usize,
    id_bytes: usize,
}

impl Mih {
    /// Checks the header against the segment's `n` codes of `words` words
    /// and the file's length against the header (not the payload).
    pub fn open(file: MappedFile, n: usize, words: usize) -> Result<Mih> {
        let [fn_, fm, fid, _] = file.fields;
        let m = tables_for(words);
        if fn_ != n as u64 || fm != m as u64 || !(fid == 3 || fid == 4) {
            return Err(Error::data_loss(
                file.path(),
                format!(
                    "header {:?} does not fit {n} codes of {} bits",
                    file.fields,
                    words * 64
                ),
            ));
        }
        let need = table_len(n as u64, fid) * m as u64;
        if file.payload().len() as u64 != need {
            return Err(Error::data_loss(
                file.path(),
                format!(
                    "{} payload bytes, the tables need {need}",
                    file.payload().len()
                ),
            ));
        }
        Ok(Mih {
            n,
            m,
            id_bytes: fid as usize,
            file,
        })
    }

    pub fn tables(&self) -> usize {
        self.m
    }

    fn table(&self, t: usize) -> Result<(&[u32], &[u8])> {
        let len = table_len(self.n as u64, self.id_bytes as u64);
        let at = len * t as u64;
        let starts = self.file.slice::<u32>(at, STARTS)?;
        let ids = self
            .file
            .slice::<u8>(at + pad8(STARTS * 4), (self.n * self.id_bytes) as u64)?;
        Ok((starts, ids))
    }

    /// Every code within `radius` of `query` that `keep` accepts, as
    /// `(offset, distance)`, unsorted; a code found through several tables
    /// appears once per table (callers sort and de-duplicate, see
    /// [`hamming::top_k`]). `codes` are the segment's codes, row-major.
    pub fn search(
        &self,
        codes: &[u64],
        query: &[u64],
        radius: u32,
        keep: &mut dyn FnMut(usize) -> bool,
        out: &mut Vec<(usize, u32)>,
    ) -> Result<()> {
        let by = masks_by_weight();
        let mut ids: Vec<usize> = Vec::new();
        for (t, rho) in probe_radii(self.m, radius).into_iter().enumerate() {
            let Some(rho) = rho else { continue };
            let (starts, packed) = self.table(t)?;
            let k = key(query, t);
            for masks in &by[..=rho as usize] {
                for &mask in masks {
                    let b = k ^ mask as usize;
                    let (s, e) = (starts[b] as usize, starts[b + 1] as usize);
                    if s > e || e > self.n {
                        return Err(self.damaged(format!("bucket {b} of table {t} is {s}..{e}")));
                    }
                    ids.clear();
                    ids.extend(
                        packed[s * self.id_bytes..e * self.id_bytes]
                            .chunks_exact(self.id_bytes)
                            .map(|c| {
                                let mut x = [0u8; 4];
                                x[..self.id_bytes].copy_from_slice(c);
                                u32::from_le_bytes(x) as usize
                            }),
                    );
                    self.verify(codes, query, radius, &ids, keep, out)?;
                }
            }
        }
        Ok(())
    }

    /// Checks one bucket's candidates against the query.
    fn verify(
        &self,
        codes: &[u64],
        query: &[u64],
        radius: u32,
        ids: &[usize],
        keep: &mut dyn FnMut(usize) -> bool,
        out: &mut Vec<(usize, u32)>,
    ) -> Result<()> {
        let words = query.len();
        for &i in ids {
            let Some(code) = codes.get(i * words..(i + 1) * words) else {
                return Err(self.damaged(format!("offset {i} outside {} codes", self.n)));
            };
            let d = hamming::distance(code, query);
            if d <= radius && keep(i) {
                out.push((i, d));
            }
        }
        Ok(())
    }

    fn damaged(&self, what: String) -> Error {
        Error::data_loss(self.file.path(), what)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    #[test]
    fn probe_radii_follow_the_refined_pigeonhole() {
        assert_eq!(probe_radii(16, 31), vec![Some(1); 16]);
        let r20 = probe_radii(16, 20);
        assert_eq!(r20.iter().filter(|r| **r == Some(1)).count(), 5);
        assert_eq!(r20.iter().filter(|r| **r == Some(0)).count(), 11);
        assert_eq!(probe_radii(16, 3)[4], None);
        assert_eq!(probes(16, 31), 16 * 17);
        assert_eq!(probes(16, 0), 1);
    }

    #[test]
    fn finds_exactly_what_a_scan_finds_at_every_radius() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let words = 4;
        let n = 3000;
        let mut codes: Vec<u64> = (0..n * words).map(|_| rng.random()).collect();
        // Near copies of code 0 at growing distances.
        for j in 1..40usize {
            for w in 0..words {
                codes[j * words + w] = codes[w];
            }
            for b in 0..(j * 2) {
                let bit = (b * 37 + j) % 256;
                codes[j * words + bit / 64] ^= 1 << (bit % 64);
            }
        }
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("mih.bin");
        let f = crate::storage::versions::HASHES;
        let mut w = FileWriter::create(&p, b"VIDXMIH\0", &f).unwrap();
        let fields = write(&mut w, &codes, words).unwrap();
        w.finish(fields).unwrap();
        let mih = Mih::open(MappedFile::open(&p, b"VIDXMIH\0", &f).unwrap(), n, words).unwrap();
        for r in [0u32, 5, 20, 31, 40, 64] {
            let q = &codes[..words];
            let mut got = Vec::new();
            mih.search(&codes, q, r, &mut |_| true, &mut got).unwrap();
            hamming::top_k(&mut got, usize::MAX);
            let mut want = Vec::new();
            hamming::scan(&codes, q, r, 0, &mut |_| true, &mut want);
            hamming::top_k(&mut want, usize::MAX);
            assert_eq!(got, want, "radius {r}");
            assert!(!want.is_empty());
        }
    }
}
