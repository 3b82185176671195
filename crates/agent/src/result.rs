//! What a run answers: its result, each step, each tool call, and why it stopped.

use serde::{Deserialize, Serialize};

use crate::llm::{TokenUsage, ToolCall};

/// Why a run ended.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    FinalAnswer,
    MaxSteps,
    Error,
    Cancelled,
}

impl StopReason {
    /// The name in answers, spans and metrics (the serde name).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::FinalAnswer => "final_answer",
            Self::MaxSteps => "max_steps",
            Self::Error => "error",
            Self::Cancelled => "cancelled",
        }
    }
}

/// Seed 000's response, with the added fields after the seed's.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RunResult {
    pub final_answer: String,
    pub steps: Vec<Step>,
    pub token_usage: TokenUsage,
    pub run_id: String,
    pub stop_reason: StopReason,
    pub duration_ms: u64,
    pub warnings: Vec<String>,
    /// Set when `stop_reason` is `error`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorBody>,
    /// The run's trace, when traces are exported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_id: Option<String>,
}

/// A run as it is kept: what was asked, by whom, and what came of it, secrets masked.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RunRecord {
    pub task: String,
    pub model: String,
    /// The names of the servers whose tools the model had.
    pub servers: Vec<String>,
    /// Who started it: an actor as the audit log names it.
    pub actor: String,
    /// When it started, Unix milliseconds.
    pub started_at: i64,
    pub result: RunResult,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ErrorBody {
    pub code: String,
    pub message: String,
}

/// One model call and the tool calls it asked for.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Step {
    pub tool_calls: Vec<ToolCall>,
    pub llm_output: String,
    pub token_usage: TokenUsage,
    pub tool_results: Vec<ToolResult>,
    /// How long the model took to answer.
    #[serde(default)]
    pub llm_duration_ms: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ToolResult {
    /// The tool call's id.
    pub id: String,
    pub name: String,
    /// The server the tool belongs to; empty when the model named no known tool.
    pub server: String,
    pub is_error: bool,
    /// What the model was sent.
    pub output: String,
    /// Whether `output` was cut to the cap.
    pub truncated: bool,
    pub duration_ms: u64,
}
