//! The HTTP client of the raw path: HTTP/1 connections that the calling task drives itself,
//! over sockets that acknowledge what they read at once.
//!
//! Why not reqwest here: its connector hides the socket, and this one needs `TCP_QUICKACK`. An
//! upstream that leaves Nagle's algorithm on holds the end of an answered event stream until the
//! answer is acknowledged, and Linux delays that acknowledgement by up to 40 ms on a
//! request-response connection. Until the end arrives the connection cannot go back to the pool,
//! so under load nearly every call opened a new one (connecting took a tenth of the gateway's
//! CPU), and at concurrency 1 every call waited for a connect.
//!
//! Why not hyper-util's pooled client either: it runs each connection on a task of its own, so
//! every call hands its request to that task and every part of the answer back, waking a thread
//! each way (a futex call and a context switch, tens of µs on a VM). Here the call's own task
//! polls the connection (hyper's `client::conn` API) while it waits for the answer and reads its
//! body, and the pool holds connections that nobody polls until the next call takes one.

use std::{
    collections::HashMap,
    future::Future,
    pin::Pin,
    sync::{Arc, Mutex, PoisonError},
    task::{Context, Poll},
    time::{Duration, Instant},
};

use bytes::Bytes;
use http_body_util::Full;
use hyper::client::conn::http1;

mod connector;

pub(crate) use connector::goes_direct;
use connector::{Io, connector};
pub use connector::{QuickAckConnector, QuickAckStream};

/// Why a raw request got no answer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RawHttpError {
    /// No connection could be opened: nothing was sent.
    #[error("connecting to the upstream failed")]
    Connect(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// A new connection closed before the request could be sent on it.
    #[error("the connection closed before the request was sent")]
    ClosedBeforeSending,
    /// The connection closed before the answer was complete; the request may have run.
    #[error("the connection closed before the answer was complete")]
    ClosedEarly,
    /// The exchange failed on an open connection; the request may have been sent.
    #[error("the HTTP exchange failed")]
    Exchange(#[source] hyper::Error),
    /// The answer grew past the cap; what arrived was dropped and the connection closed.
    #[error("the answer exceeded the cap of {0} bytes")]
    TooLarge(usize),
}

impl RawHttpError {
    pub(crate) fn not_sent(&self) -> bool {
        matches!(self, Self::Connect(_) | Self::ClosedBeforeSending)
    }
}

/// How long a connection may wait in the pool: the legacy client's default.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(90);
/// Idle connections kept per upstream; a burst's extra connections are closed as they come back.
const POOL_IDLE_PER_UPSTREAM: usize = 128;

/// An upstream, as connections to it are pooled.
type PoolKey = (http::uri::Scheme, http::uri::Authority);

/// An open HTTP/1 connection: the handle that sends on it and the state machine that does the
/// I/O, which whoever uses the connection polls.
struct PooledConnection {
    key: PoolKey,
    sender: http1::SendRequest<Full<Bytes>>,
    driver: http1::Connection<Io, Full<Bytes>>,
    /// The driver finished (the connection closed or failed); it must not be polled again.
    finished: bool,
    /// When the connection went back to the pool.
    idle_since: Instant,
}

impl PooledConnection {
    /// Does the connection's pending I/O.
    fn drive(&mut self, cx: &mut Context<'_>) {
        if !self.finished && self.driver.poll_without_shutdown(cx).is_ready() {
            self.finished = true;
        }
    }
}

/// The raw path's HTTP client: the idle connections of every upstream it called. Cheap to
/// clone; clones share the connections. The gateway owns one for all its upstreams
/// (`UpstreamConfig::raw_client`); a config made anywhere else has one of its own.
#[derive(Clone, Default)]
pub struct RawClient {
    pool: Arc<Mutex<Pool>>,
}

impl std::fmt::Debug for RawClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawClient").finish_non_exhaustive()
    }
}

/// Idle connections by upstream, newest last. Boxed, like the one an answer's body holds: the
/// connection's state (its socket, TLS session and buffers) is nearly 2 KiB, which every move of
/// a response or a future holding it would copy.
#[derive(Default)]
struct Pool {
    #[expect(
        clippy::vec_box,
        reason = "a connection moves between the pool and an answer's body as a box, not as its 1.8 KiB"
    )]
    idle: HashMap<PoolKey, Vec<Box<PooledConnection>>>,
    /// When connections that waited too long were last closed, for every upstream: nothing polls
    /// an idle connection, so without this one to an upstream no longer called would stay open.
    swept: Option<Instant>,
}

impl Pool {
    /// Closes the connections that, at `now`, have waited too long or that the upstream closed.
    fn close_stale(&mut self, now: Instant) {
        self.swept = Some(now);
        self.idle.retain(|_, idle| {
            idle.retain(|connection| fresh(connection, now));
            !idle.is_empty()
        });
    }

    /// The newest idle connection to `key` that has not waited too long.
    fn checkout(&mut self, key: &PoolKey, now: Instant) -> Option<Box<PooledConnection>> {
        let idle = self.idle.get_mut(key)?;
        while let Some(connection) = idle.pop() {
            if fresh(&connection, now) {
                return Some(connection);
            }
        }
        None
    }

    /// Puts a connection whose exchange is complete back.
    fn check_in(&mut self, mut connection: Box<PooledConnection>, now: Instant) {
        if connection.finished || connection.sender.is_closed() {
            return;
        }
        connection.idle_since = now;
        if self
            .swept
            .is_none_or(|swept| now.saturating_duration_since(swept) >= POOL_SWEEP_INTERVAL)
        {
            self.close_stale(now);
        }
        let idle = self.idle.entry(connection.key.clone()).or_default();
        if idle.len() < POOL_IDLE_PER_UPSTREAM {
            idle.push(connection);
        }
    }

    /// Idle connections, over every upstream.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.idle.values().map(Vec::len).sum()
    }
}

/// How often the pool closes the connections that waited too long, when calls come back.
const POOL_SWEEP_INTERVAL: Duration = Duration::from_secs(30);

fn fresh(connection: &PooledConnection, now: Instant) -> bool {
    now.saturating_duration_since(connection.idle_since) < POOL_IDLE_TIMEOUT
        && !connection.sender.is_closed()
}

impl RawClient {
    fn pool(&self) -> std::sync::MutexGuard<'_, Pool> {
        self.pool.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Closes the idle connections that waited too long. Calls that end do this too, at most
    /// every 30 s; a timer calls this so that connections to upstreams no longer called close
    /// as well.
    pub fn close_stale_connections(&self) {
        self.pool().close_stale(Instant::now());
    }

    /// Sends one raw request, a POST of `body` to `target` with `headers`, on a pooled
    /// connection or a new one. A pooled connection found closed before the request went out is
    /// replaced.
    pub(crate) async fn post(
        &self,
        target: &Target,
        mut headers: http::HeaderMap,
        body: String,
        max_answer_bytes: usize,
    ) -> Result<http::Response<AnswerBody>, RawHttpError> {
        headers.insert(http::header::HOST, target.host.clone());
        let mut request = http::Request::new(Full::new(Bytes::from(body)));
        *request.method_mut() = http::Method::POST;
        *request.uri_mut() = target.origin.clone();
        *request.headers_mut() = headers;
        loop {
            let pooled = self.pool().checkout(&target.key, Instant::now());
            let (mut connection, pooled) = match pooled {
                Some(connection) => (connection, true),
                // Boxed: rare, and its future holds a socket and a TLS session by value.
                None => (
                    Box::pin(connect(&target.url, target.key.clone())).await?,
                    false,
                ),
            };
            match exchange(&mut connection, request).await {
                Ok(response) => {
                    return Ok(response.map(|body| AnswerBody {
                        body,
                        connection: Some(connection),
                        client: self.clone(),
                        read: 0,
                        cap: max_answer_bytes,
                    }));
                }
                Err(Failed::Unsent(unsent)) if pooled => request = unsent,
                Err(Failed::Unsent(_)) => return Err(RawHttpError::ClosedBeforeSending),
                Err(Failed::Sent(error)) => return Err(error),
            }
        }
    }
}

async fn connect(uri: &http::Uri, key: PoolKey) -> Result<Box<PooledConnection>, RawHttpError> {
    use tower_service::Service as _;
    // A host written as an address meets no resolver: it is judged here.
    crate::net::check_host(uri.host().unwrap_or_default())
        .map_err(|error| RawHttpError::Connect(Box::new(error)))?;
    let io = connector()
        .clone()
        .call(uri.clone())
        .await
        .map_err(RawHttpError::Connect)?;
    let (sender, driver) = http1::handshake(io).await.map_err(RawHttpError::Exchange)?;
    Ok(Box::new(PooledConnection {
        key,
        sender,
        driver,
        finished: false,
        idle_since: Instant::now(),
    }))
}

/// The body of a raw answer. Reading it drives its connection, which goes back to the pool once
/// the body has been read to its end; dropped before that, it closes the connection.
pub(crate) struct AnswerBody {
    body: hyper::body::Incoming,
    connection: Option<Box<PooledConnection>>,
    /// Where the connection goes back.
    client: RawClient,
    /// Bytes of the answer read so far, and how many it may have: no answer is read past it.
    read: usize,
    cap: usize,
}

impl std::fmt::Debug for AnswerBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AnswerBody").finish_non_exhaustive()
    }
}

impl hyper::body::Body for AnswerBody {
    type Data = Bytes;
    type Error = RawHttpError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<Bytes>, RawHttpError>>> {
        let this = &mut *self;
        if let Some(connection) = &mut this.connection {
            connection.drive(cx);
        }
        match Pin::new(&mut this.body).poll_frame(cx) {
            Poll::Ready(None) => {
                if let Some(connection) = this.connection.take() {
                    this.client.pool().check_in(connection, Instant::now());
                }
                Poll::Ready(None)
            }
            Poll::Ready(Some(Ok(frame))) => {
                this.read += frame.data_ref().map_or(0, Bytes::len);
                if this.read > this.cap {
                    // The rest is never read: the connection is closed, not pooled.
                    this.connection = None;
                    return Poll::Ready(Some(Err(RawHttpError::TooLarge(this.cap))));
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(error))) => Poll::Ready(Some(Err(RawHttpError::Exchange(error)))),
            // Nothing more can arrive once the connection's I/O has finished, and nothing would
            // wake this task.
            Poll::Pending if this.connection.as_ref().is_some_and(|c| c.finished) => {
                this.connection = None;
                Poll::Ready(Some(Err(RawHttpError::ClosedEarly)))
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.body.size_hint()
    }
}

/// Where raw requests to one upstream URL go: what each request needs of the URL, worked out
/// once per route rather than per call.
#[derive(Debug)]
pub(crate) struct Target {
    /// The URL, to connect to.
    url: http::Uri,
    /// The connections that may carry requests to it.
    key: PoolKey,
    /// The request target in origin form: the connection is to the upstream itself, never to a
    /// proxy.
    origin: http::Uri,
    host: http::HeaderValue,
}

impl Target {
    /// `None` for a URL without a scheme or host, or with credentials before its host: those
    /// travel as an `Authorization` header, which the typed path's client (reqwest) writes.
    pub(crate) fn new(url: &http::Uri) -> Option<Self> {
        let (scheme, authority) = (url.scheme()?, url.authority()?);
        if authority.as_str().contains('@') {
            return None;
        }
        Some(Self {
            url: url.clone(),
            key: (scheme.clone(), authority.clone()),
            origin: url
                .path_and_query()
                .and_then(|path| http::Uri::try_from(path.as_str()).ok())
                .unwrap_or_else(|| http::Uri::from_static("/")),
            host: http::HeaderValue::from_str(authority.as_str()).ok()?,
        })
    }
}

/// How an exchange failed.
#[expect(
    clippy::large_enum_variant,
    reason = "returned once per exchange, and boxing the request would allocate on the rare path only to save a move"
)]
enum Failed {
    /// The request never went out, and comes back.
    Unsent(http::Request<Full<Bytes>>),
    Sent(RawHttpError),
}

/// Sends `request` on `connection` and waits for the answer's head, driving the connection.
async fn exchange(
    connection: &mut PooledConnection,
    request: http::Request<Full<Bytes>>,
) -> Result<http::Response<hyper::body::Incoming>, Failed> {
    let ready = std::future::poll_fn(|cx| {
        connection.drive(cx);
        if connection.finished {
            return Poll::Ready(false);
        }
        connection.sender.poll_ready(cx).map(|ready| ready.is_ok())
    })
    .await;
    if !ready {
        return Err(Failed::Unsent(request));
    }
    let mut sent = std::pin::pin!(connection.sender.try_send_request(request));
    std::future::poll_fn(|cx| {
        connection.drive(cx);
        match sent.as_mut().poll(cx) {
            Poll::Ready(Ok(response)) => Poll::Ready(Ok(response)),
            Poll::Ready(Err(mut failed)) => Poll::Ready(Err(match failed.take_message() {
                Some(unsent) => Failed::Unsent(unsent),
                None => Failed::Sent(RawHttpError::Exchange(failed.into_error())),
            })),
            // The connection is gone and took no answer with it that could still wake this.
            Poll::Pending if connection.finished => {
                Poll::Ready(Err(Failed::Sent(RawHttpError::ClosedEarly)))
            }
            Poll::Pending => Poll::Pending,
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A peer that answers each request it reads with `answer` and closes the connection after
    /// `per_connection` answers, saying so on the channel; it counts the connections it accepts.
    async fn http_peer(
        answer: &'static str,
        per_connection: usize,
    ) -> (
        http::Uri,
        std::sync::Arc<std::sync::atomic::AtomicUsize>,
        tokio::sync::mpsc::UnboundedReceiver<()>,
    ) {
        use std::sync::atomic::{AtomicUsize, Ordering};
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a port");
        let uri = format!("http://{}/mcp", listener.local_addr().expect("an address"))
            .parse()
            .expect("a URI");
        let accepted = std::sync::Arc::new(AtomicUsize::new(0));
        let counter = accepted.clone();
        let (closed, closes) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                let closed = closed.clone();
                tokio::spawn(async move {
                    let mut read = Vec::new();
                    for _ in 0..per_connection {
                        // Each request here is one small POST whose body ends in `}`.
                        loop {
                            let mut chunk = [0u8; 1024];
                            let n = socket.read(&mut chunk).await.unwrap_or(0);
                            if n == 0 {
                                return;
                            }
                            read.extend_from_slice(&chunk[..n]);
                            if read.ends_with(b"}") {
                                read.clear();
                                break;
                            }
                        }
                        let response = format!(
                            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{answer}",
                            answer.len()
                        );
                        if socket.write_all(response.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                    drop(socket);
                    let _ = closed.send(());
                });
            }
        });
        (uri, accepted, closes)
    }

    async fn post_and_read(client: &RawClient, uri: &http::Uri) -> String {
        use http_body_util::BodyExt as _;
        let target = Target::new(uri).expect("a target");
        let answer = client
            .post(&target, http::HeaderMap::new(), "{}".into(), usize::MAX)
            .await
            .expect("an answer");
        let bytes = answer
            .into_body()
            .collect()
            .await
            .expect("a body")
            .to_bytes();
        String::from_utf8(bytes.to_vec()).expect("text")
    }

    #[tokio::test]
    async fn a_connection_read_to_its_end_serves_the_next_request() {
        let (uri, accepted, _) = http_peer(r#"{"ok":1}"#, 3).await;
        let client = RawClient::default();
        for _ in 0..3 {
            assert_eq!(post_and_read(&client, &uri).await, r#"{"ok":1}"#);
        }
        assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_pooled_connection_the_upstream_closed_is_replaced_without_losing_the_request() {
        let (uri, accepted, mut closes) = http_peer(r#"{"ok":2}"#, 1).await;
        let client = RawClient::default();
        assert_eq!(post_and_read(&client, &uri).await, r#"{"ok":2}"#);
        // The peer closes that connection after its answer, while the pool keeps it.
        closes.recv().await.expect("the peer closed the connection");
        assert_eq!(post_and_read(&client, &uri).await, r#"{"ok":2}"#);
        assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn an_idle_connection_that_waited_too_long_is_closed_by_the_sweep() {
        use tokio::io::AsyncReadExt as _;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a port");
        let uri: http::Uri = format!("http://{}/mcp", listener.local_addr().expect("an address"))
            .parse()
            .expect("a URI");
        let target = Target::new(&uri).expect("a target");
        let (connection, accepted) =
            tokio::join!(connect(&target.url, target.key.clone()), listener.accept());
        let (mut socket, _) = accepted.expect("accepted");
        let mut pool = Pool::default();
        let now = Instant::now();
        pool.check_in(connection.expect("connected"), now);
        pool.close_stale(now + POOL_IDLE_TIMEOUT / 2);
        assert_eq!(pool.len(), 1, "a connection that has not waited long stays");
        pool.close_stale(now + POOL_IDLE_TIMEOUT);
        assert_eq!(pool.len(), 0);
        let mut rest = Vec::new();
        let read = socket.read_to_end(&mut rest).await.expect("reads");
        assert_eq!(
            read, 0,
            "the peer sees the connection close, with nothing sent"
        );
    }

    #[test]
    fn an_answer_body_is_cheap_to_move() {
        // Responses and the futures that hold them move on every call; the connection they
        // carry back to the pool stays behind a box.
        assert!(std::mem::size_of::<AnswerBody>() <= 72);
    }

    #[tokio::test]
    async fn nothing_is_sent_when_no_connection_opens() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
        let uri: http::Uri = format!("http://{}/mcp", listener.local_addr().expect("an address"))
            .parse()
            .expect("a URI");
        drop(listener);
        let target = Target::new(&uri).expect("a target");
        let error = RawClient::default()
            .post(&target, http::HeaderMap::new(), "{}".into(), usize::MAX)
            .await
            .expect_err("refused");
        let (reason, delivery) = crate::error::describe_transport_error(&error);
        assert_eq!(delivery, crate::Delivery::NotSent, "{reason}");
    }
}
