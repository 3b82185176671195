//! The gateway as the OAuth 2.1 authorization server of its own MCP endpoints (the MCP
//! authorization spec, 2025-11-25 and 2026-07-28): discovery documents, the authorization and
//! token endpoints, registration and revocation, and the browser pages around them (sign-in,
//! consent, authorized clients). The rules are `switchboard_auth`'s; a token is judged where
//! every request is, at the policy point.

pub(crate) mod account;
mod authorize;
pub(crate) mod browser;
mod endpoints;
mod metadata;
mod pages;

use axum::{
    Router,
    routing::{delete, get, post},
};

use crate::AppState;

/// Records a sign-in event in the audit log (kind `sign_in`): who, what (`login`,
/// `login.oidc`, `consent.approve`, `consent.deny`, `client.revoke`), the outcome, and details
/// that hold no secret.
pub(crate) fn audit(
    state: &AppState,
    actor: &str,
    action: &'static str,
    outcome: &'static str,
    detail: serde_json::Value,
) {
    state
        .gateway
        .audit()
        .record(switchboard_gateway::audit::AuditEntry {
            actor: actor.chars().take(100).collect::<String>().into(),
            kind: "sign_in",
            action: action.into(),
            outcome,
            detail,
            ..Default::default()
        });
}

/// Discovery, the token endpoint, revocation and registration, which a client running in a
/// browser (the MCP Inspector's page) calls from its own origin: they answer any origin (CORS),
/// as they take no cookie and act on nothing but what the request carries.
fn for_any_origin() -> Router<AppState> {
    use axum::http::{HeaderName, Method, header};
    let cors = tower_http::cors::CorsLayer::new()
        .allow_origin(tower_http::cors::Any)
        .allow_methods([Method::GET, Method::POST])
        .allow_headers([
            header::CONTENT_TYPE,
            header::AUTHORIZATION,
            HeaderName::from_static("mcp-protocol-version"),
        ]);
    Router::new()
        .route(
            "/.well-known/oauth-protected-resource",
            get(metadata::root_resource).options(preflight),
        )
        .route(
            "/.well-known/oauth-protected-resource/{*path}",
            get(metadata::resource).options(preflight),
        )
        .route(
            "/.well-known/oauth-authorization-server",
            get(metadata::authorization_server).options(preflight),
        )
        .route(
            "/.well-known/openid-configuration",
            get(metadata::authorization_server).options(preflight),
        )
        .route("/oauth/token", post(endpoints::token).options(preflight))
        .route("/oauth/revoke", post(endpoints::revoke).options(preflight))
        .route(
            "/oauth/register",
            post(endpoints::register).options(preflight),
        )
        .layer(cors)
}

/// A CORS preflight: the CORS layer answers it before this runs; routed so that it reaches the
/// layer rather than the router's 405.
async fn preflight() -> axum::http::StatusCode {
    axum::http::StatusCode::NO_CONTENT
}

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .merge(for_any_origin())
        .route(
            "/oauth/authorize",
            get(authorize::start).post(authorize::decide),
        )
        .route("/login", get(browser::login_page).post(browser::login))
        .route("/logout", post(browser::logout))
        .route("/login/oidc", get(browser::external_start))
        .route("/login/oidc/callback", get(browser::external_finish))
        .route("/account/clients", get(account::page))
        .route("/account/clients/revoke", post(account::revoke_form))
        .route("/api/me/clients", get(account::list))
        .route("/api/me/clients/{client_id}", delete(account::revoke))
        .route("/api/me/keys", get(account::keys).post(account::create_key))
        .route("/api/me/keys/{id}", delete(account::revoke_key))
        .route("/assets/site.css", get(pages::stylesheet))
}
