//! `vidx hash` (digests and PDQ of local files; nothing is sent anywhere),
//! `vidx hashset import|list|lookup|drop` (exact-hash sets on the server,
//! and the PDQ hashes of known material into a perceptual-hash collection).

use std::io::{BufRead, Write};
use std::path::PathBuf;

use anyhow::{Context, bail};
use rayon::prelude::*;

use crate::cli::client::{ClientArgs, connect, status_error};
use crate::io::filehash::{self, FileHashes};
use crate::pb;

#[derive(clap::Args, Debug)]
pub struct HashArgs {
    /// Write the JSON lines here instead of stdout.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Files, or directories (walked recursively, hidden entries skipped).
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
}

/// Hashes files locally: one JSON line per file, in path order.
pub fn hash(a: HashArgs) -> anyhow::Result<()> {
    let files = filehash::collect_files(&a.paths).context("listing the files to hash")?;
    let hashed: Vec<anyhow::Result<FileHashes>> = files
        .par_iter()
        .map(|p| filehash::hash_file(p).with_context(|| format!("reading {}", p.display())))
        .collect();
    let mut out: Box<dyn Write> = match &a.out {
        Some(p) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(p).with_context(|| format!("creating {}", p.display()))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    let (mut n, mut pdq) = (0usize, 0usize);
    for h in hashed {
        let h = h?;
        n += 1;
        pdq += h.pdq.is_some() as usize;
        serde_json::to_writer(&mut out, &h)?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    if a.out.is_some() {
        eprintln!("hashed {n} files ({pdq} pictures with a PDQ hash)");
    }
    Ok(())
}

/// Triage items with the hashes of local files: a file whose SHA-1 is an
/// item's media id (or id) lends it its hashes; every other file becomes
/// an item of its own (id = its SHA-1). Returns the items and, for the
/// files, id → path.
pub fn with_file_hashes(
    mut items: Vec<pb::TriageItem>,
    paths: &[PathBuf],
) -> anyhow::Result<(
    Vec<pb::TriageItem>,
    std::collections::HashMap<String, String>,
)> {
    let mut names = std::collections::HashMap::new();
    if paths.is_empty() {
        return Ok((items, names));
    }
    let files = filehash::collect_files(paths).context("listing the files to hash")?;
    let hashed: Vec<FileHashes> = files
        .par_iter()
        .map(|p| filehash::hash_file(p).with_context(|| format!("reading {}", p.display())))
        .collect::<anyhow::Result<_>>()?;
    let mut index: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for (i, it) in items.iter().enumerate() {
        let key = it
            .metadata
            .as_ref()
            .map(|m| m.media_id.clone())
            .filter(|m| !m.is_empty())
            .unwrap_or_else(|| it.id.clone());
        index.insert(key, i);
    }
    for h in hashed {
        let i = match index.get(&h.sha1) {
            Some(&i) => i,
            None => {
                items.push(pb::TriageItem {
                    id: h.sha1.clone(),
                    metadata: Some(pb::Metadata {
                        media_id: h.sha1.clone(),
                        ..Default::default()
                    }),
                    ..Default::default()
                });
                index.insert(h.sha1.clone(), items.len() - 1);
                items.len() - 1
            }
        };
        let it = &mut items[i];
        it.md5 = h.md5_bytes();
        it.sha1 = h.sha1_bytes();
        it.sha256 = h.sha256_bytes();
        it.pdq = h.pdq_bytes().unwrap_or_default();
        it.pdq_quality = h.quality.unwrap_or(0);
        names.insert(it.id.clone(), h.path.clone());
    }
    Ok((items, names))
}

#[derive(clap::Subcommand, Debug)]
pub enum HashSetCommand {
    /// Import `vidx hash` lines (or lines with md5/sha1/sha256 and the
    /// optional fields below) as known material into an exact-hash set.
    Import(Box<HashSetImportArgs>),
    /// List the server's hash sets.
    List(ClientArgs),
    /// Look digests (hex MD5, SHA-1 or SHA-256) up in the hash sets.
    Lookup(HashSetLookupArgs),
    /// Remove a hash set.
    Drop(HashSetDropArgs),
}

#[derive(clap::Args, Debug)]
pub struct HashSetImportArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// The set to import into (created if absent).
    #[arg(long)]
    pub set: String,
    /// A description kept with a new set.
    #[arg(long, default_value = "")]
    pub description: String,
    /// Category of every line that has none of its own.
    #[arg(long, default_value = "")]
    pub category: String,
    /// Series label of every line that has none of its own.
    #[arg(long, default_value = "")]
    pub series: String,
    /// Source of every line that has none of its own.
    #[arg(long, default_value = "")]
    pub source: String,
    /// The victims of these files are identified.
    #[arg(long)]
    pub identified: bool,
    /// Also store the lines' PDQ hashes in this PERCEPTUAL_HASH collection
    /// (created if absent), with the series, category and flag as metadata.
    #[arg(long)]
    pub pdq_collection: Option<String>,
    /// JSON lines files.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
}

#[derive(clap::Args, Debug)]
pub struct HashSetLookupArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// Sets to look in (default: all).
    #[arg(long = "set", value_delimiter = ',')]
    pub sets: Vec<String>,
    /// Hex digests.
    #[arg(required = true)]
    pub digests: Vec<String>,
}

#[derive(clap::Args, Debug)]
pub struct HashSetDropArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// The hash set to remove.
    pub set: String,
}

/// A line of a hash-set import: `vidx hash` output, plus optional fields.
#[derive(serde::Deserialize, Debug, Default)]
#[serde(default)]
struct ImportLine {
    path: String,
    md5: String,
    sha1: String,
    sha256: String,
    pdq: Option<String>,
    quality: Option<u32>,
    category: Option<String>,
    series: Option<String>,
    source: Option<String>,
    victim_identified: Option<bool>,
}

pub async fn hashset(cmd: HashSetCommand) -> anyhow::Result<()> {
    match cmd {
        HashSetCommand::Import(a) => import(*a).await,
        HashSetCommand::List(c) => list(c).await,
        HashSetCommand::Lookup(a) => lookup(a).await,
        HashSetCommand::Drop(a) => {
            let mut client = connect(&a.client).await?;
            client
                .drop_hash_set(pb::DropHashSetRequest { set: a.set.clone() })
                .await
                .map_err(status_error)?;
            println!("dropped hash set {}", a.set);
            Ok(())
        }
    }
}

/// Decodes a hex field of line `n` of `file`; empty stays empty.
fn hex_field(file: &str, n: usize, field: &str, v: &str) -> anyhow::Result<Vec<u8>> {
    if v.is_empty() {
        return Ok(Vec::new());
    }
    hex::decode(v).with_context(|| format!("{file} line {n}: {field} {v:?} is not hex"))
}

/// Reads the import lines: hash-set entries, and PDQ points if wanted.
fn read_import(a: &HashSetImportArgs) -> anyhow::Result<(Vec<pb::HashEntry>, Vec<pb::Point>)> {
    let mut entries = Vec::new();
    let mut points = Vec::new();
    for f in &a.files {
        let name = f.display().to_string();
        let r = std::io::BufReader::new(
            std::fs::File::open(f).with_context(|| format!("opening {name}"))?,
        );
        for (i, line) in r.lines().enumerate() {
            let line = line.with_context(|| format!("reading {name}"))?;
            if line.trim().is_empty() {
                continue;
            }
            let l: ImportLine = serde_json::from_str(&line)
                .with_context(|| format!("{name} line {}: not an import line", i + 1))?;
            let e = pb::HashEntry {
                md5: hex_field(&name, i + 1, "md5", &l.md5)?,
                sha1: hex_field(&name, i + 1, "sha1", &l.sha1)?,
                sha256: hex_field(&name, i + 1, "sha256", &l.sha256)?,
                category: l.category.unwrap_or_else(|| a.category.clone()),
                source: l.source.unwrap_or_else(|| a.source.clone()),
                series: l.series.unwrap_or_else(|| a.series.clone()),
                victim_identified: l.victim_identified.unwrap_or(a.identified),
                ..Default::default()
            };
            if let (Some(pdq), Some(_)) = (&l.pdq, &a.pdq_collection) {
                points.push(pdq_point(
                    &name,
                    i + 1,
                    (&l.path, &l.sha1, l.quality),
                    pdq,
                    &e,
                )?);
            }
            entries.push(e);
        }
    }
    Ok((entries, points))
}

/// A known file's PDQ hash as a point: id and media id its SHA-1 (else
/// its path), series and flag as metadata, the category as a
/// `category:<c>` tag.
fn pdq_point(
    file: &str,
    n: usize,
    (path, sha1, quality): (&str, &str, Option<u32>),
    pdq: &str,
    e: &pb::HashEntry,
) -> anyhow::Result<pb::Point> {
    let id = if sha1.is_empty() { path } else { sha1 }.to_string();
    let mut tags = Vec::new();
    if !e.category.is_empty() {
        tags.push(format!("category:{}", e.category));
    }
    Ok(pb::Point {
        id: id.clone(),
        bits: hex_field(file, n, "pdq", pdq)?,
        quality: quality.unwrap_or(100),
        metadata: Some(pb::Metadata {
            media_id: id,
            series_label: e.series.clone(),
            victim_identified: e.victim_identified,
            tags,
            ..Default::default()
        }),
        ..Default::default()
    })
}

async fn import(a: HashSetImportArgs) -> anyhow::Result<()> {
    let (entries, points) = read_import(&a)?;
    if entries.is_empty() {
        bail!("no lines to import in {:?}", a.files);
    }
    let mut client = connect(&a.client).await?;
    let msgs: Vec<pb::ImportHashesRequest> = entries
        .chunks(10_000)
        .enumerate()
        .map(|(i, c)| pb::ImportHashesRequest {
            set: if i == 0 { a.set.clone() } else { String::new() },
            description: if i == 0 {
                a.description.clone()
            } else {
                String::new()
            },
            entries: c.to_vec(),
            cases: Vec::new(),
        })
        .collect();
    let r = client
        .import_hashes(tokio_stream::iter(msgs))
        .await
        .map_err(status_error)?
        .into_inner();
    println!(
        "imported {} entries into hash set {} ({} now)",
        r.imported, a.set, r.entries
    );
    if let Some(c) = &a.pdq_collection {
        let n = points.len();
        upsert_pdq(&mut client, c, points).await?;
        println!("stored {n} PDQ hashes in collection {c}");
    }
    Ok(())
}

/// Creates the PDQ collection if absent (256-bit, HAMMING) and upserts.
pub async fn upsert_pdq(
    client: &mut crate::api::client::Client,
    collection: &str,
    points: Vec<pb::Point>,
) -> anyhow::Result<()> {
    let exists = client
        .describe_collection(pb::DescribeCollectionRequest {
            name: collection.to_string(),
        })
        .await;
    match exists {
        Ok(info) if info.get_ref().kind != pb::Kind::PerceptualHash as i32 => {
            bail!("collection {collection} is not a PERCEPTUAL_HASH collection")
        }
        Ok(_) => {}
        Err(s) if s.code() == tonic::Code::NotFound => {
            client
                .create_collection(pb::CreateCollectionRequest {
                    name: collection.to_string(),
                    dim: 256,
                    metric: pb::Metric::Hamming as i32,
                    kind: pb::Kind::PerceptualHash as i32,
                    ..Default::default()
                })
                .await
                .map_err(status_error)?;
        }
        Err(s) => return Err(status_error(s)),
    }
    let batches: Vec<pb::UpsertRequest> = points
        .chunks(5000)
        .map(|c| pb::UpsertRequest {
            collection: collection.to_string(),
            points: c.to_vec(),
        })
        .collect();
    client
        .upsert(tokio_stream::iter(batches))
        .await
        .map_err(status_error)?;
    Ok(())
}

async fn list(c: ClientArgs) -> anyhow::Result<()> {
    let mut client = connect(&c).await?;
    let r = client
        .list_hash_sets(pb::ListHashSetsRequest {})
        .await
        .map_err(status_error)?
        .into_inner();
    let mut t = crate::cli::table::Table::new(
        &[
            "name",
            "owner",
            "entries",
            "parts",
            "cases",
            "disk",
            "description",
        ],
        &[2, 3, 4, 5],
    );
    for s in r.sets {
        t.row(vec![
            s.name,
            if s.owner.is_empty() {
                "-".into()
            } else {
                s.owner
            },
            s.entries.to_string(),
            s.parts.to_string(),
            s.case_ids.len().to_string(),
            crate::cli::table::bytes(s.disk_bytes),
            s.description,
        ]);
    }
    println!("{}", t.render());
    Ok(())
}

async fn lookup(a: HashSetLookupArgs) -> anyhow::Result<()> {
    let digests = a
        .digests
        .iter()
        .map(|d| hex::decode(d).with_context(|| format!("digest {d:?} is not hex")))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut client = connect(&a.client).await?;
    let r = client
        .lookup_hashes(pb::LookupHashesRequest {
            sets: a.sets.clone(),
            digests,
        })
        .await
        .map_err(status_error)?
        .into_inner();
    let mut t = crate::cli::table::Table::new(
        &[
            "digest",
            "set",
            "category",
            "series",
            "identified",
            "case",
            "source",
        ],
        &[],
    );
    for m in r.matches {
        let e = m.entry.unwrap_or_default();
        t.row(vec![
            a.digests[m.digest as usize].clone(),
            m.set,
            e.category,
            e.series,
            if e.victim_identified { "yes" } else { "no" }.into(),
            e.case_id,
            e.source,
        ]);
    }
    println!("{}", t.render());
    Ok(())
}
