//! The HTTP client of the raw path: hyper-util's pooled client (the one reqwest wraps) over
//! sockets that acknowledge what they read at once.
//!
//! Why not reqwest here: its connector hides the socket, and this one needs `TCP_QUICKACK`. An
//! upstream that leaves Nagle's algorithm on holds the end of an answered event stream until the
//! answer is acknowledged, and Linux delays that acknowledgement by up to 40 ms on a
//! request-response connection. Until the end arrives the connection cannot go back to the pool,
//! so under load nearly every call opened a new one (connecting took a tenth of the gateway's
//! CPU), and at concurrency 1 every call waited for a connect.

use std::{
    future::Future,
    io,
    pin::Pin,
    sync::OnceLock,
    task::{Context, Poll},
    time::Duration,
};

use bytes::Bytes;
use http_body_util::Full;
use hyper_util::{
    client::legacy::{
        Client,
        connect::{Connected, Connection, HttpConnector},
    },
    rt::{TokioExecutor, TokioIo, TokioTimer},
};
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::TcpStream,
};

/// The pooled client of raw calls, for `http` and `https` upstreams.
pub(crate) type RawClient = Client<hyper_rustls::HttpsConnector<QuickAckConnector>, Full<Bytes>>;

/// One client for every upstream of the process, so that its pool is shared.
pub(crate) fn raw_client() -> &'static RawClient {
    static CLIENT: OnceLock<RawClient> = OnceLock::new();
    CLIENT.get_or_init(|| {
        crate::http::install_crypto_provider();
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls_config())
            .https_or_http()
            .enable_http1()
            .wrap_connector(QuickAckConnector::new());
        Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(90))
            .pool_timer(TokioTimer::new())
            .build(connector)
    })
}

/// The system's trust roots, verified as reqwest does for the typed path.
fn tls_config() -> rustls::ClientConfig {
    use rustls_platform_verifier::ConfigVerifierExt as _;
    rustls::ClientConfig::with_platform_verifier().unwrap_or_else(|error| {
        tracing::warn!(%error, "no platform certificate verifier; raw calls to https upstreams will fail");
        rustls::ClientConfig::builder()
            .with_root_certificates(rustls::RootCertStore::empty())
            .with_no_client_auth()
    })
}

/// Opens TCP connections (with TCP_NODELAY) whose reads are acknowledged at once.
#[derive(Debug, Clone)]
pub struct QuickAckConnector(HttpConnector);

impl QuickAckConnector {
    /// A connector for plain `http`; the raw client wraps it in TLS for `https`.
    pub fn new() -> Self {
        let mut http = HttpConnector::new();
        http.set_nodelay(true);
        http.set_connect_timeout(Some(Duration::from_secs(10)));
        // `https` URLs reach the TLS layer, which wraps this connector.
        http.enforce_http(false);
        Self(http)
    }
}

impl Default for QuickAckConnector {
    fn default() -> Self {
        Self::new()
    }
}

impl tower_service::Service<http::Uri> for QuickAckConnector {
    type Response = TokioIo<QuickAckStream>;
    type Error = <HttpConnector as tower_service::Service<http::Uri>>::Error;
    type Future =
        Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send + 'static>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, uri: http::Uri) -> Self::Future {
        let connecting = self.0.call(uri);
        Box::pin(async move {
            let stream = connecting.await?.into_inner();
            Ok(TokioIo::new(QuickAckStream(stream)))
        })
    }
}

/// A TCP stream that asks the kernel to acknowledge at once after every read that returned
/// data. The setting does not last (the kernel falls back to delaying), hence once per read.
#[derive(Debug)]
pub struct QuickAckStream(TcpStream);

impl AsyncRead for QuickAckStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.0).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            // Best effort: a socket that refuses it only costs the delay this avoids.
            let _ = self.0.set_quickack(true);
        }
        polled
    }
}

impl AsyncWrite for QuickAckStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.0.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

impl Connection for QuickAckStream {
    fn connected(&self) -> Connected {
        self.0.connected()
    }
}

/// Whether a request to `uri` would go straight to it, as the typed path's reqwest client would
/// send it: this client has no HTTP proxy support, so a URL that the proxy settings (`HTTP_PROXY`,
/// `HTTPS_PROXY`, `ALL_PROXY`, `NO_PROXY`, read as reqwest reads them) send through a proxy stays
/// on the typed path.
pub(crate) fn goes_direct(uri: &http::Uri) -> bool {
    use hyper_util::client::proxy::matcher::Matcher;
    static SYSTEM: OnceLock<Matcher> = OnceLock::new();
    goes_direct_with(SYSTEM.get_or_init(Matcher::from_system), uri)
}

fn goes_direct_with(
    proxies: &hyper_util::client::proxy::matcher::Matcher,
    uri: &http::Uri,
) -> bool {
    proxies.intercept(uri).is_none()
}

/// Sends one raw request: a POST of `body` to `uri` with `headers`.
pub(crate) async fn post(
    uri: &http::Uri,
    headers: http::HeaderMap,
    body: String,
) -> Result<http::Response<hyper::body::Incoming>, hyper_util::client::legacy::Error> {
    let mut request = http::Request::new(Full::new(Bytes::from(body)));
    *request.method_mut() = http::Method::POST;
    *request.uri_mut() = uri.clone();
    *request.headers_mut() = headers;
    raw_client().request(request).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper_util::client::proxy::matcher::Matcher;

    #[test]
    fn a_url_the_proxy_settings_send_through_a_proxy_does_not_go_direct() {
        let uri: http::Uri = "http://upstream.example:8080/mcp".parse().expect("a URI");
        let none = Matcher::builder().build();
        assert!(goes_direct_with(&none, &uri));
        let proxied = Matcher::builder().http("http://proxy.example:3128").build();
        assert!(!goes_direct_with(&proxied, &uri));
        let excepted = Matcher::builder()
            .http("http://proxy.example:3128")
            .no("upstream.example")
            .build();
        assert!(goes_direct_with(&excepted, &uri));
    }
}
