//! Users as admins manage them: listed, added (with a password given or one made and shown
//! once), given a role, disabled or enabled, their password reset. The rules are the sign-in
//! crate's (`switchboard_auth::sign_in`): a disabled user's tokens and sessions end, and a user
//! whose role changes gets tokens that name the new one. Each change is audited.

use serde::{Deserialize, Serialize};
use serde_json::json;
use switchboard_auth::{Role, sign_in, sign_in::UserError};
use switchboard_store::UserRow;

use crate::{Gateway, GatewayError, audit::AdminAction};

/// A user as the API shows it: never a password hash.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UserView {
    pub id: String,
    pub username: String,
    pub name: String,
    pub email: String,
    pub role: String,
    pub disabled: bool,
    /// `local` (signs in with a password) or `oidc` (through the organization's provider).
    pub source: &'static str,
    pub created_at: i64,
}

impl From<&UserRow> for UserView {
    fn from(user: &UserRow) -> Self {
        Self {
            id: user.id.clone(),
            username: user.username.clone(),
            name: user.name.clone(),
            email: user.email.clone(),
            role: user.role.clone(),
            disabled: user.disabled,
            source: if user.password_hash.is_some() {
                "local"
            } else {
                "oidc"
            },
            created_at: user.created_at,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewUserBody {
    pub username: String,
    /// `admin` or `user` (the default).
    pub role: Option<String>,
    /// Made and answered once when left out.
    pub password: Option<String>,
}

/// A new user, with the password made for them (shown once) when none was given.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NewUser {
    pub user: UserView,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
}

/// The fields of a user that change.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UserBody {
    pub role: Option<String>,
    pub disabled: Option<bool>,
}

fn role_of(name: &str) -> Result<Role, GatewayError> {
    Role::parse(name).ok_or_else(|| GatewayError::Invalid("`role` is admin or user".into()))
}

impl From<UserError> for GatewayError {
    fn from(error: UserError) -> Self {
        match error {
            UserError::NotFound(name) => GatewayError::NotFound(format!("user {name}")),
            UserError::Taken(_) => GatewayError::Conflict(error.to_string()),
            UserError::BadName | UserError::Password(_) => GatewayError::Invalid(error.to_string()),
            UserError::Store(error) => GatewayError::from(error),
        }
    }
}

impl Gateway {
    pub async fn users(&self) -> Result<Vec<UserView>, GatewayError> {
        Ok(self
            .store()
            .users()
            .await?
            .iter()
            .map(UserView::from)
            .collect())
    }

    async fn user_named(&self, id_or_username: &str) -> Result<UserRow, GatewayError> {
        self.store()
            .user(id_or_username)
            .await?
            .ok_or_else(|| GatewayError::NotFound(format!("user {id_or_username}")))
    }

    /// Records a change done to a user; the sign-in crate's changes span statements of their
    /// own, so the row follows them through the audit writer.
    fn audit_user_change(&self, action: &AdminAction, user: &UserRow, detail: serde_json::Value) {
        let mut entry = action.entry("ok", json!({"user": user.username, "change": detail}));
        entry.server = String::new();
        self.audit().record(entry);
    }

    pub async fn add_user(
        &self,
        body: NewUserBody,
        action: &AdminAction,
    ) -> Result<NewUser, GatewayError> {
        let role = role_of(body.role.as_deref().unwrap_or("user"))?;
        let (user, password) = sign_in::add_user(
            self.store(),
            body.username.trim(),
            role,
            body.password.as_deref(),
        )
        .await?;
        self.audit_user_change(action, &user, json!({"role": user.role}));
        Ok(NewUser {
            user: UserView::from(&user),
            password,
        })
    }

    /// Changes a user's role or disabled flag (or both).
    pub async fn update_user(
        &self,
        id_or_username: &str,
        body: UserBody,
        action: &AdminAction,
    ) -> Result<UserView, GatewayError> {
        let mut user = self.user_named(id_or_username).await?;
        let demoting = body.role.as_deref().is_some_and(|role| role != "admin");
        if user.username == action.actor && (demoting || body.disabled == Some(true)) {
            return Err(GatewayError::Invalid(
                "you cannot demote or disable yourself; another admin can".into(),
            ));
        }
        let ttl = self.settings().access_token_ttl;
        if let Some(role) = &body.role {
            user = sign_in::set_role(self.store(), &user.username, role_of(role)?, ttl).await?;
        }
        if let Some(disabled) = body.disabled {
            user = sign_in::set_disabled(self.store(), &user.username, disabled, ttl).await?;
        }
        self.audit_user_change(
            action,
            &user,
            json!({"role": body.role, "disabled": body.disabled}),
        );
        self.access_changed().await?;
        Ok(UserView::from(&user))
    }

    /// Sets a user's password, or makes one (answered once); their browser sessions end.
    pub async fn reset_user_password(
        &self,
        id_or_username: &str,
        password: Option<&str>,
        action: &AdminAction,
    ) -> Result<Option<String>, GatewayError> {
        let user = self.user_named(id_or_username).await?;
        if user.password_hash.is_none() {
            return Err(GatewayError::Invalid(
                "this user signs in through the organization's provider; they have no password here"
                    .into(),
            ));
        }
        let made = sign_in::reset_password(self.store(), &user.username, password).await?;
        self.audit_user_change(action, &user, json!("password reset"));
        Ok(made)
    }
}
