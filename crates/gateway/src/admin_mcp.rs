//! The admin MCP server at `/mcp/admin`: seed 004's tools over the registry, each with a full
//! description, described parameters, annotations, an output schema and structured content in
//! every result.

use rmcp::{
    ErrorData as McpError, RoleServer, ServerHandler,
    model::{
        CallToolRequestParams, CallToolResponse, CallToolResult, ListToolsResult,
        PaginatedRequestParams, ServerConfig, Tool,
    },
    service::RequestContext,
};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::{
    Gateway, ServerView,
    access_admin::{GrantBody, GroupBody, PermissionBody},
    access_requests::{ApproveBody, DenyBody, RequestQuery},
    audit::AdminAction,
    model::{
        CreateServer, EnvInput, Governance, Manifest, PackageConfig, RemoteConfig, UpdateServer,
    },
    org_settings::SettingsBody,
    own_tools::{failure, gateway_failure, output, parse, read_only, success, tool, writes},
    policy::{ADMIN_WRITES, Endpoint, may_call},
    users_admin::UserBody,
};

/// The admin tools over one gateway.
#[derive(Debug, Clone)]
pub struct AdminMcp {
    gateway: Gateway,
}

impl AdminMcp {
    pub fn new(gateway: Gateway) -> Self {
        Self { gateway }
    }
}

/// The schema of a server summary, shared by the tools that return one.
fn summary_schema() -> Value {
    json!({"type": "object", "properties": {
        "id": {"type": "string", "description": "The server's id."},
        "name": {"type": "string"},
        "alias": {"type": "string", "description": "The short name used in URLs."},
        "runtime": {"type": "string", "enum": ["remote", "npx", "uvx", "command"]},
        "enabled": {"type": "boolean"},
        "status": {"type": "object", "description": "connected, error (with message) or idle."},
        "connectURL": {"type": "string", "description": "The MCP endpoint to hand to a client."}
    }})
}

const ERRORS: &str = "On failure the result has isError and `error{code, message}`: \
invalid_request for bad input, not_found for an unknown id, conflict for a taken alias.";

/// The input of a tool that takes only a server's id.
fn id_input() -> Value {
    json!({"type": "object", "properties": {"id": id_param()}, "required": ["id"], "additionalProperties": false})
}

/// The output of enable and disable.
fn enabled_output() -> Value {
    output(json!({"id": {"type": "string"}, "enabled": {"type": "boolean"}}))
}

fn permission_tools_param() -> Value {
    json!({"description": "Which tools it gives: \"all\", \"readOnly\" (those annotated readOnlyHint) or a list of tool names as clients see them.",
        "anyOf": [{"type": "string", "enum": ["all", "readOnly"]}, {"type": "array", "items": {"type": "string"}}]})
}

fn id_param() -> Value {
    json!({"type": "string", "description": "The server's id (as `list_mcp_servers` returns it) or its alias."})
}

/// The tools, described for an agent choosing among them.
pub fn admin_tools() -> Vec<Tool> {
    let env_param = json!({"type": "object", "additionalProperties": {"type": "string"},
        "description": "Environment variables for the server process, NAME to value. Names are letters, digits and _."});
    let alias_param = json!({"type": "string", "description": "Optional short name for URLs and logs: 1-63 lowercase letters, digits and inner hyphens; derived from `name` when left out. Must be unused."});
    let short_param = json!({"type": "string", "description": "One line shown in listings; at most 500 characters."});
    vec![
        tool(
            "list_mcp_servers",
            format!(
                "List every MCP server registered in Switchboard. Read-only. Returns `servers`: for each, its id, name, alias, runtime, whether it is enabled, its live status (connected, error with the last message, or idle) and the connectURL to give an MCP client. Secrets are never shown. {ERRORS}"
            ),
            json!({"type": "object", "properties": {}, "additionalProperties": false}),
            output(json!({"servers": {"type": "array", "items": summary_schema()}})),
            read_only(),
        ),
        tool(
            "get_mcp_server",
            format!(
                "Get one registered MCP server. Read-only. Returns `server`, the full record: its runtime config, env (sensitive values masked as ********), sensitive keys, tool governance, status, timestamps and connectURL. Use `list_mcp_servers` to find ids. {ERRORS}"
            ),
            id_input(),
            output(
                json!({"server": {"type": "object", "description": "The full record, secrets masked."}}),
            ),
            read_only(),
        ),
        tool(
            "add_npx_mcp",
            format!(
                "Register a new MCP server that Switchboard runs locally as `npx -y <package>` over stdio (for npm-published servers). Side effects: stores the server (sensitive env values encrypted); nothing runs until its first use. The process gets only the env given here plus PATH and HOME. Not idempotent: a second call with the same alias fails with conflict. Returns the new server's id, alias and connectURL. {ERRORS}"
            ),
            json!({"type": "object", "properties": {
                "name": {"type": "string", "description": "Display name, 1-100 characters."},
                "package": {"type": "string", "description": "npm package, optionally scoped and versioned: n8n-mcp, @scope/foo or @scope/foo@1.2.3. Never starts with `-`."},
                "args": {"type": "array", "items": {"type": "string"}, "description": "Extra arguments after the package, passed as a list, never through a shell."},
                "shortDescription": short_param,
                "env": env_param,
                "sensitiveKeys": {"type": "array", "items": {"type": "string"}, "description": "Keys of `env` whose values are secrets (API keys, tokens): encrypted at rest and masked in every answer."},
                "alias": alias_param,
            }, "required": ["name", "package"], "additionalProperties": false}),
            output(
                json!({"id": {"type": "string"}, "alias": {"type": "string"}, "connectURL": {"type": "string"}}),
            ),
            writes(false, false),
        ),
        tool(
            "add_remote_mcp",
            format!(
                "Register a remote MCP server (Streamable HTTP or legacy SSE, hosted elsewhere) that Switchboard proxies. Side effects: stores the server (header values encrypted); Switchboard connects on first use. The URL must be http or https and must not resolve to a link-local or cloud metadata address. Not idempotent: a second call with the same alias fails with conflict. Returns the new server's id, alias and connectURL. {ERRORS}"
            ),
            json!({"type": "object", "properties": {
                "name": {"type": "string", "description": "Display name, 1-100 characters."},
                "url": {"type": "string", "description": "The remote MCP endpoint URL, e.g. https://mcp.example.com/mcp."},
                "transport": {"type": "string", "enum": ["auto", "http", "sse"], "description": "auto (default) tries Streamable HTTP and falls back to legacy SSE."},
                "headers": {"type": "object", "additionalProperties": {"type": "string"}, "description": "HTTP headers sent upstream, such as Authorization. Values are secrets: encrypted and masked."},
                "shortDescription": short_param,
                "alias": alias_param,
            }, "required": ["name", "url"], "additionalProperties": false}),
            output(
                json!({"id": {"type": "string"}, "alias": {"type": "string"}, "connectURL": {"type": "string"}}),
            ),
            writes(false, false),
        ),
        tool(
            "update_mcp_server",
            format!(
                "Change a registered MCP server: only the fields given change. `env` is merged (a null value removes a key; ******** keeps the stored secret). Side effects: the server's running session is closed and reopened from the new definition on next use. Returns the updated record, secrets masked. {ERRORS}"
            ),
            json!({"type": "object", "properties": {
                "id": id_param(),
                "name": {"type": "string", "description": "New display name."},
                "alias": {"type": "string", "description": "New alias; changes the connectURL."},
                "shortDescription": short_param,
                "url": {"type": "string", "description": "New URL (remote servers only)."},
                "package": {"type": "string", "description": "New package (npx or uvx servers only)."},
                "env": {"type": "object", "additionalProperties": {"type": ["string", "null"]}, "description": "Env changes: NAME to new value, or null to remove."},
                "tools": {"type": "object", "description": "Tool governance, replacing the old: toolPrefix, allowTools, denyTools, rename, descriptions, pinned."},
            }, "required": ["id"], "additionalProperties": false}),
            output(json!({"server": {"type": "object"}})),
            writes(true, false),
        ),
        tool(
            "enable_mcp_server",
            format!(
                "Enable a registered MCP server so that its endpoint and tools are served again. Idempotent: enabling an enabled server changes nothing. Returns its id and `enabled: true`. {ERRORS}"
            ),
            id_input(),
            enabled_output(),
            writes(true, false),
        ),
        tool(
            "disable_mcp_server",
            format!(
                "Disable a registered MCP server without deleting it: its endpoint refuses requests, its session and any local process stop, and its config is kept. Idempotent. Returns its id and `enabled: false`. {ERRORS}"
            ),
            id_input(),
            enabled_output(),
            writes(true, false),
        ),
        tool(
            "delete_mcp_server",
            format!(
                "Delete a registered MCP server and its stored secrets. Irreversible: its connectURL stops working and its local process, if any, is stopped. Repeating it leaves the same state, but the second call reports not_found. Returns the deleted id. {ERRORS}"
            ),
            id_input(),
            output(json!({"id": {"type": "string"}, "deleted": {"type": "boolean"}})),
            writes(true, true),
        ),
        tool(
            "list_catalog_entries",
            format!(
                "List the catalog of well-known MCP servers that can be added (the built-in catalog plus configured files). Read-only. `search` filters by a case-insensitive substring of id, name or description. Returns `entries`, each with id, name, description, runtime, package or URL, and the env keys it requires. Add one with `add_npx_mcp` or `add_remote_mcp`. {ERRORS}"
            ),
            json!({"type": "object", "properties": {"search": {"type": "string", "description": "Substring to filter by; all entries when left out."}}, "additionalProperties": false}),
            output(json!({"entries": {"type": "array", "items": {"type": "object"}}})),
            read_only(),
        ),
        tool(
            "list_access_requests",
            format!(
                "List users' access requests, newest first, filtered by status, user or server. Read-only. Returns `requests`: each with its id, user, permission, server, reason, asked duration, status and decision. Decide one with `approve_access_request` or `deny_access_request`. {ERRORS}"
            ),
            json!({"type": "object", "properties": {
                "status": {"type": "string", "enum": ["pending", "approved", "denied"], "description": "Only this status; all when left out."},
                "user": {"type": "string", "description": "Only this user's (id or username)."},
                "server": {"type": "string", "description": "Only requests for this server's permissions (id or alias)."},
                "limit": {"type": "integer", "minimum": 1, "maximum": 1000, "description": "At most this many; 100 when left out."}
            }, "additionalProperties": false}),
            output(json!({"requests": {"type": "array", "items": {"type": "object"}}})),
            read_only(),
        ),
        tool(
            "approve_access_request",
            format!(
                "Approve a pending access request. Side effects: grants the user the permission for the duration asked, or the shorter one given here, and their open sessions hear the tool list change; the decision is audited and sent to the webhook. Not repeatable: a decided request answers conflict. Returns the decided `request`. {ERRORS}"
            ),
            json!({"type": "object", "properties": {
                "id": {"type": "string", "description": "The request's id."},
                "durationSeconds": {"type": "integer", "minimum": 1, "description": "A shorter grant than asked; the asked duration when left out."},
                "reason": {"type": "string", "description": "A note for the user and the audit log."}
            }, "required": ["id"], "additionalProperties": false}),
            output(json!({"request": {"type": "object"}})),
            writes(false, false),
        ),
        tool(
            "deny_access_request",
            format!(
                "Deny a pending access request, with a reason the user will read. Side effects: the decision is audited and sent to the webhook; nothing is granted. Not repeatable: a decided request answers conflict. Returns the decided `request`. {ERRORS}"
            ),
            json!({"type": "object", "properties": {
                "id": {"type": "string", "description": "The request's id."},
                "reason": {"type": "string", "description": "Why, for the user; required."}
            }, "required": ["id", "reason"], "additionalProperties": false}),
            output(json!({"request": {"type": "object"}})),
            writes(false, false),
        ),
        tool(
            "list_permissions",
            format!(
                "List one server's permissions: named sets of its tools that users are granted or may request. Read-only. Returns `permissions`: each with its id, label, description, tools (all, readOnly or a list of names), whether users may request it and the longest grant it may be requested for. {ERRORS}"
            ),
            id_input(),
            output(json!({"permissions": {"type": "array", "items": {"type": "object"}}})),
            read_only(),
        ),
        tool(
            "list_grants",
            format!(
                "List every grant: which permission is given to which user or group, until when, and by whom. Read-only. Returns `grants`. Revoke one with `revoke_grant`. {ERRORS}"
            ),
            json!({"type": "object", "properties": {}, "additionalProperties": false}),
            output(json!({"grants": {"type": "array", "items": {"type": "object"}}})),
            read_only(),
        ),
        tool(
            "grant_permission",
            format!(
                "Give a permission to one user or one group, for a duration or until revoked. Side effects: the grantees' open sessions hear the tool list change at once; audited. Not idempotent: each call makes a grant. Returns the new `grant`. {ERRORS}"
            ),
            json!({"type": "object", "properties": {
                "permission": {"type": "string", "description": "The permission's id, from `list_permissions`."},
                "user": {"type": "string", "description": "A user's id or username; give this or `group`."},
                "group": {"type": "string", "description": "A group's id or name; give this or `user`."},
                "durationSeconds": {"type": "integer", "minimum": 1, "description": "How long it lasts; until revoked when left out."}
            }, "required": ["permission"], "additionalProperties": false}),
            output(json!({"grant": {"type": "object"}})),
            writes(false, false),
        ),
        tool(
            "revoke_grant",
            format!(
                "Revoke a grant. Side effects: it stops working on the next request, and open sessions hear the tool list change; audited. Irreversible; a second call reports not_found. Returns the revoked id. {ERRORS}"
            ),
            json!({"type": "object", "properties": {"id": {"type": "string", "description": "The grant's id, from `list_grants`."}}, "required": ["id"], "additionalProperties": false}),
            output(json!({"id": {"type": "string"}, "revoked": {"type": "boolean"}})),
            writes(true, true),
        ),
        tool(
            "list_groups",
            format!(
                "List the groups of users, managed here or mapped from the sign-in provider's groups claim. Read-only. Returns `groups`: each with id, name, description and source (local or oidc). {ERRORS}"
            ),
            json!({"type": "object", "properties": {}, "additionalProperties": false}),
            output(json!({"groups": {"type": "array", "items": {"type": "object"}}})),
            read_only(),
        ),
        tool(
            "create_permission",
            format!(
                "Add a permission to a server: a named set of its tools that users can be granted or may request. Side effects: stored and audited; users see it in `/mcp/user` at once if requestable. Not idempotent: a second call with the same label fails with conflict. Returns the new `permission`. {ERRORS}"
            ),
            json!({"type": "object", "properties": {
                "id": id_param(),
                "label": {"type": "string", "description": "A short name users see, such as `View reports`; 1-80 characters, unique per server."},
                "description": {"type": "string", "description": "One line on what it allows; at most 300 characters."},
                "tools": permission_tools_param(),
                "requestable": {"type": "boolean", "description": "Whether users may request it; true when left out."},
                "maxDurationSeconds": {"type": ["integer", "null"], "minimum": 1, "description": "The longest grant a request may ask for; no limit when left out or null."}
            }, "required": ["id", "label", "tools"], "additionalProperties": false}),
            output(json!({"permission": {"type": "object"}})),
            writes(false, false),
        ),
        tool(
            "update_permission",
            format!(
                "Change a permission; only the fields given change. Side effects: holders' tool lists change at once and their open sessions hear it; audited. Idempotent. Returns the updated `permission`. {ERRORS}"
            ),
            json!({"type": "object", "properties": {
                "permission": {"type": "string", "description": "The permission's id, from `list_permissions`."},
                "label": {"type": "string", "description": "A new label; 1-80 characters."},
                "description": {"type": "string", "description": "A new one-line description."},
                "tools": permission_tools_param(),
                "requestable": {"type": "boolean", "description": "Whether users may request it."},
                "maxDurationSeconds": {"type": ["integer", "null"], "minimum": 1, "description": "The longest grant a request may ask for; null removes the limit."}
            }, "required": ["permission"], "additionalProperties": false}),
            output(json!({"permission": {"type": "object"}})),
            writes(true, false),
        ),
        tool(
            "delete_permission",
            format!(
                "Delete a permission and every grant of it. Irreversible: holders lose its tools at once, and their open sessions hear it; audited. A second call reports not_found. Returns the deleted id. {ERRORS}"
            ),
            json!({"type": "object", "properties": {"permission": {"type": "string", "description": "The permission's id, from `list_permissions`."}}, "required": ["permission"], "additionalProperties": false}),
            output(json!({"id": {"type": "string"}, "deleted": {"type": "boolean"}})),
            writes(true, true),
        ),
        tool(
            "create_group",
            format!(
                "Create a group of users, to grant permissions to all its members at once. Side effects: stored and audited. Not idempotent: a second call with the same name fails with conflict. Returns the new `group`. {ERRORS}"
            ),
            json!({"type": "object", "properties": {
                "name": {"type": "string", "description": "1-64 letters, digits, spaces or `.`, `_`, `-`; unique."},
                "description": {"type": "string", "description": "One line on who belongs; at most 300 characters."}
            }, "required": ["name"], "additionalProperties": false}),
            output(json!({"group": {"type": "object"}})),
            writes(false, false),
        ),
        tool(
            "set_group_member",
            format!(
                "Add a user to a group, or take them out (`member: false`). Side effects: the user gains or loses the group's grants at once, and their open sessions hear it; audited. Idempotent. Returns the group, the user and `member`. {ERRORS}"
            ),
            json!({"type": "object", "properties": {
                "group": {"type": "string", "description": "The group's id or name."},
                "user": {"type": "string", "description": "The user's id or username."},
                "member": {"type": "boolean", "description": "true to add (the default), false to remove."}
            }, "required": ["group", "user"], "additionalProperties": false}),
            output(
                json!({"group": {"type": "string"}, "user": {"type": "string"}, "member": {"type": "boolean"}}),
            ),
            writes(true, false),
        ),
        tool(
            "list_users",
            format!(
                "List the users who can sign in: each with id, username, role (admin or user), whether disabled, and source (local password or the organization's provider). Read-only; never shows passwords. Returns `users`. {ERRORS}"
            ),
            json!({"type": "object", "properties": {}, "additionalProperties": false}),
            output(json!({"users": {"type": "array", "items": {"type": "object"}}})),
            read_only(),
        ),
        tool(
            "update_user",
            format!(
                "Change a user's role or disable them (or enable them again). Side effects: disabling ends their browser sessions and revokes their tokens (refused within seconds on every replica) and stops their API keys; a new role revokes their tokens so the next ones name it; audited. Idempotent. Returns the updated `user`. {ERRORS}"
            ),
            json!({"type": "object", "properties": {
                "user": {"type": "string", "description": "The user's id or username."},
                "role": {"type": "string", "enum": ["admin", "user"], "description": "The new role."},
                "disabled": {"type": "boolean", "description": "true to disable, false to enable."}
            }, "required": ["user"], "additionalProperties": false}),
            output(json!({"user": {"type": "object"}})),
            writes(true, false),
        ),
        tool(
            "get_settings",
            format!(
                "Get the organization's settings: self-service (on, readOnly or off) for everyone and per group, and the webhook that hears of access requests (its path masked). Read-only. Returns `settings`. {ERRORS}"
            ),
            json!({"type": "object", "properties": {}, "additionalProperties": false}),
            output(json!({"settings": {"type": "object"}})),
            read_only(),
        ),
        tool(
            "update_settings",
            format!(
                "Change the organization's settings; only the fields given change. Side effects: applies to users' next requests on every replica; audited. Idempotent. Returns the new `settings`. {ERRORS}"
            ),
            json!({"type": "object", "properties": {
                "selfService": {"type": "string", "enum": ["on", "readOnly", "off"], "description": "Self-service for everyone: on, readOnly (search but not request) or off."},
                "groups": {"type": "object", "additionalProperties": {"type": ["string", "null"], "enum": ["on", "readOnly", "off", null]}, "description": "Per group (id or name): its members' self-service; null removes the group's setting. The most restrictive setting that applies wins."},
                "webhookUrl": {"type": ["string", "null"], "description": "An http(s) URL that receives each request and decision as JSON; null removes it. Never a link-local or metadata address."}
            }, "additionalProperties": false}),
            output(json!({"settings": {"type": "object"}})),
            writes(true, false),
        ),
    ]
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IdArgs {
    id: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct NpxArgs {
    name: String,
    package: String,
    #[serde(default)]
    args: Vec<String>,
    short_description: Option<String>,
    env: Option<std::collections::BTreeMap<String, String>>,
    #[serde(default)]
    sensitive_keys: Vec<String>,
    alias: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RemoteArgs {
    name: String,
    url: String,
    transport: Option<String>,
    #[serde(default)]
    headers: std::collections::BTreeMap<String, String>,
    short_description: Option<String>,
    alias: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct UpdateArgs {
    id: String,
    name: Option<String>,
    alias: Option<String>,
    short_description: Option<String>,
    url: Option<String>,
    package: Option<String>,
    env: Option<std::collections::BTreeMap<String, Option<String>>>,
    #[serde(default, deserialize_with = "switchboard_tools::shape::object")]
    tools: Option<Governance>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SearchArgs {
    search: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MemberArgs {
    group: String,
    user: String,
    member: Option<bool>,
}

/// Takes the string argument `name` out of `args`, leaving the rest for the body it names.
fn take_string(args: &mut Map<String, Value>, name: &str) -> Result<String, CallToolResult> {
    match args.remove(name) {
        Some(Value::String(value)) => Ok(value),
        _ => Err(failure(
            "invalid_request",
            format!("invalid arguments: `{name}` is a required string"),
        )),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct DecisionArgs {
    id: String,
    duration_seconds: Option<i64>,
    reason: Option<String>,
}

fn summary(server: &ServerView) -> Value {
    json!({"id": server.id, "name": server.name, "alias": server.alias, "runtime": server.runtime,
        "enabled": server.enabled, "status": server.status, "connectURL": server.connect_url})
}

/// Registers a server; answers its id, alias and connectURL.
async fn register(
    gateway: &Gateway,
    body: CreateServer,
    action: &AdminAction,
) -> Result<Value, CallToolResult> {
    let server = gateway
        .create(body, action)
        .await
        .map_err(gateway_failure)?;
    Ok(json!({"id": server.id, "alias": server.alias, "connectURL": server.connect_url}))
}

impl AdminMcp {
    async fn run(
        &self,
        name: &str,
        arguments: Option<Map<String, Value>>,
        action: &AdminAction,
    ) -> Result<Value, CallToolResult> {
        let gateway = &self.gateway;
        match name {
            "list_mcp_servers" => {
                let _: SearchArgs = parse(arguments.or_else(|| Some(Map::new())))?;
                let servers = gateway.list().await.map_err(gateway_failure)?;
                Ok(json!({"servers": servers.iter().map(summary).collect::<Vec<_>>()}))
            }
            "get_mcp_server" => {
                let args: IdArgs = parse(arguments)?;
                let server = gateway.get(&args.id).await.map_err(gateway_failure)?;
                Ok(json!({"server": server}))
            }
            "add_npx_mcp" => {
                let args: NpxArgs = parse(arguments)?;
                let body = CreateServer {
                    manifest: Some(Manifest {
                        name: Some(args.name),
                        short_description: args.short_description,
                        runtime: Some("npx".into()),
                        npx_config: Some(PackageConfig {
                            package: args.package,
                            args: args.args,
                        }),
                        env: args.env.map(EnvInput::Map),
                        sensitive_keys: args.sensitive_keys,
                        ..Manifest::default()
                    }),
                    alias: args.alias,
                    ..CreateServer::default()
                };
                register(gateway, body, action).await
            }
            "add_remote_mcp" => {
                let args: RemoteArgs = parse(arguments)?;
                let body = CreateServer {
                    manifest: Some(Manifest {
                        name: Some(args.name),
                        short_description: args.short_description,
                        runtime: Some("remote".into()),
                        remote_config: Some(RemoteConfig {
                            url: args.url,
                            transport: args.transport,
                            headers: args.headers,
                        }),
                        ..Manifest::default()
                    }),
                    alias: args.alias,
                    ..CreateServer::default()
                };
                register(gateway, body, action).await
            }
            "update_mcp_server" => {
                let args: UpdateArgs = parse(arguments)?;
                let current = gateway.get(&args.id).await.map_err(gateway_failure)?;
                let mut body = UpdateServer {
                    name: args.name,
                    alias: args.alias,
                    short_description: args.short_description,
                    env: args.env,
                    tools: args.tools,
                    ..UpdateServer::default()
                };
                if let Some(url) = args.url {
                    let mut remote = current.remote_config.clone().unwrap_or_default();
                    remote.url = url;
                    body.remote_config = Some(remote);
                }
                if let Some(package) = args.package {
                    let config = |old: &Option<PackageConfig>| PackageConfig {
                        package: package.clone(),
                        args: old.as_ref().map(|c| c.args.clone()).unwrap_or_default(),
                    };
                    match current.runtime {
                        crate::model::Runtime::Uvx => {
                            body.uvx_config = Some(config(&current.uvx_config))
                        }
                        _ => body.npx_config = Some(config(&current.npx_config)),
                    }
                }
                let server = gateway
                    .update(&current.id, body, action)
                    .await
                    .map_err(gateway_failure)?;
                Ok(json!({"server": server}))
            }
            "enable_mcp_server" | "disable_mcp_server" => {
                let args: IdArgs = parse(arguments)?;
                let enabled = name == "enable_mcp_server";
                let body = UpdateServer {
                    enabled: Some(enabled),
                    ..UpdateServer::default()
                };
                let server = gateway
                    .update(&args.id, body, action)
                    .await
                    .map_err(gateway_failure)?;
                Ok(json!({"id": server.id, "enabled": server.enabled}))
            }
            "delete_mcp_server" => {
                let args: IdArgs = parse(arguments)?;
                let server = gateway.get(&args.id).await.map_err(gateway_failure)?;
                gateway
                    .delete(&server.id, action)
                    .await
                    .map_err(gateway_failure)?;
                Ok(json!({"id": server.id, "deleted": true}))
            }
            "list_catalog_entries" => {
                let args: SearchArgs = parse(arguments.or_else(|| Some(Map::new())))?;
                Ok(json!({"entries": gateway.catalog().search(args.search.as_deref())}))
            }
            "list_access_requests" => {
                let query: RequestQuery = parse(arguments.or_else(|| Some(Map::new())))?;
                let requests = gateway
                    .access_requests(&query)
                    .await
                    .map_err(gateway_failure)?;
                Ok(json!({"requests": requests}))
            }
            "approve_access_request" => {
                let args: DecisionArgs = parse(arguments)?;
                let body = ApproveBody {
                    duration_seconds: args.duration_seconds,
                    reason: args.reason,
                };
                let request = gateway
                    .approve_access_request(&args.id, body, action)
                    .await
                    .map_err(gateway_failure)?;
                Ok(json!({"request": request}))
            }
            "deny_access_request" => {
                let args: DecisionArgs = parse(arguments)?;
                let body = DenyBody {
                    reason: args.reason.unwrap_or_default(),
                };
                let request = gateway
                    .deny_access_request(&args.id, body, action)
                    .await
                    .map_err(gateway_failure)?;
                Ok(json!({"request": request}))
            }
            "list_permissions" => {
                let args: IdArgs = parse(arguments)?;
                let permissions = gateway
                    .permissions(&args.id)
                    .await
                    .map_err(gateway_failure)?;
                Ok(json!({"permissions": permissions}))
            }
            "list_grants" => {
                let _: SearchArgs = parse(arguments.or_else(|| Some(Map::new())))?;
                Ok(json!({"grants": gateway.grants().await.map_err(gateway_failure)?}))
            }
            "grant_permission" => {
                let body: GrantBody = parse(arguments)?;
                let grant = gateway
                    .create_grant(body, action)
                    .await
                    .map_err(gateway_failure)?;
                Ok(json!({"grant": grant}))
            }
            "revoke_grant" => {
                let args: IdArgs = parse(arguments)?;
                gateway
                    .delete_grant(&args.id, action)
                    .await
                    .map_err(gateway_failure)?;
                Ok(json!({"id": args.id, "revoked": true}))
            }
            "list_groups" => {
                let _: SearchArgs = parse(arguments.or_else(|| Some(Map::new())))?;
                Ok(json!({"groups": gateway.groups().await.map_err(gateway_failure)?}))
            }
            "create_permission" => {
                let mut args = arguments.unwrap_or_default();
                let server = take_string(&mut args, "id")?;
                let body: PermissionBody = parse(Some(args))?;
                let permission = gateway
                    .create_permission(&server, body, action)
                    .await
                    .map_err(gateway_failure)?;
                Ok(json!({"permission": permission}))
            }
            "update_permission" => {
                let mut args = arguments.unwrap_or_default();
                let id = take_string(&mut args, "permission")?;
                let body: PermissionBody = parse(Some(args))?;
                let permission = gateway
                    .update_permission(&id, body, action)
                    .await
                    .map_err(gateway_failure)?;
                Ok(json!({"permission": permission}))
            }
            "delete_permission" => {
                let mut args = arguments.unwrap_or_default();
                let id = take_string(&mut args, "permission")?;
                let _: SearchArgs = parse(Some(args))?;
                gateway
                    .delete_permission(&id, action)
                    .await
                    .map_err(gateway_failure)?;
                Ok(json!({"id": id, "deleted": true}))
            }
            "create_group" => {
                let body: GroupBody = parse(arguments)?;
                let group = gateway
                    .create_group(body, action)
                    .await
                    .map_err(gateway_failure)?;
                Ok(json!({"group": group}))
            }
            "set_group_member" => {
                let args: MemberArgs = parse(arguments)?;
                let member = args.member.unwrap_or(true);
                gateway
                    .set_member(&args.group, &args.user, member, action)
                    .await
                    .map_err(gateway_failure)?;
                Ok(json!({"group": args.group, "user": args.user, "member": member}))
            }
            "list_users" => {
                let _: SearchArgs = parse(arguments.or_else(|| Some(Map::new())))?;
                Ok(json!({"users": gateway.users().await.map_err(gateway_failure)?}))
            }
            "update_user" => {
                let mut args = arguments.unwrap_or_default();
                let user = take_string(&mut args, "user")?;
                let body: UserBody = parse(Some(args))?;
                let user = gateway
                    .update_user(&user, body, action)
                    .await
                    .map_err(gateway_failure)?;
                Ok(json!({"user": user}))
            }
            "get_settings" => {
                let _: SearchArgs = parse(arguments.or_else(|| Some(Map::new())))?;
                Ok(json!({"settings": gateway.settings_view().await.map_err(gateway_failure)?}))
            }
            "update_settings" => {
                let body: SettingsBody = parse(arguments)?;
                let settings = gateway
                    .update_settings(body, action)
                    .await
                    .map_err(gateway_failure)?;
                Ok(json!({"settings": settings}))
            }
            other => Err(failure(
                "invalid_request",
                format!("no admin tool named `{other}`"),
            )),
        }
    }
}

impl ServerHandler for AdminMcp {
    fn get_info(&self) -> ServerConfig {
        crate::own_tools::server_config(
            "switchboard-admin",
            "Manage the MCP servers that Switchboard registers and proxies: list, inspect, add \
             (npx or remote), update, enable, disable and delete them, and browse the catalog; \
             decide users' access requests, and manage permissions, grants, groups and the \
             organization's settings.",
        )
    }

    /// The tools the caller's scopes reach: a read-only token sees only those that read.
    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        let decision = crate::call::decision_of(&context);
        let tools = admin_tools()
            .into_iter()
            .filter(|tool| {
                decision
                    .is_some_and(|decision| may_call(&decision.caller, Endpoint::Admin, &tool.name))
            })
            .collect();
        Ok(ListToolsResult {
            tools,
            ..ListToolsResult::default()
        })
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        if !admin_tools().iter().any(|tool| tool.name == request.name) {
            return Err(McpError::invalid_params(
                format!("no admin tool named `{}`", request.name),
                None,
            ));
        }
        let target = request
            .arguments
            .as_ref()
            .and_then(|args| {
                args.get("id")
                    .or_else(|| args.get("alias"))
                    .or_else(|| args.get("name"))
            })
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let called_by = crate::call::CalledBy::of(&context);
        let action = AdminAction {
            actor: called_by.actor,
            client: called_by.client,
            action: format!("admin_mcp.{}", request.name),
            server: target,
            started: std::time::Instant::now(),
        };
        let (result, outcome) = match self.run(&request.name, request.arguments, &action).await {
            Ok(structured) => (success(structured), "ok"),
            Err(failure) => (failure, "error"),
        };
        // A change done has its row already, written with it.
        // A change that succeeded has its audit row, written with the change.
        let changed = outcome == "ok" && ADMIN_WRITES.contains(&request.name.as_ref());
        if !changed {
            let detail = result
                .structured_content
                .as_ref()
                .and_then(|s| s.get("error").cloned())
                .map(|error| json!({"error": error}))
                .unwrap_or(json!({}));
            self.gateway.audit().record(action.entry(outcome, detail));
        }
        Ok(result.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{GatewayError, policy::ADMIN_READS};

    /// REST, `/mcp/admin` and JSON-RPC answers carry the same code for the same error.
    #[test]
    fn a_gateway_error_has_one_code_in_every_answer() {
        let errors = || {
            [
                GatewayError::Invalid("bad".into()),
                GatewayError::NotFound("x".into()),
                GatewayError::Conflict("taken".into()),
                GatewayError::Disabled("x".into()),
                GatewayError::Sealed("x".into()),
            ]
        };
        for (error, again) in errors().into_iter().zip(errors()) {
            let code = error.code();
            let admin = gateway_failure(error);
            let structured = admin.structured_content.expect("structured");
            assert_eq!(structured["error"]["code"], code);
            let rpc = crate::call::to_mcp(again);
            assert_eq!(rpc.data, Some(json!({"code": code})), "{code}");
        }
        assert_eq!(GatewayError::Disabled("x".into()).code(), "server_disabled");
    }

    /// Seed 004's rubric, checked on every tool: a description that covers effects, returns and
    /// errors; every parameter described; annotations; an output schema.
    #[test]
    fn every_tool_meets_the_rubric() {
        let tools = admin_tools();
        assert_eq!(tools.len(), 26);
        crate::own_tools::assert_rubric(&tools, |name| ADMIN_READS.contains(&name));
        for tool in &tools {
            let name = tool.name.as_ref();
            assert_ne!(
                ADMIN_READS.contains(&name),
                ADMIN_WRITES.contains(&name),
                "{name}: in exactly one of the policy's lists"
            );
        }
        let delete = tools
            .iter()
            .find(|t| t.name == "delete_mcp_server")
            .expect("delete");
        let annotations = serde_json::to_value(&delete.annotations).expect("json");
        assert_eq!(annotations["destructiveHint"], true);
    }
}
