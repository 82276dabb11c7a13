//! A test PKI made with rcgen (a CA, a server certificate for 127.0.0.1 and
//! localhost, client certificates whose subject O/OU name agency and role),
//! tokens made in the data directory before the server starts, and an
//! in-process server with TLS (optionally mTLS) and the audit log on.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
};
use vidx::api::access::Role;
use vidx::api::client::{Client, Credentials};
use vidx::api::server::{ServerOptions, TlsFiles};
use vidx::api::tokens::TokenStore;
use vidx::collection::StorageOptions;
use vidx::storage::audit::AuditOptions;

use crate::support::TestServer;

/// A certificate authority and what it signs, as PEM.
pub struct Pki {
    pub ca_pem: String,
    issuer: CertifiedIssuer<'static, KeyPair>,
}

#[derive(Clone)]
pub struct CertPair {
    pub cert_pem: String,
    pub key_pem: String,
}

impl Pki {
    pub fn new(name: &str) -> Pki {
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name.push(DnType::CommonName, name);
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let issuer = CertifiedIssuer::self_signed(p, KeyPair::generate().unwrap()).unwrap();
        Pki {
            ca_pem: issuer.pem(),
            issuer,
        }
    }

    fn sign(&self, p: CertificateParams) -> CertPair {
        let key = KeyPair::generate().unwrap();
        let cert = p.signed_by(&key, &self.issuer).unwrap();
        CertPair {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    }

    /// The server's certificate: valid for 127.0.0.1 and localhost.
    pub fn server(&self) -> CertPair {
        let mut p =
            CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()]).unwrap();
        p.distinguished_name
            .push(DnType::CommonName, "vidx test server");
        self.sign(p)
    }

    /// A client certificate of `agency` (O) with `role` (OU).
    pub fn client(&self, agency: &str, role: &str) -> CertPair {
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name.push(DnType::OrganizationName, agency);
        p.distinguished_name
            .push(DnType::OrganizationalUnitName, role);
        p.distinguished_name.push(DnType::CommonName, "workstation");
        self.sign(p)
    }
}

/// Writes `text` to `dir/name` and returns the path.
pub fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// Makes a token in `data_dir` (before the server starts); returns it and its id.
pub fn make_token(data_dir: &Path, agency: &str, role: Role) -> (String, String) {
    std::fs::create_dir_all(data_dir).unwrap();
    let store = TokenStore::open(data_dir).unwrap();
    let (t, rec) = store.create(agency, role, None, None).unwrap();
    (t, rec.id)
}

/// Server options with TLS from `pki` (mTLS when `mtls`) and the audit
/// log in `<data_dir>/audit`.
pub fn secure_options(pki: &Pki, data_dir: &Path, mtls: bool) -> ServerOptions {
    let server = pki.server();
    ServerOptions {
        tls: Some(TlsFiles {
            cert_pem: server.cert_pem.into_bytes(),
            key_pem: server.key_pem.into_bytes(),
            client_ca_pem: mtls.then(|| pki.ca_pem.clone().into_bytes()),
        }),
        audit: Some(AuditOptions::new(
            data_dir.join("audit"),
            data_dir.join("audit-signing.key"),
        )),
        ..Default::default()
    }
}

pub async fn start_secure(pki: &Pki, data_dir: &Path, mtls: bool) -> TestServer {
    let opts = secure_options(pki, data_dir, mtls);
    TestServer::start_full(data_dir, opts, StorageOptions::default()).await
}

/// A TLS client of `server` trusting `pki`, with a token and/or a client
/// certificate.
pub async fn client(
    server: &TestServer,
    pki: &Pki,
    token: Option<&str>,
    cert: Option<&CertPair>,
) -> Result<Client, String> {
    let creds = Credentials {
        ca_pem: Some(pki.ca_pem.clone().into_bytes()),
        cert_pem: cert.map(|c| c.cert_pem.clone().into_bytes()),
        key_pem: cert.map(|c| c.key_pem.clone().into_bytes()),
        token: token.map(str::to_string),
    };
    vidx::api::client::connect(&format!("https://127.0.0.1:{}", server.addr.port()), &creds).await
}
