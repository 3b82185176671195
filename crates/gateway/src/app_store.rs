//! The app store: the servers ("apps") a user can use or request, their permissions with the
//! tools each gives, and the user's state for each (granted until, pending, requestable). What
//! `/mcp/user`'s tools and the console's pages show; the rules of who may do what stay at the
//! policy point.
//!
//! Searching asks remote servers for their tools (within [`TOOLS_DEADLINE`]) but reads a local
//! server's last listing, and starts no process: a user's search never spawns every local
//! server. One app's permissions ask its upstream, local or not, as a client of it would.

use std::time::Duration;

use serde::Serialize;
use switchboard_store::PermissionRow;
use switchboard_tools::ToolMetadata;

use crate::{Gateway, GatewayError, access_requests::RequestView};

/// How long a search waits for a server's tool list; a server slower than this is matched on
/// its name and description alone.
const TOOLS_DEADLINE: Duration = Duration::from_secs(5);

/// A server as a user sees it in the store.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AppView {
    pub id: String,
    pub alias: String,
    pub name: String,
    pub description: String,
    /// `granted` (the user holds a permission on it) or `none`.
    pub access: &'static str,
    /// Whether any of its permissions may be requested.
    pub requestable: bool,
    #[serde(rename = "connectURL")]
    pub connect_url: String,
}

/// A permission with the tools it gives and the user's state.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PermissionState {
    pub id: String,
    pub label: String,
    pub description: String,
    /// The server's alias.
    pub server: String,
    pub tools: Vec<String>,
    pub max_duration_seconds: Option<i64>,
    /// `granted`, `pending`, `requestable` or `not_requestable`.
    pub state: &'static str,
    /// Set when granted: when the grant ends (`null`: no end).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub granted_until: Option<Option<i64>>,
    /// Set when pending.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

/// A server with its tools, where it listed them in time.
struct Listed {
    view: AppView,
    tools: Option<Vec<ToolMetadata>>,
}

/// Whether every word of `query` is in one of `texts` (case-insensitive).
fn matches<'a>(query: Option<&str>, texts: impl IntoIterator<Item = &'a str>) -> bool {
    let haystack = texts
        .into_iter()
        .collect::<Vec<_>>()
        .join("\n")
        .to_lowercase();
    query
        .unwrap_or_default()
        .split_whitespace()
        .all(|word| haystack.contains(&word.to_lowercase()))
}

impl Gateway {
    /// The enabled servers `user_id` holds a grant on or may request, with their tools (`only`:
    /// just this server; see the module's doc for which are asked for now).
    async fn listed_apps(
        &self,
        user_id: &str,
        only: Option<&str>,
    ) -> Result<Vec<Listed>, GatewayError> {
        let servers = self.resolved_servers().await?;
        let servers: Vec<_> = servers
            .into_iter()
            .filter(|server| server.definition.enabled)
            .filter(|server| only.is_none_or(|id| server.id == id))
            .collect();
        let mut tools = Vec::with_capacity(servers.len());
        let listings = servers.iter().map(|server| async {
            let remote = server.definition.runtime == crate::model::Runtime::Remote;
            if only.is_none() && !remote {
                return self.listed_tools(&server.id);
            }
            tokio::time::timeout(TOOLS_DEADLINE, self.tools(&server.id))
                .await
                .ok()
                .and_then(Result::ok)
        });
        tools.extend(futures::future::join_all(listings).await);
        let now = crate::now_ms();
        let base = self.settings().public_url.trim_end_matches('/').to_string();
        Ok(servers
            .iter()
            .zip(tools)
            .filter_map(|(server, tools)| {
                let granted = !self.access().held(user_id, &server.id, now).is_empty();
                let requestable = self
                    .access()
                    .permissions_of(&server.id)
                    .iter()
                    .any(|permission| permission.requestable);
                (granted || requestable).then(|| Listed {
                    view: AppView {
                        id: server.id.clone(),
                        alias: server.definition.alias.clone(),
                        name: server.definition.name.clone(),
                        description: server.definition.short_description.clone(),
                        access: if granted { "granted" } else { "none" },
                        requestable,
                        connect_url: format!("{base}/mcp/{}", server.definition.alias),
                    },
                    tools,
                })
            })
            .collect())
    }

    /// The apps `user_id` can use or request, matched on their names, descriptions and tools.
    pub async fn apps_for(
        &self,
        user_id: &str,
        query: Option<&str>,
    ) -> Result<Vec<AppView>, GatewayError> {
        Ok(self
            .listed_apps(user_id, None)
            .await?
            .into_iter()
            .filter(|app| {
                let view = &app.view;
                let tools = app.tools.iter().flatten().flat_map(|tool| {
                    std::iter::once(tool.name.as_str()).chain(tool.description.as_deref())
                });
                let texts = [
                    view.name.as_str(),
                    view.alias.as_str(),
                    view.description.as_str(),
                ];
                matches(query, texts.into_iter().chain(tools))
            })
            .map(|app| app.view)
            .collect())
    }

    /// One app's permissions with `user_id`'s state.
    pub async fn app_permissions(
        &self,
        user_id: &str,
        server: &str,
    ) -> Result<(AppView, Vec<PermissionState>), GatewayError> {
        let resolved = self.resolved(server).await?;
        if !resolved.definition.enabled {
            return Err(GatewayError::Disabled(resolved.definition.alias.clone()));
        }
        let app = self
            .listed_apps(user_id, Some(&resolved.id))
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| GatewayError::NotFound(server.to_string()))?;
        let mine = self.my_access_requests(user_id).await?;
        let permissions = self
            .access()
            .permissions_of(&app.view.id)
            .iter()
            .map(|permission| self.permission_state(user_id, permission, &app, &mine))
            .collect();
        Ok((app.view, permissions))
    }

    /// The permissions `user_id` holds or may request across every app, matched on their
    /// labels, descriptions, app and tools.
    pub async fn requestable_permissions(
        &self,
        user_id: &str,
        query: Option<&str>,
    ) -> Result<Vec<PermissionState>, GatewayError> {
        let apps = self.listed_apps(user_id, None).await?;
        let mine = self.my_access_requests(user_id).await?;
        let mut found = Vec::new();
        for app in &apps {
            for permission in self.access().permissions_of(&app.view.id) {
                let state = self.permission_state(user_id, &permission, app, &mine);
                if state.state == "not_requestable" {
                    continue;
                }
                let texts = [
                    state.label.as_str(),
                    state.description.as_str(),
                    app.view.name.as_str(),
                    app.view.alias.as_str(),
                ];
                if matches(
                    query,
                    texts
                        .into_iter()
                        .chain(state.tools.iter().map(String::as_str)),
                ) {
                    found.push(state);
                }
            }
        }
        Ok(found)
    }

    fn permission_state(
        &self,
        user_id: &str,
        permission: &PermissionRow,
        app: &Listed,
        mine: &[RequestView],
    ) -> PermissionState {
        let tools = match &app.tools {
            Some(tools) => tools
                .iter()
                .filter(|tool| {
                    crate::policy::permission_allows(permission, &tool.name, tool.read_only())
                })
                .map(|tool| tool.name.clone())
                .collect(),
            None => permission.tools.clone(),
        };
        let held = self
            .access()
            .held(user_id, &permission.server_id, crate::now_ms())
            .into_iter()
            .find(|held| held.permission.id == permission.id);
        let pending = mine
            .iter()
            .find(|request| request.permission_id == permission.id && request.status == "pending");
        let state = match (&held, pending) {
            (Some(_), _) => "granted",
            (None, Some(_)) => "pending",
            (None, None) if permission.requestable => "requestable",
            (None, None) => "not_requestable",
        };
        PermissionState {
            id: permission.id.clone(),
            label: permission.label.clone(),
            description: permission.description.clone(),
            server: app.view.alias.clone(),
            tools,
            max_duration_seconds: permission.max_duration_s,
            state,
            granted_until: held.map(|held| held.expires_at),
            request_id: pending
                .filter(|_| state == "pending")
                .map(|request| request.id.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_word_must_match() {
        assert!(matches(None, ["anything"]));
        assert!(matches(Some("sales REPORTS"), ["Sales", "view reports"]));
        assert!(!matches(Some("sales payroll"), ["Sales", "view reports"]));
    }
}
