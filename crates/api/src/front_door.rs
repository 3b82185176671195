//! The accept loop, and the first split of every request.
//!
//! Connections are served by hyper's server, as `axum::serve` serves them, but a request
//! meets axum's router only when it needs it. A `POST` on `/mcp` or `/mcp/{server}` that holds
//! the admin token goes straight to the fast lane (this is the only place it is offered), and on
//! to the router only when the fast lane declines it. A fast call so skips axum's
//! routing, its middleware and the futures each of them boxes per request, and hyper's body is
//! read as it is, without a box around it. Written here rather than taken from `axum::serve`,
//! which has no hook before its router.

use std::{
    convert::Infallible, future::Future, net::SocketAddr, pin::pin, sync::Arc, time::Duration,
};

use axum::{
    Router,
    body::Body,
    extract::ConnectInfo,
    http::{Method, Request, Response, Uri},
};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::{net::TcpListener, sync::watch};
use tower_service::Service as _;

use crate::{AppState, connection_threads::ConnectionThreads};

/// How long to wait after the listener fails for want of file descriptors or memory.
const ACCEPT_BACKOFF: Duration = Duration::from_secs(1);

/// What every connection's requests need.
struct FrontDoor {
    /// The fast lane's way to the registry, the sessions and the upstreams.
    state: AppState,
    /// Everything else: the whole API, the MCP endpoints' rmcp services included.
    router: Router,
}

/// Marks a request the front door has already observed (its span, its count), so that the
/// router's middleware does not do it again.
#[derive(Clone, Copy)]
pub(crate) struct Observed;

/// Accepts connections until `shutdown` resolves, then closes idle connections, lets each busy
/// one finish its request, and returns once every connection is closed.
pub(crate) async fn run(
    listener: TcpListener,
    threads: Arc<ConnectionThreads>,
    state: AppState,
    router: Router,
    shutdown: impl Future<Output = ()> + Send,
) {
    let door = Arc::new(FrontDoor { state, router });
    // Dropped at shutdown, which every connection hears.
    let (stop_tx, stop_rx) = watch::channel(());
    // Every connection holds a receiver; `closed` resolves when the last one is gone.
    let (open_tx, open_rx) = watch::channel(());
    let mut shutdown = pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    if !is_connection_error(&error) {
                        tracing::error!(%error, "accepting a connection failed; retrying shortly");
                        tokio::time::sleep(ACCEPT_BACKOFF).await;
                    }
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // Small answers must not wait on Nagle's algorithm.
        let _ = tcp.set_nodelay(true);
        let door = door.clone();
        let mut stop = stop_rx.clone();
        let open = open_rx.clone();
        threads.serve(tcp, move |tcp| async move {
            let service = hyper::service::service_fn(move |request| {
                let door = door.clone();
                async move { Ok::<_, Infallible>(door.handle(peer, request).await) }
            });
            // HTTP/1, and HTTP/2 for a client that speaks it from the first byte, as with
            // `axum::serve`.
            let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            let mut connection = pin!(builder.serve_connection(TokioIo::new(tcp), service));
            tokio::select! {
                _ = connection.as_mut() => {}
                _ = stop.changed() => {
                    connection.as_mut().graceful_shutdown();
                    let _ = connection.await;
                }
            }
            drop(open);
        });
    }
    drop(listener);
    drop(stop_tx);
    drop(open_rx);
    open_tx.closed().await;
}

/// Errors of one connection, which leave the listener fine.
fn is_connection_error(error: &std::io::Error) -> bool {
    matches!(
        error.kind(),
        std::io::ErrorKind::ConnectionRefused
            | std::io::ErrorKind::ConnectionAborted
            | std::io::ErrorKind::ConnectionReset
    )
}

impl FrontDoor {
    async fn handle(&self, peer: SocketAddr, request: Request<Incoming>) -> Response<Body> {
        // A clone of the URI shares its bytes; the endpoint borrows it while the request moves.
        let uri = request.uri().clone();
        let Some(endpoint) = fast_candidate(request.method(), &uri) else {
            return self.route(peer, request).await;
        };
        let route = match endpoint {
            Some(_) => "/mcp/{server}",
            None => "/mcp",
        };
        let span = crate::request_span(request.method(), route, request.headers());
        let response =
            tracing::Instrument::instrument(self.offer(peer, endpoint, request), span.clone())
                .await;
        crate::record_request(&self.state, &span, route.into(), response.status());
        response
    }

    /// Offers `request` to the fast lane, and routes it when the lane declines it. Only a caller
    /// with the admin token is offered: refusing anyone else, and auditing it, is the router's.
    async fn offer(
        &self,
        peer: SocketAddr,
        endpoint: Option<&str>,
        request: Request<Incoming>,
    ) -> Response<Body> {
        // A browser's request with an `Origin` is the router's: its MCP guard judges it.
        let fast = crate::auth::holds_admin_token(request.headers(), &self.state)
            && !request.headers().contains_key(axum::http::header::ORIGIN);
        let mut request = if fast {
            match crate::mcp::offer_fast_lane(&self.state, endpoint, request).await {
                Ok(response) => return response,
                Err(declined) => declined,
            }
        } else {
            request.map(Body::new)
        };
        request.extensions_mut().insert(Observed);
        self.route(peer, request).await
    }

    /// Hands `request` to the router, as `axum::serve` would (the caller's address included,
    /// for the admin API's rate limit). Boxed: the router's future is large, and only calls the
    /// fast lane takes should be small.
    async fn route<B>(&self, peer: SocketAddr, mut request: Request<B>) -> Response<Body>
    where
        B: axum::body::HttpBody<Data = axum::body::Bytes> + Send + 'static,
        B::Error: Into<axum::BoxError>,
    {
        request.extensions_mut().insert(ConnectInfo(peer));
        let mut router = self.router.clone();
        match Box::pin(router.call(request)).await {
            Ok(response) => response,
            Err(never) => match never {},
        }
    }
}

/// The endpoint of a request the fast lane may take: `Some(None)` for `/mcp`,
/// `Some(Some(server))` for `/mcp/{server}` (not `/mcp/admin`, not an escaped name, which the
/// router decodes), and `None` for anything else.
fn fast_candidate<'a>(method: &Method, uri: &'a Uri) -> Option<Option<&'a str>> {
    if method != Method::POST {
        return None;
    }
    let path = uri.path();
    if path == "/mcp" {
        return Some(None);
    }
    let server = path.strip_prefix("/mcp/")?;
    let plain = !server.is_empty() && server != "admin" && !server.contains(['/', '%']);
    plain.then_some(Some(server))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn post(path: &str) -> Option<Option<String>> {
        let uri: Uri = path.parse().expect("uri");
        fast_candidate(&Method::POST, &uri).map(|server| server.map(str::to_owned))
    }

    #[test]
    fn only_posts_on_the_proxy_endpoints_are_fast_candidates() {
        assert_eq!(post("/mcp"), Some(None));
        assert_eq!(post("/mcp/echo"), Some(Some("echo".into())));
        assert_eq!(post("/mcp/echo?x=1"), Some(Some("echo".into())));
        for path in [
            "/mcp/admin",
            "/mcp/",
            "/mcp/echo/message",
            "/mcp/ec%68o",
            "/run",
            "/mcpx",
        ] {
            assert_eq!(post(path), None, "{path}");
        }
        let uri: Uri = "/mcp/echo".parse().expect("uri");
        assert_eq!(fast_candidate(&Method::GET, &uri), None);
    }
}
