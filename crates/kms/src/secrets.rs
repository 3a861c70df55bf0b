//! Secrets: the only door through which the rules see key material.
//!
//! The rules never fetch anything. A caller asks [`referenced_secrets`] which Secrets a cluster
//! names, fetches them through a [`SecretSource`] into a [`SecretSnapshot`], and hands the snapshot
//! to the rules. Secret values never appear in `Debug` output.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::future::Future;

use base64::Engine as _;
use serde_json::Value;

use crate::cluster::Cluster;
use crate::config::Provider;

/// The data of one Secret: key → bytes. `Debug` shows key names and sizes, never values.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct SecretData {
    data: BTreeMap<String, Vec<u8>>,
}

impl fmt::Debug for SecretData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.data.iter().map(|(k, v)| (k, format!("<{} bytes>", v.len())))).finish()
    }
}

impl SecretData {
    pub fn new(data: BTreeMap<String, Vec<u8>>) -> Self {
        Self { data }
    }

    pub fn get(&self, key: &str) -> Option<&[u8]> {
        self.data.get(key).map(Vec::as_slice)
    }

    /// The value of `key` when present and non-empty (Rook's "not found or empty" check).
    pub fn non_empty(&self, key: &str) -> Option<&[u8]> {
        self.get(key).filter(|v| !v.is_empty())
    }

    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.data.keys().map(String::as_str)
    }

    /// A stable digest of the contents, for cache keys (no value can be recovered from it).
    pub fn digest(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        self.data.hash(&mut h);
        h.finish()
    }
}

/// Why a Secret could not be read (as opposed to "it does not exist").
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct SecretSourceError {
    /// A bounded, human-readable reason (forbidden, timed out, ...), never a Secret value.
    pub reason: String,
}

/// Gets one Secret by namespace and name. `Ok(None)` means it does not exist.
pub trait SecretSource: Send + Sync {
    fn get(
        &self,
        namespace: &str,
        name: &str,
    ) -> impl Future<Output = Result<Option<SecretData>, SecretSourceError>> + Send;
}

/// What was found for each referenced Secret name, in the cluster's namespace.
#[derive(Debug, Clone, Default)]
pub struct SecretSnapshot {
    entries: BTreeMap<String, Result<Option<SecretData>, SecretSourceError>>,
}

/// The outcome of looking one Secret up.
#[derive(Debug, Clone, Copy)]
pub enum Lookup<'a> {
    Found(&'a SecretData),
    NotFound,
    Unavailable(&'a SecretSourceError),
}

impl SecretSnapshot {
    pub fn insert(&mut self, name: impl Into<String>, result: Result<Option<SecretData>, SecretSourceError>) {
        self.entries.insert(name.into(), result);
    }

    pub fn lookup(&self, name: &str) -> Lookup<'_> {
        match self.entries.get(name) {
            Some(Ok(Some(data))) => Lookup::Found(data),
            Some(Ok(None)) | None => Lookup::NotFound,
            Some(Err(e)) => Lookup::Unavailable(e),
        }
    }

    /// Fetches every named Secret from `source`.
    pub async fn fetch<S: SecretSource>(source: &S, namespace: &str, names: &BTreeSet<String>) -> Self {
        let mut snapshot = Self::default();
        for name in names {
            let result = source.get(namespace, name).await;
            snapshot.insert(name.clone(), result);
        }
        snapshot
    }
}

/// The names of the Secrets a cluster references, valid Kubernetes names only (an invalid name is
/// reported by the rules and never looked up).
pub fn referenced_secrets(cluster: &Cluster) -> BTreeSet<String> {
    let kms = &cluster.kms;
    let mut names = BTreeSet::new();
    if let Some(token) = kms.token_secret() {
        names.insert(token.to_string());
    }
    if kms.is_enabled() {
        let provider = kms.param(crate::config::KMS_PROVIDER).and_then(Provider::parse);
        let keys: &[&str] = match provider {
            Some(Provider::Vault) => &["VAULT_CACERT", "VAULT_CLIENT_CERT", "VAULT_CLIENT_KEY"],
            Some(Provider::AzureKv) => &["AZURE_CERT_SECRET_NAME"],
            _ => &[],
        };
        names.extend(keys.iter().filter_map(|k| kms.param(k)).map(str::to_string));
    }
    names.retain(|n| crate::names::is_object_name(n));
    names
}

/// Errors in a Secret manifest.
#[derive(Debug, thiserror::Error)]
pub enum ManifestSecretError {
    #[error("Secret {name:?}: data.{key} is not valid base64")]
    Base64 { name: String, key: String },
    #[error("Secret {name:?}: {field} must be a map of strings")]
    Shape { name: String, field: &'static str },
    #[error("a Secret has no metadata.name")]
    NoName,
}

/// Secrets read from manifests (`kind: Secret` documents): the source for `check`, `serve
/// --secrets` and tests.
#[derive(Debug, Clone, Default)]
pub struct ManifestSecrets {
    secrets: BTreeMap<(String, String), SecretData>,
}

impl ManifestSecrets {
    /// Adds one Secret document. `stringData` wins over `data`, as in the API server. Documents
    /// without a namespace go to `default_namespace`.
    pub fn add(&mut self, doc: &Value, default_namespace: &str) -> Result<(), ManifestSecretError> {
        let meta = doc.get("metadata");
        let name = meta.and_then(|m| m.get("name")).and_then(Value::as_str).ok_or(ManifestSecretError::NoName)?;
        let namespace = meta.and_then(|m| m.get("namespace")).and_then(Value::as_str).unwrap_or(default_namespace);
        let mut data = BTreeMap::new();
        for (field, encoded) in [("data", true), ("stringData", false)] {
            let map = match doc.get(field) {
                None | Some(Value::Null) => continue,
                Some(Value::Object(m)) => m,
                Some(_) => {
                    return Err(ManifestSecretError::Shape { name: name.to_string(), field });
                }
            };
            for (k, v) in map {
                let text = v.as_str().ok_or(ManifestSecretError::Shape { name: name.to_string(), field })?;
                let bytes = if encoded {
                    base64::engine::general_purpose::STANDARD
                        .decode(text.trim())
                        .map_err(|_| ManifestSecretError::Base64 { name: name.to_string(), key: k.clone() })?
                } else {
                    text.as_bytes().to_vec()
                };
                data.insert(k.clone(), bytes);
            }
        }
        self.secrets.insert((namespace.to_string(), name.to_string()), SecretData::new(data));
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.secrets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.secrets.is_empty()
    }

    /// The synchronous lookup behind the [`SecretSource`] implementation.
    pub fn get_now(&self, namespace: &str, name: &str) -> Option<SecretData> {
        self.secrets.get(&(namespace.to_string(), name.to_string())).cloned()
    }

    /// A snapshot of the named Secrets, without going through a future.
    pub fn snapshot(&self, namespace: &str, names: &BTreeSet<String>) -> SecretSnapshot {
        let mut snapshot = SecretSnapshot::default();
        for name in names {
            snapshot.insert(name.clone(), Ok(self.get_now(namespace, name)));
        }
        snapshot
    }
}

impl SecretSource for ManifestSecrets {
    async fn get(&self, namespace: &str, name: &str) -> Result<Option<SecretData>, SecretSourceError> {
        Ok(self.get_now(namespace, name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn string_data_wins_and_debug_hides_values() {
        let mut m = ManifestSecrets::default();
        m.add(
            &json!({"kind": "Secret", "metadata": {"name": "t"}, "data": {"token": "b2xk"}, "stringData": {"token": "s.new"}}),
            "ns",
        )
        .unwrap();
        let s = m.get_now("ns", "t").unwrap();
        assert_eq!(s.get("token"), Some(&b"s.new"[..]));
        let debug = format!("{s:?}");
        assert!(debug.contains("token") && !debug.contains("s.new"), "{debug}");
    }

    #[test]
    fn bad_base64_is_an_error_naming_the_key() {
        let err = ManifestSecrets::default()
            .add(&json!({"metadata": {"name": "t"}, "data": {"token": "%%%"}}), "ns")
            .unwrap_err();
        assert_eq!(err.to_string(), "Secret \"t\": data.token is not valid base64");
    }
}
