//! The broker's single-flight refresh, on top of the store under test.

use crate::setup::{
    clean_up, config, expiring_login, http, journaled_broker, load, plant_lease, tempfile_dir,
    FailingWrites,
};
use crate::Fixture;
use nsauth_core::broker::{Broker, Outcome};
use std::time::Duration;

/// 16 brokers, each on its own store handle, ask for a token after expiry at the same time:
/// exactly one refresh reaches the token endpoint and all 16 get the winner's token.
pub async fn single_flight_refresh(fx: &dyn Fixture) {
    let (emu, name) = expiring_login(fx).await;
    emu.set_access_ttl(3600);
    emu.inject(nsauth_emulator::Fault::Delay(Duration::from_millis(500)));
    let before = emu.counters();
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let store = fx.open().await;
        let name = name.clone();
        tasks.push(tokio::spawn(async move {
            let broker = Broker::new(store, http(), config());
            broker.access_token(&name, Duration::from_secs(300)).await
        }));
    }
    let mut tokens = std::collections::BTreeSet::new();
    let mut refreshed = 0;
    for t in tasks {
        let (set, outcome) = t.await.expect("task").expect("every caller gets a token");
        if outcome == Outcome::Refreshed {
            refreshed += 1;
        }
        tokens.insert(set.access_token.secret().to_owned());
    }
    let after = emu.counters();
    assert_eq!(
        after.refresh_token - before.refresh_token,
        1,
        "exactly one refresh must reach NetSuite"
    );
    assert_eq!(after.token_requests - before.token_requests, 1);
    assert_eq!(refreshed, 1, "exactly one caller refreshed");
    assert_eq!(tokens.len(), 1, "every caller got the winner's token");
    let store = fx.open().await;
    let rec = load(store.as_ref(), &name).await;
    assert!(rec.lease.is_none(), "the winner released its lease");
    assert_eq!(rec.meta.refresh_count, 1);
    clean_up(store.as_ref(), &name, emu).await;
}

/// A lease left behind by a dead holder delays others by at most the lease time, then one
/// of them takes over and refreshes once.
pub async fn dead_lease_is_taken_over(fx: &dyn Fixture) {
    let (emu, name) = expiring_login(fx).await;
    let store = fx.open().await;
    let lease_ttl = config().lease_ttl;
    plant_lease(
        store.as_ref(),
        &name,
        "dead-process",
        time::OffsetDateTime::now_utc() + lease_ttl,
        "plant a dead lease",
    )
    .await;
    let before = emu.counters();
    let started = std::time::Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let store = fx.open().await;
        let name = name.clone();
        tasks.push(tokio::spawn(async move {
            Broker::new(store, http(), config())
                .access_token(&name, Duration::from_secs(300))
                .await
        }));
    }
    for t in tasks {
        t.await
            .expect("task")
            .expect("a waiter takes over after the lease expires");
    }
    let waited = started.elapsed();
    assert!(
        waited < lease_ttl + Duration::from_secs(10),
        "waited {waited:?} for a {lease_ttl:?} lease"
    );
    assert!(
        waited + Duration::from_millis(500) >= lease_ttl,
        "the live lease was not honoured (waited {waited:?})"
    );
    assert_eq!(
        emu.counters().refresh_token - before.refresh_token,
        1,
        "one takeover refresh, not one per waiter"
    );
    clean_up(store.as_ref(), &name, emu).await;
}

/// The store fails after NetSuite rotated a public client's refresh token: the new tokens go
/// to the recovery journal, the caller still gets its token, and the next run writes them to
/// the store — no login needed, the rotated refresh token is not lost.
pub async fn journal_keeps_rotated_token_when_store_fails(fx: &dyn Fixture) {
    let (emu, name) = expiring_login(fx).await;
    let dir = tempfile_dir();
    // The lease write succeeds, the write of the refreshed tokens fails.
    let a = journaled_broker(FailingWrites::after(fx.open().await, 1), &dir);
    let (t2, outcome) = a
        .access_token(&name, Duration::from_secs(300))
        .await
        .expect("the caller still gets its token");
    assert_eq!(outcome, Outcome::Refreshed);
    assert!(
        a.recovery_pending(&name),
        "the refreshed tokens must be in the journal"
    );
    let store = fx.open().await;
    let stale = load(store.as_ref(), &name).await;
    assert_ne!(
        stale
            .tokens
            .as_ref()
            .map(|t| t.access_token.secret().to_owned()),
        Some(t2.access_token.secret().to_owned())
    );

    // Next run, store healthy: the journal is written first, then a forced refresh works
    // with the rotated refresh token (the old one is dead at NetSuite).
    let b = journaled_broker(fx.open().await, &dir);
    let (t, _) = b
        .access_token(&name, Duration::from_secs(60))
        .await
        .expect("token after recovery");
    assert_eq!(
        t.access_token.secret(),
        t2.access_token.secret(),
        "the journaled token is served"
    );
    assert!(
        !b.recovery_pending(&name),
        "the journal entry is gone once stored"
    );
    b.force_refresh(&name)
        .await
        .expect("the rotated refresh token was kept: no login needed");
    assert_eq!(emu.counters().refresh_token, 2);
    let _ = std::fs::remove_dir_all(&dir);
    clean_up(store.as_ref(), &name, emu).await;
}
