//! File formats that carry points in and out: NumPy `.npy` matrices, the
//! point-line JSON format, and reading a set of files into points.
//!
//! May import: the root modules only.

pub mod ingest;
pub mod npy;
pub mod pointline;
