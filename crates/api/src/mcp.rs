//! The downstream MCP endpoints: `/mcp/{id-or-alias}` serves one registered server over
//! Streamable HTTP (rmcp's server, both protocol eras). Each server gets its own service, kept
//! until its definition changes.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError},
};

use axum::{
    body::Body,
    extract::{Path, Request, State},
    response::{IntoResponse, Response},
};
use rmcp::transport::streamable_http_server::{
    StreamableHttpServerConfig, StreamableHttpService, session::local::LocalSessionManager,
};
use switchboard_gateway::{
    Gateway, admin_mcp::AdminMcp, aggregate::AggregateHandler, proxy::ProxyHandler,
};
use tokio_util::sync::CancellationToken;

use crate::{AppState, auth::Caller, error::ApiError};

type ProxyService = StreamableHttpService<ProxyHandler, LocalSessionManager>;
type AdminService = StreamableHttpService<AdminMcp, LocalSessionManager>;
type AggregateService = StreamableHttpService<AggregateHandler, LocalSessionManager>;

/// The MCP services, by server id, each with the definition version it serves.
#[derive(Clone)]
pub struct McpMounts {
    services: Arc<Mutex<HashMap<String, Mounted>>>,
    /// Every service's session manager, to count live sessions.
    managers: Arc<Mutex<Vec<Arc<LocalSessionManager>>>>,
    /// The admin MCP server.
    admin: AdminService,
    /// Every enabled server as one.
    aggregate: AggregateService,
    aggregate_sessions: Arc<LocalSessionManager>,
    /// Host names clients may use (rmcp refuses others: a DNS-rebinding guard).
    allowed_hosts: Vec<String>,
    /// How long a downstream session may stay idle before rmcp ends it.
    session_idle_timeout: std::time::Duration,
    /// Cancelled at shutdown: ends every downstream session.
    shutdown: CancellationToken,
}

impl std::fmt::Debug for McpMounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("McpMounts")
            .field("allowed_hosts", &self.allowed_hosts)
            .finish_non_exhaustive()
    }
}

impl McpMounts {
    pub fn new(
        allowed_hosts: Vec<String>,
        session_idle_timeout: std::time::Duration,
        gateway: &Gateway,
    ) -> Self {
        let shutdown = CancellationToken::new();
        let admin_sessions = session_manager(session_idle_timeout);
        let aggregate_sessions = session_manager(session_idle_timeout);
        let for_admin = gateway.clone();
        let admin = StreamableHttpService::new(
            move || Ok(AdminMcp::new(for_admin.clone())),
            admin_sessions.clone(),
            config(&allowed_hosts, &shutdown),
        );
        let for_aggregate = gateway.clone();
        let deadline = gateway.settings().aggregate_deadline;
        let aggregate = StreamableHttpService::new(
            move || Ok(AggregateHandler::new(for_aggregate.clone(), deadline)),
            aggregate_sessions.clone(),
            config(&allowed_hosts, &shutdown),
        );
        Self {
            services: Arc::default(),
            managers: Arc::new(Mutex::new(vec![admin_sessions, aggregate_sessions.clone()])),
            admin,
            aggregate,
            aggregate_sessions,
            allowed_hosts,
            session_idle_timeout,
            shutdown,
        }
    }

    /// Streamable HTTP sessions open now, over every endpoint.
    pub async fn live_sessions(&self) -> usize {
        let managers = self
            .managers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let mut count = 0;
        for manager in managers {
            count += manager.sessions.read().await.len();
        }
        count
    }

    pub fn shutdown(&self) {
        self.shutdown.cancel();
    }

    /// Cancelled at shutdown, for sessions served outside rmcp's services.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.child_token()
    }

    fn service(&self, state: &AppState, id: &str, version: i64) -> Mounted {
        let mut services = self.services.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(mounted) = services.get(id)
            && mounted.version == version
        {
            return mounted.clone();
        }
        let gateway = state.gateway.clone();
        let server = id.to_string();
        let sessions = session_manager(self.session_idle_timeout);
        self.managers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(sessions.clone());
        let service = StreamableHttpService::new(
            move || Ok(ProxyHandler::new(gateway.clone(), server.clone())),
            sessions.clone(),
            config(&self.allowed_hosts, &self.shutdown),
        );
        let mounted = Mounted {
            version,
            service,
            sessions,
        };
        services.insert(id.to_string(), mounted.clone());
        mounted
    }
}

/// A session manager whose sessions end after `idle_timeout` without a request.
fn session_manager(idle_timeout: std::time::Duration) -> Arc<LocalSessionManager> {
    let mut manager = LocalSessionManager::default();
    manager.session_config.keep_alive = Some(idle_timeout);
    Arc::new(manager)
}

/// One server's MCP service, with the definition version it serves.
#[derive(Clone)]
struct Mounted {
    version: i64,
    service: ProxyService,
    sessions: Arc<LocalSessionManager>,
}

fn config(allowed_hosts: &[String], shutdown: &CancellationToken) -> StreamableHttpServerConfig {
    StreamableHttpServerConfig::default()
        .with_allowed_hosts(allowed_hosts.to_vec())
        // A stateless (2026-07-28) answer with nothing before it goes out as plain JSON rather
        // than an event stream; one with progress or logs first still streams, so nothing is lost.
        .with_json_response(true)
        .with_cancellation_token(shutdown.child_token())
}

/// `/mcp/admin`: the admin MCP server.
pub async fn admin(State(state): State<AppState>, _caller: Caller, request: Request) -> Response {
    state
        .mcp
        .admin
        .handle(request)
        .await
        .map(Body::new)
        .into_response()
}

/// `/mcp`: every enabled server as one MCP server.
pub async fn aggregate(
    State(state): State<AppState>,
    _caller: Caller,
    request: Request,
) -> Response {
    let lane = crate::fast_lane::Lane {
        gateway: &state.gateway,
        endpoint: None,
        allowed_hosts: &state.mcp.allowed_hosts,
        sessions: &state.mcp.aggregate_sessions,
    };
    let request = match crate::fast_lane::serve(lane, request).await {
        Ok(response) => return response,
        Err(request) => request,
    };
    state
        .mcp
        .aggregate
        .handle(request)
        .await
        .map(Body::new)
        .into_response()
}

/// `/mcp/{id-or-alias}`: one server's governed tools, resources and prompts.
pub async fn proxy(
    State(state): State<AppState>,
    _caller: Caller,
    Path(server): Path<String>,
    request: Request,
) -> Result<Response, ApiError> {
    let (id, version) = state.gateway.locate(&server).await?;
    let mounted = state.mcp.service(&state, &id, version);
    let lane = crate::fast_lane::Lane {
        gateway: &state.gateway,
        endpoint: Some(&id),
        allowed_hosts: &state.mcp.allowed_hosts,
        sessions: &mounted.sessions,
    };
    let request = match crate::fast_lane::serve(lane, request).await {
        Ok(response) => return Ok(response),
        Err(request) => request,
    };
    let response = mounted.service.handle(request).await;
    Ok(response.map(Body::new).into_response())
}
