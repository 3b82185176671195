//! The scripted LLM: an OpenAI-compatible chat-completions server that answers from a script and
//! records every request it was sent. The only stand-in the tests use.

use std::{
    collections::VecDeque,
    sync::{Arc, Mutex, PoisonError},
    time::Instant,
};

use axum::{
    Json, Router,
    extract::State,
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::post,
};
use serde_json::{Value, json};
use tokio::{net::TcpListener, sync::Notify};

/// One scripted answer.
#[derive(Debug, Clone)]
pub enum Reply {
    /// A final answer (no tool calls).
    Text {
        content: String,
        usage: Option<Value>,
    },
    /// Tool calls: `(id, name, arguments text)`; an empty id is left out of the answer.
    ToolCalls {
        content: String,
        calls: Vec<(String, String, String)>,
        usage: Option<Value>,
    },
    /// An HTTP error, with an optional `Retry-After`.
    Status {
        status: u16,
        body: Value,
        retry_after: Option<String>,
    },
    /// A raw body, as a non-conforming server might send it.
    Raw(Value),
}

impl Reply {
    pub fn text(content: &str) -> Self {
        Self::Text {
            content: content.into(),
            usage: Some(usage(10, 5)),
        }
    }

    pub fn call(name: &str, arguments: Value) -> Self {
        Self::calls(&[(name, arguments)])
    }

    /// Several calls in one message, with ids `call_0`, `call_1`…
    pub fn calls(calls: &[(&str, Value)]) -> Self {
        Self::ToolCalls {
            content: String::new(),
            calls: calls
                .iter()
                .enumerate()
                .map(|(index, (name, arguments))| {
                    (
                        format!("call_{index}"),
                        name.to_string(),
                        arguments.to_string(),
                    )
                })
                .collect(),
            usage: Some(usage(20, 10)),
        }
    }

    /// A call, with id `call_raw`, whose arguments text is given as is (it may be invalid JSON).
    pub fn call_raw(name: &str, arguments: &str) -> Self {
        Self::ToolCalls {
            content: String::new(),
            calls: vec![("call_raw".into(), name.into(), arguments.into())],
            usage: Some(usage(20, 10)),
        }
    }

    pub fn status(status: u16) -> Self {
        Self::Status {
            status,
            body: json!({"error": {"message": format!("scripted status {status}")}}),
            retry_after: None,
        }
    }
}

/// A `usage` object with a consistent total.
pub fn usage(prompt: u64, completion: u64) -> Value {
    json!({"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion})
}

/// One request the LLM received.
#[derive(Debug, Clone)]
pub struct LlmRequest {
    pub body: Value,
    pub authorization: Option<String>,
    /// The W3C `traceparent` header, if one came.
    pub traceparent: Option<String>,
    pub at: Instant,
}

impl LlmRequest {
    /// The `messages` of the request.
    pub fn messages(&self) -> Vec<Value> {
        self.body["messages"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// The tool names offered.
    pub fn tool_names(&self) -> Vec<String> {
        self.body["tools"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|tool| tool["function"]["name"].as_str().map(str::to_owned))
            .collect()
    }

    /// The `function` of the tool offered under `name`.
    pub fn tool(&self, name: &str) -> Option<Value> {
        self.body["tools"]
            .as_array()?
            .iter()
            .find(|tool| tool["function"]["name"] == name)
            .map(|tool| tool["function"].clone())
    }

    /// The `content` of the `tool` message answering `call_id`.
    pub fn tool_message(&self, call_id: &str) -> Option<String> {
        self.messages()
            .into_iter()
            .find(|m| m["role"] == "tool" && m["tool_call_id"] == call_id)
            .and_then(|m| m["content"].as_str().map(str::to_owned))
    }
}

#[derive(Default)]
struct Shared {
    script: Mutex<VecDeque<Reply>>,
    requests: Mutex<Vec<LlmRequest>>,
    received: Notify,
}

/// A running scripted LLM; stops when dropped.
#[derive(Debug)]
pub struct ScriptedLlm {
    port: u16,
    shared: Arc<Shared>,
    server: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Shared")
    }
}

impl ScriptedLlm {
    pub async fn start(script: Vec<Reply>) -> Self {
        let shared = Arc::new(Shared {
            script: Mutex::new(script.into()),
            ..Shared::default()
        });
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let app = Router::new()
            .route("/v1/chat/completions", post(complete))
            .with_state(shared.clone());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            port,
            shared,
            server,
        }
    }

    /// The base URL, `http://127.0.0.1:port/v1`.
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}/v1", self.port)
    }

    pub fn requests(&self) -> Vec<LlmRequest> {
        self.shared
            .requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Waits until `count` requests have arrived.
    pub async fn wait_for_requests(&self, count: usize) {
        loop {
            let notified = self.shared.received.notified();
            if self.requests().len() >= count {
                return;
            }
            notified.await;
        }
    }
}

impl Drop for ScriptedLlm {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn complete(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let authorization = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    shared
        .requests
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(LlmRequest {
            body,
            authorization,
            traceparent: headers
                .get("traceparent")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
            at: Instant::now(),
        });
    shared.received.notify_waiters();
    let reply = shared
        .script
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .pop_front();
    let Some(reply) = reply else {
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(json!({"error": {"message": "the scripted LLM has no more replies"}})),
        )
            .into_response();
    };
    let message = |content: &str, tool_calls: Option<Value>| {
        let mut message = json!({"role": "assistant", "content": content});
        if let Some(calls) = tool_calls {
            message["tool_calls"] = calls;
        }
        message
    };
    let answer = |message: Value, usage: Option<Value>| {
        let mut body = json!({"id": "chatcmpl-test", "object": "chat.completion",
            "choices": [{"index": 0, "message": message, "finish_reason": "stop"}]});
        if let Some(usage) = usage {
            body["usage"] = usage;
        }
        Json(body).into_response()
    };
    match reply {
        Reply::Text { content, usage } => answer(message(&content, None), usage),
        Reply::ToolCalls {
            content,
            calls,
            usage,
        } => {
            let calls: Vec<Value> = calls
                .into_iter()
                .map(|(id, name, arguments)| {
                    let mut call = json!({"type": "function", "function": {"name": name, "arguments": arguments}});
                    if !id.is_empty() {
                        call["id"] = json!(id);
                    }
                    call
                })
                .collect();
            answer(message(&content, Some(Value::Array(calls))), usage)
        }
        Reply::Status {
            status,
            body,
            retry_after,
        } => {
            let mut response = (
                StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                Json(body),
            )
                .into_response();
            if let Some(value) = retry_after
                && let Ok(value) = value.parse()
            {
                response.headers_mut().insert("retry-after", value);
            }
            response
        }
        Reply::Raw(body) => Json(body).into_response(),
    }
}
