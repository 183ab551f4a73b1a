//! Sessions: an access JWT plus a rotating refresh token, with reuse
//! detection (RFC 9700 §4.14.2).
//!
//! A login starts a *family*: the chain of refresh tokens it will ever
//! issue. Every refresh rotates. A spent token presented again outside the
//! grace window revokes the whole family, including the live token. Inside
//! the grace window (10 s), the immediate predecessor gets the *same*
//! successor back, so two browser tabs refreshing at once converge and the
//! family never forks.
//!
//! Nothing stored lets a database reader present a live token: refresh
//! tokens are `HMAC-SHA256(server key, family ‖ generation)`, derived again
//! when presented, and the family record holds only ids, counters and
//! times.
//!
//! The rules are pure functions over the family record and its subject's
//! revocation record (`machine`, with `decide` for a refresh); the
//! [`Sessions`] service runs each of start, refresh, revoke and revoke-all
//! as one store transaction, so the outcome is exact across threads,
//! processes and replicas. A refresh commits with a guard on the subject's
//! record, so a revoke-all stops refreshes already under way. Every
//! decision uses the store's clock where the store keeps one. Any storage
//! error fails closed.

mod challenge;
mod erase;
mod inventory;
mod machine;
mod policy;
mod service;
mod token;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::audit::{self, Audit, AuditTag, Salt, Shown};
use crate::clock::Clock;
use crate::error::Error;
use crate::error::OtpError;
use crate::hex::{Case, decode_array as unhex_case, encode as hex};
use crate::jwt::{AccessClaims, AccessToken, Jwt, amr};
use crate::otp::{OtpVerified, Purpose};
use crate::password::Verified;
use crate::secret::SecretBytes;
use crate::store::{Decision, Store, StoreError, transact};
use crate::totp::SecondFactor;

pub use crate::error::SessionError;
pub use crate::jwt::{MAX_SESSION_CLAIMS_BYTES, SessionClaims};
pub use crate::store::DEFAULT_MAX_RETRIES;
pub use challenge::{MFA_CHALLENGE_TTL_SECS, MfaChallenge};
pub use inventory::{MAX_META_LEN, MAX_SESSIONS_PER_SUBJECT, SessionInfo};
pub use policy::SessionPolicy;
pub use service::Sessions;
pub use token::{RefreshToken, TokenPair};

#[allow(unused_imports, reason = "the submodules see each other's items")]
use {challenge::*, inventory::*, machine::*, service::*, token::*};

/// Grace window for the immediate predecessor: 10 s (Auth0 and Supabase use
/// windows of this order for concurrent refreshes).
pub const DEFAULT_REUSE_GRACE_SECS: u64 = 10;
/// A family unused this long expires: 14 days.
pub const DEFAULT_IDLE_TTL_SECS: u64 = 14 * 86_400;
/// A family expires this long after login, however active: 30 days.
pub const DEFAULT_ABSOLUTE_TTL_SECS: u64 = 30 * 86_400;

const TOKEN_PREFIX: &str = "kwr";
const TOKEN_DOMAIN: &[u8] = b"keyward refresh token v1\0";
const SUBJECT_DOMAIN: &[u8] = b"keyward subject tag v1\0";

fn unhex<const N: usize>(s: &str) -> Option<[u8; N]> {
    unhex_case::<N>(s, Case::Lower)
}
