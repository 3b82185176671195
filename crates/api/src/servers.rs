//! The registry's REST face: `/api/mcp-servers` and `/api/catalog`.

use axum::{
    Json,
    extract::{Path, Query, State},
    http::StatusCode,
    response::{IntoResponse, Response},
};

use serde::Deserialize;
use serde_json::json;
use switchboard_gateway::model::{CreateServer, UpdateServer};

use crate::{AppState, auth::Caller, error::ApiError};

/// Parses a JSON object body (see `switchboard_tools::shape`); serde's message names the field.
pub fn parse_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    switchboard_tools::shape::parse_object(body).map_err(|error| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            format!("invalid request body: {error}"),
        )
    })
}

pub async fn list(State(state): State<AppState>, _caller: Caller) -> Result<Response, ApiError> {
    let servers = state.gateway.list().await?;
    Ok(Json(json!({"items": servers})).into_response())
}

pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    body: crate::error::Body,
) -> Result<Response, ApiError> {
    let action = caller.action("server.create", "");
    let created = async {
        let body: CreateServer = parse_body(&body?)?;
        Ok(state.gateway.create(body, &action).await?)
    }
    .await;
    crate::auth::audit_failure(&state, &action, &created);
    Ok((StatusCode::CREATED, Json(created?)).into_response())
}

/// `POST /api/mcp-servers/import`: every entry of an `mcpServers` block, each one's outcome.
pub async fn import(
    State(state): State<AppState>,
    caller: Caller,
    body: crate::error::Body,
) -> Result<Response, ApiError> {
    let action = caller.action("server.import", "");
    let imported = async {
        let block: serde_json::Value = parse_body(&body?)?;
        Ok(state.gateway.import_servers(&block, &action).await?)
    }
    .await;
    crate::auth::audit_failure(&state, &action, &imported);
    Ok(Json(json!({"items": imported?})).into_response())
}

pub async fn get(
    State(state): State<AppState>,
    _caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    Ok(Json(state.gateway.get(&id).await?).into_response())
}

pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: crate::error::Body,
) -> Result<Response, ApiError> {
    let action = caller.action("server.update", &id);
    let updated = async {
        let body: UpdateServer = parse_body(&body?)?;
        Ok(state.gateway.update(&id, body, &action).await?)
    }
    .await;
    crate::auth::audit_failure(&state, &action, &updated);
    Ok(Json(updated?).into_response())
}

pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let action = caller.action("server.delete", &id);
    let deleted = state
        .gateway
        .delete(&id, &action)
        .await
        .map_err(ApiError::from);
    crate::auth::audit_failure(&state, &action, &deleted);
    deleted?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub async fn tools(
    State(state): State<AppState>,
    _caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let tools = state.gateway.tools(&id).await?;
    Ok(Json(json!({"items": tools})).into_response())
}

#[derive(Debug, Deserialize)]
pub struct CatalogQuery {
    search: Option<String>,
}

pub async fn catalog(
    State(state): State<AppState>,
    _caller: Caller,
    Query(query): Query<CatalogQuery>,
) -> Result<Response, ApiError> {
    let entries = state.gateway.catalog().search(query.search.as_deref());
    Ok(Json(json!({"items": entries})).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditParams {
    /// The actor.
    user: Option<String>,
    server: Option<String>,
    tool: Option<String>,
    outcome: Option<String>,
    /// Unix milliseconds, inclusive.
    since: Option<i64>,
    /// Unix milliseconds, exclusive.
    until: Option<i64>,
    /// At most this many rows (default 100, at most 1000).
    limit: Option<u32>,
    /// The previous page's `nextCursor`.
    cursor: Option<String>,
}

/// `GET /api/audit`: the audit log, oldest first, filtered and paginated.
pub async fn audit(
    State(state): State<AppState>,
    _caller: Caller,
    query: crate::error::Params<AuditParams>,
) -> Result<Response, ApiError> {
    let Query(params) = query?;
    let limit = crate::error::page_limit(params.limit, 100, 1000)?;
    if let Some(outcome) = &params.outcome
        && !["ok", "error", "denied"].contains(&outcome.as_str())
    {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "`outcome` must be ok, error or denied",
        ));
    }
    let query = switchboard_store::AuditQuery {
        actor: params.user,
        server: params.server,
        tool: params.tool,
        outcome: params.outcome,
        since: params.since,
        until: params.until,
        after: params.cursor,
        limit,
        newest_first: false,
    };
    // Rows still queued are written first, so an answer never misses what already happened.
    state.gateway.audit().flush().await;
    let rows = state
        .gateway
        .store()
        .audit(&query)
        .await
        .map_err(switchboard_gateway::GatewayError::from)?;
    let next_cursor = (rows.len() == limit as usize)
        .then(|| rows.last().map(|row| row.id.clone()))
        .flatten();
    Ok(Json(json!({"items": rows, "nextCursor": next_cursor})).into_response())
}
