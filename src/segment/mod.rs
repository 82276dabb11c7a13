//! Segments, named as a pair: the mutable segment that takes writes
//! ([`mutable`]) and the immutable, memory-mapped sealed segment it becomes
//! ([`sealed`]). Sealing goes one way: `mutable` writes a `sealed` directory.
//!
//! May import: `index`, `storage` and the root modules.

pub mod mutable;
pub mod sealed;
