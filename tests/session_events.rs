//! Session and one-time-code events through `tracing`: they name the
//! session id and the subject's audit tag, never the subject itself, a
//! token or a code. A test binary of its own: `tracing` caches per call
//! site whether anyone listens, so the events are captured where no other
//! test runs at the same time.
#![allow(clippy::unwrap_used, clippy::panic, clippy::arithmetic_side_effects)]

mod common;

use std::sync::Arc;

use keyward::clock::ManualClock;
use keyward::{JwtAlg, KeyRing, Keyward, MemoryStore, Purpose};

const SUBJECT: &str = "alice@example.com";

#[tokio::test]
async fn events_carry_a_subject_tag_and_nothing_personal_or_secret() {
    let (out, _guard) = common::events::capture();

    let clock = ManualClock::new(1_700_000_000);
    let kw = Keyward::builder()
        .issuer("https://auth.example.com")
        .audience("api")
        .keys(KeyRing::generate(JwtAlg::HS256).unwrap())
        .store(MemoryStore::new())
        .clock(Arc::new(clock.clone()))
        .build()
        .unwrap();
    let s = kw.sessions();
    let mut secrets = Vec::new();

    // A session's life: start, rotate, a grace replay, reuse detected.
    let first = s.dangerous_start_without_proof(SUBJECT).await.unwrap();
    let second = s.refresh(first.refresh.unprotected_as_str()).await.unwrap();
    let again = s.refresh(first.refresh.unprotected_as_str()).await.unwrap();
    clock.advance(60);
    assert!(s.refresh(first.refresh.unprotected_as_str()).await.is_err());
    // A logout, a revoke by id, a revoke-all.
    let other = s.dangerous_start_without_proof(SUBJECT).await.unwrap();
    s.revoke(other.refresh.unprotected_as_str()).await.unwrap();
    let third = s.dangerous_start_without_proof(SUBJECT).await.unwrap();
    s.revoke_session(SUBJECT, &third.session_id).await.unwrap();
    s.revoke_all(SUBJECT).await.unwrap();
    for pair in [&first, &second, &again, &other, &third] {
        secrets.push(pair.refresh.unprotected_as_str().to_owned());
        secrets.push(pair.access.unprotected_as_str().to_owned());
    }

    // Codes: issued, three wrong guesses lock, an operator unlocks.
    let otp = kw.otp();
    let code = otp.issue(SUBJECT, Purpose::Login).await.unwrap().code;
    let wrong = if code.unprotected_as_str() == "000000" {
        "000001"
    } else {
        "000000"
    };
    for _ in 0..3 {
        assert!(otp.verify(SUBJECT, Purpose::Login, wrong).await.is_err());
    }
    otp.unlock(SUBJECT).await.unwrap();
    secrets.push(code.unprotected_as_str().to_owned());

    let tag = kw.audit_tag(SUBJECT).await.unwrap().unwrap();
    let log = out.text();
    for event in [
        "session started",
        "refresh token rotated",
        "refresh grace replay",
        "refresh token reuse detected",
        "session revoked",
        "session revoked by id",
        "all sessions of subject revoked",
        "one-time code issued",
        "subject locked",
        "unlocked by an operator",
    ] {
        let lines: Vec<&str> = log.lines().filter(|l| l.contains(event)).collect();
        assert!(!lines.is_empty(), "no {event:?} event in:\n{log}");
        for line in lines {
            assert!(line.contains(" keyward::audit: "), "{line}");
            assert!(line.contains(&format!("tag={tag}")), "{line}");
        }
    }
    assert!(!log.contains(SUBJECT), "the subject in the log:\n{log}");
    assert!(
        !log.contains("alice"),
        "part of the subject in the log:\n{log}"
    );
    for secret in &secrets {
        assert!(!log.contains(secret.as_str()), "a token or code in the log");
    }
}
