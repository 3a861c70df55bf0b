//! `rook-kms-controller`: the companion of rook-kms-webhook. It performs the OSD key operations
//! Rook performs, with Rook's names and formats (the library in `rook_kms::keys`), to inventory,
//! verify and migrate keys.

pub mod admin;
pub mod key_dir;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "rook-kms-controller",
    version,
    about = "Rook-compatible OSD key operations: inventory, verification, migration"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Verify, read-only, that every encrypted OSD PVC's key is readable in its KMS; report
    /// Events and metrics; one active replica through a Lease.
    Run(run::RunArgs),
    /// Key operations against a cluster's KMS, configured from manifests.
    Keys(admin::KeysArgs),
    /// Copy every OSD key from the current KMS to a new configuration, reading each back.
    Migrate(admin::MigrateArgs),
}
pub mod api;
pub mod certs;
pub mod kube_api;
pub mod leader;
pub mod reconcile;
pub mod run;
