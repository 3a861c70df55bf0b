//! The TLS Secrets that the bundled examples reference, made fresh (no key is committed).
//! Used by the `example_secrets` example (the README's quick start) and by the tests that check
//! the examples' verdicts.

use std::fmt::Write as _;
use std::path::Path;

use super::pki::Pki;

fn secret(name: &str, data: &[(&str, &str)]) -> String {
    let mut s =
        format!("apiVersion: v1\nkind: Secret\nmetadata:\n  name: {name}\n  namespace: rook-ceph\nstringData:\n");
    for (key, value) in data {
        let _ = writeln!(s, "  {key}: |");
        for line in value.lines() {
            let _ = writeln!(s, "    {line}");
        }
    }
    s
}

/// Writes `vault-tls.yaml`, `kmip.yaml` and `azure.yaml` into `dir`.
pub fn write(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let ca = Pki::new("example KMS CA");
    let vault = ca.valid_client("rook-ceph-vault-client");
    let kmip = ca.valid_client("rook-ceph-kmip-client");
    let azure = ca.valid_client("rook-ceph-azure-client");
    let other = ca.valid_client("someone-else");
    let expired = ca.client("rook-ceph-expired-client", -400, -35);
    let files = [
        (
            "vault-tls.yaml",
            [
                secret("vault-ca-cert", &[("cert", &ca.ca_pem)]),
                secret("vault-client-cert", &[("cert", &vault.cert_pem)]),
                secret("vault-client-key", &[("key", &vault.key_pem)]),
                // A key that belongs to another certificate: used by a broken example.
                secret("vault-wrong-client-key", &[("key", &other.key_pem)]),
            ]
            .join("---\n"),
        ),
        (
            "kmip.yaml",
            [
                secret(
                    "kmip-credentials",
                    &[("CA_CERT", &ca.ca_pem), ("CLIENT_CERT", &kmip.cert_pem), ("CLIENT_KEY", &kmip.key_pem)],
                ),
                secret(
                    "kmip-expired-credentials",
                    &[("CA_CERT", &ca.ca_pem), ("CLIENT_CERT", &expired.cert_pem), ("CLIENT_KEY", &expired.key_pem)],
                ),
            ]
            .join("---\n"),
        ),
        (
            "azure.yaml",
            secret("azure-kv-client-cert", &[("CLIENT_CERT", &format!("{}{}", azure.cert_pem, azure.key_pem))]),
        ),
    ];
    for (name, text) in files {
        std::fs::write(dir.join(name), text)?;
    }
    Ok(())
}
