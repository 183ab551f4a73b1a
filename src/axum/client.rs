//! The client address of a request, for rate limits and load shedding:
//! the socket's peer, or the address the trusted proxies in front of the
//! service vouch for in `X-Forwarded-For`; an IPv6 client counted by its
//! /64.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use ::axum::extract::ConnectInfo;
use ::axum::http::HeaderMap;
use ::axum::http::request::Parts;

/// How a request's client is found: from the socket, or behind a number
/// of trusted proxies that each append to `X-Forwarded-For` (nginx's
/// `$proxy_add_x_forwarded_for`, an AWS ALB).
///
/// ```
/// use keyward::axum::ClientAddr;
/// use axum::http::HeaderMap;
///
/// let behind_one = ClientAddr::behind_proxies(1);
/// let mut headers = HeaderMap::new();
/// headers.insert("x-forwarded-for", "203.0.113.9, 198.51.100.7".parse().unwrap());
/// let peer = "10.0.0.2:41000".parse().unwrap();
/// // The rightmost entry, written by the one trusted proxy.
/// assert_eq!(behind_one.source(&headers, Some(peer)).unwrap().to_string(), "198.51.100.7");
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClientAddr {
    trusted_proxies: usize,
}

/// The most trusted proxies [`ClientAddr::behind_proxies`] takes; more is
/// surely a mistake.
pub const MAX_TRUSTED_PROXIES: usize = 16;

impl ClientAddr {
    /// The socket's peer is the client: no proxy in front.
    #[must_use]
    pub const fn socket() -> Self {
        Self { trusted_proxies: 0 }
    }

    /// Behind `n` proxies that each append the address they received the
    /// request from to `X-Forwarded-For` (0 is [`socket`](Self::socket));
    /// `n` is capped at [`MAX_TRUSTED_PROXIES`].
    #[must_use]
    pub fn behind_proxies(n: usize) -> Self {
        Self {
            trusted_proxies: n.min(MAX_TRUSTED_PROXIES),
        }
    }

    /// The number of trusted proxies.
    #[must_use]
    pub const fn trusted_proxies(&self) -> usize {
        self.trusted_proxies
    }

    /// The key a request is counted against: the client address (see
    /// [`forwarded_client`] behind proxies, else `peer`), as a
    /// [`source_key`]. `None` only when neither is known: no proxy vouches
    /// for a client and the service was not served with
    /// `into_make_service_with_connect_info::<SocketAddr>()`.
    ///
    /// When `X-Forwarded-For` does not hold what the trusted proxies would
    /// have written (missing, too few entries, a malformed one among the
    /// proxies'), the request is counted against `peer`, the nearest
    /// proxy: all such requests share one budget, and none is counted
    /// against an address the client chose.
    #[must_use]
    pub fn source(&self, headers: &HeaderMap, peer: Option<SocketAddr>) -> Option<IpAddr> {
        if let Some(client) = forwarded_client(headers, self.trusted_proxies) {
            return Some(source_key(client));
        }
        if self.trusted_proxies > 0 {
            static WARNED: std::sync::atomic::AtomicBool =
                std::sync::atomic::AtomicBool::new(false);
            if !WARNED.swap(true, std::sync::atomic::Ordering::Relaxed) {
                tracing::warn!(
                    trusted_proxies = self.trusted_proxies,
                    "a request's X-Forwarded-For has fewer entries than the trusted proxies, or a malformed one among theirs; such requests count against the socket address (logged once)"
                );
            }
        }
        peer.map(|p| source_key(p.ip()))
    }

    /// [`source`](Self::source) of a request's parts, with the peer from
    /// its `ConnectInfo<SocketAddr>`.
    #[must_use]
    pub fn source_of(&self, parts: &Parts) -> Option<IpAddr> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0);
        self.source(&parts.headers, peer)
    }
}

/// The client address that `trusted_proxies` proxies vouch for in
/// `X-Forwarded-For`, or `None` when it is not there.
///
/// Each proxy appends the address it received the request from, so only
/// the rightmost entries are written by proxies; everything to their left
/// came from the client and may be anything. The nearest proxy appends the
/// rightmost entry; with `trusted_proxies` N, the client address is the
/// N-th entry from the right (N − 1 more hops skipped). Several
/// `X-Forwarded-For` lines count as one list, in order.
///
/// `None`, so that the caller falls back to the socket address, when
/// `trusted_proxies` is 0, when there are fewer entries than trusted
/// proxies (a request that did not pass through all of them), or when one
/// of the N rightmost entries is not an address (not what the proxies
/// write). An entry is an IPv4 or IPv6 address, optionally with a port
/// (`192.0.2.1:443`, `[2001:db8::1]:443`) or in brackets, with spaces
/// around it. Nothing left of the N rightmost entries is read.
#[must_use]
pub fn forwarded_client(headers: &HeaderMap, trusted_proxies: usize) -> Option<IpAddr> {
    if trusted_proxies == 0 {
        return None;
    }
    let mut hops = headers
        .get_all("x-forwarded-for")
        .iter()
        .rev()
        .flat_map(|line| line.as_bytes().rsplit(|b| *b == b','))
        .take(trusted_proxies)
        .map(parse_hop);
    let mut client = None;
    for _ in 0..trusted_proxies {
        client = Some(hops.next()??);
    }
    client
}

/// One `X-Forwarded-For` entry: an address, optionally with a port or in
/// brackets.
fn parse_hop(entry: &[u8]) -> Option<IpAddr> {
    let entry = std::str::from_utf8(entry).ok()?.trim_matches([' ', '\t']);
    if let Ok(ip) = entry.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Ok(addr) = entry.parse::<SocketAddr>() {
        return Some(addr.ip());
    }
    entry
        .strip_prefix('[')?
        .strip_suffix(']')?
        .parse::<Ipv6Addr>()
        .ok()
        .map(IpAddr::V6)
}

/// The rate-limiting key of a client address: an IPv4 address as it is (an
/// IPv4-mapped IPv6 one as IPv4), an IPv6 address as its /64, the
/// smallest block a site is given: one host can use every address in it.
#[must_use]
pub fn source_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let prefix = u128::from(v6) & !(u128::MAX >> 64);
            IpAddr::V6(Ipv6Addr::from(prefix))
        }
        v4 => v4,
    }
}
