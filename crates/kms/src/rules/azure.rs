//! KMS_PROVIDER azure-kv: vault URL, identities, the client-certificate Secret, cloud.

use super::Context;
use super::tls::{self, Source};
use crate::config::Provider;
use crate::field;
use crate::names;
use crate::verdict::Verdict;

const P: Provider = Provider::AzureKv;

/// Host suffixes of Azure Key Vault in the public, US government and China clouds.
const KEY_VAULT_DOMAINS: [&str; 4] =
    [".vault.azure.net", ".vault.usgovcloudapi.net", ".vault.azure.cn", ".managedhsm.azure.net"];

pub(super) fn validate(ctx: &Context<'_>, out: &mut Verdict) {
    let kms = &ctx.cluster.kms;
    if let Some(url) =
        ctx.require(out, P, "AZURE_VAULT_URL", "set it to the Key Vault URL, e.g. https://my-vault.vault.azure.net")
    {
        let host = url::Url::parse(url)
            .ok()
            .filter(|_| url.starts_with("https://"))
            .and_then(|u| u.host_str().map(str::to_string));
        match host {
            None => out.deny(field::detail("AZURE_VAULT_URL"), format!("AZURE_VAULT_URL {} is not an https:// URL with a host; use https://<vault-name>.vault.azure.net.", field::shown(url))),
            Some(h) if !KEY_VAULT_DOMAINS.iter().any(|d| h.ends_with(d)) => out.warn(field::detail("AZURE_VAULT_URL"), format!("AZURE_VAULT_URL host {} is not in a known Azure Key Vault domain (e.g. vault.azure.net); check the URL.", field::shown(&h))),
            Some(_) => {}
        }
    }
    for (key, what) in
        [("AZURE_TENANT_ID", "the Microsoft Entra tenant ID"), ("AZURE_CLIENT_ID", "the application (client) ID")]
    {
        if let Some(id) = ctx.require(out, P, key, &format!("set it to {what} (a UUID)"))
            && !names::is_uuid(id)
        {
            out.deny(field::detail(key), format!("{key} {} is not a UUID; use {what}.", field::shown(id)));
        }
    }
    if let Some(env) = kms.param("AZURE_ENVIRONMENT")
        && !["AzurePublicCloud", "AzureUSGovernment", "AzureChinaCloud"].iter().any(|e| e.eq_ignore_ascii_case(env))
    {
        out.deny(field::detail("AZURE_ENVIRONMENT"), format!("AZURE_ENVIRONMENT {} is not AzurePublicCloud, AzureUSGovernment or AzureChinaCloud (anything else silently means the public cloud).", field::shown(env)));
    }
    if kms.token_secret().is_some() {
        out.warn(field::TOKEN_SECRET_NAME, "tokenSecretName is not used by azure-kv; the credentials come from the Secret named by AZURE_CERT_SECRET_NAME. Remove it.");
    }
    let Some(name) = ctx.require(
        out,
        P,
        "AZURE_CERT_SECRET_NAME",
        "name the Secret that holds the client certificate and key under key CLIENT_CERT",
    ) else {
        return;
    };
    let path = field::detail("AZURE_CERT_SECRET_NAME");
    if !names::is_object_name(name) {
        out.deny(path, format!("AZURE_CERT_SECRET_NAME {} is not a valid Secret name.", field::shown(name)));
        return;
    }
    let Some(secret) =
        ctx.secret(out, &path, name, "with the PEM certificate and unencrypted private key under key CLIENT_CERT")
    else {
        return;
    };
    let Some(bundle) = secret.non_empty("CLIENT_CERT") else {
        out.deny(path, format!("Secret {} has no key CLIENT_CERT or it is empty; store the PEM client certificate followed by its unencrypted private key there.", field::shown(name)));
        return;
    };
    let src = Source { field: &path, secret: name, key: "CLIENT_CERT" };
    tls::check_client(out, &src, bundle, &src, bundle, ctx.now);
}
