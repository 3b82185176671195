//! The endpoints clients call directly: token (RFC 6749 §3.2), revocation (RFC 7009) and
//! dynamic registration (RFC 7591).

use axum::{
    Json,
    extract::{ConnectInfo, State},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
};
use base64::Engine as _;
use switchboard_auth::{OAuthError, TokenParams};

use crate::{
    AppState,
    error::{Body, no_store, oauth_error},
};

/// The client's id and secret from HTTP Basic authentication (RFC 6749 §2.3.1: each
/// form-urlencoded), if the request carries it.
fn basic_credentials(headers: &HeaderMap) -> Result<Option<(String, String)>, OAuthError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let invalid = || OAuthError::new(401, "invalid_client", "the Basic credentials are malformed");
    let text = value.to_str().map_err(|_| invalid())?;
    let Some((scheme, encoded)) = text.split_once(' ') else {
        return Err(invalid());
    };
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(invalid());
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .map_err(|_| invalid())?;
    let decoded = String::from_utf8(decoded).map_err(|_| invalid())?;
    let (id, secret) = decoded.split_once(':').ok_or_else(invalid)?;
    let unescape = |part: &str| {
        url::form_urlencoded::parse(format!("x={part}").as_bytes())
            .next()
            .map(|(_, value)| value.into_owned())
            .unwrap_or_default()
    };
    Ok(Some((unescape(id), unescape(secret))))
}

/// A token or revocation request's form, and the client's Basic credentials if it sent them.
type ClientRequest = (TokenParams, Option<(String, String)>);

/// What a token or revocation request says, and whether it used Basic authentication (a failure
/// is challenged for it).
fn client_request(headers: &HeaderMap, body: Body) -> (Result<ClientRequest, OAuthError>, bool) {
    let basic = basic_credentials(headers);
    let used_basic = matches!(basic, Ok(Some(_)));
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/x-www-form-urlencoded"));
    let read = || {
        if !is_form {
            return Err(OAuthError::new(
                400,
                "invalid_request",
                "the body must be application/x-www-form-urlencoded",
            ));
        }
        let body =
            body.map_err(|_| OAuthError::new(400, "invalid_request", "the body is too large"))?;
        let params = serde_urlencoded::from_bytes(&body)
            .map_err(|_| OAuthError::new(400, "invalid_request", "the form cannot be read"))?;
        Ok((params, basic?))
    };
    (read(), used_basic)
}

pub(super) async fn token(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let (request, used_basic) = client_request(&headers, body);
    let answer = match request {
        Ok((params, basic)) => state.auth.token(&params, basic).await,
        Err(error) => Err(error),
    };
    match answer {
        Ok(tokens) => (no_store(), Json(tokens)).into_response(),
        Err(error) => oauth_error(&error, used_basic),
    }
}

pub(super) async fn revoke(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let (request, used_basic) = client_request(&headers, body);
    let answer = match request {
        Ok((params, basic)) => state.auth.revoke(&params, basic).await,
        Err(error) => Err(error),
    };
    match answer {
        Ok(()) => (StatusCode::OK, no_store()).into_response(),
        Err(error) => oauth_error(&error, used_basic),
    }
}

pub(super) async fn register(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    body: Body,
) -> Response {
    let metadata = body
        .ok()
        .and_then(|body| serde_json::from_slice::<serde_json::Value>(&body).ok());
    let Some(metadata) = metadata else {
        return oauth_error(
            &OAuthError::new(
                400,
                "invalid_client_metadata",
                "the body must be a JSON object",
            ),
            false,
        );
    };
    match state.auth.register(peer.ip(), &metadata).await {
        Ok(registration) => (StatusCode::CREATED, no_store(), Json(registration)).into_response(),
        Err(error) => oauth_error(&error, false),
    }
}
