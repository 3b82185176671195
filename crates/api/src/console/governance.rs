//! A server's governance as a form: the prefix, the allowed and denied tools, renames,
//! descriptions and pinned parameters, each a text box of plain lines, read back into the rules
//! the registry applies (checked by the gateway as the API's are).

use axum::{
    Form,
    extract::{Path, State},
    response::{IntoResponse, Redirect, Response},
};
use axum_extra::extract::cookie::CookieJar;
use switchboard_gateway::model::UpdateServer;

use super::{Viewer, forms::GovernanceForm};
use crate::AppState;

/// Replaces a server's governance with the rules sent.
pub(super) async fn save(
    State(state): State<AppState>,
    jar: CookieJar,
    Path(id): Path<String>,
    Form(form): Form<GovernanceForm>,
) -> Response {
    let viewer = match Viewer::admin_form(&state, jar, "/console/admin/servers", &form.csrf).await {
        Ok(viewer) => viewer,
        Err(answer) => return answer,
    };
    let rules = match form.rules() {
        Ok(rules) => rules,
        Err(problem) => {
            return super::servers::server_page(&state, viewer, &id, None, None, Some(problem))
                .await;
        }
    };
    let action = viewer.action("console.server.governance", &id);
    let body = UpdateServer {
        tools: Some(rules),
        ..UpdateServer::default()
    };
    match state.gateway.update(&id, body, &action).await {
        Ok(_) => Redirect::to(&format!(
            "/console/admin/servers/{id}?done=governance_saved"
        ))
        .into_response(),
        Err(error) => {
            let problem = super::refusal(&state, &action, error);
            super::servers::server_page(&state, viewer, &id, None, None, Some(problem)).await
        }
    }
}
