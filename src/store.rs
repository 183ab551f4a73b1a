//! The state store: one primitive, a versioned key-value record with a TTL
//! and compare-and-swap.
//!
//! Every stateful feature in keyward is a pure state machine over a record
//! (load, decide, swap). The policy is written once, in Rust; a backend only
//! has to make [`Store::swap`] atomic, and [`conformance::run`] proves that
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

mod memory;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "redis")]
mod redis;
#[cfg(feature = "sqlite")]
mod sqlite;

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

pub use memory::MemoryStore;
#[cfg(feature = "postgres")]
pub use postgres::{PgOptions, PgStore};
#[cfg(feature = "redis")]
pub use redis::{CAS_SCRIPT, MAX_PREFIX_LEN, RedisOptions, RedisStore};
#[cfg(feature = "sqlite")]
pub use sqlite::SqliteStore;

pub use crate::error::StoreError;

/// Longest key: keys are namespaced ids, not data.
pub const MAX_KEY_LEN: usize = 200;
/// Largest value a backend must accept.
pub const MAX_VALUE_LEN: usize = 64 * 1024;
/// Longest TTL a backend must accept: a little over a year.
pub const MAX_TTL: Duration = Duration::from_secs(400 * 86_400);

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

/// A versioned key-value store with TTL and compare-and-swap.
///
/// Implementations must make `swap` atomic across every client of the same
/// backing store (threads, processes, machines), and must never return an
/// expired record.
pub trait Store: Send + Sync + fmt::Debug {
    /// The live record at `key`, if any.
    fn load<'a>(&'a self, key: &'a str) -> StoreFuture<'a, Option<Record>>;

    /// The live records at `keys`, in order. Backends override this to use
    /// one round trip; the default loads one by one.
    fn load_many<'a>(&'a self, keys: &'a [&'a str]) -> StoreFuture<'a, Vec<Option<Record>>> {
        Box::pin(async move {
            let mut out = Vec::with_capacity(keys.len());
            for key in keys {
                out.push(self.load(key).await?);
            }
            Ok(out)
        })
    }

    /// Writes `value` with a fresh `ttl` if the record is at `expected`
    /// (`None`: only if there is no live record).
    fn swap<'a>(
        &'a self,
        key: &'a str,
        expected: Option<u64>,
        value: &'a [u8],
        ttl: Duration,
    ) -> StoreFuture<'a, Swap>;
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

/// The conformance suite every backend runs against itself.
///
/// ```no_run
/// # async fn demo() {
/// let store = std::sync::Arc::new(keyward::store::MemoryStore::new());
/// keyward::store::conformance::run(store).await;
/// # }
/// ```
#[cfg(feature = "tokio")]
pub mod conformance {
    #![allow(
        clippy::panic,
        clippy::unwrap_used,
        clippy::expect_used,
        reason = "a test suite: a failed check panics, as assert! does"
    )]

    use std::sync::Arc;
    use std::time::Duration;

    use super::{MAX_KEY_LEN, MAX_VALUE_LEN, Store, StoreError, Swap};

    const TTL: Duration = Duration::from_secs(60);

    /// Runs every check; panics with a description on the first failure.
    /// Keys are namespaced with a random prefix, so it may run against a
    /// shared server.
    pub async fn run(store: Arc<dyn Store>) {
        let ns = format!("conformance.{}", super::initial_version().expect("rng"));
        create_if_absent(&*store, &ns).await;
        swap_at_version(&*store, &ns).await;
        conflict_at_stale_version(&*store, &ns).await;
        ttl_expiry(&*store, &ns).await;
        large_values(&*store, &ns).await;
        bad_keys(&*store).await;
        load_many(&*store, &ns).await;
        concurrency(Arc::clone(&store), &ns, 16, 50).await;
        writes_are_reported_as_made(&*store, &ns).await;
    }

    fn swapped(s: Swap) -> u64 {
        match s {
            Swap::Swapped { version } => version,
            Swap::Conflict => panic!("expected a swap, got a conflict"),
        }
    }

    /// Create-if-absent succeeds once; a second create conflicts.
    pub async fn create_if_absent(store: &dyn Store, ns: &str) {
        let key = format!("{ns}.create");
        assert!(
            store.load(&key).await.expect("store call failed").is_none(),
            "a fresh key is absent"
        );
        let v = swapped(
            store
                .swap(&key, None, b"one", TTL)
                .await
                .expect("store call failed"),
        );
        let r = store
            .load(&key)
            .await
            .expect("store call failed")
            .expect("created");
        assert_eq!((r.version, r.value.as_slice()), (v, b"one".as_slice()));
        assert_eq!(
            store
                .swap(&key, None, b"two", TTL)
                .await
                .expect("store call failed"),
            Swap::Conflict
        );
        assert_eq!(
            store
                .load(&key)
                .await
                .expect("store call failed")
                .expect("still there")
                .value,
            b"one"
        );
    }

    /// A swap at the current version writes and moves the version.
    pub async fn swap_at_version(store: &dyn Store, ns: &str) {
        let key = format!("{ns}.swap");
        let v1 = swapped(
            store
                .swap(&key, None, b"a", TTL)
                .await
                .expect("store call failed"),
        );
        let v2 = swapped(
            store
                .swap(&key, Some(v1), b"b", TTL)
                .await
                .expect("store call failed"),
        );
        assert_ne!(v1, v2, "a swap changes the version");
        let r = store
            .load(&key)
            .await
            .expect("store call failed")
            .expect("present");
        assert_eq!((r.version, r.value.as_slice()), (v2, b"b".as_slice()));
        let v3 = swapped(
            store
                .swap(&key, Some(v2), b"", TTL)
                .await
                .expect("store call failed"),
        );
        assert_eq!(
            store
                .load(&key)
                .await
                .expect("store call failed")
                .expect("present")
                .version,
            v3
        );
        assert!(
            store
                .load(&key)
                .await
                .expect("store call failed")
                .expect("present")
                .value
                .is_empty(),
            "empty values round-trip"
        );
    }

    /// A swap at a stale version, or at any version of an absent key,
    /// conflicts and writes nothing.
    pub async fn conflict_at_stale_version(store: &dyn Store, ns: &str) {
        let key = format!("{ns}.stale");
        let v1 = swapped(
            store
                .swap(&key, None, b"a", TTL)
                .await
                .expect("store call failed"),
        );
        let v2 = swapped(
            store
                .swap(&key, Some(v1), b"b", TTL)
                .await
                .expect("store call failed"),
        );
        assert_eq!(
            store
                .swap(&key, Some(v1), b"c", TTL)
                .await
                .expect("store call failed"),
            Swap::Conflict
        );
        assert_eq!(
            store
                .swap(&key, Some(v2.wrapping_add(1)), b"c", TTL)
                .await
                .expect("store call failed"),
            Swap::Conflict
        );
        let r = store
            .load(&key)
            .await
            .expect("store call failed")
            .expect("present");
        assert_eq!((r.version, r.value.as_slice()), (v2, b"b".as_slice()));
        let absent = format!("{ns}.absent");
        assert_eq!(
            store
                .swap(&absent, Some(v2), b"x", TTL)
                .await
                .expect("store call failed"),
            Swap::Conflict
        );
        assert!(
            store
                .load(&absent)
                .await
                .expect("store call failed")
                .is_none()
        );
    }

    /// An expired record is gone: not loaded, not swappable at its old
    /// version, and creatable again at a version that differs.
    pub async fn ttl_expiry(store: &dyn Store, ns: &str) {
        let key = format!("{ns}.ttl");
        let v1 = swapped(
            store
                .swap(&key, None, b"short", Duration::from_millis(300))
                .await
                .expect("store call failed"),
        );
        let long = format!("{ns}.ttl-long");
        let _ = swapped(
            store
                .swap(&long, None, b"long", TTL)
                .await
                .expect("store call failed"),
        );
        tokio::time::sleep(Duration::from_millis(1_100)).await;
        assert!(
            store.load(&key).await.expect("store call failed").is_none(),
            "expired records are not returned"
        );
        assert!(
            store
                .load(&long)
                .await
                .expect("store call failed")
                .is_some(),
            "unexpired records stay"
        );
        assert_eq!(
            store
                .swap(&key, Some(v1), b"late", TTL)
                .await
                .expect("store call failed"),
            Swap::Conflict
        );
        let v2 = swapped(
            store
                .swap(&key, None, b"again", TTL)
                .await
                .expect("store call failed"),
        );
        assert_ne!(v1, v2, "a recreated record gets a new version");
        // A swap refreshes the TTL.
        let v3 = swapped(
            store
                .swap(&key, Some(v2), b"refreshed", Duration::from_millis(300))
                .await
                .expect("store call failed"),
        );
        let _ = swapped(
            store
                .swap(&key, Some(v3), b"kept", TTL)
                .await
                .expect("store call failed"),
        );
        tokio::time::sleep(Duration::from_millis(600)).await;
        assert_eq!(
            store
                .load(&key)
                .await
                .expect("store call failed")
                .expect("ttl was refreshed")
                .value,
            b"kept"
        );
    }

    /// Values up to [`MAX_VALUE_LEN`] round-trip byte for byte; larger ones
    /// are refused.
    pub async fn large_values(store: &dyn Store, ns: &str) {
        let key = format!("{ns}.large");
        let value: Vec<u8> = (0..MAX_VALUE_LEN)
            .map(|i| u8::try_from(i % 251).expect("below 251"))
            .collect();
        let v = swapped(
            store
                .swap(&key, None, &value, TTL)
                .await
                .expect("store call failed"),
        );
        assert_eq!(
            store
                .load(&key)
                .await
                .expect("store call failed")
                .expect("present")
                .value,
            value
        );
        let too_big = vec![0u8; MAX_VALUE_LEN + 1];
        assert!(matches!(
            store.swap(&key, Some(v), &too_big, TTL).await,
            Err(StoreError::ValueTooLarge)
        ));
        let nul: Vec<u8> = vec![0, 0xff, 0, b'\'', b'"', b'\\'];
        let _ = swapped(
            store
                .swap(&key, Some(v), &nul, TTL)
                .await
                .expect("store call failed"),
        );
        assert_eq!(
            store
                .load(&key)
                .await
                .expect("store call failed")
                .expect("present")
                .value,
            nul
        );
    }

    /// Bad keys and TTLs are refused by every operation.
    pub async fn bad_keys(store: &dyn Store) {
        let long = "k".repeat(MAX_KEY_LEN + 1);
        for key in [
            "",
            "has space",
            "semi;colon",
            "quote'",
            "new\nline",
            "ünïcode",
            long.as_str(),
        ] {
            assert!(
                matches!(store.load(key).await, Err(StoreError::BadKey)),
                "load {key:?}"
            );
            assert!(
                matches!(
                    store.swap(key, None, b"x", TTL).await,
                    Err(StoreError::BadKey)
                ),
                "swap {key:?}"
            );
            assert!(
                matches!(store.load_many(&[key]).await, Err(StoreError::BadKey)),
                "load_many {key:?}"
            );
        }
        assert!(matches!(
            store.swap("ok", None, b"x", Duration::ZERO).await,
            Err(StoreError::BadTtl)
        ));
    }

    /// `load_many` returns records in order, with absent keys as `None`.
    pub async fn load_many(store: &dyn Store, ns: &str) {
        let (a, b, c) = (
            format!("{ns}.m.a"),
            format!("{ns}.m.b"),
            format!("{ns}.m.c"),
        );
        let _ = swapped(
            store
                .swap(&a, None, b"A", TTL)
                .await
                .expect("store call failed"),
        );
        let _ = swapped(
            store
                .swap(&c, None, b"C", TTL)
                .await
                .expect("store call failed"),
        );
        let got = store
            .load_many(&[&c, &b, &a])
            .await
            .expect("store call failed");
        let values: Vec<Option<&[u8]>> = got
            .iter()
            .map(|r| r.as_ref().map(|r| r.value.as_slice()))
            .collect();
        assert_eq!(values, [Some(b"C".as_slice()), None, Some(b"A".as_slice())]);
        assert!(
            store
                .load_many(&[])
                .await
                .expect("store call failed")
                .is_empty()
        );
    }

    /// `tasks` tasks race to swap one key from the same version, `rounds`
    /// times: each round has exactly one winner, and the winners' writes
    /// form one unbroken chain.
    pub async fn concurrency(store: Arc<dyn Store>, ns: &str, tasks: usize, rounds: usize) {
        let key = format!("{ns}.race");
        let mut version = swapped(
            store
                .swap(&key, None, b"0", TTL)
                .await
                .expect("store call failed"),
        );
        for round in 1..=rounds {
            let mut handles = Vec::with_capacity(tasks);
            for task in 0..tasks {
                let (store, key) = (Arc::clone(&store), key.clone());
                handles.push(tokio::spawn(async move {
                    let value = format!("{round}:{task}");
                    store
                        .swap(&key, Some(version), value.as_bytes(), TTL)
                        .await
                        .expect("store call failed")
                }));
            }
            let mut winners = Vec::new();
            for h in handles {
                if let Swap::Swapped { version } = h.await.expect("task panicked") {
                    winners.push(version);
                }
            }
            assert_eq!(winners.len(), 1, "round {round}: exactly one winner");
            version = winners[0];
            let r = store
                .load(&key)
                .await
                .expect("store call failed")
                .expect("present");
            assert_eq!(r.version, version);
            assert!(
                String::from_utf8(r.value)
                    .expect("value written as UTF-8")
                    .starts_with(&format!("{round}:"))
            );
        }
    }

    /// Writes [`writes_are_reported_as_made`] makes: more than twice the
    /// longest upkeep period of the built-in backends (the SQL stores purge
    /// expired rows every 256 writes), so that upkeep runs at least twice
    /// while it watches.
    pub const UPKEEP_WRITES: usize = 600;

    /// No backend reports an error for a write it made, nor a write it did
    /// not make: a swap's answer is the swap's alone, whatever upkeep the
    /// backend does around it.
    ///
    /// With expired records present (so that a purge has rows to delete),
    /// it makes [`UPKEEP_WRITES`] writes: creates, updates at the current
    /// version, updates at a stale one, and every 16th a record that expires
    /// at once, to keep expired rows coming. After each, it checks the
    /// answer against the expected one and against what is then loaded. An
    /// error fails the check, and when the write can be seen to have landed
    /// the failure says so.
    ///
    /// Upkeep that succeeds rarely puts an error in an answer, so a
    /// backend's own tests also run the suite with its upkeep made to fail
    /// (for the SQL stores, a trigger that refuses every `DELETE` from
    /// `keyward_records`). An earlier SQLite store failed that run: it
    /// returned a failed purge as the error of the swap that triggered it,
    /// a swap that had committed.
    pub async fn writes_are_reported_as_made(store: &dyn Store, ns: &str) {
        const KEYS: usize = 40;
        const DEAD: usize = 32;
        let short = Duration::from_millis(1);
        for i in 0..DEAD {
            let key = format!("{ns}.upkeep.dead{i}");
            let _ = swapped(
                store
                    .swap(&key, None, b"dead", short)
                    .await
                    .expect("store call failed"),
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;

        // The model: each key's (version, value), `None` while absent.
        let mut model: Vec<Option<(u64, Vec<u8>)>> = vec![None; KEYS];
        for n in 0..UPKEEP_WRITES {
            if n % 16 == 15 {
                // Expires at once: whether it landed cannot be loaded, but
                // a fresh key must be created.
                let key = format!("{ns}.upkeep.short{n}");
                let answer = store.swap(&key, None, b"short", short).await;
                match answer {
                    Ok(Swap::Swapped { .. }) => continue,
                    Ok(Swap::Conflict) => panic!("write {n}: a fresh key conflicted"),
                    Err(e) => panic!("write {n} (a fresh 1 ms record): the store reported {e}"),
                }
            }
            let k = n.wrapping_mul(7) % KEYS;
            let key = format!("{ns}.upkeep.k{k}");
            let value = format!("w{n}").into_bytes();
            let before = model[k].clone();
            let (expected, should_write) = match &before {
                None => (None, true),
                // Every fifth write to a live key presents a stale version.
                Some((v, _)) if n % 5 == 0 => (Some(v.wrapping_add(1)), false),
                Some((v, _)) => (Some(*v), true),
            };
            let answer = store.swap(&key, expected, &value, TTL).await;
            let loaded = store
                .load(&key)
                .await
                .expect("store call failed")
                .map(|r| (r.version, r.value));
            match answer {
                Err(e) => {
                    let landed = loaded.as_ref().is_some_and(|(_, v)| *v == value);
                    assert!(
                        !landed,
                        "write {n} to {key}: the store reported an error ({e}) for a write it \
                         made; a swap's answer must be the swap's alone"
                    );
                    let expected = if should_write {
                        "a write"
                    } else {
                        "a conflict"
                    };
                    panic!(
                        "write {n} to {key}: the store reported an error ({e}) where {expected} \
                         was due (nothing was written)"
                    );
                }
                Ok(Swap::Swapped { version }) => {
                    assert!(
                        should_write,
                        "write {n}: a swap at a stale version was made"
                    );
                    assert_eq!(
                        loaded,
                        Some((version, value)),
                        "write {n} to {key}: reported as made, but not what is loaded"
                    );
                    if let Some((old, _)) = before {
                        assert_ne!(version, old, "write {n}: a swap changes the version");
                    }
                    model[k] = loaded;
                }
                Ok(Swap::Conflict) => {
                    assert!(
                        !should_write,
                        "write {n} to {key}: conflicted at its version"
                    );
                    assert_eq!(
                        loaded, before,
                        "write {n} to {key}: reported as a conflict, but the record changed"
                    );
                }
            }
        }
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
