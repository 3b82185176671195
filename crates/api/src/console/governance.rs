//! A server's governance as a form: the prefix, the allowed and denied tools, renames,
//! descriptions and pinned parameters, each a text box of plain lines, read back into the rules
//! the registry applies (checked by the gateway as the API's are).

use std::collections::BTreeMap;

use axum::{
    Form,
    extract::{Path, State},
    response::{IntoResponse, Redirect, Response},
};
use axum_extra::extract::cookie::CookieJar;
use serde_json::{Map, Value};
use switchboard_gateway::model::{Governance, UpdateServer};

use super::{Viewer, server_settings::pairs};
use crate::AppState;

/// The rules as the form shows them and sends them.
#[derive(Debug, Default, serde::Deserialize)]
pub(super) struct GovernanceForm {
    #[serde(default)]
    pub csrf: String,
    #[serde(default)]
    pub prefix: String,
    /// One tool a line; empty for every tool.
    #[serde(default)]
    pub allow: String,
    #[serde(default)]
    pub deny: String,
    /// `tool = new name` a line.
    #[serde(default)]
    pub rename: String,
    /// `tool = description` a line.
    #[serde(default)]
    pub descriptions: String,
    /// `tool.parameter = value` a line, the value JSON (or else a string).
    #[serde(default)]
    pub pinned: String,
}

impl GovernanceForm {
    pub(super) fn of(rules: &Governance) -> Self {
        let joined = |pairs: &BTreeMap<String, String>| {
            pairs
                .iter()
                .map(|(tool, value)| format!("{tool} = {value}"))
                .collect::<Vec<_>>()
                .join("\n")
        };
        let pinned = rules
            .pinned
            .iter()
            .flat_map(|(tool, parameters)| {
                parameters
                    .iter()
                    .map(move |(name, value)| format!("{tool}.{name} = {value}"))
            })
            .collect::<Vec<_>>()
            .join("\n");
        Self {
            csrf: String::new(),
            prefix: rules.tool_prefix.clone(),
            allow: rules.allow_tools.clone().unwrap_or_default().join("\n"),
            deny: rules.deny_tools.join("\n"),
            rename: joined(&rules.rename),
            descriptions: joined(&rules.descriptions),
            pinned,
        }
    }

    /// The rules the form says; the problem names the box and line that cannot be read.
    pub(super) fn rules(&self) -> Result<Governance, String> {
        let names = |text: &str| -> Vec<String> {
            text.lines()
                .map(str::trim)
                .filter(|line| !line.is_empty())
                .map(str::to_string)
                .collect()
        };
        let allow = names(&self.allow);
        let mut pinned: BTreeMap<String, Map<String, Value>> = BTreeMap::new();
        for (key, value) in pairs(&self.pinned, '=', "Pinned parameters")? {
            let Some((tool, parameter)) = key.rsplit_once('.') else {
                return Err(format!(
                    "`{key}` in Pinned parameters is not tool.parameter."
                ));
            };
            let value = serde_json::from_str(&value).unwrap_or(Value::String(value));
            pinned
                .entry(tool.trim().to_string())
                .or_default()
                .insert(parameter.trim().to_string(), value);
        }
        Ok(Governance {
            tool_prefix: self.prefix.trim().to_string(),
            allow_tools: (!allow.is_empty()).then_some(allow),
            deny_tools: names(&self.deny),
            rename: pairs(&self.rename, '=', "Renames")?,
            descriptions: pairs(&self.descriptions, '=', "Descriptions")?,
            pinned,
        })
    }
}

/// Replaces a server's governance with the rules sent.
pub(super) async fn save(
    State(state): State<AppState>,
    jar: CookieJar,
    Path(id): Path<String>,
    Form(form): Form<GovernanceForm>,
) -> Response {
    let viewer = match Viewer::admin_form(&state, jar, "/console/admin/servers", &form.csrf).await {
        Ok(viewer) => viewer,
        Err(answer) => return answer,
    };
    let rules = match form.rules() {
        Ok(rules) => rules,
        Err(problem) => {
            return super::servers::server_page(&state, viewer, &id, None, None, Some(problem))
                .await;
        }
    };
    let action = viewer.action("console.server.governance", &id);
    let body = UpdateServer {
        tools: Some(rules),
        ..UpdateServer::default()
    };
    match state.gateway.update(&id, body, &action).await {
        Ok(_) => Redirect::to(&format!(
            "/console/admin/servers/{id}?done=governance_saved"
        ))
        .into_response(),
        Err(error) => {
            let problem = super::refusal(&state, &action, error);
            super::servers::server_page(&state, viewer, &id, None, None, Some(problem)).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rules_go_to_lines_and_back() {
        let rules: Governance = serde_json::from_value(json!({
            "toolPrefix": "gh_",
            "allowTools": ["add", "echo"],
            "denyTools": ["danger"],
            "rename": {"add": "sum"},
            "descriptions": {"echo": "Says it back = loudly"},
            "pinned": {"echo": {"times": 2, "voice": "low"}, "web.search": {"safe": true}},
        }))
        .expect("rules");
        let form = GovernanceForm::of(&rules);
        assert_eq!(form.allow, "add\necho");
        assert_eq!(form.rename, "add = sum");
        assert!(
            form.pinned.contains("echo.voice = \"low\""),
            "{}",
            form.pinned
        );
        assert!(
            form.pinned.contains("web.search.safe = true"),
            "{}",
            form.pinned
        );
        assert_eq!(form.rules().expect("read back"), rules);
        // A bare word pins a string; an empty allow box allows every tool.
        let form = GovernanceForm {
            pinned: "echo.voice = low".into(),
            ..GovernanceForm::default()
        };
        let read = form.rules().expect("rules");
        assert_eq!(read.pinned["echo"]["voice"], "low");
        assert_eq!(read.allow_tools, None);
        let bad = GovernanceForm {
            pinned: "voice = low".into(),
            ..GovernanceForm::default()
        };
        assert_eq!(
            bad.rules(),
            Err("`voice` in Pinned parameters is not tool.parameter.".into())
        );
    }
}
