//! OSD keys in Vault KV, exactly where and how Rook's Vault library keeps them:
//! `[VAULT_NAMESPACE/]<VAULT_BACKEND_PATH>/[data/]rook-ceph-osd-encryption-key-<pvc>`, with the
//! same name as the only field; KV v2 deletes remove all versions (`metadata/`).

use hyper::Method;
use serde_json::{Value, json};

use super::{KEY_PREFIX, Kek, KeyError, PutOutcome, key_name};
use crate::probe::{KvVersion, ProbeOptions, VaultTarget};
use crate::providers::vault::Vault;

const STORE: &str = "Vault";

/// A Vault KV store of OSD keys.
#[derive(Debug, Clone)]
pub struct VaultStore {
    pub target: VaultTarget,
    pub options: ProbeOptions,
}

impl VaultStore {
    async fn session(&self) -> Result<Vault, KeyError> {
        Vault::connect(&self.target, &self.options, self.options.connect_timeout)
            .await
            .map_err(|reason| KeyError::Unreachable { store: STORE, reason })
    }

    /// The KV version: `VAULT_BACKEND` when it names one, else what `sys/mounts` says (as Rook).
    async fn version(&self, vault: &mut Vault) -> Result<KvVersion, KeyError> {
        if let Some(v) = self.target.backend_version() {
            return Ok(v);
        }
        let answer = vault.call(Method::GET, "sys/mounts", None, true).await.map_err(unreachable)?;
        if answer.status != 200 {
            return Err(KeyError::Config(format!(
                "cannot read sys/mounts to detect the KV version (HTTP {}); set VAULT_BACKEND",
                answer.status
            )));
        }
        let table = answer.body.get("data").filter(|d| d.is_object()).unwrap_or(&answer.body);
        let mount = table
            .as_object()
            .and_then(|m| m.iter().find(|(p, _)| p.trim_matches('/') == self.target.backend_path))
            .map(|(_, v)| v)
            .ok_or_else(|| {
                KeyError::Config(format!("secrets engine with mount path {:?} not found", self.target.backend_path))
            })?;
        Ok(if mount.pointer("/options/version").and_then(Value::as_str) == Some("2") {
            KvVersion::V2
        } else {
            KvVersion::V1
        })
    }

    /// `[ns/]<backend>/[part/]<name>` as Rook's library builds it (namespace as a path prefix).
    fn path(&self, part: Option<&str>, name: &str) -> String {
        let mut segments: Vec<&str> = Vec::new();
        if let Some(ns) = &self.target.namespace {
            segments.push(ns);
        }
        segments.push(&self.target.backend_path);
        if let Some(p) = part {
            segments.push(p);
        }
        segments.push(name);
        segments.join("/")
    }

    pub async fn get(&self, pvc: &str) -> Result<Option<Kek>, KeyError> {
        let mut vault = self.session().await?;
        let version = self.version(&mut vault).await?;
        self.get_with(&mut vault, version, pvc).await
    }

    async fn get_with(&self, vault: &mut Vault, version: KvVersion, pvc: &str) -> Result<Option<Kek>, KeyError> {
        let name = key_name(pvc);
        let path = match version {
            KvVersion::V1 => self.path(None, &name),
            KvVersion::V2 => self.path(Some("data"), &name),
        };
        let answer = vault.call(Method::GET, &path, None, false).await.map_err(unreachable)?;
        match answer.status {
            404 => Ok(None),
            200 => {
                let data = match version {
                    KvVersion::V1 => answer.body.get("data"),
                    KvVersion::V2 => answer.body.pointer("/data/data"),
                };
                match data {
                    None | Some(Value::Null) => Ok(None), // KV v2 soft-deleted: absent, as for Rook
                    Some(d) => match d.get(&name) {
                        Some(Value::String(s)) => Ok(Some(Kek::from_text(s.clone()))),
                        _ => Err(KeyError::Malformed {
                            store: STORE,
                            pvc: pvc.into(),
                            reason: format!("no string field {name:?}"),
                        }),
                    },
                }
            }
            s => Err(refused("get", pvc, s, &answer.body)),
        }
    }

    /// Rook's `PutSecret`: read first; never overwrite.
    pub async fn put(&self, pvc: &str, kek: &Kek) -> Result<PutOutcome, KeyError> {
        let mut vault = self.session().await?;
        let version = self.version(&mut vault).await?;
        if let Some(existing) = self.get_with(&mut vault, version, pvc).await? {
            return Ok(PutOutcome::Exists { same: &existing == kek });
        }
        self.write(&mut vault, version, pvc, kek, "put").await?;
        Ok(PutOutcome::Created)
    }

    /// Rook's `UpdateSecret` (key rotation): overwrite; KV v2 keeps the old one as a version.
    pub async fn update(&self, pvc: &str, kek: &Kek) -> Result<(), KeyError> {
        let mut vault = self.session().await?;
        let version = self.version(&mut vault).await?;
        self.write(&mut vault, version, pvc, kek, "update").await
    }

    async fn write(
        &self,
        vault: &mut Vault,
        version: KvVersion,
        pvc: &str,
        kek: &Kek,
        op: &'static str,
    ) -> Result<(), KeyError> {
        let name = key_name(pvc);
        let (path, body) = match version {
            KvVersion::V1 => (self.path(None, &name), json!({ name.as_str(): kek.expose() })),
            KvVersion::V2 => (self.path(Some("data"), &name), json!({"data": { name.as_str(): kek.expose() }})),
        };
        let answer = vault.call(Method::POST, &path, Some(&body), false).await.map_err(unreachable)?;
        match answer.status {
            200 | 204 => Ok(()),
            s => Err(refused(op, pvc, s, &answer.body)),
        }
    }

    /// Rook's `DeleteSecret` (with destroy-all-versions for KV v2). `Ok(false)`: nothing was there.
    pub async fn delete(&self, pvc: &str) -> Result<bool, KeyError> {
        let mut vault = self.session().await?;
        let version = self.version(&mut vault).await?;
        let existed = self.get_with(&mut vault, version, pvc).await?.is_some();
        let name = key_name(pvc);
        let path = match version {
            KvVersion::V1 => self.path(None, &name),
            KvVersion::V2 => self.path(Some("metadata"), &name),
        };
        let answer = vault.call(Method::DELETE, &path, None, false).await.map_err(unreachable)?;
        match answer.status {
            200 | 204 | 404 => Ok(existed),
            s => Err(refused("delete", pvc, s, &answer.body)),
        }
    }

    /// The PVCs with a key in the mount (needs `list` on the path, which Rook's policy grants).
    pub async fn list(&self) -> Result<Vec<String>, KeyError> {
        let mut vault = self.session().await?;
        let version = self.version(&mut vault).await?;
        let path = match version {
            KvVersion::V1 => self.path(None, ""),
            KvVersion::V2 => self.path(Some("metadata"), ""),
        };
        let answer = vault.call(Method::GET, &format!("{path}?list=true"), None, false).await.map_err(unreachable)?;
        match answer.status {
            404 => Ok(Vec::new()),
            200 => Ok(answer
                .body
                .pointer("/data/keys")
                .and_then(Value::as_array)
                .map(|keys| {
                    keys.iter()
                        .filter_map(Value::as_str)
                        .filter_map(|k| k.strip_prefix(KEY_PREFIX))
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default()),
            s => Err(refused("list", "*", s, &answer.body)),
        }
    }
}

fn unreachable(e: crate::providers::http::HttpError) -> KeyError {
    KeyError::Unreachable { store: STORE, reason: e.to_string() }
}

fn refused(operation: &'static str, pvc: &str, status: u16, body: &Value) -> KeyError {
    let errors: Vec<String> = body
        .get("errors")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).take(2).map(|s| crate::field::shown(s.trim())).collect())
        .unwrap_or_default();
    KeyError::Refused {
        store: STORE,
        operation,
        pvc: pvc.into(),
        reason: format!("HTTP {status} {}", errors.join("; ")).trim().to_string(),
    }
}
