//! An in-process MCP server on rmcp's Streamable HTTP service, for benchmarks that must measure
//! Switchboard rather than a peer's runtime.

use rmcp::{
    ServerHandler,
    handler::server::wrapper::Parameters,
    schemars, tool, tool_handler, tool_router,
    transport::streamable_http_server::{
        StreamableHttpServerConfig, StreamableHttpService, session::local::LocalSessionManager,
    },
};
use std::sync::{
    Arc,
    atomic::{AtomicUsize, Ordering},
};

use axum::serve::ListenerExt as _;
use tokio_util::sync::CancellationToken;

#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
pub struct EchoRequest {
    /// The text to send back.
    pub message: String,
}

/// Answers `echo` at once.
#[derive(Debug, Clone)]
pub struct EchoServer;

#[tool_router]
impl EchoServer {
    #[tool(description = "Returns the message it is given")]
    fn echo(&self, Parameters(EchoRequest { message }): Parameters<EchoRequest>) -> String {
        message
    }
}

#[tool_handler]
impl ServerHandler for EchoServer {}

/// Serves [`EchoServer`] on this process's stdin and stdout until the client goes: a stdio
/// upstream for benchmarks.
pub async fn serve_echo_over_stdio() -> anyhow::Result<()> {
    let running = rmcp::serve_server(EchoServer, (tokio::io::stdin(), tokio::io::stdout())).await?;
    running.waiting().await?;
    Ok(())
}

/// A running in-process server; stops when dropped.
#[derive(Debug)]
pub struct InProcessServer {
    /// `http://127.0.0.1:PORT/mcp`.
    pub url: String,
    stop: CancellationToken,
    /// TCP connections accepted so far: a client that reuses its connections opens few.
    accepted: Arc<AtomicUsize>,
}

impl InProcessServer {
    pub async fn start() -> anyhow::Result<Self> {
        let stop = CancellationToken::new();
        let service: StreamableHttpService<EchoServer, LocalSessionManager> =
            StreamableHttpService::new(
                || Ok(EchoServer),
                Default::default(),
                StreamableHttpServerConfig::default().with_cancellation_token(stop.child_token()),
            );
        let router = axum::Router::new().nest_service("/mcp", service);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}/mcp", listener.local_addr()?);
        let accepted = Arc::new(AtomicUsize::new(0));
        let counter = accepted.clone();
        let listener = listener.tap_io(move |_| {
            counter.fetch_add(1, Ordering::Relaxed);
        });
        let shutdown = stop.clone();
        tokio::spawn(async move {
            let _ = axum::serve(listener, router)
                .with_graceful_shutdown(async move { shutdown.cancelled().await })
                .await;
        });
        Ok(Self {
            url,
            stop,
            accepted,
        })
    }

    /// How many TCP connections the server has accepted.
    pub fn connections_accepted(&self) -> usize {
        self.accepted.load(Ordering::Relaxed)
    }
}

impl Drop for InProcessServer {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}
