//! The shared stores, PostgreSQL and Redis, against real servers: the
//! conformance suite, the refresh race, round trips per refresh, fail-closed
//! behaviour with the server gone mid-race, and recovery. Also what every
//! store owes whatever its upkeep does: SQLite and PostgreSQL pass the
//! conformance suite with their purge of expired rows made to fail, and
//! Redis warns at connect when it would lose acknowledged writes.
//!
//! Servers come from `$KEYWARD_POSTGRES_URL` and `$KEYWARD_REDIS_URL`
//! (local defaults otherwise). An unreachable server skips its tests with
//! one `SKIPPED:` line, or fails them under `KEYWARD_REQUIRE_SERVICES=1`.
#![allow(clippy::unwrap_used, clippy::panic, clippy::arithmetic_side_effects)]

mod common;

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use keyward::clock::ManualClock;
use keyward::store::Swap;
use keyward::testing::{CountingStore, Counts};
#[cfg(any(feature = "postgres", feature = "redis"))]
use keyward::{Error, OtpError, Purpose, SessionError, Sessions, TokenPair};
use keyward::{MemoryStore, SqliteStore, Store};

use common::sessions::{self, NOW, kw};

/// What `tracing` logs on this thread while it lives, as plain text: the
/// tests run on tokio's current-thread runtime, so the store's background
/// tasks log here too.
struct Logs {
    buf: Arc<Mutex<Vec<u8>>>,
    _guard: tracing::subscriber::DefaultGuard,
}

struct LogWriter(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for LogWriter {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Logs {
    fn capture() -> Self {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let to = Arc::clone(&buf);
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_max_level(tracing::Level::DEBUG)
            .with_writer(move || LogWriter(Arc::clone(&to)))
            .finish();
        Self {
            buf,
            _guard: tracing::subscriber::set_default(subscriber),
        }
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.buf.lock().unwrap()).into_owned()
    }

    /// Lines that hold `needle`.
    fn count(&self, needle: &str) -> usize {
        self.text().lines().filter(|l| l.contains(needle)).count()
    }

    /// Waits (bounded, 5 s) until at least one line holds `needle`, for a
    /// line a background task writes.
    async fn wait_for(&self, needle: &str) {
        for _ in 0..500 {
            if self.count(needle) > 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("no log line with {needle:?} in:\n{}", self.text());
    }
}

/// What the SQL stores log when a background purge fails.
const PURGE_FAILED: &str = "purging expired store records failed";

/// A connection of the test's own to the SQLite file at `path`.
async fn sqlite_conn(path: &Path) -> sqlx::sqlite::SqliteConnection {
    use sqlx::ConnectOptions;
    sqlx::sqlite::SqliteConnectOptions::new()
        .filename(path)
        .connect()
        .await
        .unwrap()
}

/// Makes every `DELETE` of an expired row from the store's table at `path`
/// fail, as a full disk, an I/O error or a lock held past the busy timeout
/// would: every purge of expired rows then fails, and nothing else does (a
/// commit deletes only live rows; a create takes an expired row over with
/// an `UPDATE`). The store's clock is the host's, in milliseconds since
/// 1970, which the trigger reads too.
async fn sqlite_refuse_purges(path: &Path) {
    let mut conn = sqlite_conn(path).await;
    sqlx::raw_sql(
        "CREATE TRIGGER refuse_purge BEFORE DELETE ON keyward_records
         WHEN OLD.expires_at <= CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)
         BEGIN SELECT RAISE(ABORT, 'purge refused by the test'); END;",
    )
    .execute(&mut conn)
    .await
    .unwrap();
}

async fn sqlite_rows(path: &Path) -> i64 {
    let mut conn = sqlite_conn(path).await;
    sqlx::query_scalar("SELECT count(*) FROM keyward_records")
        .fetch_one(&mut conn)
        .await
        .unwrap()
}

/// A swap's result is the swap's alone. Every 256th
/// write, `SqliteStore` purged expired rows after its `UPDATE` had
/// committed and returned the purge's error as the swap's: the refresh that
/// rotated the family reported a store error, and its retry (grace window
/// off) was reuse, which revoked the family. Here every purge fails; 300
/// refreshes cross the 256th write, and each must succeed.
#[tokio::test]
async fn sqlite_a_refresh_that_rotated_reports_success_when_the_purge_fails() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k.db");
    let store = Arc::new(SqliteStore::open(&path).await.unwrap());
    sqlite_refuse_purges(&path).await;
    // Expired rows, for a purge to (fail to) delete.
    for i in 0..8 {
        let key = format!("dead{i}");
        let r = store.swap(&key, None, b"x", Duration::from_millis(1));
        assert!(matches!(r.await.unwrap(), Swap::Swapped { .. }));
    }
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(
        store.purge_expired().await.is_err(),
        "with the trigger, every purge fails"
    );

    let logs = Logs::capture();
    let clock = ManualClock::new(NOW);
    let kw = kw(store.clone(), &clock, 0);
    let s = kw.sessions();
    let mut token = s
        .dangerous_start_without_proof("purge")
        .await
        .unwrap()
        .refresh
        .unprotected_as_str()
        .to_owned();
    for i in 1..=300 {
        clock.advance(1);
        match s.refresh(&token).await {
            Ok(pair) => token = pair.refresh.unprotected_as_str().to_owned(),
            Err(e) => {
                let retry = s.refresh(&token).await.map(|_| ());
                panic!("refresh {i} rotated the family but reported: {e}; its retry got {retry:?}");
            }
        }
    }
    // The purge did run (in the background), failed, said so, and deleted
    // nothing; the family is live.
    logs.wait_for(PURGE_FAILED).await;
    let mut conn = sqlite_conn(&path).await;
    let dead: i64 =
        sqlx::query_scalar("SELECT count(*) FROM keyward_records WHERE key LIKE 'dead%'")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert_eq!(dead, 8, "the expired rows are all still there");
    s.refresh(&token).await.unwrap();
}

/// The conformance suite, including its rule that no backend reports an
/// error for a write it made, on a SQLite store whose every purge fails.
#[tokio::test]
async fn sqlite_store_passes_the_conformance_suite_with_its_purge_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k.db");
    let store = Arc::new(SqliteStore::open(&path).await.unwrap());
    sqlite_refuse_purges(&path).await;
    let logs = Logs::capture();
    keyward::store::conformance::run(store).await;
    // Not vacuous: purges ran while the suite watched, and failed.
    logs.wait_for(PURGE_FAILED).await;
}

/// Expired rows are still deleted, every 256 writes, in the background.
#[tokio::test]
async fn sqlite_expired_rows_are_purged_in_the_background() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k.db");
    let store = SqliteStore::open(&path).await.unwrap();
    let logs = Logs::capture();
    for i in 0..100 {
        let key = format!("short{i}");
        let r = store.swap(&key, None, b"x", Duration::from_millis(1));
        assert!(matches!(r.await.unwrap(), Swap::Swapped { .. }));
    }
    tokio::time::sleep(Duration::from_millis(20)).await;
    // 155 more writes: 255 in all, no purge yet.
    for i in 0..155 {
        let key = format!("long{i}");
        let r = store.swap(&key, None, b"x", Duration::from_secs(60));
        assert!(matches!(r.await.unwrap(), Swap::Swapped { .. }));
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(sqlite_rows(&path).await, 255, "nothing purged yet");
    // The 256th write starts the purge; wait for it (bounded).
    let r = store.swap("trigger", None, b"x", Duration::from_secs(60));
    assert!(matches!(r.await.unwrap(), Swap::Swapped { .. }));
    let mut left = sqlite_rows(&path).await;
    for _ in 0..100 {
        if left == 156 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        left = sqlite_rows(&path).await;
    }
    assert_eq!(
        left, 156,
        "the 155 long rows and the trigger; nothing expired"
    );
    assert_eq!(logs.count(PURGE_FAILED), 0);
    assert_eq!(store.purge_expired().await.unwrap(), 0);
}

/// Store calls of one uncontended refresh: at most 2 round trips (one
/// `load_many` of the family and the subject, one swap).
async fn round_trips(name: &str, store: Arc<dyn Store>) {
    let counting = Arc::new(CountingStore::new(store));
    let clock = ManualClock::new(NOW);
    let kw = kw(counting.clone(), &clock, 10);
    let s = kw.sessions();
    let mut token = s
        .dangerous_start_without_proof("round-trips")
        .await
        .unwrap()
        .refresh
        .unprotected_as_str()
        .to_owned();
    counting.take();
    for _ in 0..3 {
        clock.advance(1);
        token = s
            .refresh(&token)
            .await
            .unwrap()
            .refresh
            .unprotected_as_str()
            .to_owned();
        let counts = counting.take();
        let Counts {
            loads,
            load_manys,
            commits,
        } = counts;
        println!(
            "{name}: one uncontended refresh = load {loads}, load_many {load_manys}, commit {commits}"
        );
        assert_eq!(
            [loads, load_manys, commits],
            [0, 1, 1],
            "{name}: one load_many and one commit"
        );
        assert!(counts.round_trips() <= 2);
    }
}

#[tokio::test]
async fn an_uncontended_refresh_costs_two_round_trips_on_memory_and_sqlite() {
    round_trips("memory", Arc::new(MemoryStore::new())).await;
    let dir = tempfile::tempdir().unwrap();
    let sqlite = SqliteStore::open(dir.path().join("k.db")).await.unwrap();
    round_trips("sqlite", Arc::new(sqlite)).await;
}

#[cfg(any(feature = "postgres", feature = "redis"))]
/// `tasks` refreshes of `token` at once.
async fn refresh_all(s: &Sessions, token: &str, tasks: usize) -> Vec<Result<TokenPair, Error>> {
    let handles: Vec<_> = (0..tasks)
        .map(|_| {
            let (s, token) = (s.clone(), token.to_owned());
            tokio::spawn(async move { s.refresh(&token).await })
        })
        .collect();
    let mut out = Vec::with_capacity(tasks);
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}

#[cfg(any(feature = "postgres", feature = "redis"))]
/// Distinct successors among `results`; panics on any error that is not
/// a store error or one of `allowed` session refusals.
fn successors(results: &[Result<TokenPair, Error>], allowed: &[SessionError]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for r in results {
        match r {
            Ok(p) => {
                let t = p.refresh.unprotected_as_str().to_owned();
                if !out.contains(&t) {
                    out.push(t);
                }
            }
            Err(Error::Store(_)) => {}
            Err(Error::Session(e)) if allowed.contains(e) => {}
            Err(e) => panic!("unexpected {e}"),
        }
    }
    out
}

#[cfg(any(feature = "postgres", feature = "redis"))]
/// A server that goes away and comes back, around one store: `stop` makes
/// every operation fail, `start` brings the same data back.
trait Outage {
    fn stop(&mut self) -> impl std::future::Future<Output = ()> + Send;
    fn start(&mut self) -> impl std::future::Future<Output = ()> + Send;
}

/// A six-digit code other than `code`.
#[cfg(any(feature = "postgres", feature = "redis"))]
fn wrong_code(code: &str) -> String {
    let n: u32 = code.parse().unwrap();
    format!("{:06}", (n + 1) % 1_000_000)
}

#[cfg(any(feature = "postgres", feature = "redis"))]
/// With the server stopped, a race of refreshes all fail with a store
/// error (no token is issued) and so do the other operations; once it is
/// back, the same token refreshes (the failed attempts spent nothing) and
/// a race has one successor again. Then the server is stopped in the
/// middle of a race: whatever got through, there is at most one
/// successor, and after the restart the token raced on still refreshes,
/// to that same successor (no fork).
async fn outage(name: &str, store: Arc<dyn Store>, server: &mut impl Outage) {
    for grace in [10, 0] {
        let clock = ManualClock::new(NOW);
        let kw = kw(store.clone(), &clock, grace);
        let s = kw.sessions().clone();
        let first = s.dangerous_start_without_proof("outage").await.unwrap();
        let live = s.refresh(first.refresh.unprotected_as_str()).await.unwrap();
        let token = live.refresh.unprotected_as_str().to_owned();

        // One-time codes, before the outage: one subject locked by three
        // wrong codes, one with a single attempt left.
        let otp = kw.otp().clone();
        let ns = common::unique_prefix("outage-otp");
        let (locked, last) = (format!("{ns}locked"), format!("{ns}last"));
        let locked_code = otp.issue(&locked, Purpose::Login).await.unwrap();
        let locked_code = locked_code.code.unprotected_as_str().to_owned();
        let last_code = otp.issue(&last, Purpose::Login).await.unwrap();
        let last_code = last_code.code.unprotected_as_str().to_owned();
        for _ in 0..3 {
            let _ = otp
                .verify(&locked, Purpose::Login, &wrong_code(&locked_code))
                .await;
        }
        for _ in 0..2 {
            let _ = otp
                .verify(&last, Purpose::Login, &wrong_code(&last_code))
                .await;
        }
        assert!(matches!(
            otp.verify(&locked, Purpose::Login, &locked_code).await,
            Err(Error::Otp(OtpError::Locked { .. }))
        ));

        server.stop().await;
        let results = refresh_all(&s, &token, 16).await;
        let failed = results
            .iter()
            .filter(|r| matches!(r, Err(Error::Store(_))))
            .count();
        println!("{name}, grace {grace}, server down: {failed}/16 refreshes failed closed");
        assert_eq!(failed, 16, "{name}: every refresh fails with a store error");
        assert!(matches!(
            s.dangerous_start_without_proof("outage").await,
            Err(Error::Store(_))
        ));
        assert!(matches!(s.revoke_all("outage").await, Err(Error::Store(_))));
        assert!(matches!(
            s.authenticate_strict(live.access.unprotected_as_str())
                .await,
            Err(Error::Store(_))
        ));
        // Code checks fail closed too: neither the right code for the locked
        // subject nor any code for the other gets through, and nothing can
        // be issued or unlocked.
        for (subject, code) in [
            (&locked, locked_code.clone()),
            (&last, last_code.clone()),
            (&last, wrong_code(&last_code)),
        ] {
            let r = otp.verify(subject, Purpose::Login, &code).await;
            assert!(matches!(r, Err(Error::Store(_))), "{name}: {r:?}");
        }
        assert!(matches!(
            otp.issue(&format!("{ns}fresh"), Purpose::Login).await,
            Err(Error::Store(_))
        ));
        assert!(matches!(otp.unlock(&locked).await, Err(Error::Store(_))));

        server.start().await;
        // The outage changed nothing: the locked subject is still locked,
        // and the other still has exactly one attempt left.
        assert!(matches!(
            otp.verify(&locked, Purpose::Login, &locked_code).await,
            Err(Error::Otp(OtpError::Locked { .. }))
        ));
        assert!(matches!(
            otp.verify(&last, Purpose::Login, &wrong_code(&last_code))
                .await,
            Err(Error::Otp(OtpError::Invalid { attempts_left: 0 }))
        ));
        assert!(matches!(
            otp.verify(&last, Purpose::Login, &last_code).await,
            Err(Error::Otp(OtpError::Locked { .. }))
        ));
        let next = s.refresh(&token).await.unwrap_or_else(|e| {
            panic!("{name}, grace {grace}: the service resumes after the outage: {e}")
        });
        let token = next.refresh.unprotected_as_str().to_owned();
        let results = refresh_all(&s, &token, 16).await;
        let allowed = [SessionError::Reused, SessionError::Revoked];
        let won = successors(&results, &allowed);
        assert!(results.iter().all(|r| !matches!(r, Err(Error::Store(_)))));
        assert_eq!(won.len(), 1, "{name}: one successor after recovery");
        if grace == 0 {
            continue;
        }
        let token = won[0].clone();

        // The server goes away while the race is in flight: the tasks
        // start a millisecond apart, and the server stops once the first
        // four have their answers.
        let mut handles: Vec<_> = (0..16u64)
            .map(|i| {
                let (s, token) = (s.clone(), token.clone());
                tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_millis(i)).await;
                    s.refresh(&token).await
                })
            })
            .collect();
        let mut results = Vec::new();
        for h in handles.drain(..4) {
            results.push(h.await.unwrap());
        }
        server.stop().await;
        for h in handles {
            results.push(h.await.unwrap());
        }
        let got = successors(&results, &[]);
        let failed = results.iter().filter(|r| r.is_err()).count();
        println!(
            "{name}, grace {grace}, server stopped mid-race: {} succeeded ({} distinct successor(s)), {failed} failed closed",
            16 - failed,
            got.len()
        );
        assert!(got.len() <= 1, "{name}: no fork");
        server.start().await;
        let after = s.refresh(&token).await.unwrap_or_else(|e| {
            panic!("{name}: the token raced on still refreshes after the restart: {e}")
        });
        if let Some(successor) = got.first() {
            assert_eq!(
                after.refresh.unprotected_as_str(),
                successor,
                "{name}: the grace replay hands out the successor already issued"
            );
        }
        s.refresh(after.refresh.unprotected_as_str()).await.unwrap();
    }
}

#[cfg(feature = "postgres")]
mod postgres {
    use std::sync::Mutex;
    use std::sync::atomic::Ordering;

    use keyward::store::PgOptions;
    use keyward::{PgStore, Store};
    use sqlx::Connection;
    use tokio::net::{TcpListener, TcpStream};
    use tokio::task::AbortHandle;

    use super::*;

    async fn store(what: &str) -> Option<Arc<PgStore>> {
        let url = common::postgres(what)?;
        // Tests run in parallel on a shared server: small pools.
        let options = PgOptions::default().max_connections(5);
        Some(Arc::new(
            PgStore::connect_with(&url, options).await.unwrap(),
        ))
    }

    /// A schema of its own, for tests that count rows or create the table.
    struct Schema {
        url: String,
        name: String,
    }

    impl Schema {
        async fn new(base: &str, test: &str) -> Self {
            let name = common::unique_prefix(test)
                .replace(['.', ':'], "_")
                .to_ascii_lowercase();
            let mut conn = sqlx::PgConnection::connect(base).await.unwrap();
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA \"{name}\"")))
                .execute(&mut conn)
                .await
                .unwrap();
            let sep = if base.contains('?') { '&' } else { '?' };
            let url = format!("{base}{sep}options=-c%20search_path%3D{name}");
            Self { url, name }
        }

        async fn count(&self) -> i64 {
            let mut conn = sqlx::PgConnection::connect(&self.url).await.unwrap();
            sqlx::query_scalar("SELECT count(*) FROM keyward_records")
                .fetch_one(&mut conn)
                .await
                .unwrap()
        }

        async fn drop(self, base: &str) {
            let mut conn = sqlx::PgConnection::connect(base).await.unwrap();
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP SCHEMA \"{}\" CASCADE",
                self.name
            )))
            .execute(&mut conn)
            .await
            .unwrap();
        }
    }

    #[tokio::test]
    async fn postgres_store_passes_the_conformance_suite() {
        let Some(store) = store("postgres conformance").await else {
            return;
        };
        keyward::store::conformance::run(store).await;
    }

    /// The conformance suite, including its rule that no backend reports an
    /// error for a write it made, on a schema of its own where a trigger
    /// makes every `DELETE` from the table, and so every purge, fail.
    #[tokio::test]
    async fn postgres_store_passes_the_conformance_suite_with_its_purge_refused() {
        let Some(base) = common::postgres("postgres conformance, purge refused") else {
            return;
        };
        let schema = Schema::new(&base, "purge-refused").await;
        let store = Arc::new(PgStore::connect(&schema.url).await.unwrap());
        let mut conn = sqlx::PgConnection::connect(&schema.url).await.unwrap();
        sqlx::raw_sql(
            "CREATE FUNCTION refuse_delete() RETURNS trigger LANGUAGE plpgsql AS
                 $$ BEGIN RAISE EXCEPTION 'delete refused by the test'; END $$;
             CREATE TRIGGER refuse_delete BEFORE DELETE ON keyward_records
                 FOR EACH ROW EXECUTE FUNCTION refuse_delete();",
        )
        .execute(&mut conn)
        .await
        .unwrap();
        assert!(store.purge_expired(1).await.is_ok(), "nothing expired yet");
        let logs = Logs::capture();
        keyward::store::conformance::run(store.clone()).await;
        // Not vacuous: purges ran while the suite watched, and failed.
        logs.wait_for(PURGE_FAILED).await;
        assert!(store.purge_expired(1_000).await.is_err());
        store.close().await;
        drop(conn);
        schema.drop(&base).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn refresh_race_postgres_store() {
        let Some(store) = store("postgres refresh race").await else {
            return;
        };
        for grace in [10, 0] {
            let t = sessions::race(store.clone(), grace, 1_000, 16).await;
            println!(
                "postgres, grace {grace}: 1000 trials x 16 tasks: rotated {} grace-replays {} reused {} revoked {}",
                t[0], t[1], t[2], t[3]
            );
            assert_eq!(t[0], 1_000);
        }
    }

    #[tokio::test]
    async fn an_uncontended_refresh_costs_two_round_trips_on_postgres() {
        let Some(store) = store("postgres round trips").await else {
            return;
        };
        round_trips("postgres", store).await;
    }

    /// Eight replicas starting at once on an empty schema all migrate
    /// without error (the advisory lock), and a second migration is a
    /// no-op.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_first_starts_migrate_once() {
        let Some(base) = common::postgres("postgres migration") else {
            return;
        };
        let schema = Schema::new(&base, "migrate").await;
        let options = PgOptions::default().max_connections(1).migrate(false);
        let mut stores = Vec::new();
        for _ in 0..8 {
            stores.push(Arc::new(
                PgStore::connect_with(&schema.url, options.clone())
                    .await
                    .unwrap(),
            ));
        }
        let handles: Vec<_> = stores
            .iter()
            .map(|s| {
                let s = s.clone();
                tokio::spawn(async move { s.migrate().await })
            })
            .collect();
        for h in handles {
            h.await.unwrap().unwrap();
        }
        stores[0].migrate().await.unwrap();
        let v = match stores[1]
            .swap("migrated", None, b"x", Duration::from_secs(60))
            .await
            .unwrap()
        {
            Swap::Swapped { version } => version,
            Swap::Conflict => panic!("fresh table"),
        };
        assert_eq!(
            stores[2].load("migrated").await.unwrap().unwrap().version,
            v
        );
        assert_eq!(schema.count().await, 1);
        for s in &stores {
            s.close().await;
        }
        schema.drop(&base).await;
    }

    /// Expired rows are deleted in bounded batches, live rows are kept, and
    /// writes purge in the background.
    #[tokio::test]
    async fn expired_rows_are_purged_in_batches() {
        let Some(base) = common::postgres("postgres purge") else {
            return;
        };
        let schema = Schema::new(&base, "purge").await;
        let store = PgStore::connect(&schema.url).await.unwrap();
        for i in 0..5 {
            let _ = store
                .swap(&format!("short{i}"), None, b"x", Duration::from_millis(20))
                .await
                .unwrap();
        }
        for i in 0..3 {
            let _ = store
                .swap(&format!("long{i}"), None, b"x", Duration::from_secs(60))
                .await
                .unwrap();
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(schema.count().await, 8, "nothing purged yet");
        assert_eq!(store.purge_expired(2).await.unwrap(), 2, "one batch of 2");
        assert_eq!(store.purge_expired(1_000).await.unwrap(), 3, "the rest");
        assert_eq!(store.purge_expired(1_000).await.unwrap(), 0);
        assert_eq!(schema.count().await, 3, "live rows stay");
        assert!(store.load("long0").await.unwrap().is_some());

        // Every 256th write (PgStore's PURGE_EVERY) starts a background
        // purge: 8 writes so far, 247 short-lived ones, then the 256th.
        for i in 0..247 {
            let _ = store
                .swap(&format!("bg{i}"), None, b"x", Duration::from_millis(1))
                .await
                .unwrap();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(schema.count().await, 3 + 247);
        let _ = store
            .swap("trigger", None, b"x", Duration::from_secs(60))
            .await
            .unwrap();
        // The purge runs on its own task; wait for it (bounded).
        let mut left = schema.count().await;
        for _ in 0..100 {
            if left == 4 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
            left = schema.count().await;
        }
        assert_eq!(left, 4, "the 3 long rows and the trigger; nothing expired");
        store.close().await;
        schema.drop(&base).await;
    }

    /// A TCP proxy in front of PostgreSQL that the test can cut: `stop`
    /// closes every proxied connection and refuses new ones (the server
    /// and its data stay), `start` lets connections through again.
    struct Proxy {
        port: u16,
        up: Arc<std::sync::atomic::AtomicBool>,
        conns: Arc<Mutex<Vec<AbortHandle>>>,
        accept: AbortHandle,
    }

    impl Proxy {
        async fn start(upstream: std::net::SocketAddr) -> Self {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let port = listener.local_addr().unwrap().port();
            let up = Arc::new(std::sync::atomic::AtomicBool::new(true));
            let conns: Arc<Mutex<Vec<AbortHandle>>> = Arc::default();
            let (up2, conns2) = (up.clone(), conns.clone());
            let accept = tokio::spawn(async move {
                loop {
                    let Ok((mut client, _)) = listener.accept().await else {
                        continue;
                    };
                    if !up2.load(Ordering::SeqCst) {
                        drop(client);
                        continue;
                    }
                    let task = tokio::spawn(async move {
                        if let Ok(mut server) = TcpStream::connect(upstream).await {
                            let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                        }
                    });
                    conns2.lock().unwrap().push(task.abort_handle());
                }
            })
            .abort_handle();
            Self {
                port,
                up,
                conns,
                accept,
            }
        }
    }

    impl Outage for Proxy {
        async fn stop(&mut self) {
            self.up.store(false, Ordering::SeqCst);
            for c in self.conns.lock().unwrap().drain(..) {
                c.abort();
            }
        }
        async fn start(&mut self) {
            self.up.store(true, Ordering::SeqCst);
        }
    }

    impl Drop for Proxy {
        fn drop(&mut self) {
            self.accept.abort();
            for c in self.conns.lock().unwrap().drain(..) {
                c.abort();
            }
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn postgres_outage_fails_closed_and_recovers() {
        let Some(url) = common::postgres("postgres outage") else {
            return;
        };
        let mut proxy = Proxy::start(common::socket_addr(&url, 5432)).await;
        let via = common::with_host_port(&url, "127.0.0.1", proxy.port);
        let options = PgOptions::default()
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(2));
        let store = Arc::new(PgStore::connect_with(&via, options).await.unwrap());
        outage("postgres", store, &mut proxy).await;
    }
}

#[cfg(feature = "redis")]
mod redis {
    use std::process::{Child, Command, Stdio};

    use keyward::store::RedisOptions;
    use keyward::{RedisStore, Store, StoreError};

    use super::*;

    async fn store(what: &str, test: &str) -> Option<Arc<RedisStore>> {
        let url = common::redis(what)?;
        let options = RedisOptions::default().prefix(common::unique_prefix(test));
        Some(Arc::new(
            RedisStore::connect_with(&url, options).await.unwrap(),
        ))
    }

    #[tokio::test]
    async fn redis_store_passes_the_conformance_suite() {
        let Some(store) = store("redis conformance", "conformance").await else {
            return;
        };
        keyward::store::conformance::run(store).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn refresh_race_redis_store() {
        let Some(store) = store("redis refresh race", "race").await else {
            return;
        };
        for grace in [10, 0] {
            let t = sessions::race(store.clone(), grace, 1_000, 16).await;
            println!(
                "redis, grace {grace}: 1000 trials x 16 tasks: rotated {} grace-replays {} reused {} revoked {}",
                t[0], t[1], t[2], t[3]
            );
            assert_eq!(t[0], 1_000);
        }
    }

    #[tokio::test]
    async fn an_uncontended_refresh_costs_two_round_trips_on_redis() {
        let Some(store) = store("redis round trips", "round-trips").await else {
            return;
        };
        round_trips("redis", store).await;
    }

    /// Keys live under the prefix, as 8 version bytes then the value; a
    /// store with another prefix (here from the URL) sees none of them.
    #[tokio::test]
    async fn keys_are_namespaced_by_the_prefix() {
        let Some(url) = common::redis("redis prefixes") else {
            return;
        };
        let (pa, pb) = (
            common::unique_prefix("prefix-a"),
            common::unique_prefix("prefix-b"),
        );
        let a = RedisStore::connect_with(&url, RedisOptions::default().prefix(pa.clone()))
            .await
            .unwrap();
        let sep = if url.contains('?') { '&' } else { '?' };
        let b = RedisStore::connect(&format!("{url}{sep}prefix={pb}"))
            .await
            .unwrap();
        assert_eq!(b.prefix(), pb);
        let v = match a
            .swap("k", None, b"value", Duration::from_secs(60))
            .await
            .unwrap()
        {
            Swap::Swapped { version } => version,
            Swap::Conflict => panic!("fresh key"),
        };
        assert!(b.load("k").await.unwrap().is_none());
        assert!(matches!(
            b.swap("k", None, b"other", Duration::from_secs(60))
                .await
                .unwrap(),
            Swap::Swapped { .. }
        ));
        assert_eq!(a.load("k").await.unwrap().unwrap().value, b"value");

        let client = ::redis::Client::open(url.as_str()).unwrap();
        let mut conn = client.get_multiplexed_async_connection().await.unwrap();
        let raw: Vec<u8> = ::redis::cmd("GET")
            .arg(format!("{pa}k"))
            .query_async(&mut conn)
            .await
            .unwrap();
        assert_eq!(&raw[..8], v.to_be_bytes());
        assert_eq!(&raw[8..], b"value");
        let ttl: i64 = ::redis::cmd("PTTL")
            .arg(format!("{pa}k"))
            .query_async(&mut conn)
            .await
            .unwrap();
        assert!(ttl > 0 && ttl <= 60_000, "{ttl}");
        // A record too short to hold its version is refused, not misread.
        let _: () = ::redis::cmd("SET")
            .arg(format!("{pa}bad"))
            .arg(b"1234567".as_slice())
            .arg("PX")
            .arg(60_000)
            .query_async(&mut conn)
            .await
            .unwrap();
        assert!(matches!(a.load("bad").await, Err(StoreError::Corrupt(_))));
        let _: () = ::redis::cmd("DEL")
            .arg(format!("{pa}k"))
            .arg(format!("{pb}k"))
            .arg(format!("{pa}bad"))
            .query_async(&mut conn)
            .await
            .unwrap();
        // A prefix outside the key alphabet is refused.
        assert!(
            RedisStore::connect_with(&url, RedisOptions::default().prefix("{bad}"))
                .await
                .is_err()
        );
        assert!(
            RedisStore::connect("rediss://127.0.0.1:6379")
                .await
                .is_err()
        );
    }

    /// A redis-server of the test's own, on a free port, with its data in a
    /// temporary folder and every write fsynced, so that it can be killed
    /// and started again with its data. The shared server is not touched.
    struct OwnRedis {
        child: Option<Child>,
        port: u16,
        dir: tempfile::TempDir,
        extra: Vec<String>,
    }

    impl OwnRedis {
        /// `None`, after one SKIPPED line, when redis-server is not on PATH.
        fn new(extra: &[&str]) -> Option<Self> {
            let found = Command::new("redis-server")
                .arg("--version")
                .stdout(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if !found {
                assert!(
                    !common::services_required(),
                    "redis-server is not on PATH, and KEYWARD_REQUIRE_SERVICES=1 requires it"
                );
                println!("SKIPPED: redis outage (redis-server not on PATH)");
                return None;
            }
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            Some(Self {
                child: None,
                port,
                dir: tempfile::tempdir().unwrap(),
                extra: extra.iter().map(|s| (*s).to_owned()).collect(),
            })
        }

        fn url(&self) -> String {
            format!("redis://127.0.0.1:{}", self.port)
        }

        fn spawn(&mut self) {
            let child = Command::new("redis-server")
                .args(["--bind", "127.0.0.1", "--port"])
                .arg(self.port.to_string())
                .args(["--save", "", "--appendonly", "yes"])
                .args(["--appendfsync", "always", "--daemonize", "no"])
                .arg("--dir")
                .arg(self.dir.path())
                .args(&self.extra)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            self.child = Some(child);
            // Wait (bounded) until it answers PING.
            for _ in 0..200 {
                if ping(self.port) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(25));
            }
            panic!(
                "the test's redis-server on port {} did not start",
                self.port
            );
        }

        fn kill(&mut self) {
            if let Some(mut child) = self.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }

    fn ping(port: u16) -> bool {
        use std::io::{Read, Write};
        let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(1)));
        let mut buf = [0u8; 7];
        s.write_all(b"PING\r\n").is_ok() && s.read_exact(&mut buf).is_ok() && &buf == b"+PONG\r\n"
    }

    impl Outage for OwnRedis {
        async fn stop(&mut self) {
            self.kill();
        }
        async fn start(&mut self) {
            self.spawn();
        }
    }

    impl Drop for OwnRedis {
        fn drop(&mut self) {
            self.kill();
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn redis_outage_fails_closed_and_recovers() {
        let Some(mut server) = OwnRedis::new(&[]) else {
            return;
        };
        server.spawn();
        let options = RedisOptions::default()
            .prefix(common::unique_prefix("outage"))
            .connection_timeout(Duration::from_millis(500))
            .response_timeout(Duration::from_secs(1))
            .reconnect_retries(1);
        let store = Arc::new(
            RedisStore::connect_with(&server.url(), options)
                .await
                .unwrap(),
        );
        outage("redis", store, &mut server).await;
    }

    /// What `RedisStore::connect` logs when the server keeps no append-only
    /// file.
    const NO_AOF: &str = "redis keeps no append-only file";

    /// A server without AOF (`appendonly no`, as the
    /// shared test server runs) loses acknowledged writes on a restart:
    /// revocations, lockouts, spent codes. Connecting says so, once, read
    /// from `CONFIG GET appendonly`, or from `INFO persistence` where
    /// `CONFIG` is refused (as managed services do). With AOF on, or when
    /// neither command answers, nothing is logged at warning level.
    #[tokio::test]
    async fn a_server_without_an_append_only_file_is_warned_about_once() {
        let logs = Logs::capture();
        let Some(mut no_aof) = OwnRedis::new(&["--appendonly", "no"]) else {
            return;
        };
        no_aof.spawn();
        RedisStore::connect(&no_aof.url()).await.unwrap();
        assert_eq!(logs.count(NO_AOF), 1, "{}", logs.text());
        assert!(logs.text().contains("WARN"), "{}", logs.text());

        let hidden = ["--appendonly", "no", "--rename-command", "CONFIG", ""];
        let Some(mut no_aof_no_config) = OwnRedis::new(&hidden) else {
            return;
        };
        no_aof_no_config.spawn();
        RedisStore::connect(&no_aof_no_config.url()).await.unwrap();
        assert_eq!(logs.count(NO_AOF), 2, "via INFO: {}", logs.text());

        // AOF on (OwnRedis's default: appendonly yes, appendfsync always).
        let Some(mut aof) = OwnRedis::new(&[]) else {
            return;
        };
        aof.spawn();
        RedisStore::connect(&aof.url()).await.unwrap();
        let hidden = ["--rename-command", "CONFIG", ""];
        let Some(mut aof_no_config) = OwnRedis::new(&hidden) else {
            return;
        };
        aof_no_config.spawn();
        RedisStore::connect(&aof_no_config.url()).await.unwrap();
        assert_eq!(logs.count(NO_AOF), 2, "AOF on: {}", logs.text());

        // Neither CONFIG nor INFO: no way to tell, so no warning.
        let blind = [
            "--appendonly",
            "no",
            "--rename-command",
            "CONFIG",
            "",
            "--rename-command",
            "INFO",
            "",
        ];
        let Some(mut blind) = OwnRedis::new(&blind) else {
            return;
        };
        blind.spawn();
        RedisStore::connect(&blind.url()).await.unwrap();
        assert_eq!(logs.count(NO_AOF), 2, "cannot tell: {}", logs.text());
    }

    /// A server that may evict keys is refused unless the caller insists.
    #[tokio::test]
    async fn a_server_that_may_evict_keys_is_refused() {
        let Some(mut server) =
            OwnRedis::new(&["--maxmemory", "64mb", "--maxmemory-policy", "allkeys-lru"])
        else {
            return;
        };
        server.spawn();
        let err = RedisStore::connect(&server.url()).await.unwrap_err();
        assert!(
            err.to_string().contains("maxmemory-policy is allkeys-lru"),
            "{err}"
        );
        let options = RedisOptions::default().dangerous_allow_eviction(true);
        RedisStore::connect_with(&server.url(), options)
            .await
            .unwrap();
    }
}
