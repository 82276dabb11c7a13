//! The command line's gRPC client side: where the server is, connecting with
//! the server's message limits, and how a gRPC error reads on a terminal.

use anyhow::Context;

use crate::api::server;
use crate::pb::vector_index_client::VectorIndexClient;

#[derive(clap::Args, Debug, Clone)]
pub struct ClientArgs {
    /// Server address.
    #[arg(long, env = "VIDX_SERVER", default_value = "http://127.0.0.1:50051")]
    pub server: String,
}

/// Connects a client with message limits matching the server's default.
pub async fn connect(server: &str) -> anyhow::Result<VectorIndexClient<tonic::transport::Channel>> {
    let channel = server::channel(server)
        .await
        .with_context(|| format!("connecting to {server} (is `vidx serve` running?)"))?;
    Ok(VectorIndexClient::new(channel)
        .max_decoding_message_size(server::DEFAULT_MAX_MESSAGE_BYTES)
        .max_encoding_message_size(server::DEFAULT_MAX_MESSAGE_BYTES))
}

/// A gRPC error as the command line reports it.
pub fn status_error(s: tonic::Status) -> anyhow::Error {
    anyhow::anyhow!("server said {:?}: {}", s.code(), s.message())
}
