//! KMS_PROVIDER vault: address, auth method, KV engine and path, TLS Secrets.

use super::Context;
use super::tls::{self, Source};
use crate::config::Provider;
use crate::field;
use crate::names;
use crate::verdict::Verdict;

const P: Provider = Provider::Vault;

pub(super) fn validate(ctx: &Context<'_>, out: &mut Verdict) {
    let kms = &ctx.cluster.kms;
    if let Some(addr) =
        ctx.require(out, P, "VAULT_ADDR", "set it to the Vault address, e.g. https://vault.vault.svc:8200")
    {
        check_addr(addr, out);
    }
    auth(ctx, out);
    if let Some(engine) = kms.param("VAULT_SECRET_ENGINE").filter(|e| *e != "kv") {
        let why = if engine == "transit" {
            "transit encrypts data but cannot store OSD keys (it is for CephObjectStore SSE)"
        } else {
            "Rook stores OSD keys only in a KV engine"
        };
        out.deny(
            field::detail("VAULT_SECRET_ENGINE"),
            format!(
                "VAULT_SECRET_ENGINE {} cannot work for a CephCluster: {why}; use kv or remove the key.",
                field::shown(engine)
            ),
        );
    }
    if let Some(backend) = kms.param("VAULT_BACKEND").filter(|b| !matches!(*b, "v1" | "v2" | "kv" | "kv-v2")) {
        out.deny(field::detail("VAULT_BACKEND"), format!("VAULT_BACKEND {} is not a KV version; use v1 or kv (KV version 1), v2 or kv-v2 (KV version 2), or remove it to let Rook detect it.", field::shown(backend)));
    }
    if let Some(path) = kms.param("VAULT_BACKEND_PATH") {
        if path.starts_with('/') {
            out.deny(field::detail("VAULT_BACKEND_PATH"), format!("VAULT_BACKEND_PATH {} must be the mount path relative to Vault's API root, e.g. rook/ (no leading '/').", field::shown(path)));
        } else if path.split('/').any(|seg| seg == "..") {
            out.deny(
                field::detail("VAULT_BACKEND_PATH"),
                format!("VAULT_BACKEND_PATH {} contains '..'; name the KV mount directly.", field::shown(path)),
            );
        }
    }
    if kms.param("VAULT_CAPATH").is_some() {
        out.deny(field::detail("VAULT_CAPATH"), "VAULT_CAPATH is not supported (Rook: \"failed to validate TLS connection details. \\\"VAULT_CAPATH\\\" is not supported. use \\\"VAULT_CACERT\\\" instead\"); put the CA in a Secret under key cert and name it in VAULT_CACERT.");
    }
    tls_secrets(ctx, out);
    if let Some(v) = kms.param("VAULT_SKIP_VERIFY") {
        match names::parse_go_bool(v) {
            None => out.deny(field::detail("VAULT_SKIP_VERIFY"), format!("VAULT_SKIP_VERIFY {} is not a boolean Vault's client accepts (\"VAULT_SKIP_VERIFY is invalid\"); use true or false.", field::shown(v))),
            Some(true) => out.warn(field::detail("VAULT_SKIP_VERIFY"), "VAULT_SKIP_VERIFY is true: the Vault server's certificate is not verified, so anyone on the path can read the token and the OSD keys; set VAULT_CACERT instead."),
            Some(false) => {}
        }
    }
    if let Some(name) = kms.param("VAULT_TLS_SERVER_NAME").filter(|n| !names::is_server_name(n)) {
        out.deny(field::detail("VAULT_TLS_SERVER_NAME"), format!("VAULT_TLS_SERVER_NAME {} is not a DNS name or IP address; set the name in the Vault server's certificate.", field::shown(name)));
    }
}

fn check_addr(addr: &str, out: &mut Verdict) {
    let path = field::detail("VAULT_ADDR");
    let parsed = url::Url::parse(addr).ok().filter(|u| {
        (addr.starts_with("https://") || addr.starts_with("http://")) && u.host_str().is_some_and(|h| !h.is_empty())
    });
    match parsed {
        None => out.deny(path, format!("VAULT_ADDR {} is not an absolute http(s) URL with a host; use the form https://vault.example.com:8200.", field::shown(addr))),
        Some(u) if u.scheme() == "http" => out.warn(path, "VAULT_ADDR uses http://: the Vault token and the OSD keys cross the network in clear text; use https:// with VAULT_CACERT."),
        Some(_) => {}
    }
}

fn auth(ctx: &Context<'_>, out: &mut Verdict) {
    let kms = &ctx.cluster.kms;
    let path = field::detail("VAULT_AUTH_METHOD");
    match kms.param("VAULT_AUTH_METHOD") {
        None | Some("token") => check_token(ctx, out),
        Some("kubernetes") => {
            ctx.require(
                out,
                P,
                "VAULT_AUTH_KUBERNETES_ROLE",
                "name the Vault role bound to the rook-ceph-system and rook-ceph-osd service accounts",
            );
            if kms.token_secret().is_some() {
                out.warn(field::TOKEN_SECRET_NAME, "tokenSecretName is set with VAULT_AUTH_METHOD kubernetes: Rook then uses the token and never logs in with Kubernetes auth; remove tokenSecretName.");
                check_token(ctx, out);
            }
        }
        Some(other) => {
            let why = match other {
                "agent" => {
                    "agent auth passes Rook's checks but Vault's client rejects it (\"unknown auth method\"); it is for CephObjectStore only"
                }
                "approle" => "Rook forces a token for non-kubernetes auth, so AppRole is never used",
                _ => "Rook supports token (the default) and kubernetes",
            };
            out.deny(
                path,
                format!(
                    "VAULT_AUTH_METHOD {} cannot work for a CephCluster: {why}; use token or kubernetes.",
                    field::shown(other)
                ),
            );
        }
    }
}

fn check_token(ctx: &Context<'_>, out: &mut Verdict) {
    let Some(secret) = ctx.token_secret(out, P, &["token"], "the Vault token") else {
        return;
    };
    if secret.get("token").is_some_and(|t| t.trim_ascii() != t) {
        out.warn(field::TOKEN_SECRET_NAME, "the Vault token in key token has leading or trailing whitespace (often a newline from echo | base64); Rook passes it on, so remove it.");
    }
}

/// `(connectionDetails key, Secret key, what it holds)`.
const TLS_KEYS: [(&str, &str, &str); 3] = [
    ("VAULT_CACERT", "cert", "the PEM CA certificate"),
    ("VAULT_CLIENT_CERT", "cert", "the PEM client certificate"),
    ("VAULT_CLIENT_KEY", "key", "the PEM client private key"),
];

fn tls_secrets(ctx: &Context<'_>, out: &mut Verdict) {
    let kms = &ctx.cluster.kms;
    let mut found: [Option<(&str, &[u8])>; 3] = [None; 3];
    for (slot, (key, secret_key, holds)) in found.iter_mut().zip(TLS_KEYS) {
        let Some(name) = kms.param(key) else { continue };
        let path = field::detail(key);
        if name.contains("-----BEGIN ") {
            continue; // denied by the inline-PEM rule
        }
        if !names::is_object_name(name) {
            out.deny(path, format!("{key} {} must name a Secret in namespace {} that holds {holds} under key {secret_key}, not a file path or PEM.", field::shown(name), ctx.cluster.namespace));
            continue;
        }
        let Some(data) = ctx.secret(out, &path, name, &format!("with {holds} under key {secret_key}")) else {
            continue;
        };
        match data.non_empty(secret_key) {
            Some(bytes) => *slot = Some((name, bytes)),
            None => out.deny(path, format!("Secret {} has no key {secret_key} or it is empty (Rook: \"failed to find TLS connection key\"); store {holds} under key {secret_key}.", field::shown(name))),
        }
    }
    if let Some((name, ca)) = found[0] {
        tls::check_ca(out, &Source { field: &field::detail("VAULT_CACERT"), secret: name, key: "cert" }, ca, ctx.now);
    }
    match (kms.param("VAULT_CLIENT_CERT"), kms.param("VAULT_CLIENT_KEY")) {
        (Some(_), None) => out.deny(field::detail("VAULT_CLIENT_KEY"), "VAULT_CLIENT_CERT is set without VAULT_CLIENT_KEY; a client certificate needs its private key: name the Secret that holds it under key key."),
        (None, Some(_)) => out.deny(field::detail("VAULT_CLIENT_CERT"), "VAULT_CLIENT_KEY is set without VAULT_CLIENT_CERT; name the Secret that holds the client certificate under key cert."),
        _ => {}
    }
    if let (Some(ca), Some(cert)) = (kms.param("VAULT_CACERT"), kms.param("VAULT_CLIENT_CERT"))
        && ca == cert
    {
        out.deny(field::detail("VAULT_CLIENT_CERT"), format!("VAULT_CACERT and VAULT_CLIENT_CERT both name Secret {}, but both read key cert, so the CA would be the client certificate; use two Secrets.", field::shown(ca)));
    }
    if let (Some((cert_name, cert)), Some((key_name, key))) = (found[1], found[2]) {
        tls::check_client(
            out,
            &Source { field: &field::detail("VAULT_CLIENT_CERT"), secret: cert_name, key: "cert" },
            cert,
            &Source { field: &field::detail("VAULT_CLIENT_KEY"), secret: key_name, key: "key" },
            key,
            ctx.now,
        );
    }
}
