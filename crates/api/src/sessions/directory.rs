//! What the session directory gives the endpoints: the parameters of a session another replica
//! opened, and the session store of the endpoints whose sessions never sleep.

use std::sync::Arc;

use rmcp::{
    model::InitializeRequestParams,
    transport::streamable_http_server::session::{SessionState, SessionStore, SessionStoreError},
};
use switchboard_gateway::session_directory::SessionDirectory;

/// The `initialize` parameters of `session`, when another replica opened it on `endpoint` and
/// the edge found it in the store.
pub(super) fn taken_over(
    directory: &SessionDirectory,
    session: &str,
    endpoint: &str,
) -> Option<InitializeRequestParams> {
    let stored = directory.taken_over(session)?;
    if stored.endpoint != endpoint {
        return None;
    }
    serde_json::from_str(&stored.params)
        .inspect_err(|_| tracing::warn!("a stored session's parameters do not read"))
        .ok()
}

/// The session store of an endpoint whose sessions never sleep (`/mcp/admin`, `/mcp/user`): a
/// new session goes in the directory, and one another replica opened is restored from it.
pub struct DirectorySessions {
    directory: SessionDirectory,
    endpoint: &'static str,
}

impl DirectorySessions {
    pub fn new(directory: &SessionDirectory, endpoint: &'static str) -> Arc<Self> {
        Arc::new(Self {
            directory: directory.clone(),
            endpoint,
        })
    }
}

#[async_trait::async_trait]
impl SessionStore for DirectorySessions {
    async fn load(&self, session_id: &str) -> Result<Option<SessionState>, SessionStoreError> {
        Ok(taken_over(&self.directory, session_id, self.endpoint).map(SessionState::new))
    }

    async fn store(&self, session_id: &str, state: &SessionState) -> Result<(), SessionStoreError> {
        let params = serde_json::to_string(&state.initialize_params)
            .map_err(|error| -> SessionStoreError { Box::new(error) })?;
        // These servers ask their clients nothing: their sessions can always move.
        self.directory
            .save(session_id, self.endpoint, params, false)
            .await;
        Ok(())
    }

    /// The edge ends the session in the directory; rmcp closes its own.
    async fn delete(&self, _session_id: &str) -> Result<(), SessionStoreError> {
        Ok(())
    }
}
