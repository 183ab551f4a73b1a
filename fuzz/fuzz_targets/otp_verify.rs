//! One-time codes on a `MemoryStore`, in a tokio current-thread runtime,
//! with a `ManualClock`. Two modes:
//!
//! - an arbitrary string presented as the code (and as the subject) beside
//!   one issued code: only the issued code is accepted, once; anything
//!   else is one counted failure;
//! - a sequence of operations on two subjects and two purposes (issue,
//!   verify the right, a wrong or an arbitrary code, let time pass,
//!   unlock), under a policy taken from the input. Every outcome must be
//!   the one the lockout rules of `src/otp.rs` give, and, checked apart
//!   from that model: never more than `max_attempts` unforgiven `Invalid`
//!   before a lock (a success forgives only the guesses at its own code);
//!   never more than `max_attempts` `Invalid` at one code in its life; a
//!   right code is accepted only when issued, unexpired, not locked, not
//!   used up by wrong guesses, and only once; a lock holds until
//!   `retry_after` has passed or an operator unlocks.
#![no_main]

use std::collections::BTreeMap;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use keyward::Clock;
use keyward::clock::ManualClock;
use keyward::{
    Error, Keyward, MemoryStore, Otp, OtpError, OtpPolicy, OtpVerified, Purpose, ThrottlePolicy,
};
use keyward_fuzz::{ByteRng, NOW};
use libfuzzer_sys::fuzz_target;

const SUBJECTS: [&str; 2] = ["user-42", "user-43"];
/// A presented code longer than this is a failure without being hashed
/// (`MAX_CODE_INPUT` in `src/otp.rs`).
const MAX_CODE_INPUT: usize = 64;
/// How long an expired code is reported as expired rather than missing
/// (`EXPIRED_NOTICE_SECS`); past it the memory store may drop the record.
const EXPIRED_NOTICE_SECS: u64 = 86_400;

static RT: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime")
});

fn purpose(i: u8) -> Purpose {
    if i & 1 == 0 {
        Purpose::Login
    } else {
        Purpose::PasswordReset
    }
}

/// A `Keyward` whose code-send throttle never gets in the way: the
/// lockout is what is under test.
fn otp(clock: &ManualClock, policy: OtpPolicy) -> Keyward {
    let mut throttle = ThrottlePolicy::default();
    throttle.code_send_burst = 1_000_000;
    throttle.code_send_period_secs = 1;
    Keyward::builder()
        .keys(keyward_fuzz::keyring())
        .store(MemoryStore::new())
        .clock(Arc::new(clock.clone()))
        .otp_policy(policy)
        .throttle_policy(throttle)
        .build_partial()
        .expect("the fuzz Keyward builds")
}

fn otp_error(result: Result<OtpVerified, Error>) -> OtpError {
    match result {
        Err(Error::Otp(e)) => e,
        other => panic!("expected an OtpError, got {other:?}"),
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    RT.block_on(async {
        if mode & 1 == 0 {
            presented_string(rest).await;
        } else {
            operations(rest).await;
        }
    });
});

/// Any string as the code, then the right code; any string as the subject.
async fn presented_string(input: &[u8]) {
    let presented = String::from_utf8_lossy(input);
    let clock = ManualClock::new(NOW);
    let kw = otp(&clock, OtpPolicy::default());
    let otp = kw.otp().expect("otp");
    let (subject, login) = (SUBJECTS[0], Purpose::Login);
    let code = otp
        .issue_with_rng(subject, login.clone(), &mut ByteRng(&[7, 0, 0, 0]))
        .await
        .expect("issue");
    let code = code.code.unprotected_as_str();
    let right = presented == code;
    match otp.verify(subject, login.clone(), &presented).await {
        Ok(v) => {
            assert!(right, "a code keyward did not issue was accepted");
            assert_eq!((v.subject(), v.purpose()), (subject, &login));
        }
        Err(e) => {
            assert!(!right, "the issued code was refused: {e}");
            assert_eq!(
                e.to_string(),
                Error::from(OtpError::Invalid { attempts_left: 2 }).to_string()
            );
        }
    }
    // The right code now: used up if it was just presented, else accepted.
    let again = otp.verify(subject, login.clone(), code).await;
    if right {
        assert_eq!(otp_error(again), OtpError::NoCode, "a code was used twice");
    } else {
        again.expect("one failure does not lock");
    }
    // Any string as the subject: only the length is checked, and nobody
    // else has a code.
    match otp.verify(&presented, login, "123456").await {
        Err(Error::InvalidInput(_)) => {
            assert!(presented.is_empty() || presented.len() > 1024);
        }
        other => {
            assert!(!presented.is_empty() && presented.len() <= 1024);
            if presented != subject {
                assert_eq!(otp_error(other), OtpError::NoCode);
            }
        }
    }
}

/// The rules of `src/otp.rs`, for one subject.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Model {
    /// Failures since the last lock or unlock, less those forgiven.
    window: u32,
    /// Failures since the last unlock, less those forgiven.
    consecutive: u32,
    locked_until: Option<u64>,
    until_unlock: bool,
    /// Pending code, its expiry, the wrong guesses it has faced in its life
    /// and how many of those are still counted, per purpose.
    codes: BTreeMap<u8, (String, u64, u32, u32)>,
}

impl Model {
    fn refusal(&self, now: u64) -> Option<OtpError> {
        if self.until_unlock {
            return Some(OtpError::LockedUntilUnlock);
        }
        match self.locked_until {
            Some(until) if now < until => Some(OtpError::Locked {
                retry_after: Duration::from_secs(until - now),
            }),
            _ => None,
        }
    }

    fn issue(&mut self, p: u8, code: &str, now: u64, policy: &OtpPolicy) -> Result<u64, OtpError> {
        if let Some(refusal) = self.refusal(now) {
            return Err(refusal);
        }
        if self.locked_until.is_some_and(|u| u <= now) {
            self.locked_until = None;
        }
        let expires = now.saturating_add(policy.code_ttl_secs);
        self.codes.insert(p, (code.to_owned(), expires, 0, 0));
        Ok(expires)
    }

    fn verify(&mut self, p: u8, code: &str, now: u64, policy: &OtpPolicy) -> Result<(), OtpError> {
        if let Some(refusal) = self.refusal(now) {
            return Err(refusal);
        }
        let Some((pending, expires, guesses, counted)) = self.codes.get(&p).cloned() else {
            return Err(OtpError::NoCode);
        };
        if now >= expires {
            return Err(OtpError::Expired);
        }
        if self.locked_until.is_some_and(|u| u <= now) {
            self.locked_until = None;
        }
        if code.len() <= MAX_CODE_INPUT && code == pending {
            // A success forgives the guesses at its own code only.
            self.codes.remove(&p);
            self.window -= counted.min(self.window);
            self.consecutive -= counted.min(self.consecutive);
            return Ok(());
        }
        self.window += 1;
        self.consecutive += 1;
        let (guesses, counted) = (guesses + 1, counted + 1);
        let attempts_left = if self.consecutive >= policy.max_consecutive_failures {
            self.until_unlock = true;
            self.locked_until = None;
            0
        } else if self.window >= policy.max_attempts {
            self.locked_until = Some(now + policy.lockout_secs);
            0
        } else {
            // A code is used up by its `max_attempts`-th wrong guess.
            if guesses >= policy.max_attempts {
                self.codes.remove(&p);
            } else {
                self.codes.insert(p, (pending, expires, guesses, counted));
            }
            return Err(OtpError::Invalid {
                attempts_left: (policy.max_attempts - self.window)
                    .min(policy.max_consecutive_failures - self.consecutive)
                    .min(policy.max_attempts - guesses),
            });
        };
        if attempts_left == 0 {
            self.window = 0;
            self.codes.clear();
        }
        Err(OtpError::Invalid { attempts_left })
    }

    fn unlock(&mut self) {
        let mut codes = std::mem::take(&mut self.codes);
        for entry in codes.values_mut() {
            entry.3 = 0;
        }
        *self = Model {
            codes,
            ..Model::default()
        };
    }
}

/// What the checks outside the model remember of one subject, from the
/// outcomes alone.
#[derive(Debug, Default)]
struct Seen {
    /// `Invalid` outcomes since the last lock or unlock, less the guesses at
    /// codes that then succeeded.
    invalid_run: u32,
    /// A lock is known to hold until this time (`u64::MAX`: until unlock).
    lock_end: Option<u64>,
    /// Per purpose: the last issued code, its expiry, whether it was used
    /// up or discarded by a lock, and the `Invalid` outcomes it has faced.
    issued: BTreeMap<u8, (String, u64, bool, u32)>,
}

impl Seen {
    fn locked_at(&self, now: u64) -> bool {
        self.lock_end.is_some_and(|end| now < end)
    }
}

async fn operations(input: &[u8]) {
    let [a, b, c, ops @ ..] = input else {
        return;
    };
    let mut policy = OtpPolicy::default();
    policy.max_attempts = 1 + u32::from(*a % 10);
    policy.max_consecutive_failures =
        policy.max_attempts + u32::from(*b) % (101 - policy.max_attempts);
    policy.code_ttl_secs = [1, 60, 600, 3_600][usize::from(*c & 3)];
    policy.lockout_secs = [1, 60, 3_600, 604_800][usize::from((*c >> 2) & 3)];
    policy.digits = 6 + u32::from((*c >> 4) % 4);
    let clock = ManualClock::new(NOW);
    let kw = otp(&clock, policy.clone());
    let otp = kw.otp().expect("otp");
    let digits = usize::try_from(policy.digits).expect("digits");

    let mut models = [Model::default(), Model::default()];
    let mut seen = [Seen::default(), Seen::default()];
    let mut ops = ops.iter();
    while let Some(&op) = ops.next() {
        let s = usize::from((op >> 3) & 1);
        let p = (op >> 4) & 1;
        let now = clock.now();
        match op % 8 {
            0 => {
                let mut bytes = [0u8; 4];
                for byte in &mut bytes {
                    *byte = ops.next().copied().unwrap_or(0);
                }
                issue(
                    otp,
                    &policy,
                    &mut models[s],
                    &mut seen[s],
                    s,
                    p,
                    &bytes,
                    now,
                )
                .await;
            }
            op @ 1..=3 => {
                let last = seen[s].issued.get(&p).map(|(code, _, _, _)| code.clone());
                let code = match (op, last) {
                    (1, Some(code)) => code,
                    // A wrong code: the last one with its first digit
                    // changed.
                    (2, Some(code)) => {
                        let first = code.as_bytes()[0] - b'0';
                        format!("{}{}", (first + 1) % 10, &code[1..])
                    }
                    (3, _) => {
                        let len = usize::from(ops.next().copied().unwrap_or(0) % 80);
                        let taken: Vec<u8> = ops.by_ref().take(len).copied().collect();
                        String::from_utf8_lossy(&taken).into_owned()
                    }
                    _ => "0".repeat(digits),
                };
                verify(otp, &policy, &mut models[s], &mut seen[s], s, p, &code, now).await;
            }
            // Let time pass: up to 255 s, 255 hours or 255 minutes.
            4 => clock.advance(u64::from(ops.next().copied().unwrap_or(0))),
            5 => clock.advance(u64::from(ops.next().copied().unwrap_or(0)) * 3_600),
            6 => {
                otp.unlock(SUBJECTS[s]).await.expect("unlock");
                models[s].unlock();
                seen[s].invalid_run = 0;
                seen[s].lock_end = None;
            }
            _ => clock.advance(u64::from(ops.next().copied().unwrap_or(0)) * 60),
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn issue(
    otp: &Otp,
    policy: &OtpPolicy,
    model: &mut Model,
    seen: &mut Seen,
    s: usize,
    p: u8,
    bytes: &[u8; 4],
    now: u64,
) {
    let got = otp
        .issue_with_rng(SUBJECTS[s], purpose(p), &mut ByteRng(bytes))
        .await;
    let issued = match got {
        // The one draw fell in the rejection zone and the bytes ran out.
        Err(Error::Rng) => return,
        Err(Error::Otp(e)) => {
            assert_eq!(Err(e), model.issue(p, "", now, policy), "issue refused");
            return;
        }
        Err(e) => panic!("unexpected error on issue: {e}"),
        Ok(issued) => issued,
    };
    assert!(!seen.locked_at(now), "a code was issued during a lock");
    let code = issued.code.unprotected_as_str().to_owned();
    assert_eq!(code.len(), usize::try_from(policy.digits).expect("digits"));
    assert!(code.bytes().all(|b| b.is_ascii_digit()));
    assert_eq!(model.issue(p, &code, now, policy), Ok(issued.expires_at));
    assert_eq!(issued.expires_at, now + policy.code_ttl_secs);
    seen.issued.insert(p, (code, issued.expires_at, false, 0));
}

#[allow(clippy::too_many_arguments)]
async fn verify(
    otp: &Otp,
    policy: &OtpPolicy,
    model: &mut Model,
    seen: &mut Seen,
    s: usize,
    p: u8,
    code: &str,
    now: u64,
) {
    let got = otp.verify(SUBJECTS[s], purpose(p), code).await;
    let before = model.clone();
    let expected = model.verify(p, code, now, policy);
    match got {
        Ok(v) => {
            assert_eq!(expected, Ok(()), "accepted against the rules");
            assert_eq!(
                (v.subject(), v.purpose(), v.verified_at()),
                (SUBJECTS[s], &purpose(p), now)
            );
            // Apart from the model: the code was issued, is unexpired and
            // unused, and no lock holds.
            assert!(!seen.locked_at(now), "accepted during a lock");
            let (issued, expires, used, guesses) =
                seen.issued.get_mut(&p).expect("accepted, never issued");
            assert_eq!(issued, code, "accepted a code that was not issued");
            assert!(now < *expires, "accepted an expired code");
            assert!(!*used, "accepted a code twice, or after a lock");
            assert!(
                *guesses < policy.max_attempts,
                "accepted a code after {guesses} wrong guesses"
            );
            *used = true;
            // Only the guesses at this code are forgiven.
            seen.invalid_run = seen.invalid_run.saturating_sub(*guesses);
        }
        Err(Error::Otp(e)) => {
            let tolerated = e == OtpError::NoCode
                && expected == Err(OtpError::Expired)
                && before
                    .codes
                    .get(&p)
                    .is_some_and(|(_, exp, _, _)| now >= exp + EXPIRED_NOTICE_SECS);
            assert!(
                Err(e) == expected || tolerated,
                "got {e:?}, the rules give {expected:?} from {before:?}"
            );
            match e {
                OtpError::Invalid { attempts_left } => {
                    seen.invalid_run += 1;
                    if let Some(entry) = seen.issued.get_mut(&p) {
                        entry.3 += 1;
                        assert!(
                            entry.3 <= policy.max_attempts,
                            "one code faced {} wrong guesses",
                            entry.3
                        );
                    }
                    assert!(
                        seen.invalid_run <= policy.max_attempts,
                        "{} Invalid in a row",
                        seen.invalid_run
                    );
                    assert!(attempts_left < policy.max_attempts);
                    if attempts_left == 0 && model.refusal(now).is_none() {
                        // No lock (after an unlock): the code is used up.
                        if let Some(entry) = seen.issued.get_mut(&p) {
                            entry.2 = true;
                        }
                    } else if attempts_left == 0 {
                        seen.invalid_run = 0;
                        // At least `lockout_secs`, or until unlock.
                        seen.lock_end = Some(now + policy.lockout_secs);
                        for entry in seen.issued.values_mut() {
                            entry.2 = true;
                        }
                    }
                }
                OtpError::Locked { retry_after } => {
                    let secs = retry_after.as_secs();
                    assert!((1..=policy.lockout_secs).contains(&secs), "{secs}");
                    seen.lock_end = Some(now + secs);
                }
                OtpError::LockedUntilUnlock => seen.lock_end = Some(u64::MAX),
                _ => assert!(!seen.locked_at(now), "{e:?} during a lock"),
            }
        }
        Err(e) => panic!("unexpected error on verify: {e}"),
    }
}
