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
    model::{ClientJsonRpcMessage, ServerJsonRpcMessage},
    transport::streamable_http_client::{
        SseError, StreamableHttpClient, StreamableHttpError, StreamableHttpPostResponse,
    },
};
use sse_stream::Sse;

use crate::{
    config::{CallContext, UpstreamAuth},
    exchange::{
        LocalHttpError, bearer_token, says_session_is_gone, take_call_context, take_traceparent,
    },
};

/// One pooled, keep-alive HTTP client for every upstream of the process, with TCP_NODELAY so that a
/// small JSON-RPC POST never waits on Nagle's algorithm. Names resolve through
/// [`crate::net::GuardedResolver`], so no connection reaches a forbidden address; redirects are
/// not followed.
pub fn shared_http_client() -> reqwest::Client {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    CLIENT
        .get_or_init(|| {
            crate::net::install_crypto_provider();
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
