//! Test doubles for [`Store`], and the test vectors keyward's own tests
//! read. Feature `test-util`; not for production use.
//!
//! Each double wraps a real store (usually a [`MemoryStore`]) and passes
//! every operation through, observing or disturbing it on the way:
//!
//! - [`CountingStore`] counts round trips: `load`, `load_many`, `commit`;
//! - [`FaultyStore`] fails loads and/or commits on demand, as a store that
//!   went down would;
//! - [`RacingStore`] makes racing tasks interleave between their load and
//!   their commit, counts the conflicts that follow, and can hold one
//!   commit back until the test lets it go.
//!
//! A double only implements `load`, `load_many` and `commit`: `swap` keeps
//! the trait's default, a commit of one write, so a swap is seen (counted,
//! failed, held) as the commit it is.
//!
//! ```
//! use std::sync::Arc;
//! use keyward::testing::{CountingStore, Counts, FaultyStore};
//! use keyward::store::{MemoryStore, Store};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let faulty = Arc::new(FaultyStore::new(Arc::new(MemoryStore::new())));
//! let counting = CountingStore::new(faulty.clone());
//! let ttl = std::time::Duration::from_secs(60);
//! counting.swap("k", None, b"v", ttl).await.unwrap();
//! faulty.down(true);
//! assert!(counting.load("k").await.is_err());
//! assert_eq!(counting.take(), Counts { loads: 1, load_manys: 0, commits: 1 });
//! # }
//! ```
//!
//! [`MemoryStore`]: super::MemoryStore

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::{oneshot, watch};

use super::{Commit, Op, Record, Snapshot, Store, StoreError, StoreFuture};

/// Round trips a [`CountingStore`] saw, by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Calls of [`Store::load`].
    pub loads: usize,
    /// Calls of [`Store::load_many`].
    pub load_manys: usize,
    /// Calls of [`Store::commit`], each [`Store::swap`] included.
    pub commits: usize,
}

impl Counts {
    /// Every call: one round trip each on the built-in backends.
    #[must_use]
    pub fn round_trips(&self) -> usize {
        self.loads
            .saturating_add(self.load_manys)
            .saturating_add(self.commits)
    }
}

/// Counts the round trips made through it to the store it wraps.
///
/// `load_many` goes to the inner store's `load_many` and counts once, as
/// the single round trip it is on a backend that overrides it.
///
/// ```
/// use std::sync::Arc;
/// use keyward::testing::{CountingStore, Counts};
/// use keyward::store::{MemoryStore, Store};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let store = CountingStore::new(Arc::new(MemoryStore::new()));
/// store.load_many(&["a", "b"]).await.unwrap();
/// assert_eq!(store.take().round_trips(), 1);
/// assert_eq!(store.take(), Counts::default(), "take resets");
/// # }
/// ```
#[derive(Debug)]
pub struct CountingStore {
    inner: Arc<dyn Store>,
    loads: AtomicUsize,
    load_manys: AtomicUsize,
    commits: AtomicUsize,
}

impl CountingStore {
    /// Counts the calls made to `inner` through the new store.
    #[must_use]
    pub fn new(inner: Arc<dyn Store>) -> Self {
        Self {
            inner,
            loads: AtomicUsize::new(0),
            load_manys: AtomicUsize::new(0),
            commits: AtomicUsize::new(0),
        }
    }

    /// The calls since the last `take` (or since `new`), and starts
    /// counting again from zero.
    pub fn take(&self) -> Counts {
        Counts {
            loads: self.loads.swap(0, Ordering::SeqCst),
            load_manys: self.load_manys.swap(0, Ordering::SeqCst),
            commits: self.commits.swap(0, Ordering::SeqCst),
        }
    }
}

impl Store for CountingStore {
    fn load<'a>(&'a self, key: &'a str) -> StoreFuture<'a, Option<Record>> {
        self.loads.fetch_add(1, Ordering::SeqCst);
        self.inner.load(key)
    }

    fn load_many<'a>(&'a self, keys: &'a [&'a str]) -> StoreFuture<'a, Snapshot> {
        self.load_manys.fetch_add(1, Ordering::SeqCst);
        self.inner.load_many(keys)
    }

    fn commit<'a>(&'a self, ops: &'a [Op<'a>]) -> StoreFuture<'a, Commit> {
        self.commits.fetch_add(1, Ordering::SeqCst);
        self.inner.commit(ops)
    }
}

/// Fails loads and/or commits on demand with
/// [`StoreError::Unavailable`], and otherwise passes them to the store it
/// wraps, whose records stay as they were: a store that goes down and
/// comes back.
///
/// A failed call never reaches the inner store. `load_many` fails with the
/// loads; `swap` fails with the commits.
///
/// ```
/// use std::sync::Arc;
/// use keyward::testing::FaultyStore;
/// use keyward::store::{MemoryStore, Store, StoreError};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let store = FaultyStore::new(Arc::new(MemoryStore::new()));
/// let ttl = std::time::Duration::from_secs(60);
/// store.fail_commits(true);
/// assert!(matches!(
///     store.swap("k", None, b"v", ttl).await,
///     Err(StoreError::Unavailable(_))
/// ));
/// assert_eq!(store.load("k").await.unwrap(), None, "loads still work");
/// store.fail_commits(false);
/// store.swap("k", None, b"v", ttl).await.unwrap();
/// # }
/// ```
#[derive(Debug)]
pub struct FaultyStore {
    inner: Arc<dyn Store>,
    fail_loads: AtomicBool,
    fail_commits: AtomicBool,
}

impl FaultyStore {
    /// Passes every call to `inner` until told to fail.
    #[must_use]
    pub fn new(inner: Arc<dyn Store>) -> Self {
        Self {
            inner,
            fail_loads: AtomicBool::new(false),
            fail_commits: AtomicBool::new(false),
        }
    }

    /// Whether `load` and `load_many` fail from now on.
    pub fn fail_loads(&self, fail: bool) {
        self.fail_loads.store(fail, Ordering::SeqCst);
    }

    /// Whether `commit` (and so `swap`) fails from now on.
    pub fn fail_commits(&self, fail: bool) {
        self.fail_commits.store(fail, Ordering::SeqCst);
    }

    /// Whether every call fails from now on: the store is down (`true`)
    /// or back up (`false`).
    pub fn down(&self, down: bool) {
        self.fail_loads(down);
        self.fail_commits(down);
    }

    fn failure<'a, T>() -> StoreFuture<'a, T> {
        Box::pin(async {
            Err(StoreError::Unavailable(
                "a failure injected by FaultyStore".into(),
            ))
        })
    }
}

impl Store for FaultyStore {
    fn load<'a>(&'a self, key: &'a str) -> StoreFuture<'a, Option<Record>> {
        if self.fail_loads.load(Ordering::SeqCst) {
            return Self::failure();
        }
        self.inner.load(key)
    }

    fn load_many<'a>(&'a self, keys: &'a [&'a str]) -> StoreFuture<'a, Snapshot> {
        if self.fail_loads.load(Ordering::SeqCst) {
            return Self::failure();
        }
        self.inner.load_many(keys)
    }

    fn commit<'a>(&'a self, ops: &'a [Op<'a>]) -> StoreFuture<'a, Commit> {
        if self.fail_commits.load(Ordering::SeqCst) {
            return Self::failure();
        }
        self.inner.commit(ops)
    }
}

/// Makes concurrent callers race: yields to the scheduler before each
/// operation, so that tasks interleave between their load and their commit
/// even on one thread, and counts the commits that conflict. It can also
/// hold one commit back at a time of the test's choosing
/// ([`hold_next_commit`](Self::hold_next_commit)).
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use keyward::testing::RacingStore;
/// use keyward::store::{MemoryStore, Store, Swap};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let store = Arc::new(RacingStore::new(Arc::new(MemoryStore::new())));
/// let ttl = Duration::from_secs(60);
/// // Two writers that both saw "absent": the held one loses.
/// let hold = store.hold_next_commit();
/// let first = tokio::spawn({
///     let store = Arc::clone(&store);
///     async move { store.swap("k", None, b"first", ttl).await }
/// });
/// hold.reached().await;
/// assert!(matches!(store.swap("k", None, b"second", ttl).await, Ok(Swap::Swapped { .. })));
/// hold.release();
/// assert_eq!(first.await.unwrap().unwrap(), Swap::Conflict);
/// assert_eq!(store.conflicts(), 1);
/// # }
/// ```
#[derive(Debug)]
pub struct RacingStore {
    inner: Arc<dyn Store>,
    conflicts: AtomicU64,
    holds: Mutex<VecDeque<Armed>>,
}

/// The store's side of a [`Hold`].
#[derive(Debug)]
struct Armed {
    arrived: watch::Sender<bool>,
    release: oneshot::Receiver<()>,
}

/// One commit held back by a [`RacingStore`]: the next commit to arrive
/// after [`hold_next_commit`](RacingStore::hold_next_commit) waits, before
/// it reaches the inner store, until [`release`](Self::release). Dropping
/// the hold releases it too.
#[derive(Debug)]
#[must_use = "dropping a Hold releases its commit at once"]
pub struct Hold {
    arrived: watch::Receiver<bool>,
    release: oneshot::Sender<()>,
}

impl RacingStore {
    /// Races the calls made to `inner` through the new store.
    #[must_use]
    pub fn new(inner: Arc<dyn Store>) -> Self {
        Self {
            inner,
            conflicts: AtomicU64::new(0),
            holds: Mutex::new(VecDeque::new()),
        }
    }

    /// Commits (each `swap` included) that answered
    /// [`Commit::Conflict`] so far.
    #[must_use]
    pub fn conflicts(&self) -> u64 {
        self.conflicts.load(Ordering::SeqCst)
    }

    /// The conflicts so far, and counts again from zero.
    pub fn take_conflicts(&self) -> u64 {
        self.conflicts.swap(0, Ordering::SeqCst)
    }

    /// Holds the next commit to arrive, and only that one, until the hold
    /// is released. Each call holds one more: the first hold takes the
    /// first commit to arrive after it, the second the next, and so on.
    pub fn hold_next_commit(&self) -> Hold {
        let (arrived_tx, arrived_rx) = watch::channel(false);
        let (release_tx, release_rx) = oneshot::channel();
        self.holds
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push_back(Armed {
                arrived: arrived_tx,
                release: release_rx,
            });
        Hold {
            arrived: arrived_rx,
            release: release_tx,
        }
    }

    fn next_hold(&self) -> Option<Armed> {
        self.holds
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop_front()
    }
}

impl Hold {
    /// Resolves once the held commit has arrived and is waiting; at once
    /// if it already has. It waits as long as that takes: where the code
    /// under test might make no commit at all, wrap it in
    /// `tokio::time::timeout`.
    ///
    /// # Panics
    /// If the [`RacingStore`] is dropped before any commit arrived.
    #[allow(
        clippy::panic,
        reason = "a test helper: a hold that can never be reached fails the test"
    )]
    pub async fn reached(&self) {
        let mut arrived = self.arrived.clone();
        if arrived.wait_for(|&reached| reached).await.is_err() {
            panic!("the RacingStore was dropped before the held commit arrived");
        }
    }

    /// Lets the held commit go on to the inner store. Releasing before it
    /// arrives lets it pass without waiting.
    pub fn release(self) {
        // The store may be gone, and its commit with it: nothing to let go.
        let _ = self.release.send(());
    }
}

impl Store for RacingStore {
    fn load<'a>(&'a self, key: &'a str) -> StoreFuture<'a, Option<Record>> {
        Box::pin(async move {
            tokio::task::yield_now().await;
            self.inner.load(key).await
        })
    }

    fn load_many<'a>(&'a self, keys: &'a [&'a str]) -> StoreFuture<'a, Snapshot> {
        Box::pin(async move {
            tokio::task::yield_now().await;
            self.inner.load_many(keys).await
        })
    }

    fn commit<'a>(&'a self, ops: &'a [Op<'a>]) -> StoreFuture<'a, Commit> {
        Box::pin(async move {
            if let Some(hold) = self.next_hold() {
                // The test may be waiting in `reached`, or may not be
                // listening at all: either way, wait to be let go. A
                // dropped `Hold` lets go too.
                let _ = hold.arrived.send(true);
                let _ = hold.release.await;
            }
            tokio::task::yield_now().await;
            let out = self.inner.commit(ops).await?;
            if matches!(out, Commit::Conflict { .. }) {
                self.conflicts.fetch_add(1, Ordering::SeqCst);
            }
            Ok(out)
        })
    }
}

/// The facts of a Wycheproof test file in keyward's repository,
/// `tests/data/wycheproof/<file>` (written by `extract.py` there, with
/// their provenance).
///
/// # Panics
/// If the file is missing or is not JSON: the data is part of the
/// repository, so a missing file fails the test that asked for it, never
/// skips it. (A copy of keyward without its `tests/` folder has none.)
#[allow(
    clippy::panic,
    reason = "a test helper: missing test data fails the test"
)]
#[must_use]
pub fn wycheproof(file: &str) -> serde_json::Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/wycheproof")
        .join(file);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("Wycheproof vectors {}: {e}", path.display()));
    serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("Wycheproof vectors {}: {e}", path.display()))
}

/// Every test case of a Wycheproof document, each with its group, in file
/// order.
///
/// # Panics
/// If the document has no `testGroups` of `tests`, or if the number of
/// cases differs from its `numberOfTests`: no vector is silently left out.
///
/// ```
/// let doc = serde_json::json!({
///     "numberOfTests": 2,
///     "testGroups": [{"keySize": 256, "tests": [{"tcId": 1}, {"tcId": 2}]}],
/// });
/// let cases = keyward::testing::wycheproof_cases(&doc);
/// assert_eq!(cases[1].0["keySize"], 256);
/// assert_eq!(cases[1].1["tcId"], 2);
/// ```
#[allow(
    clippy::panic,
    reason = "a test helper: a malformed vector file fails the test"
)]
#[must_use]
pub fn wycheproof_cases(doc: &serde_json::Value) -> Vec<(&serde_json::Value, &serde_json::Value)> {
    let groups = doc["testGroups"]
        .as_array()
        .unwrap_or_else(|| panic!("a Wycheproof document without testGroups"));
    let mut cases = Vec::new();
    for group in groups {
        let tests = group["tests"]
            .as_array()
            .unwrap_or_else(|| panic!("a Wycheproof test group without tests"));
        cases.extend(tests.iter().map(|case| (group, case)));
    }
    let stated = doc["numberOfTests"]
        .as_u64()
        .unwrap_or_else(|| panic!("a Wycheproof document without numberOfTests"));
    assert!(
        u64::try_from(cases.len()).is_ok_and(|n| n == stated),
        "{} Wycheproof cases, but numberOfTests says {stated}",
        cases.len()
    );
    cases
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use std::time::Duration;

    use super::*;
    use crate::store::{MemoryStore, Swap};

    const TTL: Duration = Duration::from_secs(60);

    fn memory() -> Arc<dyn Store> {
        Arc::new(MemoryStore::new())
    }

    #[tokio::test]
    async fn counting_counts_each_kind_and_a_swap_as_a_commit() {
        let store = CountingStore::new(memory());
        assert!(matches!(
            store.swap("k", None, b"v", TTL).await.unwrap(),
            Swap::Swapped { .. }
        ));
        store.load("k").await.unwrap();
        store.load("k").await.unwrap();
        let snapshot = store.load_many(&["k", "absent"]).await.unwrap();
        assert_eq!(snapshot.records.len(), 2);
        let counts = store.take();
        assert_eq!(
            counts,
            Counts {
                loads: 2,
                load_manys: 1,
                commits: 1
            }
        );
        assert_eq!(counts.round_trips(), 4);
        assert_eq!(store.take(), Counts::default());
    }

    #[tokio::test]
    async fn faulty_fails_what_it_is_told_to_and_keeps_the_records() {
        let store = FaultyStore::new(memory());
        assert!(matches!(
            store.swap("k", None, b"v", TTL).await.unwrap(),
            Swap::Swapped { .. }
        ));
        store.fail_loads(true);
        assert!(matches!(
            store.load("k").await,
            Err(StoreError::Unavailable(_))
        ));
        assert!(matches!(
            store.load_many(&["k"]).await,
            Err(StoreError::Unavailable(_))
        ));
        let version = store.inner.load("k").await.unwrap().unwrap().version;
        assert!(matches!(
            store.swap("k", Some(version), b"w", TTL).await.unwrap(),
            Swap::Swapped { .. }
        ));
        store.down(false);
        store.fail_commits(true);
        assert_eq!(store.load("k").await.unwrap().unwrap().value, b"w");
        assert!(matches!(
            store.commit(&[Op::delete("k", version)]).await,
            Err(StoreError::Unavailable(_))
        ));
        store.down(true);
        assert!(store.load("k").await.is_err() && store.swap("k", None, b"x", TTL).await.is_err());
        store.down(false);
        assert_eq!(store.load("k").await.unwrap().unwrap().value, b"w");
    }

    #[tokio::test]
    async fn racing_holds_only_the_next_commit_until_released() {
        let store = Arc::new(RacingStore::new(memory()));
        let hold = store.hold_next_commit();
        let held = tokio::spawn({
            let store = Arc::clone(&store);
            async move { store.swap("k", None, b"held", TTL).await }
        });
        hold.reached().await;
        hold.reached().await;
        // Others pass while it waits.
        assert!(matches!(
            store.swap("k", None, b"other", TTL).await.unwrap(),
            Swap::Swapped { .. }
        ));
        assert!(!held.is_finished());
        hold.release();
        assert_eq!(held.await.unwrap().unwrap(), Swap::Conflict);
        assert_eq!(store.conflicts(), 1);
        assert_eq!(store.take_conflicts(), 1);
        assert_eq!(store.conflicts(), 0);
        assert_eq!(store.load("k").await.unwrap().unwrap().value, b"other");
    }

    #[tokio::test]
    async fn a_hold_released_or_dropped_early_lets_its_commit_pass() {
        let store = RacingStore::new(memory());
        store.hold_next_commit().release();
        drop(store.hold_next_commit());
        for key in ["a", "b", "c"] {
            assert!(matches!(
                store.swap(key, None, b"v", TTL).await.unwrap(),
                Swap::Swapped { .. }
            ));
        }
    }
}
