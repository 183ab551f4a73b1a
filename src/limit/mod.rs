//! Rate limits that are exact across replicas: the generic cell rate
//! algorithm (GCRA) over the [`Store`](crate::Store).
//!
//! A [`Limit`] is a name, a rate (`count` per `period`) and a burst. Each
//! (limit, key) pair has one record, holding the *theoretical arrival
//! time*: an absolute time on the store's clock (PostgreSQL's `now()`,
//! Redis's `TIME`, the host's for memory and SQLite). [`Limits::check`]
//! loads it, decides, and for an allowed request commits the next arrival
//! time with a compare-and-swap: one load and one commit. A denied request
//! writes nothing. Every allowed request is a successful compare-and-swap
//! on one record, so the count is exact on every backend, however many
//! processes share the store, and whatever their host clocks say. The
//! record expires when its bucket would be full again.
//!
//! **The deny cache.** The arrival time never goes backwards, so a denial
//! stays certain for a computable time: each [`Limits`] remembers it and
//! refuses the same key again without a round trip until then (bounded:
//! 10,000 keys). A flood against one key costs one load, then nothing. The
//! cache never refuses what the store would allow, with two exceptions you
//! control: after [`Limits::reset`] in *another* process, this process
//! keeps refusing the key until its cached denial ends; and with a store on
//! the host's clock (memory, SQLite), a wall clock set forward makes the
//! store allow sooner than the cache.
//!
//! **Keys are hashed** before they reach the store, with a key the key ring
//! derives: an IP address or an account name is personal data, and the
//! store only ever sees `kw:rl:<name>:<tag>`.
//!
//! **When the store fails**, a limit fails closed by default: the check
//! returns [`Error::Store`] and the caller refuses the request. A limit made
//! with [`Limit::fail_open`] allows the request instead, marks the
//! [`Allowance`] as unchecked and logs a warning: for limits that protect
//! capacity rather than accounts.
//!
//! The in-process [`throttle`](crate::throttle) tier (governor) stays for
//! shedding load cheaply before any store access; it counts per process.
//! The limits here are the exact tier.
//!
//! ```
//! # async fn demo() -> Result<(), keyward::Error> {
//! use std::time::Duration;
//! use keyward::limit::{Limit, LOGIN_PER_SOURCE};
//! use keyward::{Error, KeyRing, JwtAlg, Keyward, MemoryStore};
//!
//! let kw = Keyward::builder()
//!     .keys(KeyRing::generate(JwtAlg::EdDSA)?)
//!     .store(MemoryStore::new())
//!     .build_partial()?;
//! // Before each password verification, per source address:
//! kw.limits()?.check(&LOGIN_PER_SOURCE, "203.0.113.7").await?;
//!
//! // A limit of your own: 3 exports an hour per account, 1 at once.
//! const EXPORTS: Limit = Limit::new("exports", 3, Duration::from_secs(3_600)).burst(1);
//! let allowance = kw.limits()?.check(&EXPORTS, "user-42").await?;
//! assert_eq!(allowance.remaining, 0);
//! match kw.limits()?.check(&EXPORTS, "user-42").await {
//!     Err(Error::RateLimited { retry_after }) => assert!(retry_after <= Duration::from_secs(1_200)),
//!     other => panic!("{other:?}"),
//! }
//! # Ok(()) }
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(demo()).unwrap();
//! ```

use std::borrow::Cow;
use std::time::Duration;

use crate::error::Error;
pub use crate::error::LimitError;

mod cache;
pub(crate) mod gcra;
mod service;
#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::panic,
    clippy::arithmetic_side_effects,
    reason = "tests: a failed check panics"
)]
mod tests;

pub use service::Limits;
pub(crate) use service::{Take, Tat};

use gcra::Rule;

/// The longest period accepted: a year.
pub const MAX_PERIOD: Duration = Duration::from_secs(365 * 86_400);
/// The largest count or burst accepted.
pub const MAX_COUNT: u32 = 1_000_000;
/// The longest name accepted, in bytes.
pub const MAX_NAME_LEN: usize = 32;
/// The longest time a full bucket may take to refill (burst × period /
/// count): ten years.
const MAX_SPAN_NS: u64 = 10 * 365 * 86_400 * 1_000_000_000;

/// Password verifications per source address: a burst of 10, then 10 a
/// minute. Behind a NAT many users share an address; tune it to your
/// traffic.
pub const LOGIN_PER_SOURCE: Limit = Limit::new("login_source", 10, Duration::from_secs(60));
/// Password verifications per account, from any source: a burst of 10,
/// then 10 a minute. With the per-source limit it bounds both a single
/// source trying many accounts and many sources trying one account.
pub const LOGIN_PER_ACCOUNT: Limit = Limit::new("login_account", 10, Duration::from_secs(60));
/// One-time-code verifications per source address: a burst of 10, then 10
/// a minute. The per-subject lockout (3 failures) stays the authority on
/// a subject; this bounds one source guessing across many subjects.
pub const CODE_VERIFY_PER_SOURCE: Limit =
    Limit::new("code_verify_source", 10, Duration::from_secs(60));

/// What happens to a check when the store fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FailMode {
    /// Refuse: the check returns the store's error. The default.
    Closed,
    /// Allow, with [`Allowance::unchecked`] set, and log a warning.
    Open,
}

/// One rate limit: `count` units per `period`, at most `burst` at once.
///
/// Made with `const fn`s, so a limit can be a `const`; [`Limit::named`]
/// takes a name known only at run time. It is checked when
/// used: [`Limits::check`] returns [`LimitError::BadLimit`] for a name that
/// is empty, longer than 32 bytes or not of `a-z 0-9 _ . -`, a count or
/// burst of 0 or above 1,000,000, a period of 0 or above a year, or a full
/// bucket that takes more than ten years to refill.
///
/// The name names the records: two limits of one name share their counts,
/// so give each its own.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Limit {
    name: Cow<'static, str>,
    count: u32,
    period: Duration,
    burst: u32,
    fail: FailMode,
}

impl Limit {
    /// `count` units per `period`, with a burst of `count`, failing closed.
    #[must_use]
    pub const fn new(name: &'static str, count: u32, period: Duration) -> Self {
        Self {
            name: Cow::Borrowed(name),
            count,
            period,
            burst: count,
            fail: FailMode::Closed,
        }
    }

    /// [`Limit::new`] with a name known at run time (from configuration,
    /// say).
    #[must_use]
    pub fn named(name: impl Into<String>, count: u32, period: Duration) -> Self {
        Self {
            name: Cow::Owned(name.into()),
            ..Self::new("", count, period)
        }
    }

    /// At most `burst` units at once (a full bucket).
    #[must_use]
    pub const fn burst(mut self, burst: u32) -> Self {
        self.burst = burst;
        self
    }

    /// Allows requests when the store fails (see [`FailMode::Open`]).
    #[must_use]
    pub const fn fail_open(mut self) -> Self {
        self.fail = FailMode::Open;
        self
    }

    /// The name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Units earned back per [`period`](Self::period).
    #[must_use]
    pub const fn count(&self) -> u32 {
        self.count
    }

    /// The period of the rate.
    #[must_use]
    pub const fn period(&self) -> Duration {
        self.period
    }

    /// Units allowed at once.
    #[must_use]
    pub const fn burst_size(&self) -> u32 {
        self.burst
    }

    /// What a store failure does.
    #[must_use]
    pub const fn fail_mode(&self) -> FailMode {
        self.fail
    }

    /// Checks the numbers and the name.
    ///
    /// # Errors
    /// [`LimitError::BadLimit`], naming what is wrong.
    pub fn validate(&self) -> Result<(), Error> {
        self.rule().map(|_| ())
    }

    /// The limit in the rule's unit, once checked.
    pub(crate) fn rule(&self) -> Result<Rule, Error> {
        let bad = |what| Err(Error::Limit(LimitError::BadLimit(what)));
        let name_ok = !self.name.is_empty()
            && self.name.len() <= MAX_NAME_LEN
            && self.name.bytes().all(|b| {
                b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'.' | b'-')
            });
        if !name_ok {
            return bad("the name must be 1 to 32 bytes of a-z, 0-9, '_', '.' and '-'");
        }
        if self.count == 0 || self.count > MAX_COUNT {
            return bad("the count must be 1 to 1000000");
        }
        if self.burst == 0 || self.burst > MAX_COUNT {
            return bad("the burst must be 1 to 1000000");
        }
        if self.period.is_zero() || self.period > MAX_PERIOD {
            return bad("the period must be more than 0 and at most a year");
        }
        let period_ns = u64::try_from(self.period.as_nanos()).unwrap_or(u64::MAX);
        let emission_ns = period_ns.div_ceil(u64::from(self.count)).max(1);
        let rule = Rule {
            emission_ns,
            burst: self.burst,
        };
        if rule.span_ns() > MAX_SPAN_NS {
            return bad("a full bucket must refill within ten years");
        }
        Ok(rule)
    }
}

/// An allowed request: what is left.
///
/// `Serialize` and `Deserialize` for JSON answers, with the field names
/// below; `reset_after` is whole seconds, rounded up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct Allowance {
    /// Units still allowed at once after this request.
    pub remaining: u32,
    /// Until the key's bucket is full again.
    #[serde(with = "crate::clock::secs")]
    pub reset_after: Duration,
    /// The store failed and the limit fails open: nothing was counted.
    pub unchecked: bool,
}

impl Allowance {
    fn not_checked() -> Self {
        Self {
            remaining: 0,
            reset_after: Duration::ZERO,
            unchecked: true,
        }
    }
}
