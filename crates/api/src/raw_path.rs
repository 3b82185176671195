//! The HTTP side of the proxy's raw path (see `switchboard_gateway::raw_path`).
//!
//! A `POST` on `/mcp/{server}` or `/mcp` that is a plain `tools/call` (on a known session, or
//! stateless) is answered here: the body is read only for `method`, `id`, the tool name, the
//! arguments (kept as raw JSON) and `_meta`, and the upstream's result is written back around the
//! client's own id. Anything else, and anything unusual (other methods, other `_meta` keys,
//! headers rmcp must check against a schema, a Host it would have to judge), goes on to rmcp's
//! service untouched. A client's `notifications/cancelled` for a raw call is taken here too.

use std::{borrow::Cow, sync::Arc};

use axum::{
    body::{Body, Bytes},
    extract::Request,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::Deserialize;
use serde_json::value::RawValue;
use switchboard_gateway::{
    Gateway, raw_path,
    shared_sessions::{self, SharedSession},
};

/// The largest body read here; rmcp's own limit.
const MAX_BODY: usize = 4 * 1024 * 1024;

/// The session-era protocol versions whose `tools/call` the raw path knows; others go to rmcp.
pub(crate) const SESSION_VERSIONS: [&str; 3] = ["2025-11-25", "2025-06-18", "2025-03-26"];
/// The stateless protocol version the raw path knows: every request carries its client's
/// context in `_meta` and names itself in `Mcp-Method`/`Mcp-Name` headers.
const STATELESS_VERSION: &str = "2026-07-28";

/// A client's JSON-RPC message, read only as far as routing needs.
#[derive(Deserialize)]
struct Incoming<'a> {
    #[serde(borrow)]
    jsonrpc: Cow<'a, str>,
    #[serde(borrow, default)]
    id: Option<&'a RawValue>,
    #[serde(borrow)]
    method: Cow<'a, str>,
    #[serde(borrow, default)]
    params: Option<&'a RawValue>,
}

/// `tools/call` params the raw path can forward; any other field (a task, say) sends the call
/// to rmcp.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CallParams<'a> {
    #[serde(borrow)]
    name: Cow<'a, str>,
    #[serde(borrow, default)]
    arguments: Option<&'a RawValue>,
    #[serde(borrow, default, rename = "_meta")]
    meta: Option<CallMeta<'a>>,
    /// A stateless client's answers to an earlier `input_required`, and its echoed state.
    #[serde(borrow, default, rename = "inputResponses")]
    input_responses: Option<&'a RawValue>,
    #[serde(borrow, default, rename = "requestState")]
    request_state: Option<&'a RawValue>,
}

/// The `_meta` of a call the raw path can forward: a progress token, and on a stateless request
/// the client's context.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CallMeta<'a> {
    #[serde(borrow, default, rename = "progressToken")]
    progress_token: Option<&'a RawValue>,
    /// The stateless era's per-request client context.
    #[serde(borrow, default, rename = "io.modelcontextprotocol/protocolVersion")]
    protocol_version: Option<Cow<'a, str>>,
    /// Kept as JSON: passed on to the upstream as the client wrote them.
    #[serde(borrow, default, rename = "io.modelcontextprotocol/clientInfo")]
    client_info: Option<&'a RawValue>,
    #[serde(borrow, default, rename = "io.modelcontextprotocol/clientCapabilities")]
    client_capabilities: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct ClientInfo<'a> {
    #[serde(borrow)]
    name: Cow<'a, str>,
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

#[derive(Deserialize)]
struct CancelParams<'a> {
    #[serde(borrow, rename = "requestId")]
    request_id: &'a RawValue,
}

/// Where the raw path may answer: the endpoint (a server id, or `None` for `/mcp`), the hosts
/// rmcp allows, and the endpoint's session manager, kept told of clients the raw path serves.
pub(crate) struct Lane<'a> {
    pub gateway: &'a Gateway,
    pub endpoint: Option<&'a str>,
    pub allowed_hosts: &'a [String],
    pub sessions: &'a Arc<crate::sessions::HibernatingSessions>,
}

/// How a request may take the raw path.
enum Mode {
    /// On a session opened at `initialize`, registered once initialized (`crate::sessions`).
    Session(Arc<SharedSession>),
    /// A stateless (2026-07-28) request: the client's context rides in each request.
    Stateless,
}

/// Answers `request` on the raw path, or hands it back for rmcp's service.
pub(crate) async fn serve(lane: Lane<'_>, request: Request) -> Result<Response, Request> {
    let Some(mode) = eligible(&lane, request.headers()) else {
        return Err(request);
    };
    let (parts, body) = request.into_parts();
    let bytes = match http_body_util::BodyExt::collect(http_body_util::Limited::new(body, MAX_BODY))
        .await
    {
        Ok(collected) => collected.to_bytes(),
        Err(_) => return Ok(too_large()),
    };
    match answer(&lane, &mode, &parts.headers, &bytes).await {
        Some(response) => {
            if let Mode::Session(session) = &mode
                && session.needs_touch(shared_sessions::touch_interval(
                    lane.sessions.idle_timeout(),
                ))
                && let Some(id) = crate::sessions::session_id(&parts.headers)
            {
                lane.sessions.touch(id);
            }
            Ok(response)
        }
        None => Err(Request::from_parts(parts, Body::from(bytes))),
    }
}

/// The raw path's mode, when the request's headers are the plain case rmcp would accept as
/// they are.
fn eligible(lane: &Lane<'_>, headers: &HeaderMap) -> Option<Mode> {
    let text = |name: &str| headers.get(name).and_then(|value| value.to_str().ok());
    let content_type = text(header::CONTENT_TYPE.as_str())?;
    let accept = text(header::ACCEPT.as_str())?;
    let plain = content_type
        .split(';')
        .next()
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("application/json"))
        && accept.contains("application/json")
        && accept.contains("text/event-stream")
        && headers.get(header::ORIGIN).is_none()
        && host_allowed(text(header::HOST.as_str())?, lane.allowed_hosts);
    if !plain {
        return None;
    }
    let version = text("mcp-protocol-version")?;
    match text("mcp-session-id") {
        Some(session)
            if SESSION_VERSIONS.contains(&version)
                && headers.get("mcp-method").is_none()
                && headers.get("mcp-name").is_none() =>
        {
            let session = lane.gateway.shared_sessions().get(session, lane.endpoint)?;
            Some(Mode::Session(session))
        }
        // Headers that mirror parameters are checked against the tool's schema by rmcp.
        None if version == STATELESS_VERSION
            && !headers
                .keys()
                .any(|name| name.as_str().starts_with("mcp-param-")) =>
        {
            Some(Mode::Stateless)
        }
        _ => None,
    }
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

/// The raw path's answer to one message, or `None` for rmcp.
async fn answer(
    lane: &Lane<'_>,
    mode: &Mode,
    headers: &HeaderMap,
    body: &Bytes,
) -> Option<Response> {
    let text = std::str::from_utf8(body).ok()?;
    let message: Incoming<'_> = serde_json::from_str(text).ok()?;
    // An id of the wrong shape is refused by the router's MCP guard.
    if message.jsonrpc != "2.0" || message.id.is_some_and(|id| !crate::mcp_edge::valid_id(id)) {
        return None;
    }
    match (message.method.as_ref(), message.id, mode) {
        ("tools/call", Some(id), Mode::Session(session)) => {
            let params: CallParams<'_> = serde_json::from_str(message.params?.get()).ok()?;
            // The stateless era's context and its multi-round trips have no place on a session.
            let meta = params.meta.as_ref();
            if meta.is_some_and(|meta| {
                meta.protocol_version.is_some()
                    || meta.client_info.is_some()
                    || meta.client_capabilities.is_some()
            }) || params.input_responses.is_some()
                || params.request_state.is_some()
            {
                return None;
            }
            call(lane, session, headers, id, &params, None).await
        }
        ("tools/call", Some(id), Mode::Stateless) => {
            let params: CallParams<'_> = serde_json::from_str(message.params?.get()).ok()?;
            let (session, parts) = stateless_session(lane, headers, &params)?;
            call(lane, &session, headers, id, &params, Some(parts)).await
        }
        ("notifications/cancelled", None, Mode::Session(session)) => {
            let params: CancelParams<'_> = serde_json::from_str(message.params?.get()).ok()?;
            // A cancel for a call rmcp serves goes to rmcp.
            session
                .cancel(params.request_id.get())
                .then(|| StatusCode::ACCEPTED.into_response())
        }
        _ => None,
    }
}

/// A one-request session for a stateless call whose headers and `_meta` are as rmcp requires
/// (the method and name headers match the body, the version is stated), and what the call
/// carries for the upstream: the client's context, so that the upstream sees what the client can
/// answer, and its answers to an earlier `input_required`.
fn stateless_session(
    lane: &Lane<'_>,
    headers: &HeaderMap,
    params: &CallParams<'_>,
) -> Option<(Arc<SharedSession>, StatelessParts)> {
    let text = |name: &str| headers.get(name).and_then(|value| value.to_str().ok());
    let meta = params.meta.as_ref()?;
    let consistent = text("mcp-method") == Some("tools/call")
        && text("mcp-name") == Some(params.name.as_ref())
        && meta.protocol_version.as_deref() == Some(STATELESS_VERSION);
    if !consistent {
        return None;
    }
    let client_name = meta
        .client_info
        .and_then(|raw| serde_json::from_str::<ClientInfo<'_>>(raw.get()).ok())
        .map(|info| info.name.to_string())
        .unwrap_or_default();
    let mut client_meta =
        format!(r#"{{"io.modelcontextprotocol/protocolVersion":"{STATELESS_VERSION}""#);
    if let Some(info) = meta.client_info {
        client_meta.push_str(r#","io.modelcontextprotocol/clientInfo":"#);
        client_meta.push_str(info.get());
    }
    if let Some(capabilities) = meta.client_capabilities {
        client_meta.push_str(r#","io.modelcontextprotocol/clientCapabilities":"#);
        client_meta.push_str(capabilities.get());
    }
    client_meta.push('}');
    let answers_requests = meta
        .client_capabilities
        .and_then(|raw| serde_json::from_str::<ClientCapabilities<'_>>(raw.get()).ok())
        .is_some_and(|capabilities| capabilities.answers_requests());
    let parts = StatelessParts {
        client_meta,
        input_responses: params.input_responses.map(ToOwned::to_owned),
        request_state: params.request_state.map(ToOwned::to_owned),
        answers_requests,
    };
    let session = SharedSession::new(lane.endpoint.map(str::to_owned), client_name);
    Some((session, parts))
}

async fn call(
    lane: &Lane<'_>,
    session: &Arc<SharedSession>,
    headers: &HeaderMap,
    id: &RawValue,
    params: &CallParams<'_>,
    stateless: Option<StatelessParts>,
) -> Option<Response> {
    let (served, tool) = match raw_path::target(lane.gateway, lane.endpoint, &params.name).await? {
        Ok(target) => target,
        Err(error) => return Some(answer_response(answer_message(id, Err(error)))),
    };
    if let Some(token) = params.meta.as_ref().and_then(|meta| meta.progress_token) {
        let call = OwnedCall {
            gateway: lane.gateway.clone(),
            served,
            tool: tool.to_string(),
            arguments: params.arguments.map(ToOwned::to_owned),
            session: session.clone(),
            headers: headers.clone(),
            id: id.to_owned(),
            stateless,
        };
        return call_with_progress(call, token.to_owned()).await;
    }
    let tracked = session.track(id.get());
    let call = raw_path::RawCall {
        served: &served,
        name: tool,
        arguments: params.arguments,
        session,
        headers,
        cancel: tracked.token.clone(),
        progress: None,
        progress_token: None,
        stateless: stateless.as_ref().map(StatelessParts::call),
    };
    let reply = raw_path::call_raw(lane.gateway, call).await?;
    Some(answer_response(answer_message(id, reply)))
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
        response
            .extensions_mut()
            .insert(crate::mcp_edge::RawAnswer { error_code });
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
    headers: HeaderMap,
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
            headers: &call.headers,
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

fn too_large() -> Response {
    crate::error::ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "body_too_large",
        format!("the request body is larger than {MAX_BODY} bytes"),
    )
    .into_response()
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
    fn only_a_progress_token_may_ride_in_meta() {
        let plain: Result<CallParams<'_>, _> =
            serde_json::from_str(r#"{"name":"echo","arguments":{"a":1}}"#);
        assert!(plain.is_ok());
        let progress: CallParams<'_> =
            serde_json::from_str(r#"{"name":"echo","_meta":{"progressToken":"t-1"}}"#)
                .expect("a progress token is forwarded");
        let token = progress.meta.and_then(|meta| meta.progress_token);
        assert_eq!(token.map(RawValue::get), Some(r#""t-1""#));
        let other: Result<CallParams<'_>, _> =
            serde_json::from_str(r#"{"name":"echo","_meta":{"io.example/x":1}}"#);
        assert!(other.is_err());
        let task: Result<CallParams<'_>, _> =
            serde_json::from_str(r#"{"name":"echo","task":{"ttl":1}}"#);
        assert!(task.is_err());
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
