//! Rook's OSD key Secrets as manifest files in a directory: the offline [`SecretStore`] of the
//! admin CLI. Each Secret is `<dir>/<name>.yaml`, a complete `kubectl apply`-able manifest
//! (type `kubernetes.io/rook`, label `pvc_name`, data `dmcrypt-key`), written with mode 0600
//! because for the default KMS it holds the key itself.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use rook_kms::keys::KeyError;
use rook_kms::keys::kube::{KeySecret, SecretStore};
use serde_json::{Value, json};

pub struct KeyDir {
    dir: PathBuf,
    namespace: String,
}

fn io(action: &str, path: &Path, e: std::io::Error) -> KeyError {
    KeyError::Kube(format!("cannot {action} {}: {e}", path.display()))
}

impl KeyDir {
    pub fn new(dir: impl Into<PathBuf>, namespace: impl Into<String>) -> Self {
        Self { dir: dir.into(), namespace: namespace.into() }
    }

    fn path(&self, name: &str) -> Result<PathBuf, KeyError> {
        if !rook_kms::names::is_object_name(name) {
            return Err(KeyError::Config(format!("{name:?} is not a Secret name")));
        }
        Ok(self.dir.join(format!("{name}.yaml")))
    }

    fn read(path: &Path) -> Result<Option<KeySecret>, KeyError> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io("read", path, e)),
        };
        let doc: Value = serde_norway::from_str(&text)
            .map_err(|e| KeyError::Kube(format!("{} is not a Secret manifest: {e}", path.display())))?;
        let strings = |field: &str| -> BTreeMap<String, String> {
            doc.pointer(field)
                .and_then(Value::as_object)
                .map(|m| m.iter().filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string()))).collect())
                .unwrap_or_default()
        };
        let mut data = BTreeMap::new();
        for (k, v) in strings("/data") {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(v.trim())
                .map_err(|_| KeyError::Kube(format!("{}: data.{k} is not base64", path.display())))?;
            data.insert(k, bytes);
        }
        Ok(Some(KeySecret { labels: strings("/metadata/labels"), data }))
    }

    fn write(&self, name: &str, secret: &KeySecret) -> Result<(), KeyError> {
        let path = self.path(name)?;
        std::fs::create_dir_all(&self.dir).map_err(|e| io("create", &self.dir, e))?;
        let data: BTreeMap<&String, String> =
            secret.data.iter().map(|(k, v)| (k, base64::engine::general_purpose::STANDARD.encode(v))).collect();
        let doc = json!({
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": name, "namespace": self.namespace, "labels": secret.labels},
            "type": "kubernetes.io/rook",
            "data": data,
        });
        let text = serde_norway::to_string(&doc).map_err(|e| KeyError::Kube(e.to_string()))?;
        let tmp = path.with_extension("yaml.tmp");
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&tmp).map_err(|e| io("write", &tmp, e))?;
        file.write_all(text.as_bytes()).map_err(|e| io("write", &tmp, e))?;
        file.sync_all().map_err(|e| io("write", &tmp, e))?;
        std::fs::rename(&tmp, &path).map_err(|e| io("write", &path, e))
    }
}

impl SecretStore for KeyDir {
    async fn get(&self, name: &str) -> Result<Option<KeySecret>, KeyError> {
        Self::read(&self.path(name)?)
    }

    async fn create(&self, name: &str, secret: KeySecret) -> Result<bool, KeyError> {
        if self.path(name)?.exists() {
            return Ok(false);
        }
        self.write(name, &secret)?;
        Ok(true)
    }

    async fn replace(&self, name: &str, secret: KeySecret) -> Result<(), KeyError> {
        self.write(name, &secret)
    }

    async fn delete(&self, name: &str) -> Result<bool, KeyError> {
        let path = self.path(name)?;
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(io("delete", &path, e)),
        }
    }

    async fn list_labelled(&self, key: &str) -> Result<Vec<(String, KeySecret)>, KeyError> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io("list", &self.dir, e)),
        };
        let mut out = Vec::new();
        for entry in entries.flatten() {
            let path = entry.path();
            let Some(name) = path.file_name().and_then(|n| n.to_str()).and_then(|n| n.strip_suffix(".yaml")) else {
                continue;
            };
            if let Some(secret) = Self::read(&path)?
                && secret.labels.contains_key(key)
            {
                out.push((name.to_string(), secret));
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }
}
