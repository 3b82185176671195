//! How to reach one upstream MCP server.

use std::{
    collections::BTreeMap, fmt, future::Future, path::PathBuf, pin::Pin, sync::Arc, time::Duration,
};

use serde_json::{Map, Value};

/// Default per-request timeout, as seed 003's `timeoutMs`.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// The longest a request may run while progress keeps extending its timeout.
pub const DEFAULT_MAX_REQUEST_TIMEOUT: Duration = Duration::from_secs(600);
/// Consecutive failures that open an upstream's circuit.
pub const DEFAULT_BREAKER_THRESHOLD: u32 = 5;
/// How long an open circuit fails fast before one probe may try.
pub const DEFAULT_BREAKER_COOLDOWN: Duration = Duration::from_secs(30);
/// Calls that may run at once on one upstream, and calls that may wait for one of those slots.
pub const DEFAULT_MAX_CONCURRENT: usize = 256;
pub const DEFAULT_MAX_QUEUED: usize = 1024;
/// The largest answer an upstream may send to one request, and the most any cap may be: rmcp's
/// reader of JSON answers stops there, whatever is configured.
pub const MAX_ANSWER_BYTES: usize = 16 << 20;
/// First retry delay; each further retry doubles it (500 ms, 1 s, 2 s, …).
pub const DEFAULT_RETRY_BASE_DELAY: Duration = Duration::from_millis(500);

/// Everything needed to open and keep a session with one upstream.
#[derive(Clone)]
pub struct UpstreamConfig {
    /// Friendly name, used in logs, errors and the stdio child's log target.
    pub name: String,
    /// Where the server lives.
    pub endpoint: Endpoint,
    /// How long one request may wait for its answer; each progress notification restarts it.
    pub request_timeout: Duration,
    /// The hard limit on a request, however much progress it reports.
    pub max_request_timeout: Duration,
    /// Consecutive failures that open the circuit (0: never).
    pub breaker_threshold: u32,
    /// How long the open circuit fails fast before a probe.
    pub breaker_cooldown: Duration,
    /// Calls running at once; more wait in a queue.
    pub max_concurrent: usize,
    /// Calls that may wait; beyond that a call fails at once as busy.
    pub max_queued: usize,
    /// The largest answer taken from an HTTP upstream, in bytes (at most [`MAX_ANSWER_BYTES`]);
    /// a larger one fails its request and is never held whole.
    pub max_answer_bytes: usize,
    /// How many times a transient network failure is retried (0 = never).
    pub retries: u32,
    /// The first retry delay; doubled on each further retry.
    pub retry_base_delay: Duration,
    /// Credentials sent to an HTTP upstream.
    pub auth: UpstreamAuth,
    /// Where the upstream's own requests (sampling, elicitation, roots) go: a downstream client
    /// that can answer them. Without one, none of those capabilities is offered.
    pub relay: Option<Arc<dyn ClientRelay>>,
    /// The client of raw calls, and its idle connections: shared by every upstream of the
    /// gateway, which sweeps it.
    pub raw_client: crate::raw_client::RawClient,
}

pub type RelayFuture<T> = Pin<Box<dyn Future<Output = Result<T, rmcp::ErrorData>> + Send>>;

/// A client that answers an upstream's requests on its behalf: the gateway passes them to the
/// downstream session that the upstream session serves. Sampling and roots are deprecated from
/// the 2026-07-28 revision on; servers and clients of the earlier revisions still use them.
#[allow(deprecated)]
pub trait ClientRelay: Send + Sync + 'static {
    /// The capabilities offered to the upstream: the downstream client's own.
    fn capabilities(&self) -> rmcp::model::ClientCapabilities;
    fn create_message(
        &self,
        params: rmcp::model::CreateMessageRequestParams,
    ) -> RelayFuture<rmcp::model::CreateMessageResult>;
    fn list_roots(&self) -> RelayFuture<rmcp::model::ListRootsResult>;
    fn create_elicitation(
        &self,
        params: rmcp::model::ElicitRequestParams,
    ) -> RelayFuture<rmcp::model::ElicitResult>;
}

impl fmt::Debug for UpstreamConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UpstreamConfig")
            .field("name", &self.name)
            .field("endpoint", &self.endpoint)
            .field("request_timeout", &self.request_timeout)
            .field("retries", &self.retries)
            .field("auth", &self.auth)
            .field("relay", &self.relay.is_some())
            .finish_non_exhaustive()
    }
}

impl UpstreamConfig {
    pub fn new(name: impl Into<String>, endpoint: Endpoint) -> Self {
        Self {
            name: name.into(),
            endpoint,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            max_request_timeout: DEFAULT_MAX_REQUEST_TIMEOUT,
            breaker_threshold: DEFAULT_BREAKER_THRESHOLD,
            breaker_cooldown: DEFAULT_BREAKER_COOLDOWN,
            max_concurrent: DEFAULT_MAX_CONCURRENT,
            max_queued: DEFAULT_MAX_QUEUED,
            max_answer_bytes: MAX_ANSWER_BYTES,
            retries: 0,
            retry_base_delay: DEFAULT_RETRY_BASE_DELAY,
            auth: UpstreamAuth::None,
            relay: None,
            raw_client: crate::raw_client::RawClient::default(),
        }
    }

    pub fn stdio(name: impl Into<String>, command: impl Into<String>, args: Vec<String>) -> Self {
        Self::new(name, Endpoint::Stdio(StdioConfig::new(command, args)))
    }

    pub fn http(name: impl Into<String>, url: impl Into<String>) -> Self {
        Self::new(name, Endpoint::Http(HttpConfig::new(url)))
    }

    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    pub fn with_retries(mut self, retries: u32) -> Self {
        self.retries = retries;
        self
    }

    /// The delay before retry number `attempt` (0-based): base × 2^attempt.
    pub fn retry_delay(&self, attempt: u32) -> Duration {
        self.retry_base_delay
            .saturating_mul(1u32 << attempt.min(16))
    }
}

#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Endpoint {
    Stdio(StdioConfig),
    Http(HttpConfig),
}

/// A local server started as a child process and spoken to over its stdin and stdout.
#[derive(Debug, Clone)]
pub struct StdioConfig {
    /// The program; looked up on `PATH` but never run through a shell.
    pub command: String,
    /// Arguments, with `${VAR}` substituted from `env`, then from the process environment.
    pub args: Vec<String>,
    /// Variables given to the child; values may also use `${VAR}`.
    pub env: BTreeMap<String, String>,
    /// Working directory of the child.
    pub cwd: Option<PathBuf>,
    /// Whether the child sees this process's environment. The gateway turns it off so that its own
    /// secrets never reach a child; the CLI keeps it, as a shell would.
    pub inherit_env: bool,
}

impl StdioConfig {
    pub fn new(command: impl Into<String>, args: Vec<String>) -> Self {
        Self {
            command: command.into(),
            args,
            env: BTreeMap::new(),
            cwd: None,
            inherit_env: true,
        }
    }
}

/// Which HTTP transport to speak.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum HttpTransport {
    /// Streamable HTTP, falling back to legacy SSE by the spec's backwards-compatibility rule.
    #[default]
    Auto,
    /// Streamable HTTP only (both protocol eras).
    StreamableHttp,
    /// The 2024-11-05 HTTP+SSE transport only.
    Sse,
}

impl std::str::FromStr for HttpTransport {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auto" => Ok(Self::Auto),
            "http" | "streamable-http" | "streamableHttp" => Ok(Self::StreamableHttp),
            "sse" => Ok(Self::Sse),
            other => Err(format!(
                "unknown transport `{other}`: expected auto, http or sse"
            )),
        }
    }
}

#[derive(Clone)]
pub struct HttpConfig {
    /// The MCP endpoint (Streamable HTTP) or the SSE stream URL (legacy).
    pub url: String,
    pub transport: HttpTransport,
    /// Static headers sent with every request, already rendered from their templates.
    pub headers: Vec<(String, String)>,
}

impl HttpConfig {
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            transport: HttpTransport::Auto,
            headers: Vec::new(),
        }
    }
}

impl fmt::Debug for HttpConfig {
    // Header values are credentials more often than not: only their names are shown.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpConfig")
            .field("url", &crate::redact::sanitize_message(&self.url))
            .field("transport", &self.transport)
            .field(
                "headers",
                &self.headers.iter().map(|(k, _)| k).collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// The per-call context: who is calling and on whose behalf (seed 003's `{userId, auditingId}`),
/// plus any other key a deployment uses (`tenantId`…). Passed to the token callback and to the
/// registry's templates; never sent upstream as such.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CallContext(pub Map<String, Value>);

impl CallContext {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.0.insert(key.into(), value.into());
        self
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        self.0.get(key)
    }
}

pub type TokenFuture = Pin<Box<dyn Future<Output = Result<String, String>> + Send>>;

/// Produces a bearer token for a call, like seed 003's `getToken(ctx)`.
pub trait TokenProvider: Send + Sync + 'static {
    fn token(&self, context: &CallContext) -> TokenFuture;
}

impl<F, Fut> TokenProvider for F
where
    F: Fn(CallContext) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<String, String>> + Send + 'static,
{
    fn token(&self, context: &CallContext) -> TokenFuture {
        Box::pin(self(context.clone()))
    }
}

#[derive(Clone, Default)]
#[non_exhaustive]
pub enum UpstreamAuth {
    #[default]
    None,
    /// `Authorization: Bearer <token>` from a callback that receives the call's context.
    Bearer(Arc<dyn TokenProvider>),
}

impl fmt::Debug for UpstreamAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::None => f.write_str("None"),
            Self::Bearer(_) => f.write_str("Bearer(<callback>)"),
        }
    }
}

/// Substitutes `${VAR}` from `own` first, then from `process` (seed 000's
/// `"Authorization: Bearer ${AUTH_TOKEN}"`). An unknown variable is an error, not an empty string:
/// a header that silently lost its token is worse than a clear failure. `$${` escapes a literal `${`.
pub fn substitute_vars(
    input: &str,
    own: &BTreeMap<String, String>,
    process: impl Fn(&str) -> Option<String>,
) -> Result<String, String> {
    let mut out = String::with_capacity(input.len());
    let mut rest = input;
    while let Some(start) = rest.find('$') {
        out.push_str(&rest[..start]);
        let after = &rest[start..];
        if let Some(stripped) = after.strip_prefix("$${") {
            out.push_str("${");
            rest = stripped;
        } else if let Some(body) = after.strip_prefix("${") {
            let end = body
                .find('}')
                .ok_or_else(|| format!("unclosed `${{` in `{input}`"))?;
            let name = &body[..end];
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(format!("`${{{name}}}` is not a valid variable name"));
            }
            let value = own
                .get(name)
                .cloned()
                .or_else(|| process(name))
                .ok_or_else(|| format!("variable `{name}` is not set"))?;
            out.push_str(&value);
            rest = &body[end + 1..];
        } else {
            out.push('$');
            rest = &after[1..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn substitution_table() {
        let own: BTreeMap<String, String> =
            [("AUTH_TOKEN".to_string(), "own-token".to_string())].into();
        let process = |name: &str| match name {
            "AUTH_TOKEN" => Some("process-token".to_string()),
            "HOME" => Some("/home/x".to_string()),
            _ => None,
        };
        let cases: &[(&str, Result<&str, &str>)] = &[
            (
                "Authorization: Bearer ${AUTH_TOKEN}",
                Ok("Authorization: Bearer own-token"),
            ),
            ("${HOME}/bin", Ok("/home/x/bin")),
            ("no vars", Ok("no vars")),
            ("cost $5", Ok("cost $5")),
            ("literal $${HOME}", Ok("literal ${HOME}")),
            ("${MISSING}", Err("variable `MISSING` is not set")),
            ("${unclosed", Err("unclosed `${` in `${unclosed`")),
            (
                "${bad-name}",
                Err("`${bad-name}` is not a valid variable name"),
            ),
        ];
        for (input, expected) in cases {
            let got = substitute_vars(input, &own, process);
            assert_eq!(
                got.as_deref().map_err(|e| e.as_str()),
                *expected,
                "input: {input}"
            );
        }
    }

    #[test]
    fn retry_delays_double() {
        let config = UpstreamConfig::http("x", "http://127.0.0.1:1/mcp");
        let delays: Vec<_> = (0..4).map(|a| config.retry_delay(a).as_millis()).collect();
        assert_eq!(delays, [500, 1000, 2000, 4000]);
    }
}
