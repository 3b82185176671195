//! One upstream session per registered server, shared by every caller: opened on first use,
//! reopened with backoff after a crash (by `Upstream` itself), stopped after an idle timeout, and
//! rebuilt when the server's definition changes.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, Instant},
};

use serde::Serialize;
use switchboard_mcp::{ResourceSubscriptions, Upstream, UpstreamEvent};
use tokio::sync::broadcast;

/// A server's live state, as `status` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    /// `connected`, `error` or `idle`.
    pub state: &'static str,
    /// The last error, when `state` is `error`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The circuit breaker: `closed`, `open` (calls fail fast) or `half_open` (a probe may run).
    pub breaker: &'static str,
}

impl Status {
    pub fn idle() -> Self {
        Self {
            state: "idle",
            message: None,
            breaker: "closed",
        }
    }
}

struct Entry {
    upstream: Upstream,
    /// The definition's `updated_at` when the upstream was built: a newer one rebuilds it.
    version: i64,
    last_used: Instant,
    /// The last failure, cleared by the next success.
    last_error: Option<String>,
}

#[derive(Default)]
struct Entries {
    /// The running upstream of each server.
    upstreams: HashMap<String, Entry>,
    /// Each server's event channel, which every upstream built for it sends to and its
    /// listeners subscribe to. It outlives the upstreams (stopped while idle, replaced for a new
    /// definition), so that listeners never need to find the current one; it is dropped only
    /// when the server is deleted, which ends them.
    events: HashMap<String, broadcast::Sender<UpstreamEvent>>,
    /// Each server's resource subscriptions, which outlive its upstreams for the same reason:
    /// every upstream built for the server asks for them.
    resources: HashMap<String, ResourceSubscriptions>,
}

impl Entries {
    fn events(&mut self, id: &str) -> &broadcast::Sender<UpstreamEvent> {
        self.events
            .entry(id.to_string())
            .or_insert_with(Upstream::event_channel)
    }

    fn resources(&mut self, id: &str) -> &ResourceSubscriptions {
        self.resources.entry(id.to_string()).or_default()
    }
}

/// Resources of one server subscribed to for as long as this lives: dropped, however its owner
/// ends, it lets go of them.
pub(crate) struct HeldSubscriptions {
    pub(crate) pool: UpstreamPool,
    pub(crate) server: String,
    pub(crate) uris: Vec<String>,
}

impl Drop for HeldSubscriptions {
    fn drop(&mut self) {
        self.pool
            .unsubscribe_in_background(&self.server, std::mem::take(&mut self.uris));
    }
}

/// The pool; cheap to clone.
#[derive(Clone, Default)]
pub struct UpstreamPool {
    entries: Arc<Mutex<Entries>>,
}

impl std::fmt::Debug for UpstreamPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamPool")
            .field("servers", &self.lock().upstreams.len())
            .finish()
    }
}

impl UpstreamPool {
    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The server's upstream, built by `build` when there is none or its definition changed;
    /// `build` gets the server's event channel and resource subscriptions.
    pub fn get_or_build(
        &self,
        id: &str,
        version: i64,
        build: impl FnOnce(broadcast::Sender<UpstreamEvent>, ResourceSubscriptions) -> Upstream,
    ) -> Upstream {
        let mut entries = self.lock();
        if let Some(entry) = entries.upstreams.get_mut(id)
            && entry.version == version
        {
            entry.last_used = Instant::now();
            return entry.upstream.clone();
        }
        let events = entries.events(id).clone();
        let upstream = build(events, entries.resources(id).clone());
        if let Some(old) = entries.upstreams.insert(
            id.to_string(),
            Entry {
                upstream: upstream.clone(),
                version,
                last_used: Instant::now(),
                last_error: None,
            },
        ) {
            close_in_background(old.upstream);
        }
        upstream
    }

    /// The server's upstream, if one is running; never builds one.
    pub fn running(&self, id: &str) -> Option<Upstream> {
        self.lock()
            .upstreams
            .get(id)
            .map(|entry| entry.upstream.clone())
    }

    /// What the server's upstreams say unasked, whichever upstream serves it, until the server
    /// is deleted (see [`UpstreamPool::deleted`]).
    pub fn events(&self, id: &str) -> broadcast::Receiver<UpstreamEvent> {
        self.lock().events(id).subscribe()
    }

    /// Notes how a use of the server went, for `status`.
    pub fn record(&self, id: &str, outcome: Result<(), String>) {
        if let Some(entry) = self.lock().upstreams.get_mut(id) {
            entry.last_used = Instant::now();
            entry.last_error = outcome.err();
        }
    }

    pub fn status(&self, id: &str) -> Status {
        let entries = self.lock();
        let Some(entry) = entries.upstreams.get(id) else {
            return Status::idle();
        };
        let breaker = entry.upstream.breaker_state().as_str();
        match (&entry.last_error, entry.upstream.transport()) {
            (Some(message), _) => Status {
                state: "error",
                message: Some(message.clone()),
                breaker,
            },
            (None, Some(_)) => Status {
                state: "connected",
                message: None,
                breaker,
            },
            (None, None) => Status {
                breaker,
                ..Status::idle()
            },
        }
    }

    /// Stops a server's upstream (deleted, disabled or changed).
    pub async fn remove(&self, id: &str) {
        let entry = self.lock().upstreams.remove(id);
        if let Some(entry) = entry {
            entry.upstream.close().await;
        }
    }

    /// Forgets a deleted server's event channel, which ends its listeners.
    pub fn deleted(&self, id: &str) {
        let mut entries = self.lock();
        entries.events.remove(id);
        entries.resources.remove(id);
    }

    /// One client of server `id` fewer wants the updates of `uri`: the running upstream tells
    /// the server when nobody does; with none running, only the count goes down.
    pub async fn unsubscribe_resource(&self, id: &str, uri: &str) {
        let running = {
            let mut entries = self.lock();
            match entries.upstreams.get(id) {
                Some(entry) => Some(entry.upstream.clone()),
                None => {
                    entries.resources(id).remove(uri);
                    None
                }
            }
        };
        if let Some(upstream) = running
            && let Err(error) = upstream.unsubscribe_resource(uri).await
        {
            tracing::debug!(server = %id, %uri, %error, "the upstream was not told of an unsubscription");
        }
    }

    /// [`UpstreamPool::unsubscribe_resource`] for each of `uris`, in the background: for a
    /// subscriber that ends where nothing can wait (a drop).
    pub(crate) fn unsubscribe_in_background(&self, id: &str, uris: Vec<String>) {
        if uris.is_empty() {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let (pool, id) = (self.clone(), id.to_string());
        runtime.spawn(async move {
            for uri in uris {
                pool.unsubscribe_resource(&id, &uri).await;
            }
        });
    }

    /// Stops every upstream idle for longer than `idle`, but those whose resources a client
    /// subscribed to (it would hear no updates until the next call); returns how many.
    pub async fn stop_idle(&self, idle: Duration) -> usize {
        let stale: Vec<Upstream> = {
            let entries = &mut *self.lock();
            let now = Instant::now();
            let ids: Vec<String> = entries
                .upstreams
                .iter()
                .filter(|(id, e)| {
                    now.duration_since(e.last_used) >= idle
                        && entries
                            .resources
                            .get(*id)
                            .is_none_or(ResourceSubscriptions::is_empty)
                })
                .map(|(id, _)| id.clone())
                .collect();
            ids.iter()
                .filter_map(|id| entries.upstreams.remove(id))
                .map(|e| e.upstream)
                .collect()
        };
        for upstream in &stale {
            tracing::info!(server = %upstream.name(), "stopping an idle upstream");
            upstream.close().await;
        }
        stale.len()
    }

    /// Stops everything (shutdown).
    pub async fn close_all(&self) {
        let all: Vec<Upstream> = {
            let mut entries = self.lock();
            entries.events.clear();
            entries.upstreams.drain().map(|(_, e)| e.upstream).collect()
        };
        for upstream in all {
            upstream.close().await;
        }
    }
}

fn close_in_background(upstream: Upstream) {
    tokio::spawn(async move { upstream.close().await });
}
