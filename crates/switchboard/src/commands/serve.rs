//! `switchboard serve`: the gateway (its MCP endpoints and admin API) and `POST /run`.

use std::{net::SocketAddr, path::PathBuf, process::ExitCode, time::Duration};

use anyhow::Context as _;
use switchboard_agent::{ApiKey, RunnerSettings, RunningRuns};
use switchboard_api::{AdminAuth, AdminTokenSource, AppState, mcp::McpMounts};
use switchboard_gateway::{Gateway, GatewaySettings, catalog::Catalog};
use switchboard_store::SecretBox;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The address to listen on.
    #[arg(long, default_value = "127.0.0.1:7777")]
    listen: SocketAddr,
    #[command(flatten)]
    store: super::StoreArgs,
    /// The base URL clients reach this server at, for `connectURL`; `http://<listen address>` by
    /// default.
    #[arg(long)]
    public_url: Option<String>,
    /// A browser origin (`https://console.example.com`) allowed to reach the MCP endpoints,
    /// besides the public URL's and loopback ones; requests with any other `Origin` get 403.
    /// Repeatable.
    #[arg(long = "allowed-origin", value_name = "ORIGIN")]
    allowed_origins: Vec<String>,
    /// A catalog file (a JSON list of entries) added to the built-in catalog. Repeatable.
    #[arg(long = "catalog", value_name = "FILE")]
    catalogs: Vec<PathBuf>,
    /// Let registered remote URLs resolve to link-local and cloud metadata addresses.
    #[arg(long)]
    allow_link_local_upstreams: bool,
    /// Tools per `tools/list` page sent to MCP clients.
    #[arg(long, default_value_t = 100)]
    tools_page_size: usize,
    /// Milliseconds `/mcp` waits for each upstream's list before leaving it out.
    #[arg(long, default_value_t = 5000)]
    aggregate_deadline_ms: u64,
    /// Admin API requests a second per client address (bursts of twice that); more get 429.
    #[arg(long, default_value_t = 20)]
    admin_rate_limit: u32,
    /// Days the audit log keeps a row.
    #[arg(long, default_value_t = 30)]
    audit_retention_days: u64,
    /// Seconds a local runtime may sit unused before it is stopped.
    #[arg(long, default_value_t = 600)]
    runtime_idle_timeout: u64,
    /// The highest `max_steps` a run may ask for.
    #[arg(long, default_value_t = 50)]
    max_run_steps: u32,
    /// Refuse `command` (stdio) entries in `POST /run` for every caller.
    #[arg(long)]
    no_run_stdio: bool,
    /// The LLM key for runs that bring none; `OPENAI_API_KEY` is used when this is unset.
    #[arg(long, env = "SWITCHBOARD_LLM_API_KEY", hide_env_values = true)]
    llm_api_key: Option<String>,
    /// The cap on tool output sent to the model, in characters.
    #[arg(long, default_value_t = switchboard_agent::output::DEFAULT_OUTPUT_CAP)]
    tool_output_cap: usize,
    /// Record tool arguments and output (masked, capped at 1000 characters) in trace spans.
    #[arg(long)]
    trace_tool_io: bool,
    /// Seconds a tool call may go without an answer or a progress report.
    #[arg(long, default_value_t = 30)]
    tool_timeout: u64,
    /// Seconds a tool call may take at most, however much progress it reports.
    #[arg(long, default_value_t = 600)]
    tool_timeout_max: u64,
    /// Consecutive failures that open an upstream's circuit (0: never).
    #[arg(long, default_value_t = 5)]
    breaker_threshold: u32,
    /// Milliseconds an open circuit fails fast before a probe.
    #[arg(long, default_value_t = 30_000)]
    breaker_cooldown_ms: u64,
    /// Calls running at once per upstream.
    #[arg(long, default_value_t = 256)]
    upstream_max_concurrent: usize,
    /// Calls that may wait per upstream beyond those; more are refused as busy.
    #[arg(long, default_value_t = 1024)]
    upstream_max_queued: usize,
    /// The largest answer taken from an upstream, in bytes; a larger one fails its call and is
    /// never held whole. At most 16 MiB, the default.
    #[arg(long, default_value_t = switchboard_mcp::config::MAX_ANSWER_BYTES as u64,
          value_parser = clap::value_parser!(u64).range(1..=switchboard_mcp::config::MAX_ANSWER_BYTES as u64))]
    max_answer_bytes: u64,
    /// Seconds a downstream MCP session may go without a request before it ends.
    #[arg(long, default_value_t = 300)]
    session_idle_timeout: u64,
    /// Seconds requests in flight get to finish at shutdown.
    #[arg(long, default_value_t = 10)]
    shutdown_grace: u64,
    /// Seconds an OAuth access token lives.
    #[arg(long, default_value_t = 3600)]
    access_token_ttl: u64,
    /// Accept Client ID Metadata Documents served over http from loopback addresses. For
    /// development and tests only: documents must otherwise be https on public addresses.
    #[arg(long)]
    allow_loopback_client_metadata: bool,
    #[command(flatten)]
    oidc: OidcArgs,
}

/// The organization's OpenID Connect provider, for signing users in; off unless `--oidc-issuer`
/// is set. Its redirect URI is `<public URL>/login/oidc/callback`.
#[derive(Debug, clap::Args)]
struct OidcArgs {
    /// The provider's issuer URL (its `/.well-known/openid-configuration` describes it).
    #[arg(long, requires = "oidc_client_id")]
    oidc_issuer: Option<String>,
    /// The client id this gateway has at the provider.
    #[arg(long)]
    oidc_client_id: Option<String>,
    /// The client secret this gateway has at the provider.
    #[arg(long, env = "SWITCHBOARD_OIDC_CLIENT_SECRET", hide_env_values = true)]
    oidc_client_secret: Option<String>,
    /// The name on the sign-in button: "Sign in with NAME".
    #[arg(long, default_value = "your organization")]
    oidc_name: String,
    /// Scopes asked for besides `openid`, space-separated.
    #[arg(long, default_value = "profile email")]
    oidc_scopes: String,
    /// The claim that gives the user's stable id.
    #[arg(long, default_value = "sub")]
    oidc_claim_id: String,
    #[arg(long, default_value = "name")]
    oidc_claim_name: String,
    #[arg(long, default_value = "email")]
    oidc_claim_email: String,
    #[arg(long, default_value = "groups")]
    oidc_claim_groups: String,
    /// The claim that gives the user's role (a string or a list).
    #[arg(long, default_value = "role")]
    oidc_claim_role: String,
    /// The role claim's value that makes a user an admin.
    #[arg(long, default_value = "admin")]
    oidc_admin_value: String,
}

impl OidcArgs {
    fn provider(
        self,
        public_url: &str,
        secret_key: &SecretBox,
    ) -> anyhow::Result<Option<switchboard_auth::ExternalProvider>> {
        let Some(issuer) = self.oidc_issuer else {
            return Ok(None);
        };
        let settings = switchboard_auth::ExternalSettings {
            name: self.oidc_name,
            issuer,
            client_id: self.oidc_client_id.unwrap_or_default(),
            client_secret: self.oidc_client_secret.context(
                "--oidc-issuer needs SWITCHBOARD_OIDC_CLIENT_SECRET (or --oidc-client-secret)",
            )?,
            scopes: self
                .oidc_scopes
                .split_whitespace()
                .map(str::to_string)
                .collect(),
            claims: switchboard_auth::external::ClaimNames {
                id: self.oidc_claim_id,
                name: self.oidc_claim_name,
                email: self.oidc_claim_email,
                groups: self.oidc_claim_groups,
                role: self.oidc_claim_role,
            },
            admin_value: self.oidc_admin_value,
        };
        switchboard_auth::ExternalProvider::new(settings, public_url, secret_key)
            .map(Some)
            .map_err(anyhow::Error::msg)
    }
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let (store, data_dir) = args.store.open().await?;
    let key_env = std::env::var("SWITCHBOARD_SECRET_KEY").ok();
    let (sealer, _) = SecretBox::load_or_create(key_env.as_deref(), &data_dir.join("secret.key"))
        .context("cannot set up the secret key")?;
    let catalog = Catalog::load(&args.catalogs).map_err(anyhow::Error::msg)?;
    let admin_env = std::env::var("SWITCHBOARD_ADMIN_TOKEN")
        .ok()
        .filter(|token| !token.is_empty());
    if let Some(token) = &admin_env {
        let length = token.chars().count();
        anyhow::ensure!(
            length >= switchboard_api::auth::MIN_ADMIN_TOKEN_CHARS,
            "SWITCHBOARD_ADMIN_TOKEN has {length} characters; it needs at least {} (32 or more, \
             random, is better)",
            switchboard_api::auth::MIN_ADMIN_TOKEN_CHARS
        );
        if length < switchboard_api::auth::GOOD_ADMIN_TOKEN_CHARS {
            tracing::warn!(
                "SWITCHBOARD_ADMIN_TOKEN is short ({length} characters): use {} or more random \
                 characters",
                switchboard_api::auth::GOOD_ADMIN_TOKEN_CHARS
            );
        }
    }
    let (admin, source) = AdminAuth::load_or_create(admin_env.as_deref(), &store)
        .await
        .context("cannot set up the admin token")?;
    let admin_password = std::env::var("SWITCHBOARD_ADMIN_PASSWORD").ok();
    let first_admin =
        switchboard_auth::sign_in::ensure_first_admin(&store, admin_password.as_deref())
            .await
            .context("cannot set up the first admin user")?;
    let default_api_key = args
        .llm_api_key
        .or_else(|| std::env::var("OPENAI_API_KEY").ok())
        .filter(|key| !key.is_empty())
        .map(ApiKey::new);
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let address = listener.local_addr()?;
    let public_url = args
        .public_url
        .unwrap_or_else(|| format!("http://{address}"));
    let origin_of_public_url = public_url.clone();
    let mut allowed_hosts: Vec<String> =
        ["localhost", "127.0.0.1", "::1"].map(String::from).to_vec();
    if let Some(host) = url::Url::parse(&public_url)
        .ok()
        .and_then(|url| url.host_str().map(str::to_owned))
    {
        allowed_hosts.push(host);
    }
    switchboard_mcp::net::allow_link_local(args.allow_link_local_upstreams);
    let auth = switchboard_auth::AuthServer::new(
        store.clone(),
        &sealer,
        switchboard_auth::AuthSettings {
            access_ttl: Duration::from_secs(args.access_token_ttl.max(1)),
            allow_loopback_metadata: args.allow_loopback_client_metadata,
            ..switchboard_auth::AuthSettings::new(&public_url)
        },
    );
    auth.spawn_background();
    let external = args.oidc.provider(&public_url, &sealer)?;
    let sign_in = switchboard_auth::SignIn::new(store.clone());
    sign_in.spawn_housekeeping();
    let gateway = Gateway::new(
        store,
        sealer,
        catalog,
        GatewaySettings {
            public_url,
            allow_link_local: args.allow_link_local_upstreams,
            idle_timeout: Duration::from_secs(args.runtime_idle_timeout.max(1)),
            request_timeout: Duration::from_secs(args.tool_timeout.max(1)),
            aggregate_deadline: Duration::from_millis(args.aggregate_deadline_ms.max(1)),
            tools_page_size: args.tools_page_size.max(1),
            max_request_timeout: Duration::from_secs(args.tool_timeout_max.max(args.tool_timeout)),
            breaker_threshold: args.breaker_threshold,
            breaker_cooldown: Duration::from_millis(args.breaker_cooldown_ms.max(1)),
            max_concurrent: args.upstream_max_concurrent.max(1),
            max_queued: args.upstream_max_queued,
            max_answer_bytes: args.max_answer_bytes as usize,
            access_token_ttl: Duration::from_secs(args.access_token_ttl.max(1)),
        },
    );
    gateway
        .start_access()
        .await
        .context("cannot read the grants")?;
    gateway.spawn_idle_reaper();
    gateway.spawn_audit_pruner(Duration::from_secs(
        args.audit_retention_days.max(1) * 86_400,
    ));
    let state = AppState::new(switchboard_api::Shared {
        admin,
        auth,
        sign_in,
        external,
        mcp: McpMounts::new(
            allowed_hosts,
            Duration::from_secs(args.session_idle_timeout.max(1)),
            &gateway,
        ),
        gateway,
        runner: std::sync::Arc::new(RunnerSettings {
            max_steps_limit: args.max_run_steps.max(1),
            default_api_key,
            allow_stdio: !args.no_run_stdio,
            stdio_inherit_env: false,
            output_cap: args.tool_output_cap.max(100),
            trace_tool_io: args.trace_tool_io,
            tool_timeout: Duration::from_secs(args.tool_timeout.max(1)),
            ..RunnerSettings::default()
        }),
        runs: RunningRuns::default(),
        legacy: Default::default(),
        admin_limit: switchboard_api::AdminRateLimit::new(args.admin_rate_limit),
        origins: switchboard_api::AllowedOrigins::new(
            std::iter::once(origin_of_public_url.as_str())
                .chain(args.allowed_origins.iter().map(String::as_str)),
        ),
        http: switchboard_mcp::http::shared_http_client(),
    });
    let mut banner = format!(
        "switchboard listening on http://{address}\ndata directory: {}\nstore: {}\n",
        data_dir.display(),
        match state.gateway.store().backend() {
            switchboard_store::Backend::Sqlite => "SQLite",
            _ => "PostgreSQL",
        }
    );
    match source {
        AdminTokenSource::Created { token } => banner.push_str(&format!(
            "admin token (shown once, stored hashed): {token}\n"
        )),
        AdminTokenSource::Stored => {
            banner.push_str("admin token: the one created at first start (stored hashed)\n")
        }
        AdminTokenSource::Environment => {
            banner.push_str("admin token: from SWITCHBOARD_ADMIN_TOKEN\n")
        }
    }
    match first_admin {
        switchboard_auth::sign_in::FirstAdmin::Created { password } => banner.push_str(&format!(
            "admin user `{}` created; its password (shown once): {password}\n",
            switchboard_auth::sign_in::FIRST_ADMIN
        )),
        switchboard_auth::sign_in::FirstAdmin::FromEnvironment => banner.push_str(&format!(
            "admin user `{}` created with SWITCHBOARD_ADMIN_PASSWORD\n",
            switchboard_auth::sign_in::FIRST_ADMIN
        )),
        switchboard_auth::sign_in::FirstAdmin::Existing => {}
    }
    super::emit(&banner)?;
    switchboard_api::serve(
        listener,
        state,
        shutdown_signal(),
        Duration::from_secs(args.shutdown_grace),
    )
    .await?;
    Ok(ExitCode::SUCCESS)
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut interrupt), Ok(mut terminate)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        tracing::error!("cannot listen for shutdown signals");
        return std::future::pending().await;
    };
    tokio::select! {
        _ = interrupt.recv() => {}
        _ = terminate.recv() => {}
    }
    tracing::info!("shutdown signal received");
}
