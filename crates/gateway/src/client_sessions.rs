//! Which upstream session a downstream client uses: the gateway's shared one, or, for a client
//! that can answer sampling, elicitation or roots requests, one of its own whose requests are
//! relayed to it (`PeerRelay`).

use std::sync::Arc;

use rmcp::{ErrorData as McpError, RoleServer, service::Peer};
use tokio_util::sync::CancellationToken;

use crate::{
    Gateway, Served,
    call::{to_mcp, unexpected},
    relay::relay_events,
};

/// Which upstream session a downstream client uses, per server: the gateway's shared one, or, for
/// a client that can answer sampling, elicitation or roots requests, one of its own whose
/// requests are relayed to it. One per downstream session; dropped with it.
#[derive(Debug, Clone, Default)]
pub struct ClientSessions {
    dedicated: Arc<tokio::sync::Mutex<std::collections::HashMap<String, Served>>>,
    /// Cancelled when the downstream session's handler is dropped (the last clone of this goes
    /// with it): ends the tasks that relay upstream events to the session.
    ended: Arc<SessionEnd>,
}

/// Cancels its token when dropped.
#[derive(Debug, Default)]
struct SessionEnd(CancellationToken);

impl Drop for SessionEnd {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

/// Whether a client with `capabilities` can answer sampling, elicitation or roots requests: such
/// a client gets an upstream session of its own, and its downstream session never hibernates.
pub fn answers_requests(capabilities: &rmcp::model::ClientCapabilities) -> bool {
    capabilities.sampling.is_some()
        || capabilities.elicitation.is_some()
        || capabilities.roots.is_some()
}

/// Whether the client of `peer` answers server-to-client requests (see [`answers_requests`]).
pub(crate) fn needs_own_session(peer: &Peer<RoleServer>) -> bool {
    peer.peer_info()
        .is_some_and(|info| answers_requests(&info.capabilities))
}

impl ClientSessions {
    /// Cancelled when the downstream session ends.
    pub(crate) fn ended(&self) -> CancellationToken {
        self.ended.0.clone()
    }

    /// The served server a request of the client of `peer` goes through: the shared upstream,
    /// unless the client answers server-to-client requests on a session. A stateless client's
    /// request never does (rmcp gives it no capabilities): it carries its own context instead.
    pub async fn for_client(
        &self,
        gateway: &Gateway,
        server: &str,
        peer: &Peer<RoleServer>,
    ) -> Result<Served, McpError> {
        if !needs_own_session(peer) {
            return gateway.served(server).await.map_err(to_mcp);
        }
        let capabilities = peer
            .peer_info()
            .map(|info| info.capabilities.clone())
            .unwrap_or_default();
        // The current version, and a refusal if the server was disabled or removed.
        let (_, version) = gateway.locate(server).await.map_err(to_mcp)?;
        let mut dedicated = self.dedicated.lock().await;
        if let Some(served) = dedicated.get(server)
            && served.version == version
        {
            return Ok(served.clone());
        }
        // A definition change replaces the session's own upstream session (the old one ends as
        // it is dropped here), so that the new governance and config apply to it.
        dedicated.remove(server);
        let relay = Arc::new(PeerRelay {
            peer: peer.clone(),
            capabilities,
        });
        let served = gateway.dedicated(server, relay).await.map_err(to_mcp)?;
        relay_events(
            gateway.clone(),
            served.id.clone(),
            &served.upstream,
            peer.clone(),
            self.ended.0.clone(),
        );
        dedicated.insert(server.to_string(), served.clone());
        Ok(served)
    }
}

/// Answers an upstream's requests by asking the downstream client of the session.
struct PeerRelay {
    peer: Peer<RoleServer>,
    capabilities: rmcp::model::ClientCapabilities,
}

fn service_to_mcp(error: rmcp::ServiceError) -> McpError {
    match error {
        rmcp::ServiceError::McpError(error) => error,
        other => McpError::internal_error(format!("the client did not answer: {other}"), None),
    }
}

// Sampling and roots are deprecated from 2026-07-28 on; earlier clients still answer them.
#[allow(deprecated)]
impl switchboard_mcp::ClientRelay for PeerRelay {
    fn capabilities(&self) -> rmcp::model::ClientCapabilities {
        self.capabilities.clone()
    }

    fn create_message(
        &self,
        params: rmcp::model::CreateMessageRequestParams,
    ) -> switchboard_mcp::RelayFuture<rmcp::model::CreateMessageResult> {
        let peer = self.peer.clone();
        Box::pin(async move { peer.create_message(params).await.map_err(service_to_mcp) })
    }

    fn list_roots(&self) -> switchboard_mcp::RelayFuture<rmcp::model::ListRootsResult> {
        let peer = self.peer.clone();
        Box::pin(async move { peer.list_roots().await.map_err(service_to_mcp) })
    }

    fn create_elicitation(
        &self,
        params: rmcp::model::ElicitRequestParams,
    ) -> switchboard_mcp::RelayFuture<rmcp::model::ElicitResult> {
        let peer = self.peer.clone();
        Box::pin(async move {
            let request =
                rmcp::model::ServerRequest::ElicitRequest(rmcp::model::ElicitRequest::new(params));
            match peer.send_request(request).await.map_err(service_to_mcp)? {
                rmcp::model::ClientResult::ElicitResult(result) => Ok(result),
                _ => Err(unexpected()),
            }
        })
    }
}
