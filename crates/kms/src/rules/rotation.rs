//! spec.security.keyRotation: supported stores, schedule syntax, and settings that do nothing.

use super::Context;
use crate::cron::check_schedule;
use crate::field;
use crate::verdict::Verdict;

pub(super) fn validate(ctx: &Context<'_>, out: &mut Verdict) {
    let cluster = ctx.cluster;
    let rotation = &cluster.key_rotation;
    if let Some(schedule) = rotation.schedule.as_deref().filter(|s| !s.trim().is_empty())
        && let Err(why) = check_schedule(schedule)
    {
        let consequence = if rotation.enabled {
            "Rook cannot create the key-rotation CronJobs and the OSD reconcile fails"
        } else {
            "it will fail once keyRotation is enabled"
        };
        out.report(
            rotation.enabled,
            field::KEY_ROTATION_SCHEDULE,
            format!(
                "schedule {} is not a valid cron schedule: {why}; {consequence}. Use e.g. @weekly or \"0 2 * * 0\".",
                field::shown(schedule)
            ),
        );
    }
    if !rotation.enabled {
        return;
    }
    if cluster.kms.is_enabled()
        && let Some(provider) = ctx.provider()
        && !provider.supports_key_rotation()
    {
        out.deny(field::KEY_ROTATION_ENABLED, format!("key rotation is not supported with KMS_PROVIDER {provider}: every rotation job would fail (\"update secret is not supported\") after re-keying LUKS halfway; disable keyRotation or use vault or Kubernetes Secrets."));
    }
    if !cluster.has_encrypted_device_sets() {
        out.warn(field::KEY_ROTATION_ENABLED, "keyRotation is enabled but no storageClassDeviceSets entry has encrypted: true, so there is nothing to rotate.");
    }
    if cluster.kms.is_enabled()
        && ctx.provider() == Some(crate::config::Provider::Vault)
        && let Some(v) = cluster.kms.param("VAULT_BACKEND").filter(|v| matches!(*v, "v2" | "kv-v2"))
    {
        out.warn(field::KEY_ROTATION_ENABLED, format!("with VAULT_BACKEND {v} every rotation keeps the old key as a KV version; set max_versions=1 on the mount if old keys must not stay readable."));
    }
}
