//! The shape of the gateway's own MCP tools (`/mcp/admin`, `/mcp/user`), held to seed 004's
//! rubric: a tool with its schemas and annotations, and results that carry structured content,
//! or `isError` with `error{code, message}`.

use rmcp::model::{CallToolResult, ContentBlock, Tool};
use serde_json::{Map, Value, json};

use crate::GatewayError;

/// Every result may instead carry this, with `isError: true`.
pub(crate) fn error_schema() -> Value {
    json!({"type": "object", "description": "Set when the call failed.", "properties": {
        "code": {"type": "string", "description": "The stable code: invalid_request, not_found, forbidden, conflict or internal."},
        "message": {"type": "string"}
    }})
}

pub(crate) fn output(properties: Value) -> Value {
    let mut properties = properties;
    properties["error"] = error_schema();
    json!({"type": "object", "properties": properties})
}

pub(crate) fn tool(
    name: &str,
    description: String,
    input: Value,
    output_schema: Value,
    annotations: Value,
) -> Tool {
    let value = json!({
        "name": name,
        "description": description,
        "inputSchema": input,
        "outputSchema": output_schema,
        "annotations": annotations,
    });
    serde_json::from_value(value).unwrap_or_default()
}

pub(crate) fn read_only() -> Value {
    json!({"readOnlyHint": true, "destructiveHint": false, "idempotentHint": true, "openWorldHint": false})
}

pub(crate) fn writes(idempotent: bool, destructive: bool) -> Value {
    json!({"readOnlyHint": false, "destructiveHint": destructive, "idempotentHint": idempotent, "openWorldHint": false})
}

/// A tool failure as a result the model can read and act on.
pub(crate) fn failure(code: &str, message: String) -> CallToolResult {
    let structured = json!({"error": {"code": code, "message": message}});
    let mut result = CallToolResult::error(vec![ContentBlock::text(message)]);
    result.structured_content = Some(structured);
    result
}

pub(crate) fn gateway_failure(error: GatewayError) -> CallToolResult {
    let code = error.code();
    if matches!(error, GatewayError::Store(_) | GatewayError::Sealed(_)) {
        tracing::error!(%error, "admin tool failed");
        return failure(code, "the gateway failed; see its log".into());
    }
    failure(code, error.to_string())
}

pub(crate) fn success(structured: Value) -> CallToolResult {
    let text = serde_json::to_string_pretty(&structured).unwrap_or_default();
    let mut result = CallToolResult::success(vec![ContentBlock::text(text)]);
    result.structured_content = Some(structured);
    result
}

pub(crate) fn parse<T: serde::de::DeserializeOwned>(
    arguments: Option<Map<String, Value>>,
) -> Result<T, CallToolResult> {
    serde_json::from_value(Value::Object(arguments.unwrap_or_default()))
        .map_err(|error| failure("invalid_request", format!("invalid arguments: {error}")))
}
