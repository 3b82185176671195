//! Who calls: the credential the edge found (the admin token, an access token or an API key,
//! opened but not judged), and what the audit log calls them.

use switchboard_auth::{Claims, Role, Scope, Scopes};

use crate::audit::AdminAction;

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
    /// A user signed in to the console in their browser: they act with every scope of their
    /// role. Only the console presents it, once its CSRF check passed; no bearer credential
    /// becomes one.
    Session(Box<SessionUser>),
    /// No `Authorization` header.
    Anonymous,
    /// A bearer credential that is no token of this gateway, or a malformed header.
    Invalid,
}

/// Who a console session is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionUser {
    pub user_id: String,
    pub username: String,
    pub role: Role,
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
    pub fn user(&self) -> Option<(&str, Role)> {
        match self {
            Credential::Token(claims) => Some((&claims.user_id, claims.role)),
            Credential::Key(key) => Some((&key.user_id, key.role)),
            Credential::Session(user) => Some((&user.user_id, user.role)),
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

    /// Who owns what this caller opens (a session): the admin token, or the user a token or
    /// key acts for; `None` without a valid credential.
    pub fn owner(&self) -> Option<String> {
        match &self.credential {
            Credential::AdminToken => Some("admin-token".into()),
            Credential::Token(claims) => Some(format!("user:{}", claims.user_id)),
            Credential::Key(key) => Some(format!("user:{}", key.user_id)),
            Credential::Session(user) => Some(format!("user:{}", user.user_id)),
            Credential::Anonymous | Credential::Invalid => None,
        }
    }

    /// A user signed in to the console.
    pub fn session(user: SessionUser, client: String) -> Self {
        Self {
            actor: user.username.clone(),
            credential: Credential::Session(Box::new(user)),
            client,
        }
    }

    /// Whether `owner` (as [`Self::owner`] wrote it) is this caller; no allocation, as it runs
    /// on every request that names a session.
    pub fn is_owner(&self, owner: &str) -> bool {
        let user = |id: &str| owner.strip_prefix("user:") == Some(id);
        match &self.credential {
            Credential::AdminToken => owner == "admin-token",
            Credential::Token(claims) => user(&claims.user_id),
            Credential::Key(key) => user(&key.user_id),
            Credential::Session(session) => user(&session.user_id),
            Credential::Anonymous | Credential::Invalid => false,
        }
    }

    /// Whether the caller presented a credential of this gateway (judged or not yet).
    pub fn identified(&self) -> bool {
        !matches!(self.credential, Credential::Anonymous | Credential::Invalid)
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
            Credential::Session(user) => user.role == Role::Admin,
            Credential::Anonymous | Credential::Invalid => false,
        }
    }
}
