//! Load shedding for password work: a gate in front of keyward's capped
//! hashing queue that hands "come back" tickets to the sources it turns
//! away, and a runtime that hashes at a lower priority than the request
//! handlers.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// How long a "come back later" ticket stays good after its `Retry-After`.
const TICKET_WINDOW: Duration = Duration::from_secs(30);
/// At most this many outstanding tickets (a few MB); past it, new ones are
/// not handed out until old ones expire.
pub const MAX_TICKETS: usize = 100_000;
/// When the tickets are full, expired ones are swept out at most this often,
/// so that a flood that keeps the map full cannot make every refusal scan it.
const SWEEP_EVERY: Duration = Duration::from_secs(1);

/// The outstanding tickets: each source's "good from" time.
#[derive(Default)]
struct Tickets {
    by_source: HashMap<IpAddr, Instant>,
    /// No sweep before this.
    next_sweep: Option<Instant>,
}

/// Admission to password work, in front of keyward's capped hashing
/// queue.
///
/// Under a flood the queue is full of attempts from addresses never seen
/// before, and a legitimate user who honours `Retry-After` would have to
/// win the same lottery again on every retry. So a source answered "busy"
/// gets a ticket; when it comes back from the same address after its
/// `Retry-After` (and within 30 s), its attempt skips the gate and waits in
/// the hashing queue behind at most one other first-time attempt.
/// First-time attempts pass a gate with one slot more than the hashing
/// cap, waiting for it at most the password policy's queue timeout, so the
/// hasher never idles and the queue never grows. A ticket is worth one
/// attempt; the rate limits still apply to it. Tickets are kept in the
/// process: behind a load balancer, a retry that lands on another replica
/// competes as a first-time attempt there.
#[derive(Clone)]
pub struct LoginGate {
    fresh: Arc<Semaphore>,
    tickets: Arc<Mutex<Tickets>>,
}

impl std::fmt::Debug for LoginGate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginGate")
            .field("tickets", &self.tickets())
            .finish_non_exhaustive()
    }
}

/// A pass through the gate: held while the password work runs.
#[derive(Debug)]
pub struct Admission {
    _permit: Option<OwnedSemaphorePermit>,
}

impl LoginGate {
    /// A gate for a hashing cap of `max_in_flight`.
    #[must_use]
    pub fn new(max_in_flight: usize) -> Self {
        Self {
            fresh: Arc::new(Semaphore::new(max_in_flight.saturating_add(1))),
            tickets: Arc::new(Mutex::new(Tickets::default())),
        }
    }

    /// Admits `source`'s attempt: at once with a good ticket, else through
    /// the gate, waiting at most `wait`. `None` when the gate stayed full:
    /// the source gets a ticket for one second from now and should be told
    /// to come back then.
    pub async fn admit(&self, source: IpAddr, wait: Duration) -> Option<Admission> {
        if self.redeem(source, Instant::now()) {
            return Some(Admission { _permit: None });
        }
        match tokio::time::timeout(wait, Arc::clone(&self.fresh).acquire_owned()).await {
            Ok(Ok(permit)) => Some(Admission {
                _permit: Some(permit),
            }),
            // Timed out (the semaphore is never closed).
            _ => {
                self.ticket(source, Duration::from_secs(1), Instant::now());
                None
            }
        }
    }

    /// Whether `source` returns with a ticket that is good now; a good
    /// ticket is used up. One presented early stays for later.
    pub fn redeem(&self, source: IpAddr, now: Instant) -> bool {
        let mut tickets = self.tickets.lock().unwrap_or_else(PoisonError::into_inner);
        match tickets.by_source.get(&source) {
            Some(&from) if now >= from => {
                tickets.by_source.remove(&source);
                now.duration_since(from) <= TICKET_WINDOW
            }
            _ => false,
        }
    }

    /// Tells `source` to come back after `retry_after`.
    pub fn ticket(&self, source: IpAddr, retry_after: Duration, now: Instant) {
        let mut tickets = self.tickets.lock().unwrap_or_else(PoisonError::into_inner);
        if tickets.by_source.len() >= MAX_TICKETS {
            if tickets.next_sweep.is_some_and(|t| now < t) {
                return;
            }
            tickets.next_sweep = now.checked_add(SWEEP_EVERY);
            tickets
                .by_source
                .retain(|_, from| now.saturating_duration_since(*from) <= TICKET_WINDOW);
            if tickets.by_source.len() >= MAX_TICKETS {
                return;
            }
        }
        if let Some(from) = now.checked_add(retry_after) {
            tickets.by_source.insert(source, from);
        }
    }

    /// Outstanding tickets.
    #[must_use]
    pub fn tickets(&self) -> usize {
        self.tickets
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .by_source
            .len()
    }
}

/// A runtime for password work whose threads run at `nice` (Linux; 0 to
/// 19, higher is lower priority; elsewhere at normal priority), for
/// [`AuthRoutes::hashing`](super::AuthRoutes::hashing).
///
/// PBKDF2 is throughput work and a request such as `/me` is latency work.
/// On the serving runtime's blocking pool, a hashing thread competes with
/// the request handlers as an equal, so under a login flood a `/me` can
/// wait for the scheduler to take a core back from PBKDF2. At a lower
/// priority, the handlers take the core the moment they have work; hashing
/// keeps the time they leave, which under a flood is nearly all of it.
///
/// # Errors
/// When the runtime's threads cannot be started.
pub fn hashing_runtime(nice: i32) -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("keyward-hashing")
        .enable_time()
        .on_thread_start(move || lower_priority(nice))
        .build()
}

#[cfg(target_os = "linux")]
fn lower_priority(nice: i32) {
    // This thread only: on Linux, a thread id names one thread.
    let tid = rustix::thread::gettid();
    if let Err(e) = rustix::process::setpriority_process(Some(tid), nice) {
        tracing::warn!(error = %e, nice, "cannot lower the hashing threads' priority");
    }
}

#[cfg(not(target_os = "linux"))]
fn lower_priority(_nice: i32) {}
