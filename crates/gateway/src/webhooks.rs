//! The webhook sender: posts each access request and decision, as JSON, to the organization's
//! webhook URL. Deliveries wait in the store, written with their event; a replica claims the
//! due ones for one attempt at a time, so each is sent by one replica, and a failed attempt is
//! tried again after a doubling delay until [`MAX_ATTEMPTS`]. The URL is checked as an upstream's
//! is, and every connection goes through the guarded resolver.

use std::{sync::Arc, time::Duration};

use tokio::sync::Notify;

use crate::Gateway;

/// Attempts before a delivery is given up (the last one some four minutes after the first).
pub const MAX_ATTEMPTS: i64 = 8;
/// The delay after the first failed attempt; it doubles after each.
const FIRST_RETRY: Duration = Duration::from_secs(1);
/// How long one attempt may take; a claim lasts longer, so no other replica takes it meanwhile.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
const CLAIM: Duration = Duration::from_secs(30);
/// How often the store is asked for due deliveries when nothing wakes the sender.
const POLL_EVERY: Duration = Duration::from_secs(1);

/// Wakes the sender when a delivery was written here; cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Webhooks {
    wake: Arc<Notify>,
}

impl Webhooks {
    /// Asks the sender to look for due deliveries now.
    pub fn wake(&self) {
        self.wake.notify_one();
    }
}

/// The delay before attempt `attempts + 1`, after `attempts` failed ones.
fn retry_delay(attempts: i64) -> Duration {
    let doublings = u32::try_from(attempts.saturating_sub(1))
        .unwrap_or(0)
        .min(16);
    FIRST_RETRY.saturating_mul(1 << doublings)
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

impl Gateway {
    pub fn webhooks(&self) -> &Webhooks {
        &self.webhooks
    }

    /// Sends due deliveries until the store is closed.
    pub(crate) fn spawn_webhook_sender(&self) -> tokio::task::JoinHandle<()> {
        let gateway = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(POLL_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    () = gateway.webhooks.wake.notified() => {}
                }
                if gateway.store().is_closed() {
                    return;
                }
                if let Err(error) = gateway.send_due_webhooks().await {
                    tracing::warn!(%error, "cannot send webhook deliveries");
                }
            }
        })
    }

    async fn send_due_webhooks(&self) -> Result<(), crate::GatewayError> {
        let now = crate::now_ms();
        let due = self.store().claim_webhooks(now, millis(CLAIM), 20).await?;
        if due.is_empty() {
            return Ok(());
        }
        let url = self.webhook_url().await?;
        for delivery in due {
            let attempt = match &url {
                Some(url) => post(url, &delivery.event).await,
                None => Err("no webhook is set".to_string()),
            };
            let attempts = delivery.attempts + 1;
            let now = crate::now_ms();
            let failure = match &attempt {
                Ok(()) => None,
                Err(error) if attempts >= MAX_ATTEMPTS || url.is_none() => {
                    tracing::warn!(delivery = %delivery.id, %error, "a webhook delivery was given up");
                    Some((error.as_str(), None))
                }
                Err(error) => {
                    tracing::info!(delivery = %delivery.id, %error, attempts, "a webhook delivery failed; it will be tried again");
                    Some((error.as_str(), Some(now + millis(retry_delay(attempts)))))
                }
            };
            self.store()
                .webhook_attempted(&delivery.id, now, failure)
                .await?;
        }
        Ok(())
    }
}

/// One attempt: a POST of the event, answered with a 2xx. The error names no address and no part
/// of the URL, which may hold a secret.
async fn post(url: &str, event: &str) -> Result<(), String> {
    let parsed = url::Url::parse(url).map_err(|_| "the webhook URL is not valid".to_string())?;
    switchboard_mcp::net::check_host(parsed.host_str().unwrap_or_default())
        .map_err(|forbidden| forbidden.to_string())?;
    let answer = switchboard_mcp::http::shared_http_client()
        .post(parsed)
        .timeout(ATTEMPT_TIMEOUT)
        .header("content-type", "application/json")
        .header(
            "user-agent",
            concat!("switchboard/", env!("CARGO_PKG_VERSION")),
        )
        .body(event.to_string())
        .send()
        .await
        .map_err(|error| {
            if error.is_timeout() {
                "the webhook did not answer in time".to_string()
            } else {
                "the webhook could not be reached".to_string()
            }
        })?;
    if answer.status().is_success() {
        Ok(())
    } else {
        Err(format!(
            "the webhook answered HTTP {}",
            answer.status().as_u16()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_wait_twice_as_long_each_time() {
        let delays: Vec<u64> = (1..MAX_ATTEMPTS)
            .map(|attempts| retry_delay(attempts).as_secs())
            .collect();
        assert_eq!(delays, [1, 2, 4, 8, 16, 32, 64]);
    }
}
