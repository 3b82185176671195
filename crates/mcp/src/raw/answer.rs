//! Reading an upstream's answer to a raw call: only its id, `isError`, `resultType` and the
//! progress and notifications streamed before it; the `result` itself stays raw JSON, made fit
//! for the client's era (`resultType` left out for a 2025 client, said complete for a 2026 one).

use futures::StreamExt as _;
use serde::Deserialize;
use serde_json::value::RawValue;

/// A JSON-RPC message from the upstream, read only as far as routing needs.
#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow, default)]
    id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    method: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow, default)]
    result: Option<&'a RawValue>,
    #[serde(default)]
    error: Option<RpcError>,
    #[serde(borrow, default)]
    params: Option<&'a RawValue>,
}

/// The params of a `notifications/progress`.
#[derive(Deserialize)]
pub(crate) struct ProgressParams<'a> {
    #[serde(borrow, rename = "progressToken")]
    pub(crate) progress_token: &'a RawValue,
    progress: f64,
    #[serde(default)]
    total: Option<f64>,
    #[serde(default)]
    message: Option<String>,
}

impl ProgressParams<'_> {
    /// The report, for the caller whose token it carries.
    pub(crate) fn report(self) -> crate::Progress {
        crate::Progress {
            progress: self.progress,
            total: self.total,
            message: self.message,
        }
    }
}

#[derive(Deserialize)]
pub(crate) struct RpcError {
    pub(crate) code: i32,
    #[serde(default)]
    pub(crate) message: String,
    #[serde(default)]
    pub(crate) data: Option<serde_json::Value>,
}

/// Reads `isError` and `resultType` and skips the rest of a tool result.
#[derive(Deserialize)]
struct ResultProbe<'a> {
    #[serde(rename = "isError", default)]
    is_error: Option<bool>,
    #[serde(borrow, rename = "resultType", default)]
    result_type: Option<std::borrow::Cow<'a, str>>,
}

/// What one message of the upstream's answer stream is to a raw call.
pub(crate) enum Message {
    /// The answer to the call.
    Answer(Result<(Box<RawValue>, bool), RpcError>),
    /// An answer that does not complete the call (a 2026-07-28 `input_required`), which the
    /// raw path does not carry.
    Incomplete,
    /// Progress of the call.
    Progress(crate::Progress),
    /// A notification to pass on.
    Notification(Box<RawValue>),
    /// Something else: an answer to another request, or a request to the client, which a
    /// shared session never receives as it declares no client capabilities.
    Other,
}

/// The JSON-RPC error answering the raw call `id`, if `body` is one.
pub(crate) fn error_answer(body: &[u8], id: u64) -> Option<RpcError> {
    let text = std::str::from_utf8(body).ok()?;
    match classify(text, id, false).ok()? {
        Message::Answer(Err(error)) => Some(error),
        _ => None,
    }
}

/// What marks a raw call's own messages: the answer's id, and the token of its progress reports
/// (JSON text; the id when `None`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Expected<'a> {
    pub(crate) id: u64,
    pub(crate) progress_token: Option<&'a str>,
}

impl Expected<'_> {
    fn is_our_token(&self, token: &RawValue) -> bool {
        match self.progress_token {
            Some(ours) => {
                let parse = |text: &str| serde_json::from_str::<serde_json::Value>(text).ok();
                parse(ours).is_some_and(|ours| Some(ours) == parse(token.get()))
            }
            None => token.get().trim().parse::<u64>() == Ok(self.id),
        }
    }
}

/// Sorts one message from the upstream, given the raw call's id (see [`classify_expected`]).
pub(crate) fn classify(
    text: &str,
    id: u64,
    pass_incomplete: bool,
) -> Result<Message, serde_json::Error> {
    let expected = Expected {
        id,
        progress_token: None,
    };
    classify_expected(text, expected, pass_incomplete)
}

/// Sorts one message from the upstream, given what marks the raw call's own. An
/// `input_required` answer is the answer when `pass_incomplete` (a stateless client, which can
/// carry on with it).
pub(crate) fn classify_expected(
    text: &str,
    expected: Expected<'_>,
    pass_incomplete: bool,
) -> Result<Message, serde_json::Error> {
    let id = expected.id;
    let envelope: Envelope<'_> = serde_json::from_str(text)?;
    let ours = envelope
        .id
        .is_some_and(|raw| raw.get().trim().parse::<u64>() == Ok(id));
    if ours {
        if let Some(error) = envelope.error {
            return Ok(Message::Answer(Err(error)));
        }
        if let Some(result) = envelope.result {
            let probe: ResultProbe<'_> = serde_json::from_str(result.get())?;
            let result = match probe.result_type.as_deref() {
                // A stateless client knows the 2026-07-28 result as it is.
                Some(_) if pass_incomplete => result.to_owned(),
                Some("complete") => without_result_type(result)?,
                Some(_) => return Ok(Message::Incomplete),
                None if pass_incomplete => said_complete(result)?,
                None => result.to_owned(),
            };
            return Ok(Message::Answer(Ok((result, probe.is_error == Some(true)))));
        }
    }
    match (&envelope.id, envelope.method.as_deref()) {
        (None, Some("notifications/progress")) => {
            let Some(params) = envelope.params else {
                return Ok(Message::Other);
            };
            let report: ProgressParams<'_> = serde_json::from_str(params.get())?;
            if !expected.is_our_token(report.progress_token) {
                return Ok(Message::Other);
            }
            return Ok(Message::Progress(report.report()));
        }
        (None, Some(_)) => {
            return Ok(Message::Notification(RawValue::from_string(
                text.to_owned(),
            )?));
        }
        _ => {}
    }
    Ok(Message::Other)
}

/// A complete result without its `resultType`, which a session-era client does not know: what
/// rmcp's server sends such a client on the typed path. Its keys come out sorted, which JSON
/// allows; only the mixed-era case pays for the re-encoding.
fn without_result_type(result: &RawValue) -> Result<Box<RawValue>, serde_json::Error> {
    let mut fields: std::collections::BTreeMap<std::borrow::Cow<'_, str>, &RawValue> =
        serde_json::from_str(result.get())?;
    fields.remove("resultType");
    serde_json::value::to_raw_value(&fields)
}

/// A session-era upstream's result, which has no `resultType`, said complete for a stateless
/// client, which requires it (the revision reads an absent one as complete): `era::say_complete`
/// of the typed path, on the raw text.
fn said_complete(result: &RawValue) -> Result<Box<RawValue>, serde_json::Error> {
    let text = result.get().trim_start();
    let fields = text.strip_prefix('{').unwrap_or(text);
    let spliced = if fields.trim_start().starts_with('}') {
        format!(r#"{{"resultType":"complete"{}"#, fields.trim_start())
    } else {
        format!(r#"{{"resultType":"complete",{fields}"#)
    };
    RawValue::from_string(spliced)
}

/// Reads the answer to a raw call from an event stream, keeping the notifications before it.
pub(crate) async fn read_event_stream(
    body: crate::raw_client::AnswerBody,
    expected: Expected<'_>,
    pass_incomplete: bool,
    mut on_progress: impl FnMut(crate::Progress),
) -> Result<(Result<(Box<RawValue>, bool), RpcError>, Vec<Box<RawValue>>), String> {
    let mut events = Box::pin(sse_stream::SseStream::new(body));
    let mut notifications = Vec::new();
    while let Some(event) = events.next().await {
        let event = event.map_err(|error| match error {
            // Over the cap: say so, as the typed path does.
            sse_stream::Error::Body(body) => match body.downcast_ref() {
                Some(too_large @ crate::raw_client::RawHttpError::TooLarge(_)) => {
                    too_large.to_string()
                }
                _ => "the event stream broke".to_string(),
            },
            _ => "the event stream broke".to_string(),
        })?;
        let Some(data) = event.data.as_deref().filter(|data| !data.trim().is_empty()) else {
            continue;
        };
        match classify_expected(data, expected, pass_incomplete)
            .map_err(|_| "the upstream sent invalid JSON".to_string())?
        {
            Message::Answer(answer) => {
                drain(events);
                return Ok((answer, notifications));
            }
            Message::Incomplete => return Err(INCOMPLETE.into()),
            Message::Progress(report) => on_progress(report),
            Message::Notification(notification) => notifications.push(notification),
            Message::Other => {}
        }
    }
    Err("the event stream ended without an answer".into())
}

/// Streams being read to their end after their answer, at most [`MAX_DRAINING`] at once.
static DRAINING: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
/// Beyond this many, an answered stream's connection is closed instead of kept: a server that
/// leaves Nagle's algorithm on sends the stream's end a delayed-ACK period (40 ms) late, and
/// under load the connections held meanwhile would pile up.
const MAX_DRAINING: usize = 32;

/// Reads what is left of an answered request's stream, so that its connection goes back to the
/// pool instead of being closed: the server ends the stream right after the answer, and that end
/// has usually arrived already. If not, a task waits for it, for a while.
fn drain<S>(mut events: S)
where
    S: futures::Stream + Unpin + Send + 'static,
{
    use futures::FutureExt as _;
    use std::sync::atomic::Ordering;
    loop {
        match events.next().now_or_never() {
            Some(Some(_)) => {}
            Some(None) => return,
            None => break,
        }
    }
    if DRAINING.fetch_add(1, Ordering::AcqRel) >= MAX_DRAINING {
        DRAINING.fetch_sub(1, Ordering::AcqRel);
        return;
    }
    tokio::spawn(async move {
        let _ = tokio::time::timeout(std::time::Duration::from_secs(5), async {
            while events.next().await.is_some() {}
        })
        .await;
        DRAINING.fetch_sub(1, Ordering::AcqRel);
    });
}

/// Why an answer that asks for more input fails a raw call: the raw path carries session-era
/// calls only of clients that declare no sampling, elicitation or roots.
pub(crate) const INCOMPLETE: &str = "the upstream asked for more input (input_required), and the \
     client declared no capability to answer it";
