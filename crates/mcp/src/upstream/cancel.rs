//! A request's cancel on drop, written once for every way a request goes: until its answer
//! disarms it, dropping the guard (the call ended early: cancelled, timed out, or its caller's
//! future dropped) sends `notifications/cancelled` for it in the background, on the way the
//! request went. The tasks run on the upstream's tracker, so that closing it can wait for them.

use std::sync::Arc;

use super::*;

/// Where a request went, and so how its cancel goes.
pub(super) enum Sent {
    /// On rmcp's session.
    Typed(Peer<RoleClient>, rmcp::model::RequestId),
    /// A raw request over Streamable HTTP, by its raw id.
    Http(Arc<RawRoute>, u64),
    /// A raw request over a child's stdio, by its raw id.
    Stdio(Arc<stdio::StdioLink>, u64),
}

/// Cancels its request when dropped, unless disarmed.
pub(super) struct CancelOnDrop {
    upstream: Upstream,
    sent: Option<Sent>,
}

impl CancelOnDrop {
    pub(super) fn new(upstream: &Upstream, sent: Sent) -> Self {
        Self {
            upstream: upstream.clone(),
            sent: Some(sent),
        }
    }

    /// The request was answered (or cannot still run upstream): nothing to cancel.
    pub(super) fn disarm(&mut self) {
        self.sent = None;
    }
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        let Some(sent) = self.sent.take() else { return };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let upstream = self.upstream.clone();
        let cancels = upstream.inner.cancels.clone();
        cancels.spawn_on(upstream.send_cancel(sent), &runtime);
    }
}

impl Upstream {
    async fn send_cancel(self, sent: Sent) {
        match sent {
            Sent::Typed(peer, id) => {
                let params = rmcp::model::CancelledNotificationParam::new(
                    Some(id),
                    Some("the caller cancelled the request".to_string()),
                );
                let _ = peer.notify_cancelled(params).await;
            }
            Sent::Http(route, id) => {
                let Ok(headers) = crate::raw::request_headers(
                    &route,
                    &self.inner.config.auth,
                    &CallContext::default(),
                    "notifications/cancelled",
                    None,
                )
                .await
                else {
                    return;
                };
                // Read to its end, so that the connection goes back to the pool.
                if let Ok(answer) = (self.inner.config.raw_client)
                    .post(
                        &route.target,
                        headers,
                        crate::raw::cancel_body(id),
                        self.max_answer_bytes(),
                    )
                    .await
                {
                    use http_body_util::BodyExt as _;
                    let _ = answer.into_body().collect().await;
                }
            }
            Sent::Stdio(link, id) => {
                let _ = link.write(&crate::raw::cancel_body(id)).await;
            }
        }
    }
}
