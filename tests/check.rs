//! `rook-kms-webhook check` end to end: the bundled examples' verdicts (snapshots of the whole
//! JSON output), the README's claims about them, exit codes, and malformed input.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure should stop the test

#[path = "../crates/kms/tests/support/pki.rs"]
mod pki;

#[path = "../crates/kms/tests/support/example_secrets.rs"]
mod example_secrets;

#[path = "../crates/kms/tests/support/components.rs"]
mod components;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use rook_kms_webhook::check::{evaluate, text};
use rook_kms_webhook::{CheckArgs, Output as Format};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn generated() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    example_secrets::write(dir.path()).expect("example secrets");
    dir
}

fn args(inputs: &[&Path], secrets: &Path, old: Option<&Path>) -> CheckArgs {
    CheckArgs {
        inputs: inputs.iter().map(|p| p.to_path_buf()).collect(),
        secrets: vec![secrets.to_path_buf()],
        old: old.map(Path::to_path_buf),
        no_mutate: false,
        namespace: "default".into(),
        output: Format::Json,
        probe: rook_kms_webhook::probe::ProbeModeArg::Off,
        probe_args: rook_kms_webhook::probe::ProbeArgs { probe_timeout: 3.0, probe_allow: vec![], probe_ca_file: None },
    }
}

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

#[test]
fn valid_examples_are_allowed() {
    let secrets = generated();
    let out = evaluate(&args(&[&root().join("examples/valid")], secrets.path(), None), now()).unwrap();
    assert_eq!(out.len(), 5);
    for o in &out {
        assert!(o.allowed, "{o:#?}");
    }
    insta::assert_json_snapshot!("valid_examples", out);
}

#[test]
fn broken_examples_are_denied() {
    let secrets = generated();
    let out = evaluate(&args(&[&root().join("examples/broken")], secrets.path(), None), now()).unwrap();
    assert_eq!(out.len(), 7);
    for o in &out {
        assert!(!o.allowed, "{o:#?}");
    }
    insta::assert_json_snapshot!("broken_examples", out);
}

#[test]
fn update_example_is_denied() {
    let secrets = generated();
    let dir = root().join("examples/update");
    let out = evaluate(&args(&[&dir.join("new.yaml")], secrets.path(), Some(&dir.join("old.yaml"))), now()).unwrap();
    insta::assert_json_snapshot!("update_example", out);
}

#[test]
fn readme_shows_the_examples_true_verdicts() {
    let secrets = generated();
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    for dir in ["examples/valid", "examples/broken"] {
        let out = evaluate(&args(&[&root().join(dir)], secrets.path(), None), now()).unwrap();
        for o in &out {
            let line =
                format!("{} CephCluster {}/{}", if o.allowed { "ALLOWED" } else { "DENIED" }, o.namespace, o.name);
            assert!(readme.contains(&line), "README does not show `{line}`");
        }
    }
    let typos =
        evaluate(&args(&[&root().join("examples/broken/vault-typos.yaml")], secrets.path(), None), now()).unwrap();
    let shown = text(&typos);
    assert!(readme.contains(&shown), "README's vault-typos output is stale; it is now:\n{shown}");
}

// --- the binary: exit codes and malformed input ---

fn run(args: &[&str], stdin: Option<&[u8]>) -> Output {
    use std::io::Write;
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_rook-kms-webhook"));
    cmd.args(args)
        .current_dir(root())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let input = stdin.unwrap_or_default().to_vec();
    let mut pipe = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        let _ = pipe.write_all(&input);
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    out
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

const VAULT: &str = "apiVersion: ceph.rook.io/v1\nkind: CephCluster\nmetadata: {name: c, namespace: ns}\n";

#[test]
fn exit_codes() {
    let secrets = generated();
    let s = secrets.path().to_str().unwrap();
    assert_eq!(run(&["check", "--secrets", s, "examples/valid"], None).status.code(), Some(0));
    assert_eq!(run(&["check", "--secrets", s, "examples/broken"], None).status.code(), Some(1));
    let missing = run(&["check", "no/such/file.yaml"], None);
    assert_eq!(missing.status.code(), Some(2));
    assert!(stderr(&missing).contains("cannot read no/such/file.yaml"), "{}", stderr(&missing));
}

#[test]
fn not_yaml_is_exit_2() {
    let out = run(&["check", "-"], Some(b"kind: [unclosed\n"));
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("-: document 1 is not valid YAML"), "{}", stderr(&out));
    let binary = run(&["check", "-"], Some(&[0xff, 0xfe, 0x00, 0x01]));
    assert_eq!(binary.status.code(), Some(2));
    assert!(stderr(&binary).contains("not UTF-8"), "{}", stderr(&binary));
}

#[test]
fn cluster_without_spec_is_denied_clearly() {
    let out = run(&["check", "-"], Some(VAULT.as_bytes()));
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("error    spec: is missing; a CephCluster needs a spec"), "{}", stdout(&out));
}

#[test]
fn wrong_types_are_denied_with_their_path() {
    let doc = format!(
        "{VAULT}spec:\n  security:\n    kms:\n      connectionDetails:\n        KMS_PROVIDER: kmip\n        READ_TIMEOUT: 10\n        X: [1]\n"
    );
    let out = run(&["check", "--output", "json", "-"], Some(doc.as_bytes()));
    assert_eq!(out.status.code(), Some(1));
    let json: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    insta::assert_json_snapshot!("wrong_types", json);
}

#[test]
fn bad_secret_manifest_is_exit_2_without_its_value() {
    let doc = "apiVersion: v1\nkind: Secret\nmetadata: {name: t}\ndata:\n  token: 'not base64 s.secret!'\n";
    let out = run(&["check", "-"], Some(doc.as_bytes()));
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("Secret \"t\": data.token is not valid base64"), "{}", stderr(&out));
    assert!(!stderr(&out).contains("s.secret"));
}

#[test]
fn a_ten_megabyte_document_is_denied_without_echoing_it() {
    let huge = "h".repeat(10 * 1024 * 1024);
    let doc = format!(
        "{VAULT}spec:\n  security:\n    kms:\n      connectionDetails:\n        KMS_PROVIDER: vault\n        VAULT_ADDR: \"{huge}\"\n      tokenSecretName: t\n"
    );
    let out = run(&["check", "-"], Some(doc.as_bytes()));
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("VAULT_ADDR \"hhhh"), "{text}");
    assert!(text.len() < 4096, "the output echoes the value: {} bytes", text.len());
}

#[test]
fn secret_values_never_reach_the_output() {
    let doc = format!(
        "{VAULT}spec:\n  security:\n    kms:\n      connectionDetails:\n        KMS_PROVIDER: vault\n        VAULT_ADDR: https://v:8200\n        VAULT_TOKEN: ' s.TOPSECRET '\n        CLIENT_KEY: '-----{BEGIN} PRIVATE KEY-----TOPSECRET'\n      tokenSecretName: t\n---\napiVersion: v1\nkind: Secret\nmetadata: {{name: t, namespace: ns}}\nstringData:\n  token: \" s.ALSOSECRET \"\n",
        BEGIN = "BEGIN"
    );
    for format in ["text", "json"] {
        let out = run(&["check", "--output", format, "-"], Some(doc.as_bytes()));
        assert_eq!(out.status.code(), Some(1));
        let all = stdout(&out) + &stderr(&out);
        assert!(!all.contains("TOPSECRET") && !all.contains("ALSOSECRET"), "{all}");
        assert!(all.contains("VAULT_TOKEN holds secret material"), "{all}");
    }
}

#[test]
fn no_mutate_validates_the_object_as_written() {
    let doc = format!(
        "{VAULT}spec:\n  security:\n    kms:\n      connectionDetails:\n        KMS_PROVIDER: kmip\n        KMIP_ENDPOINT: kmip.example.com\n      tokenSecretName: k\n  storage:\n    storageClassDeviceSets: [{{name: a, encrypted: true}}]\n"
    );
    let secrets = generated();
    let kmip_secret = std::fs::read_to_string(secrets.path().join("kmip.yaml"))
        .unwrap()
        .replace("kmip-credentials", "k")
        .replace("namespace: rook-ceph", "namespace: ns");
    let input = format!("{doc}---\n{kmip_secret}");
    let mutated = run(&["check", "-"], Some(input.as_bytes()));
    assert_eq!(mutated.status.code(), Some(0), "{}", stdout(&mutated));
    assert!(
        stdout(&mutated)
            .contains("replace /spec/security/kms/connectionDetails/KMIP_ENDPOINT = \"kmip.example.com:5696\"")
    );
    let raw = run(&["check", "--no-mutate", "-"], Some(input.as_bytes()));
    assert_eq!(raw.status.code(), Some(1), "{}", stdout(&raw));
    assert!(stdout(&raw).contains("has no port"));
}

#[test]
fn no_cluster_in_input_is_exit_0_with_a_note() {
    let out = run(&["check", "-"], Some(b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n"));
    assert_eq!(out.status.code(), Some(0));
    assert!(stderr(&out).contains("holds no CephCluster"));
}

/// `check --probe` against a real OpenBao: warnings by default, errors under enforce.
#[test]
fn check_probe_against_openbao() {
    let bao = components::OpenBao::dev();
    bao.mount_kv("rook", 1);
    let dir = tempfile::tempdir().unwrap();
    let manifest = format!(
        "apiVersion: ceph.rook.io/v1\nkind: CephCluster\nmetadata: {{name: bao, namespace: rook-ceph}}\nspec:\n  security:\n    kms:\n      connectionDetails: {{KMS_PROVIDER: vault, VAULT_ADDR: '{}', VAULT_BACKEND_PATH: rook}}\n      tokenSecretName: bao-token\n  storage:\n    storageClassDeviceSets: [{{name: set1, count: 1, encrypted: true}}]\n---\napiVersion: v1\nkind: Secret\nmetadata: {{name: bao-token, namespace: rook-ceph}}\nstringData: {{token: s.revoked-or-wrong}}\n",
        bao.addr()
    );
    let file = dir.path().join("cluster.yaml");
    std::fs::write(&file, manifest).unwrap();
    let run = |probe: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_rook-kms-webhook"))
            .arg("check")
            .args(probe)
            .args(["--probe-allow", "127.0.0.0/8"])
            .arg(&file)
            .output()
            .unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stdout).to_string())
    };
    let (code, text) = run(&[]);
    assert_eq!(code, Some(0), "{text}");
    assert!(!text.contains("live probe"), "no probe unless asked: {text}");
    let (code, text) = run(&["--probe"]);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("warning  spec.security.kms.tokenSecretName: live probe: Vault at"), "{text}");
    let (code, text) = run(&["--probe=enforce"]);
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("error    spec.security.kms.tokenSecretName: live probe:") && text.contains("rejected the token"),
        "{text}"
    );
    assert!(!text.contains("s.revoked-or-wrong"), "the token is never echoed: {text}");
}
