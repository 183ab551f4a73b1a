//! A subject's erasure: every record keyward keeps for it, found through
//! the subject's own records (its session list, its API-key index, its
//! code record), with no scan of the store.
//!
//! The order makes it safe to interrupt anywhere. First the marks: the
//! subject's session record (every session stops refreshing and
//! authenticating strictly, and none starts), its code record (pending
//! codes dropped, none issued or accepted) and its API-key index (with the
//! first batch of keys deleted in the same commit, and no key created).
//! Then the rest of the keys and the session families, a commit at a time.
//! Last, the marked records themselves. Each step reloads what it works
//! on, so running the erase again finishes the job, and a run over a
//! subject with nothing left reports zeros.

use serde::{Deserialize, Serialize};

use crate::api_key::ApiKeys;
use crate::audit::{self, Salts, Shown};
use crate::error::Error;
use crate::otp::Otp;
use crate::session::Sessions;
use crate::totp::Totp;

/// What one run of [`Keyward::erase`](crate::Keyward::erase) deleted, for
/// the operator's records. A run that resumes an interrupted one counts
/// only what was left; a run over an erased subject reports zeros.
/// `Serialize` and `Deserialize` for JSON receipts, with the field names
/// below.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Erased {
    /// Session families (a device's sign-in each), live or ended.
    pub sessions: u64,
    /// API keys, live, revoked or expired.
    pub api_keys: u64,
    /// Pending one-time codes.
    pub codes: u64,
    /// Second factors (TOTP), confirmed or not, with their recovery codes.
    pub factors: u64,
}

/// Erases `subject` through the three services that keep its records.
pub(crate) async fn erase(
    subject: &str,
    sessions: &Sessions,
    otp: &Otp,
    totp: &Totp,
    api_keys: &ApiKeys,
    salts: &Salts,
) -> Result<Erased, Error> {
    // The tag the subject's events carried, for the erasure's own event;
    // none when a run before this one already deleted the salt.
    let tag = salts.tag(subject).await?;
    sessions.erase_mark(subject).await?;
    let codes = otp.erase_mark(subject).await?;
    let api_keys_deleted = api_keys.erase_keys(subject).await?;
    let families = sessions.erase_families(subject).await?;
    // The code record's mark refuses every second-factor code from here.
    let factors = totp.erase(subject).await?;
    // The salt goes while the marks still stop every issuance, so that no
    // record is written with a tag of the old salt after it.
    salts.erase(subject).await?;
    api_keys.erase_end(subject).await?;
    otp.erase_end(subject).await?;
    sessions.erase_end(subject).await?;
    tracing::warn!(
        target: audit::TARGET,
        event = "subject.erased",
        tag = %Shown(tag),
        sessions = families,
        api_keys = api_keys_deleted,
        codes,
        factors,
        "subject erased"
    );
    Ok(Erased {
        sessions: families,
        api_keys: api_keys_deleted,
        codes,
        factors,
    })
}
