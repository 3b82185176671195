//! Helpers the gateway tests share: changing servers, raw MCP requests and sessions, metrics.

use super::*;
use switchboard_test_support::ADMIN_TOKEN;

/// Changes the server `id_or_alias`, which must succeed; returns its record.
pub(crate) async fn update(server: &Switchboard, id_or_alias: &str, body: Value) -> Value {
    let (status, patched) = server
        .send_json(
            Method::PATCH,
            &format!("/api/mcp-servers/{id_or_alias}"),
            Some(&body),
        )
        .await
        .expect("answers");
    assert_eq!(status, 200, "{patched}");
    patched
}

pub(crate) use switchboard_test_support::postgres::{fresh_database, psql};

/// The tool names `session` lists on `path`.
pub(crate) async fn session_tool_names(
    server: &Switchboard,
    path: &str,
    session: &str,
) -> Vec<String> {
    let listed = request_raw(
        server,
        path,
        session,
        json!({"jsonrpc": "2.0", "id": 10, "method": "tools/list"}),
    )
    .await;
    listed["result"]["tools"]
        .as_array()
        .unwrap_or_else(|| panic!("tools: {listed}"))
        .iter()
        .filter_map(|tool| tool["name"].as_str().map(str::to_string))
        .collect()
}

/// The value of one sample in a Prometheus text exposition, 0 when absent.
pub(crate) fn sample(text: &str, name_and_labels: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(name_and_labels)?.trim().parse().ok())
        .unwrap_or(0.0)
}

/// The Python fixture, and `switchboard serve` (with `args`) serving it as `calc`.
pub(crate) async fn calc_behind_gateway(
    args: &[&str],
) -> (switchboard_test_support::PeerServer, Switchboard) {
    let python = start_python("streamable-http")
        .await
        .expect("python fixture");
    let server = serve(args).await;
    register(
        &server,
        &remote_body("Calc", &python.url("/mcp"), Some("calc")),
    )
    .await;
    (python, server)
}

/// An in-process rmcp server with one `echo` tool (Nagle left on), and `switchboard serve` run
/// with `args` serving it as `echo`.
pub(crate) async fn echo_behind_gateway(
    args: &[&str],
) -> (switchboard_test_support::InProcessServer, Switchboard) {
    let upstream = switchboard_test_support::InProcessServer::start()
        .await
        .expect("upstream");
    let server = serve(args).await;
    register(&server, &remote_body("Echo", &upstream.url, Some("echo"))).await;
    (upstream, server)
}

/// server-everything over HTTP, and `switchboard serve` serving it as `everything`.
pub(crate) async fn everything_behind_gateway()
-> (switchboard_test_support::PeerServer, Switchboard) {
    let server = serve(&[]).await;
    let everything = register_everything(&server, "everything").await;
    (everything, server)
}

/// How many proxied calls took the raw path so far.
pub(crate) async fn raw_calls(server: &Switchboard) -> f64 {
    metric(server, "switchboard_raw_calls_total").await
}

/// The gateway's metric `name` now.
pub(crate) async fn metric(server: &Switchboard, name: &str) -> f64 {
    let response = server
        .request(Method::GET, "/metrics")
        .send()
        .await
        .expect("answers");
    let text = response.text().await.expect("text");
    sample(&text, name)
}

/// A client of ours on `path`, which speaks 2026-07-28, and what it hears unasked.
pub(crate) async fn modern_client(
    server: &Switchboard,
    path: &str,
) -> (
    switchboard_mcp::Upstream,
    tokio::sync::broadcast::Receiver<switchboard_mcp::UpstreamEvent>,
) {
    let client = mcp_client(server, path).await;
    assert_eq!(
        client.protocol_version().map(|v| v.to_string()).as_deref(),
        Some("2026-07-28")
    );
    let events = client.events();
    (client, events)
}

/// The tool names `client` lists.
pub(crate) async fn tool_names(client: &switchboard_mcp::Upstream) -> Vec<String> {
    client
        .list_tools()
        .await
        .expect("lists")
        .into_iter()
        .map(|t| t.name.to_string())
        .collect()
}

/// Waits until a client of ours hears that the tools changed.
pub(crate) async fn await_tools_changed(
    events: &mut tokio::sync::broadcast::Receiver<switchboard_mcp::UpstreamEvent>,
) {
    let heard = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let Ok(switchboard_mcp::UpstreamEvent::ToolsChanged) = events.recv().await {
                return;
            }
        }
    })
    .await;
    assert!(
        heard.is_ok(),
        "no list change reached the 2026-07-28 client"
    );
}

/// Posts one JSON-RPC message to `path`, on `session` when given, as a client of 2025-11-25.
pub(crate) async fn post_raw(
    server: &Switchboard,
    path: &str,
    session: Option<&str>,
    body: Value,
) -> reqwest::Response {
    post_raw_as(server, ADMIN_TOKEN, path, session, body).await
}

/// [`post_raw`] with another bearer token.
pub(crate) async fn post_raw_as(
    server: &Switchboard,
    token: &str,
    path: &str,
    session: Option<&str>,
    body: Value,
) -> reqwest::Response {
    post_raw_to(&server.url(path), token, session, body).await
}

/// [`post_raw_as`] to a whole URL (a load balancer's).
pub(crate) async fn post_raw_to(
    url: &str,
    token: &str,
    session: Option<&str>,
    body: Value,
) -> reqwest::Response {
    let mut request = switchboard_test_support::http_client()
        .post(url)
        .bearer_auth(token)
        .header("accept", "application/json, text/event-stream")
        .json(&body);
    if let Some(session) = session {
        request = request
            .header("mcp-session-id", session)
            .header("mcp-protocol-version", "2025-11-25");
    }
    request.send().await.expect("the gateway answers")
}

/// Posts a request on `session` and returns its JSON-RPC answer, sent as JSON or as the last
/// event of a stream, checking that it is a 200.
pub(crate) async fn request_raw(
    server: &Switchboard,
    path: &str,
    session: &str,
    body: Value,
) -> Value {
    let answered = post_raw(server, path, Some(session), body).await;
    let status = answered.status();
    let text = answered.text().await.expect("reads");
    assert_eq!(status, 200, "{text}");
    answer_of(&text)
}

/// The JSON-RPC answer in a body sent as JSON or as an event stream (its last event).
pub(crate) fn answer_of(text: &str) -> Value {
    let json = text
        .lines()
        .filter_map(|line| line.strip_prefix("data:"))
        .map(str::trim)
        .rfind(|data| !data.is_empty())
        .unwrap_or(text);
    serde_json::from_str(json).unwrap_or_else(|_| panic!("a JSON-RPC answer: {text}"))
}

/// Starts server-everything over HTTP and registers it on `server` as `alias`.
pub(crate) async fn register_everything(
    server: &Switchboard,
    alias: &str,
) -> switchboard_test_support::PeerServer {
    let everything = switchboard_test_support::start_everything("streamableHttp")
        .await
        .expect("server-everything");
    register(
        server,
        &remote_body("Everything", &everything.url("/mcp"), Some(alias)),
    )
    .await;
    everything
}

/// Opens a session on `path` by hand, as a client that answers no server-to-client requests,
/// and returns its id.
pub(crate) async fn open_raw_session(server: &Switchboard, path: &str) -> String {
    open_raw_session_with(server, path, json!({})).await
}

/// Opens a session on `path` by hand, as a client with `capabilities`, and returns its id.
pub(crate) async fn open_raw_session_with(
    server: &Switchboard,
    path: &str,
    capabilities: Value,
) -> String {
    open_raw_session_as(server, ADMIN_TOKEN, path, capabilities).await
}

/// [`open_raw_session_with`] with another bearer token.
pub(crate) async fn open_raw_session_as(
    server: &Switchboard,
    token: &str,
    path: &str,
    capabilities: Value,
) -> String {
    open_raw_session_at(&server.url(path), token, capabilities).await
}

/// [`open_raw_session_as`] at a whole URL (a load balancer's).
pub(crate) async fn open_raw_session_at(url: &str, token: &str, capabilities: Value) -> String {
    let opened = post_raw_to(
        url,
        token,
        None,
        json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": capabilities,
            "clientInfo": {"name": "raw-test", "version": "1"}}}),
    )
    .await;
    let session = opened
        .headers()
        .get("mcp-session-id")
        .and_then(|value| value.to_str().ok())
        .expect("a session id")
        .to_string();
    opened.bytes().await.expect("reads");
    let initialized = post_raw_to(
        url,
        token,
        Some(&session),
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
    )
    .await;
    assert_eq!(initialized.status(), 202);
    session
}

/// Calls `echo` with "hi" on `/mcp/echo` in the raw `session`, as request `id`, and checks the
/// answer.
pub(crate) async fn echo_hi_raw(server: &Switchboard, session: &str, id: u32) {
    let answer = request_raw(
        server,
        "/mcp/echo",
        session,
        json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
            "params": {"name": "echo", "arguments": {"message": "hi"}}}),
    )
    .await;
    assert_eq!(answer["result"]["content"][0]["text"], "hi", "{answer}");
}

/// The tool names a client script printed (its `tools`).
pub(crate) fn printed_tools(answer: &Value) -> Vec<&str> {
    answer["tools"]
        .as_array()
        .unwrap_or_else(|| panic!("tools: {answer}"))
        .iter()
        .filter_map(Value::as_str)
        .collect()
}

/// The Python SDK's 2026-07-28 `mcp.Client` calls the Python fixture's `confirm` (`tool`, as
/// `path` names it) through the gateway: the fixture answers `input_required` with an
/// elicitation, and the client fulfils it and calls again with its answer and the echoed state.
pub(crate) async fn confirm_through(server: &Switchboard, path: &str, tool: &str) {
    let answer = run_client(
        &switchboard_test_support::python(),
        "python_mrtr.py",
        &[
            &server.url(path),
            switchboard_test_support::ADMIN_TOKEN,
            tool,
            r#"{"action": "deploy"}"#,
        ],
    )
    .await;
    assert_eq!(answer["protocolVersion"], "2026-07-28", "{answer}");
    assert_eq!(answer["elicited"], json!(["Confirm deploy?"]), "{answer}");
    assert_eq!(
        answer["result"]["structuredContent"]["result"],
        "deploy: accept ok=True state=pending deploy",
        "{answer}"
    );
}
