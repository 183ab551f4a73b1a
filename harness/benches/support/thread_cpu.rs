//! Criterion measurement of the calling thread's CPU time
//! (`CLOCK_THREAD_CPUTIME_ID`), reported in the same units as wall time.

use criterion::measurement::{Measurement, ValueFormatter, WallTime};
use rustix::time::{ClockId, clock_gettime};

pub(crate) struct ThreadCpuTime;

/// Only for its formatter: nanoseconds shown as criterion shows times.
static WALL: WallTime = WallTime;

fn now_ns() -> u64 {
    let t = clock_gettime(ClockId::ThreadCPUTime);
    let secs = u64::try_from(t.tv_sec).expect("CPU time is not negative");
    let nanos = u64::try_from(t.tv_nsec).expect("CPU time is not negative");
    secs.checked_mul(1_000_000_000)
        .and_then(|ns| ns.checked_add(nanos))
        .expect("CPU time fits in u64 nanoseconds")
}

impl Measurement for ThreadCpuTime {
    type Intermediate = u64;
    type Value = u64;

    fn start(&self) -> u64 {
        now_ns()
    }

    fn end(&self, start: u64) -> u64 {
        now_ns().saturating_sub(start)
    }

    fn add(&self, a: &u64, b: &u64) -> u64 {
        a.saturating_add(*b)
    }

    fn zero(&self) -> u64 {
        0
    }

    fn to_f64(&self, ns: &u64) -> f64 {
        // Two exact halves: u64 has no lossless conversion to f64.
        let high = u32::try_from(ns >> 32).expect("32 bits");
        let low = u32::try_from(ns & 0xffff_ffff).expect("32 bits");
        f64::from(high) * 4_294_967_296.0 + f64::from(low)
    }

    fn formatter(&self) -> &dyn ValueFormatter {
        WALL.formatter()
    }
}
