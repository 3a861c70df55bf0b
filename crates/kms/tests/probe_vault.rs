//! The live probe against a real Vault API server (OpenBao), plain and with mutual TLS.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure should stop the test

mod support;

use rook_kms::cluster::Cluster;
use rook_kms::probe::{self, ProbeOptions, ProbeReport, ProbeResult, Severity};
use rook_kms::secrets::ManifestSecrets;
use serde_json::{Value, json};
use support::components::OpenBao;
use support::pki::Pki;
use support::{NS, cluster};

const ROOK_POLICY: &str = r#"
path "rook/*" { capabilities = ["create", "read", "update", "delete", "list"] }
path "sys/mounts" { capabilities = ["read"] }
"#;

fn options() -> ProbeOptions {
    ProbeOptions { policy: probe_allow_loopback(), ..ProbeOptions::default() }
}

fn probe_allow_loopback() -> rook_kms::providers::net::NetPolicy {
    rook_kms::providers::net::NetPolicy::new(vec!["127.0.0.0/8".parse().unwrap()])
}

fn store(secrets: &[(&str, &[(&str, &str)])]) -> ManifestSecrets {
    let mut store = ManifestSecrets::default();
    for (name, data) in secrets {
        let data: serde_json::Map<String, Value> = data.iter().map(|(k, v)| ((*k).into(), json!(v))).collect();
        store.add(&json!({"metadata": {"name": name}, "stringData": data}), NS).unwrap();
    }
    store
}

/// Probes a CephCluster with these connectionDetails, token Secret `vault-token` = `token`, and
/// any further Secrets.
async fn probe_vault(details: &[(&str, &str)], token: &str, extra: &[(&str, &[(&str, &str)])]) -> ProbeReport {
    let mut details = details.to_vec();
    details.push(("KMS_PROVIDER", "vault"));
    let object = cluster(&details, Some("vault-token"));
    let mut secrets: Vec<(&str, &[(&str, &str)])> = extra.to_vec();
    let token_data = [("token", token)];
    secrets.push(("vault-token", &token_data));
    let store = store(&secrets);
    let cluster = Cluster::from_object(&object, NS).unwrap();
    let names = rook_kms::secrets::referenced_secrets(&cluster);
    let target = probe::target(&cluster, &store.snapshot(NS, &names)).expect("a probe target");
    probe::run(&target, &options()).await
}

fn assert_fails(report: &ProbeReport, field: &str, words: &[&str]) {
    assert_eq!(report.result, ProbeResult::Failed, "{report:#?}");
    let hit = report.findings.iter().find(|f| f.severity == Severity::Fail && f.field.ends_with(field));
    let f = hit.unwrap_or_else(|| panic!("no failure on {field}: {report:#?}"));
    for w in words {
        assert!(f.message.contains(w), "{w:?} not in {:?}", f.message);
    }
}

#[tokio::test]
async fn kv_v1_with_rooks_policy_passes() {
    let bao = OpenBao::dev();
    bao.mount_kv("rook", 1);
    let token = bao.token_with_policy("rook", ROOK_POLICY, json!({}));
    let details = [("VAULT_ADDR", bao.addr()), ("VAULT_BACKEND_PATH", "rook".into())];
    let details: Vec<(&str, &str)> = details.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let report = probe_vault(&details, &token, &[]).await;
    assert_eq!(report.result, ProbeResult::Ok, "{report:#?}");
}

#[tokio::test]
async fn kv_v2_with_rooks_policy_passes_and_a_wrong_declared_version_fails() {
    let bao = OpenBao::dev();
    bao.mount_kv("rook", 2);
    let token = bao.token_with_policy("rook", ROOK_POLICY, json!({}));
    let addr = bao.addr();
    let report = probe_vault(&[("VAULT_ADDR", &addr), ("VAULT_BACKEND_PATH", "rook/")], &token, &[]).await;
    assert_eq!(report.result, ProbeResult::Ok, "{report:#?}");
    let report =
        probe_vault(&[("VAULT_ADDR", &addr), ("VAULT_BACKEND_PATH", "rook"), ("VAULT_BACKEND", "v1")], &token, &[])
            .await;
    assert_fails(&report, "VAULT_BACKEND", &["KV v1", "KV v2", "set VAULT_BACKEND to v2"]);
}

#[tokio::test]
async fn a_policy_without_sys_mounts_fails_unless_the_backend_is_declared_as_kv() {
    let bao = OpenBao::dev();
    bao.mount_kv("rook", 2);
    let policy = r#"path "rook/*" { capabilities = ["create", "read", "update", "delete", "list"] }"#;
    let token = bao.token_with_policy("no-mounts", policy, json!({}));
    let addr = bao.addr();
    let report = probe_vault(&[("VAULT_ADDR", &addr), ("VAULT_BACKEND_PATH", "rook")], &token, &[]).await;
    assert_fails(&report, "VAULT_BACKEND", &["sys/mounts", "grant read on sys/mounts or set VAULT_BACKEND"]);
    // Rook's library also reads sys/mounts for v2 (only kv and kv-v2 skip the lookup).
    let report =
        probe_vault(&[("VAULT_ADDR", &addr), ("VAULT_BACKEND_PATH", "rook"), ("VAULT_BACKEND", "v2")], &token, &[])
            .await;
    assert_fails(&report, "VAULT_BACKEND", &["sys/mounts"]);
    let report =
        probe_vault(&[("VAULT_ADDR", &addr), ("VAULT_BACKEND_PATH", "rook"), ("VAULT_BACKEND", "kv-v2")], &token, &[])
            .await;
    assert_eq!(report.result, ProbeResult::Ok, "{report:#?}");
}

#[tokio::test]
async fn a_policy_without_delete_fails_naming_the_capability_and_path() {
    let bao = OpenBao::dev();
    bao.mount_kv("rook", 1);
    bao.mount_kv("rook2", 2);
    let policy = r#"
path "rook/*" { capabilities = ["create", "read", "update", "list"] }
path "rook2/data/*" { capabilities = ["create", "read", "update"] }
path "sys/mounts" { capabilities = ["read"] }
"#;
    let token = bao.token_with_policy("no-delete", policy, json!({}));
    let addr = bao.addr();
    let report = probe_vault(&[("VAULT_ADDR", &addr), ("VAULT_BACKEND_PATH", "rook")], &token, &[]).await;
    assert_fails(&report, "tokenSecretName", &["lacks delete", "rook/rook-ceph-osd-encryption-key-*"]);
    let report = probe_vault(&[("VAULT_ADDR", &addr), ("VAULT_BACKEND_PATH", "rook2")], &token, &[]).await;
    assert_fails(&report, "tokenSecretName", &["lacks delete", "rook2/metadata/rook-ceph-osd-encryption-key-*"]);
}

#[tokio::test]
async fn revoked_limited_and_short_lived_tokens() {
    let bao = OpenBao::dev();
    bao.mount_kv("rook", 1);
    let addr = bao.addr();
    let details = [("VAULT_ADDR", addr.as_str()), ("VAULT_BACKEND_PATH", "rook")];
    let token = bao.token_with_policy("rook", ROOK_POLICY, json!({}));
    bao.must("POST", "auth/token/revoke", json!({"token": token}));
    let report = probe_vault(&details, &token, &[]).await;
    assert_fails(&report, "tokenSecretName", &["rejected the token in Secret \"vault-token\"", "permission denied"]);
    assert!(report.findings.iter().all(|f| !f.message.contains(&token)), "the token is never echoed");

    let limited = bao.token_with_policy("rook", ROOK_POLICY, json!({"num_uses": 50}));
    let report = probe_vault(&details, &limited, &[]).await;
    assert_fails(&report, "tokenSecretName", &["limited to", "uses"]);

    let short = bao.token_with_policy("rook", ROOK_POLICY, json!({"ttl": "5h", "renewable": false}));
    let report = probe_vault(&details, &short, &[]).await;
    assert_eq!(report.result, ProbeResult::Warning, "{report:#?}");
    assert!(report.findings[0].message.contains("not renewable"), "{report:#?}");
}

#[tokio::test]
async fn a_wrong_mount_path_fails_and_lists_the_kv_mounts() {
    let bao = OpenBao::dev();
    bao.mount_kv("rook", 1);
    let token = bao.token_with_policy("rook", ROOK_POLICY, json!({}));
    let addr = bao.addr();
    let report = probe_vault(&[("VAULT_ADDR", &addr), ("VAULT_BACKEND_PATH", "rok")], &token, &[]).await;
    assert_fails(&report, "VAULT_BACKEND_PATH", &["no secrets engine is mounted at \"rok/\"", "\"rook/\""]);
    bao.must("POST", "sys/mounts/transit", json!({"type": "transit"}));
    let report = probe_vault(&[("VAULT_ADDR", &addr), ("VAULT_BACKEND_PATH", "transit")], &token, &[]).await;
    assert_fails(&report, "VAULT_BACKEND_PATH", &["is \"transit\", not kv"]);
}

#[tokio::test]
async fn a_namespace_is_honoured_as_rook_does() {
    let bao = OpenBao::dev();
    bao.must("POST", "sys/namespaces/team1", json!({}));
    let (s, body) = bao.api_as(
        "root",
        Some("team1"),
        "POST",
        "sys/mounts/rook",
        Some(&json!({"type": "kv", "options": {"version": "2"}})),
    );
    assert!(s < 300, "{s} {body}");
    let (s, body) =
        bao.api_as("root", Some("team1"), "PUT", "sys/policies/acl/rook", Some(&json!({"policy": ROOK_POLICY})));
    assert!(s < 300, "{s} {body}");
    let (s, body) =
        bao.api_as("root", Some("team1"), "POST", "auth/token/create", Some(&json!({"policies": ["rook"]})));
    assert!(s < 300, "{s} {body}");
    let token = body["auth"]["client_token"].as_str().unwrap().to_string();
    let addr = bao.addr();
    let with_ns = [("VAULT_ADDR", addr.as_str()), ("VAULT_BACKEND_PATH", "rook"), ("VAULT_NAMESPACE", "team1")];
    let report = probe_vault(&with_ns, &token, &[]).await;
    assert_eq!(report.result, ProbeResult::Ok, "{report:#?}");
    // Without the namespace the same token and mount are not found.
    let report = probe_vault(&with_ns[..2], &token, &[]).await;
    assert_eq!(report.result, ProbeResult::Failed, "{report:#?}");
}

#[tokio::test]
async fn mutual_tls_as_rook_configures_it() {
    let server_ca = Pki::new("vault server CA");
    let client_ca = Pki::new("vault client CA");
    let server = server_ca.server(&["vault.test", "localhost", "127.0.0.1"]);
    let bao = OpenBao::dev_with_tls(&server, &client_ca);
    bao.mount_kv("rook", 2);
    let token = bao.token_with_policy("rook", ROOK_POLICY, json!({}));
    let client = client_ca.valid_client("rook");
    let stranger = Pki::new("someone else").valid_client("rook");
    let addr = format!("https://127.0.0.1:{}", bao.tls_port.unwrap());
    let base = [
        ("VAULT_ADDR", addr.as_str()),
        ("VAULT_BACKEND_PATH", "rook"),
        ("VAULT_CACERT", "vault-ca"),
        ("VAULT_CLIENT_CERT", "vault-client-cert"),
        ("VAULT_CLIENT_KEY", "vault-client-key"),
    ];
    let secrets = |ca: &str, cert: &str, key: &str| -> Vec<(String, Vec<(String, String)>)> {
        vec![
            ("vault-ca".into(), vec![("cert".into(), ca.into())]),
            ("vault-client-cert".into(), vec![("cert".into(), cert.into())]),
            ("vault-client-key".into(), vec![("key".into(), key.into())]),
        ]
    };
    let run = |details: Vec<(&'static str, String)>, s: Vec<(String, Vec<(String, String)>)>| {
        let token = token.clone();
        async move {
            let owned: Vec<(String, Vec<(String, String)>)> = s;
            let data: Vec<Vec<(&str, &str)>> =
                owned.iter().map(|(_, d)| d.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()).collect();
            let extra: Vec<(&str, &[(&str, &str)])> =
                owned.iter().zip(&data).map(|((n, _), d)| (n.as_str(), d.as_slice())).collect();
            let details: Vec<(&str, &str)> = details.iter().map(|(k, v)| (*k, v.as_str())).collect();
            probe_vault(&details, &token, &extra).await
        }
    };
    let owned = |extra: &[(&'static str, &str)]| -> Vec<(&'static str, String)> {
        base.iter()
            .filter(|(k, _)| !extra.iter().any(|(e, _)| e == k))
            .map(|(k, v)| (*k, v.to_string()))
            .chain(extra.iter().map(|(k, v)| (*k, v.to_string())))
            .collect()
    };

    let ok = run(owned(&[]), secrets(&server_ca.ca_pem, &client.cert_pem, &client.key_pem)).await;
    assert_eq!(ok.result, ProbeResult::Ok, "{ok:#?}");

    let wrong_ca = run(owned(&[]), secrets(&client_ca.ca_pem, &client.cert_pem, &client.key_pem)).await;
    assert_fails(&wrong_ca, "VAULT_ADDR", &["not signed by a CA in VAULT_CACERT"]);

    let refused = run(owned(&[]), secrets(&server_ca.ca_pem, &stranger.cert_pem, &stranger.key_pem)).await;
    assert_fails(&refused, "VAULT_ADDR", &["client certificate"]);

    let name = run(
        owned(&[
            ("VAULT_ADDR", &format!("https://localhost:{}", bao.tls_port.unwrap())),
            ("VAULT_TLS_SERVER_NAME", "vault.test"),
        ]),
        secrets(&server_ca.ca_pem, &client.cert_pem, &client.key_pem),
    )
    .await;
    assert_eq!(name.result, ProbeResult::Ok, "{name:#?}");
    let bad_name = run(
        owned(&[("VAULT_TLS_SERVER_NAME", "vault.elsewhere")]),
        secrets(&server_ca.ca_pem, &client.cert_pem, &client.key_pem),
    )
    .await;
    assert_fails(&bad_name, "VAULT_ADDR", &["not valid for the server name"]);

    let skip =
        run(owned(&[("VAULT_SKIP_VERIFY", "true")]), secrets(&client_ca.ca_pem, &client.cert_pem, &client.key_pem))
            .await;
    assert_eq!(skip.result, ProbeResult::Ok, "VAULT_SKIP_VERIFY accepts any server certificate: {skip:#?}");
}

#[tokio::test]
async fn nothing_listening_and_refused_addresses_fail_fast() {
    let port = support::components::free_port();
    let addr = format!("http://127.0.0.1:{port}");
    let started = std::time::Instant::now();
    let report = probe_vault(&[("VAULT_ADDR", &addr)], "t", &[]).await;
    assert_fails(&report, "VAULT_ADDR", &["connection refused"]);
    assert!(started.elapsed() < std::time::Duration::from_secs(3));
    let report = probe_vault(&[("VAULT_ADDR", "http://169.254.169.254/")], "t", &[]).await;
    assert_fails(&report, "VAULT_ADDR", &["cloud metadata"]);
}
