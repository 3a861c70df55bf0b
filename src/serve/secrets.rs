//! Where `serve` reads Secrets: the Kubernetes API (the CephCluster's namespace, with a deadline)
//! or Secret manifests given with `--secrets` (local runs and tests without a cluster).

use std::collections::BTreeSet;
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use rook_kms::secrets::{ManifestSecrets, SecretData, SecretSnapshot, SecretSource, SecretSourceError};
use tokio::time::Instant;

/// Reads Secrets through kube-rs. Only `get` on Secrets is needed (RBAC: `secrets: get`).
#[derive(Clone)]
pub struct KubeSecrets {
    client: kube::Client,
}

impl KubeSecrets {
    pub fn new(client: kube::Client) -> Self {
        Self { client }
    }
}

impl SecretSource for KubeSecrets {
    async fn get(&self, namespace: &str, name: &str) -> Result<Option<SecretData>, SecretSourceError> {
        let api: Api<Secret> = Api::namespaced(self.client.clone(), namespace);
        match api.get_opt(name).await {
            Ok(None) => Ok(None),
            Ok(Some(secret)) => {
                Ok(Some(SecretData::new(secret.data.unwrap_or_default().into_iter().map(|(k, v)| (k, v.0)).collect())))
            }
            Err(kube::Error::Api(status)) if status.code == 403 => Err(SecretSourceError {
                reason: format!("forbidden: the webhook's ServiceAccount may not get Secrets in namespace {namespace}"),
            }),
            Err(kube::Error::Api(status)) => Err(SecretSourceError {
                reason: format!(
                    "the API server answered {} {}",
                    status.code,
                    status.reason.chars().take(80).collect::<String>()
                ),
            }),
            Err(e) => Err(SecretSourceError {
                reason: e.to_string().lines().next().unwrap_or_default().chars().take(120).collect(),
            }),
        }
    }
}

/// The Secret source `serve` was started with.
pub enum Secrets {
    Kube(KubeSecrets),
    Manifests(ManifestSecrets),
}

impl Secrets {
    /// Fetches every named Secret, all within `budget`; what is not read by then is unavailable.
    pub async fn snapshot(&self, namespace: &str, names: &BTreeSet<String>, budget: Duration) -> SecretSnapshot {
        match self {
            Secrets::Manifests(m) => m.snapshot(namespace, names),
            Secrets::Kube(k) => fetch_within(k, namespace, names, budget).await,
        }
    }
}

/// Sequential gets under one deadline (a CephCluster names at most four Secrets).
pub async fn fetch_within<S: SecretSource>(
    source: &S,
    namespace: &str,
    names: &BTreeSet<String>,
    budget: Duration,
) -> SecretSnapshot {
    let deadline = Instant::now() + budget;
    let mut snapshot = SecretSnapshot::default();
    for name in names {
        let result = match tokio::time::timeout_at(deadline, source.get(namespace, name)).await {
            Ok(result) => result,
            Err(_) => Err(SecretSourceError { reason: format!("timed out after {:.1}s", budget.as_secs_f64()) }),
        };
        snapshot.insert(name.clone(), result);
    }
    snapshot
}
