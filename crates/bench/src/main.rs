//! `switchboard-bench`: measures Switchboard's own cost against direct connections.
//!
//! `run-loop`: the agent loop's cost per step, with the scripted LLM answering at once and an
//! in-process rmcp upstream, and the time from a run's start to its first LLM call.
#![forbid(unsafe_code)]

mod alternate;
mod forwarder;
mod load;
mod minimal_forwarder;
mod proxy;
mod replicas;

use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use serde_json::json;
use switchboard_agent::{EventSink, RunSpec, RunnerSettings, run, spec::AgentSpec};
use switchboard_mcp::{RequestOptions, Upstream, UpstreamConfig};
use switchboard_test_support::{InProcessServer, Reply, ScriptedLlm};
use tokio_util::sync::CancellationToken;

#[derive(Debug, Parser)]
struct Cli {
    #[command(subcommand)]
    bench: Bench,
}

#[derive(Debug, Subcommand)]
enum Bench {
    /// `tools/call` directly against an upstream, then through `switchboard serve`.
    Proxy {
        /// The `switchboard` binary of the `dist` profile (`cargo build --profile dist`).
        #[arg(long, default_value = "target/dist/switchboard")]
        binary: std::path::PathBuf,
        /// Seconds of load per measurement.
        #[arg(long, default_value_t = 5)]
        seconds: u64,
        /// Idle downstream sessions opened to measure their memory.
        #[arg(long, default_value_t = 200)]
        idle_sessions: usize,
        /// The worker threads of the gateway's runtime and the forwarder's (tokio's
        /// `TOKIO_WORKER_THREADS`); each program's own defaults when unset.
        #[arg(long)]
        worker_threads: Option<usize>,
        /// Another build of `switchboard` (say, of an earlier commit), served beside the first
        /// and called with the admin token in the same alternated phases, so that the two builds
        /// compare under one run's conditions.
        #[arg(long)]
        before: Option<std::path::PathBuf>,
    },
    /// `tools/call` through one replica on PostgreSQL, then through HAProxy in front of three.
    Replicas {
        /// The `switchboard` binary of the `dist` profile.
        #[arg(long, default_value = "target/dist/switchboard")]
        binary: std::path::PathBuf,
        /// Seconds of load per measurement.
        #[arg(long, default_value_t = 5)]
        seconds: u64,
        /// The HAProxy configuration to run (the shipped one by default).
        #[arg(long, default_value = "deploy/haproxy.cfg")]
        haproxy_config: std::path::PathBuf,
    },
    /// A bare forwarder to `upstream` (the proxy bench's floor), run by `proxy` as a process of
    /// its own; prints its URL, then serves until killed.
    Forward {
        #[arg(long)]
        upstream: String,
        /// The hand-written relay (`minimal_forwarder`) instead of axum and hyper.
        #[arg(long)]
        minimal: bool,
    },
    /// An `echo` server on stdin and stdout: the stdio upstream that `proxy` registers.
    StdioEcho,
    /// The agent loop's own cost per step.
    RunLoop {
        /// Tool-calling steps per run.
        #[arg(long, default_value_t = 50)]
        steps: u32,
        /// Runs measured (after one warm-up run).
        #[arg(long, default_value_t = 20)]
        runs: usize,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    switchboard_mcp::net::install_crypto_provider();
    match Cli::parse().bench {
        Bench::RunLoop { steps, runs } => run_loop(steps, runs).await,
        Bench::StdioEcho => switchboard_test_support::serve_echo_over_stdio().await,
        Bench::Forward { upstream, minimal } if minimal => {
            minimal_forwarder::serve(&upstream).await
        }
        Bench::Forward { upstream, .. } => forwarder::serve(&upstream).await,
        Bench::Replicas {
            binary,
            seconds,
            haproxy_config,
        } => {
            let plan = replicas::Plan {
                duration: Duration::from_secs(seconds),
                haproxy_config,
            };
            replicas::run(&binary, &plan).await
        }
        Bench::Proxy {
            binary,
            seconds,
            idle_sessions,
            worker_threads,
            before,
        } => {
            let plan = proxy::Plan {
                duration: Duration::from_secs(seconds),
                idle_sessions,
                worker_threads,
                before,
            };
            proxy::run(&binary, &plan).await
        }
    }
}

fn spec_for(llm: &ScriptedLlm, server: &InProcessServer, steps: u32) -> anyhow::Result<RunSpec> {
    let yaml = format!(
        "model: bench\nbase_url: {}\nmax_steps: {}\ntools:\n  - kind: mcp\n    server: {}\n",
        llm.base_url(),
        steps + 1,
        server.url
    );
    let settings = RunnerSettings {
        max_steps_limit: steps + 1,
        ..RunnerSettings::default()
    };
    AgentSpec::from_yaml(&yaml)
        .and_then(|spec| spec.resolve("bench".into(), None, Default::default(), &settings))
        .map_err(anyhow::Error::msg)
}

fn script(steps: u32, runs: usize) -> Vec<Reply> {
    let mut replies = Vec::new();
    for _ in 0..runs {
        for _ in 0..steps {
            replies.push(Reply::call("echo", json!({"message": "hello"})));
        }
        replies.push(Reply::text("done"));
    }
    replies
}

/// The same round trips without the loop: one chat completion and one `tools/call`, straight.
async fn direct_step(
    http: &reqwest::Client,
    llm: &ScriptedLlm,
    upstream: &Upstream,
) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let body = json!({"model": "bench", "messages": [{"role": "user", "content": "bench"}]});
    http.post(format!("{}/chat/completions", llm.base_url()))
        .json(&body)
        .send()
        .await?
        .bytes()
        .await?;
    let arguments = json!({"message": "hello"}).as_object().cloned();
    upstream
        .call_tool("echo", arguments, RequestOptions::default())
        .await?;
    Ok(started.elapsed())
}

/// Runs one spec to its final answer: how long it took, and how long until its first LLM call.
async fn timed_run(
    llm: &ScriptedLlm,
    spec: RunSpec,
    http: &reqwest::Client,
) -> anyhow::Result<(Duration, Duration)> {
    let before = llm.requests().len();
    let started = Instant::now();
    let result = run(
        spec,
        http.clone(),
        EventSink::default(),
        CancellationToken::new(),
    )
    .await;
    let total = started.elapsed();
    anyhow::ensure!(
        result.final_answer == "done",
        "the run did not finish: {result:?}"
    );
    Ok((total, llm.requests()[before].at.duration_since(started)))
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

async fn run_loop(steps: u32, runs: usize) -> anyhow::Result<()> {
    let server = InProcessServer::start().await?;
    let http = switchboard_mcp::http::shared_http_client();

    // Direct: the round trips of one step, measured on their own.
    let direct_llm = ScriptedLlm::start(script(steps, runs + 1)).await;
    let upstream = Upstream::connect(UpstreamConfig::http("direct", server.url.clone())).await?;
    let mut direct = Vec::new();
    for _ in 0..(steps as usize * (runs + 1)) {
        direct.push(direct_step(&http, &direct_llm, &upstream).await?);
    }
    let direct_step_time = median(direct);

    // Through the loop.
    let llm = ScriptedLlm::start(script(steps, runs + 1)).await;
    let mut per_step = Vec::new();
    let mut first_call = Vec::new();
    for index in 0..=runs {
        let (total, first) = timed_run(&llm, spec_for(&llm, &server, steps)?, &http).await?;
        if index > 0 {
            per_step.push(total / (steps + 1));
            first_call.push(first);
        }
    }
    // A registered server: the gateway's session is already open, and the run shares it.
    let shared = Upstream::connect(UpstreamConfig::http("registered", server.url.clone())).await?;
    let mut first_call_registered = Vec::new();
    let llm_registered = ScriptedLlm::start(script(0, runs + 1)).await;
    for index in 0..=runs {
        let mut spec = spec_for(&llm_registered, &server, 0)?;
        spec.servers[0].shared = Some(shared.clone());
        let (_, first) = timed_run(&llm_registered, spec, &http).await?;
        if index > 0 {
            first_call_registered.push(first);
        }
    }

    let loop_step = median(per_step);
    let overhead = loop_step.saturating_sub(direct_step_time);
    println!("steps per run: {steps}, runs: {runs}");
    println!("direct round trips per step (median): {direct_step_time:?}");
    println!("through the loop, per step (median):  {loop_step:?}");
    println!("loop's own time per step:              {overhead:?}");
    println!(
        "ratio loop/direct:                     {:.2}",
        loop_step.as_secs_f64() / direct_step_time.as_secs_f64()
    );
    println!(
        "run start to first LLM call, server connected by the run (median): {:?}",
        median(first_call)
    );
    println!(
        "run start to first LLM call, already-registered server (median):   {:?}",
        median(first_call_registered)
    );
    Ok(())
}
