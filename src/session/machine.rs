//! The rules, as pure functions over a family and its subject's record.

use super::*;

crate::store::json_stored!(Family, SubjectRecord);

/// The stored state of one family. No token material.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Family {
    /// The subject (user) the family belongs to.
    pub(crate) subject: String,
    /// The subject's revocation epoch when the family started; a later
    /// revoke-all raises the subject's epoch above it.
    pub(crate) epoch: u64,
    /// Login time.
    pub(crate) created: u64,
    /// Time of the last rotation (or login).
    pub(crate) last_used: u64,
    /// Generation of the one live refresh token.
    pub(crate) generation: u64,
    /// Whether the family is revoked.
    pub(crate) revoked: bool,
    /// The subject's audit tag when the family started, in hex: what the
    /// family's events carry in place of the subject. Missing on families
    /// started before audit tags.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) audit_tag: Option<String>,
    /// How the subject authenticated at the start (RFC 8176 `amr`), for
    /// every access token of the family.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) amr: Vec<String>,
    /// The application's claims for every access token of the family:
    /// given at the start, changed by `Sessions::set_claims`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) claims: Option<SessionClaims>,
}

/// What a presented refresh token leads to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub(crate) enum Outcome {
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
pub(crate) fn decide(
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
pub(crate) fn liveness(
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

/// The subject's revocation record: a revoke-all raises its epoch past
/// every family started before.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub(crate) struct SubjectRecord {
    pub(crate) epoch: u64,
    /// An erasure of the subject began and has not finished: no session
    /// of it starts, refreshes or authenticates strictly.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub(crate) erasing: bool,
}

/// The start rule: a new family at the subject's current epoch.
pub(crate) fn decide_start(
    subject: &str,
    subject_record: Option<SubjectRecord>,
    now: u64,
) -> Family {
    Family {
        subject: subject.to_owned(),
        epoch: subject_record.map_or(0, |r| r.epoch),
        created: now,
        last_used: now,
        generation: 0,
        revoked: false,
        audit_tag: None,
        amr: Vec::new(),
        claims: None,
    }
}

/// The revoke rule (logout): the family revoked, or `None` when it already
/// is.
pub(crate) fn decide_revoke(family: &Family) -> Option<Family> {
    (!family.revoked).then(|| Family {
        revoked: true,
        ..family.clone()
    })
}

/// The revoke-all rule: an epoch strictly above every epoch handed out so
/// far, and at least the time, so that it stays above them after the
/// record expires and is created again.
pub(crate) fn decide_revoke_all(subject_record: Option<SubjectRecord>, now: u64) -> SubjectRecord {
    let old = subject_record.map_or(0, |r| r.epoch);
    SubjectRecord {
        epoch: old.saturating_add(1).max(now),
        erasing: subject_record.is_some_and(|r| r.erasing),
    }
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
            audit_tag: None,
            amr: Vec::new(),
            claims: None,
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
