//! How the raw client reaches an upstream: names resolved by the guarded resolver, rustls with
//! the platform verifier (as reqwest is built), sockets that set `TCP_NODELAY` and acknowledge
//! every read at once (`TCP_QUICKACK`), and whether a URL goes direct at all.

use std::{
    future::Future,
    io,
    pin::Pin,
    sync::OnceLock,
    task::{Context, Poll},
    time::Duration,
};

use hyper_util::{
    client::legacy::connect::{Connected, Connection, HttpConnector},
    rt::TokioIo,
};
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::TcpStream,
};

pub(super) type Connector = hyper_rustls::HttpsConnector<QuickAckConnector>;
pub(super) type Io = hyper_rustls::MaybeHttpsStream<TokioIo<QuickAckStream>>;

/// The connector of raw calls, for `http` and `https` upstreams; cloned for each connect.
pub(super) fn connector() -> &'static Connector {
    static CONNECTOR: OnceLock<Connector> = OnceLock::new();
    CONNECTOR.get_or_init(|| {
        crate::net::install_crypto_provider();
        hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls_config())
            .https_or_http()
            .enable_http1()
            .wrap_connector(QuickAckConnector::new())
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
pub struct QuickAckConnector(HttpConnector<crate::net::GuardedResolver>);

impl QuickAckConnector {
    /// A connector for plain `http`; the raw client wraps it in TLS for `https`.
    pub fn new() -> Self {
        // Names resolve through the guard, so that no connection reaches a forbidden address.
        let mut http = HttpConnector::new_with_resolver(crate::net::GuardedResolver);
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
    type Error =
        <HttpConnector<crate::net::GuardedResolver> as tower_service::Service<http::Uri>>::Error;
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

#[cfg(test)]
mod tests {
    use hyper_util::client::proxy::matcher::Matcher;

    use super::*;

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
