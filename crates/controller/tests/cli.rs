//! The admin CLI end to end: Rook's default Secret store in a directory, and a migration from it
//! to a real Vault (OpenBao), read back through OpenBao's own API.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure should stop the test

#[path = "../../kms/tests/support/pki.rs"]
mod pki;

#[path = "../../kms/tests/support/components.rs"]
mod components;

use std::path::Path;
use std::process::Command;

use serde_json::json;

fn run(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_rook-kms-controller")).current_dir(dir).args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

const DEFAULT_KMS: &str = "apiVersion: ceph.rook.io/v1\nkind: CephCluster\nmetadata: {name: c, namespace: rook-ceph}\nspec:\n  storage:\n    storageClassDeviceSets: [{name: set1, count: 2, encrypted: true}]\n";

fn vault_cluster(addr: &str) -> String {
    format!(
        "apiVersion: ceph.rook.io/v1\nkind: CephCluster\nmetadata: {{name: c, namespace: rook-ceph}}\nspec:\n  security:\n    kms:\n      connectionDetails: {{KMS_PROVIDER: vault, VAULT_ADDR: '{addr}', VAULT_BACKEND_PATH: rook, VAULT_BACKEND: v2}}\n      tokenSecretName: vault-token\n  storage:\n    storageClassDeviceSets: [{{name: set1, count: 2, encrypted: true}}]\n---\napiVersion: v1\nkind: Secret\nmetadata: {{name: vault-token, namespace: rook-ceph}}\nstringData: {{token: root}}\n"
    )
}

#[test]
fn keys_in_rooks_default_secret_store() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("cluster.yaml"), DEFAULT_KMS).unwrap();
    fn with<'a>(extra: &[&'a str]) -> Vec<&'a str> {
        [&["keys", "--cluster", "cluster.yaml"][..], extra].concat()
    }

    let (code, out, err) = run(dir.path(), &with(&["put", "set1-data-0-abc"]));
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.starts_with("created  set1-data-0-abc sha256:"), "{out}");
    let file = dir.path().join("key-secrets/rook-ceph-osd-encryption-key-set1-data-0-abc.yaml");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);
    let manifest: serde_json::Value = serde_norway::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(manifest["type"], "kubernetes.io/rook");
    assert_eq!(manifest["metadata"]["namespace"], "rook-ceph");
    assert_eq!(manifest["metadata"]["labels"]["pvc_name"], "set1-data-0-abc");

    let (_, revealed, _) = run(dir.path(), &with(&["get", "set1-data-0-abc", "--reveal"]));
    let revealed = revealed.trim();
    assert_eq!(revealed.len(), 172, "Rook's key: base64 of 128 bytes");
    use base64::Engine as _;
    let stored =
        base64::engine::general_purpose::STANDARD.decode(manifest["data"]["dmcrypt-key"].as_str().unwrap()).unwrap();
    assert_eq!(stored, revealed.as_bytes(), "the Secret holds the key text under dmcrypt-key");
    let (_, shown, _) = run(dir.path(), &with(&["get", "set1-data-0-abc"]));
    assert!(shown.contains("sha256:") && !shown.contains(revealed), "{shown}");

    let (code, out, _) = run(dir.path(), &with(&["put", "set1-data-0-abc"]));
    assert_eq!(code, 0);
    assert!(out.contains("kept; keys are never overwritten"), "{out}");
    let (code, out, _) = run(dir.path(), &with(&["verify", "set1-data-0-abc", "set1-data-1-def"]));
    assert_eq!(code, 1, "a missing key fails verify: {out}");
    assert!(out.contains("OK       set1-data-0-abc sha256:") && out.contains("MISSING  set1-data-1-def"), "{out}");
    let (_, out, _) = run(dir.path(), &with(&["list"]));
    assert_eq!(out.trim(), "set1-data-0-abc");

    let (code, _, err) = run(dir.path(), &with(&["delete", "set1-data-0-abc"]));
    assert_eq!(code, 2);
    assert!(err.contains("--yes"), "{err}");
    let (code, out, _) = run(dir.path(), &with(&["delete", "set1-data-0-abc", "--yes"]));
    assert_eq!((code, out.trim()), (0, "deleted  set1-data-0-abc"));
    assert!(!file.exists());
}

#[test]
fn migrate_from_secrets_to_vault_then_resume() {
    let bao = components::OpenBao::dev();
    bao.mount_kv("rook", 2);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("old.yaml"), DEFAULT_KMS).unwrap();
    std::fs::write(dir.path().join("new.yaml"), vault_cluster(&bao.addr())).unwrap();
    for pvc in ["set1-data-0-abc", "set1-data-1-def"] {
        assert_eq!(run(dir.path(), &["keys", "--cluster", "old.yaml", "put", pvc]).0, 0);
    }
    let migrate = ["migrate", "--cluster", "old.yaml", "--to", "new.yaml", "--allow", "127.0.0.0/8"];
    let (code, out, err) = run(dir.path(), &migrate);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("set1-data-0-abc: would copy (dry run") && out.contains("(dry run)"), "{out}");
    assert_eq!(bao.api("GET", "rook/data/rook-ceph-osd-encryption-key-set1-data-0-abc", None).0, 404);

    let (code, out, err) = run(dir.path(), &[&migrate[..], &["--apply"]].concat());
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("set1-data-1-def: copied and verified") && out.contains("allow-kms-change"), "{out}");
    // The key in Vault is exactly the one in the Secret (an independent read through OpenBao).
    let (_, revealed, _) = run(dir.path(), &["keys", "--cluster", "old.yaml", "get", "set1-data-1-def", "--reveal"]);
    let name = "rook-ceph-osd-encryption-key-set1-data-1-def";
    let (status, body) = bao.api("GET", &format!("rook/data/{name}"), None);
    assert_eq!(status, 200);
    assert_eq!(body["data"]["data"][name], json!(revealed.trim()));

    let (code, out, _) = run(dir.path(), &[&migrate[..], &["--apply"]].concat());
    assert_eq!(code, 0);
    assert_eq!(out.matches("already in the new store").count(), 2, "{out}");
    let (code, out, _) = run(dir.path(), &["keys", "--cluster", "new.yaml", "--allow", "127.0.0.0/8", "verify"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("2 keys checked in the vault store"), "{out}");
}

#[test]
fn unusable_input_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("none.yaml"), "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n").unwrap();
    let (code, _, err) = run(dir.path(), &["keys", "--cluster", "none.yaml", "list"]);
    assert_eq!(code, 2);
    assert!(err.contains("none.yaml: holds no CephCluster"), "{err}");
    let no_token = vault_cluster("https://vault.example.com:8200").split("---").next().unwrap().to_string();
    std::fs::write(dir.path().join("vault.yaml"), no_token).unwrap();
    let (code, _, err) = run(dir.path(), &["keys", "--cluster", "vault.yaml", "list"]);
    assert_eq!(code, 2);
    assert!(err.contains("a Secret they name is missing"), "{err}");
    let (code, _, err) = run(dir.path(), &["keys", "--cluster", "missing.yaml", "list"]);
    assert_eq!(code, 2);
    assert!(err.contains("missing.yaml"), "{err}");
}

/// `keys --live`: the CephCluster and its token Secret come from the Kubernetes API. TEST DOUBLE:
/// no kube-apiserver can run here, so a tower service answers the two reads as a real API server
/// does; the KMS behind them is a real OpenBao.
#[tokio::test]
async fn live_keys_read_the_cluster_and_secrets_from_the_api() {
    use http_body_util::Full;
    use hyper::body::Bytes;
    use rook_kms_controller::admin::{KeysArgs, KeysCommand, Source, keys_live};

    let bao = components::OpenBao::dev();
    bao.mount_kv("rook", 2);
    let name = "rook-ceph-osd-encryption-key-set1-data-0-abc";
    bao.must("POST", &format!("rook/data/{name}"), json!({"data": {name: "a2V5"}}));
    let cluster = json!({
        "apiVersion": "ceph.rook.io/v1", "kind": "CephCluster",
        "metadata": {"name": "c", "namespace": "rook-ceph", "uid": "u-1", "resourceVersion": "9"},
        "spec": {"security": {"kms": {"connectionDetails": {"KMS_PROVIDER": "vault", "VAULT_ADDR": bao.addr(), "VAULT_BACKEND_PATH": "rook"}, "tokenSecretName": "vault-token"}},
                 "storage": {"storageClassDeviceSets": [{"name": "set1", "count": 1, "encrypted": true}]}}
    });
    let token = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "vault-token", "namespace": "rook-ceph"}, "data": {"token": "cm9vdA=="}, "type": "Opaque"});
    let not_found = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "reason": "NotFound", "code": 404});
    let service = tower::service_fn(move |req: hyper::Request<kube::client::Body>| {
        let (status, body) = match req.uri().path() {
            "/apis/ceph.rook.io/v1/namespaces/rook-ceph/cephclusters/c" => (200, cluster.clone()),
            "/api/v1/namespaces/rook-ceph/secrets/vault-token" => (200, token.clone()),
            _ => (404, not_found.clone()),
        };
        async move {
            Ok::<_, std::convert::Infallible>(
                hyper::Response::builder()
                    .status(status)
                    .header("content-type", "application/json")
                    .body(Full::new(Bytes::from(body.to_string())))
                    .unwrap(),
            )
        }
    });
    let client = kube::Client::new(service, "default");
    let args = |command| KeysArgs {
        source: Source {
            cluster: None,
            live: Some("rook-ceph/c".into()),
            secrets: vec![],
            key_secrets: "unused".into(),
            namespace: "default".into(),
            allow: vec!["127.0.0.0/8".into()],
            ca_file: None,
            timeout: 5.0,
        },
        command,
    };
    let ok =
        keys_live(client.clone(), "rook-ceph/c", &args(KeysCommand::Verify { pvcs: vec!["set1-data-0-abc".into()] }))
            .await
            .unwrap();
    assert!(ok, "the key Rook would read is there");
    let missing =
        keys_live(client.clone(), "rook-ceph/c", &args(KeysCommand::Verify { pvcs: vec!["set1-data-1-def".into()] }))
            .await
            .unwrap();
    assert!(!missing);
    let err = keys_live(client.clone(), "rook-ceph/other", &args(KeysCommand::List)).await.unwrap_err();
    assert_eq!(err.to_string(), "CephCluster rook-ceph/other not found");
    assert!(keys_live(client, "no-slash", &args(KeysCommand::List)).await.is_err());
}
