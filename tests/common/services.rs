//! The PostgreSQL and Redis servers of the tests: their URLs, whether they
//! answer (a test without its server prints one `SKIPPED:` line, or fails
//! under `KEYWARD_REQUIRE_SERVICES=1`), and fresh key namespaces on them.
//! Plain `std`, so that the harness's HTTP tests include this file too.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

/// PostgreSQL for the store tests: `$KEYWARD_POSTGRES_URL`, or the local
/// default.
pub fn postgres_url() -> String {
    std::env::var("KEYWARD_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// Redis for the store tests: `$KEYWARD_REDIS_URL`, or the local default.
pub fn redis_url() -> String {
    std::env::var("KEYWARD_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// Whether a missing service fails the test (`KEYWARD_REQUIRE_SERVICES=1`,
/// as CI sets) instead of skipping it.
pub fn services_required() -> bool {
    std::env::var("KEYWARD_REQUIRE_SERVICES").is_ok_and(|v| v == "1")
}

/// `url` with any password replaced, for messages.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (authority, path) = rest.split_at(rest.find(['/', '?']).unwrap_or(rest.len()));
    match authority.rsplit_once('@') {
        Some((user, host)) => {
            let user = user.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}:***@{host}{path}")
        }
        None => url.to_owned(),
    }
}

/// The host and port a service URL points at.
fn host_port(url: &str, default_port: u16) -> Option<(String, u16)> {
    let rest = url.split_once("://")?.1;
    let authority = &rest[..rest.find(['/', '?']).unwrap_or(rest.len())];
    let hostport = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if let Some(v6) = hostport.strip_prefix('[') {
        let (host, after) = v6.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(p) => p.parse().ok()?,
            None => default_port,
        };
        return Some((host.to_owned(), port));
    }
    match hostport.rsplit_once(':') {
        Some((host, port)) => Some((host.to_owned(), port.parse().ok()?)),
        None => Some((hostport.to_owned(), default_port)),
    }
}

/// Whether a TCP connection to the service at `url` opens. When it does
/// not, prints one `SKIPPED: <what> (<url> unreachable)` line and returns
/// false, or panics under `KEYWARD_REQUIRE_SERVICES=1`. Only reachability
/// decides a skip: once the port answers, every failure is a test failure.
pub fn service_reachable(what: &str, url: &str, default_port: u16) -> bool {
    use std::net::{TcpStream, ToSocketAddrs};
    use std::time::Duration;
    let up = host_port(url, default_port)
        .and_then(|(host, port)| (host.as_str(), port).to_socket_addrs().ok())
        .into_iter()
        .flatten()
        .any(|addr| TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_ok());
    if up {
        return true;
    }
    let url = redact(url);
    assert!(
        !services_required(),
        "{what}: {url} unreachable, and KEYWARD_REQUIRE_SERVICES=1 requires it"
    );
    println!("SKIPPED: {what} ({url} unreachable)");
    false
}

/// [`service_reachable`] for `$KEYWARD_POSTGRES_URL`; returns the URL.
pub fn postgres(what: &str) -> Option<String> {
    let url = postgres_url();
    service_reachable(what, &url, 5432).then_some(url)
}

/// [`service_reachable`] for `$KEYWARD_REDIS_URL`; returns the URL.
pub fn redis(what: &str) -> Option<String> {
    let url = redis_url();
    service_reachable(what, &url, 6379).then_some(url)
}

/// A fresh namespace for one test run, so parallel tests and reruns on a
/// shared server never see each other's keys.
pub fn unique_prefix(test: &str) -> String {
    use std::time::{SystemTime, UNIX_EPOCH};
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!("kwtest.{test}.{}.{nanos}:", std::process::id())
}

/// `url` pointing at `host:port` instead, keeping user, path and query.
pub fn with_host_port(url: &str, host: &str, port: u16) -> String {
    let (scheme, rest) = url.split_once("://").unwrap();
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let user = authority.rsplit_once('@').map(|(u, _)| format!("{u}@"));
    format!("{scheme}://{}{host}:{port}{tail}", user.unwrap_or_default())
}

/// The socket address a service URL points at (first resolution).
pub fn socket_addr(url: &str, default_port: u16) -> std::net::SocketAddr {
    use std::net::ToSocketAddrs;
    let (host, port) = host_port(url, default_port).unwrap();
    (host.as_str(), port)
        .to_socket_addrs()
        .unwrap()
        .next()
        .unwrap()
}
