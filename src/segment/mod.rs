//! Segments, named as a pair: the mutable segment that takes writes
//! ([`mutable`]) and the immutable, memory-mapped sealed segment it becomes
//! ([`sealed`]). Sealing goes one way: `mutable` writes a `sealed` directory.
//! A perceptual-hash collection's segments hold codes instead of vectors
//! ([`bits`]: the sealed `bits.bin` and `mih.bin`).
//! The immutable parts of exact-hash sets are [`hashpart`].
//!
//! May import: `index`, `storage` and the root modules.

pub mod bits;
pub mod hashpart;
pub mod mutable;
pub mod sealed;
