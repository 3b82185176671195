//! The user MCP server at `/mcp/user`: seed 001's five self-service tools. A user's agent
//! searches the catalog of servers ("apps") and their permissions, files access requests and
//! follows them. What the tools list, and whether a request may be filed, follow the policy's
//! decision: the token's scopes and how far the organization lets the user serve themselves.

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
    Gateway,
    access_requests::{Requester, SubmitBody},
    own_tools::{failure, gateway_failure, output, parse, read_only, success, tool, writes},
    policy::{Decision, Endpoint, SelfService, USER_WRITES, may_call},
};

/// The self-service tools over one gateway.
#[derive(Debug, Clone)]
pub struct UserMcp {
    gateway: Gateway,
}

impl UserMcp {
    pub fn new(gateway: Gateway) -> Self {
        Self { gateway }
    }
}

const ERRORS: &str = "On failure the result has isError and `error{code, message}` in plain \
words: invalid_request for bad input, not_found for an unknown server or permission, forbidden \
when your role or your organization's settings do not allow it.";

fn permission_schema() -> Value {
    json!({"type": "object", "properties": {
        "id": {"type": "string", "description": "The permission's id, for `submit_access_request`."},
        "label": {"type": "string"},
        "description": {"type": "string"},
        "server": {"type": "string", "description": "The server's alias."},
        "tools": {"type": "array", "items": {"type": "string"}, "description": "The tools it gives, as clients see them."},
        "maxDurationSeconds": {"type": ["integer", "null"], "description": "The longest grant it may be requested for; null: no limit."},
        "state": {"type": "string", "enum": ["granted", "pending", "requestable", "not_requestable"]},
        "grantedUntil": {"type": ["integer", "null"], "description": "When the grant ends, Unix milliseconds; null: no end. Set when granted."},
        "requestId": {"type": "string", "description": "The pending request, when pending."}
    }})
}

fn request_schema() -> Value {
    json!({"type": "object", "properties": {
        "id": {"type": "string"},
        "permission": {"type": "string", "description": "The permission's label."},
        "server": {"type": "string"},
        "reason": {"type": "string"},
        "durationSeconds": {"type": ["integer", "null"]},
        "status": {"type": "string", "enum": ["pending", "approved", "denied"]},
        "decidedBy": {"type": ["string", "null"]},
        "decisionReason": {"type": ["string", "null"], "description": "Why it was approved or denied."},
        "createdAt": {"type": "integer"}
    }})
}

/// The tools, described for an agent choosing among them.
pub fn user_tools() -> Vec<Tool> {
    let query = json!({"type": "string", "description": "Words to look for, such as `sales reports` or `github`; every word must match. Leave out to list everything."});
    vec![
        tool(
            "search_apps",
            format!(
                "Search the apps (MCP servers) you can use or request access to, matching your words against their names, descriptions, and their tools' names and descriptions. Read-only. Returns `apps`: for each, its id, alias, name, description, whether you already have access (`access`: granted or none), whether any of its permissions can be requested, and the connectURL to give an MCP client. Use `list_requestable_permissions` next to see what to ask for. {ERRORS}"
            ),
            json!({"type": "object", "properties": {"query": query}, "additionalProperties": false}),
            output(
                json!({"apps": {"type": "array", "items": {"type": "object", "properties": {
                    "id": {"type": "string"}, "alias": {"type": "string"}, "name": {"type": "string"},
                    "description": {"type": "string"},
                    "access": {"type": "string", "enum": ["granted", "none"]},
                    "requestable": {"type": "boolean"},
                    "connectURL": {"type": "string"}
                }}}}),
            ),
            read_only(),
        ),
        tool(
            "search_requestable_permissions",
            format!(
                "Search the permissions you can request across every app, matching your words against their labels, descriptions, their app's name and their tools' names. Read-only. Returns `permissions`: for each, its id, label, description, app, tools, longest duration and your state (granted until, pending, or requestable). File one with `submit_access_request`. {ERRORS}"
            ),
            json!({"type": "object", "properties": {"query": query}, "additionalProperties": false}),
            output(json!({"permissions": {"type": "array", "items": permission_schema()}})),
            read_only(),
        ),
        tool(
            "list_requestable_permissions",
            format!(
                "List one app's permissions, each with its tools and your state: granted (with `grantedUntil`), pending (with `requestId`), requestable, or not_requestable (ask an admin). Read-only. Returns `server` (id, alias, name) and `permissions`. Find apps with `search_apps`. {ERRORS}"
            ),
            json!({"type": "object", "properties": {
                "server": {"type": "string", "description": "The app's id or alias, as `search_apps` returns it."}
            }, "required": ["server"], "additionalProperties": false}),
            output(
                json!({"server": {"type": "object"}, "permissions": {"type": "array", "items": permission_schema()}}),
            ),
            read_only(),
        ),
        tool(
            "submit_access_request",
            format!(
                "Ask for a permission, with a reason an admin will read, for a duration or for as long as the permission allows. Side effects: files a pending request that admins see (and the organization's webhook hears of). Idempotent while pending: asking again for the same permission returns the pending request with `created: false`. Returns `request` and `created`. Refused (forbidden) when your organization's settings or your role do not let you file requests, even with the user:write scope. {ERRORS}"
            ),
            json!({"type": "object", "properties": {
                "permission": {"type": "string", "description": "The permission's id, from `list_requestable_permissions` or `search_requestable_permissions`."},
                "reason": {"type": "string", "description": "Why you need it, in a sentence or two; at most 1000 characters."},
                "durationSeconds": {"type": "integer", "minimum": 1, "description": "How long you need it, in seconds; at most the permission's maxDurationSeconds. Leave out for as long as it allows."}
            }, "required": ["permission", "reason"], "additionalProperties": false}),
            output(
                json!({"request": request_schema(), "created": {"type": "boolean", "description": "false when an equal request was pending already."}}),
            ),
            writes(true, false),
        ),
        tool(
            "list_access_requests",
            format!(
                "List your own access requests, newest first, with their status (pending, approved or denied) and the reason an admin gave for the decision. Read-only. Returns `requests`. {ERRORS}"
            ),
            json!({"type": "object", "properties": {
                "status": {"type": "string", "enum": ["pending", "approved", "denied"], "description": "Only requests with this status; all when left out."}
            }, "additionalProperties": false}),
            output(json!({"requests": {"type": "array", "items": request_schema()}})),
            read_only(),
        ),
    ]
}

/// The tools this caller sees: those its scopes reach and the settings leave on.
fn visible(decision: Option<&Decision>) -> Vec<Tool> {
    let Some(decision) = decision else {
        return Vec::new();
    };
    let mode = decision.self_service.unwrap_or(SelfService::On);
    user_tools()
        .into_iter()
        .filter(|tool| may_call(&decision.caller, Endpoint::User, &tool.name))
        .filter(|tool| match mode {
            SelfService::Off => false,
            SelfService::ReadOnly => !USER_WRITES.contains(&tool.name.as_ref()),
            SelfService::On => true,
        })
        .collect()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct QueryArgs {
    query: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ServerArgs {
    server: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StatusArgs {
    status: Option<String>,
}

impl UserMcp {
    async fn run(
        &self,
        name: &str,
        arguments: Option<Map<String, Value>>,
        decision: &Decision,
    ) -> Result<Value, CallToolResult> {
        let Some((user_id, _)) = decision.caller.credential.user() else {
            return Err(failure(
                "forbidden",
                "the self-service tools act for a signed-in user; the admin token is no user"
                    .into(),
            ));
        };
        let gateway = &self.gateway;
        let empty = || Some(Map::new());
        match name {
            "search_apps" => {
                let args: QueryArgs = parse(arguments.or_else(empty))?;
                let apps = gateway
                    .apps_for(user_id, args.query.as_deref())
                    .await
                    .map_err(gateway_failure)?;
                Ok(json!({"apps": apps}))
            }
            "search_requestable_permissions" => {
                let args: QueryArgs = parse(arguments.or_else(empty))?;
                let permissions = gateway
                    .requestable_permissions(user_id, args.query.as_deref())
                    .await
                    .map_err(gateway_failure)?;
                Ok(json!({"permissions": permissions}))
            }
            "list_requestable_permissions" => {
                let args: ServerArgs = parse(arguments)?;
                let (app, permissions) = gateway
                    .app_permissions(user_id, &args.server)
                    .await
                    .map_err(gateway_failure)?;
                Ok(json!({
                    "server": {"id": app.id, "alias": app.alias, "name": app.name},
                    "permissions": permissions,
                }))
            }
            "submit_access_request" => {
                match decision.self_service.unwrap_or(SelfService::On) {
                    SelfService::On => {}
                    mode => {
                        return Err(failure(
                            "forbidden",
                            format!(
                                "your organization has self-service {} for you, so you cannot \
                                 file access requests here; ask an admin for access instead",
                                mode.words()
                            ),
                        ));
                    }
                }
                let body: SubmitBody = parse(arguments)?;
                let requester = Requester {
                    user_id: user_id.to_string(),
                    username: decision.caller.actor.clone(),
                };
                let action = decision.caller.action("user_mcp.submit_access_request", "");
                let (request, created) = gateway
                    .submit_access_request(&requester, body, &action)
                    .await
                    .map_err(gateway_failure)?;
                Ok(json!({"request": request, "created": created}))
            }
            "list_access_requests" => {
                let args: StatusArgs = parse(arguments.or_else(empty))?;
                let mut requests = gateway
                    .my_access_requests(user_id)
                    .await
                    .map_err(gateway_failure)?;
                if let Some(status) = &args.status {
                    requests.retain(|request| &request.status == status);
                }
                Ok(json!({"requests": requests}))
            }
            other => Err(failure(
                "invalid_request",
                format!("no self-service tool named `{other}`"),
            )),
        }
    }
}

impl ServerHandler for UserMcp {
    fn get_info(&self) -> ServerConfig {
        crate::own_tools::server_config(
            "switchboard-user",
            "Find the apps (MCP servers) you can use, see their permissions, ask for access with \
             a reason, and follow your requests. Start with search_apps.",
        )
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        Ok(ListToolsResult {
            tools: visible(crate::call::decision_of(&context)),
            ..ListToolsResult::default()
        })
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        if !user_tools().iter().any(|tool| tool.name == request.name) {
            return Err(McpError::invalid_params(
                format!("no self-service tool named `{}`", request.name),
                None,
            ));
        }
        let Some(decision) = crate::call::decision_of(&context) else {
            return Err(McpError::internal_error("no policy decision", None));
        };
        if decision.self_service == Some(SelfService::Off) {
            return Ok(failure(
                "forbidden",
                "your organization has switched self-service off for you; ask an admin for \
                 access instead"
                    .into(),
            )
            .into());
        }
        let result = match self.run(&request.name, request.arguments, decision).await {
            Ok(structured) => success(structured),
            Err(failure) => failure,
        };
        Ok(result.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Seed 004's rubric, on every tool; and the scope each needs follows its annotation.
    #[test]
    fn every_tool_meets_the_rubric() {
        let tools = user_tools();
        assert_eq!(tools.len(), 5);
        crate::own_tools::assert_rubric(&tools, |name| !USER_WRITES.contains(&name));
    }
}
