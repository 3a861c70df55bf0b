//! PEM certificates and keys: parse, check that a key matches its certificate, check validity.
//!
//! PEM is read through `rustls-pki-types`' `PemObject` (rustls-pemfile is archived), X.509 through
//! `x509-parser`, and key/certificate matching through rustls' ring provider, which compares the
//! SubjectPublicKeyInfo of the key with the certificate's.

use rustls::sign::CertifiedKey;

use crate::memo::{Memo, digest};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// One parsed certificate.
#[derive(Debug, Clone)]
pub struct Certificate {
    pub der: CertificateDer<'static>,
    pub subject: String,
    /// Unix seconds.
    pub not_before: i64,
    /// Unix seconds.
    pub not_after: i64,
}

/// Why PEM material is unusable. Messages describe the material, never reproduce it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PemError {
    #[error("holds no PEM CERTIFICATE block")]
    NoCertificate,
    #[error("holds a PEM block that cannot be decoded ({0})")]
    BadPem(String),
    #[error("certificate #{index} is not valid X.509 ({reason})")]
    BadCertificate { index: usize, reason: String },
    #[error("holds no PEM PRIVATE KEY block")]
    NoPrivateKey,
    #[error("holds an encrypted private key; Rook cannot use a passphrase, store the key unencrypted")]
    EncryptedKey,
    #[error("holds a private key of a type that cannot be used for TLS ({0})")]
    UnsupportedKey(String),
    #[error("the private key does not belong to the certificate")]
    KeyMismatch,
}

/// Every certificate in a PEM bundle, in order (memoized, see [`crate::memo`]).
pub fn certificates(pem: &[u8]) -> Result<Vec<Certificate>, PemError> {
    static ANSWERS: Memo<Result<Vec<Certificate>, PemError>> = Memo::new(512);
    ANSWERS.get_or_compute(digest(&[pem]), || parse_certificates(pem))
}

fn parse_certificates(pem: &[u8]) -> Result<Vec<Certificate>, PemError> {
    let mut out = Vec::new();
    for (index, item) in CertificateDer::pem_slice_iter(pem).enumerate() {
        let der = item.map_err(|e| PemError::BadPem(short(&e.to_string())))?;
        out.push(Certificate::from_der(der).map_err(|reason| PemError::BadCertificate { index: index + 1, reason })?);
    }
    if out.is_empty() { Err(PemError::NoCertificate) } else { Ok(out) }
}

/// The first private key in a PEM bundle (PKCS#8, PKCS#1 or SEC1), refusing encrypted keys.
pub fn private_key(pem: &[u8]) -> Result<PrivateKeyDer<'static>, PemError> {
    if is_encrypted_key(pem) {
        return Err(PemError::EncryptedKey);
    }
    match PrivateKeyDer::from_pem_slice(pem) {
        Ok(key) => Ok(key),
        Err(rustls_pki_types::pem::Error::NoItemsFound) => Err(PemError::NoPrivateKey),
        Err(e) => Err(PemError::BadPem(short(&e.to_string()))),
    }
}

fn is_encrypted_key(pem: &[u8]) -> bool {
    let contains = |needle: &[u8]| pem.windows(needle.len()).any(|w| w == needle);
    contains(b"BEGIN ENCRYPTED PRIVATE KEY") || contains(b"Proc-Type: 4,ENCRYPTED")
}

/// Checks that the first private key in `key_pem` is usable and belongs to `cert`.
///
/// Loading an ECDSA or RSA key validates it (for ECDSA, a scalar multiplication): far more work
/// than all the rules together, for Secrets that come back on every request, so answers are
/// memoized (see [`crate::memo`]).
pub fn check_key(cert: &Certificate, key_pem: &[u8]) -> Result<(), PemError> {
    static ANSWERS: Memo<Result<(), PemError>> = Memo::new(512);
    ANSWERS.get_or_compute(digest(&[cert.der.as_ref(), key_pem]), || check_pair(cert, private_key(key_pem)?))
}

/// Checks that `key` is the private key of `cert`.
pub fn check_pair(cert: &Certificate, key: PrivateKeyDer<'static>) -> Result<(), PemError> {
    let provider = rustls::crypto::ring::default_provider();
    let signing_key =
        provider.key_provider.load_private_key(key).map_err(|e| PemError::UnsupportedKey(short(&e.to_string())))?;
    match CertifiedKey::new(vec![cert.der.clone()], signing_key).keys_match() {
        Ok(()) => Ok(()),
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => Ok(()),
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch)) => Err(PemError::KeyMismatch),
        Err(e) => Err(PemError::UnsupportedKey(short(&e.to_string()))),
    }
}

/// Where `now` falls in a certificate's validity period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Validity {
    NotYetValid,
    Expired,
    /// Valid, expiring in this many whole days.
    Valid {
        days_left: i64,
    },
}

impl Certificate {
    /// Parses one DER certificate.
    pub fn from_der(der: CertificateDer<'static>) -> Result<Self, String> {
        let (_, cert) = x509_parser::parse_x509_certificate(der.as_ref()).map_err(|e| short(&e.to_string()))?;
        let validity = cert.validity();
        Ok(Certificate {
            subject: cert.subject().to_string(),
            not_before: validity.not_before.timestamp(),
            not_after: validity.not_after.timestamp(),
            der: der.clone(),
        })
    }

    pub fn validity(&self, now: i64) -> Validity {
        if now < self.not_before {
            Validity::NotYetValid
        } else if now > self.not_after {
            Validity::Expired
        } else {
            Validity::Valid { days_left: (self.not_after - now) / 86_400 }
        }
    }
}

/// Library error texts can be long; keep the first line, bounded.
fn short(s: &str) -> String {
    s.lines().next().unwrap_or_default().chars().take(120).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{CertificateParams, KeyPair};

    fn pair() -> (String, String) {
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(vec!["client".into()]).unwrap().self_signed(&key).unwrap();
        (cert.pem(), key.serialize_pem())
    }

    #[test]
    fn matching_pair_is_accepted() {
        let (cert, key) = pair();
        let certs = certificates(cert.as_bytes()).unwrap();
        check_pair(&certs[0], private_key(key.as_bytes()).unwrap()).unwrap();
    }

    #[test]
    fn mismatched_pair_is_refused() {
        let (cert, _) = pair();
        let (_, other_key) = pair();
        let certs = certificates(cert.as_bytes()).unwrap();
        assert_eq!(check_pair(&certs[0], private_key(other_key.as_bytes()).unwrap()), Err(PemError::KeyMismatch));
    }

    #[test]
    fn garbage_and_encrypted_keys_are_refused() {
        assert_eq!(certificates(b"hello").unwrap_err(), PemError::NoCertificate);
        assert!(matches!(
            certificates(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n").unwrap_err(),
            PemError::BadCertificate { index: 1, .. }
        ));
        // A stand-in body with an encrypted-key label (no real key in the source).
        let encrypted =
            format!("-----{} ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n", "BEGIN");
        let encrypted = encrypted.as_bytes();
        assert_eq!(private_key(encrypted).unwrap_err(), PemError::EncryptedKey);
        assert_eq!(private_key(b"no key here").unwrap_err(), PemError::NoPrivateKey);
    }

    #[test]
    fn validity_windows() {
        let (cert, _) = pair();
        let c = &certificates(cert.as_bytes()).unwrap()[0];
        assert_eq!(c.validity(c.not_before - 1), Validity::NotYetValid);
        assert_eq!(c.validity(c.not_after + 1), Validity::Expired);
        assert_eq!(c.validity(c.not_after - 3 * 86_400), Validity::Valid { days_left: 3 });
    }
}
