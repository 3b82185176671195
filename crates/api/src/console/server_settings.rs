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
        CommandConfig, CreateServer, EnvInput, Manifest, PackageConfig, RemoteConfig, Runtime,
        UpdateServer,
    },
};

use super::{
    Viewer,
    forms::{arguments, pairs},
};
use crate::AppState;

const SERVERS: &str = "/console/admin/servers";

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
