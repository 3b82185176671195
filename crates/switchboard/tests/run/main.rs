//! The agent runner end to end: `switchboard serve` as a real process, `POST /run` over real HTTP,
//! tools from real MCP servers (server-everything over stdio, the Python SDK over HTTP), and the
//! scripted LLM, which records what the model was sent.

use std::time::Duration;

mod api;
mod command;
#[path = "../common/mod.rs"]
mod common;
mod lifecycle;

use common::{await_tool_text, binary, serve};
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
