//! Runs the `keyward` binary for the CLI tests (`tests/cli.rs`,
//! `tests/cli_otp.rs`). Compiled with the `cli` feature only: without it
//! cargo builds no binary for `CARGO_BIN_EXE_keyward` to name.
#![allow(
    dead_code,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::panic,
    reason = "test helpers; each test file uses a part"
)]

use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// One finished run.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// stdout as one JSON line.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(self.line())
            .unwrap_or_else(|e| panic!("{e}: {:?} {:?}", self.stdout, self.stderr))
    }

    /// stdout is exactly one line.
    pub fn line(&self) -> &str {
        assert!(
            self.stdout.ends_with('\n') && self.stdout.matches('\n').count() == 1,
            "stdout {:?} stderr {:?}",
            self.stdout,
            self.stderr
        );
        self.stdout.trim_end()
    }

    /// Exit 2, and stderr is one human line naming the problem, with no
    /// backtrace.
    pub fn usage_error(&self) -> &str {
        assert_eq!(
            self.code, 2,
            "stdout {:?} stderr {:?}",
            self.stdout, self.stderr
        );
        assert_eq!(self.stderr.matches('\n').count(), 1, "{:?}", self.stderr);
        assert!(!self.stderr.contains("panicked") && !self.stderr.contains("backtrace"));
        self.stderr.trim_end()
    }
}

/// Starts `keyward ARGS` in `dir`, with the key ring and store variables
/// cleared so that only the arguments and `dir` count.
pub fn spawn(dir: &Path, args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_keyward"))
        .args(args)
        .current_dir(dir)
        .env_remove("KEYWARD_KEYRING")
        .env_remove("KEYWARD_STORE")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Writes `stdin` to a started run and waits for it.
pub fn finish(mut child: Child, stdin: &[u8]) -> Run {
    // A command may exit before it reads stdin (a usage error does), and
    // then the write fails with a broken pipe; any other error is real.
    if let Err(e) = child.stdin.take().unwrap().write_all(stdin) {
        assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "{e}");
    }
    let out = child.wait_with_output().unwrap();
    Run {
        code: out.status.code().unwrap(),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

/// `keyward ARGS < stdin` in `dir`.
pub fn keyward(dir: &Path, args: &[&str], stdin: &[u8]) -> Run {
    finish(spawn(dir, args), stdin)
}

/// `keyward ARGS < stdin` in `dir`, with the key ring and store variables
/// cleared, then `env` set.
pub fn keyward_env(dir: &Path, args: &[&str], stdin: &[u8], env: &[(&str, &str)]) -> Run {
    let child = Command::new(env!("CARGO_BIN_EXE_keyward"))
        .args(args)
        .current_dir(dir)
        .env_remove("KEYWARD_KEYRING")
        .env_remove("KEYWARD_STORE")
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    finish(child, stdin)
}
