//! Access requests: a user asks for a permission with a reason and a duration; an admin approves
//! it (which makes the grant, for the duration asked or a shorter one) or denies it with a
//! reason. Every request and decision is written with its audit row (who, what, when, why) and,
//! when a webhook is set, with its delivery; an approval's grant reaches open sessions as list
//! changes.

use serde::{Deserialize, Serialize};
use serde_json::json;
use switchboard_store::{Decision, GrantRow, RequestFilter, RequestRow, Submitted};

use crate::{Gateway, GatewayError, access_admin::random_id, audit::AdminAction};

/// The longest reason kept.
const MAX_REASON: usize = 1000;

/// A request as the API shows it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestView {
    pub id: String,
    pub user_id: String,
    pub username: String,
    pub permission_id: String,
    /// The permission's label.
    pub permission: String,
    pub server_id: String,
    /// The server's alias.
    pub server: String,
    pub reason: String,
    pub duration_seconds: Option<i64>,
    /// `pending`, `approved` or `denied`.
    pub status: String,
    pub decided_by: Option<String>,
    pub decision_reason: Option<String>,
    /// Unix milliseconds.
    pub decided_at: Option<i64>,
    pub created_at: i64,
}

/// A user's request.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SubmitBody {
    /// The permission's id.
    pub permission: String,
    pub reason: String,
    /// `None`: for as long as the permission allows (without end when it has no limit).
    pub duration_seconds: Option<i64>,
}

/// An approval: the grant lasts the duration asked, or the shorter one given here.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ApproveBody {
    pub duration_seconds: Option<i64>,
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DenyBody {
    pub reason: String,
}

/// Which requests an admin lists.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RequestQuery {
    pub status: Option<String>,
    /// A user's id or username.
    pub user: Option<String>,
    /// A server's id or alias.
    pub server: Option<String>,
    pub limit: Option<i64>,
}

/// Who asks: a signed-in user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requester {
    pub user_id: String,
    pub username: String,
}

fn reason_of(text: &str, required: bool) -> Result<Option<String>, GatewayError> {
    let reason = text.trim();
    if reason.chars().count() > MAX_REASON {
        return Err(GatewayError::Invalid(format!(
            "the reason has at most {MAX_REASON} characters"
        )));
    }
    if reason.is_empty() {
        return if required {
            Err(GatewayError::Invalid("give a reason".into()))
        } else {
            Ok(None)
        };
    }
    Ok(Some(reason.to_string()))
}

fn positive(seconds: Option<i64>) -> Result<Option<i64>, GatewayError> {
    match seconds {
        Some(seconds) if seconds <= 0 => Err(GatewayError::Invalid(
            "`durationSeconds` must be positive".into(),
        )),
        other => Ok(other),
    }
}

impl Gateway {
    /// A request's view, with the names of its user, permission and server.
    async fn request_view(&self, row: RequestRow) -> Result<RequestView, GatewayError> {
        let username = self
            .store()
            .user(&row.user_id)
            .await?
            .map_or_else(String::new, |user| user.username);
        let permission = self.access().permission(&row.permission_id);
        let server_id = permission
            .as_ref()
            .map_or_else(String::new, |p| p.server_id.clone());
        let server = self.alias_of(&server_id).await?;
        Ok(RequestView {
            id: row.id,
            user_id: row.user_id,
            username,
            permission_id: row.permission_id,
            permission: permission.map_or_else(String::new, |p| p.label.clone()),
            server_id,
            server,
            reason: row.reason,
            duration_seconds: row.duration_s,
            status: row.status,
            decided_by: row.decided_by,
            decision_reason: row.decision_reason,
            decided_at: row.decided_at,
            created_at: row.created_at,
        })
    }

    async fn request_views(&self, rows: Vec<RequestRow>) -> Result<Vec<RequestView>, GatewayError> {
        let mut views = Vec::with_capacity(rows.len());
        for row in rows {
            views.push(self.request_view(row).await?);
        }
        Ok(views)
    }

    /// The webhook's event, when a webhook is set.
    async fn webhook_event(
        &self,
        kind: &str,
        request: &RequestView,
    ) -> Result<Option<String>, GatewayError> {
        if self.webhook_url().await?.is_none() {
            return Ok(None);
        }
        Ok(Some(
            json!({"type": kind, "at": crate::now_ms(), "request": request}).to_string(),
        ))
    }

    /// Files `requester`'s request; answers it and whether it is new (a duplicate of a pending
    /// request answers that one).
    pub async fn submit_access_request(
        &self,
        requester: &Requester,
        body: SubmitBody,
        action: &AdminAction,
    ) -> Result<(RequestView, bool), GatewayError> {
        let permission = self
            .access()
            .permission(&body.permission)
            .ok_or_else(|| GatewayError::NotFound(format!("permission {}", body.permission)))?;
        if !permission.requestable {
            return Err(GatewayError::Forbidden(format!(
                "\"{}\" cannot be requested; ask an admin for it",
                permission.label
            )));
        }
        let reason = reason_of(&body.reason, true)?.unwrap_or_default();
        let duration = positive(body.duration_seconds)?;
        let duration = match (duration, permission.max_duration_s) {
            (Some(asked), Some(limit)) if asked > limit => {
                return Err(GatewayError::Invalid(format!(
                    "\"{}\" may be requested for at most {limit} seconds",
                    permission.label
                )));
            }
            (None, Some(limit)) => Some(limit),
            (asked, _) => asked,
        };
        let now = crate::now_ms();
        let held = self
            .access()
            .held(&requester.user_id, &permission.server_id, now)
            .into_iter()
            .find(|held| held.permission.id == permission.id);
        if let Some(held) = held
            && held.expires_at.is_none()
        {
            return Err(GatewayError::Conflict(format!(
                "you already hold \"{}\"",
                permission.label
            )));
        }
        let row = RequestRow {
            id: random_id("req_"),
            user_id: requester.user_id.clone(),
            permission_id: permission.id.clone(),
            reason,
            duration_s: duration,
            status: "pending".into(),
            decided_by: None,
            decision_reason: None,
            decided_at: None,
            created_at: now,
        };
        let view = self.request_view(row.clone()).await?;
        let event = self.webhook_event("access_request.created", &view).await?;
        let mut audit = action.done(&permission.server_id);
        audit.detail = json!({"request": row.id, "permission": permission.label,
            "reason": view.reason, "durationSeconds": duration})
        .to_string();
        let submitted = self
            .store()
            .submit_access_request(&row, &audit, event.as_deref())
            .await?;
        self.webhooks().wake();
        match submitted {
            Submitted::New(_) => Ok((view, true)),
            Submitted::Pending(pending) => Ok((self.request_view(pending).await?, false)),
        }
    }

    /// A user's own requests, newest first.
    pub async fn my_access_requests(
        &self,
        user_id: &str,
    ) -> Result<Vec<RequestView>, GatewayError> {
        let rows = self
            .store()
            .access_requests(&RequestFilter {
                user_id: Some(user_id),
                limit: 200,
                ..RequestFilter::default()
            })
            .await?;
        self.request_views(rows).await
    }

    /// Requests, filtered, newest first.
    pub async fn access_requests(
        &self,
        query: &RequestQuery,
    ) -> Result<Vec<RequestView>, GatewayError> {
        if let Some(status) = &query.status
            && !matches!(status.as_str(), "pending" | "approved" | "denied")
        {
            return Err(GatewayError::Invalid(
                "`status` is pending, approved or denied".into(),
            ));
        }
        let user_id = match &query.user {
            Some(user) => Some(
                self.store()
                    .user(user)
                    .await?
                    .ok_or_else(|| GatewayError::NotFound(format!("user {user}")))?
                    .id,
            ),
            None => None,
        };
        let server_id = match &query.server {
            Some(server) => Some(self.resolved(server).await?.id.clone()),
            None => None,
        };
        let rows = self
            .store()
            .access_requests(&RequestFilter {
                user_id: user_id.as_deref(),
                status: query.status.as_deref(),
                server_id: server_id.as_deref(),
                limit: query.limit.unwrap_or(100).clamp(1, 1000),
            })
            .await?;
        self.request_views(rows).await
    }

    /// A pending request, or why it cannot be decided.
    async fn pending(&self, id: &str) -> Result<RequestRow, GatewayError> {
        let row = self
            .store()
            .access_request(id)
            .await?
            .ok_or_else(|| GatewayError::NotFound(format!("access request {id}")))?;
        if row.status != "pending" {
            return Err(GatewayError::Conflict(format!(
                "the request was {} already",
                row.status
            )));
        }
        Ok(row)
    }

    /// Approves a pending request: the grant is made for the duration asked, or the shorter
    /// one given.
    pub async fn approve_access_request(
        &self,
        id: &str,
        body: ApproveBody,
        action: &AdminAction,
    ) -> Result<RequestView, GatewayError> {
        let row = self.pending(id).await?;
        let duration = match (positive(body.duration_seconds)?, row.duration_s) {
            (Some(given), Some(asked)) if given > asked => {
                return Err(GatewayError::Invalid(format!(
                    "the request asked for {asked} seconds; approve it for that or less"
                )));
            }
            (Some(given), _) => Some(given),
            (None, asked) => asked,
        };
        let reason = reason_of(body.reason.as_deref().unwrap_or_default(), false)?;
        let now = crate::now_ms();
        let grant = GrantRow {
            id: random_id("grt_"),
            permission_id: row.permission_id.clone(),
            subject_kind: "user".into(),
            subject_id: row.user_id.clone(),
            expires_at: duration.map(|seconds| now.saturating_add(seconds.saturating_mul(1000))),
            created_at: now,
            created_by: action.actor.clone(),
            request_id: Some(row.id.clone()),
        };
        let decided = RequestRow {
            status: "approved".into(),
            decided_by: Some(action.actor.clone()),
            decision_reason: reason.clone(),
            decided_at: Some(now),
            duration_s: duration,
            ..row
        };
        self.decide_request(decided, Some(&grant), action).await
    }

    /// Denies a pending request, with a reason.
    pub async fn deny_access_request(
        &self,
        id: &str,
        body: DenyBody,
        action: &AdminAction,
    ) -> Result<RequestView, GatewayError> {
        let row = self.pending(id).await?;
        let reason = reason_of(&body.reason, true)?;
        let decided = RequestRow {
            status: "denied".into(),
            decided_by: Some(action.actor.clone()),
            decision_reason: reason,
            decided_at: Some(crate::now_ms()),
            ..row
        };
        self.decide_request(decided, None, action).await
    }

    async fn decide_request(
        &self,
        decided: RequestRow,
        grant: Option<&GrantRow>,
        action: &AdminAction,
    ) -> Result<RequestView, GatewayError> {
        let view = self.request_view(decided.clone()).await?;
        let event = self
            .webhook_event(&format!("access_request.{}", decided.status), &view)
            .await?;
        let mut audit = action.done(&view.server_id);
        audit.detail = json!({"request": decided.id, "user": view.username,
            "permission": view.permission, "reason": decided.decision_reason,
            "grant": grant.map(|grant| &grant.id), "expiresAt": grant.and_then(|g| g.expires_at)})
        .to_string();
        let decision = Decision {
            status: &decided.status,
            decided_by: decided.decided_by.as_deref().unwrap_or_default(),
            reason: decided.decision_reason.as_deref(),
            at: decided.decided_at.unwrap_or_default(),
            grant,
        };
        if !self
            .store()
            .decide_access_request(&decided.id, &decision, &audit, event.as_deref())
            .await?
        {
            return Err(GatewayError::Conflict(
                "the request was decided already".into(),
            ));
        }
        self.webhooks().wake();
        if grant.is_some() {
            self.access_changed().await?;
        }
        Ok(view)
    }
}
