//! Registering a server's tools: listing them from its upstream, applying the config's
//! filters, names and wrappers (`plan_registration`, pure), inserting them into a registry, and
//! listing them again whenever the upstream says they changed.

use std::{
    collections::BTreeMap,
    sync::{Arc, PoisonError},
};

use serde_json::{Map, Value};
use switchboard_mcp::{Upstream, UpstreamError, UpstreamEvent, model::Tool};
use tokio::sync::broadcast::error::RecvError;

use crate::{
    RegisterResult, RegisteredTool, RemoteServerConfig, RemoteToolSummary, Renamed, Skipped,
    ToolMetadata, ToolRegistry,
    transform::{filter_reason, hide_pinned, sanitize_name},
};

/// Connects to a server, lists its tools and registers each as a proxy tool (seed 003's
/// `registerMcpRemoteTools`). Names that collide with a tool already registered are skipped with a
/// reason, never overwritten.
pub async fn register_remote_tools(
    registry: &ToolRegistry,
    config: RemoteServerConfig,
) -> Result<RegisterResult, RegisterError> {
    let upstream_config = registry.rendered_upstream(&config)?;
    let upstream = Upstream::connect(upstream_config).await?;
    Ok(register_from(registry, &config, upstream).await?)
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RegisterError {
    /// A header template could not be rendered; names the header, never a value.
    #[error("server `{server}`: header `{header}`: {reason}")]
    Header {
        server: String,
        header: String,
        reason: String,
    },
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
}

/// [`register_remote_tools`] over an upstream the caller already holds (and may share).
pub async fn register_from(
    registry: &ToolRegistry,
    config: &RemoteServerConfig,
    upstream: Upstream,
) -> Result<RegisterResult, UpstreamError> {
    // Subscribed before listing, so that a change during the listing is not missed.
    let events = upstream.events();
    let remote = upstream.list_tools().await?;
    let plan = plan_registration(config, &remote);
    let result = {
        let mut tools = registry
            .tools
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        insert_planned(&mut tools, plan, config, &upstream, &remote)
    };
    watch_list_changes(registry, config.clone(), &upstream, events);
    Ok(result)
}

/// Re-lists a server's tools whenever it says they changed. The watcher holds neither the registry
/// nor the upstream: it ends when either is dropped.
fn watch_list_changes(
    registry: &ToolRegistry,
    config: RemoteServerConfig,
    upstream: &Upstream,
    mut events: tokio::sync::broadcast::Receiver<UpstreamEvent>,
) {
    let tools = Arc::downgrade(&registry.tools);
    let secrets = registry.secrets.clone();
    let upstream = upstream.downgrade();
    tokio::spawn(async move {
        loop {
            match events.recv().await {
                Ok(UpstreamEvent::ToolsChanged) | Err(RecvError::Lagged(_)) => {}
                Ok(_) => continue,
                Err(RecvError::Closed) => return,
            }
            let (Some(tools), Some(upstream)) = (tools.upgrade(), upstream.upgrade()) else {
                return;
            };
            match upstream.list_tools().await {
                Ok(remote) => {
                    let registry = ToolRegistry {
                        tools,
                        secrets: secrets.clone(),
                    };
                    let result = registry.replace_server(&config, &upstream, &remote);
                    tracing::info!(server = %upstream.name(), registered = ?result.registered, "tool list changed");
                }
                Err(error) => {
                    tracing::warn!(server = %upstream.name(), %error, "re-listing tools failed")
                }
            }
        }
    });
}

pub(crate) fn remove_tools_of(
    tools: &mut BTreeMap<String, Arc<RegisteredTool>>,
    server: &str,
) -> Vec<String> {
    let mut removed = Vec::new();
    tools.retain(|name, tool| {
        let keep = tool.metadata.server != server;
        if !keep {
            removed.push(name.clone());
        }
        keep
    });
    removed
}

pub(crate) fn insert_planned(
    tools: &mut BTreeMap<String, Arc<RegisteredTool>>,
    plan: RegistrationPlan,
    config: &RemoteServerConfig,
    upstream: &Upstream,
    remote: &[Tool],
) -> RegisterResult {
    let mut result = RegisterResult {
        remote_tools: remote
            .iter()
            .map(|t| RemoteToolSummary {
                name: t.name.to_string(),
                description: t.description.as_deref().map(str::to_owned),
            })
            .collect(),
        skipped: plan.skipped,
        renamed: plan.renamed,
        ..Default::default()
    };
    for planned in plan.tools {
        if let Some(existing) = tools.get(&planned.metadata.name) {
            result.skipped.push(Skipped {
                tool: planned.metadata.remote_name.clone(),
                reason: format!(
                    "Duplicate: `{}` is already registered by server `{}`",
                    planned.metadata.name, existing.metadata.server
                ),
            });
            continue;
        }
        result.registered.push(planned.metadata.name.clone());
        tools.insert(
            planned.metadata.name.clone(),
            Arc::new(RegisteredTool {
                metadata: planned.metadata,
                upstream: upstream.clone(),
                pinned: planned.pinned,
                allow_env_templates: config.allow_env_templates,
            }),
        );
    }
    result
}

/// The outcome of applying a config to a server's tool list, before touching any registry.
#[derive(Debug, Default)]
pub struct RegistrationPlan {
    pub tools: Vec<PlannedTool>,
    pub skipped: Vec<Skipped>,
    pub renamed: Vec<Renamed>,
}

#[derive(Debug)]
pub struct PlannedTool {
    pub metadata: ToolMetadata,
    pub pinned: Map<String, Value>,
}

/// Applies filtering, wrapping, naming and schema rewriting to a tool list. Pure.
pub fn plan_registration(config: &RemoteServerConfig, remote: &[Tool]) -> RegistrationPlan {
    let server = config.upstream.name.as_str();
    let mut plan = RegistrationPlan::default();
    let mut tags = vec!["mcp".to_string(), server.to_string()];
    for tag in &config.tags {
        if !tags.contains(tag) {
            tags.push(tag.clone());
        }
    }
    let mut seen = std::collections::BTreeSet::new();
    for tool in remote {
        let remote_name = tool.name.to_string();
        if let Some(reason) = filter_reason(
            &remote_name,
            config.allow_tools.as_deref(),
            &config.deny_tools,
            config.deny_tool_prefix.as_deref(),
        ) {
            plan.skipped.push(Skipped {
                tool: remote_name,
                reason,
            });
            continue;
        }
        let wrapper = config.wrappers.iter().find(|w| w.tool == remote_name);
        let wanted = format!(
            "{}{}",
            config.tool_prefix,
            wrapper
                .and_then(|w| w.name.as_deref())
                .unwrap_or(&remote_name)
        );
        // A valid name sanitizes to itself.
        let name = sanitize_name(&wanted);
        if name != wanted {
            plan.renamed.push(Renamed {
                remote: remote_name.clone(),
                exposed: name.clone(),
            });
        }
        if !seen.insert(name.clone()) {
            plan.skipped.push(Skipped {
                tool: remote_name,
                reason: format!(
                    "Duplicate: another tool of this server is also exposed as `{name}`"
                ),
            });
            continue;
        }
        let pinned = wrapper.map(|w| w.params.clone()).unwrap_or_default();
        let pinned_keys: Vec<&str> = pinned.keys().map(String::as_str).collect();
        plan.tools.push(PlannedTool {
            metadata: ToolMetadata {
                name,
                remote_name,
                server: server.to_string(),
                description: wrapper
                    .and_then(|w| w.description.clone())
                    .or_else(|| tool.description.as_deref().map(str::to_owned)),
                input_schema: hide_pinned(&tool.input_schema, &pinned_keys),
                output_schema: tool.output_schema.as_deref().cloned(),
                annotations: tool.annotations.clone(),
                category: config.category.clone(),
                tags: tags.clone(),
            },
            pinned,
        });
    }
    plan
}
