//! `rook-kms-webhook certs`: a CA and a serving certificate for the webhook, made with rcgen
//! (ECDSA P-256). Used by `serve --dev`, by the tests and by `certs/`.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    SanType,
};

#[derive(Debug, clap::Args)]
pub struct CertsArgs {
    /// Directory to write ca.crt, ca.key, tls.crt and tls.key into (created if missing).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// The webhook's Service name, for the SANs `<service>.<namespace>.svc`.
    #[arg(long, default_value = "rook-kms-webhook")]
    pub service: String,
    /// The webhook's namespace.
    #[arg(long, default_value = "rook-ceph")]
    pub namespace: String,
    /// Lifetime of the serving certificate in days (the CA lives ten times as long).
    #[arg(long, default_value_t = 365)]
    pub days: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum CertsError {
    #[error("cannot generate the certificates: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("cannot write {path}: {source}")]
    Write { path: String, source: std::io::Error },
}

/// PEM texts of a CA and a serving certificate signed by it.
pub struct ServingCerts {
    pub ca_cert: String,
    pub ca_key: String,
    pub cert: String,
    pub key: String,
}

/// The DNS names and IPs the serving certificate is valid for.
pub fn sans(service: &str, namespace: &str) -> Vec<String> {
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

/// A fresh CA and a serving certificate with `names` as SANs, valid from an hour ago for `days`.
pub fn generate(names: &[String], days: i64) -> Result<ServingCerts, rcgen::Error> {
    let now = time_now();
    let ca_key = KeyPair::generate()?;
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.distinguished_name.push(DnType::CommonName, "rook-kms-webhook CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    ca.not_before = now - rcgen_duration(0, 1);
    ca.not_after = now + rcgen_duration(days.saturating_mul(10), 0);
    let ca_cert = ca.self_signed(&ca_key)?;
    let ca_pem = (ca_cert.pem(), ca_key.serialize_pem());
    let issuer = Issuer::new(ca, ca_key);

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
    leaf.not_before = now - rcgen_duration(0, 1);
    leaf.not_after = now + rcgen_duration(days, 0);
    let cert = leaf.signed_by(&key, &issuer)?;
    Ok(ServingCerts { ca_cert: ca_pem.0, ca_key: ca_pem.1, cert: cert.pem(), key: key.serialize_pem() })
}

fn time_now() -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc()
}

fn rcgen_duration(days: i64, hours: i64) -> time::Duration {
    time::Duration::days(days) + time::Duration::hours(hours)
}

/// Writes the four files; keys are readable by the owner only.
pub fn write(dir: &Path, certs: &ServingCerts) -> Result<(), CertsError> {
    let err = |path: &Path| {
        let path = path.display().to_string();
        move |source| CertsError::Write { path, source }
    };
    std::fs::create_dir_all(dir).map_err(err(dir))?;
    for (name, text, secret) in [
        ("ca.crt", &certs.ca_cert, false),
        ("ca.key", &certs.ca_key, true),
        ("tls.crt", &certs.cert, false),
        ("tls.key", &certs.key, true),
    ] {
        let path = dir.join(name);
        write_file(&path, text.as_bytes(), secret).map_err(err(&path))?;
    }
    Ok(())
}

fn write_file(path: &Path, bytes: &[u8], secret: bool) -> std::io::Result<()> {
    use std::io::Write;
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        let mode = if secret { 0o600 } else { 0o644 };
        let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(mode).open(path)?;
        f.write_all(bytes)
    }
    #[cfg(not(unix))]
    {
        let _ = secret;
        std::fs::write(path, bytes)
    }
}

pub fn run(args: &CertsArgs) -> Result<(), CertsError> {
    let certs = generate(&sans(&args.service, &args.namespace), args.days)?;
    write(&args.out, &certs)?;
    println!("wrote ca.crt, ca.key, tls.crt, tls.key to {}", args.out.display());
    Ok(())
}
