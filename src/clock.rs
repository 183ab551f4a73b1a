//! Time, injected. The only place in keyward that reads the wall clock is
//! [`SystemClock`]; everything else takes a [`Clock`], so state machines and
//! expiry rules are tested with a [`ManualClock`].

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// A source of the current time, in whole seconds since the Unix epoch
/// (the unit of JWT `exp`, RFC 7519 §2 "NumericDate").
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// Seconds since 1970-01-01T00:00:00Z.
    fn now(&self) -> u64;

    /// Milliseconds since 1970-01-01T00:00:00Z. By default the whole
    /// seconds of [`now`](Clock::now), times 1,000.
    fn now_ms(&self) -> u64 {
        self.now().saturating_mul(1_000)
    }

    /// Milliseconds from an arbitrary origin, never going backwards: for
    /// measuring how much time passed between two readings of this clock.
    /// By default [`now_ms`](Clock::now_ms), which suits a clock that only
    /// moves forward (a test clock); a wall clock that can be set back
    /// overrides it with a monotonic source.
    fn monotonic_ms(&self) -> u64 {
        self.now_ms()
    }
}

/// The operating system's clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> u64 {
        // A clock before 1970 is a misconfigured host; 0 makes every token
        // look issued in the future and fails closed.
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    }

    fn now_ms(&self) -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    fn monotonic_ms(&self) -> u64 {
        static ORIGIN: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
        let origin = ORIGIN.get_or_init(std::time::Instant::now);
        u64::try_from(origin.elapsed().as_millis()).unwrap_or(u64::MAX)
    }
}

/// A clock that moves only when told to: for tests and simulations.
/// Clones share the same time, kept in milliseconds.
///
/// ```
/// use keyward::clock::{Clock, ManualClock};
/// let clock = ManualClock::new(1_000);
/// clock.advance(900);
/// assert_eq!(clock.now(), 1_900);
/// ```
#[derive(Debug, Clone, Default)]
pub struct ManualClock(Arc<AtomicU64>);

impl ManualClock {
    /// A clock stopped at `now`.
    #[must_use]
    pub fn new(now: u64) -> Self {
        Self(Arc::new(AtomicU64::new(now.saturating_mul(1_000))))
    }

    /// Sets the time, in seconds.
    pub fn set(&self, now: u64) {
        self.set_ms(now.saturating_mul(1_000));
    }

    /// Sets the time, in milliseconds.
    pub fn set_ms(&self, now_ms: u64) {
        self.0.store(now_ms, Ordering::SeqCst);
    }

    /// Moves the time forward by whole seconds, saturating.
    pub fn advance(&self, secs: u64) {
        self.advance_ms(secs.saturating_mul(1_000));
    }

    /// Moves the time forward by milliseconds, saturating.
    pub fn advance_ms(&self, ms: u64) {
        let _ = self
            .0
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |t| {
                Some(t.saturating_add(ms))
            });
    }
}

impl Clock for ManualClock {
    fn now(&self) -> u64 {
        self.now_ms().checked_div(1_000).unwrap_or(0)
    }

    fn now_ms(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// Serde for a [`Duration`](std::time::Duration) in a JSON view: whole
/// seconds, rounded up, as the HTTP `Retry-After` header counts them (RFC
/// 9110 §10.2.3) and as the `keyward` command prints `retry_after` and
/// `reset_after`. Rounded up so that a client that waits that long is
/// never early.
pub(crate) mod secs {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    /// Whole seconds, rounded up.
    pub(crate) fn rounded_up(d: Duration) -> u64 {
        d.as_secs().saturating_add(u64::from(d.subsec_nanos() > 0))
    }

    pub(crate) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(rounded_up(*d))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_secs)
    }

    /// The same for an optional duration: `null` for `None`.
    pub(crate) mod option {
        use std::time::Duration;

        use serde::{Deserialize, Deserializer, Serializer};

        pub(crate) fn serialize<S: Serializer>(
            d: &Option<Duration>,
            s: S,
        ) -> Result<S::Ok, S::Error> {
            match d {
                Some(d) => s.serialize_some(&super::rounded_up(*d)),
                None => s.serialize_none(),
            }
        }

        pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
            d: D,
        ) -> Result<Option<Duration>, D::Error> {
            Option::<u64>::deserialize(d).map(|s| s.map(Duration::from_secs))
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::secs::rounded_up;

    #[test]
    fn durations_round_up_to_whole_seconds() {
        assert_eq!(rounded_up(Duration::ZERO), 0);
        assert_eq!(rounded_up(Duration::from_nanos(1)), 1);
        assert_eq!(rounded_up(Duration::from_secs(90)), 90);
        assert_eq!(rounded_up(Duration::from_millis(90_001)), 91);
        assert_eq!(rounded_up(Duration::MAX), u64::MAX);
    }
}
