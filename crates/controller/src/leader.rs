//! Leader election on a coordination.k8s.io Lease: one replica verifies keys, the others wait.
//! A holder renews every third of the lease duration; a lease not renewed within its duration
//! may be taken over. Every write carries the resourceVersion it read, so two replicas cannot
//! both win.

use std::time::Duration;

use crate::api::{ApiError, ClusterApi, Lease};

#[derive(Debug, Clone)]
pub struct Elector {
    pub namespace: String,
    pub name: String,
    pub identity: String,
    pub duration: Duration,
}

impl Elector {
    /// Tries to hold the lease at `now_micros` (Unix time); `Ok(true)` while we lead.
    pub async fn try_lead<A: ClusterApi>(&self, api: &A, now_micros: i64) -> Result<bool, ApiError> {
        let current = api.lease(&self.namespace, &self.name).await?;
        let ours = Lease {
            holder: Some(self.identity.clone()),
            renew_micros: Some(now_micros),
            duration_seconds: self.duration.as_secs().max(1) as i64,
            resource_version: current.as_ref().and_then(|l| l.resource_version.clone()),
        };
        let free = match &current {
            None => true,
            Some(l) if l.holder.as_deref() == Some(self.identity.as_str()) => true,
            Some(l) => match (l.holder.as_deref(), l.renew_micros) {
                (None | Some(""), _) | (_, None) => true,
                (_, Some(renewed)) => now_micros > renewed + l.duration_seconds.max(1) * 1_000_000,
            },
        };
        if !free {
            return Ok(false);
        }
        api.write_lease(&self.namespace, &self.name, &ours).await
    }

    /// Gives the lease up (on shutdown) so a standby takes over at once.
    pub async fn release<A: ClusterApi>(&self, api: &A) -> Result<(), ApiError> {
        if let Some(l) = api.lease(&self.namespace, &self.name).await?
            && l.holder.as_deref() == Some(self.identity.as_str())
        {
            let released = Lease { holder: None, renew_micros: None, ..l };
            api.write_lease(&self.namespace, &self.name, &released).await?;
        }
        Ok(())
    }
}
