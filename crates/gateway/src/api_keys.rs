//! API keys for machine clients: made for a user with scopes never beyond the user's, shown once
//! and kept as a hash, listed, revoked. The live keys are part of the grants in memory
//! (`access`), where the edge finds a presented key by its hash.

use serde::{Deserialize, Serialize};

use crate::{Gateway, GatewayError, access_admin::random_id, audit::AdminAction};

/// What every API key begins with, so that secret scanners find leaked ones.
pub const API_KEY_PREFIX: &str = "sbk_";

/// An API key as listed: never the key itself.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyView {
    pub id: String,
    pub user_id: String,
    pub name: String,
    /// The key's last characters.
    pub hint: String,
    pub scopes: String,
    pub expires_at: Option<i64>,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
}

impl From<&switchboard_store::KeyRow> for KeyView {
    fn from(row: &switchboard_store::KeyRow) -> Self {
        Self {
            id: row.id.clone(),
            user_id: row.user_id.clone(),
            name: row.name.clone(),
            hint: row.hint.clone(),
            scopes: row.scopes.clone(),
            expires_at: row.expires_at,
            created_at: row.created_at,
            revoked_at: row.revoked_at,
        }
    }
}

/// A new key: its owner (for an admin's request), a name, its scopes and an optional expiry.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KeyBody {
    /// The owner's id or username; the caller's own when left out.
    pub user: Option<String>,
    pub name: String,
    /// Space-separated, as OAuth scopes.
    pub scopes: String,
    /// Unix milliseconds.
    pub expires_at: Option<i64>,
}

/// A key just made: shown once.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NewKey {
    #[serde(flatten)]
    pub view: KeyView,
    /// The key, shown this once and stored only as its hash.
    pub key: String,
}

impl Gateway {
    /// Makes an API key for `owner` (a user's id or username). Its scopes are never more than the
    /// owner may hold: admin scopes for admins only.
    pub async fn create_key(
        &self,
        owner: &str,
        body: &KeyBody,
        action: &AdminAction,
    ) -> Result<NewKey, GatewayError> {
        let user = self
            .store()
            .user(owner)
            .await?
            .ok_or_else(|| GatewayError::NotFound(format!("user {owner}")))?;
        if user.disabled {
            return Err(GatewayError::Invalid(format!(
                "the user `{}` is disabled",
                user.username
            )));
        }
        let scopes = switchboard_auth::Scopes::parse(&body.scopes)
            .map_err(|error| GatewayError::Invalid(error.to_string()))?;
        if scopes.is_empty() {
            return Err(GatewayError::Invalid(
                "a key needs at least one scope".into(),
            ));
        }
        let admin = switchboard_auth::Role::of(&user) == switchboard_auth::Role::Admin;
        if !admin && scopes != scopes.without_admin() {
            return Err(GatewayError::Invalid(
                "admin scopes are for admins' keys only".into(),
            ));
        }
        let name = body.name.trim();
        if name.is_empty() || name.chars().count() > 80 {
            return Err(GatewayError::Invalid(
                "`name` needs 1 to 80 characters".into(),
            ));
        }
        let now = crate::now_ms();
        if body.expires_at.is_some_and(|at| at <= now) {
            return Err(GatewayError::Invalid("`expiresAt` is in the past".into()));
        }
        let key = switchboard_auth::secret::random_credential(API_KEY_PREFIX);
        let row = switchboard_store::KeyRow {
            id: random_id("key_"),
            hash: switchboard_auth::secret::hash_credential(&key),
            hint: key[key.len() - 4..].to_string(),
            user_id: user.id.clone(),
            name: name.to_string(),
            scopes: scopes.to_string(),
            expires_at: body.expires_at,
            created_at: now,
            revoked_at: None,
        };
        self.store().insert_api_key(&row, &action.done("")).await?;
        self.access_changed().await?;
        Ok(NewKey {
            view: KeyView::from(&row),
            key,
        })
    }

    /// The keys of a user (an id), or everyone's.
    pub async fn keys(&self, user_id: Option<&str>) -> Result<Vec<KeyView>, GatewayError> {
        let rows = self.store().api_keys(user_id).await?;
        Ok(rows.iter().map(KeyView::from).collect())
    }

    /// Revokes a key (only one of `owner`'s, when given): it is refused from the next request.
    pub async fn revoke_key(
        &self,
        id: &str,
        owner: Option<&str>,
        action: &AdminAction,
    ) -> Result<(), GatewayError> {
        let revoked = self
            .store()
            .revoke_api_key(id, owner, crate::now_ms(), &action.done(""))
            .await?;
        if !revoked {
            return Err(GatewayError::NotFound(format!("key {id}")));
        }
        self.access_changed().await
    }
}
