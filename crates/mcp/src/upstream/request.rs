//! One request to an upstream, as every typed request goes: admitted, sent on the live session
//! with its timeout (restarted by progress), retried when that is safe, cancelled upstream when
//! its caller goes away, and carried through `input_required` rounds.

use super::*;

/// Whether a failed attempt may be made again: always when the request never left; when it may
/// have left, only if the caller says a second run is safe, or if it failed before its session
/// opened for a reason other than a handshake that hung (one that hung would hang as long
/// again); never after the upstream answered, an HTTP error status included. `sent` is whether
/// a session was open to send it on.
fn may_retry(error: &UpstreamError, sent: bool, retry_safe: bool) -> bool {
    match error.delivery() {
        Some(Delivery::NotSent) => true,
        // A handshake cut off (a server still starting may take a connection and drop it) never
        // carried the request.
        Some(Delivery::MaybeSent) => {
            retry_safe
                || (!sent
                    && !matches!(error, UpstreamError::Connect { reason, .. }
                        if reason.starts_with(NO_HANDSHAKE)))
        }
        _ => false,
    }
}

/// Makes `attempt` again while its failure may be retried ([`may_retry`]) and `retries` last,
/// waiting `delay(n)` before retry `n` (0-based), except after a failed connect, whose backoff
/// the next attempt waits for.
async fn with_retries<T, Tried>(
    upstream: &str,
    retries: u32,
    retry_safe: bool,
    delay: impl Fn(u32) -> Duration,
    mut attempt: impl FnMut() -> Tried,
) -> Result<T, UpstreamError>
where
    Tried: std::future::Future<Output = Result<T, (UpstreamError, bool)>>,
{
    let mut retry = 0;
    loop {
        let (error, sent) = match attempt().await {
            Ok(done) => return Ok(done),
            Err(failed) => failed,
        };
        if !may_retry(&error, sent, retry_safe) || retry >= retries {
            return Err(error);
        }
        tracing::debug!(%upstream, retry, %error, "retrying");
        if !matches!(error, UpstreamError::Connect { .. }) {
            tokio::time::sleep(delay(retry)).await;
        }
        retry += 1;
    }
}

/// Rounds of `input_required` a call may go through before it fails (the SDKs' default).
const MAX_INPUT_ROUNDS: usize = 10;

impl Upstream {
    /// Sends any request, with the upstream's timeout, retry, breaker and concurrency rules.
    ///
    /// A 2026-07-28 server may answer `tools/call`, `prompts/get` or `resources/read` with
    /// `input_required`: its embedded requests are answered through the relay (the downstream
    /// client), and the request is made again with the answers and the echoed state, until it
    /// completes.
    pub async fn request(
        &self,
        mut request: ClientRequest,
        options: &RequestOptions,
    ) -> Result<ServerResult, UpstreamError> {
        if options.client_meta.is_some() {
            // The client answers its own input requests.
            return self.request_once(&request, options).await;
        }
        for _round in 0..MAX_INPUT_ROUNDS {
            let pending = match self.request_once(&request, options).await? {
                ServerResult::InputRequiredResult(pending) => pending,
                done => return Ok(done),
            };
            let method = request.method().to_string();
            let mut answers = std::collections::BTreeMap::new();
            for (key, input) in pending.input_requests.unwrap_or_default() {
                let answer = self
                    .inner
                    .handler
                    .answer_input(input)
                    .await
                    .map_err(|error| UpstreamError::Rpc {
                        upstream: self.name().into(),
                        method: method.clone(),
                        code: error.code.0,
                        message: sanitize_message(&error.message),
                        data: error.data,
                    })?;
                answers.insert(key, answer);
            }
            let answers = (!answers.is_empty()).then_some(answers);
            if !carry_input(&mut request, answers, pending.request_state) {
                return Err(self.unexpected(&method));
            }
        }
        Err(UpstreamError::UnexpectedResponse {
            upstream: self.name().into(),
            method: format!(
                "{} (still asking for input after {MAX_INPUT_ROUNDS} rounds)",
                request.method()
            ),
        })
    }

    /// One request, without answering `input_required`.
    async fn request_once(
        &self,
        request: &ClientRequest,
        options: &RequestOptions,
    ) -> Result<ServerResult, UpstreamError> {
        let ticket = self.inner.admission.admit().await?;
        let result = self.request_with_retries(request, options).await;
        ticket.record(result.as_ref().map(|_| ()));
        result
    }

    async fn request_with_retries(
        &self,
        request: &ClientRequest,
        options: &RequestOptions,
    ) -> Result<ServerResult, UpstreamError> {
        let config = &self.inner.config;
        with_retries(
            self.name(),
            config.retries,
            options.retry_safe,
            |retry| config.retry_delay(retry),
            || self.attempt(request, options),
        )
        .await
    }

    /// One attempt of a request: on the live session, opened if need be. A session found dead
    /// before the request left is replaced once, as nothing was sent (a server that dies at
    /// every start cannot loop us). A failure says whether a session was open to send it on.
    async fn attempt(
        &self,
        request: &ClientRequest,
        options: &RequestOptions,
    ) -> Result<ServerResult, (UpstreamError, bool)> {
        let mut reopened_stale = false;
        loop {
            let session = self.session().await.map_err(|error| (error, false))?;
            match self.send_once(&session, request.clone(), options).await {
                Ok(result) => return Ok(result),
                Err(Attempt::Stale) => {
                    self.forget(&session);
                    if reopened_stale {
                        return Err((self.closed(request, &session), true));
                    }
                    reopened_stale = true;
                }
                Err(Attempt::Failed(error)) => {
                    if matches!(error, UpstreamError::Closed { .. }) {
                        self.forget(&session);
                    }
                    return Err((error, true));
                }
            }
        }
    }

    /// One attempt of one request on one session.
    async fn send_once(
        &self,
        session: &Session,
        request: ClientRequest,
        options: &RequestOptions,
    ) -> Result<ServerResult, Attempt> {
        let method = request.method().to_string();
        let timeout = options.timeout.unwrap_or(self.inner.config.request_timeout);
        let hard_limit = self.inner.config.max_request_timeout.max(timeout);
        // rmcp enforces only the hard limit; the silence timeout below restarts on each progress.
        let mut peer_options = PeerRequestOptions::with_timeout(hard_limit);
        let mut meta = rmcp::model::RequestMetaObject::default();
        if matches!(self.inner.config.auth, UpstreamAuth::Bearer(_)) {
            meta.insert(
                CONTEXT_META_KEY.into(),
                Value::Object(options.context.0.clone()),
            );
        }
        // Stdio has no headers to carry it; HTTP transports turn it into `traceparent`.
        if session.transport != TransportKind::Stdio
            && let Some(traceparent) = crate::exchange::current_traceparent()
        {
            meta.insert(
                crate::exchange::TRACEPARENT_META_KEY.into(),
                Value::String(traceparent),
            );
        }
        // A stateless client's own context, for an upstream of its era (a session-era one has
        // the gateway's, from the handshake).
        let stateless = session.is_stateless();
        if let Some(client) = options.client_meta.as_ref().filter(|_| stateless) {
            for (key, value) in client {
                meta.insert(key.clone(), value.clone());
            }
        }
        if !meta.is_empty() {
            peer_options.meta = Some(meta);
        }
        let peer = session.service.peer().clone();
        let handle = match peer.send_request_with_option(request, peer_options).await {
            Ok(handle) => handle,
            Err(ServiceError::TransportClosed) => return Err(Attempt::Stale),
            Err(error) => {
                return Err(Attempt::Failed(
                    self.map_service_error(&method, session, error),
                ));
            }
        };
        let routes = &self.inner.handler.progress;
        // Progress is always routed here, to restart the timeout, and passed on to the caller.
        let (progress_sender, mut progress) = mpsc::unbounded_channel();
        routes.add(handle.progress_token.clone(), progress_sender);
        let mut guard = InFlight {
            cancel: cancel::CancelOnDrop::new(self, cancel::Sent::Typed(peer, handle.id.clone())),
            progress_token: handle.progress_token.clone(),
            routes: routes.clone(),
        };
        let deadline = Deadline::new(timeout, hard_limit);
        let pass_on = |report: Progress| {
            if let Some(caller) = &options.progress {
                let _ = caller.send(report);
            }
        };
        let exchange = async {
            let response = handle.await_response();
            tokio::pin!(response);
            loop {
                tokio::select! {
                    response = &mut response => {
                        // Every report the upstream sent before its answer was routed before the
                        // answer arrived (see `InOrder`), so it is here to pass on.
                        while let Ok(report) = progress.try_recv() {
                            pass_on(report);
                        }
                        return response;
                    }
                    Some(report) = progress.recv() => {
                        deadline.progressed();
                        pass_on(report);
                    }
                }
            }
        };
        match governed(exchange, options.cancel.as_ref(), &deadline).await {
            Ok(response) => {
                guard.disarm();
                match response {
                    Ok(result) => Ok(result),
                    Err(ServiceError::TransportSend(error)) if session_is_gone(&error) => {
                        Err(Attempt::Stale)
                    }
                    Err(error) => Err(Attempt::Failed(
                        self.map_service_error(&method, session, error),
                    )),
                }
            }
            // The armed guard sends `notifications/cancelled` as it drops.
            Err(cut) => Err(Attempt::Failed(self.cut(&method, cut))),
        }
    }

    /// The error of a request its caller cancelled or whose deadline passed.
    pub(super) fn cut(&self, method: &str, cut: Cut) -> UpstreamError {
        let upstream = self.name().into();
        let method = method.into();
        match cut {
            Cut::Cancelled => UpstreamError::Cancelled { upstream, method },
            Cut::TimedOut(timeout) => UpstreamError::Timeout {
                upstream,
                method,
                timeout,
            },
        }
    }

    pub(super) fn map_service_error(
        &self,
        method: &str,
        session: &Session,
        error: ServiceError,
    ) -> UpstreamError {
        let upstream = self.name().to_string();
        let method = method.to_string();
        match error {
            ServiceError::McpError(error) => UpstreamError::Rpc {
                upstream,
                method,
                code: error.code.0,
                message: sanitize_message(&error.message),
                data: error.data,
            },
            ServiceError::Timeout { timeout } => UpstreamError::Timeout {
                upstream,
                method,
                timeout,
            },
            ServiceError::Cancelled { .. } => UpstreamError::Cancelled { upstream, method },
            ServiceError::TransportClosed
                if session
                    .oversized_answer
                    .load(std::sync::atomic::Ordering::Relaxed) =>
            {
                UpstreamError::Transport {
                    upstream,
                    method,
                    reason: format!(
                        "the answer exceeded the cap of {} bytes",
                        self.max_answer_bytes()
                    ),
                    delivery: Delivery::MaybeSent,
                }
            }
            ServiceError::TransportClosed => UpstreamError::Closed {
                upstream,
                method,
                reason: match session.transport {
                    TransportKind::Stdio => "the server process exited".into(),
                    _ => "the connection closed".into(),
                },
            },
            ServiceError::UnexpectedResponse => {
                UpstreamError::UnexpectedResponse { upstream, method }
            }
            ServiceError::TransportSend(error) => {
                let (reason, delivery) = describe_transport_error(&error);
                UpstreamError::Transport {
                    upstream,
                    method,
                    reason,
                    delivery,
                }
            }
            other => UpstreamError::Transport {
                upstream,
                method,
                reason: sanitize_message(&other.to_string()),
                delivery: Delivery::MaybeSent,
            },
        }
    }
}

/// How one attempt on one session failed.
enum Attempt {
    /// The session was dead before the request reached the server; open a new one and resend.
    Stale,
    Failed(UpstreamError),
}

/// Whether a send failed because the server forgot the session (legacy SSE after a restart).
fn session_is_gone(error: &rmcp::transport::DynamicTransportError) -> bool {
    crate::error::chain(error).any(|err| {
        matches!(
            err.downcast_ref::<crate::sse::SseError>(),
            Some(crate::sse::SseError::SessionGone)
        )
    })
}

/// One request in flight. Dropped however the call ends, including when its caller's future is
/// dropped: it stops routing the request's progress and, unless disarmed by an answer, sends
/// `notifications/cancelled`.
struct InFlight {
    cancel: cancel::CancelOnDrop,
    progress_token: rmcp::model::ProgressToken,
    routes: ProgressRoutes,
}

/// Puts the answers to an `input_required` and its echoed state on the request that got it;
/// false for a request that cannot carry them.
fn carry_input(
    request: &mut ClientRequest,
    responses: Option<rmcp::model::InputResponses>,
    state: Option<String>,
) -> bool {
    match request {
        ClientRequest::CallToolRequest(call) => {
            call.params.input_responses = responses;
            call.params.request_state = state;
        }
        ClientRequest::GetPromptRequest(get) => {
            get.params.input_responses = responses;
            get.params.request_state = state;
        }
        ClientRequest::ReadResourceRequest(read) => {
            read.params.input_responses = responses;
            read.params.request_state = state;
        }
        _ => return false,
    }
    true
}

impl InFlight {
    fn disarm(&mut self) {
        self.cancel.disarm();
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.routes.remove(&self.progress_token);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn transport(delivery: Delivery) -> UpstreamError {
        UpstreamError::Transport {
            upstream: "u".into(),
            method: "tools/call".into(),
            reason: "cut off".into(),
            delivery,
        }
    }

    fn refused() -> UpstreamError {
        UpstreamError::Connect {
            upstream: "u".into(),
            reason: "refused".into(),
            delivery: Delivery::NotSent,
        }
    }

    /// Runs [`with_retries`] over `failures` (then a success), with `retries` and delays of 1 s
    /// doubling; returns the outcome, the attempts made, and the time it took.
    async fn retried(
        failures: Vec<UpstreamError>,
        retries: u32,
        retry_safe: bool,
    ) -> (Result<&'static str, UpstreamError>, usize, Duration) {
        let started = tokio::time::Instant::now();
        let mut failures = failures.into_iter();
        let mut attempts = 0;
        let outcome = with_retries(
            "u",
            retries,
            retry_safe,
            |retry| Duration::from_secs(1 << retry),
            || {
                attempts += 1;
                let next = failures.next();
                async move {
                    match next {
                        Some(error) => Err((error, true)),
                        None => Ok("answered"),
                    }
                }
            },
        )
        .await;
        (outcome, attempts, started.elapsed())
    }

    #[tokio::test(start_paused = true)]
    async fn retries_wait_a_doubling_delay_between_attempts() {
        let failures = vec![transport(Delivery::NotSent), transport(Delivery::NotSent)];
        let (outcome, attempts, took) = retried(failures, 3, false).await;
        assert_eq!(outcome.expect("answered"), "answered");
        assert_eq!((attempts, took), (3, Duration::from_secs(1 + 2)));
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_connect_is_retried_without_a_delay_of_its_own() {
        let (outcome, attempts, took) = retried(vec![refused(), refused()], 3, false).await;
        assert!(outcome.is_ok());
        assert_eq!((attempts, took), (3, Duration::ZERO));
    }

    #[tokio::test(start_paused = true)]
    async fn retries_stop_when_spent_or_when_a_second_run_is_not_safe() {
        let always: Vec<UpstreamError> = (0..5).map(|_| transport(Delivery::NotSent)).collect();
        let (outcome, attempts, took) = retried(always, 2, false).await;
        assert!(matches!(outcome, Err(UpstreamError::Transport { .. })));
        assert_eq!((attempts, took), (3, Duration::from_secs(1 + 2)));

        let (outcome, attempts, took) =
            retried(vec![transport(Delivery::MaybeSent)], 3, false).await;
        assert!(outcome.is_err());
        assert_eq!((attempts, took), (1, Duration::ZERO));
        let (outcome, attempts, _) = retried(vec![transport(Delivery::MaybeSent)], 3, true).await;
        assert!(outcome.is_ok());
        assert_eq!(attempts, 2);
    }

    #[test]
    fn a_request_is_retried_only_when_a_second_run_is_safe() {
        let connect = |reason: &str, delivery| UpstreamError::Connect {
            upstream: "u".into(),
            reason: reason.into(),
            delivery,
        };
        let transport = |delivery| UpstreamError::Transport {
            upstream: "u".into(),
            method: "tools/call".into(),
            reason: "cut off".into(),
            delivery,
        };
        let closed = UpstreamError::Closed {
            upstream: "u".into(),
            method: "tools/call".into(),
            reason: "exited".into(),
        };
        let hung = connect(&format!("{NO_HANDSHAKE} 10s"), Delivery::MaybeSent);
        let answered = UpstreamError::Rpc {
            upstream: "u".into(),
            method: "tools/call".into(),
            code: -32603,
            message: "no".into(),
            data: None,
        };
        let timed_out = UpstreamError::Timeout {
            upstream: "u".into(),
            method: "tools/call".into(),
            timeout: Duration::from_secs(1),
        };
        // (error, a session was open, the caller says it is safe) → retried
        for (error, sent, safe, retried) in [
            (connect("refused", Delivery::NotSent), true, false, true),
            (transport(Delivery::NotSent), true, false, true),
            (transport(Delivery::MaybeSent), true, false, false),
            (transport(Delivery::MaybeSent), true, true, true),
            (closed, true, false, false),
            (connect("reset", Delivery::MaybeSent), false, false, true),
            (hung, false, false, false),
            (transport(Delivery::Rejected), true, true, false),
            (answered, true, true, false),
            (timed_out, true, true, false),
        ] {
            assert_eq!(
                may_retry(&error, sent, safe),
                retried,
                "{error} sent={sent} safe={safe}"
            );
        }
    }
}
