//! Self-managed webhook certificates against an in-memory cluster (no kube-apiserver can run
//! here): creation, idempotence, renewal, CA rotation with an overlapping bundle, racing replicas,
//! and a real TLS verification of what was issued.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure should stop the test

use std::sync::Arc;

use rook_kms_controller::api::{ApiError, MemoryCluster};
use rook_kms_controller::certs::{CertApi, CertReport, CertSettings, StoredSecret, WebhookKind, reconcile};
use rustls::client::danger::ServerCertVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};

fn settings() -> CertSettings {
    CertSettings {
        namespace: "rook-kms".into(),
        service: "rkw".into(),
        ca_secret: "rkw-ca".into(),
        tls_secret: "rkw-tls".into(),
        validating: "rkw".into(),
        mutating: "rkw".into(),
        leaf_days: 90,
        ca_days: 3650,
    }
}

fn cluster_with_configs() -> MemoryCluster {
    let api = MemoryCluster::default();
    let mut configs = api.webhook_configs.lock().unwrap();
    configs.insert("validating/rkw".into(), vec![("validate.cephclusters.rook-kms-webhook.io".into(), Vec::new())]);
    configs.insert("mutating/rkw".into(), vec![("mutate.cephclusters.rook-kms-webhook.io".into(), Vec::new())]);
    drop(configs);
    api
}

fn secret(api: &MemoryCluster, name: &str, key: &str) -> Vec<u8> {
    api.stored_secrets.lock().unwrap()[&("rook-kms".to_string(), name.to_string())].data[key].clone()
}

fn bundle(api: &MemoryCluster, config: &str) -> Vec<u8> {
    api.webhook_configs.lock().unwrap()[config][0].1.clone()
}

/// Verifies the serving certificate against the published bundle, as the API server would.
fn verify(api: &MemoryCluster, at: time::OffsetDateTime) -> Result<(), rustls::Error> {
    verify_leaf(&secret(api, "rkw-tls", "tls.crt"), &bundle(api, "validating/rkw"), at)
}

fn verify_leaf(leaf_pem: &[u8], bundle_pem: &[u8], at: time::OffsetDateTime) -> Result<(), rustls::Error> {
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(bundle_pem) {
        roots.add(c.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier =
        rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider).build().unwrap();
    let leaf = CertificateDer::from_pem_slice(leaf_pem).unwrap();
    let name = ServerName::try_from("rkw.rook-kms.svc").unwrap();
    let when = UnixTime::since_unix_epoch(std::time::Duration::from_secs(at.unix_timestamp() as u64));
    verifier.verify_server_cert(&leaf, &[], &name, &[], when).map(|_| ())
}

#[tokio::test]
async fn creates_then_keeps_then_renews() {
    let api = cluster_with_configs();
    let now = time::OffsetDateTime::now_utc();
    let first = reconcile(&api, &settings(), now).await.unwrap();
    assert!(first.ca_created);
    assert_eq!(first.leaf_issued, Some("missing"));
    assert_eq!(first.bundles_written, ["rkw", "rkw"]);
    verify(&api, now).unwrap();
    assert_eq!(secret(&api, "rkw-tls", "ca.crt"), bundle(&api, "mutating/rkw"), "the Secret's ca.crt is the bundle");

    assert_eq!(reconcile(&api, &settings(), now).await.unwrap(), CertReport::default(), "nothing to do");

    // After two thirds of 90 days the serving certificate is renewed from the same CA.
    let later = now + time::Duration::days(61);
    let ca_before = secret(&api, "rkw-ca", "ca.crt");
    let renewed = reconcile(&api, &settings(), later).await.unwrap();
    assert_eq!(renewed.leaf_issued, Some("renewal due"));
    assert!(!renewed.ca_rotated && renewed.bundles_written.is_empty());
    assert_eq!(secret(&api, "rkw-ca", "ca.crt"), ca_before);
    verify(&api, later).unwrap();

    // A changed Service name gets a new certificate.
    let mut moved = settings();
    moved.service = "other".into();
    assert_eq!(reconcile(&api, &moved, later).await.unwrap().leaf_issued, Some("names changed"));
}

#[tokio::test]
async fn ca_rotation_keeps_the_old_ca_in_the_bundle() {
    let api = cluster_with_configs();
    let now = time::OffsetDateTime::now_utc();
    reconcile(&api, &settings(), now).await.unwrap();
    let old_ca = secret(&api, "rkw-ca", "ca.crt");
    let old_leaf = secret(&api, "rkw-tls", "tls.crt");

    let late = now + time::Duration::days(2434);
    let rotated = reconcile(&api, &settings(), late).await.unwrap();
    assert!(rotated.ca_rotated);
    assert_eq!(rotated.leaf_issued, Some("not signed by the current CA"));
    let published = String::from_utf8(bundle(&api, "validating/rkw")).unwrap();
    assert_eq!(published.matches("BEGIN CERTIFICATE").count(), 2, "new and old CA overlap");
    assert!(published.contains(std::str::from_utf8(&old_ca).unwrap().trim()));
    assert_eq!(secret(&api, "rkw-ca", "previous-ca.crt"), old_ca);
    verify(&api, late).unwrap();
    // A pod still serving the old certificate (until the kubelet refreshes its volume) verifies
    // too, against the overlapping bundle; against the new CA alone it would not.
    verify_leaf(&old_leaf, published.as_bytes(), now).unwrap();
    let new_ca_only = secret(&api, "rkw-ca", "ca.crt");
    assert!(verify_leaf(&old_leaf, &new_ca_only, now).is_err());
    assert_ne!(old_leaf, secret(&api, "rkw-tls", "tls.crt"));
}

/// The in-memory cluster, yielding after every read so that two replicas interleave: both read
/// "no CA", both try to create one, and the API's create-or-conflict decides.
struct Interleaved(MemoryCluster);

impl CertApi for Interleaved {
    async fn get_secret(&self, namespace: &str, name: &str) -> Result<Option<StoredSecret>, ApiError> {
        let got = self.0.get_secret(namespace, name).await;
        tokio::task::yield_now().await;
        got
    }
    async fn put_secret(
        &self,
        namespace: &str,
        name: &str,
        type_: &str,
        data: std::collections::BTreeMap<String, Vec<u8>>,
        resource_version: Option<&str>,
    ) -> Result<bool, ApiError> {
        self.0.put_secret(namespace, name, type_, data, resource_version).await
    }
    async fn ca_bundles(
        &self,
        kind: WebhookKind,
        name: &str,
    ) -> Result<Option<rook_kms_controller::certs::Bundles>, ApiError> {
        self.0.ca_bundles(kind, name).await
    }
    async fn apply_ca_bundle(
        &self,
        kind: WebhookKind,
        name: &str,
        webhooks: &[String],
        bundle: &[u8],
    ) -> Result<(), ApiError> {
        self.0.apply_ca_bundle(kind, name, webhooks, bundle).await
    }
}

#[tokio::test]
async fn racing_replicas_end_with_one_ca_and_missing_configurations_are_left_alone() {
    let racing = Interleaved(MemoryCluster::default());
    let now = time::OffsetDateTime::now_utc();
    let s = settings();
    let (a, b) = tokio::join!(reconcile(&racing, &s, now), reconcile(&racing, &s, now));
    let api = racing.0;
    let (a, b) = (a.unwrap(), b.unwrap());
    assert!(a.ca_created ^ b.ca_created, "exactly one replica created the CA: {a:?} {b:?}");
    assert!(api.webhook_configs.lock().unwrap().is_empty(), "no configuration is created");
    let ca = secret(&api, "rkw-ca", "ca.crt");
    assert_eq!(reconcile(&api, &settings(), now).await.unwrap(), CertReport::default());
    assert_eq!(secret(&api, "rkw-ca", "ca.crt"), ca);
}
