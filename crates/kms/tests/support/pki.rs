//! Test PKI, made at run time (no key is ever committed): an ECDSA P-256 CA and leaf
//! certificates signed by it, with chosen validity windows. Shared by the tests and by the
//! example-Secrets generator.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure should stop the test
#![allow(dead_code)] // shared by several test binaries and an example, each using part of it

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
};
use time::{Duration, OffsetDateTime};

/// A PEM certificate and its PEM private key.
pub struct Leaf {
    pub cert_pem: String,
    pub key_pem: String,
}

/// A CA that signs leaves.
pub struct Pki {
    issuer: Issuer<'static, KeyPair>,
    pub ca_pem: String,
}

impl Pki {
    pub fn new(name: &str) -> Self {
        Self::with_validity(name, -1, 3650)
    }

    /// A CA valid from `from_days` to `to_days` relative to now.
    pub fn with_validity(name: &str, from_days: i64, to_days: i64) -> Self {
        let key = KeyPair::generate().expect("CA key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        window(&mut params, from_days, to_days);
        let ca_pem = params.self_signed(&key).expect("CA cert").pem();
        Self { issuer: Issuer::new(params, key), ca_pem }
    }

    /// A client certificate (EKU clientAuth) valid from `from_days` to `to_days` relative to now.
    pub fn client(&self, name: &str, from_days: i64, to_days: i64) -> Leaf {
        let key = KeyPair::generate().expect("leaf key");
        let mut params = CertificateParams::new(vec![name.to_string()]).expect("leaf params");
        params.distinguished_name.push(DnType::CommonName, name);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        window(&mut params, from_days, to_days);
        let cert = params.signed_by(&key, &self.issuer).expect("leaf cert");
        Leaf { cert_pem: cert.pem(), key_pem: key.serialize_pem() }
    }

    /// A server certificate (EKU serverAuth) for the given DNS names and IP addresses.
    pub fn server(&self, sans: &[&str]) -> Leaf {
        let key = KeyPair::generate().expect("leaf key");
        let mut params =
            CertificateParams::new(sans.iter().map(|s| (*s).to_string()).collect::<Vec<_>>()).expect("leaf params");
        params.distinguished_name.push(DnType::CommonName, sans.first().copied().unwrap_or("server"));
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        window(&mut params, -1, 30);
        let cert = params.signed_by(&key, &self.issuer).expect("leaf cert");
        Leaf { cert_pem: cert.pem(), key_pem: key.serialize_pem() }
    }

    /// A client certificate valid for a year.
    pub fn valid_client(&self, name: &str) -> Leaf {
        self.client(name, -1, 365)
    }
}

fn window(params: &mut CertificateParams, from_days: i64, to_days: i64) {
    let now = OffsetDateTime::now_utc();
    params.not_before = now + Duration::days(from_days);
    params.not_after = now + Duration::days(to_days);
}
