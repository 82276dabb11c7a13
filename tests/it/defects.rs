//! The defects a new user hit (issue 10, part 6), each tried the way the
//! user met it: two servers on one data directory, a `host:port` server
//! address, `--help` texts, country codes, collections of the wrong kind,
//! `exclude_same_upload` on a vector query, and source comments that cite
//! files the repository does not have.

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use tonic::Code;
use vidx::pb;

use crate::support::process::{BIN, ServerProcess, run};
use crate::support::{
    Client, TestServer, create_req, id_query, meta, point, search_req, upsert_batches, vector_query,
};

fn vidx(args: &[&str]) -> Output {
    Command::new(BIN).args(args).output().expect("run vidx")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

// ---- two servers on one data directory ----

/// The second `vidx serve` on a data directory refuses to start, naming the
/// first one's pid, before it opens (and replays) any collection; once the
/// first is gone (even by SIGKILL, leaving its lock file behind) the
/// directory can be served again.
#[test]
fn a_second_server_on_one_data_dir_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let (mut first, url) = ServerProcess::start(&dir, &["--demo"]);
    let pid = first.pid();

    let mut second = ServerProcess::spawn(&dir, &[] as &[&str]);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let outcome = rt.block_on(second.serving(Duration::from_secs(60)));
    second.kill();
    assert!(
        outcome.is_err(),
        "a second server started on {} while pid {pid} serves it",
        dir.display()
    );
    let log = second.tail();
    assert!(
        log.contains(&format!("pid {pid}")),
        "the refusal should name the holder's pid {pid}:\n{log}"
    );
    assert!(log.contains(&dir.display().to_string()), "{log}");
    assert!(
        !log.contains("collection opened"),
        "the refused server replayed a collection:\n{log}"
    );
    // The first still serves.
    assert!(run(&["collections", "--server", &url]).contains("images"));

    first.kill();
    let (_third, url) = ServerProcess::start(&dir, &[] as &[&str]);
    assert!(run(&["collections", "--server", &url]).contains("images"));
}

// ---- server addresses ----

/// `VIDX_SERVER=127.0.0.1:50051`, the form grpcurl takes, works like the URL.
#[test]
fn host_port_server_addresses_work() {
    let tmp = tempfile::tempdir().unwrap();
    let (_server, url) = ServerProcess::start(tmp.path(), &[] as &[&str]);
    let host_port = url.strip_prefix("http://").unwrap();
    let out = Command::new(BIN)
        .arg("collections")
        .env("VIDX_SERVER", host_port)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "VIDX_SERVER={host_port}: {}",
        stderr(&out)
    );
    let out = vidx(&[
        "search",
        "--server",
        host_port,
        "--collection",
        "nope",
        "--vector",
        "1,0",
    ]);
    // Connected: the server itself answers that the collection is unknown.
    assert!(stderr(&out).contains("NotFound"), "{}", stderr(&out));
}

/// A connection error says each thing once.
#[test]
fn connection_errors_do_not_repeat_themselves() {
    // A port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    for server in [
        format!("127.0.0.1:{port}"),
        format!("http://127.0.0.1:{port}"),
        "http://a b".to_string(),
        "ftp://127.0.0.1:1".to_string(),
    ] {
        let out = vidx(&["collections", "--server", &server]);
        assert!(!out.status.success(), "{server}");
        let err = stderr(&out);
        assert!(err.contains(&server), "{server}: {err}");
        let parts: Vec<&str> = err.trim().split(": ").collect();
        for (i, p) in parts.iter().enumerate() {
            assert!(
                !parts[i + 1..].contains(p),
                "{server}: {p:?} is said twice in {err:?}"
            );
        }
    }
}

// ---- --help ----

/// The subcommands listed under "Commands:" of a help text.
fn subcommands(help: &str) -> Vec<String> {
    help.lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .map(str::to_string)
        .collect()
}

/// Every flag and argument of every command has a help text and shows at
/// most one default.
#[test]
fn every_flag_has_help_and_one_default() {
    let mut commands: Vec<Vec<String>> = subcommands(&run(&["--help"]))
        .into_iter()
        .map(|c| vec![c])
        .collect();
    let mut problems = Vec::new();
    let mut checked = 0;
    while let Some(cmd) = commands.pop() {
        let mut args: Vec<&str> = cmd.iter().map(String::as_str).collect();
        args.push("--help");
        let help = run(&args);
        for sub in subcommands(&help) {
            let mut c = cmd.clone();
            c.push(sub);
            commands.push(c);
        }
        // Long help puts each flag on its own line and its text below it,
        // indented further.
        let lines: Vec<&str> = help.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            let t = line.trim_start();
            let indent = line.len() - t.len();
            let is_flag = (2..=6).contains(&indent)
                && (t.starts_with('-') || t.starts_with('<') || t.starts_with('['));
            if !is_flag {
                continue;
            }
            checked += 1;
            // Short help keeps the text on the flag's line, after two spaces;
            // long help puts it on the lines below, indented further.
            let (flag, inline) = t.split_once("  ").unwrap_or((t, ""));
            let below = lines[i + 1..].iter().take_while(|l| {
                let t = l.trim_start();
                t.is_empty() || l.len() - t.len() > 6
            });
            let text: Vec<&str> = std::iter::once(&inline)
                .chain(below)
                .map(|l| l.trim())
                .collect();
            let text = text.join(" ");
            let t = flag;
            let words = text.split('[').next().unwrap_or_default().trim();
            if words.is_empty() {
                problems.push(format!("vidx {}: {t} has no help text", cmd.join(" ")));
            }
            if text.matches("[default:").count() > 1 {
                problems.push(format!(
                    "vidx {}: {t} shows two defaults: {text}",
                    cmd.join(" ")
                ));
            }
        }
    }
    assert!(
        checked > 100,
        "only {checked} flags found: is the parse right?"
    );
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

// ---- country codes ----

/// Countries are ISO 3166-1 alpha-2 codes that exist: "UK" is refused with
/// a hint, in upserted metadata, in filters and in triaged items.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn countries_must_be_assigned_iso_codes() {
    let server = TestServer::start().await;
    let mut c = server.client().await;
    c.create_collection(create_req("images", 4, pb::Metric::Cosine))
        .await
        .unwrap();
    for (code, hint) in [("UK", Some("GB")), ("EL", Some("GR")), ("ZZ", None)] {
        let p = pb::Point {
            id: "p1".into(),
            vector: vec![1.0, 0.0, 0.0, 0.0],
            metadata: Some(meta(code, "up-1")),
            ..Default::default()
        };
        let e = upsert_batches(&mut c, "images", vec![p], 1)
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{code}: {}", e.message());
        let m = e.message();
        assert!(
            m.contains("metadata.country") && m.contains(&format!("{code:?}")),
            "{m}"
        );
        if let Some(h) = hint {
            assert!(m.contains(&format!("did you mean {h}?")), "{m}");
        }
    }
    upsert_batches(
        &mut c,
        "images",
        vec![point("p1", vec![1.0, 0.0, 0.0, 0.0])],
        1,
    )
    .await
    .unwrap();
    let mut req = search_req("images", vec![id_query("p1")], 1);
    req.filter = Some(pb::Filter {
        countries_none: vec!["DE".into(), "UK".into()],
        ..Default::default()
    });
    let e = c.search(req).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(
        e.message().contains("filter.countries_none[1]")
            && e.message().contains("did you mean GB?"),
        "{}",
        e.message()
    );

    let item = pb::TriageItem {
        id: "t1".into(),
        vector: vec![0.0, 1.0, 0.0, 0.0],
        faces: vec![],
        metadata: Some(meta("UK", "up-2")),
        ..Default::default()
    };
    let req = pb::TriageRequest {
        image_collection: "images".into(),
        items: vec![item],
        ..Default::default()
    };
    let e = first_error(c.triage(tokio_stream::iter(vec![req])).await).await;
    assert_eq!(e.code(), Code::InvalidArgument, "{}", e.message());
    assert!(
        e.message().contains("items[0].metadata.country") && e.message().contains("GB"),
        "{}",
        e.message()
    );
    server.stop().await;
}

/// The demo set's countries, and the seized set's, are all assigned codes.
#[test]
fn demo_data_countries_are_assigned_iso_codes() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("data-samples");
    let mut seen = std::collections::BTreeSet::new();
    for f in [
        "images.jsonl",
        "faces.jsonl",
        "seized/images.jsonl",
        "seized/faces.jsonl",
    ] {
        for line in std::fs::read_to_string(root.join(f)).unwrap().lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            let c = v["metadata"]["country"].as_str().unwrap_or_default();
            assert!(vidx::validate::is_country(c), "{f}: country {c:?}");
            seen.insert(c.to_string());
        }
    }
    assert!(seen.len() >= 10, "{seen:?}");
}

// ---- collections of the wrong kind ----

/// The error of a streaming call: refused at once, or as its first message.
async fn first_error<T: std::fmt::Debug>(
    r: Result<tonic::Response<tonic::Streaming<T>>, tonic::Status>,
) -> tonic::Status {
    let mut stream = match r {
        Err(s) => return s,
        Ok(s) => s.into_inner(),
    };
    loop {
        match stream.message().await {
            Err(s) => return s,
            Ok(Some(_)) => {}
            Ok(None) => panic!("the call ran to the end instead of failing"),
        }
    }
}

async fn image_and_face_collections(server: &TestServer) -> Client {
    let mut c = server.client().await;
    c.create_collection(create_req("images", 4, pb::Metric::Cosine))
        .await
        .unwrap();
    let mut f = create_req("faces", 4, pb::Metric::Cosine);
    f.kind = pb::Kind::Face as i32;
    c.create_collection(f).await.unwrap();
    for name in ["images", "faces"] {
        let pts = (0..4)
            .map(|i| {
                let mut v = vec![0.1; 4];
                v[i] = 1.0;
                point(&format!("{name}-{i}"), v)
            })
            .collect();
        upsert_batches(&mut c, name, pts, 4).await.unwrap();
    }
    c
}

fn assert_wrong_kind(s: &tonic::Status, field: &str, name: &str, kind: &str) {
    assert_eq!(s.code(), Code::FailedPrecondition, "{}", s.message());
    let m = s.message();
    assert!(
        m.contains(field) && m.contains(&format!("{name:?}")) && m.contains(kind),
        "{m}"
    );
}

/// A FACE collection as `image_collection`, or an IMAGE collection as
/// `face_collection`, is FAILED_PRECONDITION in LinkSeries, LinkUpload and
/// Triage, and no series state is stored for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn linking_and_triage_refuse_collections_of_the_wrong_kind() {
    let server = TestServer::start().await;
    let mut c = image_and_face_collections(&server).await;
    let link = |image: &str, face: &str| pb::LinkSeriesRequest {
        image_collection: image.into(),
        face_collection: face.into(),
        ..Default::default()
    };
    let e = first_error(c.link_series(link("faces", "")).await).await;
    assert_wrong_kind(&e, "image_collection", "faces", "FACE");
    assert!(
        !server.data_dir.join("series").join("faces.json").exists(),
        "a series state was stored for the FACE collection"
    );
    let mut other = create_req("more-images", 4, pb::Metric::Cosine);
    other.kind = pb::Kind::Image as i32;
    c.create_collection(other).await.unwrap();
    let e = first_error(c.link_series(link("images", "more-images")).await).await;
    assert_wrong_kind(&e, "face_collection", "more-images", "IMAGE");

    let e = c
        .link_upload(pb::LinkUploadRequest {
            image_collection: "faces".into(),
            face_collection: String::new(),
            upload_id: "up-1".into(),
        })
        .await
        .unwrap_err();
    assert_wrong_kind(&e, "image_collection", "faces", "FACE");

    let tri = |image: &str, face: &str| pb::TriageRequest {
        image_collection: image.into(),
        face_collection: face.into(),
        items: vec![pb::TriageItem {
            id: "t1".into(),
            vector: vec![1.0, 0.0, 0.0, 0.0],
            faces: vec![],
            metadata: None,
            ..Default::default()
        }],
        ..Default::default()
    };
    let e = first_error(c.triage(tokio_stream::iter(vec![tri("faces", "")])).await).await;
    assert_wrong_kind(&e, "image_collection", "faces", "FACE");
    let e = first_error(
        c.triage(tokio_stream::iter(vec![tri("images", "more-images")]))
            .await,
    )
    .await;
    assert_wrong_kind(&e, "face_collection", "more-images", "IMAGE");

    // The right kinds still link.
    let mut s = c
        .link_series(link("images", "faces"))
        .await
        .unwrap()
        .into_inner();
    while s.message().await.unwrap().is_some() {}
    server.stop().await;
}

/// `vidx ingest --kind image` into an existing FACE collection fails naming
/// the collection's kind; without `--kind` it ingests into what is there.
#[test]
fn ingest_refuses_a_collection_of_another_kind() {
    let tmp = tempfile::tempdir().unwrap();
    let (_server, url) = ServerProcess::start(&tmp.path().join("data"), &[] as &[&str]);
    let file = tmp.path().join("faces.jsonl");
    std::fs::write(
        &file,
        "{\"id\":\"m1#0\",\"vector\":[1,0,0],\"metadata\":{\"media_id\":\"m1\"}}\n",
    )
    .unwrap();
    let f = file.to_str().unwrap();
    let ingest = |extra: &[&str]| {
        let mut args = vec!["ingest", "--server", &url, "--collection", "faces"];
        args.extend_from_slice(extra);
        args.push(f);
        vidx(&args)
    };
    assert!(ingest(&["--kind", "face"]).status.success());
    let out = ingest(&["--kind", "image"]);
    assert!(
        !out.status.success(),
        "ingest --kind image into a FACE collection succeeded"
    );
    let err = stderr(&out);
    assert!(err.contains("faces") && err.contains("FACE"), "{err}");
    let out = ingest(&["--metric", "l2"]);
    assert!(
        !out.status.success(),
        "ingest --metric l2 into a COSINE collection succeeded"
    );
    assert!(stderr(&out).contains("COSINE"), "{}", stderr(&out));
    let out = ingest(&[]);
    assert!(out.status.success(), "{}", stderr(&out));
}

// ---- exclude_same_upload on a vector query ----

/// The exclusions take the upload and case of a stored query point; on a
/// vector query they are refused rather than ignored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exclusions_on_a_vector_query_are_refused() {
    let server = TestServer::start().await;
    let mut c = image_and_face_collections(&server).await;
    for field in ["exclude_same_upload", "exclude_same_case"] {
        let mut req = search_req(
            "images",
            vec![id_query("images-0"), vector_query(vec![1.0, 0.0, 0.0, 0.0])],
            2,
        );
        req.exclude_same_upload = field == "exclude_same_upload";
        req.exclude_same_case = field == "exclude_same_case";
        let e = c.search(req.clone()).await.unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{}", e.message());
        let m = e.message();
        assert!(
            m.contains(field) && m.contains("queries[1]") && m.contains("point_id"),
            "{m}"
        );
        // With point_id queries only, it applies.
        req.queries.truncate(1);
        assert!(c.search(req).await.is_ok());
    }
    // The command line says so in its own words.
    let url = format!("http://{}", server.addr);
    let out = tokio::task::spawn_blocking(move || {
        vidx(&[
            "search",
            "--server",
            &url,
            "--collection",
            "images",
            "--vector",
            "1,0,0,0",
            "--exclude-same-upload",
        ])
    })
    .await
    .unwrap();
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("--exclude-same-upload"),
        "{}",
        stderr(&out)
    );
    server.stop().await;
}

// ---- stale text ----

/// Every Markdown file a source comment cites exists in the repository.
#[test]
fn source_comments_cite_files_that_exist() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    for dir in ["src", "tests", "benches"] {
        rust_files(&root.join(dir), &mut files);
    }
    let mut missing = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        for word in text.split(|c: char| !(c.is_alphanumeric() || "_-./".contains(c))) {
            let word = word.trim_end_matches('.');
            if word.len() > 3 && word.ends_with(".md") && !root.join(word).exists() {
                missing.push(format!("{} cites {word}", f.display()));
            }
        }
    }
    assert!(missing.is_empty(), "{}", missing.join("\n"));
}

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}
