//! The review as a whole: mutation (when it may happen, idempotence), UPDATE rules and ratcheting.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure should stop the test

mod support;

use rook_kms::review::Outcome;
use rstest::rstest;
use serde_json::{Value, json};
use support::{cluster, ibm, kmip, review, secrets, vault};

fn denied_on(out: &Outcome, field: &str) -> bool {
    out.errors.iter().any(|e| e.field.ends_with(field))
}

fn warned_on(out: &Outcome, field: &str, words: &str) -> bool {
    out.warnings.iter().any(|w| w.field.ends_with(field) && w.message.contains(words))
}

fn patched(mut object: Value, out: &Outcome) -> Value {
    json_patch::patch(&mut object, &out.patch).expect("patch applies");
    object
}

#[rstest]
#[case::vault_backend_path(vault(&[]), "/spec/security/kms/connectionDetails/VAULT_BACKEND_PATH", json!("secret/"))]
#[case::vault_backend_path_empty(vault(&[("VAULT_BACKEND_PATH", "")]), "/spec/security/kms/connectionDetails/VAULT_BACKEND_PATH", json!("secret/"))]
#[case::ibm_base_url(ibm(&[]), "/spec/security/kms/connectionDetails/IBM_KP_BASE_URL", json!("https://us-south.kms.cloud.ibm.com"))]
#[case::ibm_token_url(ibm(&[]), "/spec/security/kms/connectionDetails/IBM_KP_TOKEN_URL", json!("https://iam.cloud.ibm.com/oidc/token"))]
#[case::ibm_alias(ibm(&[("IBM_BASE_URL", "https://eu-de.kms.cloud.ibm.com")]), "/spec/security/kms/connectionDetails/IBM_KP_BASE_URL", json!("https://eu-de.kms.cloud.ibm.com"))]
#[case::kmip_port(kmip(&[("KMIP_ENDPOINT", "kmip.example.com")]), "/spec/security/kms/connectionDetails/KMIP_ENDPOINT", json!("kmip.example.com:5696"))]
#[case::kmip_read_timeout(kmip(&[]), "/spec/security/kms/connectionDetails/READ_TIMEOUT", json!("10"))]
#[case::kmip_read_follows_write(kmip(&[("WRITE_TIMEOUT", "30")]), "/spec/security/kms/connectionDetails/READ_TIMEOUT", json!("30"))]
#[case::trim(vault(&[("KMS_PROVIDER", " vault "), ("VAULT_ADDR", "https://v:8200\n")]), "/spec/security/kms/connectionDetails/KMS_PROVIDER", json!("vault"))]
#[case::schedule({let mut v = vault(&[]); v["spec"]["security"]["keyRotation"] = json!({"enabled": true}); v}, "/spec/security/keyRotation/schedule", json!("@weekly"))]
fn create_mutates_and_is_idempotent(#[case] object: Value, #[case] pointer: &str, #[case] want: Value) {
    let s = secrets();
    let out = review(&object, None, true, &s);
    assert!(out.allowed, "{out:#?}");
    let mutated = patched(object, &out);
    assert_eq!(mutated.pointer(pointer), Some(&want), "{out:#?}");
    let again = review(&mutated, None, true, &s);
    assert!(again.patch.0.is_empty(), "second mutation not empty: {:?}", again.patch);
    assert!(again.allowed);
}

#[test]
fn mutation_fixes_what_validation_alone_denies() {
    let s = secrets();
    let object = kmip(&[("KMIP_ENDPOINT", "kmip.example.com"), ("KMS_PROVIDER", "kmip ")]);
    let raw = review(&object, None, false, &s);
    assert!(denied_on(&raw, "KMIP_ENDPOINT") && denied_on(&raw, "KMS_PROVIDER"), "{raw:#?}");
    let mutated = review(&object, None, true, &s);
    assert!(mutated.allowed, "{mutated:#?}");
    assert!(warned_on(&mutated, "KMIP_ENDPOINT", "appended :5696"));
    assert!(warned_on(&mutated, "KMS_PROVIDER", "trimmed"));
}

#[test]
fn update_of_unrelated_fields_does_not_mutate() {
    let s = secrets();
    let old = vault(&[]);
    let mut new = old.clone();
    new["spec"]["mon"] = json!({"count": 5});
    let out = review(&new, Some(&old), true, &s);
    assert!(out.patch.0.is_empty(), "an unrelated UPDATE must not roll the OSDs: {:?}", out.patch);
    let mut changed = old.clone();
    changed["spec"]["security"]["kms"]["connectionDetails"]["VAULT_NAMESPACE"] = json!("");
    let out = review(&changed, Some(&old), true, &s);
    assert!(!out.patch.0.is_empty(), "a kms change gets the defaults");
}

#[rstest]
#[case::addr(vault(&[("VAULT_ADDR", "https://other:8200")]), "VAULT_ADDR")]
#[case::path(vault(&[("VAULT_BACKEND_PATH", "rook")]), "VAULT_BACKEND_PATH")]
#[case::namespace(vault(&[("VAULT_NAMESPACE", "team-a")]), "VAULT_NAMESPACE")]
#[case::provider(kmip(&[]), "KMS_PROVIDER")]
#[case::removed(cluster(&[], None), "KMS_PROVIDER")]
fn moving_keys_is_denied(#[case] new: Value, #[case] field: &str) {
    let s = secrets();
    let old = vault(&[]);
    let out = review(&new, Some(&old), true, &s);
    assert!(denied_on(&out, field), "{out:#?}");
    assert!(out.errors.iter().any(|e| e.message.contains("Rook never moves keys")));
    let mut acknowledged = new.clone();
    acknowledged["metadata"]["annotations"] = json!({"rook-kms-webhook/allow-kms-change": "true"});
    let out = review(&acknowledged, Some(&old), true, &s);
    assert!(!denied_on(&out, field), "{out:#?}");
    assert!(warned_on(&out, field, "allowed by rook-kms-webhook/allow-kms-change"));
}

#[rstest]
#[case::same(vault(&[]))]
#[case::explicit_default_path(vault(&[("VAULT_BACKEND_PATH", "secret/")]))]
#[case::path_slashes(vault(&[("VAULT_BACKEND_PATH", "secret")]))]
#[case::addr_trailing_slash(vault(&[("VAULT_ADDR", "https://vault.vault.svc:8200/")]))]
fn equivalent_locations_are_not_a_move(#[case] new: Value) {
    let out = review(&new, Some(&vault(&[])), true, &secrets());
    assert!(out.allowed, "{out:#?}");
}

#[test]
fn enabling_a_kms_on_an_encrypted_cluster_is_a_move() {
    let old = cluster(&[], None);
    let out = review(&vault(&[]), Some(&old), true, &secrets());
    assert!(denied_on(&out, "KMS_PROVIDER"), "{out:#?}");
}

#[test]
fn moving_is_fine_when_nothing_was_encrypted() {
    let mut old = vault(&[]);
    old["spec"]["storage"]["storageClassDeviceSets"][0]["encrypted"] = json!(false);
    let out = review(&vault(&[("VAULT_ADDR", "https://other:8200")]), Some(&old), true, &secrets());
    assert!(!denied_on(&out, "VAULT_ADDR"), "{out:#?}");
}

#[test]
fn toggling_encryption_warns_unless_migration_confirmed() {
    let s = secrets();
    let old = vault(&[]);
    let mut new = old.clone();
    new["spec"]["storage"]["storageClassDeviceSets"][0]["encrypted"] = json!(false);
    let out = review(&new, Some(&old), true, &s);
    assert!(warned_on(&out, "storageClassDeviceSets[0].encrypted", "yes-really-migrate-osds"), "{out:#?}");
    new["spec"]["storage"]["migration"] = json!({"confirmation": "yes-really-migrate-osds"});
    let out = review(&new, Some(&old), true, &s);
    assert!(!warned_on(&out, "storageClassDeviceSets[0].encrypted", ""), "{out:#?}");
}

#[test]
fn ratcheting_keeps_old_problems_as_warnings_only_while_unchanged() {
    let s = secrets();
    let old = vault(&[("VAULT_SKIP_VERIFY", "yes")]);
    let mut unrelated = old.clone();
    unrelated["spec"]["mon"] = json!({"count": 3});
    let out = review(&unrelated, Some(&old), true, &s);
    assert!(out.allowed, "an unrelated edit of an old cluster must pass: {out:#?}");
    assert!(warned_on(&out, "VAULT_SKIP_VERIFY", "already present before this update"));
    let worse = vault(&[("VAULT_SKIP_VERIFY", "nope")]);
    let out = review(&worse, Some(&old), true, &s);
    assert!(denied_on(&out, "VAULT_SKIP_VERIFY"), "a changed problem is new: {out:#?}");
    let created = review(&old, None, true, &s);
    assert!(denied_on(&created, "VAULT_SKIP_VERIFY"), "on CREATE it is denied");
}

#[test]
fn unreadable_secrets_follow_the_callers_policy() {
    use rook_kms::review::{Operation, Request, Review, SecretsUnavailable};
    use rook_kms::secrets::{SecretSnapshot, SecretSourceError};
    let object = vault(&[]);
    let review = Review::new(Request {
        operation: Operation::Create,
        object: &object,
        old_object: None,
        default_namespace: support::NS,
        mutate: false,
    });
    let mut snapshot = SecretSnapshot::default();
    for name in review.secret_names() {
        snapshot.insert(name, Err(SecretSourceError { reason: "timed out after 2s".into() }));
    }
    let denied = review.evaluate(&snapshot, 0, SecretsUnavailable::Deny);
    assert!(
        !denied.allowed && denied.errors[0].message.contains("could not be read (timed out after 2s)"),
        "{denied:#?}"
    );
    let allowed = review.evaluate(&snapshot, 0, SecretsUnavailable::Allow);
    assert!(allowed.allowed, "{allowed:#?}");
    assert!(allowed.warnings.iter().any(|w| w.message.contains("Allowed without checking it")));
}
