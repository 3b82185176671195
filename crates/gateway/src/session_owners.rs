//! Who opened each downstream session: a session id is good only with the credential's owner
//! that opened it, so that a leaked or guessed id does not hand one user's session (and, for a
//! client that answers sampling, that client) to another. The edge records the owner when a
//! session opens and forgets it when the session ends; the policy compares it on every request.
//! An id this replica holds no owner for is refused as an unknown session, which makes SDK
//! clients open a new one.

use std::{
    collections::HashMap,
    sync::{
        Arc, PoisonError, RwLock,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

/// The session owners of this replica; cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct SessionOwners {
    sessions: Arc<RwLock<HashMap<Arc<str>, Entry>>>,
}

#[derive(Debug)]
struct Entry {
    /// `Caller::owner` of the credential that opened the session.
    owner: Arc<str>,
    /// Whether only its end forgets it.
    held: bool,
    /// When (milliseconds since the process's epoch) the session was last used: an entry whose
    /// session ended unseen (expired, or its replica's worker gone) is pruned by this clock.
    last_seen: AtomicU64,
}

/// Milliseconds since the first call, on a monotonic clock.
fn now_ms() -> u64 {
    static EPOCH: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    u64::try_from(EPOCH.get_or_init(Instant::now).elapsed().as_millis()).unwrap_or(u64::MAX)
}

impl SessionOwners {
    /// Notes that `owner` opened `session`, which ends when unused for long (see
    /// [`Self::prune`]) if no one ends it first.
    pub fn record(&self, session: &str, owner: &str) {
        self.insert(session, owner, false);
    }

    /// Notes that `owner` opened `session`, which lasts until it is forgotten (a legacy SSE
    /// session, held by its stream however quiet).
    pub fn record_held(&self, session: &str, owner: &str) {
        self.insert(session, owner, true);
    }

    fn insert(&self, session: &str, owner: &str, held: bool) {
        let entry = Entry {
            owner: owner.into(),
            held,
            last_seen: AtomicU64::new(now_ms()),
        };
        self.sessions
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(session.into(), entry);
    }

    /// The owner of `session`, noting that it is in use; `None` when this replica knows no such
    /// session.
    pub fn owner(&self, session: &str) -> Option<Arc<str>> {
        let sessions = self.sessions.read().unwrap_or_else(PoisonError::into_inner);
        let entry = sessions.get(session)?;
        entry.last_seen.store(now_ms(), Ordering::Relaxed);
        Some(Arc::clone(&entry.owner))
    }

    /// Forgets an ended session.
    pub fn forget(&self, session: &str) {
        self.sessions
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(session);
    }

    /// Forgets the sessions unused for longer than `idle`, but for held ones: by then their
    /// transports have ended them (give twice the session idle timeout).
    pub fn prune(&self, idle: Duration) {
        let idle = u64::try_from(idle.as_millis()).unwrap_or(u64::MAX);
        let now = now_ms();
        self.sessions
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|_, entry| {
                entry.held || now.saturating_sub(entry.last_seen.load(Ordering::Relaxed)) <= idle
            });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_has_its_owner_until_it_ends() {
        let owners = SessionOwners::default();
        owners.record("s1", "user:ada");
        assert_eq!(owners.owner("s1").as_deref(), Some("user:ada"));
        assert_eq!(owners.owner("s2"), None);
        owners.prune(Duration::from_secs(60));
        assert!(owners.owner("s1").is_some(), "still in use");
        owners.forget("s1");
        assert_eq!(owners.owner("s1"), None);
    }
}
