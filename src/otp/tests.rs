//! The one-time-code state machine, rule by rule and as a property test
//! against a model, with a manual clock; the code generator; the service
//! over a `MemoryStore`.

use super::*;
use crate::clock::ManualClock;
use crate::store::{MemoryStore, StoreError, decode, encode};
use crate::{Complete, JwtAlg, KeyRing, Keyward};
use proptest::prelude::*;

const KEY: &[u8; 32] = b"0123456789abcdef0123456789abcdef";
const T0: u64 = 1_700_000_000;

fn mac(code: &str) -> CodeMac {
    code_mac(KEY, "alice", "login", code.as_bytes())
}

fn policy() -> OtpPolicy {
    OtpPolicy::default()
}

fn issued(state: &SubjectState, code: &str, now: u64) -> SubjectState {
    decide_issue(state, "login", mac(code), now, &policy())
        .expect("not locked")
        .0
}

/// Presents `code` for `login`; applies the write, returns the verdict.
fn present(state: &mut SubjectState, code: &str, now: u64) -> Verdict {
    let (next, verdict) = decide_verify(state, "login", Some(mac(code)), now, &policy());
    if let Some(next) = next {
        *state = next;
    }
    verdict
}

fn invalid(attempts_left: u32) -> Verdict {
    Verdict::Invalid { attempts_left }
}

fn locked(until: u64) -> Verdict {
    Verdict::Refused(Refusal::Locked { until })
}

#[test]
fn the_rules_one_by_one() {
    let mut s = issued(&SubjectState::default(), "123456", T0);
    assert_eq!(s.codes.first().map(|c| c.expires_at), Some(T0 + 600));
    assert_eq!(present(&mut s, "000000", T0 + 1), invalid(2));
    assert_eq!(present(&mut s, "000001", T0 + 2), invalid(1));
    // The third failure locks for 60 minutes…
    assert_eq!(present(&mut s, "000002", T0 + 3), invalid(0));
    assert_eq!(s.locked_until, Some(T0 + 3 + 3_600));
    // …and then even the right code is refused, unevaluated.
    let before = s.clone();
    assert_eq!(present(&mut s, "123456", T0 + 4), locked(T0 + 3_603));
    assert_eq!(s, before, "a refused attempt writes nothing");
    assert_eq!(
        decide_issue(&s, "login", mac("654321"), T0 + 5, &policy()),
        Err(Refusal::Locked { until: T0 + 3_603 })
    );
}

#[test]
fn a_reissued_code_never_resets_the_count() {
    let mut s = issued(&SubjectState::default(), "111111", T0);
    assert_eq!(present(&mut s, "999999", T0), invalid(2));
    s = issued(&s, "222222", T0 + 10);
    assert_eq!(s.window_failures, 1);
    assert_eq!(present(&mut s, "999999", T0 + 11), invalid(1));
    s = issued(&s, "333333", T0 + 20);
    assert_eq!(present(&mut s, "999999", T0 + 21), invalid(0));
    assert!(s.refusal(T0 + 22).is_some());
    // The replaced codes are gone: the first is not accepted later.
    let mut t = issued(&SubjectState::default(), "111111", T0);
    t = issued(&t, "222222", T0 + 1);
    assert_eq!(present(&mut t, "111111", T0 + 2), invalid(2));
    assert_eq!(present(&mut t, "222222", T0 + 3), Verdict::Ok);
}

#[test]
fn the_lock_ends_exactly_at_the_lockout() {
    let mut s = issued(&SubjectState::default(), "123456", T0);
    for _ in 0..3 {
        let _ = present(&mut s, "000000", T0);
    }
    let end = T0 + 3_600;
    assert_eq!(present(&mut s, "123456", end - 1), locked(end));
    assert!(decide_issue(&s, "login", mac("1"), end - 1, &policy()).is_err());
    // At the end the lock is over; the lock discarded the old code.
    assert_eq!(present(&mut s, "123456", end), Verdict::NoCode);
    s = issued(&s, "424242", end);
    assert_eq!(s.locked_until, None);
    // A fresh window of three.
    assert_eq!(present(&mut s, "000000", end), invalid(2));
    assert_eq!(present(&mut s, "424242", end + 1), Verdict::Ok);
}

#[test]
fn success_resets_the_count() {
    let mut s = issued(&SubjectState::default(), "123456", T0);
    assert_eq!(present(&mut s, "000000", T0), invalid(2));
    assert_eq!(present(&mut s, "000001", T0), invalid(1));
    assert_eq!(present(&mut s, "123456", T0), Verdict::Ok);
    assert_eq!((s.window_failures, s.consecutive_failures), (0, 0));
    // Single use.
    assert_eq!(present(&mut s, "123456", T0), Verdict::NoCode);
    s = issued(&s, "654321", T0 + 60);
    assert_eq!(present(&mut s, "000000", T0 + 61), invalid(2));
}

#[test]
fn the_ceiling_holds_until_unlock() {
    let p = policy();
    let mut s = SubjectState::default();
    let mut now = T0;
    let mut failures = 0;
    while !s.locked_until_unlock {
        s = issued(&s, "123456", now);
        loop {
            match present(&mut s, "000000", now) {
                Verdict::Invalid { attempts_left } => {
                    failures += 1;
                    if attempts_left == 0 {
                        break;
                    }
                }
                other => panic!("{other:?} after {failures} failures"),
            }
        }
        now += p.lockout_secs;
    }
    assert_eq!(failures, 100);
    // Locked however long one waits, for every purpose, issue included.
    for wait in [0, 3_600, 86_400, 365 * 86_400] {
        let (_, v) = decide_verify(&s, "login", Some(mac("123456")), now + wait, &p);
        assert_eq!(v, Verdict::Refused(Refusal::LockedUntilUnlock));
        assert_eq!(
            decide_issue(&s, "password_reset", mac("1"), now + wait, &p),
            Err(Refusal::LockedUntilUnlock)
        );
    }
    let mut u = decide_unlock(&s);
    assert!(!u.has_failures());
    u = issued(&u, "123456", now);
    assert_eq!(present(&mut u, "123456", now), Verdict::Ok);
}

#[test]
fn the_consecutive_count_caps_attempts_left() {
    let p = OtpPolicy {
        max_consecutive_failures: 4,
        ..policy()
    };
    let mut s = decide_issue(&SubjectState::default(), "login", mac("1"), T0, &p)
        .unwrap()
        .0;
    let mut verdicts = Vec::new();
    for now in [T0, T0, T0, T0 + 3_600, T0 + 3_600] {
        if s.codes.is_empty() && s.refusal(now).is_none() {
            s = decide_issue(&s, "login", mac("1"), now, &p).unwrap().0;
        }
        let (next, v) = decide_verify(&s, "login", Some(mac("2")), now, &p);
        verdicts.push(v);
        if let Some(n) = next {
            s = n;
        }
    }
    assert_eq!(
        verdicts,
        [
            invalid(2),
            invalid(1),
            invalid(0),
            invalid(0), // the 4th consecutive failure: until unlock
            Verdict::Refused(Refusal::LockedUntilUnlock),
        ]
    );
}

#[test]
fn an_expired_code_is_refused_and_not_counted() {
    let mut s = issued(&SubjectState::default(), "123456", T0);
    assert_eq!(present(&mut s, "123456", T0 + 599), Verdict::Ok);
    s = issued(&s, "123456", T0 + 1_000);
    let before = s.clone();
    assert_eq!(present(&mut s, "123456", T0 + 1_600), Verdict::Expired);
    assert_eq!(present(&mut s, "000000", T0 + 1_601), Verdict::Expired);
    assert_eq!(s, before, "nothing counted");
}

#[test]
fn purposes_are_separate_codes_under_one_lock() {
    let p = policy();
    let login = mac("111111");
    let reset = code_mac(KEY, "alice", "password_reset", b"222222");
    let mut s = decide_issue(&SubjectState::default(), "login", login, T0, &p)
        .unwrap()
        .0;
    s = decide_issue(&s, "password_reset", reset, T0, &p).unwrap().0;
    // The login code does not verify as a reset code.
    let wrong = code_mac(KEY, "alice", "password_reset", b"111111");
    let (next, v) = decide_verify(&s, "password_reset", Some(wrong), T0, &p);
    assert_eq!(v, invalid(2));
    s = next.unwrap();
    // Failures for one purpose count for the subject.
    let (next, v) = decide_verify(&s, "login", Some(mac("0")), T0, &p);
    assert_eq!(v, invalid(1));
    s = next.unwrap();
    let (next, v) = decide_verify(&s, "login", Some(mac("0")), T0, &p);
    assert_eq!(v, invalid(0));
    s = next.unwrap();
    // Locked for both; both codes discarded.
    let (_, v) = decide_verify(&s, "password_reset", Some(reset), T0 + 1, &p);
    assert_eq!(v, locked(T0 + 3_600));
    assert!(s.codes.is_empty());
}

/// A success on one purpose forgives no guess at another purpose's code:
/// two wrong `password_reset` guesses, the right `login` code, and the
/// third wrong guess locks.
#[test]
fn a_success_on_another_purpose_forgives_nothing() {
    let p = policy();
    let reset = |code: &str| code_mac(KEY, "alice", "password_reset", code.as_bytes());
    let mut s = issued(&SubjectState::default(), "111111", T0);
    s = decide_issue(&s, "password_reset", reset("222222"), T0, &p)
        .unwrap()
        .0;
    for left in [2, 1] {
        let (next, v) = decide_verify(&s, "password_reset", Some(reset("0")), T0, &p);
        assert_eq!(v, invalid(left));
        s = next.unwrap();
    }
    assert_eq!(present(&mut s, "111111", T0 + 1), Verdict::Ok);
    assert_eq!((s.window_failures, s.consecutive_failures), (2, 2));
    let (next, v) = decide_verify(&s, "password_reset", Some(reset("0")), T0 + 2, &p);
    assert_eq!(v, invalid(0));
    s = next.unwrap();
    assert_eq!(
        s.refusal(T0 + 3),
        Some(Refusal::Locked { until: T0 + 3_602 })
    );
    // The code that faced three guesses is gone, even after the lock.
    let (_, v) = decide_verify(&s, "password_reset", Some(reset("222222")), T0 + 3_602, &p);
    assert_eq!(v, Verdict::NoCode);
}

/// A code faces `max_attempts` wrong guesses in its life, however often an
/// operator unlocks; and an unlock leaves nothing for a success to forgive.
#[test]
fn a_code_is_used_up_across_unlocks() {
    let mut s = issued(&SubjectState::default(), "123456", T0);
    assert_eq!(present(&mut s, "000000", T0), invalid(2));
    s = decide_unlock(&s);
    assert_eq!(present(&mut s, "000000", T0), invalid(1));
    s = decide_unlock(&s);
    // The third guess at the code uses it up, with the subject unlocked.
    assert_eq!(present(&mut s, "000000", T0), invalid(0));
    assert_eq!(s.refusal(T0), None);
    assert_eq!(present(&mut s, "123456", T0), Verdict::NoCode);

    // Guesses at a code from before an unlock are not forgiven against
    // guesses made after it.
    let p = policy();
    let reset = code_mac(KEY, "alice", "password_reset", b"222222");
    let mut s = issued(&SubjectState::default(), "111111", T0);
    s = decide_issue(&s, "password_reset", reset, T0, &p).unwrap().0;
    assert_eq!(present(&mut s, "000000", T0), invalid(2));
    assert_eq!(present(&mut s, "000000", T0), invalid(1));
    s = decide_unlock(&s);
    let (next, v) = decide_verify(&s, "password_reset", Some(mac("0")), T0, &p);
    assert_eq!(v, invalid(2));
    s = next.unwrap();
    assert_eq!(present(&mut s, "111111", T0), Verdict::Ok);
    assert_eq!(
        s.window_failures, 1,
        "the login code's old guesses forgave nothing"
    );
}

#[test]
fn input_too_long_to_be_a_code_is_a_failure() {
    let mut s = issued(&SubjectState::default(), "123456", T0);
    let (next, v) = decide_verify(&s, "login", None, T0, &policy());
    assert_eq!(v, invalid(2));
    s = next.unwrap();
    assert_eq!(s.consecutive_failures, 1);
}

#[test]
fn pending_codes_are_bounded() {
    let p = policy();
    let mut s = SubjectState::default();
    for i in 0..20u64 {
        let name = format!("p{i}");
        s = decide_issue(&s, &name, mac("1"), T0 + i, &p).unwrap().0;
    }
    assert_eq!(s.codes.len(), MAX_PENDING);
    // The newest stay.
    assert!(s.codes.iter().any(|c| c.purpose == "p19"));
    assert!(!s.codes.iter().any(|c| c.purpose == "p11"));
}

#[test]
fn the_mac_framing_is_unambiguous() {
    let a = code_mac(KEY, "ab", "login", b"123456");
    assert_ne!(a, code_mac(KEY, "a", "blogin", b"123456"));
    assert_ne!(
        code_mac(KEY, "a", "login1", b"23456"),
        code_mac(KEY, "a", "login", b"123456")
    );
    assert_ne!(a, code_mac(KEY, "ab", "email_change", b"123456"));
    assert_ne!(
        a,
        code_mac(
            b"another key of thirty-two bytes!",
            "ab",
            "login",
            b"123456"
        )
    );
    assert_eq!(a, code_mac(KEY, "ab", "login", b"123456"));
}

#[test]
fn records_round_trip_and_corrupt_ones_are_errors() {
    let s = issued(&SubjectState::default(), "123456", T0);
    let bytes = encode(&s).unwrap();
    assert_eq!(decode::<SubjectState>(&bytes).unwrap(), s);
    let text = String::from_utf8(bytes).unwrap();
    assert!(!text.contains("123456"), "{text}");
    let broken = text.replace("\"mac\":\"", "\"mac\":\"zz");
    assert!(matches!(
        decode::<SubjectState>(broken.as_bytes()),
        Err(StoreError::Corrupt(_))
    ));
    assert!(decode::<SubjectState>(b"not json").is_err());
}

#[test]
fn debug_output_shows_no_code_or_mac() {
    let code = OtpCode("493817".into());
    let issued_code = IssuedCode {
        code,
        expires_at: 1_600,
        purpose: Purpose::Login,
    };
    let m = mac("493817");
    let s = issued(&SubjectState::default(), "493817", 1_000);
    let shown = format!("{issued_code:?} {m:?} {s:?} {:#?}", issued_code.code);
    assert!(!shown.contains("493817"), "{shown}");
    assert!(!shown.contains(&hex(&m.0)), "{shown}");
    assert!(shown.contains("OMITTED"));
    let proof = OtpVerified {
        subject: "alice@example.com".into(),
        purpose: Purpose::Login,
        verified_at: 1,
        claims: None,
    };
    assert!(!format!("{proof:?}").contains("alice"));
}

#[test]
fn errors_name_no_code() {
    for e in [
        OtpError::Invalid { attempts_left: 2 },
        OtpError::Locked {
            retry_after: Duration::from_secs(3_600),
        },
        OtpError::LockedUntilUnlock,
        OtpError::Expired,
        OtpError::NoCode,
        OtpError::NotForLogin,
    ] {
        let text = Error::from(e).to_string();
        assert_eq!(text, text.to_lowercase());
        assert!(!e.reason().is_empty());
    }
}

#[test]
fn purposes_parse_and_validate() {
    assert_eq!(Purpose::parse("login").unwrap(), Purpose::Login);
    assert_eq!(
        Purpose::parse("email_change").unwrap(),
        Purpose::EmailChange
    );
    assert_eq!(
        "password_reset".parse::<Purpose>().unwrap(),
        Purpose::PasswordReset
    );
    let custom = Purpose::parse("delete-account_2").unwrap();
    assert_eq!(custom.name(), "delete-account_2");
    assert!(matches!(custom, Purpose::Custom(_)));
    for bad in ["", "Login", "2fa", "_x", "a b", "a:b", "é", &"a".repeat(33)] {
        let refused = Purpose::parse(bad).unwrap_err();
        assert!(matches!(refused, Error::InvalidInput(_)), "{bad:?}");
        assert_eq!((refused.status(), refused.code()), (400, "invalid_request"));
        assert!(matches!(
            bad.parse::<Purpose>(),
            Err(Error::InvalidInput(_))
        ));
    }
    assert!(Purpose::parse("a").is_ok());
    assert!(Purpose::parse(&"a".repeat(32)).is_ok());
}

#[test]
fn policy_bounds_are_checked() {
    assert!(policy().validate().is_ok());
    let bad = [
        OtpPolicy {
            digits: 5,
            ..policy()
        },
        OtpPolicy {
            digits: 10,
            ..policy()
        },
        OtpPolicy {
            code_ttl_secs: 0,
            ..policy()
        },
        OtpPolicy {
            max_attempts: 0,
            ..policy()
        },
        OtpPolicy {
            lockout_secs: 0,
            ..policy()
        },
        OtpPolicy {
            max_consecutive_failures: 101,
            ..policy()
        },
        OtpPolicy {
            max_consecutive_failures: 2,
            ..policy()
        },
        OtpPolicy {
            max_retries: 0,
            ..policy()
        },
    ];
    for p in bad {
        assert!(matches!(p.validate(), Err(Error::Config(_))), "{p:?}");
    }
}

/// Replays fixed `u32` draws.
struct Script(Vec<u32>, usize);

impl rand::TryRng for Script {
    type Error = std::convert::Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        let v = self.0.get(self.1).copied().unwrap_or(u32::MAX);
        self.1 += 1;
        Ok(v)
    }
    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        Ok(u64::from(self.try_next_u32()?))
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        for b in dst {
            *b = self.try_next_u32()?.to_le_bytes()[0];
        }
        Ok(())
    }
}

impl rand::TryCryptoRng for Script {}

#[test]
fn draws_in_the_biased_tail_are_rejected() {
    // 2^32 = 4294 * 10^6 + 967296: draws from 4,294,000,000 up would make
    // codes below 967296 more likely.
    let zone = 4_294_000_000u32;
    let mut rng = Script(vec![zone, u32::MAX, zone - 1], 0);
    let code = generate_code(&mut rng, 6).unwrap();
    assert_eq!(code.unprotected_as_str(), "999999");
    assert_eq!(rng.1, 3, "two draws rejected");
    let mut rng = Script(vec![123], 0);
    assert_eq!(
        generate_code(&mut rng, 6).unwrap().unprotected_as_str(),
        "000123"
    );
    let mut rng = Script(vec![7], 0);
    assert_eq!(
        generate_code(&mut rng, 9).unwrap().unprotected_as_str(),
        "000000007"
    );
    // A generator stuck in the tail is an error, not a hang.
    let mut stuck = Script(Vec::new(), 0);
    assert!(matches!(generate_code(&mut stuck, 6), Err(Error::Rng)));
}

/// Pearson's statistic of `counts` against a uniform expectation.
fn chi_square(counts: &[u32]) -> f64 {
    let total: u32 = counts.iter().sum();
    let n = u32::try_from(counts.len()).unwrap();
    let expected = f64::from(total) / f64::from(n);
    counts
        .iter()
        .map(|&c| (f64::from(c) - expected).powi(2) / expected)
        .sum()
}

#[test]
fn chi_square_is_computed_right() {
    assert!(chi_square(&[10, 10, 10, 10]).abs() < 1e-12);
    // (20-10)^2/10 + 3 * (10-0)... : [20, 0, 10, 10] → 10 + 10 = 20.
    assert!((chi_square(&[20, 0, 10, 10]) - 20.0).abs() < 1e-12);
}

#[test]
fn digits_are_uniform_over_100k_codes() {
    const N: usize = 100_000;
    let mut per_position = [[0u32; 10]; 6];
    let mut rng = rand::rngs::SysRng;
    for _ in 0..N {
        let code = generate_code(&mut rng, 6).unwrap();
        let s = code.unprotected_as_str();
        assert_eq!(s.len(), 6);
        for (pos, b) in s.bytes().enumerate() {
            assert!(b.is_ascii_digit(), "{pos}");
            per_position[pos][usize::from(b - b'0')] += 1;
        }
    }
    let stats: Vec<f64> = per_position.iter().map(|c| chi_square(c)).collect();
    let total: f64 = stats.iter().sum();
    println!(
        "chi-square over {N} codes, per position (9 dof each): {}; total (54 dof): {total:.2}",
        stats
            .iter()
            .map(|s| format!("{s:.2}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    // Generous both ways: each bound is crossed by a uniform source with
    // probability under 1e-6 (per position: P(X < 0.2) and P(X > 55) for
    // 9 dof; total: P(X < 15) and P(X > 120) for 54 dof). Too low is as
    // suspicious as too high: it means the digits are not random.
    for (pos, s) in stats.iter().enumerate() {
        assert!((0.2..55.0).contains(s), "position {pos}: {s}");
    }
    assert!((15.0..120.0).contains(&total), "total {total}");
}

// ---- The property test: random sequences against a model. ----

#[derive(Debug, Clone)]
enum Step {
    Issue(usize),
    Right(usize),
    Wrong(usize),
    TooLong(usize),
    Wait(u64),
    /// Jump to the lock's end, offset by -2..=+2 s.
    ToLockEnd(u64),
    Unlock,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => (0..2usize).prop_map(Step::Issue),
        2 => (0..2usize).prop_map(Step::Right),
        6 => (0..2usize).prop_map(Step::Wrong),
        1 => (0..2usize).prop_map(Step::TooLong),
        3 => prop_oneof![0u64..5, 0u64..700, 0u64..4_000].prop_map(Step::Wait),
        2 => (0u64..5).prop_map(Step::ToLockEnd),
        1 => Just(Step::Unlock),
    ]
}

/// A pending code in the model.
#[derive(Clone, Copy)]
struct ModelCode {
    mac: CodeMac,
    expires: u64,
    /// Wrong guesses in its life.
    guesses: u32,
    /// Of those, the ones still counted against the subject.
    counted: u32,
}

/// The rules, written as plainly as possible.
#[derive(Default)]
struct Model {
    codes: [Option<ModelCode>; 2],
    window: u32,
    consecutive: u32,
    lock_end: Option<u64>,
    hard: bool,
}

impl Model {
    fn refusal(&self, now: u64) -> Option<Refusal> {
        if self.hard {
            Some(Refusal::LockedUntilUnlock)
        } else {
            self.lock_end
                .filter(|&e| now < e)
                .map(|until| Refusal::Locked { until })
        }
    }

    fn unlock(&mut self) {
        let mut codes = self.codes;
        for c in codes.iter_mut().flatten() {
            c.counted = 0;
        }
        *self = Model {
            codes,
            ..Model::default()
        };
    }

    fn present(
        &mut self,
        p: usize,
        candidate: Option<CodeMac>,
        now: u64,
        pol: &OtpPolicy,
    ) -> Verdict {
        if let Some(r) = self.refusal(now) {
            return Verdict::Refused(r);
        }
        let Some(mut code) = self.codes[p] else {
            return Verdict::NoCode;
        };
        if now >= code.expires {
            return Verdict::Expired;
        }
        if candidate == Some(code.mac) {
            // Only this code's own counted guesses are forgiven.
            self.codes[p] = None;
            self.window -= code.counted.min(self.window);
            self.consecutive -= code.counted.min(self.consecutive);
            return Verdict::Ok;
        }
        self.window += 1;
        self.consecutive += 1;
        code.guesses += 1;
        code.counted += 1;
        if self.consecutive >= pol.max_consecutive_failures {
            self.hard = true;
        } else if self.window >= pol.max_attempts {
            self.lock_end = Some(now + pol.lockout_secs);
        } else {
            self.codes[p] = (code.guesses < pol.max_attempts).then_some(code);
            return invalid(
                (pol.max_attempts - self.window)
                    .min(pol.max_consecutive_failures - self.consecutive)
                    .min(pol.max_attempts - code.guesses),
            );
        }
        self.window = 0;
        self.codes = [None, None];
        invalid(0)
    }
}

const PURPOSES: [&str; 2] = ["login", "email_change"];

proptest! {
    // At least 10,000 sequences: the two invariants below are the
    // security promises of the one-time-code lockout.
    #![proptest_config(ProptestConfig::with_cases(10_000))]

    #[test]
    fn the_machine_follows_the_rules(
        steps in proptest::collection::vec(step(), 1..120),
        max_attempts in 1u32..=4,
        extra in 0u32..10,
        lockout in prop::sample::select(vec![60u64, 3_600]),
        ttl in prop::sample::select(vec![30u64, 600]),
    ) {
        let pol = OtpPolicy {
            max_attempts,
            max_consecutive_failures: max_attempts + extra,
            lockout_secs: lockout,
            code_ttl_secs: ttl,
            ..OtpPolicy::default()
        };
        prop_assert!(pol.validate().is_ok());
        let mut now = T0;
        let mut state = SubjectState::default();
        let mut model = Model::default();
        let mut serial = 0u32;
        // The last code issued for each purpose (what "Right" presents, even
        // once the code is used up or discarded), its serial, and the wrong
        // guesses evaluated against it.
        let mut last: [Option<(CodeMac, u32)>; 2] = [None, None];
        let mut guesses_at: std::collections::HashMap<u32, u32> = Default::default();
        // Evaluated failures not forgiven by a success on their own code,
        // since the last unlock: (time, serial of the code guessed at).
        let mut unforgiven: Vec<(u64, u32)> = Vec::new();
        // The 24-hour bound that SECURITY.md states.
        let per_day = u64::from(max_attempts) * 86_400u64.div_ceil(lockout);
        for step in steps {
            serial += 1;
            let (p, candidate) = match step {
                Step::Issue(p) => {
                    let m = code_mac(KEY, "alice", PURPOSES[p], format!("{serial:06}").as_bytes());
                    let before = state.clone();
                    let got = decide_issue(&state, PURPOSES[p], m, now, &pol);
                    match model.refusal(now) {
                        Some(r) => prop_assert_eq!(got, Err(r)),
                        None => {
                            let (next, expires) = got.map_err(|r| TestCaseError::fail(format!("{r:?}")))?;
                            prop_assert_eq!(expires, now + ttl);
                            // Issuing never touches the failure counts.
                            prop_assert_eq!(next.window_failures, before.window_failures);
                            prop_assert_eq!(next.consecutive_failures, before.consecutive_failures);
                            model.codes[p] = Some(ModelCode { mac: m, expires, guesses: 0, counted: 0 });
                            last[p] = Some((m, serial));
                            state = next;
                        }
                    }
                    continue;
                }
                Step::Right(p) => (p, Some(last[p].map_or_else(|| mac("never"), |c| c.0))),
                Step::Wrong(p) => (p, Some(code_mac(KEY, "alice", PURPOSES[p], format!("x{serial}").as_bytes()))),
                Step::TooLong(p) => (p, None),
                Step::Wait(s) => { now += s; continue; }
                Step::ToLockEnd(k) => {
                    if let Some(end) = model.lock_end {
                        now = now.max((end + k).saturating_sub(2));
                    }
                    continue;
                }
                Step::Unlock => {
                    state = decide_unlock(&state);
                    model.unlock();
                    unforgiven.clear();
                    continue;
                }
            };
            let before = state.clone();
            let guessed = model.codes[p].map(|c| c.mac);
            let (next, verdict) = decide_verify(&state, PURPOSES[p], candidate, now, &pol);
            let expected = model.present(p, candidate, now, &pol);
            prop_assert_eq!(verdict, expected, "at {} with {:?}", now - T0, before);
            let code_serial = last[p].filter(|c| Some(c.0) == guessed).map(|c| c.1);
            match verdict {
                Verdict::Ok => {
                    prop_assert!(next.is_some());
                    let s = code_serial.ok_or_else(|| TestCaseError::fail("ok for no code"))?;
                    // Invariant 1: a code that faced max_attempts wrong
                    // guesses never succeeds.
                    prop_assert!(guesses_at.get(&s).copied().unwrap_or(0) < max_attempts);
                    unforgiven.retain(|&(_, at)| at != s);
                }
                Verdict::Invalid { .. } => {
                    prop_assert!(next.is_some());
                    let s = code_serial.ok_or_else(|| TestCaseError::fail("invalid for no code"))?;
                    let n = guesses_at.entry(s).or_insert(0);
                    *n += 1;
                    // Invariant 1: at most max_attempts evaluated wrong
                    // guesses at one code in its whole life, whatever
                    // succeeds or is unlocked in between.
                    prop_assert!(*n <= max_attempts, "code {s} faced {n} guesses");
                    unforgiven.push((now, s));
                    // Invariant 2: no success elsewhere raises the number
                    // of unforgiven guesses: at most max_attempts in any
                    // lockout-long span, so at most `per_day` in any 24 h,
                    // and at most max_consecutive_failures between unlocks.
                    let within = |span: u64| unforgiven.iter().filter(|&&(t, _)| now - t < span).count();
                    let recent = within(lockout);
                    prop_assert!(recent <= usize::try_from(max_attempts).unwrap(), "{recent} failures within {lockout} s");
                    let day = within(86_400);
                    prop_assert!(u64::try_from(day).unwrap() <= per_day, "{day} failures within 24 h");
                    prop_assert!(unforgiven.len() <= usize::try_from(pol.max_consecutive_failures).unwrap());
                }
                // Refusals, expiries and missing codes write nothing.
                _ => prop_assert!(next.is_none()),
            }
            if let Some(n) = next { state = n; }
            prop_assert_eq!(state.consecutive_failures, model.consecutive);
            prop_assert_eq!(state.locked_until_unlock, model.hard);
            // The machine's counters are exactly the unforgiven guesses.
            prop_assert_eq!(usize::try_from(state.consecutive_failures).unwrap(), unforgiven.len());
        }
    }
}

// ---- The service, over a MemoryStore. ----

fn service(clock: &ManualClock, store: Arc<dyn Store>) -> Keyward<Complete> {
    Keyward::builder()
        .issuer("https://auth.example.com")
        .audience("api")
        .keys(KeyRing::generate(JwtAlg::HS256).unwrap())
        .shared_store(store)
        .clock(Arc::new(clock.clone()))
        .build()
        .unwrap()
}

fn otp_err(r: Result<OtpVerified, Error>) -> OtpError {
    match r {
        Err(Error::Otp(e)) => e,
        other => panic!("expected an otp error, got {other:?}"),
    }
}

#[tokio::test]
async fn issue_verify_lock_unlock_through_the_facade() {
    let clock = ManualClock::new(T0);
    let kw = service(&clock, Arc::new(MemoryStore::new()));
    let otp = kw.otp();
    let c = otp.issue("alice", Purpose::Login).await.unwrap();
    assert_eq!(c.expires_at, T0 + 600);
    let code = c.code.unprotected_as_str().to_owned();
    assert_eq!(code.len(), 6);
    let wrong = if code == "000000" { "000001" } else { "000000" };
    assert_eq!(
        otp_err(otp.verify("alice", Purpose::Login, wrong).await),
        OtpError::Invalid { attempts_left: 2 }
    );
    // The code of another subject or purpose does not verify.
    assert_eq!(
        otp_err(otp.verify("bob", Purpose::Login, &code).await),
        OtpError::NoCode
    );
    assert_eq!(
        otp_err(otp.verify("alice", Purpose::EmailChange, &code).await),
        OtpError::NoCode
    );
    let proof = otp.verify("alice", Purpose::Login, &code).await.unwrap();
    assert_eq!(
        (proof.subject(), proof.purpose()),
        ("alice", &Purpose::Login)
    );
    // A proof starts a session; one for another purpose does not.
    let pair = kw.sessions().start_with_otp(proof).await.unwrap();
    assert_eq!(
        kw.sessions()
            .authenticate(pair.access.unprotected_as_str())
            .unwrap()
            .sub,
        "alice"
    );

    clock.advance(60);
    let c = otp.issue("alice", Purpose::PasswordReset).await.unwrap();
    let code = c.code.unprotected_as_str().to_owned();
    let wrong = if code == "000000" { "000001" } else { "000000" };
    for left in [2, 1, 0] {
        assert_eq!(
            otp_err(otp.verify("alice", Purpose::PasswordReset, wrong).await),
            OtpError::Invalid {
                attempts_left: left
            }
        );
    }
    assert_eq!(
        otp_err(otp.verify("alice", Purpose::PasswordReset, &code).await),
        OtpError::Locked {
            retry_after: Duration::from_secs(3_600)
        }
    );
    clock.advance(60);
    assert!(matches!(
        otp.issue("alice", Purpose::Login).await,
        Err(Error::Otp(OtpError::Locked { retry_after })) if retry_after.as_secs() == 3_540
    ));
    otp.unlock("alice").await.unwrap();
    clock.advance(60);
    let c = otp.issue("alice", Purpose::PasswordReset).await.unwrap();
    let proof = otp
        .verify("alice", Purpose::PasswordReset, c.code.unprotected_as_str())
        .await
        .unwrap();
    assert!(matches!(
        kw.sessions().start_with_otp(proof).await,
        Err(Error::Otp(OtpError::NotForLogin))
    ));
    // Unlocking a subject with no record is fine.
    otp.unlock("nobody").await.unwrap();
}

#[tokio::test]
async fn sends_are_limited_per_subject_across_instances() {
    let clock = ManualClock::new(T0);
    let store: Arc<dyn crate::Store> = Arc::new(MemoryStore::new());
    let kw = service(&clock, Arc::clone(&store));
    let otp = kw.otp();
    let _ = otp.issue("alice", Purpose::Login).await.unwrap();
    match otp.issue("alice", Purpose::EmailChange).await {
        Err(Error::RateLimited { retry_after }) => assert_eq!(retry_after.as_secs(), 60),
        other => panic!("{other:?}"),
    }
    // A second instance (another replica) on the same store and key ring
    // sees the same count.
    let replica = Keyward::builder()
        .keys(KeyRing::from_json(&kw.keys().unwrap().to_json()).unwrap())
        .shared_store(Arc::clone(&store))
        .clock(Arc::new(clock.clone()))
        .build_partial()
        .unwrap();
    assert!(matches!(
        replica.otp().unwrap().issue("alice", Purpose::Login).await,
        Err(Error::RateLimited { .. })
    ));
    let _ = otp.issue("bob", Purpose::Login).await.unwrap();
    clock.advance(59);
    assert!(matches!(
        otp.issue("alice", Purpose::Login).await,
        Err(Error::RateLimited { retry_after }) if retry_after.as_secs() == 1
    ));
    clock.advance(1);
    let _ = replica
        .otp()
        .unwrap()
        .issue("alice", Purpose::Login)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_refused_issue_takes_no_send() {
    let clock = ManualClock::new(T0);
    let kw = service(&clock, Arc::new(MemoryStore::new()));
    let otp = kw.otp();
    let code = otp.issue("alice", Purpose::Login).await.unwrap().code;
    let wrong = if code.unprotected_as_str() == "000000" {
        "000001"
    } else {
        "000000"
    };
    for _ in 0..3 {
        let _ = otp.verify("alice", Purpose::Login, wrong).await;
    }
    // Locked: a lock is reported as such, within the send window or not,
    // and takes no send.
    for advance in [60, 0] {
        assert!(matches!(
            otp.issue("alice", Purpose::Login).await,
            Err(Error::Otp(OtpError::Locked { .. }))
        ));
        clock.advance(advance);
    }
    // The refusal a minute on took no send: right after an unlock, a code
    // goes out.
    otp.unlock("alice").await.unwrap();
    let _ = otp.issue("alice", Purpose::Login).await.unwrap();
    assert!(matches!(
        otp.issue("alice", Purpose::Login).await,
        Err(Error::RateLimited { .. })
    ));
}

#[tokio::test]
async fn bad_subjects_are_refused() {
    let clock = ManualClock::new(T0);
    let kw = service(&clock, Arc::new(MemoryStore::new()));
    let otp = kw.otp();
    let long = "x".repeat(1_025);
    for s in ["", long.as_str()] {
        let refused = otp.issue(s, Purpose::Login).await.unwrap_err();
        assert!(matches!(refused, Error::InvalidInput(_)), "{refused:?}");
        assert_eq!((refused.status(), refused.code()), (400, "invalid_request"));
        assert_eq!(
            refused.to_string(),
            "invalid input: subject must be 1 to 1024 bytes"
        );
        assert!(matches!(
            otp.verify(s, Purpose::Login, "123456").await,
            Err(Error::InvalidInput(_))
        ));
        assert!(matches!(otp.unlock(s).await, Err(Error::InvalidInput(_))));
    }
    // The bounds themselves are subjects.
    let longest = "x".repeat(1_024);
    for s in ["x", longest.as_str()] {
        let issued = otp.issue(s, Purpose::Login).await.unwrap();
        otp.verify(s, Purpose::Login, issued.code.unprotected_as_str())
            .await
            .unwrap();
        otp.unlock(s).await.unwrap();
    }
}

#[tokio::test]
async fn storage_errors_fail_closed() {
    let clock = ManualClock::new(T0);
    let store = Arc::new(crate::store::testing::FaultyStore::new(Arc::new(
        MemoryStore::new(),
    )));
    let kw = service(&clock, Arc::clone(&store) as Arc<dyn Store>);
    let otp = kw.otp();
    let c = otp.issue("alice", Purpose::Login).await.unwrap();
    let code = c.code.unprotected_as_str().to_owned();
    let wrong = if code == "000000" { "000001" } else { "000000" };
    assert_eq!(
        otp_err(otp.verify("alice", Purpose::Login, wrong).await),
        OtpError::Invalid { attempts_left: 2 }
    );
    for (load, swap) in [(true, false), (false, true)] {
        store.fail_loads(load);
        store.fail_commits(swap);
        // The right code is not accepted, a wrong one is not let through
        // uncounted as anything but an error, and no code is issued.
        assert!(matches!(
            otp.verify("alice", Purpose::Login, &code).await,
            Err(Error::Store(_))
        ));
        assert!(matches!(
            otp.verify("alice", Purpose::Login, wrong).await,
            Err(Error::Store(_))
        ));
        clock.advance(60);
        assert!(matches!(
            otp.issue("alice", Purpose::Login).await,
            Err(Error::Store(_))
        ));
        assert!(matches!(otp.unlock("alice").await, Err(Error::Store(_))));
    }
    store.fail_loads(false);
    store.fail_commits(false);
    // Nothing was counted, consumed or unlocked while the store was down.
    assert_eq!(
        otp_err(otp.verify("alice", Purpose::Login, wrong).await),
        OtpError::Invalid { attempts_left: 1 }
    );
    otp.verify("alice", Purpose::Login, &code).await.unwrap();
}

/// `status` reads the record without changing it; `unlock_found` tells a
/// subject with a record from one without.
#[tokio::test]
async fn status_and_unlock_report_what_is_on_record() {
    let clock = ManualClock::new(T0);
    let kw = service(&clock, Arc::new(MemoryStore::new()));
    let otp = kw.otp();

    // Nobody: no record, and an unlock says so.
    assert_eq!(otp.status("nobody").await.unwrap(), OtpStatus::default());
    assert!(!otp.unlock_found("nobody").await.unwrap());
    assert_eq!(otp.status("nobody").await.unwrap(), OtpStatus::default());

    // A pending code, and a wrong guess.
    let code = otp.issue("alice", Purpose::Login).await.unwrap().code;
    let wrong = if code.unprotected_as_str() == "000000" {
        "000001"
    } else {
        "000000"
    };
    let _ = otp.verify("alice", Purpose::Login, wrong).await;
    let status = otp.status("alice").await.unwrap();
    assert_eq!(
        (
            status.found,
            status.failures,
            status.window_failures,
            status.locked,
            status.retry_after,
            status.locked_until_unlock,
            status.pending.clone()
        ),
        (true, 1, 1, false, None, false, vec!["login".to_owned()])
    );
    // Reading twice changes nothing: one more wrong guess still leaves one.
    assert_eq!(otp.status("alice").await.unwrap(), status);
    assert_eq!(
        otp_err(otp.verify("alice", Purpose::Login, wrong).await),
        OtpError::Invalid { attempts_left: 1 }
    );

    // The third failure locks: the codes go, the lock shows its time left.
    let _ = otp.verify("alice", Purpose::Login, wrong).await;
    clock.advance(100);
    let status = otp.status("alice").await.unwrap();
    assert_eq!(
        (
            status.found,
            status.failures,
            status.window_failures,
            status.locked,
            status.retry_after,
            status.locked_until_unlock,
            status.pending.len()
        ),
        (true, 3, 0, true, Some(Duration::from_secs(3_500)), false, 0)
    );

    // The unlock finds the record and clears it.
    assert!(otp.unlock_found("alice").await.unwrap());
    let status = otp.status("alice").await.unwrap();
    assert!(status.found && !status.locked && status.failures == 0);
    assert_eq!(status.retry_after, None);
    // An unlock that changes nothing still finds the record.
    assert!(otp.unlock_found("alice").await.unwrap());

    // An expired code is not pending.
    let _ = otp.issue("bob", Purpose::EmailChange).await.unwrap();
    assert_eq!(otp.status("bob").await.unwrap().pending, ["email_change"]);
    clock.advance(600);
    let status = otp.status("bob").await.unwrap();
    assert!(status.found && status.pending.is_empty());

    // Locked until an operator unlocks: no time left to show.
    let policy = OtpPolicy {
        max_attempts: 1,
        max_consecutive_failures: 1,
        ..OtpPolicy::default()
    };
    let strict = Keyward::builder()
        .keys(KeyRing::generate(JwtAlg::HS256).unwrap())
        .store(MemoryStore::new())
        .otp_policy(policy)
        .clock(Arc::new(clock.clone()))
        .build_partial()
        .unwrap();
    let otp = strict.otp().unwrap();
    let code = otp.issue("carol", Purpose::Login).await.unwrap().code;
    let wrong = if code.unprotected_as_str() == "000000" {
        "000001"
    } else {
        "000000"
    };
    let _ = otp.verify("carol", Purpose::Login, wrong).await;
    let status = otp.status("carol").await.unwrap();
    assert_eq!(
        (
            status.locked,
            status.locked_until_unlock,
            status.retry_after
        ),
        (true, true, None)
    );

    // Bad subjects are refused, as everywhere.
    let long = "x".repeat(1_025);
    for s in ["", long.as_str()] {
        assert!(matches!(otp.status(s).await, Err(Error::InvalidInput(_))));
        assert!(matches!(
            otp.unlock_found(s).await,
            Err(Error::InvalidInput(_))
        ));
    }
}

#[tokio::test]
async fn status_fails_closed_on_a_store_error() {
    let clock = ManualClock::new(T0);
    let store = Arc::new(crate::store::testing::FaultyStore::new(Arc::new(
        MemoryStore::new(),
    )));
    let kw = service(&clock, Arc::clone(&store) as Arc<dyn Store>);
    let otp = kw.otp();
    store.fail_loads(true);
    assert!(matches!(otp.status("alice").await, Err(Error::Store(_))));
    assert!(matches!(
        otp.unlock_found("alice").await,
        Err(Error::Store(_))
    ));
}
