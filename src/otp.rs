//! One-time codes (emailed or texted), with attempt counting and lockouts.
//!
//! A 6-digit code has about 20 bits of entropy: all of its security comes
//! from counting attempts. The rules, everywhere:
//!
//! - **A code faces at most 3 evaluated wrong guesses in its whole life.**
//!   The third wrong guess at a code uses it up, whatever else happens
//!   meanwhile (a success on another purpose, an operator's unlock).
//! - **3 failed attempts lock the subject for 60 minutes.** While locked,
//!   even the right code is refused, and no new code is issued. A lock
//!   discards the subject's pending codes.
//! - Issuing a new code never resets the count. A correct code forgives
//!   only the wrong guesses made at *that* code (the user's own typos); a
//!   success on one purpose never forgives guesses at another purpose's
//!   code, so completing one flow buys no guesses at another.
//! - After 100 unforgiven failures, counted across lockouts and reset only
//!   by an operator's [`Otp::unlock`], the subject stays locked until an
//!   operator unlocks it (NIST SP 800-63B §5.2.2).
//!
//! So in any 24 hours a subject's codes face at most `max_attempts ×
//! ⌈86,400 / lockout_secs⌉` unforgiven wrong guesses (72 with the
//! defaults), and at most `max_consecutive_failures` (100) between two
//! operator unlocks.
//!
//! The lock is per **subject**, across purposes and sources: one record per
//! subject holds the failure state and the pending code of each
//! [`Purpose`]. An attacker who knows a user's identifier can therefore lock
//! that user out of codes for an hour at a time; the caller owns the
//! recovery path (see `SECURITY.md`).
//!
//! Codes are stored as `HMAC-SHA256(server key, len ‖ subject ‖ len ‖
//! purpose ‖ len ‖ code)`, with 64-bit length prefixes, and compared in
//! constant time. Store keys hold a keyed tag of the subject, never the
//! subject itself. No code, MAC or subject appears in an error or a log
//! line; events carry the subject tag.
//!
//! The rules are a pure state machine over the subject's record; the
//! [`Otp`] service runs each transition as one load, decide,
//! compare-and-swap on the [`Store`], retrying on conflict, so the count is
//! exact across threads, processes and replicas. Any storage error fails
//! closed: no code is accepted, issued, or let past a lockout.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use rand::TryCryptoRng;
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::clock::Clock;
use crate::error::Error;
use crate::secret::SecretBytes;
use crate::store::{MAX_TTL, Store, StoreError, Swap};
use crate::throttle::Throttles;

pub use crate::error::OtpError;

/// Digits per code: 6 (NIST SP 800-63B §5.1.3.1 and §5.1.4.1: at least 6
/// decimal digits).
pub const DEFAULT_DIGITS: u32 = 6;
/// A code is valid for 10 minutes (OWASP Multifactor Authentication Cheat
/// Sheet; ASVS 5.0 6.5).
pub const DEFAULT_CODE_TTL_SECS: u64 = 600;
/// Failed attempts that lock the subject, and wrong guesses a code faces
/// in its life: 3.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 3;
/// How long a lock lasts: 60 minutes.
pub const DEFAULT_LOCKOUT_SECS: u64 = 3_600;
/// Failures, across lockouts, after which only an operator's unlock helps:
/// 100, the most NIST SP 800-63B §5.2.2 allows. Only an unlock resets the
/// count; a success forgives only the wrong guesses at its own code.
pub const DEFAULT_MAX_CONSECUTIVE_FAILURES: u32 = 100;
/// Compare-and-swap attempts before an operation gives up with `Busy`.
pub const DEFAULT_MAX_RETRIES: u32 = 32;

const CODE_DOMAIN: &[u8] = b"keyward otp code v1\0";
const SUBJECT_DOMAIN: &[u8] = b"keyward otp subject v1\0";
const MAX_SUBJECT_LEN: usize = 1024;
const MAX_PURPOSE_LEN: usize = 32;
/// A presented code longer than this is a failed attempt, unhashed.
const MAX_CODE_INPUT: usize = 64;
/// Pending codes kept per subject (one per purpose); past it, the one
/// expiring first is dropped.
const MAX_PENDING: usize = 8;
/// An expired code is remembered this long, so that it is reported as
/// expired rather than missing.
const EXPIRED_NOTICE_SECS: u64 = 86_400;
/// Draws before the generator gives up: a working CSPRNG is rejected with
/// probability below 2^-12 per draw, so 64 rejections in a row mean a
/// broken one.
const MAX_DRAWS: u32 = 64;

/// The numbers of the one-time-code rules. Every field is validated when
/// the [`Keyward`](crate::Keyward) is built.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct OtpPolicy {
    /// Digits per code, 6 to 9.
    pub digits: u32,
    /// Seconds a code is valid, 1 to 3,600.
    pub code_ttl_secs: u64,
    /// Failed attempts that lock the subject, and wrong guesses one code
    /// faces in its life; 1 to 10.
    pub max_attempts: u32,
    /// Seconds a lock lasts, 1 to 7 days.
    pub lockout_secs: u64,
    /// Failures (across lockouts, since the last operator unlock, less the
    /// wrong guesses at codes that then succeeded) that lock the subject
    /// until an operator unlocks it; from `max_attempts` to 100.
    pub max_consecutive_failures: u32,
    /// Compare-and-swap attempts per operation under contention.
    pub max_retries: u32,
}

impl Default for OtpPolicy {
    fn default() -> Self {
        Self {
            digits: DEFAULT_DIGITS,
            code_ttl_secs: DEFAULT_CODE_TTL_SECS,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            lockout_secs: DEFAULT_LOCKOUT_SECS,
            max_consecutive_failures: DEFAULT_MAX_CONSECUTIVE_FAILURES,
            max_retries: DEFAULT_MAX_RETRIES,
        }
    }
}

impl OtpPolicy {
    pub(crate) fn validate(&self) -> Result<(), Error> {
        let bad = |msg: &str| Err(Error::Config(format!("otp.{msg}")));
        if !(6..=9).contains(&self.digits) {
            return bad("digits must be 6 to 9");
        }
        if !(1..=3_600).contains(&self.code_ttl_secs) {
            return bad("code_ttl_secs must be 1 to 3600");
        }
        if !(1..=10).contains(&self.max_attempts) {
            return bad("max_attempts must be 1 to 10");
        }
        if !(1..=7 * 86_400).contains(&self.lockout_secs) {
            return bad("lockout_secs must be 1 to 604800");
        }
        if !(self.max_attempts..=100).contains(&self.max_consecutive_failures) {
            return bad("max_consecutive_failures must be from max_attempts to 100");
        }
        if self.max_retries == 0 {
            return bad("max_retries must be at least 1");
        }
        Ok(())
    }
}

/// What a code is for. A code issued for one purpose never verifies for
/// another; the lockout is shared by all purposes of a subject.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Purpose {
    /// Signing in (`login`).
    Login,
    /// Confirming a new email address (`email_change`).
    EmailChange,
    /// Resetting a password (`password_reset`).
    PasswordReset,
    /// Another purpose, by a validated name.
    Custom(CustomPurpose),
}

/// The name of a custom [`Purpose`]: 1 to 32 characters of `a-z`, `0-9`,
/// `_` and `-`, starting with a letter, and none of the built-in names.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CustomPurpose(String);

impl CustomPurpose {
    /// The name.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Purpose {
    /// The purpose named `name`: a built-in name gives the built-in
    /// purpose, any other valid name a [`Purpose::Custom`].
    ///
    /// ```
    /// use keyward::Purpose;
    /// assert_eq!(Purpose::parse("login")?, Purpose::Login);
    /// assert_eq!(Purpose::parse("delete_account")?.name(), "delete_account");
    /// assert!(Purpose::parse("Delete Account").is_err());
    /// # Ok::<(), keyward::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Config`] when the name is empty, longer than 32 bytes, or
    /// has a character outside `a-z`, `0-9`, `_`, `-`, or does not start
    /// with a letter.
    pub fn parse(name: &str) -> Result<Self, Error> {
        Ok(match name {
            "login" => Self::Login,
            "email_change" => Self::EmailChange,
            "password_reset" => Self::PasswordReset,
            _ => {
                let valid = name.len() <= MAX_PURPOSE_LEN
                    && name.bytes().next().is_some_and(|b| b.is_ascii_lowercase())
                    && name.bytes().all(|b| {
                        b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'-')
                    });
                if !valid {
                    return Err(Error::Config(
                        "a purpose is 1 to 32 characters of a-z, 0-9, '_' and '-', starting with a letter"
                            .into(),
                    ));
                }
                Self::Custom(CustomPurpose(name.to_owned()))
            }
        })
    }

    /// The purpose's name, as stored and as the CLI spells it.
    #[must_use]
    pub fn name(&self) -> &str {
        match self {
            Self::Login => "login",
            Self::EmailChange => "email_change",
            Self::PasswordReset => "password_reset",
            Self::Custom(c) => c.as_str(),
        }
    }
}

impl FromStr for Purpose {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        Self::parse(s)
    }
}

impl fmt::Display for Purpose {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An issued code, to send to the user. Redacted `Debug`, zeroized on drop;
/// no `Clone`, `Display` or `Serialize`.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct OtpCode(String);

impl OtpCode {
    /// The digits, to put in the email or text message.
    #[must_use]
    pub fn unprotected_as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for OtpCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OtpCode(OMITTED)")
    }
}

/// What [`Otp::issue`] returns.
#[derive(Debug)]
#[non_exhaustive]
pub struct IssuedCode {
    /// The code.
    pub code: OtpCode,
    /// When it expires, in seconds since the Unix epoch.
    pub expires_at: u64,
    /// What it is for.
    pub purpose: Purpose,
}

/// Proof that a subject presented a correct code: what
/// [`Sessions::start_with_otp`](crate::session::Sessions::start_with_otp)
/// requires. Only [`Otp::verify`] makes one.
pub struct OtpVerified {
    subject: String,
    purpose: Purpose,
    verified_at: u64,
}

impl OtpVerified {
    /// The subject the code was issued to.
    #[must_use]
    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// The purpose the code was issued for.
    #[must_use]
    pub fn purpose(&self) -> &Purpose {
        &self.purpose
    }

    /// When it was verified, in seconds since the Unix epoch.
    #[must_use]
    pub fn verified_at(&self) -> u64 {
        self.verified_at
    }
}

impl fmt::Debug for OtpVerified {
    // The subject is a user identifier: not for logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OtpVerified")
            .field("purpose", &self.purpose)
            .field("verified_at", &self.verified_at)
            .finish_non_exhaustive()
    }
}

/// A stored code's MAC. Equality is constant-time.
#[derive(Clone, Copy)]
struct CodeMac([u8; 32]);

impl PartialEq for CodeMac {
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl Eq for CodeMac {}

impl fmt::Debug for CodeMac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CodeMac(OMITTED)")
    }
}

impl Serialize for CodeMac {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex(&self.0))
    }
}

impl<'de> Deserialize<'de> for CodeMac {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        unhex::<32>(&s)
            .map(CodeMac)
            .ok_or_else(|| serde::de::Error::custom("code mac is not 64 hex digits"))
    }
}

/// A pending code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct PendingCode {
    purpose: String,
    mac: CodeMac,
    expires_at: u64,
    /// Evaluated wrong guesses at this code in its life. At `max_attempts`
    /// the code is used up, whatever succeeds or is unlocked in between.
    #[serde(default)]
    failures: u32,
    /// Of those, the ones still in the subject's counters (an unlock
    /// clears the counters, and so this): what a success on this code
    /// forgives.
    #[serde(default)]
    counted: u32,
}

/// The record of one subject: its failure state and its pending codes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct SubjectState {
    /// Failures since the last lock or unlock, less those a success
    /// forgave (the wrong guesses at the code that then succeeded).
    #[serde(default)]
    window_failures: u32,
    /// Failures since the last unlock, across lockouts, less those a
    /// success forgave. A success on another purpose forgives none of them.
    #[serde(default)]
    consecutive_failures: u32,
    /// End of the current (or a past) timed lock.
    #[serde(default)]
    locked_until: Option<u64>,
    /// Locked until an operator unlocks.
    #[serde(default)]
    locked_until_unlock: bool,
    #[serde(default)]
    codes: Vec<PendingCode>,
}

/// Why the state refuses a code or an issue before looking at any code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    Locked { until: u64 },
    LockedUntilUnlock,
}

/// The outcome of a presented code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Ok,
    Invalid { attempts_left: u32 },
    Refused(Refusal),
    Expired,
    NoCode,
}

impl SubjectState {
    fn refusal(&self, now: u64) -> Option<Refusal> {
        if self.locked_until_unlock {
            return Some(Refusal::LockedUntilUnlock);
        }
        match self.locked_until {
            Some(until) if now < until => Some(Refusal::Locked { until }),
            _ => None,
        }
    }

    /// Whether the record carries failure state that must outlive its
    /// codes.
    fn has_failures(&self) -> bool {
        self.window_failures > 0
            || self.consecutive_failures > 0
            || self.locked_until.is_some()
            || self.locked_until_unlock
    }

    /// How long the store keeps the record: failure state for the store's
    /// longest TTL (so the consecutive count survives slow attacks), codes
    /// until a day after they expire.
    fn ttl(&self, now: u64) -> Duration {
        if self.has_failures() {
            return MAX_TTL;
        }
        let end = self
            .codes
            .iter()
            .map(|c| c.expires_at.saturating_add(EXPIRED_NOTICE_SECS))
            .max()
            .unwrap_or(now);
        Duration::from_secs(end.saturating_sub(now).clamp(1, MAX_TTL.as_secs()))
    }
}

/// The issue rule: refused while locked; otherwise the code replaces any
/// pending one of the same purpose. The failure count is kept as it is.
fn decide_issue(
    state: &SubjectState,
    purpose: &str,
    mac: CodeMac,
    now: u64,
    policy: &OtpPolicy,
) -> Result<(SubjectState, u64), Refusal> {
    if let Some(refusal) = state.refusal(now) {
        return Err(refusal);
    }
    let expires_at = now.saturating_add(policy.code_ttl_secs);
    let mut next = state.clone();
    if next.locked_until.is_some_and(|until| until <= now) {
        next.locked_until = None;
    }
    next.codes.retain(|c| c.purpose != purpose);
    while next.codes.len() >= MAX_PENDING {
        let Some(first) = next
            .codes
            .iter()
            .enumerate()
            .min_by_key(|(_, c)| c.expires_at)
            .map(|(i, _)| i)
        else {
            break;
        };
        next.codes.remove(first);
    }
    next.codes.push(PendingCode {
        purpose: purpose.to_owned(),
        mac,
        expires_at,
        failures: 0,
        counted: 0,
    });
    Ok((next, expires_at))
}

/// The verify rule. `candidate` is the MAC of the presented code, or `None`
/// for input too long to be a code (a failure all the same). Returns the
/// record to write, if any, and the verdict.
fn decide_verify(
    state: &SubjectState,
    purpose: &str,
    candidate: Option<CodeMac>,
    now: u64,
    policy: &OtpPolicy,
) -> (Option<SubjectState>, Verdict) {
    if let Some(refusal) = state.refusal(now) {
        return (None, Verdict::Refused(refusal));
    }
    let Some(index) = state.codes.iter().position(|c| c.purpose == purpose) else {
        return (None, Verdict::NoCode);
    };
    let Some(pending) = state.codes.get(index) else {
        return (None, Verdict::NoCode);
    };
    if now >= pending.expires_at {
        return (None, Verdict::Expired);
    }
    let mut next = state.clone();
    // A timed lock that has ended is over; its window started afresh when
    // it was set.
    if next.locked_until.is_some_and(|until| until <= now) {
        next.locked_until = None;
    }
    if candidate.is_some_and(|c| c == pending.mac) {
        // A success forgives the wrong guesses at this code only: they were
        // the presenter's own typos. Guesses at other purposes' codes stay
        // counted, so one flow completed buys no guesses at another.
        let forgiven = pending.counted;
        next.codes.remove(index);
        next.window_failures = next.window_failures.saturating_sub(forgiven);
        next.consecutive_failures = next.consecutive_failures.saturating_sub(forgiven);
        return (Some(next), Verdict::Ok);
    }
    next.window_failures = next.window_failures.saturating_add(1);
    next.consecutive_failures = next.consecutive_failures.saturating_add(1);
    let code_failures = pending.failures.saturating_add(1);
    let locks = if next.consecutive_failures >= policy.max_consecutive_failures {
        next.locked_until_unlock = true;
        next.locked_until = None;
        true
    } else if next.window_failures >= policy.max_attempts {
        next.locked_until = Some(now.saturating_add(policy.lockout_secs));
        true
    } else {
        false
    };
    let attempts_left = if locks {
        // A lock discards every pending code: the next window starts with
        // a new code.
        next.window_failures = 0;
        next.codes.clear();
        0
    } else {
        if code_failures >= policy.max_attempts {
            // The code has faced its `max_attempts` guesses: used up.
            // Without a lock this happens only after an operator's unlock.
            next.codes.remove(index);
        } else if let Some(code) = next.codes.get_mut(index) {
            code.failures = code_failures;
            code.counted = code.counted.saturating_add(1);
        }
        policy
            .max_attempts
            .saturating_sub(next.window_failures)
            .min(
                policy
                    .max_consecutive_failures
                    .saturating_sub(next.consecutive_failures),
            )
            .min(policy.max_attempts.saturating_sub(code_failures))
    };
    (Some(next), Verdict::Invalid { attempts_left })
}

/// The unlock rule: the failure state is cleared. Pending codes stay, with
/// the wrong guesses each has faced in its life (so an unlock gives no code
/// more guesses), but none of those is counted any more, so none is left
/// for a later success to forgive.
fn decide_unlock(state: &SubjectState) -> SubjectState {
    SubjectState {
        codes: state
            .codes
            .iter()
            .map(|c| PendingCode {
                counted: 0,
                ..c.clone()
            })
            .collect(),
        ..SubjectState::default()
    }
}

/// A uniform code of `digits` digits: rejection sampling over `u32`, so
/// that every code is equally likely (no modulo bias).
fn generate_code<R: TryCryptoRng + ?Sized>(rng: &mut R, digits: u32) -> Result<OtpCode, Error> {
    let modulus = 10u32
        .checked_pow(digits)
        .ok_or_else(|| Error::Config("otp.digits must be 6 to 9".into()))?;
    let width = usize::try_from(digits).map_err(|_| Error::Config("otp.digits".into()))?;
    // The largest multiple of `modulus` not above 2^32: draws at or above it
    // would make the low codes more likely, and are drawn again.
    let span = 1u64 << 32;
    let zone = span.saturating_sub(span.checked_rem(u64::from(modulus)).unwrap_or(0));
    for _ in 0..MAX_DRAWS {
        let draw = rng.try_next_u32().map_err(|_| Error::Rng)?;
        if u64::from(draw) < zone {
            let value = draw.checked_rem(modulus).unwrap_or(0);
            return Ok(OtpCode(format!("{value:0width$}")));
        }
    }
    Err(Error::Rng)
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(
        String::with_capacity(bytes.len().saturating_mul(2)),
        |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        },
    )
}

fn unhex<const N: usize>(s: &str) -> Option<[u8; N]> {
    if s.len() != N.checked_mul(2)? {
        return None;
    }
    let mut out = [0u8; N];
    for (byte, pair) in out.iter_mut().zip(s.as_bytes().chunks_exact(2)) {
        let digit = |b: u8| match b {
            b'0'..=b'9' => b.checked_sub(b'0'),
            b'a'..=b'f' => b.checked_sub(b'a').and_then(|v| v.checked_add(10)),
            _ => None,
        };
        let (hi, lo) = (digit(*pair.first()?)?, digit(*pair.get(1)?)?);
        *byte = hi.checked_mul(16)?.checked_add(lo)?;
    }
    Some(out)
}

/// A length prefix for the MAC framing. Every framed field is bounded
/// (at most 1,024 bytes) before it gets here.
fn len_prefix(bytes: &[u8]) -> [u8; 8] {
    u64::try_from(bytes.len()).unwrap_or(u64::MAX).to_be_bytes()
}

fn check_subject(subject: &str) -> Result<(), Error> {
    if subject.is_empty() || subject.len() > MAX_SUBJECT_LEN {
        return Err(Error::Config("subject must be 1 to 1024 bytes".into()));
    }
    Ok(())
}

fn encode(state: &SubjectState) -> Result<Vec<u8>, Error> {
    serde_json::to_vec(state).map_err(|_| StoreError::Corrupt("cannot encode otp record").into())
}

fn decode(bytes: &[u8]) -> Result<SubjectState, Error> {
    serde_json::from_slice(bytes)
        .map_err(|_| StoreError::Corrupt("otp record does not decode").into())
}

/// The one-time-code service. Reached through
/// [`Keyward::otp`](crate::Keyward::otp). Cheap to clone.
#[derive(Clone)]
pub struct Otp {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn Store>,
    mac_key: SecretBytes,
    policy: OtpPolicy,
    clock: Arc<dyn Clock>,
    throttles: Arc<Throttles>,
}

impl fmt::Debug for Otp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Otp")
            .field("store", &self.inner.store)
            .field("policy", &self.inner.policy)
            .finish_non_exhaustive()
    }
}

impl Otp {
    pub(crate) fn new(
        store: Arc<dyn Store>,
        mac_key: &SecretBytes,
        policy: OtpPolicy,
        clock: Arc<dyn Clock>,
        throttles: Arc<Throttles>,
    ) -> Result<Self, Error> {
        policy.validate()?;
        let mac_key = SecretBytes::new(mac_key.unprotected_as_bytes().to_vec());
        Ok(Self {
            inner: Arc::new(Inner {
                store,
                mac_key,
                policy,
                clock,
                throttles,
            }),
        })
    }

    /// The policy in force.
    #[must_use]
    pub fn policy(&self) -> &OtpPolicy {
        &self.inner.policy
    }

    /// Issues a code for `subject` and `purpose`, from the OS CSPRNG. It
    /// replaces any pending code of that subject and purpose, and leaves
    /// the failure count as it is. Send [`IssuedCode::code`] to the user.
    ///
    /// # Errors
    /// [`Error::Throttled`] when a code was sent to the subject too
    /// recently (per process: [`crate::throttle`]);
    /// [`Error::Otp`] with [`OtpError::Locked`] or
    /// [`OtpError::LockedUntilUnlock`] while the subject is locked;
    /// [`Error::Store`] when the store fails (no code is issued);
    /// [`Error::Busy`] after `max_retries` lost compare-and-swaps;
    /// [`Error::Config`] for an empty subject or one over 1,024 bytes;
    /// [`Error::Rng`].
    pub async fn issue(&self, subject: &str, purpose: Purpose) -> Result<IssuedCode, Error> {
        self.issue_with_rng(subject, purpose, &mut rand::rngs::SysRng)
            .await
    }

    /// [`issue`](Self::issue) with the code drawn from `rng`, for tests.
    ///
    /// # Errors
    /// As [`issue`](Self::issue); [`Error::Rng`] when `rng` fails.
    pub async fn issue_with_rng<R: TryCryptoRng + ?Sized>(
        &self,
        subject: &str,
        purpose: Purpose,
        rng: &mut R,
    ) -> Result<IssuedCode, Error> {
        check_subject(subject)?;
        let tag = self.subject_tag(subject);
        self.inner.throttles.code_send().check(&tag)?;
        let code = generate_code(rng, self.inner.policy.digits)?;
        let mac = self.code_mac(subject, &purpose, code.unprotected_as_str().as_bytes());
        let key = record_key(&tag);
        let subject_tag = hex(&tag);
        for _ in 0..self.inner.policy.max_retries {
            let record = self.inner.store.load(&key).await?;
            let (state, version) = match &record {
                Some(r) => (decode(&r.value)?, Some(r.version)),
                None => (SubjectState::default(), None),
            };
            let now = self.inner.clock.now();
            let (next, expires_at) = match decide_issue(
                &state,
                purpose.name(),
                mac,
                now,
                &self.inner.policy,
            ) {
                Ok(issued) => issued,
                Err(refusal) => {
                    tracing::info!(subject_tag = %subject_tag, purpose = %purpose, "one-time code refused: subject locked");
                    return Err(refusal_error(refusal, now));
                }
            };
            let value = encode(&next)?;
            if let Swap::Swapped { .. } = self
                .inner
                .store
                .swap(&key, version, &value, next.ttl(now))
                .await?
            {
                tracing::info!(subject_tag = %subject_tag, purpose = %purpose, expires_at, "one-time code issued");
                return Ok(IssuedCode {
                    code,
                    expires_at,
                    purpose,
                });
            }
        }
        Err(Error::Busy)
    }

    /// Checks `code` for `subject` and `purpose`. A correct code is used
    /// up, forgives the wrong guesses made at that code (and no others),
    /// and yields the [`OtpVerified`] proof. A wrong one counts against the
    /// subject's lock and against the code, which is used up after
    /// `max_attempts` wrong guesses in its life.
    /// The code is compared exactly as given: strip spaces or dashes the
    /// user may have typed before calling, if your form allows them.
    ///
    /// # Errors
    /// [`Error::Otp`] with [`OtpError::Invalid`] (a failure, counted),
    /// [`OtpError::Locked`] or [`OtpError::LockedUntilUnlock`] (not
    /// evaluated), [`OtpError::Expired`] or [`OtpError::NoCode`] (not
    /// counted); [`Error::Store`] when the store fails (fail closed: the
    /// code is not accepted); [`Error::Busy`] after `max_retries` lost
    /// compare-and-swaps; [`Error::Config`] for an empty subject or one
    /// over 1,024 bytes.
    pub async fn verify(
        &self,
        subject: &str,
        purpose: Purpose,
        code: &str,
    ) -> Result<OtpVerified, Error> {
        check_subject(subject)?;
        let tag = self.subject_tag(subject);
        let candidate = (code.len() <= MAX_CODE_INPUT)
            .then(|| self.code_mac(subject, &purpose, code.as_bytes()));
        let key = record_key(&tag);
        let subject_tag = hex(&tag);
        for _ in 0..self.inner.policy.max_retries {
            let Some(record) = self.inner.store.load(&key).await? else {
                return Err(OtpError::NoCode.into());
            };
            let state = decode(&record.value)?;
            let now = self.inner.clock.now();
            let (next, verdict) =
                decide_verify(&state, purpose.name(), candidate, now, &self.inner.policy);
            if let Some(next) = &next {
                let value = encode(next)?;
                if self
                    .inner
                    .store
                    .swap(&key, Some(record.version), &value, next.ttl(now))
                    .await?
                    == Swap::Conflict
                {
                    continue;
                }
            }
            return match verdict {
                Verdict::Ok => {
                    tracing::info!(subject_tag = %subject_tag, purpose = %purpose, "one-time code verified");
                    Ok(OtpVerified {
                        subject: subject.to_owned(),
                        purpose,
                        verified_at: now,
                    })
                }
                Verdict::Invalid { attempts_left } => {
                    if next.as_ref().is_some_and(|n| n.locked_until_unlock) {
                        tracing::warn!(subject_tag = %subject_tag, purpose = %purpose, "wrong one-time code; subject locked until an operator unlocks");
                    } else if attempts_left == 0 {
                        tracing::warn!(subject_tag = %subject_tag, purpose = %purpose, lockout_secs = self.inner.policy.lockout_secs, "wrong one-time code; subject locked");
                    } else {
                        tracing::info!(subject_tag = %subject_tag, purpose = %purpose, attempts_left, "wrong one-time code");
                    }
                    Err(OtpError::Invalid { attempts_left }.into())
                }
                Verdict::Refused(refusal) => {
                    tracing::info!(subject_tag = %subject_tag, purpose = %purpose, "one-time code refused: subject locked");
                    Err(refusal_error(refusal, now))
                }
                Verdict::Expired => Err(OtpError::Expired.into()),
                Verdict::NoCode => Err(OtpError::NoCode.into()),
            };
        }
        Err(Error::Busy)
    }

    /// The operator's unlock: clears the subject's failure count and any
    /// lock, including the one after too many consecutive failures.
    /// Pending codes stay as they are, with the wrong guesses each has
    /// faced: an unlock gives no code more than `max_attempts` guesses.
    /// Unlocking a subject that is not locked succeeds and changes nothing.
    ///
    /// # Errors
    /// [`Error::Store`]; [`Error::Busy`] under extreme contention;
    /// [`Error::Config`] for an empty subject or one over 1,024 bytes.
    pub async fn unlock(&self, subject: &str) -> Result<(), Error> {
        check_subject(subject)?;
        let tag = self.subject_tag(subject);
        let key = record_key(&tag);
        for _ in 0..self.inner.policy.max_retries {
            let Some(record) = self.inner.store.load(&key).await? else {
                return Ok(());
            };
            let state = decode(&record.value)?;
            let next = decide_unlock(&state);
            if next == state {
                return Ok(());
            }
            let now = self.inner.clock.now();
            let value = encode(&next)?;
            if let Swap::Swapped { .. } = self
                .inner
                .store
                .swap(&key, Some(record.version), &value, next.ttl(now))
                .await?
            {
                tracing::warn!(subject_tag = %hex(&tag), "one-time codes unlocked by an operator");
                return Ok(());
            }
        }
        Err(Error::Busy)
    }

    fn subject_tag(&self, subject: &str) -> [u8; 16] {
        let mac = crate::mac::hmac_sha256(
            self.inner.mac_key.unprotected_as_bytes(),
            &[SUBJECT_DOMAIN, subject.as_bytes()],
        );
        let mut tag = [0u8; 16];
        tag.copy_from_slice(mac.get(..16).unwrap_or(&[0u8; 16]));
        tag
    }

    fn code_mac(&self, subject: &str, purpose: &Purpose, code: &[u8]) -> CodeMac {
        code_mac(
            self.inner.mac_key.unprotected_as_bytes(),
            subject,
            purpose.name(),
            code,
        )
    }
}

/// `HMAC-SHA256(key, domain ‖ len ‖ subject ‖ len ‖ purpose ‖ len ‖ code)`:
/// the length prefixes make the framing unambiguous.
fn code_mac(key: &[u8], subject: &str, purpose: &str, code: &[u8]) -> CodeMac {
    let (subject, purpose) = (subject.as_bytes(), purpose.as_bytes());
    CodeMac(crate::mac::hmac_sha256(
        key,
        &[
            CODE_DOMAIN,
            &len_prefix(subject),
            subject,
            &len_prefix(purpose),
            purpose,
            &len_prefix(code),
            code,
        ],
    ))
}

fn record_key(tag: &[u8; 16]) -> String {
    format!("kw:otp:{}", hex(tag))
}

fn refusal_error(refusal: Refusal, now: u64) -> Error {
    match refusal {
        Refusal::Locked { until } => OtpError::Locked {
            retry_after: Duration::from_secs(until.saturating_sub(now)),
        }
        .into(),
        Refusal::LockedUntilUnlock => OtpError::LockedUntilUnlock.into(),
    }
}

#[cfg(test)]
#[allow(
    clippy::arithmetic_side_effects,
    clippy::unwrap_used,
    clippy::panic,
    reason = "tests: small bounded arithmetic; a failed check panics"
)]
mod tests;
