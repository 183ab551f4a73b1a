//! The pure rule: the generic cell rate algorithm (GCRA), in whole
//! nanoseconds on the store's clock.
//!
//! A limit earns back one unit every `emission` and holds at most `burst`
//! units. Its whole state is one instant, the theoretical arrival time
//! (TAT): the time at which the bucket would be full again. A request of
//! `cost` units at `now` is allowed when
//! `max(TAT, now) + cost × emission − now ≤ burst × emission`, and then
//! moves the TAT there; a denied request changes nothing. The TAT never
//! goes backwards, which is what lets a denial be cached (see the cache).

/// A limit's numbers in the rule's unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Rule {
    /// Nanoseconds to earn back one unit: the period divided by the count,
    /// rounded up (so a limit never allows more than its rate). At least 1.
    pub(crate) emission_ns: u64,
    /// Units allowed at once. At least 1.
    pub(crate) burst: u32,
}

impl Rule {
    /// The time a full bucket spans: `burst × emission`.
    pub(crate) fn span_ns(self) -> u64 {
        self.emission_ns.saturating_mul(u64::from(self.burst))
    }

    /// The time `cost` units take to earn back.
    pub(crate) fn cost_ns(self, cost: u32) -> u64 {
        self.emission_ns.saturating_mul(u64::from(cost))
    }
}

/// What one request gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Allowed: the record becomes `tat`.
    Allow {
        /// The new theoretical arrival time.
        tat: u64,
        /// Units still allowed at once after this request.
        remaining: u32,
        /// Until the bucket is full again (the record's lifetime).
        reset_after_ns: u64,
    },
    /// Denied; nothing changes.
    Deny {
        /// Until a request of the same cost would be allowed.
        retry_after_ns: u64,
    },
}

/// The verdict for a request of `cost` units (1 to `burst`) at `now`, given
/// the stored TAT (`None`: no record, a full bucket).
pub(crate) fn decide(rule: Rule, stored: Option<u64>, now: u64, cost: u32) -> Verdict {
    let tat = stored.map_or(now, |t| t.max(now));
    let next = tat.saturating_add(rule.cost_ns(cost));
    let ahead = next.saturating_sub(now);
    let span = rule.span_ns();
    if ahead > span {
        return Verdict::Deny {
            retry_after_ns: ahead.saturating_sub(span),
        };
    }
    let left = span
        .saturating_sub(ahead)
        .checked_div(rule.emission_ns)
        .unwrap_or(0);
    Verdict::Allow {
        tat: next,
        remaining: u32::try_from(left).unwrap_or(rule.burst).min(rule.burst),
        reset_after_ns: ahead,
    }
}
