//! `keyward`: the operator's command-line tool, a thin layer over the
//! library. The contract (arguments, output, exit codes) is documented in
//! the README; scripts rely on it.
//!
//! Secrets come on stdin, never in argv. stdout is one line. Exit codes: 0
//! success or a positive verdict, 1 a negative verdict (with a JSON reason),
//! 2 bad input or usage (with a one-line message on stderr).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use serde::Deserialize;
use serde_json::json;
use zeroize::Zeroizing;

use keyward::{Error, JwtAlg, KeyRing, Keyward, Password, PasswordPolicy, TokenError, Tokens};

const DEFAULT_KEYRING: &str = "keyward.keys";
const DEFAULT_CONFIG: &str = "keyward.toml";
/// Initial capacity of the stdin buffer for secrets.
const STDIN_SECRET_CAPACITY: usize = 8 * 1024;

#[derive(Parser)]
#[command(
    name = "keyward",
    version,
    about = "Credential hashing and token security: the operator's tool"
)]
struct Cli {
    /// Key ring file [default: keyward.keys, or $KEYWARD_KEYRING]
    #[arg(long, env = "KEYWARD_KEYRING")]
    keyring: Option<PathBuf>,
    /// Configuration file [default: keyward.toml if it exists]
    #[arg(long)]
    config: Option<PathBuf>,
    /// State store URL: sqlite:PATH, memory:, postgres://… or redis://…
    #[arg(long, env = "KEYWARD_STORE", default_value = "sqlite:keyward.db")]
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
    /// Opaque tokens (API keys): mint one, or check one on stdin.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
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
    fn from(e: Error) -> Self {
        Self(e.to_string())
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
            // One line: clap's first paragraph, which may span lines (a
            // missing argument is named on the line after the message).
            let rendered = e.to_string();
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

fn run(cli: Cli) -> Result<Done, Usage> {
    let config = Config::load(cli.config.as_deref())?;
    let _ = &cli.store; // the state store serves the session and code commands
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
            let mut policy = config.password_policy()?;
            if let Some(i) = iterations {
                policy.iterations = i;
            }
            let kw = keyward(policy, cli.keyring.as_deref())?;
            let password = read_secret()?;
            Ok(Done::Ok(kw.passwords().hash(&password)?))
        }
        Command::Verify { hash } => {
            let kw = keyward(config.password_policy()?, cli.keyring.as_deref())?;
            let info = kw.passwords().inspect(&hash)?;
            let password = read_secret()?;
            match kw.passwords().verify(&password, &hash) {
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
        Command::Inspect { hash } => {
            let kw = keyward(config.password_policy()?, cli.keyring.as_deref())?;
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

/// Builds the library facade. A key ring named explicitly (flag or
/// environment) must load; the default one is used only when it exists.
fn keyward(policy: PasswordPolicy, keyring: Option<&Path>) -> Result<Keyward, Usage> {
    let keys = match keyring {
        Some(path) => Some(load_keys(path)?),
        None if Path::new(DEFAULT_KEYRING).exists() => Some(load_keys(Path::new(DEFAULT_KEYRING))?),
        None => None,
    };
    let mut builder = Keyward::builder().password_policy(policy);
    if let Some(keys) = keys {
        builder = builder.keys(keys);
    }
    Ok(builder.build()?)
}

fn load_keys(path: &Path) -> Result<KeyRing, Usage> {
    KeyRing::load(path).map_err(|e| Usage(format!("{}: {e}", path.display())))
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

/// `keyward.toml`. Unknown tables and keys are errors, never ignored.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Config {
    #[serde(default)]
    password: PasswordConfig,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct PasswordConfig {
    iterations: Option<u32>,
    min_iterations: Option<u32>,
    max_iterations: Option<u32>,
    min_length: Option<usize>,
    max_length: Option<usize>,
}

impl Config {
    fn load(path: Option<&Path>) -> Result<Self, Usage> {
        let path = match path {
            Some(p) => p,
            None if Path::new(DEFAULT_CONFIG).exists() => Path::new(DEFAULT_CONFIG),
            None => return Ok(Self::default()),
        };
        let text =
            std::fs::read_to_string(path).map_err(|e| Usage(format!("{}: {e}", path.display())))?;
        toml::from_str(&text).map_err(|e| {
            let msg = e
                .message()
                .lines()
                .next()
                .unwrap_or("invalid configuration")
                .to_owned();
            Usage(format!("{}: {msg}", path.display()))
        })
    }

    fn password_policy(&self) -> Result<PasswordPolicy, Usage> {
        let mut p = PasswordPolicy::default();
        let c = &self.password;
        if let Some(v) = c.iterations {
            p.iterations = v;
        }
        if let Some(v) = c.min_iterations {
            p.min_iterations = v;
        }
        if let Some(v) = c.max_iterations {
            p.max_iterations = v;
        }
        if let Some(v) = c.min_length {
            p.min_length = v;
        }
        if let Some(v) = c.max_length {
            p.max_length = v;
        }
        Ok(p)
    }
}
