//! What `vidx hash` computes of a file, locally: MD5, SHA-1 and SHA-256 of
//! its bytes and, for a PNG or JPEG picture, its PDQ hash and quality. The
//! file never leaves the machine; only these values do.
//!
//! Pictures are decoded to 8-bit RGB (grey as R = G = B, alpha dropped, no
//! EXIF rotation), as the reference data in `tests/data/pdq` was.

use std::path::{Path, PathBuf};

use md5::Digest;
use serde::{Deserialize, Serialize};

/// One file's hashes: a line of `vidx hash` output.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FileHashes {
    pub path: String,
    pub bytes: u64,
    /// Lower-case hex.
    pub md5: String,
    pub sha1: String,
    pub sha256: String,
    /// 64 hex digits in ThreatExchange order; absent when the file is not a
    /// picture vidx decodes (PNG, JPEG).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pdq: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quality: Option<u32>,
    /// Why there is no PDQ hash, for a file that looked like a picture.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl FileHashes {
    pub fn md5_bytes(&self) -> Vec<u8> {
        hex::decode(&self.md5).unwrap_or_default()
    }
    pub fn sha1_bytes(&self) -> Vec<u8> {
        hex::decode(&self.sha1).unwrap_or_default()
    }
    pub fn sha256_bytes(&self) -> Vec<u8> {
        hex::decode(&self.sha256).unwrap_or_default()
    }
    pub fn pdq_bytes(&self) -> Option<Vec<u8>> {
        self.pdq.as_ref().and_then(|h| hex::decode(h).ok())
    }
}

/// Extensions taken to be pictures (decoded for PDQ).
const PICTURES: &[&str] = &["png", "jpg", "jpeg", "jpe", "jfif"];

/// Hashes one file. An unreadable file is an error; a picture that does
/// not decode gets digests and a note instead of a PDQ hash.
pub fn hash_file(path: &Path) -> std::io::Result<FileHashes> {
    let data = std::fs::read(path)?;
    let mut out = FileHashes {
        path: path.display().to_string(),
        bytes: data.len() as u64,
        md5: hex::encode(md5::Md5::digest(&data)),
        sha1: hex::encode(sha1::Sha1::digest(&data)),
        sha256: hex::encode(sha2::Sha256::digest(&data)),
        pdq: None,
        quality: None,
        note: None,
    };
    let looks_like_picture = path
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| PICTURES.contains(&e.to_ascii_lowercase().as_str()));
    match pdq_of_bytes(&data) {
        Ok((bits, quality)) => {
            out.pdq = Some(hex::encode(bits));
            out.quality = Some(quality);
        }
        Err(why) if looks_like_picture => out.note = Some(why),
        Err(_) => {}
    }
    Ok(out)
}

/// PDQ hash and quality of an encoded PNG or JPEG picture.
pub fn pdq_of_bytes(data: &[u8]) -> Result<(crate::io::pdq::Pdq, u32), String> {
    let format = image::guess_format(data).map_err(|e| format!("not a picture: {e}"))?;
    if !matches!(format, image::ImageFormat::Png | image::ImageFormat::Jpeg) {
        return Err(format!(
            "{format:?} pictures are not decoded (PNG and JPEG are)"
        ));
    }
    let img = image::load_from_memory_with_format(data, format)
        .map_err(|e| format!("cannot decode the picture: {e}"))?;
    let rgb = img.to_rgb8();
    let (w, h) = (rgb.width() as usize, rgb.height() as usize);
    Ok(crate::io::pdq::hash_rgb(w, h, rgb.as_raw()))
}

/// The files `vidx hash` and `vidx triage --files` take from `paths`:
/// files as given, directories walked recursively (sorted, hidden entries
/// skipped).
pub fn collect_files(paths: &[PathBuf]) -> std::io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            walk(p, &mut out)?;
        } else {
            out.push(p.clone());
        }
    }
    Ok(out)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)?
        .map(|e| e.map(|e| e.path()))
        .collect::<std::io::Result<_>>()?;
    entries.sort();
    for p in entries {
        let hidden = p
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with('.'));
        if hidden {
            continue;
        }
        if p.is_dir() {
            walk(&p, out)?;
        } else if p.is_file() {
            out.push(p);
        }
    }
    Ok(())
}
