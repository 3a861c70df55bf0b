//! The validation rules: pure functions from a cluster (its old version on UPDATE) and a snapshot
//! of the Secrets it references to a [`Verdict`]. No I/O happens here.
//!
//! Where a rule lives follows from its message: `common` holds what applies to every provider
//! (KMS_PROVIDER, key names, inline secrets, whitespace), one module per provider holds that
//! provider's keys and Secrets, `tls` the PEM checks they share, `rotation` the keyRotation rules
//! and `update` what only an UPDATE can get wrong.

mod azure;
mod common;
mod keyprotect;
mod kmip;
mod rotation;
mod tls;
mod update;

pub(crate) use keyprotect::ALIASES as IBM_ALIASES;
mod vault;

use crate::cluster::{Cluster, KmsSpec};
use crate::config::Provider;
use crate::field;
use crate::names;
use crate::secrets::{Lookup, SecretData, SecretSnapshot};
use crate::verdict::Verdict;

/// Everything the rules may look at.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    pub cluster: &'a Cluster,
    pub secrets: &'a SecretSnapshot,
    /// Unix seconds, for certificate validity.
    pub now: i64,
}

impl<'a> Context<'a> {
    fn kms(&self) -> &'a KmsSpec {
        &self.cluster.kms
    }

    /// The provider when `KMS_PROVIDER` (trimmed) is one Rook supports.
    pub fn provider(&self) -> Option<Provider> {
        self.kms().param(crate::config::KMS_PROVIDER).and_then(Provider::parse)
    }

    /// An unknown key that looks like a typo of `key`, for "did you mean" hints.
    fn near_miss(&self, key: &str, provider: Provider) -> Option<&'a str> {
        self.kms()
            .connection_details
            .keys()
            .map(String::as_str)
            .filter(|k| !provider.known_keys().contains(k) && *k != key)
            .find(|k| names::suggest(k, [key]).is_some())
    }

    /// Denies when a required connectionDetails key is unset, with a "did you mean" hint when a
    /// misspelt key is there instead.
    fn require(&self, out: &mut Verdict, provider: Provider, key: &str, how: &str) -> Option<&'a str> {
        let value = self.kms().param(key);
        if value.is_none() {
            let hint = match self.near_miss(key, provider) {
                Some(typo) => format!(" (connectionDetails has {typo}: did you mean {key}?)"),
                None => String::new(),
            };
            out.deny(
                field::detail(key),
                format!("{key} is required for KMS_PROVIDER {provider} and is missing or empty{hint}; {how}."),
            );
        }
        value
    }

    /// Looks up a Secret by name, denying when it is missing or cannot be read.
    fn secret(&self, out: &mut Verdict, field: &str, name: &str, why: &str) -> Option<&'a SecretData> {
        let ns = &self.cluster.namespace;
        match self.secrets.lookup(name) {
            Lookup::Found(data) => Some(data),
            Lookup::NotFound => {
                out.deny(
                    field,
                    format!("Secret {} does not exist in namespace {ns}; create it ({why}).", field::shown(name)),
                );
                None
            }
            Lookup::Unavailable(e) => {
                out.unreadable.push(crate::verdict::Finding::new(field, format!("Secret {} in namespace {ns} could not be read ({e}); retry, or check the webhook's access to Secrets.", field::shown(name))));
                None
            }
        }
    }

    /// Rook's `tokenSecretName` checks (steps 2 and 3 of `ValidateConnectionDetails`): the name
    /// is set, the Secret exists and every listed key is present and non-empty.
    fn token_secret(&self, out: &mut Verdict, provider: Provider, keys: &[&str], why: &str) -> Option<&'a SecretData> {
        let Some(name) = self.kms().token_secret() else {
            out.deny(
                field::TOKEN_SECRET_NAME,
                format!(
                    "tokenSecretName is required for {provider} (Rook: \"failed to validate kms configuration (missing token in spec)\"); name a Secret in namespace {} that holds {why}.",
                    self.cluster.namespace
                ),
            );
            return None;
        };
        if !names::is_object_name(name) {
            out.deny(
                field::TOKEN_SECRET_NAME,
                format!("{} is not a valid Secret name (lowercase letters, digits, '-' and '.').", field::shown(name)),
            );
            return None;
        }
        let data = self.secret(out, field::TOKEN_SECRET_NAME, name, &format!("it must hold {why}"))?;
        let mut complete = true;
        for key in keys {
            if data.non_empty(key).is_none() {
                complete = false;
                out.deny(
                    field::TOKEN_SECRET_NAME,
                    format!(
                        "Secret {} has no key {key} or it is empty; add {why} under key {key}.",
                        field::shown(name)
                    ),
                );
            }
        }
        complete.then_some(data)
    }
}

/// Validates one cluster on its own (CREATE, or either side of an UPDATE).
pub fn validate(ctx: &Context<'_>) -> Verdict {
    let mut out = Verdict::default();
    common::validate(ctx, &mut out);
    if ctx.kms().is_enabled() {
        match ctx.provider() {
            Some(Provider::Vault) => vault::validate(ctx, &mut out),
            Some(Provider::IbmKeyProtect) => keyprotect::validate(ctx, &mut out),
            Some(Provider::Kmip) => kmip::validate(ctx, &mut out),
            Some(Provider::AzureKv) => azure::validate(ctx, &mut out),
            None => {}
        }
    }
    rotation::validate(ctx, &mut out);
    out
}

/// Validates an UPDATE: the new object's own rules, with problems the old object already had
/// ratcheted down to warnings, plus the rules about the change itself.
pub fn validate_update(new: &Context<'_>, old: &Context<'_>) -> Verdict {
    let mut out = validate(new);
    let before = validate(old);
    out.ratchet(&before.errors);
    update::validate(new.cluster, old.cluster, &mut out);
    out
}
