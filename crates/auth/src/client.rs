//! OAuth clients: those identified by a metadata document (an https `client_id`) and those that
//! registered themselves (RFC 7591), and which redirect URIs each may use.

use switchboard_store::ClientRow;

/// A client, however it is identified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Client {
    pub id: String,
    /// Its name as it gives it; shown on the consent screen with where it comes from.
    pub name: String,
    pub redirect_uris: Vec<String>,
    pub kind: ClientKind,
    /// `none`, `client_secret_basic` or `client_secret_post`.
    pub auth_method: String,
    /// The secret's hash, for a confidential registered client.
    pub secret_hash: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientKind {
    /// Identified by a Client ID Metadata Document at this host.
    MetadataDocument { host: String },
    /// Registered itself here.
    Registered,
}

impl Client {
    pub(crate) fn registered(row: ClientRow) -> Self {
        Self {
            id: row.id,
            name: row.name,
            redirect_uris: row.redirect_uris,
            kind: ClientKind::Registered,
            auth_method: row.auth_method,
            secret_hash: row.secret_hash,
        }
    }

    /// Whether the client may be sent to `uri`: one of its redirect URIs exactly, or, for a
    /// loopback one (`127.0.0.1`, `[::1]`, `localhost`), the same with any port (RFC 8252: a
    /// native client listens on a port it gets from the system).
    pub fn allows_redirect(&self, uri: &str) -> bool {
        let Ok(asked) = url::Url::parse(uri) else {
            return false;
        };
        if asked.fragment().is_some() {
            return false;
        }
        self.redirect_uris.iter().any(|registered| {
            registered == uri
                || url::Url::parse(registered)
                    .is_ok_and(|registered| same_but_loopback_port(&registered, &asked))
        })
    }

    /// Whether every redirect URI goes to this machine: the consent screen warns then.
    pub fn only_loopback(&self) -> bool {
        self.redirect_uris
            .iter()
            .all(|uri| url::Url::parse(uri).is_ok_and(|uri| is_loopback(&uri)))
    }
}

fn is_loopback(url: &url::Url) -> bool {
    url.scheme() == "http"
        && match url.host() {
            Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            None => false,
        }
}

fn same_but_loopback_port(registered: &url::Url, asked: &url::Url) -> bool {
    is_loopback(registered)
        && registered.host() == asked.host()
        && registered.scheme() == asked.scheme()
        && registered.path() == asked.path()
        && registered.query() == asked.query()
        && asked.username().is_empty()
        && asked.password().is_none()
}

/// Whether a client's list of redirect URIs may be registered: not empty, each acceptable.
pub fn acceptable_redirects(uris: &[String]) -> bool {
    !uris.is_empty() && uris.iter().all(|uri| acceptable_redirect_uri(uri))
}

/// A redirect URI a client may register: https, http to a loopback host, or a private-use
/// scheme of a native app (`com.example.app:/cb`); never a fragment, nor a scheme that runs
/// code or reads files.
pub fn acceptable_redirect_uri(uri: &str) -> bool {
    let Ok(url) = url::Url::parse(uri) else {
        return false;
    };
    if url.fragment().is_some() || !url.username().is_empty() || url.password().is_some() {
        return false;
    }
    match url.scheme() {
        "https" => url.host().is_some(),
        "http" => is_loopback(&url),
        "javascript" | "data" | "file" | "vbscript" | "blob" | "about" | "ftp" | "ws" | "wss" => {
            false
        }
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(uris: &[&str]) -> Client {
        Client {
            id: "c".into(),
            name: "c".into(),
            redirect_uris: uris.iter().map(|uri| uri.to_string()).collect(),
            kind: ClientKind::Registered,
            auth_method: "none".into(),
            secret_hash: None,
        }
    }

    #[test]
    fn redirects_match_exactly_except_a_loopback_port() {
        let c = client(&[
            "http://localhost/callback",
            "http://127.0.0.1/callback",
            "http://[::1]:9/cb",
            "https://app.example.com/cb",
        ]);
        for ok in [
            "http://localhost:53122/callback",
            "http://127.0.0.1:1/callback",
            "http://127.0.0.1/callback",
            "http://[::1]:4444/cb",
            "https://app.example.com/cb",
        ] {
            assert!(c.allows_redirect(ok), "{ok}");
        }
        for refused in [
            "https://app.example.com:8443/cb",
            "https://app.example.com/cb/",
            "https://app.example.com/cb?x=1",
            "http://localhost:53122/other",
            "http://127.0.0.2:80/callback",
            "http://localhost.evil.com:80/callback",
            "https://localhost:443/callback",
            "http://localhost:1/callback#frag",
            "http://user@localhost:1/callback",
            "not a url",
        ] {
            assert!(!c.allows_redirect(refused), "{refused}");
        }
        assert!(!c.only_loopback());
        assert!(client(&["http://127.0.0.1/x", "http://localhost/y"]).only_loopback());
    }

    #[test]
    fn registrable_redirects() {
        for ok in [
            "https://vscode.dev/redirect",
            "http://127.0.0.1:33418/",
            "http://localhost:7777/oauth/callback",
            "com.example.app:/cb",
            "cursor://anysphere.cursor-retrieval/oauth/callback",
        ] {
            assert!(acceptable_redirect_uri(ok), "{ok}");
        }
        for refused in [
            "http://app.example.com/cb",
            "javascript:alert(1)",
            "data:text/html,hi",
            "file:///etc/passwd",
            "https://app.example.com/cb#x",
            "relative/path",
        ] {
            assert!(!acceptable_redirect_uri(refused), "{refused}");
        }
    }
}
