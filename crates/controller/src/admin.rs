//! The admin CLI: `keys list|verify|get|put|delete` and `migrate`, configured offline from a
//! CephCluster manifest and Secret manifests, as `rook-kms-webhook check` is.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use rook_kms::cluster::Cluster;
use rook_kms::keys::store::{KeyStore, Migrated, migrate};
use rook_kms::keys::{Kek, KeyError, PutOutcome};
use rook_kms::manifests::{self, ManifestError};
use rook_kms::probe::ProbeOptions;
use rook_kms::providers::net::{AllowRule, NetPolicy};
use rook_kms::secrets::{ManifestSecretError, ManifestSecrets, SecretSnapshot};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

use crate::key_dir::KeyDir;

/// Where a cluster's KMS configuration comes from.
#[derive(Debug, Clone, clap::Args)]
pub struct Source {
    /// The CephCluster manifest (Secret documents in it are read too).
    #[arg(long, value_name = "FILE", required_unless_present = "live", conflicts_with = "live")]
    pub cluster: Option<PathBuf>,
    /// Read the CephCluster and its Secrets from the live cluster (KUBECONFIG or in-cluster),
    /// and Rook's key Secrets too, instead of from files (`keys` only).
    #[arg(long, value_name = "NAMESPACE/NAME")]
    pub live: Option<String>,
    /// Secret manifests the CephCluster references (files or directories); may be repeated.
    #[arg(long = "secrets", value_name = "PATH")]
    pub secrets: Vec<PathBuf>,
    /// Directory of Rook's OSD key Secrets (`rook-ceph-osd-encryption-key-<pvc>.yaml`): where the
    /// default KMS keeps keys and KMIP keeps object ids. Written files can be `kubectl apply`-ed.
    #[arg(long, value_name = "DIR", default_value = "key-secrets")]
    pub key_secrets: PathBuf,
    /// Namespace for documents that name none.
    #[arg(short = 'n', long, default_value = "default")]
    pub namespace: String,
    /// Destinations the tool may connect to (CIDR or host suffix); default: anything except
    /// link-local and cloud-metadata addresses.
    #[arg(long, value_delimiter = ',', value_name = "CIDR|HOST")]
    pub allow: Vec<String>,
    /// Extra CA certificates (PEM) trusted where the cluster names no CA.
    #[arg(long, value_name = "FILE")]
    pub ca_file: Option<PathBuf>,
    /// Seconds each connection may take.
    #[arg(long, default_value_t = 10.0)]
    pub timeout: f64,
}

#[derive(Debug, clap::Subcommand)]
pub enum KeysCommand {
    /// The PVCs that have a key in the store (as far as the store can list).
    List,
    /// Checks, read-only, that each PVC's key exists and is readable (all listed PVCs by default).
    Verify { pvcs: Vec<String> },
    /// Prints a key's fingerprint (SHA-256 prefix); the key itself only with --reveal.
    Get {
        pvc: String,
        #[arg(long)]
        reveal: bool,
    },
    /// Stores a new key in Rook's format (128 random bytes, base64) unless the PVC has one.
    Put { pvc: String },
    /// Deletes a PVC's key (KV v2: every version). Needs --yes.
    Delete {
        pvc: String,
        #[arg(long)]
        yes: bool,
    },
}

#[derive(Debug, clap::Args)]
pub struct KeysArgs {
    #[command(flatten)]
    pub source: Source,
    #[command(subcommand)]
    pub command: KeysCommand,
}

#[derive(Debug, clap::Args)]
pub struct MigrateArgs {
    /// The current configuration (where the keys are now).
    #[command(flatten)]
    pub source: Source,
    /// The new CephCluster manifest (where the keys go); its Secrets come from --secrets too.
    #[arg(long, value_name = "FILE")]
    pub to: PathBuf,
    /// Key Secrets directory of the new configuration (default: the same as --key-secrets).
    #[arg(long, value_name = "DIR")]
    pub to_key_secrets: Option<PathBuf>,
    /// Only these PVCs (default: every PVC the current store lists).
    #[arg(long = "pvc", value_name = "PVC")]
    pub pvcs: Vec<String>,
    /// Write to the new store; without it, only report what would be copied.
    #[arg(long)]
    pub apply: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    #[error(transparent)]
    Secret(#[from] ManifestSecretError),
    #[error("{0}: holds no CephCluster")]
    NoCluster(String),
    #[error("{0}: holds more than one CephCluster; give one per file")]
    ManyClusters(String),
    #[error("{0}: the CephCluster cannot be read: {1}")]
    BadCluster(String, String),
    #[error("--allow: {0}")]
    Allow(String),
    #[error("--ca-file {0}: {1}")]
    CaFile(String, String),
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error("refusing to delete without --yes")]
    NotConfirmed,
    #[error("cannot start the async runtime: {0}")]
    Runtime(std::io::Error),
    #[error("--live takes NAMESPACE/NAME, not {0:?}")]
    LiveName(String),
    #[error("migrate reads manifests: give --cluster (and --to)")]
    NeedsManifest,
    #[error("the Kubernetes API: {0}")]
    Kube(String),
    #[error("CephCluster {0} not found")]
    NotFound(String),
}

/// A cluster, its Secrets, and the connection options.
pub struct Loaded {
    pub cluster: Cluster,
    pub snapshot: SecretSnapshot,
    pub options: ProbeOptions,
}

pub fn load(source: &Source, cluster_file: &PathBuf) -> Result<Loaded, AdminError> {
    let docs = manifests::read_all(std::slice::from_ref(cluster_file))?;
    let extra = manifests::read_all(&source.secrets)?;
    let shown = cluster_file.display().to_string();
    let clusters: Vec<_> = docs.iter().filter(|d| d.is_ceph_cluster()).collect();
    let doc = match clusters.as_slice() {
        [] => return Err(AdminError::NoCluster(shown)),
        [one] => *one,
        _ => return Err(AdminError::ManyClusters(shown)),
    };
    let cluster = Cluster::from_object(&doc.value, &source.namespace).map_err(|problems| {
        AdminError::BadCluster(shown, problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))
    })?;
    let mut secrets = ManifestSecrets::default();
    for d in docs.iter().chain(&extra).filter(|d| d.is_secret()) {
        secrets.add(&d.value, &source.namespace)?;
    }
    let snapshot = secrets.snapshot(&cluster.namespace, &rook_kms::secrets::referenced_secrets(&cluster));
    Ok(Loaded { cluster, snapshot, options: options(source)? })
}

/// Connection options from the flags: by default anything except link-local and cloud metadata.
pub fn options(source: &Source) -> Result<ProbeOptions, AdminError> {
    let allow =
        if source.allow.is_empty() { vec!["0.0.0.0/0".to_string(), "::/0".to_string()] } else { source.allow.clone() };
    let rules =
        allow.iter().map(|r| r.parse::<AllowRule>()).collect::<Result<Vec<_>, _>>().map_err(AdminError::Allow)?;
    let extra_roots = match &source.ca_file {
        None => Vec::new(),
        Some(p) => {
            let pem = std::fs::read(p).map_err(|e| AdminError::CaFile(p.display().to_string(), e.to_string()))?;
            CertificateDer::pem_slice_iter(&pem).flatten().collect()
        }
    };
    let timeout = Duration::from_secs_f64(source.timeout.max(0.1));
    Ok(ProbeOptions { budget: timeout, connect_timeout: timeout, policy: NetPolicy::new(rules), extra_roots })
}

fn runtime() -> Result<tokio::runtime::Runtime, AdminError> {
    tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(AdminError::Runtime)
}

/// `keys ...`: prints what it did; exit 1 when a key is missing or an operation failed.
pub fn keys(args: &KeysArgs) -> Result<ExitCode, AdminError> {
    let ok = match (&args.source.live, &args.source.cluster) {
        (Some(live), _) => runtime()?.block_on(async {
            let client = kube::Client::try_default().await.map_err(|e| AdminError::Kube(e.to_string()))?;
            keys_live(client, live, args).await
        })?,
        (None, Some(file)) => {
            let loaded = load(&args.source, file)?;
            let dir = KeyDir::new(&args.source.key_secrets, loaded.cluster.namespace.clone());
            let store = KeyStore::for_cluster(&loaded.cluster, &loaded.snapshot, &dir, loaded.options.clone())?;
            runtime()?.block_on(run_keys(&store, &args.command))?
        }
        (None, None) => return Err(AdminError::NeedsManifest),
    };
    Ok(if ok { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// `keys` against the live cluster: the CephCluster, the Secrets it names and Rook's key
/// Secrets come from the API (`get` on cephclusters and secrets; `create`/`delete` on secrets for
/// `put`/`delete` with the default KMS or KMIP).
pub async fn keys_live(client: kube::Client, live: &str, args: &KeysArgs) -> Result<bool, AdminError> {
    let (namespace, name) = live.split_once('/').ok_or_else(|| AdminError::LiveName(live.to_string()))?;
    let api = crate::kube_api::KubeCluster { client, namespaces: vec![] };
    let object = api
        .ceph_cluster(namespace, name)
        .await
        .map_err(|e| AdminError::Kube(e.0))?
        .ok_or_else(|| AdminError::NotFound(live.to_string()))?;
    let cluster = Cluster::from_object(&object, namespace).map_err(|problems| {
        AdminError::BadCluster(
            live.to_string(),
            problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "),
        )
    })?;
    let mut snapshot = SecretSnapshot::default();
    for secret in rook_kms::secrets::referenced_secrets(&cluster) {
        let got = crate::api::ClusterApi::secret(&api, namespace, &secret)
            .await
            .map_err(|e| rook_kms::secrets::SecretSourceError { reason: e.0 });
        snapshot.insert(secret, got);
    }
    let key_secrets = crate::api::ClusterApi::key_secrets(&api, namespace);
    let store = KeyStore::for_cluster(&cluster, &snapshot, &key_secrets, options(&args.source)?)?;
    run_keys(&store, &args.command).await
}

/// One `keys` subcommand against a store; `Ok(false)` when a key is missing or unreadable.
pub async fn run_keys<S: rook_kms::keys::kube::SecretStore>(
    store: &KeyStore<'_, S>,
    command: &KeysCommand,
) -> Result<bool, AdminError> {
    match command {
        KeysCommand::List => {
            for pvc in store.list().await? {
                println!("{pvc}");
            }
            Ok(true)
        }
        KeysCommand::Verify { pvcs } => {
            let pvcs = if pvcs.is_empty() { store.list().await? } else { pvcs.clone() };
            let mut ok = true;
            for pvc in &pvcs {
                match store.get(pvc).await {
                    Ok(Some(kek)) => println!("OK       {pvc} {}", kek.fingerprint()),
                    Ok(None) => {
                        ok = false;
                        println!("MISSING  {pvc}");
                    }
                    Err(e) => {
                        ok = false;
                        println!("ERROR    {pvc} {e}");
                    }
                }
            }
            println!("{} keys checked in the {} store", pvcs.len(), store.provider());
            Ok(ok)
        }
        KeysCommand::Get { pvc, reveal } => match store.get(pvc).await? {
            Some(kek) if *reveal => {
                println!("{}", kek.expose());
                Ok(true)
            }
            Some(kek) => {
                println!("{pvc} {}", kek.fingerprint());
                Ok(true)
            }
            None => {
                eprintln!("no key for {pvc} in the {} store", store.provider());
                Ok(false)
            }
        },
        KeysCommand::Put { pvc } => {
            let kek = Kek::generate()?;
            match store.put(pvc, &kek).await? {
                PutOutcome::Created => println!("created  {pvc} {}", kek.fingerprint()),
                PutOutcome::Exists { .. } => println!("exists   {pvc} (kept; keys are never overwritten)"),
            }
            Ok(true)
        }
        KeysCommand::Delete { pvc, yes } => {
            if !yes {
                return Err(AdminError::NotConfirmed);
            }
            if store.delete(pvc).await? {
                println!("deleted  {pvc}");
            } else {
                println!("absent   {pvc}");
            }
            Ok(true)
        }
    }
}

/// `migrate`: one line per PVC; exit 1 when any PVC failed or conflicts.
pub fn migrate_keys(args: &MigrateArgs) -> Result<ExitCode, AdminError> {
    let from = load(&args.source, args.source.cluster.as_ref().ok_or(AdminError::NeedsManifest)?)?;
    let to = load(&args.source, &args.to)?;
    let from_dir = KeyDir::new(&args.source.key_secrets, from.cluster.namespace.clone());
    let to_dir =
        KeyDir::new(args.to_key_secrets.as_ref().unwrap_or(&args.source.key_secrets), to.cluster.namespace.clone());
    let source = KeyStore::for_cluster(&from.cluster, &from.snapshot, &from_dir, from.options.clone())?;
    let dest = KeyStore::for_cluster(&to.cluster, &to.snapshot, &to_dir, to.options.clone())?;
    runtime()?.block_on(async {
        let pvcs = if args.pvcs.is_empty() { source.list().await? } else { args.pvcs.clone() };
        let report = migrate(&source, &dest, &pvcs, args.apply).await;
        let mut ok = true;
        for (pvc, outcome) in &report {
            let line = match outcome {
                Migrated::Copied => "copied and verified".to_string(),
                Migrated::WouldCopy => "would copy (dry run; add --apply)".to_string(),
                Migrated::AlreadyThere => "already in the new store (same key)".to_string(),
                Migrated::Conflict => {
                    ok = false;
                    "CONFLICT: the new store holds a different key; nothing changed".to_string()
                }
                Migrated::MissingInSource => {
                    ok = false;
                    "MISSING in the current store".to_string()
                }
                Migrated::Failed(why) => {
                    ok = false;
                    format!("FAILED: {why}")
                }
            };
            println!("{pvc}: {line}");
        }
        println!(
            "{} PVCs, {} -> {}{}",
            report.len(),
            source.provider(),
            dest.provider(),
            if args.apply { "" } else { " (dry run)" }
        );
        if ok && args.apply {
            println!("next: apply the new CephCluster with the annotation rook-kms-webhook/allow-kms-change: \"true\"");
        }
        Ok(if ok { ExitCode::SUCCESS } else { ExitCode::from(1) })
    })
}
