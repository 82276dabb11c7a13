//! The series-review RPCs: `ListSeries`, `GetSeries`, `SeriesOfMedia`,
//! `ReviewSeries` and `UpdateMetadata`, and the part of `LinkUpload` that
//! honours decisions. Request checks and status codes are here; the work is
//! in `investigate::review` and `investigate::decisions`.
//!
//! Restriction: the stored series hold unrestricted material only (linking
//! stores runs over what every agency may see), so the reads serve them as
//! they are; what a caller names (media ids) is looked up in the caller's
//! view, so a restricted media it may not see is as unknown as a missing
//! one. Reviews regroup over the unrestricted material, like linking.

use std::sync::Arc;

use tonic::Status;

use crate::api::access::Caller;
use crate::collection::Collection;
use crate::collection::config;
use crate::collection::registry::Registry;
use crate::collection::restrict::Restrictions;
use crate::error::Error;
use crate::index::filter::Filter;
use crate::investigate::decisions::DecisionStore;
use crate::investigate::link;
use crate::investigate::review;
use crate::investigate::series::{SeriesRecord, SeriesState, StateStore};
use crate::investigate::upload::{self, UploadLinked};
use crate::pb;
use crate::validate;

use crate::api::shared::{blocking, collection_of_kind, link_collections};

/// The image collection `name` and its stored series state:
/// FAILED_PRECONDITION before the first whole-collection `LinkSeries`.
pub(crate) fn stored(
    registry: &Registry,
    store: &StateStore,
    name: &str,
) -> Result<(Arc<Collection>, Arc<SeriesState>), Error> {
    validate::collection_name("image_collection", name)?;
    let images = collection_of_kind(registry, "image_collection", name, config::Kind::Image)?;
    let state = store.shared(name)?.ok_or_else(|| {
        Error::FailedPrecondition(format!(
            "collection {name:?} has no series yet; run LinkSeries over the whole collection first"
        ))
    })?;
    Ok((images, state))
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// What the series RPCs need of the service.
#[derive(Clone)]
pub(crate) struct SeriesApi {
    pub registry: Arc<Registry>,
    pub series: StateStore,
    pub decisions: DecisionStore,
    /// Shared with linking: reviews and links replace the stored state.
    pub link_lock: Arc<parking_lot::Mutex<()>>,
    pub restrictions: Arc<Restrictions>,
}

/// Whether a stored series may hold material of an upload `visibility`
/// hides. Never, while stored series hold unrestricted material only; a
/// second line of defence should an upload's ids be reused after it was
/// emptied and restricted (the series then name media of the old points).
fn may_hold_hidden(s: &SeriesRecord, visibility: Option<&Filter>) -> bool {
    visibility.is_some_and(|v| {
        v.hidden_uploads
            .iter()
            .any(|(owner, upload)| s.agencies.contains(owner) && s.upload_ids.contains(upload))
    })
}

/// The stored state as `visibility` lets a caller see it: without any
/// series that [`may_hold_hidden`] (borrowed when nothing is left out).
fn as_seen(state: Arc<SeriesState>, visibility: Option<&Filter>) -> Arc<SeriesState> {
    if !state.series.iter().any(|s| may_hold_hidden(s, visibility)) {
        return state;
    }
    let mut seen = (*state).clone();
    seen.series.retain(|s| !may_hold_hidden(s, visibility));
    Arc::new(seen)
}

impl SeriesApi {
    /// What `caller` may not see (`None`: everything).
    fn visibility(&self, caller: &Caller) -> Option<Filter> {
        caller.visibility(&self.restrictions)
    }

    pub async fn list(
        &self,
        caller: &Caller,
        req: pb::ListSeriesRequest,
    ) -> Result<pb::ListSeriesResponse, Status> {
        let me = self.clone();
        let visibility = self.visibility(caller);
        blocking(move || {
            let (_, state) = stored(&me.registry, &me.series, &req.image_collection)?;
            let state = as_seen(state, visibility.as_ref());
            let f = review::SeriesFilter::from_pb(req.filter.as_ref())?;
            review::list(
                &state,
                &f,
                req.page_size,
                &req.page_token,
                req.with_evidence,
            )
        })
        .await
    }

    pub async fn get(
        &self,
        caller: &Caller,
        req: pb::GetSeriesRequest,
    ) -> Result<pb::GetSeriesResponse, Status> {
        let me = self.clone();
        let visibility = self.visibility(caller);
        let caller = caller.clone();
        blocking(move || {
            let (images, state) = stored(&me.registry, &me.series, &req.image_collection)?;
            let state = as_seen(state, visibility.as_ref());
            if req.series_id.is_empty() {
                return Err(Error::invalid(
                    "series_id is empty; name a series (ser-...)",
                ));
            }
            // Face counts come from the face collection the series were
            // linked with, if the credential may use it.
            let faces = match state.face_collection.as_str() {
                "" => None,
                f if caller.may_use(f).is_err() => None,
                f => me.registry.get(f).ok(),
            };
            let book = me.decisions.load(&req.image_collection)?;
            let fv = faces.map(|f| f.view_as(visibility.clone())).transpose()?;
            let iv = images.view_as(visibility.clone())?;
            review::detail(&state, &book, &iv, fv.as_ref(), &req.series_id)
        })
        .await
    }

    pub async fn of_media(
        &self,
        caller: &Caller,
        req: pb::SeriesOfMediaRequest,
    ) -> Result<pb::SeriesOfMediaResponse, Status> {
        validate::count("media_ids", req.media_ids.len(), validate::MAX_IDS)?;
        if req.media_ids.is_empty() {
            return Err(Status::invalid_argument(
                "media_ids is empty; name at least one media",
            ));
        }
        for (i, m) in req.media_ids.iter().enumerate() {
            validate::point_id(&format!("media_ids[{i}]"), m)?;
        }
        let me = self.clone();
        let visibility = self.visibility(caller);
        blocking(move || {
            let (images, state) = stored(&me.registry, &me.series, &req.image_collection)?;
            let state = as_seen(state, visibility.as_ref());
            let iv = images.view_as(visibility)?;
            let media = review::series_of(&state, &iv, &req.media_ids)?;
            Ok(pb::SeriesOfMediaResponse { media })
        })
        .await
    }

    pub async fn review(
        &self,
        caller: &Caller,
        req: pb::ReviewSeriesRequest,
    ) -> Result<pb::ReviewSeriesResponse, Status> {
        let me = self.clone();
        let visibility = self.visibility(caller);
        // Decisions are about the stored series, which hold unrestricted
        // material only: they name and regroup that material alone.
        let shared = self.restrictions.hidden_from_all();
        let caller = caller.clone();
        blocking(move || {
            let _guard = me.link_lock.lock();
            let name = req.image_collection.clone();
            let (_, state) = stored(&me.registry, &me.series, &name)?;
            if !state.face_collection.is_empty() {
                caller.may_use(&state.face_collection)?;
            }
            let (images, faces) = link_collections(&me.registry, &name, &state.face_collection)?;
            let iv = images.view_as(shared.clone())?;
            let mut book = me.decisions.load(&name)?;
            let seen = as_seen(state.clone(), visibility.as_ref());
            let recorded = review::decide(&req, &seen, &iv, &mut book, unix_now())?;
            // The new grouping first: a decision is logged only once it
            // could be applied.
            let (next, seconds) = if recorded.iter().any(|d| d.kind.regroups()) {
                let fv = faces
                    .as_ref()
                    .map(|f| f.view_as(shared.clone()))
                    .transpose()?;
                review::relink(
                    (&iv, &name),
                    fv.as_ref().map(|v| (v, state.face_collection.as_str())),
                    &state,
                    &book,
                )?
            } else {
                let mut next = (*state).clone();
                book.apply_review(&mut next.series);
                (next, 0.0)
            };
            me.decisions.append(&name, &recorded)?;
            me.series.save(&next)?;
            tracing::info!(collection = %name, decisions = recorded.len(), reviewer = %req.reviewer.trim(), "series reviewed");
            Ok(pb::ReviewSeriesResponse {
                recorded: recorded.iter().map(|d| d.to_pb()).collect(),
                series: review::touched(&next, &recorded),
                regroup_seconds: seconds,
            })
        })
        .await
    }

    /// `LinkUpload` under the decisions: incremental when no decision is in
    /// play, else the whole collection is linked again (the second value
    /// says so). The collections are seen through `visibility`; the result
    /// is stored only if `store` (a restricted upload is linked on a copy).
    pub fn link_upload(
        &self,
        req: &pb::LinkUploadRequest,
        mut state: SeriesState,
        face_name: String,
        visibility: Option<Filter>,
        store: bool,
    ) -> Result<(UploadLinked, bool), Error> {
        let (images, faces) = link_collections(&self.registry, &req.image_collection, &face_name)?;
        let iv = images.view_as(visibility.clone())?;
        let fv = faces
            .as_ref()
            .map(|f| f.view_as(visibility.clone()))
            .transpose()?;
        let book = self.decisions.load(&req.image_collection)?;
        let before = state.clone();
        let linked = upload::link_upload(
            (&iv, &req.image_collection),
            fv.as_ref(),
            &mut state,
            &req.upload_id,
            book.constraints(),
        )?;
        state.face_collection = face_name.clone();
        let (out, relinked) = match linked {
            Some(r) => {
                book.apply_review(&mut state.series);
                (r, false)
            }
            None => {
                let (next, _) = review::relink(
                    (&iv, &req.image_collection),
                    fv.as_ref().map(|v| (v, face_name.as_str())),
                    &state,
                    &book,
                )?;
                let f = Filter {
                    upload_ids_any: vec![req.upload_id.clone()],
                    ..Default::default()
                };
                let mut media: Vec<String> = iv
                    .points(Some(&f))?
                    .into_iter()
                    .map(|(_, id, meta)| link::media_key(&id, &meta, false))
                    .collect();
                media.sort();
                media.dedup();
                let out = review::upload_outcome(&before, &next, &media);
                state = next;
                (out, true)
            }
        };
        if !store {
            return Ok((out, relinked));
        }
        if !state.linked_uploads.contains(&req.upload_id) {
            state.linked_uploads.push(req.upload_id.clone());
        }
        self.series.save(&state)?;
        Ok((out, relinked))
    }

    pub async fn update_metadata(
        &self,
        caller: &Caller,
        req: pb::UpdateMetadataRequest,
    ) -> Result<pb::UpdateMetadataResponse, Status> {
        let set = check_update(&req)?;
        caller.may_use(&req.collection)?;
        let c = self.registry.get(&req.collection)?;
        let visibility = self.visibility(caller);
        let caller = caller.clone();
        let updated = blocking(move || {
            let check = crate::api::owner::update_check(&caller, visibility.as_ref());
            c.update_metadata(&req.ids, |m| apply_update(&set, m), Some(&check))
        })
        .await?;
        Ok(pb::UpdateMetadataResponse {
            updated: updated as u64,
        })
    }
}

/// Checks an UpdateMetadata request (a cluster router checks it the same
/// way before logging it); returns what it sets.
pub fn check_update(req: &pb::UpdateMetadataRequest) -> Result<pb::MetadataUpdate, Status> {
    validate::collection_name("collection", &req.collection)?;
    if req.ids.is_empty() {
        return Err(Status::invalid_argument(
            "ids is empty; name the points to update",
        ));
    }
    validate::count("ids", req.ids.len(), validate::MAX_IDS)?;
    let set = req.set.clone().unwrap_or_default();
    if set == pb::MetadataUpdate::default() {
        return Err(Status::invalid_argument(
            "set changes nothing; set victim_identified, series_label, case_id, add_tags or remove_tags",
        ));
    }
    for (field, tags) in [
        ("set.add_tags", &set.add_tags),
        ("set.remove_tags", &set.remove_tags),
    ] {
        for (i, t) in tags.iter().enumerate() {
            if t.is_empty() || t.len() > 64 {
                return Err(Status::invalid_argument(format!(
                    "{field}[{i}] {} must be 1 to 64 bytes",
                    validate::show(t)
                )));
            }
        }
    }
    Ok(set)
}

/// What UpdateMetadata's `set` does to one point's metadata (a cluster's
/// index nodes apply it from the log the same way).
pub fn apply_update(set: &pb::MetadataUpdate, m: &mut pb::Metadata) {
    if let Some(v) = set.victim_identified {
        m.victim_identified = v;
    }
    if let Some(l) = &set.series_label {
        m.series_label = l.clone();
    }
    if let Some(c) = &set.case_id {
        m.case_id = c.clone();
    }
    m.tags.retain(|t| !set.remove_tags.contains(t));
    for t in &set.add_tags {
        if !m.tags.contains(t) {
            m.tags.push(t.clone());
        }
    }
}
