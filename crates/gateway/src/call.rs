//! One governed tool call, as every path makes it or accounts for it: the call on the typed path
//! (pinned parameters, progress under the client's token, cancel sent upstream), its `mcp.request`
//! span, its accounting (audit row, metrics, the server's status), and how its failures and the
//! gateway's own errors read as JSON-RPC errors.

use rmcp::{
    ErrorData as McpError, RoleServer,
    model::{CallToolResponse, ProgressNotificationParam},
    service::RequestContext,
};
use serde_json::{Value, json};
use switchboard_mcp::{CallContext, RequestOptions, UpstreamError};
use switchboard_tools::ToolError;
use tokio::sync::mpsc;

use crate::{Gateway, GatewayError, Served, policy::Decision};

/// A gateway error as a JSON-RPC error, its stable code in `data.code` (see
/// [`GatewayError::code`]); an upstream's own JSON-RPC error passes through as it was.
pub(crate) fn to_mcp(error: GatewayError) -> McpError {
    let data = Some(json!({"code": error.code()}));
    match error {
        GatewayError::Upstream(upstream) => upstream_to_mcp(&upstream),
        GatewayError::Store(_) | GatewayError::Sealed(_) => {
            tracing::error!(%error, "proxy request failed");
            McpError::internal_error("the gateway failed; see its log", data)
        }
        GatewayError::UnknownName(_) => McpError::invalid_params(error.to_string(), data),
        _ => McpError::invalid_request(error.to_string(), data),
    }
}

/// An upstream's JSON-RPC error passes through as it was; any other failure becomes an internal
/// error whose message is already free of URLs and secrets.
pub fn upstream_to_mcp(error: &UpstreamError) -> McpError {
    match error {
        UpstreamError::Rpc {
            code,
            message,
            data,
            ..
        } => McpError::new(rmcp::model::ErrorCode(*code), message.clone(), data.clone()),
        other => McpError::internal_error(other.to_string(), None),
    }
}

/// Who made a call, for its audit row.
#[derive(Debug, Clone, Default)]
pub struct CalledBy {
    /// The caller, as the policy decided the request (`policy::Caller::actor`).
    pub actor: String,
    /// The MCP client's name (`clientInfo.name`).
    pub client: String,
}

/// The policy's decision on the request rmcp serves in `context`, which the edge put in the HTTP
/// request (or, for legacy SSE, in the message itself).
pub(crate) fn decision_of(context: &RequestContext<RoleServer>) -> Option<&Decision> {
    context.extensions.get::<Decision>().or_else(|| {
        context
            .extensions
            .get::<http::request::Parts>()
            .and_then(|parts| parts.extensions.get::<Decision>())
    })
}

/// What the caller of the request in `context` may use, as the policy decided; nothing when no
/// decision came with it (a route left out of the MCP edge, which is a bug).
pub(crate) fn grants_of(context: &RequestContext<RoleServer>) -> crate::policy::Grants {
    decision_of(context).map_or(crate::policy::Grants::Held(Vec::new()), |decision| {
        decision.grants.clone()
    })
}

/// Whether `grants` let the caller call `name` of `served`; the refusal names the permission
/// that would. A name the registry does not hold passes, to be refused as unknown.
pub(crate) fn permitted(
    gateway: &Gateway,
    served: &Served,
    name: &str,
    grants: &crate::policy::Grants,
) -> Result<(), McpError> {
    let Some(read_only) = served.registry.read_only(name) else {
        return Ok(());
    };
    if grants.permit(&served.id, name, read_only) {
        return Ok(());
    }
    let permissions = gateway.access().permissions_of(&served.id);
    Err(to_mcp(crate::policy::refuse_call(
        &served.alias,
        name,
        read_only,
        &permissions,
    )))
}

impl CalledBy {
    /// Who made the request rmcp serves in `context`: the caller from the policy's decision.
    pub(crate) fn of(context: &RequestContext<RoleServer>) -> Self {
        let decision = decision_of(context);
        Self {
            actor: decision.map_or_else(String::new, |decision| decision.caller.actor.clone()),
            client: context
                .peer
                .peer_info()
                .map(|info| info.client_info.name.clone())
                .unwrap_or_default(),
        }
    }
}

/// Calls one governed tool of a served server for the client of an rmcp session: the client's
/// progress token fed from upstream progress, and its cancel sent upstream (see
/// [`governed_call`]).
pub async fn call_served(
    gateway: &Gateway,
    served: &Served,
    name: &str,
    request: rmcp::model::CallToolRequestParams,
    context: &RequestContext<RoleServer>,
) -> Result<CallToolResponse, McpError> {
    // rmcp serves the request from its session task: the HTTP request's headers carry the trace.
    let empty = http::HeaderMap::new();
    let headers = context
        .extensions
        .get::<http::request::Parts>()
        .map_or(&empty, |parts| &parts.headers);
    permitted(gateway, served, name, &grants_of(context))?;
    let by = CalledBy::of(context);
    let mut options = RequestOptions {
        cancel: Some(context.ct.clone()),
        ..RequestOptions::default()
    };
    // Progress from upstream goes to the client under the client's own token.
    let relay = context.meta.get_progress_token().map(|token| {
        let (sender, mut receiver) = mpsc::unbounded_channel::<switchboard_mcp::Progress>();
        options.progress = Some(sender);
        let peer = context.peer.clone();
        tokio::spawn(async move {
            while let Some(progress) = receiver.recv().await {
                let mut param = ProgressNotificationParam::new(token.clone(), progress.progress);
                param.total = progress.total;
                param.message = progress.message;
                let _ = peer.notify_progress(param).await;
            }
        })
    });
    // A stateless client's own context goes upstream, with its answers to an earlier
    // `input_required`, and a new `input_required` comes back to it.
    options.client_meta = crate::era::stateless_context(context);
    if options.client_meta.is_some()
        && (request.input_responses.is_some() || request.request_state.is_some())
    {
        options.input = Some(switchboard_mcp::RetriedInput {
            responses: request.input_responses,
            state: request.request_state,
        });
    }
    let result = governed_call(
        gateway,
        served,
        name,
        request.arguments,
        by,
        headers,
        options,
    )
    .await;
    if let Some(relay) = relay {
        // The sender is gone with the call; the relay ends once it has sent the rest.
        let _ = relay.await;
    }
    result
}

/// One governed tool call on the typed path, accounted: in its `mcp.request` span (continuing
/// the trace `headers` carry), through the registry (its names, filters and pinned parameters:
/// an unlisted, denied or renamed-away name is refused as unknown before anything is sent
/// upstream), with its audit row (who, which client, server, tool, outcome and duration, the
/// arguments only as a hash) and metrics. `options` bring the caller's cancel and progress, and
/// a stateless client's own context, with which the upstream's `input_required` is the answer.
pub(crate) async fn governed_call(
    gateway: &Gateway,
    served: &Served,
    name: &str,
    arguments: Option<serde_json::Map<String, Value>>,
    by: CalledBy,
    headers: &http::HeaderMap,
    options: RequestOptions,
) -> Result<CallToolResponse, McpError> {
    use tracing::Instrument as _;
    let span = call_span(served, name, headers);
    let started = std::time::Instant::now();
    let arguments_hash = arguments.as_ref().map(crate::audit::hash_json);
    let arguments = arguments.map(Value::Object).unwrap_or(Value::Null);
    let output = served
        .registry
        .execute_with(name, arguments, &CallContext::new(), options)
        .instrument(span.clone())
        .await;
    let result = answer_of(gateway, served, output);
    let outcome = match &result {
        Ok(CallToolResponse::Complete(result)) if result.is_error == Some(true) => {
            CallOutcome::ToolError
        }
        Ok(_) => CallOutcome::Ok,
        Err(error) => CallOutcome::Failed(error.message.to_string()),
    };
    account_call(
        gateway,
        served,
        name,
        by,
        started,
        outcome,
        arguments_hash,
        &span,
    );
    result
}

/// The `mcp.request` span of one tool call, continuing the trace the client's headers carry.
pub fn call_span(served: &Served, name: &str, headers: &http::HeaderMap) -> tracing::Span {
    use tracing_opentelemetry::OpenTelemetrySpanExt as _;
    let span = tracing::info_span!(
        "mcp.request",
        "mcp.method.name" = "tools/call",
        "switchboard.server" = %served.alias,
        "gen_ai.tool.name" = %name,
        "mcp.session.id" = tracing::field::Empty,
        "otel.status_code" = tracing::field::Empty,
    );
    if span.is_disabled() {
        return span;
    }
    let parent = opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.extract(&opentelemetry_http::HeaderExtractor(headers))
    });
    let _ = span.set_parent(parent);
    if let Some(session) = headers.get("mcp-session-id").and_then(|v| v.to_str().ok()) {
        span.record("mcp.session.id", session);
    }
    span
}

/// How a tool call ended, for the metrics and the audit.
pub(crate) enum CallOutcome {
    Ok,
    /// The tool answered with `isError: true`.
    ToolError,
    /// The call failed, with the message the client got.
    Failed(String),
}

/// Counts and audits one finished tool call, on the typed path and the raw path alike: who,
/// which client, server, tool, outcome and duration, with the arguments only as a hash.
#[allow(clippy::too_many_arguments)]
pub(crate) fn account_call(
    gateway: &Gateway,
    served: &Served,
    name: &str,
    by: CalledBy,
    started: std::time::Instant,
    outcome: CallOutcome,
    arguments_hash: Option<String>,
    span: &tracing::Span,
) {
    let (ok, error) = match outcome {
        CallOutcome::Ok => (true, None),
        CallOutcome::ToolError => (false, None),
        CallOutcome::Failed(message) => (false, Some(message)),
    };
    if !ok {
        span.record("otel.status_code", "ERROR");
    }
    let elapsed = started.elapsed();
    gateway
        .metrics()
        .tool_call("proxy", &served.alias, name, ok, elapsed.as_secs_f64());
    gateway.audit().record(crate::audit::AuditEntry {
        actor: by.actor.into(),
        client: by.client,
        kind: "tool_call",
        action: "tools/call".into(),
        server: served.alias.clone(),
        tool: name.to_string(),
        outcome: if ok { "ok" } else { "error" },
        duration_ms: elapsed.as_millis() as u64,
        detail: json!({"argumentsSha256": arguments_hash, "error": error}),
    });
}

/// A governed call's outcome as the client gets it: the tool's result, said complete (rmcp
/// leaves `resultType` out for a client of the 2025 era), or the error.
fn answer_of(
    gateway: &Gateway,
    served: &Served,
    result: Result<switchboard_tools::ToolOutput, ToolError>,
) -> Result<CallToolResponse, McpError> {
    let output = match result {
        Ok(output) => output,
        // The stateless client fulfils the upstream's input requests and calls again.
        Err(ToolError::Upstream(UpstreamError::InputRequired { pending, .. })) => {
            record(gateway, &served.id, None);
            return Ok(CallToolResponse::InputRequired(*pending));
        }
        Err(error) => return Err(tool_error_to_mcp(gateway, &served.id, error)),
    };
    record(gateway, &served.id, None);
    // Non-exhaustive upstream type: built by assignment.
    #[allow(clippy::field_reassign_with_default)]
    let result = {
        let mut result = rmcp::model::CallToolResult::default();
        result.content = output.content;
        result.structured_content = output.structured_content;
        result.is_error = Some(output.is_error);
        result
    };
    let mut result = rmcp::model::ServerResult::CallToolResult(result);
    crate::era::say_complete(&mut result);
    match result {
        rmcp::model::ServerResult::CallToolResult(result) => Ok(CallToolResponse::Complete(result)),
        _ => Err(unexpected()),
    }
}

/// A failed governed call as the client gets it, on the typed path and the raw path alike; an
/// upstream failure also goes into the server's status.
pub(crate) fn tool_error_to_mcp(gateway: &Gateway, id: &str, error: ToolError) -> McpError {
    match error {
        ToolError::Upstream(error) => {
            record(gateway, id, Some(&error));
            upstream_to_mcp(&error)
        }
        error @ (ToolError::UnknownTool(_) | ToolError::ArgumentsNotAnObject(_)) => {
            McpError::invalid_params(error.to_string(), None)
        }
        other => McpError::internal_error(other.to_string(), None),
    }
}

/// Notes how a use of the server went, for its `status`.
pub(crate) fn record(gateway: &Gateway, id: &str, error: Option<&UpstreamError>) {
    gateway
        .pool()
        .record(id, error.map_or(Ok(()), |e| Err(e.to_string())));
}

/// An upstream answer of another kind than the request asked for.
pub(crate) fn unexpected() -> McpError {
    McpError::internal_error("the upstream answered with an unexpected result", None)
}

impl Gateway {
    /// Calls one tool of a server as an admin trying it (the console's test call): governed,
    /// audited and counted as any call, with the caller's name. The answer as JSON: the result,
    /// or the JSON-RPC error.
    pub async fn test_call(
        &self,
        server: &str,
        tool: &str,
        arguments: Option<serde_json::Map<String, Value>>,
        actor: &str,
    ) -> Result<Value, GatewayError> {
        let served = self.served(server).await?;
        let by = CalledBy {
            actor: actor.to_string(),
            client: "console".into(),
        };
        let answer = governed_call(
            self,
            &served,
            tool,
            arguments,
            by,
            &http::HeaderMap::new(),
            RequestOptions::default(),
        )
        .await;
        Ok(match answer {
            Ok(CallToolResponse::Complete(result)) => {
                serde_json::to_value(result).unwrap_or(Value::Null)
            }
            // Only a stateless client's call is answered so; this one names no client.
            Ok(_) => serde_json::json!({"error": {"message": "the tool asked for input"}}),
            Err(error) => serde_json::json!({"error": error}),
        })
    }
}
