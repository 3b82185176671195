//! Downstream Streamable HTTP sessions that sleep while nothing uses them.
//!
//! rmcp keeps every session it serves awake: a service task, its worker and some seven channels,
//! about 75 KiB each. Most sessions on the proxy are idle between raw calls, which never touch
//! rmcp. So a session whose client answers no server-to-client requests is *hibernated* as soon
//! as rmcp serves nothing for it (no request in flight, no stream open): its rmcp session is
//! closed and only the client's `initialize` parameters and its raw-path registration stay. The
//! next request rmcp must serve wakes it: rmcp's own restore (`SessionStore`) replays the
//! `initialize` handshake into a new worker under the same session id, and the client never
//! notices. A hibernated session ends after the idle timeout like an awake one.
//!
//! Such a client's GET stream is served outside rmcp (`mcp::standalone_stream`), so that the
//! session sleeps with it open: it carries what the upstream says unasked, which is all rmcp's
//! would carry for a client that answers no requests.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError, Weak},
    time::Duration,
};

use axum::body::Body;
use futures::Stream;
use rmcp::{
    model::{
        ClientJsonRpcMessage, ClientNotification, GetExtensions as _, InitializeRequestParams,
    },
    transport::{
        WorkerTransport,
        streamable_http_server::session::{
            RestoreOutcome, ServerSseMessage, SessionId, SessionManager, SessionRestoreMarker,
            SessionState, SessionStore, SessionStoreError,
            local::{LocalSessionManager, LocalSessionManagerError, LocalSessionWorker},
        },
    },
};
use switchboard_gateway::shared_sessions::{SessionTicket, SharedSessions};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// How long a request waits for another to finish waking or hibernating its session before it
/// lets rmcp decide on its own (which answers it, or fails it clearly, but never hangs).
const STATE_WAIT: Duration = Duration::from_secs(10);

/// rmcp's in-memory sessions, with idle ones hibernated. One per endpoint: a session id is only
/// good on the endpoint that opened it.
pub struct HibernatingSessions {
    /// The awake sessions, as rmcp keeps them.
    inner: LocalSessionManager,
    /// The endpoint's server id, or `None` for `/mcp`: where its raw-path sessions belong.
    endpoint: Option<String>,
    /// The raw path's sessions, which a hibernated session stays registered with.
    shared: SharedSessions,
    /// Every session of the endpoint, awake or not.
    records: Mutex<HashMap<SessionId, Record>>,
    /// Told of every change of state, for requests waiting on one.
    changed: Notify,
    /// How long a hibernated session may go unused before it ends.
    idle_timeout: Duration,
}

struct Record {
    /// The client's `initialize` parameters: replayed to wake the session.
    params: Option<InitializeRequestParams>,
    /// Requests and streams of this session that rmcp is serving now.
    open: usize,
    state: State,
    /// Ends of hibernated workers still to come. rmcp's task for a session closes the session's
    /// id once its worker ends, and that must not close the worker that woke after it.
    stale_exits: usize,
    /// The raw path's registration, made once the client is initialized, when it answers no
    /// server-to-client requests. Only such a session hibernates: a client that does answer them
    /// has an upstream session of its own, tied to its rmcp session.
    ticket: Option<SessionTicket>,
    /// Cancelled when the session ends: ends the GET stream served outside rmcp.
    ended: CancellationToken,
}

impl Drop for Record {
    fn drop(&mut self) {
        self.ended.cancel();
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Awake,
    /// Its rmcp session is being taken out; requests wait.
    Hibernating,
    Hibernated,
    /// One request is waking it through rmcp's restore; the others wait.
    Waking,
}

impl HibernatingSessions {
    pub fn new(
        endpoint: Option<String>,
        shared: SharedSessions,
        idle_timeout: Duration,
    ) -> Arc<Self> {
        let mut inner = LocalSessionManager::default();
        inner.session_config.keep_alive = Some(idle_timeout);
        Arc::new(Self {
            inner,
            endpoint,
            shared,
            records: Mutex::default(),
            changed: Notify::new(),
            idle_timeout,
        })
    }

    fn records(&self) -> std::sync::MutexGuard<'_, HashMap<SessionId, Record>> {
        self.records.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// How long a session may go unused before it ends.
    pub fn idle_timeout(&self) -> Duration {
        self.idle_timeout
    }

    /// Sessions open now, awake or hibernated.
    pub fn count(&self) -> usize {
        self.records().len()
    }

    /// Hibernated sessions now.
    pub fn hibernated(&self) -> usize {
        self.records()
            .values()
            .filter(|record| record.state == State::Hibernated)
            .count()
    }

    /// Counts a request for rmcp on the session it names until the returned visit drops; no
    /// session hibernates while rmcp serves it.
    pub fn visit(self: &Arc<Self>, session_id: &str) -> Option<Visit> {
        let mut records = self.records();
        let id = records.get_key_value(session_id)?.0.clone();
        let record = records.get_mut(&id)?;
        record.open += 1;
        if let Some(ticket) = &record.ticket {
            ticket.session().mark_active();
        }
        Some(Visit {
            sessions: self.clone(),
            id,
        })
    }

    fn leave(self: &Arc<Self>, id: &SessionId) {
        let idle = {
            let mut records = self.records();
            let Some(record) = records.get_mut(id) else {
                return;
            };
            record.open = record.open.saturating_sub(1);
            if let Some(ticket) = &record.ticket {
                ticket.session().mark_active();
            }
            record.open == 0 && record.ticket.is_some() && record.state == State::Awake
        };
        if idle {
            let sessions = self.clone();
            let id = id.clone();
            tokio::spawn(async move { sessions.hibernate(&id).await });
        }
    }

    /// Takes an unused session's rmcp session out, keeping what wakes it.
    async fn hibernate(&self, id: &SessionId) {
        {
            let mut records = self.records();
            let Some(record) = records.get_mut(id) else {
                return;
            };
            if record.open > 0 || record.ticket.is_none() || record.state != State::Awake {
                return;
            }
            record.state = State::Hibernating;
            record.stale_exits += 1;
        }
        let handle = self.inner.sessions.write().await.remove(id);
        if let Some(record) = self.records().get_mut(id) {
            record.state = State::Hibernated;
            if handle.is_none() {
                // No worker was left to end, so no end of one is to come.
                record.stale_exits = record.stale_exits.saturating_sub(1);
            }
        }
        self.changed.notify_waiters();
        if let Some(handle) = handle {
            // Ends the worker; its task then closes the id, which `close_session` expects.
            let _ = handle.close().await;
        }
    }

    /// For a session that may hibernate, what ends with it; `None` for others, whose GET stream
    /// rmcp serves.
    pub fn sleeper(&self, session_id: &str) -> Option<CancellationToken> {
        self.records()
            .get(session_id)
            .filter(|record| record.ticket.is_some())
            .map(|record| record.ended.clone())
    }

    /// Tells an awake session's rmcp worker that its client is active (raw calls bypass it), so
    /// that it does not end the session as idle; a hibernated one keeps its own clock.
    pub fn touch(self: &Arc<Self>, session_id: &str) {
        let awake = self
            .records()
            .get(session_id)
            .is_some_and(|record| record.state == State::Awake);
        if !awake {
            return;
        }
        let sessions = self.clone();
        let id: SessionId = Arc::from(session_id);
        tokio::spawn(async move {
            let handle = sessions.inner.sessions.read().await.get(&id).cloned();
            if let (Some(handle), Some(message)) = (handle, keep_alive_message()) {
                let _ = handle.push_message(message, None).await;
            }
        });
    }

    /// Ends every session of the endpoint, awake or not: its server was deleted.
    pub async fn end_all(&self) {
        let ended: Vec<SessionId> = self.records().drain().map(|(id, _)| id).collect();
        self.changed.notify_waiters();
        for id in ended {
            // A session whose worker already stopped has nothing left to close.
            let _ = self.inner.close_session(&id).await;
        }
    }

    /// Ends the hibernated sessions unused for longer than the idle timeout.
    pub fn expire_idle(&self) {
        self.records().retain(|_, record| {
            record.state != State::Hibernated
                || record
                    .ticket
                    .as_ref()
                    .is_some_and(|ticket| ticket.session().idle_for() < self.idle_timeout)
        });
    }
}

/// A request rmcp is serving for a session; see [`HibernatingSessions::visit`].
pub struct Visit {
    sessions: Arc<HibernatingSessions>,
    id: SessionId,
}

impl Drop for Visit {
    fn drop(&mut self) {
        self.sessions.leave(&self.id);
    }
}

impl Visit {
    /// The response's body, holding the visit until it is sent or dropped. The body keeps its
    /// length, so that an answer of known size is not sent chunked.
    pub fn hold(self, body: Body) -> Body {
        use http_body_util::BodyExt as _;
        Body::new(body.map_err(move |error| {
            let _visit = &self;
            error
        }))
    }
}

/// A notification of our own: rmcp's handler ignores it, but it counts as activity for the
/// session's idle timer.
fn keep_alive_message() -> Option<ClientJsonRpcMessage> {
    serde_json::from_str(r#"{"jsonrpc":"2.0","method":"notifications/io.switchboard/keep-alive"}"#)
        .ok()
}

/// The session a request names, if any.
pub(crate) fn session_id(headers: &axum::http::HeaderMap) -> Option<&str> {
    headers
        .get("mcp-session-id")
        .and_then(|value| value.to_str().ok())
}

impl SessionManager for HibernatingSessions {
    type Error = LocalSessionManagerError;
    type Transport = WorkerTransport<LocalSessionWorker>;

    async fn create_session(&self) -> Result<(SessionId, Self::Transport), Self::Error> {
        let (id, transport) = self.inner.create_session().await?;
        self.records().insert(
            id.clone(),
            Record {
                params: None,
                open: 0,
                state: State::Awake,
                stale_exits: 0,
                ticket: None,
                ended: CancellationToken::new(),
            },
        );
        Ok((id, transport))
    }

    async fn initialize_session(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<rmcp::model::ServerJsonRpcMessage, Self::Error> {
        let answer = self.inner.initialize_session(id, message).await;
        if answer.is_err()
            && let Some(record) = self.records().get_mut(id)
            && record.state == State::Waking
        {
            // The next request tries again.
            record.state = State::Hibernated;
            self.changed.notify_waiters();
        }
        answer
    }

    /// True for an awake session. The first request to find one hibernated gets `false`, and
    /// rmcp wakes it from the store; the others wait for that.
    async fn has_session(&self, id: &SessionId) -> Result<bool, Self::Error> {
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let mut records = self.records();
                let Some(record) = records.get_mut(id) else {
                    return Ok(false);
                };
                match record.state {
                    State::Awake => return Ok(true),
                    State::Hibernated => {
                        record.state = State::Waking;
                        return Ok(false);
                    }
                    State::Hibernating | State::Waking => {}
                }
            }
            // Another request is waking or hibernating it.
            if tokio::time::timeout(STATE_WAIT, notified).await.is_err() {
                return Ok(false);
            }
        }
    }

    async fn close_session(&self, id: &SessionId) -> Result<(), Self::Error> {
        {
            let mut records = self.records();
            if let Some(record) = records.get_mut(id) {
                if record.stale_exits > 0 {
                    record.stale_exits -= 1;
                    return Ok(());
                }
                records.remove(id);
            }
        }
        self.changed.notify_waiters();
        self.inner.close_session(id).await
    }

    async fn create_stream(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        self.inner.create_stream(id, message).await
    }

    async fn accept_message(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<(), Self::Error> {
        let initialized = match &message {
            ClientJsonRpcMessage::Notification(notification) => matches!(
                notification.notification,
                ClientNotification::InitializedNotification(_)
            )
            .then(|| {
                notification
                    .notification
                    .extensions()
                    .get::<SessionRestoreMarker>()
                    .is_some()
            }),
            _ => None,
        };
        self.inner.accept_message(id, message).await?;
        match initialized {
            // rmcp's replay of the handshake: the session is awake again.
            Some(true) => {
                if let Some(record) = self.records().get_mut(id) {
                    record.state = State::Awake;
                }
                self.changed.notify_waiters();
            }
            Some(false) => self.register_raw(id),
            None => {}
        }
        Ok(())
    }

    async fn create_standalone_stream(
        &self,
        id: &SessionId,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        self.inner.create_standalone_stream(id).await
    }

    async fn resume(
        &self,
        id: &SessionId,
        last_event_id: String,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        self.inner.resume(id, last_event_id).await
    }

    async fn restore_session(
        &self,
        id: SessionId,
    ) -> Result<RestoreOutcome<Self::Transport>, Self::Error> {
        self.inner.restore_session(id).await
    }
}

impl HibernatingSessions {
    /// Registers an initialized session with the raw path, unless its client answers
    /// server-to-client requests.
    fn register_raw(&self, id: &SessionId) {
        let mut records = self.records();
        let Some(record) = records.get_mut(id) else {
            return;
        };
        let Some(params) = &record.params else {
            return;
        };
        if record.ticket.is_some()
            || switchboard_gateway::proxy::answers_requests(&params.capabilities)
        {
            return;
        }
        record.ticket = Some(self.shared.register(
            id,
            self.endpoint.clone(),
            params.client_info.name.clone(),
        ));
    }
}

/// The store rmcp wakes sessions from: the `initialize` parameters it saves for each session.
#[async_trait::async_trait]
impl SessionStore for HibernatingSessions {
    async fn load(&self, session_id: &str) -> Result<Option<SessionState>, SessionStoreError> {
        Ok(self
            .records()
            .get(session_id)
            .and_then(|record| record.params.clone())
            .map(SessionState::new))
    }

    async fn store(&self, session_id: &str, state: &SessionState) -> Result<(), SessionStoreError> {
        if let Some(record) = self.records().get_mut(session_id) {
            record.params = Some(state.initialize_params.clone());
        }
        Ok(())
    }

    /// A client's `DELETE`: the session ends, asleep or awake.
    async fn delete(&self, session_id: &str) -> Result<(), SessionStoreError> {
        self.records().remove(session_id);
        self.changed.notify_waiters();
        let id: SessionId = Arc::from(session_id);
        let _ = self.inner.close_session(&id).await;
        Ok(())
    }
}

/// The proxy endpoints' session managers. A replaced mount's manager is not kept here: it goes
/// once its last awake session has (rmcp's session tasks hold it until then).
#[derive(Default)]
pub struct Endpoints(Mutex<Vec<Weak<HibernatingSessions>>>);

impl Endpoints {
    pub fn add(&self, sessions: &Arc<HibernatingSessions>) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Arc::downgrade(sessions));
    }

    /// The managers still in use.
    pub fn live(&self) -> Vec<Arc<HibernatingSessions>> {
        let mut managers = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        managers.retain(|manager| manager.strong_count() > 0);
        managers.iter().filter_map(Weak::upgrade).collect()
    }
}

#[cfg(test)]
mod tests {
    use rmcp::{ServerHandler, model::ClientRequest};
    use switchboard_gateway::pool::UpstreamPool;
    use tokio_util::sync::CancellationToken;

    use super::*;

    #[test]
    fn the_keep_alive_is_a_notification_rmcp_accepts() {
        let message = keep_alive_message().expect("parses as a client message");
        assert!(matches!(message, ClientJsonRpcMessage::Notification(_)));
    }

    /// A server with nothing to serve: the sessions under test need one to answer `initialize`.
    struct Quiet;
    impl ServerHandler for Quiet {}

    /// The endpoint `srv`'s sessions, and the raw path's registrations they make.
    fn endpoint(idle_timeout: Duration) -> (Arc<HibernatingSessions>, SharedSessions) {
        let shared = SharedSessions::new(UpstreamPool::default());
        let sessions = HibernatingSessions::new(Some("srv".into()), shared.clone(), idle_timeout);
        (sessions, shared)
    }

    fn message(json: serde_json::Value) -> ClientJsonRpcMessage {
        serde_json::from_value(json).expect("a client message")
    }

    fn initialize(capabilities: serde_json::Value) -> ClientJsonRpcMessage {
        message(
            serde_json::json!({"jsonrpc": "2.0", "id": 0, "method": "initialize",
            "params": {"protocolVersion": "2025-11-25", "capabilities": capabilities,
                "clientInfo": {"name": "test", "version": "1"}}}),
        )
    }

    fn initialized() -> ClientJsonRpcMessage {
        message(serde_json::json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
    }

    /// Serves a session's worker as rmcp's service does: when the server ends, the session's
    /// id is closed. Resolves once it has.
    fn serve(
        sessions: &Arc<HibernatingSessions>,
        id: &SessionId,
        transport: WorkerTransport<LocalSessionWorker>,
    ) -> tokio::task::JoinHandle<()> {
        let (sessions, id) = (sessions.clone(), id.clone());
        tokio::spawn(async move {
            if let Ok(running) = rmcp::serve_server(Quiet, transport).await {
                let _ = running.waiting().await;
            }
            let _ = sessions.close_session(&id).await;
        })
    }

    /// Opens a session as rmcp does for a client with `capabilities`: created, initialized,
    /// its parameters stored, and told the client is initialized.
    async fn open(
        sessions: &Arc<HibernatingSessions>,
        capabilities: serde_json::Value,
    ) -> (SessionId, tokio::task::JoinHandle<()>) {
        let (id, transport) = sessions.create_session().await.expect("created");
        let worker = serve(sessions, &id, transport);
        let init = initialize(capabilities);
        let params = match &init {
            ClientJsonRpcMessage::Request(request) => match &request.request {
                ClientRequest::InitializeRequest(init) => init.params.clone(),
                _ => unreachable!("an initialize request"),
            },
            _ => unreachable!("a request"),
        };
        sessions
            .initialize_session(&id, init)
            .await
            .expect("initialized");
        SessionStore::store(&**sessions, &id, &SessionState::new(params))
            .await
            .expect("stored");
        sessions
            .accept_message(&id, initialized())
            .await
            .expect("accepted");
        (id, worker)
    }

    /// A `ping` on session `id`, answered by rmcp's service over `sessions`, in process: a
    /// hibernated session is woken by rmcp's own restore.
    async fn ping(sessions: &Arc<HibernatingSessions>, id: &SessionId) -> axum::http::StatusCode {
        let config = crate::mcp::config(
            &["127.0.0.1".to_string()],
            &CancellationToken::new(),
            Some(sessions),
        );
        let service =
            rmcp::transport::StreamableHttpService::new(|| Ok(Quiet), sessions.clone(), config);
        let request = axum::http::Request::post("/mcp")
            .header("host", "127.0.0.1")
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2025-11-25")
            .header("mcp-session-id", id.as_ref())
            .body(Body::from(r#"{"jsonrpc":"2.0","id":7,"method":"ping"}"#))
            .expect("a request");
        service.handle(request).await.status()
    }

    fn state(sessions: &HibernatingSessions, id: &SessionId) -> Option<State> {
        sessions.records().get(id).map(|record| record.state)
    }

    /// Ends `visit` and waits until the session has changed state (it hibernates).
    async fn leave_and_await_change(sessions: &HibernatingSessions, visit: Visit) {
        let changed = sessions.changed.notified();
        drop(visit);
        changed.await;
    }

    #[tokio::test]
    async fn an_unused_session_hibernates_and_the_first_request_wakes_it() {
        let (sessions, shared) = endpoint(Duration::from_secs(600));
        let (id, first_worker) = open(&sessions, serde_json::json!({})).await;
        // Initialized, it is registered with the raw path, and awake.
        assert_eq!(state(&sessions, &id), Some(State::Awake));
        assert!(shared.get(&id, Some("srv")).is_some());
        assert!(sessions.has_session(&id).await.expect("asks"));

        // Awake → Hibernating → Hibernated once rmcp serves nothing for it.
        let visit = sessions.visit(&id).expect("a known session");
        leave_and_await_change(&sessions, visit).await;
        assert_eq!(state(&sessions, &id), Some(State::Hibernated));
        assert_eq!(sessions.hibernated(), 1);
        assert!(!sessions.inner.sessions.read().await.contains_key(&id));
        // Its worker's end is expected, and does not end the session.
        first_worker.await.expect("the old worker ended");
        assert_eq!(sessions.count(), 1);
        // Asleep, it stays registered with the raw path, and its GET stream can stay open.
        assert!(shared.get(&id, Some("srv")).is_some());
        let ended = sessions.sleeper(&id).expect("a sleeper");
        assert!(!ended.is_cancelled());

        // Hibernated → Waking → Awake: rmcp's restore replays the handshake into a new worker
        // for the first request; one that comes meanwhile waits, and both are answered.
        let (first, second) = tokio::join!(ping(&sessions, &id), ping(&sessions, &id));
        let ok = axum::http::StatusCode::OK;
        assert_eq!((first, second), (ok, ok));
        assert_eq!(state(&sessions, &id), Some(State::Awake));
        assert_eq!(sessions.hibernated(), 0);
        assert!(sessions.inner.sessions.read().await.contains_key(&id));
        assert!(shared.get(&id, Some("srv")).is_some());
    }

    #[tokio::test]
    async fn a_request_finds_a_hibernated_session_waking_and_waits_for_it() {
        let (sessions, _shared) = endpoint(Duration::from_secs(600));
        let (id, _worker) = open(&sessions, serde_json::json!({})).await;
        leave_and_await_change(&sessions, sessions.visit(&id).expect("known")).await;
        // Hibernated → Waking for the first request to ask; the next waits until it is awake.
        assert!(!sessions.has_session(&id).await.expect("asks"));
        assert_eq!(state(&sessions, &id), Some(State::Waking));
        let waiting = {
            let (sessions, id) = (sessions.clone(), id.clone());
            tokio::spawn(async move { sessions.has_session(&id).await })
        };
        // On the test's one thread, the spawned request runs until it waits.
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished(), "it waits while the session wakes");
        let changed = sessions.changed.notified();
        sessions.records().get_mut(&id).expect("known").state = State::Awake;
        sessions.changed.notify_waiters();
        changed.await;
        assert!(waiting.await.expect("joins").expect("asks"));
    }

    #[tokio::test]
    async fn a_session_stays_awake_while_rmcp_serves_it() {
        let (sessions, _shared) = endpoint(Duration::from_secs(600));
        let (id, _worker) = open(&sessions, serde_json::json!({})).await;
        let request = sessions.visit(&id).expect("a known session");
        let stream = sessions.visit(&id).expect("a known session");
        drop(request);
        // One visit is still open: nothing is started, and it stays awake.
        sessions.hibernate(&id).await;
        assert_eq!(state(&sessions, &id), Some(State::Awake));
        leave_and_await_change(&sessions, stream).await;
        assert_eq!(state(&sessions, &id), Some(State::Hibernated));
    }

    #[tokio::test]
    async fn a_client_that_answers_requests_never_hibernates() {
        let (sessions, shared) = endpoint(Duration::from_secs(600));
        let (id, _worker) = open(&sessions, serde_json::json!({"sampling": {}})).await;
        assert!(shared.get(&id, Some("srv")).is_none());
        assert!(sessions.sleeper(&id).is_none());
        drop(sessions.visit(&id).expect("a known session"));
        sessions.hibernate(&id).await;
        assert_eq!(state(&sessions, &id), Some(State::Awake));
        assert!(sessions.inner.sessions.read().await.contains_key(&id));
    }

    #[tokio::test]
    async fn a_failed_wake_leaves_it_asleep_for_the_next_request() {
        let (sessions, _shared) = endpoint(Duration::from_secs(600));
        let (id, _worker) = open(&sessions, serde_json::json!({})).await;
        leave_and_await_change(&sessions, sessions.visit(&id).expect("known")).await;
        assert!(!sessions.has_session(&id).await.expect("asks"));
        assert_eq!(state(&sessions, &id), Some(State::Waking));
        // The replay fails: no worker was restored to take it.
        let replayed = sessions
            .initialize_session(&id, initialize(serde_json::json!({})))
            .await;
        assert!(replayed.is_err());
        assert_eq!(state(&sessions, &id), Some(State::Hibernated));
        // The next request tries to wake it again.
        assert!(!sessions.has_session(&id).await.expect("asks"));
        assert_eq!(state(&sessions, &id), Some(State::Waking));
    }

    #[tokio::test]
    async fn a_hibernated_session_ends_after_the_idle_timeout_or_when_deleted() {
        // Every hibernated session is past a zero idle timeout.
        let (sessions, shared) = endpoint(Duration::ZERO);
        let (asleep, _a) = open(&sessions, serde_json::json!({})).await;
        let (awake, _b) = open(&sessions, serde_json::json!({})).await;
        let (deleted, _c) = open(&sessions, serde_json::json!({})).await;
        let _kept_awake = sessions.visit(&awake).expect("known");
        leave_and_await_change(&sessions, sessions.visit(&asleep).expect("known")).await;
        let ended = sessions.sleeper(&asleep).expect("a sleeper");

        // An awake session is rmcp's to end; a hibernated one ends here.
        sessions.expire_idle();
        assert_eq!(state(&sessions, &asleep), None);
        assert_eq!(state(&sessions, &awake), Some(State::Awake));
        assert!(ended.is_cancelled(), "its GET stream ends with it");
        assert!(shared.get(&asleep, Some("srv")).is_none());

        // A client's DELETE ends a session whatever its state.
        let deleted_ended = sessions.sleeper(&deleted).expect("a sleeper");
        SessionStore::delete(&*sessions, &deleted)
            .await
            .expect("deletes");
        assert_eq!(state(&sessions, &deleted), None);
        assert!(deleted_ended.is_cancelled());
        assert!(!sessions.has_session(&deleted).await.expect("asks"));
    }
}
