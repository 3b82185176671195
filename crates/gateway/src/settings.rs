//! The operator's settings for the gateway.

use std::time::Duration;

use crate::proxy;

/// The operator's settings for the gateway.
#[derive(Debug, Clone)]
pub struct GatewaySettings {
    /// The base of every `connectURL` (`http://127.0.0.1:7777`).
    pub public_url: String,
    /// Lets remote URLs resolve to link-local and metadata addresses.
    pub allow_link_local: bool,
    /// How long a stdio runtime may sit unused before it is stopped.
    pub idle_timeout: Duration,
    /// How long one upstream request may take.
    pub request_timeout: Duration,
    /// How long `/mcp` waits for each upstream's list before leaving it out.
    pub aggregate_deadline: Duration,
    /// Tools per `tools/list` page sent to clients.
    pub tools_page_size: usize,
    /// The hard limit on a call that keeps reporting progress.
    pub max_request_timeout: Duration,
    /// Consecutive failures that open an upstream's circuit (0: never), and how long it stays open.
    pub breaker_threshold: u32,
    pub breaker_cooldown: Duration,
    /// Calls running at once per upstream, and calls that may wait beyond them.
    pub max_concurrent: usize,
    pub max_queued: usize,
    /// The largest answer taken from an upstream, in bytes.
    pub max_answer_bytes: usize,
    /// How long an access token lives: a user's tokens are revoked for as long when their role
    /// changes.
    pub access_token_ttl: Duration,
}

impl Default for GatewaySettings {
    fn default() -> Self {
        Self {
            public_url: "http://127.0.0.1:7777".into(),
            allow_link_local: false,
            idle_timeout: Duration::from_secs(600),
            request_timeout: switchboard_mcp::config::DEFAULT_REQUEST_TIMEOUT,
            aggregate_deadline: Duration::from_secs(5),
            tools_page_size: proxy::DEFAULT_TOOLS_PAGE_SIZE,
            max_request_timeout: switchboard_mcp::config::DEFAULT_MAX_REQUEST_TIMEOUT,
            breaker_threshold: switchboard_mcp::config::DEFAULT_BREAKER_THRESHOLD,
            breaker_cooldown: switchboard_mcp::config::DEFAULT_BREAKER_COOLDOWN,
            max_concurrent: switchboard_mcp::config::DEFAULT_MAX_CONCURRENT,
            max_queued: switchboard_mcp::config::DEFAULT_MAX_QUEUED,
            max_answer_bytes: switchboard_mcp::config::MAX_ANSWER_BYTES,
            access_token_ttl: Duration::from_secs(3600),
        }
    }
}
