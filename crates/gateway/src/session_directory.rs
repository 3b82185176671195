//! Which downstream sessions exist and who opened each: a session id is good only with the
//! credential of its owner, so that a leaked or guessed id does not hand one user's session (and,
//! for a client that answers sampling, that client) to another.
//!
//! Sessions are kept in the store, so that any replica serves any session: the replica that
//! opens one writes its endpoint, owner and the client's `initialize` parameters (all another
//! replica needs to take it over), and keeps it in memory; another replica reads it once, on
//! the first request that names it. A session ended by `DELETE` is marked in the store, and
//! every replica forgets it within a second (`spawn_watch`). One unused for the idle timeout is
//! refused by all: its last use is noted in the store every quarter of that timeout at most.
//! A session whose client answers server-to-client requests holds an upstream session of its
//! own and cannot move: it is `pinned`, and other replicas refuse it as unknown, which makes SDK
//! clients open a new one. Legacy SSE sessions are held by their stream, on one replica only.
//!
//! The policy compares owners with [`SessionDirectory::owner`], which reads memory only; the
//! edge first brings a session it does not know in from the store ([`SessionDirectory::find`]).

use std::{
    collections::HashMap,
    sync::{
        Arc, PoisonError, RwLock,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use switchboard_store::{SessionRow, Store};
use tokio::sync::broadcast;

/// The sessions this replica knows; cheap to clone.
#[derive(Debug, Clone)]
pub struct SessionDirectory {
    local: Arc<RwLock<HashMap<Arc<str>, Entry>>>,
    store: Store,
    /// How long an unused session lives, in milliseconds: set by the MCP endpoints.
    idle_ms: Arc<AtomicU64>,
    /// The ids of sessions ended anywhere, for the endpoints to close their own copies.
    ended: broadcast::Sender<Arc<str>>,
    /// Counts the store reads of sessions not known here (the metric `session_reads`).
    reads: prometheus_client::metrics::counter::Counter,
}

#[derive(Debug)]
struct Entry {
    /// `Caller::owner` of the credential that opened the session.
    owner: Arc<str>,
    /// Whether only its end forgets it (a legacy SSE session, held by its stream).
    held: bool,
    /// When (milliseconds on this process's clock) the session was last used here.
    last_seen: AtomicU64,
    /// When its use was last noted in the store (this process's clock).
    noted: AtomicU64,
    /// The stored session, when another replica opened it: what takes it over here.
    stored: Option<Arc<SessionRow>>,
}

/// Milliseconds since the first call, on a monotonic clock.
fn mono_ms() -> u64 {
    static EPOCH: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    u64::try_from(EPOCH.get_or_init(Instant::now).elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// The default idle timeout, until the endpoints set theirs.
const DEFAULT_IDLE: Duration = Duration::from_secs(30 * 60);

impl SessionDirectory {
    /// Over `store`, counting its reads of sessions not known here in `reads`.
    pub fn new(store: Store, reads: prometheus_client::metrics::counter::Counter) -> Self {
        Self {
            local: Arc::default(),
            store,
            idle_ms: Arc::new(AtomicU64::new(DEFAULT_IDLE.as_millis() as u64)),
            ended: broadcast::channel(1024).0,
            reads,
        }
    }

    /// Sets how long an unused session lives.
    pub fn set_idle_timeout(&self, idle: Duration) {
        self.idle_ms.store(
            u64::try_from(idle.as_millis()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }

    fn idle(&self) -> u64 {
        self.idle_ms.load(Ordering::Relaxed)
    }

    fn insert(&self, session: &str, owner: &str, held: bool, stored: Option<Arc<SessionRow>>) {
        let now = mono_ms();
        let entry = Entry {
            owner: owner.into(),
            held,
            last_seen: AtomicU64::new(now),
            noted: AtomicU64::new(now),
            stored,
        };
        self.local
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(session.into(), entry);
    }

    /// Keeps a session just opened here, before its client hears of it: its endpoint, the
    /// client's `initialize` parameters (JSON) and whether it is pinned to this replica.
    pub async fn save(&self, session: &str, endpoint: &str, params: String, pinned: bool) {
        let now = crate::now_ms();
        let row = SessionRow {
            id: session.to_string(),
            endpoint: endpoint.to_string(),
            owner: String::new(),
            params,
            pinned,
            created_at: now,
            touched_at: now,
            ended_at: None,
        };
        if let Err(error) = self.store.insert_session(&row).await {
            // The session still works here; other replicas will not know it.
            tracing::error!(%error, "a session could not be kept in the store");
        }
    }

    /// Notes that `owner` opened `session`, here and in the store: whether the session is
    /// pinned to this replica (also when the store could not keep it).
    pub async fn opened(&self, session: &str, owner: &str) -> bool {
        self.insert(session, owner, false, None);
        match self.store.set_session_owner(session, owner).await {
            Ok(Some(pinned)) => pinned,
            Ok(None) => true,
            Err(error) => {
                tracing::error!(%error, "a session's owner could not be kept in the store");
                true
            }
        }
    }

    /// Notes that `owner` opened `session`, which lasts on this replica until it is forgotten
    /// (a legacy SSE session, held by its stream however quiet).
    pub fn record_held(&self, session: &str, owner: &str) {
        self.insert(session, owner, true, None);
    }

    /// The owner of `session`, noting that it is in use; `None` when this replica does not know
    /// it (see [`Self::find`]), or has not seen it used for the idle timeout: it may have ended
    /// by expiry, or lived on elsewhere, which only the store can tell.
    pub fn owner(&self, session: &str) -> Option<Arc<str>> {
        let local = self.local.read().unwrap_or_else(PoisonError::into_inner);
        let entry = local.get(session)?;
        let now = mono_ms();
        if !entry.held && now.saturating_sub(entry.last_seen.load(Ordering::Relaxed)) > self.idle()
        {
            return None;
        }
        entry.last_seen.store(now, Ordering::Relaxed);
        let noted = entry.noted.load(Ordering::Relaxed);
        if !entry.held
            && now.saturating_sub(noted) >= self.idle() / 4
            && entry
                .noted
                .compare_exchange(noted, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            let store = self.store.clone();
            let session = session.to_string();
            tokio::spawn(async move {
                if let Err(error) = store.touch_session(&session, crate::now_ms()).await {
                    tracing::warn!(%error, "a session's use could not be noted in the store");
                }
            });
        }
        Some(Arc::clone(&entry.owner))
    }

    /// Brings `session` in from the store when this replica does not know it: opened by
    /// another replica, not ended, used within the idle timeout, and free to move. Whether it is
    /// known now.
    pub async fn find(&self, session: &str) -> bool {
        if self.owner(session).is_some() {
            return true;
        }
        self.reads.inc();
        let row = match self.store.session(session).await {
            Ok(Some(row)) => row,
            Ok(None) => return false,
            Err(error) => {
                tracing::error!(%error, "a session could not be read from the store");
                return false;
            }
        };
        let idle = i64::try_from(self.idle()).unwrap_or(i64::MAX);
        let usable = row.ended_at.is_none()
            && !row.owner.is_empty()
            && !row.pinned
            && row.touched_at.saturating_add(idle) > crate::now_ms();
        if usable {
            let owner = row.owner.clone();
            self.insert(session, &owner, false, Some(Arc::new(row)));
        } else {
            // Known here once, but ended or expired since.
            self.forget(session);
        }
        usable
    }

    /// What another replica kept of `session`, when this one took it over: its endpoint and
    /// the client's `initialize` parameters.
    pub fn taken_over(&self, session: &str) -> Option<Arc<SessionRow>> {
        let local = self.local.read().unwrap_or_else(PoisonError::into_inner);
        local.get(session)?.stored.clone()
    }

    /// Ends `session` everywhere: forgotten here at once, on other replicas within a second.
    pub async fn end(&self, session: &str) {
        self.forget(session);
        if let Err(error) = self.store.end_session(session, crate::now_ms()).await {
            tracing::error!(%error, "a session's end could not be kept in the store");
        }
    }

    /// Forgets a session here (its stream ended, or it ended elsewhere).
    pub fn forget(&self, session: &str) {
        self.local
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(session);
    }

    /// The ids of sessions ended anywhere from now on.
    pub fn ended(&self) -> broadcast::Receiver<Arc<str>> {
        self.ended.subscribe()
    }

    /// Forgets the sessions unused here for longer than `idle`, but for held ones: by then their
    /// transports have ended them (give twice the session idle timeout). The store keeps them
    /// for other replicas, which judge them by their last use.
    pub fn prune(&self, idle: Duration) {
        let idle = u64::try_from(idle.as_millis()).unwrap_or(u64::MAX);
        let now = mono_ms();
        self.local
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|_, entry| {
                entry.held || now.saturating_sub(entry.last_seen.load(Ordering::Relaxed)) <= idle
            });
    }

    /// Deletes from the store the sessions ended or unused for a day, or twice the idle
    /// timeout if that is longer: nobody can use them any more.
    pub async fn prune_store(&self) {
        let keep = (self.idle() * 2).max(24 * 3_600_000);
        let before = crate::now_ms().saturating_sub(i64::try_from(keep).unwrap_or(i64::MAX));
        if let Err(error) = self.store.prune_sessions(before).await {
            tracing::error!(%error, "pruning the stored sessions failed");
        }
    }

    /// Looks for sessions ended anywhere every second, forgets them and tells the endpoints,
    /// until the store closes.
    pub fn spawn_watch(&self) {
        let directory = self.clone();
        tokio::spawn(async move {
            let mut since = crate::now_ms();
            let mut ticks = tokio::time::interval(Duration::from_secs(1));
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                if directory.store.is_closed() {
                    return;
                }
                // A second back: an end written by a replica whose clock is a little behind.
                let ended = match directory.store.sessions_ended_since(since - 1_000).await {
                    Ok(ended) => ended,
                    Err(error) => {
                        tracing::warn!(%error, "cannot read the sessions ended elsewhere");
                        continue;
                    }
                };
                since = ended.last().map_or(since, |(_, at)| (*at).max(since));
                for (session, _) in ended {
                    let known = directory
                        .local
                        .read()
                        .unwrap_or_else(PoisonError::into_inner)
                        .contains_key(session.as_str());
                    if known {
                        directory.forget(&session);
                        let _ = directory.ended.send(session.into());
                    }
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A directory on a store of its own (a file: each connection to `:memory:` is another
    /// database), and the folder to keep while it is used.
    async fn directory() -> (SessionDirectory, tempfile::TempDir) {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}", dir.path().join("db").display());
        let store = Store::open(&url).await.expect("store");
        (SessionDirectory::new(store, Default::default()), dir)
    }

    #[tokio::test]
    async fn a_session_opened_on_one_replica_is_found_by_another_until_it_ends() {
        let (here, _dir) = directory().await;
        let there = SessionDirectory::new(here.store.clone(), Default::default());
        here.save("s1", "ms1", "{}".into(), false).await;
        here.opened("s1", "user:ada").await;
        assert_eq!(here.owner("s1").as_deref(), Some("user:ada"));
        assert_eq!(there.owner("s1"), None, "not read yet");
        assert!(there.find("s1").await);
        assert_eq!(there.owner("s1").as_deref(), Some("user:ada"));
        assert_eq!(
            there.taken_over("s1").map(|row| row.endpoint.clone()),
            Some("ms1".into())
        );
        assert!(here.taken_over("s1").is_none(), "opened here");
        assert!(!there.find("s2").await);
        here.end("s1").await;
        assert_eq!(here.owner("s1"), None);
        let elsewhere = SessionDirectory::new(here.store.clone(), Default::default());
        assert!(!elsewhere.find("s1").await, "ended");
    }

    #[tokio::test]
    async fn pinned_ownerless_and_expired_sessions_do_not_move() {
        let (here, _dir) = directory().await;
        let there = SessionDirectory::new(here.store.clone(), Default::default());
        here.save("pinned", "ms1", "{}".into(), true).await;
        here.opened("pinned", "user:ada").await;
        here.save("ownerless", "ms1", "{}".into(), false).await;
        assert!(!there.find("pinned").await);
        assert!(!there.find("ownerless").await);
        here.save("old", "ms1", "{}".into(), false).await;
        here.opened("old", "user:ada").await;
        there.set_idle_timeout(Duration::from_millis(0));
        assert!(
            !there.find("old").await,
            "unused for longer than the idle timeout"
        );
    }

    #[tokio::test]
    async fn a_session_unused_here_for_the_idle_timeout_is_judged_by_the_store_again() {
        let (here, _dir) = directory().await;
        let there = SessionDirectory::new(here.store.clone(), Default::default());
        here.save("s1", "ms1", "{}".into(), false).await;
        here.opened("s1", "user:ada").await;
        assert!(there.find("s1").await);
        // Unused on `there` for longer than the timeout, while the store says it is old too.
        there.set_idle_timeout(Duration::from_millis(1));
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(there.owner("s1"), None, "not taken on trust");
        assert!(
            !there.find("s1").await,
            "expired: the store's last use is too old"
        );
        assert!(
            there.taken_over("s1").is_none(),
            "forgotten, not taken over again"
        );
        // Used elsewhere meanwhile: the store's last use is recent, and it is found again.
        there.set_idle_timeout(Duration::from_secs(60));
        assert!(there.find("s1").await);
    }

    #[test]
    fn a_session_has_its_owner_until_it_is_forgotten() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async {
            let (owners, _dir) = directory().await;
            owners.record_held("s1", "user:ada");
            assert_eq!(owners.owner("s1").as_deref(), Some("user:ada"));
            owners.prune(Duration::from_secs(0));
            assert!(owners.owner("s1").is_some(), "held");
            owners.forget("s1");
            assert_eq!(owners.owner("s1"), None);
        });
    }
}
