//! The pages of every signed-in user: the apps they can use or request, one app's permissions
//! with a request form, connection settings, and their access (grants, requests, API keys).

use axum::{
    Form,
    body::Bytes,
    extract::{Path, Query, State},
    http::StatusCode,
    response::{IntoResponse, Redirect, Response},
};
use axum_extra::extract::cookie::CookieJar;
use serde_json::json;
use switchboard_gateway::{
    access_requests::{Requester, SubmitBody},
    api_keys::KeyBody,
    app_store::AppView,
    policy::{Endpoint, SelfService},
};

use super::{
    Done, Viewer,
    forms::CsrfForm,
    notice,
    pages::{self, show},
};
use crate::AppState;

#[derive(Debug, serde::Deserialize)]
pub(super) struct Search {
    q: Option<String>,
}

pub(super) async fn apps(
    State(state): State<AppState>,
    jar: CookieJar,
    Query(search): Query<Search>,
) -> Response {
    let viewer = match Viewer::of(&state, jar, "/console/apps").await {
        Ok(viewer) => viewer,
        Err(answer) => return answer,
    };
    let query = search.q.unwrap_or_default();
    let apps = match state
        .gateway
        .apps_for(
            &viewer.user.id,
            Some(query.trim()).filter(|q| !q.is_empty()),
        )
        .await
    {
        Ok(apps) => apps,
        Err(error) => return viewer.failed(&error.to_string()),
    };
    let page = pages::AppsPage {
        frame: viewer.frame(&state, "apps", None, None).await,
        query,
        apps,
    };
    show(StatusCode::OK, viewer.jar, &page)
}

/// Whether the organization lets this user file requests (the policy's decision on
/// `/mcp/user`'s `submit_access_request`).
async fn may_request(state: &AppState, viewer: &Viewer) -> Result<bool, Response> {
    let decision = viewer
        .decide(state, Endpoint::User, Some("submit_access_request"))
        .await?;
    Ok(decision.self_service == Some(SelfService::On))
}

/// One app's page, with a notice or a problem to show.
async fn app_page(
    state: &AppState,
    viewer: Viewer,
    alias: &str,
    notice: Option<&'static str>,
    problem: Option<String>,
) -> Response {
    let (app, permissions) = match state.gateway.app_permissions(&viewer.user.id, alias).await {
        Ok(found) => found,
        Err(switchboard_gateway::GatewayError::NotFound(_))
        | Err(switchboard_gateway::GatewayError::Disabled(_)) => {
            return crate::oauth::browser::error_page(
                StatusCode::NOT_FOUND,
                viewer.jar,
                "No such app",
                "It is not offered to you, or it was removed. Go back to the apps.",
            );
        }
        Err(error) => return viewer.failed(&error.to_string()),
    };
    let can_request = match may_request(state, &viewer).await {
        Ok(may) => may,
        Err(answer) => return answer,
    };
    let permissions = permissions
        .into_iter()
        .map(|permission| {
            let (state_text, state_class) = match permission.state {
                "granted" => (
                    format!(
                        "Granted {}",
                        pages::until(permission.granted_until.flatten())
                    ),
                    "ok",
                ),
                "pending" => ("Pending".into(), "warn"),
                "requestable" => ("Requestable".into(), ""),
                _ => ("Ask an admin".into(), "muted"),
            };
            pages::PermissionRow {
                durations: pages::request_durations(permission.max_duration_seconds),
                id: permission.id,
                label: permission.label,
                description: permission.description,
                tools: permission.tools,
                state: permission.state,
                state_text,
                state_class,
            }
        })
        .collect();
    let page = pages::AppPage {
        frame: viewer.frame(state, "apps", notice, problem).await,
        app,
        permissions,
        can_request,
    };
    show(page.frame.status(), viewer.jar, &page)
}

pub(super) async fn app(
    State(state): State<AppState>,
    jar: CookieJar,
    Path(alias): Path<String>,
    Query(done): Query<Done>,
) -> Response {
    let here = format!("/console/apps/{alias}");
    let viewer = match Viewer::of(&state, jar, &here).await {
        Ok(viewer) => viewer,
        Err(answer) => return answer,
    };
    app_page(&state, viewer, &alias, notice(done.done.as_deref()), None).await
}

#[derive(Debug, serde::Deserialize)]
pub(super) struct RequestForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    permission: String,
    /// The app's alias, to show its page again.
    #[serde(default)]
    app: String,
    #[serde(default)]
    reason: String,
    /// Seconds; empty for the longest allowed.
    #[serde(default)]
    duration: String,
}

/// Whether `alias` is an alias, so that it may go into a redirect.
fn is_alias(alias: &str) -> bool {
    !alias.is_empty()
        && alias
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// Files a request for the signed-in user.
pub(super) async fn request(
    State(state): State<AppState>,
    jar: CookieJar,
    Form(form): Form<RequestForm>,
) -> Response {
    let viewer = match Viewer::posting(&state, jar, "/console/apps", &form.csrf).await {
        Ok(viewer) => viewer,
        Err(answer) => return answer,
    };
    if !is_alias(&form.app) {
        return Redirect::to("/console/apps").into_response();
    }
    match may_request(&state, &viewer).await {
        Ok(true) => {}
        Ok(false) => {
            let problem =
                "Your organization does not let you file requests here; ask an admin instead.";
            return app_page(&state, viewer, &form.app, None, Some(problem.into())).await;
        }
        Err(answer) => return answer,
    }
    let Ok(duration_seconds) = super::seconds(&form.duration) else {
        let problem = "Choose a duration from the list.".to_string();
        return app_page(&state, viewer, &form.app, None, Some(problem)).await;
    };
    let requester = Requester {
        user_id: viewer.user.id.clone(),
        username: viewer.user.username.clone(),
    };
    let body = SubmitBody {
        permission: form.permission,
        reason: form.reason,
        duration_seconds,
    };
    let action = viewer.action("console.submit_access_request", "");
    match state
        .gateway
        .submit_access_request(&requester, body, &action)
        .await
    {
        Ok(_) => {
            Redirect::to(&format!("/console/apps/{}?done=requested", form.app)).into_response()
        }
        Err(error) => {
            let problem = super::refusal(&state, &action, error);
            app_page(&state, viewer, &form.app, None, Some(problem)).await
        }
    }
}

/// The connection settings of an app, as each client writes them.
fn connection(app: AppView) -> pages::Connection {
    let pretty =
        |value: serde_json::Value| serde_json::to_string_pretty(&value).unwrap_or_default();
    pages::Connection {
        mcp_servers: pretty(json!({"mcpServers": {app.alias.as_str(): {
            "type": "http", "url": app.connect_url}}})),
        vscode: pretty(json!({"servers": {app.alias.as_str(): {
            "type": "http", "url": app.connect_url}}})),
        name: app.name,
        alias: app.alias,
        connect_url: app.connect_url,
    }
}

pub(super) async fn connect(State(state): State<AppState>, jar: CookieJar) -> Response {
    let viewer = match Viewer::of(&state, jar, "/console/connect").await {
        Ok(viewer) => viewer,
        Err(answer) => return answer,
    };
    let apps = match state.gateway.apps_for(&viewer.user.id, None).await {
        Ok(apps) => apps,
        Err(error) => return viewer.failed(&error.to_string()),
    };
    let page = pages::ConnectPage {
        frame: viewer.frame(&state, "connect", None, None).await,
        apps: apps
            .into_iter()
            .filter(|app| app.access == "granted")
            .map(connection)
            .collect(),
    };
    show(StatusCode::OK, viewer.jar, &page)
}

/// The scopes a user's key may carry, with what each allows.
fn key_scopes(admin: bool) -> Vec<(&'static str, &'static str)> {
    let mut scopes = vec![
        ("mcp", "use the tools you have access to"),
        ("user:read", "search apps and read your requests"),
        ("user:write", "file access requests"),
    ];
    if admin {
        scopes.push(("admin:read", "read the gateway's configuration"));
        scopes.push(("admin:write", "change the gateway's configuration"));
    }
    scopes
}

/// The access page, with the key just made (shown once) or a problem.
async fn access_page(
    state: &AppState,
    viewer: Viewer,
    notice: Option<&'static str>,
    problem: Option<String>,
    new_key: Option<pages::NewKey>,
) -> Response {
    let gateway = &state.gateway;
    let user_id = viewer.user.id.clone();
    let loaded = async {
        let requests = gateway.my_access_requests(&user_id).await?;
        let keys = gateway.keys(Some(&user_id)).await?;
        let mut grants = Vec::new();
        for held in gateway
            .access()
            .held_anywhere(&user_id, switchboard_auth::secret::now_ms())
        {
            let alias = gateway.alias_of(&held.permission.server_id).await?;
            grants.push((
                alias,
                held.permission.label.clone(),
                pages::until(held.expires_at),
            ));
        }
        let clients = state
            .auth
            .authorized_clients(&user_id)
            .await
            .map_err(switchboard_gateway::GatewayError::from)?;
        Ok::<_, switchboard_gateway::GatewayError>((requests, keys, grants, clients))
    }
    .await;
    let (requests, keys, grants, clients) = match loaded {
        Ok(loaded) => loaded,
        Err(error) => return viewer.failed(&error.to_string()),
    };
    let admin = viewer.frame(state, "access", notice, problem).await;
    let scopes = key_scopes(admin.admin);
    let page = pages::AccessPage {
        frame: admin,
        new_key,
        grants,
        clients: clients
            .into_iter()
            .map(|client| pages::ClientRow {
                since: pages::when(client.since),
                id: client.client_id,
                name: client.client_name,
                scopes: client.scopes,
            })
            .collect(),
        requests: requests
            .into_iter()
            .map(|request| pages::RequestRow {
                status_class: pages::status_class(&request.status),
                server: request.server,
                permission: request.permission,
                status: request.status,
                asked: pages::when(request.created_at),
                decision: request.decision_reason.unwrap_or_default(),
            })
            .collect(),
        keys: keys
            .into_iter()
            .map(|key| pages::KeyRow {
                expires: key.expires_at.map_or_else(|| "never".into(), pages::when),
                revoked: key.revoked_at.is_some(),
                id: key.id,
                name: key.name,
                scopes: key.scopes,
                hint: key.hint,
            })
            .collect(),
        scopes,
    };
    show(page.frame.status(), viewer.jar, &page)
}

pub(super) async fn access(
    State(state): State<AppState>,
    jar: CookieJar,
    Query(done): Query<Done>,
) -> Response {
    let viewer = match Viewer::of(&state, jar, "/console/access").await {
        Ok(viewer) => viewer,
        Err(answer) => return answer,
    };
    access_page(&state, viewer, notice(done.done.as_deref()), None, None).await
}

/// Makes a key for the signed-in user; it is shown once, on the page this answers.
pub(super) async fn create_key(
    State(state): State<AppState>,
    jar: CookieJar,
    body: Bytes,
) -> Response {
    // The form repeats `scope` once per box ticked.
    let fields = super::Fields::parse(&body);
    let viewer = match Viewer::posting(&state, jar, "/console/access", fields.one("csrf")).await {
        Ok(viewer) => viewer,
        Err(answer) => return answer,
    };
    let scopes = fields.all("scope");
    let expires_at = match super::seconds(fields.one("expires")) {
        Ok(None) => None,
        Ok(Some(seconds)) if seconds > 0 => {
            Some(switchboard_auth::secret::now_ms() + seconds.saturating_mul(1000))
        }
        _ => {
            let problem = "Choose when the key expires from the list.".to_string();
            return access_page(&state, viewer, None, Some(problem), None).await;
        }
    };
    let body = KeyBody {
        user: None,
        name: fields.one("name").to_string(),
        scopes: scopes.join(" "),
        expires_at,
    };
    let action = viewer.action("key.create", "");
    match state
        .gateway
        .create_key(&viewer.user.id, &body, &action)
        .await
    {
        Ok(made) => {
            let new_key = pages::NewKey {
                name: made.view.name.clone(),
                key: made.key,
            };
            access_page(&state, viewer, None, None, Some(new_key)).await
        }
        Err(error) => {
            let problem = super::refusal(&state, &action, error);
            access_page(&state, viewer, None, Some(problem), None).await
        }
    }
}

pub(super) async fn revoke_key(
    State(state): State<AppState>,
    jar: CookieJar,
    Path(id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Response {
    let viewer = match Viewer::posting(&state, jar, "/console/access", &form.csrf).await {
        Ok(viewer) => viewer,
        Err(answer) => return answer,
    };
    let action = viewer.action("key.revoke", "");
    match state
        .gateway
        .revoke_key(&id, Some(&viewer.user.id), &action)
        .await
    {
        Ok(()) => Redirect::to("/console/access?done=key_revoked").into_response(),
        Err(error) => {
            let problem = super::refusal(&state, &action, error);
            access_page(&state, viewer, None, Some(problem), None).await
        }
    }
}

#[derive(Debug, serde::Deserialize)]
pub(super) struct ClientForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    client_id: String,
}

/// Revokes a client the user authorized: its tokens stop working at once.
pub(super) async fn revoke_client(
    State(state): State<AppState>,
    jar: CookieJar,
    axum::Form(form): axum::Form<ClientForm>,
) -> Response {
    let viewer = match Viewer::posting(&state, jar, "/console/access", &form.csrf).await {
        Ok(viewer) => viewer,
        Err(answer) => return answer,
    };
    crate::oauth::account::revoke_for(&state, &viewer.user, &form.client_id).await;
    (
        viewer.jar,
        axum::response::Redirect::to("/console/access?done=client_revoked"),
    )
        .into_response()
}
