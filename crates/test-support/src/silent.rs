//! A misbehaving upstream: it accepts TCP connections and never answers a byte, as a server whose
//! process hangs does. It counts the connections, so that a test can tell how often it was tried.

use std::sync::{
    Arc,
    atomic::{AtomicUsize, Ordering},
};

use tokio::{net::TcpListener, task::JoinHandle};

/// Listens on 127.0.0.1, accepts every connection, holds it open and reads nothing from it.
#[derive(Debug)]
pub struct SilentServer {
    /// `http://127.0.0.1:PORT`.
    pub base_url: String,
    connections: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl SilentServer {
    pub async fn start() -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let base_url = format!("http://{}", listener.local_addr()?);
        let connections = Arc::new(AtomicUsize::new(0));
        let counted = connections.clone();
        let task = tokio::spawn(async move {
            // Held until the server is dropped: a closed socket would be an answer of sorts.
            let mut held = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                counted.fetch_add(1, Ordering::SeqCst);
                held.push(socket);
            }
        });
        Ok(Self {
            base_url,
            connections,
            task,
        })
    }

    /// How many connections it has accepted.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

impl Drop for SilentServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}
