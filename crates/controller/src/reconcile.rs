//! One verification pass: for every CephCluster with a KMS and encrypted device sets, check,
//! read-only, that each encrypted OSD PVC's key exists and is readable in the configured KMS, and
//! find keys whose PVC is gone. The controller never creates OSD keys (Rook does).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use rook_kms::cluster::Cluster;
use rook_kms::keys::store::KeyStore;
use rook_kms::probe::ProbeOptions;
use rook_kms::secrets::{SecretSnapshot, SecretSourceError};
use serde_json::Value;

use crate::api::{ApiError, ClusterApi, Event, Pvc};

/// Label Rook puts on device-set PVCs: the device set's name.
pub const DEVICE_SET_LABEL: &str = "ceph.rook.io/DeviceSet";
/// Label Rook puts on device-set PVCs: `<set>-<template>-<index>`.
pub const PVC_ID_LABEL: &str = "ceph.rook.io/DeviceSetPVCId";

/// What one pass found for one cluster.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ClusterKeys {
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub provider: String,
    pub verified: Vec<String>,
    pub missing: Vec<String>,
    pub unreadable: Vec<(String, String)>,
    pub orphaned: Vec<String>,
    /// The KMS (or its configuration) could not be used at all.
    pub unreachable: Option<String>,
    pub seconds: f64,
}

impl ClusterKeys {
    pub fn healthy(&self) -> bool {
        self.unreachable.is_none() && self.missing.is_empty() && self.unreadable.is_empty()
    }
}

/// The data PVCs of the encrypted device sets (one key per OSD; the metadata and WAL PVCs of an
/// OSD share its data PVC's key). Rook names them `<set>-<template>-<index>-<suffix>`; templates
/// named `metadata` and `wal` are not data.
pub fn osd_data_pvcs(cluster: &Cluster, pvcs: &[Pvc]) -> Vec<String> {
    let sets: BTreeSet<&str> = cluster.device_sets.iter().filter(|d| d.encrypted).map(|d| d.name.as_str()).collect();
    let mut out: Vec<String> = pvcs
        .iter()
        .filter(|p| p.labels.get(DEVICE_SET_LABEL).is_some_and(|s| sets.contains(s.as_str())))
        .filter(|p| {
            let set = p.labels.get(DEVICE_SET_LABEL).map(String::as_str).unwrap_or_default();
            let id = p.labels.get(PVC_ID_LABEL).unwrap_or(&p.name);
            let template = id.strip_prefix(set).and_then(|rest| rest.strip_prefix('-')).unwrap_or(id);
            !(template.starts_with("metadata-") || template.starts_with("wal-"))
        })
        .map(|p| p.name.clone())
        .collect();
    out.sort();
    out
}

/// Verifies one cluster's keys. `None`: the cluster has no KMS or no encrypted device set.
pub async fn verify_cluster<A: ClusterApi>(api: &A, object: &Value, options: &ProbeOptions) -> Option<ClusterKeys> {
    let cluster = Cluster::from_object(object, "default").ok()?;
    if !cluster.kms.is_enabled() || !cluster.has_encrypted_device_sets() {
        return None;
    }
    let started = Instant::now();
    let mut report = ClusterKeys {
        namespace: cluster.namespace.clone(),
        name: cluster.name.clone(),
        uid: object.pointer("/metadata/uid").and_then(Value::as_str).unwrap_or_default().to_string(),
        provider: cluster.kms.param(rook_kms::config::KMS_PROVIDER).unwrap_or_default().to_string(),
        ..ClusterKeys::default()
    };
    let mut snapshot = SecretSnapshot::default();
    for name in rook_kms::secrets::referenced_secrets(&cluster) {
        let got = api.secret(&cluster.namespace, &name).await.map_err(|e| SecretSourceError { reason: e.0 });
        snapshot.insert(name, got);
    }
    let key_secrets = api.key_secrets(&cluster.namespace);
    let store = match KeyStore::for_cluster(&cluster, &snapshot, &key_secrets, options.clone()) {
        Ok(s) => s,
        Err(e) => {
            report.unreachable = Some(e.to_string());
            report.seconds = started.elapsed().as_secs_f64();
            return Some(report);
        }
    };
    let pvcs = match api.pvcs(&cluster.namespace).await {
        Ok(p) => p,
        Err(e) => {
            report.unreachable = Some(format!("cannot list PVCs: {e}"));
            return Some(report);
        }
    };
    for pvc in osd_data_pvcs(&cluster, &pvcs) {
        match store.get(&pvc).await {
            Ok(Some(_)) => report.verified.push(pvc),
            Ok(None) => report.missing.push(pvc),
            Err(e) => report.unreadable.push((pvc, e.to_string())),
        }
    }
    if report.verified.is_empty()
        && report.missing.is_empty()
        && let Some((_, first)) = report.unreadable.first()
    {
        report.unreachable = Some(first.clone());
    }
    if report.unreachable.is_none()
        && let Ok(listed) = store.list().await
    {
        let existing: BTreeSet<&str> = pvcs.iter().map(|p| p.name.as_str()).collect();
        report.orphaned = listed.into_iter().filter(|k| !existing.contains(k.as_str())).collect();
    }
    report.seconds = started.elapsed().as_secs_f64();
    Some(report)
}

fn list(names: &[String]) -> String {
    let shown: Vec<&str> = names.iter().take(5).map(String::as_str).collect();
    let more = names.len().saturating_sub(shown.len());
    if more > 0 { format!("{} and {more} more", shown.join(", ")) } else { shown.join(", ") }
}

/// The Events a report calls for.
pub fn events(r: &ClusterKeys) -> Vec<Event> {
    let event = |kind, reason, message: String| Event {
        namespace: r.namespace.clone(),
        cluster: r.name.clone(),
        cluster_uid: r.uid.clone(),
        kind,
        reason,
        message,
    };
    let kms = if r.provider.is_empty() { "configured".to_string() } else { r.provider.clone() };
    let mut out = Vec::new();
    if let Some(why) = &r.unreachable {
        out.push(event("Warning", "KmsUnreachable", format!("Cannot verify OSD keys in the {kms} KMS: {why}")));
        return out;
    }
    if !r.missing.is_empty() {
        out.push(event(
            "Warning",
            "KeyMissing",
            format!(
                "{} encrypted OSD PVCs have no key in the {kms} KMS, so their OSDs cannot start: {}",
                r.missing.len(),
                list(&r.missing)
            ),
        ));
    }
    if !r.unreadable.is_empty() {
        let names: Vec<String> = r.unreadable.iter().map(|(p, _)| p.clone()).collect();
        out.push(event(
            "Warning",
            "KmsUnreachable",
            format!(
                "{} OSD keys could not be read from the {kms} KMS ({}): {}",
                names.len(),
                r.unreadable[0].1,
                list(&names)
            ),
        ));
    }
    if !r.orphaned.is_empty() {
        out.push(event(
            "Warning",
            "OrphanedKeys",
            format!(
                "{} keys in the {kms} KMS belong to PVCs that no longer exist: {}",
                r.orphaned.len(),
                list(&r.orphaned)
            ),
        ));
    }
    if out.is_empty() {
        out.push(event(
            "Normal",
            "KeysVerified",
            format!("All {} OSD keys are readable in the {kms} KMS", r.verified.len()),
        ));
    }
    out
}

/// Remembers what was last reported per cluster, so an unchanged state is not re-announced.
#[derive(Debug, Default)]
pub struct Announcer {
    last: BTreeMap<(String, String), Vec<(&'static str, String)>>,
}

impl Announcer {
    /// Sends the report's Events unless they equal the last ones sent for the cluster.
    pub async fn announce<A: ClusterApi>(&mut self, api: &A, report: &ClusterKeys) -> Result<usize, ApiError> {
        let events = events(report);
        let key = (report.namespace.clone(), report.name.clone());
        let signature: Vec<(&'static str, String)> = events.iter().map(|e| (e.reason, e.message.clone())).collect();
        if self.last.get(&key) == Some(&signature) {
            return Ok(0);
        }
        for e in &events {
            api.event(e).await?;
        }
        self.last.insert(key, signature);
        Ok(events.len())
    }
}
