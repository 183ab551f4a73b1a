#![allow(
    unreachable_pub,
    dead_code,
    reason = "shared by the example binary and its tests; each uses a part"
)]
//! The reference auth server's application: keyward's ready router
//! ([`keyward::axum::AuthRoutes`]) over the application's own user table,
//! a mailer for one-time codes, and two routes of the application's own
//! (`/me`, `/api/reports`). `main.rs` runs it; the end-to-end tests serve
//! it on an ephemeral port.
//!
//! keyward owns only its own records (sessions, codes, API keys, rate-limit
//! counts); the user table (`app_users`, in SQLite or PostgreSQL) belongs
//! to the application.

use std::sync::Arc;

use axum::routing::get;
use axum::{Json, Router};
use keyward::Keyward;
use keyward::axum::{
    AuthRoutes, ClientAddr, CodeSender, DirectoryError, Principal, RateLimits, RefreshCookie,
    Rejection, UserDirectory,
};
use serde_json::{Value, json};
use sqlx::sqlite::SqlitePool;

/// The server's password policy: the library defaults, with a short wait
/// for a hashing slot and one CPU kept free of PBKDF2. A login that cannot
/// start hashing within 250 ms is answered 429 at once, so every `/login`
/// answer arrives well within 2 s even under a flood, and the requests that
/// never hash (`/me`, `/token/refresh`) keep a core to run on.
pub fn password_policy() -> keyward::PasswordPolicy {
    let mut policy = keyward::PasswordPolicy::default();
    policy.queue_timeout = std::time::Duration::from_millis(250);
    let cpus = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    policy.max_in_flight = cpus.saturating_sub(1).max(1);
    policy
}

/// Appends `{"to", "code"}` lines to a file, which holds live codes: it is
/// created with mode 0600 (owner only), and one that others may read or
/// write is refused.
pub struct OutboxMailer(std::path::PathBuf);

impl OutboxMailer {
    /// The outbox at `path`, created empty with mode 0600 if missing.
    ///
    /// # Errors
    /// When the file cannot be created or opened, or (Unix) when it exists
    /// and its group or others have any access to it.
    pub fn open(path: impl Into<std::path::PathBuf>) -> Result<Self, String> {
        let path = path.into();
        let file = Self::open_file(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = file
                .metadata()
                .map_err(|e| format!("{}: {e}", path.display()))?
                .permissions()
                .mode();
            if mode & 0o077 != 0 {
                return Err(format!(
                    "{} holds live one-time codes but is open to others (mode {:03o}); chmod 600 it",
                    path.display(),
                    mode & 0o777
                ));
            }
        }
        drop(file);
        Ok(Self(path))
    }

    /// Opens for appending, creating the file with mode 0600 if missing.
    fn open_file(path: &std::path::Path) -> std::io::Result<std::fs::File> {
        let mut options = std::fs::OpenOptions::new();
        options.create(true).append(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        options.open(path)
    }
}

impl CodeSender for OutboxMailer {
    fn send_code(&self, to: &str, code: &str) {
        use std::io::Write;
        // One write per line, so that replicas appending to one file never
        // interleave within a line.
        let mut line = json!({"to": to, "code": code}).to_string();
        line.push('\n');
        let written = Self::open_file(&self.0).and_then(|mut f| f.write_all(line.as_bytes()));
        if let Err(e) = written {
            tracing::error!(error = %e, "outbox write failed");
        }
    }
}

/// Logs that a code was sent, never the code.
pub struct LogMailer;

impl CodeSender for LogMailer {
    fn send_code(&self, to: &str, _code: &str) {
        tracing::info!(to = %to, "one-time code sent");
    }
}

/// Key of the advisory lock that serialises the `app_users` DDL when
/// several replicas start at once (an arbitrary constant: "appusers").
#[cfg(feature = "postgres")]
const USERS_DDL_LOCK: i64 = 0x6170_7075_7365_7273;

const USERS_DDL: &str =
    "CREATE TABLE IF NOT EXISTS app_users (username TEXT PRIMARY KEY NOT NULL, hash TEXT NOT NULL)";

/// The application's own user table, in SQLite or PostgreSQL. The queries
/// use `$n` placeholders, which both accept.
#[derive(Clone)]
pub struct Users {
    db: UserDb,
}

#[derive(Clone)]
enum UserDb {
    Sqlite(SqlitePool),
    #[cfg(feature = "postgres")]
    Postgres(sqlx::postgres::PgPool),
}

/// Runs `$body` with `$pool` bound to whichever pool `$db` holds.
macro_rules! with_pool {
    ($db:expr, |$pool:ident| $body:expr) => {
        match $db {
            UserDb::Sqlite($pool) => $body,
            #[cfg(feature = "postgres")]
            UserDb::Postgres($pool) => $body,
        }
    };
}

/// The scheme of a database URL, lower-cased: `sqlite`, `postgres`,
/// `redis`, or `None` for anything else. Never echoes the URL, which may
/// hold a password.
pub fn scheme(url: &str) -> Option<&'static str> {
    let (scheme, _) = url.split_once(':')?;
    match scheme.to_ascii_lowercase().as_str() {
        "sqlite" => Some("sqlite"),
        "postgres" | "postgresql" => Some("postgres"),
        "redis" | "rediss" => Some("redis"),
        _ => None,
    }
}

/// The path of a `sqlite:PATH` URL.
fn sqlite_path(url: &str) -> Result<&std::path::Path, String> {
    match url.split_once(':') {
        Some((_, path)) if !path.is_empty() => Ok(path.as_ref()),
        _ => Err("sqlite: needs a path, as in sqlite:keyward-server.db".into()),
    }
}

/// The message for a URL whose backend this build leaves out.
fn needs_feature(feature: &str) -> String {
    format!("a {feature}:// URL needs the {feature} feature: add --features {feature}")
}

/// The user database for a store URL, when `--users` is not given: the
/// store's own database for SQLite and PostgreSQL; for Redis, which holds
/// no tables, a local SQLite file.
pub fn default_users_url(store: &str) -> &str {
    match scheme(store) {
        Some("redis") => "sqlite:keyward-server-users.db",
        _ => store,
    }
}

/// keyward's store for `url`, through `keyward::store::open`: `sqlite:PATH`,
/// `postgres://…` (feature `postgres`), `redis://…[?prefix=…]` (feature
/// `redis`) or `memory:` (one process, for trying things out).
///
/// # Errors
/// A one-line message, without the URL, when the scheme is unknown, its
/// feature is off, or the store cannot be opened.
pub async fn open_store(url: &str) -> Result<Arc<dyn keyward::Store>, String> {
    keyward::store::open(url).await.map_err(|e| e.to_string())
}

impl Users {
    /// Opens the table in the SQLite database at `path`, creating it.
    pub async fn open(path: &std::path::Path) -> Result<Self, sqlx::Error> {
        let options = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
            .busy_timeout(std::time::Duration::from_secs(5));
        let pool = sqlx::sqlite::SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(options)
            .await?;
        sqlx::query(USERS_DDL).execute(&pool).await?;
        Ok(Self {
            db: UserDb::Sqlite(pool),
        })
    }

    /// Opens the table in the PostgreSQL database at `url`, creating it if
    /// missing. Idempotent, and safe when several replicas start at once:
    /// a transaction-scoped advisory lock lets one create it while the
    /// others wait.
    #[cfg(feature = "postgres")]
    pub async fn open_postgres(url: &str) -> Result<Self, String> {
        use std::str::FromStr;
        let options = sqlx::postgres::PgConnectOptions::from_str(url)
            .map_err(|_| "postgres: malformed URL".to_owned())?
            .application_name("keyward-server");
        let failed = |e: sqlx::Error| format!("postgres: {e}");
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(std::time::Duration::from_secs(5))
            .connect_with(options)
            .await
            .map_err(failed)?;
        let mut tx = pool.begin().await.map_err(failed)?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(USERS_DDL_LOCK)
            .execute(&mut *tx)
            .await
            .map_err(failed)?;
        sqlx::query(USERS_DDL)
            .execute(&mut *tx)
            .await
            .map_err(failed)?;
        tx.commit().await.map_err(failed)?;
        Ok(Self {
            db: UserDb::Postgres(pool),
        })
    }

    /// Opens the table at `url`: `sqlite:PATH` or `postgres://…` (feature
    /// `postgres`).
    ///
    /// # Errors
    /// A one-line message, without the URL, when the scheme is not one of
    /// those, its feature is off, or the database cannot be opened.
    pub async fn connect(url: &str) -> Result<Self, String> {
        match scheme(url) {
            Some("sqlite") => Self::open(sqlite_path(url)?)
                .await
                .map_err(|e| format!("sqlite: {e}")),
            #[cfg(feature = "postgres")]
            Some("postgres") => Self::open_postgres(url).await,
            #[cfg(not(feature = "postgres"))]
            Some("postgres") => Err(needs_feature("postgres")),
            _ => Err("the user table needs sqlite:PATH or postgres://…".into()),
        }
    }

    pub async fn get(&self, username: &str) -> Result<Option<String>, sqlx::Error> {
        let sql = "SELECT hash FROM app_users WHERE username = $1";
        with_pool!(&self.db, |pool| {
            sqlx::query_scalar(sql)
                .bind(username)
                .fetch_optional(pool)
                .await
        })
    }

    /// Inserts a user; `false` if the name is taken.
    pub async fn insert(&self, username: &str, hash: &str) -> Result<bool, sqlx::Error> {
        let sql = "INSERT INTO app_users (username, hash) VALUES ($1, $2) ON CONFLICT (username) DO NOTHING";
        let affected = with_pool!(&self.db, |pool| {
            sqlx::query(sql)
                .bind(username)
                .bind(hash)
                .execute(pool)
                .await
                .map(|r| r.rows_affected())
        })?;
        Ok(affected == 1)
    }

    /// Stores a rehash only if the hash is still the one verified, so a
    /// concurrent password change is never overwritten.
    pub async fn replace_hash(
        &self,
        username: &str,
        old: &str,
        new: &str,
    ) -> Result<bool, sqlx::Error> {
        let sql = "UPDATE app_users SET hash = $1 WHERE username = $2 AND hash = $3";
        let affected = with_pool!(&self.db, |pool| {
            sqlx::query(sql)
                .bind(new)
                .bind(username)
                .bind(old)
                .execute(pool)
                .await
                .map(|r| r.rows_affected())
        })?;
        Ok(affected == 1)
    }

    /// Deletes a user; `false` if there was none.
    pub async fn delete(&self, username: &str) -> Result<bool, sqlx::Error> {
        let sql = "DELETE FROM app_users WHERE username = $1";
        let affected = with_pool!(&self.db, |pool| {
            sqlx::query(sql)
                .bind(username)
                .execute(pool)
                .await
                .map(|r| r.rows_affected())
        })?;
        Ok(affected == 1)
    }

    /// The stored hash of `username`, for tests and the demo.
    pub async fn stored_hash(&self, username: &str) -> Option<String> {
        self.get(username).await.ok().flatten()
    }
}

impl UserDirectory for Users {
    async fn find(&self, login: &str) -> Result<Option<String>, DirectoryError> {
        Ok(self.get(login).await?)
    }

    async fn create(&self, login: &str, hash: &str) -> Result<bool, DirectoryError> {
        Ok(self.insert(login, hash).await?)
    }

    async fn update_hash(&self, login: &str, old: &str, new: &str) -> Result<bool, DirectoryError> {
        Ok(self.replace_hash(login, old, new).await?)
    }

    async fn delete(&self, login: &str) -> Result<bool, DirectoryError> {
        Ok(Users::delete(self, login).await?)
    }
}

/// The issuer an authenticator app shows beside the account name.
pub const TOTP_ISSUER: &str = "keyward server";

/// The scope `GET /api/reports` asks of an API key.
pub const REPORTS_SCOPE: &str = "reports:read";

/// How the server is run, beside keyward and the user table.
pub struct Options {
    /// Where codes go: mailed to real accounts only.
    pub mailer: Arc<dyn CodeSender>,
    /// Proxies in front of the server that append to `X-Forwarded-For`; 0
    /// takes the client address from the socket.
    pub trusted_proxies: usize,
    /// The rate limits, kept in keyward's store.
    pub limits: RateLimits,
    /// A runtime of its own for password work (see
    /// [`keyward::axum::hashing_runtime`]); `None` runs it on the serving
    /// runtime's blocking pool.
    pub hashing: Option<tokio::runtime::Handle>,
}

/// The routes: keyward's, with browser clients' refresh tokens in a
/// cookie, and the application's own. `kw` is a [`Keyward`] or a
/// complete one.
pub fn router(kw: impl Into<Keyward>, users: Users, options: Options) -> Router {
    let mailer = options.mailer;
    let mut auth = AuthRoutes::new(users)
        .codes(move |to: &str, code: &str| mailer.send_code(to, code))
        .client_addr(ClientAddr::behind_proxies(options.trusted_proxies))
        .limits(options.limits)
        .totp_issuer(TOTP_ISSUER)
        .totp_qr_svg(|uri| qr_svg(uri).ok().map(|svg| svg.to_string()));
    if let Some(hashing) = options.hashing {
        auth = auth.hashing(hashing);
    }
    if let Ok(cookie) = RefreshCookie::at("/token") {
        auth = auth.refresh_cookie(cookie);
    }
    Router::new()
        .merge(auth.router())
        .route("/me", get(me))
        .route("/api/reports", get(reports))
        .with_state(kw.into())
}

/// `GET /me`: who the bearer is, by an access token (with how its session
/// was authenticated: RFC 8176 `amr`) or an API key.
async fn me(who: Principal) -> Json<Value> {
    Json(match who {
        Principal::User(c) => json!({"sub": c.sub, "sid": c.sid, "exp": c.exp, "amr": c.amr}),
        Principal::Key(k) => json!({
            "sub": k.owner(),
            "key_id": k.id(),
            "scopes": k.scopes().collect::<Vec<_>>(),
            "rolled_until": k.rolled_until(),
        }),
    })
}

/// `GET /api/reports`: the caller's reports. An API key needs the
/// `reports:read` scope; an access token carries its user's full
/// authority.
async fn reports(who: Principal) -> Result<Json<Value>, Rejection> {
    who.require_scope(REPORTS_SCOPE)?;
    Ok(Json(json!({"owner": who.subject(), "reports": []})))
}

/// `text` as a QR code, in SVG. The picture holds the secret, as the text
/// does; this copy of it is wiped when dropped (the answer's body is not).
pub fn qr_svg(text: &str) -> Result<zeroize::Zeroizing<String>, qrcode::types::QrError> {
    let code = qrcode::QrCode::new(text.as_bytes())?;
    Ok(zeroize::Zeroizing::new(
        code.render::<qrcode::render::svg::Color<'_>>()
            .min_dimensions(200, 200)
            .build(),
    ))
}
