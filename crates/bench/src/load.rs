//! The load generator the benches share: one client per concurrent caller, calling a tool back
//! to back, and the CPU time and memory of the processes it watches, read from /proc.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use serde_json::json;
use switchboard_mcp::{HttpConfig, RequestOptions, Upstream, UpstreamConfig, config::Endpoint};

pub(crate) struct Load {
    pub(crate) calls: usize,
    latencies: Vec<Duration>,
    elapsed: Duration,
    /// The CPU time each watched process spent while the calls were timed: not while the
    /// clients connected and warmed up, which no timed call would pay for.
    spent: Vec<CpuTime>,
}

impl Load {
    pub(crate) fn percentile(&self, p: f64) -> Duration {
        let mut sorted = self.latencies.clone();
        sorted.sort();
        sorted[((sorted.len() as f64 - 1.0) * p) as usize]
    }

    pub(crate) fn rate(&self) -> f64 {
        self.calls as f64 / self.elapsed.as_secs_f64()
    }

    /// The CPU time of the `index`th watched process per timed call, and the kernel's part of it.
    pub(crate) fn cpu_per_call(&self, index: usize) -> (Duration, Duration) {
        self.spent[index].per_call(self.calls)
    }

    /// Several loads of one path, as one: their calls, times and CPU added up.
    pub(crate) fn merged(loads: Vec<Load>) -> Load {
        let mut merged = Load {
            calls: 0,
            latencies: Vec::new(),
            elapsed: Duration::ZERO,
            spent: Vec::new(),
        };
        for load in loads {
            merged.calls += load.calls;
            merged.latencies.extend(load.latencies);
            merged.elapsed += load.elapsed;
            merged.spent.resize(load.spent.len(), CpuTime::default());
            for (total, spent) in merged.spent.iter_mut().zip(load.spent) {
                *total = total.plus(spent);
            }
        }
        merged
    }
}

/// One client per concurrent caller, each calling `tool` back to back for `duration` with
/// `token`, while the CPU time of the processes `watched` is taken.
pub(crate) async fn load(
    url: &str,
    tool: &str,
    token: &str,
    concurrency: usize,
    duration: Duration,
    watched: &[u32],
) -> anyhow::Result<Load> {
    let mut clients = Vec::new();
    for index in 0..concurrency {
        let mut http = HttpConfig::new(url);
        http.headers
            .push(("Authorization".into(), format!("Bearer {token}")));
        let config = UpstreamConfig::new(format!("load-{index}"), Endpoint::Http(http));
        clients.push(Upstream::connect(config).await?);
    }
    // Warm-up: one call each.
    for client in &clients {
        call(client, tool).await?;
    }
    let before: Vec<CpuTime> = watched.iter().map(|pid| CpuTime::of(*pid)).collect();
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let workers: Vec<_> = clients
        .into_iter()
        .map(|client| {
            let stop = stop.clone();
            let tool = tool.to_string();
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let begun = Instant::now();
                    if call(&client, &tool).await.is_ok() {
                        latencies.push(begun.elapsed());
                    }
                }
                (latencies, client)
            })
        })
        .collect();
    tokio::time::sleep(duration).await;
    stop.store(true, Ordering::Relaxed);
    let mut latencies = Vec::new();
    let mut clients = Vec::new();
    for worker in workers {
        let (done, client) = worker.await?;
        latencies.extend(done);
        clients.push(client);
    }
    let elapsed = started.elapsed();
    let spent = watched
        .iter()
        .zip(before)
        .map(|(pid, before)| CpuTime::of(*pid).since(before))
        .collect();
    // The clients close after the CPU is taken: their goodbyes are no timed call's.
    drop(clients);
    Ok(Load {
        calls: latencies.len(),
        latencies,
        elapsed,
        spent,
    })
}

async fn call(client: &Upstream, tool: &str) -> anyhow::Result<()> {
    let arguments = json!({"message": "hello"}).as_object().cloned();
    client
        .call_tool(tool, arguments, RequestOptions::default())
        .await?;
    Ok(())
}

/// CPU time of a process, from /proc/PID/stat.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct CpuTime {
    user: Duration,
    system: Duration,
}

impl CpuTime {
    pub(crate) fn of(pid: u32) -> Self {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .map(|(_, rest)| rest.split_whitespace().collect())
            .unwrap_or_default();
        // The kernel's USER_HZ is 100 on Linux.
        let field = |index: usize| {
            Duration::from_millis(
                fields
                    .get(index)
                    .and_then(|ticks| ticks.parse::<u64>().ok())
                    .unwrap_or(0)
                    * 10,
            )
        };
        CpuTime {
            user: field(11),
            system: field(12),
        }
    }

    /// What was spent since `before`.
    fn since(self, before: CpuTime) -> CpuTime {
        CpuTime {
            user: self.user.saturating_sub(before.user),
            system: self.system.saturating_sub(before.system),
        }
    }

    fn plus(self, other: CpuTime) -> CpuTime {
        CpuTime {
            user: self.user + other.user,
            system: self.system + other.system,
        }
    }

    /// Per call, and the kernel's part of it.
    fn per_call(self, calls: usize) -> (Duration, Duration) {
        let calls = calls.max(1) as u32;
        ((self.user + self.system) / calls, self.system / calls)
    }
}

/// A /proc/PID/status field in KiB (VmRSS, VmHWM).
pub(crate) fn status_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|line| {
            line.strip_prefix(field)?
                .trim_start_matches(':')
                .trim()
                .strip_suffix("kB")?
                .trim()
                .parse()
                .ok()
        })
        .unwrap_or(0)
}
