//! The codes of a perceptual-hash segment, sealed: `bits.bin` holds the
//! codes (n × words u64, row-major) and each one's quality (n bytes), and
//! `mih.bin` the multi-index over them ([`crate::index::mih`]). Both are
//! in the checksummed envelope and searched in place through their maps.
//!
//! | file | magic | fields | payload |
//! | --- | --- | --- | --- |
//! | `bits.bin` | `VIDXBIT\0` | `[n, words, 0, 0]` | codes, then qualities (8-byte aligned) |
//! | `mih.bin` | `VIDXMIH\0` | `[n, tables, id_bytes, 0]` | see [`crate::index::mih`] |
//!
//! A search is exact whichever way it runs: the planner
//! ([`crate::index::planner::hamming_plan`]) picks a popcount scan of every
//! code, a scan of a selective filter's passing codes, or the multi-index,
//! by what each would read.

use std::path::Path;

use crate::error::{Error, Result};
use crate::index::filter::Compiled;
use crate::index::hamming;
use crate::index::mih::{self, Mih};
use crate::index::planner::{HammingPlan, hamming_plan};
use crate::storage::envelope::{FileWriter, MappedFile};
use crate::storage::versions::HASHES;

pub const BITS_FILE: &str = "bits.bin";
pub const MIH_FILE: &str = "mih.bin";
const BITS_MAGIC: &[u8; 8] = b"VIDXBIT\0";
const MIH_MAGIC: &[u8; 8] = b"VIDXMIH\0";

/// First radius a k-nearest search (no radius given) tries: PDQ's match
/// threshold. It doubles until k codes are found or a scan is cheaper.
pub const FIRST_KNN_RADIUS: u32 = 31;

/// Writes `bits.bin` and `mih.bin` for `codes` (row-major, `words` per
/// code) and their `quality` into `dir`.
pub fn write(dir: &Path, words: usize, codes: &[u64], quality: &[u8]) -> Result<()> {
    let n = quality.len();
    if codes.len() != n * words {
        return Err(Error::Internal(format!(
            "{} code words for {n} codes of {words} words",
            codes.len()
        )));
    }
    let mut w = FileWriter::create(&dir.join(BITS_FILE), BITS_MAGIC, &HASHES)?;
    w.write_pod(codes)?;
    w.write(quality)?;
    w.align8()?;
    w.finish([n as u64, words as u64, 0, 0])?;
    let mut w = FileWriter::create(&dir.join(MIH_FILE), MIH_MAGIC, &HASHES)?;
    let fields = mih::write(&mut w, codes, words)?;
    w.finish(fields)
}

/// What a search may return: `keep(offset)` is liveness, exclusion, quality
/// and filter together, asked only of codes within the radius.
pub struct Probe<'a> {
    pub query: &'a [u64],
    /// None: the k nearest at any distance.
    pub radius: Option<u32>,
    pub k: usize,
    pub filter: Option<&'a Compiled<'a>>,
}

/// A sealed segment's codes and multi-index, mapped.
pub struct SealedBits {
    bits: MappedFile,
    mih: Mih,
    n: usize,
    words: usize,
}

impl SealedBits {
    /// Maps both files and checks their headers against `n` codes of
    /// `words` words (not their payload checksums: [`SealedBits::verify`]).
    pub fn open(dir: &Path, n: usize, words: usize) -> Result<SealedBits> {
        let bits = MappedFile::open(&dir.join(BITS_FILE), BITS_MAGIC, &HASHES)?;
        if bits.fields != [n as u64, words as u64, 0, 0] {
            return Err(Error::data_loss(
                bits.path(),
                format!(
                    "header {:?} does not fit {n} codes of {} bits",
                    bits.fields,
                    words * 64
                ),
            ));
        }
        bits.slice::<u64>(0, (n * words) as u64)?;
        bits.slice::<u8>((n * words * 8) as u64, n as u64)?;
        let mih = Mih::open(
            MappedFile::open(&dir.join(MIH_FILE), MIH_MAGIC, &HASHES)?,
            n,
            words,
        )?;
        Ok(SealedBits {
            bits,
            mih,
            n,
            words,
        })
    }

    /// Bytes of both files (what a search may read).
    pub fn len_bytes(&self) -> u64 {
        self.bits.len_bytes() + self.mih.file.len_bytes()
    }

    pub fn verify(&self) -> Result<()> {
        self.bits.verify()?;
        self.mih.file.verify()
    }

    pub fn codes(&self) -> Result<&[u64]> {
        self.bits.slice::<u64>(0, (self.n * self.words) as u64)
    }

    pub fn qualities(&self) -> Result<&[u8]> {
        self.bits
            .slice::<u8>((self.n * self.words * 8) as u64, self.n as u64)
    }

    /// The code and quality at offset `i`.
    pub fn code_at(&self, i: usize) -> Result<(&[u64], u8)> {
        let code = self
            .codes()?
            .get(i * self.words..(i + 1) * self.words)
            .ok_or_else(|| Error::Internal(format!("offset {i} outside segment of {}", self.n)))?;
        Ok((code, self.qualities()?[i]))
    }

    /// Exact search: every code within the radius that `keep` accepts, the
    /// k closest (ascending distance, then offset); without a radius, the
    /// k nearest.
    pub fn search(
        &self,
        p: &Probe<'_>,
        keep: &mut dyn FnMut(usize) -> bool,
    ) -> Result<Vec<(usize, u32)>> {
        let codes = self.codes()?;
        let dim = (self.words * 64) as u32;
        let passing = p.filter.map(|c| c.estimate());
        if passing == Some(0) || p.k == 0 {
            return Ok(Vec::new());
        }
        let mut radius = p.radius.unwrap_or(FIRST_KNN_RADIUS).min(dim);
        loop {
            let probes = mih::probes(self.mih.tables(), radius);
            let plan = hamming_plan(self.n, true, probes, passing);
            let mut hits = Vec::new();
            let last = p.radius.is_some() || radius >= dim || plan != HammingPlan::MultiIndex;
            let r = if last && p.radius.is_none() {
                dim
            } else {
                radius
            };
            match (plan, p.filter) {
                (HammingPlan::MultiIndex, _) => {
                    self.mih.search(codes, p.query, r, keep, &mut hits)?
                }
                (HammingPlan::ScanPassing, Some(c)) => {
                    // `passing` already applied the filter; `keep` checks the rest.
                    for o in c.passing() {
                        let o = o as usize;
                        if let Some(code) = codes.get(o * self.words..(o + 1) * self.words) {
                            let d = hamming::distance(code, p.query);
                            if d <= r && keep(o) {
                                hits.push((o, d));
                            }
                        }
                    }
                }
                (HammingPlan::Scan | HammingPlan::ScanPassing, _) => {
                    hamming::scan(codes, p.query, r, 0, keep, &mut hits)
                }
            }
            hamming::top_k(&mut hits, p.k);
            if last || hits.len() >= p.k {
                return Ok(hits);
            }
            radius = (radius * 2 + 1).min(dim);
        }
    }
}
