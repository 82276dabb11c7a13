//! Investigative work over collections: linking media into series, the
//! stored series records, investigators' decisions and the constraints they
//! put on linking, and triage of a seized set into known and new (hashes
//! first: `known`, then embeddings: `triage`).
//!
//! May import: `collection`, `segment`, `index`, `storage`, `io` and the root
//! modules.

pub mod calibrate;
pub mod decisions;
pub mod graph;
pub mod hashes;
pub mod identity;
pub mod known;
pub mod link;
pub mod review;
pub mod series;
pub mod triage;
pub mod union;
pub mod upload;
