//! An in-process vidx server on an ephemeral loopback port with a temp data
//! directory, and a real tonic client for it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;
use tonic::transport::Channel;
use vidx::api::server::{ServerOptions, serve};
use vidx::collection::StorageOptions;
use vidx::collection::registry::Registry;
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
        connect(&format!("http://{}", self.addr)).await
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

/// A client of the server at `url` with 256 MiB message limits, retrying the
/// connection for up to 10 s while the server comes up.
pub async fn connect(url: &str) -> Client {
    let started = Instant::now();
    loop {
        match VectorIndexClient::connect(url.to_string()).await {
            Ok(c) => {
                return c
                    .max_decoding_message_size(256 << 20)
                    .max_encoding_message_size(256 << 20);
            }
            Err(e) if started.elapsed() > Duration::from_secs(10) => {
                panic!("cannot connect to {url}: {e}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
}
