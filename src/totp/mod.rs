//! A second factor: TOTP (RFC 6238 over RFC 4226) from an authenticator
//! app, with a replay guard, sealed secrets and recovery codes.
//!
//! - **Enroll**: a 160-bit secret from the OS CSPRNG, shown once as base32
//!   and as an `otpauth://totp/…` URI. The factor stays unconfirmed, and
//!   unusable, until a first valid code confirms it; an unconfirmed factor
//!   expires after 10 minutes.
//! - **Verify**: the current step ±1 (configurable, at most ±2). A code is
//!   accepted only if its step is later than the last accepted one, and the
//!   new step is stored in the same commit: no code works twice, on any
//!   replica. A replayed code is refused as [`TotpError::Replayed`] and not
//!   counted.
//! - **One lockout**: wrong TOTP codes and wrong recovery codes count
//!   against the subject's one-time-code lockout (3 failures, 60 minutes
//!   by default), in the same commit as the check.
//! - **Sealed**: the store holds the secret encrypted with AES-256-GCM
//!   under a key the ring derives, with the subject and factor id as
//!   associated data.
//! - **Recovery codes**: 10 codes of 80 bits, `xxxx-xxxx-xxxx-xxxx`, shown
//!   once and stored as keyed digests; each works once.
//!
//! ```
//! # use keyward::{JwtAlg, KeyRing, Keyward, MemoryStore};
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), keyward::Error> {
//! let kw = Keyward::builder()
//!     .store(MemoryStore::new())
//!     .keys(KeyRing::generate(JwtAlg::EdDSA)?)
//!     .build_partial()?;
//! let totp = kw.totp()?;
//! let enrollment = totp.enroll("user-42", "Example", "ada@example.com").await?;
//! // Show enrollment.uri() as a QR code; the app then shows codes.
//! # let code = totp.dangerous_code_now(&enrollment)?;
//! let recovery = totp.confirm("user-42", &code).await?;
//! assert_eq!(recovery.codes().len(), 10);
//! // The same code again is a replay.
//! assert!(totp.verify("user-42", &code).await.is_err());
//! # Ok(()) }
//! ```

mod code;
mod seal;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::audit::{self, AuditTag, Salt, Shown};
use crate::clock::Clock;
use crate::error::Error;
use crate::hex::encode as hex;
use crate::keyring::KeyRing;
use crate::otp::{Otp, SubjectState, decide_failure, refusal_error};
use crate::secret::{OpaqueToken, SecretBytes};
use crate::store::{Decision, MAX_TTL, Store, transact};

pub use crate::error::TotpError;
pub use code::TotpAlg;

use code::{base32_decode, base32_encode, codes_equal, format_code, hotp, otpauth_uri, step};
use seal::{Sealed, Sealer};

/// Secret length: 160 bits, RFC 4226 §4's recommendation.
const SECRET_LEN: usize = 20;
/// Recovery codes per set.
pub const RECOVERY_CODES: usize = 10;
/// Bytes of one recovery code: 80 bits, 16 base32 characters.
const RECOVERY_LEN: usize = 10;
/// The label of the recovery-code digest key (see [`KeyRing::derive`]).
const RECOVERY_KEY_LABEL: &str = "totp recovery";
/// What a recovery-code digest MACs first.
const RECOVERY_DOMAIN: &[u8] = b"keyward totp recovery v1\0";
/// Longest issuer or account label.
const MAX_LABEL_LEN: usize = 256;
/// Longest input taken for a code: anything longer is a wrong code.
const MAX_CODE_INPUT: usize = 64;

/// The TOTP parameters. Authenticator apps support the defaults: SHA-1,
/// 6 digits, 30-second steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct TotpPolicy {
    /// The HMAC. Default SHA-1.
    pub alg: TotpAlg,
    /// Digits per code, 6 to 8. Default 6.
    pub digits: u8,
    /// Seconds per step, 15 to 300. Default 30.
    pub period_secs: u64,
    /// Steps accepted either side of the current one, at most 2. Default 1.
    pub skew_steps: u8,
    /// How long an enrollment waits for its confirming code. Default 600.
    pub enroll_ttl_secs: u64,
}

impl Default for TotpPolicy {
    fn default() -> Self {
        Self {
            alg: TotpAlg::Sha1,
            digits: 6,
            period_secs: 30,
            skew_steps: 1,
            enroll_ttl_secs: 600,
        }
    }
}

impl TotpPolicy {
    /// Checks the numbers.
    ///
    /// # Errors
    /// [`Error::Config`] naming the field out of range.
    pub fn validate(&self) -> Result<(), Error> {
        if !(6..=8).contains(&self.digits) {
            return Err(Error::Config("totp digits must be 6 to 8".into()));
        }
        if !(15..=300).contains(&self.period_secs) {
            return Err(Error::Config("totp period_secs must be 15 to 300".into()));
        }
        if self.skew_steps > 2 {
            return Err(Error::Config("totp skew_steps must be at most 2".into()));
        }
        if !(60..=86_400).contains(&self.enroll_ttl_secs) {
            return Err(Error::Config(
                "totp enroll_ttl_secs must be 60 to 86,400".into(),
            ));
        }
        Ok(())
    }
}

/// A new, unconfirmed factor: show [`uri`](Self::uri) as a QR code, or
/// [`secret`](Self::secret) for typing in, once.
#[derive(Debug)]
pub struct Enrollment {
    secret: OpaqueToken,
    uri: OpaqueToken,
    factor: String,
}

impl Enrollment {
    /// The secret in base32, for typing into an app. Shown once.
    #[must_use]
    pub fn secret(&self) -> &OpaqueToken {
        &self.secret
    }

    /// The `otpauth://totp/…` URI, for a QR code. It holds the secret.
    #[must_use]
    pub fn uri(&self) -> &OpaqueToken {
        &self.uri
    }

    /// The factor's id.
    #[must_use]
    pub fn factor(&self) -> &str {
        &self.factor
    }
}

/// Proof that a subject presented a valid second-factor code. A session
/// start takes it by value: one proof, one session.
#[derive(Debug, PartialEq, Eq)]
#[must_use]
pub struct TotpVerified {
    subject: String,
    step: u64,
}

impl TotpVerified {
    /// The subject that presented it.
    #[must_use]
    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// The matched time step (`floor(unix time / period)`).
    #[must_use]
    pub fn step(&self) -> u64 {
        self.step
    }
}

/// Proof that a subject used one of its recovery codes: a second factor
/// for [`Sessions::start_with_second_factor`](crate::Sessions::start_with_second_factor)
/// and [`Sessions::start_after_challenge`](crate::Sessions::start_after_challenge),
/// as a TOTP code is. The code is spent; a session start takes the proof
/// by value.
#[derive(Debug, PartialEq, Eq)]
#[must_use]
pub struct Recovered {
    subject: String,
    left: usize,
}

impl Recovered {
    /// The subject that presented it.
    #[must_use]
    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// How many unused recovery codes the subject has left. Prompt the
    /// user to [regenerate](Totp::regenerate_recovery) them when few are.
    #[must_use]
    pub fn left(&self) -> usize {
        self.left
    }
}

/// A second-factor proof a session can start with: [`TotpVerified`] or
/// [`Recovered`]. Sealed: only keyward's proofs implement it.
pub trait SecondFactor: sealed::Sealed {
    /// The subject that presented it.
    fn subject(&self) -> &str;
}

pub(crate) mod sealed {
    /// What a session records of a second-factor proof.
    pub trait Sealed {
        /// The RFC 8176 `amr` methods of the proof itself; a session
        /// started with it adds its first factor's and `mfa`.
        fn methods(&self) -> &'static [&'static str];
    }
}

impl SecondFactor for TotpVerified {
    fn subject(&self) -> &str {
        &self.subject
    }
}

impl sealed::Sealed for TotpVerified {
    fn methods(&self) -> &'static [&'static str] {
        &[crate::jwt::amr::OTP]
    }
}

impl SecondFactor for Recovered {
    fn subject(&self) -> &str {
        &self.subject
    }
}

impl sealed::Sealed for Recovered {
    // A recovery code is a look-up secret (NIST SP 800-63B §5.1.2), not a
    // one-time password: no method of its own in RFC 8176, so `mfa` only.
    fn methods(&self) -> &'static [&'static str] {
        &[]
    }
}

/// A set of recovery codes, shown once.
pub struct RecoveryCodes(Vec<OpaqueToken>);

impl RecoveryCodes {
    /// The codes, `xxxx-xxxx-xxxx-xxxx`.
    #[must_use]
    pub fn codes(&self) -> &[OpaqueToken] {
        &self.0
    }
}

impl fmt::Debug for RecoveryCodes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RecoveryCodes({} codes, OMITTED)", self.0.len())
    }
}

/// A subject's factor, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Factor {
    id: String,
    alg: TotpAlg,
    digits: u8,
    period: u64,
    secret: Sealed,
    created_at: u64,
    /// When a first code confirmed it; until then it is unusable.
    #[serde(default)]
    confirmed_at: Option<u64>,
    /// The last accepted step: no step at or before it is accepted again.
    #[serde(default)]
    last_step: Option<u64>,
    /// Keyed digests of the unused recovery codes, in hex.
    #[serde(default)]
    recovery: Vec<String>,
    /// Keyed digests of the used ones, so that a used code is told apart.
    #[serde(default)]
    used: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    audit_tag: Option<AuditTag>,
}

crate::store::json_stored!(Factor);

/// The second-factor service. Reached through
/// [`Keyward::totp`](crate::Keyward::totp). Cheap to clone.
#[derive(Clone)]
pub struct Totp {
    inner: Arc<Inner>,
}

struct Inner {
    otp: Otp,
    sealer: Sealer,
    recovery_key: SecretBytes,
    policy: TotpPolicy,
}

impl fmt::Debug for Totp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Totp")
            .field("policy", &self.inner.policy)
            .finish_non_exhaustive()
    }
}

/// What a code check found.
enum Check {
    /// A valid code at this step, later than the last accepted one.
    Step(u64),
    /// A valid code at or before the last accepted step.
    Replayed,
    Wrong,
}

impl Totp {
    pub(crate) fn new(otp: Otp, keys: &KeyRing, policy: TotpPolicy) -> Result<Self, Error> {
        policy.validate()?;
        Ok(Self {
            inner: Arc::new(Inner {
                otp,
                sealer: Sealer::new(keys)?,
                recovery_key: keys.derive(RECOVERY_KEY_LABEL),
                policy,
            }),
        })
    }

    /// The policy in force.
    #[must_use]
    pub fn policy(&self) -> &TotpPolicy {
        &self.inner.policy
    }

    fn store(&self) -> &dyn Store {
        &*self.inner.otp.inner.store
    }

    fn clock(&self) -> &dyn Clock {
        &*self.inner.otp.inner.clock
    }

    fn max_retries(&self) -> u32 {
        self.inner.otp.inner.policy.max_retries
    }

    fn factor_key(&self, subject: &str) -> String {
        // The code record's key names the subject the same keyed way.
        let state_key = self.inner.otp.state_key(subject);
        let tag = state_key.rsplit(':').next().unwrap_or_default();
        format!("kw:totp:{tag}")
    }

    /// Enrolls a new factor for `subject`: a 160-bit secret, unconfirmed
    /// until [`confirm`](Self::confirm). `issuer` (your service) and
    /// `account` (the user's name for it) label the entry in the app. An
    /// unconfirmed enrollment replaces an earlier unconfirmed one.
    ///
    /// # Errors
    /// [`TotpError::AlreadyEnrolled`] when a confirmed factor exists;
    /// [`TotpError::BadLabel`]; [`Error::Erasing`]; [`Error::Store`],
    /// [`Error::Busy`], [`Error::Rng`]; [`Error::InvalidInput`] for an
    /// empty subject or one over 1,024 bytes.
    pub async fn enroll(
        &self,
        subject: &str,
        issuer: &str,
        account: &str,
    ) -> Result<Enrollment, Error> {
        crate::otp::check_subject(subject)?;
        check_label(issuer, "issuer")?;
        check_label(account, "account")?;
        let mut secret = zeroize::Zeroizing::new([0u8; SECRET_LEN]);
        crate::random::fill_random(secret.as_mut_slice())?;
        let mut id = [0u8; 8];
        crate::random::fill_random(&mut id)?;
        let id = hex(&id);
        let sealed = self.inner.sealer.seal(secret.as_slice(), subject, &id)?;
        let policy = self.inner.policy;
        let (fkey, skey) = (self.factor_key(subject), self.inner.otp.state_key(subject));
        let salt_key = self.inner.otp.inner.audit.salt_key(subject);
        let audit_tag = transact(
            self.store(),
            self.clock(),
            &[&fkey, &skey, &salt_key],
            self.max_retries(),
            |(factor, state, salt): (Option<Factor>, Option<SubjectState>, Option<Salt>), now| {
                if state.as_ref().is_some_and(|s| s.erasing) {
                    return Err(Error::Erasing);
                }
                if factor.as_ref().is_some_and(|f| f.confirmed_at.is_some()) {
                    return Err(TotpError::AlreadyEnrolled.into());
                }
                let (salt, salt_ttl) = Salt::for_issuance(salt, now)?;
                let audit_tag = salt.tag(subject)?;
                let factor = Factor {
                    id: id.clone(),
                    alg: policy.alg,
                    digits: policy.digits,
                    period: policy.period_secs,
                    secret: sealed.clone(),
                    created_at: now,
                    confirmed_at: None,
                    last_step: None,
                    recovery: Vec::new(),
                    used: Vec::new(),
                    audit_tag: Some(audit_tag),
                };
                let d = Decision::only(audit_tag)
                    .write(0, &factor, Duration::from_secs(policy.enroll_ttl_secs))?
                    .check(1);
                Ok(match salt_ttl {
                    Some(ttl) => d.write(2, &salt, ttl)?,
                    None => d.check(2),
                })
            },
        )
        .await?;
        tracing::info!(target: audit::TARGET, event = "totp.enrolled", tag = %audit_tag, factor = %id, "second factor enrolled, unconfirmed");
        // Both strings move into tokens, which are wiped when dropped.
        let b32 = OpaqueToken::new(base32_encode(secret.as_slice()));
        let uri = otpauth_uri(
            issuer,
            account,
            b32.unprotected_as_str(),
            policy.alg,
            policy.digits,
            policy.period_secs,
        );
        Ok(Enrollment {
            secret: b32,
            uri: OpaqueToken::new(uri),
            factor: id,
        })
    }

    /// Confirms the subject's enrollment with a first valid code, and
    /// returns its recovery codes (shown once). The confirming code counts
    /// as used: it will not verify again.
    ///
    /// # Errors
    /// [`TotpError::Invalid`] (counted), [`TotpError::NotEnrolled`],
    /// [`TotpError::AlreadyEnrolled`], [`TotpError::Expired`];
    /// [`OtpError::Locked`](crate::OtpError::Locked) or
    /// [`OtpError::LockedUntilUnlock`](crate::OtpError::LockedUntilUnlock);
    /// [`Error::Erasing`]; [`Error::Store`], [`Error::Busy`];
    /// [`Error::InvalidInput`] for an empty subject or one over 1,024
    /// bytes.
    pub async fn confirm(&self, subject: &str, code: &str) -> Result<RecoveryCodes, Error> {
        let (codes, digests) = self.new_recovery(subject)?;
        let step = self
            .check_code(subject, code, Mode::Confirm(&digests))
            .await?;
        let _ = step;
        Ok(codes)
    }

    /// Checks a code of the subject's confirmed factor: the proof, with
    /// the matched step, which no later call accepts again.
    ///
    /// # Errors
    /// [`TotpError::Invalid`] (counted), [`TotpError::Replayed`] (not
    /// counted), [`TotpError::NotEnrolled`];
    /// [`OtpError::Locked`](crate::OtpError::Locked) or
    /// [`OtpError::LockedUntilUnlock`](crate::OtpError::LockedUntilUnlock); [`Error::Erasing`];
    /// [`Error::Store`], [`Error::Busy`]; [`Error::InvalidInput`] for an
    /// empty subject or one over 1,024 bytes.
    pub async fn verify(&self, subject: &str, code: &str) -> Result<TotpVerified, Error> {
        let step = self.check_code(subject, code, Mode::Verify).await?;
        Ok(TotpVerified {
            subject: subject.to_owned(),
            step,
        })
    }

    /// One code check, in one transaction over the factor and the
    /// subject's lockout record.
    async fn check_code(&self, subject: &str, code: &str, mode: Mode<'_>) -> Result<u64, Error> {
        crate::otp::check_subject(subject)?;
        let (fkey, skey) = (self.factor_key(subject), self.inner.otp.state_key(subject));
        let otp_policy = &self.inner.otp.inner.policy;
        let skew = u64::from(self.inner.policy.skew_steps);
        let code = (code.len() <= MAX_CODE_INPUT).then_some(code);
        let (outcome, tag) = transact(
            self.store(),
            self.clock(),
            &[&fkey, &skey],
            self.max_retries(),
            |(factor, state): (Option<Factor>, Option<SubjectState>), now| {
                let state = state.unwrap_or_default();
                if let Some(refusal) = state.refusal(now) {
                    return Ok(Decision::only((Err(refusal_error(refusal, now)), None)));
                }
                let Some(factor) = factor else {
                    return Err(TotpError::NotEnrolled.into());
                };
                let tag = factor.audit_tag;
                match (&mode, factor.confirmed_at) {
                    (Mode::Verify, None) => return Err(TotpError::NotEnrolled.into()),
                    (Mode::Confirm(_), Some(_)) => return Err(TotpError::AlreadyEnrolled.into()),
                    (Mode::Confirm(_), None)
                        if now
                            >= factor
                                .created_at
                                .saturating_add(self.inner.policy.enroll_ttl_secs) =>
                    {
                        return Err(TotpError::Expired.into());
                    }
                    _ => {}
                }
                let secret = self
                    .inner
                    .sealer
                    .open(&factor.secret, subject, &factor.id)?;
                match check(&factor, &secret, code, now, skew) {
                    Check::Step(step) => {
                        let mut next = factor.clone();
                        next.last_step = Some(step);
                        if let Mode::Confirm(digests) = &mode {
                            next.confirmed_at = Some(now);
                            next.recovery = digests.to_vec();
                        }
                        Ok(Decision::only((Ok(step), tag))
                            .write(0, &next, MAX_TTL)?
                            .check(1))
                    }
                    Check::Replayed => Ok(Decision::only((Err(TotpError::Replayed.into()), tag))),
                    Check::Wrong => {
                        let (next, attempts_left) = decide_failure(&state, now, otp_policy);
                        let d =
                            Decision::only((Err(TotpError::Invalid { attempts_left }.into()), tag))
                                .check(0)
                                .write(1, &next, next.ttl(now))?;
                        Ok(d)
                    }
                }
            },
        )
        .await?;
        let shown = Shown(tag);
        let event = match mode {
            Mode::Verify => "totp.verified",
            Mode::Confirm(_) => "totp.confirmed",
        };
        match &outcome {
            Ok(step) => {
                tracing::info!(target: audit::TARGET, event, tag = %shown, step, "second-factor code accepted");
            }
            Err(Error::Totp(TotpError::Invalid { attempts_left: 0 })) => {
                tracing::warn!(target: audit::TARGET, event = "totp.locked", tag = %shown, "wrong second-factor code; subject locked");
            }
            Err(Error::Totp(TotpError::Invalid { attempts_left })) => {
                tracing::info!(target: audit::TARGET, event = "totp.failed", tag = %shown, attempts_left, "wrong second-factor code");
            }
            Err(Error::Totp(TotpError::Replayed)) => {
                tracing::warn!(target: audit::TARGET, event = "totp.replayed", tag = %shown, "second-factor code replayed");
            }
            Err(_) => {}
        }
        outcome
    }

    /// Replaces the subject's recovery codes with a new set, shown once;
    /// the old set stops working.
    ///
    /// # Errors
    /// [`TotpError::NotEnrolled`]; [`Error::Store`], [`Error::Busy`];
    /// [`Error::InvalidInput`] for an empty subject or one over 1,024
    /// bytes.
    pub async fn regenerate_recovery(&self, subject: &str) -> Result<RecoveryCodes, Error> {
        crate::otp::check_subject(subject)?;
        let (codes, digests) = self.new_recovery(subject)?;
        let fkey = self.factor_key(subject);
        let tag = transact(
            self.store(),
            self.clock(),
            &[&fkey],
            self.max_retries(),
            |(factor,): (Option<Factor>,), _now| {
                let Some(factor) = factor.filter(|f| f.confirmed_at.is_some()) else {
                    return Err(TotpError::NotEnrolled.into());
                };
                let next = Factor {
                    recovery: digests.clone(),
                    used: Vec::new(),
                    ..factor
                };
                Ok(Decision::only(next.audit_tag).write(0, &next, MAX_TTL)?)
            },
        )
        .await?;
        tracing::info!(target: audit::TARGET, event = "totp.recovery_regenerated", tag = %Shown(tag), "recovery codes replaced");
        Ok(codes)
    }

    /// Uses one recovery code of the subject's: it works once. The proof
    /// says how many are left, and serves as a second factor for a
    /// session.
    ///
    /// # Errors
    /// [`TotpError::Invalid`] (counted), [`TotpError::Used`] (not
    /// counted), [`TotpError::NotEnrolled`];
    /// [`OtpError::Locked`](crate::OtpError::Locked) or
    /// [`OtpError::LockedUntilUnlock`](crate::OtpError::LockedUntilUnlock); [`Error::Erasing`];
    /// [`Error::Store`], [`Error::Busy`]; [`Error::InvalidInput`] for an
    /// empty subject or one over 1,024 bytes.
    pub async fn recover(&self, subject: &str, code: &str) -> Result<Recovered, Error> {
        crate::otp::check_subject(subject)?;
        let digest = normalize_recovery(code).map(|c| self.recovery_digest(subject, &c));
        let (fkey, skey) = (self.factor_key(subject), self.inner.otp.state_key(subject));
        let otp_policy = &self.inner.otp.inner.policy;
        let (outcome, tag) = transact(
            self.store(),
            self.clock(),
            &[&fkey, &skey],
            self.max_retries(),
            |(factor, state): (Option<Factor>, Option<SubjectState>), now| {
                let state = state.unwrap_or_default();
                if let Some(refusal) = state.refusal(now) {
                    return Ok(Decision::only((Err(refusal_error(refusal, now)), None)));
                }
                let Some(factor) = factor.filter(|f| f.confirmed_at.is_some()) else {
                    return Err(TotpError::NotEnrolled.into());
                };
                let tag = factor.audit_tag;
                let found = digest.as_ref().and_then(|d| position(&factor.recovery, d));
                if let (Some(at), Some(d)) = (found, &digest) {
                    let mut next = factor.clone();
                    next.recovery.remove(at);
                    next.used.push(d.clone());
                    let left = next.recovery.len();
                    return Ok(Decision::only((Ok(left), tag))
                        .write(0, &next, MAX_TTL)?
                        .check(1));
                }
                if digest
                    .as_ref()
                    .and_then(|d| position(&factor.used, d))
                    .is_some()
                {
                    return Ok(Decision::only((Err(TotpError::Used.into()), tag)));
                }
                let (next, attempts_left) = decide_failure(&state, now, otp_policy);
                Ok(
                    Decision::only((Err(TotpError::Invalid { attempts_left }.into()), tag))
                        .check(0)
                        .write(1, &next, next.ttl(now))?,
                )
            },
        )
        .await?;
        let shown = Shown(tag);
        match &outcome {
            Ok(left) => {
                tracing::warn!(target: audit::TARGET, event = "totp.recovered", tag = %shown, remaining = left, "recovery code used");
            }
            Err(Error::Totp(TotpError::Invalid { attempts_left })) => {
                tracing::info!(target: audit::TARGET, event = "totp.recovery_failed", tag = %shown, attempts_left, "wrong recovery code");
            }
            Err(_) => {}
        }
        outcome.map(|left| Recovered {
            subject: subject.to_owned(),
            left,
        })
    }

    /// Whether the subject has a confirmed factor: whether a login must
    /// ask for it (see [`Sessions::challenge`](crate::Sessions::challenge)).
    /// An enrollment not yet confirmed does not count.
    ///
    /// # Errors
    /// [`Error::Store`]; [`Error::InvalidInput`] for an empty subject or
    /// one over 1,024 bytes.
    pub async fn is_enrolled(&self, subject: &str) -> Result<bool, Error> {
        Ok(self.recovery_left(subject).await?.is_some())
    }

    /// How many unused recovery codes the subject has; `None` without a
    /// confirmed factor.
    ///
    /// # Errors
    /// [`Error::Store`]; [`Error::InvalidInput`] for an empty subject or
    /// one over 1,024 bytes.
    pub async fn recovery_left(&self, subject: &str) -> Result<Option<usize>, Error> {
        crate::otp::check_subject(subject)?;
        let fkey = self.factor_key(subject);
        transact(
            self.store(),
            self.clock(),
            &[&fkey],
            self.max_retries(),
            |(factor,): (Option<Factor>,), _now| {
                Ok(Decision::only(
                    factor
                        .filter(|f| f.confirmed_at.is_some())
                        .map(|f| f.recovery.len()),
                ))
            },
        )
        .await
    }

    /// Removes the subject's factor, confirmed or not; whether there was
    /// one. Its recovery codes go with it.
    ///
    /// # Errors
    /// [`Error::Store`], [`Error::Busy`]; [`Error::InvalidInput`] for an
    /// empty subject or one over 1,024 bytes.
    pub async fn disable(&self, subject: &str) -> Result<bool, Error> {
        crate::otp::check_subject(subject)?;
        let removed = self.delete(subject).await?;
        if let Some(tag) = removed {
            tracing::warn!(target: audit::TARGET, event = "totp.disabled", tag = %Shown(tag), "second factor removed");
        }
        Ok(removed.is_some())
    }

    /// Deletes the factor record: `Some(its tag)` when there was one.
    async fn delete(&self, subject: &str) -> Result<Option<Option<AuditTag>>, Error> {
        let fkey = self.factor_key(subject);
        transact(
            self.store(),
            self.clock(),
            &[&fkey],
            self.max_retries(),
            |(factor,): (Option<Factor>,), _now| {
                Ok(match factor {
                    Some(f) => Decision::only(Some(f.audit_tag)).delete(0),
                    None => Decision::only(None),
                })
            },
        )
        .await
    }

    /// The erasure's step: the factor deleted; how many there were.
    pub(crate) async fn erase(&self, subject: &str) -> Result<u64, Error> {
        Ok(u64::from(self.delete(subject).await?.is_some()))
    }

    /// A new recovery set: the codes to show and their digests to store.
    fn new_recovery(&self, subject: &str) -> Result<(RecoveryCodes, Vec<String>), Error> {
        let mut codes = Vec::with_capacity(RECOVERY_CODES);
        let mut digests = Vec::with_capacity(RECOVERY_CODES);
        for _ in 0..RECOVERY_CODES {
            let mut raw = zeroize::Zeroizing::new([0u8; RECOVERY_LEN]);
            crate::random::fill_random(raw.as_mut_slice())?;
            let plain = zeroize::Zeroizing::new(base32_encode(raw.as_slice()).to_ascii_lowercase());
            digests.push(self.recovery_digest(subject, &plain));
            let grouped: Vec<&str> = plain
                .as_bytes()
                .chunks(4)
                .map(|c| std::str::from_utf8(c).unwrap_or_default())
                .collect();
            codes.push(OpaqueToken::new(grouped.join("-")));
        }
        Ok((RecoveryCodes(codes), digests))
    }

    fn recovery_digest(&self, subject: &str, normalized: &str) -> String {
        hex(&crate::mac::hmac_sha256(
            self.inner.recovery_key.unprotected_as_bytes(),
            &[
                RECOVERY_DOMAIN,
                &u16::try_from(subject.len())
                    .unwrap_or(u16::MAX)
                    .to_be_bytes(),
                subject.as_bytes(),
                normalized.as_bytes(),
            ],
        ))
    }

    /// The code an authenticator app shows now for `enrollment`: for
    /// examples and tests, which have no app. Never for production code.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for a secret that is not base32.
    pub fn dangerous_code_now(&self, enrollment: &Enrollment) -> Result<String, Error> {
        let secret = zeroize::Zeroizing::new(
            base32_decode(enrollment.secret.unprotected_as_str())
                .ok_or_else(|| Error::InvalidInput("an enrollment secret is base32".into()))?,
        );
        let p = &self.inner.policy;
        let now = self.clock().now();
        Ok(format_code(
            hotp(p.alg, &secret, step(now, p.period_secs), p.digits),
            p.digits,
        ))
    }
}

/// A code check's mode: a verify, or a confirmation with the recovery set
/// to store.
enum Mode<'a> {
    Verify,
    Confirm(&'a [String]),
}

/// Checks `code` against the factor's steps within `skew` of now.
fn check(factor: &Factor, secret: &[u8], code: Option<&str>, now: u64, skew: u64) -> Check {
    let Some(code) = code else {
        return Check::Wrong;
    };
    let current = step(now, factor.period);
    let mut matched = None;
    // Every candidate step is computed and compared, matched or not.
    for s in current.saturating_sub(skew)..=current.saturating_add(skew) {
        let expected = format_code(hotp(factor.alg, secret, s, factor.digits), factor.digits);
        if codes_equal(&expected, code) && matched.is_none() {
            matched = Some(s);
        }
    }
    match matched {
        None => Check::Wrong,
        Some(s) if factor.last_step.is_some_and(|last| s <= last) => Check::Replayed,
        Some(s) => Check::Step(s),
    }
}

/// The index of `digest` in `list`, comparing each entry in constant time.
fn position(list: &[String], digest: &str) -> Option<usize> {
    let mut found = None;
    for (i, d) in list.iter().enumerate() {
        if codes_equal(d, digest) && found.is_none() {
            found = Some(i);
        }
    }
    found
}

/// A recovery code as typed: dashes and spaces dropped, lowercase. `None`
/// when it cannot be one (the wrong length or alphabet).
fn normalize_recovery(code: &str) -> Option<String> {
    if code.len() > MAX_CODE_INPUT {
        return None;
    }
    let s: String = code
        .chars()
        .filter(|c| *c != '-' && !c.is_whitespace())
        .map(|c| c.to_ascii_lowercase())
        .collect();
    (s.len() == 16 && base32_decode(&s).is_some()).then_some(s)
}

fn check_label(label: &str, what: &'static str) -> Result<(), Error> {
    if label.is_empty()
        || label.len() > MAX_LABEL_LEN
        || label.contains(':')
        || label.chars().any(char::is_control)
    {
        return Err(TotpError::BadLabel(what).into());
    }
    Ok(())
}

#[cfg(test)]
mod tests;
