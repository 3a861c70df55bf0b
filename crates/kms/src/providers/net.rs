//! Where the probe may connect. A CephCluster author chooses the KMS address, so the webhook
//! must not become a way to reach cloud metadata services or the webhook's own loopback: every
//! address a name resolves to is checked before we connect, and we connect to the checked address
//! (no second resolution that DNS rebinding could change).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;
use std::time::Duration;

use tokio::net::TcpStream;

/// One `--probe-allow` entry: a CIDR block (or single address), or a host name suffix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AllowRule {
    Cidr { network: IpAddr, prefix: u8 },
    HostSuffix(String),
}

impl FromStr for AllowRule {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        if let Ok(ip) = addr.parse::<IpAddr>() {
            let max = if ip.is_ipv4() { 32 } else { 128 };
            let prefix = match prefix {
                None => max,
                Some(p) => p
                    .parse::<u8>()
                    .ok()
                    .filter(|p| *p <= max)
                    .ok_or_else(|| format!("{s:?}: the prefix length must be a number from 0 to {max}"))?,
            };
            return Ok(AllowRule::Cidr { network: ip, prefix });
        }
        let host = s.trim_start_matches('.').to_ascii_lowercase();
        if prefix.is_some() || host.is_empty() || !crate::names::is_server_name(&host) {
            return Err(format!(
                "{s:?} is neither a CIDR block (10.0.0.0/8) nor a host name suffix (vault.example.com)"
            ));
        }
        Ok(AllowRule::HostSuffix(host))
    }
}

impl AllowRule {
    fn contains_ip(&self, ip: IpAddr) -> bool {
        let AllowRule::Cidr { network, prefix } = self else { return false };
        match (network, canonical(ip)) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(*prefix)).unwrap_or(0);
                u32::from(*n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(*prefix)).unwrap_or(0);
                u128::from(*n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }

    fn matches_host(&self, host: &str) -> bool {
        let AllowRule::HostSuffix(suffix) = self else { return false };
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        host == *suffix || host.ends_with(&format!(".{suffix}"))
    }
}

/// The destinations the probe may use.
#[derive(Debug, Clone, Default)]
pub struct NetPolicy {
    /// When empty, any address that is not refused outright; otherwise only matching ones.
    pub allow: Vec<AllowRule>,
}

/// Why an address is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Cloud metadata endpoints, link-local, unspecified, multicast, broadcast: never.
    Forbidden(&'static str),
    /// Loopback: only when an allow rule names it.
    Loopback,
    /// Not in a non-empty allowlist.
    NotAllowed,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::Forbidden(what) => write!(f, "it is {what}, which the probe never connects to"),
            Refusal::Loopback => f.write_str("it is a loopback address (allow it with --probe-allow 127.0.0.0/8)"),
            Refusal::NotAllowed => f.write_str("it is not in --probe-allow"),
        }
    }
}

/// IPv4-mapped IPv6 addresses are judged as the IPv4 address they carry.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

const METADATA_V4: [Ipv4Addr; 2] = [Ipv4Addr::new(169, 254, 169, 254), Ipv4Addr::new(100, 100, 100, 200)];
const METADATA_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254);

fn forbidden(ip: IpAddr) -> Option<&'static str> {
    match canonical(ip) {
        IpAddr::V4(v4) if METADATA_V4.contains(&v4) => Some("a cloud metadata address"),
        IpAddr::V4(v4) if v4.is_link_local() => Some("a link-local address"),
        IpAddr::V4(v4) if v4.is_unspecified() || v4.is_broadcast() || v4.is_multicast() => {
            Some("not a unicast address")
        }
        IpAddr::V6(v6) if v6 == METADATA_V6 => Some("a cloud metadata address"),
        IpAddr::V6(v6) if v6.segments()[0] & 0xffc0 == 0xfe80 => Some("a link-local address"),
        IpAddr::V6(v6) if v6.is_unspecified() || v6.is_multicast() => Some("not a unicast address"),
        _ => None,
    }
}

impl NetPolicy {
    pub fn new(allow: Vec<AllowRule>) -> Self {
        Self { allow }
    }

    /// Whether the probe may connect to `ip`, reached through the name `host`.
    pub fn check(&self, host: &str, ip: IpAddr) -> Result<(), Refusal> {
        if let Some(what) = forbidden(ip) {
            return Err(Refusal::Forbidden(what));
        }
        let by_cidr = self.allow.iter().any(|r| r.contains_ip(ip));
        if canonical(ip).is_loopback() {
            return if by_cidr { Ok(()) } else { Err(Refusal::Loopback) };
        }
        if self.allow.is_empty() || by_cidr || self.allow.iter().any(|r| r.matches_host(host)) {
            Ok(())
        } else {
            Err(Refusal::NotAllowed)
        }
    }
}

/// Why a connection could not be made. The text is bounded and names no secret.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConnectError {
    #[error("cannot resolve {host}: {reason}")]
    Resolve { host: String, reason: String },
    #[error("{host} resolves to no address")]
    NoAddress { host: String },
    #[error("refused to connect to {addr} ({host}): {refusal}")]
    Refused { host: String, addr: SocketAddr, refusal: String },
    #[error("cannot connect to {addr}: {reason}")]
    Io { addr: SocketAddr, reason: String },
    #[error("no answer from {host} within {seconds:.1} s")]
    Timeout { host: String, seconds: f64 },
}

/// Resolves `host` (a name, an IP, or a bracketed IPv6 literal), checks every address against the
/// policy and connects to the first permitted one within `timeout`.
pub async fn connect(host: &str, port: u16, policy: &NetPolicy, timeout: Duration) -> Result<TcpStream, ConnectError> {
    let shown = crate::field::shown(host).trim_matches('"').to_string();
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let work = async {
        let addrs: Vec<SocketAddr> = match bare.parse::<IpAddr>() {
            Ok(ip) => vec![SocketAddr::new(ip, port)],
            Err(_) => tokio::net::lookup_host((bare, port))
                .await
                .map_err(|e| ConnectError::Resolve { host: shown.clone(), reason: e.kind().to_string() })?
                .collect(),
        };
        let mut refused = None;
        let mut last_io = None;
        for addr in addrs.iter().copied() {
            if let Err(r) = policy.check(bare, addr.ip()) {
                refused.get_or_insert(ConnectError::Refused { host: shown.clone(), addr, refusal: r.to_string() });
                continue;
            }
            match TcpStream::connect(addr).await {
                Ok(stream) => {
                    let _ = stream.set_nodelay(true);
                    return Ok(stream);
                }
                Err(e) => last_io = Some(ConnectError::Io { addr, reason: io_reason(&e) }),
            }
        }
        Err(last_io.or(refused).unwrap_or(ConnectError::NoAddress { host: shown.clone() }))
    };
    match tokio::time::timeout(timeout, work).await {
        Ok(result) => result,
        Err(_) => Err(ConnectError::Timeout { host: shown, seconds: timeout.as_secs_f64() }),
    }
}

/// A short reason for an I/O error, without OS error numbers.
pub fn io_reason(e: &std::io::Error) -> String {
    use std::io::ErrorKind::*;
    match e.kind() {
        ConnectionRefused => "connection refused (nothing listens there)".into(),
        ConnectionReset => "connection reset by the server".into(),
        ConnectionAborted => "connection aborted".into(),
        UnexpectedEof => "the server closed the connection".into(),
        TimedOut => "timed out".into(),
        HostUnreachable | NetworkUnreachable => "no route to the host".into(),
        kind => kind.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn policy(rules: &[&str]) -> NetPolicy {
        NetPolicy::new(rules.iter().map(|r| r.parse().unwrap()).collect())
    }

    #[rstest]
    #[case(&[], "vault.example.com", "10.1.2.3", None)]
    #[case(&[], "x", "169.254.169.254", Some("metadata"))]
    #[case(&["0.0.0.0/0"], "x", "169.254.169.254", Some("metadata"))]
    #[case(&[], "x", "100.100.100.200", Some("metadata"))]
    #[case(&[], "x", "fd00:ec2::254", Some("metadata"))]
    #[case(&[], "x", "169.254.10.1", Some("link-local"))]
    #[case(&[], "x", "fe80::1", Some("link-local"))]
    #[case(&[], "x", "::ffff:169.254.169.254", Some("metadata"))]
    #[case(&[], "x", "0.0.0.0", Some("unicast"))]
    #[case(&[], "x", "224.0.0.1", Some("unicast"))]
    #[case(&[], "localhost", "127.0.0.1", Some("loopback"))]
    #[case(&[], "x", "::1", Some("loopback"))]
    #[case(&["localhost"], "localhost", "127.0.0.1", Some("loopback"))]
    #[case(&["127.0.0.0/8"], "localhost", "127.0.0.1", None)]
    #[case(&["::1"], "x", "::1", None)]
    #[case(&["10.0.0.0/8"], "x", "10.200.0.1", None)]
    #[case(&["10.0.0.0/8"], "x", "192.168.0.1", Some("not in --probe-allow"))]
    #[case(&["example.com"], "vault.example.com", "192.168.0.1", None)]
    #[case(&[".example.com"], "example.com", "192.168.0.1", None)]
    #[case(&["example.com"], "badexample.com", "192.168.0.1", Some("not in --probe-allow"))]
    fn destinations(#[case] rules: &[&str], #[case] host: &str, #[case] ip: &str, #[case] refused: Option<&str>) {
        let got = policy(rules).check(host, ip.parse().unwrap());
        match refused {
            None => assert_eq!(got, Ok(())),
            Some(why) => assert!(got.unwrap_err().to_string().contains(why), "{host} {ip}"),
        }
    }

    #[rstest]
    #[case("10.0.0.0/33")]
    #[case("bad_host")]
    #[case("example.com/8")]
    #[case("")]
    fn bad_rules(#[case] rule: &str) {
        assert!(rule.parse::<AllowRule>().is_err());
    }

    #[tokio::test]
    async fn refused_addresses_are_never_dialled() {
        let err = connect("169.254.169.254", 80, &NetPolicy::default(), Duration::from_secs(1)).await.unwrap_err();
        assert!(matches!(err, ConnectError::Refused { .. }), "{err}");
        let err = connect("localhost", 1, &NetPolicy::default(), Duration::from_secs(1)).await.unwrap_err();
        assert!(err.to_string().contains("loopback"), "{err}");
    }
}
