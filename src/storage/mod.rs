//! Bytes and durability: the versioned, checksummed file envelope, the
//! write-ahead log, the manifest, and the durable-write helpers
//! (write-then-rename, directory fsync). Nothing here knows about vectors
//! beyond the records it stores.
//!
//! May import: the root modules (`pb`, `error`, `validate`) only.

pub mod durable;
pub mod envelope;
pub mod manifest;
pub mod wal;
