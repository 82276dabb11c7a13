//! `vidx snapshot create | verify | restore`: a collection's snapshot taken
//! by the server (`CreateSnapshot`) and written to a directory here, its
//! checks, and putting it back into a (stopped server's) data directory.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use indicatif::{ProgressBar, ProgressStyle};

use crate::cli::client::{ClientArgs, connect, status_error};
use crate::cli::table;
use crate::pb;
use crate::storage::snapshot::{self, SnapshotManifest, safe_relative};

#[derive(clap::Subcommand, Debug)]
pub enum SnapshotCommand {
    /// Ask the server for a consistent snapshot of a collection (writes may
    /// continue) and write it to a new directory.
    Create(CreateArgs),
    /// Check a snapshot directory: its manifest and every file's checksum.
    Verify(VerifyArgs),
    /// Restore a snapshot into a data directory (no server may be running on
    /// it), checking every checksum first.
    Restore(RestoreArgs),
}

#[derive(clap::Args, Debug)]
pub struct CreateArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// The collection to snapshot.
    #[arg(long)]
    pub collection: String,
    /// The directory to write (must not exist, or be empty).
    #[arg(long)]
    pub out: PathBuf,
}

#[derive(clap::Args, Debug)]
pub struct VerifyArgs {
    /// The snapshot directory.
    pub dir: PathBuf,
}

#[derive(clap::Args, Debug)]
pub struct RestoreArgs {
    /// The snapshot directory.
    pub dir: PathBuf,
    /// The data directory to restore into (created if absent).
    #[arg(long)]
    pub data_dir: PathBuf,
    /// Restore under this collection name instead of the snapshot's.
    #[arg(long = "as", value_name = "NAME")]
    pub as_name: Option<String>,
}

pub async fn run(cmd: SnapshotCommand) -> anyhow::Result<()> {
    match cmd {
        SnapshotCommand::Create(a) => create(a).await,
        SnapshotCommand::Verify(a) => {
            let m = tokio::task::spawn_blocking(move || snapshot::verify(&a.dir)).await??;
            println!("{}: every checksum matches", describe(&m));
            Ok(())
        }
        SnapshotCommand::Restore(a) => tokio::task::spawn_blocking(move || restore(a)).await?,
    }
}

/// One line about a snapshot.
fn describe(m: &SnapshotManifest) -> String {
    format!(
        "snapshot of {} ({} points, {} files, {}, log record {})",
        m.collection,
        m.points,
        m.files.len(),
        table::bytes(m.total_bytes()),
        m.last_seq
    )
}

/// The files of a snapshot as they arrive: one open file at a time,
/// written in order and fsynced when the next begins.
struct Writer {
    root: PathBuf,
    open: Option<(String, File, u64)>,
    dirs: Vec<PathBuf>,
}

impl Writer {
    fn write(&mut self, c: pb::SnapshotChunk) -> anyhow::Result<()> {
        if self.open.as_ref().is_none_or(|(p, ..)| *p != c.path) {
            self.close()?;
            let path = self.root.join(safe_relative(&c.path)?);
            if let Some(parent) = path.parent()
                && !parent.exists()
            {
                std::fs::create_dir_all(parent)
                    .with_context(|| format!("creating {}", parent.display()))?;
                self.dirs.push(parent.to_owned());
            }
            let f = File::create(&path).with_context(|| format!("creating {}", path.display()))?;
            self.open = Some((c.path.clone(), f, 0));
        }
        let (path, f, written) = self.open.as_mut().expect("opened above");
        if c.offset != *written {
            bail!(
                "the server sent {path} out of order (offset {} after {written} bytes)",
                c.offset
            );
        }
        f.write_all(&c.data)
            .with_context(|| format!("writing {}", self.root.join(&*path).display()))?;
        *written += c.data.len() as u64;
        Ok(())
    }

    fn close(&mut self) -> anyhow::Result<()> {
        if let Some((p, f, _)) = self.open.take() {
            f.sync_all().with_context(|| format!("syncing {p}"))?;
        }
        Ok(())
    }

    fn finish(mut self) -> anyhow::Result<()> {
        self.close()?;
        self.dirs.push(self.root.clone());
        for d in self.dirs.iter().rev() {
            crate::storage::durable::sync_dir(d)?;
        }
        Ok(())
    }
}

/// `out` must be absent or an empty directory; returns whether it was made.
fn prepare_out(out: &Path) -> anyhow::Result<bool> {
    match std::fs::read_dir(out) {
        Ok(mut rd) => {
            if rd.next().is_some() {
                bail!(
                    "--out {}: the directory is not empty; give a new one",
                    out.display()
                );
            }
            Ok(false)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
            Ok(true)
        }
        Err(e) => Err(e).with_context(|| format!("--out {}", out.display())),
    }
}

async fn create(a: CreateArgs) -> anyhow::Result<()> {
    let made = prepare_out(&a.out)?;
    let r = receive(&a).await;
    if r.is_err() {
        // Nothing half-written stays behind to be taken for a snapshot.
        if made {
            let _ = std::fs::remove_dir_all(&a.out);
        } else if let Ok(rd) = std::fs::read_dir(&a.out) {
            for e in rd.flatten() {
                let _ =
                    std::fs::remove_dir_all(e.path()).or_else(|_| std::fs::remove_file(e.path()));
            }
        }
    }
    let m = r?;
    println!("{} written to {}; verified", describe(&m), a.out.display());
    Ok(())
}

async fn receive(a: &CreateArgs) -> anyhow::Result<SnapshotManifest> {
    let mut client = connect(&a.client).await?;
    let mut stream = client
        .create_snapshot(pb::CreateSnapshotRequest {
            collection: a.collection.clone(),
        })
        .await
        .map_err(status_error)?
        .into_inner();
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("{spinner} {msg} {bytes} ({bytes_per_sec})")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.set_message(format!("snapshot of {}", a.collection));
    let mut w = Writer {
        root: a.out.clone(),
        open: None,
        dirs: Vec::new(),
    };
    while let Some(chunk) = stream.message().await.map_err(status_error)? {
        bar.inc(chunk.data.len() as u64);
        let (root, c) = (w.root.clone(), chunk);
        w = tokio::task::spawn_blocking(move || {
            let mut w = w;
            w.write(c).map(|_| w)
        })
        .await?
        .with_context(|| format!("writing the snapshot into {}", root.display()))?;
    }
    bar.finish_and_clear();
    let out = a.out.clone();
    tokio::task::spawn_blocking(move || {
        w.finish()?;
        Ok(snapshot::verify(&out)?)
    })
    .await?
}

fn restore(a: RestoreArgs) -> anyhow::Result<()> {
    let m = snapshot::verify(&a.dir)?;
    let name = a.as_name.clone().unwrap_or_else(|| m.collection.clone());
    let rewrite = |rel: &str, bytes: Vec<u8>| -> crate::error::Result<Vec<u8>> {
        // Only the series state names its collection inside; other files
        // beside it (logs with their own framing) are copied as they are.
        if rel.starts_with("series/") && rel.ends_with(".json") {
            crate::investigate::series::renamed_state(Path::new(rel), &bytes, &name)
        } else {
            Ok(bytes)
        }
    };
    let r = crate::collection::snapshot::restore(&a.dir, &m, &a.data_dir, &name, &rewrite)?;
    println!(
        "restored the {} as collection {name} into {}",
        describe(&m),
        r.dir.display()
    );
    for f in &r.data_files {
        println!("  with {}", f.display());
    }
    if r.restrictions_added > 0 {
        println!(
            "  with {} restricted upload(s) added to {}",
            r.restrictions_added,
            a.data_dir
                .join(crate::collection::restrict::RESTRICTIONS_FILE)
                .display()
        );
    }
    println!(
        "start it with: vidx serve --data-dir {}",
        a.data_dir.display()
    );
    Ok(())
}
