//! Raw forwarding of `tools/call` over an open Streamable HTTP session.
//!
//! The gateway's hot path: the request is written from borrowed JSON pieces and the answer's
//! `result` comes back as raw JSON, so a proxied call is never decoded into rmcp's typed model and
//! encoded again. Everything else (the handshake, listing, progress, server-to-client requests)
//! stays on rmcp's client, which also tells this module how to reach the session: the
//! [`RouteCell`] records the URL, session id, headers and per-request `_meta` of the requests rmcp
//! sends, and raw calls reuse them.

use std::{
    fmt::Write as _,
    sync::{Arc, Mutex as SyncMutex, PoisonError},
};

use http::{HeaderMap, HeaderName, HeaderValue};
use rmcp::model::{ClientJsonRpcMessage, GetMeta as _};
use serde_json::value::RawValue;

use crate::config::UpstreamAuth;

mod answer;

#[cfg(test)]
use answer::classify_expected;
pub(crate) use answer::{
    Expected, INCOMPLETE, Message, ProgressParams, RpcError, classify, error_answer,
    read_event_stream,
};

/// What a raw request needs to join an upstream session, as rmcp last sent it.
#[derive(Debug)]
pub(crate) struct RawRoute {
    pub(crate) uri: Arc<str>,
    /// Where raw requests go, worked out from `uri` once: parsing it (with its IDNA pass) for
    /// every call showed in profiles.
    pub(crate) target: crate::raw_client::Target,
    /// Whether requests to `uri` go straight to it rather than through a configured HTTP proxy,
    /// which only the typed path's client supports.
    pub(crate) direct: bool,
    /// `None` on a stateless (2026-07-28) connection.
    pub(crate) session_id: Option<Arc<str>>,
    /// The headers every raw request on this route carries: the configured ones, the negotiated
    /// `MCP-Protocol-Version`, the session's id and the content type and accepted types, made
    /// once here rather than for every call.
    pub(crate) headers: HeaderMap,
    /// Whether rmcp sends the SEP-2243 `Mcp-Method`/`Mcp-Name` headers on this connection.
    pub(crate) standard_headers: bool,
    /// Whether the connection is stateless (2026-07-28): each request carries its client's
    /// context, and an answer may ask for more input instead of completing.
    pub(crate) stateless: bool,
    /// The `_meta` that rmcp puts on every request (protocol version, client info and
    /// capabilities on a stateless connection), serialized once.
    pub(crate) meta: Option<String>,
}

/// The route of one session, replaced when rmcp moves to a new session and cleared when the
/// upstream says the session is gone.
#[derive(Debug, Default)]
pub(crate) struct RouteCell(SyncMutex<Option<Arc<RawRoute>>>);

/// Headers that describe one request and must not be copied to another.
fn is_per_request_header(name: &HeaderName) -> bool {
    let name = name.as_str();
    name == "traceparent"
        || name == "mcp-method"
        || name == "mcp-name"
        || name.starts_with("mcp-param-")
}

impl RouteCell {
    pub(crate) fn get(&self) -> Option<Arc<RawRoute>> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub(crate) fn clear(&self) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = None;
    }

    /// Learns the route from a request rmcp is about to send (after the handshake), unless it
    /// is already known for this session.
    pub(crate) fn learn(
        &self,
        uri: &Arc<str>,
        session_id: Option<&Arc<str>>,
        headers: &std::collections::HashMap<HeaderName, HeaderValue>,
        message: &ClientJsonRpcMessage,
    ) {
        let ClientJsonRpcMessage::Request(request) = message else {
            return;
        };
        let method = request.request.method();
        if method == "initialize" || method == "server/discover" {
            return;
        }
        if let Some(known) = self.get()
            && known.session_id.as_deref() == session_id.map(|id| &**id)
            && known.uri == *uri
        {
            return;
        }
        let Ok(url) = http::Uri::try_from(&**uri) else {
            return;
        };
        let Some(target) = crate::raw_client::Target::new(&url) else {
            return;
        };
        let mut meta = request.request.get_meta().clone();
        meta.remove("progressToken");
        let meta = (!meta.is_empty())
            .then(|| serde_json::to_string(&meta).ok())
            .flatten();
        let standard_headers = headers.keys().any(|name| name.as_str() == "mcp-method");
        // Found by name: `HeaderName` does not hash like the `str` it borrows as.
        let stateless = headers
            .iter()
            .find(|(name, _)| name.as_str() == "mcp-protocol-version")
            .and_then(|(_, value)| value.to_str().ok())
            .is_some_and(|version| version >= STATELESS_ERA);
        let mut headers: HeaderMap = headers
            .iter()
            .filter(|(name, _)| !is_per_request_header(name))
            .map(|(name, value)| (name.clone(), value.clone()))
            .collect();
        headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        headers.insert(
            http::header::ACCEPT,
            HeaderValue::from_static("application/json, text/event-stream"),
        );
        if let Some(session) = session_id
            && let Ok(value) = HeaderValue::from_str(session)
        {
            headers.insert(HeaderName::from_static("mcp-session-id"), value);
        }
        let route = RawRoute {
            uri: uri.clone(),
            direct: crate::raw_client::goes_direct(&url),
            target,
            session_id: session_id.cloned(),
            headers,
            standard_headers,
            stateless,
            meta,
        };
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = Some(Arc::new(route));
    }
}

/// The first protocol version of the stateless era; versions are dates, so they compare as text.
const STATELESS_ERA: &str = "2026-07-28";

/// What a stateless (2026-07-28) client's call carries besides its arguments, passed on as it is to
/// a stateless upstream: the client's own context, and the answers to an earlier `input_required`.
/// With it, the upstream sees the client's capabilities (so it may ask it for input), and an
/// `input_required` answer goes back to the client, which fulfils it and calls again.
#[derive(Debug, Clone, Copy)]
pub struct StatelessCall<'a> {
    /// The client's `_meta` context, a JSON object (protocol version, client info and
    /// capabilities), in place of the gateway's own.
    pub client_meta: &'a str,
    /// `inputResponses`, as JSON.
    pub input_responses: Option<&'a str>,
    /// `requestState`, as JSON.
    pub request_state: Option<&'a str>,
    /// Whether the client declares sampling, elicitation or roots: only a stateless upstream
    /// can ask it through its answers; a session-era one would need the typed path's relay.
    pub answers_requests: bool,
}

impl StatelessCall<'_> {
    /// Whether the call only works on a stateless upstream.
    pub(crate) fn needs_stateless_upstream(&self) -> bool {
        self.answers_requests || self.input_responses.is_some() || self.request_state.is_some()
    }
}

/// An upstream's answer to a raw `tools/call`.
#[derive(Debug)]
pub struct RawReply {
    /// The `result` object exactly as the upstream wrote it.
    pub result: Box<RawValue>,
    /// Whether the result says `isError: true`.
    pub is_error: bool,
    /// Notifications the upstream streamed before its answer, as it wrote them.
    pub notifications: Vec<Box<RawValue>>,
}

/// Why a raw call did not give an answer.
#[derive(Debug)]
#[non_exhaustive]
pub enum RawCallError {
    /// Nothing was sent: there is no open HTTP session to forward to, or it turned out to be
    /// gone. The typed path (which opens sessions and retries) should take the call.
    Unrouted,
    /// The call failed; it may have reached the upstream.
    Upstream(crate::UpstreamError),
}

impl From<crate::UpstreamError> for RawCallError {
    fn from(error: crate::UpstreamError) -> Self {
        Self::Upstream(error)
    }
}

/// Ids of raw requests: numbers far above rmcp's own counter, which shares the session.
pub(crate) const RAW_ID_BASE: u64 = 1 << 40;

/// A JSON string, escaped.
fn json_string(value: &str) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "\"\"".into())
}

/// The body of a raw `tools/call`. With `progress`, the request asks for progress under its own
/// id as the token: the upstream session is shared, so a client's own token could collide.
pub(crate) fn call_body(
    id: u64,
    name: &str,
    arguments: &str,
    meta: Option<&str>,
    progress_token: Option<&str>,
    stateless: Option<&StatelessCall<'_>>,
) -> String {
    let mut body = String::with_capacity(96 + name.len() + arguments.len());
    let _ = write!(
        body,
        r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":{},"arguments":{arguments}"#,
        json_string(name)
    );
    let meta = match stateless {
        Some(call) => {
            if let Some(responses) = call.input_responses {
                let _ = write!(body, r#","inputResponses":{responses}"#);
            }
            if let Some(state) = call.request_state {
                let _ = write!(body, r#","requestState":{state}"#);
            }
            Some(call.client_meta)
        }
        None => meta,
    };
    match (meta, progress_token) {
        (Some(meta), Some(token)) => {
            // `meta` is a serialized non-empty object: the token goes in as its first key.
            let _ = write!(body, r#","_meta":{{"progressToken":{token},{}"#, &meta[1..]);
        }
        (Some(meta), None) => {
            body.push_str(r#","_meta":"#);
            body.push_str(meta);
        }
        (None, Some(token)) => {
            let _ = write!(body, r#","_meta":{{"progressToken":{token}}}"#);
        }
        (None, None) => {}
    }
    body.push_str("}}");
    body
}

/// The headers of one raw request on a route.
pub(crate) async fn request_headers(
    route: &RawRoute,
    auth: &UpstreamAuth,
    context: &crate::CallContext,
    method: &'static str,
    name: Option<&str>,
) -> Result<HeaderMap, crate::exchange::LocalHttpError> {
    // Room for the route's headers and the four a call may add, so that none of them grows it.
    let mut headers = HeaderMap::with_capacity(route.headers.len() + PER_CALL_HEADERS);
    for (name, value) in &route.headers {
        headers.append(name.clone(), value.clone());
    }
    if route.standard_headers {
        headers.insert(
            HeaderName::from_static("mcp-method"),
            HeaderValue::from_static(method),
        );
        if let Some(name) = name.and_then(|name| HeaderValue::from_str(name).ok()) {
            headers.insert(HeaderName::from_static("mcp-name"), name);
        }
    }
    if let Some(traceparent) = crate::exchange::current_traceparent()
        && let Ok(value) = HeaderValue::from_str(&traceparent)
    {
        headers.insert(HeaderName::from_static("traceparent"), value);
    }
    if let Some(token) = crate::exchange::bearer_token(auth, context).await? {
        let mut value = HeaderValue::from_str(&format!("Bearer {token}"))
            .map_err(|_| crate::exchange::LocalHttpError::InvalidHeader("authorization".into()))?;
        value.set_sensitive(true);
        headers.insert(http::header::AUTHORIZATION, value);
    }
    Ok(headers)
}

/// How many headers a call adds to its route's: `Mcp-Method`, `Mcp-Name`, `traceparent` and
/// `Authorization`.
const PER_CALL_HEADERS: usize = 4;

/// Whether a tool name can travel in an `Mcp-Name` header as it is (rmcp encodes others).
pub(crate) fn plain_header_value(name: &str) -> bool {
    name.bytes()
        .all(|byte| byte.is_ascii_graphic() || byte == b' ')
}

/// The body of `notifications/cancelled` for a raw call.
pub(crate) fn cancel_body(id: u64) -> String {
    format!(
        r#"{{"jsonrpc":"2.0","method":"notifications/cancelled","params":{{"requestId":{id},"reason":"the caller cancelled the request"}}}}"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_body_is_valid_json_with_escaped_name_and_meta() {
        let body = call_body(
            RAW_ID_BASE + 3,
            "say \"hi\"",
            r#"{"a":1}"#,
            Some(r#"{"k":true}"#),
            None,
            None,
        );
        let value: serde_json::Value = serde_json::from_str(&body).expect("valid JSON");
        assert_eq!(value["id"], RAW_ID_BASE + 3);
        assert_eq!(value["params"]["name"], "say \"hi\"");
        assert_eq!(value["params"]["arguments"]["a"], 1);
        assert_eq!(value["params"]["_meta"]["k"], true);
        for meta in [Some(r#"{"k":true}"#), None] {
            let body = call_body(9, "t", "{}", meta, Some(r#""client-7""#), None);
            let value: serde_json::Value = serde_json::from_str(&body).expect("valid JSON");
            assert_eq!(
                value["params"]["_meta"]["progressToken"], "client-7",
                "{body}"
            );
            assert_eq!(value["params"]["_meta"]["k"].as_bool(), meta.map(|_| true));
        }
        // A stateless client's context replaces the gateway's, and its answers ride along.
        let call = StatelessCall {
            client_meta: r#"{"who":"client"}"#,
            input_responses: Some(r#"{"confirm":{"action":"accept"}}"#),
            request_state: Some(r#""s1""#),
            answers_requests: true,
        };
        let body = call_body(
            4,
            "t",
            "{}",
            Some(r#"{"who":"gateway"}"#),
            Some("4"),
            Some(&call),
        );
        let value: serde_json::Value = serde_json::from_str(&body).expect("valid JSON");
        assert_eq!(value["params"]["_meta"]["who"], "client");
        assert_eq!(value["params"]["_meta"]["progressToken"], 4);
        assert_eq!(
            value["params"]["inputResponses"]["confirm"]["action"],
            "accept"
        );
        assert_eq!(value["params"]["requestState"], "s1");
        let cancel: serde_json::Value = serde_json::from_str(&cancel_body(7)).expect("valid JSON");
        assert_eq!(cancel["params"]["requestId"], 7);
    }

    #[test]
    fn messages_are_sorted_by_id_and_kind() {
        let answer = classify(
            r#"{"jsonrpc":"2.0","id":5,"result":{"content":[],"isError":true}}"#,
            5,
            false,
        )
        .expect("parses");
        match answer {
            Message::Answer(Ok((result, is_error))) => {
                assert!(is_error);
                assert_eq!(result.get(), r#"{"content":[],"isError":true}"#);
            }
            _ => panic!("not the answer"),
        }
        let error = classify(
            r#"{"jsonrpc":"2.0","id":5,"error":{"code":-32602,"message":"bad","data":[1]}}"#,
            5,
            false,
        )
        .expect("parses");
        assert!(
            matches!(error, Message::Answer(Err(RpcError { code: -32602, ref message, ref data }))
            if message == "bad" && data == &Some(serde_json::json!([1])))
        );
        let other = classify(r#"{"jsonrpc":"2.0","id":6,"result":{}}"#, 5, false).expect("parses");
        assert!(matches!(other, Message::Other));
        let note = classify(
            r#"{"jsonrpc":"2.0","method":"notifications/message","params":{}}"#,
            5,
            false,
        )
        .expect("parses");
        assert!(matches!(note, Message::Notification(_)));
        let request = classify(
            r#"{"jsonrpc":"2.0","id":1,"method":"roots/list"}"#,
            5,
            false,
        )
        .expect("parses");
        assert!(matches!(request, Message::Other));
        let progress = classify(
            r#"{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":5,"progress":2,"total":4}}"#,
            5,
            false,
        )
        .expect("parses");
        assert!(
            matches!(progress, Message::Progress(ref p) if p.progress == 2.0 && p.total == Some(4.0))
        );
        let ours = Expected {
            id: 99,
            progress_token: Some(r#""client-7""#),
        };
        let theirs = classify_expected(
            r#"{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":"client-7","progress":1}}"#,
            ours,
            false,
        )
        .expect("parses");
        assert!(
            matches!(theirs, Message::Progress(_)),
            "the client's own token"
        );
        let foreign = classify(
            r#"{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":6,"progress":2}}"#,
            5,
            false,
        )
        .expect("parses");
        assert!(matches!(foreign, Message::Other));
        let incomplete = classify(
            r#"{"jsonrpc":"2.0","id":5,"result":{"resultType":"input_required","inputRequests":{}}}"#,
            5,
            false,
        )
        .expect("parses");
        assert!(matches!(incomplete, Message::Incomplete));
        let passed = classify(
            r#"{"jsonrpc":"2.0","id":5,"result":{"resultType":"input_required","inputRequests":{}}}"#,
            5,
            true,
        )
        .expect("parses");
        assert!(matches!(passed, Message::Answer(Ok(_))));
        // A session-era client gets a complete result as rmcp's server would send it to one:
        // without `resultType`. A stateless client gets it whole.
        let complete_result = |pass_incomplete| {
            let answer = classify(
                r#"{"jsonrpc":"2.0","id":5,"result":{"resultType":"complete","content":[]}}"#,
                5,
                pass_incomplete,
            )
            .expect("parses");
            let Message::Answer(Ok((result, false))) = answer else {
                panic!("a complete answer");
            };
            result.get().to_string()
        };
        assert_eq!(complete_result(false), r#"{"content":[]}"#);
        assert_eq!(
            complete_result(true),
            r#"{"resultType":"complete","content":[]}"#
        );
        // A session-era upstream's result has none: a stateless client is told it is complete.
        let session_era = |result: &str| {
            let text = format!(r#"{{"jsonrpc":"2.0","id":5,"result":{result}}}"#);
            let Message::Answer(Ok((result, _))) = classify(&text, 5, true).expect("parses") else {
                panic!("an answer");
            };
            serde_json::from_str::<serde_json::Value>(result.get()).expect("JSON")
        };
        assert_eq!(
            session_era(r#"{"content":[]}"#),
            serde_json::json!({"resultType": "complete", "content": []})
        );
        assert_eq!(
            session_era(" { } "),
            serde_json::json!({"resultType": "complete"})
        );
    }

    #[test]
    fn per_request_headers_are_not_kept() {
        for name in ["mcp-method", "mcp-name", "mcp-param-region", "traceparent"] {
            assert!(
                is_per_request_header(&HeaderName::from_static(name)),
                "{name}"
            );
        }
        assert!(!is_per_request_header(&HeaderName::from_static(
            "mcp-protocol-version"
        )));
    }
}
