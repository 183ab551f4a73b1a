//! The embedded store: one SQLite table in WAL mode, safe for several
//! processes on one file. Every compare-and-swap, and every commit of one
//! write guarded by checks (a refresh's), is a single statement; other
//! commits are one `BEGIN IMMEDIATE` transaction. Either way SQLite's
//! write lock makes them atomic across processes.
//!
//! Every commit is synced to disk before the swap answers
//! (`synchronous=FULL`): an acknowledged revocation, lockout or spent code
//! survives a power loss or an OS crash, not just a crash of the process.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sqlx::Row;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use tokio::sync::Mutex;

use super::{
    Action, BackgroundPurge, Commit, Op, Record, Snapshot, Store, StoreError, StoreFuture, Swap,
    check_args, check_key, check_ops, in_key_order, initial_version, next_version, sql_record,
};

/// How long a statement waits for another process's write lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);
/// Every this many writes, expired rows are deleted in the background
/// (through the `expires_at` index), so the file stays bounded by the live
/// records.
const PURGE_EVERY: u32 = 256;

const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS keyward_records (
    key TEXT PRIMARY KEY NOT NULL,
    version INTEGER NOT NULL,
    value BLOB NOT NULL,
    expires_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS keyward_records_expires ON keyward_records (expires_at);";

/// A [`Store`] on a SQLite file (feature `sqlite`).
pub struct SqliteStore {
    pool: SqlitePool,
    /// Held by each write of this process while it runs.
    ///
    /// SQLite has one writer per file. A connection that finds the write
    /// lock taken waits in SQLite's busy handler, which sleeps 1, 2, 5,
    /// 10 ms and more between tries; so two of this process's writes that
    /// meet would cost the second at least a millisecond, even when the
    /// first is done in a tenth of that. Queued here, the second starts
    /// the moment the first ends. Writers in other processes still meet
    /// in the busy handler.
    writer: Arc<Mutex<()>>,
    purge: BackgroundPurge,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore").finish_non_exhaustive()
    }
}

fn unavailable(e: sqlx::Error) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

fn now_ms() -> Result<i64, StoreError> {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(|_| StoreError::Unavailable("system clock is before 1970".into()))?
        .as_millis();
    i64::try_from(ms).map_err(|_| StoreError::Unavailable("system clock out of range".into()))
}

/// When a record written at `now` (ms) with `ttl` expires, in ms.
fn expires_at(now: i64, ttl: Duration) -> Result<i64, StoreError> {
    let ttl_ms = i64::try_from(ttl.as_millis()).map_err(|_| StoreError::BadTtl)?;
    now.checked_add(ttl_ms).ok_or(StoreError::BadTtl)
}

fn to_i64(v: u64) -> Result<i64, StoreError> {
    i64::try_from(v).map_err(|_| StoreError::Corrupt("version out of range"))
}

async fn purge(pool: &SqlitePool, writer: &Mutex<()>) -> Result<u64, StoreError> {
    let _writing = writer.lock().await;
    let r = sqlx::query("DELETE FROM keyward_records WHERE expires_at <= ?")
        .bind(now_ms()?)
        .execute(pool)
        .await
        .map_err(unavailable)?;
    Ok(r.rows_affected())
}

impl SqliteStore {
    /// Opens (creating if needed) the database file at `path`, in WAL mode
    /// with every commit synced to disk (`synchronous=FULL`), and creates
    /// the table.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the file cannot be opened or created.
    pub async fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        Self::open_synchronous(path.as_ref(), SqliteSynchronous::Full).await
    }

    /// Not part of the API (hidden, and it may go at any time): opens as
    /// [`open`](Self::open) does but with SQLite's `synchronous=NORMAL`, the
    /// setting keyward used before. A commit is then not synced when the swap
    /// answers, only at the next WAL checkpoint, so a power loss or an OS
    /// crash can undo acknowledged writes (a revocation, a lockout, a spent
    /// code). It exists only so that `harness/benches/session_refresh.rs` can
    /// measure what `synchronous=FULL` costs, in the same run on the same
    /// disk. Do not use it.
    ///
    /// # Errors
    /// As [`open`](Self::open).
    #[doc(hidden)]
    pub async fn dangerous_open_synchronous_normal(
        path: impl AsRef<Path>,
    ) -> Result<Self, StoreError> {
        Self::open_synchronous(path.as_ref(), SqliteSynchronous::Normal).await
    }

    async fn open_synchronous(
        path: &Path,
        synchronous: SqliteSynchronous,
    ) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(synchronous)
            .busy_timeout(BUSY_TIMEOUT);
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            // A ping before every use is a round trip to the connection's
            // thread, as many as the operation's own; a connection to a
            // local file does not go stale between uses.
            .test_before_acquire(false)
            .connect_with(options)
            .await
            .map_err(unavailable)?;
        Self::on_pool(pool).await
    }

    /// A store on the application's own pool (its `sqlx` 0.9
    /// `SqlitePool`), so keyward's table lives in the application's
    /// database file; creates the table as [`open`](Self::open) does.
    ///
    /// keyward promises that an acknowledged commit (a revocation, a
    /// lockout, a spent code) survives a power loss, which takes WAL mode
    /// with every commit synced (`synchronous=FULL`). A pool whose
    /// connections do otherwise is refused: build it with
    /// `SqliteConnectOptions::journal_mode(SqliteJournalMode::Wal)
    /// .synchronous(SqliteSynchronous::Full)`. An in-memory database
    /// (`sqlite::memory:`) has no WAL and is refused too; use
    /// [`MemoryStore`](crate::MemoryStore) for that. The settings are checked on
    /// one connection, when the store is made: the pool's connections share
    /// its connect options, but a `PRAGMA synchronous` that the application
    /// runs on a pooled connection later would go unseen.
    ///
    /// keyward's writes from this store queue on a lock of its own before
    /// they take SQLite's (see [`open`](Self::open)); the application's
    /// writes on the same file meet them in SQLite's busy handler, so give
    /// the pool a `busy_timeout` (keyward's own is 10 s).
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
    /// use std::time::Duration;
    /// use sqlx::sqlite::{
    ///     SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous,
    /// };
    /// use keyward::SqliteStore;
    ///
    /// let options = SqliteConnectOptions::new()
    ///     .filename("app.db")
    ///     .create_if_missing(true)
    ///     .journal_mode(SqliteJournalMode::Wal)
    ///     .synchronous(SqliteSynchronous::Full)
    ///     .busy_timeout(Duration::from_secs(10));
    /// let pool = SqlitePoolOptions::new().connect_with(options).await?;
    /// let store = SqliteStore::from_pool(pool.clone()).await?;
    /// # let _ = store; Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`StoreError::Misconfigured`] when the connections are not in WAL
    /// mode with `synchronous=FULL` (the message names the fix);
    /// [`StoreError::Unavailable`] when no connection can be acquired or
    /// the table cannot be created.
    pub async fn from_pool(pool: SqlitePool) -> Result<Self, StoreError> {
        let (journal_mode, synchronous) = {
            let mut conn = pool.acquire().await.map_err(unavailable)?;
            let journal_mode: String = sqlx::query_scalar("PRAGMA journal_mode")
                .fetch_one(&mut *conn)
                .await
                .map_err(unavailable)?;
            let synchronous: i64 = sqlx::query_scalar("PRAGMA synchronous")
                .fetch_one(&mut *conn)
                .await
                .map_err(unavailable)?;
            (journal_mode, synchronous)
        };
        // `PRAGMA synchronous` reads 0 OFF, 1 NORMAL, 2 FULL, 3 EXTRA; EXTRA
        // syncs more than FULL, so it keeps the promise too.
        if !journal_mode.eq_ignore_ascii_case("wal") || synchronous < 2 {
            return Err(StoreError::Misconfigured(format!(
                "sqlite: the pool's connections run with journal_mode={journal_mode} and \
                 synchronous={synchronous}, and keyward needs journal_mode=wal and \
                 synchronous=FULL (2) so that an acknowledged write survives a power loss: \
                 build the pool with SqliteConnectOptions::journal_mode(SqliteJournalMode::Wal)\
                 .synchronous(SqliteSynchronous::Full)"
            )));
        }
        Self::on_pool(pool).await
    }

    /// Creates the table on `pool` and wraps it, with a writer lock of its
    /// own.
    async fn on_pool(pool: SqlitePool) -> Result<Self, StoreError> {
        sqlx::raw_sql(SCHEMA)
            .execute(&pool)
            .await
            .map_err(unavailable)?;
        Ok(Self {
            pool,
            writer: Arc::new(Mutex::new(())),
            purge: BackgroundPurge::new(PURGE_EVERY),
        })
    }

    /// Deletes expired rows now; returns how many. Swaps already do this in
    /// the background every 256 writes.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] on a database error.
    pub async fn purge_expired(&self) -> Result<u64, StoreError> {
        purge(&self.pool, &self.writer).await
    }

    async fn load_many_inner(&self, keys: &[&str]) -> Result<Vec<Option<Record>>, StoreError> {
        for key in keys {
            check_key(key)?;
        }
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let placeholders = vec!["?"; keys.len()].join(", ");
        let sql = format!(
            "SELECT key, version, value FROM keyward_records WHERE expires_at > ? AND key IN ({placeholders})"
        );
        // Only the number of `?` placeholders varies; every value is bound.
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(now_ms()?);
        for key in keys {
            query = query.bind(*key);
        }
        let rows = query.fetch_all(&self.pool).await.map_err(unavailable)?;
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

    /// A commit as one `BEGIN IMMEDIATE` transaction: it takes the write
    /// lock first, so its checks and writes see no other writer between
    /// them, and waits (up to the busy timeout) rather than fails when
    /// another process holds the lock.
    async fn commit_inner(&self, ops: &[Op<'_>]) -> Result<Commit, StoreError> {
        check_ops(ops)?;
        let _writing = self.writer.lock().await;
        // The common shape, one update guarded by checks (a refresh: the
        // family written, its subject's record checked), as one statement.
        // When it writes nothing, the transaction below finds which
        // expectation failed, or commits if the records have since come
        // back to the expected versions.
        if let Some(versions) = self.commit_one_update(ops).await? {
            self.after_write();
            return Ok(Commit::Committed { versions });
        }
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(unavailable)?;
        let now = now_ms()?;
        let mut versions = Vec::with_capacity(ops.len());
        for (index, op) in ops.iter().enumerate() {
            let live: Option<i64> = sqlx::query_scalar(
                "SELECT version FROM keyward_records WHERE key = ? AND expires_at > ?",
            )
            .bind(op.key)
            .bind(now)
            .fetch_optional(&mut *tx)
            .await
            .map_err(unavailable)?;
            let live = live
                .map(|v| u64::try_from(v).map_err(|_| StoreError::Corrupt("negative version")))
                .transpose()?;
            if live != op.expected {
                tx.rollback().await.map_err(unavailable)?;
                return Ok(Commit::Conflict { index });
            }
            versions.push(match op.action {
                Action::Write { .. } => Some(match live {
                    None => initial_version()?,
                    Some(v) => next_version(v)?,
                }),
                Action::Delete => None,
                Action::Check => live,
            });
        }
        for (op, version) in ops.iter().zip(&versions) {
            match (op.action, version) {
                (Action::Write { value, ttl }, Some(version)) => {
                    let expires = expires_at(now, ttl)?;
                    sqlx::query(
                        "INSERT INTO keyward_records (key, version, value, expires_at) VALUES (?1, ?2, ?3, ?4)
                         ON CONFLICT (key) DO UPDATE SET version = ?2, value = ?3, expires_at = ?4",
                    )
                    .bind(op.key)
                    .bind(to_i64(*version)?)
                    .bind(value)
                    .bind(expires)
                    .execute(&mut *tx)
                    .await
                    .map_err(unavailable)?;
                }
                (Action::Delete, _) => {
                    // Expired at once and emptied; the purge removes the row.
                    // So a commit never depends on a DELETE succeeding, which
                    // the purge may be failing at.
                    sqlx::query(
                        "UPDATE keyward_records SET value = x'', expires_at = 0 WHERE key = ?",
                    )
                    .bind(op.key)
                    .execute(&mut *tx)
                    .await
                    .map_err(unavailable)?;
                }
                _ => {}
            }
        }
        tx.commit().await.map_err(unavailable)?;
        self.after_write();
        Ok(Commit::Committed { versions })
    }

    /// A commit of one write to a live record at its expected version, and
    /// of checks only besides, as one `UPDATE` whose `WHERE` holds every
    /// expectation: one round trip to the connection's thread where a
    /// transaction takes a `BEGIN`, a read per record, the write and a
    /// `COMMIT`. SQLite takes the write lock before the statement reads,
    /// so its checks and its write see no other writer between them.
    ///
    /// `None` when the commit has another shape, or when an expectation
    /// failed (nothing is written then). Called with the writer lock held.
    async fn commit_one_update(
        &self,
        ops: &[Op<'_>],
    ) -> Result<Option<Vec<Option<u64>>>, StoreError> {
        let mut update = None;
        for (index, op) in ops.iter().enumerate() {
            match (op.action, op.expected) {
                (Action::Write { value, ttl }, Some(want)) if update.is_none() => {
                    update = Some((index, op.key, want, value, ttl));
                }
                (Action::Check, _) => {}
                _ => return Ok(None),
            }
        }
        let Some((at, key, want, value, ttl)) = update else {
            return Ok(None);
        };
        let now = now_ms()?;
        let expires = expires_at(now, ttl)?;
        let version = next_version(want)?;
        let mut sql = String::from(
            "UPDATE keyward_records SET version = ?, value = ?, expires_at = ? \
             WHERE key = ? AND version = ? AND expires_at > ?",
        );
        for op in ops.iter().filter(|op| matches!(op.action, Action::Check)) {
            sql.push_str(match op.expected {
                Some(_) => {
                    " AND EXISTS (SELECT 1 FROM keyward_records WHERE key = ? AND version = ? AND expires_at > ?)"
                }
                None => " AND NOT EXISTS (SELECT 1 FROM keyward_records WHERE key = ? AND expires_at > ?)",
            });
        }
        // Only the number and kind of the checks vary; every value is bound.
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(to_i64(version)?)
            .bind(value)
            .bind(expires)
            .bind(key)
            .bind(to_i64(want)?)
            .bind(now);
        for op in ops.iter().filter(|op| matches!(op.action, Action::Check)) {
            query = query.bind(op.key);
            if let Some(v) = op.expected {
                query = query.bind(to_i64(v)?);
            }
            query = query.bind(now);
        }
        let r = query.execute(&self.pool).await.map_err(unavailable)?;
        if r.rows_affected() != 1 {
            return Ok(None);
        }
        // A check's record is at the version it was expected at.
        Ok(Some(
            ops.iter()
                .enumerate()
                .map(|(index, op)| {
                    if index == at {
                        Some(version)
                    } else {
                        op.expected
                    }
                })
                .collect(),
        ))
    }

    /// Counts a write for the background purge.
    fn after_write(&self) {
        self.purge.after_write(|| {
            let (pool, writer) = (self.pool.clone(), Arc::clone(&self.writer));
            async move { purge(&pool, &writer).await }
        });
    }

    async fn swap_inner(
        &self,
        key: &str,
        expected: Option<u64>,
        value: &[u8],
        ttl: Duration,
    ) -> Result<Swap, StoreError> {
        check_args(key, value, ttl)?;
        let writing = self.writer.lock().await;
        let now = now_ms()?;
        let expires = expires_at(now, ttl)?;
        let (version, affected) = match expected {
            None => {
                let version = initial_version()?;
                // Insert, or take over a row that has expired; a live row wins.
                let r = sqlx::query(
                    "INSERT INTO keyward_records (key, version, value, expires_at) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (key) DO UPDATE SET version = ?2, value = ?3, expires_at = ?4
                     WHERE keyward_records.expires_at <= ?5",
                )
                .bind(key)
                .bind(to_i64(version)?)
                .bind(value)
                .bind(expires)
                .bind(now)
                .execute(&self.pool)
                .await
                .map_err(unavailable)?;
                (version, r.rows_affected())
            }
            Some(want) => {
                let version = next_version(want)?;
                let r = sqlx::query(
                    "UPDATE keyward_records SET version = ?1, value = ?2, expires_at = ?3
                     WHERE key = ?4 AND version = ?5 AND expires_at > ?6",
                )
                .bind(to_i64(version)?)
                .bind(value)
                .bind(expires)
                .bind(key)
                .bind(to_i64(want)?)
                .bind(now)
                .execute(&self.pool)
                .await
                .map_err(unavailable)?;
                (version, r.rows_affected())
            }
        };
        drop(writing);
        // The swap has committed: its answer is decided, and the purge (on
        // a task of its own; a failure is logged there) cannot change it.
        self.after_write();
        Ok(if affected == 1 {
            Swap::Swapped { version }
        } else {
            Swap::Conflict
        })
    }
}

impl Store for SqliteStore {
    fn load<'a>(&'a self, key: &'a str) -> StoreFuture<'a, Option<Record>> {
        Box::pin(async move {
            check_key(key)?;
            let row = sqlx::query(
                "SELECT version, value FROM keyward_records WHERE key = ? AND expires_at > ?",
            )
            .bind(key)
            .bind(now_ms()?)
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

    fn load_many<'a>(&'a self, keys: &'a [&'a str]) -> StoreFuture<'a, Snapshot> {
        Box::pin(async move {
            Ok(Snapshot {
                records: self.load_many_inner(keys).await?,
                now_ms: None,
            })
        })
    }

    fn commit<'a>(&'a self, ops: &'a [Op<'a>]) -> StoreFuture<'a, Commit> {
        Box::pin(self.commit_inner(ops))
    }

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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::*;

    async fn pragma(store: &SqliteStore, name: &str) -> Vec<String> {
        // Every pooled connection, held at once so that each is a new one.
        let mut conns = Vec::new();
        for _ in 0..4 {
            conns.push(store.pool.acquire().await.unwrap());
        }
        let mut out = Vec::new();
        for conn in &mut conns {
            let row = sqlx::query(sqlx::AssertSqlSafe(format!("PRAGMA {name}")))
                .fetch_one(&mut **conn)
                .await
                .unwrap();
            let value: String = match row.try_get::<i64, _>(0) {
                Ok(n) => n.to_string(),
                Err(_) => row.try_get(0).unwrap(),
            };
            out.push(value);
        }
        out
    }

    /// Every connection syncs each commit
    /// (`synchronous` 2 = FULL; it was 1, NORMAL), in WAL mode.
    #[tokio::test]
    async fn every_connection_syncs_each_commit() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path().join("k.db")).await.unwrap();
        assert_eq!(pragma(&store, "synchronous").await, ["2"; 4]);
        assert_eq!(pragma(&store, "journal_mode").await, ["wal"; 4]);
        let normal = SqliteStore::dangerous_open_synchronous_normal(dir.path().join("n.db"))
            .await
            .unwrap();
        assert_eq!(pragma(&normal, "synchronous").await, ["1"; 4]);
    }
}
