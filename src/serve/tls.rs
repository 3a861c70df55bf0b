//! The serving certificate: loaded from files, checked before use, resolved per handshake from an
//! `ArcSwap`, and reloaded when the files' contents change. Polling contents (rather than watching
//! inodes) also catches the Kubernetes Secret-volume `..data` symlink swap.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use super::metrics::Metrics;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("{path} holds no PEM certificate")]
    NoCertificate { path: String },
    #[error("{path}: {reason}")]
    BadPem { path: String, reason: String },
    #[error("the key in {key} cannot be used with the certificate in {cert}: {reason}")]
    Pair { cert: String, key: String, reason: String },
    #[error("the certificate in {path} is not valid X.509: {reason}")]
    X509 { path: String, reason: String },
}

/// A loaded, checked pair and the file contents it came from.
struct Loaded {
    key: Arc<CertifiedKey>,
    source: (Vec<u8>, Vec<u8>),
    not_after: i64,
}

/// Reads and checks a certificate chain and its key.
fn load(cert_path: &Path, key_path: &Path) -> Result<Loaded, TlsError> {
    let read = |p: &Path| std::fs::read(p).map_err(|source| TlsError::Read { path: p.display().to_string(), source });
    check(cert_path, key_path, read(cert_path)?, read(key_path)?)
}

/// Checks a certificate chain and its key as read from the files: the chain parses (full chains
/// accepted, leaf first), the key parses and belongs to the leaf.
fn check(cert_path: &Path, key_path: &Path, cert_pem: Vec<u8>, key_pem: Vec<u8>) -> Result<Loaded, TlsError> {
    let cert_name = cert_path.display().to_string();
    let key_name = key_path.display().to_string();
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| TlsError::BadPem { path: cert_name.clone(), reason: e.to_string() })?;
    let leaf = chain.first().ok_or_else(|| TlsError::NoCertificate { path: cert_name.clone() })?;
    let not_after = x509_not_after(leaf).map_err(|reason| TlsError::X509 { path: cert_name.clone(), reason })?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem)
        .map_err(|e| TlsError::BadPem { path: key_name.clone(), reason: e.to_string() })?;
    let provider = rustls::crypto::ring::default_provider();
    let certified = CertifiedKey::from_der(chain, key, &provider).map_err(|e| TlsError::Pair {
        cert: cert_name,
        key: key_name,
        reason: e.to_string(),
    })?;
    Ok(Loaded { key: Arc::new(certified), source: (cert_pem, key_pem), not_after })
}

fn x509_not_after(der: &CertificateDer<'_>) -> Result<i64, String> {
    rook_kms::pem::Certificate::from_der(der.clone().into_owned()).map(|c| c.not_after)
}

/// The current serving certificate, swapped atomically on reload.
pub struct CertStore {
    cert_path: PathBuf,
    key_path: PathBuf,
    current: ArcSwap<CertifiedKey>,
    source: std::sync::Mutex<(Vec<u8>, Vec<u8>)>,
    metrics: Metrics,
}

impl std::fmt::Debug for CertStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertStore").field("cert_path", &self.cert_path).field("key_path", &self.key_path).finish()
    }
}

impl CertStore {
    /// Loads the pair; a bad pair at start-up is an error (there is nothing to serve with).
    pub fn open(cert_path: PathBuf, key_path: PathBuf, metrics: Metrics) -> Result<Arc<Self>, TlsError> {
        let loaded = load(&cert_path, &key_path)?;
        metrics.cert_expiry.set(loaded.not_after);
        Ok(Arc::new(Self {
            cert_path,
            key_path,
            current: ArcSwap::new(loaded.key),
            source: std::sync::Mutex::new(loaded.source),
            metrics,
        }))
    }

    /// Reloads when the files changed. A new pair replaces the old one only once it is checked; a
    /// bad pair (half-written, mismatched) is logged and ignored, and tried again next time.
    pub fn reload_if_changed(&self) -> bool {
        let (Ok(cert), Ok(key)) = (std::fs::read(&self.cert_path), std::fs::read(&self.key_path)) else {
            return false;
        };
        let Ok(mut source) = self.source.lock() else { return false };
        if source.0 == cert && source.1 == key {
            return false;
        }
        // The bytes just compared are the ones checked: no second read that could differ.
        match check(&self.cert_path, &self.key_path, cert.clone(), key.clone()) {
            Ok(loaded) => {
                self.current.store(loaded.key);
                *source = loaded.source;
                self.metrics.cert_expiry.set(loaded.not_after);
                self.metrics.reload("success");
                tracing::info!(cert = %self.cert_path.display(), not_after = loaded.not_after, "serving certificate reloaded");
                true
            }
            // Half-written, or a cert and key from two different swaps: next round reads again.
            Err(error) => {
                self.metrics.reload("failure");
                tracing::warn!(%error, "new serving certificate ignored; still serving the previous one");
                *source = (cert, key);
                false
            }
        }
    }

    /// Polls the files every `interval` until the task is dropped.
    pub async fn watch(self: Arc<Self>, interval: Duration) {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let store = self.clone();
            // File reads and key parsing are blocking work.
            let _ = tokio::task::spawn_blocking(move || store.reload_if_changed()).await;
        }
    }

    pub fn current(&self) -> Arc<CertifiedKey> {
        self.current.load_full()
    }
}

/// rustls asks per handshake, so a reload takes effect on the next connection.
#[derive(Debug)]
pub struct Resolver(pub Arc<CertStore>);

impl ResolvesServerCert for Resolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.current())
    }
}

/// TLS 1.2 and 1.3 only, ring, HTTP/2 and HTTP/1.1 by ALPN.
pub fn server_config(store: Arc<CertStore>) -> Result<rustls::ServerConfig, rustls::Error> {
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(Resolver(store)));
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}
