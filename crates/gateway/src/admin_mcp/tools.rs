//! What the admin tools say of themselves: each tool's description, parameters, annotations and
//! output schema, held to seed 004's rubric (the handler that runs them is `admin_mcp`).

use rmcp::model::Tool;
use serde_json::{Value, json};

use crate::own_tools::{output, read_only, tool, writes};

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
