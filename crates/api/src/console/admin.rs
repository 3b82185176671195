//! The admins' pages: the request inbox, where one click approves (for the time asked or less)
//! or denies (with a reason).

use axum::{
    Form,
    extract::{Path, Query, State},
    http::StatusCode,
    response::{IntoResponse, Redirect, Response},
};
use axum_extra::extract::cookie::CookieJar;
use switchboard_gateway::access_requests::{ApproveBody, DenyBody, RequestQuery};

use super::{
    Done, Viewer, notice,
    pages::{self, show},
};
use crate::AppState;

const INBOX: &str = "/console/admin/requests";

/// The inbox, with a notice or a problem to show.
async fn inbox(
    state: &AppState,
    viewer: Viewer,
    notice: Option<&'static str>,
    problem: Option<String>,
) -> Response {
    let gateway = &state.gateway;
    let listed = async {
        let pending = gateway
            .access_requests(&RequestQuery {
                status: Some("pending".into()),
                limit: Some(1000),
                ..RequestQuery::default()
            })
            .await?;
        let recent = gateway
            .access_requests(&RequestQuery {
                limit: Some(100),
                ..RequestQuery::default()
            })
            .await?;
        Ok::<_, switchboard_gateway::GatewayError>((pending, recent))
    }
    .await;
    let (pending, recent) = match listed {
        Ok(listed) => listed,
        Err(error) => return viewer.failed(&error.to_string()),
    };
    let status = if problem.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    let page = pages::RequestsPage {
        frame: viewer.frame(state, "requests", notice, problem).await,
        pending: pending
            .into_iter()
            .map(|request| pages::PendingRow {
                approvals: pages::approval_durations(request.duration_seconds),
                duration: pages::duration(request.duration_seconds),
                asked: pages::when(request.created_at),
                id: request.id,
                username: request.username,
                permission: request.permission,
                server: request.server,
                reason: request.reason,
            })
            .collect(),
        decided: recent
            .into_iter()
            .filter(|request| request.status != "pending")
            .take(30)
            .map(|request| pages::DecidedRow {
                status_class: pages::status_class(&request.status),
                when: request.decided_at.map(pages::when).unwrap_or_default(),
                username: request.username,
                permission: request.permission,
                server: request.server,
                status: request.status,
                by: request.decided_by.unwrap_or_default(),
                reason: request.decision_reason.unwrap_or_default(),
            })
            .collect(),
    };
    show(status, viewer.jar, &page)
}

pub(super) async fn requests(
    State(state): State<AppState>,
    jar: CookieJar,
    Query(done): Query<Done>,
) -> Response {
    let viewer = match Viewer::of(&state, jar, INBOX).await {
        Ok(viewer) => viewer,
        Err(answer) => return answer,
    };
    if let Err(refused) = viewer.admin(&state, false).await {
        return refused;
    }
    inbox(&state, viewer, notice(done.done.as_deref()), None).await
}

#[derive(Debug, serde::Deserialize)]
pub(super) struct ApproveForm {
    #[serde(default)]
    csrf: String,
    /// Seconds; empty for as asked.
    #[serde(default)]
    duration: String,
}

pub(super) async fn approve(
    State(state): State<AppState>,
    jar: CookieJar,
    Path(id): Path<String>,
    Form(form): Form<ApproveForm>,
) -> Response {
    let viewer = match Viewer::posting(&state, jar, INBOX, &form.csrf).await {
        Ok(viewer) => viewer,
        Err(answer) => return answer,
    };
    if let Err(refused) = viewer.admin(&state, true).await {
        return refused;
    }
    let duration_seconds = match form.duration.trim() {
        "" => None,
        seconds => match seconds.parse::<i64>() {
            Ok(seconds) => Some(seconds),
            Err(_) => {
                let problem = "Choose a duration from the list.".to_string();
                return inbox(&state, viewer, None, Some(problem)).await;
            }
        },
    };
    let body = ApproveBody {
        duration_seconds,
        reason: None,
    };
    let action = viewer.action("console.approve_access_request", "");
    match state
        .gateway
        .approve_access_request(&id, body, &action)
        .await
    {
        Ok(_) => Redirect::to(&format!("{INBOX}?done=approved")).into_response(),
        Err(error) => {
            let problem = crate::error::ApiError::from(error).message;
            inbox(&state, viewer, None, Some(problem)).await
        }
    }
}

#[derive(Debug, serde::Deserialize)]
pub(super) struct DenyForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    reason: String,
}

pub(super) async fn deny(
    State(state): State<AppState>,
    jar: CookieJar,
    Path(id): Path<String>,
    Form(form): Form<DenyForm>,
) -> Response {
    let viewer = match Viewer::posting(&state, jar, INBOX, &form.csrf).await {
        Ok(viewer) => viewer,
        Err(answer) => return answer,
    };
    if let Err(refused) = viewer.admin(&state, true).await {
        return refused;
    }
    let action = viewer.action("console.deny_access_request", "");
    let body = DenyBody {
        reason: form.reason,
    };
    match state.gateway.deny_access_request(&id, body, &action).await {
        Ok(_) => Redirect::to(&format!("{INBOX}?done=denied")).into_response(),
        Err(error) => {
            let problem = crate::error::ApiError::from(error).message;
            inbox(&state, viewer, None, Some(problem)).await
        }
    }
}
