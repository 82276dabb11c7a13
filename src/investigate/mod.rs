//! Investigative work over collections: linking media into series, the
//! stored series records, and triage of a seized set into known and new.
//!
//! May import: `collection`, `segment`, `index`, `storage`, `io` and the root
//! modules.

pub mod calibrate;
pub mod graph;
pub mod identity;
pub mod link;
pub mod series;
pub mod triage;
pub mod upload;
