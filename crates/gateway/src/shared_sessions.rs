//! The downstream sessions on a server's shared upstream (those whose clients answer no
//! server-to-client requests), as the gateway keeps them apart from rmcp's session, so that they
//! outlive its hibernation: their raw-path registration and the raw calls in flight (for the
//! client's cancel), when the client was last active, and the resources it subscribed to.

use std::{
    collections::{BTreeSet, HashMap},
    sync::{
        Arc, Mutex, PoisonError, RwLock,
        atomic::{AtomicU64, Ordering},
    },
    time::Instant,
};

use tokio_util::sync::CancellationToken;

/// Downstream sessions whose calls may take the raw path, by session id.
#[derive(Debug, Clone, Default)]
pub struct SharedSessions {
    sessions: Arc<RwLock<HashMap<Arc<str>, Arc<SharedSession>>>>,
    /// Where a session that ends lets go of the resources it subscribed to.
    pool: crate::pool::UpstreamPool,
}

/// A downstream session that shares its server's upstream session.
#[derive(Debug)]
pub struct SharedSession {
    /// The endpoint it was opened on: a server id, or `None` for the aggregate. A session id is
    /// only good on its own endpoint.
    pub endpoint: Option<String>,
    /// The client's name, for the audit.
    pub client_name: String,
    /// Raw calls in flight, by the client's request id (its JSON text), so that the client's
    /// `notifications/cancelled` reaches them.
    in_flight: Mutex<HashMap<String, CancellationToken>>,
    /// The resources the client subscribed to, kept here rather than by the upstream (which
    /// every client shares, and which may speak the stateless era, where subscriptions are a
    /// listen filter): its GET stream relays their updates and no others.
    resources: Mutex<BTreeSet<String>>,
    /// When (milliseconds since the process's epoch) the client was last known active: rmcp's
    /// session is told of raw calls from it at most once per interval (they bypass it, and it
    /// would otherwise end the session as idle), and a hibernated session ends by this clock.
    last_touch: AtomicU64,
}

/// Milliseconds since the first call, on a monotonic clock.
fn now_ms() -> u64 {
    static EPOCH: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    u64::try_from(EPOCH.get_or_init(Instant::now).elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// How often a session's keep-alive is refreshed while raw calls use it: five times per idle
/// timeout, so that a late refresh still comes in time.
pub fn touch_interval(idle_timeout: std::time::Duration) -> std::time::Duration {
    idle_timeout / 5
}

impl SharedSession {
    /// A session's raw-path state; a stateless (2026-07-28) request gets one of its own.
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

    /// Lets go of every resource the session subscribed to: it ended.
    fn release(&self, pool: &crate::pool::UpstreamPool) {
        let uris = std::mem::take(&mut *self.resources());
        if let Some(server) = &self.endpoint {
            pool.unsubscribe_in_background(server, uris.into_iter().collect());
        }
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

    /// Cancels the raw call with this request id; false when there is none.
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

/// A raw call being tracked for cancellation.
#[derive(Debug)]
pub struct InFlightCall {
    session: Arc<SharedSession>,
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

impl SharedSessions {
    /// The sessions of a gateway whose upstreams are in `pool`.
    pub fn new(pool: crate::pool::UpstreamPool) -> Self {
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
        let session = SharedSession::new(endpoint, client_name);
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

    /// The session, if it may take the raw path on `endpoint`.
    pub fn get(&self, session_id: &str, endpoint: Option<&str>) -> Option<Arc<SharedSession>> {
        self.sessions
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(session_id)
            .filter(|session| session.endpoint.as_deref() == endpoint)
            .cloned()
    }
}

/// Removes a session from [`SharedSessions`] when dropped.
#[derive(Debug)]
pub struct SessionTicket {
    sessions: SharedSessions,
    id: Arc<str>,
    session: Arc<SharedSession>,
}

impl SessionTicket {
    /// The registered session.
    pub fn session(&self) -> &Arc<SharedSession> {
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
        self.session.release(&self.sessions.pool);
    }
}

/// The record of a session that has no raw-path registration (legacy SSE): held by its
/// handler, it lets go of what the session subscribed to when the handler goes.
#[derive(Debug)]
pub struct OwnRecord {
    session: Arc<SharedSession>,
    pool: crate::pool::UpstreamPool,
}

impl OwnRecord {
    pub(crate) fn new(gateway: &crate::Gateway, server: &str) -> Self {
        Self {
            session: SharedSession::new(Some(server.to_string()), String::new()),
            pool: gateway.pool().clone(),
        }
    }

    pub(crate) fn session(&self) -> Arc<SharedSession> {
        self.session.clone()
    }
}

impl Drop for OwnRecord {
    fn drop(&mut self) {
        self.session.release(&self.pool);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clients_cancel_reaches_its_tracked_call_only_while_it_runs() {
        let sessions = SharedSessions::default();
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
