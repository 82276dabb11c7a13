//! The security side of the command line: `vidx token create | list |
//! revoke`, `vidx restrict`, `vidx whoami`, and `vidx audit verify | export`
//! (`serve`'s TLS, audit and limit flags are in [`crate::cli::serve`]).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::Subcommand;

use crate::api::access::Role;
use crate::api::tokens::{TokenStore, now, parse_lifetime};
use crate::cli::client::{ClientArgs, connect, status_error};
use crate::cli::table;
use crate::pb;
use crate::storage::audit;
use crate::storage::lock::DirLock;

#[derive(Subcommand, Debug)]
pub enum TokenCommand {
    /// Make a bearer token; prints it once (only its hash is kept).
    Create(TokenCreateArgs),
    /// List tokens (ids, agencies, roles, expiry; never the tokens).
    List(TokenTarget),
    /// Revoke a token (tok-...) or a client certificate (cert:...).
    Revoke(TokenRevokeArgs),
}

/// Where tokens are managed: the data directory of a stopped server
/// (`--data-dir`), else the running server (an admin's credentials).
#[derive(clap::Args, Debug)]
pub struct TokenTarget {
    /// Edit `<DIR>/tokens.json` directly; the server must be stopped.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(clap::Args, Debug)]
pub struct TokenCreateArgs {
    /// The agency the token acts for, e.g. DE-BKA.
    #[arg(long)]
    pub agency: String,
    /// reader, contributor, analyst or admin.
    #[arg(long)]
    pub role: Role,
    /// Limit the token to these collections.
    #[arg(long, value_delimiter = ',')]
    pub collections: Vec<String>,
    /// Lifetime, e.g. 90d, 12h, 30m.
    #[arg(long, value_parser = parse_lifetime)]
    pub expires: Option<i64>,
    #[command(flatten)]
    pub target: TokenTarget,
}

#[derive(clap::Args, Debug)]
pub struct TokenRevokeArgs {
    /// tok-... or cert:...
    pub id: String,
    #[command(flatten)]
    pub target: TokenTarget,
}

fn offline_store(dir: &Path) -> anyhow::Result<(DirLock, TokenStore)> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let lock = DirLock::acquire(dir).map_err(|e| {
        anyhow::anyhow!("{e}; while it runs, manage tokens through it: leave out --data-dir and use an admin's credentials")
    })?;
    Ok((lock, TokenStore::open(dir)?))
}

fn time(t: i64) -> String {
    if t == 0 {
        return "-".into();
    }
    let d = std::time::UNIX_EPOCH + std::time::Duration::from_secs(t.max(0) as u64);
    humantime::format_rfc3339_seconds(d).to_string()
}

pub async fn token(cmd: TokenCommand) -> anyhow::Result<()> {
    match cmd {
        TokenCommand::Create(a) => {
            let req = pb::CreateTokenRequest {
                agency: a.agency.clone(),
                role: a.role.to_string(),
                collections: a.collections.clone(),
                expires_in: a.expires.unwrap_or(0),
            };
            let resp = match &a.target.data_dir {
                Some(dir) => {
                    let (_lock, store) = offline_store(dir)?;
                    crate::api::admin::create_token(&store, req)?
                }
                None => connect(&a.target.client)
                    .await?
                    .create_token(req)
                    .await
                    .map_err(status_error)?
                    .into_inner(),
            };
            let info = resp.info.unwrap_or_default();
            eprintln!(
                "token {} for agency {} (role {}){}; it is shown only now:",
                info.id,
                info.agency,
                info.role,
                if info.expires_at > 0 {
                    format!(", expires {}", time(info.expires_at))
                } else {
                    String::new()
                }
            );
            println!("{}", resp.token);
            Ok(())
        }
        TokenCommand::List(t) => {
            let resp = match &t.data_dir {
                Some(dir) => {
                    let (_lock, store) = offline_store(dir)?;
                    crate::api::admin::list_tokens(&store)
                }
                None => connect(&t.client)
                    .await?
                    .list_tokens(pb::ListTokensRequest {})
                    .await
                    .map_err(status_error)?
                    .into_inner(),
            };
            let mut tab = table::Table::new(
                &[
                    "id",
                    "agency",
                    "role",
                    "collections",
                    "created",
                    "expires",
                    "state",
                ],
                &[],
            );
            let n = now();
            for tk in resp.tokens {
                let state = if tk.revoked_at > 0 {
                    format!("revoked {}", time(tk.revoked_at))
                } else if tk.expires_at > 0 && tk.expires_at <= n {
                    "expired".into()
                } else {
                    "valid".into()
                };
                tab.row(vec![
                    tk.id,
                    tk.agency,
                    tk.role,
                    if tk.collections.is_empty() {
                        "all".into()
                    } else {
                        tk.collections.join(",")
                    },
                    time(tk.created_at),
                    time(tk.expires_at),
                    state,
                ]);
            }
            println!("{}", tab.render());
            for c in resp.revoked_certificates {
                println!("revoked client certificate {c}");
            }
            Ok(())
        }
        TokenCommand::Revoke(a) => {
            match &a.target.data_dir {
                Some(dir) => {
                    let (_lock, store) = offline_store(dir)?;
                    println!("{}", store.revoke(&a.id)?);
                }
                None => {
                    connect(&a.target.client)
                        .await?
                        .revoke_token(pb::RevokeTokenRequest { id: a.id.clone() })
                        .await
                        .map_err(status_error)?;
                    println!("{} revoked", a.id);
                }
            }
            Ok(())
        }
    }
}

#[derive(clap::Args, Debug)]
pub struct RestrictArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// The upload to restrict (one of the caller's agency's).
    #[arg(long)]
    pub upload: String,
    /// Agencies besides the caller's that may see it.
    #[arg(long, value_delimiter = ',')]
    pub share_with: Vec<String>,
    /// Let others whose searches find this material know that the caller's
    /// agency holds matching restricted material (nothing else of it).
    #[arg(long)]
    pub deconfliction: bool,
    /// Lift the restriction.
    #[arg(long)]
    pub lift: bool,
    /// Admin only: the owning agency.
    #[arg(long, default_value = "")]
    pub owner: String,
}

pub async fn restrict(a: RestrictArgs) -> anyhow::Result<()> {
    let r = connect(&a.client)
        .await?
        .restrict_upload(pb::RestrictUploadRequest {
            upload_id: a.upload.clone(),
            shared_with: a.share_with.clone(),
            deconfliction: a.deconfliction,
            lift: a.lift,
            owner: a.owner.clone(),
        })
        .await
        .map_err(status_error)?
        .into_inner();
    if r.restricted {
        let shared: BTreeSet<String> = r.shared_with.into_iter().collect();
        println!(
            "upload {} of {} restricted to {}{}{}",
            r.upload_id,
            r.owner,
            r.owner,
            shared.iter().map(|s| format!(", {s}")).collect::<String>(),
            if r.deconfliction {
                " (deconfliction on)"
            } else {
                ""
            }
        );
    } else {
        println!("upload {} of {}: restriction lifted", r.upload_id, r.owner);
    }
    Ok(())
}

pub async fn whoami(a: ClientArgs) -> anyhow::Result<()> {
    let r = connect(&a)
        .await?
        .who_am_i(pb::WhoAmIRequest {})
        .await
        .map_err(status_error)?
        .into_inner();
    println!(
        "agency {} role {} credential {}{}",
        if r.agency.is_empty() { "-" } else { &r.agency },
        r.role,
        r.credential,
        if r.collections.is_empty() {
            String::new()
        } else {
            format!(" collections {}", r.collections.join(","))
        }
    );
    Ok(())
}

#[derive(Subcommand, Debug)]
pub enum AuditCommand {
    /// Check every record's hash, the chain and the signed checkpoints;
    /// prints the record count or the first bad record and why.
    Verify {
        /// The audit directory (e.g. <data-dir>/audit).
        dir: PathBuf,
        /// The Ed25519 public key (hex) to check checkpoints with, kept
        /// apart from the log [default: the directory's audit.pub].
        #[arg(long)]
        public_key: Option<String>,
    },
    /// Print records as JSON lines.
    Export {
        /// The audit directory (e.g. <data-dir>/audit).
        dir: PathBuf,
        /// Only the records of this agency.
        #[arg(long)]
        agency: Option<String>,
        /// Unix seconds or a UTC date (2024-01-31).
        #[arg(long, value_parser = crate::cli::parse_time)]
        since: Option<i64>,
    },
}

pub fn audit_cmd(cmd: AuditCommand) -> anyhow::Result<()> {
    match cmd {
        AuditCommand::Verify { dir, public_key } => {
            let v = audit::verify(&dir, public_key.as_deref())?;
            println!("{v}");
            if matches!(v, audit::Verdict::Broken { .. }) {
                bail!("the audit log in {} is damaged", dir.display());
            }
            Ok(())
        }
        AuditCommand::Export { dir, agency, since } => {
            let stdout = std::io::stdout();
            let mut out = std::io::BufWriter::new(stdout.lock());
            audit::export(&dir, agency.as_deref(), since, &mut out)?;
            Ok(())
        }
    }
}
