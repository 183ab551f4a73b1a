//! Sessions over real stores: flows, fail-closed behaviour, and the
//! refresh race on every backend.
#![allow(clippy::unwrap_used, clippy::panic, clippy::arithmetic_side_effects)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::sessions::{self, NOW, fast_passwords, kw, race, reason};

use keyward::clock::ManualClock;
use keyward::store::Swap;
use keyward::testing::FaultyStore;
use keyward::{
    Error, Keyward, MemoryStore, Password, PasswordPolicy, SessionError, SessionPolicy,
    SqliteStore, Store, StoreError,
};

async fn sqlite() -> (Arc<dyn Store>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("keyward.db"))
        .await
        .unwrap();
    (Arc::new(store), dir)
}

#[tokio::test]
async fn sqlite_store_passes_the_conformance_suite() {
    let (store, _dir) = sqlite().await;
    keyward::store::conformance::run(store).await;
}

#[tokio::test]
async fn sqlite_store_shares_state_between_handles_on_one_file() {
    let dir = tempfile::tempdir().unwrap();
    let a = SqliteStore::open(dir.path().join("k.db")).await.unwrap();
    let b = SqliteStore::open(dir.path().join("k.db")).await.unwrap();
    let v = match a
        .swap("shared", None, b"1", Duration::from_secs(60))
        .await
        .unwrap()
    {
        Swap::Swapped { version } => version,
        Swap::Conflict => panic!("fresh key"),
    };
    assert_eq!(b.load("shared").await.unwrap().unwrap().version, v);
    assert_eq!(
        b.swap("shared", None, b"2", Duration::from_secs(60))
            .await
            .unwrap(),
        Swap::Conflict
    );
    assert!(matches!(
        b.swap("shared", Some(v), b"2", Duration::from_secs(60))
            .await
            .unwrap(),
        Swap::Swapped { .. }
    ));
    assert_eq!(
        a.swap("shared", Some(v), b"3", Duration::from_secs(60))
            .await
            .unwrap(),
        Swap::Conflict
    );
}

#[tokio::test]
async fn start_refresh_grace_reuse_and_revocation() {
    let clock = ManualClock::new(NOW);
    let kw = kw(Arc::new(MemoryStore::new()), &clock, 10);
    let s = kw.sessions();

    // start needs a password proof.
    let pw = Password::from("correct horse battery");
    let mut policy = PasswordPolicy::default();
    policy.iterations = 1000;
    let p = Keyward::builder().password_policy(policy).build().unwrap();
    let verified = p
        .passwords()
        .verify("user-42", &pw, &p.passwords().hash(&pw).unwrap())
        .unwrap();
    assert_eq!(verified.subject(), "user-42");
    let first = s.start(&verified).await.unwrap();
    assert_eq!(first.expires_in, 900);
    let claims = s.authenticate(first.access.unprotected_as_str()).unwrap();
    assert_eq!(
        (claims.sub.as_str(), claims.sid.as_str()),
        ("user-42", first.session_id.as_str())
    );
    s.authenticate_strict(first.access.unprotected_as_str())
        .await
        .unwrap();

    // Rotation.
    clock.advance(5);
    let second = s.refresh(first.refresh.unprotected_as_str()).await.unwrap();
    assert_ne!(
        second.refresh.unprotected_as_str(),
        first.refresh.unprotected_as_str()
    );
    assert_eq!(second.session_id, first.session_id);
    // The predecessor within the grace window: the same successor.
    clock.advance(9);
    let replay = s.refresh(first.refresh.unprotected_as_str()).await.unwrap();
    assert_eq!(
        replay.refresh.unprotected_as_str(),
        second.refresh.unprotected_as_str()
    );
    // A forged token never burns the live one. The MAC is hex, so its last
    // digit is "0" one time in 16: then "1" makes the forgery.
    let live = second.refresh.unprotected_as_str();
    let (head, last) = live.split_at(live.len() - 1);
    let forged = format!("{head}{}", if last == "0" { "1" } else { "0" });
    assert_eq!(reason(s.refresh(&forged).await), "invalid");
    assert_eq!(reason(s.refresh("kwr_garbage").await), "invalid");
    // Outside the grace window: reuse, and the whole family is revoked.
    clock.advance(1);
    assert_eq!(
        reason(s.refresh(first.refresh.unprotected_as_str()).await),
        "reused"
    );
    assert_eq!(
        reason(s.refresh(second.refresh.unprotected_as_str()).await),
        "revoked"
    );
    assert!(matches!(
        s.authenticate_strict(second.access.unprotected_as_str())
            .await,
        Err(Error::Session(SessionError::Revoked))
    ));
    // The stateless check still accepts it until it expires.
    s.authenticate(second.access.unprotected_as_str()).unwrap();
}

#[tokio::test]
async fn revoke_revoke_all_and_lifetimes() {
    let clock = ManualClock::new(NOW);
    let kw = kw(Arc::new(MemoryStore::new()), &clock, 10);
    let s = kw.sessions();

    let a = s.dangerous_start_without_proof("alice").await.unwrap();
    assert_eq!(
        s.revoke(a.refresh.unprotected_as_str()).await.unwrap(),
        a.session_id
    );
    assert_eq!(
        s.revoke(a.refresh.unprotected_as_str()).await.unwrap(),
        a.session_id,
        "idempotent"
    );
    assert_eq!(
        reason(s.refresh(a.refresh.unprotected_as_str()).await),
        "revoked"
    );
    assert!(matches!(
        s.revoke("not-a-token").await,
        Err(Error::Session(SessionError::Invalid))
    ));

    // revoke_all ends every family of the subject, and only of that subject.
    let b1 = s.dangerous_start_without_proof("bob").await.unwrap();
    let b2 = s.dangerous_start_without_proof("bob").await.unwrap();
    let c = s.dangerous_start_without_proof("carol").await.unwrap();
    let b1 = s.refresh(b1.refresh.unprotected_as_str()).await.unwrap();
    s.revoke_all("bob").await.unwrap();
    assert_eq!(
        reason(s.refresh(b1.refresh.unprotected_as_str()).await),
        "revoked"
    );
    assert_eq!(
        reason(s.refresh(b2.refresh.unprotected_as_str()).await),
        "revoked"
    );
    assert!(
        s.authenticate_strict(b2.access.unprotected_as_str())
            .await
            .is_err()
    );
    let c = s.refresh(c.refresh.unprotected_as_str()).await.unwrap();
    // A login after revoke_all works, in the same second too.
    let b3 = s.dangerous_start_without_proof("bob").await.unwrap();
    s.refresh(b3.refresh.unprotected_as_str()).await.unwrap();
    s.revoke_all("bob").await.unwrap();
    let b4 = s.dangerous_start_without_proof("bob").await.unwrap();
    s.authenticate_strict(b4.access.unprotected_as_str())
        .await
        .unwrap();

    // Idle lifetime: 14 days without a refresh.
    clock.advance(14 * 86_400);
    assert_eq!(
        reason(s.refresh(c.refresh.unprotected_as_str()).await),
        "expired"
    );
    // Absolute lifetime: refreshed every 10 days, still ends at 30.
    let d = s.dangerous_start_without_proof("dave").await.unwrap();
    let mut token = d.refresh.unprotected_as_str().to_owned();
    for _ in 0..2 {
        clock.advance(10 * 86_400);
        token = s
            .refresh(&token)
            .await
            .unwrap()
            .refresh
            .unprotected_as_str()
            .to_owned();
    }
    clock.advance(10 * 86_400);
    assert_eq!(reason(s.refresh(&token).await), "expired");
}

/// `authenticate_strict` refuses every session that the next refresh would
/// call expired, with the same error, while the access token itself is
/// still valid: past the idle lifetime (shorter here than the 900 s access
/// token), and past the absolute lifetime (a token issued by a refresh in
/// the last 15 minutes of the family outlives it).
#[tokio::test]
async fn authenticate_strict_refuses_what_refresh_would_call_expired() {
    // Idle lifetime.
    let clock = ManualClock::new(NOW);
    let mut policy = SessionPolicy::default();
    policy.idle_ttl_secs = 300;
    let idle = sessions::kw_with(Arc::new(MemoryStore::new()), &clock, policy);
    let s = idle.sessions();
    let a = s.dangerous_start_without_proof("alice").await.unwrap();
    let access = a.access.unprotected_as_str();
    clock.advance(299);
    s.authenticate_strict(access).await.unwrap();
    clock.advance(1);
    s.authenticate(access).unwrap();
    let strict = s.authenticate_strict(access).await.unwrap_err();
    let refresh = s.refresh(a.refresh.unprotected_as_str()).await.unwrap_err();
    assert!(
        matches!(strict, Error::Session(SessionError::Expired)),
        "{strict:?}"
    );
    assert!(
        matches!(refresh, Error::Session(SessionError::Expired)),
        "{refresh:?}"
    );
    assert_eq!(strict.to_string(), refresh.to_string());

    // Absolute lifetime (default policy: 14 days idle, 30 days absolute).
    let clock = ManualClock::new(NOW);
    let absolute = kw(Arc::new(MemoryStore::new()), &clock, 10);
    let s = absolute.sessions();
    let mut pair = s.dangerous_start_without_proof("bob").await.unwrap();
    for step in [10 * 86_400, 10 * 86_400, 10 * 86_400 - 60] {
        clock.advance(step);
        pair = s.refresh(pair.refresh.unprotected_as_str()).await.unwrap();
    }
    let access = pair.access.unprotected_as_str();
    clock.advance(59);
    s.authenticate_strict(access).await.unwrap();
    clock.advance(1);
    s.authenticate(access).unwrap();
    let strict = s.authenticate_strict(access).await.unwrap_err();
    let refresh = s
        .refresh(pair.refresh.unprotected_as_str())
        .await
        .unwrap_err();
    assert!(
        matches!(strict, Error::Session(SessionError::Expired)),
        "{strict:?}"
    );
    assert!(
        matches!(refresh, Error::Session(SessionError::Expired)),
        "{refresh:?}"
    );
    assert_eq!(strict.to_string(), refresh.to_string());
}

/// A writer of the store cannot move a family to another subject: the
/// refresh token names its subject (by its tag), and a family record that
/// names another one is refused (fail closed), never honoured.
#[tokio::test]
async fn a_family_moved_to_another_subject_is_refused() {
    let clock = ManualClock::new(NOW);
    let store = Arc::new(MemoryStore::new());
    let kw = kw(store.clone(), &clock, 10);
    let s = kw.sessions();
    let pair = s.dangerous_start_without_proof("mallory").await.unwrap();
    let key = format!("kw:fam:{}", pair.session_id);
    let record = store.load(&key).await.unwrap().expect("the family record");
    // A stored record: a format byte (1: JSON follows), then the JSON.
    let (format, json) = record.value.split_first().unwrap();
    assert_eq!(*format, 1);
    // The record's layout is internal; edit it as JSON, as a writer of the
    // store would.
    let mut family: serde_json::Value = serde_json::from_slice(json).unwrap();
    assert_eq!(family["subject"], "mallory");
    family["subject"] = "admin".into();
    let mut value = vec![1];
    value.extend(serde_json::to_vec(&family).unwrap());
    assert!(matches!(
        store
            .swap(&key, Some(record.version), &value, Duration::from_secs(60))
            .await
            .unwrap(),
        Swap::Swapped { .. }
    ));
    assert!(matches!(
        s.refresh(pair.refresh.unprotected_as_str()).await,
        Err(Error::Store(StoreError::Corrupt(_)))
    ));
}

#[tokio::test]
async fn storage_errors_fail_closed() {
    let clock = ManualClock::new(NOW);
    let down = FaultyStore::new(Arc::new(MemoryStore::new()));
    down.down(true);
    let kw = kw(Arc::new(down), &clock, 10);
    let s = kw.sessions();
    assert!(matches!(
        s.dangerous_start_without_proof("u").await,
        Err(Error::Store(_))
    ));

    let switch = Arc::new(FaultyStore::new(Arc::new(MemoryStore::new())));
    let kw = self::kw(switch.clone(), &clock, 10);
    let s = kw.sessions();
    let pair = s.dangerous_start_without_proof("u").await.unwrap();
    switch.down(true);
    assert!(matches!(
        s.refresh(pair.refresh.unprotected_as_str()).await,
        Err(Error::Store(_))
    ));
    assert!(matches!(s.revoke_all("u").await, Err(Error::Store(_))));
    assert!(matches!(
        s.authenticate_strict(pair.access.unprotected_as_str())
            .await,
        Err(Error::Store(_))
    ));
    // Back up: the token was not spent by the failed attempt.
    switch.down(false);
    s.refresh(pair.refresh.unprotected_as_str()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn refresh_race_memory_store() {
    for grace in [10, 0] {
        let t = race(Arc::new(MemoryStore::new()), grace, 1_000, 16).await;
        println!(
            "memory, grace {grace}: 1000 trials x 16 tasks: rotated {} grace-replays {} reused {} revoked {}",
            t[0], t[1], t[2], t[3]
        );
        assert_eq!(t[0], 1_000);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn refresh_race_sqlite_store() {
    for grace in [10, 0] {
        let (store, _dir) = sqlite().await;
        let t = race(store, grace, 1_000, 16).await;
        println!(
            "sqlite, grace {grace}: 1000 trials x 16 tasks: rotated {} grace-replays {} reused {} revoked {}",
            t[0], t[1], t[2], t[3]
        );
        assert_eq!(t[0], 1_000);
    }
}

/// The ids `list` shows, in its order.
async fn listed(s: &keyward::Sessions, subject: &str) -> Vec<String> {
    s.list(subject)
        .await
        .unwrap()
        .into_iter()
        .map(|i| i.id)
        .collect()
}

#[tokio::test]
async fn list_shows_exactly_the_live_sessions() {
    let clock = ManualClock::new(NOW);
    let kw = kw(Arc::new(MemoryStore::new()), &clock, 10);
    let s = kw.sessions();
    assert!(s.list("alice").await.unwrap().is_empty(), "nothing yet");

    let a = s.dangerous_start_without_proof("alice").await.unwrap();
    clock.advance(10);
    let b = s.dangerous_start_without_proof("alice").await.unwrap();
    clock.advance(10);
    let c = s.dangerous_start_without_proof("alice").await.unwrap();
    clock.advance(10);
    let d = s.dangerous_start_without_proof("alice").await.unwrap();
    let bob = s.dangerous_start_without_proof("bob").await.unwrap();
    assert_eq!(
        listed(s, "alice").await,
        [&a, &b, &c, &d].map(|p| p.session_id.clone())
    );
    assert_eq!(listed(s, "bob").await, vec![bob.session_id.clone()]);

    // Two rotations of a: its generation and last refresh move.
    clock.advance(100);
    let a1 = s.refresh(a.refresh.unprotected_as_str()).await.unwrap();
    clock.advance(100);
    let a2 = s.refresh(a1.refresh.unprotected_as_str()).await.unwrap();
    let info = s.list("alice").await.unwrap();
    let first = &info[0];
    assert_eq!(first.id, a.session_id);
    assert_eq!(
        (first.started_at, first.refreshed_at, first.generation),
        (NOW, NOW + 230, 2)
    );
    assert_eq!(
        first.expires_at,
        (NOW + 30 * 86_400).min(NOW + 230 + 14 * 86_400)
    );
    assert_eq!(first.meta, None);

    // A logout (b), a revoke by id (c) and a reuse detection (a, by
    // replaying its first token long after) each take one off the list.
    s.revoke(b.refresh.unprotected_as_str()).await.unwrap();
    s.revoke_session("alice", &c.session_id).await.unwrap();
    s.revoke_session("alice", &c.session_id).await.unwrap();
    assert_eq!(
        reason(s.refresh(c.refresh.unprotected_as_str()).await),
        "revoked"
    );
    assert!(matches!(
        s.authenticate_strict(c.access.unprotected_as_str()).await,
        Err(Error::Session(SessionError::Revoked))
    ));
    clock.advance(60);
    assert_eq!(
        reason(s.refresh(a.refresh.unprotected_as_str()).await),
        "reused"
    );
    assert_eq!(
        reason(s.refresh(a2.refresh.unprotected_as_str()).await),
        "revoked"
    );
    assert_eq!(listed(s, "alice").await, vec![d.session_id.clone()]);

    // Past its idle end a session leaves the list; a revoke-all empties it.
    let e = s.dangerous_start_without_proof("alice").await.unwrap();
    clock.advance(14 * 86_400);
    assert_eq!(listed(s, "alice").await, Vec::<String>::new());
    assert_eq!(
        reason(s.refresh(e.refresh.unprotected_as_str()).await),
        "expired"
    );
    let f = s.dangerous_start_without_proof("alice").await.unwrap();
    assert_eq!(listed(s, "alice").await, vec![f.session_id.clone()]);
    s.revoke_all("alice").await.unwrap();
    assert!(s.list("alice").await.unwrap().is_empty());
    assert_eq!(
        listed(s, "bob").await,
        Vec::<String>::new(),
        "bob idled out too"
    );
}

#[tokio::test]
async fn a_session_is_revoked_by_id_only_for_its_own_subject() {
    let clock = ManualClock::new(NOW);
    let kw = kw(Arc::new(MemoryStore::new()), &clock, 10);
    let s = kw.sessions();
    let a = s.dangerous_start_without_proof("alice").await.unwrap();
    for (subject, id) in [
        ("mallory", a.session_id.as_str()),
        ("alice", "0123456789abcdef0123456789abcdef"),
        ("alice", "not hex"),
        ("alice", &a.session_id.to_uppercase()),
        ("alice", ""),
    ] {
        assert!(
            matches!(
                s.revoke_session(subject, id).await,
                Err(Error::Session(SessionError::Unknown))
            ),
            "{subject} {id}"
        );
    }
    s.refresh(a.refresh.unprotected_as_str()).await.unwrap();
}

#[tokio::test]
async fn metadata_is_kept_with_the_session_and_checked() {
    let clock = ManualClock::new(NOW);
    let mut policy = PasswordPolicy::default();
    policy.iterations = 1_000;
    policy.min_iterations = 1_000;
    let kw = sessions::kw_with(
        Arc::new(MemoryStore::new()),
        &clock,
        SessionPolicy::default(),
    );
    let passwords = Keyward::builder().password_policy(policy).build().unwrap();
    let stored = passwords
        .passwords()
        .hash(&Password::from("correct horse battery"))
        .unwrap();
    let proof = passwords
        .passwords()
        .verify("alice", &Password::from("correct horse battery"), &stored)
        .unwrap();
    let s = kw.sessions();
    s.start_with_meta(&proof, "Firefox on Linux").await.unwrap();
    let info = s.list("alice").await.unwrap();
    assert_eq!(info[0].meta.as_deref(), Some("Firefox on Linux"));
    let long = "x".repeat(257);
    for bad in ["", "a\nb", "tab\there", long.as_str()] {
        let refused = s.start_with_meta(&proof, bad).await.unwrap_err();
        assert!(matches!(refused, Error::InvalidInput(_)), "{bad:?}");
        assert_eq!((refused.status(), refused.code()), (400, "invalid_request"));
        assert_eq!(
            refused.to_string(),
            "invalid input: session metadata must be 1 to 256 bytes with no control characters"
        );
    }
    assert_eq!(s.list("alice").await.unwrap().len(), 1);
    // 1 and 256 bytes are metadata.
    let longest = "x".repeat(256);
    for good in ["x", longest.as_str()] {
        s.start_with_meta(&proof, good).await.unwrap();
    }
    // Started in the same second: the list's order among them is not
    // fixed, so each is looked up by its metadata.
    let info = s.list("alice").await.unwrap();
    assert_eq!(info.len(), 3);
    let metas: Vec<_> = info.iter().map(|i| i.meta.as_deref()).collect();
    for kept in ["Firefox on Linux", "x", longest.as_str()] {
        assert!(metas.contains(&Some(kept)), "{kept:?}");
    }
}

/// A password proof starts a session for the subject it was made for, and
/// the async verify makes the same proof as the sync one.
#[tokio::test]
async fn a_session_starts_for_the_subject_that_was_checked() {
    let clock = ManualClock::new(NOW);
    let kw = kw(Arc::new(MemoryStore::new()), &clock, 10);
    let s = kw.sessions();
    let passwords = fast_passwords();
    let (ada_pw, bob_pw) = (
        Password::from("ada's password"),
        Password::from("bob's password"),
    );
    let ada_hash = passwords.passwords().hash(&ada_pw).unwrap();
    let bob_hash = passwords.passwords().hash(&bob_pw).unwrap();
    let ada = passwords
        .passwords()
        .verify("ada", &ada_pw, &ada_hash)
        .unwrap();
    let bob = passwords
        .passwords()
        .verify_async("bob", &bob_pw, &bob_hash)
        .await
        .unwrap();
    assert_eq!((ada.subject(), bob.subject()), ("ada", "bob"));
    for (proof, subject) in [(&ada, "ada"), (&bob, "bob")] {
        let pair = s.start(proof).await.unwrap();
        let claims = s.authenticate(pair.access.unprotected_as_str()).unwrap();
        assert_eq!(claims.sub, subject);
        assert_eq!(s.list(subject).await.unwrap().len(), 1);
    }
    // A wrong password makes no proof, for anyone.
    assert!(matches!(
        passwords.passwords().verify("ada", &bob_pw, &ada_hash),
        Err(Error::PasswordMismatch)
    ));
}

#[tokio::test]
async fn a_subject_is_1_to_1024_bytes() {
    let clock = ManualClock::new(NOW);
    let kw = kw(Arc::new(MemoryStore::new()), &clock, 10);
    let s = kw.sessions();
    let passwords = fast_passwords();
    let pw = Password::from("correct horse battery");
    let stored = passwords.passwords().hash(&pw).unwrap();

    // A bad subject is the caller's input: 400, and never echoed.
    let long = "s".repeat(1025);
    for bad in ["", long.as_str()] {
        let proof = passwords.passwords().verify(bad, &pw, &stored).unwrap();
        for refused in [
            s.start(&proof).await.unwrap_err(),
            s.start_with_meta(&proof, "Firefox").await.unwrap_err(),
            s.dangerous_start_without_proof(bad).await.unwrap_err(),
            s.list(bad).await.unwrap_err(),
            s.challenge(&proof).await.unwrap_err(),
        ] {
            assert!(matches!(refused, Error::InvalidInput(_)), "{refused:?}");
            assert_eq!((refused.status(), refused.code()), (400, "invalid_request"));
            assert_eq!(
                refused.to_string(),
                "invalid input: subject must be 1 to 1024 bytes"
            );
        }
    }

    // The bounds themselves are subjects.
    let longest = "s".repeat(1024);
    for good in ["s", longest.as_str()] {
        let proof = passwords.passwords().verify(good, &pw, &stored).unwrap();
        let pair = s.start(&proof).await.unwrap();
        let claims = s.authenticate(pair.access.unprotected_as_str()).unwrap();
        assert_eq!(claims.sub, good);
        assert_eq!(s.list(good).await.unwrap().len(), 1);
        s.challenge(&proof).await.unwrap();
    }
}

#[tokio::test]
async fn a_full_list_ends_the_oldest_session() {
    let clock = ManualClock::new(NOW);
    let kw = kw(Arc::new(MemoryStore::new()), &clock, 10);
    let s = kw.sessions();
    let max = keyward::session::MAX_SESSIONS_PER_SUBJECT;
    let mut pairs = Vec::new();
    for _ in 0..max {
        pairs.push(s.dangerous_start_without_proof("alice").await.unwrap());
        clock.advance(1);
    }
    assert_eq!(s.list("alice").await.unwrap().len(), max);
    let newest = s.dangerous_start_without_proof("alice").await.unwrap();
    let ids = listed(s, "alice").await;
    assert_eq!(ids.len(), max);
    assert!(!ids.contains(&pairs[0].session_id), "the oldest is gone");
    assert!(ids.contains(&newest.session_id));
    // Its record is deleted, not only unlisted.
    assert_eq!(
        reason(s.refresh(pairs[0].refresh.unprotected_as_str()).await),
        "expired"
    );
    s.refresh(pairs[1].refresh.unprotected_as_str())
        .await
        .unwrap();
}

/// `revoke_all_found` says whether the subject had sessions on record, and
/// revokes either way.
#[tokio::test]
async fn revoke_all_found_tells_a_subject_with_sessions_from_one_without() {
    let clock = ManualClock::new(NOW);
    let kw = kw(Arc::new(MemoryStore::new()), &clock, 10);
    let s = kw.sessions();

    // Nobody: nothing on record.
    assert!(!s.revoke_all_found("nobody").await.unwrap());
    assert!(!s.revoke_all_found("nobody").await.unwrap());

    // Alice's session is found and revoked; another subject's is not.
    let a = s.dangerous_start_without_proof("alice").await.unwrap();
    let b = s.dangerous_start_without_proof("bob").await.unwrap();
    assert!(s.revoke_all_found("alice").await.unwrap());
    assert_eq!(
        reason(s.refresh(a.refresh.unprotected_as_str()).await),
        "revoked"
    );
    assert_eq!(
        reason(s.refresh(b.refresh.unprotected_as_str()).await),
        "ok"
    );
    // Its revoked family is still on record (kept to recognise reuse).
    assert!(s.revoke_all_found("alice").await.unwrap());

    // Past the families' absolute end, nothing is left to find.
    clock.advance(SessionPolicy::default().absolute_ttl_secs + 1);
    assert!(!s.revoke_all_found("alice").await.unwrap());

    // A store error fails closed.
    let down = FaultyStore::new(Arc::new(MemoryStore::new()));
    down.down(true);
    let kw = sessions::kw(Arc::new(down), &clock, 10);
    assert!(matches!(
        kw.sessions().revoke_all_found("alice").await,
        Err(Error::Store(_))
    ));
}
