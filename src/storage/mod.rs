//! Bytes and durability: the one door to the filesystem (`fs`, where
//! faults are injected in tests), the versioned, checksummed file envelope,
//! the write-ahead log, the append-only record file (decision logs), the
//! manifest, the durable-write helpers (write-then-rename, directory fsync),
//! the data directory's lock, the snapshot manifest and its checks, and the
//! table of every stored format's version. Nothing here knows about vectors
//! beyond the records it stores.
//!
//! May import: the root modules (`pb`, `error`, `validate`) only.

pub mod audit;
pub mod durable;
pub mod envelope;
pub mod fs;
pub mod lock;
pub mod manifest;
pub mod records;
pub mod snapshot;
pub mod versions;
pub mod wal;
