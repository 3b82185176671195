//! One request forwarded to a server and answered as the upstream answered, in an
//! `mcp.request` span: on the shared upstream, on a client's own, or with a stateless client's
//! context; every request but a tool call, which the registry governs (see `call`).

use rmcp::{
    ErrorData as McpError, RoleServer,
    model::{ClientRequest, ServerResult},
    service::RequestContext,
};
use switchboard_mcp::{RequestOptions, Upstream};

use crate::{
    Gateway,
    call::{record, to_mcp, upstream_to_mcp},
    client_sessions::{ClientSessions, needs_own_session},
    era,
};

/// A single request to a server, answered as the upstream answered, in an `mcp.request` span.
pub(crate) async fn forward(
    gateway: &Gateway,
    server: &str,
    request: ClientRequest,
) -> Result<ServerResult, McpError> {
    forward_with(gateway, server, request, &RequestOptions::retry_safe()).await
}

async fn forward_with(
    gateway: &Gateway,
    server: &str,
    request: ClientRequest,
    options: &RequestOptions,
) -> Result<ServerResult, McpError> {
    let connected = gateway.upstream(server).await.map_err(to_mcp)?;
    let alias = &connected.definition.alias;
    forward_on(
        gateway,
        &connected.id,
        alias,
        &connected.upstream,
        request,
        options,
    )
    .await
}

/// A request that may draw server-to-client requests (a 2026-07-28 `input_required` on
/// `prompts/get` or `resources/read`). A stateless client's goes upstream with its own context,
/// and an `input_required` answer comes back to it as it is, for it to fulfil and retry. A
/// client of a session that can answer such requests sends it on its own upstream session, whose
/// relay reaches it; any other on the server's shared one.
pub(crate) async fn forward_for_client(
    gateway: &Gateway,
    sessions: &ClientSessions,
    server: &str,
    context: &RequestContext<RoleServer>,
    request: ClientRequest,
) -> Result<ServerResult, McpError> {
    if let Some(client_meta) = era::stateless_context(context) {
        let options = RequestOptions {
            client_meta: Some(client_meta),
            ..RequestOptions::retry_safe()
        };
        return forward_with(gateway, server, request, &options).await;
    }
    if !needs_own_session(&context.peer) {
        return forward(gateway, server, request).await;
    }
    let served = sessions.for_client(gateway, server, &context.peer).await?;
    forward_on(
        gateway,
        &served.id,
        &served.alias,
        &served.upstream,
        request,
        &RequestOptions::retry_safe(),
    )
    .await
}

pub(crate) async fn forward_on(
    gateway: &Gateway,
    id: &str,
    alias: &str,
    upstream: &Upstream,
    request: ClientRequest,
    options: &RequestOptions,
) -> Result<ServerResult, McpError> {
    use tracing::Instrument as _;
    let span = tracing::info_span!(
        "mcp.request",
        "mcp.method.name" = %request.method(),
        "switchboard.server" = %alias,
        "otel.status_code" = tracing::field::Empty,
    );
    let result = upstream
        .request(request, options)
        .instrument(span.clone())
        .await;
    if result.is_err() {
        span.record("otel.status_code", "ERROR");
    }
    record(gateway, id, result.as_ref().err());
    let mut result = result.map_err(|error| upstream_to_mcp(&error))?;
    crate::era::say_complete(&mut result);
    Ok(result)
}
