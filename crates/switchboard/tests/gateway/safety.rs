//! The rules that must hold for every caller: governance, addresses, answer caps, deadlines,
//! bad input, origins, and no acknowledged change without its audit row.

use super::*;

/// Writers register servers as fast as they are answered until the server is killed with
/// SIGKILL in the middle of their writes; then the store, opened afresh, holds every server whose
/// creation was acknowledged, each with its audit row.
async fn acknowledged_changes_keep_their_audit_rows_across_a_crash(database: Option<&str>) {
    // Only the kill stops the writers: no rate limit.
    let mut args = vec!["--admin-rate-limit", "1000000"];
    args.extend(
        database
            .map(|url| ["--database", url])
            .into_iter()
            .flatten(),
    );
    let server = serve(&args).await;
    let acknowledged = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let (count, mut counted) = tokio::sync::watch::channel(0usize);
    let count = std::sync::Arc::new(count);
    let writers: Vec<_> = (0..4)
        .map(|writer| {
            let client = switchboard_test_support::http_client();
            let url = server.url("/api/mcp-servers");
            let acknowledged = acknowledged.clone();
            let count = count.clone();
            tokio::spawn(async move {
                for n in 0.. {
                    let alias = format!("w{writer}-{n}");
                    let body = remote_body("W", "http://127.0.0.1:9/mcp", Some(&alias));
                    let answered = client
                        .post(&url)
                        .bearer_auth(switchboard_test_support::ADMIN_TOKEN)
                        .json(&body)
                        .send()
                        .await;
                    match answered {
                        Ok(response) if response.status() == 201 => {
                            acknowledged.lock().expect("lock").push(alias);
                            count.send_modify(|count| *count += 1);
                        }
                        _ => return,
                    }
                }
            })
        })
        .collect();
    counted
        .wait_for(|count| *count >= 60)
        .await
        .expect("the writers write");
    let pid = server.pid().expect("a pid");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("killed");
    for writer in writers {
        writer.await.expect("the writer ends");
    }
    let url = match database {
        Some(url) => url.to_string(),
        None => format!(
            "sqlite://{}",
            server.data_dir().join("switchboard.db").display()
        ),
    };
    let store = switchboard_store::Store::open(&url).await.expect("opens");
    let servers: std::collections::HashSet<String> = store
        .servers()
        .await
        .expect("lists")
        .into_iter()
        .map(|row| row.alias)
        .collect();
    let rows = store
        .audit(&switchboard_store::AuditQuery {
            limit: 1000,
            ..Default::default()
        })
        .await
        .expect("reads the audit log");
    let audited: std::collections::HashSet<String> = rows
        .iter()
        .filter(|row| row.action == "server.create" && row.outcome == "ok")
        .map(|row| row.server.clone())
        .collect();
    let acknowledged = acknowledged.lock().expect("lock").clone();
    assert!(acknowledged.len() >= 60);
    for alias in &acknowledged {
        assert!(servers.contains(alias), "{alias} was acknowledged but lost");
        assert!(
            audited.contains(alias),
            "{alias} was acknowledged without its audit row"
        );
    }
    // No row claims a change that did not happen.
    assert!(audited.is_subset(&servers), "{audited:?} / {servers:?}");
    store.close().await;
}

#[tokio::test]
async fn acknowledged_changes_keep_their_audit_rows_across_a_crash_on_sqlite() {
    acknowledged_changes_keep_their_audit_rows_across_a_crash(None).await;
}

#[tokio::test]
async fn acknowledged_changes_keep_their_audit_rows_across_a_crash_on_postgres() {
    let url = fresh_database(&format!("switchboard_crash_{}", std::process::id()));
    acknowledged_changes_keep_their_audit_rows_across_a_crash(Some(&url)).await;
}

/// A name that pointed at an allowed address when it was registered and points at a forbidden one
/// now (DNS rebinding) reaches nothing: every connection is judged when it is made, by the raw
/// client and the typed path's alike. The server runs with its own `/etc/hosts`, which the test
/// rewrites; `0.0.0.0` is the forbidden address, as it reaches the upstream on this very host
/// when nothing stops it.
#[tokio::test]
async fn a_name_rebound_to_a_forbidden_address_is_refused_when_connecting() {
    let mut everything = switchboard_test_support::start_everything("streamableHttp")
        .await
        .expect("server-everything");
    let hosts = tempfile::NamedTempFile::new().expect("a hosts file");
    let point = |address: &str| {
        std::fs::write(
            hosts.path(),
            format!("127.0.0.1 localhost\n::1 localhost\n{address} rebind.test\n"),
        )
        .expect("writes the hosts file");
    };
    point("127.0.0.1");
    let server = Switchboard::start_with_hosts(binary(), hosts.path(), &[])
        .await
        .expect("switchboard serve starts");
    let url = format!("http://rebind.test:{}/mcp", everything.port);
    register(&server, &remote_body("Rebind", &url, Some("rebind"))).await;
    let session = open_raw_session(&server, "/mcp/rebind").await;
    let echo = |id: u32, meta: Value| {
        json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
            "params": {"name": "echo", "arguments": {"message": "hi"}, "_meta": meta}})
    };
    for id in 1..=2 {
        let answer = request_raw(&server, "/mcp/rebind", &session, echo(id, json!({}))).await;
        assert_eq!(
            answer["result"]["content"][0]["text"], "Echo: hi",
            "{answer}"
        );
    }
    assert!(raw_calls(&server).await >= 1.0, "a raw connection was made");

    // The name now points at a forbidden address, and every open connection is gone.
    point("0.0.0.0");
    everything.restart().await.expect("restarts");
    for (id, meta) in [(3, json!({})), (4, json!({"note": "typed path"}))] {
        let answer = request_raw(&server, "/mcp/rebind", &session, echo(id, meta.clone())).await;
        let message = answer["error"]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains("link-local, a cloud metadata service or unspecified"),
            "{meta}: {answer}"
        );
    }
    // A run's URL is judged by what it resolves to now.
    let (status, answer) = server
        .post_run(
            &json!({"task": "t", "model": "m", "base_url": "http://127.0.0.1:9/v1",
            "mcp_servers": [{"url": url}]}),
        )
        .await
        .expect("answers");
    assert_eq!(status, 400, "{answer}");
    assert!(
        !server.log().contains("0.0.0.0"),
        "the log names no address"
    );
}

/// An answer over `--max-answer-bytes` ends its call with a clear error, on the raw path and the
/// typed path alike, and from a legacy SSE upstream, and the next call is served as usual. server-everything echoes what it is
/// sent, so a large message makes a large answer.
#[tokio::test]
async fn an_answer_over_the_cap_ends_its_call_on_both_paths() {
    let everything = switchboard_test_support::start_everything("streamableHttp")
        .await
        .expect("server-everything");
    let server = serve(&["--max-answer-bytes", "100000"]).await;
    register(
        &server,
        &remote_body("Echo", &everything.url("/mcp"), Some("echo")),
    )
    .await;
    let session = open_raw_session(&server, "/mcp/echo").await;
    let echo = |id: u32, message: &str, meta: Value| {
        json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
            "params": {"name": "echo", "arguments": {"message": message}, "_meta": meta}})
    };
    // The first call opens the upstream session, so that the next plain ones take the raw path.
    let answer = request_raw(&server, "/mcp/echo", &session, echo(1, "hi", json!({}))).await;
    assert_eq!(
        answer["result"]["content"][0]["text"], "Echo: hi",
        "{answer}"
    );
    let large = "x".repeat(150_000);
    for (id, meta) in [(2, json!({})), (3, json!({"note": "typed path"}))] {
        let before = raw_calls(&server).await;
        let answer = request_raw(
            &server,
            "/mcp/echo",
            &session,
            echo(id, &large, meta.clone()),
        )
        .await;
        let message = answer["error"]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains("exceeded") && message.contains("100000 bytes"),
            "{meta}: {}",
            &answer.to_string()[..answer.to_string().len().min(500)]
        );
        let raw = raw_calls(&server).await - before;
        assert_eq!(raw, if meta == json!({}) { 1.0 } else { 0.0 }, "{meta}");
        let small = request_raw(&server, "/mcp/echo", &session, echo(id + 10, "again", meta)).await;
        assert_eq!(
            small["result"]["content"][0]["text"], "Echo: again",
            "{small}"
        );
    }
    // A legacy SSE upstream's events are capped alike.
    let legacy = switchboard_test_support::start_everything("sse")
        .await
        .expect("server-everything over SSE");
    let mut body = remote_body("Old", &legacy.url("/sse"), Some("old"));
    body["manifest"]["remoteConfig"]["transport"] = json!("sse");
    register(&server, &body).await;
    let session = open_raw_session(&server, "/mcp/old").await;
    let answer = request_raw(&server, "/mcp/old", &session, echo(20, &large, json!({}))).await;
    let message = answer["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("exceeded") && message.contains("100000 bytes"),
        "legacy SSE: {}",
        &answer.to_string()[..answer.to_string().len().min(500)]
    );
    let small = request_raw(&server, "/mcp/old", &session, echo(21, "again", json!({}))).await;
    assert_eq!(
        small["result"]["content"][0]["text"], "Echo: again",
        "{small}"
    );
}

/// A plain call to an upstream that accepts TCP but never finishes its handshake fails once, with
/// the handshake's own error: the raw path does not drop it and leave the typed path to try a
/// second handshake, which would make the client wait twice.
#[tokio::test]
async fn a_raw_call_to_an_upstream_that_never_answers_tries_it_once() {
    let silent = switchboard_test_support::SilentServer::start()
        .await
        .expect("a silent upstream");
    let server = serve(&["--tool-timeout", "1", "--aggregate-deadline-ms", "200"]).await;
    let url = format!("{}/mcp", silent.base_url);
    register(&server, &remote_body("Silent", &url, Some("silent"))).await;
    // Opening the session asks the upstream what it can do, for at most the deadline.
    let session = open_raw_session(&server, "/mcp/silent").await;
    let before = silent.connections();
    let answer = request_raw(
        &server,
        "/mcp/silent",
        &session,
        json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": {"name": "echo", "arguments": {}}}),
    )
    .await;
    assert!(answer["error"]["message"].is_string(), "{answer}");
    assert_eq!(
        silent.connections() - before,
        1,
        "one handshake for one call: {answer}"
    );
}

/// While one enabled server hangs, `/mcp` leaves it out after one missed deadline and lists the
/// others without asking it again on every page; its listing goes on in the background. The
/// upstream timeout is long, so that the background listing is still running when the pages
/// are read.
#[tokio::test]
async fn a_hanging_server_is_left_out_of_the_aggregate_and_not_asked_on_every_page() {
    let python = start_python("streamable-http")
        .await
        .expect("python fixture");
    let silent = switchboard_test_support::SilentServer::start()
        .await
        .expect("a silent upstream");
    let server = serve(&[
        "--aggregate-deadline-ms",
        "300",
        "--tool-timeout",
        "600",
        "--tools-page-size",
        "2",
    ])
    .await;
    register(
        &server,
        &remote_body("Calc", &python.url("/mcp"), Some("calc")),
    )
    .await;
    let hanging = format!("{}/mcp", silent.base_url);
    register(&server, &remote_body("Hang", &hanging, Some("hang"))).await;
    let session = open_raw_session(&server, "/mcp").await;
    let mut names = Vec::new();
    let mut cursor = Value::Null;
    for id in 1.. {
        let mut params = json!({});
        if !cursor.is_null() {
            params["cursor"] = cursor.clone();
        }
        let answer = request_raw(
            &server,
            "/mcp",
            &session,
            json!({"jsonrpc": "2.0", "id": id, "method": "tools/list", "params": params}),
        )
        .await;
        let tools = answer["result"]["tools"].as_array().expect("tools").clone();
        names.extend(
            tools
                .iter()
                .filter_map(|t| t["name"].as_str().map(str::to_string)),
        );
        cursor = answer["result"]["nextCursor"].clone();
        if cursor.is_null() {
            break;
        }
    }
    assert!(names.len() > 4, "several pages: {names:?}");
    assert!(
        names.iter().all(|name| name.starts_with("calc__")),
        "{names:?}"
    );
    for tool in ["calc__add", "calc__bumps"] {
        assert!(names.contains(&tool.to_string()), "{tool}: {names:?}");
    }
    let answer = request_raw(
        &server,
        "/mcp",
        &session,
        json!({"jsonrpc": "2.0", "id": 100, "method": "tools/call",
            "params": {"name": "calc__add", "arguments": {"a": 1, "b": 2},
                "_meta": {"note": "typed path"}}}),
    )
    .await;
    assert_eq!(
        answer["result"]["structuredContent"]["result"], 3,
        "{answer}"
    );
    assert_eq!(silent.connections(), 1, "the hanging server was tried once");
    let (_, hang) = server
        .send_json(Method::GET, "/api/mcp-servers/hang", None)
        .await
        .expect("answers");
    let status = hang["status"]["message"].as_str().unwrap_or_default();
    assert!(status.contains("left out of /mcp"), "{hang}");
}

/// Bad input on the MCP endpoints gets a status and a JSON-RPC error in a JSON body: malformed
/// JSON (-32700), a batch, an id that is an object or a fraction (never echoed), a forged session,
/// a bad protocol version. A foreign `Origin` is refused with 403 on every MCP endpoint, whoever
/// serves it; a loopback one and a configured one are let through.
#[tokio::test]
async fn bad_input_and_foreign_origins_get_json_rpc_errors_on_every_mcp_endpoint() {
    let python = start_python("streamable-http")
        .await
        .expect("python fixture");
    let server = serve(&["--allowed-origin", "https://console.example.com"]).await;
    register(
        &server,
        &remote_body("Calc", &python.url("/mcp"), Some("calc")),
    )
    .await;
    let post = |path: &str, session: Option<&str>, body: &str, extra: &[(&str, &str)]| {
        let mut request = server
            .request(Method::POST, path)
            .header("accept", "application/json, text/event-stream")
            .header("content-type", "application/json")
            .body(body.to_string());
        if let Some(session) = session {
            request = request
                .header("mcp-session-id", session)
                .header("mcp-protocol-version", "2025-11-25");
        }
        for (name, value) in extra {
            request = request.header(*name, *value);
        }
        async move {
            let response = request.send().await.expect("answers");
            let status = response.status().as_u16();
            let json = response
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.starts_with("application/json"));
            let text = response.text().await.expect("reads");
            (status, json, text)
        }
    };
    let session = open_raw_session(&server, "/mcp/calc").await;
    let aggregate = open_raw_session(&server, "/mcp").await;
    let call = |id: &str| {
        format!(
            r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"add","arguments":{{"a":1,"b":2}}}}}}"#
        )
    };
    // Path, session, body, extra headers, and the status and JSON-RPC code expected.
    type Case<'a> = (
        &'a str,
        Option<&'a str>,
        String,
        &'a [(&'a str, &'a str)],
        u16,
        i64,
    );
    let cases: Vec<Case<'_>> = vec![
        ("/mcp/calc", Some(&session), "{bad".into(), &[], 400, -32700),
        ("/mcp", Some(&aggregate), "{bad".into(), &[], 400, -32700),
        ("/mcp/admin", None, "not json".into(), &[], 400, -32700),
        (
            "/mcp/calc",
            Some(&session),
            format!("[{}]", call("1")),
            &[],
            400,
            -32600,
        ),
        (
            "/mcp/calc",
            Some(&session),
            call(r#"{"a":1}"#),
            &[],
            400,
            -32600,
        ),
        ("/mcp/calc", Some(&session), call("1.5"), &[], 400, -32600),
        (
            "/mcp",
            Some(&aggregate),
            call(r#"{"a":1}"#),
            &[],
            400,
            -32600,
        ),
        (
            "/mcp/calc",
            Some(&session),
            r#"{"hello":"world"}"#.into(),
            &[],
            400,
            -32600,
        ),
        (
            "/mcp/calc",
            Some("forged-session"),
            call("1"),
            &[],
            404,
            -32600,
        ),
        (
            "/mcp/calc",
            None,
            call("1"),
            &[("mcp-protocol-version", "1999-01-01")],
            400,
            -32600,
        ),
        (
            "/mcp/calc",
            Some(&session),
            call("1"),
            &[("origin", "https://evil.test")],
            403,
            -32600,
        ),
        (
            "/mcp",
            Some(&aggregate),
            call("1"),
            &[("origin", "https://evil.test")],
            403,
            -32600,
        ),
        (
            "/mcp/admin",
            None,
            call("1"),
            &[("origin", "http://evil.test:80")],
            403,
            -32600,
        ),
    ];
    for (path, session, body, extra, status, code) in cases {
        let (got, json, text) = post(path, session, &body, extra).await;
        assert_eq!(got, status, "{path} {body} {extra:?}: {text}");
        assert!(json, "{path} {body}: a JSON body, not {text}");
        let answer: Value = serde_json::from_str(&text).expect("JSON");
        assert_eq!(answer["error"]["code"], code, "{path} {body}: {text}");
        assert!(answer["error"]["message"].is_string(), "{text}");
        assert_eq!(
            answer["id"],
            Value::Null,
            "the bad id is not echoed: {text}"
        );
    }
    // The GET streams refuse a foreign origin too.
    for path in ["/mcp/calc", "/mcp/calc/sse"] {
        let response = server
            .request(Method::GET, path)
            .header("accept", "text/event-stream")
            .header("origin", "https://evil.test")
            .send()
            .await
            .expect("answers");
        assert_eq!(response.status(), 403, "{path}");
    }
    // Good ids, and allowed origins, are served (the string id on the raw path).
    for (id, origin) in [
        (r#""s-1""#, None),
        ("7", Some("http://localhost:6274")),
        ("8", Some("https://console.example.com")),
    ] {
        let extra: Vec<(&str, &str)> = origin.map(|o| ("origin", o)).into_iter().collect();
        let (status, _, text) = post("/mcp/calc", Some(&session), &call(id), &extra).await;
        assert_eq!(status, 200, "{id} {origin:?}: {text}");
        let answer = answer_of(&text);
        assert_eq!(answer["id"].to_string(), id, "{text}");
        assert_eq!(answer["result"]["structuredContent"]["result"], 3, "{text}");
    }
}

/// Denied and renamed-away names are refused and pinned parameters win, for a 2026-07-28 client
/// (stateless, on the raw path). Names the upstream never listed, or that governance leaves
/// out, are tried on every path by `an_allow_list_bounds_what_can_be_called_on_every_path`.
#[tokio::test]
async fn governance_cannot_be_bypassed_through_the_proxy() {
    let python = start_python("streamable-http")
        .await
        .expect("python fixture");
    let server = serve(&[]).await;
    let mut calc = remote_body("Calc", &python.url("/mcp"), Some("calc"));
    calc["tools"] =
        json!({"denyTools": ["fail"], "rename": {"add": "plus"}, "pinned": {"add": {"b": 40}}});
    register(&server, &calc).await;
    let client = mcp_client(&server, "/mcp/calc").await;
    let call = |name: &'static str, arguments: Value| {
        let client = client.clone();
        async move {
            client
                .call_tool(name, arguments.as_object().cloned(), Default::default())
                .await
        }
    };
    // A denied tool and a renamed tool's old name are refused, never forwarded.
    for name in ["fail", "add"] {
        let error = call(name, json!({"reason": "x", "a": 1, "b": 1}))
            .await
            .expect_err("refused");
        assert_eq!(error.rpc_code(), Some(-32602), "{name}: {error}");
    }
    // The pinned parameter wins over the caller's.
    let result = call("plus", json!({"a": 2, "b": 1000}))
        .await
        .expect("calls");
    assert_eq!(result.structured_content, Some(json!({"result": 42})));
}

/// The Python fixture runs `danger` but never lists it, and lists `bump`, which the allow-list
/// leaves out. Neither, nor a name nobody serves, nor their prefixed forms, may reach the upstream:
/// through the raw path and the typed path, on `/mcp/{alias}` and `/mcp`, for clients of both
/// eras. Each is refused as an unknown tool, and the upstream's counters show nothing ran.
#[tokio::test]
async fn an_allow_list_bounds_what_can_be_called_on_every_path() {
    let python = start_python("streamable-http")
        .await
        .expect("python fixture");
    let server = serve(&[]).await;
    let mut calc = remote_body("Calc", &python.url("/mcp"), Some("calc"));
    calc["tools"] = json!({"toolPrefix": "c_", "allowTools": ["add", "danger_runs"]});
    register(&server, &calc).await;
    let refused = ["danger", "c_danger", "bump", "c_bump", "ghost", "c_ghost"];

    // A 2025-era session: plain calls take the raw path, calls with other `_meta` the typed one.
    for (path, prefix) in [("/mcp/calc", ""), ("/mcp", "calc__")] {
        let session = open_raw_session(&server, path).await;
        for (index, name) in refused.iter().enumerate() {
            for meta in [json!({}), json!({"note": "typed path"})] {
                let before = raw_calls(&server).await;
                let answer = request_raw(
                    &server,
                    path,
                    &session,
                    json!({"jsonrpc": "2.0", "id": index, "method": "tools/call",
                        "params": {"name": format!("{prefix}{name}"), "arguments": {},
                            "_meta": meta}}),
                )
                .await;
                assert_eq!(answer["error"]["code"], -32602, "{path} {name}: {answer}");
                let message = answer["error"]["message"].as_str().unwrap_or_default();
                assert!(message.contains("unknown tool"), "{path} {name}: {answer}");
                let raw = raw_calls(&server).await - before;
                let expected = if meta == json!({}) { 1.0 } else { 0.0 };
                assert_eq!(raw, expected, "{path} {name} {meta}: which path served it");
            }
        }
    }
    // A 2026-07-28 client of either endpoint.
    for (path, prefix) in [("/mcp/calc", ""), ("/mcp", "calc__")] {
        let client = mcp_client(&server, path).await;
        for name in refused {
            let error = client
                .call_tool(&format!("{prefix}{name}"), None, Default::default())
                .await
                .expect_err("refused");
            assert_eq!(error.rpc_code(), Some(-32602), "{path} {name}: {error}");
        }
        let runs = client
            .call_tool(&format!("{prefix}c_danger_runs"), None, Default::default())
            .await
            .expect("an allowed tool runs");
        assert_eq!(runs.structured_content, Some(json!({"result": 0})));
    }
    // Asked directly, the upstream confirms that nothing it was not allowed to run ran.
    let direct = switchboard_mcp::Upstream::connect(switchboard_mcp::UpstreamConfig::http(
        "direct",
        python.url("/mcp"),
    ))
    .await
    .expect("connects");
    for (tool, runs) in [("danger_runs", 0), ("bumps", 0)] {
        let result = direct
            .call_tool(tool, None, Default::default())
            .await
            .expect("calls");
        assert_eq!(
            result.structured_content,
            Some(json!({"result": runs})),
            "{tool}"
        );
    }
}

/// The policy decides what a request names before anything is sent: on `/mcp`, a name that does
/// not begin with a server's alias, or that names an unknown or disabled server, is refused as a
/// JSON-RPC error with its stable code, on the raw path's way and the typed one's, for clients
/// of both eras; a disabled server's own endpoint answers 409. The upstream behind the disabled
/// server confirms that nothing ran.
#[tokio::test]
async fn the_policy_refuses_names_of_no_usable_server_before_anything_is_sent() {
    let (python, server) = calc_behind_gateway(&[]).await;
    register(
        &server,
        &remote_body("Quiet", &python.url("/mcp"), Some("quiet")),
    )
    .await;
    update(&server, "quiet", json!({"enabled": false})).await;
    let refused = [
        ("quiet__bump", -32600, "server_disabled"),
        ("ghost__bump", -32600, "not_found"),
        ("bump", -32602, "unknown_name"),
    ];

    let session = open_raw_session(&server, "/mcp").await;
    for (index, (name, code, stable)) in refused.iter().enumerate() {
        // Plain (the raw path's shape) and with other `_meta` (the typed path's).
        for meta in [json!({}), json!({"note": "typed path"})] {
            let answer = request_raw(
                &server,
                "/mcp",
                &session,
                json!({"jsonrpc": "2.0", "id": index, "method": "tools/call",
                    "params": {"name": name, "arguments": {}, "_meta": meta}}),
            )
            .await;
            assert_eq!(answer["id"], index, "{name}: {answer}");
            assert_eq!(answer["error"]["code"], *code, "{name}: {answer}");
            assert_eq!(answer["error"]["data"]["code"], *stable, "{name}: {answer}");
        }
    }
    let client = mcp_client(&server, "/mcp").await;
    for (name, code, _) in refused {
        let error = client
            .call_tool(name, None, Default::default())
            .await
            .expect_err("refused");
        assert_eq!(error.rpc_code(), Some(code), "{name}: {error}");
    }
    // The disabled server's own endpoint, on every transport.
    for (method, path) in [
        (Method::POST, "/mcp/quiet"),
        (Method::GET, "/mcp/quiet/sse"),
        (Method::POST, "/mcp/quiet/message?sessionId=x"),
    ] {
        let answer = server
            .request(method, path)
            .header("accept", "application/json, text/event-stream")
            .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                "params": {"name": "bump"}}))
            .send()
            .await
            .expect("answers");
        assert_eq!(answer.status(), 409, "{path}");
        let body: Value = answer.json().await.expect("a JSON body");
        assert_eq!(body["error"]["code"], "server_disabled", "{path}: {body}");
    }
    let direct = switchboard_mcp::Upstream::connect(switchboard_mcp::UpstreamConfig::http(
        "direct",
        python.url("/mcp"),
    ))
    .await
    .expect("connects");
    let bumps = direct
        .call_tool("bumps", None, Default::default())
        .await
        .expect("calls");
    assert_eq!(bumps.structured_content, Some(json!({"result": 0})));
}
