//! One door to every KMS Rook supports for OSD keys, configured from a CephCluster as Rook would.

use super::keyprotect::KeyProtectStore;
use super::kmip::KmipStore;
use super::kube::{SecretStore, osd_key_secret};
use super::vault::VaultStore;
use super::{Kek, KeyError, PVC_LABEL, PutOutcome, SECRET_DATA_KEY, key_name};
use crate::cluster::Cluster;
use crate::probe::{self, ProbeOptions, ProbeTarget};
use crate::secrets::SecretSnapshot;

/// Where a cluster's OSD keys live.
pub enum KeyStore<'a, S> {
    /// No KMS: Rook's default, the Secret `rook-ceph-osd-encryption-key-<pvc>` itself.
    Kubernetes(&'a S),
    Vault(VaultStore),
    KeyProtect(KeyProtectStore),
    Kmip(KmipStore<'a, S>),
}

impl<'a, S: SecretStore> KeyStore<'a, S> {
    /// The store a cluster's keys live in, from its kms settings and the Secrets they name
    /// (`secrets` is the cluster namespace's Secret store, for the default KMS and KMIP ids).
    pub fn for_cluster(
        cluster: &Cluster,
        snapshot: &SecretSnapshot,
        secrets: &'a S,
        options: ProbeOptions,
    ) -> Result<Self, KeyError> {
        if !cluster.kms.is_enabled() {
            return Ok(KeyStore::Kubernetes(secrets));
        }
        let mut unskipped = cluster.clone();
        unskipped.annotations.remove(probe::SKIP_ANNOTATION);
        match probe::target(&unskipped, snapshot) {
            Some(ProbeTarget::Vault(target)) => Ok(KeyStore::Vault(VaultStore { target, options })),
            Some(ProbeTarget::KeyProtect(target)) => Ok(KeyStore::KeyProtect(KeyProtectStore { target, options })),
            Some(ProbeTarget::Kmip(target)) => Ok(KeyStore::Kmip(KmipStore { target, options, secrets })),
            Some(ProbeTarget::Azure) => Err(KeyError::Unsupported { operation: "key operations", provider: "azure-kv" }),
            None => Err(KeyError::Config(
                "the kms settings are incomplete or a Secret they name is missing; run `rook-kms-webhook check` on the cluster".into(),
            )),
        }
    }

    pub fn provider(&self) -> &'static str {
        match self {
            KeyStore::Kubernetes(_) => "kubernetes",
            KeyStore::Vault(_) => "vault",
            KeyStore::KeyProtect(_) => "ibmkeyprotect",
            KeyStore::Kmip(_) => "kmip",
        }
    }

    pub async fn get(&self, pvc: &str) -> Result<Option<Kek>, KeyError> {
        match self {
            KeyStore::Kubernetes(s) => Ok(s
                .get(&key_name(pvc))
                .await?
                .and_then(|secret| secret.data.get(SECRET_DATA_KEY).cloned())
                .and_then(|v| String::from_utf8(v).ok())
                .filter(|v| !v.is_empty())
                .map(Kek::from_text)),
            KeyStore::Vault(v) => v.get(pvc).await,
            KeyStore::KeyProtect(k) => k.get(pvc).await,
            KeyStore::Kmip(k) => k.get(pvc).await,
        }
    }

    /// Stores `kek` for `pvc` unless a key is already there (never overwrites).
    pub async fn put(&self, pvc: &str, kek: &Kek) -> Result<PutOutcome, KeyError> {
        match self {
            KeyStore::Kubernetes(s) => {
                if let Some(existing) = self.get(pvc).await? {
                    return Ok(PutOutcome::Exists { same: &existing == kek });
                }
                if s.create(&key_name(pvc), osd_key_secret(pvc, kek.expose().as_bytes())).await? {
                    Ok(PutOutcome::Created)
                } else {
                    Ok(PutOutcome::Exists { same: self.get(pvc).await?.as_ref() == Some(kek) })
                }
            }
            KeyStore::Vault(v) => v.put(pvc, kek).await,
            KeyStore::KeyProtect(k) => k.put(pvc, kek).await,
            KeyStore::Kmip(k) => k.put(pvc, kek).await,
        }
    }

    /// Replaces the key (key rotation): only where Rook supports it.
    pub async fn update(&self, pvc: &str, kek: &Kek) -> Result<(), KeyError> {
        match self {
            KeyStore::Kubernetes(s) => s.replace(&key_name(pvc), osd_key_secret(pvc, kek.expose().as_bytes())).await,
            KeyStore::Vault(v) => v.update(pvc, kek).await,
            KeyStore::KeyProtect(_) => Err(KeyError::Unsupported { operation: "update", provider: "ibmkeyprotect" }),
            KeyStore::Kmip(_) => Err(KeyError::Unsupported { operation: "update", provider: "kmip" }),
        }
    }

    /// Deletes the key; `Ok(false)` when there was none.
    pub async fn delete(&self, pvc: &str) -> Result<bool, KeyError> {
        match self {
            KeyStore::Kubernetes(s) => s.delete(&key_name(pvc)).await,
            KeyStore::Vault(v) => v.delete(pvc).await,
            KeyStore::KeyProtect(k) => k.delete(pvc).await,
            KeyStore::Kmip(k) => k.delete(pvc).await,
        }
    }

    /// The PVCs that have a key, as far as the store can list them.
    pub async fn list(&self) -> Result<Vec<String>, KeyError> {
        let mut pvcs = match self {
            KeyStore::Kubernetes(s) => s
                .list_labelled(PVC_LABEL)
                .await?
                .into_iter()
                .filter(|(_, secret)| secret.data.contains_key(SECRET_DATA_KEY))
                .filter_map(|(_, secret)| secret.labels.get(PVC_LABEL).cloned())
                .collect(),
            KeyStore::Vault(v) => v.list().await?,
            KeyStore::KeyProtect(k) => k.list().await?,
            KeyStore::Kmip(k) => k.list().await?,
        };
        pvcs.sort();
        pvcs.dedup();
        Ok(pvcs)
    }
}

/// What happened to one PVC's key during a migration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Migrated {
    /// Copied and read back equal (or, in a dry run, would be copied).
    Copied,
    WouldCopy,
    /// The destination already holds the same key (an earlier run got here).
    AlreadyThere,
    /// The destination holds a different key: nothing was changed.
    Conflict,
    /// The source has no key for the PVC.
    MissingInSource,
    Failed(String),
}

/// Copies each PVC's key from `from` to `to`, reading every copy back; never deletes from the
/// source and never overwrites the destination, so it can be run again after an interruption.
pub async fn migrate<A: SecretStore, B: SecretStore>(
    from: &KeyStore<'_, A>,
    to: &KeyStore<'_, B>,
    pvcs: &[String],
    apply: bool,
) -> Vec<(String, Migrated)> {
    let mut report = Vec::new();
    for pvc in pvcs {
        let outcome = match from.get(pvc).await {
            Err(e) => Migrated::Failed(format!("reading the source: {e}")),
            Ok(None) => Migrated::MissingInSource,
            Ok(Some(kek)) => match to.get(pvc).await {
                Err(e) => Migrated::Failed(format!("reading the destination: {e}")),
                Ok(Some(existing)) if existing == kek => Migrated::AlreadyThere,
                Ok(Some(_)) => Migrated::Conflict,
                Ok(None) if !apply => Migrated::WouldCopy,
                Ok(None) => match to.put(pvc, &kek).await {
                    Err(e) => Migrated::Failed(format!("writing the destination: {e}")),
                    Ok(_) => match to.get(pvc).await {
                        Ok(Some(back)) if back == kek => Migrated::Copied,
                        Ok(_) => Migrated::Failed("the destination did not return the key that was written".into()),
                        Err(e) => Migrated::Failed(format!("reading back: {e}")),
                    },
                },
            },
        };
        report.push((pvc.clone(), outcome));
    }
    report
}

#[cfg(test)]
mod tests {
    use super::super::kube::MemorySecrets;
    use super::*;

    #[tokio::test]
    async fn the_default_store_is_rooks_secret_and_migration_is_resumable() {
        let a = MemorySecrets::default();
        let b = MemorySecrets::default();
        let (from, to) = (KeyStore::Kubernetes(&a), KeyStore::Kubernetes(&b));
        let k1 = Kek::generate().unwrap();
        assert_eq!(from.put("pvc-1", &k1).await.unwrap(), PutOutcome::Created);
        assert_eq!(from.put("pvc-1", &Kek::generate().unwrap()).await.unwrap(), PutOutcome::Exists { same: false });
        assert_eq!(from.get("pvc-1").await.unwrap(), Some(k1.clone()));
        let secret = a.get("rook-ceph-osd-encryption-key-pvc-1").await.unwrap().unwrap();
        assert_eq!(secret.labels.get("pvc_name").map(String::as_str), Some("pvc-1"));
        assert_eq!(secret.data.get("dmcrypt-key").map(Vec::as_slice), Some(k1.expose().as_bytes()));
        from.put("pvc-2", &Kek::generate().unwrap()).await.unwrap();
        to.put("pvc-2", &Kek::generate().unwrap()).await.unwrap();
        let pvcs = from.list().await.unwrap();
        assert_eq!(pvcs, ["pvc-1", "pvc-2"]);

        let dry = migrate(&from, &to, &pvcs, false).await;
        assert_eq!(dry[0].1, Migrated::WouldCopy);
        assert_eq!(to.get("pvc-1").await.unwrap(), None, "a dry run writes nothing");
        let run = migrate(&from, &to, &[pvcs.clone(), vec!["pvc-3".into()]].concat(), true).await;
        assert_eq!(
            run.iter().map(|(_, m)| m.clone()).collect::<Vec<_>>(),
            [Migrated::Copied, Migrated::Conflict, Migrated::MissingInSource]
        );
        let again = migrate(&from, &to, &pvcs, true).await;
        assert_eq!(again[0].1, Migrated::AlreadyThere);
        assert!(from.get("pvc-1").await.unwrap().is_some(), "the source is never deleted from");

        let rotated = Kek::generate().unwrap();
        from.update("pvc-1", &rotated).await.unwrap();
        assert_eq!(from.get("pvc-1").await.unwrap(), Some(rotated));
        assert!(from.delete("pvc-1").await.unwrap());
        assert!(!from.delete("pvc-1").await.unwrap());
    }
}
