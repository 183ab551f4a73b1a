//! The shared in-memory store: Redis (or a Redis-compatible server), for any
//! number of replicas.
//!
//! A record is one string key, `PREFIX + key`, holding the version as 8
//! big-endian bytes followed by the value, with the TTL set on the key
//! (`SET … PX`). Version and value live in one string, so a `GET` or an
//! `MGET` always reads a consistent pair, and expiry is Redis's own.
//!
//! The compare-and-swap is one Lua script ([`CAS_SCRIPT`]), which Redis
//! runs atomically; it is loaded once and called by its SHA1 (`EVALSHA`,
//! falling back to `SCRIPT LOAD` after a server restart).

use std::time::Duration;

use redis::AsyncCommands;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use super::{
    Record, Store, StoreError, StoreFuture, Swap, check_args, check_key, initial_version,
    next_version,
};

/// The compare-and-swap.
///
/// `KEYS[1]`: the prefixed key. `ARGV[1]`: the expected version as 8
/// big-endian bytes, or the empty string for "create if absent".
/// `ARGV[2]`: the new version's 8 bytes followed by the value. `ARGV[3]`:
/// the TTL in milliseconds. Returns 1 when written, 0 on a conflict.
pub const CAS_SCRIPT: &str = r"
local cur = redis.call('GET', KEYS[1])
if ARGV[1] == '' then
  if cur then return 0 end
elseif (not cur) or string.sub(cur, 1, 8) ~= ARGV[1] then
  return 0
end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return 1
";

/// Longest key prefix.
pub const MAX_PREFIX_LEN: usize = 100;

/// Connection settings for [`RedisStore`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RedisOptions {
    /// Prepended to every key, so that several applications (or test runs)
    /// can share one server. Up to 100 characters of `[A-Za-z0-9:_.-]`;
    /// default `keyward:`.
    pub prefix: String,
    /// Limit on each connection attempt (default 2 s).
    pub connection_timeout: Duration,
    /// Limit on each command, after which it fails closed (default 2 s).
    pub response_timeout: Duration,
    /// Reconnection attempts after a connection is lost, with exponential
    /// backoff, before the waiting operations fail (default 2). Each later
    /// operation starts a new round.
    pub reconnect_retries: usize,
    /// DANGER: accept a server whose `maxmemory-policy` may evict keys.
    /// Eviction of a subject's revocation record would bring back the
    /// sessions a "revoke all" ended, so by default [`RedisStore::connect`]
    /// refuses such a server (default false).
    pub dangerous_allow_eviction: bool,
}

impl Default for RedisOptions {
    fn default() -> Self {
        Self {
            prefix: "keyward:".into(),
            connection_timeout: Duration::from_secs(2),
            response_timeout: Duration::from_secs(2),
            reconnect_retries: 2,
            dangerous_allow_eviction: false,
        }
    }
}

impl RedisOptions {
    /// Sets [`prefix`](Self::prefix).
    #[must_use]
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Sets [`connection_timeout`](Self::connection_timeout).
    #[must_use]
    pub fn connection_timeout(mut self, timeout: Duration) -> Self {
        self.connection_timeout = timeout;
        self
    }

    /// Sets [`response_timeout`](Self::response_timeout).
    #[must_use]
    pub fn response_timeout(mut self, timeout: Duration) -> Self {
        self.response_timeout = timeout;
        self
    }

    /// Sets [`reconnect_retries`](Self::reconnect_retries).
    #[must_use]
    pub fn reconnect_retries(mut self, retries: usize) -> Self {
        self.reconnect_retries = retries;
        self
    }

    /// Sets [`dangerous_allow_eviction`](Self::dangerous_allow_eviction).
    #[must_use]
    pub fn dangerous_allow_eviction(mut self, allow: bool) -> Self {
        self.dangerous_allow_eviction = allow;
        self
    }
}

/// A [`Store`] on Redis (feature `redis`). One multiplexed connection,
/// re-established automatically after a failure. Cheap to share: wrap it
/// in an `Arc`.
pub struct RedisStore {
    conn: ConnectionManager,
    prefix: String,
    cas: redis::Script,
}

impl std::fmt::Debug for RedisStore {
    // No URL: it may hold a password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

/// A Redis error, without the server's text (which may quote a key).
fn unavailable(e: &redis::RedisError) -> StoreError {
    let what = if e.is_connection_refusal() {
        "connection refused"
    } else if e.is_timeout() {
        "timed out"
    } else if e.is_connection_dropped() || e.is_io_error() {
        "connection lost"
    } else if let Some(code) = e.code() {
        // A server error code such as NOAUTH or WRONGTYPE, without its text.
        return StoreError::Unavailable(format!("redis: server error {code}"));
    } else {
        "request failed"
    };
    StoreError::Unavailable(format!("redis: {what}"))
}

fn check_prefix(prefix: &str) -> Result<(), StoreError> {
    let ok = prefix.len() <= MAX_PREFIX_LEN
        && prefix
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b':' | b'_' | b'.' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(StoreError::Unavailable(
            "redis: the key prefix must be at most 100 characters of [A-Za-z0-9:_.-]".into(),
        ))
    }
}

/// Splits a `prefix=` query parameter off a Redis URL.
fn split_prefix(url: &str) -> (String, Option<String>) {
    let Some((base, query)) = url.split_once('?') else {
        return (url.to_owned(), None);
    };
    let mut prefix = None;
    let rest: Vec<&str> = query
        .split('&')
        .filter(|pair| match pair.strip_prefix("prefix=") {
            Some(p) => {
                prefix = Some(p.to_owned());
                false
            }
            None => !pair.is_empty(),
        })
        .collect();
    if rest.is_empty() {
        (base.to_owned(), prefix)
    } else {
        (format!("{base}?{}", rest.join("&")), prefix)
    }
}

fn decode(packed: &[u8]) -> Result<Record, StoreError> {
    let (head, value) = packed
        .split_first_chunk::<8>()
        .ok_or(StoreError::Corrupt("record shorter than its version"))?;
    Ok(Record {
        version: u64::from_be_bytes(*head),
        value: value.to_vec(),
    })
}

impl RedisStore {
    /// Connects with the default [`RedisOptions`]. `url` is
    /// `redis://[user:password@]host[:port][/db]`, optionally with
    /// `?prefix=…` to set the key prefix.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the URL is malformed or uses
    /// `rediss://` (TLS is not built in), the server cannot be reached, or
    /// it may evict keys (see
    /// [`dangerous_allow_eviction`](RedisOptions::dangerous_allow_eviction)).
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let (url, prefix) = split_prefix(url);
        let mut options = RedisOptions::default();
        if let Some(prefix) = prefix {
            options.prefix = prefix;
        }
        Self::connect_with(&url, options).await
    }

    /// Connects with `options` (a `prefix=` in `url` is not read here).
    ///
    /// # Errors
    /// As [`connect`](Self::connect); also for a bad prefix.
    pub async fn connect_with(url: &str, options: RedisOptions) -> Result<Self, StoreError> {
        check_prefix(&options.prefix)?;
        if url.starts_with("rediss:") {
            return Err(StoreError::Unavailable(
                "redis: rediss:// (TLS) is not supported by this build; use redis:// on a trusted network or a TLS tunnel".into(),
            ));
        }
        let client = redis::Client::open(url)
            .map_err(|_| StoreError::Unavailable("redis: malformed URL".into()))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(options.connection_timeout))
            .set_response_timeout(Some(options.response_timeout))
            .set_number_of_retries(options.reconnect_retries)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_secs(1));
        let conn = ConnectionManager::new_with_config(client, config)
            .await
            .map_err(|e| unavailable(&e))?;
        let store = Self {
            conn,
            prefix: options.prefix,
            cas: redis::Script::new(CAS_SCRIPT),
        };
        if !options.dangerous_allow_eviction {
            store.check_eviction().await?;
        }
        store.check_persistence().await;
        // Load the script now, so the first swap is one round trip.
        store
            .cas
            .load_async(&mut store.conn.clone())
            .await
            .map_err(|e| unavailable(&e))?;
        Ok(store)
    }

    /// The key prefix.
    #[must_use]
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Refuses a server that may evict keys. Servers that hide `CONFIG`
    /// (managed services) are let through with a warning.
    async fn check_eviction(&self) -> Result<(), StoreError> {
        let mut conn = self.conn.clone();
        let reply: redis::RedisResult<Vec<String>> = redis::cmd("CONFIG")
            .arg("GET")
            .arg("maxmemory-policy")
            .query_async(&mut conn)
            .await;
        match reply.as_deref() {
            Ok([_, policy]) if policy == "noeviction" => Ok(()),
            Ok([_, policy]) => Err(StoreError::Unavailable(format!(
                "redis: maxmemory-policy is {policy}; keyward needs noeviction, or evicted revocations come back to life"
            ))),
            _ => {
                tracing::warn!(
                    "keyward: cannot read the redis maxmemory-policy; it must be noeviction"
                );
                Ok(())
            }
        }
    }

    /// Warns, once, when the server keeps no append-only file: it then
    /// loses every acknowledged write since its last snapshot when it
    /// restarts (all of them with `save ""`), and with them revocations,
    /// lockouts and spent one-time codes. Read from `CONFIG GET
    /// appendonly`, or from `INFO persistence` (`aof_enabled`) where
    /// `CONFIG` is refused, as managed services do; when neither answers
    /// there is no telling, and only a debug line is logged. Never fails
    /// the connection: a cache of sessions may be meant to forget.
    async fn check_persistence(&self) {
        let mut conn = self.conn.clone();
        let config: redis::RedisResult<Vec<String>> = redis::cmd("CONFIG")
            .arg("GET")
            .arg("appendonly")
            .query_async(&mut conn)
            .await;
        let aof = match config.as_deref() {
            Ok([_, value]) => Some(value.eq_ignore_ascii_case("yes")),
            _ => {
                let info: redis::RedisResult<String> = redis::cmd("INFO")
                    .arg("persistence")
                    .query_async(&mut conn)
                    .await;
                info.ok().and_then(|text| {
                    text.lines()
                        .find_map(|line| line.strip_prefix("aof_enabled:"))
                        .map(|v| v.trim() != "0")
                })
            }
        };
        match aof {
            Some(true) => {}
            Some(false) => tracing::warn!(
                "keyward: redis keeps no append-only file (appendonly no), so a restart loses \
                 acknowledged writes, and with them revocations, lockouts and spent one-time \
                 codes; set appendonly yes, and appendfsync always to survive a power loss too"
            ),
            None => tracing::debug!(
                "keyward: cannot read whether redis keeps an append-only file (CONFIG and INFO refused)"
            ),
        }
    }

    fn full_key(&self, key: &str) -> Result<String, StoreError> {
        check_key(key)?;
        Ok(format!("{}{key}", self.prefix))
    }

    /// Runs `op` on the connection; runs it once more if it was refused
    /// before it reached the server (a stale connection after a restart),
    /// which cannot have written anything.
    async fn with_retry<T, F, Fut>(&self, op: F) -> Result<T, StoreError>
    where
        F: Fn(ConnectionManager) -> Fut,
        Fut: std::future::Future<Output = redis::RedisResult<T>>,
    {
        match op(self.conn.clone()).await {
            Err(e) if e.is_connection_refusal() => {
                op(self.conn.clone()).await.map_err(|e| unavailable(&e))
            }
            other => other.map_err(|e| unavailable(&e)),
        }
    }

    async fn load_many_inner(&self, keys: &[&str]) -> Result<Vec<Option<Record>>, StoreError> {
        let full: Vec<String> = keys
            .iter()
            .map(|k| self.full_key(k))
            .collect::<Result<_, _>>()?;
        if full.is_empty() {
            return Ok(Vec::new());
        }
        let values: Vec<Option<Vec<u8>>> = self
            .with_retry(|mut conn| {
                let full = &full;
                async move { conn.mget(full).await }
            })
            .await?;
        if values.len() != keys.len() {
            return Err(StoreError::Corrupt(
                "MGET returned the wrong number of values",
            ));
        }
        values
            .into_iter()
            .map(|v| v.as_deref().map(decode).transpose())
            .collect()
    }

    async fn swap_inner(
        &self,
        key: &str,
        expected: Option<u64>,
        value: &[u8],
        ttl: Duration,
    ) -> Result<Swap, StoreError> {
        check_args(key, value, ttl)?;
        let full = self.full_key(key)?;
        let ttl_ms = u64::try_from(ttl.as_millis()).map_err(|_| StoreError::BadTtl)?;
        let version = match expected {
            None => initial_version()?,
            Some(want) => next_version(want)?,
        };
        let expected: Vec<u8> = expected
            .map(|v| v.to_be_bytes().to_vec())
            .unwrap_or_default();
        let mut packed = Vec::with_capacity(value.len().saturating_add(8));
        packed.extend_from_slice(&version.to_be_bytes());
        packed.extend_from_slice(value);
        let written: i64 = self
            .with_retry(|mut conn| {
                let mut call = self.cas.key(&full);
                call.arg(&expected).arg(&packed).arg(ttl_ms);
                async move { call.invoke_async(&mut conn).await }
            })
            .await?;
        match written {
            1 => Ok(Swap::Swapped { version }),
            0 => Ok(Swap::Conflict),
            _ => Err(StoreError::Corrupt("unexpected reply from the swap script")),
        }
    }
}

impl Store for RedisStore {
    fn load<'a>(&'a self, key: &'a str) -> StoreFuture<'a, Option<Record>> {
        Box::pin(async move {
            let mut records = self.load_many_inner(&[key]).await?;
            Ok(records.pop().flatten())
        })
    }

    /// One `MGET`: one round trip.
    fn load_many<'a>(&'a self, keys: &'a [&'a str]) -> StoreFuture<'a, super::Snapshot> {
        Box::pin(async move {
            Ok(super::Snapshot {
                records: self.load_many_inner(keys).await?,
                now_ms: None,
            })
        })
    }

    fn commit<'a>(&'a self, _ops: &'a [super::Op<'a>]) -> StoreFuture<'a, super::Commit> {
        Box::pin(async move { Err(StoreError::Unavailable("TODO commit".into())) })
    }

    fn swap<'a>(
        &'a self,
        key: &'a str,
        expected: Option<u64>,
        value: &'a [u8],
        ttl: Duration,
    ) -> StoreFuture<'a, Swap> {
        Box::pin(self.swap_inner(key, expected, value, ttl))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_parameter_is_split_off_the_url() {
        assert_eq!(
            split_prefix("redis://h:1/0?prefix=app:"),
            ("redis://h:1/0".to_owned(), Some("app:".to_owned()))
        );
        assert_eq!(
            split_prefix("redis://h/0?protocol=resp3&prefix=a.b:&db=2"),
            (
                "redis://h/0?protocol=resp3&db=2".to_owned(),
                Some("a.b:".to_owned())
            )
        );
        assert_eq!(split_prefix("redis://h"), ("redis://h".to_owned(), None));
        assert!(check_prefix("ok.prefix-1:").is_ok());
        assert!(check_prefix("").is_ok());
        assert!(check_prefix("bad prefix").is_err());
        assert!(check_prefix("{tag}").is_err());
        assert!(check_prefix(&"p".repeat(MAX_PREFIX_LEN + 1)).is_err());
    }

    #[test]
    fn packed_records_decode_or_fail_closed() {
        let mut packed = 42u64.to_be_bytes().to_vec();
        packed.extend_from_slice(b"value");
        let r = decode(&packed).expect("decodes");
        assert_eq!((r.version, r.value.as_slice()), (42, b"value".as_slice()));
        assert_eq!(decode(&7u64.to_be_bytes()).expect("empty").value, b"");
        assert!(matches!(decode(b"short"), Err(StoreError::Corrupt(_))));
    }
}
