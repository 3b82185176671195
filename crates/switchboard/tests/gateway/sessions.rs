//! Downstream sessions: the aggregate, definition changes, hibernation, streams and list
//! changes, and runtimes that crash.

use super::*;

#[tokio::test]
async fn the_aggregate_serves_every_server_and_leaves_out_a_dead_one() {
    let python = start_python("streamable-http")
        .await
        .expect("python fixture");
    let everything_http = switchboard_test_support::start_everything("streamableHttp")
        .await
        .expect("server-everything");
    // A server that accepts connections and never answers.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let silent_url = format!("http://{}/mcp", silent.local_addr().expect("addr"));
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((socket, _)) = silent.accept().await {
            open.push(socket);
        }
    });
    let server = serve(&["--aggregate-deadline-ms", "1500"]).await;
    let mut calc = remote_body("Calc", &python.url("/mcp"), Some("calc"));
    calc["tools"] = json!({"rename": {"add": "plus"}, "pinned": {"add": {"b": 40}}});
    for body in [
        calc,
        remote_body(
            "Everything",
            &everything_http.url("/mcp"),
            Some("everything-http"),
        ),
        remote_body("Silent", &silent_url, Some("silent")),
    ] {
        register(&server, &body).await;
    }
    let url = server.url("/mcp");
    let token = switchboard_test_support::ADMIN_TOKEN;
    let answer = run_client(
        Path::new("node"),
        "ts_client.mjs",
        &[&url, token, "calc__plus", r#"{"a": 2}"#],
    )
    .await;
    let tools = printed_tools(&answer);
    assert!(tools.contains(&"calc__plus"), "{tools:?}");
    assert!(tools.contains(&"everything-http__get-sum"), "{tools:?}");
    assert!(!tools.iter().any(|t| t.starts_with("silent__")));
    assert_eq!(answer["result"]["structuredContent"]["result"], 42);
    // `alias__name` resolved on the raw path.
    assert_eq!(raw_calls(&server).await, 1.0);

    let (_, silent_server) = server
        .send_json(Method::GET, "/api/mcp-servers/silent", None)
        .await
        .expect("answers");
    assert_eq!(silent_server["status"]["state"], "error");
    let message = silent_server["status"]["message"]
        .as_str()
        .expect("message");
    assert!(message.contains("left out of /mcp"), "{message}");
    assert!(server.log().contains("left out of /mcp"));
    held.abort();
}

#[tokio::test]
async fn a_crashed_runtime_restarts_and_shutdown_stops_every_child() {
    let marker = format!("crash-{}", std::process::id());
    let mut server = Switchboard::start_in(
        binary(),
        Some(&peers_dir()),
        &["--shutdown-grace", "1"],
        &[],
    )
    .await
    .expect("starts");
    let body = json!({"manifest": {"name": "Everything", "runtime": "npx",
        "npxConfig": {"package": "@modelcontextprotocol/server-everything", "args": ["stdio"]},
        "env": {"RUNTIME_MARKER": marker}}});
    register(&server, &body).await;
    let url = server.url("/mcp/everything");
    let token = switchboard_test_support::ADMIN_TOKEN;
    let sum = |url: String| async move {
        run_client(
            Path::new("node"),
            "ts_client.mjs",
            &[&url, token, "get-sum", r#"{"a": 1, "b": 2}"#],
        )
        .await
    };
    let answer = sum(url.clone()).await;
    assert!(
        answer["result"]["content"][0]["text"]
            .as_str()
            .expect("text")
            .contains('3')
    );

    // A crash: every process of the runtime killed.
    let pids = pids_with_env("RUNTIME_MARKER", &marker);
    assert!(!pids.is_empty());
    for pid in &pids {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(*pid as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    eventually(
        "the killed runtime to be gone",
        Duration::from_millis(20),
        || std::future::ready(pids_with_env("RUNTIME_MARKER", &marker).is_empty()),
    )
    .await;
    let answer = sum(url.clone()).await;
    assert!(
        answer["result"]["content"][0]["text"]
            .as_str()
            .expect("text")
            .contains('3'),
        "{answer}"
    );
    assert!(
        !pids_with_env("RUNTIME_MARKER", &marker).is_empty(),
        "restarted"
    );

    // SIGTERM: the server drains and exits, and the runtime stops with it.
    let status = server.terminate().await.expect("exits");
    assert!(status.success(), "{status:?}");
    eventually(
        "a runtime outlived the server",
        Duration::from_millis(20),
        || std::future::ready(pids_with_env("RUNTIME_MARKER", &marker).is_empty()),
    )
    .await;
}

#[tokio::test]
async fn a_governance_change_applies_to_open_aggregate_sessions() {
    let (_python, server) = calc_behind_gateway(&[]).await;
    // A client that answers no requests, and one that answers sampling requests (it gets an
    // upstream session of its own).
    let sessions = [
        open_raw_session(&server, "/mcp").await,
        open_raw_session_with(&server, "/mcp", json!({"sampling": {}})).await,
    ];
    let add = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
        "params": {"name": "calc__add", "arguments": {"a": 1, "b": 2}}});
    for session in &sessions {
        let answered = request_raw(&server, "/mcp", session, add.clone()).await;
        assert_eq!(
            answered["result"]["structuredContent"]["result"], 3,
            "{answered}"
        );
    }
    update(&server, "calc", json!({"tools": {"denyTools": ["add"]}})).await;
    for session in &sessions {
        let answered = request_raw(&server, "/mcp", session, add.clone()).await;
        assert_eq!(answered["error"]["code"], -32602, "{answered}");
    }
    // A disabled server is refused to both, though each reached it before.
    let weather = json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call",
        "params": {"name": "calc__weather", "arguments": {"city": "Oslo"}}});
    for session in &sessions {
        let answered = request_raw(&server, "/mcp", session, weather.clone()).await;
        assert!(answered["result"].is_object(), "{answered}");
    }
    update(&server, "calc", json!({"enabled": false})).await;
    for session in &sessions {
        let answered = request_raw(&server, "/mcp", session, weather.clone()).await;
        assert!(answered["error"].is_object(), "{answered}");
    }
}

/// Two sessions on `path`, each with its GET stream, once both listen for registry changes: one
/// that sleeps, with its stream served outside rmcp, and one that stays awake (its client can
/// answer sampling requests, so it has an upstream session of its own), with rmcp's stream.
async fn listening_sessions(
    server: &Switchboard,
    path: &str,
) -> ((String, reqwest::Response), (String, reqwest::Response)) {
    let sleeping = open_raw_session(server, path).await;
    let sleeping_stream = open_stream(server, path, &sleeping).await;
    let awake = open_raw_session_with(server, path, json!({"sampling": {}})).await;
    let awake_stream = open_stream(server, path, &awake).await;
    await_hibernated(server, 1.0).await;
    // The awake session's watch begins after its handshake.
    await_metric(server, "switchboard_registry_listeners", 2.0).await;
    ((sleeping, sleeping_stream), (awake, awake_stream))
}

#[tokio::test]
async fn open_server_sessions_outlive_a_definition_change_and_hear_of_it() {
    let (_python, server) = calc_behind_gateway(&[]).await;
    let ((sleeping, mut sleeping_stream), (awake, mut awake_stream)) =
        listening_sessions(&server, "/mcp/calc").await;
    let sessions = [&sleeping, &awake];
    for session in sessions {
        let names = session_tool_names(&server, "/mcp/calc", session).await;
        assert!(names.contains(&"add".to_string()), "{names:?}");
    }

    update(&server, "calc", json!({"tools": {"denyTools": ["add"]}})).await;
    for stream in [&mut sleeping_stream, &mut awake_stream] {
        await_list_changes(stream).await;
    }
    let add = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
        "params": {"name": "add", "arguments": {"a": 1, "b": 2}}});
    for session in sessions {
        let names = session_tool_names(&server, "/mcp/calc", session).await;
        assert!(!names.contains(&"add".to_string()), "{names:?}");
        assert!(names.contains(&"weather".to_string()), "{names:?}");
        let refused = request_raw(&server, "/mcp/calc", session, add.clone()).await;
        assert_eq!(refused["error"]["code"], -32602, "{refused}");
    }

    // Disabled, the server refuses them; enabled again, it serves the same sessions.
    update(&server, "calc", json!({"enabled": false})).await;
    for stream in [&mut sleeping_stream, &mut awake_stream] {
        await_list_changes(stream).await;
    }
    let weather = json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call",
        "params": {"name": "weather", "arguments": {"city": "Oslo"}}});
    for session in sessions {
        let refused = post_raw(&server, "/mcp/calc", Some(session), weather.clone()).await;
        assert_eq!(refused.status(), 409);
    }
    update(&server, "calc", json!({"enabled": true})).await;
    for stream in [&mut sleeping_stream, &mut awake_stream] {
        await_list_changes(stream).await;
    }
    for session in sessions {
        let answered = request_raw(&server, "/mcp/calc", session, weather.clone()).await;
        assert!(answered["result"].is_object(), "{answered}");
    }
}

/// Ends `session` with the client's DELETE, which is answered 204 (the Python SDK logs any other
/// answer than 200 or 204 as a failed termination).
async fn delete_session(server: &Switchboard, path: &str, session: &str) {
    let deleted = server
        .request(Method::DELETE, path)
        .header("mcp-session-id", session)
        .header("mcp-protocol-version", "2025-11-25")
        .send()
        .await
        .expect("answers");
    assert_eq!(deleted.status(), 204);
}

/// Checks that `session` is unknown now.
async fn assert_session_gone(server: &Switchboard, path: &str, session: &str) {
    let gone = post_raw(
        server,
        path,
        Some(session),
        json!({"jsonrpc": "2.0", "id": 99, "method": "ping"}),
    )
    .await;
    assert_eq!(gone.status(), 404);
}

/// Waits until the gateway's metrics show `count` hibernated sessions.
async fn await_hibernated(server: &Switchboard, count: f64) {
    await_metric(server, "switchboard_hibernated_sessions", count).await;
}

/// Waits until the gateway's metric `name` reads `value`.
async fn await_metric(server: &Switchboard, name: &str, value: f64) {
    await_answer(&format!("{name} to read {value}"), || async {
        metric(server, name).await == value
    })
    .await;
}

/// Asks the gateway `ask` until it says yes: what it is asked about (a metric, a status) has no
/// event to await from outside the process. Below the admin API's rate limit (20 a second).
async fn await_answer<F, Fut>(what: &str, ask: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    switchboard_test_support::eventually(what, Duration::from_millis(60), ask).await;
}

#[tokio::test]
async fn a_session_used_only_by_raw_calls_outlives_the_idle_timeout() {
    // A session ends after a second without a request; raw calls never reach rmcp.
    let (_upstream, server) = echo_behind_gateway(&["--session-idle-timeout", "1"]).await;
    let session = open_raw_session(&server, "/mcp/echo").await;
    // A client calling a tool five times a second, for three idle timeouts.
    let mut pace = tokio::time::interval(Duration::from_millis(200));
    let until = std::time::Instant::now() + Duration::from_secs(3);
    let mut calls = 0;
    while std::time::Instant::now() < until {
        pace.tick().await;
        calls += 1;
        echo_hi_raw(&server, &session, 100 + calls).await;
    }
    assert_eq!(raw_calls(&server).await, f64::from(calls));
    // The session still lives: a request rmcp serves itself works on it.
    assert_eq!(
        session_tool_names(&server, "/mcp/echo", &session).await,
        ["echo"]
    );
    // Left alone, it sleeps, and ends after the idle timeout (watched without touching it).
    await_hibernated(&server, 1.0).await;
    await_metric(&server, "switchboard_live_sessions", 0.0).await;
    assert_session_gone(&server, "/mcp/echo", &session).await;
}

#[tokio::test]
async fn deleting_a_server_ends_its_sessions_at_once() {
    let (upstream, server) = echo_behind_gateway(&[]).await;
    // One session that hibernates, and one that stays awake: its client answers sampling.
    let sleeper = open_raw_session(&server, "/mcp/echo").await;
    open_raw_session_with(&server, "/mcp/echo", json!({"sampling": {}})).await;
    await_metric(&server, "switchboard_live_sessions", 2.0).await;
    await_hibernated(&server, 1.0).await;
    let (status, _) = server
        .send_json(Method::DELETE, "/api/mcp-servers/echo", None)
        .await
        .expect("answers");
    assert_eq!(status, 204);
    // Both end now, not after the idle timeout (five minutes here).
    await_metric(&server, "switchboard_live_sessions", 0.0).await;
    await_hibernated(&server, 0.0).await;
    // A server registered again under the alias is a new endpoint, which knows no old session.
    register(&server, &remote_body("Echo", &upstream.url, Some("echo"))).await;
    assert_session_gone(&server, "/mcp/echo", &sleeper).await;
}

#[tokio::test]
async fn an_idle_session_hibernates_and_wakes_for_the_next_request_rmcp_serves() {
    let (_upstream, server) = echo_behind_gateway(&[]).await;
    let session = open_raw_session(&server, "/mcp/echo").await;
    await_hibernated(&server, 1.0).await;
    // A raw call is served without waking it.
    let called = request_raw(
        &server,
        "/mcp/echo",
        &session,
        json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
            "params": {"name": "echo", "arguments": {"message": "asleep"}}}),
    )
    .await;
    assert_eq!(called["result"]["content"][0]["text"], "asleep", "{called}");
    assert_eq!(raw_calls(&server).await, 1.0);
    await_hibernated(&server, 1.0).await;
    // Requests rmcp serves, all at once: the first wakes the session, the others wait for it.
    let lists = (0..8).map(|n| {
        request_raw(
            &server,
            "/mcp/echo",
            &session,
            json!({"jsonrpc": "2.0", "id": 10 + n, "method": "tools/list"}),
        )
    });
    for listed in futures::future::join_all(lists).await {
        assert_eq!(listed["result"]["tools"][0]["name"], "echo", "{listed}");
    }
    // Unused again, it sleeps again; the client's DELETE ends it, asleep as it is.
    await_hibernated(&server, 1.0).await;
    delete_session(&server, "/mcp/echo", &session).await;
    await_hibernated(&server, 0.0).await;
    assert_session_gone(&server, "/mcp/echo", &session).await;
}

/// Opens `session`'s GET stream.
pub(crate) async fn open_stream(
    server: &Switchboard,
    path: &str,
    session: &str,
) -> reqwest::Response {
    let stream = server
        .request(Method::GET, path)
        .header("accept", "text/event-stream")
        .header("mcp-session-id", session)
        .header("mcp-protocol-version", "2025-11-25")
        .send()
        .await
        .expect("opens the stream");
    assert_eq!(stream.status(), 200);
    stream
}

/// Whether `stream` carries `wanted` within `limit` (a bound on a wait for something that may
/// rightly never come, not a timed assertion).
pub(crate) async fn heard_within(
    stream: &mut reqwest::Response,
    wanted: &str,
    limit: Duration,
) -> bool {
    let mut seen = String::new();
    let heard = async {
        while let Some(chunk) = stream.chunk().await.expect("reads the stream") {
            seen.push_str(&String::from_utf8_lossy(&chunk));
            if seen.contains(wanted) {
                return true;
            }
        }
        false
    };
    tokio::time::timeout(limit, heard).await.unwrap_or(false)
}

/// Has the calculator fixture behind `server` add a greeter (`name` and the attempt) on
/// `session`, until `stream` hears that the tools changed, up to three times; whether it heard.
/// A change made before the stream's gateway listens to the upstream is heard by no one, as with
/// a stream opened a moment late: so the change is made again.
pub(crate) async fn list_change_heard(
    server: &Switchboard,
    session: &str,
    stream: &mut reqwest::Response,
    name: &str,
) -> bool {
    for attempt in 0..3 {
        let changed = request_raw(
            server,
            "/mcp/calc",
            session,
            json!({"jsonrpc": "2.0", "id": 100 + attempt, "method": "tools/call",
                "params": {"name": "add_greeter", "arguments": {"name": format!("{name}{attempt}")}}}),
        )
        .await;
        assert!(changed.get("result").is_some(), "{changed}");
        let wanted = "notifications/tools/list_changed";
        if heard_within(stream, wanted, Duration::from_secs(5)).await {
            return true;
        }
    }
    false
}

/// Reads `stream` until it has carried `wanted`, and returns what it carried.
pub(crate) async fn await_on_stream(stream: &mut reqwest::Response, wanted: &str) -> String {
    tokio::time::timeout(Duration::from_secs(10), async {
        let mut seen = String::new();
        while let Some(chunk) = stream.chunk().await.expect("reads the stream") {
            seen.push_str(&String::from_utf8_lossy(&chunk));
            if seen.contains(wanted) {
                return seen;
            }
        }
        panic!("the stream ended: {seen}");
    })
    .await
    .unwrap_or_else(|_| panic!("{wanted} never reached the stream"))
}

/// Opens a session on `path` with its GET stream, sees it sleep with the stream open, has the
/// calculator fixture add a tool (a raw call, which wakes nothing), and checks that the stream
/// hears the list change and that the next listing, which wakes the session, has the new tool
/// (the cached tools were dropped). `prefix` is what the endpoint puts before a tool's name.
/// Returns the session and its stream.
async fn a_list_change_reaches_a_sleeping_stream(
    server: &Switchboard,
    path: &str,
    prefix: &str,
) -> (String, reqwest::Response) {
    let session = open_raw_session(server, path).await;
    let mut stream = open_stream(server, path, &session).await;
    await_hibernated(server, 1.0).await;
    let added = request_raw(
        server,
        path,
        &session,
        json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
            "params": {"name": format!("{prefix}add_greeter"), "arguments": {"name": "ada"}}}),
    )
    .await;
    assert!(added["result"].is_object(), "{added}");
    assert_eq!(raw_calls(server).await, 1.0);
    let heard = await_on_stream(&mut stream, "notifications/tools/list_changed").await;
    assert!(heard.contains(r#""jsonrpc":"2.0""#), "{heard}");
    await_hibernated(server, 1.0).await;
    let names = session_tool_names(server, path, &session).await;
    assert!(names.contains(&format!("{prefix}greet_ada")), "{names:?}");
    (session, stream)
}

#[tokio::test]
async fn a_session_sleeps_with_its_get_stream_open_and_the_stream_hears_list_changes() {
    let (_python, server) = calc_behind_gateway(&[]).await;
    let (session, mut stream) =
        a_list_change_reaches_a_sleeping_stream(&server, "/mcp/calc", "").await;
    // The session's end ends the stream.
    delete_session(&server, "/mcp/calc", &session).await;
    let ended = tokio::time::timeout(Duration::from_secs(10), async {
        while stream.chunk().await.ok().flatten().is_some() {}
    })
    .await;
    assert!(ended.is_ok(), "the stream outlived its session");
}

/// Waits until the server `alias` shows `state` in its `status`.
async fn await_status(server: &Switchboard, alias: &str, state: &str) {
    await_answer(&format!("{alias} to be {state}"), || async {
        let (_, record) = server
            .send_json(Method::GET, &format!("/api/mcp-servers/{alias}"), None)
            .await
            .expect("answers");
        record["status"]["state"] == state
    })
    .await;
}

#[tokio::test]
async fn streams_opened_before_an_upstream_stopped_while_idle_hear_it_once_it_starts_again() {
    // Long enough that the status is read as connected before the upstream idles out, even on a
    // loaded machine.
    let (_python, server) = calc_behind_gateway(&["--runtime-idle-timeout", "3"]).await;
    let mut streams = Vec::new();
    for path in ["/mcp/calc", "/mcp"] {
        let session = open_raw_session(&server, path).await;
        let stream = open_stream(&server, path, &session).await;
        streams.push((path, session, stream));
    }
    let call = |session: String, name: &'static str, arguments: Value| {
        let server = &server;
        async move {
            let answer = request_raw(
                server,
                "/mcp/calc",
                &session,
                json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
                    "params": {"name": name, "arguments": arguments}}),
            )
            .await;
            assert!(answer["result"].is_object(), "{answer}");
        }
    };
    let calc_session = streams[0].1.clone();
    call(calc_session.clone(), "add", json!({"a": 1, "b": 2})).await;
    await_status(&server, "calc", "connected").await;
    // Nothing is called for longer than the idle timeout: the upstream is stopped.
    await_status(&server, "calc", "idle").await;
    // The next call starts it again, and has it change its tool list.
    call(calc_session, "add_greeter", json!({"name": "ada"})).await;
    for (path, _, stream) in &mut streams {
        let heard = await_on_stream(stream, "notifications/tools/list_changed").await;
        assert!(heard.contains(r#""jsonrpc":"2.0""#), "{path}: {heard}");
    }
    // The call went to the upstream the pool shows and stops: connected now, stopped again
    // when idle.
    await_status(&server, "calc", "connected").await;
    await_status(&server, "calc", "idle").await;
}

#[tokio::test]
async fn the_aggregate_stream_relays_a_servers_tool_list_change() {
    let (_python, server) = calc_behind_gateway(&[]).await;
    a_list_change_reaches_a_sleeping_stream(&server, "/mcp", "calc__").await;
}

/// Reads `stream` until it has said that all three of an endpoint's lists changed.
async fn await_list_changes(stream: &mut reqwest::Response) {
    // They are sent in this order.
    let heard = await_on_stream(stream, "notifications/resources/list_changed").await;
    for list in ["tools", "prompts"] {
        assert!(
            heard.contains(&format!("notifications/{list}/list_changed")),
            "{heard}"
        );
    }
}

#[tokio::test]
async fn registry_changes_reach_aggregate_clients_as_list_changes() {
    let (python, server) = calc_behind_gateway(&[]).await;
    let ((sleeping, mut sleeping_stream), (awake, mut awake_stream)) =
        listening_sessions(&server, "/mcp").await;
    let before = session_tool_names(&server, "/mcp", &sleeping).await;
    assert!(!before.iter().any(|name| name.starts_with("calctwo__")));

    let added = register(
        &server,
        &remote_body("Calc two", &python.url("/mcp"), Some("calctwo")),
    )
    .await;
    for stream in [&mut sleeping_stream, &mut awake_stream] {
        await_list_changes(stream).await;
    }
    for session in [&sleeping, &awake] {
        let names = session_tool_names(&server, "/mcp", session).await;
        assert!(names.contains(&"calctwo__add".to_string()), "{names:?}");
    }

    let id = added["id"].as_str().expect("id");
    update(&server, id, json!({"enabled": false})).await;
    for stream in [&mut sleeping_stream, &mut awake_stream] {
        await_list_changes(stream).await;
    }
    let after = session_tool_names(&server, "/mcp", &sleeping).await;
    assert_eq!(after, before);
}

#[tokio::test]
async fn a_2026_client_of_the_aggregate_hears_registry_changes_through_subscriptions_listen() {
    let (python, server) = calc_behind_gateway(&[]).await;
    let (client, mut events) = modern_client(&server, "/mcp").await;
    // The client's subscription has begun on the gateway.
    await_metric(&server, "switchboard_registry_listeners", 1.0).await;
    register(
        &server,
        &remote_body("Calc two", &python.url("/mcp"), Some("calctwo")),
    )
    .await;
    await_tools_changed(&mut events).await;
    let names = tool_names(&client).await;
    assert!(names.contains(&"calctwo__add".to_string()), "{names:?}");
}

#[tokio::test]
async fn a_2026_client_of_a_server_hears_its_definition_change_through_subscriptions_listen() {
    let (_python, server) = calc_behind_gateway(&[]).await;
    let (client, mut events) = modern_client(&server, "/mcp/calc").await;
    // The client's subscription has begun on the gateway.
    await_metric(&server, "switchboard_registry_listeners", 1.0).await;
    assert!(tool_names(&client).await.contains(&"add".to_string()));
    update(&server, "calc", json!({"tools": {"denyTools": ["add"]}})).await;
    await_tools_changed(&mut events).await;
    let names = tool_names(&client).await;
    assert!(!names.contains(&"add".to_string()), "{names:?}");
    assert!(names.contains(&"weather".to_string()), "{names:?}");
}

#[tokio::test]
async fn a_registry_change_made_by_another_replica_reaches_aggregate_streams() {
    let database = format!("switchboard_replicas_{}", std::process::id());
    let url = fresh_database(&database);
    let key = "5b".repeat(32);
    let env = [("SWITCHBOARD_SECRET_KEY", key.as_str())];
    let listening = Switchboard::start(binary(), &["--database", &url], &env)
        .await
        .expect("a replica starts");
    let changing = Switchboard::start(binary(), &["--database", &url], &env)
        .await
        .expect("a second replica starts");
    let python = start_python("streamable-http")
        .await
        .expect("python fixture");

    let session = open_raw_session(&listening, "/mcp").await;
    let mut stream = open_stream(&listening, "/mcp", &session).await;
    register(
        &changing,
        &remote_body("Calc", &python.url("/mcp"), Some("calc")),
    )
    .await;
    await_on_stream(&mut stream, "notifications/tools/list_changed").await;
    let names = session_tool_names(&listening, "/mcp", &session).await;
    assert!(names.contains(&"calc__add".to_string()), "{names:?}");

    drop((listening, changing));
    psql(&format!("DROP DATABASE {database} WITH (FORCE)"));
}

#[tokio::test]
async fn a_woken_aggregate_session_still_finds_what_it_listed() {
    let (_everything, server) = everything_behind_gateway().await;
    let session = open_raw_session(&server, "/mcp").await;
    let listed = request_raw(
        &server,
        "/mcp",
        &session,
        json!({"jsonrpc": "2.0", "id": 2, "method": "resources/list"}),
    )
    .await;
    let uri = listed["result"]["resources"][0]["uri"]
        .as_str()
        .unwrap_or_else(|| panic!("a resource: {listed}"))
        .to_string();
    // The session sleeps, and its handler, which learned the resource's server, is gone.
    await_hibernated(&server, 1.0).await;
    let read = request_raw(
        &server,
        "/mcp",
        &session,
        json!({"jsonrpc": "2.0", "id": 3, "method": "resources/read", "params": {"uri": uri}}),
    )
    .await;
    assert_eq!(read["result"]["contents"][0]["uri"], uri.as_str(), "{read}");
}

/// An upstream that restarts (a deploy, a crash) ends the gateway's listen stream to it: the
/// gateway listens again, and a stream open before the restart hears the list changes after it.
#[tokio::test]
async fn a_stream_hears_an_upstreams_list_changes_after_it_restarts() {
    let (mut python, server) = calc_behind_gateway(&[]).await;
    let session = open_raw_session(&server, "/mcp/calc").await;
    let mut stream = open_stream(&server, "/mcp/calc", &session).await;
    python.restart().await.expect("the upstream restarts");
    let heard = list_change_heard(&server, &session, &mut stream, "back").await;
    assert!(
        heard,
        "the stream heard none of three list changes after the restart"
    );
}
