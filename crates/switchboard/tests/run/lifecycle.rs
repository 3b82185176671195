//! A run's life beyond its answer: shutdown with runs in flight, and its traces.

use super::*;

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
    eventually(
        "a run's child outlived the server",
        Duration::from_millis(20),
        || std::future::ready(pids_with_env("RUN_MARKER", &marker).is_empty()),
    )
    .await;
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
