//! OSD keys on a KMIP server, as Rook keeps them: Register a symmetric key (usage mask Export,
//! algorithm AES), keep the server's Unique Identifier in the Secret
//! `rook-ceph-osd-encryption-key-<pvc>` (key `dmcrypt-key`), Get it back by that id, Destroy it.
//! One connection per operation, each starting with Rook's DiscoverVersions([1.4]) handshake.
//!
//! One deliberate difference: Rook declares the 1024-bit key material as 256 bits long, which
//! spec-strict servers reject (rook/rook PR #18401); we declare the real length, Raw format.
//! Rook's Get reads the material whatever the declared length, so Rook reads our keys.

use super::kube::{SecretStore, osd_key_secret};
use super::{Kek, KeyError, PVC_LABEL, PutOutcome, SECRET_DATA_KEY, key_name};
use crate::probe::{KmipTarget, ProbeOptions};
use crate::providers::kmip::message::{Operation, ROOK_PROTOCOL};
use crate::providers::kmip::ttlv::{Item, Value, tag};
use crate::providers::kmip::{KmipConnection, KmipError};

const STORE: &str = "KMIP server";
const OBJECT_TYPE_SYMMETRIC_KEY: u32 = 2;
const KEY_FORMAT_RAW: u32 = 1;
const ALGORITHM_AES: u32 = 3;
const USAGE_MASK_EXPORT: i32 = 0x40;

/// A KMIP server plus the Secrets that hold its object ids.
pub struct KmipStore<'a, S> {
    pub target: KmipTarget,
    pub options: ProbeOptions,
    pub secrets: &'a S,
}

fn unreachable(e: KmipError) -> KeyError {
    KeyError::Unreachable { store: STORE, reason: e.to_string() }
}

/// The Register payload for `material`.
pub fn register_payload(material: &[u8]) -> Vec<Item> {
    vec![
        Item::new(tag::OBJECT_TYPE, Value::Enumeration(OBJECT_TYPE_SYMMETRIC_KEY)),
        Item::structure(
            tag::TEMPLATE_ATTRIBUTE,
            vec![Item::structure(
                tag::ATTRIBUTE,
                vec![
                    Item::new(tag::ATTRIBUTE_NAME, Value::TextString("Cryptographic Usage Mask".into())),
                    Item::new(tag::ATTRIBUTE_VALUE, Value::Integer(USAGE_MASK_EXPORT)),
                ],
            )],
        ),
        Item::structure(
            tag::SYMMETRIC_KEY,
            vec![Item::structure(
                tag::KEY_BLOCK,
                vec![
                    Item::new(tag::KEY_FORMAT_TYPE, Value::Enumeration(KEY_FORMAT_RAW)),
                    Item::structure(
                        tag::KEY_VALUE,
                        vec![Item::new(tag::KEY_MATERIAL, Value::ByteString(material.to_vec()))],
                    ),
                    Item::new(tag::CRYPTOGRAPHIC_ALGORITHM, Value::Enumeration(ALGORITHM_AES)),
                    Item::new(tag::CRYPTOGRAPHIC_LENGTH, Value::Integer((material.len() * 8) as i32)),
                ],
            )],
        ),
    ]
}

impl<S: SecretStore> KmipStore<'_, S> {
    /// Rook's connect(): TLS, then DiscoverVersions, which must answer exactly [1.4].
    async fn connect(&self) -> Result<KmipConnection, KeyError> {
        let t = &self.target;
        let mut conn = KmipConnection::open(
            &t.host,
            t.port,
            t.server_name.as_deref(),
            &t.ca_pem,
            &t.client,
            &self.options.policy,
            self.options.connect_timeout,
        )
        .await
        .map_err(unreachable)?;
        let versions = conn.discover_versions().await.map_err(unreachable)?;
        if versions != [ROOK_PROTOCOL] {
            return Err(KeyError::Unreachable {
                store: STORE,
                reason: format!("the server does not offer KMIP 1.4 ({versions:?})"),
            });
        }
        Ok(conn)
    }

    async fn uid(&self, pvc: &str) -> Result<Option<String>, KeyError> {
        let Some(secret) = self.secrets.get(&key_name(pvc)).await? else { return Ok(None) };
        let uid = secret.data.get(SECRET_DATA_KEY).and_then(|v| String::from_utf8(v.clone()).ok());
        match uid.filter(|u| !u.is_empty()) {
            Some(u) => Ok(Some(u)),
            None => Err(KeyError::Malformed {
                store: STORE,
                pvc: pvc.into(),
                reason: format!("Secret {} has no {SECRET_DATA_KEY}", key_name(pvc)),
            }),
        }
    }

    pub async fn get(&self, pvc: &str) -> Result<Option<Kek>, KeyError> {
        let Some(uid) = self.uid(pvc).await? else { return Ok(None) };
        let mut conn = self.connect().await?;
        let payload =
            conn.call(Operation::Get, vec![Item::new(tag::UNIQUE_IDENTIFIER, Value::TextString(uid))]).await.map_err(
                |e| KeyError::Refused { store: STORE, operation: "get", pvc: pvc.into(), reason: e.to_string() },
            )?;
        let material = payload
            .child(tag::SYMMETRIC_KEY)
            .and_then(|k| k.child(tag::KEY_BLOCK))
            .and_then(|b| b.child(tag::KEY_VALUE))
            .and_then(|v| v.child(tag::KEY_MATERIAL))
            .and_then(Item::as_bytes)
            .ok_or_else(|| KeyError::Malformed {
                store: STORE,
                pvc: pvc.into(),
                reason: "the object is not a symmetric key with key material".into(),
            })?;
        Ok(Some(Kek::from_material(material)))
    }

    /// Rook's PutSecret: skipped when the id Secret exists; otherwise Register and keep the id.
    pub async fn put(&self, pvc: &str, kek: &Kek) -> Result<PutOutcome, KeyError> {
        if self.uid(pvc).await?.is_some() {
            let existing = self.get(pvc).await?;
            return Ok(PutOutcome::Exists { same: existing.as_ref() == Some(kek) });
        }
        let material = kek.material().ok_or_else(|| KeyError::Config("the key is not base64".into()))?;
        let mut conn = self.connect().await?;
        let payload = conn.call(Operation::Register, register_payload(&material)).await.map_err(|e| {
            KeyError::Refused { store: STORE, operation: "register", pvc: pvc.into(), reason: e.to_string() }
        })?;
        let uid = payload.child(tag::UNIQUE_IDENTIFIER).and_then(Item::as_text).ok_or_else(|| KeyError::Malformed {
            store: STORE,
            pvc: pvc.into(),
            reason: "Register answered without a Unique Identifier".into(),
        })?;
        if !self.secrets.create(&key_name(pvc), osd_key_secret(pvc, uid.as_bytes())).await? {
            return Err(KeyError::Kube(format!(
                "Secret {} appeared while registering; object {uid} is unreferenced",
                key_name(pvc)
            )));
        }
        Ok(PutOutcome::Created)
    }

    /// Rook's DeleteSecret: Destroy the object (the id Secret goes with the CephCluster; we
    /// delete it too, since nothing else would).
    pub async fn delete(&self, pvc: &str) -> Result<bool, KeyError> {
        let Some(uid) = self.uid(pvc).await? else { return Ok(false) };
        let mut conn = self.connect().await?;
        match conn.call(Operation::Destroy, vec![Item::new(tag::UNIQUE_IDENTIFIER, Value::TextString(uid))]).await {
            Ok(_) => {}
            // Already gone on the server: still drop the dangling id.
            Err(KmipError::Response(crate::providers::kmip::message::ResponseError::Failed { reason, .. }))
                if reason.starts_with("Item Not Found") => {}
            Err(e) => {
                return Err(KeyError::Refused {
                    store: STORE,
                    operation: "destroy",
                    pvc: pvc.into(),
                    reason: e.to_string(),
                });
            }
        }
        self.secrets.delete(&key_name(pvc)).await?;
        Ok(true)
    }

    /// The PVCs with an id Secret.
    pub async fn list(&self) -> Result<Vec<String>, KeyError> {
        Ok(self
            .secrets
            .list_labelled(PVC_LABEL)
            .await?
            .into_iter()
            .filter_map(|(_, s)| s.labels.get(PVC_LABEL).cloned())
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn register_declares_the_real_length() {
        let payload = register_payload(&[7u8; 128]);
        let block = payload[2].child(tag::KEY_BLOCK).unwrap();
        assert_eq!(block.child(tag::CRYPTOGRAPHIC_LENGTH).unwrap().as_i32(), Some(1024));
        assert_eq!(block.child(tag::KEY_FORMAT_TYPE).unwrap().as_enum(), Some(KEY_FORMAT_RAW));
        let bytes = Item::structure(tag::REQUEST_PAYLOAD, payload).encode();
        assert_eq!(bytes.len() % 8, 0);
    }
}
