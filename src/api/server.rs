//! Assembles the gRPC server: the vidx service behind its gate (identity,
//! roles, limits, audit: `api::guard`), gRPC health (the server's, and one
//! `collection:<name>` service per collection: NOT_SERVING while it opens,
//! when it is read-only or refused), server reflection (so `grpcurl` works
//! without the .proto), TLS and mTLS through tonic's rustls, message-size
//! limits, the per-call metrics and request log ([`crate::api::observe`]),
//! and serving on a given listener until a shutdown signal, then draining
//! for at most the shutdown grace.

use std::collections::BTreeSet;
use std::future::Future;
use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::TcpListenerStream;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

use crate::api::guard::{Gate, GateLayer};
use crate::api::limits::{LimitOptions, Limits};
use crate::api::observe::ObserveLayer;
use crate::api::service::Service;
use crate::api::tokens::TokenStore;
use crate::collection::Health;
use crate::collection::registry::{Registry, State};
use crate::collection::restrict::Restrictions;
use crate::pb;
use crate::pb::vector_index_server::{VectorIndex, VectorIndexServer};
use crate::storage::audit::{AuditLog, AuditOptions};

/// Default request/response size limit: a 2,000-point batch of 512-d vectors
/// is ~4.1 MB of floats plus metadata; 64 MiB leaves room for 10× that.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 64 << 20;

/// Default time in-flight requests and open streams get to finish after a
/// shutdown signal.
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// HTTP/2 flow-control windows (per stream and per connection), server and
/// clients alike.
pub const WINDOW_BYTES: u32 = 8 << 20;

/// A server address as a URL: `host:port` and `[::1]:port` (the form
/// grpcurl and grpcio take) become `http://host:port`; URLs stay as given.
pub fn endpoint_url(addr: &str) -> String {
    if addr.contains("://") {
        addr.to_string()
    } else {
        format!("http://{addr}")
    }
}

/// The endpoint at `addr` (a URL or `host:port`, see [`endpoint_url`]) with
/// vidx's flow-control windows; fails only if `addr` is not an address.
pub fn endpoint(addr: &str) -> Result<tonic::transport::Endpoint, tonic::transport::Error> {
    Ok(tonic::transport::Endpoint::from_shared(endpoint_url(addr))?
        .initial_stream_window_size(Some(WINDOW_BYTES))
        .initial_connection_window_size(Some(WINDOW_BYTES))
        .tcp_nodelay(true))
}

/// A client channel to `addr` (see [`endpoint`]).
pub async fn channel(addr: &str) -> Result<tonic::transport::Channel, tonic::transport::Error> {
    endpoint(addr)?.connect().await
}

/// The server's certificate and key, and the CA client certificates must
/// be signed by (mTLS), all PEM.
#[derive(Clone)]
pub struct TlsFiles {
    pub cert_pem: Vec<u8>,
    pub key_pem: Vec<u8>,
    pub client_ca_pem: Option<Vec<u8>>,
}

impl std::fmt::Debug for TlsFiles {
    /// Never prints the key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsFiles")
            .field("client_ca", &self.client_ca_pem.is_some())
            .finish_non_exhaustive()
    }
}
/// Requests taking longer than this are logged at info (`--slow-ms`).
pub const DEFAULT_SLOW_MS: u64 = 1000;

#[derive(Clone, Debug)]
pub struct ServerOptions {
    pub max_message_bytes: usize,
    /// After a shutdown signal, how long requests and streams still open
    /// get before they are cancelled.
    pub shutdown_grace: Duration,
    /// Set on a cluster index node: writes arrive through the log only, and
    /// a direct write (which would bypass it) is refused with this reason.
    pub refuse_writes: Option<String>,
    /// TLS (and with a client CA, mTLS); plaintext when `None`.
    pub tls: Option<TlsFiles>,
    /// The audit log; none when `None` (in-process tests, benchmarks of
    /// the plain server).
    pub audit: Option<AuditOptions>,
    pub limits: LimitOptions,
    /// Requests taking longer are logged at info as slow requests.
    pub slow: Duration,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
            shutdown_grace: DEFAULT_SHUTDOWN_GRACE,
            refuse_writes: None,
            tls: None,
            audit: None,
            limits: LimitOptions::default(),
            slow: Duration::from_millis(DEFAULT_SLOW_MS),
        }
    }
}

/// The health service name of a collection.
pub fn health_name(collection: &str) -> String {
    format!("collection:{collection}")
}

/// Serves the collections of `registry` until `shutdown` resolves, then
/// drains in-flight requests for at most `opts.shutdown_grace` and cancels
/// what is left (a client may hold a stream open for ever).
pub async fn serve(
    registry: Arc<Registry>,
    listener: TcpListener,
    opts: ServerOptions,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    let data_dir = registry.data_dir().to_path_buf();
    let tokens = Arc::new(TokenStore::open(&data_dir)?);
    let restrictions = Arc::new(Restrictions::open(&data_dir)?);
    let health = Arc::downgrade(&registry);
    let keep = registry.clone();
    let service = Service::new(
        registry,
        tokens.clone(),
        restrictions,
        opts.max_message_bytes,
    )
    .refusing_writes(opts.refuse_writes.clone());
    let served = serve_service(service, tokens, Some(health), listener, opts, shutdown).await;
    // Seals and merges in flight finish (or stop) before this returns.
    let _ = tokio::task::spawn_blocking(move || keep.close_all()).await;
    served
}

/// Serves `service` (the local one, or a cluster router: the same API)
/// behind the credential gate (`tokens`), with health (per collection of
/// `registry`, when local), reflection and the size limits, until
/// `shutdown` resolves.
pub async fn serve_service<S: VectorIndex>(
    service: S,
    tokens: Arc<TokenStore>,
    registry: Option<Weak<Registry>>,
    listener: TcpListener,
    opts: ServerOptions,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    let (health, health_service) = tonic_health::server::health_reporter();
    health.set_serving::<VectorIndexServer<S>>().await;
    if let Some(registry) = registry {
        tokio::spawn(report_collections(registry, health));
    }
    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    // Both reflection versions: grpcurl before 1.8.8 and many tools only
    // speak v1alpha.
    let reflection_v1 = reflection().build_v1()?;
    let reflection_v1alpha = reflection().build_v1alpha()?;
    let audit = match opts.audit.clone() {
        Some(a) => Some(Arc::new(
            tokio::task::spawn_blocking(move || AuditLog::open(a)).await??,
        )),
        None => None,
    };
    let gate = Arc::new(Gate {
        tokens,
        audit: audit.clone(),
        limits: Limits::new(opts.limits.clone()),
        client_certs: opts.tls.as_ref().is_some_and(|t| t.client_ca_pem.is_some()),
    });
    let vidx = VectorIndexServer::new(service)
        .max_decoding_message_size(opts.max_message_bytes)
        .max_encoding_message_size(opts.max_message_bytes);
    // Accepted sockets get TCP_NODELAY: HTTP/2 writes small frames, and
    // Nagle's algorithm would hold them for the peer's delayed ACK.
    let incoming = TcpListenerStream::new(listener).map(|s| {
        s.inspect(|s| {
            let _ = s.set_nodelay(true);
        })
    });
    let grace = opts.shutdown_grace;
    let (stopping, stopped) = tokio::sync::oneshot::channel::<()>();
    let signal = async move {
        shutdown.await;
        tracing::info!(
            grace_s = grace.as_secs_f64(),
            "shutting down: finishing in-flight requests within the shutdown grace"
        );
        let _ = stopping.send(());
    };
    let mut builder = tonic::transport::Server::builder();
    if let Some(tls) = &opts.tls {
        let mut cfg = tonic::transport::ServerTlsConfig::new().identity(
            tonic::transport::Identity::from_pem(&tls.cert_pem, &tls.key_pem),
        );
        if let Some(ca) = &tls.client_ca_pem {
            cfg = cfg.client_ca_root(tonic::transport::Certificate::from_pem(ca));
        }
        builder = builder
            .tls_config(cfg)
            .map_err(|e| anyhow::anyhow!("TLS configuration: {e}"))?;
    }
    let server = builder
        // A batch of 50 queries of 512 floats is ~100 KB each way; with
        // HTTP/2's default 64 KiB windows every such message waits a round
        // trip for window updates while the cores idle.
        .initial_stream_window_size(Some(WINDOW_BYTES))
        .initial_connection_window_size(Some(WINDOW_BYTES))
        // Outermost, so that it sees the status the client gets.
        .layer(ObserveLayer { slow: opts.slow })
        .layer(tower::util::MapResponseLayer::new(client_error_status))
        .layer(GateLayer(gate))
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(vidx)
        .serve_with_incoming_shutdown(incoming, signal);
    let grace_over = async move {
        match stopped.await {
            Ok(()) => tokio::time::sleep(grace).await,
            Err(_) => std::future::pending().await,
        }
    };
    let served = tokio::select! {
        r = server => r,
        () = grace_over => {
            tracing::warn!(
                grace_s = grace.as_secs_f64(),
                "shutdown grace over: cancelling the requests and streams still open"
            );
            Ok(())
        }
    };
    // Every answered call is recorded; the last checkpoint covers them.
    if let Some(a) = audit {
        tokio::task::spawn_blocking(move || a.close()).await?;
    }
    served?;
    Ok(())
}

/// Keeps each collection's health service in step with the registry:
/// SERVING when it takes reads and writes, NOT_SERVING while it opens,
/// when it is read-only after an fsync failure or refused; unknown once
/// dropped.
async fn report_collections(registry: Weak<Registry>, mut health: HealthReporter) {
    let Some(mut changes) = registry.upgrade().map(|r| r.subscribe()) else {
        return;
    };
    let mut known: BTreeSet<String> = BTreeSet::new();
    loop {
        // Weak: this task must not keep the registry (and its change
        // sender, which ends it) alive.
        let Some(now) = registry.upgrade().map(|r| r.list()) else {
            return;
        };
        let names: BTreeSet<String> = now.iter().map(|(n, _)| n.clone()).collect();
        for gone in known.difference(&names) {
            health.clear_service_status(&health_name(gone)).await;
        }
        for (name, state) in now {
            let serving = matches!(&state, State::Ready(c) if c.health() == Health::Serving);
            let status = if serving {
                ServingStatus::Serving
            } else {
                ServingStatus::NotServing
            };
            health.set_service_status(health_name(&name), status).await;
        }
        known = names;
        if changes.changed().await.is_err() {
            return;
        }
    }
}

/// Rewrites, in one place, the statuses tonic gives before any handler runs
/// for what is the client's doing: an over-limit request (OUT_OF_RANGE)
/// becomes RESOURCE_EXHAUSTED, bytes that do not decode (INTERNAL) become
/// INVALID_ARGUMENT. Only trailers-only replies carry such a status in
/// their headers.
fn client_error_status<B>(mut resp: http::Response<B>) -> http::Response<B> {
    let Some(status) = tonic::Status::from_header_map(resp.headers()) else {
        return resp;
    };
    let code = status.code();
    let rewritten = crate::api::service::transport_status(status);
    if rewritten.code() != code {
        // Only the status headers change; nothing else is in a trailers-only reply.
        let _ = rewritten.add_header(resp.headers_mut());
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::endpoint_url;

    #[test]
    fn host_port_addresses_become_http_urls() {
        assert_eq!(endpoint_url("127.0.0.1:50051"), "http://127.0.0.1:50051");
        assert_eq!(endpoint_url("[::1]:50051"), "http://[::1]:50051");
        assert_eq!(endpoint_url("localhost:7"), "http://localhost:7");
        assert_eq!(endpoint_url("http://10.0.0.1:1"), "http://10.0.0.1:1");
        assert_eq!(
            endpoint_url("https://vidx.example:443"),
            "https://vidx.example:443"
        );
        for addr in ["127.0.0.1:50051", "[::1]:50051", "https://vidx.example:443"] {
            assert!(super::endpoint(addr).is_ok(), "{addr}");
        }
    }
}
