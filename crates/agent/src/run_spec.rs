//! What one run needs, resolved and validated: its task, model, servers and secrets
//! ([`RunSpec`]), whether it came from `POST /run` ([`crate::request`]) or an agent spec file
//! ([`crate::spec`]).

use std::{collections::BTreeMap, time::Duration};

use switchboard_mcp::Upstream;
use switchboard_tools::RemoteServerConfig;

use crate::{llm::ApiKey, output::Redactor};

/// Everything one run needs, resolved and validated.
#[derive(Debug, Clone)]
pub struct RunSpec {
    /// The run's id, chosen by the caller so that it can be cancelled by id while it runs.
    pub run_id: String,
    pub task: String,
    pub model: String,
    /// The full chat-completions URL.
    pub completions_url: String,
    pub api_key: Option<ApiKey>,
    /// How many model calls may offer tools; one more, without tools, asks for the answer.
    pub max_steps: u32,
    pub system_prompt: Option<String>,
    pub temperature: Option<f64>,
    /// The MCP servers whose tools the model gets.
    pub servers: Vec<RunServer>,
    /// What `{{secrets.X}}` in headers and pinned params resolve to.
    pub template_secrets: BTreeMap<String, String>,
    /// Values to mask in everything the run returns or sends to the model.
    pub redact: Vec<String>,
    /// The cap on tool output sent to the model, in characters.
    pub output_cap: usize,
    /// Whether `tool.execute` spans record the model's arguments and the tool's output (masked and
    /// capped). Off by default: they may hold personal data.
    pub trace_tool_io: bool,
    /// The LLM client's timeout and 429 retry settings.
    pub llm_timeout: Duration,
    pub rate_limit_retries: u32,
    pub rate_limit_base_delay: Duration,
}

/// One server of a run.
#[derive(Debug, Clone)]
pub struct RunServer {
    pub config: RemoteServerConfig,
    /// A session the gateway already holds for a registered server: the run uses it and leaves
    /// it open. Without one, the run opens its own and closes it at the end.
    pub shared: Option<Upstream>,
}

impl RunSpec {
    /// A redactor that knows every secret of this spec: the values to mask, the LLM key and
    /// every template secret, whether a template reads it or not. For what is kept of a run.
    pub fn redactor(&self) -> Redactor {
        let redactor = Redactor::default();
        let keys = self.api_key.iter().map(ApiKey::expose);
        let values = self.redact.iter().chain(self.template_secrets.values());
        for secret in values.map(String::as_str).chain(keys) {
            redactor.add(secret);
        }
        redactor
    }

    /// The names of the run's servers.
    pub fn server_names(&self) -> Vec<String> {
        self.servers
            .iter()
            .map(|server| server.config.upstream.name.clone())
            .collect()
    }
}

impl From<RemoteServerConfig> for RunServer {
    fn from(config: RemoteServerConfig) -> Self {
        Self {
            config,
            shared: None,
        }
    }
}
