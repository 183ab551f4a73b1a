//! The numbers of the one-time-code rules.

use super::*;

/// The numbers of the one-time-code rules. Every field is validated when
/// the [`Keyward`](crate::Keyward) is built.
///
/// With the `config` feature it is `Deserialize`: the keys are the field
/// names, an absent key keeps its default, an unknown key is an error.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(
    feature = "config",
    derive(serde::Deserialize),
    serde(deny_unknown_fields, default)
)]
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
