//! `KeywardBuilder::limits_store`: the counts of `Keyward::limits` go to a
//! store of their own, everything else (a code's send limit, committed
//! with the code, included) to the state store; and a limits store needs
//! a key ring as a store does.
#![allow(clippy::unwrap_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use keyward::builder::{KeywardBuilder, WithKeys, WithStore};
use keyward::testing::CountingStore;
use keyward::{Error, JwtAlg, KeyRing, Keyward, Limit, MemoryStore, Purpose, Store};

/// A store that counts its round trips, over memory.
fn counting() -> Arc<CountingStore> {
    Arc::new(CountingStore::new(Arc::new(MemoryStore::new())))
}

/// A builder with a key ring and the JWT names, over `state`.
fn builder(state: &Arc<CountingStore>) -> KeywardBuilder<WithKeys, WithStore> {
    Keyward::builder()
        .keys(KeyRing::generate(JwtAlg::EdDSA).unwrap())
        .issuer("https://auth.example")
        .audience("api")
        .shared_store(Arc::clone(state) as Arc<dyn Store>)
}

#[tokio::test]
async fn the_counts_go_to_the_limits_store_and_nothing_else_does() {
    let (state, limits) = (counting(), counting());
    let kw = builder(&state)
        .limits_store(Arc::clone(&limits) as Arc<dyn Store>)
        .build()
        .unwrap();

    // A limit counts in the limits store only, and counts exactly there.
    let exports = Limit::named("exports", 2, Duration::from_secs(60));
    for _ in 0..2 {
        kw.limits().check(&exports, "user-42").await.unwrap();
    }
    assert!(matches!(
        kw.limits().check(&exports, "user-42").await,
        Err(Error::RateLimited { .. })
    ));
    let (in_limits, in_state) = (limits.take(), state.take());
    assert!(in_limits.commits >= 2, "{in_limits:?}");
    assert_eq!(in_state.round_trips(), 0, "{in_state:?}");

    // A code and the send it takes from its subject's send limit are one
    // commit, so both stay in the state store.
    kw.otp().issue("ada", Purpose::Login).await.unwrap();
    let (in_limits, in_state) = (limits.take(), state.take());
    assert_eq!(in_limits.round_trips(), 0, "{in_limits:?}");
    assert_eq!(in_state.commits, 1, "{in_state:?}");
    // The send limit holds: a second code within the minute is refused.
    assert!(matches!(
        kw.otp().issue("ada", Purpose::Login).await,
        Err(Error::RateLimited { .. })
    ));
}

#[tokio::test]
async fn without_one_the_counts_stay_in_the_state_store() {
    let state = counting();
    let kw = builder(&state).build().unwrap();
    let exports = Limit::named("exports", 2, Duration::from_secs(60));
    kw.limits().check(&exports, "user-42").await.unwrap();
    assert!(state.take().commits >= 1);
}

#[test]
fn a_limits_store_needs_a_key_ring() {
    let err = Keyward::builder()
        .limits_store(Arc::new(MemoryStore::new()))
        .build()
        .unwrap_err();
    assert!(matches!(err, Error::Config(_)), "{err:?}");
    assert!(err.to_string().contains(".keys()"), "{err}");
}
