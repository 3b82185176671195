//! One child's stdin and stdout, shared by rmcp's session and the raw path. A JSON-RPC message
//! over stdio is one line, so a plain `tools/call` needs no typed model at all: the raw path
//! writes its line and waits for the answer line with its id. One task reads the child's
//! stdout: the answers and progress reports of raw calls (ids and tokens from
//! [`crate::raw::RAW_ID_BASE`] up, which rmcp never uses) go to the calls waiting for them, and
//! every other message to rmcp's session, in the order the child wrote them. Writers take turns
//! on stdin, a whole line each.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex as SyncMutex, PoisonError},
};

use rmcp::{
    RoleClient,
    service::{RxJsonRpcMessage, TxJsonRpcMessage},
    transport::Transport,
};
use serde::Deserialize;
use serde_json::value::RawValue;
use tokio::{
    io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader},
    process::{ChildStdin, ChildStdout},
    sync::{mpsc, oneshot},
};

/// The link to one child.
#[derive(Debug)]
pub(crate) struct StdioLink {
    stdin: tokio::sync::Mutex<Option<ChildStdin>>,
    /// Raw calls waiting for their answers, by id.
    waiting: SyncMutex<HashMap<u64, Waiting>>,
}

#[derive(Debug)]
struct Waiting {
    answer: oneshot::Sender<String>,
    /// Where the call's progress reports go, when it asked for them.
    progress: Option<mpsc::UnboundedSender<crate::Progress>>,
}

/// What a raw call waits on: its answer line, and its progress reports.
pub(crate) struct Awaited {
    pub(crate) answer: oneshot::Receiver<String>,
    pub(crate) progress: Option<mpsc::UnboundedReceiver<crate::Progress>>,
}

/// rmcp's side of the link.
pub(crate) struct LinkTransport {
    link: Arc<StdioLink>,
    incoming: mpsc::UnboundedReceiver<RxJsonRpcMessage<RoleClient>>,
}

/// The parts of a line the reader routes on.
#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow, default)]
    id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    method: Option<&'a str>,
    #[serde(borrow, default)]
    params: Option<&'a RawValue>,
}

/// A raw id (or token) in a line: an integer from the raw range.
fn raw_id(value: &RawValue) -> Option<u64> {
    value
        .get()
        .trim()
        .parse::<u64>()
        .ok()
        .filter(|id| *id >= crate::raw::RAW_ID_BASE)
}

impl StdioLink {
    /// Links to a child's pipes: starts the reader, and returns the link and rmcp's transport.
    /// `max_line` caps a line read from the child; a longer one is dropped whole, and the
    /// link ends, as the child can no longer be followed.
    pub(crate) fn start(
        upstream: &str,
        stdout: ChildStdout,
        stdin: ChildStdin,
        max_line: usize,
    ) -> (Arc<Self>, LinkTransport) {
        let link = Arc::new(Self {
            stdin: tokio::sync::Mutex::new(Some(stdin)),
            waiting: SyncMutex::default(),
        });
        let (to_rmcp, incoming) = mpsc::unbounded_channel();
        tokio::spawn(read(
            upstream.to_string(),
            Arc::downgrade(&link),
            stdout,
            to_rmcp,
            max_line,
        ));
        let transport = LinkTransport {
            link: link.clone(),
            incoming,
        };
        (link, transport)
    }

    fn waiting(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Waiting>> {
        self.waiting.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Expects the answer to the raw call `id` (and its progress reports, under the token `id`,
    /// when `progress`). The answer never comes if the call is not then written.
    pub(crate) fn expect(&self, id: u64, progress: bool) -> Awaited {
        let (answer, answered) = oneshot::channel();
        let (reports, reported) = if progress {
            let (sender, receiver) = mpsc::unbounded_channel();
            (Some(sender), Some(receiver))
        } else {
            (None, None)
        };
        self.waiting().insert(
            id,
            Waiting {
                answer,
                progress: reports,
            },
        );
        Awaited {
            answer: answered,
            progress: reported,
        }
    }

    /// Stops waiting for `id`'s answer.
    pub(crate) fn forget(&self, id: u64) {
        self.waiting().remove(&id);
    }

    /// Writes one message, a line of JSON without a newline in it. Fails once the child's stdin
    /// is closed.
    pub(crate) async fn write(&self, message: &str) -> std::io::Result<()> {
        let mut line = Vec::with_capacity(message.len() + 1);
        line.extend_from_slice(message.as_bytes());
        line.push(b'\n');
        let mut stdin = self.stdin.lock().await;
        let Some(pipe) = stdin.as_mut() else {
            return Err(std::io::ErrorKind::BrokenPipe.into());
        };
        let written = pipe.write_all(&line).await;
        if written.is_err() {
            *stdin = None;
        }
        written
    }

    /// Routes one line the child wrote; `None` when it is rmcp's.
    fn route(&self, line: &str) -> Option<()> {
        let envelope: Envelope<'_> = serde_json::from_str(line).ok()?;
        match (envelope.id, envelope.method) {
            (Some(id), None) => {
                // A raw call's answer, even one nobody waits for any more (it timed out).
                let waiting = self.waiting().remove(&raw_id(id)?);
                if let Some(waiting) = waiting {
                    let _ = waiting.answer.send(line.to_string());
                }
                Some(())
            }
            (None, Some("notifications/progress")) => {
                let report: crate::raw::ProgressParams<'_> =
                    serde_json::from_str(envelope.params?.get()).ok()?;
                let id = raw_id(report.progress_token)?;
                // A raw call's report, even one nobody waits for any more.
                if let Some(reports) = self
                    .waiting()
                    .get(&id)
                    .and_then(|call| call.progress.clone())
                {
                    let _ = reports.send(report.report());
                }
                Some(())
            }
            _ => None,
        }
    }
}

/// Reads the child's stdout until it ends (or the link is gone), routing each line.
async fn read(
    upstream: String,
    link: std::sync::Weak<StdioLink>,
    stdout: ChildStdout,
    to_rmcp: mpsc::UnboundedSender<RxJsonRpcMessage<RoleClient>>,
    max_line: usize,
) {
    let mut reader = BufReader::new(stdout);
    let mut line = String::new();
    loop {
        line.clear();
        let read = (&mut reader)
            .take(
                u64::try_from(max_line)
                    .unwrap_or(u64::MAX)
                    .saturating_add(1),
            )
            .read_line(&mut line)
            .await;
        match read {
            Ok(0) | Err(_) => break,
            Ok(_) if !line.ends_with('\n') && line.len() > max_line => {
                tracing::warn!(%upstream, "a line over {max_line} bytes on stdout: the session ends");
                break;
            }
            Ok(_) => {}
        }
        let text = line.trim_end();
        if text.is_empty() {
            continue;
        }
        let Some(link) = link.upgrade() else { break };
        if link.route(text).is_some() {
            continue;
        }
        match serde_json::from_str::<RxJsonRpcMessage<RoleClient>>(text) {
            Ok(message) => {
                if to_rmcp.send(message).is_err() {
                    break;
                }
            }
            Err(error) => {
                tracing::debug!(%upstream, %error, "a line on stdout that is not a JSON-RPC message")
            }
        }
    }
    // The child's stdout ended: raw calls still waiting fail as their answers are dropped, and
    // rmcp's session sees its transport close.
    if let Some(link) = link.upgrade() {
        link.waiting().clear();
        *link.stdin.lock().await = None;
    }
}

impl Transport<RoleClient> for LinkTransport {
    type Error = std::io::Error;

    fn send(
        &mut self,
        item: TxJsonRpcMessage<RoleClient>,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send + 'static {
        let link = self.link.clone();
        async move {
            let message = serde_json::to_string(&item).map_err(std::io::Error::other)?;
            link.write(&message).await
        }
    }

    async fn receive(&mut self) -> Option<RxJsonRpcMessage<RoleClient>> {
        self.incoming.recv().await
    }

    async fn close(&mut self) -> Result<(), Self::Error> {
        self.incoming.close();
        if let Some(mut stdin) = self.link.stdin.lock().await.take() {
            let _ = stdin.shutdown().await;
        }
        Ok(())
    }
}
