//! A server's settings in the console: a local server (`npx`, `uvx` or a command) added with its
//! arguments, environment and secrets, and any server's settings edited on its page. Secrets are
//! shown as `********`, and a `********` sent back keeps the stored value, as the API does.

use std::collections::BTreeMap;

use axum::{
    Form,
    extract::{Path, State},
    response::{IntoResponse, Redirect, Response},
};
use axum_extra::extract::cookie::CookieJar;
use switchboard_gateway::{
    ServerView,
    model::{
        CommandConfig, CreateServer, EnvInput, MASK, Manifest, PackageConfig, RemoteConfig,
        Runtime, UpdateServer,
    },
};

use super::Viewer;
use crate::AppState;

const SERVERS: &str = "/console/admin/servers";

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
fn arguments(text: &str) -> Vec<String> {
    lines(text).map(|(_, line)| line.to_string()).collect()
}

/// A local server to add: its name and runtime, and the settings the edit form has too.
#[derive(Debug, Default, serde::Deserialize)]
pub(super) struct LocalForm {
    #[serde(default)]
    runtime: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    alias: String,
    #[serde(flatten)]
    settings: EditForm,
}

/// Adds a local server: its package or command, arguments, plain settings and secrets.
pub(super) async fn add_local(
    State(state): State<AppState>,
    jar: CookieJar,
    Form(form): Form<LocalForm>,
) -> Response {
    let viewer = match Viewer::admin_form(&state, jar, SERVERS, &form.settings.csrf).await {
        Ok(viewer) => viewer,
        Err(answer) => return answer,
    };
    let action = viewer.action("console.server.create", "");
    let settings = &form.settings;
    let (plain, secrets) = match (
        pairs(&settings.env, '=', "Environment"),
        pairs(&settings.secrets, '=', "Secrets"),
    ) {
        (Ok(plain), Ok(secrets)) => (plain, secrets),
        (Err(problem), _) | (_, Err(problem)) => {
            return super::servers::refused(&state, viewer, problem).await;
        }
    };
    let args = arguments(&settings.args);
    let target = settings.target.trim().to_string();
    let mut manifest = Manifest {
        name: Some(form.name),
        runtime: Some(form.runtime.clone()),
        sensitive_keys: secrets.keys().cloned().collect(),
        ..Manifest::default()
    };
    match form.runtime.as_str() {
        "npx" => {
            manifest.npx_config = Some(PackageConfig {
                package: target,
                args,
            })
        }
        "uvx" => {
            manifest.uvx_config = Some(PackageConfig {
                package: target,
                args,
            })
        }
        "command" => {
            manifest.command_config = Some(CommandConfig {
                command: target,
                args,
            })
        }
        _ => {
            let problem = "Choose how the server runs: npx, uvx or a command.".to_string();
            return super::servers::refused(&state, viewer, problem).await;
        }
    }
    let mut env = plain;
    env.extend(secrets);
    manifest.env = Some(EnvInput::Map(env));
    let body = CreateServer {
        manifest: Some(manifest),
        alias: Some(form.alias.trim().to_string()).filter(|alias| !alias.is_empty()),
        ..CreateServer::default()
    };
    match state.gateway.create(body, &action).await {
        Ok(_) => Redirect::to(&format!("{SERVERS}?done=server_added")).into_response(),
        Err(error) => {
            let problem = super::refusal(&state, &action, error);
            super::servers::refused(&state, viewer, problem).await
        }
    }
}

#[derive(Debug, Default, serde::Deserialize)]
pub(super) struct EditForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    target: String,
    #[serde(default)]
    args: String,
    #[serde(default)]
    env: String,
    #[serde(default)]
    secrets: String,
}

/// Saves a server's settings. A line left as `********` keeps its secret; a line taken out
/// removes its setting.
pub(super) async fn save(
    State(state): State<AppState>,
    jar: CookieJar,
    Path(id): Path<String>,
    Form(form): Form<EditForm>,
) -> Response {
    let viewer = match Viewer::admin_form(&state, jar, SERVERS, &form.csrf).await {
        Ok(viewer) => viewer,
        Err(answer) => return answer,
    };
    let server = match state.gateway.get(&id).await {
        Ok(server) => server,
        Err(error) => return super::servers::failed_lookup(viewer, error),
    };
    let action = viewer.action("console.server.settings", &server.id);
    let body = match update_of(&server, &form) {
        Ok(body) => body,
        Err(problem) => {
            return super::servers::server_page(&state, viewer, &id, None, None, Some(problem))
                .await;
        }
    };
    match state.gateway.update(&server.id, body, &action).await {
        Ok(_) => {
            Redirect::to(&format!("{SERVERS}/{}?done=settings_saved", server.id)).into_response()
        }
        Err(error) => {
            let problem = super::refusal(&state, &action, error);
            super::servers::server_page(&state, viewer, &id, None, None, Some(problem)).await
        }
    }
}

/// The change the form asks for.
fn update_of(server: &ServerView, form: &EditForm) -> Result<UpdateServer, String> {
    let target = form.target.trim().to_string();
    let mut body = UpdateServer::default();
    if server.runtime == Runtime::Remote {
        let old = server.remote_config.clone().unwrap_or_default();
        body.remote_config = Some(RemoteConfig {
            url: target,
            transport: old.transport,
            headers: pairs(&form.secrets, ':', "Headers")?,
        });
        return Ok(body);
    }
    let args = arguments(&form.args);
    match server.runtime {
        Runtime::Npx => {
            body.npx_config = Some(PackageConfig {
                package: target,
                args,
            })
        }
        Runtime::Uvx => {
            body.uvx_config = Some(PackageConfig {
                package: target,
                args,
            })
        }
        _ => {
            body.command_config = Some(CommandConfig {
                command: target,
                args,
            })
        }
    }
    let plain = pairs(&form.env, '=', "Environment")?;
    let secrets = pairs(&form.secrets, '=', "Secrets")?;
    if let Some(key) = plain.keys().find(|key| secrets.contains_key(*key)) {
        return Err(format!("`{key}` is both a plain setting and a secret."));
    }
    let mut env: BTreeMap<String, Option<String>> =
        server.env.keys().map(|key| (key.clone(), None)).collect();
    body.sensitive_keys = Some(secrets.keys().cloned().collect());
    env.extend(plain.into_iter().chain(secrets).map(|(k, v)| (k, Some(v))));
    body.env = Some(env);
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
