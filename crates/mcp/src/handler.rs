//! What an upstream may send us unasked: progress, logging, list changes and resource updates.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError},
};

#[allow(deprecated)]
use rmcp::{
    ClientHandler, ErrorData as McpError,
    model::{
        ClientConfig, CreateMessageRequestParams, CreateMessageResult, ElicitRequestParams,
        ElicitResult, GetMeta, Implementation, JsonRpcMessage, ListRootsResult,
        LoggingMessageNotificationParam, ProgressNotificationParam, ProgressToken,
        ServerNotification,
    },
    service::{RequestContext, RoleClient, RxJsonRpcMessage, TxJsonRpcMessage},
    transport::Transport,
};

use crate::config::ClientRelay;
use tokio::sync::{broadcast, mpsc};

/// A progress report for one call.
#[derive(Debug, Clone, PartialEq)]
pub struct Progress {
    pub progress: f64,
    pub total: Option<f64>,
    pub message: Option<String>,
}

/// Something an upstream told us outside of any one call.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum UpstreamEvent {
    ToolsChanged,
    ResourcesChanged,
    PromptsChanged,
    /// A resource some downstream client subscribed to changed.
    ResourceUpdated {
        uri: String,
    },
    Log {
        level: String,
        logger: Option<String>,
        data: serde_json::Value,
    },
}

/// The event for a list change or a resource update, however it arrived (on its own, or on a
/// 2026-07-28 subscription); `None` for any other notification.
pub(crate) fn change(notification: &ServerNotification) -> Option<UpstreamEvent> {
    match notification {
        ServerNotification::ResourceUpdatedNotification(updated) => {
            Some(UpstreamEvent::ResourceUpdated {
                uri: updated.params.uri.clone(),
            })
        }
        ServerNotification::ToolListChangedNotification(_) => Some(UpstreamEvent::ToolsChanged),
        ServerNotification::ResourceListChangedNotification(_) => {
            Some(UpstreamEvent::ResourcesChanged)
        }
        ServerNotification::PromptListChangedNotification(_) => Some(UpstreamEvent::PromptsChanged),
        _ => None,
    }
}

/// Routes progress notifications to the call that asked for them.
///
/// A call's route is added once rmcp has sent its request, and a quick upstream's reports may be
/// read before that: a report for a token with no route yet is held (the last few tokens only)
/// and handed to the route when it is added, so that none is lost to that race.
#[derive(Debug, Clone, Default)]
pub(crate) struct ProgressRoutes(Arc<Mutex<Routes>>);

#[derive(Debug, Default)]
struct Routes {
    by_token: HashMap<ProgressToken, mpsc::UnboundedSender<Progress>>,
    /// Reports that came before their route, oldest token first, with when the first came.
    early: std::collections::VecDeque<(ProgressToken, std::time::Instant, Vec<Progress>)>,
}

/// How many tokens' early reports are held, and for how long: reports for a call that never adds
/// a route (it ended already) must neither pile up nor reach a later call given the same token
/// (tokens start again with each session).
const EARLY_TOKENS: usize = 64;
const EARLY_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

impl ProgressRoutes {
    pub(crate) fn add(&self, token: ProgressToken, sender: mpsc::UnboundedSender<Progress>) {
        let mut routes = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(at) = routes
            .early
            .iter()
            .position(|(early, _, _)| *early == token)
            && let Some((_, first, reports)) = routes.early.remove(at)
            && first.elapsed() < EARLY_WAIT
        {
            for report in reports {
                let _ = sender.send(report);
            }
        }
        routes.by_token.insert(token, sender);
    }

    pub(crate) fn remove(&self, token: &ProgressToken) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .by_token
            .remove(token);
    }

    fn route(&self, params: &ProgressNotificationParam) {
        let report = Progress {
            progress: params.progress,
            total: params.total,
            message: params.message.clone(),
        };
        let mut routes = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(sender) = routes.by_token.get(&params.progress_token) {
            let _ = sender.send(report);
            return;
        }
        match routes
            .early
            .iter_mut()
            .find(|(token, _, _)| *token == params.progress_token)
        {
            Some((_, _, reports)) => reports.push(report),
            None => {
                if routes.early.len() == EARLY_TOKENS {
                    routes.early.pop_front();
                }
                let entry = (
                    params.progress_token.clone(),
                    std::time::Instant::now(),
                    vec![report],
                );
                routes.early.push_back(entry);
            }
        }
    }
}

#[derive(Clone)]
pub(crate) struct UpstreamHandler {
    /// The upstream's name, for logs.
    pub(crate) name: Arc<str>,
    pub(crate) progress: ProgressRoutes,
    pub(crate) events: broadcast::Sender<UpstreamEvent>,
    /// Who answers the upstream's own requests, if anyone.
    pub(crate) relay: Option<Arc<dyn ClientRelay>>,
}

impl std::fmt::Debug for UpstreamHandler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamHandler")
            .field("name", &self.name)
            .field("relay", &self.relay.is_some())
            .finish_non_exhaustive()
    }
}

/// An upstream asked for something no downstream client can answer here.
fn no_relay(method: &str) -> McpError {
    McpError::new(
        rmcp::model::ErrorCode::METHOD_NOT_FOUND,
        format!("{method}: no client is connected that can answer it"),
        None,
    )
}

impl UpstreamHandler {
    /// The relay that answers `method`, or the error an upstream gets when there is none.
    fn relay(&self, method: &str) -> Result<&Arc<dyn ClientRelay>, McpError> {
        self.relay.as_ref().ok_or_else(|| no_relay(method))
    }

    /// Answers one request embedded in a 2026-07-28 `input_required` answer, as the same request
    /// sent on its own would be answered: through the relay to the downstream client.
    #[allow(deprecated)]
    pub(crate) async fn answer_input(
        &self,
        request: rmcp::model::InputRequest,
    ) -> Result<serde_json::Value, McpError> {
        use rmcp::model::InputRequest;
        let answer = match request {
            InputRequest::CreateMessage(request) => serde_json::to_value(
                self.relay("sampling/createMessage")?
                    .create_message(request.params)
                    .await?,
            ),
            InputRequest::Elicitation(request) => serde_json::to_value(
                self.relay("elicitation/create")?
                    .create_elicitation(request.params)
                    .await?,
            ),
            InputRequest::ListRoots(_) => {
                serde_json::to_value(self.relay("roots/list")?.list_roots().await?)
            }
            _ => return Err(no_relay("an input request of an unknown kind")),
        };
        answer.map_err(|error| McpError::internal_error(error.to_string(), None))
    }

    fn emit(&self, event: UpstreamEvent) {
        // No subscriber is fine: nobody is watching this upstream's lists.
        let _ = self.events.send(event);
    }

    /// Delivers one of the upstream's notifications, in the order the upstream sent them (see
    /// [`InOrder`]). List changes that answer a 2026-07-28 `subscriptions/listen` are left to
    /// that subscription.
    // Logging is deprecated by SEP-2577, but the servers we proxy still send it and their clients
    // still want it.
    #[allow(deprecated)]
    fn deliver(&self, notification: &ServerNotification) {
        if notification.get_meta().subscription_id().is_some() {
            return;
        }
        match notification {
            ServerNotification::ProgressNotification(progress) => {
                self.progress.route(&progress.params);
            }
            ServerNotification::LoggingMessageNotification(log) => self.log(&log.params),
            other => {
                if let Some(event) = change(other) {
                    self.emit(event);
                }
            }
        }
    }

    #[allow(deprecated)]
    fn log(&self, params: &LoggingMessageNotificationParam) {
        let level = serde_json::to_value(params.level)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_else(|| "info".into());
        tracing::debug!(target: "switchboard::upstream::log", upstream = %self.name, %level, "{}", params.data);
        self.emit(UpstreamEvent::Log {
            level,
            logger: params.logger.clone(),
            data: params.data.clone(),
        });
    }
}

impl ClientHandler for UpstreamHandler {
    // Progress, logs and list changes are delivered by `InOrder`, not here.

    #[allow(deprecated)]
    async fn create_message(
        &self,
        params: CreateMessageRequestParams,
        _context: RequestContext<RoleClient>,
    ) -> Result<CreateMessageResult, McpError> {
        self.relay("sampling/createMessage")?
            .create_message(params)
            .await
    }

    #[allow(deprecated)]
    async fn list_roots(
        &self,
        _context: RequestContext<RoleClient>,
    ) -> Result<ListRootsResult, McpError> {
        self.relay("roots/list")?.list_roots().await
    }

    async fn create_elicitation(
        &self,
        request: ElicitRequestParams,
        _context: RequestContext<RoleClient>,
    ) -> Result<ElicitResult, McpError> {
        self.relay("elicitation/create")?
            .create_elicitation(request)
            .await
    }

    fn get_info(&self) -> ClientConfig {
        let mut info = ClientConfig::default();
        info.capabilities = self
            .relay
            .as_ref()
            .map(|relay| relay.capabilities())
            .unwrap_or_default();
        info.client_info = Implementation::new("switchboard", env!("CARGO_PKG_VERSION"));
        info
    }
}

/// Delivers an upstream's progress, logs and list changes in the order the upstream sent them.
///
/// rmcp hands each notification to the handler on a task of its own, so two reports could be
/// delivered swapped, and a call's answer could overtake its last progress report. This wrapper
/// sees each message as the transport yields it, one at a time and before the next one, and
/// delivers the notifications there; the handler then leaves them alone.
pub(crate) struct InOrder<T> {
    /// The transport the messages come from.
    inner: T,
    /// Where the notifications go.
    handler: UpstreamHandler,
}

impl<T> InOrder<T> {
    pub(crate) fn new(inner: T, handler: UpstreamHandler) -> Self {
        Self { inner, handler }
    }
}

impl<T: Transport<RoleClient>> Transport<RoleClient> for InOrder<T> {
    type Error = T::Error;

    fn send(
        &mut self,
        item: TxJsonRpcMessage<RoleClient>,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send + 'static {
        self.inner.send(item)
    }

    async fn receive(&mut self) -> Option<RxJsonRpcMessage<RoleClient>> {
        let message = self.inner.receive().await?;
        if let JsonRpcMessage::Notification(notification) = &message {
            self.handler.deliver(&notification.notification);
        }
        Some(message)
    }

    async fn close(&mut self) -> Result<(), Self::Error> {
        self.inner.close().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(token: i64, progress: f64) -> ProgressNotificationParam {
        ProgressNotificationParam::new(
            ProgressToken(rmcp::model::NumberOrString::Number(token)),
            progress,
        )
    }

    #[test]
    fn reports_that_come_before_their_route_reach_it() {
        let routes = ProgressRoutes::default();
        routes.route(&report(7, 1.0));
        routes.route(&report(7, 2.0));
        routes.route(&report(8, 1.0));
        let (sender, mut received) = mpsc::unbounded_channel();
        routes.add(
            ProgressToken(rmcp::model::NumberOrString::Number(7)),
            sender,
        );
        routes.route(&report(7, 3.0));
        let got: Vec<f64> = std::iter::from_fn(|| received.try_recv().ok())
            .map(|progress| progress.progress)
            .collect();
        assert_eq!(got, [1.0, 2.0, 3.0]);
        // Held reports are bounded.
        for token in 100..300 {
            routes.route(&report(token, 1.0));
        }
        let held = routes.0.lock().expect("lock").early.len();
        assert_eq!(held, EARLY_TOKENS);
    }
}
