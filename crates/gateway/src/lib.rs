//! The gateway: registered MCP servers (validated, stored with their secrets sealed, masked in every
//! answer), the catalog they can come from, and the pool of upstream sessions that serve them.
#![forbid(unsafe_code)]

pub mod access;
pub mod access_admin;
pub mod access_requests;
pub mod admin_mcp;
pub mod aggregate;
pub mod api_keys;
pub mod app_store;
pub mod audit;
mod call;
pub mod catalog;
mod client_sessions;
mod definition_cache;
mod definitions;
mod era;
mod error;
mod forward;
mod held_calls;
pub mod import;
pub mod metrics;
pub mod model;
pub mod org_settings;
mod own_tools;
pub mod policy;
pub mod pool;
pub mod proxy;
mod pruner;
pub mod raw_path;
pub mod recent;
mod registry_watch;
mod relay;
mod served;
pub mod session_directory;
mod settings;
pub mod shared_sessions;
pub mod user_mcp;
pub mod users_admin;
pub mod webhooks;

use std::{
    collections::{BTreeMap, HashMap},
    sync::{Arc, Mutex},
    time::Duration,
};

use serde::Serialize;
use switchboard_mcp::Upstream;
use switchboard_store::{SecretBox, ServerRow, Store};
use switchboard_tools::RemoteServerConfig;

pub use crate::{
    call::call_span, definition_cache::DEFINITION_TTL, error::GatewayError, served::Served,
    settings::GatewaySettings,
};
use crate::{
    catalog::Catalog,
    definition_cache::{DefinitionCache, Resolved},
    definitions::apply_update,
    model::{
        CommandConfig, CreateServer, PackageConfig, RemoteConfig, Runtime, ServerDefinition,
        UpdateServer,
    },
    pool::{Status, UpstreamPool},
};

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
    /// Stateless clients' calls to session-era upstreams, held between the clients' rounds.
    held_calls: held_calls::HeldCalls,
    /// Each served server's governed tools, by id, with the upstream they came from.
    served: Arc<Mutex<HashMap<String, served::ServedTools>>>,
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
    /// Downstream sessions whose tool calls may take the raw path.
    shared_sessions: shared_sessions::SharedSessions,
    /// The grants, in memory for the policy.
    access: access::Access,
    /// Who opened each downstream session, for the policy.
    session_directory: session_directory::SessionDirectory,
    /// Wakes the sender of webhook deliveries.
    webhooks: webhooks::Webhooks,
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

/// A registered server, as `/mcp` gathers them and list-change listeners follow them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisteredServer {
    pub id: String,
    pub alias: String,
    /// The definition's `updated_at`: a governance change shows as a new version.
    pub version: i64,
    pub enabled: bool,
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
        let metrics = metrics::Metrics::default();
        Self {
            session_directory: session_directory::SessionDirectory::new(
                store.clone(),
                metrics.session_reads.clone(),
            ),
            store,
            sealer,
            catalog,
            pool: pool.clone(),
            raw_client: switchboard_mcp::RawClient::default(),
            held_calls: held_calls::HeldCalls::default(),
            served: Arc::default(),
            definitions: Arc::default(),
            definitions_reload: Arc::default(),
            registry_changes: Arc::new(tokio::sync::watch::Sender::new(0)),
            registry_poll: Arc::default(),
            audit,
            metrics,
            lagging: aggregate::Lagging::default(),
            shared_sessions: shared_sessions::SharedSessions::new(pool),
            access: access::Access::default(),
            webhooks: webhooks::Webhooks::default(),
            settings,
        }
    }

    /// The grants the policy reads.
    pub fn access(&self) -> &access::Access {
        &self.access
    }

    /// Reads the grants, and keeps them current: every second the store's version is compared,
    /// and a change made by another replica is read, and heard by open sessions as list changes.
    /// Starts the webhook sender too, which tells of access requests and decisions.
    pub async fn start_access(&self) -> Result<(), GatewayError> {
        self.access.reload(&self.store, true).await?;
        let gateway = self.clone();
        self.access
            .spawn_reloader(self.store.clone(), move || gateway.access_moved());
        self.spawn_webhook_sender();
        Ok(())
    }

    /// After a change of grants made here: read at once, and heard by open sessions.
    pub async fn access_changed(&self) -> Result<(), GatewayError> {
        self.access.reload(&self.store, true).await?;
        self.access_moved();
        Ok(())
    }

    /// Tells list-change listeners that the grants changed. A change of grants may come with
    /// one of the registry (a new server brings its permissions, made on another replica): the
    /// definitions are read again before a listener can see the change.
    fn access_moved(&self) {
        self.invalidate_definitions();
        self.access.mark_changed();
        self.announce_registry_change();
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

    pub fn session_directory(&self) -> &session_directory::SessionDirectory {
        &self.session_directory
    }

    pub fn shared_sessions(&self) -> &shared_sessions::SharedSessions {
        &self.shared_sessions
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

    pub(crate) fn held_calls(&self) -> &held_calls::HeldCalls {
        &self.held_calls
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
        // Its first permissions are read at once, with the definitions.
        self.access_changed().await?;
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
        // Its permissions and their grants went with it.
        self.access_changed().await?;
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

    /// A number that changes with every registry change made here, and with those of other
    /// replicas while a listener has the store polled; read without subscribing, so that reading
    /// it keeps no poll going.
    pub fn registry_version(&self) -> u64 {
        *self.registry_changes.borrow()
    }

    /// Tells list-change listeners that what the registry serves may have changed.
    pub(crate) fn announce_registry_change(&self) {
        self.registry_changes
            .send_modify(|changes| *changes = changes.wrapping_add(1));
    }

    /// Forgets a server's upstream and served tools (deleted or changed).
    async fn forget(&self, id: &str) {
        self.invalidate_definitions();
        self.forget_tools(id);
        self.pool.remove(id).await;
    }
}
