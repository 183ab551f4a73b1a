//! An in-process store: a sharded map behind mutexes. For one process
//! (tests, a single-instance service); state is lost on restart.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use super::{
    Action, Commit, Op, Record, Snapshot, Store, StoreError, StoreFuture, Swap, check_args,
    check_key, check_ops, initial_version, next_version,
};

const SHARDS: usize = 16;
/// Every this many writes to a shard, its expired entries are dropped, so
/// memory stays bounded by the live records.
const PURGE_EVERY: u32 = 64;

struct Entry {
    version: u64,
    value: Vec<u8>,
    expires: Instant,
}

#[derive(Default)]
struct Shard {
    map: HashMap<String, Entry>,
    writes: u32,
}

/// A sharded in-memory [`Store`].
pub struct MemoryStore {
    shards: Vec<Mutex<Shard>>,
    purges: AtomicU32,
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore")
            .field("shards", &SHARDS)
            .finish_non_exhaustive()
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryStore {
    /// An empty store.
    #[must_use]
    pub fn new() -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            purges: AtomicU32::new(0),
        }
    }

    /// Entries held, live or expired but not yet purged.
    #[must_use]
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().map_or(0, |s| s.map.len()))
            .sum()
    }

    /// The keys of the live records, sorted: what a raw dump of the store
    /// would list.
    #[must_use]
    pub fn live_keys(&self) -> Vec<String> {
        let now = Instant::now();
        let mut keys: Vec<String> = self
            .shards
            .iter()
            .filter_map(|s| s.lock().ok())
            .flat_map(|s| {
                s.map
                    .iter()
                    .filter(|(_, e)| e.expires > now)
                    .map(|(k, _)| k.clone())
                    .collect::<Vec<_>>()
            })
            .collect();
        keys.sort();
        keys
    }

    /// Whether no entries are held.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Drops every expired entry now.
    pub fn purge_expired(&self) {
        let now = Instant::now();
        for shard in &self.shards {
            if let Ok(mut s) = shard.lock() {
                s.map.retain(|_, e| e.expires > now);
            }
        }
        self.purges.fetch_add(1, Ordering::Relaxed);
    }

    fn shard(&self, key: &str) -> Result<std::sync::MutexGuard<'_, Shard>, StoreError> {
        self.lock_shard(shard_index(key))
    }

    fn lock_shard(&self, index: usize) -> Result<std::sync::MutexGuard<'_, Shard>, StoreError> {
        self.shards
            .get(index)
            .ok_or(StoreError::Corrupt("shard index"))?
            .lock()
            .map_err(|_| {
                StoreError::Unavailable("a thread panicked while holding the store lock".into())
            })
    }

    fn commit_now(&self, ops: &[Op<'_>]) -> Result<Commit, StoreError> {
        check_ops(ops)?;
        // Every shard the commit touches, locked in ascending order (so two
        // commits never wait on each other in a cycle) and held throughout:
        // the checks and the writes are one step for every other client.
        let mut indexes: Vec<usize> = ops.iter().map(|op| shard_index(op.key)).collect();
        indexes.sort_unstable();
        indexes.dedup();
        let mut guards = Vec::with_capacity(indexes.len());
        for &i in &indexes {
            guards.push((i, self.lock_shard(i)?));
        }
        let now = Instant::now();
        // Each op's place in `guards`.
        let slots = ops
            .iter()
            .map(|op| {
                let i = shard_index(op.key);
                indexes
                    .iter()
                    .position(|g| *g == i)
                    .ok_or(StoreError::Corrupt("shard not locked"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut versions = Vec::with_capacity(ops.len());
        for (index, (op, &slot)) in ops.iter().zip(&slots).enumerate() {
            let live = guards
                .get(slot)
                .and_then(|(_, shard)| shard.map.get(op.key))
                .filter(|e| e.expires > now)
                .map(|e| e.version);
            if live != op.expected {
                return Ok(Commit::Conflict { index });
            }
            versions.push(match op.action {
                Action::Write { .. } => Some(match live {
                    None => initial_version()?,
                    Some(v) => next_version(v)?,
                }),
                Action::Delete => None,
                Action::Check => live,
            });
        }
        for ((op, version), &slot) in ops.iter().zip(&versions).zip(&slots) {
            let shard = &mut guards
                .get_mut(slot)
                .ok_or(StoreError::Corrupt("shard not locked"))?
                .1;
            match (op.action, version) {
                (Action::Write { value, ttl }, Some(version)) => {
                    let expires = now.checked_add(ttl).ok_or(StoreError::BadTtl)?;
                    shard.map.insert(
                        op.key.to_owned(),
                        Entry {
                            version: *version,
                            value: value.to_vec(),
                            expires,
                        },
                    );
                    shard.writes = shard.writes.wrapping_add(1);
                    if shard.writes.is_multiple_of(PURGE_EVERY) {
                        shard.map.retain(|_, e| e.expires > now);
                    }
                }
                (Action::Delete, _) => {
                    let _ = shard.map.remove(op.key);
                }
                _ => {}
            }
        }
        Ok(Commit::Committed { versions })
    }

    fn load_now(&self, key: &str) -> Result<Option<Record>, StoreError> {
        check_key(key)?;
        let shard = self.shard(key)?;
        let now = Instant::now();
        Ok(shard
            .map
            .get(key)
            .filter(|e| e.expires > now)
            .map(|e| Record {
                version: e.version,
                value: e.value.clone(),
            }))
    }
}

/// The shard a key lives in. FNV-1a: a fixed, cheap spread of keys.
fn shard_index(key: &str) -> usize {
    let mut h: u32 = 0x811c_9dc5;
    for b in key.bytes() {
        h = (h ^ u32::from(b)).wrapping_mul(0x0100_0193);
    }
    usize::try_from(h).unwrap_or(0) % SHARDS
}

impl Store for MemoryStore {
    fn load<'a>(&'a self, key: &'a str) -> StoreFuture<'a, Option<Record>> {
        let result = self.load_now(key);
        Box::pin(async move { result })
    }

    fn load_many<'a>(&'a self, keys: &'a [&'a str]) -> StoreFuture<'a, Snapshot> {
        let result = (|| {
            let mut records = Vec::with_capacity(keys.len());
            for key in keys {
                records.push(self.load_now(key)?);
            }
            Ok(Snapshot {
                records,
                now_ms: None,
            })
        })();
        Box::pin(async move { result })
    }

    fn load_one<'a>(&'a self, key: &'a str) -> StoreFuture<'a, (Option<Record>, Option<u64>)> {
        let result = self.load_now(key).map(|record| (record, None));
        Box::pin(async move { result })
    }

    fn commit<'a>(&'a self, ops: &'a [Op<'a>]) -> StoreFuture<'a, Commit> {
        let result = self.commit_now(ops);
        Box::pin(async move { result })
    }

    fn swap<'a>(
        &'a self,
        key: &'a str,
        expected: Option<u64>,
        value: &'a [u8],
        ttl: Duration,
    ) -> StoreFuture<'a, Swap> {
        let result = (|| {
            check_args(key, value, ttl)?;
            let mut shard = self.shard(key)?;
            let now = Instant::now();
            let expires = now.checked_add(ttl).ok_or(StoreError::BadTtl)?;
            let live = shard
                .map
                .get(key)
                .filter(|e| e.expires > now)
                .map(|e| e.version);
            let version = match (expected, live) {
                (None, None) => initial_version()?,
                (Some(want), Some(have)) if want == have => next_version(have)?,
                _ => return Ok(Swap::Conflict),
            };
            shard.map.insert(
                key.to_owned(),
                Entry {
                    version,
                    value: value.to_vec(),
                    expires,
                },
            );
            shard.writes = shard.writes.wrapping_add(1);
            if shard.writes.is_multiple_of(PURGE_EVERY) {
                shard.map.retain(|_, e| e.expires > now);
            }
            Ok(Swap::Swapped { version })
        })();
        Box::pin(async move { result })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(feature = "tokio")]
    #[tokio::test]
    async fn conformance() {
        super::super::conformance::run(std::sync::Arc::new(MemoryStore::new())).await;
    }

    #[tokio::test]
    async fn expired_entries_are_purged_as_writes_go_on() {
        let store = MemoryStore::new();
        for i in 0..2_000 {
            let key = format!("k{i}");
            let _ = store
                .swap(&key, None, b"x", Duration::from_millis(1))
                .await
                .expect("swap");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
        for i in 0..2_000 {
            let key = format!("fresh{i}");
            let _ = store
                .swap(&key, None, b"x", Duration::from_secs(60))
                .await
                .expect("swap");
        }
        // The 2,000 expired entries were dropped by the periodic purge,
        // except those in shards not written since (at most PURGE_EVERY-1 each).
        let bound = 2_000 + SHARDS * usize::try_from(PURGE_EVERY).unwrap_or(64);
        assert!(store.len() <= bound, "{} entries held", store.len());
        store.purge_expired();
        assert_eq!(store.len(), 2_000);
    }
}
