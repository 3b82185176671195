//! Users and their browser sessions.

use sqlx::{Row, any::AnyRow};

use crate::{Store, StoreError};

/// One user as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRow {
    pub id: String,
    /// A local user's sign-in name; `<provider>:<subject>` for one of the external provider.
    pub username: String,
    pub name: String,
    pub email: String,
    /// `admin` or `user`.
    pub role: String,
    /// An Argon2id PHC string; `None` for users of the external provider.
    pub password_hash: Option<String>,
    pub disabled: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

const USER_COLUMNS: &str =
    "id, username, name, email, role, password_hash, disabled, created_at, updated_at";

fn user_from_row(row: &AnyRow) -> Result<UserRow, StoreError> {
    Ok(UserRow {
        id: row.try_get("id")?,
        username: row.try_get("username")?,
        name: row.try_get("name")?,
        email: row.try_get("email")?,
        role: row.try_get("role")?,
        password_hash: row.try_get("password_hash")?,
        disabled: row.try_get::<i64, _>("disabled")? != 0,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

impl Store {
    /// Adds a user; [`StoreError::Conflict`] when the username is taken.
    pub async fn insert_user(&self, user: &UserRow) -> Result<(), StoreError> {
        let sql = format!(
            "INSERT INTO users ({USER_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
        );
        sqlx::query(&sql)
            .bind(&user.id)
            .bind(&user.username)
            .bind(&user.name)
            .bind(&user.email)
            .bind(&user.role)
            .bind(user.password_hash.as_deref())
            .bind(i64::from(user.disabled))
            .bind(user.created_at)
            .bind(user.updated_at)
            .execute(&self.pool)
            .await
            .map_err(|error| crate::conflict_on(error, "the username"))?;
        Ok(())
    }

    /// A user by id or username.
    pub async fn user(&self, id_or_username: &str) -> Result<Option<UserRow>, StoreError> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1 OR username = $1");
        let row = sqlx::query(&sql)
            .bind(id_or_username)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(user_from_row).transpose()
    }

    /// Every user, by username.
    pub async fn users(&self) -> Result<Vec<UserRow>, StoreError> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users ORDER BY username");
        let rows = sqlx::query(&sql).fetch_all(&self.pool).await?;
        rows.iter().map(user_from_row).collect()
    }

    pub async fn count_users(&self) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT COUNT(*) FROM users")
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get(0)?)
    }

    /// Replaces a user's name, email, role, password hash and disabled flag; false when there
    /// is no such user.
    pub async fn update_user(&self, user: &UserRow) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE users SET name = $2, email = $3, role = $4, password_hash = $5, \
             disabled = $6, updated_at = $7 WHERE id = $1",
        )
        .bind(&user.id)
        .bind(&user.name)
        .bind(&user.email)
        .bind(&user.role)
        .bind(user.password_hash.as_deref())
        .bind(i64::from(user.disabled))
        .bind(user.updated_at)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Opens a browser session under the cookie's hash.
    pub async fn insert_browser_session(
        &self,
        hash: &str,
        user_id: &str,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO browser_sessions (hash, user_id, expires_at) VALUES ($1, $2, $3)")
            .bind(hash)
            .bind(user_id)
            .bind(expires_at)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The user of an unexpired browser session who is not disabled.
    pub async fn browser_session_user(
        &self,
        hash: &str,
        now: i64,
    ) -> Result<Option<UserRow>, StoreError> {
        let columns = USER_COLUMNS
            .split(", ")
            .map(|column| format!("u.{column}"))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "SELECT {columns} FROM browser_sessions s JOIN users u ON u.id = s.user_id \
             WHERE s.hash = $1 AND s.expires_at > $2 AND u.disabled = 0"
        );
        let row = sqlx::query(&sql)
            .bind(hash)
            .bind(now)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(user_from_row).transpose()
    }

    pub async fn delete_browser_session(&self, hash: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM browser_sessions WHERE hash = $1")
            .bind(hash)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Ends every browser session of a user (disabled, or given a new password).
    pub async fn delete_user_browser_sessions(&self, user_id: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM browser_sessions WHERE user_id = $1")
            .bind(user_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
