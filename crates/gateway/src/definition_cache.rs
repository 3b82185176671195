//! The definitions of the registered servers, cached in memory for the hot path: by id and by
//! alias, opened (secrets and all) once per read of the store, and read again when older than
//! [`DEFINITION_TTL`] or after a change made here.

use std::{
    collections::HashMap,
    sync::{Arc, PoisonError},
    time::Duration,
};

use switchboard_tools::RemoteServerConfig;

use crate::{Gateway, GatewayError, model::ServerDefinition};

/// How long cached definitions are trusted before the store is read again.
pub const DEFINITION_TTL: Duration = Duration::from_secs(1);

#[derive(Debug, Default)]
pub(crate) struct DefinitionCache {
    /// When the entries were read; `None` forces a reload.
    loaded: Option<std::time::Instant>,
    entries: Arc<HashMap<String, CachedDefinition>>,
    /// Bumped by every invalidation, so that a reload that began before one cannot pass off
    /// what it read as fresh.
    invalidations: u64,
}

impl DefinitionCache {
    fn fresh(&self) -> Option<Arc<HashMap<String, CachedDefinition>>> {
        self.loaded
            .is_some_and(|at| at.elapsed() < DEFINITION_TTL)
            .then(|| self.entries.clone())
    }
}

#[derive(Debug, Clone)]
pub(crate) enum CachedDefinition {
    Ready(Arc<Resolved>),
    /// Its secrets cannot be opened with the configured key.
    Sealed(String),
}

#[derive(Debug)]
pub(crate) struct Resolved {
    pub(crate) id: String,
    pub(crate) version: i64,
    pub(crate) definition: ServerDefinition,
    pub(crate) config: RemoteServerConfig,
}

impl Gateway {
    /// A definition from the in-memory cache, reloaded from the store when older than
    /// [`DEFINITION_TTL`] or after a change made here. The hot path reads no database and opens
    /// no sealed value; a change made by another replica shows within the TTL.
    pub(crate) async fn resolved(&self, id_or_alias: &str) -> Result<Arc<Resolved>, GatewayError> {
        match self.definitions().await?.get(id_or_alias) {
            Some(CachedDefinition::Ready(resolved)) => Ok(resolved.clone()),
            Some(CachedDefinition::Sealed(alias)) => Err(GatewayError::Sealed(alias.clone())),
            None => Err(GatewayError::NotFound(id_or_alias.to_string())),
        }
    }

    /// A server's alias by its id, from the cached definitions; empty for none (deleted).
    pub async fn alias_of(&self, server_id: &str) -> Result<String, GatewayError> {
        Ok(match self.definitions().await?.get(server_id) {
            Some(CachedDefinition::Ready(resolved)) => resolved.definition.alias.clone(),
            _ => String::new(),
        })
    }

    /// Every server, once, from the cached definitions: enabled or not, ordered by alias.
    pub(crate) async fn resolved_servers(&self) -> Result<Vec<Arc<Resolved>>, GatewayError> {
        let definitions = self.definitions().await?;
        let mut servers: Vec<Arc<Resolved>> = definitions
            .iter()
            .filter_map(|(key, entry)| match entry {
                CachedDefinition::Ready(resolved) if *key == resolved.id => Some(resolved.clone()),
                _ => None,
            })
            .collect();
        servers.sort_by(|a, b| a.definition.alias.cmp(&b.definition.alias));
        Ok(servers)
    }

    fn definition_cache(&self) -> std::sync::MutexGuard<'_, DefinitionCache> {
        self.definitions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The definitions by id and by alias, read again from the store when stale.
    pub(crate) async fn definitions(
        &self,
    ) -> Result<Arc<HashMap<String, CachedDefinition>>, GatewayError> {
        if let Some(fresh) = self.definition_cache().fresh() {
            return Ok(fresh);
        }
        Box::pin(self.reload_definitions()).await
    }

    /// Reads the definitions from the store, once for every request that found them stale.
    async fn reload_definitions(
        &self,
    ) -> Result<Arc<HashMap<String, CachedDefinition>>, GatewayError> {
        // One reload at a time: under load, every request that found the cache stale read the
        // store at once, and opened as many database connections.
        let _reloading = self.definitions_reload.lock().await;
        let began_after = {
            let cache = self.definition_cache();
            if let Some(fresh) = cache.fresh() {
                return Ok(fresh);
            }
            cache.invalidations
        };
        self.metrics.registry_reads.inc();
        let rows = self.store.servers().await?;
        let mut entries = HashMap::new();
        for row in rows {
            let entry = match self.definition(&row) {
                Ok(definition) => CachedDefinition::Ready(Arc::new(Resolved {
                    id: row.id.clone(),
                    version: row.updated_at,
                    config: self.registry_config(&definition),
                    definition,
                })),
                Err(error) => {
                    tracing::error!(server = %row.id, %error, "a stored server cannot be used");
                    CachedDefinition::Sealed(row.alias.clone())
                }
            };
            entries.insert(row.alias.clone(), entry.clone());
            entries.insert(row.id, entry);
        }
        let entries = Arc::new(entries);
        let mut cache = self.definition_cache();
        if cache.invalidations == began_after {
            cache.loaded = Some(std::time::Instant::now());
            cache.entries = entries.clone();
        }
        Ok(entries)
    }

    /// Makes the next lookup read the store.
    pub(crate) fn invalidate_definitions(&self) {
        let mut cache = self.definition_cache();
        cache.loaded = None;
        cache.invalidations += 1;
        drop(cache);
        self.announce_registry_change();
    }
}

#[cfg(test)]
mod tests {
    use crate::{GatewaySettings, audit, catalog::Catalog};
    use switchboard_store::{SecretBox, Store};

    use super::*;

    #[tokio::test]
    async fn requests_that_find_the_definitions_stale_read_the_store_once() {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}", dir.path().join("db").display());
        let store = Store::open(&url).await.expect("store");
        let sealer = SecretBox::from_hex(&"ab".repeat(32)).expect("a key");
        let catalog = Catalog::load(&[] as &[&str]).expect("the default catalog");
        let gateway = Gateway::new(store, sealer, catalog, GatewaySettings::default());
        let body = serde_json::from_value(serde_json::json!({
            "manifest": {"name": "Echo", "runtime": "remote",
                "remoteConfig": {"url": "http://127.0.0.1:9/mcp"}},
            "alias": "echo"
        }))
        .expect("a create body");
        let action = audit::AdminAction {
            actor: "admin".into(),
            client: "test".into(),
            action: "server.create".into(),
            server: String::new(),
            started: std::time::Instant::now(),
        };
        gateway.create(body, &action).await.expect("created");
        gateway.invalidate_definitions();
        let before = gateway.metrics().registry_reads.get();
        // Every request finds the cache stale at once; one of them reads the store.
        let located = futures::future::join_all((0..32).map(|_| gateway.locate("echo"))).await;
        assert!(located.iter().all(Result::is_ok), "{located:?}");
        assert_eq!(gateway.metrics().registry_reads.get() - before, 1);
    }
}
