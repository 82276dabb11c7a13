//! The cluster's shared state in etcd: the shard count, the catalogue of
//! collections (their configurations), which index nodes are alive (keys
//! under a lease that lapses a few seconds after a node stops renewing
//! it), and one snapshot leader per shard (etcd's election API).
//!
//! Spoken through etcd's v3 JSON gateway (`/v3/kv/...`, `/v3/lease/...`,
//! `/v3/election/...`: the gRPC API as JSON, bytes in base64), which every
//! etcd serves beside gRPC; a gRPC client crate would need a system protoc
//! to build.
//!
//! Keys, all under `/vidx/`:
//!
//! ```text
//! /vidx/shards                      "2": fixed when the first node starts
//! /vidx/collections/<name>          collection.json of the collection
//! /vidx/nodes/<shard>/<node_id>     {"node_id","shard","addr"} under the node's lease
//! /vidx/leader/<shard>              election: the node that uploads snapshots
//! ```

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::collection::config::Config;
use crate::error::{Error, Result};

const SHARDS_KEY: &str = "/vidx/shards";
const COLLECTIONS: &str = "/vidx/collections/";
const NODES: &str = "/vidx/nodes/";

/// How long a node's liveness outlives its last renewal.
pub const LEASE_TTL_SECS: i64 = 5;

/// How long an ordinary etcd request may take (campaigns wait longer).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// One index node as registered: which shard it serves and where.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Replica {
    pub node_id: String,
    pub shard: u32,
    pub addr: String,
}

#[derive(Clone)]
pub struct Catalog {
    http: reqwest::Client,
    endpoints: Vec<String>,
}

fn election_name(shard: u32) -> String {
    format!("/vidx/leader/{shard}")
}

fn b64(bytes: &[u8]) -> String {
    B64.encode(bytes)
}

/// The end of the range of keys starting with `prefix` (etcd's convention:
/// the prefix with its last byte incremented).
fn prefix_end(prefix: &str) -> Vec<u8> {
    let mut end = prefix.as_bytes().to_vec();
    if let Some(last) = end.last_mut() {
        *last += 1;
    }
    end
}

/// A base64 field of a gateway reply, decoded (absent: empty).
fn bytes_of(v: &Value, field: &str) -> Vec<u8> {
    v.get(field)
        .and_then(Value::as_str)
        .and_then(|s| B64.decode(s).ok())
        .unwrap_or_default()
}

/// An int64 field of a gateway reply (sent as a string; absent: 0).
fn int_of(v: &Value, field: &str) -> i64 {
    match v.get(field) {
        Some(Value::String(s)) => s.parse().unwrap_or(0),
        Some(Value::Number(n)) => n.as_i64().unwrap_or(0),
        _ => 0,
    }
}

impl Catalog {
    /// etcd at `endpoints` (`http://host:port`); the first that answers is used.
    pub async fn connect(endpoints: &[String]) -> Result<Catalog> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(2))
            .build()
            .map_err(|e| Error::Internal(format!("HTTP client: {e}")))?;
        let endpoints: Vec<String> = endpoints
            .iter()
            .map(|e| {
                let e = e.trim_end_matches('/');
                if e.contains("://") {
                    e.to_string()
                } else {
                    format!("http://{e}")
                }
            })
            .collect();
        if endpoints.is_empty() {
            return Err(Error::invalid(
                "--etcd is empty; give at least one endpoint",
            ));
        }
        let c = Catalog { http, endpoints };
        c.call("/v3/maintenance/status", json!({}), Some(REQUEST_TIMEOUT))
            .await?;
        Ok(c)
    }

    /// POSTs `body` to `path` of the first endpoint that answers.
    async fn call(&self, path: &str, body: Value, timeout: Option<Duration>) -> Result<Value> {
        let mut failures = Vec::new();
        for ep in &self.endpoints {
            let mut req = self.http.post(format!("{ep}{path}")).json(&body);
            if let Some(t) = timeout {
                req = req.timeout(t);
            }
            let resp = match req.send().await {
                Ok(r) => r,
                Err(e) => {
                    failures.push(format!("{ep}: {e}"));
                    continue;
                }
            };
            let status = resp.status();
            let v: Value = resp.json().await.map_err(|e| {
                Error::Unavailable(format!("etcd {ep}{path}: unreadable reply: {e}"))
            })?;
            if !status.is_success() || v.get("error").is_some() {
                let msg = v
                    .get("message")
                    .or(v.get("error"))
                    .cloned()
                    .unwrap_or(Value::Null);
                return Err(Error::Unavailable(format!("etcd {path}: {status}: {msg}")));
            }
            return Ok(v);
        }
        Err(Error::Unavailable(format!(
            "etcd {path}: {}",
            failures.join("; ")
        )))
    }

    /// Key-value pairs under `prefix`, or the one `key` when `prefix` is false.
    async fn range(&self, key: &str, prefix: bool) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let mut body = json!({ "key": b64(key.as_bytes()) });
        if prefix {
            body["range_end"] = json!(b64(&prefix_end(key)));
        }
        let v = self
            .call("/v3/kv/range", body, Some(REQUEST_TIMEOUT))
            .await?;
        let kvs = v
            .get("kvs")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        Ok(kvs
            .iter()
            .map(|kv| (bytes_of(kv, "key"), bytes_of(kv, "value")))
            .collect())
    }

    /// Puts `value` at `key` only if the key does not exist; whether it did.
    async fn create(&self, key: &str, value: &[u8]) -> Result<bool> {
        let body = json!({
            "compare": [{ "key": b64(key.as_bytes()), "result": "EQUAL", "target": "CREATE", "create_revision": "0" }],
            "success": [{ "request_put": { "key": b64(key.as_bytes()), "value": b64(value) } }],
        });
        let v = self.call("/v3/kv/txn", body, Some(REQUEST_TIMEOUT)).await?;
        Ok(v.get("succeeded").and_then(Value::as_bool).unwrap_or(false))
    }

    /// The cluster's shard count, set to `wanted` if no one set it yet.
    /// FAILED_PRECONDITION if it was set to something else: resharding is
    /// not supported, and a node with another count would take the wrong points.
    pub async fn init_shards(&self, wanted: u32) -> Result<u32> {
        self.create(SHARDS_KEY, wanted.to_string().as_bytes())
            .await?;
        let have = self.shards().await?.unwrap_or(wanted);
        if have != wanted {
            return Err(Error::FailedPrecondition(format!(
                "the cluster has {have} shards (etcd key {SHARDS_KEY}); this node was started with --shards {wanted}"
            )));
        }
        Ok(have)
    }

    /// The shard count, once the first node has set it.
    pub async fn shards(&self) -> Result<Option<u32>> {
        let Some((_, value)) = self.range(SHARDS_KEY, false).await?.into_iter().next() else {
            return Ok(None);
        };
        let text = String::from_utf8_lossy(&value).into_owned();
        text.trim().parse::<u32>().map(Some).map_err(|_| {
            Error::FailedPrecondition(format!(
                "etcd key {SHARDS_KEY} holds {text:?}, not a shard count"
            ))
        })
    }

    /// Records a new collection; ALREADY_EXISTS if the name is taken.
    pub async fn create_collection(&self, config: &Config) -> Result<()> {
        let key = format!("{COLLECTIONS}{}", config.name);
        let json = serde_json::to_vec(config).map_err(|e| Error::Internal(e.to_string()))?;
        if !self.create(&key, &json).await? {
            return Err(Error::AlreadyExists(config.name.clone()));
        }
        Ok(())
    }

    /// Every collection of the cluster, by name.
    pub async fn collections(&self) -> Result<BTreeMap<String, Config>> {
        let mut out = BTreeMap::new();
        for (key, value) in self.range(COLLECTIONS, true).await? {
            let config: Config = serde_json::from_slice(&value).map_err(|e| {
                let key = String::from_utf8_lossy(&key);
                Error::Internal(format!(
                    "etcd key {key} is not a collection configuration: {e}"
                ))
            })?;
            out.insert(config.name.clone(), config);
        }
        Ok(out)
    }

    /// A lease of [`LEASE_TTL_SECS`] renewed by a background task for as
    /// long as the process lives: what a node's liveness key and its
    /// leadership hang on. When the process dies, they lapse.
    pub async fn keep_lease(&self) -> Result<i64> {
        let v = self
            .call(
                "/v3/lease/grant",
                json!({ "TTL": LEASE_TTL_SECS }),
                Some(REQUEST_TIMEOUT),
            )
            .await?;
        let lease = int_of(&v, "ID");
        if lease == 0 {
            return Err(Error::Unavailable(format!("etcd granted no lease: {v}")));
        }
        let me = self.clone();
        tokio::spawn(async move {
            let every = Duration::from_millis(LEASE_TTL_SECS as u64 * 1000 / 3);
            loop {
                tokio::time::sleep(every).await;
                let body = json!({ "ID": lease.to_string() });
                match me
                    .call("/v3/lease/keepalive", body, Some(REQUEST_TIMEOUT))
                    .await
                {
                    Ok(v) if int_of(v.get("result").unwrap_or(&v), "TTL") > 0 => {}
                    Ok(v) => {
                        tracing::error!(reply = %v, "etcd lease lost; this node drops out of the cluster");
                        return;
                    }
                    Err(e) => tracing::warn!(error = %e, "etcd lease renewal failed; retrying"),
                }
            }
        });
        Ok(lease)
    }

    /// Announces `replica` as alive for as long as `lease` lives.
    pub async fn register(&self, replica: &Replica, lease: i64) -> Result<()> {
        let key = format!("{NODES}{}/{}", replica.shard, replica.node_id);
        let json = serde_json::to_vec(replica).map_err(|e| Error::Internal(e.to_string()))?;
        let body =
            json!({ "key": b64(key.as_bytes()), "value": b64(&json), "lease": lease.to_string() });
        self.call("/v3/kv/put", body, Some(REQUEST_TIMEOUT)).await?;
        Ok(())
    }

    /// The live index nodes, by shard, in node-id order.
    pub async fn replicas(&self) -> Result<BTreeMap<u32, Vec<Replica>>> {
        let mut out: BTreeMap<u32, Vec<Replica>> = BTreeMap::new();
        for (_, value) in self.range(NODES, true).await? {
            if let Ok(rep) = serde_json::from_slice::<Replica>(&value) {
                out.entry(rep.shard).or_default().push(rep);
            }
        }
        for list in out.values_mut() {
            list.sort_by(|a, b| a.node_id.cmp(&b.node_id));
        }
        Ok(out)
    }

    /// Waits until this node leads `shard` (etcd election under `lease`);
    /// returns the leader key that proves it.
    pub async fn campaign(&self, shard: u32, node_id: &str, lease: i64) -> Result<Vec<u8>> {
        let body = json!({
            "name": b64(election_name(shard).as_bytes()),
            "lease": lease.to_string(),
            "value": b64(node_id.as_bytes()),
        });
        let v = self.call("/v3/election/campaign", body, None).await?;
        let key = v
            .get("leader")
            .map(|l| bytes_of(l, "key"))
            .unwrap_or_default();
        if key.is_empty() {
            return Err(Error::Unavailable(format!(
                "etcd campaign answered without a leader key: {v}"
            )));
        }
        Ok(key)
    }

    /// Whether `leader_key` (from [`Catalog::campaign`]) still leads `shard`.
    pub async fn still_leads(&self, shard: u32, leader_key: &[u8]) -> Result<bool> {
        let body = json!({ "name": b64(election_name(shard).as_bytes()) });
        let v = self
            .call("/v3/election/leader", body, Some(REQUEST_TIMEOUT))
            .await?;
        Ok(v.get("kv")
            .is_some_and(|kv| bytes_of(kv, "key") == leader_key))
    }
}
