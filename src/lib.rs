//! `rook-kms-webhook`: guards the encryption settings of Rook CephClusters.
//!
//! The binary's pieces live here so that tests drive them directly: the CLI definition, `check`
//! and the manifest reader.

pub mod certs;
pub mod check;
/// Manifest reading lives in the domain crate (the controller reads the same files).
pub use rook_kms::manifests;
pub mod probe;
pub mod serve;

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(name = "rook-kms-webhook", version, about = "Guards the KMS (encryption) settings of Rook CephClusters")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check CephCluster manifests offline, as the webhook would at `kubectl apply`.
    ///
    /// Exit status: 0 when every CephCluster is allowed, 1 when any is denied, 2 when the input
    /// itself cannot be used (unreadable file, not YAML).
    Check(CheckArgs),
    /// Serve the admission webhook over HTTPS (POST /validate, POST /mutate), with /livez, /readyz
    /// and /metrics on a plain-HTTP health listener.
    Serve(serve::ServeArgs),
    /// Generate a CA and a serving certificate for the webhook.
    Certs(certs::CertsArgs),
}

#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// YAML or JSON files (multi-document), directories of them, or `-` for standard input.
    /// CephCluster documents are checked; Secret documents are used as the cluster's Secrets.
    #[arg(required = true, value_name = "FILE|-")]
    pub inputs: Vec<PathBuf>,
    /// More Secret manifests (files or directories); may be repeated.
    #[arg(long = "secrets", value_name = "PATH")]
    pub secrets: Vec<PathBuf>,
    /// The previous version of the CephClusters (matched by namespace and name): check as an UPDATE.
    #[arg(long, value_name = "FILE")]
    pub old: Option<PathBuf>,
    /// Validate the objects as written, without the mutation the webhook would apply first.
    #[arg(long)]
    pub no_mutate: bool,
    /// Namespace for documents that do not name one (like `kubectl apply -n`).
    #[arg(short = 'n', long, default_value = "default")]
    pub namespace: String,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Output::Text)]
    pub output: Output,
    /// Also probe each cluster's KMS live (read-only): `--probe` or `--probe=warn` reports failures
    /// as warnings, `--probe=enforce` as errors.
    #[arg(long, value_enum, num_args = 0..=1, default_missing_value = "warn", default_value = "off", require_equals = true)]
    pub probe: probe::ProbeModeArg,
    #[command(flatten)]
    pub probe_args: probe::ProbeArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    Text,
    Json,
}
