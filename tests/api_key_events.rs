//! API-key events through `tracing`: they name the key id, never the key,
//! its digest or its owner. A test binary of its own: `tracing` caches
//! per call site whether anyone listens, so the events are captured where
//! no other test runs at the same time.
#![allow(clippy::unwrap_used, clippy::panic, clippy::arithmetic_side_effects)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use keyward::clock::ManualClock;
use keyward::testing::FaultyStore;
use keyward::{JwtAlg, KeyRing, KeySpec, Keyward, MemoryStore, Store, Tokens};

#[tokio::test]
async fn events_name_the_key_id_and_nothing_secret() {
    let (out, _guard) = common::events::capture();

    let clock = ManualClock::new(1_700_000_000);
    let faulty = Arc::new(FaultyStore::new(Arc::new(MemoryStore::new())));
    let kw = Keyward::builder()
        .keys(KeyRing::generate(JwtAlg::HS256).unwrap())
        .shared_store(Arc::clone(&faulty) as Arc<dyn Store>)
        .clock(Arc::new(clock.clone()))
        .build_partial()
        .unwrap();
    let keys = kw.api_keys().unwrap();
    let made = keys
        .create("owner@example.com", KeySpec::named("ci"))
        .await
        .unwrap();
    let key = made.key().unprotected_as_str().to_owned();
    faulty.fail_commits(true);
    let _ = keys.verify(&key).await.unwrap(); // its touch fails, and is logged
    faulty.fail_commits(false);
    let rolled = keys.roll(made.id(), Duration::ZERO).await.unwrap();
    let _ = keys.verify(&key).await.unwrap_err();
    keys.revoke(made.id()).await.unwrap();
    let _ = keys
        .verify(rolled.key().unprotected_as_str())
        .await
        .unwrap_err();

    let logged = out.text();
    for event in [
        "api key created",
        "last_used_at not written",
        "api key rolled",
        "api key refused",
        "api key revoked",
    ] {
        assert!(logged.contains(event), "no {event:?} event in {logged}");
    }
    assert!(logged.contains(made.id()));
    for secret in [key.as_str(), rolled.key().unprotected_as_str()] {
        let s = &secret[secret.len() - 49..];
        assert!(!logged.contains(&s[..20]), "a secret in the logs: {logged}");
    }
    let digest = Tokens::plain().parse(&key).unwrap().digest().to_string();
    assert!(!logged.contains(&digest[..16]), "a digest in the logs");
    assert!(
        !logged.contains("owner@example.com"),
        "the owner in the logs"
    );
}
