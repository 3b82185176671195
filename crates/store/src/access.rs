//! Who may use what: groups and their members, each server's permissions, grants, access
//! requests, and the version every change bumps so that replicas reload.

use sqlx::{Row, any::AnyRow};

use crate::{AuditRow, Store, StoreError};

/// The setting every change to groups, permissions or grants sets anew: replicas compare it to
/// know when to read them again.
const ACCESS_VERSION: &str = "access_version";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupRow {
    pub id: String,
    pub name: String,
    pub description: String,
    /// `local` or `oidc`.
    pub source: String,
    pub created_at: i64,
}

/// A named set of one server's tools.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PermissionRow {
    pub id: String,
    pub server_id: String,
    pub label: String,
    pub description: String,
    /// `all`, `read_only` or `list`.
    pub selector: String,
    /// The tool names of a `list` selector.
    pub tools: Vec<String>,
    pub requestable: bool,
    /// The longest grant a request may ask for, in seconds.
    pub max_duration_s: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantRow {
    pub id: String,
    pub permission_id: String,
    /// `user` or `group`.
    pub subject_kind: String,
    pub subject_id: String,
    pub expires_at: Option<i64>,
    pub created_at: i64,
    pub created_by: String,
    pub request_id: Option<String>,
}

/// An API key as stored: its hash, never the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRow {
    pub id: String,
    pub hash: String,
    /// The key's last characters, to tell keys apart in listings.
    pub hint: String,
    pub user_id: String,
    pub name: String,
    pub scopes: String,
    pub expires_at: Option<i64>,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
}

/// A key that may be used: not revoked, its owner not disabled; with who the owner is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveKey {
    pub key: KeyRow,
    pub username: String,
    pub role: String,
}

/// Everything the access rules read, as one snapshot.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccessRows {
    pub permissions: Vec<PermissionRow>,
    pub grants: Vec<GrantRow>,
    /// (group id, user id).
    pub members: Vec<(String, String)>,
    pub keys: Vec<LiveKey>,
    /// The organization's settings, as JSON (see `Store::org_settings`).
    pub org_settings: Option<String>,
}

const KEY_COLUMNS: &str =
    "id, hash, hint, user_id, name, scopes, expires_at, created_at, revoked_at";

fn key_from_row(row: &AnyRow) -> Result<KeyRow, StoreError> {
    Ok(KeyRow {
        id: row.try_get("id")?,
        hash: row.try_get("hash")?,
        hint: row.try_get("hint")?,
        user_id: row.try_get("user_id")?,
        name: row.try_get("name")?,
        scopes: row.try_get("scopes")?,
        expires_at: row.try_get("expires_at")?,
        created_at: row.try_get("created_at")?,
        revoked_at: row.try_get("revoked_at")?,
    })
}

const PERMISSION_COLUMNS: &str = "id, server_id, label, description, selector, tools, \
    requestable, max_duration_s, created_at, updated_at";
const GRANT_COLUMNS: &str =
    "id, permission_id, subject_kind, subject_id, expires_at, created_at, created_by, request_id";

fn permission_from_row(row: &AnyRow) -> Result<PermissionRow, StoreError> {
    let tools: String = row.try_get("tools")?;
    Ok(PermissionRow {
        id: row.try_get("id")?,
        server_id: row.try_get("server_id")?,
        label: row.try_get("label")?,
        description: row.try_get("description")?,
        selector: row.try_get("selector")?,
        tools: serde_json::from_str(&tools)
            .map_err(|error| StoreError::Corrupt(format!("permissions.tools: {error}")))?,
        requestable: row.try_get::<i64, _>("requestable")? != 0,
        max_duration_s: row.try_get("max_duration_s")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

fn grant_from_row(row: &AnyRow) -> Result<GrantRow, StoreError> {
    Ok(GrantRow {
        id: row.try_get("id")?,
        permission_id: row.try_get("permission_id")?,
        subject_kind: row.try_get("subject_kind")?,
        subject_id: row.try_get("subject_id")?,
        expires_at: row.try_get("expires_at")?,
        created_at: row.try_get("created_at")?,
        created_by: row.try_get("created_by")?,
        request_id: row.try_get("request_id")?,
    })
}

const GRANT_INSERT: &str = "INSERT INTO grants (id, permission_id, subject_kind, subject_id, \
    expires_at, created_at, created_by, request_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";

fn grant_insert(grant: &GrantRow) -> crate::AnyQuery<'_> {
    sqlx::query(GRANT_INSERT)
        .bind(&grant.id)
        .bind(&grant.permission_id)
        .bind(&grant.subject_kind)
        .bind(&grant.subject_id)
        .bind(grant.expires_at)
        .bind(grant.created_at)
        .bind(&grant.created_by)
        .bind(grant.request_id.as_deref())
}

fn group_from_row(row: &AnyRow) -> Result<GroupRow, StoreError> {
    Ok(GroupRow {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        description: row.try_get("description")?,
        source: row.try_get("source")?,
        created_at: row.try_get("created_at")?,
    })
}

impl Store {
    /// The version of the access rows: a new value after every change.
    pub async fn access_version(&self) -> Result<String, StoreError> {
        Ok(self.setting(ACCESS_VERSION).await?.unwrap_or_default())
    }

    pub(crate) async fn bump_access_version(
        &self,
        connection: &mut sqlx::AnyConnection,
    ) -> Result<(), StoreError> {
        let version = format!(
            "{}-{}",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos()),
            std::process::id()
        );
        sqlx::query(
            "INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) \
             DO UPDATE SET value = excluded.value",
        )
        .bind(ACCESS_VERSION)
        .bind(version)
        .execute(&mut *connection)
        .await?;
        Ok(())
    }

    /// Every permission, grant and membership, read in one transaction.
    pub async fn access_rows(&self) -> Result<AccessRows, StoreError> {
        let mut transaction = self.pool.begin().await?;
        let sql = format!("SELECT {PERMISSION_COLUMNS} FROM permissions ORDER BY server_id, label");
        let permissions = sqlx::query(&sql)
            .fetch_all(&mut *transaction)
            .await?
            .iter()
            .map(permission_from_row)
            .collect::<Result<_, _>>()?;
        let sql = format!("SELECT {GRANT_COLUMNS} FROM grants ORDER BY created_at, id");
        let grants = sqlx::query(&sql)
            .fetch_all(&mut *transaction)
            .await?
            .iter()
            .map(grant_from_row)
            .collect::<Result<_, _>>()?;
        let members = sqlx::query("SELECT group_id, user_id FROM group_members")
            .fetch_all(&mut *transaction)
            .await?
            .iter()
            .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
            .collect::<Result<_, StoreError>>()?;
        let columns: Vec<String> = KEY_COLUMNS
            .split(", ")
            .map(|column| format!("k.{column}"))
            .collect();
        let sql = format!(
            "SELECT {}, u.username AS owner_name, u.role AS owner_role FROM api_keys k \
             JOIN users u ON u.id = k.user_id WHERE k.revoked_at IS NULL AND u.disabled = 0",
            columns.join(", ")
        );
        let keys = sqlx::query(&sql)
            .fetch_all(&mut *transaction)
            .await?
            .iter()
            .map(|row| {
                Ok(LiveKey {
                    key: key_from_row(row)?,
                    username: row.try_get("owner_name")?,
                    role: row.try_get("owner_role")?,
                })
            })
            .collect::<Result<_, StoreError>>()?;
        let org_settings = sqlx::query("SELECT value FROM settings WHERE key = 'org_settings'")
            .fetch_optional(&mut *transaction)
            .await?
            .map(|row| row.try_get::<String, _>(0))
            .transpose()?;
        transaction.commit().await?;
        Ok(AccessRows {
            permissions,
            grants,
            members,
            keys,
            org_settings,
        })
    }

    /// Runs an admin change of access, bumps the access version and appends the action's audit
    /// row, in one transaction: no acknowledged change lacks its row. Returns the rows the
    /// statements touched; when none did, nothing is written.
    async fn access_change(
        &self,
        statements: Vec<crate::AnyQuery<'_>>,
        audit: &AuditRow,
    ) -> Result<u64, StoreError> {
        let mut transaction = self.pool.begin().await?;
        let mut touched = 0;
        for statement in statements {
            touched += statement
                .execute(&mut *transaction)
                .await
                .map_err(|error| crate::conflict_on(error, "the name"))?
                .rows_affected();
        }
        if touched == 0 {
            transaction.rollback().await?;
            return Ok(0);
        }
        self.bump_access_version(&mut transaction).await?;
        self.append_audit_in(&mut transaction, std::slice::from_ref(audit))
            .await?;
        transaction.commit().await?;
        Ok(touched)
    }

    pub async fn insert_permission(
        &self,
        permission: &PermissionRow,
        audit: &AuditRow,
    ) -> Result<(), StoreError> {
        let tools = serde_json::to_string(&permission.tools)
            .map_err(|error| StoreError::Corrupt(error.to_string()))?;
        let sql = format!(
            "INSERT INTO permissions ({PERMISSION_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, \
             $8, $9, $10)"
        );
        let statement = sqlx::query(&sql)
            .bind(&permission.id)
            .bind(&permission.server_id)
            .bind(&permission.label)
            .bind(&permission.description)
            .bind(&permission.selector)
            .bind(tools)
            .bind(i64::from(permission.requestable))
            .bind(permission.max_duration_s)
            .bind(permission.created_at)
            .bind(permission.updated_at);
        self.access_change(vec![statement], audit).await.map(drop)
    }

    /// Replaces a permission's label, description, selector, tools, requestability and longest
    /// duration; false when there is none.
    pub async fn update_permission(
        &self,
        permission: &PermissionRow,
        audit: &AuditRow,
    ) -> Result<bool, StoreError> {
        let tools = serde_json::to_string(&permission.tools)
            .map_err(|error| StoreError::Corrupt(error.to_string()))?;
        let statement = sqlx::query(
            "UPDATE permissions SET label = $2, description = $3, selector = $4, tools = $5, \
             requestable = $6, max_duration_s = $7, updated_at = $8 WHERE id = $1",
        )
        .bind(&permission.id)
        .bind(&permission.label)
        .bind(&permission.description)
        .bind(&permission.selector)
        .bind(tools)
        .bind(i64::from(permission.requestable))
        .bind(permission.max_duration_s)
        .bind(permission.updated_at);
        Ok(self.access_change(vec![statement], audit).await? > 0)
    }

    /// Deletes a permission and its grants; false when there is none.
    pub async fn delete_permission(&self, id: &str, audit: &AuditRow) -> Result<bool, StoreError> {
        let deleted = self
            .access_change(
                vec![
                    sqlx::query("DELETE FROM grants WHERE permission_id = $1").bind(id),
                    sqlx::query("DELETE FROM permissions WHERE id = $1").bind(id),
                ],
                audit,
            )
            .await?;
        Ok(deleted > 0)
    }

    /// A server's permissions, or every server's.
    pub async fn permissions(
        &self,
        server_id: Option<&str>,
    ) -> Result<Vec<PermissionRow>, StoreError> {
        let sql = format!(
            "SELECT {PERMISSION_COLUMNS} FROM permissions WHERE ($1 = '' OR server_id = $1) \
             ORDER BY server_id, created_at, label"
        );
        let rows = sqlx::query(&sql)
            .bind(server_id.unwrap_or_default())
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(permission_from_row).collect()
    }

    pub async fn permission(&self, id: &str) -> Result<Option<PermissionRow>, StoreError> {
        let sql = format!("SELECT {PERMISSION_COLUMNS} FROM permissions WHERE id = $1");
        let row = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(permission_from_row).transpose()
    }

    pub async fn insert_grant(&self, grant: &GrantRow, audit: &AuditRow) -> Result<(), StoreError> {
        self.access_change(vec![grant_insert(grant)], audit)
            .await
            .map(drop)
    }

    /// Inserts a grant in a transaction the caller holds (an approved request's).
    pub(crate) async fn insert_grant_in(
        &self,
        connection: &mut sqlx::AnyConnection,
        grant: &GrantRow,
    ) -> Result<(), StoreError> {
        grant_insert(grant).execute(&mut *connection).await?;
        Ok(())
    }

    /// Revokes a grant; false when there is none.
    pub async fn delete_grant(&self, id: &str, audit: &AuditRow) -> Result<bool, StoreError> {
        let statement = sqlx::query("DELETE FROM grants WHERE id = $1").bind(id);
        Ok(self.access_change(vec![statement], audit).await? > 0)
    }

    pub async fn grant(&self, id: &str) -> Result<Option<GrantRow>, StoreError> {
        let sql = format!("SELECT {GRANT_COLUMNS} FROM grants WHERE id = $1");
        let row = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(grant_from_row).transpose()
    }

    pub async fn insert_group(&self, group: &GroupRow, audit: &AuditRow) -> Result<(), StoreError> {
        let statement = sqlx::query(
            "INSERT INTO user_groups (id, name, description, source, created_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&group.id)
        .bind(&group.name)
        .bind(&group.description)
        .bind(&group.source)
        .bind(group.created_at);
        self.access_change(vec![statement], audit).await.map(drop)
    }

    /// A group by id or name.
    pub async fn group(&self, id_or_name: &str) -> Result<Option<GroupRow>, StoreError> {
        let row = sqlx::query(
            "SELECT id, name, description, source, created_at FROM user_groups \
             WHERE id = $1 OR name = $1",
        )
        .bind(id_or_name)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(group_from_row).transpose()
    }

    pub async fn groups(&self) -> Result<Vec<GroupRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, name, description, source, created_at FROM user_groups ORDER BY name",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(group_from_row).collect()
    }

    /// Deletes a group with its memberships and grants; false when there is none.
    pub async fn delete_group(&self, id: &str, audit: &AuditRow) -> Result<bool, StoreError> {
        let deleted = self
            .access_change(
                vec![
                    sqlx::query(
                        "DELETE FROM grants WHERE subject_kind = 'group' AND subject_id = $1",
                    )
                    .bind(id),
                    sqlx::query("DELETE FROM group_members WHERE group_id = $1").bind(id),
                    sqlx::query("DELETE FROM user_groups WHERE id = $1").bind(id),
                ],
                audit,
            )
            .await?;
        Ok(deleted > 0)
    }

    /// Adds (`true`) or removes a user's membership of a group.
    pub async fn set_membership(
        &self,
        group_id: &str,
        user_id: &str,
        member: bool,
        audit: &AuditRow,
    ) -> Result<(), StoreError> {
        let statement = if member {
            sqlx::query(
                "INSERT INTO group_members (group_id, user_id) VALUES ($1, $2) \
                 ON CONFLICT (group_id, user_id) DO NOTHING",
            )
        } else {
            sqlx::query("DELETE FROM group_members WHERE group_id = $1 AND user_id = $2")
        };
        self.access_change(vec![statement.bind(group_id).bind(user_id)], audit)
            .await
            .map(drop)
    }

    pub async fn insert_api_key(&self, key: &KeyRow, audit: &AuditRow) -> Result<(), StoreError> {
        let sql = format!(
            "INSERT INTO api_keys ({KEY_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL)"
        );
        let statement = sqlx::query(&sql)
            .bind(&key.id)
            .bind(&key.hash)
            .bind(&key.hint)
            .bind(&key.user_id)
            .bind(&key.name)
            .bind(&key.scopes)
            .bind(key.expires_at)
            .bind(key.created_at);
        self.access_change(vec![statement], audit).await.map(drop)
    }

    /// Revokes a key (of `user_id` only, when given); false when there is no such live key.
    pub async fn revoke_api_key(
        &self,
        id: &str,
        user_id: Option<&str>,
        now: i64,
        audit: &AuditRow,
    ) -> Result<bool, StoreError> {
        let statement = sqlx::query(
            "UPDATE api_keys SET revoked_at = $3 WHERE id = $1 AND ($2 = '' OR user_id = $2) \
             AND revoked_at IS NULL",
        )
        .bind(id)
        .bind(user_id.unwrap_or_default())
        .bind(now);
        Ok(self.access_change(vec![statement], audit).await? > 0)
    }

    /// The keys of a user, or everyone's, newest first.
    pub async fn api_keys(&self, user_id: Option<&str>) -> Result<Vec<KeyRow>, StoreError> {
        let sql = format!(
            "SELECT {KEY_COLUMNS} FROM api_keys WHERE ($1 = '' OR user_id = $1) \
             ORDER BY created_at DESC"
        );
        let rows = sqlx::query(&sql)
            .bind(user_id.unwrap_or_default())
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(key_from_row).collect()
    }

    /// Moves the access version without another change: a user disabled, whose keys stop.
    pub async fn touch_access(&self) -> Result<(), StoreError> {
        let mut connection = self.pool.acquire().await?;
        self.bump_access_version(&mut connection).await
    }

    /// The ids of the groups a user belongs to.
    pub async fn memberships(&self, user_id: &str) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query("SELECT group_id FROM group_members WHERE user_id = $1")
            .bind(user_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| row.try_get(0).map_err(StoreError::from))
            .collect()
    }
}
