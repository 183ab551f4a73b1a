//! The smallest axum service on keyward: a route for a logged-in user and
//! one for an API key with a scope; it prints a token and a key to try.
use axum::{Router, routing::get};
use keyward::axum::{ApiKey, Claims, Rejection};
use keyward::{JwtAlg, KeyRing, KeySpec, Keyward, SqliteStore};

async fn me(Claims(claims): Claims) -> String {
    format!("hello, {}\n", claims.sub)
}

async fn reports(ApiKey(key): ApiKey) -> Result<String, Rejection> {
    key.require_scope("reports:read")?;
    Ok(format!("the reports of {}\n", key.owner()))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let kw = Keyward::builder()
        .keys(KeyRing::generate(JwtAlg::EdDSA)?) // KeyRing::load("keyward.keys")? in production
        .store(SqliteStore::open("keyward-minimal.db").await?)
        .issuer("http://127.0.0.1:8080")
        .audience("minimal")
        .build()?;
    // A session and a key to try the routes with (normally: a login route).
    let pair = kw.sessions().dangerous_start_without_proof("ada").await?;
    let spec = KeySpec::named("reports").scope("reports:read");
    let made = kw.api_keys().create("ada", spec).await?;
    let (token, key) = (pair.access.unprotected_as_str(), made.key());
    println!("curl -H 'authorization: Bearer {token}' 127.0.0.1:8080/me");
    let key = key.unprotected_as_str();
    println!("curl -H 'x-api-key: {key}' 127.0.0.1:8080/reports");
    let app = Router::new()
        .route("/me", get(me))
        .route("/reports", get(reports));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
    axum::serve(listener, app.with_state(kw)).await?;
    Ok(())
}
