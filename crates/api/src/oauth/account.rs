//! The clients a signed-in user has authorized: a page and a JSON API, each able to revoke one.

use axum::{
    Form, Json,
    extract::{Path, State},
    http::StatusCode,
    response::{IntoResponse, Redirect, Response},
};
use axum_extra::extract::cookie::CookieJar;

use super::{
    browser::{csrf, csrf_ok, error_page, login_url, signed_in, stale_form},
    pages::ClientsPage,
};
use crate::{AppState, error::ApiError};

const PAGE: &str = "/account/clients";

pub(super) async fn page(State(state): State<AppState>, jar: CookieJar) -> Response {
    let Some(user) = signed_in(&state, &jar).await else {
        return Redirect::to(&login_url(PAGE)).into_response();
    };
    let clients = match state.auth.authorized_clients(&user.id).await {
        Ok(clients) => clients,
        Err(error) => {
            tracing::error!(%error, "cannot list authorized clients");
            return error_page(
                StatusCode::INTERNAL_SERVER_ERROR,
                jar,
                "Something went wrong",
                "Your authorized clients could not be read; try again.",
            );
        }
    };
    let (jar, csrf) = csrf(&state, jar);
    let html = ClientsPage {
        signed_in: Some(&user.username),
        csrf: &csrf,
        clients,
    }
    .render();
    super::browser::page(StatusCode::OK, jar, html)
}

#[derive(serde::Deserialize)]
pub(super) struct RevokeForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    client_id: String,
}

pub(super) async fn revoke_form(
    State(state): State<AppState>,
    jar: CookieJar,
    Form(form): Form<RevokeForm>,
) -> Response {
    if !csrf_ok(&jar, &form.csrf) {
        return stale_form(jar, "Revoke clients from this gateway's own page.");
    }
    let Some(user) = signed_in(&state, &jar).await else {
        return Redirect::to(&login_url(PAGE)).into_response();
    };
    revoke_for(&state, &user, &form.client_id).await;
    Redirect::to(PAGE).into_response()
}

/// Revokes a client the user authorized, audited; a failure is logged (the page shows what is
/// left).
pub(crate) async fn revoke_for(
    state: &AppState,
    user: &switchboard_store::UserRow,
    client_id: &str,
) {
    match state.auth.revoke_client(&user.id, client_id).await {
        Ok(_) => revoked(state, &user.username, client_id),
        Err(error) => tracing::error!(%error, "cannot revoke a client"),
    }
}

/// The JSON API's user: the browser session's (cookies are SameSite=Lax, and a `DELETE` from
/// another site cannot carry them).
async fn api_user(
    state: &AppState,
    jar: &CookieJar,
) -> Result<switchboard_store::UserRow, ApiError> {
    signed_in(state, jar)
        .await
        .ok_or_else(|| ApiError::unauthorized("sign in first: this API is for the signed-in user"))
}

pub(super) async fn list(State(state): State<AppState>, jar: CookieJar) -> Response {
    let user = match api_user(&state, &jar).await {
        Ok(user) => user,
        Err(error) => return error.into_response(),
    };
    match state.auth.authorized_clients(&user.id).await {
        Ok(clients) => Json(serde_json::json!({"clients": clients})).into_response(),
        Err(error) => {
            ApiError::from(switchboard_gateway::GatewayError::from(error)).into_response()
        }
    }
}

pub(super) async fn revoke(
    State(state): State<AppState>,
    jar: CookieJar,
    Path(client_id): Path<String>,
) -> Response {
    let user = match api_user(&state, &jar).await {
        Ok(user) => user,
        Err(error) => return error.into_response(),
    };
    match state.auth.revoke_client(&user.id, &client_id).await {
        Ok(true) => {
            revoked(&state, &user.username, &client_id);
            StatusCode::NO_CONTENT.into_response()
        }
        Ok(false) => ApiError::not_found("you have not authorized this client").into_response(),
        Err(error) => {
            ApiError::from(switchboard_gateway::GatewayError::from(error)).into_response()
        }
    }
}

fn revoked(state: &AppState, username: &str, client_id: &str) {
    super::audit(
        state,
        username,
        "client.revoke",
        "ok",
        serde_json::json!({"clientId": client_id}),
    );
}

/// The signed-in user's API keys (never the keys themselves).
pub(super) async fn keys(State(state): State<AppState>, jar: CookieJar) -> Response {
    let user = match api_user(&state, &jar).await {
        Ok(user) => user,
        Err(error) => return error.into_response(),
    };
    match state.gateway.keys(Some(&user.id)).await {
        Ok(keys) => Json(serde_json::json!({"items": keys})).into_response(),
        Err(error) => ApiError::from(error).into_response(),
    }
}

/// The signed-in user makes a key of their own; it is shown once.
pub(super) async fn create_key(
    State(state): State<AppState>,
    jar: CookieJar,
    body: crate::error::Body,
) -> Response {
    let user = match api_user(&state, &jar).await {
        Ok(user) => user,
        Err(error) => return error.into_response(),
    };
    let made = async {
        let body: switchboard_gateway::api_keys::KeyBody = crate::servers::parse_body(&body?)?;
        if body
            .user
            .as_deref()
            .is_some_and(|owner| owner != user.id && owner != user.username)
        {
            return Err(ApiError::from(
                switchboard_gateway::GatewayError::Forbidden(
                    "you make keys for yourself only".into(),
                ),
            ));
        }
        let action = self_action(&user, "key.create");
        Ok(state.gateway.create_key(&user.id, &body, &action).await?)
    }
    .await;
    match made {
        Ok(key) => (StatusCode::CREATED, Json(key)).into_response(),
        Err(error) => error.into_response(),
    }
}

pub(super) async fn revoke_key(
    State(state): State<AppState>,
    jar: CookieJar,
    Path(id): Path<String>,
) -> Response {
    let user = match api_user(&state, &jar).await {
        Ok(user) => user,
        Err(error) => return error.into_response(),
    };
    let action = self_action(&user, "key.revoke");
    match state.gateway.revoke_key(&id, Some(&user.id), &action).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(error) => ApiError::from(error).into_response(),
    }
}

/// A change a signed-in user makes to what is their own, for its audit row.
fn self_action(
    user: &switchboard_store::UserRow,
    action: &str,
) -> switchboard_gateway::audit::AdminAction {
    switchboard_gateway::audit::AdminAction {
        actor: user.username.clone(),
        client: String::new(),
        action: action.to_string(),
        server: String::new(),
        started: std::time::Instant::now(),
    }
}
