//! `keyward totp …` end to end on SQLite, PostgreSQL and Redis: an
//! enrollment confirmed with a code that an independent implementation
//! (Python's `pyotp`, from the enrolled `otpauth://` URI) computes; the
//! replay guard and single-use recovery codes, each raced by 8 processes
//! sharing one store, of which exactly one wins; regeneration, disable,
//! and bad input.
//!
//! `pyotp` is looked for with `python3`; without it the interop steps
//! print one `SKIPPED:` line, unless `KEYWARD_REQUIRE_SERVICES=1`, which
//! makes them fail.
#![cfg(feature = "cli")]
#![allow(clippy::unwrap_used, clippy::panic, clippy::arithmetic_side_effects)]

mod common;

use std::process::{Child, Command};

use serde_json::{Value, json};

use common::cli::{Run, finish, keyward, spawn};

/// The code `pyotp` computes now from `uri`, or `None` (after one
/// `SKIPPED:` line) when `pyotp` is not installed.
fn pyotp_now(uri: &str) -> Option<String> {
    let out = Command::new("python3")
        .args([
            "-c",
            "import sys, pyotp; print(pyotp.parse_uri(sys.argv[1]).now())",
            uri,
        ])
        .output();
    match out {
        Ok(out) if out.status.success() => {
            Some(String::from_utf8(out.stdout).unwrap().trim().to_owned())
        }
        other => {
            assert!(
                !common::services_required(),
                "python3 with pyotp is required (KEYWARD_REQUIRE_SERVICES=1): {other:?}"
            );
            println!("SKIPPED: TOTP interop (python3 with pyotp not found)");
            None
        }
    }
}

/// Every value stored: the whole records table on SQLite (the default
/// `keyward.db` in `dir`) and PostgreSQL, every key under the run's prefix
/// on Redis. Live, expired or deleted but not yet purged alike.
fn raw_values(dir: &std::path::Path, store: Option<&str>) -> Vec<Vec<u8>> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    match store {
        None => rt.block_on(async {
            use sqlx::ConnectOptions as _;
            let mut conn = sqlx::sqlite::SqliteConnectOptions::new()
                .filename(dir.join("keyward.db"))
                .connect()
                .await
                .unwrap();
            let rows: Vec<(Vec<u8>,)> = sqlx::query_as("SELECT value FROM keyward_records")
                .fetch_all(&mut conn)
                .await
                .unwrap();
            rows.into_iter().map(|(v,)| v).collect()
        }),
        Some(url) if url.starts_with("postgres") => rt.block_on(async {
            use sqlx::Connection as _;
            let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
            let rows: Vec<(Vec<u8>,)> = sqlx::query_as("SELECT value FROM keyward_records")
                .fetch_all(&mut conn)
                .await
                .unwrap();
            rows.into_iter().map(|(v,)| v).collect()
        }),
        Some(url) => {
            let (base, prefix) = url.split_once("prefix=").unwrap();
            let base = base.trim_end_matches(['?', '&']);
            let mut conn = redis::Client::open(base).unwrap().get_connection().unwrap();
            common::raw::redis_keys(&mut conn, prefix)
                .into_iter()
                .filter_map(|key| redis::cmd("GET").arg(&key).query(&mut conn).unwrap())
                .collect()
        }
    }
}

/// No stored value holds `needle`, in either case.
fn nowhere(values: &[Vec<u8>], needle: &str, label: &str) {
    let forms = [needle.to_ascii_lowercase(), needle.to_ascii_uppercase()];
    for value in values {
        let value = String::from_utf8_lossy(value);
        for form in &forms {
            assert!(!value.contains(form.as_str()), "{label}: stored: {form}");
        }
    }
}

/// A directory with a key ring.
fn setup() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let run = keyward(dir.path(), &["init", "--alg", "HS256"], b"");
    assert_eq!(run.code, 0, "{}", run.stderr);
    dir
}

struct On<'a> {
    dir: &'a std::path::Path,
    store: Option<&'a str>,
    sub: &'a str,
}

impl On<'_> {
    fn args(&self, cmd: &[&str]) -> Vec<String> {
        let mut all: Vec<String> = self
            .store
            .map(|url| vec!["--store".to_owned(), url.to_owned()])
            .unwrap_or_default();
        all.push("totp".to_owned());
        all.extend(cmd.iter().map(|a| (*a).to_owned()));
        all.extend(["--sub".to_owned(), self.sub.to_owned()]);
        all
    }

    fn run(&self, cmd: &[&str], stdin: &[u8]) -> Run {
        let all = self.args(cmd);
        let all: Vec<&str> = all.iter().map(String::as_str).collect();
        keyward(self.dir, &all, stdin)
    }

    fn ok(&self, cmd: &[&str], stdin: &[u8]) -> Value {
        let run = self.run(cmd, stdin);
        assert_eq!(run.code, 0, "{cmd:?}: {} {}", run.stdout, run.stderr);
        run.json()
    }

    fn refused(&self, cmd: &[&str], stdin: &[u8]) -> Value {
        let run = self.run(cmd, stdin);
        assert_eq!(run.code, 1, "{cmd:?}: {} {}", run.stdout, run.stderr);
        run.json()
    }

    /// 8 processes run `cmd` with `stdin` at once: their answers.
    fn race(&self, cmd: &[&str], stdin: &str) -> Vec<Run> {
        let all = self.args(cmd);
        let all: Vec<&str> = all.iter().map(String::as_str).collect();
        let children: Vec<Child> = (0..8).map(|_| spawn(self.dir, &all)).collect();
        children
            .into_iter()
            .map(|c| finish(c, format!("{stdin}\n").as_bytes()))
            .collect()
    }
}

/// Exactly one of `runs` succeeded; the others were refused as `reason`.
fn one_winner(runs: &[Run], reason: &str, label: &str) -> Value {
    let mut won = Vec::new();
    for run in runs {
        match run.code {
            0 => won.push(run.json()),
            1 => assert_eq!(run.json()["error"], reason, "{label}"),
            _ => panic!("{label}: {} {}", run.stdout, run.stderr),
        }
    }
    assert_eq!(won.len(), 1, "{label}: {won:?}");
    won.pop().unwrap()
}

fn life(label: &str, store: Option<&str>, sub: &str) {
    let dir = setup();
    let on = On {
        dir: dir.path(),
        store,
        sub,
    };
    let enrolled = on.ok(
        &[
            "enroll",
            "--issuer",
            "Example",
            "--account",
            "ada@example.com",
        ],
        b"",
    );
    let secret = enrolled["secret"].as_str().unwrap().to_owned();
    let uri = enrolled["uri"].as_str().unwrap().to_owned();
    assert_eq!(secret.len(), 32, "{label}: 160 bits of base32");
    assert!(
        uri.starts_with("otpauth://totp/Example:ada%40example.com?"),
        "{uri}"
    );
    assert!(enrolled["factor"].is_string());
    // Not usable before it is confirmed.
    assert_eq!(
        on.refused(&["verify"], b"123456"),
        json!({"error": "not_enrolled"})
    );
    let Some(code) = pyotp_now(&uri) else {
        return;
    };
    let wrong = if code == "000000" { "000001" } else { "000000" };
    assert_eq!(
        on.refused(&["confirm"], wrong.as_bytes()),
        json!({"error": "invalid", "attempts_left": 2})
    );
    let confirmed = on.ok(&["confirm"], code.as_bytes());
    assert_eq!(confirmed["ok"], true);
    let recovery: Vec<String> = confirmed["recovery_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(recovery.len(), 10);
    // A raw read of the store finds neither the secret nor any recovery
    // code; the factor record is there to be read.
    let values = raw_values(on.dir, store);
    assert!(
        values
            .iter()
            .any(|v| String::from_utf8_lossy(v).contains("ciphertext")),
        "{label}: no factor record in the raw read"
    );
    nowhere(&values, &secret, label);
    for code in &recovery {
        nowhere(&values, code, label);
        nowhere(&values, &code.replace('-', ""), label);
    }
    // The confirming code is spent.
    assert_eq!(
        on.refused(&["verify"], code.as_bytes()),
        json!({"error": "replayed"})
    );
    assert_eq!(
        on.refused(&["enroll", "--account", "ada"], b""),
        json!({"error": "already_enrolled"})
    );

    // A recovery code raced by 8 processes: one is accepted, the others
    // find it used.
    let runs = on.race(&["recover"], &recovery[0]);
    let won = one_winner(&runs, "used", label);
    assert_eq!(won, json!({"ok": true, "remaining": 9}));
    // A new set: the old codes stop working.
    let fresh = on.ok(&["recovery"], b"");
    assert_eq!(fresh["recovery_codes"].as_array().unwrap().len(), 10);
    assert_eq!(
        on.refused(&["recover"], recovery[1].as_bytes())["error"],
        "invalid"
    );

    // The next step's code raced by 8 processes: one is accepted.
    let next = loop {
        std::thread::sleep(std::time::Duration::from_millis(500));
        let now = pyotp_now(&uri).unwrap();
        if now != code {
            break now;
        }
    };
    let runs = on.race(&["verify"], &next);
    let won = one_winner(&runs, "replayed", label);
    assert_eq!(won["ok"], true);
    assert!(won["step"].as_u64().unwrap() > 0);
    println!("8 processes, one code, one {label} store: one accepted, 7 replayed");

    assert_eq!(
        on.ok(&["disable"], b""),
        json!({"subject": sub, "disabled": true})
    );
    assert_eq!(
        on.refused(&["verify"], next.as_bytes()),
        json!({"error": "not_enrolled"})
    );
}

#[test]
fn a_factor_s_life_on_sqlite() {
    life("sqlite", None, "carol");
}

#[test]
fn a_factor_s_life_on_postgres() {
    if let Some(url) = common::postgres("keyward totp on postgres") {
        let sub = common::unique_prefix("cli-totp");
        life("postgres", Some(&url), &sub);
    }
}

#[test]
fn a_factor_s_life_on_redis() {
    if let Some(url) = common::redis("keyward totp on redis") {
        let sep = if url.contains('?') { '&' } else { '?' };
        let url = format!("{url}{sep}prefix={}", common::unique_prefix("cli-totp"));
        life("redis", Some(&url), "carol");
    }
}

#[test]
fn bad_input_is_a_usage_error() {
    let dir = setup();
    let d = dir.path();
    let long = "a".repeat(1025);
    for args in [
        &["totp", "enroll"][..],
        &["totp", "enroll", "--sub", ""],
        &["totp", "enroll", "--sub", &long],
        &["totp", "enroll", "--sub", "a", "--issuer", "a:b"],
        &["totp", "enroll", "--sub", "a", "--account", ""],
        &["totp", "verify", "--sub", ""],
        &["totp", "frobnicate", "--sub", "a"],
    ] {
        let run = keyward(d, args, b"");
        let line = run.usage_error();
        assert!(run.stdout.is_empty(), "{args:?}: {line}");
    }
    // A code that is not UTF-8.
    let run = keyward(d, &["totp", "verify", "--sub", "a"], &[0xff, 0xfe]);
    assert!(run.usage_error().contains("UTF-8"), "{}", run.stderr);
    // No factor: not enrolled, for each command that needs one.
    for cmd in ["verify", "recover", "recovery"] {
        let run = keyward(d, &["totp", cmd, "--sub", "nobody"], b"123456");
        assert_eq!(
            (run.code, run.json()),
            (1, json!({"error": "not_enrolled"})),
            "{cmd}"
        );
    }
    let run = keyward(d, &["totp", "disable", "--sub", "nobody"], b"");
    assert_eq!(run.code, 0, "{}", run.stderr);
}
