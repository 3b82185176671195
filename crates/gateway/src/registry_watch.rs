//! Registry changes as downstream clients hear them. A server added, removed, enabled, disabled
//! or re-governed changes what an endpoint serves without any upstream saying so; an open session
//! keeps going (its next request is served by the new definition) and hears the change as list
//! changes, so that its client lists again.

use std::time::Duration;

use rmcp::{Peer, RoleServer};
use tokio_util::sync::CancellationToken;

use crate::{
    Gateway, GatewayError, RegisteredServer,
    relay::{Relay, Relayed, list_changes},
};

/// How often the store is looked at for registry changes made by another replica sharing it;
/// changes made through this gateway reach listeners at once.
const REGISTRY_POLL: Duration = Duration::from_secs(2);

/// Which servers a listener follows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Scope {
    /// Every enabled server: `/mcp`.
    Enabled,
    /// One server, enabled or not: `/mcp/{server}`.
    Server(String),
}

/// Which servers an endpoint is made of, and when that changes.
pub(crate) struct RegistryWatch {
    pub(crate) gateway: Gateway,
    scope: Scope,
    /// The servers in scope with their definition versions, as last seen.
    pub(crate) servers: Vec<RegisteredServer>,
    /// Bumped by changes made through this gateway and by the store poll.
    changes: tokio::sync::watch::Receiver<u64>,
    /// A change was signalled but not yet compared: `changed` may be dropped mid-way by a
    /// `select!`, and must not lose it.
    unchecked: bool,
    /// The grants' generation as last seen.
    access_generation: u64,
}

impl Drop for RegistryWatch {
    fn drop(&mut self) {
        self.gateway.metrics().registry_listeners.dec();
    }
}

impl RegistryWatch {
    pub(crate) async fn new(gateway: Gateway, scope: Scope) -> Result<Self, GatewayError> {
        let changes = gateway.registry_changes.subscribe();
        poll_store(&gateway);
        let servers = look(&gateway, &scope).await?;
        // Counted once the baseline is read: a change after this reaches the listener.
        gateway.metrics().registry_listeners.inc();
        Ok(Self {
            access_generation: gateway.access().generation(),
            gateway,
            scope,
            servers,
            changes,
            unchecked: false,
        })
    }

    /// Returns once the servers in scope or one of their definitions differ from `servers`,
    /// which then holds the new ones.
    pub(crate) async fn changed(&mut self) {
        loop {
            if !self.unchecked {
                // The gateway holds the sender for as long as this holds the gateway.
                let _ = self.changes.changed().await;
                self.unchecked = true;
            }
            let changed = self.changed_now().await;
            self.unchecked = false;
            if changed {
                return;
            }
        }
    }

    /// Whether the servers in scope or one of their definitions differ from `servers` now, which
    /// then holds the new ones.
    pub(crate) async fn changed_now(&mut self) -> bool {
        // A change of grants may change what the client sees, whatever the registry did.
        let access = self.gateway.access().generation();
        let access_changed = access != self.access_generation;
        self.access_generation = access;
        match look(&self.gateway, &self.scope).await {
            Ok(servers) if servers != self.servers => {
                self.servers = servers;
                true
            }
            Ok(_) => access_changed,
            Err(error) => {
                tracing::warn!(%error, "a list-change listener cannot read the registry");
                access_changed
            }
        }
    }
}

/// Starts the store poll unless it runs: while anyone listens, it looks at the store every
/// [`REGISTRY_POLL`] and bumps the gateway's watch channel when another replica changed the
/// registry. One look serves every listener; the poll stops when the last one is gone.
fn poll_store(gateway: &Gateway) {
    use std::sync::atomic::Ordering::SeqCst;
    if gateway.registry_poll.swap(true, SeqCst) {
        return;
    }
    let gateway = gateway.clone();
    tokio::spawn(async move {
        // Nothing seen yet: the first look tells every listener to compare, so that a change
        // between a listener's baseline and this poll's start is not missed.
        let mut seen = None;
        let mut tick =
            tokio::time::interval_at(tokio::time::Instant::now() + REGISTRY_POLL, REGISTRY_POLL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if gateway.registry_changes.receiver_count() == 0 {
                gateway.registry_poll.store(false, SeqCst);
                // A listener that came meanwhile either started a poll of its own or, if it
                // found this one still running, is served by this one going on.
                if gateway.registry_changes.receiver_count() == 0
                    || gateway.registry_poll.swap(true, SeqCst)
                {
                    return;
                }
            }
            // Reads the store once the definitions' TTL has passed.
            match gateway.registered_servers().await {
                Ok(servers) if seen.as_ref() != Some(&servers) => {
                    seen = Some(servers);
                    gateway
                        .registry_changes
                        .send_modify(|changes| *changes = changes.wrapping_add(1));
                }
                Ok(_) => {}
                Err(error) => tracing::warn!(%error, "the registry poll cannot read the store"),
            }
        }
    });
}

/// The servers in `scope` now, without reading the store within the definitions' TTL.
async fn look(gateway: &Gateway, scope: &Scope) -> Result<Vec<RegisteredServer>, GatewayError> {
    let mut servers = gateway.registered_servers().await?;
    servers.retain(|server| match scope {
        Scope::Enabled => server.enabled,
        Scope::Server(id) => server.id == *id,
    });
    Ok(servers)
}

/// Tells the client of an awake session (`peer`) of every change to the servers in `scope`, as
/// changes of all three lists, until the session ends (`ended`).
pub(crate) async fn announce_changes(
    gateway: &Gateway,
    scope: Scope,
    peer: Peer<RoleServer>,
    ended: CancellationToken,
) {
    use futures::StreamExt as _;
    let watch = match RegistryWatch::new(gateway.clone(), scope).await {
        Ok(watch) => watch,
        Err(error) => {
            tracing::warn!(%error, "a session will not hear of registry changes");
            return;
        }
    };
    let changes = futures::stream::unfold(watch, |mut watch| async move {
        watch.changed().await;
        Some((futures::stream::iter(crate::relay::list_changes()), watch))
    })
    .flatten();
    crate::relay::relay_to_peer(changes, peer, ended);
}

/// What a client of one server's endpoint should hear unasked: its upstreams' notifications (see
/// [`notifications`]), and on every change to its definition (re-governed, reconfigured,
/// disabled or enabled again) all three lists changed. It ends when the server is removed.
pub async fn followed_notifications(
    gateway: &Gateway,
    server: &str,
    relayed: Relayed,
) -> Result<impl futures::Stream<Item = String> + Send + 'static, GatewayError> {
    let (id, _) = gateway.locate(server).await?;
    let watch = RegistryWatch::new(gateway.clone(), Scope::Server(id.clone())).await?;
    let relay = Relay::of_server(gateway, &id, relayed);
    let batches = futures::stream::unfold((watch, relay), |(mut watch, mut relay)| async move {
        let batch: Vec<String> = tokio::select! {
            // `None`: deleted.
            message = relay.next() => vec![message?],
            () = watch.changed() => {
                if watch.servers.is_empty() {
                    // Removed (by another replica: this one's channel stays).
                    return None;
                }
                list_changes().collect()
            }
        };
        Some((batch, (watch, relay)))
    });
    Ok(futures::StreamExt::flat_map(batches, futures::stream::iter))
}
