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
    /// Rows after this id (the previous page's last), oldest first.
    pub after: Option<String>,
    pub limit: u32,
}

/// Rows one `INSERT` carries: 11 parameters each stays far below SQLite's and PostgreSQL's
/// limits on parameters per statement.
const ROWS_PER_INSERT: usize = 16;
/// Columns of an audit row.
const AUDIT_COLUMNS: usize = 11;

/// `INSERT INTO audit … VALUES (…), (…)` for `rows` rows. PostgreSQL needs numbered
/// placeholders; SQLite gets anonymous ones, because binding a numbered one looks its name up in a
/// list of every name (so a batch cost time in the square of its parameters).
fn insert_statement(rows: usize, backend: Backend) -> String {
    use std::fmt::Write as _;
    let mut sql = String::from(
        "INSERT INTO audit (id, at, actor, client, kind, action, server, tool, outcome, \
         duration_ms, detail) VALUES ",
    );
    for row in 0..rows {
        sql.push_str(if row == 0 { "(" } else { ", (" });
        for column in 0..AUDIT_COLUMNS {
            let separator = if column == 0 { "" } else { ", " };
            match backend {
                Backend::Sqlite => {
                    let _ = write!(sql, "{separator}?");
                }
                Backend::Postgres => {
                    let _ = write!(sql, "{separator}${}", row * AUDIT_COLUMNS + column + 1);
                }
            }
        }
        sql.push(')');
    }
    sql
}

impl Store {
    pub async fn append_audit(&self, row: &AuditRow) -> Result<(), StoreError> {
        self.append_audit_batch(std::slice::from_ref(row)).await
    }

    /// Appends rows in one transaction: one commit for the lot, with [`ROWS_PER_INSERT`] rows
    /// per statement where there are that many (a statement costs more than a row). Only two
    /// statement texts exist, so each connection caches two prepared statements, not one per
    /// batch size.
    pub async fn append_audit_batch(&self, rows: &[AuditRow]) -> Result<(), StoreError> {
        type Statements = std::sync::OnceLock<(String, String)>;
        static SQLITE: Statements = std::sync::OnceLock::new();
        static POSTGRES: Statements = std::sync::OnceLock::new();
        let texts = match self.backend {
            Backend::Sqlite => &SQLITE,
            Backend::Postgres => &POSTGRES,
        };
        let (many, one) = texts.get_or_init(|| {
            (
                insert_statement(ROWS_PER_INSERT, self.backend),
                insert_statement(1, self.backend),
            )
        });
        let mut transaction = self.pool.begin().await?;
        let full = rows.len() / ROWS_PER_INSERT * ROWS_PER_INSERT;
        let (chunked, rest) = rows.split_at(full);
        let statements = chunked
            .chunks(ROWS_PER_INSERT)
            .map(|chunk| (many.as_str(), chunk))
            .chain(rest.chunks(1).map(|row| (one.as_str(), row)));
        for (sql, chunk) in statements {
            let mut query = sqlx::query(sql);
            for row in chunk {
                // Bound as `&str`, which sqlx's `Any` driver borrows; a `&String` it copies.
                query = query
                    .bind(row.id.as_str())
                    .bind(row.at)
                    .bind(row.actor.as_ref())
                    .bind(row.client.as_str())
                    .bind(row.kind.as_ref())
                    .bind(row.action.as_ref())
                    .bind(row.server.as_str())
                    .bind(row.tool.as_str())
                    .bind(row.outcome.as_ref())
                    .bind(row.duration_ms)
                    .bind(row.detail.as_str());
            }
            query.execute(&mut *transaction).await?;
        }
        transaction.commit().await?;
        Ok(())
    }

    /// Rows matching the query, oldest first, at most `limit`.
    pub async fn audit(&self, query: &AuditQuery) -> Result<Vec<AuditRow>, StoreError> {
        // Unused filters compare a column with itself, so the statement stays one fixed text.
        let sql = "SELECT id, at, actor, client, kind, action, server, tool, outcome, duration_ms, \
                   detail FROM audit WHERE ($1 = '' OR actor = $1) AND ($2 = '' OR server = $2) \
                   AND ($3 = '' OR tool = $3) AND ($4 = '' OR outcome = $4) AND at >= $5 \
                   AND at < $6 AND id > $7 ORDER BY id LIMIT $8";
        let rows = sqlx::query(sql)
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
