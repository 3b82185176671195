//! One upstream MCP server: a lazily opened session, reopened when it dies, with timeouts, retries,
//! cancellation and progress for every request.

use std::{
    sync::{Arc, Mutex as SyncMutex, PoisonError},
    time::Duration,
};

use rmcp::{
    RoleClient,
    model::{
        CallToolRequest, CallToolRequestParams, CallToolResult, ClientRequest, JsonObject,
        ListPromptsRequest, ListResourceTemplatesRequest, ListResourcesRequest, ListToolsRequest,
        PaginatedRequestParams, Prompt, ProtocolVersion, Resource, ResourceTemplate, ServerResult,
        Tool,
    },
    service::{
        ClientLifecycleMode, ClientServiceExt, Peer, PeerRequestOptions, RunningService,
        ServiceError,
    },
    transport::{
        StreamableHttpClientTransport, streamable_http_client::StreamableHttpClientTransportConfig,
    },
};
use serde_json::Value;
use tokio::{
    sync::{Mutex, broadcast, mpsc},
    time::Instant,
};
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use crate::{
    config::{CallContext, Endpoint, HttpConfig, HttpTransport, UpstreamAuth, UpstreamConfig},
    error::{Delivery, UpstreamError, describe_transport_error, sanitize_message},
    exchange::{CONTEXT_META_KEY, header_map},
    handler::{InOrder, Progress, ProgressRoutes, UpstreamEvent, UpstreamHandler},
    http::{SessionAwareClient, shared_http_client},
    raw::{RawCallError, RawReply, RawRoute, RouteCell, StatelessCall},
    sse::LegacySseTransport,
    stdio::{self, ChildGuard},
};

mod changes;
mod raw_call;

/// Rounds of `input_required` a call may go through before it fails (the SDKs' default).
const MAX_INPUT_ROUNDS: usize = 10;
/// How long `close` waits for cancels still being sent.
const CANCEL_FLUSH: Duration = Duration::from_secs(2);
/// How long closing an upstream waits for its session to end (see [`Upstream::close`]).
const CLOSE_WAIT: Duration = Duration::from_secs(2);
/// The longest a caller waits between failed connection attempts.
const MAX_RECONNECT_BACKOFF: Duration = Duration::from_secs(30);

/// Options of one request.
#[derive(Debug, Default)]
pub struct RequestOptions {
    /// Overrides the upstream's request timeout.
    pub timeout: Option<Duration>,
    /// Who is calling; reaches the bearer-token callback, never the upstream.
    pub context: CallContext,
    /// Where progress notifications for this request go.
    pub progress: Option<mpsc::UnboundedSender<Progress>>,
    /// Cancels the request: `notifications/cancelled` goes upstream and the call returns
    /// [`UpstreamError::Cancelled`]. Dropping the call's future does the same.
    pub cancel: Option<CancellationToken>,
    /// Whether running the request twice is harmless. Only then is a request that may have reached
    /// the upstream retried; listing is always safe, a tool only when annotated idempotent or
    /// read-only.
    pub retry_safe: bool,
    /// A stateless (2026-07-28) client's own `_meta` context (protocol version, client info,
    /// capabilities), sent in place of the gateway's, so that the upstream sees what the client
    /// can answer. Its `input_required` answers then come back as they are, for that client to
    /// fulfil and retry, instead of being asked through the relay.
    pub client_meta: Option<serde_json::Map<String, Value>>,
    /// The client's own progress token, as JSON text: a raw call sends it upstream in place of one
    /// of the gateway's, as the client would directly. A raw call's reports come back on its own
    /// answer stream, so the tokens of different clients never mix.
    pub progress_token: Option<String>,
}

impl RequestOptions {
    /// Options for a request that may run twice harmlessly (listing, read-only tools).
    pub fn retry_safe() -> Self {
        Self {
            retry_safe: true,
            ..Self::default()
        }
    }
}

/// A handle to one upstream; cheap to clone, all clones share one session.
#[derive(Debug, Clone)]
pub struct Upstream {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: UpstreamConfig,
    handler: UpstreamHandler,
    /// The live session. Read on every request, so it is a plain mutex held only to clone an
    /// `Arc`, never across an await.
    live: SyncMutex<Option<Arc<Session>>>,
    /// Held while (re)connecting, so concurrent callers wait for one handshake instead of each
    /// starting their own.
    connecting: Mutex<()>,
    /// Consecutive failed connection attempts and when the next may start.
    backoff: SyncMutex<Backoff>,
    /// `notifications/cancelled` still being sent, which `close` lets finish first: a cancel
    /// must reach the server before the session ends.
    cancels: TaskTracker,
    /// The circuit breaker and the concurrency gate every request passes.
    admission: crate::admission::Admission,
    /// The next raw call's id (added to `raw::RAW_ID_BASE`).
    raw_ids: std::sync::atomic::AtomicU64,
    /// The resources clients subscribed to, shared with the server's other upstreams.
    resources: crate::ResourceSubscriptions,
    /// The `subscriptions/listen` stream of a stateless session, replaced when the resources
    /// subscribed to change.
    listening: SyncMutex<Option<tokio::task::AbortHandle>>,
}

#[derive(Debug, Default)]
struct Backoff {
    failures: u32,
    next_attempt: Option<Instant>,
}

struct Session {
    service: RunningService<RoleClient, UpstreamHandler>,
    /// The stdio child, killed with its process group when the session is dropped.
    child: SyncMutex<Option<ChildGuard>>,
    /// Which transport carries the session, for diagnostics.
    transport: TransportKind,
    /// How raw calls reach a Streamable HTTP session.
    raw_route: Option<Arc<RouteCell>>,
    /// Set when an answer went over the cap: rmcp then closes the whole transport, and this
    /// says why to the requests it fails.
    oversized_answer: Arc<std::sync::atomic::AtomicBool>,
}

impl Session {
    /// Whether the server speaks the stateless era (2026-07-28 and later, no `initialize`).
    fn is_stateless(&self) -> bool {
        self.service
            .peer()
            .peer_info()
            .is_some_and(|info| !info.protocol_version.has_initialize())
    }
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("transport", &self.transport)
            .finish_non_exhaustive()
    }
}

/// A handle that does not keep the upstream alive, for watchers that should end with it.
#[derive(Debug, Clone)]
pub struct WeakUpstream(std::sync::Weak<Inner>);

impl WeakUpstream {
    pub fn upgrade(&self) -> Option<Upstream> {
        self.0.upgrade().map(|inner| Upstream { inner })
    }
}

/// The transport a session ended up on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TransportKind {
    Stdio,
    StreamableHttp,
    Sse,
}

impl Upstream {
    /// A handle that connects on first use.
    pub fn new(config: UpstreamConfig) -> Self {
        Self::with_events(config, Self::event_channel())
    }

    /// A channel for [`Upstream::with_events`].
    pub fn event_channel() -> broadcast::Sender<UpstreamEvent> {
        broadcast::channel(64).0
    }

    /// A handle that connects on first use and sends what the upstream says unasked to `events`,
    /// which may outlive it: whoever listens there hears the upstream that replaces this one.
    pub fn with_events(config: UpstreamConfig, events: broadcast::Sender<UpstreamEvent>) -> Self {
        Self::for_server(config, events, crate::ResourceSubscriptions::default())
    }

    /// As [`Upstream::with_events`], also asking the upstream for the `resources` subscribed to,
    /// which outlive it too: the upstream that replaces this one asks for them again.
    pub fn for_server(
        config: UpstreamConfig,
        events: broadcast::Sender<UpstreamEvent>,
        resources: crate::ResourceSubscriptions,
    ) -> Self {
        let handler = UpstreamHandler {
            name: Arc::from(config.name.as_str()),
            progress: ProgressRoutes::default(),
            events,
            relay: config.relay.clone(),
        };
        let admission = crate::admission::Admission::new(&config);
        Self {
            inner: Arc::new(Inner {
                config,
                handler,
                live: SyncMutex::new(None),
                connecting: Mutex::new(()),
                backoff: SyncMutex::new(Backoff::default()),
                cancels: TaskTracker::new(),
                admission,
                raw_ids: std::sync::atomic::AtomicU64::new(0),
                resources,
                listening: SyncMutex::new(None),
            }),
        }
    }

    /// Connects now rather than on first use.
    pub async fn connect(config: UpstreamConfig) -> Result<Self, UpstreamError> {
        let upstream = Self::new(config);
        upstream.session().await?;
        Ok(upstream)
    }

    pub fn name(&self) -> &str {
        &self.inner.config.name
    }

    /// Whether `other` is a handle to this same upstream.
    pub fn same(&self, other: &Upstream) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }

    pub fn downgrade(&self) -> WeakUpstream {
        WeakUpstream(Arc::downgrade(&self.inner))
    }

    pub fn config(&self) -> &UpstreamConfig {
        &self.inner.config
    }

    /// Notifications the upstream sends outside of calls: list changes and log messages.
    pub fn events(&self) -> broadcast::Receiver<UpstreamEvent> {
        self.inner.handler.events.subscribe()
    }

    /// The negotiated protocol version, once connected.
    pub fn protocol_version(&self) -> Option<ProtocolVersion> {
        self.live_session()?
            .service
            .peer()
            .peer_info()
            .map(|info| info.protocol_version.clone())
    }

    /// The transport of the live session, if any.
    pub fn transport(&self) -> Option<TransportKind> {
        Some(self.live_session()?.transport)
    }

    /// The pid (and process group) of the stdio child, if one is running.
    pub fn child_pid(&self) -> Option<u32> {
        let session = self.live_session()?;
        let child = session.child.lock().unwrap_or_else(PoisonError::into_inner);
        child.as_ref().and_then(ChildGuard::pid)
    }

    /// Ends the session and stops the stdio child, if any. The next use reconnects. Cancels
    /// still being sent get a moment to reach the server first. When nothing else holds the
    /// session, its end is awaited (rmcp closes its transport: the HTTP session's `DELETE`), for
    /// at most [`CLOSE_WAIT`]: a process that exits right after must not cut that short.
    pub async fn close(&self) {
        self.inner.cancels.close();
        let _ = tokio::time::timeout(CANCEL_FLUSH, self.inner.cancels.wait()).await;
        self.inner.cancels.reopen();
        let Some(session) = self.slot().take() else {
            return;
        };
        let child = session
            .child
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        // A stdio child goes first: its pipes closed, the transport has nothing left to wait for.
        if let Some(mut child) = child {
            child.kill().await;
        }
        match Arc::try_unwrap(session) {
            Ok(mut session) => {
                let _ = session.service.close_with_timeout(CLOSE_WAIT).await;
            }
            Err(shared) => shared.service.cancellation_token().cancel(),
        }
    }

    /// Every tool, following `nextCursor` to the end.
    pub async fn list_tools(&self) -> Result<Vec<Tool>, UpstreamError> {
        self.list_all(
            |params| ClientRequest::ListToolsRequest(ListToolsRequest::with_param(params)),
            |r| match r {
                ServerResult::ListToolsResult(r) => Some((r.tools, r.next_cursor)),
                _ => None,
            },
        )
        .await
    }

    /// Every resource, or none when the server has no resources capability.
    pub async fn list_resources(&self) -> Result<Vec<Resource>, UpstreamError> {
        if self.capabilities().await?.resources.is_none() {
            return Ok(Vec::new());
        }
        self.list_all(
            |params| ClientRequest::ListResourcesRequest(ListResourcesRequest::with_param(params)),
            |r| match r {
                ServerResult::ListResourcesResult(r) => Some((r.resources, r.next_cursor)),
                _ => None,
            },
        )
        .await
    }

    /// Every resource template, or none when the server has no resources capability.
    pub async fn list_resource_templates(&self) -> Result<Vec<ResourceTemplate>, UpstreamError> {
        if self.capabilities().await?.resources.is_none() {
            return Ok(Vec::new());
        }
        self.list_all(
            |params| {
                ClientRequest::ListResourceTemplatesRequest(
                    ListResourceTemplatesRequest::with_param(params),
                )
            },
            |r| match r {
                ServerResult::ListResourceTemplatesResult(r) => {
                    Some((r.resource_templates, r.next_cursor))
                }
                _ => None,
            },
        )
        .await
    }

    /// Every prompt, or none when the server has no prompts capability.
    pub async fn list_prompts(&self) -> Result<Vec<Prompt>, UpstreamError> {
        if self.capabilities().await?.prompts.is_none() {
            return Ok(Vec::new());
        }
        self.list_all(
            |params| ClientRequest::ListPromptsRequest(ListPromptsRequest::with_param(params)),
            |r| match r {
                ServerResult::ListPromptsResult(r) => Some((r.prompts, r.next_cursor)),
                _ => None,
            },
        )
        .await
    }

    /// Calls one tool. An `isError` result is a successful call: the error is the tool's answer.
    pub async fn call_tool(
        &self,
        name: &str,
        arguments: Option<JsonObject>,
        options: RequestOptions,
    ) -> Result<CallToolResult, UpstreamError> {
        let mut params = CallToolRequestParams::new(name.to_string());
        params.arguments = arguments;
        let request = ClientRequest::CallToolRequest(CallToolRequest::new(params));
        match self.request(request, &options).await? {
            ServerResult::CallToolResult(result) => Ok(result),
            _ => Err(self.unexpected("tools/call")),
        }
    }

    /// The circuit breaker's state.
    pub fn breaker_state(&self) -> crate::BreakerState {
        self.inner.admission.state()
    }

    /// Sends any request, with the upstream's timeout, retry, breaker and concurrency rules.
    ///
    /// A 2026-07-28 server may answer `tools/call`, `prompts/get` or `resources/read` with
    /// `input_required`: its embedded requests are answered through the relay (the downstream
    /// client), and the request is made again with the answers and the echoed state, until it
    /// completes.
    pub async fn request(
        &self,
        mut request: ClientRequest,
        options: &RequestOptions,
    ) -> Result<ServerResult, UpstreamError> {
        if options.client_meta.is_some() {
            // The client answers its own input requests.
            return self.request_once(&request, options).await;
        }
        for _round in 0..MAX_INPUT_ROUNDS {
            let pending = match self.request_once(&request, options).await? {
                ServerResult::InputRequiredResult(pending) => pending,
                done => return Ok(done),
            };
            let method = request.method().to_string();
            let mut answers = std::collections::BTreeMap::new();
            for (key, input) in pending.input_requests.unwrap_or_default() {
                let answer = self
                    .inner
                    .handler
                    .answer_input(input)
                    .await
                    .map_err(|error| UpstreamError::Rpc {
                        upstream: self.name().into(),
                        method: method.clone(),
                        code: error.code.0,
                        message: sanitize_message(&error.message),
                        data: error.data,
                    })?;
                answers.insert(key, answer);
            }
            let answers = (!answers.is_empty()).then_some(answers);
            if !carry_input(&mut request, answers, pending.request_state) {
                return Err(self.unexpected(&method));
            }
        }
        Err(UpstreamError::UnexpectedResponse {
            upstream: self.name().into(),
            method: format!(
                "{} (still asking for input after {MAX_INPUT_ROUNDS} rounds)",
                request.method()
            ),
        })
    }

    /// One request, without answering `input_required`.
    async fn request_once(
        &self,
        request: &ClientRequest,
        options: &RequestOptions,
    ) -> Result<ServerResult, UpstreamError> {
        let ticket = self.inner.admission.admit().await?;
        let result = self.request_with_retries(request, options).await;
        ticket.record(result.as_ref().map(|_| ()));
        result
    }

    /// The cap on one answer: the configured one, never above what rmcp's JSON reader takes.
    fn max_answer_bytes(&self) -> usize {
        self.inner
            .config
            .max_answer_bytes
            .min(crate::config::MAX_ANSWER_BYTES)
    }

    async fn request_with_retries(
        &self,
        request: &ClientRequest,
        options: &RequestOptions,
    ) -> Result<ServerResult, UpstreamError> {
        let mut attempt = 0;
        let mut reopened_stale = false;
        loop {
            // Whether the request may have left: not when the session did not open.
            let mut sent = true;
            let result = match self.session().await {
                Ok(session) => match self.send_once(&session, request.clone(), options).await {
                    Err(Attempt::Stale) => {
                        // The session died before the request left: not a retry, as nothing was
                        // sent. Once only, so a server that dies at every start cannot loop us.
                        self.forget(&session);
                        if reopened_stale {
                            Err(self.closed(request, &session))
                        } else {
                            reopened_stale = true;
                            continue;
                        }
                    }
                    Err(Attempt::Failed(error)) => {
                        if matches!(error, UpstreamError::Closed { .. }) {
                            self.forget(&session);
                        }
                        Err(error)
                    }
                    Ok(result) => Ok(result),
                },
                Err(error) => {
                    sent = false;
                    Err(error)
                }
            };
            let error = match result {
                Ok(result) => return Ok(result),
                Err(error) => error,
            };
            let retryable = match error.delivery() {
                Some(Delivery::NotSent) => true,
                // A handshake cut off (a server still starting may take a connection and drop
                // it) never carried the request; one that hung would hang as long again.
                Some(Delivery::MaybeSent) => {
                    options.retry_safe
                        || (!sent
                            && !matches!(&error, UpstreamError::Connect { reason, .. }
                                if reason.starts_with(NO_HANDSHAKE)))
                }
                _ => false,
            };
            if !retryable || attempt >= self.inner.config.retries {
                return Err(error);
            }
            tracing::debug!(upstream = %self.name(), attempt, %error, "retrying");
            // A failed connect already set the reconnect backoff, which the next attempt waits for.
            if !matches!(error, UpstreamError::Connect { .. }) {
                tokio::time::sleep(self.inner.config.retry_delay(attempt)).await;
            }
            attempt += 1;
        }
    }

    fn slot(&self) -> std::sync::MutexGuard<'_, Option<Arc<Session>>> {
        self.inner
            .live
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The session, unless there is none or it has ended.
    fn live_session(&self) -> Option<Arc<Session>> {
        self.slot()
            .clone()
            .filter(|session| !session.service.is_closed())
    }

    /// Drops a session that turned out dead, unless it was already replaced. Dropping it kills its
    /// child's process group.
    fn forget(&self, dead: &Arc<Session>) {
        let mut slot = self.slot();
        if slot.as_ref().is_some_and(|live| Arc::ptr_eq(live, dead)) {
            let dead = slot.take();
            drop(slot);
            drop(dead);
        }
    }

    fn closed(&self, request: &ClientRequest, session: &Session) -> UpstreamError {
        self.map_service_error(request.method(), session, ServiceError::TransportClosed)
    }

    /// What the server said it can do, connecting first if needed.
    pub async fn capabilities(&self) -> Result<rmcp::model::ServerCapabilities, UpstreamError> {
        let session = self.session().await?;
        Ok(session
            .service
            .peer()
            .peer_info()
            .map(|info| info.capabilities.clone())
            .unwrap_or_default())
    }

    /// The capabilities of the open session, if one is open: what [`Upstream::capabilities`]
    /// answers, without connecting.
    pub fn known_capabilities(&self) -> Option<rmcp::model::ServerCapabilities> {
        let session = self.live_session()?;
        let info = session.service.peer().peer_info()?;
        Some(info.capabilities.clone())
    }

    async fn list_all<T>(
        &self,
        make: impl Fn(PaginatedRequestParams) -> ClientRequest,
        take: impl Fn(ServerResult) -> Option<(Vec<T>, Option<String>)>,
    ) -> Result<Vec<T>, UpstreamError> {
        let options = RequestOptions::retry_safe();
        let mut items = Vec::new();
        let mut cursor: Option<String> = None;
        // A server that hands back the same cursor forever must not hang us.
        for _page in 0..10_000 {
            let request = make(PaginatedRequestParams::default().with_cursor(cursor.clone()));
            let method = request.method().to_string();
            let result = self.request(request, &options).await?;
            let (page, next) = take(result).ok_or_else(|| self.unexpected(&method))?;
            items.extend(page);
            match next {
                Some(next) if Some(&next) != cursor.as_ref() => cursor = Some(next),
                _ => return Ok(items),
            }
        }
        Ok(items)
    }

    fn unexpected(&self, method: &str) -> UpstreamError {
        UpstreamError::UnexpectedResponse {
            upstream: self.name().into(),
            method: method.into(),
        }
    }

    /// The live session, opening one if there is none or the last one died.
    async fn session(&self) -> Result<Arc<Session>, UpstreamError> {
        if let Some(session) = self.live_session() {
            return Ok(session);
        }
        let _connecting = self.inner.connecting.lock().await;
        // Another caller may have connected while this one waited.
        if let Some(session) = self.live_session() {
            return Ok(session);
        }
        if let Some(dead) = self.slot().take() {
            tracing::info!(upstream = %self.name(), "session ended; reconnecting");
            drop(dead);
        }
        if let Some(at) = self.next_attempt()? {
            tokio::time::sleep_until(at).await;
        }
        let timeout = self.inner.config.request_timeout;
        let connected = match tokio::time::timeout(timeout, self.open()).await {
            Ok(result) => result,
            Err(_) => Err(UpstreamError::Connect {
                upstream: self.name().into(),
                reason: format!("{NO_HANDSHAKE} {}", crate::error::humanize(timeout)),
                delivery: Delivery::MaybeSent,
            }),
        };
        let mut backoff = self
            .inner
            .backoff
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        match connected {
            Ok(session) => {
                *backoff = Backoff::default();
                let session = Arc::new(session);
                *self.slot() = Some(session.clone());
                self.follow_changes(&session);
                Ok(session)
            }
            Err(error) => {
                let delay = self
                    .inner
                    .config
                    .retry_delay(backoff.failures)
                    .min(MAX_RECONNECT_BACKOFF);
                backoff.failures += 1;
                backoff.next_attempt = Some(Instant::now() + delay);
                tracing::warn!(upstream = %self.name(), %error, "connection failed");
                Err(error)
            }
        }
    }

    /// When the next connection attempt may start, after earlier failures. Fails at once when
    /// that is further away than a request may wait.
    fn next_attempt(&self) -> Result<Option<Instant>, UpstreamError> {
        let backoff = self
            .inner
            .backoff
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let Some(at) = backoff.next_attempt else {
            return Ok(None);
        };
        let wait = at.saturating_duration_since(Instant::now());
        if wait > self.inner.config.request_timeout {
            return Err(UpstreamError::Connect {
                upstream: self.name().into(),
                reason: format!(
                    "unavailable after {} failed attempts; next attempt in {}",
                    backoff.failures,
                    crate::error::humanize(wait)
                ),
                delivery: Delivery::NotSent,
            });
        }
        Ok(Some(at))
    }

    /// Connects and initializes, in an `upstream.connect` span.
    async fn open(&self) -> Result<Session, UpstreamError> {
        use tracing::Instrument as _;
        let span = tracing::info_span!(
            "upstream.connect",
            "switchboard.server" = %self.name(),
            "mcp.protocol.version" = tracing::field::Empty,
            "otel.status_code" = tracing::field::Empty,
            "error.type" = tracing::field::Empty,
        );
        let opened = self.open_session().instrument(span.clone()).await;
        match &opened {
            Ok(session) => {
                if let Some(info) = session.service.peer().peer_info() {
                    span.record("mcp.protocol.version", info.protocol_version.to_string());
                }
            }
            Err(error) => {
                span.record("otel.status_code", "ERROR");
                span.record("error.type", error.to_string());
            }
        }
        opened
    }

    async fn open_session(&self) -> Result<Session, UpstreamError> {
        let config = &self.inner.config;
        let http = match &config.endpoint {
            Endpoint::Stdio(stdio_config) => {
                if !matches!(config.auth, UpstreamAuth::None) {
                    return Err(UpstreamError::Config {
                        upstream: self.name().into(),
                        reason: "bearer auth needs an HTTP upstream; give a stdio server its token in `env`"
                            .into(),
                    });
                }
                let (child, transport) = stdio::spawn(self.name(), stdio_config)?;
                let service = self.handshake(transport, self.lifecycle()).await?;
                return Ok(Session {
                    service,
                    child: SyncMutex::new(Some(child)),
                    transport: TransportKind::Stdio,
                    raw_route: None,
                    oversized_answer: Arc::default(),
                });
            }
            Endpoint::Http(http) => http,
        };
        match http.transport {
            HttpTransport::StreamableHttp => self.open_streamable(http).await,
            HttpTransport::Sse => self.open_sse(http).await.map_err(SseOpenError::into_error),
            HttpTransport::Auto => match self.open_streamable(http).await {
                Ok(session) => Ok(session),
                Err(error) if error.delivery() == Some(Delivery::NotSent) => Err(error),
                Err(streamable_error) => {
                    // The spec's backwards-compatibility rule: a server that refuses the
                    // Streamable HTTP handshake may be a legacy SSE server.
                    tracing::debug!(upstream = %self.name(), %streamable_error, "trying legacy SSE");
                    match self.open_sse(http).await {
                        Ok(session) => Ok(session),
                        Err(SseOpenError::NotSse(_)) => Err(streamable_error),
                        Err(SseOpenError::Failed(error)) => Err(error),
                    }
                }
            },
        }
    }

    async fn open_streamable(&self, http: &HttpConfig) -> Result<Session, UpstreamError> {
        self.check_target(&http.url)?;
        let headers =
            header_map(&http.headers).map_err(|error| self.config_error(error.to_string()))?;
        let mut transport_config = StreamableHttpClientTransportConfig::with_uri(http.url.as_str());
        transport_config.custom_headers = headers;
        transport_config.reinit_on_expired_session = true;
        // rmcp caps JSON answers at its own 16 MiB and event-stream events here.
        transport_config.max_sse_event_size = self.max_answer_bytes();
        let route = Arc::new(RouteCell::default());
        let oversized_answer = Arc::<std::sync::atomic::AtomicBool>::default();
        let transport = StreamableHttpClientTransport::with_client(
            SessionAwareClient::new(
                self.inner.config.auth.clone(),
                route.clone(),
                self.max_answer_bytes(),
                oversized_answer.clone(),
            ),
            transport_config,
        );
        let service = self.handshake(transport, self.lifecycle()).await?;
        Ok(Session {
            service,
            child: SyncMutex::new(None),
            transport: TransportKind::StreamableHttp,
            raw_route: Some(route),
            oversized_answer,
        })
    }

    async fn open_sse(&self, http: &HttpConfig) -> Result<Session, SseOpenError> {
        let headers = header_map(&http.headers)
            .map_err(|error| SseOpenError::Failed(self.config_error(error.to_string())))?;
        let endpoint_wait = self
            .inner
            .config
            .request_timeout
            .min(Duration::from_secs(10));
        let oversized_answer = Arc::<std::sync::atomic::AtomicBool>::default();
        let cap = crate::sse::EventCap {
            max_bytes: self.max_answer_bytes(),
            exceeded: oversized_answer.clone(),
        };
        let transport = LegacySseTransport::connect(
            shared_http_client(),
            &http.url,
            headers,
            self.inner.config.auth.clone(),
            endpoint_wait,
            cap,
        )
        .await
        .map_err(|error| {
            let (reason, delivery) = describe_transport_error(&error);
            let failure = UpstreamError::Connect {
                upstream: self.name().into(),
                reason,
                delivery,
            };
            if error.is_not_sse() {
                SseOpenError::NotSse(failure)
            } else {
                SseOpenError::Failed(failure)
            }
        })?;
        // The legacy transport predates the stateless era: only the initialize handshake applies.
        let service = self
            .handshake(transport, ClientLifecycleMode::Initialize)
            .await
            .map_err(SseOpenError::Failed)?;
        Ok(Session {
            service,
            child: SyncMutex::new(None),
            transport: TransportKind::Sse,
            raw_route: None,
            oversized_answer,
        })
    }

    async fn handshake<T>(
        &self,
        transport: T,
        lifecycle: ClientLifecycleMode,
    ) -> Result<RunningService<RoleClient, UpstreamHandler>, UpstreamError>
    where
        T: rmcp::transport::Transport<RoleClient> + 'static,
    {
        let handler = self.inner.handler.clone();
        let transport = InOrder::new(transport, handler.clone());
        handler
            .serve_with_lifecycle(transport, lifecycle)
            .await
            .map_err(|error| {
                let (reason, delivery) = describe_transport_error(&error);
                UpstreamError::Connect {
                    upstream: self.name().into(),
                    reason,
                    delivery,
                }
            })
    }

    /// Refuses a URL whose host is written as a forbidden address, once per session (its URL
    /// never changes); names are judged by the resolver each time they are resolved.
    fn check_target(&self, url: &str) -> Result<(), UpstreamError> {
        let host = url::Url::parse(url)
            .ok()
            .and_then(|url| url.host_str().map(str::to_string))
            .unwrap_or_default();
        crate::net::check_host(&host).map_err(|forbidden| UpstreamError::Connect {
            upstream: self.name().into(),
            reason: forbidden.to_string(),
            delivery: Delivery::NotSent,
        })
    }

    fn config_error(&self, reason: String) -> UpstreamError {
        UpstreamError::Config {
            upstream: self.name().into(),
            reason,
        }
    }

    /// One attempt of one request on one session.
    async fn send_once(
        &self,
        session: &Session,
        request: ClientRequest,
        options: &RequestOptions,
    ) -> Result<ServerResult, Attempt> {
        let method = request.method().to_string();
        let timeout = options.timeout.unwrap_or(self.inner.config.request_timeout);
        let hard_limit = self.inner.config.max_request_timeout.max(timeout);
        // rmcp enforces only the hard limit; the silence timeout below restarts on each progress.
        let mut peer_options = PeerRequestOptions::with_timeout(hard_limit);
        let mut meta = rmcp::model::RequestMetaObject::default();
        if matches!(self.inner.config.auth, UpstreamAuth::Bearer(_)) {
            meta.insert(
                CONTEXT_META_KEY.into(),
                Value::Object(options.context.0.clone()),
            );
        }
        // Stdio has no headers to carry it; HTTP transports turn it into `traceparent`.
        if session.transport != TransportKind::Stdio
            && let Some(traceparent) = crate::exchange::current_traceparent()
        {
            meta.insert(
                crate::exchange::TRACEPARENT_META_KEY.into(),
                Value::String(traceparent),
            );
        }
        // A stateless client's own context, for an upstream of its era (a session-era one has
        // the gateway's, from the handshake).
        let stateless = session.is_stateless();
        if let Some(client) = options.client_meta.as_ref().filter(|_| stateless) {
            for (key, value) in client {
                meta.insert(key.clone(), value.clone());
            }
        }
        if !meta.is_empty() {
            peer_options.meta = Some(meta);
        }
        let peer = session.service.peer().clone();
        let handle = match peer.send_request_with_option(request, peer_options).await {
            Ok(handle) => handle,
            Err(ServiceError::TransportClosed) => return Err(Attempt::Stale),
            Err(error) => {
                return Err(Attempt::Failed(
                    self.map_service_error(&method, session, error),
                ));
            }
        };
        let routes = &self.inner.handler.progress;
        // Progress is always routed here, to restart the timeout, and passed on to the caller.
        let (progress_sender, mut progress) = mpsc::unbounded_channel();
        routes.add(handle.progress_token.clone(), progress_sender);
        let mut guard = InFlight {
            peer,
            id: Some(handle.id.clone()),
            progress_token: handle.progress_token.clone(),
            routes: routes.clone(),
            cancels: self.inner.cancels.clone(),
        };
        let cancelled = async {
            match &options.cancel {
                Some(cancel) => cancel.cancelled().await,
                None => std::future::pending().await,
            }
        };
        let started = Instant::now();
        let mut deadline = started + timeout;
        let pass_on = |report: Progress| {
            if let Some(caller) = &options.progress {
                let _ = caller.send(report);
            }
        };
        let response = handle.await_response();
        tokio::pin!(response);
        tokio::pin!(cancelled);
        loop {
            tokio::select! {
                response = &mut response => {
                    guard.disarm();
                    // Every report the upstream sent before its answer was routed before the
                    // answer arrived (see `InOrder`), so it is here to pass on.
                    while let Ok(report) = progress.try_recv() {
                        pass_on(report);
                    }
                    return match response {
                        Ok(result) => Ok(result),
                        Err(ServiceError::TransportSend(error)) if session_is_gone(&error) => Err(Attempt::Stale),
                        Err(error) => Err(Attempt::Failed(self.map_service_error(&method, session, error))),
                    };
                }
                () = &mut cancelled => {
                    // The armed guard sends `notifications/cancelled` as it drops.
                    return Err(Attempt::Failed(UpstreamError::Cancelled {
                        upstream: self.name().into(),
                        method: method.clone(),
                    }));
                }
                Some(report) = progress.recv() => {
                    // Progress proves the call is alive: the silence timeout starts again.
                    deadline = (Instant::now() + timeout).min(started + hard_limit);
                    pass_on(report);
                }
                () = tokio::time::sleep_until(deadline) => {
                    // The armed guard sends `notifications/cancelled` as it drops.
                    return Err(Attempt::Failed(UpstreamError::Timeout {
                        upstream: self.name().into(),
                        method: method.clone(),
                        timeout: deadline.duration_since(started),
                    }));
                }
            }
        }
    }

    fn map_service_error(
        &self,
        method: &str,
        session: &Session,
        error: ServiceError,
    ) -> UpstreamError {
        let upstream = self.name().to_string();
        let method = method.to_string();
        match error {
            ServiceError::McpError(error) => UpstreamError::Rpc {
                upstream,
                method,
                code: error.code.0,
                message: sanitize_message(&error.message),
                data: error.data,
            },
            ServiceError::Timeout { timeout } => UpstreamError::Timeout {
                upstream,
                method,
                timeout,
            },
            ServiceError::Cancelled { .. } => UpstreamError::Cancelled { upstream, method },
            ServiceError::TransportClosed
                if session
                    .oversized_answer
                    .load(std::sync::atomic::Ordering::Relaxed) =>
            {
                UpstreamError::Transport {
                    upstream,
                    method,
                    reason: format!(
                        "the answer exceeded the cap of {} bytes",
                        self.max_answer_bytes()
                    ),
                    delivery: Delivery::MaybeSent,
                }
            }
            ServiceError::TransportClosed => UpstreamError::Closed {
                upstream,
                method,
                reason: match session.transport {
                    TransportKind::Stdio => "the server process exited".into(),
                    _ => "the connection closed".into(),
                },
            },
            ServiceError::UnexpectedResponse => {
                UpstreamError::UnexpectedResponse { upstream, method }
            }
            ServiceError::TransportSend(error) => {
                let (reason, delivery) = describe_transport_error(&error);
                UpstreamError::Transport {
                    upstream,
                    method,
                    reason,
                    delivery,
                }
            }
            other => UpstreamError::Transport {
                upstream,
                method,
                reason: sanitize_message(&other.to_string()),
                delivery: Delivery::MaybeSent,
            },
        }
    }
}

/// How one attempt on one session failed.
enum Attempt {
    /// The session was dead before the request reached the server; open a new one and resend.
    Stale,
    Failed(UpstreamError),
}

/// Whether a send failed because the server forgot the session (legacy SSE after a restart).
fn session_is_gone(error: &rmcp::transport::DynamicTransportError) -> bool {
    crate::error::chain(error).any(|err| {
        matches!(
            err.downcast_ref::<crate::sse::SseError>(),
            Some(crate::sse::SseError::SessionGone)
        )
    })
}

enum SseOpenError {
    /// The URL does not serve the legacy transport (wrong status, no endpoint event).
    NotSse(UpstreamError),
    /// It does, but the session could not be set up.
    Failed(UpstreamError),
}

impl SseOpenError {
    fn into_error(self) -> UpstreamError {
        match self {
            Self::NotSse(error) | Self::Failed(error) => error,
        }
    }
}

/// Probe with the stateless 2026-07-28 `server/discover`, and fall back to the initialize handshake
/// at 2025-11-25 for servers that refuse it.
fn modern_first_lifecycle() -> ClientLifecycleMode {
    ClientLifecycleMode::Auto {
        preferred_versions: vec![ProtocolVersion::LATEST],
        legacy_version: Some(ProtocolVersion::LATEST_WITH_INITIALIZE),
    }
}

impl Upstream {
    /// How a session is opened. One whose requests a client answers (a relay) is opened in the
    /// initialize era even when the server speaks 2026-07-28: a server may still ask the way of
    /// that era, on its session, which a stateless exchange has no channel for. Its 2026-07-28
    /// `input_required` answers are then asked as requests of that era too. So is a stdio
    /// server's: rmcp gives up on `server/discover` after 10 s and sends `initialize` on the same
    /// pipe, where a server slower to start (`npx` fetching its package) then answers both, and
    /// the late discovery breaks the handshake. Every server of either era takes `initialize`.
    fn lifecycle(&self) -> ClientLifecycleMode {
        let stdio = matches!(self.inner.config.endpoint, Endpoint::Stdio(_));
        if self.inner.config.relay.is_some() || stdio {
            ClientLifecycleMode::Initialize
        } else {
            modern_first_lifecycle()
        }
    }
}

/// One request in flight. Dropped however the call ends, including when its caller's future is
/// dropped: it stops routing the request's progress and, unless disarmed by an answer, sends
/// `notifications/cancelled`.
struct InFlight {
    peer: Peer<RoleClient>,
    /// The request to cancel; `None` once it was answered.
    id: Option<rmcp::model::RequestId>,
    progress_token: rmcp::model::ProgressToken,
    routes: ProgressRoutes,
    /// Where the cancel is sent from, so that `close` can wait for it.
    cancels: TaskTracker,
}

/// The whole of a response body.
async fn read_body(
    body: crate::raw_client::AnswerBody,
) -> Result<bytes::Bytes, crate::raw_client::RawHttpError> {
    use http_body_util::BodyExt as _;
    Ok(body.collect().await?.to_bytes())
}

/// Puts the answers to an `input_required` and its echoed state on the request that got it;
/// false for a request that cannot carry them.
fn carry_input(
    request: &mut ClientRequest,
    responses: Option<rmcp::model::InputResponses>,
    state: Option<String>,
) -> bool {
    match request {
        ClientRequest::CallToolRequest(call) => {
            call.params.input_responses = responses;
            call.params.request_state = state;
        }
        ClientRequest::GetPromptRequest(get) => {
            get.params.input_responses = responses;
            get.params.request_state = state;
        }
        ClientRequest::ReadResourceRequest(read) => {
            read.params.input_responses = responses;
            read.params.request_state = state;
        }
        _ => return false,
    }
    true
}

/// How a handshake that took too long is reported.
const NO_HANDSHAKE: &str = "no handshake within";

impl InFlight {
    fn disarm(&mut self) {
        self.id = None;
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.routes.remove(&self.progress_token);
        let Some(id) = self.id.take() else { return };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let peer = self.peer.clone();
        self.cancels.spawn_on(
            async move {
                let params = rmcp::model::CancelledNotificationParam::new(
                    Some(id),
                    Some("the caller cancelled the request".to_string()),
                );
                let _ = peer.notify_cancelled(params).await;
            },
            &runtime,
        );
    }
}
