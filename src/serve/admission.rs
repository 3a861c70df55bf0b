//! AdmissionReview in, AdmissionReview out. This module only routes: the verdict comes from
//! `rook_kms::review`, exactly as `check` computes it.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use kube::core::DynamicObject;
use kube::core::admission::{AdmissionRequest, AdmissionResponse, AdmissionReview, Operation as KubeOperation};
use rook_kms::probe::ProbeMode;
use rook_kms::review::{Operation, Request, Review, SecretsUnavailable};
use serde_json::Value;

use super::metrics::Metrics;
use super::secrets::Secrets;

/// Which webhook is asking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    Validate,
    Mutate,
}

impl Endpoint {
    fn as_str(self) -> &'static str {
        match self {
            Endpoint::Validate => "validate",
            Endpoint::Mutate => "mutate",
        }
    }
}

/// What the handlers share.
pub struct Admission {
    pub prober: crate::probe::Prober,
    /// The server's answer deadline; the probe gets what is left of it.
    pub request_timeout: Duration,
    pub secrets: Secrets,
    pub secrets_timeout: Duration,
    pub unavailable: SecretsUnavailable,
    pub metrics: Metrics,
}

/// The HTTP answer: 200 with an AdmissionReview, or 400 with a sentence.
#[derive(Debug)]
pub enum Answer {
    /// The AdmissionReview, serialized.
    Review(Vec<u8>),
    BadRequest(String),
}

/// Kubernetes shows warnings as `Warning:` lines and may cut long ones; keep each under 120
/// characters by splitting at word boundaries, continuation lines starting with "…".
pub fn warning_lines(text: &str) -> Vec<String> {
    const MAX: usize = 119;
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        let word: String = word.chars().take(MAX - 4).collect();
        if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > MAX {
            lines.push(std::mem::take(&mut line));
            line.push('…');
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(&word);
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

impl Admission {
    pub async fn handle(&self, endpoint: Endpoint, body: &[u8]) -> Answer {
        let started = Instant::now();
        // Parse once into a Value and lift the (large) objects out as they are: the rules read
        // Values, and a DynamicObject would be buffered and converted back for nothing.
        let parsed = serde_json::from_slice::<Value>(body).and_then(|mut v| {
            let mut lift = |p: &str| v.pointer_mut(p).map(Value::take).filter(|o| !o.is_null());
            let objects = (lift("/request/object"), lift("/request/oldObject"));
            serde_json::from_value::<AdmissionReview<DynamicObject>>(v).map(|r| (r, objects))
        });
        let (review, objects) = match parsed {
            Ok(r) => r,
            Err(e) => {
                self.metrics.request(endpoint.as_str(), "unknown", "bad_request", started.elapsed().as_secs_f64());
                return Answer::BadRequest(format!(
                    "the body is not an AdmissionReview (admission.k8s.io/v1): {}",
                    e.to_string().chars().take(200).collect::<String>()
                ));
            }
        };
        let req: AdmissionRequest<DynamicObject> = match review.try_into() {
            Ok(r) => r,
            Err(_) => {
                self.metrics.request(endpoint.as_str(), "unknown", "bad_request", started.elapsed().as_secs_f64());
                return Answer::BadRequest("the AdmissionReview has no request".into());
            }
        };
        let (response, result) = self.respond(endpoint, &req, objects, started).await;
        let latency = started.elapsed();
        let operation = match req.operation {
            KubeOperation::Create => "CREATE",
            KubeOperation::Update => "UPDATE",
            KubeOperation::Delete => "DELETE",
            KubeOperation::Connect => "CONNECT",
        };
        self.metrics.request(endpoint.as_str(), operation, result, latency.as_secs_f64());
        tracing::info!(
            uid = %req.uid,
            namespace = req.namespace.as_deref().unwrap_or(""),
            name = %req.name,
            operation = %operation,
            endpoint = endpoint.as_str(),
            dry_run = req.dry_run,
            verdict = result,
            warnings = response.warnings.as_ref().map_or(0, Vec::len),
            latency_us = latency.as_micros() as u64,
            "admission"
        );
        // Only a patch needs rewriting (see `base64_patch`); everything else is serialized once.
        let encoded = if response.patch.is_some() {
            serde_json::to_value(response.into_review()).and_then(|mut v| {
                base64_patch(&mut v);
                serde_json::to_vec(&v)
            })
        } else {
            serde_json::to_vec(&response.into_review())
        };
        match encoded {
            Ok(bytes) => Answer::Review(bytes),
            Err(e) => Answer::BadRequest(format!("cannot encode the response: {e}")),
        }
    }

    /// The response and the result label (allowed, denied, patched, skipped, error).
    async fn respond(
        &self,
        endpoint: Endpoint,
        req: &AdmissionRequest<DynamicObject>,
        (object, old): (Option<Value>, Option<Value>),
        started: Instant,
    ) -> (AdmissionResponse, &'static str) {
        let base = AdmissionResponse::from(req);
        let operation = match req.operation {
            KubeOperation::Create => Operation::Create,
            KubeOperation::Update => Operation::Update,
            _ => return (base, "skipped"),
        };
        if req.kind.group != "ceph.rook.io" || req.kind.kind != "CephCluster" {
            return (base, "skipped");
        }
        let Some(object) = object else {
            return (deny(base, "the request carries no object to check".into()), "denied");
        };
        let namespace = req.namespace.as_deref().unwrap_or("default");
        let review = Review::new(Request {
            operation,
            object: &object,
            old_object: old.as_ref(),
            default_namespace: namespace,
            mutate: endpoint == Endpoint::Mutate,
        });
        if endpoint == Endpoint::Mutate {
            let mutation = review.mutation();
            let warnings = mutation.warnings.iter().flat_map(|w| warning_lines(&w.to_string())).collect::<Vec<_>>();
            let patched = !mutation.patch.0.is_empty();
            let mut response = if patched {
                match base.clone().with_patch(mutation.patch.clone()) {
                    Ok(r) => r,
                    Err(e) => return (deny(base, format!("internal error: cannot encode the patch ({e})")), "error"),
                }
            } else {
                base
            };
            if !warnings.is_empty() {
                response.warnings = Some(warnings);
            }
            return (response, if patched { "patched" } else { "allowed" });
        }
        let snapshot = self.secrets.snapshot(review.namespace(), &review.secret_names(), self.secrets_timeout).await;
        let mut outcome = review.evaluate(&snapshot, now(), self.unavailable);
        let mode = self.prober.mode();
        if outcome.allowed
            && mode != ProbeMode::Off
            && let Some(target) = review.probe_target(&snapshot)
        {
            // Leave time to answer: the probe ends before the request deadline.
            let left = self.request_timeout.saturating_sub(started.elapsed() + Duration::from_millis(250));
            let report = self.prober.probe(&target, left).await;
            review.add_probe(&mut outcome, &report, mode);
        }
        let warnings: Vec<String> = outcome.warnings.iter().flat_map(|w| warning_lines(&w.to_string())).collect();
        let mut response = if outcome.allowed {
            base
        } else {
            deny(base, outcome.errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))
        };
        if !warnings.is_empty() {
            response.warnings = Some(warnings);
        }
        let result = if outcome.allowed { "allowed" } else { "denied" };
        (response, result)
    }
}

/// kube-core serializes `patch` as a JSON array of bytes; the API server's Go type is `[]byte`,
/// whose canonical JSON form is a base64 string, which is what every Go webhook sends. Send that.
fn base64_patch(review: &mut Value) {
    use base64::Engine as _;
    let Some(patch) = review.pointer_mut("/response/patch") else { return };
    let Some(bytes) =
        patch.as_array().map(|a| a.iter().filter_map(Value::as_u64).map(|b| b as u8).collect::<Vec<u8>>())
    else {
        return;
    };
    *patch = Value::String(base64::engine::general_purpose::STANDARD.encode(bytes));
}

/// A denial with HTTP status 422 (Unprocessable Entity) and reason Invalid, as the API server
/// would give for a schema violation.
fn deny(response: AdmissionResponse, message: String) -> AdmissionResponse {
    let mut response = response.deny(message);
    response.result.code = 422;
    response.result.reason = "Invalid".into();
    response
}

fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warnings_are_split_under_120_characters() {
        let long = "spec.security.kms.connectionDetails.VAULT_ADDR: VAULT_ADDR uses http://: the Vault token and the OSD keys cross the network in clear text; use https:// with VAULT_CACERT.";
        let lines = warning_lines(long);
        assert!(lines.len() >= 2);
        assert!(lines.iter().all(|l| l.chars().count() < 120), "{lines:?}");
        assert!(lines[1].starts_with("… "));
        let joined = lines.join(" ").replace("… ", "");
        assert_eq!(joined, long);
    }
}
