//! KMIP: Rook's connection handshake (mutual TLS, then DiscoverVersions for exactly 1.4) over our
//! own TTLV codec.

pub mod message;
pub mod ttlv;

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use self::message::{Operation, ROOK_PROTOCOL};
use self::ttlv::{Item, TtlvError};
use super::net::{ConnectError, NetPolicy, connect};
use super::tls::{ClientPair, Trust, client_config};
use crate::field;
use crate::probe::{KmipTarget, ProbeFinding, ProbeOptions};

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum KmipError {
    #[error(transparent)]
    Connect(#[from] ConnectError),
    #[error("cannot set up TLS: {0}")]
    Setup(String),
    #[error("the TLS handshake failed: {0}")]
    Tls(String),
    #[error("no TLS handshake within {0:.1} s")]
    TlsTimeout(f64),
    #[error("the exchange failed: {0}")]
    Io(String),
    #[error("the answer is not valid KMIP: {0}")]
    Decode(#[from] TtlvError),
    #[error(transparent)]
    Response(#[from] message::ResponseError),
}

/// One KMIP connection, opened like Rook's `connect()`.
pub struct KmipConnection {
    stream: TlsStream<TcpStream>,
    /// Each exchange ends within this time (the connect timeout given to `open`).
    timeout: Duration,
}

impl KmipConnection {
    pub async fn open(
        host: &str,
        port: u16,
        server_name: Option<&str>,
        ca_pem: &[u8],
        client: &ClientPair,
        policy: &NetPolicy,
        timeout: Duration,
    ) -> Result<Self, KmipError> {
        let config = client_config(&Trust::Pem(ca_pem.to_vec()), Some(client), &[])
            .map_err(|e| KmipError::Setup(e.to_string()))?;
        let name = super::tls::server_name(server_name, host).map_err(KmipError::Setup)?;
        let tcp = connect(host, port, policy, timeout).await?;
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        let stream = match tokio::time::timeout(timeout, connector.connect(name, tcp)).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return Err(KmipError::Tls(super::tls::describe(&e, "CA_CERT"))),
            Err(_) => return Err(KmipError::TlsTimeout(timeout.as_secs_f64())),
        };
        Ok(Self { stream, timeout })
    }

    /// Sends one request and reads one framed response, within the connection's timeout.
    pub async fn exchange(&mut self, request: &Item) -> Result<Item, KmipError> {
        let timeout = self.timeout;
        match tokio::time::timeout(timeout, self.exchange_unbounded(request)).await {
            Ok(result) => result,
            Err(_) => Err(KmipError::Io(format!("no answer within {:.1} s", timeout.as_secs_f64()))),
        }
    }

    async fn exchange_unbounded(&mut self, request: &Item) -> Result<Item, KmipError> {
        let io = |e: std::io::Error| KmipError::Io(super::tls::describe(&e, "CA_CERT"));
        self.stream.write_all(&request.encode()).await.map_err(io)?;
        self.stream.flush().await.map_err(io)?;
        let mut header = [0u8; 8];
        self.stream.read_exact(&mut header).await.map_err(io)?;
        let total = ttlv::frame_length(&header)?;
        let mut buf = vec![0u8; total];
        buf[..8].copy_from_slice(&header);
        self.stream.read_exact(&mut buf[8..]).await.map_err(io)?;
        Ok(Item::decode(&buf)?)
    }

    /// One operation the way Rook sends it: a random batch item id, checked on the way back.
    pub async fn call(&mut self, operation: Operation, payload: Vec<Item>) -> Result<Item, KmipError> {
        let id = batch_id();
        let response = self.exchange(&message::request(operation, Some(&id), payload)).await?;
        Ok(message::response_payload(&response, operation, Some(&id))?)
    }

    /// Rook's handshake: DiscoverVersions([1.4]); returns the versions the server offered.
    pub async fn discover_versions(&mut self) -> Result<Vec<(i32, i32)>, KmipError> {
        let id = batch_id();
        let response = self.exchange(&message::discover_versions(Some(&id))).await?;
        let payload = message::response_payload(&response, Operation::DiscoverVersions, Some(&id))?;
        Ok(message::versions(&payload))
    }
}

/// The operations Rook uses: Register (put), Get, Destroy (delete).
const ROOK_OPERATIONS: [Operation; 3] = [Operation::Register, Operation::Get, Operation::Destroy];
const QUERY_OPERATIONS: u32 = 1;

/// Query(Query Operations): every operation Rook uses must be listed. Servers may restrict Query
/// by policy, so a refused Query is only a warning.
async fn operations_check(conn: &mut KmipConnection, at: &str) -> Vec<ProbeFinding> {
    let endpoint = field::detail("KMIP_ENDPOINT");
    let payload = vec![Item::new(ttlv::tag::QUERY_FUNCTION, ttlv::Value::Enumeration(QUERY_OPERATIONS))];
    match conn.call(Operation::Query, payload).await {
        Ok(answer) => {
            let offered: Vec<u32> = answer.all(ttlv::tag::OPERATION).filter_map(Item::as_enum).collect();
            let missing: Vec<&str> =
                ROOK_OPERATIONS.iter().filter(|op| !offered.contains(&(**op as u32))).map(|op| op.name()).collect();
            if missing.is_empty() {
                Vec::new()
            } else {
                vec![ProbeFinding::fail(
                    endpoint,
                    format!(
                        "live probe: the KMIP server at {at} does not support {}; Rook registers, gets and destroys OSD keys.",
                        missing.join(", ")
                    ),
                )]
            }
        }
        Err(e) => vec![ProbeFinding::warn(
            endpoint,
            format!(
                "live probe: the KMIP server at {at} did not answer Query ({e}); whether it supports Register, Get and Destroy was not checked."
            ),
        )],
    }
}

fn batch_id() -> [u8; 16] {
    use ring::rand::SecureRandom;
    let mut id = [0u8; 16];
    // A failed RNG leaves zeros: still a valid id, only not unique.
    let _ = ring::rand::SystemRandom::new().fill(&mut id);
    id
}

/// The probe: connect exactly as Rook does and ask for KMIP 1.4.
pub async fn probe(target: &KmipTarget, options: &ProbeOptions) -> Vec<ProbeFinding> {
    let endpoint = field::detail("KMIP_ENDPOINT");
    let at = field::shown(&format!("{}:{}", target.host, target.port));
    let opened = KmipConnection::open(
        &target.host,
        target.port,
        target.server_name.as_deref(),
        &target.ca_pem,
        &target.client,
        &options.policy,
        options.connect_timeout,
    )
    .await;
    let mut conn = match opened {
        Ok(c) => c,
        Err(KmipError::Tls(reason)) => {
            return vec![ProbeFinding::fail(
                field::TOKEN_SECRET_NAME,
                format!(
                    "live probe: the TLS handshake with the KMIP server at {at} failed: {reason}. Check CA_CERT, CLIENT_CERT and CLIENT_KEY in the Secret named by tokenSecretName{}.",
                    if target.server_name.is_none() { " (and TLS_SERVER_NAME)" } else { "" }
                ),
            )];
        }
        Err(e) => {
            return vec![ProbeFinding::fail(
                endpoint,
                format!("live probe: cannot reach the KMIP server at {at}: {e}."),
            )];
        }
    };
    match conn.discover_versions().await {
        Ok(versions) if versions == [ROOK_PROTOCOL] => operations_check(&mut conn, &at).await,
        Ok(versions) => {
            let offered: Vec<String> = versions.iter().take(8).map(|(a, b)| format!("{a}.{b}")).collect();
            vec![ProbeFinding::fail(
                endpoint,
                format!(
                    "live probe: the KMIP server at {at} does not offer KMIP 1.4 (it answered [{}]); Rook speaks exactly KMIP 1.4 and fails with \"invalid discovered protocol version\".",
                    offered.join(", ")
                ),
            )]
        }
        Err(KmipError::Io(reason)) => vec![ProbeFinding::fail(
            field::TOKEN_SECRET_NAME,
            format!(
                "live probe: the KMIP server at {at} closed the connection after the handshake: {reason}. It may refuse the client certificate in CLIENT_CERT."
            ),
        )],
        Err(e) => vec![ProbeFinding::fail(
            endpoint,
            format!("live probe: the KMIP server at {at} did not complete DiscoverVersions: {e}."),
        )],
    }
}
