//! A complete auth backend on keyward's ready router: register, log in
//! (old hashes upgraded on login), refresh, log out, log in with an
//! e-mailed code, API keys, sessions, a second factor and account
//! deletion, over the application's own `users` table in SQLite; plus a
//! route for a logged-in user and one for an API key with a scope.
//!
//! `cargo run --example axum_service --features axum`, then for example
//! `curl -d '{"username":"ada","password":"correct horse battery"}'
//! 127.0.0.1:8080/register` and the same to `/login`.
use std::net::SocketAddr;

use axum::{Router, routing::get};
use keyward::axum::{ApiKey, AuthRoutes, Claims, CodeSender, DirectoryError, Rejection};
use keyward::axum::{ClientAddr, UserDirectory};
use keyward::{Complete, JwtAlg, KeyRing, Keyward, SqliteStore};
use sqlx::SqlitePool;

/// The application's user table: a login name and its password hash.
#[derive(Clone)]
pub struct Users(SqlitePool);

impl Users {
    /// The table in `pool`, created if missing.
    ///
    /// # Errors
    /// When the database cannot be written.
    pub async fn open(pool: SqlitePool) -> Result<Self, sqlx::Error> {
        let ddl = "CREATE TABLE IF NOT EXISTS users (login TEXT PRIMARY KEY, hash TEXT NOT NULL)";
        sqlx::query(ddl).execute(&pool).await?;
        Ok(Self(pool))
    }

    async fn run(&self, sql: &'static str, args: &[&str]) -> Result<bool, DirectoryError> {
        let query = args.iter().fold(sqlx::query(sql), |q, a| q.bind(*a));
        Ok(query.execute(&self.0).await?.rows_affected() == 1)
    }
}

impl UserDirectory for Users {
    async fn find(&self, login: &str) -> Result<Option<String>, DirectoryError> {
        let sql = "SELECT hash FROM users WHERE login = ?";
        Ok(sqlx::query_scalar(sql)
            .bind(login)
            .fetch_optional(&self.0)
            .await?)
    }

    async fn create(&self, login: &str, hash: &str) -> Result<bool, DirectoryError> {
        let sql = "INSERT INTO users VALUES (?, ?) ON CONFLICT DO NOTHING";
        self.run(sql, &[login, hash]).await
    }

    async fn update_hash(&self, login: &str, old: &str, new: &str) -> Result<bool, DirectoryError> {
        let sql = "UPDATE users SET hash = ? WHERE login = ? AND hash = ?";
        self.run(sql, &[new, login, old]).await
    }

    async fn delete(&self, login: &str) -> Result<bool, DirectoryError> {
        self.run("DELETE FROM users WHERE login = ?", &[login])
            .await
    }
}

async fn me(Claims(claims): Claims) -> String {
    format!("hello, {}\n", claims.sub)
}

async fn reports(ApiKey(key): ApiKey) -> Result<String, Rejection> {
    key.require_scope("reports:read")?;
    Ok(format!("the reports of {}\n", key.owner()))
}

/// The service: keyward's routes, and the application's own. The complete
/// keyward is the state: the routes and extractors take it as they take
/// a `Keyward`.
pub fn app(kw: Keyward<Complete>, users: Users, mail: impl CodeSender) -> Router {
    let auth = AuthRoutes::new(users)
        .codes(mail)
        .client_addr(ClientAddr::socket())
        .router();
    Router::new()
        .merge(auth)
        .route("/me", get(me))
        .route("/reports", get(reports))
        .with_state(kw)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let keys = match KeyRing::load("service.keys") {
        Ok(keys) => keys,
        Err(_) => {
            let keys = KeyRing::generate(JwtAlg::EdDSA)?;
            keys.save_new("service.keys")?;
            keys
        }
    };
    let kw = Keyward::builder()
        .keys(keys)
        .store(SqliteStore::open("service.db").await?)
        .issuer("http://127.0.0.1:8080")
        .audience("service")
        .build()?;
    let users = Users::open(SqlitePool::connect("sqlite:service-users.db?mode=rwc").await?).await?;
    // Send an e-mail here; this demo only says that it would.
    let mail = |to: &str, _code: &str| println!("a sign-in code for {to} would be e-mailed now");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
    let app = app(kw, users, mail).into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, app).await?;
    Ok(())
}
