//! Rook-compatible OSD key operations: the same names, paths, formats and semantics Rook uses
//! (`rook-kms-spec.md` §5), so that keys Rook wrote can be read and keys we write are read by Rook.
//!
//! One store per KMS ([`store::KeyStore`]); Kubernetes objects are reached only through the narrow
//! [`kube::SecretStore`] trait, so logic tests run in memory and no store knows about kube-rs.

pub mod keyprotect;
pub mod kmip;
pub mod kube;
pub mod store;
pub mod vault;

use std::fmt;

use base64::Engine as _;

/// Prefix of Rook's per-OSD key names (Secrets, Vault keys, Azure secrets).
pub const KEY_PREFIX: &str = "rook-ceph-osd-encryption-key-";
/// Data key of Rook's OSD key Secrets (the KEK itself, or KMIP's object id).
pub const SECRET_DATA_KEY: &str = "dmcrypt-key";
/// Label on Rook's OSD key Secrets naming the PVC.
pub const PVC_LABEL: &str = "pvc_name";
/// Rook's KEK: 128 random bytes.
pub const KEK_BYTES: usize = 128;

/// Rook's name for the key of the OSD on `pvc`.
pub fn key_name(pvc: &str) -> String {
    format!("{KEY_PREFIX}{pvc}")
}

/// A key-encryption key as Rook handles it: the base64 text of 128 random bytes (that text, not
/// the bytes, is the LUKS passphrase). `Debug` and `Display` never show it.
#[derive(Clone, PartialEq, Eq)]
pub struct Kek(String);

impl fmt::Debug for Kek {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Kek({})", self.fingerprint())
    }
}

impl Kek {
    /// A new key exactly as Rook's `GenerateDmCryptKey` makes one.
    pub fn generate() -> Result<Self, KeyError> {
        use ring::rand::SecureRandom;
        let mut bytes = [0u8; KEK_BYTES];
        ring::rand::SystemRandom::new().fill(&mut bytes).map_err(|_| KeyError::Random)?;
        Ok(Self(base64::engine::general_purpose::STANDARD.encode(bytes)))
    }

    /// Wraps key text read from a store (Rook's stores hold the base64 text).
    pub fn from_text(text: impl Into<String>) -> Self {
        Self(text.into())
    }

    /// Wraps raw key material (KMIP holds the decoded bytes).
    pub fn from_material(bytes: &[u8]) -> Self {
        Self(base64::engine::general_purpose::STANDARD.encode(bytes))
    }

    /// The key text; only for writing it to a store, or printing under `--reveal`.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The decoded bytes (what KMIP stores), when the text is base64.
    pub fn material(&self) -> Option<Vec<u8>> {
        base64::engine::general_purpose::STANDARD.decode(&self.0).ok()
    }

    /// A SHA-256 prefix that identifies the key without revealing it: `sha256:0123456789abcdef`.
    pub fn fingerprint(&self) -> String {
        let d = ring::digest::digest(&ring::digest::SHA256, self.0.as_bytes());
        let hex: String = d.as_ref().iter().take(8).map(|b| format!("{b:02x}")).collect();
        format!("sha256:{hex}")
    }
}

/// Why a key operation failed. Messages never carry key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("{operation} is not supported for the {provider:?} KMS (Rook does not support it either)")]
    Unsupported { operation: &'static str, provider: &'static str },
    #[error("cannot reach the {store}: {reason}")]
    Unreachable { store: &'static str, reason: String },
    #[error("the {store} refused {operation} for {pvc:?}: {reason}")]
    Refused { store: &'static str, operation: &'static str, pvc: String, reason: String },
    #[error("the {store} holds something for {pvc:?} that is not a key in Rook's format: {reason}")]
    Malformed { store: &'static str, pvc: String, reason: String },
    #[error("the system random number generator failed")]
    Random,
    #[error("the Kubernetes API failed: {0}")]
    Kube(String),
    #[error("the configuration cannot be used: {0}")]
    Config(String),
}

/// What `put` did. Rook's `PutSecret` never overwrites an existing key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutOutcome {
    Created,
    /// A key was already there; `same` says whether it equals the one offered.
    Exists {
        same: bool,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_look_like_rooks_and_never_show_in_debug() {
        let k = Kek::generate().unwrap();
        assert_eq!(k.expose().len(), 172);
        assert!(k.expose().ends_with('=') && !k.expose().ends_with("=="));
        assert_eq!(k.material().unwrap().len(), KEK_BYTES);
        assert_eq!(Kek::from_material(&k.material().unwrap()), k);
        let shown = format!("{k:?}");
        assert!(!shown.contains(k.expose()) && shown.starts_with("Kek(sha256:"), "{shown}");
        assert_ne!(Kek::generate().unwrap(), k);
        assert_eq!(key_name("set1-data-0-abcde"), "rook-ceph-osd-encryption-key-set1-data-0-abcde");
    }
}
