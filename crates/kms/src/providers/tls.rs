//! Client TLS configured the way Rook configures it: the CA from a Secret (or the public roots
//! when none is given), an optional client certificate, an optional server name that differs from
//! the dialled host, TLS 1.2 or newer, and, when the user insists, no verification at all.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

/// Where trust comes from.
#[derive(Debug, Clone)]
pub enum Trust {
    /// PEM CA certificates from a Secret (Rook: only these, nothing else).
    Pem(Vec<u8>),
    /// No CA configured: the public roots, plus any the operator added (`--probe-ca-file`).
    Public(Vec<CertificateDer<'static>>),
    /// `VAULT_SKIP_VERIFY=true`: accept any server certificate.
    SkipVerify,
}

/// A client certificate chain and key, PEM.
#[derive(Clone)]
pub struct ClientPair {
    pub cert_pem: Vec<u8>,
    pub key_pem: Vec<u8>,
}

impl std::fmt::Debug for ClientPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClientPair(<redacted>)")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TlsSetupError {
    #[error("the CA certificate holds no PEM certificate")]
    NoCa,
    #[error("the client certificate holds no PEM certificate")]
    NoClientCert,
    #[error("the client key holds no unencrypted PEM private key")]
    NoClientKey,
    #[error("the client certificate and key cannot be used together: {0}")]
    Pair(String),
    #[error("a CA certificate cannot be used: {0}")]
    Ca(String),
}

/// Builds the client configuration.
pub fn client_config(trust: &Trust, pair: Option<&ClientPair>, alpn: &[&[u8]]) -> Result<ClientConfig, TlsSetupError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| TlsSetupError::Ca(e.to_string()))?;
    let builder = match trust {
        Trust::SkipVerify => builder.dangerous().with_custom_certificate_verifier(Arc::new(AcceptAny(provider))),
        Trust::Pem(pem) => {
            let mut roots = RootCertStore::empty();
            let mut any = false;
            for cert in CertificateDer::pem_slice_iter(pem).flatten() {
                any = true;
                roots.add(cert).map_err(|e| TlsSetupError::Ca(e.to_string()))?;
            }
            if !any {
                return Err(TlsSetupError::NoCa);
            }
            builder.with_root_certificates(roots)
        }
        Trust::Public(extra) => {
            let mut roots = RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
            for cert in extra {
                roots.add(cert.clone()).map_err(|e| TlsSetupError::Ca(e.to_string()))?;
            }
            builder.with_root_certificates(roots)
        }
    };
    let mut config = match pair {
        None => builder.with_no_client_auth(),
        Some(pair) => {
            let chain: Vec<CertificateDer<'static>> =
                CertificateDer::pem_slice_iter(&pair.cert_pem).flatten().collect();
            if chain.is_empty() {
                return Err(TlsSetupError::NoClientCert);
            }
            let key = PrivateKeyDer::from_pem_slice(&pair.key_pem).map_err(|_| TlsSetupError::NoClientKey)?;
            builder.with_client_auth_cert(chain, key).map_err(|e| TlsSetupError::Pair(e.to_string()))?
        }
    };
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(config)
}

/// The name to verify and send as SNI: the configured server name, else the dialled host.
pub fn server_name(configured: Option<&str>, host: &str) -> Result<ServerName<'static>, String> {
    let name = configured.unwrap_or(host).trim_start_matches('[').trim_end_matches(']');
    ServerName::try_from(name.to_string())
        .map_err(|_| format!("{} is not a valid TLS server name", crate::field::shown(name)))
}

/// `VAULT_SKIP_VERIFY=true`: the handshake signature is still checked, the certificate is not.
#[derive(Debug)]
struct AcceptAny(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// What a TLS failure means for the user, in words. `role` names whose CA was used
/// (e.g. `VAULT_CACERT`, `CA_CERT`).
pub fn describe(error: &std::io::Error, ca_source: &str) -> String {
    use rustls::{AlertDescription as A, CertificateError as C, Error as E};
    let Some(tls) = error.get_ref().and_then(|e| e.downcast_ref::<rustls::Error>()) else {
        return super::net::io_reason(error);
    };
    match tls {
        E::InvalidCertificate(C::UnknownIssuer) => {
            format!("the server's certificate is not signed by a CA in {ca_source} (unknown CA)")
        }
        E::InvalidCertificate(C::NotValidForName | C::NotValidForNameContext { .. }) => {
            "the server's certificate is not valid for the server name (set the TLS server name key to a name in it)"
                .into()
        }
        E::InvalidCertificate(C::Expired | C::ExpiredContext { .. }) => "the server's certificate has expired".into(),
        E::InvalidCertificate(C::NotValidYet | C::NotValidYetContext { .. }) => {
            "the server's certificate is not valid yet".into()
        }
        E::InvalidCertificate(other) => format!("the server's certificate is not acceptable ({other:?})"),
        E::AlertReceived(A::BadCertificate | A::UnknownCA | A::CertificateRequired | A::CertificateUnknown)
        | E::AlertReceived(A::AccessDenied | A::UnsupportedCertificate | A::CertificateExpired) => {
            format!("the server refused the client certificate (TLS alert {:?})", alert(tls))
        }
        E::AlertReceived(A::HandshakeFailure | A::ProtocolVersion | A::InsufficientSecurity) => {
            format!("no common TLS version or cipher suite with the server (TLS alert {:?})", alert(tls))
        }
        E::PeerIncompatible(why) => format!("no common TLS version or cipher suite with the server ({why:?})"),
        E::AlertReceived(other) => format!("the server ended the handshake (TLS alert {other:?})"),
        E::InvalidMessage(_) | E::InappropriateMessage { .. } | E::InappropriateHandshakeMessage { .. } => {
            "the server does not speak TLS on this port".into()
        }
        other => format!("TLS error: {}", crate::field::shown(&other.to_string()).trim_matches('"')),
    }
}

fn alert(e: &rustls::Error) -> rustls::AlertDescription {
    match e {
        rustls::Error::AlertReceived(a) => *a,
        _ => rustls::AlertDescription::HandshakeFailure,
    }
}
