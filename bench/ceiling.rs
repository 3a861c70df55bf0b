//! The ceiling for the admission benchmark: the same TLS stack as `serve` (tokio-rustls with the
//! same rustls configuration, hyper-util's HTTP/1+2 server, axum) answering every POST with a fixed
//! AdmissionReview, without reading Secrets or running rules.
//!
//! `cargo run --release --example ceiling -- LISTEN CERT KEY`

use std::sync::Arc;

use axum::Router;
use axum::routing::post;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use rook_kms_webhook::serve::metrics::Metrics;
use rook_kms_webhook::serve::tls::{CertStore, server_config};

const FIXED: &str = r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","response":{"uid":"00000000-0000-0000-0000-000000000000","allowed":true}}"#;

fn echo(body: &[u8]) -> String {
    let uid = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.pointer("/request/uid").and_then(serde_json::Value::as_str).map(str::to_string))
        .unwrap_or_default();
    serde_json::json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": {"uid": uid, "allowed": true}})
        .to_string()
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut args = std::env::args().skip(1);
    let (Some(listen), Some(cert), Some(key)) = (args.next(), args.next(), args.next()) else {
        return Err("usage: ceiling LISTEN CERT KEY".into());
    };
    let store = CertStore::open(cert.into(), key.into(), Metrics::default())?;
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server_config(store)?));
    let app = Router::new()
        .route("/validate", post(|_body: axum::body::Bytes| async { ([("content-type", "application/json")], FIXED) }))
        // A second baseline: what the smallest correct webhook must do per request at least:
        // parse the AdmissionReview and echo its uid (a fixed uid is not a valid answer).
        .route(
            "/validate-parse",
            post(|body: axum::body::Bytes| async move { ([("content-type", "application/json")], echo(&body)) }),
        );
    let listener = tokio::net::TcpListener::bind(&listen).await?;
    println!("ceiling listening on {}", listener.local_addr()?);
    loop {
        let (tcp, _) = listener.accept().await?;
        let (acceptor, app) = (acceptor.clone(), app.clone());
        tokio::spawn(async move {
            if let Ok(tls) = acceptor.accept(tcp).await {
                let _ = auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tls), TowerToHyperService::new(app))
                    .await;
            }
        });
    }
}
