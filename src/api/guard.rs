//! The one gate every `vidx.v1` call passes, as a tower layer in front of
//! the service: who is calling (bearer token or client certificate), whether
//! the role allows the RPC, the limits per identity, and the audit record,
//! durable before the answer leaves (fail closed: no record, no answer).
//!
//! Handlers see the [`Caller`] in the request's extensions and fill in the
//! audit [`Note`] (collection, request summary, result ids); finer checks
//! that need the message (collection lists, ownership, restriction) are
//! theirs and come back here as statuses, which are audited like the rest.
//! Health checks and reflection pass without identity or audit.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use http_body::Frame;
use parking_lot::Mutex;
use tonic::Status;
use tonic::body::Body;
use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};

use crate::api::access::{self, Caller};
use crate::api::limits::{Limits, StreamPermit};
use crate::api::tokens::TokenStore;
use crate::storage::audit::{AuditLog, Record};

/// What a handler tells the audit record about its call.
#[derive(Debug, Default)]
pub struct Note {
    pub collection: String,
    /// A summary of the request: ids, filter, k, counts; never vectors.
    pub request: serde_json::Value,
    pub results: u64,
    pub ids: Vec<String>,
}

/// The handler's end of the note; in the request's extensions.
#[derive(Clone, Debug, Default)]
pub struct NoteSlot(pub Arc<Mutex<Note>>);

impl NoteSlot {
    /// The collection and the summary of the request.
    pub fn request(&self, collection: &str, request: serde_json::Value) {
        let mut n = self.0.lock();
        n.collection = collection.to_string();
        n.request = request;
    }

    /// How many results went back, and their ids.
    pub fn results(&self, count: u64, ids: Vec<String>) {
        let mut n = self.0.lock();
        n.results = count;
        n.ids = ids;
    }

    /// More results of a streamed answer.
    pub fn add_results(&self, count: u64, ids: impl IntoIterator<Item = String>) {
        let mut n = self.0.lock();
        n.results += count;
        n.ids.extend(ids);
    }
}

/// The gate's settings and shared state.
pub struct Gate {
    pub tokens: Arc<TokenStore>,
    pub audit: Option<Arc<AuditLog>>,
    pub limits: Limits,
    /// Clients present certificates (mTLS): authentication is required.
    pub client_certs: bool,
}

impl Gate {
    /// Open (no authentication) until a credential exists.
    fn requires_auth(&self) -> bool {
        self.client_certs || self.tokens.has_tokens()
    }

    /// The caller of a request, from its bearer token or client certificate.
    fn authenticate(&self, req: &http::Request<Body>) -> Result<Caller, Status> {
        if let Some(v) = req.headers().get(http::header::AUTHORIZATION) {
            let token = v
                .to_str()
                .ok()
                .and_then(|s| {
                    s.strip_prefix("Bearer ")
                        .or_else(|| s.strip_prefix("bearer "))
                })
                .map(str::trim)
                .ok_or_else(|| {
                    Status::unauthenticated("the authorization metadata is not `Bearer <token>`")
                })?;
            let t = self
                .tokens
                .authenticate(token)
                .map_err(|r| Status::unauthenticated(r.to_string()))?;
            return Ok(Caller {
                agency: t.agency,
                role: t.role,
                credential: t.id,
                collections: t.collections,
                open: false,
            });
        }
        let certs = req
            .extensions()
            .get::<TlsConnectInfo<TcpConnectInfo>>()
            .and_then(|i| i.peer_certs());
        if let Some(der) = certs.as_ref().and_then(|c| c.first()) {
            let id = access::cert_identity(der).map_err(Status::unauthenticated)?;
            if self.tokens.cert_revoked(&id.credential) {
                return Err(Status::unauthenticated(format!(
                    "client certificate {} has been revoked",
                    id.credential
                )));
            }
            return Ok(Caller {
                agency: id.agency,
                role: id.role,
                credential: id.credential,
                collections: None,
                open: false,
            });
        }
        if self.requires_auth() {
            return Err(Status::unauthenticated(
                "no credentials: send `authorization: Bearer <token>` metadata or a client certificate",
            ));
        }
        Ok(Caller::open())
    }

    /// Who, whether the role allows it, and the limits: the caller and, for
    /// a streaming call, its permit.
    fn admit(
        &self,
        req: &http::Request<Body>,
        method: &str,
    ) -> Result<(Caller, Option<StreamPermit>), (Option<Caller>, Status)> {
        let caller = self.authenticate(req).map_err(|s| (None, s))?;
        let Some(role) = access::role_for(method) else {
            return Err((
                Some(caller),
                Status::permission_denied(format!("RPC {method} has no role mapping; refused")),
            ));
        };
        if let Err(e) = caller.require(role, method) {
            return Err((Some(caller), Status::from(e)));
        }
        let streaming = access::STREAMING_RPCS.contains(&method);
        match self.limits.admit(&caller, streaming) {
            Ok(permit) => Ok((caller, permit)),
            Err(s) => Err((Some(caller), s)),
        }
    }
}

/// The tower layer that puts a [`Gate`] in front of a service.
#[derive(Clone)]
pub struct GateLayer(pub Arc<Gate>);

impl<S> tower::Layer<S> for GateLayer {
    type Service = GateService<S>;
    fn layer(&self, inner: S) -> GateService<S> {
        GateService {
            gate: self.0.clone(),
            inner,
        }
    }
}

#[derive(Clone)]
pub struct GateService<S> {
    gate: Arc<Gate>,
    inner: S,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// The gRPC code's name as the audit log writes it.
pub fn code_name(c: tonic::Code) -> &'static str {
    use tonic::Code::*;
    match c {
        Ok => "OK",
        Cancelled => "CANCELLED",
        Unknown => "UNKNOWN",
        InvalidArgument => "INVALID_ARGUMENT",
        DeadlineExceeded => "DEADLINE_EXCEEDED",
        NotFound => "NOT_FOUND",
        AlreadyExists => "ALREADY_EXISTS",
        PermissionDenied => "PERMISSION_DENIED",
        ResourceExhausted => "RESOURCE_EXHAUSTED",
        FailedPrecondition => "FAILED_PRECONDITION",
        Aborted => "ABORTED",
        OutOfRange => "OUT_OF_RANGE",
        Unimplemented => "UNIMPLEMENTED",
        Internal => "INTERNAL",
        Unavailable => "UNAVAILABLE",
        DataLoss => "DATA_LOSS",
        Unauthenticated => "UNAUTHENTICATED",
    }
}

/// Everything about a call the audit record needs but its outcome.
#[derive(Clone)]
struct Call {
    audit: Option<Arc<AuditLog>>,
    caller: Option<Caller>,
    peer: String,
    method: String,
    note: NoteSlot,
    started: Instant,
}

impl Call {
    fn record(&self, phase: &str, status: Option<&Status>) -> Record {
        let note = self.note.0.lock();
        let (agency, credential, role) = match &self.caller {
            Some(c) => (c.agency.clone(), c.credential.clone(), c.role.to_string()),
            None => ("-".into(), "-".into(), "-".into()),
        };
        Record {
            agency,
            credential,
            role,
            peer: self.peer.clone(),
            rpc: self.method.clone(),
            phase: phase.to_string(),
            collection: note.collection.clone(),
            request: note.request.clone(),
            status: code_name(status.map_or(tonic::Code::Ok, |s| s.code())).to_string(),
            message: status.map(|s| s.message().to_string()).unwrap_or_default(),
            results: if phase.is_empty() { note.results } else { 0 },
            ids: if phase.is_empty() {
                note.ids.clone()
            } else {
                Vec::new()
            },
            duration_ms: (self.started.elapsed().as_secs_f64() * 1e6).round() / 1e3,
            ..Default::default()
        }
    }

    /// Writes the record; the status to answer with instead if that fails.
    async fn write(&self, phase: &str, status: Option<&Status>) -> Result<(), Status> {
        let Some(log) = &self.audit else {
            return Ok(());
        };
        let rec = self.record(phase, status);
        log.append(rec).await.map(|_| ()).map_err(|e| {
            tracing::error!(rpc = %self.method, error = %e, "audit record not written; refusing the answer");
            Status::unavailable(format!("the audit log cannot record this call ({e}); no answer is given unaudited"))
        })
    }
}

fn status_response(s: Status) -> http::Response<Body> {
    s.into_http()
}

impl<S> tower::Service<http::Request<Body>> for GateService<S>
where
    S: tower::Service<http::Request<Body>, Response = http::Response<Body>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = BoxFuture<Result<http::Response<Body>, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: http::Request<Body>) -> Self::Future {
        let Some(method) = req
            .uri()
            .path()
            .strip_prefix(&format!("/{}/", access::SERVICE))
            .map(str::to_string)
        else {
            // Health and reflection: no data, no identity needed.
            return Box::pin(self.inner.call(req));
        };
        // The service that was polled ready serves this call.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let gate = self.gate.clone();
        Box::pin(async move {
            let peer = req
                .extensions()
                .get::<TcpConnectInfo>()
                .and_then(|i| i.remote_addr())
                .map_or_else(|| "-".to_string(), |a| a.to_string());
            let mut call = Call {
                audit: gate.audit.clone(),
                caller: None,
                peer,
                method: method.clone(),
                note: NoteSlot::default(),
                started: Instant::now(),
            };
            let (caller, permit) = match gate.admit(&req, &method) {
                Ok(x) => x,
                Err((caller, status)) => {
                    call.caller = caller;
                    let answer = match call.write("", Some(&status)).await {
                        Ok(()) => status,
                        Err(s) => s,
                    };
                    return Ok(status_response(answer));
                }
            };
            call.caller = Some(caller.clone());
            req.extensions_mut().insert(caller);
            req.extensions_mut().insert(call.note.clone());
            let streams_out = matches!(method.as_str(), "LinkSeries" | "Triage");
            let resp = inner.call(req).await?;
            let early = Status::from_header_map(resp.headers());
            if !streams_out || early.is_some() {
                // The handler has finished: the outcome is known.
                drop(permit);
                return Ok(match call.write("", early.as_ref()).await {
                    Ok(()) => resp,
                    Err(s) => status_response(s),
                });
            }
            if let Err(s) = call.write("start", None).await {
                return Ok(status_response(s));
            }
            let (parts, body) = resp.into_parts();
            let body = AuditedBody {
                inner: body,
                call,
                pending: None,
                done: false,
                _permit: permit,
            };
            Ok(http::Response::from_parts(parts, Body::new(body)))
        })
    }
}

/// The end record being written, and the trailers that follow it.
type Pending = (BoxFuture<Result<(), Status>>, Option<http::HeaderMap>);

/// A streamed response whose end record is written before its trailers
/// (the final status) go out.
struct AuditedBody {
    inner: Body,
    call: Call,
    /// The end record being written, and the trailers to send after it.
    pending: Option<Pending>,
    done: bool,
    _permit: Option<StreamPermit>,
}

impl AuditedBody {
    fn finish(&mut self, status: Option<Status>, trailers: Option<http::HeaderMap>) {
        let call = self.call.clone();
        let fut: BoxFuture<Result<(), Status>> = Box::pin(async move {
            let ok = status.as_ref().is_none_or(|s| s.code() == tonic::Code::Ok);
            call.write("", if ok { None } else { status.as_ref() })
                .await
        });
        self.pending = Some((fut, trailers));
    }
}

impl http_body::Body for AuditedBody {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        loop {
            if let Some((fut, trailers)) = &mut self.pending {
                let written = match fut.as_mut().poll(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(r) => r,
                };
                let trailers = trailers.take();
                self.pending = None;
                self.done = true;
                self._permit = None;
                return Poll::Ready(match written {
                    Ok(()) => trailers.map(|t| Ok(Frame::trailers(t))),
                    Err(s) => Some(Err(s)),
                });
            }
            if self.done {
                return Poll::Ready(None);
            }
            match Pin::new(&mut self.inner).poll_frame(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Ok(frame))) => match frame.into_trailers() {
                    Ok(t) => {
                        let status = Status::from_header_map(&t);
                        self.finish(status, Some(t));
                    }
                    Err(data) => return Poll::Ready(Some(Ok(data))),
                },
                Poll::Ready(Some(Err(s))) => {
                    // Answer with the error once it is recorded.
                    let call = self.call.clone();
                    let fut: BoxFuture<Result<(), Status>> = Box::pin(async move {
                        call.write("", Some(&s)).await?;
                        Err(s)
                    });
                    self.pending = Some((fut, None));
                }
                Poll::Ready(None) => self.finish(None, None),
            }
        }
    }
}
