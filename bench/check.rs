//! How long one CephCluster review takes after start-up: parse the object, mutate, fetch the
//! referenced Secrets from an in-memory store, run every rule (PEM parsing and key matching
//! included). Measured beside a baseline in the same run: parsing the same object from JSON text,
//! which any webhook must do, so the figure to report is the ratio review / baseline.
//!
//! `cargo bench -p rook-kms --bench check` (or `bench/check.sh`, which prints the ratio).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure should stop the test

#[path = "../crates/kms/tests/support/pki.rs"]
mod pki;

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use rook_kms::review::{Operation, Request, Review, SecretsUnavailable};
use rook_kms::secrets::ManifestSecrets;
use serde_json::{Value, json};

fn fixture() -> (Value, Value, ManifestSecrets) {
    let ca = pki::Pki::new("bench CA");
    let client = ca.valid_client("rook");
    let mut secrets = ManifestSecrets::default();
    for (name, key, value) in [
        ("vault-token", "token", "s.abcdefghijklmnop".to_string()),
        ("vault-ca", "cert", ca.ca_pem.clone()),
        ("vault-client-cert", "cert", client.cert_pem.clone()),
        ("vault-client-key", "key", client.key_pem.clone()),
    ] {
        secrets
            .add(
                &json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "stringData": {key: value}}),
                "rook-ceph",
            )
            .expect("secret");
    }
    let cluster = json!({
        "apiVersion": "ceph.rook.io/v1", "kind": "CephCluster",
        "metadata": {"name": "bench", "namespace": "rook-ceph"},
        "spec": {
            "cephVersion": {"image": "quay.io/ceph/ceph:v19"},
            "dataDirHostPath": "/var/lib/rook",
            "mon": {"count": 3, "allowMultiplePerNode": false},
            "security": {
                "kms": {
                    "connectionDetails": {
                        "KMS_PROVIDER": "vault", "VAULT_ADDR": "https://vault.vault.svc:8200",
                        "VAULT_BACKEND_PATH": "rook", "VAULT_SECRET_ENGINE": "kv", "VAULT_BACKEND": "v1",
                        "VAULT_CACERT": "vault-ca", "VAULT_CLIENT_CERT": "vault-client-cert", "VAULT_CLIENT_KEY": "vault-client-key"
                    },
                    "tokenSecretName": "vault-token"
                },
                "keyRotation": {"enabled": true, "schedule": "@weekly"}
            },
            "storage": {"storageClassDeviceSets": [
                {"name": "set1", "count": 3, "encrypted": true, "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {"resources": {"requests": {"storage": "10Gi"}}, "storageClassName": "gp3", "volumeMode": "Block", "accessModes": ["ReadWriteOnce"]}}]}
            ]}
        }
    });
    // The same object as an API server would send it on an UPDATE: object and oldObject.
    let review = json!({"object": cluster, "oldObject": cluster});
    (cluster, review, secrets)
}

fn bench(c: &mut Criterion) {
    let (cluster, review_body, secrets) = fixture();
    let text = serde_json::to_string(&review_body).expect("json");
    let now = 1_800_000_000;
    let mut g = c.benchmark_group("check");
    g.bench_function("baseline_parse_json", |b| b.iter(|| black_box(serde_json::from_str::<Value>(black_box(&text)))));
    g.bench_function("review_vault_tls_create", |b| {
        b.iter(|| {
            let review = Review::new(Request {
                operation: Operation::Create,
                object: black_box(&cluster),
                old_object: None,
                default_namespace: "rook-ceph",
                mutate: true,
            });
            let snapshot = secrets.snapshot(review.namespace(), &review.secret_names());
            black_box(review.evaluate(&snapshot, now, SecretsUnavailable::Deny))
        })
    });
    g.bench_function("review_vault_tls_update", |b| {
        b.iter(|| {
            let review = Review::new(Request {
                operation: Operation::Update,
                object: black_box(&cluster),
                old_object: Some(&cluster),
                default_namespace: "rook-ceph",
                mutate: true,
            });
            let snapshot = secrets.snapshot(review.namespace(), &review.secret_names());
            black_box(review.evaluate(&snapshot, now, SecretsUnavailable::Deny))
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
