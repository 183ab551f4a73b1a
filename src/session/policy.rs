//! Refresh-token lifetimes and the grace window.

use super::*;

/// Refresh-token lifetimes and the grace window.
///
/// With the `config` feature it is `Deserialize`: the keys are the field
/// names, an absent key keeps its default, an unknown key is an error. The
/// numbers are checked when the [`Keyward`](crate::Keyward) is built.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(
    feature = "config",
    derive(serde::Deserialize),
    serde(deny_unknown_fields, default)
)]
#[non_exhaustive]
pub struct SessionPolicy {
    /// Seconds during which the immediate predecessor of the live token
    /// gets the same successor back. 0 turns the grace off: any replay is
    /// reuse.
    pub reuse_grace_secs: u64,
    /// Seconds without a refresh after which the family expires.
    pub idle_ttl_secs: u64,
    /// Seconds after login after which the family expires.
    pub absolute_ttl_secs: u64,
    /// Compare-and-swap attempts per operation under contention.
    pub max_retries: u32,
}

impl Default for SessionPolicy {
    fn default() -> Self {
        Self {
            reuse_grace_secs: DEFAULT_REUSE_GRACE_SECS,
            idle_ttl_secs: DEFAULT_IDLE_TTL_SECS,
            absolute_ttl_secs: DEFAULT_ABSOLUTE_TTL_SECS,
            max_retries: DEFAULT_MAX_RETRIES,
        }
    }
}

impl SessionPolicy {
    pub(crate) fn validate(&self) -> Result<(), Error> {
        if self.idle_ttl_secs == 0 || self.absolute_ttl_secs == 0 || self.max_retries == 0 {
            return Err(Error::Config(
                "session lifetimes and max_retries must be at least 1".into(),
            ));
        }
        if self.idle_ttl_secs > self.absolute_ttl_secs {
            return Err(Error::Config(
                "session.idle_ttl_secs must not exceed absolute_ttl_secs".into(),
            ));
        }
        if self.absolute_ttl_secs > 365 * 86_400 {
            return Err(Error::Config(
                "session.absolute_ttl_secs must be at most one year".into(),
            ));
        }
        if self.reuse_grace_secs > 60 {
            return Err(Error::Config(
                "session.reuse_grace_secs must be at most 60".into(),
            ));
        }
        Ok(())
    }
}

impl SessionError {
    /// The CLI's and HTTP API's name for it.
    #[must_use]
    pub fn reason(self) -> &'static str {
        match self {
            Self::Reused => "reused",
            Self::Expired => "expired",
            Self::Revoked => "revoked",
            Self::Invalid => "invalid",
            Self::Unknown => "unknown",
            Self::ChallengeInvalid => "invalid_challenge",
        }
    }
}
