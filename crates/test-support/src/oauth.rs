//! A browser played over plain HTTP against `switchboard serve`'s sign-in (cookies kept,
//! redirects read, not followed), and the OAuth 2.1 steps a client takes: registration, an
//! authorization request approved on the consent screen, and the code redeemed for tokens.
//! Shared by the sign-in tests and the benchmark's signed-in user.

use std::collections::HashMap;

use serde_json::{Value, json};

use crate::Switchboard;

/// A browser as far as these tests need one: it keeps cookies and reads redirects.
#[derive(Debug)]
pub struct Browser {
    pub http: reqwest::Client,
    base: String,
    cookies: HashMap<String, String>,
}

/// A page or redirect the browser got.
#[derive(Debug)]
pub struct Got {
    pub status: u16,
    pub location: Option<String>,
    pub body: String,
    pub headers: reqwest::header::HeaderMap,
}

impl Browser {
    pub fn new(server: &Switchboard) -> Self {
        Self {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client"),
            base: server.base_url.clone(),
            cookies: HashMap::new(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        if path.starts_with("http") {
            path.to_string()
        } else {
            format!("{}{path}", self.base)
        }
    }

    pub async fn send(&mut self, request: reqwest::RequestBuilder) -> Got {
        let cookie: Vec<String> = self
            .cookies
            .iter()
            .map(|(name, value)| format!("{name}={value}"))
            .collect();
        let response = request
            .header("cookie", cookie.join("; "))
            .send()
            .await
            .expect("answers");
        for set in response.headers().get_all("set-cookie") {
            let text = set.to_str().expect("ascii");
            let pair = text.split(';').next().unwrap_or_default();
            if let Some((name, value)) = pair.split_once('=') {
                if value.is_empty() {
                    self.cookies.remove(name);
                } else {
                    self.cookies.insert(name.to_string(), value.to_string());
                }
            }
        }
        Got {
            status: response.status().as_u16(),
            location: response
                .headers()
                .get("location")
                .and_then(|l| l.to_str().ok())
                .map(str::to_string),
            headers: response.headers().clone(),
            body: response.text().await.unwrap_or_default(),
        }
    }

    pub async fn get(&mut self, path: &str) -> Got {
        let request = self.http.get(self.url(path));
        self.send(request).await
    }

    pub async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Got {
        let request = with_form(self.http.post(self.url(path)), form);
        self.send(request).await
    }

    pub fn csrf(&self) -> String {
        self.cookies.get("sb_csrf").cloned().unwrap_or_default()
    }

    pub async fn sign_in(&mut self, username: &str, password: &str) -> Got {
        self.get("/login").await;
        let csrf = self.csrf();
        self.post(
            "/login",
            &[
                ("username", username),
                ("password", password),
                ("csrf", &csrf),
                ("next", "/account/clients"),
            ],
        )
        .await
    }

    /// Runs an authorization request to its redirect, approving the consent screen if shown.
    pub async fn authorize(&mut self, query: &str) -> String {
        let got = self.get(&format!("/oauth/authorize?{query}")).await;
        if let Some(location) = got.location {
            return location;
        }
        assert_eq!(got.status, 200, "{}", got.body);
        assert!(got.body.contains("value=\"approve\""), "{}", got.body);
        let csrf = self.csrf();
        let got = self
            .post(
                "/oauth/authorize",
                &[("csrf", &csrf), ("request", query), ("decision", "approve")],
            )
            .await;
        got.location
            .unwrap_or_else(|| panic!("no redirect: {}", got.body))
    }
}

/// `request` with `pairs` as its form body (reqwest's own `form` is a feature the workspace
/// leaves out).
pub fn with_form(
    request: reqwest::RequestBuilder,
    pairs: &[(&str, &str)],
) -> reqwest::RequestBuilder {
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish();
    request
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
}

/// A PKCE pair (RFC 7636's appendix B example).
pub const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
pub const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
pub const REDIRECT: &str = "http://127.0.0.1:5555/callback";

/// Registers a public client (RFC 7591) and returns its id.
pub async fn register_client(server: &Switchboard) -> String {
    let registered: Value = crate::http_client()
        .post(server.url("/oauth/register"))
        .json(&json!({
            "client_name": "Refusal tester",
            "redirect_uris": ["http://127.0.0.1/callback"],
            "token_endpoint_auth_method": "none",
            "grant_types": ["authorization_code", "refresh_token"],
        }))
        .send()
        .await
        .expect("answers")
        .json()
        .await
        .expect("json");
    registered["client_id"]
        .as_str()
        .unwrap_or_else(|| panic!("{registered}"))
        .to_string()
}

pub fn authorize_query(
    server: &Switchboard,
    client_id: &str,
    resource: &str,
    scope: &str,
) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .append_pair("response_type", "code")
        .append_pair("client_id", client_id)
        .append_pair("redirect_uri", REDIRECT)
        .append_pair("scope", scope)
        .append_pair("state", "xyz")
        .append_pair("code_challenge", CHALLENGE)
        .append_pair("code_challenge_method", "S256")
        .append_pair("resource", &server.url(resource))
        .finish()
}

pub fn query_value(url: &str, key: &str) -> Option<String> {
    url::Url::parse(url)
        .ok()?
        .query_pairs()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
}

/// Posts a form to the token endpoint.
pub async fn token_request(server: &Switchboard, form: &[(&str, &str)]) -> (u16, Value) {
    let response = with_form(crate::http_client().post(server.url("/oauth/token")), form)
        .send()
        .await
        .expect("answers");
    let status = response.status().as_u16();
    assert_eq!(
        response
            .headers()
            .get("cache-control")
            .and_then(|v| v.to_str().ok()),
        Some("no-store")
    );
    (status, response.json().await.expect("json"))
}

pub async fn redeem(server: &Switchboard, client_id: &str, code: &str) -> (u16, Value) {
    token_request(
        server,
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
            ("client_id", client_id),
        ],
    )
    .await
}

/// A signed-in user's code for `resource`, and the tokens it is redeemed for.
pub async fn tokens_for(
    server: &Switchboard,
    browser: &mut Browser,
    client_id: &str,
    resource: &str,
    scope: &str,
) -> Value {
    let query = authorize_query(server, client_id, resource, scope);
    let redirect = browser.authorize(&query).await;
    let code = query_value(&redirect, "code").unwrap_or_else(|| panic!("{redirect}"));
    let (status, tokens) = redeem(server, client_id, &code).await;
    assert_eq!(status, 200, "{tokens}");
    tokens
}
