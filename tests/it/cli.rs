//! End-to-end through the real `vidx` binary: `gen`, `serve --demo`,
//! `collections`, `ingest` (npy + jsonl, and jsonl with vectors), `search`,
//! `link`, `link-upload`, `triage` on the demo set, `bench` smoke runs.

use std::process::Command;

use crate::support::process::{BIN, ServerProcess, run};

#[test]
fn gen_serve_ingest_search() {
    let tmp = tempfile::tempdir().unwrap();
    let gen_dir = tmp.path().join("gen");
    let g = gen_dir.to_str().unwrap();
    let summary = run(&[
        "gen", "--out", g, "--dim", "32", "--series", "6", "--noise", "30", "--seed", "7",
    ]);
    assert!(!summary.is_empty());
    for f in [
        "images.npy",
        "images.jsonl",
        "faces.npy",
        "faces.jsonl",
        "truth.json",
    ] {
        assert!(gen_dir.join(f).exists(), "{f} missing");
    }

    let (_server, url) = ServerProcess::start(&tmp.path().join("data"), &["--demo"]);
    let url = url.as_str();

    // The demo collections are there.
    let list = run(&["collections", "--server", url]);
    assert!(list.contains("images") && list.contains("faces"), "{list}");
    assert!(list.contains("1690"), "{list}");
    // Sizes read in binary units, not as bare byte counts.
    let images_row = list.lines().find(|l| l.starts_with("images")).unwrap();
    assert!(images_row.contains(" MiB"), "{list}");

    // npy + jsonl ingest creates the collection with the file's dimension.
    let out = run(&[
        "ingest",
        "--server",
        url,
        "--collection",
        "small",
        "--batch",
        "50",
        &format!("{g}/images.npy"),
    ]);
    let n_lines = std::fs::read_to_string(gen_dir.join("images.jsonl"))
        .unwrap()
        .lines()
        .count();
    assert!(
        out.contains(&format!("upserted {n_lines} points into small")),
        "{out}"
    );

    // JSON lines with vectors.
    let jl = tmp.path().join("two.jsonl");
    std::fs::write(
        &jl,
        "{\"id\":\"x1\",\"vector\":[1,0,0],\"metadata\":{\"country\":\"NL\"}}\n{\"id\":\"x2\",\"vector\":[0.9,0.1,0]}\n",
    )
    .unwrap();
    let out = run(&[
        "ingest",
        "--server",
        url,
        "--collection",
        "tiny",
        "--metric",
        "l2",
        jl.to_str().unwrap(),
    ]);
    assert!(out.contains("upserted 2 points into tiny"), "{out}");

    // "More like this" from the shell, as JSON.
    let first: serde_json::Value = serde_json::from_str(
        std::fs::read_to_string(gen_dir.join("images.jsonl"))
            .unwrap()
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap();
    let id = first["id"].as_str().unwrap();
    let out = run(&[
        "search",
        "--server",
        url,
        "--collection",
        "small",
        "--id",
        id,
        "-k",
        "5",
        "--json",
    ]);
    let hits: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
    assert_eq!(hits.len(), 5);
    assert!(hits.iter().all(|h| h["id"] != id));
    let d: Vec<f64> = hits
        .iter()
        .map(|h| h["distance"].as_f64().unwrap())
        .collect();
    assert!(d.windows(2).all(|w| w[0] <= w[1]), "{d:?}");

    // By vector, as a table.
    let out = run(&[
        "search",
        "--server",
        url,
        "--collection",
        "tiny",
        "--vector",
        "1,0,0",
        "-k",
        "2",
    ]);
    let rows: Vec<&str> = out.lines().skip(1).collect();
    assert!(rows[0].contains("x1") && rows[0].contains("NL"), "{out}");
    assert!(rows[1].contains("x2"), "{out}");

    // Filters from the shell: every hit is from the allowed countries, after the date.
    let out = run(&[
        "search",
        "--server",
        url,
        "--collection",
        "small",
        "--id",
        id,
        "-k",
        "5",
        "--json",
        "--country",
        "DE,FR,NL",
        "--not-country",
        "FR",
        "--captured-after",
        "2014-01-01",
        "--exclude-same-upload",
    ]);
    let filtered: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
    let own_upload = first["metadata"]["upload_id"].as_str().unwrap();
    for h in &filtered {
        let m = &h["metadata"];
        assert!(
            ["DE", "NL"].contains(&m["country"].as_str().unwrap()),
            "{h}"
        );
        assert!(m["captured_at"].as_i64().unwrap() >= 1_388_534_400, "{h}");
        assert_ne!(m["upload_id"].as_str().unwrap(), own_upload, "{h}");
    }
    let bad = Command::new(BIN)
        .args([
            "search",
            "--server",
            url,
            "--collection",
            "small",
            "--id",
            id,
            "--country",
            "Germany",
        ])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("filter.countries_any[0]"));

    // Seal from the shell; the points still answer.
    let out = run(&["flush", "--server", url, "--collection", "small"]);
    assert!(
        out.contains(&format!(
            "sealed {n_lines} points of small; it now has 2 segments"
        )),
        "{out}"
    );
    let out = run(&[
        "search",
        "--server",
        url,
        "--collection",
        "small",
        "--id",
        id,
        "-k",
        "5",
        "--json",
    ]);
    let again: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
    assert_eq!(again.len(), hits.len());
    for (a, b) in again.iter().zip(&hits) {
        assert_eq!(a["id"], b["id"], "same neighbours from the sealed segment");
    }

    // A bad query fails with the server's message and a non-zero exit.
    let bad = Command::new(BIN)
        .args([
            "search",
            "--server",
            url,
            "--collection",
            "tiny",
            "--vector",
            "1,0",
            "-k",
            "2",
        ])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("InvalidArgument"));
}

/// The benchmark harness at a tiny size, so it cannot rot unnoticed.
/// The README's linking walk-through on the demo set: link, triage the
/// held-back seized set, store it, link one of its uploads incrementally.
#[test]
fn demo_link_triage_link_upload() {
    let tmp = tempfile::tempdir().unwrap();
    let (_server, url) = ServerProcess::start(&tmp.path().join("data"), &["--demo"]);
    let url = url.as_str();
    let series = tmp.path().join("series.jsonl");
    let summary = tmp.path().join("summary.json");
    let out = run(&[
        "link",
        "--server",
        url,
        "--out",
        series.to_str().unwrap(),
        "--summary",
        summary.to_str().unwrap(),
    ]);
    assert!(out.contains("1690 media"), "{out}");
    assert!(out.contains("stored on the server"), "{out}");
    assert!(!out.contains('…'), "ids are printed whole:\n{out}");
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&series)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let sum: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&summary).unwrap()).unwrap();
    assert_eq!(lines.len() as u64, sum["series"].as_u64().unwrap());
    // Every planted series of the demo's main part is there, and the
    // evidence of each is a spanning forest of its media.
    let truth: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/data-samples/truth.json"
        ))
        .unwrap(),
    )
    .unwrap();
    assert!(lines.len() >= truth["series"].as_array().unwrap().len() - 2);
    // The terminal table lists whole series ids, ready to copy.
    let table_ids: Vec<&str> = out
        .lines()
        .skip_while(|l| !l.starts_with("series "))
        .skip(1)
        .take_while(|l| !l.is_empty())
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    assert_eq!(table_ids.len(), 10, "{out}");
    for id in table_ids {
        assert!(lines.iter().any(|l| l["series_id"] == id), "{id}: {out}");
    }
    for l in &lines {
        let media = l["media"].as_u64().unwrap();
        assert_eq!(l["evidence"].as_array().unwrap().len() as u64, media - 1);
        assert!(l["series_id"].as_str().unwrap().starts_with("ser-"));
    }

    let seized = concat!(env!("CARGO_MANIFEST_DIR"), "/data-samples/seized");
    let verdicts = tmp.path().join("triage.jsonl");
    let out = run(&[
        "triage",
        "--server",
        url,
        "--face-file",
        &format!("{seized}/faces.npy"),
        "--out",
        verdicts.to_str().unwrap(),
        "--store",
        &format!("{seized}/images.npy"),
    ]);
    assert!(out.contains("453 items"), "{out}");
    assert!(out.contains("453 stored"), "{out}");
    let v: Vec<serde_json::Value> = std::fs::read_to_string(&verdicts)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(v.len(), 453);
    // Most urgent first: the queue's order, and each line's rank says so.
    let rank = |p: &str| match p {
        "NEW_OF_KNOWN_VICTIM" => 1,
        "NEW_WITH_FACES" => 2,
        "NEW_MATERIAL" => 3,
        "KNOWN_UNIDENTIFIED" => 4,
        "KNOWN_IDENTIFIED" => 5,
        other => panic!("priority {other}"),
    };
    for x in &v {
        assert_eq!(x["rank"], rank(x["priority"].as_str().unwrap()), "{x}");
    }
    assert!(
        v.windows(2)
            .all(|w| w[0]["rank"].as_u64().unwrap() <= w[1]["rank"].as_u64().unwrap())
    );
    assert!(v.iter().any(|x| x["verdict"] == "KNOWN"));
    assert!(!out.contains('…'), "ids are printed whole:\n{out}");
    let rows: Vec<&str> = out
        .lines()
        .skip_while(|l| !l.starts_with("id "))
        .skip(1)
        .take_while(|l| !l.is_empty())
        .collect();
    assert_eq!(rows.len(), 20, "{out}");
    for (row, verdict) in rows.iter().zip(&v) {
        assert_eq!(
            row.split_whitespace().next(),
            verdict["id"].as_str(),
            "{out}"
        );
    }
    assert!(v.iter().any(|x| x["verdict"] == "NEW"));

    let upload = truth["seized_uploads"][0].as_str().unwrap();
    let out = run(&["link-upload", "--server", url, "--upload", upload]);
    assert!(out.contains(&format!("upload {upload}:")), "{out}");
    assert!(out.contains("joined existing series"), "{out}");
    assert!(!out.contains('…'), "ids are printed whole:\n{out}");
}

#[test]
fn bench_ann_smoke() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let data = tmp.path().join("data");
    let table = run(&[
        "bench",
        "ann",
        "--n",
        "600",
        "--queries",
        "20",
        "--dim",
        "16",
        "--efs",
        "10,64",
        "--clients",
        "2",
        "--batch",
        "5",
        "--out",
        out.to_str().unwrap(),
        "--export",
        data.to_str().unwrap(),
    ]);
    assert!(table.contains("| vidx-sealed | 64 |"), "{table}");
    for f in ["base.npy", "query.npy", "gt.npy", "meta.json"] {
        assert!(data.join(f).exists(), "{f}");
    }
    for engine in ["vidx-mutable", "vidx-sealed", "vidx-grpc"] {
        let r: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(out.join(format!("{engine}.json"))).unwrap(),
        )
        .unwrap();
        assert_eq!(r["engine"], engine);
        assert_eq!(r["dataset"]["n"], 600);
        let points = r["points"].as_array().unwrap();
        assert_eq!(points.len(), 2);
        let at64 = points[1]["recall"].as_f64().unwrap();
        assert!(
            at64 >= 0.95,
            "{engine}: recall {at64} at ef 64 on 600 points"
        );
        for key in ["qps_1t", "qps_all", "p50_ms", "p99_ms"] {
            assert!(points[1][key].as_f64().unwrap() > 0.0, "{engine}.{key}");
        }
        assert!(r["build"]["inserts_per_s"].as_f64().unwrap() > 0.0);
        assert!(r["memory"]["peak_rss_bytes"].as_u64().unwrap() > 0);
    }
    // SIFT-like data under L2 through the same path.
    let table = run(&[
        "bench",
        "ann",
        "--dataset",
        "sift",
        "--n",
        "400",
        "--queries",
        "10",
        "--efs",
        "32",
        "--modes",
        "sealed",
    ]);
    assert!(table.contains("| vidx-sealed | 32 |"), "{table}");
}

/// `bench link` at a tiny size: the quality sweep, triage and the JSON
/// report, so the harness cannot rot unnoticed.
#[test]
fn bench_link_smoke() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("link.json");
    let data_dir = tmp.path().join("work");
    let args = [
        "bench",
        "link",
        "--sweep",
        "--series",
        "10",
        "--dim",
        "32",
        "--thresholds",
        "0.30,0.40",
        "--data-dir",
        data_dir.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];
    let table = run(&args);
    assert!(
        table.contains("| B3 P | B3 R | B3 F1 | pair P | pair R | pair F1 |"),
        "{table}"
    );
    assert!(
        table.contains("| triangle>=1 (default) | 0.36 | yes |"),
        "{table}"
    );
    assert!(table.contains("| KNOWN |"), "{table}");
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    // 3 rules x 3 thresholds (the default added) + the default without faces.
    let rows = r["quality"].as_array().unwrap();
    assert_eq!(rows.len(), 10);
    for row in rows {
        for key in [
            "b3_precision",
            "b3_recall",
            "b3_f1",
            "pair_precision",
            "pair_recall",
        ] {
            let v = row[key].as_f64().unwrap();
            assert!((0.0..=1.0).contains(&v), "{key} {v}");
        }
        assert_eq!(row["unknown_media"], 0);
    }
    assert!(r["triage"]["seized_items"].as_u64().unwrap() > 0);
    // A second run reuses the set and the collections.
    let again = run(&args);
    assert!(again.contains("ingest: reused from --data-dir"), "{again}");
}

/// The real set (EfficientNet-Lite0 images, dlib faces of scikit-image's
/// sample pictures and their augmented copies, `data-samples/real`):
/// `vidx calibrate` picks thresholds from its labelled half and draws the
/// histograms; a default `vidx link`, which calibrates the same way, puts
/// every copy with its source picture and no two sources together.
#[test]
fn calibrate_on_the_real_set_links_every_copy_with_its_source() {
    let real = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data-samples/real");
    let tmp = tempfile::tempdir().unwrap();
    let (_server, url) = ServerProcess::start(&tmp.path().join("data"), &[] as &[&str]);
    let url = url.as_str();
    let images = real.join("images.npy");
    let faces = real.join("faces.npy");
    run(&[
        "ingest",
        "--server",
        url,
        "--collection",
        "images",
        images.to_str().unwrap(),
    ]);
    run(&[
        "ingest",
        "--server",
        url,
        "--collection",
        "faces",
        "--kind",
        "face",
        faces.to_str().unwrap(),
    ]);
    let png = tmp.path().join("calibration.png");
    let out = run(&["calibrate", "--server", url, "--png", png.to_str().unwrap()]);
    assert!(out.contains("calibrated on 12 labelled series"), "{out}");
    let image_line = out
        .lines()
        .find(|l| l.starts_with("image threshold"))
        .expect(&out);
    let t: f32 = image_line
        .split_whitespace()
        .nth(2)
        .unwrap()
        .trim_end_matches(':')
        .parse()
        .unwrap();
    // Between the farthest copy's link and the nearest other picture
    // (truth.json's checks: cosine 0.666 and 0.5835).
    assert!(t > 0.334 && t < 0.4165, "{out}");
    assert!(out.contains("face  threshold"), "{out}");
    let bytes = std::fs::read(&png).unwrap();
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
    assert!(bytes.len() > 1000);

    let series = tmp.path().join("series.jsonl");
    let out = run(&[
        "link",
        "--server",
        url,
        "--out",
        series.to_str().unwrap(),
        "--summary",
        tmp.path().join("summary.json").to_str().unwrap(),
        "--persons",
        tmp.path().join("persons.jsonl").to_str().unwrap(),
    ]);
    assert!(out.contains("calibrated"), "{out}");
    let truth: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(real.join("truth.json")).unwrap()).unwrap();
    let source: std::collections::HashMap<String, String> = truth["media"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["media_id"].as_str().unwrap().to_string(),
                m["source"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let mut series_of_source: std::collections::HashMap<String, Vec<String>> = Default::default();
    let text = std::fs::read_to_string(&series).unwrap();
    for line in text.lines() {
        let s: serde_json::Value = serde_json::from_str(line).unwrap();
        let id = s["series_id"].as_str().unwrap().to_string();
        let mut sources: Vec<&str> = s["media_ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| source[m.as_str().unwrap()].as_str())
            .collect();
        sources.sort();
        sources.dedup();
        assert_eq!(sources.len(), 1, "series {id} mixes pictures: {sources:?}");
        let members = s["media_ids"].as_array().unwrap().len();
        let all = source.values().filter(|v| v.as_str() == sources[0]).count();
        assert_eq!(
            members, all,
            "series {id} of {} holds {members} of its {all} media",
            sources[0]
        );
        series_of_source
            .entry(sources[0].to_string())
            .or_default()
            .push(id);
    }
    let pictures: std::collections::HashSet<&String> = source.values().collect();
    assert_eq!(
        series_of_source.len(),
        pictures.len(),
        "{series_of_source:?}"
    );
    assert!(series_of_source.values().all(|v| v.len() == 1));
}
