//! `tools/call` through `/mcp/echo` of one replica on PostgreSQL, then through HAProxy (the
//! shipped `deploy/haproxy.cfg`, round-robin) in front of three replicas on the same store,
//! whose sessions move from replica to replica on every request. Each replica's CPU time is
//! read from /proc, so that the cost per call of the three together is known. On a machine of
//! few cores the three compete for them: this measures what spreading costs, not how it scales.

use std::{path::Path, time::Duration};

use anyhow::Context as _;
use serde_json::json;
use switchboard_test_support::{InProcessServer, LoadBalancer, Switchboard, postgres};

use crate::{load::load, proxy::start_process};

const TOKEN: &str = switchboard_test_support::ADMIN_TOKEN;

pub struct Plan {
    /// Of each measurement.
    pub duration: Duration,
    /// The shipped HAProxy configuration.
    pub haproxy_config: std::path::PathBuf,
}

pub async fn run(binary: &Path, plan: &Plan) -> anyhow::Result<()> {
    let upstream = InProcessServer::start().await?;
    let database = format!("switchboard_bench_{}", std::process::id());
    let url = postgres::fresh_database(&database);
    let key = "4e".repeat(32);
    let env = [("SWITCHBOARD_SECRET_KEY", key.as_str())];
    let args = ["--database", url.as_str()];
    let mut replicas = vec![start_process(binary, &args, None, &env).await?];
    let (status, created) = replicas[0]
        .send_json(
            reqwest::Method::POST,
            "/api/mcp-servers",
            Some(
                &json!({"manifest": {"name": "Echo", "remoteConfig": {"url": upstream.url}},
                "alias": "echo"}),
            ),
        )
        .await?;
    anyhow::ensure!(status == 201, "registering failed: {created}");
    println!(
        "machine: {} cores; each load runs {:?}; the store is the local PostgreSQL",
        std::thread::available_parallelism()?.get(),
        plan.duration
    );
    println!();
    println!(
        "| path | concurrency | calls/s | ratio to one replica | p50 | p99 | CPU/call, all replicas | CPU/call of each replica |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---|");
    let mut single = Vec::new();
    for concurrency in [1, 64] {
        let pids = [replicas[0].pid().context("pid")?];
        let (rate, row) = measure(&replicas[0].url("/mcp/echo"), &pids, concurrency, plan).await?;
        println!("| one replica | {concurrency} | {rate:.0} | 1.00 | {row}");
        single.push(rate);
    }
    for _ in 0..2 {
        replicas.push(start_process(binary, &args, None, &env).await?);
    }
    let haproxy = LoadBalancer::start(&replicas, &plan.haproxy_config).await?;
    let pids: Vec<u32> = replicas.iter().filter_map(Switchboard::pid).collect();
    for (index, concurrency) in [1, 64].into_iter().enumerate() {
        let (rate, row) = measure(&haproxy.url("/mcp/echo"), &pids, concurrency, plan).await?;
        println!(
            "| HAProxy, three replicas | {concurrency} | {rate:.0} | {:.2} | {row}",
            rate / single[index]
        );
    }
    drop(replicas);
    postgres::psql(&format!("DROP DATABASE {database} WITH (FORCE)"));
    Ok(())
}

/// One load at `url`: its rate, and the rest of its table row (latencies, CPU per call of the
/// processes `pids` together and of each).
async fn measure(
    url: &str,
    pids: &[u32],
    concurrency: usize,
    plan: &Plan,
) -> anyhow::Result<(f64, String)> {
    let through = load(url, "echo", TOKEN, concurrency, plan.duration, pids).await?;
    let each: Vec<Duration> = (0..pids.len())
        .map(|index| through.cpu_per_call(index).0)
        .collect();
    let total: Duration = each.iter().sum();
    let each = each
        .iter()
        .map(|cpu| format!("{cpu:?}"))
        .collect::<Vec<_>>()
        .join(", ");
    let row = format!(
        "{:?} | {:?} | {total:?} | {each} |",
        through.percentile(0.5),
        through.percentile(0.99)
    );
    Ok((through.rate(), row))
}
