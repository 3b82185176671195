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
use switchboard_gateway::{
    session_directory::SessionDirectory,
    shared_sessions::{SessionTicket, SharedSessions},
};
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
    /// Where sessions are kept for every replica: those opened here go in, and those opened
    /// elsewhere are taken over from it (see [`Self::adopt`]).
    directory: SessionDirectory,
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
        directory: SessionDirectory,
        idle_timeout: Duration,
    ) -> Arc<Self> {
        let mut inner = LocalSessionManager::default();
        inner.session_config.keep_alive = Some(idle_timeout);
        Arc::new(Self {
            inner,
            endpoint,
            shared,
            directory,
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

    /// Takes over a session another replica opened on this endpoint, which the edge found in
    /// the store: it is kept here as hibernated, registered with the raw path, and the next
    /// request rmcp serves wakes it from its `initialize` parameters. Nothing for a session this
    /// replica holds already.
    pub fn adopt(&self, session_id: &str) {
        if self.records().contains_key(session_id) {
            return;
        }
        let endpoint = self.endpoint.as_deref().unwrap_or_default();
        let Some(params) = taken_over(&self.directory, session_id, endpoint) else {
            return;
        };
        let id: SessionId = Arc::from(session_id);
        {
            let mut records = self.records();
            if records.contains_key(session_id) {
                return;
            }
            records.insert(
                id.clone(),
                Record {
                    params: Some(params),
                    open: 0,
                    state: State::Hibernated,
                    stale_exits: 0,
                    ticket: None,
                    ended: CancellationToken::new(),
                },
            );
        }
        self.register_raw(&id);
        tracing::debug!("a session opened by another replica is taken over");
    }

    /// Ends one session here, asleep or awake: it ended on another replica.
    pub async fn end_one(&self, session_id: &str) {
        if self.records().remove(session_id).is_none() {
            return;
        }
        self.changed.notify_waiters();
        let id: SessionId = Arc::from(session_id);
        let _ = self.inner.close_session(&id).await;
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

    /// Keeps a new session's parameters here, and in the store for other replicas (before its
    /// client hears of it).
    async fn store(&self, session_id: &str, state: &SessionState) -> Result<(), SessionStoreError> {
        if let Some(record) = self.records().get_mut(session_id) {
            record.params = Some(state.initialize_params.clone());
        }
        let params = serde_json::to_string(&state.initialize_params)
            .map_err(|error| -> SessionStoreError { Box::new(error) })?;
        let pinned =
            switchboard_gateway::proxy::answers_requests(&state.initialize_params.capabilities);
        self.directory
            .save(
                session_id,
                self.endpoint.as_deref().unwrap_or_default(),
                params,
                pinned,
            )
            .await;
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

mod directory;
#[cfg(test)]
mod tests;

pub use directory::DirectorySessions;
use directory::taken_over;
