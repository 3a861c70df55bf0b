//! `rook-kms-webhook serve`: the HTTPS admission server and its plain-HTTP health listener.

pub mod admission;
pub mod metrics;
pub mod secrets;
pub mod tls;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use rook_kms::review::SecretsUnavailable;
use rook_kms::secrets::ManifestSecrets;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use self::admission::{Admission, Answer, Endpoint};
use self::metrics::Metrics;
use self::secrets::{KubeSecrets, Secrets};
use self::tls::CertStore;

#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// HTTPS address for POST /validate and POST /mutate.
    #[arg(long, default_value = "0.0.0.0:8443")]
    pub listen: SocketAddr,
    /// Plain-HTTP address for /livez, /readyz and /metrics.
    #[arg(long, default_value = "0.0.0.0:8080")]
    pub health_listen: SocketAddr,
    /// Serving certificate (PEM, leaf first; a full chain is fine). Reloaded when it changes.
    #[arg(long, required_unless_present = "dev", value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,
    /// Private key of the serving certificate (PEM).
    #[arg(long, required_unless_present = "dev", value_name = "FILE")]
    pub tls_key: Option<PathBuf>,
    /// How often the certificate files are checked for changes, in seconds.
    #[arg(long, default_value_t = 10.0)]
    pub tls_reload_interval: f64,
    /// Read Secrets from these manifests (files or directories) instead of the Kubernetes API.
    #[arg(long = "secrets", value_name = "PATH")]
    pub secrets: Vec<PathBuf>,
    /// Deadline for reading a review's Secrets from the API, in seconds.
    #[arg(long, default_value_t = 2.0)]
    pub secrets_timeout: f64,
    /// When Secrets cannot be read in time: deny (fail closed) or allow with a warning.
    #[arg(long, value_enum, default_value_t = UnavailablePolicy::Deny)]
    pub secrets_unavailable: UnavailablePolicy,
    /// Largest request body accepted, in bytes (larger gets 413).
    #[arg(long, default_value_t = 6 * 1024 * 1024)]
    pub max_body_bytes: usize,
    /// Time to answer one request, in seconds; keep it below the webhook's timeoutSeconds.
    #[arg(long, default_value_t = 4.0)]
    pub request_timeout: f64,
    /// Requests handled at once; more wait.
    #[arg(long, default_value_t = 256)]
    pub max_concurrent_requests: usize,
    /// Time a client has to finish the TLS handshake and send its request headers, in seconds.
    #[arg(long, default_value_t = 10.0)]
    pub handshake_timeout: f64,
    /// On SIGTERM: seconds to keep serving after readiness fails (so endpoints drop the pod).
    #[arg(long, default_value_t = 0.0)]
    pub shutdown_delay: f64,
    /// On SIGTERM: seconds in-flight requests get to finish.
    #[arg(long, default_value_t = 20.0)]
    pub shutdown_timeout: f64,
    /// Live KMS probe of every reviewed cluster: off, warn (failures are warnings) or enforce
    /// (failures deny new or changed kms settings). Opt a cluster out with the annotation
    /// rook-kms-webhook/probe: "skip".
    #[arg(long, value_enum, default_value_t = crate::probe::ProbeModeArg::Warn)]
    pub probe: crate::probe::ProbeModeArg,
    #[command(flatten)]
    pub probe_args: crate::probe::ProbeArgs,
    /// Log lines as JSON.
    #[arg(long)]
    pub log_json: bool,
    /// Development mode: generate a CA and serving certificate under --dev-dir, read the example
    /// Secrets from files, and print a ready curl command. No cluster needed.
    #[arg(long)]
    pub dev: bool,
    /// Where --dev writes its certificates and sample request.
    #[arg(long, default_value = "certs/generated/dev")]
    pub dev_dir: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum UnavailablePolicy {
    Deny,
    Allow,
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: SocketAddr, source: std::io::Error },
    #[error("cannot read the Secret manifests: {0}")]
    Manifests(String),
    #[error("cannot create the Kubernetes client (use --secrets to run without a cluster): {0}")]
    Kube(#[from] kube::Error),
    #[error(transparent)]
    Certs(#[from] crate::certs::CertsError),
    #[error("cannot generate the development certificates: {0}")]
    DevCerts(#[from] rcgen::Error),
    #[error("cannot write {0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Probe(#[from] crate::probe::ProbeSetupError),
    #[error("--probe-timeout ({probe} s) must be below --request-timeout ({request} s)")]
    ProbeBudget { probe: f64, request: f64 },
}

/// Readiness: a certificate is loaded, the TLS listener is up, and we are not shutting down.
#[derive(Clone)]
struct Health {
    ready: Arc<AtomicBool>,
    tls_addr: SocketAddr,
    metrics: Metrics,
}

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s.max(0.0))
}

/// A server with its listeners bound, ready to [`Bound::serve`].
pub struct Bound {
    args: ServeArgs,
    store: Arc<CertStore>,
    acceptor: TlsAcceptor,
    admission: Arc<Admission>,
    listener: TcpListener,
    health_listener: TcpListener,
    health: Health,
}

impl Bound {
    /// The address of the HTTPS listener.
    pub fn tls_addr(&self) -> SocketAddr {
        self.health.tls_addr
    }

    /// The address of the health listener.
    pub fn health_addr(&self) -> std::io::Result<SocketAddr> {
        self.health_listener.local_addr()
    }
}

/// Builds everything and serves until SIGTERM/SIGINT (or `shutdown` resolves), then drains.
pub async fn run(args: ServeArgs, shutdown: impl Future<Output = ()> + Send + 'static) -> Result<(), ServeError> {
    bind(args).await?.serve(shutdown).await
}

/// Loads the certificate, sets up the Secret source and binds both listeners.
pub async fn bind(mut args: ServeArgs) -> Result<Bound, ServeError> {
    if args.dev {
        dev_setup(&mut args)?;
    }
    let metrics = Metrics::default();
    let (Some(cert), Some(key)) = (args.tls_cert.clone(), args.tls_key.clone()) else {
        return Err(ServeError::Manifests("--tls-cert and --tls-key are required".into()));
    };
    let store = CertStore::open(cert, key, metrics.clone())?;
    let acceptor = TlsAcceptor::from(Arc::new(tls::server_config(store.clone())?));
    let secrets = if args.secrets.is_empty() {
        Secrets::Kube(KubeSecrets::new(kube::Client::try_default().await?))
    } else {
        Secrets::Manifests(read_secret_manifests(&args.secrets)?)
    };
    if args.probe != crate::probe::ProbeModeArg::Off && args.probe_args.probe_timeout >= args.request_timeout {
        return Err(ServeError::ProbeBudget { probe: args.probe_args.probe_timeout, request: args.request_timeout });
    }
    let prober = crate::probe::Prober::new(args.probe.into(), &args.probe_args, Some(metrics.clone()))?;
    let admission = Arc::new(Admission {
        prober,
        request_timeout: secs(args.request_timeout),
        secrets,
        secrets_timeout: secs(args.secrets_timeout),
        unavailable: match args.secrets_unavailable {
            UnavailablePolicy::Deny => SecretsUnavailable::Deny,
            UnavailablePolicy::Allow => SecretsUnavailable::Allow,
        },
        metrics: metrics.clone(),
    });
    let listener =
        TcpListener::bind(args.listen).await.map_err(|source| ServeError::Bind { addr: args.listen, source })?;
    let tls_addr = listener.local_addr()?;
    let health_listener = TcpListener::bind(args.health_listen)
        .await
        .map_err(|source| ServeError::Bind { addr: args.health_listen, source })?;
    let health = Health { ready: Arc::new(AtomicBool::new(true)), tls_addr, metrics };
    Ok(Bound { args, store, acceptor, admission, listener, health_listener, health })
}

impl Bound {
    /// Serves until SIGTERM/SIGINT or `shutdown`; then readiness fails at once, in-flight
    /// requests get `--shutdown-timeout` to finish, and it returns.
    pub async fn serve(self, shutdown: impl Future<Output = ()> + Send + 'static) -> Result<(), ServeError> {
        let Bound { args, store, acceptor, admission, listener, health_listener, health } = self;
        let tls_addr = health.tls_addr;
        tracing::info!(listen = %tls_addr, health = %health_listener.local_addr()?, "serving");
        if args.dev {
            print_dev_help(&args, tls_addr);
        }
        let watcher = tokio::spawn(store.watch(secs(args.tls_reload_interval.max(0.1))));
        let health_task = tokio::spawn(serve_health(health_listener, health.clone()));

        let app = router(admission, &args);
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder.http1().timer(TokioTimer::new()).header_read_timeout(secs(args.handshake_timeout));
        builder.http2().timer(TokioTimer::new()).keep_alive_interval(Some(Duration::from_secs(30)));
        let graceful = GracefulShutdown::new();
        let handshake_timeout = secs(args.handshake_timeout);
        // On SIGTERM (or `shutdown`): readiness fails at once, and new connections are still
        // accepted and served for --shutdown-delay, while the endpoint removal reaches every API
        // server; then accepting stops and in-flight requests drain.
        let ready = health.ready.clone();
        let delay = secs(args.shutdown_delay);
        let shutdown = async move {
            tokio::select! {
                () = shutdown => {}
                () = terminate_signal() => {}
            }
            ready.store(false, Ordering::SeqCst);
            tracing::info!(
                delay_s = delay.as_secs_f64(),
                "shutting down: readiness off, still accepting for the delay"
            );
            tokio::time::sleep(delay).await;
        };
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                accepted = listener.accept() => {
                    let Ok((tcp, peer)) = accepted else { continue };
                    let acceptor = acceptor.clone();
                    let service = TowerToHyperService::new(app.clone());
                    let builder = builder.clone();
                    let watcher = graceful.watcher();
                    tokio::spawn(async move {
                        let tls = match tokio::time::timeout(handshake_timeout, acceptor.accept(tcp)).await {
                            Ok(Ok(tls)) => tls,
                            Ok(Err(error)) => { tracing::debug!(%peer, %error, "TLS handshake failed"); return; }
                            Err(_) => { tracing::debug!(%peer, "TLS handshake timed out"); return; }
                        };
                        let conn = builder.serve_connection(TokioIo::new(tls), service).into_owned();
                        if let Err(error) = watcher.watch(conn).await {
                            tracing::debug!(%peer, %error, "connection ended with an error");
                        }
                    });
                }
            }
        }
        health.ready.store(false, Ordering::SeqCst);
        tracing::info!("no longer accepting; draining in-flight requests");
        drop(listener);
        if tokio::time::timeout(secs(args.shutdown_timeout), graceful.shutdown()).await.is_err() {
            tracing::warn!("in-flight requests did not finish within the shutdown timeout");
        }
        watcher.abort();
        health_task.abort();
        Ok(())
    }
}

fn router(admission: Arc<Admission>, args: &ServeArgs) -> Router {
    Router::new()
        .route("/validate", post(validate))
        .route("/mutate", post(mutate))
        .with_state(admission)
        .layer(DefaultBodyLimit::max(args.max_body_bytes))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            secs(args.request_timeout),
        ))
        .layer(tower::limit::GlobalConcurrencyLimitLayer::new(args.max_concurrent_requests.max(1)))
}

async fn validate(State(admission): State<Arc<Admission>>, body: Bytes) -> Response {
    answer(admission.handle(Endpoint::Validate, &body).await)
}

async fn mutate(State(admission): State<Arc<Admission>>, body: Bytes) -> Response {
    answer(admission.handle(Endpoint::Mutate, &body).await)
}

fn answer(answer: Answer) -> Response {
    match answer {
        Answer::Review(body) => ([("content-type", "application/json")], body).into_response(),
        Answer::BadRequest(msg) => (StatusCode::BAD_REQUEST, msg).into_response(),
    }
}

async fn serve_health(listener: TcpListener, health: Health) {
    let app = Router::new()
        .route("/livez", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .with_state(health);
    if let Err(error) = axum::serve(listener, app).await {
        tracing::error!(%error, "health listener stopped");
    }
}

async fn readyz(State(health): State<Health>) -> Response {
    if !health.ready.load(Ordering::SeqCst) {
        return (StatusCode::SERVICE_UNAVAILABLE, "shutting down").into_response();
    }
    match tls_self_check(health.tls_addr).await {
        Ok(()) => "ok".into_response(),
        Err(why) => (StatusCode::SERVICE_UNAVAILABLE, format!("TLS listener not answering: {why}")).into_response(),
    }
}

async fn metrics_text(State(health): State<Health>) -> Response {
    ([("content-type", "text/plain; version=0.0.4; charset=utf-8")], health.metrics.render()).into_response()
}

/// A real TLS handshake against our own listener (the certificate is not verified here: the point
/// is that the listener answers TLS with a loaded certificate).
async fn tls_self_check(addr: SocketAddr) -> Result<(), String> {
    let target = if addr.ip().is_unspecified() {
        SocketAddr::new(std::net::Ipv4Addr::LOCALHOST.into(), addr.port())
    } else {
        addr
    };
    // Readiness asks "does the listener complete a TLS handshake", not "is the certificate trusted":
    // the same accept-any client the probe uses for VAULT_SKIP_VERIFY.
    let config = rook_kms::providers::tls::client_config(&rook_kms::providers::tls::Trust::SkipVerify, None, &[])
        .map_err(|e| e.to_string())?;
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let check = async {
        let tcp = tokio::net::TcpStream::connect(target).await.map_err(|e| e.to_string())?;
        let name = rustls_pki_types::ServerName::try_from("localhost").map_err(|e| e.to_string())?;
        connector.connect(name, tcp).await.map(|_| ()).map_err(|e| e.to_string())
    };
    tokio::time::timeout(Duration::from_secs(1), check).await.map_err(|_| "timed out".to_string())?
}

async fn terminate_signal() {
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

fn read_secret_manifests(paths: &[PathBuf]) -> Result<ManifestSecrets, ServeError> {
    let docs = crate::manifests::read_all(paths).map_err(|e| ServeError::Manifests(e.to_string()))?;
    let mut secrets = ManifestSecrets::default();
    for doc in docs.iter().filter(|d| d.is_secret()) {
        secrets.add(&doc.value, "default").map_err(|e| ServeError::Manifests(format!("{}: {e}", doc.source)))?;
    }
    Ok(secrets)
}

/// `--dev`: certificates under --dev-dir, the example Secrets, a sample request.
fn dev_setup(args: &mut ServeArgs) -> Result<(), ServeError> {
    let dir = args.dev_dir.clone();
    let certs = crate::certs::generate(&crate::certs::sans("rook-kms-webhook", "rook-ceph"), 30)?;
    crate::certs::write(&dir, &certs)?;
    args.tls_cert = Some(dir.join("tls.crt"));
    args.tls_key = Some(dir.join("tls.key"));
    if args.secrets.is_empty() {
        args.secrets = vec![PathBuf::from("examples")];
    }
    // The examples name KMS hosts that do not exist: probing them would only add warnings.
    args.probe = crate::probe::ProbeModeArg::Off;
    if args.listen.ip().is_unspecified() {
        args.listen.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    if args.health_listen.ip().is_unspecified() {
        args.health_listen.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    let sample = serde_json::json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "00000000-0000-0000-0000-000000000001",
            "kind": {"group": "ceph.rook.io", "version": "v1", "kind": "CephCluster"},
            "resource": {"group": "ceph.rook.io", "version": "v1", "resource": "cephclusters"},
            "name": "vault-transit-inline-token",
            "namespace": "rook-ceph",
            "operation": "CREATE",
            "userInfo": {"username": "dev"},
            "object": dev_sample_object()?,
            "dryRun": false
        }
    });
    std::fs::write(
        dir.join("admission-review.json"),
        serde_json::to_vec_pretty(&sample).map_err(std::io::Error::other)?,
    )?;
    Ok(())
}

fn dev_sample_object() -> Result<serde_json::Value, ServeError> {
    let docs = crate::manifests::read_all(&[PathBuf::from("examples/broken/vault-transit-inline-token.yaml")])
        .map_err(|e| ServeError::Manifests(e.to_string()))?;
    docs.into_iter().find(|d| d.is_ceph_cluster()).map(|d| d.value).ok_or_else(|| {
        ServeError::Manifests("examples/broken/vault-transit-inline-token.yaml has no CephCluster".into())
    })
}

fn print_dev_help(args: &ServeArgs, addr: SocketAddr) {
    let dir = args.dev_dir.display();
    println!(
        "rook-kms-webhook is serving in development mode on https://{addr} (health on http://{})",
        args.health_listen
    );
    println!("Try it:");
    println!(
        "  curl --cacert {dir}/ca.crt -H 'content-type: application/json' --data @{dir}/admission-review.json https://localhost:{}/validate",
        addr.port()
    );
}
