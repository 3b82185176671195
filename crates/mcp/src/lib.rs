//! Connections to upstream MCP servers.
//!
//! One [`Upstream`] per server: stdio children, Streamable HTTP in both protocol eras (the
//! 2025 initialize handshake and the stateless 2026-07-28 `server/discover`), and the legacy
//! HTTP+SSE transport. It knows nothing of HTTP routing, storage or users.
#![forbid(unsafe_code)]

mod admission;
pub mod config;
mod deadline;
pub mod error;
mod exchange;
pub mod handler;
pub mod http;
pub mod net;
pub mod raw;
pub mod raw_client;
mod redact;
pub mod sse;
pub mod stdio;
pub mod subscriptions;
pub mod upstream;

pub use admission::BreakerState;
pub use config::{
    CallContext, ClientRelay, Endpoint, HttpConfig, HttpTransport, RelayFuture, StdioConfig,
    TokenProvider, UpstreamAuth, UpstreamConfig,
};
pub use error::{Delivery, UpstreamError};
pub use exchange::current_traceparent;
pub use handler::{Progress, UpstreamEvent};
pub use raw::{RawCallError, RawReply, StatelessCall};
pub use raw_client::RawClient;
pub use rmcp::model;
pub use subscriptions::ResourceSubscriptions;
pub use upstream::{RequestOptions, RetriedInput, TransportKind, Upstream, WeakUpstream};
