//! The process's Prometheus instruments: what every layer records (requests,
//! WAL fsyncs, seals and merges, linking and triage runs, snapshots) and the
//! per-collection gauges read at scrape time, rendered in the text
//! exposition format by the `prometheus` crate.
//!
//! A root module like [`crate::error`]: any layer may record into it, and it
//! imports nothing of the crate. Every name starts with `vidx_`; the README's
//! "Metrics" section lists them and `deploy/grafana/vidx.json` charts them.

use std::sync::LazyLock;
use std::time::Duration;

use prometheus::core::Collector;
use prometheus::proto::MetricFamily;
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    TextEncoder, exponential_buckets,
};

/// The instruments, registered once per process, in three groups.
pub struct Metrics {
    registry: Registry,
    pub requests: RequestMetrics,
    pub storage: StorageMetrics,
    pub link: LinkMetrics,
}

/// Every gRPC call (recorded by `api::observe`).
pub struct RequestMetrics {
    pub total: IntCounterVec,
    pub seconds: HistogramVec,
    pub in_flight: IntGauge,
    pub rejected: IntCounterVec,
}

/// Write-ahead logs, seals, merges, snapshots.
pub struct StorageMetrics {
    pub wal_written_bytes: IntCounterVec,
    pub wal_fsync_seconds: HistogramVec,
    pub seal_seconds: HistogramVec,
    pub merge_seconds: HistogramVec,
    pub maintenance_failures: IntCounterVec,
    pub snapshots: IntCounterVec,
    pub snapshot_seconds: HistogramVec,
}

/// Linking and triage runs.
pub struct LinkMetrics {
    pub runs: IntCounterVec,
    pub run_seconds: HistogramVec,
    pub run_media: IntCounterVec,
    pub run_series: IntGaugeVec,
    pub last_success: IntGaugeVec,
    pub upload_media: IntCounterVec,
    pub triage_items: IntCounterVec,
}

/// Request latencies: 100 µs to ~100 s.
fn request_buckets() -> Vec<f64> {
    exponential_buckets(0.0001, 2.5, 16).expect("valid buckets")
}

/// fsync latencies: 50 µs to ~3 s.
fn fsync_buckets() -> Vec<f64> {
    exponential_buckets(0.00005, 2.0, 17).expect("valid buckets")
}

/// Seals, merges, link runs, snapshots: 10 ms to ~3 h.
fn job_buckets() -> Vec<f64> {
    exponential_buckets(0.01, 3.0, 14).expect("valid buckets")
}

fn counter(r: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let c = IntCounterVec::new(Opts::new(name, help), labels).expect("valid counter");
    r.register(Box::new(c.clone())).expect("unique name");
    c
}

fn histogram(
    r: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
    buckets: Vec<f64>,
) -> HistogramVec {
    let h = HistogramVec::new(HistogramOpts::new(name, help).buckets(buckets), labels)
        .expect("valid histogram");
    r.register(Box::new(h.clone())).expect("unique name");
    h
}

fn gauge(r: &Registry, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    let g = IntGaugeVec::new(Opts::new(name, help), labels).expect("valid gauge");
    r.register(Box::new(g.clone())).expect("unique name");
    g
}

impl RequestMetrics {
    fn new(r: &Registry) -> RequestMetrics {
        let in_flight = IntGauge::new("vidx_requests_in_flight", "gRPC requests being served now")
            .expect("valid gauge");
        r.register(Box::new(in_flight.clone()))
            .expect("unique name");
        let (rpc_code, rpc_reason) = (&["rpc", "code"], &["rpc", "reason"]);
        RequestMetrics {
            total: counter(
                r,
                "vidx_requests_total",
                "gRPC requests served, by RPC and status code",
                rpc_code,
            ),
            seconds: histogram(
                r,
                "vidx_request_duration_seconds",
                "gRPC request duration until the last response byte, by RPC and status code",
                rpc_code,
                request_buckets(),
            ),
            in_flight,
            rejected: counter(
                r,
                "vidx_requests_rejected_total",
                "gRPC requests refused because of the request (bad input, unknown collection, over a limit, precondition), by RPC and reason (the status code)",
                rpc_reason,
            ),
        }
    }
}

impl StorageMetrics {
    fn new(r: &Registry) -> StorageMetrics {
        let c = &["collection"];
        StorageMetrics {
            wal_written_bytes: counter(
                r,
                "vidx_wal_written_bytes_total",
                "Bytes appended to write-ahead logs, by collection",
                c,
            ),
            wal_fsync_seconds: histogram(
                r,
                "vidx_wal_fsync_duration_seconds",
                "Duration of write-ahead log fsyncs, by collection",
                c,
                fsync_buckets(),
            ),
            seal_seconds: histogram(
                r,
                "vidx_seal_duration_seconds",
                "Seals of a mutable segment into memory-mapped files (count and duration), by collection",
                c,
                job_buckets(),
            ),
            merge_seconds: histogram(
                r,
                "vidx_merge_duration_seconds",
                "Merges of sealed segments (count and duration), by collection",
                c,
                job_buckets(),
            ),
            maintenance_failures: counter(
                r,
                "vidx_maintenance_failures_total",
                "Background seals and merges that failed (retried later), by collection and task",
                &["collection", "task"],
            ),
            snapshots: counter(
                r,
                "vidx_snapshots_total",
                "Snapshots taken, by collection and outcome",
                &["collection", "outcome"],
            ),
            snapshot_seconds: histogram(
                r,
                "vidx_snapshot_duration_seconds",
                "Time to take a snapshot (the cut, copies and checksums; not the transfer), by collection",
                c,
                job_buckets(),
            ),
        }
    }
}

impl LinkMetrics {
    fn new(r: &Registry) -> LinkMetrics {
        let (run, run_outcome) = (&["run", "collection"], &["run", "collection", "outcome"]);
        LinkMetrics {
            runs: counter(
                r,
                "vidx_link_runs_total",
                "Linking and triage runs, by run (link_series, link_upload, triage), image collection and outcome (ok, error)",
                run_outcome,
            ),
            run_seconds: histogram(
                r,
                "vidx_link_run_duration_seconds",
                "Duration of linking and triage runs, by run, image collection and outcome",
                run_outcome,
                job_buckets(),
            ),
            run_media: counter(
                r,
                "vidx_link_run_media_total",
                "Media handled by successful linking and triage runs, by run and image collection",
                run,
            ),
            run_series: gauge(
                r,
                "vidx_link_run_series",
                "Series in the result of the last successful run (link_series: all series; link_upload: series touched; triage: candidate groups of new items)",
                run,
            ),
            last_success: gauge(
                r,
                "vidx_link_last_success_timestamp_seconds",
                "Unix time the last successful run of this kind ended",
                run,
            ),
            upload_media: counter(
                r,
                "vidx_link_upload_media_total",
                "Media of uploads linked by LinkUpload, by outcome (joined, new_series, unlinked)",
                &["collection", "outcome"],
            ),
            triage_items: counter(
                r,
                "vidx_triage_items_total",
                "Triaged items, by verdict (known, new)",
                &["collection", "verdict"],
            ),
        }
    }
}

impl Metrics {
    fn new() -> Metrics {
        let r = Registry::new();
        let build_info = gauge(
            &r,
            "vidx_build_info",
            "Always 1; the version of vidx serving",
            &["version"],
        );
        build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION")])
            .set(1);
        Metrics {
            requests: RequestMetrics::new(&r),
            storage: StorageMetrics::new(&r),
            link: LinkMetrics::new(&r),
            registry: r,
        }
    }
}

static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

/// The process's instruments.
pub fn get() -> &'static Metrics {
    &METRICS
}

/// Records a WAL fsync of `collection` that took `elapsed`.
pub fn fsync(collection: &str, elapsed: Duration) {
    get()
        .storage
        .wal_fsync_seconds
        .with_label_values(&[collection])
        .observe(elapsed.as_secs_f64());
}

/// What one linking or triage run did, for [`link_run`].
pub struct RunReport<'a> {
    /// `link_series`, `link_upload` or `triage`.
    pub run: &'a str,
    pub collection: &'a str,
    pub elapsed: Duration,
    /// `None` if the run failed.
    pub result: Option<RunCounts>,
}

pub struct RunCounts {
    pub media: u64,
    pub series: u64,
}

/// Records a linking or triage run.
pub fn link_run(r: RunReport<'_>) {
    let m = &get().link;
    let outcome = if r.result.is_some() { "ok" } else { "error" };
    m.runs
        .with_label_values(&[r.run, r.collection, outcome])
        .inc();
    m.run_seconds
        .with_label_values(&[r.run, r.collection, outcome])
        .observe(r.elapsed.as_secs_f64());
    if let Some(c) = r.result {
        let labels = [r.run, r.collection];
        m.run_media.with_label_values(&labels).inc_by(c.media);
        m.run_series.with_label_values(&labels).set(c.series as i64);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        m.last_success.with_label_values(&labels).set(now);
    }
}

/// Forgets the labelled series of a dropped collection, so that a scrape
/// no longer shows it.
pub fn forget_collection(name: &str) {
    let m = &get().storage;
    let _ = m.wal_written_bytes.remove_label_values(&[name]);
    let _ = m.wal_fsync_seconds.remove_label_values(&[name]);
    let _ = m.seal_seconds.remove_label_values(&[name]);
    let _ = m.merge_seconds.remove_label_values(&[name]);
}

/// One collection's state at scrape time.
pub struct CollectionRow {
    pub name: String,
    pub points: u64,
    pub segments: u64,
    pub memory_bytes: u64,
    pub disk_bytes: u64,
    pub wal_bytes: u64,
    /// `pending`, `verified` or `failed` (see [`VERIFICATION_STATES`]).
    pub verification: &'static str,
    /// Open and serving (false: refused at open, or found corrupt since).
    pub available: bool,
}

/// The states of a collection's checksum pass over its sealed files.
pub const VERIFICATION_STATES: [&str; 3] = ["pending", "verified", "failed"];

/// Per-collection gauges for `rows`, and whether the server is ready.
fn collection_families(rows: &[CollectionRow], ready: bool) -> Vec<MetricFamily> {
    let r = Registry::new();
    let points = gauge(
        &r,
        "vidx_collection_points",
        "Live points, by collection",
        &["collection"],
    );
    let segments = gauge(
        &r,
        "vidx_collection_segments",
        "Segments (sealed, frozen and mutable), by collection",
        &["collection"],
    );
    let memory = gauge(
        &r,
        "vidx_collection_memory_bytes",
        "Approximate heap bytes held, by collection",
        &["collection"],
    );
    let disk = gauge(
        &r,
        "vidx_collection_disk_bytes",
        "Bytes of the collection's files on disk, by collection",
        &["collection"],
    );
    let wal = gauge(
        &r,
        "vidx_collection_wal_bytes",
        "Bytes of write-ahead log not yet covered by a sealed segment, by collection",
        &["collection"],
    );
    let verification = gauge(
        &r,
        "vidx_collection_verification",
        "Checksum pass over the sealed files: 1 for the collection's current state (pending, verified, failed)",
        &["collection", "state"],
    );
    let available = gauge(
        &r,
        "vidx_collection_available",
        "1 if the collection is open and serving, 0 if it is refused (a corrupt or unreadable file)",
        &["collection"],
    );
    let ready_g = IntGauge::new(
        "vidx_ready",
        "1 once the data directory is open and every collection has finished its checksum pass",
    )
    .expect("valid gauge");
    ready_g.set(ready as i64);
    for row in rows {
        let l = [row.name.as_str()];
        points.with_label_values(&l).set(row.points as i64);
        segments.with_label_values(&l).set(row.segments as i64);
        memory.with_label_values(&l).set(row.memory_bytes as i64);
        disk.with_label_values(&l).set(row.disk_bytes as i64);
        wal.with_label_values(&l).set(row.wal_bytes as i64);
        available.with_label_values(&l).set(row.available as i64);
        for state in VERIFICATION_STATES {
            verification
                .with_label_values(&[row.name.as_str(), state])
                .set((state == row.verification) as i64);
        }
    }
    let mut out = r.gather();
    out.extend(ready_g.collect());
    out
}

/// The text exposition of every instrument plus the collection gauges.
pub fn render(rows: &[CollectionRow], ready: bool) -> String {
    let mut families = get().registry.gather();
    families.extend(collection_families(rows, ready));
    families.sort_by(|a, b| a.name().cmp(b.name()));
    let mut out = Vec::new();
    // Encoding into a Vec fails only on a malformed family, which the
    // registry has already refused.
    let _ = TextEncoder::new().encode(&families, &mut out);
    String::from_utf8(out).unwrap_or_default()
}

/// The content type of [`render`]'s output.
pub fn content_type() -> &'static str {
    prometheus::TEXT_FORMAT
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_holds_request_and_collection_families() {
        get()
            .requests
            .total
            .with_label_values(&["Search", "Ok"])
            .inc();
        get()
            .requests
            .seconds
            .with_label_values(&["Search", "Ok"])
            .observe(0.002);
        let rows = [CollectionRow {
            name: "images".into(),
            points: 12,
            segments: 2,
            memory_bytes: 1,
            disk_bytes: 2,
            wal_bytes: 3,
            verification: "verified",
            available: true,
        }];
        let text = render(&rows, true);
        assert!(
            text.contains("vidx_requests_total{code=\"Ok\",rpc=\"Search\"}"),
            "{text}"
        );
        assert!(
            text.contains("vidx_collection_points{collection=\"images\"} 12"),
            "{text}"
        );
        assert!(
            text.contains(
                "vidx_collection_verification{collection=\"images\",state=\"verified\"} 1"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "vidx_collection_verification{collection=\"images\",state=\"pending\"} 0"
            ),
            "{text}"
        );
        assert!(text.contains("vidx_ready 1"), "{text}");
        assert!(
            text.contains("# TYPE vidx_request_duration_seconds histogram"),
            "{text}"
        );
    }
}
