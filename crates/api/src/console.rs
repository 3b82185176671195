//! The web console, served by the binary on the same sign-in as the consent screen: for every
//! signed-in user the app store (`/console/apps`), connection settings (`/console/connect`) and
//! their access (`/console/access`: requests, grants, authorized clients, API keys); for admins
//! the overview (`/console/admin`), the request inbox, the servers with their settings,
//! governance, permissions and tools, people, agent runs and the audit log
//! (`/console/admin/...`). Pages are askama templates (`templates/console/`) with no script;
//! every form carries the CSRF token and works without JavaScript. What a page may show or do is
//! decided at the policy point: the browser session is the caller (`Credential::Session`).

mod admin;
mod forms;
mod governance;
mod overview;
mod pages;
mod people;
mod permissions;
mod runs;
mod server_settings;
mod servers;
mod user;

use axum::{
    Router,
    http::StatusCode,
    response::{IntoResponse, Redirect, Response},
    routing::{get, post},
};
use axum_extra::extract::cookie::CookieJar;
use switchboard_auth::Role;
use switchboard_gateway::policy::{self, Caller, Endpoint, SessionUser, Verdict};
use switchboard_store::UserRow;

use crate::{
    AppState,
    oauth::browser::{csrf, csrf_ok, error_page, login_url, signed_in, stale_form},
};

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/console", get(|| async { Redirect::to("/console/apps") }))
        .route("/console/apps", get(user::apps))
        .route("/console/apps/{alias}", get(user::app))
        .route("/console/requests", post(user::request))
        .route("/console/connect", get(user::connect))
        .route("/console/access", get(user::access))
        .route("/console/clients/revoke", post(user::revoke_client))
        .route("/console/keys", post(user::create_key))
        .route("/console/keys/{id}/revoke", post(user::revoke_key))
        .route("/console/admin", get(overview::overview))
        .route("/console/admin/requests", get(admin::requests))
        .route("/console/admin/requests/{id}/approve", post(admin::approve))
        .route("/console/admin/requests/{id}/deny", post(admin::deny))
        .route(
            "/console/admin/servers",
            get(servers::servers).post(servers::add),
        )
        .route(
            "/console/admin/servers/catalog",
            post(servers::add_from_catalog),
        )
        .route("/console/admin/servers/import", post(servers::import))
        .route(
            "/console/admin/servers/local",
            post(server_settings::add_local),
        )
        .route(
            "/console/admin/servers/{id}/settings",
            post(server_settings::save),
        )
        .route("/console/admin/servers/{id}", get(servers::server))
        .route("/console/admin/servers/{id}/call", post(servers::call))
        .route(
            "/console/admin/servers/{id}/governance",
            post(governance::save),
        )
        .route(
            "/console/admin/servers/{id}/permissions",
            post(permissions::create),
        )
        .route(
            "/console/admin/servers/{id}/permissions/{pid}",
            post(permissions::update),
        )
        .route(
            "/console/admin/servers/{id}/permissions/{pid}/delete",
            post(permissions::delete),
        )
        .route("/console/admin/servers/{id}/enable", post(servers::enable))
        .route(
            "/console/admin/servers/{id}/disable",
            post(servers::disable),
        )
        .route(
            "/console/admin/servers/{id}/delete",
            get(servers::confirm_delete).post(servers::delete),
        )
        .route("/console/admin/people", get(people::people))
        .route("/console/admin/people/users", post(people::add_user))
        .route(
            "/console/admin/people/users/{id}",
            post(people::update_user),
        )
        .route("/console/admin/people/grants", post(people::grant))
        .route(
            "/console/admin/people/grants/{id}/revoke",
            post(people::revoke_grant),
        )
        .route("/console/admin/people/groups", post(people::create_group))
        .route("/console/admin/people/members", post(people::add_member))
        .route("/console/admin/people/settings", post(people::settings))
        .route("/console/admin/runs", get(runs::list).post(runs::start))
        .route("/console/admin/runs/{id}", get(runs::run))
        .route("/console/admin/audit", get(admin::audit))
        .route("/console/admin/audit.jsonl", get(admin::audit_download))
}

/// The signed-in user of a console request, as the policy's caller.
struct Viewer {
    user: UserRow,
    caller: Caller,
    jar: CookieJar,
    csrf: String,
}

impl Viewer {
    /// The request's signed-in user, or the answer that sends the browser to sign in and come
    /// back to `here`.
    async fn of(state: &AppState, jar: CookieJar, here: &str) -> Result<Self, Response> {
        let Some(user) = signed_in(state, &jar).await else {
            return Err(Redirect::to(&login_url(here)).into_response());
        };
        let caller = Caller::session(
            SessionUser {
                user_id: user.id.clone(),
                username: user.username.clone(),
                role: Role::of(&user),
            },
            "console".into(),
        );
        let (jar, csrf) = csrf(state, jar);
        Ok(Self {
            user,
            caller,
            jar,
            csrf,
        })
    }

    /// As [`Self::of`], for a form: its CSRF field must match the browser's cookie.
    async fn posting(
        state: &AppState,
        jar: CookieJar,
        here: &str,
        field: &str,
    ) -> Result<Self, Response> {
        if !csrf_ok(&jar, field) {
            return Err(stale_form(
                jar,
                "Open the page again and repeat what you did.",
            ));
        }
        Self::of(state, jar, here).await
    }

    /// As [`Self::of`], for an admin page the policy lets this user read.
    async fn admin_page(state: &AppState, jar: CookieJar, here: &str) -> Result<Self, Response> {
        let viewer = Self::of(state, jar, here).await?;
        viewer.admin(state, false).await?;
        Ok(viewer)
    }

    /// As [`Self::posting`], for an admin form the policy lets this user act on.
    async fn admin_form(
        state: &AppState,
        jar: CookieJar,
        here: &str,
        field: &str,
    ) -> Result<Self, Response> {
        let viewer = Self::posting(state, jar, here, field).await?;
        viewer.admin(state, true).await?;
        Ok(viewer)
    }

    /// The policy's decision on this user asking for `endpoint` (and `tool`, on `/mcp/user`).
    async fn decide(
        &self,
        state: &AppState,
        endpoint: Endpoint<'_>,
        tool: Option<&str>,
    ) -> Result<policy::Decision, Response> {
        let asked = tool.map(|tool| policy::Asked {
            method: Some("tools/call"),
            has_id: true,
            named: Some(tool),
            raw_carriable: false,
        });
        let request = policy::Request {
            caller: self.caller.clone(),
            endpoint,
            asked,
            arrival: policy::Arrival::Other,
            session: None,
            now: switchboard_auth::secret::now_ms(),
        };
        state
            .gateway
            .decide(request, state.auth.revocations())
            .await
            .map_err(|error| self.failed(&error.to_string()))
    }

    /// Whether the policy lets this user use the admin pages (`write`: act on them).
    async fn admin(&self, state: &AppState, write: bool) -> Result<(), Response> {
        let decision = self
            .decide(state, Endpoint::AdminApi { write }, None)
            .await?;
        match decision.verdict {
            Verdict::Allow => Ok(()),
            Verdict::Refuse(_) => Err(error_page(
                StatusCode::FORBIDDEN,
                self.jar.clone(),
                "This page is for admins",
                "Your account cannot open it. Ask an admin if you need to.",
            )),
        }
    }

    /// A page that failed for a reason of the gateway's (logged).
    fn failed(&self, error: &str) -> Response {
        tracing::error!(%error, "a console page failed");
        error_page(
            StatusCode::INTERNAL_SERVER_ERROR,
            self.jar.clone(),
            "Something went wrong",
            "This page could not be shown; try again.",
        )
    }

    /// The frame every page shares.
    async fn frame(
        &self,
        state: &AppState,
        section: &'static str,
        notice: Option<&'static str>,
        problem: Option<String>,
    ) -> pages::Frame {
        let admin = Role::of(&self.user) == Role::Admin;
        let pending = if admin {
            let query = switchboard_gateway::access_requests::RequestQuery {
                status: Some("pending".into()),
                limit: Some(1000),
                ..Default::default()
            };
            state
                .gateway
                .access_requests(&query)
                .await
                .map_or(0, |pending| pending.len())
        } else {
            0
        };
        pages::Frame {
            user: self.user.username.clone(),
            admin,
            csrf: self.csrf.clone(),
            section,
            pending,
            notice,
            problem,
        }
    }

    /// The action this user takes, for its audit row.
    fn action(&self, action: &str, server: &str) -> switchboard_gateway::audit::AdminAction {
        self.caller.action(action, server)
    }
}

/// What a page says after a form's redirect, by the code in its `done` parameter: fixed texts,
/// so that no link can make a page say something else.
fn notice(done: Option<&str>) -> Option<&'static str> {
    Some(match done? {
        "requested" => "Your request was sent. You will see the decision under My access.",
        "client_revoked" => "The client was revoked: its tokens stop working at once.",
        "key_revoked" => "The key was revoked: it stops working at once.",
        "approved" => "Approved: the user has the permission now.",
        "denied" => "Denied: the user sees your reason.",
        "server_added" => "The server was added. It connects on first use.",
        "server_deleted" => "The server was deleted.",
        "governance_saved" => "The rules were saved; clients see the change at once.",
        "permission_saved" => "The permission was saved; grants of it follow at once.",
        "permission_deleted" => "The permission was deleted, with the grants that gave it.",
        "settings_saved" => "The settings were saved. The server reconnects with them on next use.",
        _ => return None,
    })
}

/// A form's fields read by hand, for forms that repeat a name once per box ticked (which serde's
/// form reader does not gather).
struct Fields(Vec<(String, String)>);

impl Fields {
    fn parse(body: &[u8]) -> Self {
        Self(url::form_urlencoded::parse(body).into_owned().collect())
    }

    /// The first value of a field, or empty.
    fn one(&self, name: &str) -> &str {
        self.0
            .iter()
            .find(|(key, _)| key == name)
            .map_or("", |(_, value)| value.as_str())
    }

    /// Every value of a field.
    fn all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
            .collect()
    }
}

#[derive(Debug, serde::Deserialize)]
struct Done {
    done: Option<String>,
}

/// A duration field of a form: seconds, or empty for the default; `Err` when it is neither.
fn seconds(field: &str) -> Result<Option<i64>, ()> {
    match field.trim() {
        "" => Ok(None),
        seconds => seconds.parse().map(Some).map_err(drop),
    }
}

/// A change the gateway refused: audited as the API audits it, and its reason for the page.
fn refusal(
    state: &AppState,
    action: &switchboard_gateway::audit::AdminAction,
    error: switchboard_gateway::GatewayError,
) -> String {
    let refused: Result<(), crate::error::ApiError> = Err(error.into());
    crate::auth::audit_failure(state, action, &refused);
    refused.err().map(|error| error.message).unwrap_or_default()
}
