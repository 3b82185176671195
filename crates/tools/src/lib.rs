//! The tool registry: tools of remote MCP servers, imported as local proxy tools.
//!
//! [`register_remote_tools`] is the only function here that does IO (through
//! [`switchboard_mcp::Upstream`]); every transform it applies lives in [`transform`] and is pure.
//!
//! ```no_run
//! use switchboard_mcp::{CallContext, UpstreamConfig};
//! use switchboard_tools::{RemoteServerConfig, ToolRegistry, ToolWrapper, register_remote_tools};
//!
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! let registry = ToolRegistry::new();
//! let mut config = RemoteServerConfig::new(UpstreamConfig::http("acme-iot", "https://api.acme.test/mcp"));
//! config.tool_prefix = "acme_".into();
//! config.allow_tools = Some(vec!["getTelemetry".into(), "search".into()]);
//! config.wrappers.push(ToolWrapper {
//!     tool: "search".into(),
//!     name: Some("search_for_user".into()),
//!     description: Some("Search the current user's records".into()),
//!     params: serde_json::json!({"user_id": "{{userId}}"}).as_object().cloned().unwrap_or_default(),
//! });
//! let result = register_remote_tools(&registry, config).await?;
//! println!("registered {:?}, skipped {:?}", result.registered, result.skipped);
//!
//! let context = CallContext::new().with("userId", 1).with("auditingId", 100);
//! let output = registry.execute("search_for_user", serde_json::json!({"query": "pumps"}), &context).await?;
//! println!("{:?}", output.structured_content);
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]

mod registration;
pub mod shape;
pub mod transform;

pub use registration::{
    PlannedTool, RegisterError, RegistrationPlan, plan_registration, register_from,
    register_remote_tools,
};
use registration::{insert_planned, remove_tools_of};

use std::{
    collections::BTreeMap,
    sync::{Arc, PoisonError, RwLock},
};

use serde::Serialize;
use serde_json::{Map, Value, value::RawValue};
use switchboard_mcp::{
    CallContext, RawCallError, RawReply, RequestOptions, StatelessCall, Upstream, UpstreamConfig,
    UpstreamError,
    model::{CallToolResult, ContentBlock, Tool, ToolAnnotations},
};

use crate::transform::{TemplateScope, inject_pinned, render};

/// Seed 003's `McpRemoteServerConfig`, plus seed 002's wrapping.
#[derive(Debug, Clone)]
pub struct RemoteServerConfig {
    /// How to reach the server; its `name` is the server's name in tags and errors, and its
    /// `request_timeout`, `retries` and `auth` are seed 003's `timeoutMs`, `retries` and `auth`.
    pub upstream: UpstreamConfig,
    /// Prefixed to every exposed name (`acme_` turns `getTelemetry` into `acme_getTelemetry`).
    pub tool_prefix: String,
    /// The registry category of every imported tool.
    pub category: String,
    /// Extra tags; `mcp` and the server name are always added.
    pub tags: Vec<String>,
    /// When set, only these remote tools are imported.
    pub allow_tools: Option<Vec<String>>,
    /// Remote tools never imported.
    pub deny_tools: Vec<String>,
    /// Remote tools whose name starts with this are never imported (loop safety).
    pub deny_tool_prefix: Option<String>,
    /// Renames, description overrides and pinned parameters, per remote tool.
    pub wrappers: Vec<ToolWrapper>,
    /// HTTP headers whose values are templates over `{{secrets.X}}` (and `{{env.X}}` where
    /// allowed), rendered once at registration: `Authorization: Bearer {{secrets.MCP_TOKEN}}`.
    pub headers: Vec<(String, String)>,
    /// Whether pinned params may read `{{env.X}}`: off by default, because a multi-tenant host's
    /// environment is not the tenant's.
    pub allow_env_templates: bool,
}

impl RemoteServerConfig {
    pub fn new(upstream: UpstreamConfig) -> Self {
        Self {
            upstream,
            tool_prefix: String::new(),
            category: "external".into(),
            tags: Vec::new(),
            allow_tools: None,
            deny_tools: Vec::new(),
            deny_tool_prefix: None,
            wrappers: Vec::new(),
            headers: Vec::new(),
            allow_env_templates: false,
        }
    }
}

/// Seed 002's long form: `{tool, name, description, params}`.
#[derive(Debug, Clone, Default)]
pub struct ToolWrapper {
    /// The remote tool's name.
    pub tool: String,
    /// The name the model sees instead (the prefix still applies).
    pub name: Option<String>,
    pub description: Option<String>,
    /// Pinned parameters: templates rendered at each call, injected, hidden from the model.
    pub params: Map<String, Value>,
}

/// Seed 003's `RegisterMcpRemoteToolsResult`.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RegisterResult {
    /// Exposed names of the tools imported.
    pub registered: Vec<String>,
    /// Tools not imported, each with why.
    pub skipped: Vec<Skipped>,
    /// Every tool the server listed.
    pub remote_tools: Vec<RemoteToolSummary>,
    /// Remote names whose exposed name had to be sanitized, with the name given.
    pub renamed: Vec<Renamed>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Skipped {
    pub tool: String,
    pub reason: String,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct RemoteToolSummary {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Renamed {
    pub remote: String,
    pub exposed: String,
}

/// What the registry knows of one tool.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ToolMetadata {
    /// The exposed name: valid for MCP and OpenAI function calling.
    pub name: String,
    /// The name on the server.
    pub remote_name: String,
    /// The server's name.
    pub server: String,
    pub description: Option<String>,
    /// The schema the model sees: pinned parameters removed.
    pub input_schema: Map<String, Value>,
    pub output_schema: Option<Map<String, Value>>,
    pub annotations: Option<ToolAnnotations>,
    pub category: String,
    pub tags: Vec<String>,
}

impl ToolMetadata {
    /// Whether the tool says it only reads (`readOnlyHint`).
    pub fn read_only(&self) -> bool {
        self.annotations
            .as_ref()
            .is_some_and(|a| a.read_only_hint == Some(true))
    }

    /// Whether running the tool twice is harmless, by its annotations: only such a tool is retried
    /// after a failure that may have reached the server.
    pub fn retry_safe(&self) -> bool {
        self.annotations
            .as_ref()
            .is_some_and(|a| a.idempotent_hint == Some(true) || a.read_only_hint == Some(true))
    }
}

/// A tool's answer.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ToolOutput {
    pub content: Vec<ContentBlock>,
    pub structured_content: Option<Value>,
    pub is_error: bool,
}

impl From<CallToolResult> for ToolOutput {
    fn from(result: CallToolResult) -> Self {
        Self {
            content: result.content,
            structured_content: result.structured_content,
            is_error: result.is_error == Some(true),
        }
    }
}

/// Why [`ToolRegistry::execute_raw`] gave no answer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RawExecuteError {
    /// Nothing was sent; the typed path should take the call.
    #[error("no raw route to the upstream")]
    Unrouted,
    #[error(transparent)]
    Tool(#[from] ToolError),
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ToolError {
    #[error("unknown tool `{0}`")]
    UnknownTool(String),
    #[error("the arguments of `{0}` must be a JSON object")]
    ArgumentsNotAnObject(String),
    /// A pinned parameter could not be rendered; the message names the reference, never a value.
    #[error("tool `{tool}`: pinned parameter `{param}`: {reason}")]
    PinnedParam {
        tool: String,
        param: String,
        reason: String,
    },
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
}

/// Where `{{secrets.X}}` values come from.
pub trait SecretSource: Send + Sync + 'static {
    fn secret(&self, name: &str) -> Option<String>;
}

/// Secrets from the process environment, as the CLI uses them.
#[derive(Debug, Clone, Copy, Default)]
pub struct EnvSecrets;

impl SecretSource for EnvSecrets {
    fn secret(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

impl SecretSource for BTreeMap<String, String> {
    fn secret(&self, name: &str) -> Option<String> {
        self.get(name).cloned()
    }
}

struct RegisteredTool {
    metadata: ToolMetadata,
    upstream: Upstream,
    /// Pinned parameter templates, rendered at each call.
    pinned: Map<String, Value>,
    allow_env_templates: bool,
}

/// Tools by exposed name. Cheap to clone; clones share the tools.
#[derive(Clone)]
pub struct ToolRegistry {
    tools: Arc<RwLock<BTreeMap<String, Arc<RegisteredTool>>>>,
    secrets: Arc<dyn SecretSource>,
}

impl std::fmt::Debug for ToolRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ToolRegistry")
            .field("tools", &self.names())
            .finish_non_exhaustive()
    }
}

impl Default for ToolRegistry {
    fn default() -> Self {
        Self::new()
    }
}

impl ToolRegistry {
    /// A registry whose `{{secrets.X}}` come from the process environment.
    pub fn new() -> Self {
        Self::with_secrets(EnvSecrets)
    }

    pub fn with_secrets(secrets: impl SecretSource) -> Self {
        Self {
            tools: Arc::default(),
            secrets: Arc::new(secrets),
        }
    }

    pub fn names(&self) -> Vec<String> {
        self.tools
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .keys()
            .cloned()
            .collect()
    }

    /// Whether the tool `name` says it only reads (`readOnlyHint`); `None` when there is no such
    /// tool. Cheaper than [`Self::metadata`], for a check on every call.
    pub fn read_only(&self, name: &str) -> Option<bool> {
        self.get(name).map(|tool| tool.metadata.read_only())
    }

    pub fn metadata(&self, name: &str) -> Option<ToolMetadata> {
        self.get(name).map(|tool| tool.metadata.clone())
    }

    /// Every tool's metadata, by name.
    pub fn list(&self) -> Vec<ToolMetadata> {
        let tools = self.tools.read().unwrap_or_else(PoisonError::into_inner);
        tools.values().map(|tool| tool.metadata.clone()).collect()
    }

    fn tool(&self, name: &str) -> Result<Arc<RegisteredTool>, ToolError> {
        self.get(name)
            .ok_or_else(|| ToolError::UnknownTool(name.into()))
    }

    fn get(&self, name: &str) -> Option<Arc<RegisteredTool>> {
        self.tools
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(name)
            .cloned()
    }

    /// Runs a tool: pinned parameters rendered and injected over the caller's, then `tools/call`.
    pub async fn execute(
        &self,
        name: &str,
        arguments: Value,
        context: &CallContext,
    ) -> Result<ToolOutput, ToolError> {
        self.execute_with(name, arguments, context, RequestOptions::default())
            .await
    }

    /// [`Self::execute`] with request options (progress, cancellation, timeout). The context and
    /// retry safety are set from `context` and the tool's annotations.
    pub async fn execute_with(
        &self,
        name: &str,
        arguments: Value,
        context: &CallContext,
        mut options: RequestOptions,
    ) -> Result<ToolOutput, ToolError> {
        let tool = self.tool(name)?;
        let arguments = match arguments {
            Value::Object(map) => map,
            Value::Null => Map::new(),
            _ => return Err(ToolError::ArgumentsNotAnObject(name.into())),
        };
        let pinned = self.render_pinned(&tool, context)?;
        let arguments = inject_pinned(arguments, pinned);
        options.context = context.clone();
        options.retry_safe = tool.metadata.retry_safe();
        let result = tool
            .upstream
            .call_tool(&tool.metadata.remote_name, Some(arguments), options)
            .await?;
        Ok(result.into())
    }

    /// [`Self::execute_with`] with raw JSON in and out, for a proxy that forwards a client's call
    /// without decoding it: `arguments` is the client's JSON (an object, `null` or absent), and
    /// the upstream's `result` comes back as it wrote it (`stateless`: see
    /// [`Upstream::call_tool_raw`]). Only a tool with pinned parameters has
    /// its arguments parsed, to inject them. [`RawExecuteError::Unrouted`] means nothing was sent
    /// and the typed path should take the call (see [`Upstream::call_tool_raw`]).
    pub async fn execute_raw(
        &self,
        name: &str,
        arguments: Option<&RawValue>,
        stateless: Option<&StatelessCall<'_>>,
        context: &CallContext,
        mut options: RequestOptions,
    ) -> Result<RawReply, RawExecuteError> {
        let tool = self.tool(name)?;
        let text = arguments.map_or("{}", |raw| raw.get().trim());
        let text = if text == "null" { "{}" } else { text };
        if !text.starts_with('{') {
            return Err(ToolError::ArgumentsNotAnObject(name.into()).into());
        }
        let injected;
        let text = if tool.pinned.is_empty() {
            text
        } else {
            let arguments: Map<String, Value> = serde_json::from_str(text)
                .map_err(|_| ToolError::ArgumentsNotAnObject(name.into()))?;
            let pinned = self.render_pinned(&tool, context)?;
            injected = Value::Object(inject_pinned(arguments, pinned)).to_string();
            injected.as_str()
        };
        options.context = context.clone();
        options.retry_safe = tool.metadata.retry_safe();
        tool.upstream
            .call_tool_raw(&tool.metadata.remote_name, text, stateless, &options)
            .await
            .map_err(|error| match error {
                RawCallError::Upstream(error) => ToolError::Upstream(error).into(),
                _ => RawExecuteError::Unrouted,
            })
    }

    /// Runs `render` with the scope templates see: this registry's secrets, the process
    /// environment where allowed, and the call's context.
    fn with_scope<R>(
        &self,
        allow_env: bool,
        context: &CallContext,
        render: impl FnOnce(&TemplateScope<'_>) -> R,
    ) -> R {
        let secret = |name: &str| self.secrets.secret(name);
        let env = |name: &str| std::env::var(name).ok();
        render(&TemplateScope {
            secret: &secret,
            env: allow_env.then_some(&env as transform::Lookup<'_>),
            context,
        })
    }

    fn render_pinned(
        &self,
        tool: &RegisteredTool,
        context: &CallContext,
    ) -> Result<Map<String, Value>, ToolError> {
        self.with_scope(tool.allow_env_templates, context, |scope| {
            tool.pinned
                .iter()
                .map(|(param, template)| {
                    render(template, scope)
                        .map(|value| (param.clone(), value))
                        .map_err(|reason| ToolError::PinnedParam {
                            tool: tool.metadata.name.clone(),
                            param: param.clone(),
                            reason,
                        })
                })
                .collect()
        })
    }

    /// The upstream config with `config.headers` rendered from this registry's secrets and added.
    pub fn rendered_upstream(
        &self,
        config: &RemoteServerConfig,
    ) -> Result<UpstreamConfig, RegisterError> {
        let mut upstream = config.upstream.clone();
        if config.headers.is_empty() {
            return Ok(upstream);
        }
        let server = upstream.name.clone();
        let header_error = |header: &str, reason: String| RegisterError::Header {
            server: server.clone(),
            header: header.to_string(),
            reason,
        };
        let switchboard_mcp::Endpoint::Http(http) = &mut upstream.endpoint else {
            return Err(header_error(
                &config.headers[0].0,
                "headers need an HTTP server".into(),
            ));
        };
        // Headers are rendered once, for the connection: there is no call context yet.
        self.with_scope(config.allow_env_templates, &CallContext::new(), |scope| {
            for (name, template) in &config.headers {
                let value = match render(&Value::String(template.clone()), scope) {
                    Ok(Value::String(value)) => value,
                    Ok(other) => other.to_string(),
                    Err(reason) => return Err(header_error(name, reason)),
                };
                http.headers.push((name.clone(), value));
            }
            Ok(())
        })?;
        Ok(upstream)
    }

    /// Replaces one server's tools after its list changed. Names now taken by another server are
    /// skipped, as at registration.
    fn replace_server(
        &self,
        config: &RemoteServerConfig,
        upstream: &Upstream,
        remote: &[Tool],
    ) -> RegisterResult {
        let plan = plan_registration(config, remote);
        let mut tools = self.tools.write().unwrap_or_else(PoisonError::into_inner);
        remove_tools_of(&mut tools, &config.upstream.name);
        insert_planned(&mut tools, plan, config, upstream, remote)
    }

    /// Removes every tool of one server; returns their names.
    pub fn remove_server(&self, server: &str) -> Vec<String> {
        let mut tools = self.tools.write().unwrap_or_else(PoisonError::into_inner);
        remove_tools_of(&mut tools, server)
    }
}
