//! The one transaction every stateful service runs: load the records in one
//! round trip, decode them with the one versioned codec, ask a pure
//! decision function what to write, commit it all or nothing, and on a
//! conflict start again, a bounded number of times.
//!
//! A decision sees the records and the time, and nothing else. The time is
//! the store's clock where the store keeps one (PostgreSQL, Redis) and the
//! host's otherwise (memory, SQLite, whose clients share one host), so that
//! replicas whose clocks disagree still make the same decision.

use serde::Serialize;
use serde::de::DeserializeOwned;
use std::time::Duration;

use super::{Commit, Op, Record, Snapshot, Store, StoreError};
use crate::clock::Clock;
use crate::error::Error;

/// Commit attempts before an operation gives up with [`Error::Busy`].
pub const DEFAULT_MAX_RETRIES: u32 = 32;

/// The codec's format byte: JSON follows.
const FORMAT_JSON_V1: u8 = 1;

/// Encodes a record: a format byte, then the record as JSON.
///
/// # Errors
/// [`StoreError::Corrupt`] if the value cannot be serialised.
pub(crate) fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, StoreError> {
    let mut out = vec![FORMAT_JSON_V1];
    serde_json::to_writer(&mut out, value)
        .map_err(|_| StoreError::Corrupt("cannot encode record"))?;
    Ok(out)
}

/// Decodes a record written by [`encode`], or by keyward before the codec
/// had a format byte (bare JSON, which begins with `{`).
///
/// # Errors
/// [`StoreError::Corrupt`] for an unknown format or a record that does not
/// decode as `T`.
pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, StoreError> {
    let json = match bytes.split_first() {
        Some((&FORMAT_JSON_V1, rest)) => rest,
        Some((b'{', _)) => bytes,
        _ => return Err(StoreError::Corrupt("unknown record format")),
    };
    serde_json::from_slice(json).map_err(|_| StoreError::Corrupt("record does not decode"))
}

/// A type a transaction stores: how it becomes bytes and back. Most
/// records are JSON through the versioned codec ([`json_stored!`]); a
/// record read on a hot path may have a binary form of its own, under
/// another format byte.
pub(crate) trait Stored: Sized {
    /// The record's stored bytes.
    fn to_bytes(&self) -> Result<Vec<u8>, StoreError>;
    /// The record from its stored bytes.
    fn from_bytes(bytes: &[u8]) -> Result<Self, StoreError>;
}

/// Stores each listed type as JSON through [`encode`] and [`decode`].
macro_rules! json_stored {
    ($($t:ty),+ $(,)?) => {$(
        impl $crate::store::Stored for $t {
            fn to_bytes(&self) -> Result<Vec<u8>, $crate::store::StoreError> {
                $crate::store::encode(self)
            }
            fn from_bytes(bytes: &[u8]) -> Result<Self, $crate::store::StoreError> {
                $crate::store::decode(bytes)
            }
        }
    )+};
}
pub(crate) use json_stored;

/// The typed records a transaction loads: a tuple of `Option`s, one per
/// key, in the order of the keys.
pub(crate) trait Records: Sized {
    /// Whether the tuple covers exactly `len` keys.
    fn fits(len: usize) -> bool;
    /// Decodes the loaded records.
    fn decode(raw: &[Option<Record>]) -> Result<Self, StoreError>;
}

fn slot<T: Stored>(raw: &[Option<Record>], i: usize) -> Result<Option<T>, StoreError> {
    match raw.get(i) {
        Some(Some(r)) => T::from_bytes(&r.value).map(Some),
        Some(None) => Ok(None),
        None => Err(StoreError::Corrupt("load_many returned too few records")),
    }
}

impl<A: Stored> Records for (Option<A>,) {
    fn fits(len: usize) -> bool {
        len == 1
    }
    fn decode(raw: &[Option<Record>]) -> Result<Self, StoreError> {
        Ok((slot(raw, 0)?,))
    }
}

impl<A: Stored, B: Stored> Records for (Option<A>, Option<B>) {
    fn fits(len: usize) -> bool {
        len == 2
    }
    fn decode(raw: &[Option<Record>]) -> Result<Self, StoreError> {
        Ok((slot(raw, 0)?, slot(raw, 1)?))
    }
}

impl<A: Stored, B: Stored, C: Stored> Records for (Option<A>, Option<B>, Option<C>) {
    fn fits(len: usize) -> bool {
        len == 3
    }
    fn decode(raw: &[Option<Record>]) -> Result<Self, StoreError> {
        Ok((slot(raw, 0)?, slot(raw, 1)?, slot(raw, 2)?))
    }
}

impl<A: Stored, B: Stored, C: Stored, D: Stored> Records
    for (Option<A>, Option<B>, Option<C>, Option<D>)
{
    fn fits(len: usize) -> bool {
        len == 4
    }
    fn decode(raw: &[Option<Record>]) -> Result<Self, StoreError> {
        Ok((slot(raw, 0)?, slot(raw, 1)?, slot(raw, 2)?, slot(raw, 3)?))
    }
}

impl<A: Stored, B: Stored, C: Stored, D: Stored, E: Stored> Records
    for (Option<A>, Option<B>, Option<C>, Option<D>, Option<E>)
{
    fn fits(len: usize) -> bool {
        len == 5
    }
    fn decode(raw: &[Option<Record>]) -> Result<Self, StoreError> {
        Ok((
            slot(raw, 0)?,
            slot(raw, 1)?,
            slot(raw, 2)?,
            slot(raw, 3)?,
            slot(raw, 4)?,
        ))
    }
}

/// One record, then any number of records of one type: an index and the
/// records it lists.
impl<A, B> Records for (Option<A>, Vec<Option<B>>)
where
    A: Stored,
    B: Stored,
{
    fn fits(len: usize) -> bool {
        len >= 1
    }
    fn decode(raw: &[Option<Record>]) -> Result<Self, StoreError> {
        let rest = (1..raw.len())
            .map(|i| slot(raw, i))
            .collect::<Result<_, _>>()?;
        Ok((slot(raw, 0)?, rest))
    }
}

/// Two records, then any number of records of one type: an index, a new
/// record, and the records the index lists.
impl<A, B, C> Records for (Option<A>, Option<B>, Vec<Option<C>>)
where
    A: Stored,
    B: Stored,
    C: Stored,
{
    fn fits(len: usize) -> bool {
        len >= 2
    }
    fn decode(raw: &[Option<Record>]) -> Result<Self, StoreError> {
        let rest = (2..raw.len())
            .map(|i| slot(raw, i))
            .collect::<Result<_, _>>()?;
        Ok((slot(raw, 0)?, slot(raw, 1)?, rest))
    }
}

/// Three records, then any number of records of one type.
impl<A, B, C, D> Records for (Option<A>, Option<B>, Option<C>, Vec<Option<D>>)
where
    A: Stored,
    B: Stored,
    C: Stored,
    D: Stored,
{
    fn fits(len: usize) -> bool {
        len >= 3
    }
    fn decode(raw: &[Option<Record>]) -> Result<Self, StoreError> {
        let rest = (3..raw.len())
            .map(|i| slot(raw, i))
            .collect::<Result<_, _>>()?;
        Ok((slot(raw, 0)?, slot(raw, 1)?, slot(raw, 2)?, rest))
    }
}

/// What a planned operation does to the record at its key's position.
enum Planned {
    Write { value: Vec<u8>, ttl: Duration },
    Delete,
    Check,
}

/// A decision: the operations to commit, by key position, and the outcome
/// to return once they have committed. With no operations nothing is
/// committed.
#[must_use]
pub(crate) struct Decision<T> {
    ops: Vec<(usize, Planned)>,
    outcome: T,
}

impl<T> Decision<T> {
    /// An outcome that needs nothing committed.
    pub(crate) fn only(outcome: T) -> Self {
        Self {
            ops: Vec::new(),
            outcome,
        }
    }

    /// Writes `value` at the key in position `at`, with `ttl`, if its record
    /// is still the one loaded.
    pub(crate) fn write<V: Stored>(
        mut self,
        at: usize,
        value: &V,
        ttl: Duration,
    ) -> Result<Self, StoreError> {
        self.ops.push((
            at,
            Planned::Write {
                value: value.to_bytes()?,
                ttl,
            },
        ));
        Ok(self)
    }

    /// Deletes the record at position `at`, if it is still the one loaded.
    pub(crate) fn delete(mut self, at: usize) -> Self {
        self.ops.push((at, Planned::Delete));
        self
    }

    /// The outcome it will return.
    pub(crate) fn outcome(&self) -> &T {
        &self.outcome
    }

    /// Commits only if the record at position `at` is still the one loaded
    /// (or still absent): a guard.
    pub(crate) fn check(mut self, at: usize) -> Self {
        self.ops.push((at, Planned::Check));
        self
    }
}

/// Runs `decide` over the records at `keys` until its operations commit,
/// and returns its outcome.
///
/// Each attempt costs two round trips (one `load_many`, one `commit`), or
/// one when the decision commits nothing. `decide` receives the typed
/// records and the time in seconds since the Unix epoch, and must be pure:
/// it may run several times.
///
/// # Errors
/// What `decide` returns; [`Error::Store`] when the store fails or a record
/// does not decode (fail closed: nothing is written); [`Error::Busy`] after
/// `max_retries` conflicting attempts.
pub(crate) async fn transact<R, T, F>(
    store: &dyn Store,
    clock: &dyn Clock,
    keys: &[&str],
    max_retries: u32,
    decide: F,
) -> Result<T, Error>
where
    R: Records,
    F: FnMut(R, u64) -> Result<Decision<T>, Error>,
{
    transact_on(store, clock, store_now, keys, max_retries, decide).await
}

/// [`transact`], with the time given to `decide` in milliseconds since the
/// Unix epoch.
pub(crate) async fn transact_ms<R, T, F>(
    store: &dyn Store,
    clock: &dyn Clock,
    keys: &[&str],
    max_retries: u32,
    decide: F,
) -> Result<T, Error>
where
    R: Records,
    F: FnMut(R, u64) -> Result<Decision<T>, Error>,
{
    transact_on(store, clock, store_now_ms, keys, max_retries, decide).await
}

async fn transact_on<R, T, F>(
    store: &dyn Store,
    clock: &dyn Clock,
    time: fn(&Snapshot, &dyn Clock) -> u64,
    keys: &[&str],
    max_retries: u32,
    mut decide: F,
) -> Result<T, Error>
where
    R: Records,
    F: FnMut(R, u64) -> Result<Decision<T>, Error>,
{
    if !R::fits(keys.len()) {
        return Err(StoreError::Corrupt("a transaction's keys and records differ").into());
    }
    for _ in 0..max_retries {
        let snapshot = store.load_many(keys).await?;
        let now = time(&snapshot, clock);
        let records = R::decode(&snapshot.records)?;
        let decision = decide(records, now)?;
        if decision.ops.is_empty() {
            return Ok(decision.outcome);
        }
        let ops = plan(keys, &snapshot, &decision.ops)?;
        match store.commit(&ops).await? {
            Commit::Committed { .. } => return Ok(decision.outcome),
            Commit::Conflict { .. } => {}
        }
    }
    Err(Error::Busy)
}

/// The time to decide at, in seconds, for a read that needs no retry loop
/// ([`Store::load_one`], as an API-key verify makes): the store's clock
/// where it keeps one, else the host's.
pub(crate) fn store_seconds(now_ms: Option<u64>, clock: &dyn Clock) -> u64 {
    now_ms.map_or_else(|| clock.now(), |ms| ms.checked_div(1_000).unwrap_or(0))
}

/// The decision's time: the store's clock where it keeps one, else the
/// host's.
fn store_now(snapshot: &Snapshot, clock: &dyn Clock) -> u64 {
    store_seconds(snapshot.now_ms, clock)
}

/// [`store_now`] in milliseconds.
fn store_now_ms(snapshot: &Snapshot, clock: &dyn Clock) -> u64 {
    snapshot.now_ms.unwrap_or_else(|| clock.now_ms())
}

/// The store operations for a decision's planned ones, each guarded by the
/// version its record was loaded at.
fn plan<'a>(
    keys: &[&'a str],
    snapshot: &Snapshot,
    planned: &'a [(usize, Planned)],
) -> Result<Vec<Op<'a>>, StoreError> {
    let mut ops = Vec::with_capacity(planned.len());
    for (at, planned) in planned {
        let key = keys
            .get(*at)
            .ok_or(StoreError::Corrupt("a decision names no loaded key"))?;
        let expected = snapshot
            .records
            .get(*at)
            .and_then(|r| r.as_ref().map(|r| r.version));
        ops.push(match planned {
            Planned::Write { value, ttl } => Op::write(key, expected, value, *ttl),
            Planned::Delete => match expected {
                Some(v) => Op::delete(key, v),
                // Deleting what is absent: only its absence is required.
                None => Op::check(key, None),
            },
            Planned::Check => Op::check(key, expected),
        });
    }
    Ok(ops)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::store::MemoryStore;
    use serde::Deserialize;

    #[derive(Debug, Serialize, Deserialize, PartialEq)]
    struct Counter {
        n: u32,
    }
    json_stored!(Counter);

    #[test]
    fn the_codec_round_trips_and_reads_bare_json() {
        let bytes = encode(&Counter { n: 7 }).unwrap();
        assert_eq!(bytes.first(), Some(&FORMAT_JSON_V1));
        assert_eq!(decode::<Counter>(&bytes).unwrap(), Counter { n: 7 });
        assert_eq!(decode::<Counter>(br#"{"n":3}"#).unwrap(), Counter { n: 3 });
        for bad in [&b""[..], b"\x02{\"n\":1}", b"[1]", b"\x01{\"m\":1}"] {
            assert!(decode::<Counter>(bad).is_err(), "{bad:?}");
        }
    }

    /// Two records move together, the time is the host clock's on a store
    /// without one, and a decision that commits nothing costs no commit.
    #[tokio::test]
    async fn a_transaction_commits_its_decision() {
        let store = MemoryStore::new();
        let clock = ManualClock::new(1_000);
        let ttl = Duration::from_secs(60);
        for round in 0..3u32 {
            let seen = transact(
                &store,
                &clock,
                &["a", "b"],
                4,
                |(a, b): (Option<Counter>, Option<Counter>), now| {
                    assert_eq!(now, 1_000);
                    let n = a.map_or(0, |c| c.n);
                    assert_eq!(b.map_or(0, |c| c.n), n, "the records moved together");
                    Decision::only(n)
                        .write(0, &Counter { n: n + 1 }, ttl)?
                        .write(1, &Counter { n: n + 1 }, ttl)
                        .map_err(Error::from)
                },
            )
            .await
            .unwrap();
            assert_eq!(seen, round);
        }
        let read = transact(&store, &clock, &["a"], 1, |(a,): (Option<Counter>,), _| {
            Ok(Decision::only(a.map(|c| c.n)))
        })
        .await
        .unwrap();
        assert_eq!(read, Some(3));
        // A delete, guarded by the other record.
        transact(
            &store,
            &clock,
            &["a", "b"],
            1,
            |(_, _): (Option<Counter>, Option<Counter>), _| {
                Ok(Decision::only(()).delete(0).check(1))
            },
        )
        .await
        .unwrap();
        assert!(store.load("a").await.unwrap().is_none());
        assert!(store.load("b").await.unwrap().is_some());
        // A decision over the wrong number of keys is refused.
        let wrong = transact(
            &store,
            &clock,
            &["a", "b"],
            1,
            |(_,): (Option<Counter>,), _| Ok(Decision::only(())),
        )
        .await;
        assert!(matches!(wrong, Err(Error::Store(StoreError::Corrupt(_)))));
    }
}
