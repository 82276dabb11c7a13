//! The envelope every sealed-segment file shares: a 64-byte versioned header
//! with a CRC32C of itself and one of the payload, then the payload.
//!
//! ```text
//!  0  magic           8 bytes, names the file kind (b"VIDXVEC\0", ...)
//!  8  version         u32 LE
//! 12  flags           u32 LE (0)
//! 16  fields          4 × u64 LE, meaning per kind (counts, dimension, ...)
//! 48  payload_len     u64 LE
//! 56  payload_crc     u32 LE, CRC32C of the payload
//! 60  header_crc      u32 LE, CRC32C of bytes 0..60
//! 64  payload         payload_len bytes, sections 8-byte aligned
//! ```
//!
//! Opening checks the header, the version (against the file kind's
//! [`Format`] in the version table) and that the file is exactly as
//! long as the header says (so truncation is caught at once) without reading
//! the payload; [`MappedFile::verify`] reads the payload once to check its
//! CRC, which the collection runs in the background after open so that open
//! time does not grow with the data.

use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use memmap2::Mmap;

use crate::error::{Error, Result};
use crate::storage::fs::File;
use crate::storage::versions::Format;

#[cfg(target_endian = "big")]
compile_error!("vidx's on-disk formats are little-endian and read in place");

pub const HEADER_LEN: usize = 64;

/// Writes a file: header placeholder, payload (streamed, CRC computed on the
/// way), then the real header; fsyncs before returning.
pub struct FileWriter {
    path: PathBuf,
    out: BufWriter<File>,
    magic: [u8; 8],
    version: u32,
    len: u64,
    crc: u32,
}

impl FileWriter {
    /// Creates `path` for a file of `format`'s current version.
    pub fn create(path: &Path, magic: &[u8; 8], format: &Format) -> Result<FileWriter> {
        let f = File::create(path)?;
        let mut out = BufWriter::with_capacity(1 << 20, f);
        out.write_all(&[0u8; HEADER_LEN])
            .map_err(|e| Error::io(path, e))?;
        Ok(FileWriter {
            path: path.to_owned(),
            out,
            magic: *magic,
            version: format.current,
            len: 0,
            crc: 0,
        })
    }

    pub fn write(&mut self, bytes: &[u8]) -> Result<()> {
        self.out
            .write_all(bytes)
            .map_err(|e| Error::io(&self.path, e))?;
        self.crc = crc32c::crc32c_append(self.crc, bytes);
        self.len += bytes.len() as u64;
        Ok(())
    }

    /// Writes a slice of plain values in their little-endian representation.
    pub fn write_pod<T: bytemuck::Pod>(&mut self, values: &[T]) -> Result<()> {
        self.write(bytemuck::cast_slice(values))
    }

    /// Zero-pads the payload to a multiple of 8 bytes.
    pub fn align8(&mut self) -> Result<()> {
        let pad = (8 - (self.len % 8) as usize) % 8;
        self.write(&[0u8; 8][..pad])
    }

    /// Bytes of payload written so far (the offset of the next section).
    pub fn position(&self) -> u64 {
        self.len
    }

    pub fn finish(mut self, fields: [u64; 4]) -> Result<()> {
        let mut h = [0u8; HEADER_LEN];
        h[0..8].copy_from_slice(&self.magic);
        h[8..12].copy_from_slice(&self.version.to_le_bytes());
        for (i, f) in fields.iter().enumerate() {
            h[16 + i * 8..24 + i * 8].copy_from_slice(&f.to_le_bytes());
        }
        h[48..56].copy_from_slice(&self.len.to_le_bytes());
        h[56..60].copy_from_slice(&self.crc.to_le_bytes());
        let hc = crc32c::crc32c(&h[..60]);
        h[60..64].copy_from_slice(&hc.to_le_bytes());
        let path = self.path.clone();
        let io = |e| Error::io(&path, e);
        self.out.flush().map_err(io)?;
        let mut f = self
            .out
            .into_inner()
            .map_err(|e| Error::io(&path, e.into_error()))?;
        f.seek(SeekFrom::Start(0)).map_err(io)?;
        f.write_all(&h).map_err(io)?;
        f.sync_all()
    }
}

/// A memory-mapped file whose header has been checked.
pub struct MappedFile {
    path: PathBuf,
    /// Kept open so the checksum pass reads this very file even after a
    /// merge has unlinked it.
    file: File,
    map: Mmap,
    /// The file's format version, within what its [`Format`] reads.
    version: u32,
    pub fields: [u64; 4],
    payload_len: usize,
    payload_crc: u32,
}

impl MappedFile {
    /// Maps `path` and checks magic, header CRC, version (one `format`
    /// reads) and length.
    pub fn open(path: &Path, magic: &[u8; 8], format: &Format) -> Result<MappedFile> {
        let f = File::open(path)?;
        // SAFETY: segment files are immutable once written (written under a
        // temporary name, fsynced, then renamed into place) and vidx never
        // writes to them again; another process truncating them underneath
        // us is outside what vidx can defend against.
        let map = unsafe { Mmap::map(f.std()) }.map_err(|e| Error::io(path, e))?;
        let h = map.get(..HEADER_LEN).ok_or_else(|| {
            Error::data_loss(
                path,
                format!("file is {} bytes, shorter than its header", map.len()),
            )
        })?;
        if &h[0..8] != magic {
            return Err(Error::data_loss(
                path,
                format!(
                    "bad magic {:?}, expected {:?}",
                    String::from_utf8_lossy(&h[0..8]),
                    String::from_utf8_lossy(magic)
                ),
            ));
        }
        let u32_at = |o: usize| u32::from_le_bytes(h[o..o + 4].try_into().expect("4 bytes"));
        let u64_at = |o: usize| u64::from_le_bytes(h[o..o + 8].try_into().expect("8 bytes"));
        if crc32c::crc32c(&h[..60]) != u32_at(60) {
            return Err(Error::data_loss(path, "header checksum mismatch"));
        }
        let version = format.check(path, u32_at(8))?;
        let payload_len = u64_at(48);
        let expected = HEADER_LEN as u64 + payload_len;
        if map.len() as u64 != expected {
            return Err(Error::data_loss(
                path,
                format!(
                    "file is {} bytes, its header says {expected} (truncated or extended)",
                    map.len()
                ),
            ));
        }
        #[cfg(unix)]
        {
            // Reads follow the graph, not the file order.
            let _ = map.advise(memmap2::Advice::Random);
        }
        Ok(MappedFile {
            path: path.to_owned(),
            file: f,
            version,
            fields: [u64_at(16), u64_at(24), u64_at(32), u64_at(40)],
            payload_len: payload_len as usize,
            payload_crc: u32_at(56),
            map,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The format version the file was written in: what a reader of a
    /// format with several readable versions branches on.
    pub fn version(&self) -> u32 {
        self.version
    }

    pub fn payload(&self) -> &[u8] {
        &self.map[HEADER_LEN..HEADER_LEN + self.payload_len]
    }

    pub fn len_bytes(&self) -> u64 {
        self.map.len() as u64
    }

    /// Checks the payload CRC by reading the file with ordinary reads (not
    /// through the map, so the pages do not count towards our resident set).
    pub fn verify(&self) -> Result<()> {
        use std::os::unix::fs::FileExt;
        let mut buf = vec![0u8; 1 << 20];
        let mut crc = 0u32;
        let mut pos = HEADER_LEN as u64;
        let mut left = self.payload_len;
        while left > 0 {
            let want = left.min(buf.len());
            self.file
                .std()
                .read_exact_at(&mut buf[..want], pos)
                .map_err(|e| Error::io(&self.path, e))?;
            crc = crc32c::crc32c_append(crc, &buf[..want]);
            left -= want;
            pos += want as u64;
        }
        if crc != self.payload_crc {
            return Err(Error::data_loss(&self.path, "payload checksum mismatch"));
        }
        Ok(())
    }

    /// A typed view of `count` values at payload byte `offset`, or DATA_LOSS
    /// naming this file if the range is out of bounds or misaligned.
    pub fn slice<T: bytemuck::Pod>(&self, offset: u64, count: u64) -> Result<&[T]> {
        let size = std::mem::size_of::<T>() as u64;
        let end = count.checked_mul(size).and_then(|b| b.checked_add(offset));
        let p = self.payload();
        match end {
            Some(end) if end <= p.len() as u64 => {
                bytemuck::try_cast_slice(&p[offset as usize..end as usize]).map_err(|e| {
                    Error::data_loss(
                        &self.path,
                        format!("section at {offset} is not aligned: {e}"),
                    )
                })
            }
            _ => Err(Error::data_loss(
                &self.path,
                format!(
                    "section at {offset} of {count} × {size} bytes runs past the payload ({} bytes)",
                    p.len()
                ),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAGIC: &[u8; 8] = b"VIDXTST\0";
    /// A format whose current version is 3.
    const V3: Format = Format {
        name: "test file",
        current: 3,
        oldest: 2,
    };

    fn write_sample(path: &Path) {
        let mut w = FileWriter::create(path, MAGIC, &V3).unwrap();
        w.write_pod(&[1u32, 2, 3]).unwrap();
        w.align8().unwrap();
        w.write_pod(&[1.5f32, 2.5]).unwrap();
        w.finish([7, 8, 9, 10]).unwrap();
    }

    #[test]
    fn round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f.bin");
        write_sample(&p);
        let m = MappedFile::open(&p, MAGIC, &V3).unwrap();
        assert_eq!(m.version(), 3);
        assert_eq!(m.fields, [7, 8, 9, 10]);
        assert_eq!(m.slice::<u32>(0, 3).unwrap(), &[1, 2, 3]);
        assert_eq!(m.slice::<f32>(16, 2).unwrap(), &[1.5, 2.5]);
        assert!(m.slice::<f32>(16, 3).is_err());
        assert!(m.slice::<u32>(u64::MAX - 2, 2).is_err());
        m.verify().unwrap();
    }

    #[test]
    fn every_kind_of_damage_is_data_loss_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f.bin");
        write_sample(&p);
        let good = std::fs::read(&p).unwrap();
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("payload byte", {
                let mut b = good.clone();
                b[HEADER_LEN + 2] ^= 1;
                b
            }),
            ("header byte", {
                let mut b = good.clone();
                b[20] ^= 1;
                b
            }),
            ("truncated", good[..good.len() - 3].to_vec()),
            ("empty", Vec::new()),
            ("magic", {
                let mut b = good.clone();
                b[0] = b'X';
                b
            }),
        ];
        for (what, bytes) in cases {
            std::fs::write(&p, &bytes).unwrap();
            let r = MappedFile::open(&p, MAGIC, &V3).and_then(|m| m.verify());
            let e = r
                .err()
                .unwrap_or_else(|| panic!("{what}: damage not detected"));
            assert!(matches!(e, Error::DataLoss { .. }), "{what}: {e}");
            assert!(e.to_string().contains("f.bin"), "{what}: {e}");
        }
        // A sound file of a version this reader does not know.
        write_sample(&p);
        let v2 = Format { current: 2, ..V3 };
        let e = MappedFile::open(&p, MAGIC, &v2).err().unwrap();
        assert!(matches!(e, Error::FailedPrecondition(_)), "{e}");
        assert!(e.to_string().contains("f.bin"), "{e}");
        assert!(
            e.to_string()
                .contains("version 3 was written by a newer vidx"),
            "{e}"
        );
    }
}
