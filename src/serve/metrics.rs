//! Prometheus metrics of the admission server, served as text on the health listener.

use std::sync::Arc;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

type Labels = Vec<(&'static str, String)>;

/// Cheap to clone; every clone records into the same registry.
#[derive(Clone)]
pub struct Metrics {
    registry: Arc<Registry>,
    requests: Family<Labels, Counter>,
    latency: Family<Labels, Histogram>,
    reloads: Family<Labels, Counter>,
    probes: Family<Labels, Counter>,
    probe_latency: Family<Labels, Histogram>,
    probe_cache_hits: Family<Labels, Counter>,
    /// Unix time at which the serving certificate expires.
    pub cert_expiry: Gauge,
}

/// Latency buckets in seconds, up to the largest webhook timeout Kubernetes allows (30 s).
const BUCKETS: [f64; 14] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 30.0];

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("rook_kms_webhook");
        let requests = Family::<Labels, Counter>::default();
        let latency = Family::<Labels, Histogram>::new_with_constructor(|| Histogram::new(BUCKETS));
        let reloads = Family::<Labels, Counter>::default();
        let cert_expiry = Gauge::default();
        let probes = Family::<Labels, Counter>::default();
        let probe_latency = Family::<Labels, Histogram>::new_with_constructor(|| Histogram::new(BUCKETS));
        let probe_cache_hits = Family::<Labels, Counter>::default();
        registry.register("probes", "Live KMS probes run, by provider and result", probes.clone());
        registry.register(
            "probe_duration_seconds",
            "Time a live KMS probe took, by provider and result",
            probe_latency.clone(),
        );
        registry.register(
            "probe_cache_hits",
            "Probe results served from the cache, by provider",
            probe_cache_hits.clone(),
        );
        registry.register(
            "admission_requests",
            "Admission requests by endpoint, operation and result",
            requests.clone(),
        );
        registry.register("admission_duration_seconds", "Time to answer an admission request", latency.clone());
        registry.register("certificate_reloads", "Serving certificate reloads by result", reloads.clone());
        registry.register(
            "certificate_expiry_timestamp_seconds",
            "When the serving certificate expires (Unix time)",
            cert_expiry.clone(),
        );
        Self {
            registry: Arc::new(registry),
            requests,
            latency,
            reloads,
            probes,
            probe_latency,
            probe_cache_hits,
            cert_expiry,
        }
    }
}

impl Metrics {
    pub fn request(&self, endpoint: &str, operation: &str, result: &str, seconds: f64) {
        self.requests
            .get_or_create(&vec![
                ("endpoint", endpoint.into()),
                ("operation", operation.into()),
                ("result", result.into()),
            ])
            .inc();
        self.latency.get_or_create(&vec![("endpoint", endpoint.into())]).observe(seconds);
    }

    pub fn reload(&self, result: &str) {
        self.reloads.get_or_create(&vec![("result", result.into())]).inc();
    }

    pub fn probe(&self, provider: &str, result: &str, seconds: f64) {
        self.probes.get_or_create(&vec![("provider", provider.into()), ("result", result.into())]).inc();
        self.probe_latency
            .get_or_create(&vec![("provider", provider.into()), ("result", result.into())])
            .observe(seconds);
    }

    pub fn probe_cache_hit(&self, provider: &str) {
        self.probe_cache_hits.get_or_create(&vec![("provider", provider.into())]).inc();
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}
