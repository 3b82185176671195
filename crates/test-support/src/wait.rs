//! The one wait of the tests.

use std::{future::Future, time::Duration};

/// How long [`eventually`] waits at most. It only keeps a condition that never comes from hanging
/// a test; no test measures it.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// Waits until `check` holds, asking it again every `every`, and panics naming `what` when it
/// has not held within [`PATIENCE`]. For conditions with no event to await from outside what is
/// tested: a fixture's record of the calls it saw, a metric, a status.
pub async fn eventually<F, Fut>(what: impl std::fmt::Display, every: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let held = tokio::time::timeout(PATIENCE, async {
        while !check().await {
            tokio::time::sleep(every).await;
        }
    })
    .await;
    assert!(held.is_ok(), "waited in vain: {what}");
}
