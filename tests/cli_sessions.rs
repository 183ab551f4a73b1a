//! `keyward session list` and `keyward session revoke --session`, end to
//! end: a subject's live sessions as they start, refresh, are revoked (by
//! refresh token and by id) and are lost to reuse, on the default SQLite
//! store, PostgreSQL and Redis; and bad input, which is exit 2.
#![cfg(feature = "cli")]
#![allow(clippy::unwrap_used, clippy::panic, clippy::arithmetic_side_effects)]

mod common;

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::{Value, json};

use common::cli::{Run, keyward};

/// Lifetimes for every run: idle shorter than absolute, so that a
/// session's `expires_at` is its idle end (`refreshed_at` + 1800) for the
/// first half hour, and families left on a shared server end within the
/// hour. Grace 0: replaying a spent refresh token is reuse at once.
const CONFIG: &str =
    "[session]\nreuse_grace_secs = 0\nidle_ttl_secs = 1800\nabsolute_ttl_secs = 3600\n";
const IDLE_TTL_SECS: u64 = 1800;

/// A fresh directory with a key ring and [`CONFIG`].
fn setup() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let run = keyward(dir.path(), &["init", "--alg", "HS256"], b"");
    assert_eq!(run.code, 0, "{}", run.stderr);
    std::fs::write(dir.path().join("keyward.toml"), CONFIG).unwrap();
    dir
}

/// `keyward [--store STORE] session ARGS < stdin`; without a store, the
/// default (`sqlite:keyward.db` in `dir`).
fn session(dir: &Path, store: Option<&str>, args: &[&str], stdin: &[u8]) -> Run {
    let mut all = store.map_or_else(Vec::new, |s| vec!["--store", s]);
    all.push("session");
    all.extend_from_slice(args);
    keyward(dir, &all, stdin)
}

fn ok(run: &Run) -> Value {
    assert_eq!(
        run.code, 0,
        "stdout {:?} stderr {:?}",
        run.stdout, run.stderr
    );
    assert!(run.stderr.is_empty(), "{:?}", run.stderr);
    run.json()
}

/// Exit 1 with `{"error": reason}`.
fn refused(run: &Run, reason: &str) {
    assert_eq!(
        run.code, 1,
        "stdout {:?} stderr {:?}",
        run.stdout, run.stderr
    );
    assert_eq!(run.json(), json!({ "error": reason }));
}

/// A started session: its id and refresh token.
struct Started {
    id: String,
    refresh: String,
}

fn start(dir: &Path, store: Option<&str>, sub: &str) -> Started {
    let out = ok(&session(dir, store, &["start", "--sub", sub], b""));
    Started {
        id: out["session"].as_str().unwrap().to_owned(),
        refresh: out["refresh_token"].as_str().unwrap().to_owned(),
    }
}

/// `session refresh`: the successor token, in the same session.
fn refresh(dir: &Path, store: Option<&str>, s: &Started) -> String {
    let out = ok(&session(dir, store, &["refresh"], s.refresh.as_bytes()));
    assert_eq!(out["session"], s.id.as_str());
    out["refresh_token"].as_str().unwrap().to_owned()
}

/// `session list --sub SUB`: the listed sessions, each checked for the
/// contract's fields and nothing else, and the list for its order (oldest
/// first; the id breaks a tie within one second).
fn list(dir: &Path, store: Option<&str>, sub: &str) -> Vec<Value> {
    let out = ok(&session(dir, store, &["list", "--sub", sub], b""));
    let top: Vec<&str> = out
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(top, ["sessions"], "{out}");
    let sessions = out["sessions"].as_array().unwrap().clone();
    for s in &sessions {
        let keys: Vec<&str> = s.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "expires_at",
                "generation",
                "refreshed_at",
                "session",
                "started_at"
            ],
            "{s}"
        );
        let (started, refreshed) = (
            s["started_at"].as_u64().unwrap(),
            s["refreshed_at"].as_u64().unwrap(),
        );
        assert!(refreshed >= started, "{s}");
        assert_eq!(
            s["expires_at"].as_u64().unwrap(),
            refreshed + IDLE_TTL_SECS,
            "{s}"
        );
        assert!(s["generation"].is_u64(), "{s}");
    }
    let order: Vec<(u64, &str)> = sessions
        .iter()
        .map(|s| {
            (
                s["started_at"].as_u64().unwrap(),
                s["session"].as_str().unwrap(),
            )
        })
        .collect();
    let mut sorted = order.clone();
    sorted.sort_unstable();
    assert_eq!(order, sorted, "oldest first");
    sessions
}

fn ids(sessions: &[Value]) -> BTreeSet<String> {
    sessions
        .iter()
        .map(|s| s["session"].as_str().unwrap().to_owned())
        .collect()
}

fn listed<'a>(sessions: &'a [Value], id: &str) -> &'a Value {
    sessions
        .iter()
        .find(|s| s["session"] == id)
        .unwrap_or_else(|| panic!("{id} not in {sessions:?}"))
}

/// A subject's sessions through start, refresh, both revokes and reuse,
/// with another subject beside it that nothing touches. Subjects are new
/// on every run, so that reruns on a shared server never meet.
fn inventory(store: Option<&str>) {
    let dir = setup();
    let d = dir.path();
    let run = common::unique_prefix("cli-sessions");
    let alice = format!("{run}alice");
    let bob = format!("{run}bob");

    assert!(list(d, store, &alice).is_empty());
    let b1 = start(d, store, &bob);
    let bob_before = list(d, store, &bob);
    assert_eq!(ids(&bob_before), BTreeSet::from([b1.id.clone()]));

    // Three starts: exactly those three, fresh.
    let s: Vec<Started> = (0..3).map(|_| start(d, store, &alice)).collect();
    let all = list(d, store, &alice);
    assert_eq!(
        ids(&all),
        s.iter().map(|x| x.id.clone()).collect::<BTreeSet<_>>()
    );
    assert_eq!(all.len(), 3);
    for x in &all {
        assert_eq!(x["generation"], 0, "{x}");
        assert_eq!(x["refreshed_at"], x["started_at"], "{x}");
    }

    // Two refreshes of the second: generation 2; its start is unchanged,
    // the others are untouched.
    let mut s1 = Started {
        id: s[1].id.clone(),
        refresh: refresh(d, store, &s[1]),
    };
    s1.refresh = refresh(d, store, &s1);
    let after = list(d, store, &alice);
    assert_eq!(ids(&after), ids(&all));
    let (was, now) = (listed(&all, &s1.id), listed(&after, &s1.id));
    assert_eq!(now["generation"], 2, "{now}");
    assert_eq!(now["started_at"], was["started_at"]);
    assert!(now["refreshed_at"].as_u64().unwrap() >= now["started_at"].as_u64().unwrap());
    for x in [&s[0], &s[2]] {
        assert_eq!(listed(&after, &x.id), listed(&all, &x.id));
    }

    // Revoked by refresh token (stdin), and by id: one is left.
    let run = session(d, store, &["revoke"], s[0].refresh.as_bytes());
    assert_eq!(ok(&run), json!({ "revoked": s[0].id }));
    let by_id = ["revoke", "--session", &s[2].id, "--sub", &alice];
    assert_eq!(
        ok(&session(d, store, &by_id, b"")),
        json!({ "revoked": s[2].id })
    );
    let left = list(d, store, &alice);
    assert_eq!(ids(&left), BTreeSet::from([s1.id.clone()]));
    assert_eq!(listed(&left, &s1.id), now);
    // The revoke by id ended the family: its refresh token is refused.
    refused(
        &session(d, store, &["refresh"], s[2].refresh.as_bytes()),
        "revoked",
    );
    // Revoking a revoked session by id succeeds again.
    assert_eq!(
        ok(&session(d, store, &by_id, b"")),
        json!({ "revoked": s[2].id })
    );

    // Reuse (grace 0): replaying a spent token ends that session.
    let s3 = start(d, store, &alice);
    let s3_next = refresh(d, store, &s3);
    assert_eq!(
        ids(&list(d, store, &alice)),
        BTreeSet::from([s1.id.clone(), s3.id.clone()])
    );
    refused(
        &session(d, store, &["refresh"], s3.refresh.as_bytes()),
        "reused",
    );
    refused(
        &session(d, store, &["refresh"], s3_next.as_bytes()),
        "revoked",
    );
    let left = list(d, store, &alice);
    assert_eq!(ids(&left), BTreeSet::from([s1.id.clone()]));

    // Another subject's id, an unknown id and malformed ids: "unknown",
    // and nothing changes on either side.
    let unknown = "0123456789abcdef0123456789abcdef";
    let upper = s1.id.to_ascii_uppercase();
    let longer = format!("{}0", s1.id);
    let shorter = &s1.id[1..];
    for (session_id, sub) in [
        (b1.id.as_str(), alice.as_str()),
        (s1.id.as_str(), bob.as_str()),
        (unknown, alice.as_str()),
        ("not-a-session", alice.as_str()),
        ("", alice.as_str()),
        (upper.as_str(), alice.as_str()),
        (longer.as_str(), alice.as_str()),
        (shorter, alice.as_str()),
    ] {
        refused(
            &session(
                d,
                store,
                &["revoke", "--session", session_id, "--sub", sub],
                b"",
            ),
            "unknown",
        );
    }
    assert_eq!(list(d, store, &alice), left);
    assert_eq!(list(d, store, &bob), bob_before);
    // Bob's session still refreshes: no revoke reached it.
    refresh(d, store, &b1);
}

#[test]
fn inventory_on_sqlite() {
    inventory(None);
}

#[test]
fn inventory_on_postgres() {
    if let Some(url) = common::postgres("keyward session list on postgres") {
        inventory(Some(&url));
    }
}

#[test]
fn inventory_on_redis() {
    if let Some(url) = common::redis("keyward session list on redis") {
        let sep = if url.contains('?') { '&' } else { '?' };
        let prefix = common::unique_prefix("cli-sessions");
        inventory(Some(&format!("{url}{sep}prefix={prefix}")));
    }
}

/// Bad input is exit 2 with one line on stderr naming the problem, and
/// nothing on stdout.
#[test]
fn bad_input_is_a_usage_error() {
    let dir = setup();
    let d = dir.path();
    let id = start(d, None, "alice").id;
    let long = "a".repeat(1025);
    let longest = "a".repeat(1024);
    let cases: [(&[&str], &str); 9] = [
        (&["list", "--sub", ""], "--sub"),
        (&["list", "--sub", &long], "--sub"),
        (&["list"], "--sub"),
        (&["revoke", "--session", &id, "--sub", ""], "--sub"),
        (&["revoke", "--session", &id, "--sub", &long], "--sub"),
        // One of the pair without the other.
        (&["revoke", "--session", &id], "--sub"),
        (&["revoke", "--sub", "alice"], "--session"),
        (&["list", "--sub", "alice", "--session", &id], "--session"),
        (&["list", "--sub", "a", "--sub", "b"], "--sub"),
    ];
    for (args, names) in cases {
        // A token on stdin changes nothing: a lone flag is not the stdin
        // form.
        let run = session(d, None, args, b"kwr_not_a_token\n");
        let line = run.usage_error();
        assert!(line.contains(names), "{args:?}: {line}");
        assert!(run.stdout.is_empty(), "{args:?}: {:?}", run.stdout);
    }
    // 1,024 bytes is a subject.
    assert_eq!(
        ok(&session(d, None, &["list", "--sub", &longest], b"")),
        json!({ "sessions": [] })
    );
    assert_eq!(
        ids(&list(d, None, "alice")),
        BTreeSet::from([id.clone()]),
        "no bad input touched alice's session"
    );

    // A store that cannot be reached, without echoing its password.
    for url in [
        "redis://u:hunter2@127.0.0.1:1",
        "postgres://u:hunter2@127.0.0.1:1/db",
    ] {
        for args in [
            &["list", "--sub", "alice"][..],
            &["revoke", "--session", &id, "--sub", "alice"],
        ] {
            let run = session(d, Some(url), args, b"");
            let line = run.usage_error();
            assert!(line.starts_with("keyward: store "), "{line}");
            assert!(!line.contains("hunter2"), "{line}");
            assert!(run.stdout.is_empty());
        }
    }
    let run = session(
        d,
        Some("sqlite:/nonexistent-dir/k.db"),
        &["list", "--sub", "alice"],
        b"",
    );
    assert!(run.usage_error().contains("/nonexistent-dir/k.db"));

    // A key ring that is not there, named or default.
    let run = keyward(
        d,
        &[
            "--keyring",
            "missing.keys",
            "session",
            "list",
            "--sub",
            "alice",
        ],
        b"",
    );
    assert!(run.usage_error().contains("missing.keys"));
    let empty = tempfile::tempdir().unwrap();
    for args in [
        &["list", "--sub", "alice"][..],
        &["revoke", "--session", &id, "--sub", "alice"],
    ] {
        let run = session(empty.path(), None, args, b"");
        assert!(run.usage_error().contains("keyward.keys"), "{args:?}");
    }

    // An unknown key in keyward.toml.
    std::fs::write(d.join("keyward.toml"), "[session]\nreuse_grace = 0\n").unwrap();
    let run = session(d, None, &["list", "--sub", "alice"], b"");
    assert!(run.usage_error().contains("reuse_grace"));
}
