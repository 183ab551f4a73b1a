//! Application claims on sessions: given with the proof, carried by every
//! access token, kept by refreshes, changed only by `set_claims`, over the
//! in-memory store and SQLite (where they live in the stored record).
#![allow(clippy::unwrap_used, clippy::panic, clippy::arithmetic_side_effects)]

mod common;

use std::sync::Arc;

use common::sessions::{NOW, fast_passwords, kw};
use serde_json::json;

use keyward::clock::ManualClock;
use keyward::{
    Error, MemoryStore, Password, Purpose, SessionClaims, SessionError, SqliteStore, Store,
};

/// A fast password service, and a proof for `subject`.
fn proof(subject: &str) -> keyward::Verified {
    let passwords = fast_passwords();
    let pw = Password::from("correct horse battery");
    let stored = passwords.passwords().hash(&pw).unwrap();
    passwords.passwords().verify(subject, &pw, &stored).unwrap()
}

fn roles(r: &[&str]) -> SessionClaims {
    SessionClaims::new(&json!({ "roles": r, "scope": "read" })).unwrap()
}

async fn claims_follow_the_session(store: Arc<dyn Store>) {
    let clock = ManualClock::new(NOW);
    let kw = kw(store, &clock, 10);
    let s = kw.sessions();

    // Given with the proof: in the first access token, and every refresh.
    let pair = s
        .start(&proof("ada").with_claims(roles(&["editor"])))
        .await
        .unwrap();
    let first = s.authenticate(pair.access.unprotected_as_str()).unwrap();
    assert_eq!(first.extra, roles(&["editor"]));
    assert_eq!(first.extra.get("scope"), Some(&json!("read")));
    clock.advance(60);
    let next = s.refresh(pair.refresh.unprotected_as_str()).await.unwrap();
    let kept = s.authenticate(next.access.unprotected_as_str()).unwrap();
    assert_eq!(kept.extra, roles(&["editor"]));
    // The strict check sees them too.
    let strict = s
        .authenticate_strict(next.access.unprotected_as_str())
        .await
        .unwrap();
    assert_eq!(strict.extra, roles(&["editor"]));

    // Changed by the explicit call: the token in hand keeps the old ones,
    // the next refresh carries the new.
    s.set_claims("ada", &pair.session_id, Some(roles(&["editor", "admin"])))
        .await
        .unwrap();
    let unchanged = s.authenticate(next.access.unprotected_as_str()).unwrap();
    assert_eq!(unchanged.extra, roles(&["editor"]));
    clock.advance(60);
    let after = s.refresh(next.refresh.unprotected_as_str()).await.unwrap();
    let changed = s.authenticate(after.access.unprotected_as_str()).unwrap();
    assert_eq!(changed.extra, roles(&["editor", "admin"]));
    // A grace replay of the spent token hands out the same claims.
    let replay = s.refresh(next.refresh.unprotected_as_str()).await.unwrap();
    let replayed = s.authenticate(replay.access.unprotected_as_str()).unwrap();
    assert_eq!(replayed.extra, roles(&["editor", "admin"]));

    // Removed with None.
    s.set_claims("ada", &pair.session_id, None).await.unwrap();
    clock.advance(60);
    let bare = s.refresh(after.refresh.unprotected_as_str()).await.unwrap();
    let none = s.authenticate(bare.access.unprotected_as_str()).unwrap();
    assert!(none.extra.is_empty(), "{:?}", none.extra);

    // Another subject's session, an unknown id, a revoked session: refused,
    // and nothing changes.
    let refused = s
        .set_claims("bob", &pair.session_id, Some(roles(&["admin"])))
        .await
        .unwrap_err();
    assert!(
        matches!(refused, Error::Session(SessionError::Unknown)),
        "{refused:?}"
    );
    for id in ["", "not-hex", &"0".repeat(32)] {
        let refused = s
            .set_claims("ada", id, Some(roles(&["admin"])))
            .await
            .unwrap_err();
        assert!(
            matches!(refused, Error::Session(SessionError::Unknown)),
            "{id:?}: {refused:?}"
        );
    }
    s.revoke(bare.refresh.unprotected_as_str()).await.unwrap();
    let refused = s
        .set_claims("ada", &pair.session_id, Some(roles(&["admin"])))
        .await
        .unwrap_err();
    assert!(
        matches!(refused, Error::Session(SessionError::Revoked)),
        "{refused:?}"
    );

    // A session without claims carries none; another session of the same
    // subject keeps its own.
    let plain = s.start(&proof("ada")).await.unwrap();
    let other = s
        .start(&proof("ada").with_claims(roles(&["viewer"])))
        .await
        .unwrap();
    let plain = s.authenticate(plain.access.unprotected_as_str()).unwrap();
    assert!(plain.extra.is_empty());
    let other = s.authenticate(other.access.unprotected_as_str()).unwrap();
    assert_eq!(other.extra, roles(&["viewer"]));
}

#[tokio::test]
async fn claims_follow_the_session_in_memory() {
    claims_follow_the_session(Arc::new(MemoryStore::new())).await;
}

#[tokio::test]
async fn claims_follow_the_session_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("keyward.db"))
        .await
        .unwrap();
    claims_follow_the_session(Arc::new(store)).await;
}

/// A login code's proof carries claims to its session, as a password's does.
#[tokio::test]
async fn a_login_code_carries_claims_too() {
    let clock = ManualClock::new(NOW);
    let kw = kw(Arc::new(MemoryStore::new()), &clock, 10);
    let otp = kw.otp();
    let issued = otp.issue("ada", Purpose::Login).await.unwrap();
    let proof = otp
        .verify("ada", Purpose::Login, issued.code.unprotected_as_str())
        .await
        .unwrap()
        .with_claims(roles(&["support"]));
    let pair = kw.sessions().start_with_otp(proof).await.unwrap();
    let claims = kw
        .sessions()
        .authenticate(pair.access.unprotected_as_str())
        .unwrap();
    assert_eq!(claims.extra, roles(&["support"]));
    assert_eq!(claims.amr, ["otp"]);
}

/// Claims read back with `Deserialize` (from a stored record, or a
/// token's custom claims) pass `SessionClaims::new`'s checks too, so no
/// session can be given a second `sub`.
#[tokio::test]
async fn deserialized_claims_are_checked_before_use() {
    for (bad, says) in [
        (json!({"sub": "admin"}), "may not set `sub`"),
        (json!({"exp": 1}), "may not set `exp`"),
        (json!({"k": "x".repeat(2048)}), "the most is 1024"),
    ] {
        let refused = serde_json::from_value::<SessionClaims>(bad).unwrap_err();
        assert!(refused.to_string().contains(says), "{refused}");
    }
    assert!(serde_json::from_value::<SessionClaims>(json!(["admin"])).is_err());

    // Valid ones come back as they went, written as a bare object.
    let claims: SessionClaims = serde_json::from_value(json!({"roles": ["a"]})).unwrap();
    assert_eq!(claims, roles_only(&["a"]));
    assert_eq!(
        serde_json::to_value(&claims).unwrap(),
        json!({"roles": ["a"]})
    );

    // And they start a session like any others.
    let clock = ManualClock::new(NOW);
    let kw = kw(Arc::new(MemoryStore::new()), &clock, 10);
    let pair = kw
        .sessions()
        .start(&proof("ada").with_claims(claims.clone()))
        .await
        .unwrap();
    let access = kw
        .sessions()
        .authenticate(pair.access.unprotected_as_str())
        .unwrap();
    assert_eq!(access.extra, claims);
}

fn roles_only(r: &[&str]) -> SessionClaims {
    SessionClaims::new(&json!({ "roles": r })).unwrap()
}
