//! Which addresses an upstream connection may reach, decided when it connects.
//!
//! A name is judged by what it resolves to at the moment of connecting, not when it was
//! registered: a name that pointed at a public address then may point at a cloud metadata service
//! now (DNS rebinding). [`GuardedResolver`] is the one resolver of every HTTP client of the
//! process (reqwest's and the raw client's), and [`check_host`] judges hosts written as addresses,
//! which no resolver sees. Forbidden are link-local and cloud metadata addresses, the unspecified
//! address (`0.0.0.0` reaches this host), and IPv6 forms that embed a forbidden IPv4 address.
//! `switchboard serve --allow-link-local-upstreams` lifts the rule for the whole process.

use std::{
    future::Future,
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    pin::Pin,
    sync::atomic::{AtomicBool, Ordering},
    task::{Context, Poll},
};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Set once at start-up by the process that owns the connections.
static ALLOW_FORBIDDEN: AtomicBool = AtomicBool::new(false);

/// Lets every connection of the process reach link-local and metadata addresses (or not again).
pub fn allow_link_local(allow: bool) {
    ALLOW_FORBIDDEN.store(allow, Ordering::Relaxed);
}

fn guarded() -> bool {
    !ALLOW_FORBIDDEN.load(Ordering::Relaxed)
}

/// A connection refused because of where it would go. The message names no address: it is the
/// same whichever one the name resolved to.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the upstream's address is link-local, a cloud metadata service or unspecified, which the \
     gateway refuses to connect to"
)]
pub struct ForbiddenAddress;

/// Whether `ip` is never a legitimate upstream: link-local (`169.254.0.0/16`, `fe80::/10`), a
/// cloud metadata address, `0.0.0.0/8` or `::`, or an IPv6 form embedding a forbidden IPv4
/// address (IPv4-mapped, IPv4-compatible, NAT64, 6to4).
pub fn is_forbidden_address(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_forbidden_v4(v4),
        IpAddr::V6(v6) if v6.is_loopback() => false,
        IpAddr::V6(v6) => {
            v6.is_unspecified()
                || (v6.segments()[0] & 0xffc0) == 0xfe80
                // AWS's IPv6 metadata address.
                || v6 == Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254)
                || embedded_v4(v6).is_some_and(is_forbidden_v4)
        }
    }
}

fn is_forbidden_v4(v4: Ipv4Addr) -> bool {
    v4.is_link_local()
        || v4.octets()[0] == 0
        || v4.is_broadcast()
        // Alibaba Cloud's metadata address.
        || v4 == Ipv4Addr::new(100, 100, 100, 200)
}

/// The IPv4 address an IPv6 address carries, in the forms that reach it.
fn embedded_v4(v6: Ipv6Addr) -> Option<Ipv4Addr> {
    let [a, b, ..] = v6.segments();
    let o = v6.octets();
    if let Some(v4) = v6.to_ipv4() {
        // `::ffff:a.b.c.d` and the deprecated `::a.b.c.d`.
        Some(v4)
    } else if a == 0x64 && b == 0xff9b {
        // NAT64: the well-known prefix 64:ff9b::/96 and the local-use 64:ff9b:1::/48.
        Some(Ipv4Addr::new(o[12], o[13], o[14], o[15]))
    } else if a == 0x2002 {
        // 6to4: 2002:AABB:CCDD::/48.
        Some(Ipv4Addr::new(o[2], o[3], o[4], o[5]))
    } else {
        None
    }
}

/// Whether `ip` is an address of the public internet: not private, loopback, link-local,
/// shared (CGNAT), multicast, reserved, documentation or benchmarking space, in IPv4 or IPv6, nor
/// an IPv6 form embedding such an IPv4 address. Fetches the gateway makes on a client's word (a
/// client's metadata document) may reach only these.
pub fn is_public_address(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = embedded_v4(v6) {
                return is_public_v4(v4);
            }
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
                || (first & 0xffc0) == 0xfec0
                || (first & 0xff00) == 0xff00
                || (first == 0x2001 && v6.segments()[1] == 0x0db8))
        }
    }
}

fn is_public_v4(v4: Ipv4Addr) -> bool {
    let [a, b, c, _] = v4.octets();
    !(v4.is_private()
        || v4.is_loopback()
        || v4.is_link_local()
        || v4.is_broadcast()
        || v4.is_multicast()
        || v4.is_documentation()
        || a == 0
        || a >= 240
        || (a == 100 && (b & 0xc0) == 64)
        || (a == 198 && (b & 0xfe) == 18)
        || (a == 192 && b == 0 && c == 0))
}

/// Names of cloud metadata services, refused whatever they resolve to (trailing dots and case
/// do not change a name).
pub fn is_forbidden_host_name(host: &str) -> bool {
    host.trim_end_matches('.')
        .eq_ignore_ascii_case("metadata.google.internal")
}

/// Judges a URL's host as written: an address (IPv6 in brackets or not) or a forbidden name.
/// Other names are judged by [`GuardedResolver`] when they are resolved.
pub fn check_host(host: &str) -> Result<(), ForbiddenAddress> {
    if !guarded() {
        return Ok(());
    }
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let forbidden = match bare.parse::<IpAddr>() {
        Ok(ip) => is_forbidden_address(ip),
        Err(_) => is_forbidden_host_name(bare),
    };
    if forbidden {
        Err(ForbiddenAddress)
    } else {
        Ok(())
    }
}

/// Resolves a name with the system's resolver and keeps only the addresses an upstream may
/// reach; none left is [`ForbiddenAddress`].
async fn resolve(host: String) -> Result<Vec<SocketAddr>, BoxError> {
    check_host(&host)?;
    let found = tokio::net::lookup_host((host.as_str(), 0)).await?;
    let allowed: Vec<SocketAddr> = found
        .filter(|address| !guarded() || !is_forbidden_address(address.ip()))
        .collect();
    if allowed.is_empty() {
        return Err(Box::new(ForbiddenAddress));
    }
    Ok(allowed)
}

/// The resolver of every upstream connection: the system's, with forbidden addresses left out.
#[derive(Debug, Clone, Copy, Default)]
pub struct GuardedResolver;

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_string();
        Box::pin(async move {
            let addresses = resolve(host).await?;
            Ok(Box::new(addresses.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

type Resolving =
    Pin<Box<dyn Future<Output = Result<std::vec::IntoIter<SocketAddr>, BoxError>> + Send>>;

/// hyper's connector (the raw client) takes a resolver as a service from names to addresses.
impl tower_service::Service<hyper_util::client::legacy::connect::dns::Name> for GuardedResolver {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = BoxError;
    type Future = Resolving;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: hyper_util::client::legacy::connect::dns::Name) -> Self::Future {
        let host = name.as_str().to_string();
        Box::pin(async move { Ok(resolve(host).await?.into_iter()) })
    }
}

/// rustls needs a process-wide crypto provider for the TLS of upstream connections; ring is the
/// one we build with.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_form_of_a_forbidden_address_is_refused() {
        for host in [
            "169.254.169.254",
            "[::169.254.169.254]",
            "::ffff:169.254.169.254",
            "[::ffff:a9fe:a9fe]",
            "64:ff9b::a9fe:a9fe",
            "[64:ff9b::169.254.169.254]",
            "64:ff9b:1::a9fe:a9fe",
            "2002:a9fe:a9fe::1",
            "0.0.0.0",
            "0.1.2.3",
            "[::]",
            "255.255.255.255",
            "[fe80::1]",
            "[fd00:ec2::254]",
            "100.100.100.200",
            "metadata.google.internal",
            "metadata.google.internal.",
            "METADATA.Google.Internal..",
        ] {
            assert_eq!(check_host(host), Err(ForbiddenAddress), "{host}");
        }
        for host in [
            "127.0.0.1",
            "[::1]",
            "10.0.0.1",
            "192.168.1.10",
            "93.184.215.14",
            "[2606:2800:21f:cb07:6820:80da:af6b:8b2c]",
            "[64:ff9b::5db8:d70e]",
            "example.com",
            "metadata.google.internal.example.com",
        ] {
            assert_eq!(check_host(host), Ok(()), "{host}");
        }
    }

    #[test]
    fn public_addresses_are_told_from_every_other_kind() {
        for public in [
            "93.184.215.14",
            "8.8.8.8",
            "2606:2800:21f:cb07:6820:80da:af6b:8b2c",
        ] {
            assert!(is_public_address(public.parse().expect("ip")), "{public}");
        }
        for other in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "192.0.2.1",
            "198.18.0.1",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "ff02::1",
            "2001:db8::1",
            "::ffff:10.0.0.1",
            "64:ff9b::a9fe:a9fe",
        ] {
            assert!(!is_public_address(other.parse().expect("ip")), "{other}");
        }
    }

    #[tokio::test]
    async fn the_resolver_keeps_allowed_addresses_and_refuses_forbidden_names() {
        let found = resolve("localhost".into()).await.expect("resolves");
        assert!(
            found.iter().all(|address| address.ip().is_loopback()),
            "{found:?}"
        );
        for name in ["0.0.0.0", "169.254.169.254", "metadata.google.internal."] {
            let error = resolve(name.into()).await.expect_err("refused");
            assert!(
                error.downcast_ref::<ForbiddenAddress>().is_some(),
                "{name}: {error}"
            );
        }
    }
}
