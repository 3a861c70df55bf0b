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

#[cfg(test)]
mod tests {
    //! `KubeSecrets` against recorded API exchanges. TEST DOUBLE: no kube-apiserver can run here,
    //! so a tower service answers with the responses a real API server gives (bodies as recorded
    //! from `kubectl get secret -o json` and from 404/403 Status replies).

    use super::*;
    use http_body_util::Full;
    use hyper::body::Bytes;
    use rook_kms::secrets::Lookup;

    fn client(reply: fn(&str) -> (u16, &'static str), delay: Duration) -> kube::Client {
        let service = tower::service_fn(move |req: hyper::Request<kube::client::Body>| {
            let path = req.uri().path().to_string();
            async move {
                tokio::time::sleep(delay).await;
                let (status, body) = reply(&path);
                Ok::<_, std::convert::Infallible>(
                    hyper::Response::builder()
                        .status(status)
                        .header("content-type", "application/json")
                        .body(Full::new(Bytes::from_static(body.as_bytes())))
                        .unwrap_or_default(),
                )
            }
        });
        kube::Client::new(service, "default")
    }

    const FOUND: &str = r#"{"kind":"Secret","apiVersion":"v1","metadata":{"name":"vault-token","namespace":"rook-ceph","resourceVersion":"1"},"data":{"token":"cy5GWXpsbzAyY2duVGVoRjhkWG5Bb3EyWjkK"},"type":"Opaque"}"#;
    const NOT_FOUND: &str = r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"secrets \"nope\" not found","reason":"NotFound","details":{"name":"nope","kind":"secrets"},"code":404}"#;
    const FORBIDDEN: &str = r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"secrets \"locked\" is forbidden: User \"system:serviceaccount:rook-ceph:rook-kms-webhook\" cannot get resource \"secrets\" in API group \"\" in the namespace \"rook-ceph\"","reason":"Forbidden","details":{"name":"locked","kind":"secrets"},"code":403}"#;

    fn recorded(path: &str) -> (u16, &'static str) {
        match path {
            "/api/v1/namespaces/rook-ceph/secrets/vault-token" => (200, FOUND),
            "/api/v1/namespaces/rook-ceph/secrets/locked" => (403, FORBIDDEN),
            _ => (404, NOT_FOUND),
        }
    }

    fn names(list: &[&str]) -> BTreeSet<String> {
        list.iter().map(ToString::to_string).collect()
    }

    #[tokio::test]
    async fn found_missing_and_forbidden() {
        let source = KubeSecrets::new(client(recorded, Duration::ZERO));
        let snap =
            fetch_within(&source, "rook-ceph", &names(&["vault-token", "nope", "locked"]), Duration::from_secs(2))
                .await;
        match snap.lookup("vault-token") {
            Lookup::Found(data) => assert_eq!(data.get("token"), Some(&b"s.FYzlo02cgnTehF8dXnAoq2Z9\n"[..])),
            other => panic!("{other:?}"),
        }
        assert!(matches!(snap.lookup("nope"), Lookup::NotFound));
        match snap.lookup("locked") {
            Lookup::Unavailable(e) => assert!(e.reason.contains("forbidden"), "{e}"),
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn a_slow_api_server_is_cut_at_the_deadline() {
        let source = KubeSecrets::new(client(recorded, Duration::from_secs(5)));
        let started = std::time::Instant::now();
        let snap =
            fetch_within(&source, "rook-ceph", &names(&["vault-token", "other"]), Duration::from_millis(200)).await;
        assert!(started.elapsed() < Duration::from_secs(1), "{:?}", started.elapsed());
        for name in ["vault-token", "other"] {
            match snap.lookup(name) {
                Lookup::Unavailable(e) => assert!(e.reason.contains("timed out after 0.2s"), "{e}"),
                other => panic!("{name}: {other:?}"),
            }
        }
    }
}
