//! The tool-calling loop.

use std::{
    collections::BTreeMap,
    time::{Duration, Instant},
};

use futures::future::join_all;
use serde_json::Value;
use switchboard_mcp::{CallContext, RequestOptions, Upstream, UpstreamError};
use switchboard_tools::{SecretSource, ToolError, ToolRegistry, register_from};
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

pub use crate::{
    events::{EventSink, RunEvent},
    result::{ErrorBody, RunResult, Step, StopReason, ToolResult},
    run_spec::{RunServer, RunSpec},
    running::{RunningGuard, RunningRuns, new_run_id},
};
use crate::{
    llm::{Completion, LlmClient, LlmError, Message, TokenUsage, ToolCall, ToolSpec},
    output::{Redactor, cap_output, content_text, sanitize_error},
};

/// The most characters of tool arguments or output a span records, when configured to.
const TRACED_IO_CAP: usize = 1_000;

/// The default system prompt: short, because every token of it is paid on every step.
const DEFAULT_SYSTEM_PROMPT: &str = "You are a helpful agent. Use the tools when they help to \
complete the task, then answer the task directly.";
/// Sent when the step budget is spent, for one last answer without tools.
const FINAL_ANSWER_PROMPT: &str = "You have used all the steps allowed for this task. Do not call \
any more tools: give your final answer now from what you have.";

/// Secrets for templates, each value noted by the redactor when a template reads it.
struct RecordingSecrets {
    secrets: BTreeMap<String, String>,
    redactor: Redactor,
}

impl SecretSource for RecordingSecrets {
    fn secret(&self, name: &str) -> Option<String> {
        let value = self.secrets.get(name).cloned();
        if let Some(value) = &value {
            self.redactor.add(value);
        }
        value
    }
}

/// The upstreams the run opened itself, closed (stdio children killed with their groups) when the
/// run ends,
/// however it ends: the `Drop` of the last handle kills a child even if `close` never runs.
struct RunServers {
    upstreams: Vec<Upstream>,
}

impl RunServers {
    async fn close(self) {
        join_all(self.upstreams.iter().map(Upstream::close)).await;
    }
}

/// The trace id of a span, when it belongs to an exported trace.
fn trace_id_of(span: &tracing::Span) -> Option<String> {
    use opentelemetry::trace::TraceContextExt as _;
    use tracing_opentelemetry::OpenTelemetrySpanExt as _;
    let context = span.context();
    let ids = context.span().span_context().clone();
    ids.is_valid().then(|| ids.trace_id().to_string())
}

/// Runs one task to its end, in a `run` span. Never fails: every failure is in the result's
/// `stop_reason`.
pub async fn run(
    spec: RunSpec,
    http: reqwest::Client,
    events: EventSink,
    cancel: CancellationToken,
) -> RunResult {
    let span = tracing::info_span!(
        "run",
        "gen_ai.operation.name" = "invoke_agent",
        "gen_ai.request.model" = %spec.model,
        "switchboard.run_id" = %spec.run_id,
        "switchboard.stop_reason" = tracing::field::Empty,
        "gen_ai.usage.input_tokens" = tracing::field::Empty,
        "gen_ai.usage.output_tokens" = tracing::field::Empty,
        "otel.status_code" = tracing::field::Empty,
    );
    let trace_id = trace_id_of(&span);
    let result = run_in_span(spec, http, events, cancel, trace_id)
        .instrument(span.clone())
        .await;
    span.record("switchboard.stop_reason", result.stop_reason.as_str());
    span.record(
        "gen_ai.usage.input_tokens",
        result.token_usage.prompt_tokens,
    );
    span.record(
        "gen_ai.usage.output_tokens",
        result.token_usage.completion_tokens,
    );
    if result.stop_reason == StopReason::Error {
        span.record("otel.status_code", "ERROR");
    }
    result
}

async fn run_in_span(
    spec: RunSpec,
    http: reqwest::Client,
    events: EventSink,
    cancel: CancellationToken,
    trace_id: Option<String>,
) -> RunResult {
    let started = Instant::now();
    let redactor = Redactor::default();
    for secret in &spec.redact {
        redactor.add(secret);
    }
    if let Some(key) = &spec.api_key {
        redactor.add(key.expose());
    }
    let mut state = RunState {
        result: RunResult {
            final_answer: String::new(),
            steps: Vec::new(),
            token_usage: TokenUsage::default(),
            run_id: spec.run_id.clone(),
            stop_reason: StopReason::Error,
            duration_ms: 0,
            warnings: Vec::new(),
            error: None,
            trace_id,
        },
        events,
        redactor,
    };
    state.events.send(RunEvent::Started {
        run_id: spec.run_id.clone(),
    });

    let registry = ToolRegistry::with_secrets(RecordingSecrets {
        secrets: spec.template_secrets.clone(),
        redactor: state.redactor.clone(),
    });
    let connected = tokio::select! {
        servers = connect_servers(&registry, &spec.servers, &mut state) => Some(servers),
        () = cancel.cancelled() => None,
    };
    if let Some(servers) = connected {
        let stop = tokio::select! {
            stop = agent_loop(&spec, &http, &registry, &mut state) => stop,
            () = cancel.cancelled() => Stop::Cancelled,
        };
        state.finish(stop);
        // The registry holds handles too; dropping it first leaves `close` the last word.
        drop(registry);
        servers.close().await;
    } else {
        state.finish(Stop::Cancelled);
    }
    state.result.duration_ms = started.elapsed().as_millis() as u64;
    let result = state.result;
    if let Some(error) = &result.error {
        state.events.send(RunEvent::Error(error.clone()));
    }
    state.events.send(RunEvent::Final(Box::new(result.clone())));
    result
}

struct RunState {
    result: RunResult,
    events: EventSink,
    redactor: Redactor,
}

enum Stop {
    FinalAnswer(String),
    MaxSteps(String),
    Llm(LlmError),
    Cancelled,
}

impl RunState {
    fn finish(&mut self, stop: Stop) {
        let result = &mut self.result;
        match stop {
            Stop::FinalAnswer(answer) => {
                result.final_answer = answer;
                result.stop_reason = StopReason::FinalAnswer;
            }
            Stop::MaxSteps(answer) => {
                result.final_answer = answer;
                result.stop_reason = StopReason::MaxSteps;
            }
            Stop::Llm(error) => {
                result.stop_reason = StopReason::Error;
                result.error = Some(ErrorBody {
                    code: error.code().into(),
                    message: self.redactor.redact(&error.to_string()),
                });
            }
            Stop::Cancelled => result.stop_reason = StopReason::Cancelled,
        }
    }

    fn warn(&mut self, warning: String) {
        tracing::warn!(run_id = %self.result.run_id, "{warning}");
        self.result.warnings.push(warning);
    }

    /// Records a model answer as a step, and tells the listeners.
    fn record_step(&mut self, completion: &Completion, llm_duration: Duration) -> usize {
        let llm_output = self.redactor.redact(&completion.content);
        self.result.token_usage += completion.usage;
        self.result.steps.push(Step {
            tool_calls: completion.tool_calls.clone(),
            llm_output: llm_output.clone(),
            token_usage: completion.usage,
            tool_results: Vec::new(),
            llm_duration_ms: llm_duration.as_millis() as u64,
        });
        let index = self.result.steps.len() - 1;
        self.events.send(RunEvent::Step {
            index,
            tool_calls: completion.tool_calls.clone(),
            llm_output,
            token_usage: completion.usage,
        });
        index
    }
}

/// Connects to every server at once. One that fails adds a warning; the run goes on without it.
async fn connect_servers(
    registry: &ToolRegistry,
    servers: &[RunServer],
    state: &mut RunState,
) -> RunServers {
    let attempts = servers.iter().map(|server| async move {
        let config = &server.config;
        let outcome = async {
            let upstream = match &server.shared {
                Some(shared) => shared.clone(),
                None => Upstream::new(registry.rendered_upstream(config)?),
            };
            let registered = register_from(registry, config, upstream.clone()).await;
            Ok::<_, switchboard_tools::RegisterError>((upstream, registered))
        }
        .await;
        (server, outcome)
    });
    let mut owned = Vec::new();
    for (server, outcome) in join_all(attempts).await {
        let config = &server.config;
        let name = &config.upstream.name;
        match outcome {
            Ok((upstream, Ok(registered))) => {
                for skipped in &registered.skipped {
                    if skipped.reason.starts_with("Duplicate") {
                        state.warn(format!(
                            "server `{name}`: tool `{}` is not offered: {}",
                            skipped.tool, skipped.reason
                        ));
                    }
                }
                for wanted in config.allow_tools.iter().flatten() {
                    if !registered.remote_tools.iter().any(|t| &t.name == wanted) {
                        state.warn(format!("server `{name}` has no tool named `{wanted}`"));
                    }
                }
                if server.shared.is_none() {
                    owned.push(upstream);
                }
            }
            Ok((upstream, Err(error))) => {
                let message = state.redactor.redact(&error.to_string());
                state.warn(format!("server `{name}` is left out: {message}"));
                if server.shared.is_none() {
                    upstream.close().await;
                }
            }
            Err(error) => {
                let message = state.redactor.redact(&error.to_string());
                state.warn(format!("server `{name}` is left out: {message}"));
            }
        }
    }
    RunServers { upstreams: owned }
}

async fn agent_loop(
    spec: &RunSpec,
    http: &reqwest::Client,
    registry: &ToolRegistry,
    state: &mut RunState,
) -> Stop {
    let llm = LlmClient::new(
        http.clone(),
        spec.completions_url.clone(),
        spec.api_key.clone(),
    )
    .with_timeout(spec.llm_timeout)
    .with_rate_limit_retries(spec.rate_limit_retries, spec.rate_limit_base_delay);
    let tools: Vec<ToolSpec> = registry
        .list()
        .into_iter()
        .map(|tool| ToolSpec::function(tool.name, tool.description, tool.input_schema))
        .collect();
    let mut messages = vec![
        Message::System {
            content: spec
                .system_prompt
                .clone()
                .unwrap_or_else(|| DEFAULT_SYSTEM_PROMPT.into()),
        },
        Message::User {
            content: spec.task.clone(),
        },
    ];
    for _ in 0..spec.max_steps {
        let asked = Instant::now();
        let completion = match observed_completion(&llm, spec, &messages, &tools).await {
            Ok(completion) => completion,
            Err(error) => return Stop::Llm(error),
        };
        let step = state.record_step(&completion, asked.elapsed());
        if completion.tool_calls.is_empty() {
            return Stop::FinalAnswer(state.redactor.redact(&completion.content));
        }
        messages.push(Message::Assistant {
            content: completion.content.clone(),
            tool_calls: completion.tool_calls.clone(),
        });
        let results = execute_all(spec, registry, state, step, &completion.tool_calls).await;
        for result in &results {
            messages.push(Message::Tool {
                tool_call_id: result.id.clone(),
                content: result.output.clone(),
            });
        }
        state.result.steps[step].tool_results = results;
    }
    messages.push(Message::User {
        content: FINAL_ANSWER_PROMPT.into(),
    });
    let asked = Instant::now();
    match observed_completion(&llm, spec, &messages, &[]).await {
        Ok(completion) => {
            state.record_step(&completion, asked.elapsed());
            Stop::MaxSteps(state.redactor.redact(&completion.content))
        }
        Err(error) => Stop::Llm(error),
    }
}

/// One completion in an `llm.call` span with the GenAI attributes.
async fn observed_completion(
    llm: &LlmClient,
    spec: &RunSpec,
    messages: &[Message],
    tools: &[ToolSpec],
) -> Result<Completion, LlmError> {
    let span = tracing::info_span!(
        "llm.call",
        "gen_ai.operation.name" = "chat",
        "gen_ai.request.model" = %spec.model,
        "gen_ai.usage.input_tokens" = tracing::field::Empty,
        "gen_ai.usage.output_tokens" = tracing::field::Empty,
        "otel.status_code" = tracing::field::Empty,
        "error.type" = tracing::field::Empty,
    );
    let outcome = llm
        .complete(&spec.model, messages, tools, spec.temperature)
        .instrument(span.clone())
        .await;
    match &outcome {
        Ok(completion) => {
            span.record("gen_ai.usage.input_tokens", completion.usage.prompt_tokens);
            span.record(
                "gen_ai.usage.output_tokens",
                completion.usage.completion_tokens,
            );
        }
        Err(error) => {
            span.record("otel.status_code", "ERROR");
            span.record("error.type", error.code());
        }
    }
    outcome
}

/// Runs one message's tool calls concurrently; the results come back in the calls' order.
async fn execute_all(
    spec: &RunSpec,
    registry: &ToolRegistry,
    state: &RunState,
    step: usize,
    calls: &[ToolCall],
) -> Vec<ToolResult> {
    let runs = calls.iter().map(|call| async move {
        let span = tracing::info_span!(
            "tool.execute",
            "gen_ai.operation.name" = "execute_tool",
            "gen_ai.tool.name" = %call.function.name,
            "gen_ai.tool.call.id" = %call.id,
            "switchboard.server" = tracing::field::Empty,
            "gen_ai.tool.call.arguments" = tracing::field::Empty,
            "gen_ai.tool.call.result" = tracing::field::Empty,
            "otel.status_code" = tracing::field::Empty,
            "error.type" = tracing::field::Empty,
        );
        let result = execute_one(spec, registry, &state.redactor, call)
            .instrument(span.clone())
            .await;
        span.record("switchboard.server", result.server.as_str());
        if spec.trace_tool_io {
            let arguments = state.redactor.redact(&call.function.arguments);
            span.record(
                "gen_ai.tool.call.arguments",
                cap_output(arguments, TRACED_IO_CAP).0,
            );
            span.record(
                "gen_ai.tool.call.result",
                cap_output(result.output.clone(), TRACED_IO_CAP).0,
            );
        }
        if result.is_error {
            span.record("otel.status_code", "ERROR");
            span.record("error.type", "tool_error");
        }
        state.events.send(RunEvent::ToolResult {
            step,
            result: result.clone(),
        });
        result
    });
    join_all(runs).await
}

async fn execute_one(
    spec: &RunSpec,
    registry: &ToolRegistry,
    redactor: &Redactor,
    call: &ToolCall,
) -> ToolResult {
    let started = Instant::now();
    let name = &call.function.name;
    let server = registry
        .metadata(name)
        .map(|tool| tool.server)
        .unwrap_or_default();
    let outcome: Result<(String, bool), String> = match parse_arguments(&call.function.arguments) {
        Err(reason) => Err(reason),
        Ok(arguments) => {
            match registry
                .execute_with(
                    name,
                    arguments,
                    &CallContext::new(),
                    RequestOptions::default(),
                )
                .await
            {
                Ok(output) => {
                    let text = content_text(&output.content, output.structured_content.as_ref());
                    if output.is_error {
                        Err(sanitize_error(&text))
                    } else {
                        Ok((text, false))
                    }
                }
                Err(error) => Err(describe_tool_error(registry, &error)),
            }
        }
    };
    let (text, is_error) = match outcome {
        Ok((text, _)) => (text, false),
        Err(reason) => (format!("Error: {reason}"), true),
    };
    let (output, truncated) = cap_output(redactor.redact(&text), spec.output_cap);
    ToolResult {
        id: call.id.clone(),
        name: name.clone(),
        server,
        is_error,
        output,
        truncated,
        duration_ms: started.elapsed().as_millis() as u64,
    }
}

/// The model's arguments text as an object; empty text counts as no arguments.
fn parse_arguments(text: &str) -> Result<Value, String> {
    if text.trim().is_empty() {
        return Ok(Value::Object(Default::default()));
    }
    match serde_json::from_str::<Value>(text) {
        Ok(value @ Value::Object(_)) => Ok(value),
        Ok(_) => Err("the arguments must be a JSON object".into()),
        Err(error) => Err(format!("the arguments are not valid JSON ({error})")),
    }
}

fn describe_tool_error(registry: &ToolRegistry, error: &ToolError) -> String {
    match error {
        ToolError::UnknownTool(name) => {
            let names = registry.names();
            if names.is_empty() {
                format!("there is no tool named `{name}`; no tools are available")
            } else {
                format!(
                    "there is no tool named `{name}`; the tools are: {}",
                    names.join(", ")
                )
            }
        }
        ToolError::Upstream(UpstreamError::Timeout { .. }) => {
            sanitize_error(&format!("{error}; it may still be running"))
        }
        other => sanitize_error(&other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_parsing() {
        assert!(parse_arguments("").is_ok());
        assert!(parse_arguments(r#"{"a":1}"#).is_ok());
        assert_eq!(
            parse_arguments("[1]"),
            Err("the arguments must be a JSON object".into())
        );
        assert!(
            parse_arguments("{not json")
                .expect_err("invalid")
                .starts_with("the arguments are not valid JSON")
        );
    }

    #[test]
    fn stop_reason_names_match_the_answers() {
        for reason in [
            StopReason::FinalAnswer,
            StopReason::MaxSteps,
            StopReason::Error,
            StopReason::Cancelled,
        ] {
            assert_eq!(serde_json::to_value(reason).expect("json"), reason.as_str());
        }
    }

    #[test]
    fn event_data_has_no_tag() {
        let event = RunEvent::Started { run_id: "r".into() };
        assert_eq!(event.name(), "started");
        assert_eq!(event.data(), serde_json::json!({"run_id": "r"}));
    }
}
