//! The live probe against a real KMIP server (PyKMIP) and the IBM Key Protect test double, and
//! the double's contract with IBM's official client.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure should stop the test

mod support;

use std::time::{Duration, Instant};

use rook_kms::cluster::Cluster;
use rook_kms::probe::{self, ProbeOptions, ProbeReport, ProbeResult, ProbeTarget};
use rook_kms::providers::net::NetPolicy;
use rook_kms::secrets::ManifestSecrets;
use serde_json::{Value, json};
use support::components::{KeyProtectDouble, PyKmip, Silent, free_port, root, venv_bin};
use support::pki::{Leaf, Pki};
use support::{NS, cluster};

fn options(extra_roots: &[&Pki]) -> ProbeOptions {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    ProbeOptions {
        policy: NetPolicy::new(vec!["127.0.0.0/8".parse().unwrap()]),
        extra_roots: extra_roots
            .iter()
            .flat_map(|p| CertificateDer::pem_slice_iter(p.ca_pem.as_bytes()).map(Result::unwrap).collect::<Vec<_>>())
            .collect(),
        ..ProbeOptions::default()
    }
}

fn target(details: &[(&str, &str)], secret: &str, data: &[(&str, &str)]) -> ProbeTarget {
    let object = cluster(details, Some(secret));
    let data: serde_json::Map<String, Value> = data.iter().map(|(k, v)| ((*k).into(), json!(v))).collect();
    let mut store = ManifestSecrets::default();
    store.add(&json!({"metadata": {"name": secret}, "stringData": data}), NS).unwrap();
    let cluster = Cluster::from_object(&object, NS).unwrap();
    let names = rook_kms::secrets::referenced_secrets(&cluster);
    probe::target(&cluster, &store.snapshot(NS, &names)).expect("a probe target")
}

fn kmip_target(endpoint: &str, ca: &Pki, client: &Leaf) -> ProbeTarget {
    target(
        &[("KMS_PROVIDER", "kmip"), ("KMIP_ENDPOINT", endpoint)],
        "kmip-creds",
        &[("CA_CERT", &ca.ca_pem), ("CLIENT_CERT", &client.cert_pem), ("CLIENT_KEY", &client.key_pem)],
    )
}

fn failure(report: &ProbeReport) -> &str {
    assert_eq!(report.result, ProbeResult::Failed, "{report:#?}");
    &report.findings[0].message
}

#[tokio::test]
async fn kmip_probe_against_pykmip() {
    let server_ca = Pki::new("kmip server CA");
    let client_ca = Pki::new("kmip client CA");
    let server = server_ca.server(&["kmip.test", "localhost", "127.0.0.1"]);
    let kmip = PyKmip::start(&server, &server_ca, &client_ca);
    let endpoint = format!("127.0.0.1:{}", kmip.port);
    let client = client_ca.valid_client("rook");

    let ok = probe::run(&kmip_target(&endpoint, &server_ca, &client), &options(&[])).await;
    assert_eq!(ok.result, ProbeResult::Ok, "{ok:#?}");

    // A client certificate from another CA: the server refuses the handshake.
    let stranger = Pki::new("another CA").valid_client("rook");
    let refused = probe::run(&kmip_target(&endpoint, &server_ca, &stranger), &options(&[])).await;
    let message = failure(&refused);
    assert!(
        message.contains("refused the client certificate") || message.contains("closed the connection"),
        "{message}"
    );
    assert!(refused.findings[0].field.ends_with("tokenSecretName"));

    // Our CA_CERT does not know the server's CA.
    let unknown = probe::run(&kmip_target(&endpoint, &client_ca, &client), &options(&[])).await;
    assert!(failure(&unknown).contains("not signed by a CA in CA_CERT"), "{unknown:#?}");

    // TLS_SERVER_NAME picks the name the certificate is checked against.
    let mut named = kmip_target(&endpoint, &server_ca, &client);
    if let ProbeTarget::Kmip(k) = &mut named {
        k.server_name = Some("kmip.other".into());
    }
    assert!(failure(&probe::run(&named, &options(&[])).await).contains("not valid for the server name"));
}

#[tokio::test]
async fn kmip_probe_when_nothing_listens_or_nothing_answers() {
    let ca = Pki::new("ca");
    let client = ca.valid_client("rook");
    let closed = probe::run(&kmip_target(&format!("127.0.0.1:{}", free_port()), &ca, &client), &options(&[])).await;
    assert!(failure(&closed).contains("connection refused"), "{closed:#?}");

    // A listener that accepts and never answers: the probe ends within its budget.
    let silent = Silent::start();
    let mut opts = options(&[]);
    opts.budget = Duration::from_millis(800);
    opts.connect_timeout = Duration::from_secs(5);
    let started = Instant::now();
    let hung = probe::run(&kmip_target(&format!("127.0.0.1:{}", silent.port), &ca, &client), &opts).await;
    assert!(started.elapsed() < Duration::from_millis(1500), "took {:?}", started.elapsed());
    assert_eq!(hung.result, ProbeResult::Timeout, "{hung:#?}");
    assert!(hung.findings[0].message.contains("did not answer within 0.8 s"), "{hung:#?}");

    // The webhook's own loopback is refused unless allowed.
    let strict = ProbeOptions::default();
    let refused = probe::run(&kmip_target(&format!("127.0.0.1:{}", silent.port), &ca, &client), &strict).await;
    assert!(failure(&refused).contains("loopback"), "{refused:#?}");
}

const INSTANCE: &str = "0f0e1d2c-3b4a-4968-8766-554433221100";

fn ibm_target(port: u16, api_key: &str, instance: &str) -> ProbeTarget {
    let base = format!("https://localhost:{port}");
    let token = format!("https://127.0.0.1:{port}/oidc/token");
    target(
        &[
            ("KMS_PROVIDER", "ibmkeyprotect"),
            ("IBM_KP_SERVICE_INSTANCE_ID", instance),
            ("IBM_KP_BASE_URL", &base),
            ("IBM_KP_TOKEN_URL", &token),
        ],
        "ibm-key",
        &[("IBM_KP_SERVICE_API_KEY", api_key)],
    )
}

#[tokio::test]
async fn key_protect_probe_against_the_test_double() {
    let ca = Pki::new("ibm double CA");
    let double = KeyProtectDouble::start(&ca.server(&["localhost", "127.0.0.1"]), "good-api-key", INSTANCE);
    let trusted = options(&[&ca]);

    let ok = probe::run(&ibm_target(double.port, "good-api-key", INSTANCE), &trusted).await;
    assert_eq!(ok.result, ProbeResult::Ok, "{ok:#?}");

    let bad_key = probe::run(&ibm_target(double.port, "stolen-api-key", INSTANCE), &trusted).await;
    let message = failure(&bad_key);
    assert!(
        message.contains("rejected the API key in Secret \"ibm-key\"") && message.contains("BXNIM0415E"),
        "{message}"
    );
    assert!(!message.contains("stolen-api-key"), "the API key is never echoed");

    let other = "11111111-2222-4333-8444-555555555555";
    let wrong_instance = probe::run(&ibm_target(double.port, "good-api-key", other), &trusted).await;
    assert!(failure(&wrong_instance).contains("refused instance"), "{wrong_instance:#?}");
    assert!(wrong_instance.findings[0].field.ends_with("IBM_KP_SERVICE_INSTANCE_ID"));

    // Without the double's CA the public roots do not trust it.
    let untrusted = probe::run(&ibm_target(double.port, "good-api-key", INSTANCE), &options(&[])).await;
    assert!(failure(&untrusted).contains("not signed by a CA in the public roots"), "{untrusted:#?}");
}

#[test]
fn the_double_speaks_ibms_api_for_ibms_own_client() {
    let ca = Pki::new("ibm double CA");
    let double = KeyProtectDouble::start(&ca.server(&["localhost", "127.0.0.1"]), "good-api-key", INSTANCE);
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.crt");
    std::fs::write(&ca_file, &ca.ca_pem).unwrap();
    let out = std::process::Command::new(venv_bin("python"))
        .arg(root().join("tests/doubles/keyprotect_contract.py"))
        .arg(format!("https://localhost:{}", double.port))
        .arg(&ca_file)
        .args(["good-api-key", INSTANCE])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "IBM's client disagrees with the double:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// PyKMIP with an RSA server certificate offers only ECDHE-ECDSA suites on TLS 1.2, which rustls
/// cannot use with an RSA key: the probe says there is no common cipher suite.
#[tokio::test]
async fn kmip_probe_names_a_missing_common_cipher_suite() {
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n).display().to_string();
    let status = std::process::Command::new("openssl")
        .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1"])
        .args(["-addext", "subjectAltName=IP:127.0.0.1", "-keyout", &p("rsa.key"), "-out", &p("rsa.crt")])
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "openssl could not make an RSA certificate");
    let rsa = Leaf {
        cert_pem: std::fs::read_to_string(p("rsa.crt")).unwrap(),
        key_pem: std::fs::read_to_string(p("rsa.key")).unwrap(),
    };
    let client_ca = Pki::new("kmip client CA");
    let kmip = PyKmip::start_with_chain(&rsa, "", &client_ca);
    let client = client_ca.valid_client("rook");
    let target = target(
        &[("KMS_PROVIDER", "kmip"), ("KMIP_ENDPOINT", &format!("127.0.0.1:{}", kmip.port))],
        "kmip-creds",
        &[("CA_CERT", &rsa.cert_pem), ("CLIENT_CERT", &client.cert_pem), ("CLIENT_KEY", &client.key_pem)],
    );
    let report = probe::run(&target, &options(&[])).await;
    assert!(failure(&report).contains("no common TLS version or cipher suite"), "{report:#?}");
}

/// A loopback KMIP responder built on our own codec, for server behaviours PyKMIP does not have:
/// it answers DiscoverVersions with `minors` (1.x) and Query with `operations` (or refuses Query
/// when `None`), on one mutual-TLS connection.
async fn kmip_responder(server_ca: &Pki, minors: Vec<i32>, operations: Option<Vec<u32>>) -> u16 {
    use rook_kms::providers::kmip::ttlv::{Item, Value as T, tag};
    use rustls::pki_types::pem::PemObject;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let server = server_ca.server(&["127.0.0.1"]);
    let certs = vec![rustls::pki_types::CertificateDer::from_pem_slice(server.cert_pem.as_bytes()).unwrap()];
    let key = rustls::pki_types::PrivateKeyDer::from_pem_slice(server.key_pem.as_bytes()).unwrap();
    let config =
        rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut tls = acceptor.accept(tcp).await.unwrap();
        let version = |minor| {
            Item::structure(
                tag::PROTOCOL_VERSION,
                vec![
                    Item::new(tag::PROTOCOL_VERSION_MAJOR, T::Integer(1)),
                    Item::new(tag::PROTOCOL_VERSION_MINOR, T::Integer(minor)),
                ],
            )
        };
        loop {
            let mut header = [0u8; 8];
            if tls.read_exact(&mut header).await.is_err() {
                return;
            }
            let mut rest = vec![0u8; rook_kms::providers::kmip::ttlv::frame_length(&header).unwrap() - 8];
            tls.read_exact(&mut rest).await.unwrap();
            let request = Item::decode(&[header.to_vec(), rest].concat()).unwrap();
            let batch = request.child(tag::BATCH_ITEM).unwrap();
            let op = batch.child(tag::OPERATION).unwrap().as_enum().unwrap();
            let mut item = vec![
                batch.child(tag::OPERATION).unwrap().clone(),
                batch.child(tag::UNIQUE_BATCH_ITEM_ID).unwrap().clone(),
            ];
            match (op, &operations) {
                (0x1E, _) => {
                    item.push(Item::new(tag::RESULT_STATUS, T::Enumeration(0)));
                    item.push(Item::structure(tag::RESPONSE_PAYLOAD, minors.iter().map(|m| version(*m)).collect()));
                }
                (0x18, Some(ops)) => {
                    item.push(Item::new(tag::RESULT_STATUS, T::Enumeration(0)));
                    item.push(Item::structure(
                        tag::RESPONSE_PAYLOAD,
                        ops.iter().map(|o| Item::new(tag::OPERATION, T::Enumeration(*o))).collect(),
                    ));
                }
                _ => {
                    item.push(Item::new(tag::RESULT_STATUS, T::Enumeration(1)));
                    item.push(Item::new(tag::RESULT_REASON, T::Enumeration(0x0C)));
                }
            }
            let response = Item::structure(
                tag::RESPONSE_MESSAGE,
                vec![
                    Item::structure(
                        tag::RESPONSE_HEADER,
                        vec![
                            version(4),
                            Item::new(tag::TIME_STAMP, T::DateTime(0)),
                            Item::new(tag::BATCH_COUNT, T::Integer(1)),
                        ],
                    ),
                    Item::structure(tag::BATCH_ITEM, item),
                ],
            );
            tls.write_all(&response.encode()).await.unwrap();
            tls.flush().await.unwrap();
        }
    });
    port
}

#[tokio::test]
async fn kmip_probe_refuses_a_server_without_kmip_1_4() {
    let (server_ca, client_ca) = (Pki::new("kmip server CA"), Pki::new("kmip client CA"));
    let port = kmip_responder(&server_ca, vec![2, 1], Some(vec![3, 0x0A, 0x14])).await;
    let report = probe::run(
        &kmip_target(&format!("127.0.0.1:{port}"), &server_ca, &client_ca.valid_client("rook")),
        &options(&[]),
    )
    .await;
    let message = failure(&report);
    assert!(message.contains("does not offer KMIP 1.4 (it answered [1.2, 1.1])"), "{message}");
}

#[tokio::test]
async fn kmip_probe_checks_the_operations_rook_uses() {
    let (server_ca, client_ca) = (Pki::new("kmip server CA"), Pki::new("kmip client CA"));
    let client = client_ca.valid_client("rook");
    let port = kmip_responder(&server_ca, vec![4], Some(vec![3, 0x0A, 0x18, 0x1E])).await;
    let report = probe::run(&kmip_target(&format!("127.0.0.1:{port}"), &server_ca, &client), &options(&[])).await;
    assert!(failure(&report).contains("does not support Destroy"), "{report:#?}");

    // A server that refuses Query (policy) is only a warning: nothing was learnt either way.
    let port = kmip_responder(&server_ca, vec![4], None).await;
    let report = probe::run(&kmip_target(&format!("127.0.0.1:{port}"), &server_ca, &client), &options(&[])).await;
    assert_eq!(report.result, ProbeResult::Warning, "{report:#?}");
    assert!(report.findings[0].message.contains("did not answer Query"), "{report:#?}");
}
