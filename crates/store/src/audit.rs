//! The audit log's SQL: append, query with filters and a cursor, prune.

use sqlx::Row;

use crate::{Store, StoreError};

/// One audit row. Empty strings stand for "not applicable" (an admin action has no tool).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditRow {
    /// Sorts by time: `{at:013}-{random}`.
    pub id: String,
    /// Unix milliseconds.
    pub at: i64,
    /// Who: `admin` until sign-in lands.
    pub actor: String,
    /// Which client: its MCP `clientInfo` name, or the HTTP user agent.
    pub client: String,
    /// `admin`, `tool_call` (proxied) or `run_tool_call`.
    pub kind: String,
    /// What: `server.create`, `tools/call`…
    pub action: String,
    pub server: String,
    pub tool: String,
    /// `ok`, `error` or `denied`.
    pub outcome: String,
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

impl Store {
    pub async fn append_audit(&self, row: &AuditRow) -> Result<(), StoreError> {
        self.append_audit_batch(std::slice::from_ref(row)).await
    }

    /// Appends rows in one transaction: one commit, and one sync to disk, for the lot.
    pub async fn append_audit_batch(&self, rows: &[AuditRow]) -> Result<(), StoreError> {
        let mut transaction = self.pool.begin().await?;
        for row in rows {
            sqlx::query(
                "INSERT INTO audit (id, at, actor, client, kind, action, server, tool, outcome, \
                 duration_ms, detail) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            )
            .bind(&row.id)
            .bind(row.at)
            .bind(&row.actor)
            .bind(&row.client)
            .bind(&row.kind)
            .bind(&row.action)
            .bind(&row.server)
            .bind(&row.tool)
            .bind(&row.outcome)
            .bind(row.duration_ms)
            .bind(&row.detail)
            .execute(&mut *transaction)
            .await?;
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
                    actor: row.try_get("actor")?,
                    client: row.try_get("client")?,
                    kind: row.try_get("kind")?,
                    action: row.try_get("action")?,
                    server: row.try_get("server")?,
                    tool: row.try_get("tool")?,
                    outcome: row.try_get("outcome")?,
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
