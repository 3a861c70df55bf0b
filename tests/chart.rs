//! The Helm chart, rendered by the real Helm v4 engine (helm-python-sdk), linted strictly, every
//! object validated with kubernetes-validate --strict for Kubernetes 1.30 and 1.37, and checked:
//! the webhook configurations reach the Service, timeouts nest, container args parse with the real
//! binaries' CLIs and match the values, RBAC has no wildcard, containers are hardened, and the
//! matchConditions (evaluated with cel-python) never skip a request a rule has something to say
//! about. Bad values are refused.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure should stop the test

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use clap::Parser;
use serde_json::{Value, json};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn venv(tool: &str) -> PathBuf {
    let p = root().join(".tools/venv/bin").join(tool);
    assert!(p.exists(), "{} is missing: run tests/components/install.sh (tests/run-all.sh does)", p.display());
    p
}

fn python(script: &str, args: &[&str], stdin: &str) -> Value {
    let mut child = Command::new(venv("python"))
        .arg(root().join(script))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{script}: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{script}: {e}: {}", String::from_utf8_lossy(&out.stdout)))
}

struct Rendered {
    objects: Vec<Value>,
    yaml: String,
    notes: String,
}

fn render(values: &Value) -> Result<Rendered, String> {
    let chart = root().join("charts/rook-kms-webhook");
    let out = python("tests/chart/render.py", &[chart.to_str().unwrap(), "v1.30.0"], &values.to_string());
    if let Some(e) = out.get("error") {
        return Err(e.as_str().unwrap_or_default().to_string());
    }
    let lint = &out["lint"];
    assert!(lint["errors"].as_array().unwrap().is_empty(), "lint errors: {lint}");
    let serious: Vec<&Value> =
        lint["messages"].as_array().unwrap().iter().filter(|m| m["severity"].as_i64() >= Some(2)).collect();
    assert!(serious.is_empty(), "lint warnings or errors: {serious:?}");
    let mut yaml = String::new();
    let mut objects = Vec::new();
    for text in out["manifests"].as_object().unwrap().values() {
        let text = text.as_str().unwrap();
        yaml.push_str("---\n");
        yaml.push_str(text);
        yaml.push('\n');
        for doc in serde_norway::Deserializer::from_str(text) {
            let v: Value = serde::Deserialize::deserialize(doc).unwrap();
            if !v.is_null() {
                objects.push(v);
            }
        }
    }
    Ok(Rendered { objects, yaml, notes: out["notes"].as_str().unwrap_or_default().to_string() })
}

fn kubernetes_validate(yaml: &str, version: &str) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("rendered.yaml");
    std::fs::write(&file, yaml).unwrap();
    let out = Command::new(venv("kubernetes-validate")).args(["-k", version, "--strict"]).arg(&file).output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "kubernetes-validate {version}:\n{text}");
    assert!(!text.contains("ERROR"), "{text}");
}

fn find<'a>(r: &'a Rendered, kind: &str, name_suffix: &str) -> &'a Value {
    r.objects
        .iter()
        .find(|o| o["kind"] == kind && o["metadata"]["name"].as_str().is_some_and(|n| n.ends_with(name_suffix)))
        .unwrap_or_else(|| panic!("no {kind} *{name_suffix}"))
}

fn all<'a>(r: &'a Rendered, kind: &'a str) -> impl Iterator<Item = &'a Value> {
    r.objects.iter().filter(move |o| o["kind"] == kind)
}

fn args(deploy: &Value) -> Vec<String> {
    deploy["spec"]["template"]["spec"]["containers"][0]["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_string())
        .collect()
}

/// Every check that holds for any valid values.
fn check_invariants(r: &Rendered, values: &Value) {
    assert!(all(r, "Secret").next().is_none(), "the chart never generates certificates or keys in templates");
    let service = find(r, "Service", "rook-kms-webhook");
    let webhook = find(r, "Deployment", "rook-kms-webhook");
    let pod = &webhook["spec"]["template"]["spec"];
    let container = &pod["containers"][0];

    // The webhook configurations reach the Service on the right paths.
    for (kind, path) in [("ValidatingWebhookConfiguration", "/validate"), ("MutatingWebhookConfiguration", "/mutate")] {
        let config = find(r, kind, "rook-kms-webhook");
        let hook = &config["webhooks"][0];
        assert_eq!(hook["clientConfig"]["service"]["name"], service["metadata"]["name"]);
        assert_eq!(hook["clientConfig"]["service"]["namespace"], "rook-kms");
        assert_eq!(hook["clientConfig"]["service"]["path"], path);
        assert_eq!(hook["clientConfig"]["service"]["port"], 443);
        assert_eq!(hook["sideEffects"], "None");
        assert_eq!(hook["admissionReviewVersions"], json!(["v1"]));
        assert_eq!(
            hook["rules"],
            json!([{"apiGroups": ["ceph.rook.io"], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"], "resources": ["cephclusters"], "scope": "Namespaced"}])
        );
        let excluded = &hook["namespaceSelector"]["matchExpressions"][0];
        assert!(excluded["values"].as_array().unwrap().contains(&json!("kube-system")), "{excluded}");
    }
    assert_eq!(find(r, "MutatingWebhookConfiguration", "")["webhooks"][0]["failurePolicy"], "Ignore");
    let https = service["spec"]["ports"].as_array().unwrap().iter().find(|p| p["name"] == "https").unwrap();
    assert_eq!(https["targetPort"], "https");
    let port =
        container["ports"].as_array().unwrap().iter().find(|p| p["name"] == "https").unwrap()["containerPort"].clone();

    // The args are the real binary's: they parse, and they say what the values say.
    let mut argv = vec!["rook-kms-webhook".to_string()];
    argv.extend(args(webhook));
    let rook_kms_webhook::Command::Serve(serve) =
        rook_kms_webhook::Cli::try_parse_from(&argv).unwrap_or_else(|e| panic!("{e}")).command
    else {
        panic!("not serve")
    };
    assert_eq!(json!(serve.listen.port()), port);
    let hook_timeout = find(r, "ValidatingWebhookConfiguration", "")["webhooks"][0]["timeoutSeconds"].as_f64().unwrap();
    assert!(serve.request_timeout < hook_timeout, "the server answers before the API server gives up");
    if serve.probe != rook_kms_webhook::probe::ProbeModeArg::Off {
        assert!(serve.probe_args.probe_timeout < serve.request_timeout, "the probe ends before the request deadline");
    }
    let grace = pod["terminationGracePeriodSeconds"].as_f64().unwrap();
    assert!(grace > serve.shutdown_delay + serve.shutdown_timeout, "SIGTERM drain fits in the grace period");
    let tls_volume = pod["volumes"].as_array().unwrap().iter().find(|v| v["name"] == "tls").unwrap();
    assert_eq!(serve.tls_cert.as_deref(), Some(Path::new("/etc/rook-kms-webhook/tls/tls.crt")));
    let w = &values["webhook"];
    if let Some(mode) = w["probe"]["mode"].as_str() {
        assert_eq!(format!("{:?}", serve.probe).to_lowercase(), mode);
    }
    if let Some(t) = w["requestTimeoutSeconds"].as_f64() {
        assert_eq!(serve.request_timeout, t);
    }

    // HA and rollout.
    assert_eq!(webhook["spec"]["strategy"]["rollingUpdate"], json!({"maxSurge": 1, "maxUnavailable": 0}));
    assert_eq!(webhook["spec"]["replicas"], w.get("replicas").cloned().unwrap_or(json!(2)));
    for pdb in all(r, "PodDisruptionBudget") {
        assert_eq!(pdb["spec"]["maxUnavailable"], 1, "never minAvailable (blocks drains at one replica)");
    }
    let probes = (&container["readinessProbe"]["httpGet"]["path"], &container["livenessProbe"]["httpGet"]["path"]);
    assert_eq!((probes.0.as_str(), probes.1.as_str()), (Some("/readyz"), Some("/livez")));

    // Hardened containers.
    for deploy in all(r, "Deployment") {
        let spec = &deploy["spec"]["template"]["spec"];
        assert_eq!(spec["securityContext"]["runAsNonRoot"], true);
        for c in spec["containers"].as_array().unwrap() {
            let sc = &c["securityContext"];
            assert_eq!(sc["runAsNonRoot"], true);
            assert_eq!(sc["readOnlyRootFilesystem"], true);
            assert_eq!(sc["allowPrivilegeEscalation"], false);
            assert_eq!(sc["capabilities"]["drop"], json!(["ALL"]));
            assert_eq!(sc["seccompProfile"]["type"], "RuntimeDefault");
            assert!(c["resources"]["limits"]["memory"].is_string(), "memory limit set");
        }
    }

    // Least privilege: no wildcard anywhere; the webhook only gets Secrets.
    for role in all(r, "ClusterRole").chain(all(r, "Role")) {
        for rule in role["rules"].as_array().unwrap() {
            for field in ["apiGroups", "resources", "verbs", "resourceNames"] {
                if let Some(items) = rule[field].as_array() {
                    assert!(!items.iter().any(|i| i.as_str().is_some_and(|s| s.contains('*'))), "wildcard in {role}");
                }
            }
        }
    }
    let webhook_role = all(r, "ClusterRole")
        .chain(all(r, "Role"))
        .find(|o| o["metadata"]["name"] == service["metadata"]["name"])
        .unwrap();
    assert_eq!(webhook_role["rules"], json!([{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}]));

    // The controller's args parse with its own CLI.
    if let Some(controller) = r
        .objects
        .iter()
        .find(|o| o["kind"] == "Deployment" && o["metadata"]["name"].as_str().unwrap().ends_with("-controller"))
    {
        let mut argv = vec!["rook-kms-controller".to_string()];
        argv.extend(args(controller));
        let parsed = rook_kms_controller::Cli::try_parse_from(&argv).unwrap_or_else(|e| panic!("{e}"));
        let rook_kms_controller::Command::Run(run) = parsed.command else { panic!("not run") };
        if run.webhook_certs {
            assert_eq!(
                tls_volume["secret"]["secretName"].as_str(),
                run.tls_secret.as_deref(),
                "the controller writes the Secret the webhook mounts"
            );
            let validating = find(r, "ValidatingWebhookConfiguration", "");
            assert_eq!(validating["metadata"]["name"].as_str(), run.validating_webhook.as_deref());
            assert_eq!(service["metadata"]["name"].as_str(), run.webhook_service.as_deref());
        }
    }
    assert!(r.notes.contains("kubectl delete validatingwebhookconfiguration"), "NOTES has the emergency procedure");

    for version in ["1.30.0", "1.37.0"] {
        kubernetes_validate(&r.yaml, version);
    }
}

#[test]
fn defaults_self_managed_certificates() {
    let values = json!({});
    let r = render(&values).unwrap();
    check_invariants(&r, &values);
    let validating = find(&r, "ValidatingWebhookConfiguration", "");
    assert_eq!(validating["webhooks"][0]["failurePolicy"], "Fail");
    assert_eq!(validating["webhooks"][0]["timeoutSeconds"], 5);
    assert!(validating["webhooks"][0]["clientConfig"].get("caBundle").is_none(), "the controller owns caBundle");
    assert!(all(&r, "ClusterRole").any(|c| c["metadata"]["name"].as_str().unwrap().ends_with("-cabundle")));
    assert!(r.notes.contains("ignoreDifferences"));
}

#[test]
fn cert_manager_and_existing_secret_modes() {
    let values = json!({"certs": {"mode": "certManager"}});
    let r = render(&values).unwrap();
    check_invariants(&r, &values);
    let cert = find(&r, "Certificate", "-serving");
    let inject =
        find(&r, "ValidatingWebhookConfiguration", "")["metadata"]["annotations"]["cert-manager.io/inject-ca-from"]
            .clone();
    assert_eq!(inject, json!(format!("rook-kms/{}", cert["metadata"]["name"].as_str().unwrap())));
    assert!(cert["spec"]["dnsNames"].as_array().unwrap().contains(&json!("rkw-rook-kms-webhook.rook-kms.svc")));
    assert!(all(&r, "Issuer").count() == 2, "self-signed root and CA issuer");
    let controller = find(&r, "Deployment", "-controller");
    assert!(!args(controller).contains(&"--webhook-certs".to_string()));

    let values = json!({"certs": {"mode": "certManager", "certManager": {"issuerRef": {"name": "corp-ca", "kind": "ClusterIssuer"}}}});
    let r = render(&values).unwrap();
    assert_eq!(
        find(&r, "Certificate", "-serving")["spec"]["issuerRef"],
        json!({"name": "corp-ca", "kind": "ClusterIssuer"})
    );
    assert!(all(&r, "Issuer").next().is_none());

    let values = json!({"certs": {"mode": "existingSecret", "existingSecret": {"name": "my-tls", "caBundle": "TFMwdExTMUNSVWRKVGlCRFJWSlVTVVpKUTBGVVJTMHRMUzB0Q2c9PQ=="}}});
    let r = render(&values).unwrap();
    check_invariants(&r, &values);
    assert_eq!(
        find(&r, "MutatingWebhookConfiguration", "")["webhooks"][0]["clientConfig"]["caBundle"],
        values["certs"]["existingSecret"]["caBundle"]
    );
    let pod = &find(&r, "Deployment", "rook-kms-webhook")["spec"]["template"]["spec"];
    assert_eq!(pod["volumes"][0]["secret"]["secretName"], "my-tls");
}

#[test]
fn watch_namespaces_use_namespaced_roles() {
    let values = json!({"watchNamespaces": ["ceph-a", "ceph-b"]});
    let r = render(&values).unwrap();
    check_invariants(&r, &values);
    let roles: Vec<(String, String)> = all(&r, "Role")
        .map(|o| {
            (
                o["metadata"]["namespace"].as_str().unwrap().to_string(),
                o["metadata"]["name"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    for ns in ["ceph-a", "ceph-b"] {
        assert!(roles.contains(&(ns.to_string(), "rkw-rook-kms-webhook".to_string())), "{roles:?}");
        assert!(roles.contains(&(ns.to_string(), "rkw-rook-kms-webhook-controller".to_string())), "{roles:?}");
    }
    let cluster_roles: Vec<&str> = all(&r, "ClusterRole").map(|o| o["metadata"]["name"].as_str().unwrap()).collect();
    assert_eq!(cluster_roles, ["rkw-rook-kms-webhook-controller-cabundle"], "only the caBundle writer is cluster-wide");
    let selector =
        &find(&r, "ValidatingWebhookConfiguration", "")["webhooks"][0]["namespaceSelector"]["matchExpressions"][1];
    assert_eq!(selector["operator"], "In");
    assert_eq!(selector["values"], json!(["ceph-a", "ceph-b"]));
    let controller_args = args(find(&r, "Deployment", "-controller"));
    assert!(
        controller_args.contains(&"--watch-namespace=ceph-a".into())
            && controller_args.contains(&"--watch-namespace=ceph-b".into())
    );
}

#[test]
fn one_replica_probe_enforce_custom_timeouts_and_extras() {
    let values = json!({
        "webhook": {"replicas": 1, "timeoutSeconds": 10, "requestTimeoutSeconds": 8, "probe": {"mode": "enforce", "timeoutSeconds": 6, "allow": ["10.0.0.0/8", "vault.example.com"]}},
        "controller": {"replicas": 1},
        "networkPolicy": {"enabled": true, "apiServerCIDRs": ["172.16.0.0/12"]},
        "serviceMonitor": {"enabled": true},
        "prometheusRule": {"enabled": true}
    });
    let r = render(&values).unwrap();
    check_invariants(&r, &values);
    let a = args(find(&r, "Deployment", "rook-kms-webhook"));
    assert!(a.contains(&"--probe-allow=10.0.0.0/8".into()) && a.contains(&"--probe=enforce".into()), "{a:?}");
    assert_eq!(find(&r, "ValidatingWebhookConfiguration", "")["webhooks"][0]["timeoutSeconds"], 10);
    let rules = find(&r, "PrometheusRule", "")["spec"]["groups"][0]["rules"].to_string();
    assert!(
        rules.contains("histogram_quantile(0.99") && rules.contains("7 * 86400") && rules.contains("probes_total"),
        "{rules}"
    );
    assert_eq!(find(&r, "NetworkPolicy", "")["spec"]["policyTypes"], json!(["Ingress"]));
}

#[test]
fn bad_values_are_refused() {
    for (values, why) in [
        (json!({"webhook": {"replicas": "two"}}), "replicas"),
        (json!({"webhook": {"failurePolicy": "Maybe"}}), "failurePolicy"),
        (json!({"webhook": {"timeoutSeconds": 40}}), "timeoutSeconds"),
        (json!({"webhok": {}}), "webhok"),
        (json!({"webhook": {"probe": {"mode": "strict", "timeoutSeconds": 2}}}), "mode"),
        (json!({"certs": {"mode": "vault"}}), "mode"),
        (json!({"webhook": {"requestTimeoutSeconds": 5}}), "must be below webhook.timeoutSeconds"),
        (
            json!({"webhook": {"probe": {"mode": "warn", "timeoutSeconds": 4}}}),
            "must be below webhook.requestTimeoutSeconds",
        ),
        (json!({"certs": {"mode": "existingSecret"}}), "existingSecret.name"),
        (json!({"controller": {"enabled": false}}), "needs controller.enabled"),
        (json!({"webhook": {"terminationGracePeriodSeconds": 10}}), "terminationGracePeriodSeconds"),
    ] {
        match render(&values) {
            Ok(_) => panic!("{values} was accepted"),
            Err(e) => assert!(e.contains(why), "{values}: {e}"),
        }
    }
}

/// The matchCondition skips only requests no rule has anything to say about: every bundled example
/// and every crafted case that gets an error, a warning or a patch from `check` is sent.
#[test]
fn match_conditions_never_skip_what_a_rule_covers() {
    let r = render(&json!({})).unwrap();
    let expression = find(&r, "ValidatingWebhookConfiguration", "")["webhooks"][0]["matchConditions"][0]["expression"]
        .as_str()
        .unwrap()
        .to_string();
    let docs = |dir: &str| -> Vec<Value> {
        rook_kms_webhook::manifests::read_all(&[root().join(dir)])
            .unwrap()
            .into_iter()
            .filter(|d| d.is_ceph_cluster())
            .map(|d| d.value)
            .collect()
    };
    let plain = json!({"apiVersion": "ceph.rook.io/v1", "kind": "CephCluster", "metadata": {"name": "p", "namespace": "rook-ceph"},
        "spec": {"dataDirHostPath": "/var/lib/rook", "storage": {"storageClassDeviceSets": [{"name": "set1", "count": 3, "encrypted": false}]}}});
    let mut relabelled = plain.clone();
    relabelled["metadata"]["labels"] = json!({"team": "storage"});
    let mut encrypted = plain.clone();
    encrypted["spec"]["storage"]["storageClassDeviceSets"][0]["encrypted"] = json!(true);
    let with_kms = docs("examples/valid").into_iter().find(|d| d["spec"]["security"]["kms"].is_object()).unwrap();
    let mut kms_removed = with_kms.clone();
    kms_removed["spec"].as_object_mut().unwrap().remove("security");

    let mut cases: Vec<(Value, Option<Value>, bool)> = Vec::new(); // (object, oldObject, must be sent)
    for dir in ["examples/valid", "examples/broken"] {
        for d in docs(dir) {
            cases.push((d, None, true));
        }
    }
    let (new, old) = (docs("examples/update/new.yaml"), docs("examples/update/old.yaml"));
    cases.push((new[0].clone(), Some(old[0].clone()), true));
    cases.push((kms_removed, Some(with_kms), true));
    cases.push((encrypted.clone(), Some(plain.clone()), true));
    cases.push((
        json!({"apiVersion": "ceph.rook.io/v1", "kind": "CephCluster", "metadata": {"name": "x"}}),
        None,
        true,
    ));
    cases.push((plain.clone(), None, false));
    cases.push((relabelled, Some(plain.clone()), false));

    let input: Vec<Value> = cases
        .iter()
        .map(|(o, old, _)| json!({"operation": if old.is_some() { "UPDATE" } else { "CREATE" }, "object": o, "oldObject": old}))
        .collect();
    let sent = python("tests/chart/cel_check.py", &[&expression], &Value::Array(input).to_string());
    let sent: Vec<bool> = serde_json::from_value(sent.clone()).unwrap_or_else(|_| panic!("{sent}"));
    for ((object, old, must), was_sent) in cases.iter().zip(&sent) {
        assert_eq!(*was_sent, *must, "matchCondition for {} (old: {})", object["metadata"]["name"], old.is_some());
        // Soundness: anything skipped gets no finding and no patch from the webhook's own review.
        if !was_sent {
            let review = rook_kms::review::Review::new(rook_kms::review::Request {
                operation: if old.is_some() {
                    rook_kms::review::Operation::Update
                } else {
                    rook_kms::review::Operation::Create
                },
                object,
                old_object: old.as_ref(),
                default_namespace: "rook-ceph",
                mutate: true,
            });
            let outcome = review.evaluate(
                &rook_kms::secrets::SecretSnapshot::default(),
                1_800_000_000,
                rook_kms::review::SecretsUnavailable::Deny,
            );
            assert!(
                outcome.errors.is_empty() && outcome.warnings.is_empty() && outcome.patch.0.is_empty(),
                "skipped but covered: {outcome:?}"
            );
        }
    }
}
