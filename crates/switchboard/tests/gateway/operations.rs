//! Operating the gateway: audit, metrics, breakers, rate limits, cancellation, tokens, and how
//! connections are served.

use super::*;

#[tokio::test]
async fn the_audit_log_records_calls_admin_actions_and_refusals() {
    let python = start_python("streamable-http")
        .await
        .expect("python fixture");
    let server = serve(&[]).await;
    let mut calc = remote_body("Calc", &python.url("/mcp"), Some("calc"));
    calc["tools"] = json!({"rename": {"add": "plus"}, "pinned": {"add": {"b": 40}}});
    register(&server, &calc).await;
    let (status, _) = server
        .send_json(
            Method::POST,
            "/api/mcp-servers",
            Some(&remote_body("Bad", "ftp://x", Some("bad"))),
        )
        .await
        .expect("answers");
    assert_eq!(status, 400);
    let token = switchboard_test_support::ADMIN_TOKEN;
    let url = server.url("/mcp/calc");
    run_client(
        &switchboard_test_support::python(),
        "python_client.py",
        &[&url, token, "plus", r#"{"a": 2}"#],
    )
    .await;
    // The same call on the raw path and, with `_meta` only rmcp's model carries, the typed one.
    let session = open_raw_session(&server, "/mcp/calc").await;
    let raw_before = raw_calls(&server).await;
    for (id, meta) in [(1, json!({})), (2, json!({"note": "typed path"}))] {
        let answer = request_raw(
            &server,
            "/mcp/calc",
            &session,
            json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
                "params": {"name": "plus", "arguments": {"a": 2}, "_meta": meta}}),
        )
        .await;
        assert_eq!(
            answer["result"]["structuredContent"]["result"], 42,
            "{answer}"
        );
    }
    assert_eq!(raw_calls(&server).await - raw_before, 1.0);
    let denied = switchboard_test_support::http_client()
        .get(server.url("/api/mcp-servers"))
        .bearer_auth("not-the-token-123")
        .send()
        .await
        .expect("answers");
    assert_eq!(denied.status(), 401);
    let llm = ScriptedLlm::start(vec![
        Reply::call("plus", json!({"a": 1})),
        Reply::text("41"),
    ])
    .await;
    let run = json!({"task": "t", "model": "m", "base_url": llm.base_url(), "mcp_servers": [{"name": "calc"}]});
    let (status, _) = server.post_run(&run).await.expect("answers");
    assert_eq!(status, 200);

    let (status, audit) = server
        .send_json(Method::GET, "/api/audit?limit=1000", None)
        .await
        .expect("answers");
    assert_eq!(status, 200, "{audit}");
    let rows = audit["items"].as_array().expect("items");
    let find = |kind: &str, action: &str| {
        rows.iter()
            .find(|r| r["kind"] == kind && r["action"] == action)
            .unwrap_or_else(|| panic!("no {kind} {action} row in {rows:?}"))
            .clone()
    };
    let created = find("admin", "server.create");
    assert_eq!(
        (created["server"].as_str(), created["outcome"].as_str()),
        (Some("calc"), Some("ok"))
    );
    assert!(
        rows.iter()
            .any(|r| r["action"] == "server.create" && r["outcome"] == "error")
    );
    let call = find("tool_call", "tools/call");
    assert_eq!(call["server"], "calc");
    assert_eq!(call["tool"], "plus");
    assert_eq!(call["outcome"], "ok");
    assert_eq!(call["actor"], "admin token");
    // Every path records who called, as the policy decided the request.
    let calls: Vec<&Value> = rows.iter().filter(|r| r["kind"] == "tool_call").collect();
    assert_eq!(calls.len(), 3, "{calls:?}");
    assert!(
        calls.iter().all(|r| r["actor"] == "admin token"),
        "{calls:?}"
    );
    // Every use of the admin token, the break-glass credential, is on record.
    for action in ["GET /api/audit", "POST /mcp/calc"] {
        assert!(
            rows.iter().any(|r| r["kind"] == "access"
                && r["actor"] == "admin token"
                && r["action"] == action),
            "{action}: {rows:?}"
        );
    }
    let detail: Value =
        serde_json::from_str(call["detail"].as_str().expect("detail")).expect("json");
    assert_eq!(detail["argumentsSha256"].as_str().map(str::len), Some(64));
    let ran = find("run_tool_call", "tools/call");
    assert_eq!(
        (ran["server"].as_str(), ran["tool"].as_str()),
        (Some("calc"), Some("plus"))
    );
    let refused = rows
        .iter()
        .find(|r| r["kind"] == "access" && r["outcome"] == "denied")
        .expect("an access row");
    assert_eq!(refused["action"], "GET /api/mcp-servers");
    assert!(
        !audit.to_string().contains("not-the-token-123"),
        "a refused token was recorded"
    );

    // Filters and pages.
    let (_, only_calls) = server
        .send_json(
            Method::GET,
            "/api/audit?server=calc&tool=plus&outcome=ok&limit=1",
            None,
        )
        .await
        .expect("answers");
    let first = &only_calls["items"][0];
    assert_eq!(first["tool"], "plus");
    let cursor = only_calls["nextCursor"].as_str().expect("a next page");
    let (_, next) = server
        .send_json(
            Method::GET,
            &format!("/api/audit?server=calc&tool=plus&outcome=ok&limit=1&cursor={cursor}"),
            None,
        )
        .await
        .expect("answers");
    assert_ne!(next["items"][0]["id"], first["id"]);
    for bad in ["limit=0", "outcome=maybe", "surprise=1", "since=yesterday"] {
        let (status, answer) = server
            .send_json(Method::GET, &format!("/api/audit?{bad}"), None)
            .await
            .expect("answers");
        assert_eq!(
            (status, answer["error"]["code"].as_str()),
            (400, Some("invalid_request")),
            "{bad}"
        );
    }
}

/// Calls the echo upstream's `echo` with "hi" through `client`, and checks the answer.
async fn echo_hi(client: &switchboard_mcp::Upstream) {
    let result = client
        .call_tool(
            "echo",
            json!({"message": "hi"}).as_object().cloned(),
            Default::default(),
        )
        .await
        .expect("calls");
    assert_eq!(
        result.content[0].as_text().map(|t| t.text.as_str()),
        Some("hi")
    );
}

#[tokio::test]
async fn metrics_move_readiness_answers_and_logs_are_json_lines() {
    let python = start_python("streamable-http")
        .await
        .expect("python fixture");
    let server = serve(&["--log-format", "json"]).await;
    let ready = switchboard_test_support::http_client()
        .get(server.url("/readyz"))
        .send()
        .await
        .expect("answers");
    assert_eq!(ready.status(), 200);
    register(
        &server,
        &remote_body("Calc", &python.url("/mcp"), Some("calc")),
    )
    .await;
    let scrape = || async {
        let response = server
            .request(Method::GET, "/metrics")
            .send()
            .await
            .expect("answers");
        assert_eq!(response.status(), 200);
        response.text().await.expect("text")
    };
    let calls = r#"switchboard_tool_calls_total{server="calc",tool="add",outcome="ok"}"#;
    let before = scrape().await;
    assert_eq!(sample(&before, calls), 0.0);
    let url = server.url("/mcp/calc");
    let token = switchboard_test_support::ADMIN_TOKEN;
    run_client(
        &switchboard_test_support::python(),
        "python_client.py",
        &[&url, token, "add", r#"{"a": 1, "b": 2}"#],
    )
    .await;
    let llm = ScriptedLlm::start(vec![
        Reply::call("add", json!({"a": 1, "b": 1})),
        Reply::text("2"),
    ])
    .await;
    let run = json!({"task": "t", "model": "m", "base_url": llm.base_url(), "mcp_servers": [{"name": "calc"}]});
    let (status, _) = server.post_run(&run).await.expect("answers");
    assert_eq!(status, 200);

    let after = scrape().await;
    assert_eq!(
        sample(&after, calls),
        2.0,
        "one proxied call and one run call:\n{after}"
    );
    assert!(
        sample(
            &after,
            r#"switchboard_http_requests_total{endpoint="/mcp/{server}",status="200"}"#
        ) >= 1.0
    );
    assert_eq!(
        sample(
            &after,
            r#"switchboard_upstream_state{server="calc",state="connected"}"#
        ),
        1.0
    );
    assert_eq!(
        sample(
            &after,
            r#"switchboard_runs_total{stop_reason="final_answer"}"#
        ),
        1.0
    );
    assert_eq!(
        sample(&after, r#"switchboard_llm_tokens_total{kind="prompt"}"#),
        30.0
    );
    assert!(sample(&after, "switchboard_llm_call_seconds_count") >= 2.0);
    assert!(
        sample(
            &after,
            r#"switchboard_tool_call_seconds_count{server="calc",source="proxy"}"#
        ) >= 1.0
    );
    let anonymous = switchboard_test_support::http_client()
        .get(server.url("/metrics"))
        .send()
        .await
        .expect("answers");
    assert_eq!(anonymous.status(), 401);

    let log = server.log();
    assert!(!log.is_empty());
    for line in log.lines() {
        let parsed: Result<Value, _> = serde_json::from_str(line);
        assert!(parsed.is_ok(), "not a JSON line: {line}");
    }
}

#[tokio::test]
async fn an_open_circuit_shows_in_status_and_metrics() {
    let mut python = start_python("streamable-http")
        .await
        .expect("python fixture");
    let server = serve(&["--breaker-threshold", "1", "--breaker-cooldown-ms", "60000"]).await;
    register(
        &server,
        &remote_body("Calc", &python.url("/mcp"), Some("calc")),
    )
    .await;
    python.kill().await;
    let (status, failed) = server
        .send_json(Method::GET, "/api/mcp-servers/calc/tools", None)
        .await
        .expect("answers");
    assert_eq!(status, 502, "{failed}");
    let (status, fast) = server
        .send_json(Method::GET, "/api/mcp-servers/calc/tools", None)
        .await
        .expect("answers");
    assert_eq!(status, 502);
    assert!(
        fast["error"]["message"]
            .as_str()
            .expect("message")
            .contains("circuit open"),
        "{fast}"
    );
    let (_, record) = server
        .send_json(Method::GET, "/api/mcp-servers/calc", None)
        .await
        .expect("answers");
    assert_eq!(record["status"]["breaker"], "open", "{record}");
    let metrics = server
        .request(Method::GET, "/metrics")
        .send()
        .await
        .expect("answers")
        .text()
        .await
        .expect("text");
    assert_eq!(
        sample(
            &metrics,
            r#"switchboard_upstream_breaker{server="calc",state="open"}"#
        ),
        1.0
    );
}

#[tokio::test]
async fn the_admin_api_is_rate_limited_per_client() {
    let server = serve(&["--admin-rate-limit", "1"]).await;
    let mut statuses = Vec::new();
    for _ in 0..4 {
        let response = server
            .request(Method::GET, "/api/mcp-servers")
            .send()
            .await
            .expect("answers");
        statuses.push(response.status().as_u16());
        if response.status() == 429 {
            assert!(response.headers().contains_key("retry-after"));
            let body: Value = response.json().await.expect("json");
            assert_eq!(body["error"]["code"], "rate_limited");
        }
    }
    assert_eq!(&statuses[..2], [200, 200], "{statuses:?}");
    assert!(statuses[2..].contains(&429), "{statuses:?}");
    // Runs and MCP endpoints have limits of their own, not this one.
    let health = server
        .request(Method::GET, "/healthz")
        .send()
        .await
        .expect("answers");
    assert_eq!(health.status(), 200);
}

#[tokio::test]
async fn a_client_cancel_reaches_the_upstream_through_the_proxy() {
    let (python, server) = calc_behind_gateway(&[]).await;
    let url = server.url("/mcp/calc");
    let token = switchboard_test_support::ADMIN_TOKEN;
    let answer = run_client(
        Path::new("node"),
        "ts_cancel.mjs",
        &[
            &url,
            token,
            "slow",
            r#"{"seconds": 30, "label": "cancel-through-gateway"}"#,
        ],
    )
    .await;
    assert_eq!(answer["cancelled"], true, "{answer}");
    // The call and its cancel took the raw path.
    assert_eq!(raw_calls(&server).await, 1.0);
    assert_cancel_reached(&python, "cancel-through-gateway").await;
}

/// The Python fixture records a cancellation once `notifications/cancelled` reaches it.
async fn assert_cancel_reached(python: &switchboard_test_support::PeerServer, label: &str) {
    let checker = switchboard_mcp::Upstream::new(switchboard_mcp::UpstreamConfig::http(
        "check",
        python.url("/mcp"),
    ));
    await_tool_text(&checker, "cancelled_calls", label).await;
}

#[tokio::test]
async fn a_clients_token_never_reaches_the_upstream_but_the_configured_one_does() {
    let python = start_python("streamable-http")
        .await
        .expect("python fixture");
    let recorder = switchboard_test_support::RecordingProxy::start(&python.url(""))
        .await
        .expect("proxy");
    let server = serve(&[]).await;
    let mut body = remote_body("Calc", &recorder.url("/mcp"), Some("calc"));
    body["manifest"]["remoteConfig"]["headers"] =
        json!({"Authorization": "Bearer upstream-secret"});
    register(&server, &body).await;
    // A typed request (listing) and calls on the raw path, from both SDK clients.
    let answer = run_client(
        Path::new("node"),
        "ts_client.mjs",
        &[
            &server.url("/mcp/calc"),
            switchboard_test_support::ADMIN_TOKEN,
            "add",
            r#"{"a": 1, "b": 2}"#,
        ],
    )
    .await;
    assert_eq!(answer["result"]["structuredContent"]["result"], 3);
    let client = mcp_client(&server, "/mcp/calc").await;
    client
        .call_tool(
            "add",
            json!({"a": 2, "b": 2}).as_object().cloned(),
            Default::default(),
        )
        .await
        .expect("calls");
    assert_eq!(raw_calls(&server).await, 2.0);
    let requests = recorder.requests();
    assert!(recorder.count("tools/call") >= 2, "{requests:?}");
    for request in &requests {
        assert_eq!(
            request.authorization.as_deref(),
            Some("Bearer upstream-secret"),
            "{request:?}"
        );
    }
}

#[tokio::test]
async fn a_raw_call_that_times_out_is_cancelled_upstream() {
    let (python, server) = calc_behind_gateway(&["--tool-timeout", "1"]).await;
    let client = mcp_client(&server, "/mcp/calc").await;
    let error = client
        .call_tool(
            "slow",
            json!({"seconds": 30, "label": "timed-out-fast"})
                .as_object()
                .cloned(),
            switchboard_mcp::RequestOptions {
                timeout: Some(Duration::from_secs(20)),
                ..Default::default()
            },
        )
        .await
        .expect_err("the gateway's timeout ends the call");
    assert!(error.to_string().contains("did not answer"), "{error}");
    assert_eq!(raw_calls(&server).await, 1.0);
    assert_cancel_reached(&python, "timed-out-fast").await;
}

#[tokio::test]
async fn an_upstream_with_nagle_on_neither_stalls_calls_nor_costs_a_connection_each() {
    // rmcp's server on axum, which leaves Nagle's algorithm on for its sockets. It answers with an
    // event stream, whose end it holds until the answer is acknowledged: if the gateway delayed
    // that acknowledgement, the connection would stay busy after each call (about 40 ms), and
    // the next call, made at once, would have to open another. How long calls take is the
    // bench's to measure; this counts the connections.
    let (upstream, server) = echo_behind_gateway(&[]).await;
    let client = mcp_client(&server, "/mcp/echo").await;
    for _ in 0..21 {
        echo_hi(&client).await;
    }
    assert_eq!(raw_calls(&server).await, 21.0);
    // The calls went one after another, each on a connection the last one gave back: besides
    // them, only the typed path's session (its handshake and listing) connects.
    let accepted = upstream.connections_accepted();
    assert!(
        accepted <= 6,
        "21 calls opened {accepted} connections to the upstream"
    );
}

/// A client that speaks HTTP/2 from its first byte (cleartext, with prior knowledge) is served,
/// as `axum::serve` served it.
#[tokio::test]
async fn a_client_speaking_http2_from_the_first_byte_is_served() {
    let (_upstream, server) = echo_behind_gateway(&[]).await;
    let session = open_raw_session(&server, "/mcp/echo").await;
    let client = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .expect("client");
    let answered = client
        .post(server.url("/mcp/echo"))
        .bearer_auth(switchboard_test_support::ADMIN_TOKEN)
        .header("accept", "application/json, text/event-stream")
        .header("mcp-session-id", &session)
        .header("mcp-protocol-version", "2025-11-25")
        .json(&json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call",
            "params": {"name": "echo", "arguments": {"message": "hi"}}}))
        .send()
        .await
        .expect("answers");
    assert_eq!(answered.version(), reqwest::Version::HTTP_2);
    let status = answered.status();
    let text = answered.text().await.expect("reads");
    assert_eq!(status, 200, "{text}");
    assert!(text.contains(r#""text":"hi""#), "{text}");
}

/// Every request on a proxy endpoint is counted once under its route, whether the raw path
/// answers it, declines it to rmcp after reading it, or the router refuses it.
#[tokio::test]
async fn every_proxy_request_is_counted_once_whoever_serves_it() {
    let (_upstream, server) = echo_behind_gateway(&[]).await;
    // `initialize` (200) and `notifications/initialized` (202), which rmcp serves.
    let session = open_raw_session(&server, "/mcp/echo").await;
    for id in 0..3 {
        echo_hi_raw(&server, &session, 10 + id).await;
    }
    assert_eq!(raw_calls(&server).await, 3.0);
    // Read by the raw path, then served by rmcp.
    assert_eq!(
        session_tool_names(&server, "/mcp/echo", &session).await,
        ["echo"]
    );
    let refused = switchboard_test_support::http_client()
        .post(server.url("/mcp/echo"))
        .bearer_auth("not-the-token")
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "ping"}))
        .send()
        .await
        .expect("answers");
    assert_eq!(refused.status(), 401);
    let unknown = post_raw(
        &server,
        "/mcp/nowhere",
        Some(&session),
        json!({"jsonrpc": "2.0", "id": 1, "method": "ping"}),
    )
    .await;
    assert_eq!(unknown.status(), 404);
    let counted = |status: u16| {
        format!(
            r#"switchboard_http_requests_total{{endpoint="/mcp/{{server}}",status="{status}"}}"#
        )
    };
    assert_eq!(metric(&server, &counted(200)).await, 5.0);
    assert_eq!(metric(&server, &counted(202)).await, 1.0);
    assert_eq!(metric(&server, &counted(401)).await, 1.0);
    assert_eq!(metric(&server, &counted(404)).await, 1.0);
}

#[tokio::test]
async fn an_upstream_the_proxy_settings_route_through_a_proxy_stays_on_the_typed_path() {
    let upstream = switchboard_test_support::InProcessServer::start()
        .await
        .expect("upstream");
    // The upstream also answers requests in a forward proxy's absolute form, so it can stand as
    // the proxy in front of itself.
    let proxy = upstream.url.trim_end_matches("/mcp").to_string();
    let server = Switchboard::start(binary(), &[], &[("HTTP_PROXY", &proxy)])
        .await
        .expect("switchboard serve starts");
    register(&server, &remote_body("Echo", &upstream.url, Some("echo"))).await;
    let client = mcp_client(&server, "/mcp/echo").await;
    for _ in 0..3 {
        echo_hi(&client).await;
    }
    // The raw path's client has no proxy support: every call went the typed way.
    assert_eq!(raw_calls(&server).await, 0.0);
}

/// The gateway's `host:port`.
fn address_of(server: &Switchboard) -> &str {
    server.base_url.trim_start_matches("http://")
}

/// `message` posted on `path` in `session`, as the bytes of a plain HTTP/1.1 request, its body
/// framed by `framing`.
fn raw_post(
    server: &Switchboard,
    path: &str,
    session: &str,
    message: &Value,
    framing: Framing,
) -> Vec<u8> {
    let body = message.to_string();
    let head = format!(
        "POST {path} HTTP/1.1\r\nhost: {}\r\nauthorization: Bearer {}\r\n\
         content-type: application/json\r\naccept: application/json, text/event-stream\r\n\
         mcp-session-id: {session}\r\nmcp-protocol-version: 2025-11-25\r\n",
        address_of(server),
        switchboard_test_support::ADMIN_TOKEN
    );
    let request = match framing {
        Framing::Length => format!("{head}content-length: {}\r\n\r\n{body}", body.len()),
        Framing::Chunked => format!(
            "{head}transfer-encoding: chunked\r\n\r\n{:x}\r\n{body}\r\n0\r\n\r\n",
            body.len()
        ),
    };
    request.into_bytes()
}

/// One `tools/call` of echo on `session`, as [`raw_post`] writes it.
fn raw_echo_request(server: &Switchboard, session: &str, id: u32, framing: Framing) -> Vec<u8> {
    let call = json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
        "params": {"name": "echo", "arguments": {"message": "hi"}}});
    raw_post(server, "/mcp/echo", session, &call, framing)
}

#[derive(Clone, Copy)]
enum Framing {
    Length,
    Chunked,
}

/// Appends what `socket` has next to `read`; the connection must not close `when`.
async fn read_more(socket: &mut tokio::net::TcpStream, read: &mut Vec<u8>, when: &str) {
    use tokio::io::AsyncReadExt as _;
    let mut more = [0u8; 4096];
    let n = socket.read(&mut more).await.expect("reads");
    assert!(n > 0, "the connection closed {when}");
    read.extend_from_slice(&more[..n]);
}

/// Reads one answer (framed by its length) from `socket`, keeping what follows it in `read`,
/// and checks that it is echo's "hi" under `id`.
async fn read_echo_answer(socket: &mut tokio::net::TcpStream, read: &mut Vec<u8>, id: u32) {
    let (head_end, length) = loop {
        let text = String::from_utf8_lossy(read);
        if let Some(head_end) = text.find("\r\n\r\n") {
            let length = text[..head_end]
                .lines()
                .find_map(|line| {
                    let (name, value) = line.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse::<usize>().ok())?
                })
                .unwrap_or_else(|| panic!("an answer framed by length: {text}"));
            break (head_end + 4, length);
        }
        read_more(socket, read, "before an answer").await;
    };
    while read.len() < head_end + length {
        read_more(socket, read, "within an answer").await;
    }
    let answer: Vec<u8> = read.drain(..head_end + length).collect();
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
    let body: Value = serde_json::from_slice(&answer[head_end..]).expect("a JSON answer");
    assert_eq!(body["id"], id, "{text}");
    assert_eq!(body["result"]["content"][0]["text"], "hi", "{text}");
}

/// One connection serves raw calls sent back to back in one write, a call that arrives in
/// pieces, and a call with a chunked body, in order.
#[tokio::test]
async fn one_connection_serves_pipelined_split_and_chunked_requests_in_order() {
    use tokio::io::AsyncWriteExt as _;
    let (_upstream, server) = echo_behind_gateway(&[]).await;
    let session = open_raw_session(&server, "/mcp/echo").await;
    let before = raw_calls(&server).await;
    let mut socket = tokio::net::TcpStream::connect(address_of(&server))
        .await
        .expect("connects");
    socket.set_nodelay(true).expect("nodelay");
    let mut read = Vec::new();

    let mut pipelined = raw_echo_request(&server, &session, 1, Framing::Length);
    pipelined.extend(raw_echo_request(&server, &session, 2, Framing::Length));
    socket.write_all(&pipelined).await.expect("writes");
    read_echo_answer(&mut socket, &mut read, 1).await;
    read_echo_answer(&mut socket, &mut read, 2).await;

    let split = raw_echo_request(&server, &session, 3, Framing::Length);
    for piece in [
        &split[..10],
        &split[10..split.len() - 5],
        &split[split.len() - 5..],
    ] {
        socket.write_all(piece).await.expect("writes");
        socket.flush().await.expect("flushes");
    }
    read_echo_answer(&mut socket, &mut read, 3).await;

    // A chunked request, with a plain one right behind it.
    let mut handed_over = raw_echo_request(&server, &session, 4, Framing::Chunked);
    handed_over.extend(raw_echo_request(&server, &session, 5, Framing::Length));
    socket.write_all(&handed_over).await.expect("writes");
    read_echo_answer(&mut socket, &mut read, 4).await;
    read_echo_answer(&mut socket, &mut read, 5).await;
    socket
        .write_all(&raw_echo_request(&server, &session, 6, Framing::Length))
        .await
        .expect("writes");
    read_echo_answer(&mut socket, &mut read, 6).await;
    assert!(read.is_empty(), "{}", String::from_utf8_lossy(&read));
    assert_eq!(raw_calls(&server).await - before, 6.0);
}

/// A client that closes its connection while its raw call runs has the call cancelled
/// upstream.
#[tokio::test]
async fn a_client_that_goes_away_has_its_call_cancelled_upstream() {
    use tokio::io::AsyncWriteExt as _;
    let (python, server) = calc_behind_gateway(&[]).await;
    let session = open_raw_session(&server, "/mcp/calc").await;
    let call = json!({"jsonrpc": "2.0", "id": 9, "method": "tools/call",
        "params": {"name": "slow", "arguments": {"seconds": 30, "label": "client-gone"}}});
    let mut socket = tokio::net::TcpStream::connect(address_of(&server))
        .await
        .expect("connects");
    let request = raw_post(&server, "/mcp/calc", &session, &call, Framing::Length);
    socket.write_all(&request).await.expect("writes");
    let checker = switchboard_mcp::Upstream::new(switchboard_mcp::UpstreamConfig::http(
        "check",
        python.url("/mcp"),
    ));
    await_tool_text(&checker, "started_calls", "client-gone").await;
    drop(socket);
    assert_cancel_reached(&python, "client-gone").await;
}

/// A 2026 client cancels a call by going away (there is no session to send a cancel on): the
/// gateway sends the upstream `notifications/cancelled`, as for a client of a session.
#[tokio::test]
async fn a_stateless_client_that_goes_away_has_its_call_cancelled_upstream() {
    use tokio::io::AsyncWriteExt as _;
    let (python, server) = calc_behind_gateway(&[]).await;
    let body = json!({"jsonrpc": "2.0", "id": 9, "method": "tools/call", "params": {
    "name": "slow", "arguments": {"seconds": 30, "label": "stateless-gone"},
    "_meta": {
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientInfo": {"name": "raw", "version": "1"},
        "io.modelcontextprotocol/clientCapabilities": {}
    }}})
    .to_string();
    let request = format!(
        "POST /mcp/calc HTTP/1.1\r\nhost: {}\r\nauthorization: Bearer {}\r\n\
         content-type: application/json\r\naccept: application/json, text/event-stream\r\n\
         mcp-protocol-version: 2026-07-28\r\nmcp-method: tools/call\r\nmcp-name: slow\r\n\
         content-length: {}\r\n\r\n{body}",
        address_of(&server),
        switchboard_test_support::ADMIN_TOKEN,
        body.len()
    );
    let mut socket = tokio::net::TcpStream::connect(address_of(&server))
        .await
        .expect("connects");
    socket.write_all(request.as_bytes()).await.expect("writes");
    let checker = switchboard_mcp::Upstream::new(switchboard_mcp::UpstreamConfig::http(
        "check",
        python.url("/mcp"),
    ));
    await_tool_text(&checker, "started_calls", "stateless-gone").await;
    drop(socket);
    assert_cancel_reached(&python, "stateless-gone").await;
}
