//! Sessions: an access JWT plus a rotating refresh token, with reuse
//! detection (RFC 9700 §4.14.2).
//!
//! A login starts a *family*: the chain of refresh tokens it will ever
//! issue. Every refresh rotates. A spent token presented again outside the
//! grace window revokes the whole family, including the live token. Inside
//! the grace window (10 s), the immediate predecessor gets the *same*
//! successor back, so two browser tabs refreshing at once converge and the
//! family never forks.
//!
//! Nothing stored lets a database reader present a live token: refresh
//! tokens are `HMAC-SHA256(server key, family ‖ generation)`, derived again
//! when presented, and the family record holds only ids, counters and
//! times.
//!
//! The rules are a pure state machine ([`decide`]) over the family record;
//! the [`Sessions`] service runs it as load, decide, compare-and-swap on a
//! [`Store`], so the outcome is exact across threads, processes and
//! replicas. Any storage error fails closed.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::clock::Clock;
use crate::error::Error;
use crate::error::OtpError;
use crate::hex::{Case, decode_array as unhex_case, encode as hex};
use crate::jwt::{AccessClaims, AccessToken, Jwt};
use crate::otp::{OtpVerified, Purpose};
use crate::password::Verified;
use crate::secret::SecretBytes;
use crate::store::{Store, StoreError, Swap};

pub use crate::error::SessionError;

/// Grace window for the immediate predecessor: 10 s (Auth0 and Supabase use
/// windows of this order for concurrent refreshes).
pub const DEFAULT_REUSE_GRACE_SECS: u64 = 10;
/// A family unused this long expires: 14 days.
pub const DEFAULT_IDLE_TTL_SECS: u64 = 14 * 86_400;
/// A family expires this long after login, however active: 30 days.
pub const DEFAULT_ABSOLUTE_TTL_SECS: u64 = 30 * 86_400;
/// Compare-and-swap attempts before a refresh gives up with `Busy`.
pub const DEFAULT_MAX_RETRIES: u32 = 32;

const TOKEN_PREFIX: &str = "kwr";
const TOKEN_DOMAIN: &[u8] = b"keyward refresh token v1\0";
const SUBJECT_DOMAIN: &[u8] = b"keyward subject tag v1\0";

/// Refresh-token lifetimes and the grace window.
#[derive(Debug, Clone, PartialEq, Eq)]
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
        }
    }
}

/// The stored state of one family. No token material.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Family {
    /// The subject (user) the family belongs to.
    pub subject: String,
    /// The subject's revocation epoch when the family started; a later
    /// revoke-all raises the subject's epoch above it.
    pub epoch: u64,
    /// Login time.
    pub created: u64,
    /// Time of the last rotation (or login).
    pub last_used: u64,
    /// Generation of the one live refresh token.
    pub generation: u64,
    /// Whether the family is revoked.
    pub revoked: bool,
}

/// What a presented refresh token leads to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome {
    /// The live token: the family moves to this generation.
    Rotated {
        /// The new live generation.
        generation: u64,
    },
    /// The immediate predecessor within the grace window: the same
    /// successor (this generation) again, and no change.
    GraceReplay {
        /// The live generation, handed out again.
        generation: u64,
    },
    /// A spent token outside the grace window: revoke the family.
    Reused,
    /// Past the idle or absolute lifetime.
    Expired,
    /// Revoked before.
    Revoked,
    /// A generation never issued.
    Invalid,
}

/// The pure refresh rule. Given the family, the presented generation (its
/// MAC already checked), the subject's current epoch and the time, returns
/// the record to write, if any, and the outcome.
#[must_use]
pub fn decide(
    family: &Family,
    presented: u64,
    subject_epoch: u64,
    now: u64,
    policy: &SessionPolicy,
) -> (Option<Family>, Outcome) {
    match liveness(family, subject_epoch, now, policy) {
        Ok(()) => {}
        Err(SessionError::Expired) => return (None, Outcome::Expired),
        Err(_) => return (None, Outcome::Revoked),
    }
    if presented == family.generation {
        let generation = family.generation.saturating_add(1);
        let next = Family {
            generation,
            last_used: now,
            ..family.clone()
        };
        return (Some(next), Outcome::Rotated { generation });
    }
    let immediate_predecessor = presented.checked_add(1) == Some(family.generation);
    let within_grace = now < family.last_used.saturating_add(policy.reuse_grace_secs);
    if immediate_predecessor && within_grace {
        return (
            None,
            Outcome::GraceReplay {
                generation: family.generation,
            },
        );
    }
    if presented < family.generation {
        return (
            Some(Family {
                revoked: true,
                ..family.clone()
            }),
            Outcome::Reused,
        );
    }
    (None, Outcome::Invalid)
}

/// Whether a family can still refresh at `now`: [`SessionError::Revoked`]
/// when it was revoked or a revoke-all raised the subject's epoch past it,
/// [`SessionError::Expired`] past its idle or absolute lifetime. The first rule of [`decide`], and the
/// whole of [`Sessions::authenticate_strict`]'s check, so the two can never
/// disagree about a family.
fn liveness(
    family: &Family,
    subject_epoch: u64,
    now: u64,
    policy: &SessionPolicy,
) -> Result<(), SessionError> {
    if family.revoked || family.epoch < subject_epoch {
        return Err(SessionError::Revoked);
    }
    let absolute_end = family.created.saturating_add(policy.absolute_ttl_secs);
    let idle_end = family.last_used.saturating_add(policy.idle_ttl_secs);
    if now >= absolute_end || now >= idle_end {
        return Err(SessionError::Expired);
    }
    Ok(())
}

/// A refresh token: a bearer credential. Redacted `Debug`, zeroized on drop.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct RefreshToken(String);

impl RefreshToken {
    /// Wraps a token received from a client.
    #[must_use]
    pub fn new(token: String) -> Self {
        Self(token)
    }

    /// The token string, to hand to the client.
    #[must_use]
    pub fn unprotected_as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for RefreshToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RefreshToken(OMITTED)")
    }
}

/// What a login or a refresh hands to the client.
#[derive(Debug)]
#[non_exhaustive]
pub struct TokenPair {
    /// The access JWT.
    pub access: AccessToken,
    /// The refresh token.
    pub refresh: RefreshToken,
    /// Access-token lifetime in seconds.
    pub expires_in: u64,
    /// The session (family) id: public, safe to log.
    pub session_id: String,
}

/// The parts of a refresh token.
struct Parsed {
    subject_tag: [u8; 16],
    family: [u8; 16],
    generation: u64,
}

#[derive(Serialize, Deserialize, Default)]
struct SubjectRecord {
    epoch: u64,
}

/// The session service. Reached through
/// [`Keyward::sessions`](crate::Keyward::sessions). Cheap to clone.
#[derive(Clone)]
pub struct Sessions {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn Store>,
    jwt: Arc<Jwt>,
    mac_key: SecretBytes,
    policy: SessionPolicy,
    clock: Arc<dyn Clock>,
}

impl fmt::Debug for Sessions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sessions")
            .field("store", &self.inner.store)
            .field("policy", &self.inner.policy)
            .finish_non_exhaustive()
    }
}

fn unhex<const N: usize>(s: &str) -> Option<[u8; N]> {
    unhex_case::<N>(s, Case::Lower)
}

fn family_key(family: &[u8; 16]) -> String {
    format!("kw:fam:{}", hex(family))
}

fn subject_key(tag: &[u8; 16]) -> String {
    format!("kw:subj:{}", hex(tag))
}

impl Sessions {
    pub(crate) fn new(
        store: Arc<dyn Store>,
        jwt: Arc<Jwt>,
        mac_key: &SecretBytes,
        policy: SessionPolicy,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, Error> {
        policy.validate()?;
        let mac_key = SecretBytes::new(mac_key.unprotected_as_bytes().to_vec());
        Ok(Self {
            inner: Arc::new(Inner {
                store,
                jwt,
                mac_key,
                policy,
                clock,
            }),
        })
    }

    /// The policy in force.
    #[must_use]
    pub fn policy(&self) -> &SessionPolicy {
        &self.inner.policy
    }

    /// Starts a session for `subject` after a password check: a new family,
    /// its first refresh token and an access token. Requires the
    /// [`Verified`] proof, so tokens cannot be minted without a check.
    ///
    /// # Errors
    /// [`Error::Store`] when the store fails (no token is minted),
    /// [`Error::Config`] for an empty subject, [`Error::Rng`].
    pub async fn start(&self, _proof: &Verified, subject: &str) -> Result<TokenPair, Error> {
        self.start_inner(subject).await
    }

    /// DANGER: starts a session without a password proof. For operator
    /// tools and for login paths with their own proof (a one-time code).
    ///
    /// # Errors
    /// As [`start`](Self::start).
    pub async fn dangerous_start_without_proof(&self, subject: &str) -> Result<TokenPair, Error> {
        self.start_inner(subject).await
    }

    /// Starts a session for the subject of a login code: the one-time-code
    /// counterpart of [`start`](Sessions::start). The proof is used up.
    ///
    /// # Errors
    /// [`Error::Otp`] with [`OtpError::NotForLogin`] when the code was
    /// issued for another purpose (nothing is minted); otherwise as
    /// [`start`](Sessions::start).
    pub async fn start_with_otp(&self, proof: OtpVerified) -> Result<TokenPair, Error> {
        if *proof.purpose() != Purpose::Login {
            return Err(OtpError::NotForLogin.into());
        }
        self.start_inner(proof.subject()).await
    }

    async fn start_inner(&self, subject: &str) -> Result<TokenPair, Error> {
        if subject.is_empty() || subject.len() > 1024 {
            return Err(Error::Config("subject must be 1 to 1024 bytes".into()));
        }
        let now = self.inner.clock.now();
        let tag = self.subject_tag(subject);
        let epoch = self.subject_epoch(&tag).await?;
        let mut family_id = [0u8; 16];
        crate::random::fill_random(&mut family_id)?;
        let family = Family {
            subject: subject.to_owned(),
            epoch,
            created: now,
            last_used: now,
            generation: 0,
            revoked: false,
        };
        let value = encode(&family)?;
        match self
            .inner
            .store
            .swap(
                &family_key(&family_id),
                None,
                &value,
                self.record_ttl(&family, now),
            )
            .await?
        {
            Swap::Swapped { .. } => {}
            // 128 random bits collided: refuse rather than share a family.
            Swap::Conflict => return Err(StoreError::Corrupt("session id collision").into()),
        }
        let session_id = hex(&family_id);
        tracing::info!(session = %session_id, subject = %subject, "session started");
        self.pair(
            &Parsed {
                subject_tag: tag,
                family: family_id,
                generation: 0,
            },
            subject,
        )
    }

    /// Rotates a refresh token: a new pair, or a [`SessionError`].
    ///
    /// # Errors
    /// [`Error::Session`] with `Reused` (the family is now revoked),
    /// `Expired`, `Revoked` or `Invalid`; [`Error::Store`] when the store
    /// fails (fail closed: nothing is issued); [`Error::Busy`] after
    /// `max_retries` lost compare-and-swaps.
    pub async fn refresh(&self, refresh_token: &str) -> Result<TokenPair, Error> {
        let parsed = self.parse(refresh_token)?;
        let fam_key = family_key(&parsed.family);
        let subj_key = subject_key(&parsed.subject_tag);
        for _ in 0..self.inner.policy.max_retries {
            let records = self
                .inner
                .store
                .load_many(&[&fam_key, &subj_key])
                .await?
                .records;
            let mut records = records.into_iter();
            let Some(Some(record)) = records.next() else {
                // The MAC proves keyward issued it; the record is gone only
                // once the family outlived its store TTL.
                return Err(SessionError::Expired.into());
            };
            let epoch = subject_epoch_of(records.next().flatten())?;
            let family: Family = decode(&record.value)?;
            // The token names its subject; a record naming another one was
            // written by someone other than keyward (a store writer moving a
            // family, and the tokens of whoever holds it, to another user).
            let tag = self.subject_tag(&family.subject);
            if !bool::from(subtle::ConstantTimeEq::ct_eq(
                &tag[..],
                &parsed.subject_tag[..],
            )) {
                return Err(StoreError::Corrupt("family record does not match the token").into());
            }
            let now = self.inner.clock.now();
            let (next, outcome) =
                decide(&family, parsed.generation, epoch, now, &self.inner.policy);
            if let Some(next) = &next {
                let value = encode(next)?;
                let ttl = self.record_ttl(next, now);
                if self
                    .inner
                    .store
                    .swap(&fam_key, Some(record.version), &value, ttl)
                    .await?
                    == Swap::Conflict
                {
                    continue;
                }
            }
            let session = hex(&parsed.family);
            return match outcome {
                Outcome::Rotated { generation } | Outcome::GraceReplay { generation } => {
                    if matches!(outcome, Outcome::Rotated { .. }) {
                        tracing::info!(session = %session, subject = %family.subject, generation, "refresh token rotated");
                    } else {
                        tracing::info!(session = %session, subject = %family.subject, generation, "refresh grace replay");
                    }
                    self.pair(
                        &Parsed {
                            generation,
                            ..parsed
                        },
                        &family.subject,
                    )
                }
                Outcome::Reused => {
                    tracing::warn!(session = %session, subject = %family.subject, "refresh token reuse detected; session family revoked");
                    Err(SessionError::Reused.into())
                }
                Outcome::Expired => Err(SessionError::Expired.into()),
                Outcome::Revoked => Err(SessionError::Revoked.into()),
                Outcome::Invalid => Err(SessionError::Invalid.into()),
            };
        }
        Err(Error::Busy)
    }

    /// Revokes the family of a refresh token (logout). Returns the session
    /// id. Revoking a revoked family succeeds again.
    ///
    /// # Errors
    /// [`Error::Session`] with `Invalid` or `Expired`; [`Error::Store`];
    /// [`Error::Busy`] under extreme contention.
    pub async fn revoke(&self, refresh_token: &str) -> Result<String, Error> {
        let parsed = self.parse(refresh_token)?;
        let fam_key = family_key(&parsed.family);
        let session = hex(&parsed.family);
        for _ in 0..self.inner.policy.max_retries {
            let Some(record) = self.inner.store.load(&fam_key).await? else {
                return Err(SessionError::Expired.into());
            };
            let family: Family = decode(&record.value)?;
            if family.revoked {
                return Ok(session);
            }
            let now = self.inner.clock.now();
            let next = Family {
                revoked: true,
                ..family
            };
            let value = encode(&next)?;
            let ttl = self.record_ttl(&next, now);
            if let Swap::Swapped { .. } = self
                .inner
                .store
                .swap(&fam_key, Some(record.version), &value, ttl)
                .await?
            {
                tracing::info!(session = %session, subject = %next.subject, "session revoked");
                return Ok(session);
            }
        }
        Err(Error::Busy)
    }

    /// Revokes every family of `subject` (logout everywhere, password
    /// change), without listing them: the subject's epoch moves past every
    /// existing family's.
    ///
    /// # Errors
    /// [`Error::Store`]; [`Error::Busy`] under extreme contention.
    pub async fn revoke_all(&self, subject: &str) -> Result<(), Error> {
        let key = subject_key(&self.subject_tag(subject));
        // Outlive every family that could still be alive.
        let ttl = Duration::from_secs(self.inner.policy.absolute_ttl_secs.saturating_add(86_400));
        for _ in 0..self.inner.policy.max_retries {
            let record = self.inner.store.load(&key).await?;
            let old = match &record {
                Some(r) => decode::<SubjectRecord>(&r.value)?.epoch,
                None => 0,
            };
            // Strictly above every epoch handed out so far, and above the
            // clock, so it stays above them after the record expires and is
            // created again.
            let epoch = old.saturating_add(1).max(self.inner.clock.now());
            let value = encode(&SubjectRecord { epoch })?;
            if let Swap::Swapped { .. } = self
                .inner
                .store
                .swap(&key, record.map(|r| r.version), &value, ttl)
                .await?
            {
                tracing::info!(subject = %subject, "all sessions of subject revoked");
                return Ok(());
            }
        }
        Err(Error::Busy)
    }

    /// Verifies an access token, statelessly: signature, claims, expiry.
    /// A revoked session's access tokens stay valid until they expire
    /// (at most the access-token lifetime); use
    /// [`authenticate_strict`](Self::authenticate_strict) where that matters.
    ///
    /// # Errors
    /// [`Error::Jwt`] with the reason.
    pub fn authenticate(&self, access_token: &str) -> Result<AccessClaims, Error> {
        self.inner.jwt.verify(access_token)
    }

    /// Verifies an access token and checks, in one store round trip, that
    /// its session is still alive: exactly the check the session's next
    /// [`refresh`](Self::refresh) would make first. A session that refresh
    /// would call `Revoked` (logout, reuse, revoke-all) or `Expired` (past
    /// its idle or absolute lifetime) is refused with that same reason, even
    /// while the access token itself has not expired.
    ///
    /// # Errors
    /// [`Error::Jwt`]; [`Error::Session`] with `Revoked` or `Expired`;
    /// [`Error::Store`] (fail closed).
    pub async fn authenticate_strict(&self, access_token: &str) -> Result<AccessClaims, Error> {
        let claims = self.inner.jwt.verify(access_token)?;
        let family = unhex::<16>(&claims.sid).ok_or(SessionError::Revoked)?;
        let tag = self.subject_tag(&claims.sub);
        let (fam_key, subj_key) = (family_key(&family), subject_key(&tag));
        let records = self
            .inner
            .store
            .load_many(&[&fam_key, &subj_key])
            .await?
            .records;
        let mut records = records.into_iter();
        let Some(Some(record)) = records.next() else {
            return Err(SessionError::Expired.into());
        };
        let epoch = subject_epoch_of(records.next().flatten())?;
        let family: Family = decode(&record.value)?;
        if family.subject != claims.sub {
            return Err(SessionError::Revoked.into());
        }
        let now = self.inner.clock.now();
        liveness(&family, epoch, now, &self.inner.policy)?;
        Ok(claims)
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

    async fn subject_epoch(&self, tag: &[u8; 16]) -> Result<u64, Error> {
        subject_epoch_of(self.inner.store.load(&subject_key(tag)).await?)
    }

    fn token_mac(&self, p: &Parsed) -> [u8; 32] {
        crate::mac::hmac_sha256(
            self.inner.mac_key.unprotected_as_bytes(),
            &[
                TOKEN_DOMAIN,
                &p.subject_tag,
                &p.family,
                &p.generation.to_be_bytes(),
            ],
        )
    }

    fn token(&self, p: &Parsed) -> RefreshToken {
        RefreshToken(format!(
            "{TOKEN_PREFIX}_{}_{}_{}_{}",
            hex(&p.subject_tag),
            hex(&p.family),
            p.generation,
            hex(&self.token_mac(p))
        ))
    }

    /// Checks the shape and MAC of a presented token, before any I/O.
    fn parse(&self, token: &str) -> Result<Parsed, Error> {
        let invalid = || Error::Session(SessionError::Invalid);
        if token.len() > 256 {
            return Err(invalid());
        }
        let mut parts = token.split('_');
        let (Some(TOKEN_PREFIX), Some(tag), Some(fam), Some(generation), Some(mac), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(invalid());
        };
        let canonical = !generation.is_empty()
            && generation.len() <= 19
            && generation.bytes().all(|b| b.is_ascii_digit())
            && (generation == "0" || !generation.starts_with('0'));
        if !canonical {
            return Err(invalid());
        }
        let parsed = Parsed {
            subject_tag: unhex::<16>(tag).ok_or_else(invalid)?,
            family: unhex::<16>(fam).ok_or_else(invalid)?,
            generation: generation.parse().map_err(|_| invalid())?,
        };
        let mac = unhex::<32>(mac).ok_or_else(invalid)?;
        let key = self.inner.mac_key.unprotected_as_bytes();
        let ok = crate::mac::verify_hmac_sha256(
            key,
            &[
                TOKEN_DOMAIN,
                &parsed.subject_tag,
                &parsed.family,
                &parsed.generation.to_be_bytes(),
            ],
            &mac,
        );
        if ok { Ok(parsed) } else { Err(invalid()) }
    }

    fn pair(&self, p: &Parsed, subject: &str) -> Result<TokenPair, Error> {
        let session_id = hex(&p.family);
        let access = self.inner.jwt.issue(subject, &session_id)?;
        Ok(TokenPair {
            access,
            refresh: self.token(p),
            expires_in: self.inner.jwt.policy().access_ttl(),
            session_id,
        })
    }

    /// How long the store keeps a family: until its absolute end, so that
    /// reuse of a revoked family's tokens is still recognised until then.
    fn record_ttl(&self, family: &Family, now: u64) -> Duration {
        let end = family
            .created
            .saturating_add(self.inner.policy.absolute_ttl_secs);
        Duration::from_secs(end.saturating_sub(now).max(1))
    }
}

fn subject_epoch_of(record: Option<crate::store::Record>) -> Result<u64, Error> {
    Ok(match record {
        Some(r) => decode::<SubjectRecord>(&r.value)?.epoch,
        None => 0,
    })
}

fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, Error> {
    serde_json::to_vec(value).map_err(|_| StoreError::Corrupt("cannot encode record").into())
}

fn decode<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> Result<T, Error> {
    serde_json::from_slice(bytes).map_err(|_| StoreError::Corrupt("record does not decode").into())
}

#[cfg(test)]
#[allow(
    clippy::arithmetic_side_effects,
    reason = "test arithmetic on small, bounded values"
)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn family(now: u64) -> Family {
        Family {
            subject: "u".into(),
            epoch: 0,
            created: now,
            last_used: now,
            generation: 0,
            revoked: false,
        }
    }

    #[test]
    fn the_rules_one_by_one() {
        let p = SessionPolicy::default();
        let f = family(1_000);
        let (next, out) = decide(&f, 0, 0, 1_001, &p);
        assert_eq!(out, Outcome::Rotated { generation: 1 });
        let f1 = next.expect("rotation writes");
        assert_eq!((f1.generation, f1.last_used), (1, 1_001));
        // The predecessor inside the grace window: the same successor.
        assert_eq!(
            decide(&f1, 0, 0, 1_010, &p),
            (None, Outcome::GraceReplay { generation: 1 })
        );
        // …and outside it: reuse, which revokes.
        let (revoked, out) = decide(&f1, 0, 0, 1_011, &p);
        assert_eq!(out, Outcome::Reused);
        assert!(revoked.expect("reuse writes").revoked);
        // A generation never issued.
        assert_eq!(decide(&f1, 7, 0, 1_002, &p), (None, Outcome::Invalid));
        // Revoke-all raised the subject's epoch.
        assert_eq!(decide(&f1, 1, 5, 1_002, &p), (None, Outcome::Revoked));
        // Idle and absolute lifetimes.
        assert_eq!(
            decide(&f1, 1, 0, 1_001 + p.idle_ttl_secs, &p).1,
            Outcome::Expired
        );
        let busy = Family {
            last_used: 1_000 + p.absolute_ttl_secs - 5,
            ..f1.clone()
        };
        assert_eq!(
            decide(&busy, 1, 0, 1_000 + p.absolute_ttl_secs, &p).1,
            Outcome::Expired
        );
        // Grace 0: any replay is reuse.
        let strict = SessionPolicy {
            reuse_grace_secs: 0,
            ..SessionPolicy::default()
        };
        assert_eq!(decide(&f1, 0, 0, 1_001, &strict).1, Outcome::Reused);
    }

    #[derive(Debug, Clone)]
    enum Step {
        Current,
        Predecessor,
        Older(u64),
        Forged(u64),
        Revoke,
        RevokeAll,
        Wait(u64),
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            4 => Just(Step::Current),
            2 => Just(Step::Predecessor),
            1 => (2u64..5).prop_map(Step::Older),
            1 => (1u64..3).prop_map(Step::Forged),
            1 => Just(Step::Revoke),
            1 => Just(Step::RevokeAll),
            3 => prop_oneof![0u64..20, 0u64..2_000_000].prop_map(Step::Wait),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2_000))]

        /// Random sequences of refreshes (current, predecessor, older,
        /// forged), revokes, revoke-alls and time jumps against the machine.
        #[test]
        fn invariants_hold(steps in proptest::collection::vec(step(), 1..60), grace in 0u64..15) {
            let policy = SessionPolicy { reuse_grace_secs: grace, ..SessionPolicy::default() };
            let mut now = 1_000_000u64;
            let mut fam = family(now);
            let mut subject_epoch = 0u64;
            // Generations handed out so far; the live one is the last.
            let mut issued: Vec<u64> = vec![0];
            for step in steps {
                let before = fam.clone();
                let presented = match step {
                    Step::Current => Some(fam.generation),
                    Step::Predecessor => fam.generation.checked_sub(1),
                    Step::Older(k) => fam.generation.checked_sub(k),
                    Step::Forged(k) => Some(fam.generation + k),
                    Step::Revoke => { fam.revoked = true; None }
                    Step::RevokeAll => { subject_epoch = subject_epoch.max(now).max(fam.epoch + 1); None }
                    Step::Wait(s) => { now += s; None }
                };
                let Some(presented) = presented else { continue };
                let dead = before.revoked
                    || before.epoch < subject_epoch
                    || now >= before.created + policy.absolute_ttl_secs
                    || now >= before.last_used + policy.idle_ttl_secs;
                let (next, outcome) = decide(&before, presented, subject_epoch, now, &policy);
                // Nothing expired or revoked ever refreshes.
                if dead {
                    prop_assert!(matches!(outcome, Outcome::Expired | Outcome::Revoked), "{outcome:?}");
                    prop_assert!(next.is_none());
                }
                match outcome {
                    Outcome::Rotated { generation } => {
                        prop_assert_eq!(presented, before.generation);
                        prop_assert_eq!(generation, before.generation + 1);
                        issued.push(generation);
                    }
                    Outcome::GraceReplay { generation } => {
                        // The same successor, never a new one: no fork.
                        prop_assert_eq!(generation, before.generation);
                        prop_assert_eq!(presented + 1, before.generation);
                        prop_assert!(now < before.last_used + grace);
                        prop_assert!(next.is_none());
                    }
                    Outcome::Reused => {
                        // Reuse outside the grace window always ends the family.
                        prop_assert!(presented < before.generation);
                        prop_assert!(next.as_ref().is_some_and(|n| n.revoked));
                    }
                    Outcome::Invalid => prop_assert!(presented > before.generation),
                    Outcome::Expired | Outcome::Revoked => prop_assert!(dead),
                }
                if let Some(n) = next { fam = n; }
                // At most one live token: only the latest generation rotates.
                prop_assert_eq!(issued.last().copied(), Some(fam.generation));
                prop_assert!(issued.windows(2).all(|w| w[1] == w[0] + 1));
            }
        }
    }
}
