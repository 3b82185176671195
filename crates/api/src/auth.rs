//! Who is calling. Until sign-in lands, the one credential is the admin token.

use axum::{extract::FromRequestParts, http::request::Parts};
use sha2::{Digest, Sha256};
use switchboard_gateway::audit::{AdminAction, AuditEntry};
use switchboard_store::{Store, StoreError};

use crate::{AppState, error::ApiError};

/// The setting that holds the admin token's SHA-256.
const ADMIN_TOKEN_SETTING: &str = "admin_token_sha256";

/// Checks bearer tokens against the admin token's hash; the token itself is never kept.
#[derive(Clone)]
pub struct AdminAuth {
    hash: [u8; 32],
}

impl std::fmt::Debug for AdminAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdminAuth(<hash>)")
    }
}

/// An admin token from the environment shorter than this is refused at start-up, and one shorter
/// than the second is warned about (the tokens made here have 43).
pub const MIN_ADMIN_TOKEN_CHARS: usize = 16;
pub const GOOD_ADMIN_TOKEN_CHARS: usize = 32;

/// Where the admin token came from.
#[derive(Debug)]
pub enum AdminTokenSource {
    /// `SWITCHBOARD_ADMIN_TOKEN`.
    Environment,
    /// The hash stored at an earlier start.
    Stored,
    /// Made now: shown once to the operator, only its hash stored.
    Created { token: String },
}

impl AdminAuth {
    pub fn from_token(token: &str) -> Self {
        Self {
            hash: Sha256::digest(token.as_bytes()).into(),
        }
    }

    /// The admin token from the environment's value, or the hash in the store, or a new token
    /// whose hash is stored. Replicas starting together agree on one token.
    pub async fn load_or_create(
        from_env: Option<&str>,
        store: &Store,
    ) -> Result<(Self, AdminTokenSource), StoreError> {
        if let Some(token) = from_env.filter(|token| !token.is_empty()) {
            return Ok((Self::from_token(token), AdminTokenSource::Environment));
        }
        if let Some(stored) = store.setting(ADMIN_TOKEN_SETTING).await? {
            return Self::from_stored(&stored).map(|auth| (auth, AdminTokenSource::Stored));
        }
        let token = new_token();
        let auth = Self::from_token(&token);
        if store
            .set_setting_once(ADMIN_TOKEN_SETTING, &hex::encode(auth.hash))
            .await?
        {
            return Ok((auth, AdminTokenSource::Created { token }));
        }
        // Another replica stored one first.
        let stored = store
            .setting(ADMIN_TOKEN_SETTING)
            .await?
            .unwrap_or_default();
        Self::from_stored(&stored).map(|auth| (auth, AdminTokenSource::Stored))
    }

    fn from_stored(text: &str) -> Result<Self, StoreError> {
        let hash = hex::decode(text.trim())
            .ok()
            .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
            .ok_or_else(|| StoreError::Corrupt("the stored admin token hash".into()))?;
        Ok(Self { hash })
    }

    fn verify(&self, token: &str) -> bool {
        // Comparing digests: timing reveals nothing about the token itself.
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        digest == self.hash
    }
}

/// 256 random bits from the OS (UUID v4 draws on `getrandom`), as `sb_` and hex.
fn new_token() -> String {
    let a = uuid::Uuid::new_v4();
    let b = uuid::Uuid::new_v4();
    format!("sb_{}{}", a.simple(), b.simple())
}

pub use switchboard_gateway::policy::Caller;
use switchboard_gateway::policy::{self, Credential, Endpoint, Verdict};

/// Records an admin change that failed; one that succeeded wrote its row with the change.
pub fn audit_failure<T>(state: &AppState, action: &AdminAction, result: &Result<T, ApiError>) {
    if let Err(error) = result {
        let detail = serde_json::json!({"code": error.code});
        state.gateway.audit().record(action.entry("error", detail));
    }
}

fn user_agent(parts: &Parts) -> String {
    parts
        .headers
        .get(axum::http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .chars()
        .take(200)
        .collect()
}

/// The REST API's caller, admitted by the policy: a read (`GET`) needs `admin:read`, anything
/// else `admin:write`.
impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let caller = authenticate(parts, state);
        let write = !matches!(
            parts.method,
            axum::http::Method::GET | axum::http::Method::HEAD
        );
        let request = policy::Request {
            caller,
            endpoint: Endpoint::AdminApi { write },
            asked: None,
            arrival: policy::Arrival::Other,
            session: None,
            now: switchboard_auth::secret::now_ms(),
        };
        let decision = state
            .gateway
            .decide(request, state.auth.revocations())
            .await?;
        match decision.verdict {
            Verdict::Allow => {
                audit_break_glass(state, parts, &decision.caller);
                Ok(decision.caller)
            }
            Verdict::Refuse(refusal) => {
                let error = ApiError::from(refusal.error());
                audit_refusal(state, parts, &decision.caller, &error);
                Err(error)
            }
        }
    }
}

/// Who calls, from the request's bearer credential: the admin token, an access token this
/// gateway sealed (opened, not yet judged: that is the policy's), none, or something else.
pub(crate) fn authenticate(parts: &Parts, state: &AppState) -> Caller {
    let client = user_agent(parts);
    let Some(header) = parts.headers.get(axum::http::header::AUTHORIZATION) else {
        return Caller::unidentified(Credential::Anonymous, client);
    };
    let token = header.to_str().ok().and_then(|value| {
        let (scheme, token) = value.split_once(' ')?;
        scheme
            .eq_ignore_ascii_case("bearer")
            .then_some(token.trim())
    });
    let Some(token) = token else {
        return Caller::unidentified(Credential::Invalid, client);
    };
    // Our own credentials are tried first: most callers present one, and it then needs no hash
    // for the admin token's comparison (an access token's some 400 bytes took, under callgrind,
    // as much work to hash as to open). A token that is none of ours is compared last, so an
    // admin token may begin like one of them.
    if let Some(claims) = state.auth.tokens().open(token) {
        return Caller::token(claims, client);
    }
    if token.starts_with(switchboard_gateway::api_keys::API_KEY_PREFIX) {
        let hash = switchboard_auth::secret::hash_credential(token);
        if let Some(live) = state.gateway.access().key(&hash) {
            return Caller::key(
                policy::KeyClaims {
                    key_id: live.key.id.clone(),
                    user_id: live.key.user_id.clone(),
                    username: live.username.clone(),
                    role: switchboard_auth::Role::parse(&live.role)
                        .unwrap_or(switchboard_auth::Role::User),
                    scopes: switchboard_auth::Scopes::parse(&live.key.scopes).unwrap_or_default(),
                    expires_at: live.key.expires_at,
                },
                client,
            );
        }
    }
    if state.admin.verify(token) {
        return Caller::admin(client);
    }
    Caller::unidentified(Credential::Invalid, client)
}

/// Records a use of the admin token, the break-glass credential, when the request writes no row
/// of its own that names it (a tool call's row does).
pub(crate) fn audit_break_glass(state: &AppState, parts: &Parts, caller: &Caller) {
    if caller.credential == Credential::AdminToken {
        let detail = serde_json::json!({"credential": "admin token"});
        audit_access(state, parts, caller, "ok", detail);
    }
}

/// Access decisions are audited: a refused request is recorded with why (never the credential).
pub(crate) fn audit_refusal(state: &AppState, parts: &Parts, caller: &Caller, error: &ApiError) {
    let detail = serde_json::json!({"code": error.code, "reason": error.message});
    audit_access(state, parts, caller, "denied", detail);
}

/// An `access` row: who asked for which method and path, and what came of it.
fn audit_access(
    state: &AppState,
    parts: &Parts,
    caller: &Caller,
    outcome: &'static str,
    detail: serde_json::Value,
) {
    state.gateway.audit().record(AuditEntry {
        actor: caller.actor.clone().into(),
        client: caller.client.clone(),
        kind: "access",
        action: format!("{} {}", parts.method, parts.uri.path()).into(),
        outcome,
        detail,
        ..AuditEntry::default()
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn token_is_created_once_and_stored_hashed() {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}", dir.path().join("db").display());
        let store = Store::open(&url).await.expect("store");
        let (auth, source) = AdminAuth::load_or_create(None, &store)
            .await
            .expect("created");
        let AdminTokenSource::Created { token } = source else {
            panic!("a new token expected");
        };
        assert!(auth.verify(&token));
        let stored = store
            .setting(ADMIN_TOKEN_SETTING)
            .await
            .expect("read")
            .expect("stored");
        assert!(!stored.contains(&token));

        let (again, source) = AdminAuth::load_or_create(None, &store)
            .await
            .expect("loaded");
        assert!(matches!(source, AdminTokenSource::Stored));
        assert!(again.verify(&token));
        assert!(!again.verify("wrong"));

        let (from_env, source) = AdminAuth::load_or_create(Some("env-token"), &store)
            .await
            .expect("env");
        assert!(matches!(source, AdminTokenSource::Environment));
        assert!(from_env.verify("env-token"));
    }
}
