//! The access RPCs' work: restricting uploads and managing tokens.

use std::collections::BTreeSet;

use crate::api::access::{Caller, Role, check_agency};
use crate::api::tokens::{TokenRecord, TokenStore, now};
use crate::collection::registry::{Registry, State};
use crate::collection::restrict::{Restriction, Restrictions};
use crate::error::{Error, Result};
use crate::index::filter::{self, Filter};
use crate::pb;

fn restriction_pb(r: &Restriction, restricted: bool) -> pb::Restriction {
    pb::Restriction {
        owner: r.owner.clone(),
        upload_id: r.upload_id.clone(),
        shared_with: r.shared_with.iter().cloned().collect(),
        deconfliction: r.deconfliction,
        restricted,
        updated_at: r.updated_at,
    }
}

/// Whether any collection holds a live point of `owner`'s `upload_id`.
fn upload_has_points(registry: &Registry, owner: &str, upload_id: &str) -> Result<bool> {
    let f = Filter {
        agencies_any: vec![owner.to_string()],
        upload_ids_any: vec![upload_id.to_string()],
        ..Default::default()
    };
    for (name, state) in registry.list() {
        match state {
            State::Ready(c) => {
                if !c.view()?.points(Some(&f))?.is_empty() {
                    return Ok(true);
                }
            }
            // Its points are not known yet: no answer rather than a wrong one.
            State::Opening => {
                return Err(Error::Unavailable(format!(
                    "collection {name:?} is still opening (replaying its write-ahead log); retry shortly"
                )));
            }
            State::Unavailable(_) => {}
        }
    }
    Ok(false)
}

/// RestrictUpload: sets, changes or lifts the restriction of one of the
/// caller's uploads (an admin may name the owner).
pub fn restrict_upload(
    registry: &Registry,
    restrictions: &Restrictions,
    caller: &Caller,
    req: pb::RestrictUploadRequest,
) -> Result<pb::Restriction> {
    filter::list("upload_id", std::slice::from_ref(&req.upload_id))?;
    let owner = if req.owner.is_empty() || req.owner == caller.agency {
        caller.agency.clone()
    } else if caller.role == Role::Admin {
        req.owner.clone()
    } else {
        return Err(Error::PermissionDenied(format!(
            "owner is {:?}; agency {} (role {}) restricts its own uploads only",
            req.owner, caller.agency, caller.role
        )));
    };
    if owner.is_empty() {
        return Err(Error::FailedPrecondition(
            "the server runs open (no credentials): there is no agency to restrict an upload to"
                .into(),
        ));
    }
    check_agency("owner", &owner).map_err(Error::InvalidArgument)?;
    let mut shared_with = BTreeSet::new();
    for (i, a) in req.shared_with.iter().enumerate() {
        check_agency(&format!("shared_with[{i}]"), a).map_err(Error::InvalidArgument)?;
        if *a != owner {
            shared_with.insert(a.clone());
        }
    }
    let r = Restriction {
        owner: owner.clone(),
        upload_id: req.upload_id.clone(),
        shared_with,
        deconfliction: req.deconfliction,
        updated_at: now(),
    };
    if req.lift {
        restrictions.lift(&owner, &req.upload_id)?;
        tracing::info!(owner = %owner, upload = %req.upload_id, "restriction lifted");
        return Ok(restriction_pb(&r, false));
    }
    restrictions.set(r.clone(), |existing| {
        // Restricting material others may already have seen, linked or
        // copied would promise what cannot be kept.
        if existing.is_none() && upload_has_points(registry, &owner, &req.upload_id)? {
            return Err(Error::FailedPrecondition(format!(
                "upload {:?} of agency {owner} already has points; restrict an upload before its first point is stored",
                req.upload_id
            )));
        }
        Ok(())
    })?;
    tracing::info!(owner = %owner, upload = %req.upload_id, shared = r.shared_with.len(), "upload restricted");
    Ok(restriction_pb(&r, true))
}

/// ListRestrictions: the caller's own (an admin's: all).
pub fn list_restrictions(restrictions: &Restrictions, caller: &Caller) -> Vec<pb::Restriction> {
    restrictions
        .snapshot()
        .values()
        .filter(|r| caller.open || caller.role == Role::Admin || r.owner == caller.agency)
        .map(|r| restriction_pb(r, true))
        .collect()
}

pub fn token_info(t: &TokenRecord) -> pb::TokenInfo {
    pb::TokenInfo {
        id: t.id.clone(),
        agency: t.agency.clone(),
        role: t.role.to_string(),
        collections: t.collections.iter().flatten().cloned().collect(),
        created_at: t.created_at,
        expires_at: t.expires_at.unwrap_or(0),
        revoked_at: t.revoked_at.unwrap_or(0),
    }
}

/// CreateToken.
pub fn create_token(
    tokens: &TokenStore,
    req: pb::CreateTokenRequest,
) -> Result<pb::CreateTokenResponse> {
    let role: Role = req.role.parse().map_err(Error::InvalidArgument)?;
    if req.expires_in < 0 {
        return Err(Error::invalid(format!(
            "expires_in is {}; give seconds from now, or 0 for never",
            req.expires_in
        )));
    }
    let collections = if req.collections.is_empty() {
        None
    } else {
        for (i, c) in req.collections.iter().enumerate() {
            crate::validate::collection_name(&format!("collections[{i}]"), c)?;
        }
        Some(req.collections.iter().cloned().collect())
    };
    let expires = (req.expires_in > 0).then(|| now() + req.expires_in);
    let (token, rec) = tokens.create(&req.agency, role, collections, expires)?;
    tracing::info!(id = %rec.id, agency = %rec.agency, role = %rec.role, "token created");
    Ok(pb::CreateTokenResponse {
        token,
        info: Some(token_info(&rec)),
    })
}

/// ListTokens.
pub fn list_tokens(tokens: &TokenStore) -> pb::ListTokensResponse {
    pb::ListTokensResponse {
        tokens: tokens.list().iter().map(token_info).collect(),
        revoked_certificates: tokens.revoked_certs(),
    }
}
