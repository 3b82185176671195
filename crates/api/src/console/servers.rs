//! The admins' servers page: every registered server with its state, enabled or disabled with
//! one click, deleted after a confirmation, and a remote one added by URL. The registry's rules
//! are the gateway's; every change is audited.

use axum::{
    Form,
    extract::{Path, State},
    http::StatusCode,
    response::{IntoResponse, Redirect, Response},
};
use axum_extra::extract::cookie::CookieJar;
use switchboard_gateway::model::{CreateServer, Manifest, RemoteConfig, UpdateServer};

use super::{
    Viewer,
    pages::{self, show},
    user::CsrfForm,
};
use crate::AppState;

const SERVERS: &str = "/console/admin/servers";

/// The servers page, with a notice or a problem to show.
async fn servers_page(
    state: &AppState,
    viewer: Viewer,
    notice: Option<&'static str>,
    problem: Option<String>,
) -> Response {
    let servers = match state.gateway.list().await {
        Ok(servers) => servers,
        Err(error) => return viewer.failed(&error.to_string()),
    };
    let status = if problem.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    let page = pages::ServersPage {
        frame: viewer.frame(state, "servers", notice, problem).await,
        servers: servers
            .into_iter()
            .map(|server| {
                let (state, state_class) = match (server.enabled, server.status.state) {
                    (false, _) => ("disabled", "muted"),
                    (true, "connected") => ("connected", "ok"),
                    (true, "error") => ("error", "warn"),
                    (true, _) => ("idle", ""),
                };
                pages::ServerRow {
                    message: server.status.message.clone().unwrap_or_default(),
                    id: server.id,
                    name: server.name,
                    alias: server.alias,
                    runtime: server.runtime.as_str(),
                    enabled: server.enabled,
                    state,
                    state_class,
                }
            })
            .collect(),
    };
    show(status, viewer.jar, &page)
}

pub(super) async fn servers(
    State(state): State<AppState>,
    jar: CookieJar,
    axum::extract::Query(done): axum::extract::Query<super::Done>,
) -> Response {
    let viewer = match Viewer::admin_page(&state, jar, SERVERS).await {
        Ok(viewer) => viewer,
        Err(answer) => return answer,
    };
    servers_page(&state, viewer, super::notice(done.done.as_deref()), None).await
}

#[derive(Debug, serde::Deserialize)]
pub(super) struct AddForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    url: String,
    #[serde(default)]
    alias: String,
}

pub(super) async fn add(
    State(state): State<AppState>,
    jar: CookieJar,
    Form(form): Form<AddForm>,
) -> Response {
    let viewer = match Viewer::admin_form(&state, jar, SERVERS, &form.csrf).await {
        Ok(viewer) => viewer,
        Err(answer) => return answer,
    };
    let body = CreateServer {
        manifest: Some(Manifest {
            name: Some(form.name),
            runtime: Some("remote".into()),
            remote_config: Some(RemoteConfig {
                url: form.url,
                transport: None,
                headers: Default::default(),
            }),
            ..Manifest::default()
        }),
        alias: Some(form.alias.trim().to_string()).filter(|alias| !alias.is_empty()),
        ..CreateServer::default()
    };
    let action = viewer.action("console.server.create", "");
    match state.gateway.create(body, &action).await {
        Ok(_) => Redirect::to(&format!("{SERVERS}?done=server_added")).into_response(),
        Err(error) => failed(&state, viewer, &action, error).await,
    }
}

/// A change refused: audited, and its reason shown on the page.
async fn failed(
    state: &AppState,
    viewer: Viewer,
    action: &switchboard_gateway::audit::AdminAction,
    error: switchboard_gateway::GatewayError,
) -> Response {
    let refused: Result<(), crate::error::ApiError> = Err(error.into());
    crate::auth::audit_failure(state, action, &refused);
    let problem = refused.err().map(|error| error.message);
    servers_page(state, viewer, None, problem).await
}

/// Enables (`enabled`) or disables a server.
async fn set_enabled(
    state: AppState,
    jar: CookieJar,
    id: String,
    csrf: &str,
    enabled: bool,
) -> Response {
    let viewer = match Viewer::admin_form(&state, jar, SERVERS, csrf).await {
        Ok(viewer) => viewer,
        Err(answer) => return answer,
    };
    let verb = if enabled { "enable" } else { "disable" };
    let action = viewer.action(&format!("console.server.{verb}"), &id);
    let body = UpdateServer {
        enabled: Some(enabled),
        ..UpdateServer::default()
    };
    match state.gateway.update(&id, body, &action).await {
        Ok(_) => Redirect::to(SERVERS).into_response(),
        Err(error) => failed(&state, viewer, &action, error).await,
    }
}

pub(super) async fn enable(
    State(state): State<AppState>,
    jar: CookieJar,
    Path(id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Response {
    set_enabled(state, jar, id, &form.csrf, true).await
}

pub(super) async fn disable(
    State(state): State<AppState>,
    jar: CookieJar,
    Path(id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Response {
    set_enabled(state, jar, id, &form.csrf, false).await
}

/// The confirmation a deletion needs.
pub(super) async fn confirm_delete(
    State(state): State<AppState>,
    jar: CookieJar,
    Path(id): Path<String>,
) -> Response {
    let viewer = match Viewer::admin_page(&state, jar, SERVERS).await {
        Ok(viewer) => viewer,
        Err(answer) => return answer,
    };
    let server = match state.gateway.get(&id).await {
        Ok(server) => server,
        Err(error) => return failed_lookup(viewer, error),
    };
    let page = pages::DeletePage {
        frame: viewer.frame(&state, "servers", None, None).await,
        id: server.id,
        name: server.name,
        alias: server.alias,
    };
    show(StatusCode::OK, viewer.jar, &page)
}

fn failed_lookup(viewer: Viewer, error: switchboard_gateway::GatewayError) -> Response {
    match error {
        switchboard_gateway::GatewayError::NotFound(_) => crate::oauth::browser::error_page(
            StatusCode::NOT_FOUND,
            viewer.jar,
            "No such server",
            "It may have been deleted already. Go back to the servers.",
        ),
        error => viewer.failed(&error.to_string()),
    }
}

pub(super) async fn delete(
    State(state): State<AppState>,
    jar: CookieJar,
    Path(id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Response {
    let viewer = match Viewer::admin_form(&state, jar, SERVERS, &form.csrf).await {
        Ok(viewer) => viewer,
        Err(answer) => return answer,
    };
    let action = viewer.action("console.server.delete", &id);
    match state.gateway.delete(&id, &action).await {
        Ok(()) => Redirect::to(&format!("{SERVERS}?done=server_deleted")).into_response(),
        Err(error) => failed(&state, viewer, &action, error).await,
    }
}
