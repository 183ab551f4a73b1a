//! A small, real auth backend on axum: register, log in (with rehash on
//! login), refresh with reuse detection, log out, `/me`, and the JWKS.
//!
//! ```text
//! cargo run --release --example server -- [--listen 127.0.0.1:8080] [--store URL] [--outbox PATH]
//! ```
//!
//! `--store` is `sqlite:PATH` (default `sqlite:keyward-server.db`). The
//! application's user table lives in the same SQLite file. `--keyring`
//! (default `keyward.keys`) is created, mode 0600, when it does not exist.

mod app;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use keyward::{JwtAlg, KeyRing, Keyward, SqliteStore};

struct Args {
    listen: SocketAddr,
    store: String,
    outbox: Option<PathBuf>,
    keyring: PathBuf,
    trust_forwarded_for: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
        store: "sqlite:keyward-server.db".into(),
        outbox: None,
        keyring: PathBuf::from("keyward.keys"),
        trust_forwarded_for: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--listen" => args.listen = value()?.parse().map_err(|e| format!("--listen: {e}"))?,
            "--store" => args.store = value()?,
            "--outbox" => args.outbox = Some(PathBuf::from(value()?)),
            "--keyring" => args.keyring = PathBuf::from(value()?),
            "--trust-forwarded-for" => args.trust_forwarded_for = true,
            other => return Err(format!("unknown option {other}")),
        }
    }
    Ok(args)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt().with_target(false).init();
    let args = parse_args().map_err(|e| format!("server: {e}"))?;
    let keys = if args.keyring.exists() {
        KeyRing::load(&args.keyring)?
    } else {
        let keys = KeyRing::generate(JwtAlg::EdDSA)?;
        keys.save_new(&args.keyring)?;
        tracing::info!(path = %args.keyring.display(), "created a new key ring");
        keys
    };
    let Some(path) = args.store.strip_prefix("sqlite:") else {
        return Err(format!(
            "server: unsupported --store {}; use sqlite:PATH",
            args.store
        )
        .into());
    };
    let store = SqliteStore::open(path).await?;
    let users = app::Users::open(path.as_ref()).await?;
    let kw = Keyward::builder()
        .password_policy(app::password_policy())
        .issuer("http://keyward.example")
        .audience("keyward-server")
        .keys(keys)
        .store(store)
        .build()?;
    let mailer: Arc<dyn app::Mailer> = match args.outbox {
        Some(p) => Arc::new(app::OutboxMailer(p)),
        None => Arc::new(app::LogMailer),
    };
    let app = app::App {
        kw,
        users,
        mailer,
        trust_forwarded_for: args.trust_forwarded_for,
    };
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    tracing::info!(listen = %listener.local_addr()?, "keyward example server listening");
    axum::serve(
        listener,
        app::router(app).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .await?;
    Ok(())
}
