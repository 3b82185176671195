//! The HTTP client under rmcp's Streamable HTTP transport.
//!
//! It wraps reqwest's rmcp client for two things rmcp does not do:
//! - a 400 that says the session is unknown or not initialized (server-everything's answer after a
//!   DELETE) counts as an expired session, like a 404, so rmcp re-initializes once and resends;
//! - the bearer token is computed per request from the call's context, carried to here in a private
//!   `_meta` key that is removed before the request leaves.

use std::{
    collections::HashMap,
    sync::{Arc, OnceLock},
    time::Duration,
};

use futures::stream::BoxStream;
use http::{HeaderName, HeaderValue};
use rmcp::{
    model::{ClientJsonRpcMessage, GetMeta, ServerJsonRpcMessage},
    transport::streamable_http_client::{
        SseError, StreamableHttpClient, StreamableHttpError, StreamableHttpPostResponse,
    },
};
use sse_stream::Sse;

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

/// One pooled, keep-alive HTTP client for every upstream of the process, with TCP_NODELAY so that a
/// small JSON-RPC POST never waits on Nagle's algorithm. Names resolve through
/// [`crate::net::GuardedResolver`], so no connection reaches a forbidden address; redirects are
/// not followed.
pub fn shared_http_client() -> reqwest::Client {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    CLIENT
        .get_or_init(|| {
            install_crypto_provider();
            reqwest::Client::builder()
                .tcp_nodelay(true)
                .pool_idle_timeout(Duration::from_secs(90))
                .connect_timeout(Duration::from_secs(10))
                .redirect(reqwest::redirect::Policy::none())
                .dns_resolver(crate::net::GuardedResolver)
                .build()
                .unwrap_or_else(|_| reqwest::Client::new())
        })
        .clone()
}

/// rustls needs a process-wide crypto provider; ring is the one we build with.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
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

#[derive(Clone)]
pub(crate) struct SessionAwareClient {
    inner: reqwest::Client,
    auth: UpstreamAuth,
    /// Where raw calls learn how to reach the session rmcp opened.
    route: Arc<crate::raw::RouteCell>,
    /// The cap on one answer. rmcp bounds event-stream events by it, and JSON answers by its own
    /// [`crate::config::MAX_ANSWER_BYTES`]; a JSON answer over a smaller cap is refused here.
    max_answer_bytes: usize,
    /// Set when an event-stream answer goes over the cap, which ends the session in rmcp.
    oversized_answer: Arc<std::sync::atomic::AtomicBool>,
}

impl SessionAwareClient {
    pub(crate) fn new(
        auth: UpstreamAuth,
        route: Arc<crate::raw::RouteCell>,
        max_answer_bytes: usize,
        oversized_answer: Arc<std::sync::atomic::AtomicBool>,
    ) -> Self {
        Self {
            inner: shared_http_client(),
            auth,
            route,
            max_answer_bytes,
            oversized_answer,
        }
    }

    /// Watches an event-stream answer for rmcp's refusal of an event over the cap.
    fn watch_size(&self, answer: StreamableHttpPostResponse) -> StreamableHttpPostResponse {
        use futures::StreamExt as _;
        let StreamableHttpPostResponse::Sse(events, session) = answer else {
            return answer;
        };
        let oversized = self.oversized_answer.clone();
        let events = events.inspect(move |event| {
            // rmcp 3.9's bounded reader says so in its message only; its error type is private.
            if let Err(error) = event
                && error.to_string().contains("exceeded the maximum size")
            {
                oversized.store(true, std::sync::atomic::Ordering::Relaxed);
            }
        });
        StreamableHttpPostResponse::Sse(events.boxed(), session)
    }

    /// Refuses a JSON answer over a cap below rmcp's own (which it has already enforced).
    fn check_size(
        &self,
        answer: &StreamableHttpPostResponse,
    ) -> Result<(), StreamableHttpError<reqwest::Error>> {
        if self.max_answer_bytes >= crate::config::MAX_ANSWER_BYTES {
            return Ok(());
        }
        if let StreamableHttpPostResponse::Json(message, _) = answer
            && serde_json::to_vec(message).map_or(0, |bytes| bytes.len()) > self.max_answer_bytes
        {
            return Err(StreamableHttpError::ResponseBodyTooLarge {
                max_size: self.max_answer_bytes,
            });
        }
        Ok(())
    }
}

fn token_error(error: LocalHttpError) -> StreamableHttpError<reqwest::Error> {
    StreamableHttpError::Io(std::io::Error::other(error))
}

/// Refuses a URL whose host is written as a forbidden address (names are judged when resolved).
fn check_target(uri: &str) -> Result<(), StreamableHttpError<reqwest::Error>> {
    let host = url::Url::parse(uri)
        .ok()
        .and_then(|url| url.host_str().map(str::to_string))
        .unwrap_or_default();
    crate::net::check_host(&host)
        .map_err(|error| StreamableHttpError::Io(std::io::Error::other(error)))
}

impl StreamableHttpClient for SessionAwareClient {
    type Error = reqwest::Error;

    async fn post_message(
        &self,
        uri: Arc<str>,
        message: ClientJsonRpcMessage,
        session_id: Option<Arc<str>>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<StreamableHttpPostResponse, StreamableHttpError<Self::Error>> {
        self.post_message_with_max_sse_event_size(
            uri,
            message,
            session_id,
            auth_header,
            custom_headers,
            usize::MAX,
        )
        .await
    }

    async fn post_message_with_max_sse_event_size(
        &self,
        uri: Arc<str>,
        mut message: ClientJsonRpcMessage,
        session_id: Option<Arc<str>>,
        auth_header: Option<String>,
        mut custom_headers: HashMap<HeaderName, HeaderValue>,
        max_sse_event_size: usize,
    ) -> Result<StreamableHttpPostResponse, StreamableHttpError<Self::Error>> {
        let context = take_call_context(&mut message);
        check_target(&uri)?;
        self.route
            .learn(&uri, session_id.as_ref(), &custom_headers, &message);
        if let Some(traceparent) = take_traceparent(&mut message)
            && let Ok(value) = HeaderValue::from_str(&traceparent)
        {
            custom_headers.insert(HeaderName::from_static("traceparent"), value);
        }
        let token = bearer_token(&self.auth, &context)
            .await
            .map_err(token_error)?;
        let had_session = session_id.is_some();
        let result = self
            .inner
            .post_message_with_max_sse_event_size(
                uri,
                message,
                session_id,
                token.or(auth_header),
                custom_headers,
                max_sse_event_size,
            )
            .await;
        if let Ok(answer) = &result {
            self.check_size(answer)?;
        }
        let result = result.map(|answer| self.watch_size(answer));
        if !had_session {
            return result;
        }
        match result {
            Ok(StreamableHttpPostResponse::Json(ServerJsonRpcMessage::Error(error), _))
                if says_session_is_gone(&error.error.message) =>
            {
                self.route.clear();
                Err(StreamableHttpError::SessionExpired)
            }
            Err(StreamableHttpError::UnexpectedServerResponse(text))
                if text.starts_with("HTTP 400") && says_session_is_gone(&text) =>
            {
                self.route.clear();
                Err(StreamableHttpError::SessionExpired)
            }
            Err(StreamableHttpError::SessionExpired) => {
                self.route.clear();
                Err(StreamableHttpError::SessionExpired)
            }
            other => other,
        }
    }

    async fn delete_session(
        &self,
        uri: Arc<str>,
        session_id: Arc<str>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<(), StreamableHttpError<Self::Error>> {
        check_target(&uri)?;
        let token = bearer_token(&self.auth, &CallContext::default())
            .await
            .map_err(token_error)?;
        self.inner
            .delete_session(uri, session_id, token.or(auth_header), custom_headers)
            .await
    }

    async fn get_stream(
        &self,
        uri: Arc<str>,
        session_id: Option<Arc<str>>,
        last_event_id: Option<String>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<BoxStream<'static, Result<Sse, SseError>>, StreamableHttpError<Self::Error>> {
        self.get_stream_with_max_sse_event_size(
            uri,
            session_id,
            last_event_id,
            auth_header,
            custom_headers,
            usize::MAX,
        )
        .await
    }

    async fn get_stream_with_max_sse_event_size(
        &self,
        uri: Arc<str>,
        session_id: Option<Arc<str>>,
        last_event_id: Option<String>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
        max_sse_event_size: usize,
    ) -> Result<BoxStream<'static, Result<Sse, SseError>>, StreamableHttpError<Self::Error>> {
        check_target(&uri)?;
        let token = bearer_token(&self.auth, &CallContext::default())
            .await
            .map_err(token_error)?;
        self.inner
            .get_stream_with_max_sse_event_size(
                uri,
                session_id,
                last_event_id,
                token.or(auth_header),
                custom_headers,
                max_sse_event_size,
            )
            .await
    }
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
