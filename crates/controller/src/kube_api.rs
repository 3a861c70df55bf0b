//! [`ClusterApi`] over kube-rs: the only place the controller talks to the Kubernetes API.
//! RBAC it needs: get/list/watch cephclusters.ceph.rook.io and persistentvolumeclaims; get secrets (the
//! kms settings' Secrets and Rook's key Secrets; create/update/delete only for the admin
//! operations); create events; get/create/update leases.coordination.k8s.io.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::coordination::v1::{Lease as KubeLease, LeaseSpec};
use k8s_openapi::api::core::v1::{Event as KubeEvent, ObjectReference, PersistentVolumeClaim, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, Time};
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use kube::core::{ApiResource, DynamicObject, GroupVersionKind};
use rook_kms::keys::KeyError;
use rook_kms::keys::kube::{KeySecret, SecretStore};
use rook_kms::secrets::SecretData;
use serde_json::Value;

use crate::api::{ApiError, ClusterApi, Event, Lease, Pvc};

fn api_error(e: kube::Error) -> ApiError {
    match e {
        kube::Error::Api(s) => {
            ApiError(format!("the API server answered {} {}", s.code, s.message.chars().take(160).collect::<String>()))
        }
        other => ApiError(other.to_string().lines().next().unwrap_or_default().chars().take(160).collect()),
    }
}

fn key_error(e: kube::Error) -> KeyError {
    KeyError::Kube(api_error(e).0)
}

/// The Kubernetes API through kube-rs; `namespaces` (when not empty) limits the CephClusters
/// watched.
#[derive(Clone)]
pub struct KubeCluster {
    pub client: kube::Client,
    pub namespaces: Vec<String>,
}

/// Rook's key Secrets in one namespace.
pub struct KubeKeySecrets {
    api: Api<Secret>,
}

fn to_key_secret(s: Secret) -> KeySecret {
    KeySecret {
        labels: s.metadata.labels.unwrap_or_default(),
        data: s.data.unwrap_or_default().into_iter().map(|(k, v)| (k, v.0)).collect(),
    }
}

fn to_secret(name: &str, k: KeySecret, resource_version: Option<String>) -> Secret {
    Secret {
        metadata: ObjectMeta {
            name: Some(name.into()),
            labels: Some(k.labels),
            resource_version,
            ..ObjectMeta::default()
        },
        type_: Some("kubernetes.io/rook".into()),
        data: Some(k.data.into_iter().map(|(key, v)| (key, ByteString(v))).collect()),
        ..Secret::default()
    }
}

impl SecretStore for KubeKeySecrets {
    async fn get(&self, name: &str) -> Result<Option<KeySecret>, KeyError> {
        Ok(self.api.get_opt(name).await.map_err(key_error)?.map(to_key_secret))
    }

    async fn create(&self, name: &str, secret: KeySecret) -> Result<bool, KeyError> {
        match self.api.create(&PostParams::default(), &to_secret(name, secret, None)).await {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
            Err(e) => Err(key_error(e)),
        }
    }

    async fn replace(&self, name: &str, secret: KeySecret) -> Result<(), KeyError> {
        let current = self.api.get_opt(name).await.map_err(key_error)?;
        match current {
            None => self.api.create(&PostParams::default(), &to_secret(name, secret, None)).await.map(|_| ()),
            Some(c) => self
                .api
                .replace(name, &PostParams::default(), &to_secret(name, secret, c.metadata.resource_version))
                .await
                .map(|_| ()),
        }
        .map_err(key_error)
    }

    async fn delete(&self, name: &str) -> Result<bool, KeyError> {
        match self.api.delete(name, &DeleteParams::default()).await {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(s)) if s.code == 404 => Ok(false),
            Err(e) => Err(key_error(e)),
        }
    }

    async fn list_labelled(&self, key: &str) -> Result<Vec<(String, KeySecret)>, KeyError> {
        let list = self.api.list(&ListParams::default().labels(key)).await.map_err(key_error)?;
        Ok(list.items.into_iter().map(|s| (s.metadata.name.clone().unwrap_or_default(), to_key_secret(s))).collect())
    }
}

/// A stream that yields `true` for every add, change or delete after now (`false` for bookmarks),
/// and an error when the watch fails (an expired resourceVersion included).
async fn changes_of<K>(
    api: &Api<K>,
    labels: Option<&str>,
) -> Result<futures_util::stream::BoxStream<'static, Result<bool, ApiError>>, ApiError>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + 'static,
{
    use futures_util::StreamExt;
    use kube::api::{WatchEvent, WatchParams};
    let mut list = ListParams::default().limit(1);
    let mut watch = WatchParams::default().timeout(290);
    if let Some(l) = labels {
        list = list.labels(l);
        watch = watch.labels(l);
    }
    let version =
        api.list_metadata(&list).await.map_err(api_error)?.metadata.resource_version.unwrap_or_else(|| "0".into());
    let stream = api.watch(&watch, &version).await.map_err(api_error)?;
    Ok(stream
        .map(|event| match event {
            Ok(WatchEvent::Added(_) | WatchEvent::Modified(_) | WatchEvent::Deleted(_)) => Ok(true),
            Ok(WatchEvent::Bookmark(_)) => Ok(false),
            Ok(WatchEvent::Error(status)) => Err(ApiError(format!("watch ended: {} {}", status.code, status.message))),
            Err(e) => Err(api_error(e)),
        })
        .boxed())
}

fn webhook_kind_name(kind: crate::certs::WebhookKind) -> &'static str {
    match kind {
        crate::certs::WebhookKind::Validating => "ValidatingWebhookConfiguration",
        crate::certs::WebhookKind::Mutating => "MutatingWebhookConfiguration",
    }
}

/// Both configuration kinds through one untyped API: the controller only reads and applies
/// `webhooks[].clientConfig.caBundle`, which has the same shape in both.
fn webhook_configurations(client: &kube::Client, kind: crate::certs::WebhookKind) -> Api<DynamicObject> {
    let gvk = GroupVersionKind::gvk("admissionregistration.k8s.io", "v1", webhook_kind_name(kind));
    let plural = webhook_kind_name(kind).to_lowercase() + "s";
    Api::all_with(client.clone(), &ApiResource::from_gvk_with_plural(&gvk, &plural))
}

fn ceph_cluster_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk("ceph.rook.io", "v1", "CephCluster"), "cephclusters")
}

impl KubeCluster {
    /// Signals `changes` whenever a watched CephCluster or a device-set PVC is added, changed or
    /// deleted. Watches are re-established (with a short backoff) when they end or fail; runs
    /// until the task is aborted.
    pub async fn watch_changes(&self, changes: std::sync::Arc<tokio::sync::Notify>) {
        let mut backoff = std::time::Duration::from_secs(1);
        loop {
            match self.watch_once(&changes).await {
                Ok(()) => backoff = std::time::Duration::from_secs(1),
                Err(e) => {
                    tracing::warn!(error = %e, "watch failed; verifying on the timer until it is back");
                    backoff = (backoff * 2).min(std::time::Duration::from_secs(60));
                }
            }
            tokio::time::sleep(backoff).await;
        }
    }

    /// One round of watches, from the current state on (a list for the resourceVersion first,
    /// so that only real changes signal), until all of them end.
    pub async fn watch_once(&self, changes: &tokio::sync::Notify) -> Result<(), ApiError> {
        use futures_util::StreamExt;
        let clusters = ceph_cluster_resource();
        let namespaces: Vec<Option<&str>> = if self.namespaces.is_empty() {
            vec![None]
        } else {
            self.namespaces.iter().map(|n| Some(n.as_str())).collect()
        };
        let mut streams = Vec::new();
        for ns in namespaces {
            let cluster_api: Api<DynamicObject> = match ns {
                Some(ns) => Api::namespaced_with(self.client.clone(), ns, &clusters),
                None => Api::all_with(self.client.clone(), &clusters),
            };
            let pvc_api: Api<PersistentVolumeClaim> = match ns {
                Some(ns) => Api::namespaced(self.client.clone(), ns),
                None => Api::all(self.client.clone()),
            };
            streams.push(changes_of(&cluster_api, None).await?);
            streams.push(changes_of(&pvc_api, Some(crate::reconcile::DEVICE_SET_LABEL)).await?);
        }
        let mut all = futures_util::stream::select_all(streams);
        while let Some(change) = all.next().await {
            if change? {
                changes.notify_one();
            }
        }
        Ok(())
    }

    /// One CephCluster, as JSON.
    pub async fn ceph_cluster(&self, namespace: &str, name: &str) -> Result<Option<Value>, ApiError> {
        let api: Api<DynamicObject> = Api::namespaced_with(self.client.clone(), namespace, &ceph_cluster_resource());
        match api.get_opt(name).await.map_err(api_error)? {
            None => Ok(None),
            Some(o) => serde_json::to_value(o).map(Some).map_err(|e| ApiError(e.to_string())),
        }
    }
}

impl ClusterApi for KubeCluster {
    type KeySecrets<'a> = KubeKeySecrets;

    fn key_secrets(&self, namespace: &str) -> KubeKeySecrets {
        KubeKeySecrets { api: Api::namespaced(self.client.clone(), namespace) }
    }

    async fn ceph_clusters(&self) -> Result<Vec<Value>, ApiError> {
        let resource = ceph_cluster_resource();
        let apis: Vec<Api<DynamicObject>> = if self.namespaces.is_empty() {
            vec![Api::all_with(self.client.clone(), &resource)]
        } else {
            self.namespaces.iter().map(|ns| Api::namespaced_with(self.client.clone(), ns, &resource)).collect()
        };
        let mut out = Vec::new();
        for api in apis {
            let list = api.list(&ListParams::default()).await.map_err(api_error)?;
            for o in list.items {
                out.push(serde_json::to_value(o).map_err(|e| ApiError(e.to_string()))?);
            }
        }
        Ok(out)
    }

    async fn pvcs(&self, namespace: &str) -> Result<Vec<Pvc>, ApiError> {
        let api: Api<PersistentVolumeClaim> = Api::namespaced(self.client.clone(), namespace);
        let list =
            api.list(&ListParams::default().labels(crate::reconcile::DEVICE_SET_LABEL)).await.map_err(api_error)?;
        Ok(list
            .items
            .into_iter()
            .map(|p| Pvc { name: p.metadata.name.unwrap_or_default(), labels: p.metadata.labels.unwrap_or_default() })
            .collect())
    }

    async fn secret(&self, namespace: &str, name: &str) -> Result<Option<SecretData>, ApiError> {
        let api: Api<Secret> = Api::namespaced(self.client.clone(), namespace);
        Ok(api
            .get_opt(name)
            .await
            .map_err(api_error)?
            .map(|s| SecretData::new(s.data.unwrap_or_default().into_iter().map(|(k, v)| (k, v.0)).collect())))
    }

    async fn event(&self, e: &Event) -> Result<(), ApiError> {
        let api: Api<KubeEvent> = Api::namespaced(self.client.clone(), &e.namespace);
        let now = Time(k8s_openapi::jiff::Timestamp::now());
        let event = KubeEvent {
            metadata: ObjectMeta { generate_name: Some(format!("{}.", e.cluster)), ..ObjectMeta::default() },
            involved_object: ObjectReference {
                api_version: Some("ceph.rook.io/v1".into()),
                kind: Some("CephCluster".into()),
                name: Some(e.cluster.clone()),
                namespace: Some(e.namespace.clone()),
                uid: Some(e.cluster_uid.clone()).filter(|u| !u.is_empty()),
                ..ObjectReference::default()
            },
            reason: Some(e.reason.into()),
            message: Some(e.message.clone()),
            type_: Some(e.kind.into()),
            source: Some(k8s_openapi::api::core::v1::EventSource {
                component: Some("rook-kms-controller".into()),
                host: None,
            }),
            first_timestamp: Some(now.clone()),
            last_timestamp: Some(now),
            count: Some(1),
            ..KubeEvent::default()
        };
        api.create(&PostParams::default(), &event).await.map(|_| ()).map_err(api_error)
    }

    async fn lease(&self, namespace: &str, name: &str) -> Result<Option<Lease>, ApiError> {
        let api: Api<KubeLease> = Api::namespaced(self.client.clone(), namespace);
        Ok(api.get_opt(name).await.map_err(api_error)?.map(|l| {
            let spec = l.spec.unwrap_or_default();
            Lease {
                holder: spec.holder_identity,
                renew_micros: spec.renew_time.map(|t| t.0.as_microsecond()),
                duration_seconds: i64::from(spec.lease_duration_seconds.unwrap_or(15)),
                resource_version: l.metadata.resource_version,
            }
        }))
    }

    async fn write_lease(&self, namespace: &str, name: &str, lease: &Lease) -> Result<bool, ApiError> {
        let api: Api<KubeLease> = Api::namespaced(self.client.clone(), namespace);
        let renew =
            lease.renew_micros.and_then(|m| k8s_openapi::jiff::Timestamp::from_microsecond(m).ok()).map(MicroTime);
        let object = KubeLease {
            metadata: ObjectMeta {
                name: Some(name.into()),
                resource_version: lease.resource_version.clone(),
                labels: Some(BTreeMap::from([("app.kubernetes.io/name".into(), "rook-kms-controller".into())])),
                ..ObjectMeta::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: lease.holder.clone(),
                lease_duration_seconds: Some(lease.duration_seconds as i32),
                renew_time: renew,
                ..LeaseSpec::default()
            }),
        };
        let result = match lease.resource_version {
            None => api.create(&PostParams::default(), &object).await,
            Some(_) => api.replace(name, &PostParams::default(), &object).await,
        };
        match result {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
            Err(e) => Err(api_error(e)),
        }
    }
}

impl crate::certs::CertApi for KubeCluster {
    async fn get_secret(&self, namespace: &str, name: &str) -> Result<Option<crate::certs::StoredSecret>, ApiError> {
        let api: Api<Secret> = Api::namespaced(self.client.clone(), namespace);
        Ok(api.get_opt(name).await.map_err(api_error)?.map(|s| crate::certs::StoredSecret {
            data: s.data.unwrap_or_default().into_iter().map(|(k, v)| (k, v.0)).collect(),
            resource_version: s.metadata.resource_version,
        }))
    }

    async fn put_secret(
        &self,
        namespace: &str,
        name: &str,
        type_: &str,
        data: BTreeMap<String, Vec<u8>>,
        resource_version: Option<&str>,
    ) -> Result<bool, ApiError> {
        let api: Api<Secret> = Api::namespaced(self.client.clone(), namespace);
        let secret = Secret {
            metadata: ObjectMeta {
                name: Some(name.into()),
                resource_version: resource_version.map(str::to_string),
                labels: Some(BTreeMap::from([("app.kubernetes.io/managed-by".into(), "rook-kms-controller".into())])),
                ..ObjectMeta::default()
            },
            type_: Some(type_.into()),
            data: Some(data.into_iter().map(|(k, v)| (k, ByteString(v))).collect()),
            ..Secret::default()
        };
        let result = match resource_version {
            None => api.create(&PostParams::default(), &secret).await,
            Some(_) => api.replace(name, &PostParams::default(), &secret).await,
        };
        match result {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
            Err(e) => Err(api_error(e)),
        }
    }

    async fn ca_bundles(
        &self,
        kind: crate::certs::WebhookKind,
        name: &str,
    ) -> Result<Option<crate::certs::Bundles>, ApiError> {
        use base64::Engine as _;
        let Some(config) = webhook_configurations(&self.client, kind).get_opt(name).await.map_err(api_error)? else {
            return Ok(None);
        };
        let webhooks = config.data.get("webhooks").and_then(Value::as_array).cloned().unwrap_or_default();
        Ok(Some(
            webhooks
                .iter()
                .map(|w| {
                    let name = w.get("name").and_then(Value::as_str).unwrap_or_default().to_string();
                    let bundle = w
                        .pointer("/clientConfig/caBundle")
                        .and_then(Value::as_str)
                        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
                        .unwrap_or_default();
                    (name, bundle)
                })
                .collect(),
        ))
    }

    async fn apply_ca_bundle(
        &self,
        kind: crate::certs::WebhookKind,
        name: &str,
        webhooks: &[String],
        bundle: &[u8],
    ) -> Result<(), ApiError> {
        use base64::Engine as _;
        use kube::api::{Patch, PatchParams};
        let encoded = base64::engine::general_purpose::STANDARD.encode(bundle);
        // Server-side apply of just the caBundle fields, under our own field manager: Helm keeps
        // owning everything else, and GitOps tools see the field as ours.
        let patch = serde_json::json!({
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": webhook_kind_name(kind),
            "metadata": {"name": name},
            "webhooks": webhooks.iter().map(|w| serde_json::json!({"name": w, "clientConfig": {"caBundle": encoded}})).collect::<Vec<_>>(),
        });
        let params = PatchParams::apply(crate::certs::FIELD_MANAGER).force();
        webhook_configurations(&self.client, kind)
            .patch(name, &params, &Patch::Apply(&patch))
            .await
            .map(|_| ())
            .map_err(api_error)
    }
}

#[cfg(test)]
mod tests {
    //! `KubeCluster` against recorded API exchanges. TEST DOUBLE: no kube-apiserver can run here,
    //! so a tower service answers each request the way a real API server does (bodies shaped as
    //! `kubectl get -o json` prints them, Status objects for errors), and records what it was sent.
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use std::sync::{Arc, Mutex};

    use http_body_util::{BodyExt, Full};
    use hyper::body::Bytes;

    use super::*;

    type Seen = Arc<Mutex<Vec<(String, String, Value)>>>;

    fn client(seen: Seen) -> kube::Client {
        let service = tower::service_fn(move |req: hyper::Request<kube::client::Body>| {
            let seen = seen.clone();
            async move {
                let method = req.method().to_string();
                let uri = req.uri().to_string();
                let body = req.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
                let sent: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                seen.lock().unwrap().push((method.clone(), uri.clone(), sent.clone()));
                let (status, reply) = answer(&method, &uri, &sent);
                Ok::<_, std::convert::Infallible>(
                    hyper::Response::builder()
                        .status(status)
                        .header("content-type", "application/json")
                        .body(Full::new(Bytes::from(reply.to_string())))
                        .unwrap(),
                )
            }
        });
        kube::Client::new(service, "default")
    }

    fn status(code: u16, reason: &str, message: &str) -> Value {
        serde_json::json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message, "reason": reason, "code": code})
    }

    fn answer(method: &str, uri: &str, sent: &Value) -> (u16, Value) {
        match (method, uri) {
            ("GET", "/apis/ceph.rook.io/v1/cephclusters?") | ("GET", "/apis/ceph.rook.io/v1/cephclusters") => (
                200,
                serde_json::json!({
                "apiVersion": "ceph.rook.io/v1", "kind": "CephClusterList", "metadata": {"resourceVersion": "42"},
                "items": [{"apiVersion": "ceph.rook.io/v1", "kind": "CephCluster",
                    "metadata": {"name": "rook-ceph", "namespace": "rook-ceph", "uid": "u-1", "resourceVersion": "41"},
                    "spec": {"security": {"kms": {"connectionDetails": {"KMS_PROVIDER": "vault"}}}}}]}),
            ),
            ("GET", u) if u.starts_with("/api/v1/namespaces/rook-ceph/persistentvolumeclaims?") => (
                200,
                serde_json::json!({
                "apiVersion": "v1", "kind": "PersistentVolumeClaimList", "metadata": {"resourceVersion": "7"},
                "items": [{"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                    "metadata": {"name": "set1-data-0-abcde", "namespace": "rook-ceph",
                        "labels": {"ceph.rook.io/DeviceSet": "set1", "ceph.rook.io/DeviceSetPVCId": "set1-data-0", "ceph.rook.io/setIndex": "0"}},
                    "spec": {"accessModes": ["ReadWriteOnce"], "volumeMode": "Block", "resources": {"requests": {"storage": "10Gi"}}},
                    "status": {"phase": "Bound"}}]}),
            ),
            ("POST", "/api/v1/namespaces/rook-ceph/events?") => (201, sent.clone()),
            ("GET", "/apis/coordination.k8s.io/v1/namespaces/rook-ceph/leases/rook-kms-controller") => {
                (404, status(404, "NotFound", "leases.coordination.k8s.io \"rook-kms-controller\" not found"))
            }
            ("POST", "/apis/coordination.k8s.io/v1/namespaces/rook-ceph/leases?") => {
                let mut created = sent.clone();
                created["metadata"]["resourceVersion"] = "100".into();
                (201, created)
            }
            ("PUT", "/apis/coordination.k8s.io/v1/namespaces/rook-ceph/leases/rook-kms-controller?") => (
                409,
                status(
                    409,
                    "Conflict",
                    "Operation cannot be fulfilled on leases.coordination.k8s.io \"rook-kms-controller\": the object has been modified; please apply your changes to the latest version and try again",
                ),
            ),
            ("POST", "/api/v1/namespaces/rook-ceph/secrets?")
                if sent["metadata"]["name"] == "rook-ceph-osd-encryption-key-taken" =>
            {
                (409, status(409, "AlreadyExists", "secrets \"rook-ceph-osd-encryption-key-taken\" already exists"))
            }
            ("POST", "/api/v1/namespaces/rook-ceph/secrets?") => (201, sent.clone()),
            ("GET", u) if u.starts_with("/api/v1/namespaces/rook-ceph/secrets/") => {
                (404, status(404, "NotFound", "secrets not found"))
            }
            ("GET", "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations/rkw") => (
                200,
                serde_json::json!({
                "apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
                "metadata": {"name": "rkw", "resourceVersion": "5"},
                "webhooks": [{"name": "validate.cephclusters.rook-kms-webhook.io", "admissionReviewVersions": ["v1"], "sideEffects": "None",
                    "clientConfig": {"service": {"name": "rkw", "namespace": "rook-kms", "path": "/validate", "port": 443}}}]}),
            ),
            ("GET", "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/rkw") => (
                200,
                serde_json::json!({
                    "apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingWebhookConfiguration",
                    "metadata": {"name": "rkw", "resourceVersion": "6"},
                    "webhooks": [{"name": "mutate.cephclusters.rook-kms-webhook.io", "admissionReviewVersions": ["v1"], "sideEffects": "None",
                        "clientConfig": {"caBundle": "UEVN", "service": {"name": "rkw", "namespace": "rook-kms", "path": "/mutate", "port": 443}}}]
                }),
            ),
            ("PATCH", u)
                if u.starts_with("/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations/rkw?") =>
            {
                (200, sent.clone())
            }
            _ => (404, status(404, "NotFound", "the server could not find the requested resource")),
        }
    }

    #[tokio::test]
    async fn ca_bundle_is_server_side_applied_under_our_field_manager() {
        use crate::certs::{CertApi, WebhookKind};
        let seen = Seen::default();
        let api = KubeCluster { client: client(seen.clone()), namespaces: vec![] };
        let webhooks = api.ca_bundles(WebhookKind::Validating, "rkw").await.unwrap().unwrap();
        assert_eq!(webhooks, [("validate.cephclusters.rook-kms-webhook.io".to_string(), Vec::new())]);
        assert_eq!(api.ca_bundles(WebhookKind::Mutating, "absent").await.unwrap(), None);
        let mutating = api.ca_bundles(WebhookKind::Mutating, "rkw").await.unwrap().unwrap();
        assert_eq!(mutating, [("mutate.cephclusters.rook-kms-webhook.io".to_string(), b"PEM".to_vec())]);
        let names = vec![webhooks[0].0.clone()];
        api.apply_ca_bundle(WebhookKind::Validating, "rkw", &names, b"PEM").await.unwrap();
        let (method, uri, body) = seen.lock().unwrap().last().unwrap().clone();
        assert_eq!(method, "PATCH");
        assert!(uri.contains("fieldManager=rook-kms-controller") && uri.contains("force=true"), "{uri}");
        assert_eq!(body["kind"], "ValidatingWebhookConfiguration");
        assert_eq!(body["webhooks"][0]["name"], "validate.cephclusters.rook-kms-webhook.io");
        assert_eq!(body["webhooks"][0]["clientConfig"]["caBundle"], "UEVN");
        assert!(body["webhooks"][0].get("sideEffects").is_none(), "only the field we own is applied");
    }

    #[tokio::test]
    async fn lists_clusters_and_osd_pvcs() {
        let seen = Seen::default();
        let api = KubeCluster { client: client(seen.clone()), namespaces: vec![] };
        let clusters = api.ceph_clusters().await.unwrap();
        assert_eq!(clusters[0]["metadata"]["uid"], "u-1");
        assert_eq!(
            clusters[0].pointer("/spec/security/kms/connectionDetails/KMS_PROVIDER"),
            Some(&Value::from("vault"))
        );
        let pvcs = api.pvcs("rook-ceph").await.unwrap();
        assert_eq!(pvcs[0].name, "set1-data-0-abcde");
        let uris: Vec<String> = seen.lock().unwrap().iter().map(|(_, u, _)| u.clone()).collect();
        assert!(uris[1].contains("labelSelector=ceph.rook.io%2FDeviceSet"), "{uris:?}");
    }

    #[tokio::test]
    async fn events_leases_and_key_secrets_are_written_as_the_api_expects() {
        let seen = Seen::default();
        let api = KubeCluster { client: client(seen.clone()), namespaces: vec![] };
        api.event(&Event {
            namespace: "rook-ceph".into(),
            cluster: "rook-ceph".into(),
            cluster_uid: "u-1".into(),
            kind: "Warning",
            reason: "KeyMissing",
            message: "1 encrypted OSD PVCs have no key".into(),
        })
        .await
        .unwrap();
        let event = seen.lock().unwrap()[0].2.clone();
        assert_eq!(event["involvedObject"]["kind"], "CephCluster");
        assert_eq!(event["involvedObject"]["uid"], "u-1");
        assert_eq!((event["type"].as_str(), event["reason"].as_str()), (Some("Warning"), Some("KeyMissing")));

        assert_eq!(api.lease("rook-ceph", "rook-kms-controller").await.unwrap(), None);
        let lease = Lease {
            holder: Some("pod-a".into()),
            renew_micros: Some(1_800_000_000_000_000),
            duration_seconds: 15,
            resource_version: None,
        };
        assert!(api.write_lease("rook-ceph", "rook-kms-controller", &lease).await.unwrap());
        let sent = seen.lock().unwrap().last().unwrap().2.clone();
        assert_eq!(sent["spec"]["holderIdentity"], "pod-a");
        assert_eq!(sent["spec"]["leaseDurationSeconds"], 15);
        assert!(sent["spec"]["renewTime"].as_str().unwrap().starts_with("2027-01-15T08:00:00"), "{sent}");
        let stale = Lease { resource_version: Some("99".into()), ..lease };
        assert!(
            !api.write_lease("rook-ceph", "rook-kms-controller", &stale).await.unwrap(),
            "409 means another replica won"
        );

        let secrets = api.key_secrets("rook-ceph");
        let secret = rook_kms::keys::kube::osd_key_secret("pvc-1", b"uid-1");
        assert!(secrets.create("rook-ceph-osd-encryption-key-pvc-1", secret.clone()).await.unwrap());
        let sent = seen.lock().unwrap().last().unwrap().2.clone();
        assert_eq!(sent["type"], "kubernetes.io/rook");
        assert_eq!(sent["metadata"]["labels"]["pvc_name"], "pvc-1");
        assert_eq!(sent["data"]["dmcrypt-key"], "dWlkLTE=");
        assert!(!secrets.create("rook-ceph-osd-encryption-key-taken", secret).await.unwrap(), "409: it exists");
        assert_eq!(secrets.get("rook-ceph-osd-encryption-key-none").await.unwrap(), None);
    }

    /// A recorded watch: the list for the resourceVersion, then newline-delimited events.
    fn watching(pvc_events: &'static str, seen: Seen) -> kube::Client {
        let service = tower::service_fn(move |req: hyper::Request<kube::client::Body>| {
            let seen = seen.clone();
            async move {
                let uri = req.uri().to_string();
                seen.lock().unwrap().push(("GET".into(), uri.clone(), Value::Null));
                let body = if !uri.contains("watch=true") {
                    r#"{"apiVersion":"meta.k8s.io/v1","kind":"PartialObjectMetadataList","metadata":{"resourceVersion":"100"},"items":[]}"#.to_string()
                } else if uri.contains("cephclusters") {
                    concat!(
                        r#"{"type":"MODIFIED","object":{"apiVersion":"ceph.rook.io/v1","kind":"CephCluster","metadata":{"name":"c","namespace":"rook-ceph","resourceVersion":"101"},"spec":{}}}"#,
                        "\n"
                    )
                    .to_string()
                } else {
                    pvc_events.to_string()
                };
                Ok::<_, std::convert::Infallible>(
                    hyper::Response::builder()
                        .status(200)
                        .header("content-type", "application/json")
                        .body(Full::new(Bytes::from(body)))
                        .unwrap(),
                )
            }
        });
        kube::Client::new(service, "default")
    }

    #[tokio::test]
    async fn watches_signal_real_changes_from_the_current_version() {
        let seen = Seen::default();
        let bookmark = concat!(
            r#"{"type":"BOOKMARK","object":{"apiVersion":"v1","kind":"PersistentVolumeClaim","metadata":{"resourceVersion":"102"}}}"#,
            "\n"
        );
        let api = KubeCluster { client: watching(bookmark, seen.clone()), namespaces: vec!["rook-ceph".into()] };
        let changes = tokio::sync::Notify::new();
        api.watch_once(&changes).await.unwrap();
        tokio::time::timeout(std::time::Duration::from_millis(100), changes.notified())
            .await
            .expect("a change was signalled");
        let uris: Vec<String> = seen.lock().unwrap().iter().map(|(_, u, _)| u.clone()).collect();
        let watches: Vec<&String> = uris.iter().filter(|u| u.contains("watch=true")).collect();
        assert_eq!(watches.len(), 2, "{uris:?}");
        assert!(
            watches.iter().all(|u| u.contains("resourceVersion=100") && u.contains("/namespaces/rook-ceph/")),
            "{uris:?}"
        );
        assert!(watches[1].contains("labelSelector=ceph.rook.io%2FDeviceSet"), "{uris:?}");
    }

    #[tokio::test]
    async fn an_expired_watch_is_an_error_so_it_is_re_established() {
        let gone = concat!(
            r#"{"type":"ERROR","object":{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"too old resource version: 100 (150)","reason":"Expired","code":410}}"#,
            "\n"
        );
        let api = KubeCluster { client: watching(gone, Seen::default()), namespaces: vec![] };
        let err = api.watch_once(&tokio::sync::Notify::new()).await.unwrap_err();
        assert!(err.0.contains("410"), "{err}");
    }
}
