//! Sign-in through the organization's OpenID Connect provider (the authorization code flow with
//! PKCE and a nonce, as a confidential client). The provider's ID token, checked by the
//! `openidconnect` crate (signature, issuer, audience, expiry, nonce), says who signed in; the
//! configured claims give the user's id, name, email, groups and role. Users are made on their
//! first sign-in and updated on each.
//!
//! What the browser carries between leaving for the provider and coming back (the state, the
//! nonce, the PKCE verifier and where to go next) is sealed into a cookie, so that any replica can
//! finish a sign-in another one started.

use std::sync::Arc;

use openidconnect::{
    AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce, PkceCodeChallenge,
    PkceCodeVerifier, RedirectUrl, Scope as OidcScope, TokenResponse as _,
    core::{CoreAuthenticationFlow, CoreClient, CoreProviderMetadata},
};
use switchboard_store::{AuditRow, GroupRow, SecretBox, Store, StoreError, UserRow};
use tokio::sync::Mutex;

use crate::{
    Role,
    secret::{from_base64url, now_ms, random_credential},
};

/// How long a sign-in at the provider may take.
const PENDING_TTL_MS: i64 = 10 * 60 * 1000;

/// The provider's settings.
#[derive(Debug, Clone)]
pub struct ExternalSettings {
    /// Shown on the sign-in button: "Sign in with {name}".
    pub name: String,
    pub issuer: String,
    pub client_id: String,
    pub client_secret: String,
    /// Asked for besides `openid`.
    pub scopes: Vec<String>,
    /// The claims that give the user's id, name, email, groups and role.
    pub claims: ClaimNames,
    /// The role claim's value (or one of its values) that makes a user an admin.
    pub admin_value: String,
}

#[derive(Debug, Clone)]
pub struct ClaimNames {
    pub id: String,
    pub name: String,
    pub email: String,
    pub groups: String,
    pub role: String,
}

impl Default for ClaimNames {
    fn default() -> Self {
        Self {
            id: "sub".into(),
            name: "name".into(),
            email: "email".into(),
            groups: "groups".into(),
            role: "role".into(),
        }
    }
}

/// Why a sign-in through the provider failed. Safe to show: it names no secret.
#[derive(Debug, thiserror::Error)]
pub enum ExternalError {
    #[error("the sign-in provider cannot be reached or described itself wrongly")]
    Discovery,
    #[error("the sign-in took too long or did not start here; start again")]
    Pending,
    #[error("the sign-in provider refused: {0}")]
    Refused(String),
    #[error("the sign-in provider's answer could not be verified")]
    Verification,
    #[error("the sign-in provider did not say who signed in (no `{0}` claim)")]
    Claim(String),
    #[error("this account is disabled")]
    Disabled,
    #[error("the user could not be saved")]
    Store(#[from] StoreError),
}

/// Who signed in, as the provider's claims say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalIdentity {
    pub subject: String,
    pub name: String,
    pub email: String,
    pub groups: Vec<String>,
    pub admin: bool,
}

/// The sealed state between the redirect to the provider and the way back.
#[derive(serde::Serialize, serde::Deserialize)]
struct Pending {
    state: String,
    nonce: String,
    verifier: String,
    next: String,
    expires_at: i64,
}

/// The organization's provider; cheap to clone.
#[derive(Debug, Clone)]
pub struct ExternalProvider(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    settings: ExternalSettings,
    /// The gateway's callback URL.
    redirect: RedirectUrl,
    sealer: SecretBox,
    http: reqwest::Client,
    /// The provider's metadata, read once (again after a failure).
    metadata: Mutex<Option<CoreProviderMetadata>>,
}

/// One HTTP exchange for the `openidconnect` crate, through the gateway's own client (which does
/// not follow redirects, as the crate requires).
async fn exchange(
    http: reqwest::Client,
    request: openidconnect::HttpRequest,
) -> Result<openidconnect::HttpResponse, reqwest::Error> {
    let (parts, body) = request.into_parts();
    let response = http
        .request(parts.method, parts.uri.to_string())
        .headers(parts.headers)
        .body(body)
        .send()
        .await?;
    let mut answer = http::Response::builder().status(response.status());
    if let Some(headers) = answer.headers_mut() {
        *headers = response.headers().clone();
    }
    let body = response.bytes().await?.to_vec();
    Ok(answer.body(body).unwrap_or_default())
}

impl ExternalProvider {
    /// `public_url` is the gateway's: the provider sends users back to its
    /// `/login/oidc/callback`.
    pub fn new(
        settings: ExternalSettings,
        public_url: &str,
        secret_key: &SecretBox,
    ) -> Result<Self, String> {
        let redirect = RedirectUrl::new(format!(
            "{}/login/oidc/callback",
            public_url.trim_end_matches('/')
        ))
        .map_err(|error| format!("the callback URL: {error}"))?;
        IssuerUrl::new(settings.issuer.clone())
            .map_err(|error| format!("the OpenID Connect issuer: {error}"))?;
        Ok(Self(Arc::new(Inner {
            settings,
            redirect,
            sealer: secret_key.derive("external sign-in"),
            http: switchboard_mcp::http::shared_http_client(),
            metadata: Mutex::new(None),
        })))
    }

    pub fn name(&self) -> &str {
        &self.0.settings.name
    }

    async fn client(
        &self,
    ) -> Result<
        CoreClient<
            openidconnect::EndpointSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointMaybeSet,
            openidconnect::EndpointMaybeSet,
        >,
        ExternalError,
    > {
        let mut cached = self.0.metadata.lock().await;
        let metadata = match &*cached {
            Some(metadata) => metadata.clone(),
            None => {
                let http = self.0.http.clone();
                let fetch = move |request| exchange(http.clone(), request);
                let issuer = IssuerUrl::new(self.0.settings.issuer.clone())
                    .map_err(|_| ExternalError::Discovery)?;
                let metadata = CoreProviderMetadata::discover_async(issuer, &fetch)
                    .await
                    .map_err(|error| {
                        tracing::warn!(%error, "cannot read the OpenID Connect provider's metadata");
                        ExternalError::Discovery
                    })?;
                *cached = Some(metadata.clone());
                metadata
            }
        };
        Ok(CoreClient::from_provider_metadata(
            metadata,
            ClientId::new(self.0.settings.client_id.clone()),
            Some(ClientSecret::new(self.0.settings.client_secret.clone())),
        )
        .set_redirect_uri(self.0.redirect.clone()))
    }

    /// Where to send the browser, and the sealed cookie value to set, to sign in and come back
    /// to `next`.
    pub async fn start(&self, next: &str) -> Result<(String, String), ExternalError> {
        let client = self.client().await?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut request = client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .set_pkce_challenge(challenge);
        for scope in &self.0.settings.scopes {
            request = request.add_scope(OidcScope::new(scope.clone()));
        }
        let (url, state, nonce) = request.url();
        let pending = Pending {
            state: state.secret().clone(),
            nonce: nonce.secret().clone(),
            verifier: verifier.secret().clone(),
            next: next.to_string(),
            expires_at: now_ms() + PENDING_TTL_MS,
        };
        let sealed = self
            .0
            .sealer
            .seal_bytes(&serde_json::to_vec(&pending).unwrap_or_default());
        Ok((url.to_string(), crate::secret::base64url(&sealed)))
    }

    /// Finishes a sign-in: checks the state against the sealed cookie, redeems the code, verifies
    /// the ID token, and reads who signed in. Returns them and where to go next.
    pub async fn finish(
        &self,
        cookie: &str,
        state: &str,
        code: &str,
    ) -> Result<(ExternalIdentity, String), ExternalError> {
        let pending: Pending = from_base64url(cookie)
            .and_then(|bytes| self.0.sealer.open_bytes(&bytes).ok())
            .and_then(|json| serde_json::from_slice(&json).ok())
            .ok_or(ExternalError::Pending)?;
        if pending.expires_at <= now_ms() || !crate::secret::constant_time_eq(&pending.state, state)
        {
            return Err(ExternalError::Pending);
        }
        let client = self.client().await?;
        let http = self.0.http.clone();
        let fetch = move |request| exchange(http.clone(), request);
        let tokens = client
            .exchange_code(AuthorizationCode::new(code.to_string()))
            .map_err(|_| ExternalError::Discovery)?
            .set_pkce_verifier(PkceCodeVerifier::new(pending.verifier.clone()))
            .request_async(&fetch)
            .await
            .map_err(|error| ExternalError::Refused(error.to_string()))?;
        let id_token = tokens.id_token().ok_or(ExternalError::Verification)?;
        id_token
            .claims(
                &client.id_token_verifier(),
                &Nonce::new(pending.nonce.clone()),
            )
            .map_err(|error| {
                tracing::warn!(%error, "an ID token did not verify");
                ExternalError::Verification
            })?;
        // Verified: its payload is read for the configured claims, whatever their names.
        let payload = id_token
            .to_string()
            .split('.')
            .nth(1)
            .and_then(from_base64url)
            .and_then(|json| serde_json::from_slice::<serde_json::Value>(&json).ok())
            .ok_or(ExternalError::Verification)?;
        Ok((self.identity(&payload)?, pending.next))
    }

    fn identity(&self, claims: &serde_json::Value) -> Result<ExternalIdentity, ExternalError> {
        let names = &self.0.settings.claims;
        let text = |name: &str| {
            claims
                .get(name)
                .and_then(|v| v.as_str())
                .map(str::to_string)
        };
        let list = |name: &str| -> Vec<String> {
            match claims.get(name) {
                Some(serde_json::Value::Array(items)) => items
                    .iter()
                    .filter_map(|item| item.as_str().map(str::to_string))
                    .collect(),
                Some(serde_json::Value::String(one)) => vec![one.clone()],
                _ => Vec::new(),
            }
        };
        let subject = text(&names.id).ok_or_else(|| ExternalError::Claim(names.id.clone()))?;
        Ok(ExternalIdentity {
            name: text(&names.name).unwrap_or_else(|| subject.clone()),
            email: text(&names.email).unwrap_or_default(),
            groups: list(&names.groups),
            admin: list(&names.role)
                .iter()
                .any(|role| *role == self.0.settings.admin_value),
            subject,
        })
    }
}

/// The user of an external identity: made on the first sign-in, and updated (name, email, role,
/// groups) on each. A disabled user stays out. The identity's groups are the user's groups of the
/// same names: made (as `oidc` groups) when missing, and the user leaves the `oidc` groups the
/// identity no longer names. Returns whether the groups changed, so that grants are read again.
pub async fn external_user(
    store: &Store,
    identity: &ExternalIdentity,
) -> Result<(UserRow, bool), ExternalError> {
    let user = external_account(store, identity).await?;
    let changed = sync_groups(store, &user, &identity.groups).await?;
    Ok((user, changed))
}

/// The audit row of a change the sign-in made to `user`'s groups.
fn group_row(user: &UserRow, action: &str, group: &str) -> AuditRow {
    let at = now_ms();
    AuditRow {
        id: format!("{at:013}-{}", uuid::Uuid::new_v4().simple()),
        at,
        actor: user.username.clone().into(),
        client: String::new(),
        kind: "sign_in".into(),
        action: action.to_string().into(),
        server: String::new(),
        tool: String::new(),
        outcome: "ok".into(),
        duration_ms: 0,
        detail: serde_json::json!({"group": group}).to_string(),
    }
}

async fn sync_groups(
    store: &Store,
    user: &UserRow,
    names: &[String],
) -> Result<bool, ExternalError> {
    let mut changed = false;
    let mut wanted = Vec::new();
    for name in names
        .iter()
        .map(|n| n.trim())
        .filter(|n| !n.is_empty())
        .take(100)
    {
        let group = match store.group(name).await? {
            Some(group) => group,
            None => {
                let group = GroupRow {
                    id: random_credential("grp_")[..24].to_string(),
                    name: name.chars().take(64).collect(),
                    description: "From the sign-in provider's groups.".into(),
                    source: "oidc".into(),
                    created_at: now_ms(),
                };
                match store
                    .insert_group(&group, &group_row(user, "group.create", name))
                    .await
                {
                    Ok(()) => group,
                    // Made at the same moment by another sign-in.
                    Err(StoreError::Conflict(_)) => store
                        .group(name)
                        .await?
                        .ok_or(ExternalError::Verification)?,
                    Err(error) => return Err(error.into()),
                }
            }
        };
        wanted.push(group.id);
    }
    let current = store.memberships(&user.id).await?;
    for group in &wanted {
        if !current.contains(group) {
            store
                .set_membership(group, &user.id, true, &group_row(user, "group.join", group))
                .await?;
            changed = true;
        }
    }
    for group in current.iter().filter(|group| !wanted.contains(group)) {
        let from_provider = store
            .group(group)
            .await?
            .is_some_and(|row| row.source == "oidc");
        if from_provider {
            store
                .set_membership(
                    group,
                    &user.id,
                    false,
                    &group_row(user, "group.leave", group),
                )
                .await?;
            changed = true;
        }
    }
    Ok(changed)
}

async fn external_account(
    store: &Store,
    identity: &ExternalIdentity,
) -> Result<UserRow, ExternalError> {
    let username = format!("oidc:{}", identity.subject);
    let role = if identity.admin {
        Role::Admin
    } else {
        Role::User
    };
    let now = now_ms();
    if let Some(mut user) = store.user(&username).await? {
        if user.disabled {
            return Err(ExternalError::Disabled);
        }
        user.name = identity.name.clone();
        user.email = identity.email.clone();
        user.role = role.name().into();
        user.updated_at = now;
        store.update_user(&user).await?;
        return Ok(user);
    }
    let user = UserRow {
        id: random_credential("usr_")[..20].to_string(),
        username,
        name: identity.name.clone(),
        email: identity.email.clone(),
        role: role.name().into(),
        password_hash: None,
        disabled: false,
        created_at: now,
        updated_at: now,
    };
    match store.insert_user(&user).await {
        Ok(()) => Ok(user),
        // Another replica made them at the same moment.
        Err(StoreError::Conflict(_)) => store
            .user(&user.username)
            .await?
            .ok_or(ExternalError::Verification),
        Err(error) => Err(error.into()),
    }
}
