//! Self-service: users' access requests and their decisions, the organization's settings, and
//! the webhook deliveries that tell of requests and decisions. A request or decision is written
//! with its audit row and its delivery in one transaction: none is acknowledged without them.

use sqlx::{Row, any::AnyRow};

use crate::{AuditRow, GrantRow, Store, StoreError};

/// The setting that holds the organization's settings, as JSON.
const ORG_SETTINGS: &str = "org_settings";

/// A user's request for a permission.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestRow {
    pub id: String,
    pub user_id: String,
    pub permission_id: String,
    pub reason: String,
    /// How long the grant is asked for, in seconds; `None`: no end.
    pub duration_s: Option<i64>,
    /// `pending`, `approved` or `denied`.
    pub status: String,
    pub decided_by: Option<String>,
    pub decision_reason: Option<String>,
    pub decided_at: Option<i64>,
    pub created_at: i64,
}

/// Which requests to list; every field narrows.
#[derive(Debug, Clone, Default)]
pub struct RequestFilter<'a> {
    pub user_id: Option<&'a str>,
    pub status: Option<&'a str>,
    pub server_id: Option<&'a str>,
    pub limit: i64,
}

/// A submitted request: a new one, or the same user's pending request for the same permission.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Submitted {
    New(RequestRow),
    Pending(RequestRow),
}

/// A decision on a pending request.
#[derive(Debug, Clone)]
pub struct Decision<'a> {
    /// `approved` or `denied`.
    pub status: &'a str,
    pub decided_by: &'a str,
    pub reason: Option<&'a str>,
    pub at: i64,
    /// The grant an approval makes.
    pub grant: Option<&'a GrantRow>,
}

/// A webhook delivery claimed for an attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub id: String,
    pub event: String,
    /// The attempts made before this one.
    pub attempts: i64,
}

const REQUEST_COLUMNS: &str = "id, user_id, permission_id, reason, duration_s, status, \
    decided_by, decision_reason, decided_at, created_at";

fn request_from_row(row: &AnyRow) -> Result<RequestRow, StoreError> {
    Ok(RequestRow {
        id: row.try_get("id")?,
        user_id: row.try_get("user_id")?,
        permission_id: row.try_get("permission_id")?,
        reason: row.try_get("reason")?,
        duration_s: row.try_get("duration_s")?,
        status: row.try_get("status")?,
        decided_by: row.try_get("decided_by")?,
        decision_reason: row.try_get("decision_reason")?,
        decided_at: row.try_get("decided_at")?,
        created_at: row.try_get("created_at")?,
    })
}

impl Store {
    async fn pending_request(
        connection: &mut sqlx::AnyConnection,
        user_id: &str,
        permission_id: &str,
    ) -> Result<Option<RequestRow>, StoreError> {
        let sql = format!(
            "SELECT {REQUEST_COLUMNS} FROM access_requests WHERE user_id = $1 AND \
             permission_id = $2 AND status = 'pending'"
        );
        let row = sqlx::query(&sql)
            .bind(user_id)
            .bind(permission_id)
            .fetch_optional(&mut *connection)
            .await?;
        row.as_ref().map(request_from_row).transpose()
    }

    /// Files a request with its audit row and, when `event` is given, its webhook delivery; or
    /// answers the user's pending request for the same permission, writing nothing.
    pub async fn submit_access_request(
        &self,
        request: &RequestRow,
        audit: &AuditRow,
        event: Option<&str>,
    ) -> Result<Submitted, StoreError> {
        let mut transaction = self.pool.begin().await?;
        if let Some(pending) =
            Self::pending_request(&mut transaction, &request.user_id, &request.permission_id)
                .await?
        {
            transaction.rollback().await?;
            return Ok(Submitted::Pending(pending));
        }
        let sql = format!(
            "INSERT INTO access_requests ({REQUEST_COLUMNS}) VALUES ($1, $2, $3, $4, $5, \
             'pending', NULL, NULL, NULL, $6)"
        );
        let inserted = sqlx::query(&sql)
            .bind(&request.id)
            .bind(&request.user_id)
            .bind(&request.permission_id)
            .bind(&request.reason)
            .bind(request.duration_s)
            .bind(request.created_at)
            .execute(&mut *transaction)
            .await;
        if let Err(error) = inserted {
            transaction.rollback().await?;
            // Another replica filed the same request at the same moment: answer that one.
            if let sqlx::Error::Database(db) = &error
                && db.is_unique_violation()
            {
                let mut connection = self.pool.acquire().await?;
                if let Some(pending) =
                    Self::pending_request(&mut connection, &request.user_id, &request.permission_id)
                        .await?
                {
                    return Ok(Submitted::Pending(pending));
                }
            }
            return Err(error.into());
        }
        self.append_audit_in(&mut transaction, std::slice::from_ref(audit))
            .await?;
        if let Some(event) = event {
            Self::enqueue_webhook(&mut transaction, event, request.created_at).await?;
        }
        transaction.commit().await?;
        Ok(Submitted::New(RequestRow {
            status: "pending".into(),
            ..request.clone()
        }))
    }

    /// Requests, newest first.
    pub async fn access_requests(
        &self,
        filter: &RequestFilter<'_>,
    ) -> Result<Vec<RequestRow>, StoreError> {
        let columns: Vec<String> = REQUEST_COLUMNS
            .split(", ")
            .map(|column| format!("r.{column}"))
            .collect();
        let sql = format!(
            "SELECT {} FROM access_requests r LEFT JOIN permissions p ON p.id = r.permission_id \
             WHERE ($1 = '' OR r.user_id = $1) AND ($2 = '' OR r.status = $2) \
             AND ($3 = '' OR p.server_id = $3) ORDER BY r.created_at DESC, r.id LIMIT $4",
            columns.join(", ")
        );
        let rows = sqlx::query(&sql)
            .bind(filter.user_id.unwrap_or_default())
            .bind(filter.status.unwrap_or_default())
            .bind(filter.server_id.unwrap_or_default())
            .bind(filter.limit)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(request_from_row).collect()
    }

    pub async fn access_request(&self, id: &str) -> Result<Option<RequestRow>, StoreError> {
        let sql = format!("SELECT {REQUEST_COLUMNS} FROM access_requests WHERE id = $1");
        let row = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(request_from_row).transpose()
    }

    /// Decides a pending request: its status, the grant an approval makes, the audit row and
    /// the webhook delivery, in one transaction. False when it is not pending (decided already,
    /// or no such request): nothing is written.
    pub async fn decide_access_request(
        &self,
        id: &str,
        decision: &Decision<'_>,
        audit: &AuditRow,
        event: Option<&str>,
    ) -> Result<bool, StoreError> {
        let mut transaction = self.pool.begin().await?;
        let updated = sqlx::query(
            "UPDATE access_requests SET status = $2, decided_by = $3, decision_reason = $4, \
             decided_at = $5 WHERE id = $1 AND status = 'pending'",
        )
        .bind(id)
        .bind(decision.status)
        .bind(decision.decided_by)
        .bind(decision.reason)
        .bind(decision.at)
        .execute(&mut *transaction)
        .await?
        .rows_affected();
        if updated == 0 {
            transaction.rollback().await?;
            return Ok(false);
        }
        if let Some(grant) = decision.grant {
            self.insert_grant_in(&mut transaction, grant).await?;
            self.bump_access_version(&mut transaction).await?;
        }
        self.append_audit_in(&mut transaction, std::slice::from_ref(audit))
            .await?;
        if let Some(event) = event {
            Self::enqueue_webhook(&mut transaction, event, decision.at).await?;
        }
        transaction.commit().await?;
        Ok(true)
    }

    /// The organization's settings as JSON; `None` until first set.
    pub async fn org_settings(&self) -> Result<Option<String>, StoreError> {
        self.setting(ORG_SETTINGS).await
    }

    /// Replaces the organization's settings, with the audit row, and moves the access version:
    /// they decide what users may do, and every replica reads them with the grants.
    pub async fn set_org_settings(&self, json: &str, audit: &AuditRow) -> Result<(), StoreError> {
        let mut transaction = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) \
             DO UPDATE SET value = excluded.value",
        )
        .bind(ORG_SETTINGS)
        .bind(json)
        .execute(&mut *transaction)
        .await?;
        self.bump_access_version(&mut transaction).await?;
        self.append_audit_in(&mut transaction, std::slice::from_ref(audit))
            .await?;
        transaction.commit().await?;
        Ok(())
    }

    async fn enqueue_webhook(
        connection: &mut sqlx::AnyConnection,
        event: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO webhook_deliveries (id, event, attempts, next_at, created_at) \
             VALUES ($1, $2, 0, $3, $3)",
        )
        .bind(format!("whd_{}", uuid::Uuid::new_v4().simple()))
        .bind(event)
        .bind(now)
        .execute(&mut *connection)
        .await?;
        Ok(())
    }

    /// Claims up to `limit` deliveries that are due at `now`, each for `lease` milliseconds: no
    /// other replica takes it meanwhile, and one whose attempt never reported is due again after.
    pub async fn claim_webhooks(
        &self,
        now: i64,
        lease: i64,
        limit: i64,
    ) -> Result<Vec<Delivery>, StoreError> {
        let due = sqlx::query(
            "SELECT id, event, attempts, next_at FROM webhook_deliveries WHERE \
             delivered_at IS NULL AND failed_at IS NULL AND next_at <= $1 \
             ORDER BY next_at LIMIT $2",
        )
        .bind(now)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        let mut claimed = Vec::new();
        for row in &due {
            let id: String = row.try_get("id")?;
            let next_at: i64 = row.try_get("next_at")?;
            let taken = sqlx::query(
                "UPDATE webhook_deliveries SET next_at = $3 WHERE id = $1 AND next_at = $2 \
                 AND delivered_at IS NULL AND failed_at IS NULL",
            )
            .bind(&id)
            .bind(next_at)
            .bind(now + lease)
            .execute(&self.pool)
            .await?
            .rows_affected();
            if taken == 1 {
                claimed.push(Delivery {
                    id,
                    event: row.try_get("event")?,
                    attempts: row.try_get("attempts")?,
                });
            }
        }
        Ok(claimed)
    }

    /// Deletes the deliveries made or given up on before `before` (Unix milliseconds), with the
    /// audit log's retention; returns how many. Those still due stay whatever their age.
    pub async fn prune_webhooks(&self, before: i64) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "DELETE FROM webhook_deliveries WHERE created_at < $1 \
             AND (delivered_at IS NOT NULL OR failed_at IS NOT NULL)",
        )
        .bind(before)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    /// Records an attempt: delivered, or failed and due again at `retry_at` (`None`: given up).
    pub async fn webhook_attempted(
        &self,
        id: &str,
        now: i64,
        failure: Option<(&str, Option<i64>)>,
    ) -> Result<(), StoreError> {
        let query = match failure {
            None => sqlx::query(
                "UPDATE webhook_deliveries SET attempts = attempts + 1, delivered_at = $2, \
                 last_error = NULL WHERE id = $1",
            )
            .bind(id)
            .bind(now),
            Some((error, Some(retry_at))) => sqlx::query(
                "UPDATE webhook_deliveries SET attempts = attempts + 1, next_at = $2, \
                 last_error = $3 WHERE id = $1",
            )
            .bind(id)
            .bind(retry_at)
            .bind(error),
            Some((error, None)) => sqlx::query(
                "UPDATE webhook_deliveries SET attempts = attempts + 1, failed_at = $2, \
                 last_error = $3 WHERE id = $1",
            )
            .bind(id)
            .bind(now)
            .bind(error),
        };
        query.execute(&self.pool).await?;
        Ok(())
    }
}
