//! The state store: one primitive, a versioned key-value record with a TTL
//! and compare-and-swap.
//!
//! Every stateful feature in keyward is a pure state machine over a record
//! (load, decide, swap). The policy is written once, in Rust; a backend only
//! has to make [`Store::swap`] atomic, and the conformance suite
//! (`keyward::store::conformance::run`, feature `test-util`) proves that
//! it is. On a [`Swap::Conflict`] the service reloads and decides again.
//!
//! Versions are opaque. A record created with `expected = None` starts at an
//! unpredictable version, so a record that expires and is created again
//! never matches a stale writer's expectation (no ABA).
//!
//! Backends: [`MemoryStore`] (one process), `SqliteStore` (one machine,
//! several processes; feature `sqlite`), `PgStore` (PostgreSQL, any number
//! of replicas; feature `postgres`) and `RedisStore` (Redis, any number of
//! replicas; feature `redis`).

// For backend tests, not the API: the suite panics on a failed check.
#[cfg(any(feature = "test-util", all(test, feature = "tokio")))]
pub mod conformance;
mod memory;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "redis")]
mod redis;
#[cfg(feature = "sqlite")]
mod sqlite;
#[cfg(any(test, feature = "test-util"))]
pub mod testing;
mod transact;

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

pub use memory::MemoryStore;
#[cfg(feature = "postgres")]
pub use postgres::{PgOptions, PgStore};
#[cfg(feature = "redis")]
pub use redis::{MAX_PREFIX_LEN, RedisOptions, RedisStore};
#[cfg(feature = "sqlite")]
pub use sqlite::SqliteStore;

pub use crate::error::StoreError;
pub use transact::DEFAULT_MAX_RETRIES;
pub(crate) use transact::{
    Decision, Records, Stored, decode, encode, json_stored, store_seconds, transact, transact_ms,
};

/// Longest key: keys are namespaced ids, not data.
pub const MAX_KEY_LEN: usize = 200;
/// Largest value a backend must accept.
pub const MAX_VALUE_LEN: usize = 64 * 1024;
/// Longest TTL a backend must accept: 100 years (36,525 days). Records
/// that must outlive any lifetime (an API key without an expiry, a lock
/// only an operator lifts) are written with it.
pub const MAX_TTL: Duration = Duration::from_secs(36_525 * 86_400);

/// A boxed future, so that [`Store`] can be used as `dyn Store`.
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// A stored record: its version and bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct Record {
    /// Opaque version; pass it back to [`Store::swap`].
    pub version: u64,
    /// The value.
    pub value: Vec<u8>,
}

impl fmt::Debug for Record {
    // Values may hold state that is not for logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Record")
            .field("version", &self.version)
            .field("len", &self.value.len())
            .finish()
    }
}

/// The outcome of a compare-and-swap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum Swap {
    /// Written; the record is now at this version.
    Swapped {
        /// The new version.
        version: u64,
    },
    /// The record was not at the expected version (or, for a create, it
    /// exists). Nothing was written.
    Conflict,
}

/// The answer of [`Store::load_many`]: the records, and the store's clock
/// at the moment it read them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// The live record at each requested key, in the caller's order.
    pub records: Vec<Option<Record>>,
    /// The store's own clock, in milliseconds since the Unix epoch, when
    /// the store keeps time for all its clients: `now()` on PostgreSQL,
    /// `TIME` on Redis. `None` for the stores whose clients share one host
    /// (memory, SQLite): their clock is that host's, which a caller reads
    /// through its [`Clock`](crate::clock::Clock).
    ///
    /// Every decision over the records uses this time, so that replicas
    /// whose clocks disagree still agree on a lock, a grace window or a
    /// lifetime.
    pub now_ms: Option<u64>,
}

/// What one operation of a [`Store::commit`] does to its record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action<'a> {
    /// Writes this value with a fresh TTL.
    Write {
        /// The new value.
        value: &'a [u8],
        /// Its time to live, from the commit.
        ttl: Duration,
    },
    /// Deletes the record.
    Delete,
    /// Writes nothing: the commit only requires the record to be at the
    /// expected version (a guard).
    Check,
}

/// One operation of a [`Store::commit`]: a key, the version the record must
/// be at (`None`: no live record), and what to do.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Op<'a> {
    /// The record's key.
    pub key: &'a str,
    /// The version the record must be at; `None`: it must be absent.
    pub expected: Option<u64>,
    /// What the commit does to it.
    pub action: Action<'a>,
}

impl fmt::Debug for Op<'_> {
    // Values may hold state that is not for logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let action = match self.action {
            Action::Write { value, ttl } => format!("Write({} bytes, {ttl:?})", value.len()),
            Action::Delete => "Delete".to_owned(),
            Action::Check => "Check".to_owned(),
        };
        f.debug_struct("Op")
            .field("key", &self.key)
            .field("expected", &self.expected)
            .field("action", &action)
            .finish()
    }
}

impl<'a> Op<'a> {
    /// Writes `value` if the record is at `expected`.
    #[must_use]
    pub fn write(key: &'a str, expected: Option<u64>, value: &'a [u8], ttl: Duration) -> Self {
        Self {
            key,
            expected,
            action: Action::Write { value, ttl },
        }
    }

    /// Deletes the record if it is at `expected`.
    #[must_use]
    pub fn delete(key: &'a str, expected: u64) -> Self {
        Self {
            key,
            expected: Some(expected),
            action: Action::Delete,
        }
    }

    /// Requires the record to be at `expected`, and writes nothing.
    #[must_use]
    pub fn check(key: &'a str, expected: Option<u64>) -> Self {
        Self {
            key,
            expected,
            action: Action::Check,
        }
    }
}

/// Most operations in one [`Store::commit`].
pub const MAX_COMMIT_OPS: usize = 32;

/// The outcome of a [`Store::commit`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub enum Commit {
    /// Every operation held and took effect.
    Committed {
        /// Per operation, in order: the record's version now (`None` for a
        /// delete, or for a check of an absent record).
        versions: Vec<Option<u64>>,
    },
    /// The operation at this index found its record at another version.
    /// Nothing was written.
    Conflict {
        /// The position of the conflicting operation in the commit.
        index: usize,
    },
}

/// A versioned key-value store with TTL and compare-and-swap.
///
/// Implementations must make [`commit`](Store::commit) (and so `swap`)
/// atomic across every client of the same backing store (threads,
/// processes, machines), and must never return an expired record.
pub trait Store: Send + Sync + fmt::Debug {
    /// The live record at `key`, if any.
    fn load<'a>(&'a self, key: &'a str) -> StoreFuture<'a, Option<Record>>;

    /// The live records at `keys`, in order, and the store's clock.
    /// Backends override this to use one round trip; the default loads one
    /// by one and reports no clock of its own.
    fn load_many<'a>(&'a self, keys: &'a [&'a str]) -> StoreFuture<'a, Snapshot> {
        Box::pin(async move {
            let mut records = Vec::with_capacity(keys.len());
            for key in keys {
                records.push(self.load(key).await?);
            }
            Ok(Snapshot {
                records,
                now_ms: None,
            })
        })
    }

    /// The live record at `key` and the store's clock (as
    /// [`Snapshot::now_ms`]): [`load_many`](Store::load_many) of one key,
    /// for a caller that reads one record. Stores may override it to skip
    /// the vector; the default asks `load_many`.
    fn load_one<'a>(&'a self, key: &'a str) -> StoreFuture<'a, (Option<Record>, Option<u64>)> {
        Box::pin(async move {
            let snapshot = self.load_many(std::slice::from_ref(&key)).await?;
            let now_ms = snapshot.now_ms;
            let mut records = snapshot.records.into_iter();
            match (records.next(), records.next()) {
                (Some(record), None) => Ok((record, now_ms)),
                _ => Err(StoreError::Corrupt(
                    "load_many returned another number of records",
                )),
            }
        })
    }

    /// Applies every operation, or none: if any record is not at its
    /// expected version, nothing is written and the answer names that
    /// operation. One round trip on every built-in backend.
    ///
    /// # Errors
    /// [`StoreError::BadCommit`] for no operations, more than
    /// [`MAX_COMMIT_OPS`], or a key named twice; the errors of
    /// [`swap`](Store::swap) for a bad key, value or TTL; backend failures.
    fn commit<'a>(&'a self, ops: &'a [Op<'a>]) -> StoreFuture<'a, Commit>;

    /// Writes `value` with a fresh `ttl` if the record is at `expected`
    /// (`None`: only if there is no live record): a commit of one write.
    fn swap<'a>(
        &'a self,
        key: &'a str,
        expected: Option<u64>,
        value: &'a [u8],
        ttl: Duration,
    ) -> StoreFuture<'a, Swap> {
        Box::pin(async move {
            let ops = [Op::write(key, expected, value, ttl)];
            match self.commit(&ops).await? {
                Commit::Committed { versions } => match versions.first() {
                    Some(Some(version)) => Ok(Swap::Swapped { version: *version }),
                    _ => Err(StoreError::Corrupt(
                        "a commit of one write reported no version",
                    )),
                },
                Commit::Conflict { .. } => Ok(Swap::Conflict),
            }
        })
    }
}

/// Checks a commit's operations as every backend must: some, not too many,
/// distinct keys, and valid keys, values and TTLs.
pub(crate) fn check_ops(ops: &[Op<'_>]) -> Result<(), StoreError> {
    if ops.is_empty() {
        return Err(StoreError::BadCommit("no operations"));
    }
    if ops.len() > MAX_COMMIT_OPS {
        return Err(StoreError::BadCommit("too many operations"));
    }
    for (i, op) in ops.iter().enumerate() {
        match op.action {
            Action::Write { value, ttl } => check_args(op.key, value, ttl)?,
            Action::Delete | Action::Check => check_key(op.key)?,
        }
        if ops.iter().take(i).any(|o| o.key == op.key) {
            return Err(StoreError::BadCommit("a key named twice"));
        }
    }
    Ok(())
}

/// Opens the store a URL names: the one dispatch from a URL to a backend,
/// for applications that take their store from configuration.
///
/// - `memory:`: a new [`MemoryStore`] (this process only);
/// - `sqlite:PATH` or `sqlite://PATH`: [`SqliteStore::open`] (feature
///   `sqlite`);
/// - `postgres://…` or `postgresql://…`: `PgStore::connect` (feature
///   `postgres`);
/// - `redis://…` (`?prefix=` too): `RedisStore::connect` (feature `redis`).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), keyward::StoreError> {
/// let store = keyward::store::open("memory:").await?;
/// assert!(keyward::store::open("mysql://db/app").await.is_err());
/// # let _ = store; Ok(()) }
/// ```
///
/// # Errors
/// [`StoreError::BadUrl`] for an unknown scheme, a backend whose feature
/// is off, or `sqlite:` without a path; otherwise what the backend's
/// constructor returns. No message repeats the URL, which may hold a
/// password.
pub async fn open(url: &str) -> Result<std::sync::Arc<dyn Store>, StoreError> {
    let (scheme, rest) = url.split_once(':').ok_or_else(|| {
        StoreError::BadUrl("no scheme; use memory:, sqlite:PATH, postgres://… or redis://…".into())
    })?;
    let scheme = scheme.to_ascii_lowercase();
    match scheme.as_str() {
        "memory" if rest.is_empty() => Ok(std::sync::Arc::new(MemoryStore::new())),
        "sqlite" => {
            let path = rest.strip_prefix("//").unwrap_or(rest);
            if path.is_empty() {
                return Err(StoreError::BadUrl(
                    "sqlite: needs a file path, as in sqlite:keyward.db".into(),
                ));
            }
            #[cfg(feature = "sqlite")]
            return Ok(std::sync::Arc::new(SqliteStore::open(path).await?));
            #[cfg(not(feature = "sqlite"))]
            return Err(needs_feature(&scheme, "sqlite"));
        }
        "postgres" | "postgresql" => {
            #[cfg(feature = "postgres")]
            return Ok(std::sync::Arc::new(PgStore::connect(url).await?));
            #[cfg(not(feature = "postgres"))]
            return Err(needs_feature(&scheme, "postgres"));
        }
        "redis" | "rediss" => {
            #[cfg(feature = "redis")]
            return Ok(std::sync::Arc::new(RedisStore::connect(url).await?));
            #[cfg(not(feature = "redis"))]
            return Err(needs_feature(&scheme, "redis"));
        }
        _ => Err(StoreError::BadUrl(format!(
            "scheme {scheme:?} is not supported; use memory:, sqlite:PATH, postgres://… or redis://…"
        ))),
    }
}

/// The refusal of a URL whose backend this build leaves out.
#[cfg(not(all(feature = "sqlite", feature = "postgres", feature = "redis")))]
fn needs_feature(scheme: &str, feature: &str) -> StoreError {
    StoreError::BadUrl(format!(
        "{scheme}: this build of keyward leaves out the {feature} backend (enable the \"{feature}\" feature, e.g. --features {feature})"
    ))
}

/// Checks the arguments every backend must refuse.
pub(crate) fn check_args(key: &str, value: &[u8], ttl: Duration) -> Result<(), StoreError> {
    check_key(key)?;
    if value.len() > MAX_VALUE_LEN {
        return Err(StoreError::ValueTooLarge);
    }
    if ttl.is_zero() || ttl > MAX_TTL || ttl.as_millis() == 0 {
        return Err(StoreError::BadTtl);
    }
    Ok(())
}

pub(crate) fn check_key(key: &str) -> Result<(), StoreError> {
    let ok = !key.is_empty()
        && key.len() <= MAX_KEY_LEN
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b':' | b'_' | b'.' | b'-'));
    if ok { Ok(()) } else { Err(StoreError::BadKey) }
}

/// The version of a newly created record: random, so that a recreated key
/// never matches a stale expectation. Kept below 2^62 so that it fits the
/// signed 64-bit integers of SQL backends with room to count up.
pub(crate) fn initial_version() -> Result<u64, StoreError> {
    let mut b = [0u8; 8];
    crate::random::fill_random(&mut b).map_err(|_| StoreError::Unavailable("rng".into()))?;
    Ok((u64::from_le_bytes(b) >> 2).max(1))
}

/// The version after `v`.
pub(crate) fn next_version(v: u64) -> Result<u64, StoreError> {
    v.checked_add(1)
        .filter(|n| *n < (1 << 63))
        .ok_or(StoreError::Corrupt("version overflow"))
}

/// A record read from a SQL row, whose version column is a signed 64-bit
/// integer.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) fn sql_record(version: i64, value: Vec<u8>) -> Result<Record, StoreError> {
    let version = u64::try_from(version).map_err(|_| StoreError::Corrupt("negative version"))?;
    Ok(Record { version, value })
}

/// `load_many`'s answer from the rows a query found, in any order: one slot
/// per requested key, in the caller's order (a key asked twice is answered
/// twice), `None` where no row came back.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) fn in_key_order(keys: &[&str], found: Vec<(String, Record)>) -> Vec<Option<Record>> {
    let mut out: Vec<Option<Record>> = vec![None; keys.len()];
    for (key, record) in found {
        for (slot, k) in out.iter_mut().zip(keys) {
            if *k == key {
                *slot = Some(record.clone());
            }
        }
    }
    out
}

/// Upkeep after every so many writes (the SQL stores' purge of expired
/// rows), one run at a time, on a task of its own. The swap that triggers a
/// run has already been answered when the run starts, so a swap's result is
/// the swap's alone: a failed purge is logged and dropped, never returned
/// for a write that was made, and the next trigger tries again.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) struct BackgroundPurge {
    every: u32,
    writes: std::sync::atomic::AtomicU32,
    running: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

#[cfg(any(feature = "sqlite", feature = "postgres"))]
impl BackgroundPurge {
    /// A purge every `every` writes.
    pub(crate) fn new(every: u32) -> Self {
        Self {
            every: every.max(1),
            writes: std::sync::atomic::AtomicU32::new(0),
            running: std::sync::Arc::default(),
        }
    }

    /// Counts one write. On every `every`th, unless a purge is still
    /// running, spawns `purge()` on the current tokio runtime (outside one,
    /// it is skipped).
    pub(crate) fn after_write<F, Fut>(&self, purge: F)
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<u64, StoreError>> + Send + 'static,
    {
        use std::sync::atomic::Ordering;
        let writes = self.writes.fetch_add(1, Ordering::Relaxed).wrapping_add(1);
        if !writes.is_multiple_of(self.every) || self.running.swap(true, Ordering::AcqRel) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            self.running.store(false, Ordering::Release);
            return;
        };
        let (run, running) = (purge(), std::sync::Arc::clone(&self.running));
        runtime.spawn(async move {
            if let Err(e) = run.await {
                tracing::warn!(error = %e, "keyward: purging expired store records failed");
            }
            running.store(false, Ordering::Release);
        });
    }
}

#[cfg(test)]
#[allow(clippy::panic, reason = "tests: a failed check panics")]
mod tests {
    use super::{MAX_VALUE_LEN, StoreError, Swap, open};
    use std::time::Duration;

    /// The URL dispatch: each refusal is a `BadUrl` that never repeats the
    /// URL; `memory:` and `sqlite:PATH` open working stores.
    #[cfg(feature = "sqlite")]
    #[tokio::test]
    async fn open_dispatches_on_the_scheme() {
        for url in [
            "mysql://u:s3cret@db/app",
            "sqlite:",
            "sqlite://",
            "memory:s3cret",
            "s3cret",
        ] {
            match open(url).await {
                Err(StoreError::BadUrl(msg)) => {
                    assert!(!msg.contains("s3cret") && !msg.contains('\n'), "{msg}");
                }
                other => panic!("{url}: {other:?}"),
            }
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("k.db");
        for url in ["memory:".to_owned(), format!("sqlite:{}", path.display())] {
            let store = open(&url).await.expect("opens");
            let swap = store
                .swap("k", None, b"v", Duration::from_secs(60))
                .await
                .expect("swap");
            assert!(matches!(swap, Swap::Swapped { .. }), "{url}");
        }
        assert!(path.exists(), "sqlite:PATH opened that file");
    }

    /// `StoreError` lives in the bottom layer, which cannot name
    /// `MAX_VALUE_LEN`: its message spells the number, kept in step here.
    #[test]
    fn the_value_limit_message_names_the_limit() {
        let msg = StoreError::ValueTooLarge.to_string();
        assert!(msg.contains(&format!(" {MAX_VALUE_LEN} ")), "{msg}");
    }
}
