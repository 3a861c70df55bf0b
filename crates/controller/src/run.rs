//! `rook-kms-controller run`: the verification loop, leader election, Events, and the health
//! listener (`/livez`, `/readyz`, `/metrics`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use rook_kms::probe::ProbeOptions;
use rook_kms::providers::net::{AllowRule, NetPolicy};

use crate::api::ClusterApi;
use crate::leader::Elector;
use crate::reconcile::{Announcer, ClusterKeys, verify_cluster};

#[derive(Debug, Clone, clap::Args)]
pub struct RunArgs {
    /// Seconds between verification passes.
    #[arg(long, default_value_t = 300.0)]
    pub interval: f64,
    /// Only CephClusters in these namespaces (repeatable; default: all namespaces).
    #[arg(long)]
    pub watch_namespace: Vec<String>,
    /// Namespace of the leader-election Lease (default: $POD_NAMESPACE, else rook-ceph).
    #[arg(long)]
    pub lease_namespace: Option<String>,
    #[arg(long, default_value = "rook-kms-controller")]
    pub lease_name: String,
    /// This replica's identity in the Lease (default: $HOSTNAME, the pod name).
    #[arg(long)]
    pub identity: Option<String>,
    /// Seconds a Lease holds without renewal.
    #[arg(long, default_value_t = 15)]
    pub lease_duration: u64,
    /// Plain-HTTP address for /livez, /readyz and /metrics.
    #[arg(long, default_value = "0.0.0.0:8081")]
    pub health_listen: SocketAddr,
    /// Destinations the controller may connect to (CIDR or host suffix); default: anything
    /// except link-local and cloud-metadata addresses.
    #[arg(long, value_delimiter = ',')]
    pub allow: Vec<String>,
    /// Seconds each KMS connection may take.
    #[arg(long, default_value_t = 10.0)]
    pub timeout: f64,
    /// Manage the webhook's serving certificate: keep a CA in --ca-secret, issue and renew the
    /// certificate in --tls-secret, write caBundle into both webhook configurations.
    #[arg(long, requires_all = ["webhook_service", "ca_secret", "tls_secret", "validating_webhook", "mutating_webhook"])]
    pub webhook_certs: bool,
    /// The webhook's Service (in $POD_NAMESPACE), for the certificate's names.
    #[arg(long)]
    pub webhook_service: Option<String>,
    #[arg(long)]
    pub ca_secret: Option<String>,
    #[arg(long)]
    pub tls_secret: Option<String>,
    #[arg(long)]
    pub validating_webhook: Option<String>,
    #[arg(long)]
    pub mutating_webhook: Option<String>,
    /// Lifetime of the serving certificate in days (renewed after two thirds).
    #[arg(long, default_value_t = 90)]
    pub leaf_days: i64,
}

impl RunArgs {
    /// The certificate settings, when --webhook-certs is on.
    pub fn cert_settings(&self, namespace: &str) -> Option<crate::certs::CertSettings> {
        if !self.webhook_certs {
            return None;
        }
        Some(crate::certs::CertSettings {
            namespace: namespace.to_string(),
            service: self.webhook_service.clone()?,
            ca_secret: self.ca_secret.clone()?,
            tls_secret: self.tls_secret.clone()?,
            validating: self.validating_webhook.clone()?,
            mutating: self.mutating_webhook.clone()?,
            leaf_days: self.leaf_days.clamp(1, 397),
            ca_days: 3650,
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("--allow: {0}")]
    Allow(String),
    #[error("cannot listen on {0}: {1}")]
    Bind(SocketAddr, std::io::Error),
    #[error("cannot create the Kubernetes client: {0}")]
    Kube(#[from] kube::Error),
}

type Labels = Vec<(&'static str, String)>;

/// The controller's metrics.
#[derive(Clone)]
pub struct Metrics {
    registry: Arc<Registry>,
    keys: Family<Labels, Gauge>,
    duration: Family<Labels, Histogram>,
    last_success: Family<Labels, Gauge>,
    leader: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("rook_kms_controller");
        let keys = Family::<Labels, Gauge>::default();
        let duration = Family::<Labels, Histogram>::new_with_constructor(|| {
            Histogram::new([0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 120.0])
        });
        let last_success = Family::<Labels, Gauge>::default();
        let leader = Gauge::default();
        registry.register(
            "keys",
            "OSD keys by cluster and state (verified, missing, unreadable, orphaned)",
            keys.clone(),
        );
        registry.register(
            "verify_duration_seconds",
            "Time to verify one cluster's keys, by provider",
            duration.clone(),
        );
        registry.register(
            "last_success_timestamp_seconds",
            "When a cluster's keys were last all verified (Unix time)",
            last_success.clone(),
        );
        registry.register("leader", "1 while this replica holds the Lease", leader.clone());
        Self { registry: Arc::new(registry), keys, duration, last_success, leader }
    }
}

impl Metrics {
    pub fn record(&self, r: &ClusterKeys, now_secs: i64) {
        for (state, n) in [
            ("verified", r.verified.len()),
            ("missing", r.missing.len()),
            ("unreadable", r.unreadable.len()),
            ("orphaned", r.orphaned.len()),
        ] {
            self.keys
                .get_or_create(&vec![
                    ("namespace", r.namespace.clone()),
                    ("cluster", r.name.clone()),
                    ("state", state.into()),
                ])
                .set(n as i64);
        }
        self.duration.get_or_create(&vec![("provider", r.provider.clone())]).observe(r.seconds);
        if r.healthy() {
            self.last_success
                .get_or_create(&vec![("namespace", r.namespace.clone()), ("cluster", r.name.clone())])
                .set(now_secs);
        }
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        if encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

/// How often the leader checks the webhook certificates.
const CERT_CHECK: Duration = Duration::from_secs(60);

fn now_micros() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_micros() as i64)
}

/// One verification pass over every cluster; Events only when a cluster's state changed.
pub async fn pass<A: ClusterApi>(
    api: &A,
    options: &ProbeOptions,
    announcer: &mut Announcer,
    metrics: &Metrics,
) -> Vec<ClusterKeys> {
    let clusters = match api.ceph_clusters().await {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(error = %e, "cannot list CephClusters");
            return Vec::new();
        }
    };
    let mut reports = Vec::new();
    for object in &clusters {
        let Some(report) = verify_cluster(api, object, options).await else { continue };
        metrics.record(&report, now_micros() / 1_000_000);
        tracing::info!(
            namespace = %report.namespace,
            cluster = %report.name,
            provider = %report.provider,
            verified = report.verified.len(),
            missing = report.missing.len(),
            unreadable = report.unreadable.len(),
            orphaned = report.orphaned.len(),
            unreachable = report.unreachable.is_some(),
            "keys verified"
        );
        if let Err(e) = announcer.announce(api, &report).await {
            tracing::warn!(error = %e, cluster = %report.name, "cannot write an Event");
        }
        reports.push(report);
    }
    reports
}

/// Runs until `shutdown`: leads or stands by, verifies every `interval` while leading.
/// When verification passes run.
#[derive(Debug, Clone)]
pub struct Schedule {
    /// At least this often.
    pub interval: Duration,
    /// Sooner when `changes` is signalled (a CephCluster or a device-set PVC changed), but not
    /// more often than this.
    pub min_gap: Duration,
    pub changes: Option<Arc<tokio::sync::Notify>>,
}

#[allow(clippy::too_many_arguments)] // the loop's settings, each used once
pub async fn run_loop<A: ClusterApi + crate::certs::CertApi>(
    api: &A,
    elector: &Elector,
    certs: Option<&crate::certs::CertSettings>,
    options: &ProbeOptions,
    schedule: &Schedule,
    metrics: &Metrics,
    ready: &AtomicBool,
    shutdown: impl Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    let mut announcer = Announcer::default();
    let renew = (elector.duration / 3).max(Duration::from_secs(1));
    let mut last_pass: Option<tokio::time::Instant> = None;
    let mut last_certs: Option<tokio::time::Instant> = None;
    let mut changed = false;
    loop {
        let leading = match elector.try_lead(api, now_micros()).await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "leader election failed");
                false
            }
        };
        ready.store(true, Ordering::SeqCst);
        metrics.leader.set(i64::from(leading));
        if leading
            && let Some(settings) = certs
            && last_certs.is_none_or(|t| t.elapsed() >= CERT_CHECK)
        {
            let now = time::OffsetDateTime::now_utc();
            match crate::certs::reconcile(api, settings, now).await {
                Ok(report) => {
                    last_certs = Some(tokio::time::Instant::now());
                    if report != crate::certs::CertReport::default() {
                        tracing::info!(
                            ca_created = report.ca_created,
                            ca_rotated = report.ca_rotated,
                            leaf_issued = report.leaf_issued.unwrap_or(""),
                            bundles = report.bundles_written.join(","),
                            "webhook certificates updated"
                        );
                    }
                }
                Err(e) => tracing::warn!(error = %e, "cannot manage the webhook certificates"),
            }
        }
        if !leading {
            last_pass = None;
            last_certs = None;
        } else if last_pass.is_none_or(|t| t.elapsed() >= schedule.interval)
            || (changed && last_pass.is_none_or(|t| t.elapsed() >= schedule.min_gap))
        {
            pass(api, options, &mut announcer, metrics).await;
            last_pass = Some(tokio::time::Instant::now());
            changed = false;
        }
        let change = async {
            match &schedule.changes {
                Some(n) => n.notified().await,
                None => std::future::pending().await,
            }
        };
        let wait = match (changed, last_pass) {
            // A change is waiting for min_gap: wake up when it has passed.
            (true, Some(t)) => renew.min(schedule.min_gap.saturating_sub(t.elapsed())).max(Duration::from_millis(10)),
            _ => renew,
        };
        tokio::select! {
            () = &mut shutdown => break,
            () = tokio::time::sleep(wait) => {}
            () = change => changed = true,
        }
    }
    if let Err(e) = elector.release(api).await {
        tracing::warn!(error = %e, "cannot release the Lease");
    }
}

#[derive(Clone)]
struct Health {
    ready: Arc<AtomicBool>,
    metrics: Metrics,
}

async fn readyz(State(h): State<Health>) -> impl IntoResponse {
    if h.ready.load(Ordering::SeqCst) { (StatusCode::OK, "ok") } else { (StatusCode::SERVICE_UNAVAILABLE, "starting") }
}

async fn metrics_text(State(h): State<Health>) -> impl IntoResponse {
    ([("content-type", "text/plain; version=0.0.4")], h.metrics.render())
}

/// `run` against the cluster from the in-cluster config or KUBECONFIG.
pub async fn run(args: RunArgs) -> Result<(), RunError> {
    let client = kube::Client::try_default().await?;
    let api = crate::kube_api::KubeCluster { client, namespaces: args.watch_namespace.clone() };
    let rules =
        args.allow.iter().map(|r| r.parse::<AllowRule>()).collect::<Result<Vec<_>, _>>().map_err(RunError::Allow)?;
    let timeout = Duration::from_secs_f64(args.timeout.max(0.1));
    let options = ProbeOptions {
        budget: timeout,
        connect_timeout: timeout,
        policy: NetPolicy::new(rules),
        extra_roots: Vec::new(),
    };
    let own_namespace = std::env::var("POD_NAMESPACE").unwrap_or_else(|_| "rook-ceph".into());
    let certs = args.cert_settings(&own_namespace);
    let elector = Elector {
        namespace: args.lease_namespace.clone().unwrap_or_else(|| own_namespace.clone()),
        name: args.lease_name.clone(),
        identity: args
            .identity
            .clone()
            .or_else(|| std::env::var("HOSTNAME").ok())
            .unwrap_or_else(|| "rook-kms-controller".into()),
        duration: Duration::from_secs(args.lease_duration.max(3)),
    };
    let metrics = Metrics::default();
    let ready = Arc::new(AtomicBool::new(false));
    let listener =
        tokio::net::TcpListener::bind(args.health_listen).await.map_err(|e| RunError::Bind(args.health_listen, e))?;
    let app = Router::new()
        .route("/livez", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .with_state(Health { ready: ready.clone(), metrics: metrics.clone() });
    let health = tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, app).await {
            tracing::error!(%error, "health listener stopped");
        }
    });
    tracing::info!(identity = %elector.identity, lease = %elector.name, "controller starting");
    let changes = Arc::new(tokio::sync::Notify::new());
    let watcher = tokio::spawn({
        let (api, changes) = (api.clone(), changes.clone());
        async move { api.watch_changes(changes).await }
    });
    let schedule = Schedule {
        interval: Duration::from_secs_f64(args.interval.max(1.0)),
        min_gap: Duration::from_secs(10),
        changes: Some(changes),
    };
    run_loop(&api, &elector, certs.as_ref(), &options, &schedule, &metrics, &ready, terminate()).await;
    health.abort();
    watcher.abort();
    Ok(())
}

async fn terminate() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
