//! `rook-kms-webhook certs`: a CA and a serving certificate for the webhook, made with rcgen
//! (ECDSA P-256). Used by `serve --dev`, by the tests and by `certs/`.

use std::path::{Path, PathBuf};

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
    rook_kms::pki::service_names(service, namespace)
}

/// A fresh CA and a serving certificate with `names` as SANs, valid from an hour ago for `days`
/// (the CA for ten times as long).
pub fn generate(names: &[String], days: i64) -> Result<ServingCerts, rcgen::Error> {
    let now = time::OffsetDateTime::now_utc();
    let ca = rook_kms::pki::new_ca("rook-kms-webhook CA", now, days.saturating_mul(10))?;
    let leaf = rook_kms::pki::issue_leaf(&ca, names, now, days)?;
    Ok(ServingCerts { ca_cert: ca.cert_pem, ca_key: ca.key_pem, cert: leaf.cert_pem, key: leaf.key_pem })
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
