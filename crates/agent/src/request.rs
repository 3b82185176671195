//! The `POST /run` request (seed 000): the raw body as sent, and its resolution into a [`RunSpec`].

use std::{collections::BTreeMap, time::Duration};

use serde::Deserialize;
use switchboard_mcp::{Endpoint, HttpConfig, HttpTransport, StdioConfig, UpstreamConfig};
use switchboard_tools::RemoteServerConfig;

use crate::{
    llm::{ApiKey, DEFAULT_LLM_TIMEOUT, DEFAULT_RATE_LIMIT_RETRIES, completions_url},
    output::DEFAULT_OUTPUT_CAP,
    run::{RunServer, RunSpec, new_run_id},
};

/// The step budget of a request that sets none (seed 000 gives no default; ten is common).
pub const DEFAULT_MAX_STEPS: u32 = 10;

/// The operator's settings for runs.
#[derive(Debug, Clone)]
pub struct RunnerSettings {
    /// The highest `max_steps` a request may ask for.
    pub max_steps_limit: u32,
    /// The LLM key used when a request brings none (`--llm-api-key` or `OPENAI_API_KEY`).
    pub default_api_key: Option<ApiKey>,
    /// Whether stdio entries are allowed at all (`--no-run-stdio` turns them off).
    pub allow_stdio: bool,
    /// Whether a run's stdio children see this process's environment: off for the server, whose
    /// environment holds its own secrets; on for the CLI, which runs as its user.
    pub stdio_inherit_env: bool,
    /// The cap on tool output sent to the model, in characters.
    pub output_cap: usize,
    /// Whether spans record tool arguments and output (masked, capped).
    pub trace_tool_io: bool,
    /// How long one tool call may take.
    pub tool_timeout: Duration,
    /// How long one LLM call may take.
    pub llm_timeout: Duration,
    pub rate_limit_retries: u32,
    pub rate_limit_base_delay: Duration,
}

/// The LLM endpoint of a request or spec that names none.
const DEFAULT_BASE_URL: &str = "https://api.openai.com/v1";

impl RunnerSettings {
    /// A spec under these settings, before the request's own choices (key, prompt, servers):
    /// the step budget checked against the limit, and the endpoint resolved.
    pub(crate) fn base_spec(
        &self,
        task: String,
        model: String,
        base_url: Option<&str>,
        max_steps: Option<u32>,
    ) -> Result<RunSpec, String> {
        let max_steps = max_steps.unwrap_or(DEFAULT_MAX_STEPS.min(self.max_steps_limit));
        if max_steps == 0 || max_steps > self.max_steps_limit {
            return Err(format!(
                "`max_steps` must be between 1 and {}, not {max_steps}",
                self.max_steps_limit
            ));
        }
        Ok(RunSpec {
            run_id: new_run_id(),
            task,
            model,
            completions_url: completions_url(base_url.unwrap_or(DEFAULT_BASE_URL))?,
            api_key: None,
            max_steps,
            system_prompt: None,
            temperature: None,
            servers: Vec::new(),
            template_secrets: BTreeMap::new(),
            redact: Vec::new(),
            output_cap: self.output_cap,
            trace_tool_io: self.trace_tool_io,
            llm_timeout: self.llm_timeout,
            rate_limit_retries: self.rate_limit_retries,
            rate_limit_base_delay: self.rate_limit_base_delay,
        })
    }
}

impl Default for RunnerSettings {
    fn default() -> Self {
        Self {
            max_steps_limit: 50,
            default_api_key: None,
            allow_stdio: true,
            stdio_inherit_env: false,
            output_cap: DEFAULT_OUTPUT_CAP,
            trace_tool_io: false,
            tool_timeout: switchboard_mcp::config::DEFAULT_REQUEST_TIMEOUT,
            llm_timeout: DEFAULT_LLM_TIMEOUT,
            rate_limit_retries: DEFAULT_RATE_LIMIT_RETRIES,
            rate_limit_base_delay: Duration::from_secs(1),
        }
    }
}

/// The `POST /run` body as sent. Unknown fields are refused, so that a typo is an error rather
/// than a setting silently ignored.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunRequest {
    pub task: String,
    pub model: String,
    pub base_url: Option<String>,
    pub max_steps: Option<u32>,
    pub agent_type: Option<String>,
    #[serde(default, deserialize_with = "switchboard_tools::shape::objects")]
    pub mcp_servers: Vec<McpServerEntry>,
    pub system_prompt: Option<String>,
    pub temperature: Option<f64>,
    pub api_key: Option<String>,
}

/// One `mcp_servers` entry: exactly one of `command`, `url` or `name` says which form it is.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct McpServerEntry {
    pub command: Option<String>,
    #[serde(default)]
    pub args: Vec<String>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    pub url: Option<String>,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    pub transport: Option<String>,
    /// A server registered in the gateway.
    pub name: Option<String>,
    /// Only these tools are offered.
    pub tools: Option<Vec<String>>,
    pub tool_prefix: Option<String>,
}

/// A request that cannot run, with a stable code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct RequestError {
    pub code: &'static str,
    pub message: String,
    /// Whether the caller is refused rather than wrong (403 rather than 400).
    pub forbidden: bool,
}

impl RequestError {
    fn invalid(message: impl Into<String>) -> Self {
        Self {
            code: "invalid_request",
            message: message.into(),
            forbidden: false,
        }
    }
}

/// What the caller may do, as far as runs care.
#[derive(Debug, Clone, Copy)]
pub struct RunPermissions {
    /// Whether the caller may start stdio servers: an admin, or a holder of `run:stdio`.
    pub stdio: bool,
}

/// Parses a body; serde's message names the field and position.
pub fn parse_request(body: &[u8]) -> Result<RunRequest, RequestError> {
    switchboard_tools::shape::parse_object(body)
        .map_err(|error| RequestError::invalid(format!("invalid request body: {error}")))
}

impl RunRequest {
    /// The names of the registered servers the request refers to, for the caller to look up
    /// before [`Self::resolve`].
    pub fn registered_names(&self) -> Vec<String> {
        self.mcp_servers
            .iter()
            .filter_map(|entry| entry.name.clone())
            .collect()
    }

    /// Checks the request and resolves it into a spec. `registered` holds the registered servers
    /// found for [`Self::registered_names`].
    pub fn resolve(
        self,
        settings: &RunnerSettings,
        permissions: RunPermissions,
        registered: &Registered,
    ) -> Result<RunSpec, RequestError> {
        if let Some(agent_type) = &self.agent_type
            && agent_type != "mcp"
        {
            return Err(RequestError::invalid(format!(
                "`agent_type` must be \"mcp\", not {agent_type:?}"
            )));
        }
        if self.task.trim().is_empty() {
            return Err(RequestError::invalid("`task` must not be empty"));
        }
        if self.model.trim().is_empty() {
            return Err(RequestError::invalid("`model` must not be empty"));
        }
        if let Some(temperature) = self.temperature
            && !(0.0..=2.0).contains(&temperature)
        {
            return Err(RequestError::invalid(
                "`temperature` must be between 0 and 2",
            ));
        }
        let base = settings
            .base_spec(
                self.task,
                self.model,
                self.base_url.as_deref(),
                self.max_steps,
            )
            .map_err(RequestError::invalid)?;
        let api_key = self
            .api_key
            .filter(|key| !key.is_empty())
            .map(ApiKey::new)
            .or_else(|| settings.default_api_key.clone());

        let mut servers = Vec::new();
        let mut redact = Vec::new();
        let mut names = BTreeMap::new();
        for (index, entry) in self.mcp_servers.into_iter().enumerate() {
            let (server, secrets) =
                entry.resolve(index, settings, permissions, registered, &mut names)?;
            servers.push(server);
            redact.extend(secrets);
        }
        Ok(RunSpec {
            api_key,
            system_prompt: self.system_prompt,
            temperature: self.temperature,
            servers,
            redact,
            ..base
        })
    }
}

impl McpServerEntry {
    /// The server and the values to mask (env values and headers).
    fn resolve(
        self,
        index: usize,
        settings: &RunnerSettings,
        permissions: RunPermissions,
        registered: &Registered,
        names: &mut BTreeMap<String, usize>,
    ) -> Result<(RunServer, Vec<String>), RequestError> {
        let at = format!("mcp_servers[{index}]");
        let invalid = |message: String| RequestError::invalid(format!("{at}: {message}"));
        let forms = [
            self.command.is_some(),
            self.url.is_some(),
            self.name.is_some(),
        ];
        if forms.iter().filter(|given| **given).count() != 1 {
            return Err(invalid(
                "give exactly one of `command` (a local server), `url` (a remote server) or \
                 `name` (a registered server)"
                    .into(),
            ));
        }
        let mut secrets: Vec<String> = Vec::new();
        let endpoint = if let Some(command) = self.command {
            if !self.headers.is_empty() || self.transport.is_some() {
                return Err(invalid(
                    "`headers` and `transport` apply to `url` servers only".into(),
                ));
            }
            if !settings.allow_stdio {
                return Err(RequestError {
                    code: "stdio_disabled",
                    message: format!(
                        "{at}: local (`command`) servers are turned off on this server; use a \
                         `url` or a registered server"
                    ),
                    forbidden: true,
                });
            }
            if !permissions.stdio {
                return Err(RequestError {
                    code: "forbidden",
                    message: format!(
                        "{at}: a `command` server runs code on the host: only an admin or a \
                         caller with the `run:stdio` permission may start one"
                    ),
                    forbidden: true,
                });
            }
            let (stdio, values) =
                stdio_endpoint(command, self.args, self.env, settings).map_err(invalid)?;
            secrets.extend(values);
            stdio
        } else if let Some(url) = self.url {
            if !self.args.is_empty() || !self.env.is_empty() {
                return Err(invalid(
                    "`args` and `env` apply to `command` servers only".into(),
                ));
            }
            let mut http = http_endpoint(url, self.transport.as_deref()).map_err(invalid)?;
            for (name, value) in self.headers {
                if http::HeaderName::from_bytes(name.as_bytes()).is_err()
                    || http::HeaderValue::from_str(&value).is_err()
                {
                    return Err(invalid(format!(
                        "header `{name}` is not a valid HTTP header"
                    )));
                }
                secrets.push(value.clone());
                http.headers.push((name, value));
            }
            Endpoint::Http(http)
        } else {
            let name = self.name.unwrap_or_default();
            let Some(found) = registered.get(&name) else {
                return Err(RequestError {
                    code: "unknown_server",
                    message: format!("{at}: no enabled server named `{name}` is registered"),
                    forbidden: false,
                });
            };
            if !self.headers.is_empty()
                || self.transport.is_some()
                || !self.args.is_empty()
                || !self.env.is_empty()
            {
                return Err(invalid(
                    "a registered server (`name`) takes only `tools` and `tool_prefix`".into(),
                ));
            }
            let mut server = found.clone();
            narrow(&mut server.config, self.tools, self.tool_prefix);
            unique_name(&server.config.upstream.name, names);
            return Ok((server, Vec::new()));
        };
        let name = unique_name(&server_name(&endpoint), names);
        let config = server_config(name, endpoint, self.tools, self.tool_prefix, settings);
        Ok((config.into(), secrets))
    }
}

/// Registered servers by name (alias), as the gateway holds them.
pub type Registered = BTreeMap<String, RunServer>;

/// A request's `tools` and `tool_prefix` on top of a registered server's own governance: the allow
/// list can only narrow, and the prefix goes in front.
fn narrow(config: &mut RemoteServerConfig, tools: Option<Vec<String>>, prefix: Option<String>) {
    if let Some(tools) = tools {
        config.allow_tools = Some(match config.allow_tools.take() {
            Some(allowed) => tools.into_iter().filter(|t| allowed.contains(t)).collect(),
            None => tools,
        });
    }
    if let Some(prefix) = prefix {
        config.tool_prefix = format!("{prefix}{}", config.tool_prefix);
    }
}

/// A local server's endpoint, and the values to mask (its env values).
pub(crate) fn stdio_endpoint(
    command: String,
    args: Vec<String>,
    env: BTreeMap<String, String>,
    settings: &RunnerSettings,
) -> Result<(Endpoint, Vec<String>), String> {
    if command.trim().is_empty() {
        return Err("`command` must not be empty".into());
    }
    let secrets = env.values().cloned().collect();
    let mut stdio = StdioConfig::new(command, args);
    stdio.env = env;
    stdio.inherit_env = settings.stdio_inherit_env;
    Ok((Endpoint::Stdio(stdio), secrets))
}

/// A remote server's endpoint: an http or https URL, and an optional transport name.
pub(crate) fn http_endpoint(url: String, transport: Option<&str>) -> Result<HttpConfig, String> {
    let parsed =
        url::Url::parse(&url).map_err(|error| format!("`url` is not a valid URL: {error}"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(format!(
            "`url` must be http or https, not `{}:`",
            parsed.scheme()
        ));
    }
    let mut http = HttpConfig::new(url);
    if let Some(transport) = transport {
        http.transport = transport
            .parse::<HttpTransport>()
            .map_err(|error| format!("`transport`: {error}"))?;
    }
    Ok(http)
}

/// A server's registry config: the tool allow list and prefix, and the run's tool timeout.
pub(crate) fn server_config(
    name: String,
    endpoint: Endpoint,
    tools: Option<Vec<String>>,
    tool_prefix: Option<String>,
    settings: &RunnerSettings,
) -> RemoteServerConfig {
    let mut upstream = UpstreamConfig::new(name, endpoint);
    upstream.request_timeout = settings.tool_timeout;
    let mut config = RemoteServerConfig::new(upstream);
    config.allow_tools = tools;
    if let Some(prefix) = tool_prefix {
        config.tool_prefix = prefix;
    }
    config
}

/// A readable name for a server: the package a launcher runs (`npx -y mcp-remote …` is
/// `mcp-remote`), the program, or the URL's host.
pub(crate) fn server_name(endpoint: &Endpoint) -> String {
    const LAUNCHERS: &[&str] = &[
        "npx", "uvx", "node", "python", "python3", "bunx", "deno", "uv",
    ];
    let raw = match endpoint {
        Endpoint::Stdio(stdio) => {
            let program = basename(&stdio.command);
            if LAUNCHERS.contains(&program) {
                stdio
                    .args
                    .iter()
                    .find(|arg| !arg.starts_with('-') && *arg != "run")
                    .map(|arg| {
                        basename(arg)
                            .trim_end_matches(".js")
                            .trim_end_matches(".py")
                    })
                    .unwrap_or(program)
                    .to_string()
            } else {
                program.to_string()
            }
        }
        Endpoint::Http(http) => url::Url::parse(&http.url)
            .ok()
            .and_then(|url| url.host_str().map(str::to_owned))
            .unwrap_or_else(|| "remote".into()),
        _ => "server".into(),
    };
    let slug: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '-'
            }
        })
        .collect();
    if slug.is_empty() {
        "server".into()
    } else {
        slug
    }
}

fn basename(path: &str) -> &str {
    // `@scope/pkg@1.2` names `pkg`.
    let last = path.rsplit('/').next().unwrap_or(path);
    last.split('@')
        .find(|part| !part.is_empty())
        .unwrap_or(last)
}

fn unique_name(base: &str, names: &mut BTreeMap<String, usize>) -> String {
    let count = names.entry(base.to_string()).or_insert(0);
    *count += 1;
    if *count == 1 {
        base.to_string()
    } else {
        format!("{base}-{count}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ADMIN: RunPermissions = RunPermissions { stdio: true };

    fn resolve(body: serde_json::Value) -> Result<RunSpec, RequestError> {
        parse_request(body.to_string().as_bytes())?.resolve(
            &RunnerSettings::default(),
            ADMIN,
            &Registered::new(),
        )
    }

    #[test]
    fn seed_000_request_resolves() {
        let spec = resolve(json!({
            "task": "What are my linear issues?",
            "model": "gpt-4.1-mini",
            "base_url": "https://api.openai.com/v1/chat/completions",
            "max_steps": 3,
            "agent_type": "mcp",
            "mcp_servers": [{
                "command": "npx",
                "args": ["-y", "mcp-remote", "https://mcp.linear.app/sse", "--header", "Authorization: Bearer ${AUTH_TOKEN}"],
                "env": {"AUTH_TOKEN": "YOUR-AUTH_TOKEN"}
            }]
        }))
        .expect("valid");
        assert_eq!(spec.max_steps, 3);
        assert_eq!(
            spec.completions_url,
            "https://api.openai.com/v1/chat/completions"
        );
        assert_eq!(spec.servers[0].config.upstream.name, "mcp-remote");
        assert_eq!(spec.redact, ["YOUR-AUTH_TOKEN"]);
        let Endpoint::Stdio(stdio) = &spec.servers[0].config.upstream.endpoint else {
            panic!("stdio expected");
        };
        assert!(!stdio.inherit_env);
    }

    #[test]
    fn bad_requests_are_refused_with_a_reason() {
        let cases = [
            (json!({"model": "m"}), "missing field `task`"),
            (json!({"task": "t", "model": 3}), "invalid type"),
            (
                json!({"task": "t", "model": "m", "max_steps": 0}),
                "`max_steps` must be between 1 and 50, not 0",
            ),
            (
                json!({"task": "t", "model": "m", "max_steps": 51}),
                "`max_steps` must be between 1 and 50",
            ),
            (
                json!({"task": "t", "model": "m", "agent_type": "react"}),
                "`agent_type` must be \"mcp\"",
            ),
            (
                json!({"task": "t", "model": "m", "surprise": 1}),
                "unknown field `surprise`",
            ),
            (
                json!({"task": "t", "model": "m", "mcp_servers": [{}]}),
                "mcp_servers[0]: give exactly one of",
            ),
            (
                json!({"task": "t", "model": "m", "mcp_servers": [{"url": "file:///etc/passwd"}]}),
                "`url` must be http or https",
            ),
            (
                json!({"task": "t", "model": "m", "mcp_servers": [{"url": "http://x", "transport": "carrier-pigeon"}]}),
                "unknown transport",
            ),
            (
                json!({"task": "t", "model": "m", "mcp_servers": [{"name": "linear"}]}),
                "no enabled server named `linear`",
            ),
            (
                json!({"task": "t", "model": "m", "base_url": "localhost:8080"}),
                "`base_url`",
            ),
        ];
        for (body, expected) in cases {
            let error = resolve(body.clone()).expect_err("refused");
            assert!(
                error.message.contains(expected),
                "{body}: {}",
                error.message
            );
            assert!(!error.forbidden);
        }
    }

    #[test]
    fn stdio_needs_permission_and_can_be_turned_off() {
        let body =
            json!({"task": "t", "model": "m", "mcp_servers": [{"command": "npx", "args": ["x"]}]});
        let request = || parse_request(body.to_string().as_bytes()).expect("parses");
        let error = request()
            .resolve(
                &RunnerSettings::default(),
                RunPermissions { stdio: false },
                &Registered::new(),
            )
            .expect_err("forbidden");
        assert!(error.forbidden && error.code == "forbidden");
        let settings = RunnerSettings {
            allow_stdio: false,
            ..RunnerSettings::default()
        };
        let error = request()
            .resolve(&settings, ADMIN, &Registered::new())
            .expect_err("disabled");
        assert!(error.forbidden && error.code == "stdio_disabled");
    }

    #[test]
    fn server_names_are_readable_and_unique() {
        let spec = resolve(json!({"task": "t", "model": "m", "mcp_servers": [
            {"command": "npx", "args": ["-y", "@modelcontextprotocol/server-everything@2026.1.1"]},
            {"url": "https://mcp.example.com/mcp"},
            {"url": "https://mcp.example.com/other"},
        ]}))
        .expect("valid");
        let names: Vec<_> = spec
            .servers
            .iter()
            .map(|s| s.config.upstream.name.as_str())
            .collect();
        assert_eq!(
            names,
            ["server-everything", "mcp.example.com", "mcp.example.com-2"]
        );
    }
}
