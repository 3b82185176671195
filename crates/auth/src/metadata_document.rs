//! Client ID Metadata Documents: a `client_id` that is an https URL names a JSON document at
//! that URL, which says the client's name and redirect URIs. The gateway fetches it on the
//! client's word, so the fetch is guarded: https only, public addresses only (checked when each
//! connection is made, and for every redirect), at most [`MAX_DOCUMENT_BYTES`], within
//! [`FETCH_TIME_LIMIT`], through at most [`MAX_REDIRECTS`] redirects. Documents are cached as
//! their `Cache-Control` allows.

use std::{
    collections::HashMap,
    net::{IpAddr, SocketAddr},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use switchboard_mcp::net::is_public_address;

use crate::client::{Client, ClientKind, acceptable_redirects};

pub const MAX_DOCUMENT_BYTES: usize = 64 * 1024;
pub const FETCH_TIME_LIMIT: Duration = Duration::from_secs(5);
pub const MAX_REDIRECTS: usize = 3;
/// How long a document without caching headers is kept.
const DEFAULT_CACHE: Duration = Duration::from_secs(300);
/// The longest any document is kept.
const MAX_CACHE: Duration = Duration::from_secs(86_400);
/// Documents kept at most; past that the cache starts over.
const MAX_CACHED: usize = 1024;

/// Why a metadata document cannot identify a client. The message is safe to show: it names no
/// address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DocumentError {
    #[error("the client_id must be an https URL with a path, and no fragment or credentials")]
    BadUrl,
    #[error("the client's metadata document is on an address that is not public")]
    NotPublic,
    #[error("the client's metadata document could not be fetched")]
    Unreachable,
    #[error("the client's metadata document is larger than {MAX_DOCUMENT_BYTES} bytes")]
    TooLarge,
    #[error("the client's metadata document is not valid: {0}")]
    Invalid(String),
}

/// Whether `client_id` names a metadata document rather than a registered client.
pub fn is_document_url(client_id: &str) -> bool {
    client_id.starts_with("https://") || client_id.starts_with("http://")
}

/// Fetches and caches documents; cheap to clone.
#[derive(Debug, Clone)]
pub struct MetadataDocuments {
    http: reqwest::Client,
    /// Lets documents be served over http from loopback addresses (development and tests);
    /// every other non-public address stays refused.
    allow_loopback: bool,
    cache: Arc<Mutex<HashMap<String, (Client, Instant)>>>,
}

impl MetadataDocuments {
    pub fn new(allow_loopback: bool) -> Self {
        switchboard_mcp::net::install_crypto_provider();
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .dns_resolver(PublicResolver { allow_loopback })
            .timeout(FETCH_TIME_LIMIT)
            .user_agent("switchboard")
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        Self {
            http,
            allow_loopback,
            cache: Arc::default(),
        }
    }

    /// The client a document URL identifies.
    pub async fn client(&self, client_id: &str) -> Result<Client, DocumentError> {
        if let Some(client) = self.cached(client_id) {
            return Ok(client);
        }
        let url = self.check_url(client_id)?;
        let (body, keep) = self.fetch(url).await?;
        let client = parse_document(client_id, &body)?;
        if let Some(keep) = keep {
            let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
            if cache.len() >= MAX_CACHED {
                cache.clear();
            }
            cache.insert(
                client_id.to_string(),
                (client.clone(), Instant::now() + keep),
            );
        }
        Ok(client)
    }

    fn cached(&self, client_id: &str) -> Option<Client> {
        let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        let (client, until) = cache.get(client_id)?;
        (Instant::now() < *until).then(|| client.clone())
    }

    fn check_url(&self, text: &str) -> Result<url::Url, DocumentError> {
        let url = url::Url::parse(text).map_err(|_| DocumentError::BadUrl)?;
        let loopback_http = self.allow_loopback && url.scheme() == "http";
        let well_formed = (url.scheme() == "https" || loopback_http)
            && url.path() != "/"
            && url.fragment().is_none()
            && url.username().is_empty()
            && url.password().is_none();
        if !well_formed {
            return Err(DocumentError::BadUrl);
        }
        let literal = match url.host() {
            Some(url::Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
            Some(url::Host::Domain(_)) => None,
            None => return Err(DocumentError::BadUrl),
        };
        if let Some(ip) = literal
            && !reachable(ip, self.allow_loopback)
        {
            return Err(DocumentError::NotPublic);
        }
        if loopback_http && literal.is_none_or(|ip| !ip.is_loopback()) {
            return Err(DocumentError::BadUrl);
        }
        Ok(url)
    }

    /// The body (at most the cap) and how long it may be kept, following redirects by hand so
    /// that each target is checked as the first was.
    async fn fetch(&self, mut url: url::Url) -> Result<(Vec<u8>, Option<Duration>), DocumentError> {
        for _ in 0..=MAX_REDIRECTS {
            let response = self
                .http
                .get(url.clone())
                .header(reqwest::header::ACCEPT, "application/json")
                .send()
                .await
                .map_err(|error| classify(&error))?;
            if response.status().is_redirection() {
                let location = response
                    .headers()
                    .get(reqwest::header::LOCATION)
                    .and_then(|value| value.to_str().ok())
                    .and_then(|location| url.join(location).ok())
                    .ok_or(DocumentError::Unreachable)?;
                url = self.check_url(location.as_str())?;
                continue;
            }
            if !response.status().is_success() {
                return Err(DocumentError::Unreachable);
            }
            if response
                .content_length()
                .is_some_and(|length| length > MAX_DOCUMENT_BYTES as u64)
            {
                return Err(DocumentError::TooLarge);
            }
            let keep = cache_lifetime(response.headers());
            let mut response = response;
            let mut body = Vec::new();
            while let Some(chunk) = response.chunk().await.map_err(|error| classify(&error))? {
                body.extend_from_slice(&chunk);
                if body.len() > MAX_DOCUMENT_BYTES {
                    return Err(DocumentError::TooLarge);
                }
            }
            return Ok((body, keep));
        }
        Err(DocumentError::Unreachable)
    }
}

fn reachable(ip: IpAddr, allow_loopback: bool) -> bool {
    is_public_address(ip) || (allow_loopback && ip.is_loopback())
}

fn classify(error: &reqwest::Error) -> DocumentError {
    let mut source: Option<&dyn std::error::Error> = Some(error);
    while let Some(error) = source {
        if error.is::<NotPublicAddress>() {
            return DocumentError::NotPublic;
        }
        source = error.source();
    }
    DocumentError::Unreachable
}

/// How long `Cache-Control` lets a document be kept; `None`: not at all.
fn cache_lifetime(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let Some(control) = headers
        .get(reqwest::header::CACHE_CONTROL)
        .and_then(|value| value.to_str().ok())
    else {
        return Some(DEFAULT_CACHE);
    };
    let mut max_age = None;
    for directive in control.split(',').map(str::trim) {
        let directive = directive.to_ascii_lowercase();
        if directive == "no-store" || directive == "no-cache" {
            return None;
        }
        if let Some(seconds) = directive.strip_prefix("max-age=") {
            max_age = seconds.trim_matches('"').parse::<u64>().ok();
        }
    }
    match max_age {
        Some(0) => None,
        Some(seconds) => Some(Duration::from_secs(seconds).min(MAX_CACHE)),
        None => Some(DEFAULT_CACHE),
    }
}

#[derive(serde::Deserialize)]
struct Document {
    client_id: String,
    #[serde(default)]
    client_name: Option<String>,
    redirect_uris: Vec<String>,
    #[serde(default)]
    token_endpoint_auth_method: Option<String>,
}

fn parse_document(client_id: &str, body: &[u8]) -> Result<Client, DocumentError> {
    let document: Document = serde_json::from_slice(body)
        .map_err(|_| DocumentError::Invalid("not a JSON object with redirect_uris".into()))?;
    if document.client_id != client_id {
        return Err(DocumentError::Invalid(
            "its client_id is not the URL it was fetched from".into(),
        ));
    }
    if !acceptable_redirects(&document.redirect_uris) {
        return Err(DocumentError::Invalid(
            "redirect_uris must be a list of https, loopback or app URIs".into(),
        ));
    }
    let auth_method = document
        .token_endpoint_auth_method
        .unwrap_or_else(|| "none".into());
    if auth_method != "none" {
        return Err(DocumentError::Invalid(
            "token_endpoint_auth_method must be none".into(),
        ));
    }
    let url = url::Url::parse(client_id).map_err(|_| DocumentError::BadUrl)?;
    let host = url.host_str().unwrap_or_default().to_string();
    let name: String = document
        .client_name
        .filter(|name| !name.trim().is_empty())
        .unwrap_or_else(|| host.clone())
        .chars()
        .take(100)
        .collect();
    Ok(Client {
        id: client_id.to_string(),
        name,
        redirect_uris: document.redirect_uris,
        kind: ClientKind::MetadataDocument { host },
        auth_method,
        secret_hash: None,
    })
}

/// A name resolved only to addresses that are not public.
#[derive(Debug, thiserror::Error)]
#[error("the name resolves to no public address")]
struct NotPublicAddress;

/// The system's resolver, keeping only public addresses (and loopback ones when allowed).
#[derive(Debug, Clone, Copy)]
struct PublicResolver {
    allow_loopback: bool,
}

impl reqwest::dns::Resolve for PublicResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_string();
        let allow_loopback = self.allow_loopback;
        Box::pin(async move {
            let found = tokio::net::lookup_host((host.as_str(), 0)).await?;
            let allowed: Vec<SocketAddr> = found
                .filter(|address| reachable(address.ip(), allow_loopback))
                .collect();
            if allowed.is_empty() {
                return Err(Box::new(NotPublicAddress) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(allowed.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn urls_of_no_public_address_are_refused_before_any_connection() {
        let documents = MetadataDocuments::new(false);
        for (url, error) in [
            ("http://client.example.com/meta.json", DocumentError::BadUrl),
            ("https://client.example.com/", DocumentError::BadUrl),
            ("https://client.example.com/m#x", DocumentError::BadUrl),
            ("https://u:p@client.example.com/m", DocumentError::BadUrl),
            ("https://127.0.0.1/meta.json", DocumentError::NotPublic),
            ("https://10.0.0.5/meta.json", DocumentError::NotPublic),
            ("https://169.254.169.254/latest", DocumentError::NotPublic),
            ("https://[::ffff:192.168.0.1]/m", DocumentError::NotPublic),
            ("https://localhost/meta.json", DocumentError::NotPublic),
        ] {
            assert_eq!(documents.client(url).await, Err(error), "{url}");
        }
    }

    #[test]
    fn caching_follows_cache_control() {
        let headers = |value: &str| {
            let mut map = reqwest::header::HeaderMap::new();
            map.insert(
                reqwest::header::CACHE_CONTROL,
                value.parse().expect("header"),
            );
            map
        };
        assert_eq!(
            cache_lifetime(&headers("max-age=60")),
            Some(Duration::from_secs(60))
        );
        assert_eq!(
            cache_lifetime(&headers("public, max-age=999999")),
            Some(MAX_CACHE)
        );
        assert_eq!(cache_lifetime(&headers("no-store")), None);
        assert_eq!(cache_lifetime(&headers("max-age=0")), None);
        assert_eq!(
            cache_lifetime(&reqwest::header::HeaderMap::new()),
            Some(DEFAULT_CACHE)
        );
    }

    #[test]
    fn a_document_must_name_itself() {
        let id = "https://client.example.com/meta.json";
        let good = format!(
            r#"{{"client_id":"{id}","client_name":"Claude Code","redirect_uris":["http://localhost/callback"]}}"#
        );
        let client = parse_document(id, good.as_bytes()).expect("valid");
        assert_eq!(client.name, "Claude Code");
        assert_eq!(
            client.kind,
            ClientKind::MetadataDocument {
                host: "client.example.com".into()
            }
        );
        let other =
            r#"{"client_id":"https://evil.example.com/m","redirect_uris":["http://localhost/cb"]}"#;
        assert!(matches!(
            parse_document(id, other.as_bytes()),
            Err(DocumentError::Invalid(_))
        ));
        let bad_uri = format!(r#"{{"client_id":"{id}","redirect_uris":["javascript:x"]}}"#);
        assert!(matches!(
            parse_document(id, bad_uri.as_bytes()),
            Err(DocumentError::Invalid(_))
        ));
        let secret = format!(
            r#"{{"client_id":"{id}","redirect_uris":["http://localhost/cb"],"token_endpoint_auth_method":"client_secret_basic"}}"#
        );
        assert!(matches!(
            parse_document(id, secret.as_bytes()),
            Err(DocumentError::Invalid(_))
        ));
    }
}
