//! The admins' runs: kept agent runs listed newest first and each read whole (its steps, tool
//! calls, tokens, stop reason and duration), and a run started from the console with the
//! registered servers' tools, through the same checks as `POST /run`.

use axum::{
    body::Bytes,
    extract::{Path, Query, State},
    http::StatusCode,
    response::{IntoResponse, Redirect, Response},
};
use axum_extra::extract::cookie::CookieJar;
use switchboard_agent::{EventSink, RunRecord, RunRequest, request::McpServerEntry};
use tokio_util::sync::CancellationToken;

use super::{
    Fields, Viewer,
    pages::{self, show},
};
use crate::{AppState, run_log};

const RUNS: &str = "/console/admin/runs";
/// Runs a page lists.
const PAGE: u32 = 25;

#[derive(Debug, serde::Deserialize)]
pub(super) struct Paging {
    #[serde(default)]
    before: String,
}

/// `/console/admin/runs`: the kept runs, newest first, and the form that starts one.
pub(super) async fn list(
    State(state): State<AppState>,
    jar: CookieJar,
    Query(paging): Query<Paging>,
) -> Response {
    let viewer = match Viewer::admin_page(&state, jar, RUNS).await {
        Ok(viewer) => viewer,
        Err(answer) => return answer,
    };
    let before = Some(paging.before.as_str()).filter(|before| !before.is_empty());
    runs_page(&state, viewer, before, pages::RunForm::default(), None).await
}

async fn runs_page(
    state: &AppState,
    viewer: Viewer,
    before: Option<&str>,
    form: pages::RunForm,
    problem: Option<String>,
) -> Response {
    let (rows, next) = match run_log::page(&state.gateway, before, PAGE).await {
        Ok(page) => page,
        Err(error) => return viewer.failed(&error.to_string()),
    };
    let servers = match state.gateway.list().await {
        Ok(servers) => servers,
        Err(error) => return viewer.failed(&error.to_string()),
    };
    let page = pages::RunsPage {
        frame: viewer.frame(state, "runs", None, problem).await,
        running: state.runs.count(),
        runs: rows
            .into_iter()
            .map(|row| pages::RunRow {
                when: pages::when(row.at),
                stop_class: stop_class(&row.stop_reason),
                run_id: row.run_id,
                actor: row.actor,
                task: short(&row.task, 90),
                model: row.model,
                stop_reason: row.stop_reason.replace('_', " "),
                steps: row.steps,
                tool_calls: row.tool_calls,
                tokens: row.tokens,
                took: took(row.duration_ms),
            })
            .collect(),
        older: next.map(|id| format!("?before={}", urlencoding(&id))),
        servers: servers
            .into_iter()
            .filter(|server| server.enabled)
            .map(|server| {
                let checked = form.servers.contains(&server.alias);
                (server.alias, server.name, checked)
            })
            .collect(),
        form,
    };
    show(page.frame.status(), viewer.jar, &page)
}

/// Starts a run from the form and opens its page, which shows it once it is done.
pub(super) async fn start(State(state): State<AppState>, jar: CookieJar, body: Bytes) -> Response {
    // The form repeats `server` once per box ticked.
    let fields = Fields::parse(&body);
    let viewer = match Viewer::admin_form(&state, jar, RUNS, fields.one("csrf")).await {
        Ok(viewer) => viewer,
        Err(answer) => return answer,
    };
    let form = pages::RunForm {
        task: fields.one("task").to_string(),
        model: fields.one("model").to_string(),
        base_url: fields.one("base_url").trim().to_string(),
        max_steps: fields.one("max_steps").trim().to_string(),
        servers: fields
            .all("server")
            .into_iter()
            .map(str::to_string)
            .collect(),
    };
    let max_steps = match form.max_steps.as_str() {
        "" => None,
        steps => match steps.parse() {
            Ok(steps) => Some(steps),
            Err(_) => {
                let problem = "The step budget must be a whole number.".to_string();
                return runs_page(&state, viewer, None, form, Some(problem)).await;
            }
        },
    };
    let request = RunRequest {
        task: form.task.clone(),
        model: form.model.clone(),
        base_url: Some(form.base_url.clone()).filter(|url| !url.is_empty()),
        max_steps,
        agent_type: None,
        mcp_servers: form
            .servers
            .iter()
            .map(|alias| McpServerEntry {
                name: Some(alias.clone()),
                ..Default::default()
            })
            .collect(),
        system_prompt: None,
        temperature: None,
        api_key: None,
    };
    let spec = match crate::runs::prepare(&state, &viewer.caller, request).await {
        Ok(spec) => spec,
        Err(error) => {
            return runs_page(&state, viewer, None, form, Some(error.message)).await;
        }
    };
    let run_id = spec.run_id.clone();
    let cancel = CancellationToken::new();
    let guard = state.runs.register(&run_id, cancel.clone());
    let task = crate::runs::launch(&state, &viewer.caller, spec, EventSink::default(), cancel);
    // The run outlives this answer: it is registered (and cancellable) until it ends.
    tokio::spawn(async move {
        let _ = task.await;
        drop(guard);
    });
    (viewer.jar, Redirect::to(&format!("{RUNS}/{run_id}"))).into_response()
}

/// `/console/admin/runs/{id}`: one run, whole; while it runs, a page that looks again.
pub(super) async fn run(
    State(state): State<AppState>,
    jar: CookieJar,
    Path(run_id): Path<String>,
) -> Response {
    let viewer = match Viewer::admin_page(&state, jar, RUNS).await {
        Ok(viewer) => viewer,
        Err(answer) => return answer,
    };
    let record = match run_log::record(&state.gateway, &run_id).await {
        Ok(record) => Some(record),
        Err(error) if error.status == StatusCode::NOT_FOUND => None,
        Err(error) => return viewer.failed(&error.message),
    };
    let running = record.is_none() && state.runs.is_running(&run_id);
    let status = if record.is_some() || running {
        StatusCode::OK
    } else {
        StatusCode::NOT_FOUND
    };
    let page = pages::RunPage {
        frame: viewer.frame(&state, "runs", None, None).await,
        run_id,
        running,
        run: record.map(view),
    };
    show(status, viewer.jar, &page)
}

/// A kept run in words.
fn view(record: RunRecord) -> pages::RunView {
    let result = record.result;
    pages::RunView {
        task: record.task,
        model: record.model,
        servers: record.servers.join(", "),
        actor: record.actor,
        when: pages::when(record.started_at),
        stop_class: stop_class(result.stop_reason.as_str()),
        stop_reason: result.stop_reason.as_str().replace('_', " "),
        took: took(result.duration_ms as i64),
        tokens: format!(
            "{} in, {} out",
            result.token_usage.prompt_tokens, result.token_usage.completion_tokens
        ),
        final_answer: result.final_answer,
        error: result
            .error
            .map(|error| format!("{} ({})", error.message, error.code)),
        warnings: result.warnings,
        steps: result
            .steps
            .into_iter()
            .enumerate()
            .map(|(index, step)| pages::StepView {
                number: index + 1,
                said: step.llm_output,
                tokens: step.token_usage.prompt_tokens + step.token_usage.completion_tokens,
                took: took(step.llm_duration_ms as i64),
                calls: step
                    .tool_calls
                    .iter()
                    .map(|call| {
                        let result = step.tool_results.iter().find(|result| result.id == call.id);
                        pages::CallView {
                            tool: call.function.name.clone(),
                            server: result.map(|r| r.server.clone()).unwrap_or_default(),
                            arguments: call.function.arguments.clone(),
                            output: result.map(|r| r.output.clone()).unwrap_or_default(),
                            failed: result.is_some_and(|r| r.is_error),
                            cut: result.is_some_and(|r| r.truncated),
                            took: result
                                .map(|r| took(r.duration_ms as i64))
                                .unwrap_or_default(),
                        }
                    })
                    .collect(),
            })
            .collect(),
    }
}

fn stop_class(stop_reason: &str) -> &'static str {
    match stop_reason {
        "final_answer" => "ok",
        "error" => "warn",
        _ => "muted",
    }
}

fn took(ms: i64) -> String {
    if ms < 1000 {
        format!("{ms} ms")
    } else {
        format!("{:.1} s", ms as f64 / 1000.0)
    }
}

/// The first `chars` characters of a text, with an ellipsis when cut.
fn short(text: &str, chars: usize) -> String {
    match text.char_indices().nth(chars) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_string(),
    }
}

fn urlencoding(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}
