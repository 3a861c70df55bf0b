//! Rules for every provider: KMS_PROVIDER, key names, secrets written inline, whitespace, and the
//! settings Rook silently ignores.

use super::Context;
use crate::config::{INLINE_SECRET_KEYS, KMS_PROVIDER, Provider, VAULT_ENV_ONLY_KEYS};
use crate::field;
use crate::names;
use crate::verdict::Verdict;

/// Keys Rook reads raw (untrimmed): whitespace there breaks Rook silently, so it is an error.
const READ_RAW: &[&str] = &[KMS_PROVIDER, "VAULT_SECRET_ENGINE"];

pub(super) fn validate(ctx: &Context<'_>, out: &mut Verdict) {
    let cluster = ctx.cluster;
    let kms = &cluster.kms;
    if !kms.is_enabled() {
        if kms.token_secret().is_some() {
            out.warn(field::TOKEN_SECRET_NAME, "tokenSecretName is set but connectionDetails is empty, so Rook ignores it and keeps OSD keys in Kubernetes Secrets; add connectionDetails with KMS_PROVIDER or remove tokenSecretName.");
        }
        return;
    }
    let provider = provider(ctx, out);
    for (key, value) in &kms.connection_details {
        key_rules(key, value, provider, out);
    }
    if !cluster.has_encrypted_device_sets() {
        out.warn(field::KMS, "Rook ignores spec.security.kms: no storageClassDeviceSets entry has encrypted: true, so no OSD key goes to the KMS; set encrypted: true on a device set, or remove kms.");
    }
    if cluster.host_encrypted_device {
        out.warn("spec.storage", "encryptedDevice: \"true\" (host-based OSDs) does not use spec.security.kms: Ceph keeps those keys in the monitors; only storageClassDeviceSets with encrypted: true use the KMS.");
    }
}

fn provider(ctx: &Context<'_>, out: &mut Verdict) -> Option<Provider> {
    let kms = &ctx.cluster.kms;
    let path = field::detail(KMS_PROVIDER);
    let Some(value) = kms.param(KMS_PROVIDER) else {
        let typo = kms.connection_details.keys().find(|k| names::suggest(k, [KMS_PROVIDER]).is_some());
        let hint =
            typo.map(|t| format!(" (connectionDetails has {t}: did you mean {KMS_PROVIDER}?)")).unwrap_or_default();
        out.deny(path, format!("KMS_PROVIDER is missing or empty{hint}; Rook stops the whole reconcile (\"failed to validate kms config \\\"KMS_PROVIDER\\\". cannot be empty\"). Set it to vault, ibmkeyprotect, kmip or azure-kv."));
        return None;
    };
    let Some(provider) = Provider::parse(value) else {
        let hint =
            Provider::suggest(value).map(|p| format!("did you mean {p:?}? ", p = p.as_str())).unwrap_or_default();
        out.deny(path, format!("KMS_PROVIDER {} is not a provider Rook supports; {hint}Rook accepts exactly vault, ibmkeyprotect, kmip or azure-kv (case-sensitive).", field::shown(value)));
        return None;
    };
    Some(provider)
}

fn key_rules(key: &str, value: &str, provider: Option<Provider>, out: &mut Verdict) {
    let path = field::detail(key);
    if !names::is_env_name(key) {
        out.deny(&path, format!("{} is not a valid environment variable name, and Rook passes every key to OSD pods as one; use letters, digits and '_' only, not starting with a digit.", field::shown(key)));
        return;
    }
    if let Some((_, instead)) = INLINE_SECRET_KEYS.iter().find(|(k, _)| *k == key) {
        out.deny(&path, format!("{key} holds secret material and must not be written into the CephCluster, where anyone who can read it sees it (and Rook does not use it from here); remove it and {instead}."));
        return;
    }
    if contains_pem(value) {
        out.deny(
            &path,
            format!(
                "{key} holds a PEM block; certificates and keys belong in a Secret, with {key} naming that Secret."
            ),
        );
        return;
    }
    if value.trim() != value {
        if READ_RAW.contains(&key) {
            out.deny(&path, format!("{key} has leading or trailing whitespace; Rook reads it untrimmed and would silently store no keys. Remove the whitespace."));
        } else {
            out.warn(
                &path,
                format!("{key} has leading or trailing whitespace; Rook trims it, but remove it to avoid surprises."),
            );
        }
    }
    let Some(provider) = provider else { return };
    if provider.known_keys().contains(&key) {
        return;
    }
    if provider == Provider::Vault && VAULT_ENV_ONLY_KEYS.contains(&key) {
        out.warn(&path, format!("{key} is read from the environment by Vault's client: it applies in OSD and key-rotation pods but not in the Rook operator."));
        return;
    }
    let hint = match names::suggest(key, provider.known_keys().iter().copied()) {
        Some(k) => format!("did you mean {k}?"),
        None => "remove it, or check the key name.".to_string(),
    };
    out.warn(&path, format!("{key} is not a key Rook reads for KMS_PROVIDER {provider}; {hint}"));
}

fn contains_pem(value: &str) -> bool {
    value.contains("-----BEGIN ")
}
