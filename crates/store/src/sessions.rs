//! Downstream sessions as stored, for any replica to take over; and leases, for the background
//! jobs that run once across replicas.

use sqlx::Row;

use crate::{Store, StoreError};

/// One session.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionRow {
    pub id: String,
    /// The server's id, '' for `/mcp`, `admin` or `user`.
    pub endpoint: String,
    /// Who opened it (`Caller::owner`); empty until recorded.
    pub owner: String,
    /// The client's `initialize` parameters, as JSON.
    pub params: String,
    /// Whether only the replica that opened it can serve it.
    pub pinned: bool,
    pub created_at: i64,
    pub touched_at: i64,
    pub ended_at: Option<i64>,
}

impl Store {
    /// Keeps a new session (its owner comes with [`Self::set_session_owner`]).
    pub async fn insert_session(&self, row: &SessionRow) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO sessions (id, endpoint, owner, params, pinned, created_at, touched_at, \
             ended_at) VALUES ($1, $2, $3, $4, $5, $6, $7, NULL)",
        )
        .bind(&row.id)
        .bind(&row.endpoint)
        .bind(&row.owner)
        .bind(&row.params)
        .bind(i64::from(row.pinned))
        .bind(row.created_at)
        .bind(row.touched_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Names who opened a session, once only (an owner is never changed): whether the session
    /// is pinned, or `None` when there is no such session without an owner.
    pub async fn set_session_owner(
        &self,
        id: &str,
        owner: &str,
    ) -> Result<Option<bool>, StoreError> {
        let row = sqlx::query(
            "UPDATE sessions SET owner = $2 WHERE id = $1 AND owner = '' RETURNING pinned",
        )
        .bind(id)
        .bind(owner)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| Ok(row.try_get::<i64, _>("pinned")? != 0))
            .transpose()
    }

    pub async fn session(&self, id: &str) -> Result<Option<SessionRow>, StoreError> {
        let row = sqlx::query(
            "SELECT id, endpoint, owner, params, pinned, created_at, touched_at, ended_at \
             FROM sessions WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| {
            Ok(SessionRow {
                id: row.try_get("id")?,
                endpoint: row.try_get("endpoint")?,
                owner: row.try_get("owner")?,
                params: row.try_get("params")?,
                pinned: row.try_get::<i64, _>("pinned")? != 0,
                created_at: row.try_get("created_at")?,
                touched_at: row.try_get("touched_at")?,
                ended_at: row.try_get("ended_at")?,
            })
        })
        .transpose()
    }

    /// Notes that a session was used at `at`.
    pub async fn touch_session(&self, id: &str, at: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE sessions SET touched_at = $2 WHERE id = $1 AND touched_at < $2")
            .bind(id)
            .bind(at)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Ends a session at `at`; false when it had ended already or is unknown.
    pub async fn end_session(&self, id: &str, at: i64) -> Result<bool, StoreError> {
        let done =
            sqlx::query("UPDATE sessions SET ended_at = $2 WHERE id = $1 AND ended_at IS NULL")
                .bind(id)
                .bind(at)
                .execute(&self.pool)
                .await?;
        Ok(done.rows_affected() == 1)
    }

    /// The sessions ended at or after `since`, with when.
    pub async fn sessions_ended_since(&self, since: i64) -> Result<Vec<(String, i64)>, StoreError> {
        let rows =
            sqlx::query("SELECT id, ended_at FROM sessions WHERE ended_at >= $1 ORDER BY ended_at")
                .bind(since)
                .fetch_all(&self.pool)
                .await?;
        rows.iter()
            .map(|row| Ok((row.try_get("id")?, row.try_get("ended_at")?)))
            .collect()
    }

    /// Deletes the sessions ended, or unused, before `before`; returns how many.
    pub async fn prune_sessions(&self, before: i64) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM sessions WHERE ended_at < $1 OR touched_at < $1")
            .bind(before)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    /// Takes (or keeps) the lease `name` for `holder` until `until`, unless another holder's
    /// lease runs past `now`: whether `holder` holds it now.
    pub async fn take_lease(
        &self,
        name: &str,
        holder: &str,
        now: i64,
        until: i64,
    ) -> Result<bool, StoreError> {
        let mut transaction = self.pool.begin().await?;
        let current = sqlx::query("SELECT holder, until FROM leases WHERE name = $1")
            .bind(name)
            .fetch_optional(&mut *transaction)
            .await?;
        let taken = match current {
            None => {
                let inserted =
                    sqlx::query("INSERT INTO leases (name, holder, until) VALUES ($1, $2, $3)")
                        .bind(name)
                        .bind(holder)
                        .bind(until)
                        .execute(&mut *transaction)
                        .await;
                match inserted {
                    Ok(_) => true,
                    // Another replica took it at the same moment.
                    Err(sqlx::Error::Database(error)) if error.is_unique_violation() => false,
                    Err(error) => return Err(error.into()),
                }
            }
            Some(row) => {
                let (current, ends): (String, i64) =
                    (row.try_get("holder")?, row.try_get("until")?);
                if current != holder && ends > now {
                    false
                } else {
                    // Only if it is still as read: another replica may be taking it too.
                    let done = sqlx::query(
                        "UPDATE leases SET holder = $2, until = $3 WHERE name = $1 \
                         AND holder = $4 AND until = $5",
                    )
                    .bind(name)
                    .bind(holder)
                    .bind(until)
                    .bind(&current)
                    .bind(ends)
                    .execute(&mut *transaction)
                    .await?;
                    done.rows_affected() == 1
                }
            }
        };
        transaction.commit().await?;
        Ok(taken)
    }
}
