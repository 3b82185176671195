//! Local servers as child processes.
//!
//! A child is spawned from an argument list, never through a shell, in a process group of its own,
//! so that killing the group also ends whatever it started (`npx` runs the real server as its own
//! child). The [`ChildGuard`] owns that group and kills it when dropped, even without a runtime.

use std::{collections::BTreeMap, process::Stdio, sync::Arc};

use nix::{
    sys::signal::{Signal, killpg},
    unistd::Pid,
};
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::{Child, Command},
};

use crate::{
    config::{StdioConfig, substitute_vars},
    error::UpstreamError,
};

/// The variables a child gets when it does not inherit our environment: enough to find programs
/// and a home directory, nothing that could hold a secret.
pub const MINIMAL_ENV_KEYS: &[&str] = &["PATH", "HOME"];

mod link;

pub(crate) use link::{Awaited, LinkTransport, StdioLink};

/// Owns a child's process group; dropping it kills the whole group.
#[derive(Debug)]
pub struct ChildGuard {
    /// Kept so the child is reaped by tokio once it exits.
    child: Child,
    /// The process group id, which is the child's pid (it leads its own group).
    pgid: Option<Pid>,
}

impl ChildGuard {
    pub fn pid(&self) -> Option<u32> {
        self.pgid.map(|pid| pid.as_raw() as u32)
    }

    /// Kills the whole group and waits for the leader to be reaped.
    pub async fn kill(&mut self) {
        self.signal_group();
        let _ = self.child.wait().await;
    }

    fn signal_group(&mut self) {
        if let Some(pgid) = self.pgid.take() {
            // ESRCH just means the group is already gone.
            let _ = killpg(pgid, Signal::SIGKILL);
        }
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        self.signal_group();
    }
}

/// Builds the child's environment: our own (when inherited) or the minimal set, then its own
/// variables with `${VAR}` substituted.
pub(crate) fn child_env(
    config: &StdioConfig,
    lookup: impl Fn(&str) -> Option<String> + Copy,
) -> Result<BTreeMap<String, String>, String> {
    let mut env = BTreeMap::new();
    if !config.inherit_env {
        for key in MINIMAL_ENV_KEYS {
            if let Some(value) = lookup(key) {
                env.insert((*key).to_string(), value);
            }
        }
    }
    for (key, value) in &config.env {
        env.insert(key.clone(), substitute_vars(value, &config.env, lookup)?);
    }
    Ok(env)
}

/// Spawns the child and links to its stdin and stdout (see [`StdioLink`]); `max_line` caps a
/// message it writes.
pub(crate) fn spawn(
    upstream: &str,
    config: &StdioConfig,
    max_line: usize,
) -> Result<(ChildGuard, Arc<StdioLink>, LinkTransport), UpstreamError> {
    // `${VAR}` may read this process's environment only where the child inherits it anyway;
    // otherwise only the minimal keys, so that `${GATEWAY_SECRET}` cannot smuggle a secret out.
    let inherit = config.inherit_env;
    let lookup = move |name: &str| {
        (inherit || MINIMAL_ENV_KEYS.contains(&name))
            .then(|| std::env::var(name).ok())
            .flatten()
    };
    let config_error = |reason: String| UpstreamError::Config {
        upstream: upstream.into(),
        reason,
    };
    if config.command.trim().is_empty() {
        return Err(config_error("the command is empty".into()));
    }
    let args = config
        .args
        .iter()
        .map(|arg| substitute_vars(arg, &config.env, lookup))
        .collect::<Result<Vec<_>, _>>()
        .map_err(config_error)?;
    let env = child_env(config, lookup).map_err(config_error)?;

    let mut command = Command::new(&config.command);
    command
        .args(&args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    if !config.inherit_env {
        command.env_clear();
    }
    command.envs(&env);
    if let Some(cwd) = &config.cwd {
        command.current_dir(cwd);
    }
    let mut child = command.spawn().map_err(|error| UpstreamError::Spawn {
        upstream: upstream.into(),
        command: config.command.clone(),
        reason: error.to_string(),
    })?;
    let pgid = child.id().map(|id| Pid::from_raw(id as i32));
    let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
        return Err(UpstreamError::Spawn {
            upstream: upstream.into(),
            command: config.command.clone(),
            reason: "its stdio pipes could not be opened".into(),
        });
    };
    if let Some(stderr) = child.stderr.take() {
        let name = upstream.to_string();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                tracing::info!(target: "switchboard::upstream::stderr", upstream = %name, "{line}");
            }
        });
    }
    let (link, transport) = StdioLink::start(upstream, stdout, stdin, max_line);
    Ok((ChildGuard { child, pgid }, link, transport))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn child_env_is_minimal_unless_inherited() {
        let lookup = |name: &str| match name {
            "PATH" => Some("/usr/bin".to_string()),
            "HOME" => Some("/root".to_string()),
            "SECRET" => Some("gateway-secret".to_string()),
            _ => None,
        };
        let mut config = StdioConfig::new("x", vec![]);
        config.inherit_env = false;
        config.env.insert("TOKEN".into(), "abc".into());
        config.env.insert("HEADER".into(), "Bearer ${TOKEN}".into());
        let env = child_env(&config, lookup).expect("renders");
        let expected: BTreeMap<String, String> = [
            ("PATH", "/usr/bin"),
            ("HOME", "/root"),
            ("TOKEN", "abc"),
            ("HEADER", "Bearer abc"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(env, expected);
        assert!(!env.values().any(|v| v.contains("gateway-secret")));
    }
}
