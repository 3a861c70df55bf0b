//! The verification loop against a real Vault (OpenBao), with the Kubernetes side in memory
//! (`MemoryCluster`: no kube-apiserver can run here), and leader election on an in-memory Lease.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure should stop the test

#[path = "../../kms/tests/support/pki.rs"]
mod pki;

#[path = "../../kms/tests/support/components.rs"]
mod components;

use std::collections::BTreeMap;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use rook_kms::keys::Kek;
use rook_kms::keys::kube::MemorySecrets;
use rook_kms::probe::ProbeOptions;
use rook_kms::providers::net::NetPolicy;
use rook_kms::secrets::SecretData;
use rook_kms_controller::api::{ClusterApi, Lease, MemoryCluster, Pvc};
use rook_kms_controller::leader::Elector;
use rook_kms_controller::reconcile::{Announcer, osd_data_pvcs};
use rook_kms_controller::run::{Metrics, Schedule, pass, run_loop};
use serde_json::{Value, json};

const NS: &str = "rook-ceph";

fn options() -> ProbeOptions {
    ProbeOptions { policy: NetPolicy::new(vec!["127.0.0.0/8".parse().unwrap()]), ..ProbeOptions::default() }
}

fn vault_cluster(addr: &str) -> Value {
    json!({
        "apiVersion": "ceph.rook.io/v1", "kind": "CephCluster",
        "metadata": {"name": "c", "namespace": NS, "uid": "8d1c7d6e-0000-4000-8000-000000000001"},
        "spec": {
            "security": {"kms": {"connectionDetails": {"KMS_PROVIDER": "vault", "VAULT_ADDR": addr, "VAULT_BACKEND_PATH": "rook", "VAULT_BACKEND": "v2"}, "tokenSecretName": "vault-token"}},
            "storage": {"storageClassDeviceSets": [
                {"name": "set1", "count": 3, "encrypted": true},
                {"name": "plain", "count": 1, "encrypted": false}
            ]}
        }
    })
}

fn pvc(name: &str, set: &str, id: &str) -> Pvc {
    Pvc {
        name: name.into(),
        labels: BTreeMap::from([
            ("ceph.rook.io/DeviceSet".to_string(), set.to_string()),
            ("ceph.rook.io/DeviceSetPVCId".to_string(), id.to_string()),
        ]),
    }
}

fn memory(addr: &str) -> MemoryCluster {
    let mut cluster = MemoryCluster::default();
    cluster.clusters.lock().unwrap().push(vault_cluster(addr));
    cluster.pvcs.lock().unwrap().insert(
        NS.into(),
        vec![
            pvc("set1-data-0-aaaaa", "set1", "set1-data-0"),
            pvc("set1-data-1-bbbbb", "set1", "set1-data-1"),
            pvc("set1-metadata-0-ccccc", "set1", "set1-metadata-0"),
            pvc("plain-data-0-ddddd", "plain", "plain-data-0"),
        ],
    );
    cluster.secrets.lock().unwrap().insert(
        (NS.into(), "vault-token".into()),
        SecretData::new(BTreeMap::from([("token".into(), b"root".to_vec())])),
    );
    cluster.key_secrets.insert(NS.into(), MemorySecrets::default());
    cluster
}

fn put_key(bao: &components::OpenBao, pvc: &str) {
    let name = format!("rook-ceph-osd-encryption-key-{pvc}");
    let kek = Kek::generate().unwrap();
    bao.must("POST", &format!("rook/data/{name}"), json!({"data": {name.as_str(): kek.expose()}}));
}

#[test]
fn data_pvcs_of_encrypted_sets_only() {
    let object = vault_cluster("https://vault:8200");
    let cluster = rook_kms::cluster::Cluster::from_object(&object, NS).unwrap();
    let pvcs = [
        pvc("set1-data-0-aaaaa", "set1", "set1-data-0"),
        pvc("set1-metadata-0-ccccc", "set1", "set1-metadata-0"),
        pvc("set1-wal-0-eeeee", "set1", "set1-wal-0"),
        pvc("plain-data-0-ddddd", "plain", "plain-data-0"),
    ];
    assert_eq!(osd_data_pvcs(&cluster, &pvcs), ["set1-data-0-aaaaa"]);
}

#[tokio::test]
async fn missing_and_orphaned_keys_are_reported_once_then_verified() {
    let bao = components::OpenBao::dev();
    bao.mount_kv("rook", 2);
    put_key(&bao, "set1-data-0-aaaaa");
    put_key(&bao, "set0-data-9-gone0");
    let api = memory(&bao.addr());
    let metrics = Metrics::default();
    let mut announcer = Announcer::default();

    let reports = pass(&api, &options(), &mut announcer, &metrics).await;
    assert_eq!(reports.len(), 1);
    let r = &reports[0];
    assert_eq!(
        (r.verified.clone(), r.missing.clone(), r.orphaned.clone()),
        (
            vec!["set1-data-0-aaaaa".to_string()],
            vec!["set1-data-1-bbbbb".to_string()],
            vec!["set0-data-9-gone0".to_string()]
        )
    );
    let events = api.events.lock().unwrap().clone();
    let reasons: Vec<&str> = events.iter().map(|e| e.reason).collect();
    assert_eq!(reasons, ["KeyMissing", "OrphanedKeys"]);
    assert!(events[0].message.contains("set1-data-1-bbbbb") && events[0].kind == "Warning", "{events:?}");
    assert_eq!(events[0].cluster_uid, "8d1c7d6e-0000-4000-8000-000000000001");
    let text = metrics.render();
    assert!(
        text.contains(r#"rook_kms_controller_keys{namespace="rook-ceph",cluster="c",state="missing"} 1"#),
        "{text}"
    );
    assert!(!text.contains("last_success_timestamp_seconds{"), "not all verified yet: {text}");

    // The same state again: no new Events.
    pass(&api, &options(), &mut announcer, &metrics).await;
    assert_eq!(api.events.lock().unwrap().len(), 2);

    // Rook creates the missing key and the orphan is cleaned up: one KeysVerified.
    put_key(&bao, "set1-data-1-bbbbb");
    bao.must("DELETE", "rook/metadata/rook-ceph-osd-encryption-key-set0-data-9-gone0", json!({}));
    pass(&api, &options(), &mut announcer, &metrics).await;
    let events = api.events.lock().unwrap().clone();
    assert_eq!(events.len(), 3);
    assert_eq!((events[2].reason, events[2].kind), ("KeysVerified", "Normal"));
    assert!(metrics.render().contains("rook_kms_controller_last_success_timestamp_seconds{"));
}

#[tokio::test]
async fn an_unreachable_kms_is_one_warning() {
    let port = components::free_port();
    let api = memory(&format!("http://127.0.0.1:{port}"));
    let mut announcer = Announcer::default();
    let reports = pass(&api, &options(), &mut announcer, &Metrics::default()).await;
    assert!(reports[0].unreachable.as_deref().unwrap_or_default().contains("connection refused"), "{reports:?}");
    let events = api.events.lock().unwrap().clone();
    assert_eq!(events.len(), 1);
    assert_eq!((events[0].reason, events[0].kind), ("KmsUnreachable", "Warning"));
}

fn elector(identity: &str) -> Elector {
    Elector {
        namespace: NS.into(),
        name: "rook-kms-controller".into(),
        identity: identity.into(),
        duration: Duration::from_secs(15),
    }
}

#[tokio::test]
async fn one_leader_at_a_time() {
    let api = MemoryCluster::default();
    let (a, b) = (elector("pod-a"), elector("pod-b"));
    let t0 = 1_800_000_000_000_000i64;
    assert!(a.try_lead(&api, t0).await.unwrap());
    assert!(!b.try_lead(&api, t0 + 1_000_000).await.unwrap(), "b stands by while a renews");
    assert!(a.try_lead(&api, t0 + 5_000_000).await.unwrap(), "a renews");
    assert!(!b.try_lead(&api, t0 + 19_000_000).await.unwrap(), "a's renewal at +5 s holds until +20 s");
    assert!(b.try_lead(&api, t0 + 21_000_000).await.unwrap(), "b takes over an expired lease");
    assert!(!a.try_lead(&api, t0 + 22_000_000).await.unwrap(), "a lost it");
    // A write based on a stale read loses.
    let stale = Lease {
        holder: Some("pod-c".into()),
        renew_micros: Some(t0),
        duration_seconds: 15,
        resource_version: Some("1".into()),
    };
    assert!(!api.write_lease(NS, "rook-kms-controller", &stale).await.unwrap());
    // Release hands over at once.
    b.release(&api).await.unwrap();
    assert!(a.try_lead(&api, t0 + 23_000_000).await.unwrap());
}

#[tokio::test]
async fn the_loop_verifies_while_leading_and_releases_on_shutdown() {
    let bao = components::OpenBao::dev();
    bao.mount_kv("rook", 2);
    put_key(&bao, "set1-data-0-aaaaa");
    put_key(&bao, "set1-data-1-bbbbb");
    let api = memory(&bao.addr());
    let metrics = Metrics::default();
    let ready = AtomicBool::new(false);
    let elector = Elector { duration: Duration::from_secs(3), ..elector("pod-a") };
    run_loop(
        &api,
        &elector,
        None,
        &options(),
        &Schedule { interval: Duration::from_secs(60), min_gap: Duration::from_secs(60), changes: None },
        &metrics,
        &ready,
        tokio::time::sleep(Duration::from_millis(300)),
    )
    .await;
    let events = api.events.lock().unwrap().clone();
    assert_eq!(events.iter().map(|e| e.reason).collect::<Vec<_>>(), ["KeysVerified"]);
    assert!(ready.load(std::sync::atomic::Ordering::SeqCst));
    let lease = api.lease(NS, "rook-kms-controller").await.unwrap().unwrap();
    assert_eq!(lease.holder, None, "released on shutdown");
}

#[tokio::test]
async fn a_change_triggers_a_pass_before_the_interval() {
    let bao = components::OpenBao::dev();
    bao.mount_kv("rook", 2);
    put_key(&bao, "set1-data-0-aaaaa");
    let api = memory(&bao.addr());
    let changes = std::sync::Arc::new(tokio::sync::Notify::new());
    let schedule = Schedule {
        interval: Duration::from_secs(600),
        min_gap: Duration::from_millis(200),
        changes: Some(changes.clone()),
    };
    let elector = Elector { duration: Duration::from_secs(3), ..elector("pod-a") };
    let (metrics, ready) = (Metrics::default(), AtomicBool::new(false));
    let trigger = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        put_key(&bao, "set1-data-1-bbbbb"); // Rook wrote the missing key; the PVC watch fires.
        changes.notify_one();
        tokio::time::sleep(Duration::from_secs(3)).await;
    };
    run_loop(&api, &elector, None, &options(), &schedule, &metrics, &ready, trigger).await;
    let reasons: Vec<&str> = api.events.lock().unwrap().iter().map(|e| e.reason).collect();
    assert_eq!(reasons, ["KeyMissing", "KeysVerified"], "re-verified on the change, long before the 600 s interval");
}
