//! `vidx serve`: its flags, where each setting comes from (a flag, else a
//! `VIDX_…` environment variable, else the `--config` TOML file, else the
//! default), `--print-config`, the log format, and running the gRPC server
//! with the metrics/health listener beside it.
//!
//! clap resolves flag over environment over default and says which one it
//! used ([`ArgMatches::value_source`]); a setting clap took from its default
//! is then taken from the file when the file has it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::ArgMatches;
use clap::parser::ValueSource;
use serde::Deserialize;

use crate::api::limits::LimitOptions;
use crate::api::ops::Ops;
use crate::api::server::{self, ServerOptions, TlsFiles};
use crate::api::tokens::TokenStore;
use crate::collection::registry::Registry;
use crate::storage::audit::AuditOptions;
use crate::storage::wal::SyncPolicy;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, for log shippers.
    Json,
}

impl LogFormat {
    fn as_str(self) -> &'static str {
        match self {
            LogFormat::Text => "text",
            LogFormat::Json => "json",
        }
    }
}

#[derive(clap::Args, Debug, Clone)]
pub struct ServeArgs {
    /// A TOML file with any of these settings as keys (`data-dir = "/var/lib/vidx"`);
    /// environment variables override it, flags override both.
    #[arg(long, env = "VIDX_CONFIG")]
    pub config: Option<PathBuf>,
    /// Print the settings as resolved (with where each came from) and exit.
    #[arg(long)]
    pub print_config: bool,
    /// Where collections are stored.
    #[arg(long, env = "VIDX_DATA_DIR", default_value = "./vidx-data")]
    pub data_dir: PathBuf,
    /// Address to listen on. Beyond loopback only with TLS and
    /// authentication (or --insecure).
    #[arg(long, env = "VIDX_LISTEN", default_value = "127.0.0.1:50051")]
    pub listen: SocketAddr,
    /// Serve Prometheus `/metrics`, `/healthz` and `/readyz` over HTTP on
    /// this address (e.g. 127.0.0.1:9090); off if not given.
    #[arg(long, env = "VIDX_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,
    /// Create and load the demo collections (`images`, `faces`) if absent.
    #[arg(long, env = "VIDX_DEMO")]
    pub demo: bool,
    /// Largest request or response message, in bytes.
    #[arg(long, env = "VIDX_MAX_MESSAGE_BYTES", default_value_t = server::DEFAULT_MAX_MESSAGE_BYTES)]
    pub max_message_bytes: usize,
    /// When writes reach the disk: "always" (fsync before acknowledging),
    /// "interval=<ms>" (acknowledge after write(), fsync every <ms>: a power
    /// loss can lose that much) or "never" (leave it to the OS).
    #[arg(long, env = "VIDX_SYNC", default_value = "always")]
    pub sync: SyncPolicy,
    /// Points in a collection's mutable segment before it is sealed into
    /// memory-mapped files.
    #[arg(long, env = "VIDX_SEAL_THRESHOLD", default_value_t = crate::collection::DEFAULT_SEAL_THRESHOLD)]
    pub seal_threshold: usize,
    /// Seal a collection's mutable segment once its oldest point is this old
    /// ("60s", "5m"; 0 = only by --seal-threshold): bounds the log a restart
    /// replays when writes trickle in.
    #[arg(long, env = "VIDX_SEAL_AFTER", default_value = "60s", value_parser = parse_duration)]
    pub seal_after: Duration,
    /// After SIGTERM or Ctrl-C, how long requests and streams still open get
    /// to finish before they are cancelled ("30s", "500ms").
    #[arg(long, env = "VIDX_SHUTDOWN_GRACE", default_value = "30s", value_parser = parse_duration)]
    pub shutdown_grace: Duration,
    /// Log lines as text or as JSON objects.
    #[arg(long, env = "VIDX_LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,
    /// What to log, as a tracing filter: "info", "debug" (every request
    /// once), "vidx=debug,tower=warn", ... When no flag, variable or file
    /// sets it, RUST_LOG (if set) replaces the default.
    #[arg(long, env = "VIDX_LOG", default_value = "info")]
    pub log: String,
    /// Requests taking longer than this many milliseconds are logged at
    /// info as slow requests (0: every request).
    #[arg(long, env = "VIDX_SLOW_MS", default_value_t = server::DEFAULT_SLOW_MS)]
    pub slow_ms: u64,
    /// "single": one process owns its data (the default). "index" and
    /// "router": cluster mode (README: Cluster), with the engines below.
    #[arg(long, env = "VIDX_ROLE", value_enum, default_value_t = Role::Single)]
    pub role: Role,
    #[command(flatten)]
    pub cluster: ClusterArgs,
    #[command(flatten)]
    pub security: ServeSecurityArgs,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Role {
    Single,
    Index,
    Router,
}

/// Cluster mode settings (ignored by `--role single`); flags and
/// environment only, not the config file.
#[derive(clap::Args, Debug, Clone)]
pub struct ClusterArgs {
    /// NATS servers with JetStream, comma-separated.
    #[arg(long, env = "VIDX_NATS", default_value = "nats://127.0.0.1:4222")]
    pub nats: String,
    /// etcd endpoints, comma-separated.
    #[arg(long, env = "VIDX_ETCD", default_value = "http://127.0.0.1:2379")]
    pub etcd: String,
    /// The S3 API endpoint of the object store.
    #[arg(
        long,
        env = "VIDX_S3_ENDPOINT",
        default_value = "http://127.0.0.1:8333"
    )]
    pub s3_endpoint: String,
    /// The bucket holding the shards' snapshots (created beforehand).
    #[arg(long, env = "VIDX_S3_BUCKET", default_value = "vidx")]
    pub s3_bucket: String,
    /// The S3 region (signing needs one; SeaweedFS and MinIO accept any).
    #[arg(long, env = "VIDX_S3_REGION", default_value = "us-east-1")]
    pub s3_region: String,
    /// Read from the environment only, so it shows in no process list.
    #[arg(skip = std::env::var("VIDX_S3_ACCESS_KEY").unwrap_or_default())]
    pub s3_access_key: String,
    #[arg(skip = std::env::var("VIDX_S3_SECRET_KEY").unwrap_or_default())]
    pub s3_secret_key: String,
    /// Index node: the shard it serves (0-based).
    #[arg(long, default_value_t = 0)]
    pub shard: u32,
    /// Index node: the cluster's shard count (fixed by the first node).
    #[arg(long, default_value_t = 1)]
    pub shards: u32,
    /// Index node: its name, unique in the cluster (also its JetStream consumers').
    #[arg(long, default_value = "")]
    pub node_id: String,
    /// Index node: the address routers dial; --listen by default.
    #[arg(long, default_value = "")]
    pub advertise: String,
    /// Index node: points applied between two snapshots (shard leader only).
    #[arg(long, default_value_t = crate::cluster::node::DEFAULT_SNAPSHOT_EVERY)]
    pub snapshot_every: usize,
    /// Router: how long a read may take, retries on other replicas included.
    #[arg(long, default_value_t = 10_000)]
    pub deadline_ms: u64,
}

impl ClusterArgs {
    fn engines(&self) -> crate::cluster::Engines {
        crate::cluster::Engines {
            nats: self.nats.clone(),
            etcd: self.etcd.split(',').map(|s| s.trim().to_string()).collect(),
            s3: crate::cluster::snapshot::S3Options {
                endpoint: self.s3_endpoint.clone(),
                bucket: self.s3_bucket.clone(),
                access_key: self.s3_access_key.clone(),
                secret_key: self.s3_secret_key.clone(),
                region: self.s3_region.clone(),
            },
        }
    }
}

/// `vidx serve`'s security flags.
#[derive(clap::Args, Debug, Clone)]
pub struct ServeSecurityArgs {
    /// The server's certificate chain (PEM); with --tls-key, serve TLS.
    #[arg(long, env = "VIDX_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,
    /// The server certificate's private key (PEM).
    #[arg(long, env = "VIDX_TLS_KEY")]
    pub tls_key: Option<PathBuf>,
    /// Require client certificates signed by this CA (PEM): mTLS. The
    /// certificate's subject O names the agency and OU the role.
    #[arg(long, env = "VIDX_CLIENT_CA")]
    pub client_ca: Option<PathBuf>,
    /// Listen beyond loopback without TLS and authentication anyway.
    #[arg(long, env = "VIDX_INSECURE")]
    pub insecure: bool,
    /// The audit log's directory [default: <data-dir>/audit].
    #[arg(long, env = "VIDX_AUDIT_DIR")]
    pub audit_dir: Option<PathBuf>,
    /// The Ed25519 key that signs audit checkpoints; made if absent. Keep
    /// it off the data disk [default: <data-dir>/audit-signing.key].
    #[arg(long, env = "VIDX_AUDIT_KEY")]
    pub audit_key: Option<PathBuf>,
    /// Start a new audit file once the current one is this large.
    #[arg(long, env = "VIDX_AUDIT_ROTATE_BYTES", default_value_t = 64 << 20)]
    pub audit_rotate_bytes: u64,
    /// Requests per second per credential.
    #[arg(long, env = "VIDX_RATE_LIMIT", default_value_t = LimitOptions::default().rate_per_credential)]
    pub rate_limit: u32,
    /// Requests per second per agency (all its credentials together).
    #[arg(long, env = "VIDX_AGENCY_RATE_LIMIT", default_value_t = LimitOptions::default().rate_per_agency)]
    pub agency_rate_limit: u32,
    /// Streaming calls (Upsert, LinkSeries, Triage) one credential may have open.
    #[arg(long, env = "VIDX_MAX_STREAMS", default_value_t = LimitOptions::default().streams_per_credential)]
    pub max_streams: u32,
}

fn read_pem(what: &str, p: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(p).with_context(|| format!("reading {what} {}", p.display()))
}

impl ServeSecurityArgs {
    pub fn tls(&self) -> anyhow::Result<Option<TlsFiles>> {
        match (&self.tls_cert, &self.tls_key) {
            (None, None) => {
                if self.client_ca.is_some() {
                    bail!("--client-ca needs TLS: give --tls-cert and --tls-key too");
                }
                Ok(None)
            }
            (Some(c), Some(k)) => Ok(Some(TlsFiles {
                cert_pem: read_pem("the TLS certificate", c)?,
                key_pem: read_pem("the TLS key", k)?,
                client_ca_pem: self
                    .client_ca
                    .as_ref()
                    .map(|p| read_pem("the client CA", p))
                    .transpose()?,
            })),
            _ => bail!("--tls-cert and --tls-key go together"),
        }
    }

    pub fn audit(&self, data_dir: &Path) -> AuditOptions {
        AuditOptions {
            rotate_bytes: self.audit_rotate_bytes.max(4096),
            ..AuditOptions::new(
                self.audit_dir
                    .clone()
                    .unwrap_or_else(|| data_dir.join("audit")),
                self.audit_key
                    .clone()
                    .unwrap_or_else(|| data_dir.join("audit-signing.key")),
            )
        }
    }

    pub fn limits(&self) -> LimitOptions {
        LimitOptions {
            rate_per_credential: self.rate_limit,
            rate_per_agency: self.agency_rate_limit,
            streams_per_credential: self.max_streams,
        }
    }

    /// Refuses an unprotected listen beyond loopback (unless --insecure)
    /// and says, in one line, when the server runs open.
    pub fn check_exposure(&self, listen: SocketAddr, data_dir: &Path) -> anyhow::Result<()> {
        let tokens = TokenStore::open(data_dir)?;
        let auth = tokens.has_tokens() || self.client_ca.is_some();
        let protected = self.tls_cert.is_some() && auth;
        if !listen.ip().is_loopback() && !protected && !self.insecure {
            bail!(
                "refusing to listen on {listen} without TLS and authentication: give --tls-cert/--tls-key \
                 and tokens (`vidx token create`) or --client-ca, or pass --insecure"
            );
        }
        if !auth {
            // Through the log, so that JSON logs stay JSON.
            tracing::warn!(
                "running OPEN on {listen}: no credentials are configured, every caller is an admin \
                 (`vidx token create --data-dir {} --agency A --role admin` turns authentication on)",
                data_dir.display()
            );
        }
        Ok(())
    }
}

/// The settings file: every key optional, unknown keys refused.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct FileConfig {
    data_dir: Option<PathBuf>,
    listen: Option<String>,
    metrics_listen: Option<String>,
    demo: Option<bool>,
    max_message_bytes: Option<usize>,
    sync: Option<String>,
    seal_threshold: Option<usize>,
    seal_after: Option<String>,
    shutdown_grace: Option<String>,
    log_format: Option<String>,
    log: Option<String>,
    slow_ms: Option<u64>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    client_ca: Option<PathBuf>,
    insecure: Option<bool>,
    audit_dir: Option<PathBuf>,
    audit_key: Option<PathBuf>,
    audit_rotate_bytes: Option<u64>,
    rate_limit: Option<u32>,
    agency_rate_limit: Option<u32>,
    max_streams: Option<u32>,
}

/// Where one setting's value came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    Flag,
    Env(&'static str),
    File,
    Default,
}

/// The settings in the order `--print-config` shows them, each with its
/// clap id, environment variable and file key.
const KEYS: &[(&str, &str, &str)] = &[
    ("data_dir", "VIDX_DATA_DIR", "data-dir"),
    ("listen", "VIDX_LISTEN", "listen"),
    ("metrics_listen", "VIDX_METRICS_LISTEN", "metrics-listen"),
    ("demo", "VIDX_DEMO", "demo"),
    (
        "max_message_bytes",
        "VIDX_MAX_MESSAGE_BYTES",
        "max-message-bytes",
    ),
    ("sync", "VIDX_SYNC", "sync"),
    ("seal_threshold", "VIDX_SEAL_THRESHOLD", "seal-threshold"),
    ("seal_after", "VIDX_SEAL_AFTER", "seal-after"),
    ("shutdown_grace", "VIDX_SHUTDOWN_GRACE", "shutdown-grace"),
    ("log_format", "VIDX_LOG_FORMAT", "log-format"),
    ("log", "VIDX_LOG", "log"),
    ("slow_ms", "VIDX_SLOW_MS", "slow-ms"),
    ("tls_cert", "VIDX_TLS_CERT", "tls-cert"),
    ("tls_key", "VIDX_TLS_KEY", "tls-key"),
    ("client_ca", "VIDX_CLIENT_CA", "client-ca"),
    ("insecure", "VIDX_INSECURE", "insecure"),
    ("audit_dir", "VIDX_AUDIT_DIR", "audit-dir"),
    ("audit_key", "VIDX_AUDIT_KEY", "audit-key"),
    (
        "audit_rotate_bytes",
        "VIDX_AUDIT_ROTATE_BYTES",
        "audit-rotate-bytes",
    ),
    ("rate_limit", "VIDX_RATE_LIMIT", "rate-limit"),
    (
        "agency_rate_limit",
        "VIDX_AGENCY_RATE_LIMIT",
        "agency-rate-limit",
    ),
    ("max_streams", "VIDX_MAX_STREAMS", "max-streams"),
];

/// Resolved settings and where each came from.
pub struct Resolved {
    pub args: ServeArgs,
    pub sources: Vec<(&'static str, Source)>,
}

fn read_file(path: &Path) -> anyhow::Result<FileConfig> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the config file {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("config file {}", path.display()))
}

/// A file value that clap would parse with `FromStr`, with the key named.
fn parse_key<T: std::str::FromStr>(
    path: &Path,
    key: &str,
    v: Option<String>,
) -> anyhow::Result<Option<T>>
where
    T::Err: std::fmt::Display,
{
    v.map(|s| {
        s.parse::<T>()
            .map_err(|e| anyhow::anyhow!("config file {}: key {key} = {s:?}: {e}", path.display()))
    })
    .transpose()
}

/// A duration as humantime writes it ("30s", "500ms", "1m 30s"); a bare
/// "0" is zero.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s.trim()).map_err(|e| {
        format!(
            "{s:?} is not a duration ({e}): give a number with a unit, e.g. \"30s\" or \"500ms\""
        )
    })
}

/// A duration key of the file, with the key named when it does not parse.
fn file_duration(path: &Path, key: &str, v: Option<String>) -> anyhow::Result<Option<Duration>> {
    v.map(|s| {
        parse_duration(&s)
            .map_err(|e| anyhow::anyhow!("config file {}: key {key} = {s:?}: {e}", path.display()))
    })
    .transpose()
}

/// Where clap took the setting `id` from.
fn source_of(m: &ArgMatches, id: &str) -> Source {
    let env = KEYS.iter().find(|k| k.0 == id).map_or("", |k| k.1);
    match m.value_source(id) {
        Some(ValueSource::CommandLine) => Source::Flag,
        Some(ValueSource::EnvVariable) => Source::Env(env),
        _ => Source::Default,
    }
}

/// Applies the file (`--config`) under the environment and the flags.
pub fn resolve(mut a: ServeArgs, m: &ArgMatches) -> anyhow::Result<Resolved> {
    let file = match &a.config {
        Some(p) => read_file(p)?,
        None => FileConfig::default(),
    };
    let path = a.config.clone().unwrap_or_default();
    let mut sources = Vec::new();
    // A bad value in the file is reported even where a flag overrides it.
    macro_rules! fill {
        ($id:literal, $($field:ident).+, $value:expr) => {{
            let value = $value;
            let mut src = source_of(m, $id);
            if src == Source::Default
                && let Some(v) = value
            {
                a.$($field).+ = v;
                src = Source::File;
            }
            sources.push(($id, src));
        }};
    }
    fill!("data_dir", data_dir, file.data_dir);
    fill!("listen", listen, parse_key(&path, "listen", file.listen)?);
    fill!(
        "metrics_listen",
        metrics_listen,
        parse_key(&path, "metrics-listen", file.metrics_listen)?.map(Some)
    );
    fill!("demo", demo, file.demo);
    fill!(
        "max_message_bytes",
        max_message_bytes,
        file.max_message_bytes
    );
    fill!("sync", sync, parse_key(&path, "sync", file.sync)?);
    fill!("seal_threshold", seal_threshold, file.seal_threshold);
    let seal_after = file_duration(&path, "seal-after", file.seal_after)?;
    fill!("seal_after", seal_after, seal_after);
    let grace = file_duration(&path, "shutdown-grace", file.shutdown_grace)?;
    fill!("shutdown_grace", shutdown_grace, grace);
    let log_format = file
        .log_format
        .map(|s| match s.as_str() {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            _ => bail!(
                "config file {}: key log-format = {s:?}: use \"text\" or \"json\"",
                path.display()
            ),
        })
        .transpose()?;
    fill!("log_format", log_format, log_format);
    fill!("log", log, file.log);
    fill!("slow_ms", slow_ms, file.slow_ms);
    fill!("tls_cert", security.tls_cert, file.tls_cert.map(Some));
    fill!("tls_key", security.tls_key, file.tls_key.map(Some));
    fill!("client_ca", security.client_ca, file.client_ca.map(Some));
    fill!("insecure", security.insecure, file.insecure);
    fill!("audit_dir", security.audit_dir, file.audit_dir.map(Some));
    fill!("audit_key", security.audit_key, file.audit_key.map(Some));
    fill!(
        "audit_rotate_bytes",
        security.audit_rotate_bytes,
        file.audit_rotate_bytes
    );
    fill!("rate_limit", security.rate_limit, file.rate_limit);
    fill!(
        "agency_rate_limit",
        security.agency_rate_limit,
        file.agency_rate_limit
    );
    fill!("max_streams", security.max_streams, file.max_streams);
    Ok(Resolved { args: a, sources })
}

/// The settings as TOML, each line saying where its value came from.
pub fn print_config(r: &Resolved) -> String {
    let a = &r.args;
    let value = |id: &str| -> Option<toml::Value> {
        Some(match id {
            "data_dir" => a.data_dir.display().to_string().into(),
            "listen" => a.listen.to_string().into(),
            "metrics_listen" => a.metrics_listen?.to_string().into(),
            "demo" => a.demo.into(),
            "max_message_bytes" => (a.max_message_bytes as i64).into(),
            "sync" => sync_str(a.sync).into(),
            "seal_threshold" => (a.seal_threshold as i64).into(),
            "seal_after" => humantime::format_duration(a.seal_after).to_string().into(),
            "shutdown_grace" => humantime::format_duration(a.shutdown_grace)
                .to_string()
                .into(),
            "log_format" => a.log_format.as_str().into(),
            "log" => a.log.clone().into(),
            "slow_ms" => (a.slow_ms as i64).into(),
            "tls_cert" => a.security.tls_cert.as_ref()?.display().to_string().into(),
            "tls_key" => a.security.tls_key.as_ref()?.display().to_string().into(),
            "client_ca" => a.security.client_ca.as_ref()?.display().to_string().into(),
            "insecure" => a.security.insecure.into(),
            "audit_dir" => a.security.audit_dir.as_ref()?.display().to_string().into(),
            "audit_key" => a.security.audit_key.as_ref()?.display().to_string().into(),
            "audit_rotate_bytes" => (a.security.audit_rotate_bytes as i64).into(),
            "rate_limit" => i64::from(a.security.rate_limit).into(),
            "agency_rate_limit" => i64::from(a.security.agency_rate_limit).into(),
            "max_streams" => i64::from(a.security.max_streams).into(),
            _ => return None,
        })
    };
    let mut out = String::new();
    if let Some(p) = &a.config {
        out.push_str(&format!("# config file: {}\n", p.display()));
    }
    for (id, _, key) in KEYS {
        let src = r
            .sources
            .iter()
            .find(|(i, _)| i == id)
            .map_or(Source::Default, |s| s.1.clone());
        let from = match src {
            Source::Flag => "flag".to_string(),
            Source::Env(v) => format!("env {v}"),
            Source::File => "config file".to_string(),
            Source::Default => "default".to_string(),
        };
        match value(id) {
            Some(v) => out.push_str(&format!("{key} = {v}  # {from}\n")),
            None => out.push_str(&format!("# {key} is not set  # {from}\n")),
        }
    }
    out
}

fn sync_str(s: SyncPolicy) -> String {
    match s {
        SyncPolicy::Always => "always".into(),
        SyncPolicy::Never => "never".into(),
        SyncPolicy::Interval(d) => format!("interval={}", d.as_millis()),
    }
}

/// Starts the log subscriber: `filter` (or RUST_LOG when the filter is
/// the default and RUST_LOG is set) in `format`, to stderr.
pub fn init_logging(format: LogFormat, filter: Option<&str>, default_level: &str) {
    let filter = match filter {
        Some(f) => tracing_subscriber::EnvFilter::try_new(f).unwrap_or_else(|e| {
            eprintln!("warning: log filter {f:?}: {e}; using {default_level}");
            tracing_subscriber::EnvFilter::new(default_level)
        }),
        None => tracing_subscriber::EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level)),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .init(),
        LogFormat::Text => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
    }
}

/// The log filter of a resolved serve: the one set by flag, environment or
/// file, else none (RUST_LOG or info).
pub fn log_filter(r: &Resolved) -> Option<String> {
    let set = r
        .sources
        .iter()
        .any(|(id, s)| *id == "log" && *s != Source::Default);
    set.then(|| r.args.log.clone())
}

/// Runs the server until SIGINT or SIGTERM.
pub async fn serve(a: ServeArgs) -> anyhow::Result<()> {
    if a.seal_threshold == 0 {
        bail!("--seal-threshold must be at least 1");
    }
    let tls = a.security.tls()?;
    std::fs::create_dir_all(&a.data_dir)
        .with_context(|| format!("creating data directory {}", a.data_dir.display()))?;
    a.security.check_exposure(a.listen, &a.data_dir)?;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = move || {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    };
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = stop_tx.send(true);
    });
    let ops = Ops::new();
    let ops_task = match a.metrics_listen {
        Some(addr) => {
            if !addr.ip().is_loopback() {
                tracing::warn!(
                    metrics_listen = %addr,
                    "metrics and health are served over plain HTTP without credentials on a non-loopback address: they name collections, their sizes and call counts (no vectors or metadata); keep that address on a private network"
                );
            }
            Some(start_ops(addr, ops.clone(), stopped()).await?)
        }
        None => None,
    };
    let server_opts = ServerOptions {
        max_message_bytes: a.max_message_bytes,
        shutdown_grace: a.shutdown_grace,
        slow: Duration::from_millis(a.slow_ms),
        tls,
        audit: Some(a.security.audit(&a.data_dir)),
        limits: a.security.limits(),
        ..Default::default()
    };
    match a.role {
        Role::Single => {}
        Role::Index => return serve_index(a, server_opts, stopped()).await,
        Role::Router => {
            let ropts = crate::cluster::router::RouterOptions {
                listen: a.listen,
                server: server_opts,
                data_dir: a.data_dir.clone(),
                engines: a.cluster.engines(),
                deadline: Duration::from_millis(a.cluster.deadline_ms),
            };
            return crate::cluster::router::run(ropts, stopped()).await;
        }
    }
    let registry = scan_registry(&a).await?;
    ops.set_registry(registry.clone());
    let listener = tokio::net::TcpListener::bind(a.listen)
        .await
        .with_context(|| format!("binding {}", a.listen))?;
    let listen = listener.local_addr()?;
    tracing::info!(
        listen = %listen,
        data_dir = %a.data_dir.display(),
        "vidx serving"
    );
    open_in_background(registry.clone(), a.demo, listen);
    server::serve(registry, listener, server_opts, stopped()).await?;
    if let Some(t) = ops_task {
        let _ = t.await;
    }
    tracing::info!("vidx stopped");
    Ok(())
}

/// Binds and starts the metrics/health listener.
async fn start_ops(
    addr: SocketAddr,
    ops: Arc<Ops>,
    stopped: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let l = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding --metrics-listen {addr}"))?;
    tracing::info!(listen = %l.local_addr()?, "metrics serving");
    Ok(tokio::spawn(async move {
        if let Err(e) = crate::api::ops::serve(l, ops, stopped).await {
            tracing::error!(error = %e, "metrics listener failed");
        }
    }))
}

/// Locks the data directory and lists its collections. They open once the
/// port is up ([`open_in_background`]), so a long log replay never keeps
/// the server from answering.
async fn scan_registry(a: &ServeArgs) -> anyhow::Result<Arc<Registry>> {
    let data_dir = a.data_dir.clone();
    let opts = crate::collection::StorageOptions {
        sync: a.sync,
        seal_threshold: a.seal_threshold,
        seal_after: (!a.seal_after.is_zero()).then_some(a.seal_after),
        ..Default::default()
    };
    let registry = tokio::task::spawn_blocking(move || Registry::scan(&data_dir, opts))
        .await?
        .with_context(|| format!("opening data directory {}", a.data_dir.display()))?;
    Ok(Arc::new(registry))
}

/// Opens every listed collection (each reports its readiness as it goes),
/// then loads the demo collections if asked.
fn open_in_background(registry: Arc<Registry>, demo: bool, listen: SocketAddr) {
    tokio::spawn(async move {
        match tokio::task::spawn_blocking(move || open_collections(&registry, demo)).await {
            Ok(Ok((ready, unavailable))) => {
                tracing::info!(listen = %listen, ready, unavailable, "vidx ready");
            }
            Ok(Err(e)) => tracing::error!(error = %e, "loading the demo collections failed"),
            Err(e) => tracing::error!(error = %e, "opening the collections failed"),
        }
    });
}

/// Opens every listed collection, then loads the demo ones if asked;
/// returns how many opened and how many were refused.
fn open_collections(registry: &Registry, demo: bool) -> crate::error::Result<(usize, usize)> {
    let (ready, unavailable) = registry.open_all();
    if demo && crate::cli::demo::load(registry)?.is_empty() {
        tracing::info!("demo collections already present");
    }
    Ok((ready, unavailable))
}

/// Runs a cluster index node (README: Cluster) until `stopped` resolves.
async fn serve_index(
    a: ServeArgs,
    server: ServerOptions,
    stopped: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let storage = crate::collection::StorageOptions {
        sync: a.sync,
        seal_threshold: a.seal_threshold,
        ..Default::default()
    };
    if a.cluster.node_id.is_empty() {
        bail!("--role index needs --node-id, unique in the cluster");
    }
    if a.demo {
        bail!("--demo is for --role single; load a cluster through its router");
    }
    let opts = crate::cluster::node::NodeOptions {
        node_id: a.cluster.node_id.clone(),
        shard: a.cluster.shard,
        shards: a.cluster.shards,
        listen: a.listen,
        advertise: a.cluster.advertise.clone(),
        data_dir: a.data_dir.clone(),
        storage,
        server,
        snapshot_every: a.cluster.snapshot_every.max(1),
        engines: a.cluster.engines(),
    };
    crate::cluster::node::run(opts, stopped).await
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
