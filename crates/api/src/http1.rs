//! A hand-written HTTP/1.1 loop for the requests the fast lane takes; hyper serves the rest.
//!
//! Written by hand because hyper's general server was, by the profiles in BENCHMARKS.md, the
//! largest share of the gateway's own time per proxied call left. The loop serves only the
//! plainest request: an HTTP/1.1 `POST` on `/mcp` or `/mcp/{server}` with a `Content-Length`
//! body, and no `Transfer-Encoding`, `Expect`, `Upgrade` or `Connection` other than
//! `keep-alive`. At the first request of any other shape it hands the connection, with every
//! byte it has read and not answered, to hyper, which serves it from then on.
//!
//! As hyper's server does with half-closes off, a client that closes its side while its
//! request is served has the request dropped, which cancels the call upstream. As in hyper,
//! the end is watched for only while no further bytes wait unread.

use std::{
    io::{self, Write as _},
    net::SocketAddr,
    pin::{Pin, pin},
    task::{Context, Poll},
};

use axum::{
    body::{Body, Bytes, HttpBody},
    http::{
        HeaderMap, HeaderName, HeaderValue, Method, Request, Response, StatusCode, Uri, Version,
    },
};
use bytes::BytesMut;
use futures::FutureExt as _;
use http_body_util::{BodyExt as _, Full};
use tokio::{
    io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _, ReadBuf},
    sync::watch,
};

use crate::front_door::FrontDoor;

/// More header lines than a plain MCP request carries; a request with more goes to hyper.
const MAX_HEADERS: usize = 32;
/// A head longer than this goes to hyper, which answers it as it sees fit.
const MAX_HEAD: usize = 16 * 1024;
/// What each read asks room for; a plain call fits in one.
const READ_CHUNK: usize = 8 * 1024;
/// Room for an answer's head and a small body, kept for each connection's answers.
const OUT_CHUNK: usize = 1024;
/// A part of an answer this large is written as it is, not copied behind the head.
const LARGE_PART: usize = 16 * 1024;

/// How the loop left a connection.
pub(crate) enum Outcome<IO> {
    /// Closed: by the client, by an error, or at shutdown.
    Closed,
    /// The connection is hyper's from here on; `read` is what the loop read and did not answer.
    HandOff { io: IO, read: Bytes },
}

/// Serves plain fast-lane requests on `io` until the client closes, shutdown comes, or a request
/// of another shape arrives.
pub(crate) async fn serve<IO>(
    mut io: IO,
    door: &FrontDoor,
    peer: SocketAddr,
    stop: &mut watch::Receiver<()>,
) -> Outcome<IO>
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    let mut read = BytesMut::with_capacity(READ_CHUNK);
    // Reused for every answer's bytes, so that writing one allocates nothing.
    let mut out = Vec::with_capacity(OUT_CHUNK);
    loop {
        let (head_len, body_len) = loop {
            if !read.is_empty() {
                match inspect(&read) {
                    Head::Plain { head_len, body_len } => break (head_len, body_len),
                    Head::Partial => {}
                    Head::Other => {
                        return Outcome::HandOff {
                            io,
                            read: read.freeze(),
                        };
                    }
                }
            }
            // Between requests, shutdown closes the connection; within one, the grace period
            // of `serve` bounds the wait.
            let more = if read.is_empty() {
                tokio::select! {
                    more = fill(&mut io, &mut read) => more,
                    _ = stop.changed() => false,
                }
            } else {
                fill(&mut io, &mut read).await
            };
            if !more {
                return Outcome::Closed;
            }
        };
        let total = head_len + body_len;
        read.reserve(total.saturating_sub(read.len()));
        while read.len() < total {
            if !fill(&mut io, &mut read).await {
                return Outcome::Closed;
            }
        }
        let message = read.split_to(total).freeze();
        if read.is_empty() && total > READ_CHUNK {
            // A large request's buffer is not kept for the connection's life.
            read = BytesMut::with_capacity(READ_CHUNK);
        }
        let Some(request) = request(message, head_len) else {
            // `inspect` accepted what this rejects only for bytes neither hyper nor `http`
            // would take; the request is consumed, so it is answered here.
            let _ = io.write_all(BAD_REQUEST).await;
            return Outcome::Closed;
        };
        let response = {
            let mut handling = pin!(door.handle(peer, request));
            loop {
                tokio::select! {
                    biased;
                    response = &mut handling => break response,
                    more = fill(&mut io, &mut read), if read.is_empty() => {
                        if !more {
                            return Outcome::Closed;
                        }
                    }
                }
            }
        };
        let closing = stop.has_changed().unwrap_or(true);
        match write_response(&mut io, &mut read, &mut out, response, closing).await {
            Ok(true) if !closing => {}
            _ => return Outcome::Closed,
        }
    }
}

/// Reads more of the connection into `read`; `false` at its end or on an error.
async fn fill<IO: AsyncRead + Unpin>(io: &mut IO, read: &mut BytesMut) -> bool {
    if read.capacity() - read.len() < READ_CHUNK / 4 {
        read.reserve(READ_CHUNK);
    }
    matches!(io.read_buf(read).await, Ok(n) if n > 0)
}

/// What the bytes read so far say of the next request.
#[derive(Debug, PartialEq)]
enum Head {
    /// Its head has not all arrived.
    Partial,
    /// A request this loop serves, with the lengths of its head and of its body.
    Plain { head_len: usize, body_len: usize },
    /// Anything else: hyper's.
    Other,
}

fn inspect(read: &[u8]) -> Head {
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut slots);
    let head_len = match request.parse(read) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) if read.len() < MAX_HEAD => return Head::Partial,
        _ => return Head::Other,
    };
    let fast_path = request.path.is_some_and(|target| {
        let path = target.split_once('?').map_or(target, |(path, _)| path);
        crate::front_door::fast_path(path).is_some()
    });
    if request.method != Some("POST") || request.version != Some(1) || !fast_path {
        return Head::Other;
    }
    let mut body_len = None;
    for header in request.headers.iter() {
        let name = header.name;
        if name.eq_ignore_ascii_case("content-length") {
            if body_len.is_some() {
                return Head::Other;
            }
            body_len = decimal(header.value);
        } else if name.eq_ignore_ascii_case("transfer-encoding")
            || name.eq_ignore_ascii_case("expect")
            || name.eq_ignore_ascii_case("upgrade")
            || (name.eq_ignore_ascii_case("connection")
                && !header.value.eq_ignore_ascii_case(b"keep-alive"))
        {
            return Head::Other;
        }
    }
    match body_len {
        Some(body_len) if body_len <= crate::fast_lane::MAX_BODY => {
            Head::Plain { head_len, body_len }
        }
        _ => Head::Other,
    }
}

/// A `Content-Length` value: digits only, as RFC 9110 has it.
fn decimal(value: &[u8]) -> Option<usize> {
    if value.is_empty() || value.len() > 10 || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    value.iter().try_fold(0usize, |sum, digit| {
        sum.checked_mul(10)?.checked_add(usize::from(digit - b'0'))
    })
}

/// The request in `message` (head, then body), its header values sharing `message`'s bytes.
fn request(message: Bytes, head_len: usize) -> Option<Request<Full<Bytes>>> {
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut parsed = httparse::Request::new(&mut slots);
    parsed.parse(&message).ok()?;
    let uri = Uri::from_maybe_shared(message.slice_ref(parsed.path?.as_bytes())).ok()?;
    let mut headers = HeaderMap::with_capacity(parsed.headers.len());
    for header in parsed.headers.iter() {
        let name = HeaderName::from_bytes(header.name.as_bytes()).ok()?;
        let value = HeaderValue::from_maybe_shared(message.slice_ref(header.value)).ok()?;
        headers.append(name, value);
    }
    let mut request = Request::new(Full::new(message.slice(head_len..)));
    *request.method_mut() = Method::POST;
    *request.uri_mut() = uri;
    *request.version_mut() = Version::HTTP_11;
    *request.headers_mut() = headers;
    Some(request)
}

const BAD_REQUEST: &[u8] =
    b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";

/// Writes `response`, its body framed by length when it is known and chunked when it streams.
/// Returns whether the connection may serve another request. While the body waits for its
/// next part, the connection is read, so that a client that goes away ends the answer (and the
/// call behind it).
async fn write_response<IO>(
    io: &mut IO,
    read: &mut BytesMut,
    out: &mut Vec<u8>,
    response: Response<Body>,
    closing: bool,
) -> io::Result<bool>
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    let (parts, mut body) = response.into_parts();
    out.clear();
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(parts.status.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(parts.status.canonical_reason().unwrap_or("").as_bytes());
    out.extend_from_slice(b"\r\n");
    let mut keep_alive = !closing;
    for (name, value) in &parts.headers {
        // The body is framed here, whatever the handler said.
        if name == axum::http::header::CONTENT_LENGTH
            || name == axum::http::header::TRANSFER_ENCODING
        {
            continue;
        }
        if name == axum::http::header::CONNECTION {
            keep_alive &= !value.as_bytes().eq_ignore_ascii_case(b"close");
            continue;
        }
        header_line(out, name.as_str().as_bytes(), value.as_bytes());
    }
    if !parts.headers.contains_key(axum::http::header::DATE) {
        date::with_now(|now| header_line(out, b"date", now));
    }
    if !keep_alive {
        header_line(out, b"connection", b"close");
    }
    let bodiless = parts.status.is_informational()
        || parts.status == StatusCode::NO_CONTENT
        || parts.status == StatusCode::NOT_MODIFIED;
    if bodiless {
        out.extend_from_slice(b"\r\n");
        io.write_all(out).await?;
        return Ok(keep_alive);
    }
    let length = body.size_hint().exact();
    match length {
        Some(length) => {
            out.extend_from_slice(b"content-length: ");
            let _ = write!(out, "{length}\r\n");
        }
        None => header_line(out, b"transfer-encoding", b"chunked"),
    }
    out.extend_from_slice(b"\r\n");
    let mut written = 0u64;
    loop {
        // A part that is ready joins the bytes waiting to go; only a wait sends them.
        let frame = match body.frame().now_or_never() {
            Some(frame) => frame,
            None => {
                io.write_all(out).await?;
                out.clear();
                next_frame(io, read, &mut body).await?
            }
        };
        let Some(frame) = frame else { break };
        let Ok(data) = frame
            .map_err(|_| io::Error::other("the answer's body failed"))?
            .into_data()
        else {
            // Trailers have no place in these answers.
            continue;
        };
        if data.is_empty() {
            continue;
        }
        written += data.len() as u64;
        if length.is_none() {
            let _ = write!(out, "{:x}\r\n", data.len());
        }
        if data.len() < LARGE_PART {
            out.extend_from_slice(&data);
        } else {
            // Sent as it is rather than copied.
            io.write_all(out).await?;
            out.clear();
            io.write_all(&data).await?;
        }
        if length.is_none() {
            out.extend_from_slice(b"\r\n");
        }
    }
    if length.is_none() {
        out.extend_from_slice(b"0\r\n\r\n");
    }
    io.write_all(out).await?;
    if out.capacity() > LARGE_PART {
        *out = Vec::with_capacity(OUT_CHUNK);
    }
    if length.is_some_and(|length| length != written) {
        return Err(io::Error::other("the answer's body broke its length"));
    }
    Ok(keep_alive)
}

/// The body's next part, or an error when the client closes its side first.
async fn next_frame<IO>(
    io: &mut IO,
    read: &mut BytesMut,
    body: &mut Body,
) -> io::Result<Option<Result<hyper::body::Frame<Bytes>, axum::Error>>>
where
    IO: AsyncRead + Unpin,
{
    loop {
        tokio::select! {
            biased;
            frame = body.frame() => return Ok(frame),
            more = fill(io, read), if read.is_empty() => {
                if !more {
                    return Err(io::ErrorKind::ConnectionAborted.into());
                }
            }
        }
    }
}

fn header_line(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// The `Date` header's value, made once a second per thread, as hyper does.
mod date {
    use std::{cell::RefCell, time::SystemTime};

    thread_local! {
        static CACHED: RefCell<(u64, String)> = const { RefCell::new((0, String::new())) };
    }

    pub(super) fn with_now<R>(use_it: impl FnOnce(&[u8]) -> R) -> R {
        let now = SystemTime::now();
        let second = now
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |since| since.as_secs());
        CACHED.with_borrow_mut(|(cached_second, text)| {
            if *cached_second != second || text.is_empty() {
                *cached_second = second;
                *text = httpdate::fmt_http_date(now);
            }
            use_it(text.as_bytes())
        })
    }
}

/// A connection whose first bytes were already read: they are read again first.
pub(crate) struct Rewind<IO> {
    /// Read from the connection before hyper had it.
    prefix: Bytes,
    io: IO,
}

impl<IO> Rewind<IO> {
    pub(crate) fn new(prefix: Bytes, io: IO) -> Self {
        Self { prefix, io }
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for Rewind<IO> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if !self.prefix.is_empty() {
            let n = self.prefix.len().min(buf.remaining());
            let head = self.prefix.split_to(n);
            buf.put_slice(&head);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Rewind<IO> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain(head: &str) -> String {
        format!("{head}\r\nhost: 127.0.0.1\r\ncontent-length: 2\r\n\r\n{{}}")
    }

    #[test]
    fn only_plain_posts_on_the_proxy_endpoints_are_served_here() {
        let request = plain("POST /mcp/echo HTTP/1.1");
        let head_len = request.len() - 2;
        assert_eq!(
            inspect(request.as_bytes()),
            Head::Plain {
                head_len,
                body_len: 2
            }
        );
        assert!(matches!(
            inspect(plain("POST /mcp?x=1 HTTP/1.1").as_bytes()),
            Head::Plain { .. }
        ));
        for other in [
            plain("GET /mcp/echo HTTP/1.1"),
            plain("POST /mcp/echo HTTP/1.0"),
            plain("POST /mcp/admin HTTP/1.1"),
            plain("POST /api/mcp-servers HTTP/1.1"),
            "POST /mcp HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n".into(),
            "POST /mcp HTTP/1.1\r\nhost: h\r\n\r\n".into(),
            "POST /mcp HTTP/1.1\r\ncontent-length: 2\r\ncontent-length: 2\r\n\r\n{}".into(),
            "POST /mcp HTTP/1.1\r\ncontent-length: +2\r\n\r\n{}".into(),
            "POST /mcp HTTP/1.1\r\ncontent-length: 2\r\nexpect: 100-continue\r\n\r\n".into(),
            "POST /mcp HTTP/1.1\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}".into(),
            "POST /mcp HTTP/1.1\r\ncontent-length: 2\r\nupgrade: h2c\r\n\r\n{}".into(),
            "POST /mcp HTTP/1.1\r\ncontent-length: 99999999999\r\n\r\n".into(),
            "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".into(),
        ] {
            assert_eq!(inspect(other.as_bytes()), Head::Other, "{other:?}");
        }
        let keep_alive =
            "POST /mcp HTTP/1.1\r\ncontent-length: 0\r\nConnection: Keep-Alive\r\n\r\n";
        assert!(matches!(inspect(keep_alive.as_bytes()), Head::Plain { .. }));
        assert_eq!(inspect(b"POST /mcp HTTP/1.1\r\ncontent-le"), Head::Partial);
        let endless = format!("POST /mcp HTTP/1.1\r\nx: {}", "a".repeat(MAX_HEAD));
        assert_eq!(inspect(endless.as_bytes()), Head::Other);
    }

    #[test]
    fn a_request_shares_the_bytes_it_was_read_into() {
        let text = plain("POST /mcp/echo?x=1 HTTP/1.1");
        let head_len = text.len() - 2;
        let request = request(Bytes::from(text), head_len).expect("a request");
        assert_eq!(request.uri().path(), "/mcp/echo");
        assert_eq!(request.uri().query(), Some("x=1"));
        assert_eq!(request.headers()["host"], "127.0.0.1");
        let body = request.into_body().collect().now_or_never();
        let body = body.expect("ready").expect("infallible").to_bytes();
        assert_eq!(&body[..], b"{}");
    }

    async fn written(response: Response<Body>, closing: bool) -> (String, bool) {
        let (mut near, mut far) = tokio::io::duplex(64 * 1024);
        let mut read = BytesMut::new();
        let mut out = Vec::new();
        let keep_alive = write_response(&mut near, &mut read, &mut out, response, closing)
            .await
            .expect("written");
        drop(near);
        let mut text = String::new();
        far.read_to_string(&mut text).await.expect("read back");
        (text, keep_alive)
    }

    #[tokio::test]
    async fn answers_are_framed_by_length_or_in_chunks() {
        let (text, keep_alive) = written(Response::new(Body::from("{\"a\":1}")), false).await;
        assert!(keep_alive);
        assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
        assert!(text.contains("\r\ndate: "), "{text}");
        assert!(
            text.ends_with("content-length: 7\r\n\r\n{\"a\":1}"),
            "{text}"
        );

        let parts = futures::stream::iter(["data: 1\n\n", "data: 22\n\n"])
            .map(|part| Ok::<_, std::convert::Infallible>(Bytes::from(part)));
        let (text, _) = written(Response::new(Body::from_stream(parts)), false).await;
        assert!(text.contains("transfer-encoding: chunked\r\n"), "{text}");
        assert!(
            text.ends_with("\r\n\r\n9\r\ndata: 1\n\n\r\na\r\ndata: 22\n\n\r\n0\r\n\r\n"),
            "{text}"
        );

        let large = "x".repeat(LARGE_PART * 2);
        let (text, _) = written(Response::new(Body::from(large.clone())), false).await;
        assert!(
            text.ends_with(&format!("content-length: {}\r\n\r\n{large}", large.len())),
            "a large answer is written whole"
        );

        let mut accepted = Response::new(Body::empty());
        *accepted.status_mut() = StatusCode::ACCEPTED;
        let (text, keep_alive) = written(accepted, true).await;
        assert!(!keep_alive);
        assert!(text.starts_with("HTTP/1.1 202 Accepted\r\n"), "{text}");
        assert!(text.contains("connection: close\r\n"), "{text}");
        assert!(text.ends_with("content-length: 0\r\n\r\n"), "{text}");

        let mut no_content = Response::new(Body::empty());
        *no_content.status_mut() = StatusCode::NO_CONTENT;
        let (text, _) = written(no_content, false).await;
        assert!(!text.contains("content-length"), "{text}");
    }

    #[tokio::test]
    async fn a_rewound_connection_reads_its_first_bytes_again() {
        let (near, mut far) = tokio::io::duplex(1024);
        far.write_all(b" world").await.expect("write");
        drop(far);
        let mut rewound = Rewind::new(Bytes::from_static(b"hello"), near);
        let mut text = String::new();
        rewound.read_to_string(&mut text).await.expect("read");
        assert_eq!(text, "hello world");
    }

    use futures::StreamExt as _;
}
