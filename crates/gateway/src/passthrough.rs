//! The proxy's fast path: a downstream `tools/call` forwarded to an upstream's Streamable HTTP
//! session as raw JSON, governed like every call (the registry's names, filters and pinned
//! parameters; breaker, timeout, audit, metrics and the `mcp.request` span), but never decoded into
//! rmcp's typed model. A call the fast path cannot take (the client answers server-to-client
//! requests, the call carries `_meta` beyond a progress token, the upstream is not on Streamable
//! HTTP) is declined before anything is sent, and rmcp's typed path serves it.

use std::{
    collections::{BTreeSet, HashMap},
    sync::{
        Arc, Mutex, PoisonError, RwLock,
        atomic::{AtomicU64, Ordering},
    },
    time::Instant,
};

use rmcp::ErrorData as McpError;
use serde_json::value::RawValue;
use switchboard_mcp::{CallContext, RawReply, RequestOptions};
use switchboard_tools::RawExecuteError;
use tokio_util::sync::CancellationToken;

use crate::{Gateway, Served};

/// Downstream sessions whose calls may take the fast path, by session id.
#[derive(Debug, Clone, Default)]
pub struct FastSessions {
    sessions: Arc<RwLock<HashMap<Arc<str>, Arc<FastSession>>>>,
    /// Where a session that ends lets go of the resources it subscribed to.
    pool: crate::pool::UpstreamPool,
}

/// A downstream session that shares its server's upstream session.
#[derive(Debug)]
pub struct FastSession {
    /// The endpoint it was opened on: a server id, or `None` for the aggregate. A session id is
    /// only good on its own endpoint.
    pub endpoint: Option<String>,
    /// The client's name, for the audit.
    pub client_name: String,
    /// Fast calls in flight, by the client's request id (its JSON text), so that the client's
    /// `notifications/cancelled` reaches them.
    in_flight: Mutex<HashMap<String, CancellationToken>>,
    /// The resources the client subscribed to, kept here rather than by the upstream (which
    /// every client shares, and which may speak the stateless era, where subscriptions are a
    /// listen filter): its GET stream relays their updates and no others.
    resources: Mutex<BTreeSet<String>>,
    /// When (milliseconds since the process's epoch) the client was last known active: rmcp's
    /// session is told of fast calls from it at most once per interval (they bypass it, and it
    /// would otherwise end the session as idle), and a hibernated session ends by this clock.
    last_touch: AtomicU64,
}

/// Milliseconds since the first call, on a monotonic clock.
fn now_ms() -> u64 {
    static EPOCH: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    u64::try_from(EPOCH.get_or_init(Instant::now).elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// How often a session's keep-alive is refreshed while fast calls use it: five times per idle
/// timeout, so that a late refresh still comes in time.
pub fn touch_interval(idle_timeout: std::time::Duration) -> std::time::Duration {
    idle_timeout / 5
}

impl FastSession {
    /// A session's fast-path state; a stateless (2026-07-28) request gets one of its own.
    pub fn new(endpoint: Option<String>, client_name: String) -> Arc<Self> {
        Arc::new(Self {
            endpoint,
            client_name,
            in_flight: Mutex::default(),
            resources: Mutex::default(),
            last_touch: AtomicU64::new(now_ms()),
        })
    }

    fn resources(&self) -> std::sync::MutexGuard<'_, BTreeSet<String>> {
        self.resources
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Notes the client's subscription to `uri`; whether it is new.
    pub fn subscribe(&self, uri: &str) -> bool {
        self.resources().insert(uri.to_string())
    }

    /// Drops the client's subscription to `uri`; whether it had one.
    pub fn unsubscribe(&self, uri: &str) -> bool {
        self.resources().remove(uri)
    }

    /// Whether the client subscribed to `uri`.
    pub fn subscribed(&self, uri: &str) -> bool {
        self.resources().contains(uri)
    }

    /// Whether rmcp's session should hear of this client now; at most once per `interval`.
    pub fn needs_touch(&self, interval: std::time::Duration) -> bool {
        let now = now_ms();
        let last = self.last_touch.load(Ordering::Relaxed);
        u128::from(now.saturating_sub(last)) >= interval.as_millis()
            && self
                .last_touch
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
    }

    /// Notes that the client is active now.
    pub fn mark_active(&self) {
        self.last_touch.store(now_ms(), Ordering::Relaxed);
    }

    /// How long since the client was last known active.
    pub fn idle_for(&self) -> std::time::Duration {
        std::time::Duration::from_millis(
            now_ms().saturating_sub(self.last_touch.load(Ordering::Relaxed)),
        )
    }

    /// Tracks a call until the returned guard drops; its token is cancelled by the client's
    /// `notifications/cancelled` for `request_id`.
    pub fn track(self: &Arc<Self>, request_id: &str) -> InFlightCall {
        let token = CancellationToken::new();
        self.in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(request_id.to_string(), token.clone());
        InFlightCall {
            session: self.clone(),
            request_id: request_id.to_string(),
            token,
        }
    }

    /// Cancels the fast call with this request id; false when there is none.
    pub fn cancel(&self, request_id: &str) -> bool {
        let token = self
            .in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(request_id)
            .cloned();
        token.map(|token| token.cancel()).is_some()
    }
}

/// A fast call being tracked for cancellation.
#[derive(Debug)]
pub struct InFlightCall {
    session: Arc<FastSession>,
    request_id: String,
    pub token: CancellationToken,
}

impl Drop for InFlightCall {
    fn drop(&mut self) {
        self.session
            .in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.request_id);
    }
}

impl FastSessions {
    /// The sessions of a gateway whose upstreams are in `pool`.
    pub(crate) fn new(pool: crate::pool::UpstreamPool) -> Self {
        Self {
            sessions: Arc::default(),
            pool,
        }
    }

    /// Registers a session; it stays until the returned ticket drops (when the downstream
    /// session ends).
    pub fn register(
        &self,
        session_id: &str,
        endpoint: Option<String>,
        client_name: String,
    ) -> SessionTicket {
        let id: Arc<str> = Arc::from(session_id);
        let session = FastSession::new(endpoint, client_name);
        self.sessions
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id.clone(), session.clone());
        SessionTicket {
            sessions: self.clone(),
            id,
            session,
        }
    }

    /// The session, if it may take the fast path on `endpoint`.
    pub fn get(&self, session_id: &str, endpoint: Option<&str>) -> Option<Arc<FastSession>> {
        self.sessions
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(session_id)
            .filter(|session| session.endpoint.as_deref() == endpoint)
            .cloned()
    }
}

/// Removes a session from [`FastSessions`] when dropped.
#[derive(Debug)]
pub struct SessionTicket {
    sessions: FastSessions,
    id: Arc<str>,
    session: Arc<FastSession>,
}

impl SessionTicket {
    /// The registered session.
    pub fn session(&self) -> &Arc<FastSession> {
        &self.session
    }
}

impl Drop for SessionTicket {
    /// The session ended: it leaves the registry, and lets go of what it subscribed to.
    fn drop(&mut self) {
        self.sessions
            .sessions
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.id);
        let uris = std::mem::take(&mut *self.session.resources());
        if let Some(server) = &self.session.endpoint {
            self.sessions
                .pool
                .unsubscribe_in_background(server, uris.into_iter().collect());
        }
    }
}

/// One call for the fast path.
#[derive(Debug)]
pub struct RawCall<'a> {
    pub served: &'a Served,
    /// The tool's name as the client sees it.
    pub name: &'a str,
    /// The client's arguments, as it wrote them.
    pub arguments: Option<&'a RawValue>,
    pub session: &'a FastSession,
    /// The client's request headers: the trace and the session id for the span.
    pub headers: &'a http::HeaderMap,
    pub cancel: CancellationToken,
    /// Where the upstream's progress goes, when the client asked for it, and the client's token
    /// (JSON text), which goes upstream as it is.
    pub progress: Option<tokio::sync::mpsc::UnboundedSender<switchboard_mcp::Progress>>,
    pub progress_token: Option<&'a RawValue>,
    /// What a stateless client's call carries besides its arguments.
    pub stateless: Option<switchboard_mcp::StatelessCall<'a>>,
}

/// Calls a governed tool with raw JSON. `None`: declined, nothing was sent, and the typed path
/// should serve the call. Otherwise the call was made, counted and audited.
pub async fn call_raw(gateway: &Gateway, call: RawCall<'_>) -> Option<Result<RawReply, McpError>> {
    use tracing::Instrument as _;
    let RawCall {
        served,
        name,
        arguments,
        session,
        headers,
        cancel,
        progress,
        progress_token,
        stateless,
    } = call;
    let span = crate::call::call_span(served, name, headers);
    let started = Instant::now();
    let options = RequestOptions {
        cancel: Some(cancel),
        progress,
        progress_token: progress_token.map(|token| token.get().to_string()),
        ..RequestOptions::default()
    };
    let result = served
        .registry
        .execute_raw(
            name,
            arguments,
            stateless.as_ref(),
            &CallContext::new(),
            options,
        )
        .instrument(span.clone())
        .await;
    let result = match result {
        Ok(reply) => Ok(reply),
        // An unrouted call was not sent: the typed path takes it.
        Err(RawExecuteError::Unrouted) => return None,
        Err(RawExecuteError::Tool(error)) => {
            Err(crate::call::tool_error_to_mcp(gateway, &served.id, error))
        }
        Err(error) => Err(McpError::internal_error(error.to_string(), None)),
    };
    gateway.metrics().passthrough_calls.inc();
    if result.is_ok() {
        crate::call::record(gateway, &served.id, None);
    }
    let outcome = match &result {
        Ok(reply) if reply.is_error => crate::call::CallOutcome::ToolError,
        Ok(_) => crate::call::CallOutcome::Ok,
        Err(error) => crate::call::CallOutcome::Failed(error.message.to_string()),
    };
    let arguments_hash = arguments
        .and_then(|raw| serde_json::from_str::<serde_json::Value>(raw.get()).ok())
        .filter(serde_json::Value::is_object)
        .map(|value| crate::audit::hash_json(&value));
    crate::call::account_call(
        gateway,
        served,
        name,
        session.client_name.clone(),
        started,
        outcome,
        arguments_hash,
        &span,
    );
    Some(result)
}

/// The served server and tool name a fast call on `endpoint` goes to: the endpoint's server, or
/// on the aggregate the server named before the separator. `None` when the aggregate's name does
/// not split or names no enabled server: the typed path then gives the error. An upstream that
/// could not be reached or listed is an error to answer: trying again on the typed path would
/// make the client wait twice.
pub async fn target<'n>(
    gateway: &Gateway,
    endpoint: Option<&str>,
    name: &'n str,
) -> Option<Result<(Served, &'n str), McpError>> {
    let (server, tool) = match endpoint {
        Some(server) => (server, name),
        None => crate::aggregate::split(name)?,
    };
    match gateway.served(server).await {
        Ok(served) => Some(Ok((served, tool))),
        Err(error @ crate::GatewayError::Upstream(_)) => Some(Err(crate::call::to_mcp(error))),
        Err(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clients_cancel_reaches_its_tracked_call_only_while_it_runs() {
        let sessions = FastSessions::default();
        let ticket = sessions.register("s1", Some("ms1".into()), "client".into());
        let session = sessions.get("s1", Some("ms1")).expect("registered");
        // A session id is good only on the endpoint it was opened on.
        assert!(sessions.get("s1", None).is_none());
        let call = session.track("7");
        assert!(!session.cancel("8"), "no call has that id");
        assert!(session.cancel("7"));
        assert!(call.token.is_cancelled());
        drop(call);
        assert!(!session.cancel("7"), "a finished call is no longer tracked");
        drop(ticket);
        assert!(
            sessions.get("s1", Some("ms1")).is_none(),
            "the ticket removes it"
        );
    }
}
