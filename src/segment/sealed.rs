//! Sealed segments: immutable, memory-mapped, searched in place.
//!
//! A sealed segment is a directory `seg-<id>/` of files written once:
//!
//! | file | magic | payload |
//! | --- | --- | --- |
//! | `vectors.bin` | `VIDXVEC\0` | n × dim f32, row-major; header field 2 names the codes (0 none) |
//! | `vectors16.bin` | `VIDXV16\0` | instead of `vectors.bin` in a collection with f16 storage: n × dim f16 (IEEE half bits), same header |
//! | `codes.bin` | `VIDXCOD\0` | quantized codes, when the segment has them: see [`write_codes`] |
//! | `graph.bin` | `VIDXGRF\0` | the HNSW graph, see [`crate::index::hnsw_mapped`] |
//! | `ids.bin` | `VIDXIDS\0` | id offsets (n+1 u64), ids in sorted order (n u32), id bytes |
//! | `meta.bin` | `VIDXMET\0` | metadata columns, see [`write_meta`] |
//! | `tomb-<gen>.bin` | `VIDXTMB\0` | tombstones: bitset of deleted offsets |
//!
//! A perceptual-hash segment has `bits.bin` and `mih.bin` (see
//! [`crate::segment::bits`]) instead of `vectors.bin` and `graph.bin`; ids,
//! metadata and tombstones are the same files.
//!
//! Only the tombstones change after sealing; each change is written as a new
//! `tomb-<gen>.bin` that the manifest then points at. Nothing of the vectors
//! or the graph is read into the heap: searches walk the maps directly.
//!
//! A segment with codes (the collection's [`Quantization`] when it was
//! written) is walked over `codes.bin` and `graph.bin` only; the best `ef`
//! candidates are then rescored with their f32 rows from `vectors.bin`, so
//! returned distances are exact while only codes and links need to stay hot.
//!
//! A segment written with [`VectorStorage::F16`] holds `vectors16.bin`
//! instead of `vectors.bin`: every reader of rows (walk, rescoring, exact
//! scans, points) goes through [`Rows`], which widens f16 to f32 as it reads.

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use parking_lot::RwLock;

use crate::error::{Error, Result};
use crate::index::distance::Metric;
use crate::index::f16vec::{self, VectorStorage};
use crate::index::filter::{Compiled, Filter, MetaIndex};
use crate::index::hnsw_mapped::Graph;
use crate::index::quant::{Codebook, Quantization, QueryCode};
use crate::pb;
use crate::segment::bits::{Probe, SealedBits};
use crate::storage::envelope::{FileWriter, MappedFile};
use crate::storage::versions::{CODES, SEALED};

pub const VECTORS_FILE: &str = "vectors.bin";
pub const GRAPH_FILE: &str = "graph.bin";
pub const IDS_FILE: &str = "ids.bin";
pub const META_FILE: &str = "meta.bin";
pub const CODES_FILE: &str = "codes.bin";
pub const VECTORS16_FILE: &str = "vectors16.bin";

const VEC_MAGIC: &[u8; 8] = b"VIDXVEC\0";
const VEC16_MAGIC: &[u8; 8] = b"VIDXV16\0";
const IDS_MAGIC: &[u8; 8] = b"VIDXIDS\0";
const META_MAGIC: &[u8; 8] = b"VIDXMET\0";
const TOMB_MAGIC: &[u8; 8] = b"VIDXTMB\0";
const CODES_MAGIC: &[u8; 8] = b"VIDXCOD\0";
/// Alignment of the code rows in `codes.bin` (a cache line).
const CODES_ALIGN: u64 = 64;

/// Metadata columns in file order. Strings are (offsets, bytes) pairs.
const STRING_COLUMNS: usize = 6;
const META_COLUMNS: usize = STRING_COLUMNS + 4;

/// How a sealed segment is written: the codes its walk reads (if any) and
/// how its vectors are stored.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Layout {
    pub quant: Quantization,
    pub storage: VectorStorage,
}

impl Layout {
    /// `none`, `sq8`, `f16`, `sq8-f16`, ...
    pub fn name(self) -> String {
        match (self.quant, self.storage) {
            (q, VectorStorage::F32) => q.name().into(),
            (Quantization::None, s) => s.name().into(),
            (q, s) => format!("{}-{}", q.name(), s.name()),
        }
    }
}

/// Writes every file but the graph (which [`crate::index::hnsw_mapped::export`] writes)
/// and the tombstones as `tomb-0.bin`, plus `codes.bin` unless the layout's
/// quantization is none. `vector(i)` is row i: the mutable segment's
/// vectors live in the graph's chunks, not in one slice.
pub fn write<'a>(
    dir: &Path,
    dim: usize,
    ids: &[String],
    vector: &(dyn Fn(usize) -> Option<&'a [f32]> + Sync),
    metadata: &[pb::Metadata],
    live: &[bool],
    layout: Layout,
) -> Result<()> {
    let n = ids.len();
    let quant = layout.quant;
    write_vectors(dir, dim, n, vector, layout)?;
    if quant != Quantization::None {
        write_codes(&dir.join(CODES_FILE), dim, n, vector, quant)?;
    }
    write_columns(dir, ids, metadata, live)
}

/// `vectors.bin` (f32) or `vectors16.bin` (f16), header fields
/// `[n, dim, quantization tag, 0]`.
fn write_vectors<'a>(
    dir: &Path,
    dim: usize,
    n: usize,
    vector: &(dyn Fn(usize) -> Option<&'a [f32]> + Sync),
    layout: Layout,
) -> Result<()> {
    let (name, magic) = match layout.storage {
        VectorStorage::F32 => (VECTORS_FILE, VEC_MAGIC),
        VectorStorage::F16 => (VECTORS16_FILE, VEC16_MAGIC),
    };
    let path = dir.join(name);
    let mut w = FileWriter::create(&path, magic, &SEALED)?;
    let mut half = vec![0u16; dim];
    for i in 0..n {
        match (vector(i), layout.storage) {
            (Some(v), VectorStorage::F32) if v.len() == dim => w.write_pod(v)?,
            (Some(v), VectorStorage::F16) if v.len() == dim => {
                f16vec::encode(v, &mut half);
                w.write_pod(&half)?
            }
            _ => {
                return Err(Error::Internal(format!(
                    "no {dim}-d vector at offset {i} while writing {}",
                    path.display()
                )));
            }
        }
    }
    w.finish([n as u64, dim as u64, layout.quant.tag(), 0])
}

/// Writes what every sealed segment has whatever it searches by: ids,
/// metadata columns and the tombstones as `tomb-0.bin`.
pub fn write_columns(
    dir: &Path,
    ids: &[String],
    metadata: &[pb::Metadata],
    live: &[bool],
) -> Result<()> {
    write_ids(&dir.join(IDS_FILE), ids)?;
    write_meta(&dir.join(META_FILE), metadata)?;
    write_tombstones(dir, 0, live)?;
    Ok(())
}

/// `codes.bin`: a codebook trained on these `n` rows, then per row its
/// squared norm and its code. Header fields `[n, dim, quantization tag,
/// code bytes]`; payload:
///
/// ```text
/// lo      dim f32    value of level 0, per dimension
/// step    dim f32    value between levels, per dimension
/// norms   n f32      squared norm of each f32 row (L2 ranks use it)
/// (zeros to a 64-byte boundary)
/// codes   n × code bytes, layout of crate::index::quant
/// ```
pub fn write_codes<'a>(
    path: &Path,
    dim: usize,
    n: usize,
    vector: &(dyn Fn(usize) -> Option<&'a [f32]> + Sync),
    quant: Quantization,
) -> Result<()> {
    use rayon::prelude::*;
    let book = Codebook::train(quant, dim, n, vector);
    let row_bytes = book.code_bytes();
    let row = |i: usize| {
        vector(i).ok_or_else(|| {
            Error::Internal(format!(
                "no vector at offset {i} while writing {}",
                path.display()
            ))
        })
    };
    let mut w = FileWriter::create(path, CODES_MAGIC, &CODES)?;
    w.write_pod(&book.lo)?;
    w.write_pod(&book.step)?;
    let norms = (0..n)
        .map(|i| row(i).map(|v| crate::index::distance::dot(v, v)))
        .collect::<Result<Vec<f32>>>()?;
    w.write_pod(&norms)?;
    let pad = (CODES_ALIGN - w.position() % CODES_ALIGN) % CODES_ALIGN;
    w.write(&vec![0u8; pad as usize])?;
    // Encoded in parallel, a block of rows at a time, written in order.
    const ROWS: usize = 8192;
    let mut buf = vec![0u8; ROWS * row_bytes];
    for start in (0..n).step_by(ROWS) {
        let end = (start + ROWS).min(n);
        let out = &mut buf[..(end - start) * row_bytes];
        out.par_chunks_mut(row_bytes)
            .enumerate()
            .try_for_each(|(j, code)| row(start + j).map(|v| book.encode(v, code)))?;
        w.write(out)?;
    }
    w.finish([n as u64, dim as u64, quant.tag(), row_bytes as u64])
}

/// An open `codes.bin`: its codebook (copied out at open) and sections.
struct Codes {
    file: MappedFile,
    book: Codebook,
    row_bytes: usize,
    norms_off: u64,
    codes_off: u64,
}

impl Codes {
    /// Opens and checks the codes of a segment of `n` `dim`-d points whose
    /// `vectors.bin` says they are `quant`.
    fn open(path: &Path, n: usize, dim: usize, quant: Quantization) -> Result<Codes> {
        if !path.exists() {
            return Err(Error::data_loss(
                path,
                format!(
                    "missing: the segment's vectors.bin says it has {} codes",
                    quant.name()
                ),
            ));
        }
        let file = MappedFile::open(path, CODES_MAGIC, &CODES)?;
        let row_bytes = quant.code_bytes(dim);
        let want = [n as u64, dim as u64, quant.tag(), row_bytes as u64];
        if file.fields != want {
            return Err(Error::data_loss(
                path,
                format!(
                    "header {:?} does not fit {n} {dim}-d points with {} codes ({want:?})",
                    file.fields,
                    quant.name()
                ),
            ));
        }
        let lo = file.slice::<f32>(0, dim as u64)?.to_vec();
        let step = file.slice::<f32>(4 * dim as u64, dim as u64)?.to_vec();
        if lo.iter().chain(&step).any(|x| !x.is_finite()) || step.iter().any(|&s| s <= 0.0) {
            return Err(Error::data_loss(
                path,
                "codebook holds a non-finite or non-positive range",
            ));
        }
        let norms_off = 8 * dim as u64;
        let codes_off = (norms_off + 4 * n as u64).div_ceil(CODES_ALIGN) * CODES_ALIGN;
        let c = Codes {
            file,
            book: Codebook {
                kind: quant,
                dim,
                lo,
                step,
            },
            row_bytes,
            norms_off,
            codes_off,
        };
        // Resolve both sections once so a bad length is refused here.
        c.norms(n)?;
        c.rows(n)?;
        Ok(c)
    }

    fn norms(&self, n: usize) -> Result<&[f32]> {
        self.file.slice::<f32>(self.norms_off, n as u64)
    }

    fn rows(&self, n: usize) -> Result<&[u8]> {
        self.file
            .slice::<u8>(self.codes_off, (n * self.row_bytes) as u64)
    }
}

fn write_ids(path: &Path, ids: &[String]) -> Result<()> {
    let mut offsets = Vec::with_capacity(ids.len() + 1);
    let mut total = 0u64;
    offsets.push(0u64);
    for id in ids {
        total += id.len() as u64;
        offsets.push(total);
    }
    let mut sorted: Vec<u32> = (0..ids.len() as u32).collect();
    sorted.sort_by(|a, b| ids[*a as usize].cmp(&ids[*b as usize]));
    let mut w = FileWriter::create(path, IDS_MAGIC, &SEALED)?;
    w.write_pod(&offsets)?;
    w.write_pod(&sorted)?;
    w.align8()?;
    for id in ids {
        w.write(id.as_bytes())?;
    }
    w.finish([ids.len() as u64, total, 0, 0])
}

/// `meta.bin` payload: a directory of `META_COLUMNS` × 4 u64, then the
/// columns. String column: offsets (n+1 u64) at `a`, bytes at `b`.
/// `captured_at`, `uploaded_at`: n i64 at `a`. `victim_identified`: n u8 at
/// `a`. `tags`: per-point ranges (n+1 u64) at `a` into a string column of
/// all tags with offsets at `b` and bytes at `c`.
pub fn write_meta(path: &Path, metadata: &[pb::Metadata]) -> Result<()> {
    let n = metadata.len() as u64;
    let strings: [fn(&pb::Metadata) -> &str; STRING_COLUMNS] = [
        |m| &m.media_id,
        |m| &m.upload_id,
        |m| &m.case_id,
        |m| &m.country,
        |m| &m.agency,
        |m| &m.series_label,
    ];
    let all_tags: Vec<&str> = metadata
        .iter()
        .flat_map(|m| m.tags.iter().map(String::as_str))
        .collect();
    let pad8 = |x: u64| x.div_ceil(8) * 8;
    fn str_bytes<'a>(get: &dyn Fn(usize) -> &'a str, count: usize) -> u64 {
        (0..count).map(|i| get(i).len() as u64).sum::<u64>()
    }
    // Lay out the sections first so the directory can lead the file.
    let mut dir = [[0u64; 4]; META_COLUMNS];
    let mut off = (META_COLUMNS * 32) as u64;
    for (c, get) in strings.iter().enumerate() {
        let bytes = str_bytes(&|i| get(&metadata[i]), metadata.len());
        dir[c] = [off, off + (n + 1) * 8, bytes, 0];
        off = pad8(off + (n + 1) * 8 + bytes);
    }
    for c in [STRING_COLUMNS, STRING_COLUMNS + 1] {
        dir[c] = [off, 0, 0, 0];
        off += n * 8;
    }
    dir[STRING_COLUMNS + 2] = [off, 0, 0, 0];
    off = pad8(off + n);
    let t = all_tags.len() as u64;
    let tag_bytes = str_bytes(&|i| all_tags[i], all_tags.len());
    dir[STRING_COLUMNS + 3] = [
        off,
        off + (n + 1) * 8,
        off + (n + 1) * 8 + (t + 1) * 8,
        tag_bytes,
    ];

    let mut w = FileWriter::create(path, META_MAGIC, &SEALED)?;
    for d in &dir {
        w.write_pod(d)?;
    }
    fn write_strings<'a>(
        w: &mut FileWriter,
        get: &dyn Fn(usize) -> &'a str,
        count: usize,
    ) -> Result<()> {
        let mut acc = 0u64;
        let mut offsets = Vec::with_capacity(count + 1);
        offsets.push(0u64);
        for i in 0..count {
            acc += get(i).len() as u64;
            offsets.push(acc);
        }
        w.write_pod(&offsets)?;
        for i in 0..count {
            w.write(get(i).as_bytes())?;
        }
        w.align8()
    }
    for get in &strings {
        write_strings(&mut w, &|i| get(&metadata[i]), metadata.len())?;
    }
    w.write_pod(&metadata.iter().map(|m| m.captured_at).collect::<Vec<i64>>())?;
    w.write_pod(&metadata.iter().map(|m| m.uploaded_at).collect::<Vec<i64>>())?;
    w.write(
        &metadata
            .iter()
            .map(|m| m.victim_identified as u8)
            .collect::<Vec<u8>>(),
    )?;
    w.align8()?;
    let mut ranges = Vec::with_capacity(metadata.len() + 1);
    let mut acc = 0u64;
    ranges.push(0u64);
    for m in metadata {
        acc += m.tags.len() as u64;
        ranges.push(acc);
    }
    w.write_pod(&ranges)?;
    write_strings(&mut w, &|i| all_tags[i], all_tags.len())?;
    debug_assert_eq!(
        w.position(),
        pad8(dir[STRING_COLUMNS + 3][2] + (t + 1) * 8 + tag_bytes)
    );
    w.finish([n, META_COLUMNS as u64, 0, 0])
}

/// Maps the vectors (`vectors.bin`, or `vectors16.bin` where the segment
/// has that instead) and `graph.bin` and checks they agree: (n, body).
fn open_vectors(dir: &Path, dim: usize) -> Result<(usize, Body)> {
    let half = dir.join(VECTORS16_FILE);
    // A segment holds one of the two; with neither, the error names the
    // f32 file.
    let storage = if !dir.join(VECTORS_FILE).exists() && half.exists() {
        VectorStorage::F16
    } else {
        VectorStorage::F32
    };
    let vectors = match storage {
        VectorStorage::F32 => MappedFile::open(&dir.join(VECTORS_FILE), VEC_MAGIC, &SEALED)?,
        VectorStorage::F16 => MappedFile::open(&half, VEC16_MAGIC, &SEALED)?,
    };
    let [n, vdim, ..] = vectors.fields;
    if vdim != dim as u64 {
        return Err(Error::data_loss(
            vectors.path(),
            format!("dimension {vdim}, collection has {dim}"),
        ));
    }
    let n = n as usize;
    let floats = n
        .checked_mul(dim)
        .ok_or_else(|| Error::data_loss(vectors.path(), format!("implausible point count {n}")))?;
    match storage {
        VectorStorage::F32 => vectors.slice::<f32>(0, floats as u64).map(|_| ())?,
        VectorStorage::F16 => vectors.slice::<u16>(0, floats as u64).map(|_| ())?,
    }
    let quant = Quantization::from_tag(vectors.fields[2]).ok_or_else(|| {
        Error::data_loss(
            vectors.path(),
            format!("unknown quantization {}", vectors.fields[2]),
        )
    })?;
    let codes = match quant {
        Quantization::None => None,
        q => Some(Codes::open(&dir.join(CODES_FILE), n, dim, q)?),
    };
    let graph = Graph::open(&dir.join(GRAPH_FILE))?;
    if graph.len() != n {
        return Err(Error::data_loss(
            graph.file.path(),
            format!("graph has {} nodes, vectors {n}", graph.len()),
        ));
    }
    Ok((
        n,
        Body::Vectors {
            vectors,
            storage,
            codes,
            graph,
        },
    ))
}

pub fn tomb_file_name(generation: u64) -> String {
    format!("tomb-{generation}.bin")
}

/// Writes `tomb-<generation>.bin`: bit i set = offset i deleted.
pub fn write_tombstones(dir: &Path, generation: u64, live: &[bool]) -> Result<String> {
    let mut words = vec![0u64; live.len().div_ceil(64)];
    for (i, l) in live.iter().enumerate() {
        if !l {
            words[i / 64] |= 1 << (i % 64);
        }
    }
    let name = tomb_file_name(generation);
    let mut w = FileWriter::create(&dir.join(&name), TOMB_MAGIC, &SEALED)?;
    w.write_pod(&words)?;
    w.finish([live.len() as u64, generation, 0, 0])?;
    Ok(name)
}

/// Reads a tombstone file fully (it is small: n bits) and checks it.
fn read_tombstones(path: &Path, n: usize) -> Result<Vec<u64>> {
    let f = MappedFile::open(path, TOMB_MAGIC, &SEALED)?;
    f.verify()?;
    if f.fields[0] != n as u64 {
        return Err(Error::data_loss(
            path,
            format!("tombstones for {} points, segment has {n}", f.fields[0]),
        ));
    }
    Ok(f.slice::<u64>(0, n.div_ceil(64) as u64)?.to_vec())
}

struct Tombstones {
    words: Vec<u64>,
    dead: usize,
    /// Changed since last written.
    dirty: bool,
}

impl Tombstones {
    #[inline]
    fn is_dead(&self, i: usize) -> bool {
        self.words
            .get(i / 64)
            .is_none_or(|w| w & (1 << (i % 64)) != 0)
    }
}

/// What a sealed segment searches by. One per open segment, so the
/// variants' difference in size costs nothing worth a box.
#[allow(clippy::large_enum_variant)]
enum Body {
    /// `vectors.bin` and the HNSW graph over them, and the codes a
    /// search walks if the segment was written with them.
    Vectors {
        vectors: MappedFile,
        /// What `vectors` holds (f32 or f16 rows).
        storage: VectorStorage,
        codes: Option<Codes>,
        graph: Graph,
    },
    /// A perceptual-hash segment: `bits.bin` and `mih.bin`.
    Bits(SealedBits),
}

/// An open sealed segment.
pub struct SealedSegment {
    pub id: u64,
    dir: PathBuf,
    dim: usize,
    metric: Metric,
    n: usize,
    body: Body,
    ids: MappedFile,
    meta: MappedFile,
    meta_dir: Vec<[u64; 4]>,
    tomb: RwLock<Tombstones>,
    /// Metadata indexed for filters; built on first use (or by the
    /// collection's background pass after open), not at open.
    meta_index: std::sync::OnceLock<std::result::Result<MetaIndex, String>>,
}

impl SealedSegment {
    /// Maps a segment's files and checks their headers and sizes (not their
    /// payload checksums: see [`SealedSegment::verify`]).
    pub fn open(
        id: u64,
        dir: &Path,
        dim: usize,
        metric: Metric,
        tomb_file: &str,
    ) -> Result<SealedSegment> {
        let (n, body) = if metric == Metric::Hamming {
            // Codes have no header of their own to take n from first.
            let ids = MappedFile::open(&dir.join(IDS_FILE), IDS_MAGIC, &SEALED)?;
            let n = usize::try_from(ids.fields[0]).map_err(|_| {
                Error::data_loss(
                    ids.path(),
                    format!("implausible point count {}", ids.fields[0]),
                )
            })?;
            (n, Body::Bits(SealedBits::open(dir, n, dim / 64)?))
        } else {
            open_vectors(dir, dim)?
        };
        let ids = MappedFile::open(&dir.join(IDS_FILE), IDS_MAGIC, &SEALED)?;
        if ids.fields[0] != n as u64 {
            return Err(Error::data_loss(
                ids.path(),
                format!("{} ids, vectors {n}", ids.fields[0]),
            ));
        }
        let meta = MappedFile::open(&dir.join(META_FILE), META_MAGIC, &SEALED)?;
        if meta.fields != [n as u64, META_COLUMNS as u64, 0, 0] {
            return Err(Error::data_loss(
                meta.path(),
                format!("header {:?} does not fit {n} points", meta.fields),
            ));
        }
        let meta_dir: Vec<[u64; 4]> = meta
            .slice::<u64>(0, (META_COLUMNS * 4) as u64)?
            .chunks_exact(4)
            .map(|c| [c[0], c[1], c[2], c[3]])
            .collect();
        let words = read_tombstones(&dir.join(tomb_file), n)?;
        // Bits past n are never set, so a popcount is the dead count.
        let dead = words.iter().map(|w| w.count_ones() as usize).sum();
        let seg = SealedSegment {
            id,
            dir: dir.to_owned(),
            dim,
            metric,
            n,
            body,
            ids,
            meta,
            meta_dir,
            meta_index: std::sync::OnceLock::new(),
            tomb: RwLock::new(Tombstones {
                words,
                dead,
                dirty: false,
            }),
        };
        // Touch every section once so bad offsets are refused here, not in a query.
        if n > 0 {
            seg.id_at(0)?;
            seg.metadata_at(n - 1)?;
            seg.id_at(n - 1)?;
        }
        Ok(seg)
    }

    /// Reads every file's payload and checks its CRC.
    pub fn verify(&self) -> Result<()> {
        match &self.body {
            Body::Vectors {
                vectors,
                codes,
                graph,
                ..
            } => {
                vectors.verify()?;
                if let Some(c) = codes {
                    c.file.verify()?;
                }
                graph.file.verify()?;
            }
            Body::Bits(b) => b.verify()?,
        }
        self.ids.verify()?;
        self.meta.verify()
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Points held, live or not.
    pub fn len(&self) -> usize {
        self.n
    }

    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    pub fn live_count(&self) -> usize {
        self.n - self.tomb.read().dead
    }

    pub fn dead_count(&self) -> usize {
        self.tomb.read().dead
    }

    pub fn disk_bytes(&self) -> u64 {
        crate::storage::durable::dir_size(&self.dir)
    }

    /// How this segment's walk reads vectors.
    pub fn quantization(&self) -> Quantization {
        self.codes().map_or(Quantization::None, |c| c.book.kind)
    }

    /// The quantized codes of a vector segment written with them.
    fn codes(&self) -> Option<&Codes> {
        match &self.body {
            Body::Vectors { codes, .. } => codes.as_ref(),
            Body::Bits(_) => None,
        }
    }

    /// Bytes a graph walk reads from (what must stay in memory for searches
    /// at full speed): the graph and the codes, or the graph and the f32
    /// vectors when there are no codes. Rescoring reads a few f32 rows per
    /// query besides.
    pub fn hot_bytes(&self) -> u64 {
        let (vectors, graph) = match &self.body {
            Body::Vectors { vectors, graph, .. } => (vectors, graph),
            // A hash search reads the codes and the multi-index.
            Body::Bits(b) => return b.len_bytes(),
        };
        let walked = match self.codes() {
            // L2 ranks read the norms too; cosine and dot do not.
            Some(c) => {
                (self.n * c.row_bytes) as u64
                    + if self.metric == Metric::L2 {
                        4 * self.n as u64
                    } else {
                        0
                    }
            }
            None => vectors.len_bytes(),
        };
        walked + graph.file.len_bytes()
    }

    /// How this segment's vectors are stored (f32 for hash segments).
    pub fn vector_storage(&self) -> VectorStorage {
        match &self.body {
            Body::Vectors { storage, .. } => *storage,
            Body::Bits(_) => VectorStorage::F32,
        }
    }

    fn vectors(&self) -> Result<Rows<'_>> {
        let (vectors, storage) = match &self.body {
            Body::Vectors {
                vectors, storage, ..
            } => (vectors, storage),
            Body::Bits(_) => {
                return Err(Error::Internal(format!(
                    "{}: a perceptual-hash segment holds codes, not vectors",
                    self.dir.display()
                )));
            }
        };
        let len = (self.n * self.dim) as u64;
        Ok(match storage {
            VectorStorage::F32 => Rows::F32(vectors.slice::<f32>(0, len)?, self.dim),
            VectorStorage::F16 => Rows::F16(vectors.slice::<u16>(0, len)?, self.dim),
        })
    }

    /// The code and quality at offset `i` (perceptual-hash segments).
    pub fn code_at(&self, i: usize) -> Result<(&[u64], u8)> {
        match &self.body {
            Body::Bits(b) => b.code_at(i),
            Body::Vectors { .. } => Err(Error::Internal(format!(
                "{}: a vector segment holds no codes",
                self.dir.display()
            ))),
        }
    }

    /// Exact Hamming search (see [`SealedBits::search`]) over live codes of
    /// quality at least `min_quality` passing `filter`, `exclude` left out.
    pub fn search_codes(
        &self,
        p: &Probe<'_>,
        exclude: Option<usize>,
        min_quality: u8,
        filter: Option<&Filter>,
    ) -> Result<Vec<(usize, u32)>> {
        let Body::Bits(b) = &self.body else {
            return Ok(Vec::new());
        };
        let compiled = self.compile(filter)?;
        let quality = b.qualities()?;
        let t = self.tomb.read();
        let mut keep = |i: usize| {
            Some(i) != exclude
                && !t.is_dead(i)
                && quality.get(i).is_some_and(|q| *q >= min_quality)
                && compiled.as_ref().is_none_or(|c| c.accepts(i))
        };
        let probe = Probe {
            filter: compiled.as_ref(),
            ..*p
        };
        b.search(&probe, &mut keep)
    }

    /// Row `i` as f32 (widened from f16 in an f16 segment).
    pub fn vector_at(&self, i: usize) -> Result<Cow<'_, [f32]>> {
        self.vectors()?
            .get(i)
            .ok_or_else(|| Error::Internal(format!("offset {i} outside segment of {}", self.n)))
    }

    fn id_offsets(&self) -> Result<&[u64]> {
        self.ids.slice::<u64>(0, self.n as u64 + 1)
    }

    pub fn id_at(&self, i: usize) -> Result<&str> {
        let offs = self.id_offsets()?;
        let base = ((self.n as u64 + 1) * 8 + (self.n as u64 * 4)).div_ceil(8) * 8;
        let (a, b) = (offs[i], offs[i + 1]);
        let bytes = self
            .ids
            .slice::<u8>(base.saturating_add(a), b.saturating_sub(a))?;
        std::str::from_utf8(bytes)
            .map_err(|_| Error::data_loss(self.ids.path(), format!("id {i} is not UTF-8")))
    }

    /// Offset of `id` if it is live here. An id replaced while its segment
    /// was mutable appears more than once (the older copies dead); the
    /// copies sit side by side in the sorted index, so find the first and
    /// return the live one.
    pub fn lookup(&self, id: &str) -> Result<Option<usize>> {
        let sorted = self
            .ids
            .slice::<u32>((self.n as u64 + 1) * 8, self.n as u64)?;
        let at = |pos: usize| -> Result<usize> {
            let off = sorted[pos] as usize;
            if off >= self.n {
                return Err(Error::data_loss(
                    self.ids.path(),
                    "sorted index points outside the segment",
                ));
            }
            Ok(off)
        };
        let (mut lo, mut hi) = (0usize, self.n);
        while lo < hi {
            let mid = (lo + hi) / 2;
            if self.id_at(at(mid)?)? < id {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        let t = self.tomb.read();
        while lo < self.n {
            let off = at(lo)?;
            if self.id_at(off)? != id {
                break;
            }
            if !t.is_dead(off) {
                return Ok(Some(off));
            }
            lo += 1;
        }
        Ok(None)
    }

    pub fn is_live(&self, i: usize) -> bool {
        !self.tomb.read().is_dead(i)
    }

    /// Tombstones offset `i`; true if it was live.
    pub fn kill(&self, i: usize) -> bool {
        let mut t = self.tomb.write();
        if i >= self.n || t.is_dead(i) {
            return false;
        }
        t.words[i / 64] |= 1 << (i % 64);
        t.dead += 1;
        t.dirty = true;
        true
    }

    /// Liveness of every offset.
    pub fn live_bits(&self) -> Vec<bool> {
        let t = self.tomb.read();
        (0..self.n).map(|i| !t.is_dead(i)).collect()
    }

    /// Writes the tombstones as `tomb-<generation>.bin` if they changed;
    /// returns the new file name, or None when nothing changed.
    pub fn persist_tombstones(&self, generation: u64) -> Result<Option<String>> {
        let live = {
            let t = self.tomb.read();
            if !t.dirty {
                return Ok(None);
            }
            (0..self.n).map(|i| !t.is_dead(i)).collect::<Vec<bool>>()
        };
        let name = write_tombstones(&self.dir, generation, &live)?;
        // Deletes that raced with the write stay dirty: only clear if the
        // written state is still the current one.
        let mut t = self.tomb.write();
        if (0..self.n).all(|i| t.is_dead(i) != live[i]) {
            t.dirty = false;
        }
        Ok(Some(name))
    }

    /// Marks the tombstones changed, so that the next
    /// [`SealedSegment::persist_tombstones`] writes them again: the
    /// manifest that was to name the file written last could not be stored.
    pub fn mark_tombstones_dirty(&self) {
        self.tomb.write().dirty = true;
    }

    fn string_at(&self, column: usize, i: usize) -> Result<&str> {
        let [a, b, _, _] = self.meta_dir[column];
        let offs = self.meta.slice::<u64>(a, self.n as u64 + 1)?;
        let (s, e) = (offs[i], offs[i + 1]);
        let bytes = self
            .meta
            .slice::<u8>(b.saturating_add(s), e.saturating_sub(s))?;
        std::str::from_utf8(bytes).map_err(|_| {
            Error::data_loss(
                self.meta.path(),
                format!("column {column} row {i} is not UTF-8"),
            )
        })
    }

    /// Live offsets whose metadata passes `filter`, ascending.
    pub fn passing(&self, filter: &Filter) -> Result<Vec<usize>> {
        let c = self.meta_index()?.compile(filter);
        Ok(c.passing()
            .into_iter()
            .map(|o| o as usize)
            .filter(|&o| self.is_live(o))
            .collect())
    }

    pub fn metadata_at(&self, i: usize) -> Result<pb::Metadata> {
        let s = |c| self.string_at(c, i).map(str::to_owned);
        let n = self.n as u64;
        let i64_at =
            |c: usize| -> Result<i64> { Ok(self.meta.slice::<i64>(self.meta_dir[c][0], n)?[i]) };
        let flag = self
            .meta
            .slice::<u8>(self.meta_dir[STRING_COLUMNS + 2][0], n)?[i]
            != 0;
        let [ra, ta, tb, _] = self.meta_dir[STRING_COLUMNS + 3];
        let ranges = self.meta.slice::<u64>(ra, n + 1)?;
        let (t0, t1) = (ranges[i], ranges[i + 1]);
        let total_tags = ranges[self.n];
        let tag_offs = self.meta.slice::<u64>(ta, total_tags.saturating_add(1))?;
        let mut tags = Vec::new();
        for t in t0..t1.min(total_tags) {
            let (s0, s1) = (tag_offs[t as usize], tag_offs[t as usize + 1]);
            let bytes = self
                .meta
                .slice::<u8>(tb.saturating_add(s0), s1.saturating_sub(s0))?;
            tags.push(
                std::str::from_utf8(bytes)
                    .map_err(|_| {
                        Error::data_loss(self.meta.path(), format!("tag of row {i} is not UTF-8"))
                    })?
                    .to_owned(),
            );
        }
        Ok(pb::Metadata {
            media_id: s(0)?,
            upload_id: s(1)?,
            case_id: s(2)?,
            country: s(3)?,
            agency: s(4)?,
            series_label: s(5)?,
            captured_at: i64_at(STRING_COLUMNS)?,
            uploaded_at: i64_at(STRING_COLUMNS + 1)?,
            victim_identified: flag,
            tags,
        })
    }

    /// The point at offset `i`.
    pub fn point_at(&self, i: usize) -> Result<pb::Point> {
        if let Body::Bits(b) = &self.body {
            let (code, quality) = b.code_at(i)?;
            return Ok(pb::Point {
                id: self.id_at(i)?.to_owned(),
                metadata: Some(self.metadata_at(i)?),
                bits: crate::index::hamming::bytes_of(code),
                quality: quality as u32,
                ..Default::default()
            });
        }
        Ok(pb::Point {
            id: self.id_at(i)?.to_owned(),
            vector: self.vector_at(i)?.into_owned(),
            metadata: Some(self.metadata_at(i)?),
            ..Default::default()
        })
    }

    /// The metadata index, built from the columns on first call.
    pub fn meta_index(&self) -> Result<&MetaIndex> {
        let built = self.meta_index.get_or_init(|| {
            let mut ix = MetaIndex::default();
            for i in 0..self.n {
                ix.push(&self.metadata_at(i).map_err(|e| e.to_string())?);
            }
            ix.seal();
            Ok(ix)
        });
        built
            .as_ref()
            .map_err(|e| Error::data_loss(self.meta.path(), e.clone()))
    }

    /// `filter` resolved against this segment's metadata index.
    fn compile(&self, filter: Option<&Filter>) -> Result<Option<Compiled<'_>>> {
        filter
            .map(|f| Ok(self.meta_index()?.compile(f)))
            .transpose()
            .map(|c| c.filter(|c| !c.accepts_all()))
    }

    /// Approximate k-NN over live points that pass `filter`, with the
    /// in-place graph search, or an exact scan of the passing points when the
    /// filter lets few through (see `mutable::MutableSegment::search`).
    pub fn search(
        &self,
        query: &[f32],
        k: usize,
        ef: usize,
        exclude: Option<usize>,
        filter: Option<&Filter>,
    ) -> Result<Vec<(usize, f32)>> {
        let vectors = self.vectors()?;
        let compiled = self.compile(filter)?;
        let t = self.tomb.read();
        let live = |i: usize| Some(i) != exclude && !t.is_dead(i);
        let keep = |i: usize| live(i) && compiled.as_ref().is_none_or(|c| c.accepts(i));
        if let Some(c) = &compiled {
            let est = c.estimate();
            if est == 0 {
                return Ok(Vec::new());
            }
            if est <= crate::index::planner::exact_scan_limit(self.n, ef) {
                let mut hits: Vec<(usize, f32)> = c
                    .passing()
                    .into_iter()
                    .map(|o| o as usize)
                    // `passing` already applied the filter.
                    .filter(|&o| live(o))
                    .filter_map(|o| Some((o, vectors.rank(self.metric, query, o)?)))
                    .collect();
                crate::index::planner::top_k(&mut hits, k);
                return Ok(hits);
            }
        }
        let Body::Vectors { graph, .. } = &self.body else {
            return Ok(Vec::new());
        };
        let accept = |i: u32| keep(i as usize);
        if let Some(codes) = self.codes() {
            return self.walk_codes(codes, vectors, query, k, ef, &accept);
        }
        let (dim, metric) = (self.dim, self.metric);
        let hits = match vectors {
            Rows::F32(vectors, _) => {
                let space = crate::index::hnsw_mapped::Space {
                    vectors,
                    dim,
                    metric,
                };
                graph.search(space, query, k, ef, &accept)?
            }
            Rows::F16(half, _) => graph.search_rows(
                |i| half.get(i as usize * dim..(i as usize + 1) * dim),
                |_, x| f16vec::rank(metric, query, x),
                k,
                ef,
                &accept,
            )?,
        };
        Ok(hits.into_iter().map(|(i, r)| (i as usize, r)).collect())
    }

    /// The graph walk over codes (estimated ranks, beam `ef`), then the `ef`
    /// best rescored with their f32 rows; the `k` best by exact rank.
    fn walk_codes(
        &self,
        codes: &Codes,
        vectors: Rows<'_>,
        query: &[f32],
        k: usize,
        ef: usize,
        accept: &dyn Fn(u32) -> bool,
    ) -> Result<Vec<(usize, f32)>> {
        let qc: QueryCode = codes.book.prepare(query, self.metric);
        let rows = codes.rows(self.n)?;
        let norms = if self.metric == Metric::L2 {
            codes.norms(self.n)?
        } else {
            &[]
        };
        let Body::Vectors { graph, .. } = &self.body else {
            return Ok(Vec::new());
        };
        let rb = codes.row_bytes;
        let ef = ef.max(k);
        let found = graph.search_rows(
            |i| rows.get(i as usize * rb..(i as usize + 1) * rb),
            |i, c| qc.rank(c, norms.get(i as usize).copied().unwrap_or(0.0)),
            ef,
            ef,
            accept,
        )?;
        let mut hits: Vec<(usize, f32)> = Vec::with_capacity(found.len());
        for (j, &(i, _)) in found.iter().enumerate() {
            // The rows sit at random places in the file: fetch the next
            // one while this one is compared.
            if let Some(&(next, _)) = found.get(j + 1) {
                vectors.prefetch(next as usize);
            }
            if let Some(r) = vectors.rank(self.metric, query, i as usize) {
                hits.push((i as usize, r));
            }
        }
        crate::index::planner::top_k(&mut hits, k);
        Ok(hits)
    }

    /// Exact k-NN over live points that pass `filter`.
    pub fn exact_search(
        &self,
        query: &[f32],
        k: usize,
        exclude: Option<usize>,
        filter: Option<&Filter>,
    ) -> Result<Vec<(usize, f32)>> {
        let vectors = self.vectors()?;
        let compiled = self.compile(filter)?;
        let t = self.tomb.read();
        let mut hits: Vec<(usize, f32)> = (0..self.n)
            .filter(|&i| {
                Some(i) != exclude
                    && !t.is_dead(i)
                    && compiled.as_ref().is_none_or(|c| c.accepts(i))
            })
            .filter_map(|i| Some((i, vectors.rank(self.metric, query, i)?)))
            .collect();
        crate::index::planner::top_k(&mut hits, k);
        Ok(hits)
    }
}

/// A vector segment's rows as stored, `dim` wide: f32, or f16 bits.
#[derive(Clone, Copy)]
enum Rows<'a> {
    F32(&'a [f32], usize),
    F16(&'a [u16], usize),
}

impl<'a> Rows<'a> {
    /// Rank of row `i` for `query` (None past the end).
    #[inline]
    fn rank(&self, metric: Metric, query: &[f32], i: usize) -> Option<f32> {
        match *self {
            Rows::F32(v, d) => v.get(i * d..(i + 1) * d).map(|x| metric.rank(query, x)),
            Rows::F16(v, d) => v
                .get(i * d..(i + 1) * d)
                .map(|x| f16vec::rank(metric, query, x)),
        }
    }

    /// Row `i` as f32: borrowed from an f32 file, widened from an f16 one.
    fn get(&self, i: usize) -> Option<Cow<'a, [f32]>> {
        match *self {
            Rows::F32(v, d) => v.get(i * d..(i + 1) * d).map(Cow::Borrowed),
            Rows::F16(v, d) => v
                .get(i * d..(i + 1) * d)
                .map(|x| Cow::Owned(f16vec::decode(x))),
        }
    }

    /// Asks the CPU to fetch row `i` (rescoring reads rows in no order).
    #[inline]
    fn prefetch(&self, i: usize) {
        match *self {
            Rows::F32(v, d) => {
                if let Some(x) = v.get(i * d..(i + 1) * d) {
                    crate::index::hnsw::prefetch(x);
                }
            }
            Rows::F16(v, d) => {
                if let Some(x) = v.get(i * d..(i + 1) * d) {
                    crate::index::hnsw::prefetch(x);
                }
            }
        }
    }
}
