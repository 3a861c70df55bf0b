//! The part of a CephCluster that matters for encryption, read from the raw object.
//!
//! The object is read by hand from `serde_json::Value` rather than deserialized into a full type
//! so that a wrong type anywhere we read gives a finding that names the exact field, and fields we
//! do not read can never make the object unreadable.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::field;
use crate::verdict::Finding;

/// `spec.security.kms` with Rook's value semantics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KmsSpec {
    /// `connectionDetails` exactly as written (untrimmed).
    pub connection_details: BTreeMap<String, String>,
    /// `tokenSecretName` exactly as written.
    pub token_secret_name: Option<String>,
}

impl KmsSpec {
    /// Rook's `IsEnabled()`: the KMS is on iff `connectionDetails` is non-empty.
    pub fn is_enabled(&self) -> bool {
        !self.connection_details.is_empty()
    }

    /// The value as written, `""` included.
    pub fn raw(&self, key: &str) -> Option<&str> {
        self.connection_details.get(key).map(String::as_str)
    }

    /// Rook's `GetParam`: absent, `""` and whitespace-only are unset; otherwise the trimmed value.
    pub fn param(&self, key: &str) -> Option<&str> {
        self.raw(key).map(str::trim).filter(|v| !v.is_empty())
    }

    /// `tokenSecretName` when set (Rook compares it with `""`).
    pub fn token_secret(&self) -> Option<&str> {
        self.token_secret_name.as_deref().filter(|s| !s.is_empty())
    }
}

/// `spec.security.keyRotation`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyRotationSpec {
    pub enabled: bool,
    pub schedule: Option<String>,
}

/// One `spec.storage.storageClassDeviceSets[]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceSet {
    pub index: usize,
    pub name: String,
    pub encrypted: bool,
}

/// A CephCluster as far as encryption is concerned.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cluster {
    pub name: String,
    pub namespace: String,
    pub annotations: BTreeMap<String, String>,
    pub kms: KmsSpec,
    pub key_rotation: KeyRotationSpec,
    pub device_sets: Vec<DeviceSet>,
    /// Host-based OSD encryption (`encryptedDevice: "true"` anywhere under `spec.storage`).
    pub host_encrypted_device: bool,
    /// `spec.storage.migration.confirmation: yes-really-migrate-osds`.
    pub migration_confirmed: bool,
}

impl Cluster {
    /// Whether any PVC-based device set is encrypted: the only case in which Rook uses the KMS.
    pub fn has_encrypted_device_sets(&self) -> bool {
        self.device_sets.iter().any(|d| d.encrypted)
    }

    /// Reads a CephCluster object. Every field of the wrong type is reported, with its path.
    pub fn from_object(object: &Value, default_namespace: &str) -> Result<Self, Vec<Finding>> {
        let mut r = Reader::default();
        let cluster = r.cluster(object, default_namespace);
        if r.problems.is_empty() { Ok(cluster) } else { Err(r.problems) }
    }
}

#[derive(Default)]
struct Reader {
    problems: Vec<Finding>,
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a map",
    }
}

impl Reader {
    fn wrong(&mut self, path: &str, want: &str, got: &Value) {
        self.problems.push(Finding::new(path, format!("must be {want}, not {}", type_name(got))));
    }

    /// A map field that may be absent or null.
    fn map<'v>(&mut self, parent: &'v Map<String, Value>, key: &str, path: &str) -> Option<&'v Map<String, Value>> {
        match parent.get(key) {
            None | Some(Value::Null) => None,
            Some(Value::Object(m)) => Some(m),
            Some(other) => {
                self.wrong(path, "a map", other);
                None
            }
        }
    }

    fn string(&mut self, parent: &Map<String, Value>, key: &str, path: &str) -> Option<String> {
        match parent.get(key) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(other) => {
                self.wrong(path, "a string", other);
                None
            }
        }
    }

    fn boolean(&mut self, parent: &Map<String, Value>, key: &str, path: &str) -> bool {
        match parent.get(key) {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(other) => {
                self.wrong(path, "a boolean (true or false, unquoted)", other);
                false
            }
        }
    }

    fn cluster(&mut self, object: &Value, default_namespace: &str) -> Cluster {
        let mut cluster = Cluster::default();
        let Some(root) = object.as_object() else {
            self.wrong("(object)", "a map", object);
            return cluster;
        };
        if let Some(meta) = self.map(root, "metadata", "metadata") {
            cluster.name = self.string(meta, "name", "metadata.name").unwrap_or_default();
            cluster.namespace = self.string(meta, "namespace", "metadata.namespace").unwrap_or_default();
            if let Some(ann) = self.map(meta, "annotations", "metadata.annotations") {
                for (k, v) in ann {
                    match v {
                        Value::String(s) => {
                            cluster.annotations.insert(k.clone(), s.clone());
                        }
                        other => self.wrong(&format!("metadata.annotations[{}]", field::shown(k)), "a string", other),
                    }
                }
            }
        }
        if cluster.namespace.is_empty() {
            cluster.namespace = default_namespace.to_string();
        }
        let spec = match root.get("spec") {
            Some(Value::Object(spec)) => spec,
            None | Some(Value::Null) => {
                self.problems.push(Finding::new("spec", "is missing; a CephCluster needs a spec"));
                return cluster;
            }
            Some(other) => {
                self.wrong("spec", "a map", other);
                return cluster;
            }
        };
        if let Some(security) = self.map(spec, "security", "spec.security") {
            if let Some(kms) = self.map(security, "kms", field::KMS) {
                cluster.kms.token_secret_name = self.string(kms, "tokenSecretName", field::TOKEN_SECRET_NAME);
                if let Some(details) = self.map(kms, "connectionDetails", field::CONNECTION_DETAILS) {
                    for (k, v) in details {
                        match v {
                            Value::String(s) => {
                                cluster.kms.connection_details.insert(k.clone(), s.clone());
                            }
                            Value::Number(_) | Value::Bool(_) => self.problems.push(Finding::new(
                                field::detail(k),
                                format!(
                                    "must be a string, not {}; quote the value in YAML (e.g. {k}: \"{v}\")",
                                    type_name(v)
                                ),
                            )),
                            other => self.wrong(&field::detail(k), "a string (use \"\" for an empty value)", other),
                        }
                    }
                }
            }
            if let Some(rot) = self.map(security, "keyRotation", field::KEY_ROTATION) {
                cluster.key_rotation.enabled = self.boolean(rot, "enabled", field::KEY_ROTATION_ENABLED);
                cluster.key_rotation.schedule = self.string(rot, "schedule", field::KEY_ROTATION_SCHEDULE);
            }
        }
        if let Some(storage) = self.map(spec, "storage", "spec.storage") {
            self.storage(storage, &mut cluster);
        }
        cluster
    }

    fn storage(&mut self, storage: &Map<String, Value>, cluster: &mut Cluster) {
        match storage.get("storageClassDeviceSets") {
            None | Some(Value::Null) => {}
            Some(Value::Array(sets)) => {
                for (index, set) in sets.iter().enumerate() {
                    let path = format!("{}[{index}]", field::DEVICE_SETS);
                    let Some(set) = set.as_object() else {
                        self.wrong(&path, "a map", set);
                        continue;
                    };
                    let name = self.string(set, "name", &field::device_set(index, "name")).unwrap_or_default();
                    let encrypted = self.boolean(set, "encrypted", &field::device_set(index, "encrypted"));
                    cluster.device_sets.push(DeviceSet { index, name, encrypted });
                }
            }
            Some(other) => self.wrong(field::DEVICE_SETS, "a list", other),
        }
        if let Some(migration) = self.map(storage, "migration", "spec.storage.migration") {
            cluster.migration_confirmed = self
                .string(migration, "confirmation", "spec.storage.migration.confirmation")
                .is_some_and(|c| c == "yes-really-migrate-osds");
        }
        cluster.host_encrypted_device = host_encrypted(storage);
    }
}

/// `encryptedDevice: "true"` in `storage.config`, `storage.nodes[].config`, or any
/// `devices[].config`. Read leniently: this only feeds a warning.
fn host_encrypted(storage: &Map<String, Value>) -> bool {
    fn config_says(v: &Value) -> bool {
        v.get("config").and_then(|c| c.get("encryptedDevice")).and_then(Value::as_str) == Some("true")
    }
    fn devices_say(v: &Value) -> bool {
        v.get("devices").and_then(Value::as_array).is_some_and(|d| d.iter().any(config_says))
    }
    let storage = Value::Object(storage.clone());
    config_says(&storage)
        || devices_say(&storage)
        || storage
            .get("nodes")
            .and_then(Value::as_array)
            .is_some_and(|nodes| nodes.iter().any(|n| config_says(n) || devices_say(n)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_rook_value_semantics() {
        let obj = json!({
            "metadata": {"name": "c"},
            "spec": {"security": {"kms": {"connectionDetails": {
                "KMS_PROVIDER": " vault", "VAULT_NAMESPACE": "", "VAULT_ADDR": "   "
            }}}}
        });
        let c = Cluster::from_object(&obj, "rook-ceph").unwrap();
        assert_eq!(c.namespace, "rook-ceph");
        assert!(c.kms.is_enabled());
        assert_eq!(c.kms.param("KMS_PROVIDER"), Some("vault"));
        assert_eq!(c.kms.raw("KMS_PROVIDER"), Some(" vault"));
        assert_eq!(c.kms.param("VAULT_NAMESPACE"), None);
        assert_eq!(c.kms.param("VAULT_ADDR"), None);
    }

    #[test]
    fn wrong_types_name_their_field() {
        let obj = json!({"spec": {
            "security": {"kms": {"connectionDetails": {"READ_TIMEOUT": 10}}, "keyRotation": {"enabled": "yes"}},
            "storage": {"storageClassDeviceSets": [{"name": "a", "encrypted": "true"}]}
        }});
        let problems = Cluster::from_object(&obj, "ns").unwrap_err();
        let fields: Vec<&str> = problems.iter().map(|p| p.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "spec.security.kms.connectionDetails.READ_TIMEOUT",
                "spec.security.keyRotation.enabled",
                "spec.storage.storageClassDeviceSets[0].encrypted",
            ]
        );
        assert!(problems[0].message.contains("READ_TIMEOUT: \"10\""));
    }

    #[test]
    fn missing_spec_is_a_finding() {
        let problems = Cluster::from_object(&json!({"metadata": {"name": "x"}}), "ns").unwrap_err();
        assert_eq!(problems[0].field, "spec");
    }

    #[test]
    fn host_encryption_anywhere() {
        let obj = json!({"spec": {"storage": {"nodes": [{"name": "n", "devices": [{"name": "sdb", "config": {"encryptedDevice": "true"}}]}]}}});
        assert!(Cluster::from_object(&obj, "ns").unwrap().host_encrypted_device);
    }
}
