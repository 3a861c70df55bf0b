//! Rules about an UPDATE itself: moving the keys' location, toggling encryption of device sets.

use crate::ALLOW_KMS_CHANGE_ANNOTATION;
use crate::cluster::{Cluster, KmsSpec};
use crate::config::{DEFAULT_KMIP_PORT, DEFAULT_VAULT_BACKEND_PATH, KMS_PROVIDER, LOCATION_KEYS, parse_kmip_endpoint};
use crate::field;
use crate::verdict::Verdict;

pub(super) fn validate(new: &Cluster, old: &Cluster, out: &mut Verdict) {
    location(new, old, out);
    encryption_toggles(new, old, out);
}

/// Where keys live according to one location key, normalised so that spellings Rook treats alike
/// compare equal (`secret` and `secret/`, an endpoint with and without the default port).
fn location_value(kms: &KmsSpec, key: &str) -> Option<String> {
    if !kms.is_enabled() {
        return (key == KMS_PROVIDER).then(|| "(Kubernetes Secrets)".to_string());
    }
    let value = kms.param(key);
    Some(match key {
        "VAULT_BACKEND_PATH" => value.unwrap_or(DEFAULT_VAULT_BACKEND_PATH).trim_matches('/').to_string(),
        "VAULT_ADDR" | "AZURE_VAULT_URL" => value?.trim_end_matches('/').to_string(),
        "KMIP_ENDPOINT" => match parse_kmip_endpoint(value?) {
            Ok(e) => format!("{}:{}", e.host, e.port.unwrap_or(DEFAULT_KMIP_PORT)),
            Err(_) => value?.to_string(),
        },
        _ => value?.to_string(),
    })
}

fn location(new: &Cluster, old: &Cluster, out: &mut Verdict) {
    if !old.has_encrypted_device_sets() {
        return;
    }
    let allowed = new.annotations.get(ALLOW_KMS_CHANGE_ANNOTATION).is_some_and(|v| v == "true");
    for key in LOCATION_KEYS {
        let (before, after) = (location_value(&old.kms, key), location_value(&new.kms, key));
        if before == after {
            continue;
        }
        let show = |v: &Option<String>| v.as_deref().map_or_else(|| "(unset)".to_string(), field::shown);
        let change = format!("changing {key} from {} to {}", show(&before), show(&after));
        if allowed {
            out.warn(field::detail(key), format!("{change} is allowed by {ALLOW_KMS_CHANGE_ANNOTATION}; make sure every OSD key was migrated, or the OSDs cannot unlock after a restart."));
        } else {
            out.deny(field::detail(key), format!("{change} moves where Rook looks for the OSD keys, but Rook never moves keys: the encrypted OSDs could not unlock after their next restart. Migrate the keys first (rook-kms-controller migrate), then annotate the CephCluster {ALLOW_KMS_CHANGE_ANNOTATION}: \"true\"."));
        }
    }
}

fn encryption_toggles(new: &Cluster, old: &Cluster, out: &mut Verdict) {
    if new.migration_confirmed {
        return;
    }
    for set in &new.device_sets {
        let Some(before) = old.device_sets.iter().find(|o| o.name == set.name) else {
            continue;
        };
        if before.encrypted != set.encrypted {
            out.warn(field::device_set(set.index, "encrypted"), format!("changing encrypted on existing device set {} does not re-create its OSDs unless spec.storage.migration.confirmation is \"yes-really-migrate-osds\".", field::shown(&set.name)));
        }
    }
}
