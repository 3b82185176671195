//! Revoked token families, in memory, so that an access token is checked without a query. The
//! replica that revokes adds the family at once; every replica reloads the store's list every
//! second, so a revocation made elsewhere holds here within two. The list keeps a family only
//! while its access tokens may still be unexpired.

use std::{
    collections::HashSet,
    sync::{Arc, RwLock},
    time::Duration,
};

use switchboard_store::Store;

/// How often the list is read again from the store.
pub const RELOAD_EVERY: Duration = Duration::from_secs(1);

/// The revoked families; cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Revocations {
    families: Arc<RwLock<Arc<HashSet<String>>>>,
}

impl Revocations {
    pub fn is_revoked(&self, family: &str) -> bool {
        self.current().contains(family)
    }

    fn current(&self) -> Arc<HashSet<String>> {
        match self.families.read() {
            Ok(set) => Arc::clone(&set),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    fn replace(&self, set: HashSet<String>) {
        let set = Arc::new(set);
        match self.families.write() {
            Ok(mut current) => *current = set,
            Err(poisoned) => *poisoned.into_inner() = set,
        }
    }

    /// Adds families revoked here, before the next reload would.
    pub(crate) fn add(&self, families: &[String]) {
        let mut set = (*self.current()).clone();
        set.extend(families.iter().cloned());
        self.replace(set);
    }

    /// Reads the store's list.
    pub async fn reload(&self, store: &Store) -> Result<(), switchboard_store::StoreError> {
        let listed = store.listed_revocations(crate::secret::now_ms()).await?;
        self.replace(listed.into_iter().collect());
        Ok(())
    }

    /// Reloads every [`RELOAD_EVERY`] until the store is closed; a failed read keeps the last
    /// list and is logged.
    pub fn spawn_reloader(&self, store: Store) -> tokio::task::JoinHandle<()> {
        let revocations = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(RELOAD_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                if store.is_closed() {
                    return;
                }
                if let Err(error) = revocations.reload(&store).await {
                    tracing::warn!(%error, "cannot read the revoked token families");
                }
            }
        })
    }
}
