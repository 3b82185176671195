//! How what one protocol era says crosses to a client of the other: a 2025-11-25 (session) client
//! and a 2026-07-28 (stateless) client, each in front of an upstream of either era. What crosses
//! unchanged is not here; each function names the difference it bridges.

use rmcp::model::{ResultType, ServerResult};

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

#[cfg(test)]
mod tests {
    use super::*;

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
