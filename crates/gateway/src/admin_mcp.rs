//! The admin MCP server at `/mcp/admin`: seed 004's tools over the registry and over who may use
//! what, run here with structured content in every result; what each tool says of itself
//! (description, parameters, annotations, output schema) is in `admin_mcp/tools.rs`.

use rmcp::{
    ErrorData as McpError, RoleServer, ServerHandler,
    model::{
        CallToolRequestParams, CallToolResponse, CallToolResult, ListToolsResult,
        PaginatedRequestParams, ServerConfig,
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
    own_tools::{failure, gateway_failure, parse, success},
    policy::{ADMIN_WRITES, Endpoint, may_call},
    users_admin::UserBody,
};

mod tools;

pub use tools::admin_tools;

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
