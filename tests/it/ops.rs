//! Running vidx as a service: the metrics/health listener, settings from a
//! config file, the environment and flags, JSON and slow-request logs, and
//! reads paged to fit the message limits. The Prometheus text itself is
//! parsed by a real parser in the Python client's suite
//! (`clients/python/tests/test_metrics.py`).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::process::{BIN, ServerProcess, run};
use crate::support::*;
use vidx::api::server::ServerOptions;
use vidx::pb;

/// `GET path` over HTTP/1.1; (status, body).
fn http_get(addr: &str, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).expect("connect to the metrics listener");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").expect("an HTTP response");
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("a status code");
    (status, body.to_string())
}

/// The value of the sample line `name{labels}` in Prometheus text (labels
/// as the exposition writes them: sorted, quoted), or 0 if absent.
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0.0)
}

fn points(n: usize, dim: usize, seed: u64) -> Vec<pb::Point> {
    clustered(n, dim, 8, 0.5, seed)
        .into_iter()
        .enumerate()
        .map(|(i, v)| point(&format!("p{i}"), v))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_health_and_readiness_over_http() {
    let dir = tempfile::tempdir().unwrap();
    let (mut p, url) = ServerProcess::start(dir.path(), &["--metrics-listen", "127.0.0.1:0"]);
    let m = p.metrics_addr().expect("the metrics address is logged");
    assert_eq!(http_get(&m, "/healthz"), (200, "ok\n".to_string()));
    let before = http_get(&m, "/metrics").1;
    // Labelled families appear with their first sample; these have none yet.
    assert!(
        before.contains("# TYPE vidx_requests_in_flight gauge"),
        "{before}"
    );
    assert!(before.contains("vidx_ready 1"), "{before}");

    let mut c = connect(&url).await;
    c.create_collection(create_req("c", 16, pb::Metric::Cosine))
        .await
        .unwrap();
    upsert_batches(&mut c, "c", points(300, 16, 1), 100)
        .await
        .unwrap();
    c.flush(pb::FlushRequest {
        collection: "c".into(),
    })
    .await
    .unwrap();
    for _ in 0..3 {
        let q = clustered(1, 16, 8, 0.5, 9).remove(0);
        c.search(search_req("c", vec![vector_query(q)], 5))
            .await
            .unwrap();
    }
    let bad = c
        .search(search_req("c", vec![vector_query(vec![1.0; 3])], 5))
        .await;
    assert_eq!(bad.unwrap_err().code(), tonic::Code::InvalidArgument);

    let after = http_get(&m, "/metrics").1;
    let ok_search = r#"vidx_requests_total{code="Ok",rpc="Search"}"#;
    assert_eq!(
        sample(&after, ok_search) - sample(&before, ok_search),
        3.0,
        "{after}"
    );
    let rejected = r#"vidx_requests_rejected_total{reason="InvalidArgument",rpc="Search"}"#;
    assert_eq!(sample(&after, rejected), 1.0, "{after}");
    let upsert_count = r#"vidx_request_duration_seconds_count{code="Ok",rpc="Upsert"}"#;
    assert_eq!(sample(&after, upsert_count), 1.0, "{after}");
    assert_eq!(
        sample(&after, r#"vidx_collection_points{collection="c"}"#),
        300.0
    );
    assert_eq!(
        sample(&after, r#"vidx_collection_segments{collection="c"}"#),
        2.0
    );
    assert_eq!(
        sample(
            &after,
            r#"vidx_seal_duration_seconds_count{collection="c"}"#
        ),
        1.0
    );
    assert!(sample(&after, r#"vidx_wal_written_bytes_total{collection="c"}"#) > 0.0);
    assert!(
        sample(
            &after,
            r#"vidx_wal_fsync_duration_seconds_count{collection="c"}"#
        ) >= 1.0
    );
    assert_eq!(sample(&after, "vidx_ready"), 1.0);
    let (code, body) = http_get(&m, "/readyz");
    assert_eq!((code, body.as_str()), (200, "ready\nc verified\n"));
    assert_eq!(http_get(&m, "/nope").0, 404);

    // Reopened with a sealed segment: ready once its checksums are read.
    p.kill();
    ready_after_reopening(dir.path());
}

/// A server reopened on `dir` (collection `c`, one sealed segment) says
/// `pending` until its checksum pass is done, then `ready`.
fn ready_after_reopening(dir: &Path) {
    let (p, _) = ServerProcess::start(dir, &["--metrics-listen", "127.0.0.1:0"]);
    let m = p.metrics_addr().unwrap();
    let started = Instant::now();
    loop {
        let (code, body) = http_get(&m, "/readyz");
        if code == 200 {
            assert_eq!(body, "ready\nc verified\n");
            break;
        }
        assert_eq!(code, 503, "{body}");
        assert!(body.contains("c pending"), "{body}");
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "never ready: {body}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let text = http_get(&m, "/metrics").1;
    let verified = r#"vidx_collection_verification{collection="c",state="verified"}"#;
    assert_eq!(sample(&text, verified), 1.0);
    assert_eq!(
        sample(&text, r#"vidx_collection_available{collection="c"}"#),
        1.0
    );
}

/// `vidx serve ARGS --print-config` with `env`, parsed back as TOML with
/// the source comment of each key.
fn print_config(args: &[&str], env: &[(&str, &str)]) -> Result<toml::Table, String> {
    let out = Command::new(BIN)
        .arg("serve")
        .args(args)
        .arg("--print-config")
        .env_remove("RUST_LOG")
        .envs(env.iter().copied())
        .output()
        .unwrap();
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let text = String::from_utf8(out.stdout).unwrap();
    let table: toml::Table = text.parse().map_err(|e| format!("{e}\n{text}"))?;
    // Each key's line ends in a comment naming its source.
    for key in table.keys() {
        assert!(
            text.lines()
                .any(|l| l.starts_with(&format!("{key} = ")) && l.contains("  # ")),
            "{key} without its source:\n{text}"
        );
    }
    Ok(table)
}

#[test]
fn config_file_then_environment_then_flags() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("vidx.toml");
    std::fs::write(
        &file,
        r#"
data-dir = "/srv/vidx"
listen = "127.0.0.1:6001"
metrics-listen = "127.0.0.1:9091"
sync = "interval=25"
seal-threshold = 5000
slow-ms = 7
log-format = "json"
"#,
    )
    .unwrap();
    let f = file.to_str().unwrap();
    let t = print_config(
        &[
            "--config",
            f,
            "--slow-ms",
            "3",
            "--listen",
            "127.0.0.1:6003",
        ],
        &[
            ("VIDX_SEAL_THRESHOLD", "9000"),
            ("VIDX_SLOW_MS", "8"),
            ("VIDX_LISTEN", "127.0.0.1:6002"),
        ],
    )
    .unwrap();
    let s = |k: &str| {
        t[k].as_str()
            .unwrap_or_else(|| panic!("{k}: {t:?}"))
            .to_string()
    };
    let n = |k: &str| t[k].as_integer().unwrap_or_else(|| panic!("{k}: {t:?}"));
    // Only the file sets it.
    assert_eq!(s("data-dir"), "/srv/vidx");
    assert_eq!(s("metrics-listen"), "127.0.0.1:9091");
    assert_eq!(s("sync"), "interval=25");
    assert_eq!(s("log-format"), "json");
    // The environment over the file.
    assert_eq!(n("seal-threshold"), 9000);
    // Flags over both.
    assert_eq!(n("slow-ms"), 3);
    assert_eq!(s("listen"), "127.0.0.1:6003");
    // Nobody sets it: the default.
    assert_eq!(n("max-message-bytes"), 64 << 20);
    assert_eq!(t["demo"].as_bool(), Some(false));

    // The example in deploy/ is a valid file.
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/vidx.toml");
    let t = print_config(&["--config", example], &[]).unwrap();
    assert_eq!(t["data-dir"].as_str(), Some("/var/lib/vidx"));
    assert_eq!(t["metrics-listen"].as_str(), Some("127.0.0.1:9090"));

    // The config file itself may come from the environment.
    let t = print_config(&[], &[("VIDX_CONFIG", f)]).unwrap();
    assert_eq!(t["seal-threshold"].as_integer(), Some(5000));

    // Unknown keys and bad values are refused, naming file and key.
    std::fs::write(&file, "seal-treshold = 5\n").unwrap();
    let e = print_config(&["--config", f], &[]).unwrap_err();
    assert!(
        e.contains("vidx.toml") && e.contains("unknown field `seal-treshold`"),
        "{e}"
    );
    std::fs::write(&file, "listen = \"nowhere\"\n").unwrap();
    let e = print_config(&["--config", f], &[]).unwrap_err();
    assert!(
        e.contains("vidx.toml") && e.contains("key listen = \"nowhere\""),
        "{e}"
    );
    let e = print_config(&["--config", "/no/such/vidx.toml"], &[]).unwrap_err();
    assert!(e.contains("/no/such/vidx.toml"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_config_file_configures_the_running_server() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("vidx.toml");
    std::fs::write(
        &file,
        "metrics-listen = \"127.0.0.1:0\"\nlog-format = \"json\"\nseal-threshold = 50\n",
    )
    .unwrap();
    let data = dir.path().join("data");
    let (p, url) = ServerProcess::start(&data, &["--config", file.to_str().unwrap()]);
    // The metrics listener the file asked for is up, and lines are JSON.
    let m = p.metrics_addr().expect("metrics-listen from the file");
    assert_eq!(http_get(&m, "/healthz").0, 200);
    let first = p.log().lines[0].clone();
    serde_json::from_str::<serde_json::Value>(&first).expect("a JSON log line");
    // seal-threshold = 50 (the default is far above 120): 120 points leave
    // a sealed segment behind. One or two: a seal that starts after the
    // second batch arrived takes all 120 at once.
    let mut c = connect(&url).await;
    c.create_collection(create_req("c", 8, pb::Metric::Cosine))
        .await
        .unwrap();
    upsert_batches(&mut c, "c", points(120, 8, 2), 60)
        .await
        .unwrap();
    let started = Instant::now();
    while p.log().seals < 1 {
        assert!(started.elapsed() < Duration::from_secs(30), "{}", p.tail());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Makes the same six requests against `url`: create, upsert, three
/// searches and a search of a collection that does not exist.
async fn six_requests(url: &str) {
    let mut c = connect(url).await;
    c.create_collection(create_req("c", 8, pb::Metric::Cosine))
        .await
        .unwrap();
    upsert_batches(&mut c, "c", points(50, 8, 3), 50)
        .await
        .unwrap();
    for i in 0..3 {
        c.search(search_req("c", vec![id_query(&format!("p{i}"))], 3))
            .await
            .unwrap();
    }
    let e = c
        .search(search_req("nope", vec![id_query("p1")], 3))
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::NotFound);
}

/// The JSON request lines of a finished server's log.
fn request_lines(p: &ServerProcess) -> Vec<serde_json::Value> {
    let log = p.log();
    let all: Vec<serde_json::Value> = log
        .lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert!(!all.is_empty());
    all.into_iter()
        .filter(|v| v["target"] == "vidx::request")
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_parse_and_log_each_request_once() {
    let dir = tempfile::tempdir().unwrap();
    let args = ["--log-format", "json", "--log", "info,vidx::request=debug"];
    let (mut p, url) = ServerProcess::start(dir.path(), &args);
    six_requests(&url).await;
    p.terminate();
    let lines = request_lines(&p);
    let rpcs: Vec<&str> = lines.iter().map(|v| v["rpc"].as_str().unwrap()).collect();
    assert_eq!(
        rpcs,
        [
            "CreateCollection",
            "Upsert",
            "Search",
            "Search",
            "Search",
            "Search"
        ],
        "one line per request"
    );
    for v in &lines {
        assert_eq!(v["level"], "DEBUG", "{v}");
        assert_eq!(v["message"], "request", "{v}");
        assert!(v["duration_ms"].as_f64().is_some_and(|d| d >= 0.0), "{v}");
        assert!(v["timestamp"].is_string(), "{v}");
    }
    let colls: Vec<&str> = lines
        .iter()
        .map(|v| v["collection"].as_str().unwrap())
        .collect();
    assert_eq!(colls, ["c", "c", "c", "c", "c", "nope"]);
    let codes: Vec<&str> = lines.iter().map(|v| v["code"].as_str().unwrap()).collect();
    assert_eq!(codes, ["Ok", "Ok", "Ok", "Ok", "Ok", "NotFound"]);

    // At the default level (info) and --slow-ms 0 every request is slow:
    // logged once, at info.
    let dir = tempfile::tempdir().unwrap();
    let args = ["--log-format", "json", "--slow-ms", "0"];
    let (mut p, url) = ServerProcess::start(dir.path(), &args);
    six_requests(&url).await;
    p.terminate();
    let lines = request_lines(&p);
    assert_eq!(lines.len(), 6);
    for v in &lines {
        assert_eq!(
            (v["level"].as_str(), v["message"].as_str()),
            (Some("INFO"), Some("slow request")),
            "{v}"
        );
        assert_eq!(v["slow_ms"], 0, "{v}");
    }
    // At info with the default threshold (1 s), these fast requests are
    // not logged.
    let dir = tempfile::tempdir().unwrap();
    let (mut p, url) = ServerProcess::start(dir.path(), &["--log-format", "json"]);
    six_requests(&url).await;
    p.terminate();
    assert!(request_lines(&p).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_reads_are_paged_to_fit_the_message_limit() {
    let server = TestServer::start_with(ServerOptions {
        max_message_bytes: 256 << 10,
        ..Default::default()
    })
    .await;
    let mut c = server.client().await;
    c.create_collection(create_req("c", 512, pb::Metric::Cosine))
        .await
        .unwrap();
    let pts = points(300, 512, 4);
    for chunk in pts.chunks(50) {
        upsert_batches(&mut c, "c", chunk.to_vec(), 50)
            .await
            .unwrap();
    }
    let ids: Vec<String> = pts.iter().map(|p| p.id.clone()).collect();
    let e = c
        .get(pb::GetRequest {
            collection: "c".into(),
            ids: ids.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::ResourceExhausted, "{e:?}");
    assert!(
        e.message().contains("--max-message-bytes") && e.message().contains("page"),
        "{e:?}"
    );

    let url = format!("http://{}", server.addr);
    let mut args = vec![
        "get",
        "--server",
        &url,
        "--collection",
        "c",
        "--page-size",
        "40",
        "--json",
    ];
    args.extend(ids.iter().map(String::as_str));
    let out = tokio::task::spawn_blocking({
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        move || run(&args)
    })
    .await
    .unwrap();
    let got: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(got.len(), 300);
    for (g, p) in got.iter().zip(&pts) {
        assert_eq!(g["id"], p.id.as_str());
        let v: Vec<f32> = serde_json::from_value(g["vector"].clone()).unwrap();
        assert_eq!(v.len(), 512);
        // Stored normalised (cosine); these are unit vectors already.
        let dot: f32 = v.iter().zip(&p.vector).map(|(a, b)| a * b).sum();
        assert!((dot - 1.0).abs() < 1e-5);
    }
}
