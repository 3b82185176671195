//! Opening an upstream's session: one connection attempt at a time, backing off after failures,
//! over the transport the config names (Streamable HTTP, legacy SSE, or a child's stdio), in the
//! protocol era the upstream and its use call for.

use super::*;

impl Upstream {
    /// The live session, opening one if there is none or the last one died.
    pub(super) async fn session(&self) -> Result<Arc<Session>, UpstreamError> {
        if let Some(session) = self.live_session() {
            return Ok(session);
        }
        let _connecting = self.inner.connecting.lock().await;
        // Another caller may have connected while this one waited.
        if let Some(session) = self.live_session() {
            return Ok(session);
        }
        if let Some(dead) = self.slot().take() {
            tracing::info!(upstream = %self.name(), "session ended; reconnecting");
            drop(dead);
        }
        if let Some(at) = self.next_attempt()? {
            tokio::time::sleep_until(at).await;
        }
        let timeout = self.inner.config.request_timeout;
        let connected = match tokio::time::timeout(timeout, self.open()).await {
            Ok(result) => result,
            Err(_) => Err(UpstreamError::Connect {
                upstream: self.name().into(),
                reason: format!("{NO_HANDSHAKE} {}", crate::error::humanize(timeout)),
                delivery: Delivery::MaybeSent,
            }),
        };
        let mut backoff = self
            .inner
            .backoff
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        match connected {
            Ok(session) => {
                *backoff = Backoff::default();
                let session = Arc::new(session);
                *self.slot() = Some(session.clone());
                self.follow_changes(&session);
                Ok(session)
            }
            Err(error) => {
                let delay = self
                    .inner
                    .config
                    .retry_delay(backoff.failures)
                    .min(MAX_RECONNECT_BACKOFF);
                backoff.failures += 1;
                backoff.next_attempt = Some(Instant::now() + delay);
                tracing::warn!(upstream = %self.name(), %error, "connection failed");
                Err(error)
            }
        }
    }

    /// When the next connection attempt may start, after earlier failures. Fails at once when
    /// that is further away than a request may wait.
    fn next_attempt(&self) -> Result<Option<Instant>, UpstreamError> {
        let backoff = self
            .inner
            .backoff
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let Some(at) = backoff.next_attempt else {
            return Ok(None);
        };
        let wait = at.saturating_duration_since(Instant::now());
        if wait > self.inner.config.request_timeout {
            return Err(UpstreamError::Connect {
                upstream: self.name().into(),
                reason: format!(
                    "unavailable after {} failed attempts; next attempt in {}",
                    backoff.failures,
                    crate::error::humanize(wait)
                ),
                delivery: Delivery::NotSent,
            });
        }
        Ok(Some(at))
    }

    /// Connects and initializes, in an `upstream.connect` span.
    async fn open(&self) -> Result<Session, UpstreamError> {
        use tracing::Instrument as _;
        let span = tracing::info_span!(
            "upstream.connect",
            "switchboard.server" = %self.name(),
            "mcp.protocol.version" = tracing::field::Empty,
            "otel.status_code" = tracing::field::Empty,
            "error.type" = tracing::field::Empty,
        );
        let opened = self.open_session().instrument(span.clone()).await;
        match &opened {
            Ok(session) => {
                if let Some(info) = session.service.peer().peer_info() {
                    span.record("mcp.protocol.version", info.protocol_version.to_string());
                }
            }
            Err(error) => {
                span.record("otel.status_code", "ERROR");
                span.record("error.type", error.to_string());
            }
        }
        opened
    }

    async fn open_session(&self) -> Result<Session, UpstreamError> {
        let config = &self.inner.config;
        let http = match &config.endpoint {
            Endpoint::Stdio(stdio_config) => {
                if !matches!(config.auth, UpstreamAuth::None) {
                    return Err(UpstreamError::Config {
                        upstream: self.name().into(),
                        reason: "bearer auth needs an HTTP upstream; give a stdio server its token in `env`"
                            .into(),
                    });
                }
                let (child, link, transport) =
                    stdio::spawn(self.name(), stdio_config, self.max_answer_bytes())?;
                let service = self.handshake(transport, self.lifecycle()).await?;
                return Ok(Session {
                    service,
                    child: SyncMutex::new(Some(child)),
                    transport: TransportKind::Stdio,
                    raw_way: RawWay::Stdio(link),
                    oversized_answer: Arc::default(),
                });
            }
            Endpoint::Http(http) => http,
        };
        match http.transport {
            HttpTransport::StreamableHttp => self.open_streamable(http).await,
            HttpTransport::Sse => self.open_sse(http).await.map_err(SseOpenError::into_error),
            HttpTransport::Auto => match self.open_streamable(http).await {
                Ok(session) => Ok(session),
                Err(error) if error.delivery() == Some(Delivery::NotSent) => Err(error),
                Err(streamable_error) => {
                    // The spec's backwards-compatibility rule: a server that refuses the
                    // Streamable HTTP handshake may be a legacy SSE server.
                    tracing::debug!(upstream = %self.name(), %streamable_error, "trying legacy SSE");
                    match self.open_sse(http).await {
                        Ok(session) => Ok(session),
                        Err(SseOpenError::NotSse(_)) => Err(streamable_error),
                        Err(SseOpenError::Failed(error)) => Err(error),
                    }
                }
            },
        }
    }

    async fn open_streamable(&self, http: &HttpConfig) -> Result<Session, UpstreamError> {
        self.check_target(&http.url)?;
        let headers =
            header_map(&http.headers).map_err(|error| self.config_error(error.to_string()))?;
        let mut transport_config = StreamableHttpClientTransportConfig::with_uri(http.url.as_str());
        transport_config.custom_headers = headers;
        transport_config.reinit_on_expired_session = true;
        // rmcp caps JSON answers at its own 16 MiB and event-stream events here.
        transport_config.max_sse_event_size = self.max_answer_bytes();
        let route = Arc::new(RouteCell::default());
        let oversized_answer = Arc::<std::sync::atomic::AtomicBool>::default();
        let transport = StreamableHttpClientTransport::with_client(
            SessionAwareClient::new(
                self.inner.config.auth.clone(),
                route.clone(),
                self.max_answer_bytes(),
                oversized_answer.clone(),
            ),
            transport_config,
        );
        let service = self.handshake(transport, self.lifecycle()).await?;
        Ok(Session {
            service,
            child: SyncMutex::new(None),
            transport: TransportKind::StreamableHttp,
            raw_way: RawWay::Http(route),
            oversized_answer,
        })
    }

    async fn open_sse(&self, http: &HttpConfig) -> Result<Session, SseOpenError> {
        let headers = header_map(&http.headers)
            .map_err(|error| SseOpenError::Failed(self.config_error(error.to_string())))?;
        let endpoint_wait = self
            .inner
            .config
            .request_timeout
            .min(Duration::from_secs(10));
        let oversized_answer = Arc::<std::sync::atomic::AtomicBool>::default();
        let cap = crate::sse::EventCap {
            max_bytes: self.max_answer_bytes(),
            exceeded: oversized_answer.clone(),
        };
        let transport = LegacySseTransport::connect(
            shared_http_client(),
            &http.url,
            headers,
            self.inner.config.auth.clone(),
            endpoint_wait,
            cap,
        )
        .await
        .map_err(|error| {
            let (reason, delivery) = describe_transport_error(&error);
            let failure = UpstreamError::Connect {
                upstream: self.name().into(),
                reason,
                delivery,
            };
            if error.is_not_sse() {
                SseOpenError::NotSse(failure)
            } else {
                SseOpenError::Failed(failure)
            }
        })?;
        // The legacy transport predates the stateless era: only the initialize handshake applies.
        let service = self
            .handshake(transport, ClientLifecycleMode::Initialize)
            .await
            .map_err(SseOpenError::Failed)?;
        Ok(Session {
            service,
            child: SyncMutex::new(None),
            transport: TransportKind::Sse,
            raw_way: RawWay::None,
            oversized_answer,
        })
    }

    async fn handshake<T>(
        &self,
        transport: T,
        lifecycle: ClientLifecycleMode,
    ) -> Result<RunningService<RoleClient, UpstreamHandler>, UpstreamError>
    where
        T: rmcp::transport::Transport<RoleClient> + 'static,
    {
        let handler = self.inner.handler.clone();
        let transport = InOrder::new(transport, handler.clone());
        handler
            .serve_with_lifecycle(transport, lifecycle)
            .await
            .map_err(|error| {
                let (reason, delivery) = describe_transport_error(&error);
                UpstreamError::Connect {
                    upstream: self.name().into(),
                    reason,
                    delivery,
                }
            })
    }

    /// Refuses a URL whose host is written as a forbidden address, once per session (its URL
    /// never changes); names are judged by the resolver each time they are resolved.
    fn check_target(&self, url: &str) -> Result<(), UpstreamError> {
        let host = url::Url::parse(url)
            .ok()
            .and_then(|url| url.host_str().map(str::to_string))
            .unwrap_or_default();
        crate::net::check_host(&host).map_err(|forbidden| UpstreamError::Connect {
            upstream: self.name().into(),
            reason: forbidden.to_string(),
            delivery: Delivery::NotSent,
        })
    }

    pub(super) fn config_error(&self, reason: String) -> UpstreamError {
        UpstreamError::Config {
            upstream: self.name().into(),
            reason,
        }
    }
}

enum SseOpenError {
    /// The URL does not serve the legacy transport (wrong status, no endpoint event).
    NotSse(UpstreamError),
    /// It does, but the session could not be set up.
    Failed(UpstreamError),
}

impl SseOpenError {
    fn into_error(self) -> UpstreamError {
        match self {
            Self::NotSse(error) | Self::Failed(error) => error,
        }
    }
}

/// Probe with the stateless 2026-07-28 `server/discover`, and fall back to the initialize handshake
/// at 2025-11-25 for servers that refuse it.
fn modern_first_lifecycle() -> ClientLifecycleMode {
    ClientLifecycleMode::Auto {
        preferred_versions: vec![ProtocolVersion::LATEST],
        legacy_version: Some(ProtocolVersion::LATEST_WITH_INITIALIZE),
    }
}

impl Upstream {
    /// How a session is opened. One whose requests a client answers (a relay) is opened in the
    /// initialize era even when the server speaks 2026-07-28: a server may still ask the way of
    /// that era, on its session, which a stateless exchange has no channel for. Its 2026-07-28
    /// `input_required` answers are then asked as requests of that era too. So is a stdio
    /// server's: rmcp gives up on `server/discover` after 10 s and sends `initialize` on the same
    /// pipe, where a server slower to start (`npx` fetching its package) then answers both, and
    /// the late discovery breaks the handshake. Every server of either era takes `initialize`.
    fn lifecycle(&self) -> ClientLifecycleMode {
        let stdio = matches!(self.inner.config.endpoint, Endpoint::Stdio(_));
        if self.inner.config.relay.is_some() || stdio {
            ClientLifecycleMode::Initialize
        } else {
            modern_first_lifecycle()
        }
    }
}
