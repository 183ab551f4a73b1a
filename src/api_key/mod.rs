//! API keys: create, verify, roll with overlap, revoke, disable, list.
//!
//! A key is an opaque token, `<prefix>_<id>_<secret><checksum>` (see
//! [`token`](crate::token)). Its public id names one record in the store,
//! which holds the owner, a name, scopes, small metadata, `created_at`,
//! an optional `expires_at`, the `enabled` flag, `last_used_at`, and the
//! **digest** of the current secret: never the key. After a roll it also
//! holds the previous secret's digest with its own end time, so a client
//! can switch keys without downtime. A second record per owner lists the
//! owner's key ids; a create changes both in one commit.
//!
//! - [`verify`](ApiKeys::verify) checks the shape and checksum offline,
//!   then costs **one** store round trip: the record is loaded and the
//!   presented key's digest compared, in constant time, with the current
//!   digest and the previous one. `last_used_at` is written at most once
//!   per [`touch_interval_secs`](ApiKeyPolicy::touch_interval_secs) per
//!   key across every replica (a write guarded by the record's version),
//!   and a failed write never fails the verify. There is no cache: a
//!   verify that starts after [`revoke`](ApiKeys::revoke) returned reads
//!   the revoked record, on every replica.
//! - [`roll`](ApiKeys::roll) keeps the id and mints a new secret. The old
//!   secret stays valid until `min(now + overlap, expires_at)`; a roll
//!   during an overlap ends the older secret at once, so at most one old
//!   secret is ever live, and none outlives the key.
//! - [`revoke`](ApiKeys::revoke) is final; [`disable`](ApiKeys::disable)
//!   and [`enable`](ApiKeys::enable) are not.
//!
//! Every decision uses the store's clock where the store keeps one. Any
//! storage error fails closed: no key is accepted.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), keyward::Error> {
//! use keyward::api_key::KeySpec;
//! use keyward::{JwtAlg, KeyRing, Keyward, MemoryStore};
//! use std::time::Duration;
//!
//! let kw = Keyward::builder()
//!     .keys(KeyRing::generate(JwtAlg::EdDSA)?)
//!     .store(MemoryStore::new())
//!     .build_partial()?;
//! let keys = kw.api_keys()?;
//! let made = keys.create("user-42", KeySpec::named("ci").scope("repo:read")).await?;
//! // Show `made.key()` to its owner once; keyward keeps only its digest.
//! let presented = made.key().unprotected_as_str();
//! let ok = keys.verify(presented).await?;
//! ok.require_scope("repo:read")?;
//! assert_eq!(ok.owner(), "user-42");
//!
//! // A new secret under the same id; the old one works for an hour more.
//! let rolled = keys.roll(made.id(), Duration::from_secs(3600)).await?;
//! keys.verify(presented).await?;
//! keys.verify(rolled.key().unprotected_as_str()).await?;
//!
//! keys.revoke(made.id()).await?;
//! assert!(keys.verify(rolled.key().unprotected_as_str()).await.is_err());
//! # Ok(()) }
//! ```

mod codec;
mod machine;
mod policy;
mod service;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::audit::{self, Audit, AuditTag, Salt, Shown};
use crate::clock::Clock;
use crate::error::{Error, StoreError};
use crate::hex::encode as hex;
use crate::keyring::KeyRing;
use crate::secret::{OpaqueToken, SecretBytes};
use crate::store::{Decision, MAX_TTL, Record, Store, Stored, store_seconds, transact};
use crate::token::{TokenDigest, Tokens};

pub use crate::error::ApiKeyError;
pub use crate::store::DEFAULT_MAX_RETRIES;
pub use policy::ApiKeyPolicy;
pub use service::ApiKeys;

#[allow(unused_imports, reason = "the submodules see each other's items")]
use {codec::*, machine::*, service::*};

/// Live keys one owner may hold by default.
pub const DEFAULT_MAX_KEYS_PER_OWNER: u32 = 100;
/// `last_used_at` is written at most once a minute per key by default.
pub const DEFAULT_TOUCH_INTERVAL_SECS: u64 = 60;
/// Revoked and expired keys are remembered 30 days by default.
pub const DEFAULT_RETENTION_SECS: u64 = 30 * 86_400;
/// The prefix of keys whose spec names none.
pub const DEFAULT_PREFIX: &str = "kw";
/// The most entries an owner's index holds; also the highest
/// [`max_keys_per_owner`](ApiKeyPolicy::max_keys_per_owner).
pub const MAX_INDEX_LEN: u32 = 1_000;
/// Longest owner, in bytes.
pub const MAX_OWNER_LEN: usize = 1024;
/// Longest name, in bytes.
pub const MAX_NAME_LEN: usize = 128;
/// Most scopes on one key.
pub const MAX_SCOPES: usize = 64;
/// Longest scope, in bytes.
pub const MAX_SCOPE_LEN: usize = 128;
/// Most metadata entries on one key.
pub const MAX_METADATA: usize = 16;
/// Longest metadata key, in bytes.
pub const MAX_METADATA_KEY_LEN: usize = 64;
/// Longest metadata value, in bytes.
pub const MAX_METADATA_VALUE_LEN: usize = 512;

const OWNER_DOMAIN: &[u8] = b"keyward api key owner v1\0";

/// What to create: a name, scopes, metadata, an optional lifetime and the
/// token prefix. Built with [`KeySpec::named`] and chained setters.
///
/// Scopes are short strings of visible ASCII (`repo:read`); a verified key
/// has a scope only if it was listed here exactly.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub struct KeySpec {
    name: String,
    prefix: String,
    scopes: Vec<String>,
    metadata: BTreeMap<String, String>,
    expires_in: Option<Duration>,
}

impl Default for KeySpec {
    fn default() -> Self {
        Self::named("")
    }
}

impl KeySpec {
    /// A key with this display name (up to 128 bytes, no control
    /// characters; may be empty), no scopes, no expiry, prefix `kw`.
    pub fn named(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            prefix: DEFAULT_PREFIX.to_owned(),
            scopes: Vec::new(),
            metadata: BTreeMap::new(),
            expires_in: None,
        }
    }

    /// Adds a scope (1 to 128 bytes of visible ASCII). A repeated scope
    /// is kept once.
    pub fn scope(mut self, scope: impl Into<String>) -> Self {
        let scope = scope.into();
        if !self.scopes.contains(&scope) {
            self.scopes.push(scope);
        }
        self
    }

    /// Adds a metadata entry (up to 16; keys 1 to 64 bytes, values up to
    /// 512, no control characters). Metadata is shown in lists; keep
    /// secrets out of it.
    pub fn metadata(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.metadata.insert(key.into(), value.into());
        self
    }

    /// The key expires this long after it is created (at least one
    /// second). Without it the key lives until revoked.
    pub fn expires_in(mut self, lifetime: Duration) -> Self {
        self.expires_in = Some(lifetime);
        self
    }

    /// The token prefix: 1 to 20 characters of `a-z`, `0-9` and `_`, such
    /// as `kw_live`, so that people and secret scanners recognise the key.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Checks every field; the error names the field, never its value.
    fn validate(&self, owner: &str) -> Result<(), ApiKeyError> {
        let bad = |what| Err(ApiKeyError::BadSpec(what));
        if owner.is_empty() || owner.len() > MAX_OWNER_LEN || has_control(owner) {
            return bad("owner must be 1 to 1024 bytes without control characters");
        }
        if self.name.len() > MAX_NAME_LEN || has_control(&self.name) {
            return bad("name must be at most 128 bytes without control characters");
        }
        if self.scopes.len() > MAX_SCOPES {
            return bad("at most 64 scopes");
        }
        if !self.scopes.iter().all(|s| is_scope(s)) {
            return bad("a scope must be 1 to 128 bytes of visible ASCII");
        }
        if self.metadata.len() > MAX_METADATA {
            return bad("at most 16 metadata entries");
        }
        for (k, v) in &self.metadata {
            if k.is_empty() || k.len() > MAX_METADATA_KEY_LEN || has_control(k) {
                return bad("a metadata key must be 1 to 64 bytes without control characters");
            }
            if v.len() > MAX_METADATA_VALUE_LEN || has_control(v) {
                return bad(
                    "a metadata value must be at most 512 bytes without control characters",
                );
            }
        }
        if self.expires_in.is_some_and(|d| d.as_secs() == 0) {
            return bad("expires_in must be at least one second");
        }
        Ok(())
    }
}

fn has_control(s: &str) -> bool {
    s.chars().any(char::is_control)
}

fn is_scope(s: &str) -> bool {
    !s.is_empty() && s.len() <= MAX_SCOPE_LEN && s.bytes().all(|b| b.is_ascii_graphic())
}

/// What an owner, an operator or a dashboard may see of a key: never the
/// key, never a digest. `Serialize` for JSON answers, and `Deserialize`
/// for a client that reads one back; the field names are those below.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ApiKeyView {
    /// The public id, safe to log.
    pub id: String,
    /// The owner (a subject).
    pub owner: String,
    /// The display name.
    pub name: String,
    /// The token prefix.
    pub prefix: String,
    /// The scopes.
    pub scopes: Vec<String>,
    /// The metadata.
    pub metadata: BTreeMap<String, String>,
    /// Creation time, in seconds since the Unix epoch.
    pub created_at: u64,
    /// Expiry, in seconds since the Unix epoch; `None` for a key that
    /// lives until revoked.
    pub expires_at: Option<u64>,
    /// Last successful verify, to within the touch interval.
    pub last_used_at: Option<u64>,
    /// Whether the key is enabled.
    pub enabled: bool,
}

impl ApiKeyView {
    fn of(id: &str, r: &KeyRecord) -> Self {
        Self {
            id: id.to_owned(),
            owner: r.owner.clone(),
            name: r.name.clone(),
            prefix: r.prefix.clone(),
            scopes: r.scopes.clone(),
            metadata: r.metadata.clone(),
            created_at: r.created_at,
            expires_at: r.expires_at,
            last_used_at: r.last_used_at,
            enabled: r.enabled,
        }
    }
}

/// A key just created: the key itself, to show its owner once, and the
/// record's public view. Its `Debug` omits the key.
#[derive(Debug)]
pub struct CreatedKey {
    key: OpaqueToken,
    view: ApiKeyView,
}

impl CreatedKey {
    /// The key, to show once and never store.
    #[must_use]
    pub fn key(&self) -> &OpaqueToken {
        &self.key
    }

    /// The public id.
    #[must_use]
    pub fn id(&self) -> &str {
        &self.view.id
    }

    /// The record's public view.
    #[must_use]
    pub fn view(&self) -> &ApiKeyView {
        &self.view
    }

    /// Takes the key out.
    #[must_use]
    pub fn into_key(self) -> OpaqueToken {
        self.key
    }
}

/// A rolled key: the new key under the same id, and when the old one
/// stops working. Its `Debug` omits the key.
#[derive(Debug)]
pub struct RolledKey {
    key: OpaqueToken,
    id: String,
    previous_valid_until: u64,
}

impl RolledKey {
    /// The new key, to show once and never store.
    #[must_use]
    pub fn key(&self) -> &OpaqueToken {
        &self.key
    }

    /// The public id, unchanged by the roll.
    #[must_use]
    pub fn id(&self) -> &str {
        &self.id
    }

    /// When the old key stops working, in seconds since the Unix epoch:
    /// `min(now + overlap, expires_at)`; `now` for an overlap of zero.
    #[must_use]
    pub fn previous_valid_until(&self) -> u64 {
        self.previous_valid_until
    }
}

/// Proof that a presented API key is live: what a request handler needs to
/// authorise it. Only [`ApiKeys::verify`] makes one.
///
/// Its strings are read in place from the key's record as loaded, so a
/// verify allocates nothing for its answer and copies nothing into it.
#[derive(Clone)]
#[must_use]
pub struct ApiKeyVerified {
    id: [u8; crate::token::ID_LEN],
    /// The record's bytes as loaded, up to the end of the scopes (the
    /// metadata is cut off), with its digests overwritten by zeros. The
    /// expiry and the previous secret's end are read from its fixed part.
    record: Vec<u8>,
    owner: Span,
    name: Span,
    /// Each scope with its length byte before it.
    scopes: Span,
    /// Whether the presented secret is the one the last roll replaced.
    rolled: bool,
}

/// Where a string lies in a proof's record, in 32 bits (a record holds
/// at most 64 KiB): the proof stays small to move.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Span {
    start: u32,
    end: u32,
}

impl Span {
    fn of(at: &Range<usize>) -> Result<Self, StoreError> {
        match (u32::try_from(at.start), u32::try_from(at.end)) {
            (Ok(start), Ok(end)) => Ok(Self { start, end }),
            _ => Err(StoreError::Corrupt("api key record too long")),
        }
    }
}

/// Two proofs are equal when they say the same: the id, the strings, the
/// expiry and the roll, wherever the strings lie in the record.
impl PartialEq for ApiKeyVerified {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
            && self.owner() == other.owner()
            && self.name() == other.name()
            && self.bytes(self.scopes) == other.bytes(other.scopes)
            && self.expires_at() == other.expires_at()
            && self.rolled_until() == other.rolled_until()
    }
}

impl Eq for ApiKeyVerified {}

impl fmt::Debug for ApiKeyVerified {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiKeyVerified")
            .field("id", &self.id())
            .field("owner", &self.owner())
            .field("name", &self.name())
            .field("scopes", &self.scopes().collect::<Vec<_>>())
            .field("expires_at", &self.expires_at())
            .field("rolled_until", &self.rolled_until())
            .finish()
    }
}

impl ApiKeyVerified {
    /// The key's public id, for logs.
    #[must_use]
    pub fn id(&self) -> &str {
        std::str::from_utf8(&self.id).unwrap_or_default()
    }

    /// The owner (a subject).
    #[must_use]
    pub fn owner(&self) -> &str {
        self.text(self.owner)
    }

    /// The display name.
    #[must_use]
    pub fn name(&self) -> &str {
        self.text(self.name)
    }

    /// The scopes, in the order they were given.
    pub fn scopes(&self) -> impl Iterator<Item = &str> {
        scope_slices(self.bytes(self.scopes)).filter_map(|s| std::str::from_utf8(s).ok())
    }

    /// A string field; [`of_record`](Self::of_record) checked it is UTF-8.
    fn text(&self, at: Span) -> &str {
        std::str::from_utf8(self.bytes(at)).unwrap_or_default()
    }

    /// The record's bytes at `at`.
    fn bytes(&self, at: Span) -> &[u8] {
        let (Ok(start), Ok(end)) = (usize::try_from(at.start), usize::try_from(at.end)) else {
            return &[];
        };
        self.record.get(start..end).unwrap_or_default()
    }

    /// Expiry, in seconds since the Unix epoch, if any.
    #[must_use]
    pub fn expires_at(&self) -> Option<u64> {
        fixed_part(&self.record).and_then(|fixed| fixed.expires_at)
    }

    /// `Some(end)` when the presented secret is the one a roll replaced,
    /// valid until `end`: the client should switch to the new key.
    #[must_use]
    pub fn rolled_until(&self) -> Option<u64> {
        if !self.rolled {
            return None;
        }
        fixed_part(&self.record).and_then(|fixed| fixed.previous.map(|p| p.until))
    }

    /// Whether the key has `scope`, exactly.
    #[must_use]
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes().any(|s| s == scope)
    }

    /// Requires `scope`.
    ///
    /// # Errors
    /// [`ApiKeyError::MissingScope`] naming the scope.
    pub fn require_scope(&self, scope: &str) -> Result<(), Error> {
        if self.has_scope(scope) {
            Ok(())
        } else {
            Err(ApiKeyError::MissingScope(scope.to_owned()).into())
        }
    }

    /// The proof for a record's bytes and their view: the bytes are kept
    /// as they are, but for the digests, overwritten (no digest stays in
    /// the proof), and the metadata, cut off; the strings are checked to
    /// be UTF-8 once.
    #[inline(always)]
    fn of_record(
        id: &[u8; crate::token::ID_LEN],
        mut record: Vec<u8>,
        view: &KeyView,
        matched: Matched,
    ) -> Result<Self, StoreError> {
        let not_utf8 = || StoreError::Corrupt("api key record is not UTF-8");
        // All ASCII, the usual case, is UTF-8 in every field whatever the
        // length bytes between them; else each field is checked.
        let all = record
            .get(view.owner.start..view.scopes.end)
            .ok_or_else(not_utf8)?;
        if !all.is_ascii() && !fields_are_utf8(&record, view) {
            return Err(not_utf8());
        }
        overwrite_digest(&mut record, view.digest_at)?;
        if view.status.previous.is_some() {
            overwrite_digest(&mut record, view.digest_at.saturating_add(32))?;
        }
        record.truncate(view.scopes.end);
        Ok(Self {
            id: *id,
            record,
            owner: Span::of(&view.owner)?,
            name: Span::of(&view.name)?,
            scopes: Span::of(&view.scopes)?,
            rolled: matches!(matched, Matched::Previous(_)),
        })
    }
}

/// Overwrites the 32 bytes of a digest at `at` with zeros.
fn overwrite_digest(record: &mut [u8], at: usize) -> Result<(), StoreError> {
    let Some(digest) = record
        .get_mut(at..)
        .and_then(|rest| rest.first_chunk_mut::<32>())
    else {
        return Err(StoreError::Corrupt("api key record digest"));
    };
    *digest = [0; 32];
    Ok(())
}

/// Whether the owner, the name and each scope are UTF-8.
#[cold]
fn fields_are_utf8(record: &[u8], view: &KeyView) -> bool {
    let utf8 = |at: &Range<usize>| {
        record
            .get(at.clone())
            .is_some_and(|b| std::str::from_utf8(b).is_ok())
    };
    utf8(&view.owner)
        && utf8(&view.name)
        && record
            .get(view.scopes.clone())
            .is_some_and(|scopes| scope_slices(scopes).all(|s| std::str::from_utf8(s).is_ok()))
}
