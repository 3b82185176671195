//! Each registered server as the proxy serves it: its governed tools, listed once over its
//! shared upstream and kept while the pool keeps that upstream; and a session of its own for a
//! client that answers the upstream's requests.

use std::{
    collections::BTreeMap,
    sync::{Arc, PoisonError},
};

use switchboard_mcp::Upstream;
use switchboard_tools::{ToolMetadata, ToolRegistry, register_from};

use crate::{Gateway, GatewayError};

/// A registered server as the proxy serves it.
#[derive(Debug, Clone)]
pub struct Served {
    pub id: String,
    /// The definition version it was built from: a session's own upstream session is rebuilt
    /// when the definition changes, so that new governance applies to it.
    pub version: i64,
    /// The alias, for logs and the audit.
    pub alias: String,
    /// The governed tools: the upstream's latest list after governance. A call is forwarded only
    /// for a name in it; any other name is refused as unknown and never sent upstream.
    pub registry: ToolRegistry,
    pub upstream: Upstream,
}

#[derive(Debug, Clone)]
pub(crate) struct ServedTools {
    registry: ToolRegistry,
    /// The upstream the tools were listed from, which their calls use. When the pool has another
    /// (a new definition, or a start after an idle stop) the tools are listed again from that one,
    /// so that calls never revive an upstream the pool no longer stops or shows.
    upstream: Upstream,
}

impl Gateway {
    /// The server's governed tools in a registry of their own over its shared upstream, kept
    /// (and re-listed when the upstream says its tools changed) while the pool keeps that upstream:
    /// until the definition changes or the upstream is stopped while idle.
    pub async fn served(&self, id_or_alias: &str) -> Result<Served, GatewayError> {
        // The hot path: the cached definition and tools, no clone of either.
        let resolved = self.resolved(id_or_alias).await?;
        if !resolved.definition.enabled {
            return Err(GatewayError::Disabled(resolved.definition.alias.clone()));
        }
        let upstream = self.pooled_upstream(&resolved);
        let cached = {
            let served = self.served.lock().unwrap_or_else(PoisonError::into_inner);
            served
                .get(&resolved.id)
                .filter(|tools| tools.upstream.same(&upstream))
                .cloned()
        };
        let tools = match cached {
            Some(tools) => tools,
            None => {
                let registry = ToolRegistry::with_secrets(BTreeMap::<String, String>::new());
                // Boxed, as the store reload below: listing an upstream's tools is a future of
                // kilobytes, which inline would swell every call's future, moved at each await.
                let registered =
                    Box::pin(register_from(&registry, &resolved.config, upstream.clone())).await;
                self.pool.record(
                    &resolved.id,
                    registered.as_ref().map(|_| ()).map_err(ToString::to_string),
                );
                registered?;
                let tools = ServedTools {
                    registry,
                    upstream: upstream.clone(),
                };
                self.served
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .insert(resolved.id.clone(), tools.clone());
                tools
            }
        };
        Ok(Served {
            id: resolved.id.clone(),
            version: resolved.version,
            alias: resolved.definition.alias.clone(),
            registry: tools.registry,
            upstream,
        })
    }

    /// A session of the server's own for one downstream client that can answer the upstream's
    /// requests (sampling, elicitation, roots): they go back to that client through `relay`. It
    /// ends, with any stdio child, when the returned value is dropped.
    pub async fn dedicated(
        &self,
        id_or_alias: &str,
        relay: Arc<dyn switchboard_mcp::ClientRelay>,
    ) -> Result<Served, GatewayError> {
        let connected = self.upstream(id_or_alias).await?;
        let mut config = connected.config.clone();
        config.upstream.relay = Some(relay);
        let upstream = Upstream::new(config.upstream.clone());
        let registry = ToolRegistry::with_secrets(BTreeMap::<String, String>::new());
        register_from(&registry, &config, upstream.clone()).await?;
        Ok(Served {
            id: connected.id,
            version: connected.version,
            alias: connected.definition.alias,
            registry,
            upstream,
        })
    }

    /// The tools as exposed after governance.
    pub async fn tools(&self, id_or_alias: &str) -> Result<Vec<ToolMetadata>, GatewayError> {
        Ok(self.served(id_or_alias).await?.registry.list())
    }

    /// A server's tools as last listed, without asking the upstream: `None` when they were
    /// not listed since it started or changed.
    pub fn listed_tools(&self, id: &str) -> Option<Vec<ToolMetadata>> {
        self.served
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(id)
            .map(|served| served.registry.list())
    }

    /// Drops a server's cached tools, so that the next listing asks the upstream again.
    pub fn forget_tools(&self, id: &str) {
        self.served
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(id);
    }
}
