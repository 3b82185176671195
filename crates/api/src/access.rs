//! Who may use what, as the REST admin API manages it: `/api/mcp-servers/{id}/permissions`,
//! `/api/permissions/{id}`, `/api/grants`, `/api/groups`, `/api/access-requests` and
//! `/api/settings`. The rules are the gateway's
//! (`switchboard_gateway::access_admin`); every change is audited.

use axum::{
    Json,
    extract::{Path, State},
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde_json::json;
use switchboard_gateway::{
    access_admin::{GrantBody, GroupBody, PermissionBody},
    access_requests::{ApproveBody, DenyBody, RequestQuery},
    api_keys::KeyBody,
    org_settings::SettingsBody,
    users_admin::{NewUserBody, UserBody},
};

use crate::{AppState, auth::Caller, error::ApiError, servers::parse_body};

/// Runs an admin change named `action`, audits its failure, and answers `status` with what it
/// gave (204 when it gave nothing).
async fn change<T: serde::Serialize>(
    state: &AppState,
    caller: &Caller,
    action: &str,
    target: &str,
    status: StatusCode,
    run: impl AsyncFnOnce(&switchboard_gateway::audit::AdminAction) -> Result<T, ApiError>,
) -> Result<Response, ApiError> {
    let action = caller.action(action, target);
    let done = run(&action).await;
    crate::auth::audit_failure(state, &action, &done);
    let done = serde_json::to_value(done?).unwrap_or_default();
    Ok(if done.is_null() {
        StatusCode::NO_CONTENT.into_response()
    } else {
        (status, Json(done)).into_response()
    })
}

pub async fn permissions(
    State(state): State<AppState>,
    _caller: Caller,
    Path(server): Path<String>,
) -> Result<Response, ApiError> {
    let items = state.gateway.permissions(&server).await?;
    Ok(Json(json!({"items": items})).into_response())
}

pub async fn create_permission(
    State(state): State<AppState>,
    caller: Caller,
    Path(server): Path<String>,
    body: crate::error::Body,
) -> Result<Response, ApiError> {
    change(
        &state,
        &caller,
        "permission.create",
        &server,
        StatusCode::CREATED,
        async |action| {
            let body: PermissionBody = parse_body(&body?)?;
            Ok(state
                .gateway
                .create_permission(&server, body, action)
                .await?)
        },
    )
    .await
}

pub async fn update_permission(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: crate::error::Body,
) -> Result<Response, ApiError> {
    change(
        &state,
        &caller,
        "permission.update",
        "",
        StatusCode::OK,
        async |action| {
            let body: PermissionBody = parse_body(&body?)?;
            Ok(state.gateway.update_permission(&id, body, action).await?)
        },
    )
    .await
}

pub async fn delete_permission(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    change(
        &state,
        &caller,
        "permission.delete",
        "",
        StatusCode::OK,
        async |action| Ok(state.gateway.delete_permission(&id, action).await?),
    )
    .await
}

pub async fn grants(State(state): State<AppState>, _caller: Caller) -> Result<Response, ApiError> {
    let items = state.gateway.grants().await?;
    Ok(Json(json!({"items": items})).into_response())
}

pub async fn create_grant(
    State(state): State<AppState>,
    caller: Caller,
    body: crate::error::Body,
) -> Result<Response, ApiError> {
    change(
        &state,
        &caller,
        "grant.create",
        "",
        StatusCode::CREATED,
        async |action| {
            let body: GrantBody = parse_body(&body?)?;
            Ok(state.gateway.create_grant(body, action).await?)
        },
    )
    .await
}

pub async fn delete_grant(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    change(
        &state,
        &caller,
        "grant.delete",
        "",
        StatusCode::OK,
        async |action| Ok(state.gateway.delete_grant(&id, action).await?),
    )
    .await
}

pub async fn groups(State(state): State<AppState>, _caller: Caller) -> Result<Response, ApiError> {
    let items = state.gateway.groups().await?;
    Ok(Json(json!({"items": items})).into_response())
}

pub async fn create_group(
    State(state): State<AppState>,
    caller: Caller,
    body: crate::error::Body,
) -> Result<Response, ApiError> {
    change(
        &state,
        &caller,
        "group.create",
        "",
        StatusCode::CREATED,
        async |action| {
            let body: GroupBody = parse_body(&body?)?;
            Ok(state.gateway.create_group(body, action).await?)
        },
    )
    .await
}

pub async fn delete_group(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    change(
        &state,
        &caller,
        "group.delete",
        "",
        StatusCode::OK,
        async |action| Ok(state.gateway.delete_group(&id, action).await?),
    )
    .await
}

pub async fn add_member(
    State(state): State<AppState>,
    caller: Caller,
    Path((group, user)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    change(
        &state,
        &caller,
        "group.add_member",
        "",
        StatusCode::OK,
        async |action| {
            Ok(state
                .gateway
                .set_member(&group, &user, true, action)
                .await?)
        },
    )
    .await
}

pub async fn remove_member(
    State(state): State<AppState>,
    caller: Caller,
    Path((group, user)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    change(
        &state,
        &caller,
        "group.remove_member",
        "",
        StatusCode::OK,
        async |action| {
            Ok(state
                .gateway
                .set_member(&group, &user, false, action)
                .await?)
        },
    )
    .await
}

pub async fn keys(State(state): State<AppState>, _caller: Caller) -> Result<Response, ApiError> {
    let items = state.gateway.keys(None).await?;
    Ok(Json(json!({"items": items})).into_response())
}

/// An admin makes a key for anyone (`user`, the caller's own when left out).
pub async fn create_key(
    State(state): State<AppState>,
    caller: Caller,
    body: crate::error::Body,
) -> Result<Response, ApiError> {
    change(
        &state,
        &caller,
        "key.create",
        "",
        StatusCode::CREATED,
        async |action| {
            let body: KeyBody = parse_body(&body?)?;
            let owner = body.user.clone().unwrap_or_else(|| caller.actor.clone());
            Ok(state.gateway.create_key(&owner, &body, action).await?)
        },
    )
    .await
}

pub async fn revoke_key(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    change(
        &state,
        &caller,
        "key.revoke",
        "",
        StatusCode::OK,
        async |action| Ok(state.gateway.revoke_key(&id, None, action).await?),
    )
    .await
}

/// `GET /api/access-requests?status=&user=&server=&limit=`.
pub async fn access_requests(
    State(state): State<AppState>,
    _caller: Caller,
    query: crate::error::Params<RequestQuery>,
) -> Result<Response, ApiError> {
    let axum::extract::Query(query) = query?;
    let items = state.gateway.access_requests(&query).await?;
    Ok(Json(json!({"items": items})).into_response())
}

pub async fn approve_request(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: crate::error::Body,
) -> Result<Response, ApiError> {
    change(
        &state,
        &caller,
        "access_request.approve",
        "",
        StatusCode::OK,
        async |action| {
            let body = body?;
            let body: ApproveBody = if body.is_empty() {
                ApproveBody::default()
            } else {
                parse_body(&body)?
            };
            Ok(state
                .gateway
                .approve_access_request(&id, body, action)
                .await?)
        },
    )
    .await
}

pub async fn deny_request(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: crate::error::Body,
) -> Result<Response, ApiError> {
    change(
        &state,
        &caller,
        "access_request.deny",
        "",
        StatusCode::OK,
        async |action| {
            let body: DenyBody = parse_body(&body?)?;
            Ok(state.gateway.deny_access_request(&id, body, action).await?)
        },
    )
    .await
}

pub async fn settings(
    State(state): State<AppState>,
    _caller: Caller,
) -> Result<Response, ApiError> {
    Ok(Json(state.gateway.settings_view().await?).into_response())
}

pub async fn update_settings(
    State(state): State<AppState>,
    caller: Caller,
    body: crate::error::Body,
) -> Result<Response, ApiError> {
    change(
        &state,
        &caller,
        "settings.update",
        "",
        StatusCode::OK,
        async |action| {
            let body: SettingsBody = parse_body(&body?)?;
            Ok(state.gateway.update_settings(body, action).await?)
        },
    )
    .await
}

pub async fn users(State(state): State<AppState>, _caller: Caller) -> Result<Response, ApiError> {
    Ok(Json(json!({"items": state.gateway.users().await?})).into_response())
}

pub async fn add_user(
    State(state): State<AppState>,
    caller: Caller,
    body: crate::error::Body,
) -> Result<Response, ApiError> {
    change(
        &state,
        &caller,
        "user.create",
        "",
        StatusCode::CREATED,
        async |action| {
            let body: NewUserBody = parse_body(&body?)?;
            Ok(state.gateway.add_user(body, action).await?)
        },
    )
    .await
}

pub async fn update_user(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: crate::error::Body,
) -> Result<Response, ApiError> {
    change(
        &state,
        &caller,
        "user.update",
        "",
        StatusCode::OK,
        async |action| {
            let body: UserBody = parse_body(&body?)?;
            Ok(state.gateway.update_user(&id, body, action).await?)
        },
    )
    .await
}

/// `POST /api/users/{id}/password` with `{"password"}`, or `{}` for a new one answered once.
pub async fn reset_password(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: crate::error::Body,
) -> Result<Response, ApiError> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct PasswordBody {
        password: Option<String>,
    }
    change(
        &state,
        &caller,
        "user.reset_password",
        "",
        StatusCode::OK,
        async |action| {
            let body: PasswordBody = parse_body(&body?)?;
            let made = state
                .gateway
                .reset_user_password(&id, body.password.as_deref(), action)
                .await?;
            Ok(json!({"password": made}))
        },
    )
    .await
}
