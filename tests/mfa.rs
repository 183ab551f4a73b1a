//! Sessions started with a second factor: their access tokens carry
//! `amr` (RFC 8176) through every refresh, `require_mfa` tells them apart
//! from password-only sessions, and a second-factor proof starts a session
//! for its own subject only.
#![allow(clippy::unwrap_used, clippy::panic, clippy::arithmetic_side_effects)]

use std::sync::Arc;

use keyward::clock::ManualClock;
use keyward::jwt::JwtError;
use keyward::{Error, JwtAlg, KeyRing, Keyward, MemoryStore, Password, PasswordPolicy};

fn service(clock: &ManualClock) -> Keyward {
    let mut policy = PasswordPolicy::default();
    policy.iterations = 1_000;
    Keyward::builder()
        .password_policy(policy)
        .keys(KeyRing::generate(JwtAlg::HS256).unwrap())
        .issuer("https://auth.example")
        .audience("api")
        .store(MemoryStore::new())
        .clock(Arc::new(clock.clone()))
        .build()
        .unwrap()
}

#[tokio::test]
async fn a_second_factor_session_carries_mfa_through_refreshes() {
    let clock = ManualClock::new(1_700_000_000);
    let kw = service(&clock);
    let pw = Password::from("correct horse battery staple");
    let stored = kw.passwords().hash(&pw).unwrap();
    let verified = kw.passwords().verify(&pw, &stored).unwrap();
    let totp = kw.totp().unwrap();
    let enrollment = totp.enroll("ada", "Example", "ada").await.unwrap();
    totp.confirm("ada", &totp.dangerous_code_now(&enrollment).unwrap())
        .await
        .unwrap();
    clock.advance(30);
    let second = totp
        .verify("ada", &totp.dangerous_code_now(&enrollment).unwrap())
        .await
        .unwrap();
    let s = kw.sessions().unwrap();

    // Password only: `pwd`, and a step-up route refuses it.
    let plain = s.start(&verified, "ada").await.unwrap();
    let claims = s.authenticate(plain.access.unprotected_as_str()).unwrap();
    assert_eq!(claims.amr, ["pwd"]);
    assert!(!claims.is_mfa());
    assert!(matches!(
        claims.require_mfa(),
        Err(Error::Jwt(JwtError::MfaRequired))
    ));

    // With the second factor: `pwd`, `otp`, `mfa`, kept by a refresh.
    let mfa = s
        .start_with_second_factor(&verified, &second, "ada")
        .await
        .unwrap();
    let claims = s.authenticate(mfa.access.unprotected_as_str()).unwrap();
    assert_eq!(claims.amr, ["pwd", "otp", "mfa"]);
    claims.require_mfa().unwrap();
    let refreshed = s.refresh(mfa.refresh.unprotected_as_str()).await.unwrap();
    let claims = s
        .authenticate_strict(refreshed.access.unprotected_as_str())
        .await
        .unwrap();
    assert_eq!(claims.amr, ["pwd", "otp", "mfa"]);
    claims.require_mfa().unwrap();

    // A proof is for its own subject only.
    assert!(matches!(
        s.start_with_second_factor(&verified, &second, "bob").await,
        Err(Error::Config(_))
    ));

    // A session without any proof says nothing of how.
    let bare = s.dangerous_start_without_proof("ada").await.unwrap();
    let claims = s.authenticate(bare.access.unprotected_as_str()).unwrap();
    assert!(claims.amr.is_empty());
}
