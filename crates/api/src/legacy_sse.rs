//! The legacy HTTP+SSE transport (2024-11-05) downstream, at `/mcp/{id-or-alias}/sse`: a client
//! opens the event stream, learns its message URL from the `endpoint` event, and POSTs its
//! messages there. Each stream is one rmcp server session over a channel transport, serving the
//! same handler as the Streamable HTTP endpoint. Written here because rmcp has no SSE server.

use std::{
    collections::HashMap,
    convert::Infallible,
    sync::{Arc, Mutex, PoisonError},
};

use axum::{
    Extension, Json,
    extract::{Path, Query, State},
    http::StatusCode,
    response::{
        IntoResponse, Response,
        sse::{Event, KeepAlive, Sse},
    },
};
use futures::{StreamExt as _, channel::mpsc};
use rmcp::{
    model::{ClientJsonRpcMessage, ServerJsonRpcMessage},
    service::serve_server,
    transport::sink_stream::SinkStreamTransport,
};
use serde::Deserialize;
use serde_json::json;
use switchboard_gateway::{policy::Decision, proxy::ProxyHandler};

use crate::{AppState, error::ApiError};

/// Open legacy sessions: where each one's POSTed messages go.
#[derive(Debug, Clone, Default)]
pub struct LegacySessions {
    inboxes: Arc<Mutex<HashMap<String, Inbox>>>,
}

#[derive(Debug, Clone)]
struct Inbox {
    /// The server the session was opened on: a message POSTed under another path is refused.
    server: String,
    sender: mpsc::UnboundedSender<ClientJsonRpcMessage>,
}

impl LegacySessions {
    /// Sessions open now.
    pub fn count(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Inbox>> {
        self.inboxes.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Removes the session when its stream ends (the client went away).
struct SessionGuard {
    sessions: LegacySessions,
    owners: switchboard_gateway::session_directory::SessionDirectory,
    id: String,
}

impl Drop for SessionGuard {
    fn drop(&mut self) {
        self.sessions.lock().remove(&self.id);
        self.owners.forget(&self.id);
    }
}

/// `GET /mcp/{server}/sse`: opens a session and streams the server's messages.
pub async fn open(
    State(state): State<AppState>,
    Path(server): Path<String>,
    Extension(decision): Extension<Decision>,
) -> Result<Response, ApiError> {
    let Some(decided) = decision.server else {
        return Ok(crate::mcp::unresolved());
    };
    let connected = state.gateway.upstream(&decided.id).await?;
    let id = uuid::Uuid::new_v4().simple().to_string();
    if let Some(owner) = decision.caller.owner() {
        state.gateway.session_directory().record_held(&id, &owner);
    }
    let (inbox, incoming) = mpsc::unbounded::<ClientJsonRpcMessage>();
    let (outgoing, outbox) = mpsc::unbounded::<ServerJsonRpcMessage>();
    state.legacy.lock().insert(
        id.clone(),
        Inbox {
            server: connected.id.clone(),
            sender: inbox,
        },
    );
    let handler = ProxyHandler::new(state.gateway.clone(), connected.id).notifying_through_peer();
    let shutdown = state.mcp.shutdown_token();
    tokio::spawn(async move {
        let transport = SinkStreamTransport::new(outgoing, incoming);
        match serve_server(handler, transport).await {
            Ok(running) => {
                tokio::select! {
                    _ = running.waiting() => {}
                    () = shutdown.cancelled() => {}
                }
            }
            Err(error) => tracing::debug!(%error, "a legacy SSE session ended before initializing"),
        }
    });
    let guard = SessionGuard {
        sessions: state.legacy.clone(),
        owners: state.gateway.session_directory().clone(),
        id: id.clone(),
    };
    let endpoint = format!("/mcp/{server}/message?sessionId={id}");
    let first = futures::stream::once(async move {
        Ok::<_, Infallible>(Event::default().event("endpoint").data(endpoint))
    });
    let messages = outbox.map(move |message| {
        // The guard lives as long as the stream.
        let _ = &guard;
        let data = serde_json::to_string(&message).unwrap_or_default();
        Ok::<_, Infallible>(Event::default().event("message").data(data))
    });
    Ok(Sse::new(first.chain(messages))
        .keep_alive(KeepAlive::default())
        .into_response())
}

#[derive(Debug, Deserialize)]
pub struct SessionQuery {
    #[serde(rename = "sessionId")]
    session_id: Option<String>,
}

/// `POST /mcp/{server}/message?sessionId=…`: one client message into its session.
pub async fn message(
    State(state): State<AppState>,
    Extension(decision): Extension<Decision>,
    Query(query): Query<SessionQuery>,
    body: crate::error::Body,
) -> Result<Response, ApiError> {
    let session = query.session_id.ok_or_else(|| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "the `sessionId` query parameter is required",
        )
    })?;
    let inbox = state
        .legacy
        .lock()
        .get(&session)
        .cloned()
        .ok_or_else(|| ApiError::not_found("no such SSE session; open a new one"))?;
    if decision
        .server
        .as_ref()
        .is_none_or(|server| server.id != inbox.server)
    {
        return Err(ApiError::not_found("no such SSE session on this server"));
    }
    let mut message: ClientJsonRpcMessage = serde_json::from_slice(&body?).map_err(|error| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            format!("not a JSON-RPC message: {error}"),
        )
    })?;
    // The session's handler reads who calls from the decision, as over Streamable HTTP.
    if let rmcp::model::JsonRpcMessage::Request(request) = &mut message {
        rmcp::model::GetExtensions::extensions_mut(&mut request.request).insert(decision);
    }
    inbox
        .sender
        .unbounded_send(message)
        .map_err(|_| ApiError::not_found("the SSE session has ended"))?;
    Ok((StatusCode::ACCEPTED, Json(json!({"accepted": true}))).into_response())
}
