//! Discovery: Protected Resource Metadata (RFC 9728) for each endpoint, path-inserted and at the
//! root, and the authorization server's metadata (RFC 8414).

use axum::{
    Json,
    extract::{Path, State},
    response::{IntoResponse, Response},
};
use serde_json::json;
use switchboard_auth::{Resource, Scope};

use crate::{AppState, error::ApiError};

/// The metadata of the resource at `/{path}`: `mcp`, `mcp/{alias}`, `mcp/admin`, `mcp/user` or
/// `api`.
pub(super) async fn resource(State(state): State<AppState>, Path(path): Path<String>) -> Response {
    let uri = format!("{}/{path}", state.auth.issuer());
    match Resource::of_uri(&uri, state.auth.issuer()) {
        Some(resource) => resource_document(&state, &resource),
        None => ApiError::not_found("no protected resource at this path").into_response(),
    }
}

/// At the root, for clients that do not insert the path: the resource of `/mcp`, which every
/// user's client can use.
pub(super) async fn root_resource(State(state): State<AppState>) -> Response {
    resource_document(&state, &Resource::Aggregate)
}

fn resource_document(state: &AppState, resource: &Resource) -> Response {
    let issuer = state.auth.issuer();
    let scopes: Vec<&str> = resource.scopes().iter().map(Scope::name).collect();
    Json(json!({
        "resource": resource.uri(issuer),
        "authorization_servers": [issuer],
        "scopes_supported": scopes,
        "bearer_methods_supported": ["header"],
        "resource_name": format!("Switchboard {}", resource.path()),
    }))
    .into_response()
}

/// RFC 8414 metadata; the same document answers at OpenID Connect's discovery address, which
/// some clients try first.
pub(super) async fn authorization_server(State(state): State<AppState>) -> Response {
    let issuer = state.auth.issuer();
    let scopes: Vec<&str> = Scope::ALL.iter().map(|scope| scope.name()).collect();
    let methods = ["none", "client_secret_basic", "client_secret_post"];
    Json(json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/oauth/authorize"),
        "token_endpoint": format!("{issuer}/oauth/token"),
        "registration_endpoint": format!("{issuer}/oauth/register"),
        "revocation_endpoint": format!("{issuer}/oauth/revoke"),
        "scopes_supported": scopes,
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": methods,
        "revocation_endpoint_auth_methods_supported": methods,
        "client_id_metadata_document_supported": true,
        "authorization_response_iss_parameter_supported": true,
    }))
    .into_response()
}
