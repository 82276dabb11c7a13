//! Minimal NumPy `.npy` reader and writer for 2-D, C-order float matrices.
//!
//! This module owns the `.npy` file format as vidx uses it: loading embedding
//! matrices for `vidx ingest`, `vidx search` and benchmarks, parsing the demo
//! set embedded in the binary, and writing the matrices of `vidx gen`.
//!
//! Reading ([`read_matrix`], [`parse_matrix`]) accepts format versions 1.0,
//! 2.0 and 3.0, little-endian `<f4`, `<f2` (converted through the `half`
//! crate) and `<f8` (narrowed to `f32`), shape `(rows, cols)`,
//! `fortran_order: False`. Anything else — other dtypes, big-endian data,
//! Fortran order, 1-D or 3-D shapes, a bad magic string, a truncated or
//! over-long file — is refused with an [`NpyError`] that names the file and
//! what is wrong. Writing ([`write_matrix`], or row by row with [`NpyWriter`])
//! produces format 1.0 (2.0 only if a header could not fit, which a 2-D header
//! never does) with the header padded so the data starts at a multiple of 64
//! bytes, as NumPy does: the files are byte-identical to `np.save`'s.

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

/// The six magic bytes every `.npy` file starts with.
const MAGIC: &[u8; 6] = b"\x93NUMPY";
/// NumPy aligns the start of the data to this many bytes.
const ALIGN: usize = 64;
/// Headers larger than this are refused; NumPy itself caps them at 10 000.
const MAX_HEADER_LEN: usize = 1 << 20;
/// Bytes converted per read while loading the data section.
const READ_CHUNK: usize = 1 << 16;

/// Errors of reading or writing a `.npy` file; every message names the file.
#[derive(Debug, thiserror::Error)]
pub enum NpyError {
    /// The file could not be opened, read, created or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: io::Error,
    },
    /// The file does not start with `\x93NUMPY`.
    #[error("{}: not a .npy file (bad magic bytes)", path.display())]
    BadMagic {
        /// The file.
        path: PathBuf,
    },
    /// A format version other than 1.0, 2.0 or 3.0.
    #[error("{}: unsupported .npy format version {major}.{minor}", path.display())]
    UnsupportedVersion {
        /// The file.
        path: PathBuf,
        /// Major version byte.
        major: u8,
        /// Minor version byte.
        minor: u8,
    },
    /// The header dictionary is malformed or misses a key.
    #[error("{}: malformed .npy header: {reason}", path.display())]
    BadHeader {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A dtype other than `<f4`, `<f2` or `<f8`.
    #[error(
        "{}: unsupported dtype {descr:?}; expected little-endian float '<f4', '<f2' or '<f8'",
        path.display()
    )]
    UnsupportedDtype {
        /// The file.
        path: PathBuf,
        /// The `descr` value of the header.
        descr: String,
    },
    /// A big-endian float dtype such as `>f4`.
    #[error(
        "{}: big-endian dtype {descr:?} is not supported; convert with arr.astype('<f4')",
        path.display()
    )]
    BigEndian {
        /// The file.
        path: PathBuf,
        /// The `descr` value of the header.
        descr: String,
    },
    /// `fortran_order: True`.
    #[error(
        "{}: Fortran-order (column-major) arrays are not supported; save a C-order array \
         (np.ascontiguousarray)",
        path.display()
    )]
    FortranOrder {
        /// The file.
        path: PathBuf,
    },
    /// A shape that is not `(rows, cols)`.
    #[error("{}: expected a 2-D array (rows, cols), found shape {shape:?}", path.display())]
    NotTwoD {
        /// The file.
        path: PathBuf,
        /// The shape found.
        shape: Vec<usize>,
    },
    /// The shape's byte size overflows `usize`.
    #[error("{}: shape {rows} x {cols} is too large", path.display())]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// Rows.
        rows: usize,
        /// Columns.
        cols: usize,
    },
    /// The file holds fewer data bytes than the header announces.
    #[error(
        "{}: truncated: header announces {expected} data bytes, file holds {actual}",
        path.display()
    )]
    Truncated {
        /// The file.
        path: PathBuf,
        /// Data bytes the shape and dtype require.
        expected: u64,
        /// Data bytes present.
        actual: u64,
    },
    /// The file holds more bytes than the header announces.
    #[error(
        "{}: {extra} unexpected bytes after the {expected} data bytes the header announces",
        path.display()
    )]
    TrailingBytes {
        /// The file.
        path: PathBuf,
        /// Data bytes the shape and dtype require.
        expected: u64,
        /// Bytes beyond them.
        extra: u64,
    },
    /// `write_matrix` got a slice whose length is not `rows * cols`, or an
    /// [`NpyWriter`] got a row of the wrong width or count.
    #[error("{}: {reason}", path.display())]
    Shape {
        /// The file.
        path: PathBuf,
        /// What does not match.
        reason: String,
    },
    /// A finite value too large for `f16`.
    #[error(
        "{}: value {value} at row {row}, column {col} does not fit in f16 (max 65504)",
        path.display()
    )]
    F16Overflow {
        /// The file.
        path: PathBuf,
        /// Row of the value.
        row: usize,
        /// Column of the value.
        col: usize,
        /// The value.
        value: f32,
    },
}

/// A dense row-major matrix of `f32`: row `i` is `data[i * cols..(i + 1) * cols]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Matrix {
    /// Number of rows (points).
    pub rows: usize,
    /// Number of columns (dimension).
    pub cols: usize,
    /// `rows * cols` values, row-major.
    pub data: Vec<f32>,
}

impl Matrix {
    /// Row `i`. Panics if `i >= rows`.
    pub fn row(&self, i: usize) -> &[f32] {
        &self.data[i * self.cols..(i + 1) * self.cols]
    }
}

/// Element type of a written `.npy` file.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Default,
    clap::ValueEnum,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Dtype {
    /// 32-bit IEEE float, `<f4`.
    #[default]
    F32,
    /// 16-bit IEEE half float, `<f2`: half the size, about 3 significant digits.
    F16,
}

impl Dtype {
    /// The NumPy `descr` string.
    pub fn descr(self) -> &'static str {
        match self {
            Dtype::F32 => "<f4",
            Dtype::F16 => "<f2",
        }
    }

    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            Dtype::F32 => 4,
            Dtype::F16 => 2,
        }
    }
}

/// Element types accepted when reading.
#[derive(Debug, Clone, Copy)]
enum ReadDtype {
    F2,
    F4,
    F8,
}

impl ReadDtype {
    fn size(self) -> usize {
        match self {
            ReadDtype::F2 => 2,
            ReadDtype::F4 => 4,
            ReadDtype::F8 => 8,
        }
    }
}

/// Reads a 2-D C-order `<f4`, `<f2` or `<f8` `.npy` file into an `f32` matrix.
pub fn read_matrix(path: &Path) -> Result<Matrix, NpyError> {
    let io_err = |source| NpyError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = File::open(path).map_err(io_err)?;
    let file_len = file.metadata().map_err(io_err)?.len();
    read_from(BufReader::new(file), file_len, path)
}

/// Parses a `.npy` file held in memory (e.g. embedded with `include_bytes!`)
/// under the same rules as [`read_matrix`]; `name` stands for the path in
/// error messages.
pub fn parse_matrix(bytes: &[u8], name: &str) -> Result<Matrix, NpyError> {
    read_from(bytes, bytes.len() as u64, Path::new(name))
}

/// Reads a whole `.npy` stream of `file_len` bytes; `path` names it in errors.
fn read_from(mut reader: impl Read, file_len: u64, path: &Path) -> Result<Matrix, NpyError> {
    let io_err = |source| NpyError::Io {
        path: path.to_path_buf(),
        source,
    };
    let (header, data_offset) = read_header(&mut reader, path, file_len)?;
    let (dtype, rows, cols) = parse_header(&header, path)?;

    let too_large = || NpyError::TooLarge {
        path: path.to_path_buf(),
        rows,
        cols,
    };
    let count = rows.checked_mul(cols).ok_or_else(too_large)?;
    let expected = count
        .checked_mul(dtype.size())
        .and_then(|b| u64::try_from(b).ok())
        .ok_or_else(too_large)?;
    let actual = file_len - data_offset;
    if actual < expected {
        return Err(NpyError::Truncated {
            path: path.to_path_buf(),
            expected,
            actual,
        });
    }
    if actual > expected {
        return Err(NpyError::TrailingBytes {
            path: path.to_path_buf(),
            expected,
            extra: actual - expected,
        });
    }

    let mut data = Vec::with_capacity(count);
    let mut buf = vec![0u8; READ_CHUNK];
    let mut remaining = count * dtype.size();
    while remaining > 0 {
        let n = remaining.min(READ_CHUNK);
        let chunk = &mut buf[..n];
        reader.read_exact(chunk).map_err(|e| {
            if e.kind() == io::ErrorKind::UnexpectedEof {
                // The file shrank while we read it.
                NpyError::Truncated {
                    path: path.to_path_buf(),
                    expected,
                    actual: expected - remaining as u64,
                }
            } else {
                io_err(e)
            }
        })?;
        match dtype {
            ReadDtype::F2 => data.extend(
                chunk
                    .chunks_exact(2)
                    .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32()),
            ),
            ReadDtype::F4 => data.extend(
                chunk
                    .chunks_exact(4)
                    .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
            ),
            ReadDtype::F8 => data.extend(chunk.chunks_exact(8).map(|b| {
                f64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]) as f32
            })),
        }
        remaining -= n;
    }
    Ok(Matrix { rows, cols, data })
}

/// Writes `data` (`rows * cols` values, row-major) as a 2-D `.npy` file of the
/// given element type, replacing any existing file.
pub fn write_matrix(
    path: &Path,
    rows: usize,
    cols: usize,
    data: &[f32],
    dtype: Dtype,
) -> Result<(), NpyError> {
    if Some(data.len()) != rows.checked_mul(cols) {
        return Err(NpyError::Shape {
            path: path.to_path_buf(),
            reason: format!("{} values given for a {rows} x {cols} matrix", data.len()),
        });
    }
    let mut writer = NpyWriter::create(path, rows, cols, dtype)?;
    for r in 0..rows {
        writer.write_row(&data[r * cols..(r + 1) * cols])?;
    }
    writer.finish()
}

/// Writes a 2-D `<i4` matrix (e.g. ground-truth neighbour ids for other
/// tools to read with numpy).
pub fn write_i32_matrix(
    path: &Path,
    rows: usize,
    cols: usize,
    data: &[i32],
) -> Result<(), NpyError> {
    let io = |source| NpyError::Io {
        path: path.to_path_buf(),
        source,
    };
    if Some(data.len()) != rows.checked_mul(cols) {
        return Err(NpyError::Shape {
            path: path.to_path_buf(),
            reason: format!("{} values given for a {rows} x {cols} matrix", data.len()),
        });
    }
    let mut out = BufWriter::new(File::create(path).map_err(io)?);
    out.write_all(&encode_header("<i4", rows, cols))
        .map_err(io)?;
    for v in data {
        out.write_all(&v.to_le_bytes()).map_err(io)?;
    }
    out.flush().map_err(io)
}

/// Streams a 2-D `.npy` file row by row, so a large matrix never has to be
/// held in memory. The shape is fixed up front; [`NpyWriter::finish`] checks
/// that exactly `rows` rows were written and flushes.
pub struct NpyWriter {
    path: PathBuf,
    out: BufWriter<File>,
    rows: usize,
    cols: usize,
    dtype: Dtype,
    written: usize,
    buf: Vec<u8>,
}

impl std::fmt::Debug for NpyWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NpyWriter")
            .field("path", &self.path)
            .field("rows", &self.rows)
            .field("cols", &self.cols)
            .field("dtype", &self.dtype)
            .field("written", &self.written)
            .finish()
    }
}

impl NpyWriter {
    /// Creates (or truncates) `path` and writes the header of a `rows x cols`
    /// matrix of `dtype`.
    pub fn create(path: &Path, rows: usize, cols: usize, dtype: Dtype) -> Result<Self, NpyError> {
        let header = encode_header(dtype.descr(), rows, cols);
        let file = File::create(path).map_err(|source| NpyError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let mut out = BufWriter::new(file);
        out.write_all(&header).map_err(|source| NpyError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(NpyWriter {
            path: path.to_path_buf(),
            out,
            rows,
            cols,
            dtype,
            written: 0,
            buf: Vec::with_capacity(cols * dtype.size()),
        })
    }

    /// Appends one row of `cols` values.
    pub fn write_row(&mut self, row: &[f32]) -> Result<(), NpyError> {
        if row.len() != self.cols {
            return Err(NpyError::Shape {
                path: self.path.clone(),
                reason: format!("row of {} values, expected {}", row.len(), self.cols),
            });
        }
        if self.written >= self.rows {
            return Err(NpyError::Shape {
                path: self.path.clone(),
                reason: format!("more than the {} rows announced", self.rows),
            });
        }
        self.buf.clear();
        match self.dtype {
            Dtype::F32 => {
                for v in row {
                    self.buf.extend_from_slice(&v.to_le_bytes());
                }
            }
            Dtype::F16 => {
                for (col, &v) in row.iter().enumerate() {
                    let h = half::f16::from_f32(v);
                    if v.is_finite() && !h.is_finite() {
                        return Err(NpyError::F16Overflow {
                            path: self.path.clone(),
                            row: self.written,
                            col,
                            value: v,
                        });
                    }
                    self.buf.extend_from_slice(&h.to_le_bytes());
                }
            }
        }
        self.out
            .write_all(&self.buf)
            .map_err(|source| NpyError::Io {
                path: self.path.clone(),
                source,
            })?;
        self.written += 1;
        Ok(())
    }

    /// Checks the row count and flushes the file.
    pub fn finish(mut self) -> Result<(), NpyError> {
        if self.written != self.rows {
            return Err(NpyError::Shape {
                path: self.path.clone(),
                reason: format!(
                    "{} rows written, {} announced in the header",
                    self.written, self.rows
                ),
            });
        }
        self.out.flush().map_err(|source| NpyError::Io {
            path: self.path.clone(),
            source,
        })
    }
}

/// The full header bytes (magic, version, length, padded dictionary).
fn encode_header(descr: &str, rows: usize, cols: usize) -> Vec<u8> {
    let dict =
        format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': ({rows}, {cols}), }}");
    // Version 1.0 has a 2-byte length field, 2.0 a 4-byte one.
    let (major, len_bytes) = if 10 + dict.len() + ALIGN < usize::from(u16::MAX) {
        (1u8, 2usize)
    } else {
        (2u8, 4usize)
    };
    let prefix = MAGIC.len() + 2 + len_bytes;
    // Dictionary, spaces, then a final newline, so that prefix + header is a
    // multiple of ALIGN.
    let unpadded = prefix + dict.len() + 1;
    let header_len = dict.len() + 1 + (ALIGN - unpadded % ALIGN) % ALIGN;
    let mut out = Vec::with_capacity(prefix + header_len);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[major, 0]);
    if major == 1 {
        // Fits: checked above.
        out.extend_from_slice(&(header_len as u16).to_le_bytes());
    } else {
        out.extend_from_slice(&(header_len as u32).to_le_bytes());
    }
    out.extend_from_slice(dict.as_bytes());
    out.resize(prefix + header_len - 1, b' ');
    out.push(b'\n');
    out
}

/// Reads magic, version and header; returns the header text and the offset of
/// the data.
fn read_header(
    reader: &mut impl Read,
    path: &Path,
    file_len: u64,
) -> Result<(String, u64), NpyError> {
    let bad = |reason: String| NpyError::BadHeader {
        path: path.to_path_buf(),
        reason,
    };
    let io_err = |source: io::Error| {
        if source.kind() == io::ErrorKind::UnexpectedEof {
            bad("file ends inside the header".to_string())
        } else {
            NpyError::Io {
                path: path.to_path_buf(),
                source,
            }
        }
    };
    let mut magic = [0u8; 8];
    let mut got = 0;
    while got < magic.len() {
        match reader.read(&mut magic[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(io_err(e)),
        }
    }
    if got < MAGIC.len() || &magic[..MAGIC.len()] != MAGIC {
        return Err(NpyError::BadMagic {
            path: path.to_path_buf(),
        });
    }
    if got < magic.len() {
        return Err(bad("file ends inside the header".to_string()));
    }
    let (major, minor) = (magic[6], magic[7]);
    let len_bytes = match (major, minor) {
        (1, 0) => 2,
        (2, 0) | (3, 0) => 4,
        _ => {
            return Err(NpyError::UnsupportedVersion {
                path: path.to_path_buf(),
                major,
                minor,
            });
        }
    };
    let mut len_buf = [0u8; 4];
    reader
        .read_exact(&mut len_buf[..len_bytes])
        .map_err(io_err)?;
    let header_len = u32::from_le_bytes(len_buf) as usize;
    if header_len > MAX_HEADER_LEN {
        return Err(bad(format!(
            "header length {header_len} is implausibly large"
        )));
    }
    let data_offset = (8 + len_bytes + header_len) as u64;
    if data_offset > file_len {
        return Err(bad(format!(
            "header length {header_len} runs past the end of the {file_len}-byte file"
        )));
    }
    let mut header = vec![0u8; header_len];
    reader.read_exact(&mut header).map_err(io_err)?;
    // Version 1 and 2 headers are Latin-1, in practice ASCII; 3 is UTF-8.
    let header = String::from_utf8(header).map_err(|_| bad("header is not text".to_string()))?;
    Ok((header, data_offset))
}

/// Parses the header dictionary into dtype and 2-D shape.
fn parse_header(header: &str, path: &Path) -> Result<(ReadDtype, usize, usize), NpyError> {
    let bad = |reason: String| NpyError::BadHeader {
        path: path.to_path_buf(),
        reason,
    };
    let entries = match PyParser::new(header).parse_top().map_err(&bad)? {
        PyValue::Dict(entries) => entries,
        _ => return Err(bad("header is not a dictionary".to_string())),
    };
    let get = |key: &str| {
        entries
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
            .ok_or_else(|| bad(format!("missing key '{key}'")))
    };
    let descr = match get("descr")? {
        PyValue::Str(s) => s.clone(),
        // Structured dtypes are lists of fields.
        other => {
            return Err(NpyError::UnsupportedDtype {
                path: path.to_path_buf(),
                descr: other.describe(),
            });
        }
    };
    let fortran = match get("fortran_order")? {
        PyValue::Bool(b) => *b,
        _ => return Err(bad("'fortran_order' is not True or False".to_string())),
    };
    let shape = match get("shape")? {
        PyValue::Tuple(items) => items
            .iter()
            .map(|v| match v {
                PyValue::Int(n) => Ok(*n),
                _ => Err(bad("'shape' holds a non-integer".to_string())),
            })
            .collect::<Result<Vec<usize>, _>>()?,
        _ => return Err(bad("'shape' is not a tuple".to_string())),
    };

    let dtype = match descr.as_str() {
        "<f4" => ReadDtype::F4,
        "<f2" => ReadDtype::F2,
        "<f8" => ReadDtype::F8,
        d if d.starts_with('>') && d.len() > 1 => {
            return Err(NpyError::BigEndian {
                path: path.to_path_buf(),
                descr,
            });
        }
        _ => {
            return Err(NpyError::UnsupportedDtype {
                path: path.to_path_buf(),
                descr,
            });
        }
    };
    if fortran {
        return Err(NpyError::FortranOrder {
            path: path.to_path_buf(),
        });
    }
    match shape[..] {
        [rows, cols] => Ok((dtype, rows, cols)),
        _ => Err(NpyError::NotTwoD {
            path: path.to_path_buf(),
            shape,
        }),
    }
}

/// The Python literal values a `.npy` header can hold.
#[derive(Debug)]
enum PyValue {
    Str(String),
    Bool(bool),
    Int(usize),
    None,
    Tuple(Vec<PyValue>),
    List(Vec<PyValue>),
    Dict(Vec<(String, PyValue)>),
}

impl PyValue {
    fn describe(&self) -> String {
        match self {
            PyValue::Str(s) => s.clone(),
            PyValue::Bool(b) => if *b { "True" } else { "False" }.to_string(),
            PyValue::Int(n) => n.to_string(),
            PyValue::None => "None".to_string(),
            PyValue::Tuple(_) => "a tuple".to_string(),
            PyValue::List(fields) => {
                format!("a structured (record) dtype of {} fields", fields.len())
            }
            PyValue::Dict(_) => "a dictionary".to_string(),
        }
    }
}

/// A recursive-descent parser of the small Python-literal subset NumPy writes.
struct PyParser<'a> {
    s: &'a [u8],
    pos: usize,
}

impl<'a> PyParser<'a> {
    fn new(s: &'a str) -> Self {
        PyParser {
            s: s.as_bytes(),
            pos: 0,
        }
    }

    fn parse_top(&mut self) -> Result<PyValue, String> {
        let v = self.value(0)?;
        self.skip_ws();
        if self.pos != self.s.len() {
            return Err(format!("unexpected text at byte {}", self.pos));
        }
        Ok(v)
    }

    fn skip_ws(&mut self) {
        while self.pos < self.s.len() && self.s[self.pos].is_ascii_whitespace() {
            self.pos += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.skip_ws();
        self.s.get(self.pos).copied()
    }

    fn expect(&mut self, c: u8) -> Result<(), String> {
        if self.peek() == Some(c) {
            self.pos += 1;
            Ok(())
        } else {
            Err(format!("expected '{}' at byte {}", c as char, self.pos))
        }
    }

    fn value(&mut self, depth: usize) -> Result<PyValue, String> {
        if depth > 16 {
            return Err("nesting too deep".to_string());
        }
        match self.peek() {
            Some(b'{') => {
                self.pos += 1;
                let mut entries = Vec::new();
                loop {
                    if self.peek() == Some(b'}') {
                        self.pos += 1;
                        break;
                    }
                    let key = match self.value(depth + 1)? {
                        PyValue::Str(k) => k,
                        _ => return Err("dictionary key is not a string".to_string()),
                    };
                    self.expect(b':')?;
                    let v = self.value(depth + 1)?;
                    entries.push((key, v));
                    match self.peek() {
                        Some(b',') => self.pos += 1,
                        Some(b'}') => {}
                        _ => return Err(format!("expected ',' or '}}' at byte {}", self.pos)),
                    }
                }
                Ok(PyValue::Dict(entries))
            }
            Some(open @ (b'(' | b'[')) => {
                self.pos += 1;
                let close = if open == b'(' { b')' } else { b']' };
                let mut items = Vec::new();
                loop {
                    if self.peek() == Some(close) {
                        self.pos += 1;
                        break;
                    }
                    items.push(self.value(depth + 1)?);
                    match self.peek() {
                        Some(b',') => self.pos += 1,
                        Some(c) if c == close => {}
                        _ => {
                            return Err(format!(
                                "expected ',' or '{}' at byte {}",
                                close as char, self.pos
                            ));
                        }
                    }
                }
                Ok(if open == b'(' {
                    PyValue::Tuple(items)
                } else {
                    PyValue::List(items)
                })
            }
            Some(q @ (b'\'' | b'"')) => {
                self.pos += 1;
                let start = self.pos;
                while self.pos < self.s.len() && self.s[self.pos] != q {
                    if self.s[self.pos] == b'\\' {
                        return Err("escapes in header strings are not supported".to_string());
                    }
                    self.pos += 1;
                }
                if self.pos >= self.s.len() {
                    return Err("unterminated string".to_string());
                }
                let text = std::str::from_utf8(&self.s[start..self.pos])
                    .map_err(|_| "string is not UTF-8".to_string())?
                    .to_string();
                self.pos += 1;
                Ok(PyValue::Str(text))
            }
            Some(c) if c.is_ascii_digit() => {
                let start = self.pos;
                while self.pos < self.s.len() && self.s[self.pos].is_ascii_digit() {
                    self.pos += 1;
                }
                // Python 2 era headers may write longs as `3L`.
                let digits = std::str::from_utf8(&self.s[start..self.pos])
                    .map_err(|_| "bad integer".to_string())?;
                if self.s.get(self.pos) == Some(&b'L') {
                    self.pos += 1;
                }
                digits
                    .parse::<usize>()
                    .map(PyValue::Int)
                    .map_err(|_| format!("integer {digits} out of range"))
            }
            Some(_) => {
                let start = self.pos;
                while self.pos < self.s.len() && self.s[self.pos].is_ascii_alphabetic() {
                    self.pos += 1;
                }
                match &self.s[start..self.pos] {
                    b"True" => Ok(PyValue::Bool(true)),
                    b"False" => Ok(PyValue::Bool(false)),
                    b"None" => Ok(PyValue::None),
                    _ => Err(format!("unexpected text at byte {start}")),
                }
            }
            None => Err("header ends early".to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp() -> tempfile::TempDir {
        tempfile::tempdir().expect("tempdir")
    }

    fn sample(rows: usize, cols: usize) -> Vec<f32> {
        (0..rows * cols)
            .map(|i| ((i as f32) * 0.37).sin() * 3.0)
            .collect()
    }

    /// A raw file with the given header dictionary and data bytes.
    fn raw(path: &Path, dict: &str, data: &[u8]) {
        let mut bytes = MAGIC.to_vec();
        bytes.extend_from_slice(&[1, 0]);
        let header = format!("{dict}\n");
        bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
        bytes.extend_from_slice(header.as_bytes());
        bytes.extend_from_slice(data);
        std::fs::write(path, bytes).expect("write");
    }

    #[test]
    fn round_trip_f32() {
        let dir = tmp();
        let path = dir.path().join("a.npy");
        let data = sample(7, 5);
        write_matrix(&path, 7, 5, &data, Dtype::F32).expect("write");
        let m = read_matrix(&path).expect("read");
        assert_eq!((m.rows, m.cols), (7, 5));
        assert_eq!(m.data, data);
        assert_eq!(m.row(2), &data[10..15]);
    }

    #[test]
    fn round_trip_f16() {
        let dir = tmp();
        let path = dir.path().join("a.npy");
        let data = sample(4, 9);
        write_matrix(&path, 4, 9, &data, Dtype::F16).expect("write");
        let m = read_matrix(&path).expect("read");
        assert_eq!((m.rows, m.cols), (4, 9));
        for (a, b) in m.data.iter().zip(&data) {
            assert!((a - b).abs() <= b.abs() * 1e-3 + 1e-6, "{a} vs {b}");
        }
        // The file is half the size of the f32 one, plus the header.
        let len = std::fs::metadata(&path).expect("meta").len();
        assert_eq!(len, 128 + 4 * 9 * 2);
    }

    #[test]
    fn header_is_aligned_and_numpy_shaped() {
        for (rows, cols) in [(0, 0), (1, 1), (3, 512), (123_456_789, 4096)] {
            for dtype in [Dtype::F32, Dtype::F16] {
                let h = encode_header(dtype.descr(), rows, cols);
                assert_eq!(h.len() % ALIGN, 0);
                assert_eq!(&h[..8], b"\x93NUMPY\x01\x00");
                assert_eq!(u16::from_le_bytes([h[8], h[9]]) as usize, h.len() - 10);
                assert_eq!(h.last(), Some(&b'\n'));
                let text = std::str::from_utf8(&h[10..]).expect("ascii");
                let parsed = parse_header(text, Path::new("x")).expect("parse");
                assert_eq!((parsed.1, parsed.2), (rows, cols));
            }
        }
        let dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
        assert_eq!(
            std::str::from_utf8(&encode_header(Dtype::F32.descr(), 2, 3)[10..]).expect("ascii"),
            format!(
                "{dict}{}\n",
                " ".repeat((dict.len() + 11).div_ceil(64) * 64 - 11 - dict.len())
            )
        );
    }

    #[test]
    fn parses_in_memory_bytes() {
        let dir = tmp();
        let path = dir.path().join("b.npy");
        let data = sample(3, 2);
        write_matrix(&path, 3, 2, &data, Dtype::F16).expect("write");
        let bytes = std::fs::read(&path).expect("read");
        let m = parse_matrix(&bytes, "embedded images").expect("parse");
        assert_eq!((m.rows, m.cols), (3, 2));
        assert_eq!(m, read_matrix(&path).expect("read"));
        let e = parse_matrix(&bytes[..bytes.len() - 1], "embedded images").expect_err("cut");
        assert!(
            e.to_string().starts_with("embedded images: truncated"),
            "{e}"
        );
    }

    #[test]
    fn empty_matrix() {
        let dir = tmp();
        let path = dir.path().join("e.npy");
        write_matrix(&path, 0, 512, &[], Dtype::F32).expect("write");
        let m = read_matrix(&path).expect("read");
        assert_eq!((m.rows, m.cols, m.data.len()), (0, 512, 0));
    }

    #[test]
    fn reads_f8_and_v2_headers() {
        let dir = tmp();
        let path = dir.path().join("f8.npy");
        let vals = [1.5f64, -2.25, 3.0, 0.125];
        let data: Vec<u8> = vals.iter().flat_map(|v| v.to_le_bytes()).collect();
        raw(
            &path,
            "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 2), }",
            &data,
        );
        let m = read_matrix(&path).expect("read f8");
        assert_eq!(m.data, vec![1.5, -2.25, 3.0, 0.125]);

        // Version 2.0: 4-byte header length; double quotes and no trailing comma.
        let dict = "{\"descr\": \"<f4\", \"shape\": (1, 2), \"fortran_order\": False}\n";
        let mut bytes = MAGIC.to_vec();
        bytes.extend_from_slice(&[2, 0]);
        bytes.extend_from_slice(&(dict.len() as u32).to_le_bytes());
        bytes.extend_from_slice(dict.as_bytes());
        bytes.extend_from_slice(&1.0f32.to_le_bytes());
        bytes.extend_from_slice(&2.0f32.to_le_bytes());
        let path2 = dir.path().join("v2.npy");
        std::fs::write(&path2, bytes).expect("write");
        let m = read_matrix(&path2).expect("read v2");
        assert_eq!((m.rows, m.cols, m.data), (1, 2, vec![1.0, 2.0]));
    }

    fn err_of(path: &Path) -> String {
        let e = read_matrix(path).expect_err("must fail");
        let msg = e.to_string();
        assert!(msg.contains(&path.display().to_string()), "{msg}");
        msg
    }

    #[test]
    fn rejects_truncated_and_trailing() {
        let dir = tmp();
        let path = dir.path().join("t.npy");
        write_matrix(&path, 3, 4, &sample(3, 4), Dtype::F32).expect("write");
        let bytes = std::fs::read(&path).expect("read");
        std::fs::write(&path, &bytes[..bytes.len() - 5]).expect("write");
        let msg = err_of(&path);
        assert!(msg.contains("truncated") && msg.contains("48"), "{msg}");
        assert!(matches!(
            read_matrix(&path),
            Err(NpyError::Truncated {
                expected: 48,
                actual: 43,
                ..
            })
        ));

        // Cut inside the header.
        std::fs::write(&path, &bytes[..40]).expect("write");
        assert!(matches!(
            read_matrix(&path),
            Err(NpyError::BadHeader { .. })
        ));
        std::fs::write(&path, &bytes[..7]).expect("write");
        assert!(matches!(
            read_matrix(&path),
            Err(NpyError::BadHeader { .. })
        ));

        let mut longer = bytes.clone();
        longer.extend_from_slice(&[0, 0, 0, 0]);
        std::fs::write(&path, &longer).expect("write");
        assert!(err_of(&path).contains("unexpected bytes"));
    }

    #[test]
    fn rejects_bad_magic() {
        let dir = tmp();
        let path = dir.path().join("m.npy");
        std::fs::write(&path, b"PK\x03\x04 this is a zip, not an npy file").expect("write");
        assert!(err_of(&path).contains("bad magic"));
        std::fs::write(&path, b"").expect("write");
        assert!(matches!(read_matrix(&path), Err(NpyError::BadMagic { .. })));
        let mut bytes = MAGIC.to_vec();
        bytes.extend_from_slice(&[9, 0, 0, 0]);
        std::fs::write(&path, bytes).expect("write");
        assert!(err_of(&path).contains("version 9.0"));
    }

    #[test]
    fn rejects_wrong_dtype_and_layout() {
        let dir = tmp();
        let path = dir.path().join("d.npy");
        let cases = [
            (
                "{'descr': '<i4', 'fortran_order': False, 'shape': (2, 2), }",
                "unsupported dtype",
            ),
            (
                "{'descr': '|u1', 'fortran_order': False, 'shape': (2, 2), }",
                "unsupported dtype",
            ),
            (
                "{'descr': '>f4', 'fortran_order': False, 'shape': (2, 2), }",
                "big-endian",
            ),
            (
                "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2, 2), }",
                "structured",
            ),
            (
                "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }",
                "Fortran",
            ),
            (
                "{'descr': '<f4', 'fortran_order': False, 'shape': (4,), }",
                "2-D",
            ),
            (
                "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 2, 2), }",
                "2-D",
            ),
            (
                "{'descr': '<f4', 'fortran_order': False, 'shape': (), }",
                "2-D",
            ),
            (
                "{'descr': '<f4', 'shape': (2, 2), }",
                "missing key 'fortran_order'",
            ),
            (
                "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2)",
                "malformed",
            ),
            ("not a dict at all", "malformed"),
        ];
        for (dict, want) in cases {
            raw(&path, dict, &[0u8; 16]);
            let msg = err_of(&path);
            assert!(msg.contains(want), "{dict}: {msg}");
        }
        assert!(matches!(
            {
                raw(
                    &path,
                    "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }",
                    &[0u8; 16],
                );
                read_matrix(&path)
            },
            Err(NpyError::FortranOrder { .. })
        ));
    }

    #[test]
    fn write_checks_shape_and_f16_range() {
        let dir = tmp();
        let path = dir.path().join("w.npy");
        let e = write_matrix(&path, 2, 3, &[0.0; 5], Dtype::F32).expect_err("shape");
        assert!(e.to_string().contains("5 values given for a 2 x 3"), "{e}");
        let e = write_matrix(&path, 1, 2, &[1.0, 1e6], Dtype::F16).expect_err("range");
        assert!(
            matches!(e, NpyError::F16Overflow { row: 0, col: 1, .. }),
            "{e}"
        );
        // f32 has the range.
        write_matrix(&path, 1, 2, &[1.0, 1e6], Dtype::F32).expect("f32");

        let mut w = NpyWriter::create(&path, 2, 2, Dtype::F32).expect("create");
        w.write_row(&[1.0, 2.0]).expect("row");
        assert!(w.write_row(&[1.0]).is_err());
        let e = w.finish().expect_err("short");
        assert!(e.to_string().contains("1 rows written, 2 announced"), "{e}");
    }

    #[test]
    fn missing_file_names_path() {
        let dir = tmp();
        let path = dir.path().join("nope.npy");
        let e = read_matrix(&path).expect_err("missing");
        assert!(matches!(e, NpyError::Io { .. }));
        assert!(e.to_string().contains("nope.npy"));
    }
}
