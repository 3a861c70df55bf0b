//! `rook-kms-webhook`: guards the encryption settings of Rook CephClusters.

use std::process::ExitCode;

use clap::Parser;
use rook_kms_webhook::{Cli, Command, certs, check, serve};

fn main() -> ExitCode {
    // One rustls crypto provider for the whole process (kube, the server, the probes): ring.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_env("RUST_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let log = tracing_subscriber::fmt().with_writer(std::io::stderr).with_env_filter(filter);
    if matches!(&cli.command, Command::Serve(args) if args.log_json) {
        log.json().init();
    } else {
        log.init();
    }
    match cli.command {
        Command::Check(args) => check::run(&args),
        Command::Certs(args) => match certs::run(&args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(2)
            }
        },
        Command::Serve(args) => {
            let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("error: cannot start the async runtime: {e}");
                    return ExitCode::from(2);
                }
            };
            match runtime.block_on(serve::run(args, std::future::pending())) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!(error = %e, "serve failed");
                    eprintln!("error: {e}");
                    ExitCode::from(2)
                }
            }
        }
    }
}
