//! Builders for rule tests: CephCluster objects and a Secret store with real, freshly made PEM
//! material.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure should stop the test
#![allow(dead_code)] // each test binary uses part of the support

pub mod pki;

use rook_kms::review::{Operation, Outcome, Request, Review, SecretsUnavailable};
use rook_kms::secrets::ManifestSecrets;
use serde_json::{Value, json};

pub const NS: &str = "rook-ceph";

/// A CephCluster with one encrypted device set and the given connectionDetails/tokenSecretName.
pub fn cluster(details: &[(&str, &str)], token: Option<&str>) -> Value {
    let details: serde_json::Map<String, Value> =
        details.iter().map(|(k, v)| ((*k).to_string(), Value::String((*v).to_string()))).collect();
    let mut kms = json!({"connectionDetails": details});
    if let Some(t) = token {
        kms["tokenSecretName"] = json!(t);
    }
    json!({
        "apiVersion": "ceph.rook.io/v1",
        "kind": "CephCluster",
        "metadata": {"name": "c", "namespace": NS},
        "spec": {"security": {"kms": kms}, "storage": {"storageClassDeviceSets": [{"name": "set1", "count": 3, "encrypted": true}]}},
    })
}

pub fn vault(extra: &[(&str, &str)]) -> Value {
    with(&[("KMS_PROVIDER", "vault"), ("VAULT_ADDR", "https://vault.vault.svc:8200")], extra, Some("vault-token"))
}

pub fn ibm(extra: &[(&str, &str)]) -> Value {
    with(
        &[("KMS_PROVIDER", "ibmkeyprotect"), ("IBM_KP_SERVICE_INSTANCE_ID", "0f0e1d2c-3b4a-4968-8766-554433221100")],
        extra,
        Some("ibm-key"),
    )
}

pub fn kmip(extra: &[(&str, &str)]) -> Value {
    with(&[("KMS_PROVIDER", "kmip"), ("KMIP_ENDPOINT", "kmip.example.com:5696")], extra, Some("kmip-creds"))
}

pub fn azure(extra: &[(&str, &str)]) -> Value {
    with(
        &[
            ("KMS_PROVIDER", "azure-kv"),
            ("AZURE_VAULT_URL", "https://osd.vault.azure.net"),
            ("AZURE_TENANT_ID", "72f988bf-86f1-41af-91ab-2d7cd011db47"),
            ("AZURE_CLIENT_ID", "3e2d1c0b-a998-4877-8665-544332211000"),
            ("AZURE_CERT_SECRET_NAME", "azure-cert"),
        ],
        extra,
        None,
    )
}

/// Base details overridden by `extra`; an extra value of `"<unset>"` removes the key.
fn with(base: &[(&str, &str)], extra: &[(&str, &str)], token: Option<&str>) -> Value {
    let mut details: Vec<(&str, &str)> =
        base.iter().filter(|(k, _)| !extra.iter().any(|(e, _)| e == k)).copied().collect();
    details.extend(extra.iter().filter(|(_, v)| *v != "<unset>").copied());
    let token = match extra.iter().find(|(k, _)| *k == "tokenSecretName") {
        Some((_, "<unset>")) => None,
        Some((_, v)) => Some(*v),
        None => token,
    };
    details.retain(|(k, _)| *k != "tokenSecretName");
    cluster(&details, token)
}

/// Every Secret the tests reference, with PEM material made now.
pub fn secrets() -> ManifestSecrets {
    let ca = pki::Pki::new("test CA");
    let client = ca.valid_client("client");
    let other = ca.valid_client("other");
    let expired = ca.client("expired", -400, -1);
    let expiring = ca.client("expiring", -300, 10);
    let future = ca.client("future", 5, 400);
    let expired_ca = pki::Pki::with_validity("old CA", -400, -2);
    let expiring_ca = pki::Pki::with_validity("ageing CA", -400, 12);
    // A stand-in body with an encrypted-key label (no real key in the source).
    let encrypted_key = format!(
        "-----{} ENCRYPTED PRIVATE KEY-----\nMIIBvTBXBgkqhkiG9w0BBQ0wSjApBgkqhkiG9w0BBQwwHAQI\n-----END ENCRYPTED PRIVATE KEY-----\n",
        "BEGIN"
    );
    let docs: Vec<(&str, Vec<(&str, String)>)> = vec![
        ("vault-token", vec![("token", "s.abcdef".into())]),
        ("vault-token-newline", vec![("token", "s.abcdef\n".into())]),
        ("vault-token-empty", vec![("token", String::new())]),
        ("vault-ca", vec![("cert", ca.ca_pem.clone())]),
        ("vault-ca-garbage", vec![("cert", "not a certificate".into())]),
        ("vault-ca-expired", vec![("cert", expired_ca.ca_pem.clone())]),
        ("vault-ca-expiring", vec![("cert", expiring_ca.ca_pem.clone())]),
        ("vault-ca-nokey", vec![("ca.crt", ca.ca_pem.clone())]),
        ("vault-client-cert", vec![("cert", client.cert_pem.clone())]),
        ("vault-client-key", vec![("key", client.key_pem.clone())]),
        ("vault-other-key", vec![("key", other.key_pem.clone())]),
        ("vault-encrypted-key", vec![("key", encrypted_key.clone())]),
        ("vault-expired-cert", vec![("cert", expired.cert_pem.clone())]),
        ("vault-expired-key", vec![("key", expired.key_pem.clone())]),
        ("vault-expiring-cert", vec![("cert", expiring.cert_pem.clone())]),
        ("vault-expiring-key", vec![("key", expiring.key_pem.clone())]),
        ("vault-future-cert", vec![("cert", future.cert_pem.clone())]),
        ("vault-future-key", vec![("key", future.key_pem.clone())]),
        ("ibm-key", vec![("IBM_KP_SERVICE_API_KEY", "api-key".into())]),
        ("ibm-wrong-key", vec![("API_KEY", "api-key".into())]),
        (
            "kmip-creds",
            vec![
                ("CA_CERT", ca.ca_pem.clone()),
                ("CLIENT_CERT", client.cert_pem.clone()),
                ("CLIENT_KEY", client.key_pem.clone()),
            ],
        ),
        ("kmip-no-key", vec![("CA_CERT", ca.ca_pem.clone()), ("CLIENT_CERT", client.cert_pem.clone())]),
        (
            "kmip-mismatch",
            vec![
                ("CA_CERT", ca.ca_pem.clone()),
                ("CLIENT_CERT", client.cert_pem.clone()),
                ("CLIENT_KEY", other.key_pem.clone()),
            ],
        ),
        (
            "kmip-expired",
            vec![
                ("CA_CERT", ca.ca_pem.clone()),
                ("CLIENT_CERT", expired.cert_pem.clone()),
                ("CLIENT_KEY", expired.key_pem.clone()),
            ],
        ),
        ("azure-cert", vec![("CLIENT_CERT", format!("{}{}", client.cert_pem, client.key_pem))]),
        ("azure-cert-only", vec![("CLIENT_CERT", client.cert_pem.clone())]),
        ("azure-wrong-key", vec![("CERT", client.cert_pem.clone())]),
    ];
    let mut store = ManifestSecrets::default();
    for (name, data) in docs {
        let data: serde_json::Map<String, Value> =
            data.into_iter().map(|(k, v)| (k.to_string(), Value::String(v))).collect();
        store
            .add(&json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "stringData": data}), NS)
            .expect("secret");
    }
    store
}

/// Reviews an object as `check` does, with or without the mutation stage.
pub fn review(object: &Value, old: Option<&Value>, mutate: bool, secrets: &ManifestSecrets) -> Outcome {
    let review = Review::new(Request {
        operation: if old.is_some() { Operation::Update } else { Operation::Create },
        object,
        old_object: old,
        default_namespace: NS,
        mutate,
    });
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs() as i64;
    review.evaluate(&secrets.snapshot(review.namespace(), &review.secret_names()), now, SecretsUnavailable::Deny)
}
pub mod components;
