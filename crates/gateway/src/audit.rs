//! The audit log's writer: entries go through a channel to one background task that appends them,
//! so that a proxied call never waits on the database. `close` drains what is queued.

use std::borrow::Cow;

use serde_json::Value;
use sha2::{Digest, Sha256};
use switchboard_store::{AuditRow, Store};
use tokio::sync::{mpsc, oneshot};

/// One thing to record.
#[derive(Debug, Clone, Default)]
pub struct AuditEntry {
    pub actor: Cow<'static, str>,
    pub client: String,
    pub kind: &'static str,
    pub action: Cow<'static, str>,
    pub server: String,
    pub tool: String,
    /// `ok`, `error` or `denied`.
    pub outcome: &'static str,
    pub duration_ms: u64,
    pub detail: Value,
}

impl AuditEntry {
    fn into_row(self) -> AuditRow {
        let at = crate::now_ms();
        AuditRow {
            id: row_id(at),
            at,
            actor: self.actor,
            client: self.client,
            kind: self.kind.into(),
            action: self.action,
            server: self.server,
            tool: self.tool,
            outcome: self.outcome.into(),
            duration_ms: i64::try_from(self.duration_ms).unwrap_or(i64::MAX),
            detail: self.detail.to_string(),
        }
    }
}

/// An admin change as its caller asked for it. When it succeeds, its audit row is written in the
/// same transaction as the change (`Gateway::create`, `update`, `delete`), so that a crash can
/// never keep the one without the other; a refused change is recorded like any entry.
#[derive(Debug, Clone)]
pub struct AdminAction {
    pub actor: String,
    pub client: String,
    /// `server.create`, `admin_mcp.update_mcp_server`, …
    pub action: String,
    /// The server as the caller named it (a create's row names the new alias instead).
    pub server: String,
    pub started: std::time::Instant,
}

impl AdminAction {
    /// The entry of this action with `outcome` and `detail`.
    pub fn entry(&self, outcome: &'static str, detail: Value) -> AuditEntry {
        AuditEntry {
            actor: self.actor.clone().into(),
            client: self.client.clone(),
            kind: "admin",
            action: self.action.clone().into(),
            server: self.server.clone(),
            outcome,
            duration_ms: self.started.elapsed().as_millis() as u64,
            detail,
            ..AuditEntry::default()
        }
    }

    /// The row of the action done, on `server`.
    pub(crate) fn done(&self, server: &str) -> AuditRow {
        let mut entry = self.entry("ok", Value::Object(serde_json::Map::new()));
        entry.server = server.to_string();
        entry.into_row()
    }
}

/// The SHA-256 of a value's JSON: arguments are recorded this way, never as values.
pub fn hash_json<T: serde::Serialize + ?Sized>(value: &T) -> String {
    // The compact serialization, as `Value`'s `Display` writes it, so a map hashes like the same
    // map inside a `Value`.
    let digest = Sha256::digest(serde_json::to_vec(value).unwrap_or_default());
    // Written in one piece (`hex::encode` writes a character at a time, which showed in the
    // profile of every call).
    format!("{digest:x}")
}

/// How long the writer waits for more rows before it writes a batch. A batch costs some 30 thread
/// wake-ups between the runtime and SQLite's worker thread whatever its size, so at 20 ms they
/// were more than one per call under light load. Readers of the log flush it first, and shutdown
/// flushes too: only a crash loses the rows of this window.
const BATCH_WINDOW: std::time::Duration = std::time::Duration::from_millis(100);

enum Message {
    Row(Box<AuditRow>),
    /// Answered once every row sent before it is written.
    Flush(oneshot::Sender<()>),
}

/// The writer; cheap to clone.
#[derive(Debug, Clone)]
pub struct AuditLog {
    sender: mpsc::UnboundedSender<Message>,
}

impl std::fmt::Debug for Message {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AuditMessage")
    }
}

/// A row id that sorts by time: the timestamp, zero-padded, then 32 hex digits unique across
/// processes (replicas share a PostgreSQL store): 20 random ones drawn once per process, and a
/// counter. A random draw per row cost a `getrandom` system call on every audited call.
pub fn row_id(at: i64) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static PROCESS: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let process =
        PROCESS.get_or_init(|| uuid::Uuid::new_v4().simple().to_string()[..20].to_owned());
    let sequence = NEXT.fetch_add(1, Ordering::Relaxed) & 0xFFFF_FFFF_FFFF;
    format!("{at:013}-{process}{sequence:012x}")
}

impl AuditLog {
    /// Starts the writer task.
    pub fn start(store: Store) -> Self {
        let (sender, mut receiver) = mpsc::unbounded_channel::<Message>();
        tokio::spawn(async move {
            let mut batch = Vec::new();
            while let Some(first) = receiver.recv().await {
                // Whatever queued meanwhile goes in the same transaction: one disk sync for many
                // rows when calls are many.
                let mut flushes = Vec::new();
                let mut next = Some(first);
                while let Some(message) = next {
                    match message {
                        Message::Row(row) => batch.push(*row),
                        Message::Flush(done) => flushes.push(done),
                    }
                    next = if batch.len() < MAX_BATCH {
                        receiver.try_recv().ok()
                    } else {
                        None
                    };
                }
                // Under load, rows keep coming: waiting a moment lets one transaction carry many
                // more of them. A flush (shutdown, tests) does not wait.
                if flushes.is_empty() && !batch.is_empty() && batch.len() < MAX_BATCH {
                    tokio::time::sleep(BATCH_WINDOW).await;
                    while batch.len() < MAX_BATCH {
                        match receiver.try_recv() {
                            Ok(Message::Row(row)) => batch.push(*row),
                            Ok(Message::Flush(done)) => flushes.push(done),
                            Err(_) => break,
                        }
                    }
                }
                if !batch.is_empty() {
                    if let Err(error) = store.append_audit_batch(&batch).await {
                        tracing::error!(%error, rows = batch.len(), "audit rows were not written");
                    }
                    batch.clear();
                }
                for done in flushes {
                    let _ = done.send(());
                }
            }
        });
        Self { sender }
    }

    pub fn record(&self, entry: AuditEntry) {
        // Only fails once the writer is gone, at the very end.
        let _ = self.sender.send(Message::Row(Box::new(entry.into_row())));
    }

    /// Waits until every entry recorded so far is written (at shutdown, and in tests).
    pub async fn flush(&self) {
        let (done, written) = oneshot::channel();
        if self.sender.send(Message::Flush(done)).is_ok() {
            let _ = tokio::time::timeout(FLUSH_LIMIT, written).await;
        }
    }
}

/// The most rows one transaction takes.
const MAX_BATCH: usize = 512;

/// The longest a flush waits: a stuck database must not hold shutdown forever.
const FLUSH_LIMIT: std::time::Duration = std::time::Duration::from_secs(5);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn row_ids_are_unique_and_sort_by_time() {
        let first = row_id(1_000);
        let second = row_id(1_000);
        assert_ne!(first, second);
        assert!(row_id(999) < first && first < row_id(1_001));
        // The same length as the UUID-based ids before them, so old and new rows sort together.
        assert_eq!(first.len(), 13 + 1 + 32);
    }

    #[test]
    fn a_map_hashes_like_the_same_map_in_a_value() {
        // The typed path hashes the arguments map; the raw path hashes the parsed `Value`.
        let value = serde_json::json!({"b": [1, 2], "a": "x"});
        let map = value.as_object().expect("an object");
        assert_eq!(hash_json(map), hash_json(&value));
        assert_eq!(
            hash_json(&value),
            hex::encode(Sha256::digest(value.to_string().as_bytes()))
        );
    }
}
