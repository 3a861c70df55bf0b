//! PEM checks shared by Vault, KMIP and Azure: CA bundles, client certificates and their keys.

use crate::pem::{self, Certificate, Validity};
use crate::verdict::Verdict;

/// A certificate expiring sooner than this is worth a warning.
const EXPIRY_WARNING_DAYS: i64 = 30;

/// Where PEM material came from, for messages: `Secret "vault-ca" key cert`.
pub(super) struct Source<'a> {
    pub field: &'a str,
    pub secret: &'a str,
    pub key: &'a str,
}

impl Source<'_> {
    fn name(&self) -> String {
        format!("Secret {} key {}", crate::field::shown(self.secret), self.key)
    }
}

/// A CA bundle: at least one certificate, at least one currently valid.
pub(super) fn check_ca(out: &mut Verdict, src: &Source<'_>, pem_bytes: &[u8], now: i64) {
    let certs = match pem::certificates(pem_bytes) {
        Ok(c) => c,
        Err(e) => {
            out.deny(
                src.field,
                format!(
                    "{} {e}; it must hold the PEM CA certificate that signed the server's certificate.",
                    src.name()
                ),
            );
            return;
        }
    };
    let valid: Vec<&Certificate> = certs.iter().filter(|c| matches!(c.validity(now), Validity::Valid { .. })).collect();
    match valid.iter().map(|c| (c, c.validity(now))).min_by_key(|(c, _)| c.not_after) {
        None => validity_problem(out, src, &certs[0], now),
        Some((c, Validity::Valid { days_left })) if days_left < EXPIRY_WARNING_DAYS => out.warn(
            src.field,
            format!(
                "{}: CA certificate {:?} expires in {days_left} days; renew it before then.",
                src.name(),
                c.subject
            ),
        ),
        Some(_) => {}
    }
}

/// A client certificate and its private key: both parse, the key is unencrypted and matches, and
/// the certificate is valid now. `key_src` may name the same Secret key (Azure's bundle).
pub(super) fn check_client(
    out: &mut Verdict,
    cert_src: &Source<'_>,
    cert_pem: &[u8],
    key_src: &Source<'_>,
    key_pem: &[u8],
    now: i64,
) {
    let cert = match pem::certificates(cert_pem) {
        Ok(mut certs) => certs.swap_remove(0),
        Err(e) => {
            out.deny(cert_src.field, format!("{} {e}; it must hold the PEM client certificate.", cert_src.name()));
            return;
        }
    };
    match pem::check_key(&cert, key_pem) {
        Ok(()) => {}
        Err(pem::PemError::KeyMismatch) => out.deny(
            key_src.field,
            format!(
                "the private key in {} does not belong to the certificate in {}; store the matching pair.",
                key_src.name(),
                cert_src.name()
            ),
        ),
        Err(e) => out.deny(key_src.field, format!("{} {e}.", key_src.name())),
    }
    match cert.validity(now) {
        Validity::Valid { days_left } if days_left < EXPIRY_WARNING_DAYS => out.warn(
            cert_src.field,
            format!(
                "{}: client certificate {:?} expires in {days_left} days; renew it before then.",
                cert_src.name(),
                cert.subject
            ),
        ),
        Validity::Valid { .. } => {}
        _ => validity_problem(out, cert_src, &cert, now),
    }
}

fn validity_problem(out: &mut Verdict, src: &Source<'_>, cert: &Certificate, now: i64) {
    let what = match cert.validity(now) {
        Validity::Expired => "has expired",
        Validity::NotYetValid => "is not valid yet",
        Validity::Valid { .. } => return,
    };
    out.deny(
        src.field,
        format!(
            "{}: certificate {:?} {what}; TLS to the KMS would fail. Issue a new certificate.",
            src.name(),
            cert.subject
        ),
    );
}
