//! The connection layer's rules, each against the peer that shows it: the protocol era, one
//! reconnection for many callers, transports, tokens, cancels, retries, timeouts, the breaker,
//! the concurrency cap and raw calls.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_http_speaks_the_stateless_era_and_everything_falls_back_to_initialize() {
    let python = start(Peer::PythonHttp).await;
    assert_eq!(
        python.upstream.protocol_version().map(|v| v.to_string()),
        Some("2026-07-28".into())
    );
    let everything = start(Peer::EverythingHttp).await;
    let version = everything
        .upstream
        .protocol_version()
        .expect("connected")
        .to_string();
    assert!(version.as_str() < "2026-07-28", "{version}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_calls_in_flight_share_one_reinitialization() {
    let server = support::start_everything("streamableHttp")
        .await
        .expect("starts");
    let proxy = RecordingProxy::start(&server.url("")).await.expect("proxy");
    let config = UpstreamConfig::http("everything", proxy.url("/mcp"));
    let upstream = Upstream::connect(config).await.expect("connects");
    upstream.list_tools().await.expect("lists");
    let initializes_before = proxy.count("initialize");
    let session = proxy.last_session_id().expect("a session id");
    // End the session behind the client's back; server-everything then answers 400.
    let deleted = reqwest::Client::new()
        .delete(server.url("/mcp"))
        .header("mcp-session-id", &session)
        .send()
        .await
        .expect("deletes");
    assert!(deleted.status().is_success(), "{}", deleted.status());

    let calls = (0..50).map(|i| {
        let upstream = upstream.clone();
        async move {
            let result = upstream
                .call_tool(
                    "get-sum",
                    args(json!({"a": i, "b": 1})),
                    RequestOptions::default(),
                )
                .await
                .expect("the call survives the lost session");
            assert!(
                text_of(&result).contains(&(i + 1).to_string()),
                "{result:?}"
            );
        }
    });
    futures::future::join_all(calls).await;
    assert_eq!(
        proxy.count("initialize") - initializes_before,
        1,
        "exactly one re-initialization"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_transport_falls_back_to_legacy_sse() {
    for peer in [Peer::EverythingSse, Peer::PythonSse] {
        let target = start_with(peer, |mut config| {
            if let switchboard_mcp::Endpoint::Http(http) = &mut config.endpoint {
                assert_eq!(http.transport, HttpTransport::Auto);
            }
            config
        })
        .await;
        assert_eq!(
            target.upstream.transport(),
            Some(TransportKind::Sse),
            "{peer:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stdio_args_and_env_are_substituted_and_the_environment_is_not_inherited() {
    let (command, args_) = support::everything_stdio_command();
    let mut config = UpstreamConfig::stdio("env", command, args_);
    if let switchboard_mcp::Endpoint::Stdio(stdio) = &mut config.endpoint {
        stdio.inherit_env = false;
        stdio.env.insert("NAME".into(), "switchboard".into());
        stdio.env.insert("GREETING".into(), "hello ${NAME}".into());
    }
    let upstream = Upstream::connect(config).await.expect("connects");
    let result = upstream
        .call_tool("get-env", None, RequestOptions::default())
        .await
        .expect("calls");
    let text = text_of(&result);
    assert!(text.contains("hello switchboard"), "{text}");
    // cargo sets this for the test process; a child that inherited our environment would see it.
    assert!(std::env::var("CARGO_MANIFEST_DIR").is_ok());
    assert!(
        !text.contains("CARGO_MANIFEST_DIR"),
        "the child saw our environment"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resources_templates_and_prompts_are_listed_across_pages() {
    let target = start(Peer::EverythingStdio).await;
    let resources = target
        .upstream
        .list_resources()
        .await
        .expect("lists resources");
    let templates = target
        .upstream
        .list_resource_templates()
        .await
        .expect("lists templates");
    let prompts = target.upstream.list_prompts().await.expect("lists prompts");
    assert!(!resources.is_empty() && !templates.is_empty() && !prompts.is_empty());
    let mut uris: Vec<_> = resources.iter().map(|r| r.uri.clone()).collect();
    let total = uris.len();
    uris.dedup();
    assert_eq!(uris.len(), total, "a page was listed twice");

    // A server without the capabilities answers with empty lists, not errors.
    let python = start(Peer::PythonStdio).await;
    assert!(
        python
            .upstream
            .list_prompts()
            .await
            .expect("lists")
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tool_listing_follows_next_cursor_to_the_end() {
    // The Python fixture lists its tools three per page.
    let (_server, proxy, upstream) = python_behind_proxy(|config| config).await;
    let tools = upstream.list_tools().await.expect("lists");
    let names: Vec<_> = tools.iter().map(|t| t.name.to_string()).collect();
    assert!(names.len() > 6, "{names:?}");
    for expected in ["add", "whoami", "bumps"] {
        assert!(
            names.contains(&expected.to_string()),
            "{expected} missing from {names:?}"
        );
    }
    assert_eq!(
        proxy.count("tools/list"),
        names.len().div_ceil(3),
        "one request per page"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_an_upstream_kills_the_child_process_group() {
    let target = start(Peer::EverythingStdio).await;
    let pid = target.upstream.child_pid().expect("a child runs");
    assert!(support::process_alive(pid));
    target.upstream.close().await;
    assert!(
        !support::process_alive(pid),
        "the child outlived its connection"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_command_fails_clearly() {
    let config = UpstreamConfig::stdio("ghost", "/nonexistent/mcp-server", vec![]);
    let error = Upstream::connect(config).await.expect_err("cannot start");
    assert!(matches!(error, UpstreamError::Spawn { .. }), "{error}");
    assert!(
        error.to_string().contains("/nonexistent/mcp-server"),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bearer_token_comes_from_the_callback_with_the_call_context() {
    let server = support::start_python("streamable-http")
        .await
        .expect("starts");
    let mut config = UpstreamConfig::http("python", server.url("/mcp"));
    config.auth = UpstreamAuth::Bearer(Arc::new(|context: CallContext| async move {
        let user = context
            .get("userId")
            .map(Value::to_string)
            .unwrap_or_else(|| "service".into());
        Ok::<_, String>(format!("token-for-{user}"))
    }));
    let upstream = Upstream::connect(config).await.expect("connects");
    let options = RequestOptions {
        context: CallContext::new().with("userId", 42),
        ..Default::default()
    };
    let result = upstream
        .call_tool("whoami", None, options)
        .await
        .expect("calls");
    assert_eq!(text_of(&result), "Bearer token-for-42");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_token_callback_fails_the_call_clearly_and_sends_nothing() {
    let (_server, proxy, upstream) = python_behind_proxy(|mut config| {
        config.auth = UpstreamAuth::Bearer(Arc::new(|context: CallContext| async move {
            match context.get("userId") {
                Some(_) => Err::<String, _>("the vault is sealed".to_string()),
                None => Ok("service-token".to_string()),
            }
        }));
        config
    })
    .await;
    let calls_before = proxy.count("tools/call");
    let options = RequestOptions {
        context: CallContext::new().with("userId", 7),
        ..Default::default()
    };
    let error = upstream
        .call_tool("bumps", None, options)
        .await
        .expect_err("no token");
    assert!(
        error
            .to_string()
            .contains("the token callback failed: the vault is sealed"),
        "{error}"
    );
    assert_eq!(error.delivery(), Some(Delivery::NotSent), "{error}");
    assert_eq!(
        proxy.count("tools/call"),
        calls_before,
        "a request went out without its token"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_call_sends_notifications_cancelled_upstream() {
    let server = support::start_everything("streamableHttp")
        .await
        .expect("starts");
    let proxy = RecordingProxy::start(&server.url("")).await.expect("proxy");
    let upstream = Upstream::connect(UpstreamConfig::http("everything", proxy.url("/mcp")))
        .await
        .expect("connects");
    let token = CancellationToken::new();
    let (progress_tx, mut progress_rx) = tokio::sync::mpsc::unbounded_channel();
    let (tool, arguments) = slow_call(Peer::EverythingHttp, 30.0, "cancelled");
    let options = RequestOptions {
        cancel: Some(token.clone()),
        progress: Some(progress_tx),
        ..Default::default()
    };
    let call = tokio::spawn({
        let upstream = upstream.clone();
        async move { upstream.call_tool(tool, arguments, options).await }
    });
    progress_rx.recv().await.expect("the call is running");
    assert_eq!(proxy.count("notifications/cancelled"), 0);
    token.cancel();
    let error = call.await.expect("joins").expect_err("cancelled");
    assert!(matches!(error, UpstreamError::Cancelled { .. }), "{error}");
    // The notification is sent as the call's guard drops.
    switchboard_test_support::eventually(
        "notifications/cancelled to go upstream",
        Duration::from_millis(20),
        || async { proxy.count("notifications/cancelled") > 0 },
    )
    .await;
}

/// The Python fixture over Streamable HTTP, behind a recording proxy, and an upstream through it.
async fn python_behind_proxy(
    adjust: impl FnOnce(UpstreamConfig) -> UpstreamConfig,
) -> (PeerServer, RecordingProxy, Upstream) {
    let server = support::start_python("streamable-http")
        .await
        .expect("starts");
    let proxy = RecordingProxy::start(&server.url("")).await.expect("proxy");
    let config = adjust(UpstreamConfig::http("python", proxy.url("/mcp")));
    let upstream = Upstream::connect(config).await.expect("connects");
    (server, proxy, upstream)
}

/// Retry rules, through a proxy that breaks responses after the upstream ran the call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_that_may_have_run_is_retried_only_when_idempotent() {
    let (_server, proxy, upstream) = python_behind_proxy(|config| {
        let mut config = config.with_retries(3);
        config.retry_base_delay = Duration::from_millis(20);
        config
    })
    .await;

    proxy.inject(Fault::BreakAfterForwarding);
    let error = upstream
        .call_tool("bump", None, RequestOptions::default())
        .await
        .expect_err("breaks");
    assert_eq!(error.delivery(), Some(Delivery::MaybeSent), "{error}");
    let count = |result: CallToolResult| text_of(&result).trim().to_string();
    let bumps = upstream
        .call_tool("bumps", None, RequestOptions::default())
        .await
        .expect("reads");
    assert_eq!(count(bumps), "1", "a non-idempotent call ran twice");

    proxy.inject(Fault::BreakAfterForwarding);
    let options = RequestOptions::retry_safe();
    let result = upstream
        .call_tool("bump_idempotent", None, options)
        .await
        .expect("the retry succeeds");
    assert_eq!(count(result), "3", "the broken attempt ran, then the retry");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http_4xx_is_never_retried() {
    let (_server, proxy, upstream) = python_behind_proxy(|config| config.with_retries(3)).await;
    let calls_before = proxy.count("tools/call");
    proxy.inject(Fault::Status(400));
    let options = RequestOptions::retry_safe();
    let error = upstream
        .call_tool("bumps", None, options)
        .await
        .expect_err("fails");
    assert!(error.to_string().contains("400"), "{error}");
    assert_eq!(
        proxy.count("tools/call") - calls_before,
        1,
        "a 4xx was retried"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_connection_is_retried_until_the_server_comes_up() {
    let port = support::free_port().expect("port");
    let mut config =
        UpstreamConfig::http("late", format!("http://127.0.0.1:{port}/mcp")).with_retries(12);
    config.retry_base_delay = Duration::from_millis(100);
    let upstream = Upstream::new(config);
    let call = tokio::spawn({
        let upstream = upstream.clone();
        async move {
            upstream
                .call_tool(
                    "add",
                    args(json!({"a": 1, "b": 1})),
                    RequestOptions::default(),
                )
                .await
        }
    });
    let _server = support::start_python_on("streamable-http", port)
        .await
        .expect("starts late");
    let result = call
        .await
        .expect("joins")
        .expect("retried until the server answered");
    assert_eq!(text_of(&result), "2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_retries_a_refused_connection_fails_at_once_as_not_sent() {
    let port = support::free_port().expect("port");
    let upstream = Upstream::new(UpstreamConfig::http(
        "down",
        format!("http://user:pw@127.0.0.1:{port}/mcp"),
    ));
    let error = upstream.list_tools().await.expect_err("refused");
    assert_eq!(error.delivery(), Some(Delivery::NotSent), "{error}");
    assert!(
        !error.to_string().contains("pw"),
        "credentials leaked: {error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_keeps_a_long_call_alive_while_silence_times_out() {
    let target = start_with(Peer::PythonHttp, |mut config| {
        config.request_timeout = Duration::from_millis(800);
        config
    })
    .await;
    // Five progress reports over 2.5 s: never 800 ms of silence.
    let result = target
        .upstream
        .call_tool(
            "slow",
            args(json!({"seconds": 2.5, "label": "talkative"})),
            RequestOptions::default(),
        )
        .await
        .expect("progress kept it alive");
    assert_eq!(text_of(&result), "done talkative");
    let error = target
        .upstream
        .call_tool(
            "sleepy",
            args(json!({"seconds": 5})),
            RequestOptions::default(),
        )
        .await
        .expect_err("silence times out");
    assert!(matches!(error, UpstreamError::Timeout { .. }), "{error}");

    // Progress extends only up to the hard limit.
    let capped = start_with(Peer::PythonHttp, |mut config| {
        config.request_timeout = Duration::from_millis(800);
        config.max_request_timeout = Duration::from_millis(1500);
        config
    })
    .await;
    let error = capped
        .upstream
        .call_tool(
            "slow",
            args(json!({"seconds": 4, "label": "endless"})),
            RequestOptions::default(),
        )
        .await
        .expect_err("the hard limit holds");
    assert!(matches!(error, UpstreamError::Timeout { .. }), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_breaker_opens_on_a_dead_upstream_and_closes_when_it_returns() {
    let mut target = start_with(Peer::PythonHttp, |mut config| {
        config.breaker_threshold = 2;
        config.breaker_cooldown = Duration::from_millis(300);
        config.retry_base_delay = Duration::from_millis(50);
        config
    })
    .await;
    call_sum(&target, Peer::PythonHttp).await;
    let server = target.server.as_mut().expect("an HTTP peer");
    server.kill().await;
    for _ in 0..2 {
        let error = target.upstream.list_tools().await.expect_err("down");
        assert!(error.is_upstream_failure(), "{error}");
    }
    assert_eq!(
        target.upstream.breaker_state(),
        switchboard_mcp::BreakerState::Open
    );
    let error = target.upstream.list_tools().await.expect_err("fails fast");
    assert!(
        matches!(error, UpstreamError::CircuitOpen { .. }),
        "{error}"
    );
    assert!(error.to_string().contains("circuit open"), "{error}");

    server.restart().await.expect("restarts");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        match target.upstream.list_tools().await {
            Ok(_) => break,
            Err(error) if tokio::time::Instant::now() < deadline => {
                // Open circuits answer at once; the next probe is allowed after the cooldown.
                if let UpstreamError::CircuitOpen { retry_in, .. } = error {
                    tokio::time::sleep(retry_in).await;
                }
            }
            Err(error) => panic!("never recovered: {error}"),
        }
    }
    assert_eq!(
        target.upstream.breaker_state(),
        switchboard_mcp::BreakerState::Closed
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_beyond_the_concurrency_cap_wait_in_the_queue_then_are_busy() {
    for queue in [0, 1] {
        let target = start_with(Peer::PythonHttp, |mut config| {
            config.max_concurrent = 1;
            config.max_queued = queue;
            config
        })
        .await;
        let label = format!("running-{queue}");
        let running = {
            let upstream = target.upstream.clone();
            let label = label.clone();
            tokio::spawn(async move {
                upstream
                    .call_tool(
                        "slow",
                        args(json!({"seconds": 1, "label": label})),
                        RequestOptions::default(),
                    )
                    .await
            })
        };
        wait_until_started(&target.upstream, &label).await;
        let next = target.upstream.list_tools().await;
        if queue == 0 {
            let busy = next.expect_err("no room to wait");
            assert!(matches!(busy, UpstreamError::Busy { .. }), "{busy}");
            assert!(busy.to_string().contains("busy"), "{busy}");
        } else {
            next.expect("waited for the slot, then ran");
        }
        assert!(running.await.expect("joins").is_ok());
    }
}

/// Waits until the Python fixture says a `slow` call with `label` started, asking on a session of
/// its own so that the caps under test do not hold the question back.
async fn wait_until_started(upstream: &Upstream, label: &str) {
    let checker = Upstream::new(upstream.config().clone());
    wait_until_listed(&checker, "started_calls", label).await;
}

/// A raw call on the session rmcp opened: the result's bytes as the server wrote them.
async fn raw_sum(target: &Target, peer: Peer) -> Result<String, switchboard_mcp::RawCallError> {
    let tool = if peer.is_python() { "add" } else { "get-sum" };
    target
        .upstream
        .call_tool_raw(
            tool,
            r#"{"a": 2, "b": 3}"#,
            None,
            &RequestOptions::default(),
        )
        .await
        .map(|reply| reply.result.get().to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_calls_ride_the_open_session_and_step_aside_when_it_is_gone() {
    let peer = Peer::EverythingHttp;
    let mut target = start(peer).await;
    // The route is learned from a request rmcp sent on the session.
    assert!(call_sum(&target, peer).await.contains('5'));
    let answer = raw_sum(&target, peer).await.expect("a raw call");
    let result: Value = serde_json::from_str(&answer).expect("the result is JSON");
    assert!(
        support::content_text(&result["content"]).contains('5'),
        "{answer}"
    );
    // Redeployed: the session is gone, the raw call is refused before it runs and says so, and
    // the typed path opens a new session that raw calls then use.
    target
        .server
        .as_mut()
        .expect("an HTTP peer")
        .restart()
        .await
        .expect("restarts");
    assert!(matches!(
        raw_sum(&target, peer).await,
        Err(switchboard_mcp::RawCallError::Unrouted)
    ));
    assert!(call_sum(&target, peer).await.contains('5'));
    assert!(
        raw_sum(&target, peer)
            .await
            .expect("raw again")
            .contains('5')
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_calls_are_refused_over_legacy_sse() {
    let peer = Peer::PythonSse;
    let target = start(peer).await;
    assert!(call_sum(&target, peer).await.contains('5'));
    assert!(matches!(
        raw_sum(&target, peer).await,
        Err(switchboard_mcp::RawCallError::Unrouted)
    ));
}

/// Over stdio, a raw call is one line each way on the child's pipes, which rmcp's session
/// shares: raw and typed calls made at once each get their own answer, and the reports of a
/// raw call come back under its own token, all before its answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_calls_over_stdio_share_the_childs_pipes_with_the_typed_session() {
    for peer in [Peer::EverythingStdio, Peer::PythonStdio] {
        let target = start(peer).await;
        assert!(call_sum(&target, peer).await.contains('5'), "{peer:?}");
        let answer = raw_sum(&target, peer).await.expect("a raw call");
        let result: Value = serde_json::from_str(&answer).expect("the result is JSON");
        assert!(
            support::content_text(&result["content"]).contains('5'),
            "{peer:?}: {answer}"
        );
    }
    let peer = Peer::PythonStdio;
    let target = start(peer).await;
    let calls = (0..40).map(|n| {
        let upstream = target.upstream.clone();
        async move {
            let arguments = format!(r#"{{"a": {n}, "b": 1}}"#);
            if n % 2 == 0 {
                let reply = upstream
                    .call_tool_raw("add", &arguments, None, &RequestOptions::default())
                    .await
                    .expect("a raw call");
                let result: Value = serde_json::from_str(reply.result.get()).expect("JSON");
                result["structuredContent"]["result"].clone()
            } else {
                let result = upstream
                    .call_tool(
                        "add",
                        args(json!({"a": n, "b": 1})),
                        RequestOptions::default(),
                    )
                    .await
                    .expect("a typed call");
                result.structured_content.expect("structured")["result"].clone()
            }
        }
    });
    let sums = futures::future::join_all(calls).await;
    let expected: Vec<Value> = (0..40).map(|n| json!(n + 1)).collect();
    assert_eq!(sums, expected);

    assert_eq!(
        raw_progress(&target, "stdio-progress").await,
        [1.0, 2.0, 3.0, 4.0, 5.0]
    );
}

/// A raw call over stdio that its caller cancels, or that times out, is cancelled upstream, and
/// the session goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_raw_call_over_stdio_that_ends_early_is_cancelled_upstream() {
    let peer = Peer::PythonStdio;
    let target = start(peer).await;
    assert!(call_sum(&target, peer).await.contains('5'));
    let timed = RequestOptions {
        timeout: Some(Duration::from_millis(300)),
        ..RequestOptions::default()
    };
    let error = target
        .upstream
        .call_tool_raw(
            "slow",
            r#"{"seconds": 30, "label": "stdio-timeout"}"#,
            None,
            &timed,
        )
        .await
        .expect_err("times out");
    assert!(
        matches!(
            &error,
            switchboard_mcp::RawCallError::Upstream(UpstreamError::Timeout { .. })
        ),
        "{error:?}"
    );
    let token = CancellationToken::new();
    let cancelled = RequestOptions {
        cancel: Some(token.clone()),
        ..RequestOptions::default()
    };
    let call = tokio::spawn({
        let upstream = target.upstream.clone();
        async move {
            upstream
                .call_tool_raw(
                    "slow",
                    r#"{"seconds": 30, "label": "stdio-cancel"}"#,
                    None,
                    &cancelled,
                )
                .await
        }
    });
    wait_until_listed(&target.upstream, "started_calls", "stdio-cancel").await;
    token.cancel();
    let error = call.await.expect("joins").expect_err("cancelled");
    assert!(
        matches!(
            &error,
            switchboard_mcp::RawCallError::Upstream(UpstreamError::Cancelled { .. })
        ),
        "{error:?}"
    );
    wait_until_cancel_recorded(&target.upstream, "stdio-timeout").await;
    wait_until_cancel_recorded(&target.upstream, "stdio-cancel").await;
    assert!(
        raw_sum(&target, peer)
            .await
            .expect("raw again")
            .contains('5')
    );
}

/// The progress a raw call of the Python fixture's `slow` tool (labelled `label`) reported, in
/// the order it reached the caller, all before the answer.
async fn raw_progress(target: &Target, label: &str) -> Vec<f64> {
    let (progress, mut reports) = tokio::sync::mpsc::unbounded_channel();
    let options = RequestOptions {
        progress: Some(progress),
        ..RequestOptions::default()
    };
    let reply = target
        .upstream
        .call_tool_raw(
            "slow",
            &json!({"seconds": 0.5, "label": label}).to_string(),
            None,
            &options,
        )
        .await
        .expect("the call answers");
    assert!(
        reply.result.get().contains(&format!("done {label}")),
        "{}",
        reply.result.get()
    );
    std::iter::from_fn(|| reports.try_recv().ok())
        .map(|report| report.progress)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_raw_call_relays_progress_under_its_own_token() {
    let peer = Peer::PythonHttp;
    let target = start(peer).await;
    assert!(call_sum(&target, peer).await.contains('5'));
    assert_eq!(
        raw_progress(&target, "raw-progress").await,
        [1.0, 2.0, 3.0, 4.0, 5.0]
    );
}

/// A stdio server slower to start than rmcp's 10 s wait for `server/discover` (as `npx` is while
/// it fetches its package) is opened all the same: the handshake does not race a late answer.
#[tokio::test]
async fn a_stdio_server_slow_to_start_is_opened_all_the_same() {
    let (command, args) = support::python_stdio_command();
    let mut config = UpstreamConfig::stdio("slow", command, args);
    if let switchboard_mcp::Endpoint::Stdio(stdio) = &mut config.endpoint {
        stdio.env.insert("FIXTURE_START_DELAY".into(), "11".into());
    }
    config.request_timeout = Duration::from_secs(30);
    let upstream = Upstream::new(config);
    let result = upstream
        .call_tool(
            "add",
            json!({"a": 2, "b": 3}).as_object().cloned(),
            RequestOptions::default(),
        )
        .await
        .expect("the slow server answers");
    assert_eq!(result.structured_content, Some(json!({"result": 5})));
    upstream.close().await;
}
