#![allow(
    unreachable_pub,
    dead_code,
    reason = "shared by the example binary and its tests; each uses a part"
)]
//! The reference auth server's application: routes, handlers, the user
//! table and the mailer. `main.rs` runs it; the end-to-end tests serve it
//! on an ephemeral port.
//!
//! keyward owns only its own records (sessions, codes, API keys, rate-limit
//! counts); the user table (`app_users`, in SQLite or PostgreSQL) belongs
//! to the application.
//!
//! The rate limits on `/login`, `/register`, `/otp/send` and `/otp/verify`
//! are kept in keyward's store ([`keyward::limit`]), so every replica that
//! shares the store shares the counts: two replicas allow what one would
//! (see [`RateLimits`]).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use keyward::api_key::ApiKeyView;
use keyward::limit::{CODE_VERIFY_PER_SOURCE, LOGIN_PER_ACCOUNT, LOGIN_PER_SOURCE, Limit};
use keyward::otp::{OtpError, Purpose};
use keyward::session::{MAX_META_LEN, SessionInfo};
use keyward::totp::TotpError;
use keyward::{
    AccessClaims, ApiKeyError, ApiKeyVerified, ApiKeys, Error, KeySpec, Keyward, Password,
    SessionError, TokenPair, Verified,
};
use serde::Deserialize;
use serde_json::json;
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

/// Where one-time codes go. The example writes them to an outbox file, or
/// only logs that one was sent. It is called off the request path (see
/// [`Outgoing`]), so it may block and take its time.
pub trait Mailer: Send + Sync {
    /// Delivers `code` to `to`.
    fn send_code(&self, to: &str, code: &str);
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

impl Mailer for OutboxMailer {
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

impl Mailer for LogMailer {
    fn send_code(&self, to: &str, _code: &str) {
        tracing::info!(to = %to, "one-time code sent");
    }
}

/// A code for `username`, to mail if it names an account.
struct Delivery {
    username: String,
    code: keyward::otp::OtpCode,
}

/// Codes waiting to be mailed.
const MAIL_QUEUE: usize = 1_024;

/// The way from `/otp/send` to the mailer.
///
/// `/otp/send` issues a code for every well-formed username, whether or
/// not it names an account, and hands it here. A background task looks the
/// name up and mails the code only to a real account; a code for a name
/// without one is dropped unseen (it still counts wrong guesses, so
/// `/otp/verify` answers alike). The request never waits for the lookup or
/// the mail, so neither can show in its answer or its timing.
#[derive(Clone)]
pub struct Outgoing {
    queue: tokio::sync::mpsc::Sender<Delivery>,
}

impl Outgoing {
    /// Starts the delivery task on the current Tokio runtime.
    fn start(users: Users, mailer: Arc<dyn Mailer>) -> Self {
        let (queue, mut pending) = tokio::sync::mpsc::channel::<Delivery>(MAIL_QUEUE);
        tokio::spawn(async move {
            while let Some(d) = pending.recv().await {
                match users.get(&d.username).await {
                    Ok(Some(_)) => {
                        let mailer = Arc::clone(&mailer);
                        let sent = tokio::task::spawn_blocking(move || {
                            mailer.send_code(&d.username, d.code.unprotected_as_str());
                        })
                        .await;
                        if let Err(e) = sent {
                            tracing::error!(error = %e, "mailer failed");
                        }
                    }
                    // No account: nobody to mail.
                    Ok(None) => {}
                    Err(e) => {
                        tracing::error!(error = %e, "user lookup for a code failed; code not sent")
                    }
                }
            }
        });
        Self { queue }
    }

    /// Queues `code` for `username`; a full queue drops it (logged): the
    /// user asks again.
    fn send(&self, username: &str, code: keyward::otp::OtpCode) {
        let d = Delivery {
            username: username.to_owned(),
            code,
        };
        if self.queue.try_send(d).is_err() {
            tracing::warn!("mail queue full or closed; one-time code dropped");
        }
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

/// Code requests per source address: a burst of 10, then 10 a minute.
/// keyward limits code sends per subject (one a minute); this bounds one
/// source asking codes for many names, each a mail or a text someone pays
/// for (OWASP Forgot Password cheat sheet: limit code requests).
pub const CODE_SEND_PER_SOURCE: Limit = Limit::new("code_send_source", 10, Duration::from_secs(60));

/// The rate limits the routes take from, all kept in keyward's store and
/// checked with [`Limits::check`](keyward::limit::Limits::check): each
/// allowed request is one compare-and-swap on the store, so the counts are
/// exact for all the replicas that share it, and a restart forgets
/// nothing. A check the store cannot answer refuses the request (503):
/// these limits fail closed.
///
/// | route | per source address | per account |
/// |---|---|---|
/// | `/login`, `/register` | `login_per_source` | `login_per_account` |
/// | `/otp/send` | `code_send_per_source` | keyward's code-send limit |
/// | `/otp/verify` | `code_verify_per_source` | keyward's lockout |
///
/// `/login` and `/register` take from the same two limits, so spreading
/// password attempts over the two routes gains nothing. A one-time code is
/// checked against its subject's lockout (3 wrong codes), which no rate
/// adds to; `/otp/verify`'s own limit bounds one source guessing across
/// many names.
#[derive(Debug, Clone)]
pub struct RateLimits {
    /// Password attempts per source address
    /// ([`LOGIN_PER_SOURCE`]: 10 at once, then 10 a minute).
    pub login_per_source: Limit,
    /// Password attempts per account name, from any source
    /// ([`LOGIN_PER_ACCOUNT`]: 10 at once, then 10 a minute).
    pub login_per_account: Limit,
    /// Code requests per source address ([`CODE_SEND_PER_SOURCE`]).
    pub code_send_per_source: Limit,
    /// Code checks per source address
    /// ([`CODE_VERIFY_PER_SOURCE`]: 10 at once, then 10 a minute).
    pub code_verify_per_source: Limit,
}

impl Default for RateLimits {
    fn default() -> Self {
        Self {
            login_per_source: LOGIN_PER_SOURCE,
            login_per_account: LOGIN_PER_ACCOUNT,
            code_send_per_source: CODE_SEND_PER_SOURCE,
            code_verify_per_source: CODE_VERIFY_PER_SOURCE,
        }
    }
}

/// Everything a handler needs.
#[derive(Clone)]
pub struct App {
    /// The keyward facade.
    pub kw: Keyward,
    /// The user table.
    pub users: Users,
    /// Where codes go: a queue to the mailer, which mails real accounts
    /// only.
    pub outgoing: Outgoing,
    /// Proxies in front of the server that append to `X-Forwarded-For`; 0
    /// takes the client address from the socket (see [`client_source`]).
    pub trusted_proxies: usize,
    /// The rate limits, kept in keyward's store.
    pub limits: RateLimits,
    /// Admission to password work for `/login`.
    pub gate: LoginGate,
    /// A runtime of its own for password work (see [`hashing_runtime`]);
    /// `None` runs it on the serving runtime's blocking pool.
    pub hashing: Option<tokio::runtime::Handle>,
}

impl App {
    /// The application over `kw`, with the default [`RateLimits`], a login
    /// gate sized to its password policy, and codes mailed by a task on the
    /// current Tokio runtime.
    /// `trust_forwarded_for` trusts one proxy (see
    /// [`with_trusted_proxies`](Self::with_trusted_proxies)).
    ///
    /// # Panics
    /// Outside a Tokio runtime.
    pub fn new(
        kw: Keyward,
        users: Users,
        mailer: Arc<dyn Mailer>,
        trust_forwarded_for: bool,
    ) -> Self {
        let gate = LoginGate::new(kw.passwords().policy().max_in_flight);
        let outgoing = Outgoing::start(users.clone(), mailer);
        Self {
            kw,
            users,
            outgoing,
            trusted_proxies: usize::from(trust_forwarded_for),
            limits: RateLimits::default(),
            gate,
            hashing: None,
        }
    }

    /// Takes the client address from `X-Forwarded-For`, as written by the
    /// `n` proxies in front of the server (0: from the socket).
    pub fn with_trusted_proxies(mut self, n: usize) -> Self {
        self.trusted_proxies = n;
        self
    }

    /// Takes from `limits` instead of the defaults.
    pub fn with_limits(mut self, limits: RateLimits) -> Self {
        self.limits = limits;
        self
    }

    /// Runs password work on `hashing` (see [`hashing_runtime`]).
    pub fn with_hashing(mut self, hashing: tokio::runtime::Handle) -> Self {
        self.hashing = Some(hashing);
        self
    }

    /// Runs `work` (a keyward password call) on the hashing runtime, if
    /// there is one. keyward's cap on concurrent hashing holds either way.
    async fn password_work<T: Send + 'static>(
        &self,
        work: impl Future<Output = Result<T, Error>> + Send + 'static,
    ) -> Result<T, Error> {
        let Some(hashing) = &self.hashing else {
            return work.await;
        };
        match hashing.spawn(work).await {
            Ok(result) => result,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            // The hashing runtime is shutting down.
            Err(_) => Err(Error::Busy),
        }
    }
}

/// A runtime for password work whose threads run at `nice` (Linux; 0 to
/// 19, higher is lower priority; elsewhere at normal priority).
///
/// PBKDF2 is throughput work and a request such as `/me` is latency work.
/// On the serving runtime's blocking pool, a hashing thread competes with
/// the request handlers as an equal, so under a login flood a `/me` can
/// wait for the scheduler to take a core back from PBKDF2. At a lower
/// priority, the handlers take the core the moment they have work; hashing
/// keeps the time they leave, which under a flood is nearly all of it.
pub fn hashing_runtime(nice: i32) -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("keyward-hashing")
        .enable_time()
        .on_thread_start(move || lower_priority(nice))
        .build()
}

#[cfg(target_os = "linux")]
fn lower_priority(nice: i32) {
    // This thread only: on Linux, a thread id names one thread.
    let tid = rustix::thread::gettid();
    if let Err(e) = rustix::process::setpriority_process(Some(tid), nice) {
        tracing::warn!(error = %e, nice, "cannot lower the hashing threads' priority");
    }
}

#[cfg(not(target_os = "linux"))]
fn lower_priority(_nice: i32) {}

/// How long a "come back later" ticket stays good after its `Retry-After`.
const TICKET_WINDOW: Duration = Duration::from_secs(30);
/// At most this many outstanding tickets (a few MB); past it, new ones are
/// not handed out until old ones expire.
pub const MAX_TICKETS: usize = 100_000;
/// When the tickets are full, expired ones are swept out at most this often,
/// so that a flood that keeps the map full cannot make every refusal scan it.
const SWEEP_EVERY: Duration = Duration::from_secs(1);

/// The outstanding tickets: each source's "good from" time.
#[derive(Default)]
struct Tickets {
    by_source: HashMap<IpAddr, Instant>,
    /// No sweep before this.
    next_sweep: Option<Instant>,
}

/// Admission to `/login`'s password work, in front of keyward's capped
/// hashing queue.
///
/// Under a flood the queue is full of attempts from addresses never seen
/// before, and a legitimate user who honours `Retry-After` would have to
/// win the same lottery again on every retry. So a source answered "busy"
/// gets a ticket; when it comes back from the same address after its
/// `Retry-After` (and within 30 s), its attempt skips the gate and waits in
/// the hashing queue behind at most one other first-time attempt. First-time
/// attempts pass a gate with one slot more than the hashing cap, waiting for
/// it at most the policy's queue timeout, so the hasher never idles and the
/// queue never grows. A ticket is worth one attempt; the per-source and
/// per-account rate limits still apply to it. Tickets are kept in the
/// process: behind a load balancer, a retry that lands on another replica
/// competes as a first-time attempt there.
#[derive(Clone)]
pub struct LoginGate {
    fresh: Arc<tokio::sync::Semaphore>,
    tickets: Arc<Mutex<Tickets>>,
}

impl LoginGate {
    /// A gate for a hashing cap of `max_in_flight`.
    pub fn new(max_in_flight: usize) -> Self {
        Self {
            fresh: Arc::new(tokio::sync::Semaphore::new(max_in_flight.saturating_add(1))),
            tickets: Arc::new(Mutex::new(Tickets::default())),
        }
    }

    /// Whether `source` returns with a ticket that is good now; a good
    /// ticket is used up. One presented early stays for later.
    pub fn redeem(&self, source: IpAddr, now: Instant) -> bool {
        let mut tickets = self
            .tickets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match tickets.by_source.get(&source) {
            Some(&from) if now >= from => {
                tickets.by_source.remove(&source);
                now.duration_since(from) <= TICKET_WINDOW
            }
            _ => false,
        }
    }

    /// Tells `source` to come back after `retry_after`.
    pub fn ticket(&self, source: IpAddr, retry_after: Duration, now: Instant) {
        let mut tickets = self
            .tickets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if tickets.by_source.len() >= MAX_TICKETS {
            if tickets.next_sweep.is_some_and(|t| now < t) {
                return;
            }
            tickets.next_sweep = now.checked_add(SWEEP_EVERY);
            tickets
                .by_source
                .retain(|_, from| now.saturating_duration_since(*from) <= TICKET_WINDOW);
            if tickets.by_source.len() >= MAX_TICKETS {
                return;
            }
        }
        if let Some(from) = now.checked_add(retry_after) {
            tickets.by_source.insert(source, from);
        }
    }

    /// Outstanding tickets.
    pub fn tickets(&self) -> usize {
        self.tickets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .by_source
            .len()
    }
}

/// The routes.
pub fn router(app: App) -> Router {
    Router::new()
        .route("/register", post(register))
        .route("/login", post(login))
        .route("/login/mfa", post(login_mfa))
        .route("/token/refresh", post(refresh))
        .route("/logout", post(logout))
        .route("/logout-all", post(logout_all))
        .route("/otp/send", post(otp_send))
        .route("/otp/verify", post(otp_verify))
        .route("/me", get(me))
        .route("/api/reports", get(reports))
        .route("/api-keys", post(create_key).get(list_keys))
        .route("/api-keys/{id}", delete(revoke_key))
        .route("/api-keys/{id}/roll", post(roll_key))
        .route("/sessions", get(list_sessions))
        .route("/sessions/{id}", delete(revoke_session))
        .route("/account", delete(delete_account))
        .route("/totp", get(totp_status).delete(totp_disable))
        .route("/totp/enroll", post(totp_enroll))
        .route("/totp/confirm", post(totp_confirm))
        .route("/totp/recovery", post(totp_regenerate))
        .route("/.well-known/jwks.json", get(jwks))
        .with_state(app)
}

#[derive(Deserialize)]
struct Credentials {
    username: String,
    password: String,
}

#[derive(Deserialize)]
struct OtpSend {
    username: String,
}

#[derive(Deserialize)]
struct OtpCheck {
    username: String,
    code: String,
}

#[derive(Deserialize)]
struct RefreshRequest {
    refresh_token: String,
}

fn error(status: StatusCode, body: serde_json::Value) -> Response {
    (status, Json(body)).into_response()
}

fn too_many(retry_after: u64) -> Response {
    let mut r = error(
        StatusCode::TOO_MANY_REQUESTS,
        json!({"error": "too_many_requests", "retry_after": retry_after}),
    );
    if let Ok(v) = HeaderValue::from_str(&retry_after.max(1).to_string()) {
        r.headers_mut().insert(header::RETRY_AFTER, v);
    }
    r
}

/// The 429 for a rate limit's refusal: `Retry-After` in whole seconds,
/// rounded up, so that a client that waits that long is allowed (the limit
/// counts in milliseconds).
fn rate_limited(retry_after: Duration) -> Response {
    let secs = u64::try_from(retry_after.as_millis().div_ceil(1_000)).unwrap_or(u64::MAX);
    too_many(secs.max(1))
}

fn unavailable(what: &str, e: &dyn std::fmt::Display) -> Response {
    tracing::error!(error = %e, "{what} failed");
    error(
        StatusCode::SERVICE_UNAVAILABLE,
        json!({"error": "unavailable"}),
    )
}

fn pair_json(p: &TokenPair) -> serde_json::Value {
    json!({
        "access_token": p.access.unprotected_as_str(),
        "refresh_token": p.refresh.unprotected_as_str(),
        "expires_in": p.expires_in,
    })
}

/// 200 with a token pair, never cached on the way (RFC 6749 §5.1).
fn pair_answer(p: &TokenPair) -> Response {
    with_key(StatusCode::OK, pair_json(p))
}

fn valid_username(u: &str) -> bool {
    (1..=64).contains(&u.len())
        && u.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.@-".contains(&b))
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
}

/// The source a request is counted against, by the rate limits and the
/// login gate: the client address (see [`forwarded_client`] when the server
/// trusts proxies, else the socket's), as a [`source_key`].
///
/// When `X-Forwarded-For` does not hold what the trusted proxies would have
/// written (missing, too few entries, a malformed one among the proxies'),
/// the request is counted against the socket address, which is the nearest
/// proxy's: all such requests share one budget, and none is counted
/// against an address the client chose.
pub fn client_source(app: &App, headers: &HeaderMap, peer: SocketAddr) -> IpAddr {
    if app.trusted_proxies == 0 {
        return source_key(peer.ip());
    }
    if let Some(client) = forwarded_client(headers, app.trusted_proxies) {
        return source_key(client);
    }
    static WARNED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if !WARNED.swap(true, std::sync::atomic::Ordering::Relaxed) {
        tracing::warn!(
            trusted_proxies = app.trusted_proxies,
            "a request's X-Forwarded-For has fewer entries than the trusted proxies, or a malformed one among theirs; such requests count against the socket address (logged once)"
        );
    }
    source_key(peer.ip())
}

/// The client address that `trusted_proxies` proxies vouch for in
/// `X-Forwarded-For`, or `None` when it is not there.
///
/// Each proxy appends the address it received the request from, so only
/// the rightmost entries are written by proxies; everything to their left
/// came from the client and may be anything. The nearest proxy appends the
/// rightmost entry; with `trusted_proxies` N, the client address is the
/// N-th entry from the right (N − 1 more hops skipped). Several
/// `X-Forwarded-For` lines count as one list, in order.
///
/// `None`, so that the caller falls back to the socket address, when
/// `trusted_proxies` is 0, when there are fewer entries than trusted
/// proxies (a request that did not pass through all of them), or when one
/// of the N rightmost entries is not an address (not what the proxies
/// write). An entry is an IPv4 or IPv6 address, optionally with a port
/// (`192.0.2.1:443`, `[2001:db8::1]:443`) or in brackets, with spaces
/// around it. Nothing left of the N rightmost entries is read.
pub fn forwarded_client(headers: &HeaderMap, trusted_proxies: usize) -> Option<IpAddr> {
    if trusted_proxies == 0 {
        return None;
    }
    let mut hops = headers
        .get_all("x-forwarded-for")
        .iter()
        .rev()
        .flat_map(|line| line.as_bytes().rsplit(|b| *b == b','))
        .take(trusted_proxies)
        .map(parse_hop);
    let mut client = None;
    for _ in 0..trusted_proxies {
        client = Some(hops.next()??);
    }
    client
}

/// One `X-Forwarded-For` entry: an address, optionally with a port or in
/// brackets.
fn parse_hop(entry: &[u8]) -> Option<IpAddr> {
    let entry = std::str::from_utf8(entry).ok()?.trim_matches([' ', '\t']);
    if let Ok(ip) = entry.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Ok(addr) = entry.parse::<SocketAddr>() {
        return Some(addr.ip());
    }
    entry
        .strip_prefix('[')?
        .strip_suffix(']')?
        .parse::<std::net::Ipv6Addr>()
        .ok()
        .map(IpAddr::V6)
}

/// The rate-limiting key of a client address: an IPv4 address as it is (an
/// IPv4-mapped IPv6 one as IPv4), an IPv6 address as its /64, the
/// smallest block a site is given: one host can use every address in it.
pub fn source_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let prefix = u128::from(v6) & !(u128::MAX >> 64);
            IpAddr::V6(std::net::Ipv6Addr::from(prefix))
        }
        v4 => v4,
    }
}

/// Takes one unit of `limit` for `key` from the limits in keyward's store.
///
/// `Err` is the answer to send instead: 429 with `Retry-After` when over
/// the limit (the same answer whichever limit refused, and whether or not
/// the name has an account), 429 after lost races on the record (`Busy`,
/// as elsewhere), and 503 when the store cannot be asked: the limits fail
/// closed, so a request is never let through uncounted.
async fn take(app: &App, limit: &Limit, key: &str) -> Result<(), Response> {
    let limits = app
        .kw
        .limits()
        .map_err(|e| unavailable("rate limits", &e))?;
    match limits.check(limit, key).await {
        Ok(_) => Ok(()),
        Err(Error::RateLimited { retry_after }) => Err(rate_limited(retry_after)),
        Err(Error::Busy) => Err(too_many(1)),
        Err(e) => Err(unavailable("rate limit check", &e)),
    }
}

/// Takes one password attempt from `source`'s budget and, when `username`
/// could name an account, from that account's: the limits `/login` and
/// `/register` share. A malformed name names no account; the source's
/// budget still bounds it.
async fn take_password_attempt(app: &App, source: IpAddr, username: &str) -> Result<(), Response> {
    take(app, &app.limits.login_per_source, &source.to_string()).await?;
    if valid_username(username) {
        take(app, &app.limits.login_per_account, username).await?;
    }
    Ok(())
}

async fn register(
    State(app): State<App>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Json(req): Json<Credentials>,
) -> Response {
    let source = client_source(&app, &headers, peer);
    if let Err(refused) = take_password_attempt(&app, source, &req.username).await {
        return refused;
    }
    if !valid_username(&req.username) {
        return error(
            StatusCode::BAD_REQUEST,
            json!({"error": "invalid_username"}),
        );
    }
    let passwords = app.kw.passwords().clone();
    let password = Password::from(req.password);
    let hash = match app
        .password_work(async move { passwords.hash_async(password).await })
        .await
    {
        Ok(h) => h,
        Err(Error::PasswordTooShort { min_chars }) => {
            return error(
                StatusCode::BAD_REQUEST,
                json!({"error": "weak_password", "min_length": min_chars}),
            );
        }
        Err(Error::PasswordTooLong { max_bytes }) => {
            return error(
                StatusCode::BAD_REQUEST,
                json!({"error": "weak_password", "max_bytes": max_bytes}),
            );
        }
        Err(Error::Busy) => return too_many(1),
        Err(e) => return unavailable("hashing", &e),
    };
    match app.users.insert(&req.username, &hash).await {
        Ok(true) => {
            tracing::info!("user registered");
            StatusCode::CREATED.into_response()
        }
        Ok(false) => error(StatusCode::CONFLICT, json!({"error": "user_exists"})),
        Err(e) => unavailable("user insert", &e),
    }
}

async fn login(
    State(app): State<App>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Json(req): Json<Credentials>,
) -> Response {
    let source = client_source(&app, &headers, peer);
    // Per-source and per-account limits, before any user lookup or PBKDF2
    // work: one store round trip each, none while this replica's deny
    // cache already knows the source is over its limit, so a flood is
    // answered at once.
    if let Err(refused) = take_password_attempt(&app, source, &req.username).await {
        return refused;
    }
    let busy = || {
        app.gate
            .ticket(source, Duration::from_secs(1), Instant::now());
        too_many(1)
    };
    let _admitted = if app.gate.redeem(source, Instant::now()) {
        None
    } else {
        let wait = app.kw.passwords().policy().queue_timeout;
        match tokio::time::timeout(wait, Arc::clone(&app.gate.fresh).acquire_owned()).await {
            Ok(Ok(permit)) => Some(permit),
            // Timed out (the semaphore is never closed).
            _ => return busy(),
        }
    };
    let invalid = || {
        error(
            StatusCode::UNAUTHORIZED,
            json!({"error": "invalid_credentials"}),
        )
    };
    let stored = if valid_username(&req.username) {
        match app.users.get(&req.username).await {
            Ok(s) => s,
            Err(e) => return unavailable("user lookup", &e),
        }
    } else {
        None
    };
    let password = Password::from(req.password);
    let verified = match stored {
        Some(stored) => {
            let passwords = app.kw.passwords().clone();
            app.password_work(async move { passwords.verify_async(password, stored).await })
                .await
        }
        // The same work and the same answer as a wrong password.
        None => {
            let passwords = app.kw.passwords().clone();
            app.password_work(async move { passwords.verify_unknown_user_async(password).await })
                .await
        }
    };
    let verified = match verified {
        Ok(v) => v,
        Err(Error::Busy) => return busy(),
        Err(Error::PasswordMismatch | Error::PasswordTooLong { .. }) => return invalid(),
        Err(e) => {
            // A malformed stored hash, a missing pepper: an operator problem,
            // logged; the client sees the same refusal.
            tracing::error!(error = %e, "login verification failed");
            return invalid();
        }
    };
    if let Some(new) = verified.rehash() {
        match app
            .users
            .replace_hash(&req.username, verified.old_hash(), new)
            .await
        {
            Ok(true) => {
                tracing::info!(scheme = %verified.scheme(), "password hash upgraded on login")
            }
            Ok(false) => tracing::info!("hash changed concurrently; rehash skipped"),
            Err(e) => tracing::warn!(error = %e, "rehash not stored"),
        }
    }
    // A user with a second factor gets a challenge, not tokens: the
    // session starts at `/login/mfa`.
    match has_second_factor(&app, &req.username).await {
        Ok(true) => {
            let challenge = match app.kw.sessions() {
                Ok(s) => s.challenge(&verified, &req.username).await,
                Err(e) => Err(e),
            };
            return mfa_required(challenge);
        }
        Ok(false) => {}
        Err(refused) => return refused,
    }
    match start_session(&app, &verified, &req.username, device(&headers).as_deref()).await {
        Ok(pair) => pair_answer(&pair),
        Err(e) => unavailable("session start", &e),
    }
}

/// What a user should recognise a session by on `GET /sessions`: the
/// request's `User-Agent`, made fit for keyward's session metadata (1 to
/// [`MAX_META_LEN`] bytes, no control characters). Bytes that are not
/// UTF-8 become U+FFFD, control characters (a tab, say, which a header
/// may hold) become spaces, and the text is cut to [`MAX_META_LEN`] bytes
/// on a character boundary. `None` without the header, or when nothing
/// is left of it.
pub fn device(headers: &HeaderMap) -> Option<String> {
    let raw = headers.get(header::USER_AGENT)?.as_bytes();
    let text: String = String::from_utf8_lossy(raw)
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let text = text.trim();
    let end = (0..=text.len().min(MAX_META_LEN))
        .rev()
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(0);
    let text = text.get(..end)?.trim_end();
    (!text.is_empty()).then(|| text.to_owned())
}

/// Starts `subject`'s session after a password check, with `device` as
/// its metadata when there is one. Metadata keyward refuses never costs
/// the user their login: the session starts without it (logged, without
/// the value).
async fn start_session(
    app: &App,
    proof: &Verified,
    subject: &str,
    device: Option<&str>,
) -> Result<TokenPair, Error> {
    let sessions = app.kw.sessions()?;
    if let Some(meta) = device {
        match sessions.start_with_meta(proof, subject, meta).await {
            Err(Error::Config(e)) => {
                tracing::warn!(error = %e, "session metadata refused; session started without it");
            }
            started => return started,
        }
    }
    sessions.start(proof, subject).await
}

async fn otp_send(
    State(app): State<App>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Json(req): Json<OtpSend>,
) -> Response {
    let source = client_source(&app, &headers, peer);
    if let Err(refused) = take(&app, &app.limits.code_send_per_source, &source.to_string()).await {
        return refused;
    }
    // 202 whether or not the name has an account or is locked, so the
    // answer tells neither. Only the send limit answers otherwise (429),
    // and it counts codes for every name alike.
    let accepted = StatusCode::ACCEPTED.into_response();
    if !valid_username(&req.username) {
        return accepted;
    }
    let otp = match app.kw.otp() {
        Ok(o) => o,
        Err(e) => return unavailable("otp", &e),
    };
    // A code for every username, account or not: the same store work and
    // the same send limit for both (keyward's, per name, kept in the store:
    // one a minute across all replicas), and afterwards `/otp/verify`
    // counts wrong guesses for both alike. Whether the name has an account
    // is looked up off the request path, by the mail task (see `Outgoing`).
    match otp.issue(&req.username, Purpose::Login).await {
        Ok(issued) => app.outgoing.send(&req.username, issued.code),
        // Locked: no code, and the same 202.
        Err(Error::Otp(_)) => {}
        Err(Error::RateLimited { retry_after }) => return rate_limited(retry_after),
        Err(Error::Busy) => return too_many(1),
        Err(e) => return unavailable("otp issue", &e),
    }
    accepted
}

/// One code check (a one-time code, a TOTP code or a recovery code) from
/// the request's source: per source only, since per name the subject's
/// lockout (3 wrong codes of any kind) is the limit.
async fn take_code_check(app: &App, headers: &HeaderMap, peer: SocketAddr) -> Result<(), Response> {
    let source = client_source(app, headers, peer);
    take(app, &app.limits.code_verify_per_source, &source.to_string()).await
}

async fn otp_verify(
    State(app): State<App>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Json(req): Json<OtpCheck>,
) -> Response {
    if let Err(refused) = take_code_check(&app, &headers, peer).await {
        return refused;
    }
    let (otp, sessions) = match (app.kw.otp(), app.kw.sessions()) {
        (Ok(o), Ok(s)) => (o, s),
        (Err(e), _) | (_, Err(e)) => return unavailable("otp", &e),
    };
    if !valid_username(&req.username) {
        return error(
            StatusCode::UNAUTHORIZED,
            json!({"error": "invalid", "attempts_left": 0}),
        );
    }
    match otp.verify(&req.username, Purpose::Login, &req.code).await {
        Ok(proof) => {
            // Codes go to accounts only, but one is issued for any name:
            // a lucky guess for a name without an account mints nothing.
            // (Only a right code reaches this lookup.)
            match app.users.get(&req.username).await {
                Ok(Some(_)) => {}
                Ok(None) => {
                    return error(StatusCode::UNAUTHORIZED, json!({"error": "no_code"}));
                }
                Err(e) => return unavailable("user lookup", &e),
            }
            // An emailed code stands in for the password, not for the
            // second factor.
            match has_second_factor(&app, &req.username).await {
                Ok(true) => return mfa_required(sessions.challenge_after_otp(proof).await),
                Ok(false) => {}
                Err(refused) => return refused,
            }
            match sessions.start_with_otp(proof).await {
                Ok(pair) => pair_answer(&pair),
                Err(e) => unavailable("session start", &e),
            }
        }
        Err(Error::Otp(OtpError::Invalid { attempts_left })) => error(
            StatusCode::UNAUTHORIZED,
            json!({"error": "invalid", "attempts_left": attempts_left}),
        ),
        Err(Error::Otp(OtpError::Locked { retry_after })) => error(
            StatusCode::LOCKED,
            json!({"error": "locked", "retry_after": retry_after.as_secs()}),
        ),
        Err(Error::Otp(OtpError::LockedUntilUnlock)) => error(
            StatusCode::LOCKED,
            json!({"error": "locked", "retry_after": null}),
        ),
        Err(Error::Otp(e)) => error(StatusCode::UNAUTHORIZED, json!({"error": e.reason()})),
        Err(e) => unavailable("otp verify", &e),
    }
}

async fn refresh(State(app): State<App>, Json(req): Json<RefreshRequest>) -> Response {
    let sessions = match app.kw.sessions() {
        Ok(s) => s,
        Err(e) => return unavailable("sessions", &e),
    };
    match sessions.refresh(&req.refresh_token).await {
        Ok(pair) => pair_answer(&pair),
        Err(Error::Session(e)) => error(StatusCode::UNAUTHORIZED, json!({"error": e.reason()})),
        Err(Error::Busy) => too_many(1),
        Err(e) => unavailable("refresh", &e),
    }
}

async fn logout(State(app): State<App>, Json(req): Json<RefreshRequest>) -> Response {
    let sessions = match app.kw.sessions() {
        Ok(s) => s,
        Err(e) => return unavailable("sessions", &e),
    };
    match sessions.revoke(&req.refresh_token).await {
        // Logging out with a dead or foreign token leaves nothing to do.
        Ok(_) | Err(Error::Session(_)) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => unavailable("logout", &e),
    }
}

async fn logout_all(State(app): State<App>, headers: HeaderMap) -> Response {
    let sessions = match app.kw.sessions() {
        Ok(s) => s,
        Err(e) => return unavailable("sessions", &e),
    };
    let Some(token) = bearer(&headers) else {
        return error(StatusCode::UNAUTHORIZED, json!({"error": "invalid_token"}));
    };
    let claims = match sessions.authenticate_strict(token).await {
        Ok(c) => c,
        Err(Error::Jwt(_) | Error::Session(_)) => {
            return error(StatusCode::UNAUTHORIZED, json!({"error": "invalid_token"}));
        }
        Err(e) => return unavailable("authenticate", &e),
    };
    match sessions.revoke_all(&claims.sub).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => unavailable("logout-all", &e),
    }
}

/// `GET /me`: who the bearer is, by an access token (with how its session
/// was authenticated: RFC 8176 `amr`) or an API key.
async fn me(State(app): State<App>, headers: HeaderMap) -> Response {
    match caller(&app, &headers).await {
        Ok(Caller::User(c)) => {
            Json(json!({"sub": c.sub, "sid": c.sid, "exp": c.exp, "amr": c.amr})).into_response()
        }
        Ok(Caller::Key(k)) => Json(json!({
            "sub": k.owner(),
            "key_id": k.id(),
            "scopes": k.scopes().collect::<Vec<_>>(),
            "rolled_until": k.rolled_until(),
        }))
        .into_response(),
        Err(refused) => refused,
    }
}

async fn jwks(State(app): State<App>) -> Response {
    match app.kw.jwt() {
        Ok(j) => (
            [(header::CONTENT_TYPE, "application/json")],
            j.jwks().to_owned(),
        )
            .into_response(),
        Err(e) => unavailable("jwks", &e),
    }
}

// ---- API keys ----
//
// A logged-in user manages their own keys with their access token:
//
// - `POST /api-keys` `{"name", "scopes"?, "expires_in"?}`: 201 with the key,
//   shown this once (`Cache-Control: no-store`).
// - `GET /api-keys`: 200 `{"keys": [...]}`, the public views, newest first.
// - `POST /api-keys/{id}/roll` `{"overlap_secs"?}` (or no body: 0): 200 with
//   the new key; the old one works `overlap_secs` more.
// - `DELETE /api-keys/{id}`: 204.
//
// The management routes take an access token only, checked against its
// session (`authenticate_strict`): an API key cannot mint keys wider than
// itself or outlive its own revocation by making another, and a logged-out
// session's access token manages nothing. `/me` and `/api/reports` take
// either an access token or `Authorization: Bearer <api key>`.
//
// Answers: 400 `bad_request` for a body that is not the JSON asked for, 400
// `bad_spec` (with the library's `detail`, which names the field, never
// its value) for a spec the library refuses; 401 `invalid_token` for a
// missing or malformed bearer, 401 with the key's reason (`unknown`,
// `revoked`, `expired`, `disabled`) for a refused key; 403
// `missing_scope`; 404 `not_found` alike for an unknown, malformed or
// revoked id and for another user's key, so that ids tell nothing; 409
// `too_many_keys` (with `max`) when the owner holds the policy's limit of
// live keys (the request is well formed; the owner's state refuses it,
// and revoking a key makes room), and 409 `expired` for rolling an expired
// key; 429 for `Busy`, 503 when the store fails.

/// The scope `GET /api/reports` asks of an API key.
pub const REPORTS_SCOPE: &str = "reports:read";

/// The longest overlap a roll grants: a week. A longer one would keep the
/// old key alive for as long as a key that was never rolled.
pub const MAX_ROLL_OVERLAP_SECS: u64 = 7 * 86_400;

/// The bearer of a request to a route that takes either credential.
enum Caller {
    /// A logged-in user, by an access token: the user's full authority.
    User(AccessClaims),
    /// A client, by an API key: its owner's authority, narrowed to the
    /// key's scopes.
    Key(ApiKeyVerified),
}

/// `POST /api-keys`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewKey {
    name: String,
    #[serde(default)]
    scopes: Vec<String>,
    /// Seconds; absent or `null` for a key that lives until revoked.
    #[serde(default)]
    expires_in: Option<u64>,
}

/// `POST /api-keys/{id}/roll`; an empty body is an overlap of 0.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Roll {
    #[serde(default)]
    overlap_secs: u64,
}

fn invalid_token() -> Response {
    error(StatusCode::UNAUTHORIZED, json!({"error": "invalid_token"}))
}

fn bad_request() -> Response {
    error(StatusCode::BAD_REQUEST, json!({"error": "bad_request"}))
}

fn not_found() -> Response {
    error(StatusCode::NOT_FOUND, json!({"error": "not_found"}))
}

/// An answer that holds a key: never cached on the way.
fn with_key(status: StatusCode, body: serde_json::Value) -> Response {
    let mut r = error(status, body);
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// A key refused as a credential: 401 with its reason, 403 for a missing
/// scope, 401 `invalid_token` for a malformed key.
fn key_refused(what: &str, e: Error) -> Response {
    match e {
        Error::ApiKey(e @ ApiKeyError::MissingScope(_)) => {
            error(StatusCode::FORBIDDEN, json!({"error": e.reason()}))
        }
        Error::ApiKey(e) => error(StatusCode::UNAUTHORIZED, json!({"error": e.reason()})),
        Error::Token(_) => invalid_token(),
        Error::Busy => too_many(1),
        e => unavailable(what, &e),
    }
}

/// A key-management call the library refused.
fn key_admin_refused(what: &str, e: Error) -> Response {
    match e {
        Error::ApiKey(ApiKeyError::BadSpec(detail)) => error(
            StatusCode::BAD_REQUEST,
            json!({"error": "bad_spec", "detail": detail}),
        ),
        // A bad prefix; this server names none, but keep the answer a 400.
        Error::Token(_) => error(StatusCode::BAD_REQUEST, json!({"error": "bad_spec"})),
        Error::ApiKey(e @ ApiKeyError::TooManyKeys { max }) => error(
            StatusCode::CONFLICT,
            json!({"error": e.reason(), "max": max}),
        ),
        Error::ApiKey(e @ ApiKeyError::Expired) => {
            error(StatusCode::CONFLICT, json!({"error": e.reason()}))
        }
        // Revoked or forgotten between the ownership check and the call.
        Error::ApiKey(ApiKeyError::Unknown | ApiKeyError::Revoked) => not_found(),
        Error::Busy => too_many(1),
        e => unavailable(what, &e),
    }
}

/// Who presents the request's bearer: an access token (a JWT: three
/// dot-separated parts) or an API key (which never holds a dot).
async fn caller(app: &App, headers: &HeaderMap) -> Result<Caller, Response> {
    let Some(token) = bearer(headers) else {
        return Err(invalid_token());
    };
    if token.contains('.') {
        return match app.kw.jwt().and_then(|j| j.verify(token)) {
            Ok(c) => Ok(Caller::User(c)),
            Err(_) => Err(invalid_token()),
        };
    }
    let keys = app.kw.api_keys().map_err(|e| unavailable("api keys", &e))?;
    keys.verify(token)
        .await
        .map(Caller::Key)
        .map_err(|e| key_refused("api key verify", e))
}

/// The user of a key-management route: an access token whose session is
/// still alive. API keys are refused here (see the routes' comment).
async fn session_user(app: &App, headers: &HeaderMap) -> Result<String, Response> {
    session_claims(app, headers).await.map(|c| c.sub)
}

/// The claims of the request's access token, checked against its session
/// (`authenticate_strict`): 401 `invalid_token` for a missing, malformed,
/// expired or forged token, for one whose session has ended, and for an
/// API key.
async fn session_claims(app: &App, headers: &HeaderMap) -> Result<AccessClaims, Response> {
    let sessions = app.kw.sessions().map_err(|e| unavailable("sessions", &e))?;
    let Some(token) = bearer(headers) else {
        return Err(invalid_token());
    };
    match sessions.authenticate_strict(token).await {
        Ok(c) => Ok(c),
        Err(Error::Jwt(_) | Error::Session(_)) => Err(invalid_token()),
        Err(Error::Busy) => Err(too_many(1)),
        Err(e) => Err(unavailable("authenticate", &e)),
    }
}

/// Checks that key `id` belongs to `owner`. An unknown, malformed or
/// revoked id and another owner's key all get the same 404.
async fn owned_key(keys: &ApiKeys, owner: &str, id: &str) -> Result<ApiKeyView, Response> {
    match keys.get(id).await {
        Ok(view) if view.owner == owner => Ok(view),
        Ok(view) => {
            // `view.id` is a well-formed id, safe to log; the owner is not
            // logged.
            tracing::warn!(key_id = %view.id, "request for another user's api key refused");
            Err(not_found())
        }
        Err(Error::ApiKey(
            ApiKeyError::Unknown | ApiKeyError::Revoked | ApiKeyError::BadSpec(_),
        )) => Err(not_found()),
        Err(Error::Busy) => Err(too_many(1)),
        Err(e) => Err(unavailable("api key lookup", &e)),
    }
}

/// `GET /api/reports`: the caller's reports. An API key needs the
/// `reports:read` scope; an access token carries its user's full
/// authority.
async fn reports(State(app): State<App>, headers: HeaderMap) -> Response {
    let owner = match caller(&app, &headers).await {
        Ok(Caller::User(c)) => c.sub,
        Ok(Caller::Key(k)) => match k.require_scope(REPORTS_SCOPE) {
            Ok(()) => k.owner().to_owned(),
            Err(e) => return key_refused("reports", e),
        },
        Err(refused) => return refused,
    };
    Json(json!({"owner": owner, "reports": []})).into_response()
}

/// `POST /api-keys`.
async fn create_key(State(app): State<App>, headers: HeaderMap, body: Bytes) -> Response {
    let owner = match session_user(&app, &headers).await {
        Ok(o) => o,
        Err(refused) => return refused,
    };
    let Ok(req) = serde_json::from_slice::<NewKey>(&body) else {
        return bad_request();
    };
    let mut spec = KeySpec::named(req.name);
    for scope in req.scopes {
        spec = spec.scope(scope);
    }
    if let Some(secs) = req.expires_in {
        spec = spec.expires_in(Duration::from_secs(secs));
    }
    let keys = match app.kw.api_keys() {
        Ok(k) => k,
        Err(e) => return unavailable("api keys", &e),
    };
    match keys.create(&owner, spec).await {
        Ok(made) => {
            let v = made.view();
            with_key(
                StatusCode::CREATED,
                json!({
                    "key": made.key().unprotected_as_str(),
                    "id": v.id,
                    "name": v.name,
                    "scopes": v.scopes,
                    "created_at": v.created_at,
                    "expires_at": v.expires_at,
                }),
            )
        }
        Err(e) => key_admin_refused("api key create", e),
    }
}

/// `GET /api-keys`.
async fn list_keys(State(app): State<App>, headers: HeaderMap) -> Response {
    let owner = match session_user(&app, &headers).await {
        Ok(o) => o,
        Err(refused) => return refused,
    };
    let listed = match app.kw.api_keys() {
        Ok(k) => k.list(&owner).await,
        Err(e) => return unavailable("api keys", &e),
    };
    match listed {
        Ok(views) => Json(json!({"keys": views})).into_response(),
        Err(e) => key_admin_refused("api key list", e),
    }
}

/// `POST /api-keys/{id}/roll`.
async fn roll_key(
    State(app): State<App>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let owner = match session_user(&app, &headers).await {
        Ok(o) => o,
        Err(refused) => return refused,
    };
    let req = if body.is_empty() {
        Roll::default()
    } else {
        match serde_json::from_slice::<Roll>(&body) {
            Ok(r) => r,
            Err(_) => return bad_request(),
        }
    };
    if req.overlap_secs > MAX_ROLL_OVERLAP_SECS {
        return error(
            StatusCode::BAD_REQUEST,
            json!({"error": "bad_request", "max_overlap_secs": MAX_ROLL_OVERLAP_SECS}),
        );
    }
    let keys = match app.kw.api_keys() {
        Ok(k) => k,
        Err(e) => return unavailable("api keys", &e),
    };
    if let Err(refused) = owned_key(keys, &owner, &id).await {
        return refused;
    }
    match keys.roll(&id, Duration::from_secs(req.overlap_secs)).await {
        Ok(rolled) => with_key(
            StatusCode::OK,
            json!({
                "key": rolled.key().unprotected_as_str(),
                "id": rolled.id(),
                "previous_valid_until": rolled.previous_valid_until(),
            }),
        ),
        Err(e) => key_admin_refused("api key roll", e),
    }
}

/// `DELETE /api-keys/{id}`.
async fn revoke_key(
    State(app): State<App>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let owner = match session_user(&app, &headers).await {
        Ok(o) => o,
        Err(refused) => return refused,
    };
    let keys = match app.kw.api_keys() {
        Ok(k) => k,
        Err(e) => return unavailable("api keys", &e),
    };
    if let Err(refused) = owned_key(keys, &owner, &id).await {
        return refused;
    }
    match keys.revoke(&id).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => key_admin_refused("api key revoke", e),
    }
}

// ---- Sessions ("your devices") ----
//
// A logged-in user sees and ends their own sessions with their access
// token, checked against its session (`authenticate_strict`, as for the
// API-key routes; an API key is refused):
//
// - `GET /sessions`: 200 `{"sessions": [...]}`, the live sessions, oldest
//   first, each `{"session", "started_at", "refreshed_at", "generation",
//   "expires_at", "meta", "current"}`. `meta` is the `User-Agent` the
//   login sent (see [`device`]), or `null`; `current` marks the session
//   of the access token asking.
// - `DELETE /sessions/{id}`: 204. The session's refresh token is refused
//   at once, and its access tokens at once on the routes that check the
//   session (`authenticate_strict`); elsewhere they expire within their
//   lifetime. Ending the current session is allowed: it logs this device
//   out. Ending a session already revoked answers 204 again while keyward
//   keeps its record (until the session's absolute end), 404 after.
//
// Answers: 401 `invalid_token` for a missing or refused bearer; 404
// `unknown` alike for an id that names no session, a malformed one and
// another user's session (keyward checks the owner in the same
// transaction as the revocation), so that ids tell nothing; 429 for
// `Busy`, 503 when the store fails.

/// One entry of `GET /sessions`.
fn session_entry(info: &SessionInfo, current_sid: &str) -> serde_json::Value {
    json!({
        "session": info.id,
        "started_at": info.started_at,
        "refreshed_at": info.refreshed_at,
        "generation": info.generation,
        "expires_at": info.expires_at,
        "meta": info.meta,
        "current": info.id == current_sid,
    })
}

/// `GET /sessions`.
async fn list_sessions(State(app): State<App>, headers: HeaderMap) -> Response {
    let claims = match session_claims(&app, &headers).await {
        Ok(c) => c,
        Err(refused) => return refused,
    };
    let listed = match app.kw.sessions() {
        Ok(s) => s.list(&claims.sub).await,
        Err(e) => return unavailable("sessions", &e),
    };
    match listed {
        Ok(infos) => {
            let sessions: Vec<_> = infos
                .iter()
                .map(|info| session_entry(info, &claims.sid))
                .collect();
            Json(json!({"sessions": sessions})).into_response()
        }
        Err(Error::Busy) => too_many(1),
        Err(e) => unavailable("session list", &e),
    }
}

/// `DELETE /account`: erases the caller from keyward (sessions, API keys,
/// codes, lockout state), then deletes its user row. In that order: if the
/// row cannot be deleted, the caller can still sign in and ask again,
/// while nothing of what keyward held survives.
async fn delete_account(State(app): State<App>, headers: HeaderMap) -> Response {
    let claims = match session_claims(&app, &headers).await {
        Ok(c) => c,
        Err(refused) => return refused,
    };
    match app.kw.erase(&claims.sub).await {
        Ok(_) => {}
        Err(Error::Busy) => return too_many(1),
        Err(e) => return unavailable("erase", &e),
    }
    match app.users.delete(&claims.sub).await {
        Ok(_) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => unavailable("user row delete after an erase", &e),
    }
}

/// `DELETE /sessions/{id}`.
async fn revoke_session(
    State(app): State<App>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let claims = match session_claims(&app, &headers).await {
        Ok(c) => c,
        Err(refused) => return refused,
    };
    let revoked = match app.kw.sessions() {
        Ok(s) => s.revoke_session(&claims.sub, &id).await,
        Err(e) => return unavailable("sessions", &e),
    };
    match revoked {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(Error::Session(e @ SessionError::Unknown)) => {
            error(StatusCode::NOT_FOUND, json!({"error": e.reason()}))
        }
        Err(Error::Busy) => too_many(1),
        Err(e) => unavailable("session revoke", &e),
    }
}

// ---- The second factor: TOTP, recovery codes and the MFA challenge. ----

/// The issuer an authenticator app shows beside the account name.
pub const TOTP_ISSUER: &str = "keyward server";

/// Whether `username` has a confirmed second factor, so that a login must
/// pass it too.
async fn has_second_factor(app: &App, username: &str) -> Result<bool, Response> {
    let totp = app.kw.totp().map_err(|e| unavailable("totp", &e))?;
    totp.is_enrolled(username)
        .await
        .map_err(|e| unavailable("totp lookup", &e))
}

/// The answer to a login whose first factor passed for a user with a
/// second factor: a challenge for `/login/mfa`, in place of tokens.
fn mfa_required(challenge: Result<keyward::MfaChallenge, Error>) -> Response {
    match challenge {
        Ok(c) => with_key(
            StatusCode::OK,
            json!({
                "mfa_required": true,
                "mfa_token": c.unprotected_as_str(),
                "expires_in": keyward::session::MFA_CHALLENGE_TTL_SECS,
                "methods": ["totp", "recovery_code"],
            }),
        ),
        Err(Error::Busy) => too_many(1),
        Err(e) => unavailable("mfa challenge", &e),
    }
}

/// A second-factor call the library refused: 401 for a wrong, replayed
/// or used code, 423 for a lock, 409 for a factor in the wrong state.
fn totp_refused(what: &str, e: Error) -> Response {
    match e {
        Error::Totp(TotpError::Invalid { attempts_left }) => error(
            StatusCode::UNAUTHORIZED,
            json!({"error": "invalid", "attempts_left": attempts_left}),
        ),
        Error::Totp(e @ (TotpError::Replayed | TotpError::Used)) => {
            error(StatusCode::UNAUTHORIZED, json!({"error": e.reason()}))
        }
        Error::Totp(e) => error(StatusCode::CONFLICT, json!({"error": e.reason()})),
        Error::Otp(OtpError::Locked { retry_after }) => error(
            StatusCode::LOCKED,
            json!({"error": "locked", "retry_after": retry_after.as_secs()}),
        ),
        Error::Otp(OtpError::LockedUntilUnlock) => error(
            StatusCode::LOCKED,
            json!({"error": "locked", "retry_after": null}),
        ),
        Error::Session(e @ SessionError::ChallengeInvalid) => {
            error(StatusCode::UNAUTHORIZED, json!({"error": e.reason()}))
        }
        // The account is being deleted.
        Error::Erasing => error(StatusCode::CONFLICT, json!({"error": "erasing"})),
        Error::Busy => too_many(1),
        e => unavailable(what, &e),
    }
}

/// A route that changes the second factor itself (regenerate the
/// recovery codes, disable it) asks for a session that passed it:
/// a stolen password alone must not remove the factor. 401 with RFC 9470's
/// `insufficient_user_authentication` otherwise: the refusal, or `None`.
pub fn step_up(claims: &AccessClaims) -> Option<Response> {
    if claims.require_mfa().is_ok() {
        return None;
    }
    let mut r = error(StatusCode::UNAUTHORIZED, json!({"error": "mfa_required"}));
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static(
            "Bearer error=\"insufficient_user_authentication\", \
             error_description=\"log in with the second factor\"",
        ),
    );
    Some(r)
}

/// `POST /login/mfa`: the challenge from `/login` (or `/otp/verify`) with
/// either a code from the authenticator app or a recovery code.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MfaLogin {
    mfa_token: String,
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    recovery_code: Option<String>,
}

async fn login_mfa(
    State(app): State<App>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Json(req): Json<MfaLogin>,
) -> Response {
    if let Err(refused) = take_code_check(&app, &headers, peer).await {
        return refused;
    }
    let (totp, sessions) = match (app.kw.totp(), app.kw.sessions()) {
        (Ok(t), Ok(s)) => (t, s),
        (Err(e), _) | (_, Err(e)) => return unavailable("totp", &e),
    };
    let subject = match sessions.challenge_subject(&req.mfa_token).await {
        Ok(s) => s,
        Err(e) => return totp_refused("mfa challenge", e),
    };
    let device = device(&headers);
    let (started, left) = match (&req.code, &req.recovery_code) {
        (Some(code), None) => match totp.verify(&subject, code).await {
            Ok(proof) => (
                sessions
                    .start_after_challenge(&req.mfa_token, proof, device.as_deref())
                    .await,
                None,
            ),
            Err(e) => return totp_refused("totp verify", e),
        },
        (None, Some(code)) => match totp.recover(&subject, code).await {
            Ok(proof) => {
                let left = proof.left();
                (
                    sessions
                        .start_after_challenge(&req.mfa_token, proof, device.as_deref())
                        .await,
                    Some(left),
                )
            }
            Err(e) => return totp_refused("recovery code", e),
        },
        _ => return bad_request(),
    };
    match started {
        Ok(pair) => {
            let mut body = pair_json(&pair);
            if let Some(left) = left {
                body["recovery_codes_left"] = json!(left);
            }
            with_key(StatusCode::OK, body)
        }
        // `device` is always metadata keyward takes, and the proof is for
        // the challenge's subject: any other refusal is the store's.
        Err(e) => totp_refused("session start", e),
    }
}

/// `GET /totp`: whether the caller has a second factor, and how many
/// recovery codes are left.
async fn totp_status(State(app): State<App>, headers: HeaderMap) -> Response {
    let claims = match session_claims(&app, &headers).await {
        Ok(c) => c,
        Err(refused) => return refused,
    };
    let left = match app.kw.totp() {
        Ok(t) => t.recovery_left(&claims.sub).await,
        Err(e) => return unavailable("totp", &e),
    };
    match left {
        Ok(left) => Json(json!({
            "enrolled": left.is_some(),
            "recovery_codes_left": left,
        }))
        .into_response(),
        Err(e) => totp_refused("totp status", e),
    }
}

/// `POST /totp/enroll`: a new, unconfirmed factor for the caller, as the
/// `otpauth://` URI, its QR code (SVG, for a browser page to show) and
/// the secret for typing in. Shown once; `POST /totp/confirm` with a
/// first code makes it count.
async fn totp_enroll(State(app): State<App>, headers: HeaderMap) -> Response {
    let claims = match session_claims(&app, &headers).await {
        Ok(c) => c,
        Err(refused) => return refused,
    };
    let enrolled = match app.kw.totp() {
        Ok(t) => t.enroll(&claims.sub, TOTP_ISSUER, &claims.sub).await,
        Err(e) => return unavailable("totp", &e),
    };
    let enrollment = match enrolled {
        Ok(e) => e,
        Err(e) => return totp_refused("totp enroll", e),
    };
    let uri = enrollment.uri().unprotected_as_str();
    let qr = match qr_svg(uri) {
        Ok(svg) => svg,
        Err(e) => return unavailable("qr code", &e),
    };
    with_key(
        StatusCode::CREATED,
        json!({
            "factor": enrollment.factor(),
            "uri": uri,
            "secret": enrollment.secret().unprotected_as_str(),
            "qr_svg": qr.as_str(),
        }),
    )
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TotpCode {
    code: String,
}

/// `POST /totp/confirm`: the first code from the app confirms the factor;
/// the answer holds the recovery codes, shown once. Every session of the
/// caller ends: the next login asks for the factor.
async fn totp_confirm(
    State(app): State<App>,
    headers: HeaderMap,
    Json(req): Json<TotpCode>,
) -> Response {
    let claims = match session_claims(&app, &headers).await {
        Ok(c) => c,
        Err(refused) => return refused,
    };
    let confirmed = match app.kw.totp() {
        Ok(t) => t.confirm(&claims.sub, &req.code).await,
        Err(e) => return unavailable("totp", &e),
    };
    let codes = match confirmed {
        Ok(codes) => codes,
        Err(e) => return totp_refused("totp confirm", e),
    };
    // Every session so far, this one included, passed the password alone:
    // they end, and the next login asks for the factor. A session taken
    // before the factor existed does not outlive it.
    let revoked = match app.kw.sessions() {
        Ok(s) => s.revoke_all(&claims.sub).await,
        Err(e) => Err(e),
    };
    if let Err(e) = revoked {
        // The factor counts already; the sessions end at their expiry.
        tracing::error!(error = %e, "sessions not revoked after a second factor was confirmed");
    }
    recovery_body(&codes)
}

fn recovery_body(codes: &keyward::totp::RecoveryCodes) -> Response {
    let codes: Vec<&str> = codes
        .codes()
        .iter()
        .map(|c| c.unprotected_as_str())
        .collect();
    with_key(StatusCode::OK, json!({"recovery_codes": codes}))
}

/// `POST /totp/recovery`: a new set of recovery codes; the old set stops
/// working. Needs a session that passed the second factor.
async fn totp_regenerate(State(app): State<App>, headers: HeaderMap) -> Response {
    let claims = match session_claims(&app, &headers).await {
        Ok(c) => c,
        Err(refused) => return refused,
    };
    if let Some(refused) = step_up(&claims) {
        return refused;
    }
    let codes = match app.kw.totp() {
        Ok(t) => t.regenerate_recovery(&claims.sub).await,
        Err(e) => return unavailable("totp", &e),
    };
    match codes {
        Ok(codes) => recovery_body(&codes),
        Err(e) => totp_refused("totp recovery", e),
    }
}

/// `DELETE /totp`: removes the caller's factor and its recovery codes.
/// Needs a session that passed the second factor, unless the factor was
/// never confirmed.
async fn totp_disable(State(app): State<App>, headers: HeaderMap) -> Response {
    let claims = match session_claims(&app, &headers).await {
        Ok(c) => c,
        Err(refused) => return refused,
    };
    let totp = match app.kw.totp() {
        Ok(t) => t,
        Err(e) => return unavailable("totp", &e),
    };
    match has_second_factor(&app, &claims.sub).await {
        Ok(true) => {
            if let Some(refused) = step_up(&claims) {
                return refused;
            }
        }
        Ok(false) => {}
        Err(refused) => return refused,
    }
    match totp.disable(&claims.sub).await {
        Ok(true) => StatusCode::NO_CONTENT.into_response(),
        Ok(false) => not_found(),
        Err(e) => totp_refused("totp disable", e),
    }
}
