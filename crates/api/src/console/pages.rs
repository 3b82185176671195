//! The console's templates (askama: checked at compile time, HTML-escaped by default) and what
//! they show, already in words: the templates call no function.

use askama::Template;
use axum::http::StatusCode;
use axum::response::Response;
use axum_extra::extract::cookie::CookieJar;

use super::forms::{PermissionForm, duration};

/// What every page shows around its content.
pub(super) struct Frame {
    pub user: String,
    pub admin: bool,
    pub csrf: String,
    /// The nav entry of the page.
    pub section: &'static str,
    /// Requests waiting for an admin.
    pub pending: usize,
    pub notice: Option<&'static str>,
    pub problem: Option<String>,
}

impl Frame {
    /// A page showing a problem answers 400, as the API answers bad input.
    pub(super) fn status(&self) -> StatusCode {
        if self.problem.is_some() {
            StatusCode::BAD_REQUEST
        } else {
            StatusCode::OK
        }
    }
}

/// Renders a page with the security headers of the sign-in pages.
pub(super) fn show(status: StatusCode, jar: CookieJar, template: &impl Template) -> Response {
    let html = template.render().unwrap_or_else(|error| {
        tracing::error!(%error, "a console page did not render");
        "<!doctype html><title>Error</title><p>This page could not be shown.</p>".into()
    });
    crate::oauth::browser::page(status, jar, html)
}

#[derive(Template)]
#[template(path = "console/apps.html")]
pub(super) struct AppsPage {
    pub frame: Frame,
    pub query: String,
    pub apps: Vec<switchboard_gateway::app_store::AppView>,
}

/// A permission as the app page shows it.
pub(super) struct PermissionRow {
    pub id: String,
    pub label: String,
    pub description: String,
    pub tools: Vec<String>,
    pub state: &'static str,
    pub state_text: String,
    pub state_class: &'static str,
    /// The durations a request may ask for: (seconds, or empty for the longest; words).
    pub durations: Vec<(String, String)>,
}

#[derive(Template)]
#[template(path = "console/app.html")]
pub(super) struct AppPage {
    pub frame: Frame,
    pub app: switchboard_gateway::app_store::AppView,
    pub permissions: Vec<PermissionRow>,
    /// Whether the organization lets this user file requests.
    pub can_request: bool,
}

/// An app's connection settings.
pub(super) struct Connection {
    pub name: String,
    pub alias: String,
    pub connect_url: String,
    pub mcp_servers: String,
    pub vscode: String,
}

#[derive(Template)]
#[template(path = "console/connect.html")]
pub(super) struct ConnectPage {
    pub frame: Frame,
    pub apps: Vec<Connection>,
}

pub(super) struct RequestRow {
    pub server: String,
    pub permission: String,
    pub status: String,
    pub status_class: &'static str,
    pub asked: String,
    pub decision: String,
}

pub(super) struct KeyRow {
    pub id: String,
    pub name: String,
    pub scopes: String,
    pub hint: String,
    pub expires: String,
    pub revoked: bool,
}

pub(super) struct NewKey {
    pub name: String,
    pub key: String,
}

/// A client the user authorized.
pub(super) struct ClientRow {
    pub id: String,
    pub name: String,
    pub scopes: String,
    /// When it was last approved.
    pub since: String,
}

#[derive(Template)]
#[template(path = "console/access.html")]
pub(super) struct AccessPage {
    pub frame: Frame,
    /// The clients the user authorized.
    pub clients: Vec<ClientRow>,
    pub new_key: Option<NewKey>,
    /// (app, permission, until).
    pub grants: Vec<(String, String, String)>,
    pub requests: Vec<RequestRow>,
    pub keys: Vec<KeyRow>,
    /// The scopes a key may carry: (scope, what it allows).
    pub scopes: Vec<(&'static str, &'static str)>,
}

pub(super) struct PendingRow {
    pub id: String,
    pub username: String,
    pub permission: String,
    pub server: String,
    pub reason: String,
    pub asked: String,
    pub duration: String,
    /// (seconds, or empty for as asked; words).
    pub approvals: Vec<(String, String)>,
}

pub(super) struct DecidedRow {
    pub username: String,
    pub permission: String,
    pub server: String,
    pub status: String,
    pub status_class: &'static str,
    pub by: String,
    pub reason: String,
    pub when: String,
}

#[derive(Template)]
#[template(path = "console/requests.html")]
pub(super) struct RequestsPage {
    pub frame: Frame,
    pub pending: Vec<PendingRow>,
    pub decided: Vec<DecidedRow>,
}

pub(super) struct ServerRow {
    pub id: String,
    pub name: String,
    pub alias: String,
    pub runtime: &'static str,
    pub enabled: bool,
    pub state: &'static str,
    pub state_class: &'static str,
    /// The last error, when in error.
    pub message: String,
}

#[derive(Template)]
#[template(path = "console/servers.html")]
pub(super) struct ServersPage {
    pub frame: Frame,
    pub servers: Vec<ServerRow>,
    /// The catalog: (entry id, name and what it is).
    pub catalog: Vec<(String, String)>,
    /// What an import did, one line per entry.
    pub imported: Vec<String>,
}

/// A tool as the server page shows it.
pub(super) struct ToolRow {
    pub name: String,
    pub description: String,
    /// Its annotations, in words.
    pub hints: Vec<&'static str>,
    /// Arguments to start from: `{}` with the required parameters' names.
    pub example: String,
}

#[derive(Template)]
#[template(path = "console/server.html")]
pub(super) struct ServerPage {
    pub frame: Frame,
    pub id: String,
    pub name: String,
    pub alias: String,
    pub runtime: &'static str,
    pub state: &'static str,
    pub state_class: &'static str,
    pub tools: Vec<ToolRow>,
    /// Why there are no tools to show.
    pub tools_note: String,
    /// The last test call: its tool, and its answer as pretty JSON.
    pub called: String,
    pub result: Option<String>,
    /// The server's governance, as its form shows it.
    pub governance: super::forms::GovernanceForm,
    /// Whether the governance form shows open (it was just sent).
    pub governance_open: bool,
    /// Its permissions, each as its form.
    pub permissions: Vec<PermissionForm>,
    /// The form of a new permission.
    pub new_permission: PermissionForm,
    /// Its settings, secrets masked.
    pub settings: super::forms::SettingsForm,
    /// Whether it runs as a local process (else it is remote).
    pub local: bool,
}

#[derive(Template)]
#[template(path = "console/delete.html")]
pub(super) struct DeletePage {
    pub frame: Frame,
    pub id: String,
    pub name: String,
    pub alias: String,
}

pub(super) struct GrantRow {
    pub id: String,
    /// The permission's label and its server's alias.
    pub permission: String,
    /// Who holds it: a username, or a group's name.
    pub subject: String,
    pub until: String,
}

#[derive(Template)]
#[template(path = "console/people.html")]
pub(super) struct PeoplePage {
    pub frame: Frame,
    /// A user just made and the password made for them, shown once.
    pub made_password: Option<(String, String)>,
    pub users: Vec<switchboard_gateway::users_admin::UserView>,
    pub grants: Vec<GrantRow>,
    /// (permission id, its label and server).
    pub permissions: Vec<(String, String)>,
    /// (`user:<id>` or `group:<id>`, a name).
    pub subjects: Vec<(String, String)>,
    pub durations: Vec<(String, String)>,
    /// (name, description).
    pub groups: Vec<(String, String)>,
    pub self_service: String,
    pub modes: Vec<(&'static str, &'static str)>,
    /// (group, mode in words).
    pub group_modes: Vec<(String, String)>,
    /// The webhook's masked URL, or empty.
    pub webhook: String,
}

/// The audit page's filters, as the form sent them (and shows them again).
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(default)]
pub(super) struct AuditFilter {
    pub user: String,
    pub server: String,
    pub tool: String,
    pub outcome: String,
    /// `YYYY-MM-DD`, UTC, inclusive.
    pub since: String,
    /// `YYYY-MM-DD`, UTC, inclusive.
    pub until: String,
    /// The id of the last row of the page before.
    pub before: String,
}

pub(super) struct AuditRow {
    pub when: String,
    pub actor: String,
    pub action: String,
    pub server: String,
    pub tool: String,
    pub outcome: String,
    pub outcome_class: &'static str,
    pub took: String,
}

#[derive(Template)]
#[template(path = "console/audit.html")]
pub(super) struct AuditPage {
    pub frame: Frame,
    pub filter: AuditFilter,
    /// The filters as a query string (`?user=…`), for the download link.
    pub query: String,
    pub outcomes: Vec<(&'static str, &'static str)>,
    pub rows: Vec<AuditRow>,
    /// The query string of the next, older page.
    pub older: Option<String>,
}

/// A day (`YYYY-MM-DD`) as Unix milliseconds at its start, UTC; `None` when it is no day.
pub(super) fn day_start(day: &str) -> Option<i64> {
    let mut parts = day.trim().splitn(3, '-');
    let year: i32 = parts.next()?.parse().ok()?;
    let month: u8 = parts.next()?.parse().ok()?;
    let date: u8 = parts.next()?.parse().ok()?;
    let date =
        time::Date::from_calendar_date(year, time::Month::try_from(month).ok()?, date).ok()?;
    Some(date.midnight().assume_utc().unix_timestamp() * 1000)
}

/// A moment (Unix milliseconds) as people read it, in UTC.
pub(super) fn when(ms: i64) -> String {
    match time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000)) {
        Ok(at) => format!(
            "{}-{:02}-{:02} {:02}:{:02} UTC",
            at.year(),
            u8::from(at.month()),
            at.day(),
            at.hour(),
            at.minute()
        ),
        Err(_) => "—".into(),
    }
}

/// When something ends: a moment, or no end.
pub(super) fn until(ms: Option<i64>) -> String {
    ms.map_or_else(
        || "until revoked".into(),
        |ms| format!("until {}", when(ms)),
    )
}

/// The usual durations, in seconds.
const DURATIONS: [i64; 4] = [3_600, 86_400, 7 * 86_400, 30 * 86_400];

/// What a request may ask for under a permission's limit: the usual durations within it, then
/// the longest allowed.
pub(super) fn request_durations(limit: Option<i64>) -> Vec<(String, String)> {
    let mut choices: Vec<(String, String)> = DURATIONS
        .iter()
        .filter(|seconds| limit.is_none_or(|limit| **seconds < limit))
        .map(|seconds| (seconds.to_string(), duration(Some(*seconds))))
        .collect();
    let longest = match limit {
        Some(limit) => format!("{} (the longest allowed)", duration(Some(limit))),
        None => "until revoked".into(),
    };
    choices.push((String::new(), longest));
    choices
}

/// What an approval may grant: as asked first, then the usual shorter durations.
pub(super) fn approval_durations(asked: Option<i64>) -> Vec<(String, String)> {
    let mut choices = vec![(String::new(), format!("{} (as asked)", duration(asked)))];
    choices.extend(
        DURATIONS
            .iter()
            .filter(|seconds| asked.is_none_or(|asked| **seconds < asked))
            .map(|seconds| (seconds.to_string(), duration(Some(*seconds)))),
    );
    choices
}

/// The pill's class of a request's status.
pub(super) fn status_class(status: &str) -> &'static str {
    match status {
        "approved" => "ok",
        "pending" => "warn",
        _ => "muted",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_durations_read_as_people_say_them() {
        assert_eq!(when(1_796_000_000_000), "2026-11-30 00:53 UTC");
        assert_eq!(until(None), "until revoked");
        assert_eq!(duration(Some(3_600)), "1 hour");
        assert_eq!(duration(Some(2 * 86_400)), "2 days");
        assert_eq!(duration(Some(90)), "90 seconds");
        assert_eq!(duration(None), "no end");
        let limited = request_durations(Some(86_400));
        assert_eq!(
            limited,
            [
                ("3600".to_string(), "1 hour".to_string()),
                (String::new(), "1 day (the longest allowed)".to_string())
            ]
        );
        assert_eq!(approval_durations(Some(3_600)).len(), 1);
        assert_eq!(approval_durations(None).len(), 5);
        assert_eq!(day_start("2026-11-30"), Some(1_796_000_000_000 - 3_200_000));
        assert_eq!(day_start("2026-13-01"), None);
        assert_eq!(day_start("yesterday"), None);
    }
}

pub(super) struct RunRow {
    pub run_id: String,
    pub when: String,
    pub actor: String,
    /// The task, cut short.
    pub task: String,
    pub model: String,
    pub stop_reason: String,
    pub stop_class: &'static str,
    pub steps: i64,
    pub tool_calls: i64,
    pub tokens: i64,
    pub took: String,
}

/// What the start form was sent with, shown again when it is refused.
#[derive(Default)]
pub(super) struct RunForm {
    pub task: String,
    pub model: String,
    pub base_url: String,
    pub max_steps: String,
    /// The aliases ticked.
    pub servers: Vec<String>,
}

#[derive(Template)]
#[template(path = "console/runs.html")]
pub(super) struct RunsPage {
    pub frame: Frame,
    /// How many runs are going on this replica.
    pub running: usize,
    pub runs: Vec<RunRow>,
    /// The query string of the next, older page.
    pub older: Option<String>,
    /// The enabled servers a run may use: (alias, name, ticked).
    pub servers: Vec<(String, String, bool)>,
    pub form: RunForm,
}

pub(super) struct CallView {
    pub tool: String,
    pub server: String,
    /// The model's arguments, as it wrote them.
    pub arguments: String,
    /// What the model was sent back.
    pub output: String,
    pub failed: bool,
    /// Whether the output was cut to the cap.
    pub cut: bool,
    pub took: String,
}

pub(super) struct StepView {
    pub number: usize,
    /// What the model said besides its calls.
    pub said: String,
    pub tokens: u64,
    pub took: String,
    pub calls: Vec<CallView>,
}

pub(super) struct RunView {
    pub task: String,
    pub model: String,
    pub servers: String,
    pub actor: String,
    pub when: String,
    pub stop_reason: String,
    pub stop_class: &'static str,
    pub took: String,
    pub tokens: String,
    pub final_answer: String,
    pub error: Option<String>,
    pub warnings: Vec<String>,
    pub steps: Vec<StepView>,
}

#[derive(Template)]
#[template(path = "console/run.html")]
pub(super) struct RunPage {
    pub frame: Frame,
    pub run_id: String,
    /// Going, not kept yet: the page looks again by itself.
    pub running: bool,
    pub run: Option<RunView>,
}

/// One bar of a chart, in the SVG's units: the minute's calls, and its errors over them.
pub(super) struct Bar {
    pub x: u32,
    pub width: u32,
    pub y: u32,
    pub height: u32,
    pub error_y: u32,
    pub error_height: u32,
}

/// A chart of calls per minute over the last hour, drawn as SVG by the page.
#[derive(Default)]
pub(super) struct Chart {
    pub width: u32,
    pub height: u32,
    /// What the chart shows, in words, for screen readers.
    pub label: String,
    /// The minutes with calls, oldest first.
    pub bars: Vec<Bar>,
}

#[derive(Default)]
pub(super) struct Fleet {
    pub servers: usize,
    pub connected: usize,
    pub idle: usize,
    pub failing: usize,
    pub disabled: usize,
    pub calls: u64,
    pub errors: u64,
    pub error_rate: String,
    pub chart: Chart,
}

pub(super) struct ServerHealth {
    pub id: String,
    pub name: String,
    pub alias: String,
    pub state: &'static str,
    pub state_class: &'static str,
    /// The last error, when in error.
    pub message: String,
    pub breaker: String,
    pub breaker_class: &'static str,
    pub calls: u64,
    pub errors: u64,
    pub error_rate: String,
    pub p50: String,
    pub p99: String,
    pub chart: Chart,
}

#[derive(Template)]
#[template(path = "console/overview.html")]
pub(super) struct OverviewPage {
    pub frame: Frame,
    pub fleet: Fleet,
    pub servers: Vec<ServerHealth>,
}
