//! Bearer tokens and revoked client certificates, kept in
//! `<data-dir>/tokens.json` (replaced atomically and durably on change).
//!
//! A token is `vidx_` + 64 hex digits (256 random bits), shown once when it
//! is made. Only its SHA-256 is stored: a stolen tokens file does not let
//! anyone call the server. Each token has an id (`tok-…`, what logs, errors
//! and the audit log name), an agency, a role, optionally a list of
//! collections and an expiry, and once revoked, the time it was.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::Digest;

use crate::api::access::{Role, check_agency};
use crate::error::{Error, Result};
use crate::storage::durable;

pub const TOKENS_FILE: &str = "tokens.json";
const FORMAT: &str = "vidx-tokens/1";
const PREFIX: &str = "vidx_";

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TokenRecord {
    pub id: String,
    pub agency: String,
    pub role: Role,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collections: Option<BTreeSet<String>>,
    /// Unix seconds.
    pub created_at: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<i64>,
    /// Hex SHA-256 of the token.
    pub sha256: String,
}

#[derive(Clone, Default, Serialize, Deserialize)]
struct File {
    format: String,
    tokens: Vec<TokenRecord>,
    /// Credential ids (`cert:…`) of client certificates no longer accepted.
    #[serde(default)]
    revoked_certs: BTreeSet<String>,
}

#[derive(Default)]
struct State {
    file: File,
    by_hash: HashMap<String, usize>,
}

/// Why a presented token is refused (all UNAUTHENTICATED); none of them
/// repeats the token.
#[derive(Debug, PartialEq)]
pub enum Refusal {
    Unknown,
    Expired(String),
    Revoked(String),
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::Unknown => f.write_str("the bearer token is not valid"),
            Refusal::Expired(id) => write!(f, "token {id} has expired"),
            Refusal::Revoked(id) => write!(f, "token {id} has been revoked"),
        }
    }
}

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

fn sha256_hex(token: &str) -> String {
    hex::encode(sha2::Sha256::digest(token.as_bytes()))
}

/// The tokens of a data directory.
pub struct TokenStore {
    path: PathBuf,
    state: RwLock<Arc<State>>,
    write: Mutex<()>,
}

impl TokenStore {
    /// Opens `<data_dir>/tokens.json` (none yet = no tokens).
    pub fn open(data_dir: &Path) -> Result<TokenStore> {
        let path = data_dir.join(TOKENS_FILE);
        let file = match std::fs::read(&path) {
            Ok(bytes) => {
                let f: File = serde_json::from_slice(&bytes)
                    .map_err(|e| Error::data_loss(&path, format!("not a tokens file: {e}")))?;
                if f.format != FORMAT {
                    return Err(Error::FailedPrecondition(format!(
                        "{}: format {:?}; this vidx reads {FORMAT:?}",
                        path.display(),
                        f.format
                    )));
                }
                f
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => File {
                format: FORMAT.into(),
                ..Default::default()
            },
            Err(e) => return Err(Error::io(&path, e)),
        };
        Ok(TokenStore {
            path,
            state: RwLock::new(Arc::new(index(file))),
            write: Mutex::new(()),
        })
    }

    /// Whether any credential was ever made here (tokens, revoked ones
    /// included): from then on the server requires authentication.
    pub fn has_tokens(&self) -> bool {
        !self.state.read().file.tokens.is_empty()
    }

    /// Makes a token; returns the token (shown once) and its record.
    pub fn create(
        &self,
        agency: &str,
        role: Role,
        collections: Option<BTreeSet<String>>,
        expires_at: Option<i64>,
    ) -> Result<(String, TokenRecord)> {
        check_agency("agency", agency).map_err(Error::InvalidArgument)?;
        let mut secret = [0u8; 32];
        rand::rng().fill_bytes(&mut secret);
        let token = format!("{PREFIX}{}", hex::encode(secret));
        let mut id = [0u8; 6];
        rand::rng().fill_bytes(&mut id);
        let rec = TokenRecord {
            id: format!("tok-{}", hex::encode(id)),
            agency: agency.to_string(),
            role,
            collections,
            created_at: now(),
            expires_at,
            revoked_at: None,
            sha256: sha256_hex(&token),
        };
        self.update(|f| {
            f.tokens.push(rec.clone());
            Ok(())
        })?;
        Ok((token, rec))
    }

    pub fn list(&self) -> Vec<TokenRecord> {
        self.state.read().file.tokens.clone()
    }

    /// Revokes a token (`tok-…`) or a client certificate (`cert:…`).
    pub fn revoke(&self, id: &str) -> Result<String> {
        if id.starts_with("cert:") {
            let id = id.to_string();
            self.update(|f| {
                f.revoked_certs.insert(id.clone());
                Ok(())
            })?;
            return Ok(format!("client certificate {id} revoked"));
        }
        self.update(|f| {
            let t = f.tokens.iter_mut().find(|t| t.id == id).ok_or_else(|| {
                Error::InvalidArgument(format!("no token with id {id:?} (see `vidx token list`)"))
            })?;
            if t.revoked_at.is_none() {
                t.revoked_at = Some(now());
            }
            Ok(())
        })?;
        Ok(format!("token {id} revoked"))
    }

    /// The token's record if it is valid now.
    pub fn authenticate(&self, token: &str) -> std::result::Result<TokenRecord, Refusal> {
        let state = self.state.read().clone();
        let Some(&i) = state.by_hash.get(&sha256_hex(token)) else {
            return Err(Refusal::Unknown);
        };
        let t = &state.file.tokens[i];
        if t.revoked_at.is_some() {
            return Err(Refusal::Revoked(t.id.clone()));
        }
        if t.expires_at.is_some_and(|e| now() >= e) {
            return Err(Refusal::Expired(t.id.clone()));
        }
        Ok(t.clone())
    }

    pub fn revoked_certs(&self) -> Vec<String> {
        self.state
            .read()
            .file
            .revoked_certs
            .iter()
            .cloned()
            .collect()
    }

    pub fn cert_revoked(&self, credential: &str) -> bool {
        self.state.read().file.revoked_certs.contains(credential)
    }

    fn update(&self, change: impl FnOnce(&mut File) -> Result<()>) -> Result<()> {
        let _w = self.write.lock();
        let mut file = self.state.read().file.clone();
        change(&mut file)?;
        let bytes = serde_json::to_vec_pretty(&file)
            .map_err(|e| Error::Internal(format!("encoding tokens: {e}")))?;
        durable::write_durably(&self.path, &bytes)?;
        *self.state.write() = Arc::new(index(file));
        Ok(())
    }
}

fn index(file: File) -> State {
    let by_hash = file
        .tokens
        .iter()
        .enumerate()
        .map(|(i, t)| (t.sha256.clone(), i))
        .collect();
    State { file, by_hash }
}

/// Parses a lifetime such as `90d`, `12h`, `30m` or `3600s` into seconds.
pub fn parse_lifetime(s: &str) -> std::result::Result<i64, String> {
    let (num, unit) = s.split_at(s.trim_end_matches(|c: char| c.is_ascii_alphabetic()).len());
    let n: i64 = num
        .parse()
        .map_err(|_| format!("lifetime {s:?}: use a number and d, h, m or s, e.g. 90d"))?;
    let mult = match unit {
        "d" => 86_400,
        "h" => 3_600,
        "m" => 60,
        "s" | "" => 1,
        _ => return Err(format!("lifetime {s:?}: the unit must be d, h, m or s")),
    };
    if n <= 0 {
        return Err(format!("lifetime {s:?} must be positive"));
    }
    n.checked_mul(mult)
        .ok_or_else(|| format!("lifetime {s:?} is too long"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_stored_as_hashes_and_refused_when_revoked_or_expired() {
        let dir = tempfile::tempdir().unwrap();
        let store = TokenStore::open(dir.path()).unwrap();
        assert!(!store.has_tokens());
        let (tok, rec) = store.create("DE-BKA", Role::Analyst, None, None).unwrap();
        assert!(tok.starts_with("vidx_") && tok.len() == 69);
        let file = std::fs::read_to_string(dir.path().join(TOKENS_FILE)).unwrap();
        assert!(
            !file.contains(&tok[5..]),
            "the token itself is never stored"
        );
        assert_eq!(store.authenticate(&tok).unwrap().id, rec.id);
        // Reopened from disk.
        let store = TokenStore::open(dir.path()).unwrap();
        assert_eq!(store.authenticate(&tok).unwrap().agency, "DE-BKA");
        assert_eq!(store.authenticate("vidx_00"), Err(Refusal::Unknown));
        store.revoke(&rec.id).unwrap();
        assert_eq!(
            store.authenticate(&tok),
            Err(Refusal::Revoked(rec.id.clone()))
        );
        let (old, rec2) = store
            .create("FR-OCRVP", Role::Reader, None, Some(now() - 1))
            .unwrap();
        assert_eq!(store.authenticate(&old), Err(Refusal::Expired(rec2.id)));
        assert!(
            store
                .create("bad agency", Role::Reader, None, None)
                .is_err()
        );
    }

    #[test]
    fn lifetimes_parse() {
        assert_eq!(parse_lifetime("90d"), Ok(90 * 86_400));
        assert_eq!(parse_lifetime("2h"), Ok(7_200));
        assert_eq!(parse_lifetime("45s"), Ok(45));
        assert!(parse_lifetime("3w").is_err());
        assert!(parse_lifetime("0d").is_err());
        assert!(parse_lifetime("d").is_err());
    }
}
