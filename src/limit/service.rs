//! The service: one transaction per check, over one record.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::cache::{DEFAULT_CAP, DenyCache};
use super::gcra::{self, Verdict};
use super::{Allowance, FailMode, Limit, LimitError};
use crate::clock::Clock;
use crate::error::Error;
use crate::secret::SecretBytes;
use crate::store::{Decision, Store, StoreError, Stored, transact_ms};

/// The longest key accepted, in bytes.
const MAX_KEY_LEN: usize = 1_024;
/// What the key tag's MAC covers before the limit's name.
const TAG_DOMAIN: &[u8] = b"keyward limit key v1\0";
/// The record's format byte.
const FORMAT: u8 = 0x02;
const NS_PER_MS: u64 = 1_000_000;

/// The shared rate limits. Reached through
/// [`Keyward::limits`](crate::Keyward::limits); cheap to clone (clones
/// share the deny cache). See [the module docs](crate::limit).
#[derive(Clone)]
pub struct Limits {
    inner: Arc<Inner>,
    cache: Option<Arc<DenyCache>>,
}

struct Inner {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    tag_key: SecretBytes,
    max_retries: u32,
}

impl fmt::Debug for Limits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Limits")
            .field("store", &self.inner.store)
            .field("cached_denials", &self.cached_denials())
            .finish_non_exhaustive()
    }
}

/// The record: the theoretical arrival time, in nanoseconds since the Unix
/// epoch on the store's clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Tat(u64);

impl Stored for Tat {
    fn to_bytes(&self) -> Result<Vec<u8>, StoreError> {
        let mut out = Vec::with_capacity(9);
        out.push(FORMAT);
        out.extend_from_slice(&self.0.to_be_bytes());
        Ok(out)
    }

    fn from_bytes(bytes: &[u8]) -> Result<Self, StoreError> {
        match bytes.split_first() {
            Some((&FORMAT, rest)) => <[u8; 8]>::try_from(rest)
                .map(|b| Self(u64::from_be_bytes(b)))
                .map_err(|_| StoreError::Corrupt("rate-limit record of the wrong length")),
            _ => Err(StoreError::Corrupt("unknown rate-limit record format")),
        }
    }
}

/// What [`Limits::take_in`] decided: the record to write with its
/// lifetime, or the refusal.
pub(crate) enum Take {
    Allowed { record: Tat, ttl: Duration },
    Denied(Error),
}

/// What one attempt of a check decided.
enum Checked {
    Allowed(Allowance),
    Denied {
        retry_after_ns: u64,
        /// The stored TAT and the store's time, for the deny cache.
        tat: u64,
        now: u64,
    },
}

/// What one attempt of a [`Limits::check_both`] decided.
enum Both {
    Allowed(Allowance, Allowance),
    Denied {
        /// Each limit's wait, where it refused.
        denied: [Option<u64>; 2],
        /// The stored TATs and the store's time, for the deny cache.
        tats: [u64; 2],
        now: u64,
    },
}

/// The longest of the waits, with its position.
fn longest(waits: [Option<u64>; 2]) -> Option<(u64, usize)> {
    match waits {
        [Some(a), Some(b)] if b > a => Some((b, 1)),
        [Some(a), _] => Some((a, 0)),
        [None, Some(b)] => Some((b, 1)),
        [None, None] => None,
    }
}

impl Limits {
    pub(crate) fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        tag_key: SecretBytes,
        max_retries: u32,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                store,
                clock,
                tag_key,
                max_retries,
            }),
            cache: Some(Arc::new(DenyCache::new(DEFAULT_CAP))),
        }
    }

    /// The same limits without the deny cache: every check goes to the
    /// store. For comparison and tests; a service wants the cache.
    #[must_use]
    pub fn without_deny_cache(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
            cache: None,
        }
    }

    /// Takes one unit of `limit` for `key` (an IP address, an account, an
    /// API key id). See [`check_cost`](Self::check_cost).
    ///
    /// # Errors
    /// As [`check_cost`](Self::check_cost).
    pub async fn check(&self, limit: &Limit, key: &str) -> Result<Allowance, Error> {
        self.check_cost(limit, key, 1).await
    }

    /// Takes `cost` units of `limit` for `key`: one load and, when
    /// allowed, one commit; when denied, one load, or none while this
    /// process's deny cache is sure of the denial.
    ///
    /// # Errors
    /// - [`Error::RateLimited`] when the key is over its limit; nothing is
    ///   counted;
    /// - [`Error::Store`] when the store fails and the limit fails closed;
    /// - [`Error::Busy`] after `max_retries` lost compare-and-swaps on
    ///   the key's record;
    /// - [`Error::Limit`]: [`LimitError::BadLimit`] for an invalid limit,
    ///   [`LimitError::BadCost`] for a cost of 0 or above the burst,
    ///   [`LimitError::BadKey`] for an empty key or one over 1,024 bytes.
    pub async fn check_cost(
        &self,
        limit: &Limit,
        key: &str,
        cost: u32,
    ) -> Result<Allowance, Error> {
        let rule = limit.rule()?;
        if cost == 0 || cost > rule.burst {
            return Err(LimitError::BadCost { burst: rule.burst }.into());
        }
        let record = self.record_key(limit, key)?;
        let began = self.inner.clock.monotonic_ms().saturating_mul(NS_PER_MS);
        if let Some(cache) = &self.cache
            && let Some(wait) = cache.denied(&record, rule, cost, began)
        {
            return Err(rate_limited(limit, wait));
        }
        let checked = transact_ms(
            &*self.inner.store,
            &*self.inner.clock,
            &[&record],
            self.inner.max_retries,
            |(stored,): (Option<Tat>,), now_ms| {
                let now = now_ms.saturating_mul(NS_PER_MS);
                let stored = stored.map(|t| t.0);
                match gcra::decide(rule, stored, now, cost) {
                    Verdict::Allow {
                        tat,
                        remaining,
                        reset_after_ns,
                    } => {
                        let allowance = Allowance {
                            remaining,
                            reset_after: Duration::from_nanos(reset_after_ns),
                            unchecked: false,
                        };
                        Ok(Decision::only(Checked::Allowed(allowance)).write(
                            0,
                            &Tat(tat),
                            record_ttl(reset_after_ns),
                        )?)
                    }
                    Verdict::Deny { retry_after_ns } => Ok(Decision::only(Checked::Denied {
                        retry_after_ns,
                        tat: stored.unwrap_or(now),
                        now,
                    })),
                }
            },
        )
        .await;
        match checked {
            Ok(Checked::Allowed(allowance)) => Ok(allowance),
            Ok(Checked::Denied {
                retry_after_ns,
                tat,
                now,
            }) => {
                if let Some(cache) = &self.cache {
                    cache.deny(&record, rule, tat, now, began);
                }
                Err(rate_limited(limit, retry_after_ns))
            }
            Err(Error::Store(e)) if limit.fail_mode() == FailMode::Open => {
                tracing::warn!(
                    limit = limit.name(),
                    error = %e,
                    "keyward: rate limit not checked: the store failed and the limit fails open"
                );
                Ok(Allowance::not_checked())
            }
            Err(e) => Err(e),
        }
    }

    /// Takes one unit of each of two limits, in one commit, all or
    /// nothing: for a request that two limits guard at once, such as a
    /// login (per source and per account). One load and, when both allow,
    /// one commit of both records, where two [`check`](Self::check)s would
    /// make two; and a request one limit refuses is not counted against
    /// the other.
    ///
    /// Returns each limit's allowance, in the order given.
    ///
    /// # Errors
    /// As [`check_cost`](Self::check_cost); when both limits refuse,
    /// [`Error::RateLimited`] carries the longer wait. A failing store lets
    /// the request through uncounted only when both limits fail open.
    /// [`Error::Limit`] ([`LimitError::BadKey`]) when both name the same
    /// record (the same limit and key).
    pub async fn check_both(
        &self,
        (first, first_key): (&Limit, &str),
        (second, second_key): (&Limit, &str),
    ) -> Result<(Allowance, Allowance), Error> {
        let rules = [first.rule()?, second.rule()?];
        let records = [
            self.record_key(first, first_key)?,
            self.record_key(second, second_key)?,
        ];
        if records[0] == records[1] {
            return Err(LimitError::BadKey.into());
        }
        let limits = [first, second];
        let began = self.inner.clock.monotonic_ms().saturating_mul(NS_PER_MS);
        if let Some(cache) = &self.cache {
            let waits = [
                cache.denied(&records[0], rules[0], 1, began),
                cache.denied(&records[1], rules[1], 1, began),
            ];
            if let Some((w, i)) = longest(waits) {
                return Err(rate_limited(limits.get(i).copied().unwrap_or(first), w));
            }
        }
        let checked = transact_ms(
            &*self.inner.store,
            &*self.inner.clock,
            &[&records[0], &records[1]],
            self.inner.max_retries,
            |(a, b): (Option<Tat>, Option<Tat>), now_ms| {
                let now = now_ms.saturating_mul(NS_PER_MS);
                let stored = [a.map(|t| t.0), b.map(|t| t.0)];
                let verdicts = [
                    gcra::decide(rules[0], stored[0], now, 1),
                    gcra::decide(rules[1], stored[1], now, 1),
                ];
                match verdicts {
                    [
                        Verdict::Allow {
                            tat: tat_a,
                            remaining: left_a,
                            reset_after_ns: reset_a,
                        },
                        Verdict::Allow {
                            tat: tat_b,
                            remaining: left_b,
                            reset_after_ns: reset_b,
                        },
                    ] => {
                        let allowance = |remaining, reset_after_ns| Allowance {
                            remaining,
                            reset_after: Duration::from_nanos(reset_after_ns),
                            unchecked: false,
                        };
                        Ok(Decision::only(Both::Allowed(
                            allowance(left_a, reset_a),
                            allowance(left_b, reset_b),
                        ))
                        .write(0, &Tat(tat_a), record_ttl(reset_a))?
                        .write(1, &Tat(tat_b), record_ttl(reset_b))?)
                    }
                    _ => {
                        // Every refusing limit, for the deny cache; the
                        // request waits for the longest.
                        let denied = verdicts.map(|v| match v {
                            Verdict::Deny { retry_after_ns } => Some(retry_after_ns),
                            Verdict::Allow { .. } => None,
                        });
                        Ok(Decision::only(Both::Denied {
                            denied,
                            tats: [stored[0].unwrap_or(now), stored[1].unwrap_or(now)],
                            now,
                        }))
                    }
                }
            },
        )
        .await;
        match checked {
            Ok(Both::Allowed(a, b)) => Ok((a, b)),
            Ok(Both::Denied { denied, tats, now }) => {
                if let Some(cache) = &self.cache {
                    for (((wait, record), rule), tat) in
                        denied.iter().zip(&records).zip(rules).zip(tats)
                    {
                        if wait.is_some() {
                            cache.deny(record, rule, tat, now, began);
                        }
                    }
                }
                // A denial names at least one refusing limit.
                let (w, i) = longest(denied).unwrap_or((0, 0));
                Err(rate_limited(limits.get(i).copied().unwrap_or(first), w))
            }
            Err(Error::Store(e))
                if first.fail_mode() == FailMode::Open && second.fail_mode() == FailMode::Open =>
            {
                tracing::warn!(
                    limits = %format_args!("{}, {}", first.name(), second.name()),
                    error = %e,
                    "keyward: rate limits not checked: the store failed and both limits fail open"
                );
                Ok((Allowance::not_checked(), Allowance::not_checked()))
            }
            Err(e) => Err(e),
        }
    }

    /// Forgets `key`'s count under `limit`: its next check starts from a
    /// full burst. Returns whether there was a count to forget. Other
    /// processes that cached a denial of the key keep refusing it until
    /// that denial would have ended (see [the module docs](crate::limit)).
    ///
    /// # Errors
    /// [`Error::Store`] when the store fails; [`Error::Busy`];
    /// [`Error::Limit`] for an invalid limit or key.
    pub async fn reset(&self, limit: &Limit, key: &str) -> Result<bool, Error> {
        limit.rule()?;
        let record = self.record_key(limit, key)?;
        if let Some(cache) = &self.cache {
            cache.forget(&record);
        }
        transact_ms(
            &*self.inner.store,
            &*self.inner.clock,
            &[&record],
            self.inner.max_retries,
            |(stored,): (Option<Tat>,), _now| {
                Ok(match stored {
                    Some(_) => Decision::only(true).delete(0),
                    None => Decision::only(false),
                })
            },
        )
        .await
    }

    /// The record key of `key` under `limit`, for a service that takes
    /// from the limit inside a transaction of its own ([`Self::take_in`]).
    pub(crate) fn key_of(&self, limit: &Limit, key: &str) -> Result<String, Error> {
        limit.rule()?;
        self.record_key(limit, key)
    }

    /// The rule for one unit of `limit`, given its loaded record, inside
    /// another service's transaction: so that a unit is taken only when
    /// that service's own decision goes through (a code is sent), in the
    /// same commit. No deny cache.
    pub(crate) fn take_in(limit: &Limit, stored: Option<Tat>, now_ms: u64) -> Result<Take, Error> {
        let rule = limit.rule()?;
        let now = now_ms.saturating_mul(NS_PER_MS);
        Ok(match gcra::decide(rule, stored.map(|t| t.0), now, 1) {
            Verdict::Allow {
                tat,
                reset_after_ns,
                ..
            } => Take::Allowed {
                record: Tat(tat),
                ttl: record_ttl(reset_after_ns),
            },
            Verdict::Deny { retry_after_ns } => Take::Denied(rate_limited(limit, retry_after_ns)),
        })
    }

    /// Denials held in this process's deny cache now.
    #[must_use]
    pub fn cached_denials(&self) -> usize {
        self.cache.as_deref().map_or(0, DenyCache::len)
    }

    /// The record's key: the limit's name and a keyed tag of `key`.
    pub(super) fn record_key(&self, limit: &Limit, key: &str) -> Result<String, Error> {
        if key.is_empty() || key.len() > MAX_KEY_LEN {
            return Err(LimitError::BadKey.into());
        }
        let tag = crate::mac::tag128(
            self.inner.tag_key.unprotected_as_bytes(),
            &[TAG_DOMAIN, limit.name().as_bytes(), b"\0", key.as_bytes()],
        );
        Ok(format!(
            "kw:rl:{}:{}",
            limit.name(),
            crate::hex::encode(&tag)
        ))
    }
}

/// The record lives until its bucket is full again: then it is the same as
/// no record. At least a millisecond, rounded up.
pub(super) fn record_ttl(reset_after_ns: u64) -> Duration {
    Duration::from_millis(reset_after_ns.div_ceil(NS_PER_MS).max(1))
}

fn rate_limited(limit: &Limit, wait_ns: u64) -> Error {
    let retry_after = Duration::from_millis(wait_ns.div_ceil(NS_PER_MS).max(1));
    tracing::debug!(
        limit = limit.name(),
        retry_after_ms = u64::try_from(retry_after.as_millis()).unwrap_or(u64::MAX),
        "rate limited"
    );
    Error::RateLimited { retry_after }
}
