//! The synthetic data generator behind `vidx gen`.
//!
//! There is no real embedding data to ship and there must never be real abuse
//! data anywhere, so tests, demos and benchmarks run on vectors this module
//! invents, with structure planted to look like the real thing and the ground
//! truth written beside it (`data-samples/README.md` describes the demo set):
//!
//! - **image points** (unit vectors, cosine), one per media: series centroids
//!   uniform on the sphere; series members at cosine U[0.75, 0.95] to their
//!   centroid; near-duplicates (re-encodes, crops) at cosine U[0.97, 0.995] to
//!   their source member, keeping the source's cosine to the centroid; hard
//!   negatives (similar rooms, in no series) at cosine U[0.5, 0.65] to a series
//!   centroid; background noise uniform on the sphere;
//! - **uploads**: one agency of one country, in a case; every series is spread
//!   over 2–4 uploads from at least two countries, captured in 2012–2024 and
//!   uploaded after capture; uploads mix several series with noise;
//! - **face points**: per series a victim identity and a companion identity,
//!   plus background identities for noise media; faces at cosine U[0.55, 0.85]
//!   to their identity centre, 0–3 faces per media (some media have none); a
//!   near-duplicate media carries near-copies of its source's faces. Face point
//!   id is `<media_id>#<n>`; its metadata is its media's.
//!
//! [`run`] writes `images.npy` + `images.jsonl`, `faces.npy` + `faces.jsonl`
//! (line `i` of the JSON-lines file describes row `i` of the matrix, as a
//! [`PointLine`]) and `truth.json` (a [`Truth`]). Everything is drawn from one
//! `ChaCha8Rng` seeded by `--seed`, so a seed gives byte-identical files. Each
//! vector is computed from its own recorded sub-seed when it is written, so a
//! large set streams to disk without being held in memory.

use std::collections::HashSet;
use std::fmt;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use anyhow::{Context, Result, bail, ensure};
use rand::seq::{IndexedRandom, SliceRandom, index};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;
use serde::{Deserialize, Serialize};

use crate::io::npy::{Dtype, NpyWriter};
use crate::io::pointline::PointLine;
use crate::pb::Metadata;

/// Cosine of a series member to its series centroid.
pub const MEMBER_COS: [f64; 2] = [0.75, 0.95];
/// Cosine of a near-duplicate to its source member (image or face).
pub const NEAR_DUP_COS: [f64; 2] = [0.97, 0.995];
/// Cosine of a hard negative to the centroid of the series it imitates.
pub const HARD_NEGATIVE_COS: [f64; 2] = [0.5, 0.65];
/// Cosine of a face to its identity centre.
pub const FACE_COS: [f64; 2] = [0.55, 0.85];

/// Real ISO 3166-1 alpha-2 codes; `--countries N` uses the first N.
pub const COUNTRY_CODES: &[&str] = &[
    "DE", "FR", "NL", "GB", "US", "CA", "AU", "BR", "ES", "IT", "SE", "PL", "BE", "AT", "CH", "DK",
    "NO", "FI", "IE", "PT", "CZ", "NZ", "JP", "MX", "AR", "CL", "ZA", "KR", "PH", "TH",
];

/// Synthetic unit names for agencies, `<CC>-<UNIT>-<n>`.
const UNITS: &[&str] = &["VIU", "CEU", "ICU", "CPU"];
/// Scenes a series (and the hard negatives imitating it) is shot in.
const SCENES: &[&[&str]] = &[
    &["bedroom", "indoor"],
    &["bathroom", "indoor"],
    &["indoor", "living-room"],
    &["garden", "outdoor"],
    &["outdoor"],
];

const DAY: i64 = 86_400;
const YEAR: i64 = 365 * DAY;
/// 2012-01-01T00:00:00Z: earliest `captured_at`.
const CAPTURE_FROM: i64 = 1_325_376_000;
/// 2024-12-31T23:59:59Z: latest `captured_at`.
const CAPTURE_UNTIL: i64 = 1_735_689_599;
/// 2012-06-01T00:00:00Z: earliest `uploaded_at`.
const UPLOAD_FROM: i64 = 1_338_508_800;
/// 2025-06-30T23:59:59Z: latest `uploaded_at`.
const UPLOAD_UNTIL: i64 = 1_751_327_999;

/// Media per `--chains` chain.
const CHAIN_LEN: usize = 5;
/// Cosine of a chain's end to its series' centroid: near the top of the
/// hard-negative range, so a chain touches its series only at looser
/// thresholds than the default. Next
/// steps are at cosine ~0.66 (w² cos 22.5° + (1 − w²)/2), two steps apart
/// ~0.27.
const CHAIN_SERIES_WEIGHT: f64 = 0.62;

/// Probability that a new upload joins an earlier case of its country.
const JOIN_CASE_P: f64 = 0.4;
/// Probability that the first face of a series media is the victim (else the companion).
const VICTIM_FIRST_P: f64 = 0.8;

/// An inclusive count range given as `MIN..MAX` (or `MIN..=MAX`, or `N`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CountRange {
    /// Smallest count.
    pub min: usize,
    /// Largest count, inclusive.
    pub max: usize,
}

impl FromStr for CountRange {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let num = |t: &str| {
            t.trim()
                .parse::<usize>()
                .map_err(|_| format!("{s:?} is not MIN..MAX with non-negative integers"))
        };
        let (min, max) = match s.split_once("..") {
            Some((a, b)) => (num(a)?, num(b.strip_prefix('=').unwrap_or(b))?),
            None => {
                let n = num(s)?;
                (n, n)
            }
        };
        if min > max {
            return Err(format!("{s:?}: MIN is larger than MAX"));
        }
        Ok(CountRange { min, max })
    }
}

impl fmt::Display for CountRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}..{}", self.min, self.max)
    }
}

impl CountRange {
    fn draw(self, rng: &mut ChaCha8Rng) -> usize {
        rng.random_range(self.min..=self.max)
    }
}

/// Parameters of `vidx gen` (its flags are in `cli::tools`). Ranges are
/// inclusive at both ends; `None` takes a default that depends on others.
#[derive(Debug, Clone, PartialEq)]
pub struct GenOptions {
    /// Directory to write into; created if missing, its generated files replaced.
    pub out: PathBuf,
    /// Seed of the random generator.
    pub seed: u64,
    /// Dimension of image and face embeddings.
    pub dim: usize,
    /// Series (victim or scene) to plant.
    pub series: usize,
    /// Original members per series (near-duplicates come on top).
    pub members: CountRange,
    /// Fraction of a series' members that get a near-duplicate in another upload.
    pub near_dup_rate: f64,
    /// Hard negatives [default: 2 x series].
    pub hard_negatives: Option<usize>,
    /// Background media in no series [default: 10 x series].
    pub noise: Option<usize>,
    /// Countries uploading: the first N of [`COUNTRY_CODES`].
    pub countries: usize,
    /// Uploads each series is spread over.
    pub uploads_per_series: CountRange,
    /// Uploads [default: max(countries, series appearances / 3)].
    pub uploads: Option<usize>,
    /// Faces per media.
    pub faces_per_media: CountRange,
    /// Identities in no series [default: series, at least 3].
    pub background_identities: Option<usize>,
    /// Fraction of series whose victim is identified.
    pub identified_rate: f64,
    /// Fraction of series already known (labelled); identified ones always are.
    pub labelled_rate: f64,
    /// Element type of `images.npy` and `faces.npy`.
    pub dtype: Dtype,
    /// Chains of look-alike media between pairs of series.
    pub chains: usize,
    /// Fraction of uploads, the latest ones, written to `seized/`.
    pub seized_fraction: f64,
}

impl Default for GenOptions {
    /// The defaults of `vidx gen`'s flags.
    fn default() -> Self {
        GenOptions {
            out: PathBuf::from("./vidx-gen"),
            seed: 42,
            dim: 512,
            series: 100,
            members: CountRange { min: 8, max: 24 },
            near_dup_rate: 0.3,
            hard_negatives: None,
            noise: None,
            countries: 12,
            uploads_per_series: CountRange { min: 2, max: 4 },
            uploads: None,
            faces_per_media: CountRange { min: 0, max: 3 },
            background_identities: None,
            identified_rate: 0.3,
            labelled_rate: 0.5,
            dtype: Dtype::F32,
            chains: 0,
            seized_fraction: 0.0,
        }
    }
}

/// The resolved generator parameters, recorded in `truth.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Params {
    /// `--seed`.
    pub seed: u64,
    /// `--dim`.
    pub dim: usize,
    /// `--series`.
    pub series: usize,
    /// `--members` as `[min, max]`.
    pub members: [usize; 2],
    /// `--near-dup-rate`.
    pub near_dup_rate: f64,
    /// `--hard-negatives`, resolved.
    pub hard_negatives: usize,
    /// `--noise`, resolved.
    pub noise: usize,
    /// The country codes in use (`--countries`).
    pub countries: Vec<String>,
    /// `--uploads`, resolved.
    pub uploads: usize,
    /// `--uploads-per-series` as `[min, max]`.
    pub uploads_per_series: [usize; 2],
    /// `--faces-per-media` as `[min, max]`.
    pub faces_per_media: [usize; 2],
    /// `--background-identities`, resolved.
    pub background_identities: usize,
    /// `--identified-rate`.
    pub identified_rate: f64,
    /// `--labelled-rate`.
    pub labelled_rate: f64,
    /// `--dtype`.
    pub dtype: Dtype,
    /// `--seized-fraction`.
    #[serde(default, skip_serializing_if = "is_zero_f64")]
    pub seized_fraction: f64,
    /// `--chains`.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub chains: usize,
}

fn is_zero_f64(x: &f64) -> bool {
    *x == 0.0
}

fn is_zero(x: &usize) -> bool {
    *x == 0
}

impl Params {
    /// The `vidx gen` flags that regenerate this set (all but `--out`).
    pub fn command(&self) -> String {
        let dtype = self.dtype.name();
        format!(
            "vidx gen --seed {} --dim {} --series {} --members {}..{} --near-dup-rate {} \
             --hard-negatives {} --noise {} --countries {} --uploads {} \
             --uploads-per-series {}..{} --faces-per-media {}..{} --background-identities {} \
             --identified-rate {} --labelled-rate {} --dtype {dtype}{}",
            self.seed,
            self.dim,
            self.series,
            self.members[0],
            self.members[1],
            self.near_dup_rate,
            self.hard_negatives,
            self.noise,
            self.countries.len(),
            self.uploads,
            self.uploads_per_series[0],
            self.uploads_per_series[1],
            self.faces_per_media[0],
            self.faces_per_media[1],
            self.background_identities,
            self.identified_rate,
            self.labelled_rate,
            if self.seized_fraction > 0.0 {
                format!(" --seized-fraction {}", self.seized_fraction)
            } else {
                String::new()
            } + &if self.chains > 0 {
                format!(" --chains {}", self.chains)
            } else {
                String::new()
            },
        )
    }
}

/// The cosine ranges planted, recorded in `truth.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Planted {
    /// Series member (and its near-duplicates) to series centroid.
    pub member_to_centroid: [f64; 2],
    /// Near-duplicate to its source member.
    pub near_duplicate_to_source: [f64; 2],
    /// Hard negative to the centroid of the series it imitates.
    pub hard_negative_to_centroid: [f64; 2],
    /// Face to its identity centre (near-duplicate faces included).
    pub face_to_identity: [f64; 2],
    /// Face of a near-duplicate media to the same face of the source media.
    pub near_duplicate_face_to_source_face: [f64; 2],
}

/// What `vidx gen` wrote: counts per kind. Also stored as `counts` in `truth.json`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct GenSummary {
    /// The output directory (not stored in `truth.json`).
    #[serde(skip)]
    pub out: PathBuf,
    /// Dimension of every vector.
    pub dim: usize,
    /// Element type of the `.npy` files.
    pub dtype: Dtype,
    /// Image points (= media): members + near-duplicates + hard negatives + noise.
    pub images: usize,
    /// Face points.
    pub faces: usize,
    /// Series planted.
    pub series: usize,
    /// Original series members.
    pub members: usize,
    /// Near-duplicates of members (also series media).
    pub near_duplicates: usize,
    /// Hard negatives.
    pub hard_negatives: usize,
    /// Background noise media.
    pub noise: usize,
    /// Media without any face point.
    pub media_without_faces: usize,
    /// Face identities (victims, companions, background).
    pub identities: usize,
    /// Uploads.
    pub uploads: usize,
    /// Cases.
    pub cases: usize,
    /// Distinct countries among the media.
    pub countries: usize,
    /// Chain media (`--chains`), in no series (included in `images`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub chain_media: usize,
    /// Image points written to `seized/` (included in `images`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub seized_images: usize,
    /// Face points written to `seized/` (included in `faces`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub seized_faces: usize,
}

impl fmt::Display for GenSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let dtype = self.dtype.name();
        writeln!(
            f,
            "wrote {} image points to {}: {} series ({} members + {} near-duplicates), \
             {} hard negatives, {} noise{}",
            self.images,
            self.out.display(),
            self.series,
            self.members,
            self.near_duplicates,
            self.hard_negatives,
            self.noise,
            if self.chain_media > 0 {
                format!(", {} chain media", self.chain_media)
            } else {
                String::new()
            },
        )?;
        writeln!(
            f,
            "      {} face points of {} identities ({} media without a face)",
            self.faces, self.identities, self.media_without_faces
        )?;
        write!(
            f,
            "      {} uploads in {} cases from {} countries; {}-d {dtype}; ground truth in truth.json",
            self.uploads, self.cases, self.countries, self.dim
        )?;
        if self.seized_images > 0 {
            write!(
                f,
                "\n      held back as a seized set in seized/: {} image points, {} face points",
                self.seized_images, self.seized_faces
            )?;
        }
        Ok(())
    }
}

/// An upload in `truth.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TruthUpload {
    /// `upload_id`.
    pub upload_id: String,
    /// `case_id`.
    pub case_id: String,
    /// ISO 3166-1 alpha-2 country code.
    pub country: String,
    /// Uploading agency.
    pub agency: String,
    /// Unix seconds.
    pub uploaded_at: i64,
}

/// A near-duplicate and its source, both media ids.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TruthNearDup {
    /// The near-duplicate.
    pub media_id: String,
    /// The member it was derived from.
    pub source: String,
}

/// A planted series in `truth.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TruthSeries {
    /// Series index (0-based).
    pub index: usize,
    /// `series_label` on its media (`S-0007`), empty if the series is not yet known.
    pub label: String,
    /// `victim_identified` on its media.
    pub victim_identified: bool,
    /// Every media of the series: original members, then near-duplicates.
    pub members: Vec<String>,
    /// Which members are near-duplicates of which source member.
    pub near_duplicates: Vec<TruthNearDup>,
    /// Uploads holding its media.
    pub uploads: Vec<String>,
    /// Countries of those uploads, sorted.
    pub countries: Vec<String>,
    /// Capture window, Unix seconds.
    pub captured_from: i64,
    /// Capture window end, Unix seconds.
    pub captured_until: i64,
    /// Index of the victim's face identity.
    pub victim_identity: usize,
    /// Index of the companion identity (another person in the series).
    pub companion_identity: usize,
}

/// A hard negative in `truth.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TruthHardNegative {
    /// The media.
    pub media_id: String,
    /// Index of the series whose scene it imitates (it is not a member).
    pub series: usize,
}

/// A chain of look-alike media in `truth.json`, in chain order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TruthChain {
    /// The two series it runs between.
    pub series: [usize; 2],
    pub media: Vec<String>,
}

/// A face identity in `truth.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TruthIdentity {
    /// Identity index.
    pub index: usize,
    /// `victim`, `companion` or `background`.
    pub kind: String,
    /// The series of a victim or companion.
    pub series: Option<usize>,
    /// Its face point ids.
    pub faces: Vec<String>,
}

/// Contents of `truth.json`: the ground truth of a generated set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Truth {
    /// `vidx-gen-truth/1`.
    pub format: String,
    /// The command that regenerates the set.
    pub command: String,
    /// Resolved parameters.
    pub params: Params,
    /// Cosine ranges planted.
    pub planted: Planted,
    /// Counts per kind.
    pub counts: GenSummary,
    /// Uploads in time order.
    pub uploads: Vec<TruthUpload>,
    /// Series by index.
    pub series: Vec<TruthSeries>,
    /// Hard negatives.
    pub hard_negatives: Vec<TruthHardNegative>,
    /// Noise media ids.
    pub noise: Vec<String>,
    /// Face identities by index: victims (= series index), companions, background.
    pub identities: Vec<TruthIdentity>,
    /// Chains of look-alike media between two series (`--chains`); their
    /// media are also listed in `hard_negatives` (under the first series).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub chains: Vec<TruthChain>,
    /// Uploads held back in `seized/` (`--seized-fraction`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub seized_uploads: Vec<String>,
}

/// Truth format tag.
pub const TRUTH_FORMAT: &str = "vidx-gen-truth/1";

/// Generates the data set described by `opts` into `opts.out`.
pub fn run(opts: &GenOptions) -> Result<GenSummary> {
    let plan = Plan::new(opts)?;
    let out = &opts.out;
    std::fs::create_dir_all(out)
        .with_context(|| format!("creating output directory {}", out.display()))?;
    // Uploads are in time order: the seized set is the latest ones.
    let cut = plan.uploads.len()
        - ((plan.params.seized_fraction * plan.uploads.len() as f64).ceil() as usize)
            .min(plan.uploads.len());
    let seized = |m: usize| plan.media[m].upload >= cut;
    let dirs: Vec<(PathBuf, bool)> = if cut < plan.uploads.len() {
        let d = out.join("seized");
        std::fs::create_dir_all(&d).with_context(|| format!("creating {}", d.display()))?;
        vec![(out.clone(), false), (d, true)]
    } else {
        vec![(out.clone(), false)]
    };
    let mut summary = plan.summary();
    for (dir, held) in &dirs {
        let images: Vec<usize> = plan
            .image_order
            .iter()
            .copied()
            .filter(|&m| seized(m) == *held)
            .collect();
        let mut image_writer = NpyWriter::create(
            &dir.join("images.npy"),
            images.len(),
            plan.params.dim,
            plan.params.dtype,
        )?;
        let mut image_lines = JsonLines::create(&dir.join("images.jsonl"))?;
        for &m in &images {
            image_writer.write_row(&to_f32(&plan.image_vector(m)))?;
            image_lines.write(&PointLine {
                id: plan.media[m].id.clone(),
                vector: None,
                metadata: plan.metadata(m),
            })?;
        }
        image_writer.finish()?;
        image_lines.finish()?;

        let faces: Vec<(usize, usize)> = plan
            .face_order
            .iter()
            .copied()
            .filter(|&(m, _)| seized(m) == *held)
            .collect();
        let mut face_writer = NpyWriter::create(
            &dir.join("faces.npy"),
            faces.len(),
            plan.params.dim,
            plan.params.dtype,
        )?;
        let mut face_lines = JsonLines::create(&dir.join("faces.jsonl"))?;
        for &(m, f) in &faces {
            face_writer.write_row(&to_f32(&plan.face_vector(m, f)))?;
            face_lines.write(&PointLine {
                id: face_id(&plan.media[m].id, f),
                vector: None,
                metadata: plan.metadata(m),
            })?;
        }
        face_writer.finish()?;
        face_lines.finish()?;
        if *held {
            summary.seized_images = images.len();
            summary.seized_faces = faces.len();
        }
    }

    let mut truth = plan.truth(summary.clone());
    truth.seized_uploads = plan.uploads[cut..].iter().map(|u| u.id.clone()).collect();
    write_truth(&out.join("truth.json"), &truth)?;
    summary.out = out.clone();
    Ok(summary)
}

fn write_truth(path: &Path, truth: &Truth) -> Result<()> {
    let file = File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut w = BufWriter::new(file);
    serde_json::to_writer_pretty(&mut w, truth)
        .with_context(|| format!("writing {}", path.display()))?;
    w.write_all(b"\n")
        .and_then(|()| w.flush())
        .with_context(|| format!("writing {}", path.display()))
}

/// Id of face `n` of a media.
fn face_id(media_id: &str, n: usize) -> String {
    format!("{media_id}#{n}")
}

fn to_f32(v: &[f64]) -> Vec<f32> {
    v.iter().map(|&x| x as f32).collect()
}

/// A buffered JSON-lines file.
struct JsonLines {
    path: PathBuf,
    w: BufWriter<File>,
}

impl JsonLines {
    fn create(path: &Path) -> Result<Self> {
        let file = File::create(path).with_context(|| format!("creating {}", path.display()))?;
        Ok(JsonLines {
            path: path.to_path_buf(),
            w: BufWriter::new(file),
        })
    }

    fn write(&mut self, line: &PointLine) -> Result<()> {
        serde_json::to_writer(&mut self.w, line)
            .map_err(std::io::Error::from)
            .and_then(|()| self.w.write_all(b"\n"))
            .with_context(|| format!("writing {}", self.path.display()))
    }

    fn finish(mut self) -> Result<()> {
        self.w
            .flush()
            .with_context(|| format!("writing {}", self.path.display()))
    }
}

/// How a vector is made; computed on demand from its own sub-seed.
#[derive(Debug, Clone, Copy)]
enum Recipe {
    /// Uniform on the sphere.
    Sphere { seed: u64 },
    /// At cosine `cos` to anchor `anchor` (a series centroid or identity centre).
    Around { anchor: usize, cos: f64, seed: u64 },
    /// At cosine `cos` to the same vector of media `source`, keeping that
    /// vector's cosine to `anchor`.
    NearCopy {
        anchor: usize,
        source: usize,
        cos: f64,
        seed: u64,
    },
    /// A step of a chain between series centroids `a` and `b`: weight
    /// [`CHAIN_SERIES_WEIGHT`] at angle `phi` from `a` towards `b` in their
    /// plane, the rest random directions shared with each neighbouring step
    /// (`noise`: the seeds of the two shared directions).
    Chain {
        a: usize,
        b: usize,
        phi: f64,
        noise: [u64; 2],
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Member { series: usize },
    NearDup { series: usize, source: usize },
    HardNegative { series: usize },
    Chain { a: usize, b: usize },
    Noise,
}

#[derive(Debug, Clone)]
struct Face {
    identity: usize,
    recipe: Recipe,
}

#[derive(Debug, Clone)]
struct Media {
    id: String,
    role: Role,
    upload: usize,
    captured_at: i64,
    tags: Vec<&'static str>,
    image: Recipe,
    faces: Vec<Face>,
}

#[derive(Debug, Clone)]
struct Upload {
    id: String,
    case_id: String,
    country: &'static str,
    agency: String,
    uploaded_at: i64,
}

#[derive(Debug, Clone)]
struct Series {
    label: String,
    identified: bool,
    uploads: Vec<usize>,
    captured_from: i64,
    captured_until: i64,
    scene: usize,
    members: Vec<usize>,
    near_dups: Vec<usize>,
}

/// Everything about a set except the vectors themselves.
struct Plan {
    params: Params,
    centroids: Vec<Vec<f64>>,
    identity_centres: Vec<Vec<f64>>,
    uploads: Vec<Upload>,
    cases: usize,
    series: Vec<Series>,
    media: Vec<Media>,
    image_order: Vec<usize>,
    face_order: Vec<(usize, usize)>,
}

impl Plan {
    /// Draws a whole plan from one random stream seeded by `--seed`. What a
    /// seed gives depends on the order of the draws: the stages below run in
    /// that order, and each draws in its own fixed order.
    fn new(opts: &GenOptions) -> Result<Plan> {
        let params = resolve(opts)?;
        let mut d = Draw {
            rng: ChaCha8Rng::seed_from_u64(params.seed),
            seen_ids: HashSet::new(),
            media: Vec::new(),
        };
        let centroids = d.units(params.series, params.dim);
        // Victims 0..S, companions S..2S, background 2S..2S+B.
        let identity_centres =
            d.units(2 * params.series + params.background_identities, params.dim);
        let countries: Vec<&'static str> = COUNTRY_CODES[..params.countries.len()].to_vec();
        let agencies = d.agencies(&countries);
        let shapes = d.series_shapes(&params);
        let uploads = d.uploads(&params, &countries, &agencies);
        let series: Vec<Series> = shapes
            .iter()
            .enumerate()
            .map(|(s, &(members, spread))| d.series(&params, &uploads, s, members, spread))
            .collect();
        d.hard_negatives(&params, &series, &uploads);
        d.chains(&params, &series, &uploads);
        d.noise(&params, &uploads);
        d.faces(&params);
        let (image_order, face_order) = d.row_orders();
        Ok(Plan {
            params,
            centroids,
            identity_centres,
            uploads: uploads.list,
            cases: uploads.cases,
            series,
            media: d.media,
            image_order,
            face_order,
        })
    }

    /// The image vector of media `m`.
    fn image_vector(&self, m: usize) -> Vec<f64> {
        match self.media[m].image {
            Recipe::Chain { a, b, phi, noise } => {
                let dim = self.params.dim;
                let u0 = random_unit(&mut ChaCha8Rng::seed_from_u64(noise[0]), dim);
                let u1 = random_unit(&mut ChaCha8Rng::seed_from_u64(noise[1]), dim);
                let (ca, cb) = (&self.centroids[a], &self.centroids[b]);
                let w = CHAIN_SERIES_WEIGHT;
                let r = (1.0 - w * w).sqrt() * std::f64::consts::FRAC_1_SQRT_2;
                let v: Vec<f64> = (0..dim)
                    .map(|j| w * (phi.cos() * ca[j] + phi.sin() * cb[j]) + r * (u0[j] + u1[j]))
                    .collect();
                let n = dot(&v, &v).sqrt();
                v.into_iter().map(|x| x / n).collect()
            }
            Recipe::Sphere { seed } => {
                random_unit(&mut ChaCha8Rng::seed_from_u64(seed), self.params.dim)
            }
            Recipe::Around { anchor, cos, seed } => at_cosine(
                &mut ChaCha8Rng::seed_from_u64(seed),
                &self.centroids[anchor],
                cos,
            ),
            Recipe::NearCopy {
                anchor,
                source,
                cos,
                seed,
            } => near_copy(
                &mut ChaCha8Rng::seed_from_u64(seed),
                &self.centroids[anchor],
                &self.image_vector(source),
                cos,
            ),
        }
    }

    /// The vector of face `f` of media `m`.
    fn face_vector(&self, m: usize, f: usize) -> Vec<f64> {
        match self.media[m].faces[f].recipe {
            Recipe::Sphere { seed } => {
                random_unit(&mut ChaCha8Rng::seed_from_u64(seed), self.params.dim)
            }
            Recipe::Around { anchor, cos, seed } => at_cosine(
                &mut ChaCha8Rng::seed_from_u64(seed),
                &self.identity_centres[anchor],
                cos,
            ),
            Recipe::NearCopy {
                anchor,
                source,
                cos,
                seed,
            } => near_copy(
                &mut ChaCha8Rng::seed_from_u64(seed),
                &self.identity_centres[anchor],
                &self.face_vector(source, f),
                cos,
            ),
            // Faces are never made by chain steps; should one be, it is a
            // face of nobody.
            Recipe::Chain { noise, .. } => {
                random_unit(&mut ChaCha8Rng::seed_from_u64(noise[0]), self.params.dim)
            }
        }
    }

    fn series_of(&self, m: usize) -> Option<usize> {
        match self.media[m].role {
            Role::Member { series } | Role::NearDup { series, .. } => Some(series),
            Role::HardNegative { .. } | Role::Chain { .. } | Role::Noise => None,
        }
    }

    fn metadata(&self, m: usize) -> Metadata {
        let md = &self.media[m];
        let up = &self.uploads[md.upload];
        let series = self.series_of(m).map(|s| &self.series[s]);
        Metadata {
            media_id: md.id.clone(),
            upload_id: up.id.clone(),
            case_id: up.case_id.clone(),
            country: up.country.to_string(),
            agency: up.agency.clone(),
            captured_at: md.captured_at,
            uploaded_at: up.uploaded_at,
            series_label: series.map(|s| s.label.clone()).unwrap_or_default(),
            victim_identified: series.is_some_and(|s| s.identified),
            tags: md.tags.iter().map(|t| t.to_string()).collect(),
        }
    }

    fn summary(&self) -> GenSummary {
        let count = |f: fn(&Role) -> bool| self.media.iter().filter(|m| f(&m.role)).count();
        let countries: HashSet<&str> = self
            .media
            .iter()
            .map(|m| self.uploads[m.upload].country)
            .collect();
        GenSummary {
            out: PathBuf::new(),
            dim: self.params.dim,
            dtype: self.params.dtype,
            images: self.media.len(),
            faces: self.face_order.len(),
            series: self.series.len(),
            members: count(|r| matches!(r, Role::Member { .. })),
            near_duplicates: count(|r| matches!(r, Role::NearDup { .. })),
            hard_negatives: count(|r| matches!(r, Role::HardNegative { .. })),
            chain_media: count(|r| matches!(r, Role::Chain { .. })),
            noise: count(|r| matches!(r, Role::Noise)),
            media_without_faces: self.media.iter().filter(|m| m.faces.is_empty()).count(),
            identities: self.identity_centres.len(),
            uploads: self.uploads.len(),
            cases: self.cases,
            countries: countries.len(),
            seized_images: 0,
            seized_faces: 0,
        }
    }

    fn truth(&self, counts: GenSummary) -> Truth {
        Truth {
            format: TRUTH_FORMAT.to_string(),
            command: self.params.command(),
            params: self.params.clone(),
            planted: Planted {
                member_to_centroid: MEMBER_COS,
                near_duplicate_to_source: NEAR_DUP_COS,
                hard_negative_to_centroid: HARD_NEGATIVE_COS,
                face_to_identity: FACE_COS,
                near_duplicate_face_to_source_face: NEAR_DUP_COS,
            },
            counts,
            uploads: self
                .uploads
                .iter()
                .map(|u| TruthUpload {
                    upload_id: u.id.clone(),
                    case_id: u.case_id.clone(),
                    country: u.country.to_string(),
                    agency: u.agency.clone(),
                    uploaded_at: u.uploaded_at,
                })
                .collect(),
            series: (0..self.series.len())
                .map(|s| self.truth_series(s))
                .collect(),
            hard_negatives: self
                .media
                .iter()
                .filter_map(|m| match m.role {
                    Role::HardNegative { series } | Role::Chain { a: series, .. } => {
                        Some(TruthHardNegative {
                            media_id: m.id.clone(),
                            series,
                        })
                    }
                    _ => None,
                })
                .collect(),
            chains: self.truth_chains(),
            noise: self
                .media
                .iter()
                .filter(|m| m.role == Role::Noise)
                .map(|m| m.id.clone())
                .collect(),
            identities: self.truth_identities(),
            seized_uploads: Vec::new(),
        }
    }

    /// Every identity with its kind and its face point ids.
    fn truth_identities(&self) -> Vec<TruthIdentity> {
        let n_series = self.series.len();
        let mut identities: Vec<TruthIdentity> = (0..self.identity_centres.len())
            .map(|index| {
                let (kind, series) = if index < n_series {
                    ("victim", Some(index))
                } else if index < 2 * n_series {
                    ("companion", Some(index - n_series))
                } else {
                    ("background", None)
                };
                TruthIdentity {
                    index,
                    kind: kind.to_string(),
                    series,
                    faces: Vec::new(),
                }
            })
            .collect();
        for (m, md) in self.media.iter().enumerate() {
            for (f, face) in md.faces.iter().enumerate() {
                identities[face.identity]
                    .faces
                    .push(face_id(&self.media[m].id, f));
            }
        }
        identities
    }

    /// Series `index` as `truth.json` records it.
    fn truth_series(&self, index: usize) -> TruthSeries {
        let s = &self.series[index];
        let mut countries: Vec<String> = s
            .uploads
            .iter()
            .map(|&u| self.uploads[u].country.to_string())
            .collect();
        countries.sort_unstable();
        countries.dedup();
        let mut uploads = s.uploads.clone();
        uploads.sort_unstable();
        TruthSeries {
            index,
            label: s.label.clone(),
            victim_identified: s.identified,
            members: s
                .members
                .iter()
                .chain(&s.near_dups)
                .map(|&m| self.media[m].id.clone())
                .collect(),
            near_duplicates: s
                .near_dups
                .iter()
                .filter_map(|&m| match self.media[m].role {
                    Role::NearDup { source, .. } => Some(TruthNearDup {
                        media_id: self.media[m].id.clone(),
                        source: self.media[source].id.clone(),
                    }),
                    _ => None,
                })
                .collect(),
            uploads: uploads
                .iter()
                .map(|&u| self.uploads[u].id.clone())
                .collect(),
            countries,
            captured_from: s.captured_from,
            captured_until: s.captured_until,
            victim_identity: index,
            companion_identity: self.series.len() + index,
        }
    }

    /// The chains, their media in chain order (they were drawn one chain
    /// after the other).
    fn truth_chains(&self) -> Vec<TruthChain> {
        let mut chains: Vec<TruthChain> = Vec::new();
        for m in &self.media {
            if let Role::Chain { a, b } = m.role {
                match chains.last_mut() {
                    Some(c) if c.series == [a, b] && c.media.len() < CHAIN_LEN => {
                        c.media.push(m.id.clone())
                    }
                    _ => chains.push(TruthChain {
                        series: [a, b],
                        media: vec![m.id.clone()],
                    }),
                }
            }
        }
        chains
    }
}

/// The uploads of a plan, in time order.
struct Uploads {
    list: Vec<Upload>,
    /// Cases opened.
    cases: usize,
    /// Per upload: (uploaded_at, country index).
    slots: Vec<(i64, usize)>,
    /// Per country: its uploads.
    of_country: Vec<Vec<usize>>,
}

/// The random stream a plan is drawn from, and the media drawn so far.
struct Draw {
    rng: ChaCha8Rng,
    /// Media ids handed out, so that none repeats.
    seen_ids: HashSet<[u8; 20]>,
    media: Vec<Media>,
}

impl Draw {
    /// `n` random unit vectors.
    fn units(&mut self, n: usize, dim: usize) -> Vec<Vec<f64>> {
        (0..n).map(|_| random_unit(&mut self.rng, dim)).collect()
    }

    fn media_id(&mut self) -> String {
        media_id(&mut self.rng, &mut self.seen_ids)
    }

    /// One to three agencies per country, `<CC>-<UNIT>-<n>`.
    fn agencies(&mut self, countries: &[&str]) -> Vec<Vec<String>> {
        let mut out = Vec::with_capacity(countries.len());
        for cc in countries {
            let n = self.rng.random_range(1..=3usize);
            let units: Vec<String> = (1..=n)
                .map(|k| {
                    let unit = UNITS.choose(&mut self.rng).unwrap_or(&"VIU");
                    format!("{cc}-{unit}-{k}")
                })
                .collect();
            out.push(units);
        }
        out
    }

    /// Per series: (original members, uploads it is spread over).
    fn series_shapes(&mut self, params: &Params) -> Vec<(usize, usize)> {
        let members = CountRange {
            min: params.members[0],
            max: params.members[1],
        };
        let spread = CountRange {
            min: params.uploads_per_series[0],
            max: params.uploads_per_series[1],
        };
        (0..params.series)
            .map(|_| {
                let m = members.draw(&mut self.rng);
                let u = spread.draw(&mut self.rng).min(m).min(params.uploads);
                (m, u)
            })
            .collect()
    }

    /// Uploads: every country gets at least one while there are enough;
    /// ids and cases follow upload time.
    fn uploads(
        &mut self,
        params: &Params,
        countries: &[&'static str],
        agencies: &[Vec<String>],
    ) -> Uploads {
        let rng = &mut self.rng;
        let mut slots: Vec<(i64, usize)> = (0..params.uploads)
            .map(|i| {
                let country = if i < countries.len() {
                    i
                } else {
                    rng.random_range(0..countries.len())
                };
                (rng.random_range(UPLOAD_FROM..=UPLOAD_UNTIL), country)
            })
            .collect();
        slots.sort_unstable();
        let mut cases_of_country: Vec<Vec<String>> = vec![Vec::new(); countries.len()];
        let mut cases = 0usize;
        let mut list = Vec::with_capacity(slots.len());
        for (i, &(uploaded_at, c)) in slots.iter().enumerate() {
            let cc = countries[c];
            let existing = &cases_of_country[c];
            let case_id = if !existing.is_empty() && rng.random_bool(JOIN_CASE_P) {
                existing[rng.random_range(0..existing.len())].clone()
            } else {
                cases += 1;
                let id = format!("CASE-{cc}-{}-{cases:04}", year_of(uploaded_at));
                cases_of_country[c].push(id.clone());
                id
            };
            let agency = agencies[c][rng.random_range(0..agencies[c].len())].clone();
            list.push(Upload {
                id: format!("UPL-{:06}", i + 1),
                case_id,
                country: cc,
                agency,
                uploaded_at,
            });
        }
        let mut of_country: Vec<Vec<usize>> = vec![Vec::new(); countries.len()];
        for (i, &(_, c)) in slots.iter().enumerate() {
            of_country[c].push(i);
        }
        Uploads {
            list,
            cases,
            slots,
            of_country,
        }
    }

    /// Series `s`, spread over `spread` uploads, captured in a window before
    /// its first upload; its `members` originals and their near-duplicates
    /// join the media.
    fn series(
        &mut self,
        params: &Params,
        uploads: &Uploads,
        s: usize,
        members: usize,
        spread: usize,
    ) -> Series {
        let chosen = choose_uploads(&mut self.rng, spread, &uploads.slots, &uploads.of_country);
        let t0 = chosen
            .iter()
            .map(|&i| uploads.list[i].uploaded_at)
            .min()
            .unwrap_or(UPLOAD_UNTIL);
        let hi = (t0 - DAY).min(CAPTURE_UNTIL);
        let rng = &mut self.rng;
        let until = hi - rng.random_range(0..=(2 * YEAR).min(hi - CAPTURE_FROM));
        let from = until - rng.random_range(0..=(3 * YEAR).min(until - CAPTURE_FROM));
        let draw = rng.random::<f64>();
        let identified = draw < params.identified_rate;
        let labelled = draw < params.labelled_rate.max(params.identified_rate);
        let scene = rng.random_range(0..SCENES.len());
        let video = rng.random_bool(0.25);
        let mut sr = Series {
            label: if labelled {
                format!("S-{s:04}")
            } else {
                String::new()
            },
            identified,
            uploads: chosen,
            captured_from: from,
            captured_until: until,
            scene,
            members: Vec::with_capacity(members),
            near_dups: Vec::new(),
        };
        self.members(&mut sr, s, members, video);
        self.near_dups(&mut sr, s, params.near_dup_rate);
        sr
    }

    /// The original members of series `s`: the first in each of its
    /// uploads, the rest in any; video frames are common in a video series.
    fn members(&mut self, sr: &mut Series, s: usize, n: usize, video: bool) {
        for j in 0..n {
            let upload = if j < sr.uploads.len() {
                sr.uploads[j]
            } else {
                sr.uploads[self.rng.random_range(0..sr.uploads.len())]
            };
            let tags = scene_tags(&mut self.rng, sr.scene, if video { 0.7 } else { 0.1 });
            let cos = self.rng.random_range(MEMBER_COS[0]..=MEMBER_COS[1]);
            sr.members.push(self.media.len());
            let media = Media {
                id: self.media_id(),
                role: Role::Member { series: s },
                upload,
                captured_at: self.rng.random_range(sr.captured_from..=sr.captured_until),
                tags,
                image: Recipe::Around {
                    anchor: s,
                    cos,
                    seed: self.rng.random(),
                },
                faces: Vec::new(),
            };
            self.media.push(media);
        }
    }

    /// Near-duplicates of a `rate` of the members, each preferably in
    /// another upload than its source.
    fn near_dups(&mut self, sr: &mut Series, s: usize, rate: f64) {
        let m = sr.members.len();
        let k = ((rate * m as f64).round() as usize).min(m);
        let mut sources = index::sample(&mut self.rng, m, k).into_vec();
        sources.sort_unstable();
        for j in sources {
            let source = sr.members[j];
            let src_upload = self.media[source].upload;
            let others: Vec<usize> = sr
                .uploads
                .iter()
                .copied()
                .filter(|&x| x != src_upload)
                .collect();
            let upload = others.choose(&mut self.rng).copied().unwrap_or(src_upload);
            let mut tags = self.media[source].tags.clone();
            tags.push(if self.rng.random_bool(0.5) {
                "re-encoded"
            } else {
                "cropped"
            });
            tags.sort_unstable();
            let cos = self.rng.random_range(NEAR_DUP_COS[0]..=NEAR_DUP_COS[1]);
            sr.near_dups.push(self.media.len());
            let media = Media {
                id: self.media_id(),
                role: Role::NearDup { series: s, source },
                upload,
                captured_at: self.media[source].captured_at,
                tags,
                image: Recipe::NearCopy {
                    anchor: s,
                    source,
                    cos,
                    seed: self.rng.random(),
                },
                faces: Vec::new(),
            };
            self.media.push(media);
        }
    }

    /// A capture time before the upload, within the capture years.
    fn capture_before(&mut self, uploads: &Uploads, upload: usize) -> i64 {
        let hi = (uploads.list[upload].uploaded_at - DAY).min(CAPTURE_UNTIL);
        self.rng.random_range(CAPTURE_FROM..=hi)
    }

    /// Hard negatives: a series' scene, near its centroid, in no series.
    fn hard_negatives(&mut self, params: &Params, series: &[Series], uploads: &Uploads) {
        for _ in 0..params.hard_negatives {
            let s = self.rng.random_range(0..params.series);
            let upload = self.rng.random_range(0..uploads.list.len());
            let tags = scene_tags(&mut self.rng, series[s].scene, 0.1);
            let cos = self
                .rng
                .random_range(HARD_NEGATIVE_COS[0]..=HARD_NEGATIVE_COS[1]);
            let media = Media {
                id: self.media_id(),
                role: Role::HardNegative { series: s },
                upload,
                captured_at: self.capture_before(uploads, upload),
                tags,
                image: Recipe::Around {
                    anchor: s,
                    cos,
                    seed: self.rng.random(),
                },
                faces: Vec::new(),
            };
            self.media.push(media);
        }
    }

    /// Chains of [`CHAIN_LEN`] look-alike media from one series towards
    /// another; neighbouring steps share a random direction.
    fn chains(&mut self, params: &Params, series: &[Series], uploads: &Uploads) {
        let n_series = params.series;
        for _ in 0..params.chains {
            let a = self.rng.random_range(0..n_series);
            let b = (a + self.rng.random_range(1..n_series)) % n_series;
            let noise: Vec<u64> = (0..=CHAIN_LEN).map(|_| self.rng.random()).collect();
            for i in 0..CHAIN_LEN {
                let upload = self.rng.random_range(0..uploads.list.len());
                let tags = scene_tags(&mut self.rng, series[a].scene, 0.1);
                let phi = std::f64::consts::FRAC_PI_2 * i as f64 / (CHAIN_LEN - 1) as f64;
                let media = Media {
                    id: self.media_id(),
                    role: Role::Chain { a, b },
                    upload,
                    captured_at: self.capture_before(uploads, upload),
                    tags,
                    image: Recipe::Chain {
                        a,
                        b,
                        phi,
                        noise: [noise[i], noise[i + 1]],
                    },
                    faces: Vec::new(),
                };
                self.media.push(media);
            }
        }
    }

    /// Background media, uniform on the sphere.
    fn noise(&mut self, params: &Params, uploads: &Uploads) {
        for _ in 0..params.noise {
            let upload = self.rng.random_range(0..uploads.list.len());
            let scene = self.rng.random_range(0..SCENES.len());
            let tags = scene_tags(&mut self.rng, scene, 0.1);
            let media = Media {
                id: self.media_id(),
                role: Role::Noise,
                upload,
                captured_at: self.capture_before(uploads, upload),
                tags,
                image: Recipe::Sphere {
                    seed: self.rng.random(),
                },
                faces: Vec::new(),
            };
            self.media.push(media);
        }
    }

    /// Faces, in media order: a near-duplicate carries near-copies of its
    /// source's faces, every other media draws its own.
    fn faces(&mut self, params: &Params) {
        let range = CountRange {
            min: params.faces_per_media[0],
            max: params.faces_per_media[1],
        };
        for i in 0..self.media.len() {
            let faces = match self.media[i].role {
                Role::NearDup { source, .. } => self.near_copy_faces(source),
                Role::Member { series } => self.drawn_faces(params, range, Some(series)),
                Role::HardNegative { .. } | Role::Chain { .. } | Role::Noise => {
                    self.drawn_faces(params, range, None)
                }
            };
            self.media[i].faces = faces;
        }
    }

    fn near_copy_faces(&mut self, source: usize) -> Vec<Face> {
        self.media[source]
            .faces
            .iter()
            .map(|f| Face {
                identity: f.identity,
                recipe: Recipe::NearCopy {
                    anchor: f.identity,
                    source,
                    cos: self.rng.random_range(NEAR_DUP_COS[0]..=NEAR_DUP_COS[1]),
                    seed: self.rng.random(),
                },
            })
            .collect()
    }

    /// A media's own faces: on a member of `series` its victim and
    /// companion first (mostly the victim leading), then background people.
    fn drawn_faces(
        &mut self,
        params: &Params,
        range: CountRange,
        series: Option<usize>,
    ) -> Vec<Face> {
        let (n_series, n_bg) = (params.series, params.background_identities);
        let n = range.draw(&mut self.rng);
        let mut ids: Vec<usize> = Vec::with_capacity(n);
        let mut background = n;
        if let Some(s) = series {
            let (victim, companion) = (s, n_series + s);
            let (first, second) = if self.rng.random_bool(VICTIM_FIRST_P) {
                (victim, companion)
            } else {
                (companion, victim)
            };
            ids.extend([first, second].into_iter().take(n));
            background = n.saturating_sub(2);
        }
        let background = background.min(n_bg);
        ids.extend(
            index::sample(&mut self.rng, n_bg, background)
                .into_iter()
                .map(|b| 2 * n_series + b),
        );
        ids.into_iter()
            .map(|identity| Face {
                identity,
                recipe: Recipe::Around {
                    anchor: identity,
                    cos: self.rng.random_range(FACE_COS[0]..=FACE_COS[1]),
                    seed: self.rng.random(),
                },
            })
            .collect()
    }

    /// Row orders of the image and the face files: shuffled, so that the
    /// members of a series are not stored next to each other.
    fn row_orders(&mut self) -> (Vec<usize>, Vec<(usize, usize)>) {
        let mut image_order: Vec<usize> = (0..self.media.len()).collect();
        image_order.shuffle(&mut self.rng);
        let mut face_order: Vec<(usize, usize)> = self
            .media
            .iter()
            .enumerate()
            .flat_map(|(m, md)| (0..md.faces.len()).map(move |f| (m, f)))
            .collect();
        face_order.shuffle(&mut self.rng);
        (image_order, face_order)
    }
}

/// Checks the arguments and fills in the defaults that depend on others.
fn resolve(opts: &GenOptions) -> Result<Params> {
    ensure!(opts.dim >= 3, "--dim must be at least 3, got {}", opts.dim);
    ensure!(
        (2..=COUNTRY_CODES.len()).contains(&opts.countries),
        "--countries must be between 2 and {}, got {}",
        COUNTRY_CODES.len(),
        opts.countries
    );
    for (flag, rate) in [
        ("--near-dup-rate", opts.near_dup_rate),
        ("--identified-rate", opts.identified_rate),
        ("--labelled-rate", opts.labelled_rate),
    ] {
        ensure!(
            (0.0..=1.0).contains(&rate),
            "{flag} must be between 0 and 1, got {rate}"
        );
    }
    ensure!(
        opts.members.min >= 2,
        "--members: every series needs at least 2 members to span 2 uploads, got {}",
        opts.members
    );
    ensure!(
        opts.uploads_per_series.min >= 1,
        "--uploads-per-series must start at 1 or more, got {}",
        opts.uploads_per_series
    );
    let hard_negatives = opts.hard_negatives.unwrap_or(2 * opts.series);
    if opts.series == 0 && hard_negatives > 0 {
        bail!("--hard-negatives needs at least one series to imitate");
    }
    let noise = opts.noise.unwrap_or(10 * opts.series);
    // Series appearances in uploads, on average, for the default upload count.
    let appearances = opts.series * (opts.uploads_per_series.min + opts.uploads_per_series.max) / 2;
    let uploads = opts
        .uploads
        .unwrap_or_else(|| opts.countries.max(appearances.div_ceil(3)));
    ensure!(uploads >= 2, "--uploads must be at least 2, got {uploads}");
    ensure!(
        opts.chains == 0 || opts.series >= 2,
        "--chains needs at least 2 series"
    );
    ensure!(
        (0.0..1.0).contains(&opts.seized_fraction),
        "--seized-fraction must be in [0, 1), got {}",
        opts.seized_fraction
    );
    let background_identities = opts
        .background_identities
        .unwrap_or_else(|| opts.series.max(3));
    Ok(Params {
        seed: opts.seed,
        dim: opts.dim,
        series: opts.series,
        members: [opts.members.min, opts.members.max],
        near_dup_rate: opts.near_dup_rate,
        hard_negatives,
        noise,
        countries: COUNTRY_CODES[..opts.countries]
            .iter()
            .map(|c| c.to_string())
            .collect(),
        uploads,
        uploads_per_series: [opts.uploads_per_series.min, opts.uploads_per_series.max],
        faces_per_media: [opts.faces_per_media.min, opts.faces_per_media.max],
        background_identities,
        identified_rate: opts.identified_rate,
        labelled_rate: opts.labelled_rate,
        dtype: opts.dtype,
        seized_fraction: opts.seized_fraction,
        chains: opts.chains,
    })
}

/// `u` distinct uploads, the first two from different countries when possible.
fn choose_uploads(
    rng: &mut ChaCha8Rng,
    u: usize,
    slots: &[(i64, usize)],
    uploads_of_country: &[Vec<usize>],
) -> Vec<usize> {
    let n = slots.len();
    let mut chosen = vec![rng.random_range(0..n)];
    if u >= 2 {
        let first_country = slots[chosen[0]].1;
        let other_countries: Vec<usize> = (0..uploads_of_country.len())
            .filter(|&c| c != first_country && !uploads_of_country[c].is_empty())
            .collect();
        if let Some(&c) = other_countries.choose(rng) {
            let list = &uploads_of_country[c];
            chosen.push(list[rng.random_range(0..list.len())]);
        }
    }
    let need = u.saturating_sub(chosen.len());
    if need > 0 {
        let extra: Vec<usize> = index::sample(rng, n, (need + chosen.len()).min(n))
            .into_iter()
            .filter(|i| !chosen.contains(i))
            .take(need)
            .collect();
        chosen.extend(extra);
    }
    chosen
}

/// Sorted tags of a scene, with `video-frame` at probability `video_p`.
fn scene_tags(rng: &mut ChaCha8Rng, scene: usize, video_p: f64) -> Vec<&'static str> {
    let mut tags = SCENES[scene].to_vec();
    if rng.random_bool(video_p) {
        tags.push("video-frame");
    }
    tags.sort_unstable();
    tags
}

/// A fresh 40-hex-digit pseudo SHA-1.
fn media_id(rng: &mut ChaCha8Rng, seen: &mut HashSet<[u8; 20]>) -> String {
    loop {
        let bytes: [u8; 20] = rng.random();
        if seen.insert(bytes) {
            return bytes.iter().map(|b| format!("{b:02x}")).collect();
        }
    }
}

/// The calendar year (UTC) of a Unix time.
fn year_of(ts: i64) -> i64 {
    // Howard Hinnant's civil_from_days.
    let z = ts.div_euclid(DAY) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    yoe + era * 400 + i64::from(month <= 2)
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// A uniform random unit vector.
fn random_unit(rng: &mut ChaCha8Rng, dim: usize) -> Vec<f64> {
    orthogonal_unit(rng, dim, &[])
}

/// A uniform random unit vector orthogonal to the orthonormal `basis`.
fn orthogonal_unit(rng: &mut ChaCha8Rng, dim: usize, basis: &[&[f64]]) -> Vec<f64> {
    loop {
        let mut g: Vec<f64> = (0..dim).map(|_| rng.sample(StandardNormal)).collect();
        // Twice, for numerical orthogonality.
        for _ in 0..2 {
            for b in basis {
                let d = dot(&g, b);
                g.iter_mut().zip(b.iter()).for_each(|(x, y)| *x -= d * y);
            }
        }
        let norm = dot(&g, &g).sqrt();
        if norm > 1e-6 {
            g.iter_mut().for_each(|x| *x /= norm);
            return g;
        }
    }
}

/// A unit vector at exactly cosine `c` to unit `u`: `c·u + sqrt(1−c²)·w`, `w ⟂ u`.
fn at_cosine(rng: &mut ChaCha8Rng, u: &[f64], c: f64) -> Vec<f64> {
    let w = orthogonal_unit(rng, u.len(), &[u]);
    let s = (1.0 - c * c).max(0.0).sqrt();
    u.iter().zip(&w).map(|(a, b)| c * a + s * b).collect()
}

/// A unit vector at cosine `t` to unit `v` that keeps `v`'s cosine to unit
/// anchor `u`: only the part of `v` orthogonal to `u` is turned.
fn near_copy(rng: &mut ChaCha8Rng, u: &[f64], v: &[f64], t: f64) -> Vec<f64> {
    let c = dot(u, v).clamp(-1.0, 1.0);
    let s2 = 1.0 - c * c;
    if s2 < 1e-9 {
        return at_cosine(rng, v, t);
    }
    let mut w: Vec<f64> = v.iter().zip(u).map(|(x, y)| x - c * y).collect();
    let wn = dot(&w, &w).sqrt();
    w.iter_mut().for_each(|x| *x /= wn);
    // cos(v, v') = c² + s2·a, so a = 1 − (1 − t)/s2.
    let a = (1.0 - (1.0 - t) / s2).max(-1.0);
    let z = orthogonal_unit(rng, u.len(), &[u, &w]);
    let b = (1.0 - a * a).max(0.0).sqrt();
    let s = s2.sqrt();
    (0..u.len())
        .map(|i| c * u[i] + s * (a * w[i] + b * z[i]))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeMap, BTreeSet};

    /// Small, fast options, then `edit`.
    fn args(out: &Path, edit: impl FnOnce(&mut GenOptions)) -> GenOptions {
        let mut o = GenOptions {
            out: out.to_path_buf(),
            dim: 64,
            series: 8,
            members: CountRange { min: 4, max: 8 },
            noise: Some(60),
            countries: 8,
            ..GenOptions::default()
        };
        edit(&mut o);
        o
    }

    fn cos(a: &[f64], b: &[f64]) -> f64 {
        dot(a, b) / (dot(a, a).sqrt() * dot(b, b).sqrt())
    }

    /// Every country the generator can pick is one the server accepts.
    #[test]
    fn generated_countries_are_assigned_iso_codes() {
        for c in COUNTRY_CODES {
            assert!(crate::validate::is_country(c), "{c}");
        }
    }

    fn assert_in(x: f64, range: [f64; 2], what: &str) {
        assert!(
            x >= range[0] - 1e-9 && x <= range[1] + 1e-9,
            "{what}: {x} not in {range:?}"
        );
    }

    fn read_lines(path: &Path) -> Vec<PointLine> {
        std::fs::read_to_string(path)
            .expect("read jsonl")
            .lines()
            .map(|l| serde_json::from_str(l).expect("parse line"))
            .collect()
    }

    fn read_truth(dir: &Path) -> Truth {
        serde_json::from_slice(&std::fs::read(dir.join("truth.json")).expect("read truth"))
            .expect("parse truth")
    }

    const FILES: [&str; 5] = [
        "images.npy",
        "images.jsonl",
        "faces.npy",
        "faces.jsonl",
        "truth.json",
    ];

    #[test]
    fn seized_fraction_holds_back_the_latest_uploads() {
        let dir = tempfile::tempdir().unwrap();
        let summary = run(&args(dir.path(), |o| o.seized_fraction = 0.25)).unwrap();
        let truth = read_truth(dir.path());
        let main = read_lines(&dir.path().join("images.jsonl"));
        let held = read_lines(&dir.path().join("seized/images.jsonl"));
        let held_faces = read_lines(&dir.path().join("seized/faces.jsonl"));
        assert_eq!(main.len() + held.len(), summary.images);
        assert_eq!(held.len(), summary.seized_images);
        assert_eq!(held_faces.len(), summary.seized_faces);
        assert!(!held.is_empty() && !main.is_empty());
        let seized: HashSet<&str> = truth.seized_uploads.iter().map(String::as_str).collect();
        assert_eq!(seized.len(), truth.uploads.len().div_ceil(4));
        // The held-back uploads are the latest ones.
        let cut = truth.uploads[truth.uploads.len() - seized.len()].uploaded_at;
        for p in &held {
            assert!(seized.contains(p.metadata.upload_id.as_str()));
            assert!(p.metadata.uploaded_at >= cut);
        }
        for p in main
            .iter()
            .chain(&read_lines(&dir.path().join("faces.jsonl")))
        {
            assert!(!seized.contains(p.metadata.upload_id.as_str()));
        }
        for p in &held_faces {
            assert!(seized.contains(p.metadata.upload_id.as_str()));
        }
        assert!(truth.command.contains("--seized-fraction 0.25"));
        assert!(run(&args(dir.path(), |o| o.seized_fraction = 1.0)).is_err());
    }

    #[test]
    fn chains_link_neighbours_only_and_touch_both_series() {
        let dir = tempfile::tempdir().unwrap();
        // At the real dimension: in 64-d the random parts are too correlated.
        let a = args(dir.path(), |o| {
            o.chains = 6;
            o.dim = 512;
        });
        let plan = Plan::new(&a).unwrap();
        let summary = run(&a).unwrap();
        assert_eq!(summary.chain_media, 6 * CHAIN_LEN);
        let truth = read_truth(dir.path());
        assert_eq!(truth.chains.len(), 6);
        let chains: Vec<Vec<usize>> = truth
            .chains
            .iter()
            .map(|c| {
                c.media
                    .iter()
                    .map(|id| plan.media.iter().position(|m| &m.id == id).unwrap())
                    .collect()
            })
            .collect();
        for (c, steps) in truth.chains.iter().zip(&chains) {
            assert_eq!(steps.len(), CHAIN_LEN);
            let v: Vec<Vec<f64>> = steps.iter().map(|&m| plan.image_vector(m)).collect();
            for i in 0..CHAIN_LEN - 1 {
                // Each step is about at the default link threshold (cosine
                // 0.64) of the next, and far outside it two steps on.
                assert_in(cos(&v[i], &v[i + 1]), [0.58, 0.75], "chain step to next");
                if i + 2 < CHAIN_LEN {
                    assert!(cos(&v[i], &v[i + 2]) < 0.45, "chain step two on");
                }
            }
            // The ends lean towards their series like the closest hard
            // negatives (0.62 planted, give or take the random part).
            let (sa, sb) = (c.series[0], c.series[1]);
            assert_in(cos(&v[0], &plan.centroids[sa]), [0.55, 0.7], "chain end");
            assert_in(
                cos(&v[CHAIN_LEN - 1], &plan.centroids[sb]),
                [0.55, 0.7],
                "chain end",
            );
            assert!(
                truth
                    .hard_negatives
                    .iter()
                    .any(|h| h.media_id == c.media[0])
            );
        }
    }

    #[test]
    fn same_seed_same_bytes() {
        let (a, b, c) = (
            tempfile::tempdir().expect("tmp"),
            tempfile::tempdir().expect("tmp"),
            tempfile::tempdir().expect("tmp"),
        );
        let sa = run(&args(a.path(), |_| {})).expect("run a");
        let sb = run(&args(b.path(), |_| {})).expect("run b");
        run(&args(c.path(), |o| o.seed = 43)).expect("run c");
        assert_eq!(
            GenSummary {
                out: PathBuf::new(),
                ..sa
            },
            GenSummary {
                out: PathBuf::new(),
                ..sb
            }
        );
        for f in FILES {
            let x = std::fs::read(a.path().join(f)).expect("read");
            let y = std::fs::read(b.path().join(f)).expect("read");
            assert!(x == y, "{f} differs between two runs with the same seed");
        }
        let x = std::fs::read(a.path().join("images.npy")).expect("read");
        let z = std::fs::read(c.path().join("images.npy")).expect("read");
        assert_ne!(x, z, "another seed gives other vectors");
    }

    #[test]
    fn planted_cosines_within_ranges() {
        let dir = tempfile::tempdir().expect("tmp");
        let a = args(dir.path(), |o| {
            o.near_dup_rate = 0.5;
            o.faces_per_media = CountRange { min: 1, max: 3 };
        });
        let plan = Plan::new(&a).expect("plan");
        let (mut members, mut dups, mut negs, mut faces, mut dup_faces) = (0, 0, 0, 0, 0);
        for (m, md) in plan.media.iter().enumerate() {
            let v = plan.image_vector(m);
            assert!((dot(&v, &v) - 1.0).abs() < 1e-9, "unit");
            match md.role {
                Role::Member { series } => {
                    members += 1;
                    assert_in(cos(&v, &plan.centroids[series]), MEMBER_COS, "member");
                }
                Role::NearDup { series, source } => {
                    dups += 1;
                    let src = plan.image_vector(source);
                    assert_in(cos(&v, &src), NEAR_DUP_COS, "near-dup vs source");
                    assert_in(cos(&v, &plan.centroids[series]), MEMBER_COS, "near-dup");
                    // Re-encodes keep the source's cosine to the centroid.
                    let (a, b) = (
                        cos(&v, &plan.centroids[series]),
                        cos(&src, &plan.centroids[series]),
                    );
                    assert!((a - b).abs() < 1e-9);
                }
                Role::HardNegative { series } => {
                    negs += 1;
                    assert_in(
                        cos(&v, &plan.centroids[series]),
                        HARD_NEGATIVE_COS,
                        "hard negative",
                    );
                }
                Role::Chain { .. } | Role::Noise => {}
            }
            for (f, face) in md.faces.iter().enumerate() {
                faces += 1;
                let fv = plan.face_vector(m, f);
                assert_in(
                    cos(&fv, &plan.identity_centres[face.identity]),
                    FACE_COS,
                    "face",
                );
                if let Role::NearDup { source, .. } = md.role {
                    dup_faces += 1;
                    assert_eq!(face.identity, plan.media[source].faces[f].identity);
                    assert_in(
                        cos(&fv, &plan.face_vector(source, f)),
                        NEAR_DUP_COS,
                        "dup face",
                    );
                }
            }
        }
        assert!(members > 0 && dups > 0 && negs > 0 && faces > 0 && dup_faces > 0);

        // The files hold exactly those vectors, in the shuffled order.
        run(&a).expect("run");
        let images = crate::io::npy::read_matrix(&dir.path().join("images.npy")).expect("npy");
        let lines = read_lines(&dir.path().join("images.jsonl"));
        assert_eq!(
            (images.rows, images.cols, lines.len()),
            (plan.media.len(), 64, plan.media.len())
        );
        for (row, &m) in plan.image_order.iter().enumerate() {
            assert_eq!(lines[row].id, plan.media[m].id);
            let v: Vec<f64> = images.row(row).iter().map(|&x| f64::from(x)).collect();
            assert!(cos(&v, &plan.image_vector(m)) > 1.0 - 1e-6);
        }
        let face_m = crate::io::npy::read_matrix(&dir.path().join("faces.npy")).expect("npy");
        let face_lines = read_lines(&dir.path().join("faces.jsonl"));
        assert_eq!(face_m.rows, faces);
        for (row, &(m, f)) in plan.face_order.iter().enumerate() {
            assert_eq!(face_lines[row].id, face_id(&plan.media[m].id, f));
            let v: Vec<f64> = face_m.row(row).iter().map(|&x| f64::from(x)).collect();
            assert!(cos(&v, &plan.face_vector(m, f)) > 1.0 - 1e-6);
        }
        // Rows are shuffled: series 0's members are not one contiguous block.
        let mut rows: Vec<usize> = plan.series[0]
            .members
            .iter()
            .map(|&m| plan.image_order.iter().position(|&x| x == m).expect("row"))
            .collect();
        rows.sort_unstable();
        assert!(rows[rows.len() - 1] - rows[0] >= rows.len());
    }

    #[test]
    fn series_span_uploads_countries_and_years() {
        let dir = tempfile::tempdir().expect("tmp");
        let summary = run(&args(dir.path(), |_| {})).expect("run");
        let truth = read_truth(dir.path());
        let lines = read_lines(&dir.path().join("images.jsonl"));
        let by_id: BTreeMap<&str, &Metadata> =
            lines.iter().map(|l| (l.id.as_str(), &l.metadata)).collect();
        assert_eq!(by_id.len(), lines.len(), "media ids are unique");
        for l in &lines {
            assert_eq!(l.id.len(), 40);
            assert!(
                l.id.bytes()
                    .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
            );
            assert_eq!(l.metadata.media_id, l.id);
            assert!(l.vector.is_none());
            let md = &l.metadata;
            assert!(md.uploaded_at > md.captured_at, "{}", l.id);
            assert!((2012..=2024).contains(&year_of(md.captured_at)));
            assert!(!md.tags.is_empty() && !md.agency.is_empty() && !md.case_id.is_empty());
            assert!(md.agency.starts_with(&md.country));
        }
        let countries: BTreeSet<&str> = lines.iter().map(|l| l.metadata.country.as_str()).collect();
        assert!(countries.len() >= 6, "{countries:?}");
        assert_eq!(summary.countries, countries.len());

        assert_eq!(truth.series.len(), 8);
        let mut in_series = BTreeSet::new();
        for s in &truth.series {
            let mds: Vec<&Metadata> = s.members.iter().map(|id| by_id[id.as_str()]).collect();
            let uploads: BTreeSet<&str> = mds.iter().map(|m| m.upload_id.as_str()).collect();
            let cs: BTreeSet<&str> = mds.iter().map(|m| m.country.as_str()).collect();
            assert!(uploads.len() >= 2, "series {} in {uploads:?}", s.index);
            assert!(cs.len() >= 2, "series {} from {cs:?}", s.index);
            assert_eq!(cs.into_iter().collect::<Vec<_>>(), s.countries);
            for m in &mds {
                assert_eq!(m.series_label, s.label);
                assert_eq!(m.victim_identified, s.victim_identified);
                assert!((s.captured_from..=s.captured_until).contains(&m.captured_at));
            }
            for nd in &s.near_duplicates {
                assert!(s.members.contains(&nd.source) && s.members.contains(&nd.media_id));
                assert_eq!(
                    by_id[nd.media_id.as_str()].captured_at,
                    by_id[nd.source.as_str()].captured_at
                );
            }
            in_series.extend(s.members.iter().cloned());
        }
        // Every media is exactly one of: series media, hard negative, noise.
        let negs: BTreeSet<String> = truth
            .hard_negatives
            .iter()
            .map(|h| h.media_id.clone())
            .collect();
        let noise: BTreeSet<String> = truth.noise.iter().cloned().collect();
        assert_eq!(in_series.len() + negs.len() + noise.len(), lines.len());
        assert!(
            in_series.is_disjoint(&negs)
                && in_series.is_disjoint(&noise)
                && negs.is_disjoint(&noise)
        );
        for id in negs.iter().chain(&noise) {
            assert!(by_id[id.as_str()].series_label.is_empty());
        }
        assert_eq!(truth.counts.images, lines.len());
        assert_eq!(truth.hard_negatives.len(), 16, "default 2 x series");
        assert_eq!(truth.params.noise, 60);
        assert_eq!(truth.format, TRUTH_FORMAT);
        assert!(
            truth
                .command
                .starts_with("vidx gen --seed 42 --dim 64 --series 8")
        );
    }

    #[test]
    fn faces_belong_to_their_media() {
        let dir = tempfile::tempdir().expect("tmp");
        run(&args(dir.path(), |_| {})).expect("run");
        let truth = read_truth(dir.path());
        let images = read_lines(&dir.path().join("images.jsonl"));
        let faces = read_lines(&dir.path().join("faces.jsonl"));
        let by_id: BTreeMap<&str, &Metadata> = images
            .iter()
            .map(|l| (l.id.as_str(), &l.metadata))
            .collect();
        let mut per_media: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        for l in &faces {
            let (media, n) = l.id.split_once('#').expect("face id has #");
            let n: usize = n.parse().expect("face number");
            assert_eq!(
                &l.metadata, by_id[media],
                "face {} copies its media's metadata",
                l.id
            );
            per_media.entry(media).or_default().push(n);
        }
        for ns in per_media.values_mut() {
            ns.sort_unstable();
            assert_eq!(
                *ns,
                (0..ns.len()).collect::<Vec<_>>(),
                "faces numbered 0, 1, 2..."
            );
            assert!(ns.len() <= 3);
        }
        assert!(per_media.len() < images.len(), "some media have no face");
        assert!(
            per_media.values().any(|v| v.len() >= 2),
            "some have several"
        );
        // Identities cover every face exactly once; victims appear in their series.
        let mut all: Vec<&str> = truth
            .identities
            .iter()
            .flat_map(|i| i.faces.iter().map(String::as_str))
            .collect();
        all.sort_unstable();
        let mut ids: Vec<&str> = faces.iter().map(|l| l.id.as_str()).collect();
        ids.sort_unstable();
        assert_eq!(all, ids);
        for s in &truth.series {
            let victim = &truth.identities[s.victim_identity];
            assert_eq!(
                (victim.kind.as_str(), victim.series),
                ("victim", Some(s.index))
            );
            for f in &victim.faces {
                let media = f.split_once('#').expect("#").0;
                assert!(s.members.iter().any(|m| m == media));
            }
        }
    }

    #[test]
    fn f16_output_and_validation() {
        let dir = tempfile::tempdir().expect("tmp");
        let s = run(&args(dir.path(), |o| o.dtype = Dtype::F16)).expect("run f16");
        let m = crate::io::npy::read_matrix(&dir.path().join("images.npy")).expect("npy");
        assert_eq!((m.rows, m.cols), (s.images, 64));
        let len = std::fs::metadata(dir.path().join("images.npy"))
            .expect("meta")
            .len();
        assert_eq!(len as usize, 128 + s.images * 64 * 2);
        assert!(s.to_string().contains("image points"));

        assert_eq!("8..24".parse(), Ok(CountRange { min: 8, max: 24 }));
        assert_eq!("0..=3".parse(), Ok(CountRange { min: 0, max: 3 }));
        assert_eq!("5".parse(), Ok(CountRange { min: 5, max: 5 }));
        assert!("9..2".parse::<CountRange>().is_err());
        assert!("a..b".parse::<CountRange>().is_err());
        type Edit = fn(&mut GenOptions);
        let bad: [(&str, Edit); 7] = [
            ("--dim 2", |o| o.dim = 2),
            ("--countries 1", |o| o.countries = 1),
            ("--countries 99", |o| o.countries = 99),
            ("--near-dup-rate 1.5", |o| o.near_dup_rate = 1.5),
            ("--members 1..4", |o| {
                o.members = CountRange { min: 1, max: 4 }
            }),
            ("--series 0 --hard-negatives 5", |o| {
                o.series = 0;
                o.hard_negatives = Some(5);
            }),
            ("--uploads 1", |o| o.uploads = Some(1)),
        ];
        for (what, edit) in bad {
            let e = run(&args(dir.path(), edit)).expect_err("must be refused");
            assert!(e.to_string().contains("--"), "{what}: {e}");
        }
        // No series, no hard negatives: just noise.
        let s = run(&args(dir.path(), |o| {
            o.series = 0;
            o.hard_negatives = Some(0);
        }))
        .expect("noise only");
        assert_eq!((s.images, s.series), (60, 0));
    }

    #[test]
    fn years() {
        assert_eq!(year_of(CAPTURE_FROM), 2012);
        assert_eq!(year_of(CAPTURE_UNTIL), 2024);
        assert_eq!(year_of(CAPTURE_UNTIL + 1), 2025);
        assert_eq!(year_of(0), 1970);
        assert_eq!(year_of(951_782_400), 2000); // 2000-02-29
    }
}
