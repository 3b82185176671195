//! A 2026-07-28 client's tool call to an upstream of the 2025 era, held between the client's
//! rounds. Such an upstream asks for sampling, elicitation or roots with a request on its
//! session, and waits for the answer; a stateless client can only be asked with an
//! `input_required` result, and answers on its retry. So the call runs on an upstream session of
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
    ErrorData as McpError,
    model::{CallToolRequestParams, CallToolResponse, CallToolResult, InputRequest},
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
    Done(Result<CallToolResult, McpError>),
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
}

/// Whether `request` continues a held call: its `requestState` is one of ours.
pub(crate) fn continues_held(request: &CallToolRequestParams) -> bool {
    request
        .request_state
        .as_deref()
        .is_some_and(|state| state.starts_with(STATE_PREFIX))
}

/// Makes `request` for a stateless client with `capabilities` on an upstream session of its own,
/// and answers with the call's result or with what the upstream asked first.
pub(crate) async fn start(
    gateway: &Gateway,
    server: &str,
    request: CallToolRequestParams,
    capabilities: rmcp::model::ClientCapabilities,
    client: String,
) -> Result<CallToolResponse, McpError> {
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
        let done = run(&gateway_for_call, &served, request, client).await;
        let _ = said_tx.send(Said::Done(done));
        // The session stays until the held call goes, so that nothing more is asked of it.
        std::future::pending::<()>().await;
    });
    let state = format!("{STATE_PREFIX}{}", uuid::Uuid::new_v4().simple());
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
    let expired = state.clone();
    tokio::spawn(async move {
        tokio::time::sleep(HELD_FOR).await;
        forget(&calls, &expired);
    });
    next(gateway, &state, &held).await
}

/// Delivers a retry's answers to the held call its `requestState` names, and answers with what
/// the call says next.
pub(crate) async fn resume(
    gateway: &Gateway,
    server: &str,
    request: CallToolRequestParams,
) -> Result<CallToolResponse, McpError> {
    let state = request.request_state.unwrap_or_default();
    let Some(held) = gateway.held_calls().get(&state, server) else {
        return Err(McpError::invalid_params(
            "the requestState names no call held for this client: it ended, expired or never was",
            None,
        ));
    };
    let mut unanswered = Vec::new();
    {
        let mut waiting = held.waiting.lock().unwrap_or_else(PoisonError::into_inner);
        for (key, answer) in request.input_responses.unwrap_or_default() {
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
        return input_required(&state, unanswered);
    }
    next(gateway, &state, &held).await
}

/// Waits for what the held call says next: the upstream's requests (all those asked by then), or
/// its result, which ends it.
async fn next(
    gateway: &Gateway,
    state: &str,
    held: &HeldCall,
) -> Result<CallToolResponse, McpError> {
    let mut said = held.said.lock().await;
    let first = said.recv().await;
    let mut done = None;
    let mut consider = |message: Said| {
        if let Said::Done(result) = message {
            done = Some(result);
        }
    };
    if let Some(message) = first {
        consider(message);
    }
    while let Ok(message) = said.try_recv() {
        consider(message);
    }
    if let Some(result) = done {
        gateway.held_calls().remove(state);
        return result.map(CallToolResponse::Complete);
    }
    let asked: Vec<(String, InputRequest)> = held
        .waiting
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .iter()
        .map(|(key, waiting)| (key.clone(), waiting.request.clone()))
        .collect();
    if asked.is_empty() {
        gateway.held_calls().remove(state);
        return Err(McpError::internal_error(
            "the held call ended without an answer",
            None,
        ));
    }
    input_required(state, asked)
}

fn input_required(
    state: &str,
    asked: Vec<(String, InputRequest)>,
) -> Result<CallToolResponse, McpError> {
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
        .map(CallToolResponse::InputRequired)
        .map_err(|error| McpError::internal_error(format!("an input request: {error}"), None))
}

fn forget(calls: &Weak<Mutex<HashMap<String, Arc<HeldCall>>>>, state: &str) {
    if let Some(calls) = calls.upgrade() {
        calls
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(state);
    }
}

/// The governed call itself, accounted as every call is.
async fn run(
    gateway: &Gateway,
    served: &Served,
    request: CallToolRequestParams,
    client: String,
) -> Result<CallToolResult, McpError> {
    let name = request.name.to_string();
    let span = call::call_span(served, &name, &http::HeaderMap::new());
    let started = std::time::Instant::now();
    let arguments = request.arguments.map(Value::Object).unwrap_or(Value::Null);
    let arguments_hash = Some(crate::audit::hash_json(&arguments));
    let output = tracing::Instrument::instrument(
        served.registry.execute_with(
            &name,
            arguments,
            &switchboard_mcp::CallContext::new(),
            switchboard_mcp::RequestOptions::default(),
        ),
        span.clone(),
    )
    .await;
    let result = call::answer_of(gateway, served, output);
    let outcome = match &result {
        Ok(result) if result.is_error == Some(true) => call::CallOutcome::ToolError,
        Ok(_) => call::CallOutcome::Ok,
        Err(error) => call::CallOutcome::Failed(error.message.to_string()),
    };
    call::account_call(
        gateway,
        served,
        &name,
        client,
        started,
        outcome,
        arguments_hash,
        &span,
    );
    result
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
