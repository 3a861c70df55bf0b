//! `rook-kms-webhook serve` over real TLS: a client that trusts only the generated CA sends
//! AdmissionReviews; the verdicts must be the ones `check` gives. Also: certificate checks, limits,
//! malformed bodies, slow clients, certificate rotation while requests run, health and shutdown.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure should stop the test

#[path = "../crates/kms/tests/support/pki.rs"]
mod pki;

#[path = "../crates/kms/tests/support/example_secrets.rs"]
mod example_secrets;

#[path = "../crates/kms/tests/support/components.rs"]
mod components;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use clap::Parser;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use rook_kms_webhook::certs;
use rook_kms_webhook::serve;
use rook_kms_webhook::{Cli, Command};
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;
use tokio::sync::oneshot;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

struct Server {
    tls: SocketAddr,
    health: SocketAddr,
    ca: String,
    dir: tempfile::TempDir,
    stop: Option<oneshot::Sender<()>>,
    task: Task,
}

/// A temporary directory with the example TLS Secrets (`generated/`) and a fresh CA and serving
/// certificate (`tls/`).
struct Workdir {
    dir: tempfile::TempDir,
    generated: PathBuf,
    tls: PathBuf,
    certs: certs::ServingCerts,
}

impl Workdir {
    fn new() -> Self {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let dir = tempfile::tempdir().unwrap();
        let generated = dir.path().join("generated");
        example_secrets::write(&generated).unwrap();
        let certs = certs::generate(&certs::sans("rook-kms-webhook", "rook-ceph"), 30).unwrap();
        let tls = dir.path().join("tls");
        certs::write(&tls, &certs).unwrap();
        Self { dir, generated, tls, certs }
    }
}

impl Server {
    async fn start(extra: &[&str]) -> Server {
        let Workdir { dir, generated, tls, certs: c } = Workdir::new();
        let examples = root().join("examples");
        let args = serve_args(&tls.join("tls.crt"), &tls.join("tls.key"), &[&examples, &generated], extra);
        let (tls_addr, health, tx, task) = spawn(args).await;
        Server { tls: tls_addr, health, ca: c.ca_cert, dir, stop: Some(tx), task }
    }
}

type Task = tokio::task::JoinHandle<Result<(), serve::ServeError>>;

/// `serve` arguments as the CLI parses them: loopback listeners, a fast reload poll, the probe off
/// unless `extra` sets it (the examples name KMS hosts that do not exist).
fn serve_args(cert: &Path, key: &Path, secrets: &[&Path], extra: &[&str]) -> serve::ServeArgs {
    let mut argv: Vec<String> =
        ["rook-kms-webhook", "serve", "--listen", "127.0.0.1:0", "--health-listen", "127.0.0.1:0"]
            .iter()
            .map(ToString::to_string)
            .collect();
    argv.extend(["--tls-cert".into(), cert.display().to_string(), "--tls-key".into(), key.display().to_string()]);
    for s in secrets {
        argv.extend(["--secrets".into(), s.display().to_string()]);
    }
    argv.extend(["--tls-reload-interval".into(), "0.1".into()]);
    if !extra.iter().any(|a| a.starts_with("--probe")) {
        argv.push("--probe=off".into());
    }
    argv.extend(extra.iter().map(ToString::to_string));
    let Command::Serve(args) = Cli::try_parse_from(argv).unwrap().command else { panic!("not serve") };
    args
}

/// Binds and serves in a task; the sender stops it.
async fn spawn(args: serve::ServeArgs) -> (SocketAddr, SocketAddr, oneshot::Sender<()>, Task) {
    let bound = serve::bind(args).await.unwrap();
    let (tls, health) = (bound.tls_addr(), bound.health_addr().unwrap());
    let (tx, rx) = oneshot::channel();
    let task = tokio::spawn(bound.serve(async move {
        let _ = rx.await;
    }));
    (tls, health, tx, task)
}

fn client_config(cas: &[&str]) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for ca in cas {
        for cert in rustls_pki_types::pem::PemObject::pem_slice_iter(ca.as_bytes()) {
            roots.add(cert.unwrap()).unwrap();
        }
    }
    Arc::new(
        rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

struct Reply {
    status: u16,
    body: Vec<u8>,
    peer_cert: Vec<u8>,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&self.body)))
    }
}

async fn post_with(
    addr: SocketAddr,
    config: Arc<rustls::ClientConfig>,
    sni: &str,
    path: &str,
    body: Vec<u8>,
) -> Result<Reply, String> {
    let tcp = tokio::net::TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    let name = rustls_pki_types::ServerName::try_from(sni.to_string()).map_err(|e| e.to_string())?;
    let tls = tokio_rustls::TlsConnector::from(config).connect(name, tcp).await.map_err(|e| e.to_string())?;
    let peer_cert = tls.get_ref().1.peer_certificates().and_then(|c| c.first()).map(|c| c.to_vec()).unwrap_or_default();
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(TokioIo::new(tls)).await.map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    let req = hyper::Request::post(path)
        .header("host", "localhost")
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| e.to_string())?;
    let resp = sender.send_request(req).await.map_err(|e| e.to_string())?;
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await.map_err(|e| e.to_string())?.to_bytes().to_vec();
    Ok(Reply { status, body, peer_cert })
}

async fn post(server: &Server, path: &str, body: &Value) -> Reply {
    post_with(
        server.tls,
        client_config(&[&server.ca]),
        "rook-kms-webhook.rook-ceph.svc",
        path,
        serde_json::to_vec(body).unwrap(),
    )
    .await
    .unwrap()
}

fn admission_review(uid: &str, operation: &str, object: &Value, old: Option<&Value>) -> Value {
    json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": uid,
            "kind": {"group": "ceph.rook.io", "version": "v1", "kind": "CephCluster"},
            "resource": {"group": "ceph.rook.io", "version": "v1", "resource": "cephclusters"},
            "name": object["metadata"]["name"],
            "namespace": object["metadata"]["namespace"],
            "operation": operation,
            "userInfo": {"username": "test"},
            "object": object,
            "oldObject": old,
            "dryRun": false
        }
    })
}

fn example_clusters(dir: &str) -> Vec<Value> {
    rook_kms_webhook::manifests::read_all(&[root().join(dir)])
        .unwrap()
        .into_iter()
        .filter(|d| d.is_ceph_cluster())
        .map(|d| d.value)
        .collect()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array().map(|a| a.iter().map(|s| s.as_str().unwrap().to_string()).collect()).unwrap_or_default()
}

#[tokio::test]
async fn verdicts_match_check_on_every_example() {
    let server = Server::start(&[]).await;
    let generated = server.dir.path().join("generated");
    for dir in ["examples/valid", "examples/broken"] {
        let args = rook_kms_webhook::CheckArgs {
            inputs: vec![root().join(dir)],
            secrets: vec![generated.clone()],
            old: None,
            no_mutate: false,
            namespace: "default".into(),
            output: rook_kms_webhook::Output::Json,
            probe: rook_kms_webhook::probe::ProbeModeArg::Off,
            probe_args: rook_kms_webhook::probe::ProbeArgs {
                probe_timeout: 3.0,
                probe_allow: vec![],
                probe_ca_file: None,
            },
        };
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
        let expected = rook_kms_webhook::check::evaluate(&args, now).unwrap();
        let clusters = example_clusters(dir);
        assert_eq!(clusters.len(), expected.len());
        for (i, (object, want)) in clusters.iter().zip(&expected).enumerate() {
            let uid = format!("uid-{dir}-{i}");
            // The API server calls the mutating webhook, applies its patch, then validates.
            let m = post(&server, "/mutate", &admission_review(&uid, "CREATE", object, None)).await;
            assert_eq!(m.status, 200);
            let m = m.json();
            assert_eq!(m["response"]["uid"], json!(uid));
            assert_eq!(m["response"]["allowed"], json!(true));
            let mut mutated = object.clone();
            if let Some(patch) = m["response"]["patch"].as_str() {
                assert_eq!(m["response"]["patchType"], json!("JSONPatch"));
                let ops: json_patch::Patch =
                    serde_json::from_slice(&base64::engine::general_purpose::STANDARD.decode(patch).unwrap()).unwrap();
                assert_eq!(ops, want.patch, "{}", want.name);
                json_patch::patch(&mut mutated, &ops).unwrap();
            } else {
                assert!(want.patch.0.is_empty(), "{}: check has a patch, serve none", want.name);
            }
            let v = post(&server, "/validate", &admission_review(&uid, "CREATE", &mutated, None)).await.json();
            let r = &v["response"];
            assert_eq!(r["uid"], json!(uid));
            assert_eq!(r["allowed"], json!(want.allowed), "{}: {v}", want.name);
            if !want.allowed {
                assert_eq!(r["status"]["code"], json!(422));
                let message = want.errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n");
                assert_eq!(r["status"]["message"], json!(message));
            }
            let mut got = strings(&m["response"]["warnings"]);
            got.extend(strings(&r["warnings"]));
            let expected_lines: Vec<String> =
                want.warnings.iter().flat_map(|w| serve::admission::warning_lines(&w.to_string())).collect();
            assert_eq!(got, expected_lines, "{}", want.name);
            assert!(got.iter().all(|w| w.chars().count() < 120));
            // A dry run gets the same verdict.
            let mut dry = admission_review(&uid, "CREATE", &mutated, None);
            dry["request"]["dryRun"] = json!(true);
            assert_eq!(post(&server, "/validate", &dry).await.json()["response"]["allowed"], json!(want.allowed));
        }
    }
}

#[tokio::test]
async fn updates_use_the_old_object() {
    let server = Server::start(&[]).await;
    let read = |f: &str| {
        let docs = rook_kms_webhook::manifests::read_all(&[root().join("examples/update").join(f)]).unwrap();
        docs.into_iter().find(|d| d.is_ceph_cluster()).unwrap().value
    };
    let (old_obj, new_obj) = (read("old.yaml"), read("new.yaml"));
    let new_obj = &new_obj;
    let r = post(&server, "/validate", &admission_review("u1", "UPDATE", new_obj, Some(&old_obj))).await.json();
    assert_eq!(r["response"]["allowed"], json!(false));
    assert!(r["response"]["status"]["message"].as_str().unwrap().contains("Rook never moves keys"));
    let m = post(&server, "/mutate", &admission_review("u2", "UPDATE", &old_obj, Some(&old_obj))).await.json();
    assert!(m["response"]["patch"].is_null(), "an unchanged kms block is never patched: {m}");
}

#[tokio::test]
async fn other_kinds_and_operations_pass_untouched() {
    let server = Server::start(&[]).await;
    let object = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "namespace": "y"}});
    let mut review = admission_review("u-cm", "CREATE", &object, None);
    review["request"]["kind"] = json!({"group": "", "version": "v1", "kind": "ConfigMap"});
    let r = post(&server, "/validate", &review).await.json();
    assert_eq!(r["response"]["uid"], json!("u-cm"));
    assert_eq!(r["response"]["allowed"], json!(true));
    assert!(r["response"]["warnings"].is_null() && r["response"]["patch"].is_null());
    let cluster = &example_clusters("examples/broken")[0];
    let r = post(&server, "/validate", &admission_review("u-del", "DELETE", cluster, None)).await.json();
    assert_eq!(r["response"]["allowed"], json!(true));
    assert_eq!(r["response"]["uid"], json!("u-del"));
}

#[tokio::test]
async fn malformed_and_oversized_bodies() {
    let server = Server::start(&["--max-body-bytes", "100000"]).await;
    let config = client_config(&[&server.ca]);
    let sni = "localhost";
    let r = post_with(server.tls, config.clone(), sni, "/validate", b"{not json".to_vec()).await.unwrap();
    assert_eq!(r.status, 400);
    assert!(String::from_utf8_lossy(&r.body).contains("not an AdmissionReview"));
    let r = post_with(
        server.tls,
        config.clone(),
        sni,
        "/validate",
        br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}"#.to_vec(),
    )
    .await
    .unwrap();
    assert_eq!(r.status, 400);
    assert!(String::from_utf8_lossy(&r.body).contains("has no request"), "{}", String::from_utf8_lossy(&r.body));
    let r = post_with(server.tls, config.clone(), sni, "/validate", vec![b' '; 200_000]).await.unwrap();
    assert_eq!(r.status, 413);
    // The server is still fine.
    let ok =
        post(&server, "/validate", &admission_review("after", "CREATE", &example_clusters("examples/valid")[0], None))
            .await;
    assert_eq!(ok.status, 200);
}

#[tokio::test]
async fn certificate_checks_on_the_client_side() {
    let server = Server::start(&[]).await;
    let body =
        serde_json::to_vec(&admission_review("x", "CREATE", &example_clusters("examples/valid")[0], None)).unwrap();
    let other_ca = pki::Pki::new("someone else's CA");
    let err = post_with(server.tls, client_config(&[&other_ca.ca_pem]), "localhost", "/validate", body.clone())
        .await
        .err()
        .unwrap();
    assert!(err.contains("UnknownIssuer") || err.contains("invalid peer certificate"), "{err}");
    let err =
        post_with(server.tls, client_config(&[&server.ca]), "not-the-webhook.example.com", "/validate", body.clone())
            .await
            .err()
            .unwrap();
    assert!(err.contains("NotValidForName") || err.contains("not valid for name"), "{err}");
    for name in ["localhost", "127.0.0.1", "rook-kms-webhook.rook-ceph.svc"] {
        assert_eq!(
            post_with(server.tls, client_config(&[&server.ca]), name, "/validate", body.clone()).await.unwrap().status,
            200
        );
    }
}

/// TLS versions as the `openssl` CLI negotiates them: 1.2 works (the control), 1.1 is refused.
#[tokio::test]
async fn tls_below_1_2_is_refused() {
    let server = Server::start(&[]).await;
    let addr = server.tls.to_string();
    // SECLEVEL=0 lets the openssl client offer TLS 1.1 at all, so the refusal is the server's.
    let handshake = |flag: &'static str| {
        let addr = addr.clone();
        let cipher = if flag == "-tls1_1" { "DEFAULT@SECLEVEL=0" } else { "DEFAULT" };
        tokio::task::spawn_blocking(move || {
            std::process::Command::new("openssl")
                .args(["s_client", "-connect", &addr, flag, "-cipher", cipher])
                .stdin(std::process::Stdio::null())
                .output()
                .expect("openssl is needed for this test (apt-get install openssl)")
        })
    };
    let ok = handshake("-tls1_2").await.unwrap();
    assert!(
        String::from_utf8_lossy(&ok.stdout).contains("TLSv1.2"),
        "control: {}",
        String::from_utf8_lossy(&ok.stdout)
    );
    let old = handshake("-tls1_1").await.unwrap();
    let out = String::from_utf8_lossy(&old.stdout).into_owned() + &String::from_utf8_lossy(&old.stderr);
    assert!(!old.status.success(), "TLS 1.1 was accepted: {out}");
    assert!(out.contains("SSL alert number"), "the server did not refuse with an alert: {out}");
    assert!(out.contains("Cipher is (NONE)"), "{out}");
}

#[tokio::test]
async fn slow_clients_do_not_block_others() {
    let server = Server::start(&["--handshake-timeout", "2"]).await;
    // Many connections that never start TLS, and one that sends half a request and stalls.
    let mut idle = Vec::new();
    for _ in 0..50 {
        idle.push(tokio::net::TcpStream::connect(server.tls).await.unwrap());
    }
    let tcp = tokio::net::TcpStream::connect(server.tls).await.unwrap();
    let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
    let mut stalled = tokio_rustls::TlsConnector::from(client_config(&[&server.ca])).connect(name, tcp).await.unwrap();
    stalled.write_all(b"POST /validate HTTP/1.1\r\nhost: localhost\r\ncontent-le").await.unwrap();
    let started = std::time::Instant::now();
    let body = admission_review("fast", "CREATE", &example_clusters("examples/valid")[0], None);
    for _ in 0..5 {
        assert_eq!(post(&server, "/validate", &body).await.status, 200);
    }
    assert!(started.elapsed() < Duration::from_secs(2), "stalled clients slowed the others: {:?}", started.elapsed());
    // The stalled request is cut off by the header timeout.
    let mut buf = Vec::new();
    let read =
        tokio::time::timeout(Duration::from_secs(6), tokio::io::AsyncReadExt::read_to_end(&mut stalled, &mut buf))
            .await;
    assert!(read.is_ok(), "the half-sent request was never timed out");
    drop(idle);
}

/// Replaces the serving pair the way the kubelet updates a Secret volume: new files in a fresh
/// directory, then an atomic rename of the `..data` symlink.
fn symlink_swap(dir: &Path, generation: u32, certs: &certs::ServingCerts) {
    let target = dir.join(format!("..gen{generation}"));
    certs::write(&target, certs).unwrap();
    let tmp = dir.join("..data_tmp");
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(target.file_name().unwrap(), &tmp).unwrap();
    std::fs::rename(&tmp, dir.join("..data")).unwrap();
}

#[tokio::test]
async fn certificate_rotation_under_load_with_a_symlink_swap() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let vol = dir.path().join("vol");
    std::fs::create_dir_all(&vol).unwrap();
    let sans = certs::sans("rook-kms-webhook", "rook-ceph");
    let first = certs::generate(&sans, 30).unwrap();
    symlink_swap(&vol, 1, &first);
    for f in ["tls.crt", "tls.key"] {
        std::os::unix::fs::symlink(format!("..data/{f}"), vol.join(f)).unwrap();
    }
    let generated = dir.path().join("generated");
    example_secrets::write(&generated).unwrap();
    let (cert_file, key_file) = (vol.join("tls.crt"), vol.join("tls.key"));
    let (addr, health, tx, task) = spawn(serve_args(&cert_file, &key_file, &[&generated], &[])).await;
    let second = certs::generate(&sans, 30).unwrap();
    let both = client_config(&[&first.ca_cert, &second.ca_cert]);
    let body =
        serde_json::to_vec(&admission_review("rot", "CREATE", &example_clusters("examples/valid")[0], None)).unwrap();
    // Load: 4 clients, new connections each time, while the certificate is swapped.
    let mut load = Vec::new();
    for _ in 0..4 {
        let (both, body) = (both.clone(), body.clone());
        load.push(tokio::spawn(async move {
            let mut n = 0;
            let end = std::time::Instant::now() + Duration::from_millis(1500);
            while std::time::Instant::now() < end {
                let r = post_with(addr, both.clone(), "localhost", "/validate", body.clone())
                    .await
                    .expect("request failed during rotation");
                assert_eq!(r.status, 200);
                n += 1;
            }
            n
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    // A bad pair (key of another certificate) is ignored: the old certificate stays.
    let mut bad = certs::generate(&sans, 30).unwrap();
    bad.key = second.key.clone();
    symlink_swap(&vol, 2, &bad);
    tokio::time::sleep(Duration::from_millis(400)).await;
    let r = post_with(addr, both.clone(), "localhost", "/validate", body.clone()).await.unwrap();
    assert_eq!(r.peer_cert, pem_der(&first.cert), "a mismatched pair replaced the certificate");
    symlink_swap(&vol, 3, &second);
    let mut total = 0;
    for l in load {
        total += l.await.unwrap();
    }
    assert!(total > 20, "too little load: {total}");
    let r = post_with(addr, client_config(&[&second.ca_cert]), "localhost", "/validate", body.clone()).await.unwrap();
    assert_eq!(r.peer_cert, pem_der(&second.cert), "new connections still get the old certificate");
    let metrics = http_get(health, "/metrics").await.1;
    assert!(metrics.contains("rook_kms_webhook_certificate_reloads_total{result=\"success\"} 1"), "{metrics}");
    assert!(metrics.contains("rook_kms_webhook_certificate_reloads_total{result=\"failure\"} 1"), "{metrics}");
    let _ = tx.send(());
    task.await.unwrap().unwrap();
}

fn pem_der(pem: &str) -> Vec<u8> {
    rustls_pki_types::pem::PemObject::pem_slice_iter(pem.as_bytes())
        .next()
        .map(|c: Result<rustls_pki_types::CertificateDer<'static>, _>| c.unwrap().to_vec())
        .unwrap()
}

async fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await.unwrap();
    tokio::spawn(conn);
    let req = hyper::Request::get(path).header("host", "localhost").body(Full::new(Bytes::new())).unwrap();
    let resp = sender.send_request(req).await.unwrap();
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test]
async fn health_metrics_and_graceful_shutdown() {
    let mut server = Server::start(&["--shutdown-delay", "0.5"]).await;
    assert_eq!(http_get(server.health, "/livez").await.0, 200);
    assert_eq!(http_get(server.health, "/readyz").await, (200, "ok".to_string()));
    let cluster = example_clusters("examples/broken")[0].clone();
    post(&server, "/validate", &admission_review("m1", "CREATE", &cluster, None)).await;
    post(&server, "/validate", &admission_review("m2", "CREATE", &cluster, None)).await;
    let metrics = http_get(server.health, "/metrics").await.1;
    assert!(
        metrics.contains(
            "rook_kms_webhook_admission_requests_total{endpoint=\"validate\",operation=\"CREATE\",result=\"denied\"} 2"
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains("rook_kms_webhook_admission_duration_seconds_bucket{le=\"30.0\",endpoint=\"validate\"} 2"),
        "{metrics}"
    );
    assert!(metrics.contains("rook_kms_webhook_certificate_expiry_timestamp_seconds "), "{metrics}");

    // An in-flight request: headers sent, body still coming when shutdown starts.
    let body = serde_json::to_vec(&admission_review("inflight", "CREATE", &cluster, None)).unwrap();
    let tcp = tokio::net::TcpStream::connect(server.tls).await.unwrap();
    let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
    let mut tls = tokio_rustls::TlsConnector::from(client_config(&[&server.ca])).connect(name, tcp).await.unwrap();
    let head = format!(
        "POST /validate HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    tls.write_all(head.as_bytes()).await.unwrap();
    tls.write_all(&body[..10]).await.unwrap();
    tls.flush().await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;

    let _ = server.stop.take().unwrap().send(());
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(http_get(server.health, "/readyz").await.0, 503, "readiness must fail at once");
    // During --shutdown-delay a new connection (from an API server that has not yet seen the
    // endpoint go) is still served.
    let late = post(&server, "/validate", &admission_review("late", "CREATE", &cluster, None)).await;
    assert_eq!((late.status, late.json()["response"]["uid"].as_str()), (200, Some("late")));
    tls.write_all(&body[10..]).await.unwrap();
    let mut reply = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), tokio::io::AsyncReadExt::read_to_end(&mut tls, &mut reply))
        .await
        .unwrap()
        .ok();
    let reply = String::from_utf8_lossy(&reply);
    assert!(reply.starts_with("HTTP/1.1 200"), "the in-flight request was cut: {reply}");
    assert!(reply.contains("\"uid\":\"inflight\""));
    tokio::time::timeout(Duration::from_secs(5), &mut server.task).await.unwrap().unwrap().unwrap();
}

/// The admission server end to end with `--probe=enforce` against a real OpenBao.
#[tokio::test]
async fn probe_enforce_against_openbao_denies_a_bad_token_and_caches_results() {
    let bao = components::OpenBao::dev();
    bao.mount_kv("rook", 2);
    let policy = r#"
path "rook/*" { capabilities = ["create", "read", "update", "delete", "list"] }
path "sys/mounts" { capabilities = ["read"] }
"#;
    let good = bao.token_with_policy("rook", policy, json!({}));
    let secrets = tempfile::tempdir().unwrap();
    let manifest = format!(
        "apiVersion: v1\nkind: Secret\nmetadata: {{name: bao-good, namespace: rook-ceph}}\nstringData: {{token: {good}}}\n---\napiVersion: v1\nkind: Secret\nmetadata: {{name: bao-bad, namespace: rook-ceph}}\nstringData: {{token: s.not-a-token}}\n"
    );
    std::fs::write(secrets.path().join("tokens.yaml"), manifest).unwrap();
    let server = Server::start(&[
        "--probe=enforce",
        "--probe-allow",
        "127.0.0.0/8",
        "--secrets",
        secrets.path().to_str().unwrap(),
    ])
    .await;
    let cluster = |token: &str, label: &str| {
        json!({
            "apiVersion": "ceph.rook.io/v1", "kind": "CephCluster",
            "metadata": {"name": "bao", "namespace": "rook-ceph", "labels": {"edit": label}},
            "spec": {
                "security": {"kms": {
                    "connectionDetails": {"KMS_PROVIDER": "vault", "VAULT_ADDR": bao.addr(), "VAULT_BACKEND_PATH": "rook"},
                    "tokenSecretName": token}},
                "storage": {"storageClassDeviceSets": [{"name": "set1", "count": 1, "encrypted": true}]}}
        })
    };

    let denied =
        post(&server, "/validate", &admission_review("u1", "CREATE", &cluster("bao-bad", "a"), None)).await.json();
    assert_eq!(denied["response"]["allowed"], false, "{denied}");
    let message = denied["response"]["status"]["message"].as_str().unwrap();
    assert!(message.contains("rejected the token in Secret \"bao-bad\""), "{message}");

    for uid in ["u2", "u3"] {
        let allowed =
            post(&server, "/validate", &admission_review(uid, "CREATE", &cluster("bao-good", "a"), None)).await.json();
        assert_eq!(allowed["response"]["allowed"], true, "{allowed}");
        assert_eq!(allowed["response"]["uid"], uid);
    }
    let metrics = http_get(server.health, "/metrics").await.1;
    assert!(metrics.contains("rook_kms_webhook_probes_total{provider=\"vault\",result=\"ok\"} 1"), "{metrics}");
    assert!(metrics.contains("rook_kms_webhook_probes_total{provider=\"vault\",result=\"failed\"} 1"), "{metrics}");
    assert!(metrics.contains("rook_kms_webhook_probe_cache_hits_total{provider=\"vault\"} 1"), "{metrics}");
    assert!(
        metrics.contains("rook_kms_webhook_probe_duration_seconds_count{provider=\"vault\",result=\"failed\"} 1"),
        "{metrics}"
    );

    // An UPDATE that leaves the kms settings alone is not blocked by a failing probe: it warns.
    let old = cluster("bao-bad", "a");
    let edited = post(&server, "/validate", &admission_review("u4", "UPDATE", &cluster("bao-bad", "b"), Some(&old)))
        .await
        .json();
    assert_eq!(edited["response"]["allowed"], true, "{edited}");
    let warnings = edited["response"]["warnings"].to_string();
    assert!(warnings.contains("rejected the token"), "{warnings}");

    // The opt-out annotation skips the probe.
    let mut skipped = cluster("bao-bad", "a");
    skipped["metadata"]["annotations"] = json!({"rook-kms-webhook/probe": "skip"});
    let answer = post(&server, "/validate", &admission_review("u5", "CREATE", &skipped, None)).await.json();
    assert_eq!(answer["response"]["allowed"], true, "{answer}");
}

/// `--log-json`: every log line of the real binary is a JSON object; the request line carries the
/// uid, namespace/name, operation, verdict and latency, and no Secret value.
#[tokio::test]
async fn json_logs_one_line_per_request_without_secret_values() {
    use tokio::io::AsyncBufReadExt;
    let Workdir { dir: _dir, generated, tls, certs: c } = Workdir::new();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_rook-kms-webhook"))
        .args(["serve", "--listen", "127.0.0.1:0", "--health-listen", "127.0.0.1:0", "--probe=off", "--log-json"])
        .arg("--tls-cert")
        .arg(tls.join("tls.crt"))
        .arg("--tls-key")
        .arg(tls.join("tls.key"))
        .arg("--secrets")
        .arg(root().join("examples"))
        .arg("--secrets")
        .arg(&generated)
        .env("RUST_LOG", "info")
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let next_json = |line: Option<String>| -> Value {
        let line = line.expect("a log line");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"))
    };
    let serving = loop {
        let v = next_json(lines.next_line().await.unwrap());
        if v["fields"]["message"] == "serving" {
            break v;
        }
    };
    let addr: SocketAddr = serving["fields"]["listen"].as_str().unwrap().parse().unwrap();
    let object =
        example_clusters("examples/valid").into_iter().find(|o| o["metadata"]["name"] == "vault-token").unwrap();
    let reply = post_with(
        addr,
        client_config(&[&c.ca_cert]),
        "rook-kms-webhook.rook-ceph.svc",
        "/validate",
        serde_json::to_vec(&admission_review("uid-json-1", "CREATE", &object, None)).unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(reply.json()["response"]["allowed"], true);
    let line = loop {
        let v = next_json(lines.next_line().await.unwrap());
        if v["fields"]["message"] == "admission" {
            break v;
        }
    };
    let f = &line["fields"];
    assert_eq!(
        (f["uid"].as_str(), f["namespace"].as_str(), f["name"].as_str()),
        (Some("uid-json-1"), Some("rook-ceph"), Some("vault-token"))
    );
    assert_eq!((f["operation"].as_str(), f["verdict"].as_str()), (Some("CREATE"), Some("allowed")));
    assert!(f["latency_us"].as_u64().is_some(), "{line}");
    assert_eq!(line["level"], "INFO");
    let token_secret = std::fs::read_to_string(root().join("examples/valid/vault-token.yaml")).unwrap_or_default();
    for value in token_secret.lines().filter_map(|l| l.trim().strip_prefix("token: ")) {
        assert!(!line.to_string().contains(value.trim_matches('"')), "a Secret value was logged");
    }
    child.kill().await.unwrap();
}

/// A probe budget that does not fit in the request deadline is refused at start-up.
#[tokio::test]
async fn a_probe_budget_above_the_request_deadline_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let c = certs::generate(&certs::sans("rook-kms-webhook", "rook-ceph"), 30).unwrap();
    certs::write(dir.path(), &c).unwrap();
    let args = serve_args(
        &dir.path().join("tls.crt"),
        &dir.path().join("tls.key"),
        &[dir.path()],
        &["--probe=warn", "--probe-timeout", "4", "--request-timeout", "4"],
    );
    let err = serve::bind(args).await.err().expect("refused");
    assert_eq!(err.to_string(), "--probe-timeout (4 s) must be below --request-timeout (4 s)");
    let args = serve_args(
        &dir.path().join("tls.crt"),
        &dir.path().join("tls.key"),
        &[dir.path()],
        &["--probe-allow", "10.0.0.0/99"],
    );
    let err = serve::bind(args).await.err().expect("refused");
    assert!(err.to_string().starts_with("--probe-allow:"), "{err}");
}
