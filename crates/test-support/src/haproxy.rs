//! HAProxy from Debian in front of `switchboard serve` replicas, with a configuration that takes
//! its addresses from the environment (the shipped `deploy/haproxy.cfg`).

use std::{path::Path, time::Duration};

use anyhow::Context as _;

use crate::Switchboard;

/// A running HAProxy; killed when dropped.
#[derive(Debug)]
pub struct LoadBalancer {
    _child: tokio::process::Child,
    /// `http://127.0.0.1:PORT`.
    pub base_url: String,
}

impl LoadBalancer {
    /// HAProxy with `config`, listening on a free port (`SWITCHBOARD_LISTEN`) in front of
    /// `replicas` (`SWITCHBOARD_REPLICA_1`…), once it answers `/healthz`.
    pub async fn start(replicas: &[Switchboard], config: &Path) -> anyhow::Result<Self> {
        let port = crate::free_port()?;
        let mut command = tokio::process::Command::new("haproxy");
        command
            .arg("-f")
            .arg(config)
            .arg("-db")
            .env("SWITCHBOARD_LISTEN", format!("127.0.0.1:{port}"))
            .stdout(std::process::Stdio::null())
            .kill_on_drop(true);
        for (index, replica) in replicas.iter().enumerate() {
            let address = replica.base_url.trim_start_matches("http://").to_string();
            command.env(format!("SWITCHBOARD_REPLICA_{}", index + 1), address);
        }
        let child = command.spawn().context("starting haproxy")?;
        let balancer = Self {
            _child: child,
            base_url: format!("http://127.0.0.1:{port}"),
        };
        let health = balancer.url("/healthz");
        let client = crate::http_client();
        crate::eventually("HAProxy answers", Duration::from_millis(20), || async {
            let answered = client.get(&health).send().await;
            answered.is_ok_and(|answer| answer.status() == 200)
        })
        .await;
        Ok(balancer)
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }
}
