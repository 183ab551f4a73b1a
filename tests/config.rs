//! `keyward::config`: `keyward.toml` parsed by the library. Each accepted
//! shape reads back into the policies; each rejected one says which table
//! or key is wrong; numbers out of range parse and are refused by the
//! policy constructors or the builder.
#![cfg(feature = "config")]
#![allow(clippy::unwrap_used, clippy::panic)]

use std::sync::Arc;

use keyward::clock::ManualClock;
use keyward::config::{Config, ConfigError, DEFAULT_AUDIENCE, DEFAULT_ISSUER};
use keyward::{
    Error, JwtAlg, KeyRing, MemoryStore, OtpPolicy, PasswordPolicy, Scheme, SessionPolicy,
};
use keyward::{JwtPolicy, ThrottlePolicy};
use std::time::Duration;

const FULL: &str = r#"
# Every key keyward.toml knows.
[password]
iterations = 700000
min_iterations = 2000
max_iterations = 4000000
min_length = 12
max_length = 512
disabled_schemes = ["aspnet-identity-v2", "django-pbkdf2-sha1"]

[session]
access_ttl_secs = 600
reuse_grace_secs = 5
idle_ttl_secs = 86400
absolute_ttl_secs = 604800

[otp]
digits = 8
code_ttl_secs = 300
max_attempts = 5
lockout_secs = 900
max_consecutive_failures = 50

[jwt]
issuer = "https://auth.example.com"
audience = "api"
leeway_secs = 10
"#;

fn rejected(text: &str) -> ConfigError {
    match Config::from_toml_str(text) {
        Ok(c) => panic!("accepted {text:?}: {c:?}"),
        Err(e) => e,
    }
}

fn config(text: &str) -> Config {
    Config::from_toml_str(text).unwrap_or_else(|e| panic!("{text:?}: {e}"))
}

fn config_error(result: Result<impl std::fmt::Debug, Error>) -> String {
    match result {
        Err(Error::Config(msg)) => msg,
        other => panic!("expected Error::Config, got {other:?}"),
    }
}

#[test]
fn every_key_reads_back_into_the_policies() {
    let c = config(FULL);
    assert_eq!(c.password.iterations, Some(700_000));
    assert_eq!(c.otp.digits, Some(8));

    let p = c.password_policy().unwrap();
    assert_eq!(
        (
            p.iterations,
            p.min_iterations,
            p.max_iterations,
            p.min_length,
            p.max_length
        ),
        (700_000, 2_000, 4_000_000, 12, 512)
    );
    assert_eq!(
        p.disabled_schemes.iter().copied().collect::<Vec<_>>(),
        [Scheme::DjangoPbkdf2Sha1, Scheme::AspnetIdentityV2]
            .into_iter()
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect::<Vec<_>>()
    );

    let s = c.session_policy();
    assert_eq!(
        (s.reuse_grace_secs, s.idle_ttl_secs, s.absolute_ttl_secs),
        (5, 86_400, 604_800)
    );
    assert_eq!(s.max_retries, SessionPolicy::default().max_retries);

    let j = c.jwt_policy().unwrap();
    assert_eq!(
        (j.issuer(), j.audience(), j.access_ttl(), j.leeway()),
        ("https://auth.example.com", "api", 600, 10)
    );

    let o = c.otp_policy();
    assert_eq!(
        (
            o.digits,
            o.code_ttl_secs,
            o.max_attempts,
            o.lockout_secs,
            o.max_consecutive_failures
        ),
        (8, 300, 5, 900, 50)
    );
    assert_eq!(o.max_retries, OtpPolicy::default().max_retries);

    // The builder carries all four into a working Keyward.
    let kw = c
        .builder()
        .unwrap()
        .keys(KeyRing::generate(JwtAlg::HS256).unwrap())
        .store(MemoryStore::new())
        .clock(Arc::new(ManualClock::new(1_800_000_000)))
        .build()
        .unwrap();
    assert_eq!(*kw.passwords().policy(), p);
    assert_eq!(*kw.jwt().policy(), j);
    assert_eq!(*kw.sessions().policy(), s);
    assert_eq!(*kw.otp().policy(), o);
}

#[test]
fn an_empty_file_is_the_defaults() {
    for text in ["", "\n# nothing\n", "[password]\n[session]\n[otp]\n[jwt]\n"] {
        let c = config(text);
        assert_eq!(c, Config::default());
        assert_eq!(c.password_policy().unwrap(), PasswordPolicy::default());
        assert_eq!(c.session_policy(), SessionPolicy::default());
        assert_eq!(c.otp_policy(), OtpPolicy::default());
        let j = c.jwt_policy().unwrap();
        assert_eq!(
            (j.issuer(), j.audience()),
            (DEFAULT_ISSUER, DEFAULT_AUDIENCE)
        );
        // Nothing about access tokens: a password-only Keyward builds
        // without a key ring, and has no access tokens.
        assert!(!c.sets_jwt());
        let kw = c.builder().unwrap().build().unwrap();
        assert!(kw.jwt().is_err());
    }
}

#[test]
fn an_unknown_table_is_named() {
    let e = rejected("[passwords]\niterations = 2000\n");
    assert!(e.message().contains("unknown field `passwords`"), "{e}");
    assert_eq!(e.line(), Some(1), "{e:?}");
    // The message is one line.
    assert!(!e.message().contains('\n'));
}

#[test]
fn an_unknown_key_is_named_with_its_table() {
    let e = rejected("[password]\nmin_length = 4\niteration = 2000\n");
    assert!(e.message().contains("unknown field `iteration`"), "{e}");
    assert_eq!(e.key(), Some("password"), "{e:?}");
    assert_eq!(e.line(), Some(3), "{e:?}");
    assert!(e.to_string().contains("password"), "{e}");

    // A key of another table is unknown here.
    let e = rejected("[otp]\nleeway_secs = 5\n");
    assert!(e.message().contains("unknown field `leeway_secs`"), "{e}");
    assert_eq!(e.key(), Some("otp"), "{e:?}");
    // Dotted keys at the top level are the same keys.
    let e = rejected("otp.lockout = 60\n");
    assert!(e.message().contains("unknown field `lockout`"), "{e}");
}

#[test]
fn a_wrong_type_is_named_by_its_key() {
    for (text, key, line) in [
        (
            "[password]\niterations = \"many\"\n",
            "password.iterations",
            2,
        ),
        ("[otp]\nmax_attempts = -1\n", "otp.max_attempts", 2),
        ("[otp]\ndigits = 4294967296\n", "otp.digits", 2),
        ("[jwt]\nissuer = 7\n", "jwt.issuer", 2),
        (
            "[session]\nidle_ttl_secs = 1.5\n",
            "session.idle_ttl_secs",
            2,
        ),
        (
            "[password]\ndisabled_schemes = \"django-pbkdf2-sha1\"\n",
            "password.disabled_schemes",
            2,
        ),
        ("password = 3\n", "password", 1),
    ] {
        let e = rejected(text);
        assert_eq!(e.key(), Some(key), "{text:?}: {e:?}");
        assert_eq!(e.line(), Some(line), "{text:?}: {e:?}");
        assert!(e.to_string().contains(key), "{e}");
    }
}

#[test]
fn text_that_is_not_toml_is_rejected_with_its_line() {
    for (text, line) in [
        ("[password\niterations = 2000\n", 1),
        ("[password]\niterations = 2000\niterations = 3000\n", 3),
        ("[password]\n\niterations 2000\n", 3),
    ] {
        let e = rejected(text);
        assert_eq!(e.line(), Some(line), "{text:?}: {e:?}");
        assert!(!e.message().is_empty() && !e.message().contains('\n'));
    }
}

#[test]
fn a_bad_scheme_name_is_refused_by_the_password_policy() {
    let c = config("[password]\ndisabled_schemes = [\"md5\"]\n");
    let msg = config_error(c.password_policy());
    assert!(msg.contains("unknown scheme name \"md5\""), "{msg}");
    assert!(msg.contains("password.disabled_schemes"), "{msg}");
    config_error(c.builder());
    // Every name keyward writes is accepted.
    for scheme in Scheme::ALL {
        let c = config(&format!(
            "[password]\ndisabled_schemes = [\"{}\"]\n",
            scheme.name()
        ));
        assert!(
            c.password_policy()
                .unwrap()
                .disabled_schemes
                .contains(&scheme)
        );
    }
}

#[test]
fn values_out_of_range_are_refused_by_the_builder() {
    for (text, needle) in [
        ("[password]\niterations = 10\n", "password.iterations"),
        ("[password]\nmin_iterations = 0\n", "min_iterations"),
        ("[password]\nmin_length = 2000\n", "min_length"),
        (
            "[password]\ndisabled_schemes = [\"pbkdf2-sha256\"]\n",
            "cannot contain pbkdf2-sha256",
        ),
        ("[otp]\nmax_attempts = 0\n", "otp.max_attempts"),
        ("[otp]\ndigits = 5\n", "otp.digits"),
        ("[otp]\nlockout_secs = 0\n", "otp.lockout_secs"),
        (
            "[otp]\nmax_attempts = 5\nmax_consecutive_failures = 4\n",
            "max_consecutive_failures",
        ),
        (
            "[session]\nidle_ttl_secs = 100\nabsolute_ttl_secs = 10\n",
            "idle_ttl_secs",
        ),
    ] {
        let c = config(text);
        let builder = c
            .builder()
            .unwrap()
            .keys(KeyRing::generate(JwtAlg::HS256).unwrap())
            .issuer("https://auth.example.com")
            .audience("api")
            .store(MemoryStore::new());
        let msg = config_error(builder.build());
        assert!(msg.contains(needle), "{text:?}: {msg}");
    }
    // The access-token numbers are refused as soon as the policy is made:
    // the file cannot reach the `dangerous_…` settings.
    for (text, needle) in [
        ("[jwt]\nleeway_secs = 120\n", "leeway"),
        ("[session]\naccess_ttl_secs = 3600\n", "lifetime"),
        ("[session]\naccess_ttl_secs = 0\n", "lifetime"),
    ] {
        let c = config(text);
        assert!(c.sets_jwt());
        assert!(config_error(c.jwt_policy()).contains(needle), "{text:?}");
        assert!(config_error(c.builder()).contains(needle), "{text:?}");
    }
}

#[test]
fn a_jwt_table_needs_a_key_ring() {
    let c = config("[jwt]\naudience = \"api\"\n");
    assert!(c.sets_jwt());
    config_error(c.builder().unwrap().build());
    let kw = c
        .builder()
        .unwrap()
        .keys(KeyRing::generate(JwtAlg::EdDSA).unwrap())
        .build()
        .unwrap();
    let j = kw.jwt().unwrap().policy();
    assert_eq!((j.issuer(), j.audience()), (DEFAULT_ISSUER, "api"));
}

#[test]
fn a_config_error_becomes_a_config_error_of_the_crate() {
    let e = rejected("[otp]\ndigits = \"six\"\n");
    let msg = config_error(Err::<(), Error>(e.clone().into()));
    assert_eq!(msg, e.to_string());
    assert!(msg.contains("otp.digits"), "{msg}");
}

#[test]
fn an_unknown_key_is_refused_in_every_table() {
    for table in ["password", "session", "otp", "jwt", "throttle"] {
        let e = rejected(&format!("[{table}]\nno_such_key = 1\n"));
        assert!(e.message().contains("unknown field `no_such_key`"), "{e}");
        assert_eq!(e.key(), Some(table), "{e:?}");
        assert_eq!(e.line(), Some(2), "{e:?}");
    }
    // A policy field's plain name where the file takes another form.
    let e = rejected("[password]\nqueue_timeout = 5\n");
    assert!(e.message().contains("unknown field `queue_timeout`"), "{e}");
    let e = rejected("[jwt]\naccess_ttl_secs = 600\n");
    assert!(
        e.message().contains("unknown field `access_ttl_secs`"),
        "{e}"
    );
}

#[test]
fn the_throttle_table_reaches_the_throttles() {
    let c = config("[throttle]\nlogin_burst = 2\nlogin_period_secs = 60\n");
    let t = c.throttle_policy();
    assert_eq!((t.login_burst, t.login_period_secs), (2, 60));
    assert_eq!(t.code_send_burst, ThrottlePolicy::default().code_send_burst);
    let kw = c
        .builder()
        .unwrap()
        .clock(Arc::new(ManualClock::new(1_800_000_000)))
        .build()
        .unwrap();
    kw.throttles().check_login("203.0.113.7").unwrap();
    kw.throttles().check_login("203.0.113.7").unwrap();
    assert!(matches!(
        kw.throttles().check_login("203.0.113.7"),
        Err(Error::Throttled { .. })
    ));
    // The defaults allow ten at once.
    let kw = config("").builder().unwrap().build().unwrap();
    for _ in 0..3 {
        kw.throttles().check_login("203.0.113.7").unwrap();
    }
}

#[test]
fn every_policy_field_has_its_key() {
    let c = config(
        "[password]\nmax_in_flight = 3\nqueue_timeout_ms = 250\n\
         [session]\nmax_retries = 4\n\
         [otp]\nmax_retries = 7\n\
         [throttle]\ncode_send_period_secs = 30\ncode_send_burst = 2\n\
         login_period_secs = 3\nlogin_burst = 20\npurge_every = 100\n",
    );
    let p = c.password_policy().unwrap();
    assert_eq!(
        (p.max_in_flight, p.queue_timeout),
        (3, Duration::from_millis(250))
    );
    assert_eq!(c.session_policy().max_retries, 4);
    assert_eq!(c.otp_policy().max_retries, 7);
    let t = c.throttle_policy();
    assert_eq!(
        (
            t.code_send_period_secs,
            t.code_send_burst,
            t.login_period_secs,
            t.login_burst,
            t.purge_every
        ),
        (30, 2, 3, 20, 100)
    );
    let kw = c
        .builder()
        .unwrap()
        .keys(KeyRing::generate(JwtAlg::HS256).unwrap())
        .issuer("https://auth.example.com")
        .audience("api")
        .store(MemoryStore::new())
        .build()
        .unwrap();
    assert_eq!(*kw.passwords().policy(), p);
    assert_eq!(kw.sessions().policy().max_retries, 4);
    assert_eq!(kw.otp().policy().max_retries, 7);
}

#[test]
fn new_keys_out_of_range_are_refused_by_the_builder() {
    for (text, needle) in [
        ("[throttle]\nlogin_burst = 0\n", "throttle login: burst"),
        (
            "[throttle]\ncode_send_period_secs = 0\n",
            "throttle code_send: period",
        ),
        ("[throttle]\npurge_every = 0\n", "purge_every"),
        ("[password]\nmax_in_flight = 0\n", "password.max_in_flight"),
        ("[session]\nmax_retries = 0\n", "max_retries"),
        ("[otp]\nmax_retries = 0\n", "otp.max_retries"),
    ] {
        let builder = config(text)
            .builder()
            .unwrap()
            .keys(KeyRing::generate(JwtAlg::HS256).unwrap())
            .issuer("https://auth.example.com")
            .audience("api")
            .store(MemoryStore::new());
        let msg = config_error(builder.build());
        assert!(msg.contains(needle), "{text:?}: {msg}");
    }
    for (text, key) in [
        ("[throttle]\nlogin_burst = -1\n", "throttle.login_burst"),
        (
            "[password]\nqueue_timeout_ms = \"1s\"\n",
            "password.queue_timeout_ms",
        ),
    ] {
        let e = rejected(text);
        assert_eq!(e.key(), Some(key), "{text:?}: {e:?}");
        assert_eq!(e.line(), Some(2), "{text:?}: {e:?}");
    }
}

/// A service that keeps its settings in its own file reads the policies
/// directly, with the keys of `keyward.toml`.
#[test]
fn the_policies_deserialize_on_their_own() {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct AppSettings {
        listen: String,
        #[serde(default)]
        otp: OtpPolicy,
        jwt: JwtPolicy,
        #[serde(default)]
        throttle: ThrottlePolicy,
    }
    let s: AppSettings = toml::from_str(
        "listen = \"[::]:8080\"\n\
         [otp]\nmax_attempts = 5\n\
         [jwt]\nissuer = \"https://auth.example.com\"\naudience = \"api\"\nleeway_secs = 5\n",
    )
    .unwrap();
    assert_eq!(s.listen, "[::]:8080");
    assert_eq!(s.otp.max_attempts, 5);
    assert_eq!(s.otp.digits, OtpPolicy::default().digits);
    assert_eq!(
        (s.jwt.issuer(), s.jwt.leeway()),
        ("https://auth.example.com", 5)
    );
    assert_eq!(s.throttle, ThrottlePolicy::default());
    // The safe ranges hold: no `dangerous_…` setting from a file.
    let e = toml::from_str::<JwtPolicy>("issuer = \"i\"\naudience = \"a\"\nleeway_secs = 120\n")
        .err()
        .unwrap();
    assert!(e.message().contains("leeway"), "{e}");
}
