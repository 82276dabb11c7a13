//! The gRPC service `vidx.v1.VectorIndex`: request validation, status codes,
//! moving CPU-heavy work (graph inserts, searches) off the async runtime
//! onto blocking threads, and the linking and triage runs' metrics.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use rayon::prelude::*;
use tokio::sync::mpsc;
use tokio_stream::Stream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use crate::api::access::{Caller, Role};
use crate::api::guard::NoteSlot;
use crate::api::observe::{call_of, note_collection};
use crate::api::owner;
use crate::api::series::SeriesApi;
use crate::api::shared::{blocking, collection_of_kind, link_collections, link_names};
use crate::api::tokens::TokenStore;
use crate::collection::config;
use crate::collection::registry::{Registry, State};
use crate::collection::restrict::Restrictions;
use crate::collection::{Collection, Hit, Query, SearchOptions};
use crate::error::Error;
use crate::index::distance::Metric;
use crate::index::filter::Filter;
use crate::investigate::decisions::DecisionStore;
use crate::investigate::known::{self, Known};
use crate::investigate::link;
use crate::investigate::series::{LinkSettings, SeriesState, StateStore, state_format};
use crate::investigate::triage::{Item, Triager};
use crate::metrics::{RunCounts, RunReport};
use crate::pb;
use crate::pb::vector_index_server::VectorIndex;
use crate::validate;

/// Where series states live, under the data directory.
const SERIES_DIR: &str = "series";

pub struct Service {
    pub(crate) registry: Arc<Registry>,
    pub(crate) tokens: Arc<TokenStore>,
    pub(crate) restrictions: Arc<Restrictions>,
    /// Stored series states, one per linked image collection.
    series: StateStore,
    /// Investigators' decision logs, one per image collection.
    decisions: DecisionStore,
    /// One linking job (LinkSeries, LinkUpload, ReviewSeries) at a time:
    /// they read and replace the stored series states.
    link_lock: Arc<parking_lot::Mutex<()>>,
    /// Why writes are refused (a cluster index node), if they are.
    refuse_writes: Option<String>,
    /// The series-review RPCs (they share the parts above).
    review: SeriesApi,
    /// The server's message limit: an answer over it is refused up front.
    max_message_bytes: usize,
}

impl Service {
    pub fn new(
        registry: Arc<Registry>,
        tokens: Arc<TokenStore>,
        restrictions: Arc<Restrictions>,
        max_message_bytes: usize,
    ) -> Self {
        crate::api::snapshot::remove_leftovers(registry.data_dir());
        let dir = registry.data_dir().join(SERIES_DIR);
        let series = StateStore::new(dir.clone());
        let decisions = DecisionStore::new(dir);
        let link_lock = Arc::new(parking_lot::Mutex::new(()));
        Service {
            review: SeriesApi {
                registry: registry.clone(),
                series: series.clone(),
                decisions: decisions.clone(),
                link_lock: link_lock.clone(),
                restrictions: restrictions.clone(),
            },
            series,
            decisions,
            registry,
            tokens,
            restrictions,
            link_lock,
            max_message_bytes,
            refuse_writes: None,
        }
    }

    /// The same service refusing writes with `why` (when `Some`): a cluster
    /// index node takes its writes from the log, never from a client.
    pub fn refusing_writes(mut self, why: Option<String>) -> Self {
        self.refuse_writes = why;
        self
    }

    /// FAILED_PRECONDITION naming the RPC when writes are refused here.
    fn writable(&self, rpc: &str) -> Result<(), Status> {
        match &self.refuse_writes {
            Some(why) => Err(Status::failed_precondition(format!("{rpc} refused: {why}"))),
            None => Ok(()),
        }
    }

    /// What `caller` may not see (`None`: everything is visible to it).
    fn visibility(&self, caller: &Caller) -> Option<Filter> {
        caller.visibility(&self.restrictions)
    }

    /// LinkSeries' scope: the request noted for the audit log, the points
    /// the run may read (the stored series hold unrestricted material only;
    /// a run that includes what the caller may see of the restricted is its
    /// alone), the upload/case filter, and whether restricted points are in.
    fn link_scope(
        &self,
        caller: &Caller,
        req: &pb::LinkSeriesRequest,
        note: &NoteSlot,
    ) -> Result<(Option<Filter>, Option<Filter>, bool), Status> {
        let scope = req.scope.clone().unwrap_or_default();
        note.request(
            &req.image_collection,
            serde_json::json!({
                "face_collection": req.face_collection,
                "upload_ids": scope.upload_ids,
                "case_ids": scope.case_ids,
                "with_restricted": scope.with_restricted,
            }),
        );
        // The stored series hold unrestricted material only; a run that
        // includes what the caller may see of the restricted is its alone.
        let with_restricted = scope.with_restricted;
        let visibility = if with_restricted {
            self.visibility(caller)
        } else {
            self.restrictions.hidden_from_all()
        };
        let filter = crate::index::filter::Filter {
            upload_ids_any: crate::index::filter::list("scope.upload_ids", &scope.upload_ids)?,
            case_ids_any: crate::index::filter::list("scope.case_ids", &scope.case_ids)?,
            ..Default::default()
        };
        let scope = (!filter.is_empty()).then_some(filter);
        Ok((visibility, scope, with_restricted))
    }

    /// `m` if it fits the message limit; else RESOURCE_EXHAUSTED saying how
    /// to ask for less (tonic would fail it after the handler with
    /// OUT_OF_RANGE, which tells the client nothing).
    fn fit<T: prost::Message>(&self, what: &str, ask_less: &str, m: T) -> Result<T, Status> {
        fit(self.max_message_bytes, what, ask_less, m)
    }
}

fn fit<T: prost::Message>(limit: usize, what: &str, ask_less: &str, m: T) -> Result<T, Status> {
    let n = m.encoded_len();
    if n > limit {
        return Err(Status::resource_exhausted(format!(
            "the {what} is {n} bytes, over the server's message limit of {limit} bytes \
             (--max-message-bytes); {ask_less}"
        )));
    }
    Ok(m)
}

/// The caller the gate admitted (see `api::guard`).
pub(crate) fn caller<T>(req: &Request<T>) -> Result<Caller, Status> {
    req.extensions()
        .get::<Caller>()
        .cloned()
        .ok_or_else(|| Status::unauthenticated("no identity: the call did not pass the gate"))
}

/// The audit note of the call, for the handler to fill in.
pub(crate) fn note<T>(req: &Request<T>) -> NoteSlot {
    req.extensions()
        .get::<NoteSlot>()
        .cloned()
        .unwrap_or_default()
}

/// The opening a handler of one collection shares with the others, in this
/// order: the collection named for the metrics, the caller the gate let in,
/// the request in the audit note (so a refused call is audited too), the
/// name checked (`field` is what the message calls it), then the caller's
/// right to the collection.
fn admit<T>(
    request: Request<T>,
    field: &str,
    collection: fn(&T) -> &String,
    summary: impl FnOnce(&T) -> serde_json::Value,
) -> Result<(Caller, NoteSlot, T), Status> {
    note_collection(&request, collection(request.get_ref()));
    let caller = caller(&request)?;
    let note = note(&request);
    let req = request.into_inner();
    note.request(collection(&req), summary(&req));
    validate::collection_name(field, collection(&req))?;
    caller.may_use(collection(&req))?;
    Ok((caller, note, req))
}

/// A collection's info as a caller with `visibility` sees it: the count
/// leaves out the restricted points it may not see.
fn visible_info(c: &Collection, visibility: Option<&Filter>) -> Result<pb::CollectionInfo, Error> {
    let mut info = c.info();
    if let Some(v) = visibility {
        let view = c.view()?;
        let mut hidden = 0u64;
        for (owner, upload) in &v.hidden_uploads {
            let f = Filter {
                agencies_any: vec![owner.clone()],
                upload_ids_any: vec![upload.clone()],
                ..Default::default()
            };
            hidden += view.points(Some(&f))?.len() as u64;
        }
        info.points = info.points.saturating_sub(hidden);
    }
    Ok(info)
}

/// What a query asks, for the audit record: a point id, a vector's size,
/// or a hash (in hex: a hash names the material looked for, and is short).
fn query_summary(q: &pb::Query) -> serde_json::Value {
    match &q.query {
        Some(pb::query::Query::PointId(id)) => serde_json::json!({ "point_id": id }),
        Some(pb::query::Query::Vector(v)) => serde_json::json!({ "vector_dim": v.values.len() }),
        Some(pb::query::Query::Bits(b)) => serde_json::json!({ "bits": hex::encode(b) }),
        None => serde_json::Value::Null,
    }
}

type EventStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

/// A triaged item that is to be stored must fit as points: its face points
/// are `<id>#<n>`, and an id is at most [`validate::MAX_ID_BYTES`].
fn storable(field: &str, it: &Item) -> Result<(), Error> {
    for n in 0..it.faces.len() {
        let id = format!("{}#{n}", it.id);
        validate::point_id(&format!("{field}.faces[{n}], stored as point id"), &id)?;
    }
    Ok(())
}

/// Stores triaged items: an image point per item (id = item id, media_id =
/// item id unless set) and a face point `<id>#<n>` per face. Both batches
/// are validated whole before either is stored. Returns items stored.
fn store_triaged(
    images: &Collection,
    faces: Option<&Collection>,
    items: Vec<Item>,
    writer: &Writer,
) -> Result<u64, Error> {
    let n = items.len() as u64;
    let mut img = Vec::with_capacity(items.len());
    let mut fc = Vec::new();
    // Items that came with hashes only have no embedding to store.
    for it in items.into_iter().filter(|it| !it.vector.is_empty()) {
        let mut meta = it.metadata;
        if meta.media_id.is_empty() {
            meta.media_id = it.id.clone();
        }
        for (i, f) in it.faces.into_iter().enumerate() {
            fc.push(pb::Point {
                id: format!("{}#{i}", it.id),
                vector: f,
                metadata: Some(meta.clone()),
                ..Default::default()
            });
        }
        img.push(pb::Point {
            id: it.id,
            vector: it.vector,
            metadata: Some(meta),
            ..Default::default()
        });
    }
    owner::stamp(&writer.caller, &mut img)?;
    owner::stamp(&writer.caller, &mut fc)?;
    // Both batches whole, before either is stored.
    images.prepare(img.clone())?;
    if let Some(f) = faces {
        f.prepare(fc.clone())?;
    }
    let check = owner::replace_check(
        &writer.caller,
        &writer.restrictions,
        writer.visibility.as_ref(),
    );
    for chunk in img.chunks(1000) {
        images.upsert_checked(chunk.to_vec(), Some(&check))?;
    }
    if let Some(f) = faces {
        for chunk in fc.chunks(1000) {
            f.upsert_checked(chunk.to_vec(), Some(&check))?;
        }
    }
    Ok(n)
}

/// Stores the PDQ hashes of triaged items in the triage's hash collection,
/// as the caller's points under the same ownership checks as an Upsert.
/// Returns how many.
fn store_known_hashes(known: &Known, items: &[Item], writer: &Writer) -> Result<u64, Error> {
    let Some((c, mut points)) = known.hash_points(items) else {
        return Ok(0);
    };
    owner::stamp(&writer.caller, &mut points)?;
    let check = owner::replace_check(
        &writer.caller,
        &writer.restrictions,
        writer.visibility.as_ref(),
    );
    for chunk in points.chunks(1000) {
        c.upsert_checked(chunk.to_vec(), Some(&check))?;
    }
    Ok(points.len() as u64)
}

/// Who writes, with what they may see: what a write checks ownership with.
#[derive(Clone)]
struct Writer {
    caller: Caller,
    restrictions: Arc<Restrictions>,
    visibility: Option<Filter>,
}

/// Runs a search on rayon's pool, where its queries fan out, and awaits it:
/// one hand-over instead of two (tokio's blocking pool, then rayon), which
/// on small requests costs more than the search. A panic becomes INTERNAL.
async fn on_rayon<T, F>(f: F) -> Result<T, Status>
where
    F: FnOnce() -> Result<T, Error> + Send + 'static,
    T: Send + 'static,
{
    let (tx, rx) = tokio::sync::oneshot::channel();
    rayon::spawn(move || {
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
        let _ = tx.send(r);
    });
    match rx.await {
        Ok(Ok(r)) => r.map_err(Status::from),
        Ok(Err(_)) => Err(Status::internal("search worker panicked")),
        Err(_) => Err(Status::internal("search worker vanished")),
    }
}

pub use crate::api::status::transport_status;

/// The linking settings of a triage: the stored series' (else the
/// defaults), with the thresholds the first message sets instead.
fn triage_settings(
    first: &pb::TriageRequest,
    state: Option<&SeriesState>,
    metric: Metric,
) -> Result<LinkSettings, Status> {
    let mut params = state
        .map(|s| link::settings_to_pb(&s.settings))
        .unwrap_or_default();
    for (field, v, slot) in [
        (
            "image_threshold",
            first.image_threshold,
            &mut params.image_threshold,
        ),
        (
            "face_threshold",
            first.face_threshold,
            &mut params.face_threshold,
        ),
    ] {
        if v != 0.0 {
            if !v.is_finite() || v < 0.0 {
                return Err(Status::invalid_argument(format!(
                    "{field} is {v}; it must be a finite distance >= 0"
                )));
            }
            *slot = v;
        }
    }
    Ok(link::settings_from_pb(Some(&params), metric)?)
}

/// The hash sets and perceptual-hash collection a triage consults first;
/// `visibility` is what the caller may not see of the latter.
fn known_material(
    registry: &Registry,
    first: &pb::TriageRequest,
    visibility: Option<Filter>,
) -> Result<Known, Status> {
    let sets = registry.hash_sets().select("hash_sets", &first.hash_sets)?;
    let pdq = if first.hash_collection.is_empty() {
        None
    } else {
        validate::collection_name("hash_collection", &first.hash_collection)?;
        Some(collection_of_kind(
            registry,
            "hash_collection",
            &first.hash_collection,
            config::Kind::PerceptualHash,
        )?)
    };
    if first.image_collection.is_empty() && sets.is_empty() && pdq.is_none() {
        return Err(Status::invalid_argument(
            "image_collection is empty and there is no hash set or hash_collection to triage by",
        ));
    }
    if let Some(p) = &pdq
        && p.config().dim != 256
    {
        return Err(Status::failed_precondition(format!(
            "hash_collection {:?} holds {}-bit hashes; triage matches PDQ (256 bits)",
            first.hash_collection,
            p.config().dim
        )));
    }
    let max_distance = match first.hash_max_distance {
        0 => known::DEFAULT_MAX_DISTANCE,
        d if d <= 256 => d,
        d => {
            return Err(Status::invalid_argument(format!(
                "hash_max_distance is {d}; a PDQ distance is at most 256"
            )));
        }
    };
    Ok(Known {
        sets,
        pdq,
        max_distance,
        visibility,
    })
}

/// A running `Triage` call: judges the items message by message as they
/// arrive and streams the verdicts back; at the end groups the new items
/// into candidate series (and stores every item if asked).
struct TriageJob {
    /// None when the triage named no image collection (hashes only).
    triager: Option<Arc<Triager>>,
    /// Hash sets and perceptual hashes, consulted first.
    known: Arc<Known>,
    images: Option<Arc<Collection>>,
    faces: Option<Arc<Collection>>,
    store: bool,
    tx: mpsc::Sender<Result<pb::TriageResponse, Status>>,
    writer: Writer,
    note: NoteSlot,
    started: Instant,
    /// The server's message limit.
    limit: usize,
}

/// The counts of a triage so far, and the items its end needs.
#[derive(Default)]
struct Tally {
    summary: pb::TriageSummary,
    /// Items judged NEW, for grouping.
    new_items: Vec<Item>,
    /// Every item, when they are to be stored.
    kept: Vec<Item>,
}

impl Tally {
    fn add(&mut self, items: Vec<Item>, results: &[pb::TriageResult], keep: bool) {
        for (it, r) in items.into_iter().zip(results) {
            self.summary.items += 1;
            use pb::triage_result::Evidence;
            match Evidence::try_from(r.evidence) {
                Ok(Evidence::ExactHash) => self.summary.by_exact_hash += 1,
                Ok(Evidence::PerceptualHash) => self.summary.by_perceptual_hash += 1,
                Ok(Evidence::Embedding) => self.summary.by_embedding += 1,
                Ok(Evidence::Face) => self.summary.by_face += 1,
                _ => {}
            }
            if r.verdict == pb::Verdict::Known as i32 {
                self.summary.known += 1;
                if keep {
                    self.kept.push(it);
                }
            } else {
                self.summary.new += 1;
                self.summary.new_with_faces += !it.faces.is_empty() as u64;
                if keep {
                    self.kept.push(it.clone());
                }
                self.new_items.push(it);
            }
        }
    }
}

impl TriageJob {
    async fn run(self, first: pb::TriageRequest, input: Streaming<pb::TriageRequest>) {
        let collection = first.image_collection.clone();
        let result = self.judge_all(first, input).await;
        let summary = match &result {
            Ok(Some(s)) => Some(s.clone()),
            _ => None,
        };
        record_triage(&collection, self.started, summary.as_ref());
        match result {
            Ok(Some(summary)) => {
                let end = fit(
                    self.limit,
                    "triage summary",
                    "triage fewer items per call",
                    pb::TriageResponse {
                        results: Vec::new(),
                        summary: Some(summary),
                    },
                );
                let _ = self.tx.send(end).await;
            }
            // The client went away.
            Ok(None) => {}
            Err(e) => {
                let _ = self.tx.send(Err(e)).await;
            }
        }
    }

    /// Judges every message as it arrives, streaming the verdicts; then the
    /// summary (`None` if the client stopped listening).
    async fn judge_all(
        &self,
        first: pb::TriageRequest,
        mut input: Streaming<pb::TriageRequest>,
    ) -> Result<Option<pb::TriageSummary>, Status> {
        let mut tally = Tally::default();
        let mut next = Some(first);
        let mut item_no = 0usize;
        loop {
            let msg = match next.take() {
                Some(m) => m,
                None => match input.message().await.map_err(transport_status)? {
                    Some(m) => m,
                    None => break,
                },
            };
            let base = item_no;
            item_no += msg.items.len();
            let (items, results) = self.judge(msg, base).await?;
            tally.add(items, &results, self.store);
            // The audit record lists what each verdict pointed to.
            self.note.add_results(
                results.len() as u64,
                results
                    .iter()
                    .filter(|r| !r.nearest_media_id.is_empty())
                    .map(|r| r.nearest_media_id.clone()),
            );
            let response = pb::TriageResponse {
                results,
                summary: None,
            };
            let response = fit(
                self.limit,
                "triage response",
                "send fewer items per message",
                response,
            )?;
            if self.tx.send(Ok(response)).await.is_err() {
                return Ok(None);
            }
        }
        let mut summary = tally.summary;
        let (groups, stored) = self.finish(tally.new_items, tally.kept).await?;
        summary.new_groups = groups
            .unwrap_or_default()
            .into_iter()
            .map(|ids| pb::TriageGroup { ids })
            .collect();
        summary.stored = stored;
        Ok(Some(summary))
    }

    /// Checks and judges one message's items (numbered from `base` in
    /// error messages), on blocking threads.
    async fn judge(
        &self,
        msg: pb::TriageRequest,
        base: usize,
    ) -> Result<(Vec<Item>, Vec<pb::TriageResult>), Status> {
        let t = self.triager.clone();
        let known = self.known.clone();
        let store = self.store;
        blocking(move || {
            let items = msg
                .items
                .iter()
                .enumerate()
                .map(|(i, it)| {
                    let field = format!("items[{}]", base + i);
                    let item = match &t {
                        Some(t) => t.prepare(&field, it),
                        None => known::prepare_hashes_only(&field, it),
                    }?;
                    if store {
                        storable(&field, &item)?;
                    }
                    Ok(item)
                })
                .collect::<Result<Vec<_>, Error>>()?;
            let results = items
                .par_iter()
                .map(|it| known::judge(&known, t.as_deref(), it))
                .collect::<Result<Vec<_>, Error>>()?;
            Ok((items, results))
        })
        .await
    }

    /// Candidate series among the new items, and the items stored (if asked).
    async fn finish(
        &self,
        new_items: Vec<Item>,
        kept: Vec<Item>,
    ) -> Result<(Option<Vec<Vec<String>>>, u64), Status> {
        let t = self.triager.clone();
        let known = self.known.clone();
        let (images, faces) = (self.images.clone(), self.faces.clone());
        let store = self.store;
        let writer = self.writer.clone();
        blocking(move || {
            // Items that came with hashes only have no image to group by.
            let with_images: Vec<Item> = new_items
                .into_iter()
                .filter(|it| !it.vector.is_empty())
                .collect();
            let groups = t.as_ref().and_then(|t| t.group_new(&with_images));
            let stored = if store {
                let hashes = store_known_hashes(&known, &kept, &writer)?;
                match &images {
                    Some(images) => store_triaged(images, faces.as_deref(), kept, &writer)?,
                    None => hashes,
                }
            } else {
                0
            };
            Ok((groups, stored))
        })
        .await
    }
}

#[tonic::async_trait]
impl VectorIndex for Service {
    type LinkSeriesStream = EventStream<pb::LinkEvent>;
    type TriageStream = EventStream<pb::TriageResponse>;
    type ExportHashesStream = EventStream<pb::ExportHashesResponse>;

    async fn import_hashes(
        &self,
        request: Request<Streaming<pb::ImportHashesRequest>>,
    ) -> Result<Response<pb::ImportHashesResponse>, Status> {
        // An index node's hash sets would be its alone, outside the log.
        self.writable("ImportHashes")?;
        let caller = caller(&request)?;
        let note = note(&request);
        let r =
            crate::api::hashes::import(self.registry.clone(), caller, note, request.into_inner())
                .await?;
        Ok(Response::new(r))
    }

    async fn lookup_hashes(
        &self,
        request: Request<pb::LookupHashesRequest>,
    ) -> Result<Response<pb::LookupHashesResponse>, Status> {
        let note = note(&request);
        let r =
            crate::api::hashes::lookup(self.registry.clone(), note, request.into_inner()).await?;
        Ok(Response::new(self.fit(
            "LookupHashes response",
            "look up fewer digests per request, or raise the server's --max-message-bytes",
            r,
        )?))
    }

    async fn list_hash_sets(
        &self,
        request: Request<pb::ListHashSetsRequest>,
    ) -> Result<Response<pb::ListHashSetsResponse>, Status> {
        let note = note(&request);
        let r = crate::api::hashes::list(self.registry.clone(), note).await?;
        Ok(Response::new(self.fit(
            "hash set list",
            "raise the server's --max-message-bytes",
            r,
        )?))
    }

    async fn export_hashes(
        &self,
        request: Request<pb::ExportHashesRequest>,
    ) -> Result<Response<Self::ExportHashesStream>, Status> {
        let note = note(&request);
        let s =
            crate::api::hashes::export(self.registry.clone(), note, request.into_inner()).await?;
        Ok(Response::new(s))
    }

    async fn drop_hash_set(
        &self,
        request: Request<pb::DropHashSetRequest>,
    ) -> Result<Response<pb::DropHashSetResponse>, Status> {
        self.writable("DropHashSet")?;
        let note = note(&request);
        crate::api::hashes::drop_set(self.registry.clone(), note, request.into_inner()).await?;
        Ok(Response::new(pb::DropHashSetResponse {}))
    }

    type CreateSnapshotStream = EventStream<pb::SnapshotChunk>;

    async fn link_series(
        &self,
        request: Request<pb::LinkSeriesRequest>,
    ) -> Result<Response<Self::LinkSeriesStream>, Status> {
        self.writable("LinkSeries")?;
        note_collection(&request, &request.get_ref().image_collection);
        let caller = caller(&request)?;
        let note = note(&request);
        let req = request.into_inner();
        caller.may_use(&req.image_collection)?;
        if !req.face_collection.is_empty() {
            caller.may_use(&req.face_collection)?;
        }
        let (visibility, scope, with_restricted) = self.link_scope(&caller, &req, &note)?;
        let (images, faces) =
            link_collections(&self.registry, &req.image_collection, &req.face_collection)?;
        let settings = link::settings_from_pb(req.params.as_ref(), images.config().metric)?;
        let (tx, rx) = mpsc::channel::<Result<pb::LinkEvent, Status>>(64);
        let store = self.series.clone();
        let decisions = self.decisions.clone();
        let lock = self.link_lock.clone();
        let image_name = req.image_collection.clone();
        let face_name = req.face_collection.clone();
        let limit = self.max_message_bytes;
        let started = Instant::now();
        tokio::task::spawn_blocking(move || {
            let send = |e: pb::link_event::Event| {
                let event = pb::LinkEvent { event: Some(e) };
                let ask_less = "link a smaller scope, or raise the server's --max-message-bytes";
                // A client that went away just stops listening.
                let _ = tx.blocking_send(fit(limit, "LinkSeries event", ask_less, event));
            };
            let progress = |stage: &'static str, done: u64, total: u64| {
                send(pb::link_event::Event::Progress(pb::LinkProgress {
                    stage: stage.into(),
                    done,
                    total,
                }));
            };
            let run = || -> Result<pb::LinkSummary, Error> {
                let _guard = lock.lock();
                let iv = images.view_as(visibility.clone())?;
                let fv = faces
                    .as_ref()
                    .map(|f| f.view_as(visibility.clone()))
                    .transpose()?;
                let book = decisions.load(&image_name)?;
                let mut linked = link::link_full(
                    (&iv, &image_name),
                    fv.as_ref().map(|v| (v, face_name.as_str())),
                    &settings,
                    scope.as_ref(),
                    book.constraints(),
                    &progress,
                )?;
                book.apply_review(&mut linked.series);
                let t = Instant::now();
                let stored = scope.is_none() && !with_restricted;
                let linked_media: usize = linked.series.iter().map(|s| s.media_ids.len()).sum();
                let cross = linked.series.iter().filter(|s| s.cross_border()).count();
                let total = linked.series.len() as u64;
                for (i, rec) in linked.series.iter().enumerate() {
                    send(pb::link_event::Event::Series(rec.to_pb()));
                    if (i as u64 + 1).is_multiple_of((total / 100).max(1)) {
                        progress("output", i as u64 + 1, total);
                    }
                }
                if stored {
                    store.save(&SeriesState {
                        format: state_format(),
                        image_collection: image_name.clone(),
                        face_collection: face_name.clone(),
                        settings: settings.clone(),
                        series: linked.series,
                        linked_uploads: Vec::new(),
                    })?;
                }
                let mut stages = linked.stages;
                stages.push(("output", t.elapsed().as_secs_f64()));
                Ok(pb::LinkSummary {
                    media: linked.media.len() as u64,
                    series: total,
                    linked_media: linked_media as u64,
                    cross_border_series: cross as u64,
                    image_edges: linked.image_edges as u64,
                    face_edges: linked.face_edges as u64,
                    refused_edges: linked.stats.refused_edges as u64,
                    stages: stages
                        .into_iter()
                        .map(|(stage, seconds)| pb::StageTime {
                            stage: stage.into(),
                            seconds,
                        })
                        .collect(),
                    stored,
                    params: Some(link::settings_to_pb(&settings)),
                    refused_by_decisions: linked.stats.refused_by_decisions as u64,
                    decisions: book.decisions().len() as u64,
                })
            };
            let result = run();
            record_link_series(&image_name, started, result.as_ref().ok());
            match result {
                Ok(summary) => {
                    note.0.lock().results = summary.series;
                    tracing::info!(collection = %image_name, series = summary.series, media = summary.media, "linked");
                    send(pb::link_event::Event::Summary(summary));
                }
                Err(e) => {
                    let _ = tx.blocking_send(Err(Status::from(e)));
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn link_upload(
        &self,
        request: Request<pb::LinkUploadRequest>,
    ) -> Result<Response<pb::LinkUploadResponse>, Status> {
        self.writable("LinkUpload")?;
        note_collection(&request, &request.get_ref().image_collection);
        let caller = caller(&request)?;
        let note = note(&request);
        let req = request.into_inner();
        // Before the names are used for anything: they become file names.
        link_names(&req.image_collection, &req.face_collection)?;
        crate::index::filter::list("upload_id", std::slice::from_ref(&req.upload_id))?;
        caller.may_use(&req.image_collection)?;
        note.request(
            &req.image_collection,
            serde_json::json!({
                "upload_id": req.upload_id,
                "face_collection": req.face_collection,
            }),
        );
        // The stored series hold unrestricted material only: a restricted
        // upload (that the caller may see) is linked on the caller's view,
        // into a copy of the series that is not stored.
        let private =
            self.restrictions.snapshot().values().any(|r| {
                r.upload_id == req.upload_id && (caller.open || r.visible_to(&caller.agency))
            });
        let visibility = if private {
            self.visibility(&caller)
        } else {
            self.restrictions.hidden_from_all()
        };
        let registry = self.registry.clone();
        let store = self.series.clone();
        let lock = self.link_lock.clone();
        let review = self.review.clone();
        let image_name = req.image_collection.clone();
        let started = Instant::now();
        let out = blocking(move || {
            let _guard = lock.lock();
            // The kind before the stored state: a FACE collection has none.
            validate::collection_name("image_collection", &req.image_collection)?;
            collection_of_kind(&registry, "image_collection", &req.image_collection, config::Kind::Image)?;
            let state = store.load(&req.image_collection)?.ok_or_else(|| {
                Error::FailedPrecondition(format!(
                    "collection {:?} has no series yet; run LinkSeries over the whole collection first",
                    req.image_collection
                ))
            })?;
            let face_name = if req.face_collection.is_empty() {
                state.face_collection.clone()
            } else if state.face_collection.is_empty() || state.face_collection == req.face_collection {
                req.face_collection.clone()
            } else {
                return Err(Error::invalid(format!(
                    "face_collection {:?} differs from {:?}, which the stored series were linked with",
                    req.face_collection, state.face_collection
                )));
            };
            if !face_name.is_empty() {
                caller.may_use(&face_name)?;
            }
            review.link_upload(&req, state, face_name, visibility, !private)
        })
        .await;
        record_link_upload(&image_name, started, out.as_ref().ok().map(|(o, _)| o));
        let (out, relinked) = out?;
        note.0.lock().results = out.media.len() as u64;
        let response = pb::LinkUploadResponse {
            stored: !private,
            media: out
                .media
                .into_iter()
                .map(|(media_id, o, series_id)| pb::MediaLink {
                    media_id,
                    outcome: match o {
                        link::Outcome::Joined => pb::LinkOutcome::Joined,
                        link::Outcome::NewSeries => pb::LinkOutcome::NewSeries,
                        link::Outcome::Unlinked => pb::LinkOutcome::Unlinked,
                    } as i32,
                    series_id,
                })
                .collect(),
            merges: out
                .merges
                .into_iter()
                .map(|(series_id, merged)| pb::SeriesMerge { series_id, merged })
                .collect(),
            series: out.touched.iter().map(|r| r.to_pb()).collect(),
            new_edges: out.new_edges as u64,
            relinked,
        };
        let ask_less = "link smaller uploads, or raise the server's --max-message-bytes";
        Ok(Response::new(self.fit(
            "LinkUpload response",
            ask_less,
            response,
        )?))
    }

    async fn triage(
        &self,
        request: Request<Streaming<pb::TriageRequest>>,
    ) -> Result<Response<Self::TriageStream>, Status> {
        self.writable("Triage")?;
        let caller = caller(&request)?;
        let note = note(&request);
        let call = call_of(&request);
        let mut input = request.into_inner();
        let Some(first) = input.message().await.map_err(transport_status)? else {
            return Err(Status::invalid_argument(
                "the triage stream sent no message",
            ));
        };
        // A hash-only triage is of its hash collection.
        let audited = if first.image_collection.is_empty() {
            &first.hash_collection
        } else {
            &first.image_collection
        };
        note.request(
            audited,
            serde_json::json!({
                "face_collection": first.face_collection,
                "store": first.store,
                "image_threshold": first.image_threshold,
                "face_threshold": first.face_threshold,
                "hash_sets": first.hash_sets,
                "hash_collection": first.hash_collection,
                "hash_max_distance": first.hash_max_distance,
            }),
        );
        // A hash-only triage names no image collection.
        for c in [
            &first.image_collection,
            &first.face_collection,
            &first.hash_collection,
        ] {
            if !c.is_empty() {
                caller.may_use(c)?;
            }
        }
        if first.store {
            caller.require(Role::Contributor, "store triaged items (Triage with store)")?;
        }
        let visibility = self.visibility(&caller);
        if let Some(call) = &call {
            call.set_collection(audited);
        }
        let known = Arc::new(known_material(&self.registry, &first, visibility.clone())?);
        let (triager, images, faces) =
            if first.image_collection.is_empty() && first.face_collection.is_empty() {
                (None, None, None)
            } else {
                let (images, faces) = link_collections(
                    &self.registry,
                    &first.image_collection,
                    &first.face_collection,
                )?;
                let state = self.series.load(&first.image_collection)?;
                let settings = triage_settings(&first, state.as_ref(), images.config().metric)?;
                let triager = Arc::new(Triager::new(
                    images.view_as(visibility.clone())?,
                    faces
                        .as_ref()
                        .map(|f| f.view_as(visibility.clone()))
                        .transpose()?,
                    state,
                    settings,
                ));
                (Some(triager), Some(images), faces)
            };
        let (tx, rx) = mpsc::channel::<Result<pb::TriageResponse, Status>>(16);
        let job = TriageJob {
            triager,
            known,
            images,
            faces,
            store: first.store,
            tx,
            writer: Writer {
                caller,
                restrictions: self.restrictions.clone(),
                visibility,
            },
            note,
            started: Instant::now(),
            limit: self.max_message_bytes,
        };
        tokio::spawn(job.run(first, input));
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn list_series(
        &self,
        request: Request<pb::ListSeriesRequest>,
    ) -> Result<Response<pb::ListSeriesResponse>, Status> {
        let (caller, note, req) = admit(
            request,
            "image_collection",
            |r| &r.image_collection,
            |r| {
                serde_json::json!({
                    "filter": r.filter.as_ref().map(|f| format!("{f:?}")),
                    "page_size": r.page_size,
                    "page_token": r.page_token,
                    "with_evidence": r.with_evidence,
                })
            },
        )?;
        let r = self.review.list(&caller, req).await?;
        // The series returned (their ids), as a read's record lists.
        note.results(
            r.series.len() as u64,
            r.series.iter().map(|s| s.series_id.clone()).collect(),
        );
        Ok(Response::new(self.fit(
            "ListSeries response",
            "ask for a smaller page_size, or leave out with_evidence",
            r,
        )?))
    }

    async fn get_series(
        &self,
        request: Request<pb::GetSeriesRequest>,
    ) -> Result<Response<pb::GetSeriesResponse>, Status> {
        let (caller, note, req) = admit(
            request,
            "image_collection",
            |r| &r.image_collection,
            |r| serde_json::json!({ "series_id": r.series_id }),
        )?;
        let r = self.review.get(&caller, req).await?;
        note.results(
            r.media.len() as u64,
            r.media.iter().map(|m| m.media_id.clone()).collect(),
        );
        Ok(Response::new(self.fit(
            "GetSeries response",
            "the series is too large for one answer: raise the server's --max-message-bytes",
            r,
        )?))
    }

    async fn series_of_media(
        &self,
        request: Request<pb::SeriesOfMediaRequest>,
    ) -> Result<Response<pb::SeriesOfMediaResponse>, Status> {
        let (caller, note, req) = admit(
            request,
            "image_collection",
            |r| &r.image_collection,
            |r| serde_json::json!({ "media_ids": r.media_ids }),
        )?;
        let r = self.review.of_media(&caller, req).await?;
        note.results(
            r.media.len() as u64,
            r.media
                .iter()
                .filter(|m| !m.series_id.is_empty())
                .map(|m| m.series_id.clone())
                .collect(),
        );
        Ok(Response::new(self.fit(
            "SeriesOfMedia response",
            "ask for fewer media_ids per request",
            r,
        )?))
    }

    async fn review_series(
        &self,
        request: Request<pb::ReviewSeriesRequest>,
    ) -> Result<Response<pb::ReviewSeriesResponse>, Status> {
        self.writable("ReviewSeries")?;
        let (caller, note, req) = admit(
            request,
            "image_collection",
            |r| &r.image_collection,
            |r| {
                serde_json::json!({
                    "reviewer": r.reviewer,
                    "decisions": r.decisions.iter().map(|d| format!("{d:?}")).collect::<Vec<_>>(),
                })
            },
        )?;
        let r = self.review.review(&caller, req).await?;
        note.results(
            r.recorded.len() as u64,
            r.recorded
                .iter()
                .map(|d| d.decision_id.to_string())
                .collect(),
        );
        Ok(Response::new(self.fit(
            "ReviewSeries response",
            "send fewer decisions per request",
            r,
        )?))
    }

    async fn update_metadata(
        &self,
        request: Request<pb::UpdateMetadataRequest>,
    ) -> Result<Response<pb::UpdateMetadataResponse>, Status> {
        self.writable("UpdateMetadata")?;
        let (caller, note, req) = admit(
            request,
            "collection",
            |r| &r.collection,
            |r| {
                serde_json::json!({
                    "ids": r.ids,
                    "set": r.set.as_ref().map(|s| format!("{s:?}")),
                })
            },
        )?;
        let r = self.review.update_metadata(&caller, req).await?;
        note.0.lock().results = r.updated;
        Ok(Response::new(r))
    }

    async fn create_collection(
        &self,
        request: Request<pb::CreateCollectionRequest>,
    ) -> Result<Response<pb::CollectionInfo>, Status> {
        self.writable("CreateCollection")?;
        let caller = caller(&request)?;
        note(&request).0.lock().collection = request.get_ref().name.clone();
        note_collection(&request, &request.get_ref().name);
        let req = request.into_inner();
        caller.may_use(&req.name)?;
        let config = config::Config::from_request(&req)?;
        let registry = self.registry.clone();
        let c = blocking(move || registry.create(config)).await?;
        tracing::info!(collection = %c.name(), dim = c.config().dim, "collection created");
        Ok(Response::new(c.info()))
    }

    async fn list_collections(
        &self,
        request: Request<pb::ListCollectionsRequest>,
    ) -> Result<Response<pb::ListCollectionsResponse>, Status> {
        let caller = caller(&request)?;
        let note = note(&request);
        let registry = self.registry.clone();
        let visibility = self.visibility(&caller);
        let collections = blocking(move || {
            registry
                .list()
                .into_iter()
                .filter(|(name, _)| caller.may_use(name).is_ok())
                .map(|(name, state)| match state {
                    State::Ready(c) => visible_info(&c, visibility.as_ref()),
                    State::Opening => Ok(pb::CollectionInfo {
                        name,
                        state: "opening".into(),
                        ..Default::default()
                    }),
                    State::Unavailable(why) => Ok(pb::CollectionInfo {
                        name,
                        state: "unavailable".into(),
                        error: Status::from(why).message().to_string(),
                        ..Default::default()
                    }),
                })
                .collect::<Result<Vec<_>, Error>>()
        })
        .await?;
        note.0.lock().results = collections.len() as u64;
        let response = pb::ListCollectionsResponse { collections };
        Ok(Response::new(self.fit(
            "collection list",
            "drop collections",
            response,
        )?))
    }

    async fn describe_collection(
        &self,
        request: Request<pb::DescribeCollectionRequest>,
    ) -> Result<Response<pb::CollectionInfo>, Status> {
        let caller = caller(&request)?;
        let note = note(&request);
        note_collection(&request, &request.get_ref().name);
        let req = request.into_inner();
        note.0.lock().collection = req.name.clone();
        validate::collection_name("name", &req.name)?;
        caller.may_use(&req.name)?;
        let c = self.registry.get(&req.name)?;
        let visibility = self.visibility(&caller);
        Ok(Response::new(
            blocking(move || visible_info(&c, visibility.as_ref())).await?,
        ))
    }

    async fn drop_collection(
        &self,
        request: Request<pb::DropCollectionRequest>,
    ) -> Result<Response<pb::DropCollectionResponse>, Status> {
        self.writable("DropCollection")?;
        let caller = caller(&request)?;
        note(&request).0.lock().collection = request.get_ref().name.clone();
        note_collection(&request, &request.get_ref().name);
        let req = request.into_inner();
        validate::collection_name("name", &req.name)?;
        caller.may_use(&req.name)?;
        let registry = self.registry.clone();
        let series = self.series.clone();
        let decisions = self.decisions.clone();
        let name = req.name.clone();
        blocking(move || {
            registry.drop_collection(&name)?;
            crate::metrics::forget_collection(&name);
            // Its series, and the decisions about them, concern data that is gone.
            series.remove(&name)?;
            decisions.remove(&name)
        })
        .await?;
        tracing::info!(collection = %req.name, "collection dropped");
        Ok(Response::new(pb::DropCollectionResponse {}))
    }

    async fn upsert(
        &self,
        request: Request<Streaming<pb::UpsertRequest>>,
    ) -> Result<Response<pb::UpsertResponse>, Status> {
        self.writable("Upsert")?;
        let caller = caller(&request)?;
        let note = note(&request);
        let writer = Writer {
            visibility: self.visibility(&caller),
            caller,
            restrictions: self.restrictions.clone(),
        };
        let call = call_of(&request);
        let mut stream = request.into_inner();
        let mut upserted: u64 = 0;
        let mut batch_no: u64 = 0;
        let mut current: Option<Arc<crate::collection::Collection>> = None;
        // Each message is one batch, applied whole or not at all. Earlier
        // batches stay applied when a later one fails; the error says so.
        let context = |batch_no: u64, upserted: u64| {
            if upserted == 0 {
                format!("batch {batch_no}")
            } else {
                format!("batch {batch_no} ({upserted} points of earlier batches were applied)")
            }
        };
        loop {
            let msg = match stream.message().await {
                Ok(Some(m)) => m,
                Ok(None) => break,
                Err(s) => {
                    let s = transport_status(s);
                    return Err(Status::new(
                        s.code(),
                        format!("{}: {}", context(batch_no, upserted), s.message()),
                    ));
                }
            };
            let name = if msg.collection.is_empty() {
                match &current {
                    Some(c) => c.name().to_string(),
                    None => {
                        return Err(Status::invalid_argument(
                            "collection is empty; name the collection in the first message",
                        ));
                    }
                }
            } else {
                msg.collection.clone()
            };
            let with_ctx = |e: Error| {
                let s = Status::from(e);
                Status::new(
                    s.code(),
                    format!("{}: {}", context(batch_no, upserted), s.message()),
                )
            };
            if let Some(call) = &call {
                call.set_collection(&name);
            }
            validate::collection_name("collection", &name).map_err(with_ctx)?;
            writer.caller.may_use(&name).map_err(with_ctx)?;
            note.0.lock().collection = name.clone();
            let c = match &current {
                Some(c) if c.name() == name => c.clone(),
                _ => self.registry.get(&name).map_err(with_ctx)?,
            };
            current = Some(c.clone());
            let mut points = msg.points;
            let c2 = c.clone();
            let w = writer.clone();
            let work = move || {
                owner::stamp(&w.caller, &mut points)?;
                let check = owner::replace_check(&w.caller, &w.restrictions, w.visibility.as_ref());
                c2.upsert_checked(points, Some(&check))
            };
            let n = match tokio::task::spawn_blocking(work).await {
                Ok(r) => r.map_err(with_ctx)?,
                Err(e) => return Err(Status::internal(format!("worker failed: {e}"))),
            };
            upserted += n as u64;
            batch_no += 1;
            let mut n = note.0.lock();
            n.results = upserted;
            n.request = serde_json::json!({ "batches": batch_no, "points": upserted });
        }
        Ok(Response::new(pb::UpsertResponse { upserted }))
    }

    async fn search(
        &self,
        request: Request<pb::SearchRequest>,
    ) -> Result<Response<pb::SearchResponse>, Status> {
        let caller = caller(&request)?;
        let note = note(&request);
        note_collection(&request, &request.get_ref().collection);
        let req = request.into_inner();
        note.request(
            &req.collection,
            serde_json::json!({
                "queries": req.queries.iter().map(query_summary).collect::<Vec<_>>(),
                "k": req.k,
                "ef": req.ef,
                "filter": req.filter.as_ref().map(|f| format!("{f:?}")),
                "exclude_same_upload": req.exclude_same_upload,
                "exclude_same_case": req.exclude_same_case,
                "group_by_media": req.group_by_media,
                "max_distance": req.max_distance,
            }),
        );
        validate::collection_name("collection", &req.collection)?;
        caller.may_use(&req.collection)?;
        validate::k(req.k)?;
        validate::ef(req.ef)?;
        if req.queries.is_empty() {
            return Err(Status::invalid_argument(
                "queries is empty; send at least one query",
            ));
        }
        validate::count("queries", req.queries.len(), validate::MAX_QUERIES)?;
        validate::exclusions(&req.queries, req.exclude_same_upload, req.exclude_same_case)?;
        validate::max_distance(req.max_distance)?;
        if let Some(q) = req.min_quality {
            validate::quality("min_quality", q)?;
        }
        let user_filter = Filter::from_pb(req.filter.as_ref())?;
        let visibility = self.visibility(&caller);
        let opts = SearchOptions {
            filter: Filter::and_visible(user_filter.clone(), visibility.as_ref()),
            exclude_same_upload: req.exclude_same_upload,
            exclude_same_case: req.exclude_same_case,
            group_by_media: req.group_by_media,
            max_distance: req.max_distance,
            min_quality: req.min_quality,
        };
        let mut queries = Vec::with_capacity(req.queries.len());
        for (i, q) in req.queries.into_iter().enumerate() {
            queries.push(match q.query {
                Some(pb::query::Query::Vector(v)) => Query::Vector(v.values),
                Some(pb::query::Query::PointId(id)) => Query::PointId(id),
                Some(pb::query::Query::Bits(b)) => Query::Bits(b),
                None => {
                    return Err(Status::invalid_argument(format!(
                        "queries[{i}] is empty; set vector, point_id or bits"
                    )));
                }
            });
        }
        let c = self.registry.get(&req.collection)?;
        let k = req.k as usize;
        let ef = if req.ef == 0 {
            (config::DEFAULT_EF as usize).max(k)
        } else {
            (req.ef as usize).max(k)
        };
        let deconflicting = if caller.open {
            Vec::new()
        } else {
            self.restrictions.deconflicting_hidden_from(&caller.agency)
        };
        let (results, notices) = on_rayon(move || {
            let results = c.search(&queries, k, ef, &opts)?;
            let base = SearchOptions {
                filter: user_filter,
                ..opts
            };
            let notices = deconfliction(&c, &deconflicting, &queries, ef, &base, &results, k)?;
            Ok((results, notices))
        })
        .await?;
        note.results(
            results.iter().map(|h| h.len() as u64).sum(),
            results.iter().flatten().map(|h| h.id.clone()).collect(),
        );
        let response = pb::SearchResponse {
            results: results
                .into_iter()
                .zip(notices)
                .map(|(hits, held_by)| pb::QueryResult {
                    hits: hits
                        .into_iter()
                        .map(|h| pb::Hit {
                            id: h.id,
                            distance: h.distance,
                            metadata: Some(h.metadata),
                            matched_faces: h.matched_faces,
                            quality: h.quality,
                        })
                        .collect(),
                    restricted_matches_held_by: held_by,
                })
                .collect(),
        };
        let ask_less = "send fewer queries per request or ask for a smaller k";
        Ok(Response::new(self.fit(
            "search response",
            ask_less,
            response,
        )?))
    }

    async fn get(
        &self,
        request: Request<pb::GetRequest>,
    ) -> Result<Response<pb::GetResponse>, Status> {
        let (caller, note, req) = admit(
            request,
            "collection",
            |r| &r.collection,
            |r| serde_json::json!({ "ids": r.ids }),
        )?;
        validate::point_ids("ids", &req.ids)?;
        let c = self.registry.get(&req.collection)?;
        let visibility = self.visibility(&caller);
        let mut points = blocking(move || c.get(&req.ids)).await?;
        // A point the caller may not see is an unknown id: skipped.
        if let Some(v) = &visibility {
            points.retain(|p| !p.metadata.as_ref().is_some_and(|m| v.hides(m)));
        }
        let resp = pb::GetResponse { points };
        let size = prost::Message::encoded_len(&resp);
        if size > self.max_message_bytes {
            return Err(Status::resource_exhausted(format!(
                "the answer holds {} points, {size} bytes encoded, over the server's message limit of {} bytes (--max-message-bytes); ask for fewer ids at a time (vidx get --page-size, the Python client's page_size)",
                resp.points.len(),
                self.max_message_bytes
            )));
        }
        note.results(
            resp.points.len() as u64,
            resp.points.iter().map(|p| p.id.clone()).collect(),
        );
        Ok(Response::new(resp))
    }

    async fn delete(
        &self,
        request: Request<pb::DeleteRequest>,
    ) -> Result<Response<pb::DeleteResponse>, Status> {
        self.writable("Delete")?;
        let (caller, note, req) = admit(
            request,
            "collection",
            |r| &r.collection,
            |r| serde_json::json!({ "ids": r.ids }),
        )?;
        validate::count("ids", req.ids.len(), validate::MAX_IDS)?;
        let c = self.registry.get(&req.collection)?;
        let visibility = self.visibility(&caller);
        let deleted = blocking(move || {
            let check = owner::delete_check(&caller, visibility.as_ref());
            c.delete_checked(req.ids, Some(&check))
        })
        .await?;
        note.0.lock().results = deleted as u64;
        Ok(Response::new(pb::DeleteResponse {
            deleted: deleted as u64,
        }))
    }

    async fn flush(
        &self,
        request: Request<pb::FlushRequest>,
    ) -> Result<Response<pb::FlushResponse>, Status> {
        let caller = caller(&request)?;
        note(&request).0.lock().collection = request.get_ref().collection.clone();
        note_collection(&request, &request.get_ref().collection);
        let req = request.into_inner();
        validate::collection_name("collection", &req.collection)?;
        caller.may_use(&req.collection)?;
        let c = self.registry.get(&req.collection)?;
        let (segments, sealed_points) = blocking(move || c.flush()).await?;
        Ok(Response::new(pb::FlushResponse {
            segments,
            sealed_points,
        }))
    }

    async fn who_am_i(
        &self,
        request: Request<pb::WhoAmIRequest>,
    ) -> Result<Response<pb::WhoAmIResponse>, Status> {
        let c = caller(&request)?;
        Ok(Response::new(pb::WhoAmIResponse {
            agency: c.agency,
            role: c.role.to_string(),
            credential: c.credential,
            collections: c.collections.into_iter().flatten().collect(),
        }))
    }

    async fn restrict_upload(
        &self,
        request: Request<pb::RestrictUploadRequest>,
    ) -> Result<Response<pb::Restriction>, Status> {
        // A cluster's router does not apply an index node's restrictions:
        // one made there would hide nothing from the router's callers.
        self.writable("RestrictUpload")?;
        let c = caller(&request)?;
        let note = note(&request);
        let req = request.into_inner();
        note.0.lock().request = serde_json::json!({
            "upload_id": req.upload_id,
            "shared_with": req.shared_with,
            "deconfliction": req.deconfliction,
            "lift": req.lift,
            "owner": req.owner,
        });
        let registry = self.registry.clone();
        let restrictions = self.restrictions.clone();
        Ok(Response::new(
            blocking(move || crate::api::admin::restrict_upload(&registry, &restrictions, &c, req))
                .await?,
        ))
    }

    async fn list_restrictions(
        &self,
        request: Request<pb::ListRestrictionsRequest>,
    ) -> Result<Response<pb::ListRestrictionsResponse>, Status> {
        let c = caller(&request)?;
        let restrictions = crate::api::admin::list_restrictions(&self.restrictions, &c);
        note(&request).0.lock().results = restrictions.len() as u64;
        Ok(Response::new(pb::ListRestrictionsResponse { restrictions }))
    }

    async fn create_token(
        &self,
        request: Request<pb::CreateTokenRequest>,
    ) -> Result<Response<pb::CreateTokenResponse>, Status> {
        let note = note(&request);
        let req = request.into_inner();
        let tokens = self.tokens.clone();
        let resp = blocking(move || crate::api::admin::create_token(&tokens, req)).await?;
        if let Some(info) = &resp.info {
            // The token's id, never the token.
            note.0.lock().request = serde_json::json!({
                "id": info.id, "agency": info.agency, "role": info.role,
                "collections": info.collections, "expires_at": info.expires_at,
            });
        }
        Ok(Response::new(resp))
    }

    async fn list_tokens(
        &self,
        request: Request<pb::ListTokensRequest>,
    ) -> Result<Response<pb::ListTokensResponse>, Status> {
        let resp = crate::api::admin::list_tokens(&self.tokens);
        note(&request).0.lock().results = resp.tokens.len() as u64;
        Ok(Response::new(resp))
    }

    async fn revoke_token(
        &self,
        request: Request<pb::RevokeTokenRequest>,
    ) -> Result<Response<pb::RevokeTokenResponse>, Status> {
        let note = note(&request);
        let req = request.into_inner();
        note.0.lock().request = serde_json::json!({ "id": req.id });
        let tokens = self.tokens.clone();
        let said = blocking(move || tokens.revoke(&req.id)).await?;
        tracing::info!("{said}");
        Ok(Response::new(pb::RevokeTokenResponse {}))
    }

    async fn create_snapshot(
        &self,
        request: Request<pb::CreateSnapshotRequest>,
    ) -> Result<Response<Self::CreateSnapshotStream>, Status> {
        let caller = caller(&request)?;
        note(&request).0.lock().collection = request.get_ref().collection.clone();
        note_collection(&request, &request.get_ref().collection);
        let req = request.into_inner();
        validate::collection_name("collection", &req.collection)?;
        caller.may_use(&req.collection)?;
        let c = self.registry.get(&req.collection)?;
        let data_dir = self.registry.data_dir().to_owned();
        let started = Instant::now();
        let snap = blocking(move || crate::api::snapshot::take(&c, &data_dir)).await;
        let m = &crate::metrics::get().storage;
        let outcome = if snap.is_ok() { "ok" } else { "error" };
        m.snapshots
            .with_label_values(&[&req.collection, outcome])
            .inc();
        let snap = snap?;
        m.snapshot_seconds
            .with_label_values(&[&req.collection])
            .observe(started.elapsed().as_secs_f64());
        tracing::info!(
            collection = %req.collection,
            points = snap.manifest.points,
            files = snap.manifest.files.len(),
            bytes = snap.manifest.total_bytes(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "snapshot taken"
        );
        let (tx, rx) = mpsc::channel(4);
        tokio::task::spawn_blocking(move || crate::api::snapshot::send(snap, tx));
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}

/// Deconfliction: for each query, the agencies holding restricted material
/// hidden from the caller (of `deconflicting` uploads, whose owners chose to
/// be named) that would have been among its `k` hits under the same filter.
/// Nothing of that material leaves: only the owners' names.
fn deconfliction(
    c: &Collection,
    deconflicting: &[(String, String)],
    queries: &[Query],
    ef: usize,
    base: &SearchOptions,
    results: &[Vec<Hit>],
    k: usize,
) -> Result<Vec<Vec<String>>, Error> {
    let mut notices = vec![Vec::new(); results.len()];
    let mut by_owner: std::collections::BTreeMap<&str, Vec<String>> = Default::default();
    for (owner, upload) in deconflicting {
        by_owner.entry(owner).or_default().push(upload.clone());
    }
    for (owner, uploads) in by_owner {
        let mut f = base.filter.clone().unwrap_or_default();
        if !f.agencies_any.is_empty() && !f.agencies_any.iter().any(|a| a == owner) {
            continue;
        }
        let uploads: Vec<String> = if f.upload_ids_any.is_empty() {
            uploads
        } else {
            uploads
                .into_iter()
                .filter(|u| f.upload_ids_any.contains(u))
                .collect()
        };
        if uploads.is_empty() {
            continue;
        }
        f.agencies_any = vec![owner.to_string()];
        f.upload_ids_any = uploads;
        let opts = SearchOptions {
            filter: Some(f),
            group_by_media: false,
            ..base.clone()
        };
        let nearest = c.search(queries, 1, ef, &opts)?;
        for (qi, hit) in nearest.iter().enumerate() {
            let Some(h) = hit.first() else { continue };
            let kth = results[qi].get(k.saturating_sub(1)).map(|x| x.distance);
            if kth.is_none_or(|d| h.distance <= d) {
                notices[qi].push(owner.to_string());
            }
        }
    }
    Ok(notices)
}

/// Records a LinkSeries run.
fn record_link_series(collection: &str, started: Instant, summary: Option<&pb::LinkSummary>) {
    crate::metrics::link_run(RunReport {
        run: "link_series",
        collection,
        elapsed: started.elapsed(),
        result: summary.map(|s| RunCounts {
            media: s.media,
            series: s.series,
        }),
    });
}

/// Records a triage run and its verdicts.
fn record_triage(collection: &str, started: Instant, summary: Option<&pb::TriageSummary>) {
    crate::metrics::link_run(RunReport {
        run: "triage",
        collection,
        elapsed: started.elapsed(),
        result: summary.map(|s| RunCounts {
            media: s.items,
            series: s.new_groups.len() as u64,
        }),
    });
    if let Some(s) = summary {
        let m = &crate::metrics::get().link;
        m.triage_items
            .with_label_values(&[collection, "known"])
            .inc_by(s.known);
        m.triage_items
            .with_label_values(&[collection, "new"])
            .inc_by(s.new);
    }
}

/// Records a LinkUpload run and its media's outcomes.
fn record_link_upload(collection: &str, started: Instant, out: Option<&link::UploadLinked>) {
    crate::metrics::link_run(RunReport {
        run: "link_upload",
        collection,
        elapsed: started.elapsed(),
        result: out.map(|o| RunCounts {
            media: o.media.len() as u64,
            series: o.touched.len() as u64,
        }),
    });
    let Some(o) = out else { return };
    let m = &crate::metrics::get().link;
    for (_, outcome, _) in &o.media {
        let name = match outcome {
            link::Outcome::Joined => "joined",
            link::Outcome::NewSeries => "new_series",
            link::Outcome::Unlinked => "unlinked",
        };
        m.upload_media.with_label_values(&[collection, name]).inc();
    }
}
