//! The one place where errors become HTTP answers: a status and `{"error": {"code", "message"}}`.

use axum::{
    Json,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde_json::json;

/// An error answer. Its message is for the caller: it never holds a secret, a stack trace or an
/// internal address.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ApiError {
    pub status: StatusCode,
    /// Stable, for programs: `invalid_request`, `unauthorized`, `not_found`…
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }
}

impl From<axum::extract::rejection::BytesRejection> for ApiError {
    fn from(rejection: axum::extract::rejection::BytesRejection) -> Self {
        let status = rejection.status();
        let code = if status == StatusCode::PAYLOAD_TOO_LARGE {
            "body_too_large"
        } else {
            "invalid_request"
        };
        Self::new(status, code, rejection.body_text())
    }
}

/// A request body, or a JSON error when it cannot be read (too large, cut off).
pub type Body = Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>;

impl From<switchboard_agent::RequestError> for ApiError {
    fn from(error: switchboard_agent::RequestError) -> Self {
        let status = if error.forbidden {
            StatusCode::FORBIDDEN
        } else {
            StatusCode::BAD_REQUEST
        };
        Self::new(status, error.code, error.message)
    }
}

impl From<switchboard_gateway::GatewayError> for ApiError {
    fn from(error: switchboard_gateway::GatewayError) -> Self {
        use switchboard_gateway::GatewayError as E;
        let status = match &error {
            E::Invalid(_) => StatusCode::BAD_REQUEST,
            E::NotFound(_) => StatusCode::NOT_FOUND,
            E::Conflict(_) | E::Disabled(_) => StatusCode::CONFLICT,
            E::Upstream(_) => StatusCode::BAD_GATEWAY,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let code = error.code();
        if status == StatusCode::INTERNAL_SERVER_ERROR {
            // The store's own text may name tables or paths: logged, not answered.
            tracing::error!(%error, "request failed");
            return Self::new(status, code, "the server failed; see its log");
        }
        Self::new(status, code, error.to_string())
    }
}

/// A refusal on an MCP endpoint: the status, and a JSON-RPC error with no id (the request's could
/// not be read, or was not one to answer).
pub fn jsonrpc_refusal(status: StatusCode, code: i32, message: &str) -> Response {
    (
        status,
        Json(json!({"jsonrpc": "2.0", "id": null, "error": {"code": code, "message": message}})),
    )
        .into_response()
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (
            self.status,
            Json(json!({"error": {"code": self.code, "message": self.message}})),
        )
            .into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer"),
            );
        }
        response
    }
}
