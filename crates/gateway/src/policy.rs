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
//! Every authorization rule is here, in [`decide`] and the parts it calls: `caller.rs` (who
//! calls), `admission.rs` (whether their credential reaches the endpoint), `grants.rs` (what a
//! user may use there).

use switchboard_auth::{Resource, Revocations};

pub use crate::org_settings::SelfService;
use crate::{
    Gateway, GatewayError,
    access::{Access, Held},
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

/// The MCP endpoint a request came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint<'a> {
    /// `/mcp/{server}` and its legacy SSE pair, with the server's id or alias as written.
    Server(&'a str),
    /// `/mcp`: every enabled server as one.
    Aggregate,
    /// `/mcp/admin`.
    Admin,
    /// `/mcp/user`: a user's self-service.
    User,
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
            Endpoint::User => Resource::User,
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
    /// The session id the request names (`Mcp-Session-Id`, or legacy SSE's `sessionId`).
    pub session: Option<&'a str>,
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
    /// Who opened a session (`Caller::owner`); `None` for a session this replica does not know.
    fn session_owner(&self, session: &str) -> Option<std::sync::Arc<str>>;
    /// How far a user may serve themselves (the organization's settings and their groups').
    fn self_service(&self, user_id: &str) -> SelfService;
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
    /// On `/mcp/user`, how far the user may serve themselves (`None`: elsewhere, or a caller
    /// that is no user).
    pub self_service: Option<SelfService>,
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
    /// A session id unknown here, or opened by someone else: either way, no session of theirs.
    UnknownSession,
    /// No credential, or one that is not valid here (expired, revoked, for another resource):
    /// the client must (re)authorize.
    Unauthenticated(Challenge),
    /// The token lacks scopes this request needs: the client may step up.
    InsufficientScope(Challenge),
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
            Reason::UnknownSession => GatewayError::SessionNotFound,
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
        self_service: None,
    };
    let needed = needed_scopes(request.endpoint, &target);
    if let Err(reason) = admit(&request, needed, facts) {
        return refuse(false, reason);
    }
    let server = match request.endpoint {
        Endpoint::Admin | Endpoint::User | Endpoint::AdminApi { .. } => None,
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
    if !owns_session(&request, facts) {
        return refuse(false, Reason::UnknownSession);
    }
    let route = route(server.as_ref());
    let self_service = match (request.endpoint, request.caller.credential.user()) {
        (Endpoint::User, Some((user_id, _))) => Some(facts.self_service(user_id)),
        _ => None,
    };
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
        self_service,
    }
}

/// Whether the session the request names, if any, is the caller's: opened with a credential of
/// the same owner. An `initialize` opens a session and names none of its own.
fn owns_session(request: &Request<'_>, facts: &impl Facts) -> bool {
    let Some(session) = request.session else {
        return true;
    };
    if request
        .asked
        .is_some_and(|asked| asked.method == Some("initialize"))
    {
        return true;
    }
    facts
        .session_owner(session)
        .is_some_and(|owner| request.caller.is_owner(&owner))
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
        Endpoint::Admin | Endpoint::User | Endpoint::AdminApi { .. } => return Route::Typed,
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
    owners: &'a crate::session_directory::SessionDirectory,
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

    fn session_owner(&self, session: &str) -> Option<std::sync::Arc<str>> {
        self.owners.owner(session)
    }

    fn self_service(&self, user_id: &str) -> SelfService {
        self.access.self_service(user_id)
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
            owners: self.session_directory(),
            public_url: &self.settings().public_url,
        };
        Ok(decide(request, &facts))
    }
}

mod admission;
mod caller;
mod grants;
#[cfg(test)]
mod tests;

pub use admission::{ADMIN_READS, ADMIN_WRITES, Challenge, USER_WRITES, may_call};
pub use caller::{ADMIN_TOKEN_ACTOR, Caller, Credential, KeyClaims, SessionUser};
pub use grants::{Grants, allows as permission_allows, refuse_call};

use admission::{admit, needed_scopes};
use grants::grants_of;
