//! The token endpoint's grants (the authorization code and the refresh token, with rotation and
//! reuse detection), the client's authentication there, and revocation (RFC 7009).

use switchboard_store::{FamilyRow, Redemption, RefreshRow, Rotation, UserRow};

use super::{AuthServer, ClientError, millis};
use crate::{
    Claims, Client, OAuthError, Role, Scopes,
    secret::{constant_time_eq, hash_credential, now_ms, pkce_matches, random_credential},
};

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

impl AuthServer {
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
        if family.revoked_at.is_some() {
            return Err(OAuthError::invalid_grant("the refresh token is not valid"));
        }
        let now = now_ms();
        let next = random_credential("sbrt_");
        match store
            .rotate_refresh(&hash, now, &self.refresh_row(&next, &family.id, now))
            .await
            .map_err(OAuthError::server)?
        {
            Rotation::Rotated => {}
            Rotation::Reused => {
                // A rotated token presented again has leaked, or its holder is confused: either
                // way the family ends (OAuth 2.1 §4.3.1).
                self.revoke_families(std::slice::from_ref(&family.id))
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
}
