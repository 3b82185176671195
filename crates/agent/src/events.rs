//! What a run tells as it goes, for streaming clients and terminals.

use serde::Serialize;
use serde_json::Value;
use tokio::sync::mpsc;

use crate::{
    llm::{TokenUsage, ToolCall},
    result::{ErrorBody, RunResult, ToolResult},
};

/// What happens during a run, as it happens.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum RunEvent {
    /// The run exists and can be cancelled by id.
    Started { run_id: String },
    /// A model call answered; its tool calls are about to run.
    Step {
        index: usize,
        tool_calls: Vec<ToolCall>,
        llm_output: String,
        token_usage: TokenUsage,
    },
    /// One tool call finished.
    ToolResult { step: usize, result: ToolResult },
    /// The run failed; a `Final` with the same error follows.
    Error(ErrorBody),
    /// The run ended; the same object as the JSON response.
    Final(Box<RunResult>),
}

impl RunEvent {
    /// The SSE event name.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Started { .. } => "started",
            Self::Step { .. } => "step",
            Self::ToolResult { .. } => "tool_result",
            Self::Error(_) => "error",
            Self::Final(_) => "final",
        }
    }

    /// The SSE data: the event's own object, without the tag.
    pub fn data(&self) -> Value {
        match self {
            Self::Final(result) => serde_json::to_value(result),
            Self::Error(error) => serde_json::to_value(error),
            other => serde_json::to_value(other).map(|mut value| {
                if let Some(object) = value.as_object_mut() {
                    object.remove("event");
                }
                value
            }),
        }
        .unwrap_or(Value::Null)
    }
}

/// Where events go; sending never blocks the run, and a gone receiver is not an error.
#[derive(Debug, Clone, Default)]
pub struct EventSink(Option<mpsc::UnboundedSender<RunEvent>>);

impl EventSink {
    pub fn new(sender: mpsc::UnboundedSender<RunEvent>) -> Self {
        Self(Some(sender))
    }

    pub(crate) fn send(&self, event: RunEvent) {
        if let Some(sender) = &self.0 {
            let _ = sender.send(event);
        }
    }
}
