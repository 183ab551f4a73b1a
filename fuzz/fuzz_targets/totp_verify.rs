//! The second factor on a `MemoryStore`, in a tokio current-thread
//! runtime, with a `ManualClock`: a subject enrolls and confirms with the
//! code the app shows (`dangerous_code_now`), then the input drives it.
//! Two modes:
//!
//! - an arbitrary string presented as a TOTP code, as a recovery code, as
//!   a confirming code, as a subject and as an issuer or account label;
//! - under policies taken from the input, a sequence of operations: time
//!   passes; arbitrary strings, the codes of the steps around now (exact
//!   or typed differently), another subject's code, and real recovery
//!   codes (this subject's and another's, current or replaced, exact or
//!   typed differently) are presented; recovery codes are regenerated;
//!   an operator unlocks; the factor is disabled, enrolled and confirmed
//!   again.
//!
//! Every outcome must be the one a model of the rules in `src/totp/` and
//! `src/otp/machine.rs` gives, with the expected TOTP codes computed apart
//! (by `dangerous_code_now` on a second `Keyward` whose clock is set to
//! each step). Only `Ok` or a documented refusal comes back, never a store
//! or configuration error. Checked apart from the model, from the
//! outcomes alone: an accepted TOTP code is exactly `digits` ASCII
//! digits, its step is within the skew of now and later than every step
//! accepted before for the factor; a recovery code is accepted at most
//! once, and only if it is one that was shown; no `max_attempts + 1`
//! counted failures fall within `lockout_secs` without an unlock, and no
//! more than `max_consecutive_failures` between unlocks; a lock holds
//! (even the right code is refused) until `retry_after` has passed or an
//! unlock.
#![no_main]

use std::collections::{BTreeSet, VecDeque};
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use keyward::Clock;
use keyward::clock::ManualClock;
use keyward::totp::{Enrollment, RecoveryCodes, TotpAlg};
use keyward::{Error, Keyward, MemoryStore, OtpError, OtpPolicy, TotpError, TotpPolicy};
use keyward_fuzz::NOW;
use libfuzzer_sys::fuzz_target;

const SUBJECT: &str = "user-42";
/// Another subject, whose codes are no codes of [`SUBJECT`]'s.
const OTHER: &str = "user-43";
const ISSUER: &str = "Example";
const ACCOUNT: &str = "ada@example.com";
/// Recovery codes per set (`RECOVERY_CODES` in `src/totp/mod.rs`).
const RECOVERY_CODES: usize = 10;
/// A presented code longer than this is a wrong code (`MAX_CODE_INPUT`).
const MAX_CODE_INPUT: usize = 64;
/// Longest issuer or account label (`MAX_LABEL_LEN`).
const MAX_LABEL_LEN: usize = 256;
/// Longest subject (`MAX_SUBJECT_LEN` in `src/otp/mod.rs`).
const MAX_SUBJECT_LEN: usize = 1024;
/// The lowercase base32 alphabet of recovery codes (RFC 4648 §6).
const BASE32: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";

static RT: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime")
});

fn service(clock: &ManualClock, otp: OtpPolicy, totp: TotpPolicy) -> Keyward {
    Keyward::builder()
        .keys(keyward_fuzz::keyring())
        .store(MemoryStore::new())
        .clock(Arc::new(clock.clone()))
        .otp_policy(otp)
        .totp_policy(totp)
        .build_partial()
        .expect("the fuzz Keyward builds")
}

/// A documented refusal of a code or of a factor operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refused {
    Totp(TotpError),
    Otp(OtpError),
}

/// The refusal in `e`; any other error fails the run.
fn refused(e: Error, what: &str) -> Refused {
    match e {
        Error::Totp(e) => Refused::Totp(e),
        Error::Otp(e @ (OtpError::Locked { .. } | OtpError::LockedUntilUnlock)) => Refused::Otp(e),
        e => panic!("{what}: an error no input may cause: {e:?}"),
    }
}

/// A recovery code as the docs say one may be typed: dashes and
/// whitespace dropped, letters in either case. `None` when it cannot be
/// one: 16 base32 symbols, from at most `MAX_CODE_INPUT` bytes.
fn normalize(s: &str) -> Option<String> {
    if s.len() > MAX_CODE_INPUT {
        return None;
    }
    let n: String = s
        .chars()
        .filter(|c| *c != '-' && !c.is_whitespace())
        .map(|c| c.to_ascii_lowercase())
        .collect();
    (n.len() == 16 && n.bytes().all(|b| BASE32.contains(&b))).then_some(n)
}

/// The codes of a set, checked for their shape: ten distinct
/// `xxxx-xxxx-xxxx-xxxx` in lowercase base32.
fn shown_codes(codes: &RecoveryCodes) -> Vec<String> {
    let codes: Vec<String> = codes
        .codes()
        .iter()
        .map(|c| c.unprotected_as_str().to_owned())
        .collect();
    assert_eq!(codes.len(), RECOVERY_CODES);
    for c in &codes {
        let groups: Vec<&str> = c.split('-').collect();
        assert!(
            groups.len() == 4
                && groups
                    .iter()
                    .all(|g| g.len() == 4 && g.bytes().all(|b| BASE32.contains(&b))),
            "a recovery code of the wrong shape"
        );
    }
    let distinct: BTreeSet<&String> = codes.iter().collect();
    assert_eq!(distinct.len(), RECOVERY_CODES, "a set repeats a code");
    codes
}

/// `code` typed differently, by `v`: most variants are wrong codes, a few
/// are the code itself.
fn vary_code(code: &str, v: u8) -> String {
    let (head, tail) = code.split_at(code.len() / 2);
    match v % 16 {
        1 => format!(" {code}"),
        2 => format!("{code}\n"),
        3 => {
            let first = code.as_bytes()[0] - b'0';
            format!("{}{}", (first + 1) % 10, &code[1..])
        }
        4 => code[..code.len() - 1].to_owned(),
        5 => format!("{code}0"),
        // Fullwidth digits, U+FF10 to U+FF19.
        6 => code
            .chars()
            .filter_map(|c| char::from_u32(0xFF10 + c.to_digit(10).unwrap_or(0)))
            .collect(),
        7 => format!("{head} {tail}"),
        8 => format!("+{code}"),
        9 => format!("0{code}"),
        10 => code.trim_start_matches('0').to_owned(),
        11 => format!("{code}\0"),
        _ => code.to_owned(),
    }
}

/// Recovery code `code` typed differently, by `v`: in capitals, without or
/// with other separators, with one symbol changed, too short or too long.
fn vary_recovery(code: &str, v: u8) -> String {
    match v % 16 {
        1 => code.to_ascii_uppercase(),
        2 => code.replace('-', ""),
        3 => code.replace('-', " "),
        4 => format!("  {code}\n"),
        5 => code.replace('-', "").to_ascii_uppercase(),
        6 => {
            let at = BASE32.iter().position(|&b| b == code.as_bytes()[0]);
            let next = BASE32[at.map_or(0, |i| (i + 1) % BASE32.len())];
            format!("{}{}", char::from(next), &code[1..])
        }
        7 => code[..code.len() - 1].to_owned(),
        8 => {
            let plain = code.replace('-', "");
            let pairs: Vec<&str> = (0..plain.len())
                .step_by(2)
                .map(|i| &plain[i..i + 2])
                .collect();
            pairs.join("-")
        }
        9 => code.replace('-', "\t"),
        10 => code.replace('-', "\u{3000}"),
        11 => format!("{code}{code}"),
        12 => format!("{code}{}", " ".repeat(MAX_CODE_INPUT)),
        _ => code.to_owned(),
    }
}

/// The subject's one-time-code lockout, as `src/otp/machine.rs` runs it
/// for a wrong second-factor or recovery code (`decide_failure`).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Lockout {
    window: u32,
    consecutive: u32,
    locked_until: Option<u64>,
    until_unlock: bool,
}

impl Lockout {
    fn refusal(&self, now: u64) -> Option<Refused> {
        if self.until_unlock {
            return Some(Refused::Otp(OtpError::LockedUntilUnlock));
        }
        match self.locked_until {
            Some(until) if now < until => Some(Refused::Otp(OtpError::Locked {
                retry_after: Duration::from_secs(until - now),
            })),
            _ => None,
        }
    }

    fn fail(&mut self, now: u64, policy: &OtpPolicy) -> Refused {
        if self.locked_until.is_some_and(|until| until <= now) {
            self.locked_until = None;
        }
        self.window += 1;
        self.consecutive += 1;
        let attempts_left = if self.consecutive >= policy.max_consecutive_failures {
            self.until_unlock = true;
            self.locked_until = None;
            self.window = 0;
            0
        } else if self.window >= policy.max_attempts {
            self.locked_until = Some(now + policy.lockout_secs);
            self.window = 0;
            0
        } else {
            (policy.max_attempts - self.window)
                .min(policy.max_consecutive_failures - self.consecutive)
        };
        Refused::Totp(TotpError::Invalid { attempts_left })
    }
}

/// The subject's factor, as the model keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Factor {
    None,
    Unconfirmed {
        created_at: u64,
    },
    Confirmed {
        last_step: u64,
        /// Normalized recovery codes of the current set, unused and used.
        unused: Vec<String>,
        used: Vec<String>,
    },
}

/// What the checks outside the model remember, from the outcomes alone.
#[derive(Debug, Default)]
struct Seen {
    /// The latest step accepted for the current factor.
    last_step: Option<u64>,
    /// Every recovery code shown (normalized), and every one accepted.
    shown: BTreeSet<String>,
    recovered: BTreeSet<String>,
    /// When the latest `max_attempts` counted failures since the last
    /// unlock came.
    invalid_at: VecDeque<u64>,
    invalid_since_unlock: u32,
    /// A lock is known to hold until this time (`u64::MAX`: until unlock).
    lock_end: Option<u64>,
}

impl Seen {
    fn locked_at(&self, now: u64) -> bool {
        self.lock_end.is_some_and(|end| now < end)
    }
}

struct Harness {
    kw: Keyward,
    clock: ManualClock,
    /// A `Keyward` used only for `dangerous_code_now` at a chosen time.
    oracle: Keyward,
    oracle_clock: ManualClock,
    otp_policy: OtpPolicy,
    totp_policy: TotpPolicy,
    lock: Lockout,
    factor: Factor,
    /// The enrollment of the current factor, and another subject's.
    enrollment: Option<Enrollment>,
    other: Enrollment,
    /// Every recovery code shown, as shown: this subject's and the other's.
    codes: Vec<String>,
    seen: Seen,
}

impl Harness {
    /// Enrolls [`SUBJECT`] and confirms it with the code the app shows
    /// now; enrolls and confirms [`OTHER`] too, outside the model.
    async fn new(otp_policy: OtpPolicy, totp_policy: TotpPolicy) -> Self {
        let clock = ManualClock::new(NOW);
        let oracle_clock = ManualClock::new(NOW);
        let kw = service(&clock, otp_policy.clone(), totp_policy);
        let oracle = service(&oracle_clock, otp_policy.clone(), totp_policy);
        let t = kw.totp().expect("totp");
        let other = t.enroll(OTHER, ISSUER, ACCOUNT).await.expect("enroll");
        let code = t.dangerous_code_now(&other).expect("code");
        let others = t.confirm(OTHER, &code).await.expect("confirm");
        let codes = shown_codes(&others);
        let mut h = Self {
            kw,
            clock,
            oracle,
            oracle_clock,
            otp_policy,
            totp_policy,
            lock: Lockout::default(),
            factor: Factor::None,
            enrollment: None,
            other,
            codes,
            seen: Seen::default(),
        };
        h.enroll().await;
        let code = h.code_at(h.step_now(), false).expect("enrolled");
        h.confirm(&code).await;
        assert!(
            matches!(h.factor, Factor::Confirmed { .. }),
            "the app's code did not confirm"
        );
        h
    }

    fn now(&self) -> u64 {
        self.clock.now()
    }

    fn step_now(&self) -> u64 {
        self.now() / self.totp_policy.period_secs
    }

    /// The code the app shows at step `s`, for the current factor (or the
    /// other subject's), by `dangerous_code_now` at the step's start.
    fn code_at(&self, s: u64, other: bool) -> Option<String> {
        let enrollment = if other {
            &self.other
        } else {
            self.enrollment.as_ref()?
        };
        self.oracle_clock.set(s * self.totp_policy.period_secs);
        let code = self
            .oracle
            .totp()
            .expect("totp")
            .dangerous_code_now(enrollment);
        Some(code.expect("an enrollment's secret is base32"))
    }

    /// The code of the step `offset` steps from now, typed as `v` says; a
    /// string of zeros without a factor.
    fn code_near(&self, offset: u8, v: u8, other: bool) -> String {
        let s = (self.step_now() + u64::from(offset % 7)) - 3;
        let digits = usize::from(self.totp_policy.digits);
        let code = self.code_at(s, other).unwrap_or_else(|| "0".repeat(digits));
        vary_code(&code, v)
    }

    /// What a code check (a verify, or a confirmation) must give, with the
    /// model moved on.
    fn expect_code(&mut self, presented: &str, confirm: bool) -> Result<u64, Refused> {
        let now = self.now();
        if let Some(refusal) = self.lock.refusal(now) {
            return Err(refusal);
        }
        let last = match (&self.factor, confirm) {
            (Factor::None, _) | (Factor::Unconfirmed { .. }, false) => {
                return Err(Refused::Totp(TotpError::NotEnrolled));
            }
            (Factor::Confirmed { .. }, true) => {
                return Err(Refused::Totp(TotpError::AlreadyEnrolled));
            }
            (Factor::Unconfirmed { created_at }, true) => {
                if now >= created_at + self.totp_policy.enroll_ttl_secs {
                    return Err(Refused::Totp(TotpError::Expired));
                }
                None
            }
            (Factor::Confirmed { last_step, .. }, false) => Some(*last_step),
        };
        let current = self.step_now();
        let skew = u64::from(self.totp_policy.skew_steps);
        // The earliest step of the window whose code it is.
        let matched = (current - skew..=current + skew)
            .find(|&s| self.code_at(s, false).is_some_and(|c| c == presented));
        match matched {
            None => Err(self.lock.fail(now, &self.otp_policy)),
            Some(s) if last.is_some_and(|last| s <= last) => {
                Err(Refused::Totp(TotpError::Replayed))
            }
            Some(s) => {
                match &mut self.factor {
                    Factor::Confirmed { last_step, .. } => *last_step = s,
                    factor => {
                        *factor = Factor::Confirmed {
                            last_step: s,
                            unused: Vec::new(),
                            used: Vec::new(),
                        }
                    }
                }
                Ok(s)
            }
        }
    }

    /// The checks of a code check's outcome that need no model.
    fn seen_code(&mut self, presented: &str, got: Result<u64, Refused>) {
        let now = self.now();
        let Ok(s) = got else {
            return self.seen_refusal(got.err());
        };
        assert!(
            !self.seen.locked_at(now),
            "a code was accepted during a lock"
        );
        assert!(
            presented.len() == usize::from(self.totp_policy.digits)
                && presented.bytes().all(|b| b.is_ascii_digit()),
            "accepted {presented:?}, which is no {}-digit code",
            self.totp_policy.digits
        );
        let (current, skew) = (self.step_now(), u64::from(self.totp_policy.skew_steps));
        assert!(
            current - skew <= s && s <= current + skew,
            "accepted step {s}, outside the skew of {current}"
        );
        assert!(
            self.seen.last_step.is_none_or(|last| s > last),
            "accepted step {s} after step {:?}",
            self.seen.last_step
        );
        self.seen.last_step = Some(s);
    }

    /// The checks of a refusal that need no model.
    fn seen_refusal(&mut self, refusal: Option<Refused>) {
        let now = self.now();
        let (m, lockout) = (self.otp_policy.max_attempts, self.otp_policy.lockout_secs);
        match refusal {
            None => assert!(!self.seen.locked_at(now), "accepted during a lock"),
            Some(Refused::Totp(TotpError::Invalid { attempts_left })) => {
                assert!(
                    !self.seen.locked_at(now),
                    "a guess was judged during a lock"
                );
                assert!(attempts_left < m, "{attempts_left} attempts left");
                if self.seen.invalid_at.len() == usize::try_from(m).expect("small") {
                    let first = self.seen.invalid_at.pop_front().expect("m > 0");
                    assert!(
                        now >= first + lockout,
                        "{} counted failures within {} s",
                        m + 1,
                        now - first
                    );
                }
                self.seen.invalid_at.push_back(now);
                self.seen.invalid_since_unlock += 1;
                assert!(
                    self.seen.invalid_since_unlock <= self.otp_policy.max_consecutive_failures,
                    "{} counted failures without an unlock",
                    self.seen.invalid_since_unlock
                );
                if attempts_left == 0 {
                    self.seen.lock_end = Some(
                        if self.seen.invalid_since_unlock
                            == self.otp_policy.max_consecutive_failures
                        {
                            u64::MAX
                        } else {
                            now + lockout
                        },
                    );
                }
            }
            Some(Refused::Otp(OtpError::Locked { retry_after })) => {
                let secs = retry_after.as_secs();
                assert!((1..=lockout).contains(&secs), "locked for {secs} s");
                self.seen.lock_end = Some(now + secs);
            }
            Some(Refused::Otp(OtpError::LockedUntilUnlock)) => {
                self.seen.lock_end = Some(u64::MAX);
            }
            Some(e) => assert!(!self.seen.locked_at(now), "{e:?} during a lock"),
        }
    }

    async fn verify(&mut self, presented: &str) {
        let got = self
            .kw
            .totp()
            .expect("totp")
            .verify(SUBJECT, presented)
            .await;
        let got = match got {
            Ok(v) => {
                assert_eq!(v.subject(), SUBJECT);
                Ok(v.step())
            }
            Err(e) => Err(refused(e, "verify")),
        };
        let before = (self.lock.clone(), self.factor.clone());
        let want = self.expect_code(presented, false);
        assert_eq!(
            got,
            want,
            "verify {presented:?} at {}: the rules give {want:?} from {before:?}",
            self.now()
        );
        self.seen_code(presented, got);
    }

    async fn confirm(&mut self, presented: &str) {
        let got = self
            .kw
            .totp()
            .expect("totp")
            .confirm(SUBJECT, presented)
            .await;
        let before = (self.lock.clone(), self.factor.clone());
        let want = self.expect_code(presented, true);
        match got {
            Ok(codes) => {
                let Ok(s) = want else {
                    panic!("confirmed by {presented:?}; the rules give {want:?} from {before:?}");
                };
                let codes = shown_codes(&codes);
                let normalized: Vec<String> = codes
                    .iter()
                    .map(|c| normalize(c).expect("a shown code normalizes"))
                    .collect();
                for n in &normalized {
                    assert!(self.seen.shown.insert(n.clone()), "a code shown twice");
                }
                if let Factor::Confirmed { unused, .. } = &mut self.factor {
                    unused.clone_from(&normalized);
                }
                self.codes.extend(codes);
                self.seen_code(presented, Ok(s));
            }
            Err(e) => {
                let e = refused(e, "confirm");
                assert_eq!(
                    Err(e),
                    want,
                    "confirm {presented:?}: the rules give {want:?} from {before:?}"
                );
                self.seen_code(presented, Err(e));
            }
        }
        self.check_left().await;
    }

    /// What a recovery code must give, with the model moved on.
    fn expect_recover(&mut self, presented: &str) -> Result<usize, Refused> {
        let now = self.now();
        if let Some(refusal) = self.lock.refusal(now) {
            return Err(refusal);
        }
        let Factor::Confirmed { unused, used, .. } = &mut self.factor else {
            return Err(Refused::Totp(TotpError::NotEnrolled));
        };
        let n = normalize(presented);
        if let Some(at) = unused.iter().position(|c| Some(c) == n.as_ref()) {
            used.push(unused.remove(at));
            return Ok(unused.len());
        }
        if used.iter().any(|c| Some(c) == n.as_ref()) {
            return Err(Refused::Totp(TotpError::Used));
        }
        Err(self.lock.fail(now, &self.otp_policy))
    }

    async fn recover(&mut self, presented: &str) {
        let got = self
            .kw
            .totp()
            .expect("totp")
            .recover(SUBJECT, presented)
            .await;
        let got = got.map(|r| r.left()).map_err(|e| refused(e, "recover"));
        let before = (self.lock.clone(), self.factor.clone());
        let want = self.expect_recover(presented);
        assert_eq!(
            got, want,
            "recover {presented:?}: the rules give {want:?} from {before:?}"
        );
        match got {
            Ok(left) => {
                assert!(left < RECOVERY_CODES);
                let n = normalize(presented).expect("an accepted code normalizes");
                assert!(self.seen.shown.contains(&n), "accepted a code never shown");
                assert!(
                    self.seen.recovered.insert(n),
                    "a recovery code was accepted twice"
                );
                self.seen_refusal(None);
            }
            Err(e) => self.seen_refusal(Some(e)),
        }
    }

    async fn regenerate(&mut self) {
        let got = self
            .kw
            .totp()
            .expect("totp")
            .regenerate_recovery(SUBJECT)
            .await;
        match (got, &mut self.factor) {
            (Ok(codes), Factor::Confirmed { unused, used, .. }) => {
                let codes = shown_codes(&codes);
                *unused = codes
                    .iter()
                    .map(|c| normalize(c).expect("a shown code normalizes"))
                    .collect();
                used.clear();
                for n in unused.iter() {
                    assert!(self.seen.shown.insert(n.clone()), "a code shown twice");
                }
                self.codes.extend(codes);
            }
            (Err(e), Factor::None | Factor::Unconfirmed { .. }) => {
                assert_eq!(
                    refused(e, "regenerate"),
                    Refused::Totp(TotpError::NotEnrolled)
                );
            }
            (got, factor) => panic!("regenerate: {got:?} with {factor:?}"),
        }
        self.check_left().await;
    }

    async fn enroll(&mut self) {
        let got = self
            .kw
            .totp()
            .expect("totp")
            .enroll(SUBJECT, ISSUER, ACCOUNT)
            .await;
        match got {
            Ok(e) => {
                assert!(
                    !matches!(self.factor, Factor::Confirmed { .. }),
                    "enrolled over a confirmed factor"
                );
                self.factor = Factor::Unconfirmed {
                    created_at: self.now(),
                };
                self.enrollment = Some(e);
                self.seen.last_step = None;
            }
            Err(e) => {
                assert_eq!(
                    refused(e, "enroll"),
                    Refused::Totp(TotpError::AlreadyEnrolled)
                );
                assert!(matches!(self.factor, Factor::Confirmed { .. }));
            }
        }
        self.check_left().await;
    }

    async fn disable(&mut self) {
        let got = self.kw.totp().expect("totp").disable(SUBJECT).await;
        let had = got.expect("disable");
        assert_eq!(
            had,
            self.factor != Factor::None,
            "disable with {:?}",
            self.factor
        );
        self.factor = Factor::None;
        self.enrollment = None;
        self.check_left().await;
    }

    async fn unlock(&mut self) {
        self.kw
            .otp()
            .expect("otp")
            .unlock(SUBJECT)
            .await
            .expect("unlock");
        self.lock = Lockout::default();
        self.seen.invalid_at.clear();
        self.seen.invalid_since_unlock = 0;
        self.seen.lock_end = None;
    }

    /// `recovery_left` agrees with the model.
    async fn check_left(&self) {
        let got = self
            .kw
            .totp()
            .expect("totp")
            .recovery_left(SUBJECT)
            .await
            .expect("recovery_left");
        let want = match &self.factor {
            Factor::Confirmed { unused, .. } => Some(unused.len()),
            _ => None,
        };
        assert_eq!(got, want, "recovery codes left");
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

/// Whether an app can show `label` (`check_label` in `src/totp/mod.rs`).
fn label_ok(label: &str) -> bool {
    !label.is_empty()
        && label.len() <= MAX_LABEL_LEN
        && !label.contains(':')
        && !label.chars().any(char::is_control)
}

/// `s` with `%XX` escapes decoded; `None` for a bad escape or bytes that
/// are not UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    let mut out = Vec::with_capacity(s.len());
    let mut bytes = s.bytes();
    while let Some(b) = bytes.next() {
        if b == b'%' {
            let hex = [bytes.next()?, bytes.next()?];
            if !hex.iter().all(u8::is_ascii_hexdigit) {
                return None;
            }
            out.push(u8::from_str_radix(std::str::from_utf8(&hex).ok()?, 16).ok()?);
        } else {
            out.push(b);
        }
    }
    String::from_utf8(out).ok()
}

/// Any string as a TOTP code, a recovery code, a confirming code, a
/// subject, and an issuer or account label.
async fn presented_string(input: &[u8]) {
    let presented = String::from_utf8_lossy(input);
    let mut h = Harness::new(OtpPolicy::default(), TotpPolicy::default()).await;
    h.verify(&presented).await;
    h.recover(&presented).await;
    h.confirm(&presented).await;

    // As a subject: only the length is checked, and nobody else has a
    // factor. The other subject's codes are its own.
    let t = h.kw.totp().expect("totp");
    let subject_ok = !presented.is_empty() && presented.len() <= MAX_SUBJECT_LEN;
    let not_enrolled = |r: Result<(), Error>, what: &str| match r {
        Err(Error::InvalidInput(_)) => assert!(!subject_ok, "{what}: subject refused"),
        Err(e) if subject_ok => {
            assert_eq!(refused(e, what), Refused::Totp(TotpError::NotEnrolled));
        }
        other => panic!("{what}: {other:?}"),
    };
    if presented != SUBJECT && presented != OTHER {
        let code = h.code_at(h.step_now(), false).expect("enrolled");
        not_enrolled(t.verify(&presented, &code).await.map(|_| ()), "verify");
        let recovery = &h.codes[0];
        not_enrolled(t.recover(&presented, recovery).await.map(|_| ()), "recover");
        not_enrolled(
            t.regenerate_recovery(&presented).await.map(|_| ()),
            "regenerate",
        );
        match t.disable(&presented).await {
            Ok(had) => assert!(subject_ok && !had, "disabled a factor nobody had"),
            Err(Error::InvalidInput(_)) => assert!(!subject_ok),
            Err(e) => panic!("disable: {e:?}"),
        }
        match h.kw.otp().expect("otp").unlock(&presented).await {
            Ok(()) => assert!(subject_ok),
            Err(Error::InvalidInput(_)) => assert!(!subject_ok),
            Err(e) => panic!("unlock: {e:?}"),
        }
    }

    // As a label: refused exactly when an app cannot show it; otherwise
    // it reads back from the URI.
    for as_issuer in [true, false] {
        let (issuer, account) = if as_issuer {
            (&*presented, ACCOUNT)
        } else {
            (ISSUER, &*presented)
        };
        match t.enroll("user-44", issuer, account).await {
            Ok(e) => {
                assert!(label_ok(&presented), "enrolled with label {presented:?}");
                let uri = e.uri().unprotected_as_str();
                assert!(uri.bytes().all(|b| b.is_ascii_graphic()), "{uri:?}");
                let path = uri
                    .strip_prefix("otpauth://totp/")
                    .and_then(|rest| rest.split('?').next())
                    .expect("an otpauth URI");
                let (i, a) = path.split_once(':').expect("issuer:account");
                assert_eq!(percent_decode(i).as_deref(), Some(issuer), "{uri}");
                assert_eq!(percent_decode(a).as_deref(), Some(account), "{uri}");
            }
            Err(Error::Totp(TotpError::BadLabel(what))) => {
                assert!(!label_ok(&presented), "{what} {presented:?} refused");
                assert_eq!(what, if as_issuer { "issuer" } else { "account" });
            }
            Err(e) => panic!("enroll with label {presented:?}: {e:?}"),
        }
    }
}

/// `[a][b][c][d]`, the policies, then operations: each is `[op][byte]`,
/// its kind in the low 4 bits of `op` and an argument in the high 4, and
/// an arbitrary string follows as `byte % 80` more bytes.
async fn operations(input: &[u8]) {
    let [a, b, c, d, ops @ ..] = input else {
        return;
    };
    let mut otp_policy = OtpPolicy::default();
    otp_policy.max_attempts = 1 + u32::from(*a % 10);
    otp_policy.max_consecutive_failures =
        otp_policy.max_attempts + u32::from(*b) % (101 - otp_policy.max_attempts);
    otp_policy.lockout_secs = [1, 60, 3_600, 604_800][usize::from(*c & 3)];
    let mut totp_policy = TotpPolicy::default();
    totp_policy.digits = 6 + ((*c >> 2) & 3) % 3;
    totp_policy.period_secs = [15, 30, 60, 300][usize::from((*c >> 4) & 3)];
    totp_policy.skew_steps = (*c >> 6) % 3;
    totp_policy.alg = [TotpAlg::Sha1, TotpAlg::Sha256, TotpAlg::Sha512][usize::from(*d % 3)];
    totp_policy.enroll_ttl_secs = [60, 600, 86_400][usize::from((*d >> 2) % 3)];
    let mut h = Harness::new(otp_policy, totp_policy).await;

    let mut ops = ops.iter();
    let mut next = || ops.next().copied();
    while let Some(op) = next() {
        let arg = op >> 4;
        let byte = next().unwrap_or(0);
        match op & 0x0f {
            // Let time pass: up to 255 s, 42 minutes, 4 hours or 10 days.
            0 => h
                .clock
                .advance(u64::from(byte) * [1, 10, 60, 3_600][usize::from(arg & 3)]),
            1 => h.clock.advance(h.totp_policy.period_secs),
            op @ (2 | 3) => {
                let len = usize::from(byte % 80);
                let taken: Vec<u8> = std::iter::from_fn(&mut next).take(len).collect();
                let s = String::from_utf8_lossy(&taken);
                if op == 2 {
                    h.verify(&s).await;
                } else {
                    h.confirm(&s).await;
                }
            }
            4 => {
                let len = usize::from(byte % 80);
                let taken: Vec<u8> = std::iter::from_fn(&mut next).take(len).collect();
                h.recover(&String::from_utf8_lossy(&taken)).await;
            }
            // The code of a step near now, typed one way or another.
            5 => h.verify(&h.code_near(arg, byte, false)).await,
            6 => h.confirm(&h.code_near(arg, byte, false)).await,
            // The right code now, as typed.
            7 => h.verify(&h.code_near(3, 0, false)).await,
            // The other subject's code.
            8 => h.verify(&h.code_near(arg, byte, true)).await,
            // A recovery code that was shown, typed one way or another.
            9 => {
                let code = &h.codes[usize::from(byte) % h.codes.len()];
                h.recover(&vary_recovery(code, arg)).await;
            }
            10 => h.regenerate().await,
            11 => h.unlock().await,
            12 => h.disable().await,
            13 => h.enroll().await,
            // A code of the newest set shown, exactly.
            _ => {
                let code = h.codes[h.codes.len() - 1 - usize::from(byte) % RECOVERY_CODES].clone();
                h.recover(&code).await;
            }
        }
    }
}
