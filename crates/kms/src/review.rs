//! One admission review, the way the API server runs it: mutate (when allowed to), then validate
//! the mutated object; on UPDATE also the old object, for ratcheting and the change rules.
//! `check` and `serve` both go through here, so they always agree.

use std::collections::BTreeSet;

use json_patch::Patch;
use serde::Serialize;
use serde_json::Value;

use crate::cluster::Cluster;
use crate::mutate::{Mutation, mutate};
use crate::probe::{ProbeMode, ProbeReport, ProbeTarget, Severity};
use crate::rules::{self, Context};
use crate::secrets::{SecretSnapshot, referenced_secrets};
use crate::verdict::{Finding, Verdict};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Create,
    Update,
}

/// What is being reviewed.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub operation: Operation,
    pub object: &'a Value,
    /// The previous object, for an UPDATE.
    pub old_object: Option<&'a Value>,
    /// Namespace for objects that do not name one.
    pub default_namespace: &'a str,
    /// Whether the mutation stage runs (it still only runs where it is allowed).
    pub mutate: bool,
}

/// The answer for one CephCluster.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Outcome {
    pub name: String,
    pub namespace: String,
    pub allowed: bool,
    pub errors: Vec<Finding>,
    pub warnings: Vec<Finding>,
    pub patch: Patch,
}

/// What to do when a referenced Secret cannot be read in time (the API is unreachable, access is
/// forbidden): the verdict cannot be complete.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SecretsUnavailable {
    /// Deny, saying the Secrets could not be read (fail closed).
    #[default]
    Deny,
    /// Allow, with a warning that the Secrets were not checked (fail open).
    Allow,
}

/// A parsed (and, where allowed, mutated) review, waiting for its Secrets.
#[derive(Debug, Clone)]
pub struct Review {
    name: String,
    namespace: String,
    cluster: Result<Cluster, Vec<Finding>>,
    old: Option<Cluster>,
    mutation: Mutation,
    /// CREATE, or an UPDATE that changed the kms or keyRotation settings.
    kms_changed: bool,
}

impl Review {
    pub fn new(req: Request<'_>) -> Self {
        let parsed = Cluster::from_object(req.object, req.default_namespace);
        let name = req.object.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default().to_string();
        let namespace = match &parsed {
            Ok(c) => c.namespace.clone(),
            Err(_) => req
                .object
                .pointer("/metadata/namespace")
                .and_then(Value::as_str)
                .unwrap_or(req.default_namespace)
                .to_string(),
        };
        let old = match (req.operation, req.old_object) {
            (Operation::Update, Some(old)) => Cluster::from_object(old, req.default_namespace).ok(),
            _ => None,
        };
        let mut mutation = Mutation::default();
        let kms_changed = kms_changed(&req);
        let cluster = match parsed {
            Ok(cluster) if req.mutate && kms_changed => {
                mutation = mutate(&cluster);
                apply(req.object, &mutation.patch, req.default_namespace).unwrap_or(Ok(cluster))
            }
            other => other,
        };
        Self { name, namespace, cluster, old, mutation, kms_changed }
    }

    /// What the live probe would check, given the Secrets (`None`: nothing to probe).
    pub fn probe_target(&self, secrets: &SecretSnapshot) -> Option<ProbeTarget> {
        crate::probe::target(self.cluster.as_ref().ok()?, secrets)
    }

    /// Adds the probe's findings to an outcome. Under [`ProbeMode::Enforce`] failures deny, but
    /// only when the kms settings are new or changed: an unrelated edit of an old cluster is never
    /// blocked by the KMS being down (ratcheting); it gets the findings as warnings.
    pub fn add_probe(&self, outcome: &mut Outcome, report: &ProbeReport, mode: ProbeMode) {
        let deny = mode == ProbeMode::Enforce && self.kms_changed;
        for f in &report.findings {
            let finding = Finding::new(f.field.clone(), f.message.clone());
            if deny && f.severity == Severity::Fail {
                outcome.errors.push(finding);
            } else {
                outcome.warnings.push(finding);
            }
        }
        outcome.allowed = outcome.errors.is_empty();
    }

    /// The mutation computed for this review (empty where mutation is not allowed).
    pub fn mutation(&self) -> &Mutation {
        &self.mutation
    }

    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The Secrets (in [`Self::namespace`]) the rules need to see.
    pub fn secret_names(&self) -> BTreeSet<String> {
        let mut names = self.cluster.as_ref().map(referenced_secrets).unwrap_or_default();
        if let Some(old) = &self.old {
            names.extend(referenced_secrets(old));
        }
        names
    }

    /// The verdict, given the Secrets, the time (Unix seconds) and what to do about Secrets that
    /// could not be read.
    pub fn evaluate(&self, secrets: &SecretSnapshot, now: i64, unavailable: SecretsUnavailable) -> Outcome {
        let mut verdict = match &self.cluster {
            Err(problems) => Verdict { errors: problems.clone(), ..Verdict::default() },
            Ok(cluster) => {
                let ctx = Context { cluster, secrets, now };
                match &self.old {
                    Some(old) => rules::validate_update(&ctx, &Context { cluster: old, secrets, now }),
                    None => rules::validate(&ctx),
                }
            }
        };
        let unreadable = std::mem::take(&mut verdict.unreadable);
        match unavailable {
            SecretsUnavailable::Deny => verdict.errors.extend(unreadable),
            SecretsUnavailable::Allow => verdict.warnings.extend(unreadable.into_iter().map(|f| Finding {
                message: format!("{} Allowed without checking it (--secrets-unavailable=allow).", f.message),
                field: f.field,
            })),
        }
        let mut warnings = self.mutation.warnings.clone();
        warnings.extend(verdict.warnings);
        Outcome {
            name: self.name.clone(),
            namespace: self.namespace.clone(),
            allowed: verdict.errors.is_empty(),
            errors: verdict.errors,
            warnings,
            patch: self.mutation.patch.clone(),
        }
    }
}

/// Whether this is a CREATE or an UPDATE that changed the kms or keyRotation block. Mutation
/// happens only then (every change to connectionDetails rolls every encrypted OSD), and only then
/// may a probe failure deny.
fn kms_changed(req: &Request<'_>) -> bool {
    match (req.operation, req.old_object) {
        (Operation::Create, _) | (Operation::Update, None) => true,
        (Operation::Update, Some(old)) => {
            ["/spec/security/kms", "/spec/security/keyRotation"].iter().any(|p| req.object.pointer(p) != old.pointer(p))
        }
    }
}

/// The object after the patch, parsed again. `None` when there is nothing to apply or the patch
/// does not apply (which would be a bug; the unmutated object is then validated).
fn apply(object: &Value, patch: &Patch, default_namespace: &str) -> Option<Result<Cluster, Vec<Finding>>> {
    if patch.0.is_empty() {
        return None;
    }
    let mut mutated = object.clone();
    json_patch::patch(&mut mutated, patch).ok()?;
    Some(Cluster::from_object(&mutated, default_namespace))
}
