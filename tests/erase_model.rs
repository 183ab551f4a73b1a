//! A subject's erasure against a model. Two subjects, A and B, go through
//! any sequence of session starts, refreshes, replays of spent refresh
//! tokens, logouts, revoke-alls, API-key creations, rolls and revocations,
//! one-time codes issued and guessed wrong, and clock jumps past the
//! access-token, idle, code and lockout lifetimes; a plain model says what
//! each step must answer and which credentials are live. Then A is erased,
//! cut off after every possible number of commits and run again, and:
//!
//! - no record of A is left: the store's raw keys are exactly those of a
//!   run in which A did nothing, no raw value holds A's name, and once B
//!   is erased too the store is empty;
//! - no credential of A works;
//! - every credential of B works or fails exactly as the model says.
//!
//! While an erasure is cut off, what its marks already committed is
//! refused too: no session of A refreshes, authenticates strictly or
//! starts, no code is accepted or issued, no key is created, and the keys
//! already deleted are refused.
#![allow(clippy::unwrap_used, clippy::panic, clippy::arithmetic_side_effects)]

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use keyward::api_key::KeySpec;
use keyward::clock::ManualClock;
use keyward::store::{Commit, Op, Record, Snapshot, StoreFuture};
use keyward::{
    ApiKeyError, Complete, Erased, Error, JwtAlg, KeyRing, Keyward, MemoryStore, Otp, OtpError,
    Purpose, SessionError, SessionPolicy, Store, StoreError, ThrottlePolicy,
};
use proptest::prelude::*;

const ALICE: &str = "alice@example.com";
const BOB: &str = "bob@example.com";
/// The manual clock's start, in Unix seconds.
const EPOCH: u64 = 1_700_000_000;
/// A family unused this long expires: an hour, so that the clock jumps
/// of a case reach it (the default is 14 days).
const IDLE: u64 = 3_600;
/// Left at its default, 30 days: far beyond every clock jump of a case
/// together, so that no record's store lifetime (which the memory store
/// counts in real time) ever comes near its end during a test.
const ABSOLUTE: u64 = keyward::session::DEFAULT_ABSOLUTE_TTL_SECS;
const GRACE: u64 = keyward::session::DEFAULT_REUSE_GRACE_SECS;
/// An access token is refused on or after `exp` plus the leeway.
const ACCESS: u64 = keyward::jwt::DEFAULT_ACCESS_TTL_SECS + keyward::jwt::DEFAULT_LEEWAY_SECS;
const CODE_TTL: u64 = keyward::otp::DEFAULT_CODE_TTL_SECS;
const MAX_ATTEMPTS: u32 = keyward::otp::DEFAULT_MAX_ATTEMPTS;
const LOCKOUT: u64 = keyward::otp::DEFAULT_LOCKOUT_SECS;
/// Code sends: a burst above the longest sequence, so that no issue is
/// refused for its rate, and a period of an hour, so that the send
/// limit's record (whose store lifetime is the time its bucket takes to
/// refill, counted in real time by the memory store) outlives any test.
const SEND_BURST: u32 = 16;
const SEND_PERIOD: u64 = 3_600;
/// Steps per sequence, at most.
const MAX_STEPS: usize = 12;

/// A store whose commits fail once `allowed` of them have gone through:
/// an erasure cut off at that point.
#[derive(Debug)]
struct CutStore {
    inner: Arc<MemoryStore>,
    commits: AtomicUsize,
    allowed: AtomicUsize,
}

impl CutStore {
    fn new(inner: Arc<MemoryStore>) -> Self {
        Self {
            inner,
            commits: AtomicUsize::new(0),
            allowed: AtomicUsize::new(usize::MAX),
        }
    }

    /// From now on, `n` more commits go through.
    fn cut_after(&self, n: usize) {
        let done = self.commits.load(Ordering::SeqCst);
        self.allowed.store(done + n, Ordering::SeqCst);
    }

    fn heal(&self) {
        self.allowed.store(usize::MAX, Ordering::SeqCst);
    }

    fn commits(&self) -> usize {
        self.commits.load(Ordering::SeqCst)
    }
}

impl Store for CutStore {
    fn load<'a>(&'a self, key: &'a str) -> StoreFuture<'a, Option<Record>> {
        self.inner.load(key)
    }

    fn load_many<'a>(&'a self, keys: &'a [&'a str]) -> StoreFuture<'a, Snapshot> {
        self.inner.load_many(keys)
    }

    fn commit<'a>(&'a self, ops: &'a [Op<'a>]) -> StoreFuture<'a, Commit> {
        if self.commits.load(Ordering::SeqCst) >= self.allowed.load(Ordering::SeqCst) {
            return Box::pin(async { Err(StoreError::Unavailable("cut".into())) });
        }
        self.commits.fetch_add(1, Ordering::SeqCst);
        self.inner.commit(ops)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    A,
    B,
}

/// One step of a scenario. Indexes pick among the subject's families or
/// keys, modulo their number; a step with nothing to pick does nothing.
#[derive(Debug, Clone)]
enum Step {
    /// Logins, this many: a new family each.
    Start(Who, usize),
    /// The family's live refresh token, presented.
    Refresh(Who, usize),
    /// A spent refresh token of the family, `back` generations before the
    /// live one's predecessor: a grace replay or reuse.
    Replay(Who, usize, usize),
    /// A logout of the family.
    Logout(Who, usize),
    RevokeAll(Who),
    /// Keys, this many, expiring after so many seconds or never.
    CreateKey(Who, Option<u64>, usize),
    /// A roll with this overlap in seconds.
    RollKey(Who, usize, u64),
    RevokeKey(Who, usize),
    IssueCode(Who),
    /// This many wrong guesses at the subject's code, one after another.
    WrongCode(Who, u32),
    /// The clock moves on by this many seconds.
    Advance(u64),
}

impl Step {
    fn who(&self) -> Option<Who> {
        match *self {
            Self::Start(w, _)
            | Self::Refresh(w, _)
            | Self::Replay(w, _, _)
            | Self::Logout(w, _)
            | Self::RevokeAll(w)
            | Self::CreateKey(w, _, _)
            | Self::RollKey(w, _, _)
            | Self::RevokeKey(w, _)
            | Self::IssueCode(w)
            | Self::WrongCode(w, _) => Some(w),
            Self::Advance(_) => None,
        }
    }
}

fn who() -> impl Strategy<Value = Who> {
    prop_oneof![Just(Who::A), Just(Who::B)]
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => (who(), count()).prop_map(|(w, n)| Step::Start(w, n)),
        3 => (who(), 0usize..64).prop_map(|(w, i)| Step::Refresh(w, i)),
        2 => (who(), 0usize..64, 0usize..3).prop_map(|(w, i, b)| Step::Replay(w, i, b)),
        1 => (who(), 0usize..64).prop_map(|(w, i)| Step::Logout(w, i)),
        1 => who().prop_map(Step::RevokeAll),
        2 => (who(), proptest::option::of(lifetime()), count())
            .prop_map(|(w, e, n)| Step::CreateKey(w, e, n)),
        2 => (who(), 0usize..64, prop_oneof![Just(0u64), lifetime()])
            .prop_map(|(w, i, o)| Step::RollKey(w, i, o)),
        1 => (who(), 0usize..64).prop_map(|(w, i)| Step::RevokeKey(w, i)),
        2 => who().prop_map(Step::IssueCode),
        2 => (who(), 1u32..=MAX_ATTEMPTS).prop_map(|(w, n)| Step::WrongCode(w, n)),
        5 => prop_oneof![
            // Within the refresh grace window; past the code and
            // access-token lifetimes; past the lockout and the idle
            // lifetime.
            3 => prop_oneof![0u64..=20, 0u64..=1_500, 0u64..=9_000],
            2 => lifetime(),
        ]
        .prop_map(Step::Advance),
    ]
}

/// How many logins or keys a step makes: mostly one, sometimes more than
/// an erasure deletes in one commit.
fn count() -> impl Strategy<Value = usize> {
    prop_oneof![3 => Just(1usize), 1 => 1usize..=40]
}

/// A lifetime of the rules, or the second before it ends: so that clock
/// jumps reach the second something ends.
fn lifetime() -> impl Strategy<Value = u64> {
    (
        proptest::sample::select(vec![GRACE, CODE_TTL, ACCESS, IDLE, LOCKOUT]),
        0u64..=1,
    )
        .prop_map(|(end, early)| end - early)
}

/// A session family: its refresh tokens by generation (the last is live),
/// its access tokens with their issue times, and the model's view of its
/// record.
#[derive(Debug)]
struct Family {
    id: String,
    refresh: Vec<String>,
    access: Vec<(String, u64)>,
    created: u64,
    last_used: u64,
    epoch: u64,
    revoked: bool,
}

/// What presenting a refresh token must give.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refresh {
    Rotated,
    Grace,
    Reused,
    Revoked,
    Expired,
}

impl Family {
    /// Why the family no longer refreshes, if it does not.
    fn dead(&self, subject_epoch: u64, now: u64) -> Option<Refresh> {
        if self.revoked || self.epoch < subject_epoch {
            Some(Refresh::Revoked)
        } else if now >= self.created + ABSOLUTE || now >= self.last_used + IDLE {
            Some(Refresh::Expired)
        } else {
            None
        }
    }

    fn expect_refresh(&self, generation: usize, subject_epoch: u64, now: u64) -> Refresh {
        if let Some(dead) = self.dead(subject_epoch, now) {
            return dead;
        }
        let live = self.refresh.len() - 1;
        if generation == live {
            Refresh::Rotated
        } else if generation + 1 == live && now < self.last_used + GRACE {
            Refresh::Grace
        } else {
            Refresh::Reused
        }
    }

    fn access_works(&self, issued_at: u64, subject_epoch: u64, now: u64) -> bool {
        now < issued_at + ACCESS && self.dead(subject_epoch, now).is_none()
    }
}

/// An API key: every secret it ever had, which one is current, and the
/// one a roll replaced with the end of its overlap.
#[derive(Debug)]
struct Key {
    id: String,
    secrets: Vec<String>,
    current: usize,
    previous: Option<(usize, u64)>,
    expires_at: Option<u64>,
    revoked: bool,
}

impl Key {
    fn expired(&self, now: u64) -> bool {
        self.expires_at.is_some_and(|at| now >= at)
    }

    fn works(&self, secret: usize, now: u64) -> bool {
        if self.revoked || self.expired(now) {
            return false;
        }
        secret == self.current
            || self
                .previous
                .is_some_and(|(p, until)| p == secret && now < until)
    }
}

/// The subject's one-time codes (all of purpose login): every code issued,
/// the pending one with its expiry, and the lockout state.
#[derive(Debug, Default)]
struct Codes {
    issued: Vec<String>,
    pending: Option<(usize, u64)>,
    /// Wrong guesses since the last lock.
    window: u32,
    /// Wrong guesses in all; far below the count that locks until an
    /// operator unlocks, with sequences this short.
    failures: u32,
    locked_until: u64,
}

impl Codes {
    fn locked(&self, now: u64) -> bool {
        now < self.locked_until
    }
}

#[derive(Debug)]
struct Subject {
    name: &'static str,
    epoch: u64,
    families: Vec<Family>,
    keys: Vec<Key>,
    codes: Codes,
}

impl Subject {
    fn new(name: &'static str) -> Self {
        Self {
            name,
            epoch: 0,
            families: Vec::new(),
            keys: Vec::new(),
            codes: Codes::default(),
        }
    }

    /// The store keys of the subject's records named by random ids: its
    /// families and its API keys.
    fn id_keys(&self) -> BTreeSet<String> {
        let families = self.families.iter().map(|f| format!("kw:fam:{}", f.id));
        let keys = self.keys.iter().map(|k| format!("kw:ak:{}", k.id));
        families.chain(keys).collect()
    }

    /// What a whole erasure of the subject deletes: every family and key
    /// record (none reaches its end in a test), and the pending code.
    fn erased(&self) -> (u64, u64, u64, u64) {
        (
            u64::try_from(self.families.len()).unwrap(),
            u64::try_from(self.keys.len()).unwrap(),
            u64::from(self.codes.pending.is_some()),
            0,
        )
    }
}

fn counts(e: &Erased) -> (u64, u64, u64, u64) {
    (e.sessions, e.api_keys, e.codes, e.factors)
}

/// One run of a scenario: the store, the service over it and the model.
struct World {
    memory: Arc<MemoryStore>,
    cut: Arc<CutStore>,
    clock: ManualClock,
    kw: Keyward<Complete>,
    a: Subject,
    b: Subject,
}

impl World {
    /// A fresh store and service, under the key ring `ring` (the same in
    /// every run of a case, so that records keyed by a subject's tag have
    /// the same keys in each).
    fn new(ring: &str) -> Self {
        let memory = Arc::new(MemoryStore::new());
        let cut = Arc::new(CutStore::new(Arc::clone(&memory)));
        let clock = ManualClock::new(EPOCH);
        let mut sessions = SessionPolicy::default();
        sessions.idle_ttl_secs = IDLE;
        let mut throttle = ThrottlePolicy::default();
        throttle.code_send_burst = SEND_BURST;
        throttle.code_send_period_secs = SEND_PERIOD;
        let kw = Keyward::builder()
            .keys(KeyRing::from_json(ring).unwrap())
            .issuer("https://auth.example")
            .audience("example-api")
            .session_policy(sessions)
            .throttle_policy(throttle)
            .clock(Arc::new(clock.clone()))
            .shared_store(Arc::clone(&cut) as Arc<dyn Store>)
            .build()
            .unwrap();
        Self {
            memory,
            cut,
            clock,
            kw,
            a: Subject::new(ALICE),
            b: Subject::new(BOB),
        }
    }

    /// A world with the steps applied, each checked against the model.
    async fn after(ring: &str, steps: &[Step]) -> Self {
        let mut world = Self::new(ring);
        for step in steps {
            world.apply(step).await;
        }
        world
    }

    fn now(&self) -> u64 {
        use keyward::Clock;
        self.clock.now()
    }

    async fn apply(&mut self, step: &Step) {
        let now = self.now();
        let Self {
            kw, clock, a, b, ..
        } = self;
        let kw = &*kw;
        let s = match step.who() {
            Some(Who::A) => a,
            Some(Who::B) => b,
            None => {
                if let Step::Advance(secs) = step {
                    clock.advance(*secs);
                }
                return;
            }
        };
        let sessions = kw.sessions();
        let keys = kw.api_keys();
        let otp = kw.otp();
        match *step {
            Step::Start(_, n) => {
                // Within the subject's cap: a start past it would end the
                // oldest family, which the model leaves out.
                let room = keyward::session::MAX_SESSIONS_PER_SUBJECT - s.families.len();
                for _ in 0..n.min(room) {
                    let pair = sessions
                        .dangerous_start_without_proof(s.name)
                        .await
                        .unwrap();
                    s.families.push(Family {
                        id: pair.session_id.clone(),
                        refresh: vec![pair.refresh.unprotected_as_str().to_owned()],
                        access: vec![(pair.access.unprotected_as_str().to_owned(), now)],
                        created: now,
                        last_used: now,
                        epoch: s.epoch,
                        revoked: false,
                    });
                }
            }
            Step::Refresh(_, i) => {
                if s.families.is_empty() {
                    return;
                }
                let n = s.families.len();
                let f = &mut s.families[i % n];
                let live = f.refresh.len() - 1;
                refresh(kw, s.epoch, f, live, now, step).await;
            }
            Step::Replay(_, i, back) => {
                if s.families.is_empty() {
                    return;
                }
                let n = s.families.len();
                let f = &mut s.families[i % n];
                let live = f.refresh.len() - 1;
                if live == 0 {
                    return;
                }
                let spent = (live - 1).saturating_sub(back);
                refresh(kw, s.epoch, f, spent, now, step).await;
            }
            Step::Logout(_, i) => {
                if s.families.is_empty() {
                    return;
                }
                let n = s.families.len();
                let f = &mut s.families[i % n];
                let id = sessions.revoke(f.refresh.last().unwrap()).await.unwrap();
                assert_eq!(id, f.id, "{step:?}");
                f.revoked = true;
            }
            Step::RevokeAll(_) => {
                sessions.revoke_all(s.name).await.unwrap();
                s.epoch += 1;
            }
            Step::CreateKey(_, lifetime, n) => {
                // Within the owner's cap, counting every key made.
                let cap = usize::try_from(keyward::api_key::DEFAULT_MAX_KEYS_PER_OWNER).unwrap();
                for _ in 0..n.min(cap - s.keys.len()) {
                    let mut spec = KeySpec::named(format!("key {}", s.keys.len()));
                    if let Some(secs) = lifetime {
                        spec = spec.expires_in(Duration::from_secs(secs));
                    }
                    let made = keys.create(s.name, spec).await.unwrap();
                    let expires_at = lifetime.map(|secs| now + secs);
                    assert_eq!(made.view().expires_at, expires_at, "{step:?}");
                    s.keys.push(Key {
                        id: made.id().to_owned(),
                        secrets: vec![made.key().unprotected_as_str().to_owned()],
                        current: 0,
                        previous: None,
                        expires_at,
                        revoked: false,
                    });
                }
            }
            Step::RollKey(_, i, overlap) => {
                if s.keys.is_empty() {
                    return;
                }
                let n = s.keys.len();
                let k = &mut s.keys[i % n];
                let rolled = keys.roll(&k.id, Duration::from_secs(overlap)).await;
                match rolled {
                    Ok(rolled) => {
                        assert!(!k.revoked && !k.expired(now), "{step:?}: {k:?}");
                        let until = k
                            .expires_at
                            .map_or(now + overlap, |at| at.min(now + overlap));
                        assert_eq!(rolled.previous_valid_until(), until, "{step:?}");
                        k.secrets.push(rolled.key().unprotected_as_str().to_owned());
                        k.previous = Some((k.current, until));
                        k.current = k.secrets.len() - 1;
                    }
                    Err(Error::ApiKey(ApiKeyError::Revoked)) => assert!(k.revoked, "{step:?}"),
                    Err(Error::ApiKey(ApiKeyError::Expired)) => {
                        assert!(!k.revoked && k.expired(now), "{step:?}");
                    }
                    Err(e) => panic!("{step:?}: {e:?}"),
                }
            }
            Step::RevokeKey(_, i) => {
                if s.keys.is_empty() {
                    return;
                }
                let n = s.keys.len();
                let k = &mut s.keys[i % n];
                keys.revoke(&k.id).await.unwrap();
                k.revoked = true;
            }
            Step::IssueCode(_) => {
                let issued = otp.issue(s.name, Purpose::Login).await;
                let c = &mut s.codes;
                match issued {
                    Ok(issued) => {
                        assert!(!c.locked(now), "{step:?}: {c:?}");
                        assert_eq!(issued.expires_at, now + CODE_TTL);
                        c.issued.push(issued.code.unprotected_as_str().to_owned());
                        c.pending = Some((c.issued.len() - 1, now + CODE_TTL));
                    }
                    Err(Error::Otp(OtpError::Locked { .. })) => {
                        assert!(c.locked(now), "{step:?}: {c:?}");
                    }
                    Err(e) => panic!("{step:?}: {e:?}"),
                }
            }
            Step::WrongCode(_, guesses) => {
                for _ in 0..guesses {
                    wrong_guess(otp, s.name, &mut s.codes, now, step).await;
                }
            }
            Step::Advance(_) => unreachable!(),
        }
    }
}

/// A wrong guess at the subject's pending code (or at none), checked
/// against the model, which it then moves on.
async fn wrong_guess(otp: &Otp, subject: &str, c: &mut Codes, now: u64, step: &Step) {
    let wrong = c
        .pending
        .map_or_else(|| "000000".to_owned(), |(at, _)| wrong(&c.issued[at]));
    let got = otp.verify(subject, Purpose::Login, &wrong).await;
    let refused = |e: &Error| match e {
        Error::Otp(OtpError::Locked { .. }) => "locked",
        Error::Otp(OtpError::NoCode) => "no code",
        Error::Otp(OtpError::Expired) => "expired",
        _ => "other",
    };
    let expected = if c.locked(now) {
        "locked"
    } else {
        match c.pending {
            None => "no code",
            Some((_, expires)) if now >= expires => "expired",
            Some(_) => "counted",
        }
    };
    if expected != "counted" {
        let e = got.err();
        assert_eq!(e.as_ref().map(refused), Some(expected), "{step:?}: {e:?}");
        return;
    }
    c.window += 1;
    c.failures += 1;
    // The model has no lock until an operator unlocks: too few steps.
    assert!(c.failures < keyward::otp::DEFAULT_MAX_CONSECUTIVE_FAILURES);
    let left = if c.window >= MAX_ATTEMPTS {
        // A lock discards the pending codes.
        c.locked_until = now + LOCKOUT;
        c.window = 0;
        c.pending = None;
        0
    } else {
        MAX_ATTEMPTS - c.window
    };
    assert!(
        matches!(got, Err(Error::Otp(OtpError::Invalid { attempts_left })) if attempts_left == left),
        "{step:?}: {:?}",
        got.err()
    );
}

/// A code of the same length that is not `code`.
fn wrong(code: &str) -> String {
    code.chars()
        .map(|c| match c.to_digit(10) {
            Some(d) => char::from_digit((d + 1) % 10, 10).unwrap(),
            None => '0',
        })
        .collect()
}

/// Presents the family's refresh token of `generation` and checks the
/// answer against the model, which it then moves on.
async fn refresh(
    kw: &Keyward<Complete>,
    subject_epoch: u64,
    f: &mut Family,
    generation: usize,
    now: u64,
    context: &dyn std::fmt::Debug,
) {
    let expected = f.expect_refresh(generation, subject_epoch, now);
    let got = kw.sessions().refresh(&f.refresh[generation]).await;
    match (expected, got) {
        (Refresh::Rotated | Refresh::Grace, Ok(pair)) => {
            assert_eq!(pair.session_id, f.id, "{context:?}");
            let token = pair.refresh.unprotected_as_str().to_owned();
            if expected == Refresh::Rotated {
                f.refresh.push(token);
                f.last_used = now;
            } else {
                // The same successor again: the family never forks.
                assert_eq!(Some(&token), f.refresh.last(), "{context:?}");
            }
            f.access
                .push((pair.access.unprotected_as_str().to_owned(), now));
        }
        (Refresh::Reused, Err(Error::Session(SessionError::Reused))) => f.revoked = true,
        (Refresh::Revoked, Err(Error::Session(SessionError::Revoked)))
        | (Refresh::Expired, Err(Error::Session(SessionError::Expired))) => {}
        (expected, got) => panic!(
            "{context:?}: generation {generation} of {f:?} at {now}: expected {expected:?}, got {:?}",
            got.map(|_| "a pair")
        ),
    }
}

/// Every credential the subject ever held is refused, and checking them
/// writes nothing.
async fn nothing_works(w: &World, s: &Subject, context: &str) {
    let before = w.memory.live_keys();
    let sessions = w.kw.sessions();
    for f in &s.families {
        for (t, _) in &f.access {
            let got = sessions.authenticate_strict(t).await;
            assert!(got.is_err(), "{context}: an access token of {}", f.id);
        }
        for t in &f.refresh {
            let got = sessions.refresh(t).await;
            assert!(got.is_err(), "{context}: a refresh token of {}", f.id);
        }
    }
    for k in &s.keys {
        for secret in &k.secrets {
            let got = w.kw.api_keys().verify(secret).await;
            assert!(got.is_err(), "{context}: a secret of key {}", k.id);
        }
    }
    for code in &s.codes.issued {
        let got = w.kw.otp().verify(s.name, Purpose::Login, code).await;
        assert!(got.is_err(), "{context}: a code");
    }
    assert_eq!(w.memory.live_keys(), before, "{context}: a check wrote");
}

/// Every credential of the subject works or fails as the model says.
/// Refresh tokens go last (a refresh rotates), each family's live one
/// first, then its spent ones newest first: a grace replay, then reuse.
async fn as_modelled(w: &mut World, who: Who, context: &str) {
    let now = w.now();
    let World { kw, a, b, .. } = w;
    let kw = &*kw;
    let s = match who {
        Who::A => a,
        Who::B => b,
    };
    let sessions = kw.sessions();
    for f in &s.families {
        for (t, issued_at) in &f.access {
            let expected = f.access_works(*issued_at, s.epoch, now);
            let got = sessions.authenticate_strict(t).await;
            assert_eq!(
                got.is_ok(),
                expected,
                "{context}: access token of {issued_at} of {f:?} at {now}: {:?}",
                got.err()
            );
        }
    }
    for k in &s.keys {
        for (at, secret) in k.secrets.iter().enumerate() {
            let got = kw.api_keys().verify(secret).await;
            assert_eq!(
                got.is_ok(),
                k.works(at, now),
                "{context}: secret {at} of {k:?} at {now}: {:?}",
                got.err()
            );
        }
    }
    let otp = kw.otp();
    let c = &mut s.codes;
    if let Some((at, expires)) = c.pending {
        let expected = !c.locked(now) && now < expires;
        let got = otp.verify(s.name, Purpose::Login, &c.issued[at]).await;
        assert_eq!(
            got.is_ok(),
            expected,
            "{context}: pending code of {c:?} at {now}: {:?}",
            got.err()
        );
    }
    // Used up, replaced, discarded by a lock or expired: refused, and (no
    // code being live any more) not counted as a guess.
    for code in &c.issued {
        let got = otp.verify(s.name, Purpose::Login, code).await;
        assert!(got.is_err(), "{context}: a spent code of {c:?} at {now}");
    }
    for f in &mut s.families {
        let live = f.refresh.len() - 1;
        refresh(kw, s.epoch, f, live, now, &context).await;
        for generation in (0..f.refresh.len() - 1).rev() {
            refresh(kw, s.epoch, f, generation, now, &context).await;
        }
    }
}

/// Whether any live record's raw value holds `needle`.
async fn any_value_holds(memory: &MemoryStore, needle: &[u8]) -> bool {
    for key in memory.live_keys() {
        if let Some(record) = memory.load(&key).await.unwrap()
            && record.value.windows(needle.len()).any(|w| w == needle)
        {
            return true;
        }
    }
    false
}

/// The live keys other than the subject's family and key records, which
/// must all be there.
fn without_ids(live: &[String], s: &Subject, context: &str) -> BTreeSet<String> {
    let live: BTreeSet<String> = live.iter().cloned().collect();
    let ids = s.id_keys();
    let missing: Vec<_> = ids.difference(&live).collect();
    assert!(
        missing.is_empty(),
        "{context}: {missing:?} are not in the store"
    );
    live.difference(&ids).cloned().collect()
}

/// How far A's erasure gets in a run: not cut off, or cut off after `k`
/// of the `total` commits of a whole erasure.
#[derive(Debug, Clone, Copy)]
enum Cut {
    No,
    After { k: usize, total: usize },
}

/// One run of the scenario, A's erasure as `cut` says, then run again;
/// then the checks. The number of commits the erasure took when not cut
/// off.
async fn erase_and_check(
    ring: &str,
    steps: &[Step],
    cut: Cut,
    b_alone: &BTreeSet<String>,
) -> usize {
    let context = format!("{cut:?}");
    let context = context.as_str();
    let mut w = World::after(ring, steps).await;
    let live = w.memory.live_keys();
    without_ids(&live, &w.a, context);
    without_ids(&live, &w.b, context);
    if !w.a.families.is_empty() || !w.a.keys.is_empty() {
        assert!(
            any_value_holds(&w.memory, ALICE.as_bytes()).await,
            "{context}: A's records name A"
        );
    }
    let before = w.cut.commits();
    let mut commits = 0;
    match cut {
        Cut::No => {
            let erased = w.kw.erase(ALICE).await.unwrap();
            assert_eq!(counts(&erased), w.a.erased(), "{context}");
            commits = w.cut.commits() - before;
            let again = w.kw.erase(ALICE).await.unwrap();
            assert_eq!(again, Erased::default(), "{context}");
        }
        Cut::After { k, total } => {
            w.cut.cut_after(k);
            let first = w.kw.erase(ALICE).await;
            assert!(
                matches!(first, Err(Error::Store(_))),
                "{context}: {first:?}"
            );
            assert_eq!(w.cut.commits() - before, k, "{context}");
            cut_off(&w, k, total, context).await;
            w.cut.heal();
            let rerun = counts(&w.kw.erase(ALICE).await.unwrap());
            let whole = w.a.erased();
            assert!(
                rerun.0 <= whole.0 && rerun.1 <= whole.1 && rerun.2 <= whole.2 && rerun.3 == 0,
                "{context}: {rerun:?} of {whole:?}"
            );
        }
    }
    // No record of A: the raw keys are those of the run without A, and no
    // raw value names A.
    let live = w.memory.live_keys();
    let leftover: Vec<_> =
        w.a.id_keys()
            .into_iter()
            .filter(|k| live.contains(k))
            .collect();
    assert!(leftover.is_empty(), "{context}: {leftover:?} are left");
    let tagged = without_ids(&live, &w.b, context);
    assert_eq!(&tagged, b_alone, "{context}: records other than B's");
    assert!(
        !any_value_holds(&w.memory, ALICE.as_bytes()).await,
        "{context}: a record names A"
    );
    nothing_works(&w, &w.a, context).await;
    as_modelled(&mut w, Who::B, context).await;
    assert_eq!(
        w.kw.erase(ALICE).await.unwrap(),
        Erased::default(),
        "{context}"
    );
    // With B gone too, nothing is left: every record was a subject's.
    w.kw.erase(BOB).await.unwrap();
    assert_eq!(w.memory.live_keys(), Vec::<String>::new(), "{context}");
    commits
}

/// While the erasure is cut off after `k` of its `total` commits: what
/// the marks already committed refuse. The marks come first, one commit
/// each (sessions, codes, keys); the last three commits delete the key
/// index, the code record and the session record, marks and all. The
/// store is still cut, so nothing here can write.
async fn cut_off(w: &World, k: usize, total: usize, context: &str) {
    let sessions = w.kw.sessions();
    if k >= 1 {
        for f in &w.a.families {
            for (t, _) in &f.access {
                let got = sessions.authenticate_strict(t).await;
                assert!(got.is_err(), "{context}: an access token of {}", f.id);
            }
            let got = sessions.refresh(f.refresh.last().unwrap()).await;
            assert!(got.is_err(), "{context}: the refresh token of {}", f.id);
        }
        // The session mark goes last.
        let start = sessions.dangerous_start_without_proof(ALICE).await;
        assert!(
            matches!(start, Err(Error::Erasing)),
            "{context}: {:?}",
            start.map(|_| "a pair")
        );
    }
    if k >= 2 {
        let otp = w.kw.otp();
        let marked = k + 1 < total;
        if let Some((at, _)) = w.a.codes.pending {
            let got = otp
                .verify(ALICE, Purpose::Login, &w.a.codes.issued[at])
                .await;
            let ok = if marked {
                matches!(got, Err(Error::Erasing))
            } else {
                matches!(got, Err(Error::Otp(OtpError::NoCode)))
            };
            assert!(ok, "{context}: {:?}", got.err());
        }
        let issued = otp.issue(ALICE, Purpose::Login).await;
        let ok = if marked {
            matches!(issued, Err(Error::Erasing))
        } else {
            matches!(issued, Err(Error::Store(_)))
        };
        assert!(ok, "{context}: {:?}", issued.err());
    }
    if k >= 3 {
        // A commit deletes the keys it has room for beside the index, in
        // the order they were created; the others work until their turn.
        let per_commit = keyward::store::MAX_COMMIT_OPS - 1;
        let gone = (k - 2) * per_commit;
        let now = w.now();
        let keys = w.kw.api_keys();
        for (i, key) in w.a.keys.iter().enumerate() {
            for (at, secret) in key.secrets.iter().enumerate() {
                let got = keys.verify(secret).await;
                let works = i >= gone && key.works(at, now);
                assert_eq!(
                    got.is_ok(),
                    works,
                    "{context}: secret {at} of key {i}, {key:?}: {:?}",
                    got.err()
                );
            }
        }
        let created = keys.create(ALICE, KeySpec::named("late")).await;
        let ok = if k + 2 < total {
            matches!(created, Err(Error::Erasing))
        } else {
            matches!(created, Err(Error::Store(_)))
        };
        assert!(ok, "{context}: {:?}", created.err());
    }
}

async fn property(steps: Vec<Step>) {
    let ring = KeyRing::generate(JwtAlg::HS256)
        .unwrap()
        .to_json()
        .to_string();
    // The run in which A does nothing: B's records alone, with the same
    // key ring, so that the records keyed by B's tags have the same keys.
    let b_steps: Vec<Step> = steps
        .iter()
        .filter(|s| s.who() != Some(Who::A))
        .cloned()
        .collect();
    let alone = World::after(&ring, &b_steps).await;
    let b_alone = without_ids(&alone.memory.live_keys(), &alone.b, "B alone");
    let total = erase_and_check(&ring, &steps, Cut::No, &b_alone).await;
    // Marks of sessions, codes and keys, then the three records that hold
    // them: at least six commits.
    assert!(total >= 6, "a whole erasure took {total} commits");
    for k in 0..total {
        erase_and_check(&ring, &steps, Cut::After { k, total }, &b_alone).await;
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn an_erasure_cut_off_anywhere_and_run_again_leaves_nothing_of_the_subject(
        steps in proptest::collection::vec(step(), 0..=MAX_STEPS),
    ) {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(property(steps));
    }
}
