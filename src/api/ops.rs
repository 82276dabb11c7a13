//! The operations listener (`vidx serve --metrics-listen`): a small HTTP/1
//! server beside the gRPC one with `/metrics` (Prometheus text format),
//! `/healthz` (the process answers) and `/readyz` (the data directory is
//! open and every collection has opened and finished its checksum pass).
//!
//! It starts before the data directory is opened, so that while a large
//! write-ahead log replays, `/readyz` says why the server is not ready yet
//! instead of the port being closed.

use std::future::Future;
use std::sync::{Arc, OnceLock};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::net::TcpListener;

use crate::collection::registry::{Registry, State as CollectionState};
use crate::collection::{Health, Verification};
use crate::metrics::CollectionRow;

/// What the listener reports on; the registry arrives once it is open.
#[derive(Default)]
pub struct Ops {
    registry: OnceLock<Arc<Registry>>,
}

impl Ops {
    pub fn new() -> Arc<Ops> {
        Arc::new(Ops::default())
    }

    /// The data directory is open: from now on readiness follows its
    /// collections.
    pub fn set_registry(&self, registry: Arc<Registry>) {
        let _ = self.registry.set(registry);
    }

    /// Each collection's row for the gauges (blocking: sizes are read from
    /// disk).
    fn rows(&self) -> Vec<CollectionRow> {
        let Some(registry) = self.registry.get() else {
            return Vec::new();
        };
        let row = |name: String, verification: Verification| CollectionRow {
            name,
            points: 0,
            segments: 0,
            memory_bytes: 0,
            disk_bytes: 0,
            wal_bytes: 0,
            verification: verification.as_str(),
            available: false,
        };
        let rows: Vec<CollectionRow> = registry
            .list()
            .into_iter()
            .map(|(name, state)| match state {
                CollectionState::Ready(c) => {
                    let info = c.info();
                    CollectionRow {
                        name: info.name,
                        points: info.points,
                        segments: info.segments as u64,
                        memory_bytes: info.memory_bytes,
                        disk_bytes: info.disk_bytes,
                        wal_bytes: c.wal_bytes(),
                        verification: c.verification().as_str(),
                        available: c.check().is_ok(),
                    }
                }
                // Still replaying its log: not verified, not available yet.
                CollectionState::Opening => row(name, Verification::Pending),
                CollectionState::Unavailable(_) => row(name, Verification::Failed),
            })
            .collect();
        rows
    }

    /// Ready, and a line per collection saying where it is. A collection
    /// found corrupt does not hold readiness back: it answers DATA_LOSS
    /// while the others serve (alert on `vidx_collection_available`).
    pub fn readiness(&self) -> (bool, String) {
        let Some(registry) = self.registry.get() else {
            return (false, "opening the data directory\n".into());
        };
        let mut lines = Vec::new();
        let (mut opening, mut pending) = (0, 0);
        for (name, state) in registry.list() {
            match state {
                CollectionState::Ready(c) => {
                    let v = c.verification();
                    pending += (v == Verification::Pending) as usize;
                    lines.push(match c.health() {
                        Health::ReadOnly(why) => format!("{name} {} read-only: {why}", v.as_str()),
                        _ => format!("{name} {}", v.as_str()),
                    });
                }
                CollectionState::Opening => {
                    opening += 1;
                    lines.push(format!("{name} opening"));
                }
                CollectionState::Unavailable(why) => {
                    lines.push(format!("{name} unavailable: {why}"))
                }
            }
        }
        let head = match (opening, pending) {
            (0, 0) => "ready".to_string(),
            (0, p) => format!("not ready: {p} collection(s) still verifying checksums"),
            (o, p) => format!(
                "not ready: {o} collection(s) still opening (replaying their logs), {p} verifying checksums"
            ),
        };
        let mut body = head;
        for l in lines {
            body.push('\n');
            body.push_str(&l);
        }
        body.push('\n');
        (opening == 0 && pending == 0, body)
    }
}

async fn metrics(State(ops): State<Arc<Ops>>) -> Response {
    let text = tokio::task::spawn_blocking(move || {
        let rows = ops.rows();
        let (ready, _) = ops.readiness();
        crate::metrics::render(&rows, ready)
    })
    .await;
    match text {
        Ok(t) => ([(header::CONTENT_TYPE, crate::metrics::content_type())], t).into_response(),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("metrics failed: {e}\n"),
        )
            .into_response(),
    }
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(ops): State<Arc<Ops>>) -> Response {
    let (ready, body) = ops.readiness();
    let code = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, body).into_response()
}

/// Serves `/metrics`, `/healthz` and `/readyz` on `listener` until
/// `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    ops: Arc<Ops>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(ops);
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_ready_until_the_data_directory_is_open() {
        let ops = Ops::new();
        assert_eq!(
            ops.readiness(),
            (false, "opening the data directory\n".into())
        );
        assert!(ops.rows().is_empty());
        let dir = tempfile::tempdir().unwrap();
        let r = Registry::open(dir.path(), Default::default()).unwrap();
        ops.set_registry(Arc::new(r));
        assert_eq!(ops.readiness(), (true, "ready\n".into()));
    }
}
