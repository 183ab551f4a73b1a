//! The service: each transition is one transaction on the store.

use super::*;

pub(crate) fn check_subject(subject: &str) -> Result<(), Error> {
    if subject.is_empty() || subject.len() > MAX_SUBJECT_LEN {
        return Err(Error::InvalidInput(
            "subject must be 1 to 1024 bytes".into(),
        ));
    }
    Ok(())
}

/// The one-time-code service. Reached through
/// [`Keyward::otp`](crate::Keyward::otp). Cheap to clone.
#[derive(Clone)]
pub struct Otp {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) mac_key: SecretBytes,
    pub(crate) policy: OtpPolicy,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) limits: Limits,
    pub(crate) code_send: Limit,
    pub(crate) audit: Audit,
}

impl fmt::Debug for Otp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Otp")
            .field("store", &self.inner.store)
            .field("policy", &self.inner.policy)
            .finish_non_exhaustive()
    }
}

impl Otp {
    pub(crate) fn new(
        store: Arc<dyn Store>,
        mac_key: SecretBytes,
        policy: OtpPolicy,
        clock: Arc<dyn Clock>,
        limits: Limits,
        code_send: Limit,
        audit: Audit,
    ) -> Result<Self, Error> {
        policy.validate()?;
        code_send.validate()?;
        Ok(Self {
            inner: Arc::new(Inner {
                store,
                mac_key,
                policy,
                clock,
                limits,
                code_send,
                audit,
            }),
        })
    }

    /// The policy in force.
    #[must_use]
    pub fn policy(&self) -> &OtpPolicy {
        &self.inner.policy
    }

    /// Issues a code for `subject` and `purpose`, from the OS CSPRNG. It
    /// replaces any pending code of that subject and purpose, and leaves
    /// the failure count as it is. Send [`IssuedCode::code`] to the user.
    ///
    /// # Errors
    /// [`Error::RateLimited`] when a code was sent to the subject too
    /// recently (the `code_send_*` numbers of
    /// [`ThrottlePolicy`](crate::ThrottlePolicy), kept in the store, so
    /// exact across processes: [`crate::limit`]). A send is taken in the
    /// same commit as the code, so a refused issue takes none;
    /// [`Error::Otp`] with [`OtpError::Locked`] or
    /// [`OtpError::LockedUntilUnlock`] while the subject is locked;
    /// [`Error::Store`] when the store fails (no code is issued);
    /// [`Error::Busy`] after `max_retries` lost compare-and-swaps;
    /// [`Error::InvalidInput`] for an empty subject or one over 1,024 bytes;
    /// [`Error::Rng`].
    pub async fn issue(&self, subject: &str, purpose: Purpose) -> Result<IssuedCode, Error> {
        self.issue_with_rng(subject, purpose, &mut rand::rngs::SysRng)
            .await
    }

    /// [`issue`](Self::issue) with the code drawn from `rng`, for tests.
    ///
    /// # Errors
    /// As [`issue`](Self::issue); [`Error::Rng`] when `rng` fails.
    pub async fn issue_with_rng<R: TryCryptoRng + ?Sized>(
        &self,
        subject: &str,
        purpose: Purpose,
        rng: &mut R,
    ) -> Result<IssuedCode, Error> {
        check_subject(subject)?;
        let tag = self.subject_tag(subject);
        let subject_tag = hex(&tag);
        let code = generate_code(rng, self.inner.policy.digits)?;
        let mac = self.code_mac(subject, &purpose, code.unprotected_as_str().as_bytes());
        let key = record_key(&tag);
        let send = &self.inner.code_send;
        let send_key = self.inner.limits.key_of(send, &subject_tag)?;
        let salt_key = self.inner.audit.salt_key(subject);
        let policy = &self.inner.policy;
        // The code and the send it takes from the subject's send limit are
        // one commit: a refused issue (locked, or over the limit) takes no
        // send, and a lock is reported as such.
        let (issued, audit_tag) = transact_ms(
            &*self.inner.store,
            &*self.inner.clock,
            &[&key, &send_key, &salt_key],
            policy.max_retries,
            |(state, sent, salt): (Option<SubjectState>, Option<Tat>, Option<Salt>), now_ms| {
                let now = now_ms.checked_div(1_000).unwrap_or(0);
                let refused_tag = Salt::tag_of(salt.as_ref(), subject, now);
                let state = state.unwrap_or_default();
                let (next, expires_at) =
                    match decide_issue(&state, purpose.name(), mac, now, policy) {
                        Ok(issued) => issued,
                        Err(refusal) => {
                            return Ok(Decision::only((
                                Err(refusal_error(refusal, now)),
                                refused_tag,
                            )));
                        }
                    };
                match Limits::take_in(send, sent, now_ms)? {
                    Take::Allowed { record, ttl } => {
                        // The code is an issuance: the subject's audit salt
                        // is written with it when new or renewed.
                        let (salt, salt_ttl) = Salt::for_issuance(salt, now)?;
                        let d = Decision::only((Ok(expires_at), Some(salt.tag(subject)?)))
                            .write(0, &next, next.ttl(now))?
                            .write(1, &record, ttl)?;
                        Ok(match salt_ttl {
                            Some(salt_ttl) => d.write(2, &salt, salt_ttl)?,
                            None => d.check(2),
                        })
                    }
                    Take::Denied(e) => Ok(Decision::only((Err(e), refused_tag))),
                }
            },
        )
        .await?;
        let shown = Shown(audit_tag);
        match issued {
            Ok(expires_at) => {
                tracing::info!(target: audit::TARGET, event = "code.issued", tag = %shown, purpose = %purpose, expires_at, "one-time code issued");
                Ok(IssuedCode {
                    code,
                    expires_at,
                    purpose,
                })
            }
            Err(e @ Error::RateLimited { .. }) => {
                tracing::info!(target: audit::TARGET, event = "code.refused", tag = %shown, purpose = %purpose, reason = "rate_limited", "one-time code refused: sent too recently");
                Err(e)
            }
            Err(e) => {
                tracing::info!(target: audit::TARGET, event = "code.refused", tag = %shown, purpose = %purpose, reason = "locked", "one-time code refused: subject locked");
                Err(e)
            }
        }
    }

    /// Checks `code` for `subject` and `purpose`. A correct code is used
    /// up, forgives the wrong guesses made at that code (and no others),
    /// and yields the [`OtpVerified`] proof. A wrong one counts against the
    /// subject's lock and against the code, which is used up after
    /// `max_attempts` wrong guesses in its life.
    /// The code is compared exactly as given: strip spaces or dashes the
    /// user may have typed before calling, if your form allows them.
    ///
    /// # Errors
    /// [`Error::Otp`] with [`OtpError::Invalid`] (a failure, counted),
    /// [`OtpError::Locked`] or [`OtpError::LockedUntilUnlock`] (not
    /// evaluated), [`OtpError::Expired`] or [`OtpError::NoCode`] (not
    /// counted); [`Error::Store`] when the store fails (fail closed: the
    /// code is not accepted); [`Error::Busy`] after `max_retries` lost
    /// compare-and-swaps; [`Error::InvalidInput`] for an empty subject or one
    /// over 1,024 bytes.
    pub async fn verify(
        &self,
        subject: &str,
        purpose: Purpose,
        code: &str,
    ) -> Result<OtpVerified, Error> {
        check_subject(subject)?;
        let tag = self.subject_tag(subject);
        let candidate = (code.len() <= MAX_CODE_INPUT)
            .then(|| self.code_mac(subject, &purpose, code.as_bytes()));
        let key = record_key(&tag);
        let salt_key = self.inner.audit.salt_key(subject);
        let policy = &self.inner.policy;
        let (verdict, locked_until_unlock, now, audit_tag) =
            transact(
                &*self.inner.store,
                &*self.inner.clock,
                &[&key, &salt_key],
                policy.max_retries,
                |(state, salt): (Option<SubjectState>, Option<Salt>), now| {
                    let audit_tag = Salt::tag_of(salt.as_ref(), subject, now);
                    let Some(state) = state else {
                        return Ok(Decision::only((Verdict::NoCode, false, now, audit_tag)));
                    };
                    let (next, verdict) =
                        decide_verify(&state, purpose.name(), candidate, now, policy);
                    Ok(match next {
                        Some(next) => {
                            Decision::only((verdict, next.locked_until_unlock, now, audit_tag))
                                .write(0, &next, next.ttl(now))?
                        }
                        None => Decision::only((verdict, false, now, audit_tag)),
                    })
                },
            )
            .await?;
        let shown = Shown(audit_tag);
        match verdict {
            Verdict::Ok => {
                tracing::info!(target: audit::TARGET, event = "code.verified", tag = %shown, purpose = %purpose, "one-time code verified");
                Ok(OtpVerified {
                    subject: subject.to_owned(),
                    purpose,
                    verified_at: now,
                    claims: None,
                })
            }
            Verdict::Invalid { attempts_left } => {
                if locked_until_unlock {
                    tracing::warn!(target: audit::TARGET, event = "code.locked", tag = %shown, purpose = %purpose, until_unlock = true, "wrong one-time code; subject locked until an operator unlocks");
                } else if attempts_left == 0 {
                    tracing::warn!(target: audit::TARGET, event = "code.locked", tag = %shown, purpose = %purpose, lockout_secs = self.inner.policy.lockout_secs, "wrong one-time code; subject locked");
                } else {
                    tracing::info!(target: audit::TARGET, event = "code.failed", tag = %shown, purpose = %purpose, attempts_left, "wrong one-time code");
                }
                Err(OtpError::Invalid { attempts_left }.into())
            }
            Verdict::Refused(refusal) => {
                tracing::info!(target: audit::TARGET, event = "code.refused", tag = %shown, purpose = %purpose, reason = "locked", "one-time code refused: subject locked");
                Err(refusal_error(refusal, now))
            }
            Verdict::Expired => Err(OtpError::Expired.into()),
            Verdict::NoCode => Err(OtpError::NoCode.into()),
        }
    }

    /// The operator's unlock: clears the subject's failure count and any
    /// lock, including the one after too many consecutive failures.
    /// Pending codes stay as they are, with the wrong guesses each has
    /// faced: an unlock gives no code more than `max_attempts` guesses.
    /// Unlocking a subject that is not locked succeeds and changes nothing.
    ///
    /// # Errors
    /// [`Error::Store`]; [`Error::Busy`] under extreme contention;
    /// [`Error::InvalidInput`] for an empty subject or one over 1,024 bytes.
    pub async fn unlock(&self, subject: &str) -> Result<(), Error> {
        self.unlock_found(subject).await.map(|_found| ())
    }

    /// [`unlock`](Self::unlock), reporting whether the subject had a
    /// record: `false` for a subject with no pending code, no failure and
    /// no lock on record (never issued a code, or a mistyped subject), for
    /// which the unlock changed nothing.
    ///
    /// # Errors
    /// As [`unlock`](Self::unlock).
    pub async fn unlock_found(&self, subject: &str) -> Result<bool, Error> {
        check_subject(subject)?;
        let tag = self.subject_tag(subject);
        let key = record_key(&tag);
        let salt_key = self.inner.audit.salt_key(subject);
        let unlocked = transact(
            &*self.inner.store,
            &*self.inner.clock,
            &[&key, &salt_key],
            self.inner.policy.max_retries,
            |(state, salt): (Option<SubjectState>, Option<Salt>), now| {
                let Some(state) = state else {
                    return Ok(Decision::only((None, false)));
                };
                let next = decide_unlock(&state);
                if next == state {
                    return Ok(Decision::only((None, true)));
                }
                let audit_tag = Salt::tag_of(salt.as_ref(), subject, now);
                Ok(Decision::only((Some(audit_tag), true)).write(0, &next, next.ttl(now))?)
            },
        )
        .await?;
        let (unlocked, found) = unlocked;
        if let Some(audit_tag) = unlocked {
            tracing::warn!(target: audit::TARGET, event = "code.unlocked", tag = %Shown(audit_tag), "one-time codes unlocked by an operator");
        }
        Ok(found)
    }

    /// What the subject's record says, for an operator: its failures, its
    /// lock and the purposes of its pending codes, at the store's time.
    /// Reads only: nothing is written or counted, and no code, MAC or
    /// subject appears in the result.
    ///
    /// # Errors
    /// [`Error::Store`]; [`Error::InvalidInput`] for an empty subject or
    /// one over 1,024 bytes.
    pub async fn status(&self, subject: &str) -> Result<OtpStatus, Error> {
        check_subject(subject)?;
        let key = record_key(&self.subject_tag(subject));
        self.transact(&key, |state, now| {
            let Some(state) = state else {
                return Ok(Decision::only(OtpStatus::default()));
            };
            let (locked, retry_after) = match state.refusal(now) {
                Some(Refusal::Locked { until }) => {
                    (true, Some(Duration::from_secs(until.saturating_sub(now))))
                }
                Some(Refusal::LockedUntilUnlock) => (true, None),
                Some(Refusal::Erasing) | None => (false, None),
            };
            Ok(Decision::only(OtpStatus {
                found: true,
                failures: state.consecutive_failures,
                window_failures: state.window_failures,
                locked,
                retry_after,
                locked_until_unlock: state.locked_until_unlock,
                pending: state
                    .codes
                    .iter()
                    .filter(|c| now < c.expires_at)
                    .map(|c| c.purpose.clone())
                    .collect(),
            }))
        })
        .await
    }

    /// Marks the subject's record as being erased and drops its pending
    /// codes: from now on no code is issued or accepted. The number of
    /// pending codes dropped.
    pub(crate) async fn erase_mark(&self, subject: &str) -> Result<u64, Error> {
        check_subject(subject)?;
        let key = record_key(&self.subject_tag(subject));
        self.transact(&key, |state, now| {
            let dropped = state
                .as_ref()
                .map_or(0, |s| u64::try_from(s.codes.len()).unwrap_or(u64::MAX));
            let marked = SubjectState {
                erasing: true,
                ..SubjectState::default()
            };
            if state.as_ref() == Some(&marked) {
                return Ok(Decision::only(0));
            }
            Ok(Decision::only(dropped).write(0, &marked, marked.ttl(now))?)
        })
        .await
    }

    /// Deletes the subject's record, lockout state and mark with it, and
    /// its code-send limit's record: the last of an erasure's steps for
    /// codes.
    pub(crate) async fn erase_end(&self, subject: &str) -> Result<(), Error> {
        check_subject(subject)?;
        let tag = self.subject_tag(subject);
        let key = record_key(&tag);
        let send_key = self
            .inner
            .limits
            .key_of(&self.inner.code_send, &hex(&tag))?;
        transact(
            &*self.inner.store,
            &*self.inner.clock,
            &[&key, &send_key],
            self.inner.policy.max_retries,
            |(state, sent): (Option<SubjectState>, Option<Tat>), _now| {
                let mut d = Decision::only(());
                if state.is_some() {
                    d = d.delete(0);
                }
                if sent.is_some() {
                    d = d.delete(1);
                }
                Ok(d)
            },
        )
        .await
    }

    /// One transaction over the subject's record.
    async fn transact<T>(
        &self,
        key: &str,
        decide: impl FnMut(Option<SubjectState>, u64) -> Result<Decision<T>, Error>,
    ) -> Result<T, Error> {
        let mut decide = decide;
        transact(
            &*self.inner.store,
            &*self.inner.clock,
            &[key],
            self.inner.policy.max_retries,
            |(state,): (Option<SubjectState>,), now| decide(state, now),
        )
        .await
    }

    /// The store key of the subject's record, whose lockout second-factor
    /// codes share.
    pub(crate) fn state_key(&self, subject: &str) -> String {
        record_key(&self.subject_tag(subject))
    }

    fn subject_tag(&self, subject: &str) -> [u8; 16] {
        crate::mac::tag128(
            self.inner.mac_key.unprotected_as_bytes(),
            &[SUBJECT_DOMAIN, subject.as_bytes()],
        )
    }

    fn code_mac(&self, subject: &str, purpose: &Purpose, code: &[u8]) -> CodeMac {
        code_mac(
            self.inner.mac_key.unprotected_as_bytes(),
            subject,
            purpose.name(),
            code,
        )
    }
}

/// A subject's one-time-code record, as [`Otp::status`] reads it. Holds
/// no code and no MAC.
///
/// `Serialize` and `Deserialize` for JSON answers, with the field names
/// below; `retry_after` is whole seconds, rounded up, or `null`.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct OtpStatus {
    /// Whether the subject has a record at all: `false` for a subject that
    /// was never issued a code and never failed one (or a mistyped one);
    /// every other field is then zero or empty.
    pub found: bool,
    /// Failures since the last operator unlock, across lockouts, less the
    /// typos at codes then entered correctly: what an unlock clears. At
    /// `max_consecutive_failures` the subject is locked until an operator
    /// unlocks it.
    pub failures: u32,
    /// Of those, the failures since the last lock: at `max_attempts` the
    /// subject is locked, and this count starts again from 0.
    pub window_failures: u32,
    /// Whether a code or an issue would be refused now as locked.
    pub locked: bool,
    /// What is left of a timed lock; `None` when not locked, or when
    /// locked until an operator unlocks.
    #[serde(with = "crate::clock::secs::option")]
    pub retry_after: Option<Duration>,
    /// Locked until an operator unlocks ([`Otp::unlock`]).
    pub locked_until_unlock: bool,
    /// The purposes (by [`Purpose::name`]) with a code pending and not
    /// expired.
    pub pending: Vec<String>,
}

/// The store key of a subject's record: its keyed tag, never the subject.
pub(crate) fn record_key(tag: &[u8; 16]) -> String {
    format!("kw:otp:{}", hex(tag))
}
