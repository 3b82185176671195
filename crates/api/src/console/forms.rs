//! The forms the console's pages show and read back, apart from the handlers that serve them:
//! a form's token alone, a server's settings and governance as text boxes of plain lines (and the
//! one reader of such lines), a permission with its choices of longest grant, and durations as
//! people say them. Pages and handlers both take these; these take from neither.

use std::collections::BTreeMap;

use serde_json::{Map, Value};
use switchboard_gateway::{
    ServerView,
    access_admin::{PermissionView, ToolSet},
    model::{Governance, MASK, Runtime},
};

/// A form that carries only its token.
#[derive(Debug, serde::Deserialize)]
pub(super) struct CsrfForm {
    #[serde(default)]
    pub(super) csrf: String,
}

/// A duration in seconds as people say it.
pub(super) fn duration(seconds: Option<i64>) -> String {
    let Some(seconds) = seconds else {
        return "no end".into();
    };
    let plural = |n: i64, unit: &str| {
        if n == 1 {
            format!("1 {unit}")
        } else {
            format!("{n} {unit}s")
        }
    };
    match seconds {
        s if s % 86_400 == 0 => plural(s / 86_400, "day"),
        s if s % 3_600 == 0 => plural(s / 3_600, "hour"),
        s if s % 60 == 0 => plural(s / 60, "minute"),
        s => plural(s, "second"),
    }
}

/// The settings as the form shows them: every secret masked.
#[derive(Default)]
pub(super) struct SettingsForm {
    /// The URL (remote) or the package or command (local).
    pub target: String,
    /// One argument a line (local).
    pub args: String,
    /// `KEY=value` a line: plain settings (local).
    pub env: String,
    /// `KEY=********` a line (local), or `Name: ********` a line (remote headers).
    pub secrets: String,
}

impl SettingsForm {
    pub(super) fn of(server: &ServerView) -> Self {
        let lines = |pairs: Vec<String>| pairs.join("\n");
        match server.runtime {
            Runtime::Remote => {
                let remote = server.remote_config.clone().unwrap_or_default();
                Self {
                    target: remote.url,
                    secrets: lines(
                        remote
                            .headers
                            .keys()
                            .map(|name| format!("{name}: {MASK}"))
                            .collect(),
                    ),
                    ..Self::default()
                }
            }
            runtime => {
                let (target, args) = match runtime {
                    Runtime::Command => {
                        let command = server.command_config.clone().unwrap_or_default();
                        (command.command, command.args)
                    }
                    Runtime::Npx => {
                        let package = server.npx_config.clone().unwrap_or_default();
                        (package.package, package.args)
                    }
                    _ => {
                        let package = server.uvx_config.clone().unwrap_or_default();
                        (package.package, package.args)
                    }
                };
                let (secret, plain): (Vec<_>, Vec<_>) = server
                    .env
                    .iter()
                    .partition(|(key, _)| server.sensitive_keys.contains(key));
                let pairs = |pairs: Vec<(&String, &String)>| {
                    lines(pairs.into_iter().map(|(k, v)| format!("{k}={v}")).collect())
                };
                Self {
                    target,
                    args: args.join("\n"),
                    env: pairs(plain),
                    secrets: pairs(secret),
                }
            }
        }
    }
}

/// The non-empty lines of a text box.
fn lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines()
        .map(str::trim)
        .enumerate()
        .filter(|(_, line)| !line.is_empty())
        .map(|(index, line)| (index + 1, line))
}

/// `KEY=value` lines (or `Name: value` with `:`) as a map; the problem names the line.
pub(super) fn pairs(
    text: &str,
    separator: char,
    box_name: &str,
) -> Result<BTreeMap<String, String>, String> {
    let mut map = BTreeMap::new();
    for (number, line) in lines(text) {
        let Some((key, value)) = line.split_once(separator) else {
            return Err(format!(
                "Line {number} of {box_name} is not KEY{separator}value."
            ));
        };
        let key = key.trim();
        if key.is_empty() {
            return Err(format!("Line {number} of {box_name} has no name."));
        }
        map.insert(key.to_string(), value.trim().to_string());
    }
    Ok(map)
}

/// The arguments, one a line.
pub(super) fn arguments(text: &str) -> Vec<String> {
    lines(text).map(|(_, line)| line.to_string()).collect()
}

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

/// A permission as its edit form shows it.
pub(super) struct PermissionForm {
    pub id: String,
    pub label: String,
    pub description: String,
    /// `all`, `readOnly` or `names`.
    pub tools: &'static str,
    /// With `names`: one tool a line.
    pub names: String,
    pub requestable: bool,
    /// (seconds or empty, words, selected).
    pub limits: Vec<(String, String, bool)>,
}

/// The longest grants offered, in seconds.
const LIMITS: [i64; 5] = [3_600, 86_400, 7 * 86_400, 30 * 86_400, 90 * 86_400];

/// A permission as its form shows it.
pub(super) fn row(permission: PermissionView) -> PermissionForm {
    let (tools, names) = match &permission.tools {
        ToolSet::Rule(rule) if rule == "all" => ("all", String::new()),
        ToolSet::Rule(_) => ("readOnly", String::new()),
        ToolSet::Names(names) => ("names", names.join("\n")),
    };
    PermissionForm {
        limits: limits(permission.max_duration_seconds),
        id: permission.id,
        label: permission.label,
        description: permission.description,
        tools,
        names,
        requestable: permission.requestable,
    }
}

/// The form of a new permission: named tools, requestable, no limit.
pub(super) fn blank() -> PermissionForm {
    PermissionForm {
        id: "new".into(),
        label: String::new(),
        description: String::new(),
        tools: "names",
        names: String::new(),
        requestable: true,
        limits: limits(None),
    }
}

/// The choices of the longest grant, the current one selected: (seconds or empty, words, selected).
pub(super) fn limits(current: Option<i64>) -> Vec<(String, String, bool)> {
    let mut choices = vec![(String::new(), "No limit".to_string(), current.is_none())];
    let mut seconds: Vec<i64> = LIMITS.to_vec();
    if let Some(current) = current
        && !seconds.contains(&current)
    {
        seconds.push(current);
        seconds.sort_unstable();
    }
    choices.extend(seconds.into_iter().map(|seconds| {
        (
            seconds.to_string(),
            duration(Some(seconds)),
            current == Some(seconds),
        )
    }));
    choices
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

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

    #[test]
    fn lines_read_as_pairs_and_bad_lines_are_named() {
        let read = pairs("A=1\n\n  B = two=2 \n", '=', "Environment").expect("pairs");
        assert_eq!(read["A"], "1");
        assert_eq!(read["B"], "two=2");
        assert_eq!(
            pairs("A=1\nnothing", '=', "Environment"),
            Err("Line 2 of Environment is not KEY=value.".into())
        );
        assert_eq!(
            pairs(" : v", ':', "Headers"),
            Err("Line 1 of Headers has no name.".into())
        );
        assert_eq!(arguments("-y\n\n pkg \n"), ["-y", "pkg"]);
    }

    #[test]
    fn the_current_limit_is_offered_and_chosen() {
        let choices = limits(Some(2 * 3_600));
        assert!(choices.contains(&("7200".into(), "2 hours".into(), true)));
        assert_eq!(choices.iter().filter(|choice| choice.2).count(), 1);
        assert!(limits(None)[0].2);
        assert_eq!(limits(Some(86_400)).len(), 6);
    }
}
