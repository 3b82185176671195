//! The agent runner end to end: `switchboard serve` as a real process, `POST /run` over real HTTP,
//! tools from real MCP servers (server-everything over stdio, the Python SDK over HTTP), and the
//! scripted LLM, which records what the model was sent.

use std::time::Duration;

mod common;

use common::{binary, poll_tool_text, serve};
use futures::StreamExt as _;
use serde_json::{Value, json};
use switchboard_test_support::{
    ADMIN_TOKEN, Reply, ScriptedLlm, Switchboard, eventually, everything_stdio_command, llm::usage,
    pids_with_env, start_python,
};

/// A `mcp_servers` entry running server-everything over stdio, with `env`.
fn everything_entry(env: Value) -> Value {
    let (command, args) = everything_stdio_command();
    json!({"command": command, "args": args, "env": env})
}

fn run_body(llm: &ScriptedLlm, servers: Value) -> Value {
    json!({
        "task": "Add 2 and 3, and 4 and 5.",
        "model": "scripted-model",
        "base_url": llm.base_url(),
        "api_key": "sk-test-run-key-123",
        "agent_type": "mcp",
        "mcp_servers": servers,
    })
}

fn as_usage(value: &Value) -> (u64, u64, u64) {
    (
        value["prompt_tokens"].as_u64().expect("prompt_tokens"),
        value["completion_tokens"]
            .as_u64()
            .expect("completion_tokens"),
        value["total_tokens"].as_u64().expect("total_tokens"),
    )
}

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
    assert!(
        eventually(Duration::from_secs(10), || pids_with_env(
            "RUN_MARKER",
            &marker
        )
        .is_empty())
        .await,
        "the run's child outlived the run"
    );

    // `${VAR}` cannot read the gateway's environment either.
    let llm = ScriptedLlm::start(vec![Reply::text("ok")]).await;
    let (command, mut args) = everything_stdio_command();
    args.push("${GATEWAY_SECRET}".into());
    let body = run_body(&llm, json!([{"command": command, "args": args}]));
    let (_, result) = server.post_run(&body).await.expect("run answers");
    let warning = result["warnings"][0].as_str().expect("a warning");
    assert!(warning.contains("`GATEWAY_SECRET` is not set"), "{warning}");
}

/// Reads SSE events until one named `last`; returns them as (name, data).
async fn read_events(response: reqwest::Response, last: &str) -> Vec<(String, Value)> {
    let mut stream = sse_stream::SseStream::from_bytes_stream(response.bytes_stream());
    let mut events = Vec::new();
    while let Some(Ok(event)) = stream.next().await {
        let (Some(name), Some(data)) = (event.event, event.data) else {
            continue;
        };
        let data: Value = serde_json::from_str(&data).expect("event data is JSON");
        let done = name == last;
        events.push((name, data));
        if done {
            break;
        }
    }
    events
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
        assert!(
            eventually(Duration::from_secs(20), || !pids_with_env(
                "RUN_MARKER",
                &marker
            )
            .is_empty())
            .await,
            "the run's child started"
        );
        pending.abort();
        let _ = pending.await;
        assert!(
            eventually(Duration::from_secs(10), || pids_with_env(
                "RUN_MARKER",
                &marker
            )
            .is_empty())
            .await,
            "a child outlived the disconnected run (streaming: {streaming})"
        );
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
    assert!(
        poll_tool_text(&upstream, "started_calls", "cancel-me").await,
        "the slow call never started"
    );
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
    assert!(
        poll_tool_text(&upstream, "cancelled_calls", "cancel-me").await,
        "the cancel did not reach the upstream"
    );

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

#[tokio::test]
async fn cli_run_with_a_spec_pins_params_and_masks_secrets() {
    let python = start_python("streamable-http")
        .await
        .expect("python fixture");
    let llm = ScriptedLlm::start(vec![
        Reply::calls(&[("add_forty", json!({"a": 2})), ("whoami", json!({}))]),
        Reply::Text {
            content: "42".into(),
            usage: Some(usage(7, 3)),
        },
    ])
    .await;
    let dir = tempfile::tempdir().expect("temp dir");
    let spec = dir.path().join("agent.yaml");
    std::fs::write(
        &spec,
        format!(
            r#"model: scripted-model
base_url: {base}
max_steps: 3
system_prompt: Be brief.
tools:
  - kind: mcp
    server: {url}
    headers:
      Authorization: "Bearer {{{{secrets.MCP_TOKEN}}}}"
    tools:
      - whoami
      - tool: add
        name: add_forty
        description: Adds forty.
        params:
          b: 40
"#,
            base = llm.base_url(),
            url = python.url("/mcp"),
        ),
    )
    .expect("spec written");
    let secrets = dir.path().join("secrets.env");
    std::fs::write(&secrets, "MCP_TOKEN=mcp-token-from-file-77\n").expect("secrets written");
    let output = tokio::process::Command::new(binary())
        .arg("run")
        .arg(&spec)
        .arg("What is 2 plus forty?")
        .arg("--secrets-file")
        .arg(&secrets)
        .arg("--json")
        .env("OPENAI_API_KEY", "sk-cli-key-0001")
        .output()
        .await
        .expect("runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let result: Value = serde_json::from_slice(&output.stdout).expect("JSON result");
    assert_eq!(result["final_answer"], "42");
    assert_eq!(result["stop_reason"], "final_answer");
    assert_eq!(as_usage(&result["token_usage"]), (27, 13, 40));

    let first = &llm.requests()[0];
    assert_eq!(first.messages()[0]["content"], "Be brief.");
    assert_eq!(
        first.authorization.as_deref(),
        Some("Bearer sk-cli-key-0001")
    );
    let mut names = first.tool_names();
    names.sort();
    assert_eq!(names, ["add_forty", "whoami"]);
    let add = first.tool("add_forty").expect("offered");
    assert_eq!(add["description"], "Adds forty.");
    assert_eq!(
        add["parameters"]["required"],
        json!(["a"]),
        "the pinned `b` is hidden"
    );
    assert!(add["parameters"]["properties"].get("b").is_none());
    let second = &llm.requests()[1];
    assert_eq!(
        second.tool_message("call_0").as_deref(),
        Some(r#"{"result":42}"#)
    );
    // The header went upstream, and the secret in the tool's answer was masked for the model.
    assert_eq!(
        second.tool_message("call_1").as_deref(),
        Some(r#"{"result":"Bearer ***"}"#)
    );

    // Without --json, the final answer alone.
    let llm = ScriptedLlm::start(vec![Reply::text("plain answer")]).await;
    let output = tokio::process::Command::new(binary())
        .args([
            "run",
            "--model",
            "m",
            "--base-url",
            &llm.base_url(),
            "say hi",
        ])
        .output()
        .await
        .expect("runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&output.stdout), "plain answer\n");
}

#[tokio::test]
async fn cli_flags_stand_in_for_a_spec_and_a_terminal_sees_each_step() {
    let python = start_python("streamable-http")
        .await
        .expect("python fixture");
    let llm = ScriptedLlm::start(vec![
        Reply::calls(&[
            ("get-sum", json!({"a": 1, "b": 2})),
            ("fail", json!({"reason": "nope"})),
        ]),
        Reply::text("three"),
    ])
    .await;
    let (command, args) = everything_stdio_command();
    let stdio = format!("{command} {}", args.join(" "));
    // `script` gives the command a terminal, where progress is shown.
    let line = format!(
        "{} run --model m --base-url {} --mcp-stdio '{stdio}' --mcp-url {} 'add one and two'",
        binary().display(),
        llm.base_url(),
        python.url("/mcp"),
    );
    let output = tokio::process::Command::new("script")
        .args(["-qec", &line, "/dev/null"])
        .output()
        .await
        .expect("runs");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{text}");
    assert!(text.contains("step 1: calling get-sum, fail"), "{text}");
    assert!(text.contains("✓ get-sum ("), "{text}");
    assert!(text.contains("✗ fail ("), "{text}");
    assert!(text.trim_end().ends_with("three"), "{text}");
    let mut offered = llm.requests()[0].tool_names();
    offered.sort();
    assert!(offered.contains(&"get-sum".to_string()) && offered.contains(&"add".to_string()));
}

#[tokio::test]
async fn the_servers_key_is_used_when_a_request_brings_none() {
    let llm = ScriptedLlm::start(vec![Reply::text("a"), Reply::text("b")]).await;
    let server = Switchboard::start(binary(), &[], &[("OPENAI_API_KEY", "sk-server-default-9")])
        .await
        .expect("starts");
    let body = json!({"task": "t", "model": "m", "base_url": format!("{}/chat/completions", llm.base_url()),
        "temperature": 0.25, "system_prompt": "Answer in one word."});
    let (status, result) = server.post_run(&body).await.expect("answers");
    assert_eq!(status, 200, "{result}");
    let request = &llm.requests()[0];
    assert_eq!(
        request.authorization.as_deref(),
        Some("Bearer sk-server-default-9")
    );
    assert_eq!(request.body["temperature"], 0.25);
    assert_eq!(request.messages()[0]["content"], "Answer in one word.");
    assert!(!server.log().contains("sk-server-default-9"));

    let server = Switchboard::start(
        binary(),
        &["--llm-api-key", "sk-flag-key-10"],
        &[("OPENAI_API_KEY", "sk-server-default-9")],
    )
    .await
    .expect("starts");
    let (status, _) = server.post_run(&body).await.expect("answers");
    assert_eq!(status, 200);
    assert_eq!(
        llm.requests()[1].authorization.as_deref(),
        Some("Bearer sk-flag-key-10")
    );
}

#[tokio::test]
async fn shutdown_cancels_runs_after_the_grace_period_and_stops_their_children() {
    let marker = format!("shutdown-{}", std::process::id());
    let llm = ScriptedLlm::start(vec![Reply::call(
        "trigger-long-running-operation",
        json!({"duration": 60, "steps": 60}),
    )])
    .await;
    let mut server = serve(&["--shutdown-grace", "1"]).await;
    let body = run_body(
        &llm,
        json!([everything_entry(json!({"RUN_MARKER": marker}))]),
    );
    let request = server
        .request(reqwest::Method::POST, "/run")
        .header("accept", "text/event-stream")
        .json(&body);
    let reader = tokio::spawn(async move {
        let response = request.send().await.expect("run answers");
        read_events(response, "final").await
    });
    llm.wait_for_requests(1).await;
    let status = server.terminate().await.expect("exits");
    assert!(status.success(), "{status:?}");
    let events = reader.await.expect("reader");
    let (name, last) = events.last().expect("events");
    assert_eq!(name, "final");
    assert_eq!(last["stop_reason"], "cancelled");
    assert!(
        eventually(Duration::from_secs(10), || pids_with_env(
            "RUN_MARKER",
            &marker
        )
        .is_empty())
        .await,
        "a run's child outlived the server"
    );
}

#[tokio::test]
async fn a_run_is_traced_over_otlp_continuing_the_callers_trace() {
    let receiver = switchboard_test_support::OtlpReceiver::start()
        .await
        .expect("receiver");
    let llm = ScriptedLlm::start(vec![
        Reply::calls(&[
            ("get-sum", json!({"a": 2, "b": 3})),
            ("no-such-tool", json!({})),
        ]),
        Reply::text("5"),
    ])
    .await;
    let server = Switchboard::start(
        binary(),
        &["--otlp-endpoint", &receiver.endpoint],
        &[("OTEL_BSP_SCHEDULE_DELAY", "50")],
    )
    .await
    .expect("starts");
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let body = run_body(
        &llm,
        json!([everything_entry(
            json!({"SECRET_FOR_CHILD": "child-secret-value-77"})
        )]),
    );
    let response = server
        .request(reqwest::Method::POST, "/run")
        .header("traceparent", format!("00-{trace_id}-00f067aa0ba902b7-01"))
        .json(&body)
        .send()
        .await
        .expect("answers");
    assert_eq!(response.status(), 200);
    let result: Value = response.json().await.expect("json");
    assert_eq!(result["trace_id"], trace_id, "{result}");
    // The LLM was called within the same trace.
    let traceparent = llm.requests()[0]
        .traceparent
        .clone()
        .expect("traceparent to the LLM");
    assert!(traceparent.contains(trace_id), "{traceparent}");

    let spans = receiver
        .wait_until(|spans| {
            spans.iter().any(|s| s.name == "run")
                && spans.iter().filter(|s| s.name == "tool.execute").count() >= 2
                && spans.iter().filter(|s| s.name == "llm.call").count() >= 2
        })
        .await;
    let run = spans.iter().find(|s| s.name == "run").expect("a run span");
    assert_eq!(run.trace_id, trace_id);
    assert_eq!(run.attribute("gen_ai.operation.name"), Some("invoke_agent"));
    assert_eq!(
        run.attribute("gen_ai.request.model"),
        Some("scripted-model")
    );
    let children = |name: &str| -> Vec<&switchboard_test_support::ReceivedSpan> {
        spans
            .iter()
            .filter(|s| s.name == name && s.parent_span_id == run.span_id)
            .collect()
    };
    let llm_calls = children("llm.call");
    assert_eq!(llm_calls.len(), 2, "{spans:#?}");
    assert_eq!(
        llm_calls[0].attribute("gen_ai.usage.input_tokens"),
        Some("20")
    );
    let tools = children("tool.execute");
    assert_eq!(tools.len(), 2);
    let failed = tools
        .iter()
        .find(|s| s.attribute("gen_ai.tool.name") == Some("no-such-tool"))
        .expect("the failing call");
    assert_eq!(failed.status_code, 2, "status error: {failed:?}");
    let ok = tools
        .iter()
        .find(|s| s.attribute("gen_ai.tool.name") == Some("get-sum"))
        .expect("the good call");
    assert_ne!(ok.status_code, 2);
    assert_eq!(ok.attribute("switchboard.server"), Some("index"));
    assert!(
        spans
            .iter()
            .any(|s| s.name == "upstream.connect" && s.trace_id == trace_id)
    );

    for span in &spans {
        for (key, value) in &span.attributes {
            for secret in ["sk-test-run-key-123", "child-secret-value-77"] {
                assert!(
                    !value.contains(secret),
                    "{} {key} holds a secret",
                    span.name
                );
            }
        }
    }
}

#[tokio::test]
async fn tool_io_is_traced_only_when_configured_and_masked() {
    let receiver = switchboard_test_support::OtlpReceiver::start()
        .await
        .expect("receiver");
    let llm = ScriptedLlm::start(vec![
        Reply::call("echo", json!({"message": "key sk-test-run-key-123 inside"})),
        Reply::text("done"),
    ])
    .await;
    let server = Switchboard::start(
        binary(),
        &["--otlp-endpoint", &receiver.endpoint, "--trace-tool-io"],
        &[("OTEL_BSP_SCHEDULE_DELAY", "50")],
    )
    .await
    .expect("starts");
    let (status, _) = server
        .post_run(&run_body(&llm, json!([everything_entry(json!({}))])))
        .await
        .expect("answers");
    assert_eq!(status, 200);
    let spans = receiver
        .wait_until(|spans| spans.iter().any(|s| s.name == "tool.execute"))
        .await;
    let tool = spans
        .iter()
        .find(|s| s.name == "tool.execute")
        .expect("a tool span");
    let arguments = tool
        .attribute("gen_ai.tool.call.arguments")
        .expect("arguments recorded");
    assert!(
        arguments.contains("***") && !arguments.contains("sk-test-run-key-123"),
        "{arguments}"
    );
    let result = tool
        .attribute("gen_ai.tool.call.result")
        .expect("result recorded");
    assert!(result.starts_with("Echo: "), "{result}");
}
