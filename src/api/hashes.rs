//! The exact-hash set RPCs: `ImportHashes` (whole or not at all),
//! `LookupHashes`, `ListHashSets`, `ExportHashes`, `DropHashSet`. The
//! service's trait methods call these.
//!
//! Who may: the gate asks a reader for the reads, a contributor for an
//! import and an admin for a drop (`api::access`). Here, under the sets'
//! write lock: creating a set (an import into a set that does not exist)
//! is an admin's, and a set takes imports from its owner agency (the
//! creator's) or an admin. Hash sets hold digests of known material, not
//! uploads: no restriction applies to them, and a credential's collection
//! list does not limit them (a triage must never miss known material
//! because a token was limited). Each call fills its audit note.

use std::sync::Arc;

use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Status, Streaming};

use crate::api::access::{Caller, Role};
use crate::api::guard::NoteSlot;
use crate::collection::hashsets::{self, MAX_IMPORT};
use crate::collection::registry::Registry;
use crate::error::Error;
use crate::pb;
use crate::validate;

/// Entries of an export per streamed message.
const EXPORT_BATCH: usize = 1000;
/// Bytes of items per export message (well under gRPC's default 4 MiB a
/// client accepts).
const EXPORT_BYTES: usize = 2 << 20;

type Stream<T> = std::pin::Pin<Box<dyn tokio_stream::Stream<Item = Result<T, Status>> + Send>>;

/// Collects and checks an import to the end of the stream, then applies it
/// in one step: any bad entry, or the client going away, leaves the set as
/// it was.
pub async fn import(
    registry: Arc<Registry>,
    caller: Caller,
    note: NoteSlot,
    mut input: Streaming<pb::ImportHashesRequest>,
) -> Result<pb::ImportHashesResponse, Status> {
    let mut set = String::new();
    let mut description = String::new();
    let mut entries: Vec<pb::HashEntry> = Vec::new();
    let mut cases: Vec<pb::HashCase> = Vec::new();
    while let Some(msg) = input
        .message()
        .await
        .map_err(crate::api::status::transport_status)?
    {
        if set.is_empty() {
            validate::collection_name("set", &msg.set)?;
            set = msg.set.clone();
            description = msg.description.clone();
            note.0.lock().collection = set.clone();
        } else if !msg.set.is_empty() && msg.set != set {
            return Err(Status::invalid_argument(format!(
                "set {:?} differs from {set:?}, which the first message named; one import goes into one set",
                msg.set
            )));
        }
        for e in msg.entries {
            let at = format!("entries[{}]", entries.len());
            hashsets::validate_entry(&at, &e)?;
            entries.push(e);
            if entries.len() > MAX_IMPORT {
                return Err(Status::resource_exhausted(format!(
                    "more than {MAX_IMPORT} entries in one import; split it into several imports"
                )));
            }
        }
        for c in msg.cases {
            let at = format!("cases[{}]", cases.len());
            if c.case_id.is_empty() || c.case_id.len() > validate::MAX_META_STRING {
                return Err(Status::invalid_argument(format!(
                    "{at}.case_id {} must be 1 to {} bytes",
                    validate::show(&c.case_id),
                    validate::MAX_META_STRING
                )));
            }
            if cases.iter().any(|x| x.case_id == c.case_id) {
                return Err(Status::invalid_argument(format!(
                    "{at}.case_id {} appears twice in this import",
                    validate::show(&c.case_id)
                )));
            }
            cases.push(c);
        }
    }
    if set.is_empty() {
        return Err(Status::invalid_argument(
            "the import stream sent no message",
        ));
    }
    let imported = entries.len() as u64;
    note.0.lock().request = serde_json::json!({
        "set": set,
        "entries": imported,
        "cases": cases.iter().map(|c| c.case_id.clone()).collect::<Vec<_>>(),
    });
    let total = crate::api::shared::blocking(move || {
        let allow = |owner: Option<&str>| may_import(&caller, &set, owner);
        registry
            .hash_sets()
            .import(&set, &description, &caller.agency, &entries, &cases, allow)
    })
    .await?;
    note.0.lock().results = imported;
    Ok(pb::ImportHashesResponse {
        imported,
        entries: total,
    })
}

/// Whether `caller` may import into `set`, whose owner agency is `owner`
/// (`None`: the set does not exist yet, and the import creates it).
fn may_import(caller: &Caller, set: &str, owner: Option<&str>) -> Result<(), Error> {
    match owner {
        None => caller.require(
            Role::Admin,
            &format!("create hash set {set:?} (ImportHashes into a set that does not exist)"),
        ),
        Some(o) if caller.may_write_for(o) => Ok(()),
        Some(o) => Err(Error::PermissionDenied(format!(
            "hash set {set:?} belongs to agency {}; agency {} (role {}) may not import into it: \
             its owner's contributors or an admin may",
            if o.is_empty() {
                "(none: admins only)"
            } else {
                o
            },
            caller.agency,
            caller.role
        ))),
    }
}

pub async fn lookup(
    registry: Arc<Registry>,
    note: NoteSlot,
    req: pb::LookupHashesRequest,
) -> Result<pb::LookupHashesResponse, Status> {
    // The digests' count, not the digests: a lookup may hold 100,000; the
    // matched ones are the record's ids.
    note.0.lock().request = serde_json::json!({
        "sets": req.sets,
        "digests": req.digests.len(),
    });
    validate::count("digests", req.digests.len(), validate::MAX_IDS)?;
    for (i, d) in req.digests.iter().enumerate() {
        validate::digest(&format!("digests[{i}]"), d, None)?;
    }
    let (matches, ids) = crate::api::shared::blocking(move || {
        let hs = registry.hash_sets();
        let sets = hs.select("sets", &req.sets)?;
        let mut out = Vec::new();
        let mut ids = Vec::new();
        for (i, d) in req.digests.iter().enumerate() {
            for m in hs.lookup(&sets, d)? {
                // The record names what was found where: set and digest.
                ids.push(format!("{}:{}", m.set, hex::encode(d)));
                out.push(pb::HashMatch {
                    digest: i as u32,
                    set: m.set,
                    entry: Some(m.entry),
                });
            }
        }
        Ok((out, ids))
    })
    .await?;
    note.results(matches.len() as u64, ids);
    Ok(pb::LookupHashesResponse { matches })
}

pub async fn list(
    registry: Arc<Registry>,
    note: NoteSlot,
) -> Result<pb::ListHashSetsResponse, Status> {
    let sets: Vec<pb::HashSetInfo> = crate::api::shared::blocking(move || {
        Ok(registry
            .hash_sets()
            .list()
            .iter()
            .map(|s| s.info())
            .collect())
    })
    .await?;
    note.results(
        sets.len() as u64,
        sets.iter().map(|s| s.name.clone()).collect(),
    );
    Ok(pb::ListHashSetsResponse { sets })
}

/// Streams the cases first, then the entries in batches.
pub async fn export(
    registry: Arc<Registry>,
    note: NoteSlot,
    req: pb::ExportHashesRequest,
) -> Result<Stream<pb::ExportHashesResponse>, Status> {
    note.request(
        &req.set,
        serde_json::json!({ "set": req.set, "case_id": req.case_id }),
    );
    validate::collection_name("set", &req.set)?;
    let set = registry.hash_sets().get(&req.set)?;
    let case_id = req.case_id.clone();
    let (cases, entries) = crate::api::shared::blocking(move || set.export(&case_id)).await?;
    if cases.is_empty() && entries.is_empty() && !req.case_id.is_empty() {
        return Err(Error::NotFound(format!(
            "case {} is not in hash set {:?}",
            validate::show(&req.case_id),
            req.set
        ))
        .into());
    }
    note.results(
        entries.len() as u64,
        cases.iter().map(|c| c.case_id.clone()).collect(),
    );
    let (tx, rx) = mpsc::channel(4);
    tokio::spawn(async move {
        // Cases first (every message holds some, so an empty export is
        // one empty message), then entries.
        let mut msgs: Vec<pb::ExportHashesResponse> = batches(cases)
            .into_iter()
            .map(|cases| pb::ExportHashesResponse {
                cases,
                entries: Vec::new(),
            })
            .collect();
        if msgs.is_empty() {
            msgs.push(pb::ExportHashesResponse::default());
        }
        msgs.extend(
            batches(entries)
                .into_iter()
                .map(|entries| pb::ExportHashesResponse {
                    cases: Vec::new(),
                    entries,
                }),
        );
        for msg in msgs {
            if tx.send(Ok(msg)).await.is_err() {
                return;
            }
        }
    });
    Ok(Box::pin(ReceiverStream::new(rx)))
}

pub async fn drop_set(
    registry: Arc<Registry>,
    note: NoteSlot,
    req: pb::DropHashSetRequest,
) -> Result<(), Status> {
    note.request(&req.set, serde_json::json!({ "set": req.set }));
    validate::collection_name("set", &req.set)?;
    crate::api::shared::blocking(move || registry.hash_sets().drop_set(&req.set)).await
}

/// Splits an export into messages of at most [`EXPORT_BATCH`] items and
/// about [`EXPORT_BYTES`]: records may be up to a megabyte each, and a
/// message over the client's limit would fail the whole export.
fn batches<T: prost::Message>(items: Vec<T>) -> Vec<Vec<T>> {
    let mut out: Vec<Vec<T>> = Vec::new();
    let mut bytes = 0;
    for it in items {
        let n = it.encoded_len();
        match out.last_mut() {
            Some(last) if last.len() < EXPORT_BATCH && bytes + n <= EXPORT_BYTES => {
                bytes += n;
                last.push(it);
            }
            _ => {
                bytes = n;
                out.push(vec![it]);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_export_is_split_by_count_and_by_bytes() {
        let small: Vec<pb::HashEntry> = (0..2500)
            .map(|i| pb::HashEntry {
                md5: vec![i as u8; 16],
                ..Default::default()
            })
            .collect();
        let sizes: Vec<usize> = batches(small).iter().map(Vec::len).collect();
        assert_eq!(sizes, [1000, 1000, 500]);
        // Records near a megabyte: two fit in a message, never three.
        let big: Vec<pb::HashCase> = (0..5)
            .map(|i| pb::HashCase {
                case_id: format!("c{i}"),
                record: "x".repeat(900_000),
            })
            .collect();
        let msgs = batches(big);
        assert_eq!(msgs.iter().map(Vec::len).collect::<Vec<_>>(), [2, 2, 1]);
        for m in &msgs {
            let n: usize = m.iter().map(prost::Message::encoded_len).sum();
            assert!(n <= EXPORT_BYTES, "{n}");
        }
        // One item over the budget still goes, alone.
        let huge = vec![
            pb::HashCase {
                record: "y".repeat(EXPORT_BYTES + 1),
                ..Default::default()
            },
            pb::HashCase::default(),
        ];
        assert_eq!(
            batches(huge).iter().map(Vec::len).collect::<Vec<_>>(),
            [1, 1]
        );
    }
}
