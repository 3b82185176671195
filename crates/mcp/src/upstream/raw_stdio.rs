//! Raw calls over a child's stdio: the call's line written on the child's stdin, and its answer
//! line waited for (`stdio::StdioLink`), with the deadline, cancel (`cancel::CancelOnDrop`) and
//! error rules of every request. The call asks for progress under its own id: the child's one
//! stdout carries every client's reports, so a client's own token could collide with another's.

use std::sync::Arc;

use super::*;
use crate::stdio::StdioLink;

impl Upstream {
    pub(super) async fn send_raw_stdio(
        &self,
        link: &Arc<StdioLink>,
        name: &str,
        arguments: &str,
        for_stateless_client: bool,
        options: &RequestOptions,
    ) -> Result<RawReply, RawCallError> {
        use std::sync::atomic::Ordering;
        let id = crate::raw::RAW_ID_BASE + self.inner.raw_ids.fetch_add(1, Ordering::Relaxed);
        let wants_progress = options.progress.is_some();
        let token = wants_progress.then(|| id.to_string());
        let body = crate::raw::call_body(id, name, arguments, None, token.as_deref(), None);
        let timeout = options.timeout.unwrap_or(self.inner.config.request_timeout);
        let deadline = Deadline::new(timeout, self.inner.config.max_request_timeout);
        let awaited = link.expect(id, wants_progress);
        let _waiting = AnswerWait { link, id };
        if link.write(&body).await.is_err() {
            // The child's stdin is closed: nothing was sent, and the typed path reconnects.
            return Err(RawCallError::Unrouted);
        }
        let mut guard = cancel::CancelOnDrop::new(self, cancel::Sent::Stdio(link.clone(), id));
        let pass_on = |report: crate::Progress| {
            deadline.progressed();
            if let Some(caller) = &options.progress {
                let _ = caller.send(report);
            }
        };
        let exchange = async {
            let crate::stdio::Awaited {
                answer,
                mut progress,
            } = awaited;
            tokio::pin!(answer);
            loop {
                tokio::select! {
                    answered = &mut answer => {
                        // Reports routed before the answer are passed on before it.
                        if let Some(progress) = &mut progress {
                            while let Ok(report) = progress.try_recv() {
                                pass_on(report);
                            }
                        }
                        return answered;
                    }
                    Some(report) = next_report(&mut progress) => pass_on(report),
                }
            }
        };
        let line = match governed(exchange, options.cancel.as_ref(), &deadline).await {
            Ok(Ok(line)) => line,
            Ok(Err(_)) => {
                // The child's stdout ended: it is gone, with the call.
                guard.disarm();
                return Err(RawCallError::Upstream(UpstreamError::Closed {
                    upstream: self.name().into(),
                    method: "tools/call".into(),
                    reason: "the server's output ended".into(),
                }));
            }
            // The armed guard writes `notifications/cancelled` as it drops.
            Err(cut) => return Err(RawCallError::Upstream(self.cut("tools/call", cut))),
        };
        guard.disarm();
        match crate::raw::classify(&line, id, for_stateless_client) {
            Ok(crate::raw::Message::Answer(Ok((result, is_error)))) => Ok(RawReply {
                result,
                is_error,
                notifications: Vec::new(),
            }),
            Ok(crate::raw::Message::Answer(Err(error))) => {
                Err(RawCallError::Upstream(self.rpc_error(error)))
            }
            Ok(crate::raw::Message::Incomplete) => {
                Err(self.raw_failure(crate::raw::INCOMPLETE.into(), Delivery::Rejected))
            }
            _ => Err(RawCallError::Upstream(self.unexpected("tools/call"))),
        }
    }
}

/// The next progress report, if the call asked for them.
async fn next_report(
    progress: &mut Option<tokio::sync::mpsc::UnboundedReceiver<crate::Progress>>,
) -> Option<crate::Progress> {
    match progress {
        Some(progress) => progress.recv().await,
        None => std::future::pending().await,
    }
}

/// A raw call's wait for its answer line, ended however the call ends.
struct AnswerWait<'a> {
    link: &'a StdioLink,
    id: u64,
}

impl Drop for AnswerWait<'_> {
    fn drop(&mut self) {
        self.link.forget(self.id);
    }
}
