//! `POST /run` and `DELETE /run/{id}`: tools, output, failures, events, cancellation, bad input.

use super::*;

#[tokio::test]
async fn parallel_tools_from_stdio_and_http_servers() {
    let python = start_python("streamable-http")
        .await
        .expect("python fixture");
    let llm = ScriptedLlm::start(vec![
        Reply::calls(&[
            ("get-sum", json!({"a": 2, "b": 3})),
            ("add", json!({"a": 4, "b": 5})),
            ("rendezvous", json!({"group": "step-1", "size": 2})),
            ("rendezvous", json!({"group": "step-1", "size": 2})),
        ]),
        Reply::text("2+3 is 5 and 4+5 is 9."),
    ])
    .await;
    let server = serve(&[]).await;
    let body = run_body(
        &llm,
        json!([everything_entry(json!({})), {"url": python.url("/mcp"), "transport": "http"}]),
    );
    let (status, result) = server.post_run(&body).await.expect("run answers");
    assert_eq!(status, 200, "{result}");

    // Seed 000's shape, with the added fields.
    assert_eq!(result["final_answer"], "2+3 is 5 and 4+5 is 9.");
    assert_eq!(result["stop_reason"], "final_answer");
    assert!(
        result["run_id"]
            .as_str()
            .expect("run_id")
            .starts_with("run_")
    );
    assert!(result["duration_ms"].is_u64());
    assert_eq!(result["warnings"], json!([]));
    let steps = result["steps"].as_array().expect("steps");
    assert_eq!(steps.len(), 2);
    let call = &steps[0]["tool_calls"][0];
    assert_eq!(call["id"], "call_0");
    assert_eq!(call["type"], "function");
    assert_eq!(call["function"]["name"], "get-sum");
    assert_eq!(call["function"]["arguments"], r#"{"a":2,"b":3}"#);
    assert_eq!(steps[1]["tool_calls"], json!([]));
    assert_eq!(as_usage(&steps[0]["token_usage"]), (20, 10, 30));
    assert_eq!(as_usage(&steps[1]["token_usage"]), (10, 5, 15));
    assert_eq!(as_usage(&result["token_usage"]), (30, 15, 45));

    // Results in the calls' order, each with its server.
    let results = steps[0]["tool_results"].as_array().expect("tool_results");
    assert_eq!(results.len(), 4);
    // The two rendezvous calls could only meet if they ran at the same time.
    for meeting in &results[2..] {
        assert_eq!(meeting["is_error"], false, "{meeting}");
        assert_eq!(meeting["output"], r#"{"result":"met step-1"}"#);
    }
    assert_eq!(results[0]["id"], "call_0");
    assert_eq!(results[0]["server"], "index");
    assert_eq!(results[0]["is_error"], false);
    assert!(results[0]["output"].as_str().expect("output").contains('5'));
    assert_eq!(results[1]["id"], "call_1");
    assert_eq!(results[1]["server"], "127.0.0.1");
    assert_eq!(results[1]["output"], r#"{"result":9}"#);
    assert_eq!(results[1]["truncated"], false);

    // What the model was sent: both servers' tools, then the results in order.
    let requests = llm.requests();
    assert_eq!(requests.len(), 2);
    let names = requests[0].tool_names();
    assert!(names.contains(&"get-sum".to_string()) && names.contains(&"add".to_string()));
    let get_sum = requests[0].tool("get-sum").expect("get-sum offered");
    assert_eq!(get_sum["parameters"]["required"], json!(["a", "b"]));
    assert_eq!(
        requests[0].authorization.as_deref(),
        Some("Bearer sk-test-run-key-123")
    );
    let messages = requests[1].messages();
    let tool_ids: Vec<_> = messages
        .iter()
        .filter(|m| m["role"] == "tool")
        .map(|m| m["tool_call_id"].clone())
        .collect();
    assert_eq!(
        tool_ids,
        [
            json!("call_0"),
            json!("call_1"),
            json!("call_2"),
            json!("call_3")
        ]
    );
    assert_eq!(
        requests[1].tool_message("call_1").as_deref(),
        Some(r#"{"result":9}"#)
    );
    // The API key is never echoed.
    assert!(!result.to_string().contains("sk-test-run-key-123"));
    assert!(!server.log().contains("sk-test-run-key-123"));
}

#[tokio::test]
async fn output_is_capped_and_content_described() {
    let long = "x".repeat(300) + &"y".repeat(300);
    let llm = ScriptedLlm::start(vec![
        Reply::calls(&[
            ("echo", json!({"message": long})),
            ("get-tiny-image", json!({})),
            ("get-structured-content", json!({"location": "New York"})),
        ]),
        Reply::text("done"),
    ])
    .await;
    let server = serve(&["--tool-output-cap", "200"]).await;
    let (status, result) = server
        .post_run(&run_body(&llm, json!([everything_entry(json!({}))])))
        .await
        .expect("run answers");
    assert_eq!(status, 200, "{result}");
    let results = &result["steps"][0]["tool_results"];
    assert_eq!(results[0]["truncated"], true);
    let sent = llm.requests()[1]
        .tool_message("call_0")
        .expect("echo result");
    assert!(sent.starts_with("Echo: xxx"), "{sent}");
    assert!(sent.ends_with("yyy"), "{sent}");
    assert!(sent.contains("characters cut from the middle"), "{sent}");
    assert_eq!(results[0]["output"], sent);

    let image = llm.requests()[1]
        .tool_message("call_1")
        .expect("image result");
    assert!(image.contains("[image: image/png, "), "{image}");
    assert!(image.contains(" bytes]"), "{image}");
    let structured = llm.requests()[1]
        .tool_message("call_2")
        .expect("structured result");
    let parsed: Value = serde_json::from_str(&structured).expect("structured content as JSON");
    assert!(parsed.get("temperature").is_some(), "{structured}");
}

#[tokio::test]
async fn failures_reach_the_model_sanitized_and_the_run_goes_on() {
    let python = start_python("streamable-http")
        .await
        .expect("python fixture");
    let llm = ScriptedLlm::start(vec![
        Reply::calls(&[
            (
                "fail",
                json!({"reason": "disk full at https://admin:hunter22@db.internal/x"}),
            ),
            ("slow", json!({"seconds": 30, "label": "too-slow"})),
            ("no-such-tool", json!({})),
        ]),
        Reply::call_raw("add", "{not json"),
        Reply::text("gave up"),
    ])
    .await;
    let server = serve(&["--tool-timeout", "1"]).await;
    let (status, result) = server
        .post_run(&run_body(&llm, json!([{"url": python.url("/mcp")}])))
        .await
        .expect("run answers");
    assert_eq!(status, 200, "{result}");
    assert_eq!(result["stop_reason"], "final_answer");
    let first = &result["steps"][0]["tool_results"];
    for index in 0..3 {
        assert_eq!(first[index]["is_error"], true, "{}", first[index]);
    }
    let sent = &llm.requests()[1];
    let failed = sent.tool_message("call_0").expect("fail result");
    assert!(failed.starts_with("Error: "), "{failed}");
    assert!(failed.contains("disk full"), "{failed}");
    assert!(
        !failed.contains("hunter22") && !failed.contains("/x"),
        "{failed}"
    );
    let timed_out = sent.tool_message("call_1").expect("slow result");
    assert!(timed_out.contains("did not answer"), "{timed_out}");
    let unknown = sent.tool_message("call_2").expect("unknown tool result");
    assert!(
        unknown.contains("no tool named `no-such-tool`"),
        "{unknown}"
    );
    let invalid = llm.requests()[2]
        .tool_message("call_raw")
        .expect("invalid args result");
    assert!(invalid.contains("not valid JSON"), "{invalid}");
    assert_eq!(result["steps"][1]["tool_results"][0]["is_error"], true);
}

#[tokio::test]
async fn max_steps_ends_with_one_call_without_tools() {
    let llm = ScriptedLlm::start(vec![
        Reply::call("get-sum", json!({"a": 1, "b": 1})),
        Reply::call("get-sum", json!({"a": 2, "b": 2})),
        Reply::text("out of steps: 4"),
    ])
    .await;
    let server = serve(&[]).await;
    let mut body = run_body(&llm, json!([everything_entry(json!({}))]));
    body["max_steps"] = json!(2);
    let (status, result) = server.post_run(&body).await.expect("run answers");
    assert_eq!(status, 200, "{result}");
    assert_eq!(result["stop_reason"], "max_steps");
    assert_eq!(result["final_answer"], "out of steps: 4");
    assert_eq!(result["steps"].as_array().expect("steps").len(), 3);
    let requests = llm.requests();
    assert!(requests[1].body.get("tools").is_some());
    assert!(
        requests[2].body.get("tools").is_none(),
        "the last call offers no tools"
    );
    let last = requests[2].messages().last().cloned().expect("a message");
    assert_eq!(last["role"], "user");
    assert!(
        last["content"]
            .as_str()
            .expect("text")
            .contains("final answer")
    );
}

#[tokio::test]
async fn servers_that_fail_at_start_become_warnings() {
    let llm = ScriptedLlm::start(vec![Reply::text("no tools needed")]).await;
    let server = serve(&[]).await;
    let closed = switchboard_test_support::free_port().expect("port");
    let mut everything = everything_entry(json!({}));
    everything["tool_prefix"] = json!("ev_");
    everything["tools"] = json!(["get-sum", "echo", "no-such-tool"]);
    let servers = json!([
        {"command": "/nonexistent/mcp-server"},
        {"url": format!("http://127.0.0.1:{closed}/mcp")},
        everything,
    ]);
    let (status, result) = server
        .post_run(&run_body(&llm, servers))
        .await
        .expect("run answers");
    assert_eq!(status, 200, "{result}");
    assert_eq!(result["final_answer"], "no tools needed");
    let warnings = result["warnings"].as_array().expect("warnings");
    assert_eq!(warnings.len(), 3, "{warnings:?}");
    let warning = |index: usize| warnings[index].as_str().expect("text").to_string();
    assert!(warning(0).contains("could not start"));
    assert!(warning(1).contains("is left out"));
    assert!(warning(2).contains("no tool named `no-such-tool`"));
    // The working server's allowed tools were still offered, prefixed.
    let mut offered = llm.requests()[0].tool_names();
    offered.sort();
    assert_eq!(offered, ["ev_echo", "ev_get-sum"]);
}

#[tokio::test]
async fn children_get_only_their_own_env_and_are_stopped_at_the_end() {
    let marker = format!("marker-{}", std::process::id());
    let llm =
        ScriptedLlm::start(vec![Reply::call("get-env", json!({})), Reply::text("seen")]).await;
    let server = Switchboard::start(
        binary(),
        &[],
        &[("GATEWAY_SECRET", "gateway-secret-value-42")],
    )
    .await
    .expect("starts");
    let body = run_body(
        &llm,
        json!([everything_entry(
            json!({"RUN_MARKER": marker, "VISIBLE": "visible-value"})
        )]),
    );
    let (status, result) = server.post_run(&body).await.expect("run answers");
    assert_eq!(status, 200, "{result}");
    let env_text = llm.requests()[1]
        .tool_message("call_0")
        .expect("get-env result");
    assert!(env_text.contains("VISIBLE"), "{env_text}");
    assert!(!env_text.contains("GATEWAY_SECRET"), "{env_text}");
    assert!(!env_text.contains("gateway-secret-value-42"));
    // Values given for the run are masked in what the model sees.
    assert!(!env_text.contains("visible-value"), "{env_text}");
    eventually(
        "the run's child outlived the run",
        Duration::from_millis(20),
        || std::future::ready(pids_with_env("RUN_MARKER", &marker).is_empty()),
    )
    .await;

    // `${VAR}` cannot read the gateway's environment either.
    let llm = ScriptedLlm::start(vec![Reply::text("ok")]).await;
    let (command, mut args) = everything_stdio_command();
    args.push("${GATEWAY_SECRET}".into());
    let body = run_body(&llm, json!([{"command": command, "args": args}]));
    let (_, result) = server.post_run(&body).await.expect("run answers");
    let warning = result["warnings"][0].as_str().expect("a warning");
    assert!(warning.contains("`GATEWAY_SECRET` is not set"), "{warning}");
}

#[tokio::test]
async fn streaming_events_arrive_in_order_and_final_matches_json() {
    let llm = ScriptedLlm::start(vec![
        Reply::call("get-sum", json!({"a": 2, "b": 3})),
        Reply::text("5"),
    ])
    .await;
    let server = serve(&[]).await;
    let response = server
        .request(reqwest::Method::POST, "/run")
        .header("accept", "text/event-stream")
        .json(&run_body(&llm, json!([everything_entry(json!({}))])))
        .send()
        .await
        .expect("run answers");
    assert_eq!(response.status(), 200);
    let run_id = response.headers()["x-run-id"]
        .to_str()
        .expect("id")
        .to_string();
    let events = read_events(response, "final").await;
    let names: Vec<_> = events.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(names, ["started", "step", "tool_result", "step", "final"]);
    assert_eq!(events[0].1["run_id"], run_id);
    assert_eq!(events[2].1["result"]["name"], "get-sum");
    let final_result = &events[4].1;
    assert_eq!(final_result["final_answer"], "5");
    assert_eq!(final_result["run_id"], run_id);
    assert_eq!(final_result["steps"][0]["tool_results"][0]["id"], "call_0");
    assert_eq!(as_usage(&final_result["token_usage"]), (30, 15, 45));
}

#[tokio::test]
async fn a_client_that_disconnects_cancels_the_run_and_its_children() {
    let marker = format!("disconnect-{}", std::process::id());
    let long_call = || {
        Reply::call(
            "trigger-long-running-operation",
            json!({"duration": 60, "steps": 60}),
        )
    };
    let llm = ScriptedLlm::start(vec![long_call(), long_call()]).await;
    let server = serve(&[]).await;
    for streaming in [true, false] {
        let body = run_body(
            &llm,
            json!([everything_entry(json!({"RUN_MARKER": marker}))]),
        );
        let mut request = server.request(reqwest::Method::POST, "/run").json(&body);
        if streaming {
            request = request.header("accept", "text/event-stream");
        }
        let pending = tokio::spawn(async move {
            // Reads until the test aborts the task mid-run, which closes the connection.
            let response = request.send().await.expect("run answers");
            let mut body = response.bytes_stream();
            while body.next().await.is_some() {}
        });
        let requests = if streaming { 1 } else { 2 };
        llm.wait_for_requests(requests).await;
        eventually("the run's child started", Duration::from_millis(20), || {
            std::future::ready(!pids_with_env("RUN_MARKER", &marker).is_empty())
        })
        .await;
        pending.abort();
        let _ = pending.await;
        eventually(
            format!("a child outlived the disconnected run (streaming: {streaming})"),
            Duration::from_millis(20),
            || std::future::ready(pids_with_env("RUN_MARKER", &marker).is_empty()),
        )
        .await;
    }
}

#[tokio::test]
async fn delete_cancels_a_run_and_the_call_upstream() {
    let python = start_python("streamable-http")
        .await
        .expect("python fixture");
    let llm = ScriptedLlm::start(vec![Reply::call(
        "slow",
        json!({"seconds": 60, "label": "cancel-me"}),
    )])
    .await;
    let server = serve(&[]).await;
    let response = server
        .request(reqwest::Method::POST, "/run")
        .header("accept", "text/event-stream")
        .json(&run_body(&llm, json!([{"url": python.url("/mcp")}])))
        .send()
        .await
        .expect("run answers");
    let run_id = response.headers()["x-run-id"]
        .to_str()
        .expect("id")
        .to_string();
    let mut stream = sse_stream::SseStream::from_bytes_stream(response.bytes_stream());
    // Cancel only once the call runs upstream: cancelling earlier would never reach it.
    let upstream = switchboard_mcp::Upstream::connect(switchboard_mcp::UpstreamConfig::http(
        "check",
        python.url("/mcp"),
    ))
    .await
    .expect("connects");
    await_tool_text(&upstream, "started_calls", "cancel-me").await;
    let cancelled = server
        .request(reqwest::Method::DELETE, &format!("/run/{run_id}"))
        .send()
        .await
        .expect("delete answers");
    assert_eq!(cancelled.status(), 202);
    let mut final_result = None;
    while let Some(Ok(event)) = stream.next().await {
        if event.event.as_deref() == Some("final") {
            final_result = event
                .data
                .map(|d| serde_json::from_str::<Value>(&d).expect("json"));
            break;
        }
    }
    let final_result = final_result.expect("a final event");
    assert_eq!(final_result["stop_reason"], "cancelled");

    // The upstream saw `notifications/cancelled` for the call.
    await_tool_text(&upstream, "cancelled_calls", "cancel-me").await;

    let gone = server
        .request(reqwest::Method::DELETE, &format!("/run/{run_id}"))
        .send()
        .await
        .expect("delete answers");
    assert_eq!(gone.status(), 404);
    let body: Value = gone.json().await.expect("json");
    assert_eq!(body["error"]["code"], "not_found");
}

#[tokio::test]
async fn auth_and_bad_input_get_clear_errors() {
    let llm = ScriptedLlm::start(vec![]).await;
    let server = serve(&["--no-run-stdio", "--max-run-steps", "5"]).await;
    let client = switchboard_test_support::http_client();
    let good = run_body(&llm, json!([]));

    let missing = client
        .post(server.url("/run"))
        .json(&good)
        .send()
        .await
        .expect("answers");
    assert_eq!(missing.status(), 401);
    assert!(missing.headers().contains_key("www-authenticate"));
    let body: Value = missing.json().await.expect("json");
    assert_eq!(body["error"]["code"], "unauthorized");
    let wrong = client
        .post(server.url("/run"))
        .bearer_auth(format!("{ADMIN_TOKEN}x"))
        .json(&good)
        .send()
        .await
        .expect("answers");
    assert_eq!(wrong.status(), 401);

    let cases = [
        (
            json!({"model": "m"}),
            400,
            "invalid_request",
            "missing field `task`",
        ),
        (
            json!({"task": "t", "model": "m", "max_steps": 6}),
            400,
            "invalid_request",
            "between 1 and 5",
        ),
        (
            json!({"task": "t", "model": "m", "max_steps": "ten"}),
            400,
            "invalid_request",
            "invalid type",
        ),
        (
            json!({"task": "t", "model": "m", "agent_type": "react"}),
            400,
            "invalid_request",
            "agent_type",
        ),
        (
            json!({"task": "t", "model": "m", "mcp_servers": [{"command": "npx"}]}),
            403,
            "stdio_disabled",
            "turned off",
        ),
        (
            json!({"task": "t", "model": "m", "mcp_servers": [{"url": "ftp://x"}]}),
            400,
            "invalid_request",
            "http or https",
        ),
        (
            json!({"task": "t", "model": "m", "base_url": "http://169.254.169.254/v1"}),
            400,
            "invalid_request",
            "link-local or cloud metadata",
        ),
        (
            json!({"task": "t", "model": "m", "mcp_servers": [{"url": "http://[fe80::1]/mcp"}]}),
            400,
            "invalid_request",
            "link-local",
        ),
    ];
    for (body, status, code, message) in cases {
        let (got_status, answer) = server.post_run(&body).await.expect("answers");
        assert_eq!(got_status, status, "{body} -> {answer}");
        assert_eq!(answer["error"]["code"], code, "{body} -> {answer}");
        let text = answer["error"]["message"].as_str().expect("message");
        assert!(text.contains(message), "{body} -> {text}");
    }
    let not_json = server
        .request(reqwest::Method::POST, "/run")
        .body("{oops")
        .send()
        .await
        .expect("answers");
    assert_eq!(not_json.status(), 400);
    assert!(llm.requests().is_empty(), "no bad request reached the LLM");
}

#[tokio::test]
async fn llm_failures_end_the_run_with_a_clear_error() {
    let server = serve(&[]).await;
    let closed = switchboard_test_support::free_port().expect("port");
    let cases = [
        (Some(Reply::status(401)), 502, "llm_unauthorized"),
        (Some(Reply::status(503)), 502, "llm_error"),
        (
            Some(Reply::Raw(json!({"nonsense": true}))),
            502,
            "llm_bad_response",
        ),
        (None, 502, "llm_unreachable"),
    ];
    for (reply, status, code) in cases {
        let llm = ScriptedLlm::start(reply.into_iter().collect()).await;
        let mut body = run_body(&llm, json!([]));
        if code == "llm_unreachable" {
            body["base_url"] = json!(format!("http://127.0.0.1:{closed}/v1"));
        }
        let (got, result) = server.post_run(&body).await.expect("answers");
        assert_eq!(got, status, "{result}");
        assert_eq!(result["stop_reason"], "error");
        assert_eq!(result["error"]["code"], code, "{result}");
        assert!(!result.to_string().contains("sk-test-run-key-123"));
    }
}

#[tokio::test]
async fn rate_limits_are_retried_after_the_wait_asked_for() {
    let llm = ScriptedLlm::start(vec![
        Reply::Status {
            status: 429,
            body: json!({"error": {"message": "slow down"}}),
            retry_after: Some("1".into()),
        },
        Reply::Text {
            content: "patient answer".into(),
            usage: None,
        },
    ])
    .await;
    let server = serve(&[]).await;
    let (status, result) = server
        .post_run(&run_body(&llm, json!([])))
        .await
        .expect("answers");
    assert_eq!(status, 200, "{result}");
    assert_eq!(result["final_answer"], "patient answer");
    // A missing `usage` counts as zeros.
    assert_eq!(as_usage(&result["token_usage"]), (0, 0, 0));
    let requests = llm.requests();
    assert_eq!(requests.len(), 2);
    assert!(requests[1].at.duration_since(requests[0].at) >= Duration::from_secs(1));
}

/// A finished run is kept and read back at `GET /api/runs` and `GET /api/runs/{id}`, with every
/// secret of its request masked: the LLM key and an env value, wherever the task or the model
/// repeated them.
#[tokio::test]
async fn runs_are_kept_with_their_secrets_masked() {
    let llm = ScriptedLlm::start(vec![
        Reply::calls(&[("echo", json!({"message": "hello env-secret-value-42"}))]),
        Reply::text("Done; the token was env-secret-value-42."),
    ])
    .await;
    let server = serve(&[]).await;
    let mut body = run_body(
        &llm,
        json!([everything_entry(
            json!({"SECRET_TOKEN": "env-secret-value-42"})
        )]),
    );
    body["task"] = json!("Echo hello, then say which key you used: sk-test-run-key-123.");
    let (status, result) = server.post_run(&body).await.expect("run answers");
    assert_eq!(status, 200, "{result}");
    let run_id = result["run_id"].as_str().expect("run_id");

    let (status, page) = server
        .send_json(reqwest::Method::GET, "/api/runs", None)
        .await
        .expect("runs");
    assert_eq!(status, 200, "{page}");
    let items = page["items"].as_array().expect("items");
    assert_eq!(items.len(), 1, "{page}");
    let summary = &items[0];
    assert_eq!(summary["run_id"], run_id);
    assert_eq!(summary["actor"], "admin token");
    assert_eq!(summary["model"], "scripted-model");
    assert_eq!(summary["stop_reason"], "final_answer");
    assert_eq!(
        (summary["steps"].as_u64(), summary["tool_calls"].as_u64()),
        (Some(2), Some(1))
    );
    assert_eq!(summary["tokens"], 45);
    assert_eq!(
        summary["task"],
        "Echo hello, then say which key you used: ***."
    );

    let (status, kept) = server
        .send_json(reqwest::Method::GET, &format!("/api/runs/{run_id}"), None)
        .await
        .expect("one run");
    assert_eq!(status, 200, "{kept}");
    assert_eq!(kept["servers"], json!(["index"]));
    assert_eq!(kept["result"]["steps"].as_array().map(Vec::len), Some(2));
    assert_eq!(
        kept["result"]["steps"][0]["tool_results"][0]["name"],
        "echo"
    );
    assert_eq!(kept["result"]["final_answer"], "Done; the token was ***.");
    let text = kept.to_string();
    for secret in ["env-secret-value-42", "sk-test-run-key-123"] {
        assert!(!text.contains(secret), "{secret} kept: {text}");
        assert!(!page.to_string().contains(secret), "{secret} listed");
    }

    // Unknown ids, bad paging and a missing credential get clear answers.
    let (status, missing) = server
        .send_json(reqwest::Method::GET, "/api/runs/run_nope", None)
        .await
        .expect("missing run");
    assert_eq!(
        (status, missing["error"]["code"].as_str()),
        (404, Some("not_found"))
    );
    let (status, bad) = server
        .send_json(reqwest::Method::GET, "/api/runs?limit=0", None)
        .await
        .expect("bad limit");
    assert_eq!(
        (status, bad["error"]["code"].as_str()),
        (400, Some("invalid_request"))
    );
    let anonymous = reqwest::get(server.url("/api/runs"))
        .await
        .expect("anonymous");
    assert_eq!(anonymous.status(), 401);
}
