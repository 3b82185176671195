//! Runs kept for reading later: each finished run stored with its secrets masked, listed and read
//! at `GET /api/runs` and `GET /api/runs/{id}`, and by the console.

use axum::{
    Json,
    extract::{Path, Query, State},
    response::{IntoResponse, Response},
};
use serde::Deserialize;
use serde_json::{Value, json};
use switchboard_agent::{Redactor, RunRecord, RunResult, RunSpec};
use switchboard_gateway::{Gateway, GatewayError};
use switchboard_store::RunRow;

use crate::{
    AppState,
    auth::Caller,
    error::{ApiError, Params, page_limit},
};

/// What a run is kept with, taken from its spec before the run consumes it.
pub(crate) struct Keeping {
    task: String,
    model: String,
    servers: Vec<String>,
    actor: String,
    started_at: i64,
    /// Every secret of the spec, masked in all that is kept.
    redactor: Redactor,
}

impl Keeping {
    pub(crate) fn of(spec: &RunSpec, caller: &Caller) -> Self {
        Self {
            task: spec.task.clone(),
            model: spec.model.clone(),
            servers: spec.server_names(),
            actor: caller.actor.clone(),
            started_at: switchboard_auth::secret::now_ms(),
            redactor: spec.redactor(),
        }
    }

    /// Stores the run. A failure is logged, not answered: the run itself went as it went.
    pub(crate) async fn keep(self, gateway: &Gateway, result: &RunResult) {
        let record = RunRecord {
            task: self.task,
            model: self.model,
            servers: self.servers,
            actor: self.actor,
            started_at: self.started_at,
            result: result.clone(),
        };
        let mut value = match serde_json::to_value(&record) {
            Ok(value) => value,
            Err(error) => {
                tracing::error!(run_id = %result.run_id, %error, "a run did not encode");
                return;
            }
        };
        self.redactor.redact_json(&mut value);
        let text = |key: &str| value[key].as_str().unwrap_or_default().to_string();
        let tool_calls: usize = result
            .steps
            .iter()
            .map(|step| step.tool_results.len())
            .sum();
        let row = RunRow {
            id: switchboard_gateway::audit::row_id(self.started_at),
            run_id: result.run_id.clone(),
            at: self.started_at,
            actor: text("actor"),
            model: text("model"),
            task: text("task"),
            stop_reason: result.stop_reason.as_str().into(),
            duration_ms: result.duration_ms as i64,
            steps: result.steps.len() as i64,
            tool_calls: tool_calls as i64,
            tokens: (result.token_usage.prompt_tokens + result.token_usage.completion_tokens)
                as i64,
        };
        if let Err(error) = gateway.store().insert_run(&row, &value.to_string()).await {
            tracing::error!(run_id = %result.run_id, %error, "keeping a run failed");
        }
    }
}

/// A page of runs, newest first.
pub(crate) async fn page(
    gateway: &Gateway,
    before: Option<&str>,
    limit: u32,
) -> Result<(Vec<RunRow>, Option<String>), GatewayError> {
    let rows = gateway.store().runs(before, limit).await?;
    let next = (rows.len() == limit as usize)
        .then(|| rows.last().map(|row| row.id.clone()))
        .flatten();
    Ok((rows, next))
}

/// One kept run, as its record.
pub(crate) async fn record(gateway: &Gateway, run_id: &str) -> Result<RunRecord, ApiError> {
    let (_, record) = gateway
        .store()
        .run(run_id)
        .await
        .map_err(GatewayError::from)?
        .ok_or_else(|| ApiError::not_found(format!("no run `{run_id}` is kept")))?;
    serde_json::from_str(&record).map_err(|error| {
        tracing::error!(%run_id, %error, "a kept run does not read back");
        GatewayError::Store(switchboard_store::StoreError::Corrupt("a kept run".into())).into()
    })
}

fn summary(row: &RunRow) -> Value {
    json!({
        "run_id": row.run_id,
        "started_at": row.at,
        "actor": row.actor,
        "model": row.model,
        "task": row.task,
        "stop_reason": row.stop_reason,
        "duration_ms": row.duration_ms,
        "steps": row.steps,
        "tool_calls": row.tool_calls,
        "tokens": row.tokens,
    })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunsParams {
    limit: Option<u32>,
    /// The previous page's `next_cursor`.
    cursor: Option<String>,
}

/// `GET /api/runs`: kept runs, newest first, a page at a time.
pub async fn list(
    State(state): State<AppState>,
    _caller: Caller,
    query: Params<RunsParams>,
) -> Result<Response, ApiError> {
    let Query(params) = query?;
    let limit = page_limit(params.limit, 50, 500)?;
    let (rows, next) = page(&state.gateway, params.cursor.as_deref(), limit).await?;
    let items: Vec<Value> = rows.iter().map(summary).collect();
    Ok(Json(json!({"items": items, "next_cursor": next})).into_response())
}

/// `GET /api/runs/{id}`: one kept run, whole.
pub async fn get(
    State(state): State<AppState>,
    _caller: Caller,
    Path(run_id): Path<String>,
) -> Result<Response, ApiError> {
    Ok(Json(record(&state.gateway, &run_id).await?).into_response())
}
