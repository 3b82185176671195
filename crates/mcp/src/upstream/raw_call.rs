//! Raw calls over an upstream's open session: a `tools/call` written and read as JSON text
//! (`crate::raw`), with the same admission, deadline, cancel and error rules as typed requests;
//! over Streamable HTTP here, over a child's stdio in `raw_stdio.rs`. A child of `upstream`,
//! whose session and state it uses.

use std::sync::Arc;

use super::*;

impl Upstream {
    /// Calls a tool over the open session with raw JSON: `arguments` is the text of a JSON
    /// object, and the answer's `result` comes back as the upstream wrote it. The breaker, the
    /// concurrency gate and the timeout apply as to [`Self::request`]. Fails with
    /// [`RawCallError::Unrouted`], having sent nothing, when there is no such session (not yet
    /// opened, legacy SSE, or found gone): the typed path should take the call.
    ///
    /// A stateless client's call (`stateless`) goes to a stateless upstream with the client's own
    /// context, and an answer that asks for more input (2026-07-28 `input_required`) comes back
    /// to it as it is. To a session-era upstream it goes with the gateway's context, unless it
    /// needs the client's own. For any other client such an answer fails the call, as it does
    /// on the typed path.
    pub async fn call_tool_raw(
        &self,
        name: &str,
        arguments: &str,
        stateless: Option<&StatelessCall<'_>>,
        options: &RequestOptions,
    ) -> Result<RawReply, RawCallError> {
        let Some(session) = self.live_session() else {
            return Err(RawCallError::Unrouted);
        };
        let way = match &session.raw_way {
            RawWay::Http(cell) => {
                let route = cell.get().ok_or(RawCallError::Unrouted)?;
                if !route.direct
                    || (route.standard_headers && !crate::raw::plain_header_value(name))
                {
                    return Err(RawCallError::Unrouted);
                }
                Way::Http(cell.clone(), route)
            }
            RawWay::Stdio(link) => Way::Stdio(link.clone()),
            RawWay::None => return Err(RawCallError::Unrouted),
        };
        drop(session);
        // The answer is read for the client's era, whatever the upstream's (a stateless client
        // gets `resultType`).
        let for_stateless_client = stateless.is_some();
        // A session-era upstream gets the gateway's own context on its shared session; a call
        // that needs the client's own (to be asked for input) goes to the typed path instead.
        let upstream_stateless = matches!(&way, Way::Http(_, route) if route.stateless);
        let stateless = match stateless {
            Some(call) if !upstream_stateless => {
                if call.needs_stateless_upstream() {
                    return Err(RawCallError::Unrouted);
                }
                None
            }
            other => other,
        };
        let ticket = self.inner.admission.admit().await?;
        let result = match &way {
            Way::Http(_, route) => {
                self.send_raw(
                    route,
                    name,
                    arguments,
                    stateless,
                    for_stateless_client,
                    options,
                )
                .await
            }
            Way::Stdio(link) => {
                self.send_raw_stdio(link, name, arguments, for_stateless_client, options)
                    .await
            }
        };
        match &result {
            Err(RawCallError::Unrouted) => {
                if let Way::Http(cell, _) = &way {
                    cell.clear();
                }
                ticket.release();
            }
            Err(RawCallError::Upstream(error)) => ticket.record(Err(error)),
            Ok(_) => ticket.record(Ok(())),
        }
        result
    }

    async fn send_raw(
        &self,
        route: &Arc<RawRoute>,
        name: &str,
        arguments: &str,
        stateless: Option<&StatelessCall<'_>>,
        for_stateless_client: bool,
        options: &RequestOptions,
    ) -> Result<RawReply, RawCallError> {
        use std::sync::atomic::Ordering;
        let id = crate::raw::RAW_ID_BASE + self.inner.raw_ids.fetch_add(1, Ordering::Relaxed);
        let method = "tools/call";
        let headers = crate::raw::request_headers(
            route,
            &self.inner.config.auth,
            &options.context,
            method,
            Some(name),
        )
        .await
        .map_err(|error| self.config_error(error.to_string()))?;
        // The client's own token when it gave one, else one of ours.
        let progress_token = options.progress.as_ref().map(|_| {
            options
                .progress_token
                .clone()
                .unwrap_or_else(|| id.to_string())
        });
        let body = crate::raw::call_body(
            id,
            name,
            arguments,
            route.meta.as_deref(),
            progress_token.as_deref(),
            stateless,
        );
        let timeout = options.timeout.unwrap_or(self.inner.config.request_timeout);
        let mut guard = cancel::CancelOnDrop::new(self, cancel::Sent::Http(route.clone(), id));
        let deadline = Deadline::new(timeout, self.inner.config.max_request_timeout);
        let on_progress = |report: crate::Progress| {
            deadline.progressed();
            if let Some(caller) = &options.progress {
                let _ = caller.send(report);
            }
        };
        let exchange = async {
            let cap = self.max_answer_bytes();
            let response = self
                .inner
                .config
                .raw_client
                .post(&route.target, headers, body, cap)
                .await
                .map_err(|error| {
                    let (reason, delivery) = describe_transport_error(&error);
                    if delivery == Delivery::NotSent {
                        return RawCallError::Unrouted;
                    }
                    self.raw_failure(reason, delivery)
                })?;
            let expected = crate::raw::Expected {
                id,
                progress_token: progress_token.as_deref(),
            };
            self.read_raw_answer(route, response, expected, for_stateless_client, on_progress)
                .await
        };
        let result = match governed(exchange, options.cancel.as_ref(), &deadline).await {
            Ok(answered) => answered,
            Err(cut) => Err(RawCallError::Upstream(self.cut(method, cut))),
        };
        // A call that may still run upstream (cancelled, timed out, cut off) stays armed: the
        // guard sends `notifications/cancelled` as it drops.
        let may_run = match &result {
            Err(RawCallError::Upstream(error)) => {
                matches!(
                    error,
                    UpstreamError::Cancelled { .. } | UpstreamError::Timeout { .. }
                ) || error.delivery() == Some(Delivery::MaybeSent)
            }
            _ => false,
        };
        if !may_run {
            guard.disarm();
        }
        result
    }

    async fn read_raw_answer(
        &self,
        route: &RawRoute,
        response: http::Response<crate::raw_client::AnswerBody>,
        expected: crate::raw::Expected<'_>,
        pass_incomplete: bool,
        on_progress: impl FnMut(crate::Progress),
    ) -> Result<RawReply, RawCallError> {
        let id = expected.id;
        let status = response.status();
        if route.session_id.is_some()
            && (status == http::StatusCode::NOT_FOUND || status == http::StatusCode::BAD_REQUEST)
        {
            // A session the server forgot: rmcp's client re-initializes on the typed path. The
            // request did not run, so it may be sent again there.
            let body = read_body(response.into_body()).await.unwrap_or_default();
            let text = String::from_utf8_lossy(&body);
            if status == http::StatusCode::NOT_FOUND || crate::exchange::says_session_is_gone(&text)
            {
                return Err(RawCallError::Unrouted);
            }
            return Err(match crate::raw::error_answer(&body, id) {
                Some(error) => RawCallError::Upstream(self.rpc_error(error)),
                None => self.raw_failure(format!("HTTP {}", status.as_u16()), Delivery::Rejected),
            });
        }
        if !status.is_success() {
            // A refusal may still be the upstream's JSON-RPC error (the 2026-07-28 era sends
            // -32602, -32021… with a 4xx status): passed on as it is.
            let error = read_body(response.into_body())
                .await
                .ok()
                .and_then(|bytes| crate::raw::error_answer(&bytes, id));
            return Err(match error {
                Some(error) => RawCallError::Upstream(self.rpc_error(error)),
                None => self.raw_failure(format!("HTTP {}", status.as_u16()), Delivery::Rejected),
            });
        }
        let is_stream = response
            .headers()
            .get(http::header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .is_some_and(|value| value.starts_with("text/event-stream"));
        let body = response.into_body();
        let (answer, notifications) = if is_stream {
            crate::raw::read_event_stream(body, expected, pass_incomplete, on_progress)
                .await
                .map_err(|reason| self.raw_failure(reason, Delivery::MaybeSent))?
        } else {
            let bytes = read_body(body).await.map_err(|error| {
                let (reason, delivery) = describe_transport_error(&error);
                self.raw_failure(reason, delivery)
            })?;
            let text = std::str::from_utf8(&bytes).map_err(|_| {
                self.raw_failure("the answer is not UTF-8".into(), Delivery::MaybeSent)
            })?;
            match crate::raw::classify(text, id, pass_incomplete) {
                Ok(crate::raw::Message::Answer(answer)) => (answer, Vec::new()),
                Ok(crate::raw::Message::Incomplete) => {
                    return Err(self.raw_failure(crate::raw::INCOMPLETE.into(), Delivery::Rejected));
                }
                _ => return Err(RawCallError::Upstream(self.unexpected("tools/call"))),
            }
        };
        match answer {
            Ok((result, is_error)) => Ok(RawReply {
                result,
                is_error,
                notifications,
            }),
            Err(error) => Err(RawCallError::Upstream(self.rpc_error(error))),
        }
    }

    /// The upstream's JSON-RPC error to a raw call, as it sent it.
    pub(super) fn rpc_error(&self, error: crate::raw::RpcError) -> UpstreamError {
        UpstreamError::Rpc {
            upstream: self.name().into(),
            method: "tools/call".into(),
            code: error.code,
            message: sanitize_message(&error.message),
            data: error.data,
        }
    }

    pub(super) fn raw_failure(&self, reason: String, delivery: Delivery) -> RawCallError {
        RawCallError::Upstream(UpstreamError::Transport {
            upstream: self.name().into(),
            method: "tools/call".into(),
            reason,
            delivery,
        })
    }
}

/// The way one raw call goes, taken from the session when it starts.
enum Way {
    Http(Arc<RouteCell>, Arc<RawRoute>),
    Stdio(Arc<stdio::StdioLink>),
}

/// The whole of a response body.
async fn read_body(
    body: crate::raw_client::AnswerBody,
) -> Result<bytes::Bytes, crate::raw_client::RawHttpError> {
    use http_body_util::BodyExt as _;
    Ok(body.collect().await?.to_bytes())
}
