//! The pruner: old audit rows, webhook deliveries, runs and sessions deleted every hour, by one
//! replica at a time (the one holding the store's pruning lease).

use std::time::Duration;

use crate::{Gateway, now_ms};

/// How often the pruner runs; the replica that runs it holds the lease for most of that time.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// This process's name among replicas (for leases): drawn once.
pub fn replica_id() -> &'static str {
    static ID: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    ID.get_or_init(|| format!("replica-{}", uuid::Uuid::new_v4().simple()))
}

impl Gateway {
    /// Deletes audit rows older than `retention`, with the webhook deliveries and runs of the same
    /// age, and the sessions long unused, now and every hour, until the runtime stops. Replicas
    /// sharing a store take turns: the one that holds the pruning lease prunes.
    pub fn spawn_audit_pruner(&self, retention: Duration) {
        let store = self.store.clone();
        let audit = self.audit.clone();
        let sessions = self.session_directory.clone();
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(PRUNE_EVERY);
            loop {
                ticks.tick().await;
                let now = now_ms();
                let lease_ends = now + (PRUNE_EVERY.as_millis() as i64) * 5 / 6;
                match store
                    .take_lease("pruner", replica_id(), now, lease_ends)
                    .await
                {
                    Ok(true) => {}
                    Ok(false) => continue,
                    Err(error) => {
                        tracing::error!(%error, "the pruning lease could not be taken");
                        continue;
                    }
                }
                audit.flush().await;
                let before = now_ms().saturating_sub(retention.as_millis() as i64);
                match store.prune_audit(before).await {
                    Ok(0) => {}
                    Ok(pruned) => tracing::info!(pruned, "old audit rows deleted"),
                    Err(error) => tracing::error!(%error, "pruning the audit log failed"),
                }
                // Webhook deliveries made or given up on go with the same retention.
                if let Err(error) = store.prune_webhooks(before).await {
                    tracing::error!(%error, "pruning the webhook deliveries failed");
                }
                // And so do agent runs.
                if let Err(error) = store.prune_runs(before).await {
                    tracing::error!(%error, "pruning the stored runs failed");
                }
                sessions.prune_store().await;
            }
        });
    }
}
