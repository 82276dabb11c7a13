//! Reading points from files for `vidx ingest` and the demo loader, and
//! streaming them to a server in batches.
//!
//! Two input forms:
//! - `X.jsonl` alone: one JSON object per line,
//!   `{"id": "...", "vector": [...], "metadata": {...}}`;
//! - `X.npy` (2-D float32/float16 matrix) with `X.jsonl` beside it: line *i*
//!   holds the id and metadata of row *i* (`vector` omitted).

use std::collections::BTreeSet;
use std::io::BufRead;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

use crate::io::npy::Matrix;
use crate::io::pointline::PointLine;
use crate::pb;

/// One input to ingest: a file of points with vectors, or a matrix file
/// with its metadata lines.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    Jsonl(PathBuf),
    NpyWithMeta { npy: PathBuf, meta: PathBuf },
}

/// Pairs the given files into sources. An `.npy` takes the same-stem
/// `.jsonl` beside it as its metadata; that `.jsonl`, if also listed, is not
/// read a second time.
pub fn plan(files: &[PathBuf]) -> anyhow::Result<Vec<Source>> {
    let mut sources = Vec::new();
    let mut meta_files = BTreeSet::new();
    for f in files {
        if f.extension().is_some_and(|e| e == "npy") {
            let meta = f.with_extension("jsonl");
            if !meta.exists() {
                bail!(
                    "{}: a .npy file needs its ids and metadata in {} (one JSON line per row)",
                    f.display(),
                    meta.display()
                );
            }
            meta_files.insert(meta.clone());
            sources.push(Source::NpyWithMeta {
                npy: f.clone(),
                meta,
            });
        }
    }
    for f in files {
        match f.extension().and_then(|e| e.to_str()) {
            Some("npy") => {}
            Some("jsonl") | Some("json") => {
                if !meta_files.contains(f) {
                    sources.push(Source::Jsonl(f.clone()));
                }
            }
            _ => bail!(
                "{}: unsupported file type; give .jsonl or .npy (+ .jsonl)",
                f.display()
            ),
        }
    }
    Ok(sources)
}

/// Parses JSON lines of points. `need_vector` says whether each line must
/// carry its vector. Blank lines are skipped.
pub fn parse_lines(
    reader: impl BufRead,
    source: &str,
    need_vector: bool,
) -> anyhow::Result<Vec<PointLine>> {
    let mut out = Vec::new();
    for (i, line) in reader.lines().enumerate() {
        let line = line.with_context(|| format!("{source}: reading line {}", i + 1))?;
        if line.trim().is_empty() {
            continue;
        }
        let p: PointLine = serde_json::from_str(&line)
            .with_context(|| format!("{source}:{}: not a point line", i + 1))?;
        if need_vector && p.vector.is_none() {
            bail!(
                "{source}:{}: point {:?} has no \"vector\"; pass the matching .npy file too",
                i + 1,
                p.id
            );
        }
        out.push(p);
    }
    Ok(out)
}

/// Joins matrix rows with their metadata lines.
pub fn join(m: Matrix, lines: Vec<PointLine>, source: &str) -> anyhow::Result<Vec<pb::Point>> {
    if m.rows != lines.len() {
        bail!(
            "{source}: the matrix has {} rows but the metadata has {} lines",
            m.rows,
            lines.len()
        );
    }
    Ok(lines
        .into_iter()
        .zip(m.data.chunks_exact(m.cols.max(1)))
        .map(|(l, row)| pb::Point {
            id: l.id,
            vector: row.to_vec(),
            metadata: Some(l.metadata),
            ..Default::default()
        })
        .collect())
}

/// Reads one source into points.
pub fn read_source(s: &Source) -> anyhow::Result<Vec<pb::Point>> {
    match s {
        Source::Jsonl(path) => {
            let lines = parse_lines(open(path)?, &path.display().to_string(), true)?;
            Ok(lines
                .into_iter()
                .map(|l| pb::Point {
                    id: l.id,
                    vector: l.vector.unwrap_or_default(),
                    metadata: Some(l.metadata),
                    ..Default::default()
                })
                .collect())
        }
        Source::NpyWithMeta { npy, meta } => {
            let m = crate::io::npy::read_matrix(npy)?;
            let lines = parse_lines(open(meta)?, &meta.display().to_string(), false)?;
            join(m, lines, &npy.display().to_string())
        }
    }
}

fn open(path: &Path) -> anyhow::Result<std::io::BufReader<std::fs::File>> {
    let f = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    Ok(std::io::BufReader::new(f))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_pairs_npy_with_its_jsonl() {
        let dir = tempfile::tempdir().unwrap();
        let npy = dir.path().join("a.npy");
        let meta = dir.path().join("a.jsonl");
        let other = dir.path().join("b.jsonl");
        for f in [&npy, &meta, &other] {
            std::fs::write(f, b"").unwrap();
        }
        let p = plan(&[meta.clone(), npy.clone(), other.clone()]).unwrap();
        assert_eq!(
            p,
            vec![
                Source::NpyWithMeta {
                    npy: npy.clone(),
                    meta: meta.clone()
                },
                Source::Jsonl(other.clone())
            ]
        );
        std::fs::remove_file(&meta).unwrap();
        assert!(plan(&[npy]).unwrap_err().to_string().contains("a.jsonl"));
    }

    #[test]
    fn lines_need_vectors_when_alone() {
        let text =
            "{\"id\":\"a\",\"vector\":[1,2],\"metadata\":{\"country\":\"DE\"}}\n\n{\"id\":\"b\"}\n";
        let e = parse_lines(text.as_bytes(), "t.jsonl", true)
            .unwrap_err()
            .to_string();
        assert!(e.contains("t.jsonl:3"), "{e}");
        let ok = parse_lines(text.as_bytes(), "t.jsonl", false).unwrap();
        assert_eq!(ok.len(), 2);
        assert_eq!(ok[0].metadata.country, "DE");
        let bad = parse_lines("{oops".as_bytes(), "t.jsonl", false)
            .unwrap_err()
            .to_string();
        assert!(bad.contains("t.jsonl:1"), "{bad}");
    }
}
