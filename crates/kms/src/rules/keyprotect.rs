//! KMS_PROVIDER ibmkeyprotect: instance, API key Secret, endpoint URLs (and the key names Rook's
//! docs get wrong).

use super::Context;
use crate::config::Provider;
use crate::field;
use crate::names;
use crate::verdict::Verdict;

const P: Provider = Provider::IbmKeyProtect;

/// `(documented but ignored key, key Rook reads)`.
pub(crate) const ALIASES: [(&str, &str); 2] =
    [("IBM_BASE_URL", "IBM_KP_BASE_URL"), ("IBM_TOKEN_URL", "IBM_KP_TOKEN_URL")];

pub(super) fn validate(ctx: &Context<'_>, out: &mut Verdict) {
    let kms = &ctx.cluster.kms;
    if let Some(id) =
        ctx.require(out, P, "IBM_KP_SERVICE_INSTANCE_ID", "set it to the Key Protect instance ID (a UUID)")
        && !names::is_uuid(id)
    {
        out.deny(field::detail("IBM_KP_SERVICE_INSTANCE_ID"), format!("IBM_KP_SERVICE_INSTANCE_ID {} is not a UUID; use the instance GUID from `ibmcloud resource service-instance`.", field::shown(id)));
    }
    ctx.token_secret(out, P, &["IBM_KP_SERVICE_API_KEY"], "the IBM Cloud API key");
    for (alias, real) in ALIASES {
        let Some(alias_value) = kms.param(alias) else {
            continue;
        };
        match kms.param(real) {
            None => out.warn(field::detail(alias), format!("Rook ignores {alias} (its docs say {alias}, its code reads {real}), so the default is used; rename it to {real}.")),
            Some(v) if v == alias_value => out.warn(field::detail(alias), format!("{alias} duplicates {real} and Rook ignores it; remove it.")),
            Some(_) => out.deny(field::detail(alias), format!("{alias} and {real} are both set, to different values; Rook uses only {real}. Remove {alias}.")),
        }
    }
    for key in ["IBM_KP_BASE_URL", "IBM_KP_TOKEN_URL"] {
        if let Some(v) = kms.param(key) {
            let ok = v.starts_with("https://")
                && url::Url::parse(v).is_ok_and(|u| u.host_str().is_some_and(|h| !h.is_empty()));
            if !ok {
                out.deny(field::detail(key), format!("{key} {} is not an https:// URL with a host; e.g. https://us-south.kms.cloud.ibm.com or https://iam.cloud.ibm.com/oidc/token.", field::shown(v)));
            }
        }
    }
}
