//! The admins' people page: users and their roles, grants, groups and self-service settings,
//! each changed with a form and through the gateway's rules, audited.

use axum::{
    Form,
    extract::{Path, State},
    response::{IntoResponse, Redirect, Response},
};
use axum_extra::extract::cookie::CookieJar;
use switchboard_gateway::{
    access_admin::{GrantBody, GroupBody},
    org_settings::{SelfService, SettingsBody},
    users_admin::{NewUserBody, UserBody},
};

use super::{
    Viewer,
    pages::{self, show},
};
use crate::AppState;

const PEOPLE: &str = "/console/admin/people";

const MODES: [(&str, &str); 3] = [
    ("on", "On: users search and request"),
    ("readOnly", "Read-only: users search but do not request"),
    ("off", "Off"),
];

/// The people page, with a notice, a problem, or a password just made to show.
async fn people_page(
    state: &AppState,
    viewer: Viewer,
    notice: Option<&'static str>,
    problem: Option<String>,
    made_password: Option<(String, String)>,
) -> Response {
    let gateway = &state.gateway;
    let loaded = async {
        let users = gateway.users().await?;
        let grants = gateway.grants().await?;
        let groups = gateway.groups().await?;
        let settings = gateway.settings_view().await?;
        let mut permissions = Vec::new();
        for permission in gateway.access().permissions() {
            let alias = gateway.alias_of(&permission.server_id).await?;
            permissions.push((
                permission.id.clone(),
                format!("{} on {alias}", permission.label),
            ));
        }
        Ok::<_, switchboard_gateway::GatewayError>((users, grants, groups, settings, permissions))
    }
    .await;
    let (users, grants, groups, settings, permissions) = match loaded {
        Ok(loaded) => loaded,
        Err(error) => return viewer.failed(&error.to_string()),
    };
    let user_name = |id: &str| {
        users
            .iter()
            .find(|user| user.id == id)
            .map_or_else(|| id.to_string(), |user| user.username.clone())
    };
    let group_name = |id: &str| {
        groups
            .iter()
            .find(|group| group.id == id)
            .map_or_else(|| id.to_string(), |group| format!("group {}", group.name))
    };
    let permission_name = |id: &str| {
        permissions
            .iter()
            .find(|(permission, _)| permission == id)
            .map_or_else(|| id.to_string(), |(_, name)| name.clone())
    };
    let grants = grants
        .iter()
        .map(|grant| pages::GrantRow {
            id: grant.id.clone(),
            permission: permission_name(&grant.permission_id),
            subject: if grant.subject_kind == "group" {
                group_name(&grant.subject_id)
            } else {
                user_name(&grant.subject_id)
            },
            until: pages::until(grant.expires_at),
        })
        .collect();
    let mut subjects: Vec<(String, String)> = users
        .iter()
        .filter(|user| !user.disabled)
        .map(|user| (format!("user:{}", user.id), user.username.clone()))
        .collect();
    subjects.extend(groups.iter().map(|group| {
        (
            format!("group:{}", group.id),
            format!("group {}", group.name),
        )
    }));
    let mode_words = |mode: SelfService| {
        MODES
            .iter()
            .find(|(value, _)| {
                serde_json::to_value(mode)
                    .ok()
                    .as_ref()
                    .and_then(|v| v.as_str())
                    == Some(*value)
            })
            .map_or("", |(_, words)| *words)
            .to_string()
    };
    let self_service = serde_json::to_value(settings.self_service)
        .ok()
        .and_then(|value| value.as_str().map(str::to_string))
        .unwrap_or_default();
    let page = pages::PeoplePage {
        frame: viewer.frame(state, "people", notice, problem).await,
        made_password,
        grants,
        permissions,
        subjects,
        durations: pages::request_durations(None),
        groups: groups
            .iter()
            .map(|group| (group.name.clone(), group.source.clone()))
            .collect(),
        self_service,
        modes: MODES.to_vec(),
        group_modes: settings
            .groups
            .iter()
            .map(|(group, mode)| (group.clone(), mode_words(*mode)))
            .collect(),
        webhook: settings.webhook_url.unwrap_or_default(),
        users,
    };
    show(page.frame.status(), viewer.jar, &page)
}

pub(super) async fn people(State(state): State<AppState>, jar: CookieJar) -> Response {
    let viewer = match Viewer::admin_page(&state, jar, PEOPLE).await {
        Ok(viewer) => viewer,
        Err(answer) => return answer,
    };
    people_page(&state, viewer, None, None, None).await
}

/// A change refused: audited, and its reason shown on the page.
async fn refused(
    state: &AppState,
    viewer: Viewer,
    action: &switchboard_gateway::audit::AdminAction,
    error: switchboard_gateway::GatewayError,
) -> Response {
    let problem = super::refusal(state, action, error);
    people_page(state, viewer, None, Some(problem), None).await
}

/// Runs one change of the page for an admin who may write, and shows the page again.
async fn change<T>(
    state: AppState,
    jar: CookieJar,
    csrf: &str,
    action: &str,
    run: impl AsyncFnOnce(
        &switchboard_gateway::audit::AdminAction,
    ) -> Result<T, switchboard_gateway::GatewayError>,
) -> Response {
    let viewer = match Viewer::admin_form(&state, jar, PEOPLE, csrf).await {
        Ok(viewer) => viewer,
        Err(answer) => return answer,
    };
    let action = viewer.action(action, "");
    match run(&action).await {
        Ok(_) => Redirect::to(PEOPLE).into_response(),
        Err(error) => refused(&state, viewer, &action, error).await,
    }
}

#[derive(Debug, serde::Deserialize)]
pub(super) struct NewUserForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    role: String,
}

/// Adds a user; their password is made and shown once, on the page this answers.
pub(super) async fn add_user(
    State(state): State<AppState>,
    jar: CookieJar,
    Form(form): Form<NewUserForm>,
) -> Response {
    let viewer = match Viewer::admin_form(&state, jar, PEOPLE, &form.csrf).await {
        Ok(viewer) => viewer,
        Err(answer) => return answer,
    };
    let action = viewer.action("console.user.create", "");
    let body = NewUserBody {
        username: form.username,
        role: Some(form.role),
        password: None,
    };
    match state.gateway.add_user(body, &action).await {
        Ok(made) => {
            let shown = made.password.map(|password| (made.user.username, password));
            people_page(&state, viewer, None, None, shown).await
        }
        Err(error) => refused(&state, viewer, &action, error).await,
    }
}

#[derive(Debug, serde::Deserialize)]
pub(super) struct UserForm {
    #[serde(default)]
    csrf: String,
    role: Option<String>,
    disabled: Option<bool>,
}

pub(super) async fn update_user(
    State(state): State<AppState>,
    jar: CookieJar,
    Path(id): Path<String>,
    Form(form): Form<UserForm>,
) -> Response {
    let body = UserBody {
        role: form.role,
        disabled: form.disabled,
    };
    let gateway = state.gateway.clone();
    change(
        state,
        jar,
        &form.csrf,
        "console.user.update",
        async |action| gateway.update_user(&id, body, action).await,
    )
    .await
}

#[derive(Debug, serde::Deserialize)]
pub(super) struct GrantForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    permission: String,
    /// `user:<id>` or `group:<id>`.
    #[serde(default)]
    to: String,
    /// Seconds; empty for until revoked.
    #[serde(default)]
    duration: String,
}

pub(super) async fn grant(
    State(state): State<AppState>,
    jar: CookieJar,
    Form(form): Form<GrantForm>,
) -> Response {
    let gateway = state.gateway.clone();
    change(
        state,
        jar,
        &form.csrf.clone(),
        "console.grant.create",
        async |action| {
            let duration_seconds = super::seconds(&form.duration).map_err(|()| {
                switchboard_gateway::GatewayError::Invalid("choose a duration from the list".into())
            })?;
            let (user, group) = match form.to.split_once(':') {
                Some(("user", id)) => (Some(id.to_string()), None),
                Some(("group", id)) => (None, Some(id.to_string())),
                _ => {
                    return Err(switchboard_gateway::GatewayError::Invalid(
                        "choose whom to grant it to from the list".into(),
                    ));
                }
            };
            let body = GrantBody {
                permission: form.permission,
                user,
                group,
                expires_at: None,
                duration_seconds,
            };
            gateway.create_grant(body, action).await
        },
    )
    .await
}

#[derive(Debug, serde::Deserialize)]
pub(super) struct CsrfOnly {
    #[serde(default)]
    csrf: String,
}

pub(super) async fn revoke_grant(
    State(state): State<AppState>,
    jar: CookieJar,
    Path(id): Path<String>,
    Form(form): Form<CsrfOnly>,
) -> Response {
    let gateway = state.gateway.clone();
    change(
        state,
        jar,
        &form.csrf,
        "console.grant.delete",
        async |action| gateway.delete_grant(&id, action).await,
    )
    .await
}

#[derive(Debug, serde::Deserialize)]
pub(super) struct GroupForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
}

pub(super) async fn create_group(
    State(state): State<AppState>,
    jar: CookieJar,
    Form(form): Form<GroupForm>,
) -> Response {
    let gateway = state.gateway.clone();
    let body = GroupBody {
        name: form.name,
        description: String::new(),
    };
    change(
        state,
        jar,
        &form.csrf,
        "console.group.create",
        async |action| gateway.create_group(body, action).await,
    )
    .await
}

#[derive(Debug, serde::Deserialize)]
pub(super) struct MemberForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    user: String,
    #[serde(default)]
    group: String,
}

pub(super) async fn add_member(
    State(state): State<AppState>,
    jar: CookieJar,
    Form(form): Form<MemberForm>,
) -> Response {
    let gateway = state.gateway.clone();
    change(
        state,
        jar,
        &form.csrf,
        "console.group.add_member",
        async |action| {
            gateway
                .set_member(&form.group, &form.user, true, action)
                .await
        },
    )
    .await
}

/// The organization's settings as their form sends them (a server's are `forms::SettingsForm`).
#[derive(Debug, serde::Deserialize)]
pub(super) struct OrgSettingsForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    self_service: String,
    #[serde(default)]
    webhook: String,
}

pub(super) async fn settings(
    State(state): State<AppState>,
    jar: CookieJar,
    Form(form): Form<OrgSettingsForm>,
) -> Response {
    let gateway = state.gateway.clone();
    change(
        state,
        jar,
        &form.csrf,
        "console.settings.update",
        async |action| {
            let self_service: SelfService =
                serde_json::from_value(serde_json::Value::String(form.self_service.clone()))
                    .map_err(|_| {
                        switchboard_gateway::GatewayError::Invalid(
                            "choose a setting from the list".into(),
                        )
                    })?;
            let webhook = form.webhook.trim();
            let body = SettingsBody {
                self_service: Some(self_service),
                groups: None,
                webhook_url: Some(Some(webhook.to_string()).filter(|url| !url.is_empty())),
            };
            gateway.update_settings(body, action).await
        },
    )
    .await
}
