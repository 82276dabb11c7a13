//! Assembles the gRPC server: the vidx service behind its gate (identity,
//! roles, limits, audit: `api::guard`), gRPC health, server reflection (so
//! `grpcurl` works without the .proto), TLS and mTLS through tonic's rustls,
//! message-size limits, the per-call metrics and request log
//! ([`crate::api::observe`]), and serving on a given listener until a
//! shutdown signal.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::TcpListenerStream;

use crate::api::guard::{Gate, GateLayer};
use crate::api::limits::{LimitOptions, Limits};
use crate::api::observe::ObserveLayer;
use crate::api::service::Service;
use crate::api::tokens::TokenStore;
use crate::collection::registry::Registry;
use crate::collection::restrict::Restrictions;
use crate::pb;
use crate::pb::vector_index_server::VectorIndexServer;
use crate::storage::audit::{AuditLog, AuditOptions};

/// Default request/response size limit: a 2,000-point batch of 512-d vectors
/// is ~4.1 MB of floats plus metadata; 64 MiB leaves room for 10× that.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 64 << 20;

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
            tls: None,
            audit: None,
            limits: LimitOptions::default(),
            slow: Duration::from_millis(DEFAULT_SLOW_MS),
        }
    }
}

/// Serves until `shutdown` resolves, then drains in-flight requests.
pub async fn serve(
    registry: Arc<Registry>,
    listener: TcpListener,
    opts: ServerOptions,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    let (health, health_service) = tonic_health::server::health_reporter();
    health.set_serving::<VectorIndexServer<Service>>().await;
    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    // Both reflection versions: grpcurl before 1.8.8 and many tools only
    // speak v1alpha.
    let reflection_v1 = reflection().build_v1()?;
    let reflection_v1alpha = reflection().build_v1alpha()?;
    let data_dir = registry.data_dir().to_path_buf();
    let tokens = Arc::new(TokenStore::open(&data_dir)?);
    let restrictions = Arc::new(Restrictions::open(&data_dir)?);
    let audit = match opts.audit.clone() {
        Some(a) => Some(Arc::new(
            tokio::task::spawn_blocking(move || AuditLog::open(a)).await??,
        )),
        None => None,
    };
    let gate = Arc::new(Gate {
        tokens: tokens.clone(),
        audit: audit.clone(),
        limits: Limits::new(opts.limits.clone()),
        client_certs: opts.tls.as_ref().is_some_and(|t| t.client_ca_pem.is_some()),
    });
    let vidx = VectorIndexServer::new(Service::new(
        registry,
        tokens,
        restrictions,
        opts.max_message_bytes,
    ))
    .max_decoding_message_size(opts.max_message_bytes)
    .max_encoding_message_size(opts.max_message_bytes);
    // Accepted sockets get TCP_NODELAY: HTTP/2 writes small frames, and
    // Nagle's algorithm would hold them for the peer's delayed ACK.
    let incoming = TcpListenerStream::new(listener).map(|s| {
        s.inspect(|s| {
            let _ = s.set_nodelay(true);
        })
    });
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
    let served = builder
        // A batch of 50 queries of 512 floats is ~100 KB each way; with
        // HTTP/2's default 64 KiB windows every such message waits a round
        // trip for window updates while the cores idle.
        .initial_stream_window_size(Some(WINDOW_BYTES))
        .initial_connection_window_size(Some(WINDOW_BYTES))
        // Outermost, so that it sees the status the client gets.
        .layer(ObserveLayer { slow: opts.slow })
        .layer(tower::util::MapResponseLayer::new(oversized_status))
        .layer(GateLayer(gate))
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(vidx)
        .serve_with_incoming_shutdown(incoming, shutdown)
        .await;
    // Every answered call is recorded; the last checkpoint covers them.
    if let Some(a) = audit {
        tokio::task::spawn_blocking(move || a.close()).await?;
    }
    served?;
    Ok(())
}

/// tonic rejects an over-limit unary request before any handler runs, with
/// OUT_OF_RANGE in a trailers-only response. gRPC's convention, and our
/// contract, is RESOURCE_EXHAUSTED; rewrite it here, in one place.
fn oversized_status<B>(mut resp: http::Response<B>) -> http::Response<B> {
    let Some(status) = tonic::Status::from_header_map(resp.headers()) else {
        return resp;
    };
    let rewritten = crate::api::service::oversized_to_resource_exhausted(status);
    if rewritten.code() == tonic::Code::ResourceExhausted {
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
