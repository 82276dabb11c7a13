//! The one place every gRPC call is measured and logged: a tower layer
//! around all services that counts requests and times them by RPC and
//! status code, counts rejected requests by reason, and logs each request
//! once (at debug, or at info as a slow request above `--slow-ms`) with its
//! RPC, collection, status and duration.
//!
//! A call ends when its response body does: the status of a unary or
//! streaming call is in the trailers (or, for a call refused before any
//! message, in the response headers), so the body is wrapped to catch them.
//! Handlers name the collection a call is about with [`note_collection`].

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use http_body::{Body, Frame, SizeHint};
use tonic::Code;

/// What the layer knows of one call; handlers reach it through the
/// request's extensions.
#[derive(Debug)]
pub struct Call {
    rpc: &'static str,
    collection: OnceLock<String>,
    started: Instant,
    slow: Duration,
}

/// Names the collection a call is about, for its log line. The first name
/// given sticks.
pub fn note_collection<T>(request: &tonic::Request<T>, collection: &str) {
    if let Some(call) = request.extensions().get::<Arc<Call>>() {
        let _ = call.collection.set(collection.to_string());
    }
}

/// The call of `request`, to name its collection later (streaming calls
/// learn it from the first message).
pub fn call_of<T>(request: &tonic::Request<T>) -> Option<Arc<Call>> {
    request.extensions().get::<Arc<Call>>().cloned()
}

impl Call {
    pub fn set_collection(&self, collection: &str) {
        let _ = self.collection.set(collection.to_string());
    }
}

/// vidx's RPCs by their method name; other services (health, reflection)
/// by `service/method`. Anything else is `other`, so that a client sending
/// made-up paths cannot grow the label set.
fn rpc_label(path: &str) -> &'static str {
    const KNOWN: &[&str] = &[
        "/grpc.health.v1.Health/Check",
        "/grpc.health.v1.Health/Watch",
        "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
        "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
    ];
    if let Some(k) = KNOWN.iter().find(|k| **k == path) {
        return &k[1..];
    }
    let Some(method) = path.strip_prefix("/vidx.v1.VectorIndex/") else {
        return "other";
    };
    vidx_methods()
        .iter()
        .find(|m| **m == method)
        .copied()
        .unwrap_or("other")
}

/// The methods of `vidx.v1.VectorIndex`, read from the compiled proto's
/// descriptor so that a new RPC is labelled without a list to keep.
fn vidx_methods() -> &'static [&'static str] {
    static METHODS: OnceLock<Vec<&'static str>> = OnceLock::new();
    METHODS.get_or_init(|| {
        use prost::Message;
        let Ok(set) = prost_types::FileDescriptorSet::decode(crate::pb::FILE_DESCRIPTOR_SET) else {
            return Vec::new();
        };
        set.file
            .iter()
            .flat_map(|f| f.service.iter())
            .filter(|s| s.name() == "VectorIndex")
            .flat_map(|s| s.method.iter())
            .map(|m| &*Box::leak(m.name().to_string().into_boxed_str()))
            .collect()
    })
}

/// The name Prometheus and the logs use for a status code.
pub fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "Ok",
        Code::Cancelled => "Cancelled",
        Code::Unknown => "Unknown",
        Code::InvalidArgument => "InvalidArgument",
        Code::DeadlineExceeded => "DeadlineExceeded",
        Code::NotFound => "NotFound",
        Code::AlreadyExists => "AlreadyExists",
        Code::PermissionDenied => "PermissionDenied",
        Code::ResourceExhausted => "ResourceExhausted",
        Code::FailedPrecondition => "FailedPrecondition",
        Code::Aborted => "Aborted",
        Code::OutOfRange => "OutOfRange",
        Code::Unimplemented => "Unimplemented",
        Code::Internal => "Internal",
        Code::Unavailable => "Unavailable",
        Code::DataLoss => "DataLoss",
        Code::Unauthenticated => "Unauthenticated",
    }
}

/// Codes that mean the request was refused for what it asked, not for a
/// fault of the server.
fn is_rejection(code: Code) -> bool {
    matches!(
        code,
        Code::InvalidArgument
            | Code::NotFound
            | Code::AlreadyExists
            | Code::PermissionDenied
            | Code::ResourceExhausted
            | Code::FailedPrecondition
            | Code::OutOfRange
            | Code::Unauthenticated
            | Code::Unimplemented
    )
}

/// Records the end of a call: metrics, and its one log line.
fn finish(call: &Call, code: Code) {
    let elapsed = call.started.elapsed();
    let m = &crate::metrics::get().requests;
    let name = code_name(code);
    m.in_flight.dec();
    m.total.with_label_values(&[call.rpc, name]).inc();
    m.seconds
        .with_label_values(&[call.rpc, name])
        .observe(elapsed.as_secs_f64());
    if is_rejection(code) {
        m.rejected.with_label_values(&[call.rpc, name]).inc();
    }
    let collection = call.collection.get().map_or("", String::as_str);
    let duration_ms = elapsed.as_secs_f64() * 1e3;
    if elapsed > call.slow {
        tracing::info!(target: "vidx::request", rpc = call.rpc, collection, code = name, duration_ms, slow_ms = call.slow.as_millis() as u64, "slow request");
    } else {
        tracing::debug!(target: "vidx::request", rpc = call.rpc, collection, code = name, duration_ms, "request");
    }
}

/// The layer; `slow` is the duration above which a request is logged at
/// info.
#[derive(Clone, Copy, Debug)]
pub struct ObserveLayer {
    pub slow: Duration,
}

impl<S> tower::Layer<S> for ObserveLayer {
    type Service = Observe<S>;
    fn layer(&self, inner: S) -> Observe<S> {
        Observe {
            inner,
            slow: self.slow,
        }
    }
}

#[derive(Clone, Debug)]
pub struct Observe<S> {
    inner: S,
    slow: Duration,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, ReqBody, ResBody> tower::Service<http::Request<ReqBody>> for Observe<S>
where
    S: tower::Service<http::Request<ReqBody>, Response = http::Response<ResBody>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = http::Response<ObservedBody<ResBody>>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: http::Request<ReqBody>) -> Self::Future {
        let call = Arc::new(Call {
            rpc: rpc_label(req.uri().path()),
            collection: OnceLock::new(),
            started: Instant::now(),
            slow: self.slow,
        });
        crate::metrics::get().requests.in_flight.inc();
        req.extensions_mut().insert(call.clone());
        let fut = self.inner.call(req);
        Box::pin(async move {
            let mut guard = Guard(Some(call));
            let resp = fut.await?;
            // A trailers-only response (a call refused before any message)
            // carries its status in the headers.
            let early = resp.headers().get("grpc-status").map(|v| {
                v.to_str()
                    .ok()
                    .and_then(|s| s.parse::<i32>().ok())
                    .map_or(Code::Unknown, Code::from_i32)
            });
            let call = guard.0.take().expect("set above");
            Ok(resp.map(|body| ObservedBody {
                inner: body,
                call: Some(call),
                code: early,
            }))
        })
    }
}

/// Ends the call as cancelled if its future is dropped before a response.
struct Guard(Option<Arc<Call>>);

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(call) = self.0.take() {
            finish(&call, Code::Cancelled);
        }
    }
}

/// A response body that records its call when it ends.
pub struct ObservedBody<B> {
    inner: B,
    call: Option<Arc<Call>>,
    /// The status, once seen (headers or trailers).
    code: Option<Code>,
}

impl<B> ObservedBody<B> {
    fn end(&mut self, code: Code) {
        if let Some(call) = self.call.take() {
            finish(&call, code);
        }
    }
}

impl<B> Drop for ObservedBody<B> {
    fn drop(&mut self) {
        // Dropped before its end: the client went away mid-stream.
        let code = self.code.unwrap_or(Code::Cancelled);
        self.end(code);
    }
}

impl<B> Body for ObservedBody<B>
where
    B: Body + Unpin,
{
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(t) = frame.trailers_ref() {
                    self.code = Some(
                        t.get("grpc-status")
                            .and_then(|v| v.to_str().ok())
                            .and_then(|s| s.parse::<i32>().ok())
                            .map_or(Code::Unknown, Code::from_i32),
                    );
                }
            }
            Poll::Ready(Some(Err(_))) => {
                self.end(Code::Internal);
            }
            Poll::Ready(None) => {
                let code = self.code.unwrap_or(Code::Unknown);
                self.end(code);
            }
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::rpc_label;

    #[test]
    fn rpc_labels_come_from_the_proto_and_unknown_paths_are_other() {
        assert_eq!(rpc_label("/vidx.v1.VectorIndex/Search"), "Search");
        assert_eq!(rpc_label("/vidx.v1.VectorIndex/LinkSeries"), "LinkSeries");
        assert_eq!(rpc_label("/vidx.v1.VectorIndex/Nope"), "other");
        assert_eq!(
            rpc_label("/grpc.health.v1.Health/Check"),
            "grpc.health.v1.Health/Check"
        );
        assert_eq!(rpc_label("/x/y"), "other");
    }
}
