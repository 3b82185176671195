//! A 2026-07-28 client's tool call or prompt request to an upstream of the 2025 era, held
//! between the client's rounds. Such an upstream asks for sampling, elicitation or roots with a
//! request on its session, and waits for the answer; a stateless client can only be asked with
//! an `input_required` result, and answers on its retry. So the call runs on an upstream session of
//! its own, opened with the client's capabilities, whose relay ([`HeldRelay`]) turns each of the
//! upstream's requests into an input request and waits; the client gets them with a
//! `requestState` naming the held call, and its retry delivers the answers. The call ends with
//! its result or its timeout (the server's request timeout, which so bounds how long the client
//! may take), and the held call, with its session, is forgotten [`HELD_FOR`] after it started.
//!
//! The `requestState` is a random name, good only on the endpoint that made it. (With users,
//! issue 23, it must also be bound to the caller.)

use std::{
    collections::{BTreeMap, HashMap},
    sync::{Arc, Mutex, PoisonError, Weak},
    time::Duration,
};

use rmcp::{
    ErrorData as McpError, RoleServer,
    model::{
        CallToolRequestParams, CallToolResponse, ClientRequest, GetPromptRequest,
        GetPromptRequestParams, InputRequest, InputRequiredResult, ServerResult,
    },
    service::RequestContext,
};
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};

use crate::{Gateway, Served, call};

/// How long a held call is kept, from its start.
const HELD_FOR: Duration = Duration::from_secs(300);
/// What a `requestState` naming a held call starts with.
const STATE_PREFIX: &str = "switchboard-held-";

/// The calls held for their clients, by `requestState`.
#[derive(Debug, Clone, Default)]
pub(crate) struct HeldCalls(Arc<Mutex<HashMap<String, Arc<HeldCall>>>>);

/// One held call.
struct HeldCall {
    /// The server it was made to: a retry on another endpoint does not find it.
    server: String,
    /// What the call says next: an input request, or its end.
    said: tokio::sync::Mutex<mpsc::UnboundedReceiver<Said>>,
    /// The upstream's requests waiting for the client's answers, by input key.
    waiting: Arc<Mutex<BTreeMap<String, Waiting>>>,
    /// Ends the call (and drops its session) when the held call goes.
    task: tokio::task::AbortHandle,
}

impl std::fmt::Debug for HeldCall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HeldCall")
            .field("server", &self.server)
            .finish_non_exhaustive()
    }
}

impl Drop for HeldCall {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// An upstream request the client has been asked, and where its answer goes.
struct Waiting {
    request: InputRequest,
    answer: oneshot::Sender<Value>,
}

enum Said {
    /// The upstream asked something: it waits in the held call's `waiting`.
    Asked,
    /// The upstream reported progress: it goes to the client's round in progress.
    Progress(switchboard_mcp::Progress),
    Done(Box<Result<ServerResult, McpError>>),
}

/// A request that may be held: the two an upstream of the 2025 era answers after asking.
pub(crate) enum Asking {
    Tool(CallToolRequestParams),
    Prompt(GetPromptRequestParams),
}

impl Asking {
    fn request_state(&self) -> Option<&str> {
        match self {
            Self::Tool(request) => request.request_state.as_deref(),
            Self::Prompt(request) => request.request_state.as_deref(),
        }
    }

    /// A retry's `requestState` and answers.
    fn retry(self) -> (String, Option<rmcp::model::InputResponses>) {
        let (state, responses) = match self {
            Self::Tool(request) => (request.request_state, request.input_responses),
            Self::Prompt(request) => (request.request_state, request.input_responses),
        };
        (state.unwrap_or_default(), responses)
    }
}

/// What the client hears of a held request: its result, or what the upstream asks.
pub(crate) enum Heard {
    Done(Box<ServerResult>),
    InputRequired(InputRequiredResult),
}

/// The client's request of the round in progress: where progress goes.
struct Round {
    peer: rmcp::service::Peer<rmcp::RoleServer>,
    /// The token of the client's request, if it wants progress.
    progress_token: Option<rmcp::model::ProgressToken>,
}

impl HeldCalls {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<HeldCall>>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn get(&self, state: &str, server: &str) -> Option<Arc<HeldCall>> {
        self.lock()
            .get(state)
            .filter(|held| held.server == server)
            .cloned()
    }

    fn remove(&self, state: &str) {
        self.lock().remove(state);
    }

    /// Gives the held call under `state` a new name, which the next round must bring: every
    /// round's `requestState` is its own.
    fn rename(&self, state: &str) -> String {
        let renamed = new_state();
        let mut calls = self.lock();
        if let Some(held) = calls.remove(state) {
            calls.insert(renamed.clone(), held);
        }
        renamed
    }
}

fn new_state() -> String {
    format!("{STATE_PREFIX}{}", uuid::Uuid::new_v4().simple())
}

/// How a request is held between its client's rounds.
enum Hold {
    /// It continues a held call.
    Resume,
    /// It starts one, for a client with these capabilities.
    Start(rmcp::model::ClientCapabilities),
}

/// Holds `request` if it must be: one that continues a held call (its `requestState` is the
/// gateway's), or a stateless client's that answers server-to-client requests, to an upstream
/// of the 2025 era, which asks for them on a session. Any other request comes back as it was,
/// for the ordinary path.
pub(crate) async fn hold_if_needed(
    gateway: &Gateway,
    server: &str,
    context: &RequestContext<RoleServer>,
    request: Asking,
) -> Result<Result<Heard, Asking>, McpError> {
    let Some(hold) = hold(gateway, server, context, request.request_state()).await? else {
        return Ok(Err(request));
    };
    let round = Round {
        peer: context.peer.clone(),
        progress_token: context.meta.get_progress_token(),
    };
    let heard = match hold {
        Hold::Resume => {
            let (state, responses) = request.retry();
            resume(gateway, server, state, responses, round).await
        }
        Hold::Start(capabilities) => {
            let by = call::CalledBy::of(context);
            start(gateway, server, request, capabilities, by, round).await
        }
    };
    heard.map(Ok)
}

/// Whether, and how, a request with `request_state` from this client is held.
async fn hold(
    gateway: &Gateway,
    server: &str,
    context: &RequestContext<RoleServer>,
    request_state: Option<&str>,
) -> Result<Option<Hold>, McpError> {
    if continues_held(request_state) {
        return Ok(Some(Hold::Resume));
    }
    let Some(client_meta) = crate::era::stateless_context(context) else {
        return Ok(None);
    };
    let capabilities: rmcp::model::ClientCapabilities = client_meta
        .get("io.modelcontextprotocol/clientCapabilities")
        .and_then(|value| serde_json::from_value(value.clone()).ok())
        .unwrap_or_default();
    if !crate::client_sessions::answers_requests(&capabilities) {
        return Ok(None);
    }
    let connected = gateway.upstream(server).await.map_err(call::to_mcp)?;
    connected
        .upstream
        .capabilities()
        .await
        .map_err(|error| call::to_mcp(error.into()))?;
    let stateless = crate::era::is_stateless(connected.upstream.protocol_version().as_ref());
    Ok((!stateless).then_some(Hold::Start(capabilities)))
}

/// Whether a request with this `requestState` continues a held call: the state is one of ours.
fn continues_held(request_state: Option<&str>) -> bool {
    request_state.is_some_and(|state| state.starts_with(STATE_PREFIX))
}

/// Makes `request` for a stateless client with `capabilities` on an upstream session of its own,
/// and answers with its result or with what the upstream asked first.
async fn start(
    gateway: &Gateway,
    server: &str,
    request: Asking,
    capabilities: rmcp::model::ClientCapabilities,
    by: call::CalledBy,
    round: Round,
) -> Result<Heard, McpError> {
    let (said_tx, said_rx) = mpsc::unbounded_channel();
    let waiting = Arc::new(Mutex::new(BTreeMap::new()));
    let relay = Arc::new(HeldRelay {
        capabilities,
        said: said_tx.clone(),
        waiting: waiting.clone(),
        asked: std::sync::atomic::AtomicU64::new(0),
    });
    let served = gateway
        .dedicated(server, relay)
        .await
        .map_err(call::to_mcp)?;
    let gateway_for_call = gateway.clone();
    let task = tokio::spawn(async move {
        let done = run(&gateway_for_call, &served, request, by, &said_tx).await;
        let _ = said_tx.send(Said::Done(Box::new(done)));
        // The session stays until the held call goes, so that nothing more is asked of it.
        std::future::pending::<()>().await;
    });
    let state = new_state();
    let held = Arc::new(HeldCall {
        server: server.to_string(),
        said: tokio::sync::Mutex::new(said_rx),
        waiting,
        task: task.abort_handle(),
    });
    gateway
        .held_calls()
        .lock()
        .insert(state.clone(), held.clone());
    let calls = Arc::downgrade(&gateway.held_calls().0);
    let expired = Arc::downgrade(&held);
    tokio::spawn(async move {
        tokio::time::sleep(HELD_FOR).await;
        forget(&calls, &expired);
    });
    next(gateway, &state, &held, &round).await
}

/// Delivers a retry's answers to the held call its `requestState` names, and answers with what
/// the call says next.
async fn resume(
    gateway: &Gateway,
    server: &str,
    state: String,
    input_responses: Option<rmcp::model::InputResponses>,
    round: Round,
) -> Result<Heard, McpError> {
    let Some(held) = gateway.held_calls().get(&state, server) else {
        return Err(McpError::invalid_params(
            "the requestState names no call held for this client: it ended, expired or never was",
            None,
        ));
    };
    let mut unanswered = Vec::new();
    {
        let mut waiting = held.waiting.lock().unwrap_or_else(PoisonError::into_inner);
        for (key, answer) in input_responses.unwrap_or_default() {
            if let Some(request) = waiting.remove(&key) {
                let _ = request.answer.send(answer);
            }
        }
        unanswered.extend(
            waiting
                .iter()
                .map(|(key, waiting)| (key.clone(), waiting.request.clone())),
        );
    }
    if !unanswered.is_empty() {
        // Asked again for what the retry left out.
        return input_required(&gateway.held_calls().rename(&state), unanswered);
    }
    next(gateway, &state, &held, &round).await
}

/// Waits for what the held call says next: the upstream's requests (all those asked by then), or
/// its result, which ends it. Progress it reports meanwhile goes to the client's round.
async fn next(
    gateway: &Gateway,
    state: &str,
    held: &HeldCall,
    round: &Round,
) -> Result<Heard, McpError> {
    let mut said = held.said.lock().await;
    let mut done = None;
    let mut asked = false;
    while let Some(message) = said.recv().await {
        match message {
            Said::Progress(report) => {
                if let Some(token) = &round.progress_token {
                    let mut param =
                        rmcp::model::ProgressNotificationParam::new(token.clone(), report.progress);
                    param.total = report.total;
                    param.message = report.message;
                    let _ = round.peer.notify_progress(param).await;
                }
            }
            Said::Asked => {
                asked = true;
                break;
            }
            Said::Done(result) => {
                done = Some(result);
                break;
            }
        }
    }
    // Whatever else was said by now: more requests asked together, or the end.
    while let Ok(message) = said.try_recv() {
        match message {
            Said::Done(result) => done = Some(result),
            Said::Asked => asked = true,
            Said::Progress(_) => {}
        }
    }
    if let Some(result) = done {
        gateway.held_calls().remove(state);
        return (*result).map(|result| Heard::Done(Box::new(result)));
    }
    let waiting: Vec<(String, InputRequest)> = held
        .waiting
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .iter()
        .map(|(key, waiting)| (key.clone(), waiting.request.clone()))
        .collect();
    if !asked || waiting.is_empty() {
        gateway.held_calls().remove(state);
        return Err(McpError::internal_error(
            "the held call ended without an answer",
            None,
        ));
    }
    input_required(&gateway.held_calls().rename(state), waiting)
}

fn input_required(state: &str, asked: Vec<(String, InputRequest)>) -> Result<Heard, McpError> {
    let requests: serde_json::Map<String, Value> = asked
        .into_iter()
        .filter_map(|(key, request)| Some((key, serde_json::to_value(request).ok()?)))
        .collect();
    let result = json!({
        "resultType": "input_required",
        "inputRequests": requests,
        "requestState": state,
    });
    serde_json::from_value(result)
        .map(Heard::InputRequired)
        .map_err(|error| McpError::internal_error(format!("an input request: {error}"), None))
}

/// Forgets `held`, under whatever name it has now.
fn forget(calls: &Weak<Mutex<HashMap<String, Arc<HeldCall>>>>, held: &Weak<HeldCall>) {
    let (Some(calls), Some(held)) = (calls.upgrade(), held.upgrade()) else {
        return;
    };
    calls
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .retain(|_, call| !Arc::ptr_eq(call, &held));
}

/// The held request itself: a tool call governed and accounted as every call is, or a prompt
/// request on the held session.
async fn run(
    gateway: &Gateway,
    served: &Served,
    request: Asking,
    by: call::CalledBy,
    said: &mpsc::UnboundedSender<Said>,
) -> Result<ServerResult, McpError> {
    let request = match request {
        Asking::Tool(request) => return run_tool(gateway, served, request, by, said).await,
        Asking::Prompt(request) => request,
    };
    let request = ClientRequest::GetPromptRequest(GetPromptRequest::new(request));
    crate::forward::forward_on(
        gateway,
        &served.id,
        &served.alias,
        &served.upstream,
        request,
        &switchboard_mcp::RequestOptions::default(),
    )
    .await
}

async fn run_tool(
    gateway: &Gateway,
    served: &Served,
    request: CallToolRequestParams,
    by: call::CalledBy,
    said: &mpsc::UnboundedSender<Said>,
) -> Result<ServerResult, McpError> {
    // Progress goes to the round in progress, all of it before the call's end.
    let (progress, mut reports) = mpsc::unbounded_channel();
    let to_round = said.clone();
    let forward = tokio::spawn(async move {
        while let Some(report) = reports.recv().await {
            let _ = to_round.send(Said::Progress(report));
        }
    });
    let options = switchboard_mcp::RequestOptions {
        progress: Some(progress),
        ..switchboard_mcp::RequestOptions::default()
    };
    let result = call::governed_call(
        gateway,
        served,
        &request.name,
        request.arguments,
        by,
        &http::HeaderMap::new(),
        options,
    )
    .await;
    let _ = forward.await;
    // The held session carries the gateway's context: the upstream asks on it, never with
    // `input_required`.
    match result? {
        CallToolResponse::Complete(result) => Ok(ServerResult::CallToolResult(result)),
        _ => Err(call::unexpected()),
    }
}

/// Answers a held call's upstream by asking its client: each request is kept under a key of its
/// own until the client's retry brings the answer.
struct HeldRelay {
    capabilities: rmcp::model::ClientCapabilities,
    said: mpsc::UnboundedSender<Said>,
    waiting: Arc<Mutex<BTreeMap<String, Waiting>>>,
    asked: std::sync::atomic::AtomicU64,
}

impl HeldRelay {
    /// Asks the client `request` and waits for its answer, read as `T`.
    fn ask<T: serde::de::DeserializeOwned + Send + 'static>(
        &self,
        kind: &str,
        request: InputRequest,
    ) -> switchboard_mcp::RelayFuture<T> {
        let number = self
            .asked
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let key = format!("{kind}-{number}");
        let (answer, answered) = oneshot::channel();
        self.waiting
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(key, Waiting { request, answer });
        let _ = self.said.send(Said::Asked);
        Box::pin(async move {
            let value = answered.await.map_err(|_| {
                McpError::internal_error("the client did not come back with an answer", None)
            })?;
            serde_json::from_value(value).map_err(|error| {
                McpError::invalid_params(format!("the client's answer: {error}"), None)
            })
        })
    }
}

// Sampling and roots are deprecated from 2026-07-28 on; upstreams of the earlier revisions still
// ask for them.
#[allow(deprecated)]
impl switchboard_mcp::ClientRelay for HeldRelay {
    fn capabilities(&self) -> rmcp::model::ClientCapabilities {
        self.capabilities.clone()
    }

    fn create_message(
        &self,
        params: rmcp::model::CreateMessageRequestParams,
    ) -> switchboard_mcp::RelayFuture<rmcp::model::CreateMessageResult> {
        let request = InputRequest::CreateMessage(rmcp::model::CreateMessageRequest::new(params));
        self.ask("sampling", request)
    }

    fn list_roots(&self) -> switchboard_mcp::RelayFuture<rmcp::model::ListRootsResult> {
        let request = InputRequest::ListRoots(rmcp::model::ListRootsRequest::default());
        self.ask("roots", request)
    }

    fn create_elicitation(
        &self,
        params: rmcp::model::ElicitRequestParams,
    ) -> switchboard_mcp::RelayFuture<rmcp::model::ElicitResult> {
        let request = InputRequest::Elicitation(rmcp::model::ElicitRequest::new(params));
        self.ask("elicitation", request)
    }
}
