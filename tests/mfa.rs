//! Sessions started with a second factor: their access tokens carry
//! `amr` (RFC 8176) through every refresh, `require_mfa` tells them apart
//! from password-only sessions, and a second-factor proof starts a session
//! for its own subject only. An MFA challenge starts one session, for its
//! own subject, within its lifetime, after a TOTP code or a recovery code.
#![allow(clippy::unwrap_used, clippy::panic, clippy::arithmetic_side_effects)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use keyward::clock::ManualClock;
use keyward::jwt::JwtError;
use keyward::otp::Purpose;
use keyward::session::MFA_CHALLENGE_TTL_SECS;
use keyward::store::{Commit, Op, Record, Snapshot, Store, StoreError, StoreFuture};
use keyward::totp::Enrollment;
use keyward::{
    Complete, Error, JwtAlg, KeyRing, Keyward, MemoryStore, Password, PasswordPolicy, SessionError,
    Verified,
};

fn service(clock: &ManualClock) -> Keyward<Complete> {
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
    let verified = kw.passwords().verify("ada", &pw, &stored).unwrap();
    let totp = kw.totp();
    let enrollment = totp.enroll("ada", "Example", "ada").await.unwrap();
    totp.confirm("ada", &totp.dangerous_code_now(&enrollment).unwrap())
        .await
        .unwrap();
    clock.advance(30);
    let second = totp
        .verify("ada", &totp.dangerous_code_now(&enrollment).unwrap())
        .await
        .unwrap();
    let s = kw.sessions();

    // Password only: `pwd`, and a step-up route refuses it.
    let plain = s.start(&verified).await.unwrap();
    let claims = s.authenticate(plain.access.unprotected_as_str()).unwrap();
    assert_eq!(claims.amr, ["pwd"]);
    assert!(!claims.is_mfa());
    assert!(matches!(
        claims.require_mfa(),
        Err(Error::Jwt(JwtError::MfaRequired))
    ));

    // With the second factor: `pwd`, `otp`, `mfa`, kept by a refresh.
    let mfa = s.start_with_second_factor(&verified, second).await.unwrap();
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

    // A second-factor proof is for its own subject only: ada's code does
    // not complete bob's password check.
    clock.advance(30);
    let other = totp
        .verify("ada", &totp.dangerous_code_now(&enrollment).unwrap())
        .await
        .unwrap();
    let bob = kw.passwords().verify("bob", &pw, &stored).unwrap();
    let refused = s.start_with_second_factor(&bob, other).await.unwrap_err();
    assert!(matches!(refused, Error::InvalidInput(_)), "{refused:?}");
    assert_eq!(refused.status(), 400);

    // A session without any proof says nothing of how.
    let bare = s.dangerous_start_without_proof("ada").await.unwrap();
    let claims = s.authenticate(bare.access.unprotected_as_str()).unwrap();
    assert!(claims.amr.is_empty());
}

/// ada, with a confirmed factor, her password proof, the enrollment and
/// the recovery codes.
async fn enrolled(
    kw: &Keyward<Complete>,
    clock: &ManualClock,
) -> (Verified, Enrollment, Vec<String>) {
    let pw = Password::from("correct horse battery staple");
    let stored = kw.passwords().hash(&pw).unwrap();
    let verified = kw.passwords().verify("ada", &pw, &stored).unwrap();
    let totp = kw.totp();
    let enrollment = totp.enroll("ada", "Example", "ada").await.unwrap();
    let codes = totp
        .confirm("ada", &totp.dangerous_code_now(&enrollment).unwrap())
        .await
        .unwrap();
    let codes = codes
        .codes()
        .iter()
        .map(|c| c.unprotected_as_str().to_owned())
        .collect();
    clock.advance(30);
    (verified, enrollment, codes)
}

fn invalid_challenge<T: std::fmt::Debug>(r: Result<T, Error>) {
    assert!(
        matches!(r, Err(Error::Session(SessionError::ChallengeInvalid))),
        "{r:?}"
    );
}

#[tokio::test]
async fn a_challenge_starts_one_session_after_the_second_factor() {
    let clock = ManualClock::new(1_700_000_000);
    let kw = service(&clock);
    let (verified, enrollment, recovery) = enrolled(&kw, &clock).await;
    let (s, totp) = (kw.sessions(), kw.totp());

    // Password, then a TOTP code: `pwd`, `otp`, `mfa`, and the device.
    let challenge = s.challenge(&verified).await.unwrap();
    let c = challenge.unprotected_as_str();
    assert!(c.starts_with("kwm_"), "{c}");
    assert_eq!(s.challenge_subject(c).await.unwrap(), "ada");
    let code = totp.dangerous_code_now(&enrollment).unwrap();
    let proof = totp.verify("ada", &code).await.unwrap();
    let pair = s
        .start_after_challenge(c, proof, Some("Firefox on Linux"))
        .await
        .unwrap();
    let claims = s.authenticate(pair.access.unprotected_as_str()).unwrap();
    assert_eq!(claims.amr, ["pwd", "otp", "mfa"]);
    let listed = s.list("ada").await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].meta.as_deref(), Some("Firefox on Linux"));
    // Used up: not again, not even its subject is told.
    let again = totp.recover("ada", &recovery[1]).await.unwrap();
    invalid_challenge(s.start_after_challenge(c, again, None).await);
    invalid_challenge(s.challenge_subject(c).await);

    // Password, then a recovery code: `pwd`, `mfa`.
    let challenge = s.challenge(&verified).await.unwrap();
    let used = totp.recover("ada", &recovery[0]).await.unwrap();
    assert_eq!(used.left(), 8, "two of ten used");
    let pair = s
        .start_after_challenge(challenge.unprotected_as_str(), used, None)
        .await
        .unwrap();
    let claims = s.authenticate(pair.access.unprotected_as_str()).unwrap();
    assert_eq!(claims.amr, ["pwd", "mfa"]);
    claims.require_mfa().unwrap();

    // An emailed login code, then a TOTP code: `otp`, `mfa`.
    let otp = kw.otp();
    let sent = otp.issue("ada", Purpose::Login).await.unwrap();
    let first = otp
        .verify("ada", Purpose::Login, sent.code.unprotected_as_str())
        .await
        .unwrap();
    let challenge = s.challenge_after_otp(first).await.unwrap();
    clock.advance(30);
    let code = totp.dangerous_code_now(&enrollment).unwrap();
    let proof = totp.verify("ada", &code).await.unwrap();
    let pair = s
        .start_after_challenge(challenge.unprotected_as_str(), proof, None)
        .await
        .unwrap();
    let claims = s.authenticate(pair.access.unprotected_as_str()).unwrap();
    assert_eq!(claims.amr, ["otp", "mfa"]);

    // A code issued for another purpose is no first factor.
    clock.advance(60);
    let reset = otp.issue("ada", Purpose::PasswordReset).await.unwrap();
    let reset = otp
        .verify(
            "ada",
            Purpose::PasswordReset,
            reset.code.unprotected_as_str(),
        )
        .await
        .unwrap();
    assert!(matches!(
        s.challenge_after_otp(reset).await,
        Err(Error::Otp(keyward::OtpError::NotForLogin))
    ));
}

#[tokio::test]
async fn a_challenge_is_refused_when_forged_foreign_expired_or_malformed() {
    let clock = ManualClock::new(1_700_000_000);
    let kw = service(&clock);
    let (verified, _, recovery) = enrolled(&kw, &clock).await;
    let (s, totp) = (kw.sessions(), kw.totp());
    // One proof per try: a start takes its proof.
    let mut codes = recovery.iter();
    let mut proof = async || totp.recover("ada", codes.next().unwrap()).await.unwrap();

    // bob's challenge does not take ada's proof, and stays live.
    let bob = kw
        .passwords()
        .verify(
            "bob",
            &Password::from("bob's own password"),
            &kw.passwords()
                .hash(&Password::from("bob's own password"))
                .unwrap(),
        )
        .unwrap();
    let bobs = s.challenge(&bob).await.unwrap();
    let refused = s
        .start_after_challenge(bobs.unprotected_as_str(), proof().await, None)
        .await
        .unwrap_err();
    assert!(matches!(refused, Error::InvalidInput(_)), "{refused:?}");
    assert_eq!(refused.status(), 400);
    assert_eq!(
        s.challenge_subject(bobs.unprotected_as_str())
            .await
            .unwrap(),
        "bob"
    );

    // A changed MAC, another key's challenge, and shapes that are none.
    let real = s.challenge(&verified).await.unwrap();
    let real = real.unprotected_as_str();
    assert!(real.contains("_616461_"), "the subject, in hex: {real}");
    let last = real.chars().last().unwrap();
    let flipped = format!(
        "{}{}",
        &real[..real.len() - 1],
        if last == '0' { '1' } else { '0' }
    );
    let other = service(&clock);
    let foreign = other.sessions().challenge(&verified).await.unwrap();
    for bad in [flipped.as_str(), foreign.unprotected_as_str()] {
        invalid_challenge(s.start_after_challenge(bad, proof().await, None).await);
    }
    for bad in [
        flipped.as_str(),
        foreign.unprotected_as_str(),
        "",
        "kwm",
        "kwm__",
        &real.replacen("kwm_", "kwr_", 1),
        // ada's challenge, named bob's: the MAC covers the subject.
        &real.replacen("_616461_", "_626f62_", 1),
        &format!("{real}_00"),
        &real.to_uppercase(),
    ] {
        invalid_challenge(s.challenge_subject(bad).await);
    }
    // Bad metadata is refused before the challenge is used.
    let long = "x".repeat(257);
    for bad in ["", "a\nb", long.as_str()] {
        assert!(matches!(
            s.start_after_challenge(real, proof().await, Some(bad))
                .await,
            Err(Error::InvalidInput(_))
        ));
    }
    assert_eq!(s.challenge_subject(real).await.unwrap(), "ada");

    // Live until its lifetime ends, on the service's clock.
    clock.advance(MFA_CHALLENGE_TTL_SECS - 1);
    assert_eq!(s.challenge_subject(real).await.unwrap(), "ada");
    clock.advance(1);
    invalid_challenge(s.challenge_subject(real).await);
    invalid_challenge(s.start_after_challenge(real, proof().await, None).await);
}

#[tokio::test]
async fn two_proofs_racing_for_one_challenge_start_one_session() {
    let clock = ManualClock::new(1_700_000_000);
    let kw = service(&clock);
    let (verified, _, recovery) = enrolled(&kw, &clock).await;
    let (s, totp) = (kw.sessions(), kw.totp());
    let challenge = s.challenge(&verified).await.unwrap();
    let c = challenge.unprotected_as_str();
    let a = totp.recover("ada", &recovery[0]).await.unwrap();
    let b = totp.recover("ada", &recovery[1]).await.unwrap();
    let (a, b) = tokio::join!(
        s.start_after_challenge(c, a, None),
        s.start_after_challenge(c, b, None)
    );
    assert_eq!(u8::from(a.is_ok()) + u8::from(b.is_ok()), 1, "{a:?} {b:?}");
    let lost = if a.is_ok() { b } else { a };
    invalid_challenge(lost);
    assert_eq!(s.list("ada").await.unwrap().len(), 1);
}

/// A store that refuses, while `on`, every commit that writes a session
/// family (a session start) and nothing else.
#[derive(Debug)]
struct NoNewSessions {
    inner: Arc<dyn Store>,
    on: AtomicBool,
}

impl Store for NoNewSessions {
    fn load<'a>(&'a self, key: &'a str) -> StoreFuture<'a, Option<Record>> {
        self.inner.load(key)
    }

    fn load_many<'a>(&'a self, keys: &'a [&'a str]) -> StoreFuture<'a, Snapshot> {
        self.inner.load_many(keys)
    }

    fn commit<'a>(&'a self, ops: &'a [Op<'a>]) -> StoreFuture<'a, Commit> {
        if self.on.load(Ordering::SeqCst) && ops.iter().any(|op| op.key.starts_with("kw:fam:")) {
            return Box::pin(async { Err(StoreError::Unavailable("no new sessions".into())) });
        }
        self.inner.commit(ops)
    }
}

/// A start that does not commit leaves the challenge live, for a retry:
/// the challenge goes in the commit that starts the session, not in one
/// of its own before it.
#[tokio::test]
async fn a_failed_start_does_not_use_the_challenge_up() {
    let clock = ManualClock::new(1_700_000_000);
    let store = Arc::new(NoNewSessions {
        inner: Arc::new(MemoryStore::new()),
        on: AtomicBool::new(false),
    });
    let mut policy = PasswordPolicy::default();
    policy.iterations = 1_000;
    let kw = Keyward::builder()
        .password_policy(policy)
        .keys(KeyRing::generate(JwtAlg::HS256).unwrap())
        .issuer("https://auth.example")
        .audience("api")
        .shared_store(Arc::clone(&store) as Arc<dyn Store>)
        .clock(Arc::new(clock.clone()))
        .build()
        .unwrap();
    let (verified, _, recovery) = enrolled(&kw, &clock).await;
    let (s, totp) = (kw.sessions(), kw.totp());
    let challenge = s.challenge(&verified).await.unwrap();
    let c = challenge.unprotected_as_str();
    let first = totp.recover("ada", &recovery[0]).await.unwrap();
    store.on.store(true, Ordering::SeqCst);
    assert!(matches!(
        s.start_after_challenge(c, first, None).await,
        Err(Error::Store(_))
    ));
    store.on.store(false, Ordering::SeqCst);
    assert_eq!(s.challenge_subject(c).await.unwrap(), "ada");
    let second = totp.recover("ada", &recovery[1]).await.unwrap();
    let pair = s.start_after_challenge(c, second, None).await.unwrap();
    let claims = s.authenticate(pair.access.unprotected_as_str()).unwrap();
    assert_eq!(claims.amr, ["pwd", "mfa"]);
    invalid_challenge(s.challenge_subject(c).await);
}

#[tokio::test]
async fn a_factor_counts_once_confirmed() {
    let clock = ManualClock::new(1_700_000_000);
    let kw = service(&clock);
    let totp = kw.totp();
    assert!(!totp.is_enrolled("ada").await.unwrap());
    let enrollment = totp.enroll("ada", "Example", "ada").await.unwrap();
    assert!(!totp.is_enrolled("ada").await.unwrap(), "not yet confirmed");
    let _codes = totp
        .confirm("ada", &totp.dangerous_code_now(&enrollment).unwrap())
        .await
        .unwrap();
    assert!(totp.is_enrolled("ada").await.unwrap());
    assert!(!totp.is_enrolled("bob").await.unwrap());
    assert!(totp.disable("ada").await.unwrap());
    assert!(!totp.is_enrolled("ada").await.unwrap());
}

/// The claims of the first factor's proof wait with the challenge and go
/// into the session the second factor starts; a challenge without them
/// starts a session without them.
#[tokio::test]
async fn a_challenge_carries_the_proofs_claims() {
    let clock = ManualClock::new(1_700_000_000);
    let kw = service(&clock);
    let (verified, enrollment, _) = enrolled(&kw, &clock).await;
    let (s, totp) = (kw.sessions(), kw.totp());
    let roles = keyward::SessionClaims::new(&serde_json::json!({"roles": ["admin"]})).unwrap();
    let challenge = s
        .challenge(&verified.with_claims(roles.clone()))
        .await
        .unwrap();
    let proof = totp
        .verify("ada", &totp.dangerous_code_now(&enrollment).unwrap())
        .await
        .unwrap();
    let pair = s
        .start_after_challenge(challenge.unprotected_as_str(), proof, None)
        .await
        .unwrap();
    let claims = s.authenticate(pair.access.unprotected_as_str()).unwrap();
    assert_eq!(
        (claims.extra, claims.amr),
        (roles, vec!["pwd".to_owned(), "otp".into(), "mfa".into()])
    );
    let next = s.refresh(pair.refresh.unprotected_as_str()).await.unwrap();
    let kept = s.authenticate(next.access.unprotected_as_str()).unwrap();
    assert_eq!(kept.extra.get("roles"), Some(&serde_json::json!(["admin"])));
}
