//! The pure rules. Each transition is a function of the records and the
//! time; the service runs each as one store transaction.

use super::*;

/// The stored record of one key, named by its public id. It holds the
/// digests of the current and, during an overlap, the previous secret;
/// never a secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct KeyRecord {
    pub(crate) owner: String,
    pub(crate) name: String,
    pub(crate) prefix: String,
    pub(crate) scopes: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub(crate) metadata: BTreeMap<String, String>,
    pub(crate) created_at: u64,
    pub(crate) expires_at: Option<u64>,
    pub(crate) enabled: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) revoked_at: Option<u64>,
    /// Whether the digests are keyed (HMAC-SHA256 under the key ring's
    /// token key) rather than plain SHA-256.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub(crate) keyed: bool,
    pub(crate) digest: TokenDigest,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) previous: Option<Previous>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) last_used_at: Option<u64>,
    /// The owner's audit tag when the key was created: what the key's
    /// events carry. Missing on keys created before audit tags.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) audit_tag: Option<AuditTag>,
}

/// The secret a roll replaced, valid while `now < until`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Previous {
    pub(crate) digest: TokenDigest,
    pub(crate) until: u64,
}

/// An owner's keys: the ids created and not yet known to be revoked or
/// forgotten, each with its expiry, so that the live count needs no other
/// record.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct OwnerIndex {
    pub(crate) keys: Vec<IndexEntry>,
    /// An erasure of the owner began and has not finished: no key is
    /// created for it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub(crate) erasing: bool,
}

/// One entry of an [`OwnerIndex`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct IndexEntry {
    pub(crate) id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) expires_at: Option<u64>,
    /// Set once a create found the key revoked: when its record ends (its
    /// revocation plus the retention). The entry stays until then, so that
    /// an erasure finds the record, and counts as no live key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) revoked_until: Option<u64>,
}

impl IndexEntry {
    /// Whether the key's record is gone: revoked or expired longer ago
    /// than the retention.
    fn gone(&self, retention: u64, now: u64) -> bool {
        ended(self.revoked_until, now)
            || ended(self.expires_at.map(|x| x.saturating_add(retention)), now)
    }
}

/// Which secret a presented key matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Matched {
    /// The current secret.
    Current,
    /// The secret before the last roll, still inside its overlap, which
    /// ends at this time.
    Previous(u64),
}

/// Whether `now` is at or past an optional end time.
fn ended(end: Option<u64>, now: u64) -> bool {
    end.is_some_and(|end| now >= end)
}

/// What the verify rule reads of a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Status {
    pub(crate) digest: TokenDigest,
    pub(crate) previous: Option<Previous>,
    pub(crate) revoked: bool,
    pub(crate) expires_at: Option<u64>,
    pub(crate) enabled: bool,
}

#[cfg(test)]
impl KeyRecord {
    pub(crate) fn status(&self) -> Status {
        Status {
            digest: self.digest,
            previous: self.previous,
            revoked: self.revoked_at.is_some(),
            expires_at: self.expires_at,
            enabled: self.enabled,
        }
    }
}

/// The verify rule over a record: which secret `digest` is, or why it is
/// refused. See [`check_status`].
#[cfg(test)]
pub(crate) fn check(
    record: Option<&KeyRecord>,
    digest: &TokenDigest,
    now: u64,
) -> Result<Matched, ApiKeyError> {
    check_status(record.map(KeyRecord::status), digest, now)
}

/// The verify rule: which secret `digest` is, or why it is refused.
///
/// A key is named `Revoked`, `Expired` or `Disabled` only when the digest
/// matches one of its secrets; anything else is `Unknown`. Both digests are
/// compared in constant time, and both comparisons always run.
#[inline]
pub(crate) fn check_status(
    status: Option<Status>,
    digest: &TokenDigest,
    now: u64,
) -> Result<Matched, ApiKeyError> {
    let r = status.ok_or(ApiKeyError::Unknown)?;
    let current = r.digest == *digest;
    let previous = r.previous.filter(|p| p.digest == *digest);
    if !current && previous.is_none() {
        return Err(ApiKeyError::Unknown);
    }
    if r.revoked {
        return Err(ApiKeyError::Revoked);
    }
    if ended(r.expires_at, now) {
        return Err(ApiKeyError::Expired);
    }
    let matched = match previous {
        Some(p) if !current => {
            if now >= p.until {
                return Err(ApiKeyError::Expired);
            }
            Matched::Previous(p.until)
        }
        _ => Matched::Current,
    };
    if !r.enabled {
        return Err(ApiKeyError::Disabled);
    }
    Ok(matched)
}

/// Whether a verify at `now` should write `last_used_at`: when it was
/// never written, or is at least `interval` seconds old.
pub(crate) fn touch_due(last_used_at: Option<u64>, now: u64, interval: u64) -> bool {
    last_used_at.is_none_or(|t| now >= t.saturating_add(interval))
}

/// How long the store keeps a record: a century for a live key without
/// an expiry; `retention` past its expiry or its revocation otherwise, so
/// that its holder is told why it fails.
pub(crate) fn record_ttl(r: &KeyRecord, now: u64, retention: u64) -> Duration {
    let end = r.revoked_at.or(r.expires_at);
    match end {
        None => MAX_TTL,
        Some(end) => {
            let secs = end.saturating_add(retention).saturating_sub(now).max(1);
            Duration::from_secs(secs).min(MAX_TTL)
        }
    }
}

/// What a create finds in the owner's index.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Room {
    /// Room for one more: the index to write.
    Yes(OwnerIndex),
    /// By the index alone the owner is at the cap; some of the keys may
    /// have been revoked since, which only their records tell.
    AskRecords(Vec<String>),
}

/// The create rule over the index alone: adds `new` if the keys the index
/// counts as live are fewer than `max`. Entries whose record is gone
/// (expired or revoked longer ago than `retention`) are dropped.
///
/// # Errors
/// [`ApiKeyError::TooManyKeys`] when the index is full of keys whose
/// records are kept.
pub(crate) fn decide_create(
    index: Option<OwnerIndex>,
    new: IndexEntry,
    max: u32,
    retention: u64,
    now: u64,
) -> Result<Room, ApiKeyError> {
    let mut index = index.unwrap_or_default();
    index.keys.retain(|e| !e.gone(retention, now));
    if live(&index, now) >= max {
        return Ok(Room::AskRecords(
            index.keys.iter().map(|e| e.id.clone()).collect(),
        ));
    }
    Ok(Room::Yes(with_entry(index, new, retention, now)?))
}

/// The create rule with the listed keys' records loaded (in the index's
/// order): an entry whose record is gone is dropped, and one whose record
/// is revoked is marked so (it stays until its record ends, and counts as
/// no live key), so the cap counts exactly the live keys.
///
/// # Errors
/// [`ApiKeyError::TooManyKeys`] when the owner holds `max` live keys.
pub(crate) fn decide_create_exact(
    index: Option<OwnerIndex>,
    records: &[Option<KeyRecord>],
    new: IndexEntry,
    max: u32,
    retention: u64,
    now: u64,
) -> Result<OwnerIndex, ApiKeyError> {
    let mut index = index.unwrap_or_default();
    let mut kept = Vec::with_capacity(index.keys.len());
    for (mut entry, record) in index.keys.drain(..).zip(records) {
        let Some(r) = record else {
            continue;
        };
        if let Some(at) = r.revoked_at {
            entry.revoked_until = Some(at.saturating_add(retention));
        }
        kept.push(entry);
    }
    index.keys = kept;
    if live(&index, now) >= max {
        return Err(ApiKeyError::TooManyKeys { max });
    }
    with_entry(index, new, retention, now)
}

/// Keys of the index that are neither expired nor known to be revoked.
fn live(index: &OwnerIndex, now: u64) -> u32 {
    let n = index
        .keys
        .iter()
        .filter(|e| !ended(e.expires_at, now) && e.revoked_until.is_none())
        .count();
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// Adds an entry, first dropping those whose record is gone (the soonest
/// gone first) while the index is full. An entry whose record is kept is
/// never dropped, so that an erasure finds every record.
///
/// # Errors
/// [`ApiKeyError::TooManyKeys`] (with [`MAX_INDEX_LEN`]) when the index is
/// full of such entries.
fn with_entry(
    mut index: OwnerIndex,
    new: IndexEntry,
    retention: u64,
    now: u64,
) -> Result<OwnerIndex, ApiKeyError> {
    let limit = usize::try_from(MAX_INDEX_LEN).unwrap_or(usize::MAX);
    index.keys.retain(|e| !e.gone(retention, now));
    if index.keys.len() >= limit {
        return Err(ApiKeyError::TooManyKeys { max: MAX_INDEX_LEN });
    }
    index.keys.push(new);
    Ok(index)
}

/// The roll rule: `digest` becomes the current secret; the old one stays
/// valid until `min(now + overlap, expires_at)` and any older one ends.
/// Returns the new record and the old secret's end.
///
/// # Errors
/// `Unknown` (no record), `Revoked`, `Expired`.
pub(crate) fn decide_roll(
    record: Option<KeyRecord>,
    digest: TokenDigest,
    overlap_secs: u64,
    now: u64,
) -> Result<(KeyRecord, u64), ApiKeyError> {
    let mut r = record.ok_or(ApiKeyError::Unknown)?;
    if r.revoked_at.is_some() {
        return Err(ApiKeyError::Revoked);
    }
    if ended(r.expires_at, now) {
        return Err(ApiKeyError::Expired);
    }
    let mut until = now.saturating_add(overlap_secs);
    if let Some(end) = r.expires_at {
        until = until.min(end);
    }
    r.previous = Some(Previous {
        digest: r.digest,
        until,
    });
    r.digest = digest;
    Ok((r, until))
}

/// The revoke rule. `None` when the key is already revoked (nothing to
/// write: revoking is idempotent).
///
/// # Errors
/// `Unknown` when there is no record.
pub(crate) fn decide_revoke(
    record: Option<KeyRecord>,
    now: u64,
) -> Result<Option<KeyRecord>, ApiKeyError> {
    let mut r = record.ok_or(ApiKeyError::Unknown)?;
    if r.revoked_at.is_some() {
        return Ok(None);
    }
    r.revoked_at = Some(now);
    Ok(Some(r))
}

/// The disable and enable rule. `None` when the flag already has that
/// value.
///
/// # Errors
/// `Unknown` when there is no record, `Revoked` for a revoked key.
pub(crate) fn decide_enabled(
    record: Option<KeyRecord>,
    enabled: bool,
) -> Result<Option<KeyRecord>, ApiKeyError> {
    let mut r = record.ok_or(ApiKeyError::Unknown)?;
    if r.revoked_at.is_some() {
        return Err(ApiKeyError::Revoked);
    }
    if r.enabled == enabled {
        return Ok(None);
    }
    r.enabled = enabled;
    Ok(Some(r))
}
