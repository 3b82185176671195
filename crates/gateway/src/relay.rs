//! What upstreams say unasked (list changes, log messages, resource updates), as the
//! notifications downstream clients hear: the one mapping from upstream events to JSON-RPC texts, and the one loop that
//! sends them into an rmcp session.

use rmcp::{RoleServer, service::Peer};
use serde_json::{Value, json};
use switchboard_mcp::{Upstream, UpstreamEvent};
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;

use std::sync::Arc;

use crate::{Gateway, shared_sessions::SharedSession};

/// Relays what an upstream says unasked to one downstream session: list changes (after dropping
/// the cached tools, so that the client's re-list sees the new ones) and log messages. Ends with
/// the session (`ended`) or the upstream.
pub(crate) fn relay_events(
    gateway: Gateway,
    id: String,
    upstream: &Upstream,
    peer: Peer<RoleServer>,
    ended: CancellationToken,
) {
    let relay = Relay::new(gateway, id, upstream.events(), Relayed::Everything);
    relay_to_peer(relay.into_messages(), peer, ended);
}

/// Sends `notifications` (JSON-RPC texts) to the client of `peer` until they end, the client is
/// gone or the session ends (`ended`): the one loop behind every relay into an rmcp session.
pub(crate) fn relay_to_peer(
    notifications: impl futures::Stream<Item = String> + Send + 'static,
    peer: Peer<RoleServer>,
    ended: CancellationToken,
) {
    use futures::StreamExt as _;
    tokio::spawn(async move {
        let mut notifications = std::pin::pin!(notifications.take_until(ended.cancelled_owned()));
        while let Some(message) = notifications.next().await {
            let Some(notification) = typed_notification(&message) else {
                continue;
            };
            // The session is gone.
            if peer.send_notification(notification).await.is_err() {
                return;
            }
        }
    });
}

/// A relayed notification in rmcp's model, for its peers and subscription sinks; `None`, with a
/// warning, for one rmcp cannot carry.
pub(crate) fn typed_notification(message: &str) -> Option<rmcp::model::ServerNotification> {
    serde_json::from_str(message)
        .inspect_err(|error| tracing::warn!(%error, "a relayed notification rmcp cannot carry"))
        .ok()
}

/// The log levels of MCP's `notifications/message`.
const LOG_LEVELS: [&str; 8] = [
    "debug",
    "info",
    "notice",
    "warning",
    "error",
    "critical",
    "alert",
    "emergency",
];

/// Which of an upstream's unasked messages a downstream endpoint relays.
#[derive(Debug, Clone)]
pub enum Relayed {
    /// List changes, log messages and every resource update: a client's own upstream session,
    /// whose updates are of its own subscriptions.
    Everything,
    /// List changes, log messages, and the updates of the resources this session subscribed to
    /// (none without one): a client of one server's endpoint on the shared upstream, which
    /// carries every client's subscriptions.
    Session(Option<Arc<SharedSession>>),
    /// List changes only: a 2026-07-28 subscription, which has no place for logs, and `/mcp`,
    /// which serves no upstream's logs.
    ListChanges,
    /// List changes and the updates of these resources: a 2026-07-28 subscription that names
    /// them.
    Resources(std::collections::BTreeSet<String>),
}

impl Relayed {
    fn relays(&self, event: &UpstreamEvent) -> bool {
        match event {
            UpstreamEvent::ToolsChanged
            | UpstreamEvent::ResourcesChanged
            | UpstreamEvent::PromptsChanged => true,
            UpstreamEvent::Log { .. } => matches!(self, Self::Everything | Self::Session(_)),
            UpstreamEvent::ResourceUpdated { uri } => match self {
                Self::Everything => true,
                Self::Session(session) => session
                    .as_ref()
                    .is_some_and(|session| session.subscribed(uri)),
                Self::Resources(uris) => uris.contains(uri),
                Self::ListChanges => false,
            },
            _ => false,
        }
    }
}

/// One server's upstream events, as the notifications its downstream clients hear: the one
/// mapping behind the typed relays (a session's peer, a 2026-07-28 subscription) and the raw GET
/// stream the HTTP layer serves itself.
pub(crate) struct Relay {
    events: tokio::sync::broadcast::Receiver<UpstreamEvent>,
    gateway: Gateway,
    /// The server's id, whose cached tools a tools change drops.
    id: String,
    relayed: Relayed,
}

impl Relay {
    fn new(
        gateway: Gateway,
        id: String,
        events: tokio::sync::broadcast::Receiver<UpstreamEvent>,
        relayed: Relayed,
    ) -> Self {
        Self {
            events,
            gateway,
            id,
            relayed,
        }
    }

    /// The relay of what the shared upstreams of server `id` say, whichever serves it now (see
    /// [`crate::pool::UpstreamPool::events`]). What it hears comes from the server's shared
    /// upstream, which this replica may not have opened yet (a session taken over from another
    /// replica, its GET stream the first request here): opened now, in the background, so that
    /// a server that is down holds no listener, and is heard from once it is back.
    pub(crate) fn of_server(gateway: &Gateway, id: &str, relayed: Relayed) -> Self {
        let events = gateway.pool().events(id);
        let opener = gateway.clone();
        let server = id.to_string();
        tokio::spawn(async move {
            if let Err(error) = opener.served(&server).await {
                tracing::debug!(%error, "a listened-to server's upstream could not be opened now");
            }
        });
        Self::new(gateway.clone(), id.to_string(), events, relayed)
    }

    /// The next notification, as JSON-RPC text; `None` once the events end (the server was
    /// deleted, or the session's own upstream is gone). A tools change first drops the cached
    /// tools, so that the client's re-list sees the new ones.
    pub(crate) async fn next(&mut self) -> Option<String> {
        loop {
            let event = match self.events.recv().await {
                Ok(event) if self.relayed.relays(&event) => event,
                Ok(_) | Err(RecvError::Lagged(_)) => continue,
                Err(RecvError::Closed) => return None,
            };
            if matches!(event, UpstreamEvent::ToolsChanged) {
                self.gateway.forget_tools(&self.id);
            }
            if let Some(message) = notification_message(event) {
                return Some(message.to_string());
            }
        }
    }

    /// Every notification, until the server's event channel is gone.
    fn into_messages(self) -> impl futures::Stream<Item = String> + Send + 'static {
        futures::stream::unfold(self, |mut relay| async move {
            let message = relay.next().await?;
            Some((message, relay))
        })
    }
}

/// The three list change notifications, as JSON-RPC texts, for a change of what the gateway
/// itself serves.
pub(crate) fn list_changes() -> impl Iterator<Item = String> {
    [
        UpstreamEvent::ToolsChanged,
        UpstreamEvent::PromptsChanged,
        UpstreamEvent::ResourcesChanged,
    ]
    .into_iter()
    .filter_map(notification_message)
    .map(|message| message.to_string())
}

/// The JSON-RPC notification a downstream client hears for an upstream event.
fn notification_message(event: UpstreamEvent) -> Option<Value> {
    let (method, params) = match event {
        UpstreamEvent::ToolsChanged => ("notifications/tools/list_changed", None),
        UpstreamEvent::ResourcesChanged => ("notifications/resources/list_changed", None),
        UpstreamEvent::PromptsChanged => ("notifications/prompts/list_changed", None),
        UpstreamEvent::ResourceUpdated { uri } => {
            ("notifications/resources/updated", Some(json!({"uri": uri})))
        }
        UpstreamEvent::Log {
            level,
            logger,
            data,
        } => {
            // An unknown level is `info`.
            let level = if LOG_LEVELS.contains(&level.as_str()) {
                level
            } else {
                "info".to_string()
            };
            let mut params = json!({"level": level, "data": data});
            if let Some(logger) = logger {
                params["logger"] = logger.into();
            }
            ("notifications/message", Some(params))
        }
        _ => return None,
    };
    let mut message = json!({"jsonrpc": "2.0", "method": method});
    if let Some(params) = params {
        message["params"] = params;
    }
    Some(message)
}

/// What the shared upstreams of server `id` say unasked, as the JSON-RPC notifications its
/// downstream clients should hear (see [`Relay`]), across idle stops and definition changes,
/// until the server is deleted: `/mcp` follows the registry itself; one server's endpoint uses
/// [`followed_notifications`].
pub(crate) fn notifications(
    gateway: &Gateway,
    id: &str,
    relayed: Relayed,
) -> impl futures::Stream<Item = String> + Send + 'static {
    Relay::of_server(gateway, id, relayed).into_messages()
}

/// The list changes a 2026-07-28 subscription asked for, all of which the gateway relays.
pub(crate) fn list_change_filter(
    requested: &rmcp::model::SubscriptionFilter,
) -> rmcp::model::SubscriptionFilter {
    // Non-exhaustive upstream type: built by assignment.
    let mut accepted = rmcp::model::SubscriptionFilter::default();
    accepted.tools_list_changed = requested.tools_list_changed;
    accepted.prompts_list_changed = requested.prompts_list_changed;
    accepted.resources_list_changed = requested.resources_list_changed;
    accepted
}

/// Sends `notifications` (JSON-RPC texts) to a 2026-07-28 subscription until either ends. A
/// list the client did not subscribe to is skipped, and the subscription goes on.
pub(crate) async fn serve_subscription(
    context: &rmcp::service::SubscriptionContext,
    notifications: impl futures::Stream<Item = String>,
) {
    use futures::StreamExt as _;
    let mut notifications = std::pin::pin!(notifications);
    loop {
        let message = tokio::select! {
            () = context.cancelled() => return,
            message = notifications.next() => message,
        };
        let Some(message) = message else {
            return;
        };
        let Some(notification) = typed_notification(&message) else {
            continue;
        };
        match context.sink().send(notification).await {
            Ok(()) | Err(rmcp::service::SubscriptionSendError::NotificationNotAccepted(_)) => {}
            Err(_) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_relayed_notification_is_one_rmcp_carries_and_each_endpoint_relays_its_kinds() {
        use rmcp::model::ServerNotification;
        let events = [
            UpstreamEvent::ToolsChanged,
            UpstreamEvent::ResourcesChanged,
            UpstreamEvent::PromptsChanged,
            UpstreamEvent::Log {
                level: "shouting".into(),
                logger: Some("db".into()),
                data: json!("slow query"),
            },
            UpstreamEvent::ResourceUpdated {
                uri: "test://watched".into(),
            },
        ];
        for event in events.clone() {
            let message = notification_message(event).expect("a notification");
            let typed: ServerNotification =
                serde_json::from_value(message.clone()).expect("rmcp's model carries it");
            assert_eq!(
                serde_json::to_value(&typed).expect("serializes")["method"],
                message["method"]
            );
        }
        let log = notification_message(events[3].clone()).expect("a log message");
        assert_eq!(log["params"]["level"], "info", "an unknown level is info");
        assert_eq!(log["params"]["logger"], "db");
        let relayed =
            |relayed: Relayed| events.iter().filter(|event| relayed.relays(event)).count();
        assert_eq!(relayed(Relayed::Everything), 5);
        assert_eq!(relayed(Relayed::ListChanges), 3);
        assert_eq!(relayed(Relayed::Session(None)), 4);
        let named = |uri: &str| Relayed::Resources([uri.to_string()].into());
        assert_eq!(
            relayed(named("test://watched")),
            4,
            "list changes and the update"
        );
        assert_eq!(relayed(named("test://other")), 3);
        let subscriber = SharedSession::new(Some("server".into()), "client".into());
        assert_eq!(relayed(Relayed::Session(Some(subscriber.clone()))), 4);
        subscriber.subscribe("test://other");
        assert_eq!(
            relayed(Relayed::Session(Some(subscriber.clone()))),
            4,
            "another resource's update is not this session's"
        );
        subscriber.subscribe("test://watched");
        assert_eq!(relayed(Relayed::Session(Some(subscriber))), 5);
        for message in list_changes() {
            let typed = typed_notification(&message).expect("rmcp's model carries it");
            assert!(matches!(
                typed,
                ServerNotification::ToolListChangedNotification(_)
                    | ServerNotification::PromptListChangedNotification(_)
                    | ServerNotification::ResourceListChangedNotification(_)
            ));
        }
    }
}
