//! The command line's gRPC client side: where the server is, connecting with
//! the server's message limits, and how a gRPC error reads on a terminal.

use anyhow::bail;

use crate::api::server;
use crate::pb::vector_index_client::VectorIndexClient;

#[derive(clap::Args, Debug, Clone)]
pub struct ClientArgs {
    /// Server address: host:port, or an http:// or https:// URL.
    #[arg(long, env = "VIDX_SERVER", default_value = "http://127.0.0.1:50051")]
    pub server: String,
}

/// Connects a client with message limits matching the server's default.
pub async fn connect(server: &str) -> anyhow::Result<VectorIndexClient<tonic::transport::Channel>> {
    if let Some((scheme, _)) = server.split_once("://")
        && scheme != "http"
        && scheme != "https"
    {
        bail!("server address {server}: use host:port or an http:// or https:// URL");
    }
    let endpoint = server::endpoint(server).map_err(|e| {
        anyhow::anyhow!(
            "server address {server}: {}; use host:port or an http:// or https:// URL",
            causes(&e)
        )
    })?;
    let channel = endpoint.connect().await.map_err(|e| {
        anyhow::anyhow!(
            "connecting to {server}: {} (is `vidx serve` running?)",
            causes(&e)
        )
    })?;
    Ok(VectorIndexClient::new(channel)
        .max_decoding_message_size(server::DEFAULT_MAX_MESSAGE_BYTES)
        .max_encoding_message_size(server::DEFAULT_MAX_MESSAGE_BYTES))
}

/// A gRPC error as the command line reports it.
pub fn status_error(s: tonic::Status) -> anyhow::Error {
    anyhow::anyhow!("server said {:?}: {}", s.code(), s.message())
}

/// An error and its sources as one line, each message said once: tonic's
/// transport errors repeat their source's text in their own ("invalid URL,
/// scheme is missing: invalid URL, scheme is missing"), and a bare
/// "transport error" says nothing the context does not.
fn causes(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut next = Some(e);
    while let Some(err) = next {
        let msg = err.to_string();
        let said = out.iter().any(|m| m.contains(&msg));
        if !said && msg != "transport error" {
            // A message that contains the previous one replaces it.
            out.retain(|m| !msg.contains(m.as_str()));
            out.push(msg);
        }
        next = err.source();
    }
    out.join(": ")
}

#[cfg(test)]
mod tests {
    use super::causes;

    #[derive(Debug)]
    struct E(&'static str, Option<Box<E>>);
    impl std::fmt::Display for E {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0)
        }
    }
    impl std::error::Error for E {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            self.1.as_deref().map(|e| e as _)
        }
    }

    #[test]
    fn each_cause_is_said_once() {
        let e = E(
            "transport error",
            Some(Box::new(E(
                "invalid URL, scheme is missing",
                Some(Box::new(E("invalid URL, scheme is missing", None))),
            ))),
        );
        assert_eq!(causes(&e), "invalid URL, scheme is missing");
        let e = E(
            "tcp connect error",
            Some(Box::new(E(
                "tcp connect error: Connection refused",
                Some(Box::new(E("Connection refused", None))),
            ))),
        );
        assert_eq!(causes(&e), "tcp connect error: Connection refused");
    }
}
