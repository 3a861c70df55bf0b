//! The live KMS probe as the webhook runs it: flags, a result cache with coalescing, metrics.
//! What is probed and how lives in `rook_kms::probe`; this module decides when and how often.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rook_kms::probe::{ProbeMode, ProbeOptions, ProbeReport, ProbeResult, ProbeTarget, run};
use rook_kms::providers::net::{AllowRule, NetPolicy};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use tokio::sync::OnceCell;

use crate::serve::metrics::Metrics;

/// `--probe` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ProbeModeArg {
    Off,
    Warn,
    Enforce,
}

impl From<ProbeModeArg> for ProbeMode {
    fn from(m: ProbeModeArg) -> Self {
        match m {
            ProbeModeArg::Off => ProbeMode::Off,
            ProbeModeArg::Warn => ProbeMode::Warn,
            ProbeModeArg::Enforce => ProbeMode::Enforce,
        }
    }
}

/// Probe settings shared by `serve` and `check`.
#[derive(Debug, Clone, clap::Args)]
pub struct ProbeArgs {
    /// The whole probe of one cluster ends within this many seconds (keep it below the webhook's
    /// timeoutSeconds); at the end a warning, or a denial under --probe=enforce, says so.
    #[arg(long, default_value_t = 3.0)]
    pub probe_timeout: f64,
    /// Destinations the probe may connect to: CIDR blocks (10.0.0.0/8) or host name suffixes
    /// (vault.example.com); repeat or separate with commas. Empty: any address except link-local
    /// and cloud metadata (always refused) and loopback (only when a CIDR allows it).
    #[arg(long, value_delimiter = ',', value_name = "CIDR|HOST")]
    pub probe_allow: Vec<String>,
    /// Extra CA certificates (PEM) trusted where a cluster names no CA (IBM Key Protect, Vault
    /// without VAULT_CACERT), besides the public roots.
    #[arg(long, value_name = "FILE")]
    pub probe_ca_file: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum ProbeSetupError {
    #[error("--probe-allow: {0}")]
    Allow(String),
    #[error("--probe-ca-file {path}: {reason}")]
    CaFile { path: String, reason: String },
    #[error("--probe-timeout must be a positive number of seconds")]
    Timeout,
}

/// How long a result is reused: a working KMS is rechecked every minute, a failing one every
/// ten seconds (so a fix shows up quickly).
const TTL_OK: Duration = Duration::from_secs(60);
const TTL_FAILED: Duration = Duration::from_secs(10);
/// Cache entries kept at most (one per distinct KMS configuration).
const MAX_ENTRIES: usize = 1024;

struct Cached {
    report: ProbeReport,
    at: Instant,
}

impl Cached {
    fn fresh(&self) -> bool {
        let ttl = match self.report.result {
            ProbeResult::Ok | ProbeResult::Warning | ProbeResult::NotProbed => TTL_OK,
            ProbeResult::Failed | ProbeResult::Timeout => TTL_FAILED,
        };
        self.at.elapsed() < ttl
    }
}

type Slot = Arc<OnceCell<Cached>>;

/// Runs probes, caches their results by configuration, and coalesces identical concurrent ones.
pub struct Prober {
    mode: ProbeMode,
    options: ProbeOptions,
    cache: Mutex<HashMap<[u8; 32], Slot>>,
    metrics: Option<Metrics>,
}

impl Prober {
    pub fn new(mode: ProbeMode, args: &ProbeArgs, metrics: Option<Metrics>) -> Result<Self, ProbeSetupError> {
        if !(args.probe_timeout.is_finite() && args.probe_timeout > 0.0) {
            return Err(ProbeSetupError::Timeout);
        }
        let allow = args
            .probe_allow
            .iter()
            .filter(|s| !s.trim().is_empty())
            .map(|s| s.parse::<AllowRule>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(ProbeSetupError::Allow)?;
        let extra_roots = match &args.probe_ca_file {
            None => Vec::new(),
            Some(path) => {
                let shown = path.display().to_string();
                let pem = std::fs::read(path)
                    .map_err(|e| ProbeSetupError::CaFile { path: shown.clone(), reason: e.to_string() })?;
                let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&pem).flatten().collect();
                if certs.is_empty() {
                    return Err(ProbeSetupError::CaFile { path: shown, reason: "holds no PEM certificate".into() });
                }
                certs
            }
        };
        let budget = Duration::from_secs_f64(args.probe_timeout);
        let options = ProbeOptions {
            budget,
            // Each connection and each exchange gets at most two thirds of the budget (and 2 s), so
            // a KMS that stops answering is reported as such, not only as the budget running out.
            connect_timeout: (budget * 2 / 3).min(Duration::from_secs(2)),
            policy: NetPolicy::new(allow),
            extra_roots,
        };
        Ok(Self { mode, options, cache: Mutex::new(HashMap::new()), metrics })
    }

    pub fn mode(&self) -> ProbeMode {
        self.mode
    }

    /// The configured budget of one probe.
    pub fn budget(&self) -> Duration {
        self.options.budget
    }

    /// The probe's report for `target`, from the cache when fresh. Waits at most `budget` (the
    /// caller's remaining time), even when it joins a probe another request started.
    pub async fn probe(&self, target: &ProbeTarget, budget: Duration) -> ProbeReport {
        let provider = target.provider();
        let key = target.cache_key();
        let slot = self.slot(key);
        let started = Instant::now();
        let mut ran = false;
        let budget = budget.min(self.options.budget);
        let init = slot.get_or_init(|| {
            ran = true;
            // Only the caller that runs the probe builds its options.
            let options = ProbeOptions { budget, ..self.options.clone() };
            async move { Cached { report: run(target, &options).await, at: Instant::now() } }
        });
        let report = match tokio::time::timeout(budget + Duration::from_millis(50), init).await {
            Ok(cached) => cached.report.clone(),
            Err(_) => rook_kms::probe::timed_out(provider, budget),
        };
        let seconds = started.elapsed().as_secs_f64();
        if let Some(m) = &self.metrics {
            if ran {
                m.probe(provider.as_str(), report.result.as_str(), seconds);
            } else {
                m.probe_cache_hit(provider.as_str());
            }
        }
        tracing::info!(
            provider = provider.as_str(),
            result = report.result.as_str(),
            cached = !ran,
            findings = report.findings.len(),
            duration_ms = (seconds * 1000.0) as u64,
            "probe"
        );
        report
    }

    /// The cache slot for `key`: the fresh or in-flight one, or a new one.
    fn slot(&self, key: [u8; 32]) -> Slot {
        let mut cache = match self.cache.lock() {
            Ok(c) => c,
            Err(poisoned) => poisoned.into_inner(),
        };
        if let Some(slot) = cache.get(&key)
            && slot.get().is_none_or(Cached::fresh)
        {
            return slot.clone();
        }
        if cache.len() >= MAX_ENTRIES {
            cache.retain(|_, s| s.get().is_none_or(Cached::fresh));
            if cache.len() >= MAX_ENTRIES {
                cache.clear();
            }
        }
        let slot = Slot::default();
        cache.insert(key, slot.clone());
        slot
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rook_kms::probe::{KmipTarget, ProbeTarget, VaultAuth, VaultTarget};
    use rook_kms::providers::tls::ClientPair;

    fn args(allow: &[&str]) -> ProbeArgs {
        ProbeArgs {
            probe_timeout: 0.5,
            probe_allow: allow.iter().map(|s| s.to_string()).collect(),
            probe_ca_file: None,
        }
    }

    fn kmip(port: u16) -> ProbeTarget {
        ProbeTarget::Kmip(KmipTarget {
            host: "127.0.0.1".into(),
            port,
            server_name: None,
            ca_pem: b"not used before connecting".to_vec(),
            client: ClientPair { cert_pem: Vec::new(), key_pem: Vec::new() },
        })
    }

    #[test]
    fn bad_settings_are_refused() {
        assert!(matches!(Prober::new(ProbeMode::Warn, &args(&["10.0.0.0/40"]), None), Err(ProbeSetupError::Allow(_))));
        let mut a = args(&[]);
        a.probe_timeout = 0.0;
        assert!(matches!(Prober::new(ProbeMode::Warn, &a, None), Err(ProbeSetupError::Timeout)));
    }

    #[test]
    fn probe_ca_file_adds_roots_and_refuses_files_without_certificates() {
        let dir = tempfile::tempdir().unwrap();
        let certs = crate::certs::generate(&["ca-test".to_string()], 1).unwrap();
        let good = dir.path().join("ca.crt");
        std::fs::write(&good, &certs.ca_cert).unwrap();
        let mut a = args(&[]);
        a.probe_ca_file = Some(good);
        let prober = Prober::new(ProbeMode::Warn, &a, None).unwrap();
        assert_eq!(prober.options.extra_roots.len(), 1);
        let bad = dir.path().join("key.pem");
        std::fs::write(&bad, "not a certificate").unwrap();
        a.probe_ca_file = Some(bad);
        let err = Prober::new(ProbeMode::Warn, &a, None).err().unwrap();
        assert!(err.to_string().contains("holds no PEM certificate"), "{err}");
        a.probe_ca_file = Some(dir.path().join("missing.pem"));
        assert!(matches!(Prober::new(ProbeMode::Warn, &a, None), Err(ProbeSetupError::CaFile { .. })));
    }

    #[tokio::test]
    async fn failures_are_cached_briefly_and_concurrent_probes_coalesce() {
        let metrics = Metrics::default();
        let prober = Prober::new(ProbeMode::Enforce, &args(&[]), Some(metrics.clone())).unwrap();
        // Loopback is refused by the default policy: a failure without any network traffic.
        let target = kmip(9);
        let (a, b) =
            tokio::join!(prober.probe(&target, Duration::from_secs(1)), prober.probe(&target, Duration::from_secs(1)));
        assert_eq!(a, b);
        assert_eq!(a.result, ProbeResult::Failed);
        let _ = prober.probe(&target, Duration::from_secs(1)).await;
        let text = metrics.render();
        assert!(text.contains("rook_kms_webhook_probe_cache_hits_total{provider=\"kmip\"} 2"), "{text}");
        assert!(text.contains("rook_kms_webhook_probes_total{provider=\"kmip\",result=\"failed\"} 1"), "{text}");
        // Another configuration is another question.
        let _ = prober.probe(&kmip(10), Duration::from_secs(1)).await;
        assert!(metrics.render().contains("rook_kms_webhook_probes_total{provider=\"kmip\",result=\"failed\"} 2"));
    }

    #[tokio::test]
    async fn a_late_joiner_waits_only_its_own_budget() {
        let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = silent.local_addr().unwrap().port();
        let mut a = args(&["127.0.0.0/8"]);
        a.probe_timeout = 2.0;
        let prober = Prober::new(ProbeMode::Warn, &a, None).unwrap();
        // Plain-HTTP Vault on a listener that never answers.
        let target = ProbeTarget::Vault(VaultTarget {
            addr: format!("http://127.0.0.1:{port}").parse().unwrap(),
            auth: VaultAuth::Kubernetes,
            namespace: None,
            backend_path: "secret".into(),
            backend: None,
            ca_pem: None,
            client: None,
            server_name: None,
            skip_verify: false,
        });
        let started = Instant::now();
        let (long, short) = tokio::join!(prober.probe(&target, Duration::from_secs(2)), async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            prober.probe(&target, Duration::from_millis(300)).await
        });
        assert_eq!(short.result, ProbeResult::Timeout);
        assert!(short.findings[0].message.contains("0.3 s"), "{short:?}");
        // The first caller's exchange times out inside its budget (at two thirds of it).
        assert_eq!(long.result, ProbeResult::Failed, "{long:?}");
        assert!(long.findings[0].message.contains("no answer within 1.3 s"), "{long:?}");
        assert!(started.elapsed() < Duration::from_secs(3));
        drop(silent);
    }
}
