//! `keyward otp`, end to end, including 8 processes racing wrong codes on
//! one store (SQLite, PostgreSQL, Redis), and the code-send limit across
//! processes.
#![allow(clippy::unwrap_used, clippy::panic, clippy::arithmetic_side_effects)]

mod common;

use std::path::Path;
use std::process::Child;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use serde_json::json;

use common::cli::{Run, finish, keyward, spawn};

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A fresh directory with a key ring; returns it.
fn setup() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let run = keyward(dir.path(), &["init", "--alg", "HS256"], b"");
    assert_eq!(run.code, 0, "{}", run.stderr);
    dir
}

/// The `[throttle]` table of the tests that issue several codes to one
/// subject within the minute: the code-send limit, kept in the store, is
/// one send a minute per subject by default and would refuse the second.
const MANY_SENDS: &str = "[throttle]\ncode_send_burst = 1000\n";

/// [`setup`], with a `keyward.toml` of [`MANY_SENDS`].
fn setup_many_sends() -> tempfile::TempDir {
    let dir = setup();
    std::fs::write(dir.path().join("keyward.toml"), MANY_SENDS).unwrap();
    dir
}

fn issue(dir: &Path, args: &[&str]) -> String {
    let mut all = vec!["otp", "issue"];
    all.extend_from_slice(args);
    let run = keyward(dir, &all, b"");
    assert_eq!(run.code, 0, "{} {}", run.stdout, run.stderr);
    run.json()["code"].as_str().unwrap().to_owned()
}

fn wrong_for(code: &str) -> String {
    let n: u32 = code.parse().unwrap();
    format!("{:06}", (n + 1) % 1_000_000)
}

#[test]
fn otp_issue_verify_rows() {
    // Several codes for alice within the minute.
    let dir = setup_many_sends();
    let d = dir.path();

    let (t0, run, t1) = (
        now(),
        keyward(d, &["otp", "issue", "--sub", "alice"], b""),
        now(),
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let out = run.json();
    let code = out["code"].as_str().unwrap().to_owned();
    assert!(
        code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit()),
        "{code}"
    );
    let expires = out["expires_at"].as_u64().unwrap();
    assert!((t0 + 600..=t1 + 600).contains(&expires), "{expires}");
    assert_eq!(out.as_object().unwrap().len(), 2);
    assert!(
        d.join("keyward.db").exists(),
        "the default store is sqlite:keyward.db"
    );

    let verify = |stdin: &[u8], purpose: &str| {
        keyward(
            d,
            &["otp", "verify", "--sub", "alice", "--purpose", purpose],
            stdin,
        )
    };
    // Exactly one line ending is removed; a second one makes a wrong code.
    let run = verify(format!("{code}\n\n").as_bytes(), "login");
    assert_eq!(
        (run.code, run.json()),
        (1, json!({"error": "invalid", "attempts_left": 2}))
    );
    // The code of one purpose is not a code of another.
    let run = verify(format!("{code}\n").as_bytes(), "email_change");
    assert_eq!((run.code, run.json()), (1, json!({"error": "no_code"})));
    let run = verify(format!("{code}\r\n").as_bytes(), "login");
    assert_eq!((run.code, run.json()), (0, json!({"ok": true})));
    // Single use.
    let run = verify(code.as_bytes(), "login");
    assert_eq!((run.code, run.json()), (1, json!({"error": "no_code"})));

    // A second code of the same subject and purpose replaces the first.
    // (The code-send limit is raised for this test; the default refuses
    // the second issue: see `a_second_issue_within_the_minute_is_throttled`.)
    let reset = issue(d, &["--sub", "alice", "--purpose", "password_reset"]);
    let again = issue(d, &["--sub", "alice", "--purpose", "password_reset"]);
    let run = verify(format!("{reset}\n").as_bytes(), "password_reset");
    if reset != again {
        // The second code replaced the first.
        assert_eq!(run.json()["error"], "invalid");
        let run = verify(format!("{again}\n").as_bytes(), "password_reset");
        assert_eq!((run.code, run.json()), (0, json!({"ok": true})));
    } else {
        assert_eq!((run.code, run.json()), (0, json!({"ok": true})));
    }
    let custom = issue(d, &["--sub", "alice", "--purpose", "delete_account"]);
    let run = verify(format!("{custom}\n").as_bytes(), "delete_account");
    assert_eq!((run.code, run.json()), (0, json!({"ok": true})));

    // Usage errors.
    let run = keyward(
        d,
        &["otp", "issue", "--sub", "alice", "--purpose", "Bad Name"],
        b"",
    );
    assert!(run.usage_error().contains("purpose"), "{}", run.stderr);
    let run = keyward(d, &["otp", "verify", "--sub", "alice"], b"\xff\xfe\n");
    assert!(run.usage_error().contains("UTF-8"), "{}", run.stderr);
    let run = keyward(d, &["otp", "issue", "--sub", ""], b"");
    assert_eq!(
        run.usage_error(),
        "keyward: subject must be 1 to 1024 bytes",
        "{}",
        run.stderr
    );
    let run = keyward(
        d,
        &[
            "--store",
            "postgres://u:hunter2@db/x",
            "otp",
            "issue",
            "--sub",
            "a",
        ],
        b"",
    );
    let msg = run.usage_error();
    // An unreachable PostgreSQL URL: the store is named, the password never.
    assert!(
        msg.contains("store postgres") && !msg.contains("hunter2"),
        "{msg}"
    );
    let run = keyward(
        d,
        &["--keyring", "missing.keys", "otp", "unlock", "--sub", "a"],
        b"",
    );
    assert!(run.usage_error().contains("missing.keys"), "{}", run.stderr);
    // memory: lives for one command.
    let run = keyward(
        d,
        &["--store", "memory:", "otp", "issue", "--sub", "bob"],
        b"",
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let code = run.json()["code"].as_str().unwrap().to_owned();
    let run = keyward(
        d,
        &["--store", "memory:", "otp", "verify", "--sub", "bob"],
        code.as_bytes(),
    );
    assert_eq!((run.code, run.json()), (1, json!({"error": "no_code"})));
}

#[test]
fn eight_processes_racing_wrong_codes_lock_the_subject() {
    racing_wrong_codes_across_processes("sqlite", None, "carol");
}

/// The same race with the 8 processes standing in for 8 replicas of a
/// service that share one PostgreSQL server. The subject is the run's own,
/// since the table outlives the test.
#[test]
fn eight_replicas_racing_wrong_codes_on_postgres() {
    if let Some(url) = common::postgres("keyward otp replicas on postgres") {
        let subject = common::unique_prefix("cli-otp");
        racing_wrong_codes_across_processes("postgres", Some(&url), &subject);
    }
}

/// The same race with 8 replicas sharing one Redis server, under a key
/// prefix of the run's own.
#[test]
fn eight_replicas_racing_wrong_codes_on_redis() {
    if let Some(url) = common::redis("keyward otp replicas on redis") {
        let sep = if url.contains('?') { '&' } else { '?' };
        let prefix = common::unique_prefix("cli-otp");
        let url = format!("{url}{sep}prefix={prefix}");
        racing_wrong_codes_across_processes("redis", Some(&url), "carol");
    }
}

/// 8 `keyward otp verify` processes on `store` (the default SQLite file
/// when `None`) race a wrong code for `subject`: exactly three failures are
/// evaluated, the other five are refused as locked, and the subject stays
/// locked for every process until an operator unlocks it.
fn racing_wrong_codes_across_processes(label: &str, store: Option<&str>, subject: &str) {
    // The subject gets three codes within the minute.
    let dir = setup_many_sends();
    let d = dir.path();
    let args = |cmd: &[&str]| -> Vec<String> {
        let mut all: Vec<String> = store
            .map(|url| vec!["--store".to_owned(), url.to_owned()])
            .unwrap_or_default();
        all.extend(cmd.iter().map(|a| (*a).to_owned()));
        all.extend(["--sub".to_owned(), subject.to_owned()]);
        all
    };
    let run = |cmd: &[&str], stdin: &[u8]| -> Run {
        let all = args(cmd);
        let all: Vec<&str> = all.iter().map(String::as_str).collect();
        keyward(d, &all, stdin)
    };
    let issued = run(&["otp", "issue"], b"");
    assert_eq!(
        issued.code, 0,
        "{label}: {} {}",
        issued.stdout, issued.stderr
    );
    let code = issued.json()["code"].as_str().unwrap().to_owned();
    let wrong = format!("{}\n", wrong_for(&code));
    // Spawn all eight, then hand each its code: they race on one store.
    let verify = args(&["otp", "verify"]);
    let verify: Vec<&str> = verify.iter().map(String::as_str).collect();
    let children: Vec<Child> = (0..8).map(|_| spawn(d, &verify)).collect();
    let runs: Vec<Run> = children
        .into_iter()
        .map(|c| finish(c, wrong.as_bytes()))
        .collect();
    let (mut invalid, mut locked) = (Vec::new(), 0);
    for run in &runs {
        assert_eq!(run.code, 1, "{label}: {} {}", run.stdout, run.stderr);
        let out = run.json();
        match out["error"].as_str().unwrap() {
            "invalid" => invalid.push(out["attempts_left"].as_u64().unwrap()),
            "locked" => locked += 1,
            other => panic!("{label}: {other}"),
        }
    }
    invalid.sort_unstable();
    println!(
        "8 processes, wrong codes, one {label} store: {} invalid (attempts_left {invalid:?}), {locked} locked",
        invalid.len()
    );
    assert_eq!(
        invalid,
        [0, 1, 2],
        "{label}: exactly three failures evaluated"
    );
    assert_eq!(locked, 5, "{label}");

    // The subject ends locked: the right code is refused, and so is a new one.
    let run_ = run(&["otp", "verify"], code.as_bytes());
    assert_eq!(run_.code, 1, "{label}");
    let out = run_.json();
    assert_eq!(out["error"], "locked", "{label}");
    let retry = out["retry_after"].as_u64().unwrap();
    assert!(retry > 0 && retry <= 3_600, "{label}: {retry}");
    let run_ = run(&["otp", "issue"], b"");
    assert_eq!(
        (run_.code, run_.json()["error"].as_str()),
        (1, Some("locked")),
        "{label}"
    );

    let run_ = run(&["otp", "unlock"], b"");
    assert_eq!(
        (run_.code, run_.json()),
        (
            0,
            json!({"subject": subject, "unlocked": true, "found": true})
        ),
        "{label}"
    );
    let issued = run(&["otp", "issue"], b"");
    assert_eq!(issued.code, 0, "{label}: {}", issued.stderr);
    let code = issued.json()["code"].as_str().unwrap().to_owned();
    let run_ = run(&["otp", "verify"], code.as_bytes());
    assert_eq!(
        (run_.code, run_.json()),
        (0, json!({"ok": true})),
        "{label}"
    );
}

#[test]
fn otp_config_table() {
    let dir = setup();
    let d = dir.path();
    std::fs::write(
        d.join("keyward.toml"),
        "[otp]\nmax_attempts = 2\nlockout_secs = 900\ncode_ttl_secs = 1\nmax_consecutive_failures = 4\n",
    )
    .unwrap();
    // code_ttl_secs = 1: a code is expired once a second has passed.
    let (t0, run) = (now(), keyward(d, &["otp", "issue", "--sub", "dave"], b""));
    let expires = run.json()["expires_at"].as_u64().unwrap();
    assert!(expires > t0 && expires <= now() + 1, "{expires}");
    while now() <= expires {
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let code = run.json()["code"].as_str().unwrap().to_owned();
    let run = keyward(d, &["otp", "verify", "--sub", "dave"], code.as_bytes());
    assert_eq!((run.code, run.json()), (1, json!({"error": "expired"})));

    // max_attempts = 2, lockout 900 s.
    let code = issue(d, &["--sub", "erin"]);
    let wrong = wrong_for(&code);
    let run = keyward(d, &["otp", "verify", "--sub", "erin"], wrong.as_bytes());
    assert_eq!(run.json(), json!({"error": "invalid", "attempts_left": 1}));
    let run = keyward(d, &["otp", "verify", "--sub", "erin"], wrong.as_bytes());
    assert_eq!(run.json(), json!({"error": "invalid", "attempts_left": 0}));
    let run = keyward(d, &["otp", "verify", "--sub", "erin"], code.as_bytes());
    let retry = run.json()["retry_after"].as_u64().unwrap();
    assert!(retry > 0 && retry <= 900, "{retry}");

    // Bad values and unknown keys are usage errors.
    for (toml, needle) in [
        ("[otp]\nmax_attempts = 0\n", "max_attempts"),
        (
            "[otp]\nmax_consecutive_failures = 101\n",
            "max_consecutive_failures",
        ),
        ("[otp]\nlockout = 60\n", "lockout"),
    ] {
        std::fs::write(d.join("keyward.toml"), toml).unwrap();
        let run = keyward(d, &["otp", "issue", "--sub", "x"], b"");
        assert!(run.usage_error().contains(needle), "{toml}: {}", run.stderr);
    }
}

#[test]
fn too_many_consecutive_failures_need_an_operator() {
    let dir = setup();
    let d = dir.path();
    std::fs::write(
        d.join("keyward.toml"),
        format!("[otp]\nmax_attempts = 3\nmax_consecutive_failures = 3\n{MANY_SENDS}"),
    )
    .unwrap();
    let code = issue(d, &["--sub", "frank"]);
    for left in [2, 1, 0] {
        let run = keyward(
            d,
            &["otp", "verify", "--sub", "frank"],
            wrong_for(&code).as_bytes(),
        );
        assert_eq!(
            run.json(),
            json!({"error": "invalid", "attempts_left": left})
        );
    }
    let run = keyward(d, &["otp", "verify", "--sub", "frank"], code.as_bytes());
    assert_eq!(
        (run.code, run.json()),
        (1, json!({"error": "locked_until_unlock"}))
    );
    let run = keyward(d, &["otp", "issue", "--sub", "frank"], b"");
    assert_eq!(
        (run.code, run.json()),
        (1, json!({"error": "locked_until_unlock"}))
    );
    let run = keyward(d, &["otp", "unlock", "--sub", "frank"], b"");
    assert_eq!(run.code, 0);
    let code = issue(d, &["--sub", "frank"]);
    let run = keyward(d, &["otp", "verify", "--sub", "frank"], code.as_bytes());
    assert_eq!((run.code, run.json()), (0, json!({"ok": true})));
}

/// The answer of one `otp verify` for `carol`.
fn verify_as(d: &Path, sub: &str, purpose: &str, code: &str) -> Run {
    keyward(
        d,
        &["otp", "verify", "--sub", sub, "--purpose", purpose],
        code.as_bytes(),
    )
}

/// A correct code of one purpose buys no guesses at another purpose's
/// pending code: the cycle "two wrong `password_reset` guesses, the right
/// `login` code, a third wrong guess", ten times over, never gets a
/// `password_reset` code more than 3 evaluated guesses.
#[test]
fn a_success_on_one_purpose_buys_no_guesses_at_another() {
    let dir = setup_many_sends();
    let d = dir.path();
    let mut reset: Option<String> = None;
    // Evaluated wrong guesses against the current `password_reset` code.
    let mut evaluated = 0;
    let mut first_cycle = Vec::new();
    for cycle in 0..10 {
        let login = keyward(d, &["otp", "issue", "--sub", "carol"], b"");
        let issued_reset = keyward(
            d,
            &[
                "otp",
                "issue",
                "--sub",
                "carol",
                "--purpose",
                "password_reset",
            ],
            b"",
        );
        for run in [&login, &issued_reset] {
            assert!(
                run.code == 0 || run.json()["error"] == "locked",
                "{} {}",
                run.stdout,
                run.stderr
            );
        }
        if issued_reset.code == 0 {
            reset = Some(issued_reset.json()["code"].as_str().unwrap().to_owned());
            evaluated = 0;
        }
        let login = (login.code == 0).then(|| login.json()["code"].as_str().unwrap().to_owned());
        let current = reset.clone().unwrap();
        let mut guess = |answers: &mut Vec<serde_json::Value>| {
            let run = verify_as(d, "carol", "password_reset", &wrong_for(&current));
            let out = run.json();
            if out["error"] == "invalid" {
                evaluated += 1;
            }
            answers.push(out);
        };
        let mut answers = Vec::new();
        guess(&mut answers);
        guess(&mut answers);
        if let Some(login) = &login {
            let run = verify_as(d, "carol", "login", login);
            answers.push(run.json());
        }
        guess(&mut answers);
        assert!(
            evaluated <= 3,
            "cycle {cycle}: {evaluated} guesses evaluated: {answers:?}"
        );
        if cycle == 0 {
            first_cycle = answers;
        }
    }
    assert_eq!(
        first_cycle[..3],
        [
            json!({"error": "invalid", "attempts_left": 2}),
            json!({"error": "invalid", "attempts_left": 1}),
            json!({"ok": true}),
        ]
    );
    assert_ne!(
        first_cycle[3],
        json!({"error": "invalid", "attempts_left": 2}),
        "the login success reset the count"
    );
    // The right code, after 3 wrong guesses, is refused.
    let run = verify_as(d, "carol", "password_reset", &reset.unwrap());
    assert_eq!(run.code, 1, "{}", run.stdout);
}

/// A pending code faces at most 3 evaluated wrong guesses in its whole
/// life, even when an operator unlocks the subject in between and other
/// codes succeed: then it is gone.
#[test]
fn a_code_faces_three_guesses_in_its_life_across_unlocks() {
    let dir = setup_many_sends();
    let d = dir.path();
    let reset = issue(d, &["--sub", "dave", "--purpose", "password_reset"]);
    let mut evaluated = 0;
    let mut answers = Vec::new();
    for _ in 0..10 {
        let run = keyward(d, &["otp", "unlock", "--sub", "dave"], b"");
        assert_eq!(run.code, 0, "{}", run.stderr);
        let login = issue(d, &["--sub", "dave"]);
        let out = verify_as(d, "dave", "password_reset", &wrong_for(&reset)).json();
        if out["error"] == "invalid" {
            evaluated += 1;
        }
        answers.push(out);
        let run = verify_as(d, "dave", "login", &login);
        assert_eq!((run.code, run.json()), (0, json!({"ok": true})));
    }
    assert_eq!(evaluated, 3, "{answers:?}");
    assert_eq!(answers[3..], vec![json!({"error": "no_code"}); 7][..]);
    let run = verify_as(d, "dave", "password_reset", &reset);
    assert_eq!((run.code, run.json()), (1, json!({"error": "no_code"})));
}

/// Exit 1 with exactly `{"error": "throttled", "retry_after": SECS}`, and
/// SECS counted down from `period` since the first send (issued after
/// `since`), in whole seconds rounded up.
fn throttled(run: &Run, period: u64, since: Instant) {
    assert_eq!(
        run.code, 1,
        "stdout {:?} stderr {:?}",
        run.stdout, run.stderr
    );
    let out = run.json();
    let retry = out["retry_after"].as_u64().unwrap();
    assert_eq!(out, json!({"error": "throttled", "retry_after": retry}));
    let elapsed = since.elapsed().as_secs() + 1;
    assert!(
        (period.saturating_sub(elapsed)..=period).contains(&retry),
        "retry_after {retry} of {period}"
    );
}

/// The code-send limit lives in the store: with the defaults (one send a
/// minute per subject), a second `otp issue` for the same subject from
/// another process within the minute is refused, whatever its purpose,
/// and replaces nothing; another subject is not affected.
#[test]
fn a_second_issue_within_the_minute_is_throttled() {
    let dir = setup();
    let d = dir.path();
    let since = Instant::now();
    let code = issue(d, &["--sub", "alice"]);
    for purpose in ["login", "password_reset"] {
        let run = keyward(
            d,
            &["otp", "issue", "--sub", "alice", "--purpose", purpose],
            b"",
        );
        throttled(&run, 60, since);
    }
    let bob = issue(d, &["--sub", "bob"]);
    // A refused send is not a code: bob's still has its own, and alice's
    // first code is the one that works.
    let run = verify_as(d, "alice", "password_reset", &code);
    assert_eq!((run.code, run.json()), (1, json!({"error": "no_code"})));
    let run = verify_as(d, "alice", "login", &code);
    assert_eq!((run.code, run.json()), (0, json!({"ok": true})));
    let run = verify_as(d, "bob", "login", &bob);
    assert_eq!((run.code, run.json()), (0, json!({"ok": true})));
    // The limit holds after a success too: the send was counted.
    throttled(
        &keyward(d, &["otp", "issue", "--sub", "alice"], b""),
        60,
        since,
    );
}

/// `[throttle]` in keyward.toml sets the code-send limit: 2 at once, then
/// one every 30 s.
#[test]
fn throttle_config_sets_the_code_send_limit() {
    let dir = setup();
    let d = dir.path();
    std::fs::write(
        d.join("keyward.toml"),
        "[throttle]\ncode_send_burst = 2\ncode_send_period_secs = 30\n",
    )
    .unwrap();
    let since = Instant::now();
    issue(d, &["--sub", "gina"]);
    issue(d, &["--sub", "gina", "--purpose", "password_reset"]);
    throttled(
        &keyward(d, &["otp", "issue", "--sub", "gina"], b""),
        30,
        since,
    );
    issue(d, &["--sub", "hal"]);

    // Bad values and unknown keys are usage errors.
    for (toml, needle) in [
        ("[throttle]\ncode_send_burst = 0\n", "code_send"),
        ("[throttle]\ncode_send_period_secs = 0\n", "code_send"),
        ("[throttle]\ncode_send_bursts = 3\n", "code_send_bursts"),
    ] {
        std::fs::write(d.join("keyward.toml"), toml).unwrap();
        let run = keyward(d, &["otp", "issue", "--sub", "ivan"], b"");
        assert!(run.usage_error().contains(needle), "{toml}: {}", run.stderr);
        assert!(run.stdout.is_empty(), "{:?}", run.stdout);
    }
}

/// A subject out of the library's bounds is bad input: exit 2, with the
/// bound named on stderr and the subject never echoed; the bounds
/// themselves are subjects.
#[test]
fn a_subject_out_of_bounds_is_a_usage_error() {
    let dir = setup();
    let d = dir.path();
    let long = "s".repeat(1025);
    for sub in ["", long.as_str()] {
        for (args, stdin) in [
            (["otp", "issue", "--sub", sub], &b""[..]),
            (["otp", "verify", "--sub", sub], &b"123456\n"[..]),
            (["otp", "unlock", "--sub", sub], &b""[..]),
        ] {
            let run = keyward(d, &args, stdin);
            assert_eq!(
                run.usage_error(),
                "keyward: subject must be 1 to 1024 bytes",
                "{:?}",
                &args[..2]
            );
            assert!(run.stdout.is_empty(), "{:?}", run.stdout);
        }
    }
    let longest = "s".repeat(1024);
    for sub in ["s", longest.as_str()] {
        let run = keyward(d, &["otp", "issue", "--sub", sub], b"");
        assert_eq!(run.code, 0, "{}", run.stderr);
        let code = run.json()["code"].as_str().unwrap().to_owned();
        let run = keyward(
            d,
            &["otp", "verify", "--sub", sub],
            format!("{code}\n").as_bytes(),
        );
        assert_eq!((run.code, run.json()), (0, json!({"ok": true})));
        let run = keyward(d, &["otp", "unlock", "--sub", sub], b"");
        assert_eq!(run.code, 0, "{}", run.stderr);
    }
}
