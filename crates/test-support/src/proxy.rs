//! A reverse proxy that records every request it forwards, so tests can assert what a client sent
//! on the wire (how many `initialize`s, whether `notifications/cancelled` went out) and can end an
//! upstream session behind the client's back.

use std::sync::{Arc, Mutex};

use axum::{
    body::{Body, to_bytes},
    extract::{Request, State},
    response::Response,
};
use futures::TryStreamExt;
use tokio::{net::TcpListener, task::JoinHandle};

/// A failure the proxy injects into the next `tools/call` it sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Forward the call, let the upstream run it, then break the response: the client cannot tell
    /// whether the call ran.
    BreakAfterForwarding,
    /// Answer with this HTTP status without forwarding.
    Status(u16),
}

/// One request seen by the proxy.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    /// The JSON-RPC method, if the body was a JSON-RPC message with one.
    pub rpc_method: Option<String>,
    pub session_id: Option<String>,
    /// The `Authorization` header, to check whose token reached the server.
    pub authorization: Option<String>,
    /// The request's `_meta.progressToken`, to check whose token reached the server.
    pub progress_token: Option<serde_json::Value>,
}

#[derive(Debug)]
pub struct RecordingProxy {
    /// The proxy's own address: `http://127.0.0.1:PORT`.
    pub base_url: String,
    state: Arc<ProxyState>,
    task: JoinHandle<()>,
}

#[derive(Debug)]
struct ProxyState {
    target: String,
    client: reqwest::Client,
    requests: Mutex<Vec<RecordedRequest>>,
    /// Faults to inject, one per `tools/call`, in order.
    faults: Mutex<std::collections::VecDeque<Fault>>,
    /// Headers added to every forwarded request (a client that cannot send them itself).
    added_headers: Vec<(String, String)>,
}

impl RecordingProxy {
    /// Forwards `http://127.0.0.1:PORT/<path>` to `target/<path>`.
    pub async fn start(target: &str) -> anyhow::Result<Self> {
        Self::start_with_headers(target, Vec::new()).await
    }

    /// [`Self::start`], adding `headers` to every forwarded request.
    pub async fn start_with_headers(
        target: &str,
        added_headers: Vec<(String, String)>,
    ) -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let base_url = format!("http://{}", listener.local_addr()?);
        let state = Arc::new(ProxyState {
            target: target.trim_end_matches('/').to_string(),
            client: crate::http_client(),
            requests: Mutex::new(Vec::new()),
            faults: Mutex::new(Default::default()),
            added_headers,
        });
        let app = axum::Router::new()
            .fallback(forward)
            .with_state(state.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self {
            base_url,
            state,
            task,
        })
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.state.requests.lock().expect("not poisoned").clone()
    }

    /// Injects `fault` into the next `tools/call` that has none queued before it.
    pub fn inject(&self, fault: Fault) {
        self.state
            .faults
            .lock()
            .expect("not poisoned")
            .push_back(fault);
    }

    /// How many recorded requests carried this JSON-RPC method.
    pub fn count(&self, rpc_method: &str) -> usize {
        self.requests()
            .iter()
            .filter(|r| r.rpc_method.as_deref() == Some(rpc_method))
            .count()
    }

    /// The most recent `Mcp-Session-Id` a client sent.
    pub fn last_session_id(&self) -> Option<String> {
        self.requests()
            .iter()
            .rev()
            .find_map(|r| r.session_id.clone())
    }
}

impl Drop for RecordingProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn forward(State(state): State<Arc<ProxyState>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = to_bytes(body, 16 << 20).await.unwrap_or_default();
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
    let session_id = parts
        .headers
        .get("mcp-session-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let rpc_method = json
        .get("method")
        .and_then(|m| m.as_str())
        .map(str::to_owned);
    let authorization = parts
        .headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let fault = if rpc_method.as_deref() == Some("tools/call") {
        state.faults.lock().expect("not poisoned").pop_front()
    } else {
        None
    };
    state
        .requests
        .lock()
        .expect("not poisoned")
        .push(RecordedRequest {
            rpc_method,
            session_id,
            authorization,
            progress_token: json.pointer("/params/_meta/progressToken").cloned(),
        });

    if let Some(Fault::Status(status)) = fault {
        return Response::builder()
            .status(status)
            .header("content-type", "text/plain")
            .body(Body::from("injected failure"))
            .expect("valid response");
    }
    let path = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let mut outgoing = state
        .client
        .request(parts.method.clone(), format!("{}{path}", state.target));
    for (name, value) in &parts.headers {
        if name != http::header::HOST && name != http::header::CONTENT_LENGTH {
            outgoing = outgoing.header(name, value);
        }
    }
    for (name, value) in &state.added_headers {
        outgoing = outgoing.header(name, value);
    }
    let upstream = match outgoing.body(body).send().await {
        Ok(response) => response,
        Err(_) => {
            return Response::builder()
                .status(502)
                .body(Body::empty())
                .expect("valid response");
        }
    };
    if fault == Some(Fault::BreakAfterForwarding) {
        // Let the upstream finish the call, then fail the body mid-way.
        let _ = upstream.bytes().await;
        let broken = futures::stream::once(async {
            Err::<bytes::Bytes, _>(std::io::Error::other("injected break"))
        });
        return Response::builder()
            .status(200)
            .header("content-type", "text/event-stream")
            .body(Body::from_stream(broken))
            .expect("valid response");
    }
    let mut response = Response::builder().status(upstream.status());
    for (name, value) in upstream.headers() {
        if name != http::header::CONTENT_LENGTH && name != http::header::TRANSFER_ENCODING {
            response = response.header(name, value);
        }
    }
    let stream = upstream.bytes_stream().map_err(std::io::Error::other);
    response
        .body(Body::from_stream(stream))
        .expect("valid response")
}
