//! Vault (and OpenBao): the HTTP calls Rook's Vault library makes, and the probe built on them.

use std::sync::Arc;
use std::time::Duration;

use hyper::Method;
use serde_json::Value;

use super::http::{Connection, HttpError, TlsSettings};
use super::tls::{Trust, client_config};
use crate::field;
use crate::probe::{KvVersion, ProbeFinding, ProbeOptions, VaultAuth, VaultTarget};

/// The key name the capability check asks about: a concrete path under Rook's key prefix that
/// no OSD will ever use.
pub const PROBE_KEY: &str = "rook-ceph-osd-encryption-key-rook-kms-webhook-probe";

/// Tokens expiring sooner than this are reported.
const TOKEN_WARN_SECONDS: i64 = 7 * 24 * 3600;

/// A Vault session on one connection.
pub struct Vault {
    conn: Connection,
    token: Option<String>,
    namespace: Option<String>,
}

/// A Vault answer: status and JSON body (`Null` when empty or not JSON).
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
}

impl Vault {
    /// Connects with TLS set up exactly as Rook's client would.
    pub async fn connect(target: &VaultTarget, options: &ProbeOptions, timeout: Duration) -> Result<Self, String> {
        let tls = if target.addr.scheme() == "https" {
            let trust = match (&target.ca_pem, target.skip_verify) {
                (_, true) => Trust::SkipVerify,
                (Some(pem), false) => Trust::Pem(pem.clone()),
                (None, false) => Trust::Public(options.extra_roots.clone()),
            };
            let config = client_config(&trust, target.client.as_ref(), &[b"http/1.1"])
                .map_err(|e| format!("cannot set up TLS for Vault: {e}"))?;
            Some(TlsSettings {
                config: Arc::new(config),
                server_name: target.server_name.clone(),
                ca_source: if target.ca_pem.is_some() { "VAULT_CACERT".into() } else { "the public roots".into() },
            })
        } else {
            None
        };
        let conn =
            Connection::open(&target.addr, tls.as_ref(), &options.policy, timeout).await.map_err(|e| describe(&e))?;
        let token = match &target.auth {
            VaultAuth::Token { token, .. } => Some(token.0.clone()),
            VaultAuth::Kubernetes => None,
        };
        Ok(Self { conn, token, namespace: target.namespace.clone() })
    }

    /// Calls `/v1/<path>`; `namespaced` adds `X-Vault-Namespace` (as Rook's library does for
    /// setup calls; key paths carry the namespace as a prefix instead).
    pub async fn call(
        &mut self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        namespaced: bool,
    ) -> Result<Answer, HttpError> {
        let mut headers: Vec<(&str, &str)> = vec![("x-vault-request", "true"), ("accept", "application/json")];
        if let Some(t) = &self.token {
            headers.push(("x-vault-token", t));
        }
        if namespaced && let Some(ns) = &self.namespace {
            headers.push(("x-vault-namespace", ns));
        }
        if body.is_some() {
            headers.push(("content-type", "application/json"));
        }
        let bytes = body.map(|b| b.to_string().into_bytes());
        let response = self.conn.send(method, &format!("/v1/{path}"), &headers, bytes).await?;
        let body = serde_json::from_slice(&response.body).unwrap_or(Value::Null);
        Ok(Answer { status: response.status, body })
    }
}

/// A connection problem in words.
fn describe(e: &HttpError) -> String {
    e.to_string()
}

/// Vault's `errors` list, bounded, for messages (Vault's own error texts carry no secrets, but a
/// server that is not Vault could answer anything: only short, printable texts are kept).
fn vault_errors(body: &Value) -> String {
    let errors: Vec<String> = body
        .get("errors")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).map(|s| field::shown(s.trim()).trim_matches('"').to_string()))
        .into_iter()
        .flatten()
        .take(2)
        .collect();
    if errors.is_empty() { String::new() } else { format!(" ({})", errors.join("; ")) }
}

/// The probe: health, token, KV mount and version, capabilities on Rook's key paths.
pub async fn probe(target: &VaultTarget, options: &ProbeOptions) -> Vec<ProbeFinding> {
    let addr_field = field::detail("VAULT_ADDR");
    let at = field::shown(target.addr.as_str());
    let mut vault = match Vault::connect(target, options, options.connect_timeout).await {
        Ok(v) => v,
        Err(reason) => {
            return vec![ProbeFinding::fail(addr_field, format!("live probe: cannot reach Vault at {at}: {reason}."))];
        }
    };
    let unreachable = |e: HttpError| {
        vec![ProbeFinding::fail(field::detail("VAULT_ADDR"), format!("live probe: Vault at {at} did not answer: {e}."))]
    };

    // 1. Reachability: sys/health (standby nodes forward requests, so they count as up).
    let health = match vault.call(Method::GET, "sys/health?standbyok=true&perfstandbyok=true", None, false).await {
        Ok(a) => a,
        Err(e) => return unreachable(e),
    };
    match health.status {
        200 | 429 | 472 | 473 => {}
        503 => {
            return vec![ProbeFinding::fail(
                addr_field,
                format!(
                    "live probe: Vault at {at} is sealed; Rook cannot store or read OSD keys until it is unsealed."
                ),
            )];
        }
        501 => {
            return vec![ProbeFinding::fail(
                addr_field,
                format!("live probe: Vault at {at} is not initialized; initialize and unseal it first."),
            )];
        }
        s => {
            return vec![ProbeFinding::fail(
                addr_field,
                format!(
                    "live probe: {at} answered sys/health with HTTP {s}; check that VAULT_ADDR points at a Vault server (scheme, host and port, no path)."
                ),
            )];
        }
    }

    let VaultAuth::Token { secret, .. } = &target.auth else {
        // Kubernetes auth: Rook logs in with its own service account token, which the webhook does
        // not hold; reachability and TLS are what can be proven here.
        return Vec::new();
    };
    let token_field = field::TOKEN_SECRET_NAME;
    let secret = field::shown(secret);
    let mut findings = Vec::new();

    // 2. The token: valid, long-lived enough, not use-limited.
    let lookup = match vault.call(Method::GET, "auth/token/lookup-self", None, true).await {
        Ok(a) => a,
        Err(e) => return unreachable(e),
    };
    match lookup.status {
        200 => {
            let data = &lookup.body["data"];
            let ttl = data["ttl"].as_i64().unwrap_or(0);
            let renewable = data["renewable"].as_bool().unwrap_or(false);
            if ttl > 0 && ttl < TOKEN_WARN_SECONDS && !renewable {
                findings.push(ProbeFinding::warn(token_field, format!("live probe: the Vault token in Secret {secret} expires in {} and is not renewable; Rook never renews tokens, so OSDs cannot get their keys after that. Issue a longer-lived or periodic token.", human_duration(ttl))));
            }
            if let Some(uses) = data["num_uses"].as_i64().filter(|n| *n > 0) {
                findings.push(ProbeFinding::fail(token_field, format!("live probe: the Vault token in Secret {secret} is limited to {uses} uses; Rook calls Vault on every OSD start, so it will stop working. Issue a token without num_uses.")));
            }
        }
        403 => {
            return vec![ProbeFinding::fail(
                token_field,
                format!(
                    "live probe: Vault at {at} rejected the token in Secret {secret} (key token){}: it is expired, revoked or wrong{}. Put a valid token in the Secret.",
                    vault_errors(&lookup.body),
                    namespace_hint(target)
                ),
            )];
        }
        s => {
            return vec![ProbeFinding::fail(
                token_field,
                format!(
                    "live probe: Vault at {at} answered the token lookup with HTTP {s}{}.",
                    vault_errors(&lookup.body)
                ),
            )];
        }
    }

    // 3. The KV mount and its version, the way Rook's library finds them.
    let path_field = field::detail("VAULT_BACKEND_PATH");
    let mount_shown = field::shown(&format!("{}/", target.backend_path));
    let mounts = match vault.call(Method::GET, "sys/mounts", None, true).await {
        Ok(a) => a,
        Err(e) => return unreachable(e),
    };
    let version = match mounts.status {
        200 => {
            let table = mounts.body.get("data").filter(|d| d.is_object()).unwrap_or(&mounts.body);
            let found = table.as_object().and_then(|m| {
                m.iter().find(|(path, v)| path.trim_matches('/') == target.backend_path && v.get("type").is_some())
            });
            let Some((_, mount)) = found else {
                let mut seen: Vec<String> = table
                    .as_object()
                    .map(|m| {
                        m.iter()
                            .filter(|(_, v)| v.get("type").and_then(Value::as_str) == Some("kv"))
                            .map(|(p, _)| field::shown(p))
                            .collect()
                    })
                    .unwrap_or_default();
                seen.truncate(5);
                let hint = if seen.is_empty() { String::new() } else { format!(" (KV mounts: {})", seen.join(", ")) };
                findings.push(ProbeFinding::fail(path_field, format!("live probe: no secrets engine is mounted at {mount_shown} in Vault{}{hint}; Rook fails with \"secrets engine with mount path not found\". Fix VAULT_BACKEND_PATH or mount a KV engine there.", namespace_suffix(target))));
                return findings;
            };
            let kind = mount.get("type").and_then(Value::as_str).unwrap_or("");
            if kind != "kv" && kind != "generic" {
                findings.push(ProbeFinding::fail(path_field, format!("live probe: the engine mounted at {mount_shown} is {}, not kv; Rook stores OSD keys in a KV engine.", field::shown(kind))));
                return findings;
            }
            let detected = if mount.pointer("/options/version").and_then(Value::as_str) == Some("2") {
                KvVersion::V2
            } else {
                KvVersion::V1
            };
            if let Some(declared) = target.backend_version().filter(|v| *v != detected) {
                findings.push(ProbeFinding::fail(field::detail("VAULT_BACKEND"), format!("live probe: VAULT_BACKEND says KV {} but the engine at {mount_shown} is KV {}; set VAULT_BACKEND to {} or remove it.", kv_name(declared), kv_name(detected), kv_name(detected))));
                return findings;
            }
            detected
        }
        403 if target.needs_sys_mounts() => {
            findings.push(ProbeFinding::fail(field::detail("VAULT_BACKEND"), format!("live probe: the token in Secret {secret} cannot read sys/mounts, which Rook's Vault client reads to detect the KV version; grant read on sys/mounts or set VAULT_BACKEND to kv (KV v1) or kv-v2 (KV v2).")));
            return findings;
        }
        403 => match target.backend_version() {
            Some(v) => v,
            None => return findings,
        },
        s => {
            findings.push(ProbeFinding::fail(
                path_field,
                format!("live probe: Vault answered sys/mounts with HTTP {s}{}.", vault_errors(&mounts.body)),
            ));
            return findings;
        }
    };

    // 4. Capabilities on the exact paths Rook uses for OSD keys.
    let base = &target.backend_path;
    let wanted: Vec<(String, &[&str])> = match version {
        KvVersion::V1 => vec![(format!("{base}/{PROBE_KEY}"), &["create", "read", "update", "delete"])],
        KvVersion::V2 => vec![
            (format!("{base}/data/{PROBE_KEY}"), &["create", "read", "update"]),
            (format!("{base}/metadata/{PROBE_KEY}"), &["delete"]),
        ],
    };
    let paths: Vec<&str> = wanted.iter().map(|(p, _)| p.as_str()).collect();
    let body = serde_json::json!({ "paths": paths });
    let caps = match vault.call(Method::POST, "sys/capabilities-self", Some(&body), true).await {
        Ok(a) => a,
        Err(e) => return unreachable(e),
    };
    if caps.status != 200 {
        findings.push(ProbeFinding::warn(token_field, format!("live probe: Vault answered sys/capabilities-self with HTTP {}{}; the token's rights on OSD key paths were not checked.", caps.status, vault_errors(&caps.body))));
        return findings;
    }
    for (path, needed) in &wanted {
        let table = caps.body.get("data").filter(|d| d.get(path).is_some()).unwrap_or(&caps.body);
        let granted: Vec<&str> = table
            .get(path)
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        if granted.contains(&"root") {
            continue;
        }
        let missing: Vec<&str> = needed.iter().copied().filter(|c| !granted.contains(c)).collect();
        if !missing.is_empty() {
            let shown_path = match &target.namespace {
                Some(ns) => format!("{ns}/{path}"),
                None => path.clone(),
            };
            let keys = field::shown(&shown_path.replace(PROBE_KEY, "rook-ceph-osd-encryption-key-*"));
            findings.push(ProbeFinding::fail(token_field, format!("live probe: the token in Secret {secret} lacks {} on {keys}; Rook needs {} there for OSD keys. Add the missing capabilities to the token's policy.", missing.join(", "), needed.join(", "))));
        }
    }
    findings
}

fn kv_name(v: KvVersion) -> &'static str {
    match v {
        KvVersion::V1 => "v1",
        KvVersion::V2 => "v2",
    }
}

fn namespace_hint(target: &VaultTarget) -> String {
    match &target.namespace {
        Some(ns) => format!(", or it does not belong to namespace {}", field::shown(ns)),
        None => String::new(),
    }
}

fn namespace_suffix(target: &VaultTarget) -> String {
    match &target.namespace {
        Some(ns) => format!(" namespace {}", field::shown(ns)),
        None => String::new(),
    }
}

/// Seconds as "3 days", "5 hours" or "12 minutes".
fn human_duration(seconds: i64) -> String {
    match seconds {
        s if s >= 2 * 86400 => format!("{} days", s / 86400),
        s if s >= 2 * 3600 => format!("{} hours", s / 3600),
        s => format!("{} minutes", (s / 60).max(1)),
    }
}
