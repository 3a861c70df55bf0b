//! `rook-kms-webhook check`: the webhook's verdicts, offline.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use rook_kms::review::{Operation, Outcome, Request, Review, SecretsUnavailable};
use rook_kms::secrets::{ManifestSecretError, ManifestSecrets};
use serde_json::Value;

use rook_kms::probe::ProbeMode;

use crate::manifests::{self, Document, ManifestError};
use crate::probe::Prober;
use crate::{CheckArgs, Output};

#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    #[error("{source_file}: {error}")]
    Secret { source_file: String, error: ManifestSecretError },
    #[error("cannot write the output: {0}")]
    Output(#[from] serde_json::Error),
    #[error(transparent)]
    Probe(#[from] crate::probe::ProbeSetupError),
    #[error("cannot start the probe runtime: {0}")]
    Runtime(std::io::Error),
}

/// Runs the command and maps the result to the documented exit status.
pub fn run(args: &CheckArgs) -> ExitCode {
    let outcomes = match evaluate(args, now()) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let printed = match args.output {
        Output::Json => serde_json::to_string_pretty(&outcomes).map(|s| println!("{s}")),
        Output::Text => {
            print!("{}", text(&outcomes));
            Ok(())
        }
    };
    if let Err(e) = printed {
        eprintln!("error: {}", CheckError::Output(e));
        return ExitCode::from(2);
    }
    if outcomes.is_empty() {
        eprintln!("note: the input holds no CephCluster (apiVersion ceph.rook.io/v1, kind CephCluster)");
    }
    if outcomes.iter().all(|o| o.allowed) { ExitCode::SUCCESS } else { ExitCode::from(1) }
}

fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

/// Every CephCluster in the inputs, reviewed as the webhook would review it.
pub fn evaluate(args: &CheckArgs, now: i64) -> Result<Vec<Outcome>, CheckError> {
    let docs = manifests::read_all(&args.inputs)?;
    let secret_docs = manifests::read_all(&args.secrets)?;
    let mut secrets = ManifestSecrets::default();
    for doc in docs.iter().chain(&secret_docs).filter(|d| d.is_secret()) {
        secrets
            .add(&doc.value, &args.namespace)
            .map_err(|error| CheckError::Secret { source_file: doc.source.clone(), error })?;
    }
    let old_docs = match &args.old {
        Some(path) => manifests::read_all(std::slice::from_ref(path))?,
        None => Vec::new(),
    };
    let old: BTreeMap<(String, String), &Value> =
        old_docs.iter().filter(|d| d.is_ceph_cluster()).map(|d| (key(d, &args.namespace), &d.value)).collect();
    let reviewed: Vec<_> = docs
        .iter()
        .filter(|d| d.is_ceph_cluster())
        .map(|doc| {
            let old_object = old.get(&key(doc, &args.namespace)).copied();
            let review = Review::new(Request {
                operation: if old_object.is_some() { Operation::Update } else { Operation::Create },
                object: &doc.value,
                old_object,
                default_namespace: &args.namespace,
                mutate: !args.no_mutate,
            });
            let snapshot = secrets.snapshot(review.namespace(), &review.secret_names());
            let outcome = review.evaluate(&snapshot, now, SecretsUnavailable::Deny);
            (review, snapshot, outcome)
        })
        .collect();
    let mode = ProbeMode::from(args.probe);
    if mode == ProbeMode::Off {
        return Ok(reviewed.into_iter().map(|(_, _, o)| o).collect());
    }
    let prober = Prober::new(mode, &args.probe_args, None)?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(CheckError::Runtime)?;
    Ok(runtime.block_on(async {
        let mut outcomes = Vec::new();
        for (review, snapshot, mut outcome) in reviewed {
            if outcome.allowed
                && let Some(target) = review.probe_target(&snapshot)
            {
                let report = prober.probe(&target, prober.budget()).await;
                review.add_probe(&mut outcome, &report, mode);
            }
            outcomes.push(outcome);
        }
        outcomes
    }))
}

fn key(doc: &Document, default_namespace: &str) -> (String, String) {
    let get = |p: &str| doc.value.pointer(p).and_then(Value::as_str).map(str::to_string);
    (
        get("/metadata/namespace").unwrap_or_else(|| default_namespace.to_string()),
        get("/metadata/name").unwrap_or_default(),
    )
}

/// The human-readable report.
pub fn text(outcomes: &[Outcome]) -> String {
    let mut s = String::new();
    for o in outcomes {
        let verdict = if o.allowed { "ALLOWED" } else { "DENIED" };
        s.push_str(&format!("{verdict} CephCluster {}/{}\n", o.namespace, o.name));
        for e in &o.errors {
            s.push_str(&format!("  error    {e}\n"));
        }
        for w in &o.warnings {
            s.push_str(&format!("  warning  {w}\n"));
        }
        for op in &o.patch.0 {
            let op = serde_json::to_value(op).unwrap_or_default();
            let verb = op.get("op").and_then(Value::as_str).unwrap_or_default();
            let path = op.get("path").and_then(Value::as_str).unwrap_or_default();
            match op.get("value") {
                Some(v) => s.push_str(&format!("  patch    {verb} {path} = {v}\n")),
                None => s.push_str(&format!("  patch    {verb} {path}\n")),
            }
        }
    }
    s
}
