//! The subject's session list: which families a subject has, so that they
//! can be listed ("your devices") and found without a scan.
//!
//! One record per subject, `kw:sess:<subject tag>`, separate from the
//! revocation record that every refresh loads, so that a long list never
//! slows a refresh. A start adds its family in the same commit as the
//! family itself. An entry stays until its family's record could no
//! longer be stored (its absolute end), whatever happened to the family
//! meanwhile (a revoked family's record is kept until then, to recognise
//! reuse), so the list names every family record of the subject.

use super::*;

crate::store::json_stored!(SessionList);

/// Families listed per subject at most. A start beyond it ends the oldest
/// family first (its record is deleted).
pub const MAX_SESSIONS_PER_SUBJECT: usize = 100;
/// The longest caller metadata kept with a session, in bytes.
pub const MAX_META_LEN: usize = 256;

/// The stored list.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SessionList {
    pub(crate) sessions: Vec<ListEntry>,
}

/// One family of the subject.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ListEntry {
    /// The session id (the family id, lowercase hex).
    pub(crate) id: String,
    /// When the family's record ends (its absolute lifetime).
    pub(crate) ends: u64,
    /// What the caller gave at start (a user agent, say).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) meta: Option<String>,
}

/// One live session, as [`Sessions::list`] shows it.
///
/// `Serialize` and `Deserialize` for JSON answers: the id is `"session"`,
/// as in the `keyward session` commands' output and the reference
/// routes' `GET /sessions`; the other fields keep their names, times in
/// Unix seconds, and `meta` is `null` when absent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SessionInfo {
    /// The session id: the `sid` of its access tokens.
    #[serde(rename = "session")]
    pub id: String,
    /// Login time (Unix seconds).
    pub started_at: u64,
    /// Time of the last refresh, or the login (Unix seconds).
    pub refreshed_at: u64,
    /// How many refreshes the session has had.
    pub generation: u64,
    /// When the session ends unless refreshed: the earlier of its idle and
    /// absolute ends (Unix seconds).
    pub expires_at: u64,
    /// What the caller gave at start, if anything.
    pub meta: Option<String>,
}

/// Checks caller metadata: 1 to 256 bytes, no control characters (it ends
/// up on a page and in an operator's terminal).
pub(crate) fn check_meta(meta: &str) -> Result<(), Error> {
    if meta.is_empty() || meta.len() > MAX_META_LEN || meta.chars().any(char::is_control) {
        return Err(Error::InvalidInput(
            "session metadata must be 1 to 256 bytes with no control characters".into(),
        ));
    }
    Ok(())
}

/// What adding a family to the list needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Admit {
    /// The list to write.
    List(SessionList),
    /// The list is full of unexpired entries: this one must go first.
    Evict(String),
}

/// The add rule: drops entries past their end, then adds `entry`, unless
/// the list is full, in which case the oldest entry must be evicted first.
pub(crate) fn admit(list: Option<SessionList>, entry: ListEntry, now: u64) -> Admit {
    let mut list = list.unwrap_or_default();
    list.sessions.retain(|e| e.ends > now);
    if list.sessions.len() >= MAX_SESSIONS_PER_SUBJECT {
        let oldest = list
            .sessions
            .iter()
            .min_by_key(|e| e.ends)
            .map(|e| e.id.clone())
            .unwrap_or_default();
        return Admit::Evict(oldest);
    }
    list.sessions.push(entry);
    Admit::List(list)
}

/// How long the list is kept: until its last entry ends.
pub(crate) fn list_ttl(list: &SessionList, now: u64) -> Duration {
    let end = list.sessions.iter().map(|e| e.ends).max().unwrap_or(now);
    Duration::from_secs(end.saturating_sub(now).max(1))
}

/// What the listing shows of a family: `None` unless it is live and the
/// subject's.
pub(crate) fn info(
    entry: &ListEntry,
    family: Option<&Family>,
    subject: &str,
    epoch: u64,
    now: u64,
    policy: &SessionPolicy,
) -> Option<SessionInfo> {
    let family = family?;
    if family.subject != subject || liveness(family, epoch, now, policy).is_err() {
        return None;
    }
    let absolute_end = family.created.saturating_add(policy.absolute_ttl_secs);
    let idle_end = family.last_used.saturating_add(policy.idle_ttl_secs);
    Some(SessionInfo {
        id: entry.id.clone(),
        started_at: family.created,
        refreshed_at: family.last_used,
        generation: family.generation,
        expires_at: absolute_end.min(idle_end),
        meta: entry.meta.clone(),
    })
}
