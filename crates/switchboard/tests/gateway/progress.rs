//! Progress through the gateway: every report before the answer, under the client's own token,
//! on the raw path, the typed path and legacy HTTP+SSE.

use super::*;

/// Progress reports that travel with the answer (the tool reports and answers at once) reach the
/// client before the answer, under the client's own token, on the raw path: none is dropped
/// when the answer is read first. Repeated, as it was a race.
#[tokio::test]
async fn progress_sent_together_with_the_answer_reaches_the_client() {
    let (_python, server) = calc_behind_gateway(&[]).await;
    let session = open_raw_session(&server, "/mcp/calc").await;
    // The first call opens the upstream session; the others take the raw path.
    request_raw(
        &server,
        "/mcp/calc",
        &session,
        json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": {"name": "add", "arguments": {"a": 1, "b": 1}}}),
    )
    .await;
    let before = raw_calls(&server).await;
    for id in 2..12 {
        let response = post_raw(
            &server,
            "/mcp/calc",
            Some(&session),
            json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
                "params": {"name": "report_thrice", "arguments": {},
                    "_meta": {"progressToken": format!("client-{id}")}}}),
        )
        .await;
        let text = response.text().await.expect("reads");
        let messages: Vec<Value> = text
            .lines()
            .filter_map(|line| line.strip_prefix("data:"))
            .filter_map(|data| serde_json::from_str(data.trim()).ok())
            .collect();
        let progress: Vec<&Value> = messages
            .iter()
            .filter(|m| m["method"] == "notifications/progress")
            .collect();
        assert_eq!(progress.len(), 3, "{id}: {text}");
        for (step, report) in progress.iter().enumerate() {
            assert_eq!(
                report["params"]["progressToken"],
                format!("client-{id}"),
                "{text}"
            );
            let expected = step as f64 + 1.0;
            assert_eq!(
                report["params"]["progress"].as_f64(),
                Some(expected),
                "{text}"
            );
        }
        let last = messages.last().expect("an answer");
        assert_eq!(
            last["result"]["structuredContent"]["result"], "reported",
            "{text}"
        );
    }
    assert_eq!(raw_calls(&server).await - before, 10.0);
}

/// A plain call's progress token reaches the upstream as the client sent it, not replaced by one
/// of the gateway's (seen by a recording proxy in front of the upstream).
#[tokio::test]
async fn the_upstream_sees_the_clients_own_progress_token() {
    let python = start_python("streamable-http")
        .await
        .expect("python fixture");
    let recorder = switchboard_test_support::RecordingProxy::start(&python.url(""))
        .await
        .expect("a recording proxy");
    let server = serve(&[]).await;
    register(
        &server,
        &remote_body("Calc", &recorder.url("/mcp"), Some("calc")),
    )
    .await;
    let session = open_raw_session(&server, "/mcp/calc").await;
    for (id, token) in [(1, json!("client-token-7")), (2, json!(4242))] {
        let answer = request_raw(
            &server,
            "/mcp/calc",
            &session,
            json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
                "params": {"name": "report_thrice", "arguments": {},
                    "_meta": {"progressToken": token}}}),
        )
        .await;
        assert_eq!(answer["result"]["structuredContent"]["result"], "reported");
        let sent: Vec<_> = recorder
            .requests()
            .into_iter()
            .filter(|request| request.rpc_method.as_deref() == Some("tools/call"))
            .filter_map(|request| request.progress_token)
            .collect();
        assert_eq!(sent.last(), Some(&token), "{sent:?}");
    }
    assert!(raw_calls(&server).await >= 1.0, "the raw path took a call");
}

/// A legacy HTTP+SSE client gets every progress report of a call before its answer, also when
/// the upstream sends them together with the answer (read off the wire: the TypeScript SDK's SSE
/// client drops reports of its own when they come that close to the answer, directly as well).
#[tokio::test]
async fn a_legacy_sse_client_gets_every_progress_report_before_the_answer() {
    use futures::StreamExt as _;
    let (_python, server) = calc_behind_gateway(&[]).await;
    let stream = server
        .request(Method::GET, "/mcp/calc/sse")
        .header("accept", "text/event-stream")
        .send()
        .await
        .expect("opens");
    let mut events = sse_stream::SseStream::from_bytes_stream(stream.bytes_stream());
    let mut next_data = async || -> String {
        loop {
            let event = events.next().await.expect("an event").expect("readable");
            if let Some(data) = event.data.filter(|data| !data.trim().is_empty()) {
                return data;
            }
        }
    };
    let endpoint = next_data().await;
    let post = |body: Value| {
        let request = server.request(Method::POST, &endpoint).json(&body);
        async move {
            let status = request.send().await.expect("answers").status();
            assert_eq!(status, 202);
        }
    };
    post(
        json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2024-11-05", "capabilities": {},
        "clientInfo": {"name": "raw-sse", "version": "1"}}}),
    )
    .await;
    let initialized: Value = serde_json::from_str(&next_data().await).expect("JSON");
    assert_eq!(initialized["id"], 1, "{initialized}");
    post(json!({"jsonrpc": "2.0", "method": "notifications/initialized"})).await;
    for id in 2..8 {
        post(json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
            "params": {"name": "report_thrice", "arguments": {},
                "_meta": {"progressToken": id * 100}}}))
        .await;
        for step in 1..=3 {
            let report: Value = serde_json::from_str(&next_data().await).expect("JSON");
            assert_eq!(report["method"], "notifications/progress", "{id}: {report}");
            assert_eq!(report["params"]["progressToken"], id * 100, "{report}");
            assert_eq!(report["params"]["progress"].as_f64(), Some(f64::from(step)));
        }
        let answer: Value = serde_json::from_str(&next_data().await).expect("JSON");
        assert_eq!(answer["id"], id, "{answer}");
        assert_eq!(answer["result"]["structuredContent"]["result"], "reported");
    }
}
