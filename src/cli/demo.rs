//! The demo data set, embedded in the binary so `vidx serve --demo` works
//! from any directory: the `images` and `faces` collections generated into
//! `data-samples/` (see its README for the exact `vidx gen` command).

use crate::collection::config::{Config, Kind};
use crate::collection::registry::Registry;
use crate::error::{Error, Result};
use crate::index::distance::Metric;
use crate::io::pointline::PointLine;

struct DemoSet {
    name: &'static str,
    kind: Kind,
    npy: &'static [u8],
    jsonl: &'static [u8],
}

const SETS: &[DemoSet] = &[
    DemoSet {
        name: "images",
        kind: Kind::Image,
        npy: include_bytes!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/data-samples/images.npy"
        )),
        jsonl: include_bytes!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/data-samples/images.jsonl"
        )),
    },
    DemoSet {
        name: "faces",
        kind: Kind::Face,
        npy: include_bytes!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/data-samples/faces.npy"
        )),
        jsonl: include_bytes!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/data-samples/faces.jsonl"
        )),
    },
];

/// Creates and fills each demo collection that does not exist yet; leaves
/// existing ones untouched. Returns the names it loaded.
pub fn load(registry: &Registry) -> Result<Vec<&'static str>> {
    let mut loaded = Vec::new();
    for set in SETS {
        match registry.get(set.name) {
            Ok(_) => continue,
            Err(Error::CollectionNotFound(_)) => {}
            Err(e) => return Err(e),
        }
        let matrix = crate::io::npy::parse_matrix(set.npy, set.name)
            .map_err(|e| Error::Internal(format!("embedded demo data: {e}")))?;
        let lines: Vec<PointLine> = crate::io::ingest::parse_lines(set.jsonl, set.name, false)
            .map_err(|e| Error::Internal(format!("embedded demo data: {e:#}")))?;
        let dim = matrix.cols as u32;
        let points = crate::io::ingest::join(matrix, lines, set.name)
            .map_err(|e| Error::Internal(format!("embedded demo data: {e:#}")))?;
        let config = Config::new(set.name, dim, Metric::Cosine, set.kind);
        let c = registry.create(config)?;
        for chunk in points.chunks(1000) {
            c.upsert(chunk.to_vec())?;
        }
        tracing::info!(
            collection = set.name,
            points = c.len(),
            "demo collection loaded"
        );
        loaded.push(set.name);
    }
    Ok(loaded)
}
