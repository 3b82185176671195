//! The scopes a token can carry, and the protected resources they open.

/// One scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    /// Use the proxied servers on `/mcp` and `/mcp/{alias}`.
    Mcp,
    UserRead,
    UserWrite,
    AdminRead,
    AdminWrite,
}

impl Scope {
    pub const ALL: [Scope; 5] = [
        Scope::Mcp,
        Scope::UserRead,
        Scope::UserWrite,
        Scope::AdminRead,
        Scope::AdminWrite,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Scope::Mcp => "mcp",
            Scope::UserRead => "user:read",
            Scope::UserWrite => "user:write",
            Scope::AdminRead => "admin:read",
            Scope::AdminWrite => "admin:write",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|scope| scope.name() == name)
    }

    /// What the scope lets a client do, in the words of the consent screen.
    pub fn words(self) -> &'static str {
        match self {
            Scope::Mcp => "Use the tools, prompts and resources of the servers you can use",
            Scope::UserRead => "See the app catalog and your access requests",
            Scope::UserWrite => "Submit access requests on your behalf",
            Scope::AdminRead => "Read the gateway's configuration, servers and audit log",
            Scope::AdminWrite => "Change the gateway's configuration and servers",
        }
    }

    /// Whether only admins may be granted it.
    pub fn admin_only(self) -> bool {
        matches!(self, Scope::AdminRead | Scope::AdminWrite)
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

/// A set of scopes. A `write` scope implies its `read`: sets are kept with the implied scopes
/// added.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Scopes(u8);

/// A scope string named a scope that does not exist.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a scope of this server")]
pub struct UnknownScope(pub String);

impl Scopes {
    pub const NONE: Scopes = Scopes(0);

    pub fn of(scopes: impl IntoIterator<Item = Scope>) -> Self {
        scopes
            .into_iter()
            .fold(Self::NONE, |set, scope| set.with(scope))
    }

    /// The scopes of a space-separated string. `offline_access` is accepted and means nothing:
    /// refresh tokens are always issued.
    pub fn parse(text: &str) -> Result<Self, UnknownScope> {
        let mut set = Self::NONE;
        for word in text.split_ascii_whitespace() {
            if word == "offline_access" {
                continue;
            }
            let scope = Scope::parse(word).ok_or_else(|| UnknownScope(word.to_string()))?;
            set = set.with(scope);
        }
        Ok(set)
    }

    pub fn with(self, scope: Scope) -> Self {
        let implied = match scope {
            Scope::UserWrite => Scope::UserRead.bit(),
            Scope::AdminWrite => Scope::AdminRead.bit(),
            _ => 0,
        };
        Self(self.0 | scope.bit() | implied)
    }

    pub fn contains(self, scope: Scope) -> bool {
        self.0 & scope.bit() != 0
    }

    pub fn covers(self, other: Scopes) -> bool {
        self.0 & other.0 == other.0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub fn intersect(self, other: Scopes) -> Scopes {
        Scopes(self.0 & other.0)
    }

    pub fn union(self, other: Scopes) -> Scopes {
        Scopes(self.0 | other.0)
    }

    /// Without the scopes only admins may hold.
    pub fn without_admin(self) -> Scopes {
        Self::of(self.iter().filter(|scope| !scope.admin_only()))
    }

    pub fn iter(self) -> impl Iterator<Item = Scope> {
        Scope::ALL
            .into_iter()
            .filter(move |scope| self.contains(*scope))
    }
}

impl std::fmt::Display for Scopes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.iter().map(Scope::name).collect();
        f.write_str(&names.join(" "))
    }
}

/// A protected resource: one of the gateway's endpoints, as a token's audience names it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Resource {
    /// `/mcp`: every server the caller may use, as one.
    Aggregate,
    /// `/mcp/{name}`, with the server's id or alias as the client wrote it.
    Server(String),
    /// `/mcp/admin`.
    Admin,
    /// `/mcp/user`.
    User,
    /// The REST admin API under `/api`.
    AdminApi,
}

impl Resource {
    /// The path under the public URL.
    pub fn path(&self) -> String {
        match self {
            Resource::Aggregate => "/mcp".into(),
            Resource::Server(name) => format!("/mcp/{name}"),
            Resource::Admin => "/mcp/admin".into(),
            Resource::User => "/mcp/user".into(),
            Resource::AdminApi => "/api".into(),
        }
    }

    /// The resource of a canonical URI under `public_url`, if it is one of ours.
    pub fn of_uri(uri: &str, public_url: &str) -> Option<Resource> {
        let path = uri.strip_prefix(public_url.trim_end_matches('/'))?;
        let path = path.strip_suffix('/').unwrap_or(path);
        match path {
            "/mcp" => Some(Resource::Aggregate),
            "/mcp/admin" => Some(Resource::Admin),
            "/mcp/user" => Some(Resource::User),
            "/api" => Some(Resource::AdminApi),
            _ => {
                let name = path.strip_prefix("/mcp/")?;
                let plain = !name.is_empty()
                    && name
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
                plain.then(|| Resource::Server(name.to_string()))
            }
        }
    }

    /// Its canonical URI (RFC 8707), under `public_url`.
    pub fn uri(&self, public_url: &str) -> String {
        format!("{}{}", public_url.trim_end_matches('/'), self.path())
    }

    /// Whether `uri` is exactly its canonical URI under `public_url` (as [`Self::uri`] writes
    /// it), without writing it: the policy asks on every call with an access token.
    pub fn is_uri(&self, uri: &str, public_url: &str) -> bool {
        let Some(path) = uri.strip_prefix(public_url.trim_end_matches('/')) else {
            return false;
        };
        match self {
            Resource::Aggregate => path == "/mcp",
            Resource::Server(name) => path.strip_prefix("/mcp/") == Some(name.as_str()),
            Resource::Admin => path == "/mcp/admin",
            Resource::User => path == "/mcp/user",
            Resource::AdminApi => path == "/api",
        }
    }

    /// The scopes it knows: what its metadata lists and its challenges name.
    pub fn scopes(&self) -> Scopes {
        match self {
            Resource::Aggregate | Resource::Server(_) => Scopes::of([Scope::Mcp]),
            Resource::Admin | Resource::AdminApi => {
                Scopes::of([Scope::AdminRead, Scope::AdminWrite])
            }
            Resource::User => Scopes::of([Scope::UserRead, Scope::UserWrite]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_implies_read_and_unknown_scopes_are_refused() {
        let set = Scopes::parse("user:write  admin:write offline_access").expect("parses");
        assert_eq!(
            set.to_string(),
            "user:read user:write admin:read admin:write"
        );
        assert!(set.covers(Scopes::of([Scope::AdminRead])));
        assert!(!set.contains(Scope::Mcp));
        assert_eq!(set.without_admin().to_string(), "user:read user:write");
        assert_eq!(Scopes::parse("mcp root"), Err(UnknownScope("root".into())));
        assert_eq!(Scopes::parse("").expect("empty"), Scopes::NONE);
    }

    #[test]
    fn resources_round_trip_through_their_uris() {
        let base = "https://gw.example.com/";
        for resource in [
            Resource::Aggregate,
            Resource::Server("github".into()),
            Resource::Admin,
            Resource::User,
            Resource::AdminApi,
        ] {
            let uri = resource.uri(base);
            assert_eq!(
                Resource::of_uri(&uri, base),
                Some(resource.clone()),
                "{uri}"
            );
            assert!(resource.is_uri(&uri, base), "{uri}");
            assert!(!resource.is_uri(&format!("{uri}/"), base), "{uri}/");
            assert!(!resource.is_uri(&format!("{uri}x"), base), "{uri}x");
            assert!(!resource.is_uri(&uri, "https://other.example.com"), "{uri}");
        }
        let server = Resource::Server("x".into());
        assert!(!server.is_uri("https://gw.example.com/mcp/y", base));
        assert!(!server.is_uri("https://gw.example.com/mcp", base));
        assert!(!Resource::Aggregate.is_uri("https://gw.example.com/mcp/x", base));
        assert!(!server.is_uri("https://gw.example.com.evil/mcp/x", base));
        assert_eq!(
            Resource::uri(&Resource::Server("x".into()), base),
            "https://gw.example.com/mcp/x"
        );
        assert_eq!(Resource::of_uri("https://evil.example.com/mcp", base), None);
        assert_eq!(
            Resource::of_uri("https://gw.example.com/mcp/a/b", base),
            None
        );
        assert_eq!(Resource::of_uri("https://gw.example.com/other", base), None);
    }
}
