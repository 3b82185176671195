//! Servers imported from an `mcpServers` block, as Claude, Cursor and VS Code write them: each
//! entry becomes a registration, checked as any other. An entry with a `url` is a remote server
//! (`type` `sse` is legacy SSE, `http` or `streamable-http` Streamable HTTP, none tries both); one
//! with a `command` runs locally: `npx` and `uvx` as packages, anything else as a command. Every
//! `env` value is taken for a secret: sealed at rest and masked in answers.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{
    Gateway, GatewayError,
    audit::AdminAction,
    model::{CommandConfig, CreateServer, EnvInput, Manifest, PackageConfig, RemoteConfig},
};

/// One entry of the block, as clients write it.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Entry {
    #[serde(rename = "type")]
    kind: Option<String>,
    url: Option<String>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    command: Option<String>,
    #[serde(default)]
    args: Vec<String>,
    #[serde(default)]
    env: BTreeMap<String, String>,
}

/// What became of one entry.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Imported {
    /// The entry's name in the block.
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alias: Option<String>,
    /// Why it was not registered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ImportError>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ImportError {
    pub code: &'static str,
    pub message: String,
}

/// An alias made from an entry's name: lowercase letters, digits and inner hyphens.
fn alias_of(name: &str) -> String {
    let mut alias = String::new();
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            alias.push(c.to_ascii_lowercase());
        } else if !alias.is_empty() && !alias.ends_with('-') {
            alias.push('-');
        }
    }
    alias.trim_end_matches('-').chars().take(63).collect()
}

/// A package runtime's package (the first argument that is no flag) and the arguments after it.
fn package_of(args: &[String]) -> Result<PackageConfig, GatewayError> {
    let at = args
        .iter()
        .position(|arg| !arg.starts_with('-'))
        .ok_or_else(|| GatewayError::Invalid("the command names no package".into()))?;
    Ok(PackageConfig {
        package: args[at].clone(),
        args: args[at + 1..].to_vec(),
    })
}

/// The registration an entry asks for.
fn create_of(name: &str, entry: Entry) -> Result<CreateServer, GatewayError> {
    let mut manifest = Manifest {
        name: Some(name.to_string()),
        ..Manifest::default()
    };
    match (entry.url, entry.command) {
        (Some(url), None) => {
            let transport = match entry.kind.as_deref() {
                Some("sse") => Some("sse".to_string()),
                Some("http" | "streamable-http" | "streamableHttp") => Some("http".to_string()),
                None => None,
                Some(other) => {
                    return Err(GatewayError::Invalid(format!(
                        "`type` is http, streamable-http or sse, not {other:?}"
                    )));
                }
            };
            manifest.runtime = Some("remote".into());
            manifest.remote_config = Some(RemoteConfig {
                url,
                transport,
                headers: entry.headers,
            });
        }
        (None, Some(command)) => {
            match command.as_str() {
                "npx" => {
                    manifest.runtime = Some("npx".into());
                    manifest.npx_config = Some(package_of(&entry.args)?);
                }
                "uvx" => {
                    manifest.runtime = Some("uvx".into());
                    manifest.uvx_config = Some(package_of(&entry.args)?);
                }
                _ => {
                    manifest.runtime = Some("command".into());
                    manifest.command_config = Some(CommandConfig {
                        command,
                        args: entry.args,
                    });
                }
            }
            manifest.sensitive_keys = entry.env.keys().cloned().collect();
            manifest.env = Some(EnvInput::Map(entry.env));
        }
        _ => {
            return Err(GatewayError::Invalid(
                "an entry has either a `url` or a `command`".into(),
            ));
        }
    }
    Ok(CreateServer {
        manifest: Some(manifest),
        alias: Some(alias_of(name)).filter(|alias| !alias.is_empty()),
        ..CreateServer::default()
    })
}

/// The entries of a block: `{"mcpServers": {...}}`, or VS Code's `{"servers": {...}}`.
fn entries_of(block: &Value) -> Result<Vec<(String, Value)>, GatewayError> {
    let servers = block
        .get("mcpServers")
        .or_else(|| block.get("servers"))
        .and_then(Value::as_object)
        .ok_or_else(|| {
            GatewayError::Invalid(
                "the block is an object with `mcpServers` (or VS Code's `servers`)".into(),
            )
        })?;
    if servers.is_empty() {
        return Err(GatewayError::Invalid("the block names no server".into()));
    }
    Ok(servers
        .iter()
        .map(|(name, entry)| (name.clone(), entry.clone()))
        .collect())
}

impl Gateway {
    /// Registers every entry of an `mcpServers` block; each one's outcome, by the entries' names.
    /// A block that cannot be read registers nothing.
    pub async fn import_servers(
        &self,
        block: &Value,
        action: &AdminAction,
    ) -> Result<Vec<Imported>, GatewayError> {
        let mut outcomes = Vec::new();
        for (name, entry) in entries_of(block)? {
            let created = match serde_json::from_value::<Entry>(entry) {
                Ok(entry) => match create_of(&name, entry) {
                    Ok(body) => self.create(body, action).await,
                    Err(error) => Err(error),
                },
                Err(error) => Err(GatewayError::Invalid(format!("not an entry: {error}"))),
            };
            outcomes.push(match created {
                Ok(server) => Imported {
                    name,
                    id: Some(server.id),
                    alias: Some(server.alias),
                    error: None,
                },
                Err(error) => Imported {
                    name,
                    id: None,
                    alias: None,
                    error: Some(ImportError {
                        code: error.code(),
                        message: match error {
                            GatewayError::Store(_) | GatewayError::Sealed(_) => {
                                tracing::error!(%error, "an import failed");
                                "the gateway failed; see its log".into()
                            }
                            other => other.to_string(),
                        },
                    }),
                },
            });
        }
        Ok(outcomes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn create(entry: Value) -> Result<CreateServer, GatewayError> {
        create_of(
            "My Server",
            serde_json::from_value(entry).expect("an entry"),
        )
    }

    #[test]
    fn entries_become_registrations_by_what_they_name() {
        let remote = create(json!({"type": "sse", "url": "https://x.example.com/sse",
            "headers": {"Authorization": "Bearer t"}}))
        .expect("remote");
        let manifest = remote.manifest.expect("manifest");
        assert_eq!(manifest.runtime.as_deref(), Some("remote"));
        let config = manifest.remote_config.expect("config");
        assert_eq!(config.transport.as_deref(), Some("sse"));
        assert_eq!(remote.alias.as_deref(), Some("my-server"));

        let npx = create(
            json!({"command": "npx", "args": ["-y", "@scope/pkg@1.0", "--flag"],
            "env": {"API_KEY": "secret"}}),
        )
        .expect("npx")
        .manifest
        .expect("manifest");
        let package = npx.npx_config.expect("package");
        assert_eq!(package.package, "@scope/pkg@1.0");
        assert_eq!(package.args, ["--flag"]);
        assert_eq!(npx.sensitive_keys, ["API_KEY"], "env values are secrets");

        let command = create(json!({"command": "python3", "args": ["server.py"]}))
            .expect("command")
            .manifest
            .expect("manifest");
        assert_eq!(command.runtime.as_deref(), Some("command"));

        for bad in [
            json!({}),
            json!({"url": "https://x.example.com", "command": "npx"}),
            json!({"command": "npx", "args": ["-y"]}),
            json!({"type": "websocket", "url": "wss://x.example.com"}),
        ] {
            assert!(create(bad.clone()).is_err(), "{bad}");
        }
        assert!(entries_of(&json!({"mcpServers": {}})).is_err());
        assert!(entries_of(&json!([1])).is_err());
        assert_eq!(
            entries_of(&json!({"servers": {"a": {}}}))
                .expect("VS Code's")
                .len(),
            1
        );
        assert_eq!(alias_of("My  Server!"), "my-server");
    }
}
