//! `switchboard call <target> <tool> '<json args>'`: calls one tool and prints its text content.

use std::{fmt::Write as _, process::ExitCode};

use anyhow::{Context as _, bail};
use serde_json::{Map, Value};
use switchboard_mcp::{RequestOptions, Upstream};

use crate::target::TargetArgs;

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  switchboard call --url http://127.0.0.1:3001/mcp get-sum '{\"a\":2,\"b\":3}'\n  \
switchboard call -- npx -y @modelcontextprotocol/server-everything get-sum '{\"a\":2,\"b\":3}'\n\n\
With a command, the tool and its JSON arguments are the last words after `--`."
)]
pub struct Args {
    #[command(flatten)]
    target: TargetArgs,
    /// Print the raw result as JSON.
    #[arg(long)]
    json: bool,
    /// With --url: TOOL ['JSON']. With a stdio server: -- COMMAND ARGS... TOOL ['JSON'].
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "TOOL"
    )]
    rest: Vec<String>,
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let (command, tool, arguments) = split_rest(&args.rest)?;
    let upstream = Upstream::connect(args.target.upstream(command)?).await?;
    let result = upstream
        .call_tool(tool, Some(arguments), RequestOptions::default())
        .await;
    upstream.close().await;
    let result = result?;
    let blocks = serde_json::to_value(&result.content)?;
    let texts = || blocks.as_array().into_iter().flatten();
    let mut out = String::new();
    if args.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&result)?)?;
    } else {
        for block in texts() {
            match block.get("text").and_then(Value::as_str) {
                Some(text) => writeln!(out, "{text}")?,
                None => {
                    let kind = block.get("type").and_then(Value::as_str).unwrap_or("other");
                    writeln!(out, "[{kind} content]")?;
                }
            }
        }
        if result.content.is_empty()
            && let Some(structured) = &result.structured_content
        {
            writeln!(out, "{}", serde_json::to_string_pretty(structured)?)?;
        }
    }
    super::emit(&out)?;
    if result.is_error == Some(true) {
        let first_line = texts()
            .find_map(|block| block.get("text").and_then(Value::as_str))
            .and_then(|text| text.lines().next())
            .unwrap_or("the tool reported an error");
        eprintln!("switchboard: tool `{tool}` failed: {first_line}");
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

/// Splits `[COMMAND ARGS...] TOOL [JSON]`: the JSON is the last word when it starts with `{` or `[`.
fn split_rest(rest: &[String]) -> anyhow::Result<(&[String], &str, Map<String, Value>)> {
    let (json, before) = match rest.split_last() {
        Some((last, before)) if last.trim_start().starts_with(['{', '[']) => (Some(last), before),
        _ => (None, rest),
    };
    let Some((tool, command)) = before.split_last() else {
        bail!("no tool name given")
    };
    let arguments = match json {
        None => Map::new(),
        Some(text) => match serde_json::from_str::<Value>(text)
            .context("the tool arguments are not valid JSON")?
        {
            Value::Object(map) => map,
            _ => bail!("the tool arguments must be a JSON object"),
        },
    };
    Ok((command, tool, arguments))
}
