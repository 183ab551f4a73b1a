//! `Config::from_toml_str` on arbitrary text (`keyward.toml`). Beyond "no
//! panic":
//!
//! - parsing is deterministic, and a refusal is one non-empty line that
//!   points inside the text;
//! - an accepted file's values read back, unchanged, from the policy
//!   methods (`[throttle]` and `[api_keys]` are the policies themselves),
//!   and each refusal of a policy method has its documented cause (an
//!   unknown scheme name; a leeway or lifetime out of range);
//! - the `Keyward` built from it (with the fixed key ring, a memory store,
//!   an issuer and an audience) holds exactly those policies, and it
//!   builds if and only if every number is within the documented bounds.
#![no_main]

use std::sync::Arc;

use keyward::clock::ManualClock;
use keyward::config::{Config, DEFAULT_AUDIENCE, DEFAULT_ISSUER};
use keyward::{
    ApiKeyPolicy, Error, JwtPolicy, MemoryStore, OtpPolicy, PasswordPolicy, Scheme, SessionPolicy,
    ThrottlePolicy,
};
use keyward_fuzz::{AUDIENCE, ISSUER, NOW};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let parsed = Config::from_toml_str(text);
    assert_eq!(
        parsed,
        Config::from_toml_str(text),
        "parsing is not deterministic"
    );
    let config = match parsed {
        Ok(config) => config,
        Err(e) => {
            assert!(
                !e.message().is_empty() && !e.message().contains('\n'),
                "{e:?}"
            );
            if let Some(line) = e.line() {
                let lines = text.split('\n').count();
                assert!((1..=lines).contains(&line), "line {line} of {lines}: {e:?}");
            }
            return;
        }
    };

    let password = match config.password_policy() {
        Ok(p) => {
            let (c, d) = (&config.password, PasswordPolicy::default());
            assert_eq!(p.iterations, c.iterations.unwrap_or(d.iterations));
            assert_eq!(
                p.min_iterations,
                c.min_iterations.unwrap_or(d.min_iterations)
            );
            assert_eq!(
                p.max_iterations,
                c.max_iterations.unwrap_or(d.max_iterations)
            );
            assert_eq!(p.min_length, c.min_length.unwrap_or(d.min_length));
            assert_eq!(p.max_length, c.max_length.unwrap_or(d.max_length));
            assert_eq!(p.max_in_flight, c.max_in_flight.unwrap_or(d.max_in_flight));
            assert_eq!(
                p.queue_timeout,
                c.queue_timeout_ms
                    .map_or(d.queue_timeout, std::time::Duration::from_millis)
            );
            assert_eq!(
                p.upgrade_argon2,
                c.upgrade_argon2.unwrap_or(d.upgrade_argon2)
            );
            assert_eq!(
                p.argon2_max_memory_kib,
                c.argon2_max_memory_kib.unwrap_or(d.argon2_max_memory_kib)
            );
            let names = c.disabled_schemes.iter().flatten();
            let named = names.map(|n| Scheme::from_name(n).expect("named scheme"));
            assert!(
                p.disabled_schemes
                    .iter()
                    .copied()
                    .eq(named.collect::<std::collections::BTreeSet<_>>())
            );
            Some(p)
        }
        Err(Error::Config(_)) => {
            let names = config.password.disabled_schemes.iter().flatten();
            assert!(names.clone().any(|n| Scheme::from_name(n).is_none()));
            None
        }
        Err(e) => panic!("password_policy: {e:?}"),
    };

    let session = config.session_policy();
    let (c, d) = (&config.session, SessionPolicy::default());
    assert_eq!(
        session.reuse_grace_secs,
        c.reuse_grace_secs.unwrap_or(d.reuse_grace_secs)
    );
    assert_eq!(
        session.idle_ttl_secs,
        c.idle_ttl_secs.unwrap_or(d.idle_ttl_secs)
    );
    assert_eq!(
        session.absolute_ttl_secs,
        c.absolute_ttl_secs.unwrap_or(d.absolute_ttl_secs)
    );
    assert_eq!(session.max_retries, c.max_retries.unwrap_or(d.max_retries));

    let otp = config.otp_policy();
    let (c, d) = (&config.otp, OtpPolicy::default());
    assert_eq!(otp.digits, c.digits.unwrap_or(d.digits));
    assert_eq!(
        otp.code_ttl_secs,
        c.code_ttl_secs.unwrap_or(d.code_ttl_secs)
    );
    assert_eq!(otp.max_attempts, c.max_attempts.unwrap_or(d.max_attempts));
    assert_eq!(otp.lockout_secs, c.lockout_secs.unwrap_or(d.lockout_secs));
    assert_eq!(
        otp.max_consecutive_failures,
        c.max_consecutive_failures
            .unwrap_or(d.max_consecutive_failures)
    );
    assert_eq!(otp.max_retries, c.max_retries.unwrap_or(d.max_retries));

    let throttle = config.throttle_policy();
    assert_eq!(throttle, config.throttle);

    // `[api_keys]` is the policy itself: an absent key keeps its default.
    let api_keys = config.api_key_policy();
    assert_eq!(api_keys, config.api_keys);

    let (leeway, ttl) = (config.jwt.leeway_secs, config.session.access_ttl_secs);
    let jwt = match config.jwt_policy() {
        Ok(j) => {
            let c = &config.jwt;
            assert_eq!(j.issuer(), c.issuer.as_deref().unwrap_or(DEFAULT_ISSUER));
            assert_eq!(
                j.audience(),
                c.audience.as_deref().unwrap_or(DEFAULT_AUDIENCE)
            );
            let d = JwtPolicy::new("a", "b");
            assert_eq!(j.leeway(), leeway.unwrap_or(d.leeway()));
            assert_eq!(j.access_ttl(), ttl.unwrap_or(d.access_ttl()));
            Some(j)
        }
        Err(Error::Config(_)) => {
            assert!(leeway.is_some_and(|v| v > 30) || ttl.is_some_and(|v| !(1..=900).contains(&v)));
            None
        }
        Err(e) => panic!("jwt_policy: {e:?}"),
    };

    let builder = match config.builder() {
        Ok(b) => {
            assert!(password.is_some() && (jwt.is_some() || !config.sets_jwt()));
            b
        }
        Err(Error::Config(_)) => {
            assert!(password.is_none() || (config.sets_jwt() && jwt.is_none()));
            return;
        }
        Err(e) => panic!("builder: {e:?}"),
    };
    let password = password.expect("checked above");
    // Issuer and audience for a file that sets none, so that sessions (and
    // their policy check) are always built; the file's policy overrides them.
    let built = builder
        .issuer(ISSUER)
        .audience(AUDIENCE)
        .keys(keyward_fuzz::keyring())
        .store(MemoryStore::new())
        .clock(Arc::new(ManualClock::new(NOW)))
        .build();
    let jwt = jwt
        .filter(|_| config.sets_jwt())
        .unwrap_or_else(|| JwtPolicy::new(ISSUER, AUDIENCE));
    let in_bounds = password_in_bounds(&password)
        && throttle_in_bounds(&throttle)
        && api_keys_in_bounds(&api_keys)
        && session_in_bounds(&session)
        && otp_in_bounds(&otp)
        && !jwt.issuer().is_empty()
        && !jwt.audience().is_empty();
    match built {
        Ok(kw) => {
            assert!(
                in_bounds,
                "built out of bounds: {password:?} {session:?} {otp:?} {jwt:?} {api_keys:?}"
            );
            assert_eq!(*kw.passwords().policy(), password);
            assert_eq!(*kw.jwt().policy(), jwt);
            assert_eq!(*kw.sessions().policy(), session);
            assert_eq!(*kw.otp().policy(), otp);
            assert_eq!(*kw.api_keys().policy(), api_keys);
        }
        Err(Error::Config(msg)) => {
            assert!(!in_bounds, "refused in bounds: {msg}");
        }
        Err(e) => panic!("build: {e:?}"),
    }
});

/// The bounds `KeywardBuilder::build` holds a [`PasswordPolicy`] to.
fn password_in_bounds(p: &PasswordPolicy) -> bool {
    (1..=p.max_iterations).contains(&p.min_iterations)
        && (p.min_iterations..=p.max_iterations).contains(&p.iterations)
        && p.max_length >= 1
        && p.min_length <= p.max_length
        && !p.disabled_schemes.contains(&Scheme::Pbkdf2Sha256)
        && p.max_in_flight >= 1
        && (8..=4_194_304).contains(&p.argon2_max_memory_kib)
}

/// The bounds `KeywardBuilder::build` holds a [`ThrottlePolicy`] to, for
/// each of its two limits.
fn throttle_in_bounds(t: &ThrottlePolicy) -> bool {
    let limit = |burst: u32, period: u64| {
        (1..=1_000_000).contains(&burst)
            && (1..=86_400).contains(&period)
            && period.saturating_mul(u64::from(burst)) <= 365 * 86_400
    };
    limit(t.code_send_burst, t.code_send_period_secs)
        && limit(t.login_burst, t.login_period_secs)
        && t.purge_every >= 1
}

/// The bounds `KeywardBuilder::build` holds a [`SessionPolicy`] to.
fn session_in_bounds(s: &SessionPolicy) -> bool {
    s.idle_ttl_secs >= 1
        && s.idle_ttl_secs <= s.absolute_ttl_secs
        && s.absolute_ttl_secs <= 365 * 86_400
        && s.reuse_grace_secs <= 60
        && s.max_retries >= 1
}

/// The bounds documented on [`OtpPolicy`]'s fields, which
/// `KeywardBuilder::build` holds it to.
fn otp_in_bounds(o: &OtpPolicy) -> bool {
    (6..=9).contains(&o.digits)
        && (1..=3_600).contains(&o.code_ttl_secs)
        && (1..=10).contains(&o.max_attempts)
        && (1..=7 * 86_400).contains(&o.lockout_secs)
        && (o.max_attempts..=100).contains(&o.max_consecutive_failures)
        && o.max_retries >= 1
}

/// The bounds documented on [`ApiKeyPolicy`]'s fields, which
/// `KeywardBuilder::build` holds it to.
fn api_keys_in_bounds(a: &ApiKeyPolicy) -> bool {
    (1..=1_000).contains(&a.max_keys_per_owner)
        && (1..=86_400).contains(&a.touch_interval_secs)
        && (1..=400 * 86_400).contains(&a.retention_secs)
        && a.max_retries >= 1
}
