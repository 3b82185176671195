//! The shape of the gateway's own MCP tools (`/mcp/admin`, `/mcp/user`), held to seed 004's
//! rubric: a tool with its schemas and annotations, and results that carry structured content,
//! or `isError` with `error{code, message}`.

use rmcp::model::{CallToolResult, ContentBlock, Implementation, ServerConfig, Tool};
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

/// The server info of one of the gateway's own MCP servers: tools only.
pub(crate) fn server_config(name: &str, instructions: &str) -> ServerConfig {
    let capabilities = serde_json::from_value(json!({"tools": {}})).unwrap_or_default();
    ServerConfig::new(capabilities)
        .with_server_info(Implementation::new(name, env!("CARGO_PKG_VERSION")))
        .with_instructions(instructions)
}

/// Seed 004's rubric, checked on every tool: a description that covers effects, returns and
/// errors; every parameter described; annotations, of which `readOnlyHint` agrees with
/// `reads`; an output schema.
#[cfg(test)]
pub(crate) fn assert_rubric(tools: &[Tool], reads: impl Fn(&str) -> bool) {
    for tool in tools {
        let value = serde_json::to_value(tool).expect("json");
        let name = value["name"].as_str().unwrap_or_default();
        let description = value["description"].as_str().expect("description");
        assert!(description.len() > 150, "{name}: description too thin");
        assert!(
            description.contains("Returns"),
            "{name}: no return value described"
        );
        assert!(
            description.contains("isError"),
            "{name}: no errors described"
        );
        let properties = value["inputSchema"]["properties"]
            .as_object()
            .expect("properties");
        for (param, schema) in properties {
            assert!(
                schema.get("description").is_some(),
                "{name}.{param} has no description"
            );
        }
        let annotations = &value["annotations"];
        for hint in ["readOnlyHint", "destructiveHint", "idempotentHint"] {
            assert!(annotations.get(hint).is_some(), "{name}: no {hint}");
        }
        assert_eq!(
            annotations["readOnlyHint"] == true,
            reads(name),
            "{name}: the scope it needs follows its annotation"
        );
        assert_eq!(value["outputSchema"]["type"], "object", "{name}");
    }
}
