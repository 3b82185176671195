//! The edge of every MCP endpoint: what is checked before a request reaches its handler, and
//! how refusals read. A request whose `Origin` is not allowed is refused with 403 (DNS
//! rebinding); the caller is authenticated; a `POST` must carry one JSON-RPC message whose id, if
//! any, is a string or an integer (`crate::mcp_message`). Then the policy decides the request
//! (`switchboard_gateway::policy`): a refusal is answered here, and the decision and the message
//! ride on in the request's extensions for the handler and the raw path. rmcp's own refusals,
//! which are plain text, are reshaped into JSON-RPC errors with a JSON body, and its answer to a
//! session's `DELETE` is 204.

use axum::{
    body::Body,
    extract::{FromRequestParts, Request, State},
    http::{HeaderMap, HeaderValue, Method, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use switchboard_gateway::policy::{self, Decision, Endpoint, Verdict};

use crate::{
    AppState,
    error::{ApiError, jsonrpc_refusal},
    mcp_message::{INVALID_REQUEST, McpMessage},
    raw_path::RawAnswer,
};

const INTERNAL_ERROR: i32 = -32603;

/// The browser origins allowed to reach the MCP endpoints: the public URL's, loopback ones on any
/// port (a page there is the user's own), and those configured with `--allowed-origin`. Clients
/// that are not browsers send no `Origin` and are not affected.
#[derive(Debug, Clone, Default)]
pub struct AllowedOrigins {
    /// ASCII serializations (`https://gateway.example.com`).
    exact: Vec<String>,
}

impl AllowedOrigins {
    pub fn new<'a>(origins: impl IntoIterator<Item = &'a str>) -> Self {
        let exact = origins
            .into_iter()
            .filter_map(|origin| url::Url::parse(origin).ok())
            .map(|url| url.origin().ascii_serialization())
            .collect();
        Self { exact }
    }

    /// Whether a request with these headers may go on: no `Origin`, or an allowed one.
    pub fn admit(&self, headers: &HeaderMap) -> bool {
        headers
            .get(header::ORIGIN)
            .is_none_or(|origin| self.allows(origin))
    }

    fn allows(&self, origin: &HeaderValue) -> bool {
        let Some(url) = origin
            .to_str()
            .ok()
            .and_then(|text| url::Url::parse(text).ok())
        else {
            return false;
        };
        if !matches!(url.scheme(), "http" | "https") {
            return false;
        }
        let loopback = match url.host() {
            Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            None => false,
        };
        loopback || self.exact.contains(&url.origin().ascii_serialization())
    }
}

/// The header of an `initialize` answer whose session only this replica can serve: a load
/// balancer keeps that session's requests on it (see `deploy/haproxy.cfg`).
pub(crate) const PINNED: &str = "x-switchboard-pinned";

/// The guard of every MCP route (see the module's doc), which also counts its requests
/// (`crate::counted`, the other routes' layer).
pub(crate) async fn guard(State(state): State<AppState>, request: Request, next: Next) -> Response {
    crate::counted(&state, request, |request| admit(&state, request, next)).await
}

async fn admit(state: &AppState, request: Request, next: Next) -> Response {
    if !state.origins.admit(request.headers()) {
        return jsonrpc_refusal(
            StatusCode::FORBIDDEN,
            INVALID_REQUEST,
            "the request's Origin is not allowed",
        );
    }
    let (mut parts, body) = request.into_parts();
    let caller = crate::auth::authenticate(&parts, state);
    let deleting = parts.method == Method::DELETE;
    let stateless = is_stateless(&parts.headers);
    let (body, message) = if parts.method == Method::POST {
        let bytes = match axum::body::to_bytes(body, crate::MAX_BODY_BYTES).await {
            Ok(bytes) => bytes,
            Err(_) => {
                return jsonrpc_refusal(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    INVALID_REQUEST,
                    "the request body is too large or was cut off",
                );
            }
        };
        match McpMessage::read(&bytes) {
            Ok(message) => (Body::from(bytes), Some(message)),
            Err((code, message)) => {
                return jsonrpc_refusal(StatusCode::BAD_REQUEST, code, &message);
            }
        }
    } else {
        (body, None)
    };
    let server = axum::extract::RawPathParams::from_request_parts(&mut parts, state)
        .await
        .ok()
        .and_then(|params| {
            params
                .iter()
                .find_map(|(key, value)| (key == "server").then(|| value.to_string()))
        });
    // A session opened on another replica is read from the store before the policy judges it;
    // not for a caller without a credential of ours, whom the policy refuses whatever the
    // session, so that made-up ids cost nobody a store read.
    if let Some(session) = session_of(&parts).filter(|_| caller.identified()) {
        state.gateway.session_directory().find(session).await;
    }
    let decision = match decide(state, &parts, caller, server.as_deref(), message.as_ref()).await {
        Ok(decision) => decision,
        Err(refused) => return refused,
    };
    let opening = message
        .as_ref()
        .is_some_and(|message| message.method.as_deref() == Some("initialize"));
    // Only a session that opens needs its owner written down.
    let owner = opening.then(|| decision.caller.owner()).flatten();
    let session = session_of(&parts).map(str::to_string);
    parts.extensions.insert(decision);
    if let Some(message) = message {
        parts.extensions.insert(message);
    }
    let mut response = next.run(Request::from_parts(parts, body)).await;
    let directory = state.gateway.session_directory();
    let done = response.status().is_success();
    let opened = crate::sessions::session_id(response.headers())
        .filter(|_| opening && done)
        .map(str::to_string);
    if let (Some(opened), Some(owner)) = (opened, &owner) {
        // A session that cannot move asks the load balancer to send it here (deploy/).
        if directory.opened(&opened, owner).await {
            response
                .headers_mut()
                .insert(PINNED, HeaderValue::from_static("1"));
        }
    } else if deleting
        && done
        && let Some(session) = &session
    {
        directory.end(session).await;
    }
    // rmcp ends a session with 202, which clients (the Python SDK) take for a failed termination:
    // the session is gone, and nothing more will come.
    if deleting && response.status() == StatusCode::ACCEPTED {
        *response.status_mut() = StatusCode::NO_CONTENT;
    }
    let response = reshape(response).await;
    if stateless {
        return status_of_error(response).await;
    }
    response
}

/// The policy's decision on a request, or the answer that refuses it: an HTTP error for the
/// endpoint, or a JSON-RPC error for the one message.
async fn decide(
    state: &AppState,
    parts: &axum::http::request::Parts,
    caller: policy::Caller,
    server: Option<&str>,
    message: Option<&McpMessage>,
) -> Result<Decision, Response> {
    let endpoint = match (server, parts.uri.path()) {
        (Some(server), _) => Endpoint::Server(server),
        (None, "/mcp/admin") => Endpoint::Admin,
        (None, "/mcp/user") => Endpoint::User,
        (None, _) => Endpoint::Aggregate,
    };
    let arrival = crate::raw_path::arrival(&parts.headers, message, state.mcp.allowed_hosts());
    let carriable = message.is_some_and(|message| crate::raw_path::carriable(message, arrival));
    let request = policy::Request {
        caller,
        endpoint,
        asked: message.map(|message| message.asked(carriable)),
        arrival,
        session: session_of(parts),
        now: switchboard_auth::secret::now_ms(),
    };
    let decision = state
        .gateway
        .decide(request, state.auth.revocations())
        .await
        .map_err(|error| ApiError::from(error).into_response())?;
    let Verdict::Refuse(refusal) = &decision.verdict else {
        // A tool call's own audit row names who called; anything else with the admin token is
        // recorded here.
        if !matches!(decision.target, policy::Target::Tool(_)) {
            crate::auth::audit_break_glass(state, parts, &decision.caller);
        }
        return Ok(decision);
    };
    crate::auth::audit_break_glass(state, parts, &decision.caller);
    let error = refusal.error();
    Err(match message.and_then(|message| message.id.as_deref()) {
        Some(id) if refusal.of_message => {
            let body = crate::error::jsonrpc_error(Some(id), &error.into_jsonrpc());
            (
                [(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                )],
                body,
            )
                .into_response()
        }
        _ => {
            let answer = ApiError::from(error);
            if !refusal.of_message {
                crate::auth::audit_refusal(state, parts, &decision.caller, &answer);
            }
            // As rmcp answers a session it does not know, which makes SDK clients open a new one.
            if refusal.reason == policy::Reason::UnknownSession {
                return Err(jsonrpc_refusal(
                    StatusCode::NOT_FOUND,
                    INVALID_REQUEST,
                    "Session not found; open a new one",
                ));
            }
            answer.into_response()
        }
    })
}

/// The session a request names: its `Mcp-Session-Id`, or the legacy SSE transport's
/// `sessionId` query parameter.
fn session_of(parts: &axum::http::request::Parts) -> Option<&str> {
    crate::sessions::session_id(&parts.headers).or_else(|| {
        parts.uri.query().and_then(|query| {
            query
                .split('&')
                .find_map(|pair| pair.strip_prefix("sessionId="))
        })
    })
}

/// Whether a request is of a stateless revision (2026-07-28 or later): revisions are dates, and
/// compare as their text does.
fn is_stateless(headers: &HeaderMap) -> bool {
    headers
        .get("mcp-protocol-version")
        .and_then(|value| value.to_str().ok())
        .is_some_and(|version| version.len() == 10 && version >= "2026-07-28")
}

/// The HTTP status the stateless revisions give a JSON-RPC error: `400` for a header mismatch, a
/// missing client capability or an unsupported version, `404` for a method not found.
fn error_status(code: i64) -> Option<StatusCode> {
    match code {
        -32022..=-32020 => Some(StatusCode::BAD_REQUEST),
        -32601 => Some(StatusCode::NOT_FOUND),
        _ => None,
    }
}

/// A stateless client's JSON answer that is one of those errors gets its status, whoever wrote
/// it: an upstream's error crosses the gateway whole, and so does the status it calls for.
async fn status_of_error(mut response: Response) -> Response {
    #[derive(serde::Deserialize)]
    struct Answer {
        error: Option<Code>,
    }
    #[derive(serde::Deserialize)]
    struct Code {
        code: i64,
    }
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/json"));
    if response.status() != StatusCode::OK || !is_json {
        return response;
    }
    // The raw path says what it answered; only rmcp's answers are read for it.
    if let Some(RawAnswer { error_code }) = response.extensions().get::<RawAnswer>().copied() {
        if let Some(status) = error_code.and_then(error_status) {
            *response.status_mut() = status;
        }
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, usize::MAX).await else {
        return jsonrpc_refusal(
            StatusCode::BAD_GATEWAY,
            INTERNAL_ERROR,
            "the answer could not be read",
        );
    };
    let code = serde_json::from_slice::<Answer>(&bytes)
        .ok()
        .and_then(|answer| answer.error)
        .and_then(|error| error_status(error.code));
    if let Some(status) = code {
        parts.status = status;
    }
    Response::from_parts(parts, Body::from(bytes))
}

/// A refusal written as plain text (rmcp's) becomes a JSON-RPC error with the same status; one
/// that says the body was not a JSON-RPC message becomes a 400.
async fn reshape(response: Response) -> Response {
    let is_json_or_stream = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| {
            value.starts_with("application/json") || value.starts_with("text/event-stream")
        });
    if response.status().as_u16() < 400 || is_json_or_stream {
        return response;
    }
    let status = response.status();
    let text = axum::body::to_bytes(response.into_body(), 64 * 1024)
        .await
        .map(|bytes| String::from_utf8_lossy(&bytes).trim().to_string())
        .unwrap_or_default();
    let (status, message) = if text.starts_with("fail to deserialize") {
        (
            StatusCode::BAD_REQUEST,
            "the body is not a JSON-RPC message".to_string(),
        )
    } else if text.is_empty() {
        let reason = status.canonical_reason().unwrap_or("refused");
        (status, reason.to_string())
    } else {
        (status, text)
    };
    jsonrpc_refusal(status, INVALID_REQUEST, &message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stateless_error_gets_the_status_its_revision_gives_it() {
        assert_eq!(error_status(-32021), Some(StatusCode::BAD_REQUEST));
        assert_eq!(error_status(-32020), Some(StatusCode::BAD_REQUEST));
        assert_eq!(error_status(-32022), Some(StatusCode::BAD_REQUEST));
        assert_eq!(error_status(-32601), Some(StatusCode::NOT_FOUND));
        assert_eq!(error_status(-32602), None);
        assert_eq!(error_status(-32019), None);
        let mut headers = HeaderMap::new();
        assert!(!is_stateless(&headers));
        for (version, stateless) in [
            ("2025-11-25", false),
            ("2026-07-28", true),
            ("2027-01-01", true),
            ("2026-07-28x", false),
        ] {
            headers.insert("mcp-protocol-version", HeaderValue::from_static(version));
            assert_eq!(is_stateless(&headers), stateless, "{version}");
        }
    }

    #[test]
    fn origins_allowed_are_loopback_and_the_configured_ones() {
        let origins = AllowedOrigins::new(["https://gw.example.com", "http://console.test:8080"]);
        let admit = |origin: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(
                header::ORIGIN,
                HeaderValue::from_str(origin).expect("value"),
            );
            origins.admit(&headers)
        };
        assert!(origins.admit(&HeaderMap::new()));
        for ok in [
            "https://gw.example.com",
            "https://gw.example.com:443",
            "http://console.test:8080",
            "http://localhost:6274",
            "http://127.0.0.1:3000",
            "http://[::1]:8080",
        ] {
            assert!(admit(ok), "{ok}");
        }
        for bad in [
            "https://evil.test",
            "http://gw.example.com",
            "http://console.test",
            "null",
            "file://",
            "http://localhost.evil.test",
        ] {
            assert!(!admit(bad), "{bad}");
        }
    }
}
