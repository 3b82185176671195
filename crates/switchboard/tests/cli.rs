//! The `switchboard` binary as a user runs it, against server-everything over stdio, Streamable
//! HTTP and legacy SSE.

use std::process::Output;

use switchboard_test_support as support;
use tokio::process::Command;

async fn switchboard(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(args)
        .output()
        .await
        .expect("runs")
}

/// `switchboard call` on server-everything over stdio, with `tool` and its JSON arguments.
async fn call_everything_stdio(tool: &str, arguments: &str) -> Output {
    let js = support::everything_js().display().to_string();
    switchboard(&["call", "--", "node", &js, "stdio", tool, arguments]).await
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_over_stdio_prints_the_sum() {
    let output = call_everything_stdio("get-sum", r#"{"a":2,"b":3}"#).await;
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(stdout(&output).contains("is 5"), "{}", stdout(&output));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_over_both_http_modes_prints_the_sum() {
    for (mode, path) in [("streamableHttp", "/mcp"), ("sse", "/sse")] {
        let server = support::start_everything(mode).await.expect("starts");
        let url = server.url(path);
        let output = switchboard(&["call", "--url", &url, "get-sum", r#"{"a":2,"b":3}"#]).await;
        assert!(output.status.success(), "{mode}: {}", stderr(&output));
        assert!(
            stdout(&output).contains("is 5"),
            "{mode}: {}",
            stdout(&output)
        );
    }
}

/// A call that succeeds prints nothing on stderr: the session is closed before the process
/// exits, so rmcp's close is never cut short (it logged `fail to close sink` on about one call in
/// four). Repeated, as that was a race.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_successful_call_writes_nothing_on_stderr() {
    let server = support::start_everything("streamableHttp")
        .await
        .expect("starts");
    let url = server.url("/mcp");
    for _ in 0..12 {
        let output = switchboard(&["call", "--url", &url, "get-sum", r#"{"a":2,"b":3}"#]).await;
        assert!(output.status.success(), "{}", stderr(&output));
        assert_eq!(stderr(&output), "", "a successful call");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_error_result_exits_non_zero_with_a_one_line_reason() {
    let output = call_everything_stdio("get-sum", r#"{"a":"two","b":3}"#).await;
    assert_eq!(output.status.code(), Some(1));
    let stderr = stderr(&output);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("switchboard: tool `get-sum` failed:"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_json_prints_the_raw_result() {
    let server = support::start_python("streamable-http")
        .await
        .expect("starts");
    let url = server.url("/mcp");
    let output = switchboard(&[
        "call",
        "--json",
        "--url",
        &url,
        "weather",
        r#"{"city":"Oslo"}"#,
    ])
    .await;
    assert!(output.status.success(), "{}", stderr(&output));
    let result: serde_json::Value = serde_json::from_str(&stdout(&output)).expect("JSON");
    assert_eq!(result["structuredContent"]["city"], "Oslo");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tools_lists_names_and_parameters() {
    let js = support::everything_js().display().to_string();
    let output = switchboard(&["tools", "--", "node", &js, "stdio"]).await;
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(text.lines().any(|l| l.starts_with("get-sum")), "{text}");
    assert!(text.contains("    a: number"), "{text}");

    let output = switchboard(&["tools", "--json", "--", "node", &js, "stdio"]).await;
    let tools: Vec<serde_json::Value> = serde_json::from_str(&stdout(&output)).expect("JSON");
    assert!(
        tools
            .iter()
            .any(|t| t["name"] == "get-sum" && t["inputSchema"]["properties"]["a"].is_object())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_invocations_fail_with_a_clear_message() {
    let cases: &[(&[&str], &str)] = &[
        (&["call", "get-sum"], "no server given"),
        (
            &[
                "call",
                "--url",
                "http://127.0.0.1:1/mcp",
                "get-sum",
                "{not json",
            ],
            "not valid JSON",
        ),
        (
            &["call", "--url", "http://127.0.0.1:1/mcp", "get-sum", "[1]"],
            "must be a JSON object",
        ),
        (
            &[
                "call",
                "--url",
                "http://127.0.0.1:1/mcp",
                "--header",
                "nocolon",
                "x",
            ],
            "--header expects K:V",
        ),
        (
            &["call", "--url", "http://127.0.0.1:1/mcp", "x"],
            "could not connect",
        ),
        (
            &["call", "--", "/nonexistent/server", "x"],
            "could not start `/nonexistent/server`",
        ),
    ];
    for (args, expected) in cases {
        let output = switchboard(args).await;
        assert!(!output.status.success(), "{args:?} succeeded");
        assert!(
            stderr(&output).contains(expected),
            "{args:?}: {}",
            stderr(&output)
        );
    }
}

/// `switchboard serve` refuses an admin token under 16 characters before it listens, warns about
/// one under 32, and keeps its SQLite files readable by their owner only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_refuses_a_short_admin_token_and_keeps_its_database_private() {
    let data_dir = tempfile::tempdir().expect("a data directory");
    let refused = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data_dir.path())
        .env("SWITCHBOARD_ADMIN_TOKEN", "too-short-15chr")
        .output()
        .await
        .expect("runs");
    assert!(!refused.status.success());
    assert!(
        stderr(&refused).contains("needs at least 16"),
        "{}",
        stderr(&refused)
    );
    assert!(
        !stdout(&refused).contains("listening"),
        "{}",
        stdout(&refused)
    );

    // 21 characters: served, with a warning.
    let server = support::Switchboard::start(env!("CARGO_BIN_EXE_switchboard").as_ref(), &[], &[])
        .await
        .expect("serves");
    let (status, _) = server
        .send_json(
            reqwest::Method::POST,
            "/api/mcp-servers",
            Some(
                &serde_json::json!({"manifest": {"name": "A", "runtime": "remote",
                "remoteConfig": {"url": "http://127.0.0.1:9/mcp"}}}),
            ),
        )
        .await
        .expect("answers");
    assert_eq!(status, 201);
    support::eventually(
        "the warning of a short admin token in the log",
        std::time::Duration::from_millis(20),
        || std::future::ready(server.log().contains("SWITCHBOARD_ADMIN_TOKEN is short")),
    )
    .await;
    use std::os::unix::fs::PermissionsExt as _;
    for file in ["switchboard.db", "switchboard.db-wal", "switchboard.db-shm"] {
        let mode = std::fs::metadata(server.data_dir().join(file))
            .unwrap_or_else(|error| panic!("{file}: {error}"))
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{file}");
    }
}
