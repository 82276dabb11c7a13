//! The `vidx` command line: `serve`, `gen`, `ingest`, `search`, `collections`,
//! `flush`, `bench`; the linking and triage commands are in [`link`].
//!
//! The top layer: may import every other layer.

pub mod client;
pub mod demo;
pub mod hashes;
pub mod link;
pub mod table;
pub mod tools;
pub mod vics;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};

use crate::api::server::{self, ServerOptions};
use crate::collection::registry::Registry;
use crate::pb;
use crate::pb::vector_index_client::VectorIndexClient;
use crate::storage::wal::SyncPolicy;
use client::{ClientArgs, connect, status_error};

#[derive(Parser, Debug)]
#[command(
    name = "vidx",
    version,
    about = "Similarity index of image and face embeddings for victim identification (vectors and metadata only, never images)"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the gRPC server.
    Serve(ServeArgs),
    /// Write synthetic embeddings with planted series and ground truth.
    Gen(crate::cli::tools::GenArgs),
    /// Stream points from files into a collection (created if absent).
    Ingest(IngestArgs),
    /// Query a collection from the shell.
    Search(Box<SearchArgs>),
    /// List the server's collections.
    Collections(ClientArgs),
    /// Seal a collection's in-memory segment into memory-mapped files now.
    Flush(FlushArgs),
    /// Link an image (and face) collection into series; writes JSON lines and a summary.
    Link(Box<crate::cli::link::LinkArgs>),
    /// Link one new upload against the stored series (joins, merges, new series).
    LinkUpload(crate::cli::link::LinkUploadArgs),
    /// Triage a seized set into known and new material, most urgent first.
    Triage(Box<crate::cli::link::TriageArgs>),
    /// MD5, SHA-1, SHA-256 and PDQ (with quality) of local files, as JSON
    /// lines; computed here, nothing is sent anywhere.
    Hash(crate::cli::hashes::HashArgs),
    /// Exact-hash sets of known material on the server.
    #[command(subcommand)]
    Hashset(crate::cli::hashes::HashSetCommand),
    /// Project VIC (VICS) JSON case files in and out of an exact-hash set.
    #[command(subcommand)]
    Vics(crate::cli::vics::VicsCommand),
    /// Benchmarks.
    #[command(subcommand)]
    Bench(BenchCommand),
}

#[derive(Subcommand, Debug)]
pub enum BenchCommand {
    /// Recall vs QPS sweep of the ANN index (mutable, sealed, over gRPC).
    Ann(Box<crate::cli::tools::AnnArgs>),
    /// Filtered search at 50% / 10% / 1% / 0.1% / 0% selectivity beside unfiltered.
    Filter(crate::cli::tools::FilterBenchArgs),
    /// Linking quality (B-cubed F1, pairwise P/R, threshold sweep), triage accuracy, linking at scale.
    Link(Box<crate::cli::tools::LinkBenchArgs>),
    /// PDQ radius-31 search: build time, RAM, QPS and recall of the sealed
    /// hash segment beside a scan and (with --peers) FAISS binary indexes.
    Pdq(crate::cli::tools::PdqBenchArgs),
}

#[derive(clap::Args, Debug)]
pub struct FlushArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// The collection to seal.
    #[arg(long)]
    pub collection: String,
}

#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    /// Where collections are stored.
    #[arg(long, default_value = "./vidx-data")]
    pub data_dir: PathBuf,
    /// Address to listen on. Loopback by default: vidx has no authentication yet.
    #[arg(long, default_value = "127.0.0.1:50051")]
    pub listen: SocketAddr,
    /// Create and load the demo collections (`images`, `faces`) if absent.
    #[arg(long)]
    pub demo: bool,
    /// Largest request or response message, in bytes.
    #[arg(long, default_value_t = server::DEFAULT_MAX_MESSAGE_BYTES)]
    pub max_message_bytes: usize,
    /// When writes reach the disk: "always" (fsync before acknowledging),
    /// "interval=<ms>" (acknowledge after write(), fsync every <ms>: a power
    /// loss can lose that much) or "never" (leave it to the OS).
    #[arg(long, default_value = "always")]
    pub sync: SyncPolicy,
    /// Points in a collection's mutable segment before it is sealed into
    /// memory-mapped files.
    #[arg(long, default_value_t = crate::collection::DEFAULT_SEAL_THRESHOLD)]
    pub seal_threshold: usize,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum MetricArg {
    Cosine,
    Dot,
    L2,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum QuantizationArg {
    None,
    Sq8,
    Sq4,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum KindArg {
    Image,
    Face,
}

#[derive(clap::Args, Debug)]
pub struct IngestArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// The collection to write into; created if absent.
    #[arg(long)]
    pub collection: String,
    /// Points per streamed message.
    #[arg(long, default_value_t = 1000)]
    pub batch: usize,
    /// Metric of a collection created here [default: cosine]; if given, an
    /// existing collection must have it.
    #[arg(long, value_enum)]
    pub metric: Option<MetricArg>,
    /// Kind of a collection created here [default: image]; if given, an
    /// existing collection must be of it.
    #[arg(long, value_enum)]
    pub kind: Option<KindArg>,
    /// Codes sealed segments are searched by, for a collection created here
    /// (distances are rescored exactly with the f32 vectors).
    #[arg(long, value_enum, default_value = "none")]
    pub quantization: QuantizationArg,
    /// `.jsonl` files with vectors, or `.npy` files with a same-stem `.jsonl` of metadata.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
}

#[derive(clap::Args, Debug)]
pub struct SearchArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// The collection to search.
    #[arg(long)]
    pub collection: String,
    /// "More like this": the stored point with this id.
    #[arg(long, conflicts_with_all = ["vector", "npy", "bits"])]
    pub id: Option<String>,
    /// A perceptual hash in hex (PERCEPTUAL_HASH collections; PDQ: 64 digits).
    #[arg(long, conflicts_with_all = ["vector", "npy"])]
    pub bits: Option<String>,
    /// Drop hits farther than this (PDQ's match: 31).
    #[arg(long)]
    pub max_distance: Option<f32>,
    /// PERCEPTUAL_HASH collections: skip stored hashes below this quality [default: 50].
    #[arg(long)]
    pub min_quality: Option<u32>,
    /// Comma-separated query vector.
    #[arg(long, conflicts_with = "npy", allow_hyphen_values = true)]
    pub vector: Option<String>,
    /// Take the query from a row of a .npy matrix.
    #[arg(long, requires = "row")]
    pub npy: Option<PathBuf>,
    /// With --npy: the row (from 0) to take.
    #[arg(long)]
    pub row: Option<usize>,
    /// Hits to return.
    #[arg(short, long, default_value_t = 10)]
    pub k: u32,
    /// Search breadth (0 = server default).
    #[arg(long, default_value_t = 0)]
    pub ef: u32,
    /// Print the response as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub filter: FilterArgs,
    /// With --id: drop hits from the query point's own upload.
    #[arg(long)]
    pub exclude_same_upload: bool,
    /// With --id: drop hits from the query point's own case.
    #[arg(long)]
    pub exclude_same_case: bool,
    /// Top-k distinct media, each with its best point and how many matched.
    #[arg(long)]
    pub group_by_media: bool,
}

/// Filter flags of `vidx search`; lists take repeated flags or commas.
#[derive(clap::Args, Debug, Default)]
pub struct FilterArgs {
    /// Only these countries (ISO 3166-1 alpha-2).
    #[arg(long = "country", value_delimiter = ',')]
    pub countries_any: Vec<String>,
    /// Not these countries.
    #[arg(long = "not-country", value_delimiter = ',')]
    pub countries_none: Vec<String>,
    /// Only points uploaded by these agencies.
    #[arg(long = "agency", value_delimiter = ',')]
    pub agencies_any: Vec<String>,
    /// Only points of these cases.
    #[arg(long = "case", value_delimiter = ',')]
    pub case_ids_any: Vec<String>,
    /// Not these cases.
    #[arg(long = "not-case", value_delimiter = ',')]
    pub case_ids_none: Vec<String>,
    /// Only points of these uploads.
    #[arg(long = "upload", value_delimiter = ',')]
    pub upload_ids_any: Vec<String>,
    /// Not these uploads.
    #[arg(long = "not-upload", value_delimiter = ',')]
    pub upload_ids_none: Vec<String>,
    /// Not these media.
    #[arg(long = "not-media", value_delimiter = ',')]
    pub media_ids_none: Vec<String>,
    /// true: only identified victims; false: only unidentified.
    #[arg(long)]
    pub identified: Option<bool>,
    /// Captured at or after: Unix seconds or YYYY-MM-DD (UTC).
    #[arg(long, value_parser = parse_time)]
    pub captured_after: Option<i64>,
    /// Captured before: Unix seconds or YYYY-MM-DD (UTC).
    #[arg(long, value_parser = parse_time)]
    pub captured_before: Option<i64>,
    /// Uploaded at or after: Unix seconds or YYYY-MM-DD (UTC).
    #[arg(long, value_parser = parse_time)]
    pub uploaded_after: Option<i64>,
    /// Uploaded before: Unix seconds or YYYY-MM-DD (UTC).
    #[arg(long, value_parser = parse_time)]
    pub uploaded_before: Option<i64>,
    /// Every one of these tags.
    #[arg(long = "tag", value_delimiter = ',')]
    pub tags_all: Vec<String>,
    /// At least one of these tags.
    #[arg(long = "any-tag", value_delimiter = ',')]
    pub tags_any: Vec<String>,
}

impl FilterArgs {
    pub fn to_pb(&self) -> Option<pb::Filter> {
        let f = pb::Filter {
            countries_any: self.countries_any.clone(),
            countries_none: self.countries_none.clone(),
            agencies_any: self.agencies_any.clone(),
            case_ids_any: self.case_ids_any.clone(),
            case_ids_none: self.case_ids_none.clone(),
            upload_ids_any: self.upload_ids_any.clone(),
            upload_ids_none: self.upload_ids_none.clone(),
            media_ids_none: self.media_ids_none.clone(),
            victim_identified: self.identified,
            captured_after: self.captured_after,
            captured_before: self.captured_before,
            uploaded_after: self.uploaded_after,
            uploaded_before: self.uploaded_before,
            tags_all: self.tags_all.clone(),
            tags_any: self.tags_any.clone(),
        };
        (f != pb::Filter::default()).then_some(f)
    }
}

/// Unix seconds, or a UTC calendar date `YYYY-MM-DD` (midnight).
pub fn parse_time(s: &str) -> Result<i64, String> {
    if let Ok(t) = s.parse::<i64>() {
        return Ok(t);
    }
    let parts: Vec<&str> = s.split('-').collect();
    let bad = || format!("{s:?} is neither Unix seconds nor a date YYYY-MM-DD");
    let [y, m, d] = parts.as_slice() else {
        return Err(bad());
    };
    let (y, m, d): (i64, i64, i64) = (
        y.parse().map_err(|_| bad())?,
        m.parse().map_err(|_| bad())?,
        d.parse().map_err(|_| bad())?,
    );
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return Err(bad());
    }
    // Days from civil (Howard Hinnant's algorithm), proleptic Gregorian.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Ok((era * 146_097 + doe - 719_468) * 86_400)
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let default_level = match cli.command {
        Command::Serve(_) => "info",
        _ => "warn",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = rt.block_on(async move {
        match cli.command {
            Command::Serve(a) => serve(a).await,
            Command::Gen(a) => {
                let opts = a.into();
                let summary =
                    tokio::task::spawn_blocking(move || crate::tools::synth::run(&opts)).await??;
                println!("{summary}");
                Ok(())
            }
            Command::Ingest(a) => ingest(a).await,
            Command::Search(a) => search(*a).await,
            Command::Collections(a) => collections(a).await,
            Command::Flush(a) => flush(a).await,
            Command::Link(a) => crate::cli::link::link(*a).await,
            Command::LinkUpload(a) => crate::cli::link::link_upload(a).await,
            Command::Triage(a) => crate::cli::link::triage(*a).await,
            Command::Hash(a) => {
                tokio::task::spawn_blocking(move || crate::cli::hashes::hash(a)).await?
            }
            Command::Hashset(c) => crate::cli::hashes::hashset(c).await,
            Command::Vics(c) => crate::cli::vics::vics(c).await,
            Command::Bench(BenchCommand::Ann(a)) => {
                tokio::task::spawn_blocking(move || crate::tools::bench_ann::run((*a).into()))
                    .await?
            }
            Command::Bench(BenchCommand::Filter(a)) => {
                tokio::task::spawn_blocking(move || crate::tools::bench_ann::run_filter(a.into()))
                    .await?
            }
            Command::Bench(BenchCommand::Pdq(a)) => {
                tokio::task::spawn_blocking(move || crate::tools::bench_pdq::run(a.into())).await?
            }
            Command::Bench(BenchCommand::Link(a)) => {
                tokio::task::spawn_blocking(move || crate::tools::bench_link::run((*a).into()))
                    .await?
            }
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(a: ServeArgs) -> anyhow::Result<()> {
    if a.seal_threshold == 0 {
        bail!("--seal-threshold must be at least 1");
    }
    let data_dir = a.data_dir.clone();
    let opts = crate::collection::StorageOptions {
        sync: a.sync,
        seal_threshold: a.seal_threshold,
        ..Default::default()
    };
    let registry = tokio::task::spawn_blocking(move || Registry::open(&data_dir, opts))
        .await?
        .with_context(|| format!("opening data directory {}", a.data_dir.display()))?;
    let registry = Arc::new(registry);
    if a.demo {
        let r = registry.clone();
        let loaded = tokio::task::spawn_blocking(move || crate::cli::demo::load(&r)).await??;
        if loaded.is_empty() {
            tracing::info!("demo collections already present");
        }
    }
    let listener = tokio::net::TcpListener::bind(a.listen)
        .await
        .with_context(|| format!("binding {}", a.listen))?;
    tracing::info!(
        listen = %listener.local_addr()?,
        data_dir = %a.data_dir.display(),
        "vidx serving"
    );
    let opts = ServerOptions {
        max_message_bytes: a.max_message_bytes,
    };
    server::serve(registry, listener, opts, shutdown_signal()).await?;
    tracing::info!("vidx stopped");
    Ok(())
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

async fn ingest(a: IngestArgs) -> anyhow::Result<()> {
    if a.batch == 0 {
        bail!("--batch must be at least 1");
    }
    let sources = crate::io::ingest::plan(&a.files)?;
    let mut client = connect(&a.client.server).await?;
    let mut total = 0u64;
    for source in sources {
        let s2 = source.clone();
        let points =
            tokio::task::spawn_blocking(move || crate::io::ingest::read_source(&s2)).await??;
        if points.is_empty() {
            continue;
        }
        ensure_collection(&mut client, &a, points[0].vector.len() as u32).await?;
        let bar = ProgressBar::new(points.len() as u64);
        bar.set_style(
            ProgressStyle::with_template(
                "{msg} [{bar:40}] {pos}/{len} points ({per_sec}, eta {eta})",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        bar.set_message(match &source {
            crate::io::ingest::Source::Jsonl(p) => p.display().to_string(),
            crate::io::ingest::Source::NpyWithMeta { npy, .. } => npy.display().to_string(),
        });
        let batches: Vec<pb::UpsertRequest> = points
            .chunks(a.batch)
            .map(|c| pb::UpsertRequest {
                collection: a.collection.clone(),
                points: c.to_vec(),
            })
            .collect();
        drop(points);
        let b2 = bar.clone();
        // The bar advances as tonic pulls each batch onto the wire.
        let stream = tokio_stream::iter(
            batches
                .into_iter()
                .inspect(move |r| b2.inc(r.points.len() as u64)),
        );
        let resp = client
            .upsert(stream)
            .await
            .map_err(status_error)?
            .into_inner();
        bar.finish();
        total += resp.upserted;
    }
    println!("upserted {total} points into {}", a.collection);
    Ok(())
}

async fn ensure_collection(
    client: &mut VectorIndexClient<tonic::transport::Channel>,
    a: &IngestArgs,
    dim: u32,
) -> anyhow::Result<()> {
    let describe = client
        .describe_collection(pb::DescribeCollectionRequest {
            name: a.collection.clone(),
        })
        .await;
    let metric = match a.metric.unwrap_or(MetricArg::Cosine) {
        MetricArg::Cosine => pb::Metric::Cosine,
        MetricArg::Dot => pb::Metric::Dot,
        MetricArg::L2 => pb::Metric::L2,
    };
    let kind = match a.kind.unwrap_or(KindArg::Image) {
        KindArg::Image => pb::Kind::Image,
        KindArg::Face => pb::Kind::Face,
    };
    match describe {
        Ok(info) => check_existing(&info.into_inner(), a, metric, kind),
        Err(s) if s.code() == tonic::Code::NotFound => {
            client
                .create_collection(pb::CreateCollectionRequest {
                    name: a.collection.clone(),
                    dim,
                    metric: metric as i32,
                    kind: kind as i32,
                    hnsw: None,
                    quantization: match a.quantization {
                        QuantizationArg::None => pb::Quantization::None,
                        QuantizationArg::Sq8 => pb::Quantization::Sq8,
                        QuantizationArg::Sq4 => pb::Quantization::Sq4,
                    } as i32,
                })
                .await
                .map_err(status_error)?;
            eprintln!(
                "created collection {} ({dim}-d, {metric:?}, {kind:?})",
                a.collection
            );
            Ok(())
        }
        Err(s) => Err(status_error(s)),
    }
}

/// An existing collection must have the metric and kind that `ingest` was
/// given explicitly: a face file ingested into an image collection would be
/// linked as scenes.
fn check_existing(
    info: &pb::CollectionInfo,
    a: &IngestArgs,
    metric: pb::Metric,
    kind: pb::Kind,
) -> anyhow::Result<()> {
    let has_kind = pb::Kind::try_from(info.kind).unwrap_or(pb::Kind::Unspecified);
    if a.kind.is_some() && has_kind != kind {
        bail!(
            "collection {} is a {} collection; --kind {} does not match (leave --kind out to ingest into it as it is)",
            info.name,
            has_kind.as_str_name(),
            kind.as_str_name().to_lowercase()
        );
    }
    let has_metric = pb::Metric::try_from(info.metric).unwrap_or(pb::Metric::Unspecified);
    if a.metric.is_some() && has_metric != metric {
        bail!(
            "collection {} measures {} distances; --metric {} does not match (leave --metric out to ingest into it as it is)",
            info.name,
            has_metric.as_str_name(),
            metric.as_str_name().to_lowercase()
        );
    }
    Ok(())
}

async fn search(a: SearchArgs) -> anyhow::Result<()> {
    // clap's `requires` is void here: --id conflicts with the vector flags.
    if a.id.is_none() && (a.exclude_same_upload || a.exclude_same_case) {
        bail!(
            "--exclude-same-upload and --exclude-same-case apply to --id queries; with a vector, use --not-upload or --not-case"
        );
    }
    let query = if let Some(id) = &a.id {
        pb::query::Query::PointId(id.clone())
    } else if let Some(b) = &a.bits {
        pb::query::Query::Bits(hex::decode(b).with_context(|| format!("--bits: {b:?} is not hex"))?)
    } else if let Some(v) = &a.vector {
        let values = v
            .split(',')
            .map(|x| {
                x.trim()
                    .parse::<f32>()
                    .with_context(|| format!("--vector: {x:?} is not a number"))
            })
            .collect::<anyhow::Result<Vec<f32>>>()?;
        pb::query::Query::Vector(pb::Vector { values })
    } else if let (Some(npy), Some(row)) = (&a.npy, a.row) {
        let m = crate::io::npy::read_matrix(npy)?;
        if row >= m.rows {
            bail!("--row {row}: {} has {} rows", npy.display(), m.rows);
        }
        pb::query::Query::Vector(pb::Vector {
            values: m.data[row * m.cols..(row + 1) * m.cols].to_vec(),
        })
    } else {
        bail!("give a query: --id ID, --vector v1,v2,…, --npy FILE --row N or --bits HEX");
    };
    let mut client = connect(&a.client.server).await?;
    let resp = client
        .search(pb::SearchRequest {
            collection: a.collection.clone(),
            queries: vec![pb::Query { query: Some(query) }],
            k: a.k,
            ef: a.ef,
            filter: a.filter.to_pb(),
            exclude_same_upload: a.exclude_same_upload,
            exclude_same_case: a.exclude_same_case,
            group_by_media: a.group_by_media,
            max_distance: a.max_distance,
            min_quality: a.min_quality,
        })
        .await
        .map_err(status_error)?
        .into_inner();
    let hits = resp
        .results
        .into_iter()
        .next()
        .map(|r| r.hits)
        .unwrap_or_default();
    if a.json {
        let rows: Vec<serde_json::Value> = hits
            .iter()
            .map(
                |h| serde_json::json!({"id": h.id, "distance": h.distance, "matched_faces": h.matched_faces, "quality": h.quality, "metadata": h.metadata}),
            )
            .collect();
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    println!("{}", hits_table(&hits, a.group_by_media));
    Ok(())
}

/// Search hits as a terminal table; grouped by media, with each hit's
/// media and how many of its points matched.
fn hits_table(hits: &[pb::Hit], group_by_media: bool) -> String {
    let mut header = vec![
        "rank",
        "id",
        "distance",
        "cc",
        "upload",
        "case",
        "series",
        "identified",
    ];
    if group_by_media {
        header.extend(["media", "matched"]);
    }
    let mut t = table::Table::new(&header, &[0, 2, 9]);
    for (i, h) in hits.iter().enumerate() {
        let m = h.metadata.clone().unwrap_or_default();
        let mut row = vec![
            (i + 1).to_string(),
            h.id.clone(),
            format!("{:.4}", h.distance),
            m.country,
            m.upload_id,
            m.case_id,
            m.series_label,
            if m.victim_identified { "yes" } else { "no" }.to_string(),
        ];
        if group_by_media {
            row.extend([m.media_id, h.matched_faces.to_string()]);
        }
        t.row(row);
    }
    t.render()
}

async fn collections(a: ClientArgs) -> anyhow::Result<()> {
    let mut client = connect(&a.server).await?;
    let resp = client
        .list_collections(pb::ListCollectionsRequest {})
        .await
        .map_err(status_error)?
        .into_inner();
    let mut t = table::Table::new(
        &["name", "dim", "metric", "kind", "points", "memory", "disk"],
        &[1, 4, 5, 6],
    );
    for c in resp.collections {
        t.row(vec![
            c.name,
            c.dim.to_string(),
            pb::Metric::try_from(c.metric)
                .map_or("?", |m| m.as_str_name())
                .to_string(),
            pb::Kind::try_from(c.kind)
                .map_or("?", |k| k.as_str_name())
                .to_string(),
            c.points.to_string(),
            table::bytes(c.memory_bytes),
            table::bytes(c.disk_bytes),
        ]);
    }
    println!("{}", t.render());
    Ok(())
}

async fn flush(a: FlushArgs) -> anyhow::Result<()> {
    let mut client = connect(&a.client.server).await?;
    let r = client
        .flush(pb::FlushRequest {
            collection: a.collection.clone(),
        })
        .await
        .map_err(status_error)?
        .into_inner();
    println!(
        "sealed {} points of {}; it now has {} segments",
        r.sealed_points, a.collection, r.segments
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::parse_time;

    #[test]
    fn times_parse_as_unix_seconds_or_utc_dates() {
        assert_eq!(parse_time("1700000000"), Ok(1_700_000_000));
        assert_eq!(parse_time("1970-01-01"), Ok(0));
        assert_eq!(parse_time("2014-01-01"), Ok(1_388_534_400));
        assert_eq!(parse_time("2000-03-01"), Ok(951_868_800));
        assert!(parse_time("2019-13-01").is_err());
        assert!(parse_time("yesterday").is_err());
    }
}
