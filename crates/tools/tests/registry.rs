//! `register_remote_tools` against real servers: server-everything over stdio and the Python `mcp`
//! SDK fixture over Streamable HTTP.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use switchboard_mcp::{CallContext, UpstreamConfig};
use switchboard_test_support as support;
use switchboard_tools::{RemoteServerConfig, ToolRegistry, ToolWrapper, register_remote_tools};

fn text(output: &switchboard_tools::ToolOutput) -> String {
    support::content_text(&serde_json::to_value(&output.content).expect("serializes"))
}

fn everything_config(name: &str) -> RemoteServerConfig {
    let (command, args) = support::everything_stdio_command();
    RemoteServerConfig::new(UpstreamConfig::stdio(name, command, args))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filtering_prefix_tags_and_metadata() {
    let registry = ToolRegistry::new();
    let mut config = everything_config("everything");
    config.tool_prefix = "ev_".into();
    config.tags = vec!["demo".into()];
    config.allow_tools = Some(vec![
        "echo".into(),
        "get-sum".into(),
        "get-env".into(),
        "get-structured-content".into(),
    ]);
    config.deny_tools = vec!["get-env".into()];
    config.deny_tool_prefix = Some("get-s".into());
    let result = register_remote_tools(&registry, config)
        .await
        .expect("registers");

    assert_eq!(result.registered, ["ev_echo"]);
    let skipped: BTreeMap<_, _> = result
        .skipped
        .iter()
        .map(|s| (s.tool.as_str(), s.reason.as_str()))
        .collect();
    assert_eq!(skipped["get-env"], "Denied by denyTools");
    assert_eq!(skipped["get-sum"], "Denied by denyToolPrefix (get-s)");
    assert_eq!(
        skipped["get-structured-content"],
        "Denied by denyToolPrefix (get-s)"
    );
    assert_eq!(skipped["get-tiny-image"], "Not in allowTools");
    assert!(
        result
            .remote_tools
            .iter()
            .any(|t| t.name == "trigger-long-running-operation")
    );
    assert_eq!(
        result.remote_tools.len(),
        result.registered.len() + result.skipped.len()
    );

    let metadata = registry.metadata("ev_echo").expect("registered");
    assert_eq!(metadata.remote_name, "echo");
    assert_eq!(metadata.category, "external");
    assert_eq!(metadata.tags, ["mcp", "everything", "demo"]);
    assert!(metadata.input_schema["properties"].get("message").is_some());

    let output = registry
        .execute("ev_echo", json!({"message": "hi"}), &CallContext::new())
        .await
        .expect("runs");
    assert!(!output.is_error);
    assert!(text(&output).contains("hi"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_collision_between_servers_is_skipped_with_a_reason() {
    let registry = ToolRegistry::new();
    let mut first = everything_config("first");
    first.allow_tools = Some(vec!["echo".into()]);
    let mut second = everything_config("second");
    second.allow_tools = Some(vec!["echo".into(), "get-sum".into()]);
    register_remote_tools(&registry, first)
        .await
        .expect("registers");
    let result = register_remote_tools(&registry, second)
        .await
        .expect("registers");
    assert_eq!(result.registered, ["get-sum"]);
    let echo = result
        .skipped
        .iter()
        .find(|s| s.tool == "echo")
        .expect("echo skipped");
    assert!(
        echo.reason.contains("already registered by server `first`"),
        "{:?}",
        result.skipped
    );
    assert_eq!(registry.metadata("echo").expect("kept").server, "first");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_names_are_sanitized_and_the_mapping_is_listed() {
    let registry = ToolRegistry::new();
    let mut config = everything_config("everything");
    config.tool_prefix = "acme.".into();
    config.allow_tools = Some(vec!["get-sum".into()]);
    let result = register_remote_tools(&registry, config)
        .await
        .expect("registers");
    assert_eq!(result.registered, ["acme_get-sum"]);
    assert_eq!(result.renamed.len(), 1);
    assert_eq!(
        (
            result.renamed[0].remote.as_str(),
            result.renamed[0].exposed.as_str()
        ),
        ("get-sum", "acme_get-sum")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrapped_tools_hide_and_inject_pinned_params() {
    let server = support::start_python("streamable-http")
        .await
        .expect("starts");
    let secrets: BTreeMap<String, String> = [("OFFSET".to_string(), "10".to_string())].into();
    let registry = ToolRegistry::with_secrets(secrets);
    let mut config = RemoteServerConfig::new(UpstreamConfig::http("python", server.url("/mcp")));
    config.allow_tools = Some(vec!["add".into(), "weather".into()]);
    config.wrappers = vec![
        ToolWrapper {
            tool: "add".into(),
            name: Some("add_offset".into()),
            description: Some("Adds the tenant's offset".into()),
            params: json!({"b": "{{userId}}"})
                .as_object()
                .cloned()
                .expect("object"),
        },
        ToolWrapper {
            tool: "weather".into(),
            params: json!({"city": "{{tenantId}}-{{secrets.OFFSET}}"})
                .as_object()
                .cloned()
                .expect("object"),
            ..Default::default()
        },
    ];
    let result = register_remote_tools(&registry, config)
        .await
        .expect("registers");
    assert_eq!(result.registered, ["add_offset", "weather"]);

    let add = registry.metadata("add_offset").expect("registered");
    assert_eq!(add.description.as_deref(), Some("Adds the tenant's offset"));
    assert!(
        add.input_schema["properties"].get("b").is_none(),
        "the pinned param is visible: {:?}",
        add.input_schema
    );
    assert_eq!(add.input_schema["required"], json!(["a"]));
    assert!(add.output_schema.is_some());

    let context = CallContext::new()
        .with("userId", 7)
        .with("tenantId", "acme");
    // The caller's `b` loses to the pinned one.
    let output = registry
        .execute("add_offset", json!({"a": 1, "b": 1000}), &context)
        .await
        .expect("runs");
    assert_eq!(output.structured_content, Some(json!({"result": 8})));
    let output = registry
        .execute("weather", json!({}), &context)
        .await
        .expect("runs");
    assert_eq!(
        output
            .structured_content
            .as_ref()
            .and_then(|s| s.get("city")),
        Some(&Value::from("acme-10"))
    );

    // A missing context key fails before anything is sent, naming the key and no value.
    let error = registry
        .execute("add_offset", json!({"a": 1}), &CallContext::new())
        .await
        .expect_err("no userId");
    assert_eq!(
        error.to_string(),
        "tool `add_offset`: pinned parameter `b`: context key `userId` is not set for this call"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn execute_reports_error_results_and_unknown_tools() {
    let server = support::start_python("streamable-http")
        .await
        .expect("starts");
    let registry = ToolRegistry::new();
    let config = RemoteServerConfig::new(UpstreamConfig::http("python", server.url("/mcp")));
    register_remote_tools(&registry, config)
        .await
        .expect("registers");
    let output = registry
        .execute("fail", json!({"reason": "nope"}), &CallContext::new())
        .await
        .expect("answers");
    assert!(output.is_error);
    assert!(text(&output).contains("nope"));
    let error = registry
        .execute("missing", json!({}), &CallContext::new())
        .await
        .expect_err("unknown");
    assert_eq!(error.to_string(), "unknown tool `missing`");
    let error = registry
        .execute("add", json!([1, 2]), &CallContext::new())
        .await
        .expect_err("not an object");
    assert_eq!(
        error.to_string(),
        "the arguments of `add` must be a JSON object"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tool_list_change_is_re_listed_into_the_registry() {
    // Legacy SSE carries the initialize-era notification; Streamable HTTP with the Python SDK is
    // the stateless era, where it arrives on a `subscriptions/listen` stream.
    for (mode, path) in [("sse", "/sse"), ("streamable-http", "/mcp")] {
        re_list_after_change(mode, path).await;
    }
}

async fn re_list_after_change(mode: &str, path: &str) {
    let server = support::start_python(mode).await.expect("starts");
    let registry = ToolRegistry::new();
    let mut config = RemoteServerConfig::new(UpstreamConfig::http("python", server.url(path)));
    config.tool_prefix = "py_".into();
    register_remote_tools(&registry, config)
        .await
        .expect("registers");
    assert!(registry.metadata("py_greet_bob").is_none());

    let output = registry
        .execute(
            "py_add_greeter",
            json!({"name": "bob"}),
            &CallContext::new(),
        )
        .await
        .expect("runs");
    assert!(!output.is_error, "{output:?}");
    // The re-list runs on the upstream's notification.
    switchboard_test_support::eventually(
        format!("{mode}: the new tool to appear"),
        std::time::Duration::from_millis(20),
        || async { registry.metadata("py_greet_bob").is_some() },
    )
    .await;
    let output = registry
        .execute("py_greet_bob", json!({}), &CallContext::new())
        .await
        .expect("runs");
    assert_eq!(text(&output), "hello from bob");
    assert!(
        registry.metadata("py_add").is_some(),
        "the other tools stay"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn header_templates_are_rendered_from_secrets() {
    let server = support::start_python("streamable-http")
        .await
        .expect("starts");
    let secrets: BTreeMap<String, String> = [("MCP_TOKEN".to_string(), "t0ken".to_string())].into();
    let registry = ToolRegistry::with_secrets(secrets);
    let mut config = RemoteServerConfig::new(UpstreamConfig::http("python", server.url("/mcp")));
    config.headers = vec![(
        "Authorization".into(),
        "Bearer {{secrets.MCP_TOKEN}}".into(),
    )];
    config.allow_tools = Some(vec!["whoami".into()]);
    register_remote_tools(&registry, config.clone())
        .await
        .expect("registers");
    let output = registry
        .execute("whoami", json!({}), &CallContext::new())
        .await
        .expect("runs");
    assert_eq!(text(&output), "Bearer t0ken");

    let empty = ToolRegistry::with_secrets(BTreeMap::<String, String>::new());
    let error = register_remote_tools(&empty, config)
        .await
        .expect_err("no secret");
    assert_eq!(
        error.to_string(),
        "server `python`: header `Authorization`: secret `MCP_TOKEN` is not set"
    );
}
