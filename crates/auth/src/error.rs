//! The OAuth endpoints' errors.

use switchboard_store::StoreError;

/// An error of the OAuth endpoints, in RFC 6749's terms.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{error}: {description}")]
pub struct OAuthError {
    /// The HTTP status it is answered with.
    pub status: u16,
    /// RFC 6749's (or RFC 7591's) error code.
    pub error: &'static str,
    pub description: String,
}

impl OAuthError {
    pub fn new(status: u16, error: &'static str, description: impl Into<String>) -> Self {
        Self {
            status,
            error,
            description: description.into(),
        }
    }

    pub(crate) fn invalid_grant(description: &str) -> Self {
        Self::new(400, "invalid_grant", description)
    }

    pub(crate) fn invalid_client(description: &str) -> Self {
        Self::new(401, "invalid_client", description)
    }

    pub(crate) fn server(error: StoreError) -> Self {
        tracing::error!(%error, "the authorization server cannot reach the store");
        Self::new(
            500,
            "server_error",
            "the server could not complete the request",
        )
    }
}
