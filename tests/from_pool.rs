//! Stores on the application's own pools: `SqliteStore::from_pool` and
//! `PgStore::from_pool`. A pool with the settings keyward's guarantees rest
//! on carries sessions like a store keyward opened itself; a pool without
//! them is refused, with the fix in the message.
//!
//! PostgreSQL comes from `$KEYWARD_POSTGRES_URL` (the local default
//! otherwise); when it is unreachable the PostgreSQL tests print one
//! `SKIPPED:` line, or fail under `KEYWARD_REQUIRE_SERVICES=1`.
#![allow(clippy::unwrap_used, clippy::panic, clippy::arithmetic_side_effects)]

mod common;

use std::str::FromStr;
use std::sync::Arc;

use keyward::clock::ManualClock;
use keyward::store::PgOptions;
use keyward::{Error, PgStore, SessionError, SqliteStore, Store, StoreError};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use common::sessions::{NOW, kw};

/// A session started, authenticated and refreshed through `store`; the
/// spent refresh token, presented again outside the grace window, is
/// refused as reused (the store's compare-and-swap at work).
async fn sessions_round_trip(store: impl Store + 'static) {
    let clock = ManualClock::new(NOW);
    let kw = kw(Arc::new(store), &clock, 0);
    let sessions = kw.sessions();
    let subject = format!("from-pool-{}", std::process::id());
    let pair = sessions
        .dangerous_start_without_proof(&subject)
        .await
        .unwrap();
    sessions
        .authenticate(pair.access.unprotected_as_str())
        .unwrap();
    let next = sessions
        .refresh(pair.refresh.unprotected_as_str())
        .await
        .unwrap();
    sessions
        .authenticate(next.access.unprotected_as_str())
        .unwrap();
    assert!(matches!(
        sessions.refresh(pair.refresh.unprotected_as_str()).await,
        Err(Error::Session(SessionError::Reused))
    ));
}

fn refusal(r: Result<impl std::fmt::Debug, StoreError>) -> String {
    match r {
        Err(StoreError::Misconfigured(msg)) => msg,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

async fn sqlite_pool(
    dir: &tempfile::TempDir,
    name: &str,
    journal: SqliteJournalMode,
    synchronous: SqliteSynchronous,
) -> SqlitePool {
    let options = SqliteConnectOptions::new()
        .filename(dir.path().join(name))
        .create_if_missing(true)
        .journal_mode(journal)
        .synchronous(synchronous);
    SqlitePoolOptions::new()
        .max_connections(2)
        .connect_with(options)
        .await
        .unwrap()
}

#[tokio::test]
async fn sqlite_pool_in_wal_with_full_sync_carries_sessions() {
    let dir = tempfile::tempdir().unwrap();
    for (name, synchronous) in [
        ("full.db", SqliteSynchronous::Full),
        ("extra.db", SqliteSynchronous::Extra),
    ] {
        let pool = sqlite_pool(&dir, name, SqliteJournalMode::Wal, synchronous).await;
        let store = SqliteStore::from_pool(pool.clone()).await.unwrap();
        sessions_round_trip(store).await;
        // The records are in the application's file, beside its own tables.
        let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM keyward_records")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert!(rows > 0);
    }
}

#[tokio::test]
async fn sqlite_pool_without_wal_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    for (name, journal) in [
        ("delete.db", SqliteJournalMode::Delete),
        ("truncate.db", SqliteJournalMode::Truncate),
    ] {
        let pool = sqlite_pool(&dir, name, journal, SqliteSynchronous::Full).await;
        let msg = refusal(SqliteStore::from_pool(pool.clone()).await);
        assert!(msg.contains("journal_mode="), "{msg}");
        assert!(
            msg.contains(
                "journal_mode(SqliteJournalMode::Wal).synchronous(SqliteSynchronous::Full)"
            ),
            "{msg}"
        );
        // Nothing was created in a refused pool.
        let table: Option<String> =
            sqlx::query_scalar("SELECT name FROM sqlite_master WHERE name = 'keyward_records'")
                .fetch_optional(&pool)
                .await
                .unwrap();
        assert_eq!(table, None);
    }
}

#[tokio::test]
async fn sqlite_pool_syncing_less_than_full_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    for (name, synchronous) in [
        ("normal.db", SqliteSynchronous::Normal),
        ("off.db", SqliteSynchronous::Off),
    ] {
        let pool = sqlite_pool(&dir, name, SqliteJournalMode::Wal, synchronous).await;
        let msg = refusal(SqliteStore::from_pool(pool).await);
        assert!(msg.contains("synchronous="), "{msg}");
        assert!(
            msg.contains(".synchronous(SqliteSynchronous::Full)"),
            "{msg}"
        );
    }
}

#[tokio::test]
async fn sqlite_in_memory_pool_is_refused() {
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .connect("sqlite::memory:")
        .await
        .unwrap();
    let msg = refusal(SqliteStore::from_pool(pool).await);
    assert!(msg.contains("journal_mode=memory"), "{msg}");
}

/// A pool on the test server with `settings` as set-up parameters of every
/// connection; `None` (after one SKIPPED line) when it is unreachable.
async fn pg_pool(what: &str, settings: &[(&str, &str)]) -> Option<PgPool> {
    let url = common::postgres(what)?;
    let options = PgConnectOptions::from_str(&url)
        .unwrap()
        .options(settings.iter().copied());
    Some(
        PgPoolOptions::new()
            .max_connections(2)
            .connect_with(options)
            .await
            .unwrap(),
    )
}

#[tokio::test]
async fn pg_pool_at_read_committed_carries_sessions() {
    let Some(pool) = pg_pool(
        "PgStore::from_pool accepts a read committed pool",
        &[("default_transaction_isolation", "read committed")],
    )
    .await
    else {
        return;
    };
    let store = PgStore::from_pool(pool.clone()).await.unwrap();
    sessions_round_trip(store).await;
    pool.close().await;
}

#[tokio::test]
async fn pg_pool_at_a_stronger_isolation_is_refused() {
    for level in ["serializable", "repeatable read"] {
        let Some(pool) = pg_pool(
            "PgStore::from_pool refuses other isolation levels",
            &[("default_transaction_isolation", level)],
        )
        .await
        else {
            return;
        };
        let msg = refusal(PgStore::from_pool(pool.clone()).await);
        assert!(msg.contains(&format!("run at {level} isolation")), "{msg}");
        assert!(
            msg.contains("set default_transaction_isolation to 'read committed'"),
            "{msg}"
        );
        pool.close().await;
    }
}

/// `migrate(false)` leaves the schema alone, as with `connect_with`; the
/// default migrates. Each on a schema of the test's own.
#[tokio::test]
async fn pg_from_pool_migrates_unless_told_not_to() {
    let Some(admin) = pg_pool("PgStore::from_pool_with and migrate", &[]).await else {
        return;
    };
    let schema = format!(
        "kw_from_pool_{}_{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos()
    );
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
        .execute(&admin)
        .await
        .unwrap();
    let pool = pg_pool("", &[("search_path", schema.as_str())])
        .await
        .unwrap();
    let table = || async {
        sqlx::query_scalar::<_, Option<String>>(sqlx::AssertSqlSafe(format!(
            "SELECT to_regclass('{schema}.keyward_records')::text"
        )))
        .fetch_one(&admin)
        .await
        .unwrap()
    };

    let store = PgStore::from_pool_with(pool.clone(), PgOptions::default().migrate(false))
        .await
        .unwrap();
    assert_eq!(table().await, None, "migrate(false) created the table");
    drop(store);

    let store = PgStore::from_pool(pool.clone()).await.unwrap();
    assert!(table().await.is_some(), "from_pool did not migrate");
    sessions_round_trip(store).await;

    pool.close().await;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
        .execute(&admin)
        .await
        .unwrap();
    admin.close().await;
}
