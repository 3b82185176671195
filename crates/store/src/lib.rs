//! Switchboard's state, and the one place that holds SQL.
//!
//! One pool, chosen by URL: `sqlite://…` (the embedded default) or `postgres://…` (several replicas
//! sharing one state). The SQL is written once in the dialect both accept (`$N` placeholders,
//! portable types) and runs through sqlx's `Any` driver; a statement that cannot be portable would
//! get a sibling per backend. Migrations run at open.
#![forbid(unsafe_code)]

pub mod access;
pub mod audit;
pub mod oauth;
pub mod requests;
pub mod runs;
pub mod secrets;
pub mod sessions;
pub mod users;

use std::{str::FromStr, time::Duration};

use sqlx::{
    AnyPool, Row,
    any::{AnyPoolOptions, AnyRow},
};

pub use access::{AccessRows, GrantRow, GroupRow, KeyRow, LiveKey, PermissionRow};
pub use audit::{AuditQuery, AuditRow};
pub use oauth::{ClientRow, CodeRow, FamilyRow, Redemption, RefreshRow, Rotation};
pub use requests::{Decision, Delivery, RequestFilter, RequestRow, Submitted};
pub use runs::RunRow;
pub use secrets::{SealError, SecretBox};
pub use sessions::SessionRow;
pub use users::UserRow;

/// How long SQLite waits on a lock held by another connection before failing.
const SQLITE_BUSY_TIMEOUT_MS: u32 = 5_000;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    #[error("the database URL must start with sqlite:// or postgres://")]
    UnsupportedUrl,
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    /// A unique column (an alias, a username) already holds the value.
    #[error("{0} is already taken")]
    Conflict(&'static str),
    #[error("a stored value is not valid: {0}")]
    Corrupt(String),
    /// The SQLite file could not be created or made owner-only.
    #[error("the database file: {0}")]
    File(std::io::Error),
}

/// Which database is behind the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A handle to the store; cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
}

/// One registered server as stored. JSON columns are kept as JSON values: their shape belongs to
/// the gateway, not to the store.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerRow {
    pub id: String,
    pub name: String,
    pub alias: String,
    pub short_description: String,
    /// `remote`, `npx`, `uvx` or `command`.
    pub runtime: String,
    /// The runtime's config, without secret values.
    pub config: serde_json::Value,
    /// Env values that are not sensitive.
    pub env: serde_json::Value,
    pub sensitive_keys: serde_json::Value,
    /// The sealed secret values (see [`SecretBox`]); `None` when there are none.
    pub sealed: Option<String>,
    /// Tool governance: prefix, allow/deny, renames, descriptions, pinned params.
    pub governance: serde_json::Value,
    pub enabled: bool,
    /// Unix milliseconds.
    pub created_at: i64,
    pub updated_at: i64,
}

const SERVER_COLUMNS: &str = "id, name, alias, short_description, runtime, config, env, \
    sensitive_keys, sealed, governance, enabled, created_at, updated_at";

/// Makes a SQLite database file readable by its owner only, creating it so if it is missing:
/// SQLite gives its WAL and shared-memory files the database file's mode.
fn owner_only_file(url: &str) -> Result<(), StoreError> {
    use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
    let path = url
        .trim_start_matches("sqlite://")
        .trim_start_matches("sqlite:");
    let path = path.split('?').next().unwrap_or_default();
    if path.is_empty() || path.starts_with(':') {
        // In memory.
        return Ok(());
    }
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
        .map_err(StoreError::File)?;
    file.set_permissions(std::fs::Permissions::from_mode(0o600))
        .map_err(StoreError::File)
}

impl Store {
    /// Opens (creating a SQLite file, readable by its owner only, if needed) and migrates.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else {
            return Err(StoreError::UnsupportedUrl);
        };
        if backend == Backend::Sqlite {
            owner_only_file(url)?;
        }
        let url = match backend {
            Backend::Sqlite if !url.contains("mode=") => {
                let separator = if url.contains('?') { '&' } else { '?' };
                format!("{url}{separator}mode=rwc")
            }
            _ => url.to_string(),
        };
        let mut options = AnyPoolOptions::new().acquire_timeout(Duration::from_secs(10));
        if backend == Backend::Sqlite {
            options = options
                // A file the process opened itself cannot drop the link a ping would check; the
                // ping cost a round trip to SQLite's worker thread before every transaction.
                .test_before_acquire(false)
                // SQLite writes one transaction at a time, and each connection is a thread with
                // its own page cache: a few serve the readers and the audit writer.
                .max_connections(4)
                .after_connect(|connection, _| {
                    Box::pin(async move {
                        // WAL lets readers go on while one writer writes; the busy timeout makes a
                        // writer wait for the lock instead of failing at once.
                        sqlx::query("PRAGMA journal_mode = WAL")
                            .execute(&mut *connection)
                            .await?;
                        sqlx::query(&format!("PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}"))
                            .execute(&mut *connection)
                            .await?;
                        // In WAL mode NORMAL syncs at checkpoints, not at every commit: a crash of
                        // the process loses nothing, and the database stays whole after a power
                        // loss, which may undo the last commits. A sync per commit would cost every
                        // audited call a disk flush.
                        sqlx::query("PRAGMA synchronous = NORMAL")
                            .execute(&mut *connection)
                            .await?;
                        sqlx::query("PRAGMA foreign_keys = ON")
                            .execute(&mut *connection)
                            .await?;
                        // The audit appends touch only the right edge of its B-trees, and the other
                        // tables are small: 512 KiB of page cache per connection, not SQLite's 2 MiB.
                        sqlx::query("PRAGMA cache_size = -512")
                            .execute(&mut *connection)
                            .await?;
                        Ok(())
                    })
                });
        }
        let pool = options.connect(&url).await?;
        sqlx::migrate!("./migrations").run(&pool).await?;
        Ok(Self { pool, backend })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Whether the database answers (readiness).
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Whether [`Self::close`] was called: background loops stop then.
    pub fn is_closed(&self) -> bool {
        self.pool.is_closed()
    }

    /// Inserts a server with its two first permissions ("Full access" and "Read-only", as the
    /// migration gave the servers before it), and the audit row of the action, in one
    /// transaction.
    pub async fn insert_server(&self, row: &ServerRow, audit: &AuditRow) -> Result<(), StoreError> {
        let sql = format!(
            "INSERT INTO servers ({SERVER_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, \
             $10, $11, $12, $13)"
        );
        let defaults = [
            (
                "prm_full_",
                "Full access",
                "Every tool of the server.",
                "all",
            ),
            (
                "prm_read_",
                "Read-only",
                "The tools that only read.",
                "read_only",
            ),
        ];
        let ids: Vec<String> = defaults
            .iter()
            .map(|(prefix, ..)| format!("{prefix}{}", row.id))
            .collect();
        let permissions =
            defaults
                .iter()
                .zip(&ids)
                .map(|((_, label, description, selector), id)| {
                    sqlx::query(
                "INSERT INTO permissions (id, server_id, label, description, selector, tools, \
                 requestable, max_duration_s, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, '[]', 1, NULL, $6, $6)",
            )
            .bind(id.as_str())
            .bind(&row.id)
            .bind(*label)
            .bind(*description)
            .bind(*selector)
            .bind(row.created_at)
                });
        self.audited_with(
            bind_server(sqlx::query(&sql), row),
            permissions.collect(),
            audit,
        )
        .await
        .map(drop)
    }

    /// Replaces every column but `id` and `created_at`, and appends the action's audit row, in one
    /// transaction; false, and nothing written, when there is no such server.
    pub async fn update_server(
        &self,
        row: &ServerRow,
        audit: &AuditRow,
    ) -> Result<bool, StoreError> {
        // Every column is bound as for an insert; `created_at` never changes, so it only confirms
        // that the row is the one the caller read.
        let sql = "UPDATE servers SET name = $2, alias = $3, short_description = $4, runtime = $5, \
                   config = $6, env = $7, sensitive_keys = $8, sealed = $9, governance = $10, \
                   enabled = $11, updated_at = $13 WHERE id = $1 AND created_at = $12";
        self.audited(bind_server(sqlx::query(sql), row), audit)
            .await
    }

    /// Deletes a server and appends the action's audit row, in one transaction; false, and
    /// nothing written, when there is no such server.
    pub async fn delete_server(&self, id: &str, audit: &AuditRow) -> Result<bool, StoreError> {
        self.audited_with(
            sqlx::query("DELETE FROM servers WHERE id = $1").bind(id),
            vec![
                sqlx::query(
                    "DELETE FROM grants WHERE permission_id IN \
                     (SELECT id FROM permissions WHERE server_id = $1)",
                )
                .bind(id),
                sqlx::query("DELETE FROM permissions WHERE server_id = $1").bind(id),
            ],
            audit,
        )
        .await
    }

    /// Runs an admin change and its audit row in one transaction, so that no acknowledged change
    /// lacks its row, even after a crash. False, and nothing written, when the change touched no
    /// row.
    async fn audited(&self, change: AnyQuery<'_>, audit: &AuditRow) -> Result<bool, StoreError> {
        self.audited_with(change, Vec::new(), audit).await
    }

    /// [`Self::audited`], with statements that follow the change in its transaction (and,
    /// when they touch permissions or grants, a new access version).
    async fn audited_with(
        &self,
        change: AnyQuery<'_>,
        then: Vec<AnyQuery<'_>>,
        audit: &AuditRow,
    ) -> Result<bool, StoreError> {
        let mut transaction = self.pool.begin().await?;
        let done = change
            .execute(&mut *transaction)
            .await
            .map_err(conflict_on_alias)?;
        if done.rows_affected() == 0 {
            transaction.rollback().await?;
            return Ok(false);
        }
        if !then.is_empty() {
            for statement in then {
                statement.execute(&mut *transaction).await?;
            }
            self.bump_access_version(&mut transaction).await?;
        }
        self.append_audit_in(&mut transaction, std::slice::from_ref(audit))
            .await?;
        transaction.commit().await?;
        Ok(true)
    }

    /// A server by id or alias.
    pub async fn server(&self, id_or_alias: &str) -> Result<Option<ServerRow>, StoreError> {
        let sql = format!("SELECT {SERVER_COLUMNS} FROM servers WHERE id = $1 OR alias = $1");
        let row = sqlx::query(&sql)
            .bind(id_or_alias)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|row| server_from_row(&row)).transpose()
    }

    /// Every server, oldest first.
    pub async fn servers(&self) -> Result<Vec<ServerRow>, StoreError> {
        let sql = format!("SELECT {SERVER_COLUMNS} FROM servers ORDER BY created_at, id");
        let rows = sqlx::query(&sql).fetch_all(&self.pool).await?;
        rows.iter().map(server_from_row).collect()
    }

    pub async fn setting(&self, key: &str) -> Result<Option<String>, StoreError> {
        let row = sqlx::query("SELECT value FROM settings WHERE key = $1")
            .bind(key)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|row| row.try_get::<String, _>(0)).transpose()?)
    }

    /// Sets a value only if the key has none; returns whether it was set. Two replicas starting
    /// at once agree on one value this way.
    pub async fn set_setting_once(&self, key: &str, value: &str) -> Result<bool, StoreError> {
        let result = sqlx::query(
            "INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
        )
        .bind(key)
        .bind(value)
        .execute(&self.pool)
        .await?;
        Ok(result.rows_affected() > 0)
    }
}

pub(crate) type AnyQuery<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>;

/// Binds every column, in `SERVER_COLUMNS` order.
fn bind_server<'q>(query: AnyQuery<'q>, row: &'q ServerRow) -> AnyQuery<'q> {
    query
        .bind(&row.id)
        .bind(&row.name)
        .bind(&row.alias)
        .bind(&row.short_description)
        .bind(&row.runtime)
        .bind(row.config.to_string())
        .bind(row.env.to_string())
        .bind(row.sensitive_keys.to_string())
        .bind(row.sealed.as_deref())
        .bind(row.governance.to_string())
        .bind(i64::from(row.enabled))
        .bind(row.created_at)
        .bind(row.updated_at)
}

fn server_from_row(row: &AnyRow) -> Result<ServerRow, StoreError> {
    let json = |column: &str| -> Result<serde_json::Value, StoreError> {
        let text: String = row.try_get(column)?;
        serde_json::Value::from_str(&text)
            .map_err(|error| StoreError::Corrupt(format!("servers.{column}: {error}")))
    };
    Ok(ServerRow {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        alias: row.try_get("alias")?,
        short_description: row.try_get("short_description")?,
        runtime: row.try_get("runtime")?,
        config: json("config")?,
        env: json("env")?,
        sensitive_keys: json("sensitive_keys")?,
        sealed: row.try_get("sealed")?,
        governance: json("governance")?,
        enabled: row.try_get::<i64, _>("enabled")? != 0,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

/// A unique violation of a server can only be the alias (the id is generated).
fn conflict_on_alias(error: sqlx::Error) -> StoreError {
    conflict_on(error, "the alias")
}

/// A unique violation as [`StoreError::Conflict`] on `what`, the one unique column a caller
/// chooses.
fn conflict_on(error: sqlx::Error, what: &'static str) -> StoreError {
    match &error {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict(what),
        _ => StoreError::Database(error),
    }
}
