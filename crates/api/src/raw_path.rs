//! The HTTP side of the proxy's raw path (see `switchboard_gateway::raw_path`).
//!
//! A `POST` on `/mcp/{server}` or `/mcp` that the policy routed here (a plain `tools/call` on a
//! known session or stateless, or the cancel of such a call) is answered from the message the
//! edge read (`crate::mcp_message`): the upstream's result is written back around the client's
//! own id. The headers that make a request plain enough for it ([`arrival`], [`carriable`]) are
//! read here, for the policy to decide on. A call the upstream's connection turns out unable to
//! carry, before a byte is sent, goes on to rmcp's service untouched.

use std::sync::Arc;

use axum::{
    body::{Body, Bytes},
    extract::Request,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::Deserialize;
use serde_json::value::RawValue;
use switchboard_gateway::{
    Gateway,
    policy::{Arrival, Decision, Route, Target},
    raw_path,
    shared_sessions::{self, SharedSession},
};

use crate::mcp_message::{CallParts, McpMessage};

/// The session-era protocol versions whose `tools/call` the raw path knows; others go to rmcp.
pub(crate) const SESSION_VERSIONS: [&str; 3] = ["2025-11-25", "2025-06-18", "2025-03-26"];
/// The stateless protocol version the raw path knows: every request carries its client's
/// context in `_meta` and names itself in `Mcp-Method`/`Mcp-Name` headers.
const STATELESS_VERSION: &str = "2026-07-28";

#[derive(Deserialize)]
struct ClientInfo<'a> {
    #[serde(borrow)]
    name: std::borrow::Cow<'a, str>,
}

/// What matters of a stateless client's capabilities: whether it answers server-to-client
/// requests.
#[derive(Deserialize)]
struct ClientCapabilities<'a> {
    #[serde(borrow, default)]
    sampling: Option<&'a RawValue>,
    #[serde(borrow, default)]
    elicitation: Option<&'a RawValue>,
    #[serde(borrow, default)]
    roots: Option<&'a RawValue>,
}

impl ClientCapabilities<'_> {
    fn answers_requests(&self) -> bool {
        self.sampling.is_some() || self.elicitation.is_some() || self.roots.is_some()
    }
}

/// What a stateless call carries for the upstream besides its arguments, owned, so that a call
/// that streams progress can take it along.
struct StatelessParts {
    client_meta: String,
    input_responses: Option<Box<RawValue>>,
    request_state: Option<Box<RawValue>>,
    answers_requests: bool,
}

impl StatelessParts {
    fn call(&self) -> switchboard_mcp::StatelessCall<'_> {
        switchboard_mcp::StatelessCall {
            client_meta: &self.client_meta,
            input_responses: self.input_responses.as_deref().map(RawValue::get),
            request_state: self.request_state.as_deref().map(RawValue::get),
            answers_requests: self.answers_requests,
        }
    }
}

/// Where the raw path answers: the endpoint (a server id, or `None` for `/mcp`), and the
/// endpoint's session manager, kept told of clients the raw path serves.
pub(crate) struct Lane<'a> {
    pub gateway: &'a Gateway,
    pub endpoint: Option<&'a str>,
    pub sessions: &'a Arc<crate::sessions::HibernatingSessions>,
}

/// How a request came, as far as the policy's route depends on it: on a session, or
/// statelessly, with headers rmcp would accept as they are and, when stateless, that agree with
/// the message. Anything else is [`Arrival::Other`], which rmcp serves.
pub(crate) fn arrival<'h>(
    headers: &'h HeaderMap,
    message: Option<&McpMessage>,
    allowed_hosts: &[String],
) -> Arrival<'h> {
    let text = |name: &str| headers.get(name).and_then(|value| value.to_str().ok());
    let plain = message.is_some()
        && text(header::CONTENT_TYPE.as_str()).is_some_and(|content_type| {
            content_type
                .split(';')
                .next()
                .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("application/json"))
        })
        && text(header::ACCEPT.as_str()).is_some_and(|accept| {
            accept.contains("application/json") && accept.contains("text/event-stream")
        })
        && headers.get(header::ORIGIN).is_none()
        && text(header::HOST.as_str()).is_some_and(|host| host_allowed(host, allowed_hosts));
    let (Some(message), Some(version)) = (message.filter(|_| plain), text("mcp-protocol-version"))
    else {
        return Arrival::Other;
    };
    match headers
        .get("mcp-session-id")
        .and_then(|value| value.to_str().ok())
    {
        Some(session)
            if SESSION_VERSIONS.contains(&version)
                && headers.get("mcp-method").is_none()
                && headers.get("mcp-name").is_none() =>
        {
            Arrival::Session(session)
        }
        // Headers that mirror parameters are checked against the tool's schema by rmcp.
        None if version == STATELESS_VERSION
            && text("mcp-method") == message.method.as_deref()
            && text("mcp-name") == message.named.as_deref()
            && !headers
                .keys()
                .any(|name| name.as_str().starts_with("mcp-param-")) =>
        {
            Arrival::Stateless
        }
        _ => Arrival::Other,
    }
}

/// Whether the raw path can carry a message that came this way: a plain call, which on a
/// session carries nothing of the stateless era, and statelessly states its version.
pub(crate) fn carriable(message: &McpMessage, arrival: Arrival<'_>) -> bool {
    let Some(call) = &message.call else {
        return false;
    };
    match arrival {
        Arrival::Session(_) => !call.is_stateless(),
        Arrival::Stateless => call.protocol_version.as_deref() == Some(STATELESS_VERSION),
        Arrival::Other => false,
    }
}

/// Answers `request` on the raw path when the policy routed it there, or hands it back for
/// rmcp's service.
pub(crate) async fn serve(lane: Lane<'_>, mut request: Request) -> Result<Response, Request> {
    let routed = request
        .extensions()
        .get::<Decision>()
        .is_some_and(|decision| decision.route == Route::Raw);
    if !routed {
        return Err(request);
    }
    // Taken out rather than copied; a declined request gets its decision back.
    let extensions = request.extensions_mut();
    let (Some(decision), Some(message)) = (
        extensions.remove::<Decision>(),
        extensions.remove::<McpMessage>(),
    ) else {
        return Err(request);
    };
    let headers = request.headers();
    let session_id = crate::sessions::session_id(headers);
    let answered = match session_id {
        Some(id) => {
            let Some(session) = lane.gateway.shared_sessions().get(id, lane.endpoint) else {
                // Ended since the policy looked: rmcp answers for a session it does not know.
                request.extensions_mut().insert(decision);
                return Err(request);
            };
            let answered = answer_on_session(&lane, &decision, &message, &session, headers).await;
            if answered.is_some()
                && session.needs_touch(shared_sessions::touch_interval(
                    lane.sessions.idle_timeout(),
                ))
            {
                lane.sessions.touch(id);
            }
            answered
        }
        None => answer_stateless(&lane, &decision, &message, headers).await,
    };
    answered.ok_or_else(|| {
        // Declined: rmcp's service serves it, and reads who calls from the decision.
        let mut request = request;
        request.extensions_mut().insert(decision);
        request
    })
}

/// Whether rmcp's DNS-rebinding guard would surely let this Host through.
pub(crate) fn host_allowed(host: &str, allowed: &[String]) -> bool {
    let Ok(authority) = host.parse::<axum::http::uri::Authority>() else {
        return false;
    };
    allowed
        .iter()
        .any(|entry| entry == authority.host() || entry == authority.as_str())
}

/// The raw path's answer to a message on a session, or `None` for rmcp: a call, or the cancel
/// of a call it holds.
async fn answer_on_session(
    lane: &Lane<'_>,
    decision: &Decision,
    message: &McpMessage,
    session: &Arc<SharedSession>,
    headers: &HeaderMap,
) -> Option<Response> {
    if let Some(cancelled) = &message.cancels {
        // A cancel for a call rmcp serves goes to rmcp.
        return session
            .cancel(cancelled.get())
            .then(|| StatusCode::ACCEPTED.into_response());
    }
    call(lane, decision, message, session, headers, None).await
}

/// The raw path's answer to a stateless call, or `None` for rmcp.
async fn answer_stateless(
    lane: &Lane<'_>,
    decision: &Decision,
    message: &McpMessage,
    headers: &HeaderMap,
) -> Option<Response> {
    let (session, parts) = stateless_session(lane, message.call.as_ref()?);
    call(lane, decision, message, &session, headers, Some(parts)).await
}

/// A one-request session for a stateless call, and what the call carries for the upstream: the
/// client's context, so that the upstream sees what the client can answer, and its answers to
/// an earlier `input_required`.
fn stateless_session(lane: &Lane<'_>, call: &CallParts) -> (Arc<SharedSession>, StatelessParts) {
    let client_name = call
        .client_info
        .as_deref()
        .and_then(|raw| serde_json::from_str::<ClientInfo<'_>>(raw.get()).ok())
        .map(|info| info.name.to_string())
        .unwrap_or_default();
    let mut client_meta =
        format!(r#"{{"io.modelcontextprotocol/protocolVersion":"{STATELESS_VERSION}""#);
    if let Some(info) = &call.client_info {
        client_meta.push_str(r#","io.modelcontextprotocol/clientInfo":"#);
        client_meta.push_str(info.get());
    }
    if let Some(capabilities) = &call.client_capabilities {
        client_meta.push_str(r#","io.modelcontextprotocol/clientCapabilities":"#);
        client_meta.push_str(capabilities.get());
    }
    client_meta.push('}');
    let answers_requests = call
        .client_capabilities
        .as_deref()
        .and_then(|raw| serde_json::from_str::<ClientCapabilities<'_>>(raw.get()).ok())
        .is_some_and(|capabilities| capabilities.answers_requests());
    let parts = StatelessParts {
        client_meta,
        input_responses: call.input_responses.clone(),
        request_state: call.request_state.clone(),
        answers_requests,
    };
    let session = SharedSession::new(lane.endpoint.map(str::to_owned), client_name);
    (session, parts)
}

async fn call(
    lane: &Lane<'_>,
    decision: &Decision,
    message: &McpMessage,
    session: &Arc<SharedSession>,
    headers: &HeaderMap,
    stateless: Option<StatelessParts>,
) -> Option<Response> {
    let (Some(server), Target::Tool(tool), Some(id), Some(parts)) = (
        &decision.server,
        &decision.target,
        &message.id,
        &message.call,
    ) else {
        return None;
    };
    let served = match lane.gateway.served(&server.id).await {
        Ok(served) => served,
        Err(error) => {
            return Some(answer_response(answer_message(
                id,
                Err(error.into_jsonrpc()),
            )));
        }
    };
    let span = switchboard_gateway::call_span(&served, tool, headers);
    if let Some(token) = &parts.progress_token {
        let call = OwnedCall {
            gateway: lane.gateway.clone(),
            served,
            tool: tool.clone(),
            arguments: parts.arguments.clone(),
            session: session.clone(),
            actor: decision.caller.actor.clone(),
            grants: decision.grants.clone(),
            span,
            id: id.clone(),
            stateless,
        };
        return call_with_progress(call, token.clone()).await;
    }
    let tracked = session.track(id.get());
    let call = raw_path::RawCall {
        served: &served,
        name: tool,
        arguments: parts.arguments.as_deref(),
        session,
        actor: &decision.caller.actor,
        grants: &decision.grants,
        span,
        cancel: tracked.token.clone(),
        progress: None,
        progress_token: None,
        stateless: stateless.as_ref().map(StatelessParts::call),
    };
    let reply = raw_path::call_raw(lane.gateway, call).await?;
    Some(answer_response(answer_message(id, reply)))
}

/// Marks an answer the raw path wrote, with the code of its error if it is one, so that its
/// status is set without reading it again.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RawAnswer {
    pub(crate) error_code: Option<i64>,
}

/// The answer as JSON, or as an event stream when the upstream sent notifications first: they go
/// out in order, then the answer.
fn answer_response(answered: Answered) -> Response {
    let Answered {
        message,
        notifications,
        error_code,
    } = answered;
    if notifications.is_empty() {
        let mut response = (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            message,
        )
            .into_response();
        response.extensions_mut().insert(RawAnswer { error_code });
        return response;
    }
    let events: Vec<_> = notifications
        .iter()
        .map(|n| n.get().to_string())
        .chain([message])
        .map(sse_event)
        .collect();
    event_stream(futures::stream::iter(events))
}

/// The JSON-RPC answer to a client's call, the notifications to send before it, and the code of
/// its error if it is one.
struct Answered {
    message: String,
    notifications: Vec<Box<RawValue>>,
    error_code: Option<i64>,
}

/// The answer to the client's call, under its own id.
fn answer_message(
    id: &RawValue,
    reply: Result<switchboard_mcp::RawReply, rmcp::ErrorData>,
) -> Answered {
    match reply {
        Ok(reply) => {
            let mut message = String::with_capacity(64 + reply.result.get().len());
            message.push_str(r#"{"jsonrpc":"2.0","id":"#);
            message.push_str(id.get());
            message.push_str(r#","result":"#);
            message.push_str(reply.result.get());
            message.push('}');
            Answered {
                message,
                notifications: reply.notifications,
                error_code: None,
            }
        }
        Err(error) => Answered {
            message: crate::error::jsonrpc_error(Some(id), &error),
            notifications: Vec::new(),
            error_code: Some(i64::from(error.code.0)),
        },
    }
}

/// One server-sent event carrying a JSON-RPC message.
fn sse_event(message: String) -> Result<Bytes, std::convert::Infallible> {
    Ok(Bytes::from(format!("data: {message}\n\n")))
}

fn event_stream(
    events: impl futures::Stream<Item = Result<Bytes, std::convert::Infallible>> + Send + 'static,
) -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/event-stream"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        Body::from_stream(events),
    )
        .into_response()
}

/// A call that outlives the request handler: it streams progress.
struct OwnedCall {
    gateway: Gateway,
    served: switchboard_gateway::Served,
    tool: String,
    arguments: Option<Box<RawValue>>,
    session: Arc<SharedSession>,
    actor: String,
    grants: switchboard_gateway::policy::Grants,
    span: tracing::Span,
    id: Box<RawValue>,
    stateless: Option<StatelessParts>,
}

/// A call whose client asked for progress. Until the first report it runs in the handler: a
/// call answered without progress is answered as JSON, and a declined one can still go to rmcp.
/// At the first report the answer becomes an event stream (progress under the client's token,
/// the answer last) and the call moves to a task of its own. A client that goes away cancels it.
async fn call_with_progress(call: OwnedCall, client_token: Box<RawValue>) -> Option<Response> {
    let (progress, reports) = tokio::sync::mpsc::unbounded_channel();
    // Keeps the channel open past the call, and is dropped after `reports`: a channel closing
    // under a waiting receiver wakes this very task, and the spurious wake-up cost a thread
    // wake-up on most calls.
    let _open = progress.clone();
    let mut reports = reports;
    let tracked = call.session.track(call.id.get());
    let cancel = tracked.token.clone();
    let upstream_token = client_token.clone();
    let mut running = Box::pin(async move {
        let raw = raw_path::RawCall {
            served: &call.served,
            name: &call.tool,
            arguments: call.arguments.as_deref(),
            session: &call.session,
            actor: &call.actor,
            grants: &call.grants,
            span: call.span,
            cancel: tracked.token.clone(),
            progress: Some(progress),
            progress_token: Some(&upstream_token),
            stateless: call.stateless.as_ref().map(StatelessParts::call),
        };
        let reply = raw_path::call_raw(&call.gateway, raw).await;
        drop(tracked);
        reply.map(|reply| answer_message(&call.id, reply))
    });
    let first = tokio::select! {
        answered = &mut running => {
            let mut answered = answered?;
            // Reports that came with the answer go out before it.
            let mut reported: Vec<Box<RawValue>> = std::iter::from_fn(|| reports.try_recv().ok())
                .filter_map(|report| {
                    RawValue::from_string(progress_message(&client_token, &report)).ok()
                })
                .collect();
            reported.append(&mut answered.notifications);
            answered.notifications = reported;
            return Some(answer_response(answered));
        }
        Some(report) = reports.recv() => report,
    };
    let (events, received) = tokio::sync::mpsc::unbounded_channel::<String>();
    let _ = events.send(progress_message(&client_token, &first));
    tokio::spawn(async move {
        let answered = loop {
            tokio::select! {
                answered = &mut running => break answered,
                Some(report) = reports.recv() => {
                    let _ = events.send(progress_message(&client_token, &report));
                }
                () = events.closed(), if !cancel.is_cancelled() => cancel.cancel(),
            }
        };
        while let Ok(report) = reports.try_recv() {
            let _ = events.send(progress_message(&client_token, &report));
        }
        // Sent, so never declined past the first report.
        if let Some(answered) = answered {
            for notification in answered.notifications {
                let _ = events.send(notification.get().to_string());
            }
            let _ = events.send(answered.message);
        }
    });
    let events = futures::stream::unfold(received, |mut received| async move {
        let message = received.recv().await?;
        Some((sse_event(message), received))
    });
    Some(event_stream(events))
}

/// A progress notification for the client, under its own token.
fn progress_message(token: &RawValue, report: &switchboard_mcp::Progress) -> String {
    let mut params = serde_json::json!({"progress": report.progress});
    if let Some(total) = report.total {
        params["total"] = total.into();
    }
    if let Some(message) = &report.message {
        params["message"] = message.clone().into();
    }
    let params = params.to_string();
    // The client's token goes back exactly as it sent it.
    format!(
        r#"{{"jsonrpc":"2.0","method":"notifications/progress","params":{{"progressToken":{},{}}}"#,
        token.get(),
        &params[1..]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_matched_with_or_without_their_port() {
        let allowed = vec!["127.0.0.1".to_string(), "gw.example:8443".to_string()];
        assert!(host_allowed("127.0.0.1:7777", &allowed));
        assert!(host_allowed("gw.example:8443", &allowed));
        assert!(!host_allowed("gw.example:9000", &allowed));
        assert!(!host_allowed("evil.example", &allowed));
        assert!(!host_allowed("not a host", &allowed));
    }

    #[test]
    fn progress_goes_back_under_the_clients_token() {
        let token = RawValue::from_string(r#""abc""#.into()).expect("raw");
        let report = switchboard_mcp::Progress {
            progress: 1.0,
            total: Some(2.0),
            message: Some("half".into()),
        };
        let message: serde_json::Value =
            serde_json::from_str(&progress_message(&token, &report)).expect("valid JSON");
        assert_eq!(message["params"]["progressToken"], "abc");
        assert_eq!(message["params"]["total"], 2.0);
        assert_eq!(message["params"]["message"], "half");
    }
}
