//! `rook-kms`: the domain of rook-kms-webhook, with no HTTP server and no Kubernetes client.
//!
//! Data flows one way: a CephCluster object is read into a typed [`cluster::Cluster`], the Secrets
//! it references are fetched through [`secrets::SecretSource`] into a [`secrets::SecretSnapshot`],
//! the pure [`rules`] turn both into a [`verdict::Verdict`], and [`mutate`] computes the JSON Patch
//! that makes Rook's implicit behaviour explicit. [`review`] strings these together the way the API
//! server does (mutate, then validate the mutated object) for `check` and `serve` alike.

pub mod cluster;
pub mod config;
pub mod cron;
pub mod field;
pub mod keys;
pub mod manifests;
pub mod memo;
pub mod mutate;
pub mod names;
pub mod pem;
pub mod pki;
pub mod probe;
pub mod providers;
pub mod review;
pub mod rules;
pub mod secrets;
pub mod verdict;

/// Prefix of every annotation this project reads.
pub const ANNOTATION_PREFIX: &str = "rook-kms-webhook/";
/// Annotation that allows an UPDATE to change where OSD keys live.
pub const ALLOW_KMS_CHANGE_ANNOTATION: &str = "rook-kms-webhook/allow-kms-change";
