//! A server's definition between the API and the store: built from a create body or changed by a
//! PATCH, checked, sealed into a row and opened from one, shown with its secrets masked, and turned
//! into the tool registry's config.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Value, json};
use switchboard_mcp::{Endpoint, HttpConfig, StdioConfig, UpstreamConfig};
use switchboard_store::{ServerRow, StoreError};
use switchboard_tools::{RemoteServerConfig, ToolWrapper};

use crate::{
    Gateway, GatewayError, ServerView,
    model::{
        CommandConfig, CreateServer, MASK, PackageConfig, RemoteConfig, Runtime, ServerDefinition,
        UpdateServer, alias_from_name, check_url_target, masked_url,
    },
};

/// The secret values of one server, sealed together.
#[derive(Debug, Default, serde::Deserialize, Serialize)]
struct Sealed {
    #[serde(default)]
    env: BTreeMap<String, String>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    /// A remote URL that holds credentials (user, password or query values); the config keeps
    /// it masked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    url: Option<String>,
}

impl Gateway {
    /// Every rule, and the URL's target unless allowed.
    pub(crate) async fn check(&self, definition: &ServerDefinition) -> Result<(), GatewayError> {
        definition.validate()?;
        if let Some(remote) = &definition.remote
            && !self.settings.allow_link_local
        {
            check_url_target(&remote.url).await?;
        }
        Ok(())
    }

    pub(crate) fn definition_from_create(
        &self,
        body: CreateServer,
    ) -> Result<ServerDefinition, GatewayError> {
        let mut manifest = body.manifest.unwrap_or_default();
        let mut sensitive_keys = manifest.sensitive_keys.clone();
        let mut required_env = Vec::new();
        if let Some(entry_id) = &body.catalog_entry_id {
            let entry = self
                .catalog
                .get(entry_id)
                .ok_or_else(|| GatewayError::Invalid(format!("no catalog entry `{entry_id}`")))?;
            manifest.name = manifest.name.or_else(|| Some(entry.name.clone()));
            manifest.short_description = manifest
                .short_description
                .or_else(|| Some(entry.description.clone()));
            manifest.runtime = Some(entry.runtime.clone());
            match entry.runtime.as_str() {
                "remote" => {
                    manifest.remote_config = Some(RemoteConfig {
                        url: entry.url.clone().unwrap_or_default(),
                        ..RemoteConfig::default()
                    })
                }
                "command" => {
                    manifest.command_config = Some(CommandConfig {
                        command: entry.command.clone().unwrap_or_default(),
                        args: entry.args.clone(),
                    })
                }
                runtime => {
                    let package = Some(PackageConfig {
                        package: entry.package.clone().unwrap_or_default(),
                        args: entry.args.clone(),
                    });
                    if runtime == "uvx" {
                        manifest.uvx_config = package;
                    } else {
                        manifest.npx_config = package;
                    }
                }
            }
            required_env = entry.required_env.clone();
            sensitive_keys.extend(entry.required_env.iter().cloned());
        }
        let name = manifest
            .name
            .clone()
            .ok_or_else(|| GatewayError::Invalid("`manifest.name` is required".into()))?;
        let runtime_text = manifest.runtime.clone().unwrap_or_else(|| {
            if manifest.remote_config.is_some() {
                "remote".into()
            } else if manifest.uvx_config.is_some() {
                "uvx".into()
            } else if manifest.command_config.is_some() {
                "command".into()
            } else {
                "npx".into()
            }
        });
        let runtime = Runtime::parse(&runtime_text).ok_or_else(|| {
            GatewayError::Invalid(format!(
                "`manifest.runtime` must be remote, npx, uvx or command, not {runtime_text:?}"
            ))
        })?;
        let mut env = BTreeMap::new();
        for input in [manifest.env.clone(), body.env].into_iter().flatten() {
            let (values, sensitive) = input.split();
            env.extend(values);
            sensitive_keys.extend(sensitive);
        }
        sensitive_keys.extend(body.sensitive_keys);
        sensitive_keys.sort();
        sensitive_keys.dedup();
        let missing: Vec<_> = required_env
            .iter()
            .filter(|key| env.get(*key).is_none_or(String::is_empty))
            .cloned()
            .collect();
        if !missing.is_empty() {
            return Err(GatewayError::Invalid(format!(
                "the catalog entry needs env {}",
                missing.join(", ")
            )));
        }
        let alias = match body.alias {
            Some(alias) => alias,
            None => alias_from_name(&name),
        };
        // A config of another runtime is refused, never silently dropped.
        let given = [
            (
                "remoteConfig",
                Runtime::Remote,
                manifest.remote_config.is_some(),
            ),
            ("npxConfig", Runtime::Npx, manifest.npx_config.is_some()),
            ("uvxConfig", Runtime::Uvx, manifest.uvx_config.is_some()),
            (
                "commandConfig",
                Runtime::Command,
                manifest.command_config.is_some(),
            ),
        ];
        if let Some((field, _, _)) = given.iter().find(|(_, of, given)| *given && *of != runtime) {
            return Err(GatewayError::Invalid(format!(
                "`manifest.{field}` does not apply to a `{}` server",
                runtime.as_str()
            )));
        }
        let (remote, package, command) = match runtime {
            Runtime::Remote => (manifest.remote_config, None, None),
            Runtime::Npx => (None, manifest.npx_config, None),
            Runtime::Uvx => (None, manifest.uvx_config, None),
            Runtime::Command => (None, None, manifest.command_config),
        };
        Ok(ServerDefinition {
            name,
            alias,
            short_description: manifest.short_description.unwrap_or_default(),
            runtime,
            remote,
            package,
            command,
            env,
            sensitive_keys,
            governance: body.tools.unwrap_or_default(),
            enabled: body.enabled.unwrap_or(true),
        })
    }

    /// The stored form: secrets sealed, everything else as JSON.
    pub(crate) fn to_row(
        &self,
        id: &str,
        d: &ServerDefinition,
        created_at: i64,
        updated_at: i64,
    ) -> ServerRow {
        let mut sealed = Sealed::default();
        let mut env = serde_json::Map::new();
        for (key, value) in &d.env {
            if d.sensitive_keys.contains(key) {
                sealed.env.insert(key.clone(), value.clone());
            } else {
                env.insert(key.clone(), Value::String(value.clone()));
            }
        }
        let config = match (d.runtime, &d.remote, &d.package, &d.command) {
            (Runtime::Remote, Some(remote), _, _) => {
                sealed.headers = remote.headers.clone();
                let shown = masked_url(&remote.url);
                if shown != remote.url {
                    sealed.url = Some(remote.url.clone());
                }
                json!({"url": shown, "transport": remote.transport,
                       "headerNames": remote.headers.keys().collect::<Vec<_>>()})
            }
            (_, _, Some(package), _) => json!({"package": package.package, "args": package.args}),
            (_, _, _, Some(command)) => json!({"command": command.command, "args": command.args}),
            _ => json!({}),
        };
        let secret = !sealed.env.is_empty() || !sealed.headers.is_empty() || sealed.url.is_some();
        let sealed = secret.then(|| {
            self.sealer.seal(
                serde_json::to_string(&sealed)
                    .unwrap_or_default()
                    .as_bytes(),
            )
        });
        ServerRow {
            id: id.to_string(),
            name: d.name.clone(),
            alias: d.alias.clone(),
            short_description: d.short_description.clone(),
            runtime: d.runtime.as_str().to_string(),
            config,
            env: Value::Object(env),
            sensitive_keys: json!(d.sensitive_keys),
            sealed,
            governance: serde_json::to_value(&d.governance).unwrap_or(Value::Null),
            enabled: d.enabled,
            created_at,
            updated_at,
        }
    }

    /// The full definition from a row: secrets opened, at the moment of use only.
    pub(crate) fn definition(&self, row: &ServerRow) -> Result<ServerDefinition, GatewayError> {
        let corrupt = || GatewayError::Store(StoreError::Corrupt(format!("server {}", row.id)));
        let sealed: Sealed = match &row.sealed {
            Some(text) => {
                let bytes = self
                    .sealer
                    .open(text)
                    .map_err(|_| GatewayError::Sealed(row.alias.clone()))?;
                serde_json::from_slice(&bytes).map_err(|_| corrupt())?
            }
            None => Sealed::default(),
        };
        let runtime = Runtime::parse(&row.runtime).ok_or_else(corrupt)?;
        let text = |key: &str| row.config[key].as_str().unwrap_or_default().to_string();
        let args = || -> Vec<String> {
            serde_json::from_value(row.config["args"].clone()).unwrap_or_default()
        };
        let (remote, package, command) = match runtime {
            Runtime::Remote => (
                Some(RemoteConfig {
                    url: sealed.url.unwrap_or_else(|| text("url")),
                    transport: row.config["transport"].as_str().map(str::to_owned),
                    headers: sealed.headers,
                }),
                None,
                None,
            ),
            Runtime::Npx | Runtime::Uvx => (
                None,
                Some(PackageConfig {
                    package: text("package"),
                    args: args(),
                }),
                None,
            ),
            Runtime::Command => (
                None,
                None,
                Some(CommandConfig {
                    command: text("command"),
                    args: args(),
                }),
            ),
        };
        let mut env: BTreeMap<String, String> =
            serde_json::from_value(row.env.clone()).map_err(|_| corrupt())?;
        env.extend(sealed.env);
        Ok(ServerDefinition {
            name: row.name.clone(),
            alias: row.alias.clone(),
            short_description: row.short_description.clone(),
            runtime,
            remote,
            package,
            command,
            env,
            sensitive_keys: serde_json::from_value(row.sensitive_keys.clone())
                .map_err(|_| corrupt())?,
            governance: serde_json::from_value(row.governance.clone()).map_err(|_| corrupt())?,
            enabled: row.enabled,
        })
    }

    pub(crate) fn view(&self, row: &ServerRow) -> Result<ServerView, GatewayError> {
        let definition = self.definition(row)?;
        let env = definition.masked_env();
        let remote_config = definition.remote.clone().map(|mut remote| {
            for value in remote.headers.values_mut() {
                *value = MASK.to_string();
            }
            remote.url = masked_url(&remote.url);
            remote
        });
        let (npx_config, uvx_config) = match definition.runtime {
            Runtime::Npx => (definition.package.clone(), None),
            Runtime::Uvx => (None, definition.package.clone()),
            _ => (None, None),
        };
        Ok(ServerView {
            id: row.id.clone(),
            name: definition.name,
            alias: definition.alias.clone(),
            short_description: definition.short_description,
            runtime: definition.runtime,
            remote_config,
            npx_config,
            uvx_config,
            command_config: definition.command,
            env,
            sensitive_keys: definition.sensitive_keys,
            tools: definition.governance,
            enabled: definition.enabled,
            created_at: row.created_at,
            updated_at: row.updated_at,
            status: self.pool.status(&row.id),
            connect_url: format!(
                "{}/mcp/{}",
                self.settings.public_url.trim_end_matches('/'),
                definition.alias
            ),
        })
    }

    /// How to reach the server, and its governance, as the tool registry takes them.
    pub fn registry_config(&self, d: &ServerDefinition) -> RemoteServerConfig {
        let endpoint = match (d.runtime, &d.remote, &d.package, &d.command) {
            (Runtime::Remote, Some(remote), _, _) => {
                let mut http = HttpConfig::new(remote.url.clone());
                if let Some(transport) = &remote.transport
                    && let Ok(parsed) = transport.parse()
                {
                    http.transport = parsed;
                }
                http.headers = remote.headers.clone().into_iter().collect();
                Endpoint::Http(http)
            }
            (runtime, _, Some(package), _) => {
                let (program, mut args) = if runtime == Runtime::Uvx {
                    ("uvx", vec![package.package.clone()])
                } else {
                    ("npx", vec!["-y".to_string(), package.package.clone()])
                };
                args.extend(package.args.iter().cloned());
                stdio_endpoint(program, args, &d.env)
            }
            (_, _, _, Some(command)) => {
                stdio_endpoint(&command.command, command.args.clone(), &d.env)
            }
            _ => Endpoint::Http(HttpConfig::new(String::new())),
        };
        let mut upstream = UpstreamConfig::new(d.alias.clone(), endpoint);
        let settings = &self.settings;
        upstream.request_timeout = settings.request_timeout;
        upstream.max_request_timeout = settings.max_request_timeout;
        upstream.breaker_threshold = settings.breaker_threshold;
        upstream.breaker_cooldown = settings.breaker_cooldown;
        upstream.max_concurrent = settings.max_concurrent;
        upstream.max_queued = settings.max_queued;
        upstream.max_answer_bytes = settings.max_answer_bytes;
        upstream.raw_client = self.raw_client.clone();
        let mut config = RemoteServerConfig::new(upstream);
        let g = &d.governance;
        config.tool_prefix = g.tool_prefix.clone();
        config.allow_tools = g.allow_tools.clone();
        config.deny_tools = g.deny_tools.clone();
        let mut remote_names: Vec<&String> = g.rename.keys().collect();
        remote_names.extend(g.descriptions.keys());
        remote_names.extend(g.pinned.keys());
        remote_names.sort();
        remote_names.dedup();
        config.wrappers = remote_names
            .into_iter()
            .map(|tool| ToolWrapper {
                tool: tool.clone(),
                name: g.rename.get(tool).cloned(),
                description: g.descriptions.get(tool).cloned(),
                params: g.pinned.get(tool).cloned().unwrap_or_default(),
            })
            .collect();
        config
    }
}

/// A local runtime: only its own env plus `PATH` and `HOME`, never the gateway's environment.
fn stdio_endpoint(program: &str, args: Vec<String>, env: &BTreeMap<String, String>) -> Endpoint {
    let mut stdio = StdioConfig::new(program, args);
    stdio.env = env.clone();
    stdio.inherit_env = false;
    Endpoint::Stdio(stdio)
}

/// Applies a PATCH body to a definition.
pub(crate) fn apply_update(
    d: &mut ServerDefinition,
    body: UpdateServer,
) -> Result<(), GatewayError> {
    if let Some(name) = body.name {
        d.name = name;
    }
    if let Some(alias) = body.alias {
        d.alias = alias;
    }
    if let Some(text) = body.short_description {
        d.short_description = text;
    }
    let wrong_runtime = |given: &str| {
        GatewayError::Invalid(format!(
            "`{given}` does not apply to a `{}` server",
            d.runtime.as_str()
        ))
    };
    if let Some(mut remote) = body.remote_config {
        if d.runtime != Runtime::Remote {
            return Err(wrong_runtime("remoteConfig"));
        }
        // A masked header value or URL sent back unchanged keeps the stored secret.
        if let Some(old) = &d.remote {
            if remote.url == masked_url(&old.url) {
                remote.url.clone_from(&old.url);
            }
            for (name, value) in remote.headers.iter_mut() {
                if value == MASK
                    && let Some(stored) = old.headers.get(name)
                {
                    value.clone_from(stored);
                }
            }
        }
        d.remote = Some(remote);
    }
    if let Some(package) = body.npx_config {
        if d.runtime != Runtime::Npx {
            return Err(wrong_runtime("npxConfig"));
        }
        d.package = Some(package);
    }
    if let Some(package) = body.uvx_config {
        if d.runtime != Runtime::Uvx {
            return Err(wrong_runtime("uvxConfig"));
        }
        d.package = Some(package);
    }
    if let Some(command) = body.command_config {
        if d.runtime != Runtime::Command {
            return Err(wrong_runtime("commandConfig"));
        }
        d.command = Some(command);
    }
    // A secret stays write-only: a key that stops being sensitive must be given a new value in
    // the same change, or its stored value would be shown in clear from then on.
    let was_sensitive = d.sensitive_keys.clone();
    let given_anew: Vec<String> = body
        .env
        .iter()
        .flatten()
        .filter(|(_, value)| value.as_deref().is_some_and(|value| value != MASK))
        .map(|(key, _)| key.clone())
        .collect();
    if let Some(changes) = body.env {
        for (key, value) in changes {
            match value {
                // A masked value sent back unchanged keeps the stored secret.
                Some(value) if value == MASK => {}
                Some(value) => {
                    d.env.insert(key, value);
                }
                None => {
                    d.env.remove(&key);
                    d.sensitive_keys.retain(|k| k != &key);
                }
            }
        }
    }
    if let Some(keys) = body.sensitive_keys {
        d.sensitive_keys = keys;
    }
    if let Some(revealed) = was_sensitive.iter().find(|key| {
        d.env.contains_key(*key) && !d.sensitive_keys.contains(key) && !given_anew.contains(key)
    }) {
        return Err(GatewayError::Invalid(format!(
            "`{revealed}` holds a secret: give it a new value to make it a plain setting"
        )));
    }
    if let Some(governance) = body.tools {
        d.governance = governance;
    }
    if let Some(enabled) = body.enabled {
        d.enabled = enabled;
    }
    Ok(())
}
