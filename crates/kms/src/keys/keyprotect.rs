//! OSD keys in IBM Key Protect, as Rook keeps them: an imported standard key whose name and alias
//! are the PVC name (no prefix), read back by alias; deleted by id with `force=true`. Key Protect
//! cannot update a standard key, so there is no key rotation (Rook has none either).

use std::sync::Arc;

use hyper::Method;
use serde_json::{Value, json};

use super::{Kek, KeyError, PutOutcome};
use crate::probe::{KeyProtectTarget, ProbeOptions};
use crate::providers::http::{Connection, TlsSettings};
use crate::providers::tls::{Trust, client_config};

const STORE: &str = "IBM Key Protect";
const KEY_TYPE: &str = "application/vnd.ibm.kms.key+json";

/// A Key Protect instance.
#[derive(Debug, Clone)]
pub struct KeyProtectStore {
    pub target: KeyProtectTarget,
    pub options: ProbeOptions,
}

struct Session {
    conn: Connection,
    bearer: String,
    instance: String,
}

impl Session {
    async fn call(
        &mut self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        extra: &[(&str, &str)],
    ) -> Result<(u16, Value), KeyError> {
        let mut headers = vec![
            ("authorization", self.bearer.as_str()),
            ("bluemix-instance", self.instance.as_str()),
            ("accept", "application/json"),
        ];
        if body.is_some() {
            headers.push(("content-type", KEY_TYPE));
        }
        headers.extend_from_slice(extra);
        let response = self
            .conn
            .send(method, path, &headers, body.map(|b| b.to_string().into_bytes()))
            .await
            .map_err(|e| KeyError::Unreachable { store: STORE, reason: e.to_string() })?;
        Ok((response.status, serde_json::from_slice(&response.body).unwrap_or(Value::Null)))
    }
}

/// Key Protect's reason codes (`KEY_ALIAS_NOT_UNIQUE_ERR`), never its free text.
fn reasons(body: &Value) -> String {
    let codes: Vec<&str> = body
        .pointer("/resources/0/reasons")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|r| r.get("code")?.as_str()).filter(|c| c.len() < 64).collect())
        .unwrap_or_default();
    codes.join(", ")
}

impl KeyProtectStore {
    async fn session(&self) -> Result<Session, KeyError> {
        let token = crate::providers::keyprotect::iam_token(&self.target, &self.options)
            .await
            .map_err(|f| KeyError::Unreachable { store: STORE, reason: f.message })?;
        let config = client_config(&Trust::Public(self.options.extra_roots.clone()), None, &[b"http/1.1"])
            .map_err(|e| KeyError::Config(e.to_string()))?;
        let tls = TlsSettings { config: Arc::new(config), server_name: None, ca_source: "the public roots".into() };
        let url = &self.target.base_url;
        let conn = Connection::open(
            url,
            (url.scheme() == "https").then_some(&tls),
            &self.options.policy,
            self.options.connect_timeout,
        )
        .await
        .map_err(|e| KeyError::Unreachable { store: STORE, reason: e.to_string() })?;
        Ok(Session { conn, bearer: format!("Bearer {token}"), instance: self.target.instance_id.clone() })
    }

    async fn get_with(&self, s: &mut Session, pvc: &str) -> Result<Option<(String, Option<Kek>)>, KeyError> {
        let (status, body) = s.call(Method::GET, &format!("/api/v2/keys/{pvc}"), None, &[]).await?;
        match status {
            404 => Ok(None),
            200 => {
                let key = body.pointer("/resources/0").ok_or_else(|| KeyError::Malformed {
                    store: STORE,
                    pvc: pvc.into(),
                    reason: "no resource in the answer".into(),
                })?;
                let id = key.get("id").and_then(Value::as_str).unwrap_or_default().to_string();
                // A destroyed key (state 5) keeps its alias but has no payload: absent for Rook.
                let payload = key.get("payload").and_then(Value::as_str).map(|p| Kek::from_text(p.to_string()));
                Ok(Some((id, payload)))
            }
            s2 => Err(KeyError::Refused {
                store: STORE,
                operation: "get",
                pvc: pvc.into(),
                reason: format!("HTTP {s2} {}", reasons(&body)).trim().into(),
            }),
        }
    }

    pub async fn get(&self, pvc: &str) -> Result<Option<Kek>, KeyError> {
        let mut s = self.session().await?;
        Ok(self.get_with(&mut s, pvc).await?.and_then(|(_, k)| k))
    }

    /// Rook's PutSecret: import a standard key named and aliased by the PVC; an alias that is
    /// taken means the key exists (Rook treats KEY_ALIAS_NOT_UNIQUE_ERR as success).
    pub async fn put(&self, pvc: &str, kek: &Kek) -> Result<PutOutcome, KeyError> {
        let mut s = self.session().await?;
        if let Some((_, existing)) = self.get_with(&mut s, pvc).await? {
            return Ok(PutOutcome::Exists { same: existing.as_ref() == Some(kek) });
        }
        let body = json!({
            "metadata": {"collectionType": KEY_TYPE, "collectionTotal": 1},
            "resources": [{"type": KEY_TYPE, "name": pvc, "aliases": [pvc], "payload": kek.expose(), "extractable": true}]
        });
        let (status, answer) =
            s.call(Method::POST, "/api/v2/keys", Some(&body), &[("prefer", "return=minimal")]).await?;
        match status {
            200 | 201 => Ok(PutOutcome::Created),
            409 if reasons(&answer).contains("KEY_ALIAS_NOT_UNIQUE_ERR") => Ok(PutOutcome::Exists { same: false }),
            s2 => Err(KeyError::Refused {
                store: STORE,
                operation: "import",
                pvc: pvc.into(),
                reason: format!("HTTP {s2} {}", reasons(&answer)).trim().into(),
            }),
        }
    }

    /// Rook's DeleteSecret: find the key by alias, delete it by id with `force=true`.
    pub async fn delete(&self, pvc: &str) -> Result<bool, KeyError> {
        let mut s = self.session().await?;
        let Some((id, _)) = self.get_with(&mut s, pvc).await? else { return Ok(false) };
        let (status, body) = s
            .call(Method::DELETE, &format!("/api/v2/keys/{id}?force=true"), None, &[("prefer", "return=minimal")])
            .await?;
        match status {
            200 | 204 => Ok(true),
            404 | 410 => Ok(false),
            s2 => Err(KeyError::Refused {
                store: STORE,
                operation: "delete",
                pvc: pvc.into(),
                reason: format!("HTTP {s2} {}", reasons(&body)).trim().into(),
            }),
        }
    }

    /// The PVCs with an active key (the key names; Rook's names carry no prefix, so every key of
    /// the instance is listed).
    pub async fn list(&self) -> Result<Vec<String>, KeyError> {
        let mut s = self.session().await?;
        let (status, body) = s.call(Method::GET, "/api/v2/keys?limit=5000", None, &[]).await?;
        if status != 200 {
            return Err(KeyError::Refused {
                store: STORE,
                operation: "list",
                pvc: "*".into(),
                reason: format!("HTTP {status} {}", reasons(&body)).trim().into(),
            });
        }
        Ok(body
            .get("resources")
            .and_then(Value::as_array)
            .map(|r| r.iter().filter_map(|k| k.get("name")?.as_str().map(str::to_string)).collect())
            .unwrap_or_default())
    }
}
