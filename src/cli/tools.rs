//! The flags of the tool commands, `vidx gen` and `vidx bench ann|filter|link`:
//! names, defaults and help texts, turned into the plain options the tools
//! take. The tools are library code and know nothing of the command line.

use std::path::PathBuf;

use crate::io::npy::Dtype;
use crate::tools::bench_ann::{AnnOptions, FilterOptions};
use crate::tools::bench_link::LinkBenchOptions;
use crate::tools::synth::{CountRange, GenOptions, Regimes, Span};

/// Parameters of `vidx gen`. Ranges are inclusive at both ends.
#[derive(clap::Args, Debug, Clone)]
pub struct GenArgs {
    /// Directory to write into; created if missing, its generated files replaced.
    #[arg(long, default_value = "./vidx-gen")]
    pub out: PathBuf,
    /// Seed of the random generator: the same seed and flags give byte-identical files.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Dimension of image and face embeddings.
    #[arg(long, default_value_t = 512)]
    pub dim: usize,
    /// Number of series (victim or scene) to plant.
    #[arg(long, default_value_t = 100)]
    pub series: usize,
    /// Original members per series, MIN..MAX (near-duplicates come on top).
    #[arg(long, default_value = "8..24", value_name = "MIN..MAX")]
    pub members: CountRange,
    /// Fraction of a series' members that get a near-duplicate in another upload.
    #[arg(long, default_value_t = 0.3)]
    pub near_dup_rate: f64,
    /// Hard negatives (similar rooms, in no series) [default: 2 x series].
    #[arg(long)]
    pub hard_negatives: Option<usize>,
    /// Background media that belong to no series [default: 10 x series].
    #[arg(long)]
    pub noise: Option<usize>,
    /// Number of countries uploading (first N of DE FR NL GB US CA AU BR ES IT SE PL ...).
    #[arg(long, default_value_t = 12)]
    pub countries: usize,
    /// Uploads each series is spread over, MIN..MAX.
    #[arg(long, default_value = "2..4", value_name = "MIN..MAX")]
    pub uploads_per_series: CountRange,
    /// Number of uploads [default: max(countries, series appearances / 3)].
    #[arg(long)]
    pub uploads: Option<usize>,
    /// Faces per media, MIN..MAX; media drawing 0 have no face point.
    #[arg(long, default_value = "0..3", value_name = "MIN..MAX")]
    pub faces_per_media: CountRange,
    /// Identities in no series, seen on noise and hard-negative media [default: series, at least 3].
    #[arg(long)]
    pub background_identities: Option<usize>,
    /// Fraction of series whose victim is identified (`victim_identified = true`).
    #[arg(long, default_value_t = 0.3)]
    pub identified_rate: f64,
    /// Fraction of series already known, with a `series_label` such as `S-0007`;
    /// identified series are always among them.
    #[arg(long, default_value_t = 0.5)]
    pub labelled_rate: f64,
    /// Element type of `images.npy` and `faces.npy`.
    #[arg(long, default_value = "f32", value_parser = dtype_arg())]
    pub dtype: Dtype,
    /// Chains of look-alike media between pairs of series (5 media each, in
    /// no series): each is close to the next one only, and the chain's ends
    /// lean towards the two series like hard negatives. Plain single linkage
    /// follows a chain and, at looser thresholds, glues the two series together.
    #[arg(long, default_value_t = 0)]
    pub chains: usize,
    /// Fraction of uploads, the latest ones, held back as a seized set to
    /// triage: written to `seized/` instead of the main files.
    #[arg(long, default_value_t = 0.0)]
    pub seized_fraction: f64,
    #[command(flatten)]
    pub regimes: RegimeArgs,
}

/// The hard regimes of `vidx gen` (the design brief, "Data for tests and
/// demos"); each off by default.
#[derive(clap::Args, Debug, Clone)]
pub struct RegimeArgs {
    /// Scenes per series, MIN..MAX: each scene around its own centroid,
    /// unrelated to the others (cosine near 0); only the victim's face joins them.
    #[arg(long, default_value = "1..1", value_name = "MIN..MAX")]
    pub scenes: CountRange,
    /// Cosine of a series member to its scene centroid, LO..HI.
    #[arg(long, default_value = "0.75..0.95", value_name = "LO..HI")]
    pub member_cos: Span,
    /// Heavy-tailed series sizes: P(n) ∝ n^-2 over --members (many series
    /// of 2–4 media, where no triangle exists; a few large ones).
    #[arg(long)]
    pub heavy_tail: bool,
    /// Fraction of series whose first scene sits next to another series'
    /// scene (centroids at cosine 0.5–0.65): similar rooms, other victims.
    #[arg(long, default_value_t = 0.0)]
    pub sibling_rate: f64,
    /// Fraction of media without any face (the others show at least one);
    /// 0 = as --faces-per-media draws.
    #[arg(long, default_value_t = 0.0)]
    pub faceless_rate: f64,
    /// Cosine of a face to its identity centre, LO..HI.
    #[arg(long, default_value = "0.55..0.85", value_name = "LO..HI")]
    pub face_cos: Span,
    /// Adults (not victims) whose face recurs in several unrelated series.
    #[arg(long, default_value_t = 0)]
    pub recurring_adults: usize,
    /// Series each recurring adult appears in, MIN..MAX.
    #[arg(long, default_value = "2..4", value_name = "MIN..MAX")]
    pub adult_series: CountRange,
    /// Share of those series' members showing the adult, LO..HI.
    #[arg(long, default_value = "0.1..0.25", value_name = "LO..HI")]
    pub adult_share: Span,
}

impl From<RegimeArgs> for Regimes {
    fn from(a: RegimeArgs) -> Self {
        Regimes {
            scenes: a.scenes,
            member_cos: a.member_cos,
            heavy_tail: a.heavy_tail,
            sibling_rate: a.sibling_rate,
            faceless_rate: a.faceless_rate,
            face_cos: a.face_cos,
            recurring_adults: a.recurring_adults,
            adult_series: a.adult_series,
            adult_share: a.adult_share,
        }
    }
}

/// `--dtype`: one of [`Dtype::ALL`] by name, listed in `--help`. The
/// element type stays a plain type of `io`; only its parser is clap's.
fn dtype_arg() -> impl clap::builder::TypedValueParser<Value = Dtype> {
    use clap::builder::TypedValueParser;
    clap::builder::PossibleValuesParser::new(Dtype::ALL.map(Dtype::name))
        .try_map(|name| name.parse::<Dtype>())
}

impl From<GenArgs> for GenOptions {
    fn from(a: GenArgs) -> Self {
        GenOptions {
            out: a.out,
            seed: a.seed,
            dim: a.dim,
            series: a.series,
            members: a.members,
            near_dup_rate: a.near_dup_rate,
            hard_negatives: a.hard_negatives,
            noise: a.noise,
            countries: a.countries,
            uploads_per_series: a.uploads_per_series,
            uploads: a.uploads,
            faces_per_media: a.faces_per_media,
            background_identities: a.background_identities,
            identified_rate: a.identified_rate,
            labelled_rate: a.labelled_rate,
            dtype: a.dtype,
            chains: a.chains,
            seized_fraction: a.seized_fraction,
            regimes: a.regimes.into(),
        }
    }
}

/// Options of `vidx bench ann`.
#[derive(clap::Args, Debug, Clone)]
pub struct AnnArgs {
    /// `image` (clustered unit vectors, cosine), `sift` (128-d, non-negative,
    /// L2), or a file of base vectors: `.npy` or `.fvecs`.
    #[arg(long, default_value = "image")]
    pub dataset: String,
    /// Query vectors for a file dataset (`.npy` or `.fvecs`); without it,
    /// `--queries` evenly spaced rows of the file (at most a tenth) are held
    /// out as the queries.
    #[arg(long)]
    pub queries_file: Option<PathBuf>,
    /// Ground truth for a file dataset (`.ivecs`); computed exactly if absent.
    #[arg(long)]
    pub gt_file: Option<PathBuf>,
    /// Metric of a file dataset.
    #[arg(long, default_value = "l2")]
    pub metric: String,
    /// Points of a generated dataset (a file dataset keeps its own count
    /// unless this is smaller).
    #[arg(long, default_value_t = 100_000)]
    pub n: usize,
    /// Queries (held out, same distribution as the base).
    #[arg(long, default_value_t = 1000)]
    pub queries: usize,
    /// Dimension of the `image` dataset (`sift` is always 128).
    #[arg(long, default_value_t = 512)]
    pub dim: usize,
    /// Neighbours per query; recall is recall@k.
    #[arg(long, default_value_t = 10)]
    pub k: usize,
    /// HNSW links per node (upper layers; twice as many on layer 0).
    #[arg(long, default_value_t = 16)]
    pub m: usize,
    /// HNSW build breadth.
    #[arg(long, default_value_t = 200)]
    pub ef_construction: usize,
    /// The ef sweep.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "10,16,24,32,48,64,96,128,192,256,384,512"
    )]
    pub efs: Vec<usize>,
    /// Which modes to run: mutable, sealed, sealed-sq8, sealed-sq4,
    /// sealed-f16, sealed-sq8-f16 (f16 vector storage), grpc, grpc-sq8, and
    /// hnsw_rs (a peer; needs the `peer-hnsw-rs` feature).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "mutable,sealed,sealed-sq8,sealed-sq4,grpc,grpc-sq8"
    )]
    pub modes: Vec<String>,
    /// Concurrent gRPC clients for the batched throughput run.
    #[arg(long, default_value_t = 4)]
    pub clients: usize,
    /// Queries per gRPC request in the batched run.
    #[arg(long, default_value_t = 50)]
    pub batch: usize,
    /// Seed of the generated dataset and queries.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Write the dataset here (base.npy, query.npy, gt.npy, meta.json).
    #[arg(long)]
    pub export: Option<PathBuf>,
    /// Write vidx-<mode>.json here.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Scratch directory for the sealed segment (default: a temp dir).
    #[arg(long)]
    pub work_dir: Option<PathBuf>,
}

impl From<AnnArgs> for AnnOptions {
    fn from(a: AnnArgs) -> Self {
        AnnOptions {
            dataset: a.dataset,
            queries_file: a.queries_file,
            gt_file: a.gt_file,
            metric: a.metric,
            n: a.n,
            queries: a.queries,
            dim: a.dim,
            k: a.k,
            m: a.m,
            ef_construction: a.ef_construction,
            efs: a.efs,
            modes: a.modes,
            clients: a.clients,
            batch: a.batch,
            seed: a.seed,
            export: a.export,
            out: a.out,
            work_dir: a.work_dir,
        }
    }
}

/// `vidx bench filter`: QPS and recall of filtered search at planted
/// selectivities beside unfiltered search on the same collection.
#[derive(clap::Args, Debug, Clone)]
pub struct FilterBenchArgs {
    /// Points of the generated (clustered, cosine) collection.
    #[arg(long, default_value_t = 100_000)]
    pub n: usize,
    /// Queries per selectivity.
    #[arg(long, default_value_t = 200)]
    pub queries: usize,
    /// Dimension of the vectors.
    #[arg(long, default_value_t = 512)]
    pub dim: usize,
    /// Neighbours per query; recall is recall@k.
    #[arg(long, default_value_t = 10)]
    pub k: usize,
    /// Search breadth.
    #[arg(long, default_value_t = 128)]
    pub ef: usize,
    /// Seed of the vectors and the selectivity tags.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
}

impl From<FilterBenchArgs> for FilterOptions {
    fn from(a: FilterBenchArgs) -> Self {
        FilterOptions {
            n: a.n,
            queries: a.queries,
            dim: a.dim,
            k: a.k,
            ef: a.ef,
            seed: a.seed,
        }
    }
}

/// `vidx bench pdq`: exact radius search over random-plus-planted 256-bit
/// hashes, beside FAISS with `--peers`.
#[derive(clap::Args, Debug, Clone)]
pub struct PdqBenchArgs {
    /// Hashes in the index (planted near-copies included).
    #[arg(long, default_value_t = 1_000_000)]
    pub n: usize,
    /// Queries, each with its planted near-copies.
    #[arg(long, default_value_t = 1000)]
    pub queries: usize,
    /// Near-copies planted per query within the radius (plus one decoy
    /// just outside).
    #[arg(long, default_value_t = 4)]
    pub planted: usize,
    /// Match radius in bits (PDQ's customary match: 31).
    #[arg(long, default_value_t = 31)]
    pub radius: u32,
    /// Seed of the hashes and queries.
    #[arg(long, default_value_t = 17)]
    pub seed: u64,
    /// Directory for the segment files and the peers' input [default: a
    /// temp dir]; 10M hashes need ~1.2 GB there.
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// A Python with faiss-cpu (see benches/pdq/README.md): also run FAISS
    /// IndexBinaryFlat and IndexBinaryMultiHash on the same hashes.
    #[arg(long)]
    pub peers: Option<PathBuf>,
}

impl From<PdqBenchArgs> for crate::tools::bench_pdq::PdqOptions {
    fn from(a: PdqBenchArgs) -> Self {
        crate::tools::bench_pdq::PdqOptions {
            n: a.n,
            queries: a.queries,
            planted: a.planted,
            radius: a.radius,
            seed: a.seed,
            dir: a.dir,
            peers: a.peers,
        }
    }
}

/// Options of `vidx bench link`.
#[derive(clap::Args, Debug, Clone)]
pub struct LinkBenchArgs {
    /// Number of series to plant [default: 100 a grid cell, 200 with
    /// --sweep; with --scale, from --images].
    #[arg(long)]
    pub series: Option<usize>,
    /// The grid's regimes (base, scenes, tiny, moderate, siblings,
    /// faceless, adults, mixed, beyond).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "base,scenes,tiny,moderate,siblings,faceless,adults,mixed,beyond"
    )]
    pub regimes: Vec<String>,
    /// The grid's seeds.
    #[arg(long, value_delimiter = ',', default_value = "42,43,44")]
    pub seeds: Vec<u64>,
    /// Instead of the grid: one set (--seed), every rule at every
    /// threshold of --thresholds, and its triage.
    #[arg(long)]
    pub sweep: bool,
    /// Seed of the generator (--sweep, --scale).
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Dimension of the generated embeddings.
    #[arg(long, default_value_t = 512)]
    pub dim: usize,
    /// Chains of look-alike media between pairs of series (`vidx gen
    /// --chains`), which single linkage follows [default: series / 4].
    #[arg(long)]
    pub chains: Option<usize>,
    /// Image thresholds (cosine distance) of the quality sweep; the default
    /// threshold is always added.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "0.28,0.32,0.36,0.40,0.44,0.48"
    )]
    pub thresholds: Vec<f32>,
    /// Fraction of uploads, earliest first, that form the triage database;
    /// the rest are the seized set.
    #[arg(long, default_value_t = 0.7)]
    pub database_fraction: f64,
    /// Run the triage benchmark [default: yes, but no with --scale].
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    pub triage: Option<bool>,
    /// Scale mode: one set of about --images media (0..2 faces each),
    /// linked once at the defaults, with time per stage and peak memory.
    #[arg(long)]
    pub scale: bool,
    /// Image points wanted in scale mode.
    #[arg(long, default_value_t = 200_000)]
    pub images: usize,
    /// Use the set `vidx gen` wrote in this directory instead of generating one.
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Keep the generated set and the ingested registries here and reuse
    /// them on the next run with the same set (default: a temp dir).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Points per upsert batch.
    #[arg(long, default_value_t = 2000)]
    pub batch: usize,
    /// Write every figure to this JSON file.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

impl From<LinkBenchArgs> for LinkBenchOptions {
    fn from(a: LinkBenchArgs) -> Self {
        LinkBenchOptions {
            series: a.series,
            regimes: a.regimes,
            seeds: a.seeds,
            sweep: a.sweep,
            seed: a.seed,
            dim: a.dim,
            chains: a.chains,
            thresholds: a.thresholds,
            database_fraction: a.database_fraction,
            triage: a.triage,
            scale: a.scale,
            images: a.images,
            data: a.data,
            data_dir: a.data_dir,
            batch: a.batch,
            out: a.out,
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Gen {
        #[command(flatten)]
        g: GenArgs,
    }

    #[test]
    fn gen_flags_default_to_the_generators_defaults() {
        // `bench link` makes its sets from `GenOptions::default()`: the
        // same set as `vidx gen` without flags.
        let g: GenOptions = Gen::try_parse_from(["gen"]).unwrap().g.into();
        assert_eq!(g, GenOptions::default());
        let g: GenOptions = Gen::try_parse_from([
            "gen",
            "--members",
            "3..=5",
            "--dtype",
            "f16",
            "--noise",
            "7",
        ])
        .unwrap()
        .g
        .into();
        assert_eq!(
            (g.members, g.dtype, g.noise),
            (CountRange { min: 3, max: 5 }, Dtype::F16, Some(7))
        );
        assert!(Gen::try_parse_from(["gen", "--dtype", "f64"]).is_err());
        assert!(Gen::try_parse_from(["gen", "--members", "9..2"]).is_err());
    }
}

/// `vidx bench security`: batched search QPS with TLS, tokens and the audit
/// log on, beside the plain server, in one run.
#[derive(clap::Args, Debug, Clone)]
pub struct SecurityBenchArgs {
    /// Points of the generated collection (sealed).
    #[arg(long, default_value_t = 50_000)]
    pub n: usize,
    /// Dimension of the vectors.
    #[arg(long, default_value_t = 128)]
    pub dim: usize,
    /// Queries per round and server.
    #[arg(long, default_value_t = 20_000)]
    pub queries: usize,
    /// Concurrent clients (each with its own token).
    #[arg(long, default_value_t = 4)]
    pub clients: usize,
    /// Queries per request.
    #[arg(long, default_value_t = 50)]
    pub batch: usize,
    /// Neighbours per query.
    #[arg(long, default_value_t = 10)]
    pub k: usize,
    /// Search breadth.
    #[arg(long, default_value_t = 64)]
    pub ef: usize,
    /// Rounds, alternating plain and secure; the medians are compared.
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
    /// Seed of the vectors.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
}

impl From<SecurityBenchArgs> for crate::tools::bench_secure::SecurityBenchOptions {
    fn from(a: SecurityBenchArgs) -> Self {
        crate::tools::bench_secure::SecurityBenchOptions {
            n: a.n,
            dim: a.dim,
            queries: a.queries,
            clients: a.clients,
            batch: a.batch,
            k: a.k,
            ef: a.ef,
            rounds: a.rounds,
            seed: a.seed,
        }
    }
}
