//! The gateway: registered MCP servers (validated, stored with their secrets sealed, masked in every
//! answer), the catalog they can come from, and the pool of upstream sessions that serve them.
#![forbid(unsafe_code)]

pub mod admin_mcp;
pub mod aggregate;
pub mod audit;
mod call;
pub mod catalog;
mod client_sessions;
mod definitions;
mod era;
pub mod metrics;
pub mod model;
pub mod passthrough;
pub mod pool;
pub mod proxy;
mod registry_watch;
mod relay;

use std::{
    collections::{BTreeMap, HashMap},
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use serde::Serialize;
use switchboard_mcp::{Upstream, UpstreamError};
use switchboard_store::{SecretBox, ServerRow, Store, StoreError};
use switchboard_tools::{RemoteServerConfig, ToolMetadata, ToolRegistry, register_from};

use crate::{
    catalog::Catalog,
    definitions::apply_update,
    model::{
        CommandConfig, CreateServer, Invalid, PackageConfig, RemoteConfig, Runtime,
        ServerDefinition, UpdateServer,
    },
    pool::{Status, UpstreamPool},
};

/// The operator's settings for the gateway.
#[derive(Debug, Clone)]
pub struct GatewaySettings {
    /// The base of every `connectURL` (`http://127.0.0.1:7777`).
    pub public_url: String,
    /// Lets remote URLs resolve to link-local and metadata addresses.
    pub allow_link_local: bool,
    /// How long a stdio runtime may sit unused before it is stopped.
    pub idle_timeout: Duration,
    /// How long one upstream request may take.
    pub request_timeout: Duration,
    /// How long `/mcp` waits for each upstream's list before leaving it out.
    pub aggregate_deadline: Duration,
    /// Tools per `tools/list` page sent to clients.
    pub tools_page_size: usize,
    /// The hard limit on a call that keeps reporting progress.
    pub max_request_timeout: Duration,
    /// Consecutive failures that open an upstream's circuit (0: never), and how long it stays open.
    pub breaker_threshold: u32,
    pub breaker_cooldown: Duration,
    /// Calls running at once per upstream, and calls that may wait beyond them.
    pub max_concurrent: usize,
    pub max_queued: usize,
    /// The largest answer taken from an upstream, in bytes.
    pub max_answer_bytes: usize,
}

impl Default for GatewaySettings {
    fn default() -> Self {
        Self {
            public_url: "http://127.0.0.1:7777".into(),
            allow_link_local: false,
            idle_timeout: Duration::from_secs(600),
            request_timeout: switchboard_mcp::config::DEFAULT_REQUEST_TIMEOUT,
            aggregate_deadline: Duration::from_secs(5),
            tools_page_size: proxy::DEFAULT_TOOLS_PAGE_SIZE,
            max_request_timeout: switchboard_mcp::config::DEFAULT_MAX_REQUEST_TIMEOUT,
            breaker_threshold: switchboard_mcp::config::DEFAULT_BREAKER_THRESHOLD,
            breaker_cooldown: switchboard_mcp::config::DEFAULT_BREAKER_COOLDOWN,
            max_concurrent: switchboard_mcp::config::DEFAULT_MAX_CONCURRENT,
            max_queued: switchboard_mcp::config::DEFAULT_MAX_QUEUED,
            max_answer_bytes: switchboard_mcp::config::MAX_ANSWER_BYTES,
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GatewayError {
    #[error("{0}")]
    Invalid(String),
    #[error("no MCP server `{0}`")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("the server `{0}` is disabled")]
    Disabled(String),
    #[error("{0}")]
    Upstream(#[from] UpstreamError),
    #[error("the store failed: {0}")]
    Store(StoreError),
    /// A sealed value cannot be opened: the secret key changed.
    #[error("the secrets of server `{0}` cannot be opened with the configured key")]
    Sealed(String),
}

impl GatewayError {
    /// The error's one stable code, the same in every answer: REST's `error.code`, `/mcp/admin`'s
    /// structured `error.code`, and a JSON-RPC error's `data.code`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Invalid(_) => "invalid_request",
            Self::NotFound(_) => "not_found",
            Self::Conflict(_) => "conflict",
            Self::Disabled(_) => "server_disabled",
            Self::Upstream(_) => "upstream_error",
            Self::Sealed(_) => "secrets_unreadable",
            Self::Store(_) => "internal",
        }
    }
}

impl From<Invalid> for GatewayError {
    fn from(invalid: Invalid) -> Self {
        Self::Invalid(invalid.0)
    }
}

impl From<StoreError> for GatewayError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Conflict(what) => Self::Conflict(format!("{what} is already taken")),
            other => Self::Store(other),
        }
    }
}

/// A registered server as every answer shows it: secrets masked.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServerView {
    pub id: String,
    pub name: String,
    pub alias: String,
    pub short_description: String,
    pub runtime: Runtime,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remote_config: Option<RemoteConfig>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub npx_config: Option<PackageConfig>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uvx_config: Option<PackageConfig>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command_config: Option<CommandConfig>,
    pub env: BTreeMap<String, String>,
    pub sensitive_keys: Vec<String>,
    pub tools: model::Governance,
    pub enabled: bool,
    /// Unix milliseconds.
    pub created_at: i64,
    pub updated_at: i64,
    pub status: Status,
    #[serde(rename = "connectURL")]
    pub connect_url: String,
}

/// The registry, the catalog and the upstream pool.
#[derive(Debug, Clone)]
pub struct Gateway {
    store: Store,
    sealer: SecretBox,
    catalog: Catalog,
    pool: UpstreamPool,
    /// The client of every raw call to the upstreams, and its idle connections.
    raw_client: switchboard_mcp::RawClient,
    /// Each served server's governed tools, by id, with the upstream they came from.
    served: Arc<Mutex<HashMap<String, ServedTools>>>,
    /// Definitions by id and alias, for the hot path.
    definitions: Arc<Mutex<DefinitionCache>>,
    /// Held while the definitions are read from the store.
    definitions_reload: Arc<tokio::sync::Mutex<()>>,
    /// Bumped by every change made here to the registry, so that list-change listeners tell
    /// their clients at once, and by the store poll when another replica changed it.
    registry_changes: Arc<tokio::sync::watch::Sender<u64>>,
    /// Whether the store poll for other replicas' changes runs: one poll serves every listener
    /// (see `registry_watch`), and only while there are listeners.
    registry_poll: Arc<std::sync::atomic::AtomicBool>,
    /// Where admin actions, access decisions and tool calls are recorded.
    audit: audit::AuditLog,
    /// Prometheus metrics.
    metrics: metrics::Metrics,
    /// Servers whose listing missed `/mcp`'s deadline and still runs in the background: left
    /// out of `/mcp` until it ends, so that no page waits on them again.
    lagging: aggregate::Lagging,
    /// Downstream sessions whose tool calls may take the raw fast path.
    fast_sessions: passthrough::FastSessions,
    settings: GatewaySettings,
}

/// A registered server with its shared upstream.
#[derive(Debug, Clone)]
pub struct Connected {
    pub id: String,
    /// The definition's `updated_at`.
    pub version: i64,
    pub definition: ServerDefinition,
    pub config: RemoteServerConfig,
    pub upstream: Upstream,
}

/// A registered server as the proxy serves it.
#[derive(Debug, Clone)]
pub struct Served {
    pub id: String,
    /// The definition version it was built from: a session's own upstream session is rebuilt
    /// when the definition changes, so that new governance applies to it.
    pub version: i64,
    /// The alias, for logs and the audit.
    pub alias: String,
    /// The governed tools: the upstream's latest list after governance. A call is forwarded only
    /// for a name in it; any other name is refused as unknown and never sent upstream.
    pub registry: ToolRegistry,
    pub upstream: Upstream,
}

/// A registered server, as `/mcp` gathers them and list-change listeners follow them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisteredServer {
    pub id: String,
    pub alias: String,
    /// The definition's `updated_at`: a governance change shows as a new version.
    pub version: i64,
    pub enabled: bool,
}

/// How long cached definitions are trusted before the store is read again.
pub const DEFINITION_TTL: Duration = Duration::from_secs(1);

#[derive(Debug, Default)]
struct DefinitionCache {
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
enum CachedDefinition {
    Ready(Arc<Resolved>),
    /// Its secrets cannot be opened with the configured key.
    Sealed(String),
}

#[derive(Debug)]
struct Resolved {
    id: String,
    version: i64,
    definition: ServerDefinition,
    config: RemoteServerConfig,
}

#[derive(Debug, Clone)]
struct ServedTools {
    registry: ToolRegistry,
    /// The upstream the tools were listed from, which their calls use. When the pool has another
    /// (a new definition, or a start after an idle stop) the tools are listed again from that one,
    /// so that calls never revive an upstream the pool no longer stops or shows.
    upstream: Upstream,
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

impl Gateway {
    pub fn new(
        store: Store,
        sealer: SecretBox,
        catalog: Catalog,
        settings: GatewaySettings,
    ) -> Self {
        let audit = audit::AuditLog::start(store.clone());
        let pool = UpstreamPool::default();
        Self {
            store,
            sealer,
            catalog,
            pool: pool.clone(),
            raw_client: switchboard_mcp::RawClient::default(),
            served: Arc::default(),
            definitions: Arc::default(),
            definitions_reload: Arc::default(),
            registry_changes: Arc::new(tokio::sync::watch::Sender::new(0)),
            registry_poll: Arc::default(),
            audit,
            metrics: metrics::Metrics::default(),
            lagging: aggregate::Lagging::default(),
            fast_sessions: passthrough::FastSessions::new(pool),
            settings,
        }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    pub fn metrics(&self) -> &metrics::Metrics {
        &self.metrics
    }

    /// Sets the upstream-state gauges from the servers' current status (at scrape time).
    pub async fn refresh_state_metrics(&self) {
        let Ok(servers) = self.resolved_servers().await else {
            return;
        };
        for server in servers {
            let status = self.pool.status(&server.id);
            let alias = &server.definition.alias;
            let families = [
                (
                    &self.metrics.upstream_breaker,
                    &["closed", "open", "half_open"][..],
                    status.breaker,
                ),
                (
                    &self.metrics.upstream_state,
                    &["connected", "error", "idle"][..],
                    status.state,
                ),
            ];
            for (family, states, current) in families {
                for state in states {
                    family
                        .get_or_create(&metrics::StateLabels {
                            server: alias.clone(),
                            state: (*state).to_string(),
                        })
                        .set(i64::from(current == *state));
                }
            }
        }
    }

    pub fn fast_sessions(&self) -> &passthrough::FastSessions {
        &self.fast_sessions
    }

    pub fn audit(&self) -> &audit::AuditLog {
        &self.audit
    }

    pub fn settings(&self) -> &GatewaySettings {
        &self.settings
    }

    /// The servers `/mcp` leaves out while their late listings finish.
    pub(crate) fn lagging(&self) -> &aggregate::Lagging {
        &self.lagging
    }

    pub fn pool(&self) -> &UpstreamPool {
        &self.pool
    }

    /// Stops stdio runtimes idle past the timeout, and closes the raw path's upstream connections
    /// that waited too long, every so often, until the runtime stops.
    pub fn spawn_idle_reaper(&self) {
        let pool = self.pool.clone();
        let raw_client = self.raw_client.clone();
        let idle = self.settings.idle_timeout;
        let period = (idle / 4).clamp(Duration::from_millis(100), Duration::from_secs(30));
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(period);
            loop {
                ticks.tick().await;
                pool.stop_idle(idle).await;
                raw_client.close_stale_connections();
            }
        });
    }

    /// Deletes audit rows older than `retention`, now and every hour, until the runtime stops.
    pub fn spawn_audit_pruner(&self, retention: Duration) {
        let store = self.store.clone();
        let audit = self.audit.clone();
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(Duration::from_secs(3600));
            loop {
                ticks.tick().await;
                audit.flush().await;
                let before = now_ms().saturating_sub(retention.as_millis() as i64);
                match store.prune_audit(before).await {
                    Ok(0) => {}
                    Ok(pruned) => tracing::info!(pruned, "old audit rows deleted"),
                    Err(error) => tracing::error!(%error, "pruning the audit log failed"),
                }
            }
        });
    }

    pub async fn list(&self) -> Result<Vec<ServerView>, GatewayError> {
        let rows = self.store.servers().await?;
        rows.iter().map(|row| self.view(row)).collect()
    }

    pub async fn get(&self, id_or_alias: &str) -> Result<ServerView, GatewayError> {
        let row = self.row(id_or_alias).await?;
        self.view(&row)
    }

    async fn row(&self, id_or_alias: &str) -> Result<ServerRow, GatewayError> {
        self.store
            .server(id_or_alias)
            .await?
            .ok_or_else(|| GatewayError::NotFound(id_or_alias.to_string()))
    }

    /// Registers a server; its audit row commits with it (see [`audit::AdminAction`]).
    pub async fn create(
        &self,
        body: CreateServer,
        action: &audit::AdminAction,
    ) -> Result<ServerView, GatewayError> {
        let definition = self.definition_from_create(body)?;
        self.check(&definition).await?;
        let now = now_ms();
        let id = format!("ms1{}", &uuid::Uuid::new_v4().simple().to_string()[..10]);
        let row = self.to_row(&id, &definition, now, now);
        self.store
            .insert_server(&row, &action.done(&definition.alias))
            .await?;
        self.invalidate_definitions();
        tracing::info!(server = %id, alias = %definition.alias, runtime = definition.runtime.as_str(), "server registered");
        self.view(&row)
    }

    /// Changes a server; its audit row commits with the change.
    pub async fn update(
        &self,
        id: &str,
        body: UpdateServer,
        action: &audit::AdminAction,
    ) -> Result<ServerView, GatewayError> {
        let row = self.row(id).await?;
        let mut definition = self.definition(&row)?;
        apply_update(&mut definition, body)?;
        self.check(&definition).await?;
        let updated = self.to_row(
            &row.id,
            &definition,
            row.created_at,
            now_ms().max(row.updated_at + 1),
        );
        if !self
            .store
            .update_server(&updated, &action.done(&action.server))
            .await?
        {
            return Err(GatewayError::NotFound(id.to_string()));
        }
        // The next use builds a fresh upstream from the new definition.
        self.forget(&row.id).await;
        tracing::info!(server = %row.id, "server updated");
        self.view(&updated)
    }

    /// Deletes a server; its audit row commits with the deletion.
    pub async fn delete(&self, id: &str, action: &audit::AdminAction) -> Result<(), GatewayError> {
        let row = self.row(id).await?;
        if !self
            .store
            .delete_server(&row.id, &action.done(&action.server))
            .await?
        {
            return Err(GatewayError::NotFound(id.to_string()));
        }
        self.forget(&row.id).await;
        self.pool.deleted(&row.id);
        tracing::info!(server = %row.id, "server deleted");
        Ok(())
    }

    /// An enabled server's id and definition version, without cloning its definition: what the
    /// per-request routing needs.
    pub async fn locate(&self, id_or_alias: &str) -> Result<(String, i64), GatewayError> {
        let resolved = self.resolved(id_or_alias).await?;
        if !resolved.definition.enabled {
            return Err(GatewayError::Disabled(resolved.definition.alias.clone()));
        }
        Ok((resolved.id.clone(), resolved.version))
    }

    /// The server's definition and its shared upstream, for the proxy and for runs.
    pub async fn upstream(&self, id_or_alias: &str) -> Result<Connected, GatewayError> {
        let resolved = self.resolved(id_or_alias).await?;
        if !resolved.definition.enabled {
            return Err(GatewayError::Disabled(resolved.definition.alias.clone()));
        }
        let upstream = self.pooled_upstream(&resolved);
        Ok(Connected {
            id: resolved.id.clone(),
            version: resolved.version,
            definition: resolved.definition.clone(),
            config: resolved.config.clone(),
            upstream,
        })
    }

    /// The shared upstream of a resolved definition, built when there is none for its version.
    fn pooled_upstream(&self, resolved: &Resolved) -> Upstream {
        self.pool
            .get_or_build(&resolved.id, resolved.version, |events, resources| {
                Upstream::for_server(resolved.config.upstream.clone(), events, resources)
            })
    }

    /// A definition from the in-memory cache, reloaded from the store when older than
    /// [`DEFINITION_TTL`] or after a change made here. The hot path reads no database and opens
    /// no sealed value; a change made by another replica shows within the TTL.
    async fn resolved(&self, id_or_alias: &str) -> Result<Arc<Resolved>, GatewayError> {
        match self.definitions().await?.get(id_or_alias) {
            Some(CachedDefinition::Ready(resolved)) => Ok(resolved.clone()),
            Some(CachedDefinition::Sealed(alias)) => Err(GatewayError::Sealed(alias.clone())),
            None => Err(GatewayError::NotFound(id_or_alias.to_string())),
        }
    }

    /// Every server, once, from the cached definitions: enabled or not, ordered by alias.
    async fn resolved_servers(&self) -> Result<Vec<Arc<Resolved>>, GatewayError> {
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

    /// Every server whose definition can be opened, ordered by alias, without reading the store
    /// within the TTL.
    pub async fn registered_servers(&self) -> Result<Vec<RegisteredServer>, GatewayError> {
        Ok(self
            .resolved_servers()
            .await?
            .into_iter()
            .map(|resolved| RegisteredServer {
                id: resolved.id.clone(),
                alias: resolved.definition.alias.clone(),
                version: resolved.version,
                enabled: resolved.definition.enabled,
            })
            .collect())
    }

    /// Every enabled server, ordered by alias, without reading the store within the TTL.
    pub async fn enabled_servers(&self) -> Result<Vec<RegisteredServer>, GatewayError> {
        let mut servers = self.registered_servers().await?;
        servers.retain(|server| server.enabled);
        Ok(servers)
    }

    fn definition_cache(&self) -> std::sync::MutexGuard<'_, DefinitionCache> {
        self.definitions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The definitions by id and by alias, read again from the store when stale.
    async fn definitions(&self) -> Result<Arc<HashMap<String, CachedDefinition>>, GatewayError> {
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

    /// A number that changes with every registry change made here, and with those of other
    /// replicas while a listener has the store polled; read without subscribing, so that reading
    /// it keeps no poll going.
    pub fn registry_version(&self) -> u64 {
        *self.registry_changes.borrow()
    }

    /// Makes the next lookup read the store.
    fn invalidate_definitions(&self) {
        let mut cache = self.definition_cache();
        cache.loaded = None;
        cache.invalidations += 1;
        drop(cache);
        self.announce_registry_change();
    }

    /// Tells list-change listeners that what the registry serves may have changed.
    pub(crate) fn announce_registry_change(&self) {
        self.registry_changes
            .send_modify(|changes| *changes = changes.wrapping_add(1));
    }

    /// The server's governed tools in a registry of their own over its shared upstream, kept
    /// (and re-listed when the upstream says its tools changed) while the pool keeps that upstream:
    /// until the definition changes or the upstream is stopped while idle.
    pub async fn served(&self, id_or_alias: &str) -> Result<Served, GatewayError> {
        // The hot path: the cached definition and tools, no clone of either.
        let resolved = self.resolved(id_or_alias).await?;
        if !resolved.definition.enabled {
            return Err(GatewayError::Disabled(resolved.definition.alias.clone()));
        }
        let upstream = self.pooled_upstream(&resolved);
        let cached = {
            let served = self.served.lock().unwrap_or_else(PoisonError::into_inner);
            served
                .get(&resolved.id)
                .filter(|tools| tools.upstream.same(&upstream))
                .cloned()
        };
        let tools = match cached {
            Some(tools) => tools,
            None => {
                let registry = ToolRegistry::with_secrets(BTreeMap::<String, String>::new());
                // Boxed, as the store reload below: listing an upstream's tools is a future of
                // kilobytes, which inline would swell every call's future, moved at each await.
                let registered =
                    Box::pin(register_from(&registry, &resolved.config, upstream.clone())).await;
                self.pool.record(
                    &resolved.id,
                    registered.as_ref().map(|_| ()).map_err(ToString::to_string),
                );
                registered?;
                let tools = ServedTools {
                    registry,
                    upstream: upstream.clone(),
                };
                self.served
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .insert(resolved.id.clone(), tools.clone());
                tools
            }
        };
        Ok(Served {
            id: resolved.id.clone(),
            version: resolved.version,
            alias: resolved.definition.alias.clone(),
            registry: tools.registry,
            upstream,
        })
    }

    /// A session of the server's own for one downstream client that can answer the upstream's
    /// requests (sampling, elicitation, roots): they go back to that client through `relay`. It
    /// ends, with any stdio child, when the returned value is dropped.
    pub async fn dedicated(
        &self,
        id_or_alias: &str,
        relay: Arc<dyn switchboard_mcp::ClientRelay>,
    ) -> Result<Served, GatewayError> {
        let connected = self.upstream(id_or_alias).await?;
        let mut config = connected.config.clone();
        config.upstream.relay = Some(relay);
        let upstream = Upstream::new(config.upstream.clone());
        let registry = ToolRegistry::with_secrets(BTreeMap::<String, String>::new());
        register_from(&registry, &config, upstream.clone()).await?;
        Ok(Served {
            id: connected.id,
            version: connected.version,
            alias: connected.definition.alias,
            registry,
            upstream,
        })
    }

    /// The tools as exposed after governance.
    pub async fn tools(&self, id_or_alias: &str) -> Result<Vec<ToolMetadata>, GatewayError> {
        Ok(self.served(id_or_alias).await?.registry.list())
    }

    /// Drops a server's cached tools, so that the next listing asks the upstream again.
    pub fn forget_tools(&self, id: &str) {
        self.served
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(id);
    }

    /// Forgets a server's upstream and served tools (deleted or changed).
    async fn forget(&self, id: &str) {
        self.invalidate_definitions();
        self.forget_tools(id);
        self.pool.remove(id).await;
    }
}

#[cfg(test)]
mod tests {
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
