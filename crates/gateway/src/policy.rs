//! The one policy point. Every downstream request to an MCP endpoint, whatever its transport
//! (Streamable HTTP, legacy SSE) or era, is decided here once, before any IO: who calls, which
//! server and which tool, prompt or resource it names, whether that is allowed, and which way it
//! travels (the raw path, or rmcp's typed model). [`decide`] is a pure function of what the
//! request says ([`Request`]) and of [`Facts`], a snapshot of the registry and of the open
//! sessions, so that tests check decisions without a network.
//!
//! The HTTP edge (`switchboard_api::mcp_edge`) authenticates the caller, reads the message,
//! asks [`Gateway::decide`], answers a refusal itself, and hands the [`Decision`] on in the
//! request's extensions; the handlers and the raw path act on it and decide nothing again.
//! Every authorization rule is here: the next rules (users, scopes, grants) are added to
//! [`decide`] and nowhere else.

use switchboard_auth::{Claims, Resource, Revocations, Role, Scope, Scopes};

use crate::{
    Gateway, GatewayError,
    access::{Access, Held},
    audit::AdminAction,
    definition_cache::CachedDefinition,
    shared_sessions::SharedSessions,
};

/// On `/mcp`, between a server's alias and its own tool or prompt name.
pub const SEPARATOR: &str = "__";

/// The alias and the server's own name in a name of `/mcp`; aliases hold no `_`, so the first
/// separator ends the alias.
pub(crate) fn split(aggregated: &str) -> Option<(&str, &str)> {
    aggregated.split_once(SEPARATOR)
}

/// Who calls, as the edge found them: the credential is opened there, and judged here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub credential: Credential,
    /// Who, for the audit log: [`ADMIN_TOKEN_ACTOR`] for the admin token, else the user's name.
    pub actor: String,
    /// Which client, for the audit log: its User-Agent.
    pub client: String,
}

/// The audit log's actor for the admin token: no username can be written so (a space).
pub const ADMIN_TOKEN_ACTOR: &str = "admin token";

/// The credential a request presented.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// The admin token: the break-glass credential, allowed everything (every use audited).
    AdminToken,
    /// An access token this gateway sealed, opened but not yet judged: its expiry, revocation,
    /// audience and scopes are [`decide`]'s to check.
    Token(Box<Claims>),
    /// An API key of this gateway, found live (not revoked, its owner enabled): its expiry and
    /// scopes are [`decide`]'s to check. A key names no audience: it is good on every endpoint
    /// its scopes open.
    Key(Box<KeyClaims>),
    /// No `Authorization` header.
    Anonymous,
    /// A bearer credential that is no token of this gateway, or a malformed header.
    Invalid,
}

/// What an API key carries: its owner and scopes, until when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyClaims {
    pub key_id: String,
    pub user_id: String,
    pub username: String,
    pub role: Role,
    pub scopes: Scopes,
    /// Unix milliseconds; `None`: until revoked.
    pub expires_at: Option<i64>,
}

impl Credential {
    /// The user a token or key acts for, and their role.
    fn user(&self) -> Option<(&str, Role)> {
        match self {
            Credential::Token(claims) => Some((&claims.user_id, claims.role)),
            Credential::Key(key) => Some((&key.user_id, key.role)),
            _ => None,
        }
    }
}

impl Caller {
    /// The holder of the admin token, calling with this client.
    pub fn admin(client: String) -> Self {
        Self {
            credential: Credential::AdminToken,
            actor: ADMIN_TOKEN_ACTOR.into(),
            client,
        }
    }

    /// A user's access token.
    pub fn token(claims: Claims, client: String) -> Self {
        Self {
            actor: claims.username.clone(),
            credential: Credential::Token(Box::new(claims)),
            client,
        }
    }

    /// A user's API key.
    pub fn key(claims: KeyClaims, client: String) -> Self {
        Self {
            actor: claims.username.clone(),
            credential: Credential::Key(Box::new(claims)),
            client,
        }
    }

    /// A caller without a valid credential (`credential` is `Anonymous` or `Invalid`).
    pub fn unidentified(credential: Credential, client: String) -> Self {
        Self {
            credential,
            actor: String::new(),
            client,
        }
    }

    /// The admin change this caller asks for, on `server` as they named it.
    pub fn action(&self, action: &str, server: &str) -> AdminAction {
        AdminAction {
            actor: self.actor.clone(),
            client: self.client.clone(),
            action: action.to_string(),
            server: server.to_string(),
            started: std::time::Instant::now(),
        }
    }

    /// Whether a run of this caller may start local (stdio) servers, which run commands on the
    /// gateway's machine: the admin token, or an admin's token that may write.
    pub fn may_start_local_servers(&self) -> bool {
        match &self.credential {
            Credential::AdminToken => true,
            Credential::Token(claims) => {
                claims.role == Role::Admin && claims.scopes.contains(Scope::AdminWrite)
            }
            Credential::Key(key) => {
                key.role == Role::Admin && key.scopes.contains(Scope::AdminWrite)
            }
            Credential::Anonymous | Credential::Invalid => false,
        }
    }
}

/// The MCP endpoint a request came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint<'a> {
    /// `/mcp/{server}` and its legacy SSE pair, with the server's id or alias as written.
    Server(&'a str),
    /// `/mcp`: every enabled server as one.
    Aggregate,
    /// `/mcp/admin`.
    Admin,
    /// The REST admin API (and `/metrics`, `/run`): a read, or a change.
    AdminApi { write: bool },
}

impl Endpoint<'_> {
    /// The protected resource a token for this endpoint names as its audience.
    pub fn resource(&self) -> Resource {
        match self {
            Endpoint::Server(name) => Resource::Server((*name).to_string()),
            Endpoint::Aggregate => Resource::Aggregate,
            Endpoint::Admin => Resource::Admin,
            Endpoint::AdminApi { .. } => Resource::AdminApi,
        }
    }
}

/// What a request's JSON-RPC message asks, as far as the policy reads it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Asked<'a> {
    /// `None` for a client's answer to a server's request.
    pub method: Option<&'a str>,
    /// Whether it is a request (it has an id), rather than a notification or an answer.
    pub has_id: bool,
    /// The tool or prompt name, or the resource URI, the message names.
    pub named: Option<&'a str>,
    /// Whether it is a `tools/call` the raw path can carry as it is: nothing in it needs rmcp's
    /// typed model (see `switchboard_api::mcp_message`).
    pub raw_carriable: bool,
}

/// How the request came, as far as its route depends on it (the edge reads it from the
/// headers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrival<'a> {
    /// On the 2025-era session with this id, with headers rmcp would accept as they are.
    Session(&'a str),
    /// A stateless (2026-07-28) request whose headers agree with its message.
    Stateless,
    /// Anything else: a `GET` or `DELETE`, the legacy SSE transport, headers rmcp must judge.
    Other,
}

/// One request, as the policy sees it.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    pub caller: Caller,
    pub endpoint: Endpoint<'a>,
    /// The message of a `POST`; `None` for a `GET` or `DELETE`.
    pub asked: Option<Asked<'a>>,
    pub arrival: Arrival<'a>,
    /// Unix milliseconds, for the token's expiry.
    pub now: i64,
}

/// What the policy reads besides the request: in memory, no IO.
pub trait Facts {
    /// A registered server by id or alias.
    fn server(&self, id_or_alias: &str) -> Option<ServerFacts<'_>>;
    /// Whether `session` is open on the endpoint of `server` (`None`: `/mcp`) with a client that
    /// answers no server-to-client requests, so that the raw path can serve its calls.
    fn plain_session(&self, session: &str, server: Option<&str>) -> bool;
    /// Whether a token family was revoked.
    fn revoked(&self, family: &str) -> bool;
    /// The unexpired permissions a user holds on a server (directly or through a group).
    fn held(&self, user_id: &str, server_id: &str, now: i64) -> Vec<Held>;
    /// The unexpired permissions a user holds on every server.
    fn held_anywhere(&self, user_id: &str, now: i64) -> Vec<Held>;
    /// The gateway's public URL: the base of every resource's URI.
    fn public_url(&self) -> &str;
}

/// A registered server, as far as the policy reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerFacts<'a> {
    pub id: &'a str,
    pub alias: &'a str,
    pub state: ServerState,
    /// Whether its upstream is reached over a transport the raw path speaks: Streamable HTTP or
    /// a child's stdio (not legacy SSE).
    pub raw_capable: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerState {
    Enabled,
    Disabled,
    /// Its secrets cannot be opened with the configured key.
    Sealed,
}

/// What [`decide`] decided about one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub caller: Caller,
    /// The server the request goes to: the endpoint's, or on `/mcp` the one its message names.
    pub server: Option<ServerRef>,
    pub target: Target,
    pub verdict: Verdict,
    pub route: Route,
    /// What the caller may use of the servers it reaches: which tools it may call and see.
    pub grants: Grants,
}

/// What a caller may use, as far as grants say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Grants {
    /// Everything: the admin token, an admin, or an endpoint that serves no registered server.
    Unrestricted,
    /// The permissions the user holds: on the decided server, or on every server when the
    /// request names none (a listing of `/mcp`).
    Held(Vec<Held>),
}

impl Grants {
    /// Whether these grants let the caller call `tool` of `server_id`, which says whether it
    /// only reads. The one rule for calls and listings alike.
    pub fn permit(&self, server_id: &str, tool: &str, read_only: bool) -> bool {
        match self {
            Grants::Unrestricted => true,
            Grants::Held(held) => held.iter().any(|held| {
                let permission = &held.permission;
                permission.server_id == server_id
                    && match permission.selector.as_str() {
                        "all" => true,
                        "read_only" => read_only,
                        "list" => permission.tools.iter().any(|name| name == tool),
                        _ => false,
                    }
            }),
        }
    }

    /// Whether the caller holds any permission on `server_id` (its prompts and resources, and
    /// its place in `/mcp`'s listings).
    pub fn any_on(&self, server_id: &str) -> bool {
        match self {
            Grants::Unrestricted => true,
            Grants::Held(held) => held.iter().any(|h| h.permission.server_id == server_id),
        }
    }
}

/// The refusal of a call that the caller's grants do not allow, naming the permission that would
/// (of `permissions`, the server's) and how to ask for it.
pub fn refuse_call(
    server_alias: &str,
    tool: &str,
    read_only: bool,
    permissions: &[std::sync::Arc<switchboard_store::PermissionRow>],
) -> GatewayError {
    let allowing = permissions.iter().find(|permission| {
        Grants::Held(vec![Held {
            permission: std::sync::Arc::clone(permission),
            expires_at: None,
        }])
        .permit(&permission.server_id, tool, read_only)
    });
    let ask = match allowing {
        Some(permission) if permission.requestable => format!(
            "the permission \"{}\" of `{server_alias}` allows it: ask for it with \
             `submit_access_request` on /mcp/user, or ask an admin",
            permission.label
        ),
        Some(permission) => format!(
            "the permission \"{}\" of `{server_alias}` allows it; ask an admin to grant it",
            permission.label
        ),
        None => format!("no permission of `{server_alias}` allows it; ask an admin"),
    };
    GatewayError::Forbidden(format!("you may not call `{tool}`: {ask}"))
}

/// A server, once resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerRef {
    pub id: String,
    pub alias: String,
}

/// What a request names, as its server exposes it (on `/mcp`, without the server's prefix).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// The endpoint itself: a `GET` stream, a `DELETE`, or a message that names nothing.
    Endpoint,
    /// A method that names nothing (`initialize`, a listing, `ping`, …).
    Method(String),
    Tool(String),
    Prompt(String),
    Resource(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    Refuse(Refusal),
}

/// Why a request is refused, and whether the refusal is of the endpoint (an HTTP answer) or of
/// the one message (a JSON-RPC error answering it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub of_message: bool,
    pub reason: Reason,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// No server with this id or alias.
    NoSuchServer(String),
    Disabled(String),
    Sealed(String),
    /// On `/mcp`, a name that is not `<server>__<name>`.
    NotAggregated(String),
    /// The user holds no permission on this server (its alias).
    NoGrant(String),
    /// `/mcp/admin` and the admin API are for admins.
    AdminOnly,
    /// No credential, or one that is not valid here (expired, revoked, for another resource):
    /// the client must (re)authorize.
    Unauthenticated(Challenge),
    /// The token lacks scopes this request needs: the client may step up.
    InsufficientScope(Challenge),
}

/// What a 401 or 403 tells the client so that it can get a token that will do (RFC 6750, RFC
/// 9728): where the resource's metadata is, and which scopes to ask for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// What is wrong, for people.
    pub message: String,
    /// The URL of the resource's Protected Resource Metadata.
    pub resource_metadata: String,
    pub scopes: Scopes,
    /// Whether a token was presented and refused (`error="invalid_token"`).
    pub invalid_token: bool,
}

impl Challenge {
    /// The `WWW-Authenticate` header's value.
    pub fn header(&self, insufficient: bool) -> String {
        let error = if insufficient {
            r#"error="insufficient_scope", "#
        } else if self.invalid_token {
            r#"error="invalid_token", "#
        } else {
            ""
        };
        format!(
            r#"Bearer {error}resource_metadata="{}", scope="{}""#,
            self.resource_metadata, self.scopes
        )
    }
}

impl Refusal {
    /// The refusal as the gateway's error, with its stable code.
    pub fn error(&self) -> GatewayError {
        match &self.reason {
            Reason::NoSuchServer(name) => GatewayError::NotFound(name.clone()),
            Reason::Disabled(alias) => GatewayError::Disabled(alias.clone()),
            Reason::Sealed(alias) => GatewayError::Sealed(alias.clone()),
            Reason::NotAggregated(name) => {
                GatewayError::UnknownName(format!("`{name}` is not `<server>{}<name>`", SEPARATOR))
            }
            Reason::AdminOnly => GatewayError::Forbidden("this endpoint is for admins".into()),
            Reason::NoGrant(alias) => GatewayError::Forbidden(format!(
                "you have no access to the server `{alias}`: ask for it with the self-service \
                 tools of /mcp/user, or ask an admin"
            )),
            Reason::Unauthenticated(challenge) => GatewayError::Unauthenticated {
                header: challenge.header(false),
                message: challenge.message.clone(),
            },
            Reason::InsufficientScope(challenge) => GatewayError::InsufficientScope {
                header: challenge.header(true),
                message: challenge.message.clone(),
            },
        }
    }
}

/// The way a request travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// The raw path (`switchboard_api::raw_path`): a plain `tools/call` forwarded as JSON text,
    /// or a cancel of such a call. The upstream layer may still find, before sending a byte,
    /// that its connection cannot carry it (no open session yet, or an `auto` URL that turned
    /// out to be legacy SSE); the call then goes to rmcp's service, governed the same way.
    Raw,
    /// rmcp's typed model.
    Typed,
}

/// Decides one request (see the module's doc).
pub fn decide(request: Request<'_>, facts: &impl Facts) -> Decision {
    let target = target_of(request.asked.as_ref());
    let route = |server: Option<&ServerFacts<'_>>| route_of(&request, server, facts);
    let refuse = |of_message: bool, reason: Reason| Decision {
        caller: request.caller.clone(),
        server: None,
        target: target.clone(),
        verdict: Verdict::Refuse(Refusal { of_message, reason }),
        route: Route::Typed,
        grants: Grants::Held(Vec::new()),
    };
    let needed = needed_scopes(request.endpoint, &target);
    if let Err(reason) = admit(&request, needed, facts) {
        return refuse(false, reason);
    }
    let server = match request.endpoint {
        Endpoint::Admin | Endpoint::AdminApi { .. } => None,
        Endpoint::Server(named) => match resolve(facts, named) {
            Ok(server) => Some(server),
            Err(reason) => return refuse(false, reason),
        },
        Endpoint::Aggregate => match aggregated(&target) {
            None => None,
            Some(Err(name)) => return refuse(true, Reason::NotAggregated(name.to_string())),
            Some(Ok(alias)) => match resolve(facts, alias) {
                Ok(server) => Some(server),
                Err(reason) => return refuse(true, reason),
            },
        },
    };
    let grants = match grants_of(&request, server.as_ref(), facts) {
        Ok(grants) => grants,
        Err(reason) => {
            let of_message = request.endpoint == Endpoint::Aggregate;
            return refuse(of_message, reason);
        }
    };
    let route = route(server.as_ref());
    let target = match (request.endpoint, target) {
        (Endpoint::Aggregate, Target::Tool(name)) => Target::Tool(unprefixed(&name)),
        (Endpoint::Aggregate, Target::Prompt(name)) => Target::Prompt(unprefixed(&name)),
        (_, target) => target,
    };
    Decision {
        caller: request.caller,
        server: server.map(|server| ServerRef {
            id: server.id.to_string(),
            alias: server.alias.to_string(),
        }),
        target,
        verdict: Verdict::Allow,
        route,
        grants,
    }
}

/// What the caller may use on the server the request reaches: everything for the admin token and
/// admins; for a user, the permissions they hold there (none refuses the request), or on `/mcp`
/// without a named server, those they hold anywhere.
fn grants_of(
    request: &Request<'_>,
    server: Option<&ServerFacts<'_>>,
    facts: &impl Facts,
) -> Result<Grants, Reason> {
    let Some((user_id, role)) = request.caller.credential.user() else {
        return Ok(Grants::Unrestricted);
    };
    if role == Role::Admin {
        return Ok(Grants::Unrestricted);
    }
    match (request.endpoint, server) {
        (Endpoint::Server(_) | Endpoint::Aggregate, Some(server)) => {
            let held = facts.held(user_id, server.id, request.now);
            if held.is_empty() {
                return Err(Reason::NoGrant(server.alias.to_string()));
            }
            Ok(Grants::Held(held))
        }
        (Endpoint::Aggregate, None) => Ok(Grants::Held(facts.held_anywhere(user_id, request.now))),
        _ => Ok(Grants::Unrestricted),
    }
}

/// The `/mcp/admin` tools that change nothing: `admin:read` may call them. Every other (and an
/// unknown name, refused anyway) needs `admin:write`.
pub const ADMIN_READS: &[&str] = &["list_mcp_servers", "get_mcp_server", "list_catalog_entries"];

/// The `/mcp/admin` tools that change the registry.
pub const ADMIN_WRITES: &[&str] = &[
    "add_npx_mcp",
    "add_remote_mcp",
    "update_mcp_server",
    "enable_mcp_server",
    "disable_mcp_server",
    "delete_mcp_server",
];

/// The scopes a request needs: `mcp` on the proxied servers; on `/mcp/admin` `admin:read`, or
/// `admin:write` to call a tool that changes something; on the admin API by its method.
fn needed_scopes(endpoint: Endpoint<'_>, target: &Target) -> Scopes {
    match endpoint {
        Endpoint::Server(_) | Endpoint::Aggregate => Scopes::of([Scope::Mcp]),
        Endpoint::Admin => match target {
            Target::Tool(tool) if !ADMIN_READS.contains(&tool.as_str()) => {
                Scopes::of([Scope::AdminWrite])
            }
            _ => Scopes::of([Scope::AdminRead]),
        },
        Endpoint::AdminApi { write: true } => Scopes::of([Scope::AdminWrite]),
        Endpoint::AdminApi { write: false } => Scopes::of([Scope::AdminRead]),
    }
}

/// Judges the caller's credential for the endpoint: the admin token passes; a user's token must
/// be unexpired, unrevoked, for exactly this endpoint, with the scopes needed (and an admin's,
/// for the admin endpoints).
fn admit(request: &Request<'_>, needed: Scopes, facts: &impl Facts) -> Result<(), Reason> {
    let resource = request.endpoint.resource();
    let challenge = |message: &str, invalid_token: bool, scopes: Scopes| Challenge {
        message: message.to_string(),
        resource_metadata: format!(
            "{}/.well-known/oauth-protected-resource{}",
            facts.public_url().trim_end_matches('/'),
            resource.path()
        ),
        scopes,
        invalid_token,
    };
    // The scopes this request needs: a client asks for no more than it uses, and steps up
    // when a later request needs more (a 403 naming them).
    let unauthenticated = |message: &str, invalid_token: bool| {
        Reason::Unauthenticated(challenge(message, invalid_token, needed))
    };
    let admin_resource = matches!(resource, Resource::Admin | Resource::AdminApi);
    let insufficient = |held: Scopes| {
        Reason::InsufficientScope(challenge(
            &format!("this request needs the scopes: {needed}"),
            false,
            needed.union(held.intersect(resource.scopes())),
        ))
    };
    let claims = match &request.caller.credential {
        Credential::AdminToken => return Ok(()),
        Credential::Anonymous => {
            return Err(unauthenticated("a bearer token is required", false));
        }
        Credential::Invalid => return Err(unauthenticated("the token is not valid", true)),
        Credential::Key(key) => {
            if key.expires_at.is_some_and(|at| at <= request.now) {
                return Err(unauthenticated("the API key has expired", true));
            }
            if admin_resource && key.role != Role::Admin {
                return Err(Reason::AdminOnly);
            }
            if !key.scopes.covers(needed) {
                return Err(insufficient(key.scopes));
            }
            return Ok(());
        }
        Credential::Token(claims) => claims,
    };
    if claims.expires_at <= request.now {
        return Err(unauthenticated("the token has expired", true));
    }
    if facts.revoked(&claims.family) {
        return Err(unauthenticated("the token was revoked", true));
    }
    if claims.audience != resource.uri(facts.public_url()) {
        return Err(unauthenticated(
            "the token was issued for another resource",
            true,
        ));
    }
    if admin_resource && claims.role != Role::Admin {
        return Err(Reason::AdminOnly);
    }
    if !claims.scopes.covers(needed) {
        return Err(insufficient(claims.scopes));
    }
    Ok(())
}

fn target_of(asked: Option<&Asked<'_>>) -> Target {
    let Some(asked) = asked else {
        return Target::Endpoint;
    };
    let named = asked.named.unwrap_or_default().to_string();
    match asked.method {
        Some("tools/call") => Target::Tool(named),
        Some("prompts/get") => Target::Prompt(named),
        Some("resources/read" | "resources/subscribe" | "resources/unsubscribe") => {
            Target::Resource(named)
        }
        Some(method) => Target::Method(method.to_string()),
        None => Target::Endpoint,
    }
}

/// On `/mcp`, the alias a tool or prompt name begins with, or the name that has none. Resources
/// and other methods name no server there.
fn aggregated(target: &Target) -> Option<Result<&str, &str>> {
    match target {
        Target::Tool(name) | Target::Prompt(name) => {
            Some(split(name).map(|(alias, _)| alias).ok_or(name.as_str()))
        }
        _ => None,
    }
}

fn unprefixed(name: &str) -> String {
    split(name).map_or(name, |(_, name)| name).to_string()
}

fn resolve<'f>(facts: &'f impl Facts, named: &str) -> Result<ServerFacts<'f>, Reason> {
    let server = facts
        .server(named)
        .ok_or_else(|| Reason::NoSuchServer(named.to_string()))?;
    match server.state {
        ServerState::Enabled => Ok(server),
        ServerState::Disabled => Err(Reason::Disabled(server.alias.to_string())),
        ServerState::Sealed => Err(Reason::Sealed(server.alias.to_string())),
    }
}

/// The raw path takes a plain `tools/call` to a server it can reach, on a session of the
/// endpoint whose client answers no requests or statelessly, and on such a session a client's
/// cancel (the raw path passes on to rmcp the cancels of calls it does not hold).
fn route_of(request: &Request<'_>, server: Option<&ServerFacts<'_>>, facts: &impl Facts) -> Route {
    let Some(asked) = request.asked else {
        return Route::Typed;
    };
    let endpoint_server = match request.endpoint {
        Endpoint::Server(_) => server.map(|server| server.id),
        Endpoint::Aggregate => None,
        Endpoint::Admin | Endpoint::AdminApi { .. } => return Route::Typed,
    };
    let call = asked.method == Some("tools/call")
        && asked.has_id
        && asked.raw_carriable
        && server.is_some_and(|server| server.raw_capable);
    let cancel = asked.method == Some("notifications/cancelled") && !asked.has_id;
    let raw = match request.arrival {
        Arrival::Stateless => call,
        Arrival::Session(session) => {
            (call || cancel) && facts.plain_session(session, endpoint_server)
        }
        Arrival::Other => false,
    };
    if raw { Route::Raw } else { Route::Typed }
}

/// The policy's facts on a running gateway: the cached definitions and the shared sessions.
struct Snapshot<'a> {
    definitions: &'a std::collections::HashMap<String, CachedDefinition>,
    sessions: &'a SharedSessions,
    revocations: &'a Revocations,
    access: &'a Access,
    public_url: &'a str,
}

impl Facts for Snapshot<'_> {
    fn server(&self, id_or_alias: &str) -> Option<ServerFacts<'_>> {
        Some(match self.definitions.get(id_or_alias)? {
            CachedDefinition::Ready(resolved) => ServerFacts {
                id: &resolved.id,
                alias: &resolved.definition.alias,
                state: if resolved.definition.enabled {
                    ServerState::Enabled
                } else {
                    ServerState::Disabled
                },
                raw_capable: match &resolved.config.upstream.endpoint {
                    switchboard_mcp::Endpoint::Http(http) => {
                        http.transport != switchboard_mcp::HttpTransport::Sse
                    }
                    _ => true,
                },
            },
            // Refused whatever it names: its id is not needed.
            CachedDefinition::Sealed(alias) => ServerFacts {
                id: alias,
                alias,
                state: ServerState::Sealed,
                raw_capable: false,
            },
        })
    }

    fn plain_session(&self, session: &str, server: Option<&str>) -> bool {
        self.sessions.get(session, server).is_some()
    }

    fn revoked(&self, family: &str) -> bool {
        self.revocations.is_revoked(family)
    }

    fn held(&self, user_id: &str, server_id: &str, now: i64) -> Vec<Held> {
        self.access.held(user_id, server_id, now)
    }

    fn held_anywhere(&self, user_id: &str, now: i64) -> Vec<Held> {
        self.access.held_anywhere(user_id, now)
    }

    fn public_url(&self) -> &str {
        self.public_url
    }
}

impl Gateway {
    /// Decides `request` over the registry as cached (the store is read only when the cache is
    /// older than its TTL), the open sessions and the revoked token families.
    pub async fn decide(
        &self,
        request: Request<'_>,
        revocations: &Revocations,
    ) -> Result<Decision, GatewayError> {
        let definitions = match request.endpoint {
            // The admin API names no server: no need to read the registry.
            Endpoint::AdminApi { .. } => Default::default(),
            _ => self.definitions().await?,
        };
        let facts = Snapshot {
            definitions: &definitions,
            sessions: self.shared_sessions(),
            revocations,
            access: self.access(),
            public_url: &self.settings().public_url,
        };
        Ok(decide(request, &facts))
    }
}

#[cfg(test)]
mod tests;
