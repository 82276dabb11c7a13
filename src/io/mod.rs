//! File formats that carry points in and out: NumPy `.npy` matrices, the
//! point-line JSON format, and reading a set of files into points; the
//! digests and PDQ hash of an image file (`vidx hash`); VICS case files.
//!
//! May import: the root modules only.

pub mod filehash;
pub mod ingest;
pub mod npy;
pub mod pdq;
pub mod pointline;
pub mod vics;
