//! How what one protocol era says crosses to a client of the other: a 2025-11-25 (session) client
//! and a 2026-07-28 (stateless) client, each in front of an upstream of either era. What crosses
//! unchanged is not here; each function names the difference it bridges.

use rmcp::model::{ProtocolVersion, ResultType, ServerCapabilities, ServerResult};

/// Whether an upstream speaks the stateless era (2026-07-28 and later, no `initialize`), where
/// `logging/setLevel` and `resources/subscribe` no longer exist.
pub(crate) fn is_stateless(version: Option<&ProtocolVersion>) -> bool {
    version.is_some_and(|version| !version.has_initialize())
}

/// What the gateway declares in front of an upstream: what the upstream has, and nothing it
/// lacks. The lists' changes are declared for the gateway's own reasons (it announces registry
/// changes as list changes), and tools always (it serves the governed ones). Logging is
/// declared when the upstream has it, in either era: a stateless upstream has no
/// `logging/setLevel`, and the gateway accepts the level in its place. Resource subscriptions
/// when the upstream has them, in either era: the gateway keeps each client's, and asks a
/// stateless upstream for their updates on its listen stream.
pub(crate) fn declared(upstream: &ServerCapabilities) -> ServerCapabilities {
    let mut declared = serde_json::json!({"tools": {"listChanged": true}});
    if upstream.prompts.is_some() {
        declared["prompts"] = serde_json::json!({"listChanged": true});
    }
    if let Some(resources) = &upstream.resources {
        declared["resources"] = serde_json::json!({"listChanged": true});
        if resources.subscribe == Some(true) {
            declared["resources"]["subscribe"] = serde_json::json!(true);
        }
    }
    if upstream.completions.is_some() {
        declared["completions"] = serde_json::json!({});
    }
    if upstream.logging.is_some() {
        declared["logging"] = serde_json::json!({});
    }
    serde_json::from_value(declared).unwrap_or_default()
}

/// A 2025-era upstream's results carry no `resultType`, which a 2026-07-28 client requires. The
/// spec reads an absent one as complete, so it is written out; rmcp drops it again for a client of
/// the 2025 era.
pub(crate) fn say_complete(result: &mut ServerResult) {
    let result_type = match result {
        ServerResult::GetPromptResult(r) => &mut r.result_type,
        ServerResult::ReadResourceResult(r) => &mut r.result_type,
        ServerResult::CallToolResult(r) => &mut r.result_type,
        ServerResult::CompleteResult(r) => &mut r.result_type,
        ServerResult::ListPromptsResult(r) => &mut r.result_type,
        ServerResult::ListResourcesResult(r) => &mut r.result_type,
        ServerResult::ListResourceTemplatesResult(r) => &mut r.result_type,
        ServerResult::ListToolsResult(r) => &mut r.result_type,
        _ => return,
    };
    result_type.get_or_insert(ResultType::COMPLETE);
}

/// The `_meta` context a stateless (2026-07-28) client sends with each request: its protocol
/// version, client info and capabilities. `None` for a client of a session.
pub(crate) fn stateless_context(
    context: &rmcp::service::RequestContext<rmcp::RoleServer>,
) -> Option<serde_json::Map<String, serde_json::Value>> {
    const KEYS: [&str; 3] = [
        "io.modelcontextprotocol/protocolVersion",
        "io.modelcontextprotocol/clientInfo",
        "io.modelcontextprotocol/clientCapabilities",
    ];
    let meta: &serde_json::Map<String, serde_json::Value> = &context.meta;
    meta.contains_key(KEYS[2]).then(|| {
        KEYS.iter()
            .filter_map(|key| Some((key.to_string(), meta.get(*key)?.clone())))
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_what_the_upstream_has_is_declared() {
        let bare: ServerCapabilities =
            serde_json::from_value(serde_json::json!({"tools": {}})).expect("capabilities");
        let only_tools = serde_json::to_value(declared(&bare)).expect("json");
        assert_eq!(
            only_tools,
            serde_json::json!({"tools": {"listChanged": true}})
        );
        let full: ServerCapabilities = serde_json::from_value(serde_json::json!({
            "tools": {}, "prompts": {}, "resources": {"subscribe": true}, "completions": {},
            "logging": {}
        }))
        .expect("capabilities");
        let declared = serde_json::to_value(declared(&full)).expect("json");
        assert_eq!(declared["resources"]["subscribe"], true);
        assert!(declared["logging"].is_object() && declared["completions"].is_object());
    }

    #[test]
    fn a_result_without_a_result_type_is_said_to_be_complete() {
        let legacy: rmcp::model::GetPromptResult =
            serde_json::from_value(serde_json::json!({"messages": []})).expect("a 2025 result");
        assert_eq!(legacy.result_type, None);
        let mut result = ServerResult::GetPromptResult(legacy);
        say_complete(&mut result);
        let ServerResult::GetPromptResult(done) = result else {
            unreachable!("the variant is kept")
        };
        assert_eq!(done.result_type, Some(ResultType::COMPLETE));
    }
}
