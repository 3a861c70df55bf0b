//! The controller's view of the Kubernetes API, behind one narrow trait so that the reconcile
//! logic runs against memory in tests; `kube_api` is the kube-rs implementation.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Mutex;

use rook_kms::keys::kube::{MemorySecrets, SecretStore};
use rook_kms::secrets::SecretData;
use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ApiError(pub String);

/// A PersistentVolumeClaim, as far as OSD keys are concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pvc {
    pub name: String,
    pub labels: BTreeMap<String, String>,
}

/// An Event about a CephCluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub namespace: String,
    pub cluster: String,
    pub cluster_uid: String,
    /// `Normal` or `Warning`.
    pub kind: &'static str,
    pub reason: &'static str,
    pub message: String,
}

/// A coordination.k8s.io Lease, as leader election reads it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Lease {
    pub holder: Option<String>,
    /// Unix time of the last renewal, in microseconds.
    pub renew_micros: Option<i64>,
    pub duration_seconds: i64,
    /// For optimistic concurrency; `None` for a new Lease.
    pub resource_version: Option<String>,
}

pub trait ClusterApi: Send + Sync {
    type KeySecrets<'a>: SecretStore
    where
        Self: 'a;

    /// Rook's OSD key Secrets in `namespace`.
    fn key_secrets<'a>(&'a self, namespace: &str) -> Self::KeySecrets<'a>;
    /// Every CephCluster the controller watches, as JSON objects.
    fn ceph_clusters(&self) -> impl Future<Output = Result<Vec<Value>, ApiError>> + Send;
    fn pvcs(&self, namespace: &str) -> impl Future<Output = Result<Vec<Pvc>, ApiError>> + Send;
    /// A Secret the kms settings name (token, TLS material).
    fn secret(&self, namespace: &str, name: &str) -> impl Future<Output = Result<Option<SecretData>, ApiError>> + Send;
    fn event(&self, event: &Event) -> impl Future<Output = Result<(), ApiError>> + Send;
    fn lease(&self, namespace: &str, name: &str) -> impl Future<Output = Result<Option<Lease>, ApiError>> + Send;
    /// Creates or replaces the Lease; `Ok(false)` when someone else changed it first.
    fn write_lease(
        &self,
        namespace: &str,
        name: &str,
        lease: &Lease,
    ) -> impl Future<Output = Result<bool, ApiError>> + Send;
}

/// An in-memory cluster for logic tests (no kube-apiserver can run on the test machines).
#[derive(Debug, Default)]
pub struct MemoryCluster {
    pub clusters: Mutex<Vec<Value>>,
    pub pvcs: Mutex<BTreeMap<String, Vec<Pvc>>>,
    pub secrets: Mutex<BTreeMap<(String, String), SecretData>>,
    pub key_secrets: BTreeMap<String, MemorySecrets>,
    pub events: Mutex<Vec<Event>>,
    pub leases: Mutex<BTreeMap<(String, String), Lease>>,
    pub lease_version: Mutex<u64>,
    /// Secrets written by the certificate manager, with resource versions.
    pub stored_secrets: Mutex<BTreeMap<(String, String), crate::certs::StoredSecret>>,
    /// Webhook configurations: `validating/<name>` or `mutating/<name>` → (webhook, caBundle).
    pub webhook_configs: Mutex<BTreeMap<String, crate::certs::Bundles>>,
}

fn config_key(kind: crate::certs::WebhookKind, name: &str) -> String {
    match kind {
        crate::certs::WebhookKind::Validating => format!("validating/{name}"),
        crate::certs::WebhookKind::Mutating => format!("mutating/{name}"),
    }
}

impl crate::certs::CertApi for MemoryCluster {
    async fn get_secret(&self, namespace: &str, name: &str) -> Result<Option<crate::certs::StoredSecret>, ApiError> {
        Ok(locked(&self.stored_secrets)?.get(&(namespace.to_string(), name.to_string())).cloned())
    }

    async fn put_secret(
        &self,
        namespace: &str,
        name: &str,
        _type: &str,
        data: BTreeMap<String, Vec<u8>>,
        resource_version: Option<&str>,
    ) -> Result<bool, ApiError> {
        let mut secrets = locked(&self.stored_secrets)?;
        let key = (namespace.to_string(), name.to_string());
        if secrets.get(&key).and_then(|s| s.resource_version.as_deref()) != resource_version {
            return Ok(false);
        }
        let mut version = locked(&self.lease_version)?;
        *version += 1;
        secrets.insert(key, crate::certs::StoredSecret { data, resource_version: Some(version.to_string()) });
        Ok(true)
    }

    async fn ca_bundles(
        &self,
        kind: crate::certs::WebhookKind,
        name: &str,
    ) -> Result<Option<crate::certs::Bundles>, ApiError> {
        Ok(locked(&self.webhook_configs)?.get(&config_key(kind, name)).cloned())
    }

    async fn apply_ca_bundle(
        &self,
        kind: crate::certs::WebhookKind,
        name: &str,
        webhooks: &[String],
        bundle: &[u8],
    ) -> Result<(), ApiError> {
        let mut configs = locked(&self.webhook_configs)?;
        let entry = configs.entry(config_key(kind, name)).or_default();
        for w in webhooks {
            match entry.iter_mut().find(|(n, _)| n == w) {
                Some(e) => e.1 = bundle.to_vec(),
                None => entry.push((w.clone(), bundle.to_vec())),
            }
        }
        Ok(())
    }
}

fn locked<T>(m: &Mutex<T>) -> Result<std::sync::MutexGuard<'_, T>, ApiError> {
    m.lock().map_err(|_| ApiError("in-memory cluster poisoned".into()))
}

/// An empty store for namespaces the memory cluster was not given.
static EMPTY: std::sync::LazyLock<MemorySecrets> = std::sync::LazyLock::new(MemorySecrets::default);

impl ClusterApi for MemoryCluster {
    type KeySecrets<'a> = &'a MemorySecrets;

    fn key_secrets<'a>(&'a self, namespace: &str) -> &'a MemorySecrets {
        self.key_secrets.get(namespace).unwrap_or(&EMPTY)
    }

    async fn ceph_clusters(&self) -> Result<Vec<Value>, ApiError> {
        Ok(locked(&self.clusters)?.clone())
    }

    async fn pvcs(&self, namespace: &str) -> Result<Vec<Pvc>, ApiError> {
        Ok(locked(&self.pvcs)?.get(namespace).cloned().unwrap_or_default())
    }

    async fn secret(&self, namespace: &str, name: &str) -> Result<Option<SecretData>, ApiError> {
        Ok(locked(&self.secrets)?.get(&(namespace.to_string(), name.to_string())).cloned())
    }

    async fn event(&self, event: &Event) -> Result<(), ApiError> {
        locked(&self.events)?.push(event.clone());
        Ok(())
    }

    async fn lease(&self, namespace: &str, name: &str) -> Result<Option<Lease>, ApiError> {
        Ok(locked(&self.leases)?.get(&(namespace.to_string(), name.to_string())).cloned())
    }

    async fn write_lease(&self, namespace: &str, name: &str, lease: &Lease) -> Result<bool, ApiError> {
        let mut leases = locked(&self.leases)?;
        let key = (namespace.to_string(), name.to_string());
        let current = leases.get(&key).and_then(|l| l.resource_version.clone());
        if current != lease.resource_version {
            return Ok(false);
        }
        let mut version = locked(&self.lease_version)?;
        *version += 1;
        leases.insert(key, Lease { resource_version: Some(version.to_string()), ..lease.clone() });
        Ok(true)
    }
}
