//! The OAuth authorization server's state: registered clients, authorization codes, token
//! families and their refresh tokens, consents and revocations. Every secret is stored as its
//! hash; the rules live in `switchboard-auth`, which calls these.

use sqlx::{Row, any::AnyRow};

use crate::{Store, StoreError};

/// A client that registered itself (RFC 7591).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientRow {
    pub id: String,
    pub name: String,
    pub redirect_uris: Vec<String>,
    /// The client secret's hash; `None` for a public client.
    pub secret_hash: Option<String>,
    /// `none`, `client_secret_basic` or `client_secret_post`.
    pub auth_method: String,
    /// `native` or `web`.
    pub application_type: String,
    pub created_at: i64,
}

/// An authorization code waiting to be redeemed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeRow {
    pub hash: String,
    pub client_id: String,
    pub user_id: String,
    pub redirect_uri: String,
    pub resource: String,
    pub scopes: String,
    /// The PKCE S256 challenge.
    pub challenge: String,
    pub expires_at: i64,
}

/// What presenting a code found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Redemption {
    /// Unused and unexpired: it is now used.
    Fresh(CodeRow),
    /// Used before; the family its tokens went to, if it got that far.
    Reused { family_id: Option<String> },
    /// No such code, or expired.
    Unknown,
}

/// The tokens of one approval.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FamilyRow {
    pub id: String,
    pub user_id: String,
    pub client_id: String,
    pub client_name: String,
    pub resource: String,
    pub scopes: String,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
}

/// What presenting a refresh token found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rotation {
    /// It was current: it is now used, and the new one stored in its family.
    Rotated,
    /// It had been used already: a sign that it leaked. The caller revokes the family.
    Reused,
    /// No such token, or expired.
    Invalid,
}

const FAMILY_COLUMNS: &str =
    "id, user_id, client_id, client_name, resource, scopes, created_at, revoked_at";

fn family_from_row(row: &AnyRow) -> Result<FamilyRow, StoreError> {
    Ok(FamilyRow {
        id: row.try_get("id")?,
        user_id: row.try_get("user_id")?,
        client_id: row.try_get("client_id")?,
        client_name: row.try_get("client_name")?,
        resource: row.try_get("resource")?,
        scopes: row.try_get("scopes")?,
        created_at: row.try_get("created_at")?,
        revoked_at: row.try_get("revoked_at")?,
    })
}

impl Store {
    pub async fn insert_client(&self, client: &ClientRow) -> Result<(), StoreError> {
        let uris = serde_json::to_string(&client.redirect_uris)
            .map_err(|error| StoreError::Corrupt(error.to_string()))?;
        sqlx::query(
            "INSERT INTO oauth_clients (id, name, redirect_uris, secret_hash, auth_method, \
             application_type, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&client.id)
        .bind(&client.name)
        .bind(uris)
        .bind(client.secret_hash.as_deref())
        .bind(&client.auth_method)
        .bind(&client.application_type)
        .bind(client.created_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn client(&self, id: &str) -> Result<Option<ClientRow>, StoreError> {
        let row = sqlx::query(
            "SELECT id, name, redirect_uris, secret_hash, auth_method, application_type, \
             created_at FROM oauth_clients WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let uris: String = row.try_get("redirect_uris")?;
        Ok(Some(ClientRow {
            id: row.try_get("id")?,
            name: row.try_get("name")?,
            redirect_uris: serde_json::from_str(&uris).map_err(|error| {
                StoreError::Corrupt(format!("oauth_clients.redirect_uris: {error}"))
            })?,
            secret_hash: row.try_get("secret_hash")?,
            auth_method: row.try_get("auth_method")?,
            application_type: row.try_get("application_type")?,
            created_at: row.try_get("created_at")?,
        }))
    }

    pub async fn insert_code(&self, code: &CodeRow) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO authorization_codes (hash, client_id, user_id, redirect_uri, resource, \
             scopes, challenge, expires_at, used) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 0)",
        )
        .bind(&code.hash)
        .bind(&code.client_id)
        .bind(&code.user_id)
        .bind(&code.redirect_uri)
        .bind(&code.resource)
        .bind(&code.scopes)
        .bind(&code.challenge)
        .bind(code.expires_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Marks a code used, once: of two replicas redeeming it at once, one gets it.
    pub async fn redeem_code(&self, hash: &str, now: i64) -> Result<Redemption, StoreError> {
        let taken = sqlx::query(
            "UPDATE authorization_codes SET used = 1 WHERE hash = $1 AND used = 0 \
             AND expires_at > $2",
        )
        .bind(hash)
        .bind(now)
        .execute(&self.pool)
        .await?;
        let row = sqlx::query(
            "SELECT hash, client_id, user_id, redirect_uri, resource, scopes, challenge, \
             expires_at, family_id FROM authorization_codes WHERE hash = $1",
        )
        .bind(hash)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else {
            return Ok(Redemption::Unknown);
        };
        if taken.rows_affected() == 0 {
            let expired = row.try_get::<i64, _>("expires_at")? <= now;
            return Ok(if expired {
                Redemption::Unknown
            } else {
                Redemption::Reused {
                    family_id: row.try_get("family_id")?,
                }
            });
        }
        Ok(Redemption::Fresh(CodeRow {
            hash: row.try_get("hash")?,
            client_id: row.try_get("client_id")?,
            user_id: row.try_get("user_id")?,
            redirect_uri: row.try_get("redirect_uri")?,
            resource: row.try_get("resource")?,
            scopes: row.try_get("scopes")?,
            challenge: row.try_get("challenge")?,
            expires_at: row.try_get("expires_at")?,
        }))
    }

    /// Starts a family with its first refresh token, noting it on the code it came from.
    pub async fn insert_family(
        &self,
        family: &FamilyRow,
        refresh: &RefreshRow,
        code_hash: &str,
    ) -> Result<(), StoreError> {
        let mut transaction = self.pool.begin().await?;
        let sql = format!(
            "INSERT INTO token_families ({FAMILY_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, \
             NULL)"
        );
        sqlx::query(&sql)
            .bind(&family.id)
            .bind(&family.user_id)
            .bind(&family.client_id)
            .bind(&family.client_name)
            .bind(&family.resource)
            .bind(&family.scopes)
            .bind(family.created_at)
            .execute(&mut *transaction)
            .await?;
        insert_refresh(&mut transaction, refresh).await?;
        sqlx::query("UPDATE authorization_codes SET family_id = $2 WHERE hash = $1")
            .bind(code_hash)
            .bind(&family.id)
            .execute(&mut *transaction)
            .await?;
        transaction.commit().await?;
        Ok(())
    }

    pub async fn family(&self, id: &str) -> Result<Option<FamilyRow>, StoreError> {
        let sql = format!("SELECT {FAMILY_COLUMNS} FROM token_families WHERE id = $1");
        let row = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(family_from_row).transpose()
    }

    /// Uses a refresh token and stores its successor, in one transaction (see [`Rotation`]).
    /// The caller has read the token's family and judged it (its client, its revocation).
    pub async fn rotate_refresh(
        &self,
        hash: &str,
        now: i64,
        next: &RefreshRow,
    ) -> Result<Rotation, StoreError> {
        let mut transaction = self.pool.begin().await?;
        let taken = sqlx::query(
            "UPDATE refresh_tokens SET used_at = $2 WHERE hash = $1 AND used_at IS NULL \
             AND expires_at > $2",
        )
        .bind(hash)
        .bind(now)
        .execute(&mut *transaction)
        .await?;
        if taken.rows_affected() == 0 {
            transaction.rollback().await?;
            let used: Option<i64> =
                sqlx::query("SELECT used_at FROM refresh_tokens WHERE hash = $1")
                    .bind(hash)
                    .fetch_optional(&self.pool)
                    .await?
                    .map(|row| row.try_get(0))
                    .transpose()?
                    .flatten();
            return Ok(if used.is_some() {
                Rotation::Reused
            } else {
                Rotation::Invalid
            });
        }
        insert_refresh(&mut transaction, next).await?;
        transaction.commit().await?;
        Ok(Rotation::Rotated)
    }

    /// The family of a refresh token, used or not.
    pub async fn refresh_family(&self, hash: &str) -> Result<Option<String>, StoreError> {
        let row = sqlx::query("SELECT family_id FROM refresh_tokens WHERE hash = $1")
            .bind(hash)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|row| row.try_get(0)).transpose()?)
    }

    /// Revokes families: their refresh tokens stop at once, and their access tokens are listed
    /// in `revocations` until `listed_until`, when the last of them has expired.
    pub async fn revoke_families(
        &self,
        ids: &[String],
        now: i64,
        listed_until: i64,
    ) -> Result<(), StoreError> {
        let mut transaction = self.pool.begin().await?;
        for id in ids {
            sqlx::query(
                "UPDATE token_families SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL",
            )
            .bind(id)
            .bind(now)
            .execute(&mut *transaction)
            .await?;
            sqlx::query(
                "INSERT INTO revocations (family_id, expires_at) VALUES ($1, $2) \
                 ON CONFLICT (family_id) DO NOTHING",
            )
            .bind(id)
            .bind(listed_until)
            .execute(&mut *transaction)
            .await?;
        }
        transaction.commit().await?;
        Ok(())
    }

    /// The unrevoked families of a user, with one client or with all (`None`), newest first.
    pub async fn live_families(
        &self,
        user_id: &str,
        client_id: Option<&str>,
    ) -> Result<Vec<FamilyRow>, StoreError> {
        let sql = format!(
            "SELECT {FAMILY_COLUMNS} FROM token_families WHERE user_id = $1 \
             AND ($2 = '' OR client_id = $2) AND revoked_at IS NULL ORDER BY created_at DESC"
        );
        let rows = sqlx::query(&sql)
            .bind(user_id)
            .bind(client_id.unwrap_or_default())
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(family_from_row).collect()
    }

    /// The scopes a user approved for a client on a resource.
    pub async fn consent(
        &self,
        user_id: &str,
        client_id: &str,
        resource: &str,
    ) -> Result<Option<String>, StoreError> {
        let row = sqlx::query(
            "SELECT scopes FROM consents WHERE user_id = $1 AND client_id = $2 AND resource = $3",
        )
        .bind(user_id)
        .bind(client_id)
        .bind(resource)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|row| row.try_get(0)).transpose()?)
    }

    /// Records (or replaces) what a user approved for a client on a resource.
    pub async fn put_consent(
        &self,
        user_id: &str,
        client_id: &str,
        resource: &str,
        scopes: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO consents (user_id, client_id, resource, scopes, created_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (user_id, client_id, resource) \
             DO UPDATE SET scopes = excluded.scopes, created_at = excluded.created_at",
        )
        .bind(user_id)
        .bind(client_id)
        .bind(resource)
        .bind(scopes)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Forgets what a user approved for a client (every resource).
    pub async fn delete_consents(&self, user_id: &str, client_id: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM consents WHERE user_id = $1 AND client_id = $2")
            .bind(user_id)
            .bind(client_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The families whose access tokens may still be alive but must be refused.
    pub async fn listed_revocations(&self, now: i64) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query("SELECT family_id FROM revocations WHERE expires_at > $1")
            .bind(now)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| row.try_get(0).map_err(StoreError::from))
            .collect()
    }

    /// Deletes what has expired: codes, refresh tokens, browser sessions, revocation entries.
    pub async fn prune_sign_in(&self, now: i64) -> Result<(), StoreError> {
        for table in [
            "authorization_codes",
            "refresh_tokens",
            "browser_sessions",
            "revocations",
        ] {
            sqlx::query(&format!("DELETE FROM {table} WHERE expires_at <= $1"))
                .bind(now)
                .execute(&self.pool)
                .await?;
        }
        Ok(())
    }
}

/// A refresh token as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshRow {
    pub hash: String,
    pub family_id: String,
    pub expires_at: i64,
}

async fn insert_refresh(
    connection: &mut sqlx::AnyConnection,
    refresh: &RefreshRow,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO refresh_tokens (hash, family_id, expires_at, used_at) VALUES ($1, $2, $3, \
         NULL)",
    )
    .bind(&refresh.hash)
    .bind(&refresh.family_id)
    .bind(refresh.expires_at)
    .execute(&mut *connection)
    .await?;
    Ok(())
}
