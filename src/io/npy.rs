//! NumPy `.npy` matrices as vidx uses them, on top of the `npyz` crate.
//!
//! This module owns what vidx asks of a `.npy` file: loading embedding
//! matrices for `vidx ingest`, `vidx search` and benchmarks, parsing the demo
//! set embedded in the binary, and writing the matrices of `vidx gen`. The
//! format itself (magic, versions, the Python-literal header) is `npyz`'s;
//! this wrapper adds what vidx needs on top: errors that name the file, and
//! every float type converted to `f32`.
//!
//! Reading ([`read_matrix`], [`parse_matrix`]) accepts float dtypes of 2, 4
//! or 8 bytes in either byte order (`<f2` and `<f8` are converted to `f32`),
//! shape `(rows, cols)`, C order. Anything else — other dtypes, Fortran order,
//! 1-D or 3-D shapes, a bad magic string or header, a truncated or over-long
//! file — is refused with an [`NpyError`] that names the file. Writing
//! ([`write_matrix`], or row by row with [`NpyWriter`]) produces little-endian
//! files byte-identical to `np.save`'s.

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Seek};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use half::f16;
use npyz::{DType, NpyFile, NpyHeader, Order, TypeChar, WriteOptions, WriterBuilder};

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
    /// `npyz` could not parse the file's prelude: bad magic bytes, an unknown
    /// format version, a malformed header dictionary or a missing key.
    #[error("{}: not a readable .npy file: {reason}", path.display())]
    BadHeader {
        /// The file.
        path: PathBuf,
        /// What `npyz` found wrong.
        reason: String,
    },
    /// A dtype other than a 2-, 4- or 8-byte float.
    #[error(
        "{}: unsupported dtype {descr}; expected a float array ('<f4', '<f2' or '<f8')",
        path.display()
    )]
    UnsupportedDtype {
        /// The file.
        path: PathBuf,
        /// The `descr` of the header.
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
        shape: Vec<u64>,
    },
    /// The shape's byte size overflows `usize`.
    #[error("{}: shape {rows} x {cols} is too large", path.display())]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// Rows.
        rows: u64,
        /// Columns.
        cols: u64,
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

/// Element type of a written `.npy` file. Its command-line form (`--dtype
/// f32|f16`) is its [`Dtype::name`], parsed back by `FromStr`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Dtype {
    /// 32-bit IEEE float, `<f4`.
    #[default]
    F32,
    /// 16-bit IEEE half float, `<f2`: half the size, about 3 significant digits.
    F16,
}

impl Dtype {
    /// Every element type, in the order `--help` lists them.
    pub const ALL: [Dtype; 2] = [Dtype::F32, Dtype::F16];

    /// The name on the command line and in `truth.json`.
    pub fn name(self) -> &'static str {
        match self {
            Dtype::F32 => "f32",
            Dtype::F16 => "f16",
        }
    }
}

impl FromStr for Dtype {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Dtype::ALL
            .into_iter()
            .find(|d| d.name() == s)
            .ok_or_else(|| format!("unknown dtype {s:?}; expected f32 or f16"))
    }
}

/// Float widths accepted when reading, each converted to `f32`.
#[derive(Debug, Clone, Copy)]
enum ReadDtype {
    F2,
    F4,
    F8,
}

/// Reads a 2-D C-order float `.npy` file into an `f32` matrix.
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
    read_from(io::Cursor::new(bytes), bytes.len() as u64, Path::new(name))
}

/// Reads a whole `.npy` stream of `file_len` bytes; `path` names it in errors.
fn read_from<R: Read + Seek>(
    mut reader: R,
    file_len: u64,
    path: &Path,
) -> Result<Matrix, NpyError> {
    let io_err = |source| NpyError::Io {
        path: path.to_path_buf(),
        source,
    };
    let header = NpyHeader::from_reader(&mut reader).map_err(|e| match e.kind() {
        io::ErrorKind::InvalidData => bad_header(path, e.to_string()),
        io::ErrorKind::UnexpectedEof => bad_header(path, "file ends inside the header".into()),
        _ => io_err(e),
    })?;
    let (dtype, rows, cols, expected) = check_header(&header, path)?;
    // Compare the data length with the header before reading, so a cut file
    // is reported as truncated rather than as a bare end-of-file.
    let actual = file_len.saturating_sub(reader.stream_position().map_err(io_err)?);
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
    let npy = NpyFile::with_header(header, reader);
    let data = match dtype {
        ReadDtype::F2 => collect(npy.data::<f16>(), path, f16::to_f32)?,
        ReadDtype::F4 => collect(npy.data::<f32>(), path, |v| v)?,
        ReadDtype::F8 => collect(npy.data::<f64>(), path, |v| v as f32)?,
    };
    Ok(Matrix { rows, cols, data })
}

/// The element type, rows, columns and data byte length the header
/// announces, if vidx can load it.
fn check_header(
    header: &NpyHeader,
    path: &Path,
) -> Result<(ReadDtype, usize, usize, u64), NpyError> {
    let dtype = match header.dtype() {
        DType::Plain(t) if t.type_char() == TypeChar::Float => match t.size_field() {
            2 => Some(ReadDtype::F2),
            4 => Some(ReadDtype::F4),
            8 => Some(ReadDtype::F8),
            _ => None,
        },
        _ => None,
    }
    .ok_or_else(|| NpyError::UnsupportedDtype {
        path: path.to_path_buf(),
        descr: header.dtype().descr(),
    })?;
    if header.order() == Order::Fortran {
        return Err(NpyError::FortranOrder {
            path: path.to_path_buf(),
        });
    }
    let &[rows, cols] = header.shape() else {
        return Err(NpyError::NotTwoD {
            path: path.to_path_buf(),
            shape: header.shape().to_vec(),
        });
    };
    let item = header.dtype().num_bytes().unwrap_or(usize::MAX) as u64;
    match (
        usize::try_from(rows),
        usize::try_from(cols),
        rows.checked_mul(cols).and_then(|n| n.checked_mul(item)),
    ) {
        (Ok(r), Ok(c), Some(bytes)) if usize::try_from(bytes).is_ok() => Ok((dtype, r, c, bytes)),
        _ => Err(NpyError::TooLarge {
            path: path.to_path_buf(),
            rows,
            cols,
        }),
    }
}

/// Reads every element through `npyz` and converts it to `f32`.
fn collect<T, R: Read>(
    reader: Result<npyz::NpyReader<T, R>, npyz::DTypeError>,
    path: &Path,
    to_f32: impl Fn(T) -> f32,
) -> Result<Vec<f32>, NpyError>
where
    T: npyz::Deserialize,
{
    let reader = reader.map_err(|e| bad_header(path, e.to_string()))?;
    let mut data = Vec::with_capacity(reader.total_len() as usize);
    for v in reader {
        data.push(to_f32(v.map_err(|source| NpyError::Io {
            path: path.to_path_buf(),
            source,
        })?));
    }
    Ok(data)
}

fn bad_header(path: &Path, reason: String) -> NpyError {
    NpyError::BadHeader {
        path: path.to_path_buf(),
        reason,
    }
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
    check_len(path, rows, cols, data.len())?;
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
    check_len(path, rows, cols, data.len())?;
    let mut out = begin::<i32>(path, "<i4", rows, cols)?;
    out.extend(data.iter().copied())
        .and_then(|()| out.finish())
        .map_err(|source| NpyError::Io {
            path: path.to_path_buf(),
            source,
        })
}

fn check_len(path: &Path, rows: usize, cols: usize, len: usize) -> Result<(), NpyError> {
    if Some(len) == rows.checked_mul(cols) {
        return Ok(());
    }
    Err(NpyError::Shape {
        path: path.to_path_buf(),
        reason: format!("{len} values given for a {rows} x {cols} matrix"),
    })
}

/// An `npyz` writer of a `rows x cols` matrix of `descr` into a new `path`.
fn begin<T: npyz::Serialize>(
    path: &Path,
    descr: &str,
    rows: usize,
    cols: usize,
) -> Result<npyz::NpyWriter<T, BufWriter<File>>, NpyError> {
    let io_err = |source| NpyError::Io {
        path: path.to_path_buf(),
        source,
    };
    let dtype = npyz::TypeStr::from_str(descr)
        .map(DType::new_scalar)
        .map_err(|e| io_err(io::Error::new(io::ErrorKind::InvalidInput, e)))?;
    let options = WriteOptions::new()
        .dtype(dtype)
        .writer(BufWriter::new(File::create(path).map_err(io_err)?));
    // `begin_2d` writes the header exactly as `np.save` does ("(rows, cols)");
    // `begin_nd` would write "(rows, cols, )". It takes the row count from
    // the values written, which `NpyWriter::finish` checks against `rows`,
    // and cannot count rows of zero columns, which get the explicit shape.
    if cols == 0 {
        options.shape(&[rows as u64, 0]).begin_nd()
    } else {
        options.begin_2d(cols as u64)
    }
    .map_err(io_err)
}

/// Streams a 2-D `.npy` file row by row, so a large matrix never has to be
/// held in memory. The shape is fixed up front; [`NpyWriter::finish`] checks
/// that exactly `rows` rows were written and flushes.
pub struct NpyWriter {
    path: PathBuf,
    out: Out,
    rows: usize,
    cols: usize,
    written: usize,
}

/// The `npyz` writer of each element type.
enum Out {
    F32(npyz::NpyWriter<f32, BufWriter<File>>),
    F16(npyz::NpyWriter<f16, BufWriter<File>>),
}

impl NpyWriter {
    /// Creates (or truncates) `path` and writes the header of a `rows x cols`
    /// matrix of `dtype`.
    pub fn create(path: &Path, rows: usize, cols: usize, dtype: Dtype) -> Result<Self, NpyError> {
        let out = match dtype {
            Dtype::F32 => Out::F32(begin(path, "<f4", rows, cols)?),
            Dtype::F16 => Out::F16(begin(path, "<f2", rows, cols)?),
        };
        Ok(NpyWriter {
            path: path.to_path_buf(),
            out,
            rows,
            cols,
            written: 0,
        })
    }

    /// Appends one row of `cols` values.
    pub fn write_row(&mut self, row: &[f32]) -> Result<(), NpyError> {
        let shape_err = |reason| NpyError::Shape {
            path: self.path.clone(),
            reason,
        };
        if row.len() != self.cols {
            return Err(shape_err(format!(
                "row of {} values, expected {}",
                row.len(),
                self.cols
            )));
        }
        if self.written >= self.rows {
            return Err(shape_err(format!(
                "more than the {} rows announced",
                self.rows
            )));
        }
        let written = match &mut self.out {
            Out::F32(w) => w.extend(row.iter().copied()),
            Out::F16(w) => {
                let halves = to_f16(row).map_err(|(col, value)| NpyError::F16Overflow {
                    path: self.path.clone(),
                    row: self.written,
                    col,
                    value,
                })?;
                w.extend(halves)
            }
        };
        written.map_err(|source| NpyError::Io {
            path: self.path.clone(),
            source,
        })?;
        self.written += 1;
        Ok(())
    }

    /// Checks the row count, completes the header and flushes the file.
    pub fn finish(self) -> Result<(), NpyError> {
        if self.written != self.rows {
            return Err(NpyError::Shape {
                path: self.path.clone(),
                reason: format!(
                    "{} rows written, {} announced in the header",
                    self.written, self.rows
                ),
            });
        }
        match self.out {
            Out::F32(w) => w.finish(),
            Out::F16(w) => w.finish(),
        }
        .map_err(|source| NpyError::Io {
            path: self.path,
            source,
        })
    }
}

/// `row` as `f16`, or the column and value of the first finite value that
/// does not fit (it would silently become infinity).
fn to_f16(row: &[f32]) -> Result<Vec<f16>, (usize, f32)> {
    row.iter()
        .enumerate()
        .map(|(col, &v)| {
            let h = f16::from_f32(v);
            if v.is_finite() && !h.is_finite() {
                Err((col, v))
            } else {
                Ok(h)
            }
        })
        .collect()
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

    /// A raw version 1.0 file with the given header dictionary and data bytes,
    /// built by hand so that the reader is not checked against itself.
    fn raw(path: &Path, dict: &str, data: &[u8]) {
        let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
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
    fn header_is_numpys() {
        let dir = tmp();
        let path = dir.path().join("h.npy");
        for (rows, cols, dtype, descr) in [
            (2, 3, Dtype::F32, "<f4"),
            (0, 512, Dtype::F32, "<f4"),
            (1690, 512, Dtype::F16, "<f2"),
            (3, 100_000, Dtype::F16, "<f2"),
        ] {
            write_matrix(&path, rows, cols, &vec![0.5; rows * cols], dtype).expect("write");
            let bytes = std::fs::read(&path).expect("read");
            let dict = format!(
                "{{'descr': '{descr}', 'fortran_order': False, 'shape': ({rows}, {cols}), }}"
            );
            // np.save: magic, version 1.0, length, dictionary padded with
            // spaces and a newline so that the data starts at byte 128.
            let mut want = b"\x93NUMPY\x01\x00\x76\x00".to_vec();
            want.extend_from_slice(dict.as_bytes());
            want.resize(127, b' ');
            want.push(b'\n');
            assert_eq!(&bytes[..128.min(bytes.len())], &want[..], "{rows} x {cols}");
        }
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
    fn empty_matrices() {
        let dir = tmp();
        let path = dir.path().join("e.npy");
        for (rows, cols) in [(0, 512), (3, 0), (0, 0)] {
            write_matrix(&path, rows, cols, &[], Dtype::F32).expect("write");
            let m = read_matrix(&path).expect("read");
            assert_eq!((m.rows, m.cols, m.data.len()), (rows, cols, 0));
        }
    }

    #[test]
    fn reads_f8_big_endian_and_v2_headers() {
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

        // npyz swaps the bytes of a big-endian file.
        let data: Vec<u8> = vals
            .iter()
            .flat_map(|&v| (v as f32).to_be_bytes())
            .collect();
        raw(
            &path,
            "{'descr': '>f4', 'fortran_order': False, 'shape': (1, 4), }",
            &data,
        );
        let m = read_matrix(&path).expect("read >f4");
        assert_eq!(
            (m.rows, m.cols, m.data),
            (1, 4, vec![1.5, -2.25, 3.0, 0.125])
        );

        // Version 2.0: 4-byte header length; double quotes and no trailing comma.
        let dict = "{\"descr\": \"<f4\", \"shape\": (1, 2), \"fortran_order\": False}\n";
        let mut bytes = b"\x93NUMPY\x02\x00".to_vec();
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

        // Cut inside the header, and inside the length field.
        for cut in [40, 9] {
            std::fs::write(&path, &bytes[..cut]).expect("write");
            assert!(err_of(&path).contains("not a readable .npy file"));
        }

        let mut longer = bytes.clone();
        longer.extend_from_slice(&[0, 0, 0, 0]);
        std::fs::write(&path, &longer).expect("write");
        assert!(err_of(&path).contains("4 unexpected bytes"));
    }

    #[test]
    fn rejects_bad_magic_and_version() {
        let dir = tmp();
        let path = dir.path().join("m.npy");
        for bytes in [
            &b"PK\x03\x04 this is a zip, not an npy file"[..],
            b"",
            b"\x93NUMPY\x09\x00\x00\x00",
        ] {
            std::fs::write(&path, bytes).expect("write");
            let msg = err_of(&path);
            assert!(msg.contains("not a readable .npy file"), "{msg}");
            assert!(matches!(
                read_matrix(&path),
                Err(NpyError::BadHeader { .. })
            ));
        }
    }

    #[test]
    fn rejects_wrong_dtype_and_layout() {
        let dir = tmp();
        let path = dir.path().join("d.npy");
        let cases = [
            (
                "'<i4', 'fortran_order': False, 'shape': (2, 2)",
                "unsupported dtype '<i4'",
            ),
            (
                "'|u1', 'fortran_order': False, 'shape': (2, 2)",
                "unsupported dtype '|u1'",
            ),
            (
                "'<c8', 'fortran_order': False, 'shape': (2, 2)",
                "unsupported dtype '<c8'",
            ),
            (
                "[('a', '<f4')], 'fortran_order': False, 'shape': (2, 2)",
                "unsupported dtype",
            ),
            ("'<f4', 'fortran_order': True, 'shape': (2, 2)", "Fortran"),
            (
                "'<f4', 'fortran_order': False, 'shape': (4,)",
                "found shape [4]",
            ),
            (
                "'<f4', 'fortran_order': False, 'shape': (1, 2, 2)",
                "found shape [1, 2, 2]",
            ),
            (
                "'<f4', 'fortran_order': False, 'shape': ()",
                "found shape []",
            ),
            ("'<f4', 'shape': (2, 2)", "missing key 'fortran_order'"),
            (
                "'<f4', 'fortran_order': False, 'shape': (2, 2)",
                "not a readable",
            ),
        ];
        for (i, (inner, want)) in cases.into_iter().enumerate() {
            // The last case drops the closing brace.
            let close = if i + 1 == cases.len() { "" } else { ", }" };
            raw(&path, &format!("{{'descr': {inner}{close}"), &[0u8; 16]);
            let msg = err_of(&path);
            assert!(msg.contains(want), "{inner}: {msg}");
        }
        raw(&path, "not a dict at all", &[]);
        assert!(err_of(&path).contains("not a readable .npy file"));
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
    fn i32_matrix_round_trips_through_npyz() {
        let dir = tmp();
        let path = dir.path().join("gt.npy");
        write_i32_matrix(&path, 2, 3, &[0, 1, -2, 3, 4, i32::MAX]).expect("write");
        let npy = NpyFile::new(BufReader::new(File::open(&path).expect("open"))).expect("npy");
        assert_eq!(npy.shape(), &[2, 3]);
        assert_eq!(npy.dtype().descr(), "'<i4'");
        assert_eq!(
            npy.into_vec::<i32>().expect("data"),
            vec![0, 1, -2, 3, 4, i32::MAX]
        );
        // A float reader refuses it by name.
        assert!(err_of(&path).contains("unsupported dtype '<i4'"));
    }

    #[test]
    fn dtype_names_parse_back() {
        for d in Dtype::ALL {
            assert_eq!(d.name().parse::<Dtype>(), Ok(d));
        }
        assert!("f64".parse::<Dtype>().is_err());
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
