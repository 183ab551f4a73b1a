//! Sessions over any store: a keyward with a manual clock, and the refresh
//! race every backend runs. Used by the session and store tests.
#![allow(
    dead_code,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::panic,
    clippy::arithmetic_side_effects
)]

use std::sync::Arc;

use keyward::clock::ManualClock;
use keyward::{Complete, Error, JwtAlg, KeyRing, Keyward, SessionError, SessionPolicy, Store};

/// The manual clock's start, in seconds since 1970.
pub const NOW: u64 = 1_800_000_000;

/// A keyward over `store` with HS256 keys, `policy` and the manual `clock`.
pub fn kw_with(
    store: Arc<dyn Store>,
    clock: &ManualClock,
    policy: SessionPolicy,
) -> Keyward<Complete> {
    Keyward::builder()
        .issuer("https://auth.example.com")
        .audience("api")
        .keys(KeyRing::generate(JwtAlg::HS256).unwrap())
        .shared_store(store)
        .session_policy(policy)
        .clock(Arc::new(clock.clone()))
        .build()
        .unwrap()
}

/// A password-only keyward at 1,000 iterations: proofs for session tests,
/// made fast.
pub fn fast_passwords() -> Keyward {
    let mut policy = keyward::PasswordPolicy::default();
    policy.iterations = 1_000;
    policy.min_iterations = 1_000;
    Keyward::builder().password_policy(policy).build().unwrap()
}

/// A keyward with the default session policy and this grace window.
pub fn kw(store: Arc<dyn Store>, clock: &ManualClock, grace: u64) -> Keyward<Complete> {
    let mut policy = SessionPolicy::default();
    policy.reuse_grace_secs = grace;
    kw_with(store, clock, policy)
}

/// "ok", or the session refusal's reason; panics on any other error.
pub fn reason(r: Result<keyward::TokenPair, Error>) -> &'static str {
    match r {
        Ok(_) => "ok",
        Err(Error::Session(e)) => e.reason(),
        Err(e) => panic!("unexpected {e}"),
    }
}

/// `trials` trials of `tasks` tasks presenting the same refresh token at
/// once. Returns (rotated, grace replays, reused, revoked) totals.
///
/// Families live one hour in the store (the manual clock never moves, so
/// the lifetimes play no part in the race): on a shared server the
/// thousands of families a run leaves behind expire soon.
pub async fn race(store: Arc<dyn Store>, grace: u64, trials: usize, tasks: usize) -> [usize; 4] {
    let clock = ManualClock::new(NOW);
    let mut policy = SessionPolicy::default();
    policy.reuse_grace_secs = grace;
    policy.idle_ttl_secs = 3_600;
    policy.absolute_ttl_secs = 3_600;
    let kw = kw_with(store, &clock, policy);
    let mut totals = [0usize; 4];
    for trial in 0..trials {
        let s = kw.sessions().clone();
        let pair = s
            .dangerous_start_without_proof(&format!("user-{trial}"))
            .await
            .unwrap();
        let token = pair.refresh.unprotected_as_str().to_owned();
        let handles: Vec<_> = (0..tasks)
            .map(|_| {
                let (s, token) = (s.clone(), token.clone());
                tokio::spawn(async move { s.refresh(&token).await })
            })
            .collect();
        let mut successors = Vec::new();
        let mut counts = [0usize; 4];
        for h in handles {
            match h.await.unwrap() {
                Ok(p) => successors.push(p.refresh.unprotected_as_str().to_owned()),
                Err(Error::Session(SessionError::Reused)) => counts[2] += 1,
                Err(Error::Session(SessionError::Revoked)) => counts[3] += 1,
                Err(e) => panic!("trial {trial}: {e}"),
            }
        }
        successors.dedup();
        if grace > 0 {
            // Exactly one new successor; every other task got that same one.
            assert_eq!(
                counts[2] + counts[3],
                0,
                "trial {trial}: no reuse inside the grace window"
            );
            assert_eq!(successors.len(), 1, "trial {trial}: one successor, no fork");
            counts[0] = 1;
            counts[1] = tasks - 1;
            // The family goes on from that successor.
            s.refresh(&successors[0]).await.unwrap();
        } else {
            // One winner; the losers' replays revoked the family.
            assert_eq!(successors.len(), 1, "trial {trial}: exactly one winner");
            assert_eq!(counts[2] + counts[3], tasks - 1);
            assert!(counts[2] >= 1, "trial {trial}: the reuse was detected");
            assert_eq!(
                reason(s.refresh(&successors[0]).await),
                "revoked",
                "trial {trial}: family revoked"
            );
            counts[0] = 1;
        }
        for (t, c) in totals.iter_mut().zip(counts) {
            *t += c;
        }
    }
    totals
}
