//! `vidx bench security`: search QPS over gRPC on loopback with TLS, bearer
//! tokens, the audit log (fsynced, group-committed) and a visibility filter
//! on, beside the plain server (no TLS, no credentials, no audit), on the
//! same sealed collection in the same run, rounds alternating so that both
//! see the same machine.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::api::access::Role;
use crate::api::client::{Client, Credentials};
use crate::api::server::{ServerOptions, TlsFiles};
use crate::api::tokens::TokenStore;
use crate::collection::StorageOptions;
use crate::collection::config::Config;
use crate::collection::registry::Registry;
use crate::collection::restrict::{Restriction, Restrictions};
use crate::pb;
use crate::storage::audit::AuditOptions;

#[derive(Debug, Clone)]
pub struct SecurityBenchOptions {
    pub n: usize,
    pub dim: usize,
    pub queries: usize,
    pub clients: usize,
    pub batch: usize,
    pub k: usize,
    pub ef: usize,
    pub rounds: usize,
    pub seed: u64,
}

fn unit(rng: &mut ChaCha8Rng, dim: usize) -> Vec<f32> {
    let v: Vec<f32> = (0..dim).map(|_| rng.random::<f32>() - 0.5).collect();
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-9);
    v.into_iter().map(|x| x / n).collect()
}

/// Writes the sealed `bench` collection: 1% of it in a restricted upload of
/// another agency, so the secure server's searches run under a visibility
/// filter that bites.
fn build(dir: &Path, o: &SecurityBenchOptions) -> anyhow::Result<Vec<Vec<f32>>> {
    let registry = Registry::open(dir, StorageOptions::default())?;
    let c = registry.create(Config::from_request(&pb::CreateCollectionRequest {
        name: "bench".into(),
        dim: o.dim as u32,
        metric: pb::Metric::Cosine as i32,
        kind: pb::Kind::Image as i32,
        hnsw: None,
        quantization: pb::Quantization::Unspecified as i32,
        vector_storage: pb::VectorStorage::F32 as i32,
    })?)?;
    let mut rng = ChaCha8Rng::seed_from_u64(o.seed);
    let centres: Vec<Vec<f32>> = (0..64).map(|_| unit(&mut rng, o.dim)).collect();
    let near = |rng: &mut ChaCha8Rng| {
        let c = &centres[rng.random_range(0..centres.len())];
        let noise = unit(rng, o.dim);
        let v: Vec<f32> = c.iter().zip(&noise).map(|(a, b)| a + 0.6 * b).collect();
        v
    };
    for start in (0..o.n).step_by(2000) {
        let points = (start..(start + 2000).min(o.n))
            .map(|i| {
                let (agency, upload) = if i % 100 == 0 {
                    ("OTHER", "SECRET".to_string())
                } else {
                    ("BENCH", format!("U-{}", i % 50))
                };
                pb::Point {
                    id: format!("{i:08}"),
                    vector: near(&mut rng),
                    metadata: Some(pb::Metadata {
                        agency: agency.into(),
                        upload_id: upload,
                        media_id: format!("{i:040x}"),
                        ..Default::default()
                    }),
                    ..Default::default()
                }
            })
            .collect();
        c.upsert(points)?;
    }
    c.flush()?;
    Ok((0..o.queries).map(|_| near(&mut rng)).collect())
}

fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for e in std::fs::read_dir(from)? {
        let e = e?;
        let target = to.join(e.file_name());
        if e.file_type()?.is_dir() {
            copy_dir(&e.path(), &target)?;
        } else if e.file_name() != "vidx.lock" {
            std::fs::copy(e.path(), target)?;
        }
    }
    Ok(())
}

/// A CA and a server certificate for 127.0.0.1, made now.
fn test_pki() -> anyhow::Result<(String, TlsFiles)> {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let issuer = CertifiedIssuer::self_signed(ca, KeyPair::generate()?)?;
    let key = KeyPair::generate()?;
    let cert = CertificateParams::new(vec!["127.0.0.1".to_string()])?.signed_by(&key, &issuer)?;
    Ok((
        issuer.pem(),
        TlsFiles {
            cert_pem: cert.pem().into_bytes(),
            key_pem: key.serialize_pem().into_bytes(),
            client_ca_pem: None,
        },
    ))
}

struct Mode {
    name: &'static str,
    dir: std::path::PathBuf,
    opts: ServerOptions,
    creds: Vec<Credentials>,
    scheme: &'static str,
}

pub fn run(o: SecurityBenchOptions) -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let plain_dir = tmp.path().join("plain");
    let secure_dir = tmp.path().join("secure");
    eprintln!("building {} x {}-d points (sealed)...", o.n, o.dim);
    let queries = Arc::new(build(&plain_dir, &o)?);
    copy_dir(&plain_dir, &secure_dir)?;
    Restrictions::open(&secure_dir)?.set(
        Restriction {
            owner: "OTHER".into(),
            upload_id: "SECRET".into(),
            shared_with: Default::default(),
            deconfliction: false,
            updated_at: 0,
        },
        |_| Ok(()),
    )?;
    let tokens = TokenStore::open(&secure_dir)?;
    let (ca, tls) = test_pki()?;
    let secure_creds = (0..o.clients.max(1))
        .map(|_| {
            let (t, _) = tokens.create("BENCH", Role::Analyst, None, None)?;
            Ok(Credentials {
                ca_pem: Some(ca.clone().into_bytes()),
                token: Some(t),
                ..Default::default()
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    drop(tokens);
    let modes = modes(
        &o,
        &tmp.path().join("audit-signing.key"),
        (&plain_dir, &secure_dir),
        &ca,
        &tls,
        secure_creds,
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let mut qps: Vec<Vec<f64>> = vec![Vec::new(); modes.len()];
    for round in 0..o.rounds.max(1) {
        for (mi, m) in modes.iter().enumerate() {
            let q = rt.block_on(measure(m, &o, &queries))?;
            eprintln!("round {}: {:<16} {:>9.0} QPS", round + 1, m.name, q);
            qps[mi].push(q);
        }
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let plain = median(&mut qps[0].clone());
    let secure = median(&mut qps[modes.len() - 1].clone());
    let records = crate::storage::audit::verify(&secure_dir.join("audit"), None)?;
    println!(
        "search over gRPC on loopback, {} x {}-d sealed, {} clients x {} queries per request, k {}, ef {}, {} rounds:",
        o.n, o.dim, o.clients, o.batch, o.k, o.ef, o.rounds
    );
    println!("| server | QPS per round | median QPS |");
    println!("|---|---|---:|");
    for (m, v) in modes.iter().zip(&qps) {
        let rounds: Vec<String> = v.iter().map(|q| format!("{q:.0}")).collect();
        println!(
            "| {} | {} | {:.0} |",
            m.name,
            rounds.join(", "),
            median(&mut v.clone())
        );
    }
    println!("ratio tls+token+audit / plain: {:.2}", secure / plain);
    println!("audit log of the secure runs: {records}");
    Ok(())
}

/// The servers compared, from plain to everything on; the steps in between
/// say where the cost is: encryption, then identities with the visibility
/// filter, then the fsynced audit record.
fn modes(
    o: &SecurityBenchOptions,
    key: &Path,
    (plain_dir, secure_dir): (&Path, &Path),
    ca: &str,
    tls: &TlsFiles,
    secure_creds: Vec<Credentials>,
) -> [Mode; 4] {
    let audit = AuditOptions::new(secure_dir.join("audit"), key.to_path_buf());
    let anonymous = vec![Credentials::default(); o.clients.max(1)];
    let ca_only = vec![
        Credentials {
            ca_pem: Some(ca.as_bytes().to_vec()),
            ..Default::default()
        };
        o.clients.max(1)
    ];
    [
        Mode {
            name: "plain",
            dir: plain_dir.to_path_buf(),
            opts: ServerOptions::default(),
            creds: anonymous,
            scheme: "http",
        },
        Mode {
            name: "tls",
            dir: plain_dir.to_path_buf(),
            opts: ServerOptions {
                tls: Some(tls.clone()),
                ..Default::default()
            },
            creds: ca_only,
            scheme: "https",
        },
        Mode {
            name: "tls+token",
            dir: secure_dir.to_path_buf(),
            opts: ServerOptions {
                tls: Some(tls.clone()),
                ..Default::default()
            },
            creds: secure_creds.clone(),
            scheme: "https",
        },
        Mode {
            name: "tls+token+audit",
            opts: ServerOptions {
                tls: Some(tls.clone()),
                audit: Some(audit),
                ..Default::default()
            },
            dir: secure_dir.to_path_buf(),
            creds: secure_creds,
            scheme: "https",
        },
    ]
}

/// Starts the server of `m`, runs every query in batches from all clients,
/// stops it; returns queries per second.
async fn measure(
    m: &Mode,
    o: &SecurityBenchOptions,
    queries: &Arc<Vec<Vec<f32>>>,
) -> anyhow::Result<f64> {
    let registry = Arc::new(Registry::open(
        &m.dir,
        StorageOptions {
            verify_on_open: false,
            ..Default::default()
        },
    )?);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("{}://{}", m.scheme, listener.local_addr()?);
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(crate::api::server::serve(
        registry,
        listener,
        m.opts.clone(),
        async {
            let _ = stop_rx.await;
        },
    ));
    let mut clients: Vec<Client> = Vec::new();
    for c in &m.creds {
        clients.push(connect_retry(&url, c).await?);
    }
    // Warm-up: connections, pages, the metadata index.
    batched(
        &clients,
        &Arc::new(queries[..queries.len().min(400)].to_vec()),
        o,
    )
    .await?;
    let t = Instant::now();
    batched(&clients, queries, o).await?;
    let qps = queries.len() as f64 / t.elapsed().as_secs_f64();
    let _ = stop_tx.send(());
    server.await??;
    Ok(qps)
}

async fn connect_retry(url: &str, c: &Credentials) -> anyhow::Result<Client> {
    let mut last = String::new();
    for _ in 0..50 {
        match crate::api::client::connect(url, c).await {
            Ok(cl) => return Ok(cl),
            Err(e) => last = e,
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    anyhow::bail!("cannot connect to {url}: {last}")
}

/// Every client sends `batch` queries per request, taking the next batch
/// until all are done.
async fn batched(
    clients: &[Client],
    queries: &Arc<Vec<Vec<f32>>>,
    o: &SecurityBenchOptions,
) -> anyhow::Result<()> {
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for c in clients {
        let mut c = c.clone();
        let next = next.clone();
        let queries = queries.clone();
        let (batch, k, ef) = (o.batch.max(1), o.k, o.ef);
        tasks.push(tokio::spawn(async move {
            loop {
                let start = next.fetch_add(batch, std::sync::atomic::Ordering::SeqCst);
                if start >= queries.len() {
                    return Ok::<_, tonic::Status>(());
                }
                let end = (start + batch).min(queries.len());
                c.search(pb::SearchRequest {
                    collection: "bench".into(),
                    queries: queries[start..end]
                        .iter()
                        .map(|q| pb::Query {
                            query: Some(pb::query::Query::Vector(pb::Vector { values: q.clone() })),
                        })
                        .collect(),
                    k: k as u32,
                    ef: ef as u32,
                    ..Default::default()
                })
                .await?;
            }
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(())
}
