//! Sign-in and the OAuth 2.1 authorization server of Switchboard's endpoints, without HTTP: users
//! and passwords ([`sign_in`]), clients ([`client`], [`metadata_document`], [`registration`]),
//! the authorization code and refresh grants ([`server`]), scopes and resources ([`scope`]), and
//! access tokens ([`access_token`]) with their revocations ([`revocations`]).
//!
//! Access tokens are sealed claims that every replica opens with the shared secret key, so a
//! proxied call checks its token with no query; whether the token is allowed where it is used
//! (expiry, revocation, audience, scopes) is decided by the gateway's policy point, not here.
#![forbid(unsafe_code)]

pub mod access_token;
pub mod client;
mod error;
pub mod external;
pub mod metadata_document;
pub mod password;
mod registration;
pub mod revocations;
pub mod scope;
pub mod secret;
pub mod server;
pub mod sign_in;

pub use access_token::{AccessTokens, Claims};
pub use client::{Client, ClientKind};
pub use error::OAuthError;
pub use external::{ExternalProvider, ExternalSettings};
pub use metadata_document::MetadataDocuments;
pub use revocations::Revocations;
pub use scope::{Resource, Scope, Scopes};
pub use server::{
    AuthServer, AuthSettings, AuthorizeError, AuthorizeParams, AuthorizeRequest, AuthorizedClient,
    ClientError, TokenParams, TokenResponse,
};
pub use sign_in::SignIn;

/// What a user may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Admin,
    User,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::User => "user",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "admin" => Some(Role::Admin),
            "user" => Some(Role::User),
            _ => None,
        }
    }

    /// A stored user's role; anything unknown is the lesser one.
    pub fn of(user: &switchboard_store::UserRow) -> Self {
        Self::parse(&user.role).unwrap_or(Role::User)
    }
}
