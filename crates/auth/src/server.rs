//! The OAuth 2.1 authorization server's rules: which authorization requests are valid, what a
//! user approved, and the authorization code and refresh token grants. HTTP is the API crate's;
//! this module takes parsed parameters and gives answers or [`OAuthError`]s.

use std::{sync::Arc, time::Duration};

use switchboard_store::{
    CodeRow, FamilyRow, Redemption, RefreshRow, Rotation, SecretBox, Store, StoreError, UserRow,
};

use crate::{
    AccessTokens, Claims, Client, MetadataDocuments, OAuthError, Resource, Revocations, Role,
    Scopes,
    metadata_document::{DocumentError, is_document_url},
    secret::{constant_time_eq, hash_credential, now_ms, pkce_matches, random_credential},
};

/// How often expired sign-in state is pruned.
pub const HOUSEKEEPING_EVERY: Duration = Duration::from_secs(600);

/// The authorization server's settings.
#[derive(Debug, Clone)]
pub struct AuthSettings {
    /// The gateway's externally visible base URL: the issuer, and the base of every resource.
    pub public_url: String,
    pub access_ttl: Duration,
    pub refresh_ttl: Duration,
    pub code_ttl: Duration,
    /// Lets metadata documents be served over http from loopback (development and tests).
    pub allow_loopback_metadata: bool,
    /// Dynamic registrations allowed per client address and hour.
    pub registrations_per_hour: u32,
}

impl AuthSettings {
    pub fn new(public_url: &str) -> Self {
        Self {
            public_url: public_url.trim_end_matches('/').to_string(),
            access_ttl: Duration::from_secs(3600),
            refresh_ttl: Duration::from_secs(30 * 86_400),
            code_ttl: Duration::from_secs(60),
            allow_loopback_metadata: false,
            registrations_per_hour: 20,
        }
    }
}

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

/// A token endpoint's answer.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: u64,
    pub refresh_token: String,
    pub scope: String,
}

/// The parameters of `/oauth/token` and `/oauth/revoke`.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct TokenParams {
    #[serde(default)]
    pub grant_type: String,
    pub code: Option<String>,
    pub redirect_uri: Option<String>,
    pub code_verifier: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    pub refresh_token: Option<String>,
    pub scope: Option<String>,
    pub resource: Option<String>,
    /// `/oauth/revoke`'s token.
    pub token: Option<String>,
}

/// A client the user authorized, as their account page lists it.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthorizedClient {
    pub client_id: String,
    pub client_name: String,
    /// The resources' URIs.
    pub resources: Vec<String>,
    pub scopes: String,
    /// Unix milliseconds of the newest approval.
    pub since: i64,
}

/// The authorization server; cheap to clone.
#[derive(Debug, Clone)]
pub struct AuthServer(Arc<Inner>);

struct Inner {
    store: Store,
    settings: AuthSettings,
    tokens: AccessTokens,
    revocations: Revocations,
    documents: MetadataDocuments,
    registrations: governor::DefaultKeyedRateLimiter<std::net::IpAddr>,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthServer")
            .field("issuer", &self.settings.public_url)
            .finish_non_exhaustive()
    }
}

impl AuthServer {
    pub fn new(store: Store, secret_key: &SecretBox, settings: AuthSettings) -> Self {
        let per_hour = std::num::NonZeroU32::new(settings.registrations_per_hour.max(1))
            .unwrap_or(std::num::NonZeroU32::MIN);
        let quota = governor::Quota::with_period(Duration::from_secs(3600) / per_hour.get())
            .unwrap_or_else(|| governor::Quota::per_hour(per_hour))
            .allow_burst(per_hour);
        Self(Arc::new(Inner {
            tokens: AccessTokens::new(secret_key),
            revocations: Revocations::default(),
            documents: MetadataDocuments::new(settings.allow_loopback_metadata),
            registrations: governor::RateLimiter::keyed(quota),
            store,
            settings,
        }))
    }

    pub fn settings(&self) -> &AuthSettings {
        &self.0.settings
    }

    /// The issuer identifier: the public URL.
    pub fn issuer(&self) -> &str {
        &self.0.settings.public_url
    }

    pub fn tokens(&self) -> &AccessTokens {
        &self.0.tokens
    }

    pub fn revocations(&self) -> &Revocations {
        &self.0.revocations
    }

    /// Starts the background work: the revocation list's reloads, and every
    /// [`HOUSEKEEPING_EVERY`] the store's expired codes, refresh tokens, browser sessions and
    /// revocations pruned, and the registration limiter's idle addresses forgotten.
    pub fn spawn_background(&self) {
        self.0.revocations.spawn_reloader(self.0.store.clone());
        let server = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(HOUSEKEEPING_EVERY);
            loop {
                tick.tick().await;
                if server.0.store.is_closed() {
                    return;
                }
                if let Err(error) = server.0.store.prune_sign_in(now_ms()).await {
                    tracing::warn!(%error, "cannot prune expired sign-in state");
                }
                server.0.registrations.retain_recent();
                server.0.registrations.shrink_to_fit();
            }
        });
    }

    /// The client a `client_id` names: a metadata document, or a registered client.
    pub async fn client(&self, client_id: &str) -> Result<Client, ClientError> {
        if is_document_url(client_id) {
            return self
                .0
                .documents
                .client(client_id)
                .await
                .map_err(ClientError::Document);
        }
        match self.0.store.client(client_id).await {
            Ok(Some(row)) => Ok(Client::registered(row)),
            Ok(None) => Err(ClientError::Unknown),
            Err(error) => {
                tracing::error!(%error, "cannot read a client");
                Err(ClientError::Store)
            }
        }
    }

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

    /// The token endpoint. `basic` is the client's id and secret from HTTP Basic auth.
    pub async fn token(
        &self,
        params: &TokenParams,
        basic: Option<(String, String)>,
    ) -> Result<TokenResponse, OAuthError> {
        let client = self.authenticate_client(params, basic).await?;
        match params.grant_type.as_str() {
            "authorization_code" => self.redeem_code(&client, params).await,
            "refresh_token" => self.refresh(&client, params).await,
            "" => Err(OAuthError::new(
                400,
                "invalid_request",
                "grant_type is required",
            )),
            _ => Err(OAuthError::new(
                400,
                "unsupported_grant_type",
                "the grants are authorization_code and refresh_token",
            )),
        }
    }

    async fn authenticate_client(
        &self,
        params: &TokenParams,
        basic: Option<(String, String)>,
    ) -> Result<Client, OAuthError> {
        let (id, secret) = match basic {
            Some((id, secret)) => (id, Some(secret)),
            None => (
                params.client_id.clone().unwrap_or_default(),
                params.client_secret.clone(),
            ),
        };
        if id.is_empty() {
            return Err(OAuthError::invalid_client("the client is not identified"));
        }
        let client = self.client(&id).await.map_err(|error| match error {
            ClientError::Store => OAuthError::new(500, "server_error", "the store did not answer"),
            error => OAuthError::invalid_client(&error.to_string()),
        })?;
        if let Some(expected) = &client.secret_hash {
            let presented = secret.map(|secret| hash_credential(&secret));
            if !presented.is_some_and(|presented| constant_time_eq(&presented, expected)) {
                return Err(OAuthError::invalid_client("the client secret is not valid"));
            }
        }
        Ok(client)
    }

    async fn redeem_code(
        &self,
        client: &Client,
        params: &TokenParams,
    ) -> Result<TokenResponse, OAuthError> {
        let code = params
            .code
            .as_deref()
            .ok_or_else(|| OAuthError::new(400, "invalid_request", "code is required"))?;
        let now = now_ms();
        let code = match self
            .0
            .store
            .redeem_code(&hash_credential(code), now)
            .await
            .map_err(OAuthError::server)?
        {
            Redemption::Fresh(code) => code,
            Redemption::Reused { family_id } => {
                // RFC 6749 §4.1.2: a code used twice revokes what it gave.
                if let Some(family) = family_id {
                    self.revoke_families(&[family])
                        .await
                        .map_err(OAuthError::server)?;
                }
                return Err(OAuthError::invalid_grant("the code was already used"));
            }
            Redemption::Unknown => {
                return Err(OAuthError::invalid_grant(
                    "the code is not valid or expired",
                ));
            }
        };
        if code.client_id != client.id {
            return Err(OAuthError::invalid_grant(
                "the code was issued to another client",
            ));
        }
        if params.redirect_uri.as_deref() != Some(code.redirect_uri.as_str()) {
            return Err(OAuthError::invalid_grant(
                "redirect_uri is not the one the code was issued for",
            ));
        }
        let verifier = params.code_verifier.as_deref().unwrap_or_default();
        if !pkce_matches(verifier, &code.challenge) {
            return Err(OAuthError::invalid_grant(
                "the PKCE code_verifier does not match",
            ));
        }
        if params
            .resource
            .as_deref()
            .is_some_and(|resource| resource != code.resource)
        {
            return Err(OAuthError::new(
                400,
                "invalid_target",
                "the resource is not the one that was authorized",
            ));
        }
        let user = self.active_user(&code.user_id).await?;
        let family = FamilyRow {
            id: random_credential("fam_"),
            user_id: user.id.clone(),
            client_id: client.id.clone(),
            client_name: client.name.clone(),
            resource: code.resource.clone(),
            scopes: code.scopes.clone(),
            created_at: now,
            revoked_at: None,
        };
        let refresh = random_credential("sbrt_");
        self.0
            .store
            .insert_family(
                &family,
                &self.refresh_row(&refresh, &family.id, now),
                &code.hash,
            )
            .await
            .map_err(OAuthError::server)?;
        let scopes = Scopes::parse(&code.scopes).unwrap_or_default();
        Ok(self.issue(&user, &family, scopes, refresh, now))
    }

    async fn refresh(
        &self,
        client: &Client,
        params: &TokenParams,
    ) -> Result<TokenResponse, OAuthError> {
        let presented = params
            .refresh_token
            .as_deref()
            .ok_or_else(|| OAuthError::new(400, "invalid_request", "refresh_token is required"))?;
        let hash = hash_credential(presented);
        let store = &self.0.store;
        let family_id = store
            .refresh_family(&hash)
            .await
            .map_err(OAuthError::server)?
            .ok_or_else(|| OAuthError::invalid_grant("the refresh token is not valid"))?;
        let family = store
            .family(&family_id)
            .await
            .map_err(OAuthError::server)?
            .ok_or_else(|| OAuthError::invalid_grant("the refresh token is not valid"))?;
        if family.client_id != client.id {
            return Err(OAuthError::invalid_grant(
                "the refresh token was issued to another client",
            ));
        }
        let granted = Scopes::parse(&family.scopes).unwrap_or_default();
        let asked = match &params.scope {
            Some(scope) => Scopes::parse(scope)
                .map_err(|error| OAuthError::new(400, "invalid_scope", error.to_string()))?,
            None => granted,
        };
        if !granted.covers(asked) {
            return Err(OAuthError::new(
                400,
                "invalid_scope",
                "a refresh cannot add scopes the user did not approve",
            ));
        }
        if params
            .resource
            .as_deref()
            .is_some_and(|resource| resource != family.resource)
        {
            return Err(OAuthError::new(
                400,
                "invalid_target",
                "the resource is not the one that was authorized",
            ));
        }
        let now = now_ms();
        let next = random_credential("sbrt_");
        match store
            .rotate_refresh(&hash, now, &self.refresh_row(&next, &family.id, now))
            .await
            .map_err(OAuthError::server)?
        {
            Rotation::Rotated(_) => {}
            Rotation::Reused(family) => {
                // A rotated token presented again has leaked, or its holder is confused: either
                // way the family ends (OAuth 2.1 §4.3.1).
                self.revoke_families(&[family.id])
                    .await
                    .map_err(OAuthError::server)?;
                return Err(OAuthError::invalid_grant(
                    "the refresh token was already used; its tokens are revoked",
                ));
            }
            Rotation::Invalid => {
                return Err(OAuthError::invalid_grant("the refresh token is not valid"));
            }
        }
        let user = self.active_user(&family.user_id).await?;
        Ok(self.issue(&user, &family, self.grantable(&user, asked), next, now))
    }

    /// The user a grant is for, unless they were disabled since.
    async fn active_user(&self, user_id: &str) -> Result<UserRow, OAuthError> {
        match self
            .0
            .store
            .user(user_id)
            .await
            .map_err(OAuthError::server)?
        {
            Some(user) if !user.disabled => Ok(user),
            _ => Err(OAuthError::invalid_grant("the user cannot sign in")),
        }
    }

    fn refresh_row(&self, token: &str, family: &str, now: i64) -> RefreshRow {
        RefreshRow {
            hash: hash_credential(token),
            family_id: family.to_string(),
            expires_at: now + millis(self.0.settings.refresh_ttl),
        }
    }

    fn issue(
        &self,
        user: &UserRow,
        family: &FamilyRow,
        scopes: Scopes,
        refresh_token: String,
        now: i64,
    ) -> TokenResponse {
        let ttl = self.0.settings.access_ttl;
        let claims = Claims {
            family: family.id.clone(),
            user_id: user.id.clone(),
            username: user.username.clone(),
            role: Role::of(user),
            client_id: family.client_id.clone(),
            audience: family.resource.clone(),
            scopes,
            expires_at: now + millis(ttl),
        };
        TokenResponse {
            access_token: self.0.tokens.seal(&claims),
            token_type: "Bearer",
            expires_in: ttl.as_secs(),
            refresh_token,
            scope: scopes.to_string(),
        }
    }

    /// RFC 7009: revokes the family of an access or refresh token the client holds. Unknown
    /// tokens, and those of other clients, are ignored, as the RFC asks.
    pub async fn revoke(
        &self,
        params: &TokenParams,
        basic: Option<(String, String)>,
    ) -> Result<(), OAuthError> {
        let client = self.authenticate_client(params, basic).await?;
        let Some(token) = params.token.as_deref() else {
            return Err(OAuthError::new(400, "invalid_request", "token is required"));
        };
        let family = match self.0.tokens.open(token) {
            Some(claims) => (claims.client_id == client.id).then_some(claims.family),
            None => {
                let family = self
                    .0
                    .store
                    .refresh_family(&hash_credential(token))
                    .await
                    .map_err(OAuthError::server)?;
                match family {
                    Some(id) => self
                        .0
                        .store
                        .family(&id)
                        .await
                        .map_err(OAuthError::server)?
                        .filter(|family| family.client_id == client.id)
                        .map(|family| family.id),
                    None => None,
                }
            }
        };
        if let Some(family) = family {
            self.revoke_families(&[family])
                .await
                .map_err(OAuthError::server)?;
        }
        Ok(())
    }

    /// Revokes families here at once, and for the other replicas through the store.
    pub async fn revoke_families(&self, families: &[String]) -> Result<(), StoreError> {
        revoke_families(&self.0.store, families, self.0.settings.access_ttl).await?;
        self.0.revocations.add(families);
        Ok(())
    }

    /// The clients a user has authorized and not revoked.
    pub async fn authorized_clients(
        &self,
        user_id: &str,
    ) -> Result<Vec<AuthorizedClient>, StoreError> {
        let families = self.0.store.live_families(user_id, None).await?;
        let mut clients: Vec<AuthorizedClient> = Vec::new();
        for family in families {
            let scopes = Scopes::parse(&family.scopes).unwrap_or_default();
            match clients
                .iter_mut()
                .find(|client| client.client_id == family.client_id)
            {
                Some(client) => {
                    if !client.resources.contains(&family.resource) {
                        client.resources.push(family.resource);
                    }
                    let merged = Scopes::parse(&client.scopes)
                        .unwrap_or_default()
                        .union(scopes);
                    client.scopes = merged.to_string();
                }
                None => clients.push(AuthorizedClient {
                    client_id: family.client_id,
                    client_name: family.client_name,
                    resources: vec![family.resource],
                    scopes: scopes.to_string(),
                    since: family.created_at,
                }),
            }
        }
        Ok(clients)
    }

    /// Revokes a client for a user: every token it holds for them dies at once, and the
    /// consent screen shows again next time. False when the user had not authorized it.
    pub async fn revoke_client(&self, user_id: &str, client_id: &str) -> Result<bool, StoreError> {
        let families: Vec<String> = self
            .0
            .store
            .live_families(user_id, Some(client_id))
            .await?
            .into_iter()
            .map(|family| family.id)
            .collect();
        self.0.store.delete_consents(user_id, client_id).await?;
        self.revoke_families(&families).await?;
        Ok(!families.is_empty())
    }

    /// RFC 7591 dynamic registration from `address`.
    pub async fn register(
        &self,
        address: std::net::IpAddr,
        metadata: &serde_json::Value,
    ) -> Result<serde_json::Value, OAuthError> {
        if self.0.registrations.check_key(&address).is_err() {
            return Err(OAuthError::new(
                429,
                "rate_limited",
                "too many registrations from this address; try again later",
            ));
        }
        crate::registration::register(&self.0.store, metadata).await
    }
}

/// Why a `client_id` names no usable client. Safe to show.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    #[error(
        "This client is not known here: it is not registered, and its id is not a metadata document URL."
    )]
    Unknown,
    #[error("{0}")]
    Document(DocumentError),
    #[error("The client could not be looked up; try again.")]
    Store,
}

/// Revokes families in the store: refresh tokens at once, access tokens on every replica at its
/// next reload. For callers without a running server (`switchboard users disable`).
pub async fn revoke_families(
    store: &Store,
    families: &[String],
    access_ttl: Duration,
) -> Result<(), StoreError> {
    if families.is_empty() {
        return Ok(());
    }
    let now = now_ms();
    // Listed a minute past the last access token's expiry, for clocks a little apart.
    let until = now + millis(access_ttl) + 60_000;
    store.revoke_families(families, now, until).await
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}
