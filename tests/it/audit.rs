//! The audit log end to end: 10,000 mixed calls over TLS (refused ones
//! included) verify intact with `vidx audit verify`, which then names the
//! exact record after each kind of tampering; and secrets (tokens, keys)
//! appear in no log, error or audit record.

use std::path::{Path, PathBuf};
use std::process::Command;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use vidx::api::access::Role;
use vidx::pb;

use crate::support::process::{BIN, ServerProcess};
use crate::support::secure::{self, Pki, make_token};
use crate::support::{id_query, random_unit, search_req, vector_query};

const DIM: usize = 16;

/// `vidx audit verify DIR`: (success, stdout).
fn verify(dir: &Path) -> (bool, String) {
    let out = Command::new(BIN)
        .args(["audit", "verify"])
        .arg(dir)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).trim().to_string(),
    )
}

/// The record lines of an audit directory in order, with their files.
fn lines(dir: &Path) -> Vec<(PathBuf, Vec<String>)> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with("audit-")
        })
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|f| {
            let text = std::fs::read_to_string(&f).unwrap();
            let l = text.lines().map(str::to_string).collect();
            (f, l)
        })
        .collect()
}

/// A copy of the audit directory with its records changed by `edit`
/// (given every record line in order, seq 1 first).
fn tampered(src: &Path, edit: impl FnOnce(&mut Vec<String>)) -> tempfile::TempDir {
    let out = tempfile::tempdir().unwrap();
    for e in std::fs::read_dir(src).unwrap().flatten() {
        std::fs::copy(e.path(), out.path().join(e.file_name())).unwrap();
    }
    let files = lines(src);
    let mut all: Vec<String> = files.iter().flat_map(|(_, l)| l.clone()).collect();
    let sizes: Vec<usize> = files.iter().map(|(_, l)| l.len()).collect();
    edit(&mut all);
    // Put the lines back file by file (the last file takes any change in count).
    let mut it = all.into_iter();
    for (i, (f, _)) in files.iter().enumerate() {
        let take = if i + 1 == files.len() {
            usize::MAX
        } else {
            sizes[i]
        };
        let chunk: Vec<String> = it.by_ref().take(take).collect();
        let mut text = chunk.join("\n");
        if !chunk.is_empty() {
            text.push('\n');
        }
        std::fs::write(out.path().join(f.file_name().unwrap()), text).unwrap();
    }
    out
}

fn seq_of(line: &str) -> u64 {
    let v: serde_json::Value = serde_json::from_str(line).unwrap();
    v["seq"].as_u64().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn audit_verify_passes_10000_calls_and_names_each_tampering() {
    let pki = Pki::new("test CA");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (admin, _) = make_token(dir, "HUB", Role::Admin);
    let (ta, ta_id) = make_token(dir, "DE-BKA", Role::Contributor);
    let (tr, _) = make_token(dir, "FR-OCRVP", Role::Reader);
    let server = secure::start_secure(&pki, dir, false).await;
    let mut admin = secure::client(&server, &pki, Some(&admin), None)
        .await
        .unwrap();
    admin
        .create_collection(pb::CreateCollectionRequest {
            name: "images".into(),
            dim: DIM as u32,
            metric: pb::Metric::Cosine as i32,
            kind: pb::Kind::Image as i32,
            hnsw: None,
            quantization: pb::Quantization::Unspecified as i32,
            vector_storage: pb::VectorStorage::F32 as i32,
        })
        .await
        .unwrap();
    let mut a = secure::client(&server, &pki, Some(&ta), None)
        .await
        .unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let points: Vec<pb::Point> = (0..300)
        .map(|i| pb::Point {
            id: format!("p{i}"),
            vector: random_unit(&mut rng, DIM),
            metadata: Some(pb::Metadata {
                upload_id: format!("U{}", i % 7),
                ..Default::default()
            }),
            ..Default::default()
        })
        .collect();
    a.upsert(tokio_stream::iter(vec![pb::UpsertRequest {
        collection: "images".into(),
        points,
    }]))
    .await
    .unwrap();
    let calls = 10_000usize;
    let workers = 8;
    let mut tasks = Vec::new();
    for w in 0..workers {
        let mut a = a.clone();
        let mut r = secure::client(&server, &pki, Some(&tr), None)
            .await
            .unwrap();
        let mut anon = secure::client(&server, &pki, None, None).await.unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(100 + w as u64);
        tasks.push(tokio::spawn(async move {
            let mut refused = 0;
            for i in 0..calls / workers {
                let ok = match i % 6 {
                    0 => a
                        .search(search_req(
                            "images",
                            vec![vector_query(random_unit(&mut rng, DIM))],
                            5,
                        ))
                        .await
                        .is_ok(),
                    1 => r
                        .search(search_req(
                            "images",
                            vec![id_query(&format!("p{}", i % 300))],
                            3,
                        ))
                        .await
                        .is_ok(),
                    2 => r
                        .get(pb::GetRequest {
                            collection: "images".into(),
                            ids: vec![format!("p{}", i % 300)],
                        })
                        .await
                        .is_ok(),
                    3 => r
                        .upsert(tokio_stream::iter(vec![pb::UpsertRequest {
                            collection: "images".into(),
                            points: vec![],
                        }]))
                        .await
                        .is_ok(),
                    4 => anon
                        .list_collections(pb::ListCollectionsRequest {})
                        .await
                        .is_ok(),
                    _ => r
                        .describe_collection(pb::DescribeCollectionRequest {
                            name: "images".into(),
                        })
                        .await
                        .is_ok(),
                };
                refused += !ok as usize;
            }
            refused
        }));
    }
    let mut refused = 0;
    for t in tasks {
        refused += t.await.unwrap();
    }
    assert!(
        refused >= calls / 3 - workers,
        "reader upserts and calls without a token are refused: {refused}"
    );
    server.stop().await;

    let audit = dir.join("audit");
    let all: Vec<String> = lines(&audit).into_iter().flat_map(|(_, l)| l).collect();
    let n = all.len() as u64;
    assert!(n >= calls as u64 + 2, "{n} records");
    let (ok, said) = verify(&audit);
    assert!(ok, "{said}");
    assert!(said.starts_with(&format!("ok: {n} records")), "{said}");
    eprintln!("intact: {said}");
    // What the records hold: who, what, outcome, the ids returned; never a token.
    let text = all.join("\n");
    assert!(!text.contains(&ta) && !text.contains(&tr));
    let refused_rec: serde_json::Value = serde_json::from_str(
        all.iter()
            .find(|l| l.contains("\"UNAUTHENTICATED\""))
            .expect("a refused call is recorded"),
    )
    .unwrap();
    assert_eq!(refused_rec["credential"], "-");
    let search_rec: serde_json::Value = serde_json::from_str(
        all.iter()
            .find(|l| l.contains(&ta_id) && l.contains("\"rpc\":\"Search\""))
            .expect("A's searches are recorded"),
    )
    .unwrap();
    assert_eq!(search_rec["agency"], "DE-BKA");
    assert_eq!(search_rec["ids"].as_array().unwrap().len(), 5);
    assert_eq!(search_rec["request"]["k"], 5);
    assert!(
        search_rec["peer"]
            .as_str()
            .unwrap()
            .starts_with("127.0.0.1:")
    );

    // One byte changed.
    let t = tampered(&audit, |l| {
        let line = &mut l[4999];
        let at = line.find("\"rpc\":\"").unwrap() + 7;
        line.replace_range(at..at + 1, "Z");
    });
    let (ok, said) = verify(t.path());
    assert!(
        !ok && said.starts_with("BROKEN at record 5000: edited"),
        "{said}"
    );
    eprintln!("one byte changed: {said}");
    // A record deleted.
    let t = tampered(&audit, |l| {
        assert_eq!(seq_of(&l.remove(3999)), 4000);
    });
    let (ok, said) = verify(t.path());
    assert!(
        !ok && said.starts_with("BROKEN at record 4000: removed"),
        "{said}"
    );
    eprintln!("a record deleted: {said}");
    // Two swapped.
    let t = tampered(&audit, |l| l.swap(2999, 3000));
    let (ok, said) = verify(t.path());
    assert!(
        !ok && said.starts_with("BROKEN at record 3000: reordered"),
        "{said}"
    );
    eprintln!("two swapped: {said}");
    // The tail cut.
    let t = tampered(&audit, |l| l.truncate(l.len() - 3));
    let (ok, said) = verify(t.path());
    assert!(
        !ok && said.starts_with(&format!("BROKEN at record {}: truncated", n - 2)),
        "{said}"
    );
    eprintln!("tail cut: {said}");
    // Export: JSON lines of one agency.
    let out = Command::new(BIN)
        .args(["audit", "export", "--agency", "DE-BKA"])
        .arg(&audit)
        .output()
        .unwrap();
    let exported = String::from_utf8(out.stdout).unwrap();
    assert!(exported.lines().count() > 1000);
    for l in exported.lines() {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        assert_eq!(v["agency"], "DE-BKA");
    }
}

#[test]
fn secrets_stay_out_of_logs_errors_and_the_audit_log() {
    let pki = Pki::new("test CA");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let files = tmp.path();
    let server_cert = pki.server();
    let cert = secure::write(files, "server.pem", &server_cert.cert_pem);
    let key = secure::write(files, "server.key", &server_cert.key_pem);
    let ca = secure::write(files, "ca.pem", &pki.ca_pem);
    // The real command makes the token and prints it once.
    let out = Command::new(BIN)
        .args([
            "token",
            "create",
            "--agency",
            "DE-BKA",
            "--role",
            "admin",
            "--data-dir",
        ])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert!(token.starts_with("vidx_"), "{token}");
    let token_file = secure::write(files, "token", &token);
    let (mut server, url) = ServerProcess::start(
        &dir,
        &[
            "--tls-cert".as_ref(),
            cert.as_os_str(),
            "--tls-key".as_ref(),
            key.as_os_str(),
        ],
    );
    let https = url.replace("http://", "https://");
    let cli = |args: &[&str], token: Option<&Path>| {
        let mut c = Command::new(BIN);
        c.args(args).args(["--server", &https]).arg("--ca").arg(&ca);
        if let Some(t) = token {
            c.arg("--token-file").arg(t);
        }
        c.env_remove("VIDX_TOKEN").output().unwrap()
    };
    let ok = cli(&["collections"], Some(&token_file));
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let who = cli(&["whoami"], Some(&token_file));
    assert!(String::from_utf8_lossy(&who.stdout).contains("agency DE-BKA role admin"));
    // A wrong token (the real one, changed) and no token: refused, and the
    // message repeats neither.
    let mut wrong = token.clone();
    wrong.replace_range(10..12, "zz");
    let wrong_file = secure::write(files, "wrong", &wrong);
    for t in [Some(wrong_file.as_path()), None] {
        let bad = cli(&["collections"], t);
        assert!(!bad.status.success());
        let err = String::from_utf8_lossy(&bad.stderr);
        assert!(err.contains("Unauthenticated"), "{err}");
        assert!(
            !err.contains(&token[5..]) && !err.contains(&wrong[5..]),
            "{err}"
        );
    }
    server.kill();
    let key_body: String = server_cert
        .key_pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    let log: String = server
        .log()
        .tail
        .iter()
        .cloned()
        .collect::<Vec<_>>()
        .join("\n");
    let mut haystacks = vec![("the server log".to_string(), log)];
    for e in walk(&dir) {
        let bytes = std::fs::read(&e).unwrap();
        haystacks.push((
            e.to_str().unwrap().to_string(),
            String::from_utf8_lossy(&bytes).into_owned(),
        ));
    }
    assert!(
        haystacks.iter().any(|(n, _)| n.contains("audit-")),
        "the audit log is there"
    );
    for (name, text) in haystacks {
        for (what, secret) in [("token", &token[5..]), ("wrong token", &wrong[5..])] {
            assert!(!text.contains(secret), "{name} holds the {what}");
        }
        for line in key_body.as_bytes().chunks(32) {
            assert!(
                !text.contains(std::str::from_utf8(line).unwrap()),
                "{name} holds the TLS key"
            );
        }
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn serve_refuses_an_unprotected_listen_beyond_loopback_and_says_when_it_runs_open() {
    let tmp = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .args(["serve", "--listen", "0.0.0.0:0", "--data-dir"])
        .arg(tmp.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains("refusing to listen on 0.0.0.0:0 without TLS and authentication"),
        "{err}"
    );
    assert!(err.contains("--insecure"), "{err}");
    let (server, _) = ServerProcess::start(tmp.path(), &[] as &[&str]);
    assert!(
        server
            .log()
            .tail
            .iter()
            .any(|l| l.contains("running OPEN on 127.0.0.1:0")),
        "{}",
        server.tail()
    );
}
