//! Rate-limit checks per second, in one group so that the ratios come
//! from one run: governor's in-process `Throttle::check` beside
//! `Limits::check` on each store, each allowed and denied.
//!
//! - allowed: a limit that never denies here (1,000,000 a year, all at
//!   once), cycling over 1,024 keys. Every key's record is live when it is
//!   checked again (each check moves its arrival time 31.5 s on), so an
//!   allowed check is one load of a record and one compare-and-swap on it.
//!   The governor row has a burst of 1,000,000 and earns one back a second.
//! - denied, deny cache: one exhausted key (1 an hour, burst 1). After the
//!   first denial this process's deny cache refuses the key with no store
//!   access.
//! - denied, no cache: the same key through `Limits::without_deny_cache`:
//!   one load each.
//!
//! Stores: memory, SQLite (as `SqliteStore::open` opens it, on a file
//! under `target/tmp`, not in a tmpfs), PostgreSQL and Redis over loopback
//! (`$KEYWARD_POSTGRES_URL`, `$KEYWARD_REDIS_URL`; left out with one
//! `SKIPPED:` line when they do not answer). One check at a time from one
//! task, so on a network store a check is its round trips' latency. Before
//! timing, every row's first check must give the outcome it measures.
//! Throughput is checks per second.
#![allow(missing_docs, clippy::unwrap_used, clippy::arithmetic_side_effects)]

#[macro_use]
mod support;

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::measurement::Measurement;
use criterion::{Criterion, Throughput};
use keyward::throttle::{DEFAULT_PURGE_EVERY, Throttle};
use keyward::{Allowance, Error, JwtAlg, KeyRing, Keyward, Limit, Limits, SystemClock};

/// Keys the allowed rows cycle over.
const KEYS: usize = 1_024;
/// Never denies in a run: a key would need a million checks.
const ALLOW: Limit = Limit::new("bench_allow", 1_000_000, Duration::from_secs(365 * 86_400));
/// One at once, then one an hour: exhausted by one check.
const DENY: Limit = Limit::new("bench_deny", 1, Duration::from_secs(3_600)).burst(1);
/// The exhausted key of the denied rows.
const DENIED_KEY: &str = "203.0.113.7";

fn is_rate_limited(result: &Result<Allowance, Error>) -> bool {
    matches!(result, Err(Error::RateLimited { .. }))
}

fn bench<M: Measurement>(c: &mut Criterion<M>) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let keys: Vec<String> = (0..KEYS).map(|i| format!("198.51.100.{i}")).collect();

    // The SQLite file lives under target/, not in a tmpfs.
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let stores = support::services::stores(&rt, dir.path(), "limits");

    // Each store's limits, checked before timing: the allowed limit
    // allows, the key is exhausted after one check, the deny cache holds
    // it, and the uncached view is refused by the store.
    let mut limits: Vec<(&str, Limits, Limits)> = Vec::new();
    for (name, store) in stores {
        let kw = Keyward::builder()
            .keys(KeyRing::generate(JwtAlg::EdDSA).unwrap())
            .shared_store(store)
            .build_partial()
            .unwrap();
        let cached = kw.limits().unwrap().clone();
        let uncached = cached.without_deny_cache();
        assert!(
            rt.block_on(cached.check(&ALLOW, &keys[0])).is_ok(),
            "{name}: allowed"
        );
        assert!(
            rt.block_on(cached.check(&DENY, DENIED_KEY)).is_ok(),
            "{name}: first"
        );
        assert!(
            is_rate_limited(&rt.block_on(cached.check(&DENY, DENIED_KEY))),
            "{name}: denied"
        );
        assert_eq!(cached.cached_denials(), 1, "{name}: the denial is cached");
        assert!(
            is_rate_limited(&rt.block_on(uncached.check(&DENY, DENIED_KEY))),
            "{name}: denied without the cache"
        );
        assert_eq!(uncached.cached_denials(), 0, "{name}: no cache");
        limits.push((name, cached, uncached));
    }

    let clock = Arc::new(SystemClock);
    let allow_throttle = Throttle::new(
        "bench_allow",
        1_000_000,
        1,
        DEFAULT_PURGE_EVERY,
        clock.clone(),
    )
    .unwrap();
    let deny_throttle = Throttle::new("bench_deny", 1, 3_600, DEFAULT_PURGE_EVERY, clock).unwrap();
    allow_throttle.check(keys[0].as_bytes()).unwrap();
    deny_throttle.check(DENIED_KEY.as_bytes()).unwrap();
    assert!(
        matches!(
            deny_throttle.check(DENIED_KEY.as_bytes()),
            Err(Error::Throttled { .. })
        ),
        "governor: denied"
    );

    let mut group = c.benchmark_group("limits");
    group.throughput(Throughput::Elements(1));
    group.bench_function("governor: allowed", |b| {
        let mut next = keys.iter().cycle();
        b.iter(|| {
            let key = next.next().unwrap();
            allow_throttle.check(black_box(key.as_bytes())).unwrap();
        });
    });
    group.bench_function("governor: denied", |b| {
        b.iter(|| {
            black_box(
                deny_throttle
                    .check(black_box(DENIED_KEY.as_bytes()))
                    .unwrap_err(),
            )
        });
    });
    for (name, cached, uncached) in &limits {
        group.bench_function(format!("{name}: allowed"), |b| {
            let mut next = keys.iter().cycle();
            b.iter(|| {
                let key = next.next().unwrap();
                black_box(rt.block_on(cached.check(&ALLOW, black_box(key))).unwrap())
            });
        });
        group.bench_function(format!("{name}: denied, deny cache"), |b| {
            b.iter(|| {
                black_box(
                    rt.block_on(cached.check(&DENY, black_box(DENIED_KEY)))
                        .unwrap_err(),
                )
            });
        });
        group.bench_function(format!("{name}: denied, no cache"), |b| {
            b.iter(|| {
                black_box(
                    rt.block_on(uncached.check(&DENY, black_box(DENIED_KEY)))
                        .unwrap_err(),
                )
            });
        });
    }
    group.finish();
}

clock_main!(bench);
