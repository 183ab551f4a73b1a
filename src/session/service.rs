//! The service: each transition is one transaction on the store.

use super::*;

/// The session service. Reached through
/// [`Keyward::sessions`](crate::Keyward::sessions). Cheap to clone.
#[derive(Clone)]
pub struct Sessions {
    pub(super) inner: Arc<Inner>,
}

pub(super) struct Inner {
    pub(super) store: Arc<dyn Store>,
    jwt: Arc<Jwt>,
    pub(super) mac_key: SecretBytes,
    pub(super) policy: SessionPolicy,
    pub(super) clock: Arc<dyn Clock>,
    pub(super) audit: Audit,
}

impl fmt::Debug for Sessions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sessions")
            .field("store", &self.inner.store)
            .field("policy", &self.inner.policy)
            .finish_non_exhaustive()
    }
}

pub(super) fn family_key(family: &[u8; 16]) -> String {
    format!("kw:fam:{}", hex(family))
}

pub(super) fn subject_key(tag: &[u8; 16]) -> String {
    format!("kw:subj:{}", hex(tag))
}

/// The family record a list entry names. Entries hold the ids keyward
/// wrote; anything else was written by someone else.
pub(super) fn listed_family_key(id: &str) -> Result<String, StoreError> {
    unhex::<16>(id)
        .map(|f| family_key(&f))
        .ok_or(StoreError::Corrupt(
            "session list entry is not a session id",
        ))
}

/// The audit tag a family's events carry.
fn family_tag(family: &Family) -> Option<AuditTag> {
    family.audit_tag.as_deref().and_then(AuditTag::from_hex)
}

pub(super) fn list_key(tag: &[u8; 16]) -> String {
    format!("kw:sess:{}", hex(tag))
}

/// What a session start commits, besides the records it loads.
struct Start<'a> {
    subject: &'a str,
    meta: Option<&'a str>,
    amr: &'a [String],
    claims: Option<&'a SessionClaims>,
    session_id: &'a str,
}

/// The `amr` of a session started with `first` and then `second`: the
/// methods of both, each once, and `mfa`.
pub(super) fn with_second<'a>(first: &[&'a str], second: &impl SecondFactor) -> Vec<&'a str> {
    let mut methods = first.to_vec();
    for &m in second.methods().iter().chain(&[amr::MFA]) {
        if !methods.contains(&m) {
            methods.push(m);
        }
    }
    methods
}

impl Sessions {
    pub(crate) fn new(
        store: Arc<dyn Store>,
        jwt: Arc<Jwt>,
        mac_key: SecretBytes,
        policy: SessionPolicy,
        clock: Arc<dyn Clock>,
        audit: Audit,
    ) -> Result<Self, Error> {
        policy.validate()?;
        Ok(Self {
            inner: Arc::new(Inner {
                store,
                jwt,
                mac_key,
                policy,
                clock,
                audit,
            }),
        })
    }

    /// The policy in force.
    #[must_use]
    pub fn policy(&self) -> &SessionPolicy {
        &self.inner.policy
    }

    /// Starts a session for the subject of a password check: a new family,
    /// its first refresh token and an access token. Requires the
    /// [`Verified`] proof, so tokens cannot be minted without a check, nor
    /// for another subject than the one checked.
    /// It does not look for a second factor: for a subject who has one
    /// ([`Totp::is_enrolled`](crate::Totp::is_enrolled)), hand out a
    /// [`challenge`](Self::challenge) instead.
    ///
    /// # Errors
    /// [`Error::Store`] when the store fails (no token is minted),
    /// [`Error::InvalidInput`] for an empty subject or one over 1,024
    /// bytes, [`Error::Rng`].
    pub async fn start(&self, proof: &Verified) -> Result<TokenPair, Error> {
        self.start_inner(proof.subject(), None, &[amr::PWD], proof.claims())
            .await
    }

    /// Starts a session after a password check and a second factor: its
    /// access tokens carry `amr` (RFC 8176) `["pwd", "otp", "mfa"]` after a
    /// TOTP code, `["pwd", "mfa"]` after a recovery code, which
    /// [`AccessClaims::require_mfa`] accepts, and so do those of every
    /// refresh.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] when the second-factor proof is for another
    /// subject; otherwise as [`start`](Self::start).
    pub async fn start_with_second_factor(
        &self,
        proof: &Verified,
        second: impl SecondFactor,
    ) -> Result<TokenPair, Error> {
        let subject = proof.subject();
        if second.subject() != subject {
            return Err(Error::InvalidInput(
                "the second-factor proof is for another subject".into(),
            ));
        }
        self.start_inner(
            subject,
            None,
            &with_second(&[amr::PWD], &second),
            proof.claims(),
        )
        .await
    }

    /// [`start`](Self::start), keeping `meta` with the session for
    /// [`list`](Self::list): what the user should recognise it by, such as
    /// a browser and platform. Never a secret: it is stored as given.
    ///
    /// # Errors
    /// As [`start`](Self::start); [`Error::InvalidInput`] when `meta` is
    /// empty, over 256 bytes or has control characters.
    pub async fn start_with_meta(&self, proof: &Verified, meta: &str) -> Result<TokenPair, Error> {
        check_meta(meta)?;
        self.start_inner(proof.subject(), Some(meta), &[amr::PWD], proof.claims())
            .await
    }

    /// DANGER: starts a session without a password proof. For operator
    /// tools and for login paths with their own proof (a one-time code).
    ///
    /// # Errors
    /// As [`start`](Self::start).
    pub async fn dangerous_start_without_proof(&self, subject: &str) -> Result<TokenPair, Error> {
        self.start_inner(subject, None, &[], None).await
    }

    /// Starts a session for the subject of a login code: the one-time-code
    /// counterpart of [`start`](Sessions::start). The proof is used up.
    /// Like `start`, it does not look for a second factor: for a subject
    /// who has one, use [`challenge_after_otp`](Self::challenge_after_otp).
    ///
    /// # Errors
    /// [`Error::Otp`] with [`OtpError::NotForLogin`] when the code was
    /// issued for another purpose (nothing is minted); otherwise as
    /// [`start`](Sessions::start).
    pub async fn start_with_otp(&self, proof: OtpVerified) -> Result<TokenPair, Error> {
        if *proof.purpose() != Purpose::Login {
            return Err(OtpError::NotForLogin.into());
        }
        self.start_inner(proof.subject(), None, &[amr::OTP], proof.claims())
            .await
    }

    pub(super) async fn start_inner(
        &self,
        subject: &str,
        meta: Option<&str>,
        amr: &[&str],
        claims: Option<&SessionClaims>,
    ) -> Result<TokenPair, Error> {
        self.start_guarded(subject, meta, amr, None, claims).await
    }

    /// Starts a session; with `challenge` (the key of an MFA challenge
    /// for `subject`, whose MAC bound the two), only while that challenge
    /// is live, and deleting it
    /// in the same commit: it starts one session, and is not used up by a
    /// start that does not commit.
    pub(super) async fn start_guarded(
        &self,
        subject: &str,
        meta: Option<&str>,
        amr: &[&str],
        challenge: Option<&str>,
        claims: Option<&SessionClaims>,
    ) -> Result<TokenPair, Error> {
        let amr: Vec<String> = amr.iter().map(|m| (*m).to_owned()).collect();
        if subject.is_empty() || subject.len() > 1024 {
            return Err(Error::InvalidInput(
                "subject must be 1 to 1024 bytes".into(),
            ));
        }
        let tag = self.subject_tag(subject);
        let mut family_id = [0u8; 16];
        crate::random::fill_random(&mut family_id)?;
        let session_id = hex(&family_id);
        let keys = [
            family_key(&family_id),
            subject_key(&tag),
            list_key(&tag),
            self.inner.audit.salt_key(subject),
        ];
        let start = Start {
            subject,
            meta,
            amr: &amr,
            claims,
            session_id: &session_id,
        };
        // At most twice: a full list evicts its oldest family once.
        for _ in 0..2 {
            // Guarded on the subject's record: a revoke-all that commits
            // first is seen, and one that commits later revokes this
            // family too. The family joins the subject's list in the same
            // commit.
            let evict = match challenge {
                None => {
                    transact(
                        &*self.inner.store,
                        &*self.inner.clock,
                        &[&keys[0], &keys[1], &keys[2], &keys[3]],
                        self.inner.policy.max_retries,
                        |(existing, subject_record, list, salt), now| {
                            self.decide_commit(&start, existing, subject_record, list, salt, now)
                        },
                    )
                    .await?
                }
                Some(challenge) => {
                    transact(
                        &*self.inner.store,
                        &*self.inner.clock,
                        &[&keys[0], &keys[1], &keys[2], &keys[3], challenge],
                        self.inner.policy.max_retries,
                        |(existing, subject_record, list, salt, pending): (
                            _,
                            _,
                            _,
                            _,
                            Option<Challenge>,
                        ),
                         now| {
                            if live(pending, now).is_none() {
                                return Err(SessionError::ChallengeInvalid.into());
                            }
                            let d = self.decide_commit(
                                &start,
                                existing,
                                subject_record,
                                list,
                                salt,
                                now,
                            )?;
                            // The challenge goes with the commit that
                            // starts the session, not with an eviction.
                            Ok(if d.outcome().is_err() { d.delete(4) } else { d })
                        },
                    )
                    .await?
                }
            };
            let (oldest, audit_tag) = match evict {
                Ok(evict) => evict,
                Err(audit_tag) => {
                    return self.started(
                        &session_id,
                        tag,
                        family_id,
                        subject,
                        audit_tag,
                        (&amr, claims),
                    );
                }
            };
            self.evict(&tag, &oldest, audit_tag).await?;
        }
        Err(Error::Busy)
    }

    /// The commit that starts a session: `Err(audit tag)` once it has
    /// committed, or `Ok((oldest, audit tag))`, committing nothing, when
    /// the subject's list is full and its oldest family must go first.
    #[allow(clippy::type_complexity, reason = "the transaction's outcome")]
    fn decide_commit(
        &self,
        start: &Start<'_>,
        existing: Option<Family>,
        subject_record: Option<SubjectRecord>,
        list: Option<SessionList>,
        salt: Option<Salt>,
        now: u64,
    ) -> Result<Decision<Result<(String, AuditTag), AuditTag>>, Error> {
        if existing.is_some() {
            // 128 random bits collided: refuse rather than share a family.
            return Err(StoreError::Corrupt("session id collision").into());
        }
        if subject_record.as_ref().is_some_and(|r| r.erasing) {
            return Err(Error::Erasing);
        }
        // The family keeps the subject's audit tag for the events of its
        // refreshes; the salt is written with it when it is new or renewed.
        let (salt, salt_ttl) = Salt::for_issuance(salt, now)?;
        let audit_tag = salt.tag(start.subject)?;
        let family = Family {
            audit_tag: Some(audit_tag.to_hex()),
            amr: start.amr.to_vec(),
            claims: start.claims.cloned(),
            ..decide_start(start.subject, subject_record, now)
        };
        let ttl = self.record_ttl(&family, now);
        let entry = ListEntry {
            id: start.session_id.to_owned(),
            ends: now.saturating_add(ttl.as_secs()),
            meta: start.meta.map(str::to_owned),
        };
        Ok(match admit(list, entry, now) {
            Admit::List(list) => {
                let d = Decision::only(Err(audit_tag))
                    .write(0, &family, ttl)?
                    .check(1)
                    .write(2, &list, list_ttl(&list, now))?;
                match salt_ttl {
                    Some(salt_ttl) => d.write(3, &salt, salt_ttl)?,
                    None => d.check(3),
                }
            }
            Admit::Evict(oldest) => Decision::only(Ok((oldest, audit_tag))),
        })
    }

    /// Ends the family `id` of the subject tagged `tag` to make room in
    /// its list: its record is deleted with its entry, in one commit.
    async fn evict(&self, tag: &[u8; 16], id: &str, audit_tag: AuditTag) -> Result<(), Error> {
        let fam_key = listed_family_key(id)?;
        let list_key = list_key(tag);
        transact(
            &*self.inner.store,
            &*self.inner.clock,
            &[&fam_key, &list_key],
            self.inner.policy.max_retries,
            |(family, list): (Option<Family>, Option<SessionList>), now| {
                let mut d = Decision::only(());
                if family.is_some() {
                    d = d.delete(0);
                }
                let Some(mut list) = list else {
                    return Ok(d);
                };
                list.sessions.retain(|e| e.id != id);
                Ok(if list.sessions.is_empty() {
                    d.delete(1)
                } else {
                    d.write(1, &list, list_ttl(&list, now))?
                })
            },
        )
        .await?;
        tracing::info!(target: audit::TARGET, event = "session.evicted", tag = %audit_tag, session = %id, "session ended: the subject's list was full");
        Ok(())
    }

    /// The subject's live sessions, oldest first: for a "your devices"
    /// page. Two store round trips.
    ///
    /// # Errors
    /// [`Error::Store`]; [`Error::InvalidInput`] for an empty subject or one
    /// over 1,024 bytes.
    pub async fn list(&self, subject: &str) -> Result<Vec<SessionInfo>, Error> {
        if subject.is_empty() || subject.len() > 1024 {
            return Err(Error::InvalidInput(
                "subject must be 1 to 1024 bytes".into(),
            ));
        }
        let tag = self.subject_tag(subject);
        let (list_key, subj_key) = (list_key(&tag), subject_key(&tag));
        let listed = transact(
            &*self.inner.store,
            &*self.inner.clock,
            &[&list_key],
            self.inner.policy.max_retries,
            |(list,): (Option<SessionList>,), _now| Ok(Decision::only(list.unwrap_or_default())),
        )
        .await?;
        if listed.sessions.is_empty() {
            return Ok(Vec::new());
        }
        let fam_keys: Vec<String> = listed
            .sessions
            .iter()
            .map(|e| listed_family_key(&e.id))
            .collect::<Result<_, _>>()?;
        let mut keys: Vec<&str> = vec![&list_key, &subj_key];
        keys.extend(fam_keys.iter().map(String::as_str));
        let policy = &self.inner.policy;
        let mut sessions = transact(
            &*self.inner.store,
            &*self.inner.clock,
            &keys,
            self.inner.policy.max_retries,
            |(list, subject_record, families): (
                Option<SessionList>,
                Option<SubjectRecord>,
                Vec<Option<Family>>,
            ),
             now| {
                let epoch = subject_record.map_or(0, |r| r.epoch);
                // The list as loaded now: entries added since the first
                // read have no family loaded and wait for the next call.
                let list = list.unwrap_or_default();
                let shown = listed
                    .sessions
                    .iter()
                    .zip(&families)
                    .filter(|(e, _)| list.sessions.iter().any(|l| l.id == e.id))
                    .filter_map(|(e, f)| info(e, f.as_ref(), subject, epoch, now, policy))
                    .collect::<Vec<_>>();
                Ok(Decision::only(shown))
            },
        )
        .await?;
        sessions.sort_by(|a, b| a.started_at.cmp(&b.started_at).then(a.id.cmp(&b.id)));
        Ok(sessions)
    }

    /// Revokes one session of `subject` by its id (from [`list`](Self::list)
    /// or an access token's `sid`): "sign out that device". Its refresh
    /// tokens stop working at once; its access tokens fail
    /// [`authenticate_strict`](Self::authenticate_strict) at once and
    /// expire within their lifetime. Revoking a revoked session succeeds
    /// again.
    ///
    /// # Errors
    /// [`Error::Session`] with [`SessionError::Unknown`] when no session of
    /// that id belongs to `subject`; [`Error::Store`]; [`Error::Busy`].
    pub async fn revoke_session(&self, subject: &str, session_id: &str) -> Result<(), Error> {
        let audit_tag = self
            .update_family(subject, session_id, |family| Ok(decide_revoke(family)))
            .await?;
        tracing::info!(target: audit::TARGET, event = "session.revoked", tag = %Shown(audit_tag), session = %session_id, "session revoked by id");
        Ok(())
    }

    /// Replaces the application claims of one session of `subject` (from
    /// [`list`](Self::list) or an access token's `sid`), or removes them
    /// with `None`. Access tokens already issued keep the claims they
    /// carry until they expire (15 minutes by default); every access token
    /// the session issues from its next refresh on carries the new ones.
    /// To change them for every session of a subject, call it for each
    /// session [`list`](Self::list) returns.
    ///
    /// ```
    /// # use keyward::{JwtAlg, KeyRing, Keyward, MemoryStore, Password, PasswordPolicy, SessionClaims};
    /// # use serde_json::json;
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
    /// # let password = Password::from("correct horse battery staple");
    /// # let stored = kw.passwords().hash(&password)?;
    /// let sessions = kw.sessions();
    /// let proof = kw.passwords().verify("ada", &password, &stored)?
    ///     .with_claims(SessionClaims::new(&json!({"roles": ["editor"]}))?);
    /// let pair = sessions.start(&proof).await?;
    /// let claims = sessions.authenticate(pair.access.unprotected_as_str())?;
    /// assert_eq!(claims.extra.get("roles"), Some(&json!(["editor"])));
    ///
    /// // ada is made an admin: her session's next refresh says so.
    /// let admin = SessionClaims::new(&json!({"roles": ["editor", "admin"]}))?;
    /// sessions.set_claims("ada", &pair.session_id, Some(admin)).await?;
    /// let next = sessions.refresh(pair.refresh.unprotected_as_str()).await?;
    /// let claims = sessions.authenticate(next.access.unprotected_as_str())?;
    /// assert_eq!(claims.extra.get("roles"), Some(&json!(["editor", "admin"])));
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`Error::Session`] with [`SessionError::Unknown`] when no session of
    /// that id belongs to `subject`, [`SessionError::Revoked`] when it has
    /// ended; [`Error::Store`]; [`Error::Busy`].
    pub async fn set_claims(
        &self,
        subject: &str,
        session_id: &str,
        claims: Option<SessionClaims>,
    ) -> Result<(), Error> {
        let audit_tag = self
            .update_family(subject, session_id, |family| {
                if family.revoked {
                    return Err(SessionError::Revoked.into());
                }
                Ok(Some(Family {
                    claims: claims.clone(),
                    ..family.clone()
                }))
            })
            .await?;
        tracing::info!(target: audit::TARGET, event = "session.claims_changed", tag = %Shown(audit_tag), session = %session_id, "session claims changed");
        Ok(())
    }

    /// One commit on the family `session_id` of `subject`: `change` gives
    /// the record to write, or `None` to leave it. Returns the family's
    /// audit tag.
    ///
    /// # Errors
    /// [`SessionError::Unknown`] when no family of that id belongs to
    /// `subject`; what `change` returns; [`Error::Store`]; [`Error::Busy`].
    async fn update_family(
        &self,
        subject: &str,
        session_id: &str,
        change: impl Fn(&Family) -> Result<Option<Family>, Error>,
    ) -> Result<Option<AuditTag>, Error> {
        let family_id = unhex::<16>(session_id).ok_or(SessionError::Unknown)?;
        let fam_key = family_key(&family_id);
        transact(
            &*self.inner.store,
            &*self.inner.clock,
            &[&fam_key],
            self.inner.policy.max_retries,
            |(family,): (Option<Family>,), now| {
                let Some(family) = family.filter(|f| f.subject == subject) else {
                    return Err(SessionError::Unknown.into());
                };
                let audit_tag = family_tag(&family);
                Ok(match change(&family)? {
                    Some(next) => {
                        let ttl = self.record_ttl(&next, now);
                        Decision::only(audit_tag).write(0, &next, ttl)?
                    }
                    None => Decision::only(audit_tag),
                })
            },
        )
        .await
    }

    fn started(
        &self,
        session_id: &str,
        tag: [u8; 16],
        family_id: [u8; 16],
        subject: &str,
        audit_tag: AuditTag,
        (amr, claims): (&[String], Option<&SessionClaims>),
    ) -> Result<TokenPair, Error> {
        tracing::info!(target: audit::TARGET, event = "session.started", tag = %audit_tag, session = %session_id, "session started");
        self.pair(
            &Parsed {
                subject_tag: tag,
                family: family_id,
                generation: 0,
            },
            subject,
            amr,
            claims,
        )
    }

    /// Rotates a refresh token: a new pair, or a [`SessionError`].
    ///
    /// The family's record is committed together with a guard on the
    /// subject's revocation record, so once [`revoke_all`](Self::revoke_all)
    /// has returned, no refresh that began before it hands out a pair.
    ///
    /// # Errors
    /// [`Error::Session`] with `Reused` (the family is now revoked),
    /// `Expired`, `Revoked` or `Invalid`; [`Error::Store`] when the store
    /// fails (fail closed: nothing is issued); [`Error::Busy`] after
    /// `max_retries` lost commits.
    pub async fn refresh(&self, refresh_token: &str) -> Result<TokenPair, Error> {
        let parsed = self.parse(refresh_token)?;
        let (fam_key, subj_key) = (family_key(&parsed.family), subject_key(&parsed.subject_tag));
        let policy = &self.inner.policy;
        let (outcome, subject, audit_tag, amr, claims) = self
            .transact(&fam_key, &subj_key, |family, subject_record, now| {
                let Some(family) = family else {
                    // The MAC proves keyward issued it; the record is gone
                    // only once the family outlived its store TTL.
                    return Err(SessionError::Expired.into());
                };
                // The token names its subject; a record naming another one
                // was written by someone other than keyward (a store writer
                // moving a family, and the tokens of whoever holds it, to
                // another user).
                let tag = self.subject_tag(&family.subject);
                if !bool::from(subtle::ConstantTimeEq::ct_eq(
                    &tag[..],
                    &parsed.subject_tag[..],
                )) {
                    return Err(
                        StoreError::Corrupt("family record does not match the token").into(),
                    );
                }
                let epoch = subject_record.map_or(0, |r| r.epoch);
                let (next, outcome) = decide(&family, parsed.generation, epoch, now, policy);
                let decision = Decision::only((
                    outcome,
                    family.subject.clone(),
                    family_tag(&family),
                    family.amr.clone(),
                    family.claims.clone(),
                ));
                Ok(match (next, outcome) {
                    (Some(next), _) => {
                        let ttl = self.record_ttl(&next, now);
                        decision.write(0, &next, ttl)?.check(1)
                    }
                    // A grace replay hands out a pair too: only while
                    // neither record has moved.
                    (None, Outcome::GraceReplay { .. }) => decision.check(0).check(1),
                    (None, _) => decision,
                })
            })
            .await?;
        let session = hex(&parsed.family);
        match outcome {
            Outcome::Rotated { generation } | Outcome::GraceReplay { generation } => {
                if matches!(outcome, Outcome::Rotated { .. }) {
                    tracing::info!(target: audit::TARGET, event = "session.rotated", tag = %Shown(audit_tag), session = %session, generation, "refresh token rotated");
                } else {
                    tracing::info!(target: audit::TARGET, event = "session.grace_replay", tag = %Shown(audit_tag), session = %session, generation, "refresh grace replay");
                }
                self.pair(
                    &Parsed {
                        generation,
                        ..parsed
                    },
                    &subject,
                    &amr,
                    claims.as_ref(),
                )
            }
            Outcome::Reused => {
                tracing::warn!(target: audit::TARGET, event = "session.reuse_detected", tag = %Shown(audit_tag), session = %session, "refresh token reuse detected; session family revoked");
                Err(SessionError::Reused.into())
            }
            Outcome::Expired => Err(SessionError::Expired.into()),
            Outcome::Revoked => Err(SessionError::Revoked.into()),
            Outcome::Invalid => Err(SessionError::Invalid.into()),
        }
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
        let revoked = transact(
            &*self.inner.store,
            &*self.inner.clock,
            &[&fam_key],
            self.inner.policy.max_retries,
            |(family,): (Option<Family>,), now| {
                let Some(family) = family else {
                    return Err(SessionError::Expired.into());
                };
                let audit_tag = family_tag(&family);
                Ok(match decide_revoke(&family) {
                    Some(next) => {
                        let ttl = self.record_ttl(&next, now);
                        Decision::only(Some(audit_tag)).write(0, &next, ttl)?
                    }
                    None => Decision::only(None),
                })
            },
        )
        .await?;
        if let Some(audit_tag) = revoked {
            tracing::info!(target: audit::TARGET, event = "session.revoked", tag = %Shown(audit_tag), session = %session, "session revoked");
        }
        Ok(session)
    }

    /// Revokes every family of `subject` (logout everywhere, password
    /// change), without listing them: the subject's epoch moves past every
    /// existing family's. Once it has returned, no refresh of those
    /// families succeeds, not even one that was already under way.
    ///
    /// # Errors
    /// [`Error::Store`]; [`Error::Busy`] under extreme contention.
    pub async fn revoke_all(&self, subject: &str) -> Result<(), Error> {
        self.revoke_all_found(subject).await.map(|_found| ())
    }

    /// [`revoke_all`](Self::revoke_all), reporting whether the subject had
    /// any session on record: `true` when its session list names a family
    /// whose record may still exist (live, or revoked and kept to
    /// recognise reuse), `false` for a subject that never started a session,
    /// or whose sessions have all ended, or a mistyped one. The revocation
    /// is written either way, in the same commit, so that a session started
    /// meanwhile with an older epoch cannot outlive it.
    ///
    /// # Errors
    /// As [`revoke_all`](Self::revoke_all).
    pub async fn revoke_all_found(&self, subject: &str) -> Result<bool, Error> {
        let tag = self.subject_tag(subject);
        let key = subject_key(&tag);
        let salt_key = self.inner.audit.salt_key(subject);
        let sessions_key = list_key(&tag);
        // Outlive every family that could still be alive.
        let ttl = Duration::from_secs(self.inner.policy.absolute_ttl_secs.saturating_add(86_400));
        let (audit_tag, found) = transact(
            &*self.inner.store,
            &*self.inner.clock,
            &[&key, &salt_key, &sessions_key],
            self.inner.policy.max_retries,
            |(record, salt, list): (Option<SubjectRecord>, Option<Salt>, Option<SessionList>),
             now| {
                let audit_tag = Salt::tag_of(salt.as_ref(), subject, now);
                let found = list.is_some_and(|l| l.sessions.iter().any(|e| e.ends > now));
                Ok(Decision::only((audit_tag, found)).write(
                    0,
                    &decide_revoke_all(record, now),
                    ttl,
                )?)
            },
        )
        .await?;
        tracing::info!(target: audit::TARGET, event = "session.all_revoked", tag = %Shown(audit_tag), "all sessions of subject revoked");
        Ok(found)
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
    /// [`refresh`](Self::refresh) would make first, at the same (the
    /// store's) time. A session that refresh would call `Revoked` (logout,
    /// reuse, revoke-all) or `Expired` (past its idle or absolute lifetime)
    /// is refused with that same reason, even while the access token itself
    /// has not expired.
    ///
    /// # Errors
    /// [`Error::Jwt`]; [`Error::Session`] with `Revoked` or `Expired`;
    /// [`Error::Store`] (fail closed).
    pub async fn authenticate_strict(&self, access_token: &str) -> Result<AccessClaims, Error> {
        let claims = self.inner.jwt.verify(access_token)?;
        let family = unhex::<16>(&claims.sid).ok_or(SessionError::Revoked)?;
        let tag = self.subject_tag(&claims.sub);
        let (fam_key, subj_key) = (family_key(&family), subject_key(&tag));
        let policy = &self.inner.policy;
        self.transact(&fam_key, &subj_key, |family, subject_record, now| {
            let Some(family) = family else {
                return Err(SessionError::Expired.into());
            };
            if family.subject != claims.sub {
                return Err(SessionError::Revoked.into());
            }
            let epoch = subject_record.map_or(0, |r| r.epoch);
            liveness(&family, epoch, now, policy)?;
            Ok(Decision::only(()))
        })
        .await?;
        Ok(claims)
    }

    /// One transaction over a family and its subject's record.
    async fn transact<T>(
        &self,
        fam_key: &str,
        subj_key: &str,
        mut decide: impl FnMut(Option<Family>, Option<SubjectRecord>, u64) -> Result<Decision<T>, Error>,
    ) -> Result<T, Error> {
        transact(
            &*self.inner.store,
            &*self.inner.clock,
            &[fam_key, subj_key],
            self.inner.policy.max_retries,
            |(family, subject): (Option<Family>, Option<SubjectRecord>), now| {
                decide(family, subject, now)
            },
        )
        .await
    }

    pub(super) fn subject_tag(&self, subject: &str) -> [u8; 16] {
        crate::mac::tag128(
            self.inner.mac_key.unprotected_as_bytes(),
            &[SUBJECT_DOMAIN, subject.as_bytes()],
        )
    }

    fn parse(&self, token: &str) -> Result<Parsed, Error> {
        parse_token(self.inner.mac_key.unprotected_as_bytes(), token)
    }

    fn pair(
        &self,
        p: &Parsed,
        subject: &str,
        amr: &[String],
        claims: Option<&SessionClaims>,
    ) -> Result<TokenPair, Error> {
        let session_id = hex(&p.family);
        let access = self
            .inner
            .jwt
            .issue_session(subject, &session_id, amr, claims)?;
        Ok(TokenPair {
            access,
            refresh: format_token(self.inner.mac_key.unprotected_as_bytes(), p),
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
