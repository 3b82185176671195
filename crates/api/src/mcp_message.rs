//! A `POST`'s JSON-RPC message, read once at the edge: checked to be one message whose id, if
//! any, is a string or an integer, and read as far as the policy and the raw path need: its
//! method, what it names, and a `tools/call`'s parts as the raw path forwards them (owned, so
//! that they ride in the request's extensions). rmcp reads the body itself for the typed path.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;

/// JSON-RPC's codes for a body that is not JSON, and for one that is not a valid request.
pub(crate) const PARSE_ERROR: i32 = -32700;
pub(crate) const INVALID_REQUEST: i32 = -32600;

/// One client message, as the edge read it.
#[derive(Debug, Clone)]
pub(crate) struct McpMessage {
    /// `None` for a notification.
    pub id: Option<Box<RawValue>>,
    /// `None` for a client's answer to a server's request.
    pub method: Option<String>,
    /// The tool or prompt name, or the resource URI, that the message names.
    pub named: Option<String>,
    /// A `tools/call` written in `jsonrpc` 2.0 whose params hold only what the raw path forwards.
    pub call: Option<CallParts>,
    /// The request a `notifications/cancelled` cancels.
    pub cancels: Option<Box<RawValue>>,
}

/// What a `tools/call` carries besides its name, as the raw path forwards it.
#[derive(Debug, Clone, Default)]
pub(crate) struct CallParts {
    pub arguments: Option<Box<RawValue>>,
    pub progress_token: Option<Box<RawValue>>,
    /// The stateless era's per-request client context (`_meta`).
    pub protocol_version: Option<String>,
    pub client_info: Option<Box<RawValue>>,
    pub client_capabilities: Option<Box<RawValue>>,
    /// A stateless client's answers to an earlier `input_required`, and its echoed state.
    pub input_responses: Option<Box<RawValue>>,
    pub request_state: Option<Box<RawValue>>,
}

impl CallParts {
    /// Whether it carries any of the stateless era's context or rounds.
    pub fn is_stateless(&self) -> bool {
        self.protocol_version.is_some()
            || self.client_info.is_some()
            || self.client_capabilities.is_some()
            || self.input_responses.is_some()
            || self.request_state.is_some()
    }
}

/// One JSON-RPC message, as far as its envelope goes.
#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow, default)]
    jsonrpc: Option<Cow<'a, str>>,
    /// As written, `null` included (which an id may not be); absent for a notification.
    #[serde(borrow, default, deserialize_with = "present")]
    id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    method: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    params: Option<&'a RawValue>,
}

/// A field that is there, whatever its value: serde reads a `null` as an absent `Option`.
fn present<'de, D>(deserializer: D) -> Result<Option<&'de RawValue>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    Deserialize::deserialize(deserializer).map(Some)
}

/// `tools/call` params the raw path can forward; any other field (a task, say) leaves the call
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
    #[serde(borrow, default, rename = "inputResponses")]
    input_responses: Option<&'a RawValue>,
    #[serde(borrow, default, rename = "requestState")]
    request_state: Option<&'a RawValue>,
}

/// The `_meta` the raw path can forward: a progress token, and the stateless client context.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CallMeta<'a> {
    #[serde(borrow, default, rename = "progressToken")]
    progress_token: Option<&'a RawValue>,
    #[serde(borrow, default, rename = "io.modelcontextprotocol/protocolVersion")]
    protocol_version: Option<Cow<'a, str>>,
    #[serde(borrow, default, rename = "io.modelcontextprotocol/clientInfo")]
    client_info: Option<&'a RawValue>,
    #[serde(borrow, default, rename = "io.modelcontextprotocol/clientCapabilities")]
    client_capabilities: Option<&'a RawValue>,
}

/// What any request names: a tool's or prompt's `name`, a resource's `uri`.
#[derive(Deserialize)]
struct Named<'a> {
    #[serde(borrow, default)]
    name: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    uri: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct CancelParams<'a> {
    #[serde(borrow, rename = "requestId")]
    request_id: &'a RawValue,
}

/// Whether a JSON-RPC id is one MCP allows: a string or an integer (never `null`, an object, an
/// array or a fraction).
pub(crate) fn valid_id(id: &RawValue) -> bool {
    let text = id.get();
    text.starts_with('"') || text.parse::<i64>().is_ok() || text.parse::<u64>().is_ok()
}

impl McpMessage {
    /// Reads `body`, or says why it is not one JSON-RPC message: the JSON-RPC error code and
    /// message to refuse it with.
    pub fn read(body: &[u8]) -> Result<Self, (i32, String)> {
        // One parse for a message, which reading its envelope also checks whole; a body that
        // fails it is parsed again only to tell bad JSON from JSON that is not a message.
        let first = body.iter().find(|byte| !byte.is_ascii_whitespace());
        let envelope = match first {
            Some(b'{') => serde_json::from_slice::<Envelope<'_>>(body).ok(),
            _ => None,
        };
        let Some(envelope) = envelope else {
            if let Err(error) = serde_json::from_slice::<serde::de::IgnoredAny>(body) {
                return Err((PARSE_ERROR, format!("the body is not JSON: {error}")));
            }
            if first == Some(&b'[') {
                return Err((
                    INVALID_REQUEST,
                    "JSON-RPC batches are not supported: send one message per request".into(),
                ));
            }
            return Err((INVALID_REQUEST, "the body is not a JSON-RPC message".into()));
        };
        if envelope.id.is_some_and(|id| !valid_id(id)) {
            return Err((
                INVALID_REQUEST,
                "a JSON-RPC id must be a string or an integer".into(),
            ));
        }
        let mut message = Self {
            id: envelope.id.map(ToOwned::to_owned),
            method: envelope.method.as_deref().map(str::to_owned),
            named: None,
            call: None,
            cancels: None,
        };
        let Some(params) = envelope.params else {
            return Ok(message);
        };
        let method = envelope.method.as_deref().unwrap_or_default();
        if method == "notifications/cancelled" {
            message.cancels = serde_json::from_str::<CancelParams<'_>>(params.get())
                .ok()
                .map(|cancel| cancel.request_id.to_owned());
            return Ok(message);
        }
        if method == "tools/call"
            && envelope.jsonrpc.as_deref() == Some("2.0")
            && let Ok(call) = serde_json::from_str::<CallParams<'_>>(params.get())
        {
            message.named = Some(call.name.into_owned());
            let meta = call.meta;
            message.call = Some(CallParts {
                arguments: call.arguments.map(ToOwned::to_owned),
                progress_token: meta
                    .as_ref()
                    .and_then(|meta| meta.progress_token)
                    .map(ToOwned::to_owned),
                protocol_version: meta
                    .as_ref()
                    .and_then(|meta| meta.protocol_version.as_deref())
                    .map(str::to_owned),
                client_info: meta
                    .as_ref()
                    .and_then(|meta| meta.client_info)
                    .map(ToOwned::to_owned),
                client_capabilities: meta
                    .as_ref()
                    .and_then(|meta| meta.client_capabilities)
                    .map(ToOwned::to_owned),
                input_responses: call.input_responses.map(ToOwned::to_owned),
                request_state: call.request_state.map(ToOwned::to_owned),
            });
            return Ok(message);
        }
        if let Ok(named) = serde_json::from_str::<Named<'_>>(params.get()) {
            message.named = named.name.or(named.uri).map(Cow::into_owned);
        }
        Ok(message)
    }

    /// What the policy reads of it.
    pub fn asked(&self, raw_carriable: bool) -> switchboard_gateway::policy::Asked<'_> {
        switchboard_gateway::policy::Asked {
            method: self.method.as_deref(),
            has_id: self.id.is_some(),
            named: self.named.as_deref(),
            raw_carriable,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(body: &str) -> Option<i32> {
        McpMessage::read(body.as_bytes())
            .err()
            .map(|(code, _)| code)
    }

    #[test]
    fn a_body_is_one_json_rpc_message() {
        assert_eq!(code(r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#), None);
        assert_eq!(
            code(r#" {"jsonrpc":"2.0","method":"notifications/initialized"}"#),
            None
        );
        for bad_json in ["{", r#"{"a":}"#, "[1,", "nope", ""] {
            assert_eq!(code(bad_json), Some(PARSE_ERROR), "{bad_json:?}");
        }
        for not_a_message in ["[]", r#"[{"jsonrpc":"2.0"}]"#, "1", r#""x""#, "null"] {
            assert_eq!(
                code(not_a_message),
                Some(INVALID_REQUEST),
                "{not_a_message}"
            );
        }
        assert_eq!(
            code(r#"{"jsonrpc":"2.0","id":1.5,"method":"ping"}"#),
            Some(INVALID_REQUEST)
        );
        assert_eq!(
            code(r#"{"jsonrpc":"2.0","id":null,"method":"ping"}"#),
            Some(INVALID_REQUEST)
        );
    }

    #[test]
    fn ids_are_strings_or_integers() {
        for ok in [r#""a""#, "1", "-7", "0", "18446744073709551615"] {
            let id = RawValue::from_string(ok.into()).expect("json");
            assert!(valid_id(&id), "{ok}");
        }
        for bad in ["1.5", "1e3", "null", "{}", r#"{"a":1}"#, "[1]", "true"] {
            let id = RawValue::from_string(bad.into()).expect("json");
            assert!(!valid_id(&id), "{bad}");
        }
    }

    fn read(body: &str) -> McpMessage {
        McpMessage::read(body.as_bytes()).expect("a message")
    }

    #[test]
    fn a_plain_call_is_read_for_the_raw_path() {
        let message = read(
            r#"{"jsonrpc":"2.0","id":"c-1","method":"tools/call","params":{"name":"echo","arguments":{"a":1},"_meta":{"progressToken":"t-1"}}}"#,
        );
        assert_eq!(message.named.as_deref(), Some("echo"));
        assert_eq!(message.id.as_deref().map(RawValue::get), Some(r#""c-1""#));
        let call = message.call.expect("carriable");
        assert_eq!(
            call.arguments.as_deref().map(RawValue::get),
            Some(r#"{"a":1}"#)
        );
        assert_eq!(
            call.progress_token.as_deref().map(RawValue::get),
            Some(r#""t-1""#)
        );
        assert!(!call.is_stateless());
        let stateless = read(
            r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"echo","_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}"#,
        );
        let call = stateless.call.expect("carriable");
        assert!(call.is_stateless());
        assert_eq!(call.protocol_version.as_deref(), Some("2026-07-28"));
    }

    #[test]
    fn what_only_the_typed_model_carries_is_still_named() {
        for params in [
            r#"{"name":"echo","_meta":{"io.example/x":1}}"#,
            r#"{"name":"echo","task":{"ttl":1}}"#,
        ] {
            let message = read(&format!(
                r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{params}}}"#
            ));
            assert!(message.call.is_none(), "{params}");
            assert_eq!(message.named.as_deref(), Some("echo"), "{params}");
        }
        let old = read(r#"{"jsonrpc":"1.0","id":1,"method":"tools/call","params":{"name":"e"}}"#);
        assert!(old.call.is_none());
        let read_resource = read(
            r#"{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":"demo://a"}}"#,
        );
        assert_eq!(read_resource.named.as_deref(), Some("demo://a"));
        let cancel = read(
            r#"{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":7}}"#,
        );
        assert_eq!(cancel.cancels.as_deref().map(RawValue::get), Some("7"));
        assert!(cancel.id.is_none());
    }
}
