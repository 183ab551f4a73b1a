//! A subject's erasure: every record of the subject goes, every credential
//! of it is refused, every other subject is untouched, and an erasure cut
//! off after any number of commits finishes when run again.
#![allow(clippy::unwrap_used, clippy::panic, clippy::arithmetic_side_effects)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use keyward::api_key::KeySpec;
use keyward::store::{Commit, Op, Record, Snapshot, StoreFuture};
use keyward::{
    Complete, Erased, Error, JwtAlg, KeyRing, Keyward, MemoryStore, Purpose, Store, StoreError,
};

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

/// What a subject holds: three sessions, two API keys, a pending code.
struct Held {
    refresh: Vec<String>,
    access: Vec<String>,
    keys: Vec<String>,
    code: String,
}

async fn give(kw: &Keyward<Complete>, subject: &str) -> Held {
    let mut refresh = Vec::new();
    let mut access = Vec::new();
    for _ in 0..3 {
        let pair = kw
            .sessions()
            .dangerous_start_without_proof(subject)
            .await
            .unwrap();
        refresh.push(pair.refresh.unprotected_as_str().to_owned());
        access.push(pair.access.unprotected_as_str().to_owned());
    }
    let mut keys = Vec::new();
    for name in ["ci", "deploy"] {
        let made = kw
            .api_keys()
            .create(subject, KeySpec::named(name))
            .await
            .unwrap();
        keys.push(made.key().unprotected_as_str().to_owned());
    }
    let code = kw
        .otp()
        .issue(subject, Purpose::Login)
        .await
        .unwrap()
        .code
        .unprotected_as_str()
        .to_owned();
    Held {
        refresh,
        access,
        keys,
        code,
    }
}

/// How many of the subject's credentials still work. Refreshes are tried
/// last: a refresh rotates its token.
async fn working(kw: &Keyward<Complete>, subject: &str, held: &Held) -> usize {
    let mut n = 0;
    for t in &held.access {
        n += usize::from(kw.sessions().authenticate_strict(t).await.is_ok());
    }
    for k in &held.keys {
        n += usize::from(kw.api_keys().verify(k).await.is_ok());
    }
    n += usize::from(
        kw.otp()
            .verify(subject, Purpose::Login, &held.code)
            .await
            .is_ok(),
    );
    for t in &held.refresh {
        n += usize::from(kw.sessions().refresh(t).await.is_ok());
    }
    n
}

/// Live records under `prefix`.
fn held(memory: &MemoryStore, prefix: &str) -> usize {
    held_in(&memory.live_keys(), prefix)
}

fn held_in(keys: &[String], prefix: &str) -> usize {
    keys.iter().filter(|k| k.starts_with(prefix)).count()
}

fn service(store: Arc<dyn Store>) -> Keyward<Complete> {
    Keyward::builder()
        .keys(KeyRing::generate(JwtAlg::HS256).unwrap())
        .issuer("https://auth.example")
        .audience("example-api")
        .shared_store(store)
        .build()
        .unwrap()
}

/// A fresh store with B's records, then A's: the keys B alone holds, and
/// both subjects' credentials.
async fn setup() -> (
    Arc<MemoryStore>,
    Arc<CutStore>,
    Keyward<Complete>,
    Vec<String>,
    Held,
    Held,
) {
    let memory = Arc::new(MemoryStore::new());
    let cut = Arc::new(CutStore::new(Arc::clone(&memory)));
    let kw = service(Arc::clone(&cut) as Arc<dyn Store>);
    let b = give(&kw, "bob@example.com").await;
    let only_b = memory.live_keys();
    let a = give(&kw, "alice@example.com").await;
    (memory, cut, kw, only_b, a, b)
}

#[tokio::test]
async fn an_erase_deletes_every_record_and_counts_them() {
    let (memory, _cut, kw, only_b, a, b) = setup().await;
    assert_ne!(memory.live_keys(), only_b, "alice's records are there");
    let erased = kw.erase("alice@example.com").await.unwrap();
    assert_eq!(
        (
            erased.sessions,
            erased.api_keys,
            erased.codes,
            erased.factors
        ),
        (3, 2, 1, 0)
    );
    assert_eq!(memory.live_keys(), only_b, "only bob's records are left");
    assert_eq!(working(&kw, "alice@example.com", &a).await, 0);
    assert_eq!(working(&kw, "bob@example.com", &b).await, 3 + 2 + 1 + 3);
    // A second run finds nothing.
    assert_eq!(
        kw.erase("alice@example.com").await.unwrap(),
        Erased::default()
    );
    // The subject can start afresh.
    kw.sessions()
        .dangerous_start_without_proof("alice@example.com")
        .await
        .unwrap();
}

#[tokio::test]
async fn an_erase_cut_off_anywhere_finishes_when_run_again() {
    // The commits of a whole erase.
    let (_memory, cut, kw, _only_b, _a, _b) = setup().await;
    let before = cut.commits();
    kw.erase("alice@example.com").await.unwrap();
    let total = cut.commits() - before;
    assert!(total >= 5, "an erase of this subject takes {total} commits");
    for k in 0..total {
        let (memory, cut, kw, only_b, a, b) = setup().await;
        cut.cut_after(k);
        let first = kw.erase("alice@example.com").await;
        assert!(
            matches!(first, Err(Error::Store(_))),
            "cut after {k}: {first:?}"
        );
        // The marks come first, one commit each: sessions, then codes,
        // then keys (with the keys themselves). What is marked stays
        // refused while the erase is unfinished.
        let sessions = kw.sessions();
        if k >= 1 {
            for t in &a.access {
                assert!(
                    sessions.authenticate_strict(t).await.is_err(),
                    "cut after {k}"
                );
            }
            let start = sessions
                .dangerous_start_without_proof("alice@example.com")
                .await;
            assert!(
                matches!(start, Err(Error::Erasing)),
                "cut after {k}: {start:?}"
            );
        }
        if k >= 2 {
            let otp = kw.otp();
            let code = otp
                .verify("alice@example.com", Purpose::Login, &a.code)
                .await;
            let issue = otp.issue("alice@example.com", Purpose::Login).await;
            // Refused by the mark while alice's code record holds it; once
            // it is gone (the last steps), the code is gone with it.
            if held(&memory, "kw:otp:") > held_in(&only_b, "kw:otp:") {
                assert!(
                    matches!(code, Err(Error::Erasing)),
                    "cut after {k}: {code:?}"
                );
                assert!(matches!(issue, Err(Error::Erasing)), "cut after {k}");
            } else {
                assert!(code.is_err() && issue.is_err(), "cut after {k}");
            }
        }
        if k >= 3 {
            let keys = kw.api_keys();
            for key in &a.keys {
                assert!(keys.verify(key).await.is_err(), "cut after {k}");
            }
            let create = keys.create("alice@example.com", KeySpec::named("x")).await;
            // Refused by the mark while alice's index holds it; once the
            // index is gone (the last steps), only the cut store refuses.
            if held(&memory, "kw:ako:") > held_in(&only_b, "kw:ako:") {
                assert!(matches!(create, Err(Error::Erasing)), "cut after {k}");
            } else {
                assert!(create.is_err(), "cut after {k}");
            }
            assert_eq!(
                working(&kw, "alice@example.com", &a).await,
                0,
                "cut after {k}"
            );
        }
        cut.heal();
        kw.erase("alice@example.com").await.unwrap();
        assert_eq!(memory.live_keys(), only_b, "cut after {k}");
        assert_eq!(
            working(&kw, "alice@example.com", &a).await,
            0,
            "cut after {k}"
        );
        assert_eq!(
            working(&kw, "bob@example.com", &b).await,
            3 + 2 + 1 + 3,
            "cut after {k}"
        );
        assert_eq!(
            kw.erase("alice@example.com").await.unwrap(),
            Erased::default()
        );
    }
}

#[tokio::test]
async fn a_subject_with_more_keys_than_one_commit_holds_is_erased() {
    let memory = Arc::new(MemoryStore::new());
    let kw = service(Arc::clone(&memory) as Arc<dyn Store>);
    let mut made = Vec::new();
    for i in 0..70 {
        let k = kw
            .api_keys()
            .create("carol", KeySpec::named(format!("k{i}")))
            .await
            .unwrap();
        made.push(k.key().unprotected_as_str().to_owned());
    }
    let erased = kw.erase("carol").await.unwrap();
    assert_eq!(erased.api_keys, 70);
    for k in &made {
        assert!(kw.api_keys().verify(k).await.is_err());
    }
    assert!(memory.live_keys().is_empty(), "{:?}", memory.live_keys());
}

#[tokio::test]
async fn an_erase_and_an_audit_tag_need_a_subject_of_1_to_1024_bytes() {
    let kw = service(Arc::new(MemoryStore::new()));
    assert!(matches!(kw.erase("").await, Err(Error::InvalidInput(_))));
    let refused = kw.erase(&"x".repeat(1025)).await.unwrap_err();
    assert!(matches!(refused, Error::InvalidInput(_)), "{refused:?}");
    assert_eq!(refused.status(), 400);
    assert!(matches!(
        kw.audit_tag("").await,
        Err(Error::InvalidInput(_))
    ));
    assert!(matches!(
        kw.audit_tag(&"x".repeat(1025)).await,
        Err(Error::InvalidInput(_))
    ));
    // 1 and 1,024 bytes are subjects.
    let longest = "x".repeat(1024);
    for subject in ["x", longest.as_str()] {
        assert_eq!(kw.erase(subject).await.unwrap(), Erased::default());
        assert_eq!(kw.audit_tag(subject).await.unwrap(), None);
    }
}

#[tokio::test]
async fn a_revoked_key_past_the_owner_cap_is_still_erased() {
    let memory = Arc::new(MemoryStore::new());
    let mut policy = keyward::ApiKeyPolicy::default();
    policy.max_keys_per_owner = 2;
    let kw = Keyward::builder()
        .keys(KeyRing::generate(JwtAlg::HS256).unwrap())
        .issuer("https://auth.example")
        .audience("example-api")
        .api_key_policy(policy)
        .shared_store(Arc::clone(&memory) as Arc<dyn Store>)
        .build()
        .unwrap();
    let keys = kw.api_keys();
    let first = keys.create("dave", KeySpec::named("a")).await.unwrap();
    keys.create("dave", KeySpec::named("b")).await.unwrap();
    keys.revoke(first.id()).await.unwrap();
    // At the cap by the index: the create looks at the records, and the
    // revoked key makes room, while its record is kept for its holder.
    keys.create("dave", KeySpec::named("c")).await.unwrap();
    assert!(matches!(
        keys.verify(first.key().unprotected_as_str()).await,
        Err(Error::ApiKey(keyward::ApiKeyError::Revoked))
    ));
    let erased = kw.erase("dave").await.unwrap();
    assert_eq!(erased.api_keys, 3);
    assert!(memory.live_keys().is_empty(), "{:?}", memory.live_keys());
}
