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
    /// The `WWW-Authenticate` challenge of a 401 or 403 from the policy; a plain `Bearer` on any
    /// other 401.
    pub challenge: Option<String>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            challenge: None,
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

impl From<axum::extract::rejection::QueryRejection> for ApiError {
    fn from(rejection: axum::extract::rejection::QueryRejection) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            rejection.body_text(),
        )
    }
}

/// A query string, or a JSON error when it cannot be read.
pub type Params<T> = Result<axum::extract::Query<T>, axum::extract::rejection::QueryRejection>;

/// A page's size: `given`, or `default`, at most `most`.
pub(crate) fn page_limit(given: Option<u32>, default: u32, most: u32) -> Result<u32, ApiError> {
    match given.unwrap_or(default) {
        limit @ 1.. if limit <= most => Ok(limit),
        _ => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            format!("`limit` must be between 1 and {most}"),
        )),
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
        let challenge = match &error {
            E::Unauthenticated { header, .. } | E::InsufficientScope { header, .. } => {
                Some(header.clone())
            }
            _ => None,
        };
        let status = match &error {
            E::Unauthenticated { .. } => StatusCode::UNAUTHORIZED,
            E::InsufficientScope { .. } => StatusCode::FORBIDDEN,
            E::Invalid(_) => StatusCode::BAD_REQUEST,
            E::NotFound(_) | E::UnknownName(_) | E::SessionNotFound => StatusCode::NOT_FOUND,
            E::Forbidden(_) => StatusCode::FORBIDDEN,
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
        Self {
            challenge,
            ..Self::new(status, code, error.to_string())
        }
    }
}

/// A refusal on an MCP endpoint: the status, and a JSON-RPC error with no id (the request's could
/// not be read, or was not one to answer).
pub fn jsonrpc_refusal(status: StatusCode, code: i32, message: &str) -> Response {
    let error = rmcp::ErrorData::new(rmcp::model::ErrorCode(code), message.to_string(), None);
    let body = jsonrpc_error(None, &error);
    (
        status,
        [(
            axum::http::header::CONTENT_TYPE,
            axum::http::HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
}

/// The one JSON-RPC error envelope the gateway writes itself (rmcp writes its own): the answer
/// to the request with `id` (`null` when it could not be read), carrying `error` whole.
pub(crate) fn jsonrpc_error(
    id: Option<&serde_json::value::RawValue>,
    error: &rmcp::ErrorData,
) -> String {
    let mut message = String::with_capacity(96);
    message.push_str(r#"{"jsonrpc":"2.0","id":"#);
    message.push_str(id.map_or("null", serde_json::value::RawValue::get));
    message.push_str(r#","error":"#);
    message.push_str(&serde_json::to_string(error).unwrap_or_else(|_| "{}".into()));
    message.push('}');
    message
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (
            self.status,
            Json(json!({"error": {"code": self.code, "message": self.message}})),
        )
            .into_response();
        let challenge = match self.challenge {
            Some(challenge) => axum::http::HeaderValue::from_str(&challenge).ok(),
            None => (self.status == StatusCode::UNAUTHORIZED)
                .then(|| axum::http::HeaderValue::from_static("Bearer")),
        };
        if let Some(challenge) = challenge {
            response
                .headers_mut()
                .insert(axum::http::header::WWW_AUTHENTICATE, challenge);
        }
        response
    }
}

/// An error of the OAuth endpoints, as RFC 6749 §5.2 writes it: `{"error", "error_description"}`,
/// never cached; a client that failed HTTP Basic authentication is challenged for it again.
pub fn oauth_error(error: &switchboard_auth::OAuthError, basic: bool) -> Response {
    let status = StatusCode::from_u16(error.status).unwrap_or(StatusCode::BAD_REQUEST);
    let mut response = (
        status,
        no_store(),
        Json(json!({"error": error.error, "error_description": error.description})),
    )
        .into_response();
    if status == StatusCode::UNAUTHORIZED && basic {
        response.headers_mut().insert(
            axum::http::header::WWW_AUTHENTICATE,
            axum::http::HeaderValue::from_static(r#"Basic realm="switchboard""#),
        );
    }
    response
}

/// The headers that keep an answer holding credentials out of every cache.
pub fn no_store() -> [(axum::http::HeaderName, axum::http::HeaderValue); 2] {
    [
        (
            axum::http::header::CACHE_CONTROL,
            axum::http::HeaderValue::from_static("no-store"),
        ),
        (
            axum::http::header::PRAGMA,
            axum::http::HeaderValue::from_static("no-cache"),
        ),
    ]
}
