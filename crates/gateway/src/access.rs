//! Who may use which server: the permissions, grants and group memberships, held in memory so
//! that the policy reads them with no query. A change made here is seen at once; every replica
//! compares the store's access version every second and reads everything again when it moved.
//! Expiry is judged at each request, against the time the policy is given.

use std::{
    collections::HashMap,
    sync::{Arc, RwLock},
    time::Duration,
};

use switchboard_store::{AccessRows, LiveKey, PermissionRow, Store, StoreError};

use crate::org_settings::{OrgSettings, SelfService};

/// How often the store's access version is compared.
pub const RELOAD_EVERY: Duration = Duration::from_secs(1);

/// A permission a user holds on a server, and until when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    pub permission: Arc<PermissionRow>,
    /// Unix milliseconds; `None`: until revoked.
    pub expires_at: Option<i64>,
}

/// The grants, by whom they are for.
#[derive(Debug, Default)]
struct Snapshot {
    permissions: HashMap<String, Arc<PermissionRow>>,
    /// User id → the permissions granted to the user directly.
    users: HashMap<String, Vec<(String, Option<i64>)>>,
    /// Group id → the permissions granted to the group.
    groups: HashMap<String, Vec<(String, Option<i64>)>>,
    /// User id → the groups they belong to.
    members: HashMap<String, Vec<String>>,
    /// The live API keys, by their hash.
    keys: HashMap<String, Arc<LiveKey>>,
    /// The organization's settings (self-service, for everyone and per group).
    settings: OrgSettings,
}

impl Snapshot {
    fn of(rows: AccessRows) -> Self {
        let mut snapshot = Snapshot::default();
        for permission in rows.permissions {
            snapshot
                .permissions
                .insert(permission.id.clone(), Arc::new(permission));
        }
        for grant in rows.grants {
            let by = match grant.subject_kind.as_str() {
                "user" => &mut snapshot.users,
                "group" => &mut snapshot.groups,
                _ => continue,
            };
            by.entry(grant.subject_id)
                .or_default()
                .push((grant.permission_id, grant.expires_at));
        }
        for (group, user) in rows.members {
            snapshot.members.entry(user).or_default().push(group);
        }
        for key in rows.keys {
            snapshot.keys.insert(key.key.hash.clone(), Arc::new(key));
        }
        snapshot.settings = OrgSettings::parse(rows.org_settings.as_deref());
        snapshot
    }
}

/// The access rules' data; cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Access {
    snapshot: Arc<RwLock<Arc<Snapshot>>>,
    /// The store's version the snapshot was read at.
    version: Arc<tokio::sync::Mutex<String>>,
    /// Counts the reloads that changed something, so that list-change listeners can tell.
    generation: Arc<std::sync::atomic::AtomicU64>,
}

impl Access {
    fn current(&self) -> Arc<Snapshot> {
        match self.snapshot.read() {
            Ok(snapshot) => Arc::clone(&snapshot),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// The live API key with this hash: not revoked, its owner not disabled (expiry is the
    /// policy's to judge).
    pub fn key(&self, hash: &str) -> Option<Arc<LiveKey>> {
        self.current().keys.get(hash).cloned()
    }

    /// The unexpired permissions `user_id` holds on `server_id`, directly or through a group.
    pub fn held(&self, user_id: &str, server_id: &str, now: i64) -> Vec<Held> {
        self.held_where(user_id, now, |permission| permission.server_id == server_id)
    }

    /// The unexpired permissions `user_id` holds on every server.
    pub fn held_anywhere(&self, user_id: &str, now: i64) -> Vec<Held> {
        self.held_where(user_id, now, |_| true)
    }

    fn held_where(
        &self,
        user_id: &str,
        now: i64,
        wanted: impl Fn(&PermissionRow) -> bool,
    ) -> Vec<Held> {
        let snapshot = self.current();
        let direct = snapshot.users.get(user_id).into_iter().flatten();
        let through_groups = snapshot
            .members
            .get(user_id)
            .into_iter()
            .flatten()
            .filter_map(|group| snapshot.groups.get(group))
            .flatten();
        let mut held: Vec<Held> = Vec::new();
        for (permission, expires_at) in direct.chain(through_groups) {
            if expires_at.is_some_and(|at| at <= now) {
                continue;
            }
            let Some(permission) = snapshot.permissions.get(permission) else {
                continue;
            };
            if !wanted(permission) {
                continue;
            }
            match held.iter_mut().find(|h| h.permission.id == permission.id) {
                // The longest of two grants of one permission.
                Some(existing) => {
                    existing.expires_at = match (existing.expires_at, *expires_at) {
                        (Some(a), Some(b)) => Some(a.max(b)),
                        _ => None,
                    }
                }
                None => held.push(Held {
                    permission: Arc::clone(permission),
                    expires_at: *expires_at,
                }),
            }
        }
        held
    }

    /// A permission by id.
    pub fn permission(&self, id: &str) -> Option<Arc<PermissionRow>> {
        self.current().permissions.get(id).cloned()
    }

    /// Every permission, by server and label.
    pub fn permissions(&self) -> Vec<Arc<PermissionRow>> {
        let mut all: Vec<_> = self.current().permissions.values().cloned().collect();
        all.sort_by(|a, b| {
            (&a.server_id, a.created_at, &a.label).cmp(&(&b.server_id, b.created_at, &b.label))
        });
        all
    }

    /// How far `user_id` may serve themselves: the organization's setting, or their groups'
    /// where one is more restrictive.
    pub fn self_service(&self, user_id: &str) -> SelfService {
        let snapshot = self.current();
        let groups = snapshot.members.get(user_id).into_iter().flatten();
        snapshot.settings.self_service_for(groups)
    }

    /// The permissions of a server, whoever holds them: to name the one that would allow a
    /// refused call.
    pub fn permissions_of(&self, server_id: &str) -> Vec<Arc<PermissionRow>> {
        let mut found: Vec<Arc<PermissionRow>> = self
            .current()
            .permissions
            .values()
            .filter(|permission| permission.server_id == server_id)
            .cloned()
            .collect();
        found.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.label.cmp(&b.label)));
        found
    }

    /// Reads everything again if the store's version moved (or `force`); true when it did.
    pub async fn reload(&self, store: &Store, force: bool) -> Result<bool, StoreError> {
        let mut seen = self.version.lock().await;
        let version = store.access_version().await?;
        if !force && *seen == version {
            return Ok(false);
        }
        let rows = store.access_rows().await?;
        let snapshot = Arc::new(Snapshot::of(rows));
        match self.snapshot.write() {
            Ok(mut current) => *current = snapshot,
            Err(poisoned) => *poisoned.into_inner() = snapshot,
        }
        *seen = version;
        Ok(true)
    }

    /// Tells list-change listeners (through [`Self::generation`]) that what callers may see
    /// changed; called once whatever else changed with the grants is current.
    pub fn mark_changed(&self) {
        self.generation
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }

    /// A number that changes with every reload that read something new.
    pub fn generation(&self) -> u64 {
        self.generation.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Compares the store's version every [`RELOAD_EVERY`], and calls `changed` after each
    /// reload that found a change, until the store is closed. `changed` marks the change.
    pub fn spawn_reloader(
        &self,
        store: Store,
        changed: impl Fn() + Send + 'static,
    ) -> tokio::task::JoinHandle<()> {
        let access = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(RELOAD_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                if store.is_closed() {
                    return;
                }
                match access.reload(&store, false).await {
                    Ok(true) => changed(),
                    Ok(false) => {}
                    Err(error) => tracing::warn!(%error, "cannot read the grants"),
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_store::GrantRow;

    fn permission(id: &str, server: &str) -> PermissionRow {
        PermissionRow {
            id: id.into(),
            server_id: server.into(),
            label: id.into(),
            description: String::new(),
            selector: "all".into(),
            tools: Vec::new(),
            requestable: true,
            max_duration_s: None,
            created_at: 0,
            updated_at: 0,
        }
    }

    fn grant(permission: &str, kind: &str, subject: &str, expires_at: Option<i64>) -> GrantRow {
        GrantRow {
            id: format!("{permission}-{subject}"),
            permission_id: permission.into(),
            subject_kind: kind.into(),
            subject_id: subject.into(),
            expires_at,
            created_at: 0,
            created_by: "admin".into(),
            request_id: None,
        }
    }

    /// A grant for one minute, with the clock driven: held until its last millisecond, and not
    /// after, directly or through a group; the longer of two grants of one permission counts.
    #[test]
    fn a_grant_holds_until_it_expires() {
        let start = 1_800_000_000_000;
        let minute = 60_000;
        let access = Access::default();
        let snapshot = Snapshot::of(AccessRows {
            permissions: vec![permission("full", "s1"), permission("other", "s2")],
            grants: vec![
                grant("full", "user", "ada", Some(start + minute)),
                grant("other", "group", "eng", Some(start + 2 * minute)),
                grant("other", "user", "ada", None),
            ],
            members: vec![("eng".into(), "bob".into())],
            keys: Vec::new(),
            org_settings: None,
        });
        *access.snapshot.write().expect("lock") = Arc::new(snapshot);
        let on = |user: &str, server: &str, now: i64| access.held(user, server, now).len();
        assert_eq!(on("ada", "s1", start), 1);
        assert_eq!(on("ada", "s1", start + minute - 1), 1);
        assert_eq!(on("ada", "s1", start + minute), 0, "expired");
        assert_eq!(on("bob", "s2", start + minute), 1, "through the group");
        assert_eq!(on("bob", "s2", start + 2 * minute), 0);
        assert_eq!(on("bob", "s1", start), 0);
        let held = access.held("ada", "s2", start + 10 * minute);
        assert_eq!(held.len(), 1);
        assert_eq!(held[0].expires_at, None, "the grant without end");
        assert_eq!(access.held_anywhere("ada", start).len(), 2);
        assert!(access.held_anywhere("ada", start + 10 * minute).len() == 1);
    }
}
