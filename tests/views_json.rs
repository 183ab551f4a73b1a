//! The JSON of the types a backend hands to its clients: the token pair
//! (RFC 6749 §5.1) and the public views. Each is serialized from what the
//! services return and checked field by field; the views also read back
//! to the same value.
#![allow(clippy::unwrap_used, clippy::panic, clippy::arithmetic_side_effects)]

use std::sync::Arc;
use std::time::Duration;

use keyward::api_key::{ApiKeyView, KeySpec};
use keyward::clock::ManualClock;
use keyward::otp::OtpStatus;
use keyward::session::SessionInfo;
use keyward::{
    Allowance, Erased, Error, HashInfo, JwtAlg, KeyRing, Keyward, Limit, MemoryStore, OtpError,
    Purpose,
};
use serde_json::{Value, json};

const NOW: u64 = 1_700_000_000;

/// A Django hash at 1,000 iterations (the README's).
const DJANGO: &str =
    "pbkdf2_sha256$1000$tA0jUhl26X9Qf7Y2KbDERg$y60Tjp/vlE6maCpHoGXXUCU+VtNad/l6uUukUbgYQI0=";

fn kw(clock: &ManualClock) -> Keyward<keyward::Complete> {
    Keyward::builder()
        .store(MemoryStore::new())
        .keys(KeyRing::generate(JwtAlg::EdDSA).unwrap())
        .issuer("https://auth.example")
        .audience("example-api")
        .clock(Arc::new(clock.clone()))
        .build()
        .unwrap()
}

/// The object's keys, sorted.
fn keys(v: &Value) -> Vec<&str> {
    let mut k: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    k.sort_unstable();
    k
}

#[tokio::test]
async fn a_token_pair_is_the_rfc_6749_token_response() {
    let clock = ManualClock::new(NOW);
    let kw = kw(&clock);
    let pair = kw
        .sessions()
        .dangerous_start_without_proof("user-42")
        .await
        .unwrap();
    let v = serde_json::to_value(&pair).unwrap();
    assert_eq!(
        keys(&v),
        [
            "access_token",
            "expires_in",
            "refresh_token",
            "session",
            "token_type"
        ]
    );
    assert_eq!(v["access_token"], pair.access.unprotected_as_str());
    assert_eq!(v["refresh_token"], pair.refresh.unprotected_as_str());
    assert_eq!(v["token_type"], "Bearer");
    assert_eq!(v["expires_in"], 900);
    assert_eq!(v["session"], pair.session_id.as_str());
    // The fields in RFC 6749 §5.1's order.
    let text = serde_json::to_string(&pair).unwrap();
    assert!(text.starts_with(r#"{"access_token":"#), "{text}");
}

#[tokio::test]
async fn a_session_list_entry_names_its_id_session() {
    let clock = ManualClock::new(NOW);
    let kw = kw(&clock);
    let s = kw.sessions();
    let pair = s.dangerous_start_without_proof("user-42").await.unwrap();
    clock.advance(60);
    let pair = s.refresh(pair.refresh.unprotected_as_str()).await.unwrap();
    let listed = s.list("user-42").await.unwrap();
    let [info] = listed.as_slice() else {
        panic!("one session: {listed:?}")
    };
    let v = serde_json::to_value(info).unwrap();
    assert_eq!(
        v,
        json!({
            "session": pair.session_id,
            "started_at": NOW,
            "refreshed_at": NOW + 60,
            "generation": 1,
            "expires_at": info.expires_at,
            "meta": null,
        })
    );
    assert!(info.expires_at > NOW + 60);
    let back: SessionInfo = serde_json::from_value(v).unwrap();
    assert_eq!(&back, info);
}

#[tokio::test]
async fn otp_status_counts_and_waits_in_whole_seconds() {
    let clock = ManualClock::new(NOW);
    let kw = kw(&clock);
    let otp = kw.otp();

    let v = serde_json::to_value(otp.status("nobody").await.unwrap()).unwrap();
    assert_eq!(
        v,
        json!({
            "found": false,
            "failures": 0,
            "window_failures": 0,
            "locked": false,
            "retry_after": null,
            "locked_until_unlock": false,
            "pending": [],
        })
    );

    otp.issue("user-42", Purpose::Login).await.unwrap();
    // Wrong codes until the timed lock.
    loop {
        match otp.verify("user-42", Purpose::Login, "not-a-code").await {
            Err(Error::Otp(OtpError::Invalid { .. })) => {}
            Err(Error::Otp(OtpError::Locked { .. })) => break,
            other => panic!("{other:?}"),
        }
    }
    let status = otp.status("user-42").await.unwrap();
    let v = serde_json::to_value(&status).unwrap();
    let wait = status.retry_after.expect("a timed lock");
    assert!(wait > Duration::ZERO);
    assert_eq!(v["found"], true);
    assert_eq!(v["locked"], true);
    assert_eq!(v["locked_until_unlock"], false);
    assert_eq!(v["failures"], status.failures);
    assert!(status.failures > 0);
    assert_eq!(v["window_failures"], status.window_failures);
    assert_eq!(
        v["retry_after"],
        wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
    );
    // A lock that has started ends in whole seconds, as the clock counts.
    assert_eq!(wait.subsec_nanos(), 0);
    let back: OtpStatus = serde_json::from_value(v).unwrap();
    assert_eq!(back, status);
}

#[tokio::test]
async fn an_allowance_waits_in_whole_seconds_rounded_up() {
    let clock = ManualClock::new(NOW);
    let kw = kw(&clock);
    let limit = Limit::new("api", 5, Duration::from_secs(3_600));
    let allowance = kw.limits().check(&limit, "203.0.113.7").await.unwrap();
    let v = serde_json::to_value(allowance).unwrap();
    assert_eq!(keys(&v), ["remaining", "reset_after", "unchecked"]);
    assert_eq!(v["remaining"], allowance.remaining);
    assert_eq!(v["unchecked"], false);
    let reset = allowance.reset_after;
    assert_eq!(
        v["reset_after"],
        reset.as_secs() + u64::from(reset.subsec_nanos() > 0)
    );
    let back: Allowance = serde_json::from_value(json!({
        "remaining": 2,
        "reset_after": 90,
        "unchecked": false,
    }))
    .unwrap();
    assert_eq!(back.remaining, 2);
    assert_eq!(back.reset_after, Duration::from_secs(90));
}

#[tokio::test]
async fn an_erase_receipt_counts_by_kind() {
    let clock = ManualClock::new(NOW);
    let kw = kw(&clock);
    kw.sessions()
        .dangerous_start_without_proof("user-42")
        .await
        .unwrap();
    kw.api_keys()
        .create("user-42", KeySpec::named("ci"))
        .await
        .unwrap();
    let erased = kw.erase("user-42").await.unwrap();
    let v = serde_json::to_value(erased).unwrap();
    assert_eq!(
        v,
        json!({"sessions": 1, "api_keys": 1, "codes": 0, "factors": 0})
    );
    let back: Erased = serde_json::from_value(v).unwrap();
    assert_eq!(back, erased);
}

#[tokio::test]
async fn an_api_key_view_holds_no_key_and_reads_back() {
    let clock = ManualClock::new(NOW);
    let kw = kw(&clock);
    let made = kw
        .api_keys()
        .create("user-42", KeySpec::named("ci").scope("reports:read"))
        .await
        .unwrap();
    let view = made.view();
    let v = serde_json::to_value(view).unwrap();
    assert_eq!(
        v,
        json!({
            "id": view.id,
            "owner": "user-42",
            "name": "ci",
            "prefix": view.prefix,
            "scopes": ["reports:read"],
            "metadata": {},
            "created_at": NOW,
            "expires_at": null,
            "last_used_at": null,
            "enabled": true,
        })
    );
    let text = v.to_string();
    let secret = made.key().unprotected_as_str();
    let tail = &secret[secret.len() - 16..];
    assert!(!text.contains(tail), "{text}");
    let back: ApiKeyView = serde_json::from_value(v).unwrap();
    assert_eq!(&back, view);
}

#[test]
fn hash_info_names_its_scheme() {
    let kw = Keyward::builder().build().unwrap();
    let info = kw.passwords().inspect(DJANGO).unwrap();
    let v = serde_json::to_value(&info).unwrap();
    assert_eq!(
        v,
        json!({
            "scheme": "django-pbkdf2-sha256",
            "iterations": 1000,
            "salt_len": 22,
            "hash_len": 32,
            "memory_kib": null,
            "parallelism": null,
            "pepper_id": null,
            "needs_rehash": true,
        })
    );
    let back: HashInfo = serde_json::from_value(v).unwrap();
    assert_eq!(back, info);

    let mut unknown = serde_json::to_value(&info).unwrap();
    unknown["scheme"] = json!("md5");
    assert!(serde_json::from_value::<HashInfo>(unknown).is_err());
}
