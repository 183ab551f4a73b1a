//! `keyward limit`, end to end: the contract's rows on each store, bad
//! input for each flag, and the count's exactness when separate processes
//! share one store (SQLite, PostgreSQL, Redis).
#![allow(clippy::unwrap_used, clippy::panic, clippy::arithmetic_side_effects)]

mod common;

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Instant;

use serde_json::json;

use common::cli::{Run, keyward};

/// A fresh directory with a key ring.
fn setup() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let run = keyward(dir.path(), &["init", "--alg", "HS256"], b"");
    assert_eq!(run.code, 0, "{}", run.stderr);
    dir
}

/// `keyward --store STORE limit ARGS`.
fn limit(dir: &Path, store: &str, args: &[&str]) -> Run {
    let mut all = vec!["--store", store, "limit"];
    all.extend_from_slice(args);
    keyward(dir, &all, b"")
}

/// `limit check --name NAME --key KEY --rate RATE` and `extra`.
fn check(dir: &Path, store: &str, name: &str, key: &str, rate: &str, extra: &[&str]) -> Run {
    let mut args = vec!["check", "--name", name, "--key", key, "--rate", rate];
    args.extend_from_slice(extra);
    limit(dir, store, &args)
}

/// Exit 0 with exactly `{"allowed": true, "remaining": N, "reset_after":
/// SECS}`; returns `(remaining, reset_after)`.
fn allowed(run: &Run) -> (u64, u64) {
    assert_eq!(
        run.code, 0,
        "stdout {:?} stderr {:?}",
        run.stdout, run.stderr
    );
    let out = run.json();
    let fields: Vec<&str> = out
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(fields, ["allowed", "remaining", "reset_after"], "{out}");
    assert_eq!(out["allowed"], true, "{out}");
    (
        out["remaining"].as_u64().unwrap(),
        out["reset_after"].as_u64().unwrap(),
    )
}

/// Exit 1 with exactly `{"error": "rate_limited", "retry_after": SECS}`;
/// returns `retry_after`.
fn limited(run: &Run) -> u64 {
    assert_eq!(
        run.code, 1,
        "stdout {:?} stderr {:?}",
        run.stdout, run.stderr
    );
    let out = run.json();
    let retry = out["retry_after"].as_u64().unwrap();
    assert_eq!(
        out,
        json!({"error": "rate_limited", "retry_after": retry}),
        "{out}"
    );
    retry
}

/// `secs`, a time the store counts down from a moment after `since`, read
/// as whole seconds rounded up: `whole` at most, and no further below it
/// than the time elapsed since `since`.
fn counted_down(secs: u64, whole: u64, since: Instant) -> bool {
    let elapsed = since.elapsed().as_secs() + 1;
    (whole.saturating_sub(elapsed)..=whole).contains(&secs)
}

/// The contract's rows on `store`. `unique` keeps the keys of one run
/// apart from every other run's on a shared server.
fn rows(store: &str, unique: &str) {
    let dir = setup();
    let d = dir.path();
    let key = |k: &str| format!("{unique}{k}");

    // 5 an hour (one earned back every 720 s), a burst of COUNT: the
    // remaining units count down, reset_after counts up by 720 s.
    let (ip, since) = (key("203.0.113.7"), Instant::now());
    for n in 1..=5 {
        let (remaining, reset_after) = allowed(&check(d, store, "api", &ip, "5/3600", &[]));
        assert_eq!(remaining, 5 - n, "{store}");
        assert!(
            counted_down(reset_after, 720 * n, since),
            "{store}: check {n}: reset_after {reset_after}"
        );
    }
    let retry = limited(&check(d, store, "api", &ip, "5/3600", &[]));
    assert!(counted_down(retry, 720, since), "{store}: {retry}");
    // A refusal counts nothing: the next one waits as long.
    let again = limited(&check(d, store, "api", &ip, "5/3600", &[]));
    assert!(again <= retry && counted_down(again, 720, since), "{again}");

    // Another key, and another name for the same key, have counts of
    // their own.
    assert_eq!(
        allowed(&check(d, store, "api", &key("198.51.100.1"), "5/3600", &[])).0,
        4
    );
    assert_eq!(allowed(&check(d, store, "login", &ip, "5/3600", &[])).0, 4);

    // reset: the next check starts from a full burst; a reset of a key
    // with no count answers the same.
    let run = limit(d, store, &["reset", "--name", "api", "--key", &ip]);
    assert_eq!(
        (run.code, run.json()),
        (0, json!({"name": "api", "reset": true})),
        "{store}: {}",
        run.stderr
    );
    let since = Instant::now();
    let (remaining, reset_after) = allowed(&check(d, store, "api", &ip, "5/3600", &[]));
    assert_eq!(remaining, 4);
    assert!(counted_down(reset_after, 720, since), "{reset_after}");
    let run = limit(
        d,
        store,
        &["reset", "--name", "api", "--key", &key("never-seen")],
    );
    assert_eq!(
        (run.code, run.json()),
        (0, json!({"name": "api", "reset": true}))
    );

    // --cost: 3 of a burst of 5, then 3 more is over by one unit (720 s),
    // the last 2 fit, and then even 1 is over.
    let (user, since) = (key("user-42"), Instant::now());
    let cost = |c: &str| check(d, store, "exports", &user, "5/3600", &["--cost", c]);
    let (remaining, reset_after) = allowed(&cost("3"));
    assert_eq!(remaining, 2);
    assert!(counted_down(reset_after, 3 * 720, since), "{reset_after}");
    let retry = limited(&cost("3"));
    assert!(counted_down(retry, 720, since), "{retry}");
    let (remaining, reset_after) = allowed(&cost("2"));
    assert_eq!(remaining, 0);
    assert!(counted_down(reset_after, 3_600, since), "{reset_after}");
    let retry = limited(&cost("1"));
    assert!(counted_down(retry, 720, since), "{retry}");
    // Over by the full cost: 5 units are 5 × 720 s away.
    let retry = limited(&cost("5"));
    assert!(counted_down(retry, 3_600, since), "{retry}");

    // --burst above COUNT: 1 a minute, 3 at once.
    let (acct, since) = (key("acct"), Instant::now());
    for n in 1..=3 {
        let (remaining, reset_after) =
            allowed(&check(d, store, "sends", &acct, "1/60", &["--burst", "3"]));
        assert_eq!(remaining, 3 - n);
        assert!(counted_down(reset_after, 60 * n, since), "{reset_after}");
    }
    let retry = limited(&check(d, store, "sends", &acct, "1/60", &["--burst", "3"]));
    assert!(counted_down(retry, 60, since), "{retry}");

    // --burst below COUNT: 60 an hour (one a minute), 2 at once; a cost
    // of the whole burst fits a fresh key, and more never does.
    let (src, since) = (key("src"), Instant::now());
    let run = |extra: &[&str]| check(d, store, "burst2", &src, "60/3600", extra);
    let (remaining, reset_after) = allowed(&run(&["--burst", "2", "--cost", "2"]));
    assert_eq!(remaining, 0);
    assert!(counted_down(reset_after, 120, since), "{reset_after}");
    let retry = limited(&run(&["--burst", "2"]));
    assert!(counted_down(retry, 60, since), "{retry}");
    assert!(
        run(&["--burst", "2", "--cost", "3"])
            .usage_error()
            .contains("--cost")
    );
}

#[test]
fn limit_rows_on_sqlite() {
    rows("sqlite:limits.db", "");
}

#[test]
fn limit_rows_on_postgres() {
    if let Some(url) = common::postgres("keyward limit rows on postgres") {
        rows(&url, &common::unique_prefix("cli-limits"));
    }
}

#[test]
fn limit_rows_on_redis() {
    if let Some(url) = redis_store("keyward limit rows on redis") {
        rows(&url, "");
    }
}

/// `memory:` lives for one command: every check starts from a full burst.
#[test]
fn limit_on_memory_lives_for_one_command() {
    let dir = setup();
    for _ in 0..2 {
        let run = check(dir.path(), "memory:", "api", "k", "2/60", &[]);
        assert_eq!(allowed(&run).0, 1);
    }
}

/// Global options may also come after the subcommand.
#[test]
fn global_options_after_the_subcommand() {
    let dir = setup();
    let d = dir.path();
    std::fs::rename(d.join("keyward.keys"), d.join("other.keys")).unwrap();
    let check = [
        "limit", "check", "--name", "api", "--key", "k", "--rate", "2/60",
    ];
    let mut argv = check.to_vec();
    argv.extend_from_slice(&["--store", "sqlite:after.db", "--keyring", "other.keys"]);
    assert_eq!(allowed(&keyward(d, &argv, b"")).0, 1);
    assert_eq!(allowed(&keyward(d, &argv, b"")).0, 0);
    assert!(d.join("after.db").exists());
    let reset = [
        "limit",
        "reset",
        "--name",
        "api",
        "--key",
        "k",
        "--store",
        "sqlite:after.db",
    ];
    let mut argv = reset.to_vec();
    argv.extend_from_slice(&["--keyring", "missing.keys"]);
    let run = keyward(d, &argv, b"");
    assert!(run.usage_error().contains("missing.keys"), "{}", run.stderr);
    std::fs::write(d.join("bad.toml"), "[limits]\n").unwrap();
    let mut argv = reset.to_vec();
    argv.extend_from_slice(&["--keyring", "other.keys", "--config", "bad.toml"]);
    let run = keyward(d, &argv, b"");
    assert!(run.usage_error().contains("bad.toml"), "{}", run.stderr);
}

/// `parts` as owned arguments.
fn args(parts: &[&str]) -> Vec<String> {
    parts.iter().map(|p| (*p).to_owned()).collect()
}

/// Each flag's bad values, and a missing or unknown flag: exit 2, one line
/// on stderr naming the flag, nothing on stdout, and nothing counted.
#[test]
fn limit_bad_input_exits_2_naming_the_problem() {
    let dir = setup();
    let d = dir.path();
    let store = "sqlite:limits.db";
    // 10 a day: no unit is earned back while the test runs.
    let rate = "10/86400";
    assert_eq!(allowed(&check(d, store, "api", "k", rate, &[])).0, 9);

    let long_key = "secret-ish".repeat(103);
    let long_name = "n".repeat(33);
    // `check --name api --key k`, then `rest`.
    let check_then = |rest: &[&str]| {
        let mut all = args(&["check", "--name", "api", "--key", "k"]);
        all.extend(args(rest));
        all
    };
    let mut cases: Vec<(Vec<String>, &str)> = Vec::new();
    for bad in [
        "10",
        "10/",
        "/60",
        "a/60",
        "10/60s",
        "1.5/60",
        " 10/60",
        "+10/60",
        "10/60/2",
        "10 / 60",
        "-1/60",
        "0/60",
        "10/0",
        "0/0",
        "1000001/60",
        "99999999999/60",
        "1/31536001",
        "1/99999999999999999999999",
        "",
    ] {
        cases.push((check_then(&["--rate", bad]), "--rate"));
    }
    cases.push((check_then(&["--rate"]), "--rate"));
    cases.push((check_then(&[]), "--rate"));
    for bad in ["0", "1000001", "x", "-1", ""] {
        cases.push((check_then(&["--rate", rate, "--burst", bad]), "--burst"));
    }
    // A full bucket that takes more than ten years to refill.
    cases.push((
        check_then(&["--rate", "1/31536000", "--burst", "11"]),
        "--burst",
    ));
    // --cost: 0, or more than the burst (COUNT by default).
    for extra in [
        &["--cost", "0"][..],
        &["--cost", "11"],
        &["--burst", "3", "--cost", "4"],
        &["--cost", "x"],
        &["--cost", "-1"],
        &["--cost", "4294967296"],
    ] {
        let mut all = check_then(&["--rate", rate]);
        all.extend(args(extra));
        cases.push((all, "--cost"));
    }
    for bad in ["", "Api", "a b", "api/v1", "ápi", long_name.as_str()] {
        cases.push((
            args(&["check", "--name", bad, "--key", "k", "--rate", rate]),
            "--name",
        ));
        cases.push((args(&["reset", "--name", bad, "--key", "k"]), "--name"));
    }
    cases.push((args(&["check", "--key", "k", "--rate", rate]), "--name"));
    cases.push((args(&["reset", "--key", "k"]), "--name"));
    for bad in ["", long_key.as_str()] {
        cases.push((
            args(&["check", "--name", "api", "--key", bad, "--rate", rate]),
            "--key",
        ));
        cases.push((args(&["reset", "--name", "api", "--key", bad]), "--key"));
    }
    cases.push((args(&["check", "--name", "api", "--rate", rate]), "--key"));
    cases.push((args(&["reset", "--name", "api"]), "--key"));
    cases.push((check_then(&["--rate", rate, "--period", "60"]), "--period"));
    cases.push((Vec::new(), "subcommand"));
    cases.push((args(&["frobnicate"]), "frobnicate"));

    for (argv, names) in &cases {
        let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
        let run = limit(d, store, &argv);
        let line = run.usage_error();
        assert!(line.contains(names), "{argv:?}: {line}");
        // A key may be an address or an account: it is never repeated.
        assert!(!line.contains("secret-ish"), "{argv:?}: {line}");
        assert!(run.stdout.is_empty(), "{argv:?}: {:?}", run.stdout);
    }
    // None of them counted.
    assert_eq!(allowed(&check(d, store, "api", "k", rate, &[])).0, 8);

    // A store that cannot be reached is bad input too, and its URL's
    // password is not repeated; so is a missing key ring.
    let good_check = check_then(&["--rate", rate]);
    let good_check: Vec<&str> = good_check.iter().map(String::as_str).collect();
    let good_reset = ["reset", "--name", "api", "--key", "k"];
    for (url, argv) in [
        ("redis://u:hunter2@127.0.0.1:1", &good_check[..]),
        ("redis://u:hunter2@127.0.0.1:1", &good_reset[..]),
        ("postgres://u:hunter2@127.0.0.1:1/db", &good_check[..]),
    ] {
        let run = limit(d, url, argv);
        let line = run.usage_error();
        assert!(
            line.contains("store") && !line.contains("hunter2"),
            "{line}"
        );
        assert!(run.stdout.is_empty(), "{:?}", run.stdout);
    }
    let mut argv = vec!["--keyring", "missing.keys", "--store", store, "limit"];
    argv.extend_from_slice(&good_check);
    let run = keyward(d, &argv, b"");
    assert!(run.usage_error().contains("missing.keys"), "{}", run.stderr);
    assert!(run.stdout.is_empty(), "{:?}", run.stdout);
}

/// Redis under a key prefix of this run's own.
fn redis_store(test: &str) -> Option<String> {
    let url = common::redis(test)?;
    let sep = if url.contains('?') { '&' } else { '?' };
    Some(format!(
        "{url}{sep}prefix={}",
        common::unique_prefix("cli-limits")
    ))
}

/// Checks of one key by 8 processes at a time: 8 threads, each running 20
/// `keyward limit check` processes one after another, on `store`, with a
/// burst of 10 and one unit earned back an hour. Exactly 10 are allowed,
/// their `remaining` values are 9 down to 0 once each (no two allowed
/// checks saw the same count), and every other check is refused. Five
/// runs, each on a fresh key; prints the counts of each.
fn exact_across_processes(label: &str, store: &str) {
    const THREADS: usize = 8;
    const CALLS: usize = 20;
    let dir = setup();
    let d = dir.path();
    let unique = common::unique_prefix("cli-limits-exact");
    // The store exists (a SQLite file, a PostgreSQL table) before the
    // racers open it.
    allowed(&check(
        d,
        store,
        "exact",
        &format!("{unique}setup"),
        "1/3600",
        &[],
    ));
    for run in 0..5 {
        let key = format!("{unique}run-{run}");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let workers: Vec<_> = (0..THREADS)
            .map(|_| {
                let (dir, store, key, seen) = (
                    d.to_owned(),
                    store.to_owned(),
                    key.clone(),
                    Arc::clone(&seen),
                );
                thread::spawn(move || {
                    for _ in 0..CALLS {
                        let run = check(&dir, &store, "exact", &key, "1/3600", &["--burst", "10"]);
                        seen.lock().unwrap().push(run);
                    }
                })
            })
            .collect();
        for w in workers {
            w.join().unwrap();
        }
        let seen = seen.lock().unwrap();
        let (mut remaining, mut refused) = (Vec::new(), 0);
        for run in seen.iter() {
            match run.code {
                0 => remaining.push(allowed(run).0),
                1 => {
                    let retry = limited(run);
                    assert!((1..=3_600).contains(&retry), "{label}: {retry}");
                    refused += 1;
                }
                _ => panic!(
                    "{label}: exit {}: stdout {:?} stderr {:?}",
                    run.code, run.stdout, run.stderr
                ),
            }
        }
        println!(
            "{label}, run {run}: {} processes, {} allowed, {refused} rate_limited",
            seen.len(),
            remaining.len()
        );
        assert_eq!(seen.len(), THREADS * CALLS, "{label}");
        remaining.sort_unstable();
        assert_eq!(
            remaining,
            (0..10).collect::<Vec<u64>>(),
            "{label}, run {run}: exactly the burst is allowed, one unit each"
        );
    }
}

#[test]
fn exact_across_processes_on_sqlite() {
    exact_across_processes("sqlite", "sqlite:limits.db");
}

#[test]
fn exact_across_processes_on_postgres() {
    if let Some(url) = common::postgres("keyward limit exactness on postgres") {
        exact_across_processes("postgres", &url);
    }
}

#[test]
fn exact_across_processes_on_redis() {
    if let Some(url) = redis_store("keyward limit exactness on redis") {
        exact_across_processes("redis", &url);
    }
}
