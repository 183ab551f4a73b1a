//! One-time codes (emailed or texted), with attempt counting and lockouts.
//!
//! A 6-digit code has about 20 bits of entropy: all of its security comes
//! from counting attempts. The rules, everywhere:
//!
//! - **A code faces at most 3 evaluated wrong guesses in its whole life.**
//!   The third wrong guess at a code uses it up, whatever else happens
//!   meanwhile (a success on another purpose, an operator's unlock).
//! - **3 failed attempts lock the subject for 60 minutes.** While locked,
//!   even the right code is refused, and no new code is issued. A lock
//!   discards the subject's pending codes.
//! - Issuing a new code never resets the count. A correct code forgives
//!   only the wrong guesses made at *that* code (the user's own typos); a
//!   success on one purpose never forgives guesses at another purpose's
//!   code, so completing one flow buys no guesses at another.
//! - After 100 unforgiven failures, counted across lockouts and reset only
//!   by an operator's [`Otp::unlock`], the subject stays locked until an
//!   operator unlocks it (NIST SP 800-63B §5.2.2).
//!
//! So in any 24 hours a subject's codes face at most `max_attempts ×
//! ⌈86,400 / lockout_secs⌉` unforgiven wrong guesses (72 with the
//! defaults), and at most `max_consecutive_failures` (100) between two
//! operator unlocks.
//!
//! The lock is per **subject**, across purposes and sources: one record per
//! subject holds the failure state and the pending code of each
//! [`Purpose`]. An attacker who knows a user's identifier can therefore lock
//! that user out of codes for an hour at a time; the caller owns the
//! recovery path (see `SECURITY.md`).
//!
//! Codes are stored as `HMAC-SHA256(server key, len ‖ subject ‖ len ‖
//! purpose ‖ len ‖ code)`, with 64-bit length prefixes, and compared in
//! constant time. Store keys hold a keyed tag of the subject, never the
//! subject itself. No code, MAC or subject appears in an error or a log
//! line; events carry the subject tag.
//!
//! The rules are a pure state machine over the subject's record
//! (`machine`); the [`Otp`] service runs each transition (issue, verify,
//! unlock) as one store transaction, retried on conflict, so the count is
//! exact across threads, processes and replicas. Every decision uses the
//! store's clock where the store keeps one, so replicas whose clocks differ
//! agree on every lock. Any storage error fails closed: no code is
//! accepted, issued, or let past a lockout.

mod code;
mod machine;
mod policy;
mod service;

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use rand::TryCryptoRng;
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use crate::audit::{self, Audit, Salt, Shown};
use crate::clock::Clock;
use crate::error::Error;
use crate::hex::{Case, decode_array, encode as hex};
use crate::limit::{Limit, Limits, Take, Tat};
use crate::secret::SecretBytes;
use crate::store::{Decision, MAX_TTL, Store, transact, transact_ms};

pub use crate::error::OtpError;
pub use crate::store::DEFAULT_MAX_RETRIES;
pub use code::{CustomPurpose, IssuedCode, OtpCode, OtpVerified, Purpose};
pub(crate) use machine::{SubjectState, decide_failure, refusal_error};
pub use policy::OtpPolicy;
pub(crate) use service::check_subject;
pub use service::{Otp, OtpStatus};

#[allow(
    unused_imports,
    reason = "the submodules and the tests see each other's items"
)]
use {code::*, machine::*, policy::*, service::*};

/// Digits per code: 6 (NIST SP 800-63B §5.1.3.1 and §5.1.4.1: at least 6
/// decimal digits).
pub const DEFAULT_DIGITS: u32 = 6;
/// A code is valid for 10 minutes (OWASP Multifactor Authentication Cheat
/// Sheet; ASVS 5.0 6.5).
pub const DEFAULT_CODE_TTL_SECS: u64 = 600;
/// Failed attempts that lock the subject, and wrong guesses a code faces
/// in its life: 3.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 3;
/// How long a lock lasts: 60 minutes.
pub const DEFAULT_LOCKOUT_SECS: u64 = 3_600;
/// Failures, across lockouts, after which only an operator's unlock helps:
/// 100, the most NIST SP 800-63B §5.2.2 allows. Only an unlock resets the
/// count; a success forgives only the wrong guesses at its own code.
pub const DEFAULT_MAX_CONSECUTIVE_FAILURES: u32 = 100;

const CODE_DOMAIN: &[u8] = b"keyward otp code v1\0";
const SUBJECT_DOMAIN: &[u8] = b"keyward otp subject v1\0";
const MAX_SUBJECT_LEN: usize = 1024;
const MAX_PURPOSE_LEN: usize = 32;
/// A presented code longer than this is a failed attempt, unhashed.
const MAX_CODE_INPUT: usize = 64;
/// Pending codes kept per subject (one per purpose); past it, the one
/// expiring first is dropped.
const MAX_PENDING: usize = 8;
/// An expired code is remembered this long, so that it is reported as
/// expired rather than missing.
const EXPIRED_NOTICE_SECS: u64 = 86_400;
/// Draws before the generator gives up: a working CSPRNG is rejected with
/// probability below 2^-12 per draw, so 64 rejections in a row mean a
/// broken one.
const MAX_DRAWS: u32 = 64;

#[cfg(test)]
#[allow(
    clippy::arithmetic_side_effects,
    clippy::unwrap_used,
    clippy::panic,
    reason = "tests: small bounded arithmetic; a failed check panics"
)]
mod tests;
