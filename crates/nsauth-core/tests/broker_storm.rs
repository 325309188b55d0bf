//! A refresh storm: many callers find the token expiring at once. Exactly one refresh reaches
//! NetSuite, and the waiters back off (growing, jittered pauses) instead of polling the store
//! every 100 ms — which on Secrets Manager put 128 concurrent callers at a 3.7 s p99.

mod model;

use async_trait::async_trait;
use model::login::{emulator, log_in, REDIRECT};
use model::Memory;
use nsauth_core::broker::{Broker, BrokerConfig, Outcome};
use nsauth_core::http::Http;
use nsauth_core::journal::Journal;
use nsauth_core::profile::ProfileName;
use nsauth_core::store::{Capabilities, Lease, Precondition, Record, Version, Versioned};
use nsauth_core::{StoreError, TokenStore};
use nsauth_emulator::{ClientSpec, Emulator, Fault};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The user who logs in, and their password.
const USER: (&str, &str) = ("storm@example.com", "pw");

/// An emulator, and a profile logged in on it in a fresh memory store, with a token nsauth
/// was told lives 120 s (so `--min-ttl 300` finds it expiring).
async fn logged_in() -> (Emulator, Arc<Memory>, ProfileName) {
    let emu = emulator().await;
    emu.add_user(USER.0, USER.1);
    emu.add_client(ClientSpec::public("storm", REDIRECT));
    emu.set_access_ttl(120);
    let memory = Arc::new(Memory::default());
    let name = ProfileName::parse("storm").unwrap();
    let http = Http::new().unwrap();
    log_in(&emu, memory.as_ref(), &name, "storm", USER, &http).await;
    emu.set_access_ttl(3600);
    (emu, memory, name)
}

/// A broker on `store` with the default limits.
fn broker(store: Arc<dyn TokenStore>) -> Broker {
    Broker::new(store, Http::new().unwrap(), BrokerConfig::default())
}

/// A broker on `store` whose recovery journal (and so its machine-local lock) is in `dir`.
fn local_broker(store: Arc<dyn TokenStore>, dir: &Path) -> Broker {
    broker(store).with_journal(Journal::new(dir.join("journal"), Some(dir.join("key"))))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiters_back_off_and_one_refresh_reaches_netsuite() {
    let (emu, memory, name) = logged_in().await;
    emu.inject(Fault::Delay(Duration::from_millis(1500)));
    let before = emu.counters().token_requests;
    let calls_before = memory.calls();
    const CALLERS: u64 = 16;
    let mut tasks = Vec::new();
    for _ in 0..CALLERS {
        let store: Arc<dyn TokenStore> = memory.clone();
        let name = name.clone();
        tasks.push(tokio::spawn(async move {
            broker(store)
                .access_token(&name, Duration::from_secs(300))
                .await
        }));
    }
    let mut refreshed = 0;
    for t in tasks {
        let (_, outcome) = t.await.unwrap().expect("every caller gets a token");
        refreshed += u64::from(outcome == Outcome::Refreshed);
    }
    assert_eq!(refreshed, 1);
    assert_eq!(
        emu.counters().token_requests - before,
        1,
        "one refresh reaches NetSuite"
    );
    // Polling every 100 ms costs each waiter ~15 reads during a 1.5 s refresh; backing off
    // from 40 ms by x1.6 costs ~7.
    let calls = memory.calls() - calls_before;
    eprintln!("{calls} store calls for {CALLERS} callers during a 1.5 s refresh");
    assert!(
        calls <= CALLERS * 10,
        "{calls} store calls for {CALLERS} callers: waiters are hammering the store"
    );
    emu.shutdown().await;
}

/// A store that answers each call `delay` after taking its snapshot (a busy remote store),
/// counting loads.
#[derive(Debug)]
struct Slow {
    inner: Arc<Memory>,
    delay: Duration,
    loads: AtomicU64,
}

impl Slow {
    fn new(inner: &Arc<Memory>, delay: Duration) -> Arc<Slow> {
        Arc::new(Slow {
            inner: inner.clone(),
            delay,
            loads: AtomicU64::new(0),
        })
    }
}

#[async_trait]
impl TokenStore for Slow {
    fn describe(&self) -> String {
        "slow://model".into()
    }

    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }

    async fn load(&self, name: &ProfileName) -> Result<Option<Versioned>, StoreError> {
        self.loads.fetch_add(1, Ordering::SeqCst);
        let snapshot = self.inner.load(name).await;
        tokio::time::sleep(self.delay).await;
        snapshot
    }

    async fn put(
        &self,
        name: &ProfileName,
        record: &Record,
        condition: Precondition,
    ) -> Result<Version, StoreError> {
        let r = self.inner.put(name, record, condition).await;
        tokio::time::sleep(self.delay).await;
        r
    }

    async fn delete(
        &self,
        name: &ProfileName,
        version: Option<&Version>,
    ) -> Result<(), StoreError> {
        self.inner.delete(name, version).await
    }

    async fn list(&self) -> Result<Vec<ProfileName>, StoreError> {
        self.inner.list().await
    }
}

/// On a store that takes 300 ms per read, a waiter reads again no sooner than twice that:
/// reading a busy store faster only queues more requests ahead of the lease holder's write.
/// The old schedule (40 ms growing by x1.6, whatever the store's pace) read 6 times or more
/// while another host refreshed for 2 s; now at most 5, and the waiter still takes the
/// holder's token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiter_reads_a_slow_store_at_the_stores_pace() {
    let (emu, memory, name) = logged_in().await;
    // Another host holds the lease (its holder can never be judged dead from here).
    let current = memory.load(&name).await.unwrap().unwrap();
    let mut leased = current.record.clone();
    leased.lease = Some(Lease {
        holder: "another-host:1:op".into(),
        until: time::OffsetDateTime::now_utc() + time::Duration::seconds(40),
        ttl_ms: Some(40_000),
    });
    let v = memory
        .put(&name, &leased, Precondition::Match(current.version))
        .await
        .unwrap();
    let slow = Slow::new(&memory, Duration::from_millis(300));
    let store: Arc<dyn TokenStore> = slow.clone();
    let started = Instant::now();
    let waiter = tokio::spawn({
        let name = name.clone();
        async move {
            broker(store)
                .access_token(&name, Duration::from_secs(300))
                .await
        }
    });
    // The holder refreshes for 2 s, then stores the new tokens and releases the lease.
    let old = leased.tokens.clone().unwrap();
    let fresh = nsauth_core::flows::refresh(&Http::new().unwrap(), &leased.profile, &old)
        .await
        .unwrap();
    tokio::time::sleep_until((started + Duration::from_secs(2)).into()).await;
    let mut done = leased.clone();
    done.tokens = Some(fresh.clone());
    done.lease = None;
    memory
        .put(&name, &done, Precondition::Match(v))
        .await
        .unwrap();
    let (got, outcome) = waiter.await.unwrap().expect("the waiter gets the token");
    assert_eq!(outcome, Outcome::Waited);
    assert_eq!(
        got.access_token.fingerprint(),
        fresh.access_token.fingerprint()
    );
    let loads = slow.loads.load(Ordering::SeqCst);
    assert!(
        loads <= 5,
        "{loads} reads of a 300 ms store during a 2 s refresh: the waiter ignores the store's pace"
    );
    emu.shutdown().await;
}

/// Callers of one machine (brokers with the same journal directory) meet on a local lock:
/// the waiters wait there, not polling the store, and read it about twice each (before the
/// refresh and after the holder saved). Polling a 50 ms store during a 1.5 s refresh, even
/// with backoff, cost each waiter 6 reads or more.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiters_of_one_machine_wait_on_the_local_lock_not_the_store() {
    let (emu, memory, name) = logged_in().await;
    emu.inject(Fault::Delay(Duration::from_millis(1500)));
    let before = emu.counters().token_requests;
    let slow = Slow::new(&memory, Duration::from_millis(50));
    let dir = tempfile::tempdir().unwrap();
    const CALLERS: u64 = 16;
    let mut tasks = Vec::new();
    for _ in 0..CALLERS {
        let store: Arc<dyn TokenStore> = slow.clone();
        let dir = dir.path().to_owned();
        let name = name.clone();
        tasks.push(tokio::spawn(async move {
            local_broker(store, &dir)
                .access_token(&name, Duration::from_secs(300))
                .await
        }));
    }
    let mut tokens = std::collections::BTreeSet::new();
    for t in tasks {
        let (t, _) = t.await.unwrap().expect("every caller gets a token");
        tokens.insert(t.access_token.fingerprint());
    }
    assert_eq!(tokens.len(), 1, "one token for all");
    assert_eq!(
        emu.counters().token_requests - before,
        1,
        "one refresh reaches NetSuite"
    );
    let loads = slow.loads.load(Ordering::SeqCst);
    assert!(
        loads <= CALLERS * 3,
        "{loads} store reads for {CALLERS} callers of one machine: the waiters poll the store"
    );
    emu.shutdown().await;
}

/// Callers that start while another process of this machine refreshes read the store once,
/// after the refresh is saved, not before as well.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_callers_of_one_machine_read_the_store_once() {
    let (emu, memory, name) = logged_in().await;
    emu.inject(Fault::Delay(Duration::from_millis(1500)));
    let slow = Slow::new(&memory, Duration::from_millis(20));
    let dir = tempfile::tempdir().unwrap();
    let broker = || local_broker(slow.clone(), dir.path());
    let first = broker();
    let winner = tokio::spawn({
        let name = name.clone();
        async move { first.access_token(&name, Duration::from_secs(300)).await }
    });
    // Wait (with a deadline) until the first caller holds the lease: it is refreshing.
    let deadline = Instant::now() + Duration::from_secs(10);
    while memory
        .load(&name)
        .await
        .unwrap()
        .unwrap()
        .record
        .lease
        .is_none()
    {
        assert!(
            Instant::now() < deadline,
            "the first caller never took the lease"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let loads_before = slow.loads.load(Ordering::SeqCst);
    const LATE: u64 = 8;
    let mut tasks = Vec::new();
    for _ in 0..LATE {
        let b = broker();
        let name = name.clone();
        tasks.push(tokio::spawn(async move {
            b.access_token(&name, Duration::from_secs(300)).await
        }));
    }
    let (won, _) = winner.await.unwrap().unwrap();
    for t in tasks {
        let (t, _) = t.await.unwrap().expect("every late caller gets a token");
        assert_eq!(t.access_token.fingerprint(), won.access_token.fingerprint());
    }
    // The winner's own reads after the lease are at most a couple.
    let loads = slow.loads.load(Ordering::SeqCst) - loads_before;
    assert!(
        loads <= LATE + 2,
        "{loads} store reads for {LATE} callers that started during a refresh on this machine"
    );
    emu.shutdown().await;
}
