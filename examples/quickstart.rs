//! The keyward quick start: the whole story on an embedded SQLite file in a
//! temporary folder. Run it with `cargo run --example quickstart`.
//!
//! Passwords use the real default policy (PBKDF2-HMAC-SHA256, 600,000
//! iterations). Time is a `ManualClock` so that the demo can step past the
//! 10-second refresh grace window without waiting.

use std::collections::HashMap;
use std::sync::Arc;

use keyward::clock::{Clock, ManualClock, SystemClock};
use keyward::otp::{OtpError, Purpose};
use keyward::{
    ApiKeyError, Error, JwtAlg, KeyRing, KeySpec, Keyward, Password, SessionError, SqliteStore,
};

/// A password hash as Django 5.2 stores it (1,000 iterations), for
/// "correct horse battery staple": an account imported from an old stack.
const DJANGO_HASH: &str =
    "pbkdf2_sha256$1000$tA0jUhl26X9Qf7Y2KbDERg$y60Tjp/vlE6maCpHoGXXUCU+VtNad/l6uUukUbgYQI0=";

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("keyward.db");
    let clock = ManualClock::new(SystemClock.now());
    let kw = Keyward::builder()
        .issuer("https://auth.example.com")
        .audience("api")
        .keys(KeyRing::generate(JwtAlg::EdDSA)?)
        .store(SqliteStore::open(&db).await?)
        .clock(Arc::new(clock.clone()))
        .build()?;
    println!(
        "keyward quick start: SQLite store in a temporary folder; PBKDF2-HMAC-SHA256 at {} iterations",
        kw.passwords().policy().iterations
    );

    // The application's user table: username -> stored hash.
    let mut users: HashMap<&str, String> = HashMap::new();

    // 1. Register.
    let hash = kw
        .passwords()
        .hash(&Password::from("Tr0ub4dor&3-but-longer"))?;
    println!("1. registered alice; stored {}…", &hash[..30]);
    users.insert("alice", hash);

    // 2. Log in. bob's hash was imported from Django; logging in upgrades it.
    users.insert("bob", DJANGO_HASH.to_owned());
    let verified = kw.passwords().verify(
        "bob",
        &Password::from("correct horse battery staple"),
        &users["bob"],
    )?;
    println!(
        "2. bob logged in with a {} hash ({}…)",
        verified.scheme(),
        &DJANGO_HASH[..22]
    );
    if let Some(new) = verified.rehash() {
        // In SQL: UPDATE users SET hash = $new WHERE name = 'bob' AND hash = $old
        if users.get("bob").is_some_and(|h| h == verified.old_hash()) {
            users.insert("bob", new.to_owned());
        }
        println!("   upgraded on login to {}…", &users["bob"][..30]);
    }
    let wrong = kw
        .passwords()
        .verify("alice", &Password::from("wrong guess"), &users["alice"]);
    let unknown = kw
        .passwords()
        .verify_unknown_user(&Password::from("wrong guess"));
    println!(
        "   wrong password: {:?}; unknown user: {:?} (the same answer, the same cost)",
        wrong.err().map(|e| e.to_string()),
        unknown.to_string()
    );

    // 3. A session: access token and refresh token.
    let sessions = kw.sessions();
    let pair = sessions.start(&verified).await?;
    println!(
        "3. session {} started: access token {}…, refresh token …{}",
        pair.session_id,
        &pair.access.unprotected_as_str()[..16],
        tail(pair.refresh.unprotected_as_str())
    );

    // 4. Authenticate a request.
    let claims = sessions.authenticate(pair.access.unprotected_as_str())?;
    println!(
        "4. authenticated: sub={} sid={}; the access token expires in {}",
        claims.sub,
        claims.sid,
        duration(claims.exp.saturating_sub(claims.iat))
    );

    // 5. Refresh: the refresh token rotates.
    clock.advance(60);
    let next = sessions.refresh(pair.refresh.unprotected_as_str()).await?;
    println!(
        "5. refreshed: new refresh token …{}",
        tail(next.refresh.unprotected_as_str())
    );

    // 6. Replay the old refresh token after the 10-second grace window.
    clock.advance(11);
    match sessions.refresh(pair.refresh.unprotected_as_str()).await {
        Err(Error::Session(SessionError::Reused)) => {
            println!("6. old refresh token replayed: reuse detected, session family revoked")
        }
        other => return Err(format!("expected reuse, got {other:?}").into()),
    }
    match sessions.refresh(next.refresh.unprotected_as_str()).await {
        Err(Error::Session(SessionError::Revoked)) => {
            println!("   the live refresh token is revoked too")
        }
        other => return Err(format!("expected revoked, got {other:?}").into()),
    }

    // 7. One-time codes: three wrong codes lock the subject for 60 minutes.
    let otp = kw.otp();
    let issued = otp.issue("alice", Purpose::Login).await?;
    println!(
        "7. sent a 6-digit code to alice; it expires in {}",
        duration(issued.expires_at.saturating_sub(clock.now()))
    );
    let wrong_code = if issued.code.unprotected_as_str() == "000000" {
        "111111"
    } else {
        "000000"
    };
    for _ in 0..3 {
        match otp.verify("alice", Purpose::Login, wrong_code).await {
            Err(Error::Otp(OtpError::Invalid { attempts_left })) => {
                let plural = if attempts_left == 1 { "" } else { "s" };
                println!("   wrong code: {attempts_left} attempt{plural} left");
            }
            other => return Err(format!("expected invalid, got {other:?}").into()),
        }
    }
    match otp
        .verify("alice", Purpose::Login, issued.code.unprotected_as_str())
        .await
    {
        Err(Error::Otp(OtpError::Locked { retry_after })) => {
            println!(
                "   locked: even the right code is refused; retry in {}",
                duration(retry_after.as_secs())
            );
        }
        other => return Err(format!("expected locked, got {other:?}").into()),
    }

    // 8. An API key: shown once; the store keeps its digest, never the key.
    let api_keys = kw.api_keys();
    let made = api_keys
        .create("alice", KeySpec::named("ci").scope("reports:read"))
        .await?;
    let key = made.key().unprotected_as_str().to_owned();
    println!(
        "8. API key {} for alice: {}… (shown once)",
        made.id(),
        &key[..20]
    );
    let ok = api_keys.verify(&key).await?;
    ok.require_scope("reports:read")?;
    println!(
        "   verified: owner {}, scopes {:?}",
        ok.owner(),
        ok.scopes().collect::<Vec<_>>()
    );
    // Roll: a new secret under the same id; the old one works one hour more.
    let rolled = api_keys
        .roll(made.id(), std::time::Duration::from_secs(3_600))
        .await?;
    let new_key = rolled.key().unprotected_as_str().to_owned();
    let old = api_keys.verify(&key).await?;
    assert_eq!(old.rolled_until(), Some(rolled.previous_valid_until()));
    let _new = api_keys.verify(&new_key).await?;
    println!("   rolled: old and new key both work for the next hour");
    clock.advance(3_600);
    match api_keys.verify(&key).await {
        Err(Error::ApiKey(ApiKeyError::Expired)) => {
            println!("   an hour later the old key is refused: expired")
        }
        other => return Err(format!("the old key should have expired: {other:?}").into()),
    }
    // Revoke: final, on every replica, once it returns.
    api_keys.revoke(made.id()).await?;
    match api_keys.verify(&new_key).await {
        Err(Error::ApiKey(ApiKeyError::Revoked)) => println!("   revoked: the key is refused"),
        other => return Err(format!("the key should be revoked: {other:?}").into()),
    }
    println!(
        "done: the sessions, codes, lockout and API key above lived in {}, a SQLite file in a temporary folder, removed now;",
        db.file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("keyward.db")
    );
    println!(
        "      the user table (names and password hashes) was a map in memory: an application keeps it in its own database"
    );
    Ok(())
}

/// Seconds as a person reads them: "15 min", "1 h", "45 s".
fn duration(secs: u64) -> String {
    match secs {
        s if s >= 3_600 && s % 3_600 == 0 => format!("{} h", s / 3_600),
        s if s >= 60 && s % 60 == 0 => format!("{} min", s / 60),
        s if s >= 60 => format!("{} min {} s", s / 60, s % 60),
        s => format!("{s} s"),
    }
}

/// The last 12 characters, enough to tell two tokens apart in the output.
fn tail(s: &str) -> &str {
    s.get(s.len().saturating_sub(12)..).unwrap_or(s)
}
