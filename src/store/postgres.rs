//! The shared SQL store: one PostgreSQL table, for any number of replicas.
//!
//! Every commit, and so every swap (a commit of one write), is one call of
//! one PL/pgSQL function, `keyward_commit`, which [`PgStore::migrate`]
//! creates with the table: one statement, one round trip. Its arguments
//! are arrays, one element per operation: the keys, the expected versions
//! (NULL: no live record), the actions, the values, the TTLs and the new
//! versions, which the client draws (a fresh random version for a record
//! created, the next one for a record written over).
//!
//! The function first takes a transaction-scoped advisory lock for every
//! key of the commit, in ascending order of lock id, so that two commits
//! never wait on each other in a cycle. Every write to the table but the
//! purge of expired rows goes through the function, so whoever changes a
//! record, present or absent, holds its key's lock until the change is
//! committed. Then it checks
//! every record against its expected version, and writes only when all of
//! them hold; otherwise it writes nothing and returns the position of the
//! first that did not. Each statement of the function reads a fresh
//! snapshot (every pooled connection runs at READ COMMITTED: the store's
//! own pool sets it whatever the server's default, and a pool of the
//! application's is refused unless its connections do), and the checks
//! run once the locks are held, so they see every commit that held one of
//! those locks before. A guard on an
//! absent record therefore cannot be overtaken: a create of that record
//! either commits before the guard's check, which then sees it, or waits
//! until the guarding commit is over (no write skew). Each write checks
//! its record's version once more: the background purge takes no key
//! lock, and may delete a row that expired just after the checks; a write
//! that then misses its row aborts the whole commit, which is reported as
//! a conflict at that operation.
//!
//! Time is the database's, so replicas with skewed clocks still agree on
//! which records are live. A load compares `expires_at` with the server's
//! `now()`, and `load_many` reports that `now()` in the same statement. A
//! commit reads the server's clock once it holds its locks, and that one
//! instant decides which records are live (an expired row counts as
//! absent, and a write where one lies replaces it) and when the records it
//! writes expire. A delete expires its row at once and empties its value;
//! the background purge removes it with the other expired rows.

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{Connection as _, Row};

use super::{
    Action, BackgroundPurge, Commit, Op, Record, Snapshot, Store, StoreError, StoreFuture,
    check_key, check_ops, in_key_order, initial_version, next_version, sql_record,
};

/// Every this many writes, one batch of expired rows is deleted in the
/// background, through the `expires_at` index.
const PURGE_EVERY: u32 = 256;
/// Rows deleted per purge batch: bounded, so a purge never holds many locks.
const PURGE_BATCH: i64 = 1_000;
/// Key of the advisory lock that serialises concurrent migrations (an
/// arbitrary constant: "keyward" in ASCII).
const MIGRATION_LOCK: i64 = 0x006b_6579_7761_7264;
/// The SQLSTATE `keyward_commit` raises when a write finds its record
/// changed after the checks; the message is the operation's position.
const WRITE_MISSED: &str = "KW409";

const SCHEMA: [&str; 2] = [
    "CREATE TABLE IF NOT EXISTS keyward_records (
        key TEXT COLLATE \"C\" PRIMARY KEY,
        version BIGINT NOT NULL,
        value BYTEA NOT NULL,
        expires_at TIMESTAMPTZ NOT NULL
    )",
    "CREATE INDEX IF NOT EXISTS keyward_records_expires ON keyward_records (expires_at)",
];

/// The signature of `keyward_commit`, the commit: its argument types.
const COMMIT_SIGNATURE: &str =
    "keyward_commit(text[], bigint[], text[], bytea[], bigint[], bigint[])";
/// The same, with the arguments' names, which [`COMMIT_BODY`] uses.
const COMMIT_DECLARATION: &str = "keyward_commit(p_keys text[], p_expected bigint[], \
     p_actions text[], p_values bytea[], p_ttl_ms bigint[], p_versions bigint[])";

/// The commit. Locks live in the two-integer advisory lock space, under
/// a class of keyward's own ("kwrd" in ASCII), apart from the migration
/// lock and from the single-integer locks of other applications; two
/// keys whose hashes collide only share a lock. Returns the 0-based
/// position of the first operation whose record is not at its expected
/// version, or NULL when every write has been made.
const COMMIT_BODY: &str = "
    DECLARE
        v_n integer := cardinality(p_keys);
        v_lock integer;
        v_now timestamptz;
        v_conflict integer;
        v_rows bigint;
    BEGIN
        IF v_n = 0 OR cardinality(p_expected) <> v_n OR cardinality(p_actions) <> v_n
           OR cardinality(p_values) <> v_n OR cardinality(p_ttl_ms) <> v_n
           OR cardinality(p_versions) <> v_n THEN
            RAISE EXCEPTION 'keyward_commit: arrays of different lengths';
        END IF;
        FOR v_lock IN SELECT DISTINCT hashtext(k) FROM unnest(p_keys) AS k ORDER BY 1 LOOP
            PERFORM pg_advisory_xact_lock(1802990180, v_lock);
        END LOOP;
        v_now := clock_timestamp();
        SELECT o.i - 1 INTO v_conflict
        FROM unnest(p_keys, p_expected) WITH ORDINALITY AS o (key, expected, i)
        LEFT JOIN keyward_records AS r ON r.key = o.key AND r.expires_at > v_now
        WHERE r.version IS DISTINCT FROM o.expected
        ORDER BY o.i
        LIMIT 1;
        IF v_conflict IS NOT NULL THEN
            RETURN v_conflict;
        END IF;
        FOR i IN 1 .. v_n LOOP
            CASE p_actions[i]
            WHEN 'write' THEN
                IF p_expected[i] IS NULL THEN
                    INSERT INTO keyward_records AS r (key, version, value, expires_at)
                    VALUES (p_keys[i], p_versions[i], p_values[i],
                            v_now + p_ttl_ms[i] * interval '1 millisecond')
                    ON CONFLICT (key) DO UPDATE
                    SET version = excluded.version, value = excluded.value,
                        expires_at = excluded.expires_at
                    WHERE r.expires_at <= v_now;
                ELSE
                    UPDATE keyward_records
                    SET version = p_versions[i], value = p_values[i],
                        expires_at = v_now + p_ttl_ms[i] * interval '1 millisecond'
                    WHERE key = p_keys[i] AND version = p_expected[i] AND expires_at > v_now;
                END IF;
            WHEN 'delete' THEN
                UPDATE keyward_records SET value = ''::bytea, expires_at = '-infinity'
                WHERE key = p_keys[i] AND version = p_expected[i] AND expires_at > v_now;
            WHEN 'check' THEN
                CONTINUE;
            ELSE
                RAISE EXCEPTION 'keyward_commit: unknown action';
            END CASE;
            GET DIAGNOSTICS v_rows = ROW_COUNT;
            IF v_rows <> 1 THEN
                RAISE EXCEPTION USING ERRCODE = 'KW409', MESSAGE = (i - 1)::text;
            END IF;
        END LOOP;
        RETURN NULL;
    END
    ";

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
    /// and the service's database role may not create tables; the tool
    /// must then create what `migrate` does: the table, its index and the
    /// `keyward_commit` function. [`PgStore::from_pool_with`] reads this
    /// field alone.
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
    /// How long a ping of an idle connection may take after a lost
    /// connection (the pool's acquire timeout).
    ping_timeout: Duration,
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

/// Whether `e` says the connection itself is gone (closed or reset, or the
/// server shutting down: SQLSTATE classes 08 and 57P), rather than that
/// the statement failed.
fn connection_lost(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_) => true,
        sqlx::Error::Database(d) => d
            .code()
            .is_some_and(|c| c.starts_with("08") || c.starts_with("57P")),
        _ => false,
    }
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
    /// The first connection is made once, directly: a server that refuses
    /// it (not running, wrong port), a wrong password or an unknown
    /// database fails at once with that cause in the message, rather than
    /// after the acquire timeout as "pool timed out". A server that does
    /// not answer at all fails after the acquire timeout. Start the service
    /// after the database is up, or retry `connect`.
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
            // Set-up parameters, so they hold for every pooled connection
            // without a round trip of their own. A commit's checks must
            // read a snapshot taken after its locks (see the module docs),
            // which READ COMMITTED gives whatever the server's default.
            .options([
                ("statement_timeout", format!("{statement_ms}ms")),
                ("default_transaction_isolation", "read committed".to_owned()),
            ]);
        // One connection first, outside the pool: the pool retries a
        // refused connection until its acquire timeout and then reports
        // only that it timed out, where a direct attempt fails at once
        // with the cause.
        match tokio::time::timeout(
            options.acquire_timeout,
            sqlx::postgres::PgConnection::connect_with(&connect),
        )
        .await
        {
            Ok(Ok(conn)) => {
                // The pool opens its own; a failed goodbye is no matter.
                let _ = conn.close().await;
            }
            Ok(Err(e)) => return Err(unavailable(e)),
            Err(_) => {
                return Err(StoreError::Unavailable(format!(
                    "postgres: no connection within {} ms",
                    options.acquire_timeout.as_millis()
                )));
            }
        }
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
            ping_timeout: options.acquire_timeout,
        };
        if options.migrate {
            store.migrate().await?;
        }
        Ok(store)
    }

    /// A store on the application's own pool, so keyward's records live
    /// beside its tables without a second set of connections. Runs
    /// [`migrate`](Self::migrate), as [`connect`](Self::connect) does; see
    /// [`from_pool_with`](Self::from_pool_with) to leave the schema to a
    /// migration tool. The pool is the application's `sqlx` 0.9 `PgPool`.
    ///
    /// Every commit is one statement whose checks must read a snapshot
    /// taken after its locks (see the module docs), which only READ
    /// COMMITTED gives: under REPEATABLE READ or SERIALIZABLE, two commits
    /// guarding each other's absent records could both succeed. keyward's
    /// statements run in the connection's implicit transactions, so the
    /// connections' default isolation is what counts, and a pool whose
    /// connections default to another level is refused. It is checked on
    /// one connection, when the store is made: the pool's connections share
    /// its connect options, but a `SET default_transaction_isolation` that
    /// the application runs on a pooled connection later would go unseen.
    ///
    /// [`connect_with`](Self::connect_with) also sets a server-side
    /// `statement_timeout` on its connections; with the application's pool,
    /// that and the pool's size and timeouts are the pool's own settings.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
    /// use std::str::FromStr;
    /// use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
    /// use keyward::PgStore;
    ///
    /// let options = PgConnectOptions::from_str("postgres://app@db.internal:5432/app")?
    ///     .options([
    ///         ("default_transaction_isolation", "read committed"),
    ///         ("statement_timeout", "5s"),
    ///     ]);
    /// let pool = PgPoolOptions::new().max_connections(20).connect_with(options).await?;
    /// let store = PgStore::from_pool(pool.clone()).await?;
    /// # let _ = store; Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`StoreError::Misconfigured`] when the pool's connections default
    /// to an isolation level other than READ COMMITTED (the message names
    /// the fix); [`StoreError::Unavailable`] when no connection can be
    /// acquired or the migration fails.
    pub async fn from_pool(pool: PgPool) -> Result<Self, StoreError> {
        Self::from_pool_with(pool, PgOptions::default()).await
    }

    /// As [`from_pool`](Self::from_pool), but runs
    /// [`migrate`](Self::migrate) only when `options.migrate` is set (as
    /// [`connect_with`](Self::connect_with) does). The other fields of
    /// [`PgOptions`] are not read: the pool's size and timeouts are set
    /// where the pool is built.
    ///
    /// ```no_run
    /// # async fn demo(pool: sqlx::PgPool) -> Result<(), keyward::Error> {
    /// use keyward::store::PgOptions;
    /// use keyward::PgStore;
    ///
    /// // The schema is a migration tool's: the table, its index and
    /// // `keyward_commit`, as `PgStore::migrate` creates them.
    /// let store = PgStore::from_pool_with(pool, PgOptions::default().migrate(false)).await?;
    /// # let _ = store; Ok(()) }
    /// ```
    ///
    /// # Errors
    /// As [`from_pool`](Self::from_pool).
    pub async fn from_pool_with(pool: PgPool, options: PgOptions) -> Result<Self, StoreError> {
        let level: String = {
            let mut conn = pool.acquire().await.map_err(unavailable)?;
            sqlx::query_scalar("SHOW transaction_isolation")
                .fetch_one(&mut *conn)
                .await
                .map_err(unavailable)?
        };
        if level != "read committed" {
            return Err(StoreError::Misconfigured(format!(
                "postgres: the pool's connections run at {level} isolation, and keyward's \
                 commits need read committed: set default_transaction_isolation to \
                 'read committed' in the pool's connect options \
                 (PgConnectOptions::options) or for the database role"
            )));
        }
        let ping_timeout = pool.options().get_acquire_timeout();
        let store = Self {
            pool,
            purge: BackgroundPurge::new(PURGE_EVERY),
            ping_timeout,
        };
        if options.migrate {
            store.migrate().await?;
        }
        Ok(store)
    }

    /// Creates the table and its index if they are missing, and the
    /// `keyward_commit` function that every commit calls if it is missing
    /// or differs from this version's. Idempotent, and safe when several
    /// replicas start at once: a transaction-scoped advisory lock lets one
    /// migrate while the others wait.
    ///
    /// The catalog is read first, and only what is missing is created: on
    /// a database that already has the current schema, `migrate` runs no
    /// DDL, so it needs no `CREATE` privilege and the server sends no
    /// "already exists, skipping" notice (which sqlx would log on every
    /// start). The DDL keeps its `IF NOT EXISTS`, for a migration tool that
    /// creates the same objects at the same time without keyward's lock.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] on a database error (for example a role
    /// without `CREATE` on the schema, when something is missing).
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(unavailable)?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(MIGRATION_LOCK)
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?;
        // Read under the lock: a replica that migrated first has committed,
        // and READ COMMITTED shows its objects to this statement. Every name
        // is qualified with the schema the DDL creates in, so a table of
        // the same name elsewhere on the search path does not count.
        // Replaced only when it differs from this version's: replacing
        // takes the function's owner, and a replica may run as another
        // role than the one that created it.
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT to_regclass(s || '.keyward_records') IS NOT NULL AS has_table,
                    to_regclass(s || '.keyward_records_expires') IS NOT NULL AS has_index,
                    EXISTS (SELECT FROM pg_proc WHERE prosrc = $1
                        AND oid = to_regprocedure(s || '.{COMMIT_SIGNATURE}')) AS current
             FROM (SELECT quote_ident(current_schema()) AS s) AS schema"
        )))
        .bind(COMMIT_BODY)
        .fetch_one(&mut *tx)
        .await
        .map_err(unavailable)?;
        let present = [
            row.try_get::<bool, _>("has_table").map_err(unavailable)?,
            row.try_get::<bool, _>("has_index").map_err(unavailable)?,
        ];
        let current: bool = row.try_get("current").map_err(unavailable)?;
        for (statement, present) in SCHEMA.iter().zip(present) {
            if !present {
                sqlx::query(*statement)
                    .execute(&mut *tx)
                    .await
                    .map_err(unavailable)?;
            }
        }
        if !current {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "CREATE OR REPLACE FUNCTION {COMMIT_DECLARATION} RETURNS integer
                 LANGUAGE plpgsql VOLATILE AS $fn${COMMIT_BODY}$fn$"
            )))
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

    /// Closes every idle pooled connection that does not answer a ping.
    /// Called after an operation found its connection gone: when the
    /// server restarted, every connection that was idle through the
    /// restart would otherwise fail its next operation, one request each.
    async fn close_dead_idle(&self, timeout: Duration) {
        let mut idle = Vec::new();
        while let Some(conn) = self.pool.try_acquire() {
            idle.push(conn);
        }
        let mut closed = 0usize;
        for conn in &mut idle {
            if !matches!(tokio::time::timeout(timeout, conn.ping()).await, Ok(Ok(()))) {
                conn.close_on_drop();
                closed = closed.saturating_add(1);
            }
        }
        drop(idle);
        tracing::debug!(
            closed,
            "keyward: postgres connection lost; idle connections checked"
        );
    }

    /// Runs a read; when its connection was gone, closes the other dead
    /// idle connections and runs it once more. A read writes nothing, so
    /// repeating it is safe whatever happened to the first attempt. A
    /// commit is not repeated (it may have been made before its connection
    /// went), but its failure clears the dead connections too.
    async fn read_with_retry<T, F, Fut>(&self, read: F) -> Result<T, StoreError>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<T, sqlx::Error>>,
    {
        match read().await {
            Err(e) if connection_lost(&e) => {
                self.close_dead_idle(self.ping_timeout).await;
                read().await.map_err(unavailable)
            }
            other => other.map_err(unavailable),
        }
    }

    /// The commit: one call of `keyward_commit` (see the module docs).
    async fn commit_inner(&self, ops: &[Op<'_>]) -> Result<Commit, StoreError> {
        check_ops(ops)?;
        let n = ops.len();
        let (mut keys, mut expected, mut actions) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        let (mut values, mut ttls, mut new_versions) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        let mut versions = Vec::with_capacity(n);
        let mut writes = false;
        for op in ops {
            keys.push(op.key);
            // A version no row can hold (every stored one is positive and
            // below 2^63) is passed as -1, which matches no row: a conflict.
            expected.push(op.expected.map(|v| i64::try_from(v).unwrap_or(-1)));
            let (action, value, ttl, version) = match op.action {
                Action::Write { value, ttl } => {
                    let version = match op.expected {
                        None => initial_version()?,
                        Some(v) => next_version(v)?,
                    };
                    let ttl = i64::try_from(ttl.as_millis()).map_err(|_| StoreError::BadTtl)?;
                    ("write", Some(value), Some(ttl), Some(version))
                }
                Action::Delete => ("delete", None, None, None),
                Action::Check => ("check", None, None, op.expected),
            };
            writes |= !matches!(op.action, Action::Check);
            actions.push(action);
            values.push(value);
            ttls.push(ttl);
            new_versions.push(match op.action {
                Action::Write { .. } => version.map(to_i64).transpose()?,
                Action::Delete | Action::Check => None,
            });
            versions.push(version);
        }
        let reply =
            sqlx::query_scalar::<_, Option<i32>>("SELECT keyward_commit($1, $2, $3, $4, $5, $6)")
                .bind(&keys)
                .bind(&expected)
                .bind(&actions)
                .bind(&values)
                .bind(&ttls)
                .bind(&new_versions)
                .fetch_one(&self.pool)
                .await;
        let conflict = match reply {
            Ok(conflict) => conflict,
            Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some(WRITE_MISSED) => {
                let index = e
                    .message()
                    .parse::<i32>()
                    .map_err(|_| StoreError::Corrupt("unexpected reply from keyward_commit"))?;
                Some(index)
            }
            Err(e) => {
                if connection_lost(&e) {
                    self.close_dead_idle(self.ping_timeout).await;
                }
                return Err(unavailable(e));
            }
        };
        if let Some(index) = conflict {
            return usize::try_from(index)
                .ok()
                .filter(|i| *i < n)
                .map(|index| Commit::Conflict { index })
                .ok_or(StoreError::Corrupt("unexpected reply from keyward_commit"));
        }
        if writes {
            // The commit is made: its answer is decided, and the purge (on
            // a task of its own; a failure is logged there) cannot change it.
            self.purge.after_write(|| {
                let pool = self.pool.clone();
                async move { purge(&pool, PURGE_BATCH).await }
            });
        }
        Ok(Commit::Committed { versions })
    }

    /// One statement: the records found, each with the server's `now()`,
    /// and that clock alone (a row of NULLs) when none is.
    async fn load_many_inner(&self, keys: &[&str]) -> Result<Snapshot, StoreError> {
        for key in keys {
            check_key(key)?;
        }
        let rows = self
            .read_with_retry(|| {
                sqlx::query(
                    "SELECT floor(extract(epoch FROM now()) * 1000)::bigint AS now_ms,
                            r.key, r.version, r.value
                     FROM (SELECT) AS clock
                     LEFT JOIN keyward_records AS r ON r.key = ANY($1) AND r.expires_at > now()",
                )
                .bind(keys)
                .fetch_all(&self.pool)
            })
            .await?;
        let mut now_ms = None;
        let mut found = Vec::with_capacity(rows.len());
        for row in rows {
            let now: i64 = row.try_get("now_ms").map_err(unavailable)?;
            now_ms =
                Some(u64::try_from(now).map_err(|_| StoreError::Corrupt("clock before 1970"))?);
            let key: Option<String> = row.try_get("key").map_err(unavailable)?;
            if let Some(key) = key {
                let record = sql_record(
                    row.try_get("version").map_err(unavailable)?,
                    row.try_get("value").map_err(unavailable)?,
                )?;
                found.push((key, record));
            }
        }
        let now_ms = now_ms.ok_or(StoreError::Corrupt("the server's clock was not read"))?;
        Ok(Snapshot {
            records: in_key_order(keys, found),
            now_ms: Some(now_ms),
        })
    }
}

impl Store for PgStore {
    fn load<'a>(&'a self, key: &'a str) -> StoreFuture<'a, Option<Record>> {
        Box::pin(async move {
            check_key(key)?;
            let row = self
                .read_with_retry(|| {
                    sqlx::query(
                        "SELECT version, value FROM keyward_records \
                         WHERE key = $1 AND expires_at > now()",
                    )
                    .bind(key)
                    .fetch_optional(&self.pool)
                })
                .await?;
            row.map(|r| {
                sql_record(
                    r.try_get("version").map_err(unavailable)?,
                    r.try_get("value").map_err(unavailable)?,
                )
            })
            .transpose()
        })
    }

    /// One statement, `WHERE key = ANY($1)`, which also reads the server's
    /// `now()`: one round trip.
    fn load_many<'a>(&'a self, keys: &'a [&'a str]) -> StoreFuture<'a, Snapshot> {
        Box::pin(self.load_many_inner(keys))
    }

    /// One call of `keyward_commit`: one round trip. `swap`, a commit of
    /// one write, is the trait's, so it takes the same locks.
    fn commit<'a>(&'a self, ops: &'a [Op<'a>]) -> StoreFuture<'a, Commit> {
        Box::pin(self.commit_inner(ops))
    }
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::panic,
    clippy::arithmetic_side_effects,
    reason = "tests: a failed check panics"
)]
mod tests {
    use std::sync::Arc;

    use super::*;

    const TTL: Duration = Duration::from_secs(60);

    /// The test server (`$KEYWARD_POSTGRES_URL`, or the local default) with
    /// `extra` appended to its URL's query; `None`, after a SKIPPED line,
    /// when nothing listens there, unless `KEYWARD_REQUIRE_SERVICES=1`.
    async fn store(extra: &str) -> Option<PgStore> {
        let base = std::env::var("KEYWARD_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
        let parsed = PgConnectOptions::from_str(&base).unwrap();
        let addr = (parsed.get_host().to_owned(), parsed.get_port());
        if std::net::TcpStream::connect(addr).is_err() {
            let required = std::env::var("KEYWARD_REQUIRE_SERVICES").is_ok_and(|v| v == "1");
            assert!(!required, "postgres unreachable");
            println!("SKIPPED: postgres unreachable");
            return None;
        }
        let sep = if base.contains('?') { '&' } else { '?' };
        let url = format!("{base}{sep}{extra}");
        let options = PgOptions::default().max_connections(4);
        Some(PgStore::connect_with(&url, options).await.unwrap())
    }

    fn ns() -> String {
        format!("pg-test.{}", initial_version().unwrap())
    }

    /// A server or role whose default isolation is stronger than READ
    /// COMMITTED still gives the store's connections READ COMMITTED, which
    /// the commit's fresh snapshots need.
    #[tokio::test]
    async fn connections_run_at_read_committed() {
        let Some(store) = store("options[default_transaction_isolation]=serializable").await else {
            return;
        };
        for _ in 0..4 {
            let level: String = sqlx::query_scalar("SHOW transaction_isolation")
                .fetch_one(&store.pool)
                .await
                .unwrap();
            assert_eq!(level, "read committed");
        }
        store.close().await;
    }

    /// Two commits, each guarding the absence of the record the other
    /// creates, race many times: never do both commit (write skew), and
    /// whatever commits is what is stored. The connections are asked for
    /// REPEATABLE READ, which the store overrides.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn guards_on_absent_records_admit_no_write_skew() {
        let Some(store) = store("options[default_transaction_isolation]=repeatable%20read").await
        else {
            return;
        };
        let store = Arc::new(store);
        let ns = ns();
        for round in 0..200 {
            let (a, b) = (format!("{ns}.{round}.a"), format!("{ns}.{round}.b"));
            let spawn = |mine: String, theirs: String| {
                let store = Arc::clone(&store);
                tokio::spawn(async move {
                    let ops = [Op::check(&theirs, None), Op::write(&mine, None, b"x", TTL)];
                    match store.commit(&ops).await.unwrap() {
                        Commit::Committed { .. } => true,
                        Commit::Conflict { index } => {
                            assert_eq!(index, 0, "only the guard can conflict");
                            false
                        }
                    }
                })
            };
            let (one, two) = (spawn(a.clone(), b.clone()), spawn(b.clone(), a.clone()));
            let (one, two) = (one.await.unwrap(), two.await.unwrap());
            assert!(
                !(one && two),
                "round {round}: both guards held (write skew)"
            );
            let snap = store.load_many(&[&a, &b]).await.unwrap();
            assert_eq!(
                [snap.records[0].is_some(), snap.records[1].is_some()],
                [one, two],
                "round {round}"
            );
        }
        store.close().await;
    }

    /// An expected version that no row can hold is a conflict at its
    /// position, not an error; `load_many` reports the server's clock,
    /// also for no keys.
    #[tokio::test]
    async fn out_of_range_versions_conflict_and_the_clock_is_read() {
        let Some(store) = store("application_name=keyward-test").await else {
            return;
        };
        let ns = ns();
        let (a, b) = (format!("{ns}.a"), format!("{ns}.b"));
        let ops = [
            Op::write(&a, None, b"a", TTL),
            Op::check(&b, Some(u64::MAX)),
        ];
        assert_eq!(
            store.commit(&ops).await.unwrap(),
            Commit::Conflict { index: 1 }
        );
        assert!(store.load(&a).await.unwrap().is_none(), "nothing written");
        let empty = store.load_many(&[]).await.unwrap();
        assert!(empty.records.is_empty());
        let before = empty.now_ms.expect("the server's clock");
        let one = store.load_many(&[&a]).await.unwrap();
        assert!(one.now_ms.expect("the server's clock") >= before);
        store.close().await;
    }

    /// A write that misses its row after the checks passed (here a trigger
    /// on a schema of the test's own swallows every `UPDATE`) aborts the
    /// whole commit, and is reported as a conflict at its position.
    #[tokio::test]
    async fn a_write_that_misses_its_row_undoes_the_commit() {
        let schema = format!("kw_miss_{}", initial_version().unwrap());
        let Some(admin) = store("application_name=keyward-test").await else {
            return;
        };
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "CREATE SCHEMA {schema};
             CREATE FUNCTION {schema}.swallow() RETURNS trigger LANGUAGE plpgsql AS
                 $$ BEGIN RETURN NULL; END $$;"
        )))
        .execute(&admin.pool)
        .await
        .unwrap();
        let store = store(&format!("options[search_path]={schema}"))
            .await
            .unwrap();
        let (a, b) = ("miss.a", "miss.b");
        let Commit::Committed { versions } = store
            .commit(&[Op::write(b, None, b"b", TTL)])
            .await
            .unwrap()
        else {
            panic!("a fresh schema");
        };
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "CREATE TRIGGER swallow BEFORE UPDATE ON {schema}.keyward_records
                 FOR EACH ROW EXECUTE FUNCTION {schema}.swallow();"
        )))
        .execute(&admin.pool)
        .await
        .unwrap();
        let ops = [
            Op::write(a, None, b"a", TTL),
            Op::write(b, versions[0], b"b2", TTL),
        ];
        assert_eq!(
            store.commit(&ops).await.unwrap(),
            Commit::Conflict { index: 1 }
        );
        assert!(store.load(a).await.unwrap().is_none(), "the create undone");
        store.close().await;
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
            .execute(&admin.pool)
            .await
            .unwrap();
        admin.close().await;
    }

    /// The SQLSTATE the function raises is the one the client maps back to
    /// a conflict.
    #[test]
    fn the_function_raises_the_code_the_client_reads() {
        assert!(COMMIT_BODY.contains(&format!("ERRCODE = '{WRITE_MISSED}'")));
    }

    /// A second migration finds the function current and leaves it as it
    /// is, so a role that does not own it can migrate too.
    #[tokio::test]
    async fn a_current_function_is_not_replaced() {
        let Some(store) = store("application_name=keyward-test").await else {
            return;
        };
        let xmin = || async {
            let xmin: String = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                "SELECT xmin::text FROM pg_proc
                 WHERE oid = to_regprocedure(quote_ident(current_schema()) || '.{COMMIT_SIGNATURE}')"
            )))
            .fetch_one(&store.pool)
            .await
            .unwrap();
            xmin
        };
        let before = xmin().await;
        store.migrate().await.unwrap();
        assert_eq!(xmin().await, before);
        store.close().await;
    }
}
