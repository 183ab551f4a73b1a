//! A start on a database that already has keyward's schema sends no
//! "already exists, skipping" NOTICE, which sqlx would log (target
//! `sqlx::postgres::notice`) on every start of every replica.
//!
//! One test in its own binary: it installs the process's global `tracing`
//! subscriber, which captures every event sqlx logs.
//!
//! PostgreSQL comes from `$KEYWARD_POSTGRES_URL` (the local default
//! otherwise); when it is unreachable the test prints one `SKIPPED:` line,
//! or fails under `KEYWARD_REQUIRE_SERVICES=1`.
#![allow(clippy::unwrap_used, clippy::panic, clippy::arithmetic_side_effects)]

mod common;

use std::io::Write;
use std::str::FromStr;
use std::sync::{Arc, Mutex};

use keyward::PgStore;
use keyward::store::PgOptions;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

const NOTICE_TARGET: &str = "sqlx::postgres::notice";

/// Everything the subscriber writes, one formatted event a line.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    /// The lines of sqlx's notices captured since the last call.
    fn take_notices(&self) -> Vec<String> {
        let bytes = std::mem::take(&mut *self.0.lock().unwrap());
        String::from_utf8_lossy(&bytes)
            .lines()
            .filter(|line| line.contains(NOTICE_TARGET))
            .map(str::to_owned)
            .collect()
    }
}

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn a_second_migration_sends_no_notice() {
    let Some(url) = common::postgres("no NOTICE from a second migration") else {
        return;
    };
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_target(true)
        .with_writer(move || writer.clone())
        .finish();
    tracing::subscriber::set_global_default(subscriber).unwrap();

    // A schema of the test's own, so the first migration creates everything.
    let schema = format!(
        "kw_notice_{}_{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos()
    );
    let admin = PgPoolOptions::new()
        .max_connections(1)
        .connect(&url)
        .await
        .unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
        .execute(&admin)
        .await
        .unwrap();
    let options = PgConnectOptions::from_str(&url)
        .unwrap()
        .options([("search_path", schema.as_str())]);
    let pool = PgPoolOptions::new()
        .max_connections(2)
        .connect_with(options)
        .await
        .unwrap();

    let store = PgStore::from_pool(pool.clone()).await.unwrap();
    captured.take_notices();

    // The capture sees the notice this test is about: DDL with IF NOT
    // EXISTS on a table that exists.
    sqlx::query("CREATE TABLE IF NOT EXISTS keyward_records (key TEXT)")
        .execute(&pool)
        .await
        .unwrap();
    let control = captured.take_notices();
    assert!(
        control.iter().any(|l| l.contains("already exists")),
        "the capture missed the control notice: {control:?}"
    );

    // Starting again, by every path, on the migrated schema: no notice.
    store.migrate().await.unwrap();
    let again = PgStore::from_pool(pool.clone()).await.unwrap();
    let sep = if url.contains('?') { '&' } else { '?' };
    let connected = PgStore::connect_with(
        &format!("{url}{sep}options[search_path]={schema}"),
        PgOptions::default().max_connections(1),
    )
    .await
    .unwrap();
    let notices = captured.take_notices();
    assert!(notices.is_empty(), "a second migration sent {notices:?}");

    connected.close().await;
    again.close().await;
    store.close().await;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
        .execute(&admin)
        .await
        .unwrap();
    admin.close().await;
}
