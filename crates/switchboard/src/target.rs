//! The `<target>` of `tools` and `call`: `--url URL [--transport …] [--header 'K: V']…` or
//! `[--env K=V]… -- COMMAND ARGS…`.

use std::time::Duration;

use anyhow::{Context as _, bail};
use switchboard_mcp::{Endpoint, HttpConfig, HttpTransport, StdioConfig, UpstreamConfig};

#[derive(Debug, clap::Args)]
pub struct TargetArgs {
    /// The MCP server's URL (Streamable HTTP endpoint, or legacy SSE stream).
    #[arg(long)]
    pub url: Option<String>,
    /// Which HTTP transport to use.
    #[arg(long, default_value = "auto", value_parser = parse_transport)]
    pub transport: HttpTransport,
    /// An HTTP header, as 'Name: value'. Repeatable.
    #[arg(long = "header", value_name = "'K: V'")]
    pub headers: Vec<String>,
    /// An environment variable for a stdio server, as K=V; `${VAR}` in values and arguments is
    /// substituted. Repeatable.
    #[arg(long = "env", value_name = "K=V")]
    pub env: Vec<String>,
    /// Seconds to wait for each answer.
    #[arg(long, default_value_t = 30.0)]
    pub timeout: f64,
    /// Retries of transient network failures.
    #[arg(long, default_value_t = 0)]
    pub retries: u32,
}

fn parse_transport(value: &str) -> Result<HttpTransport, String> {
    value.parse()
}

impl TargetArgs {
    /// The upstream config, taking the stdio command from `command` when there is no `--url`.
    pub fn upstream(&self, command: &[String]) -> anyhow::Result<UpstreamConfig> {
        let timeout = Duration::try_from_secs_f64(self.timeout)
            .ok()
            .filter(|t| !t.is_zero())
            .context("--timeout must be a positive number of seconds")?;
        let endpoint = match (&self.url, command) {
            (Some(_), [_, ..]) => bail!("give either --url or a command after `--`, not both"),
            (None, []) => bail!("no server given: use --url URL, or -- COMMAND ARGS..."),
            (Some(url), []) => {
                if !self.env.is_empty() {
                    bail!("--env applies to stdio servers only");
                }
                let mut http = HttpConfig::new(url.clone());
                http.transport = self.transport;
                http.headers = parse_pairs(&self.headers, ':', "--header")?;
                Endpoint::Http(http)
            }
            (None, [program, args @ ..]) => {
                if !self.headers.is_empty() {
                    bail!("--header applies to HTTP servers only");
                }
                let mut stdio = StdioConfig::new(program.clone(), args.to_vec());
                stdio.env = parse_pairs(&self.env, '=', "--env")?;
                Endpoint::Stdio(stdio)
            }
        };
        let name = match &endpoint {
            Endpoint::Http(_) => "remote".to_string(),
            Endpoint::Stdio(stdio) => stdio.command.clone(),
            _ => "upstream".to_string(),
        };
        Ok(UpstreamConfig::new(name, endpoint)
            .with_timeout(timeout)
            .with_retries(self.retries))
    }
}

/// Parses repeated `K<separator>V` flags.
fn parse_pairs<C: FromIterator<(String, String)>>(
    items: &[String],
    separator: char,
    flag: &str,
) -> anyhow::Result<C> {
    items
        .iter()
        .map(|text| {
            let (key, value) = text
                .split_once(separator)
                .with_context(|| format!("{flag} expects K{separator}V, got `{text}`"))?;
            let key = key.trim();
            if key.is_empty() {
                bail!("{flag} has an empty name in `{text}`");
            }
            Ok((key.to_string(), value.trim_start().to_string()))
        })
        .collect()
}
