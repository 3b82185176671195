//! Switchboard's HTTP face: the axum routers, who is calling, and the one place where errors
//! become HTTP answers ([`error::ApiError`]).
#![forbid(unsafe_code)]

pub mod access;
pub mod auth;
mod console;
pub mod error;
pub mod legacy_sse;
pub mod mcp;
mod mcp_edge;
mod mcp_message;
mod oauth;
mod raw_path;
pub mod run_log;
pub mod runs;
pub mod servers;
mod sessions;

use std::{future::Future, time::Duration};

use axum::{
    Json, Router,
    extract::{DefaultBodyLimit, State},
    response::IntoResponse,
    routing::{any, delete, get, post},
};
use serde_json::json;
use switchboard_agent::{RunnerSettings, RunningRuns};
use switchboard_gateway::metrics::RequestLabels;
use tokio::net::TcpListener;

pub use auth::{AdminAuth, AdminTokenSource};
pub use error::ApiError;
pub use mcp_edge::AllowedOrigins;

/// The largest request body accepted: a run request is a few kilobytes.
pub(crate) const MAX_BODY_BYTES: usize = 1024 * 1024;
/// How long cancelled runs get to stop their children once the grace period is over.
const CANCEL_GRACE: Duration = Duration::from_secs(5);

/// What every handler shares, behind one `Arc`: axum clones the state for every request, so a
/// clone must be one reference count, not a copy of every field.
#[derive(Debug, Clone)]
pub struct AppState(std::sync::Arc<Shared>);

impl AppState {
    pub fn new(shared: Shared) -> Self {
        Self(std::sync::Arc::new(shared))
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// The parts of [`AppState`].
#[derive(Debug)]
pub struct Shared {
    /// Checks the admin token.
    pub admin: AdminAuth,
    /// The OAuth authorization server of the endpoints.
    pub auth: switchboard_auth::AuthServer,
    /// Sign-ins and browser sessions.
    pub sign_in: switchboard_auth::SignIn,
    /// The organization's OpenID Connect provider, when one is configured.
    pub external: Option<switchboard_auth::ExternalProvider>,
    /// The registry and its upstream sessions.
    pub gateway: switchboard_gateway::Gateway,
    /// The operator's settings for runs.
    pub runner: std::sync::Arc<RunnerSettings>,
    /// The downstream MCP services.
    pub mcp: mcp::McpMounts,
    /// Downstream sessions of the legacy HTTP+SSE transport.
    pub legacy: legacy_sse::LegacySessions,
    /// Runs in progress, so that `DELETE /run/{id}` finds them.
    pub runs: RunningRuns,
    /// The pooled HTTP client for LLM calls.
    pub http: reqwest::Client,
    /// Requests per client address on the admin API.
    pub admin_limit: AdminRateLimit,
    /// The browser origins the MCP endpoints accept.
    pub origins: AllowedOrigins,
}

/// A per-client token bucket for the admin API (governor's keyed limiter).
#[derive(Clone)]
pub struct AdminRateLimit(std::sync::Arc<governor::DefaultKeyedRateLimiter<std::net::IpAddr>>);

impl std::fmt::Debug for AdminRateLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdminRateLimit")
    }
}

impl AdminRateLimit {
    /// `per_second` requests a second for each client address, in bursts of twice that.
    pub fn new(per_second: u32) -> Self {
        let rate =
            std::num::NonZeroU32::new(per_second.max(1)).unwrap_or(std::num::NonZeroU32::MIN);
        let burst =
            rate.saturating_mul(std::num::NonZeroU32::new(2).unwrap_or(std::num::NonZeroU32::MIN));
        let quota = governor::Quota::per_second(rate).allow_burst(burst);
        Self(std::sync::Arc::new(governor::RateLimiter::keyed(quota)))
    }
}

/// Refuses a client over its admin API rate with 429 and `Retry-After`.
async fn limit_admin(
    State(state): State<AppState>,
    axum::extract::ConnectInfo(peer): axum::extract::ConnectInfo<std::net::SocketAddr>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    match state.admin_limit.0.check_key(&peer.ip()) {
        Ok(()) => next.run(request).await,
        Err(not_until) => {
            let wait = not_until.wait_time_from(governor::clock::Clock::now(
                &governor::clock::DefaultClock::default(),
            ));
            let mut response = ApiError::new(
                axum::http::StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                "too many admin API requests from this address; slow down",
            )
            .into_response();
            let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            if let Ok(value) = seconds.max(1).to_string().parse() {
                response
                    .headers_mut()
                    .insert(axum::http::header::RETRY_AFTER, value);
            }
            response
        }
    }
}

pub fn router(state: AppState) -> Router {
    let admin_api = Router::new()
        .route("/api/mcp-servers", get(servers::list).post(servers::create))
        .route(
            "/api/mcp-servers/{id}",
            get(servers::get)
                .patch(servers::update)
                .delete(servers::delete),
        )
        .route("/api/mcp-servers/import", post(servers::import))
        .route("/api/mcp-servers/{id}/tools", get(servers::tools))
        .route("/api/catalog", get(servers::catalog))
        .route("/api/audit", get(servers::audit))
        .route("/api/runs", get(run_log::list))
        .route("/api/runs/{id}", get(run_log::get))
        .route(
            "/api/mcp-servers/{id}/permissions",
            get(access::permissions).post(access::create_permission),
        )
        .route(
            "/api/permissions/{id}",
            axum::routing::patch(access::update_permission).delete(access::delete_permission),
        )
        .route(
            "/api/grants",
            get(access::grants).post(access::create_grant),
        )
        .route("/api/grants/{id}", delete(access::delete_grant))
        .route(
            "/api/groups",
            get(access::groups).post(access::create_group),
        )
        .route("/api/groups/{id}", delete(access::delete_group))
        .route("/api/users", get(access::users).post(access::add_user))
        .route("/api/users/{id}", axum::routing::patch(access::update_user))
        .route("/api/users/{id}/password", post(access::reset_password))
        .route("/api/access-requests", get(access::access_requests))
        .route(
            "/api/access-requests/{id}/approve",
            post(access::approve_request),
        )
        .route("/api/access-requests/{id}/deny", post(access::deny_request))
        .route(
            "/api/settings",
            get(access::settings).patch(access::update_settings),
        )
        .route("/api/keys", get(access::keys).post(access::create_key))
        .route("/api/keys/{id}", delete(access::revoke_key))
        .route(
            "/api/groups/{id}/members/{user}",
            axum::routing::put(access::add_member).delete(access::remove_member),
        )
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            limit_admin,
        ));
    // The MCP endpoints' guard counts their requests itself, and limits their bodies
    // (`mcp_edge::guard`): axum clones a route's whole stack of layers on every request, and
    // these are the hottest routes. Their 405 answers go through the guard too, to be counted.
    let mcp_endpoints = Router::new()
        .route("/mcp", any(mcp::aggregate))
        .route("/mcp/admin", any(mcp::admin))
        .route("/mcp/user", any(mcp::user))
        .route("/mcp/{server}", any(mcp::proxy))
        .route("/mcp/{server}/sse", get(legacy_sse::open))
        .route("/mcp/{server}/message", post(legacy_sse::message))
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            mcp_edge::guard,
        ));
    Router::new()
        .route("/run", post(runs::start_run))
        .route("/run/{run_id}", delete(runs::cancel_run))
        .merge(admin_api)
        .merge(oauth::routes())
        .merge(console::routes())
        .route("/healthz", get(|| async { Json(json!({"status": "ok"})) }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .fallback(|| async { ApiError::not_found("no such endpoint") })
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            count_requests,
        ))
        .merge(mcp_endpoints)
        .with_state(state)
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        axum::http::StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this endpoint does not take that method",
    )
}

/// Every route's layer but the MCP endpoints', whose guard counts them: see [`counted`].
async fn count_requests(
    State(state): State<AppState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    counted(&state, request, |request| next.run(request)).await
}

/// Counts `request` by its route (never its raw path, which holds ids) and status, and has it
/// answered by `serve` in an `http.request` span that continues the caller's `traceparent`.
pub(crate) async fn counted<F, Fut>(
    state: &AppState,
    request: axum::extract::Request,
    serve: F,
) -> axum::response::Response
where
    F: FnOnce(axum::extract::Request) -> Fut,
    Fut: Future<Output = axum::response::Response>,
{
    use tracing::Instrument as _;
    use tracing_opentelemetry::OpenTelemetrySpanExt as _;
    let endpoint: std::borrow::Cow<'static, str> = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or("unmatched".into(), |path| path.as_str().to_string().into());
    // A target of its own, outside the default log filter (`switchboard_api=info`): the span is
    // for traces, and the log layer formatting its fields on every request showed in profiles.
    // With no exporter and default logs it is disabled and costs nothing.
    let span = tracing::info_span!(
        target: "switchboard::http",
        "http.request",
        "http.request.method" = %request.method(),
        "http.route" = %endpoint,
        "http.response.status_code" = tracing::field::Empty,
    );
    if !span.is_disabled() {
        let parent = opentelemetry::global::get_text_map_propagator(|propagator| {
            propagator.extract(&opentelemetry_http::HeaderExtractor(request.headers()))
        });
        let _ = span.set_parent(parent);
    }
    let response = serve(request).instrument(span.clone()).await;
    let status = response.status();
    span.record("http.response.status_code", status.as_u16());
    state
        .gateway
        .metrics()
        .http_requests
        .get_or_create(&RequestLabels {
            endpoint,
            status: status.as_u16(),
        })
        .inc();
    response
}

/// Readiness: the store answers (migrations ran before the server started listening).
async fn readyz(State(state): State<AppState>) -> axum::response::Response {
    // A probe must answer promptly even when the database does not (the pool would wait for a
    // connection for longer than probes wait).
    let ping = tokio::time::timeout(READY_PING_LIMIT, state.gateway.store().ping()).await;
    match ping {
        Ok(Ok(())) => Json(json!({"status": "ready"})).into_response(),
        Ok(Err(error)) => not_ready(&error),
        Err(elapsed) => not_ready(&elapsed),
    }
}

/// How long `/readyz` waits for the store.
const READY_PING_LIMIT: std::time::Duration = std::time::Duration::from_secs(2);

fn not_ready(error: &dyn std::fmt::Display) -> axum::response::Response {
    tracing::warn!(%error, "not ready: the store does not answer");
    ApiError::new(
        axum::http::StatusCode::SERVICE_UNAVAILABLE,
        "not_ready",
        "the store does not answer",
    )
    .into_response()
}

/// Prometheus metrics; they name servers and tools, so they need the admin token.
async fn metrics(State(state): State<AppState>, _caller: auth::Caller) -> axum::response::Response {
    state.gateway.refresh_state_metrics().await;
    let live = state.mcp.live_sessions().await + state.legacy.count();
    state
        .gateway
        .metrics()
        .live_sessions
        .set(i64::try_from(live).unwrap_or(i64::MAX));
    state
        .gateway
        .metrics()
        .hibernated_sessions
        .set(i64::try_from(state.mcp.hibernated_sessions()).unwrap_or(i64::MAX));
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.gateway.metrics().encode(),
    )
        .into_response()
}

/// Serves until `shutdown` resolves, then stops accepting and gives requests in flight up to
/// `grace` to finish. Runs still going after that are cancelled, which stops their children.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
    grace: Duration,
) -> std::io::Result<()> {
    use axum::serve::ListenerExt as _;
    let runs = state.runs.clone();
    let pool = state.gateway.pool().clone();
    let mounts = state.mcp.clone();
    let audit = state.gateway.audit().clone();
    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    let app = router(state).into_make_service_with_connect_info::<std::net::SocketAddr>();
    // Small answers must not wait on Nagle's algorithm.
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    let server = axum::serve(listener, app).with_graceful_shutdown(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });
    let mut server = tokio::spawn(server.into_future());
    let joined = tokio::select! {
        joined = &mut server => joined,
        _ = stop_rx.wait_for(|stopped| *stopped) => {
            tracing::info!(runs = runs.count(), "shutting down: draining requests in flight");
            match tokio::time::timeout(grace, &mut server).await {
                Ok(joined) => joined,
                Err(_) => {
                    tracing::warn!(runs = runs.count(), "grace period over: cancelling what is left");
                    runs.cancel_all();
                    // Cancelled runs stop their children and answer at once.
                    match tokio::time::timeout(CANCEL_GRACE, server).await {
                        Ok(joined) => joined,
                        Err(_) => Ok(Ok(())),
                    }
                }
            }
        }
    };
    // Downstream sessions end, and runtimes started for the registry stop with the server.
    mounts.shutdown();
    pool.close_all().await;
    audit.flush().await;
    joined.map_err(std::io::Error::other)?
}
