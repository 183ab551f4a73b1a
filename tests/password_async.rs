//! The async password API: blocking-pool offload, the concurrency cap, and
//! shedding with `Busy`.
#![cfg(feature = "tokio")]
#![allow(clippy::unwrap_used, clippy::panic, clippy::arithmetic_side_effects)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use keyward::{Error, Keyward, Password, PasswordPolicy};

fn kw(iterations: u32, max_in_flight: usize, queue_timeout: Duration) -> Keyward {
    let mut p = PasswordPolicy::default();
    p.iterations = iterations;
    p.max_in_flight = max_in_flight;
    p.queue_timeout = queue_timeout;
    Keyward::builder().password_policy(p).build().unwrap()
}

#[tokio::test]
async fn hash_and_verify_async_round_trip() {
    let kw = kw(1000, 2, Duration::from_secs(5));
    let stored = kw
        .passwords()
        .hash_async(&Password::from("correct horse"))
        .await
        .unwrap();
    let v = kw
        .passwords()
        .verify_async("user", &Password::from("correct horse"), &stored)
        .await
        .unwrap();
    assert!(v.rehash().is_none());
    let r = kw
        .passwords()
        .verify_async("user", &Password::from("wrong horse!"), &stored)
        .await;
    assert!(matches!(r, Err(Error::PasswordMismatch)));
    let r = kw
        .passwords()
        .verify_unknown_user_async(&Password::from("wrong horse!"))
        .await;
    assert!(matches!(r, Error::PasswordMismatch));
    let r = kw
        .passwords()
        .hash_async(&Password::from_bytes(vec![b'a'; 1 << 20]))
        .await;
    assert!(matches!(r, Err(Error::PasswordTooLong { .. })));
}

/// With one slot held by a long hash, the next call waits at most the queue
/// timeout and then fails with `Busy`, instead of queueing without bound.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn work_past_the_cap_is_shed_with_busy() {
    let kw = kw(5_000_000, 1, Duration::from_millis(1));
    let started = Arc::new(AtomicBool::new(false));
    let first = {
        let kw = kw.clone();
        let started = Arc::clone(&started);
        tokio::spawn(async move {
            started.store(true, Ordering::SeqCst);
            kw.passwords()
                .hash_async(&Password::from("a long hash to hold the slot"))
                .await
        })
    };
    while !started.load(Ordering::SeqCst) {
        tokio::task::yield_now().await;
    }
    // Let the first call take the only slot; its hash runs far longer.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let second = kw
        .passwords()
        .hash_async(&Password::from("second in the queue"))
        .await;
    assert!(matches!(second, Err(Error::Busy)), "{second:?}");
    assert!(first.await.unwrap().is_ok());
    // Once the slot is free, work is accepted again.
    let kw_fast = self::kw(1000, 1, Duration::from_millis(1));
    assert!(
        kw_fast
            .passwords()
            .hash_async(&Password::from("after the flood"))
            .await
            .is_ok()
    );
}

/// PBKDF2 never runs on the async executor: on a single-threaded runtime, a
/// ticking task keeps running while a long verification is in flight.
#[tokio::test(flavor = "current_thread")]
async fn the_executor_is_never_blocked() {
    let kw = kw(3_000_000, 1, Duration::from_secs(5));
    let stored = "$pbkdf2-sha256$i=3000000,l=32$c2FsdHNhbHRzYWx0c2FsdA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    let done = Arc::new(AtomicBool::new(false));
    let ticks = Arc::new(AtomicUsize::new(0));
    let ticker = {
        let (done, ticks) = (Arc::clone(&done), Arc::clone(&ticks));
        tokio::spawn(async move {
            while !done.load(Ordering::SeqCst) {
                ticks.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        })
    };
    let r = kw
        .passwords()
        .verify_async("user", &Password::from("some password"), stored)
        .await;
    let ticks_during = ticks.load(Ordering::SeqCst);
    done.store(true, Ordering::SeqCst);
    ticker.await.unwrap();
    assert!(matches!(r, Err(Error::PasswordMismatch)));
    assert!(
        ticks_during >= 2,
        "the executor made no progress during PBKDF2: {ticks_during} ticks"
    );
}
