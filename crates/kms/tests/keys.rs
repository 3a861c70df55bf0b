//! Rook-compatible key operations against real servers: OpenBao (KV v1, v2, a namespace), PyKMIP,
//! and the IBM Key Protect test double; independent reads prove the paths, field names, formats and
//! values are exactly Rook's; a migration between KMSs compares every key.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure should stop the test

mod support;

use rook_kms::cluster::Cluster;
use rook_kms::keys::kube::{MemorySecrets, SecretStore};
use rook_kms::keys::store::{KeyStore, Migrated, migrate};
use rook_kms::keys::{Kek, PutOutcome};
use rook_kms::probe::ProbeOptions;
use rook_kms::providers::net::NetPolicy;
use rook_kms::secrets::ManifestSecrets;
use serde_json::{Value, json};
use support::components::{KeyProtectDouble, OpenBao, PyKmip, venv_bin};
use support::pki::{Leaf, Pki};
use support::{NS, cluster};

fn options(roots: &[&Pki]) -> ProbeOptions {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    ProbeOptions {
        policy: NetPolicy::new(vec!["127.0.0.0/8".parse().unwrap()]),
        extra_roots: roots.iter().map(|p| CertificateDer::from_pem_slice(p.ca_pem.as_bytes()).unwrap()).collect(),
        ..ProbeOptions::default()
    }
}

fn snapshot_for(
    object: &Value,
    secrets: &[(&str, Vec<(&str, String)>)],
) -> (Cluster, rook_kms::secrets::SecretSnapshot) {
    let mut store = ManifestSecrets::default();
    for (name, data) in secrets {
        let data: serde_json::Map<String, Value> = data.iter().map(|(k, v)| ((*k).into(), json!(v))).collect();
        store.add(&json!({"metadata": {"name": name}, "stringData": data}), NS).unwrap();
    }
    let cluster = Cluster::from_object(object, NS).unwrap();
    let names = rook_kms::secrets::referenced_secrets(&cluster);
    let snapshot = store.snapshot(NS, &names);
    (cluster, snapshot)
}

fn vault_store<'a>(
    bao: &OpenBao,
    token: &str,
    details: &[(&str, &str)],
    secrets: &'a MemorySecrets,
) -> KeyStore<'a, MemorySecrets> {
    let addr = bao.addr();
    let mut d = vec![("KMS_PROVIDER", "vault"), ("VAULT_ADDR", addr.as_str())];
    d.extend_from_slice(details);
    let (cluster, snapshot) =
        snapshot_for(&cluster(&d, Some("vault-token")), &[("vault-token", vec![("token", token.to_string())])]);
    KeyStore::for_cluster(&cluster, &snapshot, secrets, options(&[])).unwrap()
}

async fn exercise_vault(
    bao: &OpenBao,
    store: &KeyStore<'_, MemorySecrets>,
    read: impl Fn(&str) -> (u16, Value),
    v2: bool,
) {
    let pvc = "set1-data-0-abcde";
    let name = format!("rook-ceph-osd-encryption-key-{pvc}");
    let kek = Kek::generate().unwrap();
    assert_eq!(store.put(pvc, &kek).await.unwrap(), PutOutcome::Created);
    // Read back through OpenBao's own API: Rook's path and field name, Rook's value.
    let (status, body) = read(&name);
    assert_eq!(status, 200, "{body}");
    let field = if v2 { body["data"]["data"][&name].clone() } else { body["data"][&name].clone() };
    assert_eq!(field, json!(kek.expose()), "{body}");
    // Never overwrites.
    assert_eq!(store.put(pvc, &Kek::generate().unwrap()).await.unwrap(), PutOutcome::Exists { same: false });
    assert_eq!(store.get(pvc).await.unwrap(), Some(kek.clone()));
    // Rotation overwrites (KV v2: a new version).
    let rotated = Kek::generate().unwrap();
    store.update(pvc, &rotated).await.unwrap();
    assert_eq!(store.get(pvc).await.unwrap(), Some(rotated));
    assert_eq!(store.list().await.unwrap(), [pvc]);
    // Delete: KV v2 removes every version (the metadata is gone).
    assert!(store.delete(pvc).await.unwrap());
    assert_eq!(store.get(pvc).await.unwrap(), None);
    assert_eq!(read(&name).0, 404);
    let _ = bao;
}

#[tokio::test]
async fn vault_kv_v1_and_v2_and_a_key_rook_wrote() {
    let bao = OpenBao::dev();
    bao.mount_kv("rook", 1);
    bao.mount_kv("rook2", 2);
    let policy = r#"
path "rook/*" { capabilities = ["create", "read", "update", "delete", "list"] }
path "rook2/*" { capabilities = ["create", "read", "update", "delete", "list"] }
path "sys/mounts" { capabilities = ["read"] }
"#;
    let token = bao.token_with_policy("rook", policy, json!({}));
    let secrets = MemorySecrets::default();

    let v1 = vault_store(&bao, &token, &[("VAULT_BACKEND_PATH", "rook")], &secrets);
    exercise_vault(&bao, &v1, |name| bao.api("GET", &format!("rook/{name}"), None), false).await;
    let v2 = vault_store(&bao, &token, &[("VAULT_BACKEND_PATH", "rook2/")], &secrets);
    exercise_vault(&bao, &v2, |name| bao.api("GET", &format!("rook2/data/{name}"), None), true).await;

    // A key written the way Rook writes it (KV v2 body), read by ours.
    let rooks = Kek::generate().unwrap();
    let name = "rook-ceph-osd-encryption-key-set1-data-1-fghij";
    bao.must("POST", &format!("rook2/data/{name}"), json!({"data": {name: rooks.expose()}}));
    assert_eq!(v2.get("set1-data-1-fghij").await.unwrap(), Some(rooks));
}

#[tokio::test]
async fn vault_inside_a_namespace() {
    let bao = OpenBao::dev();
    bao.must("POST", "sys/namespaces/team1", json!({}));
    let (s, _) = bao.api_as(
        "root",
        Some("team1"),
        "POST",
        "sys/mounts/rook",
        Some(&json!({"type": "kv", "options": {"version": "2"}})),
    );
    assert!(s < 300);
    let secrets = MemorySecrets::default();
    let store = vault_store(&bao, "root", &[("VAULT_BACKEND_PATH", "rook"), ("VAULT_NAMESPACE", "team1")], &secrets);
    // Rook puts the namespace in the path; the independent read uses the header instead.
    exercise_vault(
        &bao,
        &store,
        |name| bao.api_as("root", Some("team1"), "GET", &format!("rook/data/{name}"), None),
        true,
    )
    .await;
}

fn kmip_store<'a>(port: u16, ca: &Pki, client: &Leaf, secrets: &'a MemorySecrets) -> KeyStore<'a, MemorySecrets> {
    let endpoint = format!("127.0.0.1:{port}");
    let (cluster, snapshot) = snapshot_for(
        &cluster(&[("KMS_PROVIDER", "kmip"), ("KMIP_ENDPOINT", &endpoint)], Some("kmip-creds")),
        &[(
            "kmip-creds",
            vec![
                ("CA_CERT", ca.ca_pem.clone()),
                ("CLIENT_CERT", client.cert_pem.clone()),
                ("CLIENT_KEY", client.key_pem.clone()),
            ],
        )],
    );
    KeyStore::for_cluster(&cluster, &snapshot, secrets, options(&[])).unwrap()
}

/// Reads a KMIP object with PyKMIP's own client: the key material as hex.
fn pykmip_read(dir: &std::path::Path, port: u16, ca: &Pki, client: &Leaf, uid: &str) -> String {
    std::fs::write(dir.join("ca.crt"), &ca.ca_pem).unwrap();
    std::fs::write(dir.join("client.crt"), &client.cert_pem).unwrap();
    std::fs::write(dir.join("client.key"), &client.key_pem).unwrap();
    let script = r#"
import sys, warnings
warnings.filterwarnings("ignore")
from kmip.pie.client import ProxyKmipClient
from kmip.core import enums
d, port, uid = sys.argv[1], int(sys.argv[2]), sys.argv[3]
with ProxyKmipClient(hostname="127.0.0.1", port=port, cert=d + "/client.crt", key=d + "/client.key", ca=d + "/ca.crt",
                     ssl_version="PROTOCOL_TLSv1_2", kmip_version=enums.KMIPVersion.KMIP_1_4) as c:
    key = c.get(uid)
    print(key.value.hex(), key.cryptographic_length, key.cryptographic_algorithm.name)
"#;
    let out = std::process::Command::new(venv_bin("python"))
        .args(["-c", script, dir.to_str().unwrap(), &port.to_string(), uid])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

#[tokio::test]
async fn kmip_register_get_destroy_with_the_id_in_rooks_secret() {
    let server_ca = Pki::new("kmip server CA");
    let client_ca = Pki::new("kmip client CA");
    let kmip = PyKmip::start(&server_ca.server(&["127.0.0.1"]), &server_ca, &client_ca);
    let client = client_ca.valid_client("rook");
    let secrets = MemorySecrets::default();
    let store = kmip_store(kmip.port, &server_ca, &client, &secrets);
    let pvc = "set1-data-0-abcde";
    let kek = Kek::generate().unwrap();
    assert_eq!(store.put(pvc, &kek).await.unwrap(), PutOutcome::Created);
    let secret = secrets.get("rook-ceph-osd-encryption-key-set1-data-0-abcde").await.unwrap().unwrap();
    let uid = String::from_utf8(secret.data["dmcrypt-key"].clone()).unwrap();
    assert_eq!(secret.labels["pvc_name"], pvc);
    // PyKMIP's own client reads the 128 raw bytes, declared as 1024 bits of AES.
    let dir = tempfile::tempdir().unwrap();
    let hex: String = kek.material().unwrap().iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(pykmip_read(dir.path(), kmip.port, &server_ca, &client, &uid), format!("{hex} 1024 AES"));
    assert_eq!(store.get(pvc).await.unwrap(), Some(kek.clone()));
    assert_eq!(store.put(pvc, &kek).await.unwrap(), PutOutcome::Exists { same: true });
    assert!(matches!(store.update(pvc, &kek).await, Err(rook_kms::keys::KeyError::Unsupported { .. })));
    assert_eq!(store.list().await.unwrap(), [pvc]);
    assert!(store.delete(pvc).await.unwrap());
    assert_eq!(store.get(pvc).await.unwrap(), None);
    assert!(secrets.get("rook-ceph-osd-encryption-key-set1-data-0-abcde").await.unwrap().is_none());
}

#[tokio::test]
async fn migrate_from_openbao_to_pykmip_and_back() {
    let bao = OpenBao::dev();
    bao.mount_kv("rook", 2);
    let vault_secrets = MemorySecrets::default();
    let vault = vault_store(&bao, "root", &[("VAULT_BACKEND_PATH", "rook")], &vault_secrets);
    let server_ca = Pki::new("kmip server CA");
    let client_ca = Pki::new("kmip client CA");
    let kmip_server = PyKmip::start(&server_ca.server(&["127.0.0.1"]), &server_ca, &client_ca);
    let kmip_secrets = MemorySecrets::default();
    let kmip = kmip_store(kmip_server.port, &server_ca, &client_ca.valid_client("rook"), &kmip_secrets);

    let pvcs: Vec<String> = (0..3).map(|i| format!("set1-data-{i}-xyz")).collect();
    let mut keys = Vec::new();
    for pvc in &pvcs {
        let k = Kek::generate().unwrap();
        vault.put(pvc, &k).await.unwrap();
        keys.push(k);
    }
    let listed = vault.list().await.unwrap();
    assert_eq!(listed, pvcs);
    let dry = migrate(&vault, &kmip, &listed, false).await;
    assert!(dry.iter().all(|(_, m)| *m == Migrated::WouldCopy), "{dry:?}");
    assert!(kmip.list().await.unwrap().is_empty());
    let run = migrate(&vault, &kmip, &listed, true).await;
    assert!(run.iter().all(|(_, m)| *m == Migrated::Copied), "{run:?}");
    for (pvc, k) in pvcs.iter().zip(&keys) {
        assert_eq!(kmip.get(pvc).await.unwrap().as_ref(), Some(k));
    }
    // Back into a fresh Vault mount; a second run finds everything in place.
    bao.mount_kv("back", 1);
    let back_secrets = MemorySecrets::default();
    let back = vault_store(&bao, "root", &[("VAULT_BACKEND_PATH", "back")], &back_secrets);
    let run = migrate(&kmip, &back, &kmip.list().await.unwrap(), true).await;
    assert!(run.iter().all(|(_, m)| *m == Migrated::Copied), "{run:?}");
    let again = migrate(&kmip, &back, &pvcs, true).await;
    assert!(again.iter().all(|(_, m)| *m == Migrated::AlreadyThere), "{again:?}");
    for (pvc, k) in pvcs.iter().zip(&keys) {
        assert_eq!(back.get(pvc).await.unwrap().as_ref(), Some(k));
        assert_eq!(vault.get(pvc).await.unwrap().as_ref(), Some(k), "the source is untouched");
    }
}

#[tokio::test]
async fn key_protect_through_the_test_double() {
    let ca = Pki::new("ibm double CA");
    let instance = "0f0e1d2c-3b4a-4968-8766-554433221100";
    let double = KeyProtectDouble::start(&ca.server(&["localhost", "127.0.0.1"]), "good-api-key", instance);
    let base = format!("https://localhost:{}", double.port);
    let token = format!("{base}/oidc/token");
    let (cluster, snapshot) = snapshot_for(
        &cluster(
            &[
                ("KMS_PROVIDER", "ibmkeyprotect"),
                ("IBM_KP_SERVICE_INSTANCE_ID", instance),
                ("IBM_KP_BASE_URL", &base),
                ("IBM_KP_TOKEN_URL", &token),
            ],
            Some("ibm-key"),
        ),
        &[("ibm-key", vec![("IBM_KP_SERVICE_API_KEY", "good-api-key".to_string())])],
    );
    let secrets = MemorySecrets::default();
    let store = KeyStore::for_cluster(&cluster, &snapshot, &secrets, options(&[&ca])).unwrap();
    let pvc = "set1-data-0-abcde";
    let kek = Kek::generate().unwrap();
    assert_eq!(store.put(pvc, &kek).await.unwrap(), PutOutcome::Created);
    assert_eq!(store.put(pvc, &kek).await.unwrap(), PutOutcome::Exists { same: true });
    assert_eq!(store.get(pvc).await.unwrap(), Some(kek));
    assert_eq!(store.list().await.unwrap(), [pvc]);
    assert!(matches!(
        store.update(pvc, &Kek::generate().unwrap()).await,
        Err(rook_kms::keys::KeyError::Unsupported { .. })
    ));
    assert!(store.delete(pvc).await.unwrap());
    assert_eq!(store.get(pvc).await.unwrap(), None, "a destroyed key has no payload");
    assert!(store.list().await.unwrap().is_empty());
}

/// A KMS that accepts connections and never answers cannot hang a key operation: every exchange
/// ends within the connection timeout (the controller and the admin commands rely on this).
#[tokio::test]
async fn a_hung_kms_cannot_hang_a_key_operation() {
    let silent = support::components::Silent::start();
    let addr = format!("http://127.0.0.1:{}", silent.port);
    let (cluster, snapshot) = snapshot_for(
        &cluster(&[("KMS_PROVIDER", "vault"), ("VAULT_ADDR", &addr), ("VAULT_BACKEND", "v2")], Some("vault-token")),
        &[("vault-token", vec![("token", "t".to_string())])],
    );
    let secrets = MemorySecrets::default();
    let mut opts = options(&[]);
    opts.connect_timeout = std::time::Duration::from_millis(300);
    let store = KeyStore::for_cluster(&cluster, &snapshot, &secrets, opts).unwrap();
    let started = std::time::Instant::now();
    let err = tokio::time::timeout(std::time::Duration::from_secs(5), store.get("pvc-1"))
        .await
        .expect("the operation hung")
        .unwrap_err();
    assert!(started.elapsed() < std::time::Duration::from_secs(2), "took {:?}", started.elapsed());
    assert!(err.to_string().contains("no answer within 0.3 s"), "{err}");
}
