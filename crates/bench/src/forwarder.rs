//! The floor under any proxy built as Switchboard is: a bare forwarder, run as a process of its
//! own, that sends every request on to the upstream and streams the answer back. It has
//! Switchboard's HTTP stack (axum on hyper, and the raw path's client with its sockets) and
//! nothing else: no parsing, governance, audit, metrics or logs. Its CPU per call is what the two
//! HTTP/1 exchanges of a proxied call cost on this machine.

use axum::{
    body::Body,
    extract::{Request, State},
    http::StatusCode,
    response::{IntoResponse, Response},
    serve::ListenerExt as _,
};
use hyper_util::{client::legacy::Client, rt::TokioExecutor};
use switchboard_mcp::raw_client::QuickAckConnector;

type Forwarding = Client<QuickAckConnector, Body>;

#[derive(Clone)]
struct Target {
    client: Forwarding,
    upstream: axum::http::Uri,
}

/// Serves on a free loopback port, printing its URL first, until killed.
pub async fn serve(upstream: &str) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    println!("http://{}/mcp", listener.local_addr()?);
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    let target = Target {
        client: Client::builder(TokioExecutor::new())
            .pool_timer(hyper_util::rt::TokioTimer::new())
            .build(QuickAckConnector::new()),
        upstream: upstream.parse()?,
    };
    let app = axum::Router::new().fallback(forward).with_state(target);
    axum::serve(listener, app).await?;
    Ok(())
}

async fn forward(State(target): State<Target>, mut request: Request) -> Response {
    *request.uri_mut() = target.upstream.clone();
    request.headers_mut().remove(axum::http::header::HOST);
    match target.client.request(request).await {
        Ok(answer) => answer.map(Body::new),
        Err(_) => StatusCode::BAD_GATEWAY.into_response(),
    }
}
