//! The `switchboard` binary: argument parsing and one file per subcommand; the logic lives in the
//! library crates.
#![forbid(unsafe_code)]

mod commands;
mod target;
mod telemetry;

use telemetry::LogFormat;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "switchboard",
    version,
    about = "MCP gateway, agent runner and tool CLI"
)]
struct Cli {
    /// Log lines as text for a terminal, or as JSON objects, one a line.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// Export traces over OTLP HTTP/protobuf to this collector (`http://host:4318`); the standard
    /// `OTEL_EXPORTER_OTLP_*` variables work too.
    #[arg(long, global = true)]
    otlp_endpoint: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// List an MCP server's tools.
    Tools(commands::tools::Args),
    /// Call one tool of an MCP server.
    Call(commands::call::Args),
    /// Serve the HTTP API (`POST /run`).
    Serve(Box<commands::serve::Args>),
    /// Run an agent on a task with the tools of MCP servers.
    Run(commands::run::Args),
    /// Manage the gateway's local users.
    Users(commands::users::Args),
}

/// The runtime's worker threads: `TOKIO_WORKER_THREADS` when set (the one runtime knob), else
/// one per core but one, and at least one. The core left over serves the kernel's network work
/// and stdio upstreams, which every proxied call also needs: on the 2-core bench machine a
/// worker per core cost about a fifth more CPU per call, in wake-ups between the workers
/// (BENCHMARKS.md).
fn worker_threads() -> usize {
    std::env::var("TOKIO_WORKER_THREADS")
        .ok()
        .and_then(|n| n.trim().parse::<usize>().ok())
        .filter(|&n| n > 0)
        .unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map_or(1, std::num::NonZeroUsize::get)
                .saturating_sub(1)
                .max(1)
        })
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    switchboard_mcp::net::install_crypto_provider();
    let _telemetry = telemetry::init(cli.log_format, cli.otlp_endpoint.as_deref());
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(worker_threads())
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("switchboard: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Tools(args) => commands::tools::run(args).await,
            Command::Call(args) => commands::call::run(args).await,
            Command::Serve(args) => commands::serve::run(*args).await,
            Command::Run(args) => commands::run::run_command(args).await,
            Command::Users(args) => commands::users::run(args).await,
        }
    });
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("switchboard: {error:#}");
            ExitCode::FAILURE
        }
    }
}
