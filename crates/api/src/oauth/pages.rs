//! The sign-in pages' templates (askama: checked at compile time, HTML-escaped by default) and
//! their stylesheet.

use askama::Template;
use axum::{http::header, response::IntoResponse};
use switchboard_auth::AuthorizedClient;

/// Renders a template; a template of strings cannot fail, but a failure still shows a page.
fn render(template: &impl Template) -> String {
    template.render().unwrap_or_else(|error| {
        tracing::error!(%error, "a page did not render");
        "<!doctype html><title>Error</title><p>This page could not be shown.</p>".into()
    })
}

#[derive(Template)]
#[template(path = "login.html")]
pub(super) struct LoginPage<'a> {
    signed_in: Option<&'a str>,
    csrf: &'a str,
    next: &'a str,
    username: &'a str,
    error: Option<&'a str>,
    /// The external OpenID Connect provider's name, when one is configured.
    provider: Option<&'a str>,
}

impl<'a> LoginPage<'a> {
    pub(super) fn new(
        csrf: &'a str,
        next: &'a str,
        username: &'a str,
        error: Option<&'a str>,
    ) -> Self {
        Self {
            signed_in: None,
            csrf,
            next,
            username,
            error,
            provider: None,
        }
    }

    pub(super) fn with_provider(self, provider: Option<&'a str>) -> Self {
        Self { provider, ..self }
    }

    pub(super) fn render(&self) -> String {
        render(self)
    }
}

#[derive(Template)]
#[template(path = "consent.html")]
pub(super) struct ConsentPage<'a> {
    pub signed_in: Option<&'a str>,
    pub csrf: &'a str,
    pub user: &'a str,
    pub client_name: &'a str,
    /// Where the client's identity comes from, in words.
    pub client_origin: String,
    pub redirect_host: String,
    pub only_loopback: bool,
    /// The resource in words.
    pub resource: String,
    pub scopes: Vec<&'static str>,
    /// Scopes asked for that this user cannot be given.
    pub withheld: Vec<&'static str>,
    /// The authorization request's query, sent back with the decision.
    pub request: &'a str,
    /// This page's address, to come back to after switching accounts.
    pub here: String,
}

impl ConsentPage<'_> {
    pub(super) fn render(&self) -> String {
        render(self)
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    signed_in: Option<&'a str>,
    csrf: &'a str,
    heading: &'a str,
    message: &'a str,
}

pub(super) fn error(heading: &str, message: &str) -> String {
    render(&ErrorPage {
        signed_in: None,
        csrf: "",
        heading,
        message,
    })
}

#[derive(Template)]
#[template(path = "clients.html")]
pub(super) struct ClientsPage<'a> {
    pub signed_in: Option<&'a str>,
    pub csrf: &'a str,
    pub clients: Vec<AuthorizedClient>,
}

impl ClientsPage<'_> {
    pub(super) fn render(&self) -> String {
        render(self)
    }
}

/// The pages' one stylesheet, built into the binary.
pub(super) async fn stylesheet() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("../../assets/site.css"),
    )
}
