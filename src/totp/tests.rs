#![allow(
    clippy::unwrap_used,
    clippy::panic,
    clippy::arithmetic_side_effects,
    clippy::indexing_slicing
)]

use super::*;
use crate::clock::ManualClock;
use crate::error::OtpError;
use crate::{JwtAlg, Keyward, MemoryStore};

/// 2001-09-09T01:46:30Z: a step boundary for 30-second steps.
const T0: u64 = 1_000_000_020;

fn service(clock: &ManualClock) -> (Keyward, Arc<MemoryStore>) {
    let store = Arc::new(MemoryStore::new());
    let kw = Keyward::builder()
        .keys(KeyRing::generate(JwtAlg::HS256).unwrap())
        .shared_store(Arc::clone(&store) as Arc<dyn Store>)
        .clock(Arc::new(clock.clone()))
        .build_partial()
        .unwrap();
    (kw, store)
}

/// The second-factor refusal in `r`.
fn totp_err<T: std::fmt::Debug>(r: Result<T, Error>) -> TotpError {
    match r {
        Err(Error::Totp(e)) => e,
        other => panic!("not a second-factor refusal: {other:?}"),
    }
}

/// The code the app shows at `now` for `e`.
fn code_at(e: &Enrollment, now: u64) -> String {
    let secret = base32_decode(e.secret().unprotected_as_str()).unwrap();
    format_code(hotp(TotpAlg::Sha1, &secret, step(now, 30), 6), 6)
}

async fn enrolled(kw: &Keyward, clock: &ManualClock, subject: &str) -> (Enrollment, RecoveryCodes) {
    let t = kw.totp().unwrap();
    let e = t
        .enroll(subject, "Example", "ada@example.com")
        .await
        .unwrap();
    let codes = t.confirm(subject, &code_at(&e, clock.now())).await.unwrap();
    (e, codes)
}

#[tokio::test]
async fn enroll_confirm_verify_and_no_code_twice() {
    let clock = ManualClock::new(T0);
    let (kw, _) = service(&clock);
    let t = kw.totp().unwrap();
    let e = t
        .enroll("alice", "Example", "ada@example.com")
        .await
        .unwrap();
    assert_eq!(e.secret().unprotected_as_str().len(), 32, "160 bits");
    let uri = e.uri().unprotected_as_str();
    assert!(
        uri.starts_with("otpauth://totp/Example:ada%40example.com?"),
        "{uri}"
    );
    assert!(uri.contains(e.secret().unprotected_as_str()));
    // Unconfirmed: not usable for login.
    let now_code = code_at(&e, T0);
    assert_eq!(
        totp_err(t.verify("alice", &now_code).await),
        TotpError::NotEnrolled
    );
    let codes = t.confirm("alice", &now_code).await.unwrap();
    assert_eq!(codes.codes().len(), RECOVERY_CODES);
    // The confirming code counts: it does not verify again.
    assert_eq!(
        totp_err(t.verify("alice", &now_code).await),
        TotpError::Replayed
    );
    // The next step's code verifies once, naming its step.
    clock.advance(30);
    let next = code_at(&e, T0 + 30);
    assert_eq!(
        t.verify("alice", &next).await.unwrap().step(),
        step(T0 + 30, 30)
    );
    assert_eq!(
        totp_err(t.verify("alice", &next).await),
        TotpError::Replayed
    );
    // A code a step behind the last accepted one is a replay, not a failure.
    assert_eq!(
        totp_err(t.verify("alice", &now_code).await),
        TotpError::Replayed
    );
    // One step ahead (skew 1) verifies; two steps ahead does not.
    assert!(t.verify("alice", &code_at(&e, T0 + 60)).await.is_ok());
    let far = code_at(&e, T0 + 120);
    assert!(matches!(
        t.verify("alice", &far).await.unwrap_err(),
        Error::Totp(TotpError::Invalid { .. })
    ));
    // A second enrollment is refused while one is confirmed.
    assert_eq!(
        totp_err(t.enroll("alice", "Example", "ada").await),
        TotpError::AlreadyEnrolled
    );
}

#[tokio::test]
async fn an_unconfirmed_enrollment_expires() {
    let clock = ManualClock::new(T0);
    let (kw, _) = service(&clock);
    let t = kw.totp().unwrap();
    let e = t.enroll("alice", "Example", "ada").await.unwrap();
    clock.advance(600);
    let r = t.confirm("alice", &code_at(&e, T0 + 600)).await;
    assert!(
        matches!(
            r,
            Err(Error::Totp(TotpError::Expired | TotpError::NotEnrolled))
        ),
        "{r:?}"
    );
    // Enrolling again works.
    let e = t.enroll("alice", "Example", "ada").await.unwrap();
    t.confirm("alice", &code_at(&e, T0 + 600)).await.unwrap();
}

#[tokio::test]
async fn wrong_codes_and_recovery_codes_share_the_code_lockout() {
    let clock = ManualClock::new(T0);
    let (kw, _) = service(&clock);
    let t = kw.totp().unwrap();
    let (e, codes) = enrolled(&kw, &clock, "alice").await;
    clock.advance(30);
    let good = code_at(&e, T0 + 30);
    let wrong = if good == "000000" { "000001" } else { "000000" };
    assert_eq!(
        totp_err(t.verify("alice", wrong).await),
        TotpError::Invalid { attempts_left: 2 }
    );
    assert_eq!(
        totp_err(t.recover("alice", "aaaa-aaaa-aaaa-aaaa").await),
        TotpError::Invalid { attempts_left: 1 }
    );
    // A wrong one-time code counts in the same window.
    kw.otp()
        .unwrap()
        .issue("alice", crate::Purpose::Login)
        .await
        .unwrap();
    assert!(
        kw.otp()
            .unwrap()
            .verify("alice", crate::Purpose::Login, "x")
            .await
            .is_err()
    );
    // Locked: even the right code and a right recovery code are refused.
    assert!(matches!(
        t.verify("alice", &good).await.unwrap_err(),
        Error::Otp(OtpError::Locked { .. })
    ));
    let first = codes.codes()[0].unprotected_as_str();
    assert!(matches!(
        t.recover("alice", first).await.unwrap_err(),
        Error::Otp(OtpError::Locked { .. })
    ));
    // After the lockout they work again.
    clock.advance(3_600);
    assert!(t.verify("alice", &code_at(&e, T0 + 3_630)).await.is_ok());
    assert_eq!(
        t.recover("alice", first).await.unwrap().left(),
        RECOVERY_CODES - 1
    );
}

#[tokio::test]
async fn a_recovery_code_works_once_and_a_new_set_replaces_the_old() {
    let clock = ManualClock::new(T0);
    let (kw, _) = service(&clock);
    let t = kw.totp().unwrap();
    let (_, codes) = enrolled(&kw, &clock, "alice").await;
    let first = codes.codes()[0].unprotected_as_str();
    assert_eq!(first.len(), 19);
    assert_eq!(first.matches('-').count(), 3);
    // Typed in capitals without dashes, it is the same code.
    let typed = first.replace('-', "").to_uppercase();
    assert_eq!(
        t.recover("alice", &typed).await.unwrap().left(),
        RECOVERY_CODES - 1
    );
    assert_eq!(totp_err(t.recover("alice", first).await), TotpError::Used);
    assert_eq!(
        t.recovery_left("alice").await.unwrap(),
        Some(RECOVERY_CODES - 1)
    );
    // Another subject's code is no code of alice's.
    let (_, bobs) = enrolled(&kw, &clock, "bob").await;
    assert!(matches!(
        totp_err(
            t.recover("alice", bobs.codes()[0].unprotected_as_str())
                .await
        ),
        TotpError::Invalid { .. }
    ));
    let fresh = t.regenerate_recovery("alice").await.unwrap();
    assert_eq!(
        t.recovery_left("alice").await.unwrap(),
        Some(RECOVERY_CODES)
    );
    assert!(matches!(
        totp_err(
            t.recover("alice", codes.codes()[1].unprotected_as_str())
                .await
        ),
        TotpError::Invalid { .. }
    ));
    let used = t
        .recover("alice", fresh.codes()[1].unprotected_as_str())
        .await
        .unwrap();
    assert_eq!((used.subject(), used.left()), ("alice", RECOVERY_CODES - 1));
}

#[tokio::test]
async fn the_store_holds_no_secret_and_a_moved_record_does_not_open() {
    let clock = ManualClock::new(T0);
    let (kw, store) = service(&clock);
    let t = kw.totp().unwrap();
    let (e, codes) = enrolled(&kw, &clock, "alice").await;
    enrolled(&kw, &clock, "bob").await;
    let secret_b32 = e.secret().unprotected_as_str().to_owned();
    let secret_hex = hex(&base32_decode(&secret_b32).unwrap());
    for key in store.live_keys() {
        let value = store.load(&key).await.unwrap().unwrap().value;
        let text = String::from_utf8_lossy(&value).to_lowercase();
        assert!(!text.contains(&secret_b32.to_lowercase()), "{key}");
        assert!(!text.contains(&secret_hex), "{key}");
        for c in codes.codes() {
            let c = c.unprotected_as_str();
            assert!(
                !text.contains(c) && !text.contains(&c.replace('-', "")),
                "{key}"
            );
        }
    }
    // Alice's factor record moved under bob's key does not open for bob.
    let (ak, bk) = (t.factor_key("alice"), t.factor_key("bob"));
    let alices = store.load(&ak).await.unwrap().unwrap();
    let bobs = store.load(&bk).await.unwrap().unwrap();
    let _ = store
        .swap(
            &bk,
            Some(bobs.version),
            &alices.value,
            Duration::from_secs(60),
        )
        .await
        .unwrap();
    clock.advance(30);
    let r = t.verify("bob", &code_at(&e, T0 + 30)).await;
    assert!(matches!(r, Err(Error::Store(_))), "{r:?}");
}

#[tokio::test]
async fn disable_and_erase_remove_the_factor() {
    let clock = ManualClock::new(T0);
    let (kw, _) = service(&clock);
    let t = kw.totp().unwrap();
    enrolled(&kw, &clock, "alice").await;
    assert!(t.disable("alice").await.unwrap());
    assert!(!t.disable("alice").await.unwrap());
    assert_eq!(t.recovery_left("alice").await.unwrap(), None);
    enrolled(&kw, &clock, "alice").await;
    assert_eq!(t.erase("alice").await.unwrap(), 1);
    assert_eq!(t.erase("alice").await.unwrap(), 0);
}

#[tokio::test]
async fn a_subject_is_1_to_1024_bytes() {
    let clock = ManualClock::new(T0);
    let (kw, _) = service(&clock);
    let t = kw.totp().unwrap();
    let long = "s".repeat(1025);
    for bad in ["", long.as_str()] {
        let refused = t.enroll(bad, "Example", "ada").await.unwrap_err();
        assert!(matches!(refused, Error::InvalidInput(_)), "{refused:?}");
        assert_eq!((refused.status(), refused.code()), (400, "invalid_request"));
        assert_eq!(
            refused.to_string(),
            "invalid input: subject must be 1 to 1024 bytes"
        );
        for refused in [
            t.confirm(bad, "123456").await.map(|_| ()),
            t.verify(bad, "123456").await.map(|_| ()),
            t.regenerate_recovery(bad).await.map(|_| ()),
            t.recover(bad, "aaaa-aaaa-aaaa-aaaa").await.map(|_| ()),
            t.is_enrolled(bad).await.map(|_| ()),
            t.recovery_left(bad).await.map(|_| ()),
            t.disable(bad).await.map(|_| ()),
        ] {
            assert!(
                matches!(refused, Err(Error::InvalidInput(_))),
                "{refused:?}"
            );
        }
    }
    // The bounds themselves are subjects.
    let longest = "s".repeat(1024);
    for good in ["s", longest.as_str()] {
        let (_, codes) = enrolled(&kw, &clock, good).await;
        assert!(t.is_enrolled(good).await.unwrap());
        let used = t
            .recover(good, codes.codes()[0].unprotected_as_str())
            .await
            .unwrap();
        assert_eq!(used.left(), 9);
        assert_eq!(t.recovery_left(good).await.unwrap(), Some(9));
        assert!(t.disable(good).await.unwrap());
    }
}

#[tokio::test]
async fn the_code_now_needs_a_base32_secret() {
    let clock = ManualClock::new(T0);
    let (kw, _) = service(&clock);
    let t = kw.totp().unwrap();
    let e = t.enroll("alice", "Example", "alice").await.unwrap();
    assert_eq!(t.dangerous_code_now(&e).unwrap(), code_at(&e, T0));
    let bad = Enrollment {
        secret: OpaqueToken::new("not base32!".to_owned()),
        uri: OpaqueToken::new(String::new()),
        factor: e.factor().to_owned(),
    };
    let refused = t.dangerous_code_now(&bad).unwrap_err();
    assert!(matches!(refused, Error::InvalidInput(_)), "{refused:?}");
    assert_eq!(refused.status(), 400);
    assert!(!refused.to_string().contains("not base32!"));
}

#[test]
fn labels_an_app_cannot_show_are_refused() {
    for bad in ["", "a:b", "a\nb", &"x".repeat(257)] {
        assert!(check_label(bad, "issuer").is_err(), "{bad:?}");
    }
    assert!(check_label("Example Inc.", "issuer").is_ok());
}
