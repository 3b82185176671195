//! The last hour of tool calls per server, a minute at a time: calls, errors and the latency
//! histogram's buckets. Recorded by `Metrics::tool_call` with the counters of `/metrics`, for the
//! console's overview, which `/metrics` cannot give (its counters only grow).

use std::{
    collections::HashMap,
    sync::{Mutex, PoisonError},
};

/// The minutes a window keeps.
pub const MINUTES: usize = 60;
/// The latency buckets' upper bounds are `FIRST_BOUND * 2^i` seconds, as `/metrics`' histogram;
/// one more bucket holds what is slower than the last bound.
pub(crate) const FIRST_BOUND: f64 = 0.001;
pub(crate) const BOUNDS: usize = 17;

fn bound(index: usize) -> f64 {
    FIRST_BOUND * f64::from(1u32 << index)
}

#[derive(Clone, Copy, Default)]
struct Minute {
    /// Which minute since the epoch this slot holds; a slot of an older one counts as empty.
    at: i64,
    calls: u32,
    errors: u32,
    buckets: [u32; BOUNDS + 1],
}

/// One server's ring of minutes, indexed by the minute modulo [`MINUTES`].
struct Window([Minute; MINUTES]);

/// The windows of every server that had calls, by alias.
#[derive(Default)]
pub struct RecentCalls {
    servers: Mutex<HashMap<String, Window>>,
}

/// One server's last hour.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Hour {
    /// (calls, errors) per minute, oldest first, the current minute last.
    pub per_minute: Vec<(u32, u32)>,
    pub calls: u64,
    pub errors: u64,
    /// Latency quantiles in seconds, interpolated within their bucket as Prometheus's
    /// `histogram_quantile` does; `None` without calls.
    pub p50: Option<f64>,
    pub p99: Option<f64>,
}

impl std::fmt::Debug for RecentCalls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let servers = self.servers.lock().unwrap_or_else(PoisonError::into_inner);
        write!(f, "RecentCalls({} servers)", servers.len())
    }
}

impl RecentCalls {
    /// Counts one call of `server` ending in minute `minute` (since the epoch).
    pub fn record(&self, server: &str, ok: bool, seconds: f64, minute: i64) {
        let bucket = (0..BOUNDS)
            .find(|&index| seconds <= bound(index))
            .unwrap_or(BOUNDS);
        let mut servers = self.servers.lock().unwrap_or_else(PoisonError::into_inner);
        let window = match servers.get_mut(server) {
            Some(window) => window,
            None => servers
                .entry(server.to_string())
                .or_insert_with(|| Window([Minute::default(); MINUTES])),
        };
        let slot = &mut window.0[minute.rem_euclid(MINUTES as i64) as usize];
        if slot.at != minute {
            *slot = Minute {
                at: minute,
                ..Minute::default()
            };
        }
        slot.calls = slot.calls.saturating_add(1);
        if !ok {
            slot.errors = slot.errors.saturating_add(1);
        }
        slot.buckets[bucket] = slot.buckets[bucket].saturating_add(1);
    }

    /// The hour of `server` up to and including minute `now`.
    pub fn hour(&self, server: &str, now: i64) -> Hour {
        let servers = self.servers.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(window) = servers.get(server) else {
            return Hour {
                per_minute: vec![(0, 0); MINUTES],
                ..Hour::default()
            };
        };
        let mut hour = Hour::default();
        let mut buckets = [0u64; BOUNDS + 1];
        for minute in now - MINUTES as i64 + 1..=now {
            let slot = &window.0[minute.rem_euclid(MINUTES as i64) as usize];
            if slot.at != minute {
                hour.per_minute.push((0, 0));
                continue;
            }
            hour.per_minute.push((slot.calls, slot.errors));
            hour.calls += u64::from(slot.calls);
            hour.errors += u64::from(slot.errors);
            for (total, count) in buckets.iter_mut().zip(slot.buckets) {
                *total += u64::from(count);
            }
        }
        hour.p50 = quantile(&buckets, 0.5);
        hour.p99 = quantile(&buckets, 0.99);
        hour
    }
}

/// The `q` quantile of bucket counts: the bucket it falls in, linearly within its bounds; the
/// last bound when it falls beyond.
fn quantile(buckets: &[u64; BOUNDS + 1], q: f64) -> Option<f64> {
    let total: u64 = buckets.iter().sum();
    if total == 0 {
        return None;
    }
    let rank = q * total as f64;
    let mut below = 0u64;
    for (index, &count) in buckets.iter().enumerate() {
        if count > 0 && (below + count) as f64 >= rank {
            if index == BOUNDS {
                return Some(bound(BOUNDS - 1));
            }
            let lower = if index == 0 { 0.0 } else { bound(index - 1) };
            let within = (rank - below as f64) / count as f64;
            return Some(lower + (bound(index) - lower) * within);
        }
        below += count;
    }
    Some(bound(BOUNDS - 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_hour_counts_its_own_minutes_only() {
        let recent = RecentCalls::default();
        recent.record("a", true, 0.0005, 100);
        recent.record("a", false, 0.0005, 100);
        recent.record("a", true, 0.0005, 130);
        let hour = recent.hour("a", 130);
        assert_eq!((hour.calls, hour.errors), (3, 1));
        assert_eq!(hour.per_minute.len(), MINUTES);
        assert_eq!(hour.per_minute[MINUTES - 1], (1, 0));
        assert_eq!(hour.per_minute[MINUTES - 1 - 30], (2, 1));
        // An hour later minute 100 is out of the window, and its slot is taken by minute 160.
        recent.record("a", true, 0.0005, 160);
        let hour = recent.hour("a", 160);
        assert_eq!((hour.calls, hour.errors), (2, 0));
        assert_eq!(hour.per_minute[MINUTES - 1 - 30], (1, 0));
        // An hour with nothing, and a server never called.
        assert_eq!(recent.hour("a", 300).calls, 0);
        assert_eq!(recent.hour("a", 300).p50, None);
        assert_eq!(recent.hour("b", 160).per_minute, vec![(0, 0); MINUTES]);
    }

    #[test]
    fn quantiles_fall_in_their_buckets() {
        let recent = RecentCalls::default();
        // 98 fast calls (within 1 ms) and 2 slow ones (between 64 and 128 ms).
        for _ in 0..98 {
            recent.record("a", true, 0.0004, 7);
        }
        for _ in 0..2 {
            recent.record("a", true, 0.1, 7);
        }
        let hour = recent.hour("a", 7);
        let p50 = hour.p50.expect("p50");
        assert!(p50 > 0.0 && p50 <= 0.001, "{p50}");
        let p99 = hour.p99.expect("p99");
        assert!(p99 > 0.064 && p99 <= 0.128, "{p99}");
        // Beyond the last bound: the last bound.
        recent.record("slow", true, 1000.0, 7);
        assert_eq!(recent.hour("slow", 7).p99, Some(bound(BOUNDS - 1)));
    }
}
