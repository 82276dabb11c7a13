//! The `vidx` command line: `serve` (in [`serve`]), `gen`, `ingest`,
//! `search`, `get`, `collections`, `flush`, `snapshot` (in [`snapshot`]),
//! `bench`; the linking and triage commands are in [`link`], the series
//! records (`vidx series ...`, `update-metadata`) in [`series`] with the HTML
//! report in [`report`].
//!
//! The top layer: may import every other layer.

pub mod client;
pub mod demo;
pub mod hashes;
pub mod link;
pub mod plot;
pub mod report;
pub mod security;
pub mod series;
pub mod serve;
pub mod snapshot;
pub mod table;
pub mod tools;
pub mod vics;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};

use crate::pb;
use client::{ClientArgs, connect, status_error};
pub use link::parse_time;

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
    /// Run the gRPC server (settings from flags, VIDX_* variables or --config).
    Serve(Box<serve::ServeArgs>),
    /// Write synthetic embeddings with planted series and ground truth.
    Gen(Box<crate::cli::tools::GenArgs>),
    /// Stream points from files into a collection (created if absent).
    Ingest(IngestArgs),
    /// Query a collection from the shell.
    Search(Box<SearchArgs>),
    /// Points by id, a page of ids per request.
    Get(GetArgs),
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
    /// Pick image and face thresholds from the labelled material in a
    /// collection; prints them and writes a PNG of the distance histograms.
    Calibrate(crate::cli::link::CalibrateArgs),
    /// MD5, SHA-1, SHA-256 and PDQ (with quality) of local files, as JSON
    /// lines; computed here, nothing is sent anywhere.
    Hash(crate::cli::hashes::HashArgs),
    /// Exact-hash sets of known material on the server.
    #[command(subcommand)]
    Hashset(crate::cli::hashes::HashSetCommand),
    /// Project VIC (VICS) JSON case files in and out of an exact-hash set.
    #[command(subcommand)]
    Vics(crate::cli::vics::VicsCommand),
    /// Series as records: list, show, of MEDIA, decide, report.
    #[command(subcommand)]
    Series(crate::cli::series::SeriesCommand),
    /// Change metadata of stored points without sending their vectors.
    UpdateMetadata(crate::cli::series::UpdateMetadataArgs),
    /// Snapshots of a collection: create (from a running server), verify, restore.
    #[command(subcommand)]
    Snapshot(snapshot::SnapshotCommand),
    /// Benchmarks.
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Bearer tokens: create, list, revoke.
    #[command(subcommand)]
    Token(security::TokenCommand),
    /// Restrict an upload to its agency and the agencies listed (or lift it).
    Restrict(security::RestrictArgs),
    /// Who the server takes these credentials for.
    Whoami(ClientArgs),
    /// The audit log: verify, export.
    #[command(subcommand)]
    Audit(security::AuditCommand),
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
    /// Batched search QPS with TLS + tokens + audit on, beside the plain server.
    Security(crate::cli::tools::SecurityBenchArgs),
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
pub struct GetArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// The collection to read.
    #[arg(long)]
    pub collection: String,
    /// Ids asked per request: each answer must fit the message limits
    /// (1,000 points of 512 floats are about 2 MB).
    #[arg(long, default_value_t = 1000)]
    pub page_size: usize,
    /// A file with one id per line (besides or instead of IDS).
    #[arg(long)]
    pub ids_file: Option<PathBuf>,
    /// Print JSON lines with vectors instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Point ids.
    pub ids: Vec<String>,
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
pub enum VectorStorageArg {
    F32,
    F16,
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
    /// How sealed segments store vectors, for a collection created here:
    /// f16 halves their disk (distances then come from f16-rounded vectors).
    #[arg(long, value_enum, default_value = "f32")]
    pub vector_storage: VectorStorageArg,
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
    /// Distance beyond which a hit is marked "no match" [default: the
    /// stored series' image threshold, else 0.36 (images) or 0.70 (faces)
    /// under cosine].
    #[arg(long)]
    pub link_threshold: Option<f32>,
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

pub fn main() -> ExitCode {
    let matches = Cli::command().get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(c) => c,
        Err(e) => e.exit(),
    };
    let cli = match cli.command {
        Command::Serve(a) => {
            let sub = matches
                .subcommand_matches("serve")
                .expect("serve was parsed");
            let resolved = match serve::resolve(*a, sub) {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("error: {e:#}");
                    return ExitCode::FAILURE;
                }
            };
            if resolved.args.print_config {
                print!("{}", serve::print_config(&resolved));
                return ExitCode::SUCCESS;
            }
            let filter = serve::log_filter(&resolved);
            serve::init_logging(resolved.args.log_format, filter.as_deref(), "info");
            Cli {
                command: Command::Serve(Box::new(resolved.args)),
            }
        }
        command => {
            serve::init_logging(serve::LogFormat::Text, None, "warn");
            Cli { command }
        }
    };
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
            Command::Serve(a) => serve::serve(*a).await,
            Command::Gen(a) => {
                let opts = (*a).into();
                let summary =
                    tokio::task::spawn_blocking(move || crate::tools::synth::run(&opts)).await??;
                println!("{summary}");
                Ok(())
            }
            Command::Ingest(a) => ingest(a).await,
            Command::Search(a) => search(*a).await,
            Command::Get(a) => get(a).await,
            Command::Collections(a) => collections(a).await,
            Command::Snapshot(c) => snapshot::run(c).await,
            Command::Flush(a) => flush(a).await,
            Command::Link(a) => crate::cli::link::link(*a).await,
            Command::LinkUpload(a) => crate::cli::link::link_upload(a).await,
            Command::Triage(a) => crate::cli::link::triage(*a).await,
            Command::Calibrate(a) => crate::cli::link::calibrate(a).await,
            Command::Hash(a) => {
                tokio::task::spawn_blocking(move || crate::cli::hashes::hash(a)).await?
            }
            Command::Hashset(c) => crate::cli::hashes::hashset(c).await,
            Command::Vics(c) => crate::cli::vics::vics(c).await,
            Command::Series(a) => crate::cli::series::run(a).await,
            Command::UpdateMetadata(a) => crate::cli::series::update_metadata(a).await,
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
            Command::Bench(BenchCommand::Security(a)) => {
                tokio::task::spawn_blocking(move || crate::tools::bench_secure::run(a.into()))
                    .await?
            }
            Command::Token(t) => security::token(t).await,
            Command::Restrict(a) => security::restrict(a).await,
            Command::Whoami(a) => security::whoami(a).await,
            Command::Audit(a) => security::audit_cmd(a),
        }
    });
    // Streams cancelled after the shutdown grace may leave blocking work
    // behind; the process does not wait for it long.
    rt.shutdown_timeout(std::time::Duration::from_secs(2));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn ingest(a: IngestArgs) -> anyhow::Result<()> {
    if a.batch == 0 {
        bail!("--batch must be at least 1");
    }
    let sources = crate::io::ingest::plan(&a.files)?;
    let mut client = connect(&a.client).await?;
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
    client: &mut crate::api::client::Client,
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
                    vector_storage: match a.vector_storage {
                        VectorStorageArg::F32 => pb::VectorStorage::F32,
                        VectorStorageArg::F16 => pb::VectorStorage::F16,
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
    let mut client = connect(&a.client).await?;
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
    let threshold = match a.link_threshold {
        Some(t) => Some(t),
        None => link_threshold(&mut client, &a.collection).await,
    };
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
                |h| serde_json::json!({"id": h.id, "distance": h.distance, "matched_faces": h.matched_faces, "quality": h.quality,
                    "metadata": h.metadata, "beyond_link_threshold": threshold.is_some_and(|t| h.distance > t)}),
            )
            .collect();
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    println!("{}", hits_table(&hits, a.group_by_media, threshold));
    if let Some(t) = threshold
        && hits.iter().any(|h| h.distance > t)
    {
        println!(
            "\n\"no match\": farther than {t} (the linking threshold): such a hit would not be linked; it is not a lead"
        );
    }
    Ok(())
}

/// The distance beyond which a hit of `collection` would not link: the
/// stored series' image threshold, else the cosine default of its kind.
async fn link_threshold(client: &mut crate::api::client::Client, collection: &str) -> Option<f32> {
    let info = client
        .describe_collection(pb::DescribeCollectionRequest {
            name: collection.to_string(),
        })
        .await
        .ok()?
        .into_inner();
    let cosine = info.metric == pb::Metric::Cosine as i32;
    if info.kind == pb::Kind::Face as i32 {
        return cosine.then_some(crate::investigate::link::DEFAULT_FACE_THRESHOLD);
    }
    let stored = client
        .list_series(pb::ListSeriesRequest {
            image_collection: collection.to_string(),
            page_size: 1,
            ..Default::default()
        })
        .await
        .ok()
        .and_then(|r| r.into_inner().params)
        .map(|p| p.image_threshold);
    stored.or(cosine.then_some(crate::investigate::link::DEFAULT_IMAGE_THRESHOLD))
}

/// Search hits as a terminal table; grouped by media, with each hit's
/// media and how many of its points matched.
fn hits_table(hits: &[pb::Hit], group_by_media: bool, threshold: Option<f32>) -> String {
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
    if threshold.is_some() {
        header.push("match");
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
        if let Some(limit) = threshold {
            row.push(
                if h.distance > limit {
                    "no match"
                } else {
                    "link"
                }
                .to_string(),
            );
        }
        t.row(row);
    }
    t.render()
}

/// The ids of `vidx get`: the arguments, then the file's lines.
fn get_ids(a: &GetArgs) -> anyhow::Result<Vec<String>> {
    let mut ids = a.ids.clone();
    if let Some(f) = &a.ids_file {
        let text =
            std::fs::read_to_string(f).with_context(|| format!("reading {}", f.display()))?;
        ids.extend(
            text.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(String::from),
        );
    }
    if ids.is_empty() {
        bail!("give point ids as arguments or --ids-file FILE");
    }
    if a.page_size == 0 {
        bail!("--page-size must be at least 1");
    }
    Ok(ids)
}

async fn get(a: GetArgs) -> anyhow::Result<()> {
    let ids = get_ids(&a)?;
    let mut client = connect(&a.client).await?;
    let mut t = table::Table::new(&["id", "media", "upload", "case", "cc", "series"], &[]);
    let mut found = 0usize;
    for page in ids.chunks(a.page_size) {
        let resp = client
            .get(pb::GetRequest {
                collection: a.collection.clone(),
                ids: page.to_vec(),
            })
            .await
            .map_err(status_error)?
            .into_inner();
        found += resp.points.len();
        for p in resp.points {
            let m = p.metadata.unwrap_or_default();
            if a.json {
                println!(
                    "{}",
                    serde_json::json!({"id": p.id, "vector": p.vector, "metadata": m})
                );
            } else {
                t.row(vec![
                    p.id,
                    m.media_id,
                    m.upload_id,
                    m.case_id,
                    m.country,
                    m.series_label,
                ]);
            }
        }
    }
    if !a.json {
        println!("{}", t.render());
    }
    eprintln!("{found} of {} ids found in {}", ids.len(), a.collection);
    Ok(())
}

async fn collections(a: ClientArgs) -> anyhow::Result<()> {
    let mut client = connect(&a).await?;
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
    let mut client = connect(&a.client).await?;
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
