//! What an upstream may send us unasked: progress, logging and list changes.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError},
};

#[allow(deprecated)]
use rmcp::{
    ClientHandler, ErrorData as McpError,
    model::{
        ClientConfig, CreateMessageRequestParams, CreateMessageResult, ElicitRequestParams,
        ElicitResult, Implementation, ListRootsResult, LoggingMessageNotificationParam,
        ProgressNotificationParam, ProgressToken,
    },
    service::{NotificationContext, RequestContext, RoleClient},
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
    Log {
        level: String,
        logger: Option<String>,
        data: serde_json::Value,
    },
}

/// Routes progress notifications to the call that asked for them.
#[derive(Debug, Clone, Default)]
pub(crate) struct ProgressRoutes(
    Arc<Mutex<HashMap<ProgressToken, mpsc::UnboundedSender<Progress>>>>,
);

impl ProgressRoutes {
    pub(crate) fn add(&self, token: ProgressToken, sender: mpsc::UnboundedSender<Progress>) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(token, sender);
    }

    pub(crate) fn remove(&self, token: &ProgressToken) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(token);
    }

    fn route(&self, params: ProgressNotificationParam) {
        let routes = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(sender) = routes.get(&params.progress_token) {
            let _ = sender.send(Progress {
                progress: params.progress,
                total: params.total,
                message: params.message,
            });
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
}

impl ClientHandler for UpstreamHandler {
    async fn on_progress(
        &self,
        params: ProgressNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        self.progress.route(params);
    }

    // Logging is deprecated by SEP-2577, but the servers we proxy still send it and their clients
    // still want it.
    #[allow(deprecated)]
    async fn on_logging_message(
        &self,
        params: LoggingMessageNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        let level = serde_json::to_value(params.level)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_else(|| "info".into());
        tracing::debug!(target: "switchboard::upstream::log", upstream = %self.name, %level, "{}", params.data);
        self.emit(UpstreamEvent::Log {
            level,
            logger: params.logger,
            data: params.data,
        });
    }

    async fn on_tool_list_changed(&self, _context: NotificationContext<RoleClient>) {
        self.emit(UpstreamEvent::ToolsChanged);
    }

    async fn on_resource_list_changed(&self, _context: NotificationContext<RoleClient>) {
        self.emit(UpstreamEvent::ResourcesChanged);
    }

    async fn on_prompt_list_changed(&self, _context: NotificationContext<RoleClient>) {
        self.emit(UpstreamEvent::PromptsChanged);
    }

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
