//! Throttles: memory stays bounded with a million distinct keys, and the
//! login throttle through the facade.
#![allow(clippy::unwrap_used, clippy::panic, clippy::arithmetic_side_effects)]

use std::sync::Arc;

use keyward::clock::ManualClock;
use keyward::{Error, Keyward, Throttle};

const T0: u64 = 1_700_000_000;

/// Resident memory of this process, in kB, from /proc (Linux only).
fn vm_rss_kb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn show(kb: Option<u64>) -> String {
    kb.map_or_else(|| "n/a".into(), |kb| format!("{} MiB", kb / 1024))
}

#[test]
fn a_million_keys_then_purge() {
    let clock = ManualClock::new(T0);
    // The code-send default: 1 per 60 s, no burst.
    let t = Throttle::new("million", 1, 60, 4_096, Arc::new(clock.clone())).unwrap();
    let before = vm_rss_kb();
    for i in 0..1_000_000u32 {
        t.check(&i.to_be_bytes()).unwrap();
    }
    // Every key is recent, so the purges that ran along the way kept all.
    assert_eq!(t.len(), 1_000_000);
    let full = vm_rss_kb();
    // A recent key is still throttled.
    assert!(matches!(
        t.check(&7u32.to_be_bytes()),
        Err(Error::Throttled { .. })
    ));
    // Two periods later the million are indistinguishable from fresh keys.
    clock.advance(120);
    for i in 0..1_000u32 {
        t.check(format!("late-{i}").as_bytes()).unwrap();
    }
    let kept = t.purge();
    let after = vm_rss_kb();
    println!(
        "governor: 1,000,000 keys held; after purge {kept} retained; VmRSS before {}, with 1M keys {}, after purge {}",
        show(before),
        show(full),
        show(after)
    );
    assert_eq!(kept, 1_000);
    assert_eq!(t.len(), 1_000);
}

#[test]
fn keys_stay_bounded_without_an_explicit_purge() {
    let clock = ManualClock::new(T0);
    let t = Throttle::new("rolling", 1, 1, 1_024, Arc::new(clock.clone())).unwrap();
    let mut most = 0;
    for i in 0..1_000_000u32 {
        if i % 1_000 == 0 {
            clock.advance(1);
            most = most.max(t.len());
        }
        t.check(&i.to_be_bytes()).unwrap();
    }
    println!("governor: 1,000,000 keys over 1,000 s at 1 key/ms, period 1 s: at most {most} held");
    // Keys live two periods (2,000 keys here); the purge waits as many
    // calls as the keys it kept, so at most about twice that plus the
    // purge interval are ever held. Without purging it would be 1,000,000.
    assert!(most <= 8_192, "{most} keys held");
    assert!(most >= 2_000, "{most}: recent keys must be kept");
}

#[test]
fn login_throttle_through_the_facade() {
    let clock = ManualClock::new(T0);
    let kw = Keyward::builder()
        .clock(Arc::new(clock.clone()))
        .build()
        .unwrap();
    for _ in 0..10 {
        kw.throttles().check_login("ip:203.0.113.7").unwrap();
    }
    match kw.throttles().check_login("ip:203.0.113.7") {
        Err(Error::Throttled { retry_after }) => assert_eq!(retry_after.as_secs(), 6),
        other => panic!("{other:?}"),
    }
    kw.throttles().check_login("ip:198.51.100.1").unwrap();
    clock.advance(6);
    kw.throttles().check_login("ip:203.0.113.7").unwrap();
    assert!(kw.throttles().check_login("ip:203.0.113.7").is_err());
    assert_eq!(kw.throttles().login().len(), 2);
}

/// The former name of `throttles`, kept for one release, reaches the same
/// throttles.
#[test]
#[allow(deprecated)]
fn the_deprecated_throttle_forwards_to_throttles() {
    let kw = Keyward::builder().build().unwrap();
    assert!(std::ptr::eq(kw.throttle(), kw.throttles()));
}
