//! Helpers shared by the test files of the binary: the binary itself, a running server, and the
//! clients that talk to it.
// Each test file uses its own share of these.
#![allow(dead_code)]

use std::{path::Path, time::Duration};

use reqwest::Method;
use serde_json::{Value, json};
use switchboard_mcp::{Endpoint, HttpConfig, Upstream, UpstreamConfig};
use switchboard_test_support::{ADMIN_TOKEN, Switchboard, peers_dir};

pub fn binary() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_switchboard"))
}

pub async fn serve(args: &[&str]) -> Switchboard {
    Switchboard::start(binary(), args, &[])
        .await
        .expect("switchboard serve starts")
}

/// Seed 004's `add_remote_mcp` body.
pub fn remote_body(name: &str, url: &str, alias: Option<&str>) -> Value {
    let mut body = json!({"manifest": {"name": name, "shortDescription": "", "runtime": "remote",
        "remoteConfig": {"url": url}}});
    if let Some(alias) = alias {
        body["alias"] = json!(alias);
    }
    body
}

/// Registers a server, which must succeed; returns its record.
pub async fn register(server: &Switchboard, body: &Value) -> Value {
    let (status, created) = server
        .send_json(Method::POST, "/api/mcp-servers", Some(body))
        .await
        .expect("answers");
    assert_eq!(status, 201, "{created}");
    created
}

/// An MCP client of ours on one of the server's MCP endpoints, with the admin token.
pub async fn mcp_client(server: &Switchboard, path: &str) -> Upstream {
    mcp_client_with(server, path, ADMIN_TOKEN).await
}

/// [`mcp_client`] with another bearer token.
pub async fn mcp_client_with(server: &Switchboard, path: &str, token: &str) -> Upstream {
    let mut http = HttpConfig::new(server.url(path));
    http.headers
        .push(("Authorization".into(), format!("Bearer {token}")));
    Upstream::connect(UpstreamConfig::new("client", Endpoint::Http(http)))
        .await
        .expect("connects")
}

/// Runs a client script from `peers/clients` and parses the JSON line it prints.
pub async fn run_client(program: &Path, script: &str, args: &[&str]) -> Value {
    let output = tokio::process::Command::new(program)
        .arg(peers_dir().join("clients").join(script))
        .args(args)
        .current_dir(peers_dir())
        .output()
        .await
        .expect("the client runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{script} failed: {stdout}\n{stderr}"
    );
    // The Python SDK logs this when a session's DELETE is answered other than 200 or 204.
    assert!(
        !stderr.contains("Session termination failed"),
        "{script}: {stderr}"
    );
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .expect("a JSON line");
    serde_json::from_str(line).expect("JSON")
}

/// Calls a fixture tool until its text contains `wanted` (the fixture records what reached it;
/// there is no event to await from outside).
pub async fn await_tool_text(upstream: &Upstream, tool: &str, wanted: &str) {
    let what = format!("`{tool}` to name {wanted}");
    switchboard_test_support::eventually(what, Duration::from_millis(50), || async {
        let result = upstream
            .call_tool(tool, None, Default::default())
            .await
            .expect("calls");
        let text = switchboard_test_support::content_text(
            &serde_json::to_value(&result.content).expect("json"),
        );
        text.contains(wanted)
    })
    .await;
}
