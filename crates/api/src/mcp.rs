//! The downstream MCP endpoints: `/mcp/{id-or-alias}` serves one registered server over
//! Streamable HTTP (rmcp's server, both protocol eras). Each server gets its own service, kept
//! until the server is deleted: its handler reads the server's definition at every request, so
//! its sessions outlive a definition change and hear of it as list changes.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError},
};

use axum::{
    body::Body,
    extract::{Request, State},
    response::{IntoResponse, Response},
};
use rmcp::transport::streamable_http_server::{
    StreamableHttpServerConfig, StreamableHttpService,
    session::{SessionStore, local::LocalSessionManager},
};
use switchboard_gateway::{
    Gateway, admin_mcp::AdminMcp, aggregate::AggregateHandler, policy::Decision,
    proxy::ProxyHandler, user_mcp::UserMcp,
};
use tokio_util::sync::CancellationToken;

use crate::{
    AppState,
    sessions::{DirectorySessions, HibernatingSessions},
};

type ProxyService = StreamableHttpService<ProxyHandler, HibernatingSessions>;
type AdminService = StreamableHttpService<AdminMcp, LocalSessionManager>;
type UserService = StreamableHttpService<UserMcp, LocalSessionManager>;
type AggregateService = StreamableHttpService<AggregateHandler, HibernatingSessions>;

/// The MCP services, by server id.
#[derive(Clone)]
pub struct McpMounts {
    services: Arc<Mutex<HashMap<String, Arc<Mounted>>>>,
    /// The session managers of the proxy endpoints, to count live sessions and end idle
    /// hibernated ones.
    managers: Arc<crate::sessions::Endpoints>,
    /// The admin MCP server.
    admin: AdminService,
    /// The admin server's sessions: rmcp's own, as they have no raw path to sleep behind (kept in
    /// the session directory for other replicas all the same).
    admin_sessions: Arc<LocalSessionManager>,
    /// The self-service MCP server, and its sessions (rmcp's own, as the admin server's).
    user: UserService,
    user_sessions: Arc<LocalSessionManager>,
    /// Every enabled server as one.
    aggregate: AggregateService,
    aggregate_sessions: Arc<HibernatingSessions>,
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
        let own_sessions = || {
            let mut sessions = LocalSessionManager::default();
            sessions.session_config.keep_alive = Some(session_idle_timeout);
            Arc::new(sessions)
        };
        let admin_sessions = own_sessions();
        let user_sessions = own_sessions();
        let aggregate_sessions = HibernatingSessions::new(
            None,
            gateway.shared_sessions().clone(),
            gateway.session_directory().clone(),
            session_idle_timeout,
        );
        gateway
            .session_directory()
            .set_idle_timeout(session_idle_timeout);
        gateway.session_directory().spawn_watch();
        let for_admin = gateway.clone();
        let admin = StreamableHttpService::new(
            move || Ok(AdminMcp::new(for_admin.clone())),
            admin_sessions.clone(),
            config(
                &allowed_hosts,
                &shutdown,
                DirectorySessions::new(gateway.session_directory(), "admin"),
            ),
        );
        let for_user = gateway.clone();
        let user = StreamableHttpService::new(
            move || Ok(UserMcp::new(for_user.clone())),
            user_sessions.clone(),
            config(
                &allowed_hosts,
                &shutdown,
                DirectorySessions::new(gateway.session_directory(), "user"),
            ),
        );
        let for_aggregate = gateway.clone();
        let deadline = gateway.settings().aggregate_deadline;
        let aggregate = StreamableHttpService::new(
            move || Ok(AggregateHandler::new(for_aggregate.clone(), deadline)),
            aggregate_sessions.clone(),
            config(&allowed_hosts, &shutdown, aggregate_sessions.clone()),
        );
        let managers = Arc::new(crate::sessions::Endpoints::default());
        managers.add(&aggregate_sessions);
        let services = Arc::default();
        spawn_housekeeping(
            gateway.clone(),
            Arc::downgrade(&services),
            Arc::downgrade(&managers),
            switchboard_gateway::shared_sessions::touch_interval(session_idle_timeout),
            session_idle_timeout,
            shutdown.clone(),
        );
        Self {
            services,
            managers,
            admin,
            admin_sessions,
            user,
            user_sessions,
            aggregate,
            aggregate_sessions,
            allowed_hosts,
            session_idle_timeout,
            shutdown,
        }
    }

    /// Streamable HTTP sessions open now, over every endpoint, awake or hibernated.
    pub async fn live_sessions(&self) -> usize {
        let proxied: usize = self.managers.live().iter().map(|m| m.count()).sum();
        proxied
            + self.admin_sessions.sessions.read().await.len()
            + self.user_sessions.sessions.read().await.len()
    }

    /// Proxy sessions hibernated now (see [`crate::sessions`]).
    pub fn hibernated_sessions(&self) -> usize {
        self.managers.live().iter().map(|m| m.hibernated()).sum()
    }

    pub fn shutdown(&self) {
        self.shutdown.cancel();
    }

    /// The host names clients may use.
    pub(crate) fn allowed_hosts(&self) -> &[String] {
        &self.allowed_hosts
    }

    /// Cancelled at shutdown, for sessions served outside rmcp's services.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.child_token()
    }

    fn service(&self, state: &AppState, id: &str) -> Arc<Mounted> {
        let mut services = self.services.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(mounted) = services.get(id) {
            return Arc::clone(mounted);
        }
        let gateway = state.gateway.clone();
        let server = id.to_string();
        let sessions = HibernatingSessions::new(
            Some(id.to_string()),
            gateway.shared_sessions().clone(),
            gateway.session_directory().clone(),
            self.session_idle_timeout,
        );
        self.managers.add(&sessions);
        let service = StreamableHttpService::new(
            move || Ok(ProxyHandler::new(gateway.clone(), server.clone())),
            sessions.clone(),
            config(&self.allowed_hosts, &self.shutdown, sessions.clone()),
        );
        let mounted = Arc::new(Mounted { service, sessions });
        services.insert(id.to_string(), Arc::clone(&mounted));
        mounted
    }
}

/// How soon a server deleted through this gateway has its endpoint taken down.
const DELETION_CHECK: std::time::Duration = std::time::Duration::from_secs(1);

/// Ends idle hibernated sessions of every endpoint, every `expiry` interval, and takes down the
/// endpoints of deleted servers, ending their sessions: at once (within a second) for a deletion
/// made here, and with the expiry for one made by another replica. Runs until shutdown.
fn spawn_housekeeping(
    gateway: Gateway,
    services: std::sync::Weak<Mutex<HashMap<String, Arc<Mounted>>>>,
    endpoints: std::sync::Weak<crate::sessions::Endpoints>,
    expiry: std::time::Duration,
    idle_timeout: std::time::Duration,
    shutdown: CancellationToken,
) {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(expiry.min(DELETION_CHECK));
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut seen_version = gateway.registry_version();
        let mut expired_at = tokio::time::Instant::now();
        let mut ended = gateway.session_directory().ended();
        loop {
            tokio::select! {
                _ = ticks.tick() => {}
                session = ended.recv() => {
                    // Ended on another replica: this one's copy ends too. (A lagging receiver
                    // skips ids; their copies end with the idle timeout.)
                    if let (Ok(session), Some(endpoints)) = (session, endpoints.upgrade()) {
                        for endpoint in endpoints.live() {
                            endpoint.end_one(&session).await;
                        }
                    }
                    continue;
                }
                () = shutdown.cancelled() => return,
            }
            let (Some(services), Some(endpoints)) = (services.upgrade(), endpoints.upgrade())
            else {
                return;
            };
            let version = gateway.registry_version();
            let due = expired_at.elapsed() >= expiry;
            if due {
                expired_at = tokio::time::Instant::now();
                gateway.session_directory().prune(idle_timeout * 2);
                for endpoint in endpoints.live() {
                    endpoint.expire_idle();
                }
            }
            if due || version != seen_version {
                seen_version = version;
                take_down_deleted(&gateway, &services).await;
            }
        }
    });
}

/// Removes the endpoints of servers no longer registered, and ends their sessions.
async fn take_down_deleted(gateway: &Gateway, services: &Mutex<HashMap<String, Arc<Mounted>>>) {
    let lock = || services.lock().unwrap_or_else(PoisonError::into_inner);
    if lock().is_empty() {
        return;
    }
    let registered = match gateway.registered_servers().await {
        Ok(registered) => registered,
        Err(error) => {
            tracing::warn!(%error, "cannot read the registry to take down deleted servers' endpoints");
            return;
        }
    };
    let deleted: Vec<Arc<Mounted>> = {
        let mut services = lock();
        let ids: Vec<String> = services
            .keys()
            .filter(|id| !registered.iter().any(|server| &server.id == *id))
            .cloned()
            .collect();
        ids.iter().filter_map(|id| services.remove(id)).collect()
    };
    for mounted in deleted {
        mounted.sessions.end_all().await;
    }
}

/// One server's MCP service, shared: every request to the server takes it (cloning rmcp's
/// service copies its configuration).
struct Mounted {
    service: ProxyService,
    sessions: Arc<HibernatingSessions>,
}

/// A service's config; `hibernating` is where its sessions sleep, and what wakes them.
pub(crate) fn config(
    allowed_hosts: &[String],
    shutdown: &CancellationToken,
    store: Arc<dyn SessionStore>,
) -> StreamableHttpServerConfig {
    let mut config = StreamableHttpServerConfig::default()
        .with_allowed_hosts(allowed_hosts.to_vec())
        // A stateless (2026-07-28) answer with nothing before it goes out as plain JSON rather
        // than an event stream; one with progress or logs first still streams, so nothing is lost.
        .with_json_response(true)
        .with_cancellation_token(shutdown.child_token());
    config.session_store = Some(store);
    config
}

/// Has `service` answer `request`, counting it as a visit to its session while rmcp serves it
/// (the answer's body included), so that the session does not hibernate meanwhile.
async fn handle_visiting<S>(
    service: &StreamableHttpService<S, HibernatingSessions>,
    sessions: &Arc<HibernatingSessions>,
    request: Request,
) -> Response
where
    S: rmcp::ServerHandler + Send + 'static,
{
    let visit = crate::sessions::session_id(request.headers()).and_then(|id| sessions.visit(id));
    let response = service.handle(request).await.map(Body::new);
    match visit {
        Some(visit) => response.map(|body| visit.hold(body)),
        None => response,
    }
}

/// `/mcp/admin`: the admin MCP server.
pub async fn admin(State(state): State<AppState>, request: Request) -> Response {
    state
        .mcp
        .admin
        .handle(request)
        .await
        .map(Body::new)
        .into_response()
}

/// `/mcp/user`: the self-service MCP server.
pub async fn user(State(state): State<AppState>, request: Request) -> Response {
    state
        .mcp
        .user
        .handle(request)
        .await
        .map(Body::new)
        .into_response()
}

/// `/mcp`: every enabled server as one MCP server.
pub async fn aggregate(State(state): State<AppState>, request: Request) -> Response {
    let sessions = &state.mcp.aggregate_sessions;
    adopt(sessions, &request);
    let request = match offer_raw_path(&state, None, sessions, request).await {
        Ok(answered) => return answered,
        Err(declined) => declined,
    };
    if let Some((ended, _)) = standalone_stream_of(&state, sessions, &request)
        && let Some(response) = Box::pin(standalone_stream(&state, None, ended)).await
    {
        return response;
    }
    // Boxed: rmcp's request future is kilobytes, and axum boxes and moves every request's
    // future.
    Box::pin(handle_visiting(
        &state.mcp.aggregate,
        &state.mcp.aggregate_sessions,
        request,
    ))
    .await
}

/// Offers `request` to the raw path of an endpoint (`server: None` for `/mcp`), whose
/// sessions are `sessions`; the lane hands back what it declines, for rmcp's service.
async fn offer_raw_path(
    state: &AppState,
    server: Option<&str>,
    sessions: &Arc<HibernatingSessions>,
    request: Request,
) -> Result<Response, Request> {
    if request.method() != axum::http::Method::POST {
        return Err(request);
    }
    let lane = crate::raw_path::Lane {
        gateway: &state.gateway,
        endpoint: server,
        sessions,
    };
    // Boxed: only the calls the lane takes need its future, and axum moves every request's.
    Box::pin(crate::raw_path::serve(lane, request)).await
}

/// `/mcp/{id-or-alias}`: one server's governed tools, resources and prompts, the server as the
/// policy resolved it.
pub async fn proxy(State(state): State<AppState>, request: Request) -> Response {
    let Some(id) = decided_server(&request) else {
        return unresolved();
    };
    let mounted = state.mcp.service(&state, &id);
    adopt(&mounted.sessions, &request);
    let request = match offer_raw_path(&state, Some(&id), &mounted.sessions, request).await {
        Ok(answered) => return answered,
        Err(declined) => declined,
    };
    if let Some((ended, session)) = standalone_stream_of(&state, &mounted.sessions, &request)
        && let Some(response) =
            Box::pin(standalone_stream(&state, Some((&id, &session)), ended)).await
    {
        return response;
    }
    // Boxed, as on `/mcp`.
    Box::pin(handle_visiting(
        &mounted.service,
        &mounted.sessions,
        request,
    ))
    .await
}

/// Takes over the session `request` names when another replica opened it (the edge found it in
/// the store): see [`HibernatingSessions::adopt`].
fn adopt(sessions: &HibernatingSessions, request: &Request) {
    if let Some(session) = crate::sessions::session_id(request.headers()) {
        sessions.adopt(session);
    }
}

/// The id of the server the policy resolved for `request` (see `crate::mcp_edge`).
pub(crate) fn decided_server(request: &Request) -> Option<String> {
    let decision = request.extensions().get::<Decision>()?;
    decision.server.as_ref().map(|server| server.id.clone())
}

/// The answer to a request that reached a server's handler without the policy's decision: a
/// route left out of the MCP guard, which is a bug.
pub(crate) fn unresolved() -> Response {
    tracing::error!("an MCP request reached its handler without the policy's decision");
    crate::error::ApiError::new(
        axum::http::StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        "the gateway failed; see its log",
    )
    .into_response()
}

/// How often an idle GET stream carries a keep-alive comment: rmcp's default.
const STREAM_KEEP_ALIVE: std::time::Duration = std::time::Duration::from_secs(15);

/// Whether `request` opens the GET stream of a session that may hibernate, which is served here
/// (see [`standalone_stream`]); if so, what ends with the session, and the session's id. `None`
/// leaves the request to rmcp: another session, a resumption, or headers rmcp must judge.
fn standalone_stream_of(
    state: &AppState,
    sessions: &HibernatingSessions,
    request: &Request,
) -> Option<(CancellationToken, String)> {
    if request.method() != axum::http::Method::GET {
        return None;
    }
    let headers = request.headers();
    let text = |name: &str| headers.get(name).and_then(|value| value.to_str().ok());
    let session = crate::sessions::session_id(headers)?;
    let ended = sessions.sleeper(session)?;
    let plain = headers.get("last-event-id").is_none()
        && text("accept").is_some_and(|accept| accept.contains("text/event-stream"))
        && text("host")
            .is_some_and(|host| crate::raw_path::host_allowed(host, &state.mcp.allowed_hosts))
        && text("mcp-protocol-version")
            .is_none_or(|version| crate::raw_path::SESSION_VERSIONS.contains(&version));
    plain.then(|| (ended, session.to_string()))
}

/// The GET stream of a session that may hibernate, served here rather than by rmcp, so that the
/// session can sleep with it open. It carries what `registry_watch::followed_notifications` carries for
/// `server` and the session (its `(id, session id)`; on `/mcp`, what
/// `aggregate::notifications` carries) until the session ends (`ended`). `None` when the server
/// cannot be served now: rmcp serves the stream then.
async fn standalone_stream(
    state: &AppState,
    server: Option<(&str, &str)>,
    ended: CancellationToken,
) -> Option<Response> {
    use axum::response::sse::{Event, KeepAlive, Sse};
    use futures::StreamExt as _;
    let notifications = match server {
        Some((server, session)) => switchboard_gateway::proxy::followed_notifications(
            &state.gateway,
            server,
            switchboard_gateway::proxy::Relayed::Session(
                state.gateway.shared_sessions().get(session, Some(server)),
            ),
        )
        .await
        .ok()?
        .boxed(),
        None => switchboard_gateway::aggregate::notifications(&state.gateway)
            .await
            .ok()?
            .boxed(),
    };
    let shutdown = state.mcp.shutdown_token();
    let until = async move {
        tokio::select! {
            () = ended.cancelled() => {}
            () = shutdown.cancelled() => {}
        }
    };
    let events = notifications
        .map(|message| Ok::<_, std::convert::Infallible>(Event::default().data(message)))
        .take_until(until);
    Some(
        Sse::new(events)
            .keep_alive(KeepAlive::new().interval(STREAM_KEEP_ALIVE))
            .into_response(),
    )
}
