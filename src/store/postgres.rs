//! The shared SQL store: one PostgreSQL table, for any number of replicas.
//!
//! Every compare-and-swap is one statement, so PostgreSQL's row locks make it
//! atomic across connections, processes and machines: an `UPDATE … WHERE
//! version = $expected` that waited on a concurrent writer re-checks its
//! `WHERE` against the row that writer left, and an `INSERT … ON CONFLICT DO
//! UPDATE … WHERE` is atomic under the default READ COMMITTED isolation.
//!
//! Time is the database's: every statement compares `expires_at` with the
//! server's `now()`, so replicas with skewed clocks still agree on which
//! records are live.

use std::str::FromStr;
use std::time::Duration;

use sqlx::Row;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

use super::{
    BackgroundPurge, Record, Store, StoreError, StoreFuture, Swap, check_args, check_key,
    in_key_order, initial_version, next_version, sql_record,
};

/// Every this many writes, one batch of expired rows is deleted in the
/// background, through the `expires_at` index.
const PURGE_EVERY: u32 = 256;
/// Rows deleted per purge batch: bounded, so a purge never holds many locks.
const PURGE_BATCH: i64 = 1_000;
/// Key of the advisory lock that serialises concurrent migrations (an
/// arbitrary constant: "keyward" in ASCII).
const MIGRATION_LOCK: i64 = 0x006b_6579_7761_7264;

const SCHEMA: [&str; 2] = [
    "CREATE TABLE IF NOT EXISTS keyward_records (
        key TEXT COLLATE \"C\" PRIMARY KEY,
        version BIGINT NOT NULL,
        value BYTEA NOT NULL,
        expires_at TIMESTAMPTZ NOT NULL
    )",
    "CREATE INDEX IF NOT EXISTS keyward_records_expires ON keyward_records (expires_at)",
];

/// Connection settings for [`PgStore`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct PgOptions {
    /// Most connections the pool opens (default 10).
    pub max_connections: u32,
    /// How long an operation waits for a pooled connection, including
    /// (re)connecting, before it fails closed (default 5 s).
    pub acquire_timeout: Duration,
    /// Server-side limit on any one statement (default 5 s).
    pub statement_timeout: Duration,
    /// Whether [`PgStore::connect_with`] runs [`PgStore::migrate`] (default
    /// true). Turn it off when the schema is managed by a migration tool
    /// and the service's database role may not create tables.
    pub migrate: bool,
}

impl Default for PgOptions {
    fn default() -> Self {
        Self {
            max_connections: 10,
            acquire_timeout: Duration::from_secs(5),
            statement_timeout: Duration::from_secs(5),
            migrate: true,
        }
    }
}

impl PgOptions {
    /// Sets [`max_connections`](Self::max_connections).
    #[must_use]
    pub fn max_connections(mut self, n: u32) -> Self {
        self.max_connections = n;
        self
    }

    /// Sets [`acquire_timeout`](Self::acquire_timeout).
    #[must_use]
    pub fn acquire_timeout(mut self, timeout: Duration) -> Self {
        self.acquire_timeout = timeout;
        self
    }

    /// Sets [`statement_timeout`](Self::statement_timeout).
    #[must_use]
    pub fn statement_timeout(mut self, timeout: Duration) -> Self {
        self.statement_timeout = timeout;
        self
    }

    /// Sets [`migrate`](Self::migrate).
    #[must_use]
    pub fn migrate(mut self, migrate: bool) -> Self {
        self.migrate = migrate;
        self
    }
}

/// A [`Store`] on one PostgreSQL table, `keyward_records` (feature
/// `postgres`). Cheap to share: wrap it in an `Arc`.
pub struct PgStore {
    pool: PgPool,
    purge: BackgroundPurge,
}

impl std::fmt::Debug for PgStore {
    // No URL: it may hold a password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore").finish_non_exhaustive()
    }
}

fn unavailable(e: sqlx::Error) -> StoreError {
    StoreError::Unavailable(format!("postgres: {e}"))
}

fn to_i64(v: u64) -> Result<i64, StoreError> {
    i64::try_from(v).map_err(|_| StoreError::Corrupt("version out of range"))
}

async fn purge(pool: &PgPool, limit: i64) -> Result<u64, StoreError> {
    // The inner SELECT walks the expires_at index; SKIP LOCKED leaves rows
    // a writer holds to that writer. The outer condition is checked again
    // on the row as it is when locked, so a row a writer just revived is
    // kept.
    let r = sqlx::query(
        "DELETE FROM keyward_records WHERE key IN (
             SELECT key FROM keyward_records WHERE expires_at <= now()
             ORDER BY expires_at LIMIT $1 FOR UPDATE SKIP LOCKED)
         AND expires_at <= now()",
    )
    .bind(limit)
    .execute(pool)
    .await
    .map_err(unavailable)?;
    Ok(r.rows_affected())
}

impl PgStore {
    /// Connects with the default [`PgOptions`] and runs
    /// [`migrate`](Self::migrate). `url` is a libpq-style URL,
    /// `postgres://user:password@host:port/database?sslmode=…`.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the URL is malformed, the server
    /// cannot be reached, or the migration fails.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::connect_with(url, PgOptions::default()).await
    }

    /// Connects with `options`: a pool of at most `max_connections`, every
    /// session with a `statement_timeout`, and runs
    /// [`migrate`](Self::migrate) unless turned off.
    ///
    /// # Errors
    /// As [`connect`](Self::connect); also when `max_connections` is 0 or a
    /// timeout is zero.
    pub async fn connect_with(url: &str, options: PgOptions) -> Result<Self, StoreError> {
        if options.max_connections == 0
            || options.acquire_timeout.is_zero()
            || options.statement_timeout.is_zero()
        {
            return Err(StoreError::Unavailable(
                "postgres: max_connections and timeouts must be at least 1".into(),
            ));
        }
        let statement_ms = options.statement_timeout.as_millis();
        let connect = PgConnectOptions::from_str(url)
            .map_err(|_| StoreError::Unavailable("postgres: malformed URL".into()))?
            .application_name("keyward")
            // A set-up parameter, so it holds for every pooled connection
            // without a round trip of its own.
            .options([("statement_timeout", format!("{statement_ms}ms"))]);
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections)
            .acquire_timeout(options.acquire_timeout)
            // A ping before every use would double the round trips; a
            // broken connection fails its one operation (closed) and is
            // replaced.
            .test_before_acquire(false)
            .connect_with(connect)
            .await
            .map_err(unavailable)?;
        let store = Self {
            pool,
            purge: BackgroundPurge::new(PURGE_EVERY),
        };
        if options.migrate {
            store.migrate().await?;
        }
        Ok(store)
    }

    /// Creates the table and its index if they are missing. Idempotent,
    /// and safe when several replicas start at once: a transaction-scoped
    /// advisory lock lets one migrate while the others wait.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] on a database error (for example a role
    /// without `CREATE` on the schema).
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(unavailable)?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(MIGRATION_LOCK)
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?;
        for statement in SCHEMA {
            sqlx::query(statement)
                .execute(&mut *tx)
                .await
                .map_err(unavailable)?;
        }
        tx.commit().await.map_err(unavailable)
    }

    /// Deletes up to `limit` expired rows now, oldest first; returns how
    /// many. Swaps already do this in the background, one batch every 256
    /// writes; call it from a maintenance job to catch up faster.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] on a database error.
    pub async fn purge_expired(&self, limit: u32) -> Result<u64, StoreError> {
        purge(&self.pool, i64::from(limit)).await
    }

    /// Closes the pool: waits for checked-out connections, closes the rest.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    async fn swap_inner(
        &self,
        key: &str,
        expected: Option<u64>,
        value: &[u8],
        ttl: Duration,
    ) -> Result<Swap, StoreError> {
        check_args(key, value, ttl)?;
        let ttl_ms = i64::try_from(ttl.as_millis()).map_err(|_| StoreError::BadTtl)?;
        let (version, affected) = match expected {
            None => {
                let version = initial_version()?;
                // Insert, or take over a row that has expired; a live row
                // wins and nothing is written.
                let r = sqlx::query(
                    "INSERT INTO keyward_records AS r (key, version, value, expires_at)
                     VALUES ($1, $2, $3, now() + $4 * interval '1 millisecond')
                     ON CONFLICT (key) DO UPDATE
                     SET version = excluded.version, value = excluded.value,
                         expires_at = excluded.expires_at
                     WHERE r.expires_at <= now()",
                )
                .bind(key)
                .bind(to_i64(version)?)
                .bind(value)
                .bind(ttl_ms)
                .execute(&self.pool)
                .await
                .map_err(unavailable)?;
                (version, r.rows_affected())
            }
            Some(want) => {
                let version = next_version(want)?;
                let r = sqlx::query(
                    "UPDATE keyward_records
                     SET version = $1, value = $2, expires_at = now() + $3 * interval '1 millisecond'
                     WHERE key = $4 AND version = $5 AND expires_at > now()",
                )
                .bind(to_i64(version)?)
                .bind(value)
                .bind(ttl_ms)
                .bind(key)
                .bind(to_i64(want)?)
                .execute(&self.pool)
                .await
                .map_err(unavailable)?;
                (version, r.rows_affected())
            }
        };
        // The swap has committed: its answer is decided, and the purge (on
        // a task of its own; a failure is logged there) cannot change it.
        self.purge.after_write(|| {
            let pool = self.pool.clone();
            async move { purge(&pool, PURGE_BATCH).await }
        });
        Ok(if affected == 1 {
            Swap::Swapped { version }
        } else {
            Swap::Conflict
        })
    }
}

impl Store for PgStore {
    fn load<'a>(&'a self, key: &'a str) -> StoreFuture<'a, Option<Record>> {
        Box::pin(async move {
            check_key(key)?;
            let row = sqlx::query(
                "SELECT version, value FROM keyward_records WHERE key = $1 AND expires_at > now()",
            )
            .bind(key)
            .fetch_optional(&self.pool)
            .await
            .map_err(unavailable)?;
            row.map(|r| {
                sql_record(
                    r.try_get("version").map_err(unavailable)?,
                    r.try_get("value").map_err(unavailable)?,
                )
            })
            .transpose()
        })
    }

    /// One statement, `WHERE key = ANY($1)`: one round trip.
    fn load_many<'a>(&'a self, keys: &'a [&'a str]) -> StoreFuture<'a, super::Snapshot> {
        Box::pin(async move {
            Ok(super::Snapshot {
                records: self.load_many_old(keys).await?,
                now_ms: None,
            })
        })
    }

    fn commit<'a>(&'a self, _ops: &'a [super::Op<'a>]) -> StoreFuture<'a, super::Commit> {
        Box::pin(async move { Err(StoreError::Unavailable("TODO commit".into())) })
    }
}

impl PgStore {
    async fn load_many_old(&self, keys: &[&str]) -> Result<Vec<Option<Record>>, StoreError> {
        {
            for key in keys {
                check_key(key)?;
            }
            if keys.is_empty() {
                return Ok(Vec::new());
            }
            let rows = sqlx::query(
                "SELECT key, version, value FROM keyward_records
                 WHERE key = ANY($1) AND expires_at > now()",
            )
            .bind(keys)
            .fetch_all(&self.pool)
            .await
            .map_err(unavailable)?;
            let mut found = Vec::with_capacity(rows.len());
            for row in rows {
                let key: String = row.try_get("key").map_err(unavailable)?;
                let record = sql_record(
                    row.try_get("version").map_err(unavailable)?,
                    row.try_get("value").map_err(unavailable)?,
                )?;
                found.push((key, record));
            }
            Ok(in_key_order(keys, found))
        }
    }
}

impl PgStore {
    fn swap<'a>(
        &'a self,
        key: &'a str,
        expected: Option<u64>,
        value: &'a [u8],
        ttl: Duration,
    ) -> StoreFuture<'a, Swap> {
        Box::pin(self.swap_inner(key, expected, value, ttl))
    }
}
