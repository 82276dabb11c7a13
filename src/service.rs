//! The gRPC service `vidx.v1.VectorIndex`: request validation, status codes,
//! and moving CPU-heavy work (graph inserts, searches) off the async runtime
//! onto blocking threads.

use std::sync::Arc;

use tonic::{Request, Response, Status, Streaming};

use crate::collection::{Query, SearchOptions};
use crate::config;
use crate::error::Error;
use crate::filter::Filter;
use crate::pb;
use crate::pb::vector_index_server::VectorIndex;
use crate::registry::Registry;
use crate::validate;

pub struct Service {
    registry: Arc<Registry>,
}

impl Service {
    pub fn new(registry: Arc<Registry>) -> Self {
        Service { registry }
    }
}

/// Runs CPU-bound or blocking work on tokio's blocking pool.
async fn blocking<T, F>(f: F) -> Result<T, Status>
where
    F: FnOnce() -> Result<T, Error> + Send + 'static,
    T: Send + 'static,
{
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r.map_err(Status::from),
        Err(e) => Err(Status::internal(format!("worker failed: {e}"))),
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
        let name = req.name.clone();
        blocking(move || registry.drop_collection(&name)).await?;
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
        let results = blocking(move || c.search(&queries, k, ef, &opts)).await?;
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
