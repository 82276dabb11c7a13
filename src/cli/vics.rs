//! `vidx vics import FILE.json` and `vidx vics export --case C`: Project VIC
//! case files in and out of an exact-hash set (see the README's "VICS
//! interchange" for the field mapping).
//!
//! An import reads and checks the whole file first (a bad value is refused
//! with its line, column and field, and nothing is sent), then sends it as
//! one `ImportHashes` call, which the server applies whole or not at all.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, bail};

use crate::cli::client::{ClientArgs, connect, status_error};
use crate::io::vics::{self, Case, Media, Ordered};
use crate::pb;

/// The hash set VICS files go into unless `--set` says otherwise.
pub const DEFAULT_SET: &str = "vics";

#[derive(clap::Subcommand, Debug)]
pub enum VicsCommand {
    /// Import a VICS JSON file's cases and media into an exact-hash set.
    Import(VicsImportArgs),
    /// Write a case (or every case) of a hash set as a VICS JSON file.
    Export(VicsExportArgs),
}

#[derive(clap::Args, Debug)]
pub struct VicsImportArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// The hash set to import into (created if absent).
    #[arg(long, default_value = DEFAULT_SET)]
    pub set: String,
    /// The VICS JSON file (an OData envelope with `value[]` cases).
    pub file: PathBuf,
}

#[derive(clap::Args, Debug)]
pub struct VicsExportArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// The hash set to export from.
    #[arg(long, default_value = DEFAULT_SET)]
    pub set: String,
    /// The case to export (its CaseID); all cases of the set if not given.
    #[arg(long)]
    pub case: Option<String>,
    /// Write here instead of stdout.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

pub async fn vics(cmd: VicsCommand) -> anyhow::Result<()> {
    match cmd {
        VicsCommand::Import(a) => import(a).await,
        VicsCommand::Export(a) => export(a).await,
    }
}

/// Entries per streamed message.
const BATCH: usize = 5000;

async fn import(a: VicsImportArgs) -> anyhow::Result<()> {
    let name = a.file.display().to_string();
    let text = std::fs::read_to_string(&a.file).with_context(|| format!("reading {name}"))?;
    let file =
        vics::parse(&text).map_err(|e| anyhow::anyhow!("{name}: {e}; nothing was imported"))?;
    let (entries, cases) = to_entries(&file)?;
    let media = entries.len();
    let mut msgs: Vec<pb::ImportHashesRequest> = entries
        .chunks(BATCH)
        .map(|c| pb::ImportHashesRequest {
            entries: c.to_vec(),
            ..Default::default()
        })
        .collect();
    if msgs.is_empty() {
        msgs.push(pb::ImportHashesRequest::default());
    }
    msgs[0].set = a.set.clone();
    msgs[0].description = format!("VICS cases (first import: {name})");
    msgs[0].cases = cases;
    let mut client = connect(&a.client).await?;
    let r = client
        .import_hashes(tokio_stream::iter(msgs))
        .await
        .map_err(|s| anyhow::anyhow!("{}; nothing was imported", status_error(s)))?
        .into_inner();
    println!(
        "imported {} cases, {media} media from {name} into hash set {} ({} entries now)",
        file.cases.len(),
        a.set,
        r.entries
    );
    Ok(())
}

/// The hash-set entries and case records of a VICS file. A media's record
/// is the media object as given; a case's is `[case without Media,
/// envelope without value]`.
fn to_entries(file: &vics::File) -> anyhow::Result<(Vec<pb::HashEntry>, Vec<pb::HashCase>)> {
    let mut entries = Vec::new();
    let mut cases = Vec::new();
    for c in &file.cases {
        let source = match c.fields.get("SourceApplicationName") {
            Some(serde_json::Value::String(s)) if !s.is_empty() => format!("VICS:{s}"),
            _ => "VICS".to_string(),
        };
        for m in &c.media {
            entries.push(pb::HashEntry {
                md5: m.md5.clone(),
                sha1: m.sha1.clone(),
                sha256: m.sha256.clone(),
                category: m.category.clone(),
                source: source.clone(),
                series: m.series.clone(),
                victim_identified: m.victim_identified,
                case_id: c.id.clone(),
                record: serde_json::to_string(&m.fields)?,
            });
        }
        cases.push(pb::HashCase {
            case_id: c.id.clone(),
            record: serde_json::to_string(&(&c.fields, &file.envelope))?,
        });
    }
    Ok((entries, cases))
}

async fn export(a: VicsExportArgs) -> anyhow::Result<()> {
    let mut client = connect(&a.client).await?;
    let mut stream = client
        .export_hashes(pb::ExportHashesRequest {
            set: a.set.clone(),
            case_id: a.case.clone().unwrap_or_default(),
        })
        .await
        .map_err(status_error)?
        .into_inner();
    let mut cases: Vec<pb::HashCase> = Vec::new();
    let mut entries: Vec<pb::HashEntry> = Vec::new();
    while let Some(msg) = stream.message().await.map_err(status_error)? {
        cases.extend(msg.cases);
        entries.extend(msg.entries);
    }
    let (envelope, out_cases) = from_entries(&cases, entries)?;
    let text = vics::write(&envelope, &out_cases)?;
    match &a.out {
        Some(p) => {
            std::fs::write(p, text + "\n").with_context(|| format!("writing {}", p.display()))?
        }
        None => {
            let mut o = std::io::stdout().lock();
            o.write_all(text.as_bytes())?;
            o.write_all(b"\n")?;
        }
    }
    Ok(())
}

/// Rebuilds cases from the set's records: the envelope of the first case,
/// each case's fields, and its media in import order. An entry imported
/// without a VICS record (`vidx hashset import`) is written from its
/// columns.
fn from_entries(
    cases: &[pb::HashCase],
    entries: Vec<pb::HashEntry>,
) -> anyhow::Result<(Ordered, Vec<Case>)> {
    let mut envelope: Option<Ordered> = None;
    let mut out: Vec<Case> = Vec::new();
    for c in cases {
        let (fields, env): (Ordered, Ordered) =
            serde_json::from_str(&c.record).with_context(|| {
                format!("case {:?}: its stored record is not a VICS case", c.case_id)
            })?;
        envelope.get_or_insert(env);
        out.push(Case {
            id: c.case_id.clone(),
            fields,
            media: Vec::new(),
        });
    }
    for e in entries {
        let fields = if e.record.is_empty() {
            columns_as_media(&e)
        } else {
            serde_json::from_str(&e.record).context("a stored media record is not a JSON object")?
        };
        let media = Media {
            fields,
            ..Default::default()
        };
        match out.iter_mut().find(|c| c.id == e.case_id) {
            Some(c) => c.media.push(media),
            None => {
                if e.case_id.is_empty() && out.iter().all(|c| !c.id.is_empty()) {
                    out.push(Case {
                        id: String::new(),
                        fields: Ordered(vec![("Media".into(), serde_json::Value::Null)]),
                        media: Vec::new(),
                    });
                }
                match out.iter_mut().find(|c| c.id == e.case_id) {
                    Some(c) => c.media.push(media),
                    None => bail!("entry of case {:?}, which the set does not hold", e.case_id),
                }
            }
        }
    }
    let envelope = envelope.unwrap_or_else(|| {
        Ordered(vec![(
            "odata.metadata".into(),
            serde_json::Value::String(
                "http://github.com/ICMEC/ProjectVic/DataModels/1.3.xml/$metadata#Cases".into(),
            ),
        )])
    });
    Ok((envelope, out))
}

/// A VICS media object from an entry's columns.
fn columns_as_media(e: &pb::HashEntry) -> Ordered {
    use serde_json::Value;
    let mut f = Vec::new();
    for (k, d) in [("MD5", &e.md5), ("SHA1", &e.sha1), ("SHA256", &e.sha256)] {
        if !d.is_empty() {
            f.push((k.to_string(), Value::String(hex::encode_upper(d))));
        }
    }
    if !e.category.is_empty() {
        let v = e
            .category
            .parse::<i64>()
            .map_or_else(|_| Value::String(e.category.clone()), Value::from);
        f.push(("Category".into(), v));
    }
    if !e.series.is_empty() {
        f.push(("Series".into(), Value::String(e.series.clone())));
    }
    f.push(("VictimIdentified".into(), Value::Bool(e.victim_identified)));
    Ordered(f)
}
