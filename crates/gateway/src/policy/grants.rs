//! What a user may use: the permissions they hold on the servers a request reaches, and the one
//! rule that says whether those let them call (or see) a tool.

use switchboard_store::PermissionRow;

use super::{Endpoint, Facts, Reason, Request, ServerFacts};
use crate::{GatewayError, access::Held};
use switchboard_auth::Role;

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
                held.permission.server_id == server_id && allows(&held.permission, tool, read_only)
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

/// Whether a permission holds a tool, which says whether it only reads.
pub fn allows(permission: &PermissionRow, tool: &str, read_only: bool) -> bool {
    match permission.selector.as_str() {
        "all" => true,
        "read_only" => read_only,
        "list" => permission.tools.iter().any(|name| name == tool),
        _ => false,
    }
}

/// The refusal of a call that the caller's grants do not allow, naming the permission that would
/// (of `permissions`, the server's) and how to ask for it.
pub fn refuse_call(
    server_alias: &str,
    tool: &str,
    read_only: bool,
    permissions: &[std::sync::Arc<PermissionRow>],
) -> GatewayError {
    let allowing = permissions
        .iter()
        .find(|permission| allows(permission, tool, read_only));
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

/// What the caller may use on the server the request reaches: everything for the admin token and
/// admins; for a user, the permissions they hold there (none refuses the request), or on `/mcp`
/// without a named server, those they hold anywhere.
pub(super) fn grants_of(
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
