//! Writes the TLS Secrets that the bundled examples reference into a directory (default
//! `examples/generated`, ignored by git): certificates and keys are made fresh on every run, so
//! no key is ever committed.
//!
//! `cargo run -p rook-kms --example example_secrets -- examples/generated`

#[path = "../tests/support/pki.rs"]
mod pki;

#[path = "../tests/support/example_secrets.rs"]
mod example_secrets;

use std::path::PathBuf;

fn main() -> std::io::Result<()> {
    let dir = PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| "examples/generated".into()));
    example_secrets::write(&dir)?;
    println!("wrote example TLS Secrets to {}", dir.display());
    Ok(())
}
