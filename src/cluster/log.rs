//! The replicated log on NATS JetStream: one stream per collection
//! (`VIDX_<collection>`, subjects `vidx.<collection>.upsert|delete|update`),
//! stored on file with 3 replicas. A message is one client batch, encoded as
//! the API's own `UpsertRequest` / `DeleteRequest` / `UpdateMetadataRequest`
//! protobuf; a publish counts
//! only once JetStream acknowledges it, which it does after a quorum of the
//! stream's replicas stored it.

use std::time::Duration;

use async_nats::jetstream::{self, consumer, stream};
use bytes::Bytes;

use crate::error::{Error, Result};

/// Replicas of every stream (JetStream's R); needs that many servers.
pub const REPLICAS: usize = 3;

/// Window within which a re-sent batch (same message id) is stored once.
const DUPLICATE_WINDOW: Duration = Duration::from_secs(120);

/// What a log message holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Upsert,
    Delete,
    /// UpdateMetadata: new metadata for stored points.
    Update,
}

impl Kind {
    fn suffix(self) -> &'static str {
        match self {
            Kind::Upsert => "upsert",
            Kind::Delete => "delete",
            Kind::Update => "update",
        }
    }

    /// The kind of a message from its subject; `None` for a subject vidx
    /// did not write (skipped, the same way on every node).
    pub fn of_subject(subject: &str) -> Option<Kind> {
        match subject.rsplit('.').next()? {
            "upsert" => Some(Kind::Upsert),
            "delete" => Some(Kind::Delete),
            "update" => Some(Kind::Update),
            _ => None,
        }
    }
}

pub fn stream_name(collection: &str) -> String {
    format!("VIDX_{collection}")
}

fn subject(collection: &str, kind: Kind) -> String {
    format!("vidx.{collection}.{}", kind.suffix())
}

fn unavailable(what: String, e: impl std::fmt::Display) -> Error {
    Error::Unavailable(format!("NATS JetStream: {what}: {e}"))
}

#[derive(Clone)]
pub struct Log {
    client: async_nats::Client,
    js: jetstream::Context,
}

impl Log {
    /// Connects to the NATS servers `urls` (comma-separated `nats://host:port`);
    /// the client fails over between them by itself.
    pub async fn connect(urls: &str) -> Result<Log> {
        let addrs = urls
            .split(',')
            .map(|u| u.trim().parse::<async_nats::ServerAddr>())
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| Error::invalid(format!("--nats {urls:?}: {e}")))?;
        let client = async_nats::ConnectOptions::new()
            .retry_on_initial_connect()
            .connection_timeout(Duration::from_secs(5))
            .connect(addrs)
            .await
            .map_err(|e| unavailable(format!("connecting to {urls}"), e))?;
        let js = jetstream::new(client.clone());
        Ok(Log { client, js })
    }

    /// The largest message the servers take, in bytes.
    pub fn max_payload(&self) -> usize {
        self.client.server_info().max_payload
    }

    /// Creates the collection's stream if it does not exist yet.
    pub async fn ensure_stream(&self, collection: &str) -> Result<stream::Stream> {
        let config = stream::Config {
            name: stream_name(collection),
            subjects: vec![format!("vidx.{collection}.>")],
            num_replicas: REPLICAS,
            storage: stream::StorageType::File,
            duplicate_window: DUPLICATE_WINDOW,
            ..Default::default()
        };
        self.js
            .get_or_create_stream(config)
            .await
            .map_err(|e| unavailable(format!("creating stream {}", stream_name(collection)), e))
    }

    /// Appends one batch and waits until JetStream has stored it; returns
    /// its stream sequence. `msg_id` makes a retry of the same batch (after
    /// a lost acknowledgement) a no-op instead of a second copy.
    pub async fn append(
        &self,
        collection: &str,
        kind: Kind,
        payload: Bytes,
        msg_id: &str,
    ) -> Result<u64> {
        let publish = jetstream::message::PublishMessage::build()
            .payload(payload)
            .message_id(msg_id);
        let subject = subject(collection, kind);
        let ack = self
            .js
            .send_publish(subject.clone(), publish)
            .await
            .map_err(|e| unavailable(format!("publishing to {subject}"), e))?
            .await
            .map_err(|e| unavailable(format!("storing on {subject}"), e))?;
        Ok(ack.sequence)
    }

    /// The sequence of the newest message of the collection's stream.
    pub async fn last_seq(&self, collection: &str) -> Result<u64> {
        let s = self.ensure_stream(collection).await?;
        let info = s
            .get_info()
            .await
            .map_err(|e| unavailable(format!("reading stream {}", stream_name(collection)), e))?;
        Ok(info.state.last_sequence)
    }

    /// The durable pull consumer `durable` of the collection's stream,
    /// (re)created to start at `start_seq`: where the node's own checkpoint
    /// is, whatever position an earlier consumer of that name had.
    pub async fn consumer(
        &self,
        collection: &str,
        durable: &str,
        start_seq: u64,
    ) -> Result<consumer::Consumer<consumer::pull::Config>> {
        let s = self.ensure_stream(collection).await?;
        // Absent the first time; any other failure shows in the create.
        let _ = s.delete_consumer(durable).await;
        let config = consumer::pull::Config {
            durable_name: Some(durable.to_string()),
            deliver_policy: consumer::DeliverPolicy::ByStartSequence {
                start_sequence: start_seq.max(1),
            },
            ack_policy: consumer::AckPolicy::Explicit,
            // Messages are applied one at a time; none is redelivered
            // while the node is still working through the ones before it.
            ack_wait: Duration::from_secs(600),
            ..Default::default()
        };
        s.create_consumer(config)
            .await
            .map_err(|e| unavailable(format!("creating consumer {durable}"), e))
    }
}
