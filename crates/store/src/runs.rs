//! Agent runs as stored: a summary per run, and its whole record as JSON.

use sqlx::{Row, any::AnyRow};

use crate::{Store, StoreError};

/// One run's summary. The strings come masked: the store keeps what it is given.
#[derive(Debug, Clone, PartialEq)]
pub struct RunRow {
    /// Sorts by time: `{at:013}-{random}`, the order pages follow.
    pub id: String,
    /// The run's own id, as `POST /run` answered it.
    pub run_id: String,
    /// When it started, Unix milliseconds.
    pub at: i64,
    /// Who started it.
    pub actor: String,
    pub model: String,
    pub task: String,
    pub stop_reason: String,
    pub duration_ms: i64,
    pub steps: i64,
    pub tool_calls: i64,
    /// Prompt and completion tokens together.
    pub tokens: i64,
}

const SUMMARY_COLUMNS: &str =
    "id, run_id, at, actor, model, task, stop_reason, duration_ms, steps, tool_calls, tokens";

fn summary(row: &AnyRow) -> Result<RunRow, StoreError> {
    Ok(RunRow {
        id: row.try_get("id")?,
        run_id: row.try_get("run_id")?,
        at: row.try_get("at")?,
        actor: row.try_get("actor")?,
        model: row.try_get("model")?,
        task: row.try_get("task")?,
        stop_reason: row.try_get("stop_reason")?,
        duration_ms: row.try_get("duration_ms")?,
        steps: row.try_get("steps")?,
        tool_calls: row.try_get("tool_calls")?,
        tokens: row.try_get("tokens")?,
    })
}

impl Store {
    /// Keeps a run: its summary and its record (JSON).
    pub async fn insert_run(&self, run: &RunRow, record: &str) -> Result<(), StoreError> {
        sqlx::query(&format!(
            "INSERT INTO runs ({SUMMARY_COLUMNS}, record) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
        ))
        .bind(&run.id)
        .bind(&run.run_id)
        .bind(run.at)
        .bind(&run.actor)
        .bind(&run.model)
        .bind(&run.task)
        .bind(&run.stop_reason)
        .bind(run.duration_ms)
        .bind(run.steps)
        .bind(run.tool_calls)
        .bind(run.tokens)
        .bind(record)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Runs newest first, those before the cursor (a row's `id`) when one is given.
    pub async fn runs(&self, before: Option<&str>, limit: u32) -> Result<Vec<RunRow>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {SUMMARY_COLUMNS} FROM runs WHERE ($1 = '' OR id < $1) \
             ORDER BY id DESC LIMIT $2"
        ))
        .bind(before.unwrap_or_default())
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(summary).collect()
    }

    /// One run by its run id: its summary and record.
    pub async fn run(&self, run_id: &str) -> Result<Option<(RunRow, String)>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {SUMMARY_COLUMNS}, record FROM runs WHERE run_id = $1"
        ))
        .bind(run_id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| Ok((summary(&row)?, row.try_get("record")?)))
            .transpose()
    }

    /// Deletes runs started before `before` (unix milliseconds); returns how many.
    pub async fn prune_runs(&self, before: i64) -> Result<u64, StoreError> {
        let result = sqlx::query("DELETE FROM runs WHERE at < $1")
            .bind(before)
            .execute(&self.pool)
            .await?;
        Ok(result.rows_affected())
    }
}
