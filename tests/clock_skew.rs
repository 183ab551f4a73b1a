//! Two replicas whose host clocks differ by an hour, on one PostgreSQL and
//! then on one Redis: every lock, grace window, lifetime and rate limit is
//! decided by the store's clock, so the two agree on all of them.
#![allow(clippy::unwrap_used, clippy::panic, clippy::arithmetic_side_effects)]

mod common;

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use keyward::clock::ManualClock;
use keyward::store::{PgStore, RedisOptions, RedisStore};
use keyward::{
    Complete, Error, JwtAlg, KeyRing, Keyward, Limit, OtpError, Purpose, SessionError,
    SessionPolicy, Store, ThrottlePolicy,
};

const HOUR: u64 = 3_600;

fn host_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Two replicas of one service on `store`: one with a clock that is right,
/// one with a clock an hour fast.
fn replicas(store: &Arc<dyn Store>) -> (Keyward<Complete>, Keyward<Complete>) {
    let keys = KeyRing::generate(JwtAlg::HS256).unwrap().to_json();
    let mut policy = SessionPolicy::default();
    // A lifetime shorter than the skew: the fast replica's clock alone
    // would call every family expired.
    policy.idle_ttl_secs = HOUR / 2;
    policy.absolute_ttl_secs = HOUR / 2;
    // Sends are limited across the replicas too; this test reissues.
    let mut sends = ThrottlePolicy::default();
    sends.code_send_burst = 100;
    let replica = |offset: u64| {
        Keyward::builder()
            .issuer("https://auth.example.com")
            .audience("api")
            .keys(KeyRing::from_json(&keys).unwrap())
            .shared_store(Arc::clone(store))
            .session_policy(policy.clone())
            .throttle_policy(sends.clone())
            .clock(Arc::new(ManualClock::new(host_now() + offset)))
            .build()
            .unwrap()
    };
    (replica(0), replica(HOUR))
}

fn subject(what: &str) -> String {
    format!("{what}-{}", host_now())
}

async fn the_replicas_agree(store: Arc<dyn Store>) {
    let (right, fast) = replicas(&store);

    // A lock set by one replica holds on the other, for its whole length.
    let alice = subject("alice");
    let otp = right.otp();
    let code = otp.issue(&alice, Purpose::Login).await.unwrap().code;
    let wrong = if code.unprotected_as_str() == "000000" {
        "000001"
    } else {
        "000000"
    };
    for _ in 0..3 {
        assert!(matches!(
            otp.verify(&alice, Purpose::Login, wrong).await,
            Err(Error::Otp(OtpError::Invalid { .. }))
        ));
    }
    let fast_otp = fast.otp();
    for refused in [
        fast_otp
            .verify(&alice, Purpose::Login, code.unprotected_as_str())
            .await
            .map(|_| ()),
        fast_otp.issue(&alice, Purpose::Login).await.map(|_| ()),
    ] {
        match refused {
            Err(Error::Otp(OtpError::Locked { retry_after })) => {
                assert!(
                    retry_after > Duration::from_secs(HOUR - 60),
                    "the fast replica sees the lock's whole hour ahead: {retry_after:?}"
                );
            }
            other => panic!("the fast replica let a locked subject through: {other:?}"),
        }
    }

    // A refresh on one replica, and the same token again at once on the
    // other: inside the grace window, so the same successor comes back and
    // the family lives on.
    let sessions = right.sessions();
    let fast_sessions = fast.sessions();
    let bob = subject("bob");
    let first = sessions.dangerous_start_without_proof(&bob).await.unwrap();
    let second = sessions
        .refresh(first.refresh.unprotected_as_str())
        .await
        .unwrap();
    let replay = fast_sessions
        .refresh(first.refresh.unprotected_as_str())
        .await
        .unwrap();
    assert_eq!(
        replay.refresh.unprotected_as_str(),
        second.refresh.unprotected_as_str(),
        "a grace replay on the fast replica"
    );

    // A family started on one replica is alive on the other, though its
    // lifetime is shorter than the skew. (Access tokens are checked against
    // the host's clock, as every JWT verifier does, so each replica checks
    // its own here; the family's liveness comes from the store.)
    let third = fast_sessions
        .refresh(second.refresh.unprotected_as_str())
        .await
        .unwrap();
    let claims = fast_sessions
        .authenticate_strict(third.access.unprotected_as_str())
        .await;
    assert!(claims.is_ok(), "{claims:?}");
    let fourth = sessions
        .refresh(third.refresh.unprotected_as_str())
        .await
        .unwrap();

    // A revoke-all on the fast replica ends the family on the right one,
    // and a family started after it is alive on both.
    fast_sessions.revoke_all(&bob).await.unwrap();
    assert!(matches!(
        sessions.refresh(fourth.refresh.unprotected_as_str()).await,
        Err(Error::Session(SessionError::Revoked))
    ));
    let after = sessions.dangerous_start_without_proof(&bob).await.unwrap();
    fast_sessions
        .refresh(after.refresh.unprotected_as_str())
        .await
        .unwrap();

    // A rate limit of 5 at once, then one an hour, taken from both
    // replicas in turn: exactly what one limiter would allow, and each
    // refusal names the same wait. (On the host clocks, the fast replica
    // would find an hour earned back: one more allowed, and a wait an hour
    // too long on the other.)
    let limit = Limit::new("skew", 1, Duration::from_secs(HOUR)).burst(5);
    let source = subject("source");
    let mut allowed = 0;
    for i in 0..20 {
        let limits = if i % 2 == 0 { &right } else { &fast }.limits();
        match limits.check(&limit, &source).await {
            Ok(a) => {
                allowed += 1;
                assert_eq!(a.remaining, 5 - allowed, "check {i}");
            }
            Err(Error::RateLimited { retry_after }) => assert!(
                retry_after <= Duration::from_secs(HOUR)
                    && retry_after > Duration::from_secs(HOUR - 60),
                "check {i}: {retry_after:?}"
            ),
            other => panic!("check {i}: {other:?}"),
        }
    }
    assert_eq!(
        allowed, 5,
        "two replicas an hour apart allow what one would"
    );
}

#[tokio::test]
async fn replicas_an_hour_apart_agree_on_postgres() {
    let Some(url) = common::postgres("clock skew on PostgreSQL") else {
        return;
    };
    let store: Arc<dyn Store> = Arc::new(PgStore::connect(&url).await.unwrap());
    the_replicas_agree(store).await;
}

#[tokio::test]
async fn replicas_an_hour_apart_agree_on_redis() {
    let Some(url) = common::redis("clock skew on Redis") else {
        return;
    };
    let prefix = format!("kwskew{}", host_now());
    let store: Arc<dyn Store> = Arc::new(
        RedisStore::connect_with(&url, RedisOptions::default().prefix(prefix))
            .await
            .unwrap(),
    );
    the_replicas_agree(store).await;
}
