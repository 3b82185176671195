//! What every exchange with an HTTP upstream shares, whichever client makes it (rmcp's, through
//! `http`; the legacy SSE transport; the raw client): the private `_meta` keys that carry a call's
//! context and trace to the HTTP layer (taken out before sending), the bearer token, the
//! configured headers, the errors raised on our side, and how an answer says its session is gone.

use std::collections::HashMap;

use http::{HeaderName, HeaderValue};
use rmcp::model::{ClientJsonRpcMessage, GetMeta};

use crate::config::{CallContext, UpstreamAuth};

/// The `_meta` key that carries a call's context from [`crate::Upstream`] to the HTTP layer. It is
/// stripped before the request is sent, so the upstream never sees it.
pub(crate) const CONTEXT_META_KEY: &str = "io.switchboard/call-context";
/// The `_meta` key that carries the caller's W3C `traceparent` to the HTTP layer, which sends it
/// as a header instead (the request leaves from rmcp's worker task, outside the caller's span).
pub(crate) const TRACEPARENT_META_KEY: &str = "io.switchboard/traceparent";

/// The `traceparent` of the current span, when it belongs to a sampled trace.
pub fn current_traceparent() -> Option<String> {
    use opentelemetry::trace::TraceContextExt as _;
    use tracing_opentelemetry::OpenTelemetrySpanExt as _;
    let context = tracing::Span::current().context();
    let span = context.span();
    let ids = span.span_context();
    ids.is_valid().then(|| {
        format!(
            "00-{}-{}-{:02x}",
            ids.trace_id(),
            ids.span_id(),
            ids.trace_flags().to_u8()
        )
    })
}

/// Removes the private `traceparent` key from a message, returning its value.
pub(crate) fn take_traceparent(message: &mut ClientJsonRpcMessage) -> Option<String> {
    if let ClientJsonRpcMessage::Request(request) = message {
        let meta = request.request.get_meta_mut();
        if let Some(serde_json::Value::String(value)) = meta.remove(TRACEPARENT_META_KEY) {
            return Some(value);
        }
    }
    None
}

/// An error raised on our side of an HTTP exchange.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LocalHttpError {
    #[error("the token callback failed: {0}")]
    Token(String),
    #[error("header `{0}` is not a valid HTTP header")]
    InvalidHeader(String),
}

/// Renders configured headers into a header map, refusing any that are not valid HTTP.
pub(crate) fn header_map(
    headers: &[(String, String)],
) -> Result<HashMap<HeaderName, HeaderValue>, LocalHttpError> {
    headers
        .iter()
        .map(|(name, value)| {
            let name = HeaderName::try_from(name.as_str())
                .map_err(|_| LocalHttpError::InvalidHeader(name.clone()))?;
            let mut value = HeaderValue::try_from(value.as_str())
                .map_err(|_| LocalHttpError::InvalidHeader(name.to_string()))?;
            value.set_sensitive(true);
            Ok((name, value))
        })
        .collect()
}

/// Takes the call context out of a request's `_meta`, leaving the message as the upstream should
/// see it.
pub(crate) fn take_call_context(message: &mut ClientJsonRpcMessage) -> CallContext {
    if let ClientJsonRpcMessage::Request(request) = message {
        let meta = request.request.get_meta_mut();
        if let Some(serde_json::Value::Object(map)) = meta.remove(CONTEXT_META_KEY) {
            return CallContext(map);
        }
    }
    CallContext::default()
}

/// Resolves the bearer token for a request, if the upstream uses one.
pub(crate) async fn bearer_token(
    auth: &UpstreamAuth,
    context: &CallContext,
) -> Result<Option<String>, LocalHttpError> {
    match auth {
        UpstreamAuth::None => Ok(None),
        UpstreamAuth::Bearer(provider) => provider
            .token(context)
            .await
            .map(Some)
            .map_err(LocalHttpError::Token),
    }
}

/// Whether an answer to a request that carried a session id says that the session is gone. Servers
/// word it differently; these are the phrasings of the SDKs we meet.
pub(crate) fn says_session_is_gone(message: &str) -> bool {
    let lower = message.to_ascii_lowercase();
    [
        "session not found",
        "no valid session",
        "unknown session",
        "invalid session",
        "session expired",
        "not initialized",
    ]
    .iter()
    .any(|needle| lower.contains(needle))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_gone_phrasings() {
        let cases = [
            ("Bad Request: No valid session ID provided", true),
            ("Bad Request: Server not initialized", true),
            ("Session not found", true),
            ("Invalid params: missing field `a`", false),
            ("Tool not found", false),
        ];
        for (message, expected) in cases {
            assert_eq!(says_session_is_gone(message), expected, "{message}");
        }
    }
}
