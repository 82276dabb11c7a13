//! The one table of vidx's stored formats: for each kind of file, the format
//! version this vidx writes and the oldest version it still reads.
//!
//! | format | files | written | oldest read |
//! | --- | --- | --- | --- |
//! | [`SEALED`] | `seg-*/vectors.bin` (or `vectors16.bin`, f16 storage), `ids.bin`, `meta.bin`, `tomb-*.bin` | 1 | 1 |
//! | [`GRAPH`] | `seg-*/graph.bin` | 1 | 1 |
//! | [`CODES`] | `seg-*/codes.bin` (quantized collections) | 1 | 1 |
//! | [`WAL`] | `wal-*.log` | 1 | 1 |
//! | [`MANIFEST`] | `manifest.json` (`"format"`) | 1 | 1 |
//! | [`CONFIG`] | `collection.json` (`"format"`) | 1 | 1 |
//! | [`SERIES`] | `series/<collection>.json` (`"format": "vidx-series/<n>"`) | 1 | 1 |
//! | [`HASHES`] | `seg-*/bits.bin`, `seg-*/mih.bin` (perceptual-hash collections) | 1 | 1 |
//! | [`HASHSET`] | `hashsets/<set>/set.json` (`"format"`), `part-*.bin` | 1 | 1 |
//! | [`DECISIONS`] | `series/<collection>.decisions.log` | 1 | 1 |
//! | [`SNAPSHOT`] | a snapshot's `snapshot.json` (`"format"`) | 1 | 1 |
//!
//! It lives in `storage`, the lowest layer that stores files, so that the
//! segment, collection and investigate layers can all import it.
//!
//! # Adding a version
//!
//! When a format changes in a way an older reader would misread:
//!
//! 1. raise its `current` here (and the row above); the writer picks it up;
//! 2. teach its reader the new layout, branching on the version
//!    [`Format::check`] returns, and keep reading every version from `oldest`
//!    up — a data directory written today must still open;
//! 3. raise `oldest` only when vidx drops an old layout on purpose (say so in
//!    the release notes: such directories must be rewritten first);
//! 4. add the new version's files beside the old ones under
//!    `tests/data/formats/` (see `tests/it/stored_formats.rs`) and leave the old
//!    files there, so the test keeps proving that they open.

use std::path::Path;

use crate::error::{Error, Result};

/// A stored format: what the file is, the version written, the oldest read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Format {
    /// What the file is, as an error message names it.
    pub name: &'static str,
    /// The version this vidx writes.
    pub current: u32,
    /// The oldest version this vidx reads.
    pub oldest: u32,
}

/// The files of a sealed segment but its graph (one envelope version).
pub const SEALED: Format = Format {
    name: "sealed segment file",
    current: 1,
    oldest: 1,
};

/// The memory-mapped HNSW graph of a sealed segment.
pub const GRAPH: Format = Format {
    name: "graph file",
    current: 1,
    oldest: 1,
};

/// The quantized codes of a sealed segment (codebook, norms, codes).
pub const CODES: Format = Format {
    name: "codes file",
    current: 1,
    oldest: 1,
};

/// A write-ahead log file.
pub const WAL: Format = Format {
    name: "write-ahead log",
    current: 1,
    oldest: 1,
};

/// A collection's manifest.
pub const MANIFEST: Format = Format {
    name: "manifest",
    current: 1,
    oldest: 1,
};

/// A collection's configuration.
pub const CONFIG: Format = Format {
    name: "collection configuration",
    current: 1,
    oldest: 1,
};

/// The stored series state of an image collection.
pub const SERIES: Format = Format {
    name: "series state",
    current: 1,
    oldest: 1,
};

/// The codes and multi-index of a sealed perceptual-hash segment.
pub const HASHES: Format = Format {
    name: "hash codes file",
    current: 1,
    oldest: 1,
};

/// The investigators' decisions about an image collection's series.
pub const DECISIONS: Format = Format {
    name: "decision log",
    current: 1,
    oldest: 1,
};

/// An exact-hash set: its description and its immutable parts.
pub const HASHSET: Format = Format {
    name: "hash set file",
    current: 1,
    oldest: 1,
};

/// The manifest of a collection snapshot (`vidx snapshot create`).
pub const SNAPSHOT: Format = Format {
    name: "snapshot manifest",
    current: 1,
    oldest: 1,
};

/// Every stored format, in the order of the table above.
pub const ALL: [Format; 11] = [
    SEALED, GRAPH, CODES, WAL, MANIFEST, CONFIG, SERIES, DECISIONS, SNAPSHOT, HASHES, HASHSET,
];

impl Format {
    /// Checks the version `found` in `path` and returns it, for the reader
    /// to interpret the file by. A version no vidx ever writes (0) means the
    /// file is damaged: DATA_LOSS. A version outside `oldest..=current` is a
    /// sound file this vidx cannot read: FAILED_PRECONDITION. Both messages
    /// name the file, the version found and the versions read.
    pub fn check(&self, path: &Path, found: u32) -> Result<u32> {
        let reads = if self.oldest == self.current {
            format!("this vidx reads version {}", self.current)
        } else {
            format!(
                "this vidx reads versions {} to {}",
                self.oldest, self.current
            )
        };
        let name = self.name;
        if found == 0 {
            return Err(Error::data_loss(
                path,
                format!("{name} format version 0, which no vidx writes; {reads}"),
            ));
        }
        let why = if found > self.current {
            format!("was written by a newer vidx; {reads}: upgrade vidx to open it")
        } else if found < self.oldest {
            format!("is older than this vidx still reads; {reads}")
        } else {
            return Ok(found);
        };
        Err(Error::FailedPrecondition(format!(
            "{}: {name} format version {found} {why}",
            path.display()
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_format_reads_what_it_writes() {
        for f in ALL {
            assert!(1 <= f.oldest && f.oldest <= f.current, "{f:?}");
            assert_eq!(f.check(Path::new("x"), f.current).expect(f.name), f.current);
        }
    }

    #[test]
    fn versions_outside_the_range_name_file_and_versions() {
        let f = Format {
            name: "graph file",
            current: 3,
            oldest: 2,
        };
        let p = Path::new("/data/seg-00000001/graph.bin");
        assert_eq!(f.check(p, 2).expect("oldest"), 2);
        let newer = f.check(p, 4).expect_err("newer").to_string();
        assert_eq!(
            newer,
            "/data/seg-00000001/graph.bin: graph file format version 4 was written by a \
             newer vidx; this vidx reads versions 2 to 3: upgrade vidx to open it"
        );
        let older = f.check(p, 1).expect_err("older");
        assert!(matches!(older, Error::FailedPrecondition(_)), "{older}");
        assert!(
            older.to_string().contains("version 1 is older than"),
            "{older}"
        );
        let zero = f.check(p, 0).expect_err("zero");
        assert!(matches!(zero, Error::DataLoss { .. }), "{zero}");
        assert!(zero.to_string().contains("graph.bin"), "{zero}");
        assert!(zero.to_string().contains("versions 2 to 3"), "{zero}");
    }
}
