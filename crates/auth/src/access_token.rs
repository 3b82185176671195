//! Access tokens: what they grant, sealed (XChaCha20-Poly1305) under a key derived from the
//! gateway's secret key, which every replica shares. A token is checked without the store: it
//! opens only with that key, and says who, for which client and resource, with which scopes,
//! and until when. Revocations are the one thing it cannot say; see [`crate::Revocations`].

use switchboard_store::SecretBox;

use crate::{
    Role, Scopes,
    secret::{base64url, from_base64url},
};

/// What every access token begins with, so that it is told apart from the admin token and API
/// keys at a glance (and by secret scanners).
pub const ACCESS_TOKEN_PREFIX: &str = "sbat_";

/// What an access token grants. Field names are short: they travel in every request.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Claims {
    /// The token family (one approval); revoking it kills the token.
    #[serde(rename = "fam")]
    pub family: String,
    #[serde(rename = "sub")]
    pub user_id: String,
    /// The user's name for the audit log.
    #[serde(rename = "usr")]
    pub username: String,
    #[serde(rename = "rol")]
    pub role: Role,
    #[serde(rename = "cid")]
    pub client_id: String,
    /// The resource's canonical URI (RFC 8707): the one endpoint the token is for.
    #[serde(rename = "aud")]
    pub audience: String,
    #[serde(rename = "scp", with = "scopes_text")]
    pub scopes: Scopes,
    /// Unix milliseconds.
    #[serde(rename = "exp")]
    pub expires_at: i64,
}

mod scopes_text {
    use crate::Scopes;

    pub fn serialize<S: serde::Serializer>(scopes: &Scopes, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(scopes)
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Scopes, D::Error> {
        let text = <String as serde::Deserialize>::deserialize(d)?;
        Scopes::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// Seals and opens access tokens.
#[derive(Debug, Clone)]
pub struct AccessTokens {
    sealer: SecretBox,
}

impl AccessTokens {
    /// Under a key derived from the secret key for this purpose only.
    pub fn new(secret_key: &SecretBox) -> Self {
        Self {
            sealer: secret_key.derive("access tokens"),
        }
    }

    pub fn seal(&self, claims: &Claims) -> String {
        // A struct of strings and numbers always serializes.
        let json = serde_json::to_vec(claims).unwrap_or_default();
        format!(
            "{ACCESS_TOKEN_PREFIX}{}",
            base64url(&self.sealer.seal_bytes(&json))
        )
    }

    /// The claims of a token this gateway sealed; `None` for anything else. Expiry, revocation,
    /// audience and scopes are the policy's to judge.
    pub fn open(&self, token: &str) -> Option<Claims> {
        let body = token.strip_prefix(ACCESS_TOKEN_PREFIX)?;
        let bytes = from_base64url(body)?;
        let json = self.sealer.open_bytes(&bytes).ok()?;
        serde_json::from_slice(&json).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims() -> Claims {
        Claims {
            family: "fam1".into(),
            user_id: "u1".into(),
            username: "ada".into(),
            role: Role::User,
            client_id: "https://client.example.com/meta.json".into(),
            audience: "https://gw.example.com/mcp".into(),
            scopes: Scopes::parse("mcp").expect("scopes"),
            expires_at: 1_800_000_000_000,
        }
    }

    #[test]
    fn a_token_opens_only_under_its_key_and_whole() {
        let key = SecretBox::from_hex(&"42".repeat(32)).expect("key");
        let tokens = AccessTokens::new(&key);
        let token = tokens.seal(&claims());
        assert!(token.starts_with(ACCESS_TOKEN_PREFIX));
        assert!(!token.contains("ada"), "the claims are not readable");
        assert_eq!(tokens.open(&token), Some(claims()));

        let other = AccessTokens::new(&SecretBox::from_hex(&"43".repeat(32)).expect("key"));
        assert_eq!(other.open(&token), None, "another gateway's key");
        let mut tampered = token.clone().into_bytes();
        let last = tampered.len() - 5;
        tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(tampered).expect("ascii");
        assert_eq!(tokens.open(&tampered), None, "a changed byte");
        assert_eq!(tokens.open("sbat_"), None);
        assert_eq!(tokens.open(&token[ACCESS_TOKEN_PREFIX.len()..]), None);
    }
}
