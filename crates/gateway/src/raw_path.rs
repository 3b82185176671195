//! The proxy's raw path: a downstream `tools/call` that the policy routed here, forwarded to an
//! upstream's open session (Streamable HTTP, or a child's stdio) as raw JSON, governed like every
//! call (the registry's names, filters and pinned parameters; breaker, timeout, audit, metrics
//! and the `mcp.request` span), but never decoded into rmcp's typed model. A call the upstream's
//! connection turns out unable to carry (no open session yet, legacy SSE behind an `auto` URL,
//! a call that needs the client's own session) is declined before anything is sent, and rmcp's
//! typed path serves it.

use std::time::Instant;

use rmcp::ErrorData as McpError;
use serde_json::value::RawValue;
use switchboard_mcp::{CallContext, RawReply, RequestOptions};
use switchboard_tools::RawExecuteError;
use tokio_util::sync::CancellationToken;

use crate::{Gateway, Served, shared_sessions::SharedSession};

/// One call for the raw path.
#[derive(Debug)]
pub struct RawCall<'a> {
    pub served: &'a Served,
    /// The tool's name as the client sees it.
    pub name: &'a str,
    /// The client's arguments, as it wrote them.
    pub arguments: Option<&'a RawValue>,
    pub session: &'a SharedSession,
    /// Who calls, as the policy decided the request, for the audit row.
    pub actor: &'a str,
    /// What the caller may call, as the policy decided the request.
    pub grants: &'a crate::policy::Grants,
    /// The call's `mcp.request` span (`crate::call_span`), made by the caller, so that a call
    /// that outlives its request keeps no copy of the request's headers.
    pub span: tracing::Span,
    pub cancel: CancellationToken,
    /// Where the upstream's progress goes, when the client asked for it, and the client's token
    /// (JSON text), which goes upstream as it is.
    pub progress: Option<tokio::sync::mpsc::UnboundedSender<switchboard_mcp::Progress>>,
    pub progress_token: Option<&'a RawValue>,
    /// What a stateless client's call carries besides its arguments.
    pub stateless: Option<switchboard_mcp::StatelessCall<'a>>,
}

/// Calls a governed tool with raw JSON. `None`: declined, nothing was sent, and the typed path
/// should serve the call. Otherwise the call was made, counted and audited.
pub async fn call_raw(gateway: &Gateway, call: RawCall<'_>) -> Option<Result<RawReply, McpError>> {
    use tracing::Instrument as _;
    let RawCall {
        served,
        name,
        arguments,
        session,
        actor,
        grants,
        span,
        cancel,
        progress,
        progress_token,
        stateless,
    } = call;
    if let Err(refused) = crate::call::permitted(gateway, served, name, grants) {
        span.record("otel.status_code", "ERROR");
        return Some(Err(refused));
    }
    let started = Instant::now();
    let options = RequestOptions {
        cancel: Some(cancel),
        progress,
        progress_token: progress_token.map(|token| token.get().to_string()),
        ..RequestOptions::default()
    };
    let result = served
        .registry
        .execute_raw(
            name,
            arguments,
            stateless.as_ref(),
            &CallContext::new(),
            options,
        )
        .instrument(span.clone())
        .await;
    let result = match result {
        Ok(reply) => Ok(reply),
        // An unrouted call was not sent: the typed path takes it.
        Err(RawExecuteError::Unrouted) => return None,
        Err(RawExecuteError::Tool(error)) => {
            Err(crate::call::tool_error_to_mcp(gateway, &served.id, error))
        }
        Err(error) => Err(McpError::internal_error(error.to_string(), None)),
    };
    gateway.metrics().raw_calls.inc();
    if result.is_ok() {
        crate::call::record(gateway, &served.id, None);
    }
    let outcome = match &result {
        Ok(reply) if reply.is_error => crate::call::CallOutcome::ToolError,
        Ok(_) => crate::call::CallOutcome::Ok,
        Err(error) => crate::call::CallOutcome::Failed(error.message.to_string()),
    };
    let arguments_hash = arguments
        .and_then(|raw| serde_json::from_str::<serde_json::Value>(raw.get()).ok())
        .filter(serde_json::Value::is_object)
        .map(|value| crate::audit::hash_json(&value));
    crate::call::account_call(
        gateway,
        served,
        name,
        crate::call::CalledBy {
            actor: actor.to_string(),
            client: session.client_name.clone(),
        },
        started,
        outcome,
        arguments_hash,
        &span,
    );
    Some(result)
}
