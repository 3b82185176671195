//! `switchboard call <target> <tool> '<json args>'`: calls one tool and prints its text content.

use std::process::ExitCode;

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
    let is_error = result.is_error == Some(true);
    let mut out = String::new();
    if args.json {
        out.push_str(&format!("{}\n", serde_json::to_string_pretty(&result)?));
    } else {
        let value = serde_json::to_value(&result.content)?;
        for block in value.as_array().into_iter().flatten() {
            match block.get("text").and_then(Value::as_str) {
                Some(text) => out.push_str(&format!("{text}\n")),
                None => out.push_str(&format!(
                    "[{} content]\n",
                    block.get("type").and_then(Value::as_str).unwrap_or("other")
                )),
            }
        }
        if result.content.is_empty()
            && let Some(structured) = &result.structured_content
        {
            out.push_str(&format!("{}\n", serde_json::to_string_pretty(structured)?));
        }
    }
    super::emit(&out)?;
    if is_error {
        let value = serde_json::to_value(&result.content)?;
        let first_line = value
            .as_array()
            .and_then(|blocks| {
                blocks
                    .iter()
                    .find_map(|b| b.get("text").and_then(Value::as_str))
            })
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
