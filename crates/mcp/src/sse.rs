//! The legacy HTTP+SSE transport (protocol 2024-11-05): one long-lived GET stream that first names
//! an `endpoint`, then carries every server message; each client message is a POST to that endpoint.
//!
//! Written by hand because rmcp removed its client for this transport, and no maintained crate has
//! one.

use std::{collections::HashMap, sync::Arc, time::Duration};

use futures::StreamExt;
use http::{HeaderName, HeaderValue, header};
use rmcp::{
    RoleClient,
    model::{ClientJsonRpcMessage, ServerJsonRpcMessage},
    service::{RxJsonRpcMessage, TxJsonRpcMessage},
    transport::Transport,
};
use tokio::sync::mpsc;
use url::Url;

use crate::{
    config::UpstreamAuth,
    exchange::{LocalHttpError, bearer_token, take_call_context, take_traceparent},
};

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SseError {
    #[error("the SSE stream answered HTTP {0}")]
    Status(u16),
    #[error("the SSE stream is not `text/event-stream`")]
    NotEventStream,
    #[error("no `endpoint` event arrived within {0:?}")]
    NoEndpoint(Duration),
    #[error("the SSE stream ended before its `endpoint` event")]
    EndedEarly,
    #[error("the `endpoint` event names another origin, which is refused")]
    ForeignEndpoint,
    #[error("the `endpoint` event is not a valid URL")]
    BadEndpoint,
    #[error("the message POST answered HTTP {0}")]
    PostStatus(u16),
    /// The server no longer knows the session (it restarted, or expired it).
    #[error("the server no longer knows this SSE session")]
    SessionGone,
    #[error("the SSE stream was closed")]
    Closed,
    #[error(transparent)]
    Local(#[from] LocalHttpError),
    #[error(transparent)]
    Forbidden(#[from] crate::net::ForbiddenAddress),
    #[error(transparent)]
    Http(#[from] reqwest::Error),
    #[error(transparent)]
    Json(#[from] serde_json::Error),
}

impl SseError {
    /// Whether this failure means the URL does not serve the legacy transport at all.
    pub fn is_not_sse(&self) -> bool {
        matches!(
            self,
            Self::Status(_) | Self::NotEventStream | Self::NoEndpoint(_) | Self::EndedEarly
        )
    }
}

/// A connected legacy SSE session.
#[derive(Debug)]
pub struct LegacySseTransport {
    /// Shared with every send future, which must be `'static`.
    poster: Arc<Poster>,
    /// Server messages read from the stream by `reader`.
    incoming: mpsc::Receiver<ServerJsonRpcMessage>,
    /// The stream reader; aborted when the transport closes or is dropped.
    reader: tokio::task::JoinHandle<()>,
}

#[derive(Debug)]
struct Poster {
    client: reqwest::Client,
    endpoint: Url,
    headers: HashMap<HeaderName, HeaderValue>,
    auth: UpstreamAuth,
}

/// The cap on one event of the stream, and the flag set when an event went past it (the stream
/// then ends, and with it the session).
#[derive(Debug, Clone)]
pub struct EventCap {
    pub max_bytes: usize,
    pub exceeded: Arc<std::sync::atomic::AtomicBool>,
}

/// Why the event stream's bytes stopped.
#[derive(Debug, thiserror::Error)]
enum StreamError {
    #[error(transparent)]
    Http(#[from] reqwest::Error),
    #[error("an event exceeded the cap of {0} bytes")]
    TooLarge(usize),
}

/// The stream's bytes, ended with an error once one event grows past the cap, so that no event is
/// held whole past it. An event ends at a blank line; `\r` counts as no content.
fn bounded<S>(
    bytes: S,
    cap: EventCap,
) -> impl futures::Stream<Item = Result<bytes::Bytes, StreamError>>
where
    S: futures::Stream<Item = reqwest::Result<bytes::Bytes>>,
{
    let (mut pending, mut after_newline) = (0usize, false);
    bytes.map(move |chunk| {
        let chunk = chunk?;
        for byte in chunk.iter() {
            match byte {
                b'\n' if after_newline => pending = 0,
                b'\n' => after_newline = true,
                b'\r' => {}
                _ => {
                    after_newline = false;
                    pending += 1;
                }
            }
            if pending > cap.max_bytes {
                cap.exceeded
                    .store(true, std::sync::atomic::Ordering::Relaxed);
                return Err(StreamError::TooLarge(cap.max_bytes));
            }
        }
        Ok(chunk)
    })
}

impl LegacySseTransport {
    /// Opens the GET stream and waits for its `endpoint` event.
    pub async fn connect(
        client: reqwest::Client,
        url: &str,
        headers: HashMap<HeaderName, HeaderValue>,
        auth: UpstreamAuth,
        endpoint_timeout: Duration,
        cap: EventCap,
    ) -> Result<Self, SseError> {
        let base = Url::parse(url).map_err(|_| SseError::BadEndpoint)?;
        // The endpoint stays on this origin, so this check covers the POSTs too.
        crate::net::check_host(base.host_str().unwrap_or_default())?;
        let mut request = client
            .get(base.clone())
            .header(header::ACCEPT, "text/event-stream");
        for (name, value) in &headers {
            request = request.header(name, value);
        }
        if let Some(token) = bearer_token(&auth, &Default::default()).await? {
            request = request.bearer_auth(token);
        }
        let response = request.send().await?;
        if !response.status().is_success() {
            return Err(SseError::Status(response.status().as_u16()));
        }
        let is_event_stream = response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/event-stream"));
        if !is_event_stream {
            return Err(SseError::NotEventStream);
        }
        let mut events =
            sse_stream::SseStream::from_bytes_stream(bounded(response.bytes_stream(), cap));
        let endpoint = tokio::time::timeout(endpoint_timeout, async {
            while let Some(event) = events.next().await {
                let Ok(event) = event else {
                    return Err(SseError::EndedEarly);
                };
                if event.event.as_deref() == Some("endpoint") {
                    let data = event.data.unwrap_or_default();
                    return resolve_endpoint(&base, data.trim());
                }
            }
            Err(SseError::EndedEarly)
        })
        .await
        .map_err(|_| SseError::NoEndpoint(endpoint_timeout))??;

        let (sender, incoming) = mpsc::channel(64);
        let reader = tokio::spawn(async move {
            while let Some(Ok(event)) = events.next().await {
                if !matches!(event.event.as_deref(), None | Some("message")) {
                    continue;
                }
                let Some(data) = event.data else { continue };
                match serde_json::from_str::<ServerJsonRpcMessage>(&data) {
                    Ok(message) => {
                        if sender.send(message).await.is_err() {
                            break;
                        }
                    }
                    Err(error) => {
                        tracing::warn!(%error, "skipping an SSE message that is not JSON-RPC")
                    }
                }
            }
        });
        Ok(Self {
            poster: Arc::new(Poster {
                client,
                endpoint,
                headers,
                auth,
            }),
            incoming,
            reader,
        })
    }
}

/// The endpoint may be relative; it must stay on the stream's origin, so that a hostile stream
/// cannot make us POST our credentials elsewhere.
fn resolve_endpoint(base: &Url, data: &str) -> Result<Url, SseError> {
    let endpoint = base.join(data).map_err(|_| SseError::BadEndpoint)?;
    if endpoint.origin() != base.origin() {
        return Err(SseError::ForeignEndpoint);
    }
    Ok(endpoint)
}

impl Poster {
    async fn post(&self, mut message: ClientJsonRpcMessage) -> Result<(), SseError> {
        let context = take_call_context(&mut message);
        let traceparent = take_traceparent(&mut message);
        let mut request = self.client.post(self.endpoint.clone()).json(&message);
        if let Some(traceparent) = traceparent {
            request = request.header("traceparent", traceparent);
        }
        for (name, value) in &self.headers {
            request = request.header(name, value);
        }
        if let Some(token) = bearer_token(&self.auth, &context).await? {
            request = request.bearer_auth(token);
        }
        // A notification or an answer may go twice without harm, a request may not: when sending
        // fails (seen once in CI: the POST of `notifications/initialized` to the Python SDK's
        // server, on a kept-alive connection), only the former is tried once more.
        let retry = match &message {
            ClientJsonRpcMessage::Request(_) => None,
            _ => request.try_clone(),
        };
        let response = match (request.send().await, retry) {
            (Ok(response), _) => response,
            (Err(error), Some(retry)) => {
                // The URL may carry credentials: it stays out of the log.
                let error = error.without_url();
                tracing::debug!(%error, "posting to a legacy SSE endpoint failed; trying once more");
                retry.send().await?
            }
            (Err(error), None) => return Err(error.into()),
        };
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        if status == http::StatusCode::NOT_FOUND {
            return Err(SseError::SessionGone);
        }
        let body = response.text().await.unwrap_or_default();
        if status == http::StatusCode::BAD_REQUEST && crate::exchange::says_session_is_gone(&body) {
            return Err(SseError::SessionGone);
        }
        Err(SseError::PostStatus(status.as_u16()))
    }
}

impl Transport<RoleClient> for LegacySseTransport {
    type Error = SseError;

    fn send(
        &mut self,
        item: TxJsonRpcMessage<RoleClient>,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send + 'static {
        let poster = self.poster.clone();
        async move { poster.post(item).await }
    }

    async fn receive(&mut self) -> Option<RxJsonRpcMessage<RoleClient>> {
        self.incoming.recv().await
    }

    async fn close(&mut self) -> Result<(), Self::Error> {
        self.reader.abort();
        self.incoming.close();
        Ok(())
    }
}

impl Drop for LegacySseTransport {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_resolution() {
        let base = Url::parse("http://127.0.0.1:3001/sse").expect("valid");
        let cases: &[(&str, Option<&str>)] = &[
            (
                "/message?sessionId=abc",
                Some("http://127.0.0.1:3001/message?sessionId=abc"),
            ),
            (
                "messages/?session_id=1",
                Some("http://127.0.0.1:3001/messages/?session_id=1"),
            ),
            ("http://127.0.0.1:3001/m", Some("http://127.0.0.1:3001/m")),
            ("http://evil.test/m", None),
            ("http://127.0.0.1:9999/m", None),
        ];
        for (data, expected) in cases {
            let got = resolve_endpoint(&base, data).ok().map(|u| u.to_string());
            assert_eq!(got.as_deref(), *expected, "{data}");
        }
    }
}
