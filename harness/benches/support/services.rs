//! The PostgreSQL and Redis servers a bench measures, found as the tests
//! find theirs: `$KEYWARD_POSTGRES_URL` and `$KEYWARD_REDIS_URL`, or the
//! same local defaults. A server whose port does not answer is left out
//! with one `SKIPPED:` line, or fails the bench under
//! `KEYWARD_REQUIRE_SERVICES=1`.

use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

/// The PostgreSQL server to measure, if it answers.
#[cfg(feature = "postgres")]
pub(crate) fn postgres(what: &str) -> Option<String> {
    let var = "KEYWARD_POSTGRES_URL";
    let url =
        std::env::var(var).unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let options: sqlx::postgres::PgConnectOptions = url
        .parse()
        .expect("KEYWARD_POSTGRES_URL is not a PostgreSQL URL");
    reachable(what, var, options.get_host(), options.get_port()).then_some(url)
}

/// The Redis server to measure, if it answers.
#[cfg(feature = "redis")]
pub(crate) fn redis(what: &str) -> Option<String> {
    let var = "KEYWARD_REDIS_URL";
    let url = std::env::var(var).unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let client = redis::Client::open(url.as_str()).expect("KEYWARD_REDIS_URL is not a Redis URL");
    match client.get_connection_info().addr() {
        redis::ConnectionAddr::Tcp(host, port) => reachable(what, var, host, *port).then_some(url),
        // A socket or TLS address: the connection itself tells.
        _ => Some(url),
    }
}

/// A fresh key prefix for one run, so that runs on a shared server never
/// see each other's keys.
pub(crate) fn unique_prefix(what: &str) -> String {
    use std::time::{SystemTime, UNIX_EPOCH};
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!("kwbench.{what}.{}.{nanos}:", std::process::id())
}

/// Whether a TCP connection to `host:port` opens; if not, one `SKIPPED:`
/// line naming the variable (never the URL, which may hold a password),
/// or a panic under `KEYWARD_REQUIRE_SERVICES=1`.
fn reachable(what: &str, var: &str, host: &str, port: u16) -> bool {
    let up = (host, port)
        .to_socket_addrs()
        .into_iter()
        .flatten()
        .any(|addr| TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_ok());
    if !up {
        let required = std::env::var("KEYWARD_REQUIRE_SERVICES").is_ok_and(|v| v == "1");
        assert!(
            !required,
            "{what}: the server of {var} is unreachable, and KEYWARD_REQUIRE_SERVICES=1 requires it"
        );
        println!("SKIPPED: {what} (the server of {var} is unreachable)");
    }
    up
}

/// Every store to measure, named: memory, SQLite (as `SqliteStore::open`
/// opens it, on a file in `dir`), and PostgreSQL and Redis when they
/// answer (Redis under a key prefix of its own, from `what`).
#[cfg(feature = "sqlite")]
#[cfg_attr(
    not(any(feature = "postgres", feature = "redis")),
    allow(unused_variables, reason = "what names the network stores' runs")
)]
pub(crate) fn stores(
    rt: &tokio::runtime::Runtime,
    dir: &std::path::Path,
    what: &str,
) -> Vec<(&'static str, std::sync::Arc<dyn keyward::Store>)> {
    use std::sync::Arc;
    #[cfg_attr(
        not(any(feature = "postgres", feature = "redis")),
        allow(unused_mut, reason = "only the network stores are pushed")
    )]
    let mut stores: Vec<(&'static str, Arc<dyn keyward::Store>)> = vec![
        ("memory", Arc::new(keyward::MemoryStore::new())),
        (
            "sqlite",
            Arc::new(
                rt.block_on(keyward::SqliteStore::open(dir.join("bench.db")))
                    .expect("the bench's SQLite file"),
            ),
        ),
    ];
    #[cfg(feature = "postgres")]
    if let Some(url) = postgres(&format!("postgres {what} bench")) {
        let store = rt
            .block_on(keyward::PgStore::connect(&url))
            .expect("PostgreSQL answers");
        stores.push(("postgres", Arc::new(store)));
    }
    #[cfg(feature = "redis")]
    if let Some(url) = redis(&format!("redis {what} bench")) {
        let options = keyward::store::RedisOptions::default().prefix(unique_prefix(what));
        let store = rt
            .block_on(keyward::RedisStore::connect_with(&url, options))
            .expect("Redis answers");
        stores.push(("redis", Arc::new(store)));
    }
    stores
}
