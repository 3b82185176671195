//! The OAuth 2.1 authorization server: its settings and state, which clients it knows, the
//! clients a user authorized, and revocation by token family. The authorization request is
//! `authorize.rs`'s, the token endpoint `token_endpoint.rs`'s. HTTP is the API crate's; these take
//! parsed parameters and give answers or [`OAuthError`]s.

use std::{sync::Arc, time::Duration};

use switchboard_store::{SecretBox, Store, StoreError};

use crate::{
    AccessTokens, Client, MetadataDocuments, OAuthError, Revocations, Scopes,
    metadata_document::{DocumentError, is_document_url},
    secret::now_ms,
};

mod authorize;
mod token_endpoint;

pub use authorize::{AuthorizeError, AuthorizeParams, AuthorizeRequest};
pub use token_endpoint::{TokenParams, TokenResponse};

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
