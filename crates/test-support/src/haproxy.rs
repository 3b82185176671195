//! HAProxy from Debian in front of `switchboard serve` replicas, with a configuration that takes
//! its addresses from the environment (the shipped `deploy/haproxy.cfg`).

use std::{path::Path, time::Duration};

use anyhow::Context as _;

use crate::Switchboard;

/// A running HAProxy; killed when dropped.
#[derive(Debug)]
pub struct LoadBalancer {
    _child: tokio::process::Child,
    /// Holds the port for this HAProxy alone (see [`reserve_port`]).
    _port: tokio::net::TcpSocket,
    /// `http://127.0.0.1:PORT`.
    pub base_url: String,
}

/// A port bound for as long as the socket lives, shared only with a process that binds it with
/// `SO_REUSEPORT` too, as HAProxy does by default, and never listened on here. A port that is
/// merely free when chosen is not enough: two HAProxies of tests running at once could both
/// bind it (each with `SO_REUSEPORT`), and the kernel would share one test's connections
/// between them, silently.
fn reserve_port() -> anyhow::Result<(tokio::net::TcpSocket, u16)> {
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.set_reuseport(true)?;
    socket.bind(std::net::SocketAddr::from(([127, 0, 0, 1], 0)))?;
    let port = socket.local_addr()?.port();
    Ok((socket, port))
}

impl LoadBalancer {
    /// HAProxy with `config`, listening on a port of its own (`SWITCHBOARD_LISTEN`) in front of
    /// `replicas` (`SWITCHBOARD_REPLICA_1`…), once it answers `/healthz`.
    pub async fn start(replicas: &[Switchboard], config: &Path) -> anyhow::Result<Self> {
        let (reserved, port) = reserve_port()?;
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
            _port: reserved,
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
