//! The authorization request: checked (which errors are shown as a page and which are sent back
//! to the client), what the user may be given and has approved, and the redirect that takes the
//! client its code or its error.

use switchboard_store::{CodeRow, StoreError, UserRow};

use super::{AuthServer, millis};
use crate::{
    Client, Resource, Role, Scopes,
    secret::{hash_credential, now_ms, random_credential},
};

/// The parameters of `/oauth/authorize`.
#[derive(Debug, Clone, Default, serde::Deserialize, serde::Serialize)]
pub struct AuthorizeParams {
    #[serde(default)]
    pub response_type: String,
    #[serde(default)]
    pub client_id: String,
    pub redirect_uri: Option<String>,
    pub scope: Option<String>,
    pub state: Option<String>,
    #[serde(default)]
    pub code_challenge: String,
    pub code_challenge_method: Option<String>,
    pub resource: Option<String>,
    pub prompt: Option<String>,
}

/// A valid authorization request.
#[derive(Debug, Clone)]
pub struct AuthorizeRequest {
    pub client: Client,
    pub redirect_uri: String,
    /// The scopes asked for, within the resource's.
    pub scopes: Scopes,
    pub state: Option<String>,
    pub challenge: String,
    pub resource: Resource,
    /// The resource's canonical URI: the token's audience.
    pub resource_uri: String,
    /// `prompt=consent`.
    pub force_consent: bool,
}

/// Why an authorization request cannot go on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthorizeError {
    /// Shown to the user as a page, never redirected: the client, its redirect URI or the
    /// resource cannot be trusted.
    Page(String),
    /// Sent back to the client's redirect URI.
    Redirect(String),
}

impl AuthServer {
    /// Checks an authorization request (see [`AuthorizeError`] for which errors redirect).
    pub async fn check_authorize(
        &self,
        params: &AuthorizeParams,
    ) -> Result<AuthorizeRequest, AuthorizeError> {
        if params.client_id.is_empty() {
            return Err(AuthorizeError::Page("The request names no client.".into()));
        }
        let client = self
            .client(&params.client_id)
            .await
            .map_err(|error| AuthorizeError::Page(error.to_string()))?;
        let redirect_uri = match &params.redirect_uri {
            Some(uri) => uri.clone(),
            None if client.redirect_uris.len() == 1 => client.redirect_uris[0].clone(),
            None => {
                return Err(AuthorizeError::Page(
                    "The request names no redirect URI.".into(),
                ));
            }
        };
        if !client.allows_redirect(&redirect_uri) {
            return Err(AuthorizeError::Page(
                "The redirect URI is not one this client registered.".into(),
            ));
        }
        let resource_uri = params.resource.clone().unwrap_or_default();
        let Some(resource) = Resource::of_uri(&resource_uri, self.issuer()) else {
            return Err(AuthorizeError::Page(if resource_uri.is_empty() {
                "The request names no resource: the client must say which endpoint it wants \
                 to use (RFC 8707)."
                    .into()
            } else {
                "The resource is not an endpoint of this gateway.".into()
            }));
        };
        let redirect = |error: &str, description: &str| {
            AuthorizeError::Redirect(self.redirect_with(
                &redirect_uri,
                &[("error", error), ("error_description", description)],
                params.state.as_deref(),
            ))
        };
        if params.response_type != "code" {
            return Err(redirect(
                "unsupported_response_type",
                "only the authorization code flow (response_type=code) is supported",
            ));
        }
        if params.code_challenge.is_empty()
            || params.code_challenge_method.as_deref() != Some("S256")
        {
            return Err(redirect(
                "invalid_request",
                "PKCE is required: send code_challenge with code_challenge_method=S256",
            ));
        }
        let asked = match &params.scope {
            Some(scope) => Scopes::parse(scope)
                .map_err(|error| redirect("invalid_scope", &error.to_string()))?,
            None => resource.scopes(),
        };
        let scopes = asked.intersect(resource.scopes());
        if scopes.is_empty() {
            return Err(redirect(
                "invalid_scope",
                &format!("this resource's scopes are: {}", resource.scopes()),
            ));
        }
        Ok(AuthorizeRequest {
            resource_uri: resource.uri(self.issuer()),
            client,
            redirect_uri,
            scopes,
            state: params.state.clone(),
            challenge: params.code_challenge.clone(),
            resource,
            force_consent: params
                .prompt
                .as_deref()
                .is_some_and(|prompt| prompt.split(' ').any(|word| word == "consent")),
        })
    }

    /// The scopes `user` can be given of those asked: admin scopes only for admins.
    pub fn grantable(&self, user: &UserRow, asked: Scopes) -> Scopes {
        if Role::of(user) == Role::Admin {
            asked
        } else {
            asked.without_admin()
        }
    }

    /// Whether the consent screen must be shown: `prompt=consent`, or the user has not
    /// approved these scopes for this client and resource (or revoked the client since).
    pub async fn needs_consent(
        &self,
        user: &UserRow,
        request: &AuthorizeRequest,
    ) -> Result<bool, StoreError> {
        if request.force_consent {
            return Ok(true);
        }
        let approved = self
            .0
            .store
            .consent(&user.id, &request.client.id, &request.resource_uri)
            .await?;
        let wanted = self.grantable(user, request.scopes);
        Ok(approved
            .and_then(|scopes| Scopes::parse(&scopes).ok())
            .is_none_or(|approved| !approved.covers(wanted)))
    }

    /// The user approved: remembers it, and gives the URL that takes the client its code.
    pub async fn approve(
        &self,
        user: &UserRow,
        request: &AuthorizeRequest,
    ) -> Result<String, StoreError> {
        let granted = self.grantable(user, request.scopes);
        if granted.is_empty() {
            return Ok(self.redirect_with(
                &request.redirect_uri,
                &[
                    ("error", "access_denied"),
                    (
                        "error_description",
                        "the scopes asked for are for admins only",
                    ),
                ],
                request.state.as_deref(),
            ));
        }
        let now = now_ms();
        let approved = self
            .0
            .store
            .consent(&user.id, &request.client.id, &request.resource_uri)
            .await?
            .and_then(|scopes| Scopes::parse(&scopes).ok())
            .unwrap_or_default();
        self.0
            .store
            .put_consent(
                &user.id,
                &request.client.id,
                &request.resource_uri,
                &approved.union(granted).to_string(),
                now,
            )
            .await?;
        let code = random_credential("sbc_");
        self.0
            .store
            .insert_code(&CodeRow {
                hash: hash_credential(&code),
                client_id: request.client.id.clone(),
                user_id: user.id.clone(),
                redirect_uri: request.redirect_uri.clone(),
                resource: request.resource_uri.clone(),
                scopes: granted.to_string(),
                challenge: request.challenge.clone(),
                expires_at: now + millis(self.0.settings.code_ttl),
            })
            .await?;
        Ok(self.redirect_with(
            &request.redirect_uri,
            &[("code", &code)],
            request.state.as_deref(),
        ))
    }

    /// The user denied: the URL that tells the client so.
    pub fn deny(&self, request: &AuthorizeRequest) -> String {
        self.redirect_with(
            &request.redirect_uri,
            &[
                ("error", "access_denied"),
                ("error_description", "the user denied the request"),
            ],
            request.state.as_deref(),
        )
    }

    /// `uri` with `pairs`, the state and the issuer (RFC 9207) added to its query.
    fn redirect_with(&self, uri: &str, pairs: &[(&str, &str)], state: Option<&str>) -> String {
        let Ok(mut url) = url::Url::parse(uri) else {
            return uri.to_string();
        };
        {
            let mut query = url.query_pairs_mut();
            for (key, value) in pairs {
                query.append_pair(key, value);
            }
            if let Some(state) = state {
                query.append_pair("state", state);
            }
            query.append_pair("iss", self.issuer());
        }
        url.to_string()
    }
}
