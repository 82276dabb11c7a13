//! Data ownership: a stored point's `agency` is its caller's agency, and
//! only that agency (or an admin) replaces or deletes it; restricted points
//! are invisible to everyone else, including when they write.

use crate::api::access::Caller;
use crate::collection::restrict::Restrictions;
use crate::error::{Error, Result};
use crate::index::filter::Filter;
use crate::pb;
use crate::validate;

/// Sets `metadata.agency` of points that leave it empty to the caller's
/// agency, and refuses (PERMISSION_DENIED) a point that names another
/// agency unless the caller is an admin.
pub fn stamp(caller: &Caller, points: &mut [pb::Point]) -> Result<()> {
    if caller.open {
        return Ok(());
    }
    for (i, p) in points.iter_mut().enumerate() {
        let m = p.metadata.get_or_insert_with(Default::default);
        if m.agency.is_empty() {
            m.agency = caller.agency.clone();
        } else if !caller.may_write_for(&m.agency) {
            return Err(Error::PermissionDenied(format!(
                "points[{i}] (id {}): metadata.agency is {:?}, but the caller is agency {} (role {}): \
                 an agency stores only its own points; leave metadata.agency empty or set it to {}",
                validate::show(&p.id),
                m.agency,
                caller.agency,
                caller.role,
                caller.agency
            )));
        }
    }
    Ok(())
}

/// Whether `m` lies in a restricted upload.
fn restricted(restrictions: &Restrictions, m: &pb::Metadata) -> bool {
    !m.upload_id.is_empty() && restrictions.get(&m.agency, &m.upload_id).is_some()
}

/// The check before a write replaces a stored point: only its owner (or
/// an admin) may, and a point seen unrestricted may not move into a
/// restricted upload (others may have it already).
pub fn replace_check<'a>(
    caller: &'a Caller,
    restrictions: &'a Restrictions,
    visibility: Option<&'a Filter>,
) -> impl Fn(&str, &pb::Metadata, &pb::Metadata) -> Result<()> + Sync + 'a {
    move |id, stored, new| {
        let hidden = visibility.is_some_and(|v| v.hides(stored));
        if !caller.may_write_for(&stored.agency) || (hidden && !caller.open) {
            return Err(Error::PermissionDenied(format!(
                "point {} is another agency's: agency {} (role {}) may not replace it",
                validate::show(id),
                caller.agency,
                caller.role
            )));
        }
        if !restricted(restrictions, stored) && restricted(restrictions, new) {
            return Err(Error::FailedPrecondition(format!(
                "point {} is in the unrestricted upload {:?}; it cannot move into the restricted upload {:?} \
                 (others may have seen it): store it under a new id",
                validate::show(id),
                stored.upload_id,
                new.upload_id
            )));
        }
        Ok(())
    }
}

/// The check before a delete removes a stored point: a point the caller
/// may not see does not exist for it; another agency's visible point may
/// be deleted by an admin only.
pub fn delete_check<'a>(
    caller: &'a Caller,
    visibility: Option<&'a Filter>,
) -> impl Fn(&str, &pb::Metadata) -> Result<bool> + Sync + 'a {
    move |id, stored| {
        if visibility.is_some_and(|v| v.hides(stored))
            && caller.role != crate::api::access::Role::Admin
        {
            return Ok(false);
        }
        if !caller.may_write_for(&stored.agency) {
            return Err(Error::PermissionDenied(format!(
                "point {} belongs to agency {}; agency {} (role {}) may not delete it: only its owner or an admin",
                validate::show(id),
                stored.agency,
                caller.agency,
                caller.role
            )));
        }
        Ok(true)
    }
}

/// The check before an update changes a stored point's metadata: a point
/// the caller may not see does not exist for it (NOT_FOUND); another
/// agency's visible point may be updated by an admin only.
pub fn update_check<'a>(
    caller: &'a Caller,
    visibility: Option<&'a Filter>,
) -> impl Fn(&str, &pb::Metadata) -> Result<bool> + Sync + 'a {
    move |id, stored| {
        if visibility.is_some_and(|v| v.hides(stored)) {
            return Ok(false);
        }
        if !caller.may_write_for(&stored.agency) {
            return Err(Error::PermissionDenied(format!(
                "point {} belongs to agency {}; agency {} (role {}) may not update its metadata: only its owner or an admin",
                validate::show(id),
                stored.agency,
                caller.agency,
                caller.role
            )));
        }
        Ok(true)
    }
}
