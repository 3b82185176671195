//! What an upstream tells of its own accord once asked: list changes and the updates of
//! resources that downstream clients subscribed to. A session of the 2025 era sends list changes
//! unasked and resource updates after `resources/subscribe`; a stateless one (2026-07-28) sends
//! both only on a `subscriptions/listen` stream, whose filter names the resources. Either way they
//! become the upstream's [`UpstreamEvent`](crate::UpstreamEvent)s.

// `resources/subscribe` is of the 2025 era, which rmcp marks deprecated; servers of that era
// still have it, and their clients still use it.
#![allow(deprecated)]

use std::{
    sync::{Arc, PoisonError},
    time::Duration,
};

use rmcp::model::{
    ClientRequest, SubscribeRequest, SubscribeRequestParams, SubscriptionFilter,
    UnsubscribeRequest, UnsubscribeRequestParams,
};
use tokio::sync::oneshot;

use super::{RequestOptions, Session, Upstream};
use crate::{UpstreamEvent, error::UpstreamError, handler::change};

impl Upstream {
    /// Subscribes one more client to the updates of `uri`. The upstream is asked for the first
    /// subscriber only; every update then reaches every listener as
    /// [`UpstreamEvent::ResourceUpdated`](crate::UpstreamEvent::ResourceUpdated), and telling
    /// which of them subscribed is theirs.
    pub async fn subscribe_resource(&self, uri: &str) -> Result<(), UpstreamError> {
        if !self.inner.resources.add(uri) {
            return Ok(());
        }
        let asked = self.ask_for_resource(uri, true).await;
        if asked.is_err() {
            self.inner.resources.remove(uri);
        }
        asked
    }

    /// One client fewer wants the updates of `uri`; the upstream is told when none does. With no
    /// session open there is nothing to tell: the next one will not ask for it.
    pub async fn unsubscribe_resource(&self, uri: &str) -> Result<(), UpstreamError> {
        if !self.inner.resources.remove(uri) || self.live_session().is_none() {
            return Ok(());
        }
        self.ask_for_resource(uri, false).await
    }

    async fn ask_for_resource(&self, uri: &str, subscribe: bool) -> Result<(), UpstreamError> {
        let session = self.session().await?;
        if session.is_stateless() {
            // Answered once the upstream acknowledged the new stream: an update the client
            // causes right after its subscription is answered must not fall between the two
            // streams.
            let _ = tokio::time::timeout(LISTEN_ACKNOWLEDGED_WITHIN, self.listen(&session)).await;
            return Ok(());
        }
        self.request(
            subscription_request(uri, subscribe),
            &RequestOptions::retry_safe(),
        )
        .await
        .map(|_| ())
    }

    /// On a new session, asks for what the upstream would not otherwise send: on a stateless
    /// one, list changes and subscribed resources' updates on a listen stream; on one of the
    /// 2025 era, the subscribed resources again (its list changes come unasked).
    pub(super) fn follow_changes(&self, session: &Arc<Session>) {
        if session.is_stateless() {
            // Nobody waits for this one: the session's first list changes come later.
            drop(self.listen(session));
            return;
        }
        let uris = self.inner.resources.uris();
        if uris.is_empty() {
            return;
        }
        let upstream = self.downgrade();
        tokio::spawn(async move {
            let Some(upstream) = upstream.upgrade() else {
                return;
            };
            for uri in uris {
                let request = subscription_request(&uri, true);
                if let Err(error) = upstream
                    .request(request, &RequestOptions::retry_safe())
                    .await
                {
                    tracing::warn!(upstream = %upstream.name(), %uri, %error, "cannot subscribe again to a resource");
                }
            }
        });
    }

    /// (Re)opens the stateless session's listen stream, for the list changes and the resources
    /// subscribed to now; the stream it replaces ends. An update sent between the two is missed.
    /// A stream that fails or ends (the upstream restarted, say) is opened again, when
    /// [`ListenRetry`] says, for as long as the session lives; a stream opened
    /// again announces every list as changed, so that listeners list what they may have missed.
    /// An upstream that refuses to listen is not asked again. What it returns is told when the
    /// first stream is acknowledged, or could not be opened.
    fn listen(&self, session: &Session) -> oneshot::Receiver<()> {
        let peer = session.service.peer().clone();
        let events = self.inner.handler.events.clone();
        let name = self.name().to_string();
        let uris = self.inner.resources.uris();
        let (opened, told) = oneshot::channel();
        let mut opened = Some(opened);
        let task = tokio::spawn(async move {
            let mut retry = ListenRetry::default();
            let mut again = false;
            loop {
                let mut filter = SubscriptionFilter::builder()
                    .tools_list_changed()
                    .prompts_list_changed()
                    .resources_list_changed();
                if !uris.is_empty() {
                    filter = filter.resource_subscriptions(uris.clone());
                }
                let listening = peer.listen(filter.build()).await;
                if let Some(opened) = opened.take() {
                    let _ = opened.send(());
                }
                match listening {
                    Ok(mut subscription) => {
                        if again {
                            for missed in [
                                UpstreamEvent::ToolsChanged,
                                UpstreamEvent::PromptsChanged,
                                UpstreamEvent::ResourcesChanged,
                            ] {
                                let _ = events.send(missed);
                            }
                        }
                        let opened = tokio::time::Instant::now();
                        while let Ok(Some(notification)) = subscription.next().await {
                            if let Some(event) = change(&notification) {
                                let _ = events.send(event);
                            }
                        }
                        retry.ended_after(opened.elapsed());
                        tracing::debug!(upstream = %name, "the change subscription ended");
                    }
                    Err(rmcp::ServiceError::McpError(error)) => {
                        tracing::debug!(upstream = %name, %error, "no change subscription");
                        return;
                    }
                    // Said once a break, not at every try while the upstream stays down.
                    Err(error) if retry.after_a_break() => {
                        tracing::warn!(upstream = %name, %error, "cannot listen for the upstream's changes; trying again");
                    }
                    Err(error) => {
                        tracing::debug!(upstream = %name, %error, "cannot listen for the upstream's changes yet");
                    }
                }
                if peer.is_transport_closed() {
                    return;
                }
                tokio::time::sleep(retry.wait()).await;
                again = true;
            }
        });
        let replaced = self
            .inner
            .listening
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .replace(task.abort_handle());
        if let Some(replaced) = replaced {
            replaced.abort();
        }
        told
    }
}

/// The longest a subscription's answer waits for the upstream to acknowledge the listen stream
/// that carries it; an upstream that never does still gets the subscription, unconfirmed.
const LISTEN_ACKNOWLEDGED_WITHIN: Duration = Duration::from_secs(10);
/// The first wait before a listen stream that failed or ended is opened again.
const LISTEN_RETRY_FIRST: Duration = Duration::from_secs(1);
/// The longest wait between two tries; a stream that lasted this long starts over from the first.
const LISTEN_RETRY_MAX: Duration = Duration::from_secs(30);

/// When a listen stream that failed or ended is opened again: after a wait that doubles from
/// [`LISTEN_RETRY_FIRST`] up to [`LISTEN_RETRY_MAX`], and starts over once a stream has lasted
/// [`LISTEN_RETRY_MAX`]. A stream that keeps ending sooner is opened less and less often.
#[derive(Debug)]
struct ListenRetry {
    /// The wait before the next try.
    next: Duration,
}

impl Default for ListenRetry {
    fn default() -> Self {
        Self {
            next: LISTEN_RETRY_FIRST,
        }
    }
}

impl ListenRetry {
    /// The wait before the next try; the one after it is twice as long, up to the longest.
    fn wait(&mut self) -> Duration {
        let wait = self.next;
        self.next = (wait * 2).min(LISTEN_RETRY_MAX);
        wait
    }

    /// A stream ended after `lasted`: one that lasted the longest wait starts the waits over.
    fn ended_after(&mut self, lasted: Duration) {
        if lasted >= LISTEN_RETRY_MAX {
            self.next = LISTEN_RETRY_FIRST;
        }
    }

    /// Whether the next try is the first since the stream last held (or ever): a failure then
    /// is worth a warning, and the ones while the upstream stays down are not.
    fn after_a_break(&self) -> bool {
        self.next == LISTEN_RETRY_FIRST
    }
}

/// A session-era `resources/subscribe` or `resources/unsubscribe` of `uri`.
fn subscription_request(uri: &str, subscribe: bool) -> ClientRequest {
    if subscribe {
        ClientRequest::SubscribeRequest(SubscribeRequest::new(SubscribeRequestParams::new(uri)))
    } else {
        ClientRequest::UnsubscribeRequest(UnsubscribeRequest::new(UnsubscribeRequestParams::new(
            uri,
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_retries_back_off_and_start_over_after_a_stream_that_held() {
        let mut retry = ListenRetry::default();
        assert!(
            retry.after_a_break(),
            "the first failure is worth a warning"
        );
        let waits: Vec<u64> = (0..7).map(|_| retry.wait().as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 30, 30]);
        assert!(
            !retry.after_a_break(),
            "an upstream that stays down is not warned of again"
        );

        // A stream that ended sooner than the longest wait does not start the waits over: an
        // upstream that keeps dropping streams is not asked again every second.
        retry.ended_after(Duration::from_secs(29));
        assert_eq!(retry.wait(), LISTEN_RETRY_MAX);
        retry.ended_after(LISTEN_RETRY_MAX);
        assert!(retry.after_a_break());
        assert_eq!(retry.wait(), LISTEN_RETRY_FIRST);
        assert_eq!(retry.wait(), LISTEN_RETRY_FIRST * 2);
    }
}
