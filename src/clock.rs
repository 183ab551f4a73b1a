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
}

/// A clock that moves only when told to: for tests and simulations.
/// Clones share the same time.
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
        Self(Arc::new(AtomicU64::new(now)))
    }

    /// Sets the time.
    pub fn set(&self, now: u64) {
        self.0.store(now, Ordering::SeqCst);
    }

    /// Moves the time forward, saturating at `u64::MAX`.
    pub fn advance(&self, secs: u64) {
        let _ = self
            .0
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |t| {
                Some(t.saturating_add(secs))
            });
    }
}

impl Clock for ManualClock {
    fn now(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}
