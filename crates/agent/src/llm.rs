//! An OpenAI-compatible chat-completions client.
//!
//! Written on reqwest and serde rather than taken from a crate: the crates that model OpenAI's API
//! (async-openai) deserialize strictly, while the servers a runner must tolerate (vLLM, Ollama,
//! llama.cpp, LiteLLM) leave out `usage` or tool call ids, or send arguments as objects.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// How long one completion may take before the run fails.
pub const DEFAULT_LLM_TIMEOUT: Duration = Duration::from_secs(300);
/// How often a 429 is retried before the run fails.
pub const DEFAULT_RATE_LIMIT_RETRIES: u32 = 4;
/// The longest wait between two attempts, whatever `Retry-After` asks for: a run must not sit
/// silently for an hour on a server's say-so.
const MAX_RETRY_WAIT: Duration = Duration::from_secs(60);

/// An API key. Its `Debug` never shows it, so that it cannot reach a log by accident.
#[derive(Clone)]
pub struct ApiKey(String);

impl ApiKey {
    pub fn new(key: impl Into<String>) -> Self {
        Self(key.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiKey(***)")
    }
}

/// The chat-completions URL for a configured endpoint: both the full `…/chat/completions` URL and
/// the base `…/v1` are accepted.
pub fn completions_url(base_url: &str) -> Result<String, String> {
    let parsed = url::Url::parse(base_url.trim())
        .map_err(|error| format!("`base_url` is not a valid URL: {error}"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(format!(
            "`base_url` must be an http or https URL, not `{}:`",
            parsed.scheme()
        ));
    }
    let trimmed = base_url.trim().trim_end_matches('/');
    if trimmed.ends_with("/chat/completions") {
        Ok(trimmed.to_string())
    } else {
        Ok(format!("{trimmed}/chat/completions"))
    }
}

/// One message of the conversation, as chat completions take it.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(tag = "role", rename_all = "lowercase")]
pub enum Message {
    System {
        content: String,
    },
    User {
        content: String,
    },
    Assistant {
        content: String,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        tool_calls: Vec<ToolCall>,
    },
    Tool {
        tool_call_id: String,
        content: String,
    },
}

/// A tool call as the model asked for it; also the shape of seed 000's `tool_calls[]`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ToolCall {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub function: FunctionCall,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FunctionCall {
    pub name: String,
    /// A JSON text, as the model wrote it: it may not be valid JSON.
    pub arguments: String,
}

/// A function the model may call.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ToolSpec {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub function: FunctionSpec,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct FunctionSpec {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub parameters: Map<String, Value>,
}

impl ToolSpec {
    pub fn function(
        name: String,
        description: Option<String>,
        mut parameters: Map<String, Value>,
    ) -> Self {
        // Some servers reject an object schema without `properties`, which MCP allows.
        parameters
            .entry("type")
            .or_insert_with(|| Value::String("object".into()));
        parameters
            .entry("properties")
            .or_insert_with(|| Value::Object(Map::new()));
        Self {
            kind: "function",
            function: FunctionSpec {
                name,
                description,
                parameters,
            },
        }
    }
}

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct TokenUsage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub total_tokens: u64,
}

impl std::ops::AddAssign for TokenUsage {
    fn add_assign(&mut self, other: Self) {
        self.prompt_tokens += other.prompt_tokens;
        self.completion_tokens += other.completion_tokens;
        self.total_tokens += other.total_tokens;
    }
}

/// What the model answered.
#[derive(Debug, Clone, PartialEq)]
pub struct Completion {
    pub content: String,
    pub tool_calls: Vec<ToolCall>,
    pub usage: TokenUsage,
}

#[derive(Debug, Serialize)]
struct ChatRequest<'a> {
    model: &'a str,
    messages: &'a [Message],
    #[serde(skip_serializing_if = "<[ToolSpec]>::is_empty")]
    tools: &'a [ToolSpec],
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f64>,
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LlmError {
    #[error("the LLM endpoint is unreachable: {0}")]
    Unreachable(String),
    #[error("the LLM endpoint did not answer within {}s", .0.as_secs())]
    Timeout(Duration),
    #[error("the LLM endpoint refused the API key (HTTP {0})")]
    Unauthorized(u16),
    #[error("the LLM endpoint answered HTTP {status}: {message}")]
    Status { status: u16, message: String },
    #[error("the LLM endpoint was still rate limiting after {0} retries")]
    RateLimited(u32),
    #[error("the LLM endpoint's answer is not a chat completion: {0}")]
    BadResponse(String),
}

impl LlmError {
    /// A stable code for API answers.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Unreachable(_) => "llm_unreachable",
            Self::Timeout(_) => "llm_timeout",
            Self::Unauthorized(_) => "llm_unauthorized",
            Self::Status { .. } => "llm_error",
            Self::RateLimited(_) => "llm_rate_limited",
            Self::BadResponse(_) => "llm_bad_response",
        }
    }
}

/// A client of one chat-completions endpoint.
#[derive(Debug, Clone)]
pub struct LlmClient {
    /// Shared, pooled HTTP client.
    http: reqwest::Client,
    /// The full `…/chat/completions` URL.
    url: String,
    api_key: Option<ApiKey>,
    /// How long one completion may take.
    timeout: Duration,
    /// How often a 429 is retried.
    rate_limit_retries: u32,
    /// The first wait after a 429 without `Retry-After`; doubled on each retry.
    retry_base_delay: Duration,
}

impl LlmClient {
    pub fn new(http: reqwest::Client, url: String, api_key: Option<ApiKey>) -> Self {
        Self {
            http,
            url,
            api_key,
            timeout: DEFAULT_LLM_TIMEOUT,
            rate_limit_retries: DEFAULT_RATE_LIMIT_RETRIES,
            retry_base_delay: Duration::from_secs(1),
        }
    }

    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    pub fn with_rate_limit_retries(mut self, retries: u32, base_delay: Duration) -> Self {
        self.rate_limit_retries = retries;
        self.retry_base_delay = base_delay;
        self
    }

    /// One completion. A 429 is retried with backoff, honouring `Retry-After`.
    pub async fn complete(
        &self,
        model: &str,
        messages: &[Message],
        tools: &[ToolSpec],
        temperature: Option<f64>,
    ) -> Result<Completion, LlmError> {
        let body = ChatRequest {
            model,
            messages,
            tools,
            temperature,
        };
        let mut attempt = 0;
        loop {
            let mut request = self.http.post(&self.url).timeout(self.timeout).json(&body);
            if let Some(key) = &self.api_key {
                request = request.bearer_auth(key.expose());
            }
            if let Some(traceparent) = switchboard_mcp::current_traceparent() {
                request = request.header("traceparent", traceparent);
            }
            let response = request
                .send()
                .await
                .map_err(|error| self.send_error(error))?;
            let status = response.status();
            if status == reqwest::StatusCode::TOO_MANY_REQUESTS {
                if attempt >= self.rate_limit_retries {
                    return Err(LlmError::RateLimited(attempt));
                }
                let wait = retry_after(response.headers())
                    .unwrap_or_else(|| self.retry_base_delay.saturating_mul(1 << attempt.min(10)))
                    .min(MAX_RETRY_WAIT);
                tracing::info!(
                    attempt,
                    wait_ms = wait.as_millis() as u64,
                    "LLM rate limited; retrying"
                );
                tokio::time::sleep(wait).await;
                attempt += 1;
                continue;
            }
            let bytes = response
                .bytes()
                .await
                .map_err(|error| self.send_error(error))?;
            if status == reqwest::StatusCode::UNAUTHORIZED
                || status == reqwest::StatusCode::FORBIDDEN
            {
                return Err(LlmError::Unauthorized(status.as_u16()));
            }
            if !status.is_success() {
                return Err(LlmError::Status {
                    status: status.as_u16(),
                    message: error_message(&bytes),
                });
            }
            return parse_completion(&bytes);
        }
    }

    fn send_error(&self, error: reqwest::Error) -> LlmError {
        if error.is_timeout() {
            LlmError::Timeout(self.timeout)
        } else {
            let (reason, _) = switchboard_mcp::error::describe_transport_error(&error);
            LlmError::Unreachable(reason)
        }
    }
}

/// `Retry-After` in seconds (the HTTP-date form is rare for APIs and is treated as absent).
fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let value = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?;
    let seconds: f64 = value.trim().parse().ok()?;
    (seconds.is_finite() && seconds >= 0.0).then(|| Duration::from_secs_f64(seconds))
}

/// The `error.message` of an OpenAI-style error body, sanitized and short; or a generic text.
fn error_message(body: &[u8]) -> String {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let message = parsed.as_ref().and_then(|body| {
        body.pointer("/error/message")
            .or_else(|| body.get("error"))
            .or_else(|| body.get("message"))
            .and_then(Value::as_str)
    });
    match message {
        Some(message) => switchboard_mcp::error::sanitize_message(message),
        None => "no error message".into(),
    }
}

#[derive(Deserialize)]
struct RawResponse {
    #[serde(default)]
    choices: Vec<RawChoice>,
    #[serde(default)]
    usage: Option<RawUsage>,
}

#[derive(Deserialize)]
struct RawChoice {
    #[serde(default)]
    message: Option<RawMessage>,
}

#[derive(Deserialize)]
struct RawMessage {
    #[serde(default)]
    content: Option<Value>,
    #[serde(default)]
    tool_calls: Option<Vec<RawToolCall>>,
}

#[derive(Deserialize)]
struct RawToolCall {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    function: Option<RawFunction>,
}

#[derive(Deserialize)]
struct RawFunction {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    arguments: Option<Value>,
}

#[derive(Deserialize)]
struct RawUsage {
    #[serde(default)]
    prompt_tokens: Option<u64>,
    #[serde(default)]
    completion_tokens: Option<u64>,
    #[serde(default)]
    total_tokens: Option<u64>,
}

/// Parses a completion leniently: a missing `usage` counts as zeros, a missing tool call id gets
/// one generated, arguments sent as an object are turned into JSON text, and content sent as a
/// list of parts is joined.
pub fn parse_completion(body: &[u8]) -> Result<Completion, LlmError> {
    let raw: RawResponse = serde_json::from_slice(body)
        .map_err(|error| LlmError::BadResponse(format!("invalid JSON: {error}")))?;
    let message = raw
        .choices
        .into_iter()
        .next()
        .and_then(|choice| choice.message)
        .ok_or_else(|| LlmError::BadResponse("it has no `choices[0].message`".into()))?;
    let content = match message.content {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(text)) => text,
        Some(Value::Array(parts)) => parts
            .iter()
            .filter_map(|part| part.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join(""),
        Some(other) => other.to_string(),
    };
    let tool_calls = message
        .tool_calls
        .unwrap_or_default()
        .into_iter()
        .filter_map(|call| {
            let function = call.function?;
            let name = function.name.filter(|name| !name.is_empty())?;
            let arguments = match function.arguments {
                None | Some(Value::Null) => "{}".to_string(),
                Some(Value::String(text)) => text,
                Some(other) => other.to_string(),
            };
            Some(ToolCall {
                id: call
                    .id
                    .filter(|id| !id.is_empty())
                    .unwrap_or_else(generated_call_id),
                kind: "function".into(),
                function: FunctionCall { name, arguments },
            })
        })
        .collect();
    let usage = raw
        .usage
        .map(|usage| {
            let prompt = usage.prompt_tokens.unwrap_or(0);
            let completion = usage.completion_tokens.unwrap_or(0);
            TokenUsage {
                prompt_tokens: prompt,
                completion_tokens: completion,
                total_tokens: usage.total_tokens.unwrap_or(prompt + completion),
            }
        })
        .unwrap_or_default();
    Ok(Completion {
        content,
        tool_calls,
        usage,
    })
}

fn generated_call_id() -> String {
    format!("call_{}", uuid::Uuid::new_v4().simple())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn base_and_full_urls_are_accepted() {
        let cases = [
            (
                "https://api.openai.com/v1",
                Ok("https://api.openai.com/v1/chat/completions"),
            ),
            (
                "https://api.openai.com/v1/",
                Ok("https://api.openai.com/v1/chat/completions"),
            ),
            (
                "https://api.openai.com/v1/chat/completions",
                Ok("https://api.openai.com/v1/chat/completions"),
            ),
            (
                "ftp://x/v1",
                Err("`base_url` must be an http or https URL, not `ftp:`"),
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(
                completions_url(input).as_deref(),
                expected.map_err(str::to_string).as_deref(),
                "{input}"
            );
        }
        assert!(completions_url("not a url").is_err());
    }

    #[test]
    fn lenient_parsing() {
        // Ollama style: arguments as an object, no id, no usage.
        let body = json!({"choices": [{"message": {"role": "assistant", "content": null,
            "tool_calls": [{"function": {"name": "add", "arguments": {"a": 1}}}]}}]});
        let completion = parse_completion(body.to_string().as_bytes()).expect("parses");
        assert_eq!(completion.usage, TokenUsage::default());
        assert_eq!(completion.tool_calls.len(), 1);
        assert!(completion.tool_calls[0].id.starts_with("call_"));
        assert_eq!(completion.tool_calls[0].function.arguments, r#"{"a":1}"#);
        assert_eq!(completion.content, "");

        // Content as parts, usage without a total.
        let body = json!({"choices": [{"message": {"content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 4}});
        let completion = parse_completion(body.to_string().as_bytes()).expect("parses");
        assert_eq!(completion.content, "ab");
        assert_eq!(completion.usage.total_tokens, 7);

        assert!(matches!(
            parse_completion(b"{}"),
            Err(LlmError::BadResponse(_))
        ));
        assert!(matches!(
            parse_completion(b"<html>"),
            Err(LlmError::BadResponse(_))
        ));
    }

    #[test]
    fn api_key_never_in_debug() {
        let key = ApiKey::new("sk-secret");
        assert!(!format!("{key:?}").contains("sk-secret"));
    }

    #[test]
    fn retry_after_seconds() {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(reqwest::header::RETRY_AFTER, "2".parse().expect("header"));
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(2)));
        headers.insert(
            reqwest::header::RETRY_AFTER,
            "Wed, 21 Oct 2015 07:28:00 GMT".parse().expect("header"),
        );
        assert_eq!(retry_after(&headers), None);
    }
}
