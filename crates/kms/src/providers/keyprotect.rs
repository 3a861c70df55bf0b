//! IBM Key Protect: the IAM token exchange and the key API, as IBM's client (and so Rook) calls
//! them.

use std::sync::Arc;
use std::time::Duration;

use hyper::Method;
use serde_json::Value;
use url::Url;

use super::http::{Connection, TlsSettings};
use super::tls::{Trust, client_config};
use crate::field;
use crate::probe::{KeyProtectTarget, ProbeFinding, ProbeOptions};

fn tls(options: &ProbeOptions) -> Result<TlsSettings, String> {
    let config = client_config(&Trust::Public(options.extra_roots.clone()), None, &[b"http/1.1"])
        .map_err(|e| format!("cannot set up TLS: {e}"))?;
    Ok(TlsSettings { config: Arc::new(config), server_name: None, ca_source: "the public roots".into() })
}

async fn open(url: &Url, options: &ProbeOptions, timeout: Duration) -> Result<Connection, String> {
    let tls = tls(options)?;
    Connection::open(url, (url.scheme() == "https").then_some(&tls), &options.policy, timeout)
        .await
        .map_err(|e| e.to_string())
}

/// IAM's error code (`BXNIM0415E`), when it looks like one; IAM's message text is not repeated.
fn iam_code(body: &[u8]) -> Option<String> {
    let v: Value = serde_json::from_slice(body).ok()?;
    let code = v.get("errorCode")?.as_str()?;
    (code.len() <= 16 && code.bytes().all(|b| b.is_ascii_alphanumeric())).then(|| code.to_string())
}

/// Exchanges the API key for an IAM access token.
pub async fn iam_token(target: &KeyProtectTarget, options: &ProbeOptions) -> Result<String, ProbeFinding> {
    let token_field = field::detail("IBM_KP_TOKEN_URL");
    let at = field::shown(target.token_url.as_str());
    let mut conn = open(&target.token_url, options, options.connect_timeout).await.map_err(|reason| {
        ProbeFinding::fail(&token_field, format!("live probe: cannot reach IBM IAM at {at}: {reason}."))
    })?;
    let body = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("grant_type", "urn:ibm:params:oauth:grant-type:apikey")
        .append_pair("apikey", &target.api_key.0)
        .finish();
    let headers = [("content-type", "application/x-www-form-urlencoded"), ("accept", "application/json")];
    let response = conn
        // The connection already targets the URL's path; only its query is added.
        .send(
            Method::POST,
            &target.token_url.query().map(|q| format!("?{q}")).unwrap_or_default(),
            &headers,
            Some(body.into_bytes()),
        )
        .await
        .map_err(|e| ProbeFinding::fail(&token_field, format!("live probe: IBM IAM at {at} did not answer: {e}.")))?;
    let secret = field::shown(&target.secret);
    match response.status {
        200 => serde_json::from_slice::<Value>(&response.body)
            .ok()
            .and_then(|v| v.get("access_token")?.as_str().map(str::to_string))
            .ok_or_else(|| {
                ProbeFinding::fail(&token_field, format!("live probe: {at} answered without an access token; check that IBM_KP_TOKEN_URL is IBM's IAM token endpoint."))
            }),
        400 | 401 | 403 => Err(ProbeFinding::fail(
            field::TOKEN_SECRET_NAME,
            format!(
                "live probe: IBM IAM at {at} rejected the API key in Secret {secret} (key IBM_KP_SERVICE_API_KEY){}; create a valid service ID API key and update the Secret.",
                iam_code(&response.body).map(|c| format!(", error {c}")).unwrap_or_default()
            ),
        )),
        s => Err(ProbeFinding::fail(&token_field, format!("live probe: IBM IAM at {at} answered HTTP {s}; check IBM_KP_TOKEN_URL."))),
    }
}

/// The probe: IAM exchange, then `HEAD /api/v2/keys` on the instance (needs Reader).
pub async fn probe(target: &KeyProtectTarget, options: &ProbeOptions) -> Vec<ProbeFinding> {
    let token = match iam_token(target, options).await {
        Ok(t) => t,
        Err(f) => return vec![f],
    };
    let base_field = field::detail("IBM_KP_BASE_URL");
    let at = field::shown(target.base_url.as_str());
    let mut conn = match open(&target.base_url, options, options.connect_timeout).await {
        Ok(c) => c,
        Err(reason) => {
            return vec![ProbeFinding::fail(
                base_field,
                format!("live probe: cannot reach Key Protect at {at}: {reason}."),
            )];
        }
    };
    let bearer = format!("Bearer {token}");
    let headers = [
        ("authorization", bearer.as_str()),
        ("bluemix-instance", target.instance_id.as_str()),
        ("accept", "application/vnd.ibm.collection+json"),
    ];
    let response = match conn.send(Method::HEAD, "/api/v2/keys", &headers, None).await {
        Ok(r) => r,
        Err(e) => {
            return vec![ProbeFinding::fail(
                base_field,
                format!("live probe: Key Protect at {at} did not answer: {e}."),
            )];
        }
    };
    let instance = field::shown(&target.instance_id);
    match response.status {
        200 | 204 => Vec::new(),
        401 | 403 => vec![ProbeFinding::fail(
            field::detail("IBM_KP_SERVICE_INSTANCE_ID"),
            format!(
                "live probe: Key Protect at {at} refused instance {instance} for this API key (HTTP {}): the instance is not in this region (check IBM_KP_BASE_URL) or the API key's service ID has no access to it (Rook needs Reader and Writer, and Manager to delete keys).",
                response.status
            ),
        )],
        404 => vec![ProbeFinding::fail(
            base_field,
            format!("live probe: {at} has no Key Protect API (HTTP 404 on /api/v2/keys); check IBM_KP_BASE_URL."),
        )],
        s => vec![ProbeFinding::fail(
            base_field,
            format!("live probe: Key Protect at {at} answered HTTP {s} to a key listing."),
        )],
    }
}
