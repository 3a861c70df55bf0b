//! The Kubernetes side of key storage, behind a narrow trait: Rook's OSD key Secrets in the
//! cluster's namespace (the default KMS keeps the KEK there; KMIP keeps the server's object id).

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Mutex;

use super::{KeyError, PVC_LABEL};

/// One Secret as the key stores see it.
#[derive(Clone, PartialEq, Eq)]
pub struct KeySecret {
    pub labels: BTreeMap<String, String>,
    pub data: BTreeMap<String, Vec<u8>>,
}

impl std::fmt::Debug for KeySecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeySecret").field("labels", &self.labels).field("keys", &self.data.keys()).finish()
    }
}

/// Secrets in one namespace: get, create (fails if present), replace, delete, and list by label.
pub trait SecretStore: Send + Sync {
    fn get(&self, name: &str) -> impl Future<Output = Result<Option<KeySecret>, KeyError>> + Send;
    /// Creates the Secret (type `kubernetes.io/rook`); `Ok(false)` when it already exists.
    fn create(&self, name: &str, secret: KeySecret) -> impl Future<Output = Result<bool, KeyError>> + Send;
    fn replace(&self, name: &str, secret: KeySecret) -> impl Future<Output = Result<(), KeyError>> + Send;
    /// `Ok(false)` when there was nothing to delete.
    fn delete(&self, name: &str) -> impl Future<Output = Result<bool, KeyError>> + Send;
    /// Names of the Secrets carrying the label `key` (any value).
    fn list_labelled(&self, key: &str) -> impl Future<Output = Result<Vec<(String, KeySecret)>, KeyError>> + Send;
}

/// A shared reference is a store too (stores are used by reference, the in-memory one included).
impl<T: SecretStore> SecretStore for &T {
    async fn get(&self, name: &str) -> Result<Option<KeySecret>, KeyError> {
        (**self).get(name).await
    }

    async fn create(&self, name: &str, secret: KeySecret) -> Result<bool, KeyError> {
        (**self).create(name, secret).await
    }

    async fn replace(&self, name: &str, secret: KeySecret) -> Result<(), KeyError> {
        (**self).replace(name, secret).await
    }

    async fn delete(&self, name: &str) -> Result<bool, KeyError> {
        (**self).delete(name).await
    }

    async fn list_labelled(&self, key: &str) -> Result<Vec<(String, KeySecret)>, KeyError> {
        (**self).list_labelled(key).await
    }
}

/// An in-memory [`SecretStore`] for tests and dry runs.
#[derive(Debug, Default)]
pub struct MemorySecrets {
    secrets: Mutex<BTreeMap<String, KeySecret>>,
}

impl MemorySecrets {
    fn with<T>(&self, f: impl FnOnce(&mut BTreeMap<String, KeySecret>) -> T) -> Result<T, KeyError> {
        let mut guard = self.secrets.lock().map_err(|_| KeyError::Kube("in-memory store poisoned".into()))?;
        Ok(f(&mut guard))
    }
}

impl SecretStore for MemorySecrets {
    async fn get(&self, name: &str) -> Result<Option<KeySecret>, KeyError> {
        self.with(|m| m.get(name).cloned())
    }

    async fn create(&self, name: &str, secret: KeySecret) -> Result<bool, KeyError> {
        self.with(|m| {
            if m.contains_key(name) {
                false
            } else {
                m.insert(name.to_string(), secret);
                true
            }
        })
    }

    async fn replace(&self, name: &str, secret: KeySecret) -> Result<(), KeyError> {
        self.with(|m| {
            m.insert(name.to_string(), secret);
        })
    }

    async fn delete(&self, name: &str) -> Result<bool, KeyError> {
        self.with(|m| m.remove(name).is_some())
    }

    async fn list_labelled(&self, key: &str) -> Result<Vec<(String, KeySecret)>, KeyError> {
        self.with(|m| {
            m.iter().filter(|(_, s)| s.labels.contains_key(key)).map(|(n, s)| (n.clone(), s.clone())).collect()
        })
    }
}

/// A Rook OSD key Secret for `pvc` holding `value` under `dmcrypt-key`.
pub fn osd_key_secret(pvc: &str, value: &[u8]) -> KeySecret {
    KeySecret {
        labels: BTreeMap::from([(PVC_LABEL.to_string(), pvc.to_string())]),
        data: BTreeMap::from([(super::SECRET_DATA_KEY.to_string(), value.to_vec())]),
    }
}
