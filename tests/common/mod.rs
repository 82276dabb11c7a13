//! Shared test harness: a real vidx server on an ephemeral loopback port,
//! a real tonic client, and a temp data directory.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;
use tokio::sync::oneshot;
use tonic::transport::Channel;
use vidx::api::server::{ServerOptions, serve};
use vidx::collection::StorageOptions;
use vidx::collection::registry::Registry;
use vidx::pb;
use vidx::pb::vector_index_client::VectorIndexClient;

pub type Client = VectorIndexClient<Channel>;

pub struct TestServer {
    pub addr: SocketAddr,
    pub data_dir: PathBuf,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
    _tmp: Option<tempfile::TempDir>,
}

impl TestServer {
    /// Starts a server on a fresh temp data dir.
    pub async fn start() -> TestServer {
        Self::start_with(ServerOptions::default()).await
    }

    pub async fn start_with(opts: ServerOptions) -> TestServer {
        let tmp = tempfile::tempdir().expect("temp dir");
        let mut s = Self::start_in(tmp.path(), opts).await;
        s._tmp = Some(tmp);
        s
    }

    /// Starts a server on an existing data dir (e.g. to test a restart).
    pub async fn start_in(dir: &Path, opts: ServerOptions) -> TestServer {
        Self::start_full(dir, opts, StorageOptions::default()).await
    }

    /// A fresh temp dir with the given storage options.
    pub async fn start_storage(storage: StorageOptions) -> TestServer {
        let tmp = tempfile::tempdir().expect("temp dir");
        let mut s = Self::start_full(tmp.path(), ServerOptions::default(), storage).await;
        s._tmp = Some(tmp);
        s
    }

    pub async fn start_full(
        dir: &Path,
        opts: ServerOptions,
        storage: StorageOptions,
    ) -> TestServer {
        let d = dir.to_owned();
        let registry = tokio::task::spawn_blocking(move || Registry::open(&d, storage))
            .await
            .unwrap()
            .expect("open registry");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            serve(Arc::new(registry), listener, opts, async {
                let _ = rx.await;
            })
            .await
            .expect("server failed");
        });
        TestServer {
            addr,
            data_dir: dir.to_owned(),
            stop: Some(tx),
            task: Some(task),
            _tmp: None,
        }
    }

    pub async fn client(&self) -> Client {
        let url = format!("http://{}", self.addr);
        for _ in 0..50 {
            if let Ok(c) = VectorIndexClient::connect(url.clone()).await {
                return c
                    .max_decoding_message_size(256 << 20)
                    .max_encoding_message_size(256 << 20);
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        panic!("server at {url} did not come up");
    }

    /// Stops the server and waits until it has shut down; keeps the data dir.
    pub async fn stop(mut self) -> Option<tempfile::TempDir> {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.task.take() {
            t.await.unwrap();
        }
        self._tmp.take()
    }
}

pub fn create_req(name: &str, dim: u32, metric: pb::Metric) -> pb::CreateCollectionRequest {
    pb::CreateCollectionRequest {
        name: name.into(),
        dim,
        metric: metric as i32,
        kind: pb::Kind::Image as i32,
        hnsw: None,
    }
}

pub fn meta(country: &str, upload: &str) -> pb::Metadata {
    pb::Metadata {
        media_id: String::new(),
        upload_id: upload.into(),
        case_id: "case-1".into(),
        country: country.into(),
        agency: format!("{country}-police"),
        captured_at: 1_500_000_000,
        uploaded_at: 1_600_000_000,
        series_label: String::new(),
        victim_identified: false,
        tags: vec!["indoor".into()],
    }
}

pub fn point(id: &str, vector: Vec<f32>) -> pb::Point {
    pb::Point {
        id: id.into(),
        vector,
        metadata: Some(meta("DE", "up-1")),
    }
}

/// `n` vectors of `dim` around `clusters` random centres (unit-normalised
/// so cosine and L2 agree), like embeddings of planted series.
pub fn clustered(n: usize, dim: usize, clusters: usize, spread: f32, seed: u64) -> Vec<Vec<f32>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let gauss = |rng: &mut ChaCha8Rng| -> Vec<f32> {
        (0..dim)
            .map(|_| rng.sample::<f32, _>(StandardNormal))
            .collect()
    };
    let centres: Vec<Vec<f32>> = (0..clusters).map(|_| unit(gauss(&mut rng))).collect();
    (0..n)
        .map(|_| {
            let c = &centres[rng.random_range(0..clusters)];
            let noise = gauss(&mut rng);
            let v: Vec<f32> = c
                .iter()
                .zip(&noise)
                .map(|(c, e)| c + spread * e / (dim as f32).sqrt())
                .collect();
            unit(v)
        })
        .collect()
}

pub fn unit(mut v: Vec<f32>) -> Vec<f32> {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.iter_mut().for_each(|x| *x /= n);
    v
}

pub fn cosine_distance(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na = a.iter().map(|x| x * x).sum::<f32>().sqrt();
    let nb = b.iter().map(|x| x * x).sum::<f32>().sqrt();
    1.0 - dot / (na * nb)
}

/// Streams points in batches of `batch` as one client-streaming Upsert.
pub async fn upsert_batches(
    client: &mut Client,
    collection: &str,
    points: Vec<pb::Point>,
    batch: usize,
) -> Result<u64, tonic::Status> {
    let reqs: Vec<pb::UpsertRequest> = points
        .chunks(batch)
        .map(|c| pb::UpsertRequest {
            collection: collection.into(),
            points: c.to_vec(),
        })
        .collect();
    client
        .upsert(tokio_stream::iter(reqs))
        .await
        .map(|r| r.into_inner().upserted)
}

pub fn vector_query(v: Vec<f32>) -> pb::Query {
    pb::Query {
        query: Some(pb::query::Query::Vector(pb::Vector { values: v })),
    }
}

pub fn id_query(id: &str) -> pb::Query {
    pb::Query {
        query: Some(pb::query::Query::PointId(id.into())),
    }
}

pub fn search_req(collection: &str, queries: Vec<pb::Query>, k: u32) -> pb::SearchRequest {
    pb::SearchRequest {
        collection: collection.into(),
        queries,
        k,
        ef: 0,
        ..Default::default()
    }
}
