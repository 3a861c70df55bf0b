//! Real test components, started on 127.0.0.1 for one test and stopped when it ends: OpenBao
//! (Vault's API), PyKMIP (a KMIP server), and the IBM Key Protect test double. They come from
//! `.tools/venv`, which `tests/components/install.sh` fills; a missing component fails the test.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure should stop the test
#![allow(dead_code)] // shared by several test binaries, each using part of it

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::pki::{Leaf, Pki};

/// The repository root (the directory of the workspace's Cargo.lock).
pub fn root() -> PathBuf {
    let mut dir = Path::new(env!("CARGO_MANIFEST_DIR")).canonicalize().unwrap();
    while !dir.join("Cargo.lock").exists() {
        dir = dir.parent().expect("a workspace root above the package").to_path_buf();
    }
    dir
}

/// A program from the components' virtual environment.
pub fn venv_bin(name: &str) -> PathBuf {
    let path = root().join(".tools/venv/bin").join(name);
    assert!(
        path.exists(),
        "{} is missing: run tests/components/install.sh (tests/run-all.sh does) to install the test components",
        path.display()
    );
    path
}

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn wait_for_port(port: u16, child: &mut Child, log: &Path, within: Duration) {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "server exited ({status}) before listening; log:\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!(
        "nothing listens on port {port} after {within:?}; log:\n{}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
}

/// A server process, stopped (SIGTERM, then SIGKILL) when dropped.
pub struct Process {
    child: Child,
    pub dir: tempfile::TempDir,
}

impl Process {
    fn start(mut command: Command, dir: tempfile::TempDir, log: &str) -> Self {
        let log = std::fs::File::create(dir.path().join(log)).unwrap();
        command.stdin(Stdio::null()).stdout(log.try_clone().unwrap()).stderr(log);
        let child = command.spawn().unwrap_or_else(|e| panic!("cannot start {command:?}: {e}"));
        Self { child, dir }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = Command::new("kill").arg(self.child.id().to_string()).status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One plain HTTP/1.0 exchange (the server closes the connection, no chunking): the tests' own
/// way to set OpenBao up and to read back what the code under test wrote.
pub fn http(port: u16, method: &str, path: &str, headers: &[(&str, &str)], body: Option<&Value>) -> (u16, Value) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let body = body.map(Value::to_string).unwrap_or_default();
    let mut req = format!("{method} {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Length: {}\r\n", body.len());
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(&body);
    stream.write_all(req.as_bytes()).unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

/// OpenBao in dev mode (root token `root`, in memory) with a plain listener for set-up and,
/// optionally, a TLS listener that requires client certificates from `client_ca`.
pub struct OpenBao {
    _process: Process,
    pub port: u16,
    pub tls_port: Option<u16>,
}

impl OpenBao {
    pub fn dev() -> Self {
        Self::start(None)
    }

    /// With a TLS listener presenting `server` and requiring a client certificate signed by `client_ca`.
    pub fn dev_with_tls(server: &Leaf, client_ca: &Pki) -> Self {
        Self::start(Some((server, client_ca)))
    }

    fn start(tls: Option<(&Leaf, &Pki)>) -> Self {
        let bao = venv_bin("bao");
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let mut command = Command::new(bao);
        command.args(["server", "-dev", "-dev-root-token-id=root", &format!("-dev-listen-address=127.0.0.1:{port}")]);
        let tls_port = tls.map(|(server, ca)| {
            let p = |n: &str| dir.path().join(n).display().to_string();
            std::fs::write(p("server.crt"), &server.cert_pem).unwrap();
            std::fs::write(p("server.key"), &server.key_pem).unwrap();
            std::fs::write(p("client-ca.crt"), &ca.ca_pem).unwrap();
            let (tls_port, cluster_port) = loop {
                let (a, b) = (free_port(), free_port());
                if ![port, port + 1].contains(&a) && ![port, port + 1, a].contains(&b) {
                    break (a, b);
                }
            };
            let config = format!(
                "listener \"tcp\" {{\n  address = \"127.0.0.1:{tls_port}\"\n  cluster_address = \"127.0.0.1:{cluster_port}\"\n  tls_cert_file = \"{}\"\n  tls_key_file = \"{}\"\n  tls_client_ca_file = \"{}\"\n  tls_require_and_verify_client_cert = true\n}}\n",
                p("server.crt"),
                p("server.key"),
                p("client-ca.crt")
            );
            std::fs::write(p("listener.hcl"), config).unwrap();
            command.arg(format!("-config={}", p("listener.hcl")));
            tls_port
        });
        command.env("HOME", dir.path());
        let log = dir.path().join("bao.log");
        let mut process = Process::start(command, dir, "bao.log");
        wait_for_port(port, &mut process.child, &log, Duration::from_secs(20));
        if let Some(p) = tls_port {
            wait_for_port(p, &mut process.child, &log, Duration::from_secs(20));
        }
        let bao = Self { _process: process, port, tls_port };
        let deadline = Instant::now() + Duration::from_secs(20);
        while bao.api("GET", "sys/health", None).0 != 200 {
            assert!(Instant::now() < deadline, "OpenBao did not become healthy");
            std::thread::sleep(Duration::from_millis(50));
        }
        bao
    }

    pub fn addr(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// A root-token call on the plain listener.
    pub fn api(&self, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
        self.api_as("root", None, method, path, body)
    }

    /// A call with `token`, inside namespace `ns` when given.
    pub fn api_as(
        &self,
        token: &str,
        ns: Option<&str>,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> (u16, Value) {
        let mut headers = vec![("X-Vault-Token", token)];
        if let Some(ns) = ns {
            headers.push(("X-Vault-Namespace", ns));
        }
        http(self.port, method, &format!("/v1/{path}"), &headers, body)
    }

    /// Asserts a set-up call succeeded.
    pub fn must(&self, method: &str, path: &str, body: Value) -> Value {
        let (status, answer) = self.api(method, path, Some(&body));
        assert!((200..300).contains(&status), "{method} {path}: HTTP {status}: {answer}");
        answer
    }

    /// A KV mount at `path` (version 1 or 2).
    pub fn mount_kv(&self, path: &str, version: u8) {
        self.must(
            "POST",
            &format!("sys/mounts/{path}"),
            serde_json::json!({"type": "kv", "options": {"version": version.to_string()}}),
        );
    }

    /// A policy, then a token with only that policy (no default policy for capabilities beyond it).
    pub fn token_with_policy(&self, name: &str, hcl: &str, extra: Value) -> String {
        self.must("PUT", &format!("sys/policies/acl/{name}"), serde_json::json!({"policy": hcl}));
        let mut body = serde_json::json!({"policies": [name]});
        if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
            b.extend(e.clone());
        }
        let answer = self.must("POST", "auth/token/create", body);
        answer["auth"]["client_token"].as_str().unwrap().to_string()
    }
}

/// PyKMIP's server with mutual TLS (TLS 1.2, ECDSA certificates), trusting `client_ca`.
pub struct PyKmip {
    _process: Process,
    pub port: u16,
}

impl PyKmip {
    pub fn start(server: &Leaf, server_ca: &Pki, client_ca: &Pki) -> Self {
        Self::start_with_chain(server, &server_ca.ca_pem, client_ca)
    }

    /// With `server`'s certificate followed by `chain` (PEM, may be empty).
    pub fn start_with_chain(server: &Leaf, chain: &str, client_ca: &Pki) -> Self {
        let bin = venv_bin("pykmip-server");
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let p = |n: &str| dir.path().join(n).display().to_string();
        std::fs::write(p("server.crt"), format!("{}{chain}", server.cert_pem)).unwrap();
        std::fs::write(p("server.key"), &server.key_pem).unwrap();
        std::fs::write(p("ca.crt"), &client_ca.ca_pem).unwrap();
        std::fs::create_dir(p("policies")).unwrap();
        let conf = format!(
            "[server]\nhostname=127.0.0.1\nport={port}\ncertificate_path={}\nkey_path={}\nca_path={}\nauth_suite=TLS1.2\npolicy_path={}\nenable_tls_client_auth=True\nlogging_level=INFO\ndatabase_path={}\n",
            p("server.crt"),
            p("server.key"),
            p("ca.crt"),
            p("policies"),
            p("pykmip.db")
        );
        std::fs::write(p("server.conf"), conf).unwrap();
        let mut command = Command::new(bin);
        command.args(["-f", &p("server.conf"), "-l", &p("server.log")]);
        command.env("PYTHONWARNINGS", "ignore");
        let log = dir.path().join("stdout.log");
        let mut process = Process::start(command, dir, "stdout.log");
        wait_for_port(port, &mut process.child, &log, Duration::from_secs(30));
        Self { _process: process, port }
    }
}

/// The IBM Key Protect + IAM test double (`tests/doubles/keyprotect_double.py`) over TLS.
pub struct KeyProtectDouble {
    _process: Process,
    pub port: u16,
}

impl KeyProtectDouble {
    pub fn start(server: &Leaf, api_key: &str, instance: &str) -> Self {
        let python = venv_bin("python");
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let p = |n: &str| dir.path().join(n).display().to_string();
        std::fs::write(p("server.crt"), &server.cert_pem).unwrap();
        std::fs::write(p("server.key"), &server.key_pem).unwrap();
        let mut command = Command::new(python);
        command.arg(root().join("tests/doubles/keyprotect_double.py")).args([
            "--port",
            &port.to_string(),
            "--cert",
            &p("server.crt"),
            "--key",
            &p("server.key"),
            "--api-key",
            api_key,
            "--instance",
            instance,
        ]);
        let log = dir.path().join("double.log");
        let mut process = Process::start(command, dir, "double.log");
        wait_for_port(port, &mut process.child, &log, Duration::from_secs(20));
        Self { _process: process, port }
    }
}

/// A TCP listener that accepts connections and never answers (a hung KMS).
pub struct Silent {
    pub port: u16,
    _listener: std::sync::Arc<TcpListener>,
}

impl Silent {
    pub fn start() -> Self {
        let listener = std::sync::Arc::new(TcpListener::bind("127.0.0.1:0").unwrap());
        let port = listener.local_addr().unwrap().port();
        let l = listener.clone();
        std::thread::spawn(move || {
            let mut held = Vec::new();
            while let Ok((s, _)) = l.accept() {
                held.push(s);
            }
        });
        Self { port, _listener: listener }
    }
}
