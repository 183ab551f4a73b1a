//! In-process rate limits: the cheap first tier in front of the paths an
//! attacker can drive, such as verifying passwords.
//!
//! Each [`Throttle`] is a keyed [`governor`] limiter (GCRA): a burst of
//! `burst` calls per key, then one more every `period_secs`. A refused call
//! is [`Error::Throttled`] with the time to wait.
//!
//! **These limits are per process.** Ten replicas behind a load balancer
//! allow ten times the rate, and a restart forgets every key; a one-shot
//! process (the `keyward` CLI) never throttles at all. They shed load and
//! slow down a single source cheaply, with no store access. The exact tier
//! is [`crate::limit`]: limits kept in the [`Store`](crate::Store), counted
//! with compare-and-swap, and the same for every replica. Code sends use
//! it (the `code_send_*` numbers of [`ThrottlePolicy`]), as does the
//! one-time-code lockout ([`crate::otp`]).
//!
//! Memory stays bounded (governor#171). Keys are hashed to 16 bytes, so a
//! long key costs no more than a short one, and no raw IP address or account
//! name is held. Every so often a call purges the keys whose state is
//! indistinguishable from a fresh key ([`Throttle::purge`], governor's
//! `retain_recent`; a key qualifies one period after its burst has fully
//! refilled). A purge runs after at least `purge_every` calls, and after at
//! least as many calls as keys the last purge kept, so it costs amortised
//! O(1) per call, and the map holds at most the recently active keys plus
//! the new keys of the calls since the last purge.

use std::fmt;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use governor::clock::Clock as _;
use governor::middleware::NoOpMiddleware;
use governor::nanos::Nanos;
use governor::state::keyed::DashMapStateStore;
use governor::{Quota, RateLimiter};
use sha2::{Digest, Sha256};

use crate::clock::Clock;
use crate::error::Error;
use crate::limit::Limit;

/// One code send per subject per 60 s, with no burst: a second request
/// within the minute is refused (OWASP Forgot Password and MFA cheat
/// sheets: limit how often codes are sent, to protect the user's inbox and
/// the SMS budget).
pub const DEFAULT_CODE_SEND_PERIOD_SECS: u64 = 60;
/// Code sends allowed at once per subject.
pub const DEFAULT_CODE_SEND_BURST: u32 = 1;
/// Password verifications per key: a burst of 10, then one every 6 s
/// (10 a minute). Tune it to your traffic: behind a NAT many users share an
/// address.
pub const DEFAULT_LOGIN_BURST: u32 = 10;
/// Seconds to earn back one password verification.
pub const DEFAULT_LOGIN_PERIOD_SECS: u64 = 6;
/// A purge runs after at least this many calls.
pub const DEFAULT_PURGE_EVERY: u64 = 4_096;

/// The longest replenish period accepted: one day.
const MAX_PERIOD_SECS: u64 = 86_400;
/// The largest burst accepted.
const MAX_BURST: u32 = 1_000_000;
/// The longest time a full bucket may take to refill: a year.
const MAX_BUCKET_SECS: u64 = 365 * 86_400;
/// The throttle clock saturates after this many seconds of uptime (about
/// 31 years), far below the `u64` nanoseconds governor counts in.
const MAX_UPTIME_SECS: u64 = 1_000_000_000;

/// The numbers of the built-in throttles. Validated when the
/// [`Keyward`](crate::Keyward) is built.
///
/// With the `config` feature it is `Deserialize`: the keys are the field
/// names, an absent key keeps its default, an unknown key is an error.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(
    feature = "config",
    derive(serde::Deserialize),
    serde(deny_unknown_fields, default)
)]
#[non_exhaustive]
pub struct ThrottlePolicy {
    /// Seconds to earn back one code send, per subject. Kept in the store,
    /// so exact across processes ([`crate::limit`]).
    pub code_send_period_secs: u64,
    /// Code sends allowed at once, per subject (in the store too).
    pub code_send_burst: u32,
    /// Seconds to earn back one password verification, per key.
    pub login_period_secs: u64,
    /// Password verifications allowed at once, per key.
    pub login_burst: u32,
    /// A purge of stale keys runs after at least this many calls.
    pub purge_every: u64,
}

impl Default for ThrottlePolicy {
    fn default() -> Self {
        Self {
            code_send_period_secs: DEFAULT_CODE_SEND_PERIOD_SECS,
            code_send_burst: DEFAULT_CODE_SEND_BURST,
            login_period_secs: DEFAULT_LOGIN_PERIOD_SECS,
            login_burst: DEFAULT_LOGIN_BURST,
            purge_every: DEFAULT_PURGE_EVERY,
        }
    }
}

/// Checks a throttle's burst and period.
fn check_numbers(name: &str, burst: u32, period_secs: u64) -> Result<NonZeroU32, Error> {
    let burst = NonZeroU32::new(burst)
        .filter(|b| b.get() <= MAX_BURST)
        .ok_or_else(|| Error::Config(format!("throttle {name}: burst must be 1 to 1000000")))?;
    if period_secs == 0 || period_secs > MAX_PERIOD_SECS {
        return Err(Error::Config(format!(
            "throttle {name}: period must be 1 to 86400 seconds"
        )));
    }
    // governor counts in u64 nanoseconds: keep a full bucket's time
    // (period × burst) within a year.
    if period_secs
        .checked_mul(u64::from(burst.get()))
        .is_none_or(|s| s > MAX_BUCKET_SECS)
    {
        return Err(Error::Config(format!(
            "throttle {name}: period times burst must be at most a year"
        )));
    }
    Ok(burst)
}

impl ThrottlePolicy {
    /// The code-send limit these numbers define: `code_send_burst` sends
    /// at once per subject, then one every `code_send_period_secs`. It is
    /// kept in the store ([`crate::limit`]), so it holds across processes.
    pub(crate) fn code_send_limit(&self) -> Result<Limit, Error> {
        let burst = check_numbers(
            "code_send",
            self.code_send_burst,
            self.code_send_period_secs,
        )?;
        let limit = Limit::new(
            "code_send",
            1,
            Duration::from_secs(self.code_send_period_secs),
        )
        .burst(burst.get());
        limit.validate()?;
        Ok(limit)
    }
}

/// governor's view of keyed time: whole seconds from the injected
/// [`Clock`], counted from the throttle's creation, in nanoseconds.
#[derive(Clone)]
struct ThrottleClock {
    clock: Arc<dyn Clock>,
    origin: u64,
}

impl ThrottleClock {
    fn new(clock: Arc<dyn Clock>) -> Self {
        let origin = clock.now();
        Self { clock, origin }
    }
}

impl governor::clock::Clock for ThrottleClock {
    type Instant = Nanos;

    fn now(&self) -> Nanos {
        // A clock that goes back reads as no time passed: keys stay
        // throttled longer, never shorter.
        let secs = self
            .clock
            .now()
            .saturating_sub(self.origin)
            .min(MAX_UPTIME_SECS);
        Nanos::from(secs.saturating_mul(1_000_000_000))
    }
}

type Limiter =
    RateLimiter<[u8; 16], DashMapStateStore<[u8; 16]>, ThrottleClock, NoOpMiddleware<Nanos>>;

/// A keyed in-process rate limit with bounded memory.
///
/// ```
/// use std::sync::Arc;
/// use keyward::clock::ManualClock;
/// use keyward::throttle::Throttle;
/// use keyward::Error;
///
/// # fn main() -> Result<(), Error> {
/// let clock = ManualClock::new(1_000);
/// // 2 at once, then one every 30 s.
/// let t = Throttle::new("api", 2, 30, 1_000, Arc::new(clock.clone()))?;
/// t.check(b"203.0.113.7")?;
/// t.check(b"203.0.113.7")?;
/// let Err(Error::Throttled { retry_after }) = t.check(b"203.0.113.7") else { panic!() };
/// assert_eq!(retry_after.as_secs(), 30);
/// t.check(b"198.51.100.1")?;                  // other keys are not affected
/// clock.advance(30);
/// t.check(b"203.0.113.7")?;
/// # Ok(()) }
/// ```
pub struct Throttle {
    name: &'static str,
    limiter: Limiter,
    clock: ThrottleClock,
    purge_every: u64,
    calls: AtomicU64,
    next_purge: AtomicU64,
}

impl fmt::Debug for Throttle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Throttle")
            .field("name", &self.name)
            .field("keys", &self.limiter.len())
            .finish_non_exhaustive()
    }
}

impl Throttle {
    /// A throttle allowing `burst` calls per key at once, then one every
    /// `period_secs`. `name` tags its log events and separates its keys
    /// from other throttles'. Time comes from `clock`, in whole seconds.
    ///
    /// # Errors
    /// [`Error::Config`] when `burst` is 0 or above 1,000,000,
    /// `period_secs` is 0 or above a day, their product is above a year,
    /// or `purge_every` is 0.
    pub fn new(
        name: &'static str,
        burst: u32,
        period_secs: u64,
        purge_every: u64,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, Error> {
        let burst = check_numbers(name, burst, period_secs)?;
        if purge_every == 0 {
            return Err(Error::Config(format!(
                "throttle {name}: purge_every must be at least 1"
            )));
        }
        let quota = Quota::with_period(Duration::from_secs(period_secs))
            .ok_or_else(|| Error::Config(format!("throttle {name}: invalid period")))?
            .allow_burst(burst);
        let clock = ThrottleClock::new(clock);
        Ok(Self {
            name,
            limiter: RateLimiter::dashmap_with_clock(quota, clock.clone()),
            clock,
            purge_every,
            calls: AtomicU64::new(0),
            next_purge: AtomicU64::new(purge_every),
        })
    }

    /// Takes one call for `key` (an IP address, an account, a subject).
    ///
    /// # Errors
    /// [`Error::Throttled`] when the key is over its rate; nothing is
    /// counted then.
    pub fn check(&self, key: &[u8]) -> Result<(), Error> {
        let hashed = self.hash_key(key);
        let result = self.limiter.check_key(&hashed);
        self.maybe_purge();
        result.map_err(|not_until| {
            let wait = not_until.wait_time_from(self.clock.now());
            // Whole seconds, rounded up: a client that waits that long is
            // allowed.
            let secs = if wait.subsec_nanos() > 0 {
                wait.as_secs().saturating_add(1)
            } else {
                wait.as_secs()
            };
            tracing::debug!(throttle = self.name, retry_after = secs, "throttled");
            Error::Throttled {
                retry_after: Duration::from_secs(secs.max(1)),
            }
        })
    }

    /// Drops every key whose state is indistinguishable from a fresh key's
    /// (governor's `retain_recent`), releases the freed capacity, and
    /// returns the number of keys kept. Runs by itself as calls go on; call
    /// it from a timer too if calls can stop for long.
    pub fn purge(&self) -> usize {
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
        let kept = self.limiter.len();
        tracing::debug!(throttle = self.name, kept, "throttle purged");
        kept
    }

    /// Keys held now, stale ones included until the next purge.
    #[must_use]
    pub fn len(&self) -> usize {
        self.limiter.len()
    }

    /// Whether no key is held.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.limiter.is_empty()
    }

    fn hash_key(&self, key: &[u8]) -> [u8; 16] {
        let digest = Sha256::new()
            .chain_update(b"keyward throttle key v1\0")
            .chain_update(self.name.as_bytes())
            .chain_update(b"\0")
            .chain_update(key)
            .finalize();
        let mut out = [0u8; 16];
        out.copy_from_slice(digest.get(..16).unwrap_or(&[0u8; 16]));
        out
    }

    fn maybe_purge(&self) {
        let calls = self.calls.fetch_add(1, Ordering::Relaxed).saturating_add(1);
        let due = self.next_purge.load(Ordering::Relaxed);
        // One caller wins the purge; the others see `u64::MAX` and go on.
        if calls < due
            || self
                .next_purge
                .compare_exchange(due, u64::MAX, Ordering::AcqRel, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        let kept = u64::try_from(self.purge()).unwrap_or(u64::MAX);
        // Wait at least as many calls as keys kept: amortised O(1) per call.
        let next = calls.saturating_add(self.purge_every.max(kept));
        self.next_purge.store(next, Ordering::Release);
    }
}

/// The built-in throttles, reached through
/// [`Keyward::throttles`](crate::Keyward::throttles).
///
/// ```
/// use keyward::{Error, Keyward};
/// # fn main() -> Result<(), Error> {
/// let kw = Keyward::builder().build()?;
/// // Before each password verification, per source address and per account:
/// kw.throttles().check_login("ip:203.0.113.7")?;
/// kw.throttles().check_login("user:alice")?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Throttles {
    login: Throttle,
}

impl Throttles {
    pub(crate) fn new(policy: &ThrottlePolicy, clock: &Arc<dyn Clock>) -> Result<Self, Error> {
        Ok(Self {
            login: Throttle::new(
                "login",
                policy.login_burst,
                policy.login_period_secs,
                policy.purge_every,
                Arc::clone(clock),
            )?,
        })
    }

    /// Takes one password verification for `key`: a source address, an
    /// account name, or both in turn. Call it before
    /// [`Passwords::verify`](crate::Passwords::verify), and answer a
    /// throttled call the way you answer a wrong password, so the two
    /// cannot be told apart by an account prober.
    ///
    /// # Errors
    /// [`Error::Throttled`] when the key is over the login rate.
    pub fn check_login(&self, key: &str) -> Result<(), Error> {
        self.login.check(key.as_bytes())
    }

    /// The password-verification throttle.
    #[must_use]
    pub fn login(&self) -> &Throttle {
        &self.login
    }
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::panic,
    reason = "tests: a failed check panics"
)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    fn throttle(burst: u32, period: u64, purge_every: u64) -> (Throttle, ManualClock) {
        let clock = ManualClock::new(1_700_000_000);
        let t = Throttle::new("t", burst, period, purge_every, Arc::new(clock.clone())).unwrap();
        (t, clock)
    }

    fn retry_after(r: Result<(), Error>) -> u64 {
        match r {
            Err(Error::Throttled { retry_after }) => retry_after.as_secs(),
            other => panic!("expected throttled, got {other:?}"),
        }
    }

    #[test]
    fn one_per_minute_without_burst() {
        let (t, clock) = throttle(1, 60, 1_000);
        t.check(b"alice").unwrap();
        assert_eq!(retry_after(t.check(b"alice")), 60);
        clock.advance(59);
        assert_eq!(retry_after(t.check(b"alice")), 1);
        clock.advance(1);
        t.check(b"alice").unwrap();
        assert_eq!(retry_after(t.check(b"alice")), 60);
        t.check(b"bob").unwrap();
    }

    #[test]
    fn burst_then_one_per_period() {
        let (t, clock) = throttle(3, 10, 1_000);
        for _ in 0..3 {
            t.check(b"k").unwrap();
        }
        assert_eq!(retry_after(t.check(b"k")), 10);
        clock.advance(10);
        t.check(b"k").unwrap();
        assert_eq!(retry_after(t.check(b"k")), 10);
        // After a long rest the whole burst is back, and no more.
        clock.advance(1_000);
        for _ in 0..3 {
            t.check(b"k").unwrap();
        }
        assert!(t.check(b"k").is_err());
    }

    #[test]
    fn a_clock_going_back_never_shortens_the_wait() {
        let (t, clock) = throttle(1, 60, 1_000);
        t.check(b"k").unwrap();
        clock.set(1_699_999_000);
        assert_eq!(retry_after(t.check(b"k")), 60);
    }

    #[test]
    fn policy_bounds_are_checked() {
        let clock: Arc<dyn Clock> = Arc::new(ManualClock::new(0));
        for (burst, period, every) in [
            (0, 60, 1),
            (1, 0, 1),
            (1, 86_401, 1),
            (1, 60, 0),
            (1_000_001, 1, 1),
            (366, 86_400, 1),
            (1_000_000, 86_400, 1),
        ] {
            assert!(
                matches!(
                    Throttle::new("t", burst, period, every, Arc::clone(&clock)),
                    Err(Error::Config(_))
                ),
                "{burst} {period} {every}"
            );
        }
        assert!(Throttle::new("t", 365, 86_400, 1, Arc::clone(&clock)).is_ok());
        assert!(Throttle::new("t", 1_000_000, 31, 1, clock).is_ok());
    }

    #[test]
    fn stale_keys_are_purged_as_calls_go_on() {
        let (t, clock) = throttle(1, 60, 100);
        for i in 0u32..1_000 {
            t.check(&i.to_be_bytes()).unwrap();
        }
        // All recent: every purge so far kept them all.
        assert_eq!(t.len(), 1_000);
        // One period on, a used key is still ahead of a fresh one: kept.
        clock.advance(60);
        assert_eq!(t.purge(), 1_000);
        // Two periods on, it is indistinguishable from a fresh key.
        clock.advance(60);
        // A thousand calls on one key: the purge they trigger drops the
        // 1,000 stale keys without any explicit call.
        for _ in 0..1_000 {
            let _ = t.check(b"hot");
        }
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn keys_of_two_throttles_never_mix() {
        let clock: Arc<dyn Clock> = Arc::new(ManualClock::new(0));
        let a = Throttle::new("a", 1, 60, 10, Arc::clone(&clock)).unwrap();
        let b = Throttle::new("b", 1, 60, 10, clock).unwrap();
        assert_ne!(a.hash_key(b"x"), b.hash_key(b"x"));
        assert_ne!(a.hash_key(b"x"), a.hash_key(b"y"));
    }
}
