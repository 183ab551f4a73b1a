//! `keyward`: the operator's command-line tool, a thin layer over the
//! library. The contract (arguments, output, exit codes) is documented in
//! the README; scripts rely on it.
//!
//! Secrets come on stdin, never in argv. stdout is one line. Exit codes: 0
//! success or a positive verdict, 1 a negative verdict (with a JSON reason),
//! 2 bad input or usage (with a one-line message on stderr).

use std::collections::BTreeMap;
use std::io::{BufRead, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use serde_json::json;
use zeroize::Zeroizing;

use keyward::api_key::{self, ApiKeyError, KeySpec};
use keyward::config::Config;
use keyward::{
    Error, JwtAlg, JwtError, KeyRing, KeyringError, Keyward, Limit, LimitError, Password,
    PasswordPolicy, Passwords, TokenError, Tokens,
};
use keyward::{OtpError, Purpose, TotpError};

const DEFAULT_KEYRING: &str = "keyward.keys";
const DEFAULT_CONFIG: &str = "keyward.toml";
/// Longest line `audit` holds in memory, in bytes (without its line
/// ending). The longest hash keyward accepts is under 300 bytes; a longer
/// line is counted as malformed and skipped without being stored.
const AUDIT_MAX_LINE: usize = 1024;
/// Initial capacity of the stdin buffer for secrets.
const STDIN_SECRET_CAPACITY: usize = 8 * 1024;

#[derive(Parser)]
#[command(
    name = "keyward",
    version,
    about = "Credential hashing and token security: the operator's tool"
)]
struct Cli {
    // `global`: the contract lets these come after the subcommand too.
    /// Key ring file [default: keyward.keys, or $KEYWARD_KEYRING]
    #[arg(long, env = "KEYWARD_KEYRING", global = true)]
    keyring: Option<PathBuf>,
    /// Configuration file [default: keyward.toml if it exists]
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    /// State store URL: sqlite:PATH, memory:, postgres://… or redis://…
    #[arg(
        long,
        env = "KEYWARD_STORE",
        default_value = "sqlite:keyward.db",
        global = true
    )]
    store: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create a new key ring (mode 0600); never overwrites one.
    Init {
        /// Algorithm of the first JWT signing key.
        #[arg(long, default_value = "EdDSA", value_parser = ["EdDSA", "HS256", "ES256"])]
        alg: String,
        /// Also create a password pepper, mixed into every new hash.
        #[arg(long)]
        pepper: bool,
    },
    /// Hash the password on stdin; prints the PHC string.
    Hash {
        /// Iterations, overriding password.iterations.
        #[arg(long)]
        iterations: Option<u32>,
    },
    /// Verify the password on stdin against HASH.
    Verify {
        /// The stored hash.
        hash: String,
    },
    /// Show what HASH declares, without a password.
    Inspect {
        /// The stored hash.
        hash: String,
    },
    /// Sessions: access and refresh tokens over the state store.
    #[command(subcommand)]
    Session(SessionCommand),
    /// Count the hashes on stdin, one per line, by scheme; streams its input.
    Audit,
    /// Access tokens (JWT).
    #[command(subcommand)]
    Jwt(JwtCommand),
    /// Opaque tokens (API keys): mint one, or check one on stdin.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// One-time codes: issue, verify, unlock (uses --store).
    #[command(subcommand)]
    Otp(OtpCommand),
    /// A second factor (TOTP) over the state store: enroll, confirm,
    /// verify, recovery codes, disable.
    #[command(subcommand)]
    Totp(TotpCommand),
    /// API keys: create, verify, roll, revoke, disable, enable, list (uses
    /// --store).
    #[command(subcommand)]
    Key(KeyCommand),
    /// Rate limits kept in the store, exact across every process that
    /// shares it: check, reset (uses --store).
    #[command(subcommand)]
    Limit(LimitCommand),
    /// Erase every record of a subject: sessions, API keys, pending codes
    /// and lockout state (uses --store). Idempotent: run it again after an
    /// interruption; a run over an erased subject reports zeros.
    Erase {
        /// The subject.
        #[arg(long)]
        sub: String,
    },
    /// Print the tag that a subject's audit events carry (uses --store);
    /// exit 1 when the subject has no salt (never issued, or erased).
    Tag {
        /// The subject.
        #[arg(long)]
        sub: String,
    },
    /// The key ring: show its public facts, rotate or retire JWT keys, add
    /// a pepper. Every change rewrites the file atomically, mode 0600.
    #[command(subcommand)]
    Keyring(KeyringCommand),
}

#[derive(Subcommand)]
enum KeyringCommand {
    /// Print the kids and algorithms of the JWT keys and the pepper ids;
    /// never a key.
    Show,
    /// Add a JWT signing key and make it current; older keys keep
    /// verifying until retired.
    RotateJwt {
        /// Algorithm of the new key [default: the current key's].
        #[arg(long, value_parser = ["EdDSA", "HS256", "ES256"])]
        alg: Option<String>,
    },
    /// Remove a JWT key: tokens it signed stop verifying. Retire a key
    /// only once the tokens it signed have expired (the access-token
    /// lifetime after the rotation). The current key cannot be retired.
    RetireJwt {
        /// The key id, as `keyring show` prints it.
        #[arg(long)]
        kid: String,
    },
    /// Add a password pepper and make it current: new hashes use it, and
    /// older ones are rehashed to it on login.
    AddPepper,
}

#[derive(Subcommand)]
enum LimitCommand {
    /// Take COST units of the limit for a key; exit 1 when it is over.
    Check {
        /// The limit's name: 1 to 32 bytes of a-z, 0-9, '_', '.' and '-'.
        #[arg(long)]
        name: String,
        /// What is limited: an address, an account, an API key id.
        #[arg(long)]
        key: String,
        /// COUNT units earned back every SECS seconds, such as 10/60.
        // A rate never begins with '-': `--rate -1/60` is a bad rate, not
        // an unknown option.
        #[arg(long, value_name = "COUNT/SECS", value_parser = parse_rate, allow_hyphen_values = true)]
        rate: Rate,
        /// Units allowed at once [default: COUNT].
        #[arg(long, allow_negative_numbers = true)]
        burst: Option<u32>,
        /// Units this request takes.
        #[arg(long, default_value_t = 1, allow_negative_numbers = true)]
        cost: u32,
    },
    /// Forget a key's count: its next check starts from a full burst.
    Reset {
        /// The limit's name.
        #[arg(long)]
        name: String,
        /// The key.
        #[arg(long)]
        key: String,
    },
}

/// `--rate COUNT/SECS`, as written: the library checks the ranges.
#[derive(Clone, Copy)]
struct Rate {
    count: u32,
    secs: u64,
}

/// Parses `COUNT/SECS`: two whole numbers of ASCII digits, each at least 1.
fn parse_rate(text: &str) -> Result<Rate, String> {
    let expected = || "expected COUNT/SECS, two whole numbers such as 10/60".to_owned();
    let (count, secs) = text.split_once('/').ok_or_else(expected)?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(count) || !digits(secs) {
        return Err(expected());
    }
    let count: u32 = count
        .parse()
        .map_err(|_| "COUNT is too large (at most 1000000)".to_owned())?;
    let secs: u64 = secs
        .parse()
        .map_err(|_| "SECS is too large (at most a year, 31536000)".to_owned())?;
    if count == 0 {
        return Err("COUNT must be at least 1".into());
    }
    if secs == 0 {
        return Err("SECS must be at least 1".into());
    }
    Ok(Rate { count, secs })
}

#[derive(Subcommand)]
enum KeyCommand {
    /// Create a key for an owner; prints the key once, with its record.
    Create {
        /// The owner (a subject).
        #[arg(long)]
        owner: String,
        /// Token prefix: 1 to 20 characters of a-z, 0-9 and _.
        #[arg(long, default_value = api_key::DEFAULT_PREFIX)]
        prefix: String,
        /// Display name.
        #[arg(long, default_value = "")]
        name: String,
        /// A scope; repeat for several.
        #[arg(long = "scope")]
        scopes: Vec<String>,
        /// Lifetime in seconds; without it the key lives until revoked.
        #[arg(long)]
        expires_in: Option<u64>,
    },
    /// Verify the key on stdin.
    Verify,
    /// Give a key a new secret under the same id.
    Roll {
        /// The key id.
        #[arg(long)]
        id: String,
        /// Seconds the old key keeps working (never past the key's expiry).
        #[arg(long, default_value_t = 0)]
        overlap: u64,
    },
    /// Revoke a key, for good.
    Revoke {
        /// The key id.
        #[arg(long)]
        id: String,
    },
    /// Disable a key until it is enabled.
    Disable {
        /// The key id.
        #[arg(long)]
        id: String,
    },
    /// Enable a disabled key.
    Enable {
        /// The key id.
        #[arg(long)]
        id: String,
    },
    /// List an owner's keys, newest first (no key, no digest).
    List {
        /// The owner (a subject).
        #[arg(long)]
        owner: String,
    },
}

#[derive(Subcommand)]
enum SessionCommand {
    /// Start a session for a subject (an operator action: no password).
    Start {
        /// The subject.
        #[arg(long)]
        sub: String,
    },
    /// Rotate the refresh token on stdin.
    Refresh,
    /// Revoke a session: the whole family of the refresh token on stdin, or,
    /// with --session and --sub, the subject's session of that id.
    Revoke {
        /// The session id, as `session list` shows it; needs --sub. Without
        /// it the refresh token comes on stdin.
        #[arg(long, requires = "sub")]
        session: Option<String>,
        /// The subject the session belongs to; needs --session.
        #[arg(long, requires = "session")]
        sub: Option<String>,
    },
    /// List a subject's live sessions, oldest first.
    List {
        /// The subject.
        #[arg(long)]
        sub: String,
    },
    /// Revoke every session of a subject.
    RevokeAll {
        /// The subject.
        #[arg(long)]
        sub: String,
    },
}

#[derive(Subcommand)]
enum OtpCommand {
    /// Issue a code for a subject; prints it with its expiry.
    Issue {
        /// The subject (user id).
        #[arg(long)]
        sub: String,
        /// login, email_change, password_reset, or a custom name.
        #[arg(long, default_value = "login", value_parser = parse_purpose)]
        purpose: Purpose,
    },
    /// Verify the code on stdin for a subject.
    Verify {
        /// The subject (user id).
        #[arg(long)]
        sub: String,
        /// login, email_change, password_reset, or a custom name.
        #[arg(long, default_value = "login", value_parser = parse_purpose)]
        purpose: Purpose,
    },
    /// Clear a subject's failures and locks, including the one after too
    /// many consecutive failures.
    Unlock {
        /// The subject (user id).
        #[arg(long)]
        sub: String,
    },
    /// Show a subject's failures, lock and pending purposes; never a code.
    Status {
        /// The subject (user id).
        #[arg(long)]
        sub: String,
    },
}

#[derive(Subcommand)]
enum TotpCommand {
    /// Enroll a new, unconfirmed factor; prints its secret and otpauth URI.
    Enroll {
        /// The subject (user id).
        #[arg(long)]
        sub: String,
        /// The service's name, shown in the app.
        #[arg(long, default_value = "keyward")]
        issuer: String,
        /// The account's name, shown in the app [default: the subject].
        #[arg(long)]
        account: Option<String>,
    },
    /// Confirm the enrollment with the code on stdin; prints the recovery
    /// codes, once.
    Confirm {
        /// The subject (user id).
        #[arg(long)]
        sub: String,
    },
    /// Verify the code on stdin; a code is accepted once.
    Verify {
        /// The subject (user id).
        #[arg(long)]
        sub: String,
    },
    /// Replace the subject's recovery codes; prints the new set, once.
    Recovery {
        /// The subject (user id).
        #[arg(long)]
        sub: String,
    },
    /// Use the recovery code on stdin; prints how many are left.
    Recover {
        /// The subject (user id).
        #[arg(long)]
        sub: String,
    },
    /// Remove the subject's factor and its recovery codes.
    Disable {
        /// The subject (user id).
        #[arg(long)]
        sub: String,
    },
}

fn parse_purpose(name: &str) -> Result<Purpose, String> {
    Purpose::parse(name).map_err(|e| Usage::from(e).0)
}

#[derive(Subcommand)]
enum JwtCommand {
    /// Issue an access token for a subject; prints the JWT.
    Issue {
        /// The subject (`sub`).
        #[arg(long)]
        sub: String,
        /// Lifetime in seconds [default: session.access_ttl_secs, or 900].
        #[arg(long)]
        ttl: Option<u64>,
    },
    /// Verify the JWT on stdin; prints its claims.
    Verify,
    /// Print the public JWK Set.
    Jwks,
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Mint a token; prints it once with its id and SHA-256 digest.
    New {
        /// The token prefix: 1 to 20 characters of a-z, 0-9 and _.
        #[arg(long)]
        prefix: String,
    },
    /// Check the shape and checksum of the token on stdin; prints its id and
    /// SHA-256 digest.
    Check,
}

/// How a command ended, short of a usage error.
enum Done {
    /// Exit 0, with this line on stdout.
    Ok(String),
    /// Exit 1: a negative verdict, with this JSON line on stdout.
    Negative(String),
}

/// A usage or input error: exit 2, one line on stderr.
struct Usage(String);

impl From<Error> for Usage {
    /// The error's message; for bad input to the library (an argument
    /// out of its bounds, such as an over-long `--sub`), the bound it
    /// names, bare.
    fn from(e: Error) -> Self {
        match e {
            Error::InvalidInput(msg) => Self(msg),
            e => Self(e.to_string()),
        }
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
                print!("{e}");
                return ExitCode::SUCCESS;
            }
            let rendered = e.to_string();
            if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
                // clap renders the whole help; its first paragraph is the
                // command's description, which names no problem.
                eprintln!("keyward: {}", missing_subcommand(&rendered));
                return ExitCode::from(2);
            }
            // One line: clap's first paragraph, which may span lines (a
            // missing argument is named on the line after the message).
            let line = rendered
                .lines()
                .map(str::trim)
                .take_while(|l| !l.is_empty())
                .collect::<Vec<_>>()
                .join(" ");
            let line = line.trim_start_matches("error: ");
            eprintln!(
                "keyward: {}",
                if line.is_empty() {
                    "invalid usage"
                } else {
                    line
                }
            );
            return ExitCode::from(2);
        }
    };
    let outcome = run(cli);
    let mut stdout = std::io::stdout().lock();
    match outcome {
        Ok(Done::Ok(line)) => {
            if writeln!(stdout, "{line}").is_err() {
                return ExitCode::from(2);
            }
            ExitCode::SUCCESS
        }
        Ok(Done::Negative(line)) => {
            if writeln!(stdout, "{line}").is_err() {
                return ExitCode::from(2);
            }
            ExitCode::from(1)
        }
        Err(Usage(msg)) => {
            eprintln!("keyward: {msg}");
            ExitCode::from(2)
        }
    }
}

/// One line for a command run without its subcommand, from clap's help
/// text: the subcommands it has, and its usage line.
fn missing_subcommand(help: &str) -> String {
    let commands: Vec<&str> = help
        .lines()
        .skip_while(|l| l.trim() != "Commands:")
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .collect();
    let usage = help
        .lines()
        .find_map(|l| l.trim().strip_prefix("Usage: "))
        .unwrap_or("keyward <COMMAND>");
    if commands.is_empty() {
        format!("a subcommand is required; usage: {usage}")
    } else {
        format!(
            "a subcommand is required: one of {}; usage: {usage}",
            commands.join(", ")
        )
    }
}

fn run(cli: Cli) -> Result<Done, Usage> {
    let config = load_config(cli.config.as_deref())?;
    match cli.command {
        Command::Init { alg, pepper } => {
            let path = cli
                .keyring
                .unwrap_or_else(|| PathBuf::from(DEFAULT_KEYRING));
            let alg: JwtAlg = alg.parse()?;
            let mut keys = KeyRing::generate(alg)?;
            if pepper {
                keys.add_pepper()?;
            }
            keys.save_new(&path)
                .map_err(|e| Usage(format!("{}: {e}", path.display())))?;
            let key = keys.current_jwt_key();
            Ok(Done::Ok(
                json!({"keyring": path.display().to_string(), "kid": key.kid(), "alg": key.alg().name()})
                    .to_string(),
            ))
        }
        Command::Hash { iterations } => {
            let mut policy = password_policy(&config)?;
            if let Some(i) = iterations {
                // The bounds a hash must keep to be verified again: naming
                // them here beats the builder's generic refusal.
                let (min, max) = (policy.min_iterations, policy.max_iterations);
                if !(min..=max).contains(&i) {
                    return Err(Usage(format!(
                        "--iterations {i}: out of bounds; use {min} to {max} \
                         (password.min_iterations to password.max_iterations)"
                    )));
                }
                policy.iterations = i;
            }
            let kw = keyward(policy, cli.keyring.as_deref())?;
            let password = read_secret()?;
            Ok(Done::Ok(kw.passwords().hash(&password)?))
        }
        Command::Verify { hash } => {
            let kw = keyward(password_policy(&config)?, cli.keyring.as_deref())?;
            let info = kw.passwords().inspect(&hash)?;
            let password = read_secret()?;
            // No subject: the proof only reports the hash, and starts no
            // session.
            match kw.passwords().verify("-", &password, &hash) {
                Ok(v) => Ok(Done::Ok(
                    json!({
                        "valid": true,
                        "scheme": v.scheme().name(),
                        "needs_rehash": v.rehash().is_some(),
                        "new_hash": v.rehash(),
                    })
                    .to_string(),
                )),
                Err(Error::PasswordMismatch) => Ok(Done::Negative(
                    json!({
                        "valid": false,
                        "scheme": info.scheme.name(),
                        "needs_rehash": info.needs_rehash,
                        "new_hash": null,
                    })
                    .to_string(),
                )),
                Err(e) => Err(e.into()),
            }
        }
        Command::Jwt(cmd) => run_jwt(cmd, &config, cli.keyring.as_deref()),
        Command::Session(cmd) => run_session(cmd, &config, cli.keyring.as_deref(), &cli.store),
        Command::Otp(cmd) => run_otp(cmd, &config, cli.keyring.as_deref(), &cli.store),
        Command::Totp(cmd) => run_totp(cmd, &config, cli.keyring.as_deref(), &cli.store),
        Command::Key(cmd) => run_key(cmd, &config, cli.keyring.as_deref(), &cli.store),
        Command::Limit(cmd) => run_limit(cmd, cli.keyring.as_deref(), &cli.store),
        Command::Erase { sub } => run_erase(&sub, &config, cli.keyring.as_deref(), &cli.store),
        Command::Tag { sub } => run_tag(&sub, cli.keyring.as_deref(), &cli.store),
        Command::Keyring(cmd) => run_keyring(cmd, cli.keyring.as_deref()),
        Command::Audit => {
            let kw = keyward(password_policy(&config)?, cli.keyring.as_deref())?;
            let peppers: Vec<&str> = kw
                .keys()
                .map(|k| k.pepper_ids().collect())
                .unwrap_or_default();
            let counts = audit(kw.passwords(), &peppers, std::io::stdin().lock())?;
            Ok(Done::Ok(counts.to_json()))
        }
        Command::Inspect { hash } => {
            let kw = keyward(password_policy(&config)?, cli.keyring.as_deref())?;
            let info = kw.passwords().inspect(&hash)?;
            Ok(Done::Ok(
                json!({
                    "scheme": info.scheme.name(),
                    "iterations": info.iterations,
                    "salt_len": info.salt_len,
                    "hash_len": info.hash_len,
                    "needs_rehash": info.needs_rehash,
                })
                .to_string(),
            ))
        }
        Command::Token { command } => token(command),
    }
}

/// `keyward token …`. Digests are always plain SHA-256 here: the CLI
/// contract promises the SHA-256 of the whole token string.
fn token(command: TokenCommand) -> Result<Done, Usage> {
    let tokens = Tokens::plain();
    match command {
        TokenCommand::New { prefix } => {
            let new = tokens.generate(&prefix)?;
            Ok(Done::Ok(
                json!({
                    "token": new.token().unprotected_as_str(),
                    "id": new.id(),
                    "digest": new.digest().to_string(),
                })
                .to_string(),
            ))
        }
        TokenCommand::Check => {
            let input = read_secret_bytes()?;
            // Tokens are ASCII: input that is not even UTF-8 has a character
            // outside base62.
            let text = std::str::from_utf8(&input)
                .map_err(|_| Usage::from(Error::from(TokenError::BadCharacter)))?;
            let parsed = tokens.parse(text)?;
            Ok(Done::Ok(
                json!({"id": parsed.id(), "digest": parsed.digest().to_string()}).to_string(),
            ))
        }
    }
}

fn run_jwt(cmd: JwtCommand, config: &Config, keyring: Option<&Path>) -> Result<Done, Usage> {
    let keys = load_keys(keyring.unwrap_or(Path::new(DEFAULT_KEYRING)))?;
    let mut policy = config.jwt_policy()?;
    if let JwtCommand::Issue { ttl: Some(ttl), .. } = &cmd {
        // An operator's explicit lifetime may exceed the 15-minute default.
        policy = policy.dangerous_access_ttl_secs(*ttl)?;
    }
    let kw = Keyward::builder()
        .password_policy(password_policy(config)?)
        .jwt_policy(policy)
        .keys(keys)
        .build()?;
    let jwt = kw.jwt()?;
    match cmd {
        JwtCommand::Issue { sub, .. } => {
            let sid = format!("cli-{}", random_hex()?);
            let token = jwt.issue(&sub, &sid)?;
            Ok(Done::Ok(token.unprotected_as_str().to_owned()))
        }
        JwtCommand::Verify => {
            let input = read_secret()?;
            let token = std::str::from_utf8(input.unprotected_as_bytes())
                .map_err(|_| Usage("input is not a JWT: not UTF-8".into()))?;
            type Claims = serde_json::Map<String, serde_json::Value>;
            let verdict = match jwt.verify_with::<Claims>(token) {
                Err(Error::Jwt(JwtError::Malformed)) => {
                    let Some(signed) = jwt_signed_part(token) else {
                        return Err(Usage(
                            "input is not a JWT: not a well-formed compact JWS".into(),
                        ));
                    };
                    if token.len() > keyward::jwt::MAX_TOKEN_LEN {
                        return Ok(Done::Negative(
                            json!({"error": JwtError::Malformed.reason()}).to_string(),
                        ));
                    }
                    // A JWT, but its signature is missing or not even
                    // base64url (`alg: none`, a cut signature): judged as
                    // one with a wrong signature, so that the library's
                    // order of checks (key, algorithm, signature) names the
                    // reason. Whatever that judgement, the token is
                    // refused: its own signature was never checked.
                    match jwt.verify_with::<Claims>(&format!("{signed}.{PLACEHOLDER_SIGNATURE}")) {
                        Ok(_) => Err(Error::Jwt(JwtError::BadSignature)),
                        other => other,
                    }
                }
                other => other,
            };
            match verdict {
                Ok(claims) => Ok(Done::Ok(
                    serde_json::to_string(&claims).map_err(|e| Usage(e.to_string()))?,
                )),
                Err(Error::Jwt(e)) => {
                    let mut out = json!({"error": e.reason()});
                    if let JwtError::MissingClaim(c) | JwtError::InvalidClaim(c) = e {
                        out["claim"] = json!(c);
                    }
                    Ok(Done::Negative(out.to_string()))
                }
                Err(e) => Err(e.into()),
            }
        }
        JwtCommand::Jwks => Ok(Done::Ok(jwt.jwks().to_owned())),
    }
}

/// A signature segment that decodes (one zero byte) and verifies under no
/// key: what `jwt verify` puts in place of one that does not decode.
const PLACEHOLDER_SIGNATURE: &str = "AA";

/// The signed part (`header.payload`) of input that is a JWT, however bad
/// its signature: three `.`-separated segments, of which the first is
/// base64url of a JSON object and the second base64url. `None` for input
/// that is not a JWT at all.
fn jwt_signed_part(token: &str) -> Option<&str> {
    use base64ct::{Base64UrlUnpadded, Encoding};
    let (signed, _signature) = token.rsplit_once('.')?;
    let (header, payload) = signed.split_once('.')?;
    if payload.contains('.') {
        return None;
    }
    let header = Base64UrlUnpadded::decode_vec(header).ok()?;
    Base64UrlUnpadded::decode_vec(payload).ok()?;
    match serde_json::from_slice::<serde_json::Value>(&header) {
        Ok(serde_json::Value::Object(_)) => Some(signed),
        _ => None,
    }
}

/// Opens the state store named by `--store`, through the library's one URL
/// dispatch.
async fn open_store(url: &str) -> Result<std::sync::Arc<dyn keyward::Store>, Usage> {
    // Store URLs may carry a password: name the scheme only, except for a
    // SQLite file, whose path helps and holds no secret.
    let shown = if url.starts_with("sqlite:") {
        url
    } else {
        url.split(':').next().unwrap_or_default()
    };
    // A scheme alone (`--store sqlite`): the form it lacks, spelled out.
    if !url.contains(':') {
        return Err(Usage(format!(
            "--store {shown}: not a store URL; use sqlite:PATH (as in sqlite:keyward.db), \
             memory:, postgres://… or redis://…"
        )));
    }
    keyward::store::open(url)
        .await
        .map_err(|e| Usage(format!("store {shown}: {e}")))
}

fn runtime() -> Result<tokio::runtime::Runtime, Usage> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Usage(format!("cannot start the async runtime: {e}")))
}

fn run_session(
    cmd: SessionCommand,
    config: &Config,
    keyring: Option<&Path>,
    store: &str,
) -> Result<Done, Usage> {
    // The subject first, so that a bad one is named as such whatever else
    // is wrong. `revoke-all` keeps taking any subject, as it always has.
    if let SessionCommand::Start { sub }
    | SessionCommand::List { sub }
    | SessionCommand::Revoke { sub: Some(sub), .. } = &cmd
    {
        check_subject(sub)?;
    }
    let keys = load_keys(keyring.unwrap_or(Path::new(DEFAULT_KEYRING)))?;
    runtime()?.block_on(async {
        let kw = Keyward::builder()
            .jwt_policy(config.jwt_policy()?)
            .session_policy(config.session_policy())
            .keys(keys)
            .shared_store(open_store(store).await?)
            .build()?;
        let sessions = kw.sessions();
        let pair_json = |p: keyward::TokenPair| {
            json!({
                "access_token": p.access.unprotected_as_str(),
                "refresh_token": p.refresh.unprotected_as_str(),
                "expires_in": p.expires_in,
                "session": p.session_id,
            })
            .to_string()
        };
        let refused = |e: Error| match e {
            Error::Session(e) => Ok(Done::Negative(json!({"error": e.reason()}).to_string())),
            e => Err(Usage::from(e)),
        };
        match cmd {
            SessionCommand::Start { sub } => Ok(Done::Ok(pair_json(
                sessions.dangerous_start_without_proof(&sub).await?,
            ))),
            SessionCommand::Refresh => {
                let token = read_secret()?;
                let token = std::str::from_utf8(token.unprotected_as_bytes()).unwrap_or_default();
                match sessions.refresh(token).await {
                    Ok(p) => Ok(Done::Ok(pair_json(p))),
                    Err(e) => refused(e),
                }
            }
            SessionCommand::List { sub } => {
                let listed: Vec<_> = sessions
                    .list(&sub)
                    .await?
                    .iter()
                    .map(|s| {
                        // No `meta`: the contract's objects have no such
                        // field.
                        json!({
                            "session": s.id,
                            "started_at": s.started_at,
                            "refreshed_at": s.refreshed_at,
                            "generation": s.generation,
                            "expires_at": s.expires_at,
                        })
                    })
                    .collect();
                Ok(Done::Ok(json!({ "sessions": listed }).to_string()))
            }
            SessionCommand::Revoke { session, sub } => match (session, sub) {
                // One session of the subject, by its id. A malformed id,
                // another subject's and an unknown one all answer
                // "unknown".
                (Some(session), Some(sub)) => match sessions.revoke_session(&sub, &session).await {
                    Ok(()) => Ok(Done::Ok(json!({ "revoked": session }).to_string())),
                    Err(e) => refused(e),
                },
                // The whole family of the refresh token on stdin.
                (None, None) => {
                    let token = read_secret()?;
                    let token =
                        std::str::from_utf8(token.unprotected_as_bytes()).unwrap_or_default();
                    match sessions.revoke(token).await {
                        Ok(id) => Ok(Done::Ok(json!({"revoked": id}).to_string())),
                        Err(e) => refused(e),
                    }
                }
                // clap already refuses a lone flag.
                _ => Err(Usage("--session and --sub go together".into())),
            },
            SessionCommand::RevokeAll { sub } => {
                let found = sessions.revoke_all_found(&sub).await?;
                Ok(Done::Ok(
                    json!({"subject": sub, "revoked": true, "found": found}).to_string(),
                ))
            }
        }
    })
}

/// The longest subject the session service takes, in bytes.
const MAX_SUBJECT_LEN: usize = 1024;

/// A subject for the session commands: 1 to 1,024 bytes, the library's
/// bounds, named as the `--sub` flag's fault rather than with the
/// library's bare bound. `revoke_session` would answer "unknown" for such
/// a subject, but it is bad input, not a verdict.
fn check_subject(sub: &str) -> Result<(), Usage> {
    if sub.is_empty() || sub.len() > MAX_SUBJECT_LEN {
        return Err(Usage(format!(
            "--sub: a subject must be 1 to {MAX_SUBJECT_LEN} bytes, not {}",
            sub.len()
        )));
    }
    Ok(())
}

/// `erase`: every record of the subject, through `Keyward::erase`, with
/// every service's policy from the configuration.
fn run_erase(
    sub: &str,
    config: &Config,
    keyring: Option<&Path>,
    store_url: &str,
) -> Result<Done, Usage> {
    check_subject(sub)?;
    let keys = load_keys(keyring.unwrap_or(Path::new(DEFAULT_KEYRING)))?;
    let passwords = password_policy(config)?;
    runtime()?.block_on(async {
        let kw = Keyward::builder()
            .password_policy(passwords)
            .jwt_policy(config.jwt_policy()?)
            .session_policy(config.session_policy())
            .otp_policy(config.otp_policy())
            .throttle_policy(config.throttle_policy())
            .api_key_policy(config.api_key_policy())
            .keys(keys)
            .shared_store(open_store(store_url).await?)
            .build()?;
        let erased = kw.erase(sub).await?;
        Ok(Done::Ok(
            json!({
                "subject": sub,
                "erased": {
                    "sessions": erased.sessions,
                    "api_keys": erased.api_keys,
                    "codes": erased.codes,
                    "factors": erased.factors,
                },
            })
            .to_string(),
        ))
    })
}

/// `keyward keyring …`: public facts of the key ring, and the changes an
/// operator makes to it. A change loads the file, applies one library call
/// and writes the file back atomically with mode 0600
/// ([`KeyRing::save`]); nothing secret is printed.
fn run_keyring(cmd: KeyringCommand, keyring: Option<&Path>) -> Result<Done, Usage> {
    let path = keyring.unwrap_or(Path::new(DEFAULT_KEYRING));
    let mut keys = load_keys(path)?;
    let out = match cmd {
        KeyringCommand::Show => {
            let current = keys.current_jwt_key().kid();
            let jwt: Vec<_> = keys
                .jwt_keys()
                .map(|k| json!({"kid": k.kid(), "alg": k.alg().name(), "current": k.kid() == current}))
                .collect();
            let peppers: Vec<&str> = keys.pepper_ids().collect();
            return Ok(Done::Ok(
                json!({
                    "jwt": jwt,
                    "peppers": peppers,
                    "current_pepper": keys.current_pepper_id(),
                })
                .to_string(),
            ));
        }
        KeyringCommand::RotateJwt { alg } => {
            let alg: JwtAlg = match alg {
                Some(name) => name.parse()?,
                None => keys.current_jwt_key().alg(),
            };
            let key = keys.rotate_jwt(alg)?;
            json!({"kid": key.kid(), "alg": key.alg().name()})
        }
        KeyringCommand::RetireJwt { kid } => {
            keys.retire_jwt(&kid).map_err(|e| match e {
                Error::Config(msg) => Usage(format!("--kid {kid}: {msg}")),
                e => Usage::from(e),
            })?;
            json!({ "retired": kid })
        }
        KeyringCommand::AddPepper => json!({ "pepper": keys.add_pepper()? }),
    };
    keys.save(path)
        .map_err(|e| Usage(format!("{}: {e}", path.display())))?;
    Ok(Done::Ok(out.to_string()))
}

/// `keyward tag`: the subject's audit tag, from its salt in the store.
fn run_tag(sub: &str, keyring: Option<&Path>, store_url: &str) -> Result<Done, Usage> {
    check_subject(sub)?;
    let keys = load_keys(keyring.unwrap_or(Path::new(DEFAULT_KEYRING)))?;
    runtime()?.block_on(async {
        let kw = Keyward::builder()
            .keys(keys)
            .shared_store(open_store(store_url).await?)
            .build_partial()?;
        Ok(match kw.audit_tag(sub).await? {
            Some(tag) => Done::Ok(json!({"subject": sub, "tag": tag.to_hex()}).to_string()),
            None => Done::Negative(json!({"error": "unknown"}).to_string()),
        })
    })
}

/// The one-time-code commands, with the `[otp]` and `[throttle]` policies.
/// The code-send limit (`[throttle]`'s `code_send_*`) and the lockout both
/// live in the store, so they carry over from one run to the next and hold
/// across every process sharing `--store`.
fn run_otp(
    cmd: OtpCommand,
    config: &Config,
    keyring: Option<&Path>,
    store_url: &str,
) -> Result<Done, Usage> {
    let keys = load_keys(keyring.unwrap_or(Path::new(DEFAULT_KEYRING)))?;
    let otp_policy = config.otp_policy();
    let throttle_policy = config.throttle_policy();
    let passwords = password_policy(config)?;
    runtime()?.block_on(async {
        let store = open_store(store_url).await?;
        let kw = Keyward::builder()
            .password_policy(passwords)
            .keys(keys)
            .otp_policy(otp_policy)
            .throttle_policy(throttle_policy)
            .shared_store(store)
            .build_partial()?;
        let otp = kw.otp()?;
        match cmd {
            OtpCommand::Issue { sub, purpose } => match otp.issue(&sub, purpose).await {
                Ok(issued) => Ok(Done::Ok(
                    json!({"code": issued.code.unprotected_as_str(), "expires_at": issued.expires_at})
                        .to_string(),
                )),
                Err(e) => otp_refusal(e),
            },
            OtpCommand::Verify { sub, purpose } => {
                let input = read_secret()?;
                let code = std::str::from_utf8(input.unprotected_as_bytes())
                    .map_err(|_| Usage("input is not a code: not UTF-8".into()))?;
                match otp.verify(&sub, purpose, code).await {
                    Ok(_) => Ok(Done::Ok(json!({"ok": true}).to_string())),
                    Err(e) => otp_refusal(e),
                }
            }
            OtpCommand::Unlock { sub } => {
                let found = otp.unlock_found(&sub).await?;
                Ok(Done::Ok(
                    json!({"subject": sub, "unlocked": true, "found": found}).to_string(),
                ))
            }
            OtpCommand::Status { sub } => {
                let status = otp.status(&sub).await?;
                // `failures` counts toward the lock that only an unlock
                // ends; `retry_after` is the timed lock's, rounded up.
                Ok(Done::Ok(
                    json!({
                        "subject": sub,
                        "found": status.found,
                        "failures": status.failures,
                        "locked": status.locked,
                        "retry_after": status.retry_after.map(secs_rounded_up),
                        "locked_until_unlock": status.locked_until_unlock,
                        "pending": status.pending,
                    })
                    .to_string(),
                ))
            }
        }
    })
}

/// The API-key commands, over `--store`, with the `[api_keys]` policy.
fn run_key(
    cmd: KeyCommand,
    config: &Config,
    keyring: Option<&Path>,
    store_url: &str,
) -> Result<Done, Usage> {
    let keys = load_keys(keyring.unwrap_or(Path::new(DEFAULT_KEYRING)))?;
    let policy = config.api_key_policy();
    runtime()?.block_on(async {
        let store = open_store(store_url).await?;
        let kw = Keyward::builder()
            .keys(keys)
            .api_key_policy(policy)
            .shared_store(store)
            .build_partial()?;
        let api_keys = kw.api_keys()?;
        let done = match cmd {
            KeyCommand::Create {
                owner,
                prefix,
                name,
                scopes,
                expires_in,
            } => {
                let mut spec = KeySpec::named(name).prefix(prefix);
                for scope in scopes {
                    spec = spec.scope(scope);
                }
                if let Some(secs) = expires_in {
                    spec = spec.expires_in(Duration::from_secs(secs));
                }
                api_keys.create(&owner, spec).await.map(|made| {
                    let v = made.view();
                    json!({
                        "key": made.key().unprotected_as_str(),
                        "id": v.id,
                        "owner": v.owner,
                        "name": v.name,
                        "scopes": v.scopes,
                        "created_at": v.created_at,
                        "expires_at": v.expires_at,
                    })
                })
            }
            KeyCommand::Verify => {
                let input = read_secret_bytes()?;
                let key = std::str::from_utf8(&input)
                    .map_err(|_| Usage("input is not an API key: not UTF-8".into()))?;
                api_keys.verify(key).await.map(|ok| {
                    json!({
                        "id": ok.id(),
                        "owner": ok.owner(),
                        "name": ok.name(),
                        "scopes": ok.scopes().collect::<Vec<_>>(),
                        "expires_at": ok.expires_at(),
                    })
                })
            }
            KeyCommand::Roll { id, overlap } => api_keys
                .roll(&id, Duration::from_secs(overlap))
                .await
                .map(|rolled| {
                    json!({
                        "key": rolled.key().unprotected_as_str(),
                        "id": rolled.id(),
                        "previous_valid_until": rolled.previous_valid_until(),
                    })
                }),
            KeyCommand::Revoke { id } => api_keys
                .revoke(&id)
                .await
                .map(|()| json!({"id": id, "revoked": true})),
            KeyCommand::Disable { id } => api_keys
                .disable(&id)
                .await
                .map(|()| json!({"id": id, "enabled": false})),
            KeyCommand::Enable { id } => api_keys
                .enable(&id)
                .await
                .map(|()| json!({"id": id, "enabled": true})),
            KeyCommand::List { owner } => api_keys.list(&owner).await.map(|views| {
                let keys: Vec<_> = views
                    .iter()
                    .map(|v| {
                        json!({
                            "id": v.id,
                            "name": v.name,
                            "scopes": v.scopes,
                            "created_at": v.created_at,
                            "expires_at": v.expires_at,
                            "last_used_at": v.last_used_at,
                            "enabled": v.enabled,
                        })
                    })
                    .collect();
                json!({ "keys": keys })
            }),
        };
        match done {
            Ok(out) => Ok(Done::Ok(out.to_string())),
            // A refusal is exit 1 with its reason; a bad spec or id, a
            // malformed key, the store unreachable: exit 2.
            Err(Error::ApiKey(e)) if !matches!(e, ApiKeyError::BadSpec(_)) => {
                Ok(Done::Negative(json!({"error": e.reason()}).to_string()))
            }
            Err(e) => Err(e.into()),
        }
    })
}

/// The rate-limit commands, over `--store`. Each run is its own process
/// with no deny cache to speak of: every check is one load and, when
/// allowed, one commit on the store, which keeps the count exact across
/// processes.
fn run_limit(cmd: LimitCommand, keyring: Option<&Path>, store_url: &str) -> Result<Done, Usage> {
    // The limit is checked before the key ring and the store, so that a
    // typo is named as such whatever else is wrong, flag by flag.
    let (limit, key, cost) = match cmd {
        LimitCommand::Check {
            name,
            key,
            rate,
            burst,
            cost,
        } => {
            let period = Duration::from_secs(rate.secs);
            // Each flag alone first, beside values known to be valid, so
            // that the message names the flag at fault.
            flag(
                "--name",
                Limit::named(name.as_str(), 1, ONE_SECOND).validate(),
            )?;
            flag("--rate", Limit::named("x", rate.count, period).validate())?;
            let limit = Limit::named(name, rate.count, period);
            if let Some(burst) = burst {
                flag(
                    "--burst",
                    Limit::named("x", 1, ONE_SECOND).burst(burst).validate(),
                )?;
            }
            let limit = limit.burst(burst.unwrap_or(rate.count));
            // What is left is the refill time of a full bucket, which both
            // flags make.
            flag("--rate and --burst", limit.validate())?;
            (limit, key, Some(cost))
        }
        // The record is named by the limit's name and the key only: any
        // valid numbers name the same record.
        LimitCommand::Reset { name, key } => {
            let limit = Limit::named(name, 1, ONE_SECOND);
            flag("--name", limit.validate())?;
            (limit, key, None)
        }
    };
    let keys = load_keys(keyring.unwrap_or(Path::new(DEFAULT_KEYRING)))?;
    runtime()?.block_on(async {
        let store = open_store(store_url).await?;
        let kw = Keyward::builder()
            .keys(keys)
            .shared_store(store)
            .build_partial()?;
        let limits = kw.limits()?;
        let done = match cost {
            Some(cost) => limits
                .check_cost(&limit, &key, cost)
                .await
                .map(|allowance| {
                    json!({
                        "allowed": true,
                        "remaining": allowance.remaining,
                        "reset_after": secs_rounded_up(allowance.reset_after),
                    })
                }),
            None => limits
                .reset(&limit, &key)
                .await
                .map(|_| json!({"name": limit.name(), "reset": true})),
        };
        match done {
            Ok(out) => Ok(Done::Ok(out.to_string())),
            Err(Error::RateLimited { retry_after }) => Ok(Done::Negative(
                json!({"error": "rate_limited", "retry_after": secs_rounded_up(retry_after)})
                    .to_string(),
            )),
            // The key is not repeated: it may be an address or an account.
            Err(Error::Limit(e @ LimitError::BadKey)) => Err(Usage(format!("--key: {e}"))),
            Err(Error::Limit(e @ LimitError::BadCost { .. })) => {
                Err(Usage(format!("--cost {}: {e}", cost.unwrap_or_default())))
            }
            Err(e) => Err(e.into()),
        }
    })
}

const ONE_SECOND: Duration = Duration::from_secs(1);

/// A check of one flag's value: its error, prefixed with the flag.
fn flag(name: &str, checked: Result<(), Error>) -> Result<(), Usage> {
    checked.map_err(|e| Usage(format!("{name}: {e}")))
}

/// Whole seconds, rounded up: the contract's `retry_after` and
/// `reset_after`.
fn secs_rounded_up(d: Duration) -> u64 {
    d.as_secs().saturating_add(u64::from(d.subsec_nanos() > 0))
}

/// A refused code or issue: exit 1 with the reason. Anything else (the
/// store unreachable, a bad subject) is exit 2.
/// The second-factor commands, with the `[otp]` policy's lockout.
fn run_totp(
    cmd: TotpCommand,
    config: &Config,
    keyring: Option<&Path>,
    store_url: &str,
) -> Result<Done, Usage> {
    let keys = load_keys(keyring.unwrap_or(Path::new(DEFAULT_KEYRING)))?;
    let otp_policy = config.otp_policy();
    let passwords = password_policy(config)?;
    runtime()?.block_on(async {
        let store = open_store(store_url).await?;
        let kw = Keyward::builder()
            .password_policy(passwords)
            .keys(keys)
            .otp_policy(otp_policy)
            .shared_store(store)
            .build_partial()?;
        let totp = kw.totp()?;
        let codes = |set: &keyward::totp::RecoveryCodes| -> Vec<String> {
            set.codes()
                .iter()
                .map(|c| c.unprotected_as_str().to_owned())
                .collect()
        };
        let input = || -> Result<String, Usage> {
            let input = read_secret()?;
            let text = std::str::from_utf8(input.unprotected_as_bytes())
                .map_err(|_| Usage("input is not a code: not UTF-8".into()))?;
            Ok(text.to_owned())
        };
        let done = match cmd {
            TotpCommand::Enroll {
                sub,
                issuer,
                account,
            } => {
                check_subject(&sub)?;
                let account = account.unwrap_or_else(|| sub.clone());
                totp.enroll(&sub, &issuer, &account).await.map(|e| {
                    json!({
                        "secret": e.secret().unprotected_as_str(),
                        "uri": e.uri().unprotected_as_str(),
                        "factor": e.factor(),
                    })
                })
            }
            TotpCommand::Confirm { sub } => {
                check_subject(&sub)?;
                let code = input()?;
                totp.confirm(&sub, &code)
                    .await
                    .map(|set| json!({"ok": true, "recovery_codes": codes(&set)}))
            }
            TotpCommand::Verify { sub } => {
                check_subject(&sub)?;
                let code = input()?;
                totp.verify(&sub, &code)
                    .await
                    .map(|v| json!({"ok": true, "step": v.step()}))
            }
            TotpCommand::Recovery { sub } => {
                check_subject(&sub)?;
                totp.regenerate_recovery(&sub)
                    .await
                    .map(|set| json!({"recovery_codes": codes(&set)}))
            }
            TotpCommand::Recover { sub } => {
                check_subject(&sub)?;
                let code = input()?;
                totp.recover(&sub, &code)
                    .await
                    .map(|r| json!({"ok": true, "remaining": r.left()}))
            }
            TotpCommand::Disable { sub } => {
                check_subject(&sub)?;
                totp.disable(&sub)
                    .await
                    .map(|_| json!({"subject": sub, "disabled": true}))
            }
        };
        match done {
            Ok(out) => Ok(Done::Ok(out.to_string())),
            Err(e) => otp_refusal(e),
        }
    })
}

fn otp_refusal(e: Error) -> Result<Done, Usage> {
    let out = match e {
        Error::Totp(TotpError::Invalid { attempts_left }) => {
            json!({"error": "invalid", "attempts_left": attempts_left})
        }
        Error::Totp(e @ TotpError::BadLabel(_)) => return Err(Usage(e.to_string())),
        Error::Totp(e) => json!({"error": e.reason()}),
        Error::Otp(OtpError::Invalid { attempts_left }) => {
            json!({"error": "invalid", "attempts_left": attempts_left})
        }
        Error::Otp(OtpError::Locked { retry_after }) => {
            json!({"error": "locked", "retry_after": retry_after.as_secs()})
        }
        Error::Otp(e) => json!({"error": e.reason()}),
        Error::Throttled { retry_after } => {
            json!({"error": "throttled", "retry_after": secs_rounded_up(retry_after)})
        }
        // The code-send limit, kept in the store (`[throttle]`'s
        // `code_send_*`): the contract calls it `throttled`.
        Error::RateLimited { retry_after } => {
            json!({"error": "throttled", "retry_after": secs_rounded_up(retry_after)})
        }
        other => return Err(other.into()),
    };
    Ok(Done::Negative(out.to_string()))
}

fn random_hex() -> Result<String, Usage> {
    use rand::TryRng;
    let mut b = [0u8; 8];
    rand::rngs::SysRng
        .try_fill_bytes(&mut b)
        .map_err(|_| Usage("the operating system random number generator failed".into()))?;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}

/// What `keyward audit` counts.
#[derive(Default)]
struct AuditCounts {
    total: u64,
    needs_rehash: u64,
    malformed: u64,
    /// Hashes made with a pepper the key ring does not hold: no password
    /// verifies against them, so a rehash on login never comes.
    unverifiable: u64,
    schemes: BTreeMap<&'static str, u64>,
}

impl AuditCounts {
    /// Counts one line, without its `\n`. A trailing `\r` is removed; a
    /// line left empty is skipped and not counted. A line that is too long,
    /// not UTF-8, or refused by `inspect` (malformed, out of the policy's
    /// bounds, or of a disabled scheme) is malformed. A well-formed hash
    /// whose pepper id is not among `peppers` counts under its scheme and
    /// as unverifiable, never as needing a rehash.
    fn record(&mut self, passwords: &Passwords, peppers: &[&str], line: &[u8], too_long: bool) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() && !too_long {
            return;
        }
        self.total = self.total.saturating_add(1);
        let info = match std::str::from_utf8(line) {
            Ok(text) if !too_long => passwords.inspect(text).ok(),
            _ => None,
        };
        match info {
            Some(info) => {
                let n = self.schemes.entry(info.scheme.name()).or_default();
                *n = n.saturating_add(1);
                if info
                    .pepper_id
                    .as_deref()
                    .is_some_and(|id| !peppers.contains(&id))
                {
                    self.unverifiable = self.unverifiable.saturating_add(1);
                } else if info.needs_rehash {
                    self.needs_rehash = self.needs_rehash.saturating_add(1);
                }
            }
            None => self.malformed = self.malformed.saturating_add(1),
        }
    }

    fn to_json(&self) -> String {
        json!({
            "total": self.total,
            "needs_rehash": self.needs_rehash,
            "malformed": self.malformed,
            "unverifiable": self.unverifiable,
            "schemes": self.schemes,
        })
        .to_string()
    }
}

/// Reads one hash per line and counts them. Streams: at most
/// [`AUDIT_MAX_LINE`] bytes of a line are held, beside the reader's own
/// buffer, however long the input or any one line. `peppers`: the pepper
/// ids of the key ring (none without one).
fn audit(
    passwords: &Passwords,
    peppers: &[&str],
    mut input: impl BufRead,
) -> Result<AuditCounts, Usage> {
    let mut counts = AuditCounts::default();
    let mut line = Vec::with_capacity(AUDIT_MAX_LINE);
    let mut too_long = false;
    loop {
        let buf = input
            .fill_buf()
            .map_err(|e| Usage(format!("cannot read stdin: {e}")))?;
        if buf.is_empty() {
            // End of input: a last line without a line ending still counts.
            if !line.is_empty() || too_long {
                counts.record(passwords, peppers, &line, too_long);
            }
            return Ok(counts);
        }
        let newline = buf.iter().position(|&b| b == b'\n');
        let chunk = buf.get(..newline.unwrap_or(buf.len())).unwrap_or_default();
        if !too_long {
            if line.len().saturating_add(chunk.len()) > AUDIT_MAX_LINE {
                too_long = true;
                line.clear();
            } else {
                line.extend_from_slice(chunk);
            }
        }
        let used = match newline {
            Some(at) => at.saturating_add(1),
            None => buf.len(),
        };
        input.consume(used);
        if newline.is_some() {
            counts.record(passwords, peppers, &line, too_long);
            line.clear();
            too_long = false;
        }
    }
}

/// Builds the library facade. A key ring named explicitly (flag or
/// environment) must load; the default one is used only when it exists.
fn keyward(policy: PasswordPolicy, keyring: Option<&Path>) -> Result<Keyward, Usage> {
    let keys = match keyring {
        Some(path) => Some(load_keys(path)?),
        None if Path::new(DEFAULT_KEYRING).exists() => Some(load_keys(Path::new(DEFAULT_KEYRING))?),
        None => None,
    };
    let builder = Keyward::builder().password_policy(policy);
    Ok(match keys {
        Some(keys) => builder.keys(keys).build()?,
        None => builder.build()?,
    })
}

fn load_keys(path: &Path) -> Result<KeyRing, Usage> {
    let keys = KeyRing::load(path).map_err(|e| match e {
        Error::Keyring(KeyringError::Io(io)) if io.kind() == std::io::ErrorKind::NotFound => {
            Usage(format!(
                "{}: no key ring there; create one with `{}`",
                path.display(),
                init_command(path)
            ))
        }
        e => Usage(format!("{}: {e}", path.display())),
    })?;
    // The library logs this through `tracing`, which the CLI does not
    // print; an operator should still hear it. A group- or world-writable
    // file never gets here: `load` refuses it.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = std::fs::metadata(path)
            && meta.permissions().mode() & 0o004 != 0
        {
            eprintln!(
                "warning: {}: the key ring is readable by every user of this machine; chmod 600 it",
                path.display()
            );
        }
    }
    Ok(keys)
}

/// The command that creates the key ring at `path`.
fn init_command(path: &Path) -> String {
    if path == Path::new(DEFAULT_KEYRING) {
        "keyward init".to_owned()
    } else {
        format!("keyward init --keyring {}", path.display())
    }
}

/// Reads a password from stdin, as [`read_secret_bytes`] does.
fn read_secret() -> Result<Password, Usage> {
    Ok(Password::from(&read_secret_bytes()?[..]))
}

/// Reads a secret from stdin, removing exactly one trailing `\n` or `\r\n`.
/// The buffer is zeroized when dropped, spare capacity included.
fn read_secret_bytes() -> Result<Zeroizing<Vec<u8>>, Usage> {
    // Room for any secret the commands accept (passwords stop at 1,024
    // bytes, tokens at 83), so that reading never grows the buffer: each
    // reallocation would leave a copy of the secret in freed memory.
    let mut buf = Zeroizing::new(Vec::with_capacity(STDIN_SECRET_CAPACITY));
    std::io::stdin()
        .read_to_end(&mut buf)
        .map_err(|e| Usage(format!("cannot read stdin: {e}")))?;
    let end = if buf.ends_with(b"\r\n") {
        buf.len().saturating_sub(2)
    } else if buf.ends_with(b"\n") {
        buf.len().saturating_sub(1)
    } else {
        buf.len()
    };
    buf.truncate(end);
    Ok(buf)
}

/// Reads `keyward.toml` (see [`keyward::config`]): the file named by
/// `--config`, else `keyward.toml` when it exists, else the defaults.
/// Unknown tables and keys are errors, never ignored.
fn load_config(path: Option<&Path>) -> Result<Config, Usage> {
    let path = match path {
        Some(p) => p,
        None if Path::new(DEFAULT_CONFIG).exists() => Path::new(DEFAULT_CONFIG),
        None => return Ok(Config::default()),
    };
    // The library's own reading of the file, which a service uses too
    // (`Config::load`): one configuration for both.
    Config::load(path).map_err(|e| match e {
        Error::Config(msg) => Usage(msg),
        e => Usage::from(e),
    })
}

/// The `[password]` table. An unknown scheme name is reported bare, as
/// `password.disabled_schemes: …`.
fn password_policy(config: &Config) -> Result<PasswordPolicy, Usage> {
    let policy = config.password_policy().map_err(|e| match e {
        Error::Config(msg) => Usage(msg),
        e => Usage::from(e),
    })?;
    // The builder refuses this too, without the numbers.
    let (i, min, max) = (
        policy.iterations,
        policy.min_iterations,
        policy.max_iterations,
    );
    if min <= max && !(min..=max).contains(&i) {
        return Err(Usage(format!(
            "password.iterations = {i} is out of bounds; use {min} to {max} \
             (password.min_iterations to password.max_iterations)"
        )));
    }
    Ok(policy)
}
