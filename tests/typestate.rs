//! The builder's states: a builder given a key ring and a store builds a
//! `Keyward<Complete>` whose services need no `?`, or fails at `build`;
//! `build_partial` and every other state build a plain `Keyward`.
#![allow(clippy::unwrap_used, clippy::panic)]

use std::time::Duration;

use keyward::builder::{KeywardBuilder, WithKeys, WithStore};
use keyward::{
    Complete, Error, JwtAlg, JwtPolicy, KeyRing, KeySpec, Keyward, Limit, MemoryStore, Otp,
    PasswordPolicy, Purpose, Sessions,
};

/// A key ring and a store, no issuer yet.
fn keys_and_store() -> KeywardBuilder<WithKeys, WithStore> {
    let mut policy = PasswordPolicy::default();
    policy.iterations = 1_000;
    Keyward::builder()
        .password_policy(policy)
        .keys(KeyRing::generate(JwtAlg::EdDSA).unwrap())
        .store(MemoryStore::new())
}

fn complete() -> Keyward<Complete> {
    keys_and_store()
        .issuer("https://auth.example")
        .audience("api")
        .build()
        .unwrap()
}

#[tokio::test]
async fn a_complete_keywards_services_need_no_question_mark() {
    let kw = complete();
    // Each accessor returns the service itself.
    let sessions: &Sessions = kw.sessions();
    let otp: &Otp = kw.otp();
    let pair = sessions
        .dangerous_start_without_proof("user-42")
        .await
        .unwrap();
    let claims = kw.jwt().verify(pair.access.unprotected_as_str()).unwrap();
    assert_eq!(claims.sub, "user-42");
    let issued = otp.issue("user-42", Purpose::Login).await.unwrap();
    otp.verify("user-42", Purpose::Login, issued.code.unprotected_as_str())
        .await
        .unwrap();
    let key = kw
        .api_keys()
        .create("user-42", KeySpec::named("ci"))
        .await
        .unwrap();
    let verified = kw
        .api_keys()
        .verify(key.key().unprotected_as_str())
        .await
        .unwrap();
    assert_eq!(verified.owner(), "user-42");
    const EXPORTS: Limit = Limit::new("exports", 1, Duration::from_secs(60));
    kw.limits().check(&EXPORTS, "user-42").await.unwrap();
    assert!(!kw.totp().is_enrolled("user-42").await.unwrap());
    // And erase needs no service check either.
    let erased = kw.erase("user-42").await.unwrap();
    assert_eq!((erased.sessions, erased.api_keys), (1, 1));
}

#[test]
fn keys_and_a_store_without_an_issuer_fail_at_build() {
    let Err(Error::Config(msg)) = keys_and_store().build() else {
        panic!("a complete keyward without an issuer built");
    };
    assert!(msg.contains(".issuer()"), "{msg}");
    assert!(msg.contains("build_partial()"), "{msg}");
    // An issuer alone is not enough; nor is an audience alone.
    let Err(Error::Config(msg)) = keys_and_store().issuer("https://auth.example").build() else {
        panic!("a complete keyward without an audience built");
    };
    assert!(msg.contains(".audience()"), "{msg}");
    assert!(matches!(
        keys_and_store().audience("api").build(),
        Err(Error::Config(_))
    ));
    // A full access-token policy stands for both.
    let kw = keys_and_store()
        .jwt_policy(JwtPolicy::new("https://auth.example", "api"))
        .build()
        .unwrap();
    assert_eq!(kw.jwt().policy().issuer(), "https://auth.example");
}

#[tokio::test]
async fn build_partial_keeps_the_result_accessors() {
    // Keys and a store, no issuer: codes and API keys, no sessions.
    let kw: Keyward = keys_and_store().build_partial().unwrap();
    let issued = kw
        .otp()
        .unwrap()
        .issue("user-42", Purpose::Login)
        .await
        .unwrap();
    assert_eq!(issued.code.unprotected_as_str().len(), 6);
    kw.api_keys()
        .unwrap()
        .create("user-42", KeySpec::named("ci"))
        .await
        .unwrap();
    assert!(matches!(kw.sessions(), Err(Error::Config(_))));
    assert!(matches!(kw.jwt(), Err(Error::Config(_))));
    assert!(matches!(kw.erase("user-42").await, Err(Error::Config(_))));

    // Given everything, it still builds a plain `Keyward`.
    let kw: Keyward = keys_and_store()
        .issuer("https://auth.example")
        .audience("api")
        .build_partial()
        .unwrap();
    kw.sessions()
        .unwrap()
        .dangerous_start_without_proof("user-42")
        .await
        .unwrap();

    // Without a key ring or a store, `build` is `build_partial`.
    let kw: Keyward = Keyward::builder().build().unwrap();
    assert!(matches!(kw.otp(), Err(Error::Config(_))));
    let kw: Keyward = Keyward::builder()
        .keys(KeyRing::generate(JwtAlg::EdDSA).unwrap())
        .issuer("https://auth.example")
        .audience("api")
        .build()
        .unwrap();
    kw.jwt().unwrap().issue("user-42", "session-1").unwrap();
    assert!(matches!(kw.sessions(), Err(Error::Config(_))));
    // A store without a key ring is still refused.
    assert!(matches!(
        Keyward::builder().store(MemoryStore::new()).build(),
        Err(Error::Config(_))
    ));
}

#[tokio::test]
async fn a_complete_keyward_works_where_a_keyward_is_taken() {
    let complete = complete();
    let pair = complete
        .sessions()
        .dangerous_start_without_proof("user-42")
        .await
        .unwrap();

    fn takes(kw: Keyward) -> Keyward {
        kw
    }
    let plain = takes(Keyward::from(complete.clone()));
    // The same services: the session started above is there.
    let claims = plain
        .sessions()
        .unwrap()
        .authenticate_strict(pair.access.unprotected_as_str())
        .await
        .unwrap();
    assert_eq!(claims.sub, "user-42");
    let also: Keyward = complete.into();
    assert_eq!(
        also.sessions()
            .unwrap()
            .list("user-42")
            .await
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn debug_shows_the_mode_and_no_key() {
    let ring = KeyRing::generate(JwtAlg::HS256).unwrap();
    let json = ring.to_json();
    let file: serde_json::Value = serde_json::from_str(&json).unwrap();
    let mac_key = file["mac_key"].as_str().unwrap().to_owned();
    let kw = Keyward::builder()
        .keys(ring)
        .store(MemoryStore::new())
        .issuer("https://auth.example")
        .audience("api")
        .build()
        .unwrap();
    let shown = format!("{kw:?}");
    assert!(shown.contains("Complete"), "{shown}");
    assert!(!shown.contains(&mac_key), "the MAC key is printed");
    let plain: Keyward = Keyward::from(kw);
    let shown = format!("{plain:?}");
    assert!(shown.contains("Partial"), "{shown}");
    assert!(!shown.contains(&mac_key), "the MAC key is printed");
}
