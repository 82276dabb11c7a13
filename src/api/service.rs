//! The gRPC service `vidx.v1.VectorIndex`: request validation, status codes,
//! and moving CPU-heavy work (graph inserts, searches) off the async runtime
//! onto blocking threads.

use std::pin::Pin;
use std::sync::Arc;

use tokio::sync::mpsc;
use tokio_stream::Stream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use crate::api::linking::{
    LinkJob, TriageJob, collection_of_kind, link_collections, triage_settings,
};
use crate::api::work::blocking;
use crate::collection::config;
use crate::collection::registry::Registry;
use crate::collection::{Query, SearchOptions};
use crate::error::Error;
use crate::index::filter::Filter;
use crate::investigate::series::StateStore;
use crate::investigate::triage::Triager;
use crate::investigate::{calibrate, upload};
use crate::pb;
use crate::pb::vector_index_server::VectorIndex;
use crate::validate;

/// Where series states live, under the data directory.
const SERIES_DIR: &str = "series";

pub struct Service {
    registry: Arc<Registry>,
    /// Stored series states, one per linked image collection.
    series: StateStore,
    /// One linking job (LinkSeries, LinkUpload) at a time: they read and
    /// replace the stored series states.
    link_lock: Arc<parking_lot::Mutex<()>>,
}

impl Service {
    pub fn new(registry: Arc<Registry>) -> Self {
        Service {
            series: StateStore::new(registry.data_dir().join(SERIES_DIR)),
            registry,
            link_lock: Arc::new(parking_lot::Mutex::new(())),
        }
    }
}

type EventStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

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

/// tonic reports an over-limit message as OUT_OF_RANGE; gRPC's convention
/// (and our contract) is RESOURCE_EXHAUSTED.
pub fn oversized_to_resource_exhausted(s: Status) -> Status {
    if s.code() == tonic::Code::OutOfRange && s.message().contains("message length too large") {
        Status::resource_exhausted(format!(
            "{}; send smaller batches or raise the server's --max-message-bytes",
            s.message()
        ))
    } else {
        s
    }
}

#[tonic::async_trait]
impl VectorIndex for Service {
    type LinkSeriesStream = EventStream<pb::LinkEvent>;
    type TriageStream = EventStream<pb::TriageResponse>;

    async fn link_series(
        &self,
        request: Request<pb::LinkSeriesRequest>,
    ) -> Result<Response<Self::LinkSeriesStream>, Status> {
        let job = LinkJob::new(
            &self.registry,
            request.into_inner(),
            &self.series,
            &self.link_lock,
        )?;
        let (tx, rx) = mpsc::channel::<Result<pb::LinkEvent, Status>>(64);
        tokio::task::spawn_blocking(move || job.run(tx));
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn calibrate(
        &self,
        request: Request<pb::CalibrateRequest>,
    ) -> Result<Response<pb::CalibrateResponse>, Status> {
        let req = request.into_inner();
        let (images, faces) =
            link_collections(&self.registry, &req.image_collection, &req.face_collection)?;
        let cal = blocking(move || {
            let iv = images.view()?;
            let fv = faces.as_ref().map(|f| f.view()).transpose()?;
            let defaults = calibrate::defaults(&iv, fv.as_ref());
            calibrate::calibrate(&iv, fv.as_ref(), None, defaults)
        })
        .await?;
        Ok(Response::new(cal.to_pb()))
    }

    async fn link_upload(
        &self,
        request: Request<pb::LinkUploadRequest>,
    ) -> Result<Response<pb::LinkUploadResponse>, Status> {
        let req = request.into_inner();
        crate::index::filter::list("upload_id", std::slice::from_ref(&req.upload_id))?;
        let registry = self.registry.clone();
        let store = self.series.clone();
        let lock = self.link_lock.clone();
        let out = blocking(move || {
            let _guard = lock.lock();
            // The kind before the stored state: a FACE collection has none.
            validate::collection_name("image_collection", &req.image_collection)?;
            collection_of_kind(&registry, "image_collection", &req.image_collection, config::Kind::Image)?;
            let mut state = store.load(&req.image_collection)?.ok_or_else(|| {
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
            let (images, faces) = link_collections(&registry, &req.image_collection, &face_name)?;
            let iv = images.view()?;
            let fv = faces.as_ref().map(|f| f.view()).transpose()?;
            let r = upload::link_upload((&iv, &req.image_collection), fv.as_ref(), &mut state, &req.upload_id)?;
            state.face_collection = face_name;
            store.save(&state)?;
            Ok(r)
        })
        .await?;
        Ok(Response::new(pb::LinkUploadResponse {
            media: out
                .media
                .into_iter()
                .map(|(media_id, o, series_id)| pb::MediaLink {
                    media_id,
                    outcome: match o {
                        upload::Outcome::Joined => pb::LinkOutcome::Joined,
                        upload::Outcome::NewSeries => pb::LinkOutcome::NewSeries,
                        upload::Outcome::Unlinked => pb::LinkOutcome::Unlinked,
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
        }))
    }

    async fn triage(
        &self,
        request: Request<Streaming<pb::TriageRequest>>,
    ) -> Result<Response<Self::TriageStream>, Status> {
        let mut input = request.into_inner();
        let Some(first) = input.message().await? else {
            return Err(Status::invalid_argument(
                "the triage stream sent no message",
            ));
        };
        let (images, faces) = link_collections(
            &self.registry,
            &first.image_collection,
            &first.face_collection,
        )?;
        let state = self.series.load(&first.image_collection)?;
        let settings = triage_settings(&first, state.as_ref(), images.config().metric)?;
        let triager = Arc::new(Triager::new(
            images.view()?,
            faces.as_ref().map(|f| f.view()).transpose()?,
            state,
            settings,
        ));
        let (tx, rx) = mpsc::channel::<Result<pb::TriageResponse, Status>>(16);
        let job = TriageJob {
            triager,
            images,
            faces,
            store: first.store,
            tx,
        };
        tokio::spawn(job.run(first, input));
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn create_collection(
        &self,
        request: Request<pb::CreateCollectionRequest>,
    ) -> Result<Response<pb::CollectionInfo>, Status> {
        let req = request.into_inner();
        let config = config::Config::from_request(&req)?;
        let registry = self.registry.clone();
        let c = blocking(move || registry.create(config)).await?;
        tracing::info!(collection = %c.name(), dim = c.config().dim, "collection created");
        Ok(Response::new(c.info()))
    }

    async fn list_collections(
        &self,
        _request: Request<pb::ListCollectionsRequest>,
    ) -> Result<Response<pb::ListCollectionsResponse>, Status> {
        let registry = self.registry.clone();
        let collections = blocking(move || {
            let (ready, broken) = registry.list();
            for (name, why) in broken {
                tracing::warn!(collection = %name, error = %why, "not listed: unavailable");
            }
            Ok(ready.iter().map(|c| c.info()).collect())
        })
        .await?;
        Ok(Response::new(pb::ListCollectionsResponse { collections }))
    }

    async fn describe_collection(
        &self,
        request: Request<pb::DescribeCollectionRequest>,
    ) -> Result<Response<pb::CollectionInfo>, Status> {
        let req = request.into_inner();
        validate::collection_name("name", &req.name)?;
        let c = self.registry.get(&req.name)?;
        Ok(Response::new(blocking(move || Ok(c.info())).await?))
    }

    async fn drop_collection(
        &self,
        request: Request<pb::DropCollectionRequest>,
    ) -> Result<Response<pb::DropCollectionResponse>, Status> {
        let req = request.into_inner();
        validate::collection_name("name", &req.name)?;
        let registry = self.registry.clone();
        let series = self.series.clone();
        let name = req.name.clone();
        blocking(move || {
            registry.drop_collection(&name)?;
            // Its series were found in data that is gone.
            series.remove(&name)
        })
        .await?;
        tracing::info!(collection = %req.name, "collection dropped");
        Ok(Response::new(pb::DropCollectionResponse {}))
    }

    async fn upsert(
        &self,
        request: Request<Streaming<pb::UpsertRequest>>,
    ) -> Result<Response<pb::UpsertResponse>, Status> {
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
                    let s = oversized_to_resource_exhausted(s);
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
            validate::collection_name("collection", &name).map_err(with_ctx)?;
            let c = match &current {
                Some(c) if c.name() == name => c.clone(),
                _ => self.registry.get(&name).map_err(with_ctx)?,
            };
            current = Some(c.clone());
            let points = msg.points;
            let c2 = c.clone();
            let n = match tokio::task::spawn_blocking(move || c2.upsert(points)).await {
                Ok(r) => r.map_err(with_ctx)?,
                Err(e) => return Err(Status::internal(format!("worker failed: {e}"))),
            };
            upserted += n as u64;
            batch_no += 1;
        }
        Ok(Response::new(pb::UpsertResponse { upserted }))
    }

    async fn search(
        &self,
        request: Request<pb::SearchRequest>,
    ) -> Result<Response<pb::SearchResponse>, Status> {
        let req = request.into_inner();
        validate::collection_name("collection", &req.collection)?;
        validate::k(req.k)?;
        validate::ef(req.ef)?;
        if req.queries.is_empty() {
            return Err(Status::invalid_argument(
                "queries is empty; send at least one query",
            ));
        }
        validate::count("queries", req.queries.len(), validate::MAX_QUERIES)?;
        validate::exclusions(&req.queries, req.exclude_same_upload, req.exclude_same_case)?;
        let opts = SearchOptions {
            filter: Filter::from_pb(req.filter.as_ref())?,
            exclude_same_upload: req.exclude_same_upload,
            exclude_same_case: req.exclude_same_case,
            group_by_media: req.group_by_media,
        };
        let mut queries = Vec::with_capacity(req.queries.len());
        for (i, q) in req.queries.into_iter().enumerate() {
            queries.push(match q.query {
                Some(pb::query::Query::Vector(v)) => Query::Vector(v.values),
                Some(pb::query::Query::PointId(id)) => Query::PointId(id),
                None => {
                    return Err(Status::invalid_argument(format!(
                        "queries[{i}] is empty; set vector or point_id"
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
        let results = on_rayon(move || c.search(&queries, k, ef, &opts)).await?;
        Ok(Response::new(pb::SearchResponse {
            results: results
                .into_iter()
                .map(|hits| pb::QueryResult {
                    hits: hits
                        .into_iter()
                        .map(|h| pb::Hit {
                            id: h.id,
                            distance: h.distance,
                            metadata: Some(h.metadata),
                            matched_faces: h.matched_faces,
                        })
                        .collect(),
                })
                .collect(),
        }))
    }

    async fn get(
        &self,
        request: Request<pb::GetRequest>,
    ) -> Result<Response<pb::GetResponse>, Status> {
        let req = request.into_inner();
        validate::collection_name("collection", &req.collection)?;
        validate::count("ids", req.ids.len(), validate::MAX_IDS)?;
        for (i, id) in req.ids.iter().enumerate() {
            validate::point_id(&format!("ids[{i}]"), id)?;
        }
        let c = self.registry.get(&req.collection)?;
        let points = blocking(move || c.get(&req.ids)).await?;
        Ok(Response::new(pb::GetResponse { points }))
    }

    async fn delete(
        &self,
        request: Request<pb::DeleteRequest>,
    ) -> Result<Response<pb::DeleteResponse>, Status> {
        let req = request.into_inner();
        validate::collection_name("collection", &req.collection)?;
        validate::count("ids", req.ids.len(), validate::MAX_IDS)?;
        let c = self.registry.get(&req.collection)?;
        let deleted = blocking(move || c.delete(req.ids)).await?;
        Ok(Response::new(pb::DeleteResponse {
            deleted: deleted as u64,
        }))
    }

    async fn flush(
        &self,
        request: Request<pb::FlushRequest>,
    ) -> Result<Response<pb::FlushResponse>, Status> {
        let req = request.into_inner();
        validate::collection_name("collection", &req.collection)?;
        let c = self.registry.get(&req.collection)?;
        let (segments, sealed_points) = blocking(move || c.flush()).await?;
        Ok(Response::new(pb::FlushResponse {
            segments,
            sealed_points,
        }))
    }
}
