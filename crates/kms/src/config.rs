//! The KMS providers Rook knows and the `connectionDetails` keys each one reads.

use std::fmt;

/// `KMS_PROVIDER`, matched exactly as Rook does (case-sensitive).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    Vault,
    IbmKeyProtect,
    Kmip,
    AzureKv,
}

impl Provider {
    pub const ALL: [Provider; 4] = [Provider::Vault, Provider::IbmKeyProtect, Provider::Kmip, Provider::AzureKv];

    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == value)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Vault => "vault",
            Provider::IbmKeyProtect => "ibmkeyprotect",
            Provider::Kmip => "kmip",
            Provider::AzureKv => "azure-kv",
        }
    }

    /// What a user probably meant by an unsupported value.
    pub fn suggest(value: &str) -> Option<Self> {
        let lower = value.trim().to_ascii_lowercase();
        let alias = match lower.as_str() {
            "hashicorp-vault" | "hashicorp" | "vaulttokens" | "vault-tokens" | "openbao" => Some(Provider::Vault),
            "ibm-kp" | "ibm" | "ibmkp" | "keyprotect" | "key-protect" | "ibm-key-protect" | "hpcs" => {
                Some(Provider::IbmKeyProtect)
            }
            "azure" | "azurekv" | "azure_kv" | "azure-keyvault" | "azure-key-vault" | "akv" => Some(Provider::AzureKv),
            _ => None,
        };
        alias
            .or_else(|| Provider::parse(&lower))
            .or_else(|| crate::names::suggest(&lower, Self::ALL.map(Provider::as_str)).and_then(Provider::parse))
    }

    /// Every key Rook (or the client library it hands the map to) reads for this provider.
    pub fn known_keys(self) -> &'static [&'static str] {
        match self {
            Provider::Vault => VAULT_KEYS,
            Provider::IbmKeyProtect => IBM_KEYS,
            Provider::Kmip => KMIP_KEYS,
            Provider::AzureKv => AZURE_KEYS,
        }
    }

    /// Whether Rook can update keys in this store (key rotation).
    pub fn supports_key_rotation(self) -> bool {
        matches!(self, Provider::Vault)
    }
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

pub const KMS_PROVIDER: &str = "KMS_PROVIDER";

const VAULT_KEYS: &[&str] = &[
    KMS_PROVIDER,
    "VAULT_ADDR",
    "VAULT_AUTH_METHOD",
    "VAULT_AUTH_KUBERNETES_ROLE",
    "VAULT_AUTH_MOUNT_PATH",
    "VAULT_AUTH_KUBERNETES_TOKEN_PATH",
    "VAULT_BACKEND_PATH",
    "VAULT_BACKEND",
    "VAULT_SECRET_ENGINE",
    "VAULT_NAMESPACE",
    "VAULT_CACERT",
    "VAULT_CAPATH",
    "VAULT_CLIENT_CERT",
    "VAULT_CLIENT_KEY",
    "VAULT_TLS_SERVER_NAME",
    "VAULT_SKIP_VERIFY",
    "KMS_SERVICE_NAME",
];

/// Vault client knobs read from the environment by the HashiCorp API client: they take effect in
/// OSD and key-rotation pods (which get connectionDetails as env vars) but not in the operator.
pub const VAULT_ENV_ONLY_KEYS: &[&str] = &[
    "VAULT_CLIENT_TIMEOUT",
    "VAULT_MAX_RETRIES",
    "VAULT_RATE_LIMIT",
    "VAULT_SRV_LOOKUP",
    "VAULT_WRAP_TTL",
    "VAULT_HTTP_PROXY",
    "VAULT_PROXY_ADDR",
    "VAULT_DISABLE_REDIRECTS",
];

const IBM_KEYS: &[&str] = &[
    KMS_PROVIDER,
    "IBM_KP_SERVICE_INSTANCE_ID",
    "IBM_KP_BASE_URL",
    "IBM_KP_TOKEN_URL",
    "IBM_BASE_URL",
    "IBM_TOKEN_URL",
    "KMS_SERVICE_NAME",
];

const KMIP_KEYS: &[&str] =
    &[KMS_PROVIDER, "KMIP_ENDPOINT", "TLS_SERVER_NAME", "READ_TIMEOUT", "WRITE_TIMEOUT", "KMS_SERVICE_NAME"];

const AZURE_KEYS: &[&str] = &[
    KMS_PROVIDER,
    "AZURE_VAULT_URL",
    "AZURE_TENANT_ID",
    "AZURE_CLIENT_ID",
    "AZURE_CERT_SECRET_NAME",
    "AZURE_ENVIRONMENT",
    "KMS_SERVICE_NAME",
];

/// Keys that carry secret material and must never be written into the CephCluster.
pub const INLINE_SECRET_KEYS: &[(&str, &str)] = &[
    ("VAULT_TOKEN", "put the token in the Secret named by tokenSecretName, under key token"),
    ("VAULT_APPROLE_SECRET_ID", "Rook does not support AppRole for CephClusters; use token or kubernetes auth"),
    (
        "IBM_KP_SERVICE_API_KEY",
        "put the API key in the Secret named by tokenSecretName, under key IBM_KP_SERVICE_API_KEY",
    ),
    ("CA_CERT", "put it in the Secret named by tokenSecretName, under key CA_CERT"),
    (
        "CLIENT_CERT",
        "put it in the Secret named by tokenSecretName (KMIP) or AZURE_CERT_SECRET_NAME (Azure), under key CLIENT_CERT",
    ),
    ("CLIENT_KEY", "put it in the Secret named by tokenSecretName, under key CLIENT_KEY"),
    ("AZURE_CLIENT_SECRET", "use a client certificate in the Secret named by AZURE_CERT_SECRET_NAME instead"),
];

/// Keys whose change moves where Rook stores and looks up OSD keys.
pub const LOCATION_KEYS: &[&str] = &[
    KMS_PROVIDER,
    "VAULT_ADDR",
    "VAULT_BACKEND_PATH",
    "VAULT_NAMESPACE",
    "KMIP_ENDPOINT",
    "IBM_KP_SERVICE_INSTANCE_ID",
    "AZURE_VAULT_URL",
];

/// Rook's and the client libraries' implicit defaults, made explicit by mutation.
pub const DEFAULT_VAULT_BACKEND_PATH: &str = "secret/";
pub const DEFAULT_IBM_KP_BASE_URL: &str = "https://us-south.kms.cloud.ibm.com";
pub const DEFAULT_IBM_KP_TOKEN_URL: &str = "https://iam.cloud.ibm.com/oidc/token";
pub const DEFAULT_KMIP_TIMEOUT: &str = "10";
pub const DEFAULT_KMIP_PORT: u16 = 5696;
pub const DEFAULT_KEY_ROTATION_SCHEDULE: &str = "@weekly";

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case("Vault", Some(Provider::Vault))]
    #[case("VAULT", Some(Provider::Vault))]
    #[case("ibm-kp", Some(Provider::IbmKeyProtect))]
    #[case("azure", Some(Provider::AzureKv))]
    #[case("kmpi", Some(Provider::Kmip))]
    #[case("aws-kms", None)]
    fn suggestions(#[case] given: &str, #[case] want: Option<Provider>) {
        assert_eq!(Provider::parse(given), None);
        assert_eq!(Provider::suggest(given), want);
    }
}

/// A `KMIP_ENDPOINT` split into host and port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KmipEndpoint<'a> {
    /// The host as written (IPv6 literals keep their brackets).
    pub host: &'a str,
    pub port: Option<u16>,
}

/// Reads `KMIP_ENDPOINT` as Rook dials it (`tls.Dial("tcp", endpoint)`): `host:port`, no scheme,
/// no path. A missing port is returned as `None` (Rook would fail to dial).
pub fn parse_kmip_endpoint(s: &str) -> Result<KmipEndpoint<'_>, String> {
    if s.contains("://") {
        return Err("has a URL scheme; Rook dials host:port directly (e.g. kmip.example.com:5696)".into());
    }
    if s.contains('/') {
        return Err("has a path; KMIP_ENDPOINT is host:port only".into());
    }
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (inner, after) = rest.split_once(']').ok_or("has an unclosed '[' around an IPv6 address")?;
        if inner.parse::<std::net::Ipv6Addr>().is_err() {
            return Err("has brackets around something that is not an IPv6 address".into());
        }
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':').ok_or("has text after ']' that is not :port")?),
        };
        (&s[..inner.len() + 2], port)
    } else {
        match s.matches(':').count() {
            0 => (s, None),
            1 => s.split_once(':').map(|(h, p)| (h, Some(p))).ok_or("cannot be split into host and port")?,
            _ => {
                return Err("looks like an IPv6 address without brackets; write [address]:port".into());
            }
        }
    };
    if !(host.starts_with('[') || crate::names::is_server_name(host)) {
        return Err("has no valid host name or IP address".into());
    }
    let port = match port {
        None => None,
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n > 0 && p.bytes().all(|b| b.is_ascii_digit()) => Some(n),
            _ => {
                return Err(format!("has port {}, which is not a number from 1 to 65535", crate::field::shown(p)));
            }
        },
    };
    Ok(KmipEndpoint { host, port })
}

#[cfg(test)]
mod endpoint_tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case("kmip.example.com:5696", "kmip.example.com", Some(5696))]
    #[case("10.0.0.5", "10.0.0.5", None)]
    #[case("[fd00::1]:5696", "[fd00::1]", Some(5696))]
    #[case("[fd00::1]", "[fd00::1]", None)]
    fn valid(#[case] s: &str, #[case] host: &str, #[case] port: Option<u16>) {
        assert_eq!(parse_kmip_endpoint(s), Ok(KmipEndpoint { host, port }));
    }

    #[rstest]
    #[case("https://kmip:5696", "scheme")]
    #[case("kmip:5696/x", "path")]
    #[case("kmip:0", "port")]
    #[case("kmip:70000", "port")]
    #[case("kmip:", "port")]
    #[case("fd00::1", "brackets")]
    #[case("bad_host:5696", "host")]
    fn invalid(#[case] s: &str, #[case] why: &str) {
        let err = parse_kmip_endpoint(s).unwrap_err();
        assert!(err.contains(why), "{s}: {err}");
    }
}
