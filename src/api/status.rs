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
            Error::DataLoss { .. } => Code::DataLoss,
            Error::Io { .. } | Error::Internal(_) => Code::Internal,
        };
        tonic::Status::new(code, e.to_string())
    }
}
