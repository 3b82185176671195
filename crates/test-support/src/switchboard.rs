//! `switchboard serve` as a real process, on a port it picks itself, with its own data directory.

use std::{path::Path, process::Stdio, time::Duration};

use anyhow::{Context as _, bail};
use nix::{
    sys::signal::{Signal, kill},
    unistd::Pid,
};
use serde_json::Value;
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::{Child, Command},
};

/// The admin token every test server is started with.
pub const ADMIN_TOKEN: &str = "test-admin-token-5f1c";
/// The password of the `admin` user every test server makes at its first start.
pub const ADMIN_PASSWORD: &str = "test-admin-password-9d2e";

/// A running `switchboard serve`; killed when dropped.
#[derive(Debug)]
pub struct Switchboard {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub base_url: String,
    /// Kept so that the data directory lives as long as the server.
    _data_dir: tempfile::TempDir,
    /// Every line the server wrote to stderr (its log), collected as it runs.
    log: std::sync::Arc<std::sync::Mutex<String>>,
    /// What it printed to stdout after the line that says where it listens.
    printed: std::sync::Arc<std::sync::Mutex<String>>,
    client: reqwest::Client,
}

impl Switchboard {
    /// Starts `binary serve --listen 127.0.0.1:0 ARGS…` with `env` added to a clean environment
    /// (`PATH` and `HOME` kept).
    pub async fn start(binary: &Path, args: &[&str], env: &[(&str, &str)]) -> anyhow::Result<Self> {
        Self::start_in(binary, None, args, env).await
    }

    /// [`Self::start`] in a working directory (where `npx` finds locally installed packages).
    pub async fn start_in(
        binary: &Path,
        cwd: Option<&Path>,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> anyhow::Result<Self> {
        let mut command = Command::new(binary);
        if let Some(cwd) = cwd {
            command.current_dir(cwd);
        }
        Self::launch(command, args, env).await
    }

    /// [`Self::start`] in a mount namespace of its own whose `/etc/hosts` is `hosts`, so that the
    /// test decides what names resolve to, and may change it while the server runs (the file is
    /// read at each lookup). Needs root, for `unshare` and the bind mount.
    pub async fn start_with_hosts(
        binary: &Path,
        hosts: &Path,
        args: &[&str],
    ) -> anyhow::Result<Self> {
        let mut command = Command::new("unshare");
        // A fixed script; the paths are its arguments. `exec` leaves the server as the child.
        command
            .args(["--mount", "--propagation", "private", "--", "sh", "-c"])
            .arg(r#"mount --bind "$0" /etc/hosts && exec "$@""#)
            .arg(hosts)
            .arg(binary);
        Self::launch(command, args, &[]).await
    }

    /// Runs `command serve …` (the binary, or what execs it) and waits for its banner.
    async fn launch(
        mut command: Command,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> anyhow::Result<Self> {
        let data_dir = tempfile::tempdir()?;
        command
            .arg("serve")
            .args(["--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir.path())
            .args(args)
            .env_clear()
            .envs(
                ["PATH", "HOME"]
                    .iter()
                    .filter_map(|k| Some((*k, std::env::var(k).ok()?))),
            )
            .env("SWITCHBOARD_ADMIN_TOKEN", ADMIN_TOKEN)
            .env("SWITCHBOARD_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .env("RUST_LOG", "info")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = command.spawn().context("spawning switchboard serve")?;
        let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        if let Some(stderr) = child.stderr.take() {
            let log = log.clone();
            tokio::spawn(async move {
                let mut lines = BufReader::new(stderr).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    let mut log = log
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    log.push_str(&line);
                    log.push('\n');
                }
            });
        }
        let stdout = child.stdout.take().context("stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let base_url = tokio::time::timeout(Duration::from_secs(30), async {
            while let Some(line) = lines.next_line().await? {
                if let Some(url) = line.strip_prefix("switchboard listening on ") {
                    return Ok(url.trim().to_string());
                }
            }
            bail!("switchboard serve exited before listening")
        })
        .await
        .context("switchboard serve did not start within 30 s")??;
        // Keep reading stdout (the rest of the banner), so that the server never blocks on a full
        // pipe and tests can read what it printed.
        let printed = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let keep = printed.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                let mut printed = keep
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                printed.push_str(&line);
                printed.push('\n');
            }
        });
        Ok(Self {
            child,
            base_url,
            _data_dir: data_dir,
            log,
            printed,
            client: crate::http_client(),
        })
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// The data directory (the SQLite file and the secret key live there).
    pub fn data_dir(&self) -> &Path {
        self._data_dir.path()
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// What the server printed to stdout after where it listens (its banner's other lines).
    pub fn printed(&self) -> String {
        self.printed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// What the server logged so far.
    pub fn log(&self) -> String {
        self.log
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// A request with the admin token.
    pub fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.client
            .request(method, self.url(path))
            .bearer_auth(ADMIN_TOKEN)
    }

    /// A request with the admin token and a JSON body; the status and the JSON answer (`null` for
    /// an empty body).
    pub async fn send_json(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<(u16, Value)> {
        let mut request = self.request(method, path);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await?;
        let status = response.status().as_u16();
        let bytes = response.bytes().await?;
        let value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)?
        };
        Ok((status, value))
    }

    /// `POST /run` with the admin token; the status and the JSON answer.
    pub async fn post_run(&self, body: &Value) -> anyhow::Result<(u16, Value)> {
        self.send_json(reqwest::Method::POST, "/run", Some(body))
            .await
    }

    /// Sends SIGTERM and waits for the exit.
    pub async fn terminate(&mut self) -> anyhow::Result<std::process::ExitStatus> {
        if let Some(pid) = self.child.id() {
            kill(Pid::from_raw(pid as i32), Signal::SIGTERM)?;
        }
        Ok(self.child.wait().await?)
    }
}

/// The pids of processes whose environment holds `NAME=value` exactly: how tests find the children
/// a server started for them.
pub fn pids_with_env(name: &str, value: &str) -> Vec<u32> {
    let needle = format!("{name}={value}");
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/environ")).is_ok_and(|environ| {
                environ
                    .split(|byte| *byte == 0)
                    .any(|entry| entry == needle.as_bytes())
            })
        })
        .collect()
}
