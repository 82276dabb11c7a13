//! The crate's error type (`thiserror`). Every layer below `api` returns
//! [`Error`]; `api::status` maps it to a gRPC status in one place.

use std::path::PathBuf;

/// Result alias used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request is malformed; the message names the field and the value.
    #[error("{0}")]
    InvalidArgument(String),
    #[error("collection {0:?} not found")]
    CollectionNotFound(String),
    #[error("point {id:?} not found in collection {collection:?}")]
    PointNotFound { collection: String, id: String },
    /// Something else the request names does not exist (a series, a
    /// media); the message names it.
    #[error("{0}")]
    NotFound(String),
    #[error("collection {0:?} already exists")]
    AlreadyExists(String),
    /// Something other than a collection already exists; the message says what.
    #[error("{0}")]
    Duplicate(String),
    #[error("{0}")]
    ResourceExhausted(String),
    #[error("{0}")]
    FailedPrecondition(String),
    /// The caller's agency or role may not do this; the message says why.
    #[error("{0}")]
    PermissionDenied(String),
    /// A file's contents are not what vidx wrote; the collection is refused.
    #[error("data loss in {path}: {what}")]
    DataLoss { path: PathBuf, what: String },
    #[error("I/O error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    pub fn invalid(msg: impl Into<String>) -> Self {
        Error::InvalidArgument(msg.into())
    }

    /// Wraps an `io::Error` with the path it happened on.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    pub fn data_loss(path: impl Into<PathBuf>, what: impl Into<String>) -> Self {
        Error::DataLoss {
            path: path.into(),
            what: what.into(),
        }
    }
}
