//! The one mapping from the crate's [`Error`] to a gRPC status: the code a
//! client sees for a given failure is decided here and nowhere else.
//! The statuses tonic itself gives for a client's mistakes are rewritten here too
//! ([`transport_status`]).
//!
//! A failed file operation is classed by its cause: a full disk or too many
//! open files is RESOURCE_EXHAUSTED, a file the server may not write (a
//! read-only or unwritable data directory) is FAILED_PRECONDITION, anything
//! else INTERNAL; the message names the file and says what to do.

use tonic::Code;

use crate::error::Error;

impl From<Error> for tonic::Status {
    fn from(e: Error) -> Self {
        let message = match hint(&e) {
            Some(h) => format!("{e}; {h}"),
            None => e.to_string(),
        };
        tonic::Status::new(code(&e), message)
    }
}

fn code(e: &Error) -> Code {
    match e {
        Error::InvalidArgument(_) => Code::InvalidArgument,
        Error::CollectionNotFound(_)
        | Error::PointNotFound { .. }
        | Error::NotFound(_)
        | Error::Dropped(_) => Code::NotFound,
        Error::AlreadyExists(_) | Error::Duplicate(_) => Code::AlreadyExists,
        Error::ResourceExhausted(_) => Code::ResourceExhausted,
        Error::FailedPrecondition(_) => Code::FailedPrecondition,
        Error::PermissionDenied(_) => Code::PermissionDenied,
        Error::Unavailable(_) => Code::Unavailable,
        // Files this vidx cannot read (a newer or retired format) make the
        // collection unusable like corrupt ones: DATA_LOSS, as main has it;
        // a failed file operation keeps its own code (a full disk, an
        // unwritable directory are not data loss).
        Error::Unopened { cause, .. } => match cause.as_ref() {
            Error::FailedPrecondition(_) => Code::DataLoss,
            c => code(c),
        },
        Error::DataLoss { .. } => Code::DataLoss,
        Error::Io { source, .. } | Error::Fsync { source, .. } => match cause(source) {
            Some(Cause::Full | Cause::Descriptors) => Code::ResourceExhausted,
            Some(Cause::NotWritable) => Code::FailedPrecondition,
            None => Code::Internal,
        },
        Error::Internal(_) => Code::Internal,
    }
}

/// What an operator can do about a failed file operation.
fn hint(e: &Error) -> Option<&'static str> {
    match e {
        Error::Unopened { cause, .. } => hint(cause),
        Error::Io { source, .. } | Error::Fsync { source, .. } => match cause(source)? {
            Cause::Full => {
                Some("the disk holding the data directory is full: free space, then retry")
            }
            Cause::Descriptors => {
                Some("the server has too many files open: raise its limit (ulimit -n), then retry")
            }
            Cause::NotWritable => Some(
                "the server may not write its data directory: check its permissions and that its filesystem is mounted writable",
            ),
        },
        _ => None,
    }
}

enum Cause {
    /// No space or quota left.
    Full,
    /// Out of file descriptors.
    Descriptors,
    /// Permission denied or a read-only filesystem.
    NotWritable,
}

fn cause(e: &std::io::Error) -> Option<Cause> {
    match e.raw_os_error() {
        Some(libc::ENOSPC | libc::EDQUOT) => Some(Cause::Full),
        Some(libc::EMFILE | libc::ENFILE) => Some(Cause::Descriptors),
        Some(libc::EACCES | libc::EPERM | libc::EROFS) => Some(Cause::NotWritable),
        _ => match e.kind() {
            std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded => {
                Some(Cause::Full)
            }
            std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::ReadOnlyFilesystem => {
                Some(Cause::NotWritable)
            }
            _ => None,
        },
    }
}

/// The statuses tonic gives for what is the client's doing, as gRPC's
/// conventions (and our contract) have them: an over-limit message
/// (OUT_OF_RANGE) is RESOURCE_EXHAUSTED; bytes that do not decode as the
/// request message (INTERNAL) are INVALID_ARGUMENT.
pub fn transport_status(s: tonic::Status) -> tonic::Status {
    match s.code() {
        tonic::Code::OutOfRange if s.message().contains("message length too large") => {
            tonic::Status::resource_exhausted(format!(
                "{}; send smaller batches or raise the server's --max-message-bytes",
                s.message()
            ))
        }
        tonic::Code::Internal if s.message().contains("failed to decode Protobuf message") => {
            tonic::Status::invalid_argument(format!(
                "the request is not a valid message of its type: {}",
                s.message()
            ))
        }
        _ => s,
    }
}
