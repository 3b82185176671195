//! `switchboard run [agent.yaml] "task"`: one agent run from the terminal.

use std::{collections::BTreeMap, io::IsTerminal as _, path::PathBuf, process::ExitCode};

use anyhow::{Context as _, bail};
use switchboard_agent::{
    ApiKey, EventSink, RunEvent, RunnerSettings, StopReason, run,
    spec::{AgentSpec, McpSource, ToolSource},
};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  switchboard run agent.yaml \"What changed this week?\"\n  \
switchboard run --model gpt-4.1-mini --mcp-stdio 'npx -y @modelcontextprotocol/server-everything' \"Add 2 and 3\""
)]
pub struct Args {
    /// [SPEC] TASK: an agent spec file (seed 002's YAML), then the task.
    #[arg(num_args = 1..=2, required = true, value_name = "SPEC] [TASK")]
    words: Vec<String>,
    /// The model; overrides the spec's.
    #[arg(long)]
    model: Option<String>,
    /// The OpenAI-compatible endpoint (`…/v1` or `…/chat/completions`); overrides the spec's.
    #[arg(long)]
    base_url: Option<String>,
    /// A remote MCP server's URL. Repeatable.
    #[arg(long = "mcp-url", value_name = "URL")]
    mcp_urls: Vec<String>,
    /// A local MCP server's command line, split like a shell would but never run by one.
    /// Repeatable.
    #[arg(long = "mcp-stdio", value_name = "'COMMAND ARGS…'")]
    mcp_stdio: Vec<String>,
    /// The step budget; overrides the spec's.
    #[arg(long)]
    max_steps: Option<u32>,
    /// The LLM's API key.
    #[arg(long, env = "OPENAI_API_KEY", hide_env_values = true)]
    api_key: Option<String>,
    /// A file of `NAME=value` lines that `{{secrets.NAME}}` reads before the environment.
    #[arg(long)]
    secrets_file: Option<PathBuf>,
    /// Print the result as the JSON of `POST /run`.
    #[arg(long)]
    json: bool,
}

pub async fn run_command(args: Args) -> anyhow::Result<ExitCode> {
    let (spec_path, task) = match args.words.as_slice() {
        [task] => (None, task.clone()),
        [spec, task] => (Some(PathBuf::from(spec)), task.clone()),
        _ => bail!("give [SPEC] TASK"),
    };
    let mut spec = match &spec_path {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            AgentSpec::from_yaml(&text).map_err(anyhow::Error::msg)?
        }
        None => AgentSpec::default(),
    };
    if let Some(model) = args.model {
        spec.model = Some(model);
    }
    if let Some(base_url) = args.base_url {
        spec.base_url = Some(base_url);
    }
    if let Some(max_steps) = args.max_steps {
        spec.max_steps = Some(max_steps);
    }
    for url in args.mcp_urls {
        spec.tools.push(ToolSource::Mcp(McpSource {
            server: Some(url),
            ..McpSource::default()
        }));
    }
    for line in args.mcp_stdio {
        let words = shlex::split(&line)
            .filter(|words| !words.is_empty())
            .with_context(|| format!("--mcp-stdio: cannot split `{line}` into words"))?;
        spec.tools.push(ToolSource::Mcp(McpSource {
            command: Some(words[0].clone()),
            args: words[1..].to_vec(),
            ..McpSource::default()
        }));
    }
    let secrets = load_secrets(args.secrets_file.as_deref())?;
    // The CLI runs as its user: local servers see the user's environment, as from a shell.
    let settings = RunnerSettings {
        stdio_inherit_env: true,
        max_steps_limit: 1000,
        ..RunnerSettings::default()
    };
    let api_key = args.api_key.filter(|key| !key.is_empty()).map(ApiKey::new);
    let spec = spec
        .resolve(task, api_key, secrets, &settings)
        .map_err(anyhow::Error::msg)?;

    let cancel = CancellationToken::new();
    let (sender, receiver) = mpsc::unbounded_channel();
    let show_progress = std::io::stderr().is_terminal();
    let printer = tokio::spawn(print_progress(receiver, show_progress));
    let interrupt = {
        let cancel = cancel.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                eprintln!("cancelling…");
                cancel.cancel();
            }
        })
    };
    let http = switchboard_mcp::http::shared_http_client();
    let result = run(spec, http, EventSink::new(sender), cancel).await;
    interrupt.abort();
    let _ = printer.await;

    if args.json {
        super::emit(&format!("{}\n", serde_json::to_string_pretty(&result)?))?;
    } else if !result.final_answer.is_empty() {
        super::emit(&format!("{}\n", result.final_answer))?;
    }
    for warning in &result.warnings {
        eprintln!("warning: {warning}");
    }
    Ok(match result.stop_reason {
        StopReason::FinalAnswer | StopReason::MaxSteps => ExitCode::SUCCESS,
        StopReason::Error => {
            if let Some(error) = &result.error
                && !args.json
            {
                eprintln!("switchboard: {}", error.message);
            }
            ExitCode::FAILURE
        }
        StopReason::Cancelled => ExitCode::from(130),
    })
}

/// `NAME=value` lines from the secrets file, then the environment (the file wins).
fn load_secrets(path: Option<&std::path::Path>) -> anyhow::Result<BTreeMap<String, String>> {
    let mut secrets: BTreeMap<String, String> = std::env::vars().collect();
    if let Some(path) = path {
        let entries = dotenvy::from_path_iter(path)
            .with_context(|| format!("cannot read the secrets file {}", path.display()))?;
        for entry in entries {
            let (name, value) = entry
                .with_context(|| format!("invalid line in the secrets file {}", path.display()))?;
            secrets.insert(name, value);
        }
    }
    Ok(secrets)
}

/// On a terminal, each step as it happens: the tools called, their duration, errors.
async fn print_progress(mut events: mpsc::UnboundedReceiver<RunEvent>, show: bool) {
    while let Some(event) = events.recv().await {
        if !show {
            continue;
        }
        match event {
            RunEvent::Step {
                index, tool_calls, ..
            } if !tool_calls.is_empty() => {
                let names: Vec<_> = tool_calls
                    .iter()
                    .map(|c| c.function.name.as_str())
                    .collect();
                eprintln!("step {}: calling {}", index + 1, names.join(", "));
            }
            RunEvent::ToolResult { result, .. } => {
                let mark = if result.is_error { "✗" } else { "✓" };
                let detail = if result.is_error {
                    format!(": {}", result.output)
                } else {
                    String::new()
                };
                eprintln!(
                    "  {mark} {} ({} ms){detail}",
                    result.name, result.duration_ms
                );
            }
            RunEvent::Error(error) => eprintln!("error: {}", error.message),
            _ => {}
        }
    }
}
