//! Revoke-all against a refresh already under way, made deterministic by a
//! store double that holds the refresh's commit until the revoke-all has
//! returned.
#![allow(clippy::unwrap_used, clippy::panic)]

use std::sync::Arc;

use keyward::clock::ManualClock;
use keyward::testing::{Hold, RacingStore};
use keyward::{
    Complete, Error, JwtAlg, KeyRing, Keyward, MemoryStore, SessionError, Sessions, Store,
    TokenPair,
};
use tokio::task::JoinHandle;

const NOW: u64 = 1_800_000_000;

fn keyward(store: Arc<dyn Store>) -> Keyward<Complete> {
    Keyward::builder()
        .issuer("https://auth.example.com")
        .audience("api")
        .keys(KeyRing::generate(JwtAlg::HS256).unwrap())
        .shared_store(store)
        .clock(Arc::new(ManualClock::new(NOW)))
        .build()
        .unwrap()
}

/// Sessions over a racing store, and a session of alice's.
async fn alice() -> (Arc<RacingStore>, Sessions, TokenPair) {
    let racing = Arc::new(RacingStore::new(Arc::new(MemoryStore::new())));
    let sessions = keyward(racing.clone()).sessions().clone();
    let pair = sessions
        .dangerous_start_without_proof("alice")
        .await
        .unwrap();
    (racing, sessions, pair)
}

/// `token` refreshed on a task of its own.
fn refresh_on_a_task(sessions: &Sessions, token: &str) -> JoinHandle<Result<TokenPair, Error>> {
    let (sessions, token) = (sessions.clone(), token.to_owned());
    tokio::spawn(async move { sessions.refresh(&token).await })
}

/// Waits until the refresh on `task` has reached the held commit; a
/// refresh that returns first committed nothing, and fails the test.
async fn until_held(hold: &Hold, task: &mut JoinHandle<Result<TokenPair, Error>>) {
    tokio::select! {
        () = hold.reached() => {}
        r = task => panic!("the refresh returned without a commit: {:?}", r.unwrap().map(|p| p.session_id)),
    }
}

/// A refresh has loaded the family and the subject's old epoch, and its
/// commit is on its way, when `revoke_all` runs and returns. The refresh
/// must then hand out nothing: its commit conflicts on the subject's
/// record, and on the retry the family is revoked.
#[tokio::test]
async fn a_refresh_in_flight_mints_nothing_once_revoke_all_has_returned() {
    let (racing, sessions, pair) = alice().await;
    let hold = racing.hold_next_commit();
    let mut refresh = refresh_on_a_task(&sessions, pair.refresh.unprotected_as_str());
    // The refresh has decided on the old epoch and is about to commit.
    until_held(&hold, &mut refresh).await;
    sessions.revoke_all("alice").await.unwrap();
    hold.release();

    match refresh.await.unwrap() {
        Err(Error::Session(SessionError::Revoked)) => {}
        Ok(_) => panic!("a refresh returned a pair after revoke_all had returned"),
        Err(e) => panic!("unexpected {e}"),
    }
    assert!(racing.conflicts() >= 1, "the refresh's commit conflicted");
    // The family stays revoked for good.
    assert!(matches!(
        sessions.refresh(pair.refresh.unprotected_as_str()).await,
        Err(Error::Session(SessionError::Revoked))
    ));
}

/// The same hold, with a revoke-all of another subject in between: the
/// refresh goes through, so the hold itself is not what refuses it.
#[tokio::test]
async fn a_held_refresh_goes_through_when_its_subject_is_not_revoked() {
    let (racing, sessions, pair) = alice().await;
    let hold = racing.hold_next_commit();
    let mut refresh = refresh_on_a_task(&sessions, pair.refresh.unprotected_as_str());
    until_held(&hold, &mut refresh).await;
    sessions.revoke_all("bob").await.unwrap();
    hold.release();

    let next = refresh.await.unwrap().unwrap();
    assert_eq!(next.session_id, pair.session_id);
    assert_eq!(racing.conflicts(), 0);
}

/// A grace replay hands out a pair too, so it is held to the same rule.
#[tokio::test]
async fn a_grace_replay_in_flight_mints_nothing_once_revoke_all_has_returned() {
    let (racing, sessions, first) = alice().await;
    let _second = sessions
        .refresh(first.refresh.unprotected_as_str())
        .await
        .unwrap();

    // The first token again, within the grace window: a replay. A replay
    // that committed nothing would never reach the hold.
    let hold = racing.hold_next_commit();
    let mut replay = refresh_on_a_task(&sessions, first.refresh.unprotected_as_str());
    until_held(&hold, &mut replay).await;
    sessions.revoke_all("alice").await.unwrap();
    hold.release();

    assert!(matches!(
        replay.await.unwrap(),
        Err(Error::Session(SessionError::Revoked))
    ));
}
