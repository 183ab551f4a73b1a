//! One-time codes under concurrency, on each store backend: racing wrong
//! codes never get more than 3 evaluated, and racing right codes give
//! exactly one success.
#![allow(clippy::unwrap_used, clippy::panic, clippy::arithmetic_side_effects)]

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;

use keyward::clock::ManualClock;
use keyward::testing::RacingStore;
use keyward::{Error, JwtAlg, KeyRing, Keyward, MemoryStore, Otp, OtpError, Purpose, Store};
use tokio::sync::Barrier;

const TRIALS: usize = 200;
const WRONG_TASKS: usize = 64;
const RIGHT_TASKS: usize = 8;

fn otp(store: Arc<dyn Store>) -> Otp {
    let kw = Keyward::builder()
        .keys(KeyRing::generate(JwtAlg::HS256).unwrap())
        .shared_store(store)
        .clock(Arc::new(ManualClock::new(1_700_000_000)))
        .build_partial()
        .unwrap();
    kw.otp().unwrap().clone()
}

fn label(r: &Result<keyward::OtpVerified, Error>) -> String {
    match r {
        Ok(_) => "ok".into(),
        Err(Error::Otp(OtpError::Invalid { attempts_left })) => format!("invalid({attempts_left})"),
        Err(Error::Otp(OtpError::Locked { .. })) => "locked".into(),
        Err(Error::Otp(e)) => e.reason().into(),
        Err(e) => format!("error: {e}"),
    }
}

fn wrong_for(code: &str) -> String {
    let n: u32 = code.parse().unwrap();
    format!("{:06}", (n + 1) % 1_000_000)
}

/// Runs every task at once (behind a barrier) and tallies the outcomes.
async fn race(otp: &Otp, subject: &str, code: &str, tasks: usize) -> BTreeMap<String, usize> {
    let barrier = Arc::new(Barrier::new(tasks));
    let handles: Vec<_> = (0..tasks)
        .map(|_| {
            let (otp, barrier) = (otp.clone(), Arc::clone(&barrier));
            let (subject, code) = (subject.to_owned(), code.to_owned());
            tokio::spawn(async move {
                barrier.wait().await;
                otp.verify(&subject, Purpose::Login, &code).await
            })
        })
        .collect();
    let mut tally = BTreeMap::new();
    for h in handles {
        *tally.entry(label(&h.await.unwrap())).or_insert(0) += 1;
    }
    tally
}

/// `ns` namespaces the subjects, for servers shared between test runs.
/// `store` passes through to a backend, and yields to the scheduler before
/// each operation so that racing tasks interleave between load and commit
/// even on one thread; it counts the conflicts.
async fn storms(name: &str, ns: &str, store: Arc<RacingStore>) {
    let otp = otp(Arc::clone(&store) as Arc<dyn Store>);
    let mut wrong_totals: BTreeMap<String, usize> = BTreeMap::new();
    for trial in 0..TRIALS {
        let subject = format!("{ns}wrong-{trial}");
        let issued = otp.issue(&subject, Purpose::Login).await.unwrap();
        let code = issued.code.unprotected_as_str().to_owned();
        let tally = race(&otp, &subject, &wrong_for(&code), WRONG_TASKS).await;
        // Exactly three failures are evaluated, one per attempts_left
        // value; every other submission is refused as locked.
        let expected: BTreeMap<String, usize> = [
            ("invalid(2)".to_owned(), 1),
            ("invalid(1)".to_owned(), 1),
            ("invalid(0)".to_owned(), 1),
            ("locked".to_owned(), WRONG_TASKS - 3),
        ]
        .into();
        assert_eq!(tally, expected, "{name} trial {trial}");
        // The subject ends locked: even the right code is refused.
        assert_eq!(
            label(&otp.verify(&subject, Purpose::Login, &code).await),
            "locked"
        );
        for (k, v) in tally {
            *wrong_totals.entry(k).or_insert(0) += v;
        }
    }
    let wrong_conflicts = store.take_conflicts();

    let mut right_totals: BTreeMap<String, usize> = BTreeMap::new();
    for trial in 0..TRIALS {
        let subject = format!("{ns}right-{trial}");
        let issued = otp.issue(&subject, Purpose::Login).await.unwrap();
        let tally = race(
            &otp,
            &subject,
            issued.code.unprotected_as_str(),
            RIGHT_TASKS,
        )
        .await;
        // Single use: one success, the rest find the code spent.
        let expected: BTreeMap<String, usize> = [
            ("ok".to_owned(), 1),
            ("no_code".to_owned(), RIGHT_TASKS - 1),
        ]
        .into();
        assert_eq!(tally, expected, "{name} trial {trial}");
        for (k, v) in tally {
            *right_totals.entry(k).or_insert(0) += v;
        }
    }
    let right_conflicts = store.conflicts();
    println!(
        "{name}: {TRIALS} trials x {WRONG_TASKS} wrong codes: {wrong_totals:?}, {wrong_conflicts} swap conflicts retried"
    );
    println!(
        "{name}: {TRIALS} trials x {RIGHT_TASKS} right codes: {right_totals:?}, {right_conflicts} swap conflicts retried"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_codes_on_memory_store() {
    let store = Arc::new(RacingStore::new(Arc::new(MemoryStore::new())));
    storms("memory", "", store).await;
}

#[cfg(feature = "sqlite")]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_codes_on_sqlite_store() {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = keyward::SqliteStore::open(dir.path().join("otp.db"))
        .await
        .unwrap();
    let store = Arc::new(RacingStore::new(Arc::new(sqlite)));
    storms("sqlite", "", store).await;
}

/// The same storms on a shared PostgreSQL server: subjects carry a
/// per-run prefix, since the table outlives the test.
#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_codes_on_postgres_store() {
    let Some(url) = common::postgres("postgres otp race") else {
        return;
    };
    let options = keyward::store::PgOptions::default().max_connections(8);
    let pg = keyward::PgStore::connect_with(&url, options).await.unwrap();
    let store = Arc::new(RacingStore::new(Arc::new(pg)));
    storms("postgres", &common::unique_prefix("otp-race"), store).await;
}

/// The same storms on a shared Redis server, under a key prefix of the
/// run's own.
#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_codes_on_redis_store() {
    let Some(url) = common::redis("redis otp race") else {
        return;
    };
    let options = keyward::store::RedisOptions::default().prefix(common::unique_prefix("otp-race"));
    let redis = keyward::RedisStore::connect_with(&url, options)
        .await
        .unwrap();
    let store = Arc::new(RacingStore::new(Arc::new(redis)));
    storms("redis", "", store).await;
}
