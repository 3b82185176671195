//! `switchboard tools <target>`: an upstream's tools with their parameters.

use std::{fmt::Write as _, process::ExitCode};

use serde_json::Value;
use switchboard_mcp::Upstream;

use crate::target::TargetArgs;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    target: TargetArgs,
    /// Print the tools as JSON.
    #[arg(long)]
    json: bool,
    /// The stdio server's command and arguments, after `--`.
    #[arg(last = true, value_name = "COMMAND")]
    command: Vec<String>,
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let upstream = Upstream::connect(args.target.upstream(&args.command)?).await?;
    let tools = upstream.list_tools().await?;
    upstream.close().await;
    let mut out = String::new();
    if args.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&tools)?)?;
        super::emit(&out)?;
        return Ok(ExitCode::SUCCESS);
    }
    for tool in &tools {
        let description = tool
            .description
            .as_deref()
            .unwrap_or("")
            .lines()
            .next()
            .unwrap_or("");
        writeln!(out, "{}  {}", tool.name, description)?;
        let required: Vec<&str> = tool
            .input_schema
            .get("required")
            .and_then(Value::as_array)
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        if let Some(Value::Object(properties)) = tool.input_schema.get("properties") {
            for (name, schema) in properties {
                let kind = schema
                    .get("type")
                    .map(type_name)
                    .unwrap_or_else(|| "any".into());
                let marker = if required.contains(&name.as_str()) {
                    ""
                } else {
                    "?"
                };
                let about = schema
                    .get("description")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                writeln!(out, "    {name}{marker}: {kind}  {about}")?;
            }
        }
    }
    super::emit(&out)?;
    Ok(ExitCode::SUCCESS)
}

fn type_name(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Array(items) => items
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join("|"),
        other => other.to_string(),
    }
}
