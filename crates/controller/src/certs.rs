//! Self-managed webhook certificates: the controller keeps one CA in a Secret, issues the serving
//! certificate into another, renews it after two thirds of its life, and writes the CA bundle
//! into both webhook configurations. During a CA rotation the bundle holds the old and the new CA,
//! so connections verify whichever certificate a webhook pod still serves. Every Secret write
//! carries the resourceVersion it read: when two replicas race, one wins and the other re-reads.

use std::collections::BTreeMap;
use std::future::Future;

use rook_kms::pem;
use rook_kms::pki::{self, Pair};

use crate::api::ApiError;

/// The server-side-apply field manager that owns `caBundle`.
pub const FIELD_MANAGER: &str = "rook-kms-controller";

/// Which webhook configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookKind {
    Validating,
    Mutating,
}

/// The webhooks of one configuration: name and current caBundle.
pub type Bundles = Vec<(String, Vec<u8>)>;

/// A Secret's data and the version it was read at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSecret {
    pub data: BTreeMap<String, Vec<u8>>,
    pub resource_version: Option<String>,
}

pub trait CertApi: Send + Sync {
    fn get_secret(
        &self,
        namespace: &str,
        name: &str,
    ) -> impl Future<Output = Result<Option<StoredSecret>, ApiError>> + Send;
    /// Creates (`resource_version` None) or replaces the Secret; `Ok(false)` when it already
    /// exists or changed since it was read.
    fn put_secret(
        &self,
        namespace: &str,
        name: &str,
        type_: &str,
        data: BTreeMap<String, Vec<u8>>,
        resource_version: Option<&str>,
    ) -> impl Future<Output = Result<bool, ApiError>> + Send;
    /// The webhook names and their caBundle; `None` when the configuration does not exist.
    fn ca_bundles(
        &self,
        kind: WebhookKind,
        name: &str,
    ) -> impl Future<Output = Result<Option<Bundles>, ApiError>> + Send;
    /// Writes `bundle` into every listed webhook of the configuration (server-side apply).
    fn apply_ca_bundle(
        &self,
        kind: WebhookKind,
        name: &str,
        webhooks: &[String],
        bundle: &[u8],
    ) -> impl Future<Output = Result<(), ApiError>> + Send;
}

#[derive(Debug, Clone)]
pub struct CertSettings {
    pub namespace: String,
    pub service: String,
    pub ca_secret: String,
    pub tls_secret: String,
    pub validating: String,
    pub mutating: String,
    pub leaf_days: i64,
    pub ca_days: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertError {
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error("cannot issue a certificate: {0}")]
    Issue(String),
    #[error("another replica keeps changing Secret {0}; will retry")]
    Contended(String),
}

/// What one pass did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CertReport {
    pub ca_created: bool,
    pub ca_rotated: bool,
    /// Why the serving certificate was (re)issued, if it was.
    pub leaf_issued: Option<&'static str>,
    /// Webhook configurations whose caBundle was written.
    pub bundles_written: Vec<String>,
}

const CA_CERT: &str = "ca.crt";
const CA_KEY: &str = "ca.key";
const PREVIOUS_CA: &str = "previous-ca.crt";

fn first_cert(pem_bytes: &[u8]) -> Option<pem::Certificate> {
    pem::certificates(pem_bytes).ok().and_then(|mut c| (!c.is_empty()).then(|| c.remove(0)))
}

fn unix(now: time::OffsetDateTime) -> i64 {
    now.unix_timestamp()
}

/// Whether a certificate has used up two thirds of its lifetime (or is not valid now).
fn due(cert: &pem::Certificate, now: i64) -> bool {
    let life = cert.not_after - cert.not_before;
    now < cert.not_before || now >= cert.not_before + life * 2 / 3
}

fn issuer_matches(leaf: &pem::Certificate, ca: &pem::Certificate) -> bool {
    let (Ok((_, l)), Ok((_, c))) =
        (x509_parser::parse_x509_certificate(&leaf.der), x509_parser::parse_x509_certificate(&ca.der))
    else {
        return false;
    };
    l.issuer() == c.subject() && l.verify_signature(Some(c.public_key())).is_ok()
}

/// The CA pair (created or rotated as needed) and the bundle to publish.
async fn ensure_ca<A: CertApi>(
    api: &A,
    s: &CertSettings,
    now: time::OffsetDateTime,
    report: &mut CertReport,
) -> Result<(Pair, Vec<u8>), CertError> {
    for _ in 0..3 {
        let stored = api.get_secret(&s.namespace, &s.ca_secret).await?;
        let current = stored.as_ref().and_then(|st| {
            let cert = st.data.get(CA_CERT)?;
            let key = st.data.get(CA_KEY)?;
            let parsed = first_cert(cert)?;
            Some((
                Pair { cert_pem: String::from_utf8(cert.clone()).ok()?, key_pem: String::from_utf8(key.clone()).ok()? },
                parsed,
            ))
        });
        let previous = stored
            .as_ref()
            .and_then(|st| st.data.get(PREVIOUS_CA).cloned())
            .filter(|p| first_cert(p).is_some_and(|c| c.not_after > unix(now)));
        match current {
            Some((pair, cert)) if !due(&cert, unix(now)) => {
                let mut bundle = pair.cert_pem.clone().into_bytes();
                if let Some(p) = previous {
                    bundle.extend_from_slice(&p);
                }
                return Ok((pair, bundle));
            }
            current => {
                let fresh =
                    pki::new_ca("rook-kms-webhook CA", now, s.ca_days).map_err(|e| CertError::Issue(e.to_string()))?;
                let mut data = BTreeMap::from([
                    (CA_CERT.to_string(), fresh.cert_pem.clone().into_bytes()),
                    (CA_KEY.to_string(), fresh.key_pem.clone().into_bytes()),
                ]);
                // Rotation: the old CA stays in the bundle until it expires.
                if let Some((old, cert)) = &current
                    && cert.not_after > unix(now)
                {
                    data.insert(PREVIOUS_CA.to_string(), old.cert_pem.clone().into_bytes());
                }
                let rv = stored.as_ref().and_then(|st| st.resource_version.as_deref());
                if api.put_secret(&s.namespace, &s.ca_secret, "Opaque", data, rv).await? {
                    if current.is_some() {
                        report.ca_rotated = true;
                    } else {
                        report.ca_created = true;
                    }
                }
                // Written or lost the race: read again and use what is there.
            }
        }
    }
    Err(CertError::Contended(s.ca_secret.clone()))
}

/// One pass: CA, then the bundles (before any leaf from a new CA is served), then the leaf.
pub async fn reconcile<A: CertApi>(
    api: &A,
    s: &CertSettings,
    now: time::OffsetDateTime,
) -> Result<CertReport, CertError> {
    let mut report = CertReport::default();
    let (ca, bundle) = ensure_ca(api, s, now, &mut report).await?;

    for (kind, name) in [(WebhookKind::Validating, &s.validating), (WebhookKind::Mutating, &s.mutating)] {
        // A configuration that does not exist (not installed yet, or being uninstalled) is left alone.
        let Some(webhooks) = api.ca_bundles(kind, name).await? else { continue };
        if webhooks.iter().any(|(_, b)| *b != bundle) {
            let names: Vec<String> = webhooks.into_iter().map(|(n, _)| n).collect();
            api.apply_ca_bundle(kind, name, &names, &bundle).await?;
            report.bundles_written.push(name.clone());
        }
    }

    let ca_cert = first_cert(ca.cert_pem.as_bytes())
        .ok_or_else(|| CertError::Issue("the CA certificate does not parse".into()))?;
    let names = pki::service_names(&s.service, &s.namespace);
    let stored = api.get_secret(&s.namespace, &s.tls_secret).await?;
    let reason = match &stored {
        None => Some("missing"),
        Some(st) => match (st.data.get("tls.crt").and_then(|c| first_cert(c)), st.data.get("tls.key")) {
            (Some(leaf), Some(key)) => {
                if pem::check_key(&leaf, key).is_err() {
                    Some("key does not match")
                } else if !issuer_matches(&leaf, &ca_cert) {
                    Some("not signed by the current CA")
                } else if pki::certificate_names(&leaf.der) != names {
                    Some("names changed")
                } else if due(&leaf, unix(now)) {
                    Some("renewal due")
                } else if st.data.get("ca.crt").map(Vec::as_slice) != Some(bundle.as_slice()) {
                    Some("CA bundle changed")
                } else {
                    None
                }
            }
            _ => Some("unreadable"),
        },
    };
    if let Some(why) = reason {
        let leaf = pki::issue_leaf(&ca, &names, now, s.leaf_days).map_err(|e| CertError::Issue(e.to_string()))?;
        let data = BTreeMap::from([
            ("tls.crt".to_string(), leaf.cert_pem.into_bytes()),
            ("tls.key".to_string(), leaf.key_pem.into_bytes()),
            ("ca.crt".to_string(), bundle),
        ]);
        let rv = stored.as_ref().and_then(|st| st.resource_version.as_deref());
        if api.put_secret(&s.namespace, &s.tls_secret, "kubernetes.io/tls", data, rv).await? {
            report.leaf_issued = Some(why);
        }
    }
    Ok(report)
}
