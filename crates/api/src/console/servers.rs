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
    forms::CsrfForm,
    pages::{self, show},
};
use crate::AppState;

const SERVERS: &str = "/console/admin/servers";

/// A server's state in words, and its pill's class.
pub(super) fn state_of(enabled: bool, state: &str) -> (&'static str, &'static str) {
    match (enabled, state) {
        (false, _) => ("disabled", "muted"),
        (true, "connected") => ("connected", "ok"),
        (true, "error") => ("error", "warn"),
        (true, _) => ("idle", ""),
    }
}

/// The servers page, with a notice or a problem to show.
async fn servers_page(
    state: &AppState,
    viewer: Viewer,
    notice: Option<&'static str>,
    problem: Option<String>,
) -> Response {
    servers_page_with(state, viewer, notice, problem, Vec::new()).await
}

async fn servers_page_with(
    state: &AppState,
    viewer: Viewer,
    notice: Option<&'static str>,
    problem: Option<String>,
    imported: Vec<String>,
) -> Response {
    let servers = match state.gateway.list().await {
        Ok(servers) => servers,
        Err(error) => return viewer.failed(&error.to_string()),
    };
    let page = pages::ServersPage {
        frame: viewer.frame(state, "servers", notice, problem).await,
        servers: servers
            .into_iter()
            .map(|server| {
                let (state, state_class) = state_of(server.enabled, server.status.state);
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
        catalog: state
            .gateway
            .catalog()
            .search(None)
            .into_iter()
            .map(|entry| {
                let words = format!("{} ({})", entry.name, entry.runtime);
                (entry.id, words)
            })
            .collect(),
        imported,
    };
    show(page.frame.status(), viewer.jar, &page)
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

/// The servers page showing why a form was refused.
pub(super) async fn refused(state: &AppState, viewer: Viewer, problem: String) -> Response {
    servers_page(state, viewer, None, Some(problem)).await
}

/// A change refused: audited, and its reason shown on the page.
async fn failed(
    state: &AppState,
    viewer: Viewer,
    action: &switchboard_gateway::audit::AdminAction,
    error: switchboard_gateway::GatewayError,
) -> Response {
    let problem = super::refusal(state, action, error);
    servers_page(state, viewer, None, Some(problem)).await
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

pub(super) fn failed_lookup(viewer: Viewer, error: switchboard_gateway::GatewayError) -> Response {
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

#[derive(Debug, serde::Deserialize)]
pub(super) struct CatalogForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    entry: String,
}

/// Adds the catalog entry chosen.
pub(super) async fn add_from_catalog(
    State(state): State<AppState>,
    jar: CookieJar,
    Form(form): Form<CatalogForm>,
) -> Response {
    let viewer = match Viewer::admin_form(&state, jar, SERVERS, &form.csrf).await {
        Ok(viewer) => viewer,
        Err(answer) => return answer,
    };
    let body = CreateServer {
        catalog_entry_id: Some(form.entry),
        ..CreateServer::default()
    };
    let action = viewer.action("console.server.create", "");
    match state.gateway.create(body, &action).await {
        Ok(_) => Redirect::to(&format!("{SERVERS}?done=server_added")).into_response(),
        Err(error) => failed(&state, viewer, &action, error).await,
    }
}

#[derive(Debug, serde::Deserialize)]
pub(super) struct ImportForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    block: String,
}

/// Adds every entry of a pasted `mcpServers` block; says what became of each.
pub(super) async fn import(
    State(state): State<AppState>,
    jar: CookieJar,
    Form(form): Form<ImportForm>,
) -> Response {
    let viewer = match Viewer::admin_form(&state, jar, SERVERS, &form.csrf).await {
        Ok(viewer) => viewer,
        Err(answer) => return answer,
    };
    let action = viewer.action("console.server.import", "");
    let block: serde_json::Value = match serde_json::from_str(&form.block) {
        Ok(block) => block,
        Err(error) => {
            let problem = format!("The block is not JSON: {error}.");
            return servers_page(&state, viewer, None, Some(problem)).await;
        }
    };
    match state.gateway.import_servers(&block, &action).await {
        Ok(outcomes) => {
            let lines = outcomes
                .into_iter()
                .map(|outcome| match (outcome.alias, outcome.error) {
                    (Some(alias), _) => format!("{}: added as /mcp/{alias}", outcome.name),
                    (None, Some(error)) => {
                        format!("{}: not added, {}", outcome.name, error.message)
                    }
                    (None, None) => format!("{}: not added", outcome.name),
                })
                .collect();
            servers_page_with(&state, viewer, None, None, lines).await
        }
        Err(error) => failed(&state, viewer, &action, error).await,
    }
}

/// A server's page: its tools as clients see them, each with a test call; and the last call's
/// answer.
pub(super) async fn server_page(
    state: &AppState,
    viewer: Viewer,
    id: &str,
    called: Option<(String, serde_json::Value)>,
    notice: Option<&'static str>,
    problem: Option<String>,
) -> Response {
    let server = match state.gateway.get(id).await {
        Ok(server) => server,
        Err(error) => return failed_lookup(viewer, error),
    };
    let (tools, tools_note) = if !server.enabled {
        (
            Vec::new(),
            "The server is disabled; enable it to see its tools.".to_string(),
        )
    } else {
        match state.gateway.tools(&server.id).await {
            Ok(tools) => (tools, "The server lists no tool.".to_string()),
            Err(error) => (
                Vec::new(),
                format!(
                    "Its tools could not be listed: {}",
                    crate::error::ApiError::from(error).message
                ),
            ),
        }
    };
    let permissions = match state.gateway.permissions(&server.id).await {
        Ok(permissions) => permissions,
        Err(error) => return viewer.failed(&error.to_string()),
    };
    let (state_word, state_class) = state_of(server.enabled, server.status.state);
    let (called, result) = match called {
        Some((tool, answer)) => (
            tool,
            Some(serde_json::to_string_pretty(&answer).unwrap_or_default()),
        ),
        None => (String::new(), None),
    };
    // A problem of no call is the rules' (or the arguments'): the rules show open.
    let governance_open = problem.is_some() && called.is_empty();
    let page = pages::ServerPage {
        permissions: permissions.into_iter().map(super::forms::row).collect(),
        new_permission: super::forms::blank(),
        settings: super::forms::SettingsForm::of(&server),
        local: server.runtime != switchboard_gateway::model::Runtime::Remote,
        governance: super::forms::GovernanceForm::of(&server.tools),
        governance_open,
        frame: viewer.frame(state, "servers", notice, problem).await,
        id: server.id,
        name: server.name,
        alias: server.alias,
        runtime: server.runtime.as_str(),
        state: state_word,
        state_class,
        tools: tools
            .into_iter()
            .map(|tool| {
                let mut hints = Vec::new();
                if let Some(annotations) = &tool.annotations {
                    if annotations.read_only_hint == Some(true) {
                        hints.push("read-only");
                    }
                    if annotations.destructive_hint == Some(true) {
                        hints.push("destructive");
                    }
                    if annotations.idempotent_hint == Some(true) {
                        hints.push("idempotent");
                    }
                    if annotations.open_world_hint == Some(true) {
                        hints.push("open world");
                    }
                }
                let required: serde_json::Map<String, serde_json::Value> = tool
                    .input_schema
                    .get("required")
                    .and_then(serde_json::Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(serde_json::Value::as_str)
                    .map(|name| (name.to_string(), serde_json::Value::Null))
                    .collect();
                pages::ToolRow {
                    example: serde_json::Value::Object(required).to_string(),
                    name: tool.name,
                    description: tool.description.unwrap_or_default(),
                    hints,
                }
            })
            .collect(),
        tools_note,
        called,
        result,
    };
    show(page.frame.status(), viewer.jar, &page)
}

pub(super) async fn server(
    State(state): State<AppState>,
    jar: CookieJar,
    Path(id): Path<String>,
    axum::extract::Query(done): axum::extract::Query<super::Done>,
) -> Response {
    let viewer = match Viewer::admin_page(&state, jar, SERVERS).await {
        Ok(viewer) => viewer,
        Err(answer) => return answer,
    };
    server_page(
        &state,
        viewer,
        &id,
        None,
        super::notice(done.done.as_deref()),
        None,
    )
    .await
}

#[derive(Debug, serde::Deserialize)]
pub(super) struct CallForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    tool: String,
    #[serde(default)]
    arguments: String,
}

/// Calls one of the server's tools with the arguments given, and shows the answer.
pub(super) async fn call(
    State(state): State<AppState>,
    jar: CookieJar,
    Path(id): Path<String>,
    Form(form): Form<CallForm>,
) -> Response {
    let viewer = match Viewer::admin_form(&state, jar, SERVERS, &form.csrf).await {
        Ok(viewer) => viewer,
        Err(answer) => return answer,
    };
    let arguments = match form.arguments.trim() {
        "" => None,
        text => match serde_json::from_str::<serde_json::Value>(text) {
            Ok(serde_json::Value::Object(arguments)) => Some(arguments),
            _ => {
                let problem = "The arguments are a JSON object, such as {\"a\": 1}.".to_string();
                return server_page(&state, viewer, &id, None, None, Some(problem)).await;
            }
        },
    };
    let actor = viewer.user.username.clone();
    match state
        .gateway
        .test_call(&id, &form.tool, arguments, &actor)
        .await
    {
        Ok(answer) => server_page(&state, viewer, &id, Some((form.tool, answer)), None, None).await,
        Err(error) => {
            let problem = crate::error::ApiError::from(error).message;
            server_page(&state, viewer, &id, None, None, Some(problem)).await
        }
    }
}
