//! The connection layer against real MCP servers: server-everything (npm) and the Python `mcp` SDK
//! fixture, over stdio, Streamable HTTP and legacy SSE.

use std::{sync::Arc, time::Duration};

use serde_json::{Value, json};
use switchboard_mcp::{
    CallContext, Delivery, HttpTransport, RequestOptions, TransportKind, Upstream, UpstreamAuth,
    UpstreamConfig, UpstreamError, model::CallToolResult,
};
use switchboard_test_support::{self as support, Fault, PeerServer, RecordingProxy};
use tokio_util::sync::CancellationToken;

mod per_peer;
mod rules;

/// Which server, over which transport.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Peer {
    EverythingStdio,
    EverythingHttp,
    EverythingSse,
    PythonStdio,
    PythonHttp,
    PythonSse,
}

impl Peer {
    fn is_python(self) -> bool {
        matches!(self, Self::PythonStdio | Self::PythonHttp | Self::PythonSse)
    }
}

/// A connected upstream and the server process behind it (for HTTP peers).
struct Target {
    upstream: Upstream,
    server: Option<PeerServer>,
}

fn config_for(peer: Peer, server: Option<&PeerServer>) -> UpstreamConfig {
    let (command, args) = match peer {
        Peer::EverythingStdio => support::everything_stdio_command(),
        Peer::PythonStdio => support::python_stdio_command(),
        _ => {
            let server = server.expect("HTTP peers have a server");
            let path = if matches!(peer, Peer::EverythingSse | Peer::PythonSse) {
                "/sse"
            } else {
                "/mcp"
            };
            return UpstreamConfig::http(format!("{peer:?}"), server.url(path));
        }
    };
    UpstreamConfig::stdio(format!("{peer:?}"), command, args)
}

async fn start(peer: Peer) -> Target {
    start_with(peer, |c| c).await
}

async fn start_with(peer: Peer, adjust: impl FnOnce(UpstreamConfig) -> UpstreamConfig) -> Target {
    let server = match peer {
        Peer::EverythingHttp => Some(support::start_everything("streamableHttp").await),
        Peer::EverythingSse => Some(support::start_everything("sse").await),
        Peer::PythonHttp => Some(support::start_python("streamable-http").await),
        Peer::PythonSse => Some(support::start_python("sse").await),
        Peer::EverythingStdio | Peer::PythonStdio => None,
    }
    .transpose()
    .expect("peer server starts");
    let config = adjust(config_for(peer, server.as_ref()));
    let upstream = Upstream::connect(config).await.expect("connects");
    Target { upstream, server }
}

fn args(value: Value) -> Option<serde_json::Map<String, Value>> {
    value.as_object().cloned()
}

fn text_of(result: &CallToolResult) -> String {
    support::content_text(&serde_json::to_value(&result.content).expect("serializes"))
}

/// The sum tool, its arguments and the answer's text for 2 + 3.
async fn call_sum(target: &Target, peer: Peer) -> String {
    let (tool, arguments) = if peer.is_python() {
        ("add", json!({"a": 2, "b": 3}))
    } else {
        ("get-sum", json!({"a": 2, "b": 3}))
    };
    let result = target
        .upstream
        .call_tool(tool, args(arguments), RequestOptions::default())
        .await
        .expect("the sum call succeeds");
    assert_ne!(result.is_error, Some(true), "{result:?}");
    text_of(&result)
}

fn slow_call(
    peer: Peer,
    seconds: f64,
    label: &str,
) -> (&'static str, Option<serde_json::Map<String, Value>>) {
    if peer.is_python() {
        ("slow", args(json!({"seconds": seconds, "label": label})))
    } else {
        (
            "trigger-long-running-operation",
            // At least one step a second, so that a test waiting for the first progress report
            // waits a second at most.
            args(json!({"duration": seconds, "steps": seconds.max(5.0).ceil()})),
        )
    }
}

/// The Python fixture records which `slow` calls were cancelled while running.
/// Waits until the Python fixture's `list_tool` (`cancelled_calls`, `started_calls`) names `label`.
async fn wait_until_listed(upstream: &Upstream, list_tool: &str, label: &str) {
    let what = format!("`{list_tool}` to name {label}");
    switchboard_test_support::eventually(what, Duration::from_millis(50), || async {
        let result = upstream
            .call_tool(list_tool, None, RequestOptions::default())
            .await
            .expect("calls");
        text_of(&result).split(',').any(|l| l == label)
    })
    .await;
}

async fn wait_until_cancel_recorded(upstream: &Upstream, label: &str) {
    wait_until_listed(upstream, "cancelled_calls", label).await;
}
