//! How long one request to an upstream may take, and how it ends, written once for typed and
//! raw requests: it times out after `timeout` without news, each progress report starts that
//! wait again, and it never runs past the hard limit; its caller's cancel ends it at once.

use std::{
    future::Future,
    sync::atomic::{AtomicU64, Ordering},
    time::Duration,
};

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// The deadline of one request.
#[derive(Debug)]
pub(crate) struct Deadline {
    started: Instant,
    timeout: Duration,
    /// At least `timeout`.
    hard_limit: Duration,
    /// When it expires, in nanoseconds after `started`. Atomic so that a progress callback can
    /// move it while [`Self::expired`] waits for it.
    at: AtomicU64,
}

impl Deadline {
    /// Starts now.
    pub(crate) fn new(timeout: Duration, hard_limit: Duration) -> Self {
        Self {
            started: Instant::now(),
            timeout,
            hard_limit: hard_limit.max(timeout),
            at: AtomicU64::new(nanos(timeout)),
        }
    }

    /// Progress proves the request is alive: the wait for news starts again, up to the hard
    /// limit.
    pub(crate) fn progressed(&self) {
        let next = (self.started.elapsed() + self.timeout).min(self.hard_limit);
        self.at.store(nanos(next), Ordering::Relaxed);
    }

    /// Resolves once the deadline has passed, with how long the request was given.
    pub(crate) async fn expired(&self) -> Duration {
        loop {
            let limit = Duration::from_nanos(self.at.load(Ordering::Relaxed));
            tokio::time::sleep_until(self.started + limit).await;
            // Progress may have moved it while this slept.
            if self.started.elapsed() >= Duration::from_nanos(self.at.load(Ordering::Relaxed)) {
                return limit;
            }
        }
    }
}

fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

/// How a request ended before its answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cut {
    /// Its caller cancelled it.
    Cancelled,
    /// Its deadline passed, after it was given this long.
    TimedOut(Duration),
}

/// Runs `exchange` until it answers, its caller cancels (`cancel`), or `deadline` passes.
pub(crate) async fn governed<T>(
    exchange: impl Future<Output = T>,
    cancel: Option<&CancellationToken>,
    deadline: &Deadline,
) -> Result<T, Cut> {
    let cancelled = async {
        match cancel {
            Some(cancel) => cancel.cancelled().await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        answered = exchange => Ok(answered),
        () = cancelled => Err(Cut::Cancelled),
        given = deadline.expired() => Err(Cut::TimedOut(given)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    /// An exchange that never answers, reporting progress at each of `reports` (seconds after the
    /// start) on `deadline`.
    async fn silent_after(reports: &[u64], deadline: &Deadline) {
        let started = Instant::now();
        for at in reports {
            tokio::time::sleep_until(started + SECOND * (*at as u32)).await;
            deadline.progressed();
        }
        std::future::pending::<()>().await;
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_request_times_out_after_its_timeout() {
        let started = Instant::now();
        let deadline = Deadline::new(10 * SECOND, 60 * SECOND);
        let ended = governed(silent_after(&[], &deadline), None, &deadline).await;
        assert_eq!(ended, Err(Cut::TimedOut(10 * SECOND)));
        assert_eq!(started.elapsed(), 10 * SECOND);
    }

    #[tokio::test(start_paused = true)]
    async fn progress_starts_the_wait_again() {
        let started = Instant::now();
        let deadline = Deadline::new(10 * SECOND, 60 * SECOND);
        let ended = governed(silent_after(&[8, 15], &deadline), None, &deadline).await;
        assert_eq!(ended, Err(Cut::TimedOut(25 * SECOND)));
        assert_eq!(started.elapsed(), 25 * SECOND);
    }

    #[tokio::test(start_paused = true)]
    async fn no_progress_carries_a_request_past_the_hard_limit() {
        let started = Instant::now();
        let deadline = Deadline::new(10 * SECOND, 30 * SECOND);
        let reports: Vec<u64> = (1..100).collect();
        let ended = governed(silent_after(&reports, &deadline), None, &deadline).await;
        assert_eq!(ended, Err(Cut::TimedOut(30 * SECOND)));
        assert_eq!(started.elapsed(), 30 * SECOND);
        // A hard limit below the timeout is the timeout.
        let short = Deadline::new(10 * SECOND, SECOND);
        let ended = governed(silent_after(&[5], &short), None, &short).await;
        assert_eq!(ended, Err(Cut::TimedOut(10 * SECOND)));
    }

    #[tokio::test(start_paused = true)]
    async fn an_answer_or_a_cancel_ends_it_first() {
        let deadline = Deadline::new(10 * SECOND, 60 * SECOND);
        let answer = async {
            tokio::time::sleep(9 * SECOND).await;
            "answered"
        };
        assert_eq!(governed(answer, None, &deadline).await, Ok("answered"));

        let cancel = CancellationToken::new();
        let deadline = Deadline::new(10 * SECOND, 60 * SECOND);
        let started = Instant::now();
        let canceller = {
            let cancel = cancel.clone();
            tokio::spawn(async move {
                tokio::time::sleep(3 * SECOND).await;
                cancel.cancel();
            })
        };
        let ended = governed(std::future::pending::<()>(), Some(&cancel), &deadline).await;
        assert_eq!(ended, Err(Cut::Cancelled));
        assert_eq!(started.elapsed(), 3 * SECOND);
        canceller.await.expect("cancels");
    }
}
