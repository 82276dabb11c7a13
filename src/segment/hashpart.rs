//! One immutable part of an exact-hash set: the entries of one import (or
//! of a merge of imports), with a sorted table per digest algorithm for
//! lookups, written once and memory-mapped.
//!
//! `part-<id>.bin` (magic `VIDXHSP\0`, fields `[entries, cases, 0, 0]`)
//! starts with a directory of 16 × `[offset, length]` (u64) sections:
//!
//! | section | what |
//! | --- | --- |
//! | 0, 2, 4 | MD5, SHA-1, SHA-256 bucket starts: 65,537 u32 by the digest's first two bytes |
//! | 1, 3, 5 | the digests in sorted order, each followed by its entry number (u32 LE): 20, 24, 36 bytes |
//! | 6 | per entry its three digests, 68 bytes (16 + 20 + 32; zeros where absent) |
//! | 7 | per entry a flag byte: 1 MD5, 2 SHA-1, 4 SHA-256 present, 8 victim identified |
//! | 8–12 | string columns category, source, series, case_id, record: (entries + 1) u64 offsets, then bytes |
//! | 13, 14 | the cases: ids and records, the same way |
//!
//! A lookup jumps to the digest's bucket (the digests are uniformly spread,
//! so a bucket holds entries / 65,536 of them) and binary-searches it:
//! constant time in practice, whatever the size of the set. Every offset
//! read from the file is bounds-checked: a damaged part is DATA_LOSS naming
//! it, never a panic.

use std::path::Path;

use crate::error::{Error, Result};
use crate::pb;
use crate::storage::envelope::{FileWriter, MappedFile};
use crate::storage::versions::HASHSET;

const MAGIC: &[u8; 8] = b"VIDXHSP\0";
const SECTIONS: usize = 16;
const BUCKETS: usize = 1 << 16;
/// Digest lengths of the three tables, in section order.
pub const ALGORITHMS: [(&str, usize); 3] = [("md5", 16), ("sha1", 20), ("sha256", 32)];
const DIGESTS_LEN: usize = 16 + 20 + 32;
const VICTIM: u8 = 8;
/// String columns of an entry, in section order (8..=12).
const STRINGS: usize = 5;

fn pad8(x: u64) -> u64 {
    x.div_ceil(8) * 8
}

/// The digest of algorithm `a` (index into [`ALGORITHMS`]) of an entry.
fn digest_of(e: &pb::HashEntry, a: usize) -> &[u8] {
    match a {
        0 => &e.md5,
        1 => &e.sha1,
        _ => &e.sha256,
    }
}

fn strings_of(e: &pb::HashEntry) -> [&str; STRINGS] {
    [&e.category, &e.source, &e.series, &e.case_id, &e.record]
}

/// A string column as one section: offsets, then bytes.
fn string_section(values: &[&str]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut acc = 0u64;
    out.extend_from_slice(&0u64.to_le_bytes());
    for v in values {
        acc += v.len() as u64;
        out.extend_from_slice(&acc.to_le_bytes());
    }
    for v in values {
        out.extend_from_slice(v.as_bytes());
    }
    out
}

/// The sorted table of one algorithm: bucket starts and records.
fn digest_table(entries: &[pb::HashEntry], a: usize) -> (Vec<u8>, Vec<u8>) {
    let len = ALGORITHMS[a].1;
    let mut rows: Vec<(&[u8], u32)> = entries
        .iter()
        .enumerate()
        .filter(|(_, e)| digest_of(e, a).len() == len)
        .map(|(i, e)| (digest_of(e, a), i as u32))
        .collect();
    rows.sort_unstable();
    let mut starts = vec![0u32; BUCKETS + 1];
    for (d, _) in &rows {
        starts[bucket(d) + 1] += 1;
    }
    for b in 0..BUCKETS {
        starts[b + 1] += starts[b];
    }
    let mut records = Vec::with_capacity(rows.len() * (len + 4));
    for (d, i) in rows {
        records.extend_from_slice(d);
        records.extend_from_slice(&i.to_le_bytes());
    }
    (bytemuck::cast_slice(&starts).to_vec(), records)
}

fn bucket(d: &[u8]) -> usize {
    ((d[0] as usize) << 8) | d[1] as usize
}

/// Writes a part of `entries` (validated by the caller) and `cases` to
/// `path`, fsynced.
pub fn write(path: &Path, entries: &[pb::HashEntry], cases: &[pb::HashCase]) -> Result<()> {
    let mut sections: Vec<Vec<u8>> = Vec::with_capacity(SECTIONS);
    for a in 0..ALGORITHMS.len() {
        let (starts, records) = digest_table(entries, a);
        sections.push(starts);
        sections.push(records);
    }
    let mut digests = Vec::with_capacity(entries.len() * DIGESTS_LEN);
    let mut flags = Vec::with_capacity(entries.len());
    for e in entries {
        let mut f = 0u8;
        for (a, (_, len)) in ALGORITHMS.iter().enumerate() {
            let d = digest_of(e, a);
            if d.len() == *len {
                digests.extend_from_slice(d);
                f |= 1 << a;
            } else {
                digests.extend(std::iter::repeat_n(0u8, *len));
            }
        }
        if e.victim_identified {
            f |= VICTIM;
        }
        flags.push(f);
    }
    sections.push(digests);
    sections.push(flags);
    for c in 0..STRINGS {
        let col: Vec<&str> = entries.iter().map(|e| strings_of(e)[c]).collect();
        sections.push(string_section(&col));
    }
    let ids: Vec<&str> = cases.iter().map(|c| c.case_id.as_str()).collect();
    let records: Vec<&str> = cases.iter().map(|c| c.record.as_str()).collect();
    sections.push(string_section(&ids));
    sections.push(string_section(&records));
    sections.resize(SECTIONS, Vec::new());

    let mut dir = [[0u64; 2]; SECTIONS];
    let mut off = (SECTIONS * 16) as u64;
    for (i, s) in sections.iter().enumerate() {
        dir[i] = [off, s.len() as u64];
        off = pad8(off + s.len() as u64);
    }
    let mut w = FileWriter::create(path, MAGIC, &HASHSET)?;
    for d in &dir {
        w.write_pod(d)?;
    }
    for s in &sections {
        w.write(s)?;
        w.align8()?;
    }
    w.finish([entries.len() as u64, cases.len() as u64, 0, 0])
}

/// An open part.
pub struct Part {
    file: MappedFile,
    n: usize,
    cases: usize,
    dir: [[u64; 2]; SECTIONS],
}

impl Part {
    /// Maps a part and checks its header and directory (not the payload
    /// checksum: [`Part::verify`]).
    pub fn open(path: &Path) -> Result<Part> {
        let file = MappedFile::open(path, MAGIC, &HASHSET)?;
        let [n, cases, ..] = file.fields;
        let raw = file.slice::<u64>(0, (SECTIONS * 2) as u64)?;
        let mut dir = [[0u64; 2]; SECTIONS];
        for (i, d) in dir.iter_mut().enumerate() {
            *d = [raw[2 * i], raw[2 * i + 1]];
            file.slice::<u8>(d[0], d[1])?;
        }
        let (n, cases) = (
            usize::try_from(n).unwrap_or(usize::MAX),
            usize::try_from(cases).unwrap_or(usize::MAX),
        );
        let part = Part {
            file,
            n,
            cases,
            dir,
        };
        for a in 0..ALGORITHMS.len() {
            part.table(a)?;
        }
        part.section(6, n as u64 * DIGESTS_LEN as u64)?;
        part.section(7, n as u64)?;
        Ok(part)
    }

    pub fn verify(&self) -> Result<()> {
        self.file.verify()
    }

    pub fn len(&self) -> usize {
        self.n
    }

    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    pub fn disk_bytes(&self) -> u64 {
        self.file.len_bytes()
    }

    fn damaged(&self, what: impl Into<String>) -> Error {
        Error::data_loss(self.file.path(), what)
    }

    /// Section `i`, which must hold at least `need` bytes.
    fn section(&self, i: usize, need: u64) -> Result<&[u8]> {
        let [off, len] = self.dir[i];
        if len < need {
            return Err(self.damaged(format!("section {i} has {len} bytes, needs {need}")));
        }
        self.file.slice::<u8>(off, len)
    }

    /// Bucket starts and records of algorithm `a`.
    fn table(&self, a: usize) -> Result<(&[u32], &[u8])> {
        let [off, _] = self.dir[2 * a];
        let starts = self.file.slice::<u32>(off, BUCKETS as u64 + 1)?;
        let rows = starts[BUCKETS] as u64;
        let records = self.section(2 * a + 1, rows * (ALGORITHMS[a].1 as u64 + 4))?;
        Ok((starts, records))
    }

    /// Entry numbers whose digest of algorithm `a` is `digest`.
    pub fn lookup(&self, a: usize, digest: &[u8]) -> Result<Vec<u32>> {
        let len = ALGORITHMS[a].1;
        if digest.len() != len {
            return Ok(Vec::new());
        }
        let (starts, records) = self.table(a)?;
        let row = len + 4;
        let b = bucket(digest);
        let (mut lo, mut hi) = (starts[b] as usize, starts[b + 1] as usize);
        if lo > hi || hi * row > records.len() {
            return Err(self.damaged(format!(
                "bucket {b} of the {} table is {lo}..{hi}",
                ALGORITHMS[a].0
            )));
        }
        let key = |i: usize| &records[i * row..i * row + len];
        let end = hi;
        while lo < hi {
            let mid = (lo + hi) / 2;
            if key(mid) < digest {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        let mut out = Vec::new();
        while lo < end && key(lo) == digest {
            let e = u32::from_le_bytes(
                records[lo * row + len..(lo + 1) * row]
                    .try_into()
                    .map_err(|_| self.damaged("short record"))?,
            );
            if e as usize >= self.n {
                return Err(self.damaged(format!("record points at entry {e} of {}", self.n)));
            }
            out.push(e);
            lo += 1;
        }
        Ok(out)
    }

    /// String `i` of a string section with `count` values.
    fn string(&self, section: usize, count: usize, i: usize) -> Result<&str> {
        let [off, len] = self.dir[section];
        let offs = self.file.slice::<u64>(off, count as u64 + 1)?;
        let base = (count as u64 + 1) * 8;
        let (a, b) = (offs[i], offs[i + 1]);
        if a > b || base.saturating_add(b) > len {
            return Err(self.damaged(format!("string {i} of section {section} is {a}..{b}")));
        }
        let bytes = self.file.slice::<u8>(off + base + a, b - a)?;
        std::str::from_utf8(bytes)
            .map_err(|_| self.damaged(format!("string {i} of section {section} is not UTF-8")))
    }

    /// Entry `i`; its record only with `with_record` (lookups rarely need it).
    pub fn entry(&self, i: usize, with_record: bool) -> Result<pb::HashEntry> {
        if i >= self.n {
            return Err(Error::Internal(format!(
                "entry {i} of a part of {}",
                self.n
            )));
        }
        let digests = self.section(6, (self.n * DIGESTS_LEN) as u64)?;
        let flags = self.section(7, self.n as u64)?[i];
        let row = &digests[i * DIGESTS_LEN..(i + 1) * DIGESTS_LEN];
        let take = |a: usize, range: std::ops::Range<usize>| {
            if flags & (1 << a) != 0 {
                row[range].to_vec()
            } else {
                Vec::new()
            }
        };
        let s = |c: usize| self.string(8 + c, self.n, i).map(str::to_owned);
        Ok(pb::HashEntry {
            md5: take(0, 0..16),
            sha1: take(1, 16..36),
            sha256: take(2, 36..68),
            category: s(0)?,
            source: s(1)?,
            series: s(2)?,
            victim_identified: flags & VICTIM != 0,
            case_id: s(3)?,
            record: if with_record { s(4)? } else { String::new() },
        })
    }

    /// The case id of entry `i` (for exports of one case).
    pub fn case_of(&self, i: usize) -> Result<&str> {
        self.string(11, self.n, i)
    }

    pub fn cases(&self) -> Result<Vec<pb::HashCase>> {
        (0..self.cases)
            .map(|i| {
                Ok(pb::HashCase {
                    case_id: self.string(13, self.cases, i)?.to_owned(),
                    record: self.string(14, self.cases, i)?.to_owned(),
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(i: u32) -> pb::HashEntry {
        use md5::Digest;
        let b = i.to_le_bytes();
        pb::HashEntry {
            md5: md5::Md5::digest(b).to_vec(),
            sha1: if i.is_multiple_of(2) {
                sha1::Sha1::digest(b).to_vec()
            } else {
                Vec::new()
            },
            sha256: if i.is_multiple_of(3) {
                sha2::Sha256::digest(b).to_vec()
            } else {
                Vec::new()
            },
            category: format!("{}", i % 4),
            series: if i.is_multiple_of(5) {
                format!("S-{i}")
            } else {
                String::new()
            },
            victim_identified: i.is_multiple_of(7),
            case_id: "C1".into(),
            record: format!("{{\"n\":{i}}}"),
            ..Default::default()
        }
    }

    #[test]
    fn every_digest_finds_its_entries_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("part-1.bin");
        let mut entries: Vec<pb::HashEntry> = (0..5000).map(entry).collect();
        // The same file twice in one import: both entries come back.
        entries.push(entry(42));
        let cases = vec![pb::HashCase {
            case_id: "C1".into(),
            record: "{}".into(),
        }];
        write(&p, &entries, &cases).unwrap();
        let part = Part::open(&p).unwrap();
        part.verify().unwrap();
        assert_eq!(part.len(), 5001);
        for (i, e) in entries.iter().enumerate().step_by(37) {
            assert_eq!(part.entry(i, true).unwrap(), *e);
            for a in 0..3 {
                let d = digest_of(e, a);
                if d.is_empty() {
                    continue;
                }
                let found = part.lookup(a, d).unwrap();
                assert!(found.contains(&(i as u32)), "entry {i} algorithm {a}");
            }
        }
        assert_eq!(part.lookup(0, &entries[42].md5).unwrap(), vec![42, 5000]);
        assert!(part.lookup(0, &[0u8; 16]).unwrap().is_empty());
        assert!(part.lookup(2, &entries[1].md5).unwrap().is_empty());
        assert_eq!(part.cases().unwrap(), cases);
    }
}
