//! One registered server served downstream as an MCP server: its governed tools (renamed,
//! filtered, pinned params hidden and injected) and its resources, prompts and completions passed
//! through. Progress is relayed to the calling client, and a client's cancel goes upstream.

use rmcp::{
    ErrorData as McpError, RoleServer, ServerHandler,
    model::{
        CallToolRequestParams, CallToolResponse, ClientRequest, CompleteRequest,
        CompleteRequestParams, CompleteResult, GetPromptRequest, GetPromptRequestParams,
        GetPromptResponse, Implementation, ListPromptsRequest, ListPromptsResult,
        ListResourceTemplatesRequest, ListResourceTemplatesResult, ListResourcesRequest,
        ListResourcesResult, ListToolsResult, PaginatedRequestParams, ReadResourceRequest,
        ReadResourceRequestParams, ReadResourceResponse, ServerConfig, ServerResult, Tool,
    },
    service::{NotificationContext, Peer, RequestContext},
};
use serde_json::json;
use switchboard_tools::ToolMetadata;

pub use crate::call::{call_served, upstream_to_mcp};
pub(crate) use crate::client_sessions::needs_own_session;
pub use crate::client_sessions::{ClientSessions, answers_requests};
use crate::{
    Gateway, Served,
    call::{to_mcp, unexpected},
    era,
    forward::{forward, forward_for_client},
    held_calls::{Asking, Heard, hold_if_needed},
    registry_watch::{Scope, announce_changes},
    relay::{list_change_filter, relay_to_peer, serve_subscription},
};
pub use crate::{registry_watch::followed_notifications, relay::Relayed};

/// Tools per `tools/list` page sent downstream, unless configured.
pub const DEFAULT_TOOLS_PAGE_SIZE: usize = 100;

/// Serves one registered server (by id or alias) to one downstream session.
#[derive(Debug, Clone)]
pub struct ProxyHandler {
    gateway: Gateway,
    server: String,
    /// Which upstream session this client's calls use.
    sessions: ClientSessions,
    /// Whether the session's every notification goes through rmcp's peer (legacy SSE), rather
    /// than, for a client with no upstream session of its own, through the GET stream served
    /// outside rmcp.
    notifies_through_peer: bool,
    /// A legacy SSE session's own record (it has no raw-path registration to keep one): the
    /// resources it subscribed to.
    own_record: Option<std::sync::Arc<crate::shared_sessions::OwnRecord>>,
}

impl ProxyHandler {
    pub fn new(gateway: Gateway, server: impl Into<String>) -> Self {
        Self {
            gateway,
            server: server.into(),
            sessions: ClientSessions::default(),
            notifies_through_peer: false,
            own_record: None,
        }
    }

    /// For a session whose every notification goes through rmcp's peer: one of legacy SSE,
    /// whose only stream is the one rmcp writes to.
    pub fn notifying_through_peer(mut self) -> Self {
        self.notifies_through_peer = true;
        self.own_record = Some(std::sync::Arc::new(crate::shared_sessions::OwnRecord::new(
            &self.gateway,
            &self.server,
        )));
        self
    }

    /// Sends the client of `peer` what [`followed_notifications`] carries until its session ends.
    async fn relay_followed(&self, peer: Peer<RoleServer>) {
        let relayed = Relayed::Session(self.own_record.as_ref().map(|own| own.session()));
        match followed_notifications(&self.gateway, &self.server, relayed).await {
            Ok(notifications) => relay_to_peer(notifications, peer, self.sessions.ended()),
            Err(reason) => {
                tracing::warn!(server = %self.server, "a session will hear no notifications: {reason}");
            }
        }
    }

    /// The gateway's record of a client session on the shared upstream (see
    /// `shared_sessions::SharedSessions`), found by the request's `Mcp-Session-Id`; `None` for a client
    /// with an upstream session of its own, and for legacy SSE.
    fn shared_session(
        &self,
        context: &RequestContext<RoleServer>,
    ) -> Option<std::sync::Arc<crate::shared_sessions::SharedSession>> {
        if let Some(own) = &self.own_record {
            return Some(own.session());
        }
        let parts = context.extensions.get::<http::request::Parts>()?;
        let id = parts.headers.get("mcp-session-id")?.to_str().ok()?;
        self.gateway.shared_sessions().get(id, Some(&self.server))
    }

    /// What this server declares to a client (see `era::declared`): the upstream's own
    /// capabilities, asked for when the client starts. An upstream out of reach, or slower than
    /// the aggregate's listing deadline, leaves the gateway's lists only.
    async fn declared(&self) -> rmcp::model::ServerCapabilities {
        let fallback = || self.get_info().capabilities;
        let Ok(connected) = self.gateway.upstream(&self.server).await else {
            return fallback();
        };
        let deadline = self.gateway.settings().aggregate_deadline;
        match tokio::time::timeout(deadline, connected.upstream.capabilities()).await {
            Ok(Ok(capabilities)) => era::declared(&capabilities),
            Ok(Err(_)) | Err(_) => fallback(),
        }
    }

    /// The upstream session this client's calls go to.
    async fn session_for(&self, peer: &Peer<RoleServer>) -> Result<Served, McpError> {
        self.sessions
            .for_client(&self.gateway, &self.server, peer)
            .await
    }

    async fn forward(&self, request: ClientRequest) -> Result<ServerResult, McpError> {
        forward(&self.gateway, &self.server, request).await
    }

    async fn forward_for(
        &self,
        context: &RequestContext<RoleServer>,
        request: ClientRequest,
    ) -> Result<ServerResult, McpError> {
        forward_for_client(
            &self.gateway,
            &self.sessions,
            &self.server,
            context,
            request,
        )
        .await
    }
}

/// A tool as MCP clients get it, from the registry's metadata.
pub fn tool_from_metadata(metadata: &ToolMetadata) -> Tool {
    let mut tool = json!({
        "name": metadata.name,
        "inputSchema": metadata.input_schema,
    });
    if let Some(description) = &metadata.description {
        tool["description"] = json!(description);
    }
    if let Some(output) = &metadata.output_schema {
        tool["outputSchema"] = json!(output);
    }
    if let Some(annotations) = &metadata.annotations {
        tool["annotations"] = json!(annotations);
    }
    serde_json::from_value(tool).unwrap_or_else(|_| Tool::default())
}

/// One page of a list, by the offset its cursor holds.
pub fn page<T: Clone>(
    items: &[T],
    cursor: Option<&str>,
    size: usize,
) -> Result<(Vec<T>, Option<String>), McpError> {
    let start = match cursor {
        None => 0,
        Some(cursor) => cursor
            .parse::<usize>()
            .ok()
            .filter(|start| *start <= items.len())
            .ok_or_else(|| McpError::invalid_params("the cursor is not valid", None))?,
    };
    let end = (start + size).min(items.len());
    let next = (end < items.len()).then(|| end.to_string());
    Ok((items[start..end].to_vec(), next))
}

impl ServerHandler for ProxyHandler {
    /// The lists this server may serve; a client is told what the upstream has instead
    /// ([`Self::initialize`], [`Self::discover`]).
    /// What the server declares when it must be known at once (rmcp checks a 2026-07-28
    /// subscription against it): as the running upstream's session has it, or the gateway's
    /// lists alone.
    fn get_info(&self) -> ServerConfig {
        let known = self
            .gateway
            .pool()
            .running(&self.server)
            .and_then(|upstream| upstream.known_capabilities());
        let capabilities = match known {
            Some(upstream) => era::declared(&upstream),
            None => serde_json::from_value(json!({
                "tools": {"listChanged": true},
                "resources": {"listChanged": true},
                "prompts": {"listChanged": true},
            }))
            .unwrap_or_default(),
        };
        ServerConfig::new(capabilities).with_server_info(Implementation::new(
            format!("switchboard/{}", self.server),
            env!("CARGO_PKG_VERSION"),
        ))
    }

    async fn initialize(
        &self,
        request: rmcp::model::InitializeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<rmcp::model::InitializeResult, McpError> {
        context.peer.set_peer_info(request.clone());
        let mut result = self.negotiate_initialize(&request)?;
        result.capabilities = self.declared().await;
        Ok(result)
    }

    async fn discover(
        &self,
        _context: RequestContext<RoleServer>,
    ) -> Result<rmcp::model::DiscoverResult, McpError> {
        let mut info = self.get_info();
        info.capabilities = self.declared().await;
        Ok(rmcp::model::DiscoverResult::from_server_info(
            self.supported_protocol_versions().into_owned(),
            info,
        ))
    }

    /// A session that keeps its rmcp session awake (its client answers server-to-client
    /// requests) hears of the server's definition changes from here, and of its upstream's events
    /// from its own upstream session's relay. A legacy SSE session on the shared upstream hears
    /// both from here. The GET stream of any other is served outside rmcp, by
    /// [`followed_notifications`].
    async fn on_initialized(&self, context: NotificationContext<RoleServer>) {
        if !needs_own_session(&context.peer) {
            if self.notifies_through_peer {
                self.relay_followed(context.peer).await;
            }
            return;
        }
        let scope = Scope::Server(self.server.clone());
        announce_changes(&self.gateway, scope, context.peer, self.sessions.ended()).await;
    }

    /// 2026-07-28 clients subscribe to list changes and resource updates with
    /// `subscriptions/listen`.
    fn accepted_subscription_filter(
        &self,
        requested: &rmcp::model::SubscriptionFilter,
    ) -> Option<rmcp::model::SubscriptionFilter> {
        let mut accepted = list_change_filter(requested);
        accepted
            .resource_subscriptions
            .clone_from(&requested.resource_subscriptions);
        Some(accepted)
    }

    /// Relays the upstream's list changes, the server's definition changes as list changes, and
    /// the updates of the resources the stream names, to a 2026-07-28 subscription until it
    /// ends. The resources are subscribed to upstream, in whichever era it speaks, for as long
    /// as the stream lasts.
    async fn listen(&self, context: rmcp::service::SubscriptionContext) -> Result<(), McpError> {
        let uris: std::collections::BTreeSet<String> = context
            .accepted()
            .resource_subscriptions
            .iter()
            .flatten()
            .cloned()
            .collect();
        // Let go of when the stream ends, however it ends.
        let mut held = crate::pool::HeldSubscriptions {
            pool: self.gateway.pool().clone(),
            server: self.server.clone(),
            uris: Vec::new(),
        };
        let relayed = if uris.is_empty() {
            Relayed::ListChanges
        } else {
            let connected = self.gateway.upstream(&self.server).await.map_err(to_mcp)?;
            for uri in &uris {
                match connected.upstream.subscribe_resource(uri).await {
                    Ok(()) => held.uris.push(uri.clone()),
                    Err(error) => {
                        tracing::warn!(server = %self.server, %uri, %error, "cannot subscribe to a resource upstream");
                    }
                }
            }
            Relayed::Resources(uris)
        };
        let changes = followed_notifications(&self.gateway, &self.server, relayed)
            .await
            .map_err(to_mcp)?;
        serve_subscription(&context, changes).await;
        Ok(())
    }

    async fn list_tools(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        // A client that can answer sampling or elicitation may see tools that need it.
        let served = self.session_for(&context.peer).await?;
        let grants = crate::call::grants_of(&context);
        let tools: Vec<Tool> = served
            .registry
            .list()
            .iter()
            .filter(|tool| grants.permit(&served.id, &tool.name, tool.read_only()))
            .map(tool_from_metadata)
            .collect();
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
        let asking = Asking::Tool(request);
        let request = match hold_if_needed(&self.gateway, &self.server, &context, asking).await? {
            Ok(Heard::Done(done)) => match *done {
                ServerResult::CallToolResult(result) => return Ok(result.into()),
                _ => return Err(unexpected()),
            },
            Ok(Heard::InputRequired(pending)) => {
                return Ok(CallToolResponse::InputRequired(pending));
            }
            Err(Asking::Tool(request)) => request,
            Err(Asking::Prompt(_)) => return Err(unexpected()),
        };
        let served = self.session_for(&context.peer).await?;
        let name = request.name.to_string();
        call_served(&self.gateway, &served, &name, request, &context).await
    }

    async fn list_resources(
        &self,
        request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, McpError> {
        let params = request.unwrap_or_default();
        let request = ClientRequest::ListResourcesRequest(ListResourcesRequest::with_param(params));
        match self.forward(request).await? {
            ServerResult::ListResourcesResult(result) => Ok(result),
            _ => Err(unexpected()),
        }
    }

    async fn list_resource_templates(
        &self,
        request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, McpError> {
        let params = request.unwrap_or_default();
        let request = ClientRequest::ListResourceTemplatesRequest(
            ListResourceTemplatesRequest::with_param(params),
        );
        match self.forward(request).await? {
            ServerResult::ListResourceTemplatesResult(result) => Ok(result),
            _ => Err(unexpected()),
        }
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, McpError> {
        let request = ClientRequest::ReadResourceRequest(ReadResourceRequest::new(request));
        match self.forward_for(&context, request).await? {
            ServerResult::ReadResourceResult(result) => Ok(result.into()),
            ServerResult::InputRequiredResult(pending) => {
                Ok(ReadResourceResponse::InputRequired(pending))
            }
            _ => Err(unexpected()),
        }
    }

    async fn list_prompts(
        &self,
        request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, McpError> {
        let params = request.unwrap_or_default();
        let request = ClientRequest::ListPromptsRequest(ListPromptsRequest::with_param(params));
        match self.forward(request).await? {
            ServerResult::ListPromptsResult(result) => Ok(result),
            _ => Err(unexpected()),
        }
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, McpError> {
        let asking = Asking::Prompt(request);
        let request = match hold_if_needed(&self.gateway, &self.server, &context, asking).await? {
            Ok(Heard::Done(done)) => match *done {
                ServerResult::GetPromptResult(result) => return Ok(result.into()),
                _ => return Err(unexpected()),
            },
            Ok(Heard::InputRequired(pending)) => {
                return Ok(GetPromptResponse::InputRequired(pending));
            }
            Err(Asking::Prompt(request)) => request,
            Err(Asking::Tool(_)) => return Err(unexpected()),
        };
        let request = ClientRequest::GetPromptRequest(GetPromptRequest::new(request));
        match self.forward_for(&context, request).await? {
            ServerResult::GetPromptResult(result) => Ok(result.into()),
            ServerResult::InputRequiredResult(pending) => {
                Ok(GetPromptResponse::InputRequired(pending))
            }
            _ => Err(unexpected()),
        }
    }

    // Logging and resource subscriptions are legacy-era features that rmcp marks deprecated;
    // clients of those revisions still use them, so they pass through.
    /// Forwarded to a session-era upstream; a stateless one has no such method, and the gateway
    /// accepts the level in its place (the upstream's log messages are relayed as it sends them).
    #[allow(deprecated)]
    async fn set_level(
        &self,
        request: rmcp::model::SetLevelRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        let connected = self.gateway.upstream(&self.server).await.map_err(to_mcp)?;
        // Connected first, so that the era is known.
        let known = connected.upstream.capabilities().await.is_ok();
        if known && era::is_stateless(connected.upstream.protocol_version().as_ref()) {
            return Ok(());
        }
        let request = ClientRequest::SetLevelRequest(rmcp::model::SetLevelRequest::new(request));
        self.forward(request).await.map(|_| ())
    }

    /// A client on the shared upstream subscribes through the gateway, which keeps its
    /// subscriptions and asks the upstream once per resource, in either era (see
    /// `Upstream::subscribe_resource`). A client with an upstream session of its own subscribes
    /// on it.
    #[allow(deprecated)]
    async fn subscribe(
        &self,
        request: rmcp::model::SubscribeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        let Some(session) = self.shared_session(&context) else {
            let request =
                ClientRequest::SubscribeRequest(rmcp::model::SubscribeRequest::new(request));
            return self.forward_for(&context, request).await.map(|_| ());
        };
        if !session.subscribe(&request.uri) {
            return Ok(());
        }
        let subscribed = match self.gateway.upstream(&self.server).await {
            Ok(connected) => connected
                .upstream
                .subscribe_resource(&request.uri)
                .await
                .map_err(|error| to_mcp(error.into())),
            Err(error) => Err(to_mcp(error)),
        };
        if subscribed.is_err() {
            session.unsubscribe(&request.uri);
        }
        subscribed
    }

    #[allow(deprecated)]
    async fn unsubscribe(
        &self,
        request: rmcp::model::UnsubscribeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        let Some(session) = self.shared_session(&context) else {
            let request =
                ClientRequest::UnsubscribeRequest(rmcp::model::UnsubscribeRequest::new(request));
            return self.forward_for(&context, request).await.map(|_| ());
        };
        if session.unsubscribe(&request.uri) {
            self.gateway
                .pool()
                .unsubscribe_resource(&self.server, &request.uri)
                .await;
        }
        Ok(())
    }

    async fn complete(
        &self,
        request: CompleteRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<CompleteResult, McpError> {
        let request = ClientRequest::CompleteRequest(CompleteRequest::new(request));
        match self.forward(request).await? {
            ServerResult::CompleteResult(result) => Ok(result),
            _ => Err(unexpected()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_follow_their_cursor() {
        let items: Vec<u32> = (0..5).collect();
        assert_eq!(
            page(&items, None, 2).expect("page"),
            (vec![0, 1], Some("2".into()))
        );
        assert_eq!(page(&items, Some("4"), 2).expect("page"), (vec![4], None));
        assert!(page(&items, Some("9"), 2).is_err());
        assert!(page(&items, Some("x"), 2).is_err());
    }
}
