//! `tools/call` directly against an in-process rmcp upstream, then through a bare forwarder (the
//! floor of any proxy on this stack), and through `/mcp/{alias}` and `/mcp` of a real
//! `switchboard serve` process, at concurrency 1 and 64; and through `/mcp/echo-stdio`, the
//! same tool served by a child over stdio (this program as `stdio-echo`); and through
//! `/mcp/echo` again as a signed-in user whose grant the policy checks on every call; and, when
//! given another build (`--before`), through its `/mcp/echo` too. The bare forwarder, the admin
//! token, the user and the other build are measured in alternated phases, so that their ratios
//! hold for one run's conditions. The gateway's own CPU time and peak RSS are read from
//! /proc (`crate::load`), so that they are the gateway's alone.

use std::{
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use anyhow::Context as _;
use serde_json::json;
use switchboard_test_support::{InProcessServer, Switchboard};

use crate::{
    alternate::{Subject, alternate},
    load::{Load, load, status_kib},
};

const TOKEN: &str = switchboard_test_support::ADMIN_TOKEN;

/// A `switchboard serve` process with the upstream registered as `echo`, its pid, and how long
/// it took to answer `healthz` after spawn.
async fn start_gateway(
    binary: &Path,
    upstream_url: &str,
    worker_threads: Option<&str>,
) -> anyhow::Result<(Switchboard, u32, Duration)> {
    let (gateway, ready) = start_timed(binary, worker_threads).await?;
    let pid = gateway.pid().context("gateway pid")?;
    let (status, created) = gateway
        .send_json(
            reqwest::Method::POST,
            "/api/mcp-servers",
            Some(&json!({"manifest": {"name": "Echo", "remoteConfig": {"url": upstream_url}}, "alias": "echo"})),
        )
        .await?;
    anyhow::ensure!(status == 201, "registering failed: {created}");
    // The same tool from a child's stdio: this program, as `stdio-echo`.
    let bench = std::env::current_exe()?.display().to_string();
    let (status, created) = gateway
        .send_json(
            reqwest::Method::POST,
            "/api/mcp-servers",
            Some(
                &json!({"manifest": {"name": "Echo over stdio", "runtime": "command",
                "commandConfig": {"command": bench, "args": ["stdio-echo"]}},
                "alias": "echo-stdio"}),
            ),
        )
        .await?;
    anyhow::ensure!(
        status == 201,
        "registering the stdio server failed: {created}"
    );
    Ok((gateway, pid, ready))
}

/// A `switchboard serve` process on a fresh data directory with no other arguments, and how
/// long it took to answer `healthz` after spawn.
async fn start_timed(
    binary: &Path,
    worker_threads: Option<&str>,
) -> anyhow::Result<(Switchboard, Duration)> {
    let started = Instant::now();
    let gateway = start_process(binary, &[], worker_threads, &[]).await?;
    Ok((gateway, started.elapsed()))
}

/// A `switchboard serve` process with `args` and `env`, at the default log level, once it
/// answers `healthz`.
pub(crate) async fn start_process(
    binary: &Path,
    args: &[&str],
    worker_threads: Option<&str>,
    env: &[(&str, &str)],
) -> anyhow::Result<Switchboard> {
    // The default log level, as in production: the test harness otherwise logs at info.
    let mut all = vec![("RUST_LOG", "warn,switchboard_api=info")];
    all.extend(worker_threads.map(|n| ("TOKIO_WORKER_THREADS", n)));
    all.extend_from_slice(env);
    let gateway = Switchboard::start(binary, args, &all)
        .await
        .context("starting switchboard serve")?;
    let client = switchboard_test_support::http_client();
    loop {
        if client.get(gateway.url("/healthz")).send().await.is_ok() {
            return Ok(gateway);
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// An access token for `/mcp/echo` of a user who signed in and holds "Full access" of `echo`
/// (not an admin): what a user's client presents, judged with the user's grants on every call.
async fn signed_in_token(gateway: &Switchboard) -> anyhow::Result<String> {
    use switchboard_test_support::oauth;
    let password = "the bench user's password";
    let (status, made) = gateway
        .send_json(
            reqwest::Method::POST,
            "/api/users",
            Some(&json!({"username": "bench", "password": password})),
        )
        .await?;
    anyhow::ensure!(status == 201, "adding the user failed: {made}");
    let (_, permissions) = gateway
        .send_json(
            reqwest::Method::GET,
            "/api/mcp-servers/echo/permissions",
            None,
        )
        .await?;
    let full = permissions["items"]
        .as_array()
        .and_then(|items| items.iter().find(|p| p["label"] == "Full access"))
        .context("no Full access permission")?;
    let (status, granted) = gateway
        .send_json(
            reqwest::Method::POST,
            "/api/grants",
            Some(&json!({"permission": full["id"], "user": "bench"})),
        )
        .await?;
    anyhow::ensure!(status == 201, "granting failed: {granted}");
    let client_id = oauth::register_client(gateway).await;
    let mut browser = oauth::Browser::new(gateway);
    let signed_in = browser.sign_in("bench", password).await;
    anyhow::ensure!(
        signed_in.status == 303,
        "signing in failed: {}",
        signed_in.body
    );
    let tokens = oauth::tokens_for(gateway, &mut browser, &client_id, "/mcp/echo", "mcp").await;
    tokens["access_token"]
        .as_str()
        .map(str::to_string)
        .context("no access token")
}

/// The bare forwarder (see `crate::forwarder`) in a process of its own: the child, its pid and
/// its URL. It dies with the child handle.
async fn start_forwarder(
    upstream_url: &str,
    worker_threads: Option<&str>,
    minimal: bool,
) -> anyhow::Result<(tokio::process::Child, u32, String)> {
    use tokio::io::AsyncBufReadExt as _;
    let mut command = tokio::process::Command::new(std::env::current_exe()?);
    command.env_remove("TOKIO_WORKER_THREADS");
    if let Some(n) = worker_threads {
        command.env("TOKIO_WORKER_THREADS", n);
    }
    let mut child = command
        .args(["forward", "--upstream", upstream_url])
        .args(minimal.then_some("--minimal"))
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("starting the forwarder")?;
    let pid = child.id().context("forwarder pid")?;
    let stdout = child.stdout.take().context("forwarder stdout")?;
    let url = tokio::io::BufReader::new(stdout)
        .lines()
        .next_line()
        .await?
        .context("the forwarder printed no URL")?;
    Ok((child, pid, url))
}

/// What the proxy bench runs.
pub struct Plan {
    /// Of each measurement.
    pub duration: Duration,
    /// Opened to measure their memory.
    pub idle_sessions: usize,
    /// The gateway's and the forwarder's runtime workers; each program's own defaults when
    /// `None`.
    pub worker_threads: Option<usize>,
    /// Another build, called with the admin token beside this one (see the module's doc).
    pub before: Option<PathBuf>,
}

pub async fn run(binary: &Path, plan: &Plan) -> anyhow::Result<()> {
    let Plan {
        duration,
        idle_sessions,
        worker_threads,
        ref before,
    } = *plan;
    let workers = worker_threads.map(|n| n.to_string());
    let workers = workers.as_deref();
    let upstream = InProcessServer::start().await?;
    let (gateway, pid, ready) = start_gateway(binary, &upstream.url, workers).await?;
    // The first start may read the binary from disk; later ones, each on a fresh data directory
    // (a secret key made, the first admin's password hashed), show the gateway's own start.
    let mut restarts = Vec::new();
    for _ in 0..MORE_STARTS {
        restarts.push(start_timed(binary, workers).await?.1);
    }
    let user_token = signed_in_token(&gateway).await?;
    let before = match before {
        Some(binary) => {
            let (gateway, pid, _) = start_gateway(binary, &upstream.url, workers).await?;
            let echo = gateway.url("/mcp/echo");
            Some((gateway, pid, binary.display().to_string(), echo))
        }
        None => None,
    };
    let (_forwarder, forwarder_pid, forwarder_url) =
        start_forwarder(&upstream.url, workers, false).await?;
    let (_minimal, minimal_pid, minimal_url) =
        start_forwarder(&upstream.url, workers, true).await?;
    println!(
        "machine: {} cores; each load runs {duration:?}; proxy worker threads: {}",
        std::thread::available_parallelism()?.get(),
        workers.unwrap_or("the defaults")
    );
    println!(
        "switchboard serve ready (healthz answers) after spawn: {ready:?}; then on {MORE_STARTS} more starts {restarts:?}"
    );
    println!();
    println!(
        "| path | concurrency | calls/s | ratio | p50 | p99 | proxy CPU/call | of it in the kernel |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    let mut http_peak = 0;
    let mut before_peak = 0;
    let mut compared = Vec::new();
    for concurrency in [1, 64] {
        let direct = load(&upstream.url, "echo", TOKEN, concurrency, duration, &[]).await?;
        println!(
            "| direct | {concurrency} | {:.0} | 1.00 | {:?} | {:?} | — | — |",
            direct.rate(),
            direct.percentile(0.5),
            direct.percentile(0.99)
        );
        let row = |path: &str, through: &Load| {
            let (cpu, kernel) = through.cpu_per_call(0);
            println!(
                "| {path} | {concurrency} | {:.0} | {:.2} | {:?} | {:?} | {cpu:?} | {kernel:?} |",
                through.rate(),
                through.rate() / direct.rate(),
                through.percentile(0.5),
                through.percentile(0.99),
            );
            cpu
        };
        let through = load(
            &minimal_url,
            "echo",
            TOKEN,
            concurrency,
            duration,
            &[minimal_pid],
        )
        .await?;
        row("minimal forwarder", &through);
        let echo = gateway.url("/mcp/echo");
        let mut subjects = vec![
            Subject {
                url: &forwarder_url,
                token: TOKEN,
                pid: forwarder_pid,
            },
            Subject {
                url: &echo,
                token: TOKEN,
                pid,
            },
            Subject {
                url: &echo,
                token: &user_token,
                pid,
            },
        ];
        if let Some((_, before_pid, _, url)) = &before {
            subjects.push(Subject {
                url,
                token: TOKEN,
                pid: *before_pid,
            });
        }
        let mut measured = alternate(&subjects, concurrency, duration)
            .await?
            .into_iter();
        let (Some(forwarder), Some(admin), Some(user)) =
            (measured.next(), measured.next(), measured.next())
        else {
            anyhow::bail!("a subject went unmeasured");
        };
        let forwarder_cpu = row(
            &format!("bare forwarder ({})", forwarder.phases),
            &forwarder.load,
        );
        let admin_cpu = row(
            &format!("/mcp/echo, the admin token ({})", admin.phases),
            &admin.load,
        );
        let user_cpu = row(
            &format!("/mcp/echo, a signed-in user with a grant ({})", user.phases),
            &user.load,
        );
        let before_cpu = match (measured.next(), &before) {
            (Some(earlier), Some((_, before_pid, binary, _))) => {
                let cpu = row(
                    &format!(
                        "/mcp/echo of {binary}, the admin token ({})",
                        earlier.phases
                    ),
                    &earlier.load,
                );
                if concurrency == 64 {
                    before_peak = status_kib(*before_pid, "VmHWM");
                }
                Some(cpu)
            }
            _ => None,
        };
        compared.push((concurrency, admin_cpu, user_cpu, forwarder_cpu, before_cpu));
        let through = load(
            &gateway.url("/mcp"),
            "echo__echo",
            TOKEN,
            concurrency,
            duration,
            &[pid],
        )
        .await?;
        row("/mcp", &through);
        if concurrency == 64 {
            // The peak of the HTTP upstream's loads alone, before the stdio one adds its own.
            http_peak = status_kib(pid, "VmHWM");
        }
        let stdio = gateway.url("/mcp/echo-stdio");
        let through = load(&stdio, "echo", TOKEN, concurrency, duration, &[pid]).await?;
        row("/mcp/echo-stdio", &through);
    }
    println!();
    let percent =
        |over: Duration, under: Duration| (over.as_secs_f64() / under.as_secs_f64() - 1.0) * 100.0;
    for (concurrency, admin, user, forwarder, before) in compared {
        println!(
            "concurrency {concurrency}: a signed-in user's CPU per call {:+.1} % against the admin token's; the admin token's {:.2}× the bare forwarder's",
            percent(user, admin),
            admin.as_secs_f64() / forwarder.as_secs_f64(),
        );
        if let Some(before) = before {
            println!(
                "concurrency {concurrency}: the admin token's CPU per call {:+.1} % against the build before's, which is {:.2}× the bare forwarder's",
                percent(admin, before),
                before.as_secs_f64() / forwarder.as_secs_f64(),
            );
        }
    }
    println!();
    println!("gateway peak RSS under the HTTP upstream's loads: {http_peak} KiB");
    if before.is_some() {
        println!(
            "the build before's peak RSS under its loads (the admin token's only): {before_peak} KiB"
        );
    }
    println!(
        "gateway peak RSS under every load: {} KiB (now {} KiB of heap and {} KiB of mapped files)",
        status_kib(pid, "VmHWM"),
        status_kib(pid, "RssAnon"),
        status_kib(pid, "RssFile")
    );
    println!(
        "bare forwarder peak RSS under load: {} KiB (now {} KiB of heap and {} KiB of mapped files)",
        status_kib(forwarder_pid, "VmHWM"),
        status_kib(forwarder_pid, "RssAnon"),
        status_kib(forwarder_pid, "RssFile")
    );
    println!(
        "calls forwarded on the raw path: {}",
        metric(&gateway, "switchboard_raw_calls_total").await?
    );

    // Idle sessions in the heap the load has left, whose freed memory they partly reuse; then on
    // a fresh gateway, where they are the only thing that grows: the cost of a session alone.
    if idle_sessions == 0 {
        return Ok(());
    }
    // Sessions that hold their GET stream open stay awake: measured apart.
    let mut sessions = Vec::new();
    let cost = idle_session_cost(&gateway, pid, idle_sessions, &mut sessions, None).await?;
    println!(
        "{idle_sessions} idle sessions (2025-11-25) after the load: RSS {} → {} KiB, {:.1} KiB each ({:.1} KiB of heap)",
        cost.before, cost.after, cost.each, cost.heap_each
    );
    drop(gateway);
    let (fresh, fresh_pid, _) = start_gateway(binary, &upstream.url, workers).await?;
    // The first sessions of a process also pay what serving sessions needs once (the store's
    // connections and their threads, the code's pages): a few are opened before those measured.
    idle_session_cost(&fresh, fresh_pid, WARM_UP_SESSIONS, &mut sessions, None).await?;
    let cost = idle_session_cost(&fresh, fresh_pid, idle_sessions, &mut sessions, None).await?;
    println!(
        "{idle_sessions} idle sessions (2025-11-25) on a fresh gateway, after {WARM_UP_SESSIONS}: RSS {} → {} KiB, {:.1} KiB each ({:.1} KiB of heap; {} hibernated)",
        cost.before,
        cost.after,
        cost.each,
        cost.heap_each,
        metric(&fresh, "switchboard_hibernated_sessions").await?,
    );
    drop(fresh);
    let (fresh, fresh_pid, _) = start_gateway(binary, &upstream.url, workers).await?;
    idle_session_cost(&fresh, fresh_pid, WARM_UP_SESSIONS, &mut sessions, None).await?;
    let mut streams = Vec::new();
    let cost = idle_session_cost(
        &fresh,
        fresh_pid,
        idle_sessions,
        &mut sessions,
        Some(&mut streams),
    )
    .await?;
    println!(
        "{idle_sessions} idle sessions (2025-11-25) with their GET stream open, on a fresh gateway, after {WARM_UP_SESSIONS}: RSS {} → {} KiB, {:.1} KiB each ({:.1} KiB of heap; {} hibernated)",
        cost.before,
        cost.after,
        cost.each,
        cost.heap_each,
        metric(&fresh, "switchboard_hibernated_sessions").await?
    );
    Ok(())
}

/// Starts of a gateway after the first, whose time to ready is measured.
const MORE_STARTS: usize = 4;

/// Sessions opened on a fresh gateway before its idle sessions are measured.
const WARM_UP_SESSIONS: usize = 10;

/// A metric's value as the gateway shows it.
async fn metric(gateway: &Switchboard, name: &str) -> anyhow::Result<String> {
    let metrics = gateway
        .request(reqwest::Method::GET, "/metrics")
        .send()
        .await?
        .text()
        .await?;
    Ok(metrics
        .lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .unwrap_or("0")
        .to_string())
}

/// Opens `count` downstream sessions of the 2025-11-25 era (the stateless 2026-07-28 era keeps
/// none), initialized and then left alone (each with its GET stream open, kept in `streams`, when
/// given), and returns what they added to the gateway's RSS, in KiB per session, once every
/// session without a stream has gone to sleep. They stay open while the gateway lives.
async fn idle_session_cost(
    gateway: &Switchboard,
    pid: u32,
    count: usize,
    sessions: &mut Vec<String>,
    mut streams: Option<&mut Vec<reqwest::Response>>,
) -> anyhow::Result<SessionCost> {
    let client = switchboard_test_support::http_client();
    let asleep = metric(gateway, "switchboard_hibernated_sessions")
        .await?
        .parse::<usize>()
        .unwrap_or(0);
    let before = status_kib(pid, "VmRSS");
    let heap_before = status_kib(pid, "RssAnon");
    for _ in 0..count {
        let response = client
            .post(gateway.url("/mcp/echo"))
            .bearer_auth(TOKEN)
            .header("accept", "application/json, text/event-stream")
            .json(
                &json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                "protocolVersion": "2025-11-25", "capabilities": {},
                "clientInfo": {"name": "bench", "version": "1"}}}),
            )
            .send()
            .await?;
        let session = response
            .headers()
            .get("mcp-session-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .context("no session id")?;
        response.bytes().await?;
        client
            .post(gateway.url("/mcp/echo"))
            .bearer_auth(TOKEN)
            .header("accept", "application/json, text/event-stream")
            .header("mcp-session-id", &session)
            .header("mcp-protocol-version", "2025-11-25")
            .json(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
            .send()
            .await?;
        if let Some(streams) = streams.as_deref_mut() {
            let stream = client
                .get(gateway.url("/mcp/echo"))
                .bearer_auth(TOKEN)
                .header("accept", "text/event-stream")
                .header("mcp-session-id", &session)
                .header("mcp-protocol-version", "2025-11-25")
                .send()
                .await?;
            anyhow::ensure!(
                stream.status().is_success(),
                "GET stream: {}",
                stream.status()
            );
            streams.push(stream);
        }
        sessions.push(session);
    }
    if streams.is_none() {
        // The last sessions go to sleep a moment after their `initialized` is answered.
        for _ in 0..500 {
            let hibernated = metric(gateway, "switchboard_hibernated_sessions").await?;
            if hibernated.parse::<usize>().unwrap_or(0) >= asleep + count {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    let after = status_kib(pid, "VmRSS");
    let per_session = |grown: u64| grown as f64 / count.max(1) as f64;
    let each = per_session(after.saturating_sub(before));
    let heap_each = per_session(status_kib(pid, "RssAnon").saturating_sub(heap_before));
    Ok(SessionCost {
        before,
        after,
        each,
        heap_each,
    })
}

/// What opening idle sessions grew the gateway by.
struct SessionCost {
    /// RSS, KiB.
    before: u64,
    after: u64,
    /// RSS per session, KiB.
    each: f64,
    /// Anonymous memory (the heap) per session, KiB: without the binary's pages.
    heap_each: f64,
}
