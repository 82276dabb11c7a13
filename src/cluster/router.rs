//! The router (`vidx serve --role router`): the same gRPC API as a single
//! server, holding no data. Writes are validated whole and appended to the
//! collection's log as one message, answered once JetStream stored it;
//! `Search` goes to one live replica of every shard and the hits are merged
//! into one top-k; `Get` goes to the shards owning the ids. A replica that
//! fails or does not answer in its share of the deadline is replaced by
//! another of the same shard. Routers keep no state of their own: any
//! number can run, and one killed loses nothing that was acknowledged.
//!
//! Index nodes serve routers without credentials, so the caller's rights
//! are checked here: the gate (tokens from the router's own data directory,
//! roles), the credential's collections, the caller's agency stamped on what
//! it stores, and another agency's points refused to its writes. There are
//! no restricted uploads in a cluster (index nodes refuse RestrictUpload),
//! so there is nothing the router could fail to hide.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use parking_lot::{Mutex, RwLock};
use prost::Message;
use tokio_stream::Stream;
use tonic::transport::Channel;
use tonic::{Code, Request, Response, Status, Streaming};

use crate::api::access::Caller;
use crate::api::server::{self, ServerOptions};
use crate::api::service::caller;
use crate::cluster::Engines;
use crate::cluster::catalog::{Catalog, Replica};
use crate::cluster::log::{Kind, Log};
use crate::cluster::shard::shard_of;
use crate::collection::config::Config;
use crate::error::Error;
use crate::pb;
use crate::pb::vector_index_client::VectorIndexClient;
use crate::pb::vector_index_server::VectorIndex;
use crate::validate;

#[derive(Clone, Debug)]
pub struct RouterOptions {
    pub listen: SocketAddr,
    pub server: ServerOptions,
    /// Where the router's credentials (`vidx token create --data-dir`) and
    /// audit log live.
    pub data_dir: std::path::PathBuf,
    pub engines: Engines,
    /// How long a read may take, retries included.
    pub deadline: Duration,
}

/// How long a write may take to be stored, retries included.
const WRITE_DEADLINE: Duration = Duration::from_secs(30);

/// How often the live replicas are read from etcd.
const REFRESH: Duration = Duration::from_millis(500);

pub struct Router {
    catalog: Catalog,
    log: Log,
    shards: u32,
    deadline: Duration,
    replicas: RwLock<BTreeMap<u32, Vec<Replica>>>,
    channels: Mutex<HashMap<String, Channel>>,
    configs: RwLock<HashMap<String, Config>>,
    /// Round-robin start among a shard's replicas.
    next: AtomicUsize,
}

type EventStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

/// Runs a router until `shutdown` resolves.
pub async fn run(
    opts: RouterOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let catalog = Catalog::connect(&opts.engines.etcd).await?;
    let log = Log::connect(&opts.engines.nats).await?;
    let shards = loop {
        if let Some(n) = catalog.shards().await? {
            break n;
        }
        tracing::info!("waiting for the first index node to fix the shard count");
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    let router = Arc::new(Router {
        catalog,
        log,
        shards,
        deadline: opts.deadline,
        replicas: RwLock::new(BTreeMap::new()),
        channels: Mutex::new(HashMap::new()),
        configs: RwLock::new(HashMap::new()),
        next: AtomicUsize::new(0),
    });
    router.refresh().await;
    let r = router.clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(REFRESH).await;
            r.refresh().await;
        }
    });
    let listener = tokio::net::TcpListener::bind(opts.listen).await?;
    tracing::info!(listen = %listener.local_addr()?, shards, "vidx router serving");
    let tokens = Arc::new(crate::api::tokens::TokenStore::open(&opts.data_dir)?);
    server::serve_service(
        Shared(router),
        tokens,
        None,
        listener,
        opts.server,
        shutdown,
    )
    .await
}

/// The router as a tonic service (tonic wants an owned value).
pub struct Shared(pub Arc<Router>);

fn unimplemented(rpc: &str) -> Status {
    Status::unimplemented(format!(
        "{rpc} is not yet available through a cluster router (README: Cluster, not yet handled)"
    ))
}

/// Whether another replica may succeed where this one failed.
fn retryable(s: &Status) -> bool {
    !matches!(
        s.code(),
        Code::InvalidArgument
            | Code::FailedPrecondition
            | Code::ResourceExhausted
            | Code::OutOfRange
            | Code::AlreadyExists
    )
}

/// The merged top-k of the shards' hit lists. With `group_by_media` a
/// media's best hit stands for it and its matched points add up (a media
/// lives in one shard when ids follow the `<media_id>#<n>` convention, so
/// this only matters when they do not).
fn merge(lists: Vec<Vec<pb::Hit>>, k: usize, group_by_media: bool) -> Vec<pb::Hit> {
    let mut all: Vec<pb::Hit> = lists.into_iter().flatten().collect();
    if group_by_media {
        let mut by_media: HashMap<String, pb::Hit> = HashMap::new();
        for h in all {
            let media = h
                .metadata
                .as_ref()
                .map(|m| m.media_id.clone())
                .unwrap_or_default();
            let key = if media.is_empty() {
                format!("\0{}", h.id)
            } else {
                media
            };
            match by_media.get_mut(&key) {
                Some(best) => {
                    let matched = best.matched_faces + h.matched_faces;
                    if h.distance < best.distance {
                        *best = h;
                    }
                    best.matched_faces = matched;
                }
                None => {
                    by_media.insert(key, h);
                }
            }
        }
        all = by_media.into_values().collect();
    }
    all.sort_by(|a, b| {
        a.distance
            .total_cmp(&b.distance)
            .then_with(|| a.id.cmp(&b.id))
    });
    all.truncate(k);
    all
}

impl Router {
    async fn refresh(&self) {
        match tokio::time::timeout(REFRESH * 4, self.catalog.replicas()).await {
            Ok(Ok(r)) => *self.replicas.write() = r,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "cannot read the live replicas; keeping the last list")
            }
            Err(_) => tracing::warn!("etcd did not answer; keeping the last list of replicas"),
        }
    }

    fn client(&self, addr: &str) -> Result<VectorIndexClient<Channel>, Status> {
        let mut channels = self.channels.lock();
        let ch = match channels.get(addr) {
            Some(c) => c.clone(),
            None => {
                let ep = server::endpoint(addr)
                    .map_err(|e| Status::internal(format!("replica address {addr:?}: {e}")))?
                    .connect_timeout(Duration::from_secs(1));
                let c = ep.connect_lazy();
                channels.insert(addr.to_string(), c.clone());
                c
            }
        };
        Ok(VectorIndexClient::new(ch)
            .max_decoding_message_size(usize::MAX)
            .max_encoding_message_size(usize::MAX))
    }

    /// Runs `call` on one live replica of `shard`, trying the next one on a
    /// failure that another replica may not have, each within its share of
    /// what is left of `deadline`.
    async fn on_shard<T, F, Fut>(&self, shard: u32, deadline: Instant, call: F) -> Result<T, Status>
    where
        F: Fn(VectorIndexClient<Channel>) -> Fut,
        Fut: Future<Output = Result<Response<T>, Status>>,
    {
        let reps = self
            .replicas
            .read()
            .get(&shard)
            .cloned()
            .unwrap_or_default();
        if reps.is_empty() {
            return Err(Status::unavailable(format!(
                "shard {shard} has no live replica"
            )));
        }
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let mut failures = Vec::new();
        let mut last_code = Code::Unavailable;
        for i in 0..reps.len() {
            let r = &reps[(start + i) % reps.len()];
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            let budget = left / (reps.len() - i) as u32;
            match tokio::time::timeout(budget, call(self.client(&r.addr)?)).await {
                Ok(Ok(v)) => return Ok(v.into_inner()),
                Ok(Err(s)) if !retryable(&s) => return Err(s),
                Ok(Err(s)) => {
                    last_code = s.code();
                    failures.push(format!("{}: {}", r.node_id, s.message()));
                }
                Err(_) => {
                    last_code = Code::Unavailable;
                    failures.push(format!("{}: no answer within {budget:?}", r.node_id));
                }
            }
            tracing::debug!(shard, node = %r.node_id, "replica failed; trying the next");
        }
        let code = if last_code == Code::NotFound {
            Code::NotFound
        } else {
            Code::Unavailable
        };
        Err(Status::new(
            code,
            format!(
                "shard {shard}: no replica answered within the deadline ({})",
                failures.join("; ")
            ),
        ))
    }

    /// The configuration of collection `name` (cached; from etcd).
    async fn config(&self, name: &str) -> Result<Config, Status> {
        if let Some(c) = self.configs.read().get(name) {
            return Ok(c.clone());
        }
        let all = self.catalog.collections().await?;
        let mut cache = self.configs.write();
        cache.extend(all);
        cache
            .get(name)
            .cloned()
            .ok_or_else(|| Error::CollectionNotFound(name.to_string()).into())
    }

    /// Appends one batch to the log, re-sending it (same message id, so it
    /// is stored once) while the log is unreachable, until the deadline.
    async fn append(&self, collection: &str, kind: Kind, payload: Vec<u8>) -> Result<u64, Status> {
        let max = self.log.max_payload();
        if payload.len() > max {
            return Err(Status::resource_exhausted(format!(
                "the batch is {} bytes encoded; the log takes at most {max} bytes a message: send smaller batches",
                payload.len()
            )));
        }
        let msg_id = format!("{:032x}", rand::random::<u128>());
        let payload = bytes::Bytes::from(payload);
        let deadline = Instant::now() + WRITE_DEADLINE;
        loop {
            match self
                .log
                .append(collection, kind, payload.clone(), &msg_id)
                .await
            {
                Ok(seq) => return Ok(seq),
                Err(e) if Instant::now() < deadline => {
                    tracing::warn!(collection, error = %e, "log append failed; re-sending");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Checks a batch as a collection would before logging it: a batch the
    /// index nodes would refuse must be refused here, not acknowledged.
    fn check_batch(config: &Config, points: &[pb::Point]) -> Result<usize, Error> {
        let mut ids = std::collections::HashSet::new();
        for (i, p) in points.iter().enumerate() {
            validate::point_id(&format!("points[{i}].id"), &p.id)?;
            let at = format!("points[{i}] (id {})", validate::show(&p.id));
            validate::vector(
                &format!("{at}: vector"),
                &p.vector,
                config.dim,
                config.metric.to_pb(),
            )?;
            validate::metadata(
                &format!("{at}: metadata"),
                &p.metadata.clone().unwrap_or_default(),
            )?;
            ids.insert(p.id.as_str());
        }
        Ok(ids.len())
    }

    /// Refuses a batch that would replace another agency's stored point
    /// (only its owner or an admin may), as a single server does. The
    /// check reads the shards before logging: a point another agency
    /// stores between the read and the log entry is not caught.
    async fn owner_check(
        &self,
        caller: &Caller,
        collection: &str,
        points: &[pb::Point],
    ) -> Result<(), Status> {
        if caller.open || caller.role == crate::api::access::Role::Admin {
            return Ok(());
        }
        let ids: Vec<String> = points.iter().map(|p| p.id.clone()).collect();
        let deadline = Instant::now() + self.deadline;
        for stored in self.stored_versions(collection, &ids, deadline).await? {
            let agency = stored.metadata.map(|m| m.agency).unwrap_or_default();
            if !caller.may_write_for(&agency) {
                return Err(Status::permission_denied(format!(
                    "point {} is another agency's: agency {} (role {}) may not replace it",
                    validate::show(&stored.id),
                    caller.agency,
                    caller.role
                )));
            }
        }
        Ok(())
    }

    async fn upsert_stream(
        &self,
        caller: &Caller,
        mut stream: Streaming<pb::UpsertRequest>,
    ) -> Result<u64, Status> {
        let (mut upserted, mut batch_no) = (0u64, 0u64);
        let mut current: Option<String> = None;
        let ctx = |batch_no: u64, upserted: u64, s: Status| {
            let earlier = if upserted == 0 {
                String::new()
            } else {
                format!(" ({upserted} points of earlier batches were stored)")
            };
            Status::new(
                s.code(),
                format!("batch {batch_no}{earlier}: {}", s.message()),
            )
        };
        while let Some(msg) = stream
            .message()
            .await
            .map_err(|s| ctx(batch_no, upserted, s))?
        {
            let name = match (&current, msg.collection.is_empty()) {
                (_, false) => msg.collection.clone(),
                (Some(c), true) => c.clone(),
                (None, true) => {
                    return Err(Status::invalid_argument(
                        "collection is empty; name the collection in the first message",
                    ));
                }
            };
            validate::collection_name("collection", &name)
                .map_err(|e| ctx(batch_no, upserted, e.into()))?;
            caller
                .may_use(&name)
                .map_err(|e| ctx(batch_no, upserted, e.into()))?;
            let config = self
                .config(&name)
                .await
                .map_err(|s| ctx(batch_no, upserted, s))?;
            current = Some(name.clone());
            let mut points = msg.points;
            // The agency is stamped before the batch is logged: every
            // replica stores the same bytes.
            crate::api::owner::stamp(caller, &mut points)
                .map_err(|e| ctx(batch_no, upserted, e.into()))?;
            let n = Self::check_batch(&config, &points)
                .map_err(|e| ctx(batch_no, upserted, e.into()))?;
            self.owner_check(caller, &name, &points)
                .await
                .map_err(|s| ctx(batch_no, upserted, s))?;
            if n > 0 {
                let payload = pb::UpsertRequest {
                    collection: name.clone(),
                    points,
                }
                .encode_to_vec();
                self.append(&name, Kind::Upsert, payload)
                    .await
                    .map_err(|s| ctx(batch_no, upserted, s))?;
            }
            upserted += n as u64;
            batch_no += 1;
        }
        Ok(upserted)
    }

    /// UpdateMetadata as one log message, after the checks a single server
    /// makes: every id exists and is the caller's to change (read from the
    /// shards first). Returns how many points it updates.
    async fn update_points(
        &self,
        caller: &Caller,
        req: &pb::UpdateMetadataRequest,
    ) -> Result<u64, Status> {
        let mut seen = std::collections::HashSet::new();
        let mut ids = Vec::new();
        for (i, id) in req.ids.iter().enumerate() {
            validate::point_id(&format!("ids[{i}]"), id)?;
            if seen.insert(id.as_str()) {
                ids.push(id.clone());
            }
        }
        let deadline = Instant::now() + self.deadline;
        let versions = self
            .stored_versions(&req.collection, &ids, deadline)
            .await?;
        let check = crate::api::owner::update_check(caller, None);
        for p in &versions {
            check(&p.id, &p.metadata.clone().unwrap_or_default())?;
        }
        let stored: HashMap<String, pb::Metadata> = versions
            .into_iter()
            .map(|p| (p.id, p.metadata.unwrap_or_default()))
            .collect();
        let set = req.set.clone().unwrap_or_default();
        for id in &ids {
            let Some(m) = stored.get(id) else {
                return Err(Error::PointNotFound {
                    collection: req.collection.clone(),
                    id: id.clone(),
                }
                .into());
            };
            // What the nodes will store must pass their checks, or they
            // would skip a message this call acknowledged.
            let mut new = m.clone();
            crate::api::series::apply_update(&set, &mut new);
            validate::metadata(&format!("point {}: metadata", validate::show(id)), &new)?;
        }
        self.append(&req.collection, Kind::Update, req.encode_to_vec())
            .await?;
        Ok(ids.len() as u64)
    }

    /// `Get` of `ids` from the shards owning them (one replica each).
    async fn get_points(
        &self,
        collection: &str,
        ids: &[String],
        deadline: Instant,
    ) -> Result<Vec<pb::Point>, Status> {
        self.read_points(collection, ids, deadline, false).await
    }

    /// What a write must be checked against: `Get` of `ids` from every live
    /// replica of their shards, each replica's copy listed. Replicas apply
    /// the log at their own pace; one that has not yet applied another
    /// agency's point must not let a write replace it (the cluster test
    /// caught that race).
    async fn stored_versions(
        &self,
        collection: &str,
        ids: &[String],
        deadline: Instant,
    ) -> Result<Vec<pb::Point>, Status> {
        self.read_points(collection, ids, deadline, true).await
    }

    async fn read_points(
        &self,
        collection: &str,
        ids: &[String],
        deadline: Instant,
        every_replica: bool,
    ) -> Result<Vec<pb::Point>, Status> {
        let mut by_shard: BTreeMap<u32, Vec<String>> = BTreeMap::new();
        for id in ids {
            by_shard
                .entry(shard_of(id, self.shards))
                .or_default()
                .push(id.clone());
        }
        let calls = by_shard.into_iter().map(|(shard, ids)| {
            let req = pb::GetRequest {
                collection: collection.to_string(),
                ids,
            };
            let get = move |mut c: VectorIndexClient<Channel>| {
                let req = req.clone();
                async move { c.get(req).await }
            };
            async move {
                if every_replica {
                    self.on_every_replica(shard, deadline, get).await
                } else {
                    Ok(vec![self.on_shard(shard, deadline, get).await?])
                }
            }
        });
        let mut points = Vec::new();
        for r in join_all(calls).await {
            points.extend(r?.into_iter().flat_map(|g| g.points));
        }
        Ok(points)
    }

    /// `call` on every live replica of `shard` at once: the answers of those
    /// that answered in time; an error only when none did.
    async fn on_every_replica<T, F, Fut>(
        &self,
        shard: u32,
        deadline: Instant,
        call: F,
    ) -> Result<Vec<T>, Status>
    where
        F: Fn(VectorIndexClient<Channel>) -> Fut,
        Fut: Future<Output = Result<Response<T>, Status>>,
    {
        let reps = self
            .replicas
            .read()
            .get(&shard)
            .cloned()
            .unwrap_or_default();
        let left = deadline.saturating_duration_since(Instant::now());
        let calls = reps.iter().map(|r| {
            let call = &call;
            async move {
                let client = self.client(&r.addr)?;
                match tokio::time::timeout(left, call(client)).await {
                    Ok(Ok(v)) => Ok(v.into_inner()),
                    Ok(Err(s)) if !retryable(&s) => Err(s),
                    Ok(Err(s)) => Err(Status::unavailable(format!(
                        "{}: {}",
                        r.node_id,
                        s.message()
                    ))),
                    Err(_) => Err(Status::unavailable(format!(
                        "{}: no answer within {left:?}",
                        r.node_id
                    ))),
                }
            }
        });
        let (mut answers, mut failures) = (Vec::new(), Vec::new());
        for r in join_all(calls).await {
            match r {
                Ok(v) => answers.push(v),
                // A refusal (not a replica being down) is the answer.
                Err(s) if s.code() != Code::Unavailable => return Err(s),
                Err(s) => failures.push(s.message().to_string()),
            }
        }
        if answers.is_empty() {
            let why = if failures.is_empty() {
                "it has no live replica".to_string()
            } else {
                failures.join("; ")
            };
            return Err(Status::unavailable(format!(
                "shard {shard}: no replica answered ({why})"
            )));
        }
        Ok(answers)
    }

    /// One request's hits from every shard, merged.
    async fn scatter_search(
        &self,
        req: pb::SearchRequest,
        deadline: Instant,
    ) -> Result<Vec<Vec<pb::Hit>>, Status> {
        let calls = (0..self.shards).map(|shard| {
            let req = req.clone();
            self.on_shard(shard, deadline, move |mut c| {
                let req = req.clone();
                async move { c.search(req).await }
            })
        });
        let mut per_query: Vec<Vec<Vec<pb::Hit>>> = vec![Vec::new(); req.queries.len()];
        for r in join_all(calls).await {
            for (q, result) in r?.results.into_iter().enumerate() {
                if let Some(slot) = per_query.get_mut(q) {
                    slot.push(result.hits);
                }
            }
        }
        let k = req.k as usize;
        Ok(per_query
            .into_iter()
            .map(|lists| merge(lists, k, req.group_by_media))
            .collect())
    }

    /// A stored point's query (`point_id`) as the vector query the shards
    /// can all answer: its vector, its upload / case excluded by filter
    /// when asked, and the point itself dropped from the hits.
    async fn point_query(
        &self,
        req: &pb::SearchRequest,
        id: &str,
        deadline: Instant,
    ) -> Result<Vec<pb::Hit>, Status> {
        let found = self
            .get_points(&req.collection, &[id.to_string()], deadline)
            .await?;
        let Some(p) = found.into_iter().next() else {
            return Err(Error::PointNotFound {
                collection: req.collection.clone(),
                id: id.to_string(),
            }
            .into());
        };
        let meta = p.metadata.unwrap_or_default();
        let mut filter = req.filter.clone().unwrap_or_default();
        if req.exclude_same_upload && !meta.upload_id.is_empty() {
            filter.upload_ids_none.push(meta.upload_id.clone());
        }
        if req.exclude_same_case && !meta.case_id.is_empty() {
            filter.case_ids_none.push(meta.case_id.clone());
        }
        let one = pb::SearchRequest {
            queries: vec![pb::Query {
                query: Some(pb::query::Query::Vector(pb::Vector { values: p.vector })),
            }],
            k: (req.k + 1).min(validate::MAX_K),
            filter: Some(filter),
            exclude_same_upload: false,
            exclude_same_case: false,
            ..req.clone()
        };
        let mut hits = self
            .scatter_search(one, deadline)
            .await?
            .pop()
            .unwrap_or_default();
        hits.retain(|h| h.id != id);
        hits.truncate(req.k as usize);
        Ok(hits)
    }
}

impl Shared {
    fn read_deadline(&self) -> Instant {
        Instant::now() + self.0.deadline
    }

    fn info(config: &Config) -> pb::CollectionInfo {
        pb::CollectionInfo {
            name: config.name.clone(),
            dim: config.dim,
            metric: config.metric.to_pb() as i32,
            kind: config.kind.to_pb() as i32,
            hnsw: Some(pb::HnswConfig {
                m: config.m,
                ef_construction: config.ef_construction,
            }),
            ..Default::default()
        }
    }

    /// The collection as the shards describe it, summed.
    async fn describe(&self, config: &Config) -> Result<pb::CollectionInfo, Status> {
        let r = &self.0;
        let deadline = self.read_deadline();
        let calls = (0..r.shards).map(|shard| {
            let req = pb::DescribeCollectionRequest {
                name: config.name.clone(),
            };
            r.on_shard(shard, deadline, move |mut c| {
                let req = req.clone();
                async move { c.describe_collection(req).await }
            })
        });
        let mut info = Self::info(config);
        for part in join_all(calls).await {
            let part = part?;
            info.points += part.points;
            info.segments += part.segments;
            info.memory_bytes += part.memory_bytes;
            info.disk_bytes += part.disk_bytes;
        }
        Ok(info)
    }
}

#[tonic::async_trait]
impl VectorIndex for Shared {
    type LinkSeriesStream = EventStream<pb::LinkEvent>;
    type TriageStream = EventStream<pb::TriageResponse>;
    type CreateSnapshotStream = EventStream<pb::SnapshotChunk>;
    type ExportHashesStream = EventStream<pb::ExportHashesResponse>;

    async fn create_collection(
        &self,
        request: Request<pb::CreateCollectionRequest>,
    ) -> Result<Response<pb::CollectionInfo>, Status> {
        let caller = caller(&request)?;
        let req = request.into_inner();
        validate::collection_name("name", &req.name)?;
        caller.may_use(&req.name)?;
        let config = Config::from_request(&req)?;
        self.0.catalog.create_collection(&config).await?;
        self.0.log.ensure_stream(&config.name).await?;
        tracing::info!(collection = %config.name, dim = config.dim, "collection created in the cluster");
        Ok(Response::new(Self::info(&config)))
    }

    async fn list_collections(
        &self,
        request: Request<pb::ListCollectionsRequest>,
    ) -> Result<Response<pb::ListCollectionsResponse>, Status> {
        let caller = caller(&request)?;
        let all = self.0.catalog.collections().await?;
        let mut collections = Vec::new();
        for config in all.values().filter(|c| caller.may_use(&c.name).is_ok()) {
            collections.push(self.describe(config).await?);
        }
        Ok(Response::new(pb::ListCollectionsResponse { collections }))
    }

    async fn describe_collection(
        &self,
        request: Request<pb::DescribeCollectionRequest>,
    ) -> Result<Response<pb::CollectionInfo>, Status> {
        let caller = caller(&request)?;
        let name = request.into_inner().name;
        validate::collection_name("name", &name)?;
        caller.may_use(&name)?;
        let config = self.0.config(&name).await?;
        Ok(Response::new(self.describe(&config).await?))
    }

    async fn drop_collection(
        &self,
        _request: Request<pb::DropCollectionRequest>,
    ) -> Result<Response<pb::DropCollectionResponse>, Status> {
        Err(unimplemented("DropCollection"))
    }

    async fn upsert(
        &self,
        request: Request<Streaming<pb::UpsertRequest>>,
    ) -> Result<Response<pb::UpsertResponse>, Status> {
        let caller = caller(&request)?;
        let upserted = self.0.upsert_stream(&caller, request.into_inner()).await?;
        Ok(Response::new(pb::UpsertResponse { upserted }))
    }

    async fn search(
        &self,
        request: Request<pb::SearchRequest>,
    ) -> Result<Response<pb::SearchResponse>, Status> {
        let caller = caller(&request)?;
        let req = request.into_inner();
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
        for (i, q) in req.queries.iter().enumerate() {
            if q.query.is_none() {
                return Err(Status::invalid_argument(format!(
                    "queries[{i}] is empty; set vector or point_id"
                )));
            }
        }
        self.0.config(&req.collection).await?;
        let deadline = self.read_deadline();
        let by_point = req
            .queries
            .iter()
            .any(|q| matches!(q.query, Some(pb::query::Query::PointId(_))));
        let hits = if by_point {
            // Each stored-point query has its own exclusions: one request each.
            let calls = req.queries.iter().map(|q| {
                let one = pb::SearchRequest {
                    queries: vec![q.clone()],
                    ..req.clone()
                };
                async move {
                    match &q.query {
                        Some(pb::query::Query::PointId(id)) => {
                            self.0.point_query(&one, id, deadline).await
                        }
                        _ => self
                            .0
                            .scatter_search(one, deadline)
                            .await
                            .map(|mut r| r.pop().unwrap_or_default()),
                    }
                }
            });
            join_all(calls)
                .await
                .into_iter()
                .collect::<Result<Vec<_>, Status>>()?
        } else {
            self.0.scatter_search(req, deadline).await?
        };
        Ok(Response::new(pb::SearchResponse {
            results: hits
                .into_iter()
                .map(|hits| pb::QueryResult {
                    hits,
                    ..Default::default()
                })
                .collect(),
        }))
    }

    async fn get(
        &self,
        request: Request<pb::GetRequest>,
    ) -> Result<Response<pb::GetResponse>, Status> {
        let caller = caller(&request)?;
        let req = request.into_inner();
        validate::collection_name("collection", &req.collection)?;
        caller.may_use(&req.collection)?;
        validate::point_ids("ids", &req.ids)?;
        self.0.config(&req.collection).await?;
        let points = self
            .0
            .get_points(&req.collection, &req.ids, self.read_deadline())
            .await?;
        Ok(Response::new(pb::GetResponse { points }))
    }

    async fn delete(
        &self,
        request: Request<pb::DeleteRequest>,
    ) -> Result<Response<pb::DeleteResponse>, Status> {
        let caller = caller(&request)?;
        let req = request.into_inner();
        validate::collection_name("collection", &req.collection)?;
        caller.may_use(&req.collection)?;
        validate::point_ids("ids", &req.ids)?;
        self.0.config(&req.collection).await?;
        // "How many existed" as the shards see it just before the delete;
        // only their owner (or an admin) may delete them.
        let versions = self
            .0
            .stored_versions(&req.collection, &req.ids, self.read_deadline())
            .await?;
        let check = crate::api::owner::delete_check(&caller, None);
        for p in &versions {
            check(&p.id, &p.metadata.clone().unwrap_or_default())?;
        }
        let live = versions
            .iter()
            .map(|p| p.id.as_str())
            .collect::<std::collections::HashSet<_>>()
            .len();
        let collection = req.collection.clone();
        self.0
            .append(&collection, Kind::Delete, req.encode_to_vec())
            .await?;
        Ok(Response::new(pb::DeleteResponse {
            deleted: live as u64,
        }))
    }

    async fn flush(
        &self,
        _request: Request<pb::FlushRequest>,
    ) -> Result<Response<pb::FlushResponse>, Status> {
        Err(unimplemented("Flush"))
    }

    async fn link_series(
        &self,
        _request: Request<pb::LinkSeriesRequest>,
    ) -> Result<Response<Self::LinkSeriesStream>, Status> {
        Err(unimplemented("LinkSeries"))
    }

    async fn link_upload(
        &self,
        _request: Request<pb::LinkUploadRequest>,
    ) -> Result<Response<pb::LinkUploadResponse>, Status> {
        Err(unimplemented("LinkUpload"))
    }

    async fn triage(
        &self,
        _request: Request<Streaming<pb::TriageRequest>>,
    ) -> Result<Response<Self::TriageStream>, Status> {
        Err(unimplemented("Triage"))
    }

    async fn list_series(
        &self,
        _request: Request<pb::ListSeriesRequest>,
    ) -> Result<Response<pb::ListSeriesResponse>, Status> {
        Err(unimplemented("ListSeries"))
    }

    async fn get_series(
        &self,
        _request: Request<pb::GetSeriesRequest>,
    ) -> Result<Response<pb::GetSeriesResponse>, Status> {
        Err(unimplemented("GetSeries"))
    }

    async fn series_of_media(
        &self,
        _request: Request<pb::SeriesOfMediaRequest>,
    ) -> Result<Response<pb::SeriesOfMediaResponse>, Status> {
        Err(unimplemented("SeriesOfMedia"))
    }

    async fn review_series(
        &self,
        _request: Request<pb::ReviewSeriesRequest>,
    ) -> Result<Response<pb::ReviewSeriesResponse>, Status> {
        Err(unimplemented("ReviewSeries"))
    }

    async fn update_metadata(
        &self,
        request: Request<pb::UpdateMetadataRequest>,
    ) -> Result<Response<pb::UpdateMetadataResponse>, Status> {
        let caller = caller(&request)?;
        let req = request.into_inner();
        crate::api::series::check_update(&req)?;
        caller.may_use(&req.collection)?;
        self.0.config(&req.collection).await?;
        let updated = self.0.update_points(&caller, &req).await?;
        Ok(Response::new(pb::UpdateMetadataResponse { updated }))
    }

    async fn create_snapshot(
        &self,
        _request: Request<pb::CreateSnapshotRequest>,
    ) -> Result<Response<Self::CreateSnapshotStream>, Status> {
        Err(unimplemented("CreateSnapshot"))
    }

    async fn who_am_i(
        &self,
        _request: Request<pb::WhoAmIRequest>,
    ) -> Result<Response<pb::WhoAmIResponse>, Status> {
        Err(unimplemented("WhoAmI"))
    }

    async fn restrict_upload(
        &self,
        _request: Request<pb::RestrictUploadRequest>,
    ) -> Result<Response<pb::Restriction>, Status> {
        Err(unimplemented("RestrictUpload"))
    }

    async fn list_restrictions(
        &self,
        _request: Request<pb::ListRestrictionsRequest>,
    ) -> Result<Response<pb::ListRestrictionsResponse>, Status> {
        Err(unimplemented("ListRestrictions"))
    }

    async fn create_token(
        &self,
        _request: Request<pb::CreateTokenRequest>,
    ) -> Result<Response<pb::CreateTokenResponse>, Status> {
        Err(unimplemented("CreateToken"))
    }

    async fn list_tokens(
        &self,
        _request: Request<pb::ListTokensRequest>,
    ) -> Result<Response<pb::ListTokensResponse>, Status> {
        Err(unimplemented("ListTokens"))
    }

    async fn revoke_token(
        &self,
        _request: Request<pb::RevokeTokenRequest>,
    ) -> Result<Response<pb::RevokeTokenResponse>, Status> {
        Err(unimplemented("RevokeToken"))
    }

    async fn import_hashes(
        &self,
        _request: Request<Streaming<pb::ImportHashesRequest>>,
    ) -> Result<Response<pb::ImportHashesResponse>, Status> {
        Err(unimplemented("ImportHashes"))
    }

    async fn lookup_hashes(
        &self,
        _request: Request<pb::LookupHashesRequest>,
    ) -> Result<Response<pb::LookupHashesResponse>, Status> {
        Err(unimplemented("LookupHashes"))
    }

    async fn list_hash_sets(
        &self,
        _request: Request<pb::ListHashSetsRequest>,
    ) -> Result<Response<pb::ListHashSetsResponse>, Status> {
        Err(unimplemented("ListHashSets"))
    }

    async fn export_hashes(
        &self,
        _request: Request<pb::ExportHashesRequest>,
    ) -> Result<Response<Self::ExportHashesStream>, Status> {
        Err(unimplemented("ExportHashes"))
    }

    async fn drop_hash_set(
        &self,
        _request: Request<pb::DropHashSetRequest>,
    ) -> Result<Response<pb::DropHashSetResponse>, Status> {
        Err(unimplemented("DropHashSet"))
    }
}
