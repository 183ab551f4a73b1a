//! The session service on a `MemoryStore`, in a tokio current-thread
//! runtime. Two modes:
//!
//! - an arbitrary string to `refresh` and `revoke`, beside a live session;
//! - a sequence of operations on one session (refresh the live token or an
//!   older one, advance the clock, revoke, revoke all), checked against the
//!   rules that must always hold: only the live token rotates; only its
//!   immediate predecessor is replayed, and then to the same successor; and
//!   once a family is revoked, reused or expired, nothing refreshes again.
#![no_main]

use std::sync::LazyLock;

use keyward::clock::ManualClock;
use keyward::{Error, SessionError};
use keyward_fuzz::NOW;
use libfuzzer_sys::fuzz_target;

const SUBJECT: &str = "user-42";

static RT: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime")
});

fuzz_target!(|data: &[u8]| {
    let Some((&mode, ops)) = data.split_first() else {
        return;
    };
    RT.block_on(async {
        let clock = ManualClock::new(NOW);
        let kw = keyward_fuzz::keyward(&clock);
        let sessions = kw.sessions();
        let pair = sessions
            .dangerous_start_without_proof(SUBJECT)
            .await
            .expect("start");
        if mode & 1 == 0 {
            let Ok(token) = std::str::from_utf8(ops) else {
                return;
            };
            let live = pair.refresh.unprotected_as_str();
            match sessions.refresh(token).await {
                Ok(_) => assert_eq!(token, live, "a token keyward did not issue refreshed"),
                Err(Error::Session(_)) => {}
                Err(e) => panic!("unexpected error: {e}"),
            }
            if sessions.revoke(token).await.is_ok() {
                assert_eq!(
                    token, live,
                    "a token keyward did not issue revoked a session"
                );
            }
            return;
        }

        // tokens[g] is the refresh token of generation g.
        let mut tokens = vec![pair.refresh.unprotected_as_str().to_owned()];
        let mut dead = false;
        let mut ops = ops.iter();
        while let Some(&op) = ops.next() {
            let arg = ops.next().copied().unwrap_or(0);
            match op % 5 {
                // Refresh generation `live - arg`.
                0 | 1 => {
                    let live = tokens.len() - 1;
                    let g = live.saturating_sub(usize::from(arg % 4));
                    match sessions.refresh(&tokens[g]).await {
                        Ok(next) => {
                            assert!(!dead, "a dead family refreshed");
                            let next = next.refresh.unprotected_as_str().to_owned();
                            if g == live {
                                assert!(!tokens.contains(&next), "a rotation repeated a token");
                                tokens.push(next);
                            } else {
                                assert_eq!(g + 1, live, "only the predecessor is replayed");
                                assert_eq!(next, tokens[live], "a grace replay forked");
                            }
                        }
                        Err(Error::Session(e)) => {
                            assert_ne!(e, SessionError::Invalid, "an issued token is invalid");
                            if e == SessionError::Reused {
                                assert!(g < live, "the live token counted as reuse");
                            }
                            // Reused revokes the family; Revoked and Expired
                            // are final (the clock only moves forward).
                            dead = true;
                        }
                        Err(e) => panic!("unexpected error: {e}"),
                    }
                }
                // Let time pass: up to 255 s, or up to 255 hours.
                2 => clock.advance(u64::from(arg)),
                3 => clock.advance(u64::from(arg) * 3_600),
                // Log out this session, or every session of the subject.
                _ => {
                    if arg & 1 == 0 {
                        let _ = sessions.revoke(&tokens[tokens.len() - 1]).await;
                    } else {
                        sessions.revoke_all(SUBJECT).await.expect("revoke_all");
                    }
                    dead = true;
                }
            }
        }
    });
});
