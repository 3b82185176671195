//! Whether a credential reaches an endpoint at all: the admin token passes; an access token must
//! be unexpired, unrevoked, for exactly this endpoint, with the scopes the request needs; an API
//! key unexpired with those scopes; admin endpoints want an admin. A refusal carries the challenge
//! that lets the client get a token that will do.

use switchboard_auth::{Resource, Role, Scope, Scopes};

use super::{Credential, Endpoint, Facts, Reason, Request, Target};

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

/// The `/mcp/admin` tools that change nothing: `admin:read` may call them. Every other (and an
/// unknown name, refused anyway) needs `admin:write`.
pub const ADMIN_READS: &[&str] = &[
    "list_mcp_servers",
    "get_mcp_server",
    "list_catalog_entries",
    "list_access_requests",
    "list_permissions",
    "list_grants",
    "list_groups",
    "get_settings",
    "list_users",
];

/// The `/mcp/admin` tools that change the registry.
pub const ADMIN_WRITES: &[&str] = &[
    "add_npx_mcp",
    "add_remote_mcp",
    "update_mcp_server",
    "enable_mcp_server",
    "disable_mcp_server",
    "delete_mcp_server",
    "approve_access_request",
    "deny_access_request",
    "grant_permission",
    "revoke_grant",
    "update_settings",
    "create_permission",
    "update_permission",
    "delete_permission",
    "create_group",
    "set_group_member",
    "update_user",
];

/// The `/mcp/user` tools that change something: they need `user:write`, the others `user:read`.
pub const USER_WRITES: &[&str] = &["submit_access_request"];

/// The scopes a request needs: `mcp` on the proxied servers; on `/mcp/admin` `admin:read`, or
/// `admin:write` to call a tool that changes something; on `/mcp/user` `user:read`, or
/// `user:write` to file a request; on the admin API by its method.
pub(super) fn needed_scopes(endpoint: Endpoint<'_>, target: &Target) -> Scopes {
    match endpoint {
        Endpoint::Server(_) | Endpoint::Aggregate => Scopes::of([Scope::Mcp]),
        Endpoint::Admin => match target {
            Target::Tool(tool) if !ADMIN_READS.contains(&tool.as_str()) => {
                Scopes::of([Scope::AdminWrite])
            }
            _ => Scopes::of([Scope::AdminRead]),
        },
        Endpoint::User => match target {
            Target::Tool(tool) if USER_WRITES.contains(&tool.as_str()) => {
                Scopes::of([Scope::UserWrite])
            }
            _ => Scopes::of([Scope::UserRead]),
        },
        Endpoint::AdminApi { write: true } => Scopes::of([Scope::AdminWrite]),
        Endpoint::AdminApi { write: false } => Scopes::of([Scope::AdminRead]),
    }
}

/// Whether the caller's credential has the scopes to call `tool` on `endpoint`: what a listing
/// of `/mcp/admin` or `/mcp/user` shows, so that a client sees only what it may call.
pub fn may_call(caller: &super::Caller, endpoint: Endpoint<'_>, tool: &str) -> bool {
    let needed = needed_scopes(endpoint, &Target::Tool(tool.to_string()));
    match &caller.credential {
        Credential::AdminToken => true,
        Credential::Token(claims) => claims.scopes.covers(needed),
        Credential::Key(key) => key.scopes.covers(needed),
        Credential::Session(user) => user.role == Role::Admin || needed.without_admin() == needed,
        Credential::Anonymous | Credential::Invalid => false,
    }
}

/// Judges the caller's credential for the endpoint: the admin token passes; a user's token must
/// be unexpired, unrevoked, for exactly this endpoint, with the scopes needed (and an admin's,
/// for the admin endpoints).
pub(super) fn admit(
    request: &Request<'_>,
    needed: Scopes,
    facts: &impl Facts,
) -> Result<(), Reason> {
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
        // A console session holds every scope of its role.
        Credential::Session(user) => {
            if admin_resource && user.role != Role::Admin {
                return Err(Reason::AdminOnly);
            }
            return Ok(());
        }
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
    if !resource.is_uri(&claims.audience, facts.public_url()) {
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
