//! Clients for the KMS providers: the live probe's calls now, Rook-compatible key operations
//! later. Each connects only through [`net`], with TLS from [`tls`].

pub mod http;
pub mod keyprotect;
pub mod kmip;
pub mod net;
pub mod tls;
pub mod vault;
