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
    deadline::{Cut, Deadline, governed},
    error::{Delivery, UpstreamError, describe_transport_error, sanitize_message},
    exchange::{CONTEXT_META_KEY, header_map},
    handler::{InOrder, Progress, ProgressRoutes, UpstreamEvent, UpstreamHandler},
    http::{SessionAwareClient, shared_http_client},
    raw::{RawCallError, RawReply, RawRoute, RouteCell, StatelessCall},
    sse::LegacySseTransport,
    stdio::{self, ChildGuard},
};

mod cancel;
mod changes;
mod connect;
mod raw_call;
mod raw_stdio;
mod request;

/// Rounds of `input_required` a call may go through before it fails (the SDKs' default).
/// How long `close` waits for cancels still being sent.
const CANCEL_FLUSH: Duration = Duration::from_secs(2);
/// How long closing an upstream waits for its session to end (see [`Upstream::close`]).
const CLOSE_WAIT: Duration = Duration::from_secs(2);
/// How a handshake that took too long is reported.
const NO_HANDSHAKE: &str = "no handshake within";
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
    /// Such a client's answers to an earlier `input_required` on a tool call, and the state it
    /// echoes (`inputResponses`, `requestState`), carried on its retry.
    pub input: Option<RetriedInput>,
    /// The client's own progress token, as JSON text: a raw call sends it upstream in place of one
    /// of the gateway's, as the client would directly. A raw call's reports come back on its own
    /// answer stream, so the tokens of different clients never mix.
    pub progress_token: Option<String>,
}

/// A stateless client's retry of a tool call that asked it for input.
#[derive(Debug, Clone, Default)]
pub struct RetriedInput {
    pub responses: Option<rmcp::model::InputResponses>,
    pub state: Option<String>,
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
    /// How raw calls reach the session.
    raw_way: RawWay,
    /// Set when an answer went over the cap: rmcp then closes the whole transport, and this
    /// says why to the requests it fails.
    oversized_answer: Arc<std::sync::atomic::AtomicBool>,
}

/// How raw calls reach a session, by its transport.
enum RawWay {
    /// A Streamable HTTP session: the route its requests record.
    Http(Arc<RouteCell>),
    /// A child's stdio: one line each way.
    Stdio(Arc<stdio::StdioLink>),
    /// Legacy SSE: raw calls take the typed path.
    None,
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

    /// The cap on one answer: the configured one, never above what rmcp's JSON reader takes.
    fn max_answer_bytes(&self) -> usize {
        self.inner
            .config
            .max_answer_bytes
            .min(crate::config::MAX_ANSWER_BYTES)
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
        if let Some(input) = &options.input {
            params.input_responses = input.responses.clone();
            params.request_state = input.state.clone();
        }
        let request = ClientRequest::CallToolRequest(CallToolRequest::new(params));
        match self.request(request, &options).await? {
            ServerResult::CallToolResult(result) => Ok(result),
            // Only with the caller's own context (`RequestOptions::client_meta`): see `request`.
            ServerResult::InputRequiredResult(pending) => Err(UpstreamError::InputRequired {
                upstream: self.name().into(),
                method: "tools/call".into(),
                pending: Box::new(pending),
            }),
            _ => Err(self.unexpected("tools/call")),
        }
    }

    /// The circuit breaker's state.
    pub fn breaker_state(&self) -> crate::BreakerState {
        self.inner.admission.state()
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
}
