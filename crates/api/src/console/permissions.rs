//! A server's permissions, edited on its page: each one's label, description, tools (every tool,
//! the read-only ones, or named ones), whether users may request it and for how long at most; a
//! permission added or deleted. The rules are the gateway's (`access_admin`), every change
//! audited.

use axum::{
    Form,
    extract::{Path, State},
    response::{IntoResponse, Redirect, Response},
};
use axum_extra::extract::cookie::CookieJar;
use switchboard_gateway::access_admin::{PermissionBody, ToolSet};

use super::{Viewer, forms::CsrfForm};
use crate::AppState;

const SERVERS: &str = "/console/admin/servers";

#[derive(Debug, Default, serde::Deserialize)]
pub(super) struct PermissionFields {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    label: String,
    #[serde(default)]
    description: String,
    /// `all`, `readOnly` or `names`.
    #[serde(default)]
    tools: String,
    /// With `names`: one tool a line.
    #[serde(default)]
    names: String,
    /// A ticked box sends `on`; an unticked one sends nothing.
    #[serde(default)]
    requestable: Option<String>,
    /// Seconds, or empty for no limit.
    #[serde(default)]
    limit: String,
}

impl PermissionFields {
    fn body(&self) -> Result<PermissionBody, String> {
        let tools = match self.tools.as_str() {
            "all" | "readOnly" => ToolSet::Rule(self.tools.clone()),
            "names" => ToolSet::Names(
                self.names
                    .lines()
                    .map(str::trim)
                    .filter(|name| !name.is_empty())
                    .map(str::to_string)
                    .collect(),
            ),
            _ => return Err("Choose which tools the permission holds.".into()),
        };
        let limit = super::seconds(&self.limit)
            .map_err(|()| "Choose the longest grant from the list.".to_string())?;
        Ok(PermissionBody {
            label: Some(self.label.clone()),
            description: Some(self.description.clone()),
            tools: Some(tools),
            requestable: Some(self.requestable.is_some()),
            max_duration_seconds: Some(limit),
        })
    }
}

/// Adds a permission to server `id`.
pub(super) async fn create(
    State(state): State<AppState>,
    jar: CookieJar,
    Path(id): Path<String>,
    Form(form): Form<PermissionFields>,
) -> Response {
    save(state, jar, id, None, form).await
}

/// Changes permission `pid` of server `id`.
pub(super) async fn update(
    State(state): State<AppState>,
    jar: CookieJar,
    Path((id, pid)): Path<(String, String)>,
    Form(form): Form<PermissionFields>,
) -> Response {
    save(state, jar, id, Some(pid), form).await
}

/// Makes a permission of server `id` from the form, or changes permission `pid`.
async fn save(
    state: AppState,
    jar: CookieJar,
    id: String,
    pid: Option<String>,
    form: PermissionFields,
) -> Response {
    let viewer = match Viewer::admin_form(&state, jar, SERVERS, &form.csrf).await {
        Ok(viewer) => viewer,
        Err(answer) => return answer,
    };
    let verb = if pid.is_some() { "update" } else { "create" };
    let action = viewer.action(&format!("console.permission.{verb}"), &id);
    let body = match form.body() {
        Ok(body) => body,
        Err(problem) => return shown(&state, viewer, &id, problem).await,
    };
    let done = match &pid {
        Some(pid) => state.gateway.update_permission(pid, body, &action).await,
        None => state.gateway.create_permission(&id, body, &action).await,
    };
    answer(
        &state,
        viewer,
        &id,
        &action,
        done.map(drop),
        "permission_saved",
    )
    .await
}

/// Deletes permission `pid` of server `id`, with the grants that give it.
pub(super) async fn delete(
    State(state): State<AppState>,
    jar: CookieJar,
    Path((id, pid)): Path<(String, String)>,
    Form(form): Form<CsrfForm>,
) -> Response {
    let viewer = match Viewer::admin_form(&state, jar, SERVERS, &form.csrf).await {
        Ok(viewer) => viewer,
        Err(answer) => return answer,
    };
    let action = viewer.action("console.permission.delete", &id);
    let done = state.gateway.delete_permission(&pid, &action).await;
    answer(&state, viewer, &id, &action, done, "permission_deleted").await
}

/// Back to the server's page: with a notice when done, with the reason when refused.
async fn answer(
    state: &AppState,
    viewer: Viewer,
    id: &str,
    action: &switchboard_gateway::audit::AdminAction,
    done: Result<(), switchboard_gateway::GatewayError>,
    notice: &str,
) -> Response {
    match done {
        Ok(()) => {
            Redirect::to(&format!("{SERVERS}/{id}?done={notice}#permissions")).into_response()
        }
        Err(error) => {
            let problem = super::refusal(state, action, error);
            shown(state, viewer, id, problem).await
        }
    }
}

async fn shown(state: &AppState, viewer: Viewer, id: &str, problem: String) -> Response {
    super::servers::server_page(state, viewer, id, None, None, Some(problem)).await
}
