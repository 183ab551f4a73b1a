//! The rules, as pure functions over a subject's record.

use super::*;

crate::store::json_stored!(SubjectState);

/// A pending code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct PendingCode {
    pub(crate) purpose: String,
    pub(crate) mac: CodeMac,
    pub(crate) expires_at: u64,
    /// Evaluated wrong guesses at this code in its life. At `max_attempts`
    /// the code is used up, whatever succeeds or is unlocked in between.
    #[serde(default)]
    pub(crate) failures: u32,
    /// Of those, the ones still in the subject's counters (an unlock
    /// clears the counters, and so this): what a success on this code
    /// forgives.
    #[serde(default)]
    pub(crate) counted: u32,
}

/// The record of one subject: its failure state and its pending codes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SubjectState {
    /// Failures since the last lock or unlock, less those a success
    /// forgave (the wrong guesses at the code that then succeeded).
    #[serde(default)]
    pub(crate) window_failures: u32,
    /// Failures since the last unlock, across lockouts, less those a
    /// success forgave. A success on another purpose forgives none of them.
    #[serde(default)]
    pub(crate) consecutive_failures: u32,
    /// End of the current (or a past) timed lock.
    #[serde(default)]
    pub(crate) locked_until: Option<u64>,
    /// Locked until an operator unlocks.
    #[serde(default)]
    pub(crate) locked_until_unlock: bool,
    #[serde(default)]
    pub(crate) codes: Vec<PendingCode>,
    /// An erasure of the subject began and has not finished: no code is
    /// issued or accepted.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub(crate) erasing: bool,
}

/// Why the state refuses a code or an issue before looking at any code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    Locked { until: u64 },
    LockedUntilUnlock,
    Erasing,
}

/// The outcome of a presented code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    Ok,
    Invalid { attempts_left: u32 },
    Refused(Refusal),
    Expired,
    NoCode,
}

impl SubjectState {
    pub(crate) fn refusal(&self, now: u64) -> Option<Refusal> {
        if self.erasing {
            return Some(Refusal::Erasing);
        }
        if self.locked_until_unlock {
            return Some(Refusal::LockedUntilUnlock);
        }
        match self.locked_until {
            Some(until) if now < until => Some(Refusal::Locked { until }),
            _ => None,
        }
    }

    /// Whether the record carries failure state that must outlive its
    /// codes.
    pub(crate) fn has_failures(&self) -> bool {
        self.window_failures > 0
            || self.consecutive_failures > 0
            || self.locked_until.is_some()
            || self.locked_until_unlock
    }

    /// How long the store keeps the record: failure state for the store's
    /// longest TTL (so the consecutive count survives slow attacks), codes
    /// until a day after they expire.
    pub(crate) fn ttl(&self, now: u64) -> Duration {
        if self.has_failures() || self.erasing {
            return MAX_TTL;
        }
        let end = self
            .codes
            .iter()
            .map(|c| c.expires_at.saturating_add(EXPIRED_NOTICE_SECS))
            .max()
            .unwrap_or(now);
        Duration::from_secs(end.saturating_sub(now).clamp(1, MAX_TTL.as_secs()))
    }
}

/// The issue rule: refused while locked; otherwise the code replaces any
/// pending one of the same purpose. The failure count is kept as it is.
pub(crate) fn decide_issue(
    state: &SubjectState,
    purpose: &str,
    mac: CodeMac,
    now: u64,
    policy: &OtpPolicy,
) -> Result<(SubjectState, u64), Refusal> {
    if let Some(refusal) = state.refusal(now) {
        return Err(refusal);
    }
    let expires_at = now.saturating_add(policy.code_ttl_secs);
    let mut next = state.clone();
    if next.locked_until.is_some_and(|until| until <= now) {
        next.locked_until = None;
    }
    next.codes.retain(|c| c.purpose != purpose);
    while next.codes.len() >= MAX_PENDING {
        let Some(first) = next
            .codes
            .iter()
            .enumerate()
            .min_by_key(|(_, c)| c.expires_at)
            .map(|(i, _)| i)
        else {
            break;
        };
        next.codes.remove(first);
    }
    next.codes.push(PendingCode {
        purpose: purpose.to_owned(),
        mac,
        expires_at,
        failures: 0,
        counted: 0,
    });
    Ok((next, expires_at))
}

/// The verify rule. `candidate` is the MAC of the presented code, or `None`
/// for input too long to be a code (a failure all the same). Returns the
/// record to write, if any, and the verdict.
pub(crate) fn decide_verify(
    state: &SubjectState,
    purpose: &str,
    candidate: Option<CodeMac>,
    now: u64,
    policy: &OtpPolicy,
) -> (Option<SubjectState>, Verdict) {
    if let Some(refusal) = state.refusal(now) {
        return (None, Verdict::Refused(refusal));
    }
    let Some(index) = state.codes.iter().position(|c| c.purpose == purpose) else {
        return (None, Verdict::NoCode);
    };
    let Some(pending) = state.codes.get(index) else {
        return (None, Verdict::NoCode);
    };
    if now >= pending.expires_at {
        return (None, Verdict::Expired);
    }
    let mut next = state.clone();
    // A timed lock that has ended is over; its window started afresh when
    // it was set.
    if next.locked_until.is_some_and(|until| until <= now) {
        next.locked_until = None;
    }
    if candidate.is_some_and(|c| c == pending.mac) {
        // A success forgives the wrong guesses at this code only: they were
        // the presenter's own typos. Guesses at other purposes' codes stay
        // counted, so one flow completed buys no guesses at another.
        let forgiven = pending.counted;
        next.codes.remove(index);
        next.window_failures = next.window_failures.saturating_sub(forgiven);
        next.consecutive_failures = next.consecutive_failures.saturating_sub(forgiven);
        return (Some(next), Verdict::Ok);
    }
    next.window_failures = next.window_failures.saturating_add(1);
    next.consecutive_failures = next.consecutive_failures.saturating_add(1);
    let code_failures = pending.failures.saturating_add(1);
    let locks = if next.consecutive_failures >= policy.max_consecutive_failures {
        next.locked_until_unlock = true;
        next.locked_until = None;
        true
    } else if next.window_failures >= policy.max_attempts {
        next.locked_until = Some(now.saturating_add(policy.lockout_secs));
        true
    } else {
        false
    };
    let attempts_left = if locks {
        // A lock discards every pending code: the next window starts with
        // a new code.
        next.window_failures = 0;
        next.codes.clear();
        0
    } else {
        if code_failures >= policy.max_attempts {
            // The code has faced its `max_attempts` guesses: used up.
            // Without a lock this happens only after an operator's unlock.
            next.codes.remove(index);
        } else if let Some(code) = next.codes.get_mut(index) {
            code.failures = code_failures;
            code.counted = code.counted.saturating_add(1);
        }
        policy
            .max_attempts
            .saturating_sub(next.window_failures)
            .min(
                policy
                    .max_consecutive_failures
                    .saturating_sub(next.consecutive_failures),
            )
            .min(policy.max_attempts.saturating_sub(code_failures))
    };
    (Some(next), Verdict::Invalid { attempts_left })
}

/// A failure that is not a guess at a pending code (a wrong second-factor
/// code or recovery code): counted against the subject's window and
/// consecutive counts exactly as a wrong code is, so that every kind of
/// guess shares one lockout; a lock it causes discards pending codes too.
/// The caller checks [`SubjectState::refusal`] first. Returns the record
/// to write and the wrong guesses left before a lock.
pub(crate) fn decide_failure(
    state: &SubjectState,
    now: u64,
    policy: &OtpPolicy,
) -> (SubjectState, u32) {
    let mut next = state.clone();
    if next.locked_until.is_some_and(|until| until <= now) {
        next.locked_until = None;
    }
    next.window_failures = next.window_failures.saturating_add(1);
    next.consecutive_failures = next.consecutive_failures.saturating_add(1);
    if next.consecutive_failures >= policy.max_consecutive_failures {
        next.locked_until_unlock = true;
        next.locked_until = None;
    } else if next.window_failures >= policy.max_attempts {
        next.locked_until = Some(now.saturating_add(policy.lockout_secs));
    } else {
        let left = policy
            .max_attempts
            .saturating_sub(next.window_failures)
            .min(
                policy
                    .max_consecutive_failures
                    .saturating_sub(next.consecutive_failures),
            );
        return (next, left);
    }
    next.window_failures = 0;
    next.codes.clear();
    (next, 0)
}

/// The unlock rule: the failure state is cleared. Pending codes stay, with
/// the wrong guesses each has faced in its life (so an unlock gives no code
/// more guesses), but none of those is counted any more, so none is left
/// for a later success to forgive.
pub(crate) fn decide_unlock(state: &SubjectState) -> SubjectState {
    SubjectState {
        codes: state
            .codes
            .iter()
            .map(|c| PendingCode {
                counted: 0,
                ..c.clone()
            })
            .collect(),
        erasing: state.erasing,
        ..SubjectState::default()
    }
}

/// The error for a refusal, with the time left on a timed lock.
pub(crate) fn refusal_error(refusal: Refusal, now: u64) -> Error {
    match refusal {
        Refusal::Locked { until } => OtpError::Locked {
            retry_after: Duration::from_secs(until.saturating_sub(now)),
        }
        .into(),
        Refusal::LockedUntilUnlock => OtpError::LockedUntilUnlock.into(),
        Refusal::Erasing => Error::Erasing,
    }
}
