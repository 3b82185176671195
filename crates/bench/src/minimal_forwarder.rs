//! A second floor, below the bare forwarder's: HTTP/1 relayed by hand over plain tokio sockets.
//! Each downstream connection is served by one task that owns one upstream connection, so a call
//! is two reads and two writes on one task: no HTTP library, no connection pool, no hand-over
//! between tasks. It understands only what the bench sends (a request with a `Content-Length`
//! body) and what the upstream answers (a `Content-Length` or chunked body); it exists to measure
//! what the kernel and the runtime cost per proxied call on this machine, not to serve anyone.
//! Written by hand because the point is to measure the cost without an HTTP library.

use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::{TcpListener, TcpStream},
};

/// Serves on a free loopback port, printing its URL first, until killed.
pub async fn serve(upstream: &str) -> anyhow::Result<()> {
    let upstream: axum::http::Uri = upstream.parse()?;
    let authority = upstream
        .authority()
        .ok_or_else(|| anyhow::anyhow!("the upstream URL has no host"))?
        .to_string();
    let path = upstream.path().to_string();
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    println!("http://{}/mcp", listener.local_addr()?);
    loop {
        let (downstream, _) = listener.accept().await?;
        let _ = downstream.set_nodelay(true);
        let authority = authority.clone();
        let path = path.clone();
        tokio::spawn(async move {
            let _ = relay(downstream, &authority, &path).await;
        });
    }
}

/// Relays requests from one downstream connection until it closes.
async fn relay(mut downstream: TcpStream, authority: &str, path: &str) -> anyhow::Result<()> {
    let mut upstream = TcpStream::connect(authority).await?;
    upstream.set_nodelay(true)?;
    let mut request = Vec::with_capacity(4096);
    let mut answer = Vec::with_capacity(4096);
    let mut head = Vec::with_capacity(1024);
    loop {
        // The request: its head, then `Content-Length` bytes of body.
        let (head_len, body_len) = loop {
            if let Some(parsed) = request_head(&request, authority, path, &mut head)? {
                break parsed;
            }
            if downstream.read_buf(&mut request).await? == 0 {
                return Ok(());
            }
        };
        while request.len() < head_len + body_len {
            if downstream.read_buf(&mut request).await? == 0 {
                return Ok(());
            }
        }
        head.extend_from_slice(&request[head_len..head_len + body_len]);
        upstream.write_all(&head).await?;
        request.drain(..head_len + body_len);

        // The answer, passed on as it comes until its body ends.
        let mut framing = Framing::Head;
        answer.clear();
        let mut passed = 0;
        loop {
            let read = upstream.read_buf(&mut answer).await?;
            anyhow::ensure!(read > 0, "the upstream closed mid-answer");
            // The upstream may hold the end of an event stream until this read is acknowledged.
            let _ = upstream.set_quickack(true);
            let done = framing.advance(&answer)?;
            downstream.write_all(&answer[passed..]).await?;
            passed = answer.len();
            if done {
                break;
            }
        }
    }
}

/// Parses a request head once it is whole, writing into `head` the head to send upstream (the
/// upstream's path and host); returns the head's length in `request` and the body's length.
fn request_head(
    request: &[u8],
    authority: &str,
    path: &str,
    head: &mut Vec<u8>,
) -> anyhow::Result<Option<(usize, usize)>> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut parsed = httparse::Request::new(&mut headers);
    let httparse::Status::Complete(head_len) = parsed.parse(request)? else {
        return Ok(None);
    };
    head.clear();
    head.extend_from_slice(parsed.method.unwrap_or("POST").as_bytes());
    head.extend_from_slice(b" ");
    head.extend_from_slice(path.as_bytes());
    head.extend_from_slice(b" HTTP/1.1\r\nhost: ");
    head.extend_from_slice(authority.as_bytes());
    head.extend_from_slice(b"\r\n");
    let mut body_len = 0;
    for header in parsed.headers.iter() {
        if header.name.eq_ignore_ascii_case("host") {
            continue;
        }
        if header.name.eq_ignore_ascii_case("content-length") {
            body_len = std::str::from_utf8(header.value)?.trim().parse()?;
        }
        head.extend_from_slice(header.name.as_bytes());
        head.extend_from_slice(b": ");
        head.extend_from_slice(header.value);
        head.extend_from_slice(b"\r\n");
    }
    head.extend_from_slice(b"\r\n");
    Ok(Some((head_len, body_len)))
}

/// Where the answer read so far ends.
enum Framing {
    /// Its head is not whole yet.
    Head,
    /// Its body ends at this offset.
    Length { end: usize },
    /// Chunked: the next chunk's size line starts at this offset.
    Chunked { next: usize },
}

impl Framing {
    /// Moves past everything `answer` holds; true once the answer's body has ended.
    fn advance(&mut self, answer: &[u8]) -> anyhow::Result<bool> {
        loop {
            match *self {
                Framing::Head => {
                    let mut headers = [httparse::EMPTY_HEADER; 32];
                    let mut parsed = httparse::Response::new(&mut headers);
                    let httparse::Status::Complete(head_len) = parsed.parse(answer)? else {
                        return Ok(false);
                    };
                    let length = parsed
                        .headers
                        .iter()
                        .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                        .map(|h| std::str::from_utf8(h.value).map(|v| v.trim().parse::<usize>()))
                        .transpose()?
                        .transpose()?;
                    *self = match length {
                        Some(length) => Framing::Length {
                            end: head_len + length,
                        },
                        None => Framing::Chunked { next: head_len },
                    };
                }
                Framing::Length { end } => return Ok(answer.len() >= end),
                Framing::Chunked { next } => {
                    let rest = &answer[next..];
                    let Some(line_end) = rest.windows(2).position(|w| w == b"\r\n") else {
                        return Ok(false);
                    };
                    let size_text = std::str::from_utf8(&rest[..line_end])?;
                    let size = usize::from_str_radix(
                        size_text.split(';').next().unwrap_or("").trim(),
                        16,
                    )?;
                    // The last chunk is followed by an empty trailer line.
                    let chunk_end = next + line_end + 2 + size + 2;
                    if answer.len() < chunk_end {
                        return Ok(false);
                    }
                    if size == 0 {
                        return Ok(true);
                    }
                    *self = Framing::Chunked { next: chunk_end };
                }
            }
        }
    }
}
