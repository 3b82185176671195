//! The gateway as the OAuth 2.1 authorization server of its own MCP endpoints (the MCP
//! authorization spec, 2025-11-25 and 2026-07-28): discovery documents, the authorization and
//! token endpoints, registration and revocation, and the browser pages around them (sign-in,
//! consent, authorized clients). The rules are `switchboard_auth`'s; a token is judged where
//! every request is, at the policy point.

mod account;
mod authorize;
mod browser;
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

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/.well-known/oauth-protected-resource",
            get(metadata::root_resource),
        )
        .route(
            "/.well-known/oauth-protected-resource/{*path}",
            get(metadata::resource),
        )
        .route(
            "/.well-known/oauth-authorization-server",
            get(metadata::authorization_server),
        )
        .route(
            "/.well-known/openid-configuration",
            get(metadata::authorization_server),
        )
        .route(
            "/oauth/authorize",
            get(authorize::start).post(authorize::decide),
        )
        .route("/oauth/token", post(endpoints::token))
        .route("/oauth/revoke", post(endpoints::revoke))
        .route("/oauth/register", post(endpoints::register))
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
