//! The one mapping from the crate's [`Error`] to a gRPC status: the code a
//! client sees for a given failure is decided here and nowhere else.

use crate::error::Error;

impl From<Error> for tonic::Status {
    fn from(e: Error) -> Self {
        use tonic::Code;
        let code = match &e {
            Error::InvalidArgument(_) => Code::InvalidArgument,
            Error::CollectionNotFound(_) | Error::PointNotFound { .. } | Error::NotFound(_) => {
                Code::NotFound
            }
            Error::AlreadyExists(_) | Error::Duplicate(_) => Code::AlreadyExists,
            Error::ResourceExhausted(_) => Code::ResourceExhausted,
            Error::FailedPrecondition(_) => Code::FailedPrecondition,
            Error::PermissionDenied(_) => Code::PermissionDenied,
            Error::DataLoss { .. } => Code::DataLoss,
            Error::Io { .. } | Error::Internal(_) => Code::Internal,
        };
        tonic::Status::new(code, e.to_string())
    }
}

/// tonic reports an over-limit message as OUT_OF_RANGE; gRPC's convention
/// (and our contract) is RESOURCE_EXHAUSTED.
pub fn oversized_to_resource_exhausted(s: tonic::Status) -> tonic::Status {
    if s.code() == tonic::Code::OutOfRange && s.message().contains("message length too large") {
        tonic::Status::resource_exhausted(format!(
            "{}; send smaller batches or raise the server's --max-message-bytes",
            s.message()
        ))
    } else {
        s
    }
}
