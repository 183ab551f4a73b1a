//! MFA challenges: the password was right, and the session waits for the
//! subject's second factor.
//!
//! A login that passes the password check for a subject with a second
//! factor hands out a challenge instead of tokens:
//! `kwm_<id>_<subject>_<mac>`: a 128-bit random id, the subject in hex
//! (the client sees no more of it than an access token's `sub` shows), and
//! an HMAC-SHA256 under the session key over both. The store keeps
//! `kw:mfa:<id>` for [`MFA_CHALLENGE_TTL_SECS`], with the first factor's
//! method and the time: nothing that names the subject. The client sends the challenge
//! back with a code; [`Sessions::start_after_challenge`] deletes the record
//! in the commit that starts the session, so a challenge starts one session
//! at most, on any replica, and a start that fails does not use it up.
//!
//! So an erasure leaves nothing of the subject behind in a pending
//! challenge; with the subject's factor gone, no proof can use it.

use super::*;

/// How long a challenge waits for its second factor: 5 minutes.
pub const MFA_CHALLENGE_TTL_SECS: u64 = 300;

const CHALLENGE_PREFIX: &str = "kwm";
const CHALLENGE_DOMAIN: &[u8] = b"keyward mfa challenge v1\0";

crate::secret::secret_type! {
    /// An MFA challenge: the short-lived bearer credential a login hands
    /// out in place of tokens when the subject has a second factor.
    /// Redacted `Debug`, zeroized on drop.
    pub struct MfaChallenge(String);
    /// The challenge string, to hand to the client.
    fn unprotected_as_str;
}

/// What the store keeps of a challenge.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Challenge {
    /// The first factor's RFC 8176 methods: `pwd` or `otp`.
    pub(super) first: Vec<String>,
    /// When the first factor was checked, in store seconds.
    pub(super) created: u64,
    /// The claims the first factor's proof carried, for the session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) claims: Option<SessionClaims>,
}

crate::store::json_stored!(Challenge);

/// The record, unless it is past its lifetime at `now` (the store's own
/// expiry removes it too, on its own clock).
pub(super) fn live(record: Option<Challenge>, now: u64) -> Option<Challenge> {
    record.filter(|r| now < r.created.saturating_add(MFA_CHALLENGE_TTL_SECS))
}

pub(super) fn challenge_key(id: &[u8; 16]) -> String {
    format!("kw:mfa:{}", hex(id))
}

/// `HMAC-SHA256(key, domain ‖ id ‖ subject)`: the id has a fixed length,
/// so the subject after it is unambiguous.
fn challenge_mac(key: &[u8], id: &[u8; 16], subject: &str) -> [u8; 32] {
    crate::mac::hmac_sha256(key, &[CHALLENGE_DOMAIN, id, subject.as_bytes()])
}

/// The id and subject of a presented challenge, after its shape and MAC,
/// before any I/O.
fn parse_challenge(key: &[u8], challenge: &str) -> Result<([u8; 16], String), Error> {
    let invalid = || Error::Session(SessionError::ChallengeInvalid);
    // 3 + 1 + 32 + 1 + 2 × 1,024 + 1 + 64.
    if challenge.len() > 2_150 {
        return Err(invalid());
    }
    let mut parts = challenge.split('_');
    let (Some(CHALLENGE_PREFIX), Some(id), Some(subject), Some(mac), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return Err(invalid());
    };
    let id = unhex::<16>(id).ok_or_else(invalid)?;
    let mac = unhex::<32>(mac).ok_or_else(invalid)?;
    let subject = crate::hex::decode_vec(subject).ok_or_else(invalid)?;
    let ok = crate::mac::verify_hmac_sha256(key, &[CHALLENGE_DOMAIN, &id, &subject], &mac);
    if !ok {
        return Err(invalid());
    }
    // A MAC under keyward's key: keyward wrote it from a `&str`.
    let subject = String::from_utf8(subject).map_err(|_| invalid())?;
    Ok((id, subject))
}

impl Sessions {
    /// After a password check for a subject who has a second factor: a
    /// challenge to hand to the client instead of tokens. It is good for
    /// [`MFA_CHALLENGE_TTL_SECS`] and for one session, which
    /// [`start_after_challenge`](Self::start_after_challenge) starts once
    /// the subject's second factor is checked.
    ///
    /// ```
    /// # use keyward::{JwtAlg, KeyRing, Keyward, MemoryStore, PasswordPolicy};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), keyward::Error> {
    /// # let mut policy = PasswordPolicy::default();
    /// # policy.iterations = 1_000; // fast for the example
    /// # let kw = Keyward::builder()
    /// #     .password_policy(policy)
    /// #     .issuer("https://auth.example")
    /// #     .audience("api")
    /// #     .store(MemoryStore::new())
    /// #     .keys(KeyRing::generate(JwtAlg::EdDSA)?)
    /// #     .build()?;
    /// # let password = keyward::Password::from("correct horse battery staple");
    /// # let stored = kw.passwords().hash(&password)?;
    /// # let totp = kw.totp();
    /// # let enrollment = totp.enroll("ada", "Example", "ada").await?;
    /// # let code = totp.dangerous_code_now(&enrollment)?;
    /// # let recovery = totp.confirm("ada", &code).await?;
    /// let sessions = kw.sessions();
    /// // POST /login: the password is right, and ada has a second factor.
    /// let verified = kw.passwords().verify("ada", &password, &stored)?;
    /// let challenge = sessions.challenge(&verified).await?;
    /// // POST /login/mfa, with the challenge and a recovery code (or a TOTP
    /// // code, through `totp.verify`).
    /// let presented = challenge.unprotected_as_str();
    /// let subject = sessions.challenge_subject(presented).await?;
    /// let second = totp.recover(&subject, recovery.codes()[0].unprotected_as_str()).await?;
    /// let pair = sessions.start_after_challenge(presented, second, None).await?;
    /// let claims = kw.jwt().verify(pair.access.unprotected_as_str())?;
    /// assert!(claims.is_mfa());
    /// // A challenge starts one session, even with another proof.
    /// let again = totp.recover(&subject, recovery.codes()[1].unprotected_as_str()).await?;
    /// assert!(sessions.start_after_challenge(presented, again, None).await.is_err());
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for an empty subject or one over 1,024 bytes;
    /// [`Error::Store`], [`Error::Busy`], [`Error::Rng`].
    pub async fn challenge(&self, proof: &Verified) -> Result<MfaChallenge, Error> {
        self.challenge_inner(proof.subject(), amr::PWD, proof.claims())
            .await
    }

    /// [`challenge`](Self::challenge) after a login code in place of the
    /// password ([`start_with_otp`](Self::start_with_otp)'s counterpart for
    /// a subject with a second factor): an emailed code does not get round
    /// the second factor. The proof is used up.
    ///
    /// # Errors
    /// [`Error::Otp`] with [`OtpError::NotForLogin`] when the code was
    /// issued for another purpose; otherwise as
    /// [`challenge`](Self::challenge).
    pub async fn challenge_after_otp(&self, proof: OtpVerified) -> Result<MfaChallenge, Error> {
        if *proof.purpose() != Purpose::Login {
            return Err(OtpError::NotForLogin.into());
        }
        self.challenge_inner(proof.subject(), amr::OTP, proof.claims())
            .await
    }

    async fn challenge_inner(
        &self,
        subject: &str,
        first: &str,
        claims: Option<&SessionClaims>,
    ) -> Result<MfaChallenge, Error> {
        if subject.is_empty() || subject.len() > 1024 {
            return Err(Error::InvalidInput(
                "subject must be 1 to 1024 bytes".into(),
            ));
        }
        let mut id = [0u8; 16];
        crate::random::fill_random(&mut id)?;
        let key = challenge_key(&id);
        transact(
            &*self.inner.store,
            &*self.inner.clock,
            &[&key],
            self.inner.policy.max_retries,
            |(existing,): (Option<Challenge>,), now| {
                if existing.is_some() {
                    // 128 random bits collided: refuse rather than share.
                    return Err(StoreError::Corrupt("challenge id collision").into());
                }
                let record = Challenge {
                    first: vec![first.to_owned()],
                    created: now,
                    claims: claims.cloned(),
                };
                Ok(Decision::only(()).write(
                    0,
                    &record,
                    Duration::from_secs(MFA_CHALLENGE_TTL_SECS),
                )?)
            },
        )
        .await?;
        let mac = challenge_mac(self.inner.mac_key.unprotected_as_bytes(), &id, subject);
        Ok(MfaChallenge(format!(
            "{CHALLENGE_PREFIX}_{}_{}_{}",
            hex(&id),
            hex(subject.as_bytes()),
            hex(&mac)
        )))
    }

    /// The subject a live challenge is for: whose second factor to check.
    /// The challenge stays live.
    ///
    /// # Errors
    /// [`SessionError::ChallengeInvalid`] for a challenge keyward did not
    /// issue, or one expired or used; [`Error::Store`].
    pub async fn challenge_subject(&self, challenge: &str) -> Result<String, Error> {
        let (id, subject) = parse_challenge(self.inner.mac_key.unprotected_as_bytes(), challenge)?;
        self.pending(&challenge_key(&id)).await?;
        Ok(subject)
    }

    /// The live challenge at `key`.
    async fn pending(&self, key: &str) -> Result<Challenge, Error> {
        transact(
            &*self.inner.store,
            &*self.inner.clock,
            &[key],
            self.inner.policy.max_retries,
            |(record,): (Option<Challenge>,), now| match live(record, now) {
                Some(r) => Ok(Decision::only(r)),
                None => Err(SessionError::ChallengeInvalid.into()),
            },
        )
        .await
    }

    /// Starts the session a challenge waits for, with the subject's second
    /// factor: the access tokens carry `amr` (RFC 8176) with the first
    /// factor's method (`pwd` or `otp`), the second's, and `mfa`, as those
    /// of [`start_with_second_factor`](Self::start_with_second_factor) do.
    /// The challenge is used up by the commit that starts the session, so
    /// it starts one session at most, and a start that fails leaves it
    /// live for another try. The proof is used up. `meta` is kept with the
    /// session as in [`start_with_meta`](Self::start_with_meta).
    ///
    /// # Errors
    /// [`SessionError::ChallengeInvalid`] for a challenge keyward did not
    /// issue, or one expired or used; [`Error::InvalidInput`] when
    /// `second` is for another subject than the challenge (the challenge
    /// stays live), or for `meta` that is empty, over 256 bytes or has
    /// control characters; [`Error::Erasing`]; [`Error::Store`],
    /// [`Error::Busy`], [`Error::Rng`].
    pub async fn start_after_challenge(
        &self,
        challenge: &str,
        second: impl SecondFactor,
        meta: Option<&str>,
    ) -> Result<TokenPair, Error> {
        if let Some(meta) = meta {
            check_meta(meta)?;
        }
        let (id, subject) = parse_challenge(self.inner.mac_key.unprotected_as_bytes(), challenge)?;
        if subject != second.subject() {
            return Err(Error::InvalidInput(
                "the second-factor proof is for another subject than the challenge".into(),
            ));
        }
        let key = challenge_key(&id);
        let pending = self.pending(&key).await?;
        let first: Vec<&str> = pending.first.iter().map(String::as_str).collect();
        let amr = with_second(&first, &second);
        self.start_guarded(
            second.subject(),
            meta,
            &amr,
            Some(&key),
            pending.claims.as_ref(),
        )
        .await
    }
}
