//! The numbers of the API-key rules.

use super::*;

/// The numbers of the API-key rules. Every field is validated when the
/// [`Keyward`](crate::Keyward) is built.
///
/// With the `config` feature it is `Deserialize` (the `[api_keys]` table
/// of `keyward.toml`): the keys are the field names, an absent key keeps
/// its default, an unknown key is an error.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(
    feature = "config",
    derive(serde::Deserialize),
    serde(deny_unknown_fields, default)
)]
#[non_exhaustive]
pub struct ApiKeyPolicy {
    /// Live keys (neither revoked nor expired) one owner may hold, 1 to
    /// 1,000. Creating one more is refused with
    /// [`ApiKeyError::TooManyKeys`].
    pub max_keys_per_owner: u32,
    /// `last_used_at` is written when the stored value is at least this
    /// old, so a key costs at most one write per interval across every
    /// replica; 1 to 86,400 seconds.
    pub touch_interval_secs: u64,
    /// Seconds a revoked or expired key is remembered, so that its holder
    /// is told `Revoked` or `Expired` rather than `Unknown`, and an owner's
    /// list still shows an expired key; 1 to 400 days.
    pub retention_secs: u64,
    /// Compare-and-swap attempts per operation under contention.
    pub max_retries: u32,
}

impl Default for ApiKeyPolicy {
    fn default() -> Self {
        Self {
            max_keys_per_owner: DEFAULT_MAX_KEYS_PER_OWNER,
            touch_interval_secs: DEFAULT_TOUCH_INTERVAL_SECS,
            retention_secs: DEFAULT_RETENTION_SECS,
            max_retries: DEFAULT_MAX_RETRIES,
        }
    }
}

impl ApiKeyPolicy {
    pub(crate) fn validate(&self) -> Result<(), Error> {
        let bad = |msg: &str| Err(Error::Config(format!("api_keys.{msg}")));
        if !(1..=MAX_INDEX_LEN).contains(&self.max_keys_per_owner) {
            return bad("max_keys_per_owner must be 1 to 1000");
        }
        if !(1..=86_400).contains(&self.touch_interval_secs) {
            return bad("touch_interval_secs must be 1 to 86400");
        }
        if !(1..=400 * 86_400).contains(&self.retention_secs) {
            return bad("retention_secs must be 1 to 34560000");
        }
        if self.max_retries == 0 {
            return bad("max_retries must be at least 1");
        }
        Ok(())
    }
}
