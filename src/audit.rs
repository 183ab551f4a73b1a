//! Audit events: the one `tracing` target that security events go to, and
//! the tag they carry in place of the subject.
//!
//! A subject's tag is the first 128 bits of `HMAC-SHA256(salt, subject)`,
//! under a random 128-bit salt of its own. The salt lives in one record,
//! whose key is a keyed digest of the subject (under a key the ring
//! derives), so no store key names a subject. An issuance (a session, a
//! one-time code, an API key) writes the salt in its own commit when it is
//! missing or past half its life; other events read it. Erasure deletes
//! it: from then on no one, keyward included, can link an event logged
//! before to the subject, and the subject's next issuance draws a new salt.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::clock::Clock;
use crate::error::Error;
use crate::hex::{Case, decode_array, encode as hex};
use crate::keyring::KeyRing;
use crate::secret::SecretBytes;
use crate::store::{DEFAULT_MAX_RETRIES, Decision, Store, StoreError, transact};

/// The `tracing` target of every security event.
pub(crate) const TARGET: &str = "keyward::audit";

/// The label of the salt-record key (see [`KeyRing::derive`]).
const AUDIT_KEY_LABEL: &str = "audit";
/// What the salt record's key MACs before the subject.
const SALT_KEY_DOMAIN: &[u8] = b"keyward audit salt v1\0";
/// What a tag MACs before the subject.
const TAG_DOMAIN: &[u8] = b"keyward audit tag v1\0";
/// A salt lives this long after the issuance that last renewed it: 400
/// days. Logs kept for less than that always link a live subject's events.
pub(crate) const SALT_LIFETIME_SECS: u64 = 400 * 86_400;

/// The tag that a subject's audit events carry: 128 bits, shown as 32
/// lowercase hex digits. It links a subject's events to each other while
/// the subject's salt exists, and to nothing once it is erased.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct AuditTag([u8; 16]);

impl AuditTag {
    /// The tag as 32 lowercase hex digits, as events show it.
    #[must_use]
    pub fn to_hex(&self) -> String {
        hex(&self.0)
    }

    /// The tag from its 32 hex digits.
    pub(crate) fn from_hex(s: &str) -> Option<Self> {
        decode_array::<16>(s, Case::Lower).map(Self)
    }

    /// The tag from its 16 bytes, as a record keeps it.
    pub(crate) fn from_bytes(bytes: [u8; 16]) -> Self {
        Self(bytes)
    }

    /// The tag's 16 bytes.
    pub(crate) fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }
}

/// As its 32 hex digits.
impl Serialize for AuditTag {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for AuditTag {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::from_hex(&s).ok_or_else(|| serde::de::Error::custom("an audit tag is 32 hex digits"))
    }
}

impl fmt::Display for AuditTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for AuditTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AuditTag({self})")
    }
}

/// How an event shows a tag that may be missing: a subject whose salt
/// lapsed or was never written (its credentials predate audit tags) shows
/// `-` until its next issuance.
pub(crate) struct Shown(pub(crate) Option<AuditTag>);

impl fmt::Display for Shown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Some(tag) => tag.fmt(f),
            None => f.write_str("-"),
        }
    }
}

/// A subject's salt record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Salt {
    /// 16 random bytes, in hex.
    salt: String,
    /// When the record ends (seconds); an issuance past half its life
    /// renews it.
    until: u64,
}

crate::store::json_stored!(Salt);

impl Salt {
    /// The subject's tag under this salt.
    pub(crate) fn tag(&self, subject: &str) -> Result<AuditTag, StoreError> {
        let salt = decode_array::<16>(&self.salt, Case::Lower)
            .ok_or(StoreError::Corrupt("audit salt is not 32 hex digits"))?;
        Ok(AuditTag(crate::mac::tag128(
            &salt,
            &[TAG_DOMAIN, subject.as_bytes()],
        )))
    }

    /// The salt an issuance at `now` uses, and the lifetime to write it
    /// with when it must be written: a new one when none is loaded (or it
    /// has ended), the loaded one renewed past half its life.
    pub(crate) fn for_issuance(
        loaded: Option<Self>,
        now: u64,
    ) -> Result<(Self, Option<Duration>), Error> {
        let until = now.saturating_add(SALT_LIFETIME_SECS);
        let lifetime = Some(Duration::from_secs(SALT_LIFETIME_SECS));
        match loaded {
            Some(s) if s.until > now => {
                let left = s.until.saturating_sub(now);
                if left >= SALT_LIFETIME_SECS / 2 {
                    Ok((s, None))
                } else {
                    Ok((Self { until, ..s }, lifetime))
                }
            }
            _ => {
                let mut salt = [0u8; 16];
                crate::random::fill_random(&mut salt)?;
                Ok((
                    Self {
                        salt: hex(&salt),
                        until,
                    },
                    lifetime,
                ))
            }
        }
    }

    /// The tag of a salt loaded by a transaction that does not issue: none
    /// when the salt is missing or has ended.
    pub(crate) fn tag_of(loaded: Option<&Self>, subject: &str, now: u64) -> Option<AuditTag> {
        loaded
            .filter(|s| s.until > now)
            .and_then(|s| s.tag(subject).ok())
    }
}

/// Where salts are kept: the key of each subject's salt record.
#[derive(Clone)]
pub(crate) struct Audit {
    key: Arc<SecretBytes>,
}

impl fmt::Debug for Audit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Audit")
    }
}

impl Audit {
    pub(crate) fn new(keys: &KeyRing) -> Self {
        Self {
            key: Arc::new(keys.derive(AUDIT_KEY_LABEL)),
        }
    }

    /// The key of the subject's salt record.
    pub(crate) fn salt_key(&self, subject: &str) -> String {
        let at = crate::mac::tag128(
            self.key.unprotected_as_bytes(),
            &[SALT_KEY_DOMAIN, subject.as_bytes()],
        );
        format!("kw:salt:{}", hex(&at))
    }

    /// The subject's tag, when it has a salt: one load.
    pub(crate) async fn tag(
        &self,
        store: &dyn Store,
        clock: &dyn Clock,
        subject: &str,
        max_retries: u32,
    ) -> Result<Option<AuditTag>, Error> {
        let key = self.salt_key(subject);
        transact(
            store,
            clock,
            &[&key],
            max_retries,
            |(salt,): (Option<Salt>,), now| {
                Ok(Decision::only(Salt::tag_of(salt.as_ref(), subject, now)))
            },
        )
        .await
    }

    /// Deletes the subject's salt: its events can no longer be linked to
    /// it. Whether there was one.
    pub(crate) async fn erase(
        &self,
        store: &dyn Store,
        clock: &dyn Clock,
        subject: &str,
        max_retries: u32,
    ) -> Result<bool, Error> {
        let key = self.salt_key(subject);
        transact(
            store,
            clock,
            &[&key],
            max_retries,
            |(salt,): (Option<Salt>,), _now| {
                Ok(match salt {
                    Some(_) => Decision::only(true).delete(0),
                    None => Decision::only(false),
                })
            },
        )
        .await
    }
}

/// The salts of one store: the tag an operator looks up, and the
/// erasure's deletion.
#[derive(Debug)]
pub(crate) struct Salts {
    audit: Audit,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
}

impl Salts {
    pub(crate) fn new(audit: Audit, store: Arc<dyn Store>, clock: Arc<dyn Clock>) -> Self {
        Self {
            audit,
            store,
            clock,
        }
    }

    /// The subject's tag, when it has a salt.
    pub(crate) async fn tag(&self, subject: &str) -> Result<Option<AuditTag>, Error> {
        self.audit
            .tag(&*self.store, &*self.clock, subject, DEFAULT_MAX_RETRIES)
            .await
    }

    /// Deletes the subject's salt; whether there was one.
    pub(crate) async fn erase(&self, subject: &str) -> Result<bool, Error> {
        self.audit
            .erase(&*self.store, &*self.clock, subject, DEFAULT_MAX_RETRIES)
            .await
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;

    fn salt(bytes: u8, until: u64) -> Salt {
        Salt {
            salt: hex(&[bytes; 16]),
            until,
        }
    }

    #[test]
    fn a_tag_depends_on_the_salt_and_the_subject() {
        let a = salt(1, 10).tag("alice").unwrap();
        assert_eq!(a, salt(1, 99).tag("alice").unwrap(), "until is not keyed");
        assert_ne!(a, salt(2, 10).tag("alice").unwrap());
        assert_ne!(a, salt(1, 10).tag("bob").unwrap());
        assert_eq!(a.to_hex().len(), 32);
        assert_eq!(AuditTag::from_hex(&a.to_hex()), Some(a));
    }

    #[test]
    fn an_issuance_draws_keeps_or_renews_the_salt() {
        let life = SALT_LIFETIME_SECS;
        // None loaded: a fresh salt, written.
        let (fresh, ttl) = Salt::for_issuance(None, 1_000).unwrap();
        assert_eq!(ttl, Some(Duration::from_secs(life)));
        assert_eq!(fresh.until, 1_000 + life);
        // Young: kept as is, no write.
        let young = salt(3, 1_000 + life);
        let (kept, ttl) = Salt::for_issuance(Some(young.clone()), 1_000 + life / 2).unwrap();
        assert_eq!((kept, ttl), (young.clone(), None));
        // Past half its life: the same salt, renewed.
        let now = 1_000 + life / 2 + 1;
        let (renewed, ttl) = Salt::for_issuance(Some(young.clone()), now).unwrap();
        assert_eq!(renewed.salt, young.salt);
        assert_eq!(renewed.until, now + life);
        assert!(ttl.is_some());
        // Ended: a new salt.
        let (new, _) = Salt::for_issuance(Some(young.clone()), 1_000 + life).unwrap();
        assert_ne!(new.salt, young.salt);
    }

    #[test]
    fn an_ended_or_missing_salt_gives_no_tag() {
        let s = salt(4, 50);
        assert!(Salt::tag_of(Some(&s), "alice", 49).is_some());
        assert!(Salt::tag_of(Some(&s), "alice", 50).is_none());
        assert!(Salt::tag_of(None, "alice", 0).is_none());
    }

    #[test]
    fn a_salt_record_that_is_not_hex_is_corrupt() {
        let bad = Salt {
            salt: "zz".into(),
            until: 9,
        };
        assert!(bad.tag("alice").is_err());
    }

    #[test]
    fn the_record_key_names_no_subject() {
        let ring = KeyRing::generate(crate::JwtAlg::HS256).unwrap();
        let audit = Audit::new(&ring);
        let key = audit.salt_key("alice@example.com");
        assert!(key.starts_with("kw:salt:"));
        assert!(!key.contains("alice"));
        assert_eq!(key, audit.salt_key("alice@example.com"));
        assert_ne!(key, audit.salt_key("bob@example.com"));
    }
}
