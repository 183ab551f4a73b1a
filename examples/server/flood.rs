//! A login flood against the reference server, measured: the server
//! example's `flood` mode.
//!
//! ```text
//! cargo run --release --example server -- flood \
//!     [--clients N] [--attacker-nice N] [--hash-nice N]
//! ```
//!
//! It serves the server's application in-process on a loopback port
//! (SQLite store, the default 600,000-iteration policy) and reports:
//! 1. `/me`, `/token/refresh` and `/login` latency, idle;
//! 2. the same during 20 s of 200 concurrent clients posting wrong
//!    passwords from many fake source addresses (`X-Forwarded-For`), with
//!    every `/login` answer's status and latency. The 200 clients run in a
//!    second process (this program, run as `flood --attack URL`), so that
//!    the attack's own CPU time is not spent inside the server's process;
//!    on a machine with few cores, `--attacker-nice N` (default 10) lowers
//!    its priority, standing in for attackers on other machines, and
//!    `--attacker-nice 0` gives it the server's priority. The server hashes
//!    passwords at nice `--hash-nice` (default 10), as the server mode
//!    does;
//! 3. one legitimate login made during the flood, retried after
//!    `Retry-After`;
//! 4. resident memory before and after;
//! 5. timing uniformity: 1,000 logins for unknown users and 1,000 wrong
//!    passwords for a real one, interleaved, compared by median (on a
//!    second server at 100,000 iterations with the login limits opened).
//!
//! `--clients N` (default 200) sets the number of attacking clients;
//! `--clients 0` is the control run: the same 20 s of `/me` and
//! `/token/refresh` with no flood. It only talks to 127.0.0.1 and stops by
//! itself.

#![allow(
    clippy::arithmetic_side_effects,
    clippy::indexing_slicing,
    reason = "a measurement program: counters and sums over bounded runs"
)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use keyward::limit::Limit;
use keyward::{JwtAlg, KeyRing, Keyward, PasswordPolicy, SqliteStore};
use serde_json::{Value, json};

use crate::app;

const FLOOD: Duration = Duration::from_secs(20);
const CLIENTS: u64 = 200;
const DEFAULT_ATTACKER_NICE: u32 = 10;
const DEFAULT_HASH_NICE: i32 = 10;
const IDLE_SAMPLES: usize = 3_000;
const IDLE_LOGINS: u32 = 100;

/// The attacking process: `clients` clients post wrong passwords to
/// `{base}/login` for `secs` seconds, each from a fresh fake address, then
/// print one JSON line with every answer's status and latency summary.
async fn attack(base: &str, secs: u64, clients: u64) -> Result<(), Box<dyn std::error::Error>> {
    let c = reqwest::Client::new();
    let stop = Arc::new(AtomicBool::new(false));
    let counter = Arc::new(AtomicU64::new(0));
    let mut attackers = Vec::new();
    for client in 0..clients {
        let (c, base, stop, counter) = (
            c.clone(),
            base.to_owned(),
            Arc::clone(&stop),
            Arc::clone(&counter),
        );
        attackers.push(tokio::spawn(async move {
            let mut seen: Vec<(u16, Option<u64>, Duration)> = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let n = counter.fetch_add(1, Ordering::Relaxed);
                let ip = format!("10.{}.{}.{}", (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff);
                let body = json!({"username": format!("victim{}", n % 5000), "password": format!("guess-{client}-{n}")});
                let (status, retry, _, d) = post(&c, &format!("{base}/login"), &ip, &body).await;
                seen.push((status, retry, d));
            }
            seen
        }));
    }
    tokio::time::sleep(Duration::from_secs(secs)).await;
    stop.store(true, Ordering::Relaxed);
    let mut logins = Vec::new();
    for a in attackers {
        logins.extend(a.await?);
    }
    let mut by_status = std::collections::BTreeMap::<String, usize>::new();
    for (status, _, _) in &logins {
        *by_status.entry(status.to_string()).or_default() += 1;
    }
    // A 429 must say when to come back.
    let without_retry_after = logins
        .iter()
        .filter(|(s, r, _)| *s == 429 && r.is_none())
        .count();
    let mut times: Vec<Duration> = logins.iter().map(|(_, _, d)| *d).collect();
    times.sort();
    let over_2s = times
        .iter()
        .filter(|d| **d > Duration::from_secs(2))
        .count();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "{}",
        json!({
            "answers": logins.len(),
            "statuses": by_status,
            "over_2s": over_2s,
            "429_without_retry_after": without_retry_after,
            "p50_ms": ms(percentile(&times, 50)),
            "p99_ms": ms(percentile(&times, 99)),
            "max_ms": ms(times.last().copied().unwrap_or_default()),
        })
    );
    Ok(())
}

/// Starts the attacking process against `base`, at `nice` (through
/// `nice(1)` when it is above 0).
fn spawn_attacker(base: &str, nice: u32, clients: u64) -> std::io::Result<std::process::Child> {
    let exe = std::env::current_exe()?;
    let secs = FLOOD.as_secs().to_string();
    let mut cmd = if nice > 0 {
        let mut c = std::process::Command::new("nice");
        c.arg("-n").arg(nice.to_string()).arg(exe);
        c
    } else {
        std::process::Command::new(exe)
    };
    cmd.args(["flood", "--attack", base, "--secs", &secs])
        .args(["--clients", &clients.to_string()])
        .stdout(std::process::Stdio::piped())
        .spawn()
}

fn percentile(sorted: &[Duration], p: usize) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = (sorted.len().saturating_sub(1)).saturating_mul(p) / 100;
    sorted[i]
}

fn summary(name: &str, mut v: Vec<Duration>) -> (Duration, Duration) {
    v.sort();
    let (p50, p99) = (percentile(&v, 50), percentile(&v, 99));
    let max = v.last().copied().unwrap_or_default();
    println!(
        "  {name:<28} n={:<6} p50={:>9.3?} p99={:>9.3?} max={:>9.3?}",
        v.len(),
        p50,
        p99,
        max
    );
    (p50, p99)
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .map(str::to_owned)
        })
        .and_then(|l| l.split_whitespace().nth(1).and_then(|n| n.parse().ok()))
        .unwrap_or(0)
}

/// Limits that never refuse within a run, for measurements that must reach
/// password verification on every attempt: the same names, a million a
/// minute.
fn opened_limits() -> app::RateLimits {
    let open = |l: &Limit| Limit::named(l.name(), 1_000_000, Duration::from_secs(60));
    let d = app::RateLimits::default();
    app::RateLimits {
        login_per_source: open(&d.login_per_source),
        login_per_account: open(&d.login_per_account),
        code_send_per_source: open(&d.code_send_per_source),
        code_verify_per_source: open(&d.code_verify_per_source),
    }
}

async fn serve(
    iterations: u32,
    limits: app::RateLimits,
    hashing: &tokio::runtime::Handle,
) -> Result<(String, tempfile::TempDir), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("flood.db");
    let mut policy = app::password_policy();
    policy.iterations = iterations;
    let kw = Keyward::builder()
        .password_policy(policy)
        .issuer("http://keyward.flood")
        .audience("keyward-server")
        .keys(KeyRing::generate(JwtAlg::EdDSA)?)
        .store(SqliteStore::open(&db).await?)
        .build()?;
    let users = app::Users::open(&db).await?;
    let state = app::App::new(kw, users, Arc::new(app::LogMailer), true)
        .with_limits(limits)
        .with_hashing(hashing.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move {
        let _ = axum::serve(
            listener,
            app::router(state).into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await;
    });
    Ok((base, dir))
}

async fn post(
    c: &reqwest::Client,
    url: &str,
    ip: &str,
    body: &Value,
) -> (u16, Option<u64>, Value, Duration) {
    let t = Instant::now();
    let r = c
        .post(url)
        .header("x-forwarded-for", ip)
        .json(body)
        .send()
        .await;
    let elapsed = t.elapsed();
    match r {
        Ok(r) => {
            let status = r.status().as_u16();
            let retry = r
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse().ok());
            let body = r.json().await.unwrap_or(Value::Null);
            (status, retry, body, elapsed)
        }
        Err(_) => (0, None, Value::Null, elapsed),
    }
}

/// `/me` and `/token/refresh`, `n` times each, one after the other.
async fn probe(
    c: &reqwest::Client,
    base: &str,
    access: &str,
    refresh: &mut String,
    n: usize,
) -> (Vec<Duration>, Vec<Duration>) {
    let (mut me, mut rf) = (Vec::new(), Vec::new());
    for _ in 0..n {
        let t = Instant::now();
        let ok = c
            .get(format!("{base}/me"))
            .bearer_auth(access)
            .send()
            .await
            .is_ok_and(|r| r.status() == 200);
        me.push(t.elapsed());
        let (status, _, body, d) = post(
            c,
            &format!("{base}/token/refresh"),
            "127.0.0.1",
            &json!({"refresh_token": refresh}),
        )
        .await;
        rf.push(d);
        if let Some(t) = body["refresh_token"]
            .as_str()
            .filter(|_| ok && status == 200)
        {
            *refresh = t.to_owned();
        }
    }
    (me, rf)
}

/// The command line.
struct Options {
    /// `--attack URL`: be the attacking process.
    attack: Option<String>,
    secs: u64,
    clients: u64,
    attacker_nice: u32,
    hash_nice: i32,
}

/// Reads the flags that follow `flood` on the command line.
fn options(mut args: impl Iterator<Item = String>) -> Result<Options, Box<dyn std::error::Error>> {
    let mut o = Options {
        attack: None,
        secs: FLOOD.as_secs(),
        clients: CLIENTS,
        attacker_nice: DEFAULT_ATTACKER_NICE,
        hash_nice: DEFAULT_HASH_NICE,
    };
    while let Some(flag) = args.next() {
        let value = args
            .next()
            .ok_or_else(|| format!("flood: {flag} needs a value"))?;
        match flag.as_str() {
            "--attack" => o.attack = Some(value),
            "--secs" => o.secs = value.parse()?,
            "--clients" => o.clients = value.parse()?,
            "--attacker-nice" => o.attacker_nice = value.parse()?,
            "--hash-nice" => o.hash_nice = value.parse()?,
            other => return Err(format!("flood: unknown option {other}").into()),
        }
    }
    Ok(o)
}

/// The `flood` mode: `args` are the flags after `flood`.
pub(crate) fn main(args: impl Iterator<Item = String>) -> Result<(), Box<dyn std::error::Error>> {
    let o = options(args)?;
    if let Some(base) = &o.attack {
        return tokio::runtime::Runtime::new()?.block_on(attack(base, o.secs, o.clients));
    }
    let hashing = app::hashing_runtime(o.hash_nice)?;
    tokio::runtime::Runtime::new()?.block_on(measure(&o, hashing.handle()))
}

async fn measure(
    o: &Options,
    hashing: &tokio::runtime::Handle,
) -> Result<(), Box<dyn std::error::Error>> {
    let (attacker_nice, hash_nice, clients) = (o.attacker_nice, o.hash_nice, o.clients);
    let (base, _dir) = serve(
        PasswordPolicy::default().iterations,
        app::RateLimits::default(),
        hashing,
    )
    .await?;
    let c = reqwest::Client::new();
    let creds = json!({"username": "alice", "password": "correct horse battery staple"});
    post(&c, &format!("{base}/register"), "127.0.0.1", &creds).await;
    let (_, _, pair, _) = post(&c, &format!("{base}/login"), "127.0.0.2", &creds).await;
    let access = pair["access_token"].as_str().unwrap_or_default().to_owned();
    let mut refresh = pair["refresh_token"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let rss_idle = rss_kib();

    println!(
        "idle ({} CPUs; password hashing at nice {hash_nice}):",
        std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
    );
    // Enough samples that the idle p99 is not one lucky run.
    let (me_idle, rf_idle) = probe(&c, &base, &access, &mut refresh, IDLE_SAMPLES).await;
    let (_, me_idle_p99) = summary("/me", me_idle);
    let (_, rf_idle_p99) = summary("/token/refresh", rf_idle);
    // /login idle: wrong passwords for unknown users (the same work as for
    // a real one), each from its own address, one after the other.
    let mut login_idle = Vec::new();
    for i in 0..IDLE_LOGINS {
        let body = json!({"username": format!("nobody{i}"), "password": "wrong password"});
        let ip = format!("198.18.0.{i}");
        let (status, _, _, d) = post(&c, &format!("{base}/login"), &ip, &body).await;
        if status == 401 {
            login_idle.push(d);
        }
    }
    summary("/login (401s)", login_idle);

    println!(
        "flood: {clients} clients posting wrong passwords for {} s from fake addresses:",
        FLOOD.as_secs()
    );
    let attacker = spawn_attacker(&base, attacker_nice, clients)?;
    println!(
        "  (attackers: a second process, pid {}, at nice {attacker_nice})",
        attacker.id()
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_flood = rss_kib();
    // The legitimate user logs in once, honouring Retry-After.
    let legit = {
        let (c, base, creds) = (c.clone(), base.clone(), creds.clone());
        tokio::spawn(async move {
            let t = Instant::now();
            let mut budget = Duration::ZERO;
            for attempt in 1..=20u32 {
                let (status, retry, _, _) =
                    post(&c, &format!("{base}/login"), "192.0.2.10", &creds).await;
                if status == 200 {
                    return (attempt, t.elapsed(), budget);
                }
                let wait = Duration::from_secs(retry.unwrap_or(1));
                budget += wait;
                tokio::time::sleep(wait).await;
            }
            (0, t.elapsed(), budget)
        })
    };
    let started = Instant::now();
    let mut me_flood = Vec::new();
    let mut rf_flood = Vec::new();
    while started.elapsed() < FLOOD.saturating_sub(Duration::from_secs(2)) {
        let (me, rf) = probe(&c, &base, &access, &mut refresh, 10).await;
        me_flood.extend(me);
        rf_flood.extend(rf);
    }
    let out = tokio::task::spawn_blocking(move || attacker.wait_with_output()).await??;
    let (attempts, legit_time, legit_budget) = legit.await?;
    let (_, me_flood_p99) = summary("/me", me_flood);
    let (_, rf_flood_p99) = summary("/token/refresh", rf_flood);
    let logins: Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| format!("flood: the attacking process's report: {e}"))?;
    println!(
        "  /login (all answers)           n={} p50={:.1}ms p99={:.1}ms max={:.1}ms",
        logins["answers"],
        logins["p50_ms"].as_f64().unwrap_or(f64::NAN),
        logins["p99_ms"].as_f64().unwrap_or(f64::NAN),
        logins["max_ms"].as_f64().unwrap_or(f64::NAN)
    );
    println!(
        "  /login statuses: {}; answers slower than 2 s: {}; 429 without Retry-After: {}",
        logins["statuses"], logins["over_2s"], logins["429_without_retry_after"]
    );
    println!(
        "  p99 under flood vs idle: /me {:.2}x, /token/refresh {:.2}x",
        me_flood_p99.as_secs_f64() / me_idle_p99.as_secs_f64().max(1e-9),
        rf_flood_p99.as_secs_f64() / rf_idle_p99.as_secs_f64().max(1e-9)
    );
    println!(
        "  legitimate login: succeeded on attempt {attempts} after {legit_time:.2?} (Retry-After budget {legit_budget:?})"
    );
    println!(
        "  resident memory: idle {rss_idle} KiB, during flood {rss_flood} KiB, after {} KiB",
        rss_kib()
    );

    // Timing uniformity, on its own server with no flood, at 100,000
    // iterations to keep the run short (a lower cost makes any difference
    // outside PBKDF2 larger, not smaller), and with the login limits
    // opened so that every attempt reaches verification.
    println!(
        "timing: 1000 unknown-user vs 1000 wrong-password logins, interleaved (100,000 iterations):"
    );
    let (base, _dir2) = serve(100_000, opened_limits(), hashing).await?;
    post(&c, &format!("{base}/register"), "127.0.0.1", &creds).await;
    let (mut unknown, mut wrong) = (Vec::new(), Vec::new());
    for i in 0..1000u32 {
        let ip = format!("172.16.{}.{}", i >> 8, i & 0xff);
        let unknown_req = json!({"username": format!("ghost{i}"), "password": "wrong password"});
        let wrong_req = json!({"username": "alice", "password": format!("wrong {i}")});
        let url = format!("{base}/login");
        // Alternate which goes first, so that neither side always follows
        // the other.
        let ((s1, _, _, d1), (s2, _, _, d2)) = if i % 2 == 0 {
            let a = post(&c, &url, &ip, &unknown_req).await;
            (a, post(&c, &url, &format!("{ip}1"), &wrong_req).await)
        } else {
            let b = post(&c, &url, &format!("{ip}1"), &wrong_req).await;
            (post(&c, &url, &ip, &unknown_req).await, b)
        };
        if (s1, s2) == (401, 401) {
            unknown.push(d1);
            wrong.push(d2);
        }
    }
    let (u50, _) = summary("unknown user", unknown);
    let (w50, _) = summary("wrong password", wrong);
    println!(
        "  median difference: {:+.2}%",
        (u50.as_secs_f64() / w50.as_secs_f64().max(1e-9) - 1.0) * 100.0
    );
    Ok(())
}
