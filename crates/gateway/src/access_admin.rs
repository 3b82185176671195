//! Managing who may use what: each server's permissions, grants to users and groups, and
//! groups. Every change is checked here, written with its audit row, read again at once by this
//! replica (and within a second by the others), and heard by open sessions as list changes.

use serde::{Deserialize, Serialize};
use switchboard_store::{GrantRow, GroupRow, PermissionRow};

use crate::{Gateway, GatewayError, audit::AdminAction};

/// Which tools a permission holds, as the API writes it: `"all"`, `"readOnly"`, or a list of
/// tool names as clients see them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ToolSet {
    Rule(String),
    Names(Vec<String>),
}

impl ToolSet {
    fn of(row: &PermissionRow) -> Self {
        match row.selector.as_str() {
            "all" => ToolSet::Rule("all".into()),
            "read_only" => ToolSet::Rule("readOnly".into()),
            _ => ToolSet::Names(row.tools.clone()),
        }
    }

    /// The stored selector and names.
    fn stored(&self) -> Result<(&'static str, Vec<String>), GatewayError> {
        match self {
            ToolSet::Rule(rule) if rule == "all" => Ok(("all", Vec::new())),
            ToolSet::Rule(rule) if rule == "readOnly" => Ok(("read_only", Vec::new())),
            ToolSet::Rule(other) => Err(GatewayError::Invalid(format!(
                "`tools` is \"all\", \"readOnly\" or a list of tool names, not {other:?}"
            ))),
            ToolSet::Names(names) => {
                if names.is_empty() || names.iter().any(|name| name.trim().is_empty()) {
                    return Err(GatewayError::Invalid(
                        "`tools` must name at least one tool, and no empty name".into(),
                    ));
                }
                Ok(("list", names.clone()))
            }
        }
    }
}

/// A permission as the API shows it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PermissionView {
    pub id: String,
    pub server_id: String,
    pub label: String,
    pub description: String,
    pub tools: ToolSet,
    pub requestable: bool,
    pub max_duration_seconds: Option<i64>,
}

impl From<&PermissionRow> for PermissionView {
    fn from(row: &PermissionRow) -> Self {
        Self {
            id: row.id.clone(),
            server_id: row.server_id.clone(),
            label: row.label.clone(),
            description: row.description.clone(),
            tools: ToolSet::of(row),
            requestable: row.requestable,
            max_duration_seconds: row.max_duration_s,
        }
    }
}

/// A new permission, or the fields of one that change.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PermissionBody {
    pub label: Option<String>,
    pub description: Option<String>,
    pub tools: Option<ToolSet>,
    pub requestable: Option<bool>,
    /// `null` removes the limit.
    #[serde(default, with = "serde_with_null")]
    pub max_duration_seconds: Option<Option<i64>>,
}

/// Tells a field left out (`None`) from one set to `null` (`Some(None)`).
mod serde_with_null {
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Option<i64>>, D::Error> {
        <Option<i64> as serde::Deserialize>::deserialize(d).map(Some)
    }
}

/// A grant as the API shows it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GrantView {
    pub id: String,
    pub permission_id: String,
    /// `user` or `group`.
    pub subject_kind: String,
    pub subject_id: String,
    pub expires_at: Option<i64>,
    pub created_at: i64,
    pub created_by: String,
}

impl From<&GrantRow> for GrantView {
    fn from(row: &GrantRow) -> Self {
        Self {
            id: row.id.clone(),
            permission_id: row.permission_id.clone(),
            subject_kind: row.subject_kind.clone(),
            subject_id: row.subject_id.clone(),
            expires_at: row.expires_at,
            created_at: row.created_at,
            created_by: row.created_by.clone(),
        }
    }
}

/// A new grant: a permission, for one user or one group, until a time or for a duration (or
/// until revoked).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GrantBody {
    pub permission: String,
    /// A user's id or username.
    pub user: Option<String>,
    /// A group's id or name.
    pub group: Option<String>,
    /// Unix milliseconds.
    pub expires_at: Option<i64>,
    pub duration_seconds: Option<i64>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupView {
    pub id: String,
    pub name: String,
    pub description: String,
    pub source: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GroupBody {
    pub name: String,
    #[serde(default)]
    pub description: String,
}

fn label_of(text: &str) -> Result<String, GatewayError> {
    let label = text.trim();
    if label.is_empty() || label.chars().count() > 80 {
        return Err(GatewayError::Invalid(
            "`label` needs 1 to 80 characters".into(),
        ));
    }
    Ok(label.to_string())
}

fn description_of(text: &str) -> Result<String, GatewayError> {
    if text.chars().count() > 300 {
        return Err(GatewayError::Invalid(
            "`description` is one line of at most 300 characters".into(),
        ));
    }
    Ok(text.trim().to_string())
}

fn max_duration_of(seconds: Option<i64>) -> Result<Option<i64>, GatewayError> {
    match seconds {
        Some(seconds) if seconds <= 0 => Err(GatewayError::Invalid(
            "`maxDurationSeconds` must be positive, or null for no limit".into(),
        )),
        other => Ok(other),
    }
}

pub(crate) fn random_id(prefix: &str) -> String {
    format!("{prefix}{}", uuid::Uuid::new_v4().simple())
}

impl Gateway {
    /// The permissions of a server (by id or alias).
    pub async fn permissions(&self, server: &str) -> Result<Vec<PermissionView>, GatewayError> {
        let id = self.resolved(server).await?.id.clone();
        let rows = self.store().permissions(Some(&id)).await?;
        Ok(rows.iter().map(PermissionView::from).collect())
    }

    pub async fn create_permission(
        &self,
        server: &str,
        body: PermissionBody,
        action: &AdminAction,
    ) -> Result<PermissionView, GatewayError> {
        let server_id = self.resolved(server).await?.id.clone();
        let (selector, tools) = body
            .tools
            .as_ref()
            .ok_or_else(|| GatewayError::Invalid("`tools` is required".into()))?
            .stored()?;
        let now = crate::now_ms();
        let row = PermissionRow {
            id: random_id("prm_"),
            server_id,
            label: label_of(body.label.as_deref().unwrap_or_default())?,
            description: description_of(body.description.as_deref().unwrap_or_default())?,
            selector: selector.into(),
            tools,
            requestable: body.requestable.unwrap_or(true),
            max_duration_s: max_duration_of(body.max_duration_seconds.flatten())?,
            created_at: now,
            updated_at: now,
        };
        self.store()
            .insert_permission(&row, &action.done(server))
            .await?;
        self.access_changed().await?;
        Ok(PermissionView::from(&row))
    }

    pub async fn update_permission(
        &self,
        id: &str,
        body: PermissionBody,
        action: &AdminAction,
    ) -> Result<PermissionView, GatewayError> {
        let mut row = self
            .store()
            .permission(id)
            .await?
            .ok_or_else(|| GatewayError::NotFound(format!("permission {id}")))?;
        if let Some(label) = &body.label {
            row.label = label_of(label)?;
        }
        if let Some(description) = &body.description {
            row.description = description_of(description)?;
        }
        if let Some(tools) = &body.tools {
            let (selector, names) = tools.stored()?;
            row.selector = selector.into();
            row.tools = names;
        }
        if let Some(requestable) = body.requestable {
            row.requestable = requestable;
        }
        if let Some(limit) = body.max_duration_seconds {
            row.max_duration_s = max_duration_of(limit)?;
        }
        row.updated_at = crate::now_ms();
        if !self
            .store()
            .update_permission(&row, &action.done(&row.server_id))
            .await?
        {
            return Err(GatewayError::NotFound(format!("permission {id}")));
        }
        self.access_changed().await?;
        Ok(PermissionView::from(&row))
    }

    pub async fn delete_permission(
        &self,
        id: &str,
        action: &AdminAction,
    ) -> Result<(), GatewayError> {
        if !self.store().delete_permission(id, &action.done("")).await? {
            return Err(GatewayError::NotFound(format!("permission {id}")));
        }
        self.access_changed().await
    }

    /// Every grant, newest last.
    pub async fn grants(&self) -> Result<Vec<GrantView>, GatewayError> {
        let rows = self.store().access_rows().await?;
        Ok(rows.grants.iter().map(GrantView::from).collect())
    }

    pub async fn create_grant(
        &self,
        body: GrantBody,
        action: &AdminAction,
    ) -> Result<GrantView, GatewayError> {
        let permission = self
            .store()
            .permission(&body.permission)
            .await?
            .ok_or_else(|| GatewayError::NotFound(format!("permission {}", body.permission)))?;
        let (kind, subject) = match (&body.user, &body.group) {
            (Some(user), None) => {
                let user = self
                    .store()
                    .user(user)
                    .await?
                    .ok_or_else(|| GatewayError::NotFound(format!("user {user}")))?;
                ("user", user.id)
            }
            (None, Some(group)) => {
                let group = self
                    .store()
                    .group(group)
                    .await?
                    .ok_or_else(|| GatewayError::NotFound(format!("group {group}")))?;
                ("group", group.id)
            }
            _ => {
                return Err(GatewayError::Invalid(
                    "a grant is for one `user` or one `group`".into(),
                ));
            }
        };
        let now = crate::now_ms();
        let expires_at = match (body.expires_at, body.duration_seconds) {
            (Some(_), Some(_)) => {
                return Err(GatewayError::Invalid(
                    "give `expiresAt` or `durationSeconds`, not both".into(),
                ));
            }
            (Some(at), None) if at <= now => {
                return Err(GatewayError::Invalid("`expiresAt` is in the past".into()));
            }
            (Some(at), None) => Some(at),
            (None, Some(seconds)) if seconds <= 0 => {
                return Err(GatewayError::Invalid(
                    "`durationSeconds` must be positive".into(),
                ));
            }
            (None, Some(seconds)) => Some(now.saturating_add(seconds.saturating_mul(1000))),
            (None, None) => None,
        };
        let row = GrantRow {
            id: random_id("grt_"),
            permission_id: permission.id.clone(),
            subject_kind: kind.into(),
            subject_id: subject,
            expires_at,
            created_at: now,
            created_by: action.actor.clone(),
            request_id: None,
        };
        self.store()
            .insert_grant(&row, &action.done(&permission.server_id))
            .await?;
        self.access_changed().await?;
        Ok(GrantView::from(&row))
    }

    pub async fn delete_grant(&self, id: &str, action: &AdminAction) -> Result<(), GatewayError> {
        if !self.store().delete_grant(id, &action.done("")).await? {
            return Err(GatewayError::NotFound(format!("grant {id}")));
        }
        self.access_changed().await
    }

    pub async fn groups(&self) -> Result<Vec<GroupView>, GatewayError> {
        Ok(self
            .store()
            .groups()
            .await?
            .into_iter()
            .map(|group| GroupView {
                id: group.id,
                name: group.name,
                description: group.description,
                source: group.source,
            })
            .collect())
    }

    pub async fn create_group(
        &self,
        body: GroupBody,
        action: &AdminAction,
    ) -> Result<GroupView, GatewayError> {
        let name = body.name.trim();
        let valid = (1..=64).contains(&name.chars().count())
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | ' '));
        if !valid {
            return Err(GatewayError::Invalid(
                "a group's name has 1 to 64 letters, digits, spaces or `.`, `_`, `-`".into(),
            ));
        }
        let row = GroupRow {
            id: random_id("grp_"),
            name: name.to_string(),
            description: description_of(&body.description)?,
            source: "local".into(),
            created_at: crate::now_ms(),
        };
        self.store().insert_group(&row, &action.done("")).await?;
        self.access_changed().await?;
        Ok(GroupView {
            id: row.id,
            name: row.name,
            description: row.description,
            source: row.source,
        })
    }

    pub async fn delete_group(&self, id: &str, action: &AdminAction) -> Result<(), GatewayError> {
        let group = self
            .store()
            .group(id)
            .await?
            .ok_or_else(|| GatewayError::NotFound(format!("group {id}")))?;
        self.store()
            .delete_group(&group.id, &action.done(""))
            .await?;
        self.access_changed().await
    }

    /// Adds a user to a group (`member`) or takes them out; idempotent.
    pub async fn set_member(
        &self,
        group: &str,
        user: &str,
        member: bool,
        action: &AdminAction,
    ) -> Result<(), GatewayError> {
        let group = self
            .store()
            .group(group)
            .await?
            .ok_or_else(|| GatewayError::NotFound(format!("group {group}")))?;
        let user = self
            .store()
            .user(user)
            .await?
            .ok_or_else(|| GatewayError::NotFound(format!("user {user}")))?;
        self.store()
            .set_membership(&group.id, &user.id, member, &action.done(""))
            .await?;
        self.access_changed().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tool_sets_read_as_rules_or_names() {
        let all: ToolSet = serde_json::from_value(serde_json::json!("all")).expect("all");
        assert_eq!(all.stored().expect("ok").0, "all");
        let read: ToolSet = serde_json::from_value(serde_json::json!("readOnly")).expect("ro");
        assert_eq!(read.stored().expect("ok").0, "read_only");
        let names: ToolSet = serde_json::from_value(serde_json::json!(["add"])).expect("names");
        assert_eq!(
            names.stored().expect("ok"),
            ("list", vec!["add".to_string()])
        );
        for bad in [
            serde_json::json!("some"),
            serde_json::json!([]),
            serde_json::json!([""]),
        ] {
            let set: ToolSet = serde_json::from_value(bad.clone()).expect("parses");
            assert!(set.stored().is_err(), "{bad}");
        }
    }
}
