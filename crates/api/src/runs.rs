//! `POST /run` and `DELETE /run/{run_id}`.

use std::convert::Infallible;

use axum::{
    Json,
    extract::{Path, State},
    http::{HeaderMap, StatusCode, header},
    response::{
        IntoResponse, Response,
        sse::{Event, KeepAlive, Sse},
    },
};
use futures::StreamExt;
use serde_json::json;
use switchboard_agent::{
    EventSink, Registered, RunPermissions, RunRequest, RunResult, RunServer, RunSpec, StopReason,
    parse_request, run,
};
use tokio::sync::mpsc;
use tokio_stream::wrappers::UnboundedReceiverStream;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

use switchboard_gateway::metrics::{StopLabels, TokenLabels};

use crate::{AppState, auth::Caller, error::ApiError, run_log::Keeping};

/// Starts a run. With `Accept: text/event-stream` its events stream as they happen; otherwise the
/// answer is the run's result. Either way, a caller that goes away cancels the run.
pub async fn start_run(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: crate::error::Body,
) -> Result<Response, ApiError> {
    let spec = prepare(&state, &caller, parse_request(&body?)?).await?;
    let run_id = spec.run_id.clone();
    let cancel = CancellationToken::new();
    // Dropped with the response (JSON) or the stream (SSE): either way the run is cancelled.
    let guard = state.runs.register(&run_id, cancel.clone());
    let (sender, receiver) = mpsc::unbounded_channel();
    let streaming = wants_event_stream(&headers);
    let events = if streaming {
        EventSink::new(sender)
    } else {
        EventSink::default()
    };
    let task = launch(&state, &caller, spec, events, cancel);
    tracing::info!(%run_id, streaming, "run started");

    if streaming {
        let stream = UnboundedReceiverStream::new(receiver).map(move |event| {
            // The guard lives as long as the stream: a client that disconnects drops it.
            let _ = &guard;
            Ok::<_, Infallible>(
                Event::default()
                    .event(event.name())
                    .data(event.data().to_string()),
            )
        });
        let mut response = Sse::new(stream)
            .keep_alive(KeepAlive::default())
            .into_response();
        if let Ok(value) = run_id.parse() {
            response.headers_mut().insert("x-run-id", value);
        }
        return Ok(response);
    }

    let result = match task.await {
        Ok(result) => result,
        Err(error) => {
            tracing::error!(%run_id, %error, "run task failed");
            return Err(ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "the run failed unexpectedly",
            ));
        }
    };
    drop(guard);
    Ok(result_response(result))
}

/// Checks a request and resolves it into a spec, with the registered servers it names.
pub(crate) async fn prepare(
    state: &AppState,
    caller: &Caller,
    request: RunRequest,
) -> Result<RunSpec, ApiError> {
    let permissions = RunPermissions {
        stdio: caller.may_start_local_servers(),
    };
    // The URLs a run will call must not reach link-local or cloud metadata addresses, as for
    // registered servers.
    if !state.gateway.settings().allow_link_local {
        let urls = request.base_url.iter().chain(
            request
                .mcp_servers
                .iter()
                .filter_map(|entry| entry.url.as_ref()),
        );
        for url in urls {
            // A URL that does not parse is reported by `resolve`, with the field it came from.
            let parses = url::Url::parse(url).is_ok();
            if parses
                && switchboard_gateway::model::check_url_target(url)
                    .await
                    .is_err()
            {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "a URL of the run (`base_url` or an `mcp_servers` url) resolves to a \
                     link-local or cloud metadata address, which this server refuses",
                ));
            }
        }
    }
    let mut registered = Registered::new();
    for name in request.registered_names() {
        match state.gateway.upstream(&name).await {
            Ok(connected) => {
                registered.insert(
                    connected.definition.alias,
                    RunServer {
                        config: connected.config,
                        shared: Some(connected.upstream),
                    },
                );
            }
            // Left out: `resolve` names the entry that refers to it.
            Err(switchboard_gateway::GatewayError::NotFound(_))
            | Err(switchboard_gateway::GatewayError::Disabled(_)) => {}
            Err(error) => return Err(error.into()),
        }
    }
    Ok(request.resolve(&state.runner, permissions, &registered)?)
}

/// Runs a spec on a task of its own, which audits its tool calls and keeps the run (masked)
/// before the task ends: a JSON answer comes once the run is readable at `GET /api/runs/{id}`
/// (a stream's `final` event may come just before).
pub(crate) fn launch(
    state: &AppState,
    caller: &Caller,
    spec: RunSpec,
    events: EventSink,
    cancel: CancellationToken,
) -> tokio::task::JoinHandle<RunResult> {
    let gateway = state.gateway.clone();
    let auditor = caller.clone();
    let http = state.http.clone();
    let keeping = Keeping::of(&spec, caller);
    // The run's span continues the request's trace.
    tokio::spawn(
        async move {
            let result = run(spec, http, events, cancel).await;
            audit_run(&gateway, &auditor, &result);
            keeping.keep(&gateway, &result).await;
            result
        }
        .in_current_span(),
    )
}

/// Every tool call of a run goes to the audit log (who, server, tool, outcome, duration), and the
/// run to the metrics.
fn audit_run(gateway: &switchboard_gateway::Gateway, caller: &Caller, result: &RunResult) {
    let metrics = gateway.metrics();
    metrics
        .runs
        .get_or_create(&StopLabels {
            stop_reason: result.stop_reason.as_str().into(),
        })
        .inc();
    for (kind, count) in [
        ("prompt", result.token_usage.prompt_tokens),
        ("completion", result.token_usage.completion_tokens),
    ] {
        metrics
            .tokens
            .get_or_create(&TokenLabels { kind: kind.into() })
            .inc_by(count);
    }
    for step in &result.steps {
        metrics
            .llm_call_seconds
            .observe(step.llm_duration_ms as f64 / 1000.0);
        for tool in &step.tool_results {
            metrics.tool_call(
                "run",
                &tool.server,
                &tool.name,
                !tool.is_error,
                tool.duration_ms as f64 / 1000.0,
            );
            gateway
                .audit()
                .record(switchboard_gateway::audit::AuditEntry {
                    actor: caller.actor.clone().into(),
                    client: caller.client.clone(),
                    kind: "run_tool_call",
                    action: "tools/call".into(),
                    server: tool.server.clone(),
                    tool: tool.name.clone(),
                    outcome: if tool.is_error { "error" } else { "ok" },
                    duration_ms: tool.duration_ms,
                    detail: json!({"runId": result.run_id, "callId": tool.id, "traceId": result.trace_id}),
                });
        }
    }
}

fn wants_event_stream(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .any(|value| value.contains("text/event-stream"))
}

/// 200 for a run that ended normally, 502 when the LLM failed it.
fn result_response(result: RunResult) -> Response {
    tracing::info!(run_id = %result.run_id, stop_reason = ?result.stop_reason, steps = result.steps.len(), "run ended");
    let status = match result.stop_reason {
        StopReason::Error => StatusCode::BAD_GATEWAY,
        _ => StatusCode::OK,
    };
    (status, Json(result)).into_response()
}

/// Cancels a run in progress.
pub async fn cancel_run(
    State(state): State<AppState>,
    _caller: Caller,
    Path(run_id): Path<String>,
) -> Result<Response, ApiError> {
    if state.runs.cancel(&run_id) {
        tracing::info!(%run_id, "run cancelled on request");
        Ok((
            StatusCode::ACCEPTED,
            Json(json!({"run_id": run_id, "status": "cancelling"})),
        )
            .into_response())
    } else {
        Err(ApiError::not_found(format!(
            "no run `{run_id}` is in progress"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_agent::RunEvent;

    #[test]
    fn accept_header_selects_streaming() {
        let mut headers = HeaderMap::new();
        assert!(!wants_event_stream(&headers));
        headers.insert(
            header::ACCEPT,
            "application/json, text/event-stream"
                .parse()
                .expect("value"),
        );
        assert!(wants_event_stream(&headers));
    }

    #[test]
    fn events_are_named_for_sse() {
        assert_eq!(RunEvent::Started { run_id: "r".into() }.name(), "started");
    }
}
