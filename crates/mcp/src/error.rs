//! The one error type of the connection layer.
//!
//! Messages are written for the person or model reading them: they never carry a URL's credentials, a
//! header value, or the raw text of a lower layer's error (which may hold either).

use std::time::Duration;

use rmcp::transport::streamable_http_client::{HttpStatusError, StreamableHttpError};

pub use crate::redact::sanitize_message;
use crate::{exchange::LocalHttpError, sse::SseError};

/// Whether a failed request may have reached the upstream. Retry rules depend on it: a request that
/// was never sent can always be retried, one that may have arrived only if the tool is idempotent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Delivery {
    /// The request never left: connection refused, connect timeout, DNS failure.
    NotSent,
    /// The request may have been received and acted upon.
    MaybeSent,
    /// The upstream received the request and refused it with an HTTP error status. Never retried:
    /// asking again gets the same answer.
    Rejected,
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UpstreamError {
    /// The configuration cannot work (bad URL, empty command, bearer auth on stdio…).
    #[error("invalid configuration for upstream `{upstream}`: {reason}")]
    Config { upstream: String, reason: String },

    /// The stdio command could not be started at all.
    #[error("upstream `{upstream}`: could not start `{command}`: {reason}")]
    Spawn {
        upstream: String,
        command: String,
        reason: String,
    },

    /// The MCP session could not be established.
    #[error("upstream `{upstream}`: could not connect: {reason}")]
    Connect {
        upstream: String,
        reason: String,
        delivery: Delivery,
    },

    /// No answer within the per-request timeout. The request was cancelled upstream.
    #[error("upstream `{upstream}` did not answer `{method}` within {}", humanize(*.timeout))]
    Timeout {
        upstream: String,
        method: String,
        timeout: Duration,
    },

    /// The connection ended while the request was in flight (the process exited, the stream closed).
    #[error("upstream `{upstream}`: connection closed while `{method}` was in flight: {reason}")]
    Closed {
        upstream: String,
        method: String,
        reason: String,
    },

    /// A transport-level failure after the session existed.
    #[error("upstream `{upstream}`: `{method}` failed: {reason}")]
    Transport {
        upstream: String,
        method: String,
        reason: String,
        delivery: Delivery,
    },

    /// The upstream answered with a JSON-RPC error: its code, message and data, passed on as
    /// they are (the message without URLs).
    #[error("upstream `{upstream}` answered `{method}` with error {code}: {message}")]
    Rpc {
        upstream: String,
        method: String,
        code: i32,
        message: String,
        data: Option<serde_json::Value>,
    },

    /// The caller cancelled the request.
    #[error("`{method}` on upstream `{upstream}` was cancelled")]
    Cancelled { upstream: String, method: String },

    /// The upstream answered with something that is not the expected result.
    #[error("upstream `{upstream}` sent an unexpected answer to `{method}`")]
    UnexpectedResponse { upstream: String, method: String },

    /// The upstream failed too often in a row; calls fail fast until a probe succeeds.
    #[error("upstream `{upstream}` is failing (circuit open); the next try is in {}", humanize(*.retry_in))]
    CircuitOpen {
        upstream: String,
        retry_in: Duration,
    },

    /// Too many calls are running and queued on this upstream.
    #[error(
        "upstream `{upstream}` is busy: {running} calls running and {queued} queued; try again later"
    )]
    Busy {
        upstream: String,
        running: usize,
        queued: usize,
    },

    /// The upstream asks the caller for input (2026-07-28 `input_required`) on a request that
    /// carried the caller's own client context: the caller fulfils it and calls again. Only a
    /// proxy of a stateless client gets this; for any other caller the request answers the
    /// upstream's input requests itself.
    #[error("upstream `{upstream}` asks the caller for input to `{method}`")]
    InputRequired {
        upstream: String,
        method: String,
        pending: Box<rmcp::model::InputRequiredResult>,
    },
}

impl UpstreamError {
    /// Whether the failed request may have reached the upstream; `None` when retrying makes no sense
    /// at all (an error answer, a cancellation, a bad config).
    pub fn delivery(&self) -> Option<Delivery> {
        match self {
            Self::Connect { delivery, .. } | Self::Transport { delivery, .. } => Some(*delivery),
            Self::Closed { .. } => Some(Delivery::MaybeSent),
            _ => None,
        }
    }

    /// Whether the failure says the upstream is unwell (counted by the circuit breaker). An error
    /// answer, a cancellation or our own refusal say nothing about its health.
    pub fn is_upstream_failure(&self) -> bool {
        matches!(
            self,
            Self::Spawn { .. }
                | Self::Connect { .. }
                | Self::Timeout { .. }
                | Self::Closed { .. }
                | Self::Transport { .. }
                | Self::UnexpectedResponse { .. }
        )
    }

    /// The JSON-RPC error code when the upstream answered with an error.
    pub fn rpc_code(&self) -> Option<i32> {
        match self {
            Self::Rpc { code, .. } => Some(*code),
            _ => None,
        }
    }
}

pub(crate) fn humanize(duration: Duration) -> String {
    if duration.as_millis() < 1000 {
        format!("{} ms", duration.as_millis())
    } else {
        format!("{:.1} s", duration.as_secs_f64())
    }
}

/// An error and its sources, outermost first.
pub(crate) fn chain<'a>(
    error: &'a (dyn std::error::Error + 'static),
) -> impl Iterator<Item = &'a (dyn std::error::Error + 'static)> {
    std::iter::successors(Some(error), |err| err.source())
}

/// Describes a lower-layer error without echoing a URL's path or credentials, and says whether the
/// request may have been delivered.
pub fn describe_transport_error(error: &(dyn std::error::Error + 'static)) -> (String, Delivery) {
    // A connect error (refused, unreachable, connect timeout, DNS) means nothing was sent; the I/O
    // error below it says which.
    let mut connect_failed = false;
    for err in chain(error) {
        if let Some(forbidden) = err.downcast_ref::<crate::net::ForbiddenAddress>() {
            return (forbidden.to_string(), Delivery::NotSent);
        }
        if let Some(sse) = err.downcast_ref::<SseError>() {
            return describe_sse_error(sse);
        }
        if let Some(reqwest_error) = err.downcast_ref::<reqwest::Error>() {
            if let Some(status) = reqwest_error.status() {
                return (format!("HTTP {}", status.as_u16()), Delivery::Rejected);
            }
            if reqwest_error.is_timeout() && !reqwest_error.is_connect() {
                return ("HTTP request timed out".into(), Delivery::MaybeSent);
            }
            connect_failed |= reqwest_error.is_connect();
        }
        if let Some(raw) = err.downcast_ref::<crate::raw_client::RawHttpError>() {
            connect_failed |= raw.not_sent();
        }
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            return describe_io_error(io, connect_failed);
        }
        if let Some(status) = err.downcast_ref::<HttpStatusError>() {
            return (format!("HTTP {}", status.status), Delivery::Rejected);
        }
        if let Some(http) = err.downcast_ref::<StreamableHttpError<reqwest::Error>>()
            && let Some(described) = describe_streamable_http_error(http)
        {
            return described;
        }
    }
    let delivery = if connect_failed {
        Delivery::NotSent
    } else {
        Delivery::MaybeSent
    };
    // The innermost error says what happened; the wrappers above it name internal types
    // (rmcp's transport error prints its transport's type).
    let innermost = chain(error).last().unwrap_or(error);
    (sanitize_message(&innermost.to_string()), delivery)
}

/// rmcp's Streamable HTTP client errors, some of which hold their cause without exposing it as
/// a source; `None` for those whose own text says it all.
fn describe_streamable_http_error(
    error: &StreamableHttpError<reqwest::Error>,
) -> Option<(String, Delivery)> {
    Some(match error {
        StreamableHttpError::Client(inner) => describe_transport_error(inner),
        StreamableHttpError::UnexpectedServerResponse(text) => match http_status_prefix(text) {
            Some(status) => (format!("HTTP {status}"), Delivery::Rejected),
            None => ("unexpected answer".into(), Delivery::MaybeSent),
        },
        StreamableHttpError::UnexpectedContentType(_) => {
            ("unexpected content type".into(), Delivery::MaybeSent)
        }
        StreamableHttpError::ResponseBodyTooLarge { max_size } => (
            format!("the answer exceeded the cap of {max_size} bytes"),
            Delivery::MaybeSent,
        ),
        StreamableHttpError::Deserialize(_) => (
            "the answer is not valid JSON-RPC".into(),
            Delivery::MaybeSent,
        ),
        _ => return None,
    })
}

fn describe_io_error(io: &std::io::Error, connect_failed: bool) -> (String, Delivery) {
    use std::io::ErrorKind as K;
    // Our own failures (the token callback) travel inside an I/O error through rmcp.
    if let Some(local) = io
        .get_ref()
        .and_then(|e| e.downcast_ref::<LocalHttpError>())
    {
        return (local.to_string(), Delivery::NotSent);
    }
    if let Some(forbidden) = io
        .get_ref()
        .and_then(|e| e.downcast_ref::<crate::net::ForbiddenAddress>())
    {
        return (forbidden.to_string(), Delivery::NotSent);
    }
    let (text, delivery) = match io.kind() {
        K::ConnectionRefused => ("connection refused", Delivery::NotSent),
        K::TimedOut if connect_failed => ("connect timed out", Delivery::NotSent),
        K::ConnectionReset => ("connection reset", Delivery::MaybeSent),
        K::ConnectionAborted => ("connection aborted", Delivery::MaybeSent),
        K::BrokenPipe => ("broken pipe", Delivery::MaybeSent),
        K::UnexpectedEof => ("connection closed early", Delivery::MaybeSent),
        _ if connect_failed => ("connection failed", Delivery::NotSent),
        _ => return (sanitize_message(&io.to_string()), Delivery::MaybeSent),
    };
    (text.into(), delivery)
}

fn describe_sse_error(error: &SseError) -> (String, Delivery) {
    match error {
        SseError::Http(inner) => describe_transport_error(inner),
        SseError::Local(local) => (local.to_string(), Delivery::NotSent),
        SseError::Forbidden(forbidden) => (forbidden.to_string(), Delivery::NotSent),
        SseError::Status(status) | SseError::PostStatus(status) => {
            (format!("HTTP {status}"), Delivery::Rejected)
        }
        // The server refused the POST without running it.
        SseError::SessionGone => (error.to_string(), Delivery::NotSent),
        // The remaining messages are ours and hold no URL.
        other => (other.to_string(), Delivery::MaybeSent),
    }
}

/// The status of rmcp's "HTTP 400 Bad Request: …" error text.
fn http_status_prefix(text: &str) -> Option<u16> {
    let rest = text.strip_prefix("HTTP ")?;
    rest.get(..3)?
        .parse()
        .ok()
        .filter(|status| (400..600).contains(status))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitize_strips_credentials_paths_and_queries() {
        let cases = [
            (
                "failed (http://user:pw@example.com/mcp?token=abc)",
                "failed http://example.com",
            ),
            ("plain words stay", "plain words stay"),
            ("see https://x.test/a/b", "see https://x.test"),
        ];
        for (input, expected) in cases {
            assert_eq!(sanitize_message(input), expected, "input: {input}");
        }
    }

    #[test]
    fn refused_io_error_is_not_sent_and_reset_may_be() {
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert_eq!(describe_transport_error(&refused).1, Delivery::NotSent);
        let reset = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
        assert_eq!(describe_transport_error(&reset).1, Delivery::MaybeSent);
    }

    #[test]
    fn our_own_failures_are_described_and_were_not_sent() {
        let token = std::io::Error::other(LocalHttpError::Token("vault is down".into()));
        assert_eq!(
            describe_transport_error(&token),
            (
                "the token callback failed: vault is down".into(),
                Delivery::NotSent
            )
        );
        let gone = SseError::SessionGone;
        assert_eq!(describe_transport_error(&gone).1, Delivery::NotSent);
        let refused = SseError::PostStatus(403);
        assert_eq!(
            describe_transport_error(&refused),
            ("HTTP 403".into(), Delivery::Rejected)
        );
    }
}
