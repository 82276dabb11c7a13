//! Moving blocking or CPU-heavy work off the async runtime.

use tonic::Status;

use crate::error::Error;

/// Runs CPU-bound or blocking work on tokio's blocking pool.
pub async fn blocking<T, F>(f: F) -> Result<T, Status>
where
    F: FnOnce() -> Result<T, Error> + Send + 'static,
    T: Send + 'static,
{
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r.map_err(Status::from),
        Err(e) => Err(Status::internal(format!("worker failed: {e}"))),
    }
}
