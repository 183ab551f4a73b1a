//! The GCRA rule against a token-bucket model with a manual clock, the
//! deny cache against no cache, and the service's round trips over a
//! counting `MemoryStore`.

use std::sync::Arc;
use std::time::Duration;

use proptest::prelude::*;

use super::gcra::{Rule, Verdict, decide};
use super::*;
use crate::clock::ManualClock;
use crate::store::testing::{CountingStore, Counts, FaultyStore};
use crate::store::{MemoryStore, Store};
use crate::{JwtAlg, KeyRing, Keyward};

const SEC: u64 = 1_000_000_000;
const T0_MS: u64 = 1_700_000_000_000;

fn rule(emission_secs: u64, burst: u32) -> Rule {
    Rule {
        emission_ns: emission_secs * SEC,
        burst,
    }
}

/// Applies a request to `tat` as the service does: an allowed verdict
/// writes, a denial leaves it.
fn apply(rule: Rule, tat: &mut Option<u64>, now: u64, cost: u32) -> Verdict {
    let v = decide(rule, *tat, now, cost);
    if let Verdict::Allow { tat: next, .. } = v {
        *tat = Some(next);
    }
    v
}

#[test]
fn a_burst_then_one_per_emission() {
    let r = rule(6, 10);
    let now = 1_000 * SEC;
    let mut tat = None;
    for left in (0..10).rev() {
        match apply(r, &mut tat, now, 1) {
            Verdict::Allow {
                remaining,
                reset_after_ns,
                ..
            } => {
                assert_eq!(remaining, left);
                assert_eq!(reset_after_ns, u64::from(10 - left) * 6 * SEC);
            }
            v => panic!("{v:?}"),
        }
    }
    let before = tat;
    assert_eq!(
        apply(r, &mut tat, now, 1),
        Verdict::Deny {
            retry_after_ns: 6 * SEC
        }
    );
    assert_eq!(tat, before, "a denial changes nothing");
    // One emission later exactly one more is allowed.
    assert!(matches!(
        apply(r, &mut tat, now + 6 * SEC - 1, 1),
        Verdict::Deny { retry_after_ns: 1 }
    ));
    assert!(matches!(
        apply(r, &mut tat, now + 6 * SEC, 1),
        Verdict::Allow { remaining: 0, .. }
    ));
    assert!(matches!(
        apply(r, &mut tat, now + 6 * SEC, 1),
        Verdict::Deny { .. }
    ));
    // After a full refill the whole burst is back.
    assert!(matches!(
        apply(r, &mut tat, now + 66 * SEC, 10),
        Verdict::Allow { remaining: 0, .. }
    ));
}

#[test]
fn a_cost_takes_that_many_units_and_a_denied_cost_waits_for_all_of_them() {
    let r = rule(1, 5);
    let mut tat = None;
    assert!(matches!(
        apply(r, &mut tat, 0, 3),
        Verdict::Allow { remaining: 2, .. }
    ));
    assert_eq!(
        apply(r, &mut tat, 0, 3),
        Verdict::Deny {
            retry_after_ns: SEC
        }
    );
    assert!(matches!(
        apply(r, &mut tat, 0, 2),
        Verdict::Allow { remaining: 0, .. }
    ));
}

#[test]
fn a_stale_record_is_a_full_bucket() {
    let r = rule(1, 3);
    // A TAT long past (a record that outlived its TTL on a lax backend).
    assert!(matches!(
        decide(r, Some(5), 1_000 * SEC, 3),
        Verdict::Allow { remaining: 0, .. }
    ));
}

/// The model: a token bucket holding credit in nanoseconds, at most
/// `burst × emission`; a request of `cost` needs `cost × emission`.
#[derive(Debug)]
struct Bucket {
    credit: u64,
    at: u64,
}

impl Bucket {
    fn take(&mut self, r: Rule, now: u64, cost: u32) -> bool {
        let span = r.emission_ns * u64::from(r.burst);
        self.credit = (self.credit + (now - self.at)).min(span);
        self.at = now;
        let need = r.emission_ns * u64::from(cost);
        if self.credit >= need {
            self.credit -= need;
            true
        } else {
            false
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    /// GCRA and the token bucket agree on every request of any pattern.
    #[test]
    fn gcra_is_the_token_bucket(
        emission_ms in 1u64..5_000,
        burst in 1u32..20,
        steps in proptest::collection::vec((0u64..10_000, 1u32..20), 1..200),
    ) {
        let r = Rule { emission_ns: emission_ms * 1_000_000, burst };
        let mut now = 1_000 * SEC;
        let mut tat = None;
        let mut bucket = Bucket { credit: r.emission_ns * u64::from(burst), at: now };
        for (dt_ms, cost) in steps {
            now += dt_ms * 1_000_000;
            let cost = cost.min(burst);
            let before = tat;
            let v = apply(r, &mut tat, now, cost);
            prop_assert_eq!(matches!(v, Verdict::Allow { .. }), bucket.take(r, now, cost));
            if let Verdict::Deny { retry_after_ns } = v {
                prop_assert_eq!(tat, before, "a denial changes nothing");
                // Waiting exactly retry_after is enough, and one ns less is not.
                let after = matches!(decide(r, tat, now + retry_after_ns, cost), Verdict::Allow { .. });
                let before = matches!(decide(r, tat, now + retry_after_ns - 1, cost), Verdict::Deny { .. });
                prop_assert!(after && before, "retry_after {} is the exact wait", retry_after_ns);
            }
        }
    }

    /// Unit requests at any arrival times: never more than burst +
    /// elapsed × rate. A greedy client, who asks again at once until
    /// refused and never leaves the bucket full for long, gets exactly
    /// that, within one.
    #[test]
    fn allowed_is_burst_plus_elapsed_times_rate(
        emission_ms in 1u64..5_000,
        burst in 1u32..20,
        gaps in proptest::collection::vec(0u64..10_000_000_000, 1..100),
        greedy in any::<bool>(),
    ) {
        let r = Rule { emission_ns: emission_ms * 1_000_000, burst };
        let mut now = 1_000 * SEC;
        let mut start = None;
        let mut tat = None;
        let mut allowed = 0u64;
        for gap in gaps {
            // A greedy client comes back before the bucket could overflow.
            now += if greedy { gap % (r.span_ns() - r.emission_ns + 1) } else { gap };
            // Time counts from the first request (a full bucket before it
            // holds no more than full).
            let start = *start.get_or_insert(now);
            loop {
                let v = apply(r, &mut tat, now, 1);
                if matches!(v, Verdict::Allow { .. }) {
                    allowed += 1;
                }
                if !greedy || matches!(v, Verdict::Deny { .. }) {
                    break;
                }
            }
            let bound = u64::from(burst) + (now - start) / r.emission_ns;
            prop_assert!(allowed <= bound, "{} allowed, bound {}", allowed, bound);
            if greedy {
                prop_assert!(allowed + 1 >= bound, "{} allowed, bound {}", allowed, bound);
            }
        }
    }
}

#[test]
fn limits_are_checked_when_used() {
    let ok = Limit::new("ok", 10, Duration::from_secs(60));
    assert!(ok.validate().is_ok());
    for (bad, what) in [
        (Limit::new("", 1, Duration::from_secs(1)), "name"),
        (Limit::new("Upper", 1, Duration::from_secs(1)), "name"),
        (Limit::new("a b", 1, Duration::from_secs(1)), "name"),
        (
            Limit::new(
                "abcdefghijklmnopqrstuvwxyz0123456",
                1,
                Duration::from_secs(1),
            ),
            "name",
        ),
        (Limit::new("x", 0, Duration::from_secs(1)), "count"),
        (Limit::new("x", 1_000_001, Duration::from_secs(1)), "count"),
        (Limit::new("x", 1, Duration::ZERO), "period"),
        (
            Limit::new("x", 1, MAX_PERIOD + Duration::from_secs(1)),
            "period",
        ),
        (ok.clone().burst(0), "burst"),
        (ok.burst(1_000_001), "burst"),
        (Limit::new("x", 1, MAX_PERIOD).burst(11), "ten years"),
    ] {
        match bad.validate() {
            Err(Error::Limit(LimitError::BadLimit(msg))) => {
                assert!(msg.contains(what), "{bad:?}: {msg}");
            }
            other => panic!("{bad:?}: {other:?}"),
        }
    }
    // The emission interval rounds up: a limit never allows above its rate.
    let third = Limit::new("x", 3, Duration::from_secs(1)).rule().unwrap();
    assert_eq!(third.emission_ns, 333_333_334);
}

struct Fixture {
    kw: Keyward,
    clock: ManualClock,
    counts: Arc<CountingStore>,
}

fn fixture_on(store: Arc<dyn Store>) -> Fixture {
    let clock = ManualClock::new(0);
    clock.set_ms(T0_MS);
    let counts = Arc::new(CountingStore::new(store));
    let kw = Keyward::builder()
        .keys(KeyRing::generate(JwtAlg::EdDSA).unwrap())
        .shared_store(counts.clone())
        .clock(Arc::new(clock.clone()))
        .build_partial()
        .unwrap();
    Fixture { kw, clock, counts }
}

fn fixture() -> Fixture {
    fixture_on(Arc::new(MemoryStore::new()))
}

const FIVE_A_MINUTE: Limit = Limit::new("five", 5, Duration::from_secs(60));

fn counts(loads: usize, commits: usize) -> Counts {
    Counts {
        loads: 0,
        load_manys: loads,
        commits,
    }
}

#[tokio::test]
async fn round_trips_allowed_denied_and_cached() {
    let f = fixture();
    let limits = f.kw.limits().unwrap();
    for left in (0..5).rev() {
        let a = limits.check(&FIVE_A_MINUTE, "203.0.113.7").await.unwrap();
        assert_eq!(a.remaining, left);
        assert!(!a.unchecked);
        assert_eq!(
            f.counts.take(),
            counts(1, 1),
            "an allowed check: 1 load, 1 commit"
        );
    }
    let Err(Error::RateLimited { retry_after }) = limits.check(&FIVE_A_MINUTE, "203.0.113.7").await
    else {
        panic!("the sixth is denied")
    };
    assert_eq!(retry_after, Duration::from_secs(12));
    assert_eq!(
        f.counts.take(),
        counts(1, 0),
        "a denied check: 1 load, no write"
    );
    for _ in 0..100 {
        assert!(matches!(
            limits.check(&FIVE_A_MINUTE, "203.0.113.7").await,
            Err(Error::RateLimited { .. })
        ));
    }
    assert_eq!(f.counts.take(), Counts::default(), "the deny cache answers");
    assert_eq!(limits.cached_denials(), 1);
    // Without the cache each denial is one load.
    let uncached = limits.without_deny_cache();
    assert!(uncached.check(&FIVE_A_MINUTE, "203.0.113.7").await.is_err());
    assert_eq!(f.counts.take(), counts(1, 0));
    // Another key is not affected.
    limits.check(&FIVE_A_MINUTE, "198.51.100.1").await.unwrap();
    f.counts.take();
    // Twelve seconds on, one more is allowed: the cache lets it through.
    f.clock.advance(12);
    let a = limits.check(&FIVE_A_MINUTE, "203.0.113.7").await.unwrap();
    assert_eq!(a.remaining, 0);
    assert_eq!(a.reset_after, Duration::from_secs(60));
    assert_eq!(f.counts.take(), counts(1, 1));
}

#[tokio::test]
async fn keys_are_tagged_and_limits_are_apart() {
    let store = Arc::new(MemoryStore::new());
    let f = fixture_on(store.clone());
    let limits = f.kw.limits().unwrap();
    let other = Limit::new("other", 1, Duration::from_secs(60));
    limits.check(&other, "alice@example.com").await.unwrap();
    // The same key under another limit has its own count.
    limits
        .check(&FIVE_A_MINUTE, "alice@example.com")
        .await
        .unwrap();
    assert!(limits.check(&other, "alice@example.com").await.is_err());
    let key = limits.record_key(&other, "alice@example.com").unwrap();
    assert!(key.starts_with("kw:rl:other:"), "{key}");
    assert!(!key.contains("alice"), "{key}");
    assert_eq!(key.len(), "kw:rl:other:".len() + 32);
    assert!(store.load(&key).await.unwrap().is_some());
}

#[test]
fn the_record_lives_until_the_bucket_is_full() {
    use super::service::record_ttl;
    assert_eq!(record_ttl(24 * SEC), Duration::from_secs(24));
    assert_eq!(record_ttl(24 * SEC + 1), Duration::from_millis(24_001));
    assert_eq!(record_ttl(1), Duration::from_millis(1));
}

#[tokio::test]
async fn bad_input_is_refused_before_the_store() {
    let f = fixture();
    let limits = f.kw.limits().unwrap();
    for (cost, key) in [(0, "k"), (6, "k")] {
        assert!(matches!(
            limits.check_cost(&FIVE_A_MINUTE, key, cost).await,
            Err(Error::Limit(LimitError::BadCost { burst: 5 }))
        ));
    }
    let long = "k".repeat(1_025);
    for key in ["", long.as_str()] {
        assert!(matches!(
            limits.check(&FIVE_A_MINUTE, key).await,
            Err(Error::Limit(LimitError::BadKey))
        ));
    }
    assert!(matches!(
        limits
            .check(&Limit::new("Bad", 1, Duration::from_secs(1)), "k")
            .await,
        Err(Error::Limit(LimitError::BadLimit(_)))
    ));
    assert_eq!(f.counts.take(), Counts::default());
    // A cost of the whole burst is fine.
    limits.check_cost(&FIVE_A_MINUTE, "k", 5).await.unwrap();
}

#[tokio::test]
async fn reset_forgets_the_count() {
    let f = fixture();
    let limits = f.kw.limits().unwrap();
    let one = Limit::new("one", 1, Duration::from_secs(3_600));
    assert!(!limits.reset(&one, "k").await.unwrap(), "nothing to forget");
    limits.check(&one, "k").await.unwrap();
    assert!(limits.check(&one, "k").await.is_err());
    assert_eq!(limits.cached_denials(), 1);
    assert!(limits.reset(&one, "k").await.unwrap());
    assert_eq!(limits.cached_denials(), 0);
    limits.check(&one, "k").await.unwrap();
}

#[tokio::test]
async fn a_store_failure_fails_closed_unless_the_limit_fails_open() {
    let faulty = Arc::new(FaultyStore::new(Arc::new(MemoryStore::new())));
    let f = fixture_on(faulty.clone());
    let limits = f.kw.limits().unwrap();
    faulty.down(true);
    assert!(matches!(
        limits.check(&FIVE_A_MINUTE, "k").await,
        Err(Error::Store(_))
    ));
    let open = FIVE_A_MINUTE.fail_open();
    let a = limits.check(&open, "k").await.unwrap();
    assert!(a.unchecked);
    faulty.down(false);
    assert!(!limits.check(&open, "k").await.unwrap().unchecked);
}

const ONE_AN_HOUR: Limit = Limit::new("hourly", 1, Duration::from_secs(3_600));

#[tokio::test]
async fn both_limits_in_one_commit_all_or_nothing() {
    let f = fixture();
    let limits = f.kw.limits().unwrap();
    let (a, b) = limits
        .check_both((&FIVE_A_MINUTE, "203.0.113.7"), (&ONE_AN_HOUR, "alice"))
        .await
        .unwrap();
    assert_eq!((a.remaining, b.remaining), (4, 0));
    assert_eq!(
        f.counts.take(),
        counts(1, 1),
        "one load, one commit for both"
    );
    // The second limit refuses: nothing is counted against the first.
    let Err(Error::RateLimited { retry_after }) = limits
        .check_both((&FIVE_A_MINUTE, "203.0.113.7"), (&ONE_AN_HOUR, "alice"))
        .await
    else {
        panic!("the hourly limit refuses")
    };
    assert_eq!(retry_after, Duration::from_secs(3_600));
    assert_eq!(f.counts.take(), counts(1, 0), "a refusal writes nothing");
    let a = limits.check(&FIVE_A_MINUTE, "203.0.113.7").await.unwrap();
    assert_eq!(a.remaining, 3, "the refused pair took no unit of the first");
    f.counts.take();
    // The refusal is cached: no round trip while it holds.
    assert!(matches!(
        limits
            .check_both((&FIVE_A_MINUTE, "198.51.100.1"), (&ONE_AN_HOUR, "alice"))
            .await,
        Err(Error::RateLimited { .. })
    ));
    assert_eq!(f.counts.take(), Counts::default(), "the deny cache answers");
    // Each record is the one `check` takes from.
    assert!(limits.check(&ONE_AN_HOUR, "alice").await.is_err());
    f.clock.advance(3_600);
    limits.check(&ONE_AN_HOUR, "alice").await.unwrap();
}

#[tokio::test]
async fn both_refusing_waits_for_the_longer() {
    let f = fixture();
    let limits = f.kw.limits().unwrap().without_deny_cache();
    for _ in 0..5 {
        limits.check(&FIVE_A_MINUTE, "k").await.unwrap();
    }
    limits.check(&ONE_AN_HOUR, "k").await.unwrap();
    for pair in [
        ((&FIVE_A_MINUTE, "k"), (&ONE_AN_HOUR, "k")),
        ((&ONE_AN_HOUR, "k"), (&FIVE_A_MINUTE, "k")),
    ] {
        let Err(Error::RateLimited { retry_after }) = limits.check_both(pair.0, pair.1).await
        else {
            panic!("both refuse")
        };
        assert_eq!(retry_after, Duration::from_secs(3_600));
    }
    // Only the first refusing: its wait.
    let Err(Error::RateLimited { retry_after }) = limits
        .check_both((&FIVE_A_MINUTE, "k"), (&ONE_AN_HOUR, "other"))
        .await
    else {
        panic!("the first refuses")
    };
    assert_eq!(retry_after, Duration::from_secs(12));
}

#[tokio::test]
async fn both_refuses_bad_input_and_one_record_twice() {
    let f = fixture();
    let limits = f.kw.limits().unwrap();
    assert!(matches!(
        limits
            .check_both((&FIVE_A_MINUTE, "k"), (&FIVE_A_MINUTE, "k"))
            .await,
        Err(Error::Limit(LimitError::BadKey))
    ));
    assert!(matches!(
        limits
            .check_both((&FIVE_A_MINUTE, ""), (&ONE_AN_HOUR, "k"))
            .await,
        Err(Error::Limit(LimitError::BadKey))
    ));
    assert_eq!(f.counts.take(), Counts::default());
    // The same key under two limits is two records.
    limits
        .check_both((&FIVE_A_MINUTE, "k"), (&ONE_AN_HOUR, "k"))
        .await
        .unwrap();
}

#[tokio::test]
async fn both_fail_open_only_when_both_limits_do() {
    let faulty = Arc::new(FaultyStore::new(Arc::new(MemoryStore::new())));
    let f = fixture_on(faulty.clone());
    let limits = f.kw.limits().unwrap();
    faulty.down(true);
    let open = FIVE_A_MINUTE.fail_open();
    assert!(matches!(
        limits.check_both((&open, "k"), (&ONE_AN_HOUR, "k")).await,
        Err(Error::Store(_))
    ));
    let hourly_open = ONE_AN_HOUR.fail_open();
    let (a, b) = limits
        .check_both((&open, "k"), (&hourly_open, "k"))
        .await
        .unwrap();
    assert!(a.unchecked && b.unchecked);
}

#[derive(Debug, Clone)]
enum Step {
    Wait(u64),
    Check { key: u8, cost: u32 },
    Reset { key: u8 },
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => (0u64..30_000).prop_map(Step::Wait),
        6 => (0u8..3, 1u32..4).prop_map(|(key, cost)| Step::Check { key, cost }),
        1 => (0u8..3).prop_map(|key| Step::Reset { key }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// The deny cache is never wrong: a cached and an uncached limiter
    /// given the same sequence give the same verdicts, and the cached one
    /// makes no more store calls.
    #[test]
    fn the_deny_cache_never_refuses_what_the_store_allows(
        steps in proptest::collection::vec(step(), 1..80),
        count in 1u32..4,
        period_s in 1u64..60,
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        rt.block_on(async {
            let limit = Limit::new("p", count, Duration::from_secs(period_s)).burst(3);
            let cached = fixture();
            let plain = fixture();
            let uncached = plain.kw.limits().unwrap().without_deny_cache();
            let with = cached.kw.limits().unwrap();
            for s in steps {
                match s {
                    Step::Wait(ms) => {
                        cached.clock.advance_ms(ms);
                        plain.clock.advance_ms(ms);
                    }
                    Step::Check { key, cost } => {
                        let key = key.to_string();
                        let a = with.check_cost(&limit, &key, cost).await;
                        let b = uncached.check_cost(&limit, &key, cost).await;
                        prop_assert_eq!(a.is_ok(), b.is_ok(), "{:?} vs {:?}", a, b);
                        if let (Err(Error::RateLimited { retry_after: x }), Err(Error::RateLimited { retry_after: y })) = (&a, &b) {
                            prop_assert!(x <= y, "the cache never asks for a longer wait");
                        }
                    }
                    Step::Reset { key } => {
                        let key = key.to_string();
                        with.reset(&limit, &key).await.unwrap();
                        uncached.reset(&limit, &key).await.unwrap();
                    }
                }
            }
            prop_assert!(cached.counts.take().round_trips() <= plain.counts.take().round_trips());
            Ok(())
        })?;
    }
}

#[test]
fn the_deny_cache_stays_within_its_cap() {
    let cache = super::cache::DenyCache::new(3);
    let r = rule(1, 1);
    for (i, key) in ["a", "b", "c"].iter().enumerate() {
        cache.deny(key, r, 10 * SEC, 0, u64::try_from(i).unwrap());
    }
    cache.deny("d", r, 10 * SEC, 0, 5);
    assert_eq!(cache.len(), 3, "full of live denials: d is not cached");
    assert!(cache.denied("d", r, 1, 5).is_none());
    // Once the first lapse, a sweep makes room.
    cache.deny("e", r, 10 * SEC, 0, 10 * SEC + 2);
    assert_eq!(cache.len(), 1);
    assert!(cache.denied("e", r, 1, 10 * SEC + 3).is_some());
}
