//! Whether a request may go to an upstream now: its circuit breaker and its concurrency gate, the
//! same for typed and raw requests. A request is admitted with a [`Ticket`], which holds its slot
//! and says how it ended.

use std::sync::{
    Arc, Mutex, PoisonError,
    atomic::{AtomicUsize, Ordering},
};

use tokio::{sync::OwnedSemaphorePermit, time::Instant};

use crate::{UpstreamConfig, UpstreamError};

/// One upstream's breaker and gate.
#[derive(Debug)]
pub(crate) struct Admission {
    /// The upstream's name, for errors and logs.
    name: String,
    breaker: Mutex<Breaker>,
    /// Consecutive failures that open the circuit (0: never), and how long it stays open.
    threshold: u32,
    cooldown: std::time::Duration,
    /// Slots for requests running at once.
    slots: Arc<tokio::sync::Semaphore>,
    /// How many may wait for a slot, and how many do.
    max_queued: usize,
    queued: AtomicUsize,
    max_concurrent: usize,
}

/// The circuit breaker's state.
#[derive(Debug, Default)]
struct Breaker {
    consecutive_failures: u32,
    /// While set and in the future, requests fail fast.
    open_until: Option<Instant>,
    /// A probe is running after the cooldown: other requests still fail fast.
    probing: bool,
}

/// What the circuit breaker says of an upstream, for status and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum BreakerState {
    Closed,
    Open,
    HalfOpen,
}

impl BreakerState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Closed => "closed",
            Self::Open => "open",
            Self::HalfOpen => "half_open",
        }
    }
}

/// An admitted request: its slot, and whether it is the probe after a cooldown. Say how it
/// ended with [`Ticket::record`], or that it said nothing of the upstream with
/// [`Ticket::release`].
#[derive(Debug)]
pub(crate) struct Ticket<'a> {
    admission: &'a Admission,
    probe: bool,
    _slot: OwnedSemaphorePermit,
}

impl Admission {
    pub(crate) fn new(config: &UpstreamConfig) -> Self {
        Self {
            name: config.name.clone(),
            breaker: Mutex::default(),
            threshold: config.breaker_threshold,
            cooldown: config.breaker_cooldown,
            slots: Arc::new(tokio::sync::Semaphore::new(config.max_concurrent.max(1))),
            max_queued: config.max_queued,
            queued: AtomicUsize::new(0),
            max_concurrent: config.max_concurrent,
        }
    }

    fn breaker(&self) -> std::sync::MutexGuard<'_, Breaker> {
        self.breaker.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn state(&self) -> BreakerState {
        let breaker = self.breaker();
        match breaker.open_until {
            None => BreakerState::Closed,
            Some(until) if Instant::now() < until && !breaker.probing => BreakerState::Open,
            Some(_) => BreakerState::HalfOpen,
        }
    }

    /// Admits a request: fails fast while the circuit is open (one probe goes through once the
    /// cooldown is over), then waits for a slot when the queue has room, else fails as busy.
    pub(crate) async fn admit(&self) -> Result<Ticket<'_>, UpstreamError> {
        let probe = self.breaker_admits()?;
        match self.slot().await {
            Ok(slot) => Ok(Ticket {
                admission: self,
                probe,
                _slot: slot,
            }),
            Err(busy) => {
                self.release(probe);
                Err(busy)
            }
        }
    }

    fn breaker_admits(&self) -> Result<bool, UpstreamError> {
        let mut breaker = self.breaker();
        let Some(until) = breaker.open_until else {
            return Ok(false);
        };
        let now = Instant::now();
        if now < until || breaker.probing {
            return Err(UpstreamError::CircuitOpen {
                upstream: self.name.clone(),
                retry_in: until.saturating_duration_since(now),
            });
        }
        breaker.probing = true;
        Ok(true)
    }

    async fn slot(&self) -> Result<OwnedSemaphorePermit, UpstreamError> {
        if let Ok(permit) = self.slots.clone().try_acquire_owned() {
            return Ok(permit);
        }
        let queued = self.queued.fetch_add(1, Ordering::AcqRel);
        let busy = || UpstreamError::Busy {
            upstream: self.name.clone(),
            running: self.max_concurrent,
            queued,
        };
        if queued >= self.max_queued {
            self.queued.fetch_sub(1, Ordering::AcqRel);
            return Err(busy());
        }
        let permit = self.slots.clone().acquire_owned().await;
        self.queued.fetch_sub(1, Ordering::AcqRel);
        permit.map_err(|_| busy())
    }

    /// Lets the next request probe, when a probe ended without saying anything of the upstream.
    fn release(&self, probe: bool) {
        if probe {
            self.breaker().probing = false;
        }
    }

    /// Counts a result: an upstream failure toward opening the circuit; a cancellation says
    /// nothing; anything else closes it.
    fn record(&self, probe: bool, outcome: Result<(), &UpstreamError>) {
        if self.threshold == 0 {
            return;
        }
        let mut breaker = self.breaker();
        match outcome {
            Err(error) if error.is_upstream_failure() => {
                breaker.consecutive_failures += 1;
                if probe || breaker.consecutive_failures >= self.threshold {
                    if breaker.open_until.is_none() || probe {
                        tracing::warn!(upstream = %self.name, failures = breaker.consecutive_failures, "circuit opened");
                    }
                    breaker.open_until = Some(Instant::now() + self.cooldown);
                }
                breaker.probing = false;
            }
            // A probe cut short lets the next request probe.
            Err(UpstreamError::Cancelled { .. }) => breaker.probing = false,
            _ => {
                if breaker.open_until.is_some() {
                    tracing::info!(upstream = %self.name, "circuit closed");
                }
                *breaker = Breaker::default();
            }
        }
    }
}

impl Ticket<'_> {
    /// The request ended with `outcome`; its slot is freed.
    pub(crate) fn record(self, outcome: Result<(), &UpstreamError>) {
        self.admission.record(self.probe, outcome);
    }

    /// The request ended without reaching the upstream: nothing is counted.
    pub(crate) fn release(self) {
        self.admission.release(self.probe);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn admission(threshold: u32, max_concurrent: usize, max_queued: usize) -> Admission {
        let mut config = UpstreamConfig::stdio("gated", "true", Vec::new());
        config.breaker_threshold = threshold;
        config.breaker_cooldown = Duration::from_secs(30);
        config.max_concurrent = max_concurrent;
        config.max_queued = max_queued;
        Admission::new(&config)
    }

    fn failure() -> UpstreamError {
        UpstreamError::Closed {
            upstream: "gated".into(),
            method: "tools/call".into(),
            reason: "the connection closed".into(),
        }
    }

    /// The breaker opens after the threshold, fails fast through the cooldown, lets one probe
    /// through after it, reopens when the probe fails and closes when one succeeds.
    #[tokio::test(start_paused = true)]
    async fn the_breaker_opens_waits_out_its_cooldown_and_probes_once() {
        let gate = admission(2, 4, 4);
        for _ in 0..2 {
            gate.admit().await.expect("closed").record(Err(&failure()));
        }
        assert_eq!(gate.state(), BreakerState::Open);
        let refused = gate.admit().await.expect_err("open");
        assert!(
            matches!(refused, UpstreamError::CircuitOpen { .. }),
            "{refused}"
        );
        tokio::time::advance(Duration::from_secs(31)).await;
        let probe = gate.admit().await.expect("the probe");
        assert!(gate.admit().await.is_err(), "one probe at a time");
        probe.record(Err(&failure()));
        assert_eq!(gate.state(), BreakerState::Open);
        tokio::time::advance(Duration::from_secs(31)).await;
        gate.admit().await.expect("the next probe").record(Ok(()));
        assert_eq!(gate.state(), BreakerState::Closed);
        // A released probe lets the next request probe.
        for _ in 0..2 {
            gate.admit().await.expect("closed").record(Err(&failure()));
        }
        tokio::time::advance(Duration::from_secs(31)).await;
        gate.admit().await.expect("a probe").release();
        gate.admit().await.expect("another probe").record(Ok(()));
        assert_eq!(gate.state(), BreakerState::Closed);
    }

    /// Requests beyond the slots wait while the queue has room, and beyond that fail as busy.
    #[tokio::test(start_paused = true)]
    async fn requests_beyond_the_slots_queue_then_fail_as_busy() {
        let gate = Arc::new(admission(0, 1, 1));
        let running = gate.admit().await.expect("a slot");
        let waiting = {
            let gate = gate.clone();
            tokio::spawn(async move { gate.admit().await.map(|ticket| ticket.record(Ok(()))) })
        };
        // The waiting request has taken the one place in the queue once it is pending.
        while gate.queued.load(Ordering::Acquire) == 0 {
            tokio::task::yield_now().await;
        }
        let refused = gate.admit().await.expect_err("the queue is full");
        assert!(matches!(refused, UpstreamError::Busy { .. }), "{refused}");
        running.record(Ok(()));
        waiting
            .await
            .expect("joins")
            .expect("admitted once the slot was free");
    }
}
