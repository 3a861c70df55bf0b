//! The mutation: a JSON Patch (RFC 6902, paths escaped per RFC 6901) that makes Rook's implicit
//! behaviour explicit. It is idempotent: mutating its result gives an empty patch.

use std::collections::BTreeMap;

use json_patch::{AddOperation, Patch, PatchOperation, RemoveOperation, ReplaceOperation};
use jsonptr::PointerBuf;
use serde_json::Value;

use crate::cluster::Cluster;
use crate::config::{
    DEFAULT_IBM_KP_BASE_URL, DEFAULT_IBM_KP_TOKEN_URL, DEFAULT_KEY_ROTATION_SCHEDULE, DEFAULT_KMIP_PORT,
    DEFAULT_KMIP_TIMEOUT, DEFAULT_VAULT_BACKEND_PATH, INLINE_SECRET_KEYS, KMS_PROVIDER, Provider, parse_kmip_endpoint,
};
use crate::field;
use crate::rules::IBM_ALIASES;
use crate::verdict::Finding;

/// A patch and the warnings that explain the changes a user would not expect.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Mutation {
    pub patch: Patch,
    pub warnings: Vec<Finding>,
}

/// Computes the mutation of a parsed cluster.
pub fn mutate(cluster: &Cluster) -> Mutation {
    let mut m = Mutation::default();
    if cluster.kms.is_enabled() {
        connection_details(cluster, &mut m);
    }
    let rotation = &cluster.key_rotation;
    if rotation.enabled && rotation.schedule.as_deref().is_none_or(|s| s.trim().is_empty()) {
        m.patch.0.push(PatchOperation::Add(AddOperation {
            path: PointerBuf::from_tokens(["spec", "security", "keyRotation", "schedule"]),
            value: Value::String(DEFAULT_KEY_ROTATION_SCHEDULE.into()),
        }));
    }
    m
}

fn is_secret_material(key: &str, value: &str) -> bool {
    INLINE_SECRET_KEYS.iter().any(|(k, _)| *k == key) || value.contains("-----BEGIN ")
}

fn connection_details(cluster: &Cluster, m: &mut Mutation) {
    let original = &cluster.kms.connection_details;
    let mut target: BTreeMap<String, String> = original.clone();
    for (key, value) in target.iter_mut() {
        // Secret material is denied, never rewritten: a patch must not carry it.
        if value.trim() != value.as_str() && !is_secret_material(key, value) {
            *value = value.trim().to_string();
            m.warnings
                .push(Finding::new(field::detail(key), format!("trimmed leading/trailing whitespace from {key}.")));
        }
    }
    let set = |t: &BTreeMap<String, String>, k: &str| t.get(k).is_some_and(|v| !v.is_empty());
    match target.get(KMS_PROVIDER).and_then(|p| Provider::parse(p)) {
        Some(Provider::Vault) => {
            if !set(&target, "VAULT_BACKEND_PATH") {
                target.insert("VAULT_BACKEND_PATH".into(), DEFAULT_VAULT_BACKEND_PATH.into());
            }
        }
        Some(Provider::IbmKeyProtect) => {
            for (alias, real) in IBM_ALIASES {
                let Some(value) = target.get(alias).filter(|v| !v.is_empty()).cloned() else {
                    continue;
                };
                match target.get(real).filter(|v| !v.is_empty()) {
                    None => {
                        target.remove(alias);
                        target.insert(real.into(), value);
                        m.warnings.push(Finding::new(
                            field::detail(alias),
                            format!("renamed {alias} to {real}, the key Rook reads."),
                        ));
                    }
                    Some(v) if *v == value => {
                        target.remove(alias);
                        m.warnings.push(Finding::new(
                            field::detail(alias),
                            format!("removed {alias}, which duplicates {real} and is ignored by Rook."),
                        ));
                    }
                    Some(_) => {} // conflicting values: the validation denies
                }
            }
            for (key, default) in
                [("IBM_KP_BASE_URL", DEFAULT_IBM_KP_BASE_URL), ("IBM_KP_TOKEN_URL", DEFAULT_IBM_KP_TOKEN_URL)]
            {
                if !set(&target, key) {
                    target.insert(key.into(), default.into());
                }
            }
        }
        Some(Provider::Kmip) => {
            if let Some(endpoint) = target.get("KMIP_ENDPOINT").cloned()
                && let Ok(parsed) = parse_kmip_endpoint(&endpoint)
                && parsed.port.is_none()
            {
                target.insert("KMIP_ENDPOINT".into(), format!("{endpoint}:{DEFAULT_KMIP_PORT}"));
                m.warnings.push(Finding::new(
                    field::detail("KMIP_ENDPOINT"),
                    format!("KMIP_ENDPOINT had no port; appended :{DEFAULT_KMIP_PORT}, the KMIP port."),
                ));
            }
            // Rook applies WRITE_TIMEOUT as the read deadline too, so the explicit READ_TIMEOUT
            // that matches Rook's real behaviour is the effective WRITE_TIMEOUT.
            if !set(&target, "WRITE_TIMEOUT") {
                target.insert("WRITE_TIMEOUT".into(), DEFAULT_KMIP_TIMEOUT.into());
            }
            let write = target.get("WRITE_TIMEOUT").filter(|w| w.parse::<u8>().is_ok()).cloned();
            if let Some(write) = write
                && !set(&target, "READ_TIMEOUT")
            {
                target.insert("READ_TIMEOUT".into(), write);
            }
        }
        Some(Provider::AzureKv) | None => {}
    }
    let path = |key: &str| PointerBuf::from_tokens(["spec", "security", "kms", "connectionDetails", key]);
    for (key, value) in original {
        match target.get(key) {
            None => m.patch.0.push(PatchOperation::Remove(RemoveOperation { path: path(key) })),
            Some(new) if new != value => m
                .patch
                .0
                .push(PatchOperation::Replace(ReplaceOperation { path: path(key), value: Value::String(new.clone()) })),
            Some(_) => {}
        }
    }
    for (key, value) in &target {
        if !original.contains_key(key) {
            m.patch.0.push(PatchOperation::Add(AddOperation { path: path(key), value: Value::String(value.clone()) }));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cluster(details: Value) -> (Value, Cluster) {
        let obj = json!({"metadata": {"name": "c"}, "spec": {"security": {"kms": {"connectionDetails": details}}}});
        let c = Cluster::from_object(&obj, "ns").unwrap();
        (obj, c)
    }

    fn apply_twice(details: Value) -> (Mutation, Value) {
        let (mut obj, c) = cluster(details);
        let m = mutate(&c);
        json_patch::patch(&mut obj, &m.patch).unwrap();
        let again = mutate(&Cluster::from_object(&obj, "ns").unwrap());
        assert!(again.patch.0.is_empty(), "not idempotent: {:?}", again.patch);
        (m, obj["spec"]["security"]["kms"]["connectionDetails"].clone())
    }

    #[test]
    fn ibm_aliases_are_renamed_and_defaults_filled() {
        let (m, details) =
            apply_twice(json!({"KMS_PROVIDER": "ibmkeyprotect", "IBM_BASE_URL": "https://eu-de.kms.cloud.ibm.com"}));
        assert_eq!(details["IBM_KP_BASE_URL"], "https://eu-de.kms.cloud.ibm.com");
        assert_eq!(details["IBM_KP_TOKEN_URL"], DEFAULT_IBM_KP_TOKEN_URL);
        assert!(details.get("IBM_BASE_URL").is_none());
        assert_eq!(m.warnings.len(), 1);
    }

    #[test]
    fn kmip_port_and_timeouts() {
        let (_, details) = apply_twice(json!({"KMS_PROVIDER": " kmip ", "KMIP_ENDPOINT": "kmip.example.com"}));
        assert_eq!(
            details,
            json!({"KMS_PROVIDER": "kmip", "KMIP_ENDPOINT": "kmip.example.com:5696", "READ_TIMEOUT": "10", "WRITE_TIMEOUT": "10"})
        );
    }

    #[test]
    fn keys_with_slashes_are_escaped() {
        let (_, c) = cluster(json!({"KMS_PROVIDER": "vault", "a/b~c": " x "}));
        let m = mutate(&c);
        let paths: Vec<String> = m.patch.0.iter().map(|op| op.path().to_string()).collect();
        assert!(paths.contains(&"/spec/security/kms/connectionDetails/a~1b~0c".to_string()), "{paths:?}");
    }

    #[test]
    fn secret_material_is_never_put_in_a_patch() {
        let (_, c) = cluster(json!({"KMS_PROVIDER": "vault", "VAULT_TOKEN": " s.secret "}));
        let patch = serde_json::to_string(&mutate(&c).patch).unwrap();
        assert!(!patch.contains("s.secret"), "{patch}");
    }
}
