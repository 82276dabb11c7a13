//! `vidx series`: the stored series as records people work on: `list`,
//! `show`, `of` (the series of media), `decide` (record an investigator's
//! decision) and `report` (one series as a self-contained HTML file), and
//! `vidx update-metadata`.

use std::path::PathBuf;

use anyhow::Context;
use clap::Subcommand;

use crate::cli::client::{ClientArgs, connect, status_error};
use crate::cli::link::{date, series_json};
use crate::cli::table::Table;
use crate::pb;

#[derive(Subcommand, Debug)]
pub enum SeriesCommand {
    /// The stored series, filtered, a page at a time (series-id order).
    List(ListArgs),
    /// One series: members, evidence, decisions, "same person" leads.
    Show(ShowArgs),
    /// The series of each media.
    Of(OfArgs),
    /// Record an investigator's decision; later linking honours it.
    Decide(DecideArgs),
    /// Write one series as a self-contained HTML report.
    Report(ReportArgs),
}

#[derive(clap::Args, Debug)]
pub struct Common {
    #[command(flatten)]
    pub client: ClientArgs,
    /// The image collection whose series these are.
    #[arg(long, default_value = "images")]
    pub images: String,
}

#[derive(clap::Args, Debug)]
pub struct ListArgs {
    #[command(flatten)]
    pub common: Common,
    /// Series with a member from one of these countries.
    #[arg(long = "country", value_delimiter = ',')]
    pub countries: Vec<String>,
    /// Only cross-border series (true) or only single-country ones (false).
    #[arg(long)]
    pub cross_border: Option<bool>,
    /// Only series whose victim is identified (true) or not (false).
    #[arg(long)]
    pub identified: Option<bool>,
    /// Series of at least this many media.
    #[arg(long, default_value_t = 0)]
    pub min_media: u32,
    /// Series updated (new material or decisions) at or after: Unix seconds or YYYY-MM-DD.
    #[arg(long, value_parser = crate::cli::link::parse_time)]
    pub updated_after: Option<i64>,
    /// Series per page (at most 1000).
    #[arg(long, default_value_t = 50)]
    pub page_size: u32,
    /// The page after this token (printed under the previous page).
    #[arg(long, default_value = "")]
    pub page_token: String,
}

#[derive(clap::Args, Debug)]
pub struct ShowArgs {
    #[command(flatten)]
    pub common: Common,
    /// The series to show (ser-...).
    pub series_id: String,
    /// Print the response as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(clap::Args, Debug)]
pub struct OfArgs {
    #[command(flatten)]
    pub common: Common,
    /// Media ids to look up.
    #[arg(required = true)]
    pub media: Vec<String>,
}

#[derive(clap::Args, Debug)]
pub struct ReportArgs {
    #[command(flatten)]
    pub common: Common,
    /// The series to report on (ser-...).
    pub series_id: String,
    /// Where to write the HTML.
    #[arg(long, default_value = "report.html")]
    pub out: PathBuf,
}

#[derive(clap::Args, Debug)]
pub struct DecideArgs {
    #[command(flatten)]
    pub common: Common,
    /// Who decides (kept with the decision).
    #[arg(long)]
    pub reviewer: String,
    /// Why.
    #[arg(long, default_value = "")]
    pub note: String,
    #[command(subcommand)]
    pub decision: DecisionArg,
}

#[derive(Subcommand, Debug)]
pub enum DecisionArg {
    /// Two media belong to one series.
    Confirm {
        /// One media id.
        a: String,
        /// The other media id.
        b: String,
    },
    /// Two media are never in one series, whatever the evidence.
    Reject {
        /// One media id.
        a: String,
        /// The other media id.
        b: String,
    },
    /// Series that are one.
    Merge {
        /// Two or more series ids.
        #[arg(required = true, num_args = 2..)]
        series: Vec<String>,
    },
    /// Media that leave a series (they form one of their own).
    Split {
        /// The series the media leave.
        series: String,
        /// The media that leave it.
        #[arg(required = true)]
        media: Vec<String>,
    },
    /// A label for a series.
    Label {
        /// The series to label.
        series: String,
        /// The label (e.g. an ICSE series name).
        label: String,
    },
    /// The victim of a series is identified.
    Identified {
        /// The series whose victim is identified.
        series: String,
        /// A reference to the identification (case or person record).
        reference: String,
    },
}

#[derive(clap::Args, Debug)]
pub struct UpdateMetadataArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// The collection holding the points.
    #[arg(long)]
    pub collection: String,
    /// Point ids to update.
    #[arg(long = "id", value_delimiter = ',', required = true)]
    pub ids: Vec<String>,
    /// Set whether the victim is identified.
    #[arg(long)]
    pub identified: Option<bool>,
    /// Set the series label.
    #[arg(long)]
    pub series_label: Option<String>,
    /// Set the case id.
    #[arg(long)]
    pub case: Option<String>,
    /// Tags to add.
    #[arg(long = "add-tag", value_delimiter = ',')]
    pub add_tags: Vec<String>,
    /// Tags to remove.
    #[arg(long = "remove-tag", value_delimiter = ',')]
    pub remove_tags: Vec<String>,
}

pub async fn run(cmd: SeriesCommand) -> anyhow::Result<()> {
    match cmd {
        SeriesCommand::List(a) => list(a).await,
        SeriesCommand::Show(a) => show(a).await,
        SeriesCommand::Of(a) => of(a).await,
        SeriesCommand::Decide(a) => decide(a).await,
        SeriesCommand::Report(a) => report(a).await,
    }
}

fn yes(b: bool) -> String {
    if b { "yes" } else { "no" }.to_string()
}

async fn list(a: ListArgs) -> anyhow::Result<()> {
    let mut client = connect(&a.common.client).await?;
    let r = client
        .list_series(pb::ListSeriesRequest {
            image_collection: a.common.images.clone(),
            filter: Some(pb::SeriesFilter {
                countries_any: a.countries.clone(),
                cross_border: a.cross_border,
                victim_identified: a.identified,
                min_media: a.min_media,
                updated_after: a.updated_after,
            }),
            page_size: a.page_size,
            page_token: a.page_token.clone(),
            with_evidence: false,
        })
        .await
        .map_err(status_error)?
        .into_inner();
    let mut t = Table::new(
        &[
            "series",
            "media",
            "countries",
            "uploads",
            "captured",
            "identified",
            "label",
            "updated",
        ],
        &[1, 3],
    );
    for s in &r.series {
        t.row(vec![
            s.series_id.clone(),
            s.media_ids.len().to_string(),
            s.countries.join(","),
            s.upload_ids.len().to_string(),
            format!("{}..{}", date(s.captured_from), date(s.captured_until)),
            yes(s.victim_identified),
            s.label.clone(),
            date(s.updated_at),
        ]);
    }
    println!("{}", t.render());
    println!("\n{} of {} series", r.series.len(), r.total);
    if !r.next_page_token.is_empty() {
        println!("next page: --page-token {}", r.next_page_token);
    }
    Ok(())
}

async fn get(common: &Common, id: &str) -> anyhow::Result<pb::GetSeriesResponse> {
    let mut client = connect(&common.client).await?;
    Ok(client
        .get_series(pb::GetSeriesRequest {
            image_collection: common.images.clone(),
            series_id: id.to_string(),
        })
        .await
        .map_err(status_error)?
        .into_inner())
}

fn decision_kind(r: &pb::DecisionRecord) -> &'static str {
    let k = r.decision.as_ref().map_or(0, |d| d.kind);
    pb::DecisionKind::try_from(k).map_or("?", |k| k.as_str_name())
}

async fn show(a: ShowArgs) -> anyhow::Result<()> {
    let r = get(&a.common, &a.series_id).await?;
    let s = r.series.clone().unwrap_or_default();
    if a.json {
        let j = serde_json::json!({
            "series": series_json(&s),
            "label": s.label,
            "identified_references": s.identified_references,
            "media": r.media.iter().map(|m| serde_json::json!({"media_id": m.media_id, "metadata": m.metadata, "faces": m.faces})).collect::<Vec<_>>(),
            "decisions": r.decisions.iter().map(|d| serde_json::json!({
                "decision_id": d.decision_id, "kind": decision_kind(d), "reviewer": d.reviewer,
                "decided_at": d.decided_at, "note": d.note, "anchors": d.anchors})).collect::<Vec<_>>(),
        });
        println!("{}", serde_json::to_string_pretty(&j)?);
        return Ok(());
    }
    println!(
        "{}: {} media from {} ({}), captured {}..{}, uploaded {}..{}; identified: {}{}",
        s.series_id,
        s.media_ids.len(),
        s.countries.join(","),
        if s.cross_border {
            "cross-border"
        } else {
            "one country"
        },
        date(s.captured_from),
        date(s.captured_until),
        date(s.uploaded_from),
        date(s.uploaded_until),
        yes(s.victim_identified),
        if s.label.is_empty() {
            String::new()
        } else {
            format!("; label {}", s.label)
        }
    );
    let mut t = Table::new(
        &[
            "media", "cc", "agency", "upload", "captured", "uploaded", "faces",
        ],
        &[6],
    );
    for m in &r.media {
        let x = m.metadata.clone().unwrap_or_default();
        t.row(vec![
            m.media_id.clone(),
            x.country,
            x.agency,
            x.upload_id,
            date(x.captured_at),
            date(x.uploaded_at),
            m.faces.to_string(),
        ]);
    }
    println!("\n{}", t.render());
    if !r.decisions.is_empty() {
        let mut t = Table::new(&["#", "kind", "reviewer", "when", "note"], &[0]);
        for d in &r.decisions {
            t.row(vec![
                d.decision_id.to_string(),
                decision_kind(d).to_string(),
                d.reviewer.clone(),
                date(d.decided_at),
                d.note.clone(),
            ]);
        }
        println!("\ndecisions:\n{}", t.render());
    }
    for p in &r.rejected {
        println!(
            "kept apart: {} / {} (decision {})",
            p.media_a, p.media_b, p.decision_id
        );
    }
    if r.same_person.is_empty() {
        println!("\nno \"same person\" leads to other series");
    }
    for l in &r.same_person {
        println!(
            "same person in {}: {} face matches, closest {} / {} at {:.3}",
            l.other_series_id, l.matches, l.media_id, l.other_media_id, l.face_distance
        );
    }
    Ok(())
}

async fn of(a: OfArgs) -> anyhow::Result<()> {
    let mut client = connect(&a.common.client).await?;
    let r = client
        .series_of_media(pb::SeriesOfMediaRequest {
            image_collection: a.common.images.clone(),
            media_ids: a.media.clone(),
        })
        .await
        .map_err(status_error)?
        .into_inner();
    let mut t = Table::new(&["media", "series"], &[]);
    for m in r.media {
        let s = if m.series_id.is_empty() {
            "(none)".to_string()
        } else {
            m.series_id
        };
        t.row(vec![m.media_id, s]);
    }
    println!("{}", t.render());
    Ok(())
}

fn to_decision(d: &DecisionArg) -> pb::Decision {
    use pb::DecisionKind as K;
    let mut out = pb::Decision::default();
    let kind = match d {
        DecisionArg::Confirm { a, b } | DecisionArg::Reject { a, b } => {
            out.media_a = a.clone();
            out.media_b = b.clone();
            if matches!(d, DecisionArg::Confirm { .. }) {
                K::ConfirmLink
            } else {
                K::RejectLink
            }
        }
        DecisionArg::Merge { series } => {
            out.series_ids = series.clone();
            K::Merge
        }
        DecisionArg::Split { series, media } => {
            out.series_id = series.clone();
            out.media_ids = media.clone();
            K::Split
        }
        DecisionArg::Label { series, label } => {
            out.series_id = series.clone();
            out.label = label.clone();
            K::Label
        }
        DecisionArg::Identified { series, reference } => {
            out.series_id = series.clone();
            out.reference = reference.clone();
            K::MarkIdentified
        }
    };
    out.kind = kind as i32;
    out
}

async fn decide(a: DecideArgs) -> anyhow::Result<()> {
    let mut client = connect(&a.common.client).await?;
    let r = client
        .review_series(pb::ReviewSeriesRequest {
            image_collection: a.common.images.clone(),
            decisions: vec![to_decision(&a.decision)],
            reviewer: a.reviewer.clone(),
            note: a.note.clone(),
        })
        .await
        .map_err(status_error)?
        .into_inner();
    for d in &r.recorded {
        println!(
            "recorded decision {} ({}) by {}",
            d.decision_id,
            decision_kind(d),
            d.reviewer
        );
    }
    if r.regroup_seconds > 0.0 {
        println!("regrouped in {:.2}s", r.regroup_seconds);
    }
    for s in &r.series {
        println!(
            "{}: {} media, {}{}",
            s.series_id,
            s.media_ids.len(),
            s.countries.join(","),
            if s.label.is_empty() {
                String::new()
            } else {
                format!(", label {}", s.label)
            }
        );
    }
    Ok(())
}

async fn report(a: ReportArgs) -> anyhow::Result<()> {
    let r = get(&a.common, &a.series_id).await?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let html = crate::cli::report::render(&r, &a.common.images, &date(now));
    std::fs::write(&a.out, html).with_context(|| format!("writing {}", a.out.display()))?;
    println!("wrote the report of {} to {}", a.series_id, a.out.display());
    Ok(())
}

pub async fn update_metadata(a: UpdateMetadataArgs) -> anyhow::Result<()> {
    let mut client = connect(&a.client).await?;
    let r = client
        .update_metadata(pb::UpdateMetadataRequest {
            collection: a.collection.clone(),
            ids: a.ids.clone(),
            set: Some(pb::MetadataUpdate {
                victim_identified: a.identified,
                series_label: a.series_label.clone(),
                add_tags: a.add_tags.clone(),
                remove_tags: a.remove_tags.clone(),
                case_id: a.case.clone(),
            }),
        })
        .await
        .map_err(status_error)?
        .into_inner();
    println!("updated {} points of {}", r.updated, a.collection);
    Ok(())
}
