//! The agent runner: an OpenAI-compatible model works a task with the tools of chosen MCP servers.
//!
//! [`request`] turns a `POST /run` body into a [`RunSpec`]; [`run::run`] works it to the end and
//! returns seed 000's result; [`llm`] speaks chat completions; [`output`] turns tool answers into
//! what the model reads.
#![forbid(unsafe_code)]

pub mod events;
pub mod llm;
pub mod output;
pub mod request;
pub mod result;
pub mod run;
pub mod run_spec;
pub mod running;
pub mod spec;

pub use llm::{ApiKey, TokenUsage, ToolCall};
pub use output::Redactor;
pub use request::{
    Registered, RequestError, RunPermissions, RunRequest, RunnerSettings, parse_request,
};
pub use result::RunRecord;
pub use run::{
    EventSink, RunEvent, RunResult, RunServer, RunSpec, RunningGuard, RunningRuns, Step,
    StopReason, ToolResult, run,
};
