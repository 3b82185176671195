//! The browser's side of sign-in: the session cookie, the CSRF double-submit cookie, the pages'
//! security headers, and the sign-in and sign-out forms.

use axum::{
    Form,
    extract::{ConnectInfo, Query, State},
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Redirect, Response},
};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use switchboard_auth::{secret::constant_time_eq, sign_in::LoginError};
use switchboard_store::UserRow;

use super::pages::{self, LoginPage};
use crate::AppState;

const SESSION_COOKIE: &str = "sb_session";
const CSRF_COOKIE: &str = "sb_csrf";
/// The sealed state of a sign-in at the external provider, until the browser comes back.
const EXTERNAL_COOKIE: &str = "sb_oidc";

/// A cookie of the sign-in pages: HttpOnly, SameSite=Lax (sent when a client's redirect brings
/// the user back, not with other sites' requests), Secure when the public URL is https.
fn cookie(state: &AppState, name: &'static str, value: String) -> Cookie<'static> {
    Cookie::build((name, value))
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(state.auth.issuer().starts_with("https://"))
        .path("/")
        .build()
}

/// The signed-in user of the request's session cookie.
pub(crate) async fn signed_in(state: &AppState, jar: &CookieJar) -> Option<UserRow> {
    let value = jar.get(SESSION_COOKIE)?.value().to_string();
    match state.sign_in.session_user(&value).await {
        Ok(user) => user,
        Err(error) => {
            tracing::error!(%error, "cannot read a browser session");
            None
        }
    }
}

/// The CSRF token of this browser: its cookie's value, made now if it has none. A form carries
/// it back in a field, which another site's page cannot read.
pub(crate) fn csrf(state: &AppState, jar: CookieJar) -> (CookieJar, String) {
    if let Some(token) = jar.get(CSRF_COOKIE).map(|c| c.value().to_string()) {
        return (jar, token);
    }
    let token = switchboard_auth::secret::random_credential("");
    (jar.add(cookie(state, CSRF_COOKIE, token.clone())), token)
}

/// Whether a form's CSRF field matches the browser's cookie.
pub(crate) fn csrf_ok(jar: &CookieJar, field: &str) -> bool {
    jar.get(CSRF_COOKIE)
        .is_some_and(|cookie| !field.is_empty() && constant_time_eq(cookie.value(), field))
}

/// An HTML page with the headers every page gets: no script may run (the pages have none), no
/// framing, no caching, no referrer.
pub(crate) fn page(status: StatusCode, jar: CookieJar, html: String) -> Response {
    let mut response = (status, jar, axum::response::Html(html)).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'; \
             base-uri 'none'",
        ),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

/// A page saying what went wrong.
pub(crate) fn error_page(
    status: StatusCode,
    jar: CookieJar,
    heading: &str,
    message: &str,
) -> Response {
    page(status, jar, pages::error(heading, message))
}

/// The answer to a form whose CSRF token does not match the browser's cookie: sent from another
/// site's page, or from a page of an earlier session. `hint` says where to start again.
pub(crate) fn stale_form(jar: CookieJar, hint: &str) -> Response {
    error_page(StatusCode::FORBIDDEN, jar, "This form has expired", hint)
}

/// Where to go after signing in: a path of this gateway only (never `//host`, another site).
fn local_path(next: &str) -> &str {
    let local = next.starts_with('/') && !next.starts_with("//") && !next.starts_with("/\\");
    if local { next } else { "/console" }
}

/// The sign-in page's address that comes back to `next`.
pub(crate) fn login_url(next: &str) -> String {
    let query: String = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("next", next)
        .finish();
    format!("/login?{query}")
}

#[derive(serde::Deserialize)]
pub(super) struct Next {
    #[serde(default)]
    next: String,
}

pub(super) async fn login_page(
    State(state): State<AppState>,
    jar: CookieJar,
    Query(Next { next }): Query<Next>,
) -> Response {
    if signed_in(&state, &jar).await.is_some() {
        return Redirect::to(local_path(&next)).into_response();
    }
    let (jar, csrf) = csrf(&state, jar);
    let html = LoginPage::new(&csrf, local_path(&next), "", None)
        .with_provider(state.external.as_ref().map(|p| p.name()))
        .render();
    page(StatusCode::OK, jar, html)
}

#[derive(serde::Deserialize)]
pub(super) struct LoginForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    next: String,
}

pub(super) async fn login(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    jar: CookieJar,
    Form(form): Form<LoginForm>,
) -> Response {
    let next = local_path(&form.next).to_string();
    if !csrf_ok(&jar, &form.csrf) {
        return stale_form(jar, "Open the sign-in page again.");
    }
    match state
        .sign_in
        .login(&form.username, &form.password, peer.ip())
        .await
    {
        Ok(user) => {
            super::audit(&state, &user.username, "login", "ok", serde_json::json!({}));
            signed_in_as(&state, jar, &user, &next).await
        }
        Err(error) => {
            super::audit(
                &state,
                form.username.trim(),
                "login",
                "denied",
                serde_json::json!({"reason": error.to_string()}),
            );
            let status = match error {
                LoginError::Invalid => StatusCode::UNAUTHORIZED,
                LoginError::TooMany => StatusCode::TOO_MANY_REQUESTS,
                LoginError::Store => StatusCode::INTERNAL_SERVER_ERROR,
            };
            let (jar, csrf) = super::browser::csrf(&state, jar);
            let message = error.to_string();
            let html = LoginPage::new(&csrf, &next, &form.username, Some(&message))
                .with_provider(state.external.as_ref().map(|p| p.name()))
                .render();
            page(status, jar, html)
        }
    }
}

/// Opens a browser session for `user` and goes on to `next`.
async fn signed_in_as(state: &AppState, jar: CookieJar, user: &UserRow, next: &str) -> Response {
    match state.sign_in.start_session(&user.id).await {
        Ok(session) => {
            let jar = jar.add(cookie(state, SESSION_COOKIE, session));
            (jar, Redirect::to(local_path(next))).into_response()
        }
        Err(error) => {
            tracing::error!(%error, "cannot open a browser session");
            error_page(
                StatusCode::INTERNAL_SERVER_ERROR,
                jar,
                "Sign-in failed",
                "The gateway could not sign you in; try again.",
            )
        }
    }
}

/// Sends the browser to the organization's provider, with the sealed state in a cookie.
pub(super) async fn external_start(
    State(state): State<AppState>,
    jar: CookieJar,
    Query(Next { next }): Query<Next>,
) -> Response {
    let Some(provider) = &state.external else {
        return error_page(
            StatusCode::NOT_FOUND,
            jar,
            "No sign-in provider",
            "This gateway signs users in with its own accounts only.",
        );
    };
    match provider.start(local_path(&next)).await {
        Ok((url, pending)) => {
            let jar = jar.add(cookie(&state, EXTERNAL_COOKIE, pending));
            (jar, Redirect::to(&url)).into_response()
        }
        Err(error) => error_page(
            StatusCode::BAD_GATEWAY,
            jar,
            "Sign-in failed",
            &error.to_string(),
        ),
    }
}

#[derive(serde::Deserialize)]
pub(super) struct ProviderAnswer {
    #[serde(default)]
    code: String,
    #[serde(default)]
    state: String,
    error: Option<String>,
}

/// The provider sends the browser back here: the user is signed in (made on their first visit).
pub(super) async fn external_finish(
    State(state): State<AppState>,
    jar: CookieJar,
    Query(answer): Query<ProviderAnswer>,
) -> Response {
    let failed = |jar: CookieJar, status: StatusCode, message: &str| {
        error_page(status, jar, "Sign-in failed", message)
    };
    let Some(provider) = &state.external else {
        return failed(
            jar,
            StatusCode::NOT_FOUND,
            "No sign-in provider is configured.",
        );
    };
    let pending = jar.get(EXTERNAL_COOKIE).map(|c| c.value().to_string());
    let jar = jar.remove(Cookie::build(EXTERNAL_COOKIE).path("/"));
    if let Some(error) = answer.error {
        let message = format!("The sign-in provider answered: {error}.");
        return failed(jar, StatusCode::FORBIDDEN, &message);
    }
    let Some(pending) = pending else {
        return failed(
            jar,
            StatusCode::BAD_REQUEST,
            "This sign-in did not start here, or took too long; start again.",
        );
    };
    let identity = provider.finish(&pending, &answer.state, &answer.code).await;
    let outcome = match identity {
        Ok((identity, next)) => {
            switchboard_auth::external::external_user(state.gateway.store(), &identity)
                .await
                .map(|(user, groups_changed)| (user, next, groups_changed))
        }
        Err(error) => Err(error),
    };
    match outcome {
        Ok((user, next, groups_changed)) => {
            if groups_changed && let Err(error) = state.gateway.access_changed().await {
                tracing::warn!(%error, "cannot read the grants again after a sign-in");
            }
            super::audit(
                &state,
                &user.username,
                "login.oidc",
                "ok",
                serde_json::json!({}),
            );
            signed_in_as(&state, jar, &user, &next).await
        }
        Err(error) => {
            let reason = error.to_string();
            super::audit(
                &state,
                "",
                "login.oidc",
                "denied",
                serde_json::json!({"reason": reason}),
            );
            failed(jar, StatusCode::FORBIDDEN, &reason)
        }
    }
}

#[derive(serde::Deserialize)]
pub(super) struct LogoutForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    next: String,
}

/// Signs out, and goes to the sign-in page (which comes back to `next`: switching accounts in
/// the middle of an authorization).
pub(super) async fn logout(
    State(state): State<AppState>,
    jar: CookieJar,
    Form(form): Form<LogoutForm>,
) -> Response {
    if !csrf_ok(&jar, &form.csrf) {
        return stale_form(jar, "Sign out from this gateway's own page.");
    }
    if let Some(session) = jar.get(SESSION_COOKIE).map(|c| c.value().to_string())
        && let Err(error) = state.sign_in.end_session(&session).await
    {
        tracing::error!(%error, "cannot end a browser session");
    }
    let jar = jar.remove(Cookie::build(SESSION_COOKIE).path("/"));
    (jar, Redirect::to(&login_url(local_path(&form.next)))).into_response()
}
