//! The gateway's errors, each with its one stable code.

use switchboard_mcp::UpstreamError;
use switchboard_store::StoreError;

use crate::model::Invalid;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GatewayError {
    #[error("{0}")]
    Invalid(String),
    #[error("no MCP server `{0}`")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("the server `{0}` is disabled")]
    Disabled(String),
    /// A name that names nothing the endpoint serves.
    #[error("{0}")]
    UnknownName(String),
    /// The caller may not do this.
    #[error("{0}")]
    Forbidden(String),
    /// No valid credential: `header` is the `WWW-Authenticate` challenge of the 401.
    #[error("{message}")]
    Unauthenticated { message: String, header: String },
    /// The token lacks scopes: `header` is the challenge of the 403 that names them.
    #[error("{message}")]
    InsufficientScope { message: String, header: String },
    /// A session id this replica holds for no session of the caller's.
    #[error("no such session; open a new one")]
    SessionNotFound,
    #[error("{0}")]
    Upstream(#[from] UpstreamError),
    #[error("the store failed: {0}")]
    Store(StoreError),
    /// A sealed value cannot be opened: the secret key changed.
    #[error("the secrets of server `{0}` cannot be opened with the configured key")]
    Sealed(String),
}

impl GatewayError {
    /// The error's one stable code, the same in every answer: REST's `error.code`, `/mcp/admin`'s
    /// structured `error.code`, and a JSON-RPC error's `data.code`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Invalid(_) => "invalid_request",
            Self::NotFound(_) => "not_found",
            Self::Conflict(_) => "conflict",
            Self::Disabled(_) => "server_disabled",
            Self::UnknownName(_) => "unknown_name",
            Self::Forbidden(_) => "forbidden",
            Self::Unauthenticated { .. } => "unauthorized",
            Self::InsufficientScope { .. } => "insufficient_scope",
            Self::SessionNotFound => "session_not_found",
            Self::Upstream(_) => "upstream_error",
            Self::Sealed(_) => "secrets_unreadable",
            Self::Store(_) => "internal",
        }
    }
}

impl From<Invalid> for GatewayError {
    fn from(invalid: Invalid) -> Self {
        Self::Invalid(invalid.0)
    }
}

impl From<StoreError> for GatewayError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Conflict(what) => Self::Conflict(format!("{what} is already taken")),
            other => Self::Store(other),
        }
    }
}

impl GatewayError {
    /// The error as a JSON-RPC error: the one reading of every gateway error as JSON-RPC (see
    /// `call::to_mcp`).
    pub fn into_jsonrpc(self) -> rmcp::ErrorData {
        crate::call::to_mcp(self)
    }
}
