//! The agent spec file of `switchboard run` (seed 002's YAML shape), resolved into a [`RunSpec`].

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Map, Value};
use switchboard_mcp::Endpoint;
use switchboard_tools::{RemoteServerConfig, ToolWrapper};

use crate::{
    llm::ApiKey,
    request::{RunnerSettings, http_endpoint, server_config, server_name, stdio_endpoint},
    run::RunSpec,
};

/// An agent spec as written. Unknown keys are refused, so that a typo is an error.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentSpec {
    pub model: Option<String>,
    pub base_url: Option<String>,
    pub max_steps: Option<u32>,
    pub system_prompt: Option<String>,
    pub temperature: Option<f64>,
    #[serde(default)]
    pub tools: Vec<ToolSource>,
}

/// One `tools:` entry.
#[derive(Debug, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum ToolSource {
    Mcp(McpSource),
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct McpSource {
    /// A name for the server in results and logs; derived from the URL or command otherwise.
    pub name: Option<String>,
    /// The server's URL (remote).
    pub server: Option<String>,
    pub transport: Option<String>,
    /// Headers, templated with `{{secrets.X}}` (and `{{env.X}}` where allowed).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// The command of a local server.
    pub command: Option<String>,
    #[serde(default)]
    pub args: Vec<String>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Which tools to offer: names, or `{tool, name, description, params}`. All when absent.
    pub tools: Option<Vec<ToolChoice>>,
    pub tool_prefix: Option<String>,
    /// Lets templates read `{{env.X}}` (off by default).
    #[serde(default)]
    pub allow_env: bool,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum ToolChoice {
    Name(String),
    Wrapped(WrappedTool),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WrappedTool {
    pub tool: String,
    pub name: Option<String>,
    pub description: Option<String>,
    #[serde(default)]
    pub params: Map<String, Value>,
}

impl AgentSpec {
    pub fn from_yaml(text: &str) -> Result<Self, String> {
        serde_yaml_ng::from_str(text).map_err(|error| format!("invalid agent spec: {error}"))
    }

    /// Resolves the spec for one task. `secrets` are what `{{secrets.X}}` reads.
    pub fn resolve(
        self,
        task: String,
        api_key: Option<ApiKey>,
        secrets: BTreeMap<String, String>,
        settings: &RunnerSettings,
    ) -> Result<RunSpec, String> {
        let model = self
            .model
            .filter(|model| !model.trim().is_empty())
            .ok_or("a model is required: give `model:` in the spec or --model")?;
        if task.trim().is_empty() {
            return Err("the task must not be empty".into());
        }
        let base = settings.base_spec(task, model, self.base_url.as_deref(), self.max_steps)?;
        let mut servers = Vec::new();
        let mut redact = Vec::new();
        for (index, ToolSource::Mcp(source)) in self.tools.into_iter().enumerate() {
            let (config, values) = source
                .resolve(settings)
                .map_err(|reason| format!("tools[{index}]: {reason}"))?;
            servers.push(config.into());
            redact.extend(values);
        }
        Ok(RunSpec {
            api_key,
            system_prompt: self.system_prompt,
            temperature: self.temperature,
            servers,
            template_secrets: secrets,
            redact,
            ..base
        })
    }
}

impl McpSource {
    fn resolve(
        self,
        settings: &RunnerSettings,
    ) -> Result<(RemoteServerConfig, Vec<String>), String> {
        let mut redact = Vec::new();
        let mut headers = Vec::new();
        let endpoint = match (self.server, self.command) {
            (Some(url), None) => {
                if !self.args.is_empty() || !self.env.is_empty() {
                    return Err("`args` and `env` apply to `command` servers only".into());
                }
                headers = self.headers.into_iter().collect();
                Endpoint::Http(http_endpoint(url, self.transport.as_deref())?)
            }
            (None, Some(command)) => {
                if !self.headers.is_empty() || self.transport.is_some() {
                    return Err("`headers` and `transport` apply to `server` URLs only".into());
                }
                let (stdio, values) = stdio_endpoint(command, self.args, self.env, settings)?;
                redact.extend(values);
                stdio
            }
            _ => return Err("give exactly one of `server` (a URL) or `command`".into()),
        };
        let name = self.name.unwrap_or_else(|| server_name(&endpoint));
        let mut config = server_config(name, endpoint, None, self.tool_prefix, settings);
        config.headers = headers;
        config.allow_env_templates = self.allow_env;
        if let Some(choices) = self.tools {
            let mut allow = Vec::new();
            for choice in choices {
                match choice {
                    ToolChoice::Name(name) => allow.push(name),
                    ToolChoice::Wrapped(wrapped) => {
                        allow.push(wrapped.tool.clone());
                        config.wrappers.push(ToolWrapper {
                            tool: wrapped.tool,
                            name: wrapped.name,
                            description: wrapped.description,
                            params: wrapped.params,
                        });
                    }
                }
            }
            config.allow_tools = Some(allow);
        }
        Ok((config, redact))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_002_spec_resolves() {
        let yaml = r#"
model: gpt-4.1-mini
base_url: http://127.0.0.1:9/v1
max_steps: 4
tools:
  - kind: mcp
    server: https://search-api.example.com/mcp
    headers:
      Authorization: "Bearer {{secrets.MCP_TOKEN}}"
    tools:
      - fetch_url
      - tool: search
        name: search_for_user
        description: "Search records by query"
        params:
          api_key: "{{env.SEARCH_KEY}}"
  - kind: mcp
    command: npx
    args: ["-y", "@modelcontextprotocol/server-everything"]
    env: {TOKEN: "abcdefgh"}
"#;
        let spec = AgentSpec::from_yaml(yaml)
            .expect("parses")
            .resolve(
                "t".into(),
                None,
                BTreeMap::new(),
                &RunnerSettings::default(),
            )
            .expect("resolves");
        assert_eq!(spec.max_steps, 4);
        let remote = &spec.servers[0].config;
        assert_eq!(remote.upstream.name, "search-api.example.com");
        assert_eq!(
            remote.allow_tools.as_deref(),
            Some(&["fetch_url".to_string(), "search".to_string()][..])
        );
        assert_eq!(remote.wrappers[0].name.as_deref(), Some("search_for_user"));
        assert_eq!(remote.headers[0].1, "Bearer {{secrets.MCP_TOKEN}}");
        assert_eq!(spec.servers[1].config.upstream.name, "server-everything");
        assert_eq!(spec.redact, ["abcdefgh"]);
    }

    #[test]
    fn bad_specs_are_refused() {
        let cases = [
            ("model: m\nsurprise: 1\n", "unknown field `surprise`"),
            (
                "model: m\ntools:\n  - kind: http\n    server: x\n",
                "unknown variant `http`",
            ),
            ("model: m\ntools:\n  - kind: mcp\n", "give exactly one of"),
            ("tools: []\n", "a model is required"),
            ("model: m\nmax_steps: 0\n", "`max_steps` must be between"),
        ];
        for (yaml, expected) in cases {
            let error = AgentSpec::from_yaml(yaml)
                .and_then(|spec| {
                    spec.resolve(
                        "t".into(),
                        None,
                        BTreeMap::new(),
                        &RunnerSettings::default(),
                    )
                })
                .expect_err("refused");
            assert!(error.contains(expected), "{yaml}: {error}");
        }
    }
}
