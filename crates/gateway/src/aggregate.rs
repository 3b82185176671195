//! `/mcp`: every enabled server as one MCP server. Tool and prompt names are the server's alias,
//! [`SEPARATOR`], and the name the server exposes (`calc__add`); aliases hold no `_`, so the first
//! `__` always ends the alias. Each upstream gets a deadline when lists are gathered: one that
//! misses it is left out, with a warning in the log and in its `status`.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use futures::future::join_all;
use rmcp::{
    ErrorData as McpError, RoleServer, ServerHandler,
    model::{
        CallToolRequestParams, CallToolResponse, ClientRequest, GetPromptRequest,
        GetPromptRequestParams, GetPromptResponse, Implementation, ListPromptsResult,
        ListResourcesResult, ListToolsResult, PaginatedRequestParams, Prompt, ReadResourceRequest,
        ReadResourceRequestParams, ReadResourceResponse, Resource, ServerConfig, ServerResult,
        Tool,
    },
    service::{NotificationContext, RequestContext},
};
use serde_json::json;
use switchboard_tools::transform::sanitize_name;

pub use crate::policy::SEPARATOR;
use crate::policy::{Grants, split};
use crate::{
    Gateway,
    call::{call_served, grants_of, to_mcp, unexpected},
    client_sessions::{ClientSessions, needs_own_session},
    forward::forward_for_client,
    proxy::{page, tool_from_metadata},
    registry_watch::{RegistryWatch, Scope, announce_changes},
};

/// What a `/mcp` client should hear unasked, for the GET stream the HTTP layer serves itself:
/// each enabled server's list changes, and every change to which servers are enabled or to their
/// definitions (added, removed, enabled, disabled, governance changed), each as changes of the
/// aggregate's own lists. The stream stays open while no server is enabled, so that a client
/// does not reconnect in a loop.
pub async fn notifications(
    gateway: &Gateway,
) -> Result<impl futures::Stream<Item = String> + Send + 'static, crate::GatewayError> {
    use futures::StreamExt as _;
    let registry = RegistryWatch::new(gateway.clone(), Scope::Enabled).await?;
    let relays = server_relays(gateway, &registry.servers);
    let batches = futures::stream::unfold(
        (registry, relays),
        |(mut registry, mut relays)| async move {
            let batch: Vec<String> = tokio::select! {
                Some(message) = relays.next() => vec![message],
                () = registry.changed() => {
                    // The relays follow the servers now enabled; an event between the old
                    // relays' end and the new ones' start is covered by these notifications.
                    relays = server_relays(&registry.gateway, &registry.servers);
                    crate::relay::list_changes().collect()
                }
            };
            Some((batch, (registry, relays)))
        },
    );
    Ok(batches.flat_map(futures::stream::iter))
}

/// The list changes of each of `servers`, as one stream.
fn server_relays(
    gateway: &Gateway,
    servers: &[crate::RegisteredServer],
) -> futures::stream::SelectAll<futures::stream::BoxStream<'static, String>> {
    use futures::StreamExt as _;
    futures::stream::select_all(servers.iter().map(|server| {
        crate::relay::notifications(gateway, &server.id, crate::relay::Relayed::ListChanges).boxed()
    }))
}

/// Runs `list` on a server's shared upstream, with failures as the text `gather` reports.
async fn on_upstream<T, Fut>(
    gateway: Gateway,
    id: String,
    list: impl FnOnce(switchboard_mcp::Upstream) -> Fut,
) -> Result<Vec<T>, String>
where
    Fut: std::future::Future<Output = Result<Vec<T>, switchboard_mcp::UpstreamError>>,
{
    let connected = gateway.upstream(&id).await.map_err(|e| e.to_string())?;
    list(connected.upstream).await.map_err(|e| e.to_string())
}

/// Servers whose listing missed the deadline and still runs in the background: every page
/// leaves them out until it ends, so that none waits on them again.
#[derive(Debug, Clone, Default)]
pub(crate) struct Lagging(Arc<Mutex<std::collections::HashSet<String>>>);

impl Lagging {
    fn lock(&self) -> std::sync::MutexGuard<'_, std::collections::HashSet<String>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn contains(&self, id: &str) -> bool {
        self.lock().contains(id)
    }

    /// Lets a listing that missed the deadline finish in the background; once it has, `/mcp`
    /// clients hear that the lists may have changed.
    fn finish<F>(&self, gateway: &Gateway, id: String, listing: F)
    where
        F: std::future::Future + Send + 'static,
    {
        if !self.lock().insert(id.clone()) {
            return;
        }
        let (lagging, gateway) = (self.clone(), gateway.clone());
        tokio::spawn(async move {
            let _ = listing.await;
            lagging.lock().remove(&id);
            gateway.announce_registry_change();
        });
    }
}

/// Where an aggregated name leads.
#[derive(Debug, Clone)]
struct Target {
    /// The server's id.
    server: String,
    /// The name on that server (after its own governance).
    name: String,
}

/// Serves every enabled server to one downstream session.
#[derive(Debug, Clone)]
pub struct AggregateHandler {
    gateway: Gateway,
    deadline: Duration,
    /// Aggregated tool and prompt names, from the last listing.
    names: Arc<Mutex<HashMap<String, Target>>>,
    /// Resource URIs, by the server that listed them.
    resources: Arc<Mutex<HashMap<String, String>>>,
    /// Which upstream session this client uses on each server.
    sessions: ClientSessions,
}

impl AggregateHandler {
    pub fn new(gateway: Gateway, deadline: Duration) -> Self {
        Self {
            gateway,
            deadline,
            names: Arc::default(),
            resources: Arc::default(),
            sessions: ClientSessions::default(),
        }
    }

    /// The aggregated name of `name` on the server with `alias`.
    pub fn aggregated_name(alias: &str, name: &str) -> String {
        sanitize_name(&format!("{alias}{SEPARATOR}{name}"))
    }

    /// Where an aggregated name leads: from this session's listings; else from a fresh one made
    /// by `relist` (a client may call a name it learned in an earlier session, and a hibernated
    /// session wakes without its listings); else by splitting at the separator.
    async fn target(
        &self,
        aggregated: &str,
        relist: impl std::future::Future<Output = ()>,
    ) -> Result<Target, McpError> {
        if let Some(target) = self.known(aggregated) {
            return Ok(target);
        }
        relist.await;
        if let Some(target) = self.known(aggregated) {
            return Ok(target);
        }
        let (alias, name) = split(aggregated).ok_or_else(|| {
            McpError::invalid_params(
                format!("`{aggregated}` is not `<server>{SEPARATOR}<name>`"),
                None,
            )
        })?;
        let connected = self.gateway.upstream(alias).await.map_err(to_mcp)?;
        Ok(Target {
            server: connected.id,
            name: name.to_string(),
        })
    }

    fn known(&self, aggregated: &str) -> Option<Target> {
        self.names
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(aggregated)
            .cloned()
    }

    /// Runs `list` on every enabled server at once, each within the deadline. A server that fails
    /// or misses it is left out and marked in its status. A listing that misses it goes on in the
    /// background, and its server is left out at once until it has ended.
    async fn gather<T, F, Fut>(
        &self,
        what: &str,
        grants: &Grants,
        list: F,
    ) -> Result<Vec<(String, String, Vec<T>)>, McpError>
    where
        F: Fn(Gateway, String) -> Fut,
        Fut: std::future::Future<Output = Result<Vec<T>, String>> + Send + 'static,
    {
        let mut enabled = self.gateway.enabled_servers().await.map_err(to_mcp)?;
        // A server the caller holds no permission on is not theirs to see.
        enabled.retain(|server| grants.any_on(&server.id));
        let list = &list;
        let lists = enabled.iter().map(|server| async move {
            if self.gateway.lagging().contains(&server.id) {
                let reason = "still listing after missing the deadline".to_string();
                return (server, Err(reason));
            }
            let mut listing = Box::pin(list(self.gateway.clone(), server.id.clone()));
            let outcome = match tokio::time::timeout(self.deadline, &mut listing).await {
                Ok(outcome) => outcome,
                Err(_) => {
                    let lagging = self.gateway.lagging();
                    lagging.finish(&self.gateway, server.id.clone(), listing);
                    Err(format!(
                        "did not list its {what} within {} ms",
                        self.deadline.as_millis()
                    ))
                }
            };
            (server, outcome)
        });
        let mut gathered = Vec::new();
        for (server, outcome) in join_all(lists).await {
            match outcome {
                Ok(items) => gathered.push((server.id.clone(), server.alias.clone(), items)),
                Err(reason) => {
                    tracing::warn!(server = %server.alias, "left out of /mcp: {reason}");
                    self.gateway
                        .pool()
                        .record(&server.id, Err(format!("left out of /mcp: {reason}")));
                }
            }
        }
        Ok(gathered)
    }

    /// Records an aggregated name, refusing one already taken (logged, never silent).
    fn claim(&self, aggregated: &str, target: Target, alias: &str) -> bool {
        let mut names = self.names.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(existing) = names.get(aggregated)
            && existing.server != target.server
        {
            tracing::warn!(
                name = aggregated,
                server = alias,
                "left out of /mcp: the name is taken by another server"
            );
            return false;
        }
        names.insert(aggregated.to_string(), target);
        true
    }
}

impl ServerHandler for AggregateHandler {
    /// A session that keeps its rmcp session awake (its client answers server-to-client
    /// requests) hears of registry changes from here; the GET stream of any other is served
    /// outside rmcp, by [`notifications`].
    async fn on_initialized(&self, context: NotificationContext<RoleServer>) {
        if !needs_own_session(&context.peer) {
            return;
        }
        announce_changes(
            &self.gateway,
            Scope::Enabled,
            context.peer,
            self.sessions.ended(),
        )
        .await;
    }

    /// 2026-07-28 clients subscribe to list changes with `subscriptions/listen`.
    fn accepted_subscription_filter(
        &self,
        requested: &rmcp::model::SubscriptionFilter,
    ) -> Option<rmcp::model::SubscriptionFilter> {
        Some(crate::relay::list_change_filter(requested))
    }

    /// Relays what [`notifications`] carries to a 2026-07-28 subscription until it ends.
    async fn listen(&self, context: rmcp::service::SubscriptionContext) -> Result<(), McpError> {
        let changes = notifications(&self.gateway).await.map_err(to_mcp)?;
        crate::relay::serve_subscription(&context, changes).await;
        Ok(())
    }

    fn get_info(&self) -> ServerConfig {
        let capabilities = serde_json::from_value(json!({
            "tools": {"listChanged": true},
            "resources": {"listChanged": true},
            "prompts": {"listChanged": true},
        }))
        .unwrap_or_default();
        ServerConfig::new(capabilities)
            .with_server_info(Implementation::new(
                "switchboard",
                env!("CARGO_PKG_VERSION"),
            ))
            .with_instructions(format!(
                "Every tool and prompt is named <server>{SEPARATOR}<name>."
            ))
    }

    async fn list_tools(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        let tools = self
            .listed_tools(&context.peer, &grants_of(&context))
            .await?;
        let cursor = request.as_ref().and_then(|r| r.cursor.as_deref());
        let (tools, next_cursor) = page(&tools, cursor, self.gateway.settings().tools_page_size)?;
        Ok(ListToolsResult {
            tools,
            next_cursor,
            ..ListToolsResult::default()
        })
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let relist = async {
            let _ = self.listed_tools(&context.peer, &grants_of(&context)).await;
        };
        let target = self.target(&request.name, relist).await?;
        let served = self
            .sessions
            .for_client(&self.gateway, &target.server, &context.peer)
            .await?;
        call_served(&self.gateway, &served, &target.name, request, &context).await
    }

    async fn list_prompts(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, McpError> {
        Ok(ListPromptsResult {
            prompts: self.listed_prompts(&grants_of(&context)).await?,
            ..ListPromptsResult::default()
        })
    }

    async fn get_prompt(
        &self,
        mut request: GetPromptRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, McpError> {
        let relist = async {
            let _ = self.listed_prompts(&grants_of(&context)).await;
        };
        let target = self.target(&request.name, relist).await?;
        request.name = target.name;
        let request = ClientRequest::GetPromptRequest(GetPromptRequest::new(request));
        match forward_for_client(
            &self.gateway,
            &self.sessions,
            &target.server,
            &context,
            request,
        )
        .await?
        {
            ServerResult::GetPromptResult(result) => Ok(result.into()),
            ServerResult::InputRequiredResult(pending) => {
                Ok(GetPromptResponse::InputRequired(pending))
            }
            _ => Err(unexpected()),
        }
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, McpError> {
        Ok(ListResourcesResult {
            resources: self.listed_resources(&grants_of(&context)).await?,
            ..ListResourcesResult::default()
        })
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, McpError> {
        if self.owner(request.uri.as_str()).is_none() {
            // Not listed in this session (see `target`).
            let _ = self.listed_resources(&grants_of(&context)).await;
        }
        let owner = self.owner(request.uri.as_str()).ok_or_else(|| {
            McpError::invalid_params("unknown resource: no server lists it", None)
        })?;
        let request = ClientRequest::ReadResourceRequest(ReadResourceRequest::new(request));
        match forward_for_client(&self.gateway, &self.sessions, &owner, &context, request).await? {
            ServerResult::ReadResourceResult(result) => Ok(result.into()),
            ServerResult::InputRequiredResult(pending) => {
                Ok(ReadResourceResponse::InputRequired(pending))
            }
            _ => Err(unexpected()),
        }
    }
}

impl AggregateHandler {
    /// The server that listed a resource.
    fn owner(&self, uri: &str) -> Option<String> {
        self.resources
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(uri)
            .cloned()
    }

    /// Each listed item under its aggregated name (`rename`), for the names this session could
    /// claim; an item whose name another server took is left out (and logged by `claim`).
    fn claim_all<T, U>(
        &self,
        gathered: Vec<(String, String, Vec<T>)>,
        name: impl Fn(&T) -> &String,
        rename: impl Fn(T, String) -> U,
    ) -> Vec<U> {
        let mut claimed = Vec::new();
        for (id, alias, listed) in gathered {
            for item in listed {
                let aggregated = Self::aggregated_name(&alias, name(&item));
                let target = Target {
                    server: id.clone(),
                    name: name(&item).clone(),
                };
                if self.claim(&aggregated, target, &alias) {
                    claimed.push(rename(item, aggregated));
                }
            }
        }
        claimed
    }

    /// Every enabled server's tools under their aggregated names, which are claimed for calls.
    async fn listed_tools(
        &self,
        peer: &rmcp::Peer<RoleServer>,
        grants: &Grants,
    ) -> Result<Vec<Tool>, McpError> {
        let gathered = self
            .gather("tools", grants, |gateway, id| {
                let sessions = self.sessions.clone();
                let peer = peer.clone();
                let grants = grants.clone();
                async move {
                    let served = sessions
                        .for_client(&gateway, &id, &peer)
                        .await
                        .map_err(|e| e.message.to_string())?;
                    let mut tools = served.registry.list();
                    tools.retain(|tool| grants.permit(&id, &tool.name, tool.read_only()));
                    Ok(tools)
                }
            })
            .await?;
        Ok(self.claim_all(
            gathered,
            |metadata| &metadata.name,
            |metadata, aggregated| {
                let mut tool = tool_from_metadata(&metadata);
                tool.name = aggregated.into();
                tool
            },
        ))
    }

    /// Every enabled server's prompts under their aggregated names, which are claimed for gets.
    async fn listed_prompts(&self, grants: &Grants) -> Result<Vec<Prompt>, McpError> {
        let gathered = self
            .gather("prompts", grants, |gateway, id| {
                on_upstream(gateway, id, |upstream| async move {
                    upstream.list_prompts().await
                })
            })
            .await?;
        Ok(self.claim_all(
            gathered,
            |prompt| &prompt.name,
            |mut prompt, aggregated| {
                prompt.name = aggregated;
                prompt
            },
        ))
    }

    /// Every enabled server's resources, each remembered with the first server that lists it.
    async fn listed_resources(&self, grants: &Grants) -> Result<Vec<Resource>, McpError> {
        let gathered = self
            .gather("resources", grants, |gateway, id| {
                on_upstream(gateway, id, |upstream| async move {
                    upstream.list_resources().await
                })
            })
            .await?;
        let mut resources: Vec<Resource> = Vec::new();
        let mut owners = self
            .resources
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        for (id, _, listed) in gathered {
            for resource in listed {
                owners
                    .entry(resource.uri.to_string())
                    .or_insert_with(|| id.clone());
                resources.push(resource);
            }
        }
        Ok(resources)
    }
}
