//! Prometheus metrics, in the text exposition format at `/metrics`.

use std::sync::{Arc, Mutex, PoisonError};

use crate::recent::{Hour, RecentCalls};

use prometheus_client::{
    encoding::{EncodeLabelSet, text::encode},
    metrics::{
        counter::Counter,
        family::Family,
        gauge::Gauge,
        histogram::{Histogram, exponential_buckets},
    },
    registry::Registry,
};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// The route, not the path: `/mcp/{server}`, never an alias or id. Borrowed when it is a
    /// fixed word, so that counting a proxied call allocates nothing.
    pub endpoint: std::borrow::Cow<'static, str>,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ToolLabels {
    pub server: String,
    pub tool: String,
    /// `ok` or `error`.
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ServerLabels {
    pub server: String,
    /// `proxy` (a client through the gateway) or `run`.
    pub source: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabels {
    pub server: String,
    /// `connected`, `error` or `idle`.
    pub state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StopLabels {
    pub stop_reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TokenLabels {
    /// `prompt` or `completion`.
    pub kind: String,
}

/// Every metric; cheap to clone.
#[derive(Clone)]
pub struct Metrics {
    registry: Arc<Mutex<Registry>>,
    pub http_requests: Family<RequestLabels, Counter>,
    pub tool_calls: Family<ToolLabels, Counter>,
    pub tool_call_seconds: Family<ServerLabels, Histogram>,
    pub llm_call_seconds: Histogram,
    pub upstream_state: Family<StateLabels, Gauge>,
    pub upstream_breaker: Family<StateLabels, Gauge>,
    pub live_sessions: Gauge,
    /// Of those, the proxy sessions hibernated while idle: what shows that idle sessions sleep.
    pub hibernated_sessions: Gauge,
    /// Clients of `/mcp` and `/mcp/{server}` that hear of registry changes (GET streams,
    /// 2026-07-28 subscriptions and awake sessions); while there is one, the store is looked at
    /// every two seconds, once for all of them.
    pub registry_listeners: Gauge,
    pub runs: Family<StopLabels, Counter>,
    pub tokens: Family<TokenLabels, Counter>,
    /// Proxied tool calls that took the raw path, to show how much traffic it carries.
    pub raw_calls: Counter,
    /// Reads of every server definition from the store: shows that the definition cache and its
    /// one-at-a-time reload keep load off the database.
    pub registry_reads: Counter,
    /// Reads from the store of a session this replica did not know: sessions moving between
    /// replicas, and ids that no replica knows (a client's stale id, or made-up ones).
    pub session_reads: Counter,
    /// The last hour of tool calls per server, recorded with `tool_calls` and
    /// `tool_call_seconds`: what the console's overview draws.
    pub recent: Arc<RecentCalls>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

/// The minutes since the epoch.
fn this_minute() -> i64 {
    crate::now_ms().div_euclid(60_000)
}

/// Latency buckets from 1 ms to about 65 s, the same as the overview's.
fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(
        crate::recent::FIRST_BOUND,
        2.0,
        crate::recent::BOUNDS as u16,
    ))
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("switchboard");
        let http_requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests by endpoint and status",
            http_requests.clone(),
        );
        let tool_calls = Family::<ToolLabels, Counter>::default();
        registry.register(
            "tool_calls",
            "Tool calls by server, tool and outcome",
            tool_calls.clone(),
        );
        let tool_call_seconds =
            Family::<ServerLabels, Histogram>::new_with_constructor(latency_histogram);
        registry.register(
            "tool_call_seconds",
            "Tool call latency",
            tool_call_seconds.clone(),
        );
        let llm_call_seconds = latency_histogram();
        registry.register(
            "llm_call_seconds",
            "LLM call latency in runs",
            llm_call_seconds.clone(),
        );
        let upstream_state = Family::<StateLabels, Gauge>::default();
        registry.register(
            "upstream_state",
            "1 for the state each registered upstream is in",
            upstream_state.clone(),
        );
        let upstream_breaker = Family::<StateLabels, Gauge>::default();
        registry.register(
            "upstream_breaker",
            "1 for the circuit-breaker state (closed, open, half_open) of each upstream",
            upstream_breaker.clone(),
        );
        let live_sessions = Gauge::default();
        registry.register(
            "live_sessions",
            "Open downstream MCP sessions (Streamable HTTP and legacy SSE)",
            live_sessions.clone(),
        );
        let hibernated_sessions = Gauge::default();
        registry.register(
            "hibernated_sessions",
            "Open downstream MCP sessions kept without their rmcp session while idle",
            hibernated_sessions.clone(),
        );
        let registry_listeners = Gauge::default();
        registry.register(
            "registry_listeners",
            "Clients of /mcp and /mcp/{server} listening for list changes, registry changes included",
            registry_listeners.clone(),
        );
        let runs = Family::<StopLabels, Counter>::default();
        registry.register("runs", "Agent runs by stop reason", runs.clone());
        let tokens = Family::<TokenLabels, Counter>::default();
        registry.register("llm_tokens", "LLM tokens used by runs", tokens.clone());
        let raw_calls = Counter::default();
        registry.register(
            "raw_calls",
            "Proxied tool calls forwarded as raw JSON, without rmcp's typed model",
            raw_calls.clone(),
        );
        let registry_reads = Counter::default();
        registry.register(
            "registry_reads",
            "Reads of the server definitions from the store",
            registry_reads.clone(),
        );
        let session_reads = Counter::default();
        registry.register(
            "session_reads",
            "Reads from the store of a session this replica did not know",
            session_reads.clone(),
        );
        Self {
            registry: Arc::new(Mutex::new(registry)),
            http_requests,
            tool_calls,
            tool_call_seconds,
            llm_call_seconds,
            upstream_state,
            upstream_breaker,
            live_sessions,
            hibernated_sessions,
            registry_listeners,
            runs,
            tokens,
            raw_calls,
            registry_reads,
            session_reads,
            recent: Arc::default(),
        }
    }
}

impl Metrics {
    /// Records one tool call.
    pub fn tool_call(&self, source: &str, server: &str, tool: &str, ok: bool, seconds: f64) {
        self.tool_calls
            .get_or_create(&ToolLabels {
                server: server.to_string(),
                tool: tool.to_string(),
                outcome: if ok { "ok" } else { "error" }.to_string(),
            })
            .inc();
        self.tool_call_seconds
            .get_or_create(&ServerLabels {
                server: server.to_string(),
                source: source.to_string(),
            })
            .observe(seconds);
        self.recent.record(server, ok, seconds, this_minute());
    }

    /// One server's last hour of tool calls, up to this minute.
    pub fn last_hour(&self, server: &str) -> Hour {
        self.recent.hour(server, this_minute())
    }

    /// The text exposition of every metric.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        let registry = self.registry.lock().unwrap_or_else(PoisonError::into_inner);
        if encode(&mut text, &registry).is_err() {
            tracing::error!("metrics could not be encoded");
        }
        text
    }
}
