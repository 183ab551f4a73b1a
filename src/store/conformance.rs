//! The conformance suite every backend runs against itself.
//!
//! ```no_run
//! # async fn demo() {
//! let store = std::sync::Arc::new(keyward::store::MemoryStore::new());
//! keyward::store::conformance::run(store).await;
//! # }
//! ```

#![allow(
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a test suite: a failed check panics, as assert! does"
)]

use std::sync::Arc;
use std::time::Duration;

use super::{
    Commit, MAX_COMMIT_OPS, MAX_KEY_LEN, MAX_TTL, MAX_VALUE_LEN, Op, Store, StoreError, Swap,
};

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
    longest_ttl(&*store, &ns).await;
    large_values(&*store, &ns).await;
    bad_keys(&*store).await;
    load_many(&*store, &ns).await;
    load_one(&*store, &ns).await;
    concurrency(Arc::clone(&store), &ns, 16, 50).await;
    writes_are_reported_as_made(&*store, &ns).await;
    commit_all_or_nothing(&*store, &ns).await;
    commit_guards(&*store, &ns).await;
    commit_deletes(&*store, &ns).await;
    commit_refusals(&*store, &ns).await;
    commit_concurrency(Arc::clone(&store), &ns, 8, 30).await;
    commit_update_with_checks(Arc::clone(&store), &ns, 8, 30).await;
    clock_is_monotonic(&*store, &ns).await;
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
    let longer = MAX_TTL.checked_add(Duration::from_secs(1)).expect("fits");
    assert!(matches!(
        store.swap("ok", None, b"x", longer).await,
        Err(StoreError::BadTtl)
    ));
}

/// A record written with [`MAX_TTL`] (a century) is kept, and so is one
/// whose TTL a later commit sets to it.
pub async fn longest_ttl(store: &dyn Store, ns: &str) {
    let key = format!("{ns}.century");
    let v = swapped(
        store
            .swap(&key, None, b"kept", MAX_TTL)
            .await
            .expect("store call failed"),
    );
    let committed = store
        .commit(&[Op::write(&key, Some(v), b"still", MAX_TTL)])
        .await
        .expect("store call failed");
    assert!(
        matches!(committed, Commit::Committed { .. }),
        "{committed:?}"
    );
    let read = store.load(&key).await.expect("store call failed");
    assert_eq!(read.map(|r| r.value), Some(b"still".to_vec()));
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
        .records
        .iter()
        .map(|r| r.as_ref().map(|r| r.value.as_slice()))
        .collect();
    assert_eq!(values, [Some(b"C".as_slice()), None, Some(b"A".as_slice())]);
    assert!(
        store
            .load_many(&[])
            .await
            .expect("store call failed")
            .records
            .is_empty()
    );
}

/// `load_one` answers as `load_many` of the one key does: the record, or
/// `None`, and a store clock exactly when `load_many` reports one.
pub async fn load_one(store: &dyn Store, ns: &str) {
    let (present, absent) = (format!("{ns}.o.present"), format!("{ns}.o.absent"));
    let version = swapped(
        store
            .swap(&present, None, b"P", TTL)
            .await
            .expect("store call failed"),
    );
    let many = store
        .load_many(&[&present])
        .await
        .expect("store call failed");
    let (record, now_ms) = store.load_one(&present).await.expect("store call failed");
    let record = record.expect("the record is there");
    assert_eq!(
        (record.version, record.value.as_slice()),
        (version, b"P".as_slice())
    );
    assert_eq!(now_ms.is_some(), many.now_ms.is_some(), "the same clock");
    if let (Some(one), Some(many)) = (now_ms, many.now_ms) {
        assert!(one >= many, "the store clock went back: {one} < {many}");
    }
    let (record, _) = store.load_one(&absent).await.expect("store call failed");
    assert!(record.is_none());
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

fn committed(c: Commit) -> Vec<Option<u64>> {
    match c {
        Commit::Committed { versions } => versions,
        Commit::Conflict { index } => panic!("expected a commit, got a conflict at {index}"),
    }
}

async fn values(store: &dyn Store, keys: &[&str]) -> Vec<Option<(u64, Vec<u8>)>> {
    store
        .load_many(keys)
        .await
        .expect("store call failed")
        .records
        .into_iter()
        .map(|r| r.map(|r| (r.version, r.value)))
        .collect()
}

/// A commit writes every record or none: a stale version, or an
/// existing record where absence was expected, at any position writes
/// nothing and names that position.
pub async fn commit_all_or_nothing(store: &dyn Store, ns: &str) {
    let keys: Vec<String> = (0..4).map(|i| format!("{ns}.c.all{i}")).collect();
    let k: Vec<&str> = keys.iter().map(String::as_str).collect();
    // Three records created in one commit; the fourth stays absent.
    let ops: Vec<Op<'_>> = k[..3]
        .iter()
        .map(|key| Op::write(key, None, b"0", TTL))
        .collect();
    let v = committed(store.commit(&ops).await.expect("store call failed"));
    assert_eq!(v.len(), 3);
    assert!(
        v.iter().all(Option::is_some),
        "writes report their versions"
    );
    let before = values(store, &k).await;
    assert_eq!(
        before
            .iter()
            .map(|r| r.as_ref().map(|(_, v)| v.as_slice()))
            .collect::<Vec<_>>(),
        [Some(b"0".as_slice()), Some(b"0"), Some(b"0"), None]
    );
    let current: Vec<Option<u64>> = before.iter().map(|r| r.as_ref().map(|(v, _)| *v)).collect();
    // A wrong expectation at each position in turn.
    for bad in 0..4 {
        let mut expected = current.clone();
        expected[bad] = match expected[bad] {
            Some(v) => Some(v.wrapping_add(1)),
            None => Some(1),
        };
        let ops: Vec<Op<'_>> = k
            .iter()
            .zip(&expected)
            .map(|(key, e)| Op::write(key, *e, b"1", TTL))
            .collect();
        assert_eq!(
            store.commit(&ops).await.expect("store call failed"),
            Commit::Conflict { index: bad },
            "a conflict at position {bad} is named"
        );
        assert_eq!(
            values(store, &k).await,
            before,
            "a conflict at {bad} wrote something"
        );
    }
    // Expecting absence of a live record conflicts too.
    let ops = [
        Op::write(k[3], None, b"1", TTL),
        Op::write(k[0], None, b"1", TTL),
    ];
    assert_eq!(
        store.commit(&ops).await.expect("store call failed"),
        Commit::Conflict { index: 1 }
    );
    assert_eq!(values(store, &k).await, before);
    // At the right versions, every write lands, each at a new version.
    let ops: Vec<Op<'_>> = k
        .iter()
        .zip(&current)
        .map(|(key, e)| Op::write(key, *e, b"2", TTL))
        .collect();
    let v = committed(store.commit(&ops).await.expect("store call failed"));
    let after = values(store, &k).await;
    for ((got, new), old) in after.iter().zip(&v).zip(&current) {
        let (version, value) = got.as_ref().expect("written");
        assert_eq!((Some(*version), value.as_slice()), (*new, b"2".as_slice()));
        assert_ne!(Some(*version), *old, "a write changes the version");
    }
}

/// A guard writes nothing, but its record must be at the expected version
/// (or absent) for the commit's writes to land.
pub async fn commit_guards(store: &dyn Store, ns: &str) {
    let (guard, target) = (format!("{ns}.c.guard"), format!("{ns}.c.target"));
    // Guarding an absent record.
    let v = committed(
        store
            .commit(&[
                Op::check(&guard, None),
                Op::write(&target, None, b"t1", TTL),
            ])
            .await
            .expect("store call failed"),
    );
    assert_eq!(v[0], None, "a check of an absent record reports no version");
    let t1 = v[1].expect("written");
    assert!(
        store
            .load(&guard)
            .await
            .expect("store call failed")
            .is_none(),
        "a check writes nothing"
    );
    // The guarded record appears: a guard on its absence now conflicts.
    let g1 = swapped(
        store
            .swap(&guard, None, b"g", TTL)
            .await
            .expect("store call failed"),
    );
    assert_eq!(
        store
            .commit(&[
                Op::check(&guard, None),
                Op::write(&target, Some(t1), b"t2", TTL)
            ])
            .await
            .expect("store call failed"),
        Commit::Conflict { index: 0 }
    );
    // A guard at its version passes, and leaves the guarded record as it was.
    let v = committed(
        store
            .commit(&[
                Op::write(&target, Some(t1), b"t2", TTL),
                Op::check(&guard, Some(g1)),
            ])
            .await
            .expect("store call failed"),
    );
    assert_eq!(v[1], Some(g1), "a check reports the version it found");
    let g = store
        .load(&guard)
        .await
        .expect("store call failed")
        .expect("present");
    assert_eq!((g.version, g.value.as_slice()), (g1, b"g".as_slice()));
    // Moved on: a guard at the old version conflicts.
    let _ = swapped(
        store
            .swap(&guard, Some(g1), b"g2", TTL)
            .await
            .expect("store call failed"),
    );
    let t2 = v[0];
    assert_eq!(
        store
            .commit(&[
                Op::write(&target, t2, b"t3", TTL),
                Op::check(&guard, Some(g1))
            ])
            .await
            .expect("store call failed"),
        Commit::Conflict { index: 1 }
    );
    assert_eq!(
        store
            .load(&target)
            .await
            .expect("store call failed")
            .expect("present")
            .value,
        b"t2"
    );
}

/// A delete at the current version removes the record, which can then be
/// created again at another version; a delete at a stale version, or of an
/// absent record, conflicts.
pub async fn commit_deletes(store: &dyn Store, ns: &str) {
    let (a, b) = (format!("{ns}.c.del.a"), format!("{ns}.c.del.b"));
    let v = committed(
        store
            .commit(&[
                Op::write(&a, None, b"a", TTL),
                Op::write(&b, None, b"b", TTL),
            ])
            .await
            .expect("store call failed"),
    );
    let (va, vb) = (v[0].expect("written"), v[1].expect("written"));
    assert_eq!(
        store
            .commit(&[Op::delete(&a, va.wrapping_add(1)), Op::delete(&b, vb)])
            .await
            .expect("store call failed"),
        Commit::Conflict { index: 0 }
    );
    assert!(
        store.load(&b).await.expect("store call failed").is_some(),
        "nothing deleted"
    );
    let v = committed(
        store
            .commit(&[Op::delete(&a, va), Op::write(&b, Some(vb), b"b2", TTL)])
            .await
            .expect("store call failed"),
    );
    assert_eq!(v[0], None, "a delete reports no version");
    assert!(
        store.load(&a).await.expect("store call failed").is_none(),
        "deleted"
    );
    assert_eq!(
        store
            .commit(&[Op::delete(&a, va)])
            .await
            .expect("store call failed"),
        Commit::Conflict { index: 0 },
        "a deleted record cannot be deleted again"
    );
    let again = swapped(
        store
            .swap(&a, None, b"again", TTL)
            .await
            .expect("store call failed"),
    );
    assert_ne!(again, va, "a recreated record gets a new version");
}

/// Commits no backend may run are refused, whole.
pub async fn commit_refusals(store: &dyn Store, ns: &str) {
    let key = format!("{ns}.c.refused");
    assert!(matches!(
        store.commit(&[]).await,
        Err(StoreError::BadCommit(_))
    ));
    assert!(matches!(
        store
            .commit(&[Op::write(&key, None, b"1", TTL), Op::check(&key, None)])
            .await,
        Err(StoreError::BadCommit(_))
    ));
    let keys: Vec<String> = (0..=MAX_COMMIT_OPS)
        .map(|i| format!("{ns}.c.many{i}"))
        .collect();
    let ops: Vec<Op<'_>> = keys.iter().map(|k| Op::check(k, None)).collect();
    assert!(matches!(
        store.commit(&ops).await,
        Err(StoreError::BadCommit(_))
    ));
    assert!(
        store.commit(&ops[..MAX_COMMIT_OPS]).await.is_ok(),
        "MAX_COMMIT_OPS is allowed"
    );
    assert!(matches!(
        store
            .commit(&[Op::write(&key, None, b"1", TTL), Op::check("bad key", None)])
            .await,
        Err(StoreError::BadKey)
    ));
    assert!(matches!(
        store
            .commit(&[Op::write(&key, None, b"1", Duration::ZERO)])
            .await,
        Err(StoreError::BadTtl)
    ));
    assert!(
        store.load(&key).await.expect("store call failed").is_none(),
        "nothing written"
    );
}

/// `tasks` tasks race, `rounds` times, to move two records together from
/// the same versions, each in a different order: one winner per round, and
/// the two records always move as one.
pub async fn commit_concurrency(store: Arc<dyn Store>, ns: &str, tasks: usize, rounds: usize) {
    let (a, b) = (format!("{ns}.c.race.a"), format!("{ns}.c.race.b"));
    let v = committed(
        store
            .commit(&[
                Op::write(&a, None, b"0", TTL),
                Op::write(&b, None, b"0", TTL),
            ])
            .await
            .expect("store call failed"),
    );
    let (mut va, mut vb) = (v[0], v[1]);
    for round in 1..=rounds {
        let mut handles = Vec::with_capacity(tasks);
        for task in 0..tasks {
            let (store, a, b) = (Arc::clone(&store), a.clone(), b.clone());
            handles.push(tokio::spawn(async move {
                let value = format!("{round}:{task}");
                let (wa, wb) = (
                    Op::write(&a, va, value.as_bytes(), TTL),
                    Op::write(&b, vb, value.as_bytes(), TTL),
                );
                let ops = if task % 2 == 0 { [wa, wb] } else { [wb, wa] };
                match store.commit(&ops).await.expect("store call failed") {
                    Commit::Committed { versions } if task % 2 == 0 => {
                        Some((versions[0], versions[1]))
                    }
                    Commit::Committed { versions } => Some((versions[1], versions[0])),
                    Commit::Conflict { .. } => None,
                }
            }));
        }
        let mut winners = Vec::new();
        for h in handles {
            if let Some(w) = h.await.expect("task panicked") {
                winners.push(w);
            }
        }
        assert_eq!(winners.len(), 1, "round {round}: exactly one winner");
        (va, vb) = winners[0];
        let now = values(&*store, &[&a, &b]).await;
        assert_eq!(now[0].as_ref().map(|r| r.0), va);
        assert_eq!(now[1].as_ref().map(|r| r.0), vb);
        assert_eq!(
            now[0].as_ref().map(|r| &r.1),
            now[1].as_ref().map(|r| &r.1),
            "round {round}: the two records moved as one"
        );
    }
}

/// One write to a live record guarded by checks of others (a refresh's
/// shape, which a backend may run as a single statement): an expired
/// record, written or checked, conflicts at its position; and of
/// concurrent commits at the same versions exactly one lands, each round,
/// while the checked record stays as it was.
pub async fn commit_update_with_checks(
    store: Arc<dyn Store>,
    ns: &str,
    tasks: usize,
    rounds: usize,
) {
    let (w, g) = (format!("{ns}.u.write"), format!("{ns}.u.guard"));
    let (short_w, short_g) = (format!("{ns}.u.short-w"), format!("{ns}.u.short-g"));
    let short = Duration::from_millis(300);
    let v = committed(
        store
            .commit(&[
                Op::write(&w, None, b"0", TTL),
                Op::write(&g, None, b"g", TTL),
                Op::write(&short_w, None, b"0", short),
                Op::write(&short_g, None, b"g", short),
            ])
            .await
            .expect("store call failed"),
    );
    let (vw, vg) = (v[0].expect("written"), v[1].expect("written"));
    let (vsw, vsg) = (v[2].expect("written"), v[3].expect("written"));
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    assert_eq!(
        store
            .commit(&[
                Op::write(&short_w, Some(vsw), b"1", TTL),
                Op::check(&g, Some(vg))
            ])
            .await
            .expect("store call failed"),
        Commit::Conflict { index: 0 },
        "an expired record is not at its old version"
    );
    assert_eq!(
        store
            .commit(&[
                Op::check(&g, Some(vg)),
                Op::check(&short_g, Some(vsg)),
                Op::write(&w, Some(vw), b"1", TTL)
            ])
            .await
            .expect("store call failed"),
        Commit::Conflict { index: 1 },
        "an expired guard is not at its old version"
    );
    // An expired guard counts as absent.
    let v = committed(
        store
            .commit(&[
                Op::check(&short_g, None),
                Op::write(&w, Some(vw), b"1", TTL),
            ])
            .await
            .expect("store call failed"),
    );
    assert_eq!(v[0], None);
    let mut vw = v[1].expect("written");
    assert_eq!(values(&*store, &[&w]).await[0], Some((vw, b"1".to_vec())));
    for round in 1..=rounds {
        let mut handles = Vec::with_capacity(tasks);
        for task in 0..tasks {
            let (store, w, g) = (Arc::clone(&store), w.clone(), g.clone());
            handles.push(tokio::spawn(async move {
                let value = format!("{round}:{task}");
                match store
                    .commit(&[
                        Op::check(&g, Some(vg)),
                        Op::write(&w, Some(vw), value.as_bytes(), TTL),
                    ])
                    .await
                    .expect("store call failed")
                {
                    Commit::Committed { versions } => {
                        assert_eq!(versions[0], Some(vg), "a check reports its version");
                        Some((versions[1].expect("written"), value))
                    }
                    Commit::Conflict { index } => {
                        assert_eq!(index, 1, "only the written record moved");
                        None
                    }
                }
            }));
        }
        let mut winners = Vec::new();
        for h in handles {
            if let Some(won) = h.await.expect("task panicked") {
                winners.push(won);
            }
        }
        assert_eq!(winners.len(), 1, "round {round}: exactly one winner");
        let (version, value) = winners.swap_remove(0);
        let now = values(&*store, &[&w, &g]).await;
        assert_eq!(now[0], Some((version, value.into_bytes())));
        assert_eq!(now[1], Some((vg, b"g".to_vec())), "a check writes nothing");
        vw = version;
    }
}

/// A store that keeps its own clock reports it with every `load_many`,
/// and it never goes backwards from one call to the next.
pub async fn clock_is_monotonic(store: &dyn Store, ns: &str) {
    let key = format!("{ns}.clock");
    let mut last: Option<u64> = None;
    for _ in 0..20 {
        let snapshot = store.load_many(&[&key]).await.expect("store call failed");
        match (last, snapshot.now_ms) {
            (_, None) => {
                assert!(last.is_none(), "a store's clock came and went");
                return;
            }
            (Some(before), Some(now)) => {
                assert!(now >= before, "the clock went back: {before} then {now}")
            }
            (None, Some(_)) => {}
        }
        last = snapshot.now_ms;
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let now = last.expect("a clock was read");
    let host = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_millis();
    let host = u64::try_from(host).expect("fits");
    // A store's clock is a real clock: within a day of this host's.
    assert!(
        now.abs_diff(host) < 86_400_000,
        "store clock {now} ms, host {host} ms"
    );
}
