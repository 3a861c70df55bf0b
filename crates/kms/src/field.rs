//! Field paths as users read them (`spec.security.kms.connectionDetails.VAULT_ADDR`) and as JSON
//! Pointers for patches.

use crate::names::is_env_name;

pub const KMS: &str = "spec.security.kms";
pub const CONNECTION_DETAILS: &str = "spec.security.kms.connectionDetails";
pub const TOKEN_SECRET_NAME: &str = "spec.security.kms.tokenSecretName";
pub const KEY_ROTATION: &str = "spec.security.keyRotation";
pub const KEY_ROTATION_ENABLED: &str = "spec.security.keyRotation.enabled";
pub const KEY_ROTATION_SCHEDULE: &str = "spec.security.keyRotation.schedule";
pub const DEVICE_SETS: &str = "spec.storage.storageClassDeviceSets";

/// The path of one `connectionDetails` key. Keys that are not plain identifiers are quoted so that
/// the path stays unambiguous.
pub fn detail(key: &str) -> String {
    if is_env_name(key) {
        format!("{CONNECTION_DETAILS}.{key}")
    } else {
        format!("{CONNECTION_DETAILS}[{}]", shown(key))
    }
}

/// The path of one device set's field.
pub fn device_set(index: usize, field: &str) -> String {
    format!("{DEVICE_SETS}[{index}].{field}")
}

/// A user-supplied, non-secret value as it may appear inside a message: quoted, escaped, and cut
/// to a bounded length so that a hostile 10 MB value cannot flood a response or a log line.
pub fn shown(value: &str) -> String {
    const MAX_CHARS: usize = 64;
    let mut cut: String = value.chars().take(MAX_CHARS).collect();
    if cut.len() < value.len() {
        cut.push('…');
    }
    format!("{cut:?}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detail_paths_quote_odd_keys() {
        assert_eq!(detail("VAULT_ADDR"), "spec.security.kms.connectionDetails.VAULT_ADDR");
        assert_eq!(detail("a.b"), "spec.security.kms.connectionDetails[\"a.b\"]");
    }

    #[test]
    fn shown_values_are_bounded_and_escaped() {
        let long = "x".repeat(10_000);
        assert!(shown(&long).chars().count() < 70);
        assert_eq!(shown("a\"b\n"), "\"a\\\"b\\n\"");
    }
}
