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
    let page = pages::RequestsPage {
        frame: viewer.frame(state, "requests", notice, problem).await,
        pending: pending
            .into_iter()
            .map(|request| pages::PendingRow {
                approvals: pages::approval_durations(request.duration_seconds),
                duration: super::forms::duration(request.duration_seconds),
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
    show(page.frame.status(), viewer.jar, &page)
}

pub(super) async fn requests(
    State(state): State<AppState>,
    jar: CookieJar,
    Query(done): Query<Done>,
) -> Response {
    let viewer = match Viewer::admin_page(&state, jar, INBOX).await {
        Ok(viewer) => viewer,
        Err(answer) => return answer,
    };
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
    let viewer = match Viewer::admin_form(&state, jar, INBOX, &form.csrf).await {
        Ok(viewer) => viewer,
        Err(answer) => return answer,
    };
    let Ok(duration_seconds) = super::seconds(&form.duration) else {
        let problem = "Choose a duration from the list.".to_string();
        return inbox(&state, viewer, None, Some(problem)).await;
    };
    let body = ApproveBody {
        duration_seconds,
        reason: None,
    };
    let action = viewer.action("console.approve_access_request", "");
    let decided = state
        .gateway
        .approve_access_request(&id, body, &action)
        .await;
    after_decision(&state, viewer, &action, decided.map(drop), "approved").await
}

/// Back to the inbox: with the notice `done` once decided, with the reason when refused.
async fn after_decision(
    state: &AppState,
    viewer: Viewer,
    action: &switchboard_gateway::audit::AdminAction,
    decided: Result<(), switchboard_gateway::GatewayError>,
    done: &str,
) -> Response {
    match decided {
        Ok(()) => Redirect::to(&format!("{INBOX}?done={done}")).into_response(),
        Err(error) => {
            let problem = super::refusal(state, action, error);
            inbox(state, viewer, None, Some(problem)).await
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
    let viewer = match Viewer::admin_form(&state, jar, INBOX, &form.csrf).await {
        Ok(viewer) => viewer,
        Err(answer) => return answer,
    };
    let action = viewer.action("console.deny_access_request", "");
    let body = DenyBody {
        reason: form.reason,
    };
    let decided = state.gateway.deny_access_request(&id, body, &action).await;
    after_decision(&state, viewer, &action, decided.map(drop), "denied").await
}

const OUTCOMES: [(&str, &str); 4] = [
    ("", "Any"),
    ("ok", "ok"),
    ("error", "error"),
    ("denied", "denied"),
];

/// The store's query for the page's filters; a problem when a filter cannot be read.
fn audit_query(
    filter: &pages::AuditFilter,
    newest_first: bool,
) -> Result<switchboard_store::AuditQuery, String> {
    let day = |text: &str, what: &str| -> Result<Option<i64>, String> {
        if text.trim().is_empty() {
            return Ok(None);
        }
        pages::day_start(text)
            .map(Some)
            .ok_or_else(|| format!("“{what}” is not a day (YYYY-MM-DD)."))
    };
    if !OUTCOMES.iter().any(|(value, _)| *value == filter.outcome) {
        return Err("Choose an outcome from the list.".into());
    }
    let text = |value: &str| Some(value.trim().to_string()).filter(|value| !value.is_empty());
    Ok(switchboard_store::AuditQuery {
        actor: text(&filter.user),
        server: text(&filter.server),
        tool: text(&filter.tool),
        outcome: text(&filter.outcome),
        since: day(&filter.since, "From")?,
        // The whole of the last day.
        until: day(&filter.until, "To")?.map(|start| start + 86_400_000),
        after: text(&filter.before),
        limit: 50,
        newest_first,
    })
}

/// The filters as a query string, with `before` when given.
fn filter_query(filter: &pages::AuditFilter, before: Option<&str>) -> String {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    for (key, value) in [
        ("user", &filter.user),
        ("server", &filter.server),
        ("tool", &filter.tool),
        ("outcome", &filter.outcome),
        ("since", &filter.since),
        ("until", &filter.until),
    ] {
        if !value.trim().is_empty() {
            query.append_pair(key, value.trim());
        }
    }
    if let Some(before) = before {
        query.append_pair("before", before);
    }
    let query = query.finish();
    if query.is_empty() {
        String::new()
    } else {
        format!("?{query}")
    }
}

/// `/console/admin/audit`: the log, newest first, filtered, 50 rows a page.
pub(super) async fn audit(
    State(state): State<AppState>,
    jar: CookieJar,
    Query(filter): Query<pages::AuditFilter>,
) -> Response {
    let viewer = match Viewer::admin_page(&state, jar, "/console/admin/audit").await {
        Ok(viewer) => viewer,
        Err(answer) => return answer,
    };
    let (rows, problem) = match audit_query(&filter, true) {
        Ok(query) => {
            state.gateway.audit().flush().await;
            match state.gateway.store().audit(&query).await {
                Ok(rows) => (rows, None),
                Err(error) => return viewer.failed(&error.to_string()),
            }
        }
        Err(problem) => (Vec::new(), Some(problem)),
    };
    let older = (rows.len() == 50)
        .then(|| rows.last().map(|row| filter_query(&filter, Some(&row.id))))
        .flatten();
    let page = pages::AuditPage {
        frame: viewer.frame(&state, "audit", None, problem).await,
        query: filter_query(&filter, None),
        outcomes: OUTCOMES.to_vec(),
        rows: rows
            .into_iter()
            .map(|row| pages::AuditRow {
                when: pages::when(row.at),
                outcome_class: match row.outcome.as_ref() {
                    "ok" => "ok",
                    "denied" => "warn",
                    _ => "muted",
                },
                actor: row.actor.into_owned(),
                action: row.action.into_owned(),
                server: row.server,
                tool: row.tool,
                outcome: row.outcome.into_owned(),
                took: format!("{} ms", row.duration_ms),
            })
            .collect(),
        older,
        filter,
    };
    show(page.frame.status(), viewer.jar, &page)
}

/// The most rows one download carries.
const DOWNLOAD_ROWS: usize = 100_000;

/// `/console/admin/audit.jsonl`: the filtered log, oldest first, one JSON object a line.
pub(super) async fn audit_download(
    State(state): State<AppState>,
    jar: CookieJar,
    Query(filter): Query<pages::AuditFilter>,
) -> Response {
    let viewer = match Viewer::admin_page(&state, jar, "/console/admin/audit").await {
        Ok(viewer) => viewer,
        Err(answer) => return answer,
    };
    let mut query = match audit_query(&filter, false) {
        Ok(query) => query,
        Err(problem) => {
            return crate::oauth::browser::error_page(
                StatusCode::BAD_REQUEST,
                viewer.jar,
                "These filters cannot be read",
                &problem,
            );
        }
    };
    query.after = None;
    query.limit = 1000;
    state.gateway.audit().flush().await;
    let mut lines = String::new();
    let mut count = 0;
    loop {
        let rows = match state.gateway.store().audit(&query).await {
            Ok(rows) => rows,
            Err(error) => return viewer.failed(&error.to_string()),
        };
        let Some(last) = rows.last().map(|row| row.id.clone()) else {
            break;
        };
        for row in &rows {
            let detail: serde_json::Value =
                serde_json::from_str(&row.detail).unwrap_or(serde_json::Value::Null);
            let line = serde_json::json!({"id": row.id, "at": row.at, "actor": row.actor,
                "client": row.client, "kind": row.kind, "action": row.action,
                "server": row.server, "tool": row.tool, "outcome": row.outcome,
                "durationMs": row.duration_ms, "detail": detail});
            lines.push_str(&line.to_string());
            lines.push('\n');
        }
        count += rows.len();
        if rows.len() < 1000 || count >= DOWNLOAD_ROWS {
            break;
        }
        query.after = Some(last);
    }
    (
        viewer.jar,
        [
            (axum::http::header::CONTENT_TYPE, "application/jsonl"),
            (
                axum::http::header::CONTENT_DISPOSITION,
                "attachment; filename=\"switchboard-audit.jsonl\"",
            ),
            (axum::http::header::CACHE_CONTROL, "no-store"),
        ],
        lines,
    )
        .into_response()
}
