//! The client side of the server's security: TLS to the server (with the
//! CA that signed its certificate, and for mTLS a client certificate), and
//! the bearer token every call carries.

use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

use crate::api::server;
use crate::pb::vector_index_client::VectorIndexClient;

/// A client of the vidx service that sends its credentials with each call.
pub type Client = VectorIndexClient<InterceptedService<Channel, Bearer>>;

/// What a client presents: PEM files' contents and a token.
#[derive(Clone, Default)]
pub struct Credentials {
    /// The CA that signed the server's certificate; with it the client
    /// speaks TLS.
    pub ca_pem: Option<Vec<u8>>,
    /// A client certificate and key (mTLS).
    pub cert_pem: Option<Vec<u8>>,
    pub key_pem: Option<Vec<u8>>,
    pub token: Option<String>,
}

impl std::fmt::Debug for Credentials {
    /// Says what is there, never the key or the token.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("ca", &self.ca_pem.is_some())
            .field("cert", &self.cert_pem.is_some())
            .field("token", &self.token.is_some())
            .finish_non_exhaustive()
    }
}

/// Adds `authorization: Bearer <token>` to every call.
#[derive(Clone, Default)]
pub struct Bearer(Option<MetadataValue<Ascii>>);

impl Bearer {
    pub fn new(token: Option<&str>) -> Result<Bearer, String> {
        token
            .map(|t| {
                format!("Bearer {}", t.trim())
                    .parse::<MetadataValue<Ascii>>()
                    .map_err(|_| "the token has characters metadata cannot carry".to_string())
            })
            .transpose()
            .map(Bearer)
    }
}

impl tonic::service::Interceptor for Bearer {
    fn call(&mut self, mut req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(v) = &self.0 {
            req.metadata_mut().insert("authorization", v.clone());
        }
        Ok(req)
    }
}

/// The endpoint at `addr` with TLS when the credentials hold a CA (an
/// `http://` or bare address then becomes `https://`).
pub fn endpoint(addr: &str, creds: &Credentials) -> Result<Endpoint, String> {
    let mut url = server::endpoint_url(addr);
    let tls = creds.ca_pem.is_some() || creds.cert_pem.is_some();
    if tls && let Some(rest) = url.strip_prefix("http://") {
        url = format!("https://{rest}");
    }
    let ep = server::endpoint(&url).map_err(|e| e.to_string())?;
    if !url.starts_with("https://") {
        return Ok(ep);
    }
    let Some(ca) = &creds.ca_pem else {
        return Err(
            "an https:// server needs --ca (or VIDX_CA): the CA certificate that signed the server's"
                .into(),
        );
    };
    let mut cfg = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(ca));
    match (&creds.cert_pem, &creds.key_pem) {
        (Some(c), Some(k)) => cfg = cfg.identity(Identity::from_pem(c, k)),
        (None, None) => {}
        _ => {
            return Err("--cert and --key go together (the client certificate and its key)".into());
        }
    }
    ep.tls_config(cfg)
        .map_err(|e| format!("TLS configuration: {e}"))
}

/// Connects a client with the server's default message limits.
pub async fn connect(addr: &str, creds: &Credentials) -> Result<Client, String> {
    let ep = endpoint(addr, creds)?;
    let bearer = Bearer::new(creds.token.as_deref())?;
    let channel = ep.connect().await.map_err(|e| causes(&e))?;
    Ok(VectorIndexClient::with_interceptor(channel, bearer)
        .max_decoding_message_size(server::DEFAULT_MAX_MESSAGE_BYTES)
        .max_encoding_message_size(server::DEFAULT_MAX_MESSAGE_BYTES))
}

/// An error and its sources as one line, each message said once: tonic's
/// transport errors repeat their source's text in their own ("invalid URL,
/// scheme is missing: invalid URL, scheme is missing"), and a bare
/// "transport error" says nothing the context does not.
pub fn causes(e: &(dyn std::error::Error + 'static)) -> String {
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
