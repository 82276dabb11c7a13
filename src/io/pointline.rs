//! The point-line format: one JSON object per line holding a point's id, its
//! metadata and (when no `.npy` file goes with the lines) its vector. `vidx gen`
//! writes it, `vidx ingest` and the demo loader read it.

use serde::{Deserialize, Serialize};

use crate::pb::Metadata;

/// One line of `images.jsonl` / `faces.jsonl`, and of the JSON-lines input of
/// `vidx ingest`: a point id, its metadata and (when no `.npy` file goes with
/// the JSON lines) its vector.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PointLine {
    /// Point id: the `media_id` for image points, `<media_id>#<n>` for faces.
    pub id: String,
    /// The vector, when it is not in a companion `.npy` file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vector: Option<Vec<f32>>,
    /// Investigative metadata.
    #[serde(default)]
    pub metadata: Metadata,
}
