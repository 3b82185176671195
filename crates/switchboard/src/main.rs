//! The `switchboard` binary: argument parsing and one file per subcommand; the logic lives in the
//! library crates.
#![forbid(unsafe_code)]

mod commands;
mod target;

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
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// List an MCP server's tools.
    Tools(commands::tools::Args),
    /// Call one tool of an MCP server.
    Call(commands::call::Args),
    /// Serve the HTTP API (`POST /run`).
    Serve(commands::serve::Args),
    /// Run an agent on a task with the tools of MCP servers.
    Run(commands::run::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    switchboard_mcp::http::install_crypto_provider();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
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
            Command::Serve(args) => commands::serve::run(args).await,
            Command::Run(args) => commands::run::run_command(args).await,
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

/// Logs go to stderr, so that stdout carries only the command's output. `RUST_LOG` sets the level.
fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,switchboard_api=info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}
