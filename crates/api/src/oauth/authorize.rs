//! `/oauth/authorize`: the request is checked, the user signed in, the consent screen shown when
//! it must be, and the client sent its code (or its error) with `state` and `iss`.

use axum::{
    Form,
    extract::{RawQuery, State},
    http::StatusCode,
    response::{IntoResponse, Redirect, Response},
};
use axum_extra::extract::cookie::CookieJar;
use switchboard_auth::{AuthorizeError, AuthorizeParams, AuthorizeRequest, ClientKind, Resource};
use switchboard_store::UserRow;

use super::{
    browser::{csrf, csrf_ok, error_page, login_url, page, signed_in, stale_form},
    pages::ConsentPage,
};
use crate::AppState;

const BAD_REQUEST_HEADING: &str = "This authorization request cannot be used";

/// The answer refusing a request: a page when the client or its redirect cannot be trusted
/// (or the parameters cannot be read), else a redirect to the client with the error.
fn refused(jar: CookieJar, error: AuthorizeError) -> Response {
    match error {
        AuthorizeError::Page(message) => {
            error_page(StatusCode::BAD_REQUEST, jar, BAD_REQUEST_HEADING, &message)
        }
        AuthorizeError::Redirect(url) => Redirect::to(&url).into_response(),
    }
}

/// The request's parameters read and checked.
async fn checked(state: &AppState, query: &str) -> Result<AuthorizeRequest, AuthorizeError> {
    let params: AuthorizeParams = serde_urlencoded::from_str(query)
        .map_err(|_| AuthorizeError::Page("Its parameters cannot be read.".into()))?;
    state.auth.check_authorize(&params).await
}

pub(super) async fn start(
    State(state): State<AppState>,
    jar: CookieJar,
    RawQuery(query): RawQuery,
) -> Response {
    let query = query.unwrap_or_default();
    let here = format!("/oauth/authorize?{query}");
    let request = match checked(&state, &query).await {
        Ok(request) => request,
        Err(error) => return refused(jar, error),
    };
    let Some(user) = signed_in(&state, &jar).await else {
        return Redirect::to(&login_url(&here)).into_response();
    };
    match state.auth.needs_consent(&user, &request).await {
        Ok(true) => consent_page(&state, jar, &user, &request, &query, here).await,
        Ok(false) => finish(&state, jar, &user, &request, Consent::Remembered).await,
        Err(error) => failed(jar, &error),
    }
}

#[derive(serde::Deserialize)]
pub(super) struct Decision {
    #[serde(default)]
    csrf: String,
    /// The authorization request's query, as the consent page carried it.
    #[serde(default)]
    request: String,
    #[serde(default)]
    decision: String,
}

/// The consent form's answer.
pub(super) async fn decide(
    State(state): State<AppState>,
    jar: CookieJar,
    Form(form): Form<Decision>,
) -> Response {
    if !csrf_ok(&jar, &form.csrf) {
        return stale_form(jar, "Start again from your client.");
    }
    let here = format!("/oauth/authorize?{}", form.request);
    let Some(user) = signed_in(&state, &jar).await else {
        return Redirect::to(&login_url(&here)).into_response();
    };
    let request = match checked(&state, &form.request).await {
        Ok(request) => request,
        Err(error) => return refused(jar, error),
    };
    match form.decision.as_str() {
        "approve" => finish(&state, jar, &user, &request, Consent::Approved).await,
        "deny" => finish(&state, jar, &user, &request, Consent::Denied).await,
        _ => error_page(
            StatusCode::BAD_REQUEST,
            jar,
            BAD_REQUEST_HEADING,
            "Choose Approve or Deny.",
        ),
    }
}

/// How a user's consent was given, as the audit log names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Consent {
    /// Approved earlier for the same client, resource and scopes: no screen was shown.
    Remembered,
    Approved,
    Denied,
}

/// Sends the client its code, or `access_denied`.
async fn finish(
    state: &AppState,
    jar: CookieJar,
    user: &UserRow,
    request: &AuthorizeRequest,
    consent: Consent,
) -> Response {
    let detail = serde_json::json!({
        "clientId": request.client.id,
        "resource": request.resource_uri,
        "scopes": request.scopes.to_string(),
    });
    let action = match consent {
        Consent::Remembered => "consent.remembered",
        Consent::Approved => "consent.approve",
        Consent::Denied => {
            super::audit(state, &user.username, "consent.deny", "ok", detail);
            return (jar, Redirect::to(&state.auth.deny(request))).into_response();
        }
    };
    super::audit(state, &user.username, action, "ok", detail);
    match state.auth.approve(user, request).await {
        Ok(url) => (jar, Redirect::to(&url)).into_response(),
        Err(error) => failed(jar, &error),
    }
}

fn failed(jar: CookieJar, error: &switchboard_store::StoreError) -> Response {
    tracing::error!(%error, "an authorization could not be completed");
    error_page(
        StatusCode::INTERNAL_SERVER_ERROR,
        jar,
        "Something went wrong",
        "The gateway could not complete this authorization; try again.",
    )
}

async fn consent_page(
    state: &AppState,
    jar: CookieJar,
    user: &UserRow,
    request: &AuthorizeRequest,
    query: &str,
    here: String,
) -> Response {
    let (jar, csrf) = csrf(state, jar);
    let granted = state.auth.grantable(user, request.scopes);
    let client_origin = match &request.client.kind {
        ClientKind::MetadataDocument { host } => {
            format!("Identified by its metadata document at {host}")
        }
        ClientKind::Registered => {
            "Registered itself with this gateway: its name is its own claim".to_string()
        }
    };
    let redirect_host = url::Url::parse(&request.redirect_uri)
        .ok()
        .map(|url| match (url.host_str(), url.port()) {
            (Some(host), Some(port)) => format!("{host}:{port}"),
            (Some(host), None) => host.to_string(),
            (None, _) => format!("the app that handles {}:", url.scheme()),
        })
        .unwrap_or_default();
    let withheld = request
        .scopes
        .iter()
        .filter(|scope| !granted.contains(*scope))
        .map(|scope| scope.words())
        .collect();
    let html = ConsentPage {
        signed_in: Some(&user.username),
        csrf: &csrf,
        user: &user.username,
        client_name: &request.client.name,
        client_origin,
        redirect_host,
        only_loopback: request.client.only_loopback(),
        resource: describe(state, &request.resource).await,
        scopes: granted.iter().map(|scope| scope.words()).collect(),
        withheld,
        request: query,
        here,
    }
    .render();
    page(StatusCode::OK, jar, html)
}

/// A resource in words: "the GitHub server", "all the servers you can use".
async fn describe(state: &AppState, resource: &Resource) -> String {
    match resource {
        Resource::Aggregate => "all the servers you can use".into(),
        Resource::Server(name) => match state.gateway.store().server(name).await {
            Ok(Some(server)) => format!("the {} server", server.name),
            _ => format!("the server “{name}”"),
        },
        Resource::Admin => "the gateway's admin tools".into(),
        Resource::User => "your app catalog and access requests".into(),
        Resource::AdminApi => "the gateway's admin API".into(),
    }
}
