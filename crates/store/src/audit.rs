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

/// A batch of audit rows as one statement: the rows travel as one flat JSON array, their
/// columns one after another, which the database unpacks and folds back into rows of
/// [`COLUMNS`] values. One statement per batch, whatever its size, is one round trip to SQLite's
/// worker thread (each cost thread wake-ups on both sides) and one to PostgreSQL; bound one by
/// one, a batch took up to 31 statements. Flat, each value is read out of the JSON once: an
/// array per row was read again for each of its columns, which cost more than the rest of the
/// row's insert (callgrind).
const SQLITE_BATCH_INSERT: &str = "INSERT INTO audit (id, at, actor, client, kind, action, \
     server, tool, outcome, duration_ms, detail) SELECT \
     max(CASE key % 11 WHEN 0 THEN value END), max(CASE key % 11 WHEN 1 THEN value END), \
     max(CASE key % 11 WHEN 2 THEN value END), max(CASE key % 11 WHEN 3 THEN value END), \
     max(CASE key % 11 WHEN 4 THEN value END), max(CASE key % 11 WHEN 5 THEN value END), \
     max(CASE key % 11 WHEN 6 THEN value END), max(CASE key % 11 WHEN 7 THEN value END), \
     max(CASE key % 11 WHEN 8 THEN value END), max(CASE key % 11 WHEN 9 THEN value END), \
     max(CASE key % 11 WHEN 10 THEN value END) FROM json_each(?) GROUP BY key / 11";
/// The same for PostgreSQL, whose elements count from 1.
const POSTGRES_BATCH_INSERT: &str = "INSERT INTO audit (id, at, actor, client, kind, action, \
     server, tool, outcome, duration_ms, detail) SELECT \
     max(CASE (n - 1) % 11 WHEN 0 THEN v END), max(CASE (n - 1) % 11 WHEN 1 THEN v END)::bigint, \
     max(CASE (n - 1) % 11 WHEN 2 THEN v END), max(CASE (n - 1) % 11 WHEN 3 THEN v END), \
     max(CASE (n - 1) % 11 WHEN 4 THEN v END), max(CASE (n - 1) % 11 WHEN 5 THEN v END), \
     max(CASE (n - 1) % 11 WHEN 6 THEN v END), max(CASE (n - 1) % 11 WHEN 7 THEN v END), \
     max(CASE (n - 1) % 11 WHEN 8 THEN v END), max(CASE (n - 1) % 11 WHEN 9 THEN v END)::bigint, \
     max(CASE (n - 1) % 11 WHEN 10 THEN v END) \
     FROM json_array_elements_text($1::json) WITH ORDINALITY AS t(v, n) GROUP BY (n - 1) / 11";

/// The values of a row, in the statements' column order.
const COLUMNS: usize = 11;

/// One value of the flat batch.
#[derive(serde::Serialize)]
#[serde(untagged)]
enum Cell<'a> {
    Text(&'a str),
    Number(i64),
}

/// The rows as the batch statements take them.
fn batch_json(rows: &[AuditRow]) -> Result<String, serde_json::Error> {
    let mut cells = Vec::with_capacity(rows.len() * COLUMNS);
    for row in rows {
        cells.extend([
            Cell::Text(&row.id),
            Cell::Number(row.at),
            Cell::Text(&row.actor),
            Cell::Text(&row.client),
            Cell::Text(&row.kind),
            Cell::Text(&row.action),
            Cell::Text(&row.server),
            Cell::Text(&row.tool),
            Cell::Text(&row.outcome),
            Cell::Number(row.duration_ms),
            Cell::Text(&row.detail),
        ]);
    }
    serde_json::to_string(&cells)
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
