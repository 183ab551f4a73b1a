//! The audit events of a subject's whole life, captured: sessions, a code
//! lockout and an unlock, API keys, and an erase. Every event goes to the
//! `keyward::audit` target with an `event` name and the subject's `tag`;
//! none holds the subject, a token, a code or a key. The tag is the one
//! `keyward tag` prints for the subject, from the same store; after the
//! erase the command knows the subject no more, and the subject's next
//! session carries another tag. A test binary of its own: `tracing`
//! caches per call site whether anyone listens.
#![cfg(feature = "cli")]
#![allow(clippy::unwrap_used, clippy::panic, clippy::arithmetic_side_effects)]

mod common;

use std::time::Duration;

use keyward::api_key::KeySpec;
use keyward::{KeyRing, Keyward, Purpose};
use serde_json::json;

use common::cli::keyward as cli;

const SUBJECT: &str = "alice@example.com";

/// What `keyward tag --sub SUBJECT` prints: the tag, or `None` on exit 1.
fn cli_tag(dir: &std::path::Path, store: &str) -> Option<String> {
    let run = cli(dir, &["--store", store, "tag", "--sub", SUBJECT], b"");
    match run.code {
        0 => {
            let out = run.json();
            assert_eq!(out["subject"], SUBJECT);
            let tag = out["tag"].as_str().unwrap().to_owned();
            assert_eq!(tag.len(), 32, "{tag}");
            assert!(tag.bytes().all(|b| b.is_ascii_hexdigit()), "{tag}");
            Some(tag)
        }
        1 => {
            assert_eq!(run.json(), json!({ "error": "unknown" }));
            None
        }
        _ => panic!("keyward tag: {} {}", run.stdout, run.stderr),
    }
}

/// The audit events in `log`: each line's event name and tag.
fn events(log: &str) -> Vec<(String, Option<String>, &str)> {
    log.lines()
        .filter(|l| l.contains(" keyward::audit: "))
        .map(|line| {
            let field = |name: &str| {
                line.split_whitespace()
                    .find_map(|w| w.strip_prefix(name))
                    .map(|v| v.trim_matches('"').to_owned())
            };
            let event = field("event=").unwrap_or_else(|| panic!("no event name: {line}"));
            (event, field("tag="), line)
        })
        .collect()
}

#[tokio::test]
async fn audit_events_carry_the_tag_keyward_tag_prints_and_nothing_personal() {
    let dir = tempfile::tempdir().unwrap();
    let run = cli(dir.path(), &["init", "--alg", "HS256"], b"");
    assert_eq!(run.code, 0, "{}", run.stderr);
    let store_url = format!("sqlite:{}", dir.path().join("keyward.db").display());
    let kw = Keyward::builder()
        .issuer("https://auth.example.com")
        .audience("api")
        .keys(KeyRing::load(dir.path().join("keyward.keys")).unwrap())
        .shared_store(keyward::store::open(&store_url).await.unwrap())
        .build()
        .unwrap();
    assert_eq!(cli_tag(dir.path(), &store_url), None, "nothing issued yet");

    let (out, guard) = common::events::capture();
    let mut secrets: Vec<String> = Vec::new();

    // Sessions: started, rotated twice, the first token again (reuse), a
    // logout, a revoke by id, a revoke of all.
    let s = kw.sessions();
    let first = s.dangerous_start_without_proof(SUBJECT).await.unwrap();
    let second = s.refresh(first.refresh.unprotected_as_str()).await.unwrap();
    let third = s
        .refresh(second.refresh.unprotected_as_str())
        .await
        .unwrap();
    assert!(s.refresh(first.refresh.unprotected_as_str()).await.is_err());
    let other = s.dangerous_start_without_proof(SUBJECT).await.unwrap();
    s.revoke(other.refresh.unprotected_as_str()).await.unwrap();
    let by_id = s.dangerous_start_without_proof(SUBJECT).await.unwrap();
    s.revoke_session(SUBJECT, &by_id.session_id).await.unwrap();
    s.revoke_all(SUBJECT).await.unwrap();
    for pair in [&first, &second, &third, &other, &by_id] {
        secrets.push(pair.refresh.unprotected_as_str().to_owned());
        secrets.push(pair.access.unprotected_as_str().to_owned());
    }

    // Codes: issued, three wrong guesses lock, an operator unlocks.
    let otp = kw.otp();
    let code = otp.issue(SUBJECT, Purpose::Login).await.unwrap().code;
    let wrong = if code.unprotected_as_str() == "000000" {
        "000001"
    } else {
        "000000"
    };
    for _ in 0..3 {
        assert!(otp.verify(SUBJECT, Purpose::Login, wrong).await.is_err());
    }
    otp.unlock(SUBJECT).await.unwrap();
    secrets.push(code.unprotected_as_str().to_owned());

    // API keys: created, rolled, revoked.
    let keys = kw.api_keys();
    let made = keys.create(SUBJECT, KeySpec::named("ci")).await.unwrap();
    let rolled = keys.roll(made.id(), Duration::from_secs(60)).await.unwrap();
    keys.revoke(made.id()).await.unwrap();
    secrets.push(made.key().unprotected_as_str().to_owned());
    secrets.push(rolled.key().unprotected_as_str().to_owned());

    // The operator looks the subject up, then erases it.
    let tag = cli_tag(dir.path(), &store_url).expect("the subject has a tag");
    assert_eq!(
        kw.audit_tag(SUBJECT).await.unwrap().map(|t| t.to_hex()),
        Some(tag.clone())
    );
    let before_erase = out.text().len();
    kw.erase(SUBJECT).await.unwrap();
    assert_eq!(cli_tag(dir.path(), &store_url), None, "erased");
    let after_erase = out.text().len();
    // A session after the erase draws a new salt.
    let again = s.dangerous_start_without_proof(SUBJECT).await.unwrap();
    secrets.push(again.refresh.unprotected_as_str().to_owned());
    let new_tag = cli_tag(dir.path(), &store_url).expect("a new session, a new salt");
    assert_ne!(new_tag, tag);
    drop(guard);

    let log = out.text();
    let (before, rest) = log.split_at(before_erase);
    let (erase, after) = rest.split_at(after_erase - before_erase);
    let before = events(before);
    let names: Vec<&str> = before.iter().map(|(e, _, _)| e.as_str()).collect();
    for name in [
        "session.started",
        "session.rotated",
        "session.reuse_detected",
        "session.revoked",
        "session.all_revoked",
        "code.issued",
        "code.failed",
        "code.locked",
        "code.unlocked",
        "key.created",
        "key.rolled",
        "key.revoked",
    ] {
        assert!(names.contains(&name), "no {name} event in:\n{log}");
    }
    // Every event before the erase carries the tag `keyward tag` printed.
    for (event, got, line) in &before {
        assert_eq!(got.as_deref(), Some(tag.as_str()), "{event}: {line}");
    }
    let erase = events(erase);
    let erased: Vec<_> = erase
        .iter()
        .filter(|(e, _, _)| e == "subject.erased")
        .collect();
    assert_eq!(erased.len(), 1, "{log}");
    assert_eq!(
        erased[0].1.as_deref(),
        Some(tag.as_str()),
        "{}",
        erased[0].2
    );
    let after = events(after);
    assert_eq!(after.len(), 1, "{log}");
    assert_eq!(after[0].0, "session.started");
    assert_eq!(after[0].1.as_deref(), Some(new_tag.as_str()));

    assert!(!log.contains(SUBJECT), "the subject in the log:\n{log}");
    assert!(
        !log.contains("alice"),
        "part of the subject in the log:\n{log}"
    );
    for secret in &secrets {
        assert!(
            !log.contains(secret.as_str()),
            "a token, code or key in the log"
        );
    }
}
