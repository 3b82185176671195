//! A registered server as the API sees it, the bodies that create and change one, and the rules
//! they must follow. Pure: no IO but the DNS check in [`check_url_target`].

use std::{collections::BTreeMap, net::IpAddr};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use switchboard_tools::shape::{object, objects};

/// What a masked secret looks like in every answer.
pub const MASK: &str = "********";
/// Aliases that name the gateway's own endpoints.
const RESERVED_ALIASES: &[&str] = &["admin", "user", "sse", "message", "messages"];

/// How a server runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Runtime {
    Remote,
    Npx,
    Uvx,
    Command,
}

impl Runtime {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Remote => "remote",
            Self::Npx => "npx",
            Self::Uvx => "uvx",
            Self::Command => "command",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "remote" => Some(Self::Remote),
            "npx" => Some(Self::Npx),
            "uvx" => Some(Self::Uvx),
            "command" => Some(Self::Command),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RemoteConfig {
    pub url: String,
    /// `auto` (default), `http` or `sse`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transport: Option<String>,
    /// Header values are secrets: sealed at rest, masked in answers.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PackageConfig {
    /// An npm package (`@scope/name@version`) or a PyPI requirement (`name==1.2`).
    pub package: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CommandConfig {
    pub command: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
}

/// Tool governance, as the tool registry applies it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Governance {
    /// Prefixed to every exposed tool name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub tool_prefix: String,
    /// When set, only these tools are exposed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_tools: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deny_tools: Vec<String>,
    /// Remote name → exposed name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub rename: BTreeMap<String, String>,
    /// Remote name → description shown instead.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub descriptions: BTreeMap<String, String>,
    /// Remote name → parameters pinned (injected, hidden from clients).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub pinned: BTreeMap<String, Map<String, Value>>,
}

/// An env entry in obot's list form: `{key, value, sensitive}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvEntry {
    pub key: String,
    #[serde(default)]
    pub value: String,
    #[serde(default)]
    pub sensitive: bool,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub required: Option<bool>,
}

/// Env as a map or as obot's list of entries.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum EnvInput {
    Map(BTreeMap<String, String>),
    List(#[serde(deserialize_with = "objects")] Vec<EnvEntry>),
}

impl EnvInput {
    /// The values, and the keys the list form marks sensitive.
    pub fn split(self) -> (BTreeMap<String, String>, Vec<String>) {
        match self {
            Self::Map(map) => (map, Vec::new()),
            Self::List(entries) => {
                let sensitive = entries
                    .iter()
                    .filter(|e| e.sensitive)
                    .map(|e| e.key.clone())
                    .collect();
                (
                    entries.into_iter().map(|e| (e.key, e.value)).collect(),
                    sensitive,
                )
            }
        }
    }
}

/// Seed 004's manifest, plus the other runtimes' configs.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Manifest {
    pub name: Option<String>,
    #[serde(default)]
    pub short_description: Option<String>,
    pub runtime: Option<String>,
    #[serde(default, deserialize_with = "object")]
    pub remote_config: Option<RemoteConfig>,
    #[serde(default, deserialize_with = "object")]
    pub npx_config: Option<PackageConfig>,
    #[serde(default, deserialize_with = "object")]
    pub uvx_config: Option<PackageConfig>,
    #[serde(default, deserialize_with = "object")]
    pub command_config: Option<CommandConfig>,
    pub env: Option<EnvInput>,
    #[serde(default)]
    pub sensitive_keys: Vec<String>,
    /// obot manifests carry these; kept out of the way.
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub icon: Option<String>,
}

/// `POST /api/mcp-servers`: seed 004's body (`{manifest, alias}`), or a catalog entry's id.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateServer {
    #[serde(default, deserialize_with = "object")]
    pub manifest: Option<Manifest>,
    /// Creates the server from this catalog entry; `manifest` may then be left out.
    pub catalog_entry_id: Option<String>,
    pub alias: Option<String>,
    /// Env values, merged over the manifest's.
    pub env: Option<EnvInput>,
    #[serde(default)]
    pub sensitive_keys: Vec<String>,
    #[serde(default, deserialize_with = "object")]
    pub tools: Option<Governance>,
    pub enabled: Option<bool>,
}

/// `PATCH /api/mcp-servers/{id}`: what is given changes; `env` is merged, a `null` value removes
/// a key.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateServer {
    pub name: Option<String>,
    pub alias: Option<String>,
    pub short_description: Option<String>,
    #[serde(default, deserialize_with = "object")]
    pub remote_config: Option<RemoteConfig>,
    #[serde(default, deserialize_with = "object")]
    pub npx_config: Option<PackageConfig>,
    #[serde(default, deserialize_with = "object")]
    pub uvx_config: Option<PackageConfig>,
    #[serde(default, deserialize_with = "object")]
    pub command_config: Option<CommandConfig>,
    pub env: Option<BTreeMap<String, Option<String>>>,
    pub sensitive_keys: Option<Vec<String>>,
    #[serde(default, deserialize_with = "object")]
    pub tools: Option<Governance>,
    pub enabled: Option<bool>,
}

/// A server's full definition, secrets included: what is validated, then stored (secrets sealed)
/// and used to connect.
#[derive(Clone, PartialEq)]
pub struct ServerDefinition {
    pub name: String,
    pub alias: String,
    pub short_description: String,
    pub runtime: Runtime,
    pub remote: Option<RemoteConfig>,
    pub package: Option<PackageConfig>,
    pub command: Option<CommandConfig>,
    pub env: BTreeMap<String, String>,
    pub sensitive_keys: Vec<String>,
    pub governance: Governance,
    pub enabled: bool,
}

impl std::fmt::Debug for ServerDefinition {
    // Values of env and headers are left out: they may be secrets.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerDefinition")
            .field("alias", &self.alias)
            .field("runtime", &self.runtime)
            .field("env_keys", &self.env.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// A validation failure: which field, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(pub String);

fn invalid<T>(message: impl Into<String>) -> Result<T, Invalid> {
    Err(Invalid(message.into()))
}

/// Lowercase letters, digits and inner hyphens, 1–63 characters.
pub fn is_valid_alias(alias: &str) -> bool {
    !alias.is_empty()
        && alias.len() <= 63
        && alias
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !alias.starts_with('-')
        && !alias.ends_with('-')
}

/// An alias made from a display name: `My GitHub Server` → `my-github-server`.
pub fn alias_from_name(name: &str) -> String {
    let mut alias = String::new();
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            alias.push(c.to_ascii_lowercase());
        } else if !alias.is_empty() && !alias.ends_with('-') {
            alias.push('-');
        }
    }
    let alias = alias.trim_end_matches('-');
    alias
        .chars()
        .take(63)
        .collect::<String>()
        .trim_end_matches('-')
        .to_string()
}

/// An npm package spec: an optionally scoped name, optionally `@version`. Never starts with `-`,
/// so it cannot be read as an option by `npx`.
pub fn is_valid_npm_package(spec: &str) -> bool {
    let name_char = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || "-._~".contains(c);
    let (name, version) = match spec.strip_prefix('@') {
        Some(scoped) => match scoped.split_once('@') {
            Some((name, version)) => (format!("@{name}"), Some(version)),
            None => (spec.to_string(), None),
        },
        None => match spec.split_once('@') {
            Some((name, version)) => (name.to_string(), Some(version)),
            None => (spec.to_string(), None),
        },
    };
    let name_ok = match name.strip_prefix('@') {
        Some(scoped) => scoped.split_once('/').is_some_and(|(scope, rest)| {
            !scope.is_empty()
                && !rest.is_empty()
                && scope.chars().all(name_char)
                && rest.chars().all(name_char)
                && !rest.starts_with(['.', '_'])
        }),
        None => {
            !name.is_empty() && name.chars().all(name_char) && !name.starts_with(['.', '_', '-'])
        }
    };
    let version_ok = version.is_none_or(|v| {
        !v.is_empty()
            && v.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-._~^<>=*|+ ".contains(c))
    });
    name_ok && version_ok && spec.len() <= 214
}

/// A PyPI requirement as `uvx` takes it: `name`, `name==1.2`, `name[extra]>=1`. Never starts with
/// `-`.
pub fn is_valid_pypi_package(spec: &str) -> bool {
    let mut chars = spec.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && spec.len() <= 200
        && spec
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-._[],=<>~!".contains(c))
}

fn is_valid_env_key(key: &str) -> bool {
    let mut chars = key.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

impl ServerDefinition {
    /// Checks every rule but the URL's DNS target ([`check_url_target`]).
    pub fn validate(&self) -> Result<(), Invalid> {
        let name = self.name.trim();
        if name.is_empty() || name.chars().count() > 100 {
            return invalid("`name` must be 1 to 100 characters");
        }
        if !is_valid_alias(&self.alias) {
            return invalid(format!(
                "`alias` {:?} is not valid: use 1 to 63 lowercase letters, digits and inner hyphens",
                self.alias
            ));
        }
        if RESERVED_ALIASES.contains(&self.alias.as_str()) {
            return invalid(format!("`alias` {:?} is reserved", self.alias));
        }
        if self.short_description.chars().count() > 500 {
            return invalid("`shortDescription` must be at most 500 characters");
        }
        let given = [
            self.remote.is_some(),
            self.package.is_some(),
            self.command.is_some(),
        ];
        if given.iter().filter(|g| **g).count() != 1 {
            return invalid("give exactly the one config of the runtime");
        }
        match self.runtime {
            Runtime::Remote => {
                let Some(remote) = &self.remote else {
                    return invalid("runtime `remote` needs `remoteConfig: {url}`");
                };
                let url = url::Url::parse(&remote.url)
                    .or_else(|_| invalid("`remoteConfig.url` is not a URL"))?;
                // The URL parser reads `http:///mcp` as `http://mcp/`: the text itself must name a
                // host after `//`.
                let names_host = remote.url.split_once("://").is_some_and(|(_, rest)| {
                    !rest.is_empty() && !rest.starts_with(['/', '?', '#'])
                });
                if !names_host {
                    return invalid(format!("`remoteConfig.url` {:?} names no host", remote.url));
                }
                if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
                    return invalid(format!(
                        "`remoteConfig.url` must be an http or https URL, not `{}:`",
                        url.scheme()
                    ));
                }
                if let Some(transport) = &remote.transport {
                    transport
                        .parse::<switchboard_mcp::HttpTransport>()
                        .map_err(|e| Invalid(format!("`remoteConfig.transport`: {e}")))?;
                }
                for (name, value) in &remote.headers {
                    let valid_name = !name.is_empty()
                        && name
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b));
                    let valid_value = value
                        .bytes()
                        .all(|b| b == b'\t' || (b' '..=b'~').contains(&b));
                    if !valid_name || !valid_value {
                        return invalid(format!("header `{name}` is not a valid HTTP header"));
                    }
                }
                if !self.env.is_empty() {
                    return invalid(
                        "`env` applies to local runtimes; use headers for a remote server",
                    );
                }
            }
            Runtime::Npx | Runtime::Uvx => {
                let Some(package) = &self.package else {
                    return invalid(format!(
                        "runtime `{}` needs `{}Config: {{package}}`",
                        self.runtime.as_str(),
                        self.runtime.as_str()
                    ));
                };
                let ok = if self.runtime == Runtime::Npx {
                    is_valid_npm_package(&package.package)
                } else {
                    is_valid_pypi_package(&package.package)
                };
                if !ok {
                    return invalid(format!(
                        "`package` {:?} is not a valid {} package spec",
                        package.package,
                        if self.runtime == Runtime::Npx {
                            "npm"
                        } else {
                            "PyPI"
                        }
                    ));
                }
            }
            Runtime::Command => {
                let Some(command) = &self.command else {
                    return invalid("runtime `command` needs `commandConfig: {command, args}`");
                };
                if command.command.trim().is_empty() || command.command.contains('\0') {
                    return invalid("`commandConfig.command` must be a program name or path");
                }
            }
        }
        for key in self.env.keys() {
            if !is_valid_env_key(key) {
                return invalid(format!("env key {key:?} is not a valid variable name"));
            }
        }
        for key in &self.sensitive_keys {
            if !self.env.contains_key(key) {
                return invalid(format!("sensitive key {key:?} is not in `env`"));
            }
        }
        let prefix = &self.governance.tool_prefix;
        if !prefix.is_empty() && !switchboard_tools::transform::is_valid_name(prefix) {
            return invalid("`tools.toolPrefix` may hold only letters, digits, `_` and `-`");
        }
        Ok(())
    }

    /// The definition with every secret masked: header values and sensitive env values.
    pub fn masked_env(&self) -> BTreeMap<String, String> {
        self.env
            .iter()
            .map(|(key, value)| {
                let shown = if self.sensitive_keys.contains(key) {
                    MASK.to_string()
                } else {
                    value.clone()
                };
                (key.clone(), shown)
            })
            .collect()
    }
}

/// A URL with its credentials masked: the user and password, and every query value (`api_key=`,
/// `token=`…), which are secrets as header values are. A URL that does not parse is masked
/// whole.
pub fn masked_url(text: &str) -> String {
    let Ok(mut url) = url::Url::parse(text) else {
        return MASK.to_string();
    };
    if !url.username().is_empty() {
        let _ = url.set_username(MASK);
    }
    if url.password().is_some() {
        let _ = url.set_password(Some(MASK));
    }
    if url.query().is_some() {
        let keys: Vec<String> = url.query_pairs().map(|(key, _)| key.into_owned()).collect();
        url.query_pairs_mut()
            .clear()
            .extend_pairs(keys.iter().map(|key| (key.as_str(), MASK)));
    }
    url.to_string()
}

/// Resolves a remote URL's host and refuses link-local and metadata targets, for a clear error at
/// registration; every connection is checked again when it is made (`switchboard_mcp::net`).
pub async fn check_url_target(url: &str) -> Result<(), Invalid> {
    let parsed = url::Url::parse(url).map_err(|_| Invalid("the URL is not valid".into()))?;
    let host = parsed
        .host_str()
        .ok_or_else(|| Invalid("the URL has no host".into()))?;
    if switchboard_mcp::net::is_forbidden_host_name(host) {
        return invalid("`remoteConfig.url` points at a cloud metadata service");
    }
    let port = parsed.port_or_known_default().unwrap_or(443);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let addresses: Vec<IpAddr> = match host.parse::<IpAddr>() {
        Ok(ip) => vec![ip],
        // A name that does not resolve now may resolve later; only what it resolves to is judged.
        Err(_) => match tokio::net::lookup_host((host, port)).await {
            Ok(found) => found.map(|a| a.ip()).collect(),
            Err(_) => Vec::new(),
        },
    };
    if addresses
        .into_iter()
        .any(switchboard_mcp::net::is_forbidden_address)
    {
        return invalid(
            "`remoteConfig.url` resolves to a link-local or cloud metadata address, which the \
             gateway refuses unless configured to allow it",
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases() {
        for good in ["github", "my-server-2", "a"] {
            assert!(is_valid_alias(good), "{good}");
        }
        for bad in [
            "",
            "-x",
            "x-",
            "Upper",
            "under_score",
            "a/b",
            &"a".repeat(64),
        ] {
            assert!(!is_valid_alias(bad), "{bad}");
        }
        assert_eq!(alias_from_name("My GitHub  Server!"), "my-github-server");
        assert_eq!(alias_from_name("***"), "");
    }

    #[test]
    fn package_specs() {
        for good in [
            "n8n-mcp",
            "@scope/foo",
            "@modelcontextprotocol/server-everything@2026.8.31",
            "pkg@^1.2.0",
        ] {
            assert!(is_valid_npm_package(good), "{good}");
        }
        for bad in [
            "",
            "-y",
            "--registry=http://evil",
            "@scope",
            "@/x",
            "Foo Bar",
            "a;rm -rf /",
            "x@",
        ] {
            assert!(!is_valid_npm_package(bad), "{bad}");
        }
        for good in ["mcp-server-fetch", "mcp-server-git==0.6.2", "pkg[extra]>=1"] {
            assert!(is_valid_pypi_package(good), "{good}");
        }
        for bad in ["", "--with", "a b", "x;y"] {
            assert!(!is_valid_pypi_package(bad), "{bad}");
        }
    }
}
