//! A small, real auth backend on axum: register, log in (with rehash on
//! login), refresh with reuse detection, log out, one-time codes, `/me`,
//! the JWKS, and API keys: a logged-in user creates, lists, rolls and
//! revokes their keys under `/api-keys`, and `/me` and `/api/reports` (which
//! asks a key for the `reports:read` scope) take `Authorization: Bearer`
//! with either an access token or an API key (see `app.rs`; the auth routes are keyward's `AuthRoutes`). A logged-in
//! user lists their devices under `GET /sessions`, signs one out with
//! `DELETE /sessions/{id}`, and deletes their account with
//! `DELETE /account`, which erases everything keyward holds for them.
//!
//! A second factor: `POST /totp/enroll` answers the `otpauth://` URI, its
//! QR code as SVG and the secret; `POST /totp/confirm` with the app's
//! first code makes it count and answers the recovery codes, once. From
//! then on `/login` (and `/otp/verify`) answer a challenge,
//! `{"mfa_required": true, "mfa_token": …}`, in place of tokens, and
//! `POST /login/mfa` with the challenge and a `code` or a
//! `recovery_code` starts the session. `/me` shows how the session was
//! authenticated (`amr`: `pwd`, `otp`, `mfa`). `GET /totp` tells whether
//! a factor is enrolled; `POST /totp/recovery` (a new set of recovery
//! codes) and `DELETE /totp` need a session that passed the factor.
//!
//! ```text
//! cargo run --release --example server --features axum[,postgres,redis] -- \
//!     [--listen 127.0.0.1:8080] [--store URL] [--users URL] [--limits URL] [--keyring PATH] \
//!     [--outbox PATH] [--trusted-proxies N | --trust-forwarded-for] [--hash-nice N]
//! ```
//!
//! `--store` is keyward's store: `sqlite:PATH` (default
//! `sqlite:keyward-server.db`), `postgres://…` (feature `postgres`) or
//! `redis://…[?prefix=…]` (feature `redis`). `--users` is the application's
//! user table: `sqlite:PATH` or `postgres://…`; it defaults to the store's
//! own database, and on Redis to `sqlite:keyward-server-users.db`. Several
//! replicas share the store, the user table and the key ring file.
//!
//! The rate limits on `/login`, `/register`, `/otp/send` and `/otp/verify`
//! (per source address, and per account name where one applies) live in
//! the store too, so replicas that share a store share the counts: two
//! replicas let one source make exactly as many password attempts as one
//! replica would (see `keyward::axum::RateLimits`). When the store cannot be asked,
//! those routes answer 503 rather than let a request through uncounted.
//! `--limits URL` keeps those counts in a store of their own (any store
//! URL, such as `redis://…` beside a PostgreSQL store) rather than in the
//! store itself; replicas must then share it as they share the store, and
//! `keyward limit reset --store URL …` resets a count there.
//! `--keyring` (default `keyward.keys`) is created, mode 0600, when it does
//! not exist. Password hashing runs on threads of its own at nice
//! `--hash-nice` (default 10; 0 is the server's own priority), so that
//! request handlers never wait for a core behind PBKDF2.
//!
//! Behind N proxies that each append to `X-Forwarded-For` (nginx's
//! `$proxy_add_x_forwarded_for`, an AWS ALB), `--trusted-proxies N` counts
//! each request against the N-th entry from the right, the client address
//! the outermost trusted proxy saw; `--trust-forwarded-for` is
//! `--trusted-proxies 1`. Without either, the socket address counts. IPv6
//! clients are counted by their /64. `--outbox PATH` appends the codes
//! sent to a file, created with mode 0600; one that others may read is
//! refused.
//!
//! ```text
//! cargo run --release --example server --features axum -- flood [--clients N] [--replicas N --store URL] …
//! cargo run --release --example server --features axum,redis -- flood --source-limit
//! ```
//!
//! measure a login flood against the server instead, and the per-source
//! login limit with one replica and with two on one Redis (see `flood.rs`,
//! which records the figures).

mod app;
mod flood;
#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use keyward::axum::{CodeSender, MAX_TRUSTED_PROXIES, RateLimits};
use keyward::{JwtAlg, KeyRing, Keyward};

struct Args {
    listen: SocketAddr,
    store: String,
    users: Option<String>,
    limits: Option<String>,
    outbox: Option<PathBuf>,
    keyring: PathBuf,
    trusted_proxies: usize,
    hash_nice: i32,
}

/// The default priority of the password hashing threads (see
/// `keyward::axum::hashing_runtime`).
const DEFAULT_HASH_NICE: i32 = 10;

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
        store: "sqlite:keyward-server.db".into(),
        users: None,
        limits: None,
        outbox: None,
        keyring: PathBuf::from("keyward.keys"),
        trusted_proxies: 0,
        hash_nice: DEFAULT_HASH_NICE,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--listen" => args.listen = value()?.parse().map_err(|e| format!("--listen: {e}"))?,
            "--store" => args.store = value()?,
            "--users" => args.users = Some(value()?),
            "--limits" => args.limits = Some(value()?),
            "--outbox" => args.outbox = Some(PathBuf::from(value()?)),
            "--keyring" => args.keyring = PathBuf::from(value()?),
            // One proxy, unless --trusted-proxies says more.
            "--trust-forwarded-for" => args.trusted_proxies = args.trusted_proxies.max(1),
            "--trusted-proxies" => {
                args.trusted_proxies = value()?
                    .parse()
                    .ok()
                    .filter(|n| (0..=MAX_TRUSTED_PROXIES).contains(n))
                    .ok_or("--trusted-proxies: a number from 0 to 16")?;
            }
            "--hash-nice" => {
                args.hash_nice = value()?
                    .parse()
                    .ok()
                    .filter(|n| (0..=19).contains(n))
                    .ok_or("--hash-nice: a number from 0 to 19")?;
            }
            other if other.starts_with("--") && !other.contains([':', '@', '/']) => {
                return Err(format!("unknown option {other}"));
            }
            // Not echoed: a stray argument may be a URL with a password.
            _ => return Err("unexpected argument (not shown); options start with --".into()),
        }
    }
    Ok(args)
}

/// Everything that can fail, as one line that never holds a store URL.
async fn run(args: Args, hashing: tokio::runtime::Handle) -> Result<(), String> {
    let store = app::open_store(&args.store)
        .await
        .map_err(|e| format!("--store: {e}"))?;
    let users_url = match &args.users {
        Some(url) => url.as_str(),
        None => {
            if app::scheme(&args.store) == Some("redis") {
                tracing::warn!(
                    "the user table is a local SQLite file; replicas sharing Redis need a shared one, such as --users postgres://…"
                );
            }
            app::default_users_url(&args.store)
        }
    };
    let users = app::Users::connect(users_url)
        .await
        .map_err(|e| format!("--users: {e}"))?;
    let keys = if args.keyring.exists() {
        KeyRing::load(&args.keyring).map_err(|e| format!("--keyring: {e}"))?
    } else {
        let keys = KeyRing::generate(JwtAlg::EdDSA).map_err(|e| e.to_string())?;
        keys.save_new(&args.keyring)
            .map_err(|e| format!("--keyring: {e}"))?;
        tracing::info!(path = %args.keyring.display(), "created a new key ring");
        keys
    };
    let mut builder = Keyward::builder()
        .password_policy(app::password_policy())
        .issuer("http://keyward.example")
        .audience("keyward-server")
        .keys(keys)
        .shared_store(store);
    if let Some(url) = &args.limits {
        let limits = app::open_store(url)
            .await
            .map_err(|e| format!("--limits: {e}"))?;
        builder = builder.limits_store(limits);
    }
    let kw = builder.build().map_err(|e| e.to_string())?;
    let mailer: Arc<dyn CodeSender> = match args.outbox {
        Some(p) => Arc::new(app::OutboxMailer::open(p).map_err(|e| format!("--outbox: {e}"))?),
        None => Arc::new(app::LogMailer),
    };
    let options = app::Options {
        mailer,
        trusted_proxies: args.trusted_proxies,
        limits: RateLimits::default(),
        hashing: Some(hashing),
    };
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| format!("--listen: {e}"))?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    tracing::info!(listen = %local, store = app::scheme(&args.store).unwrap_or("?"), "keyward example server listening");
    axum::serve(
        listener,
        app::router(kw, users, options).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .await
    .map_err(|e| e.to_string())
}

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1).peekable();
    if args.peek().is_some_and(|a| a == "flood") {
        args.next();
        return match flood::main(args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("Error: {e}");
                ExitCode::FAILURE
            }
        };
    }
    tracing_subscriber::fmt().with_target(false).init();
    let result = parse_args().and_then(|args| {
        // Password work on a runtime of its own, at a lower priority, so
        // that request handlers never wait for a core behind PBKDF2.
        let hashing = keyward::axum::hashing_runtime(args.hash_nice).map_err(|e| e.to_string())?;
        let serving = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
        serving.block_on(run(args, hashing.handle().clone()))
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("server: {e}");
            ExitCode::FAILURE
        }
    }
}
