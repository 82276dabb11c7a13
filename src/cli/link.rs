//! The analysts' commands: `vidx link`, `vidx link-upload`, `vidx triage`
//! and `vidx calibrate`, gRPC clients of `LinkSeries`, `LinkUpload`,
//! `Triage` and `Calibrate` that show progress and write what the server
//! returns as JSON lines (and, for calibration, a PNG).

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;

use crate::cli::client::{ClientArgs, connect, status_error};
use crate::cli::table::Table;
use crate::pb;

/// Distance thresholds and rule flags of `link`. An absent value is sent as
/// 0, which the server reads as its default: calibrated on the collection's
/// labelled material, else the default given in each flag's help.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct ParamArgs {
    /// Largest image distance that links two media [default: calibrated,
    /// else 0.36 under cosine].
    #[arg(long)]
    pub image_threshold: Option<f32>,
    /// Largest face distance that counts as a face match [default:
    /// calibrated, else 0.70 under cosine].
    #[arg(long)]
    pub face_threshold: Option<f32>,
    /// Image distance up to which images alone link; beyond it, up to
    /// --image-threshold, faces must not contradict [default: calibrated,
    /// else the image threshold].
    #[arg(long)]
    pub core_image_threshold: Option<f32>,
    /// Use the defaults for thresholds not set, without calibrating on the
    /// collection's labelled material.
    #[arg(long)]
    pub no_calibrate: bool,
    /// Image distance of near-duplicates, which link on their own [default: 0.05].
    #[arg(long)]
    pub near_duplicate_threshold: Option<f32>,
    /// Neighbours per point [default: 32].
    #[arg(long)]
    pub k: Option<u32>,
    /// Common neighbours an ordinary edge needs [default: 1].
    #[arg(long)]
    pub min_shared_neighbours: Option<u32>,
    /// Plain single linkage (no anti-chaining rule), for comparison.
    #[arg(long)]
    pub single_linkage: bool,
}

#[derive(clap::Args, Debug)]
pub struct LinkArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// The image collection to link.
    #[arg(long, default_value = "images")]
    pub images: String,
    /// The face collection of the same media ("" for none).
    #[arg(long, default_value = "faces")]
    pub faces: String,
    #[command(flatten)]
    pub params: ParamArgs,
    /// Link only these uploads (repeat or comma-separate); not stored.
    #[arg(long = "upload", value_delimiter = ',')]
    pub uploads: Vec<String>,
    /// Link only these cases; not stored.
    #[arg(long = "case", value_delimiter = ',')]
    pub cases: Vec<String>,
    /// Also link the restricted uploads these credentials may see (their
    /// agency's and those shared with it); not stored.
    #[arg(long)]
    pub with_restricted: bool,
    /// Series as JSON lines, one per line.
    #[arg(long, default_value = "series.jsonl")]
    pub out: PathBuf,
    /// The run's summary as JSON.
    #[arg(long, default_value = "series-summary.json")]
    pub summary: PathBuf,
    /// People seen in two or more series, as JSON lines.
    #[arg(long, default_value = "persons.jsonl")]
    pub persons: PathBuf,
    /// Series listed on the terminal (largest cross-border first).
    #[arg(long, default_value_t = 10)]
    pub show: usize,
}

#[derive(clap::Args, Debug)]
pub struct CalibrateArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// The image collection whose labelled material (series_label) calibrates.
    #[arg(long, default_value = "images")]
    pub images: String,
    /// The face collection of the same media ("" for none).
    #[arg(long, default_value = "faces")]
    pub faces: String,
    /// The histograms of same- and different-series distances, as PNG.
    #[arg(long, default_value = "calibration.png")]
    pub png: PathBuf,
}

#[derive(clap::Args, Debug)]
pub struct LinkUploadArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// The image collection the upload is in, linked before by `vidx link`.
    #[arg(long, default_value = "images")]
    pub images: String,
    /// The face collection ("" = the one the stored series were linked with).
    #[arg(long, default_value = "")]
    pub faces: String,
    /// The upload to link.
    #[arg(long)]
    pub upload: String,
    /// Print the response as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(clap::Args, Debug)]
pub struct TriageArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// The image collection to triage against.
    #[arg(long, default_value = "images")]
    pub images: String,
    /// The face collection ("" for none).
    #[arg(long, default_value = "faces")]
    pub faces: String,
    /// Face points of the items (`.npy` + same-stem `.jsonl`, or `.jsonl`),
    /// attached to items by `metadata.media_id`.
    #[arg(long = "face-file")]
    pub face_files: Vec<PathBuf>,
    /// Store the items after triage (default: they are not stored).
    #[arg(long)]
    pub store: bool,
    /// Largest image distance to known material [default: the stored series', else 0.36 under cosine].
    #[arg(long)]
    pub image_threshold: Option<f32>,
    /// Largest face distance to a known face [default: the stored series', else 0.70 under cosine].
    #[arg(long)]
    pub face_threshold: Option<f32>,
    /// Items per streamed message.
    #[arg(long, default_value_t = 500)]
    pub batch: usize,
    /// Verdicts as JSON lines, most urgent first.
    #[arg(long, default_value = "triage.jsonl")]
    pub out: PathBuf,
    /// Items listed on the terminal.
    #[arg(long, default_value_t = 20)]
    pub show: usize,
    /// Files of the seized set, hashed here (MD5, SHA-1, SHA-256, PDQ; see
    /// `vidx hash`): only the hashes are sent, never the files. Without
    /// embedding FILEs, only hashes decide (no image collection is used).
    #[arg(long = "files")]
    pub hash_files: Vec<PathBuf>,
    /// Exact-hash sets to consult (default: every set on the server).
    #[arg(long = "hash-set", value_delimiter = ',')]
    pub hash_sets: Vec<String>,
    /// PERCEPTUAL_HASH collection of known PDQ hashes to match in.
    #[arg(long, default_value = "")]
    pub hash_collection: String,
    /// Largest PDQ distance that counts as a match [default: 31].
    #[arg(long)]
    pub hash_max_distance: Option<u32>,
    /// Image points of the seized set: `.npy` + same-stem `.jsonl`, or `.jsonl` with vectors.
    #[arg(required_unless_present = "hash_files")]
    pub files: Vec<PathBuf>,
}

pub(crate) fn date(t: i64) -> String {
    if t == 0 {
        return "?".into();
    }
    // Civil from days (Howard Hinnant), UTC.
    let z = t.div_euclid(86_400) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + (m <= 2) as i64;
    format!("{y:04}-{m:02}-{d:02}")
}

/// A series as one JSON object (the JSON-lines output of `vidx link`).
pub fn series_json(s: &pb::Series) -> serde_json::Value {
    json!({
        "series_id": s.series_id,
        "media": s.media_ids.len(),
        "media_ids": s.media_ids,
        "countries": s.countries,
        "cross_border": s.cross_border,
        "agencies": s.agencies,
        "upload_ids": s.upload_ids,
        "case_ids": s.case_ids,
        "captured": [date(s.captured_from), date(s.captured_until)],
        "uploaded": [date(s.uploaded_from), date(s.uploaded_until)],
        "victim_identified": s.victim_identified,
        "labels": s.labels,
        "media_with_faces": s.media_with_faces,
        "face_joined": s.face_joined,
        "victim_faces": s.victim_faces,
        "evidence": s.evidence.iter().map(|e| json!({
            "a": e.media_a,
            "b": e.media_b,
            "distance": e.distance,
            "face_distance": e.face_distance,
            "collection": e.collection,
            "kind": match pb::EvidenceKind::try_from(e.kind) {
                Ok(pb::EvidenceKind::EvidenceImage) => "image",
                Ok(pb::EvidenceKind::EvidenceNearDuplicate) => "near-duplicate",
                Ok(pb::EvidenceKind::EvidenceImageAndFace) => "image+face",
                Ok(pb::EvidenceKind::EvidenceFace) => "face",
                Ok(pb::EvidenceKind::EvidenceDecision) => "decision",
                _ => "?",
            },
            "shared_neighbours": e.shared_neighbours,
        })).collect::<Vec<_>>(),
    })
}

pub async fn link(a: LinkArgs) -> anyhow::Result<()> {
    let mut client = connect(&a.client).await?;
    let stream = client
        .link_series(link_request(&a))
        .await
        .map_err(status_error)?
        .into_inner();
    let (mut all, persons, s) = receive_series(stream, &a.out).await?;
    write_link_summary(&a, &s)?;
    write_persons(&persons, &a.persons)?;
    println!(
        "{} media → {} series ({} media linked), {} cross-border, {} joined through a victim's face; {} image edges, {} refused by the anti-chaining rule, {} face matches",
        s.media,
        s.series,
        s.linked_media,
        s.cross_border_series,
        s.face_joined_series,
        s.image_edges,
        s.refused_edges,
        s.face_edges
    );
    let params = s.params.unwrap_or_default();
    println!(
        "{} people among the faces, {} of them beside several victims (never joining series); {} people in two or more series",
        s.identities, s.recurring_identities, s.same_person
    );
    println!(
        "thresholds: image {:.3}, face {:.3} ({})",
        params.image_threshold, params.face_threshold, s.threshold_source
    );
    let secs: Vec<String> = s
        .stages
        .iter()
        .map(|t| format!("{} {:.2}s", t.stage, t.seconds))
        .collect();
    println!("time: {}", secs.join(", "));
    all.sort_by(|x, y| {
        (y.cross_border, y.countries.len(), y.media_ids.len()).cmp(&(
            x.cross_border,
            x.countries.len(),
            x.media_ids.len(),
        ))
    });
    print_series_table(&all, a.show);
    println!(
        "\nwrote {} series to {} and the summary to {}{}",
        s.series,
        a.out.display(),
        a.summary.display(),
        if s.stored {
            " (stored on the server: LinkUpload and Triage use it)"
        } else {
            " (scoped run: not stored)"
        }
    );
    Ok(())
}

fn link_request(a: &LinkArgs) -> pb::LinkSeriesRequest {
    let p = &a.params;
    pb::LinkSeriesRequest {
        image_collection: a.images.clone(),
        face_collection: a.faces.clone(),
        params: Some(pb::LinkParams {
            image_threshold: p.image_threshold.unwrap_or(0.0),
            face_threshold: p.face_threshold.unwrap_or(0.0),
            near_duplicate_threshold: p.near_duplicate_threshold.unwrap_or(0.0),
            k: p.k.unwrap_or(0),
            ef: 0,
            min_shared_neighbours: p.min_shared_neighbours.unwrap_or(0),
            single_linkage: p.single_linkage,
            core_image_threshold: p.core_image_threshold.unwrap_or(0.0),
            calibration: if p.no_calibrate {
                pb::Calibration::Off
            } else {
                pb::Calibration::Auto
            } as i32,
        }),
        scope: Some(pb::LinkScope {
            upload_ids: a.uploads.clone(),
            case_ids: a.cases.clone(),
            with_restricted: a.with_restricted,
        }),
    }
}

/// Reads `LinkSeries` events to the end, showing progress and writing each
/// series to `out` as a JSON line; returns the series, the people seen in
/// several of them and the summary.
async fn receive_series(
    mut stream: tonic::Streaming<pb::LinkEvent>,
    out: &Path,
) -> anyhow::Result<(Vec<pb::Series>, Vec<pb::SamePerson>, pb::LinkSummary)> {
    let file = File::create(out).with_context(|| format!("creating {}", out.display()))?;
    let mut w = BufWriter::new(file);
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{msg:>12} [{bar:40}] {pos}/{len} ({elapsed})")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut all: Vec<pb::Series> = Vec::new();
    let mut persons = Vec::new();
    let mut summary = None;
    while let Some(ev) = stream.message().await.map_err(status_error)? {
        match ev.event {
            Some(pb::link_event::Event::Progress(p)) => {
                bar.set_message(p.stage);
                bar.set_length(p.total);
                bar.set_position(p.done);
            }
            Some(pb::link_event::Event::Series(s)) => {
                serde_json::to_writer(&mut w, &series_json(&s))?;
                w.write_all(b"\n")?;
                all.push(s);
            }
            Some(pb::link_event::Event::Summary(s)) => summary = Some(s),
            Some(pb::link_event::Event::SamePerson(p)) => persons.push(p),
            None => {}
        }
    }
    bar.finish_and_clear();
    w.flush()
        .with_context(|| format!("writing {}", out.display()))?;
    let Some(s) = summary else {
        bail!("the server ended the stream without a summary");
    };
    Ok((all, persons, s))
}

/// The people seen in two or more series, one JSON line each.
fn write_persons(persons: &[pb::SamePerson], path: &Path) -> anyhow::Result<()> {
    let file = File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut w = BufWriter::new(file);
    for p in persons {
        let series: Vec<serde_json::Value> = p
            .series_ids
            .iter()
            .zip(&p.media)
            .map(|(id, n)| json!({"series_id": id, "media": n}))
            .collect();
        serde_json::to_writer(
            &mut w,
            &json!({"face_id": p.face_id, "recurring": p.recurring, "series": series}),
        )?;
        w.write_all(b"\n")?;
    }
    w.flush()
        .with_context(|| format!("writing {}", path.display()))
}

/// The run's summary as JSON, to `--summary`.
fn write_link_summary(a: &LinkArgs, s: &pb::LinkSummary) -> anyhow::Result<()> {
    let stages: serde_json::Map<String, serde_json::Value> = s
        .stages
        .iter()
        .map(|t| (t.stage.clone(), json!(t.seconds)))
        .collect();
    let params = s.params.unwrap_or_default();
    let sj = json!({
        "image_collection": a.images,
        "face_collection": a.faces,
        "media": s.media,
        "series": s.series,
        "linked_media": s.linked_media,
        "cross_border_series": s.cross_border_series,
        "image_edges": s.image_edges,
        "face_edges": s.face_edges,
        "refused_edges": s.refused_edges,
        "face_joined_series": s.face_joined_series,
        "face_joins": s.face_joins,
        "corroborated_edges": s.corroborated_edges,
        "identities": s.identities,
        "recurring_identities": s.recurring_identities,
        "same_person": s.same_person,
        "threshold_source": s.threshold_source,
        "stored": s.stored,
        "seconds": stages,
        "params": {
            "image_threshold": params.image_threshold,
            "face_threshold": params.face_threshold,
            "near_duplicate_threshold": params.near_duplicate_threshold,
            "k": params.k,
            "ef": params.ef,
            "min_shared_neighbours": params.min_shared_neighbours,
            "single_linkage": params.single_linkage,
        },
    });
    std::fs::write(&a.summary, serde_json::to_vec_pretty(&sj)?)
        .with_context(|| format!("writing {}", a.summary.display()))
}

/// The first `show` series as a table.
fn print_series_table(all: &[pb::Series], show: usize) {
    if show > 0 && !all.is_empty() {
        println!();
        println!("{}", series_table(&all[..show.min(all.len())]));
    }
}

pub async fn calibrate(a: CalibrateArgs) -> anyhow::Result<()> {
    let mut client = connect(&a.client).await?;
    let r = client
        .calibrate(pb::CalibrateRequest {
            image_collection: a.images.clone(),
            face_collection: a.faces.clone(),
        })
        .await
        .map_err(status_error)?
        .into_inner();
    println!(
        "{} ({} labelled series, {} labelled media)",
        r.note, r.labelled_series, r.labelled_media
    );
    let show = |name: &str, t: &pb::ThresholdChoice| {
        let core = if t.core_threshold > 0.0 && t.core_threshold < t.threshold {
            format!(" (images alone up to {:.3})", t.core_threshold)
        } else {
            String::new()
        };
        if t.calibrated {
            println!(
                "{name} threshold {:.3}{core}: precision {:.3}, recall {:.3} on {} same-series and {} different-series pairs",
                t.threshold, t.precision, t.recall, t.same_series_pairs, t.different_series_pairs
            );
        } else {
            println!(
                "{name} threshold {:.3}: the default (not calibrated)",
                t.threshold
            );
        }
    };
    if let Some(t) = &r.image {
        show("image", t);
    }
    if let Some(t) = &r.face {
        show("face ", t);
    }
    crate::cli::plot::write_histograms(&a.png, &r)?;
    println!(
        "wrote {} (distance histograms, same vs different series)",
        a.png.display()
    );
    Ok(())
}

/// The series `vidx link` lists on the terminal.
fn series_table(series: &[pb::Series]) -> String {
    let mut t = Table::new(
        &[
            "series",
            "media",
            "countries",
            "uploads",
            "captured",
            "identified",
            "label",
        ],
        &[1, 3],
    );
    for x in series {
        t.row(vec![
            x.series_id.clone(),
            x.media_ids.len().to_string(),
            x.countries.join(","),
            x.upload_ids.len().to_string(),
            format!("{}..{}", date(x.captured_from), date(x.captured_until)),
            if x.victim_identified { "yes" } else { "no" }.to_string(),
            x.labels.join(","),
        ]);
    }
    t.render()
}

pub async fn link_upload(a: LinkUploadArgs) -> anyhow::Result<()> {
    let mut client = connect(&a.client).await?;
    let r = client
        .link_upload(pb::LinkUploadRequest {
            image_collection: a.images.clone(),
            face_collection: a.faces.clone(),
            upload_id: a.upload.clone(),
        })
        .await
        .map_err(status_error)?
        .into_inner();
    let outcome = |o: i32| pb::LinkOutcome::try_from(o).map_or("?", |x| x.as_str_name());
    if a.json {
        let j = json!({
            "media": r.media.iter().map(|m| json!({
                "media_id": m.media_id, "outcome": outcome(m.outcome), "series_id": m.series_id,
            })).collect::<Vec<_>>(),
            "merges": r.merges.iter().map(|m| json!({"series_id": m.series_id, "merged": m.merged})).collect::<Vec<_>>(),
            "series": r.series.iter().map(series_json).collect::<Vec<_>>(),
            "new_edges": r.new_edges,
        });
        println!("{}", serde_json::to_string_pretty(&j)?);
        return Ok(());
    }
    let count = |o: pb::LinkOutcome| r.media.iter().filter(|m| m.outcome == o as i32).count();
    println!(
        "upload {}: {} media: {} joined existing series, {} in new candidate series, {} unlinked; {} merges; {} new edges",
        a.upload,
        r.media.len(),
        count(pb::LinkOutcome::Joined),
        count(pb::LinkOutcome::NewSeries),
        count(pb::LinkOutcome::Unlinked),
        r.merges.len(),
        r.new_edges
    );
    for m in &r.merges {
        println!("merged into {}: {}", m.series_id, m.merged.join(", "));
    }
    if !r.series.is_empty() {
        let mut t = Table::new(&["series", "media", "countries", "cross-border"], &[1]);
        for s in &r.series {
            t.row(vec![
                s.series_id.clone(),
                s.media_ids.len().to_string(),
                s.countries.join(","),
                if s.cross_border { "yes" } else { "no" }.to_string(),
            ]);
        }
        println!("{}", t.render());
    }
    Ok(())
}

pub async fn triage(a: TriageArgs) -> anyhow::Result<()> {
    if a.batch == 0 {
        bail!("--batch must be at least 1");
    }
    let (files, face_files, hash_files) =
        (a.files.clone(), a.face_files.clone(), a.hash_files.clone());
    let (items, paths) = tokio::task::spawn_blocking(move || {
        let items = if files.is_empty() {
            Vec::new()
        } else {
            read_items(&files, &face_files)?
        };
        crate::cli::hashes::with_file_hashes(items, &hash_files)
    })
    .await??;
    let total = items.len();
    let msgs = triage_requests(&a, &items);
    let mut client = connect(&a.client).await?;
    let stream = client
        .triage(tokio_stream::iter(msgs))
        .await
        .map_err(status_error)?
        .into_inner();
    let (mut results, s) = receive_verdicts(stream, total).await?;
    // Most urgent first (by rank: the Priority numbers are not the order);
    // within a priority, closest match first.
    results.sort_by(|x, y| {
        x.rank
            .cmp(&y.rank)
            .then(x.nearest_distance.total_cmp(&y.nearest_distance))
            .then(x.id.cmp(&y.id))
    });
    write_verdicts(&results, &paths, &a.out)?;
    print_triage(&results, &s, a.show);
    println!("\nwrote {} verdicts to {}", results.len(), a.out.display());
    Ok(())
}

/// The seized set's image points as triage items, each with the face
/// points of its media.
fn read_items(files: &[PathBuf], face_files: &[PathBuf]) -> anyhow::Result<Vec<pb::TriageItem>> {
    let read = |fs: &[PathBuf]| -> anyhow::Result<Vec<pb::Point>> {
        let mut out = Vec::new();
        for s in crate::io::ingest::plan(fs)? {
            out.extend(crate::io::ingest::read_source(&s)?);
        }
        Ok(out)
    };
    let faces = if face_files.is_empty() {
        Vec::new()
    } else {
        read(face_files)?
    };
    let images = read(files)?;
    let mut faces_of: HashMap<String, Vec<pb::Vector>> = HashMap::new();
    for f in faces {
        let meta = f.metadata.clone().unwrap_or_default();
        faces_of
            .entry(crate::investigate::link::media_key(&f.id, &meta, true))
            .or_default()
            .push(pb::Vector { values: f.vector });
    }
    Ok(images
        .into_iter()
        .map(|p| {
            let meta = p.metadata.clone().unwrap_or_default();
            let key = crate::investigate::link::media_key(&p.id, &meta, false);
            pb::TriageItem {
                faces: faces_of.remove(&key).unwrap_or_default(),
                id: p.id,
                vector: p.vector,
                metadata: p.metadata,
                ..Default::default()
            }
        })
        .collect())
}

/// The items in messages of `--batch`; the first names the collections.
fn triage_requests(a: &TriageArgs, items: &[pb::TriageItem]) -> Vec<pb::TriageRequest> {
    let mut msgs = Vec::new();
    for (i, chunk) in items.chunks(a.batch).enumerate() {
        // Without embedding files only hashes decide: no collections.
        let first = i == 0 && !a.files.is_empty();
        msgs.push(pb::TriageRequest {
            image_collection: if first {
                a.images.clone()
            } else {
                String::new()
            },
            face_collection: if first {
                a.faces.clone()
            } else {
                String::new()
            },
            hash_sets: if i == 0 {
                a.hash_sets.clone()
            } else {
                Vec::new()
            },
            hash_collection: if i == 0 {
                a.hash_collection.clone()
            } else {
                String::new()
            },
            hash_max_distance: a.hash_max_distance.unwrap_or(0),
            items: chunk.to_vec(),
            store: a.store,
            image_threshold: a.image_threshold.unwrap_or(0.0),
            face_threshold: a.face_threshold.unwrap_or(0.0),
        });
    }
    msgs
}

/// Reads the verdicts to the end, showing progress; returns them and the
/// summary.
async fn receive_verdicts(
    mut stream: tonic::Streaming<pb::TriageResponse>,
    total: usize,
) -> anyhow::Result<(Vec<pb::TriageResult>, pb::TriageSummary)> {
    let bar = ProgressBar::new(total as u64);
    let mut results = Vec::with_capacity(total);
    let mut summary = None;
    while let Some(r) = stream.message().await.map_err(status_error)? {
        bar.inc(r.results.len() as u64);
        results.extend(r.results);
        if r.summary.is_some() {
            summary = r.summary;
        }
    }
    bar.finish_and_clear();
    let Some(s) = summary else {
        bail!("the server ended the triage stream without a summary");
    };
    Ok((results, s))
}

fn priority_name(p: i32) -> &'static str {
    pb::Priority::try_from(p).map_or("?", |x| x.as_str_name())
}

fn verdict_name(v: i32) -> &'static str {
    pb::Verdict::try_from(v).map_or("?", |x| x.as_str_name())
}

fn evidence_name(e: i32) -> &'static str {
    use pb::triage_result::Evidence;
    match Evidence::try_from(e) {
        Ok(Evidence::ExactHash) => "EXACT_HASH",
        Ok(Evidence::PerceptualHash) => "PERCEPTUAL_HASH",
        Ok(Evidence::Embedding) => "EMBEDDING",
        Ok(Evidence::Face) => "FACE",
        _ => "",
    }
}

/// The verdicts as JSON lines, in the order given; items hashed from files
/// carry their path.
fn write_verdicts(
    results: &[pb::TriageResult],
    paths: &HashMap<String, String>,
    path: &Path,
) -> anyhow::Result<()> {
    let file = File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut out = BufWriter::new(file);
    for r in results {
        serde_json::to_writer(
            &mut out,
            &json!({
                "id": r.id,
                "verdict": verdict_name(r.verdict),
                "priority": priority_name(r.priority),
                "rank": r.rank,
                "series_id": r.series_id,
                "nearest_media_id": r.nearest_media_id,
                "nearest_distance": r.nearest_distance,
                "victim_identified": r.victim_identified,
                "matched_faces": r.matched_faces,
                "face_series_id": r.face_series_id,
                "series_label": r.series_label,
                "evidence": evidence_name(r.evidence),
                "category": r.category,
                "matched_in": r.matched_in,
                "matched_key": r.matched_key,
                "reason": r.reason,
                "path": paths.get(&r.id),
            }),
        )?;
        out.write_all(b"\n")?;
    }
    out.flush()
        .with_context(|| format!("writing {}", path.display()))
}

/// The counts, then the first `show` verdicts and candidate series.
fn print_triage(results: &[pb::TriageResult], s: &pb::TriageSummary, show: usize) {
    let by = |p: pb::Priority| results.iter().filter(|r| r.priority == p as i32).count();
    println!(
        "{} items: {} known, {} new of a known victim, {} new ({} new with faces); {} candidate series among the new items{}",
        s.items,
        s.known,
        s.known_victim,
        s.new,
        s.new_with_faces,
        s.new_groups.len(),
        if s.stored > 0 {
            format!("; {} stored", s.stored)
        } else {
            String::new()
        }
    );
    println!(
        "priority: NEW_OF_KNOWN_VICTIM {}  NEW_WITH_FACES {}  NEW_MATERIAL {}  KNOWN_UNIDENTIFIED {}  KNOWN_IDENTIFIED {}",
        by(pb::Priority::NewOfKnownVictim),
        by(pb::Priority::NewWithFaces),
        by(pb::Priority::NewMaterial),
        by(pb::Priority::KnownUnidentified),
        by(pb::Priority::KnownIdentified)
    );
    println!(
        "decided by: EXACT_HASH {}  PERCEPTUAL_HASH {}  EMBEDDING {}  FACE {}",
        s.by_exact_hash, s.by_perceptual_hash, s.by_embedding, s.by_face
    );
    if show > 0 {
        println!();
        println!("{}", verdicts_table(&results[..show.min(results.len())]));
    }
    for (i, g) in s.new_groups.iter().enumerate().take(show) {
        println!(
            "candidate series {} among new items: {} items ({})",
            i + 1,
            g.ids.len(),
            g.ids.join(", ")
        );
    }
}

/// The verdicts `vidx triage` lists on the terminal, most urgent first.
fn verdicts_table(results: &[pb::TriageResult]) -> String {
    let mut t = Table::new(
        &[
            "id", "verdict", "evidence", "priority", "category", "series", "distance", "faces",
        ],
        &[6, 7],
    );
    for r in results {
        let series = if r.series_id.is_empty() {
            r.series_label.clone()
        } else {
            r.series_id.clone()
        };
        t.row(vec![
            r.id.clone(),
            verdict_name(r.verdict).to_string(),
            evidence_name(r.evidence).to_string(),
            priority_name(r.priority).to_string(),
            r.category.clone(),
            series,
            format!("{:.4}", r.nearest_distance),
            r.matched_faces.to_string(),
        ]);
    }
    t.render()
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

#[cfg(test)]
mod tests {
    use super::date;

    #[test]
    fn dates() {
        assert_eq!(date(0), "?");
        assert_eq!(date(1_388_534_400), "2014-01-01");
        assert_eq!(date(951_868_800), "2000-03-01");
        assert_eq!(date(1_735_689_599), "2024-12-31");
    }
}
