//! The command line's gRPC client side: where the server is, connecting with
//! the server's message limits, and how a gRPC error reads on a terminal.

use std::path::PathBuf;

use anyhow::{Context, bail};

use crate::api::client::{Client, Credentials};

#[derive(clap::Args, Debug, Clone)]
pub struct ClientArgs {
    /// Server address: host:port, or an http:// or https:// URL.
    #[arg(long, env = "VIDX_SERVER", default_value = "http://127.0.0.1:50051")]
    pub server: String,
    /// The CA certificate (PEM) that signed the server's; turns TLS on.
    #[arg(long, env = "VIDX_CA")]
    pub ca: Option<PathBuf>,
    /// A client certificate (PEM) for mTLS, with --key.
    #[arg(long, env = "VIDX_CERT")]
    pub cert: Option<PathBuf>,
    /// The client certificate's private key (PEM).
    #[arg(long, env = "VIDX_KEY")]
    pub key: Option<PathBuf>,
    /// A file holding the bearer token (safer than VIDX_TOKEN, which other
    /// processes of the same user can read).
    #[arg(long, env = "VIDX_TOKEN_FILE")]
    pub token_file: Option<PathBuf>,
}

fn read(what: &str, path: &Option<PathBuf>) -> anyhow::Result<Option<Vec<u8>>> {
    path.as_ref()
        .map(|p| std::fs::read(p).with_context(|| format!("reading {what} {}", p.display())))
        .transpose()
}

impl ClientArgs {
    /// The credentials these arguments name: files read, the token from
    /// --token-file or else the VIDX_TOKEN environment variable.
    pub fn credentials(&self) -> anyhow::Result<Credentials> {
        let token = match &self.token_file {
            Some(p) => Some(
                std::fs::read_to_string(p)
                    .with_context(|| format!("reading the token file {}", p.display()))?
                    .trim()
                    .to_string(),
            ),
            None => std::env::var("VIDX_TOKEN").ok().filter(|t| !t.is_empty()),
        };
        Ok(Credentials {
            ca_pem: read("the CA certificate", &self.ca)?,
            cert_pem: read("the client certificate", &self.cert)?,
            key_pem: read("the client key", &self.key)?,
            token,
        })
    }
}

/// Connects a client with message limits matching the server's default,
/// over TLS and with a token when the arguments give them.
pub async fn connect(args: &ClientArgs) -> anyhow::Result<Client> {
    let server = &args.server;
    if let Some((scheme, _)) = server.split_once("://")
        && scheme != "http"
        && scheme != "https"
    {
        bail!("server address {server}: use host:port or an http:// or https:// URL");
    }
    let creds = args.credentials()?;
    crate::api::client::endpoint(server, &creds).map_err(|e| {
        anyhow::anyhow!("server address {server}: {e}; use host:port or an http:// or https:// URL")
    })?;
    crate::api::client::connect(server, &creds)
        .await
        .map_err(|e| anyhow::anyhow!("connecting to {server}: {e} (is `vidx serve` running?)"))
}

/// A gRPC error as the command line reports it.
pub fn status_error(s: tonic::Status) -> anyhow::Error {
    anyhow::anyhow!("server said {:?}: {}", s.code(), s.message())
}

#[cfg(test)]
mod tests {
    use crate::api::client::causes;

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
