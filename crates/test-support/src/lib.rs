//! Test harness: the third-party peers Switchboard is tested against, started as real processes on
//! ports chosen at run time, plus a recording HTTP proxy that shows what crossed the wire.
//!
//! The peers are installed by `scripts/test.sh` into `peers/` (npm into `node_modules`, Python into
//! `.venv`).
#![forbid(unsafe_code)]

mod haproxy;
pub mod llm;
pub mod oauth;
pub mod otlp;
pub mod postgres;
mod proxy;
mod rust_server;
mod silent;
mod switchboard;
pub mod tls;
mod wait;

use std::{path::PathBuf, process::Stdio, time::Duration};

use anyhow::{Context as _, bail};
use nix::{
    sys::signal::{Signal, killpg},
    unistd::Pid,
};
use tokio::process::{Child, Command};

pub use haproxy::LoadBalancer;
pub use llm::{LlmRequest, Reply, ScriptedLlm};
pub use otlp::{OtlpReceiver, ReceivedSpan};
pub use proxy::{Fault, RecordedRequest, RecordingProxy};
pub use rust_server::{InProcessServer, serve_echo_over_stdio};
pub use silent::SilentServer;
pub use switchboard::{ADMIN_PASSWORD, ADMIN_TOKEN, Switchboard, pids_with_env};
pub use wait::{PATIENCE, eventually};

/// The repository root.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repo root exists")
}

/// Where `scripts/test.sh` installs the peers.
pub fn peers_dir() -> PathBuf {
    repo_root().join("peers")
}

/// The entry point of `@modelcontextprotocol/server-everything`, run with the machine's `node`.
pub fn everything_js() -> PathBuf {
    peers_dir().join("node_modules/@modelcontextprotocol/server-everything/dist/index.js")
}

/// The Python interpreter of the peers' venv, which has the `mcp` SDK.
pub fn python() -> PathBuf {
    peers_dir().join(".venv/bin/python")
}

/// The Python `mcp` SDK fixture server.
pub fn python_fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/python_server.py")
}

/// `(command, args)` that run server-everything over stdio.
pub fn everything_stdio_command() -> (String, Vec<String>) {
    (
        "node".into(),
        vec![everything_js().display().to_string(), "stdio".into()],
    )
}

/// `(command, args)` that run the Python fixture over stdio.
pub fn python_stdio_command() -> (String, Vec<String>) {
    (
        python().display().to_string(),
        vec![python_fixture().display().to_string(), "stdio".into()],
    )
}

/// A peer server running as a child process in its own process group, killed with the group on
/// drop.
#[derive(Debug)]
pub struct PeerServer {
    child: Child,
    /// The port it listens on, on 127.0.0.1.
    pub port: u16,
    /// How to start it again on the same port, as a redeployment would.
    relaunch: fn(u16) -> Command,
}

impl PeerServer {
    /// `http://127.0.0.1:PORT` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Kills the server and starts a fresh one on the same port: every session it held is gone.
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        self.kill().await;
        let command = (self.relaunch)(self.port);
        let fresh = start(command, self.port, self.relaunch).await?;
        // Take the fresh child; the old one is already reaped.
        *self = fresh;
        Ok(())
    }

    /// Kills the server, as a crash would.
    pub async fn kill(&mut self) {
        self.kill_group();
        let _ = self.child.wait().await;
    }

    fn kill_group(&self) {
        if let Some(pid) = self.child.id() {
            let _ = killpg(Pid::from_raw(pid as i32), Signal::SIGKILL);
        }
    }
}

impl Drop for PeerServer {
    fn drop(&mut self) {
        self.kill_group();
    }
}

/// server-everything in one of its HTTP modes (`streamableHttp` serves `/mcp`, `sse` serves
/// `/sse`).
pub async fn start_everything(mode: &str) -> anyhow::Result<PeerServer> {
    let relaunch: fn(u16) -> Command = match mode {
        "sse" => |port| everything_command("sse", port),
        "streamableHttp" => |port| everything_command("streamableHttp", port),
        other => bail!("unknown server-everything mode {other}"),
    };
    start_on_free_port(relaunch).await
}

fn everything_command(mode: &str, port: u16) -> Command {
    let mut command = Command::new("node");
    command
        .arg(everything_js())
        .arg(mode)
        .env("PORT", port.to_string());
    command
}

/// The fixture that speaks both protocol eras (`fixtures/both_eras_server.cjs`: the conformance
/// suite's `test_*` tools, resources and prompts on the TypeScript SDK v2), serving Streamable
/// HTTP at `/mcp`: sessions for 2025-11-25 clients, stateless for 2026-07-28 ones.
pub async fn start_both_eras_fixture() -> anyhow::Result<PeerServer> {
    start_on_free_port(both_eras_fixture_command).await
}

fn both_eras_fixture_command(port: u16) -> Command {
    let mut command = Command::new("node");
    command
        .arg(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/both_eras_server.cjs"))
        .arg(port.to_string())
        .env("NODE_PATH", peers_dir().join("node_modules"));
    command
}

/// The same fixture as a server of the 2025 era only (`FIXTURE_ERAS=2025`): sessions, and 404 for
/// stateless requests, as servers that predate 2026-07-28 answer them.
pub async fn start_session_era_fixture() -> anyhow::Result<PeerServer> {
    start_on_free_port(|port| {
        let mut command = both_eras_fixture_command(port);
        command.env("FIXTURE_ERAS", "2025");
        command
    })
    .await
}

/// The Python fixture in an HTTP mode (`streamable-http` serves `/mcp`, `sse` serves `/sse`).
pub async fn start_python(mode: &str) -> anyhow::Result<PeerServer> {
    let relaunch: fn(u16) -> Command = match mode {
        "sse" => |port| python_command("sse", port),
        "streamable-http" => |port| python_command("streamable-http", port),
        other => bail!("unknown Python fixture mode {other}"),
    };
    start_on_free_port(relaunch).await
}

/// The Python fixture in an HTTP mode on a given port, for tests that start it late.
pub async fn start_python_on(mode: &'static str, port: u16) -> anyhow::Result<PeerServer> {
    let relaunch: fn(u16) -> Command = match mode {
        "sse" => |port| python_command("sse", port),
        _ => |port| python_command("streamable-http", port),
    };
    start(relaunch(port), port, relaunch).await
}

fn python_command(mode: &str, port: u16) -> Command {
    let mut command = Command::new(python());
    command
        .arg(python_fixture())
        .arg(mode)
        .arg(port.to_string());
    command
}

async fn start_on_free_port(relaunch: fn(u16) -> Command) -> anyhow::Result<PeerServer> {
    let port = free_port()?;
    start(relaunch(port), port, relaunch).await
}

async fn start(
    mut command: Command,
    port: u16,
    relaunch: fn(u16) -> Command,
) -> anyhow::Result<PeerServer> {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .kill_on_drop(true);
    let child = command.spawn().context("spawning a peer server")?;
    let mut server = PeerServer {
        child,
        port,
        relaunch,
    };
    wait_until_listening(&mut server).await?;
    Ok(server)
}

/// Waits until the peer accepts connections, failing if it exits first or takes over 30 s.
async fn wait_until_listening(server: &mut PeerServer) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        if tokio::net::TcpStream::connect(("127.0.0.1", server.port))
            .await
            .is_ok()
        {
            return Ok(());
        }
        if let Some(status) = server.child.try_wait()? {
            bail!("the peer server exited before listening: {status}");
        }
        if tokio::time::Instant::now() > deadline {
            bail!(
                "the peer server did not listen on port {} within 30 s",
                server.port
            );
        }
        // Polling the port is the only readiness signal these servers give.
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// A plain HTTP client for tests; rustls needs its crypto provider installed first.
pub fn http_client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

/// A port that was free a moment ago.
pub fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// The text blocks of a tool result's `content`, given as JSON, joined by newlines.
pub fn content_text(content: &serde_json::Value) -> String {
    content
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|block| block["text"].as_str())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Whether a process is still alive.
pub fn process_alive(pid: u32) -> bool {
    nix::sys::signal::kill(Pid::from_raw(pid as i32), None).is_ok()
}
