//! A small HTTP/1.1 client for the KMS REST APIs (Vault, IBM Key Protect): one connection per
//! probe, dialled through the [`NetPolicy`], TLS configured as Rook configures it, bounded bodies.
//! A general-purpose client would resolve names itself, which the address policy must not allow.

use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use hyper::{HeaderMap, Method, Request};
use hyper_util::rt::TokioIo;
use rustls::ClientConfig;
use tokio::io::{AsyncRead, AsyncWrite};
use url::Url;

use super::net::{ConnectError, NetPolicy, connect};

/// Largest response body we read (KMS answers are small; a hostile server gets cut off).
pub const MAX_BODY: usize = 1 << 20;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum HttpError {
    #[error("{0} is not an http(s) URL with a host")]
    BadUrl(String),
    #[error(transparent)]
    Connect(#[from] ConnectError),
    #[error("TLS handshake with {host} failed: {reason}")]
    Tls { host: String, reason: String },
    #[error("no TLS answer from {host} within {seconds:.1} s")]
    TlsTimeout { host: String, seconds: f64 },
    #[error("the HTTP exchange with {host} failed: {reason}")]
    Exchange { host: String, reason: String },
    #[error("the answer from {host} is larger than {MAX_BODY} bytes")]
    TooLarge { host: String },
}

/// A response: status, headers, body (at most [`MAX_BODY`] bytes).
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

/// TLS for one endpoint: the client configuration and the name to verify.
#[derive(Debug, Clone)]
pub struct TlsSettings {
    pub config: Arc<ClientConfig>,
    /// A name other than the URL's host (`VAULT_TLS_SERVER_NAME`).
    pub server_name: Option<String>,
    /// Which setting supplied the CA, for messages (`VAULT_CACERT`, "the public roots").
    pub ca_source: String,
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// One open connection.
pub struct Connection {
    sender: SendRequest<Full<Bytes>>,
    /// Each exchange ends within this time (the connect timeout given to `open`).
    timeout: Duration,
    host: String,
    authority: String,
    base_path: String,
}

impl Connection {
    /// Connects to the URL's host and port (TLS for https unless `tls` is `None`).
    pub async fn open(
        url: &Url,
        tls: Option<&TlsSettings>,
        policy: &NetPolicy,
        timeout: Duration,
    ) -> Result<Self, HttpError> {
        let shown = || crate::field::shown(url.as_str());
        let host_str = url.host_str().filter(|h| !h.is_empty()).ok_or_else(|| HttpError::BadUrl(shown()))?;
        let https = match url.scheme() {
            "https" => true,
            "http" => false,
            _ => return Err(HttpError::BadUrl(shown())),
        };
        let port = url.port_or_known_default().ok_or_else(|| HttpError::BadUrl(shown()))?;
        let host = crate::field::shown(host_str).trim_matches('"').to_string();
        let tcp = connect(host_str, port, policy, timeout).await?;
        let io: Box<dyn Io> = match (https, tls) {
            (true, Some(tls)) => {
                let name = super::tls::server_name(tls.server_name.as_deref(), host_str)
                    .map_err(|reason| HttpError::Tls { host: host.clone(), reason })?;
                let connector = tokio_rustls::TlsConnector::from(tls.config.clone());
                match tokio::time::timeout(timeout, connector.connect(name, tcp)).await {
                    Ok(Ok(stream)) => Box::new(stream),
                    Ok(Err(e)) => {
                        return Err(HttpError::Tls { host, reason: super::tls::describe(&e, &tls.ca_source) });
                    }
                    Err(_) => return Err(HttpError::TlsTimeout { host, seconds: timeout.as_secs_f64() }),
                }
            }
            (true, None) => return Err(HttpError::BadUrl(shown())),
            (false, _) => Box::new(tcp),
        };
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
            .await
            .map_err(|e| HttpError::Exchange { host: host.clone(), reason: e.to_string() })?;
        tokio::spawn(async move {
            // Ends when the sender is dropped or the server closes; errors surface on send.
            let _ = conn.await;
        });
        let authority = match url.port() {
            Some(p) => format!("{host_str}:{p}"),
            None => host_str.to_string(),
        };
        Ok(Self { sender, timeout, host, authority, base_path: url.path().trim_end_matches('/').to_string() })
    }

    /// Sends one request to `path` (below the URL's own path) and reads the whole answer, within
    /// the connection's timeout: a server that stops answering cannot hang the caller.
    pub async fn send(
        &mut self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<Vec<u8>>,
    ) -> Result<Response, HttpError> {
        let timeout = self.timeout;
        let host = self.host.clone();
        match tokio::time::timeout(timeout, self.exchange(method, path, headers, body)).await {
            Ok(result) => result,
            Err(_) => {
                Err(HttpError::Exchange { host, reason: format!("no answer within {:.1} s", timeout.as_secs_f64()) })
            }
        }
    }

    async fn exchange(
        &mut self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<Vec<u8>>,
    ) -> Result<Response, HttpError> {
        let exchange = |reason: String| HttpError::Exchange { host: self.host.clone(), reason };
        let mut uri = format!("{}{path}", self.base_path);
        if !uri.starts_with('/') {
            uri.insert(0, '/');
        }
        let mut builder = Request::builder().method(method).uri(uri).header("host", &self.authority);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        let request = builder
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .map_err(|e| exchange(format!("cannot build the request: {e}")))?;
        self.sender.ready().await.map_err(|e| exchange(e.to_string()))?;
        let response = self.sender.send_request(request).await.map_err(|e| exchange(hyper_reason(&e)))?;
        let (parts, body) = response.into_parts();
        let body = Limited::new(body, MAX_BODY).collect().await.map_err(|e| {
            if e.is::<http_body_util::LengthLimitError>() {
                HttpError::TooLarge { host: self.host.clone() }
            } else {
                exchange(e.to_string())
            }
        })?;
        Ok(Response { status: parts.status.as_u16(), headers: parts.headers, body: body.to_bytes().to_vec() })
    }
}

/// hyper's error, with the TLS cause spelled out when there is one (a TLS 1.3 server that refuses
/// the client certificate says so only after the handshake, on the first read).
fn hyper_reason(e: &hyper::Error) -> String {
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            return super::tls::describe(io, "the configured CA");
        }
        source = s.source();
    }
    e.to_string()
}
