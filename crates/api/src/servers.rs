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

/// Parses a JSON body; serde's message names the field and the position.
pub fn parse_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|error| {
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
    _caller: Caller,
    body: crate::error::Body,
) -> Result<Response, ApiError> {
    let body: CreateServer = parse_body(&body?)?;
    let server = state.gateway.create(body).await?;
    Ok((StatusCode::CREATED, Json(server)).into_response())
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
    _caller: Caller,
    Path(id): Path<String>,
    body: crate::error::Body,
) -> Result<Response, ApiError> {
    let body: UpdateServer = parse_body(&body?)?;
    Ok(Json(state.gateway.update(&id, body).await?).into_response())
}

pub async fn delete(
    State(state): State<AppState>,
    _caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    state.gateway.delete(&id).await?;
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
