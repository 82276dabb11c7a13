//! The crate's error type (`thiserror`). Every layer below `api` returns
//! [`Error`]; `api::status` maps it to a gRPC status in one place.

use std::path::PathBuf;
use std::sync::Arc;

/// Result alias used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Cloneable, so that an error met once (a collection refused at open) can
/// be reported to every request that asks; the I/O errors it wraps keep
/// their kind and errno.
#[derive(Clone, Debug, thiserror::Error)]
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
    /// A write reached a collection that was dropped meanwhile.
    #[error("collection {0:?} was dropped")]
    Dropped(String),
    /// Something other than a collection already exists; the message says what.
    #[error("{0}")]
    Duplicate(String),
    #[error("{0}")]
    ResourceExhausted(String),
    #[error("{0}")]
    FailedPrecondition(String),
    /// Try again later: a collection still opening, or an engine the
    /// cluster relies on (log, object store, etcd, a peer node) that cannot
    /// be reached now.
    #[error("{0}")]
    Unavailable(String),
    /// A collection that could not be opened, and why.
    #[error("collection {name:?} is unavailable: {cause}")]
    Unopened { name: String, cause: Box<Error> },
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
        source: Arc<std::io::Error>,
    },
    /// An fsync failed: what was written since the last good one may or
    /// may not be on disk, and the kernel may have dropped it (PostgreSQL's
    /// "fsyncgate"), so the file is not trusted again until recovery.
    #[error("fsync of {path} failed: {source}")]
    Fsync {
        path: PathBuf,
        #[source]
        source: Arc<std::io::Error>,
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
            source: Arc::new(source),
        }
    }

    /// A failed fsync of `path`.
    pub fn fsync(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Fsync {
            path: path.into(),
            source: Arc::new(source),
        }
    }

    pub fn data_loss(path: impl Into<PathBuf>, what: impl Into<String>) -> Self {
        Error::DataLoss {
            path: path.into(),
            what: what.into(),
        }
    }

    /// A JSON file that does not parse, described by where and how it
    /// breaks but never by what it holds (it may not be vidx's file).
    pub fn bad_json(path: impl Into<PathBuf>, what: &str, e: &serde_json::Error) -> Self {
        let how = match e.classify() {
            serde_json::error::Category::Io => "cannot be read",
            serde_json::error::Category::Syntax => "is not valid JSON",
            serde_json::error::Category::Data => "does not have the expected fields",
            serde_json::error::Category::Eof => "ends too early",
        };
        Error::data_loss(
            path,
            format!("{what} {how} (line {}, column {})", e.line(), e.column()),
        )
    }

    /// Whether this is an I/O error whose cause is `kind`.
    pub fn is_io(&self, kind: std::io::ErrorKind) -> bool {
        matches!(self, Error::Io { source, .. } if source.kind() == kind)
    }
}
