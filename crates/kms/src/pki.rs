//! Issuing the webhook's own certificates (ECDSA P-256, rcgen): a CA, and serving certificates
//! signed by it. Used by `rook-kms-webhook certs`, `serve --dev`, and the controller's
//! self-managed certificates.

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    SanType,
};

/// A PEM certificate and its PEM private key.
#[derive(Clone)]
pub struct Pair {
    pub cert_pem: String,
    pub key_pem: String,
}

impl std::fmt::Debug for Pair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pair(<redacted>)")
    }
}

fn window(params: &mut CertificateParams, now: time::OffsetDateTime, days: i64) {
    params.not_before = now - time::Duration::hours(1);
    params.not_after = now + time::Duration::days(days);
}

/// A CA that may sign leaves only (path length 0), valid from an hour ago for `days`.
pub fn new_ca(common_name: &str, now: time::OffsetDateTime, days: i64) -> Result<Pair, rcgen::Error> {
    let key = KeyPair::generate()?;
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.distinguished_name.push(DnType::CommonName, common_name);
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    window(&mut ca, now, days);
    let cert = ca.self_signed(&key)?;
    Ok(Pair { cert_pem: cert.pem(), key_pem: key.serialize_pem() })
}

/// A serving certificate for `names` (DNS names or IP addresses), signed by `ca`.
pub fn issue_leaf(ca: &Pair, names: &[String], now: time::OffsetDateTime, days: i64) -> Result<Pair, rcgen::Error> {
    let ca_key = KeyPair::from_pem(&ca.key_pem)?;
    let issuer = Issuer::from_ca_cert_pem(&ca.cert_pem, ca_key)?;
    let key = KeyPair::generate()?;
    let mut leaf = CertificateParams::new(Vec::<String>::new())?;
    leaf.distinguished_name.push(DnType::CommonName, names.first().map(String::as_str).unwrap_or("rook-kms-webhook"));
    leaf.subject_alt_names = names
        .iter()
        .map(|n| match n.parse::<std::net::IpAddr>() {
            Ok(ip) => Ok(SanType::IpAddress(ip)),
            Err(_) => n.clone().try_into().map(SanType::DnsName),
        })
        .collect::<Result<_, _>>()?;
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    window(&mut leaf, now, days);
    let cert = leaf.signed_by(&key, &issuer)?;
    Ok(Pair { cert_pem: cert.pem(), key_pem: key.serialize_pem() })
}

/// The DNS names a serving certificate needs for a Service (plus loopback for local runs).
pub fn service_names(service: &str, namespace: &str) -> Vec<String> {
    vec![
        service.to_string(),
        format!("{service}.{namespace}"),
        format!("{service}.{namespace}.svc"),
        format!("{service}.{namespace}.svc.cluster.local"),
        "localhost".into(),
        "127.0.0.1".into(),
        "::1".into(),
    ]
}

/// The DNS and IP names in a certificate (empty when it does not parse).
pub fn certificate_names(cert_der: &[u8]) -> Vec<String> {
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(cert_der) else { return Vec::new() };
    let Ok(Some(san)) = cert.subject_alternative_name() else { return Vec::new() };
    san.value
        .general_names
        .iter()
        .filter_map(|n| match n {
            x509_parser::extensions::GeneralName::DNSName(d) => Some((*d).to_string()),
            x509_parser::extensions::GeneralName::IPAddress(b) => match b.len() {
                4 => <[u8; 4]>::try_from(*b).ok().map(|a| std::net::IpAddr::from(a).to_string()),
                16 => <[u8; 16]>::try_from(*b).ok().map(|a| std::net::IpAddr::from(a).to_string()),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leaves_chain_to_their_ca_and_carry_the_names() {
        let now = time::OffsetDateTime::now_utc();
        let ca = new_ca("test CA", now, 3650).unwrap();
        let names = service_names("svc", "ns");
        let leaf = issue_leaf(&ca, &names, now, 90).unwrap();
        let der = crate::pem::certificates(leaf.cert_pem.as_bytes()).unwrap().remove(0).der;
        assert_eq!(certificate_names(&der), names);
        let (_, parsed) = x509_parser::parse_x509_certificate(&der).unwrap();
        let ca_der = crate::pem::certificates(ca.cert_pem.as_bytes()).unwrap().remove(0).der;
        let (_, ca_parsed) = x509_parser::parse_x509_certificate(&ca_der).unwrap();
        assert_eq!(parsed.issuer(), ca_parsed.subject());
        assert!(parsed.verify_signature(Some(ca_parsed.public_key())).is_ok());
        let pair_cert = crate::pem::certificates(leaf.cert_pem.as_bytes()).unwrap().remove(0);
        assert!(crate::pem::check_key(&pair_cert, leaf.key_pem.as_bytes()).is_ok());
    }
}
