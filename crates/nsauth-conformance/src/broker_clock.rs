//! The refresh lease across hosts whose clocks disagree, and its renewal.

use crate::setup::{clean_up, config, expiring_login, http, load, plant_lease};
use crate::Fixture;
use nsauth_core::broker::{Broker, BrokerConfig, Clock, Outcome};
use nsauth_core::store::Lease;
use nsauth_emulator::Fault;
use std::time::{Duration, Instant};

async fn wait_for_lease(fx: &dyn Fixture, name: &nsauth_core::ProfileName) -> Lease {
    let store = fx.open().await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let rec = load(store.as_ref(), name).await;
        if let Some(l) = rec.lease {
            return l;
        }
        assert!(Instant::now() < deadline, "no lease was taken");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A waiter whose clock is an hour ahead does not take over a live lease (it would send a
/// second refresh, and a public client's refresh token is single use): exactly one refresh
/// reaches NetSuite and both callers get its token.
pub async fn skewed_clock_waiter_leaves_a_live_lease_alone(fx: &dyn Fixture) {
    for skew in [time::Duration::hours(1), time::Duration::hours(-1)] {
        let (emu, name) = expiring_login(fx).await;
        emu.set_access_ttl(3600);
        emu.inject(Fault::Delay(Duration::from_millis(1200)));
        let before = emu.counters();
        let a = Broker::new(fx.open().await, http(), config());
        let a_name = name.clone();
        let a_task =
            tokio::spawn(async move { a.access_token(&a_name, Duration::from_secs(300)).await });
        wait_for_lease(fx, &name).await;
        let b = Broker::new(
            fx.open().await,
            http(),
            BrokerConfig {
                clock: Clock::offset(skew),
                ..config()
            },
        );
        let (tb, ob) = b
            .access_token(&name, Duration::from_secs(300))
            .await
            .expect("the skewed waiter gets a token");
        let (ta, oa) = a_task
            .await
            .expect("task")
            .expect("the holder gets a token");
        assert_eq!(oa, Outcome::Refreshed);
        // An hour behind, the old token still looks valid to B (Cached); an hour ahead, B
        // must wait for A and take A's token.
        assert_ne!(
            ob,
            Outcome::Refreshed,
            "skew {skew}: the skewed host did not refresh"
        );
        if skew.is_positive() {
            assert_eq!(ob, Outcome::Waited, "skew {skew}: the skewed host waited");
            assert_eq!(ta.access_token.secret(), tb.access_token.secret());
        }
        let after = emu.counters();
        assert_eq!(
            after.token_requests - before.token_requests,
            1,
            "skew {skew}: exactly one refresh reaches NetSuite"
        );
        clean_up(fx.open().await.as_ref(), &name, emu).await;
    }
}

/// A lease left by a dead holder on a host whose clock is an hour ahead (its `until` is an
/// hour away by ours) is taken over after the lease time, not after an hour.
pub async fn fast_clock_dead_lease_is_taken_over_in_lease_time(fx: &dyn Fixture) {
    let (emu, name) = expiring_login(fx).await;
    let store = fx.open().await;
    plant_lease(
        store.as_ref(),
        &name,
        "other-host:4242:dead",
        time::OffsetDateTime::now_utc() + time::Duration::hours(1),
        "plant the lease",
    )
    .await;
    let started = Instant::now();
    let b = Broker::new(fx.open().await, http(), config());
    b.access_token(&name, Duration::from_secs(300))
        .await
        .expect("taken over");
    let waited = started.elapsed();
    let ttl = b.config().lease_ttl;
    assert!(
        waited + Duration::from_millis(500) >= ttl,
        "the lease was honoured ({waited:?})"
    );
    assert!(
        waited < ttl + Duration::from_secs(8),
        "waited {waited:?} for a {ttl:?} lease"
    );
    clean_up(store.as_ref(), &name, emu).await;
}

/// The holder renews its lease while NetSuite is slow: waiters see a new `until` before the
/// lease time has passed.
pub async fn holder_renews_its_lease_during_a_slow_refresh(fx: &dyn Fixture) {
    let (emu, name) = expiring_login(fx).await;
    // A 4 s lease renewed every 1.33 s; NetSuite answers after 2.2 s, within a 3 s deadline.
    emu.inject(Fault::Delay(Duration::from_millis(2200)));
    let http = nsauth_core::http::Http::with_config(nsauth_core::http::HttpConfig {
        deadline: Duration::from_secs(3),
        ..Default::default()
    })
    .expect("http");
    let cfg = BrokerConfig {
        store_timeout: Duration::from_secs(1),
        ..config()
    };
    let a = Broker::new(fx.open().await, http, cfg);
    let a_name = name.clone();
    let task = tokio::spawn(async move { a.access_token(&a_name, Duration::from_secs(300)).await });
    let first = wait_for_lease(fx, &name).await;
    let store = fx.open().await;
    let mut renewed = false;
    while !task.is_finished() {
        let rec = load(store.as_ref(), &name).await;
        if let Some(l) = rec.lease {
            if l.holder == first.holder && l.until != first.until {
                renewed = true;
            }
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    task.await.expect("task").expect("token");
    assert!(
        renewed,
        "the lease was renewed during a refresh longer than a third of it"
    );
    clean_up(store.as_ref(), &name, emu).await;
}
