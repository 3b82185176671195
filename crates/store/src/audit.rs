//! The audit log's SQL: append, query with filters and a cursor, prune.

use std::borrow::Cow;

use sqlx::Row;

use crate::{Backend, Store, StoreError};

/// One audit row. Empty strings stand for "not applicable" (an admin action has no tool). The
/// fields that mostly hold fixed words borrow them, so recording a call copies fewer strings.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditRow {
    /// Sorts by time: `{at:013}-{random}`.
    pub id: String,
    /// Unix milliseconds.
    pub at: i64,
    /// Who: `admin` until sign-in lands.
    pub actor: Cow<'static, str>,
    /// Which client: its MCP `clientInfo` name, or the HTTP user agent.
    pub client: String,
    /// `admin`, `tool_call` (proxied) or `run_tool_call`.
    pub kind: Cow<'static, str>,
    /// What: `server.create`, `tools/call`…
    pub action: Cow<'static, str>,
    pub server: String,
    pub tool: String,
    /// `ok`, `error` or `denied`.
    pub outcome: Cow<'static, str>,
    pub duration_ms: i64,
    /// JSON: the arguments' hash (never their values, unless configured), a run id, an error.
    pub detail: String,
}

/// What to look for; every field narrows.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    pub actor: Option<String>,
    pub server: Option<String>,
    pub tool: Option<String>,
    pub outcome: Option<String>,
    /// Unix milliseconds, inclusive.
    pub since: Option<i64>,
    /// Unix milliseconds, exclusive.
    pub until: Option<i64>,
    /// Rows after this id (the previous page's last), oldest first; with `newest_first`, rows
    /// before it.
    pub after: Option<String>,
    pub limit: u32,
    /// Newest first, paging backwards (what people read); oldest first otherwise (what
    /// programs follow).
    pub newest_first: bool,
}

/// A batch of audit rows as one statement: the rows travel as one JSON array of arrays, which the
/// database unpacks. One statement per batch, whatever its size, is one round trip to SQLite's
/// worker thread (each cost thread wake-ups on both sides) and one to PostgreSQL; bound one by
/// one, a batch took up to 31 statements. Its element order is the columns' order here.
const SQLITE_BATCH_INSERT: &str = "INSERT INTO audit (id, at, actor, client, kind, action, \
     server, tool, outcome, duration_ms, detail) SELECT value ->> 0, value ->> 1, value ->> 2, \
     value ->> 3, value ->> 4, value ->> 5, value ->> 6, value ->> 7, value ->> 8, value ->> 9, \
     value ->> 10 FROM json_each(?)";
/// The same for PostgreSQL, as `json` (not `jsonb`, which would normalize what it only unpacks).
const POSTGRES_BATCH_INSERT: &str = "INSERT INTO audit (id, at, actor, client, kind, action, \
     server, tool, outcome, duration_ms, detail) SELECT r ->> 0, (r ->> 1)::bigint, r ->> 2, \
     r ->> 3, r ->> 4, r ->> 5, r ->> 6, r ->> 7, r ->> 8, (r ->> 9)::bigint, r ->> 10 \
     FROM json_array_elements($1::json) AS r";

/// The rows as the batch statements take them.
fn batch_json(rows: &[AuditRow]) -> Result<String, serde_json::Error> {
    let rows: Vec<_> = rows
        .iter()
        .map(|row| {
            (
                row.id.as_str(),
                row.at,
                row.actor.as_ref(),
                row.client.as_str(),
                row.kind.as_ref(),
                row.action.as_ref(),
                row.server.as_str(),
                row.tool.as_str(),
                row.outcome.as_ref(),
                row.duration_ms,
                row.detail.as_str(),
            )
        })
        .collect();
    serde_json::to_string(&rows)
}

impl Store {
    pub async fn append_audit(&self, row: &AuditRow) -> Result<(), StoreError> {
        self.append_audit_batch(std::slice::from_ref(row)).await
    }

    /// Appends rows, all or none: they are one statement.
    pub async fn append_audit_batch(&self, rows: &[AuditRow]) -> Result<(), StoreError> {
        let mut connection = self.pool.acquire().await?;
        self.append_audit_in(&mut connection, rows).await
    }

    /// [`Self::append_audit_batch`] on a connection the caller holds (inside its transaction).
    pub(crate) async fn append_audit_in(
        &self,
        connection: &mut sqlx::AnyConnection,
        rows: &[AuditRow],
    ) -> Result<(), StoreError> {
        if rows.is_empty() {
            return Ok(());
        }
        let sql = match self.backend {
            Backend::Sqlite => SQLITE_BATCH_INSERT,
            Backend::Postgres => POSTGRES_BATCH_INSERT,
        };
        // Strings and numbers always encode; the error is kept rather than a row dropped.
        let rows = batch_json(rows).map_err(|error| {
            StoreError::Corrupt(format!("an audit batch did not encode: {error}"))
        })?;
        sqlx::query(sql)
            .bind(rows.as_str())
            .execute(&mut *connection)
            .await?;
        Ok(())
    }

    /// Rows matching the query, oldest first, at most `limit`.
    pub async fn audit(&self, query: &AuditQuery) -> Result<Vec<AuditRow>, StoreError> {
        // Unused filters compare a column with itself, so the statement stays one fixed text.
        const SELECT: &str = "SELECT id, at, actor, client, kind, action, server, tool, outcome, \
                   duration_ms, detail FROM audit WHERE ($1 = '' OR actor = $1) \
                   AND ($2 = '' OR server = $2) AND ($3 = '' OR tool = $3) \
                   AND ($4 = '' OR outcome = $4) AND at >= $5 AND at < $6";
        let sql = if query.newest_first {
            format!("{SELECT} AND ($7 = '' OR id < $7) ORDER BY id DESC LIMIT $8")
        } else {
            format!("{SELECT} AND id > $7 ORDER BY id LIMIT $8")
        };
        let rows = sqlx::query(&sql)
            .bind(query.actor.clone().unwrap_or_default())
            .bind(query.server.clone().unwrap_or_default())
            .bind(query.tool.clone().unwrap_or_default())
            .bind(query.outcome.clone().unwrap_or_default())
            .bind(query.since.unwrap_or(i64::MIN))
            .bind(query.until.unwrap_or(i64::MAX))
            .bind(query.after.clone().unwrap_or_default())
            .bind(i64::from(query.limit))
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| {
                Ok(AuditRow {
                    id: row.try_get("id")?,
                    at: row.try_get("at")?,
                    actor: row.try_get::<String, _>("actor")?.into(),
                    client: row.try_get("client")?,
                    kind: row.try_get::<String, _>("kind")?.into(),
                    action: row.try_get::<String, _>("action")?.into(),
                    server: row.try_get("server")?,
                    tool: row.try_get("tool")?,
                    outcome: row.try_get::<String, _>("outcome")?.into(),
                    duration_ms: row.try_get("duration_ms")?,
                    detail: row.try_get("detail")?,
                })
            })
            .collect()
    }

    /// Deletes rows older than `before` (unix milliseconds); returns how many.
    pub async fn prune_audit(&self, before: i64) -> Result<u64, StoreError> {
        let result = sqlx::query("DELETE FROM audit WHERE at < $1")
            .bind(before)
            .execute(&self.pool)
            .await?;
        Ok(result.rows_affected())
    }
}
