//! The live KMS probe: can Rook reach and authenticate to the KMS, with the rights it needs?
//!
//! [`target`] is pure: it reads what a probe needs (address, TLS material, credentials) from the
//! cluster and its Secrets, exactly as Rook would assemble it. [`run`] does the I/O through the
//! provider clients in [`crate::providers`], read-only, within one time budget, connecting only
//! where the [`NetPolicy`] allows. Findings never carry a response body or a secret value.

use std::fmt;
use std::time::Duration;

use rustls::pki_types::CertificateDer;
use url::Url;

use crate::cluster::Cluster;
use crate::config::{self, Provider};
use crate::field;
use crate::providers::net::NetPolicy;
use crate::providers::tls::ClientPair;
use crate::secrets::{Lookup, SecretSnapshot};

/// Annotation that opts one CephCluster out of the probe.
pub const SKIP_ANNOTATION: &str = "rook-kms-webhook/probe";

/// What probe failures do to the verdict (`--probe`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ProbeMode {
    /// No probe.
    Off,
    /// Probe failures are warnings.
    #[default]
    Warn,
    /// Probe failures deny (on CREATE, and on UPDATEs that change the kms settings).
    Enforce,
}

/// A secret string: `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Sensitive(pub String);

impl fmt::Debug for Sensitive {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<{} bytes>", self.0.len())
    }
}

/// The KV engine version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KvVersion {
    V1,
    V2,
}

/// How the Vault client authenticates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VaultAuth {
    /// A token from the Secret named by `tokenSecretName` (key `token`).
    Token { token: Sensitive, secret: String },
    /// Kubernetes auth: Rook logs in with its own service account, which the webhook cannot.
    Kubernetes,
}

/// Everything the Vault probe needs, as Rook assembles it.
#[derive(Debug, Clone)]
pub struct VaultTarget {
    pub addr: Url,
    pub auth: VaultAuth,
    pub namespace: Option<String>,
    /// `VAULT_BACKEND_PATH` without leading and trailing `/` (default `secret`).
    pub backend_path: String,
    /// `VAULT_BACKEND` as written, when set.
    pub backend: Option<String>,
    pub ca_pem: Option<Vec<u8>>,
    pub client: Option<ClientPair>,
    pub server_name: Option<String>,
    pub skip_verify: bool,
}

impl VaultTarget {
    /// The KV version `VAULT_BACKEND` names, if it names one.
    pub fn backend_version(&self) -> Option<KvVersion> {
        match self.backend.as_deref() {
            Some("v1" | "kv") => Some(KvVersion::V1),
            Some("v2" | "kv-v2") => Some(KvVersion::V2),
            _ => None,
        }
    }

    /// Whether Rook's Vault library reads `sys/mounts` at every client start: it skips the lookup
    /// only for `VAULT_BACKEND` `kv` or `kv-v2` (not for `v1`/`v2`, which Rook itself writes).
    pub fn needs_sys_mounts(&self) -> bool {
        !matches!(self.backend.as_deref(), Some("kv" | "kv-v2"))
    }
}

/// Everything the IBM Key Protect probe needs.
#[derive(Debug, Clone)]
pub struct KeyProtectTarget {
    pub base_url: Url,
    pub token_url: Url,
    pub instance_id: String,
    pub api_key: Sensitive,
    pub secret: String,
}

/// Everything the KMIP probe needs.
#[derive(Debug, Clone)]
pub struct KmipTarget {
    /// Host as written (IPv6 literals keep their brackets).
    pub host: String,
    pub port: u16,
    pub server_name: Option<String>,
    pub ca_pem: Vec<u8>,
    pub client: ClientPair,
}

/// What to probe.
#[derive(Debug, Clone)]
pub enum ProbeTarget {
    Vault(VaultTarget),
    KeyProtect(KeyProtectTarget),
    Kmip(KmipTarget),
    Azure,
}

impl ProbeTarget {
    pub fn provider(&self) -> Provider {
        match self {
            ProbeTarget::Vault(_) => Provider::Vault,
            ProbeTarget::KeyProtect(_) => Provider::IbmKeyProtect,
            ProbeTarget::Kmip(_) => Provider::Kmip,
            ProbeTarget::Azure => Provider::AzureKv,
        }
    }

    /// A digest of everything that decides the probe's answer, secrets included (as a hash only),
    /// for caching: the same key means the same question.
    pub fn cache_key(&self) -> [u8; 32] {
        let mut d = Digest::default();
        match self {
            ProbeTarget::Vault(v) => {
                d.add("vault").add(v.addr.as_str()).add(&format!("{:?}", v.namespace)).add(&v.backend_path);
                d.add(&format!("{:?}", v.backend)).add(&format!("{:?}{}", v.server_name, v.skip_verify));
                match &v.auth {
                    VaultAuth::Token { token, secret } => d.add("token").add(&token.0).add(secret),
                    VaultAuth::Kubernetes => d.add("kubernetes"),
                };
                d.bytes(v.ca_pem.as_deref().unwrap_or_default());
                if let Some(p) = &v.client {
                    d.bytes(&p.cert_pem).bytes(&p.key_pem);
                }
            }
            ProbeTarget::KeyProtect(k) => {
                d.add("ibm").add(k.base_url.as_str()).add(k.token_url.as_str()).add(&k.instance_id);
                d.add(&k.api_key.0).add(&k.secret);
            }
            ProbeTarget::Kmip(k) => {
                d.add("kmip").add(&k.host).add(&k.port.to_string()).add(&format!("{:?}", k.server_name));
                d.bytes(&k.ca_pem).bytes(&k.client.cert_pem).bytes(&k.client.key_pem);
            }
            ProbeTarget::Azure => {
                d.add("azure");
            }
        }
        d.finish()
    }
}

/// Length-prefixed SHA-256, so that field boundaries cannot be shifted to collide.
#[derive(Default)]
struct Digest(Vec<u8>);

impl Digest {
    fn bytes(&mut self, b: &[u8]) -> &mut Self {
        self.0.extend_from_slice(&(b.len() as u64).to_be_bytes());
        self.0.extend_from_slice(b);
        self
    }

    fn add(&mut self, s: &str) -> &mut Self {
        self.bytes(s.as_bytes())
    }

    fn finish(&self) -> [u8; 32] {
        let h = ring::digest::digest(&ring::digest::SHA256, &self.0);
        let mut out = [0u8; 32];
        out.copy_from_slice(h.as_ref());
        out
    }
}

fn secret_value(secrets: &SecretSnapshot, name: &str, key: &str) -> Option<Vec<u8>> {
    match secrets.lookup(name) {
        Lookup::Found(data) => data.non_empty(key).map(<[u8]>::to_vec),
        _ => None,
    }
}

fn trimmed(bytes: Vec<u8>) -> Option<String> {
    String::from_utf8(bytes).ok().map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
}

/// What the probe would check for this cluster, or `None` when there is nothing to probe (no KMS,
/// opted out, or a configuration the static rules already reject).
pub fn target(cluster: &Cluster, secrets: &SecretSnapshot) -> Option<ProbeTarget> {
    let kms = &cluster.kms;
    if !kms.is_enabled() || cluster.annotations.get(SKIP_ANNOTATION).map(String::as_str) == Some("skip") {
        return None;
    }
    match Provider::parse(kms.param(config::KMS_PROVIDER)?)? {
        Provider::Vault => {
            let addr = Url::parse(kms.param("VAULT_ADDR")?).ok()?;
            let auth = match kms.token_secret() {
                Some(secret) => VaultAuth::Token {
                    token: Sensitive(trimmed(secret_value(secrets, secret, "token")?)?),
                    secret: secret.to_string(),
                },
                None if kms.param("VAULT_AUTH_METHOD") == Some("kubernetes") => VaultAuth::Kubernetes,
                None => return None,
            };
            let tls = |key: &str, field: &str| kms.param(key).map(|name| secret_value(secrets, name, field));
            let ca_pem = match tls("VAULT_CACERT", "cert") {
                Some(v) => Some(v?),
                None => None,
            };
            let client = match (tls("VAULT_CLIENT_CERT", "cert"), tls("VAULT_CLIENT_KEY", "key")) {
                (Some(cert), Some(key)) => Some(ClientPair { cert_pem: cert?, key_pem: key? }),
                (None, None) => None,
                _ => return None,
            };
            Some(ProbeTarget::Vault(VaultTarget {
                addr,
                auth,
                namespace: kms.param("VAULT_NAMESPACE").map(|n| n.trim_matches('/').to_string()),
                backend_path: kms
                    .param("VAULT_BACKEND_PATH")
                    .unwrap_or(config::DEFAULT_VAULT_BACKEND_PATH)
                    .trim_matches('/')
                    .to_string(),
                backend: kms.param("VAULT_BACKEND").map(str::to_string),
                ca_pem,
                client,
                server_name: kms.param("VAULT_TLS_SERVER_NAME").map(str::to_string),
                skip_verify: kms.param("VAULT_SKIP_VERIFY").and_then(crate::names::parse_go_bool).unwrap_or(false),
            }))
        }
        Provider::IbmKeyProtect => {
            let secret = kms.token_secret()?;
            let url = |key: &str, default: &str| Url::parse(kms.param(key).unwrap_or(default)).ok();
            Some(ProbeTarget::KeyProtect(KeyProtectTarget {
                base_url: url("IBM_KP_BASE_URL", config::DEFAULT_IBM_KP_BASE_URL)?,
                token_url: url("IBM_KP_TOKEN_URL", config::DEFAULT_IBM_KP_TOKEN_URL)?,
                instance_id: kms.param("IBM_KP_SERVICE_INSTANCE_ID")?.to_string(),
                api_key: Sensitive(trimmed(secret_value(secrets, secret, "IBM_KP_SERVICE_API_KEY")?)?),
                secret: secret.to_string(),
            }))
        }
        Provider::Kmip => {
            let secret = kms.token_secret()?;
            let endpoint = config::parse_kmip_endpoint(kms.param("KMIP_ENDPOINT")?).ok()?;
            let pem = |key: &str| trimmed(secret_value(secrets, secret, key)?).map(String::into_bytes);
            Some(ProbeTarget::Kmip(KmipTarget {
                host: endpoint.host.to_string(),
                port: endpoint.port?,
                server_name: kms.param("TLS_SERVER_NAME").map(str::to_string),
                ca_pem: pem("CA_CERT")?,
                client: ClientPair { cert_pem: pem("CLIENT_CERT")?, key_pem: pem("CLIENT_KEY")? },
            }))
        }
        Provider::AzureKv => Some(ProbeTarget::Azure),
    }
}

/// How bad a probe finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// Works badly: always a warning.
    Warn,
    /// Cannot work: a warning under `--probe=warn`, a denial under `--probe=enforce`.
    Fail,
}

/// One thing the probe found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeFinding {
    pub severity: Severity,
    pub field: String,
    pub message: String,
}

impl ProbeFinding {
    pub fn fail(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self { severity: Severity::Fail, field: field.into(), message: message.into() }
    }

    pub fn warn(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self { severity: Severity::Warn, field: field.into(), message: message.into() }
    }
}

/// The probe's overall result, for metrics and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeResult {
    Ok,
    Warning,
    Failed,
    Timeout,
    NotProbed,
}

impl ProbeResult {
    pub fn as_str(self) -> &'static str {
        match self {
            ProbeResult::Ok => "ok",
            ProbeResult::Warning => "warning",
            ProbeResult::Failed => "failed",
            ProbeResult::Timeout => "timeout",
            ProbeResult::NotProbed => "not_probed",
        }
    }
}

/// What one probe found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeReport {
    pub provider: Provider,
    pub result: ProbeResult,
    pub findings: Vec<ProbeFinding>,
}

/// Settings shared by every probe.
#[derive(Debug, Clone)]
pub struct ProbeOptions {
    /// The whole probe ends within this time.
    pub budget: Duration,
    /// Each connection attempt ends within this time (and within the budget).
    pub connect_timeout: Duration,
    pub policy: NetPolicy,
    /// CA certificates trusted in addition to the public roots where the cluster names no CA.
    pub extra_roots: Vec<CertificateDer<'static>>,
}

impl Default for ProbeOptions {
    fn default() -> Self {
        Self {
            budget: Duration::from_secs(3),
            connect_timeout: Duration::from_secs(2),
            policy: NetPolicy::default(),
            extra_roots: Vec::new(),
        }
    }
}

/// Probes the target within the budget. Never hangs: at the end of the budget the probe stops
/// and says the KMS did not answer in time.
pub async fn run(target: &ProbeTarget, options: &ProbeOptions) -> ProbeReport {
    let provider = target.provider();
    let work = async {
        match target {
            ProbeTarget::Vault(v) => crate::providers::vault::probe(v, options).await,
            ProbeTarget::KeyProtect(k) => crate::providers::keyprotect::probe(k, options).await,
            ProbeTarget::Kmip(k) => crate::providers::kmip::probe(k, options).await,
            ProbeTarget::Azure => vec![ProbeFinding::warn(
                field::detail("AZURE_VAULT_URL"),
                "live probe: Azure Key Vault is not probed; the configuration was checked offline only.",
            )],
        }
    };
    match tokio::time::timeout(options.budget, work).await {
        Ok(findings) => {
            let result = if matches!(target, ProbeTarget::Azure) {
                ProbeResult::NotProbed
            } else if findings.iter().any(|f| f.severity == Severity::Fail) {
                ProbeResult::Failed
            } else if findings.is_empty() {
                ProbeResult::Ok
            } else {
                ProbeResult::Warning
            };
            ProbeReport { provider, result, findings }
        }
        Err(_) => timed_out(provider, options.budget),
    }
}

/// The report for a probe that ran out of its budget.
pub fn timed_out(provider: Provider, budget: Duration) -> ProbeReport {
    ProbeReport {
        provider,
        result: ProbeResult::Timeout,
        findings: vec![ProbeFinding::fail(
            address_field(provider),
            format!(
                "live probe: the {} KMS did not answer within {:.1} s (--probe-timeout); it may be down or unreachable from the webhook.",
                provider_name(provider),
                budget.as_secs_f64()
            ),
        )],
    }
}

/// The field that holds the KMS address.
pub fn address_field(provider: Provider) -> String {
    field::detail(match provider {
        Provider::Vault => "VAULT_ADDR",
        Provider::IbmKeyProtect => "IBM_KP_BASE_URL",
        Provider::Kmip => "KMIP_ENDPOINT",
        Provider::AzureKv => "AZURE_VAULT_URL",
    })
}

pub fn provider_name(provider: Provider) -> &'static str {
    match provider {
        Provider::Vault => "Vault",
        Provider::IbmKeyProtect => "IBM Key Protect",
        Provider::Kmip => "KMIP",
        Provider::AzureKv => "Azure Key Vault",
    }
}
