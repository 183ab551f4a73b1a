//! The shared in-memory store: Redis (or a Redis-compatible server), for any
//! number of replicas.
//!
//! A record is one string key, `PREFIX + key`, holding the version as 8
//! big-endian bytes followed by the value, with the TTL set on the key
//! (`SET … PX`). Version and value live in one string, so a `GET` or an
//! `MGET` always reads a consistent pair, and expiry is Redis's own.
//!
//! Every change is one Lua script, which Redis runs atomically: no other
//! command runs between its reads and its writes. A commit is
//! [`COMMIT_SCRIPT`]: it reads every record of the commit, returns the
//! position of the first that is not at its expected version, and only
//! when all are, makes the writes (`SET … PX`) and deletes (`DEL`); a
//! check writes nothing. A swap is the smaller [`CAS_SCRIPT`]. Each script
//! is loaded once and called by its SHA1 (`EVALSHA`, falling back to
//! `SCRIPT LOAD` after a server restart): one round trip.
//!
//! Time is the server's: expiry is Redis's, and `load_many` sends `TIME`
//! with its `MGET` in one pipeline, so the snapshot carries the server's
//! clock from the same round trip, also when no key is asked for.
//!
//! Redis Cluster: a script may only touch keys of one hash slot, so all the
//! keys of one commit would have to hash to the same slot, which Cluster
//! arranges only through a hash tag (`{…}`) in each key. keyward's keys
//! and prefix carry none (braces are refused in both), so this store
//! serves a single Redis server, with or without replicas of it, not a
//! Cluster.

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use super::{
    Action, Commit, Op, Record, Snapshot, Store, StoreError, StoreFuture, Swap, check_args,
    check_key, check_ops, initial_version, next_version,
};

/// The compare-and-swap.
///
/// `KEYS[1]`: the prefixed key. `ARGV[1]`: the expected version as 8
/// big-endian bytes, or the empty string for "create if absent".
/// `ARGV[2]`: the new version's 8 bytes followed by the value. `ARGV[3]`:
/// the TTL in milliseconds. Returns 1 when written, 0 on a conflict.
const CAS_SCRIPT: &str = r"
local cur = redis.call('GET', KEYS[1])
if ARGV[1] == '' then
  if cur then return 0 end
elseif (not cur) or string.sub(cur, 1, 8) ~= ARGV[1] then
  return 0
end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return 1
";

/// The commit.
///
/// `KEYS[i]`: the prefixed key of operation `i`, and four arguments per
/// operation: `ARGV[4i-3]`, its action, `w` (write), `d` (delete) or `c`
/// (check); `ARGV[4i-2]`, the expected version as 8 big-endian bytes, or
/// the empty string for "no live record"; for a write, `ARGV[4i-1]`, the
/// new version's 8 bytes followed by the value, and `ARGV[4i]`, the TTL in
/// milliseconds (both empty otherwise). Every record is checked before
/// anything is written. Returns 0 when every write has been made, or the
/// 1-based position of the first operation whose record is not at its
/// expected version, with nothing written.
const COMMIT_SCRIPT: &str = r"
if #ARGV ~= 4 * #KEYS then
  return redis.error_reply('ERR keyward commit: four arguments per key')
end
for i = 1, #KEYS do
  local cur = redis.call('GET', KEYS[i])
  local want = ARGV[4 * i - 2]
  if want == '' then
    if cur then return i end
  elseif (not cur) or string.sub(cur, 1, 8) ~= want then
    return i
  end
end
for i = 1, #KEYS do
  local action = ARGV[4 * i - 3]
  if action == 'w' then
    redis.call('SET', KEYS[i], ARGV[4 * i - 1], 'PX', ARGV[4 * i])
  elseif action == 'd' then
    redis.call('DEL', KEYS[i])
  end
end
return 0
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
    commit: redis::Script,
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

/// Milliseconds since the Unix epoch from a `TIME` reply (seconds and
/// microseconds).
fn clock_ms((secs, micros): (u64, u64)) -> Result<u64, StoreError> {
    if micros >= 1_000_000 {
        return Err(StoreError::Corrupt("TIME reported too many microseconds"));
    }
    secs.checked_mul(1_000)
        .and_then(|ms| ms.checked_add(micros / 1_000))
        .ok_or(StoreError::Corrupt("TIME out of range"))
}

/// The keys and arguments of one call of [`COMMIT_SCRIPT`], and the
/// versions the commit reports if it succeeds.
type CommitCall = (Vec<String>, Vec<Vec<u8>>, Vec<Option<u64>>);

/// The call of [`COMMIT_SCRIPT`] for `ops` (already checked) under
/// `prefix`. The new versions are drawn here: a fresh random one for a
/// record created, the next one for a record written over.
fn commit_call(prefix: &str, ops: &[Op<'_>]) -> Result<CommitCall, StoreError> {
    let mut keys = Vec::with_capacity(ops.len());
    let mut args = Vec::with_capacity(ops.len().saturating_mul(4));
    let mut versions = Vec::with_capacity(ops.len());
    for op in ops {
        keys.push(format!("{prefix}{}", op.key));
        let expected = op
            .expected
            .map(|v| v.to_be_bytes().to_vec())
            .unwrap_or_default();
        let (action, packed, ttl, version) = match op.action {
            Action::Write { value, ttl } => {
                let version = match op.expected {
                    None => initial_version()?,
                    Some(v) => next_version(v)?,
                };
                let ttl_ms = u64::try_from(ttl.as_millis()).map_err(|_| StoreError::BadTtl)?;
                let mut packed = Vec::with_capacity(value.len().saturating_add(8));
                packed.extend_from_slice(&version.to_be_bytes());
                packed.extend_from_slice(value);
                (b"w", packed, ttl_ms.to_string().into_bytes(), Some(version))
            }
            Action::Delete => (b"d", Vec::new(), Vec::new(), None),
            Action::Check => (b"c", Vec::new(), Vec::new(), op.expected),
        };
        args.extend([action.to_vec(), expected, packed, ttl]);
        versions.push(version);
    }
    Ok((keys, args, versions))
}

/// The outcome of a commit from [`COMMIT_SCRIPT`]'s reply: 0, committed at
/// `versions`; `1..=n`, a conflict at that (1-based) position.
fn commit_outcome(reply: i64, versions: Vec<Option<u64>>) -> Result<Commit, StoreError> {
    if reply == 0 {
        return Ok(Commit::Committed { versions });
    }
    usize::try_from(reply)
        .ok()
        .and_then(|i| i.checked_sub(1))
        .filter(|index| *index < versions.len())
        .map(|index| Commit::Conflict { index })
        .ok_or(StoreError::Corrupt(
            "unexpected reply from the commit script",
        ))
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
            commit: redis::Script::new(COMMIT_SCRIPT),
        };
        if !options.dangerous_allow_eviction {
            store.check_eviction().await?;
        }
        store.check_persistence().await;
        // Load the scripts now, so the first swap and commit are one round
        // trip each.
        for script in [&store.cas, &store.commit] {
            script
                .load_async(&mut store.conn.clone())
                .await
                .map_err(|e| unavailable(&e))?;
        }
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

    /// Runs a read on the connection; runs it once more if the connection
    /// was refused or dropped (a stale connection after a server restart,
    /// which the connection manager replaces). A read writes nothing, so
    /// repeating it is safe whatever happened to the first attempt.
    async fn read_with_retry<T, F, Fut>(&self, op: F) -> Result<T, StoreError>
    where
        F: Fn(ConnectionManager) -> Fut,
        Fut: std::future::Future<Output = redis::RedisResult<T>>,
    {
        match op(self.conn.clone()).await {
            Err(e) if e.is_connection_refusal() || e.is_connection_dropped() => {
                op(self.conn.clone()).await.map_err(|e| unavailable(&e))
            }
            other => other.map_err(|e| unavailable(&e)),
        }
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

    /// One round trip: `TIME` and an `MGET` of the keys in one pipeline
    /// (`TIME` alone for no keys).
    async fn load_many_inner(&self, keys: &[&str]) -> Result<Snapshot, StoreError> {
        let full: Vec<String> = keys
            .iter()
            .map(|k| self.full_key(k))
            .collect::<Result<_, _>>()?;
        let (time, values): ((u64, u64), Vec<Option<Vec<u8>>>) = if full.is_empty() {
            let time = self
                .read_with_retry(|mut conn| async move {
                    redis::cmd("TIME").query_async(&mut conn).await
                })
                .await?;
            (time, Vec::new())
        } else {
            self.read_with_retry(|mut conn| {
                let mut pipe = redis::pipe();
                pipe.cmd("TIME").cmd("MGET").arg(&full);
                async move { pipe.query_async(&mut conn).await }
            })
            .await?
        };
        if values.len() != keys.len() {
            return Err(StoreError::Corrupt(
                "MGET returned the wrong number of values",
            ));
        }
        let records = values
            .into_iter()
            .map(|v| v.as_deref().map(decode).transpose())
            .collect::<Result<_, _>>()?;
        Ok(Snapshot {
            records,
            now_ms: Some(clock_ms(time)?),
        })
    }

    /// One `EVALSHA` of [`COMMIT_SCRIPT`].
    async fn commit_inner(&self, ops: &[Op<'_>]) -> Result<Commit, StoreError> {
        check_ops(ops)?;
        let (keys, args, versions) = commit_call(&self.prefix, ops)?;
        let reply: i64 = self
            .with_retry(|mut conn| {
                let mut call = self.commit.prepare_invoke();
                for key in &keys {
                    call.key(key);
                }
                for arg in &args {
                    call.arg(arg);
                }
                async move { call.invoke_async(&mut conn).await }
            })
            .await?;
        commit_outcome(reply, versions)
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
    /// One `GET`.
    fn load<'a>(&'a self, key: &'a str) -> StoreFuture<'a, Option<Record>> {
        Box::pin(async move {
            let full = self.full_key(key)?;
            let value: Option<Vec<u8>> = self
                .read_with_retry(|mut conn| {
                    let full = &full;
                    async move { redis::cmd("GET").arg(full).query_async(&mut conn).await }
                })
                .await?;
            value.as_deref().map(decode).transpose()
        })
    }

    /// `TIME` and one `MGET`, pipelined: one round trip.
    fn load_many<'a>(&'a self, keys: &'a [&'a str]) -> StoreFuture<'a, Snapshot> {
        Box::pin(self.load_many_inner(keys))
    }

    /// One script: one round trip.
    fn commit<'a>(&'a self, ops: &'a [Op<'a>]) -> StoreFuture<'a, Commit> {
        Box::pin(self.commit_inner(ops))
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
#[allow(
    clippy::unwrap_used,
    clippy::arithmetic_side_effects,
    reason = "tests: a failed check panics"
)]
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

    #[test]
    fn time_replies_become_milliseconds() {
        assert_eq!(
            clock_ms((1_700_000_000, 123_456)).unwrap(),
            1_700_000_000_123
        );
        assert_eq!(clock_ms((0, 999_999)).unwrap(), 999);
        assert!(matches!(
            clock_ms((1, 1_000_000)),
            Err(StoreError::Corrupt(_))
        ));
        assert!(matches!(
            clock_ms((u64::MAX, 0)),
            Err(StoreError::Corrupt(_))
        ));
    }

    #[test]
    fn commit_replies_decode_or_fail_closed() {
        let versions = vec![Some(7), None, Some(9)];
        assert_eq!(
            commit_outcome(0, versions.clone()).unwrap(),
            Commit::Committed {
                versions: versions.clone()
            }
        );
        assert_eq!(
            commit_outcome(1, versions.clone()).unwrap(),
            Commit::Conflict { index: 0 }
        );
        assert_eq!(
            commit_outcome(3, versions.clone()).unwrap(),
            Commit::Conflict { index: 2 }
        );
        for bad in [4, -1, i64::MIN, i64::MAX] {
            assert!(
                matches!(
                    commit_outcome(bad, versions.clone()),
                    Err(StoreError::Corrupt(_))
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn commit_arguments_follow_the_script_layout() {
        let ttl = Duration::from_millis(1_500);
        let ops = [
            Op::write("a", None, b"new", ttl),
            Op::write("b", Some(41), b"", ttl),
            Op::delete("c", 5),
            Op::check("d", None),
            Op::check("e", Some(6)),
        ];
        let (keys, args, versions) = commit_call("p:", &ops).unwrap();
        assert_eq!(keys, ["p:a", "p:b", "p:c", "p:d", "p:e"]);
        assert_eq!(args.len(), 4 * ops.len());
        let created = versions[0].unwrap();
        assert_eq!(versions[1..], [Some(42), None, None, Some(6)]);
        let mut packed_a = created.to_be_bytes().to_vec();
        packed_a.extend_from_slice(b"new");
        let b8 = |v: u64| v.to_be_bytes().to_vec();
        let expected: Vec<Vec<u8>> = vec![
            b"w".to_vec(),
            Vec::new(),
            packed_a,
            b"1500".to_vec(),
            b"w".to_vec(),
            b8(41),
            b8(42),
            b"1500".to_vec(),
            b"d".to_vec(),
            b8(5),
            Vec::new(),
            Vec::new(),
            b"c".to_vec(),
            Vec::new(),
            Vec::new(),
            Vec::new(),
            b"c".to_vec(),
            b8(6),
            Vec::new(),
            Vec::new(),
        ];
        assert_eq!(args, expected);
    }

    /// `load_many` reads the server's clock with the records, and alone
    /// when no key is asked for; both readings are real and in order.
    #[tokio::test]
    async fn load_many_reports_the_server_clock() {
        let url =
            std::env::var("KEYWARD_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
        let client = redis::Client::open(url.as_str()).unwrap();
        let addr = client.get_connection_info().addr().to_string();
        let reachable = std::net::TcpStream::connect(addr).is_ok();
        if !reachable {
            let required = std::env::var("KEYWARD_REQUIRE_SERVICES").is_ok_and(|v| v == "1");
            assert!(!required, "redis unreachable");
            println!("SKIPPED: redis unreachable");
            return;
        }
        let prefix = format!("redis-test.{}:", initial_version().unwrap());
        let store = RedisStore::connect_with(&url, RedisOptions::default().prefix(prefix))
            .await
            .unwrap();
        let alone = store.load_many(&[]).await.unwrap();
        assert!(alone.records.is_empty());
        let with = store.load_many(&["absent"]).await.unwrap();
        assert_eq!(with.records, [None]);
        let (alone, with) = (alone.now_ms.unwrap(), with.now_ms.unwrap());
        assert!(alone <= with && alone > 1_600_000_000_000, "{alone} {with}");
    }
}
