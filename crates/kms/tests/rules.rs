//! Every rule, table-driven: for each, a failing case (the finding, its field and its words) and
//! an allowed case that differs only in the field the rule is about.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure should stop the test

mod support;

use rstest::rstest;
use serde_json::{Value, json};
use support::{azure, cluster, ibm, kmip, review, secrets, vault};

#[derive(Debug, Clone, Copy)]
enum Expect {
    /// Allowed, with no warning at all.
    Clean,
    /// Allowed; a warning on a field ending in `.0` says `.1`.
    Warn(&'static str, &'static str),
    /// Denied; an error on a field ending in `.0` says `.1`.
    Deny(&'static str, &'static str),
}
use Expect::{Clean, Deny, Warn};

fn assert_expect(object: &Value, expect: Expect) {
    let out = review(object, None, false, &secrets());
    let has = |list: &[rook_kms::verdict::Finding], field: &str, words: &str| {
        list.iter().any(|f| f.field.ends_with(field) && f.message.contains(words))
    };
    match expect {
        Clean => assert!(out.allowed && out.warnings.is_empty(), "expected clean: {out:#?}"),
        Warn(field, words) => {
            assert!(out.allowed, "expected allowed: {out:#?}");
            assert!(has(&out.warnings, field, words), "expected warning {field}: {words}: {out:#?}");
        }
        Deny(field, words) => {
            assert!(!out.allowed, "expected denied: {out:#?}");
            assert!(has(&out.errors, field, words), "expected error {field}: {words}: {out:#?}");
        }
    }
}

#[rstest]
// KMS_PROVIDER
#[case::provider_missing(cluster(&[("VAULT_ADDR", "https://v:8200")], Some("vault-token")), Deny("KMS_PROVIDER", "missing or empty"))]
#[case::provider_empty(cluster(&[("KMS_PROVIDER", ""), ("VAULT_ADDR", "https://v:8200")], None), Deny("KMS_PROVIDER", "missing or empty"))]
#[case::provider_typo_hint(cluster(&[("KMS_PROVDER", "vault")], None), Deny("KMS_PROVIDER", "did you mean KMS_PROVIDER?"))]
#[case::provider_case(vault(&[("KMS_PROVIDER", "Vault")]), Deny("KMS_PROVIDER", "did you mean \"vault\"?"))]
#[case::provider_ibm_kp(ibm(&[("KMS_PROVIDER", "ibm-kp")]), Deny("KMS_PROVIDER", "did you mean \"ibmkeyprotect\"?"))]
#[case::provider_azure(azure(&[("KMS_PROVIDER", "azure")]), Deny("KMS_PROVIDER", "did you mean \"azure-kv\"?"))]
#[case::provider_unknown(vault(&[("KMS_PROVIDER", "aws-kms")]), Deny("KMS_PROVIDER", "not a provider Rook supports"))]
#[case::provider_whitespace(vault(&[("KMS_PROVIDER", " vault")]), Deny("KMS_PROVIDER", "untrimmed"))]
#[case::provider_ok(vault(&[]), Clean)]
// key names
#[case::key_not_env_name(vault(&[("VAULT-ADDR", "x")]), Deny("[\"VAULT-ADDR\"]", "not a valid environment variable name"))]
#[case::key_unknown_close(vault(&[("VAULT_BACKEN", "v2")]), Warn("VAULT_BACKEN", "did you mean VAULT_BACKEND?"))]
#[case::key_unknown_far(vault(&[("FOO", "bar")]), Warn("FOO", "not a key Rook reads"))]
#[case::key_required_typo(vault(&[("VAULT_ADDR", "<unset>"), ("VAULT_ADRR", "https://v:8200")]), Deny("VAULT_ADDR", "did you mean VAULT_ADDR?"))]
#[case::key_env_only(vault(&[("VAULT_CLIENT_TIMEOUT", "30s")]), Warn("VAULT_CLIENT_TIMEOUT", "not in the Rook operator"))]
#[case::key_odf_service_name(vault(&[("KMS_SERVICE_NAME", "vault")]), Clean)]
// secret material inline
#[case::inline_vault_token(vault(&[("VAULT_TOKEN", "s.x")]), Deny("VAULT_TOKEN", "secret material"))]
#[case::inline_approle(vault(&[("VAULT_APPROLE_SECRET_ID", "x")]), Deny("VAULT_APPROLE_SECRET_ID", "secret material"))]
#[case::inline_ibm_key(ibm(&[("IBM_KP_SERVICE_API_KEY", "x")]), Deny("IBM_KP_SERVICE_API_KEY", "secret material"))]
#[case::inline_ca(kmip(&[("CA_CERT", "x")]), Deny("CA_CERT", "secret material"))]
#[case::inline_client_cert(kmip(&[("CLIENT_CERT", "x")]), Deny("CLIENT_CERT", "secret material"))]
#[case::inline_client_key(kmip(&[("CLIENT_KEY", "x")]), Deny("CLIENT_KEY", "secret material"))]
#[case::inline_azure_secret(azure(&[("AZURE_CLIENT_SECRET", "x")]), Deny("AZURE_CLIENT_SECRET", "secret material"))]
#[case::inline_pem(vault(&[("VAULT_CACERT", "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----")]), Deny("VAULT_CACERT", "PEM block"))]
// whitespace
#[case::whitespace_value(vault(&[("VAULT_ADDR", "https://v:8200 ")]), Warn("VAULT_ADDR", "whitespace"))]
#[case::whitespace_engine(vault(&[("VAULT_SECRET_ENGINE", "kv ")]), Deny("VAULT_SECRET_ENGINE", "untrimmed"))]
// things Rook ignores
#[case::token_without_details(json!({"metadata": {"name": "c"}, "spec": {"security": {"kms": {"tokenSecretName": "t"}}}}), Warn("tokenSecretName", "connectionDetails is empty"))]
#[case::host_encryption(json!({"metadata": {"name": "c"}, "spec": {"security": {"kms": {"connectionDetails": {"KMS_PROVIDER": "vault", "VAULT_ADDR": "https://v:8200"}, "tokenSecretName": "vault-token"}}, "storage": {"config": {"encryptedDevice": "true"}, "storageClassDeviceSets": [{"name": "a", "encrypted": true}]}}}), Warn("spec.storage", "encryptedDevice"))]
#[case::no_encrypted_sets(json!({"metadata": {"name": "c"}, "spec": {"security": {"kms": {"connectionDetails": {"KMS_PROVIDER": "vault", "VAULT_ADDR": "https://v:8200"}, "tokenSecretName": "vault-token"}}, "storage": {"storageClassDeviceSets": [{"name": "a", "encrypted": false}]}}}), Warn("spec.security.kms", "Rook ignores spec.security.kms"))]
#[case::no_kms_at_all(json!({"metadata": {"name": "c"}, "spec": {"storage": {}}}), Clean)]
fn common(#[case] object: Value, #[case] expect: Expect) {
    assert_expect(&object, expect);
}

#[rstest]
#[case::addr_missing(vault(&[("VAULT_ADDR", "<unset>")]), Deny("VAULT_ADDR", "is required"))]
#[case::addr_no_scheme(vault(&[("VAULT_ADDR", "vault.vault.svc:8200")]), Deny("VAULT_ADDR", "not an absolute http(s) URL"))]
#[case::addr_other_scheme(vault(&[("VAULT_ADDR", "tcp://vault:8200")]), Deny("VAULT_ADDR", "not an absolute http(s) URL"))]
#[case::addr_http(vault(&[("VAULT_ADDR", "http://vault:8200")]), Warn("VAULT_ADDR", "clear text"))]
#[case::auth_unknown(vault(&[("VAULT_AUTH_METHOD", "userpass")]), Deny("VAULT_AUTH_METHOD", "token or kubernetes"))]
#[case::auth_agent(vault(&[("VAULT_AUTH_METHOD", "agent")]), Deny("VAULT_AUTH_METHOD", "unknown auth method"))]
#[case::auth_approle(vault(&[("VAULT_AUTH_METHOD", "approle")]), Deny("VAULT_AUTH_METHOD", "AppRole is never used"))]
#[case::auth_token_explicit(vault(&[("VAULT_AUTH_METHOD", "token")]), Clean)]
#[case::k8s_no_role(vault(&[("VAULT_AUTH_METHOD", "kubernetes"), ("tokenSecretName", "<unset>")]), Deny("VAULT_AUTH_KUBERNETES_ROLE", "is required"))]
#[case::k8s_ok(vault(&[("VAULT_AUTH_METHOD", "kubernetes"), ("VAULT_AUTH_KUBERNETES_ROLE", "rook"), ("tokenSecretName", "<unset>")]), Clean)]
#[case::k8s_and_token(vault(&[("VAULT_AUTH_METHOD", "kubernetes"), ("VAULT_AUTH_KUBERNETES_ROLE", "rook")]), Warn("tokenSecretName", "token and never logs in"))]
#[case::token_name_missing(vault(&[("tokenSecretName", "<unset>")]), Deny("tokenSecretName", "missing token in spec"))]
#[case::token_name_invalid(vault(&[("tokenSecretName", "Vault_Token")]), Deny("tokenSecretName", "not a valid Secret name"))]
#[case::token_secret_absent(vault(&[("tokenSecretName", "nope")]), Deny("tokenSecretName", "does not exist in namespace rook-ceph"))]
#[case::token_key_empty(vault(&[("tokenSecretName", "vault-token-empty")]), Deny("tokenSecretName", "has no key token or it is empty"))]
#[case::token_key_missing(vault(&[("tokenSecretName", "ibm-key")]), Deny("tokenSecretName", "has no key token"))]
#[case::token_newline(vault(&[("tokenSecretName", "vault-token-newline")]), Warn("tokenSecretName", "whitespace"))]
#[case::engine_transit(vault(&[("VAULT_SECRET_ENGINE", "transit")]), Deny("VAULT_SECRET_ENGINE", "cannot store OSD keys"))]
#[case::engine_kv(vault(&[("VAULT_SECRET_ENGINE", "kv")]), Clean)]
#[case::backend_bad(vault(&[("VAULT_BACKEND", "v3")]), Deny("VAULT_BACKEND", "not a KV version"))]
#[case::backend_ok(vault(&[("VAULT_BACKEND", "kv-v2")]), Clean)]
#[case::path_absolute(vault(&[("VAULT_BACKEND_PATH", "/secret")]), Deny("VAULT_BACKEND_PATH", "no leading '/'"))]
#[case::path_dotdot(vault(&[("VAULT_BACKEND_PATH", "rook/../sys")]), Deny("VAULT_BACKEND_PATH", "'..'"))]
#[case::path_ok(vault(&[("VAULT_BACKEND_PATH", "rook/ver1")]), Clean)]
#[case::capath(vault(&[("VAULT_CAPATH", "/etc/ssl")]), Deny("VAULT_CAPATH", "use \\\"VAULT_CACERT\\\" instead"))]
#[case::ca_ok(vault(&[("VAULT_CACERT", "vault-ca")]), Clean)]
#[case::ca_path(vault(&[("VAULT_CACERT", "/etc/vault/vault.ca")]), Deny("VAULT_CACERT", "not a file path"))]
#[case::ca_secret_absent(vault(&[("VAULT_CACERT", "nope")]), Deny("VAULT_CACERT", "does not exist"))]
#[case::ca_key_absent(vault(&[("VAULT_CACERT", "vault-ca-nokey")]), Deny("VAULT_CACERT", "has no key cert"))]
#[case::ca_garbage(vault(&[("VAULT_CACERT", "vault-ca-garbage")]), Deny("VAULT_CACERT", "no PEM CERTIFICATE"))]
#[case::ca_expired(vault(&[("VAULT_CACERT", "vault-ca-expired")]), Deny("VAULT_CACERT", "has expired"))]
#[case::ca_expiring(vault(&[("VAULT_CACERT", "vault-ca-expiring")]), Warn("VAULT_CACERT", "days; renew it"))]
#[case::client_ok(vault(&[("VAULT_CLIENT_CERT", "vault-client-cert"), ("VAULT_CLIENT_KEY", "vault-client-key")]), Clean)]
#[case::client_no_key(vault(&[("VAULT_CLIENT_CERT", "vault-client-cert")]), Deny("VAULT_CLIENT_KEY", "without VAULT_CLIENT_KEY"))]
#[case::client_no_cert(vault(&[("VAULT_CLIENT_KEY", "vault-client-key")]), Deny("VAULT_CLIENT_CERT", "without VAULT_CLIENT_CERT"))]
#[case::client_mismatch(vault(&[("VAULT_CLIENT_CERT", "vault-client-cert"), ("VAULT_CLIENT_KEY", "vault-other-key")]), Deny("VAULT_CLIENT_KEY", "does not belong"))]
#[case::client_encrypted(vault(&[("VAULT_CLIENT_CERT", "vault-client-cert"), ("VAULT_CLIENT_KEY", "vault-encrypted-key")]), Deny("VAULT_CLIENT_KEY", "encrypted private key"))]
#[case::client_expired(vault(&[("VAULT_CLIENT_CERT", "vault-expired-cert"), ("VAULT_CLIENT_KEY", "vault-expired-key")]), Deny("VAULT_CLIENT_CERT", "has expired"))]
#[case::client_not_yet(vault(&[("VAULT_CLIENT_CERT", "vault-future-cert"), ("VAULT_CLIENT_KEY", "vault-future-key")]), Deny("VAULT_CLIENT_CERT", "not valid yet"))]
#[case::client_expiring(vault(&[("VAULT_CLIENT_CERT", "vault-expiring-cert"), ("VAULT_CLIENT_KEY", "vault-expiring-key")]), Warn("VAULT_CLIENT_CERT", "days; renew it"))]
#[case::ca_and_client_same(vault(&[("VAULT_CACERT", "vault-client-cert"), ("VAULT_CLIENT_CERT", "vault-client-cert"), ("VAULT_CLIENT_KEY", "vault-client-key")]), Deny("VAULT_CLIENT_CERT", "use two Secrets"))]
#[case::skip_verify_bad(vault(&[("VAULT_SKIP_VERIFY", "yes")]), Deny("VAULT_SKIP_VERIFY", "not a boolean"))]
#[case::skip_verify_true(vault(&[("VAULT_SKIP_VERIFY", "True")]), Warn("VAULT_SKIP_VERIFY", "not verified"))]
#[case::skip_verify_false(vault(&[("VAULT_SKIP_VERIFY", "0")]), Clean)]
#[case::server_name_bad(vault(&[("VAULT_TLS_SERVER_NAME", "vault_server")]), Deny("VAULT_TLS_SERVER_NAME", "not a DNS name or IP"))]
#[case::server_name_ok(vault(&[("VAULT_TLS_SERVER_NAME", "vault.example.com")]), Clean)]
fn vault_rules(#[case] object: Value, #[case] expect: Expect) {
    assert_expect(&object, expect);
}

#[rstest]
#[case::ok(ibm(&[]), Clean)]
#[case::instance_missing(ibm(&[("IBM_KP_SERVICE_INSTANCE_ID", "<unset>")]), Deny("IBM_KP_SERVICE_INSTANCE_ID", "is required"))]
#[case::instance_not_uuid(ibm(&[("IBM_KP_SERVICE_INSTANCE_ID", "my-instance")]), Deny("IBM_KP_SERVICE_INSTANCE_ID", "not a UUID"))]
#[case::token_missing(ibm(&[("tokenSecretName", "<unset>")]), Deny("tokenSecretName", "missing token in spec"))]
#[case::token_secret_absent(ibm(&[("tokenSecretName", "nope")]), Deny("tokenSecretName", "does not exist"))]
#[case::api_key_missing(ibm(&[("tokenSecretName", "ibm-wrong-key")]), Deny("tokenSecretName", "has no key IBM_KP_SERVICE_API_KEY"))]
#[case::alias_only(ibm(&[("IBM_BASE_URL", "https://eu-de.kms.cloud.ibm.com")]), Warn("IBM_BASE_URL", "rename it to IBM_KP_BASE_URL"))]
#[case::alias_same(ibm(&[("IBM_TOKEN_URL", "https://iam.x/t"), ("IBM_KP_TOKEN_URL", "https://iam.x/t")]), Warn("IBM_TOKEN_URL", "duplicates IBM_KP_TOKEN_URL"))]
#[case::alias_conflict(ibm(&[("IBM_BASE_URL", "https://a.example"), ("IBM_KP_BASE_URL", "https://b.example")]), Deny("IBM_BASE_URL", "different values"))]
#[case::base_url_http(ibm(&[("IBM_KP_BASE_URL", "http://us-south.kms.cloud.ibm.com")]), Deny("IBM_KP_BASE_URL", "not an https:// URL"))]
#[case::token_url_ok(ibm(&[("IBM_KP_TOKEN_URL", "https://iam.cloud.ibm.com/oidc/token")]), Clean)]
fn ibm_rules(#[case] object: Value, #[case] expect: Expect) {
    assert_expect(&object, expect);
}

#[rstest]
#[case::ok(kmip(&[]), Clean)]
#[case::endpoint_missing(kmip(&[("KMIP_ENDPOINT", "<unset>")]), Deny("KMIP_ENDPOINT", "is required"))]
#[case::endpoint_scheme(kmip(&[("KMIP_ENDPOINT", "tls://kmip:5696")]), Deny("KMIP_ENDPOINT", "URL scheme"))]
#[case::endpoint_path(kmip(&[("KMIP_ENDPOINT", "kmip:5696/kmip")]), Deny("KMIP_ENDPOINT", "has a path"))]
#[case::endpoint_no_port(kmip(&[("KMIP_ENDPOINT", "kmip.example.com")]), Deny("KMIP_ENDPOINT", "append :5696"))]
#[case::endpoint_bad_port(kmip(&[("KMIP_ENDPOINT", "kmip:99999")]), Deny("KMIP_ENDPOINT", "not a number from 1 to 65535"))]
#[case::endpoint_ipv6(kmip(&[("KMIP_ENDPOINT", "[fd00::5]:5696")]), Clean)]
#[case::timeout_big(kmip(&[("WRITE_TIMEOUT", "256"), ("READ_TIMEOUT", "256")]), Deny("WRITE_TIMEOUT", "from 0 to 255"))]
#[case::timeout_negative(kmip(&[("READ_TIMEOUT", "-1")]), Deny("READ_TIMEOUT", "from 0 to 255"))]
#[case::timeout_word(kmip(&[("READ_TIMEOUT", "10s")]), Deny("READ_TIMEOUT", "from 0 to 255"))]
#[case::timeout_zero(kmip(&[("READ_TIMEOUT", "0"), ("WRITE_TIMEOUT", "0")]), Warn("WRITE_TIMEOUT", "no deadline"))]
#[case::timeout_ok(kmip(&[("READ_TIMEOUT", "30"), ("WRITE_TIMEOUT", "30")]), Clean)]
#[case::read_ignored(kmip(&[("READ_TIMEOUT", "30")]), Warn("READ_TIMEOUT", "Rook applies WRITE_TIMEOUT (10)"))]
#[case::server_name_bad(kmip(&[("TLS_SERVER_NAME", "a b")]), Deny("TLS_SERVER_NAME", "not a DNS name or IP"))]
#[case::token_missing(kmip(&[("tokenSecretName", "<unset>")]), Deny("tokenSecretName", "missing token in spec"))]
#[case::client_key_missing(kmip(&[("tokenSecretName", "kmip-no-key")]), Deny("tokenSecretName", "has no key CLIENT_KEY"))]
#[case::mismatch(kmip(&[("tokenSecretName", "kmip-mismatch")]), Deny("tokenSecretName", "does not belong"))]
#[case::expired(kmip(&[("tokenSecretName", "kmip-expired")]), Deny("tokenSecretName", "has expired"))]
fn kmip_rules(#[case] object: Value, #[case] expect: Expect) {
    assert_expect(&object, expect);
}

#[rstest]
#[case::ok(azure(&[]), Clean)]
#[case::url_missing(azure(&[("AZURE_VAULT_URL", "<unset>")]), Deny("AZURE_VAULT_URL", "is required"))]
#[case::url_http(azure(&[("AZURE_VAULT_URL", "http://osd.vault.azure.net")]), Deny("AZURE_VAULT_URL", "not an https:// URL"))]
#[case::url_foreign(azure(&[("AZURE_VAULT_URL", "https://vault.example.com")]), Warn("AZURE_VAULT_URL", "not in a known Azure Key Vault domain"))]
#[case::url_gov(azure(&[("AZURE_VAULT_URL", "https://osd.vault.usgovcloudapi.net")]), Clean)]
#[case::tenant_missing(azure(&[("AZURE_TENANT_ID", "<unset>")]), Deny("AZURE_TENANT_ID", "is required"))]
#[case::tenant_not_uuid(azure(&[("AZURE_TENANT_ID", "contoso")]), Deny("AZURE_TENANT_ID", "not a UUID"))]
#[case::client_not_uuid(azure(&[("AZURE_CLIENT_ID", "rook")]), Deny("AZURE_CLIENT_ID", "not a UUID"))]
#[case::cert_name_missing(azure(&[("AZURE_CERT_SECRET_NAME", "<unset>")]), Deny("AZURE_CERT_SECRET_NAME", "is required"))]
#[case::cert_secret_absent(azure(&[("AZURE_CERT_SECRET_NAME", "nope")]), Deny("AZURE_CERT_SECRET_NAME", "does not exist"))]
#[case::cert_key_absent(azure(&[("AZURE_CERT_SECRET_NAME", "azure-wrong-key")]), Deny("AZURE_CERT_SECRET_NAME", "has no key CLIENT_CERT"))]
#[case::cert_without_key(azure(&[("AZURE_CERT_SECRET_NAME", "azure-cert-only")]), Deny("AZURE_CERT_SECRET_NAME", "no PEM PRIVATE KEY"))]
#[case::environment_bad(azure(&[("AZURE_ENVIRONMENT", "AzureGermanCloud")]), Deny("AZURE_ENVIRONMENT", "silently means the public cloud"))]
#[case::environment_ok(azure(&[("AZURE_ENVIRONMENT", "AzureUSGovernment")]), Clean)]
#[case::token_unused(azure(&[("tokenSecretName", "vault-token")]), Warn("tokenSecretName", "not used by azure-kv"))]
fn azure_rules(#[case] object: Value, #[case] expect: Expect) {
    assert_expect(&object, expect);
}

fn rotating(mut object: Value, rotation: Value) -> Value {
    object["spec"]["security"]["keyRotation"] = rotation;
    object
}

#[rstest]
#[case::vault_ok(rotating(vault(&[]), json!({"enabled": true, "schedule": "@weekly"})), Clean)]
#[case::k8s_secrets_ok(rotating(json!({"metadata": {"name": "c"}, "spec": {"storage": {"storageClassDeviceSets": [{"name": "a", "encrypted": true}]}}}), json!({"enabled": true, "schedule": "0 2 * * 0"})), Clean)]
#[case::kmip(rotating(kmip(&[]), json!({"enabled": true})), Deny("keyRotation.enabled", "not supported with KMS_PROVIDER kmip"))]
#[case::ibm(rotating(ibm(&[]), json!({"enabled": true})), Deny("keyRotation.enabled", "not supported with KMS_PROVIDER ibmkeyprotect"))]
#[case::azure(rotating(azure(&[]), json!({"enabled": true})), Deny("keyRotation.enabled", "not supported with KMS_PROVIDER azure-kv"))]
#[case::kmip_disabled(rotating(kmip(&[]), json!({"enabled": false})), Clean)]
#[case::bad_schedule(rotating(vault(&[]), json!({"enabled": true, "schedule": "every sunday"})), Deny("keyRotation.schedule", "expected 5 fields"))]
#[case::tz_schedule(rotating(vault(&[]), json!({"enabled": true, "schedule": "TZ=UTC 0 0 * * *"})), Deny("keyRotation.schedule", "TZ="))]
#[case::every(rotating(vault(&[]), json!({"enabled": true, "schedule": "@every 72h"})), Clean)]
#[case::bad_schedule_disabled(rotating(vault(&[]), json!({"enabled": false, "schedule": "@sometimes"})), Warn("keyRotation.schedule", "once keyRotation is enabled"))]
#[case::nothing_to_rotate(rotating(json!({"metadata": {"name": "c"}, "spec": {}}), json!({"enabled": true, "schedule": "@daily"})), Warn("keyRotation.enabled", "nothing to rotate"))]
#[case::kv_v2(rotating(vault(&[("VAULT_BACKEND", "v2")]), json!({"enabled": true, "schedule": "@weekly"})), Warn("keyRotation.enabled", "max_versions=1"))]
fn rotation_rules(#[case] object: Value, #[case] expect: Expect) {
    assert_expect(&object, expect);
}
