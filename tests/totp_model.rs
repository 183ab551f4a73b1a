//! The second factor against a model, with a manual clock.
//!
//! Two subjects enroll and confirm a TOTP factor (RFC 6238: SHA-1, 6
//! digits, 30-second steps, ±1 step of skew), then go through any
//! sequence of clock jumps, codes of the steps around the current one
//! (old, replayed, within the skew, outside it), the last accepted code
//! again, the other subject's code, wrong codes, recovery codes (unused,
//! used, from a replaced set, the other subject's, random, malformed),
//! new recovery sets and operator unlocks. The codes are computed here,
//! by an HOTP (RFC 4226 §5.3) checked against the RFC's vectors, from the
//! secret the enrollment shows. A plain model predicts every answer
//! exactly, lockout included (its rules: wrong codes and wrong recovery
//! codes count together, replays and used recovery codes do not, a lock
//! is checked before anything and counts nothing). Beside the model, the
//! answers themselves must show that:
//!
//! - no code is accepted twice: each accepted step is later than every
//!   step accepted before it (the confirming one included), and within
//!   the skew of the clock; no recovery code is accepted twice;
//! - no step at or before the last accepted one is accepted;
//! - the lockout bounds wrong codes and wrong recovery codes together at
//!   3 per 60 minutes: between two operator unlocks, any four counted
//!   failures of a subject span at least an hour of clock time.
#![allow(
    clippy::unwrap_used,
    clippy::panic,
    clippy::arithmetic_side_effects,
    clippy::indexing_slicing
)]

use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use keyward::clock::ManualClock;
use keyward::otp::{DEFAULT_LOCKOUT_SECS, DEFAULT_MAX_ATTEMPTS, DEFAULT_MAX_CONSECUTIVE_FAILURES};
use keyward::totp::RECOVERY_CODES;
use keyward::{
    Clock, Error, JwtAlg, KeyRing, Keyward, MemoryStore, OtpError, OtpPolicy, Store, TotpError,
    TotpPolicy,
};
use proptest::prelude::*;
use sha1::Sha1;

const ALICE: &str = "alice@example.com";
const BOB: &str = "bob@example.com";
/// A step boundary for 30-second steps (2023-11-14T22:13:30Z); each case
/// starts up to a step after it.
const EPOCH: u64 = 1_700_000_010;
/// RFC 6238 §5.2's recommended step, the default.
const PERIOD: u64 = 30;
/// Steps accepted either side of the current one, the default.
const SKEW: u64 = 1;
/// Digits per code, the default (RFC 4226 §5.3 requires at least 6).
const DIGITS: u32 = 6;
/// The lockout of the acceptance text: 3 counted failures lock the subject
/// for 60 minutes.
const MAX_ATTEMPTS: u32 = 3;
/// The same, as a count of failures.
const MAX_FAILURES: usize = 3;
const LOCKOUT: u64 = 3_600;
/// Operations per sequence, at most.
const MAX_OPS: usize = 30;
/// The RFC 4648 §6 alphabet, in the lowercase recovery codes are shown in.
const BASE32_LOWER: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";

/// The bytes of unpadded base32 text (RFC 4648 §6), either case; `None`
/// for any other character.
fn base32_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in text.bytes() {
        let value = match c.to_ascii_uppercase() {
            c @ b'A'..=b'Z' => c - b'A',
            c @ b'2'..=b'7' => c - b'2' + 26,
            _ => return None,
        };
        acc = (acc << 5) | u32::from(value);
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push(u8::try_from((acc >> bits) & 0xff).unwrap());
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

/// HOTP (RFC 4226 §5.3) with HMAC-SHA-1: the MAC of the 8-byte big-endian
/// counter, dynamically truncated to 31 bits, modulo 10^`digits`.
fn hotp(secret: &[u8], counter: u64, digits: u32) -> u32 {
    let mut mac = <Hmac<Sha1> as KeyInit>::new_from_slice(secret).unwrap();
    mac.update(&counter.to_be_bytes());
    let mac = mac.finalize().into_bytes();
    let offset = usize::from(mac[19] & 0x0f);
    let word = [
        mac[offset],
        mac[offset + 1],
        mac[offset + 2],
        mac[offset + 3],
    ];
    (u32::from_be_bytes(word) & 0x7fff_ffff) % 10u32.pow(digits)
}

/// The code an authenticator app shows for `secret` at time step `step`.
fn code_at(secret: &[u8], step: u64) -> String {
    format!("{:06}", hotp(secret, step, DIGITS))
}

#[test]
fn the_model_s_codes_are_the_rfc_s() {
    // RFC 4648 §10.
    assert_eq!(base32_decode("MZXW6YTBOI").unwrap(), b"foobar");
    assert_eq!(base32_decode("mzxw6ytb").unwrap(), b"fooba");
    assert_eq!(base32_decode("MZXW6YT1"), None);
    // The seed of RFC 4226 Appendix D and RFC 6238 Appendix B, in base32.
    let seed = base32_decode("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ").unwrap();
    assert_eq!(seed, b"12345678901234567890");
    // RFC 6238 Appendix B, SHA-1: T = 59 s is step 1, code 94287082;
    // T = 1111111109 s, code 07081804.
    assert_eq!(hotp(&seed, 59 / PERIOD, 8), 94_287_082);
    assert_eq!(hotp(&seed, 1_111_111_109 / PERIOD, 8), 7_081_804);
    // RFC 4226 Appendix D: the 6-digit HOTP values of counters 0 and 9.
    assert_eq!(code_at(&seed, 0), "755224");
    assert_eq!(code_at(&seed, 9), "520489");
}

#[test]
fn the_defaults_are_the_acceptance_text_s() {
    assert_eq!(DEFAULT_MAX_ATTEMPTS, MAX_ATTEMPTS);
    assert_eq!(usize::try_from(MAX_ATTEMPTS).unwrap(), MAX_FAILURES);
    assert_eq!(DEFAULT_LOCKOUT_SECS, LOCKOUT);
    let otp = OtpPolicy::default();
    assert_eq!(
        (otp.max_attempts, otp.lockout_secs),
        (MAX_ATTEMPTS, LOCKOUT)
    );
    let totp = TotpPolicy::default();
    assert_eq!(
        (
            u32::from(totp.digits),
            totp.period_secs,
            u64::from(totp.skew_steps)
        ),
        (DIGITS, PERIOD, SKEW)
    );
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    A,
    B,
}

impl Who {
    fn other(self) -> Self {
        match self {
            Self::A => Self::B,
            Self::B => Self::A,
        }
    }
}

/// Which recovery code is presented. Indexes pick modulo the number there
/// are; with none to pick, the operation does nothing.
#[derive(Debug, Clone)]
enum Pick {
    /// An unused code of the current set.
    Unused(usize),
    /// A code of the current set used already.
    Used(usize),
    /// A code of a set that a new one replaced, used or not.
    Replaced(usize),
    /// An unused code of the other subject's.
    Others(usize),
    /// Sixteen random base32 characters, grouped like a code.
    Random(Vec<u8>),
    /// A code of the current set, unused, cut short by a character.
    Short(usize),
    /// A code of the current set, unused, with a character no base32
    /// text has.
    NotBase32(usize),
    /// Far longer than a code.
    Long,
}

/// How a recovery code is typed.
#[derive(Debug, Clone, Copy)]
enum Form {
    /// As shown: `xxxx-xxxx-xxxx-xxxx`.
    Shown,
    Upper,
    /// Without the dashes.
    Joined,
    /// Spaces for dashes.
    Spaced,
}

#[derive(Debug, Clone)]
enum Op {
    /// The clock moves on by this many seconds.
    Advance(u64),
    /// The code of the step this far from the current one.
    Code(Who, i64),
    /// The code of the last accepted step, again.
    LastCode(Who),
    /// The other subject's code of the current step.
    OthersCode(Who),
    /// A 6-digit code that no step within the skew has (the value is
    /// moved on until it is none of theirs).
    Wrong(Who, u32),
    Recover(Who, Pick, Form),
    Regenerate(Who),
    Unlock(Who),
}

fn who() -> impl Strategy<Value = Who> {
    prop_oneof![3 => Just(Who::A), 1 => Just(Who::B)]
}

fn pick() -> impl Strategy<Value = Pick> {
    prop_oneof![
        5 => any::<usize>().prop_map(Pick::Unused),
        3 => any::<usize>().prop_map(Pick::Used),
        1 => any::<usize>().prop_map(Pick::Replaced),
        1 => any::<usize>().prop_map(Pick::Others),
        2 => proptest::collection::vec(0u8..32, 16).prop_map(Pick::Random),
        1 => any::<usize>().prop_map(Pick::Short),
        1 => any::<usize>().prop_map(Pick::NotBase32),
        1 => Just(Pick::Long),
    ]
}

fn form() -> impl Strategy<Value = Form> {
    prop_oneof![
        5 => Just(Form::Shown),
        1 => Just(Form::Upper),
        1 => Just(Form::Joined),
        1 => Just(Form::Spaced),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        5 => prop_oneof![
            // Within a few steps; the lockout, and the second before its
            // end; a second, to cross it.
            8 => 0u64..=200,
            2 => Just(LOCKOUT),
            1 => Just(LOCKOUT - 1),
            1 => Just(1u64),
        ]
        .prop_map(Op::Advance),
        // Mostly within the skew, where codes are accepted or replayed;
        // old and early codes too.
        7 => (who(), prop_oneof![3 => -1i64..=1, 1 => -3i64..=3])
            .prop_map(|(w, d)| Op::Code(w, d)),
        1 => who().prop_map(Op::LastCode),
        1 => who().prop_map(Op::OthersCode),
        2 => (who(), 0u32..1_000_000).prop_map(|(w, v)| Op::Wrong(w, v)),
        5 => (who(), pick(), form()).prop_map(|(w, p, f)| Op::Recover(w, p, f)),
        1 => who().prop_map(Op::Regenerate),
        1 => who().prop_map(Op::Unlock),
    ]
}

/// An answer to a code or a recovery code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// A second-factor code accepted at this step.
    Accepted(u64),
    /// A recovery code accepted, with this many left.
    Recovered(usize),
    Invalid(u32),
    Replayed,
    Used,
    Locked(Duration),
    LockedUntilUnlock,
}

fn outcome<T>(r: Result<T, Error>, ok: impl FnOnce(T) -> Outcome) -> Outcome {
    match r {
        Ok(v) => ok(v),
        Err(Error::Totp(TotpError::Invalid { attempts_left })) => Outcome::Invalid(attempts_left),
        Err(Error::Totp(TotpError::Replayed)) => Outcome::Replayed,
        Err(Error::Totp(TotpError::Used)) => Outcome::Used,
        Err(Error::Otp(OtpError::Locked { retry_after })) => Outcome::Locked(retry_after),
        Err(Error::Otp(OtpError::LockedUntilUnlock)) => Outcome::LockedUntilUnlock,
        Err(e) => panic!("an answer outside the model: {e:?}"),
    }
}

/// The model of the subject's one-time-code lockout.
#[derive(Debug, Clone, Copy, Default)]
struct Lockout {
    /// Counted failures since the last lock or unlock.
    window: u32,
    /// Counted failures since the last unlock.
    consecutive: u32,
    locked_until: Option<u64>,
    until_unlock: bool,
}

impl Lockout {
    /// The refusal a lock gives before any code is looked at.
    fn refusal(&self, now: u64) -> Option<Outcome> {
        if self.until_unlock {
            return Some(Outcome::LockedUntilUnlock);
        }
        match self.locked_until {
            Some(until) if now < until => Some(Outcome::Locked(Duration::from_secs(until - now))),
            _ => None,
        }
    }

    /// A counted failure: the wrong guesses left before a lock. A lock
    /// starts a new window; enough failures since the last unlock lock
    /// until the next one.
    fn fail(&mut self, now: u64, max_consecutive: u32) -> u32 {
        if self.locked_until.is_some_and(|until| until <= now) {
            self.locked_until = None;
        }
        self.window += 1;
        self.consecutive += 1;
        if self.consecutive >= max_consecutive {
            self.until_unlock = true;
            self.locked_until = None;
        } else if self.window >= MAX_ATTEMPTS {
            self.locked_until = Some(now + LOCKOUT);
        } else {
            return (MAX_ATTEMPTS - self.window).min(max_consecutive - self.consecutive);
        }
        self.window = 0;
        0
    }
}

/// One subject: its secret, the model's state, and what the answers showed.
#[derive(Debug)]
struct Subject {
    name: &'static str,
    secret: Vec<u8>,
    last_step: u64,
    /// Recovery codes as shown.
    unused: Vec<String>,
    used: Vec<String>,
    replaced: Vec<String>,
    lockout: Lockout,
    /// Every step accepted, the confirming one first.
    accepted_steps: Vec<u64>,
    /// Every recovery code accepted, as shown.
    accepted_recovery: Vec<String>,
    /// The clock time of every counted failure since the last unlock.
    failures: Vec<u64>,
}

impl Subject {
    /// The model's answer to the second-factor code `code`.
    fn expect_code(&mut self, code: &str, now: u64, max_consecutive: u32) -> Outcome {
        if let Some(refusal) = self.lockout.refusal(now) {
            return refusal;
        }
        let current = now / PERIOD;
        let matched = (current - SKEW..=current + SKEW).find(|&s| code_at(&self.secret, s) == code);
        match matched {
            Some(s) if s <= self.last_step => Outcome::Replayed,
            Some(s) => {
                self.last_step = s;
                Outcome::Accepted(s)
            }
            None => Outcome::Invalid(self.lockout.fail(now, max_consecutive)),
        }
    }

    /// The model's answer to a recovery code: `found` is `Ok(Some(i))` for
    /// the unused code at `i`, `Ok(None)` for a used one, and `Err(())` for
    /// one that is no code of the subject's.
    fn expect_recover(
        &mut self,
        found: Result<Option<usize>, ()>,
        now: u64,
        max_consecutive: u32,
    ) -> Outcome {
        if let Some(refusal) = self.lockout.refusal(now) {
            return refusal;
        }
        match found {
            Ok(Some(i)) => {
                let code = self.unused.remove(i);
                self.used.push(code);
                Outcome::Recovered(self.unused.len())
            }
            Ok(None) => Outcome::Used,
            Err(()) => Outcome::Invalid(self.lockout.fail(now, max_consecutive)),
        }
    }

    /// The invariants an answer must keep, whatever the model says.
    fn witness(&mut self, answer: Outcome, now: u64, recovery: Option<&str>) {
        match answer {
            Outcome::Accepted(step) => {
                let current = now / PERIOD;
                assert!(
                    step + SKEW >= current && step <= current + SKEW,
                    "step {step} accepted at step {current}"
                );
                let last = *self.accepted_steps.last().unwrap();
                assert!(
                    step > last,
                    "step {step} accepted at or before the last accepted {last}"
                );
                self.accepted_steps.push(step);
            }
            Outcome::Recovered(_) => {
                let code = recovery.unwrap().to_owned();
                assert!(
                    !self.accepted_recovery.contains(&code),
                    "a recovery code accepted twice"
                );
                self.accepted_recovery.push(code);
            }
            Outcome::Invalid(_) => {
                self.failures.push(now);
                let n = self.failures.len();
                if n > MAX_FAILURES {
                    let first = self.failures[n - 1 - MAX_FAILURES];
                    assert!(
                        now - first >= LOCKOUT,
                        "{n} failures counted, the last {} within {} s",
                        MAX_FAILURES + 1,
                        now - first
                    );
                }
            }
            Outcome::Replayed | Outcome::Used | Outcome::Locked(_) | Outcome::LockedUntilUnlock => {
            }
        }
    }
}

/// `code` (as shown) typed in `form`.
fn typed(code: &str, form: Form) -> String {
    match form {
        Form::Shown => code.to_owned(),
        Form::Upper => code.to_ascii_uppercase(),
        Form::Joined => code.replace('-', ""),
        Form::Spaced => code.replace('-', " "),
    }
}

/// Checks the form of a set of recovery codes: `RECOVERY_CODES` distinct
/// codes `xxxx-xxxx-xxxx-xxxx` of lowercase base32.
fn shown_codes(codes: &[keyward::OpaqueToken]) -> Vec<String> {
    let codes: Vec<String> = codes
        .iter()
        .map(|c| c.unprotected_as_str().to_owned())
        .collect();
    assert_eq!(codes.len(), RECOVERY_CODES);
    for code in &codes {
        let groups: Vec<&str> = code.split('-').collect();
        assert_eq!(groups.len(), 4, "{code}");
        assert!(
            groups
                .iter()
                .all(|g| g.len() == 4 && g.bytes().all(|b| BASE32_LOWER.contains(&b))),
            "{code}"
        );
    }
    let mut distinct = codes.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), codes.len());
    codes
}

struct World {
    clock: ManualClock,
    kw: Keyward,
    max_consecutive: u32,
    a: Subject,
    b: Subject,
}

impl World {
    async fn new(start: u64, max_consecutive: u32) -> Self {
        let clock = ManualClock::new(start);
        let mut policy = OtpPolicy::default();
        policy.max_consecutive_failures = max_consecutive;
        let kw = Keyward::builder()
            .keys(KeyRing::generate(JwtAlg::HS256).unwrap())
            .shared_store(Arc::new(MemoryStore::new()) as Arc<dyn Store>)
            .otp_policy(policy)
            .clock(Arc::new(clock.clone()))
            .build_partial()
            .unwrap();
        let a = Self::enrolled(&kw, ALICE, start).await;
        let b = Self::enrolled(&kw, BOB, start).await;
        Self {
            clock,
            kw,
            max_consecutive,
            a,
            b,
        }
    }

    /// `name` enrolled and confirmed with the code of the current step.
    async fn enrolled(kw: &Keyward, name: &'static str, now: u64) -> Subject {
        let totp = kw.totp().unwrap();
        let enrollment = totp.enroll(name, "Example", name).await.unwrap();
        let secret = base32_decode(enrollment.secret().unprotected_as_str()).unwrap();
        assert_eq!(secret.len(), 20, "160 bits");
        let step = now / PERIOD;
        let code = code_at(&secret, step);
        assert_eq!(totp.dangerous_code_now(&enrollment).unwrap(), code);
        let recovery = totp.confirm(name, &code).await.unwrap();
        let unused = shown_codes(recovery.codes());
        // The confirming code counts as used.
        assert_eq!(
            outcome(totp.verify(name, &code).await, |v| Outcome::Accepted(
                v.step()
            )),
            Outcome::Replayed
        );
        Subject {
            name,
            secret,
            last_step: step,
            unused,
            used: Vec::new(),
            replaced: Vec::new(),
            lockout: Lockout::default(),
            accepted_steps: vec![step],
            accepted_recovery: Vec::new(),
            failures: Vec::new(),
        }
    }

    fn subject(&mut self, who: Who) -> &mut Subject {
        match who {
            Who::A => &mut self.a,
            Who::B => &mut self.b,
        }
    }

    async fn present_code(&mut self, who: Who, code: &str) {
        let now = self.clock.now();
        let totp = self.kw.totp().unwrap().clone();
        let max_consecutive = self.max_consecutive;
        let s = self.subject(who);
        let name = s.name;
        let answer = outcome(totp.verify(name, code).await, |v| {
            assert_eq!(v.subject(), name);
            Outcome::Accepted(v.step())
        });
        let expected = s.expect_code(code, now, max_consecutive);
        assert_eq!(answer, expected, "{} presented a code at {now}", s.name);
        s.witness(answer, now, None);
    }

    async fn present_recovery(&mut self, who: Who, pick: &Pick, form: Form) {
        let now = self.clock.now();
        let totp = self.kw.totp().unwrap().clone();
        let max_consecutive = self.max_consecutive;
        let others = self.subject(who.other()).unused.clone();
        let s = self.subject(who);
        let chosen = |list: &[String], i: usize| (!list.is_empty()).then(|| i % list.len());
        // The code as shown, and what the model finds it to be.
        let (code, found) = match pick {
            Pick::Unused(i) => {
                let Some(i) = chosen(&s.unused, *i) else {
                    return;
                };
                (s.unused[i].clone(), Ok(Some(i)))
            }
            Pick::Used(i) => {
                let Some(i) = chosen(&s.used, *i) else {
                    return;
                };
                (s.used[i].clone(), Ok(None))
            }
            Pick::Replaced(i) => {
                let Some(i) = chosen(&s.replaced, *i) else {
                    return;
                };
                (s.replaced[i].clone(), Err(()))
            }
            Pick::Others(i) => {
                let Some(i) = chosen(&others, *i) else {
                    return;
                };
                (others[i].clone(), Err(()))
            }
            Pick::Random(symbols) => {
                let plain: Vec<u8> = symbols
                    .iter()
                    .map(|&v| BASE32_LOWER[usize::from(v)])
                    .collect();
                let groups: Vec<&str> = plain
                    .chunks(4)
                    .map(|g| std::str::from_utf8(g).unwrap())
                    .collect();
                let code = groups.join("-");
                // 80 random bits: no code of the subject's, but say so.
                assert!(!s.unused.contains(&code) && !s.used.contains(&code));
                (code, Err(()))
            }
            Pick::Short(i) => {
                let Some(i) = chosen(&s.unused, *i) else {
                    return;
                };
                let mut code = s.unused[i].clone();
                code.pop();
                (code, Err(()))
            }
            Pick::NotBase32(i) => {
                let Some(i) = chosen(&s.unused, *i) else {
                    return;
                };
                // '1', '8', '9' and '0' are outside the RFC 4648 §6 alphabet.
                let code = format!("1{}", &s.unused[i][1..]);
                (code, Err(()))
            }
            Pick::Long => (["abcd"; 20].join("-"), Err(())),
        };
        let presented = typed(&code, form);
        let answer = outcome(totp.recover(s.name, &presented).await, |r| {
            Outcome::Recovered(r.left())
        });
        let expected = s.expect_recover(found, now, max_consecutive);
        assert_eq!(
            answer, expected,
            "{} presented recovery code {pick:?} as {form:?} at {now}",
            s.name
        );
        s.witness(answer, now, Some(&code));
    }

    async fn apply(&mut self, op: &Op) {
        let now = self.clock.now();
        match op {
            Op::Advance(secs) => self.clock.advance(*secs),
            Op::Code(who, d) => {
                let step = (now / PERIOD).checked_add_signed(*d).unwrap();
                let code = code_at(&self.subject(*who).secret, step);
                self.present_code(*who, &code).await;
            }
            Op::LastCode(who) => {
                let s = self.subject(*who);
                let code = code_at(&s.secret, s.last_step);
                self.present_code(*who, &code).await;
            }
            Op::OthersCode(who) => {
                let code = code_at(&self.subject(who.other()).secret, now / PERIOD);
                self.present_code(*who, &code).await;
            }
            Op::Wrong(who, value) => {
                let s = self.subject(*who);
                let current = now / PERIOD;
                let window: Vec<String> = (current - SKEW..=current + SKEW)
                    .map(|step| code_at(&s.secret, step))
                    .collect();
                let mut value = *value;
                while window.contains(&format!("{value:06}")) {
                    value = (value + 1) % 1_000_000;
                }
                self.present_code(*who, &format!("{value:06}")).await;
            }
            Op::Recover(who, pick, form) => self.present_recovery(*who, pick, *form).await,
            Op::Regenerate(who) => {
                let totp = self.kw.totp().unwrap().clone();
                let s = self.subject(*who);
                let fresh = shown_codes(totp.regenerate_recovery(s.name).await.unwrap().codes());
                for code in &fresh {
                    assert!(
                        !s.unused.contains(code)
                            && !s.used.contains(code)
                            && !s.replaced.contains(code),
                        "a recovery code shown twice"
                    );
                }
                s.replaced.append(&mut s.unused);
                s.replaced.append(&mut s.used);
                s.unused = fresh;
            }
            Op::Unlock(who) => {
                let name = self.subject(*who).name;
                self.kw.otp().unwrap().unlock(name).await.unwrap();
                let s = self.subject(*who);
                s.lockout = Lockout::default();
                s.failures.clear();
            }
        }
        // Both subjects' recovery codes are as many as the model says.
        let totp = self.kw.totp().unwrap().clone();
        for who in [Who::A, Who::B] {
            let s = self.subject(who);
            assert_eq!(
                totp.recovery_left(s.name).await.unwrap(),
                Some(s.unused.len()),
                "{}'s recovery codes left",
                s.name
            );
        }
    }
}

async fn property(offset: u64, max_consecutive: u32, ops: Vec<Op>) {
    let mut world = World::new(EPOCH + offset, max_consecutive).await;
    for op in &ops {
        world.apply(op).await;
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn the_second_factor_follows_the_model(
        offset in 0u64..PERIOD,
        max_consecutive in prop_oneof![
            // The default, which no sequence this short reaches; and
            // small enough to lock until an operator unlocks.
            3 => Just(DEFAULT_MAX_CONSECUTIVE_FAILURES),
            1 => MAX_ATTEMPTS..=7,
        ],
        ops in proptest::collection::vec(op(), 1..=MAX_OPS),
    ) {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(property(offset, max_consecutive, ops));
    }
}
